/* audit/reader.c: reading the decision log from any process: filtered queries, JSON
 * Lines export and hash-chain verification. Every function opens the file read-only,
 * so it works beside a running server. */
#include "audit.h"

#include <inttypes.h>
#include <string.h>

#include <sqlite3.h>

#include "chain.h"
#include "schema.h"

#define QUERY_LIMIT_DEFAULT 1000

/* Column positions in SCHEMA_DECISION_COLUMNS; the first CHAIN_NFIELDS are chain.h's. */
enum {
    COL_PREV_HASH = CHAIN_NFIELDS,
    COL_HASH,
};

static const char *const col_names[SCHEMA_DECISION_NCOLUMNS] = {
    "rowid",     "id",       "time_ms",   "source",     "request_uid",   "kind",
    "operation", "team",     "service",   "namespace",  "resource_kind", "resource_name",
    "actor",     "decision", "path",      "violations", "bundle_hash",   "latency_us",
    "dry_run",   "details",  "prev_hash", "hash",
};

static pv_status db_fail(sqlite3 *db, const char *path, struct pv_err *err)
{
    return pv_err_set(err, PV_EIO, "audit: %s: %s", path, sqlite3_errmsg(db));
}

/* Builds the JSON object of the current row of 'st' (selected with
 * SCHEMA_DECISION_COLUMNS). Returns: caller frees with cJSON_Delete. */
static cJSON *row_json(sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();

    for (int i = 0; i < SCHEMA_DECISION_NCOLUMNS; i++) {
        const char *name = col_names[i];
        int type = sqlite3_column_type(st, i);
        const char *text = (const char *)sqlite3_column_text(st, i);
        cJSON *v = NULL;

        if (type == SQLITE_NULL) {
            v = cJSON_CreateNull();
        } else if (i == CHAIN_DRY_RUN) {
            v = cJSON_CreateBool(sqlite3_column_int(st, i) != 0);
        } else if (type == SQLITE_INTEGER) {
            v = cJSON_CreateNumber((double)sqlite3_column_int64(st, i));
        } else if (i == CHAIN_VIOLATIONS || i == CHAIN_DETAILS) {
            /* Stored as JSON text; a row edited into something else shows as a string. */
            v = cJSON_ParseWithLength(text, (size_t)sqlite3_column_bytes(st, i));
            if (v == NULL)
                v = cJSON_CreateString(text);
        } else {
            v = cJSON_CreateString(text != NULL ? text : "");
        }
        cJSON_AddItemToObject(o, name, v);
    }
    return o;
}

/* ---- Query ---- */

static void append(char *sql, size_t cap, const char *part)
{
    size_t len = strlen(sql);
    size_t n = strlen(part);

    PV_ASSERT(len + n < cap); /* only fixed fragments are appended */
    memcpy(sql + len, part, n + 1);
}

pv_status audit_query(const char *path, const struct audit_filter *f, cJSON **out,
                      struct pv_err *err)
{
    /* The SQL is assembled from fixed fragments only; every value is a bound parameter. */
    char sql[1024];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cJSON *arr = NULL;
    int n = 0;
    int src;
    pv_status rc;

    rc = schema_open_ro(&db, path, err);
    if (rc)
        return rc;
    snprintf(sql, sizeof(sql), "SELECT %s FROM decisions WHERE 1", schema_decision_columns(db));
    if (f->since_ms != 0)
        append(sql, sizeof(sql), " AND time_ms >= ?");
    if (f->until_ms != 0)
        append(sql, sizeof(sql), " AND time_ms < ?");
    if (f->team != NULL)
        append(sql, sizeof(sql), " AND team = ?");
    if (f->service != NULL)
        append(sql, sizeof(sql), " AND service = ?");
    if (f->policy != NULL)
        append(sql, sizeof(sql),
               " AND rowid IN (SELECT decision_rowid FROM decision_policies WHERE policy = ?)");
    if (f->path != NULL)
        append(sql, sizeof(sql), " AND path = ?");
    if (f->source != NULL)
        append(sql, sizeof(sql), " AND source = ?");
    append(sql, sizeof(sql), " ORDER BY time_ms DESC, rowid DESC LIMIT ?");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    /* Bind in the order the fragments were appended. */
    if (f->since_ms != 0)
        sqlite3_bind_int64(st, ++n, f->since_ms);
    if (f->until_ms != 0)
        sqlite3_bind_int64(st, ++n, f->until_ms);
    if (f->team != NULL)
        sqlite3_bind_text(st, ++n, f->team, -1, SQLITE_STATIC);
    if (f->service != NULL)
        sqlite3_bind_text(st, ++n, f->service, -1, SQLITE_STATIC);
    if (f->policy != NULL)
        sqlite3_bind_text(st, ++n, f->policy, -1, SQLITE_STATIC);
    if (f->path != NULL)
        sqlite3_bind_text(st, ++n, f->path, -1, SQLITE_STATIC);
    if (f->source != NULL)
        sqlite3_bind_text(st, ++n, f->source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, ++n,
                       f->limit == 0          ? QUERY_LIMIT_DEFAULT
                       : f->limit > INT64_MAX ? INT64_MAX
                                              : (int64_t)f->limit);

    arr = cJSON_CreateArray();
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, row_json(st));
    if (src != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    *out = arr;
    arr = NULL;
done:
    cJSON_Delete(arr);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* ---- Export ---- */

pv_status audit_export(const char *path, FILE *out, struct pv_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[512];
    pv_status rc;
    int src;

    rc = schema_open_ro(&db, path, err);
    if (rc)
        return rc;
    snprintf(sql, sizeof(sql), "SELECT %s FROM decisions ORDER BY rowid",
             schema_decision_columns(db));
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *o = row_json(st);
        char *line = cJSON_PrintUnformatted(o);
        int w;

        cJSON_Delete(o);
        if (line == NULL) {
            rc = pv_err_set(err, PV_ENOMEM, "audit: export: cannot format a row");
            goto done;
        }
        w = fprintf(out, "%s\n", line);
        cJSON_free(line);
        if (w < 0) {
            rc = pv_err_set(err, PV_EIO, "audit: export: write failed");
            goto done;
        }
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    if (fflush(out) != 0 || ferror(out))
        rc = pv_err_set(err, PV_EIO, "audit: export: write failed");
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* ---- Verify ---- */

static void mark_bad(struct audit_verify_result *out, sqlite3_stmt *st, const char *reason)
{
    const char *id = (const char *)sqlite3_column_text(st, CHAIN_ID);

    out->is_ok = false;
    out->bad_rowid = sqlite3_column_int64(st, CHAIN_ROWID);
    snprintf(out->bad_id, sizeof(out->bad_id), "%s", id != NULL ? id : "");
    snprintf(out->reason, sizeof(out->reason), "%s", reason);
}

pv_status audit_verify(const char *path, struct audit_verify_result *out, struct pv_err *err)
{
    struct audit_verify_result res;
    char prev[CHAIN_HASH_HEX_LEN + 1];
    int64_t prev_rowid = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char sql[512];
    pv_status rc;
    int src;

    memset(&res, 0, sizeof(res));
    res.is_ok = true;
    memcpy(prev, chain_zero_hash, sizeof(prev));
    rc = schema_open_ro(&db, path, err);
    if (rc)
        return rc;
    /* One statement is one read transaction: a consistent snapshot while a server writes. */
    snprintf(sql, sizeof(sql), "SELECT %s FROM decisions ORDER BY rowid",
             schema_decision_columns(db));
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        struct chain_field f[CHAIN_NFIELDS];
        char hash[CHAIN_HASH_HEX_LEN + 1];
        const char *stored_prev = (const char *)sqlite3_column_text(st, COL_PREV_HASH);
        const char *stored_hash = (const char *)sqlite3_column_text(st, COL_HASH);
        int64_t rowid = sqlite3_column_int64(st, CHAIN_ROWID);
        char reason[sizeof(res.reason)];

        res.rows++;
        /* Integers as SQLite renders them in text: the canonical decimal form. */
        for (int i = 0; i < CHAIN_NFIELDS; i++) {
            f[i].p = (const char *)sqlite3_column_text(st, i);
            f[i].len = (size_t)sqlite3_column_bytes(st, i);
        }
        rc = chain_hash(prev, f, hash, err);
        if (rc)
            goto done;
        if (rowid != prev_rowid + 1) {
            if (prev_rowid == 0)
                snprintf(reason, sizeof(reason),
                         "the chain starts at rowid %" PRId64 ": the rows before it were deleted",
                         rowid);
            else
                snprintf(reason, sizeof(reason),
                         "rowid %" PRId64 " follows rowid %" PRId64 ": rows were deleted", rowid,
                         prev_rowid);
            mark_bad(&res, st, reason);
            break;
        }
        if (stored_prev == NULL || strcmp(stored_prev, prev) != 0) {
            mark_bad(&res, st,
                     prev_rowid == 0 ? "prev_hash of the first row is not 64 zeros"
                                     : "prev_hash does not match the previous row's hash: rows "
                                       "were removed, reordered or rewritten");
            break;
        }
        if (stored_hash == NULL || strcmp(stored_hash, hash) != 0) {
            mark_bad(&res, st, "hash does not match the row's content: the row was modified");
            break;
        }
        memcpy(prev, stored_hash, sizeof(prev));
        prev_rowid = rowid;
    }
    if (res.is_ok && src != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    *out = res;
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
