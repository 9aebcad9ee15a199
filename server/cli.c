/* server/cli.c: what the subcommands share: loading the config, the bundle and a vm. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    rc = vm_new(&e->vm, &e->cfg->limits, e->bundle.modules, e->bundle.n_modules, e->bundle.policies,
                e->bundle.n_policies, err);
    if (rc)
        goto fail;
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
    config_free(e->cfg);
    bundle_fini(&e->bundle);
    memset(e, 0, sizeof(*e));
}
