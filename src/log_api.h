/*
 * log_api.h - the read side of the receipt log (SPEC 5.2 endpoints):
 * checkpoints, signed receipts by id, consistency proofs, export, the key.
 *
 * Each function answers one request from the store's readers; query values
 * arrive as decoded strings (NULL when absent) and are validated here, so
 * the HTTP layer only routes.
 */
#ifndef OE_LOG_API_H
#define OE_LOG_API_H

#include "answer.h"
#include "keys.h"
#include "store.h"

typedef struct log_api_ctx {
    store *st;
    store_reader *rd;
    const keys_private *key; /* this instance's receipt key */
} log_api_ctx;

/* GET /checkpoint[?log=ORIGIN] (text/plain) */
void log_api_checkpoint(const log_api_ctx *c, const char *log, oe_answer *ans);
/* GET /receipts/{exec_id} */
void log_api_receipt(const log_api_ctx *c, const char *exec_id, oe_answer *ans);
/* GET /receipts?from=&limit=[&log=] (application/x-ndjson) */
void log_api_export(const log_api_ctx *c, const char *log, const char *from, const char *limit,
                    oe_answer *ans);
/* GET /log/consistency?old=&new=[&log=] */
void log_api_consistency(const log_api_ctx *c, const char *log, const char *old_size,
                         const char *new_size, oe_answer *ans);
/* GET /receipts/key */
void log_api_key(const log_api_ctx *c, oe_answer *ans);

/* receipt_key_fn over the logs of the database (ctx: a log_api_ctx). */
int log_api_key_lookup(void *ctx, const char *origin, unsigned char pk[32]);

#endif
