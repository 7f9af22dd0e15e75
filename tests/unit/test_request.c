/*
 * test_request.c - the /execute request schema (SPEC 3) on top of canon_parse.
 *
 * Proves the field rules (types, byte limits on both sides of each boundary,
 * counted in bytes of UTF-8, not characters), the defaults (payload {} when
 * missing or null), the documented check order (action, payload, nonce,
 * approval_artifact; 400 and 422 unsupported_json before any of them), and
 * that action_hash equals what CPython computes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "testutil.h"

/* Parses `body` and checks the outcome: status 0 means success expected. */
static int parse(const char *body, oe_request *req, oe_error *err)
{
    oe_error_clear(err);
    return request_parse(body, strlen(body), req, err);
}

static void expect_error(const char *body, int status, const char *code, const char *detail_part)
{
    oe_request req;
    oe_error err;

    if (!CHECK_INT(parse(body, &req, &err), -1)) {
        fprintf(stderr, "  accepted: %.200s\n", body);
        request_free(&req);
        return;
    }
    CHECK(req.root == NULL);
    CHECK_INT(err.status, status);
    CHECK_STR(err.code, code);
    if (!CHECK(strstr(err.detail, detail_part) != NULL))
        fprintf(stderr, "  detail \"%s\" lacks \"%s\" (body %.200s)\n", err.detail, detail_part,
                body);
}

static void expect_ok(const char *body)
{
    oe_request req;
    oe_error err;

    if (!CHECK_INT(parse(body, &req, &err), 0))
        fprintf(stderr, "  rejected %.200s: %s\n", body, err.detail);
    else
        request_free(&req);
}

/* {"action":A,"nonce":N} with A and N repeated from a unit string */
static char *body_with(const char *action_unit, int action_reps, const char *nonce_unit,
                       int nonce_reps)
{
    size_t cap =
        64 + strlen(action_unit) * (size_t)action_reps + strlen(nonce_unit) * (size_t)nonce_reps;
    char *b = malloc(cap);
    size_t n = 0;
    int i;

    n += (size_t)sprintf(b + n, "{\"action\":\"");
    for (i = 0; i < action_reps; i++)
        n += (size_t)sprintf(b + n, "%s", action_unit);
    n += (size_t)sprintf(b + n, "\",\"nonce\":\"");
    for (i = 0; i < nonce_reps; i++)
        n += (size_t)sprintf(b + n, "%s", nonce_unit);
    sprintf(b + n, "\"}");
    return b;
}

static void test_minimal_request_defaults_payload_to_empty_object(void)
{
    oe_request req;
    oe_error err;

    CHECK_INT(parse("{\"action\":\"echo\",\"nonce\":\"n1\"}", &req, &err), 0);
    CHECK_STR(req.action, "echo");
    CHECK_INT(req.action_len, 4);
    CHECK_INT(req.nonce_len, 2);
    CHECK(json_is_object(req.payload));
    CHECK_INT(json_object_size(req.payload), 0);
    /* the default lives in root, so request_free frees it with everything else */
    CHECK(json_object_get(req.root, "payload") == req.payload);
    CHECK(req.artifact == NULL);
    request_free(&req);
    CHECK(req.root == NULL);
    request_free(&req); /* harmless twice */
}

static void test_null_payload_is_empty_object(void)
{
    oe_request req;
    oe_error err;
    char absent[65];

    CHECK_INT(parse("{\"action\":\"echo\",\"nonce\":\"n1\"}", &req, &err), 0);
    memcpy(absent, req.action_hash, sizeof(absent));
    request_free(&req);
    CHECK_INT(parse("{\"action\":\"echo\",\"payload\":null,\"nonce\":\"n1\"}", &req, &err), 0);
    CHECK(json_is_object(req.payload));
    CHECK_INT(json_object_size(req.payload), 0);
    CHECK_STR(req.action_hash, absent);
    request_free(&req);
}

static void test_action_must_be_a_present_nonempty_string(void)
{
    expect_error("{\"nonce\":\"n\"}", 422, "invalid_request", "'action' is required");
    expect_error("{\"action\":1,\"nonce\":\"n\"}", 422, "invalid_request",
                 "'action' must be a string, not a number");
    expect_error("{\"action\":null,\"nonce\":\"n\"}", 422, "invalid_request",
                 "'action' must be a string, not null");
    expect_error("{\"action\":[\"echo\"],\"nonce\":\"n\"}", 422, "invalid_request", "not an array");
    expect_error("{\"action\":\"\",\"nonce\":\"n\"}", 422, "invalid_request",
                 "'action' must be 1 to 128 bytes");
}

static void test_action_limit_is_128_bytes_not_characters(void)
{
    char *b;

    b = body_with("a", 128, "n", 1);
    expect_ok(b);
    free(b);
    b = body_with("a", 129, "n", 1);
    expect_error(b, 422, "invalid_request", "got 129 bytes");
    free(b);
    b = body_with("\xc3\xa9", 64, "n", 1); /* 64 characters, 128 bytes */
    expect_ok(b);
    free(b);
    b = body_with("\\u00e9", 65, "n", 1); /* 65 characters, 130 bytes */
    expect_error(b, 422, "invalid_request", "got 130 bytes");
    free(b);
    b = body_with("\xf0\x9f\x98\x80", 32, "n", 1); /* 32 emoji, 128 bytes */
    expect_ok(b);
    free(b);
    b = body_with("\xf0\x9f\x98\x80", 33, "n", 1); /* 33 emoji, 132 bytes */
    expect_error(b, 422, "invalid_request", "'action'");
    free(b);
}

static void test_nonce_limit_is_256_bytes_not_characters(void)
{
    char *b;

    b = body_with("echo", 1, "n", 256);
    expect_ok(b);
    free(b);
    b = body_with("echo", 1, "n", 257);
    expect_error(b, 422, "invalid_request", "'nonce' must be 1 to 256 bytes of UTF-8, got 257");
    free(b);
    b = body_with("echo", 1, "\xc3\xa9", 128); /* 128 characters, 256 bytes */
    expect_ok(b);
    free(b);
    b = body_with("echo", 1, "\xe2\x82\xac", 86); /* 86 characters, 258 bytes */
    expect_error(b, 422, "invalid_request", "got 258 bytes");
    free(b);
    expect_error("{\"action\":\"echo\",\"nonce\":\"\"}", 422, "invalid_request",
                 "'nonce' must be 1 to 256");
    expect_error("{\"action\":\"echo\"}", 422, "invalid_request", "'nonce' is required");
    expect_error("{\"action\":\"echo\",\"nonce\":7}", 422, "invalid_request",
                 "'nonce' must be a string, not a number");
}

static void test_nonce_may_hold_nul(void)
{
    oe_request req;
    oe_error err;

    CHECK_INT(parse("{\"action\":\"echo\",\"nonce\":\"a\\u0000b\"}", &req, &err), 0);
    CHECK_INT(req.nonce_len, 3);
    CHECK_MEM(req.nonce, "a\0b", 3);
    request_free(&req);
}

/* An action holding U+0000 is a string like any other: it is looked up
 * by its bytes and so is unknown (never "ec"), and quoted whole. */
static void test_action_may_hold_nul(void)
{
    oe_request req;
    oe_error err;

    CHECK_INT(parse("{\"action\":\"ec\\u0000ho\",\"nonce\":\"n\"}", &req, &err), 0);
    CHECK_INT(req.action_len, 5);
    CHECK_MEM(req.action, "ec\0ho", 5);
    request_free(&req);
}

static void test_payload_and_artifact_must_be_objects_or_null(void)
{
    oe_request req;
    oe_error err;

    expect_error("{\"action\":\"echo\",\"payload\":[],\"nonce\":\"n\"}", 422, "invalid_request",
                 "'payload' must be an object or null, not an array");
    expect_error("{\"action\":\"echo\",\"payload\":\"{}\",\"nonce\":\"n\"}", 422, "invalid_request",
                 "'payload' must be an object or null, not a string");
    expect_error("{\"action\":\"echo\",\"payload\":false,\"nonce\":\"n\"}", 422, "invalid_request",
                 "not a boolean");
    expect_error("{\"action\":\"echo\",\"nonce\":\"n\",\"approval_artifact\":\"sig\"}", 422,
                 "invalid_request", "'approval_artifact' must be an object or null, not a string");
    expect_error("{\"action\":\"echo\",\"nonce\":\"n\",\"approval_artifact\":[]}", 422,
                 "invalid_request", "'approval_artifact'");
    CHECK_INT(parse("{\"action\":\"echo\",\"nonce\":\"n\",\"approval_artifact\":null}", &req, &err),
              0);
    CHECK(req.artifact == NULL);
    request_free(&req);
    CHECK_INT(parse("{\"action\":\"echo\",\"nonce\":\"n\",\"approval_artifact\":{}}", &req, &err),
              0);
    CHECK(json_is_object(req.artifact));
    CHECK(req.artifact == json_object_get(req.root, "approval_artifact"));
    request_free(&req);
}

static void test_unknown_fields_are_ignored(void)
{
    oe_request req;
    oe_error err;
    char plain[65];

    CHECK_INT(parse("{\"action\":\"echo\",\"nonce\":\"n\",\"payload\":{\"x\":1}}", &req, &err), 0);
    memcpy(plain, req.action_hash, sizeof(plain));
    request_free(&req);
    CHECK_INT(parse("{\"extra\":[1,{}],\"action\":\"echo\",\"nonce\":\"n\",\"payload\":{\"x\":1},"
                    "\"version\":2}",
                    &req, &err),
              0);
    CHECK_STR(req.action_hash, plain);
    request_free(&req);
}

static void test_checks_run_in_documented_order(void)
{
    /* 400 before 422 unsupported_json before invalid_request */
    expect_error("[1]", 400, "not_an_object", "not an array");
    expect_error("{\"action\":1,\"action\":2} x", 400, "invalid_json", "Invalid JSON");
    expect_error("{\"payload\":[],\"payload\":1}", 422, "unsupported_json", "duplicate");
    expect_error("{\"action\":5,\"nonce\":\"n\",\"x\":1e400}", 422, "unsupported_json", "double");
    /* then action, payload, nonce, approval_artifact */
    expect_error("{\"payload\":[],\"approval_artifact\":1}", 422, "invalid_request", "'action'");
    expect_error("{\"action\":\"echo\",\"payload\":[],\"approval_artifact\":1}", 422,
                 "invalid_request", "'payload'");
    expect_error("{\"action\":\"echo\",\"payload\":{},\"approval_artifact\":1}", 422,
                 "invalid_request", "'nonce'");
    expect_error("{\"action\":\"echo\",\"payload\":{},\"nonce\":\"n\",\"approval_artifact\":1}",
                 422, "invalid_request", "'approval_artifact'");
}

static void test_action_hash_matches_python(void)
{
    oe_request req;
    oe_error err;

    /* Computed with Debian's python3:
     *   h = lambda a, p: hashlib.sha256(json.dumps({"action": a, "payload": p},
     *         sort_keys=True, separators=(",", ":")).encode()).hexdigest()
     *   h("echo", {})
     *   h("echo", {"msg": "h\u00e9llo \U0001f600", "n": 1.5, "z": [1, 2.0, 1e16], "a": None})
     *   h("add", {"a": 1E2, "b": -0})                                          */
    CHECK_INT(parse("{\"nonce\":\"n\",\"action\":\"echo\"}", &req, &err), 0);
    CHECK_STR(req.action_hash, "4d9b97d6e60f36b9c5d3107933b358b55c858aa5814c742b4783ce871e2ca981");
    request_free(&req);
    CHECK_INT(parse("{\"action\":\"echo\",\"nonce\":\"n\",\"payload\":{\"z\":[1,2.0,1E16],"
                    "\"n\":1.5,\"msg\":\"h\xc3\xa9llo \\ud83d\\ude00\",\"a\":null}}",
                    &req, &err),
              0);
    CHECK_STR(req.action_hash, "c69a975e23ccad957ee229efc5ff963b7f576dd9285355cb607eec917d07203a");
    request_free(&req);
    CHECK_INT(
        parse("{\"action\":\"add\",\"nonce\":\"n\",\"payload\":{\"b\":-0,\"a\":1E2}}", &req, &err),
        0);
    CHECK_STR(req.action_hash, "8bd0e2d33fc7620a7abc6ad3a2a55e8fae31f7577aec34008213a6ccaf23df38");
    request_free(&req);
}

static void test_payload_at_maximum_depth_is_hashed(void)
{
    /* body depth 64 = the object plus 63 levels of payload */
    char body[1024];
    oe_request req;
    oe_error err;
    int n = 0, i;

    n += sprintf(body + n, "{\"action\":\"echo\",\"nonce\":\"n\",\"payload\":");
    for (i = 0; i < 63; i++)
        n += sprintf(body + n, "{\"a\":");
    n += sprintf(body + n, "1");
    for (i = 0; i < 64; i++)
        body[n++] = '}';
    body[n] = '\0';
    CHECK_INT(parse(body, &req, &err), 0);
    CHECK_INT(strlen(req.action_hash), 64);
    request_free(&req);
    /* one level more is the parser's 422 */
    memmove(body + 5, body, (size_t)n + 1);
    memcpy(body, "{\"x\":", 5);
    body[n + 5] = '}';
    body[n + 6] = '\0';
    expect_error(body, 422, "unsupported_json", "deeper than 64");
}

int main(void)
{
    RUN(test_minimal_request_defaults_payload_to_empty_object);
    RUN(test_null_payload_is_empty_object);
    RUN(test_action_must_be_a_present_nonempty_string);
    RUN(test_action_limit_is_128_bytes_not_characters);
    RUN(test_nonce_limit_is_256_bytes_not_characters);
    RUN(test_nonce_may_hold_nul);
    RUN(test_action_may_hold_nul);
    RUN(test_payload_and_artifact_must_be_objects_or_null);
    RUN(test_unknown_fields_are_ignored);
    RUN(test_checks_run_in_documented_order);
    RUN(test_action_hash_matches_python);
    RUN(test_payload_at_maximum_depth_is_hashed);
    return tu_finish();
}
