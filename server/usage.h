/* server/usage.h: what an admitted Kubernetes object or a provisioned environment holds
 * (cpu, memory, storage, environments), its estimated monthly cost, and the quota check
 * that names the numbers. Pure computations: no state, no I/O; every function is
 * thread-safe.
 *
 * What an object holds (usage_of_object):
 * - Pod-bearing workloads hold replicas x per-pod requests:
 *     Pod                       1 replica (spec)
 *     Deployment, ReplicaSet,   spec.replicas (default 1; 0 holds nothing),
 *     ReplicationController,      pods at spec.template.spec
 *     StatefulSet
 *     DaemonSet                 1: one node's worth (the node count is not known here)
 *     Job                       spec.parallelism (default 1), pods at spec.template.spec
 *     CronJob                   spec.jobTemplate.spec.parallelism (default 1), pods at
 *                                 spec.jobTemplate.spec.template.spec
 *   The kind must come from its own API group when apiVersion is given (v1 for Pod and
 *   ReplicationController, apps or extensions for the apps kinds, batch for Job and
 *   CronJob): a custom resource that happens to be called "Job" is not charged.
 * - Per-pod cpu and memory is Kubernetes' effective request: the larger of the sum over
 *   containers and the largest init container, each resource on its own. Init containers
 *   with restartPolicy: Always (sidecars) keep running, so they add to the sum and to
 *   every init container started after them, as the scheduler counts them. spec.overhead
 *   (set from a RuntimeClass) is added. Ephemeral containers are ignored.
 * - A container's request for a resource is resources.requests.<r>; when it has none but
 *   a limit, the limit (Kubernetes defaults requests to limits).
 * - PersistentVolumeClaim: spec.resources.requests.storage. StatefulSet: also replicas x
 *   the storage of each of spec.volumeClaimTemplates.
 * - Every other kind holds nothing and is not charged.
 * - Quantities are Kubernetes quantities (server/base/quantity.h): cpu in cores rounded
 *   up to whole millicores ("500m" is 500, 2 is 2000, "0.0001" is 1), memory and storage
 *   in bytes rounded up. Negative values, NaN and totals beyond int64 are refused.
 *
 * Monthly cost (usage_monthly_cost):
 *   cpu cores x cpu_hour x hours_per_month + memory GiB x memory_gib_hour x hours_per_month
 *   + storage GiB x storage_gib_month + environments x environment_month
 * with GiB = 2^30 bytes. */
#ifndef PV_USAGE_H
#define PV_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "status.h"

/* What an object or a team holds. Every field is >= 0. */
struct usage {
    int64_t cpu_millis;    /* cpu requests in millicores (rounded up) */
    int64_t memory_bytes;  /* memory requests */
    int64_t storage_bytes; /* storage requests */
    int64_t environments;  /* provisioned environments */
};

/* Computes what 'obj' (a Kubernetes object, borrowed) holds once admitted, by the rules
 * above. Returns PV_OK with *out filled and *is_charged true for the kinds that hold
 * resources (even when what they hold is zero, e.g. replicas: 0), or *is_charged false and
 * *out zero for other kinds and for an 'obj' that is not a JSON object. Returns PV_EINVAL
 * with a message naming the field ("spec.template.spec.containers[1].resources.requests.
 * cpu: \"2 cores\" is not a quantity") for an unparsable, negative or too large quantity,
 * a replica count that is not a whole number from 0 to 2147483647, or a field of the
 * wrong type on the way; *out and *is_charged are then untouched. 'err' may be NULL. */
pv_status usage_of_object(const cJSON *obj, struct usage *out, bool *is_charged,
                          struct pv_err *err);

/* A provision request's object 'obj' (borrowed): {"environment": "name", "size": {"cpu":
 * "2", "memory": "4Gi", "storage": "20Gi"}} holds 1 environment plus its size; "size" and
 * each of its keys are optional (0). Other top-level keys are ignored. Returns PV_OK with
 * *out filled, or PV_EINVAL naming the field when 'obj' is not a JSON object,
 * "environment" is not a non-empty string, "size" is not a mapping or has a key other
 * than cpu, memory and storage (so a typo cannot make an environment free), or a size
 * is not a valid non-negative quantity; *out is then untouched. 'err' may be NULL. */
pv_status usage_of_provision(const cJSON *obj, struct usage *out, struct pv_err *err);

/* The estimated monthly cost of 'u' (borrowed) with the price table 'p' (borrowed), in
 * p->currency, by the formula above. */
double usage_monthly_cost(const struct usage *u, const struct cfg_prices *p);

/* 'u' (borrowed) for the API and the audit: {"cpu": "2500m", "cpu_millis": 2500,
 * "memory": "1Gi", "memory_bytes": 1073741824, "storage": "20Gi", "storage_bytes": ...,
 * "environments": 1}. The strings are canonical Kubernetes quantities that parse back to
 * the same numbers: whole cores ("2") or millicores ("2500m"); bytes in the largest of
 * Ki..Ei that divides them exactly, else plain bytes ("1536Mi", "1000"). Returns a new
 * object: caller frees with cJSON_Delete(). */
cJSON *usage_json(const struct usage *u);

/* The quota check. 'used' is what team 'team' holds before the change, 'after' what it
 * would hold once the change is admitted, 'cost_after' the monthly cost of 'after' (all
 * borrowed); 'p' (borrowed) prices 'used' and names the currency. A resource is over
 * when its value in 'after' exceeds the limit of 'q' and is larger than in 'used': a
 * change that does not grow a resource is never refused for it, so a team already over a
 * lowered quota can still shrink or delete. A NULL 'q', or a negative limit, is no limit.
 * For the first resource over, in the order cpu, memory, storage, environments, monthly
 * cost, writes a message of at most 'cap' bytes to 'msg' (truncated, always terminated
 * when 'cap' > 0) and returns true:
 *   "team payments would use 34 of 32 cpu"
 *   "team payments would use 70Gi of 64Gi memory"
 *   "team payments would use 1.5Ti of 1Ti storage"
 *   "team payments would use 6 of 5 environments"
 *   "team payments would use 5120.00 of 5000.00 EUR a month"
 * Numbers are compact (cores as "34" or "2.5", bytes in Ki..Ei with up to two decimals,
 * cost with two), with more digits when the compact forms of the two would read equal.
 * Returns false, leaving 'msg' alone, when nothing is over. 'team' (borrowed) may be
 * NULL ("team ?"). */
bool usage_exceeds(const struct cfg_quota *q, const char *team, const struct usage *used,
                   const struct usage *after, double cost_after, const struct cfg_prices *p,
                   char *msg, size_t cap);

#endif
