/* server/keys.c: paved's signing keys in keys_dir: the index keys.json, one PEM file per
 * key, rotation with overlap under a file lock, and the JWKS built from a loaded set.
 * Owns the on-disk layout described in keys.h. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "fsutil.h"
#include "jwt.h"
#include "log.h"
#include "xalloc.h"

#define INDEX_MAX_BYTES ((size_t)64 << 10)
#define PEM_MAX_BYTES ((size_t)16 << 10)
#define LOCK_FILE ".lock"

struct entry {
    char kid[KEYS_KID_LEN + 1];
    int64_t created_ms;
    int64_t retired_ms;       /* -1: not retired */
    int64_t publish_until_ms; /* -1: no end */
    EVP_PKEY *pkey;           /* loaded sets only */
    cJSON *jwk;               /* loaded sets only: the public JWK */
};

struct keys {
    char *dir;
    struct entry *v; /* in creation order */
    size_t n;
    size_t current; /* index into v */
    struct stat index_st;
};

/* ---- Small helpers ---- */

static bool is_kid(const char *s)
{
    if (strlen(s) != KEYS_KID_LEN || s[0] != 'k' || s[1] != '-')
        return false;
    for (const char *c = s + 2; *c != '\0'; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/* "dir/<kid>.pem"; the caller frees it. */
static char *pem_path(const char *dir, const char *kid)
{
    char name[KEYS_KID_LEN + 8];

    snprintf(name, sizeof(name), "%s.pem", kid);
    return fs_join(dir, name);
}

static pv_status ossl_fail(struct pv_err *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[160] = "unknown OpenSSL error";

    if (e != 0)
        ERR_error_string_n(e, msg, sizeof(msg));
    ERR_clear_error();
    return pv_err_set(err, PV_EIO, "%s: %s", what, msg);
}

/* Writes 'len' bytes of 'p' to 'fd', then syncs. */
static pv_status write_all(int fd, const char *p, size_t len, const char *path, struct pv_err *err)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pv_err_set(err, PV_EIO, "%s: write: %s", path,
                              n < 0 ? strerror(errno) : "no progress");
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0)
        return pv_err_set(err, PV_EIO, "%s: fsync: %s", path, strerror(errno));
    return PV_OK;
}

/* Makes a rename or unlink in 'dir' durable. */
static pv_status sync_dir(const char *dir, struct pv_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pv_status rc = PV_OK;

    if (fd < 0)
        return pv_err_set(err, PV_EIO, "%s: %s", dir, strerror(errno));
    if (fsync(fd) != 0)
        rc = pv_err_set(err, PV_EIO, "%s: fsync: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

/* Opens dir/.lock and takes 'how' (LOCK_EX or LOCK_SH) on it; *fd_out is the
 * descriptor to close. With 'is_optional' a missing lock file (a read-only directory
 * paved never rotated in) gives PV_OK and *fd_out = -1. */
static pv_status lock_dir(const char *dir, int how, bool is_optional, int *fd_out,
                          struct pv_err *err)
{
    char *path = fs_join(dir, LOCK_FILE);
    int fd = how == LOCK_EX ? open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)
                            : open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    pv_status rc = PV_OK;

    if (fd < 0) {
        if (!(is_optional && errno == ENOENT))
            rc = pv_err_set(err, PV_EIO, "%s: %s", path, strerror(errno));
        *fd_out = -1;
        free(path);
        return rc;
    }
    while (flock(fd, how) != 0) {
        if (errno == EINTR)
            continue;
        rc = pv_err_set(err, PV_EIO, "%s: flock: %s", path, strerror(errno));
        close(fd);
        fd = -1;
        break;
    }
    free(path);
    *fd_out = fd;
    return rc;
}

static void unlock_dir(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* ---- keys.json ---- */

/* *out = the whole millisecond count at o[name]; 'is_nullable' lets it be null (-1). */
static pv_status ms_member(const cJSON *o, const char *name, bool is_nullable, int64_t *out,
                           const char *path, size_t i, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (is_nullable && (v == NULL || cJSON_IsNull(v))) {
        *out = -1;
        return PV_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 9e15) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return pv_err_set(err, PV_EINVAL, "%s: keys[%zu].%s must be a whole number of ms%s", path,
                          i, name, is_nullable ? " or null" : "");
    *out = (int64_t)v->valuedouble;
    return PV_OK;
}

/* Parses the index 'text' into *v_out / *n_out (the caller frees *v_out; no keys are
 * loaded). */
static pv_status parse_index(const char *text, size_t len, const char *path, struct entry **v_out,
                             size_t *n_out, struct pv_err *err)
{
    cJSON *doc = cJSON_ParseWithLength(text, len);
    const cJSON *arr = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "keys") : NULL;
    const cJSON *item;
    struct entry *v = NULL;
    size_t n = 0;
    pv_status rc = PV_OK;

    if (!cJSON_IsArray(arr)) {
        rc = pv_err_set(err, PV_EINVAL, "%s: not a key index (an object with a \"keys\" list)",
                        path);
        goto done;
    }
    if (cJSON_GetArraySize(arr) > KEYS_MAX) {
        rc = pv_err_set(err, PV_EINVAL, "%s: more than %d keys", path, KEYS_MAX);
        goto done;
    }
    v = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*v));
    cJSON_ArrayForEach(item, arr)
    {
        struct entry *e = &v[n];
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(item, "kid");

        if (!cJSON_IsString(kid) || !is_kid(kid->valuestring)) {
            rc = pv_err_set(err, PV_EINVAL, "%s: keys[%zu].kid must be \"k-\" and 16 hex digits",
                            path, n);
            goto done;
        }
        memcpy(e->kid, kid->valuestring, KEYS_KID_LEN + 1);
        for (size_t j = 0; j < n; j++) {
            if (strcmp(v[j].kid, e->kid) == 0) {
                rc = pv_err_set(err, PV_EINVAL, "%s: kid %s is listed twice", path, e->kid);
                goto done;
            }
        }
        rc = ms_member(item, "created_ms", false, &e->created_ms, path, n, err);
        if (rc == PV_OK)
            rc = ms_member(item, "retired_ms", true, &e->retired_ms, path, n, err);
        if (rc == PV_OK)
            rc = ms_member(item, "publish_until_ms", true, &e->publish_until_ms, path, n, err);
        if (rc)
            goto done;
        n++;
    }
    *v_out = v;
    *n_out = n;
    v = NULL;
done:
    free(v);
    cJSON_Delete(doc);
    return rc;
}

/* Reads dir/keys.json into *v_out / *n_out; PV_ENOENT when there is none. 'st_out'
 * (may be NULL) receives its stat() from before the read. */
static pv_status read_index(const char *dir, struct entry **v_out, size_t *n_out,
                            struct stat *st_out, struct pv_err *err)
{
    char *path = fs_join(dir, KEYS_INDEX);
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    pv_status rc = PV_OK;

    if (stat(path, &st) != 0) {
        rc = errno == ENOENT ? pv_err_set(err, PV_ENOENT, "no signing keys in %s yet", dir)
                             : pv_err_set(err, PV_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    rc = fs_read_file(path, INDEX_MAX_BYTES, &text, &len, err);
    if (rc == PV_ENOENT)
        rc = pv_err_set(err, PV_ENOENT, "no signing keys in %s yet", dir);
    if (rc == PV_OK)
        rc = parse_index(text, len, path, v_out, n_out, err);
    if (rc == PV_OK && st_out != NULL)
        *st_out = st;
done:
    free(text);
    free(path);
    return rc;
}

/* Writes the index of 'v' ('n' entries) to dir/keys.json atomically. */
static pv_status write_index(const char *dir, const struct entry *v, size_t n, struct pv_err *err)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "keys");
    char *tmp = fs_join(dir, "." KEYS_INDEX ".XXXXXX");
    char *path = fs_join(dir, KEYS_INDEX);
    char *text = NULL;
    pv_status rc = PV_OK;
    int fd;

    PV_ASSERT(doc != NULL && arr != NULL);
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();

        PV_ASSERT(o != NULL);
        cJSON_AddItemToArray(arr, o);
        PV_ASSERT(cJSON_AddStringToObject(o, "kid", v[i].kid) != NULL);
        PV_ASSERT(cJSON_AddNumberToObject(o, "created_ms", (double)v[i].created_ms) != NULL);
        if (v[i].retired_ms < 0)
            PV_ASSERT(cJSON_AddNullToObject(o, "retired_ms") != NULL);
        else
            PV_ASSERT(cJSON_AddNumberToObject(o, "retired_ms", (double)v[i].retired_ms) != NULL);
        if (v[i].publish_until_ms < 0)
            PV_ASSERT(cJSON_AddNullToObject(o, "publish_until_ms") != NULL);
        else
            PV_ASSERT(cJSON_AddNumberToObject(o, "publish_until_ms",
                                              (double)v[i].publish_until_ms) != NULL);
    }
    text = cJSON_Print(doc);
    PV_ASSERT(text != NULL);
    fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0) {
        rc = pv_err_set(err, PV_EIO, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    rc = write_all(fd, text, strlen(text), tmp, err);
    if (close(fd) != 0 && rc == PV_OK)
        rc = pv_err_set(err, PV_EIO, "%s: close: %s", tmp, strerror(errno));
    if (rc == PV_OK && rename(tmp, path) != 0)
        rc = pv_err_set(err, PV_EIO, "%s: rename: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
done:
    free(text);
    free(path);
    free(tmp);
    cJSON_Delete(doc);
    return rc;
}

/* ---- Loading ---- */

/* Loads dir/<e->kid>.pem into e->pkey and e->jwk. */
static pv_status load_key(const char *dir, struct entry *e, struct pv_err *err)
{
    char *path = pem_path(dir, e->kid);
    char *pem = NULL;
    size_t len = 0;
    struct stat st;
    BIO *bio = NULL;
    pv_status rc;

    rc = fs_read_file(path, PEM_MAX_BYTES, &pem, &len, err);
    if (rc) {
        /* A key the index names is missing: not "no keys yet", which would rotate. */
        if (rc == PV_ENOENT)
            rc = pv_err_set(err, PV_EIO, "%s: missing (%s names key %s)", path, KEYS_INDEX, e->kid);
        goto done;
    }
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        log_msg(LOG_WARN, "keys", "key file %s is accessible to others (mode %03o): chmod 600 it",
                path, (unsigned)(st.st_mode & 0777));
    bio = BIO_new_mem_buf(pem, (int)len);
    PV_ASSERT(bio != NULL);
    e->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (e->pkey == NULL) {
        ERR_clear_error();
        rc = pv_err_set(err, PV_EINVAL, "%s: not a PEM private key", path);
        goto done;
    }
    e->jwk = jwt_public_jwk(e->pkey, e->kid);
    if (e->jwk == NULL)
        rc = pv_err_set(err, PV_EINVAL, "%s: not an EC P-256 key", path);
done:
    BIO_free(bio);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    free(path);
    return rc;
}

pv_status keys_load(struct keys **out, const char *dir, struct pv_err *err)
{
    struct keys *ks = xcalloc(1, sizeof(*ks));
    bool has_current = false;
    int lock_fd;
    pv_status rc;

    ks->dir = xstrdup(dir);
    /* Shared with rotations, so a key file is never removed between reading the index
     * and reading the key; a directory without the lock file has had no rotation. */
    rc = lock_dir(dir, LOCK_SH, true, &lock_fd, err);
    if (rc)
        goto fail;
    rc = read_index(dir, &ks->v, &ks->n, &ks->index_st, err);
    for (size_t i = 0; rc == PV_OK && i < ks->n; i++)
        rc = load_key(dir, &ks->v[i], err);
    unlock_dir(lock_fd);
    if (rc)
        goto fail;
    for (size_t i = 0; i < ks->n; i++) {
        if (ks->v[i].retired_ms < 0) {
            ks->current = i;
            has_current = true;
        }
    }
    if (!has_current) {
        rc = pv_err_set(err, PV_ENOENT, "no current signing key in %s (every key is retired)", dir);
        goto fail;
    }
    *out = ks;
    return PV_OK;
fail:
    keys_free(ks);
    return rc;
}

void keys_free(struct keys *ks)
{
    if (ks == NULL)
        return;
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_free(ks->v[i].pkey);
        cJSON_Delete(ks->v[i].jwk);
    }
    free(ks->v);
    free(ks->dir);
    free(ks);
}

EVP_PKEY *keys_current(const struct keys *ks, const char **kid_out)
{
    const struct entry *e = &ks->v[ks->current];

    if (kid_out != NULL)
        *kid_out = e->kid;
    return e->pkey;
}

cJSON *keys_jwks(const struct keys *ks, int64_t now_ms)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "keys");

    PV_ASSERT(doc != NULL && arr != NULL);
    for (size_t i = ks->n; i-- > 0;) {
        const struct entry *e = &ks->v[i];
        cJSON *jwk;

        if (e->publish_until_ms >= 0 && e->publish_until_ms <= now_ms)
            continue;
        jwk = cJSON_Duplicate(e->jwk, true);
        PV_ASSERT(jwk != NULL);
        cJSON_AddItemToArray(arr, jwk);
    }
    return doc;
}

size_t keys_count(const struct keys *ks)
{
    return ks->n;
}

void keys_info(const struct keys *ks, size_t i, struct keys_info *out)
{
    const struct entry *e = &ks->v[i];

    PV_ASSERT(i < ks->n);
    memcpy(out->kid, e->kid, sizeof(out->kid));
    out->created_ms = e->created_ms;
    out->retired_ms = e->retired_ms;
    out->publish_until_ms = e->publish_until_ms;
    out->is_current = i == ks->current;
}

bool keys_is_stale(const struct keys *ks)
{
    char *path = fs_join(ks->dir, KEYS_INDEX);
    struct stat st;
    bool is_stale;

    is_stale = stat(path, &st) != 0 || st.st_ino != ks->index_st.st_ino ||
               st.st_dev != ks->index_st.st_dev || st.st_size != ks->index_st.st_size ||
               st.st_mtim.tv_sec != ks->index_st.st_mtim.tv_sec ||
               st.st_mtim.tv_nsec != ks->index_st.st_mtim.tv_nsec;
    free(path);
    return is_stale;
}

/* ---- Rotation ---- */

/* Generates a P-256 key, writes it to dir/<kid>.pem (O_EXCL, mode 0600) and fills 'e'
 * with its kid (unique among 'v'). */
static pv_status new_key(const char *dir, const struct entry *v, size_t n, struct entry *e,
                         struct pv_err *err)
{
    EVP_PKEY *key = NULL;
    BIO *bio = NULL;
    char *path = NULL;
    char *data = NULL;
    unsigned char rnd[8];
    long len;
    pv_status rc = PV_OK;
    int fd;

    for (bool is_unique = false; !is_unique;) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return ossl_fail(err, "RAND_bytes");
        snprintf(e->kid, sizeof(e->kid), "k-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        is_unique = true;
        for (size_t i = 0; i < n; i++)
            if (strcmp(v[i].kid, e->kid) == 0)
                is_unique = false;
    }
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL)
        return ossl_fail(err, "generating a P-256 key");
    /* The secure-memory BIO clears its buffer when freed. */
    bio = BIO_new(BIO_s_secmem());
    PV_ASSERT(bio != NULL);
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = ossl_fail(err, "PEM_write_bio_PrivateKey");
        goto done;
    }
    len = BIO_get_mem_data(bio, &data);
    PV_ASSERT(len > 0 && data != NULL);
    path = pem_path(dir, e->kid);
    /* Created 0600 from the start: never a moment when others could open it. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = pv_err_set(err, PV_EIO, "%s: %s", path, strerror(errno));
        goto done;
    }
    rc = write_all(fd, data, (size_t)len, path, err);
    if (close(fd) != 0 && rc == PV_OK)
        rc = pv_err_set(err, PV_EIO, "%s: close: %s", path, strerror(errno));
    if (rc)
        unlink(path);
done:
    free(path);
    BIO_free(bio);
    EVP_PKEY_free(key);
    return rc;
}

/* Removes dir/<kid>.pem files that the index 'v' ('n' entries) does not name: keys
 * whose publication ended, or left by a rotation that failed after writing its key. */
static void sweep(const char *dir, const struct entry *v, size_t n)
{
    char **names = NULL;
    size_t n_names = 0;
    struct pv_err err = {PV_OK, ""};

    if (fs_list_dir(dir, &names, &n_names, &err) != PV_OK) {
        log_msg(LOG_WARN, "keys", "cannot list %s to remove old keys: %s", dir, err.msg);
        return;
    }
    for (size_t i = 0; i < n_names; i++) {
        char kid[KEYS_KID_LEN + 1];
        bool is_listed = false;
        size_t len = strlen(names[i]);
        char *path;

        if (len != KEYS_KID_LEN + 4 || !fs_has_suffix(names[i], ".pem"))
            continue;
        memcpy(kid, names[i], KEYS_KID_LEN);
        kid[KEYS_KID_LEN] = '\0';
        if (!is_kid(kid))
            continue;
        for (size_t j = 0; j < n; j++)
            if (strcmp(v[j].kid, kid) == 0)
                is_listed = true;
        if (is_listed)
            continue;
        path = fs_join(dir, names[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            log_msg(LOG_WARN, "keys", "cannot remove old key %s: %s", path, strerror(errno));
        else
            log_msg(LOG_INFO, "keys", "removed key %s: no longer published", kid);
        free(path);
    }
    fs_names_free(names, n_names);
}

/* keys_rotate and keys_ensure: with 'is_ensure', does nothing when a current key
 * exists (checked under the lock, so two servers starting at once make one key). */
static pv_status rotate(const char *dir, int64_t max_ttl_s, int64_t now_ms, bool is_ensure,
                        char *new_kid_out, size_t cap, bool *is_created_out, struct pv_err *err)
{
    struct entry *v = NULL;
    size_t n = 0;
    size_t kept = 0;
    bool has_current = false;
    int lock_fd = -1;
    char *made = NULL;
    pv_status rc;

    if (max_ttl_s < 60 || max_ttl_s > 86400)
        return pv_err_set(err, PV_EINVAL, "max_ttl of %lld s: must be from 1m to 24h",
                          (long long)max_ttl_s);
    if (now_ms <= 0)
        return pv_err_set(err, PV_EINVAL, "bad time %lld", (long long)now_ms);
    if (new_kid_out != NULL && cap < KEYS_KID_LEN + 1)
        return pv_err_set(err, PV_EINVAL, "kid buffer of %zu bytes is too small", cap);
    rc = fs_make_dirs(dir, "keys directory", err);
    if (rc)
        return rc;
    rc = lock_dir(dir, LOCK_EX, false, &lock_fd, err);
    if (rc)
        return rc;
    rc = read_index(dir, &v, &n, NULL, err);
    if (rc == PV_ENOENT) {
        rc = PV_OK;
        v = NULL;
        n = 0;
    }
    if (rc)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (v[i].retired_ms < 0)
            has_current = true;
    if (is_ensure && has_current) {
        if (is_created_out != NULL)
            *is_created_out = false;
        goto done;
    }
    /* Drop the keys whose publication has ended; their files go after the new index is
     * in place. */
    for (size_t i = 0; i < n; i++)
        if (v[i].publish_until_ms < 0 || v[i].publish_until_ms > now_ms)
            v[kept++] = v[i];
    n = kept;
    if (n >= KEYS_MAX) {
        rc = pv_err_set(err, PV_EINVAL,
                        "%s: %d keys are still published; wait until older ones expire", dir,
                        KEYS_MAX);
        goto done;
    }
    v = xrealloc(v, (n + 1) * sizeof(*v));
    memset(&v[n], 0, sizeof(v[n]));
    rc = new_key(dir, v, n, &v[n], err);
    if (rc)
        goto done;
    made = pem_path(dir, v[n].kid);
    /* The key's directory entry is durable before an index that names it. */
    rc = sync_dir(dir, err);
    if (rc) {
        unlink(made);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i].retired_ms < 0) {
            v[i].retired_ms = now_ms;
            v[i].publish_until_ms = now_ms + (max_ttl_s + KEYS_PUBLISH_MARGIN_S) * 1000;
        }
    }
    v[n].created_ms = now_ms;
    v[n].retired_ms = -1;
    v[n].publish_until_ms = -1;
    n++;
    rc = write_index(dir, v, n, err);
    if (rc) {
        unlink(made);
        goto done;
    }
    sweep(dir, v, n);
    rc = sync_dir(dir, err);
    if (rc)
        goto done;
    log_msg(LOG_INFO, "keys", "new signing key %s in %s", v[n - 1].kid, dir);
    if (new_kid_out != NULL)
        memcpy(new_kid_out, v[n - 1].kid, KEYS_KID_LEN + 1);
    if (is_created_out != NULL)
        *is_created_out = true;
done:
    unlock_dir(lock_fd);
    free(made);
    free(v);
    return rc;
}

pv_status keys_rotate(const char *dir, int64_t max_ttl_s, int64_t now_ms, char *new_kid_out,
                      size_t cap, struct pv_err *err)
{
    if (new_kid_out == NULL)
        return pv_err_set(err, PV_EINVAL, "no buffer for the new kid");
    return rotate(dir, max_ttl_s, now_ms, false, new_kid_out, cap, NULL, err);
}

pv_status keys_ensure(const char *dir, int64_t max_ttl_s, int64_t now_ms, bool *is_created_out,
                      struct pv_err *err)
{
    struct keys *ks = NULL;
    pv_status rc;

    /* Loading first needs no write access: a read-only directory with keys (a mounted
     * Secret) is fine. */
    rc = keys_load(&ks, dir, err);
    keys_free(ks);
    if (rc == PV_OK && is_created_out != NULL)
        *is_created_out = false;
    if (rc != PV_ENOENT)
        return rc;
    return rotate(dir, max_ttl_s, now_ms, true, NULL, 0, is_created_out, err);
}
