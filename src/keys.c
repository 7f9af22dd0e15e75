/*
 * keys.c - Ed25519 keys in PEM: SPKI public keys and PKCS#8 private keys.
 *
 * We parse PEM and DER by hand instead of going through OpenSSL because the
 * only thing we accept is one exact byte layout, and a hand-written check of
 * that layout is shorter and easier to audit than asking a general ASN.1
 * library which of its many key types it found.  The layouts (RFC 8410):
 *
 *   SubjectPublicKeyInfo, 44 bytes:
 *     30 2a  30 05  06 03 2b 65 70  03 21 00 <32-byte public key>
 *   PKCS#8 v1 (what `openssl genpkey -algorithm ed25519` writes), 48 bytes:
 *     30 2e  02 01 00  30 05 06 03 2b 65 70  04 22 04 20 <32-byte seed>
 *   PKCS#8 v2 / OneAsymmetricKey (RFC 5958) with the public key attached:
 *     30 51  02 01 01  30 05 06 03 2b 65 70  04 22 04 20 <seed>  81 21 00 <pk>
 *
 * Rather than a single memcmp against those templates, the DER is walked one
 * TLV at a time so that a refusal can say *what* was found instead ("RSA key
 * (OID 1.2.840.113549.1.1.1), expected Ed25519", "truncated DER", "trailing
 * data"); an operator who pasted the wrong key needs that sentence more than
 * anything else.  After the walk the result is still compared against the
 * exact template, so the walk can only add precision, never leniency.
 *
 * PEM text (RFC 7468, strict form):
 *   - Outside the blocks only whitespace is allowed.  Several PUBLIC KEY
 *     blocks may follow one another (key rotation, SPEC 1).
 *   - Inside a block, whitespace (space, tab, CR, LF) is ignored and the rest
 *     must be canonical base64: padding present, unused bits zero.  Headers
 *     such as "Proc-Type:" (legacy encrypted PEM) are therefore refused.
 *   - The two-character sequence backslash + 'n' is read as a newline.  An
 *     environment variable cannot easily hold newlines in every deployment
 *     tool (docker --env-file, systemd Environment=, many CI secret stores),
 *     so people write the PEM on one line with literal "\n".  A backslash can
 *     never occur in valid PEM, so this reading is unambiguous.
 *
 * Public keys are also checked to be a canonical encoding of a point of the
 * prime-order subgroup (crypto_core_ed25519_is_valid_point).  libsodium's
 * verify would reject small-order and non-canonical keys at every request
 * anyway; refusing them at load turns "every approval is denied" into a
 * start-up message that names the problem.  No honest key generator produces
 * a key that fails this check.
 *
 * Invariants: every function fills its `why` with a human reason on failure
 * and wipes its output struct; buffers that held secret material (private
 * PEM text, DER, seeds) are wiped with sodium_memzero before they are freed.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util.h"

/* Generous bounds: a 16-key rotation set is about 2 KiB, and even an RSA-16384
 * key (refused, but we still want to name it) fits. */
#define PEM_MAX_TEXT (64 * 1024)
#define PEM_MAX_BODY (16 * 1024)
#define KEY_FILE_MAX (64 * 1024)

static const unsigned char ED25519_OID[] = {0x2b, 0x65, 0x70};

static const unsigned char SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                              0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
static const unsigned char PKCS8_V1_PREFIX[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                                  0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

/* ------------------------------------------------------------------------
 * PEM framing
 * ------------------------------------------------------------------------ */

typedef struct pem_block {
    const char *label; /* e.g. "PUBLIC KEY", not NUL-terminated */
    size_t label_len;
    const char *body; /* between the BEGIN and END lines */
    size_t body_len;
} pem_block;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int label_is(const pem_block *b, const char *s)
{
    return b->label_len == strlen(s) && memcmp(b->label, s, b->label_len) == 0;
}

/* Copies text, turning the two characters "\n" into a newline (see the file
 * comment).  The copy is NUL-terminated; caller frees (and wipes, for
 * private keys). */
static char *pem_unescape(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t i, n = 0;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        if (text[i] == '\\' && i + 1 < len && text[i + 1] == 'n') {
            out[n++] = '\n';
            i++;
        } else {
            out[n++] = text[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* The unescaped copy of a configured PEM text that at least looks like
 * PEM, or NULL with the reason (a size limit, no BEGIN line: the usual
 * mistake is a file path or bare base64 where the PEM text belongs).
 * Wiped before it is freed: it may hold a private key. */
static char *pem_open(const char *text, size_t len, const char *label, size_t *tlen, char *why,
                      size_t why_len)
{
    char *t;

    if (len > PEM_MAX_TEXT) {
        oe_message(why, why_len, "PEM text too large (%zu bytes)", len);
        return NULL;
    }
    if ((t = pem_unescape(text, len, tlen)) == NULL) {
        oe_message(why, why_len, "out of memory");
        return NULL;
    }
    if (memmem(t, *tlen, "-----BEGIN ", 11) == NULL) {
        oe_message(why, why_len, "not a PEM %s block (no -----BEGIN %s----- line found)", label,
                   label);
        sodium_memzero(t, *tlen);
        free(t);
        return NULL;
    }
    return t;
}

/* Finds the next block at or after *pos.  Returns 1 with the block filled,
 * 0 when only whitespace remains, -1 with a reason on malformed framing. */
static int pem_next(const char *t, size_t len, size_t *pos, pem_block *b, char *why, size_t why_len)
{
    static const char begin[] = "-----BEGIN ";
    static const char dashes[] = "-----";
    size_t p = *pos, label_start, body_start;
    char end_line[96];
    const char *end;
    int n;

    while (p < len && is_space(t[p]))
        p++;
    if (p == len)
        return 0;
    if (len - p < sizeof(begin) - 1 || memcmp(t + p, begin, sizeof(begin) - 1) != 0) {
        oe_message(why, why_len, "text outside a PEM block (expected -----BEGIN ...-----)");
        return -1;
    }
    p += sizeof(begin) - 1;
    label_start = p;
    /* RFC 7468 labels: printable ASCII without '-' at the ends; a bounded
     * length keeps the END line we build below small. */
    while (p < len && t[p] != '-' && t[p] != '\n' && p - label_start < 64)
        p++;
    if (len - p < sizeof(dashes) - 1 || memcmp(t + p, dashes, sizeof(dashes) - 1) != 0 ||
        p == label_start) {
        oe_message(why, why_len, "malformed PEM BEGIN line");
        return -1;
    }
    b->label = t + label_start;
    b->label_len = p - label_start;
    body_start = p + sizeof(dashes) - 1;

    n = snprintf(end_line, sizeof(end_line), "-----END %.*s-----", (int)b->label_len, b->label);
    if (n < 0 || (size_t)n >= sizeof(end_line)) {
        oe_message(why, why_len, "malformed PEM BEGIN line");
        return -1;
    }
    end = memmem(t + body_start, len - body_start, end_line, (size_t)n);
    if (end == NULL) {
        oe_message(why, why_len, "PEM block without its %s line", end_line);
        return -1;
    }
    b->body = t + body_start;
    b->body_len = (size_t)(end - b->body);
    *pos = (size_t)(end - t) + (size_t)n;
    return 1;
}

/* Decodes a block body: whitespace skipped, everything else canonical base64.
 * Returns the decoded length or -1 with a reason. */
static long pem_decode_body(const pem_block *b, unsigned char *der, size_t der_max, char *why,
                            size_t why_len)
{
    char *b64 = NULL;
    size_t i, n = 0, der_len = 0;
    long ret = -1;

    if (b->body_len > PEM_MAX_BODY) {
        oe_message(why, why_len, "PEM block too large (%zu bytes) for an Ed25519 key", b->body_len);
        goto out;
    }
    b64 = malloc(b->body_len + 1);
    if (b64 == NULL) {
        oe_message(why, why_len, "out of memory");
        goto out;
    }
    /* Filter ourselves rather than passing an `ignore` set to libsodium:
     * sodium_base642bin looks characters up with strchr, which also matches
     * a NUL byte, so it would silently skip NULs in the body. */
    for (i = 0; i < b->body_len; i++) {
        char c = b->body[i];
        if (is_space(c))
            continue;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=')) {
            oe_message(why, why_len, "bad base64 in PEM block (character 0x%02x)",
                       (unsigned char)c);
            goto out;
        }
        b64[n++] = c;
    }
    if (n == 0) {
        oe_message(why, why_len, "empty PEM block");
        goto out;
    }
    if (sodium_base642bin(der, der_max, b64, n, NULL, &der_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0) {
        oe_message(why, why_len, "bad base64 in PEM block (not canonical padded base64)");
        goto out;
    }
    ret = (long)der_len;
out:
    if (b64 != NULL) {
        sodium_memzero(b64, b->body_len + 1);
        free(b64);
    }
    return ret;
}

/* ------------------------------------------------------------------------
 * DER walking
 * ------------------------------------------------------------------------ */

typedef struct der {
    const unsigned char *p;
    const unsigned char *end;
} der;

/* Reads one TLV from c into *content (tag in *tag).  DER only: definite,
 * minimal lengths, single-byte tags.  Returns 0 or -1 with a reason. */
static int der_next(der *c, unsigned char *tag, der *content, char *why, size_t why_len)
{
    size_t avail = (size_t)(c->end - c->p), len, nlen, i;
    const unsigned char *p = c->p;

    if (avail < 2) {
        oe_message(why, why_len, "truncated DER");
        return -1;
    }
    *tag = p[0];
    if ((p[0] & 0x1f) == 0x1f) {
        oe_message(why, why_len, "malformed DER (multi-byte tag)");
        return -1;
    }
    len = p[1];
    p += 2;
    avail -= 2;
    if (len & 0x80) {
        nlen = len & 0x7f;
        if (nlen == 0) {
            oe_message(why, why_len, "malformed DER (indefinite length is BER, not DER)");
            return -1;
        }
        if (nlen > sizeof(size_t) - 1 || nlen > avail) {
            oe_message(why, why_len, "truncated DER");
            return -1;
        }
        len = 0;
        for (i = 0; i < nlen; i++)
            len = (len << 8) | p[i];
        if (len < 0x80 || p[0] == 0) {
            oe_message(why, why_len, "malformed DER (non-minimal length)");
            return -1;
        }
        p += nlen;
        avail -= nlen;
    }
    if (len > avail) {
        oe_message(why, why_len, "truncated DER");
        return -1;
    }
    content->p = p;
    content->end = p + len;
    c->p = p + len;
    return 0;
}

/* Dotted form of an OID's content bytes, for messages. */
static void oid_to_text(const unsigned char *p, size_t len, char *out, size_t out_len)
{
    size_t i, used = 0;
    unsigned long long v = 0;
    int first = 1, n;

    out[0] = '\0';
    for (i = 0; i < len && used < out_len; i++) {
        if (v > (ULLONG_MAX >> 7)) {
            snprintf(out, out_len, "(unparsable)");
            return;
        }
        v = (v << 7) | (p[i] & 0x7f);
        if (p[i] & 0x80)
            continue;
        if (first) {
            unsigned long long arc0 = v < 40 ? 0 : v < 80 ? 1 : 2;
            n = snprintf(out + used, out_len - used, "%llu.%llu", arc0, v - arc0 * 40);
            first = 0;
        } else {
            n = snprintf(out + used, out_len - used, ".%llu", v);
        }
        if (n < 0)
            return;
        used += (size_t)n;
        v = 0;
    }
    if (len == 0 || (p[len - 1] & 0x80))
        snprintf(out, out_len, "(unparsable)");
}

/* Reads an AlgorithmIdentifier and insists on Ed25519 without parameters.
 * Other algorithms are named, because "RSA key" is the usual mistake. */
static int der_expect_ed25519_algid(der *c, char *why, size_t why_len)
{
    static const struct {
        const char *dotted;
        const char *name;
    } known[] = {
        {"1.2.840.113549.1.1.1", "RSA key"}, {"1.2.840.113549.1.1.10", "RSA-PSS key"},
        {"1.2.840.10045.2.1", "EC key"},     {"1.2.840.10040.4.1", "DSA key"},
        {"1.3.101.110", "X25519 key"},       {"1.3.101.111", "X448 key"},
        {"1.3.101.113", "Ed448 key"},        {"1.2.156.10197.1.301", "SM2 key"},
    };
    der algid, oid;
    unsigned char tag;
    char dotted[128];
    size_t i;

    if (der_next(c, &tag, &algid, why, why_len) != 0)
        return -1;
    if (tag != 0x30) {
        oe_message(why, why_len, "malformed key (AlgorithmIdentifier is not a SEQUENCE)");
        return -1;
    }
    if (der_next(&algid, &tag, &oid, why, why_len) != 0)
        return -1;
    if (tag != 0x06) {
        oe_message(why, why_len, "malformed key (no algorithm OID)");
        return -1;
    }
    if ((size_t)(oid.end - oid.p) != sizeof(ED25519_OID) ||
        memcmp(oid.p, ED25519_OID, sizeof(ED25519_OID)) != 0) {
        oid_to_text(oid.p, (size_t)(oid.end - oid.p), dotted, sizeof(dotted));
        for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
            if (strcmp(dotted, known[i].dotted) == 0) {
                oe_message(why, why_len, "%s (OID %s), expected Ed25519 (OID 1.3.101.112)",
                           known[i].name, dotted);
                return -1;
            }
        }
        oe_message(why, why_len,
                   "unsupported key algorithm (OID %s), expected Ed25519 (OID 1.3.101.112)",
                   dotted);
        return -1;
    }
    if (algid.p != algid.end) {
        oe_message(why, why_len, "malformed Ed25519 key (RFC 8410 forbids algorithm parameters)");
        return -1;
    }
    return 0;
}

static int parse_spki_der(const unsigned char *d, size_t len, unsigned char pk[32], char *why,
                          size_t why_len)
{
    der all = {d, d + len}, spki, bits;
    unsigned char tag;

    if (der_next(&all, &tag, &spki, why, why_len) != 0)
        return -1;
    if (tag != 0x30) {
        oe_message(why, why_len, "not a DER SubjectPublicKeyInfo (no outer SEQUENCE)");
        return -1;
    }
    if (all.p != all.end) {
        oe_message(why, why_len, "trailing data after the DER SubjectPublicKeyInfo");
        return -1;
    }
    if (der_expect_ed25519_algid(&spki, why, why_len) != 0)
        return -1;
    if (der_next(&spki, &tag, &bits, why, why_len) != 0)
        return -1;
    if (tag != 0x03) {
        oe_message(why, why_len, "malformed Ed25519 public key (no BIT STRING)");
        return -1;
    }
    if (bits.end - bits.p != 33 || bits.p[0] != 0) {
        oe_message(why, why_len, "Ed25519 public key must be 32 bytes, found %ld",
                   (long)(bits.end - bits.p) - 1);
        return -1;
    }
    if (spki.p != spki.end) {
        oe_message(why, why_len, "trailing data inside the SubjectPublicKeyInfo");
        return -1;
    }
    /* Belt and braces: the walk above must have proven exactly this. */
    if (len != 44 || memcmp(d, SPKI_PREFIX, sizeof(SPKI_PREFIX)) != 0) {
        oe_message(why, why_len, "not the RFC 8410 Ed25519 SubjectPublicKeyInfo encoding");
        return -1;
    }
    memcpy(pk, d + 12, 32);
    return 0;
}

/* seed and attached_pk (when has_pk) point into d. */
static int parse_pkcs8_der(const unsigned char *d, size_t len, const unsigned char **seed,
                           const unsigned char **attached_pk, char *why, size_t why_len)
{
    der all = {d, d + len}, p8, ver, outer_oct, inner, pub;
    unsigned char tag;

    *attached_pk = NULL;
    if (der_next(&all, &tag, &p8, why, why_len) != 0)
        return -1;
    if (tag != 0x30) {
        oe_message(why, why_len, "not a DER PKCS#8 PrivateKeyInfo (no outer SEQUENCE)");
        return -1;
    }
    if (all.p != all.end) {
        oe_message(why, why_len, "trailing data after the DER PrivateKeyInfo");
        return -1;
    }
    if (der_next(&p8, &tag, &ver, why, why_len) != 0)
        return -1;
    if (tag != 0x02 || ver.end - ver.p != 1 || (ver.p[0] != 0 && ver.p[0] != 1)) {
        oe_message(why, why_len, "unsupported PKCS#8 version (expected v1 or v2)");
        return -1;
    }
    if (der_expect_ed25519_algid(&p8, why, why_len) != 0)
        return -1;
    if (der_next(&p8, &tag, &outer_oct, why, why_len) != 0)
        return -1;
    if (tag != 0x04) {
        oe_message(why, why_len, "malformed PKCS#8 (privateKey is not an OCTET STRING)");
        return -1;
    }
    if (der_next(&outer_oct, &tag, &inner, why, why_len) != 0)
        return -1;
    if (tag != 0x04 || inner.end - inner.p != 32 || outer_oct.p != outer_oct.end) {
        oe_message(why, why_len, "Ed25519 private key must be a 32-byte seed (RFC 8410)");
        return -1;
    }
    *seed = inner.p;
    if (p8.p != p8.end && p8.p[0] == 0xa0) {
        oe_message(why, why_len, "PKCS#8 attributes are not supported");
        return -1;
    }
    if (p8.p != p8.end && p8.p[0] == 0x81) {
        if (ver.p[0] != 1) {
            oe_message(why, why_len, "malformed PKCS#8 (public key attached to a v1 key)");
            return -1;
        }
        if (der_next(&p8, &tag, &pub, why, why_len) != 0)
            return -1;
        if (pub.end - pub.p != 33 || pub.p[0] != 0) {
            oe_message(why, why_len, "attached Ed25519 public key must be 32 bytes");
            return -1;
        }
        *attached_pk = pub.p + 1;
    }
    if (p8.p != p8.end) {
        oe_message(why, why_len, "trailing data inside the PrivateKeyInfo");
        return -1;
    }
    /* Belt and braces: the walk above must have proven one of the three
     * images in the file comment (v2 may omit the public key, RFC 5958). */
    if (len != (*attached_pk != NULL ? 83u : 48u) || memcmp(d + 5, PKCS8_V1_PREFIX + 5, 11) != 0 ||
        d[2] != 0x02 || d[3] != 0x01 || d[4] != ver.p[0]) {
        oe_message(why, why_len, "not the RFC 8410 Ed25519 PKCS#8 encoding");
        return -1;
    }
    return 0;
}

/* Names the usual wrong blocks, for a useful start-up message. */
static void explain_label(const pem_block *b, const char *wanted, char *why, size_t why_len)
{
    if (label_is(b, "RSA PUBLIC KEY") || label_is(b, "RSA PRIVATE KEY"))
        oe_message(why, why_len, "RSA key (PKCS#1 %.*s block), expected Ed25519", (int)b->label_len,
                   b->label);
    else if (label_is(b, "EC PRIVATE KEY") || label_is(b, "EC PARAMETERS"))
        oe_message(why, why_len, "EC key (SEC1 %.*s block), expected Ed25519", (int)b->label_len,
                   b->label);
    else if (label_is(b, "ENCRYPTED PRIVATE KEY"))
        oe_message(why, why_len,
                   "encrypted PKCS#8 keys are not supported; decrypt with "
                   "`openssl pkey -in KEY -out PLAIN`");
    else if (label_is(b, "OPENSSH PRIVATE KEY"))
        oe_message(why, why_len, "OpenSSH key format is not supported, expected PKCS#8 PEM");
    else if (strcmp(wanted, "PUBLIC KEY") == 0 && b->label_len >= 11 &&
             memcmp(b->label + b->label_len - 11, "PRIVATE KEY", 11) == 0)
        oe_message(why, why_len,
                   "found a %.*s block where a PUBLIC KEY is expected: configure the "
                   "public key, and keep the private key secret",
                   (int)b->label_len, b->label);
    else
        oe_message(why, why_len, "not a PEM %s block (found %.*s)", wanted, (int)b->label_len,
                   b->label);
}

/* ------------------------------------------------------------------------
 * Public interface
 * ------------------------------------------------------------------------ */

void keys_key_id(const unsigned char pk[32], char out[KEYS_ID_LEN + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, pk, 32);
    sodium_bin2hex(out, KEYS_ID_LEN + 1, h, KEYS_ID_LEN / 2);
}

int keys_parse_public_pem(const char *text, size_t len, keys_public_set *out, char *why,
                          size_t why_len)
{
    char *t = NULL;
    size_t tlen = 0, pos = 0, nblock = 0;
    unsigned char der_buf[PEM_MAX_BODY];
    char inner[200];
    pem_block b;
    long dlen;
    int r, ret = -1;

    memset(out, 0, sizeof(*out));
    if ((t = pem_open(text, len, "PUBLIC KEY", &tlen, why, why_len)) == NULL)
        goto out;
    for (;;) {
        r = pem_next(t, tlen, &pos, &b, inner, sizeof(inner));
        if (r == 0)
            break;
        nblock++;
        if (r < 0)
            goto block_error;
        if (!label_is(&b, "PUBLIC KEY")) {
            explain_label(&b, "PUBLIC KEY", inner, sizeof(inner));
            goto block_error;
        }
        if (out->count == KEYS_MAX_PUBLIC) {
            oe_message(why, why_len, "more than %d PUBLIC KEY blocks", KEYS_MAX_PUBLIC);
            goto out;
        }
        dlen = pem_decode_body(&b, der_buf, sizeof(der_buf), inner, sizeof(inner));
        if (dlen < 0)
            goto block_error;
        if (parse_spki_der(der_buf, (size_t)dlen, out->keys[out->count].pk, inner, sizeof(inner)) !=
            0)
            goto block_error;
        if (crypto_core_ed25519_is_valid_point(out->keys[out->count].pk) != 1) {
            snprintf(inner, sizeof(inner),
                     "Ed25519 public key is not a valid curve point "
                     "(small order or non-canonical encoding)");
            goto block_error;
        }
        keys_key_id(out->keys[out->count].pk, out->keys[out->count].key_id);
        out->count++;
    }
    if (out->count == 0) {
        oe_message(why, why_len, "not a PEM PUBLIC KEY block (no block found)");
        goto out;
    }
    ret = 0;
    goto out;

block_error:
    /* Say which block when there are several: rotation sets are long. */
    if (nblock > 1)
        oe_message(why, why_len, "PEM block %zu: %s", nblock, inner);
    else
        oe_message(why, why_len, "%s", inner);
out:
    if (ret != 0)
        memset(out, 0, sizeof(*out));
    free(t);
    return ret;
}

int keys_parse_private_pem(const char *text, size_t len, keys_private *out, char *why,
                           size_t why_len)
{
    char *t = NULL;
    size_t tlen = 0, pos = 0;
    unsigned char der_buf[PEM_MAX_BODY];
    unsigned char seed[32];
    const unsigned char *seed_p, *attached;
    pem_block b;
    long dlen = 0;
    int r, ret = -1;

    sodium_memzero(out, sizeof(*out));
    if (sodium_init() < 0) {
        oe_message(why, why_len, "libsodium failed to initialise");
        goto out;
    }
    if ((t = pem_open(text, len, "PRIVATE KEY", &tlen, why, why_len)) == NULL)
        goto out;
    r = pem_next(t, tlen, &pos, &b, why, why_len);
    if (r <= 0) {
        if (r == 0)
            oe_message(why, why_len, "not a PEM PRIVATE KEY block (no block found)");
        goto out;
    }
    if (!label_is(&b, "PRIVATE KEY")) {
        explain_label(&b, "PRIVATE KEY", why, why_len);
        goto out;
    }
    dlen = pem_decode_body(&b, der_buf, sizeof(der_buf), why, why_len);
    if (dlen < 0)
        goto out;
    if (parse_pkcs8_der(der_buf, (size_t)dlen, &seed_p, &attached, why, why_len) != 0)
        goto out;
    memcpy(seed, seed_p, sizeof(seed));
    crypto_sign_seed_keypair(out->pk, out->sk, seed);
    if (attached != NULL && sodium_memcmp(attached, out->pk, 32) != 0) {
        oe_message(why, why_len, "attached public key does not match the private key");
        goto out;
    }
    /* One key per file: a second block is a mistake worth hearing about. */
    r = pem_next(t, tlen, &pos, &b, why, why_len);
    if (r != 0) {
        if (r > 0)
            oe_message(why, why_len, "expected exactly one PEM block, found another (%.*s)",
                       (int)b.label_len, b.label);
        goto out;
    }
    keys_key_id(out->pk, out->key_id);
    ret = 0;
out:
    if (ret != 0)
        sodium_memzero(out, sizeof(*out));
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(der_buf, sizeof(der_buf));
    if (t != NULL) {
        sodium_memzero(t, tlen);
        free(t);
    }
    return ret;
}

/* Reads a small file whole.  NUL-terminated, *len excludes the NUL; the
 * caller frees (and wipes, for private keys).  NULL with a reason. */
static char *read_key_file(const char *path, size_t *len, char *why, size_t why_len)
{
    char *data = NULL;
    size_t n = 0;
    ssize_t r;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        oe_message(why, why_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    data = malloc(KEY_FILE_MAX + 1);
    if (data == NULL) {
        oe_message(why, why_len, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        r = read(fd, data + n, KEY_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            oe_message(why, why_len, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > KEY_FILE_MAX) {
            oe_message(why, why_len, "%s: file too large for a key (over %d bytes)", path,
                       KEY_FILE_MAX);
            goto fail;
        }
    }
    close(fd);
    data[n] = '\0';
    *len = n;
    return data;
fail:
    close(fd);
    if (data != NULL) {
        sodium_memzero(data, KEY_FILE_MAX + 1);
        free(data);
    }
    return NULL;
}

int keys_load_public_file(const char *path, keys_public_set *out, char *why, size_t why_len)
{
    char inner[200];
    size_t len = 0;
    char *data;
    int ret;

    memset(out, 0, sizeof(*out));
    data = read_key_file(path, &len, why, why_len);
    if (data == NULL)
        return -1;
    ret = keys_parse_public_pem(data, len, out, inner, sizeof(inner));
    if (ret != 0)
        oe_message(why, why_len, "%s: %s", path, inner);
    free(data);
    return ret;
}

int keys_load_private_file(const char *path, keys_private *out, char *why, size_t why_len)
{
    char inner[200];
    size_t len = 0;
    char *data;
    int ret;

    sodium_memzero(out, sizeof(*out));
    data = read_key_file(path, &len, why, why_len);
    if (data == NULL)
        return -1;
    ret = keys_parse_private_pem(data, len, out, inner, sizeof(inner));
    if (ret != 0)
        oe_message(why, why_len, "%s: %s", path, inner);
    sodium_memzero(data, len);
    free(data);
    return ret;
}

void keys_generate(keys_private *out)
{
    /* sodium_init is idempotent; a failure means no usable randomness, and a
     * predictable signing key is worse than no process. */
    if (sodium_init() < 0)
        abort();
    crypto_sign_keypair(out->pk, out->sk);
    keys_key_id(out->pk, out->key_id);
}

void keys_private_wipe(keys_private *key)
{
    sodium_memzero(key, sizeof(*key));
}

/* "-----BEGIN label-----\n" + base64 in 64-character lines + END line. */
static char *pem_encode(const char *label, const unsigned char *der_bytes, size_t der_len)
{
    size_t b64_size = sodium_base64_ENCODED_LEN(der_len, sodium_base64_VARIANT_ORIGINAL);
    size_t b64_len, lines, cap, i, n = 0;
    char *b64 = NULL, *pem = NULL;
    int w;

    b64 = malloc(b64_size);
    if (b64 == NULL)
        goto out;
    sodium_bin2base64(b64, b64_size, der_bytes, der_len, sodium_base64_VARIANT_ORIGINAL);
    b64_len = strlen(b64);
    lines = (b64_len + 63) / 64;
    cap = 2 * (strlen(label) + 16) + b64_len + lines + 1;
    pem = malloc(cap);
    if (pem == NULL)
        goto out;
    w = snprintf(pem, cap, "-----BEGIN %s-----\n", label);
    n = (size_t)w;
    for (i = 0; i < b64_len; i += 64) {
        size_t chunk = b64_len - i < 64 ? b64_len - i : 64;
        memcpy(pem + n, b64 + i, chunk);
        n += chunk;
        pem[n++] = '\n';
    }
    snprintf(pem + n, cap - n, "-----END %s-----\n", label);
out:
    if (b64 != NULL) {
        sodium_memzero(b64, b64_size);
        free(b64);
    }
    return pem;
}

char *keys_public_pem(const unsigned char pk[32])
{
    unsigned char d[44];

    memcpy(d, SPKI_PREFIX, sizeof(SPKI_PREFIX));
    memcpy(d + 12, pk, 32);
    return pem_encode("PUBLIC KEY", d, sizeof(d));
}

char *keys_private_pem(const keys_private *key)
{
    unsigned char d[48];
    char *pem;

    memcpy(d, PKCS8_V1_PREFIX, sizeof(PKCS8_V1_PREFIX));
    memcpy(d + 16, key->sk, 32); /* the seed half of libsodium's sk */
    pem = pem_encode("PRIVATE KEY", d, sizeof(d));
    sodium_memzero(d, sizeof(d));
    return pem;
}

int keys_sync_parent_dir(const char *path)
{
    char dir[PATH_MAX] = ".";
    const char *slash = strrchr(path, '/');
    size_t n;
    int fd, r;

    if (slash != NULL) {
        n = slash == path ? 1 : (size_t)(slash - path); /* "/file": the root */
        if (n >= sizeof(dir)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    r = fsync(fd);
    close(fd);
    return r;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

int keys_write_new_file(const char *path, const char *data, mode_t mode)
{
    int fd, saved;

    fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (write_all(fd, data, strlen(data)) != 0 || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(path);
        errno = saved;
        return -1;
    }
    return close(fd);
}

int keys_load_or_create_private(const char *path, keys_private *out, char *why, size_t why_len)
{
    char tmp[PATH_MAX];
    char *pem = NULL;
    int fd = -1, ret = -1, tmp_made = 0, n, r;

    sodium_memzero(out, sizeof(*out));
    if (access(path, F_OK) == 0)
        return keys_load_private_file(path, out, why, why_len);

    /* Write the whole key to a private temporary file, then link() it into
     * place.  link fails with EEXIST exactly like O_CREAT|O_EXCL, so two
     * starters never both win; unlike writing the final name directly, no
     * one can ever read a half-written key, and a crash mid-write leaves no
     * truncated file that would stop every later start. */
    n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        oe_message(why, why_len, "%s: path too long", path);
        goto out;
    }
    keys_generate(out);
    pem = keys_private_pem(out);
    if (pem == NULL) {
        oe_message(why, why_len, "%s: out of memory", path);
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        oe_message(why, why_len, "%s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    tmp_made = 1;
    if (fchmod(fd, 0600) != 0 || write_all(fd, pem, strlen(pem)) != 0 || fsync(fd) != 0) {
        oe_message(why, why_len, "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;
    r = link(tmp, path);
    if (r != 0 && (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS))
        r = keys_write_new_file(path, pem, 0600); /* a filesystem without hard links */
    if (r != 0) {
        if (errno == EEXIST) {
            /* Someone else created it first: theirs is the key. */
            unlink(tmp);
            tmp_made = 0;
            keys_private_wipe(out);
            ret = keys_load_private_file(path, out, why, why_len);
            goto out;
        }
        oe_message(why, why_len, "%s: cannot create: %s", path, strerror(errno));
        goto out;
    }
    unlink(tmp);
    tmp_made = 0;
    if (keys_sync_parent_dir(path) != 0) {
        oe_message(why, why_len, "%s: cannot sync its directory: %s", path, strerror(errno));
        goto out;
    }
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    if (pem != NULL) {
        sodium_memzero(pem, strlen(pem));
        free(pem);
    }
    if (ret != 0)
        keys_private_wipe(out);
    return ret;
}
