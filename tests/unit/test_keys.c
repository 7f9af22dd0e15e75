/*
 * test_keys.c - Ed25519 PEM keys (keys.c).
 *
 * Proves: our PEM round-trips and is what OpenSSL and python3-cryptography
 * write and read; several PUBLIC KEY blocks (rotation) and the one-line
 * "\n"-escaped form are accepted; everything that is not exactly an Ed25519
 * SPKI / PKCS#8 key is refused with the reason an operator needs (RSA, EC,
 * X25519, Ed448, truncated, trailing data, bad base64, small-order points);
 * keys_load_or_create_private creates once (mode 0600) and every racing
 * starter ends up with the same key.
 *
 * Malformed keys are built here from DER bytes, so each case shows exactly
 * which byte is wrong; real foreign keys come from tests/data/keys (made by
 * openssl, see its README) and, when the openssl CLI is installed, from
 * openssl at test time.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"
#include "testutil.h"

static char tmpdir[256];

/* ---- helpers ---------------------------------------------------------- */

static const unsigned char SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                              0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
static const unsigned char PKCS8_PREFIX[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                               0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

/* A PEM block of label around der (64-character lines).  Caller frees. */
static char *pem_of(const char *label, const unsigned char *der, size_t len)
{
    size_t b64_size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64_size), *pem = malloc(b64_size * 2 + 200);
    size_t i, n, bl;

    sodium_bin2base64(b64, b64_size, der, len, sodium_base64_VARIANT_ORIGINAL);
    bl = strlen(b64);
    n = (size_t)sprintf(pem, "-----BEGIN %s-----\n", label);
    for (i = 0; i < bl; i += 64) {
        size_t c = bl - i < 64 ? bl - i : 64;
        memcpy(pem + n, b64 + i, c);
        n += c;
        pem[n++] = '\n';
    }
    sprintf(pem + n, "-----END %s-----\n", label);
    free(b64);
    return pem;
}

static void spki_of(const unsigned char pk[32], unsigned char der[44])
{
    memcpy(der, SPKI_PREFIX, 12);
    memcpy(der + 12, pk, 32);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data;
    size_t n;

    if (f == NULL)
        return NULL;
    data = malloc(1 << 16);
    n = fread(data, 1, (1 << 16) - 1, f);
    data[n] = '\0';
    fclose(f);
    return data;
}

static char *data_path(const char *name)
{
    static char path[1024];
    const char *src = getenv("OE_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/tests/data/keys/%s", src ? src : ".", name);
    return path;
}

/* Parses text as public PEM and expects failure with `reason` in why. */
static int public_refused(const char *text, const char *reason)
{
    keys_public_set set;
    char why[256] = "";
    int r = keys_parse_public_pem(text, strlen(text), &set, why, sizeof(why));

    if (r == 0 || strstr(why, reason) == NULL) {
        fprintf(stderr, "  public key: want refusal containing \"%s\", got r=%d why=\"%s\"\n",
                reason, r, why);
        return 0;
    }
    return set.count == 0; /* nothing half-filled on failure */
}

static int private_refused(const char *text, const char *reason)
{
    keys_private k;
    char why[256] = "";
    int r = keys_parse_private_pem(text, strlen(text), &k, why, sizeof(why));
    static const unsigned char zero[64];

    if (r == 0 || strstr(why, reason) == NULL) {
        fprintf(stderr, "  private key: want refusal containing \"%s\", got r=%d why=\"%s\"\n",
                reason, r, why);
        return 0;
    }
    return memcmp(k.sk, zero, 64) == 0; /* wiped on failure */
}

static int public_der_refused(const unsigned char *der, size_t len, const char *reason)
{
    char *pem = pem_of("PUBLIC KEY", der, len);
    int ok = public_refused(pem, reason);

    free(pem);
    return ok;
}

static int private_der_refused(const unsigned char *der, size_t len, const char *reason)
{
    char *pem = pem_of("PRIVATE KEY", der, len);
    int ok = private_refused(pem, reason);

    free(pem);
    return ok;
}

static int have_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

/* ---- round trips ------------------------------------------------------- */

static void test_generated_key_round_trips_through_pem(void)
{
    keys_private k, k2;
    keys_public_set set;
    char why[256];
    char *pub, *priv, id[KEYS_ID_LEN + 1];

    keys_generate(&k);
    pub = keys_public_pem(k.pk);
    priv = keys_private_pem(&k);
    CHECK(pub != NULL && priv != NULL);
    CHECK_INT(keys_parse_public_pem(pub, strlen(pub), &set, why, sizeof(why)), 0);
    CHECK_INT(set.count, 1);
    CHECK_MEM(set.keys[0].pk, k.pk, 32);
    CHECK_STR(set.keys[0].key_id, k.key_id);
    CHECK_INT(keys_parse_private_pem(priv, strlen(priv), &k2, why, sizeof(why)), 0);
    CHECK_MEM(k2.sk, k.sk, 64);
    CHECK_MEM(k2.pk, k.pk, 32);
    keys_key_id(k.pk, id);
    CHECK_STR(k.key_id, id);
    CHECK_INT(strlen(id), KEYS_ID_LEN);
    /* Standard layout: one 60-char line for SPKI, one 64-char line for PKCS#8. */
    CHECK(strncmp(pub, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA", 42) == 0);
    CHECK_INT(strlen(pub), 27 + 61 + 25);
    CHECK(strncmp(priv, "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI", 48) == 0);
    CHECK_INT(strlen(priv), 28 + 65 + 26);
    free(pub);
    free(priv);
    keys_private_wipe(&k);
    keys_private_wipe(&k2);
}

static void test_key_id_is_sha256_prefix_of_public_key(void)
{
    keys_public_set set;
    char why[256];
    char *pem = read_file(data_path("openssl_ed25519.pub"));

    CHECK(pem != NULL);
    if (pem == NULL)
        return;
    CHECK_INT(keys_parse_public_pem(pem, strlen(pem), &set, why, sizeof(why)), 0);
    /* python3: hashlib.sha256(bytes.fromhex("edfa75e7...dc7e")).hexdigest()[:16] */
    CHECK_STR(set.keys[0].key_id, "1a8e77979e789d00");
    free(pem);
}

static void test_openssl_written_files_are_read(void)
{
    keys_public_set set;
    keys_private k;
    char why[256];

    CHECK_INT(keys_load_public_file(data_path("openssl_ed25519.pub"), &set, why, sizeof(why)), 0);
    CHECK_INT(keys_load_private_file(data_path("openssl_ed25519.key"), &k, why, sizeof(why)), 0);
    CHECK_MEM(k.pk, set.keys[0].pk, 32);
    CHECK_STR(k.key_id, "1a8e77979e789d00");
    keys_private_wipe(&k);
}

static void test_openssl_cli_agrees_both_ways(void)
{
    char cmd[2048], path[512], path2[512], why[256];
    keys_private k;
    keys_public_set set;
    char *ours, *theirs;
    FILE *f;

    if (!have_openssl()) {
        printf("     (openssl CLI not installed: skipped)\n");
        return;
    }
    /* openssl genpkey at test time -> we read it. */
    snprintf(path, sizeof(path), "%s/gen.key", tmpdir);
    snprintf(cmd, sizeof(cmd), "openssl genpkey -algorithm ed25519 -out %s 2>/dev/null", path);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(keys_load_private_file(path, &k, why, sizeof(why)), 0);
    snprintf(path2, sizeof(path2), "%s/gen.pub", tmpdir);
    snprintf(cmd, sizeof(cmd), "openssl pkey -in %s -pubout -out %s", path, path2);
    CHECK_INT(system(cmd), 0);
    CHECK_INT(keys_load_public_file(path2, &set, why, sizeof(why)), 0);
    CHECK_MEM(set.keys[0].pk, k.pk, 32);
    /* Our PEM -> openssl reads it, and derives a byte-identical public PEM. */
    theirs = read_file(path2);
    ours = keys_public_pem(k.pk);
    CHECK_STR(ours, theirs);
    free(ours);
    free(theirs);
    ours = keys_private_pem(&k);
    snprintf(path, sizeof(path), "%s/ours.key", tmpdir);
    f = fopen(path, "w");
    fputs(ours, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "openssl pkey -in %s -pubout -out %s/ours.pub", path, tmpdir);
    CHECK_INT(system(cmd), 0);
    snprintf(path2, sizeof(path2), "%s/ours.pub", tmpdir);
    snprintf(cmd, sizeof(cmd), "openssl pkey -pubin -in %s -text -noout >/dev/null", path2);
    CHECK_INT(system(cmd), 0);
    theirs = read_file(path2);
    free(ours);
    ours = keys_public_pem(k.pk);
    CHECK_STR(ours, theirs);
    free(ours);
    free(theirs);
    keys_private_wipe(&k);
}

static void test_python_cryptography_keys_are_read(void)
{
    char cmd[2048], path[512], why[256];
    keys_private k;
    keys_public_set set;
    const char *src = getenv("OE_SOURCE_DIR");

    snprintf(cmd, sizeof(cmd), "python3 %s/tests/tools/clawshield.py keygen --out %s/py >/dev/null",
             src ? src : ".", tmpdir);
    CHECK_INT(system(cmd), 0);
    snprintf(path, sizeof(path), "%s/py.key", tmpdir);
    CHECK_INT(keys_load_private_file(path, &k, why, sizeof(why)), 0);
    snprintf(path, sizeof(path), "%s/py.pub", tmpdir);
    CHECK_INT(keys_load_public_file(path, &set, why, sizeof(why)), 0);
    CHECK_MEM(set.keys[0].pk, k.pk, 32);
    keys_private_wipe(&k);
}

/* ---- several blocks, escaped newlines ---------------------------------- */

static void test_several_blocks_load_in_order(void)
{
    keys_private a, b;
    keys_public_set set;
    char why[256], text[1024];
    char *pa, *pb;

    keys_generate(&a);
    keys_generate(&b);
    pa = keys_public_pem(a.pk);
    pb = keys_public_pem(b.pk);
    snprintf(text, sizeof(text), "\n  %s\n\n%s  \n", pa, pb);
    CHECK_INT(keys_parse_public_pem(text, strlen(text), &set, why, sizeof(why)), 0);
    CHECK_INT(set.count, 2);
    CHECK_MEM(set.keys[0].pk, a.pk, 32);
    CHECK_MEM(set.keys[1].pk, b.pk, 32);
    CHECK_STR(set.keys[1].key_id, b.key_id);
    /* Back to back, no separator at all. */
    snprintf(text, sizeof(text), "%.*s%s", (int)strlen(pa) - 1, pa, pb);
    CHECK_INT(keys_parse_public_pem(text, strlen(text), &set, why, sizeof(why)), 0);
    CHECK_INT(set.count, 2);
    /* A bad second block names its index. */
    snprintf(text, sizeof(text), "%s%s", pa,
             "-----BEGIN PUBLIC KEY-----\nAAAA\n"
             "-----END PUBLIC KEY-----\n");
    CHECK(public_refused(text, "PEM block 2: "));
    free(pa);
    free(pb);
}

static void test_sixteen_blocks_allowed_seventeen_refused(void)
{
    static char text[16384];
    keys_public_set set;
    keys_private k;
    char why[256];
    size_t n = 0;
    int i;

    for (i = 0; i < KEYS_MAX_PUBLIC + 1; i++) {
        char *p;
        keys_generate(&k);
        p = keys_public_pem(k.pk);
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", p);
        free(p);
        if (i == KEYS_MAX_PUBLIC - 1) {
            CHECK_INT(keys_parse_public_pem(text, n, &set, why, sizeof(why)), 0);
            CHECK_INT(set.count, KEYS_MAX_PUBLIC);
        }
    }
    CHECK(public_refused(text, "more than 16 PUBLIC KEY blocks"));
}

static void test_escaped_newlines_and_crlf_are_accepted(void)
{
    keys_private a, b;
    keys_public_set set;
    keys_private k2;
    char why[256], text[1024];
    char *pa, *pb, *priv;
    size_t i, n = 0;

    keys_generate(&a);
    keys_generate(&b);
    pa = keys_public_pem(a.pk);
    pb = keys_public_pem(b.pk);
    /* The one-line form of `docker --env-file`: literal backslash-n. */
    for (i = 0; pa[i]; i++) {
        if (pa[i] == '\n') {
            text[n++] = '\\';
            text[n++] = 'n';
        } else {
            text[n++] = pa[i];
        }
    }
    for (i = 0; pb[i]; i++) {
        if (pb[i] == '\n') {
            text[n++] = '\\';
            text[n++] = 'n';
        } else {
            text[n++] = pb[i];
        }
    }
    text[n] = '\0';
    CHECK(strchr(text, '\n') == NULL);
    CHECK_INT(keys_parse_public_pem(text, n, &set, why, sizeof(why)), 0);
    CHECK_INT(set.count, 2);
    CHECK_MEM(set.keys[1].pk, b.pk, 32);
    /* CRLF line endings (a PEM saved on Windows). */
    n = 0;
    for (i = 0; pa[i]; i++) {
        if (pa[i] == '\n')
            text[n++] = '\r';
        text[n++] = pa[i];
    }
    text[n] = '\0';
    CHECK_INT(keys_parse_public_pem(text, n, &set, why, sizeof(why)), 0);
    CHECK_MEM(set.keys[0].pk, a.pk, 32);
    /* The private parser reads the escaped form too. */
    priv = keys_private_pem(&a);
    n = 0;
    for (i = 0; priv[i]; i++) {
        if (priv[i] == '\n') {
            text[n++] = '\\';
            text[n++] = 'n';
        } else {
            text[n++] = priv[i];
        }
    }
    CHECK_INT(keys_parse_private_pem(text, n, &k2, why, sizeof(why)), 0);
    CHECK_MEM(k2.pk, a.pk, 32);
    free(pa);
    free(pb);
    free(priv);
}

/* ---- refusals ----------------------------------------------------------- */

static void test_foreign_public_keys_are_named(void)
{
    char *t;

    t = read_file(data_path("rsa2048.pub"));
    CHECK(public_refused(t, "RSA key (OID 1.2.840.113549.1.1.1), expected Ed25519"));
    free(t);
    t = read_file(data_path("x25519.pub"));
    CHECK(public_refused(t, "X25519 key (OID 1.3.101.110), expected Ed25519"));
    free(t);
    t = read_file(data_path("ed448.pub"));
    CHECK(public_refused(t, "Ed448 key (OID 1.3.101.113), expected Ed25519"));
    free(t);
    t = read_file(data_path("ec_p256.pub"));
    CHECK(public_refused(t, "EC key (OID 1.2.840.10045.2.1), expected Ed25519"));
    free(t);
    t = read_file(data_path("rsa1024_pkcs1.pub"));
    CHECK(public_refused(t, "RSA key (PKCS#1 RSA PUBLIC KEY block), expected Ed25519"));
    free(t);
    /* The classic slip: the private key pasted into CLAWSHIELD_PUBLIC_KEY. */
    t = read_file(data_path("openssl_ed25519.key"));
    CHECK(public_refused(t, "found a PRIVATE KEY block where a PUBLIC KEY is expected"));
    free(t);
    CHECK(public_refused("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                         "not a PEM PUBLIC KEY block (found CERTIFICATE)"));
    {
        /* An OID we have no name for is printed dotted. */
        unsigned char der[44];
        keys_private k;
        keys_generate(&k);
        spki_of(k.pk, der);
        der[8] = 0x7f; /* 1.3.101.127 */
        CHECK(public_der_refused(der, 44, "unsupported key algorithm (OID 1.3.101.127)"));
    }
}

static void test_not_pem_is_refused(void)
{
    CHECK(public_refused("", "not a PEM PUBLIC KEY block"));
    CHECK(public_refused("   \n", "not a PEM PUBLIC KEY block"));
    CHECK(public_refused("MCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gyVcnDQRTid2qCnws3H4=",
                         "not a PEM PUBLIC KEY block"));
    CHECK(public_refused("/etc/openexec/clawshield.pub",
                         "not a PEM PUBLIC KEY block (no -----BEGIN PUBLIC KEY----- line found)"));
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gy"
                         "VcnDQRTid2qCnws3H4=\n",
                         "without its -----END PUBLIC KEY----- line"));
    CHECK(public_refused("garbage\n-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w/suB8"
                         "B2AGu9gyVcnDQRTid2qCnws3H4=\n-----END PUBLIC KEY-----\n",
                         "text outside a PEM block"));
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gyVc"
                         "nDQRTid2qCnws3H4=\n-----END PUBLIC KEY-----\n, trailing comma",
                         "text outside a PEM block"));
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
                         "empty PEM block"));
}

static void test_bad_base64_is_refused(void)
{
    /* The valid body is MCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gyVcnDQRTid2qCnws3H4= */
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gyVcn"
                         "DQRTid2qCnws3H4\n-----END PUBLIC KEY-----\n",
                         "bad base64")); /* padding missing */
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gyVcn"
                         "DQRTid2qCnws3H5=\n-----END PUBLIC KEY-----\n",
                         "bad base64")); /* unused bits not zero */
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gyVcn"
                         "DQRTid2qCnws3H4==\n-----END PUBLIC KEY-----\n",
                         "bad base64")); /* extra padding */
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w_suB8B2AGu9gyVcn"
                         "DQRTid2qCnws3H4=\n-----END PUBLIC KEY-----\n",
                         "bad base64 in PEM block (character 0x5f)")); /* URL-safe alphabet */
    CHECK(public_refused("-----BEGIN PUBLIC KEY-----\nProc-Type: 4,ENCRYPTED\n\nMCowBQYDK2VwAyEA"
                         "7fp158bkcs5w/suB8B2AGu9gyVcnDQRTid2qCnws3H4=\n-----END PUBLIC KEY-----\n",
                         "bad base64"));
    {
        /* A NUL byte inside the body (libsodium's ignore list would skip it). */
        const char t[] = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA7fp158bkcs5w/suB8B2AGu9gyVcn"
                         "DQRTid2q\0Cnws3H4=\n-----END PUBLIC KEY-----\n";
        keys_public_set set;
        char why[256] = "";
        CHECK_INT(keys_parse_public_pem(t, sizeof(t) - 1, &set, why, sizeof(why)), -1);
        CHECK(strstr(why, "bad base64 in PEM block (character 0x00)") != NULL);
    }
}

static void test_malformed_der_is_refused(void)
{
    unsigned char der[64], longer[45];
    keys_private k;

    keys_generate(&k);
    spki_of(k.pk, der);
    CHECK(public_der_refused(der, 43, "truncated DER"));
    CHECK(public_der_refused(der, 2, "truncated DER"));
    CHECK(public_der_refused(der, 1, "truncated DER"));
    memcpy(longer, der, 44);
    longer[44] = 0;
    CHECK(public_der_refused(longer, 45, "trailing data after the DER SubjectPublicKeyInfo"));
    {
        /* Inside the SEQUENCE, after the BIT STRING. */
        unsigned char t[46];
        memcpy(t, der, 44);
        t[1] = 0x2c;
        t[44] = 0x05;
        t[45] = 0x00;
        CHECK(public_der_refused(t, 46, "trailing data inside the SubjectPublicKeyInfo"));
    }
    {
        /* 31-byte key. */
        unsigned char t[43];
        memcpy(t, der, 43);
        t[1] = 0x29;
        t[10] = 0x20;
        CHECK(public_der_refused(t, 43, "Ed25519 public key must be 32 bytes, found 31"));
    }
    {
        /* RFC 8410: no parameters, not even NULL. */
        unsigned char t[46] = {0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b,
                               0x65, 0x70, 0x05, 0x00, 0x03, 0x21, 0x00};
        memcpy(t + 14, k.pk, 32);
        CHECK(public_der_refused(t, 46, "forbids algorithm parameters"));
    }
    {
        /* BER indefinite length and non-minimal long-form length. */
        unsigned char t[46];
        memcpy(t, der, 44);
        t[1] = 0x80;
        CHECK(public_der_refused(t, 44, "indefinite length"));
        t[0] = 0x30;
        t[1] = 0x81;
        t[2] = 0x2a;
        memcpy(t + 3, der + 2, 42);
        CHECK(public_der_refused(t, 45, "non-minimal length"));
    }
    der[0] = 0x31; /* SET, not SEQUENCE */
    CHECK(public_der_refused(der, 44, "no outer SEQUENCE"));
    keys_private_wipe(&k);
}

static void test_small_order_public_keys_are_refused(void)
{
    unsigned char pk[32] = {0}, der[44];

    /* y = 0: a point of order 4. */
    spki_of(pk, der);
    CHECK(public_der_refused(der, 44, "not a valid curve point"));
    /* The identity (y = 1). */
    pk[0] = 1;
    spki_of(pk, der);
    CHECK(public_der_refused(der, 44, "not a valid curve point"));
    /* Non-canonical: y = p (2^255 - 19) encodes 0 again. */
    memset(pk, 0xff, 32);
    pk[0] = 0xed;
    pk[31] = 0x7f;
    spki_of(pk, der);
    CHECK(public_der_refused(der, 44, "not a valid curve point"));
}

static void test_foreign_private_keys_are_named(void)
{
    char *t;

    t = read_file(data_path("x25519.key"));
    CHECK(private_refused(t, "X25519 key (OID 1.3.101.110), expected Ed25519"));
    free(t);
    t = read_file(data_path("rsa1024.key"));
    CHECK(private_refused(t, "RSA key (OID 1.2.840.113549.1.1.1), expected Ed25519"));
    free(t);
    t = read_file(data_path("ec_p256.key"));
    CHECK(private_refused(t, "EC key (OID 1.2.840.10045.2.1), expected Ed25519"));
    free(t);
    t = read_file(data_path("openssl_ed25519.pub"));
    CHECK(private_refused(t, "not a PEM PRIVATE KEY block (found PUBLIC KEY)"));
    free(t);
    CHECK(private_refused("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                          "-----END ENCRYPTED PRIVATE KEY-----\n",
                          "encrypted PKCS#8 keys are not supported"));
    CHECK(private_refused("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                          "-----END OPENSSH PRIVATE KEY-----\n",
                          "OpenSSH key format is not supported"));
    CHECK(private_refused("", "not a PEM PRIVATE KEY block"));
    CHECK(
        private_refused("/etc/openexec/signing.pem",
                        "not a PEM PRIVATE KEY block (no -----BEGIN PRIVATE KEY----- line found)"));
}

static void test_pkcs8_variants(void)
{
    keys_private k, got;
    unsigned char der[90];
    char why[256];
    char *pem, *two, *pub;

    keys_generate(&k);
    /* v2 (RFC 5958) with the matching public key attached: accepted. */
    memcpy(der, PKCS8_PREFIX, 16);
    der[1] = 0x51;
    der[4] = 0x01;
    memcpy(der + 16, k.sk, 32);
    der[48] = 0x81;
    der[49] = 0x21;
    der[50] = 0x00;
    memcpy(der + 51, k.pk, 32);
    pem = pem_of("PRIVATE KEY", der, 83);
    CHECK_INT(keys_parse_private_pem(pem, strlen(pem), &got, why, sizeof(why)), 0);
    CHECK_MEM(got.sk, k.sk, 64);
    free(pem);
    /* ...with a public key that is not this seed's: refused. */
    der[60] ^= 1;
    CHECK(private_der_refused(der, 83, "attached public key does not match the private key"));
    der[60] ^= 1;
    /* ...attached to a v1 structure: refused. */
    der[4] = 0x00;
    CHECK(private_der_refused(der, 83, "public key attached to a v1 key"));
    der[4] = 0x01;
    /* Version 2 (value 2) does not exist. */
    der[4] = 0x02;
    CHECK(private_der_refused(der, 83, "unsupported PKCS#8 version"));
    /* v1 with a 31-byte seed, trailing data, truncation, attributes. */
    memcpy(der, PKCS8_PREFIX, 16);
    memcpy(der + 16, k.sk, 32);
    CHECK(private_der_refused(der, 47, "truncated DER"));
    der[48] = 0;
    CHECK(private_der_refused(der, 49, "trailing data after the DER PrivateKeyInfo"));
    der[1] = 0x2d;
    der[13] = 0x21;
    der[15] = 0x1f;
    CHECK(private_der_refused(der, 47, "must be a 32-byte seed"));
    memcpy(der, PKCS8_PREFIX, 16);
    der[1] = 0x30;
    der[48] = 0xa0;
    der[49] = 0x00;
    CHECK(private_der_refused(der, 50, "PKCS#8 attributes are not supported"));
    /* Exactly one block per private key file. */
    pem = keys_private_pem(&k);
    pub = keys_public_pem(k.pk);
    two = malloc(strlen(pem) + strlen(pub) + 1);
    sprintf(two, "%s%s", pem, pub);
    CHECK(private_refused(two, "expected exactly one PEM block"));
    free(two);
    free(pem);
    free(pub);
    keys_private_wipe(&k);
    keys_private_wipe(&got);
}

/* ---- files --------------------------------------------------------------- */

static void test_load_or_create_creates_once_with_mode_0600(void)
{
    keys_private a, b;
    char path[512], why[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/receipt.key", tmpdir);
    CHECK_INT(keys_load_or_create_private(path, &a, why, sizeof(why)), 0);
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT(st.st_mode & 0777, 0600);
    CHECK_INT(keys_load_or_create_private(path, &b, why, sizeof(why)), 0);
    CHECK_MEM(a.sk, b.sk, 64);
    /* The file is what `openssl genpkey` would have written: PKCS#8 v1. */
    CHECK_INT(keys_load_private_file(path, &b, why, sizeof(why)), 0);
    CHECK_MEM(a.pk, b.pk, 32);
    /* A damaged key file is an error, never silently replaced. */
    {
        FILE *f = fopen(path, "w");
        fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
        fclose(f);
    }
    CHECK_INT(keys_load_or_create_private(path, &b, why, sizeof(why)), -1);
    CHECK(strstr(why, path) != NULL);
    snprintf(path, sizeof(path), "%s/no/such/dir/receipt.key", tmpdir);
    CHECK_INT(keys_load_or_create_private(path, &b, why, sizeof(why)), -1);
    CHECK(strstr(why, "No such file or directory") != NULL);
    keys_private_wipe(&a);
    keys_private_wipe(&b);
}

static void test_racing_starters_all_get_the_same_key(void)
{
    enum { N = 8 };
    char path[512], why[256], cmd[600];
    unsigned char pks[N][32];
    int fds[N][2], i, status, same = 1;
    pid_t pids[N];

    snprintf(path, sizeof(path), "%s/race.key", tmpdir);
    for (i = 0; i < N; i++) {
        CHECK_INT(pipe(fds[i]), 0);
        pids[i] = fork();
        if (pids[i] == 0) {
            keys_private k;
            int r = keys_load_or_create_private(path, &k, why, sizeof(why));
            if (r != 0 || write(fds[i][1], k.pk, 32) != 32)
                _exit(1);
            _exit(0);
        }
        close(fds[i][1]);
    }
    for (i = 0; i < N; i++) {
        CHECK(read(fds[i][0], pks[i], 32) == 32);
        close(fds[i][0]);
        waitpid(pids[i], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (memcmp(pks[i], pks[0], 32) != 0)
            same = 0;
    }
    CHECK(same);
    /* No temporary file is left behind. */
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls %s | grep '\\.tmp\\.')\"", tmpdir);
    CHECK_INT(system(cmd), 0);
}

static void test_missing_file_names_path_and_errno(void)
{
    keys_public_set set;
    keys_private k;
    char why[256];

    CHECK_INT(keys_load_public_file("/nonexistent/cs.pub", &set, why, sizeof(why)), -1);
    CHECK(strstr(why, "/nonexistent/cs.pub: No such file or directory") != NULL);
    CHECK_INT(keys_load_private_file("/nonexistent/cs.key", &k, why, sizeof(why)), -1);
    CHECK(strstr(why, "/nonexistent/cs.key") != NULL);
    /* A file's parse error is prefixed by its path. */
    CHECK_INT(keys_load_public_file(data_path("rsa2048.pub"), &set, why, sizeof(why)), -1);
    CHECK(strstr(why, "rsa2048.pub: RSA key") != NULL);
}

static void test_wipe_zeroes_the_secret(void)
{
    keys_private k;
    static const unsigned char zero[sizeof(keys_private)];

    keys_generate(&k);
    keys_private_wipe(&k);
    CHECK_MEM(&k, zero, sizeof(k));
}

int main(void)
{
    char cmd[300];

    if (sodium_init() < 0)
        return 1;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/oe_test_keys.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_generated_key_round_trips_through_pem);
    RUN(test_key_id_is_sha256_prefix_of_public_key);
    RUN(test_openssl_written_files_are_read);
    RUN(test_openssl_cli_agrees_both_ways);
    RUN(test_python_cryptography_keys_are_read);
    RUN(test_several_blocks_load_in_order);
    RUN(test_sixteen_blocks_allowed_seventeen_refused);
    RUN(test_escaped_newlines_and_crlf_are_accepted);
    RUN(test_foreign_public_keys_are_named);
    RUN(test_not_pem_is_refused);
    RUN(test_bad_base64_is_refused);
    RUN(test_malformed_der_is_refused);
    RUN(test_small_order_public_keys_are_refused);
    RUN(test_foreign_private_keys_are_named);
    RUN(test_pkcs8_variants);
    RUN(test_load_or_create_creates_once_with_mode_0600);
    RUN(test_racing_starters_all_get_the_same_key);
    RUN(test_missing_file_names_path_and_errno);
    RUN(test_wipe_zeroes_the_secret);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return tu_finish();
}
