/* tests/unit/test_exceptions.c: exceptions, break-glass, the quota ledger and the
 * notification outbox as the audit writer applies them (audit/exceptions.c,
 * audit/writer.c, audit/ledger.c), the decision table's exception and break-glass step
 * (server/decide.c) and durations (server/base/duration.c). Real SQLite files in a
 * mkdtemp directory, real records through the real writer thread; every "now" is a
 * record's time_ms, never the wall clock. */
#include "audit.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "decide.h"
#include "duration.h"
#include "jsonutil.h"
#include "t.h"
#include "xalloc.h"

#define T0 1800000000000LL /* 2027-01-15T08:00:00Z */
#define HOUR_MS 3600000LL

static char dir[64];

static const char *db_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static uint64_t in_ms(uint64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + ms * 1000000u;
}

static struct audit *open_store(const char *path, audit_outbox_fn *on_outbox, void *outbox_arg,
                                audit_quota_fn *quota, void *quota_arg)
{
    struct audit_options opt = {.path = path,
                                .on_outbox = on_outbox,
                                .on_outbox_arg = outbox_arg,
                                .quota_check = quota,
                                .quota_arg = quota_arg};
    struct audit *a = NULL;
    struct pv_err err = {PV_OK, ""};

    if (audit_open(&a, &opt, &err) != PV_OK) {
        t_diag("audit_open(%s): %s", path, err.msg);
        return NULL;
    }
    return a;
}

/* The first column of the first row of 'sql' as text into 'out' ("" when none, "NULL"
 * for SQL NULL). */
static void query_text(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    out[0] = '\0';
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        t_diag("sql %s: %s", sql, sqlite3_errmsg(db));
    else if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, cap, "%s",
                 sqlite3_column_type(st, 0) == SQLITE_NULL
                     ? "NULL"
                     : (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static long long query_long(const char *path, const char *sql)
{
    char buf[64];

    query_text(path, sql, buf, sizeof(buf));
    return strtoll(buf, NULL, 10);
}

static long long n_rows(const char *path)
{
    return query_long(path, "SELECT count(*) FROM decisions");
}

static int verify_rows(const char *path)
{
    struct audit_verify_result res;
    struct pv_err err = {PV_OK, ""};

    memset(&res, 0, sizeof(res));
    if (audit_verify(path, &res, &err) != PV_OK) {
        t_diag("audit_verify: %s", err.msg);
        return -1;
    }
    if (!res.is_ok)
        t_diag("verify: rowid %" PRId64 " (%s): %s", res.bad_rowid, res.bad_id, res.reason);
    return res.is_ok ? (int)res.rows : -1;
}

static long long jint(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsNumber(v) ? v->valuedouble : -1e9;
}

/* ---- Event records, built as server/api.c api_submit_event() builds them ---- */

static struct audit_record *event_rec(enum audit_op op, cJSON *args, const char *actor,
                                      int64_t time_ms, const char *routes)
{
    static const char *const ops[] = {"NONE",   "REQUEST", "APPROVE", "DENY", "REVOKE",
                                      "EXPIRE", "REMIND",  "START",   "END"};
    struct audit_record *r = xcalloc(1, sizeof(*r));
    bool is_bg = op == AUDIT_OP_BG_START || op == AUDIT_OP_BG_END;

    audit_new_id(r->id);
    r->time_ms = time_ms;
    r->source = xstrdup("api");
    r->kind = xstrdup(is_bg ? "breakglass" : "exception");
    r->operation = xstrdup(ops[op]);
    r->team = xstrdup("-");
    r->decision = xstrdup("-");
    r->path = xstrdup("event");
    r->actor = actor != NULL ? xstrdup(actor) : NULL;
    r->op = op;
    r->op_args = args;
    r->notify_routes = routes != NULL ? xstrdup(routes) : NULL;
    return r;
}

static pv_status submit_event(struct audit *a, enum audit_op op, cJSON *args, const char *actor,
                              int64_t time_ms, const char *routes, struct pv_err *err)
{
    return audit_submit_op(a, event_rec(op, args, actor, time_ms, routes), in_ms(10000), err);
}

/* {"id","team","service","namespace"?,"policies","justification","ticket","duration_s",
 * "self_service"}; 'policies' is JSON text. */
static cJSON *request_args(const char *id, const char *team, const char *service, const char *ns,
                           const char *policies, double duration_s, bool is_self)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "team", team);
    cJSON_AddStringToObject(o, "service", service);
    if (ns != NULL)
        cJSON_AddStringToObject(o, "namespace", ns);
    cJSON_AddItemToObject(o, "policies", cJSON_Parse(policies));
    cJSON_AddStringToObject(o, "justification", "the vendor image has no digest yet");
    cJSON_AddStringToObject(o, "ticket", "OPS-1");
    cJSON_AddNumberToObject(o, "duration_s", duration_s);
    cJSON_AddBoolToObject(o, "self_service", is_self);
    return o;
}

static cJSON *id_args(const char *id, const char *reason)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", id);
    if (reason != NULL)
        cJSON_AddStringToObject(o, "reason", reason);
    return o;
}

static cJSON *bg_args(const char *id, const char *reason, const char *namespaces, const char *teams,
                      double duration_s)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", id);
    if (reason != NULL)
        cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddItemToObject(o, "namespaces", cJSON_Parse(namespaces));
    cJSON_AddItemToObject(o, "teams", cJSON_Parse(teams));
    cJSON_AddNumberToObject(o, "duration_s", duration_s);
    return o;
}

/* The mutable columns of exception 'id', to see that a refused transition changed
 * nothing. */
static void exc_state_text(const char *path, const char *id, char *out, size_t cap)
{
    char sql[400];

    snprintf(sql, sizeof(sql),
             "SELECT json_array(state, decided_by, decided_ms, reason, expires_ms, ended_ms, "
             "reminded_ms) FROM exceptions WHERE id = '%s'",
             id);
    query_text(path, sql, out, cap);
}

/* The last decisions row as "kind|decision|path|source|resource_kind|resource_name|actor|
 * event|snapshot id|snapshot state". */
static void last_row_text(const char *path, char *out, size_t cap)
{
    query_text(path,
               "SELECT kind || '|' || decision || '|' || path || '|' || source || '|' || "
               "resource_kind || '|' || resource_name || '|' || coalesce(actor, '') || '|' || "
               "(violations ->> '$[0].event') || '|' || coalesce(violations ->> "
               "'$[0].exception.id', violations ->> '$[0].breakglass.id') || '|' || "
               "coalesce(violations ->> '$[0].exception.state', '') FROM decisions ORDER BY "
               "rowid DESC LIMIT 1",
               out, cap);
}

static int n_exc_ok; /* transitions of test_exc_states that committed */

/* Submits a transition of exception 'id' that must commit; checks that it added exactly
 * one row, of kind "exception", whose decision is the new 'state' and whose violations
 * hold 'event' and the exception's snapshot in that state. */
static int expect_transition(struct audit *a, const char *path, enum audit_op op, cJSON *args,
                             const char *actor, int64_t t, const char *id, const char *state,
                             const char *event)
{
    struct pv_err err = {PV_OK, ""};
    long long before = n_rows(path);
    char got[512];
    char want[512];
    pv_status rc = submit_event(a, op, args, actor, t, NULL, &err);
    int ok = 1;

    ok &= T_EQ_INT(rc, PV_OK);
    if (rc)
        t_diag("  %s %s: %s", event, id, err.msg);
    else
        n_exc_ok++;
    ok &= T_EQ_INT(n_rows(path), before + 1);
    last_row_text(path, got, sizeof(got));
    snprintf(want, sizeof(want), "exception|%s|event|api|Exception|%s|%s|%s|%s|%s", state, id,
             actor != NULL ? actor : "", event, id, state);
    ok &= T_EQ_STR(got, want);
    return ok;
}

/* Submits a transition that must be refused with 'want' and a message holding
 * 'needle'; checks that it left no row and changed nothing. */
static int expect_refused(struct audit *a, const char *path, enum audit_op op, cJSON *args,
                          const char *actor, int64_t t, const char *id, pv_status want,
                          const char *needle)
{
    struct pv_err err = {PV_OK, ""};
    long long before = n_rows(path);
    char state_before[512];
    char state_after[512];
    pv_status rc;
    int ok = 1;

    exc_state_text(path, id, state_before, sizeof(state_before));
    rc = submit_event(a, op, args, actor, t, NULL, &err);
    ok &= T_EQ_INT(rc, want);
    ok &= T_OK(strstr(err.msg, needle) != NULL);
    ok &= T_EQ_INT(n_rows(path), before);
    exc_state_text(path, id, state_after, sizeof(state_after));
    ok &= T_EQ_STR(state_after, state_before);
    if (!ok)
        t_diag("  refused transition of %s: \"%s\" (wanted \"%s\")", id, err.msg, needle);
    return ok;
}

/* The exception as audit_exception_get shows it, or NULL. Caller frees. */
static cJSON *get_exc(const char *path, const char *id)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *x = NULL;

    if (audit_exception_get(path, id, &x, &err) != PV_OK) {
        t_diag("audit_exception_get(%s): %s", id, err.msg);
        return NULL;
    }
    return x;
}

/* The ids audit_exceptions_list returns for 'f', comma-separated, into 'out'. */
static void list_ids(const char *path, const struct audit_exc_filter *f, char *out, size_t cap)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *arr = NULL;
    const cJSON *x;
    size_t len = 0;

    out[0] = '\0';
    if (audit_exceptions_list(path, f, &arr, &err) != PV_OK) {
        snprintf(out, cap, "error: %s", err.msg);
        return;
    }
    cJSON_ArrayForEach(x, arr)
    {
        if (len < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len > 0 ? "," : "",
                                    json_str(x, "id", NULL));
    }
    cJSON_Delete(arr);
}

/* ---- 1. The exception state machine ---- */

struct racer {
    struct audit *a;
    const char *id;
    const char *actor;
    int64_t t;
    pthread_barrier_t *start;
    pv_status rc;
};

static void *race_approve(void *arg)
{
    struct racer *r = arg;
    struct pv_err err = {PV_OK, ""};

    pthread_barrier_wait(r->start);
    r->rc =
        submit_event(r->a, AUDIT_OP_EXC_APPROVE, id_args(r->id, NULL), r->actor, r->t, NULL, &err);
    return NULL;
}

#define NRACES 10

static char race_ids[NRACES][AUDIT_EXC_ID_LEN + 1];

static void test_exc_states(void)
{
    char path[128];
    char id1[AUDIT_EXC_ID_LEN + 1], id2[AUDIT_EXC_ID_LEN + 1], id3[AUDIT_EXC_ID_LEN + 1];
    char id4[AUDIT_EXC_ID_LEN + 1], id5[AUDIT_EXC_ID_LEN + 1], ghost[AUDIT_EXC_ID_LEN + 1];
    char bg[AUDIT_EXC_ID_LEN + 1];
    struct pv_err err = {PV_OK, ""};
    struct audit *a;
    cJSON *x;
    int64_t exp1 = T0 + 2000 + HOUR_MS;

    db_path(path, sizeof(path), "exc.db");
    a = open_store(path, NULL, NULL, NULL, NULL);
    if (!T_OK(a != NULL))
        return;

    /* Ids: "EXC-" or "BG-" and the 26 time-ordered characters of a decision id. */
    audit_new_exception_id(id1, false);
    audit_new_exception_id(id2, false);
    audit_new_exception_id(id3, false);
    audit_new_exception_id(id4, false);
    audit_new_exception_id(id5, false);
    audit_new_exception_id(ghost, false);
    audit_new_exception_id(bg, true);
    T_EQ_INT(strlen(id1), AUDIT_EXC_ID_LEN);
    T_OK(strncmp(id1, "EXC-", 4) == 0 && strspn(id1 + 4, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == 26);
    T_OK(strcmp(id1, id2) < 0 && strcmp(id2, id3) < 0);
    T_EQ_INT(strlen(bg), AUDIT_EXC_ID_LEN - 1);
    T_OK(strncmp(bg, "BG-", 3) == 0 && strspn(bg + 3, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == 26);

    /* id1: request -> pending; the requester cannot approve; another actor can. */
    expect_transition(a, path, AUDIT_OP_EXC_REQUEST,
                      request_args(id1, "payments", "api", "shop",
                                   "[\"no-latest\",\"psa-restricted\"]", 3600, false),
                      "alice", T0, id1, "pending", "exception.requested");
    x = get_exc(path, id1);
    T_EQ_STR(json_str(x, "state", NULL), "pending");
    T_EQ_STR(json_str(x, "requested_by", NULL), "alice");
    T_EQ_INT(jint(x, "requested_ms"), T0);
    T_OK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(x, "expires_ms")));
    T_OK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(x, "decided_by")));
    cJSON_Delete(x);
    /* The event row's snapshot is the whole exception. */
    {
        char v[512];
        char sql[300];

        snprintf(sql, sizeof(sql),
                 "SELECT json_array(violations ->> '$[0].exception.team', violations ->> "
                 "'$[0].exception.policies[1]', violations ->> '$[0].exception.duration_s', "
                 "violations ->> '$[0].exception.requested_by', team, service, namespace) FROM "
                 "decisions WHERE resource_name = '%s'",
                 id1);
        query_text(path, sql, v, sizeof(v));
        T_EQ_STR(v, "[\"payments\",\"psa-restricted\",3600,\"alice\",\"payments\",\"api\","
                    "\"shop\"]");
    }
    expect_refused(a, path, AUDIT_OP_EXC_REQUEST,
                   request_args(id1, "payments", "api", "shop", "[\"no-latest\"]", 60, false),
                   "alice", T0 + 500, id1, PV_EINVAL, "exists already");
    expect_refused(a, path, AUDIT_OP_EXC_APPROVE, id_args(id1, NULL), "alice", T0 + 1000, id1,
                   PV_ECONFIG, "separation of duties");
    expect_transition(a, path, AUDIT_OP_EXC_APPROVE, id_args(id1, "vendor fix due"), "bob",
                      T0 + 2000, id1, "approved", "exception.approved");
    x = get_exc(path, id1);
    T_EQ_STR(json_str(x, "state", NULL), "approved");
    T_EQ_STR(json_str(x, "decided_by", NULL), "bob");
    T_EQ_STR(json_str(x, "reason", NULL), "vendor fix due");
    T_EQ_INT(jint(x, "decided_ms"), T0 + 2000);
    T_EQ_INT(jint(x, "expires_ms"), exp1); /* approval time + duration */
    T_EQ_STR(json_str(x, "expires_at", NULL), "2027-01-15T09:00:02Z");
    cJSON_Delete(x);
    expect_refused(a, path, AUDIT_OP_EXC_APPROVE, id_args(id1, NULL), "carol", T0 + 3000, id1,
                   PV_EINVAL, "only a pending exception can be approved");
    expect_refused(a, path, AUDIT_OP_EXC_DENY, id_args(id1, NULL), "carol", T0 + 3000, id1,
                   PV_EINVAL, "only a pending exception can be denied");
    /* The reminder goes out once. */
    expect_transition(a, path, AUDIT_OP_EXC_REMIND, id_args(id1, NULL), "paved", T0 + 4000, id1,
                      "approved", "exception.expiring");
    expect_refused(a, path, AUDIT_OP_EXC_REMIND, id_args(id1, NULL), "paved", T0 + 5000, id1,
                   PV_EINVAL, "reminded already");
    /* Expiry: refused before expires_ms, applied after it, ended at expires_ms. */
    expect_refused(a, path, AUDIT_OP_EXC_EXPIRE, id_args(id1, NULL), "paved", exp1 - 1, id1,
                   PV_EINVAL, "not due to expire");
    expect_transition(a, path, AUDIT_OP_EXC_EXPIRE, id_args(id1, NULL), "paved", exp1 + 1, id1,
                      "expired", "exception.expired");
    x = get_exc(path, id1);
    T_EQ_INT(jint(x, "ended_ms"), exp1);
    T_EQ_INT(jint(x, "reminded_ms"), T0 + 4000);
    cJSON_Delete(x);
    expect_refused(a, path, AUDIT_OP_EXC_REVOKE, id_args(id1, NULL), "carol", exp1 + 2, id1,
                   PV_EINVAL, "only an approved exception can be revoked");
    expect_refused(a, path, AUDIT_OP_EXC_EXPIRE, id_args(id1, NULL), "paved", exp1 + 2, id1,
                   PV_EINVAL, "is expired");
    expect_refused(a, path, AUDIT_OP_EXC_REMIND, id_args(id1, NULL), "paved", exp1 + 2, id1,
                   PV_EINVAL, "is expired");

    /* id2: deny needs pending. */
    expect_transition(a, path, AUDIT_OP_EXC_REQUEST,
                      request_args(id2, "payments", "web", "shop", "[\"cost-tags\"]", 86400, false),
                      "alice", T0 + 10, id2, "pending", "exception.requested");
    expect_refused(a, path, AUDIT_OP_EXC_REVOKE, id_args(id2, NULL), "bob", T0 + 4000, id2,
                   PV_EINVAL, "is pending; only an approved exception can be revoked");
    expect_refused(a, path, AUDIT_OP_EXC_EXPIRE, id_args(id2, NULL), "paved", T0 + 4000, id2,
                   PV_EINVAL, "not due to expire");
    expect_refused(a, path, AUDIT_OP_EXC_REMIND, id_args(id2, NULL), "paved", T0 + 4000, id2,
                   PV_EINVAL, "is pending");
    expect_transition(a, path, AUDIT_OP_EXC_DENY, id_args(id2, "tag the workload"), "bob",
                      T0 + 5000, id2, "denied", "exception.denied");
    expect_refused(a, path, AUDIT_OP_EXC_DENY, id_args(id2, NULL), "carol", T0 + 5001, id2,
                   PV_EINVAL, "is denied; only a pending exception can be denied");
    expect_refused(a, path, AUDIT_OP_EXC_APPROVE, id_args(id2, NULL), "carol", T0 + 5001, id2,
                   PV_EINVAL, "is denied; only a pending exception can be approved");
    x = get_exc(path, id2);
    T_EQ_STR(json_str(x, "decided_by", NULL), "bob");
    T_EQ_INT(jint(x, "decided_ms"), T0 + 5000);
    T_EQ_STR(json_str(x, "reason", NULL), "tag the workload");
    T_OK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(x, "expires_ms")));
    cJSON_Delete(x);

    /* id3: revoke needs approved. */
    expect_transition(a, path, AUDIT_OP_EXC_REQUEST,
                      request_args(id3, "search", "api", NULL, "[\"no-latest\"]", 7200, false),
                      "alice", T0 + 20, id3, "pending", "exception.requested");
    expect_transition(a, path, AUDIT_OP_EXC_APPROVE, id_args(id3, NULL), "bob", T0 + 5500, id3,
                      "approved", "exception.approved");
    expect_transition(a, path, AUDIT_OP_EXC_REVOKE, id_args(id3, "fixed upstream"), "carol",
                      T0 + 6000, id3, "revoked", "exception.revoked");
    x = get_exc(path, id3);
    T_EQ_INT(jint(x, "ended_ms"), T0 + 6000);
    T_EQ_STR(json_str(x, "reason", NULL), "fixed upstream");
    T_EQ_STR(json_str(x, "decided_by", NULL), "bob");
    cJSON_Delete(x);
    expect_refused(a, path, AUDIT_OP_EXC_REVOKE, id_args(id3, NULL), "carol", T0 + 6001, id3,
                   PV_EINVAL, "is revoked");
    expect_refused(a, path, AUDIT_OP_EXC_EXPIRE, id_args(id3, NULL), "paved", T0 + 100 * HOUR_MS,
                   id3, PV_EINVAL, "is revoked and not due");

    /* id4: self service is approved at once, by nobody. */
    expect_transition(a, path, AUDIT_OP_EXC_REQUEST,
                      request_args(id4, "payments", "api", NULL, "[\"no-latest\"]", 600, true),
                      "dave", T0 + 30, id4, "approved", "exception.approved");
    x = get_exc(path, id4);
    T_EQ_STR(json_str(x, "decided_by", NULL), "self-service");
    T_OK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "self_service")));
    T_EQ_INT(jint(x, "decided_ms"), T0 + 30);
    T_EQ_INT(jint(x, "expires_ms"), T0 + 30 + 600000);
    T_OK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(x, "namespace")));
    cJSON_Delete(x);
    expect_refused(a, path, AUDIT_OP_EXC_APPROVE, id_args(id4, NULL), "bob", T0 + 40, id4,
                   PV_EINVAL, "is approved");
    expect_transition(a, path, AUDIT_OP_EXC_REMIND, id_args(id4, NULL), "paved", T0 + 50, id4,
                      "approved", "exception.expiring");

    /* No such exception. */
    {
        static const enum audit_op ops[] = {AUDIT_OP_EXC_APPROVE, AUDIT_OP_EXC_DENY,
                                            AUDIT_OP_EXC_REVOKE, AUDIT_OP_EXC_EXPIRE,
                                            AUDIT_OP_EXC_REMIND};

        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
            if (!expect_refused(a, path, ops[i], id_args(ghost, NULL), "bob", T0 + 60, ghost,
                                PV_ENOENT, "no exception"))
                t_diag("  op %d", (int)ops[i]);
        T_EQ_INT(audit_exception_get(path, ghost, &x, &err), PV_ENOENT);
        T_OK(strstr(err.msg, ghost) != NULL);
    }

    /* Malformed requests. */
    {
        cJSON *no_just = request_args(ghost, "payments", "api", NULL, "[\"x\"]", 60, false);
        cJSON *no_id = request_args(ghost, "payments", "api", NULL, "[\"x\"]", 60, false);

        cJSON_DeleteItemFromObject(no_just, "justification");
        cJSON_DeleteItemFromObject(no_id, "id");
        expect_refused(a, path, AUDIT_OP_EXC_REQUEST, no_just, "alice", T0, ghost, PV_EINVAL,
                       "malformed exception request");
        expect_refused(a, path, AUDIT_OP_EXC_REQUEST,
                       request_args(ghost, "payments", "api", NULL, "[]", 60, false), "alice", T0,
                       ghost, PV_EINVAL, "malformed");
        expect_refused(a, path, AUDIT_OP_EXC_REQUEST,
                       request_args(ghost, "payments", "api", NULL, "[\"x\"]", 0, false), "alice",
                       T0, ghost, PV_EINVAL, "malformed");
        expect_refused(a, path, AUDIT_OP_EXC_REQUEST,
                       request_args(ghost, "payments", "api", NULL, "[\"x\"]", 60, false), NULL, T0,
                       ghost, PV_EINVAL, "malformed");
        expect_refused(a, path, AUDIT_OP_EXC_REQUEST, no_id, "alice", T0, ghost, PV_EINVAL,
                       "without an id");
        T_EQ_INT(query_long(path, "SELECT count(*) FROM exceptions"), 4);
    }

    /* A transition applied but then refused with its row (a duplicate decision id) is
     * rolled back to its savepoint: the exception stays pending. */
    expect_transition(
        a, path, AUDIT_OP_EXC_REQUEST,
        request_args(id5, "payments", "api", "shop", "[\"psa-restricted\"]", 3600, false), "alice",
        T0 + 40, id5, "pending", "exception.requested");
    {
        struct audit_record *r =
            event_rec(AUDIT_OP_EXC_APPROVE, id_args(id5, NULL), "bob", T0 + 50000, NULL);
        char before[512];
        char after[512];
        long long rows = n_rows(path);

        query_text(path, "SELECT id FROM decisions WHERE rowid = 1", r->id, sizeof(r->id));
        exc_state_text(path, id5, before, sizeof(before));
        T_EQ_INT(audit_submit_op(a, r, in_ms(10000), &err), PV_EINVAL);
        exc_state_text(path, id5, after, sizeof(after));
        T_EQ_STR(after, before);
        T_OK(strstr(after, "\"pending\"") != NULL);
        T_EQ_INT(n_rows(path), rows);
    }
    expect_transition(a, path, AUDIT_OP_EXC_APPROVE, id_args(id5, NULL), "bob", T0 + 50000, id5,
                      "approved", "exception.approved");

    /* Two approvers at once: exactly one wins. */
    {
        int n_one_winner = 0;

        for (int i = 0; i < NRACES; i++) {
            pthread_barrier_t start;
            struct racer rs[2];
            pthread_t th[2];
            char who[64];
            char sql[400];

            audit_new_exception_id(race_ids[i], false);
            expect_transition(
                a, path, AUDIT_OP_EXC_REQUEST,
                request_args(race_ids[i], "infra", "dns", NULL, "[\"no-latest\"]", 86400, false),
                "alice", T0 + 100 + i, race_ids[i], "pending", "exception.requested");
            pthread_barrier_init(&start, NULL, 2);
            for (int k = 0; k < 2; k++) {
                rs[k].a = a;
                rs[k].id = race_ids[i];
                rs[k].actor = k == 0 ? "bob" : "carol";
                rs[k].t = T0 + 200000 + i;
                rs[k].start = &start;
                rs[k].rc = PV_EIO;
                pthread_create(&th[k], NULL, race_approve, &rs[k]);
            }
            for (int k = 0; k < 2; k++)
                pthread_join(th[k], NULL);
            pthread_barrier_destroy(&start);
            snprintf(sql, sizeof(sql), "SELECT decided_by FROM exceptions WHERE id = '%s'",
                     race_ids[i]);
            query_text(path, sql, who, sizeof(who));
            if ((rs[0].rc == PV_OK && rs[1].rc == PV_EINVAL && strcmp(who, "bob") == 0) ||
                (rs[1].rc == PV_OK && rs[0].rc == PV_EINVAL && strcmp(who, "carol") == 0))
                n_one_winner++;
            else
                t_diag("race %d: bob %d, carol %d, decided_by %s", i, rs[0].rc, rs[1].rc, who);
            n_exc_ok++;
        }
        T_EQ_INT(n_one_winner, NRACES);
        T_EQ_INT(query_long(path, "SELECT count(*) FROM decisions WHERE kind = 'exception' AND "
                                  "operation = 'APPROVE' AND resource_name IN (SELECT id FROM "
                                  "exceptions WHERE team = 'infra')"),
                 NRACES);
    }

    audit_close(a);

    /* Every committed transition is one row of kind "exception"; the chain holds. */
    T_EQ_INT(query_long(path, "SELECT count(*) FROM decisions WHERE kind = 'exception'"), n_exc_ok);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM decisions WHERE kind <> 'exception' OR path "
                              "<> 'event' OR decision <> violations ->> '$[0].exception.state'"),
             0);
    T_EQ_INT(verify_rows(path), n_exc_ok);

    /* The events of an exception, oldest first. */
    x = get_exc(path, id1);
    {
        char got[600] = "";
        size_t len = 0;
        const cJSON *e;
        long long last_ms = 0;
        int in_order = 1;
        int hashes = 1;

        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(x, "events"))
        {
            char sql[200];
            char hash[80];

            if (len < sizeof(got))
                len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%s/%s/%s", len ? " " : "",
                                        json_str(e, "event", NULL), json_str(e, "state", NULL),
                                        json_str(e, "actor", NULL));
            if (jint(e, "time_ms") < last_ms)
                in_order = 0;
            last_ms = jint(e, "time_ms");
            snprintf(sql, sizeof(sql), "SELECT hash FROM decisions WHERE id = '%s'",
                     json_str(e, "decision_id", NULL));
            query_text(path, sql, hash, sizeof(hash));
            if (json_str(e, "hash", NULL) == NULL || strcmp(hash, json_str(e, "hash", NULL)) != 0)
                hashes = 0;
        }
        T_EQ_STR(got, "exception.requested/pending/alice exception.approved/approved/bob "
                      "exception.expiring/approved/paved exception.expired/expired/paved");
        T_OK(in_order);
        T_OK(hashes);
    }
    /* The list as the API shows it. */
    T_EQ_STR(json_str(x, "team", NULL), "payments");
    T_EQ_STR(json_str(x, "service", NULL), "api");
    T_EQ_STR(json_str(x, "namespace", NULL), "shop");
    T_EQ_STR(json_str(x, "ticket", NULL), "OPS-1");
    T_EQ_STR(json_str(x, "requested_at", NULL), "2027-01-15T08:00:00Z");
    T_EQ_INT(jint(x, "duration_s"), 3600);
    T_OK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(x, "self_service")));
    T_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(x, "policies")), 2);
    cJSON_Delete(x);
    {
        struct audit_exc_filter f;
        char got[1200];
        char want[1200];

        memset(&f, 0, sizeof(f));
        f.state = "expired";
        list_ids(path, &f, got, sizeof(got));
        T_EQ_STR(got, id1);
        f.state = "denied";
        list_ids(path, &f, got, sizeof(got));
        T_EQ_STR(got, id2);
        f.state = "revoked";
        list_ids(path, &f, got, sizeof(got));
        T_EQ_STR(got, id3);
        f.state = "pending";
        list_ids(path, &f, got, sizeof(got));
        T_EQ_STR(got, "");
        memset(&f, 0, sizeof(f));
        f.team = "search";
        list_ids(path, &f, got, sizeof(got));
        T_EQ_STR(got, id3);
        memset(&f, 0, sizeof(f));
        f.service = "web";
        list_ids(path, &f, got, sizeof(got));
        T_EQ_STR(got, id2);
        memset(&f, 0, sizeof(f));
        f.policy = "psa-restricted";
        list_ids(path, &f, got, sizeof(got));
        snprintf(want, sizeof(want), "%s,%s", id5, id1); /* newest first */
        T_EQ_STR(got, want);
        memset(&f, 0, sizeof(f));
        f.expiring_before_ms = T0 + 700000;
        list_ids(path, &f, got, sizeof(got));
        T_EQ_STR(got, id4);
        f.expiring_before_ms = T0 + 4000000;
        list_ids(path, &f, got, sizeof(got));
        snprintf(want, sizeof(want), "%s,%s", id5, id4);
        T_EQ_STR(got, want);
        memset(&f, 0, sizeof(f));
        f.limit = 2;
        list_ids(path, &f, got, sizeof(got));
        snprintf(want, sizeof(want), "%s,%s", race_ids[NRACES - 1], race_ids[NRACES - 2]);
        T_EQ_STR(got, want);
    }

    /* What the matcher loads: the approved ones. */
    {
        struct audit_exc_set s = {0};
        const struct audit_exc *e4 = NULL;

        T_EQ_INT(audit_exceptions_approved(path, &s, &err), PV_OK);
        T_EQ_INT(s.n, 2 + NRACES);
        for (size_t i = 0; i < s.n; i++)
            if (strcmp(s.items[i].id, id4) == 0)
                e4 = &s.items[i];
        if (T_OK(e4 != NULL)) {
            T_EQ_STR(e4->team, "payments");
            T_EQ_STR(e4->service, "api");
            T_OK(e4->namespace == NULL);
            T_EQ_INT(e4->n_policies, 1);
            T_EQ_STR(e4->policies[0], "no-latest");
            T_EQ_INT(e4->expires_ms, T0 + 30 + 600000);
            T_OK(e4->is_reminded);
        }
        /* No namespace: any namespace matches; expired at its expiry. */
        T_OK(audit_exc_match(&s, "payments", "api", "anywhere", "no-latest", T0 + 1000) == e4);
        T_OK(audit_exc_match(&s, "payments", "api", "shop", "no-latest", T0 + 600030) == NULL);
        audit_exc_set_fini(&s);
    }
    /* The JSON export (`paved exceptions list --format json`) loads the same set. */
    {
        struct audit_exc_filter f = {0};
        struct audit_exc_set s = {0};
        cJSON *arr = NULL;

        T_EQ_INT(audit_exceptions_list(path, &f, &arr, &err), PV_OK);
        T_EQ_INT(cJSON_GetArraySize(arr), 5 + NRACES);
        T_EQ_INT(audit_exc_set_from_json(arr, &s, &err), PV_OK);
        T_EQ_INT(s.n, 2 + NRACES);
        audit_exc_set_fini(&s);
        cJSON_Delete(arr);
    }
}

/* ---- 2. Matching ---- */

static const char match_doc[] =
    "["
    "{\"id\":\"EXC-A\",\"team\":\"payments\",\"service\":\"api\",\"namespace\":\"shop\","
    "\"policies\":[\"no-latest\",\"psa\"],\"state\":\"approved\",\"expires_ms\":2000},"
    "{\"id\":\"EXC-B\",\"team\":\"payments\",\"service\":\"web\",\"namespace\":null,"
    "\"policies\":[\"cost-tags\"],\"state\":\"approved\",\"expires_ms\":2000,"
    "\"reminded_ms\":1500},"
    "{\"id\":\"EXC-C\",\"team\":\"search\",\"service\":\"api\",\"policies\":[\"no-latest\"],"
    "\"state\":\"approved\",\"expires_ms\":1000},"
    "{\"id\":\"EXC-D\",\"team\":\"payments\",\"service\":\"api\",\"namespace\":\"shop\","
    "\"policies\":[\"limits\"],\"state\":\"pending\",\"expires_ms\":null},"
    "{\"id\":\"EXC-E\",\"team\":\"payments\",\"service\":\"api\",\"namespace\":\"shop\","
    "\"policies\":[\"limits\"],\"state\":\"revoked\",\"expires_ms\":9000}"
    "]";

static void test_matching(void)
{
    /* Found by tests/fuzz/fuzz_exc_json (crash-expires-ms-1e19): an expiry past what
     * int64 holds is refused, not converted (undefined behaviour). */
    {
        static const char *const huge[] = {
            "[{\"id\":\"\",\"state\":\"approved\",\"team\":\"\",\"service\":\"\","
            "\"policies\":[],\"expires_ms\":1e19}]",
            "[{\"id\":\"x\",\"state\":\"approved\",\"team\":\"t\",\"service\":\"s\","
            "\"policies\":[\"p\"],\"expires_ms\":-1e400}]",
            "[{\"id\":\"x\",\"state\":\"approved\",\"team\":\"t\",\"service\":\"s\","
            "\"policies\":[\"p\"],\"expires_ms\":1.5}]",
        };

        for (size_t k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
            struct audit_exc_set hs = {0};
            struct pv_err herr = {PV_OK, ""};
            cJSON *hd = cJSON_Parse(huge[k]);

            T_EQ_INT(audit_exc_set_from_json(hd, &hs, &herr), PV_EINVAL);
            T_OK(strstr(herr.msg, "expires_ms") != NULL);
            audit_exc_set_fini(&hs);
            cJSON_Delete(hd);
        }
    }

    static const struct {
        const char *team, *service, *ns, *policy;
        int64_t now;
        const char *want; /* exception id, or NULL */
    } cases[] = {
        {"payments", "api", "shop", "no-latest", 1500, "EXC-A"},
        {"payments", "api", "shop", "psa", 1500, "EXC-A"},
        {"payments", "api", "shop", "psa", 1999, "EXC-A"},
        {"payments", "api", "shop", "psa", 2000, NULL}, /* expires_ms <= now */
        {"payments", "api", "other", "no-latest", 1500, NULL},
        {"payments", "api", NULL, "no-latest", 1500, NULL},
        {"payments", "web", "shop", "cost-tags", 1500, "EXC-B"},
        {"payments", "web", "anything", "cost-tags", 1500, "EXC-B"},
        {"payments", "web", NULL, "cost-tags", 1500, "EXC-B"},
        {"payments", "web", "shop", "no-latest", 1500, NULL},
        {"search", "api", "x", "no-latest", 999, "EXC-C"},
        {"search", "api", "x", "no-latest", 1000, NULL},
        {"search", "web", "x", "no-latest", 999, NULL},
        {"payments", "api", "shop", "limits", 1500, NULL}, /* pending, revoked: not loaded */
        {NULL, "api", "shop", "no-latest", 1500, NULL},
        {"payments", NULL, "shop", "no-latest", 1500, NULL},
        {"payments", "api", "shop", NULL, 1500, NULL},
        {"Payments", "api", "shop", "no-latest", 1500, NULL},
    };
    struct pv_err err = {PV_OK, ""};
    struct audit_exc_set s = {0};
    cJSON *doc = cJSON_Parse(match_doc);

    T_EQ_INT(audit_exc_set_from_json(doc, &s, &err), PV_OK);
    T_EQ_INT(s.n, 3);
    if (s.n == 3) {
        T_EQ_STR(s.items[0].namespace, "shop");
        T_OK(s.items[1].namespace == NULL);
        T_OK(s.items[2].namespace == NULL);
        T_OK(!s.items[0].is_reminded);
        T_OK(s.items[1].is_reminded);
        T_EQ_INT(s.items[0].n_policies, 2);
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct audit_exc *e = audit_exc_match(&s, cases[i].team, cases[i].service,
                                                    cases[i].ns, cases[i].policy, cases[i].now);

        if (!T_EQ_STR(e != NULL ? e->id : NULL, cases[i].want))
            t_diag("  case %zu", i);
    }
    T_OK(audit_exc_match(NULL, "payments", "api", "shop", "no-latest", 0) == NULL);
    audit_exc_set_fini(&s);
    T_EQ_INT(s.n, 0);

    /* {"exceptions": [...]} */
    {
        cJSON *wrapped = cJSON_CreateObject();

        cJSON_AddItemToObject(wrapped, "exceptions", cJSON_Duplicate(doc, 1));
        T_EQ_INT(audit_exc_set_from_json(wrapped, &s, &err), PV_OK);
        T_EQ_INT(s.n, 3);
        T_OK(audit_exc_match(&s, "payments", "web", "x", "cost-tags", 0) != NULL);
        audit_exc_set_fini(&s);
        cJSON_Delete(wrapped);
    }
    cJSON_Delete(doc);

    /* Malformed documents and entries. */
    {
        static const struct {
            const char *doc;
            const char *needle; /* in the message */
        } bad[] = {
            {"{\"items\":[]}", "not a list of exceptions"},
            {"\"EXC-A\"", "not a list of exceptions"},
            {"[42]", "exception 1: not an exception"},
            {"[{\"id\":\"EXC-A\",\"team\":\"t\",\"service\":\"s\",\"policies\":[\"p\"],"
             "\"state\":\"approved\",\"expires_ms\":5},{\"id\":\"EXC-B\",\"state\":\"approved\"}]",
             "exception 2: not an exception"},
            {"[{\"id\":\"EXC-A\",\"team\":\"t\",\"service\":\"s\",\"policies\":\"p\","
             "\"state\":\"approved\",\"expires_ms\":5}]",
             "exception 1: not an exception"},
            {"[{\"id\":\"EXC-A\",\"team\":\"t\",\"service\":\"s\",\"policies\":[\"p\"],"
             "\"expires_ms\":5}]",
             "exception 1"},
            {"{\"exceptions\":[{\"id\":\"EXC-Z\",\"team\":\"t\",\"service\":\"s\",\"policies\":"
             "[\"p\"],\"state\":\"pending\"},{\"id\":\"EXC-Q\",\"team\":\"t\",\"service\":\"s\","
             "\"policies\":[\"p\"],\"state\":\"approved\"}]}",
             "exception 2: approved exception EXC-Q has no expires_ms"},
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            cJSON *d = cJSON_Parse(bad[i].doc);
            struct audit_exc_set out = {0};
            pv_status rc;

            err.msg[0] = '\0';
            rc = audit_exc_set_from_json(d, &out, &err);
            if (!T_EQ_INT(rc, PV_EINVAL) || !T_OK(strstr(err.msg, bad[i].needle) != NULL))
                t_diag("  bad doc %zu: \"%s\"", i, err.msg);
            T_EQ_INT(out.n, 0);
            cJSON_Delete(d);
        }
    }
    /* An empty list is a set of none. */
    {
        cJSON *d = cJSON_Parse("[]");

        T_EQ_INT(audit_exc_set_from_json(d, &s, &err), PV_OK);
        T_EQ_INT(s.n, 0);
        audit_exc_set_fini(&s);
        cJSON_Delete(d);
    }
}

/* ---- 3. Break-glass ---- */

static void test_breakglass(void)
{
    char path[128];
    char bg1[AUDIT_EXC_ID_LEN + 1], bg2[AUDIT_EXC_ID_LEN + 1], ghost[AUDIT_EXC_ID_LEN + 1];
    char got[512];
    char want[512];
    struct pv_err err = {PV_OK, ""};
    struct audit_bg_set s = {0};
    struct audit *a;
    cJSON *list = NULL;

    db_path(path, sizeof(path), "bg.db");
    a = open_store(path, NULL, NULL, NULL, NULL);
    if (!T_OK(a != NULL))
        return;
    audit_new_exception_id(bg1, true);
    audit_new_exception_id(bg2, true);
    audit_new_exception_id(ghost, true);

    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START,
                          bg_args(bg1, "incident 42", "[\"shop\"]", "[]", 3600), "oncall", T0, NULL,
                          &err),
             PV_OK);
    query_text(path,
               "SELECT json_array(kind, decision, team, resource_kind, resource_name, "
               "violations ->> '$[0].event', violations ->> '$[0].breakglass.ends_ms') FROM "
               "decisions ORDER BY rowid DESC LIMIT 1",
               got, sizeof(got));
    snprintf(want, sizeof(want),
             "[\"breakglass\",\"active\",\"*\",\"BreakGlass\",\"%s\",\"breakglass.started\",%lld]",
             bg1, T0 + HOUR_MS);
    T_EQ_STR(got, want);
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START,
                          bg_args(bg2, "dns outage", "[]", "[\"search\",\"infra\"]", 60), "oncall",
                          T0 + 100, NULL, &err),
             PV_OK);
    query_text(path, "SELECT team FROM decisions ORDER BY rowid DESC LIMIT 1", got, sizeof(got));
    T_EQ_STR(got, "search");
    /* Malformed starts. */
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START, bg_args(ghost, NULL, "[\"x\"]", "[]", 60), "oncall",
                          T0, NULL, &err),
             PV_EINVAL);
    T_OK(strstr(err.msg, "malformed break-glass") != NULL);
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START, bg_args(ghost, "r", "[\"x\"]", "[]", 0), "oncall",
                          T0, NULL, &err),
             PV_EINVAL);
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START, bg_args(ghost, "r", "[\"x\"]", "[]", 60), NULL, T0,
                          NULL, &err),
             PV_EINVAL);

    T_EQ_INT(audit_breakglass_open(path, &s, &err), PV_OK);
    T_EQ_INT(s.n, 2);
    {
        static const struct {
            const char *ns, *team;
            int64_t now;
            int want; /* 1: bg1, 2: bg2, 0: none */
        } cases[] = {
            {"shop", "payments", T0 + 1, 1},
            {"shop", NULL, T0 + HOUR_MS - 1, 1},
            {"shop", "payments", T0 + HOUR_MS, 0}, /* not after ends_ms */
            {"other", "search", T0 + 1, 2},
            {"other", "infra", T0 + 60099, 2},
            {"other", "infra", T0 + 60100, 0},
            {NULL, "search", T0 + 1, 2},
            {"other", "payments", T0 + 1, 0},
            {"search", "shop", T0 + 1, 0}, /* a namespace is not a team */
            {NULL, NULL, T0 + 1, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            const struct audit_bg *b = audit_bg_match(&s, cases[i].ns, cases[i].team, cases[i].now);
            const char *w = cases[i].want == 1 ? bg1 : cases[i].want == 2 ? bg2 : NULL;

            if (!T_EQ_STR(b != NULL ? b->id : NULL, w))
                t_diag("  case %zu", i);
        }
    }
    audit_bg_set_fini(&s);

    /* Ending: once; an unknown window is not found. */
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_END, id_args(bg1, "resolved"), "oncall2", T0 + 5000, NULL,
                          &err),
             PV_OK);
    query_text(path,
               "SELECT json_array(kind, operation, decision, actor, violations ->> '$[0].event') "
               "FROM decisions ORDER BY rowid DESC LIMIT 1",
               got, sizeof(got));
    T_EQ_STR(got, "[\"breakglass\",\"END\",\"ended\",\"oncall2\",\"breakglass.ended\"]");
    {
        long long rows = n_rows(path);

        T_EQ_INT(
            submit_event(a, AUDIT_OP_BG_END, id_args(bg1, NULL), "oncall2", T0 + 6000, NULL, &err),
            PV_EINVAL);
        T_OK(strstr(err.msg, "ended already") != NULL);
        T_EQ_INT(submit_event(a, AUDIT_OP_BG_END, id_args(ghost, NULL), "oncall2", T0 + 6000, NULL,
                              &err),
                 PV_ENOENT);
        T_OK(strstr(err.msg, "no break-glass window") != NULL);
        T_EQ_INT(n_rows(path), rows);
    }
    T_EQ_INT(audit_breakglass_open(path, &s, &err), PV_OK);
    T_EQ_INT(s.n, 1);
    T_OK(audit_bg_match(&s, "shop", "payments", T0 + 5001) == NULL);
    T_OK(audit_bg_match(&s, "x", "search", T0 + 5001) != NULL);
    audit_bg_set_fini(&s);
    /* A window ended after its time ended at its time. */
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_END, id_args(bg2, NULL), "paved", T0 + 120000, NULL, &err),
             PV_OK);
    T_EQ_INT(audit_breakglass_open(path, &s, &err), PV_OK);
    T_EQ_INT(s.n, 0);
    audit_bg_set_fini(&s);
    audit_close(a);

    T_EQ_INT(audit_breakglass_list(path, T0 + 200000, &list, &err), PV_OK);
    if (T_EQ_INT(cJSON_GetArraySize(list), 2)) {
        const cJSON *l2 = cJSON_GetArrayItem(list, 0); /* newest first */
        const cJSON *l1 = cJSON_GetArrayItem(list, 1);

        T_EQ_STR(json_str(l2, "id", NULL), bg2);
        T_EQ_INT(jint(l2, "ended_ms"), T0 + 100 + 60000);
        T_EQ_STR(json_str(l2, "ended_by", NULL), "paved");
        T_EQ_STR(json_str(l1, "id", NULL), bg1);
        T_EQ_INT(jint(l1, "ended_ms"), T0 + 5000);
        T_EQ_STR(json_str(l1, "started_by", NULL), "oncall");
        T_EQ_STR(json_str(l1, "reason", NULL), "incident 42");
        T_OK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(l1, "active")));
    }
    cJSON_Delete(list);
    T_EQ_INT(verify_rows(path), 4);
}

/* ---- 4. The quota ledger ---- */

struct quota_probe {
    pthread_mutex_t mu;
    int calls;
    int64_t cpu_limit;
    struct audit_usage before;
    struct audit_usage after;
};

/* Refuses when cpu_millis would grow past the limit. Writer thread. */
static bool quota_cpu(void *arg, const char *team, const struct audit_usage *before,
                      const struct audit_usage *after, char *msg, size_t cap)
{
    struct quota_probe *q = arg;
    bool is_over;

    pthread_mutex_lock(&q->mu);
    q->calls++;
    q->before = *before;
    q->after = *after;
    is_over = after->cpu_millis > q->cpu_limit && after->cpu_millis > before->cpu_millis;
    if (is_over)
        snprintf(msg, cap, "team %s would use %lld of %lld cpu millis", team,
                 (long long)after->cpu_millis, (long long)q->cpu_limit);
    pthread_mutex_unlock(&q->mu);
    return is_over;
}

static int probe_calls(struct quota_probe *q)
{
    int n;

    pthread_mutex_lock(&q->mu);
    n = q->calls;
    pthread_mutex_unlock(&q->mu);
    return n;
}

/* A deploy decision with the required fields (service may be NULL). */
static struct audit_record *deploy_rec(int64_t t, const char *team, const char *service,
                                       const char *ns, const char *path, const char *violations)
{
    struct audit_record *r = xcalloc(1, sizeof(*r));

    audit_new_id(r->id);
    r->time_ms = t;
    r->source = xstrdup("admission");
    r->request_uid = xstrdup("uid-1");
    r->kind = xstrdup("deploy");
    r->operation = xstrdup("CREATE");
    r->team = xstrdup(team);
    r->service = service != NULL ? xstrdup(service) : NULL;
    r->namespace = xstrdup(ns);
    r->resource_kind = xstrdup("Deployment");
    r->resource_name = xstrdup(service != NULL ? service : "x");
    r->actor = xstrdup("system:serviceaccount:ci:deployer");
    r->decision = xstrdup(strcmp(path, "denied") == 0 ? "deny" : "allow");
    r->path = xstrdup(path);
    r->violations = violations != NULL ? xstrdup(violations) : NULL;
    r->bundle_hash = xstrdup("ab12");
    r->latency_us = 42;
    return r;
}

/* Puts a charge on 'r' and the cost details server/charge.c writes. */
static void set_charge(struct audit_record *r, const char *key, const char *cost_center,
                       int64_t cpu, int64_t mem, int64_t envs, double cost, bool is_release,
                       bool is_check_only)
{
    char details[400];

    r->charge = xcalloc(1, sizeof(*r->charge));
    r->charge->key = xstrdup(key);
    r->charge->cost_center = cost_center != NULL ? xstrdup(cost_center) : NULL;
    r->charge->is_release = is_release;
    r->charge->is_check_only = is_check_only;
    r->charge->usage.cpu_millis = cpu;
    r->charge->usage.memory_bytes = mem;
    r->charge->usage.environments = envs;
    r->charge->usage.monthly_cost = cost;
    snprintf(details, sizeof(details),
             "{\"cost\":{\"key\":\"%s\",\"monthly\":%g,\"currency\":\"EUR\"%s%s%s}}", key,
             is_release ? 0.0 : cost, cost_center != NULL ? ",\"cost_center\":\"" : "",
             cost_center != NULL ? cost_center : "", cost_center != NULL ? "\"" : "");
    r->details = xstrdup(details);
    if (is_release) {
        free(r->operation);
        r->operation = xstrdup("DELETE");
    }
}

static void ledger_text(const char *path, const char *key, char *out, size_t cap)
{
    char sql[400];

    snprintf(sql, sizeof(sql),
             "SELECT json_array(team, service, cost_center, cpu_millis, memory_bytes, "
             "environments, monthly_cost, decision_id) FROM ledger WHERE key = '%s'",
             key);
    query_text(path, sql, out, cap);
}

/* The details of decision 'id', parsed. Caller frees. */
static cJSON *details_of(const char *path, const char *id)
{
    char sql[200];
    char text[2000];

    snprintf(sql, sizeof(sql), "SELECT details FROM decisions WHERE id = '%s'", id);
    query_text(path, sql, text, sizeof(text));
    return cJSON_Parse(text);
}

static double path_num(const cJSON *o, const char *a, const char *b)
{
    return jnum(cJSON_GetObjectItemCaseSensitive(o, a), b);
}

static struct audit_usage usage_of(const char *path, const char *team)
{
    struct audit_usage u;
    struct pv_err err = {PV_OK, ""};

    memset(&u, 0xff, sizeof(u));
    if (audit_team_usage(path, team, &u, &err) != PV_OK)
        t_diag("audit_team_usage(%s): %s", team, err.msg);
    return u;
}

/* The costs report, one "group objects cpu envs cost" per line of "current" and one
 * "group decisions objects_cost added" per line of "admitted". */
static void costs_text(const char *path, enum audit_cost_group g, const char *team, char *cur,
                       char *adm, size_t cap)
{
    struct audit_cost_filter f = {team, 0, 0, g};
    struct pv_err err = {PV_OK, ""};
    const char *k = audit_cost_group_name(g);
    cJSON *doc = NULL;
    const cJSON *o;
    size_t len = 0;

    cur[0] = adm[0] = '\0';
    if (audit_costs(path, &f, &doc, &err) != PV_OK) {
        snprintf(cur, cap, "error: %s", err.msg);
        return;
    }
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(doc, "current"))
    {
        if (len < cap)
            len += (size_t)snprintf(cur + len, cap - len, "%s%s %lld %lld %lld %g", len ? "; " : "",
                                    json_str(o, k, NULL), jint(o, "objects"), jint(o, "cpu_millis"),
                                    jint(o, "environments"), jnum(o, "monthly_cost"));
    }
    len = 0;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(doc, "admitted"))
    {
        if (len < cap)
            len +=
                (size_t)snprintf(adm + len, cap - len, "%s%s %lld %g %g", len ? "; " : "",
                                 json_str(o, k, NULL), jint(o, "decisions"),
                                 jnum(o, "monthly_cost_of_objects"), jnum(o, "monthly_cost_added"));
    }
    T_EQ_STR(json_str(doc, "group_by", NULL), k);
    cJSON_Delete(doc);
}

static void test_ledger(void)
{
    static const char k_api[] = "Deployment/shop/api";
    static const char k_web[] = "Deployment/shop/web";
    char path[128];
    char id[AUDIT_ID_LEN + 1];
    char got[600];
    char want[600];
    char adm[600];
    struct quota_probe q;
    struct pv_err err = {PV_OK, ""};
    struct audit_record *r;
    struct audit_usage u;
    struct audit *a;
    cJSON *d;
    pv_status rc;

    memset(&q, 0, sizeof(q));
    pthread_mutex_init(&q.mu, NULL);
    q.cpu_limit = 1000;
    db_path(path, sizeof(path), "ledger.db");
    a = open_store(path, NULL, NULL, quota_cpu, &q);
    if (!T_OK(a != NULL))
        return;

    /* A charge is written to the ledger. */
    r = deploy_rec(T0, "payments", "api", "shop", "golden", NULL);
    set_charge(r, k_api, "cc-1", 300, 1 << 30, 0, 10.0, false, false);
    memcpy(id, r->id, sizeof(id));
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    ledger_text(path, k_api, got, sizeof(got));
    snprintf(want, sizeof(want), "[\"payments\",\"api\",\"cc-1\",300,1073741824,0,10.0,\"%s\"]",
             id);
    T_EQ_STR(got, want);
    T_EQ_INT(probe_calls(&q), 1);
    T_EQ_INT(q.before.cpu_millis, 0);
    T_EQ_INT(q.after.cpu_millis, 300);
    d = details_of(path, id);
    T_EQ_INT((long long)path_num(d, "cost", "monthly_delta"), 10);
    T_EQ_INT((long long)path_num(d, "team_usage", "cpu_millis"), 300);
    T_OK(cJSON_GetObjectItemCaseSensitive(d, "replaced") == NULL);
    cJSON_Delete(d);

    /* The same key again replaces its row: the team holds the new figures. */
    r = deploy_rec(T0 + 1000, "payments", "api", "shop", "golden", NULL);
    set_charge(r, k_api, "cc-1", 500, 1 << 30, 0, 15.0, false, false);
    free(r->operation);
    r->operation = xstrdup("UPDATE");
    memcpy(id, r->id, sizeof(id));
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM ledger"), 1);
    u = usage_of(path, "payments");
    T_EQ_INT(u.cpu_millis, 500);
    T_EQ_INT(u.memory_bytes, 1 << 30);
    T_OK(u.monthly_cost == 15.0);
    T_EQ_INT(q.before.cpu_millis, 300);
    T_EQ_INT(q.after.cpu_millis, 500);
    d = details_of(path, id);
    T_EQ_INT((long long)path_num(d, "cost", "monthly_delta"), 5);
    T_EQ_INT((long long)path_num(d, "replaced", "cpu_millis"), 300);
    T_EQ_INT((long long)path_num(d, "team_usage", "cpu_millis"), 500);
    cJSON_Delete(d);

    /* A second object of the team adds up. */
    r = deploy_rec(T0 + 2000, "payments", "web", "shop", "golden", NULL);
    set_charge(r, k_web, "cc-2", 400, 1 << 29, 0, 8.0, false, false);
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    u = usage_of(path, "payments");
    T_EQ_INT(u.cpu_millis, 900);
    T_EQ_INT(u.memory_bytes, (1 << 30) + (1 << 29));
    T_OK(u.monthly_cost == 23.0);

    /* A dry run is checked but charges nothing. */
    r = deploy_rec(T0 + 3000, "payments", "batch", "shop", "golden", NULL);
    set_charge(r, "Deployment/shop/batch", NULL, 50, 0, 0, 1.0, false, true);
    r->is_dry_run = true;
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    T_EQ_INT(probe_calls(&q), 4);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM ledger"), 2);
    T_EQ_INT(usage_of(path, "payments").cpu_millis, 900);

    /* Over the quota: committed as a denial, the ledger unchanged, and a
     * decision.denied message for the endpoint that watches "quota". */
    r = deploy_rec(T0 + 4000, "payments", "big", "shop", "off-road",
                   "[{\"binding\":\"no-latest\",\"policy\":\"no-latest\",\"enforcement\":\"warn\","
                   "\"message\":\"pin the tag\"}]");
    set_charge(r, "Deployment/shop/big", "cc-1", 200, 0, 0, 4.0, false, false);
    r->notify_routes = xstrdup("[{\"endpoint\":\"e4\",\"events\":[\"decision.denied\"],"
                               "\"policies\":[\"quota\"]}]");
    memcpy(id, r->id, sizeof(id));
    rc = audit_submit(a, r, in_ms(10000), &err);
    T_EQ_INT(rc, PV_EFULL);
    T_EQ_STR(err.msg, "team payments would use 1100 of 1000 cpu millis");
    {
        char sql[600];

        snprintf(sql, sizeof(sql),
                 "SELECT json_array(decision, path, json_array_length(violations), violations ->> "
                 "'$[1].policy', violations ->> '$[1].enforcement', violations ->> '$[1].message', "
                 "details ->> '$.quota_exceeded', (SELECT group_concat(policy, ',') FROM (SELECT "
                 "policy FROM decision_policies WHERE decision_rowid = decisions.rowid ORDER BY "
                 "policy))) FROM decisions WHERE id = '%s'",
                 id);
        query_text(path, sql, got, sizeof(got));
        T_EQ_STR(got, "[\"deny\",\"denied\",2,\"quota\",\"deny\",\"team payments would use 1100 "
                      "of 1000 cpu millis\",\"team payments would use 1100 of 1000 cpu "
                      "millis\",\"no-latest,quota\"]");
    }
    T_EQ_INT(query_long(path, "SELECT count(*) FROM ledger"), 2);
    T_EQ_INT(usage_of(path, "payments").cpu_millis, 900);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM outbox WHERE endpoint = 'e4' AND event = "
                              "'decision.denied' AND body ->> '$.decision.policies[1]' = 'quota'"),
             1);

    /* The same without other violations: "quota" is its only policy. */
    r = deploy_rec(T0 + 4100, "payments", "big", "shop", "golden", NULL);
    set_charge(r, "Deployment/shop/big", "cc-1", 200, 0, 0, 4.0, false, false);
    memcpy(id, r->id, sizeof(id));
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_EFULL);
    {
        char sql[400];

        snprintf(sql, sizeof(sql),
                 "SELECT json_array(decision, path, violations ->> '$[0].policy', (SELECT "
                 "group_concat(policy, ',') FROM decision_policies WHERE decision_rowid = "
                 "decisions.rowid)) FROM decisions WHERE id = '%s'",
                 id);
        query_text(path, sql, got, sizeof(got));
        T_EQ_STR(got, "[\"deny\",\"denied\",\"quota\",\"quota\"]");
    }
    T_EQ_INT(probe_calls(&q), 6);
    T_EQ_INT(usage_of(path, "payments").cpu_millis, 900);

    /* A denied decision charges nothing (and asks no quota). */
    r = deploy_rec(T0 + 4500, "payments", "big", "shop", "denied", NULL);
    set_charge(r, "Deployment/shop/big", NULL, 10, 0, 0, 1.0, false, false);
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    T_EQ_INT(probe_calls(&q), 6);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM ledger"), 2);

    /* A forced charge (break-glass) is written past the quota, without asking; its
     * release takes it back. */
    r = deploy_rec(T0 + 4600, "payments", "big", "shop", "breakglass", NULL);
    set_charge(r, "Deployment/shop/big", "cc-1", 200, 0, 0, 4.0, false, false);
    r->charge->is_forced = true;
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    T_EQ_INT(probe_calls(&q), 6);
    T_EQ_INT(usage_of(path, "payments").cpu_millis, 1100);
    r = deploy_rec(T0 + 4700, "payments", "big", "shop", "golden", NULL);
    set_charge(r, "Deployment/shop/big", "cc-1", 200, 0, 0, 4.0, true, false);
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    T_EQ_INT(usage_of(path, "payments").cpu_millis, 900);

    /* A release deletes the key's row, without a quota check. */
    r = deploy_rec(T0 + 5000, "payments", "web", "shop", "golden", NULL);
    set_charge(r, k_web, "cc-2", 400, 1 << 29, 0, 8.0, true, false);
    memcpy(id, r->id, sizeof(id));
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    T_EQ_INT(probe_calls(&q), 6);
    ledger_text(path, k_web, got, sizeof(got));
    T_EQ_STR(got, "");
    u = usage_of(path, "payments");
    T_EQ_INT(u.cpu_millis, 500);
    T_OK(u.monthly_cost == 15.0);
    d = details_of(path, id);
    T_EQ_INT((long long)path_num(d, "cost", "monthly_delta"), -8);
    T_EQ_INT((long long)path_num(d, "team_usage", "cpu_millis"), 500);
    cJSON_Delete(d);

    /* Another team. */
    r = deploy_rec(T0 + 6000, "search", "review", "review-42", "golden", NULL);
    set_charge(r, "env/review-42", "cc-2", 0, 0, 1, 3.5, false, false);
    free(r->kind);
    r->kind = xstrdup("provision");
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    u = usage_of(path, "search");
    T_EQ_INT(u.environments, 1);
    T_OK(u.monthly_cost == 3.5);
    u = usage_of(path, "nobody");
    T_EQ_INT(u.cpu_millis, 0);
    T_EQ_INT(u.environments, 0);
    T_OK(u.monthly_cost == 0.0);
    audit_close(a);

    /* Costs: what the ledger holds now, and what the allowed, non-dry-run decisions
     * with a cost added. */
    costs_text(path, AUDIT_COST_BY_TEAM, NULL, got, adm, sizeof(got));
    T_EQ_STR(got, "payments 1 500 0 15; search 1 0 1 3.5");
    T_EQ_STR(adm, "payments 6 37 15; search 1 3.5 3.5");
    costs_text(path, AUDIT_COST_BY_SERVICE, NULL, got, adm, sizeof(got));
    T_EQ_STR(got, "payments/api 1 500 0 15; search/review 1 0 1 3.5");
    T_EQ_STR(adm, "payments/api 2 25 15; search/review 1 3.5 3.5; payments/big 2 4 0; "
                  "payments/web 2 8 0");
    costs_text(path, AUDIT_COST_BY_COST_CENTER, NULL, got, adm, sizeof(got));
    T_EQ_STR(got, "cc-1 1 500 0 15; cc-2 1 0 1 3.5");
    T_EQ_STR(adm, "cc-1 4 29 15; cc-2 3 11.5 3.5");
    costs_text(path, AUDIT_COST_BY_TEAM, "search", got, adm, sizeof(got));
    T_EQ_STR(got, "search 1 0 1 3.5");
    T_EQ_STR(adm, "search 1 3.5 3.5");
    T_EQ_INT(verify_rows(path), 11);
    pthread_mutex_destroy(&q.mu);
}

/* A charged record refused by the writer (a duplicate decision id) leaves no charge;
 * and with async durability a charged record is still answered after its commit, so a
 * quota denial reaches the caller. */
static void test_ledger_regressions(void)
{
    char path[128];
    struct pv_err err = {PV_OK, ""};
    struct quota_probe q;
    struct audit_options opt;
    struct audit_record *r1;
    struct audit_record *r2;
    struct audit *a;
    char id[AUDIT_ID_LEN + 1];

    memset(&q, 0, sizeof(q));
    pthread_mutex_init(&q.mu, NULL);
    q.cpu_limit = 1000;
    db_path(path, sizeof(path), "ledger-regress.db");
    a = open_store(path, NULL, NULL, quota_cpu, &q);
    if (!T_OK(a != NULL))
        return;
    r1 = deploy_rec(T0, "payments", "api", "shop", "golden", NULL);
    set_charge(r1, "Deployment/shop/api", NULL, 300, 0, 0, 3.0, false, false);
    memcpy(id, r1->id, sizeof(id));
    T_EQ_INT(audit_submit(a, r1, UINT64_MAX, &err), PV_OK);
    r2 = deploy_rec(T0 + 1, "payments", "web", "shop", "golden", NULL);
    memcpy(r2->id, id, sizeof(id)); /* the same decision id: refused */
    set_charge(r2, "Deployment/shop/web", NULL, 400, 0, 0, 4.0, false, false);
    T_EQ_INT(audit_submit(a, r2, UINT64_MAX, &err), PV_EINVAL);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM ledger WHERE key = 'Deployment/shop/web'"), 0);
    T_EQ_INT(query_long(path, "SELECT coalesce(sum(cpu_millis), 0) FROM ledger"), 300);
    audit_close(a);

    db_path(path, sizeof(path), "ledger-async.db");
    memset(&opt, 0, sizeof(opt));
    opt.path = path;
    opt.is_async = true;
    opt.quota_check = quota_cpu;
    opt.quota_arg = &q;
    T_EQ_INT(audit_open(&a, &opt, &err), PV_OK);
    if (a == NULL)
        return;
    r1 = deploy_rec(T0, "payments", "big", "shop", "golden", NULL);
    set_charge(r1, "Deployment/shop/big", NULL, 5000, 0, 0, 50.0, false, false);
    T_EQ_INT(audit_submit(a, r1, UINT64_MAX, &err), PV_EFULL);
    T_OK(strstr(err.msg, "cpu") != NULL);
    audit_close(a);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM decisions WHERE decision = 'deny'"), 1);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM ledger"), 0);
    pthread_mutex_destroy(&q.mu);
}

/* ---- 5. The outbox ---- */

struct outbox_probe {
    pthread_mutex_t mu;
    int calls;
};

static void on_outbox(void *arg)
{
    struct outbox_probe *p = arg;

    pthread_mutex_lock(&p->mu);
    p->calls++;
    pthread_mutex_unlock(&p->mu);
}

static int outbox_calls(struct outbox_probe *p)
{
    int n;

    pthread_mutex_lock(&p->mu);
    n = p->calls;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* The outbox rows after 'after_id' as "endpoint event; ...". */
static void outbox_text(const char *path, long long after_id, char *out, size_t cap)
{
    char sql[300];

    snprintf(sql, sizeof(sql),
             "SELECT coalesce(group_concat(endpoint || ' ' || event, '; '), '') FROM (SELECT * "
             "FROM outbox WHERE id > %lld ORDER BY id)",
             after_id);
    query_text(path, sql, out, cap);
}

static long long outbox_max(const char *path)
{
    return query_long(path, "SELECT coalesce(max(id), 0) FROM outbox");
}

static const char exc_routes[] = "[{\"endpoint\":\"e1\",\"events\":[\"exception.*\"]},"
                                 "{\"endpoint\":\"e2\",\"events\":[\"breakglass.started\"]}]";
static const char deny_routes[] = "[{\"endpoint\":\"e3\",\"events\":[\"decision.denied\"],"
                                  "\"policies\":[\"cost-tags\"]}]";

static void test_outbox(void)
{
    char path[128];
    char id[AUDIT_EXC_ID_LEN + 1];
    char bg[AUDIT_EXC_ID_LEN + 1];
    char dec[AUDIT_ID_LEN + 1];
    char got[600];
    char want[600];
    char sql[400];
    struct outbox_probe p;
    struct pv_err err = {PV_OK, ""};
    struct audit_record *r;
    struct audit *a;
    long long mark;

    memset(&p, 0, sizeof(p));
    pthread_mutex_init(&p.mu, NULL);
    db_path(path, sizeof(path), "outbox.db");
    a = open_store(path, on_outbox, &p, NULL, NULL);
    if (!T_OK(a != NULL))
        return;
    audit_new_exception_id(id, false);
    audit_new_exception_id(bg, true);

    /* An exception request: e1 wants exception.*, e2 only breakglass.started. */
    r = event_rec(AUDIT_OP_EXC_REQUEST,
                  request_args(id, "payments", "api", "shop", "[\"no-latest\"]", 3600, false),
                  "alice", T0, exc_routes);
    memcpy(dec, r->id, sizeof(dec));
    T_EQ_INT(audit_submit_op(a, r, in_ms(10000), &err), PV_OK);
    outbox_text(path, 0, got, sizeof(got));
    T_EQ_STR(got, "e1 exception.requested");
    snprintf(sql, sizeof(sql),
             "SELECT json_array(body ->> '$.event', body ->> '$.audit_id', body ->> "
             "'$.exception.id', body ->> '$.exception.state', body ->> '$.time', state, "
             "created_ms) FROM outbox WHERE endpoint = 'e1'");
    query_text(path, sql, got, sizeof(got));
    snprintf(want, sizeof(want),
             "[\"exception.requested\",\"%s\",\"%s\",\"pending\",\"2027-01-15T08:00:00Z\","
             "\"pending\",%lld]",
             dec, id, T0);
    T_EQ_STR(got, want);
    query_text(path, "SELECT body ->> '$.summary' FROM outbox", got, sizeof(got));
    T_OK(strstr(got, "alice requested exception") != NULL && strstr(got, "no-latest") != NULL);
    T_EQ_INT(outbox_calls(&p), 1);

    /* A refused transition puts nothing in the outbox. */
    mark = outbox_max(path);
    T_EQ_INT(
        submit_event(a, AUDIT_OP_EXC_APPROVE, id_args(id, NULL), "alice", T0 + 1, exc_routes, &err),
        PV_ECONFIG);
    outbox_text(path, mark, got, sizeof(got));
    T_EQ_STR(got, "");
    T_EQ_INT(outbox_calls(&p), 1);
    /* The approval goes to e1 only. */
    T_EQ_INT(
        submit_event(a, AUDIT_OP_EXC_APPROVE, id_args(id, NULL), "bob", T0 + 2, exc_routes, &err),
        PV_OK);
    outbox_text(path, mark, got, sizeof(got));
    T_EQ_STR(got, "e1 exception.approved");
    T_EQ_INT(outbox_calls(&p), 2);

    /* Break-glass: e2 only. */
    mark = outbox_max(path);
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START, bg_args(bg, "incident", "[\"shop\"]", "[]", 600),
                          "oncall", T0 + 3, exc_routes, &err),
             PV_OK);
    outbox_text(path, mark, got, sizeof(got));
    T_EQ_STR(got, "e2 breakglass.started");
    snprintf(sql, sizeof(sql), "SELECT body ->> '$.breakglass.id' FROM outbox WHERE id > %lld",
             mark);
    query_text(path, sql, got, sizeof(got));
    T_EQ_STR(got, bg);
    T_EQ_INT(outbox_calls(&p), 3);
    /* breakglass.ended is wanted by nobody: no row, no wake-up. */
    mark = outbox_max(path);
    T_EQ_INT(
        submit_event(a, AUDIT_OP_BG_END, id_args(bg, NULL), "oncall", T0 + 4, exc_routes, &err),
        PV_OK);
    outbox_text(path, mark, got, sizeof(got));
    T_EQ_STR(got, "");
    T_EQ_INT(outbox_calls(&p), 3);

    /* A denial of a watched policy. */
    mark = outbox_max(path);
    r = deploy_rec(T0 + 5, "payments", "api", "shop", "denied",
                   "[{\"binding\":\"cost-tags\",\"policy\":\"cost-tags\",\"enforcement\":\"deny\","
                   "\"message\":\"label cost-center missing\"}]");
    r->notify_routes = xstrdup(deny_routes);
    memcpy(dec, r->id, sizeof(dec));
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    outbox_text(path, mark, got, sizeof(got));
    T_EQ_STR(got, "e3 decision.denied");
    snprintf(sql, sizeof(sql),
             "SELECT json_array(body ->> '$.event', body ->> '$.decision.id', body ->> "
             "'$.decision.policies[0]', body ->> '$.decision.violations[0].message', body ->> "
             "'$.decision.namespace') FROM outbox WHERE id > %lld",
             mark);
    query_text(path, sql, got, sizeof(got));
    snprintf(want, sizeof(want),
             "[\"decision.denied\",\"%s\",\"cost-tags\",\"label cost-center missing\",\"shop\"]",
             dec);
    T_EQ_STR(got, want);
    T_EQ_INT(outbox_calls(&p), 4);

    /* A denial of another policy, and an allowed decision with a cost-tags warning:
     * nothing. */
    mark = outbox_max(path);
    r = deploy_rec(T0 + 6, "payments", "api", "shop", "denied",
                   "[{\"binding\":\"psa\",\"policy\":\"psa-restricted\",\"enforcement\":\"deny\","
                   "\"message\":\"runs as root\"}]");
    r->notify_routes = xstrdup(deny_routes);
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    r = deploy_rec(T0 + 7, "payments", "api", "shop", "off-road",
                   "[{\"binding\":\"cost-tags\",\"policy\":\"cost-tags\",\"enforcement\":\"warn\","
                   "\"message\":\"label cost-center missing\"}]");
    r->notify_routes = xstrdup(deny_routes);
    T_EQ_INT(audit_submit(a, r, in_ms(10000), &err), PV_OK);
    /* An event no route of deny_routes wants. */
    T_EQ_INT(
        submit_event(a, AUDIT_OP_EXC_REMIND, id_args(id, NULL), "paved", T0 + 8, deny_routes, &err),
        PV_OK);
    outbox_text(path, mark, got, sizeof(got));
    T_EQ_STR(got, "");
    T_EQ_INT(outbox_calls(&p), 4);
    audit_close(a);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM outbox"), 4);
    T_EQ_INT(verify_rows(path), 8);
    pthread_mutex_destroy(&p.mu);
}

/* ---- 6. decide_apply_exceptions ---- */

static char viol_text[] = "the finding";
static char *viol_msgs[] = {viol_text};

static const struct vm_policy pol_latest = {
    .id = (char[]){"no-latest"},
    .title = (char[]){"Images are pinned"},
    .file = (char[]){"policies/no_latest.lua"},
    .is_golden_path = true,
    .enforcement = VM_DENY,
    .exceptions_allowed = true,
    .exceptions_max_days = 30,
};
static const struct vm_policy pol_psa = {
    .id = (char[]){"psa-restricted"},
    .title = (char[]){"Pods are restricted"},
    .file = (char[]){"policies/psa.lua"},
    .is_golden_path = true,
    .enforcement = VM_DENY,
    .exceptions_allowed = false,
};
static const struct vm_policy pol_tags = {
    .id = (char[]){"cost-tags"},
    .title = (char[]){"Workloads carry cost tags"},
    .file = (char[]){"policies/cost_tags.lua"},
    .is_golden_path = true,
    .enforcement = VM_WARN,
    .exceptions_allowed = true,
    .exceptions_max_days = 3,
};

static const struct cfg_binding bind_latest = {.id = "no-latest", .policy = "no-latest"};
static const struct cfg_binding bind_psa = {.id = "psa", .policy = "psa-restricted"};
static const struct cfg_binding bind_tags = {.id = "cost-tags", .policy = "cost-tags"};

static void item_set(struct decide_item *it, const struct cfg_binding *b, const struct vm_policy *p,
                     enum vm_enforcement e, bool is_violated)
{
    memset(it, 0, sizeof(*it));
    it->binding = b;
    it->policy = p;
    it->enforcement = e;
    it->is_violated = is_violated;
    it->r.outcome = VM_OK;
    it->r.violations = is_violated ? viol_msgs : NULL;
    it->r.n_violations = is_violated ? 1 : 0;
}

/* The counts and path decide_eval gives the items before exceptions. */
static void tally(struct decision *d, struct decide_item *items, size_t n)
{
    bool golden = false;

    memset(d, 0, sizeof(*d));
    d->items = items;
    d->n_items = n;
    for (size_t i = 0; i < n; i++) {
        if (items[i].r.outcome >= VM_ERROR)
            d->n_errors++;
        if (!items[i].is_violated)
            continue;
        if (items[i].enforcement == VM_DENY)
            d->n_deny++;
        else if (items[i].enforcement == VM_WARN)
            d->n_warn++;
        else
            d->n_audit++;
        if (items[i].policy->is_golden_path)
            golden = true;
    }
    d->path = d->n_deny > 0 ? DECIDE_DENIED : golden ? DECIDE_OFF_ROAD : DECIDE_GOLDEN;
    d->is_allowed = d->n_deny == 0;
}

static void test_decide(void)
{
    static const char exc_doc[] =
        "[{\"id\":\"EXC-LATEST\",\"team\":\"payments\",\"service\":\"api\",\"namespace\":"
        "\"shop\",\"policies\":[\"no-latest\",\"psa-restricted\"],\"state\":\"approved\","
        "\"expires_ms\":2000},"
        "{\"id\":\"EXC-TAGS\",\"team\":\"payments\",\"service\":\"api\",\"policies\":"
        "[\"cost-tags\"],\"state\":\"approved\",\"expires_ms\":5000}]";
    char path[128];
    char bg_ns[AUDIT_EXC_ID_LEN + 1];
    char bg_team[AUDIT_EXC_ID_LEN + 1];
    char hint[400];
    struct pv_err err = {PV_OK, ""};
    struct audit_exc_set exc = {0};
    struct audit_bg_set bg = {0};
    struct audit_bg_set bg_none = {0};
    struct decide_item items[3];
    struct decision d;
    struct audit *a;
    cJSON *doc = cJSON_Parse(exc_doc);
    cJSON *obj = cJSON_CreateObject();
    cJSON *subj = cJSON_Parse("{\"team\":\"payments\",\"service\":\"api\"}");
    cJSON *subj_search = cJSON_Parse("{\"team\":\"search\",\"service\":\"api\"}");
    struct pv_request req = {"deploy", "CREATE", "admission", "shop", false,
                             obj,      NULL,     subj,        NULL,   NULL};
    struct pv_request req_other = req;

    req_other.namespace = "other";
    T_EQ_INT(audit_exc_set_from_json(doc, &exc, &err), PV_OK);
    cJSON_Delete(doc);

    /* Real break-glass windows: one for namespace shop, one for team search, from T0
     * for an hour. */
    db_path(path, sizeof(path), "decide.db");
    a = open_store(path, NULL, NULL, NULL, NULL);
    if (!T_OK(a != NULL))
        goto done;
    audit_new_exception_id(bg_ns, true);
    audit_new_exception_id(bg_team, true);
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START,
                          bg_args(bg_ns, "incident", "[\"shop\"]", "[]", 3600), "oncall", T0, NULL,
                          &err),
             PV_OK);
    T_EQ_INT(submit_event(a, AUDIT_OP_BG_START,
                          bg_args(bg_team, "incident", "[]", "[\"search\"]", 3600), "oncall", T0,
                          NULL, &err),
             PV_OK);
    audit_close(a);
    T_EQ_INT(audit_breakglass_open(path, &bg, &err), PV_OK);

    /* A covered deny: path exception, allowed. */
    item_set(&items[0], &bind_latest, &pol_latest, VM_DENY, true);
    item_set(&items[1], &bind_psa, &pol_psa, VM_DENY, false);
    tally(&d, items, 2);
    T_EQ_INT(d.path, DECIDE_DENIED);
    decide_apply_exceptions(&d, &req, &exc, &bg_none, 1500);
    T_EQ_INT(d.path, DECIDE_EXCEPTION);
    T_EQ_STR(decide_path_name(d.path), "exception");
    T_OK(d.is_allowed);
    T_EQ_INT(d.n_deny, 0);
    T_EQ_INT(d.n_covered, 1);
    T_OK(items[0].is_covered);
    T_EQ_STR(items[0].exception_id, "EXC-LATEST");
    T_EQ_INT(items[0].exception_until_ms, 2000);
    T_OK(!items[0].is_breakglass);
    T_EQ_INT(items[0].enforcement, VM_DENY);
    T_OK(!items[1].is_covered);

    /* A covered deny beside an uncovered golden-path warning: the request is allowed,
     * but not everything golden-path was covered, so it is off-road, not exception. */
    item_set(&items[0], &bind_latest, &pol_latest, VM_DENY, true);
    item_set(&items[1], &bind_tags, &pol_tags, VM_WARN, true);
    tally(&d, items, 2);
    decide_apply_exceptions(&d, &req_other, &exc, &bg_none, 1500);
    T_EQ_INT(d.path, DECIDE_DENIED); /* EXC-LATEST is for namespace shop only */
    item_set(&items[0], &bind_latest, &pol_latest, VM_DENY, true);
    item_set(&items[1], &bind_tags, &pol_tags, VM_WARN, true);
    tally(&d, items, 2);
    decide_apply_exceptions(&d, &req, &exc, &bg_none, 4000);
    T_EQ_INT(d.path, DECIDE_DENIED); /* EXC-LATEST expired at 2000 */
    {
        struct audit_exc_set only_latest = {exc.items, 1};

        item_set(&items[0], &bind_latest, &pol_latest, VM_DENY, true);
        item_set(&items[1], &bind_tags, &pol_tags, VM_WARN, true);
        tally(&d, items, 2);
        decide_apply_exceptions(&d, &req, &only_latest, &bg_none, 1500);
        T_OK(d.is_allowed);
        T_OK(items[0].is_covered);
        T_OK(!items[1].is_covered);
        T_EQ_INT(d.path, DECIDE_OFF_ROAD);
    }

    /* The same exception once it expired: denied. */
    item_set(&items[0], &bind_latest, &pol_latest, VM_DENY, true);
    tally(&d, items, 1);
    decide_apply_exceptions(&d, &req, &exc, NULL, 2000);
    T_EQ_INT(d.path, DECIDE_DENIED);
    T_OK(!d.is_allowed);
    T_OK(!items[0].is_covered);
    T_EQ_STR(items[0].exception_id, "");

    /* A policy that allows no exceptions is never covered, even by an exception that
     * names it. */
    item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
    tally(&d, items, 1);
    decide_apply_exceptions(&d, &req, &exc, NULL, 1500);
    T_EQ_INT(d.path, DECIDE_DENIED);
    T_OK(!d.is_allowed);
    T_EQ_INT(d.n_deny, 1);
    T_EQ_INT(d.n_covered, 0);
    T_OK(!items[0].is_covered);

    /* A policy error that denies is not covered either. */
    item_set(&items[0], &bind_latest, &pol_latest, VM_DENY, true);
    items[0].r.outcome = VM_ERROR;
    items[0].r.violations = NULL;
    items[0].r.n_violations = 0;
    tally(&d, items, 1);
    decide_apply_exceptions(&d, &req, &exc, NULL, 1500);
    T_EQ_INT(d.path, DECIDE_DENIED);
    T_OK(!items[0].is_covered);

    /* An uncovered deny in a namespace with a break-glass window: a warning. */
    item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
    item_set(&items[1], &bind_latest, &pol_latest, VM_DENY, true);
    tally(&d, items, 2);
    decide_apply_exceptions(&d, &req, &exc, &bg, T0 + 1000);
    T_EQ_INT(d.path, DECIDE_BREAKGLASS);
    T_EQ_STR(decide_path_name(d.path), "breakglass");
    T_OK(d.is_allowed);
    T_EQ_INT(d.n_deny, 0);
    T_EQ_INT(d.n_warn, 2);
    T_EQ_STR(d.breakglass_id, bg_ns);
    T_EQ_INT(items[0].enforcement, VM_WARN);
    T_OK(items[0].is_breakglass);
    T_OK(items[1].is_breakglass); /* EXC-LATEST expired long before T0 */

    /* Covered and uncovered denies under a window: the covered one stays as it was. */
    item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
    item_set(&items[1], &bind_latest, &pol_latest, VM_DENY, true);
    tally(&d, items, 2);
    decide_apply_exceptions(&d, &req, &exc, NULL, 1500);
    T_EQ_INT(d.path, DECIDE_DENIED); /* no window */
    T_EQ_INT(d.n_deny, 1);
    T_EQ_INT(d.n_covered, 1);
    T_OK(items[1].is_covered);
    T_OK(!items[0].is_covered);
    item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
    item_set(&items[1], &bind_latest, &pol_latest, VM_DENY, true);
    tally(&d, items, 2);
    if (T_EQ_INT(bg.n, 2)) {
        /* The same windows, moved to end at 1600. */
        struct audit_bg_set early = bg;
        struct audit_bg copy[2];

        copy[0] = bg.items[0];
        copy[1] = bg.items[1];
        copy[0].ends_ms = 1600;
        copy[1].ends_ms = 1600;
        early.items = copy;
        decide_apply_exceptions(&d, &req, &exc, &early, 1500);
        T_EQ_INT(d.path, DECIDE_BREAKGLASS);
        T_OK(d.is_allowed);
        T_EQ_INT(d.n_covered, 1);
        T_OK(items[1].is_covered);
        T_OK(!items[1].is_breakglass);
        T_EQ_INT(items[1].enforcement, VM_DENY);
        T_OK(items[0].is_breakglass);
        T_EQ_INT(items[0].enforcement, VM_WARN);
    }

    /* A window by team; none for another namespace and team; none after its end. */
    {
        struct pv_request r2 = req_other;

        r2.subject = subj_search;
        item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
        tally(&d, items, 1);
        decide_apply_exceptions(&d, &r2, &exc, &bg, T0 + 1000);
        T_EQ_INT(d.path, DECIDE_BREAKGLASS);
        T_EQ_STR(d.breakglass_id, bg_team);
    }
    item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
    tally(&d, items, 1);
    decide_apply_exceptions(&d, &req_other, &exc, &bg, T0 + 1000);
    T_EQ_INT(d.path, DECIDE_DENIED);
    T_OK(!d.is_allowed);
    T_OK(!items[0].is_breakglass);
    T_EQ_INT(items[0].enforcement, VM_DENY);
    T_EQ_STR(d.breakglass_id, "");
    item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
    tally(&d, items, 1);
    decide_apply_exceptions(&d, &req, &exc, &bg, T0 + HOUR_MS);
    T_EQ_INT(d.path, DECIDE_DENIED);
    item_set(&items[0], &bind_psa, &pol_psa, VM_DENY, true);
    tally(&d, items, 1);
    decide_apply_exceptions(&d, &req, NULL, NULL, T0 + 1000);
    T_EQ_INT(d.path, DECIDE_DENIED);
    T_OK(!d.is_allowed);

    /* A warn-only uncovered golden-path violation: off-road. */
    item_set(&items[0], &bind_tags, &pol_tags, VM_WARN, true);
    item_set(&items[1], &bind_psa, &pol_psa, VM_DENY, false);
    tally(&d, items, 2);
    decide_apply_exceptions(&d, &req, &exc, &bg, 6000);
    T_EQ_INT(d.path, DECIDE_OFF_ROAD);
    T_OK(d.is_allowed);
    T_EQ_INT(d.n_warn, 1);
    T_OK(!items[0].is_covered);
    T_OK(!items[0].is_breakglass);
    /* ... which an exception covers while it lasts: path exception, nothing warned. */
    item_set(&items[0], &bind_tags, &pol_tags, VM_WARN, true);
    tally(&d, items, 2);
    decide_apply_exceptions(&d, &req_other, &exc, &bg, 4000);
    T_EQ_INT(d.path, DECIDE_EXCEPTION);
    T_EQ_INT(d.n_warn, 0);
    T_EQ_STR(items[0].exception_id, "EXC-TAGS");
    /* Nothing violated: golden. */
    item_set(&items[0], &bind_tags, &pol_tags, VM_WARN, false);
    tally(&d, items, 2);
    decide_apply_exceptions(&d, &req, &exc, &bg, T0 + 1000);
    T_EQ_INT(d.path, DECIDE_GOLDEN);
    T_OK(d.is_allowed);
    T_EQ_STR(d.breakglass_id, "");

    /* The hint a denial carries. */
    decide_exception_hint(&pol_latest, &req, hint, sizeof(hint));
    T_EQ_STR(hint, "to request an exception: paved exceptions request --team payments --service "
                   "api --namespace shop --policy no-latest --duration 7d --justification '...'");
    decide_exception_hint(&pol_tags, &req, hint, sizeof(hint));
    T_OK(strstr(hint, "--policy cost-tags --duration 3d ") != NULL);
    {
        struct pv_request bare = req;

        bare.namespace = NULL;
        bare.subject = NULL;
        decide_exception_hint(&pol_latest, &bare, hint, sizeof(hint));
        T_EQ_STR(hint, "to request an exception: paved exceptions request --team TEAM --service "
                       "SERVICE --policy no-latest --duration 7d --justification '...'");
    }
    decide_exception_hint(&pol_psa, &req, hint, sizeof(hint));
    T_EQ_STR(hint, "policy psa-restricted allows no exceptions");

done:
    audit_bg_set_fini(&bg);
    audit_exc_set_fini(&exc);
    cJSON_Delete(obj);
    cJSON_Delete(subj);
    cJSON_Delete(subj_search);
}

/* ---- 7. Durations ---- */

static void test_duration(void)
{
    static const struct {
        const char *s;
        bool is_valid;
        int64_t seconds;
        const char *formatted; /* duration_format(seconds) */
    } cases[] = {
        {"90s", true, 90, "90s"},
        {"30m", true, 1800, "30m"},
        {"90m", true, 5400, "90m"},
        {"4h", true, 14400, "4h"},
        {"7d", true, 604800, "7d"},
        {"2w", true, 1209600, "14d"},
        {"1s", true, 1, "1s"},
        {"60s", true, 60, "1m"},
        {"24h", true, 86400, "1d"},
        {"3660d", true, 3660LL * 86400, "3660d"}, /* ten years of 366 days */
        {"3661d", false, 0, NULL},
        {"", false, 0, NULL},
        {"7", false, 0, NULL},
        {"7x", false, 0, NULL},
        {"7D", false, 0, NULL},
        {"7dd", false, 0, NULL},
        {" 7d", false, 0, NULL},
        {"d", false, 0, NULL},
        {"+7d", false, 0, NULL},
        {"-1d", false, 0, NULL},
        {"0d", false, 0, NULL},
        {"0s", false, 0, NULL},
        {"1.5h", false, 0, NULL},
        {"99999999999d", false, 0, NULL},
        {"99999999999999999999s", false, 0, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = -7;
        bool ok = duration_parse(cases[i].s, &got);
        char buf[32];
        int64_t back = -7;

        if (!T_EQ_INT(ok, cases[i].is_valid))
            t_diag("  \"%s\"", cases[i].s);
        if (!cases[i].is_valid) {
            T_EQ_INT(got, -7); /* left alone */
            continue;
        }
        T_EQ_INT(got, cases[i].seconds);
        duration_format(got, buf, sizeof(buf));
        T_EQ_STR(buf, cases[i].formatted);
        T_OK(duration_parse(buf, &back) && back == got);
    }
    T_OK(!duration_parse(NULL, NULL));
}

static void remove_dir(const char *d)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    char p[512];

    if (dp == NULL)
        return;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", d, e->d_name);
        unlink(p);
    }
    closedir(dp);
    rmdir(d);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/paved-exc.XXXXXX",
             tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_exc_states();
    test_matching();
    test_breakglass();
    test_ledger();
    test_ledger_regressions();
    test_outbox();
    test_decide();
    test_duration();
    remove_dir(dir);
    return t_done();
}
