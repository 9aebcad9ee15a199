/* audit/report.c: the adoption report (report.h says what is counted). SQLite does the
 * counting, grouped by team and UTC day; this file folds the days into the requested
 * periods, adds the totals and the ratios, and shapes the JSON document. */
#include "report.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "schema.h"
#include "xalloc.h"

#define DAY_MS INT64_C(86400000)
#define EXPIRING_DAYS_MAX 3650
#define TOP_POLICIES_MAX 1000

/* ---- SQL ---- */

/* Rows (team, day, new_services, golden, exception, off_road, denied, breakglass,
 * eligible_golden, eligible_exception) ordered by team and day, where day is the UTC
 * midnight at or before the time: t - ((t % 86400000) + 86400000) % 86400000, a floor
 * that also holds before 1970. ?1 since, ?2 until, ?3 team or NULL.
 *
 * The first part counts the new services, the second their decisions that count
 * (report.h). The services of the window drive the join (CROSS JOIN keeps them the outer
 * loop): each new service reads only its own decisions through decisions_service
 * (service, time_ms), so the decisions of older services, the bulk of a mature store,
 * are never touched. "+d.team" keeps the planner from choosing decisions_team instead,
 * which reads the whole team's window once per new service (26 s instead of 0.4 s on
 * 200,000 decisions). */
static const char sql_periods[] =
    "SELECT team, day, SUM(n_new), SUM(golden), SUM(exc), SUM(off_road), SUM(denied),"
    " SUM(bg), SUM(el_golden), SUM(el_exc) FROM ("
    " SELECT team,"
    " first_seen_ms - ((first_seen_ms % 86400000) + 86400000) % 86400000 AS day,"
    " COUNT(*) AS n_new, 0 AS golden, 0 AS exc, 0 AS off_road, 0 AS denied, 0 AS bg,"
    " 0 AS el_golden, 0 AS el_exc"
    " FROM services"
    " WHERE first_seen_ms >= ?1 AND first_seen_ms < ?2 AND (?3 IS NULL OR team = ?3)"
    " GROUP BY team, day"
    " UNION ALL"
    " SELECT s.team,"
    " d.time_ms - ((d.time_ms % 86400000) + 86400000) % 86400000 AS day, 0,"
    " SUM(d.path = 'golden'), SUM(d.path = 'exception'), SUM(d.path = 'off-road'),"
    " SUM(d.path = 'denied'), SUM(d.path = 'breakglass'),"
    " SUM(d.path = 'golden' AND s.exception_available <> 0),"
    " SUM(d.path = 'exception' AND s.exception_available <> 0)"
    " FROM services AS s CROSS JOIN decisions AS d"
    " ON d.service = s.service AND +d.team = s.team"
    " WHERE s.first_seen_ms >= ?1 AND s.first_seen_ms < ?2 AND (?3 IS NULL OR s.team = ?3)"
    " AND d.time_ms >= ?1 AND d.time_ms < ?2"
    " AND d.kind IN ('deploy', 'provision') AND d.dry_run = 0"
    " AND d.path IN ('golden', 'exception', 'off-road', 'denied', 'breakglass')"
    " GROUP BY s.team, day"
    ") GROUP BY team, day ORDER BY team, day";

/* Rows (policy, exceptions, approved_or_active, teams as a JSON array). ?1 since, ?2
 * until, ?3 team or NULL, ?4 limit. A policies value that is not a JSON array of
 * strings (a hand-edited row) contributes nothing instead of failing the report. */
static const char sql_top_policies[] =
    "SELECT j.value, COUNT(DISTINCT e.id),"
    " COUNT(DISTINCT CASE WHEN e.state IN ('approved', 'expired', 'revoked') THEN e.id END),"
    " json_group_array(DISTINCT e.team)"
    " FROM exceptions AS e,"
    " json_each(CASE WHEN json_valid(e.policies) THEN e.policies ELSE '[]' END) AS j"
    " WHERE e.requested_ms >= ?1 AND e.requested_ms < ?2 AND e.state <> 'denied'"
    " AND (?3 IS NULL OR e.team = ?3) AND j.type = 'text' AND typeof(j.key) = 'integer'"
    " GROUP BY j.value ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?4";

/* Rows (id, team, service, namespace, policies, expires_ms) through exceptions_state.
 * ?1 now, ?2 now + expiring days, ?3 team or NULL. Not limited: every row is a person's
 * request, and an approver needs the whole list. */
static const char sql_expiring[] =
    "SELECT id, team, service, namespace, policies, expires_ms FROM exceptions"
    " WHERE state = 'approved' AND expires_ms >= ?1 AND expires_ms < ?2"
    " AND (?3 IS NULL OR team = ?3) ORDER BY expires_ms, id";

/* ---- Counts and periods ---- */

struct counts {
    int64_t new_services;
    int64_t golden;
    int64_t exception;
    int64_t off_road;
    int64_t denied;
    int64_t breakglass;
    int64_t eligible_golden; /* of services with an exception available */
    int64_t eligible_exception;
};

struct period {
    int64_t start_ms;
    struct counts c;
};

/* Every period of every team, for the totals over all teams. */
struct period_list {
    struct period *items;
    size_t n;
    size_t cap;
};

/* Adds the counts of 'b' to 'a'. */
static void counts_add(struct counts *a, const struct counts *b)
{
    a->new_services += b->new_services;
    a->golden += b->golden;
    a->exception += b->exception;
    a->off_road += b->off_road;
    a->denied += b->denied;
    a->breakglass += b->breakglass;
    a->eligible_golden += b->eligible_golden;
    a->eligible_exception += b->eligible_exception;
}

/* Appends a copy of *p to 'l', growing it; its size is bounded by the rows of the
 * periods query (teams x days of the window). */
static void period_list_add(struct period_list *l, const struct period *p)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = *p;
}

/* 'a' / 'b' rounded towards minus infinity ('b' > 0), so times before 1970 fall into
 * the right day. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The start of the period of 'by' holding the UTC day that starts at 'day_ms'. */
static int64_t period_start(enum audit_report_by by, int64_t day_ms, int64_t since_ms)
{
    time_t t;
    struct tm tm;
    int64_t days;

    switch (by) {
    case AUDIT_REPORT_BY_NONE:
        return since_ms;
    case AUDIT_REPORT_BY_DAY:
        return day_ms;
    case AUDIT_REPORT_BY_WEEK:
        /* 1970-01-01 was a Thursday: day 0 is 3 days after a Monday. */
        days = floor_div(day_ms, DAY_MS);
        return (days - (((days + 3) % 7) + 7) % 7) * DAY_MS;
    case AUDIT_REPORT_BY_MONTH:
        t = (time_t)floor_div(day_ms, 1000);
        if (gmtime_r(&t, &tm) == NULL)
            return day_ms;
        return day_ms - (int64_t)(tm.tm_mday - 1) * DAY_MS;
    }
    return day_ms;
}

/* Writes the label of the period of 'by' starting at 'start_ms' into 'buf'. */
static void period_label(enum audit_report_by by, int64_t start_ms, char *buf, size_t cap)
{
    time_t t = (time_t)floor_div(start_ms, 1000);
    struct tm tm;
    size_t n = 0;

    if (by != AUDIT_REPORT_BY_NONE && gmtime_r(&t, &tm) != NULL) {
        switch (by) {
        case AUDIT_REPORT_BY_NONE:
            break;
        case AUDIT_REPORT_BY_DAY:
            n = strftime(buf, cap, "%Y-%m-%d", &tm);
            break;
        case AUDIT_REPORT_BY_WEEK:
            n = strftime(buf, cap, "%G-W%V", &tm); /* ISO 8601 week-numbering year, week */
            break;
        case AUDIT_REPORT_BY_MONTH:
            n = strftime(buf, cap, "%Y-%m", &tm);
            break;
        }
    }
    if (n == 0)
        snprintf(buf, cap, "all");
}

/* Writes 'ms' as RFC 3339 UTC to the second ("2026-11-02T00:00:00Z") into 'buf'. */
static void format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)floor_div(ms, 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%" PRId64, ms);
}

/* 'num' / 'den' as a JSON number, or null when 'den' is 0. */
static void add_ratio(cJSON *o, const char *name, int64_t num, int64_t den)
{
    if (den == 0)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, (double)num / (double)den);
}

/* The JSON object of one period (report.h's P). The flags compare integers, so a
 * voluntary figure of exactly 70 % is on merit whatever the rounding of a double. */
static cJSON *period_json(const char *label, int64_t start_ms, const struct counts *c)
{
    cJSON *o = cJSON_CreateObject();
    int64_t decisions = c->golden + c->exception + c->off_road + c->denied + c->breakglass;
    int64_t adopted = c->golden + c->exception;
    int64_t eligible = c->eligible_golden + c->eligible_exception;
    bool is_headline_high = decisions > 0 && adopted * 100 >= decisions * 70;
    bool is_merit = eligible > 0 && c->eligible_golden * 100 >= eligible * 70;
    bool is_policy = eligible > 0 && c->eligible_golden * 100 < eligible * 40 && is_headline_high;

    cJSON_AddStringToObject(o, "period", label);
    cJSON_AddNumberToObject(o, "start_ms", (double)start_ms);
    cJSON_AddNumberToObject(o, "new_services", (double)c->new_services);
    cJSON_AddNumberToObject(o, "golden", (double)c->golden);
    cJSON_AddNumberToObject(o, "exception", (double)c->exception);
    cJSON_AddNumberToObject(o, "off_road", (double)c->off_road);
    cJSON_AddNumberToObject(o, "denied", (double)c->denied);
    cJSON_AddNumberToObject(o, "breakglass", (double)c->breakglass);
    cJSON_AddNumberToObject(o, "decisions", (double)decisions);
    cJSON_AddNumberToObject(o, "eligible_golden", (double)c->eligible_golden);
    cJSON_AddNumberToObject(o, "eligible_exception", (double)c->eligible_exception);
    add_ratio(o, "headline_adoption", adopted, decisions);
    add_ratio(o, "voluntary_adoption", c->eligible_golden, eligible);
    cJSON_AddBoolToObject(o, "winning_on_merit", is_merit);
    cJSON_AddBoolToObject(o, "winning_on_policy", is_policy);
    return o;
}

/* period_json of *p, labelled for 'by'. Returns: caller frees with cJSON_Delete. */
static cJSON *period_json_of(enum audit_report_by by, const struct period *p)
{
    char label[32];

    period_label(by, p->start_ms, label, sizeof(label));
    return period_json(label, p->start_ms, &p->c);
}

/* ---- Building the teams ---- */

/* The team being folded: its periods so far and the one still accumulating. */
struct team_acc {
    cJSON *teams; /* the document's array (borrowed) */
    struct period_list *all;
    const struct audit_report_opts *o;
    char *name; /* NULL: no team yet */
    cJSON *periods;
    struct counts total;
    struct period cur;
    bool has_cur;
};

/* Closes the period being accumulated: into the team's periods, its total and the
 * list for the all-teams total. */
static void flush_period(struct team_acc *t)
{
    if (!t->has_cur)
        return;
    cJSON_AddItemToArray(t->periods, period_json_of(t->o->by, &t->cur));
    counts_add(&t->total, &t->cur.c);
    period_list_add(t->all, &t->cur);
    t->has_cur = false;
}

/* Closes the team being folded (if any) and appends its entry to the document. */
static void flush_team(struct team_acc *t)
{
    cJSON *o;

    if (t->name == NULL)
        return;
    flush_period(t);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "team", t->name);
    cJSON_AddItemToObject(o, "periods", t->periods);
    cJSON_AddItemToObject(o, "total", period_json("all", t->o->since_ms, &t->total));
    cJSON_AddItemToArray(t->teams, o);
    free(t->name);
    t->name = NULL;
    t->periods = NULL;
}

/* Starts folding team 'name' (copied), with no period yet. */
static void start_team(struct team_acc *t, const char *name)
{
    t->name = xstrdup(name);
    t->periods = cJSON_CreateArray();
    memset(&t->total, 0, sizeof(t->total));
    t->has_cur = false;
}

/* qsort order of periods: by start. */
static int cmp_period(const void *a, const void *b)
{
    const struct period *x = a;
    const struct period *y = b;

    return (x->start_ms > y->start_ms) - (x->start_ms < y->start_ms);
}

/* The "total" entry: the periods of every team merged by start. Sorts 'all'. */
static cJSON *total_json(const struct audit_report_opts *o, struct period_list *all)
{
    cJSON *t = cJSON_CreateObject();
    cJSON *periods = cJSON_CreateArray();
    struct counts sum;
    size_t i = 0;

    memset(&sum, 0, sizeof(sum));
    if (all->n > 0)
        qsort(all->items, all->n, sizeof(*all->items), cmp_period);
    while (i < all->n) {
        struct period p = all->items[i++];

        while (i < all->n && all->items[i].start_ms == p.start_ms)
            counts_add(&p.c, &all->items[i++].c);
        cJSON_AddItemToArray(periods, period_json_of(o->by, &p));
        counts_add(&sum, &p.c);
    }
    if (all->n == 0 && o->by == AUDIT_REPORT_BY_NONE)
        cJSON_AddItemToArray(periods, period_json("all", o->since_ms, &sum));
    cJSON_AddItemToObject(t, "periods", periods);
    cJSON_AddItemToObject(t, "total", period_json("all", o->since_ms, &sum));
    return t;
}

/* Returns PV_EIO with SQLite's last message for 'db'. */
static pv_status db_fail(sqlite3 *db, const char *path, struct pv_err *err)
{
    return pv_err_set(err, PV_EIO, "audit: %s: %s", path, sqlite3_errmsg(db));
}

/* Binds 'team' (borrowed until the statement is finalized), or NULL for every team. */
static void bind_team(sqlite3_stmt *st, int i, const char *team)
{
    if (team != NULL)
        sqlite3_bind_text(st, i, team, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* Adds "teams" and "total" to 'doc' (borrowed) from the periods query. Returns PV_EIO
 * on a SQLite failure; 'doc' may then hold a partial "teams". */
static pv_status add_teams(sqlite3 *db, const char *path, const struct audit_report_opts *o,
                           cJSON *doc, struct pv_err *err)
{
    struct period_list all = {NULL, 0, 0};
    struct team_acc t;
    sqlite3_stmt *st = NULL;
    pv_status rc = PV_OK;
    int src;

    memset(&t, 0, sizeof(t));
    t.teams = cJSON_AddArrayToObject(doc, "teams");
    t.all = &all;
    t.o = o;
    if (sqlite3_prepare_v2(db, sql_periods, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_int64(st, 1, o->since_ms);
    sqlite3_bind_int64(st, 2, o->until_ms);
    bind_team(st, 3, o->team);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *team = (const char *)sqlite3_column_text(st, 0);
        int64_t start = period_start(o->by, sqlite3_column_int64(st, 1), o->since_ms);
        struct counts c;

        c.new_services = sqlite3_column_int64(st, 2);
        c.golden = sqlite3_column_int64(st, 3);
        c.exception = sqlite3_column_int64(st, 4);
        c.off_road = sqlite3_column_int64(st, 5);
        c.denied = sqlite3_column_int64(st, 6);
        c.breakglass = sqlite3_column_int64(st, 7);
        c.eligible_golden = sqlite3_column_int64(st, 8);
        c.eligible_exception = sqlite3_column_int64(st, 9);
        if (team == NULL)
            team = "";
        if (t.name == NULL || strcmp(t.name, team) != 0) {
            flush_team(&t);
            start_team(&t, team);
        }
        /* Rows come by day, so a day either extends the current period or opens the next. */
        if (t.has_cur && t.cur.start_ms == start) {
            counts_add(&t.cur.c, &c);
        } else {
            flush_period(&t);
            t.cur.start_ms = start;
            t.cur.c = c;
            t.has_cur = true;
        }
    }
    if (src != SQLITE_DONE) {
        rc = db_fail(db, path, err);
        goto done;
    }
    /* A team asked for by name is listed even when it has nothing in the window. */
    if (t.name == NULL && o->team != NULL) {
        start_team(&t, o->team);
        if (o->by == AUDIT_REPORT_BY_NONE) {
            memset(&t.cur, 0, sizeof(t.cur));
            t.cur.start_ms = o->since_ms;
            t.has_cur = true;
        }
    }
    flush_team(&t);
    cJSON_AddItemToObject(doc, "total", total_json(o, &all));
done:
    if (t.name != NULL) {
        free(t.name);
        cJSON_Delete(t.periods);
    }
    free(all.items);
    sqlite3_finalize(st);
    return rc;
}

/* ---- Exceptions ---- */

/* qsort order of C strings. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The strings of the JSON array text 'text' (NULL or malformed: none), sorted, as a new
 * array. Returns: caller frees with cJSON_Delete. */
static cJSON *sorted_strings(const char *text)
{
    cJSON *in = text != NULL ? cJSON_Parse(text) : NULL;
    cJSON *out = cJSON_CreateArray();
    const cJSON *el;
    const char **v;
    size_t n = 0;

    v = xcalloc((size_t)cJSON_GetArraySize(in) + 1, sizeof(*v));
    cJSON_ArrayForEach(el, in)
    {
        if (cJSON_IsString(el))
            v[n++] = el->valuestring;
    }
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_str);
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(out, cJSON_CreateString(v[i]));
    free(v);
    cJSON_Delete(in);
    return out;
}

/* Adds "top_exception_policies" to 'doc'. Returns PV_EIO on a SQLite failure. */
static pv_status add_top_policies(sqlite3 *db, const char *path, const struct audit_report_opts *o,
                                  cJSON *doc, struct pv_err *err)
{
    cJSON *arr = cJSON_AddArrayToObject(doc, "top_exception_policies");
    sqlite3_stmt *st = NULL;
    pv_status rc = PV_OK;
    int src;

    if (sqlite3_prepare_v2(db, sql_top_policies, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_int64(st, 1, o->since_ms);
    sqlite3_bind_int64(st, 2, o->until_ms);
    bind_team(st, 3, o->team);
    sqlite3_bind_int(st, 4, o->top_policies > 0 ? o->top_policies : AUDIT_REPORT_TOP_POLICIES);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *p = cJSON_CreateObject();
        const char *policy = (const char *)sqlite3_column_text(st, 0);

        cJSON_AddStringToObject(p, "policy", policy != NULL ? policy : "");
        cJSON_AddNumberToObject(p, "exceptions", (double)sqlite3_column_int64(st, 1));
        cJSON_AddNumberToObject(p, "approved_or_active", (double)sqlite3_column_int64(st, 2));
        cJSON_AddItemToObject(p, "teams", sorted_strings((const char *)sqlite3_column_text(st, 3)));
        cJSON_AddItemToArray(arr, p);
    }
    if (src != SQLITE_DONE)
        rc = db_fail(db, path, err);
done:
    sqlite3_finalize(st);
    return rc;
}

/* Adds column 'i' of the current row of 'st' to 'o' as a string, or null. */
static void add_text(cJSON *o, const char *name, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(st, i));
}

/* Adds "expiring" to 'doc'. Returns PV_EIO on a SQLite failure. */
static pv_status add_expiring(sqlite3 *db, const char *path, const struct audit_report_opts *o,
                              cJSON *doc, struct pv_err *err)
{
    cJSON *arr = cJSON_AddArrayToObject(doc, "expiring");
    int days = o->expiring_days > 0 ? o->expiring_days : AUDIT_REPORT_EXPIRING_DAYS;
    sqlite3_stmt *st = NULL;
    pv_status rc = PV_OK;
    int src;

    if (sqlite3_prepare_v2(db, sql_expiring, -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(db, path, err);
        goto done;
    }
    sqlite3_bind_int64(st, 1, o->now_ms);
    sqlite3_bind_int64(st, 2, o->now_ms + days * DAY_MS);
    bind_team(st, 3, o->team);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *e = cJSON_CreateObject();
        const char *policies = (const char *)sqlite3_column_text(st, 4);
        cJSON *pol = policies != NULL ? cJSON_Parse(policies) : NULL;
        char at[40];

        add_text(e, "id", st, 0);
        add_text(e, "team", st, 1);
        add_text(e, "service", st, 2);
        add_text(e, "namespace", st, 3);
        /* An edited row that is not JSON shows as a string, as in `exceptions list`. */
        if (pol == NULL)
            pol = cJSON_CreateString(policies != NULL ? policies : "");
        cJSON_AddItemToObject(e, "policies", pol);
        format_time(sqlite3_column_int64(st, 5), at, sizeof(at));
        cJSON_AddStringToObject(e, "expires_at", at);
        cJSON_AddNumberToObject(e, "expires_ms", (double)sqlite3_column_int64(st, 5));
        cJSON_AddItemToArray(arr, e);
    }
    if (src != SQLITE_DONE)
        rc = db_fail(db, path, err);
done:
    sqlite3_finalize(st);
    return rc;
}

/* ---- The report ---- */

#define REPORT_MIN_SCHEMA 2 /* services.exception_available and exceptions came with 2 */

/* Refuses a store older than REPORT_MIN_SCHEMA with a message that says what to do,
 * rather than SQLite's "no such column". */
static pv_status check_version(sqlite3 *db, const char *path, struct pv_err *err)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    pv_status rc = PV_OK;

    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        rc = db_fail(db, path, err);
    else
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc == PV_OK && version < REPORT_MIN_SCHEMA)
        rc = pv_err_set(err, PV_EIO,
                        "audit: %s has schema version %d; the adoption report needs %d or later "
                        "(start paved serve on it once to migrate)",
                        path, version, REPORT_MIN_SCHEMA);
    return rc;
}

const char *audit_report_by_name(enum audit_report_by by)
{
    switch (by) {
    case AUDIT_REPORT_BY_NONE:
        return "none";
    case AUDIT_REPORT_BY_DAY:
        return "day";
    case AUDIT_REPORT_BY_WEEK:
        return "week";
    case AUDIT_REPORT_BY_MONTH:
        return "month";
    }
    return "none";
}

pv_status audit_report(const char *path, const struct audit_report_opts *o, cJSON **out,
                       struct pv_err *err)
{
    sqlite3 *db = NULL;
    cJSON *doc = NULL;
    char at[40];
    pv_status rc;

    if (o->until_ms <= o->since_ms)
        return pv_err_set(err, PV_EINVAL, "audit: report: the window ends before it starts");
    if ((int)o->by < (int)AUDIT_REPORT_BY_NONE || (int)o->by > (int)AUDIT_REPORT_BY_MONTH)
        return pv_err_set(err, PV_EINVAL, "audit: report: unknown period %d", (int)o->by);
    if (o->expiring_days < 0 || o->expiring_days > EXPIRING_DAYS_MAX)
        return pv_err_set(err, PV_EINVAL, "audit: report: expiring days must be 0 to %d",
                          EXPIRING_DAYS_MAX);
    if (o->top_policies < 0 || o->top_policies > TOP_POLICIES_MAX)
        return pv_err_set(err, PV_EINVAL, "audit: report: top policies must be 0 to %d",
                          TOP_POLICIES_MAX);
    rc = schema_open_ro(&db, path, err);
    if (rc)
        return rc;
    rc = check_version(db, path, err);
    if (rc)
        goto done;
    /* One read transaction: the sections agree with each other while a server writes. */
    rc = schema_exec(db, "BEGIN", err);
    if (rc)
        goto done;
    doc = cJSON_CreateObject();
    format_time(o->since_ms, at, sizeof(at));
    cJSON_AddStringToObject(doc, "since", at);
    cJSON_AddNumberToObject(doc, "since_ms", (double)o->since_ms);
    format_time(o->until_ms, at, sizeof(at));
    cJSON_AddStringToObject(doc, "until", at);
    cJSON_AddNumberToObject(doc, "until_ms", (double)o->until_ms);
    cJSON_AddNumberToObject(doc, "now_ms", (double)o->now_ms);
    cJSON_AddStringToObject(doc, "by", audit_report_by_name(o->by));
    if (o->team != NULL)
        cJSON_AddStringToObject(doc, "team", o->team);
    else
        cJSON_AddNullToObject(doc, "team");
    cJSON_AddNumberToObject(doc, "expiring_days",
                            o->expiring_days > 0 ? o->expiring_days : AUDIT_REPORT_EXPIRING_DAYS);
    rc = add_teams(db, path, o, doc, err);
    if (rc == PV_OK)
        rc = add_top_policies(db, path, o, doc, err);
    if (rc == PV_OK)
        rc = add_expiring(db, path, o, doc, err);
    if (rc)
        goto done;
    *out = doc;
    doc = NULL;
done:
    cJSON_Delete(doc);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* ends the read transaction, if any */
    sqlite3_close(db);
    return rc;
}
