/* audit/exceptions.c: exceptions and break-glass windows in the store. Owns their
 * state machine (applied by the writer in the transaction that seals the transition's
 * audit row) and their readers (read-only, beside a running server). */
#include "exceptions.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonutil.h"
#include "schema.h"
#include "xalloc.h"

#define LIST_LIMIT_DEFAULT 1000
#define DURATION_MAX_S (10LL * 366 * 86400) /* as duration_parse: ten years */

/* Columns of `exceptions` in the order exc_json reads them. */
#define EXC_COLUMNS                                                                                \
    "id, team, service, namespace, policies, justification, ticket, requested_by, "                \
    "requested_ms, duration_s, state, is_self_service, decided_by, decided_ms, reason, "           \
    "expires_ms, ended_ms, reminded_ms"

#define BG_COLUMNS                                                                                 \
    "id, started_by, reason, namespaces, teams, started_ms, ends_ms, ended_ms, ended_by"

void audit_format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%" PRId64, ms);
}

void audit_new_exception_id(char out[AUDIT_EXC_ID_LEN + 1], bool is_breakglass)
{
    char id[AUDIT_ID_LEN + 1];

    audit_new_id(id); /* "dec-" + 26 time-ordered characters */
    {
        const char *prefix = is_breakglass ? "BG-" : "EXC-";
        size_t n = strlen(prefix);

        memcpy(out, prefix, n);
        memcpy(out + n, id + 4, 26);
        out[n + 26] = '\0';
    }
}

static pv_status db_fail(sqlite3 *db, const char *what, struct pv_err *err)
{
    return pv_err_set(err, PV_EIO, "audit: %s: %s", what, sqlite3_errmsg(db));
}

static void add_text(cJSON *o, const char *k, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddStringToObject(o, k, (const char *)sqlite3_column_text(st, i));
}

static void add_ms(cJSON *o, const char *k, const char *k_at, sqlite3_stmt *st, int i)
{
    char at[40];

    if (sqlite3_column_type(st, i) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, k);
        if (k_at != NULL)
            cJSON_AddNullToObject(o, k_at);
        return;
    }
    cJSON_AddNumberToObject(o, k, (double)sqlite3_column_int64(st, i));
    if (k_at != NULL) {
        audit_format_time(sqlite3_column_int64(st, i), at, sizeof(at));
        cJSON_AddStringToObject(o, k_at, at);
    }
}

/* A JSON array stored as text; an edited row that is not one shows as a string. */
static void add_array(cJSON *o, const char *k, sqlite3_stmt *st, int i)
{
    const char *text = (const char *)sqlite3_column_text(st, i);
    cJSON *v = text != NULL ? cJSON_Parse(text) : NULL;

    if (v == NULL)
        v = cJSON_CreateString(text != NULL ? text : "");
    cJSON_AddItemToObject(o, k, v);
}

/* The current row of 'st' (selected with EXC_COLUMNS) as the API shows an exception.
 * Returns: caller frees with cJSON_Delete. */
static cJSON *exc_json(sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();

    add_text(o, "id", st, 0);
    add_text(o, "team", st, 1);
    add_text(o, "service", st, 2);
    add_text(o, "namespace", st, 3);
    add_array(o, "policies", st, 4);
    add_text(o, "justification", st, 5);
    add_text(o, "ticket", st, 6);
    add_text(o, "requested_by", st, 7);
    add_ms(o, "requested_ms", "requested_at", st, 8);
    cJSON_AddNumberToObject(o, "duration_s", (double)sqlite3_column_int64(st, 9));
    add_text(o, "state", st, 10);
    cJSON_AddBoolToObject(o, "self_service", sqlite3_column_int(st, 11) != 0);
    add_text(o, "decided_by", st, 12);
    add_ms(o, "decided_ms", NULL, st, 13);
    add_text(o, "reason", st, 14);
    add_ms(o, "expires_ms", "expires_at", st, 15);
    add_ms(o, "ended_ms", NULL, st, 16);
    add_ms(o, "reminded_ms", NULL, st, 17);
    return o;
}

/* The current row of 'st' (BG_COLUMNS) as the API shows a break-glass window. */
static cJSON *bg_json(sqlite3_stmt *st, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    bool is_ended = sqlite3_column_type(st, 7) != SQLITE_NULL;

    add_text(o, "id", st, 0);
    add_text(o, "started_by", st, 1);
    add_text(o, "reason", st, 2);
    add_array(o, "namespaces", st, 3);
    add_array(o, "teams", st, 4);
    add_ms(o, "started_ms", "started_at", st, 5);
    add_ms(o, "ends_ms", "ends_at", st, 6);
    add_ms(o, "ended_ms", "ended_at", st, 7);
    add_text(o, "ended_by", st, 8);
    cJSON_AddBoolToObject(o, "active", !is_ended && sqlite3_column_int64(st, 6) > now_ms);
    return o;
}

/* ---- Transitions (writer thread, inside its transaction) ---- */

/* Loads exception or window 'id' into *out (NULL when there is none). */
static pv_status load_one(sqlite3 *db, bool is_bg, const char *id, int64_t now_ms, cJSON **out,
                          struct pv_err *err)
{
    sqlite3_stmt *st = NULL;
    pv_status rc = PV_OK;
    int src;

    *out = NULL;
    if (sqlite3_prepare_v2(db,
                           is_bg ? "SELECT " BG_COLUMNS " FROM breakglass WHERE id = ?1"
                                 : "SELECT " EXC_COLUMNS " FROM exceptions WHERE id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "select", err);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = is_bg ? bg_json(st, now_ms) : exc_json(st);
    else if (src != SQLITE_DONE)
        rc = db_fail(db, "select", err);
    sqlite3_finalize(st);
    return rc;
}

/* Runs 'sql' with text/integer parameters: each of 'args' is a string, or NULL for
 * SQL NULL; 'ints' are bound after them. */
static pv_status run(sqlite3 *db, const char *sql, const char *const *args, size_t n_args,
                     const int64_t *ints, size_t n_ints, struct pv_err *err)
{
    sqlite3_stmt *st = NULL;
    int src;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(db, "prepare", err);
    for (size_t i = 0; i < n_args; i++) {
        if (args[i] == NULL)
            sqlite3_bind_null(st, (int)i + 1);
        else
            sqlite3_bind_text(st, (int)i + 1, args[i], -1, SQLITE_STATIC);
    }
    for (size_t i = 0; i < n_ints; i++)
        sqlite3_bind_int64(st, (int)(n_args + i) + 1, ints[i]);
    src = sqlite3_step(st);
    sqlite3_finalize(st);
    if (src != SQLITE_DONE)
        return db_fail(db, "write", err);
    return PV_OK;
}

static char *policy_list_text(const cJSON *policies, char *buf, size_t cap)
{
    const cJSON *p;
    size_t len = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(p, policies)
    {
        if (cJSON_IsString(p) && len + 2 < cap)
            len +=
                (size_t)snprintf(buf + len, cap - len, "%s%s", len > 0 ? ", " : "", p->valuestring);
        if (len >= cap)
            len = cap - 1;
    }
    return buf;
}

/* The NUL-separated list of the policy ids of 'policies', then "". */
static char *policy_ids(const cJSON *policies)
{
    const cJSON *p;
    size_t len = 0;
    char *list = xmalloc(1);

    list[0] = '\0';
    cJSON_ArrayForEach(p, policies)
    {
        size_t n;

        if (!cJSON_IsString(p))
            continue;
        n = strlen(p->valuestring) + 1;
        list = xrealloc(list, len + n + 1);
        memcpy(list + len, p->valuestring, n);
        len += n;
        list[len] = '\0';
    }
    return list;
}

static void set_str(char **field, const char *v)
{
    free(*field);
    *field = v != NULL ? xstrdup(v) : NULL;
}

static pv_status exc_request(sqlite3 *db, const struct audit_record *rec, struct pv_err *err)
{
    const cJSON *a = rec->op_args;
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(a, "policies");
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(a, "duration_s");
    bool is_self = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "self_service"));
    char *pol_text;
    pv_status rc;

    if (json_str(a, "id", NULL) == NULL || json_str(a, "team", NULL) == NULL ||
        json_str(a, "service", NULL) == NULL || json_str(a, "justification", NULL) == NULL ||
        !cJSON_IsArray(pol) || cJSON_GetArraySize(pol) == 0 || json_int64_or(dur, 0) < 1 ||
        json_int64_or(dur, 0) > DURATION_MAX_S || rec->actor == NULL)
        return pv_err_set(err, PV_EINVAL, "audit: malformed exception request %s",
                          json_str(a, "id", NULL) != NULL ? json_str(a, "id", NULL) : "?");
    pol_text = cJSON_PrintUnformatted(pol);
    {
        const char *args[] = {json_str(a, "id", NULL),
                              json_str(a, "team", NULL),
                              json_str(a, "service", NULL),
                              json_str(a, "namespace", NULL),
                              pol_text,
                              json_str(a, "justification", NULL),
                              json_str(a, "ticket", NULL),
                              rec->actor,
                              is_self ? "approved" : "pending",
                              is_self ? "self-service" : NULL};
        int64_t d = json_int64_or(dur, 0);
        int64_t ints[] = {rec->time_ms, d, is_self ? 1 : 0, is_self ? rec->time_ms : 0,
                          is_self ? rec->time_ms + d * 1000 : 0};

        rc = run(db,
                 "INSERT INTO exceptions (id, team, service, namespace, policies, "
                 "justification, ticket, requested_by, state, decided_by, requested_ms, "
                 "duration_s, is_self_service, decided_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, "
                 "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULLIF(?14, 0), NULLIF(?15, 0))",
                 args, 10, ints, 5, err);
    }
    free(pol_text);
    if (rc == PV_EIO && sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        return pv_err_set(err, PV_EINVAL, "exception %s exists already", json_str(a, "id", NULL));
    return rc;
}

/* Checks and applies a transition of an existing exception 'cur' (its JSON). */
static pv_status exc_transition(sqlite3 *db, const struct audit_record *rec, const cJSON *cur,
                                struct pv_err *err)
{
    const char *id = json_str(cur, "id", NULL);
    const char *state = json_str(cur, "state", NULL);
    const char *reason = json_str(rec->op_args, "reason", NULL);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(cur, "expires_ms");
    int64_t t = rec->time_ms;

    switch (rec->op) {
    case AUDIT_OP_EXC_APPROVE: {
        const cJSON *dur = cJSON_GetObjectItemCaseSensitive(cur, "duration_s");
        const char *args[] = {rec->actor, reason, id};
        int64_t ints[] = {t, t + json_int64_or(dur, 0) * 1000};

        if (strcmp(state, "pending") != 0)
            return pv_err_set(err, PV_EINVAL, "%s is %s; only a pending exception can be approved",
                              id, state);
        if (rec->actor == NULL || strcmp(rec->actor, json_str(cur, "requested_by", NULL)) == 0)
            return pv_err_set(err, PV_ECONFIG,
                              "separation of duties: %s was requested by %s, who cannot approve "
                              "it; another approver must",
                              id, json_str(cur, "requested_by", NULL));
        return run(db,
                   "UPDATE exceptions SET state = 'approved', decided_by = ?1, reason = ?2, "
                   "decided_ms = ?4, expires_ms = ?5 WHERE id = ?3",
                   args, 3, ints, 2, err);
    }
    case AUDIT_OP_EXC_DENY: {
        const char *args[] = {rec->actor, reason, id};
        int64_t ints[] = {t};

        if (strcmp(state, "pending") != 0)
            return pv_err_set(err, PV_EINVAL, "%s is %s; only a pending exception can be denied",
                              id, state);
        return run(db,
                   "UPDATE exceptions SET state = 'denied', decided_by = ?1, reason = ?2, "
                   "decided_ms = ?4 WHERE id = ?3",
                   args, 3, ints, 1, err);
    }
    case AUDIT_OP_EXC_REVOKE: {
        const char *args[] = {reason, id};
        int64_t ints[] = {t};

        if (strcmp(state, "approved") != 0)
            return pv_err_set(err, PV_EINVAL, "%s is %s; only an approved exception can be revoked",
                              id, state);
        return run(db,
                   "UPDATE exceptions SET state = 'revoked', reason = coalesce(?1, reason), "
                   "ended_ms = ?3 WHERE id = ?2",
                   args, 2, ints, 1, err);
    }
    case AUDIT_OP_EXC_EXPIRE: {
        const char *args[] = {id};
        int64_t ints[] = {json_int64_or(exp, t)};

        if (strcmp(state, "approved") != 0 || !cJSON_IsNumber(exp) || exp->valuedouble > (double)t)
            return pv_err_set(err, PV_EINVAL, "%s is %s and not due to expire", id, state);
        return run(db, "UPDATE exceptions SET state = 'expired', ended_ms = ?2 WHERE id = ?1", args,
                   1, ints, 1, err);
    }
    case AUDIT_OP_EXC_REMIND: {
        const char *args[] = {id};
        int64_t ints[] = {t};

        if (strcmp(state, "approved") != 0 ||
            !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cur, "reminded_ms")))
            return pv_err_set(err, PV_EINVAL, "%s is %s or was reminded already", id, state);
        return run(db, "UPDATE exceptions SET reminded_ms = ?2 WHERE id = ?1", args, 1, ints, 1,
                   err);
    }
    default:
        break;
    }
    return pv_err_set(err, PV_EINVAL, "audit: not an exception transition");
}

static pv_status bg_start(sqlite3 *db, const struct audit_record *rec, struct pv_err *err)
{
    const cJSON *a = rec->op_args;
    const cJSON *dur = cJSON_GetObjectItemCaseSensitive(a, "duration_s");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(a, "namespaces");
    const cJSON *teams = cJSON_GetObjectItemCaseSensitive(a, "teams");
    char *ns_text;
    char *teams_text;
    pv_status rc;

    if (json_str(a, "id", NULL) == NULL || json_str(a, "reason", NULL) == NULL ||
        json_int64_or(dur, 0) < 1 || json_int64_or(dur, 0) > DURATION_MAX_S || !cJSON_IsArray(ns) ||
        !cJSON_IsArray(teams) || rec->actor == NULL)
        return pv_err_set(err, PV_EINVAL, "audit: malformed break-glass start");
    ns_text = cJSON_PrintUnformatted(ns);
    teams_text = cJSON_PrintUnformatted(teams);
    {
        const char *args[] = {json_str(a, "id", NULL), rec->actor, json_str(a, "reason", NULL),
                              ns_text, teams_text};
        int64_t ints[] = {rec->time_ms, rec->time_ms + json_int64_or(dur, 0) * 1000};

        rc = run(db,
                 "INSERT INTO breakglass (id, started_by, reason, namespaces, teams, started_ms, "
                 "ends_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                 args, 5, ints, 2, err);
    }
    free(ns_text);
    free(teams_text);
    return rc;
}

static pv_status bg_end(sqlite3 *db, const struct audit_record *rec, const cJSON *cur,
                        struct pv_err *err)
{
    const char *id = json_str(cur, "id", NULL);
    const char *args[] = {rec->actor, id};
    const cJSON *ends = cJSON_GetObjectItemCaseSensitive(cur, "ends_ms");
    int64_t end = rec->time_ms;
    int64_t ints[1];

    if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cur, "ended_ms")))
        return pv_err_set(err, PV_EINVAL, "break-glass %s has ended already", id);
    /* A window the sweeper ends after its time ended at its time. */
    if (cJSON_IsNumber(ends) && ends->valuedouble < (double)end)
        end = json_int64_or(ends, end);
    ints[0] = end;
    return run(db, "UPDATE breakglass SET ended_ms = ?3, ended_by = ?1 WHERE id = ?2", args, 2,
               ints, 1, err);
}

static const char *event_name(enum audit_op op, bool is_self_service)
{
    switch (op) {
    case AUDIT_OP_EXC_REQUEST:
        return is_self_service ? "exception.approved" : "exception.requested";
    case AUDIT_OP_EXC_APPROVE:
        return "exception.approved";
    case AUDIT_OP_EXC_DENY:
        return "exception.denied";
    case AUDIT_OP_EXC_REVOKE:
        return "exception.revoked";
    case AUDIT_OP_EXC_EXPIRE:
        return "exception.expired";
    case AUDIT_OP_EXC_REMIND:
        return "exception.expiring";
    case AUDIT_OP_BG_START:
        return "breakglass.started";
    case AUDIT_OP_BG_END:
        return "breakglass.ended";
    case AUDIT_OP_NONE:
        break;
    }
    return "?";
}

static void exc_summary(const struct audit_record *rec, const cJSON *x, const char *event,
                        char *buf, size_t cap)
{
    char pol[200];
    char until[40] = "";
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(x, "expires_ms");
    const char *who = json_str(x, "team", NULL);
    const char *svc = json_str(x, "service", NULL);
    const char *id = json_str(x, "id", NULL);

    policy_list_text(cJSON_GetObjectItemCaseSensitive(x, "policies"), pol, sizeof(pol));
    if (cJSON_IsNumber(exp))
        audit_format_time(json_int64_or(exp, 0), until, sizeof(until));
    if (strcmp(event, "exception.requested") == 0)
        snprintf(buf, cap, "%s requested exception %s for %s/%s from %s: %.200s", rec->actor, id,
                 who, svc, pol, json_str(x, "justification", NULL));
    else if (strcmp(event, "exception.approved") == 0)
        snprintf(buf, cap, "exception %s for %s/%s from %s approved by %s until %s", id, who, svc,
                 pol, json_str(x, "decided_by", NULL), until);
    else if (strcmp(event, "exception.denied") == 0)
        snprintf(buf, cap, "exception %s for %s/%s from %s denied by %s: %.200s", id, who, svc, pol,
                 rec->actor, json_str(x, "reason", NULL) ? json_str(x, "reason", NULL) : "");
    else if (strcmp(event, "exception.revoked") == 0)
        snprintf(buf, cap, "exception %s for %s/%s from %s revoked by %s", id, who, svc, pol,
                 rec->actor);
    else if (strcmp(event, "exception.expiring") == 0)
        snprintf(buf, cap, "exception %s for %s/%s from %s expires at %s", id, who, svc, pol,
                 until);
    else
        snprintf(buf, cap, "exception %s for %s/%s from %s expired at %s", id, who, svc, pol,
                 until);
}

static void bg_summary(const struct audit_record *rec, const cJSON *x, const char *event, char *buf,
                       size_t cap)
{
    char *ns = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(x, "namespaces"));
    char *teams = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(x, "teams"));

    if (strcmp(event, "breakglass.started") == 0)
        snprintf(buf, cap,
                 "BREAK-GLASS %s started by %s until %s for namespaces %s, teams %s: denials "
                 "become warnings. Reason: %.200s",
                 json_str(x, "id", NULL), rec->actor, json_str(x, "ends_at", NULL), ns, teams,
                 json_str(x, "reason", NULL));
    else
        snprintf(buf, cap, "break-glass %s ended (%s) for namespaces %s, teams %s",
                 json_str(x, "id", NULL), rec->actor, ns, teams);
    free(ns);
    free(teams);
}

pv_status exc_apply(sqlite3 *db, struct audit_record *rec, struct exc_event *ev, struct pv_err *err)
{
    bool is_bg = rec->op == AUDIT_OP_BG_START || rec->op == AUDIT_OP_BG_END;
    const char *id = json_str(rec->op_args, "id", NULL);
    cJSON *cur = NULL;
    cJSON *after = NULL;
    cJSON *v;
    cJSON *e;
    pv_status rc;

    memset(ev, 0, sizeof(*ev));
    if (id == NULL)
        return pv_err_set(err, PV_EINVAL, "audit: transition without an id");
    if (rec->op == AUDIT_OP_EXC_REQUEST) {
        rc = exc_request(db, rec, err);
    } else if (rec->op == AUDIT_OP_BG_START) {
        rc = bg_start(db, rec, err);
    } else {
        rc = load_one(db, is_bg, id, rec->time_ms, &cur, err);
        if (rc == PV_OK && cur == NULL)
            rc = pv_err_set(err, PV_ENOENT, "no %s %s", is_bg ? "break-glass window" : "exception",
                            id);
        if (rc == PV_OK)
            rc = is_bg ? bg_end(db, rec, cur, err) : exc_transition(db, rec, cur, err);
    }
    if (rc == PV_OK)
        rc = load_one(db, is_bg, id, rec->time_ms, &after, err);
    if (rc == PV_OK && after == NULL)
        rc = pv_err_set(err, PV_EIO, "audit: %s vanished in its own transaction", id);
    if (rc)
        goto done;

    snprintf(
        ev->name, sizeof(ev->name), "%s",
        event_name(rec->op, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(after, "self_service"))));
    if (is_bg) {
        const cJSON *teams = cJSON_GetObjectItemCaseSensitive(after, "teams");

        bg_summary(rec, after, ev->name, ev->summary, sizeof(ev->summary));
        set_str(&rec->decision, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(after, "active"))
                                    ? "active"
                                    : "ended");
        /* The team column names the first team in scope, "*" for namespaces only. */
        set_str(&rec->team, cJSON_GetArraySize(teams) > 0 && cJSON_IsString(teams->child)
                                ? teams->child->valuestring
                                : "*");
        set_str(&rec->service, NULL);
        set_str(&rec->namespace, NULL);
        set_str(&rec->resource_kind, "BreakGlass");
    } else {
        exc_summary(rec, after, ev->name, ev->summary, sizeof(ev->summary));
        set_str(&rec->decision, json_str(after, "state", NULL));
        set_str(&rec->team, json_str(after, "team", NULL));
        set_str(&rec->service, json_str(after, "service", NULL));
        set_str(&rec->namespace, json_str(after, "namespace", NULL));
        set_str(&rec->resource_kind, "Exception");
        ev->policies = policy_ids(cJSON_GetObjectItemCaseSensitive(after, "policies"));
    }
    set_str(&rec->resource_name, id);
    v = cJSON_CreateArray();
    e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "event", ev->name);
    cJSON_AddItemToObject(e, is_bg ? "breakglass" : "exception", cJSON_Duplicate(after, 1));
    cJSON_AddItemToArray(v, e);
    free(rec->violations);
    rec->violations = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    ev->subject = after;
    after = NULL;
done:
    cJSON_Delete(cur);
    cJSON_Delete(after);
    return rc;
}

/* ---- Readers (any process, read-only) ---- */

pv_status audit_exceptions_list(const char *path, const struct audit_exc_filter *f, cJSON **out,
                                struct pv_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cJSON *arr = NULL;
    pv_status rc = schema_open_ro(&db, path, err);
    int src;

    if (rc)
        return rc;
    /* Every filter is a bound parameter; NULL parameters match everything. */
    if (sqlite3_prepare_v2(db,
                           "SELECT " EXC_COLUMNS " FROM exceptions WHERE (?1 IS NULL OR state = ?1)"
                           " AND (?2 IS NULL OR team = ?2) AND (?3 IS NULL OR service = ?3)"
                           " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(policies)"
                           " WHERE value = ?4)) AND (?5 = 0 OR (state = 'approved' AND "
                           "expires_ms < ?5)) ORDER BY requested_ms DESC, id DESC LIMIT ?6",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_text(st, 1, f->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->team, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->policy, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, f->expiring_before_ms);
    sqlite3_bind_int64(st, 6, f->limit != 0 ? (int64_t)f->limit : LIST_LIMIT_DEFAULT);
    arr = cJSON_CreateArray();
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, exc_json(st));
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

pv_status audit_exception_get(const char *path, const char *id, cJSON **out, struct pv_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cJSON *x = NULL;
    cJSON *events;
    pv_status rc = schema_open_ro(&db, path, err);
    int src;

    if (rc)
        return rc;
    rc = load_one(db, false, id, 0, &x, err);
    if (rc == PV_OK && x == NULL)
        rc = pv_err_set(err, PV_ENOENT, "no exception %s", id);
    if (rc)
        goto done;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, time_ms, violations ->> '$[0].event', actor, decision, hash"
                           " FROM decisions WHERE kind = 'exception' AND resource_name = ?1"
                           " ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    events = cJSON_AddArrayToObject(x, "events");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *e = cJSON_CreateObject();

        add_text(e, "decision_id", st, 0);
        add_ms(e, "time_ms", "time", st, 1);
        add_text(e, "event", st, 2);
        add_text(e, "actor", st, 3);
        add_text(e, "state", st, 4);
        add_text(e, "hash", st, 5);
        cJSON_AddItemToArray(events, e);
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    *out = x;
    x = NULL;
done:
    cJSON_Delete(x);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static char **string_array(const cJSON *arr, size_t *n)
{
    size_t cap = (size_t)cJSON_GetArraySize(arr);
    char **out = xcalloc(cap ? cap : 1, sizeof(*out));
    const cJSON *p;

    *n = 0;
    cJSON_ArrayForEach(p, arr)
    {
        if (cJSON_IsString(p) && *n < cap)
            out[(*n)++] = xstrdup(p->valuestring);
    }
    return out;
}

/* Adds the exception object 'x' to 's' when it is approved. Returns PV_EINVAL naming
 * 'where' when it is malformed. */
static pv_status set_add(struct audit_exc_set *s, const cJSON *x, const char *where,
                         struct pv_err *err)
{
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(x, "policies");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(x, "expires_ms");
    const char *state = json_str(x, "state", NULL);
    int64_t expires_ms = 0;
    struct audit_exc *e;

    if (!cJSON_IsObject(x) || json_str(x, "id", NULL) == NULL || state == NULL ||
        json_str(x, "team", NULL) == NULL || json_str(x, "service", NULL) == NULL ||
        !cJSON_IsArray(pol))
        return pv_err_set(err, PV_EINVAL,
                          "%s: not an exception (needs id, state, team, service, policies)", where);
    if (strcmp(state, "approved") != 0)
        return PV_OK;
    if (!json_int64(exp, &expires_ms))
        return pv_err_set(err, PV_EINVAL,
                          "%s: approved exception %s has no expires_ms (Unix milliseconds)", where,
                          json_str(x, "id", NULL));
    s->items = xrealloc(s->items, (s->n + 1) * sizeof(*s->items));
    e = &s->items[s->n++];
    memset(e, 0, sizeof(*e));
    e->id = xstrdup(json_str(x, "id", NULL));
    e->team = xstrdup(json_str(x, "team", NULL));
    e->service = xstrdup(json_str(x, "service", NULL));
    e->namespace =
        json_str(x, "namespace", NULL) != NULL ? xstrdup(json_str(x, "namespace", NULL)) : NULL;
    e->policies = string_array(pol, &e->n_policies);
    e->expires_ms = expires_ms;
    e->is_reminded = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(x, "reminded_ms"));
    return PV_OK;
}

pv_status audit_exceptions_approved(const char *path, struct audit_exc_set *out, struct pv_err *err)
{
    struct audit_exc_filter f = {0};
    struct audit_exc_set s = {0};
    cJSON *arr = NULL;
    const cJSON *x;
    pv_status rc;

    f.state = "approved";
    f.limit = 1000000;
    rc = audit_exceptions_list(path, &f, &arr, err);
    if (rc)
        return rc;
    cJSON_ArrayForEach(x, arr)
    {
        rc = set_add(&s, x, path, err);
        if (rc)
            break;
    }
    cJSON_Delete(arr);
    if (rc) {
        audit_exc_set_fini(&s);
        return rc;
    }
    *out = s;
    return PV_OK;
}

pv_status audit_exc_set_from_json(const cJSON *doc, struct audit_exc_set *out, struct pv_err *err)
{
    const cJSON *arr =
        cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "exceptions") : doc;
    struct audit_exc_set s = {0};
    const cJSON *x;
    size_t i = 0;

    if (!cJSON_IsArray(arr))
        return pv_err_set(err, PV_EINVAL,
                          "not a list of exceptions (write it with paved exceptions list "
                          "--format json)");
    cJSON_ArrayForEach(x, arr)
    {
        char where[48];
        pv_status rc;

        snprintf(where, sizeof(where), "exception %zu", i + 1);
        rc = set_add(&s, x, where, err);
        if (rc) {
            audit_exc_set_fini(&s);
            return rc;
        }
        i++;
    }
    *out = s;
    return PV_OK;
}

void audit_exc_set_fini(struct audit_exc_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct audit_exc *e = &s->items[i];

        free(e->id);
        free(e->team);
        free(e->service);
        free(e->namespace);
        for (size_t k = 0; k < e->n_policies; k++)
            free(e->policies[k]);
        free(e->policies);
    }
    free(s->items);
    memset(s, 0, sizeof(*s));
}

static bool eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

const struct audit_exc *audit_exc_match(const struct audit_exc_set *s, const char *team,
                                        const char *service, const char *namespace,
                                        const char *policy, int64_t now_ms)
{
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        const struct audit_exc *e = &s->items[i];

        if (e->expires_ms <= now_ms || !eq(e->team, team) || !eq(e->service, service))
            continue;
        if (e->namespace != NULL && !eq(e->namespace, namespace))
            continue;
        for (size_t k = 0; k < e->n_policies; k++)
            if (eq(e->policies[k], policy))
                return e;
    }
    return NULL;
}

/* ---- Break-glass readers ---- */

static pv_status bg_select(const char *path, const char *where, int64_t now_ms, cJSON **out,
                           struct pv_err *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cJSON *arr = NULL;
    char sql[256];
    pv_status rc = schema_open_ro(&db, path, err);
    int src;

    if (rc)
        return rc;
    snprintf(sql, sizeof(sql), "SELECT " BG_COLUMNS " FROM breakglass %s ORDER BY started_ms DESC",
             where);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    arr = cJSON_CreateArray();
    while ((src = sqlite3_step(st)) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, bg_json(st, now_ms));
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

pv_status audit_breakglass_list(const char *path, int64_t now_ms, cJSON **out, struct pv_err *err)
{
    return bg_select(path, "", now_ms, out, err);
}

pv_status audit_breakglass_open(const char *path, struct audit_bg_set *out, struct pv_err *err)
{
    struct audit_bg_set s = {0};
    cJSON *arr = NULL;
    const cJSON *x;
    pv_status rc = bg_select(path, "WHERE ended_ms IS NULL", 0, &arr, err);

    if (rc)
        return rc;
    s.items = xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*s.items));
    cJSON_ArrayForEach(x, arr)
    {
        struct audit_bg *b = &s.items[s.n++];
        const cJSON *ends = cJSON_GetObjectItemCaseSensitive(x, "ends_ms");

        b->id = xstrdup(json_str(x, "id", NULL) != NULL ? json_str(x, "id", NULL) : "?");
        b->namespaces =
            string_array(cJSON_GetObjectItemCaseSensitive(x, "namespaces"), &b->n_namespaces);
        b->teams = string_array(cJSON_GetObjectItemCaseSensitive(x, "teams"), &b->n_teams);
        b->ends_ms = json_int64_or(ends, 0);
    }
    cJSON_Delete(arr);
    *out = s;
    return PV_OK;
}

void audit_bg_set_fini(struct audit_bg_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct audit_bg *b = &s->items[i];

        for (size_t k = 0; k < b->n_namespaces; k++)
            free(b->namespaces[k]);
        for (size_t k = 0; k < b->n_teams; k++)
            free(b->teams[k]);
        free(b->namespaces);
        free(b->teams);
        free(b->id);
    }
    free(s->items);
    memset(s, 0, sizeof(*s));
}

const struct audit_bg *audit_bg_match(const struct audit_bg_set *s, const char *namespace,
                                      const char *team, int64_t now_ms)
{
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        const struct audit_bg *b = &s->items[i];

        if (b->ends_ms <= now_ms)
            continue;
        for (size_t k = 0; k < b->n_namespaces; k++)
            if (eq(b->namespaces[k], namespace))
                return b;
        for (size_t k = 0; k < b->n_teams; k++)
            if (eq(b->teams[k], team))
                return b;
    }
    return NULL;
}
