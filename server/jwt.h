/* server/jwt.h: JWS compact tokens (RFC 7515/7519): strict base64url, verification of
 * RS256 and ES256 tokens against a JWKS, ES256 signing and the public JWK of a signing
 * key. Every signature operation is OpenSSL's; nothing here keeps state. */
#ifndef PV_JWT_H
#define PV_JWT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "status.h"

/* Ceilings: a longer token is refused before anything is decoded; header, payload and
 * JWKS documents nested deeper are refused before cJSON sees them; a JWKS with more
 * keys, or a payload with more claims, is refused. */
#define JWT_MAX_TOKEN_BYTES ((size_t)16 << 10)
#define JWT_MAX_JSON_DEPTH 16
#define JWT_MAX_CLAIMS 200
#define JWT_MAX_JWKS_KEYS 100

/* ---- base64url (RFC 4648 section 5, without padding, as JWS uses it) ---- */

/* Returns the unpadded base64url text of the 'len' bytes at 'p' (borrowed), NUL
 * terminated; the caller frees it with free(). */
char *jwt_b64url_encode(const void *p, size_t len);

/* Decodes the 'len' characters at 's' (borrowed; need not be NUL terminated). Strict:
 * only A-Z a-z 0-9 - _ are accepted (no '=' padding, no whitespace, no '+' or '/'), a
 * length of 4n+1 is refused and the unused low bits of the last character must be
 * zero, so each byte string has exactly one encoding. On PV_OK *out is a buffer of
 * *len_out bytes plus a NUL (the caller frees it with free()). Returns PV_EINVAL with
 * the reason otherwise. */
pv_status jwt_b64url_decode(const char *s, size_t len, unsigned char **out, size_t *len_out,
                            struct pv_err *err);

/* ---- Verifying ---- */

/* Verifies the JWS compact token 'token' (borrowed, NUL terminated) with a key of
 * 'jwks' (borrowed; a JWK Set {"keys": [...]}), then its claims.
 *
 * Only "alg" RS256 (RSASSA-PKCS1-v1_5 with SHA-256, modulus of 2048 to 8192 bits) and
 * ES256 (ECDSA P-256 with SHA-256, the signature as the 64-byte JOSE r||s) are
 * accepted: "none", the HMAC algorithms (so a token "signed" with a public key as an
 * HMAC secret is refused before any key is looked at) and everything else are not. A
 * header with "crit" is refused. The key is the JWKS entry whose "kid" equals the
 * header's and whose "kty"/"crv" fit the alg ("alg", "use" and "key_ops", when present,
 * must too); a token without "kid" is accepted only when the JWKS holds exactly one key.
 * Header fields that point at other keys (jku, jwk, x5u, x5c) are ignored.
 *
 * Once the signature verifies: "iss" must equal 'want_iss'; "aud" (a string or an
 * array of strings) must contain 'want_aud'; "exp" is required and must be after
 * 'now_s' - 'leeway_s'; "nbf" and "iat", when present, must not be after 'now_s' +
 * 'leeway_s'. These dates must be numbers. 'want_iss' and 'want_aud' must not be NULL.
 *
 * On PV_OK *claims_out is the payload object (the caller frees it with cJSON_Delete).
 * Returns, with a message naming the reason (never the token itself):
 *   PV_ENOENT  no JWKS key has the token's kid ("unknown kid k3"), or the JWKS is
 *              empty: the caller may fetch the JWKS again and retry once;
 *   PV_ETOOBIG the token is longer than JWT_MAX_TOKEN_BYTES;
 *   PV_EDEPTH  its header or payload nests deeper than JWT_MAX_JSON_DEPTH;
 *   PV_EINVAL  every other refusal: "malformed token: ...", "alg none is not accepted",
 *              "signature does not verify", "token expired at 2026-12-04T10:00:00Z",
 *              "audience is x, want paved", "issuer is x, want y", ...
 * Thread-safe. */
pv_status jwt_verify(const char *token, const cJSON *jwks, const char *want_iss,
                     const char *want_aud, int64_t now_s, int64_t leeway_s, cJSON **claims_out,
                     struct pv_err *err);

/* Decodes the payload of 'token' (borrowed) WITHOUT verifying anything: only to choose
 * which issuer's keys to verify it with (oidc.c reads "iss"). Checks as jwt_verify does
 * the size, the three parts, the base64url and that the payload is a JSON object of
 * bounded depth. On PV_OK *claims_out is the payload (the caller frees it with
 * cJSON_Delete). Returns PV_ETOOBIG, PV_EDEPTH or PV_EINVAL as jwt_verify. Thread-safe. */
pv_status jwt_unverified_claims(const char *token, cJSON **claims_out, struct pv_err *err);

/* Parses the JWK Set 'text' ('len' bytes, borrowed; e.g. an answer from an IdP's
 * jwks_uri): a JSON object whose "keys" is an array of at most JWT_MAX_JWKS_KEYS
 * objects, nesting at most JWT_MAX_JSON_DEPTH deep. Keys are not checked here;
 * jwt_verify skips those that do not fit. On PV_OK *out is the document (the caller
 * frees it with cJSON_Delete). Returns PV_EPARSE (not JSON), PV_EDEPTH, PV_ETOOBIG (too
 * many keys) or PV_EINVAL (not a JWK Set). Thread-safe. */
pv_status jwt_jwks_parse(const char *text, size_t len, cJSON **out, struct pv_err *err);

/* ---- Signing ---- */

/* Signs 'claims' (borrowed; a JSON object) with the EC P-256 private key 'key'
 * (borrowed) as an ES256 JWS with the header {"alg":"ES256","typ":"JWT","kid":'kid'}
 * ('kid' borrowed). On PV_OK *out is the compact token (the caller frees it with
 * free()). Returns PV_EINVAL when 'key' is not a P-256 key or 'claims' is not an object,
 * PV_EIO with OpenSSL's message when signing fails. Thread-safe ('key' is only read). */
pv_status jwt_sign_es256(EVP_PKEY *key, const char *kid, const cJSON *claims, char **out,
                         struct pv_err *err);

/* Returns the public JWK of the P-256 key 'key' (borrowed): {"kty":"EC","crv":"P-256",
 * "x","y","kid":'kid',"use":"sig","alg":"ES256"} (the caller frees it with
 * cJSON_Delete), or NULL when 'key' is not a P-256 key. Thread-safe. */
cJSON *jwt_public_jwk(EVP_PKEY *key, const char *kid);

#endif
