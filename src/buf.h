/*
 * buf.h - bounded growable byte buffer (after curl's dynbuf).
 *
 * Every buffer is created with a maximum size.  An append that would pass it
 * (or that cannot allocate) fails, leaves the contents as they were and marks
 * the buffer failed, so a sequence of appends can be checked once at the end.
 * The data is always NUL-terminated for convenience; `len` excludes the NUL.
 */
#ifndef OE_BUF_H
#define OE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct oe_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int failed;
} oe_buf;

void oe_buf_init(oe_buf *b, size_t max);
/* 0 on success, -1 when over max or out of memory (then b->failed is set). */
int oe_buf_append(oe_buf *b, const void *data, size_t len);
int oe_buf_puts(oe_buf *b, const char *s);
int oe_buf_putc(oe_buf *b, char c);
/* Decimal, without printf's cost (receipts are rendered on the writer). */
int oe_buf_put_u64(oe_buf *b, uint64_t v);
/* Standard base64 with padding (RFC 4648 section 4) of *public* bytes:
 * a table lookup per character, so not constant-time -- never use it for
 * secrets (keys go through libsodium's sodium_bin2base64).  Receipts'
 * inclusion proofs are rendered with it on the writer thread, where
 * libsodium's constant-time encoder was a tenth of the CPU. */
int oe_buf_put_base64(oe_buf *b, const void *data, size_t len);
int oe_buf_printf(oe_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void oe_buf_reset(oe_buf *b);
/* Hands the malloc'd data to the caller (who frees it) and empties b. */
char *oe_buf_detach(oe_buf *b, size_t *len);
void oe_buf_free(oe_buf *b);

#endif
