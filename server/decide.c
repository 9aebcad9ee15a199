/* server/decide.c: runs the bindings of a config against one request and applies the
 * decision table (golden / exception / off-road / denied). */
#include "decide.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdio.h>

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
    }
    return "?";
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
    /* TODO(#4): violations covered by active exceptions lead to DECIDE_EXCEPTION. */
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

void decision_fini(struct decision *d)
{
    for (size_t i = 0; i < d->n_items; i++)
        vm_result_fini(&d->items[i].r);
    free(d->items);
    memset(d, 0, sizeof(*d));
}
