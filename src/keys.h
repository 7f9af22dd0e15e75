/*
 * keys.h - Ed25519 keys in PEM: SPKI public keys and PKCS#8 private keys.
 *
 * Only exactly-Ed25519 keys are accepted (OID 1.3.101.112); RSA, EC, X25519,
 * truncated or trailing-garbage DER is refused with a reason.  A key id is the
 * first 16 hex digits of SHA-256 over the 32-byte public key.
 */
#ifndef OE_KEYS_H
#define OE_KEYS_H

#include <stddef.h>
#include <sys/types.h>

#define KEYS_MAX_PUBLIC 16
#define KEYS_ID_LEN 16

typedef struct keys_public {
    unsigned char pk[32];
    char key_id[KEYS_ID_LEN + 1];
} keys_public;

/* Several PEM blocks (key rotation): an artifact verifies if any key verifies it. */
typedef struct keys_public_set {
    size_t count;
    keys_public keys[KEYS_MAX_PUBLIC];
} keys_public_set;

typedef struct keys_private {
    unsigned char sk[64]; /* libsodium form: seed || pk */
    unsigned char pk[32];
    char key_id[KEYS_ID_LEN + 1];
} keys_private;

/* Parses one or more "-----BEGIN PUBLIC KEY-----" blocks.  0 on success;
 * -1 with a human reason in why (nothing usable, or any block not Ed25519). */
int keys_parse_public_pem(const char *text, size_t len, keys_public_set *out, char *why,
                          size_t why_len);
/* Parses one "-----BEGIN PRIVATE KEY-----" PKCS#8 Ed25519 block. */
int keys_parse_private_pem(const char *text, size_t len, keys_private *out, char *why,
                           size_t why_len);
int keys_load_public_file(const char *path, keys_public_set *out, char *why, size_t why_len);
int keys_load_private_file(const char *path, keys_private *out, char *why, size_t why_len);

/* Loads path, or if it does not exist generates a key and writes it there
 * with mode 0600 (O_EXCL, so two starters never both write). */
int keys_load_or_create_private(const char *path, keys_private *out, char *why, size_t why_len);

void keys_generate(keys_private *out);

/* Creates path (O_EXCL: never overwrites) holding data, fsynced; a
 * half-written file is removed again.  -1 with errno set. */
int keys_write_new_file(const char *path, const char *data, mode_t mode);
/* fsyncs the directory holding path, so a new file's name is durable too. */
int keys_sync_parent_dir(const char *path);
/* PEM text of the key; malloc'd, caller frees.  NULL on OOM. */
char *keys_private_pem(const keys_private *key);
char *keys_public_pem(const unsigned char pk[32]);
void keys_key_id(const unsigned char pk[32], char out[KEYS_ID_LEN + 1]);
/* Wipes the secret. */
void keys_private_wipe(keys_private *key);

#endif
