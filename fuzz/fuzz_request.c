/*
 * fuzz_request.c - libFuzzer target for request_parse (SPEC 3) and the
 * canonical form of what it accepts (SPEC 3.3).
 *
 * fuzz_canon.c pins canon_parse's 400/422 classification to jansson; this
 * target starts one layer up, at the whole /execute body, and checks what
 * execute.c relies on.  Properties (abort() on a violation):
 *
 *   1. request_parse and canon_parse agree: the same body fails canon_parse
 *      with error E  <=>  request_parse fails with the very same E (status,
 *      code, detail); a body canon_parse accepts fails request_parse only
 *      with 422 invalid_request.
 *   2. Every failure has a SPEC 2 status/code pair, a non-empty printable
 *      ASCII detail, and answer_error renders it into a body that is valid
 *      JSON of exactly {"detail","error"} (the class of bug where a detail
 *      that failed to encode left `{"detail":,...}`).
 *   3. An accepted request has request.h's invariants: action 1..128 bytes
 *      (U+0000 included: it is an unknown action, not a malformed request),
 *      nonce 1..256 bytes, payload an object that root owns,
 *      artifact an object or NULL, every pointer borrowed from root.
 *   4. action_hash (streamed into SHA-256 by canon_action_hash) equals
 *      SHA-256 of the buffered canon_append of {"action","payload"}, in
 *      lower-case hex: the two serialisers cannot drift apart.
 *   5. The payload's canonical forms (compact and spaced, as action_hash
 *      and result_json use them) are ASCII, parse back to an equal value,
 *      and the echo result {"echo": payload} canonicalizes like execute.c
 *      does.
 *   6. Re-parsing the canonical compact form of the accepted root is
 *      accepted again, with the same action, nonce and action_hash
 *      (canonicalization is a fixed point for requests).
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DOE_FUZZ=ON && make -C build-fuzz fuzz_request
 * Run:   build-fuzz/fuzz_request -max_len=4096 fuzz/corpus/request
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "answer.h"
#include "canon.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CANON_MAX (1 << 24)

static void check(int ok)
{
    if (!ok)
        abort();
}

static int printable_ascii(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int is_ascii(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Property 2. */
static void check_error(const oe_error *err)
{
    static const struct {
        int status;
        const char *code;
    } allowed[] = {{400, "invalid_json"},
                   {400, "not_an_object"},
                   {422, "unsupported_json"},
                   {422, "invalid_request"}};
    oe_answer ans = {0};
    json_error_t jerr;
    json_t *body;
    size_t i;
    int known = 0;

    check(err->code != NULL);
    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (err->status == allowed[i].status && strcmp(err->code, allowed[i].code) == 0)
            known = 1;
    check(known);
    check(printable_ascii(err->detail));

    answer_error(&ans, err);
    check(ans.status == err->status && ans.body != NULL);
    body = json_loadb(ans.body, ans.body_len, 0, &jerr);
    check(body != NULL && json_is_object(body) && json_object_size(body) == 2);
    check(json_is_string(json_object_get(body, "detail")));
    check(strcmp(json_string_value(json_object_get(body, "detail")), err->detail) == 0);
    check(json_is_string(json_object_get(body, "error")));
    check(strcmp(json_string_value(json_object_get(body, "error")), err->code) == 0);
    check(strncmp(ans.body, "{\"detail\":", 10) == 0);
    json_decref(body);
    answer_free(&ans);
}

/* Property 3: p points into [s, s + len] of a string value of root. */
static void check_invariants(const oe_request *req)
{
    json_t *v;

    check(json_is_object(req->root));
    v = json_object_get(req->root, "action");
    check(json_is_string(v) && json_string_value(v) == req->action);
    check(json_string_length(v) == req->action_len);
    check(req->action_len >= 1 && req->action_len <= REQUEST_ACTION_MAX);

    v = json_object_get(req->root, "nonce");
    check(json_is_string(v) && json_string_value(v) == req->nonce);
    check(json_string_length(v) == req->nonce_len);
    check(req->nonce_len >= 1 && req->nonce_len <= REQUEST_NONCE_MAX);

    check(json_is_object(req->payload));
    check(json_object_get(req->root, "payload") == req->payload);

    v = json_object_get(req->root, "approval_artifact");
    if (req->artifact == NULL)
        check(v == NULL || json_is_null(v));
    else
        check(json_is_object(req->artifact) && v == req->artifact);
}

/* Property 4. */
static void check_action_hash(const oe_request *req)
{
    json_t *obj = json_object();
    json_t *action = json_stringn(req->action, req->action_len);
    unsigned char digest[32];
    char hex[65];
    oe_buf b;
    size_t i;

    check(obj != NULL && action != NULL);
    check(json_object_set_new(obj, "action", action) == 0);
    check(json_object_set(obj, "payload", req->payload) == 0);
    oe_buf_init(&b, CANON_MAX);
    check(canon_append(&b, obj, CANON_COMPACT) == 0);
    crypto_hash_sha256(digest, (const unsigned char *)b.data, b.len);
    for (i = 0; i < 32; i++) {
        hex[2 * i] = "0123456789abcdef"[digest[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[digest[i] & 15];
    }
    hex[64] = '\0';
    check(strlen(req->action_hash) == 64);
    check(memcmp(hex, req->action_hash, 65) == 0);
    canon_sha256_hex(b.data, b.len, hex);
    check(memcmp(hex, req->action_hash, 65) == 0);
    oe_buf_free(&b);
    json_decref(obj);
}

/* Property 5. */
static void check_payload_canon(const json_t *payload)
{
    oe_buf c, s, r;
    json_t *again = NULL, *echo;
    oe_error err;

    oe_buf_init(&c, CANON_MAX);
    oe_buf_init(&s, CANON_MAX);
    oe_buf_init(&r, CANON_MAX);
    check(canon_append(&c, payload, CANON_COMPACT) == 0);
    check(canon_append(&s, payload, CANON_SPACED) == 0);
    check(is_ascii(c.data, c.len) && is_ascii(s.data, s.len));
    check(c.len <= s.len);
    check(canon_parse(c.data, c.len, &again, &err) == 0 && json_equal(again, payload));
    json_decref(again);
    again = NULL;
    check(canon_parse(s.data, s.len, &again, &err) == 0 && json_equal(again, payload));
    json_decref(again);

    /* result_json of the echo action: {"echo": <spaced payload>} */
    echo = json_object();
    check(echo != NULL && json_object_set(echo, "echo", (json_t *)payload) == 0);
    check(canon_append(&r, echo, CANON_SPACED) == 0);
    check(r.len == strlen("{\"echo\": ") + s.len + 1);
    check(memcmp(r.data, "{\"echo\": ", 9) == 0 && memcmp(r.data + 9, s.data, s.len) == 0);
    check(r.data[r.len - 1] == '}');
    json_decref(echo);
    oe_buf_free(&c);
    oe_buf_free(&s);
    oe_buf_free(&r);
}

/* Property 6. */
static void check_fixed_point(const oe_request *req)
{
    oe_request again;
    oe_error err;
    oe_buf b;

    oe_buf_init(&b, CANON_MAX);
    check(canon_append(&b, req->root, CANON_COMPACT) == 0);
    check(request_parse(b.data, b.len, &again, &err) == 0);
    check(again.action_len == req->action_len &&
          memcmp(again.action, req->action, req->action_len) == 0);
    check(again.nonce_len == req->nonce_len &&
          memcmp(again.nonce, req->nonce, req->nonce_len) == 0);
    check(memcmp(again.action_hash, req->action_hash, 65) == 0);
    check((again.artifact == NULL) == (req->artifact == NULL));
    request_free(&again);
    oe_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    oe_request req;
    oe_error rerr, cerr;
    json_t *root = NULL;
    int rrc, crc;

    if (sodium_init() < 0)
        abort();
    oe_error_clear(&rerr);
    oe_error_clear(&cerr);
    rrc = request_parse(body, size, &req, &rerr);
    crc = canon_parse(body, size, &root, &cerr);

    /* Property 1. */
    if (crc != 0) {
        check(rrc != 0);
        check(rerr.status == cerr.status && strcmp(rerr.code, cerr.code) == 0);
        check(strcmp(rerr.detail, cerr.detail) == 0);
    } else if (rrc != 0) {
        check(rerr.status == 422 && strcmp(rerr.code, "invalid_request") == 0);
    }
    json_decref(root);

    if (rrc != 0) {
        check_error(&rerr);
        /* nothing to free: request_parse promises a zeroed request */
        check(req.root == NULL && req.action == NULL && req.payload == NULL);
        return 0;
    }
    check_invariants(&req);
    check_action_hash(&req);
    check_payload_canon(req.payload);
    check_fixed_point(&req);
    request_free(&req);
    check(req.root == NULL);
    return 0;
}
