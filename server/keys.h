/* server/keys.h: paved's own signing keys (ES256) in a directory: loading them,
 * publishing them as a JWKS and rotating them with overlap.
 *
 * Layout of the directory (mode 0700 when paved creates it):
 *   <kid>.pem   one EC P-256 private key (PKCS #8 PEM), created with mode 0600
 *   keys.json   {"keys":[{"kid","created_ms","retired_ms"|null,"publish_until_ms"|null}]}
 *               in creation order, replaced atomically (temporary file, fsync, rename)
 *   .lock       flock()ed while a rotation writes, so two rotations never interleave
 * A kid is "k-" and 16 lowercase hex digits. The current key is the newest one that is
 * not retired; retired keys stay in the JWKS until their publish_until_ms, so every
 * token they signed can still be verified until it expires. */
#ifndef PV_KEYS_H
#define PV_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "status.h"

#define KEYS_INDEX "keys.json"
/* Length of a kid ("k-" + 16 hex digits); buffers hold KEYS_KID_LEN + 1 bytes. */
#define KEYS_KID_LEN 18
/* A retired key stays published for the longest token lifetime plus this margin: the
 * largest clock leeway credentials.leeway allows (10 minutes), which also covers a
 * server that takes a while to reload after a rotation. */
#define KEYS_PUBLISH_MARGIN_S 600
/* keys.json holds at most this many keys; rotating more often than max_ttl allows is
 * refused beyond it. */
#define KEYS_MAX 64

/* One loaded key set. Immutable after keys_load, so any number of threads may use it
 * at once; a rotation writes the directory, and the server loads a new set (see
 * keys_is_stale) and frees the old one once no request uses it. */
struct keys;

/* One entry of a key set, as keys_list reports it. Times are Unix epoch milliseconds;
 * -1 for "null" (not retired; no end of publication). */
struct keys_info {
    char kid[KEYS_KID_LEN + 1];
    int64_t created_ms;
    int64_t retired_ms;
    int64_t publish_until_ms;
    bool is_current;
};

/* Loads keys.json and every private key it names from 'dir' (borrowed). On PV_OK *out
 * is the set (free with keys_free). Returns PV_ENOENT when 'dir' has no keys.json, or
 * no key that is not retired (keys_ensure or `paved keys rotate` make one); PV_EIO when
 * a file cannot be read; PV_EINVAL naming the file when keys.json or a key is
 * malformed (not P-256, a bad kid, ...). Thread-safe. */
pv_status keys_load(struct keys **out, const char *dir, struct pv_err *err);

/* Frees 'ks' (the keys are wiped by OpenSSL). keys_free(NULL) does nothing. */
void keys_free(struct keys *ks);

/* Returns the current signing key of 'ks' (borrowed: valid until keys_free) and, when
 * 'kid_out' is not NULL, its kid in *kid_out (borrowed likewise). Never NULL: keys_load
 * refuses a set without one. Thread-safe. */
EVP_PKEY *keys_current(const struct keys *ks, const char **kid_out);

/* Returns the JWKS of 'ks' at 'now_ms': {"keys":[...]} with the public JWK of every key
 * whose publish_until_ms is null or after 'now_ms', newest first (the caller frees it
 * with cJSON_Delete). Thread-safe. */
cJSON *keys_jwks(const struct keys *ks, int64_t now_ms);

/* The number of keys in 'ks', and the entry 'i' (0 is the oldest) copied into *out. */
size_t keys_count(const struct keys *ks);
void keys_info(const struct keys *ks, size_t i, struct keys_info *out);

/* True when keys.json in the directory 'ks' came from has been replaced since 'ks' was
 * loaded (each write renames a new file into place), or cannot be read: the caller
 * should keys_load again. One stat(); thread-safe. */
bool keys_is_stale(const struct keys *ks);

/* Creates a new P-256 key in 'dir' (borrowed; created with mode 0700, parents 0755,
 * when missing) and makes it current: the previous current key is retired at 'now_ms'
 * and stays published until 'now_ms' + ('max_ttl_s' + KEYS_PUBLISH_MARGIN_S) * 1000;
 * keys whose publication ended by 'now_ms' are removed (their file and their entry),
 * as are stray <kid>.pem files keys.json does not name. 'max_ttl_s' is the longest
 * lifetime of a token signed by the retiring key (credentials.max_ttl), 60 to 86400.
 * The new kid is written to 'new_kid_out' ('cap' bytes, at least KEYS_KID_LEN + 1).
 * Holds an exclusive flock on dir/.lock meanwhile. Returns PV_EINVAL for bad
 * arguments, a malformed keys.json or KEYS_MAX keys still published; PV_EIO with the
 * path when the directory cannot be written. A failed rotation leaves keys.json as it
 * was. Thread-safe (with other processes too, through the lock). */
pv_status keys_rotate(const char *dir, int64_t max_ttl_s, int64_t now_ms, char *new_kid_out,
                      size_t cap, struct pv_err *err);

/* Makes sure 'dir' has a current key: when keys_load says PV_ENOENT (no keys yet),
 * rotates once as keys_rotate does; *is_created_out (may be NULL) says whether it did.
 * Returns what keys_load or keys_rotate returned otherwise. The server calls it at
 * start, so a fresh installation needs no manual step. */
pv_status keys_ensure(const char *dir, int64_t max_ttl_s, int64_t now_ms, bool *is_created_out,
                      struct pv_err *err);

#endif
