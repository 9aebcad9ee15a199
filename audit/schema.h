/* audit/schema.h: SQLite connections to the decision log: opening for the writer (WAL,
 * synchronous=FULL, migrations) or read-only for readers, and the schema itself. */
#ifndef PV_AUDIT_SCHEMA_H
#define PV_AUDIT_SCHEMA_H

#include <stdbool.h>

#include <sqlite3.h>

#include "status.h"

#define SCHEMA_VERSION 3    /* PRAGMA user_version of a current database */
#define SCHEMA_BUSY_MS 5000 /* busy_timeout of every connection */

/* Every column of `decisions`, in canonical order (chain.h), then prev_hash and hash:
 * the column list readers select. */
#define SCHEMA_DECISION_COLUMNS                                                                    \
    "rowid, id, time_ms, source, request_uid, kind, operation, team, service, namespace, "         \
    "resource_kind, resource_name, actor, decision, path, violations, bundle_hash, "               \
    "latency_us, dry_run, details, prev_hash, hash"
#define SCHEMA_DECISION_NCOLUMNS 22
/* The same list for files of schema 1 and 2, which have no details column. */
#define SCHEMA_DECISION_COLUMNS_V1                                                                 \
    "rowid, id, time_ms, source, request_uid, kind, operation, team, service, namespace, "         \
    "resource_kind, resource_name, actor, decision, path, violations, bundle_hash, "               \
    "latency_us, dry_run, NULL AS details, prev_hash, hash"

/* The column list to select from the decisions of 'db' (by its schema version). */
const char *schema_decision_columns(sqlite3 *db);

/* Opens 'path' for writing, creating it when missing: WAL journal, synchronous=FULL,
 * busy_timeout, automatic checkpoints off (the store checkpoints from another thread),
 * and the schema migrated to SCHEMA_VERSION when 'is_migrate'. On success *out is the
 * connection (close with sqlite3_close). Returns PV_EIO with SQLite's message when the
 * file cannot be opened, is read-only, is not a database or is of a newer schema. */
pv_status schema_open_rw(sqlite3 **out, const char *path, bool is_migrate, struct pv_err *err);

/* Opens 'path' read-only (works while a writer has it open); any schema version from 1
 * to SCHEMA_VERSION (tables added later are missing from older files, and reading
 * them fails with SQLite's "no such table"). Returns PV_ENOENT when the file does not
 * exist, PV_EIO when it cannot be read or is not a paved audit database. */
pv_status schema_open_ro(sqlite3 **out, const char *path, struct pv_err *err);

/* Runs 'sql' (no results). Returns PV_EIO with SQLite's message on failure. */
pv_status schema_exec(sqlite3 *db, const char *sql, struct pv_err *err);

#endif
