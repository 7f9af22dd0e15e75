/*
 * cli_verify.c - the offline verifiers an auditor runs with nothing but the
 * log's public key (SPEC 5.2):
 *
 *   verify-log      an export (JSON lines, seq 0..SIZE-1) against a signed
 *                   checkpoint: the signature, the sequence (no gap,
 *                   duplicate, reorder or insertion), every line's log name
 *                   and shape (the receipt's fields, types and version), and
 *                   the Merkle root recomputed from the canonical leaves.
 *   verify-receipt  one signed receipt (or a whole /execute answer holding
 *                   one): checkpoint signature and inclusion proof.
 *
 * Both stream or read bounded inputs, never touch a database, and name the
 * first problem they find.  Exit status: 0 valid, 1 invalid or unreadable,
 * 2 usage.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "canon.h"
#include "keys.h"
#include "receipt.h"
#include "tlog.h"

#define EXIT_INVALID 1
#define EXIT_USAGE 2
#define FILE_MAX (64 * 1024 * 1024)
#define LINE_MAX_BYTES (1024 * 1024)

static const char VERIFY_LOG_USAGE[] =
    "usage: openexec verify-log --key PUB.pem --checkpoint CP FILE.jsonl\n"
    "\n"
    "Checks an export of a receipt log (GET /receipts, JSON lines) against a\n"
    "signed checkpoint (GET /checkpoint) with the log's public key (GET\n"
    "/receipts/key): the checkpoint's signature, that seq runs 0..SIZE-1, that\n"
    "every entry names the checkpoint's log, and that the Merkle root of the\n"
    "entries equals the signed root.  Names the first bad entry.\n"
    "Exit status: 0 valid, 1 invalid, 2 usage.\n";

static const char VERIFY_RECEIPT_USAGE[] =
    "usage: openexec verify-receipt --key PUB.pem FILE.json\n"
    "\n"
    "Checks one signed receipt ({\"receipt\",\"inclusion\",\"checkpoint\"}, or an\n"
    "/execute answer carrying one as \"signed_receipt\") with the log's public key:\n"
    "the checkpoint's signature and the inclusion proof of the receipt.\n"
    "Exit status: 0 valid, 1 invalid, 2 usage.\n";

static int invalid(const char *cmd, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "openexec %s: ", cmd);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return EXIT_INVALID;
}

static int usage(const char *cmd, const char *what, const char *text)
{
    fprintf(stderr, "openexec %s: %s\n%s", cmd, what, text);
    return EXIT_USAGE;
}

/* The whole file (malloc'd, caller frees), or NULL with errno set (EFBIG
 * past FILE_MAX). */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    oe_buf b;
    char chunk[65536];
    size_t n;
    int failed;

    if (f == NULL)
        return NULL;
    oe_buf_init(&b, FILE_MAX);
    errno = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (oe_buf_append(&b, chunk, n) != 0)
            break;
    failed = ferror(f) ? (errno ? errno : EIO) : b.failed ? EFBIG : 0;
    fclose(f);
    if (failed) {
        oe_buf_free(&b);
        errno = failed;
        return NULL;
    }
    return oe_buf_detach(&b, len);
}

/* err(3) style: "openexec CMD: PATH: cannot read: why". */
static int cannot_read(const char *cmd, const char *path)
{
    char why[160];

    snprintf(why, sizeof(why), "cannot read: %s", strerror(errno));
    return invalid(cmd, "%s: %s", path, why);
}

static int load_key(const char *cmd, const char *path, unsigned char pk[32])
{
    keys_public_set set;
    char why[256];

    if (keys_load_public_file(path, &set, why, sizeof(why)) != 0)
        return invalid(cmd, "%s%s", why, "");
    memcpy(pk, set.keys[0].pk, 32);
    return 0;
}

/* Parses --key, --checkpoint (when wanted) and one file operand. */
static int parse_args(int argc, char **argv, const char *text, int want_checkpoint,
                      const char **key, const char **checkpoint, const char **file)
{
    int i, r;

    *key = *checkpoint = *file = NULL;
    for (i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(text, stdout);
            return -1;
        }
        if ((r = cli_opt_value(argc, argv, &i, "--key", key)) != 0 ||
            (want_checkpoint &&
             (r = cli_opt_value(argc, argv, &i, "--checkpoint", checkpoint)) != 0)) {
            if (r < 0)
                return usage(argv[0], "an option needs a value", text);
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return usage(argv[0], "unknown option", text);
        if (*file != NULL)
            return usage(argv[0], "one file operand only", text);
        *file = argv[i];
    }
    if (*key == NULL || *file == NULL || (want_checkpoint && *checkpoint == NULL))
        return usage(argv[0], "missing arguments", text);
    return 0;
}

/* ---- verify-log ---------------------------------------------------------- */

/* The fields of a receipt (SPEC 5.2) and the JSON types each may have. */
enum { T_STRING = 1, T_INTEGER = 2, T_NULL = 4 };
static const struct {
    const char *name;
    int types;
} RECEIPT_FIELDS[] = {
    {"v", T_INTEGER},
    {"log", T_STRING},
    {"seq", T_INTEGER},
    {"exec_id", T_STRING},
    {"time", T_STRING},
    {"action", T_STRING},
    {"action_hash", T_STRING},
    {"nonce_sha256", T_STRING},
    {"approval_id", T_STRING | T_NULL},
    {"outcome", T_STRING},
    {"status", T_INTEGER},
    {"result_sha256", T_STRING | T_NULL},
    {"error", T_STRING | T_NULL},
};
#define RECEIPT_FIELD_COUNT (sizeof(RECEIPT_FIELDS) / sizeof(RECEIPT_FIELDS[0]))

/* Why entry is not shaped as a receipt, or NULL.  Such an entry would
 * also change the root, but then only as "an entry was altered": this
 * names it. */
static const char *receipt_shape_problem(const json_t *entry, char *buf, size_t cap)
{
    const json_t *v;
    size_t i;

    for (i = 0; i < RECEIPT_FIELD_COUNT; i++) {
        int types = RECEIPT_FIELDS[i].types;
        v = json_object_get(entry, RECEIPT_FIELDS[i].name);
        if (v == NULL) {
            snprintf(buf, cap, "no field \"%s\"", RECEIPT_FIELDS[i].name);
            return buf;
        }
        if (!((types & T_STRING && json_is_string(v)) ||
              (types & T_INTEGER && json_is_integer(v)) || (types & T_NULL && json_is_null(v)))) {
            snprintf(buf, cap, "field \"%s\" has the wrong type", RECEIPT_FIELDS[i].name);
            return buf;
        }
    }
    if (json_object_size(entry) != RECEIPT_FIELD_COUNT)
        return "fields that are not a receipt's";
    if (json_integer_value(json_object_get(entry, "v")) != 1)
        return "version \"v\" is not 1";
    v = json_object_get(entry, "outcome");
    for (i = 0; i < RECEIPT_OUTCOMES; i++)
        if (strcmp(json_string_value(v), receipt_outcomes[i]) == 0)
            return NULL;
    return "unknown \"outcome\"";
}

static int check_entry(const char *cmd, const char *line, size_t len, uint64_t expect_seq,
                       const char *origin, uint8_t leaf[32])
{
    char where[64], why[OE_ERROR_DETAIL_MAX + 32];
    json_t *entry = NULL;
    const json_t *seq, *log;
    oe_error err;
    int rc = EXIT_INVALID;

    snprintf(where, sizeof(where), "entry %llu (line %llu)", (unsigned long long)expect_seq,
             (unsigned long long)expect_seq + 1);
    if (canon_parse(line, len, &entry, &err) != 0) {
        snprintf(why, sizeof(why), "not a JSON object: %s", err.detail);
        invalid(cmd, "%s: %s", where, why);
        goto out;
    }
    seq = json_object_get(entry, "seq");
    log = json_object_get(entry, "log");
    if (!json_is_integer(seq) || (uint64_t)json_integer_value(seq) != expect_seq ||
        json_integer_value(seq) < 0) {
        invalid(cmd, "%s: %s", where, "seq out of order (an entry was dropped, inserted or moved)");
        goto out;
    }
    if (!json_is_string(log) || strcmp(json_string_value(log), origin) != 0) {
        invalid(cmd, "%s: %s", where, "belongs to another log than the checkpoint's");
        goto out;
    }
    {
        char buf[96];
        const char *problem = receipt_shape_problem(entry, buf, sizeof(buf));
        if (problem != NULL) {
            snprintf(why, sizeof(why), "not a receipt: %s", problem);
            invalid(cmd, "%s: %s", where, why);
            goto out;
        }
    }
    if (receipt_leaf_hash(entry, leaf) != 0) {
        invalid(cmd, "%s: %s", where, "cannot be canonicalised");
        goto out;
    }
    rc = 0;
out:
    json_decref(entry);
    return rc;
}

int cli_verify_log(int argc, char **argv)
{
    const char *key_path, *cp_path, *file;
    unsigned char pk[32];
    char *note = NULL, *data = NULL, why[256], num[64];
    size_t note_len = 0, data_len = 0, pos;
    tlog_checkpoint cp;
    tlog_frontier f;
    uint8_t leaf[32], root[32];
    uint64_t n = 0;
    int rc;

    if ((rc = parse_args(argc, argv, VERIFY_LOG_USAGE, 1, &key_path, &cp_path, &file)) != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = load_key(argv[0], key_path, pk)) != 0)
        return rc;
    if ((note = read_file(cp_path, &note_len)) == NULL) {
        rc = cannot_read(argv[0], cp_path);
        goto out;
    }
    if (!tlog_checkpoint_verify(note, note_len, pk, &cp, why, sizeof(why))) {
        rc = invalid(argv[0], "checkpoint %s: %s", cp_path, why);
        goto out;
    }
    if ((data = read_file(file, &data_len)) == NULL) {
        rc = cannot_read(argv[0], file);
        goto out;
    }
    tlog_frontier_init(&f);
    for (pos = 0; pos < data_len;) {
        const char *nl = memchr(data + pos, '\n', data_len - pos);
        size_t len = nl ? (size_t)(nl - (data + pos)) : data_len - pos;

        if (len > LINE_MAX_BYTES) {
            rc = invalid(argv[0], "%s: %s", file, "line too long");
            goto out;
        }
        if (n >= cp.size) {
            snprintf(num, sizeof(num), "%llu (line %llu)", (unsigned long long)n,
                     (unsigned long long)n + 1);
            snprintf(why, sizeof(why), "%llu", (unsigned long long)cp.size);
            rc = invalid(argv[0], "entry %s: beyond the checkpoint, which covers %s entries", num,
                         why);
            goto out;
        }
        if ((rc = check_entry(argv[0], data + pos, len, n, cp.origin, leaf)) != 0)
            goto out;
        tlog_frontier_append(&f, leaf, NULL, NULL);
        n++;
        pos += len + 1;
    }
    if (n != cp.size) {
        snprintf(num, sizeof(num), "%llu (line %llu)", (unsigned long long)n,
                 (unsigned long long)n + 1);
        snprintf(why, sizeof(why), "%llu", (unsigned long long)cp.size);
        rc = invalid(argv[0], "entry %s is missing: the checkpoint covers %s entries", num, why);
        goto out;
    }
    tlog_frontier_root(&f, root);
    if (memcmp(root, cp.root, 32) != 0) {
        rc = invalid(argv[0], "%s: %s", file,
                     "the Merkle root of the entries differs from the signed root (an entry "
                     "was altered)");
        goto out;
    }
    printf("ok: %llu entries of %s match the signed checkpoint\n", (unsigned long long)n,
           cp.origin);
    rc = 0;
out:
    free(note);
    free(data);
    return rc;
}

/* ---- verify-receipt ------------------------------------------------------- */

static int fixed_key(void *ctx, const char *origin, unsigned char pk[32])
{
    (void)origin;
    memcpy(pk, ctx, 32);
    return 0;
}

int cli_verify_receipt(int argc, char **argv)
{
    const char *key_path, *unused, *file;
    unsigned char pk[32];
    char *data = NULL, why[256];
    json_t *doc = NULL;
    const json_t *sr;
    size_t len = 0;
    oe_error err;
    int rc;

    if ((rc = parse_args(argc, argv, VERIFY_RECEIPT_USAGE, 0, &key_path, &unused, &file)) != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = load_key(argv[0], key_path, pk)) != 0)
        return rc;
    if ((data = read_file(file, &len)) == NULL) {
        rc = cannot_read(argv[0], file);
        goto out;
    }
    if (canon_parse(data, len, &doc, &err) != 0) {
        rc = invalid(argv[0], "%s: %s", file, err.detail);
        goto out;
    }
    sr = json_object_get(doc, "signed_receipt") ? json_object_get(doc, "signed_receipt") : doc;
    if (!receipt_verify_signed(sr, fixed_key, pk, why, sizeof(why))) {
        rc = invalid(argv[0], "%s: %s", file, why);
        goto out;
    }
    printf("ok: receipt %lld of %s is in the signed log\n",
           (long long)json_integer_value(json_object_get(json_object_get(sr, "receipt"), "seq")),
           json_string_value(json_object_get(json_object_get(sr, "receipt"), "log")));
    rc = 0;
out:
    json_decref(doc);
    free(data);
    return rc;
}
