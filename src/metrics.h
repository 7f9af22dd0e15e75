/*
 * metrics.h - counters for GET /metrics (Prometheus text format 0.0.4).
 *
 * Event loops and the writer bump relaxed atomic counters; a scrape reads
 * them without stopping anyone, so a scrape may see one counter a moment
 * ahead of another, which Prometheus tolerates by design.
 */
#ifndef OE_METRICS_H
#define OE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"

#define METRICS_ENDPOINTS 16
#define METRICS_STATUSES 12
#define METRICS_BUCKETS 14
#define METRICS_OUTCOMES 6
#define METRICS_REASONS 16

typedef struct metrics_histogram {
    atomic_ullong bucket[METRICS_BUCKETS]; /* cumulative on render, not here */
    atomic_ullong count;
    atomic_ullong sum_us;
} metrics_histogram;

typedef struct oe_metrics {
    const char *endpoints[METRICS_ENDPOINTS]; /* labels, registered at start */
    unsigned nendpoints;
    atomic_ullong requests[METRICS_ENDPOINTS][METRICS_STATUSES];
    metrics_histogram latency;
    atomic_ullong executions[METRICS_OUTCOMES];
    atomic_ullong denials[METRICS_REASONS];
    metrics_histogram commit;
    atomic_llong open_connections;
} oe_metrics;

void metrics_init(oe_metrics *m);
/* Registers an endpoint label (static string); returns its index. */
unsigned metrics_endpoint(oe_metrics *m, const char *label);
void metrics_request(oe_metrics *m, unsigned endpoint, int status, uint64_t duration_us);
/* outcome: "executed", "replayed", "denied", ...; reason: the error code of a denial. */
void metrics_execution(oe_metrics *m, const char *outcome, const char *reason);
void metrics_observe(metrics_histogram *h, uint64_t duration_us);
/* The whole exposition; `writable` is the store's health. */
void metrics_render(oe_metrics *m, int writable, oe_buf *out);

#endif
