/* tests/unit/test_jwt.c: short-lived credentials, crypto side: strict base64url, ES256
 * signing and RS256/ES256 verification (round trip, tampering, alg none, HS256 key
 * confusion, claims, malformed tokens), the keys directory (modes, rotation with
 * overlap, keys_ensure), the OIDC verifier against a JWKS served on loopback (cache,
 * unknown-kid refetch limit, endpoint down or answering garbage) and the credentials:
 * section of the config. Works in a mkdtemp directory removed at the end. */
#include "jwt.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include "config.h"
#include "fsutil.h"
#include "keys.h"
#include "oidc.h"
#include "t.h"
#include "xalloc.h"

/* 2026-12-04T10:00:00Z */
#define T0_S 1796378400LL
#define T0_MS (T0_S * 1000)

static char root[128];

static char *path_in(const char *name)
{
    return fs_join(root, name);
}

/* ---- Building tokens by hand ---- */

static char *b64s(const char *s)
{
    return jwt_b64url_encode(s, strlen(s));
}

/* "b64(header).b64(payload).b64(sig)"; the caller frees it. */
static char *compose(const char *header, const char *payload, const unsigned char *sig,
                     size_t sig_len)
{
    char *h = b64s(header);
    char *p = b64s(payload);
    char *s = jwt_b64url_encode(sig, sig_len);
    size_t cap = strlen(h) + strlen(p) + strlen(s) + 3;
    char *t = xmalloc(cap);

    snprintf(t, cap, "%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return t;
}

/* The DER signature of SHA-256 over 'input' with 'key' (RSA: PKCS #1 v1.5). */
static unsigned char *sign_raw(EVP_PKEY *key, const char *input, size_t *len_out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t len = 0;

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(md, NULL, &len, (const unsigned char *)input, strlen(input)) == 1) {
        sig = xmalloc(len);
        if (EVP_DigestSign(md, sig, &len, (const unsigned char *)input, strlen(input)) != 1)
            len = 0;
    }
    EVP_MD_CTX_free(md);
    *len_out = len;
    return sig;
}

/* A token with any header, signed with 'key': ES256 as JOSE r||s (or left DER when
 * 'is_der'), RS256 as is. */
static char *sign_custom(EVP_PKEY *key, const char *header, const char *payload, bool is_der)
{
    char *h = b64s(header);
    char *p = b64s(payload);
    size_t cap = strlen(h) + strlen(p) + 2;
    char *input = xmalloc(cap);
    size_t der_len = 0;
    unsigned char *der;
    unsigned char rs[64];
    const unsigned char *sig;
    size_t sig_len;
    char *s;
    char *t;

    snprintf(input, cap, "%s.%s", h, p);
    der = sign_raw(key, input, &der_len);
    sig = der;
    sig_len = der_len;
    if (EVP_PKEY_is_a(key, "EC") && !is_der) {
        const unsigned char *q = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
        const BIGNUM *r = NULL;
        const BIGNUM *ss = NULL;

        ECDSA_SIG_get0(es, &r, &ss);
        BN_bn2binpad(r, rs, 32);
        BN_bn2binpad(ss, rs + 32, 32);
        ECDSA_SIG_free(es);
        sig = rs;
        sig_len = 64;
    }
    s = jwt_b64url_encode(sig, sig_len);
    t = xmalloc(cap + strlen(s) + 1);
    snprintf(t, cap + strlen(s) + 1, "%s.%s", input, s);
    free(s);
    free(der);
    free(input);
    free(h);
    free(p);
    return t;
}

/* Claims with iss, aud (a JSON value), exp, and optionally nbf/iat (0: absent). */
static char *claims_json(const char *iss, const char *aud_json, long long exp, long long nbf,
                         long long iat)
{
    char *out = xmalloc(512);
    int n = snprintf(out, 512, "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"svc\",\"exp\":%lld", iss,
                     aud_json, exp);

    if (nbf != 0)
        n += snprintf(out + n, 512 - (size_t)n, ",\"nbf\":%lld", nbf);
    if (iat != 0)
        n += snprintf(out + n, 512 - (size_t)n, ",\"iat\":%lld", iat);
    snprintf(out + n, 512 - (size_t)n, "}");
    return out;
}

/* ---- base64url ---- */

static void test_b64url(void)
{
    static const struct {
        const char *raw;
        const char *enc;
    } vec[] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
    };
    static const char *const bad[] = {
        "Zg==",   "Zm8=", "Zg=",  "Z",  "Zm9vY",
        "Zm 9v",  "Zm+v", "Zm/v", "Zh", /* non-zero trailing bits: "Zg" is the only encoding of "f"
                                         */
        "Zm9",                          /* ditto for "fo" */
        "Zm\n9v",
    };
    unsigned char *out = NULL;
    size_t len = 0;
    struct pv_err err = {PV_OK, ""};

    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char *e = jwt_b64url_encode(vec[i].raw, strlen(vec[i].raw));

        if (!T_EQ_STR(e, vec[i].enc))
            t_diag("vector %zu", i);
        free(e);
        if (T_EQ_INT(jwt_b64url_decode(vec[i].enc, strlen(vec[i].enc), &out, &len, &err), PV_OK)) {
            T_EQ_INT(len, strlen(vec[i].raw));
            T_EQ_MEM(out, vec[i].raw, len);
            free(out);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (!T_EQ_INT(jwt_b64url_decode(bad[i], strlen(bad[i]), &out, &len, &err), PV_EINVAL))
            t_diag("accepted bad base64url \"%s\"", bad[i]);
    }
    T_EQ_INT(jwt_b64url_decode("Zg==", 4, &out, &len, &err), PV_EINVAL);
    T_OK(strstr(err.msg, "padding") != NULL);
}

/* ---- Keys directory ---- */

static void test_keys_dir(void)
{
    char *dir = path_in("keys");
    char *index = fs_join(dir, KEYS_INDEX);
    struct pv_err err = {PV_OK, ""};
    struct keys *ks = NULL;
    struct keys_info info;
    bool is_created = false;
    struct stat st;
    char *pem;

    /* Nothing there yet. */
    T_EQ_INT(keys_load(&ks, dir, &err), PV_ENOENT);
    T_OK(strstr(err.msg, "no signing keys") != NULL);
    /* keys_ensure on a missing directory makes it (0700) and one key (0600). */
    T_EQ_INT(keys_ensure(dir, 3600, T0_MS, &is_created, &err), PV_OK);
    T_OK(is_created);
    T_EQ_INT(stat(dir, &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0700);
    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    T_EQ_INT(keys_count(ks), 1);
    keys_info(ks, 0, &info);
    T_OK(info.is_current);
    T_EQ_INT(info.created_ms, T0_MS);
    T_EQ_INT(info.retired_ms, -1);
    T_EQ_INT(info.publish_until_ms, -1);
    T_EQ_INT(strlen(info.kid), KEYS_KID_LEN);
    T_OK(strncmp(info.kid, "k-", 2) == 0);
    pem = fs_join(dir, info.kid);
    pem = xrealloc(pem, strlen(pem) + 5);
    memcpy(pem + strlen(pem), ".pem", 5);
    T_EQ_INT(stat(pem, &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0600);
    T_EQ_INT(stat(index, &st), 0);
    T_OK((st.st_mode & 077) == 0);
    free(pem);
    /* A second keys_ensure leaves it alone. */
    T_EQ_INT(keys_ensure(dir, 3600, T0_MS + 1000, &is_created, &err), PV_OK);
    T_OK(!is_created);
    T_OK(!keys_is_stale(ks));
    keys_free(ks);
    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    T_EQ_INT(keys_count(ks), 1);
    keys_free(ks);
    /* Bad arguments. */
    {
        char kid[KEYS_KID_LEN + 1];

        T_EQ_INT(keys_rotate(dir, 10, T0_MS, kid, sizeof(kid), &err), PV_EINVAL);
        T_EQ_INT(keys_rotate(dir, 3600, T0_MS, kid, 4, &err), PV_EINVAL);
    }
    free(index);
    free(dir);
}

/* Rotation: the old key is published until max_ttl + margin after the rotation, tokens
 * it signed keep verifying meanwhile, and the next rotation after that deletes it. */
static void test_rotation(void)
{
    char *dir = path_in("rot");
    struct pv_err err = {PV_OK, ""};
    struct keys *ks = NULL;
    char k1[KEYS_KID_LEN + 1];
    char k2[KEYS_KID_LEN + 1];
    char k3[KEYS_KID_LEN + 1];
    const char *kid = NULL;
    const int64_t max_ttl = 900;
    const int64_t t1 = T0_MS + 3600 * 1000;
    const int64_t until = t1 + (max_ttl + KEYS_PUBLISH_MARGIN_S) * 1000;
    struct keys_info info;
    char *old_token = NULL;
    cJSON *claims = NULL;
    cJSON *jwks;
    char *c;
    char *pem;
    struct stat st;

    T_EQ_INT(keys_rotate(dir, max_ttl, T0_MS, k1, sizeof(k1), &err), PV_OK);
    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    keys_current(ks, &kid);
    T_EQ_STR(kid, k1);
    /* A token signed by k1 shortly before the rotation, living max_ttl. */
    c = claims_json("paved", "\"svc\"", t1 / 1000 + max_ttl, 0, t1 / 1000);
    claims = cJSON_Parse(c);
    T_EQ_INT(jwt_sign_es256(keys_current(ks, NULL), kid, claims, &old_token, &err), PV_OK);
    cJSON_Delete(claims);
    free(c);
    keys_free(ks);

    T_EQ_INT(keys_rotate(dir, max_ttl, t1, k2, sizeof(k2), &err), PV_OK);
    T_OK(strcmp(k1, k2) != 0);
    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    keys_current(ks, &kid);
    T_EQ_STR(kid, k2);
    T_EQ_INT(keys_count(ks), 2);
    keys_info(ks, 0, &info);
    T_EQ_STR(info.kid, k1);
    T_EQ_INT(info.retired_ms, t1);
    T_EQ_INT(info.publish_until_ms, until);
    T_OK(!info.is_current);
    keys_info(ks, 1, &info);
    T_OK(info.is_current);
    /* Both published, the new one first; the old token still verifies until it expires. */
    jwks = keys_jwks(ks, until - 1);
    T_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(jwks, "keys")), 2);
    T_EQ_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(jwks, "keys"), 0), "kid")
                 ->valuestring,
             k2);
    claims = NULL;
    T_EQ_INT(jwt_verify(old_token, jwks, "paved", "svc", t1 / 1000 + max_ttl - 1, 0, &claims, &err),
             PV_OK);
    cJSON_Delete(claims);
    cJSON_Delete(jwks);
    /* At publish_until the old key leaves the JWKS. */
    jwks = keys_jwks(ks, until);
    T_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(jwks, "keys")), 1);
    T_EQ_INT(jwt_verify(old_token, jwks, "paved", "svc", until / 1000, 600, &claims, &err),
             PV_ENOENT);
    cJSON_Delete(jwks);
    keys_free(ks);

    /* Rotating before publish_until keeps k1; after it, k1 is deleted. */
    T_EQ_INT(keys_rotate(dir, max_ttl, until, k3, sizeof(k3), &err), PV_OK);
    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    T_EQ_INT(keys_count(ks), 2);
    keys_info(ks, 0, &info);
    T_EQ_STR(info.kid, k2);
    T_EQ_INT(info.publish_until_ms, until + (max_ttl + KEYS_PUBLISH_MARGIN_S) * 1000);
    keys_info(ks, 1, &info);
    T_EQ_STR(info.kid, k3);
    T_OK(info.is_current);
    pem = fs_join(dir, k1);
    pem = xrealloc(pem, strlen(pem) + 5);
    memcpy(pem + strlen(pem), ".pem", 5);
    T_OK(stat(pem, &st) != 0);
    free(pem);
    /* keys_is_stale notices a rotation. */
    T_OK(!keys_is_stale(ks));
    {
        char k4[KEYS_KID_LEN + 1];

        T_EQ_INT(keys_rotate(dir, max_ttl, until + 1000, k4, sizeof(k4), &err), PV_OK);
    }
    T_OK(keys_is_stale(ks));
    keys_free(ks);
    free(old_token);
    free(dir);
}

/* ---- Verifying ---- */

static void check_refused(const char *token, const cJSON *jwks, int64_t now, pv_status want_rc,
                          const char *want_msg, int line)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *claims = NULL;
    pv_status rc = jwt_verify(token, jwks, "paved", "svc", now, 60, &claims, &err);

    if (!T_EQ_INT(rc, want_rc) || !T_OK(strstr(err.msg, want_msg) != NULL))
        t_diag("line %d: message \"%s\", want \"%s\"", line, err.msg, want_msg);
    if (rc == PV_OK)
        cJSON_Delete(claims);
}
#define REFUSED(tok, jwks, now, rc, msg) check_refused((tok), (jwks), (now), (rc), (msg), __LINE__)

static void check_ok(const char *token, const cJSON *jwks, int64_t now, int line)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *claims = NULL;

    if (!T_EQ_INT(jwt_verify(token, jwks, "paved", "svc", now, 60, &claims, &err), PV_OK))
        t_diag("line %d: %s", line, err.msg);
    cJSON_Delete(claims);
}
#define ACCEPTED(tok, jwks, now) check_ok((tok), (jwks), (now), __LINE__)

/* Replaces the character 'at' of a copy of 's' with 'c'. */
static char *with_char(const char *s, size_t at, char c)
{
    char *t = xstrdup(s);

    t[at] = c;
    return t;
}

/* 'token' with its payload replaced by the base64url of 'payload' (header and signature
 * kept); the caller frees it. */
static char *swap_payload(const char *token, const char *payload)
{
    char *p64 = b64s(payload);
    const char *d1 = strchr(token, '.');
    const char *d2 = strchr(d1 + 1, '.');
    size_t cap = strlen(token) + strlen(p64) + 1;
    char *t = xmalloc(cap);

    snprintf(t, cap, "%.*s.%s%s", (int)(d1 - token), token, p64, d2);
    free(p64);
    return t;
}

static void test_es256(void)
{
    char *dir = path_in("sign");
    struct pv_err err = {PV_OK, ""};
    struct keys *ks = NULL;
    const char *kid = NULL;
    EVP_PKEY *key;
    cJSON *jwks;
    cJSON *claims;
    cJSON *got = NULL;
    char *c = claims_json("paved", "\"svc\"", T0_S + 600, T0_S - 10, T0_S);
    char *token = NULL;
    char *t;
    char kid_hdr[128];

    T_EQ_INT(keys_ensure(dir, 3600, T0_MS, NULL, &err), PV_OK);
    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    key = keys_current(ks, &kid);
    jwks = keys_jwks(ks, T0_MS);
    claims = cJSON_Parse(c);
    T_EQ_INT(jwt_sign_es256(key, kid, claims, &token, &err), PV_OK);

    /* Round trip, and the header is what was promised. */
    if (T_EQ_INT(jwt_verify(token, jwks, "paved", "svc", T0_S, 60, &got, &err), PV_OK)) {
        T_EQ_STR(cJSON_GetObjectItem(got, "sub")->valuestring, "svc");
        cJSON_Delete(got);
    }
    {
        unsigned char *raw = NULL;
        size_t len = 0;
        char want[128];

        T_EQ_INT(jwt_b64url_decode(token, (size_t)(strchr(token, '.') - token), &raw, &len, &err),
                 PV_OK);
        snprintf(want, sizeof(want), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
        T_EQ_STR((char *)raw, want);
        free(raw);
    }
    /* The public JWK. */
    {
        const cJSON *k = cJSON_GetArrayItem(cJSON_GetObjectItem(jwks, "keys"), 0);

        T_EQ_STR(cJSON_GetObjectItem(k, "kty")->valuestring, "EC");
        T_EQ_STR(cJSON_GetObjectItem(k, "crv")->valuestring, "P-256");
        T_EQ_STR(cJSON_GetObjectItem(k, "alg")->valuestring, "ES256");
        T_EQ_STR(cJSON_GetObjectItem(k, "use")->valuestring, "sig");
        T_EQ_INT(strlen(cJSON_GetObjectItem(k, "x")->valuestring), 43);
        T_EQ_INT(strlen(cJSON_GetObjectItem(k, "y")->valuestring), 43);
        T_OK(cJSON_GetObjectItem(k, "d") == NULL);
    }

    /* Tampered payload: another payload under the same header and signature. */
    {
        char *other = claims_json("paved", "\"svc\"", T0_S + 86400 * 365, 0, 0);

        t = swap_payload(token, other);
        REFUSED(t, jwks, T0_S, PV_EINVAL, "signature does not verify");
        free(t);
        free(other);
    }
    /* Tampered signature: the first character of it changed. */
    {
        size_t at = (size_t)(strrchr(token, '.') - token) + 1;

        t = with_char(token, at, token[at] == 'A' ? 'B' : 'A');
        REFUSED(t, jwks, T0_S, PV_EINVAL, "signature does not verify");
        free(t);
    }
    /* ES256 signatures of the wrong length, and the DER form. */
    {
        unsigned char sig[65] = {1};

        snprintf(kid_hdr, sizeof(kid_hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
        t = compose(kid_hdr, c, sig, 63);
        REFUSED(t, jwks, T0_S, PV_EINVAL, "is 64 bytes, this one 63");
        free(t);
        t = compose(kid_hdr, c, sig, 65);
        REFUSED(t, jwks, T0_S, PV_EINVAL, "signature does not verify");
        free(t);
        t = sign_custom(key, kid_hdr, c, true);
        REFUSED(t, jwks, T0_S, PV_EINVAL, "signature does not verify");
        free(t);
        /* The same header signed properly is fine. */
        t = sign_custom(key, kid_hdr, c, false);
        ACCEPTED(t, jwks, T0_S);
        free(t);
        /* All-zero r and s. */
        memset(sig, 0, sizeof(sig));
        t = compose(kid_hdr, c, sig, 64);
        REFUSED(t, jwks, T0_S, PV_EINVAL, "signature does not verify");
        free(t);
    }
    /* alg none, in any case, with and without a signature. */
    t = compose("{\"alg\":\"none\"}", c, (const unsigned char *)"", 0);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "alg none is not accepted");
    free(t);
    t = compose("{\"alg\":\"None\",\"typ\":\"JWT\"}", c, (const unsigned char *)"x", 1);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "alg none is not accepted");
    free(t);
    /* Other algorithms. */
    t = sign_custom(key, "{\"alg\":\"ES384\"}", c, false);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "alg ES384 is not accepted");
    free(t);
    t = compose("{\"alg\":\"PS256\"}", c, (const unsigned char *)"x", 1);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "alg PS256 is not accepted");
    free(t);
    t = compose("{\"typ\":\"JWT\"}", c, (const unsigned char *)"x", 1);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "has no alg");
    free(t);
    /* crit */
    snprintf(kid_hdr, sizeof(kid_hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":[\"exp\"]}",
             kid);
    t = sign_custom(key, kid_hdr, c, false);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "crit");
    free(t);
    /* A header naming "alg" twice. */
    snprintf(kid_hdr, sizeof(kid_hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"alg\":\"none\"}", kid);
    t = sign_custom(key, kid_hdr, c, false);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "\"alg\" twice");
    free(t);
    /* Header kid pointing elsewhere (jwk, jku) is ignored: the JWKS decides. */
    snprintf(kid_hdr, sizeof(kid_hdr),
             "{\"alg\":\"ES256\",\"kid\":\"%s\",\"jku\":\"https://evil.example/jwks\"}", kid);
    t = sign_custom(key, kid_hdr, c, false);
    ACCEPTED(t, jwks, T0_S);
    free(t);
    /* Unknown kid: PV_ENOENT so the caller can refresh. */
    t = sign_custom(key, "{\"alg\":\"ES256\",\"kid\":\"k3\"}", c, false);
    REFUSED(t, jwks, T0_S, PV_ENOENT, "unknown kid k3");
    free(t);
    /* No kid: fine with one key in the JWKS, refused with two. */
    t = sign_custom(key, "{\"alg\":\"ES256\"}", c, false);
    ACCEPTED(t, jwks, T0_S);
    {
        cJSON *two = cJSON_Duplicate(jwks, true);
        cJSON *k2 = cJSON_Duplicate(cJSON_GetArrayItem(cJSON_GetObjectItem(two, "keys"), 0), true);

        cJSON_ReplaceItemInObject(k2, "kid", cJSON_CreateString("other"));
        cJSON_AddItemToArray(cJSON_GetObjectItem(two, "keys"), k2);
        REFUSED(t, two, T0_S, PV_EINVAL, "token has no kid and the JWKS has 2 keys");
        cJSON_Delete(two);
    }
    free(t);
    /* A key whose "alg" or "use" says otherwise is not used. */
    {
        cJSON *j = cJSON_Duplicate(jwks, true);
        cJSON *k = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "keys"), 0);

        cJSON_ReplaceItemInObject(k, "use", cJSON_CreateString("enc"));
        REFUSED(token, j, T0_S, PV_EINVAL, "cannot verify ES256");
        cJSON_ReplaceItemInObject(k, "use", cJSON_CreateString("sig"));
        cJSON_ReplaceItemInObject(k, "alg", cJSON_CreateString("RS256"));
        REFUSED(token, j, T0_S, PV_EINVAL, "cannot verify ES256");
        /* A point off the curve. */
        cJSON_ReplaceItemInObject(k, "alg", cJSON_CreateString("ES256"));
        cJSON_ReplaceItemInObject(
            k, "y", cJSON_CreateString("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
        REFUSED(token, j, T0_S, PV_EINVAL, "not a valid EC public key");
        cJSON_Delete(j);
    }
    /* An empty JWKS, or none. */
    {
        cJSON *empty = cJSON_Parse("{\"keys\":[]}");

        REFUSED(token, empty, T0_S, PV_ENOENT, "no keys");
        REFUSED(token, NULL, T0_S, PV_ENOENT, "no keys");
        cJSON_Delete(empty);
    }

    cJSON_Delete(claims);
    free(token);
    free(c);
    cJSON_Delete(jwks);
    keys_free(ks);
    free(dir);
}

/* HS256 "signed" with the public key as the HMAC secret: the classic key confusion. */
static void test_hs256_confusion(void)
{
    char *dir = path_in("sign");
    struct pv_err err = {PV_OK, ""};
    struct keys *ks = NULL;
    const char *kid = NULL;
    EVP_PKEY *key;
    cJSON *jwks;
    char *c = claims_json("paved", "\"svc\"", T0_S + 600, 0, 0);
    char hdr[128];
    char *h64;
    char *p64;
    char input[1024];
    unsigned char mac[32];
    size_t mac_len = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    char *pub = NULL;
    long pub_len;
    char *jwk_text;
    const char *secrets[2];
    size_t secret_lens[2];

    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    key = keys_current(ks, &kid);
    jwks = keys_jwks(ks, T0_MS);
    PEM_write_bio_PUBKEY(bio, key);
    pub_len = BIO_get_mem_data(bio, &pub);
    jwk_text = cJSON_PrintUnformatted(cJSON_GetArrayItem(cJSON_GetObjectItem(jwks, "keys"), 0));
    secrets[0] = pub;
    secret_lens[0] = (size_t)pub_len;
    secrets[1] = jwk_text;
    secret_lens[1] = strlen(jwk_text);
    for (int i = 0; i < 2; i++) {
        for (int a = 0; a < 3; a++) {
            static const char *const algs[] = {"HS256", "HS384", "HS512"};
            char *t;
            char want[64];

            snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", algs[a],
                     kid);
            h64 = b64s(hdr);
            p64 = b64s(c);
            snprintf(input, sizeof(input), "%s.%s", h64, p64);
            T_OK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secrets[i], secret_lens[i],
                           (const unsigned char *)input, strlen(input), mac, sizeof(mac),
                           &mac_len) != NULL);
            t = compose(hdr, c, mac, mac_len);
            snprintf(want, sizeof(want), "alg %s is not accepted", algs[a]);
            REFUSED(t, jwks, T0_S, PV_EINVAL, want);
            free(t);
            free(h64);
            free(p64);
        }
    }
    free(jwk_text);
    BIO_free(bio);
    cJSON_Delete(jwks);
    keys_free(ks);
    free(c);
    free(dir);
}

/* Adds the base64url big-endian BIGNUM parameter 'param' of 'key' as 'name'. */
static void add_bn(cJSON *jwk, EVP_PKEY *key, const char *param, const char *name)
{
    BIGNUM *bn = NULL;
    unsigned char buf[1024];
    int len;
    char *s;

    EVP_PKEY_get_bn_param(key, param, &bn);
    len = BN_bn2bin(bn, buf);
    s = jwt_b64url_encode(buf, (size_t)len);
    cJSON_AddStringToObject(jwk, name, s);
    free(s);
    BN_free(bn);
}

static cJSON *rsa_jwks(EVP_PKEY *rsa, const char *kid)
{
    cJSON *jwks = cJSON_Parse("{\"keys\":[]}");
    cJSON *jwk = cJSON_CreateObject();

    cJSON_AddStringToObject(jwk, "kty", "RSA");
    cJSON_AddStringToObject(jwk, "kid", kid);
    cJSON_AddStringToObject(jwk, "use", "sig");
    cJSON_AddStringToObject(jwk, "alg", "RS256");
    add_bn(jwk, rsa, OSSL_PKEY_PARAM_RSA_N, "n");
    add_bn(jwk, rsa, OSSL_PKEY_PARAM_RSA_E, "e");
    cJSON_AddItemToArray(cJSON_GetObjectItem(jwks, "keys"), jwk);
    return jwks;
}

static void test_rs256(void)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    cJSON *jwks = rsa_jwks(rsa, "r1");
    cJSON *small_jwks = rsa_jwks(small, "r1");
    char *c = claims_json("paved", "[\"other\",\"svc\"]", T0_S + 600, 0, 0);
    char *t;

    T_OK(rsa != NULL && small != NULL && ec != NULL);
    t = sign_custom(rsa, "{\"alg\":\"RS256\",\"kid\":\"r1\",\"typ\":\"JWT\"}", c, false);
    ACCEPTED(t, jwks, T0_S);
    /* Another audience under the same signature. */
    {
        char *other = claims_json("paved", "\"svc\"", T0_S + 600, 0, 0);
        char *u = swap_payload(t, other);

        REFUSED(u, jwks, T0_S, PV_EINVAL, "signature does not verify");
        free(u);
        free(other);
    }
    /* The RSA key cannot verify an ES256 token with its kid. */
    {
        char *u = sign_custom(ec, "{\"alg\":\"ES256\",\"kid\":\"r1\"}", c, false);

        REFUSED(u, jwks, T0_S, PV_EINVAL, "cannot verify ES256");
        free(u);
    }
    /* HS256 with the RSA public key's PEM as the secret. */
    {
        BIO *bio = BIO_new(BIO_s_mem());
        char *pub = NULL;
        long pub_len;
        unsigned char mac[32];
        size_t mac_len = 0;
        char *h64 = b64s("{\"alg\":\"HS256\",\"kid\":\"r1\"}");
        char *p64 = b64s(c);
        char input[1024];
        char *u;

        PEM_write_bio_PUBKEY(bio, rsa);
        pub_len = BIO_get_mem_data(bio, &pub);
        snprintf(input, sizeof(input), "%s.%s", h64, p64);
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pub, (size_t)pub_len,
                  (const unsigned char *)input, strlen(input), mac, sizeof(mac), &mac_len);
        u = compose("{\"alg\":\"HS256\",\"kid\":\"r1\"}", c, mac, mac_len);
        REFUSED(u, jwks, T0_S, PV_EINVAL, "alg HS256 is not accepted");
        free(u);
        free(h64);
        free(p64);
        BIO_free(bio);
    }
    /* A signature of the wrong length. */
    {
        unsigned char sig[255] = {0};
        char *u = compose("{\"alg\":\"RS256\",\"kid\":\"r1\"}", c, sig, sizeof(sig));

        REFUSED(u, jwks, T0_S, PV_EINVAL, "signature does not verify");
        free(u);
    }
    free(t);
    /* A 1024-bit modulus is refused. */
    t = sign_custom(small, "{\"alg\":\"RS256\",\"kid\":\"r1\"}", c, false);
    REFUSED(t, small_jwks, T0_S, PV_EINVAL, "RSA modulus of 1024 bits");
    free(t);
    free(c);
    cJSON_Delete(jwks);
    cJSON_Delete(small_jwks);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
}

/* Registered claims, checked once the signature verifies. */
static void test_claims(void)
{
    char *dir = path_in("sign");
    struct pv_err err = {PV_OK, ""};
    struct keys *ks = NULL;
    const char *kid = NULL;
    EVP_PKEY *key;
    cJSON *jwks;
    char hdr[128];
    static const struct {
        const char *claims; /* printf with exp, nbf, iat offsets from T0_S */
        long long exp;
        long long nbf;
        long long iat;
        pv_status want;
        const char *msg;
    } cases[] = {
        {"ok", 600, -10, -10, PV_OK, ""},
        /* expired, within and beyond the leeway of 60 s */
        {"ok", -59, 0, 0, PV_OK, ""},
        {"ok", -60, 0, 0, PV_EINVAL, "token expired at 2026-12-04T09:59:00Z"},
        {"ok", -3600, 0, 0, PV_EINVAL, "token expired at 2026-12-04T09:00:00Z"},
        /* nbf and iat in the future */
        {"ok", 600, 60, 0, PV_OK, ""},
        {"ok", 600, 61, 0, PV_EINVAL, "not valid before 2026-12-04T10:01:01Z"},
        {"ok", 600, 0, 60, PV_OK, ""},
        {"ok", 600, 0, 120, PV_EINVAL, "issued in the future"},
    };

    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    key = keys_current(ks, &kid);
    jwks = keys_jwks(ks, T0_MS);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *c = claims_json("paved", "\"svc\"", T0_S + cases[i].exp,
                              cases[i].nbf != 0 ? T0_S + cases[i].nbf : 0,
                              cases[i].iat != 0 ? T0_S + cases[i].iat : 0);
        char *t = sign_custom(key, hdr, c, false);

        t_diag("claims case %zu: %s", i, c);
        if (cases[i].want == PV_OK)
            ACCEPTED(t, jwks, T0_S);
        else
            REFUSED(t, jwks, T0_S, cases[i].want, cases[i].msg);
        free(t);
        free(c);
    }
    /* Audience, issuer and types. */
    {
        static const struct {
            const char *claims;
            pv_status want;
            const char *msg;
        } more[] = {
            {"{\"iss\":\"paved\",\"aud\":\"x\",\"exp\":1796379000}", PV_EINVAL,
             "audience is x, want svc"},
            {"{\"iss\":\"paved\",\"aud\":[\"a\",\"b\"],\"exp\":1796379000}", PV_EINVAL,
             "audience is [a, b], want svc"},
            {"{\"iss\":\"paved\",\"aud\":[\"a\",\"svc\"],\"exp\":1796379000}", PV_OK, ""},
            {"{\"iss\":\"paved\",\"aud\":[\"a\",1],\"exp\":1796379000}", PV_EINVAL,
             "array of strings"},
            {"{\"iss\":\"paved\",\"exp\":1796379000}", PV_EINVAL, "no aud"},
            {"{\"iss\":\"other\",\"aud\":\"svc\",\"exp\":1796379000}", PV_EINVAL,
             "issuer is other, want paved"},
            {"{\"aud\":\"svc\",\"exp\":1796379000}", PV_EINVAL, "no iss"},
            {"{\"iss\":\"paved\",\"aud\":\"svc\"}", PV_EINVAL, "no exp"},
            {"{\"iss\":\"paved\",\"aud\":\"svc\",\"exp\":\"1796379000\"}", PV_EINVAL,
             "claim exp must be a number"},
            {"{\"iss\":\"paved\",\"aud\":\"svc\",\"exp\":1796379000,\"nbf\":null}", PV_EINVAL,
             "claim nbf must be a number"},
            {"{\"iss\":\"paved\",\"aud\":\"svc\",\"exp\":1796379000,\"iat\":true}", PV_EINVAL,
             "claim iat must be a number"},
            {"{\"iss\":\"paved\",\"aud\":\"svc\",\"exp\":1796379000.5}", PV_OK, ""},
            {"{\"iss\":\"paved\",\"aud\":\"svc\",\"exp\":1796379000,\"exp\":1}", PV_EINVAL,
             "\"exp\" twice"},
        };

        for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
            char *t = sign_custom(key, hdr, more[i].claims, false);

            t_diag("claims: %s", more[i].claims);
            if (more[i].want == PV_OK)
                ACCEPTED(t, jwks, T0_S);
            else
                REFUSED(t, jwks, T0_S, more[i].want, more[i].msg);
            free(t);
        }
    }
    cJSON_Delete(jwks);
    keys_free(ks);
    free(dir);
}

static void test_malformed(void)
{
    char *dir = path_in("sign");
    struct pv_err err = {PV_OK, ""};
    struct keys *ks = NULL;
    const char *kid = NULL;
    EVP_PKEY *key;
    cJSON *jwks;
    char hdr[128];
    char *c = claims_json("paved", "\"svc\"", T0_S + 600, 0, 0);
    char *good;
    char *t;
    cJSON *out = NULL;

    T_EQ_INT(keys_load(&ks, dir, &err), PV_OK);
    key = keys_current(ks, &kid);
    jwks = keys_jwks(ks, T0_MS);
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", kid);
    good = sign_custom(key, hdr, c, false);

    REFUSED("", jwks, T0_S, PV_EINVAL, "three base64url parts");
    REFUSED("abc", jwks, T0_S, PV_EINVAL, "three base64url parts");
    REFUSED("eyJhbGciOiJFUzI1NiJ9.e30", jwks, T0_S, PV_EINVAL, "three base64url parts");
    REFUSED("a.b.c.d", jwks, T0_S, PV_EINVAL, "three base64url parts");
    REFUSED(".e30.AAAA", jwks, T0_S, PV_EINVAL, "empty header");
    /* Padding, bad characters. */
    REFUSED("eyJhbGciOiJFUzI1NiJ9=.e30.AAAA", jwks, T0_S, PV_EINVAL, "padding");
    REFUSED("eyJhbGciOiJFUzI1NiJ9.e3+0.AAAA", jwks, T0_S, PV_EINVAL, "not base64url");
    REFUSED("eyJhbGciOiJFUzI1NiJ9.e30.AA*A", jwks, T0_S, PV_EINVAL, "signature");
    /* Header not JSON, not an object; payload an array; trailing bytes. */
    t = compose("not json", c, (const unsigned char *)"x", 1);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "header is not JSON");
    free(t);
    t = compose("[\"ES256\"]", c, (const unsigned char *)"x", 1);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "header is not a JSON object");
    free(t);
    t = sign_custom(key, hdr, "[1,2,3]", false);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "payload is not a JSON object");
    free(t);
    t = sign_custom(key, hdr, "{\"iss\":\"paved\"} x", false);
    REFUSED(t, jwks, T0_S, PV_EINVAL, "payload is not JSON");
    free(t);
    {
        static const char nul_payload[] = "{\"iss\":\"paved\"}\0{}";
        char *p64 = jwt_b64url_encode(nul_payload, sizeof(nul_payload) - 1);
        char *h64 = b64s(hdr);
        char buf[512];

        snprintf(buf, sizeof(buf), "%s.%s.AAAA", h64, p64);
        REFUSED(buf, jwks, T0_S, PV_EINVAL, "NUL");
        free(p64);
        free(h64);
    }
    /* Deep nesting in the payload. */
    {
        char deep[256];
        size_t n = 0;

        n += (size_t)snprintf(deep, sizeof(deep), "{\"iss\":\"paved\",\"x\":");
        for (int i = 0; i < 40; i++)
            deep[n++] = '[';
        for (int i = 0; i < 40; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        t = sign_custom(key, hdr, deep, false);
        REFUSED(t, jwks, T0_S, PV_EDEPTH, "nests deeper than 16");
        free(t);
    }
    /* 20 KiB: refused before anything is decoded. */
    {
        size_t len = 20 << 10;
        char *big = xmalloc(len + 1);

        memset(big, 'A', len);
        memcpy(big, good, strlen(good));
        big[len] = '\0';
        REFUSED(big, jwks, T0_S, PV_ETOOBIG, "longer than 16384 bytes");
        T_EQ_INT(jwt_unverified_claims(big, &out, &err), PV_ETOOBIG);
        free(big);
    }
    /* No signature. */
    {
        size_t len = (size_t)(strrchr(good, '.') - good) + 1;

        t = xstrndup(good, len);
        REFUSED(t, jwks, T0_S, PV_EINVAL, "no signature");
        free(t);
    }
    /* jwt_unverified_claims reads without verifying. */
    if (T_EQ_INT(jwt_unverified_claims(good, &out, &err), PV_OK)) {
        T_EQ_STR(cJSON_GetObjectItem(out, "iss")->valuestring, "paved");
        cJSON_Delete(out);
    }
    /* JWKS documents. */
    {
        static const struct {
            const char *text;
            pv_status want;
        } docs[] = {
            {"{\"keys\":[]}", PV_OK},
            {" {\"keys\":[{\"kty\":\"EC\"}]}\n", PV_OK},
            {"not json", PV_EPARSE},
            {"{\"keys\":[]} x", PV_EPARSE},
            {"{\"keys\":{}}", PV_EINVAL},
            {"[]", PV_EINVAL},
            {"{\"keys\":[1]}", PV_EINVAL},
            {"{\"keys\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}", PV_EDEPTH},
        };

        for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
            pv_status rc = jwt_jwks_parse(docs[i].text, strlen(docs[i].text), &out, &err);

            if (!T_EQ_INT(rc, docs[i].want))
                t_diag("JWKS %s: %s", docs[i].text, err.msg);
            if (rc == PV_OK)
                cJSON_Delete(out);
        }
    }
    /* Signing refuses a non-P-256 key and non-object claims. */
    {
        EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        cJSON *claims = cJSON_Parse(c);
        cJSON *arr = cJSON_Parse("[]");

        T_EQ_INT(jwt_sign_es256(p384, "k", claims, &t, &err), PV_EINVAL);
        T_OK(jwt_public_jwk(p384, "k") == NULL);
        T_EQ_INT(jwt_sign_es256(key, "k", arr, &t, &err), PV_EINVAL);
        cJSON_Delete(claims);
        cJSON_Delete(arr);
        EVP_PKEY_free(p384);
    }
    free(good);
    free(c);
    cJSON_Delete(jwks);
    keys_free(ks);
    free(dir);
}

/* ---- OIDC against a JWKS served on loopback ---- */

struct jwks_server {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    char *body;      /* guarded by mu */
    int status;      /* guarded by mu */
    int n_requests;  /* guarded by mu */
    bool is_stopped; /* guarded by mu */
};

static void *serve_jwks(void *arg)
{
    struct jwks_server *s = arg;

    for (int round = 0; round < 100000; round++) {
        struct pollfd p = {s->fd, POLLIN, 0};
        char req[4096];
        size_t len = 0;
        char head[256];
        char *body;
        int status;
        int c;
        bool is_stopped;

        pthread_mutex_lock(&s->mu);
        is_stopped = s->is_stopped;
        pthread_mutex_unlock(&s->mu);
        if (is_stopped)
            break;
        if (poll(&p, 1, 50) <= 0)
            continue;
        c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        while (len < sizeof(req) - 1) {
            ssize_t k = recv(c, req + len, sizeof(req) - 1 - len, 0);

            if (k <= 0)
                break;
            len += (size_t)k;
            req[len] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        pthread_mutex_lock(&s->mu);
        s->n_requests++;
        body = xstrdup(s->body);
        status = s->status;
        pthread_mutex_unlock(&s->mu);
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 status, strlen(body));
        if (send(c, head, strlen(head), MSG_NOSIGNAL) > 0)
            (void)send(c, body, strlen(body), MSG_NOSIGNAL);
        free(body);
        close(c);
    }
    return NULL;
}

static void server_start(struct jwks_server *s)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);

    memset(s, 0, sizeof(*s));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    T_EQ_INT(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    T_EQ_INT(listen(s->fd, 16), 0);
    getsockname(s->fd, (struct sockaddr *)&a, &alen);
    s->port = ntohs(a.sin_port);
    s->body = xstrdup("{\"keys\":[]}");
    s->status = 200;
    pthread_mutex_init(&s->mu, NULL);
    pthread_create(&s->thread, NULL, serve_jwks, s);
}

static void server_set(struct jwks_server *s, int status, const cJSON *jwks, const char *text)
{
    pthread_mutex_lock(&s->mu);
    free(s->body);
    s->body = jwks != NULL ? cJSON_PrintUnformatted(jwks) : xstrdup(text);
    s->status = status;
    pthread_mutex_unlock(&s->mu);
}

static int server_requests(struct jwks_server *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->n_requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void server_stop(struct jwks_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->is_stopped = true;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    close(s->fd);
    free(s->body);
    pthread_mutex_destroy(&s->mu);
}

/* An IdP token: iss https://ci.example, signed by the current key of 'idp'. */
static char *idp_token(const struct keys *idp, const char *aud, const char *kid_override)
{
    const char *kid = NULL;
    EVP_PKEY *key = keys_current(idp, &kid);
    char hdr[128];
    char payload[512];

    snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
             kid_override != NULL ? kid_override : kid);
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"https://ci.example\",\"aud\":\"%s\",\"sub\":\"repo:acme/checkout\","
             "\"repository_owner\":\"acme-payments\",\"repository\":\"acme/checkout\","
             "\"exp\":%lld,\"iat\":%lld}",
             aud, T0_S + 86400, T0_S);
    return sign_custom(key, hdr, payload, false);
}

/* oidc_verify at 'now'; returns the status and leaves the message in 'err'. */
static pv_status verify_at(struct oidc *o, const char *token, int64_t now, struct pv_err *err)
{
    cJSON *claims = NULL;
    char issuer[256];
    pv_status rc = oidc_verify(o, token, now, &claims, issuer, sizeof(issuer), err);

    if (rc == PV_OK) {
        T_EQ_STR(issuer, "https://ci.example");
        cJSON_Delete(claims);
    }
    return rc;
}

struct hammer {
    struct oidc *o;
    const char *token;
    int n_ok;
};

static void *hammer_verify(void *arg)
{
    struct hammer *h = arg;
    struct pv_err err = {PV_OK, ""};

    for (int i = 0; i < 100; i++) {
        cJSON *claims = NULL;
        char issuer[256];

        /* The clock runs 5 s per call, so the cache expires and refreshes meanwhile. */
        if (oidc_verify(h->o, h->token, T0_S + 10000 + i * 5, &claims, issuer, sizeof(issuer),
                        &err) == PV_OK) {
            h->n_ok++;
            cJSON_Delete(claims);
        }
    }
    return NULL;
}

static void test_oidc(void)
{
    char *idp_dir = path_in("idp");
    struct pv_err err = {PV_OK, ""};
    struct keys *idp = NULL;
    struct jwks_server srv;
    struct cfg_oidc_issuer is = {0};
    struct cfg_credentials c = {0};
    struct oidc *o = NULL;
    char url[128];
    char kid2[KEYS_KID_LEN + 1];
    cJSON *jwks;
    char *t1;
    char *t2;
    char *bogus;
    int64_t now = T0_S;

    server_start(&srv);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/jwks", srv.port);
    is.issuer = "https://ci.example";
    is.jwks_url = url;
    is.audience = "paved";
    is.is_http_allowed = true;
    is.team_claim = "repository_owner";
    is.service_claim = "repository";
    c.issuers = &is;
    c.n_issuers = 1;
    c.jwks_cache_s = 300;
    c.leeway_s = 60;
    T_EQ_INT(oidc_new(&o, &c, &err), PV_OK);

    T_EQ_INT(keys_rotate(idp_dir, 3600, T0_MS, kid2, sizeof(kid2), &err), PV_OK);
    T_EQ_INT(keys_load(&idp, idp_dir, &err), PV_OK);
    jwks = keys_jwks(idp, T0_MS);
    server_set(&srv, 200, jwks, NULL);
    cJSON_Delete(jwks);
    t1 = idp_token(idp, "paved", NULL);
    bogus = idp_token(idp, "paved", "k-bogus");

    /* First use fetches; the second uses the cache. */
    T_EQ_INT(verify_at(o, t1, now, &err), PV_OK);
    T_EQ_INT(server_requests(&srv), 1);
    T_EQ_INT(verify_at(o, t1, now + 1, &err), PV_OK);
    T_EQ_INT(server_requests(&srv), 1);

    /* Wrong audience and unknown issuer are refused without a fetch. */
    {
        char *t = idp_token(idp, "other", NULL);

        T_EQ_INT(verify_at(o, t, now + 1, &err), PV_EINVAL);
        T_OK(strstr(err.msg, "audience is other, want paved") != NULL);
        free(t);
    }
    {
        EVP_PKEY *k = keys_current(idp, NULL);
        char *t =
            sign_custom(k, "{\"alg\":\"ES256\"}",
                        "{\"iss\":\"https://evil.example\",\"aud\":\"paved\",\"exp\":1}", false);

        T_EQ_INT(verify_at(o, t, now + 1, &err), PV_EINVAL);
        T_OK(strstr(err.msg, "unknown issuer https://evil.example") != NULL);
        free(t);
        t = sign_custom(k, "{\"alg\":\"ES256\"}", "{\"aud\":\"paved\",\"exp\":1}", false);
        T_EQ_INT(verify_at(o, t, now + 1, &err), PV_EINVAL);
        T_OK(strstr(err.msg, "no iss") != NULL);
        free(t);
        T_EQ_INT(verify_at(o, "garbage", now + 1, &err), PV_EINVAL);
    }
    T_EQ_INT(server_requests(&srv), 1);

    /* The IdP rotates: a token with the new kid makes one refetch, but not within 10 s of
     * the last one. */
    keys_free(idp);
    T_EQ_INT(keys_rotate(idp_dir, 3600, T0_MS + 1000, kid2, sizeof(kid2), &err), PV_OK);
    T_EQ_INT(keys_load(&idp, idp_dir, &err), PV_OK);
    jwks = keys_jwks(idp, T0_MS + 1000);
    server_set(&srv, 200, jwks, NULL);
    cJSON_Delete(jwks);
    t2 = idp_token(idp, "paved", NULL);
    T_EQ_INT(verify_at(o, t2, now + 5, &err), PV_ENOENT);
    T_OK(strstr(err.msg, "unknown kid") != NULL);
    T_OK(strstr(err.msg, "less than 10 s ago") != NULL);
    T_EQ_INT(server_requests(&srv), 1);
    now += 11;
    T_EQ_INT(verify_at(o, t2, now, &err), PV_OK);
    T_EQ_INT(server_requests(&srv), 2);
    T_EQ_INT(verify_at(o, t1, now, &err), PV_OK); /* the old key is still published */
    /* Bogus kids: at most one fetch per 10 s. */
    for (int i = 0; i < 20; i++)
        T_EQ_INT(verify_at(o, bogus, now + i / 2, &err), PV_ENOENT);
    T_EQ_INT(server_requests(&srv), 2);
    T_EQ_INT(verify_at(o, bogus, now + 10, &err), PV_ENOENT);
    T_OK(strstr(err.msg, "unknown kid k-bogus") != NULL);
    T_EQ_INT(server_requests(&srv), 3);
    now += 10; /* last fetch */

    /* The endpoint goes down: the cached JWKS is used until jwks_cache expires... */
    server_set(&srv, 500, NULL, "{\"error\":\"down\"}");
    T_EQ_INT(verify_at(o, t2, now + 200, &err), PV_OK); /* past half: a refresh is tried */
    T_EQ_INT(server_requests(&srv), 4);
    T_EQ_INT(verify_at(o, t2, now + 299, &err), PV_OK); /* tried again: 99 s later */
    T_EQ_INT(server_requests(&srv), 5);
    /* ...then it is an error, and a failed fetch is retried at most every 10 s. */
    T_EQ_INT(verify_at(o, t2, now + 300, &err), PV_EIO);
    T_OK(strstr(err.msg, "JWKS of https://ci.example unavailable") != NULL);
    T_OK(strstr(err.msg, "HTTP 500") != NULL);
    T_EQ_INT(verify_at(o, t2, now + 305, &err), PV_EIO);
    T_OK(strstr(err.msg, "next try in") != NULL);
    T_EQ_INT(server_requests(&srv), 5);
    T_EQ_INT(verify_at(o, t2, now + 310, &err), PV_EIO);
    T_OK(strstr(err.msg, "HTTP 500") != NULL && strstr(err.msg, "next try") == NULL);
    T_EQ_INT(server_requests(&srv), 6);
    /* Garbage and oversized answers. */
    server_set(&srv, 200, NULL, "<html>hello</html>");
    T_EQ_INT(verify_at(o, t2, now + 330, &err), PV_EIO);
    T_OK(strstr(err.msg, "not JSON") != NULL);
    {
        size_t len = (1 << 20) + 10;
        char *big = xmalloc(len + 1);

        memset(big, ' ', len);
        big[len] = '\0';
        server_set(&srv, 200, NULL, big);
        free(big);
        T_EQ_INT(verify_at(o, t2, now + 345, &err), PV_EIO);
        T_OK(strstr(err.msg, "larger than") != NULL);
    }
    /* Back up. */
    jwks = keys_jwks(idp, T0_MS + 1000);
    server_set(&srv, 200, jwks, NULL);
    cJSON_Delete(jwks);
    T_EQ_INT(verify_at(o, t2, now + 360, &err), PV_OK);

    /* Threads share the cache while it expires and refreshes. */
    {
        struct hammer h[4];
        pthread_t th[4];
        int n_ok = 0;

        for (int i = 0; i < 4; i++) {
            h[i].o = o;
            h[i].token = t2;
            h[i].n_ok = 0;
            pthread_create(&th[i], NULL, hammer_verify, &h[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            n_ok += h[i].n_ok;
        }
        T_EQ_INT(n_ok, 400);
    }

    /* Subject mapping. */
    {
        cJSON *claims = NULL;
        char issuer[64];
        char team[64];
        char service[64];
        cJSON *teams = cJSON_Parse("{\"acme-payments\":\"payments\"}");

        T_EQ_INT(oidc_verify(o, t2, now + 360, &claims, issuer, sizeof(issuer), &err), PV_OK);
        T_OK(oidc_find_issuer(&c, "https://ci.example") == &is);
        T_OK(oidc_find_issuer(&c, "https://other") == NULL);
        T_EQ_INT(oidc_subject(&is, claims, team, sizeof(team), service, sizeof(service), &err),
                 PV_OK);
        T_EQ_STR(team, "acme-payments");
        T_EQ_STR(service, "acme/checkout");
        is.teams = teams;
        T_EQ_INT(oidc_subject(&is, claims, team, sizeof(team), service, sizeof(service), &err),
                 PV_OK);
        T_EQ_STR(team, "payments");
        cJSON_ReplaceItemInObject(claims, "repository_owner", cJSON_CreateString("evil-corp"));
        T_EQ_INT(oidc_subject(&is, claims, team, sizeof(team), service, sizeof(service), &err),
                 PV_EINVAL);
        T_OK(strstr(err.msg, "evil-corp") != NULL && strstr(err.msg, "not mapped") != NULL);
        cJSON_DeleteItemFromObject(claims, "repository");
        T_EQ_INT(oidc_subject(&is, claims, team, sizeof(team), service, sizeof(service), &err),
                 PV_EINVAL);
        T_OK(strstr(err.msg, "repository") != NULL);
        T_EQ_INT(oidc_verify(o, t2, now + 360, &claims, issuer, 4, &err), PV_ETOOBIG);
        is.teams = NULL;
        cJSON_Delete(teams);
        cJSON_Delete(claims);
    }

    /* A dead endpoint: connection refused is reported, not a hang. */
    {
        struct oidc *dead = NULL;
        struct cfg_oidc_issuer di = is;
        struct cfg_credentials dc = c;

        di.jwks_url = "http://127.0.0.1:1/jwks";
        dc.issuers = &di;
        T_EQ_INT(oidc_new(&dead, &dc, &err), PV_OK);
        T_EQ_INT(verify_at(dead, t2, now, &err), PV_EIO);
        T_OK(strstr(err.msg, "JWKS of https://ci.example unavailable") != NULL);
        oidc_free(dead);
    }
    /* https only unless allowed: the same http URL is refused by libcurl. */
    {
        struct oidc *strict = NULL;
        struct cfg_oidc_issuer si = is;
        struct cfg_credentials sc = c;
        int before = server_requests(&srv);

        si.is_http_allowed = false;
        sc.issuers = &si;
        T_EQ_INT(oidc_new(&strict, &sc, &err), PV_OK);
        T_EQ_INT(verify_at(strict, t2, now, &err), PV_EIO);
        T_EQ_INT(server_requests(&srv), before);
        oidc_free(strict);
    }

    oidc_free(o);
    server_stop(&srv);
    free(t1);
    free(t2);
    free(bogus);
    keys_free(idp);
    free(idp_dir);
}

/* ---- Config ---- */

static void test_config(void)
{
    static const char good[] =
        "bindings: []\n"
        "credentials:\n"
        "  issuer: https://paved.example\n"
        "  keys_dir: /var/lib/paved/keys\n"
        "  max_ttl: 30m\n"
        "  leeway: 0\n"
        "  jwks_cache: 10m\n"
        "  oidc:\n"
        "    - issuer: https://token.actions.githubusercontent.com\n"
        "      jwks_url: https://token.actions.githubusercontent.com/.well-known/jwks\n"
        "      audience: paved\n"
        "      cacert: /etc/ssl/ci-ca.pem\n"
        "      allow_http: false\n"
        "      team_claim: repository_owner\n"
        "      service_claim: repository\n"
        "      teams: {acme-payments: payments}\n"
        "    - issuer: https://kubernetes.default.svc\n"
        "      jwks_url: http://127.0.0.1:8001/openid/v1/jwks\n"
        "      allow_http: true\n"
        "      audience: paved\n";
    static const struct {
        const char *section; /* after "bindings: []\ncredentials:\n" */
        const char *msg;
    } bad[] = {
        {"  issuer: x\n  colour: red\n", "credentials: unknown key \"colour\""},
        {"  max_ttl: 1x\n", "credentials.max_ttl must be a duration from 1m to 24h"},
        {"  max_ttl: 25h\n", "credentials.max_ttl must be a duration from 1m to 24h"},
        {"  max_ttl: 30s\n", "credentials.max_ttl must be a duration"},
        {"  max_ttl: 3600\n", "credentials.max_ttl must be a duration"},
        {"  leeway: 11m\n", "credentials.leeway must be a duration from 0s to 10m"},
        {"  leeway: -1s\n", "credentials.leeway"},
        {"  jwks_cache: 1s\n", "credentials.jwks_cache"},
        {"  issuer: 42\n", "issuer must be a non-empty string"},
        {"  oidc: {}\n", "credentials.oidc must be a list"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: http://a/jwks\n      audience: p\n",
         "http:// is refused"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: ftp://a/jwks\n      audience: p\n",
         "jwks_url must start with https://"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: https:///jwks\n      audience: p\n",
         "jwks_url has no host"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: https://a/jwks\n",
         "audience is required"},
        {"  oidc:\n    - issuer: https://a\n      audience: p\n", "jwks_url is required"},
        {"  oidc:\n    - jwks_url: https://a/jwks\n      audience: p\n", "issuer is required"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: https://a/jwks\n      audience: p\n"
         "      audiance: q\n",
         "credentials.oidc[0] (https://a): unknown key \"audiance\""},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: https://a/jwks\n      audience: p\n"
         "      allow_http: yes please\n",
         "allow_http must be true or false"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: https://a/jwks\n      audience: p\n"
         "      teams: [a]\n",
         "teams must be a mapping"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: https://a/jwks\n      audience: p\n"
         "      teams: {x: [1]}\n",
         "teams.x must be a team name"},
        {"  oidc:\n    - issuer: https://a\n      jwks_url: https://a/jwks\n      audience: p\n"
         "    - issuer: https://a\n      jwks_url: https://b/jwks\n      audience: p\n",
         "already configured"},
        {"  oidc:\n    - 42\n", "credentials.oidc[0] must be a mapping"},
        {"  - a\n", "credentials must be a mapping"},
    };
    struct pv_err err = {PV_OK, ""};
    struct config *cfg = NULL;

    if (T_EQ_INT(config_parse(&cfg, good, strlen(good), "t.yaml", &err), PV_OK)) {
        const struct cfg_credentials *c = &cfg->credentials;

        T_EQ_STR(c->issuer, "https://paved.example");
        T_EQ_STR(c->keys_dir, "/var/lib/paved/keys");
        T_EQ_INT(c->max_ttl_s, 1800);
        T_EQ_INT(c->leeway_s, 0);
        T_EQ_INT(c->jwks_cache_s, 600);
        T_EQ_INT(c->n_issuers, 2);
        T_EQ_STR(c->issuers[0].issuer, "https://token.actions.githubusercontent.com");
        T_EQ_STR(c->issuers[0].audience, "paved");
        T_EQ_STR(c->issuers[0].cacert, "/etc/ssl/ci-ca.pem");
        T_EQ_STR(c->issuers[0].team_claim, "repository_owner");
        T_EQ_STR(c->issuers[0].service_claim, "repository");
        T_OK(!c->issuers[0].is_http_allowed);
        T_EQ_STR(cJSON_GetObjectItem(c->issuers[0].teams, "acme-payments")->valuestring,
                 "payments");
        T_OK(c->issuers[1].is_http_allowed);
        T_EQ_STR(c->issuers[1].team_claim, "team");
        T_EQ_STR(c->issuers[1].service_claim, "service");
        T_OK(c->issuers[1].teams == NULL);
        T_OK(c->issuers[1].cacert == NULL);
        config_free(cfg);
    } else {
        t_diag("%s", err.msg);
    }
    /* Defaults. */
    if (T_EQ_INT(config_parse(&cfg, "bindings: []\n", 13, "t.yaml", &err), PV_OK)) {
        T_EQ_STR(cfg->credentials.issuer, "paved");
        T_EQ_STR(cfg->credentials.keys_dir, "keys");
        T_EQ_INT(cfg->credentials.max_ttl_s, 3600);
        T_EQ_INT(cfg->credentials.leeway_s, 60);
        T_EQ_INT(cfg->credentials.jwks_cache_s, 300);
        T_EQ_INT(cfg->credentials.n_issuers, 0);
        config_free(cfg);
    }
    {
        static const char empty[] = "bindings: []\ncredentials:\n  leeway: 0s\n";

        if (T_EQ_INT(config_parse(&cfg, empty, strlen(empty), "t.yaml", &err), PV_OK)) {
            T_EQ_INT(cfg->credentials.leeway_s, 0);
            config_free(cfg);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[1024];

        snprintf(yaml, sizeof(yaml), "bindings: []\ncredentials:\n%s", bad[i].section);
        cfg = NULL;
        if (!T_EQ_INT(config_parse(&cfg, yaml, strlen(yaml), "t.yaml", &err), PV_ECONFIG) ||
            !T_OK(strstr(err.msg, bad[i].msg) != NULL))
            t_diag("case %zu: got \"%s\", want \"%s\"", i, err.msg, bad[i].msg);
        config_free(cfg);
    }
}

/* ---- Main ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(root, sizeof(root), "%s/paved-jwt.XXXXXX",
             tmp != NULL && strlen(tmp) < 60 ? tmp : "/tmp");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    test_b64url();
    test_keys_dir();
    test_rotation();
    test_es256();
    test_hs256_confusion();
    test_rs256();
    test_claims();
    test_malformed();
    test_oidc();
    test_config();
    curl_global_cleanup();
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
