/*
 * receipt.c - receipts (SPEC 5): the legacy hash and signed log receipts.
 *
 * Legacy (5.1): sha256_hex(exec_id + ":" + result_json), with result_json =
 * json.dumps(result, sort_keys=True).  It proves nothing to a third party
 * (anyone can recompute it), but existing clients check it, so it is kept
 * byte-exact.  A result given as a string is hashed as sent; a result given
 * as an object is serialised the way the server did.
 *
 * Signed (5.2): a receipt is a log entry; the log signs checkpoints, and a
 * signed receipt is the entry plus its inclusion proof plus a checkpoint.
 * Rendering writes the documented key order; hashing uses the canonical
 * (sorted, compact) form, written here directly since the keys are fixed:
 * the two renderings are kept side by side below so they cannot drift.
 */
#include "receipt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "canon.h"
#include "util.h"

#define SIGNED_RECEIPT_MAX (64 * 1024)

const char *const receipt_outcomes[RECEIPT_OUTCOMES] = {"executed", "replayed", "denied",
                                                        "rejected", "failed",   "resolved"};

void receipt_stamp(receipt_fields *rf)
{
    oe_format_utc(oe_now_us(), rf->time);
}

/* The writer renders every receipt twice inside its transaction: plain
 * appends, no printf. */
static void put_str(oe_buf *b, const char *key, const char *s, size_t len)
{
    oe_buf_putc(b, '"');
    oe_buf_puts(b, key);
    oe_buf_puts(b, "\":");
    if (s == NULL)
        oe_buf_puts(b, "null");
    else
        canon_append_string(b, s, len);
}

static void put_cstr(oe_buf *b, const char *key, const char *s)
{
    put_str(b, key, s, s ? strlen(s) : 0);
}

/* One member: `first` omits the leading comma. */
#define MEMBER(b, first) ((first) ? 0 : oe_buf_putc((b), ','))

int receipt_render(const receipt_fields *rf, const char *origin, uint64_t seq, oe_buf *out,
                   uint8_t leaf[32])
{
    const char *result = rf->result_sha256[0] ? rf->result_sha256 : NULL;
    oe_buf canon;

    /* documented order (SPEC 5.2) */
    oe_buf_puts(out, "{\"v\":1,");
    put_cstr(out, "log", origin);
    oe_buf_puts(out, ",\"seq\":");
    oe_buf_put_u64(out, seq);
    oe_buf_putc(out, ',');
    put_cstr(out, "exec_id", rf->exec_id);
    MEMBER(out, 0);
    put_cstr(out, "time", rf->time);
    MEMBER(out, 0);
    put_str(out, "action", rf->action, rf->action_len);
    MEMBER(out, 0);
    put_cstr(out, "action_hash", rf->action_hash);
    MEMBER(out, 0);
    put_cstr(out, "nonce_sha256", rf->nonce_sha256);
    MEMBER(out, 0);
    put_cstr(out, "approval_id", rf->approval_id);
    MEMBER(out, 0);
    put_cstr(out, "outcome", rf->outcome);
    oe_buf_puts(out, ",\"status\":");
    oe_buf_put_u64(out, (uint64_t)rf->status);
    oe_buf_putc(out, ',');
    put_cstr(out, "result_sha256", result);
    MEMBER(out, 0);
    put_cstr(out, "error", rf->error);
    oe_buf_putc(out, '}');

    /* canonical order: keys sorted by code point */
    oe_buf_init(&canon, SIGNED_RECEIPT_MAX);
    oe_buf_putc(&canon, '{');
    put_str(&canon, "action", rf->action, rf->action_len);
    MEMBER(&canon, 0);
    put_cstr(&canon, "action_hash", rf->action_hash);
    MEMBER(&canon, 0);
    put_cstr(&canon, "approval_id", rf->approval_id);
    MEMBER(&canon, 0);
    put_cstr(&canon, "error", rf->error);
    MEMBER(&canon, 0);
    put_cstr(&canon, "exec_id", rf->exec_id);
    MEMBER(&canon, 0);
    put_cstr(&canon, "log", origin);
    MEMBER(&canon, 0);
    put_cstr(&canon, "nonce_sha256", rf->nonce_sha256);
    MEMBER(&canon, 0);
    put_cstr(&canon, "outcome", rf->outcome);
    MEMBER(&canon, 0);
    put_cstr(&canon, "result_sha256", result);
    oe_buf_puts(&canon, ",\"seq\":");
    oe_buf_put_u64(&canon, seq);
    oe_buf_puts(&canon, ",\"status\":");
    oe_buf_put_u64(&canon, (uint64_t)rf->status);
    oe_buf_putc(&canon, ',');
    put_cstr(&canon, "time", rf->time);
    oe_buf_puts(&canon, ",\"v\":1}");
    if (!canon.failed)
        tlog_leaf_hash(canon.data, canon.len, leaf);
    oe_buf_free(&canon);
    return out->failed || canon.failed ? -1 : 0;
}

int receipt_leaf_hash(const json_t *receipt, uint8_t leaf[32])
{
    oe_buf canon;
    int rc;

    oe_buf_init(&canon, SIGNED_RECEIPT_MAX);
    rc = canon_append(&canon, receipt, CANON_COMPACT);
    if (rc == 0)
        tlog_leaf_hash(canon.data, canon.len, leaf);
    oe_buf_free(&canon);
    return rc;
}

void receipt_append_hashes(oe_buf *out, const uint8_t hashes[][32], size_t count)
{
    size_t i;

    oe_buf_putc(out, '[');
    for (i = 0; i < count; i++) {
        oe_buf_puts(out, i > 0 ? ",\"" : "\"");
        oe_buf_put_base64(out, hashes[i], 32);
        oe_buf_putc(out, '"');
    }
    oe_buf_putc(out, ']');
}

int receipt_append_signed_head(oe_buf *out, const char *receipt, size_t receipt_len, uint64_t index,
                               uint64_t size, const uint8_t proof[][32], size_t count)
{
    oe_buf_puts(out, "{\"receipt\":");
    oe_buf_append(out, receipt, receipt_len);
    oe_buf_puts(out, ",\"inclusion\":{\"size\":");
    oe_buf_put_u64(out, size);
    oe_buf_puts(out, ",\"index\":");
    oe_buf_put_u64(out, index);
    oe_buf_puts(out, ",\"hashes\":");
    receipt_append_hashes(out, proof, count);
    oe_buf_puts(out, "},\"checkpoint\":");
    return out->failed ? -1 : 0;
}

void receipt_finish_answer(oe_answer *ans, int status, const char *prefix, size_t prefix_len,
                           const char *note, size_t note_len)
{
    oe_buf b;

    oe_buf_init(&b, prefix_len + 2 * note_len + 1024);
    oe_buf_append(&b, prefix, prefix_len);
    canon_append_string(&b, note, note_len);
    oe_buf_puts(&b, "}}");
    if (b.failed) {
        oe_error err;
        oe_buf_free(&b);
        oe_error_set(&err, 503, "busy", "Out of memory");
        answer_error(ans, &err);
        return;
    }
    answer_take(ans, status, &b);
}

/* ---- verification -------------------------------------------------------- */

static int get_u64(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int receipt_verify_signed(const json_t *sr, receipt_key_fn keys, void *ctx, char *why,
                          size_t why_len)
{
    const json_t *receipt = json_object_get(sr, "receipt");
    const json_t *inclusion = json_object_get(sr, "inclusion");
    const json_t *note = json_object_get(sr, "checkpoint");
    const json_t *hashes = json_object_get(inclusion, "hashes");
    const json_t *log = json_object_get(receipt, "log");
    uint8_t(*p)[32] = NULL, leaf[32];
    unsigned char pk[32];
    tlog_checkpoint cp;
    uint64_t size, index, seq;
    size_t i, n, len;
    int ok = 0;

    if (!json_is_object(receipt) || !json_is_object(inclusion) || !json_is_string(note) ||
        !json_is_array(hashes) || get_u64(inclusion, "size", &size) != 0 ||
        get_u64(inclusion, "index", &index) != 0) {
        snprintf(why, why_len, "not a signed receipt (receipt, inclusion, checkpoint)");
        return 0;
    }
    /* Exactly these members (SPEC 5.2): nothing signs a field beside them,
     * so accepting one would let anybody attach claims that look verified. */
    if (json_object_size(sr) != 3 || json_object_size(inclusion) != 3) {
        snprintf(why, why_len,
                 "a signed receipt holds exactly receipt, inclusion (size, "
                 "index, hashes) and checkpoint; unsigned fields were added");
        return 0;
    }
    if (tlog_checkpoint_parse(json_string_value(note), json_string_length(note), &cp) != 0) {
        snprintf(why, why_len, "malformed checkpoint");
        return 0;
    }
    if (keys(ctx, cp.origin, pk) != 0) {
        snprintf(why, why_len, "unknown log %s", cp.origin);
        return 0;
    }
    if (!tlog_checkpoint_verify(json_string_value(note), json_string_length(note), pk, &cp, why,
                                why_len))
        return 0;
    if (!json_is_string(log) || strcmp(json_string_value(log), cp.origin) != 0 ||
        get_u64(receipt, "seq", &seq) != 0 || seq != index) {
        snprintf(why, why_len, "receipt log/seq do not match the proof and checkpoint");
        return 0;
    }
    if (size != cp.size) {
        snprintf(why, why_len, "inclusion size %llu differs from checkpoint size %llu",
                 (unsigned long long)size, (unsigned long long)cp.size);
        return 0;
    }
    n = json_array_size(hashes);
    if (n > TLOG_MAX_PROOF || (p = malloc((n ? n : 1) * 32)) == NULL) {
        snprintf(why, why_len, "proof too long");
        return 0;
    }
    for (i = 0; i < n; i++) {
        const json_t *h = json_array_get(hashes, i);
        if (!json_is_string(h) ||
            sodium_base642bin(p[i], 32, json_string_value(h), json_string_length(h), NULL, &len,
                              NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
            len != 32) {
            snprintf(why, why_len, "proof hash %zu is not base64 of 32 bytes", i);
            goto out;
        }
    }
    if (receipt_leaf_hash(receipt, leaf) != 0) {
        snprintf(why, why_len, "receipt cannot be canonicalised");
        goto out;
    }
    ok = tlog_verify_inclusion(leaf, index, size, (const uint8_t(*)[32])p, n, cp.root);
    if (!ok)
        snprintf(why, why_len, "the inclusion proof does not lead to the checkpoint's root");
out:
    free(p);
    return ok;
}

static void answer_valid(oe_answer *ans, int valid)
{
    oe_buf out;

    oe_buf_init(&out, 64);
    oe_buf_puts(&out, valid ? "{\"valid\":true}" : "{\"valid\":false}");
    answer_take(ans, 200, &out);
}

static void verify_signed_form(const json_t *sr, receipt_key_fn keys, void *ctx, oe_answer *ans)
{
    char why[256];
    oe_error err;

    if (!json_is_object(sr) || !json_is_object(json_object_get(sr, "receipt")) ||
        !json_is_object(json_object_get(sr, "inclusion")) ||
        !json_is_string(json_object_get(sr, "checkpoint"))) {
        oe_error_set(&err, 422, "invalid_request",
                     "signed_receipt needs receipt (object), inclusion (object) and checkpoint "
                     "(string)");
        answer_error(ans, &err);
        return;
    }
    answer_valid(ans, receipt_verify_signed(sr, keys, ctx, why, sizeof(why)));
}

#define RESULT_JSON_MAX (8 * 1024 * 1024)

static const json_t *string_field(const json_t *root, const char *name, oe_error *err)
{
    const json_t *v = json_object_get(root, name);

    if (!json_is_string(v)) {
        oe_error_set(err, 422, "invalid_request", "Field '%s' is required and must be a string",
                     name);
        return NULL;
    }
    return v;
}

void receipt_verify_request(const char *body, size_t len, receipt_key_fn keys, void *ctx,
                            oe_answer *ans)
{
    json_t *root = NULL;
    const json_t *exec_id, *result, *receipt;
    char expected[65];
    oe_buf result_json;
    oe_error err;
    int valid;

    oe_buf_init(&result_json, RESULT_JSON_MAX);
    if (canon_parse(body, len, &root, &err) != 0)
        goto fail;
    if (json_object_get(root, "signed_receipt") != NULL) {
        verify_signed_form(json_object_get(root, "signed_receipt"), keys, ctx, ans);
        goto done;
    }
    if ((exec_id = string_field(root, "exec_id", &err)) == NULL)
        goto fail;
    result = json_object_get(root, "result");
    if (json_is_string(result)) {
        oe_buf_append(&result_json, json_string_value(result), json_string_length(result));
    } else if (json_is_object(result)) {
        canon_append(&result_json, result, CANON_SPACED);
    } else {
        oe_error_set(&err, 422, "invalid_request",
                     "Field 'result' is required and must be a string or an object");
        goto fail;
    }
    if ((receipt = string_field(root, "receipt", &err)) == NULL)
        goto fail;
    if (result_json.failed) {
        oe_error_set(&err, 422, "invalid_request", "Field 'result' is too large");
        goto fail;
    }
    /* Hash exactly the bytes the client sent (exec_id may hold NUL), with
     * no intermediate buffer that could truncate them. */
    {
        crypto_hash_sha256_state h;
        unsigned char digest[32];
        crypto_hash_sha256_init(&h);
        crypto_hash_sha256_update(&h, (const unsigned char *)json_string_value(exec_id),
                                  json_string_length(exec_id));
        crypto_hash_sha256_update(&h, (const unsigned char *)":", 1);
        crypto_hash_sha256_update(&h, (const unsigned char *)result_json.data, result_json.len);
        crypto_hash_sha256_final(&h, digest);
        sodium_bin2hex(expected, sizeof(expected), digest, sizeof(digest));
    }
    valid = json_string_length(receipt) == 64 &&
            sodium_memcmp(expected, json_string_value(receipt), 64) == 0;
    answer_valid(ans, valid);
    goto done;

fail:
    answer_error(ans, &err);
done:
    oe_buf_free(&result_json);
    json_decref(root);
}

int receipt_answer_origin(const char *prefix, size_t len, char *out, size_t cap)
{
    static const char mark[] = "\"signed_receipt\":{\"receipt\":{\"v\":1,\"log\":\"";
    const char *p = memmem(prefix, len, mark, sizeof(mark) - 1), *end = prefix + len;
    size_t n = 0;

    if (p == NULL)
        return -1;
    for (p += sizeof(mark) - 1; p < end && *p != '"'; p++) {
        if (*p == '\\') {
            /* Escapes other than \" and \\ would need decoding; origins
             * are plain text in practice, and a caller that cannot tell
             * refuses rather than guesses. */
            if (p + 1 >= end || (p[1] != '"' && p[1] != '\\'))
                return -1;
            p++;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = *p;
    }
    if (p >= end)
        return -1;
    out[n] = '\0';
    return 0;
}
