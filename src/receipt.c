/*
 * receipt.c - the legacy receipt check (SPEC 5.1).
 *
 * The legacy receipt is sha256_hex(exec_id + ":" + result_json), with
 * result_json = json.dumps(result, sort_keys=True).  It proves nothing to a
 * third party (anyone can recompute it), but existing clients check it, so
 * it is kept byte-exact.  A result given as a string is hashed as sent; a
 * result given as an object is serialised the way the server did.
 */
#include "receipt.h"

#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "canon.h"

#define RESULT_JSON_MAX (2 * 1024 * 1024)

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

void receipt_verify_request(const char *body, size_t len, oe_answer *ans)
{
    json_t *root = NULL;
    const json_t *exec_id, *result, *receipt;
    char expected[65];
    oe_buf result_json, out;
    oe_error err;
    int valid;

    oe_buf_init(&result_json, RESULT_JSON_MAX);
    if (canon_parse(body, len, &root, &err) != 0)
        goto fail;
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
    /* exec_id may hold NUL; hash exactly the bytes the client sent. */
    {
        oe_buf msg;
        oe_buf_init(&msg, RESULT_JSON_MAX + 4096);
        oe_buf_append(&msg, json_string_value(exec_id), json_string_length(exec_id));
        oe_buf_putc(&msg, ':');
        oe_buf_append(&msg, result_json.data ? result_json.data : "", result_json.len);
        canon_sha256_hex(msg.data ? msg.data : "", msg.len, expected);
        oe_buf_free(&msg);
    }
    valid = json_string_length(receipt) == 64 &&
            sodium_memcmp(expected, json_string_value(receipt), 64) == 0;
    oe_buf_init(&out, 64);
    oe_buf_puts(&out, valid ? "{\"valid\":true}" : "{\"valid\":false}");
    answer_take(ans, 200, &out);
    goto done;

fail:
    answer_error(ans, &err);
done:
    oe_buf_free(&result_json);
    json_decref(root);
}
