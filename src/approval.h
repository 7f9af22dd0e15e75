/*
 * approval.h - ClawShield approval artifacts (SPEC 4).
 *
 * approval_check runs every check of SPEC 4 in the stated order, except the
 * last one, single use, which needs the store: the caller records the
 * approval's message hash and approval_id in the same transaction that
 * claims the nonce.
 */
#ifndef OE_APPROVAL_H
#define OE_APPROVAL_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"
#include "keys.h"

#define APPROVAL_MAX_SKEW_US (300LL * 1000000LL)

typedef struct approval_policy {
    const keys_public_set *keys; /* NULL or empty: key not configured */
    const char *tenant_id;       /* NULL: any tenant */
} approval_policy;

typedef struct approval_verified {
    int signature_ok;                 /* set as soon as the signature verified */
    char *approval_id;                /* malloc'd copy once signature_ok; NULL otherwise */
    unsigned char message_sha256[32]; /* SHA-256 of the signed message (single-use key) */
    int64_t expires_us;               /* expires_at, once the time window passed */
} approval_verified;

typedef enum {
    APPROVAL_FULL,  /* a new execution: everything including expiry */
    APPROVAL_REPLAY /* a replay: every check except expiry (SPEC 3.2) */
} approval_mode;

/* artifact: the request's approval_artifact (NULL when absent/null).
 * action_hash_hex: this request's action_hash.  now_us: microseconds since
 * the Unix epoch, UTC.  Returns 0 when the artifact passes, else -1 with err
 * set to the SPEC's 403 code and Compat text.  `out` is filled as far as the
 * checks got (signature_ok, approval_id) and must be released with
 * approval_verified_free in both cases. */
int approval_check(const json_t *artifact, const char *action_hash_hex,
                   const approval_policy *policy, int64_t now_us, approval_mode mode,
                   approval_verified *out, oe_error *err) __attribute__((warn_unused_result));
void approval_verified_free(approval_verified *v);

/* Parses the SPEC 4 time grammar YYYY-MM-DDTHH:MM:SS(.d{1,6})?(Z|+-HH:MM)?
 * (naive = UTC) into microseconds since the epoch.  0 ok, -1 invalid. */
int approval_parse_time(const char *s, size_t len, int64_t *out_us);
/* Formats microseconds since the epoch as Python's naive isoformat():
 * YYYY-MM-DDTHH:MM:SS or ...SS.ffffff when micros != 0.  out >= 32 bytes. */
void approval_format_time(int64_t us, char out[32]);

/* Mints an artifact (what a ClawShield approver does): fills approval_id
 * (random uuid4), tenant, action_hash, issued_at = now, expires_at = now+ttl,
 * signature.  New reference; NULL on error. */
json_t *approval_mint(const keys_private *key, const char *tenant_id, const char *action_hash_hex,
                      int64_t now_us, int64_t ttl_us);

#endif
