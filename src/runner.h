/*
 * runner.h - a bounded pool of worker threads for exec actions.
 *
 * Exec actions block (a program runs for up to its timeout), so they never
 * run on an event loop.  Capacity is reserved before a request claims its
 * nonce: a full pool answers 503 busy without consuming anything, rather
 * than queueing without bound.
 */
#ifndef OE_RUNNER_H
#define OE_RUNNER_H

typedef struct runner runner;

/* threads workers; at most `capacity` jobs reserved, queued or running. */
runner *runner_create(int threads, int capacity);
/* Stops taking jobs, finishes every queued and running one, joins. */
void runner_destroy(runner *r);
/* 0 when a slot was reserved, -1 when the pool is full. */
int runner_reserve(runner *r);
/* Gives back a reservation that will not be used. */
void runner_release(runner *r);
/* Runs fn(arg) on a worker; consumes a reservation (released after fn). */
void runner_submit(runner *r, void (*fn)(void *arg), void *arg);

#endif
