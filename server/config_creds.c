/* server/config_creds.c: the `credentials:` section of paved.yaml. */
#include "config.h"

#include <stdlib.h>

pv_status config_parse_credentials(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    (void)v;
    return pv_err_set(err, PV_ECONFIG, "%s: credentials: not implemented yet", cfg->name);
}

void config_credentials_free(struct config *cfg)
{
    free(cfg->credentials.issuers);
    cfg->credentials.issuers = NULL;
    cfg->credentials.n_issuers = 0;
}
