/* server/decide.c: runs the bindings of a config against one request and applies the
 * decision table (golden / exception / off-road / denied). */
#include "decide.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdio.h>

#include "jsonpatch.h"
#include "jsonutil.h"
#include "xalloc.h"

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *decide_path_name(enum decide_path p)
{
    switch (p) {
    case DECIDE_GOLDEN:
        return "golden";
    case DECIDE_EXCEPTION:
        return "exception";
    case DECIDE_OFF_ROAD:
        return "off-road";
    case DECIDE_DENIED:
        return "denied";
    case DECIDE_BREAKGLASS:
        return "breakglass";
    }
    return "?";
}

const char *decide_outcome_name(enum vm_outcome o)
{
    switch (o) {
    case VM_SKIPPED:
        return "skipped";
    case VM_OK:
        return "ok";
    case VM_ERROR:
        return "error";
    case VM_TIMEOUT:
        return "timeout";
    case VM_BUDGET:
        return "budget";
    case VM_NOMEM:
        return "memory";
    }
    return "?";
}

void decide_findings_json(const struct decision *d, cJSON *obj)
{
    cJSON *v = cJSON_AddArrayToObject(obj, "violations");
    cJSON *e = cJSON_AddArrayToObject(obj, "errors");

    for (size_t i = 0; i < d->n_items; i++) {
        const struct decide_item *it = &d->items[i];

        if (it->r.outcome >= VM_ERROR) {
            cJSON *x = cJSON_CreateObject();

            cJSON_AddStringToObject(x, "binding", it->binding->id);
            cJSON_AddStringToObject(x, "policy", it->policy->id);
            cJSON_AddStringToObject(x, "result", decide_outcome_name(it->r.outcome));
            cJSON_AddStringToObject(x, "message", it->r.error);
            cJSON_AddBoolToObject(x, "denies", it->is_violated);
            cJSON_AddStringToObject(x, "enforcement",
                                    it->is_violated ? decide_enforcement_name(it->enforcement)
                                                    : "error");
            cJSON_AddItemToArray(e, x);
            continue;
        }
        if (!it->is_violated)
            continue;
        for (size_t k = 0; k < it->r.n_violations; k++) {
            cJSON *x = cJSON_CreateObject();

            cJSON_AddStringToObject(x, "binding", it->binding->id);
            cJSON_AddStringToObject(x, "policy", it->policy->id);
            cJSON_AddStringToObject(x, "title", it->policy->title);
            cJSON_AddStringToObject(x, "enforcement", decide_enforcement_name(it->enforcement));
            cJSON_AddStringToObject(x, "message", it->r.violations[k]);
            if (it->is_covered) {
                char until[40];

                audit_format_time(it->exception_until_ms, until, sizeof(until));
                cJSON_AddStringToObject(x, "exception", it->exception_id);
                cJSON_AddStringToObject(x, "exception_until", until);
            }
            if (it->is_breakglass)
                cJSON_AddStringToObject(x, "breakglass", d->breakglass_id);
            cJSON_AddItemToArray(v, x);
        }
    }
}

cJSON *decide_findings_list(const struct decision *d)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *list;
    cJSON *errs;
    cJSON *e;

    decide_findings_json(d, obj);
    list = cJSON_DetachItemFromObjectCaseSensitive(obj, "violations");
    errs = cJSON_GetObjectItemCaseSensitive(obj, "errors");
    while ((e = cJSON_DetachItemFromArray(errs, 0)) != NULL)
        cJSON_AddItemToArray(list, e);
    cJSON_Delete(obj);
    return list;
}

void decide_findings_json_hinted(const struct decision *d, const struct pv_request *req, cJSON *obj)
{
    cJSON *v;

    decide_findings_json(d, obj);
    v = cJSON_GetObjectItemCaseSensitive(obj, "violations")->child;
    /* The same walk as decide_findings_json: one element per violation message. */
    for (size_t i = 0; i < d->n_items && v != NULL; i++) {
        const struct decide_item *it = &d->items[i];
        char hint[400];

        if (it->r.outcome >= VM_ERROR || !it->is_violated)
            continue;
        decide_exception_hint(it->policy, req, hint, sizeof(hint));
        for (size_t k = 0; k < it->r.n_violations && v != NULL; k++, v = v->next)
            if (it->enforcement == VM_DENY && !it->is_covered)
                cJSON_AddStringToObject(v, "exception_request", hint);
    }
}

const char *decide_enforcement_name(enum vm_enforcement e)
{
    switch (e) {
    case VM_DENY:
        return "deny";
    case VM_WARN:
        return "warn";
    case VM_AUDIT:
        return "audit";
    }
    return "?";
}

/* A policy changed the request or its params: evaluate every binding again, alone,
 * on a fresh copy of the request, and turn each binding that writes into a policy
 * error. Costly, and only run when vm_unchanged found a write. */
static pv_status isolate(struct vm *vm, const struct pv_request *req, struct decision *out,
                         struct pv_err *err)
{
    pv_status rc = vm_restore_params(vm, err);

    for (size_t i = 0; rc == PV_OK && i < out->n_items; i++) {
        struct decide_item *it = &out->items[i];
        char what[300];

        vm_result_fini(&it->r);
        rc = vm_begin(vm, req, err);
        if (rc)
            break;
        vm_eval(vm, i, &it->r);
        if (!vm_unchanged(vm, what, sizeof(what))) {
            char msg[600];

            vm_result_fini(&it->r);
            snprintf(msg, sizeof(msg),
                     "%s: the policy changed %s; policies must treat the request and their "
                     "params as read-only (copy what you need to change)",
                     it->policy->file, what);
            it->r.outcome = VM_ERROR;
            it->r.error = xstrdup(msg);
            rc = vm_restore_params(vm, err);
        }
        vm_end(vm);
    }
    return rc;
}

pv_status decide_eval(struct vm *vm, const struct config *cfg, enum cfg_entry entry,
                      const struct pv_request *req, struct decision *out, struct pv_err *err)
{
    uint64_t t0 = now_ns();
    bool golden_violated = false;
    char what[300];
    pv_status rc;

    memset(out, 0, sizeof(*out));
    PV_ASSERT(vm_binding_count(vm) == cfg->n_bindings);
    rc = vm_begin(vm, req, err);
    if (rc)
        return rc;
    out->items = xcalloc(cfg->n_bindings ? cfg->n_bindings : 1, sizeof(*out->items));
    for (size_t i = 0; i < cfg->n_bindings; i++) {
        struct decide_item *it = &out->items[out->n_items++];

        it->binding = &cfg->bindings[i];
        it->policy = vm_binding_policy(vm, i);
        PV_ASSERT(it->policy != NULL);
        vm_eval(vm, i, &it->r);
    }
    if (vm_unchanged(vm, what, sizeof(what))) {
        vm_end(vm);
    } else {
        vm_end(vm);
        rc = isolate(vm, req, out, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < out->n_items; i++) {
        struct decide_item *it = &out->items[i];
        int e = it->binding->enforcement[entry];

        it->enforcement = e != CFG_UNSET ? (enum vm_enforcement)e : it->policy->enforcement;
        if (it->r.outcome >= VM_ERROR) {
            out->n_errors++;
            it->is_violated = it->policy->is_on_error_deny;
        } else {
            it->is_violated = it->r.outcome == VM_OK && it->r.n_violations > 0;
        }
        if (it->r.outcome != VM_SKIPPED && it->policy->is_golden_path &&
            it->policy->exceptions_allowed)
            out->is_exception_available = true;
        if (!it->is_violated)
            continue;
        switch (it->enforcement) {
        case VM_DENY:
            out->n_deny++;
            break;
        case VM_WARN:
            out->n_warn++;
            break;
        case VM_AUDIT:
            out->n_audit++;
            break;
        }
        if (it->policy->is_golden_path)
            golden_violated = true;
    }
    /* Exceptions and break-glass: decide_apply_exceptions. */
    if (out->n_deny > 0)
        out->path = DECIDE_DENIED;
    else if (golden_violated)
        out->path = DECIDE_OFF_ROAD;
    else
        out->path = DECIDE_GOLDEN;
    out->is_allowed = out->n_deny == 0;
    out->elapsed_ns = now_ns() - t0;
    return PV_OK;
}

/* Applies one mutator's 'ops' to 'work', appends them to 'patch' and lists them in the
 * item, or turns the item into a policy error when they do not apply. */
static void take_ops(struct decide_item *it, cJSON **work, cJSON *ops, cJSON *patch)
{
    cJSON *trial = cJSON_Duplicate(*work, 1);
    struct pv_err perr = {0};
    cJSON *op;
    size_t n = (size_t)cJSON_GetArraySize(ops);

    if (jsonpatch_apply(trial, ops, &perr)) {
        char msg[600];

        snprintf(msg, sizeof(msg), "%s: mutate() returned a patch that does not apply: %s",
                 it->policy->file, perr.msg);
        cJSON_Delete(trial);
        vm_result_fini(&it->r);
        it->r.outcome = VM_ERROR;
        it->r.error = xstrdup(msg);
        return;
    }
    cJSON_Delete(*work);
    *work = trial;
    it->is_violated = n > 0;
    it->r.violations = xcalloc(n ? n : 1, sizeof(*it->r.violations));
    while ((op = cJSON_DetachItemFromArray(ops, 0)) != NULL) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(op, "path");
        char line[600];

        snprintf(line, sizeof(line), "%s %s", o->valuestring, path->valuestring);
        if (it->r.n_violations < n)
            it->r.violations[it->r.n_violations++] = xstrdup(line);
        cJSON_AddItemToArray(patch, op);
    }
}

pv_status decide_mutate(struct vm *vm, const struct config *cfg, const struct pv_request *req,
                        struct decision *out, cJSON **patch, struct pv_err *err)
{
    uint64_t t0 = now_ns();
    cJSON *work = cJSON_Duplicate(req->object, 1);
    cJSON *ops_all = cJSON_CreateArray();
    struct pv_request r = *req;
    pv_status rc = PV_OK;
    char what[300];

    memset(out, 0, sizeof(*out));
    out->items = xcalloc(cfg->n_bindings ? cfg->n_bindings : 1, sizeof(*out->items));
    for (size_t i = 0; i < cfg->n_bindings && rc == PV_OK; i++) {
        struct decide_item *it = &out->items[out->n_items++];
        cJSON *ops = NULL;

        it->binding = &cfg->bindings[i];
        it->policy = vm_binding_policy(vm, i);
        it->enforcement = VM_AUDIT;
        if (!it->policy->is_mutating) {
            it->r.outcome = VM_SKIPPED;
            continue;
        }
        r.object = work;
        rc = vm_begin(vm, &r, err);
        if (rc)
            break;
        vm_mutate(vm, i, &it->r, &ops);
        if (!vm_unchanged(vm, what, sizeof(what))) {
            char msg[600];

            snprintf(msg, sizeof(msg),
                     "%s: the policy changed %s; mutate() must return patches, not edit the "
                     "request",
                     it->policy->file, what);
            vm_result_fini(&it->r);
            it->r.outcome = VM_ERROR;
            it->r.error = xstrdup(msg);
            cJSON_Delete(ops);
            ops = NULL;
            rc = vm_restore_params(vm, err);
        }
        vm_end(vm);
        if (it->r.outcome == VM_OK && ops != NULL)
            take_ops(it, &work, ops, ops_all);
        if (it->r.outcome >= VM_ERROR)
            out->n_errors++;
        cJSON_Delete(ops);
    }
    cJSON_Delete(work);
    if (rc) {
        cJSON_Delete(ops_all);
        return rc;
    }
    out->is_allowed = true;
    out->path = DECIDE_GOLDEN;
    out->elapsed_ns = now_ns() - t0;
    *patch = ops_all;
    return PV_OK;
}

void decide_apply_exceptions(struct decision *d, const struct pv_request *req,
                             const struct audit_exc_set *exc, const struct audit_bg_set *bg,
                             int64_t now_ms)
{
    const char *team = json_str(req->subject, "team", NULL);
    const char *service = json_str(req->subject, "service", NULL);
    const struct audit_bg *window = NULL;
    bool golden_violated = false;

    for (size_t i = 0; i < d->n_items && exc != NULL && exc->n > 0; i++) {
        struct decide_item *it = &d->items[i];
        const struct audit_exc *e;

        if (!it->is_violated || it->is_covered || it->r.outcome != VM_OK ||
            !it->policy->exceptions_allowed)
            continue;
        e = audit_exc_match(exc, team, service, req->namespace, it->policy->id, now_ms);
        if (e == NULL)
            continue;
        it->is_covered = true;
        snprintf(it->exception_id, sizeof(it->exception_id), "%s", e->id);
        it->exception_until_ms = e->expires_ms;
        d->n_covered++;
        if (it->enforcement == VM_DENY)
            d->n_deny--;
        else if (it->enforcement == VM_WARN)
            d->n_warn--;
        else
            d->n_audit--;
    }
    if (d->n_deny > 0 && bg != NULL)
        window = audit_bg_match(bg, req->namespace, team, now_ms);
    if (window != NULL) {
        snprintf(d->breakglass_id, sizeof(d->breakglass_id), "%s", window->id);
        for (size_t i = 0; i < d->n_items; i++) {
            struct decide_item *it = &d->items[i];

            if (it->is_violated && !it->is_covered && it->enforcement == VM_DENY) {
                it->enforcement = VM_WARN;
                it->is_breakglass = true;
                d->n_warn++;
            }
        }
        d->n_deny = 0;
    }
    for (size_t i = 0; i < d->n_items; i++)
        if (d->items[i].is_violated && !d->items[i].is_covered &&
            d->items[i].policy->is_golden_path)
            golden_violated = true;
    /* "exception" only when the exceptions covered everything golden-path: a golden
     * warning left uncovered keeps the request off-road. */
    if (d->n_deny > 0)
        d->path = DECIDE_DENIED;
    else if (window != NULL)
        d->path = DECIDE_BREAKGLASS;
    else if (golden_violated)
        d->path = DECIDE_OFF_ROAD;
    else if (d->n_covered > 0)
        d->path = DECIDE_EXCEPTION;
    else
        d->path = DECIDE_GOLDEN;
    d->is_allowed = d->n_deny == 0;
}

void decide_exception_hint(const struct vm_policy *policy, const struct pv_request *req, char *buf,
                           size_t cap)
{
    const char *team = json_str(req->subject, "team", NULL);
    const char *service = json_str(req->subject, "service", NULL);

    if (!policy->exceptions_allowed) {
        snprintf(buf, cap, "policy %s allows no exceptions", policy->id);
        return;
    }
    snprintf(buf, cap,
             "to request an exception: paved exceptions request --team %s --service %s%s%s "
             "--policy %s --duration %dd --justification '...'",
             team != NULL ? team : "TEAM", service != NULL ? service : "SERVICE",
             req->namespace != NULL ? " --namespace " : "",
             req->namespace != NULL ? req->namespace : "", policy->id,
             policy->exceptions_max_days > 0 && policy->exceptions_max_days < 7
                 ? policy->exceptions_max_days
                 : 7);
}

void decision_fini(struct decision *d)
{
    for (size_t i = 0; i < d->n_items; i++)
        vm_result_fini(&d->items[i].r);
    free(d->items);
    memset(d, 0, sizeof(*d));
}

cJSON *decide_subject(const struct config *cfg, const cJSON *obj, const char *namespace,
                      const char *name, const char *actor)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
    const char *team_label = cfg != NULL ? cfg->subject.team_label : "team";
    const char *service_label = cfg != NULL ? cfg->subject.service_label : "app.kubernetes.io/name";
    const char *team = json_str(labels, team_label, NULL);
    const char *service = json_str(labels, service_label, NULL);
    cJSON *subject = cJSON_CreateObject();

    if (team == NULL && cfg != NULL && namespace != NULL)
        team = json_str(cfg->subject.namespaces, namespace, NULL);
    if (service == NULL)
        service = json_str(labels, "service", NULL);
    if (service == NULL)
        service = name != NULL ? name : json_str(obj, "metadata", "name");
    cJSON_AddStringToObject(subject, "team", team != NULL ? team : "unknown");
    if (service != NULL)
        cJSON_AddStringToObject(subject, "service", service);
    if (actor != NULL)
        cJSON_AddStringToObject(subject, "actor", actor);
    return subject;
}
