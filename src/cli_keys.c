/*
 * cli_keys.c - `openexec keygen` and `openexec mint`: the two subcommands an
 * operator needs to try ClawShield mode without a ClawShield.
 *
 *   keygen  writes an Ed25519 key pair in the formats OpenSSL writes:
 *           PREFIX.key (PKCS#8, mode 0600) and PREFIX.pub (SPKI).  Existing
 *           files are never overwritten (O_EXCL), because a key silently
 *           replaced is an outage at best and a lost secret at worst.
 *   mint    prints, on one line, the approval artifact a ClawShield approver
 *           would issue for an (action, payload) pair: the same action_hash
 *           (canon.c, SPEC 3.3), the same signed message (approval.c).
 *
 * Both follow cli.h: argv[0] is the subcommand's name, errors go to stderr
 * as "openexec SUB: what: why", and the result is the exit status: 0 ok,
 * 1 failure (I/O, key unusable), 2 usage (unknown option, missing or bad
 * argument value).  Options are parsed by hand rather than with getopt so
 * there is no global state (optind) and the functions can be called more
 * than once, e.g. from tests.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "approval.h"
#include "canon.h"
#include "keys.h"

#define EXIT_USAGE 2
#define MINT_DEFAULT_TTL 300
#define MINT_MAX_TTL (10LL * 365 * 86400) /* ten years: beyond that it is a typo */
#define ACTION_MAX 128                    /* SPEC 3: action is 1..128 bytes */

static const char KEYGEN_USAGE[] =
    "usage: openexec keygen [--out PREFIX]\n"
    "\n"
    "Generates an Ed25519 key pair for ClawShield approvals (or for testing).\n"
    "  --out PREFIX  write PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub\n"
    "                (SPKI PEM); default prefix: openexec.  Existing files are\n"
    "                never overwritten.\n"
    "The public key goes into CLAWSHIELD_PUBLIC_KEY; the private key stays with\n"
    "the approver.  Exit status: 0 ok, 1 failure, 2 usage.\n";

static const char MINT_USAGE[] =
    "usage: openexec mint --key PRIV --tenant T --action A [--payload JSON] [--ttl S]\n"
    "\n"
    "Prints (one line of JSON) the approval artifact a ClawShield approver would\n"
    "issue for this action and payload, signed with the private key PRIV.\n"
    "  --key PRIV      Ed25519 private key, PKCS#8 PEM (openexec keygen, or\n"
    "                  openssl genpkey -algorithm ed25519)\n"
    "  --tenant T      tenant_id to put in the artifact\n"
    "  --action A      action name, 1-128 bytes\n"
    "  --payload JSON  the request's payload: a JSON object or null (default {})\n"
    "  --ttl S         seconds until expires_at, 0..315360000 (default 300)\n"
    "Example:\n"
    "  openexec mint --key cs.key --tenant acme --action echo --payload '{\"x\":1}'\n"
    "Exit status: 0 ok, 1 failure, 2 usage.\n";

int cli_keygen(int argc, char **argv)
{
    const char *prefix = "openexec";
    char *key_path = NULL, *pub_path = NULL, *priv_pem = NULL, *pub_pem = NULL;
    keys_private key;
    int i, r, key_written = 0, ret = 1;
    size_t plen;

    memset(&key, 0, sizeof(key));
    for (i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(KEYGEN_USAGE, stdout);
            return 0;
        }
        r = cli_opt_value(argc, argv, &i, "--out", &prefix);
        if (r == 1)
            continue;
        if (r < 0)
            fprintf(stderr, "openexec keygen: --out: missing value\n");
        else
            fprintf(stderr, "openexec keygen: %s: unknown argument\n", argv[i]);
        fputs(KEYGEN_USAGE, stderr);
        return EXIT_USAGE;
    }
    if (prefix[0] == '\0') {
        fprintf(stderr, "openexec keygen: --out: empty prefix\n");
        return EXIT_USAGE;
    }

    plen = strlen(prefix) + 5;
    key_path = malloc(plen);
    pub_path = malloc(plen);
    if (key_path == NULL || pub_path == NULL) {
        fprintf(stderr, "openexec keygen: out of memory\n");
        goto out;
    }
    snprintf(key_path, plen, "%s.key", prefix);
    snprintf(pub_path, plen, "%s.pub", prefix);

    keys_generate(&key);
    priv_pem = keys_private_pem(&key);
    pub_pem = keys_public_pem(key.pk);
    if (priv_pem == NULL || pub_pem == NULL) {
        fprintf(stderr, "openexec keygen: out of memory\n");
        goto out;
    }
    if (keys_write_new_file(key_path, priv_pem, 0600) != 0) {
        fprintf(stderr, "openexec keygen: %s: %s\n", key_path,
                errno == EEXIST ? "file exists, refusing to overwrite a key" : strerror(errno));
        goto out;
    }
    key_written = 1;
    if (keys_write_new_file(pub_path, pub_pem, 0644) != 0) {
        fprintf(stderr, "openexec keygen: %s: %s\n", pub_path,
                errno == EEXIST ? "file exists, refusing to overwrite a key" : strerror(errno));
        goto out;
    }
    keys_sync_parent_dir(key_path); /* best effort: the files themselves were fsynced */
    printf("key id:      %s\n", key.key_id);
    printf("private key: %s (mode 0600; keep it with the approver)\n", key_path);
    printf("public key:  %s (for CLAWSHIELD_PUBLIC_KEY)\n", pub_path);
    ret = 0;
out:
    /* Half a key pair is worse than none: the next run must start clean. */
    if (ret != 0 && key_written)
        unlink(key_path);
    if (priv_pem != NULL) {
        sodium_memzero(priv_pem, strlen(priv_pem));
        free(priv_pem);
    }
    free(pub_pem);
    free(key_path);
    free(pub_path);
    keys_private_wipe(&key);
    return ret;
}

/* "null" (with surrounding blanks) means the default payload {}. */
static int is_json_null(const char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (strncmp(s, "null", 4) != 0)
        return 0;
    s += 4;
    n = strspn(s, " \t\r\n");
    return s[n] == '\0';
}

/* 1 when s is valid UTF-8 (jansson refuses to build a string otherwise). */
static int is_utf8(const char *s)
{
    json_t *j = json_string(s);

    json_decref(j);
    return j != NULL;
}

int cli_mint(int argc, char **argv)
{
    const char *key_path = NULL, *tenant = NULL, *action = NULL, *payload_text = "{}";
    const char *ttl_text = NULL;
    json_t *payload = NULL, *art = NULL;
    char *line = NULL, *end = NULL;
    char why[300], hash[65];
    keys_private key;
    oe_error perr;
    struct timespec ts;
    long long ttl = MINT_DEFAULT_TTL;
    int64_t now_us;
    int i, r, ret = EXIT_USAGE;

    memset(&key, 0, sizeof(key));
    oe_error_clear(&perr);
    for (i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(MINT_USAGE, stdout);
            return 0;
        }
        if ((r = cli_opt_value(argc, argv, &i, "--key", &key_path)) != 0 ||
            (r = cli_opt_value(argc, argv, &i, "--tenant", &tenant)) != 0 ||
            (r = cli_opt_value(argc, argv, &i, "--action", &action)) != 0 ||
            (r = cli_opt_value(argc, argv, &i, "--payload", &payload_text)) != 0 ||
            (r = cli_opt_value(argc, argv, &i, "--ttl", &ttl_text)) != 0) {
            if (r == 1)
                continue;
            fprintf(stderr, "openexec mint: %s: missing value\n", argv[i]);
        } else {
            fprintf(stderr, "openexec mint: %s: unknown argument\n", argv[i]);
        }
        fputs(MINT_USAGE, stderr);
        return EXIT_USAGE;
    }
    if (key_path == NULL || tenant == NULL || action == NULL) {
        fprintf(stderr, "openexec mint: %s: required option missing\n",
                key_path == NULL ? "--key"
                : tenant == NULL ? "--tenant"
                                 : "--action");
        fputs(MINT_USAGE, stderr);
        return EXIT_USAGE;
    }
    if (action[0] == '\0' || strlen(action) > ACTION_MAX || !is_utf8(action)) {
        fprintf(stderr, "openexec mint: --action: must be 1-%d bytes of UTF-8\n", ACTION_MAX);
        return EXIT_USAGE;
    }
    if (!is_utf8(tenant)) {
        fprintf(stderr, "openexec mint: --tenant: not valid UTF-8\n");
        return EXIT_USAGE;
    }
    if (ttl_text != NULL) {
        errno = 0;
        ttl = strtoll(ttl_text, &end, 10);
        if (errno != 0 || end == ttl_text || *end != '\0' || ttl < 0 || ttl > MINT_MAX_TTL) {
            fprintf(stderr, "openexec mint: --ttl: '%s': expected seconds, 0..%lld\n", ttl_text,
                    MINT_MAX_TTL);
            return EXIT_USAGE;
        }
    }
    /* The same strict parser the server uses, so an artifact is never minted
     * for a payload the server would refuse (duplicate keys, huge ints...). */
    if (!is_json_null(payload_text) &&
        canon_parse(payload_text, strlen(payload_text), &payload, &perr) != 0) {
        if (perr.code != NULL && strcmp(perr.code, "not_an_object") == 0)
            fprintf(stderr, "openexec mint: --payload: must be a JSON object or null\n");
        else
            fprintf(stderr, "openexec mint: --payload: %s\n", perr.detail);
        goto out;
    }

    ret = 1;
    if (keys_load_private_file(key_path, &key, why, sizeof(why)) != 0) {
        fprintf(stderr, "openexec mint: %s\n", why);
        goto out;
    }
    if (canon_action_hash(action, strlen(action), payload, hash) != 0) {
        fprintf(stderr, "openexec mint: --payload: cannot compute the action hash\n");
        goto out;
    }
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        fprintf(stderr, "openexec mint: clock: %s\n", strerror(errno));
        goto out;
    }
    now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    art = approval_mint(&key, tenant, hash, now_us, (int64_t)ttl * 1000000);
    line = art != NULL ? json_dumps(art, JSON_COMPACT) : NULL;
    if (line == NULL) {
        fprintf(stderr, "openexec mint: cannot build the artifact: out of memory\n");
        goto out;
    }
    if (printf("%s\n", line) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "openexec mint: stdout: %s\n", strerror(errno));
        goto out;
    }
    ret = 0;
out:
    free(line);
    json_decref(art);
    json_decref(payload);
    keys_private_wipe(&key);
    return ret;
}
