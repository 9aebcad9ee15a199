/* server/config_quota.c: placeholder until the quota parser lands. */
#include "config.h"

pv_status config_parse_quotas(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    (void)v;
    return pv_err_set(err, PV_ECONFIG, "%s: quotas: not implemented yet", cfg->name);
}

pv_status config_parse_prices(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    (void)v;
    return pv_err_set(err, PV_ECONFIG, "%s: prices: not implemented yet", cfg->name);
}

const struct cfg_quota *config_quota_of(const struct config *cfg, const char *team)
{
    (void)cfg;
    (void)team;
    return NULL;
}
