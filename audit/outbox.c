/* audit/outbox.c: the delivery side of the notification outbox (see outbox.h). Owns the
 * notifier's connection to the store and its prepared statements; the rows themselves are
 * inserted by the audit writer (writer.c). */
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "schema.h"
#include "xalloc.h"

#define OUTBOX_LIST_DEFAULT 1000

struct audit_outbox {
    sqlite3 *db;
    char *path; /* for messages */
    sqlite3_stmt *any_due;
    sqlite3_stmt *claim;
    sqlite3_stmt *delivered;
    sqlite3_stmt *failed;
    sqlite3_stmt *release;
    sqlite3_stmt *next_due;
    sqlite3_stmt *counts;
};

static pv_status db_fail(sqlite3 *db, const char *path, struct pv_err *err)
{
    return pv_err_set(err, PV_EIO, "audit: %s: outbox: %s", path,
                      db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

/* Steps a statement that returns no rows and resets it, so it can run again. */
static pv_status step_done(struct audit_outbox *o, sqlite3_stmt *st, struct pv_err *err)
{
    int src = sqlite3_step(st);
    pv_status rc = PV_OK;

    if (src != SQLITE_DONE)
        rc = db_fail(o->db, o->path, err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* The length of at most 'max' bytes of 's' that does not end inside a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len <= max)
        return len;
    len = max;
    while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
        len--;
    return len;
}

/* ---- The notifier's connection ---- */

pv_status audit_outbox_open(struct audit_outbox **out, const char *path, struct pv_err *err)
{
    static const char sql_any_due[] =
        "SELECT 1 FROM outbox WHERE state = 'pending' AND next_ms <= ?1 LIMIT 1";
    /* One statement both picks and leases the rows: no window in which another reader
     * of the store could pick the same ones. */
    static const char sql_claim[] =
        "UPDATE outbox SET next_ms = ?1 WHERE id IN (SELECT id FROM outbox WHERE state = "
        "'pending' AND next_ms <= ?2 ORDER BY next_ms, id LIMIT ?3) "
        "RETURNING id, endpoint, event, body, created_ms, attempts";
    static const char sql_delivered[] =
        "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_status = ?2, "
        "last_error = NULL, delivered_ms = ?3 WHERE id = ?1 AND state = 'pending'";
    static const char sql_failed[] =
        "UPDATE outbox SET attempts = attempts + 1, last_status = ?2, last_error = ?3, "
        "next_ms = CASE WHEN ?4 < 0 THEN next_ms ELSE ?4 END, "
        "state = CASE WHEN ?4 < 0 THEN 'dead' ELSE state END "
        "WHERE id = ?1 AND state = 'pending'";
    static const char sql_release[] =
        "UPDATE outbox SET next_ms = ?2 WHERE id = ?1 AND state = 'pending'";
    static const char sql_next_due[] = "SELECT min(next_ms) FROM outbox WHERE state = 'pending'";
    static const char sql_counts[] =
        "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'), "
        "(SELECT min(created_ms) FROM outbox WHERE state = 'pending'), "
        "(SELECT count(*) FROM outbox WHERE state = 'dead')";
    struct audit_outbox *o = xcalloc(1, sizeof(*o));
    sqlite3 *check = NULL;
    pv_status rc;

    o->path = xstrdup(path);
    /* The read-only open proves that the file exists and is a store of this version;
     * schema_open_rw would create a missing file. */
    rc = schema_open_ro(&check, path, err);
    sqlite3_close(check);
    if (rc == PV_OK)
        rc = schema_open_rw(&o->db, path, false, err);
    /* A delivered mark lost to a power cut only sends the message again (at least once
     * is the contract), so this connection does not wait for fsync on every mark;
     * WAL keeps the file consistent either way. */
    if (rc == PV_OK)
        rc = schema_exec(o->db, "PRAGMA synchronous=NORMAL", err);
    if (rc)
        goto fail;
    if (sqlite3_prepare_v2(o->db, sql_any_due, -1, &o->any_due, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(o->db, sql_claim, -1, &o->claim, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(o->db, sql_delivered, -1, &o->delivered, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(o->db, sql_failed, -1, &o->failed, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(o->db, sql_release, -1, &o->release, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(o->db, sql_next_due, -1, &o->next_due, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(o->db, sql_counts, -1, &o->counts, NULL) != SQLITE_OK) {
        rc = db_fail(o->db, path, err);
        goto fail;
    }
    *out = o;
    return PV_OK;
fail:
    audit_outbox_close(o);
    return rc;
}

void audit_outbox_close(struct audit_outbox *o)
{
    if (o == NULL)
        return;
    sqlite3_finalize(o->any_due);
    sqlite3_finalize(o->claim);
    sqlite3_finalize(o->delivered);
    sqlite3_finalize(o->failed);
    sqlite3_finalize(o->release);
    sqlite3_finalize(o->next_due);
    sqlite3_finalize(o->counts);
    sqlite3_close(o->db);
    free(o->path);
    free(o);
}

void audit_outbox_msgs_free(struct outbox_msg *msgs, size_t n)
{
    if (msgs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].endpoint);
        free(msgs[i].event);
        free(msgs[i].body);
    }
    free(msgs);
}

static char *column_dup(sqlite3_stmt *st, int i, size_t *len_out)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    size_t len = (size_t)sqlite3_column_bytes(st, i);

    if (len_out != NULL)
        *len_out = len;
    return xstrndup(p != NULL ? p : "", p != NULL ? len : 0);
}

static int cmp_msg_id(const void *a, const void *b)
{
    const struct outbox_msg *x = a;
    const struct outbox_msg *y = b;

    return (x->id > y->id) - (x->id < y->id);
}

pv_status audit_outbox_claim(struct audit_outbox *o, int64_t now_ms, int64_t lease_ms, size_t limit,
                             struct outbox_msg **out, size_t *n_out, struct pv_err *err)
{
    struct outbox_msg *msgs = NULL;
    size_t n = 0;
    pv_status rc = PV_OK;
    int src;

    if (limit == 0) {
        *out = NULL;
        *n_out = 0;
        return PV_OK;
    }
    /* Most polls find nothing: look with a read first, so an idle notifier never takes
     * the write lock the audit writer's group commits need. */
    sqlite3_bind_int64(o->any_due, 1, now_ms);
    src = sqlite3_step(o->any_due);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        rc = db_fail(o->db, o->path, err);
    sqlite3_reset(o->any_due);
    if (rc || src == SQLITE_DONE) {
        if (rc == PV_OK) {
            *out = NULL;
            *n_out = 0;
        }
        return rc;
    }
    msgs = xcalloc(limit, sizeof(*msgs));
    sqlite3_bind_int64(o->claim, 1, now_ms + lease_ms);
    sqlite3_bind_int64(o->claim, 2, now_ms);
    sqlite3_bind_int64(o->claim, 3, limit > INT32_MAX ? INT32_MAX : (int64_t)limit);
    while ((src = sqlite3_step(o->claim)) == SQLITE_ROW) {
        struct outbox_msg *m;

        PV_ASSERT(n < limit); /* the statement's LIMIT */
        m = &msgs[n++];
        m->id = sqlite3_column_int64(o->claim, 0);
        m->endpoint = column_dup(o->claim, 1, NULL);
        m->event = column_dup(o->claim, 2, NULL);
        m->body = column_dup(o->claim, 3, &m->body_len);
        m->created_ms = sqlite3_column_int64(o->claim, 4);
        m->attempts = sqlite3_column_int(o->claim, 5);
    }
    if (src != SQLITE_DONE)
        rc = db_fail(o->db, o->path, err);
    sqlite3_reset(o->claim);
    sqlite3_clear_bindings(o->claim);
    if (rc) {
        audit_outbox_msgs_free(msgs, n);
        return rc;
    }
    if (n == 0) {
        free(msgs);
        msgs = NULL;
    }
    /* RETURNING yields rows in no promised order. */
    if (n > 1)
        qsort(msgs, n, sizeof(*msgs), cmp_msg_id);
    *out = msgs;
    *n_out = n;
    return PV_OK;
}

pv_status audit_outbox_delivered(struct audit_outbox *o, int64_t id, int64_t now_ms,
                                 int http_status, struct pv_err *err)
{
    sqlite3_bind_int64(o->delivered, 1, id);
    sqlite3_bind_int(o->delivered, 2, http_status);
    sqlite3_bind_int64(o->delivered, 3, now_ms);
    return step_done(o, o->delivered, err);
}

pv_status audit_outbox_failed(struct audit_outbox *o, int64_t id, int http_status,
                              const char *error, int64_t next_ms, struct pv_err *err)
{
    sqlite3_bind_int64(o->failed, 1, id);
    if (http_status > 0)
        sqlite3_bind_int(o->failed, 2, http_status);
    else
        sqlite3_bind_null(o->failed, 2);
    if (error != NULL)
        sqlite3_bind_text(o->failed, 3, error, (int)cut_utf8(error, OUTBOX_ERROR_MAX),
                          SQLITE_STATIC);
    else
        sqlite3_bind_null(o->failed, 3);
    sqlite3_bind_int64(o->failed, 4, next_ms < 0 ? -1 : next_ms);
    return step_done(o, o->failed, err);
}

pv_status audit_outbox_release(struct audit_outbox *o, int64_t id, int64_t now_ms,
                               struct pv_err *err)
{
    sqlite3_bind_int64(o->release, 1, id);
    sqlite3_bind_int64(o->release, 2, now_ms);
    return step_done(o, o->release, err);
}

pv_status audit_outbox_next_due_ms(struct audit_outbox *o, int64_t *out, struct pv_err *err)
{
    pv_status rc = PV_OK;

    if (sqlite3_step(o->next_due) != SQLITE_ROW)
        rc = db_fail(o->db, o->path, err);
    else if (sqlite3_column_type(o->next_due, 0) == SQLITE_NULL)
        *out = -1;
    else
        *out = sqlite3_column_int64(o->next_due, 0);
    sqlite3_reset(o->next_due);
    return rc;
}

pv_status audit_outbox_counts(struct audit_outbox *o, struct outbox_counts *out, struct pv_err *err)
{
    pv_status rc = PV_OK;

    if (sqlite3_step(o->counts) != SQLITE_ROW) {
        rc = db_fail(o->db, o->path, err);
    } else {
        out->pending = sqlite3_column_int64(o->counts, 0);
        out->oldest_pending_ms = sqlite3_column_int64(o->counts, 1); /* NULL reads as 0 */
        out->dead = sqlite3_column_int64(o->counts, 2);
    }
    sqlite3_reset(o->counts);
    return rc;
}

/* ---- paved notify list / retry ---- */

static bool is_state(const char *s)
{
    return strcmp(s, "pending") == 0 || strcmp(s, "delivered") == 0 || strcmp(s, "dead") == 0;
}

/* The JSON object of the current row of the list statement. Returns: caller frees. */
static cJSON *list_row(sqlite3_stmt *st)
{
    static const char *const names[] = {"id",         "endpoint",    "event",   "state",
                                        "attempts",   "created_ms",  "next_ms", "last_status",
                                        "last_error", "delivered_ms"};
    cJSON *o = cJSON_CreateObject();
    const char *body;

    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        int type = sqlite3_column_type(st, i);
        cJSON *v;

        if (type == SQLITE_NULL)
            v = cJSON_CreateNull();
        else if (type == SQLITE_INTEGER)
            v = cJSON_CreateNumber((double)sqlite3_column_int64(st, i));
        else
            v = cJSON_CreateString((const char *)sqlite3_column_text(st, i));
        cJSON_AddItemToObject(o, names[i], v);
    }
    body = (const char *)sqlite3_column_text(st, 10);
    if (body != NULL) {
        cJSON *b = cJSON_ParseWithLength(body, (size_t)sqlite3_column_bytes(st, 10));

        /* A body that is not JSON (edited by hand) shows as the text it is. */
        cJSON_AddItemToObject(o, "body", b != NULL ? b : cJSON_CreateString(body));
    }
    return o;
}

pv_status audit_outbox_list(const char *path, const char *state, size_t limit, cJSON **out,
                            struct pv_err *err)
{
    static const char sql_all[] =
        "SELECT id, endpoint, event, state, attempts, created_ms, next_ms, last_status, "
        "last_error, delivered_ms, body FROM outbox ORDER BY id DESC LIMIT ?1";
    static const char sql_state[] =
        "SELECT id, endpoint, event, state, attempts, created_ms, next_ms, last_status, "
        "last_error, delivered_ms, body FROM outbox WHERE state = ?2 ORDER BY id DESC LIMIT ?1";
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cJSON *arr = NULL;
    pv_status rc;
    int src;

    if (state != NULL && !is_state(state))
        return pv_err_set(err, PV_EINVAL,
                          "audit: outbox: unknown state \"%s\" (pending, delivered or dead)",
                          state);
    rc = schema_open_ro(&db, path, err);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db, state != NULL ? sql_state : sql_all, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_int64(st, 1,
                       limit == 0          ? OUTBOX_LIST_DEFAULT
                       : limit > INT64_MAX ? INT64_MAX
                                           : (int64_t)limit);
    if (state != NULL)
        sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    arr = cJSON_CreateArray();
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, list_row(st));
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

pv_status audit_outbox_retry(const char *path, int64_t id, bool is_all_dead, int64_t now_ms,
                             size_t *n_out, struct pv_err *err)
{
    static const char sql_dead[] =
        "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = ?1 WHERE state = 'dead'";
    static const char sql_one[] = "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = ?1 "
                                  "WHERE id = ?2 AND state IN ('dead', 'pending')";
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    pv_status rc;
    int changes;

    /* As in audit_outbox_open: refuse a missing file instead of creating one. */
    rc = schema_open_ro(&db, path, err);
    sqlite3_close(db);
    db = NULL;
    if (rc == PV_OK)
        rc = schema_open_rw(&db, path, false, err);
    if (rc)
        return rc;
    if (sqlite3_prepare_v2(db, is_all_dead ? sql_dead : sql_one, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    if (!is_all_dead)
        sqlite3_bind_int64(st, 2, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    changes = sqlite3_changes(db);
    if (changes == 0 && !is_all_dead) {
        /* Say why: no such row, or one that is already delivered. */
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT delivered_ms FROM outbox WHERE id = ?1", -1, &st,
                               NULL) != SQLITE_OK) {
            rc = db_fail(db, path, err);
            goto done;
        }
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            rc = pv_err_set(err, PV_EINVAL,
                            "audit: outbox message %lld was already delivered; nothing to retry",
                            (long long)id);
            goto done;
        }
    }
    *n_out = (size_t)changes;
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
