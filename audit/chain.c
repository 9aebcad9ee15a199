/* audit/chain.c: canonical row serialisation and the SHA-256 chain of the decision log.
 *
 * Canonical row (format version 1). The hash of a row is
 *
 *     hash = lowercase_hex(SHA-256(prev_hash || canonical_row))
 *
 * where prev_hash is the previous row's hash as 64 lowercase hex ASCII characters (64
 * '0' characters for the first row) and canonical_row is the 19 columns below, in this
 * order, each encoded as a netstring: "<decimal byte length>:<bytes>," for a value and
 * "~," for SQL NULL. Length prefixes make the encoding unambiguous whatever bytes the
 * strings hold; NULL and "" differ.
 *
 *     rowid, id, time_ms, source, request_uid, kind, operation, team, service,
 *     namespace, resource_kind, resource_name, actor, decision, path, violations,
 *     bundle_hash, latency_us, dry_run
 *
 * Integers are written in decimal without leading zeros or '+' (as SQLite renders an
 * INTEGER column as text), dry_run as "0" or "1", strings as stored (UTF-8, no NUL).
 * A 20th column, details (JSON: cost, quota, credential; schema 3), follows as a
 * netstring only when it is not NULL, so rows written before it existed, and rows
 * without details, hash exactly as in version 1.
 *
 * Every column except prev_hash (already the prefix) and hash is covered, so changing
 * any field, the order of rows (rowid), or deleting a row breaks the chain. Example, a
 * row with rowid 1 and only id "dec-X" set: "1:1,5:dec-X,~,~,...". */
#include "chain.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

const char chain_zero_hash[CHAIN_HASH_HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static pv_status ssl_fail(struct pv_err *err, const char *what)
{
    char buf[160];

    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    return pv_err_set(err, PV_EIO, "audit chain: %s failed: %s", what, buf);
}

pv_status chain_hash(const char *prev_hex, const struct chain_field f[CHAIN_NFIELDS],
                     char out[CHAIN_HASH_HEX_LEN + 1], struct pv_err *err)
{
    static const char hex[] = "0123456789abcdef";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    pv_status rc = PV_OK;
    int ok;

    if (ctx == NULL)
        return ssl_fail(err, "EVP_MD_CTX_new");
    ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, prev_hex, CHAIN_HASH_HEX_LEN) == 1;
    for (int i = 0; ok && i < CHAIN_NFIELDS; i++) {
        char len_buf[32];
        int n;

        if (f[i].p == NULL && i == CHAIN_DETAILS)
            continue;
        if (f[i].p == NULL) {
            ok = EVP_DigestUpdate(ctx, "~,", 2) == 1;
            continue;
        }
        n = snprintf(len_buf, sizeof(len_buf), "%zu:", f[i].len);
        ok = n > 0 && (size_t)n < sizeof(len_buf) &&
             EVP_DigestUpdate(ctx, len_buf, (size_t)n) == 1 &&
             EVP_DigestUpdate(ctx, f[i].p, f[i].len) == 1 && EVP_DigestUpdate(ctx, ",", 1) == 1;
    }
    if (ok)
        ok = EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len * 2 == CHAIN_HASH_HEX_LEN;
    if (!ok) {
        rc = ssl_fail(err, "SHA-256");
        goto done;
    }
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[CHAIN_HASH_HEX_LEN] = '\0';
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}
