/*
 * answer.c - building oe_answer values (see answer.h).
 */
#include "answer.h"

#include <stdlib.h>
#include <string.h>

#include "canon.h"

#define ANSWER_ERROR_MAX 4096

int answer_append_error_members(oe_buf *out, const oe_error *err)
{
    oe_buf_puts(out, "\"detail\":");
    if (canon_append_string(out, err->detail, err->detail_len) != 0 && !out->failed)
        oe_buf_puts(out, "\"(detail not valid UTF-8)\"");
    oe_buf_puts(out, ",\"error\":");
    canon_append_string(out, err->code, strlen(err->code));
    return out->failed ? -1 : 0;
}

void answer_error(oe_answer *ans, const oe_error *err)
{
    static const char oom[] = "{\"detail\":\"Out of memory\",\"error\":\"busy\"}";
    oe_buf b;

    oe_buf_init(&b, ANSWER_ERROR_MAX);
    oe_buf_putc(&b, '{');
    answer_append_error_members(&b, err);
    oe_buf_putc(&b, '}');
    if (b.failed) {
        oe_buf_free(&b);
        ans->status = 503;
        ans->body = strdup(oom);
        ans->body_len = ans->body ? sizeof(oom) - 1 : 0;
        return;
    }
    answer_take(ans, err->status, &b);
}

void answer_take(oe_answer *ans, int status, oe_buf *body)
{
    ans->status = status;
    ans->body = oe_buf_detach(body, &ans->body_len);
    if (ans->body == NULL)
        ans->body_len = 0;
}

void answer_free(oe_answer *ans)
{
    free(ans->body);
    ans->body = NULL;
    ans->body_len = 0;
}
