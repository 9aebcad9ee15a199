/* server/decide.h: the decision table of DESIGN.md: bindings -> violations -> path. */
#ifndef PV_DECIDE_H
#define PV_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "request.h"
#include "status.h"
#include "vm.h"

enum decide_path {
    DECIDE_GOLDEN = 0, /* no golden-path violation */
    DECIDE_EXCEPTION,  /* violations all covered by active exceptions */
    DECIDE_OFF_ROAD,   /* warn/audit violations only */
    DECIDE_DENIED,     /* a deny violation not covered */
    DECIDE_BREAKGLASS, /* denied, but a break-glass window turned the denials into warnings */
};

#define DECIDE_N_PATHS 5

/* One binding's part in a decision. */
struct decide_item {
    const struct cfg_binding *binding;       /* borrowed from the config */
    const struct vm_policy *policy;          /* borrowed from the vm */
    enum vm_enforcement enforcement;         /* effective at this entry point */
    bool is_violated;                        /* violations, or an error its on_error denies */
    bool is_covered;                         /* violated, but an active exception allows it */
    bool is_breakglass;                      /* a denial a break-glass window made a warning */
    char exception_id[AUDIT_EXC_ID_LEN + 1]; /* is_covered: the exception */
    int64_t exception_until_ms;
    struct vm_result r;
};

struct decision {
    struct decide_item *items; /* one per binding, skipped ones included */
    size_t n_items;
    bool is_allowed;
    enum decide_path path;
    size_t n_deny; /* violated bindings by enforcement */
    size_t n_warn;
    size_t n_audit;
    size_t n_errors;  /* bindings whose policy failed */
    size_t n_covered; /* violated bindings allowed by exceptions (not in n_deny..n_audit) */
    bool is_exception_available; /* a golden-path policy allowing exceptions was in scope */
    char breakglass_id[AUDIT_EXC_ID_LEN + 1]; /* path DECIDE_BREAKGLASS: the window */
    uint64_t elapsed_ns;
};

/* Evaluates every binding of 'cfg' (whose bindings 'vm' must hold, in order) on 'req'
 * as seen from 'entry'. Borrows everything; fills *out, which the caller releases with
 * decision_fini even on error. Returns PV_EINVAL/PV_ENOMEM when the object cannot be
 * handed to policies (see vm_begin); policy failures are part of the decision. */
pv_status decide_eval(struct vm *vm, const struct config *cfg, enum cfg_entry entry,
                      const struct pv_request *req, struct decision *out, struct pv_err *err);

/* Runs the mutating bindings of 'cfg' on 'req' one after another, each on the object
 * as the patches before it left it, and collects their JSONPatch operations into
 * *patch (a JSON array the caller frees; empty when nothing changes). Fills *out with
 * one item per binding: VM_SKIPPED for those that do not mutate, a violation per
 * operation ("add /metadata/labels/team") for the ones that did, and a policy error
 * for a mutator that raised, changed the request in place or returned a patch that
 * does not apply (its operations are left out). Errors as decide_eval. */
pv_status decide_mutate(struct vm *vm, const struct config *cfg, const struct pv_request *req,
                        struct decision *out, cJSON **patch, struct pv_err *err);

/* Applies exceptions and break-glass to a decision decide_eval made for 'req' (the
 * rest of the decision table of DESIGN.md): each violated binding whose policy allows
 * exceptions and that an exception of 'exc' covers for the request's team, service and
 * namespace at 'now_ms' is allowed (is_covered, path "exception" when nothing else
 * denies); then, when denials remain and a window of 'bg' covers the namespace or
 * team, the denials become warnings (path "breakglass"). Either set may be NULL.
 * Borrows everything. */
void decide_apply_exceptions(struct decision *d, const struct pv_request *req,
                             const struct audit_exc_set *exc, const struct audit_bg_set *bg,
                             int64_t now_ms);

/* Writes to 'buf' what a denial of 'policy' tells a service team about leaving the
 * golden path: the exact `paved exceptions request` command for the request's team
 * and service, or that the policy allows no exceptions. */
void decide_exception_hint(const struct vm_policy *policy, const struct pv_request *req, char *buf,
                           size_t cap);

void decision_fini(struct decision *d);

/* The request subject of DESIGN.md for 'obj' in 'namespace' (all borrowed; 'cfg' may be
 * NULL for the defaults): team from the configured team label, else the config's
 * namespace -> team map, else "unknown"; service from the configured service label,
 * else the `service` label, else 'name', else metadata.name; actor when given. Caller
 * frees with cJSON_Delete. */
cJSON *decide_subject(const struct config *cfg, const cJSON *obj, const char *namespace,
                      const char *name, const char *actor);

const char *decide_path_name(enum decide_path p);
const char *decide_outcome_name(enum vm_outcome o);

/* Adds to 'obj' (borrowed) the arrays "violations" ({binding, policy, title,
 * enforcement, message} per finding of a violated binding, plus "exception" and
 * "exception_until" when an exception allowed it, "breakglass" when a window did) and "errors"
 * ({binding, policy, result, message, denies, enforcement} per failed policy): the findings as the
 * JSON output of paved check and the /v1/decide answer show them. */
void decide_findings_json(const struct decision *d, cJSON *obj);
/* The findings of 'd' as the audit keeps them: the "violations" of decide_findings_json
 * with its "errors" appended (each marked by its enforcement, or "error" when it
 * allows). Returns: caller frees with cJSON_Delete. */
cJSON *decide_findings_list(const struct decision *d);

/* decide_findings_json plus, on each uncovered deny violation, "exception_request":
 * the decide_exception_hint of its policy for 'req' (borrowed). */
void decide_findings_json_hinted(const struct decision *d, const struct pv_request *req,
                                 cJSON *obj);
const char *decide_enforcement_name(enum vm_enforcement e);

#endif
