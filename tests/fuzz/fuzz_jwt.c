/* tests/fuzz/fuzz_jwt.c: libFuzzer target for the JWT verifier (server/jwt.h), whose
 * input is whatever a client puts in "Authorization: Bearer" and whatever an IdP's
 * jwks_uri answers. Each input is tried four ways:
 *   1. as a token: jwt_verify() against a fixed three-key JWKS and a fixed one-key JWKS,
 *      and jwt_unverified_claims();
 *   2. as a JWKS document: jwt_jwks_parse(), then the fixed tokens verified against it;
 *   3. as base64url text: jwt_b64url_decode(), whose result must encode back to the input;
 *   4. when it holds a newline, as "header\npayload" or "header\npayload\nsignature": the
 *      parts are base64url-encoded into a token, signed here with the fixed P-256 key when
 *      no signature is given, so arbitrary headers and claims reach the claim checks.
 * Checks beyond the sanitizers: a verified token's claims equal its unverified claims; an
 * ES256 token signed here with the key every ES256 entry of the JWKS holds never fails
 * with "signature does not verify".
 *
 * The keys are test-only constants made once with python3-cryptography (the P-256 private
 * key, and the RSA public key whose private half signed token_rs256 and was thrown away);
 * LLVMFuzzerInitialize aborts if the fixed tokens stop verifying. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jwt.h"
#include "status.h"
#include "xalloc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WANT_ISS "https://paved.fuzz"
#define WANT_AUD "paved"
#define NOW_S ((int64_t)1767225600) /* 2026-01-01T00:00:00Z; the fixed tokens expire 2100 */
#define LEEWAY_S ((int64_t)60)

/* kid fuzz-ec (ES256), fuzz-rsa (RS256, 2048 bits), fuzz-ec-ops (the same P-256 key with
 * key_ops ["verify"] and no alg). */
static const char ec_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZcE4rxmyWxOOeUet\n"
    "+kBFzcuY8b1vqp5ZmnygvUj1qVShRANCAAQkjW+Y9WpXiKJ+W9mE4NiJpcNsSnK0\n"
    "7DDBBOsImOqxj0ISCAO71nSNpidWd9qglzzjMgJZJmTiMiT32S7jRy//\n"
    "-----END PRIVATE KEY-----\n";
static const char jwks_full_text[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
    "\"JI1vmPVqV4iiflvZhODYiaXDbEpytOwwwQTrCJjqsY8\""
    ",\"y\":\"QhIIA7vWdI2mJ1Z32qCXPOMyAlkmZOIyJPfZLuNHL_8\",\"kid\":\"fuzz-ec\",\"use\":\"sig\","
    "\"alg\""
    ":\"ES256\"},{\"kty\":\"RSA\",\"n\":\"lp7rz4bzmCR_WthUjsbBBFb0x8jJKnsxOl1XcHALNEHnpo-Ijl3ypGlU"
    "IM4DtHufHlZhYHUGGSZpDgU5AvDvZpp4CYYKYXTH_OqvastiNbN_m0DG5uz5NHy_8Xi7wOk_N3rRsD-DlATt"
    "oBj1wmWMI2FyLUkh_SJI5u72GxPqCxlkIQ5iybB1E6vtRqfvxG638BzULti6x3NEQM4y3DaoHMLtJ9Ybnn_N"
    "zk-a03uLbIrHrpTJyNfIA8sw3Zm8up7h8hjni9zkbQFAa1xoSI6UcTiZo_re1hVq_RccU5yriKpECNMB-t4J"
    "AXgmJiP401odZv7_h0gTTCK8k3eEG4k0Zw\",\"e\":\"AQAB\",\"kid\":\"fuzz-rsa\",\"use\":\"sig\","
    "\"alg\":\"R"
    "S256\"},{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
    "\"JI1vmPVqV4iiflvZhODYiaXDbEpytOwwwQTrCJjqsY8\",\""
    "y\":\"QhIIA7vWdI2mJ1Z32qCXPOMyAlkmZOIyJPfZLuNHL_8\",\"kid\":\"fuzz-ec-ops\",\"key_ops\":[\"ver"
    "ify\"]}]}";

static const char jwks_one_text[] = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":"
                                    "\"JI1vmPVqV4iiflvZhODYiaXDbEpytOwwwQTrCJjqsY8\""
                                    ",\"y\":\"QhIIA7vWdI2mJ1Z32qCXPOMyAlkmZOIyJPfZLuNHL_8\","
                                    "\"kid\":\"fuzz-ec\",\"use\":\"sig\",\"alg\""
                                    ":\"ES256\"}]}";

static const char token_es256[] =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImZ1enotZWMifQ.eyJpc3MiOiJodHRwczovL3Bhd"
    "mVkLmZ1enoiLCJhdWQiOiJwYXZlZCIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzY3MjI1MDAwLCJuYmYiO"
    "jE3NjcyMjUwMDAsInN1YiI6InJlcG86YWNtZS9wYXltZW50cyIsInRlYW0iOiJwYXltZW50cyJ9.RYzmDKfz"
    "jYw-K7QjFRlLrCQ7gUsFcUgCAnImZvQs8kSPQQzC_cLfl6gaKjadeEHFH3_hmb5NLeCRnHFT6G6Sqw";

static const char token_rs256[] =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImZ1enotcnNhIn0.eyJpc3MiOiJodHRwczovL3Bh"
    "dmVkLmZ1enoiLCJhdWQiOlsib3RoZXIiLCJwYXZlZCJdLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTc2NzIy"
    "NTAwMCwibmJmIjoxNzY3MjI1MDAwLCJzdWIiOiJyZXBvOmFjbWUvcGF5bWVudHMiLCJ0ZWFtIjoicGF5bWVu"
    "dHMifQ.aONdFdelLFc2IBw8ppW7haEApBe3V4-AZAQQG6epSMpurr8k_o_7OHvwFGvpeXhR52Iw-_WIX35PY"
    "EaXGqjtjMxAYF41x_PJmByEsrHwfJ1rhEp5qiC2mQANjU7Zt5b98NgFclvVO3jjpnHMOE-SmknSO0a59D_OA"
    "zkhHBW5k5rrGghNEFK-ikoiLjZraBaV4QH97jKD05TXxcc8B6B3G-bMT_VzanPJvw5b6XEWlwqJ76Q4MDnFz"
    "VyU0MN97Jda74HBQeg5rLYgWD0wYPZizscCQRR0Qjc3w4bDiIQsv-vwL55m-xqogQ4cM41AQLVFvhcCktN0w"
    "7oWKAbr-jymmQ";

static const char token_es256_nokid[] =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL3BhdmVkLmZ1enoiLCJhdWQiOiJ"
    "wYXZlZCIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzY3MjI1MDAwLCJuYmYiOjE3NjcyMjUwMDAsInN1YiI"
    "6InJlcG86YWNtZS9wYXltZW50cyIsInRlYW0iOiJwYXltZW50cyJ9.zfyYgIUsGRFPgpeRtJjgS2lPCjebX4"
    "gOOrIOVY0wQzetDiMwUa970MfMX3hH5sEe8gcwyZxrpTlxYZQkHZ8Tdw";

static EVP_PKEY *ec_key;
static cJSON *jwks_full;
static cJSON *jwks_one;

static void die(const char *what, const struct pv_err *err)
{
    fprintf(stderr, "fuzz_jwt: %s%s%s\n", what, err != NULL ? ": " : "",
            err != NULL ? err->msg : "");
    abort();
}

/* 'data' as a NUL-terminated string in its own allocation (so ASan sees a read past it). */
static char *cstr(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);

    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static cJSON *parse_jwks_or_die(const char *text)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *doc = NULL;

    if (jwt_jwks_parse(text, strlen(text), &doc, &err) != PV_OK)
        die("fixed JWKS", &err);
    return doc;
}

static void expect_verify(const char *token, const cJSON *jwks, pv_status want, const char *what)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *claims = NULL;
    pv_status rc = jwt_verify(token, jwks, WANT_ISS, WANT_AUD, NOW_S, LEEWAY_S, &claims, &err);

    cJSON_Delete(claims);
    if (rc != want)
        die(what, &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    BIO *bio = BIO_new_mem_buf(ec_key_pem, (int)strlen(ec_key_pem));

    (void)argc;
    (void)argv;
    ec_key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (ec_key == NULL)
        die("the fixed P-256 key does not load", NULL);
    jwks_full = parse_jwks_or_die(jwks_full_text);
    jwks_one = parse_jwks_or_die(jwks_one_text);
    expect_verify(token_es256, jwks_full, PV_OK, "token_es256 against jwks_full");
    expect_verify(token_rs256, jwks_full, PV_OK, "token_rs256 against jwks_full");
    expect_verify(token_es256_nokid, jwks_full, PV_EINVAL, "token_es256_nokid against jwks_full");
    expect_verify(token_es256_nokid, jwks_one, PV_OK, "token_es256_nokid against jwks_one");
    return 0;
}

/* jwt_verify, then the claims must be what jwt_unverified_claims reads. */
static pv_status verify_one(const char *token, const cJSON *jwks, struct pv_err *err)
{
    cJSON *claims = NULL;
    pv_status rc = jwt_verify(token, jwks, WANT_ISS, WANT_AUD, NOW_S, LEEWAY_S, &claims, err);

    if (strnlen(err->msg, sizeof(err->msg)) == sizeof(err->msg))
        die("jwt_verify left an unterminated message", NULL);
    if (rc == PV_OK) {
        struct pv_err uerr = {PV_OK, ""};
        cJSON *raw = NULL;

        if (!cJSON_IsObject(claims))
            die("jwt_verify: PV_OK without a claims object", NULL);
        if (jwt_unverified_claims(token, &raw, &uerr) != PV_OK)
            die("jwt_unverified_claims refuses a token jwt_verify accepted", &uerr);
        if (!cJSON_Compare(claims, raw, true))
            die("verified and unverified claims differ", NULL);
        cJSON_Delete(raw);
    }
    cJSON_Delete(claims);
    return rc;
}

static void as_token(const uint8_t *data, size_t size)
{
    char *token = cstr(data, size);
    struct pv_err err = {PV_OK, ""};
    cJSON *claims = NULL;

    verify_one(token, jwks_full, &err);
    verify_one(token, jwks_one, &err);
    if (jwt_unverified_claims(token, &claims, &err) == PV_OK && !cJSON_IsObject(claims))
        die("jwt_unverified_claims: PV_OK without an object", NULL);
    cJSON_Delete(claims);
    free(token);
}

static void as_jwks(const uint8_t *data, size_t size)
{
    /* Exactly 'size' bytes, no NUL after them: the parser is given a length. */
    char *text = xmalloc(size > 0 ? size : 1);
    struct pv_err err = {PV_OK, ""};
    cJSON *jwks = NULL;

    if (size > 0)
        memcpy(text, data, size);
    if (jwt_jwks_parse(text, size, &jwks, &err) == PV_OK) {
        verify_one(token_es256, jwks, &err);
        verify_one(token_rs256, jwks, &err);
        verify_one(token_es256_nokid, jwks, &err);
    }
    cJSON_Delete(jwks);
    free(text);
}

static void as_base64url(const uint8_t *data, size_t size)
{
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    struct pv_err err = {PV_OK, ""};

    if (jwt_b64url_decode((const char *)data, size, &raw, &raw_len, &err) == PV_OK) {
        char *again = jwt_b64url_encode(raw, raw_len);

        if (raw_len != size * 3 / 4 || strlen(again) != size || memcmp(again, data, size) != 0)
            die("base64url decode then encode does not give the input back", NULL);
        if (raw[raw_len] != '\0')
            die("jwt_b64url_decode: no NUL after the bytes", NULL);
        free(again);
        free(raw);
    }
}

/* The 64-byte JOSE ES256 signature of 'input' with ec_key, base64url (free with free()). */
static char *es256_sign(const char *input, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t der_len = sizeof(der);
    const unsigned char *p = der;
    unsigned char rs[64];
    ECDSA_SIG *sig;
    const BIGNUM *r = NULL;
    const BIGNUM *s = NULL;

    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ec_key) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, len) != 1)
        die("ES256 signing", NULL);
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (sig == NULL)
        die("d2i_ECDSA_SIG", NULL);
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, rs, 32) != 32 || BN_bn2binpad(s, rs + 32, 32) != 32)
        die("BN_bn2binpad", NULL);
    ECDSA_SIG_free(sig);
    return jwt_b64url_encode(rs, sizeof(rs));
}

/* True when the JSON text 'h' ('len' bytes) is an object whose "alg" is "ES256". */
static bool header_is_es256(const uint8_t *h, size_t len)
{
    cJSON *o = cJSON_ParseWithLength((const char *)h, len);
    bool is_es256 = cJSON_IsObject(o) &&
                    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "alg")) &&
                    strcmp(cJSON_GetObjectItemCaseSensitive(o, "alg")->valuestring, "ES256") == 0;

    cJSON_Delete(o);
    return is_es256;
}

static void as_parts(const uint8_t *data, size_t size)
{
    const uint8_t *nl1 = memchr(data, '\n', size);
    const uint8_t *payload;
    const uint8_t *nl2;
    size_t payload_len;
    char *h64;
    char *p64;
    char *s64;
    char *token;
    size_t input_len;
    size_t cap;
    bool is_signed_here;
    struct pv_err err = {PV_OK, ""};
    pv_status rc;

    if (nl1 == NULL)
        return;
    payload = nl1 + 1;
    payload_len = size - (size_t)(payload - data);
    nl2 = memchr(payload, '\n', payload_len);
    if (nl2 != NULL)
        payload_len = (size_t)(nl2 - payload);
    h64 = jwt_b64url_encode(data, (size_t)(nl1 - data));
    p64 = jwt_b64url_encode(payload, payload_len);
    input_len = strlen(h64) + 1 + strlen(p64);
    cap = input_len + 1 + 128 + ((nl2 != NULL) ? (size - (size_t)(nl2 + 1 - data)) * 4 / 3 : 0);
    token = xmalloc(cap);
    snprintf(token, cap, "%s.%s", h64, p64);
    is_signed_here = nl2 == NULL;
    if (is_signed_here)
        s64 = es256_sign(token, input_len);
    else
        s64 = jwt_b64url_encode(nl2 + 1, size - (size_t)(nl2 + 1 - data));
    snprintf(token + input_len, cap - input_len, ".%s", s64);

    rc = verify_one(token, jwks_full, &err);
    if (is_signed_here && rc != PV_OK && strcmp(err.msg, "signature does not verify") == 0 &&
        header_is_es256(data, (size_t)(nl1 - data)))
        die("an ES256 token signed with the JWKS's own P-256 key does not verify", &err);
    if (is_signed_here) {
        rc = verify_one(token, jwks_one, &err);
        if (rc != PV_OK && strcmp(err.msg, "signature does not verify") == 0 &&
            header_is_es256(data, (size_t)(nl1 - data)))
            die("an ES256 token signed with the JWKS's own P-256 key does not verify", &err);
    }
    free(token);
    free(s64);
    free(p64);
    free(h64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_token(data, size);
    as_jwks(data, size);
    as_base64url(data, size);
    as_parts(data, size);
    ERR_clear_error();
    return 0;
}
