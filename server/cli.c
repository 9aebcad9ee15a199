/* server/cli.c: what the subcommands share: loading the config, the bundle and a vm. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Compiles only the policy files the bindings use (most of the start-up time and of
 * each vm's memory); when the selection misses an id (a file without an accurate
 * `-- paved-ids:` line) every file is compiled instead. */
static pv_status open_vm(struct cli_engine *e, bool with_bindings, struct pv_err *err)
{
    const char **ids;
    size_t i;
    pv_status rc;

    if (with_bindings) {
        ids = xcalloc(e->cfg->n_bindings + 1, sizeof(*ids));
        for (i = 0; i < e->cfg->n_bindings; i++)
            ids[i] = e->cfg->bindings[i].policy;
        e->sources = bundle_select(&e->bundle, ids, e->cfg->n_bindings, &e->n_sources);
        free(ids);
        rc = vm_new(&e->vm, &e->cfg->limits, e->bundle.modules, e->bundle.n_modules, e->sources,
                    e->n_sources, err);
        if (rc)
            return rc;
        for (i = 0; i < e->cfg->n_bindings; i++)
            if (vm_policy_find(e->vm, e->cfg->bindings[i].policy) == NULL)
                break;
        if (i == e->cfg->n_bindings)
            return PV_OK;
        vm_free(e->vm);
        e->vm = NULL;
        free(e->sources);
    }
    e->n_sources = e->bundle.n_policies;
    e->sources = xcalloc(e->n_sources ? e->n_sources : 1, sizeof(*e->sources));
    memcpy(e->sources, e->bundle.policies, e->n_sources * sizeof(*e->sources));
    return vm_new(&e->vm, &e->cfg->limits, e->bundle.modules, e->bundle.n_modules, e->sources,
                  e->n_sources, err);
}

pv_status cli_engine_open(struct cli_engine *e, const char *policies_dir, const char *config_path,
                          bool with_bindings, struct pv_err *err)
{
    struct vm_binding *b = NULL;
    pv_status rc;

    memset(e, 0, sizeof(*e));
    rc = config_path != NULL ? config_load_file(&e->cfg, config_path, err)
                             : config_load_default(&e->cfg, err);
    if (rc)
        goto fail;
    if (policies_dir == NULL)
        policies_dir = e->cfg->policies_dir;
    rc = bundle_load(&e->bundle, policies_dir, err);
    if (rc)
        goto fail;
    rc = open_vm(e, with_bindings, err);
    if (rc)
        goto fail;
    for (size_t i = 0; with_bindings && i < e->cfg->n_bindings; i++) {
        if (vm_policy_find(e->vm, e->cfg->bindings[i].policy) == NULL) {
            rc = pv_err_set(err, PV_ECONFIG,
                            "%s: bindings[%zu] (%s): unknown policy \"%s\"; the bundle has no "
                            "policy with that id (paved policies lists them)",
                            e->cfg->name, i, e->cfg->bindings[i].id, e->cfg->bindings[i].policy);
            goto fail;
        }
    }
    if (with_bindings) {
        b = config_vm_bindings(e->cfg);
        rc = vm_set_bindings(e->vm, b, e->cfg->n_bindings, err);
        free(b);
        if (rc) {
            char msg[PV_ERR_MSG_MAX];

            snprintf(msg, sizeof(msg), "%s", err != NULL ? err->msg : "");
            pv_err_set(err, rc, "%s: %s", e->cfg->name, msg);
            goto fail;
        }
    }
    return PV_OK;
fail:
    cli_engine_close(e);
    return rc;
}

void cli_engine_close(struct cli_engine *e)
{
    vm_free(e->vm);
    free(e->sources);
    config_free(e->cfg);
    bundle_fini(&e->bundle);
    memset(e, 0, sizeof(*e));
}

static const char policies_usage[] =
    "usage: paved policies [--policies DIR]\n"
    "\n"
    "Lists the policies of the bundle (the shipped one, or the *.lua files of DIR): id,\n"
    "whether it belongs to the golden path, its default enforcement, its title and file.\n";

int cmd_policies(int argc, char **argv)
{
    const char *dir = NULL;
    struct cli_engine e;
    struct pv_err err = {0};

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--policies") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(policies_usage, stdout);
            return EXIT_ALLOW;
        } else {
            fprintf(stderr, "paved policies: unknown argument '%s'\n\n%s", argv[i], policies_usage);
            return EXIT_USAGE;
        }
    }
    if (cli_engine_open(&e, dir, NULL, false, &err)) {
        fprintf(stderr, "paved policies: %s\n", err.msg);
        return EXIT_USAGE;
    }
    printf("%-44s %-6s %-5s %s\n", "ID", "GOLDEN", "ENF", "TITLE (FILE)");
    for (size_t i = 0; i < vm_policy_count(e.vm); i++) {
        const struct vm_policy *p = vm_policy_at(e.vm, i);

        printf("%-44s %-6s %-5s %s (%s)\n", p->id, p->is_golden_path ? "yes" : "no",
               p->enforcement == VM_DENY   ? "deny"
               : p->enforcement == VM_WARN ? "warn"
                                           : "audit",
               p->title, p->file);
    }
    cli_engine_close(&e);
    return EXIT_ALLOW;
}
