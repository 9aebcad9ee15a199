/* server/creds.h: short-lived credentials (POST /v1/credentials): an upstream OIDC JWT
 * or an API token in, the `credential` policy's decision, an ES256 JWT signed by paved
 * out, every issuance and refusal committed to the audit store first (never the token).
 * Also the published keys (/.well-known/jwks.json, /.well-known/openid-configuration). */
#ifndef PV_CREDS_H
#define PV_CREDS_H

#include <stdint.h>

#include "api.h"
#include "audit.h"
#include "config.h"
#include "vm.h"

struct creds;

/* Prepares issuance for the `credentials:` section of 'cfg': the OIDC verifier, and the
 * signing keys in 'keys_dir' (borrowed; created with a first key when empty). On PV_OK
 * *out is the issuer (free with creds_free). Returns the errors of oidc_new and
 * keys_ensure (PV_EIO naming the directory when it cannot be written). */
pv_status creds_new(struct creds **out, const struct config *cfg, const char *keys_dir,
                    struct pv_err *err);
void creds_free(struct creds *cr);

/* What one POST /v1/credentials works with (borrowed for the call). */
struct creds_call {
    struct audit *audit;
    const struct config *cfg;
    struct vm *vm; /* the calling thread's vm */
    const char *bundle_hash;
    const char *authorization; /* the Authorization header, or NULL */
    const char *body;          /* 'len' bytes */
    size_t len;
    uint64_t deadline_ns;
};

/* Decides and, when allowed, mints. Fills *out: 201 {"token", "token_type", "jti",
 * "audience", "scopes", "expires_in", "expires_at", "decision_id"}; 400 for a malformed
 * body; 401 for an identity that does not verify; 403 when the policy denies (with the
 * decision id and violations); 500/503 when the audit store cannot record it (then no
 * token is issued). Thread-safe. */
void creds_issue(struct creds *cr, const struct creds_call *call, struct api_answer *out);

/* The JWKS of the signing keys now published ({"keys": [...]}); caller frees. */
cJSON *creds_jwks(struct creds *cr, int64_t now_ms);

/* The OpenID discovery document of paved as an issuer; caller frees. */
cJSON *creds_discovery(const struct config *cfg);

#endif
