/* server/charge.h: the quota and cost side of a decision: the ledger change an allowed
 * request carries to the audit writer (which checks the team's quota in the decision's
 * own transaction), the cost recorded on the decision, and the quota documents of the
 * API and of paved.quota(team). Built on server/usage.h. */
#ifndef PV_CHARGE_H
#define PV_CHARGE_H

#include <stdbool.h>

#include "audit.h"
#include "config.h"
#include "request.h"

/* True when 'cfg' has quotas or a price table, so decisions are charged and costed. */
bool charge_is_enabled(const struct config *cfg);

/* For an allowed decision of 'req' (kind "deploy": the Kubernetes object, DELETE
 * releases it; kind "provision": an environment) under 'cfg', sets *charge (caller
 * takes; NULL when the object holds nothing) and *details (the decision's JSON details
 * with "cost": {monthly, currency, cost_center, usage}; caller frees). 'team' and
 * 'service' are the request's subject. Returns PV_EINVAL with a message naming the
 * field when the object's quantities do not parse (nothing is charged then). */
pv_status charge_for(const struct config *cfg, const struct pv_request *req,
                     struct audit_charge **charge, char **details, struct pv_err *err);

/* The writer's quota check (audit_quota_fn) with the limits and prices of 'cfg'. */
bool charge_quota_exceeds(const struct config *cfg, const char *team,
                          const struct audit_usage *before, const struct audit_usage *after,
                          char *msg, size_t cap);

/* {"team", "currency", "limits": {cpu, cpu_millis, memory, memory_bytes, storage,
 * storage_bytes, environments, monthly_cost} (null where unlimited), "used": {...,
 * monthly_cost}, "remaining": {...} (null where unlimited)} for 'team' holding 'used'.
 * Caller frees. */
cJSON *charge_quota_json(const struct config *cfg, const char *team,
                         const struct audit_usage *used);

#endif
