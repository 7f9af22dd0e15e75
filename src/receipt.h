/*
 * receipt.h - receipts: the legacy hash (SPEC 5.1) and the signed receipts of
 * the transparency log (SPEC 5.2).
 *
 * A receipt is one log entry describing one attempt.  Its JSON is rendered
 * here in the documented key order (that is what clients see and what the
 * export holds); its leaf hash is taken over the canonical form (keys
 * sorted, compact, SPEC 3.3), which any verifier recomputes from the parsed
 * object.
 */
#ifndef OE_RECEIPT_H
#define OE_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "answer.h"
#include "buf.h"
#include "tlog.h"

typedef struct receipt_fields {
    char exec_id[37];
    char time[40];      /* YYYY-MM-DDTHH:MM:SS.ffffffZ */
    const char *action; /* borrowed */
    size_t action_len;
    char action_hash[65];
    char nonce_sha256[65];
    const char *approval_id; /* borrowed; NULL renders null */
    const char *outcome;     /* "executed", "replayed", "denied", ... (static) */
    int status;
    char result_sha256[65]; /* "" renders null */
    const char *error;      /* stable code (static) or NULL */
} receipt_fields;

/* The outcomes a receipt may record (SPEC 5.2). */
#define RECEIPT_OUTCOMES 6
extern const char *const receipt_outcomes[RECEIPT_OUTCOMES];

/* Sets time to now. */
void receipt_stamp(receipt_fields *rf);

/* Appends the receipt JSON (documented order) for entry `seq` of log
 * `origin`, and computes its leaf hash.  0 ok, -1 on overflow. */
int receipt_render(const receipt_fields *rf, const char *origin, uint64_t seq, oe_buf *out,
                   uint8_t leaf[32]);

/* Appends a JSON array of hashes, each in standard base64 (inclusion and
 * consistency proofs). */
void receipt_append_hashes(oe_buf *out, const uint8_t hashes[][32], size_t count);

/* Appends {"receipt":R,"inclusion":{"size":N,"index":I,"hashes":[...]},"checkpoint":
 * -- everything of a signed receipt but the checkpoint string and the
 * closing brace, which receipt_finish_answer adds once the note exists. */
int receipt_append_signed_head(oe_buf *out, const char *receipt, size_t receipt_len, uint64_t index,
                               uint64_t size, const uint8_t proof[][32], size_t count);

/* An answer whose bytes end with a signed receipt is stored as a prefix
 * (everything up to "checkpoint":) and finished with the note: prefix +
 * JSON string of note + "}}". */
void receipt_finish_answer(oe_answer *ans, int status, const char *prefix, size_t prefix_len,
                           const char *note, size_t note_len);

/* The origin of the log whose signed receipt ends a stored answer prefix.
 * 0 ok; -1 when the prefix does not name one plainly. */
int receipt_answer_origin(const char *prefix, size_t len, char *out, size_t cap);

/* Looks up the public key of a log by origin (this instance's or another
 * in the same database).  0 found, -1 unknown. */
typedef int (*receipt_key_fn)(void *ctx, const char *origin, unsigned char pk[32]);

/* POST /receipts/verify: the legacy form {"exec_id","result","receipt"} or
 * the signed form {"signed_receipt": {...}} -> {"valid": bool}. */
void receipt_verify_request(const char *body, size_t len, receipt_key_fn keys, void *ctx,
                            oe_answer *ans);

/* Checks one parsed signed receipt against a key.  1 valid, 0 not (why
 * names the first problem).  Used by the endpoint and the offline verifier. */
int receipt_verify_signed(const json_t *signed_receipt, receipt_key_fn keys, void *ctx, char *why,
                          size_t why_len) __attribute__((warn_unused_result));

/* The canonical leaf hash of a parsed receipt object. */
int receipt_leaf_hash(const json_t *receipt, uint8_t leaf[32]);

#endif
