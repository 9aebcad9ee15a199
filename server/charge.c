/* server/charge.c: decisions -> ledger charges, costs and quota documents (see
 * charge.h). */
#include "charge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "usage.h"
#include "xalloc.h"

#define COST_CENTER_LABEL "cost-center"

bool charge_is_enabled(const struct config *cfg)
{
    const struct cfg_prices *p = &cfg->prices;

    return cfg->n_quotas > 0 || p->cpu_hour > 0 || p->memory_gib_hour > 0 ||
           p->storage_gib_month > 0 || p->environment_month > 0;
}

static struct usage to_usage(const struct audit_usage *a)
{
    struct usage u;

    u.cpu_millis = a->cpu_millis;
    u.memory_bytes = a->memory_bytes;
    u.storage_bytes = a->storage_bytes;
    u.environments = a->environments;
    return u;
}

pv_status charge_for(const struct config *cfg, const struct pv_request *req,
                     struct audit_charge **charge, char **details, struct pv_err *err)
{
    const cJSON *obj = req->object;
    bool is_provision = req->kind != NULL && strcmp(req->kind, "provision") == 0;
    bool is_charged = true;
    struct usage u = {0};
    const char *name;
    const char *cc;
    struct audit_charge *c;
    cJSON *d;
    cJSON *cost;
    char key[600];
    pv_status rc;

    *charge = NULL;
    *details = NULL;
    if (is_provision) {
        rc = usage_of_provision(obj, &u, err);
        name = json_str(obj, "environment", NULL);
        if (rc == PV_OK)
            snprintf(key, sizeof(key), "env/%s", name);
    } else {
        rc = usage_of_object(obj, &u, &is_charged, err);
        name = json_str(obj, "metadata", "name");
        if (rc == PV_OK && is_charged && name != NULL)
            snprintf(key, sizeof(key), "%s/%s/%s", json_str(obj, "kind", NULL),
                     req->namespace != NULL ? req->namespace : "-", name);
        else
            is_charged = false; /* an object without a name cannot be tracked */
    }
    if (rc || !is_charged)
        return rc;
    cc = json_str(cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels"),
                  COST_CENTER_LABEL, NULL);
    c = xcalloc(1, sizeof(*c));
    c->key = xstrdup(key);
    c->cost_center = cc != NULL ? xstrdup(cc) : NULL;
    c->is_release = req->operation != NULL && strcmp(req->operation, "DELETE") == 0;
    c->is_check_only = req->is_dry_run;
    c->usage.cpu_millis = u.cpu_millis;
    c->usage.memory_bytes = u.memory_bytes;
    c->usage.storage_bytes = u.storage_bytes;
    c->usage.environments = u.environments;
    c->usage.monthly_cost = usage_monthly_cost(&u, &cfg->prices);
    d = cJSON_CreateObject();
    cost = cJSON_AddObjectToObject(d, "cost");
    cJSON_AddStringToObject(cost, "key", key);
    cJSON_AddNumberToObject(cost, "monthly", c->is_release ? 0 : c->usage.monthly_cost);
    cJSON_AddStringToObject(cost, "currency", cfg->prices.currency);
    if (cc != NULL)
        cJSON_AddStringToObject(cost, "cost_center", cc);
    cJSON_AddItemToObject(cost, "usage", usage_json(&u));
    *details = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    *charge = c;
    return PV_OK;
}

bool charge_quota_exceeds(const struct config *cfg, const char *team,
                          const struct audit_usage *before, const struct audit_usage *after,
                          char *msg, size_t cap)
{
    struct usage b = to_usage(before);
    struct usage a = to_usage(after);

    return usage_exceeds(config_quota_of(cfg, team), team, &b, &a, after->monthly_cost,
                         &cfg->prices, msg, cap);
}

static void limit_or_null(cJSON *o, const char *k, double v, bool is_set)
{
    if (is_set)
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

cJSON *charge_quota_json(const struct config *cfg, const char *team, const struct audit_usage *used)
{
    const struct cfg_quota *q = config_quota_of(cfg, team);
    struct usage u = to_usage(used);
    cJSON *doc = cJSON_CreateObject();
    cJSON *lim = cJSON_AddObjectToObject(doc, "limits");
    cJSON *rem = cJSON_AddObjectToObject(doc, "remaining");
    cJSON *x;

    cJSON_AddStringToObject(doc, "team", team);
    cJSON_AddStringToObject(doc, "currency", cfg->prices.currency);
    cJSON_AddStringToObject(doc, "quota", q != NULL ? q->team : "none");
    limit_or_null(lim, "cpu_millis", q != NULL ? (double)q->cpu_millis : 0,
                  q != NULL && q->cpu_millis >= 0);
    limit_or_null(lim, "memory_bytes", q != NULL ? (double)q->memory_bytes : 0,
                  q != NULL && q->memory_bytes >= 0);
    limit_or_null(lim, "storage_bytes", q != NULL ? (double)q->storage_bytes : 0,
                  q != NULL && q->storage_bytes >= 0);
    limit_or_null(lim, "environments", q != NULL ? (double)q->environments : 0,
                  q != NULL && q->environments >= 0);
    limit_or_null(lim, "monthly_cost", q != NULL ? q->monthly_cost : 0,
                  q != NULL && q->monthly_cost >= 0);
    limit_or_null(rem, "cpu_millis", q != NULL ? (double)(q->cpu_millis - u.cpu_millis) : 0,
                  q != NULL && q->cpu_millis >= 0);
    limit_or_null(rem, "memory_bytes", q != NULL ? (double)(q->memory_bytes - u.memory_bytes) : 0,
                  q != NULL && q->memory_bytes >= 0);
    limit_or_null(rem, "storage_bytes",
                  q != NULL ? (double)(q->storage_bytes - u.storage_bytes) : 0,
                  q != NULL && q->storage_bytes >= 0);
    limit_or_null(rem, "environments", q != NULL ? (double)(q->environments - u.environments) : 0,
                  q != NULL && q->environments >= 0);
    limit_or_null(rem, "monthly_cost", q != NULL ? q->monthly_cost - used->monthly_cost : 0,
                  q != NULL && q->monthly_cost >= 0);
    x = usage_json(&u);
    cJSON_AddNumberToObject(x, "monthly_cost", used->monthly_cost);
    cJSON_AddItemToObject(doc, "used", x);
    return doc;
}
