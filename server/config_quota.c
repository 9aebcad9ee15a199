/* server/config_quota.c: the `quotas:` (per-team limits) and `prices:` (the price table
 * of the cost estimate) sections of paved.yaml. Every key is checked, so a typo is an
 * error naming it. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "quantity.h"
#include "xalloc.h"

#define TEAM_MAX 128
#define CURRENCY_MAX 16
#define HOURS_PER_MONTH_MAX 744 /* 31 days */

/* *out = the quantity at sec[k] x 'scale' rounded up, -1 when the key is absent. */
static pv_status opt_quantity(const cJSON *sec, const char *k, double scale, const char *example,
                              int64_t *out, const char *where, const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);
    double d;

    if (v == NULL) {
        *out = -1;
        return PV_OK;
    }
    if (!quantity_json(v, &d))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s must be a number or a quantity such as %s",
                          name, where, k, example);
    if (!(d >= 0))
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: %s must not be negative (leave it out for no limit)", name,
                          where, k);
    if (!quantity_ceil(d, scale, out))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s is too large", name, where, k);
    return PV_OK;
}

/* *out = the number at sec[k] in [0, max], untouched when the key is absent. */
static pv_status opt_number(const cJSON *sec, const char *k, double max, double *out,
                            const char *where, const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);

    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s must be a number", name, where, k);
    if (!(v->valuedouble >= 0 && v->valuedouble <= max))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s must be a number from 0 to %g", name, where,
                          k, max);
    *out = v->valuedouble;
    return PV_OK;
}

/* ---- quotas: ---- */

static pv_status parse_quota(struct config *cfg, const cJSON *item, size_t i, struct pv_err *err)
{
    static const char *const keys[] = {"team",         "cpu",          "memory", "storage",
                                       "environments", "monthly_cost", NULL};
    struct cfg_quota *q = &cfg->quotas[i];
    const cJSON *v;
    char where[TEAM_MAX + 32];
    pv_status rc;

    snprintf(where, sizeof(where), "quotas[%zu]", i);
    if (!cJSON_IsObject(item))
        return pv_err_set(err, PV_ECONFIG, "%s: %s must be a mapping", cfg->name, where);
    rc = config_check_keys(item, keys, where, cfg->name, err);
    if (rc)
        return rc;
    v = cJSON_GetObjectItemCaseSensitive(item, "team");
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > TEAM_MAX)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: team must be a team's name, or \"*\" for every team not "
                          "listed (at most %d characters)",
                          cfg->name, where, TEAM_MAX);
    q->team = v->valuestring;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->quotas[j].team, q->team) == 0)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: team \"%s\" already has a quota in quotas[%zu]", cfg->name,
                              where, q->team, j);
    /* The message names the team from here on. */
    snprintf(where, sizeof(where), "quotas[%zu] (team %s)", i, q->team);
    rc = opt_quantity(item, "cpu", 1000, "8 or \"500m\"", &q->cpu_millis, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_quantity(item, "memory", 1, "\"64Gi\"", &q->memory_bytes, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_quantity(item, "storage", 1, "\"1Ti\"", &q->storage_bytes, where, cfg->name, err);
    if (rc)
        return rc;
    q->environments = -1;
    v = cJSON_GetObjectItemCaseSensitive(item, "environments");
    if (v != NULL) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1e9) ||
            v->valuedouble != floor(v->valuedouble))
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: environments must be a whole number from 0 to 1000000000",
                              cfg->name, where);
        q->environments = (int64_t)v->valuedouble;
    }
    q->monthly_cost = -1;
    return opt_number(item, "monthly_cost", 1e15, &q->monthly_cost, where, cfg->name, err);
}

pv_status config_parse_quotas(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    const cJSON *item;

    if (!cJSON_IsArray(v))
        return pv_err_set(err, PV_ECONFIG,
                          "%s: quotas must be a list of {team, cpu, memory, storage, "
                          "environments, monthly_cost}",
                          cfg->name);
    /* One flat array whose strings point into cfg->root: config_free() frees it with
     * free(), also after a failure half-way. */
    cfg->quotas = xcalloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*cfg->quotas));
    cfg->n_quotas = 0;
    cJSON_ArrayForEach(item, v)
    {
        pv_status rc = parse_quota(cfg, item, cfg->n_quotas, err);

        if (rc)
            return rc;
        cfg->n_quotas++;
    }
    return PV_OK;
}

const struct cfg_quota *config_quota_of(const struct config *cfg, const char *team)
{
    const struct cfg_quota *dflt = NULL;

    for (size_t i = 0; i < cfg->n_quotas; i++) {
        const struct cfg_quota *q = &cfg->quotas[i];

        if (team != NULL && strcmp(q->team, team) == 0)
            return q;
        if (strcmp(q->team, "*") == 0)
            dflt = q;
    }
    return dflt;
}

/* ---- prices: ---- */

pv_status config_parse_prices(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {
        "currency",        "cpu_hour", "memory_gib_hour", "storage_gib_month", "environment_month",
        "hours_per_month", NULL};
    struct cfg_prices *p = &cfg->prices;
    const cJSON *c;
    pv_status rc;

    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: prices must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "prices", cfg->name, err);
    if (rc)
        return rc;
    c = cJSON_GetObjectItemCaseSensitive(v, "currency");
    if (c != NULL) {
        if (!cJSON_IsString(c) || c->valuestring[0] == '\0' ||
            strlen(c->valuestring) > CURRENCY_MAX)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: prices: currency must be a name such as EUR or USD (at most "
                              "%d characters)",
                              cfg->name, CURRENCY_MAX);
        p->currency = c->valuestring;
    }
    rc = opt_number(v, "cpu_hour", 1e9, &p->cpu_hour, "prices", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_number(v, "memory_gib_hour", 1e9, &p->memory_gib_hour, "prices", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_number(v, "storage_gib_month", 1e9, &p->storage_gib_month, "prices", cfg->name,
                        err);
    if (rc == PV_OK)
        rc = opt_number(v, "environment_month", 1e12, &p->environment_month, "prices", cfg->name,
                        err);
    if (rc == PV_OK)
        rc = opt_number(v, "hours_per_month", HOURS_PER_MONTH_MAX, &p->hours_per_month, "prices",
                        cfg->name, err);
    if (rc)
        return rc;
    if (!(p->hours_per_month > 0))
        return pv_err_set(err, PV_ECONFIG, "%s: prices: hours_per_month must be more than 0",
                          cfg->name);
    return PV_OK;
}
