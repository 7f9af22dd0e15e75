/*
 * metrics.c - Prometheus counters (see metrics.h).
 *
 * Label sets are closed: endpoints are the routes the server registers,
 * statuses the ones the SPEC allows, outcomes and denial reasons the SPEC's
 * codes.  Nothing a client sends becomes a label, so a hostile client
 * cannot grow the exposition.
 */
#include "metrics.h"

#include <string.h>

#include "receipt.h"

static const int STATUSES[METRICS_STATUSES] = {200, 400, 403, 404, 405, 409,
                                               413, 422, 431, 502, 503, 0 /* other */};
_Static_assert(METRICS_OUTCOMES == RECEIPT_OUTCOMES, "one counter per receipt outcome");
static const char *const REASONS[METRICS_REASONS] = {
    "action_not_allowed",     "approval_required",
    "key_not_configured",     "invalid_artifact",
    "invalid_signature",      "tenant_mismatch",
    "action_hash_mismatch",   "expires_at_missing",
    "expires_at_invalid",     "approval_expired",
    "approval_not_yet_valid", "approval_already_used",
    "approval_mismatch",      "other"};
static const uint64_t BUCKET_US[METRICS_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

void metrics_init(oe_metrics *m)
{
    memset(m, 0, sizeof(*m));
}

unsigned metrics_endpoint(oe_metrics *m, const char *label)
{
    unsigned i;

    for (i = 0; i < m->nendpoints; i++)
        if (strcmp(m->endpoints[i], label) == 0)
            return i;
    if (m->nendpoints == METRICS_ENDPOINTS)
        return METRICS_ENDPOINTS - 1;
    m->endpoints[m->nendpoints] = label;
    return m->nendpoints++;
}

void metrics_observe(metrics_histogram *h, uint64_t us)
{
    unsigned i;

    for (i = 0; i < METRICS_BUCKETS; i++)
        if (us <= BUCKET_US[i]) {
            atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
            break;
        }
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void metrics_request(oe_metrics *m, unsigned endpoint, int status, uint64_t duration_us)
{
    unsigned s;

    for (s = 0; s < METRICS_STATUSES - 1 && STATUSES[s] != status; s++)
        ;
    if (endpoint < METRICS_ENDPOINTS)
        atomic_fetch_add_explicit(&m->requests[endpoint][s], 1, memory_order_relaxed);
    metrics_observe(&m->latency, duration_us);
}

static unsigned index_of(const char *const *names, unsigned n, const char *name)
{
    unsigned i;

    for (i = 0; i < n - 1; i++)
        if (names[i] != NULL && strcmp(names[i], name) == 0)
            return i;
    return n - 1;
}

void metrics_execution(oe_metrics *m, const char *outcome, const char *reason)
{
    unsigned reasons = 0;

    while (reasons < METRICS_REASONS && REASONS[reasons] != NULL)
        reasons++;
    atomic_fetch_add_explicit(&m->executions[index_of(receipt_outcomes, METRICS_OUTCOMES, outcome)],
                              1, memory_order_relaxed);
    if (strcmp(outcome, "denied") == 0 && reason != NULL)
        atomic_fetch_add_explicit(&m->denials[index_of(REASONS, reasons, reason)], 1,
                                  memory_order_relaxed);
}

static void render_histogram(oe_buf *b, const char *name, const char *help, metrics_histogram *h)
{
    unsigned long long cumulative = 0;
    unsigned i;

    oe_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (i = 0; i < METRICS_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        oe_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)BUCKET_US[i] / 1e6,
                      cumulative);
    }
    oe_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                  atomic_load_explicit(&h->count, memory_order_relaxed));
    oe_buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name,
                  (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
                  atomic_load_explicit(&h->count, memory_order_relaxed));
}

void metrics_render(oe_metrics *m, int writable, oe_buf *b)
{
    unsigned e, s, reasons = 0;

    while (reasons < METRICS_REASONS && REASONS[reasons] != NULL)
        reasons++;
    oe_buf_puts(b, "# HELP openexec_http_requests_total HTTP requests by endpoint and status.\n"
                   "# TYPE openexec_http_requests_total counter\n");
    for (e = 0; e < m->nendpoints; e++)
        for (s = 0; s < METRICS_STATUSES; s++) {
            unsigned long long v = atomic_load_explicit(&m->requests[e][s], memory_order_relaxed);
            if (v == 0)
                continue;
            if (STATUSES[s])
                oe_buf_printf(b,
                              "openexec_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                              m->endpoints[e], STATUSES[s], v);
            else
                oe_buf_printf(
                    b, "openexec_http_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n",
                    m->endpoints[e], v);
        }
    render_histogram(b, "openexec_http_request_duration_seconds",
                     "Time from request start to answer.", &m->latency);
    oe_buf_puts(b, "# HELP openexec_executions_total /execute attempts by outcome.\n"
                   "# TYPE openexec_executions_total counter\n");
    for (s = 0; s < METRICS_OUTCOMES; s++)
        oe_buf_printf(b, "openexec_executions_total{outcome=\"%s\"} %llu\n", receipt_outcomes[s],
                      atomic_load_explicit(&m->executions[s], memory_order_relaxed));
    oe_buf_puts(b, "# HELP openexec_denials_total Denied attempts by reason.\n"
                   "# TYPE openexec_denials_total counter\n");
    for (s = 0; s < reasons; s++)
        oe_buf_printf(b, "openexec_denials_total{reason=\"%s\"} %llu\n", REASONS[s],
                      atomic_load_explicit(&m->denials[s], memory_order_relaxed));
    render_histogram(b, "openexec_store_commit_seconds",
                     "Duration of one group commit (all its requests).", &m->commit);
    oe_buf_printf(b,
                  "# HELP openexec_open_connections Open client connections.\n"
                  "# TYPE openexec_open_connections gauge\nopenexec_open_connections %lld\n",
                  atomic_load_explicit(&m->open_connections, memory_order_relaxed));
    oe_buf_printf(b,
                  "# HELP openexec_store_writable 1 when the store accepts writes.\n"
                  "# TYPE openexec_store_writable gauge\nopenexec_store_writable %d\n",
                  writable ? 1 : 0);
}
