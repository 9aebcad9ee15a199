/* audit/ledger.c: reading the quota ledger and the cost of admitted requests (the
 * writer keeps the ledger; see apply_charge in writer.c). Read-only connections, so
 * these work beside a running server. */
#include "audit.h"

#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "schema.h"

static pv_status db_fail(sqlite3 *db, const char *path, struct pv_err *err)
{
    return pv_err_set(err, PV_EIO, "audit: %s: %s", path, sqlite3_errmsg(db));
}

pv_status audit_team_usage(const char *path, const char *team, struct audit_usage *out,
                           struct pv_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    pv_status rc = schema_open_ro(&db, path, err);

    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT coalesce(sum(cpu_millis), 0), coalesce(sum(memory_bytes), 0), "
                           "coalesce(sum(storage_bytes), 0), coalesce(sum(environments), 0), "
                           "coalesce(sum(monthly_cost), 0) FROM ledger WHERE team = ?1",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, team, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_fail(db, path, err);
        goto done;
    }
    out->cpu_millis = sqlite3_column_int64(st, 0);
    out->memory_bytes = sqlite3_column_int64(st, 1);
    out->storage_bytes = sqlite3_column_int64(st, 2);
    out->environments = sqlite3_column_int64(st, 3);
    out->monthly_cost = sqlite3_column_double(st, 4);
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static const char *group_column(enum audit_cost_group g, bool is_ledger)
{
    switch (g) {
    case AUDIT_COST_BY_TEAM:
        return "team";
    case AUDIT_COST_BY_SERVICE:
        return "team || '/' || coalesce(service, '-')";
    case AUDIT_COST_BY_COST_CENTER:
        return is_ledger ? "coalesce(cost_center, '-')"
                         : "coalesce(json_extract(details, '$.cost.cost_center'), '-')";
    }
    return "team";
}

const char *audit_cost_group_name(enum audit_cost_group g)
{
    switch (g) {
    case AUDIT_COST_BY_TEAM:
        return "team";
    case AUDIT_COST_BY_SERVICE:
        return "service";
    case AUDIT_COST_BY_COST_CENTER:
        return "cost-center";
    }
    return "team";
}

pv_status audit_costs(const char *path, const struct audit_cost_filter *f, cJSON **out,
                      struct pv_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cJSON *doc = cJSON_CreateObject();
    cJSON *cur;
    cJSON *adm;
    char sql[768];
    pv_status rc = schema_open_ro(&db, path, err);
    int src;

    if (rc) {
        cJSON_Delete(doc);
        return rc;
    }
    cJSON_AddStringToObject(doc, "group_by", audit_cost_group_name(f->group_by));
    /* What is admitted and holding resources now: the ledger. */
    snprintf(sql, sizeof(sql),
             "SELECT %s AS g, count(*), sum(cpu_millis), sum(memory_bytes), sum(storage_bytes), "
             "sum(environments), sum(monthly_cost) FROM ledger WHERE (?1 IS NULL OR team = ?1) "
             "GROUP BY g ORDER BY sum(monthly_cost) DESC, g",
             group_column(f->group_by, true));
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_text(st, 1, f->team, -1, SQLITE_STATIC);
    cur = cJSON_AddArrayToObject(doc, "current");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, audit_cost_group_name(f->group_by),
                                (const char *)sqlite3_column_text(st, 0));
        cJSON_AddNumberToObject(o, "objects", (double)sqlite3_column_int64(st, 1));
        cJSON_AddNumberToObject(o, "cpu_millis", (double)sqlite3_column_int64(st, 2));
        cJSON_AddNumberToObject(o, "memory_bytes", (double)sqlite3_column_int64(st, 3));
        cJSON_AddNumberToObject(o, "storage_bytes", (double)sqlite3_column_int64(st, 4));
        cJSON_AddNumberToObject(o, "environments", (double)sqlite3_column_int64(st, 5));
        cJSON_AddNumberToObject(o, "monthly_cost", sqlite3_column_double(st, 6));
        cJSON_AddItemToArray(cur, o);
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* What the decisions of the window admitted: each allowed decision records the
     * estimated monthly cost of its object and the change it made. */
    snprintf(sql, sizeof(sql),
             "SELECT %s AS g, count(*), sum(json_extract(details, '$.cost.monthly')), "
             "sum(json_extract(details, '$.cost.monthly_delta')) FROM decisions WHERE details "
             "IS NOT NULL AND json_extract(details, '$.cost') IS NOT NULL AND decision = "
             "'allow' AND dry_run = 0 AND time_ms >= ?2 AND (?3 = 0 OR time_ms < ?3) AND (?1 IS "
             "NULL OR team = ?1) GROUP BY g ORDER BY 4 DESC, g",
             group_column(f->group_by, false));
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_text(st, 1, f->team, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f->since_ms);
    sqlite3_bind_int64(st, 3, f->until_ms);
    adm = cJSON_AddArrayToObject(doc, "admitted");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, audit_cost_group_name(f->group_by),
                                (const char *)sqlite3_column_text(st, 0));
        cJSON_AddNumberToObject(o, "decisions", (double)sqlite3_column_int64(st, 1));
        cJSON_AddNumberToObject(o, "monthly_cost_of_objects", sqlite3_column_double(st, 2));
        cJSON_AddNumberToObject(o, "monthly_cost_added", sqlite3_column_double(st, 3));
        cJSON_AddItemToArray(adm, o);
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    *out = doc;
    doc = NULL;
done:
    cJSON_Delete(doc);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
