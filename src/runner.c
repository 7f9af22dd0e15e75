/*
 * runner.c - bounded worker pool (see runner.h).
 *
 * A mutex-protected FIFO of jobs and a condition variable; `reserved`
 * counts slots promised to requests that have not finished yet, so the
 * bound covers jobs waiting for their claim to commit, queued, and running.
 */
#include "runner.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct job {
    void (*fn)(void *arg);
    void *arg;
    struct job *next;
} job;

struct runner {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    job *head, *tail;
    int capacity, reserved, stopping, nthreads;
    pthread_t *threads;
};

static void *worker(void *p)
{
    runner *r = p;
    job *j;

    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (r->head == NULL && !r->stopping)
            pthread_cond_wait(&r->wake, &r->lock);
        if (r->head == NULL)
            break;
        j = r->head;
        r->head = j->next;
        if (r->head == NULL)
            r->tail = NULL;
        pthread_mutex_unlock(&r->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&r->lock);
        r->reserved--;
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

runner *runner_create(int threads, int capacity)
{
    runner *r = calloc(1, sizeof(*r));
    int i;

    if (r == NULL || (r->threads = calloc((size_t)threads, sizeof(pthread_t))) == NULL) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    r->capacity = capacity;
    for (i = 0; i < threads; i++) {
        if (pthread_create(&r->threads[i], NULL, worker, r) != 0)
            break;
        pthread_setname_np(r->threads[i], "oe-action");
        r->nthreads++;
    }
    if (r->nthreads == 0) {
        runner_destroy(r);
        return NULL;
    }
    return r;
}

void runner_destroy(runner *r)
{
    int i;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->lock);
    for (i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i], NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r->threads);
    free(r);
}

int runner_reserve(runner *r)
{
    int ok;

    pthread_mutex_lock(&r->lock);
    ok = r->reserved < r->capacity && !r->stopping;
    if (ok)
        r->reserved++;
    pthread_mutex_unlock(&r->lock);
    return ok ? 0 : -1;
}

void runner_release(runner *r)
{
    pthread_mutex_lock(&r->lock);
    r->reserved--;
    pthread_mutex_unlock(&r->lock);
}

void runner_submit(runner *r, void (*fn)(void *arg), void *arg)
{
    job *j = malloc(sizeof(*j));

    if (j == NULL) {
        /* Out of memory: run inline rather than lose an acknowledged claim. */
        fn(arg);
        runner_release(r);
        return;
    }
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->tail)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}
