/* server/oidc.h: verifying upstream OIDC tokens (a CI provider's, a Kubernetes service
 * account's) against the issuers configured under credentials.oidc, with each issuer's
 * JWKS fetched over HTTPS (libcurl) and cached; and mapping their claims to a team and
 * a service. */
#ifndef PV_OIDC_H
#define PV_OIDC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "status.h"

/* Limits of one JWKS transfer, and how often an unknown kid (or a failed fetch) may
 * trigger another one per issuer. */
#define OIDC_CONNECT_TIMEOUT_MS 3000L
#define OIDC_TIMEOUT_MS 5000L
#define OIDC_MAX_JWKS_BYTES ((size_t)1 << 20)
#define OIDC_REFETCH_MIN_S 10

struct oidc;

/* Makes a verifier for the issuers of 'c' (borrowed: everything needed is copied, so
 * 'c' may be freed afterwards), with 'c->jwks_cache_s' and 'c->leeway_s'. Nothing is
 * fetched yet. On PV_OK *out is freed with oidc_free. Never fails today (returns PV_OK);
 * callers check anyway. curl_global_init must have run (main/serve) before the first
 * oidc_verify. */
pv_status oidc_new(struct oidc **out, const struct cfg_credentials *c, struct pv_err *err);

/* Frees 'o' and its cached JWKS. Not while an oidc_verify runs. oidc_free(NULL) does
 * nothing. */
void oidc_free(struct oidc *o);

/* Verifies the upstream token 'token' (borrowed) at 'now_s' (Unix seconds; also the
 * clock of the JWKS cache). The (unverified) "iss" of its payload chooses the
 * configured issuer; the token must then pass jwt_verify with that issuer's JWKS, its
 * "iss" and its "audience", with credentials.leeway. The JWKS is fetched when there is
 * none, or the cached one is older than jwks_cache (once it is past half of that, a
 * refresh is tried, and a failed one keeps the cached copy). An unknown kid makes one
 * refetch and one retry, at most once per OIDC_REFETCH_MIN_S per issuer; a fetch that
 * failed is not retried within OIDC_REFETCH_MIN_S either (its error is returned again),
 * so bogus tokens cannot make paved hammer an identity provider.
 *
 * On PV_OK *claims_out is the verified payload (the caller frees it with cJSON_Delete)
 * and 'issuer_out' ('cap' bytes) holds the issuer's `iss`. Returns, with a message that
 * never holds the token:
 *   PV_EINVAL  malformed token, no or an unknown issuer ("unknown issuer https://x"),
 *              bad signature, wrong audience, expired, ... (see jwt_verify);
 *   PV_ENOENT  the token's kid is not in the issuer's JWKS, even after a refetch;
 *   PV_EIO     the issuer's JWKS cannot be had ("JWKS of <issuer> unavailable: ...");
 *   PV_ETOOBIG / PV_EDEPTH as jwt_verify; PV_ETOOBIG also when 'cap' is too small.
 * Thread-safe: each issuer's cache has its own mutex, not held during a transfer; one
 * transfer per issuer runs at a time. */
pv_status oidc_verify(struct oidc *o, const char *token, int64_t now_s, cJSON **claims_out,
                      char *issuer_out, size_t cap, struct pv_err *err);

/* The configured issuer of 'c' whose `issuer` is 'iss' (borrowed), or NULL. The result
 * borrows from 'c'. */
const struct cfg_oidc_issuer *oidc_find_issuer(const struct cfg_credentials *c, const char *iss);

/* Maps verified 'claims' (borrowed) of issuer 'is' (borrowed) to a team and a service:
 * the team is the string claim is->team_claim, translated through is->teams when that
 * mapping is configured (a value it does not list is refused, so a look-alike
 * organisation cannot become a team); the service is the string claim
 * is->service_claim. Writes them to 'team' ('team_cap' bytes) and 'service'
 * ('service_cap' bytes). Returns PV_EINVAL naming the claim when one is missing, not a
 * non-empty string, holds control characters, or is not in the mapping; PV_ETOOBIG when
 * a value does not fit. Thread-safe. */
pv_status oidc_subject(const struct cfg_oidc_issuer *is, const cJSON *claims, char *team,
                       size_t team_cap, char *service, size_t service_cap, struct pv_err *err);

#endif
