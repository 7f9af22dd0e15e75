/*
 * log_api.c - the read side of the receipt log (see log_api.h).
 *
 * Proofs are computed on the calling event loop from its own reader
 * connection: every node is an immutable perfect subtree, so a reader can
 * never see a torn tree, and a proof costs O(log n) point lookups.  The
 * latest checkpoint of this instance's log comes from memory (it is ahead
 * of what the database holds by at most one commit); other instances' logs
 * are read from the database, where each keeps its latest signed note.
 */
#include "log_api.h"

#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "receipt.h"
#include "tlog.h"

#define EXPORT_DEFAULT 1000
#define EXPORT_MAX 10000
#define EXPORT_BUF_MAX (32 * 1024 * 1024)
#define ANSWER_MAX (256 * 1024)

static void fail(oe_answer *ans, int status, const char *code, const char *detail)
{
    oe_error err;

    oe_error_set(&err, status, code, "%s", detail);
    answer_error(ans, &err);
}

static void store_unavailable(oe_answer *ans)
{
    fail(ans, 503, "store_unavailable", "Store unavailable: the log cannot be read now");
}

/* A decimal without sign, leading '+' or junk; 0 ok, -1 invalid.  Values
 * beyond 64 bits saturate: a huge limit is clamped like any large one, a
 * huge from is past the end. */
static int parse_count(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (*s < '0' || *s > '9')
            return -1;
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Finds a log (NULL: ours).  Answers 404/503 itself when it cannot. */
static int find_log(const log_api_ctx *c, const char *log, store_log_info *info, oe_answer *ans)
{
    int rc = store_find_log(c->rd, log, info);

    if (rc == STORE_NOT_FOUND) {
        fail(ans, 404, "not_found", "No such log in this database");
        return -1;
    }
    if (rc != STORE_OK || info->checkpoint == NULL) {
        store_log_info_free(info);
        if (rc == STORE_OK) {
            fail(ans, 404, "not_found", "That log has no signed checkpoint yet");
            return -1;
        }
        store_unavailable(ans);
        return -1;
    }
    return 0;
}

void log_api_checkpoint(const log_api_ctx *c, const char *log, oe_answer *ans)
{
    store_log_info info;
    oe_buf b;

    if (find_log(c, log, &info, ans) != 0)
        return;
    oe_buf_init(&b, info.checkpoint_len + 1);
    oe_buf_append(&b, info.checkpoint, info.checkpoint_len);
    store_log_info_free(&info);
    answer_take(ans, 200, &b);
    ans->content_type = "text/plain; charset=utf-8";
}

void log_api_receipt(const log_api_ctx *c, const char *exec_id, oe_answer *ans)
{
    uint8_t proof[TLOG_MAX_PROOF][32];
    store_log_info info = {0};
    json_t *parsed = NULL;
    const char *origin;
    oe_buf receipt, b;
    int64_t log_id;
    uint64_t seq;
    size_t count;
    oe_error err;
    int rc;

    oe_buf_init(&receipt, ANSWER_MAX);
    oe_buf_init(&b, ANSWER_MAX);
    rc = store_find_receipt(c->rd, exec_id, &log_id, &seq, &receipt);
    if (rc == STORE_NOT_FOUND) {
        fail(ans, 404, "not_found", "No receipt carries that id");
        goto out;
    }
    if (rc != STORE_OK || canon_parse(receipt.data, receipt.len, &parsed, &err) != 0 ||
        (origin = json_string_value(json_object_get(parsed, "log"))) == NULL) {
        store_unavailable(ans);
        goto out;
    }
    if (find_log(c, origin, &info, ans) != 0)
        goto out;
    if (seq >= info.size) {
        fail(ans, 404, "not_found", "That receipt is not covered by a signed checkpoint yet");
        goto out;
    }
    {
        store_node_ctx nodes = {c->rd, info.log_id};
        if (tlog_inclusion_proof(store_get_node, &nodes, seq, info.size, proof, &count) != 0) {
            store_unavailable(ans);
            goto out;
        }
    }
    receipt_append_signed_head(&b, receipt.data, receipt.len, seq, info.size,
                               (const uint8_t(*)[32])proof, count);
    canon_append_string(&b, info.checkpoint, info.checkpoint_len);
    oe_buf_putc(&b, '}');
    if (b.failed) {
        fail(ans, 503, "busy", "Out of memory");
        goto out;
    }
    answer_take(ans, 200, &b);
out:
    store_log_info_free(&info);
    json_decref(parsed);
    oe_buf_free(&receipt);
    oe_buf_free(&b);
}

void log_api_export(const log_api_ctx *c, const char *log, const char *from, const char *limit,
                    oe_answer *ans)
{
    store_log_info info;
    uint64_t first = 0, n = EXPORT_DEFAULT;
    oe_buf b;

    if ((from != NULL && parse_count(from, &first) != 0) ||
        (limit != NULL && (parse_count(limit, &n) != 0 || n == 0))) {
        fail(ans, 400, "bad_range",
             "from and limit must be non-negative integers, and limit at least 1");
        return;
    }
    if (n > EXPORT_MAX)
        n = EXPORT_MAX;
    if (find_log(c, log, &info, ans) != 0)
        return;
    oe_buf_init(&b, EXPORT_BUF_MAX);
    /* Only entries covered by the checkpoint an auditor can fetch. */
    if (first < info.size &&
        store_export_receipts(c->rd, info.log_id, first,
                              n < info.size - first ? n : info.size - first, &b) != STORE_OK) {
        oe_buf_free(&b);
        store_log_info_free(&info);
        store_unavailable(ans);
        return;
    }
    store_log_info_free(&info);
    if (b.data == NULL)
        oe_buf_append(&b, "", 0);
    answer_take(ans, 200, &b);
    ans->content_type = "application/x-ndjson";
}

void log_api_consistency(const log_api_ctx *c, const char *log, const char *old_size,
                         const char *new_size, oe_answer *ans)
{
    uint8_t proof[TLOG_MAX_PROOF][32];
    store_log_info info;
    uint64_t m, n;
    size_t count;
    oe_buf b;

    if (parse_count(old_size, &m) != 0 || parse_count(new_size, &n) != 0 || m == 0 || m > n) {
        fail(ans, 400, "bad_range", "old and new must be integers with 0 < old <= new <= size");
        return;
    }
    if (find_log(c, log, &info, ans) != 0)
        return;
    if (n > info.size) {
        store_log_info_free(&info);
        fail(ans, 400, "bad_range", "old and new must be integers with 0 < old <= new <= size");
        return;
    }
    {
        store_node_ctx nodes = {c->rd, info.log_id};
        int rc = tlog_consistency_proof(store_get_node, &nodes, m, n, proof, &count);
        store_log_info_free(&info);
        if (rc != 0) {
            store_unavailable(ans);
            return;
        }
    }
    oe_buf_init(&b, ANSWER_MAX);
    oe_buf_puts(&b, "{\"hashes\":");
    receipt_append_hashes(&b, (const uint8_t(*)[32])proof, count);
    oe_buf_putc(&b, '}');
    answer_take(ans, 200, &b);
}

void log_api_key(const log_api_ctx *c, oe_answer *ans)
{
    char *pem = keys_public_pem(c->key->pk);
    const char *origin = store_log_origin(c->st);
    oe_buf b;

    oe_buf_init(&b, ANSWER_MAX);
    oe_buf_puts(&b, "{\"public_key_pem\":");
    canon_append_string(&b, pem ? pem : "", pem ? strlen(pem) : 0);
    oe_buf_printf(&b, ",\"key_id\":\"%s\",\"origin\":", c->key->key_id);
    canon_append_string(&b, origin, strlen(origin));
    oe_buf_putc(&b, '}');
    free(pem);
    answer_take(ans, 200, &b);
}

int log_api_key_lookup(void *ctx, const char *origin, unsigned char pk[32])
{
    const log_api_ctx *c = ctx;
    store_log_info info;

    if (strcmp(origin, store_log_origin(c->st)) == 0) {
        memcpy(pk, c->key->pk, 32);
        return 0;
    }
    if (store_find_log(c->rd, origin, &info) != STORE_OK)
        return -1;
    memcpy(pk, info.public_key, 32);
    store_log_info_free(&info);
    return 0;
}
