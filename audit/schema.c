/* audit/schema.c: opens SQLite connections to the decision log and migrates its schema
 * (PRAGMA user_version counts the migrations applied). */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

/* Migration i brings user_version from i to i + 1. Append; never edit a shipped one. */
static const char *const migrations[SCHEMA_VERSION] = {
    "CREATE TABLE decisions ("
    " rowid INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " time_ms INTEGER NOT NULL,"
    " source TEXT NOT NULL,"
    " request_uid TEXT,"
    " kind TEXT NOT NULL,"
    " operation TEXT,"
    " team TEXT NOT NULL,"
    " service TEXT,"
    " namespace TEXT,"
    " resource_kind TEXT,"
    " resource_name TEXT,"
    " actor TEXT,"
    " decision TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " violations TEXT NOT NULL,"
    " bundle_hash TEXT,"
    " latency_us INTEGER NOT NULL,"
    " dry_run INTEGER NOT NULL,"
    " prev_hash TEXT NOT NULL,"
    " hash TEXT NOT NULL"
    ") STRICT;"
    "CREATE INDEX decisions_time ON decisions(time_ms);"
    "CREATE INDEX decisions_team ON decisions(team, time_ms);"
    "CREATE INDEX decisions_service ON decisions(service, time_ms);"
    "CREATE INDEX decisions_path ON decisions(path, time_ms);"
    /* One row per distinct policy violated by a decision: the policy filter. */
    "CREATE TABLE decision_policies ("
    " policy TEXT NOT NULL,"
    " decision_rowid INTEGER NOT NULL,"
    " PRIMARY KEY (policy, decision_rowid)"
    ") STRICT, WITHOUT ROWID;"
    /* First sight of each service, filled in the decision's transaction. */
    "CREATE TABLE services ("
    " team TEXT NOT NULL,"
    " service TEXT NOT NULL,"
    " first_seen_ms INTEGER NOT NULL,"
    " first_path TEXT NOT NULL,"
    " first_decision_id TEXT NOT NULL,"
    " PRIMARY KEY (team, service)"
    ") STRICT, WITHOUT ROWID;",
    /* 2: exceptions, break-glass windows and the notification outbox. Their
     * transitions are rows of `decisions` (kind "exception" / "breakglass", path
     * "event"), so they share the hash chain; these tables hold the current state. */
    "ALTER TABLE services ADD COLUMN exception_available INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE exceptions ("
    " id TEXT PRIMARY KEY,"
    " team TEXT NOT NULL,"
    " service TEXT NOT NULL,"
    " namespace TEXT,"
    " policies TEXT NOT NULL,"
    " justification TEXT NOT NULL,"
    " ticket TEXT,"
    " requested_by TEXT NOT NULL,"
    " requested_ms INTEGER NOT NULL,"
    " duration_s INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " is_self_service INTEGER NOT NULL,"
    " decided_by TEXT,"
    " decided_ms INTEGER,"
    " reason TEXT,"
    " expires_ms INTEGER,"
    " ended_ms INTEGER,"
    " reminded_ms INTEGER"
    ") STRICT;"
    "CREATE INDEX exceptions_state ON exceptions(state, expires_ms);"
    "CREATE INDEX exceptions_team ON exceptions(team, service);"
    "CREATE TABLE breakglass ("
    " id TEXT PRIMARY KEY,"
    " started_by TEXT NOT NULL,"
    " reason TEXT NOT NULL,"
    " namespaces TEXT NOT NULL,"
    " teams TEXT NOT NULL,"
    " started_ms INTEGER NOT NULL,"
    " ends_ms INTEGER NOT NULL,"
    " ended_ms INTEGER,"
    " ended_by TEXT"
    ") STRICT;"
    "CREATE TABLE outbox ("
    " id INTEGER PRIMARY KEY,"
    " endpoint TEXT NOT NULL,"
    " event TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_ms INTEGER NOT NULL,"
    " last_error TEXT,"
    " last_status INTEGER,"
    " delivered_ms INTEGER"
    ") STRICT;"
    "CREATE INDEX outbox_due ON outbox(state, next_ms);",
    /* 3: the quota ledger, credential issuances, and the decisions' details (cost, quota,
     * credential: JSON, chained when present; see chain.c). */
    "ALTER TABLE decisions ADD COLUMN details TEXT;"
    "CREATE TABLE ledger ("
    " key TEXT PRIMARY KEY,"
    " team TEXT NOT NULL,"
    " service TEXT,"
    " cost_center TEXT,"
    " cpu_millis INTEGER NOT NULL,"
    " memory_bytes INTEGER NOT NULL,"
    " storage_bytes INTEGER NOT NULL,"
    " environments INTEGER NOT NULL,"
    " monthly_cost REAL NOT NULL,"
    " updated_ms INTEGER NOT NULL,"
    " decision_id TEXT NOT NULL"
    ") STRICT;"
    "CREATE INDEX ledger_team ON ledger(team);"
    /* Covers the adoption report's per-service scan (audit/report.c). */
    "CREATE INDEX decisions_adoption ON decisions(service, time_ms, team, kind, dry_run, path);"
    "CREATE TABLE credentials ("
    " jti TEXT PRIMARY KEY,"
    " decision_id TEXT NOT NULL,"
    " time_ms INTEGER NOT NULL,"
    " subject TEXT NOT NULL,"
    " team TEXT,"
    " service TEXT,"
    " audience TEXT NOT NULL,"
    " scopes TEXT NOT NULL,"
    " expires_ms INTEGER NOT NULL,"
    " via TEXT NOT NULL"
    ") STRICT;",
};

static pv_status db_fail(sqlite3 *db, struct pv_err *err, const char *what)
{
    return pv_err_set(err, PV_EIO, "audit: %s: %s", what,
                      db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

const char *schema_decision_columns(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int version = SCHEMA_VERSION;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return version >= 3 ? SCHEMA_DECISION_COLUMNS : SCHEMA_DECISION_COLUMNS_V1;
}

pv_status schema_exec(sqlite3 *db, const char *sql, struct pv_err *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, err, "sql");
    return PV_OK;
}

/* Reads a one-integer PRAGMA of the database at 'path' into *out. */
static pv_status pragma_int(sqlite3 *db, const char *path, const char *sql, int *out,
                            struct pv_err *err)
{
    sqlite3_stmt *st = NULL;
    pv_status rc = PV_OK;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
        rc = db_fail(db, err, path);
    else
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

static pv_status migrate(sqlite3 *db, const char *path, struct pv_err *err)
{
    int version = 0;
    pv_status rc;
    char sql[64];

    /* IMMEDIATE: two processes opening a new file at once migrate it one after the other. */
    rc = schema_exec(db, "BEGIN IMMEDIATE", err);
    if (rc)
        return rc;
    rc = pragma_int(db, path, "PRAGMA user_version", &version, err);
    if (rc)
        goto fail;
    if (version > SCHEMA_VERSION || version < 0) {
        rc = pv_err_set(err, PV_EIO,
                        "audit: %s has schema version %d; this paved knows up to %d (upgrade "
                        "paved)",
                        path, version, SCHEMA_VERSION);
        goto fail;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        rc = schema_exec(db, migrations[v], err);
        if (rc)
            goto fail;
    }
    if (version != SCHEMA_VERSION) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = schema_exec(db, sql, err);
        if (rc)
            goto fail;
    }
    return schema_exec(db, "COMMIT", err);
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

pv_status schema_open_rw(sqlite3 **out, const char *path, bool is_migrate, struct pv_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    pv_status rc;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

    if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
        rc = pv_err_set(err, PV_EIO, "audit: cannot open %s: %s", path,
                        db != NULL ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(db, 1);
    /* SQLite silently opens a write-protected file read-only: refuse it now rather than
     * at the first commit. */
    if (sqlite3_db_readonly(db, "main") != 0) {
        rc = pv_err_set(err, PV_EIO, "audit: %s is read-only", path);
        goto fail;
    }
    sqlite3_busy_timeout(db, SCHEMA_BUSY_MS);
    /* The journal mode is persistent and answers with the mode now in force. */
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = pv_err_set(err, PV_EIO, "audit: %s: cannot use WAL: %s", path, sqlite3_errmsg(db));
        goto fail;
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        rc = pv_err_set(err, PV_EIO, "audit: %s: cannot use WAL (journal mode stays %s)", path,
                        (const char *)sqlite3_column_text(st, 0));
        goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = schema_exec(db,
                     "PRAGMA synchronous=FULL; PRAGMA journal_size_limit=67108864;"
                     " PRAGMA foreign_keys=OFF",
                     err);
    if (rc)
        goto fail;
    sqlite3_wal_autocheckpoint(db, 0);
    if (is_migrate) {
        rc = migrate(db, path, err);
        if (rc)
            goto fail;
    }
    *out = db;
    return PV_OK;
fail:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

pv_status schema_open_ro(sqlite3 **out, const char *path, struct pv_err *err)
{
    sqlite3 *db = NULL;
    struct stat sb;
    int version = 0;
    pv_status rc;

    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return pv_err_set(err, PV_ENOENT, "audit: %s: no such file", path);
        return pv_err_set(err, PV_EIO, "audit: %s: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode))
        return pv_err_set(err, PV_EIO, "audit: %s is not a regular file", path);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        rc = pv_err_set(err, PV_EIO, "audit: cannot open %s: %s", path,
                        db != NULL ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db, SCHEMA_BUSY_MS);
    /* Readers are short-lived scans inside a long-running server (exception reloads,
     * reports, quotas): a small page cache keeps what they leave behind small; the
     * operating system's cache serves the re-reads. */
    sqlite3_exec(db, "PRAGMA cache_size = -512", NULL, NULL, NULL);
    rc = pragma_int(db, path, "PRAGMA user_version", &version, err);
    if (rc)
        goto fail;
    /* Older schemas keep the decision log as it is (migrations only add), so the
     * chain can be verified and queried before a server has migrated the file. */
    if (version < 1 || version > SCHEMA_VERSION) {
        rc = pv_err_set(err, PV_EIO,
                        "audit: %s is not a paved audit database of a known schema (version "
                        "%d; this paved reads 1 to %d)",
                        path, version, SCHEMA_VERSION);
        goto fail;
    }
    *out = db;
    return PV_OK;
fail:
    sqlite3_close(db);
    return rc;
}
