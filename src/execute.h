/*
 * execute.h - the /execute pipeline (SPEC 3): parse -> nonce lookup ->
 * allow-list -> registry -> approval -> run -> record -> answer.
 *
 * execute_begin runs on an event-loop thread.  It answers at once when the
 * request ends before anything must be written (a bad body, a denial, a
 * replay), and otherwise hands the execution to the store's writer and
 * returns EXECUTE_PENDING; `done(cookie)` is then called exactly once, on
 * the writer thread, after the commit.  The caller moves back to its own
 * thread and calls execute_finish to get the answer.
 */
#ifndef OE_EXECUTE_H
#define OE_EXECUTE_H

#include <stddef.h>

#include <jansson.h>

#include "actions.h"
#include "answer.h"
#include "config.h"
#include "store.h"

typedef struct execute_env execute_env;
typedef struct execute_job execute_job;

enum { EXECUTE_ANSWERED = 0, EXECUTE_PENDING = 1 };

/* The environment borrows cfg, st and actions; they must outlive it. */
int execute_env_create(const oe_config *cfg, store *st, const actions_registry *actions,
                       execute_env **out, char *why, size_t why_len);
/* SIGTERM: the outcome of a finished action whose commit the store refuses
 * is no longer waited for (its request is answered 503).  Any thread. */
void execute_env_stop(execute_env *env);
void execute_env_destroy(execute_env *env);

int execute_begin(execute_env *env, store_reader *rd, const char *body, size_t len,
                  void (*done)(void *cookie), void *cookie, execute_job **job, oe_answer *ans);
/* Fills ans and frees job.  rd: the calling loop's reader. */
void execute_finish(execute_job *job, store_reader *rd, oe_answer *ans);

/* Records an operator's finding for an execution whose outcome is unknown
 * (SPEC 6): succeeded (with result, an object) or failed, as a "resolved"
 * receipt; replays return that finding from then on.  Blocks until the
 * commit.  0 ok; -1 with why. */
int execute_resolve(execute_env *env, store_reader *rd, const char *nonce, size_t nonce_len,
                    int succeeded, const json_t *result, char *why, size_t why_len);

#endif
