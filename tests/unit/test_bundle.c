/* tests/unit/test_bundle.c: which policy files may define which ids (-- paved-ids), and
 * that the shipped bundle's declarations match the ids its files really define. */
#include "bundle.h"

#include <stdlib.h>
#include <string.h>

#include "t.h"

struct may_case {
    const char *path;
    const char *text;
    const char *id;
    bool expect;
};

static const struct may_case may_cases[] = {
    {"policies/cost-tags.lua", "return {}", "cost-tags", true},
    {"policies/cost-tags.lua", "return {}", "cost", false},
    {"policies/cost-tags.lua", "return {}", "cost-tags-x", false},
    {"dir/x.lua", "-- paved-ids: a b\nreturn {}", "a", true},
    {"dir/x.lua", "-- paved-ids: a b\nreturn {}", "b", true},
    {"dir/x.lua", "-- paved-ids: a b\nreturn {}", "x", false},
    {"dir/x.lua", "-- paved-ids: a, b\r\nreturn {}", "b", true},
    {"dir/psa.lua", "-- paved-ids: psa-*\n", "psa-restricted-runAsNonRoot", true},
    {"dir/psa.lua", "-- paved-ids: psa-*\n", "psp-users", false},
    {"dir/psa.lua", "-- paved-ids: psa-*", "psa-baseline", true},
    {"dir/y.lua", "-- a comment\n-- paved-ids: z\n", "y", true},
};

static void test_may_define(void)
{
    for (size_t i = 0; i < sizeof(may_cases) / sizeof(may_cases[0]); i++) {
        const struct may_case *c = &may_cases[i];
        struct vm_source src = {c->path, c->text, strlen(c->text)};

        if (!T_EQ_INT(bundle_source_may_define(&src, c->id), c->expect))
            t_diag("%s (%s) and %s", c->path, c->text, c->id);
    }
}

/* Every id the shipped bundle defines is found by the selection of its own file:
 * a wrong or missing -- paved-ids line would make paved compile everything. */
static void test_shipped_declarations(void)
{
    struct bundle b;
    struct pv_err err = {0};
    struct vm *vm = NULL;
    size_t missed = 0;

    if (!T_EQ_INT(bundle_load(&b, NULL, &err), PV_OK))
        return;
    if (!T_EQ_INT(vm_new(&vm, NULL, b.modules, b.n_modules, b.policies, b.n_policies, &err),
                  PV_OK)) {
        t_diag("%s", err.msg);
        bundle_fini(&b);
        return;
    }
    for (size_t i = 0; i < vm_policy_count(vm); i++) {
        const struct vm_policy *p = vm_policy_at(vm, i);
        const char *ids[] = {p->id};
        size_t n = 0;
        struct vm_source *sel = bundle_select(&b, ids, 1, &n);
        bool found = false;

        for (size_t k = 0; k < n; k++)
            found = found || strcmp(sel[k].path, p->file) == 0;
        if (!found) {
            missed++;
            t_diag("%s is defined in %s, which its declaration does not select", p->id, p->file);
        }
        free(sel);
    }
    T_EQ_INT(missed, 0);
    T_OK(vm_policy_count(vm) > 80);
    vm_free(vm);
    bundle_fini(&b);
}

int main(void)
{
    test_may_define();
    test_shipped_declarations();
    return t_done();
}
