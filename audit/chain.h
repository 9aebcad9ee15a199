/* audit/chain.h: the tamper-evident hash chain of the decision log: the canonical form
 * of a decision row and hash = SHA-256(prev_hash || canonical row). Used by the writer
 * (to seal rows) and by audit_verify (to check them). */
#ifndef PV_AUDIT_CHAIN_H
#define PV_AUDIT_CHAIN_H

#include <stddef.h>

#include "status.h"

#define CHAIN_HASH_HEX_LEN 64 /* lowercase hex SHA-256, NUL not included */

/* Columns of a row that the hash covers, in canonical order (see chain.c). */
enum {
    CHAIN_ROWID,
    CHAIN_ID,
    CHAIN_TIME_MS,
    CHAIN_SOURCE,
    CHAIN_REQUEST_UID,
    CHAIN_KIND,
    CHAIN_OPERATION,
    CHAIN_TEAM,
    CHAIN_SERVICE,
    CHAIN_NAMESPACE,
    CHAIN_RESOURCE_KIND,
    CHAIN_RESOURCE_NAME,
    CHAIN_ACTOR,
    CHAIN_DECISION,
    CHAIN_PATH,
    CHAIN_VIOLATIONS,
    CHAIN_BUNDLE_HASH,
    CHAIN_LATENCY_US,
    CHAIN_DRY_RUN,
    CHAIN_DETAILS, /* optional: hashed only when not NULL (see chain.c) */
    CHAIN_NFIELDS,
};

/* One column as text: integers in decimal ("-12"), booleans as "0"/"1". 'p' == NULL is
 * SQL NULL; otherwise 'len' bytes at 'p' (borrowed). */
struct chain_field {
    const char *p;
    size_t len;
};

/* prev_hash of the first row: 64 '0' characters. */
extern const char chain_zero_hash[CHAIN_HASH_HEX_LEN + 1];

/* Computes the hash of a row whose previous row's hash is 'prev_hex' (64 hex characters)
 * and whose columns are 'f[0..CHAIN_NFIELDS)' into 'out' (lowercase hex, NUL-terminated).
 * Borrows everything. Returns PV_OK, or PV_EIO when OpenSSL fails (message in 'err').
 * Thread-safe. */
pv_status chain_hash(const char *prev_hex, const struct chain_field f[CHAIN_NFIELDS],
                     char out[CHAIN_HASH_HEX_LEN + 1], struct pv_err *err);

#endif
