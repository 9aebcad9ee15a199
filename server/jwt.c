/* server/jwt.c: JWS compact tokens: strict base64url, RS256/ES256 verification against
 * a JWKS with the registered claims checked, ES256 signing and public JWK export. All
 * cryptography is OpenSSL's (EVP); this file only moves bytes between the JOSE and the
 * OpenSSL forms. */
#include "jwt.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "xalloc.h"

/* Bounds of an RSA modulus we verify with: smaller is breakable, larger is a way to
 * make each verification expensive. */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192
#define P256_COORD_BYTES 32
#define ES256_SIG_BYTES 64
/* Attacker-chosen strings (alg, kid, iss, aud) are quoted at most this long. */
#define QUOTE_MAX 80

enum jwt_alg {
    ALG_RS256,
    ALG_ES256,
};

/* ---- Small helpers ---- */

/* Copies 's' into 'buf' for a message: control and non-ASCII bytes become '?', and text
 * longer than the buffer is cut with "...". Returns 'buf'. */
static const char *quote(const char *s, char *buf, size_t cap)
{
    size_t len = 0;

    for (; *s != '\0' && len < cap - 1; s++)
        buf[len++] = ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) ? '?' : *s;
    buf[len] = '\0';
    if (*s != '\0' && cap >= 4)
        memcpy(buf + cap - 4, "...", 4);
    return buf;
}

/* Records OpenSSL's last error (or 'what' alone) and empties its queue. */
static pv_status ossl_fail(struct pv_err *err, pv_status code, const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[160] = "";

    if (e != 0)
        ERR_error_string_n(e, msg, sizeof(msg));
    ERR_clear_error();
    if (msg[0] == '\0')
        return pv_err_set(err, code, "%s", what);
    return pv_err_set(err, code, "%s: %s", what, msg);
}

/* "2026-12-04T10:00:00Z" for a NumericDate; the number itself when out of range. */
static void format_date(double t, char *buf, size_t cap)
{
    struct tm tm;
    time_t tt;

    /* Years 1..9999 */
    if (!(t >= -62135596800.0 && t < 253402300800.0)) {
        snprintf(buf, cap, "%.0f", t);
        return;
    }
    tt = (time_t)floor(t);
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%.0f", t);
}

/* True when the JSON text 'p' ('len' bytes) nests no deeper than 'max_depth'. Counts
 * brackets outside strings, so it runs before cJSON recurses into anything. */
static bool depth_ok(const char *p, size_t len, int max_depth)
{
    bool is_in_string = false;
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        char c = p[i];

        if (is_in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                is_in_string = false;
        } else if (c == '"') {
            is_in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

/* Parses the JSON text 'p' ('len' bytes, with a NUL at p[len]) as one object whose
 * member names are unique, so no two parsers can disagree on which "alg" or "exp"
 * counts. 'what' names the part in messages. */
static pv_status parse_object(const char *p, size_t len, const char *what, cJSON **out,
                              struct pv_err *err)
{
    const char *end = NULL;
    cJSON *o;
    const cJSON *a;
    int n = 0;

    if (memchr(p, '\0', len) != NULL)
        return pv_err_set(err, PV_EINVAL, "malformed token: %s holds a NUL byte", what);
    if (!depth_ok(p, len, JWT_MAX_JSON_DEPTH))
        return pv_err_set(err, PV_EDEPTH, "malformed token: %s nests deeper than %d", what,
                          JWT_MAX_JSON_DEPTH);
    /* len + 1: cJSON checks the NUL itself, so trailing bytes are refused. */
    o = cJSON_ParseWithLengthOpts(p, len + 1, &end, true);
    if (o == NULL)
        return pv_err_set(err, PV_EINVAL, "malformed token: %s is not JSON", what);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return pv_err_set(err, PV_EINVAL, "malformed token: %s is not a JSON object", what);
    }
    cJSON_ArrayForEach(a, o)
    {
        if (++n > JWT_MAX_CLAIMS) {
            cJSON_Delete(o);
            return pv_err_set(err, PV_EINVAL, "malformed token: %s has more than %d members", what,
                              JWT_MAX_CLAIMS);
        }
        for (const cJSON *b = a->next; b != NULL; b = b->next) {
            if (strcmp(a->string, b->string) == 0) {
                char q[QUOTE_MAX];

                quote(a->string, q, sizeof(q));
                cJSON_Delete(o);
                return pv_err_set(err, PV_EINVAL, "malformed token: %s has \"%s\" twice", what, q);
            }
        }
    }
    *out = o;
    return PV_OK;
}

/* cJSON_PrintUnformatted, which fails only when memory is exhausted. */
static char *print_json(const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);

    if (s == NULL)
        pv_assert_fail(__FILE__, __LINE__, "cJSON_PrintUnformatted: out of memory");
    return s;
}

/* ---- base64url ---- */

char *jwt_b64url_encode(const void *p, size_t len)
{
    /* EVP_EncodeBlock writes 4 characters per 3 bytes, padded, plus a NUL. */
    size_t cap = (len + 2) / 3 * 4 + 1;
    char *out = xmalloc(cap);
    int n;

    PV_ASSERT(len <= (size_t)1 << 30);
    n = EVP_EncodeBlock((unsigned char *)out, p, (int)len);
    PV_ASSERT(n >= 0 && (size_t)n < cap);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

/* The 6-bit value of a base64url character, or -1. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

pv_status jwt_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *len_out,
                            struct pv_err *err)
{
    unsigned char *buf;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;

    for (size_t i = 0; i < len; i++) {
        if (b64url_value((unsigned char)s[i]) < 0) {
            if (s[i] == '=')
                return pv_err_set(err, PV_EINVAL, "base64url padding '=' is not allowed");
            return pv_err_set(err, PV_EINVAL, "character %zu is not base64url", i + 1);
        }
    }
    if (len % 4 == 1)
        return pv_err_set(err, PV_EINVAL, "base64url text of %zu characters cannot be complete",
                          len);
    buf = xmalloc(len / 4 * 3 + 3 + 1);
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)b64url_value((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (unsigned char)(acc >> bits);
            acc &= ((uint32_t)1 << bits) - 1;
        }
    }
    /* The 2 or 4 bits left over must be zero, or two texts would decode alike. */
    if (acc != 0) {
        free(buf);
        return pv_err_set(err, PV_EINVAL, "base64url text has non-zero trailing bits");
    }
    buf[n] = '\0';
    *out = buf;
    *len_out = n;
    return PV_OK;
}

/* ---- Parts of a token ---- */

/* A token split at its two dots; pointers into the token. */
struct parts {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *sig;
    size_t sig_len;
    size_t signing_input_len; /* header "." payload */
};

static pv_status split(const char *token, struct parts *p, struct pv_err *err)
{
    size_t len = strnlen(token, JWT_MAX_TOKEN_BYTES + 1);
    const char *d1;
    const char *d2;

    if (len > JWT_MAX_TOKEN_BYTES)
        return pv_err_set(err, PV_ETOOBIG, "malformed token: longer than %zu bytes",
                          JWT_MAX_TOKEN_BYTES);
    d1 = memchr(token, '.', len);
    d2 = d1 != NULL ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
        return pv_err_set(err, PV_EINVAL,
                          "malformed token: expected three base64url parts separated by dots");
    p->header = token;
    p->header_len = (size_t)(d1 - token);
    p->payload = d1 + 1;
    p->payload_len = (size_t)(d2 - p->payload);
    p->sig = d2 + 1;
    p->sig_len = len - (size_t)(p->sig - token);
    p->signing_input_len = (size_t)(d2 - token);
    if (p->header_len == 0 || p->payload_len == 0)
        return pv_err_set(err, PV_EINVAL, "malformed token: empty %s",
                          p->header_len == 0 ? "header" : "payload");
    return PV_OK;
}

/* Decodes one base64url part and parses it as a JSON object. */
static pv_status decode_part(const char *s, size_t len, const char *what, cJSON **out,
                             struct pv_err *err)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    struct pv_err derr = {PV_OK, ""};
    pv_status rc;

    rc = jwt_b64url_decode(s, len, &raw, &raw_len, &derr);
    if (rc)
        return pv_err_set(err, rc, "malformed token: %s: %s", what, derr.msg);
    rc = parse_object((const char *)raw, raw_len, what, out, err);
    free(raw);
    return rc;
}

pv_status jwt_unverified_claims(const char *token, cJSON **claims_out, struct pv_err *err)
{
    struct parts p;
    pv_status rc;

    rc = split(token, &p, err);
    if (rc == PV_OK)
        rc = decode_part(p.payload, p.payload_len, "payload", claims_out, err);
    return rc;
}

/* ---- JWK -> EVP_PKEY ---- */

/* Decodes the base64url string member 'name' of the JWK 'k' into *out (*len_out bytes;
 * the caller frees *out). */
static pv_status jwk_bytes(const cJSON *k, const char *name, const char *kid, unsigned char **out,
                           size_t *len_out, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(k, name);
    struct pv_err derr = {PV_OK, ""};
    char q[QUOTE_MAX];

    if (!cJSON_IsString(v))
        return pv_err_set(err, PV_EINVAL, "key %s: \"%s\" is missing", quote(kid, q, sizeof(q)),
                          name);
    if (jwt_b64url_decode(v->valuestring, strlen(v->valuestring), out, len_out, &derr))
        return pv_err_set(err, PV_EINVAL, "key %s: \"%s\": %s", quote(kid, q, sizeof(q)), name,
                          derr.msg);
    return PV_OK;
}

/* Builds a public key of type 'type' ("RSA" or "EC") from 'params'. */
static pv_status pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, const char *kid,
                               EVP_PKEY **out, struct pv_err *err)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    char what[QUOTE_MAX + 32];
    char q[QUOTE_MAX];
    pv_status rc = PV_OK;

    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        snprintf(what, sizeof(what), "key %s is not a valid %s public key",
                 quote(kid, q, sizeof(q)), type);
        rc = ossl_fail(err, PV_EINVAL, what);
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (rc == PV_OK)
        *out = pkey;
    return rc;
}

static pv_status rsa_from_jwk(const cJSON *k, const char *kid, EVP_PKEY **out, struct pv_err *err)
{
    unsigned char *n_raw = NULL;
    unsigned char *e_raw = NULL;
    size_t n_len = 0;
    size_t e_len = 0;
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    char q[QUOTE_MAX];
    pv_status rc;

    rc = jwk_bytes(k, "n", kid, &n_raw, &n_len, err);
    if (rc == PV_OK)
        rc = jwk_bytes(k, "e", kid, &e_raw, &e_len, err);
    if (rc)
        goto done;
    if (n_len > RSA_MAX_BITS / 8 + 1 || e_len > 8) {
        rc = pv_err_set(err, PV_EINVAL, "key %s: RSA modulus or exponent too large",
                        quote(kid, q, sizeof(q)));
        goto done;
    }
    n = BN_bin2bn(n_raw, (int)n_len, NULL);
    e = BN_bin2bn(e_raw, (int)e_len, NULL);
    PV_ASSERT(n != NULL && e != NULL);
    if (BN_num_bits(n) < RSA_MIN_BITS || BN_num_bits(n) > RSA_MAX_BITS) {
        rc = pv_err_set(err, PV_EINVAL, "key %s: RSA modulus of %d bits (want %d to %d)",
                        quote(kid, q, sizeof(q)), BN_num_bits(n), RSA_MIN_BITS, RSA_MAX_BITS);
        goto done;
    }
    /* An even or tiny exponent is no RSA key (e = 1 would make forging trivial). */
    if (!BN_is_odd(e) || BN_num_bits(e) < 2) {
        rc = pv_err_set(err, PV_EINVAL, "key %s: bad RSA exponent", quote(kid, q, sizeof(q)));
        goto done;
    }
    bld = OSSL_PARAM_BLD_new();
    PV_ASSERT(bld != NULL);
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1) {
        rc = ossl_fail(err, PV_EIO, "OSSL_PARAM_BLD_push_BN");
        goto done;
    }
    rc = pkey_fromdata("RSA", bld, kid, out, err);
done:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(n_raw);
    free(e_raw);
    return rc;
}

static pv_status ec_from_jwk(const cJSON *k, const char *kid, EVP_PKEY **out, struct pv_err *err)
{
    unsigned char *x = NULL;
    unsigned char *y = NULL;
    size_t x_len = 0;
    size_t y_len = 0;
    unsigned char point[1 + 2 * P256_COORD_BYTES];
    OSSL_PARAM_BLD *bld = NULL;
    char q[QUOTE_MAX];
    pv_status rc;

    rc = jwk_bytes(k, "x", kid, &x, &x_len, err);
    if (rc == PV_OK)
        rc = jwk_bytes(k, "y", kid, &y, &y_len, err);
    if (rc)
        goto done;
    /* RFC 7518 6.2.1.2: the coordinates are the full 32 bytes. */
    if (x_len != P256_COORD_BYTES || y_len != P256_COORD_BYTES) {
        rc = pv_err_set(err, PV_EINVAL, "key %s: P-256 coordinates must be 32 bytes",
                        quote(kid, q, sizeof(q)));
        goto done;
    }
    point[0] = POINT_CONVERSION_UNCOMPRESSED;
    memcpy(point + 1, x, P256_COORD_BYTES);
    memcpy(point + 1 + P256_COORD_BYTES, y, P256_COORD_BYTES);
    bld = OSSL_PARAM_BLD_new();
    PV_ASSERT(bld != NULL);
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) !=
            1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) != 1) {
        rc = ossl_fail(err, PV_EIO, "OSSL_PARAM_BLD_push");
        goto done;
    }
    /* EVP_PKEY_fromdata refuses a point that is not on the curve. */
    rc = pkey_fromdata("EC", bld, kid, out, err);
done:
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return rc;
}

/* ---- Choosing the key ---- */

static bool str_member_is(const cJSON *o, const char *name, const char *want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) && strcmp(v->valuestring, want) == 0;
}

/* True when the JWK 'k' may verify 'alg' signatures. */
static bool jwk_fits(const cJSON *k, enum jwt_alg alg)
{
    const char *alg_name = alg == ALG_RS256 ? "RS256" : "ES256";
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(k, "key_ops");
    bool is_verify_op = false;
    const cJSON *op;

    if (alg == ALG_RS256 && !str_member_is(k, "kty", "RSA"))
        return false;
    if (alg == ALG_ES256 && (!str_member_is(k, "kty", "EC") || !str_member_is(k, "crv", "P-256")))
        return false;
    if (cJSON_GetObjectItemCaseSensitive(k, "alg") != NULL && !str_member_is(k, "alg", alg_name))
        return false;
    if (cJSON_GetObjectItemCaseSensitive(k, "use") != NULL && !str_member_is(k, "use", "sig"))
        return false;
    if (ops == NULL)
        return true;
    cJSON_ArrayForEach(op, ops)
    {
        if (cJSON_IsString(op) && strcmp(op->valuestring, "verify") == 0)
            is_verify_op = true;
    }
    return is_verify_op;
}

/* Finds the key of 'jwks' for 'kid' (NULL: the token has none) and 'alg' and builds it
 * into *out. */
static pv_status find_key(const cJSON *jwks, const char *kid, enum jwt_alg alg, EVP_PKEY **out,
                          struct pv_err *err)
{
    const char *alg_name = alg == ALG_RS256 ? "RS256" : "ES256";
    const cJSON *keys =
        cJSON_IsObject(jwks) ? cJSON_GetObjectItemCaseSensitive(jwks, "keys") : NULL;
    const cJSON *k;
    const cJSON *chosen = NULL;
    bool is_kid_seen = false;
    int n_keys;
    char q[QUOTE_MAX];

    if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) == 0)
        return pv_err_set(err, PV_ENOENT, "the JWKS has no keys");
    n_keys = cJSON_GetArraySize(keys);
    if (kid == NULL && n_keys > 1)
        return pv_err_set(err, PV_EINVAL, "token has no kid and the JWKS has %d keys", n_keys);
    cJSON_ArrayForEach(k, keys)
    {
        if (kid != NULL && !str_member_is(k, "kid", kid))
            continue;
        is_kid_seen = true;
        if (jwk_fits(k, alg)) {
            chosen = k;
            break;
        }
    }
    if (!is_kid_seen)
        return pv_err_set(err, PV_ENOENT, "unknown kid %s", quote(kid, q, sizeof(q)));
    if (chosen == NULL)
        return pv_err_set(err, PV_EINVAL, "key %s cannot verify %s signatures",
                          kid != NULL ? quote(kid, q, sizeof(q)) : "(the only one)", alg_name);
    if (kid == NULL)
        kid = "(the only one)";
    return alg == ALG_RS256 ? rsa_from_jwk(chosen, kid, out, err)
                            : ec_from_jwk(chosen, kid, out, err);
}

/* ---- Signatures ---- */

/* JOSE r||s (64 bytes) -> DER ECDSA-Sig-Value. *out is freed with OPENSSL_free. */
static pv_status es256_to_der(const unsigned char *sig, unsigned char **out, size_t *len_out,
                              struct pv_err *err)
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, P256_COORD_BYTES, NULL);
    BIGNUM *ss = BN_bin2bn(sig + P256_COORD_BYTES, P256_COORD_BYTES, NULL);
    unsigned char *der = NULL;
    int len;
    int is_set;

    PV_ASSERT(s != NULL && r != NULL && ss != NULL);
    is_set = ECDSA_SIG_set0(s, r, ss); /* s takes r and ss */
    PV_ASSERT(is_set == 1);
    len = i2d_ECDSA_SIG(s, &der);
    ECDSA_SIG_free(s);
    if (len <= 0)
        return ossl_fail(err, PV_EIO, "i2d_ECDSA_SIG");
    *out = der;
    *len_out = (size_t)len;
    return PV_OK;
}

/* Verifies 'sig' over the signing input with 'pkey'. */
static pv_status verify_sig(EVP_PKEY *pkey, enum jwt_alg alg, const char *input, size_t input_len,
                            const unsigned char *sig, size_t sig_len, struct pv_err *err)
{
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    pv_status rc = PV_OK;
    int v;

    if (alg == ALG_ES256) {
        if (sig_len != ES256_SIG_BYTES)
            return pv_err_set(err, PV_EINVAL,
                              "signature does not verify: an ES256 signature is %d bytes, this "
                              "one %zu",
                              ES256_SIG_BYTES, sig_len);
        rc = es256_to_der(sig, &der, &der_len, err);
        if (rc)
            return rc;
        sig = der;
        sig_len = der_len;
    } else if (sig_len != (size_t)EVP_PKEY_get_size(pkey)) {
        return pv_err_set(err, PV_EINVAL,
                          "signature does not verify: an RS256 signature with this key is %d "
                          "bytes, this one %zu",
                          EVP_PKEY_get_size(pkey), sig_len);
    }
    md = EVP_MD_CTX_new();
    PV_ASSERT(md != NULL);
    /* For RSA keys the default padding is PKCS #1 v1.5, which is what RS256 is. */
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) != 1) {
        rc = ossl_fail(err, PV_EIO, "EVP_DigestVerifyInit");
        goto done;
    }
    v = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len);
    if (v != 1) {
        ERR_clear_error();
        rc = pv_err_set(err, PV_EINVAL, "signature does not verify");
    }
done:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    return rc;
}

/* ---- Claims ---- */

/* *out = the NumericDate claim 'name'; *is_present false when it is absent. */
static pv_status date_claim(const cJSON *claims, const char *name, double *out, bool *is_present,
                            struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);

    *is_present = v != NULL;
    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return pv_err_set(err, PV_EINVAL, "malformed token: claim %s must be a number", name);
    *out = v->valuedouble;
    return PV_OK;
}

static pv_status check_audience(const cJSON *claims, const char *want, struct pv_err *err)
{
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    const cJSON *a;
    char got[QUOTE_MAX * 2];
    char q[QUOTE_MAX];
    size_t len = 0;

    if (aud == NULL)
        return pv_err_set(err, PV_EINVAL, "token has no aud claim, want %s",
                          quote(want, q, sizeof(q)));
    if (cJSON_IsString(aud)) {
        if (strcmp(aud->valuestring, want) == 0)
            return PV_OK;
        return pv_err_set(err, PV_EINVAL, "audience is %s, want %s",
                          quote(aud->valuestring, got, sizeof(got)), quote(want, q, sizeof(q)));
    }
    if (!cJSON_IsArray(aud))
        return pv_err_set(err, PV_EINVAL,
                          "malformed token: claim aud must be a string or an array of strings");
    cJSON_ArrayForEach(a, aud)
    {
        if (!cJSON_IsString(a))
            return pv_err_set(err, PV_EINVAL,
                              "malformed token: claim aud must be a string or an "
                              "array of strings");
    }
    cJSON_ArrayForEach(a, aud)
    {
        if (strcmp(a->valuestring, want) == 0)
            return PV_OK;
    }
    /* "audience is [a, b], want paved", cut when long */
    got[len++] = '[';
    cJSON_ArrayForEach(a, aud)
    {
        int n = snprintf(got + len, sizeof(got) - len, "%s%s", a == aud->child ? "" : ", ",
                         quote(a->valuestring, q, sizeof(q)));

        if (n < 0 || (size_t)n >= sizeof(got) - len - 1) {
            memcpy(got + sizeof(got) - 5, "...", 4);
            len = sizeof(got) - 2;
            break;
        }
        len += (size_t)n;
    }
    got[len++] = ']';
    got[len] = '\0';
    return pv_err_set(err, PV_EINVAL, "audience is %s, want %s", got, quote(want, q, sizeof(q)));
}

static pv_status check_claims(const cJSON *claims, const char *want_iss, const char *want_aud,
                              int64_t now_s, int64_t leeway_s, struct pv_err *err)
{
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    double exp = 0;
    double nbf = 0;
    double iat = 0;
    bool has_exp = false;
    bool has_nbf = false;
    bool has_iat = false;
    char q1[QUOTE_MAX];
    char q2[QUOTE_MAX];
    char when[32];
    pv_status rc;

    if (!cJSON_IsString(iss))
        return pv_err_set(err, PV_EINVAL, "token has no iss claim (a string), want %s",
                          quote(want_iss, q2, sizeof(q2)));
    if (strcmp(iss->valuestring, want_iss) != 0)
        return pv_err_set(err, PV_EINVAL, "issuer is %s, want %s",
                          quote(iss->valuestring, q1, sizeof(q1)), quote(want_iss, q2, sizeof(q2)));
    rc = check_audience(claims, want_aud, err);
    if (rc == PV_OK)
        rc = date_claim(claims, "exp", &exp, &has_exp, err);
    if (rc == PV_OK)
        rc = date_claim(claims, "nbf", &nbf, &has_nbf, err);
    if (rc == PV_OK)
        rc = date_claim(claims, "iat", &iat, &has_iat, err);
    if (rc)
        return rc;
    if (!has_exp)
        return pv_err_set(err, PV_EINVAL,
                          "token has no exp claim: tokens without an expiry "
                          "are not accepted");
    if (!(exp > (double)(now_s - leeway_s))) {
        format_date(exp, when, sizeof(when));
        return pv_err_set(err, PV_EINVAL, "token expired at %s", when);
    }
    if (has_nbf && nbf > (double)(now_s + leeway_s)) {
        format_date(nbf, when, sizeof(when));
        return pv_err_set(err, PV_EINVAL, "token is not valid before %s", when);
    }
    if (has_iat && iat > (double)(now_s + leeway_s)) {
        format_date(iat, when, sizeof(when));
        return pv_err_set(err, PV_EINVAL, "token is issued in the future (iat %s)", when);
    }
    return PV_OK;
}

/* ---- Verifying ---- */

/* Reads "alg" and "kid" of the decoded header 'h'. *kid_out borrows from 'h'. */
static pv_status check_header(const cJSON *h, enum jwt_alg *alg_out, const char **kid_out,
                              struct pv_err *err)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(h, "kid");
    char q[QUOTE_MAX];

    if (!cJSON_IsString(alg))
        return pv_err_set(err, PV_EINVAL, "malformed token: the header has no alg");
    if (strcmp(alg->valuestring, "RS256") == 0) {
        *alg_out = ALG_RS256;
    } else if (strcmp(alg->valuestring, "ES256") == 0) {
        *alg_out = ALG_ES256;
    } else if (strcasecmp(alg->valuestring, "none") == 0) {
        return pv_err_set(err, PV_EINVAL, "alg none is not accepted");
    } else {
        return pv_err_set(err, PV_EINVAL, "alg %s is not accepted (only RS256 and ES256 are)",
                          quote(alg->valuestring, q, sizeof(q)));
    }
    /* RFC 7515 4.1.11: extensions we do not understand must not be ignored. */
    if (cJSON_GetObjectItemCaseSensitive(h, "crit") != NULL)
        return pv_err_set(err, PV_EINVAL,
                          "malformed token: crit header parameters are not "
                          "supported");
    if (kid != NULL && (!cJSON_IsString(kid) || kid->valuestring[0] == '\0'))
        return pv_err_set(err, PV_EINVAL, "malformed token: kid must be a non-empty string");
    *kid_out = kid != NULL ? kid->valuestring : NULL;
    return PV_OK;
}

pv_status jwt_verify(const char *token, const cJSON *jwks, const char *want_iss,
                     const char *want_aud, int64_t now_s, int64_t leeway_s, cJSON **claims_out,
                     struct pv_err *err)
{
    struct parts p;
    cJSON *header = NULL;
    cJSON *claims = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    EVP_PKEY *pkey = NULL;
    struct pv_err derr = {PV_OK, ""};
    enum jwt_alg alg = ALG_ES256;
    const char *kid = NULL;
    pv_status rc;

    PV_ASSERT(want_iss != NULL && want_aud != NULL);
    rc = split(token, &p, err);
    if (rc == PV_OK)
        rc = decode_part(p.header, p.header_len, "header", &header, err);
    if (rc == PV_OK)
        rc = check_header(header, &alg, &kid, err);
    /* The payload is decoded before any key is looked at so that a malformed token is
     * called malformed, not "unknown kid" (which would make the caller refetch). */
    if (rc == PV_OK)
        rc = decode_part(p.payload, p.payload_len, "payload", &claims, err);
    if (rc)
        goto done;
    if (p.sig_len == 0) {
        rc = pv_err_set(err, PV_EINVAL, "malformed token: no signature");
        goto done;
    }
    rc = jwt_b64url_decode(p.sig, p.sig_len, &sig, &sig_len, &derr);
    if (rc) {
        rc = pv_err_set(err, rc, "malformed token: signature: %s", derr.msg);
        goto done;
    }
    rc = find_key(jwks, kid, alg, &pkey, err);
    if (rc == PV_OK)
        rc = verify_sig(pkey, alg, token, p.signing_input_len, sig, sig_len, err);
    if (rc == PV_OK)
        rc = check_claims(claims, want_iss, want_aud, now_s, leeway_s, err);
    if (rc)
        goto done;
    *claims_out = claims;
    claims = NULL;
done:
    EVP_PKEY_free(pkey);
    free(sig);
    cJSON_Delete(header);
    cJSON_Delete(claims);
    return rc;
}

pv_status jwt_jwks_parse(const char *text, size_t len, cJSON **out, struct pv_err *err)
{
    const char *end = NULL;
    const cJSON *keys;
    const cJSON *k;
    cJSON *doc;

    if (!depth_ok(text, len, JWT_MAX_JSON_DEPTH))
        return pv_err_set(err, PV_EDEPTH, "the JWKS nests deeper than %d", JWT_MAX_JSON_DEPTH);
    doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (doc == NULL)
        return pv_err_set(err, PV_EPARSE, "the JWKS is not JSON");
    /* Only whitespace may follow the document. */
    while (end != NULL && end < text + len &&
           (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if (end != text + len) {
        cJSON_Delete(doc);
        return pv_err_set(err, PV_EPARSE, "the JWKS is not JSON (bytes after the document)");
    }
    keys = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "keys") : NULL;
    if (!cJSON_IsArray(keys)) {
        cJSON_Delete(doc);
        return pv_err_set(err, PV_EINVAL,
                          "the JWKS is not a JWK Set (an object with a \"keys\" "
                          "array)");
    }
    if (cJSON_GetArraySize(keys) > JWT_MAX_JWKS_KEYS) {
        cJSON_Delete(doc);
        return pv_err_set(err, PV_ETOOBIG, "the JWKS has more than %d keys", JWT_MAX_JWKS_KEYS);
    }
    cJSON_ArrayForEach(k, keys)
    {
        if (!cJSON_IsObject(k)) {
            cJSON_Delete(doc);
            return pv_err_set(err, PV_EINVAL, "the JWKS has a key that is not an object");
        }
    }
    *out = doc;
    return PV_OK;
}

/* ---- Signing ---- */

/* True when 'key' is an EC key on P-256. */
static bool is_p256(EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;

    return key != NULL && EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          &len) == 1 &&
           strcmp(group, SN_X9_62_prime256v1) == 0;
}

pv_status jwt_sign_es256(EVP_PKEY *key, const char *kid, const cJSON *claims, char **out,
                         struct pv_err *err)
{
    cJSON *header = NULL;
    char *header_text = NULL;
    char *claims_text = NULL;
    char *h64 = NULL;
    char *c64 = NULL;
    char *s64 = NULL;
    char *input = NULL;
    char *token = NULL;
    size_t input_len;
    EVP_MD_CTX *md = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r = NULL;
    const BIGNUM *s = NULL;
    const unsigned char *p;
    unsigned char rs[ES256_SIG_BYTES];
    pv_status rc = PV_OK;

    if (!is_p256(key))
        return pv_err_set(err, PV_EINVAL, "the signing key is not an EC P-256 key");
    if (!cJSON_IsObject(claims))
        return pv_err_set(err, PV_EINVAL, "the claims are not a JSON object");
    header = cJSON_CreateObject();
    PV_ASSERT(header != NULL);
    PV_ASSERT(cJSON_AddStringToObject(header, "alg", "ES256") != NULL);
    PV_ASSERT(cJSON_AddStringToObject(header, "typ", "JWT") != NULL);
    PV_ASSERT(cJSON_AddStringToObject(header, "kid", kid) != NULL);
    header_text = print_json(header);
    claims_text = print_json(claims);
    h64 = jwt_b64url_encode(header_text, strlen(header_text));
    c64 = jwt_b64url_encode(claims_text, strlen(claims_text));
    input_len = strlen(h64) + 1 + strlen(c64);
    input = xmalloc(input_len + 1);
    snprintf(input, input_len + 1, "%s.%s", h64, c64);

    md = EVP_MD_CTX_new();
    PV_ASSERT(md != NULL);
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &der_len, (const unsigned char *)input, input_len) != 1) {
        rc = ossl_fail(err, PV_EIO, "ES256 signing");
        goto done;
    }
    der = xmalloc(der_len);
    if (EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, input_len) != 1) {
        rc = ossl_fail(err, PV_EIO, "ES256 signing");
        goto done;
    }
    p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (sig == NULL) {
        rc = ossl_fail(err, PV_EIO, "d2i_ECDSA_SIG");
        goto done;
    }
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, rs, P256_COORD_BYTES) != P256_COORD_BYTES ||
        BN_bn2binpad(s, rs + P256_COORD_BYTES, P256_COORD_BYTES) != P256_COORD_BYTES) {
        rc = ossl_fail(err, PV_EIO, "ES256 signature does not fit 64 bytes");
        goto done;
    }
    s64 = jwt_b64url_encode(rs, sizeof(rs));
    token = xmalloc(input_len + 1 + strlen(s64) + 1);
    snprintf(token, input_len + 1 + strlen(s64) + 1, "%s.%s", input, s64);
    *out = token;
done:
    ECDSA_SIG_free(sig);
    free(der);
    EVP_MD_CTX_free(md);
    free(input);
    free(s64);
    free(c64);
    free(h64);
    free(claims_text);
    free(header_text);
    cJSON_Delete(header);
    return rc;
}

/* Adds the base64url of the big-endian, 32-byte coordinate 'param' of 'key' as 'name'. */
static bool add_coord(cJSON *jwk, EVP_PKEY *key, const char *param, const char *name)
{
    BIGNUM *bn = NULL;
    unsigned char raw[P256_COORD_BYTES];
    char *text;
    bool is_ok;

    if (EVP_PKEY_get_bn_param(key, param, &bn) != 1)
        return false;
    is_ok = BN_bn2binpad(bn, raw, sizeof(raw)) == (int)sizeof(raw);
    BN_free(bn);
    if (!is_ok)
        return false;
    text = jwt_b64url_encode(raw, sizeof(raw));
    PV_ASSERT(cJSON_AddStringToObject(jwk, name, text) != NULL);
    free(text);
    return true;
}

cJSON *jwt_public_jwk(EVP_PKEY *key, const char *kid)
{
    cJSON *jwk;

    if (!is_p256(key))
        return NULL;
    jwk = cJSON_CreateObject();
    PV_ASSERT(jwk != NULL);
    PV_ASSERT(cJSON_AddStringToObject(jwk, "kty", "EC") != NULL);
    PV_ASSERT(cJSON_AddStringToObject(jwk, "crv", "P-256") != NULL);
    if (!add_coord(jwk, key, OSSL_PKEY_PARAM_EC_PUB_X, "x") ||
        !add_coord(jwk, key, OSSL_PKEY_PARAM_EC_PUB_Y, "y")) {
        ERR_clear_error();
        cJSON_Delete(jwk);
        return NULL;
    }
    PV_ASSERT(cJSON_AddStringToObject(jwk, "kid", kid) != NULL);
    PV_ASSERT(cJSON_AddStringToObject(jwk, "use", "sig") != NULL);
    PV_ASSERT(cJSON_AddStringToObject(jwk, "alg", "ES256") != NULL);
    return jwk;
}
