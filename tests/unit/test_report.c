/* tests/unit/test_report.c: the adoption report (audit/report.c) on a history whose
 * figures are known: decisions written through the real writer (audit_submit), the
 * exceptions rows with sqlite3. With PAVED_REPORT_DB set, the store is written at that
 * path and kept, for tests/cli/report.sh; otherwise it lives in a mkdtemp directory
 * that is removed at the end.
 *
 * The history (S = 2026-11-02T00:00Z, a Monday, ISO week 45; the window is [S, S+35d),
 * so until = 2026-12-07T00:00Z = "now" for the expiring list):
 *   merit   m-a (exception available): first seen at S; 5 golden in W45
 *           m-b (available): 3 golden, 2 exception in W46
 *           -> voluntary 8/10 = 80 %: winning on merit; headline 100 %
 *   policy  p-a (available): 3 golden, 7 exception in W47
 *           p-b (no exception available): 2 denied on Nov 30, 8 golden on Dec 1 (W49)
 *           -> headline 18/20 = 90 %, voluntary 3/10 = 30 %: winning on policy
 *   mixed   x-a: 2 off-road, 1 denied, 1 break-glass, 1 golden in W45 (headline 20 %,
 *           voluntary null); x-old, first seen 1 ms before S, is not new
 *   quiet   q-a (available): dry-run decisions only: 1 new service, no decisions
 *   old     o-a: first seen 10 days before S: not listed
 *   yearend y-a: 2027-01-01 and 2027-01-04, after the window (2026-W53, 2027-W01)
 * Ignored everywhere: dry-run decisions, kind "mutation" and "credential" rows, audit
 * events (kind "exception", path "event"), and a decision at exactly 'until'. */
#include "report.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit.h"
#include "t.h"
#include "xalloc.h"

#define DAY INT64_C(86400000)
#define S INT64_C(1793577600000) /* 2026-11-02T00:00:00Z, Monday of 2026-W45 */
#define UNTIL (S + 35 * DAY)     /* 2026-12-07T00:00:00Z */
#define NOW UNTIL
#define YEAREND INT64_C(1798804800000) /* 2027-01-01T12:00:00Z, a Friday of 2026-W53 */
#define NULL_RATIO (-1.0)              /* "the figure is null" in the tables below */

static char dir[64];
static char db[4096];
static int submit_failures;

/* ---- Writing the history ---- */

/* Submits one record through the writer. */
static void add(struct audit *a, int64_t time_ms, const char *team, const char *service,
                const char *kind, const char *path, bool is_dry_run, bool is_available)
{
    struct audit_record *r = xcalloc(1, sizeof(*r));
    struct pv_err err = {PV_OK, ""};

    audit_new_id(r->id);
    r->time_ms = time_ms;
    r->source = xstrdup("admission");
    r->kind = xstrdup(kind);
    r->operation = xstrdup("CREATE");
    r->team = xstrdup(team);
    r->service = xstrdup(service);
    r->namespace = xstrdup(team);
    r->resource_kind = xstrdup("Deployment");
    r->resource_name = xstrdup(service);
    r->decision = xstrdup(strcmp(path, "denied") == 0 ? "deny" : "allow");
    r->path = xstrdup(path);
    if (strcmp(path, "exception") == 0)
        r->violations = xstrdup("[{\"binding\":\"require-probes\",\"policy\":\"require-probes\","
                                "\"enforcement\":\"deny\",\"message\":\"no readiness probe\","
                                "\"exception\":\"EXC-01TEST\"}]");
    r->bundle_hash = xstrdup("ab12");
    r->latency_us = 10;
    r->is_dry_run = is_dry_run;
    r->is_exception_available = is_available;
    if (audit_submit(a, r, UINT64_MAX, &err) != PV_OK) {
        submit_failures++;
        t_diag("audit_submit %s/%s %s: %s", team, service, path, err.msg);
    }
}

/* 'n' decisions of one service at 'time_ms' + i minutes. */
static void add_n(struct audit *a, int n, int64_t time_ms, const char *team, const char *service,
                  const char *path, bool is_available)
{
    for (int i = 0; i < n; i++)
        add(a, time_ms + i * 60000, team, service, "deploy", path, false, is_available);
}

static void write_decisions(struct audit *a)
{
    /* merit: voluntary 80 %. m-a is first seen at exactly 'since' (inclusive). */
    add_n(a, 5, S, "merit", "m-a", "golden", true);
    add(a, S + 2 * DAY, "merit", "m-a", "deploy", "golden", true, true);    /* dry run */
    add(a, S + 2 * DAY, "merit", "m-a", "mutation", "golden", false, true); /* mutation */
    add(a, UNTIL, "merit", "m-a", "deploy", "golden", false, true);         /* at 'until' */
    add_n(a, 3, S + 8 * DAY, "merit", "m-b", "golden", true);
    add_n(a, 2, S + 10 * DAY, "merit", "m-b", "exception", true);

    /* policy: headline 90 %, voluntary 30 %. */
    add_n(a, 3, S + 15 * DAY, "policy", "p-a", "golden", true);
    add_n(a, 7, S + 16 * DAY, "policy", "p-a", "exception", true);
    add_n(a, 2, S + 28 * DAY, "policy", "p-b", "denied", false);
    add_n(a, 8, S + 29 * DAY, "policy", "p-b", "golden", false);

    /* mixed: every other path; an old service and rows that never count. */
    add(a, S - 1, "mixed", "x-old", "deploy", "golden", false, false);
    add_n(a, 3, S + 3 * DAY, "mixed", "x-old", "golden", false);
    add(a, S + 4 * DAY, "mixed", "x-old", "deploy", "denied", false, false);
    add_n(a, 2, S + 3 * DAY, "mixed", "x-a", "off-road", false);
    add(a, S + 4 * DAY, "mixed", "x-a", "deploy", "denied", false, false);
    add(a, S + 5 * DAY, "mixed", "x-a", "deploy", "breakglass", false, false);
    add(a, S + 5 * DAY, "mixed", "x-a", "deploy", "golden", false, false);
    add(a, S + 6 * DAY, "mixed", "x-a", "credential", "golden", false, false);
    add(a, S + 6 * DAY, "mixed", "x-a", "mutation", "golden", false, false);
    add(a, S + 6 * DAY, "mixed", "x-a", "exception", "event", false, false);
    add(a, S + 6 * DAY, "mixed", "x-a", "breakglass", "event", false, false);

    /* quiet: a new service with dry runs only. */
    add(a, S + 20 * DAY, "quiet", "q-a", "deploy", "golden", true, true);
    add(a, S + 21 * DAY, "quiet", "q-a", "deploy", "exception", true, true);

    /* old: first seen before the window, busy inside it. */
    add(a, S - 10 * DAY, "old", "o-a", "deploy", "golden", false, true);
    add_n(a, 5, S + 1 * DAY, "old", "o-a", "exception", true);

    /* yearend: after the window, across the ISO year boundary. */
    add(a, YEAREND, "yearend", "y-a", "deploy", "golden", false, true);
    add(a, YEAREND + 2 * DAY + DAY / 2, "yearend", "y-a", "deploy", "golden", false, true);
}

static int exec_sql(const char *path, const char *sql)
{
    sqlite3 *conn = NULL;
    int rc = sqlite3_open(path, &conn);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(conn, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        t_diag("sql: %s", sqlite3_errmsg(conn));
    sqlite3_close(conn);
    return rc;
}

/* One exceptions row (as the writer would leave it after its transitions). */
static void add_exception(const char *id, const char *team, const char *service,
                          const char *policies, int64_t requested_ms, const char *state,
                          int64_t expires_ms)
{
    char sql[1024];
    char expires[32];
    int n;

    if (expires_ms != 0)
        snprintf(expires, sizeof(expires), "%" PRId64, expires_ms);
    else
        snprintf(expires, sizeof(expires), "NULL");
    n = snprintf(sql, sizeof(sql),
                 "INSERT INTO exceptions (id, team, service, namespace, policies, "
                 "justification, ticket, requested_by, requested_ms, duration_s, state, "
                 "is_self_service, decided_by, decided_ms, reason, expires_ms, ended_ms, "
                 "reminded_ms) VALUES ('%s', '%s', '%s', NULL, '%s', 'legacy chart', "
                 "'PLAT-1', 'dev@example.com', %" PRId64 ", 2592000, '%s', 0, NULL, NULL, "
                 "NULL, %s, NULL, NULL)",
                 id, team, service, policies, requested_ms, state, expires);
    if (n < 0 || (size_t)n >= sizeof(sql) || exec_sql(db, sql) != SQLITE_OK)
        submit_failures++;
}

static void write_exceptions(void)
{
    add_exception("EXC-01", "policy", "p-a", "[\"require-probes\",\"no-latest\"]", S + DAY,
                  "approved", NOW + 3 * DAY);
    add_exception("EXC-02", "policy", "p-a", "[\"require-probes\"]", S + 2 * DAY, "pending", 0);
    add_exception("EXC-03", "merit", "m-b", "[\"require-probes\"]", S + 3 * DAY, "expired",
                  S + 20 * DAY);
    add_exception("EXC-04", "mixed", "x-a", "[\"psa-restricted\"]", S + 4 * DAY, "denied", 0);
    add_exception("EXC-05", "mixed", "x-a", "[\"no-latest\"]", S - 5 * DAY, "approved",
                  NOW + 20 * DAY);
    add_exception("EXC-06", "merit", "m-a", "[\"no-latest\"]", S + 5 * DAY, "revoked",
                  S + 30 * DAY);
    add_exception("EXC-07", "policy", "p-b", "[\"cost-tags\"]", S + 6 * DAY, "approved",
                  NOW + 10 * DAY);
    add_exception("EXC-08", "mixed", "x-a", "[\"cost-tags\"]", S + 7 * DAY, "approved",
                  NOW - DAY); /* past its expiry, not yet swept */
    add_exception("EXC-09", "merit", "m-b", "[\"no-latest\"]", S + 8 * DAY, "approved",
                  NOW + 14 * DAY); /* exactly at the end of the 14 days: not included */
    add_exception("EXC-10", "quiet", "q-a", "not json", S + 9 * DAY, "pending", 0);
    add_exception("EXC-11", "quiet", "q-a", "{\"a\":\"b\"}", S + 9 * DAY, "pending", 0);
    add_exception("EXC-12", "mixed", "x-a", "[\"cost-tags\",\"cost-tags\"]", S + 10 * DAY,
                  "pending", 0);
}

/* ---- Reading the document ---- */

static cJSON *report(const char *team, enum audit_report_by by, int64_t since, int64_t until)
{
    struct audit_report_opts o = {since, until, NOW, team, by, 0, 0};
    struct pv_err err = {PV_OK, ""};
    cJSON *doc = NULL;

    if (audit_report(db, &o, &doc, &err) != PV_OK) {
        t_diag("audit_report: %s", err.msg);
        return NULL;
    }
    return doc;
}

static const cJSON *team_of(const cJSON *doc, const char *name)
{
    const cJSON *t;

    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(doc, "teams"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "team");

        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return t;
    }
    return NULL;
}

static const cJSON *period_of(const cJSON *team, const char *label)
{
    const cJSON *p;

    if (strcmp(label, "total") == 0)
        return cJSON_GetObjectItemCaseSensitive(team, "total");
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(team, "periods"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(p, "period");

        if (cJSON_IsString(n) && strcmp(n->valuestring, label) == 0)
            return p;
    }
    return NULL;
}

static long long num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -999;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A ratio as thousandths (so 0.9 compares exactly), or -1 when null or missing. */
static long long ratio(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (cJSON_IsNumber(v))
        return (long long)(v->valuedouble * 1000 + 0.5);
    return cJSON_IsNull(v) ? -1 : -999;
}

static int flag(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* One expected period: the team ("*" for the total over all teams), the period label
 * ("total" for the entry's whole-window total), and every figure. */
struct want {
    const char *team;
    const char *period;
    int new_services, golden, exception, off_road, denied, breakglass, decisions;
    int eligible_golden, eligible_exception;
    double headline, voluntary; /* NULL_RATIO: null */
    int is_merit, is_policy;
};

static long long thousandths(double r)
{
    return r < 0 ? -1 : (long long)(r * 1000 + 0.5);
}

static void check_figures(const cJSON *p, const struct want *w);

static void check_want(const cJSON *doc, const struct want *w)
{
    const cJSON *team = strcmp(w->team, "*") == 0 ? cJSON_GetObjectItemCaseSensitive(doc, "total")
                                                  : team_of(doc, w->team);
    const cJSON *p = team != NULL ? period_of(team, w->period) : NULL;
    int failures = t_failures;

    if (T_OK(p != NULL))
        check_figures(p, w);
    if (t_failures != failures)
        t_diag("  in team %s, period %s", w->team, w->period);
}

static void check_figures(const cJSON *p, const struct want *w)
{
    T_EQ_INT(num(p, "new_services"), w->new_services);
    T_EQ_INT(num(p, "golden"), w->golden);
    T_EQ_INT(num(p, "exception"), w->exception);
    T_EQ_INT(num(p, "off_road"), w->off_road);
    T_EQ_INT(num(p, "denied"), w->denied);
    T_EQ_INT(num(p, "breakglass"), w->breakglass);
    T_EQ_INT(num(p, "decisions"), w->decisions);
    T_EQ_INT(num(p, "eligible_golden"), w->eligible_golden);
    T_EQ_INT(num(p, "eligible_exception"), w->eligible_exception);
    T_EQ_INT(ratio(p, "headline_adoption"), thousandths(w->headline));
    T_EQ_INT(ratio(p, "voluntary_adoption"), thousandths(w->voluntary));
    T_EQ_INT(flag(p, "winning_on_merit"), w->is_merit);
    T_EQ_INT(flag(p, "winning_on_policy"), w->is_policy);
}

static int array_size(const cJSON *o, const char *name)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
}

/* The labels of an entry's periods, comma-joined into 'buf'. */
static const char *labels(const cJSON *team, char *buf, size_t cap)
{
    const cJSON *p;
    size_t len = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(team, "periods"))
    {
        const char *l = str(p, "period");
        int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", l ? l : "?");

        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
    return buf;
}

/* The ids (or policies) of an array of objects, comma-joined into 'buf'. */
static const char *names(const cJSON *doc, const char *array, const char *key, char *buf,
                         size_t cap)
{
    const cJSON *el;
    size_t len = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(el, cJSON_GetObjectItemCaseSensitive(doc, array))
    {
        const char *s = str(el, key);
        int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", s ? s : "?");

        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
    return buf;
}

static const char *joined(const cJSON *arr, char *buf, size_t cap)
{
    const cJSON *el;
    size_t len = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(el, arr)
    {
        int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "",
                         cJSON_IsString(el) ? el->valuestring : "?");

        if (n < 0 || (size_t)n >= cap - len)
            break;
        len += (size_t)n;
    }
    return buf;
}

/* ---- Tests ---- */

/* The store itself: what the writer recorded about the services. */
static void test_store(void)
{
    sqlite3 *conn = NULL;
    sqlite3_stmt *st = NULL;
    char got[512] = "";
    size_t len = 0;

    T_EQ_INT(submit_failures, 0);
    if (sqlite3_open_v2(db, &conn, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(conn,
                           "SELECT service || '=' || exception_available FROM services "
                           "ORDER BY team, service",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW && len < sizeof(got) - 64) {
            int n = snprintf(got + len, sizeof(got) - len, "%s%s", len ? " " : "",
                             (const char *)sqlite3_column_text(st, 0));

            if (n > 0)
                len += (size_t)n;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(conn);
    /* No services row from mutations or events; exception_available as submitted. */
    T_EQ_STR(got, "m-a=1 m-b=1 x-a=0 x-old=0 o-a=1 p-a=1 p-b=0 q-a=1 y-a=1");
}

static void test_whole_window(void)
{
    static const struct want wants[] = {
        /* team    period  new  g   e  off den bg  dec elg ele headline   voluntary  M  P */
        {"merit", "all", 2, 8, 2, 0, 0, 0, 10, 8, 2, 1.0, 0.8, 1, 0},
        {"merit", "total", 2, 8, 2, 0, 0, 0, 10, 8, 2, 1.0, 0.8, 1, 0},
        {"policy", "all", 2, 11, 7, 0, 2, 0, 20, 3, 7, 0.9, 0.3, 0, 1},
        {"mixed", "all", 1, 1, 0, 2, 1, 1, 5, 0, 0, 0.2, NULL_RATIO, 0, 0},
        {"quiet", "all", 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL_RATIO, NULL_RATIO, 0, 0},
        {"*", "all", 6, 20, 9, 2, 3, 1, 35, 11, 9, 29.0 / 35, 0.55, 0, 0},
        {"*", "total", 6, 20, 9, 2, 3, 1, 35, 11, 9, 29.0 / 35, 0.55, 0, 0},
    };
    cJSON *doc = report(NULL, AUDIT_REPORT_BY_NONE, S, UNTIL);
    char buf[256];

    if (!T_OK(doc != NULL))
        return;
    T_EQ_STR(str(doc, "since"), "2026-11-02T00:00:00Z");
    T_EQ_STR(str(doc, "until"), "2026-12-07T00:00:00Z");
    T_EQ_STR(str(doc, "by"), "none");
    T_EQ_INT(num(doc, "expiring_days"), 14);
    /* Sorted by team; "old" (first seen before the window) and "yearend" are absent. */
    T_EQ_STR(names(doc, "teams", "team", buf, sizeof(buf)), "merit,mixed,policy,quiet");
    T_EQ_STR(labels(team_of(doc, "merit"), buf, sizeof(buf)), "all");
    T_EQ_INT(num(period_of(team_of(doc, "merit"), "all"), "start_ms"), S);
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
        check_want(doc, &wants[i]);
    cJSON_Delete(doc);
}

static void test_by_week(void)
{
    static const struct want wants[] = {
        /* team    period      new  g   e  off den bg  dec elg ele headline   voluntary  M  P */
        {"merit", "2026-W45", 1, 5, 0, 0, 0, 0, 5, 5, 0, 1.0, 1.0, 1, 0},
        {"merit", "2026-W46", 1, 3, 2, 0, 0, 0, 5, 3, 2, 1.0, 0.6, 0, 0},
        {"merit", "total", 2, 8, 2, 0, 0, 0, 10, 8, 2, 1.0, 0.8, 1, 0},
        {"policy", "2026-W47", 1, 3, 7, 0, 0, 0, 10, 3, 7, 1.0, 0.3, 0, 1},
        {"policy", "2026-W49", 1, 8, 0, 0, 2, 0, 10, 0, 0, 0.8, NULL_RATIO, 0, 0},
        {"quiet", "2026-W47", 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL_RATIO, NULL_RATIO, 0, 0},
        {"*", "2026-W45", 2, 6, 0, 2, 1, 1, 10, 5, 0, 0.6, 1.0, 1, 0},
        {"*", "2026-W46", 1, 3, 2, 0, 0, 0, 5, 3, 2, 1.0, 0.6, 0, 0},
        {"*", "2026-W47", 2, 3, 7, 0, 0, 0, 10, 3, 7, 1.0, 0.3, 0, 1},
        {"*", "2026-W49", 1, 8, 0, 0, 2, 0, 10, 0, 0, 0.8, NULL_RATIO, 0, 0},
        {"*", "total", 6, 20, 9, 2, 3, 1, 35, 11, 9, 29.0 / 35, 0.55, 0, 0},
    };
    cJSON *doc = report(NULL, AUDIT_REPORT_BY_WEEK, S, UNTIL);
    char buf[256];

    if (!T_OK(doc != NULL))
        return;
    T_EQ_STR(str(doc, "by"), "week");
    /* Periods without a new service or a decision (W48) are left out. */
    T_EQ_STR(labels(team_of(doc, "merit"), buf, sizeof(buf)), "2026-W45,2026-W46");
    T_EQ_STR(labels(team_of(doc, "policy"), buf, sizeof(buf)), "2026-W47,2026-W49");
    T_EQ_STR(labels(cJSON_GetObjectItemCaseSensitive(doc, "total"), buf, sizeof(buf)),
             "2026-W45,2026-W46,2026-W47,2026-W49");
    T_EQ_INT(num(period_of(team_of(doc, "policy"), "2026-W49"), "start_ms"), S + 28 * DAY);
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
        check_want(doc, &wants[i]);
    cJSON_Delete(doc);
}

static void test_by_month_and_day(void)
{
    static const struct want wants[] = {
        /* team    period      new  g   e  off den bg  dec elg ele headline   voluntary  M  P */
        {"policy", "2026-11", 2, 3, 7, 0, 2, 0, 12, 3, 7, 10.0 / 12, 0.3, 0, 1},
        {"policy", "2026-12", 0, 8, 0, 0, 0, 0, 8, 0, 0, 1.0, NULL_RATIO, 0, 0},
    };
    static const struct want days[] = {
        {"policy", "2026-11-30", 1, 0, 0, 0, 2, 0, 2, 0, 0, 0.0, NULL_RATIO, 0, 0},
        {"policy", "2026-12-01", 0, 8, 0, 0, 0, 0, 8, 0, 0, 1.0, NULL_RATIO, 0, 0},
    };
    cJSON *doc = report(NULL, AUDIT_REPORT_BY_MONTH, S, UNTIL);
    char buf[256];

    if (!T_OK(doc != NULL))
        return;
    T_EQ_STR(labels(team_of(doc, "policy"), buf, sizeof(buf)), "2026-11,2026-12");
    T_EQ_INT(num(period_of(team_of(doc, "policy"), "2026-12"), "start_ms"), S + 29 * DAY);
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
        check_want(doc, &wants[i]);
    cJSON_Delete(doc);

    doc = report(NULL, AUDIT_REPORT_BY_DAY, S, UNTIL);
    if (!T_OK(doc != NULL))
        return;
    T_EQ_STR(labels(team_of(doc, "policy"), buf, sizeof(buf)),
             "2026-11-17,2026-11-18,2026-11-30,2026-12-01");
    for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++)
        check_want(doc, &days[i]);
    cJSON_Delete(doc);
}

/* ISO weeks across a year boundary: 2027-01-01 is a Friday of 2026-W53. */
static void test_iso_year(void)
{
    cJSON *doc =
        report(NULL, AUDIT_REPORT_BY_WEEK, YEAREND - 4 * DAY - DAY / 2, YEAREND + 10 * DAY);
    char buf[256];

    if (!T_OK(doc != NULL))
        return;
    T_EQ_STR(names(doc, "teams", "team", buf, sizeof(buf)), "yearend");
    T_EQ_STR(labels(team_of(doc, "yearend"), buf, sizeof(buf)), "2026-W53,2027-W01");
    T_EQ_INT(num(period_of(team_of(doc, "yearend"), "2026-W53"), "start_ms"),
             YEAREND - 4 * DAY - DAY / 2); /* Monday 2026-12-28 */
    T_EQ_INT(num(period_of(team_of(doc, "yearend"), "2026-W53"), "new_services"), 1);
    T_EQ_INT(num(period_of(team_of(doc, "yearend"), "2027-W01"), "golden"), 1);
    cJSON_Delete(doc);

    doc = report(NULL, AUDIT_REPORT_BY_MONTH, YEAREND - 4 * DAY, YEAREND + 10 * DAY);
    if (T_OK(doc != NULL))
        T_EQ_STR(labels(team_of(doc, "yearend"), buf, sizeof(buf)), "2027-01");
    cJSON_Delete(doc);
}

static void test_team_filter(void)
{
    static const struct want wants[] = {
        {"policy", "all", 2, 11, 7, 0, 2, 0, 20, 3, 7, 0.9, 0.3, 0, 1},
        {"*", "total", 2, 11, 7, 0, 2, 0, 20, 3, 7, 0.9, 0.3, 0, 1},
    };
    static const struct want nobody[] = {
        {"nobody", "all", 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL_RATIO, NULL_RATIO, 0, 0},
        {"nobody", "total", 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL_RATIO, NULL_RATIO, 0, 0},
        {"*", "all", 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL_RATIO, NULL_RATIO, 0, 0},
    };
    cJSON *doc = report("policy", AUDIT_REPORT_BY_NONE, S, UNTIL);
    char buf[256];

    if (!T_OK(doc != NULL))
        return;
    T_EQ_STR(str(doc, "team"), "policy");
    T_EQ_STR(names(doc, "teams", "team", buf, sizeof(buf)), "policy");
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
        check_want(doc, &wants[i]);
    T_EQ_STR(names(doc, "top_exception_policies", "policy", buf, sizeof(buf)),
             "require-probes,cost-tags,no-latest");
    T_EQ_STR(names(doc, "expiring", "id", buf, sizeof(buf)), "EXC-01,EXC-07");
    cJSON_Delete(doc);

    /* A team with nothing: listed, with zeros and null figures. */
    doc = report("nobody", AUDIT_REPORT_BY_NONE, S, UNTIL);
    if (!T_OK(doc != NULL))
        return;
    T_EQ_STR(names(doc, "teams", "team", buf, sizeof(buf)), "nobody");
    for (size_t i = 0; i < sizeof(nobody) / sizeof(nobody[0]); i++)
        check_want(doc, &nobody[i]);
    T_EQ_INT(array_size(doc, "top_exception_policies"), 0);
    T_EQ_INT(array_size(doc, "expiring"), 0);
    cJSON_Delete(doc);

    doc = report("nobody", AUDIT_REPORT_BY_WEEK, S, UNTIL);
    if (T_OK(doc != NULL)) {
        T_EQ_INT(array_size(team_of(doc, "nobody"), "periods"), 0);
        T_EQ_INT(ratio(period_of(team_of(doc, "nobody"), "total"), "headline_adoption"), -1);
        T_EQ_INT(array_size(cJSON_GetObjectItemCaseSensitive(doc, "total"), "periods"), 0);
    }
    cJSON_Delete(doc);
}

/* A window with no data at all. */
static void test_empty_window(void)
{
    static const struct want wants[] = {
        {"*", "all", 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL_RATIO, NULL_RATIO, 0, 0},
        {"*", "total", 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL_RATIO, NULL_RATIO, 0, 0},
    };
    cJSON *doc = report(NULL, AUDIT_REPORT_BY_NONE, S - 400 * DAY, S - 300 * DAY);

    if (!T_OK(doc != NULL))
        return;
    T_EQ_INT(array_size(doc, "teams"), 0);
    T_EQ_INT(array_size(doc, "top_exception_policies"), 0);
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
        check_want(doc, &wants[i]);
    cJSON_Delete(doc);
}

static void test_top_policies(void)
{
    static const struct {
        const char *policy;
        int exceptions, approved;
        const char *teams;
    } want[] = {
        /* Most exceptions first, then most approved, then by name. EXC-04 (denied) and
         * EXC-05 (requested before the window) are not counted; EXC-12 names cost-tags
         * twice and counts once; EXC-10/11 (not an array) are skipped. */
        {"no-latest", 3, 3, "merit,policy"},
        {"cost-tags", 3, 2, "mixed,policy"},
        {"require-probes", 3, 2, "merit,policy"},
    };
    cJSON *doc = report(NULL, AUDIT_REPORT_BY_NONE, S, UNTIL);
    struct audit_report_opts o = {S, UNTIL, NOW, NULL, AUDIT_REPORT_BY_NONE, 0, 2};
    struct pv_err err = {PV_OK, ""};
    const cJSON *arr;
    char buf[256];

    if (!T_OK(doc != NULL))
        return;
    arr = cJSON_GetObjectItemCaseSensitive(doc, "top_exception_policies");
    T_EQ_INT(cJSON_GetArraySize(arr), 3);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const cJSON *p = cJSON_GetArrayItem(arr, (int)i);

        T_EQ_STR(str(p, "policy"), want[i].policy);
        T_EQ_INT(num(p, "exceptions"), want[i].exceptions);
        T_EQ_INT(num(p, "approved_or_active"), want[i].approved);
        T_EQ_STR(joined(cJSON_GetObjectItemCaseSensitive(p, "teams"), buf, sizeof(buf)),
                 want[i].teams);
    }
    cJSON_Delete(doc);

    doc = NULL;
    T_EQ_INT(audit_report(db, &o, &doc, &err), PV_OK);
    T_EQ_STR(names(doc, "top_exception_policies", "policy", buf, sizeof(buf)),
             "no-latest,cost-tags");
    cJSON_Delete(doc);
}

static void test_expiring(void)
{
    struct audit_report_opts o = {S, UNTIL, NOW, NULL, AUDIT_REPORT_BY_NONE, 30, 0};
    struct pv_err err = {PV_OK, ""};
    cJSON *doc = report(NULL, AUDIT_REPORT_BY_NONE, S, UNTIL);
    const cJSON *e;
    char buf[256];

    if (!T_OK(doc != NULL))
        return;
    /* Soonest first; EXC-08 is past its expiry, EXC-09 exactly at now + 14 days. */
    T_EQ_STR(names(doc, "expiring", "id", buf, sizeof(buf)), "EXC-01,EXC-07");
    e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "expiring"), 0);
    T_EQ_STR(str(e, "team"), "policy");
    T_EQ_STR(str(e, "service"), "p-a");
    T_EQ_STR(str(e, "expires_at"), "2026-12-10T00:00:00Z");
    T_EQ_INT(num(e, "expires_ms"), NOW + 3 * DAY);
    T_EQ_STR(joined(cJSON_GetObjectItemCaseSensitive(e, "policies"), buf, sizeof(buf)),
             "require-probes,no-latest");
    cJSON_Delete(doc);

    doc = NULL;
    T_EQ_INT(audit_report(db, &o, &doc, &err), PV_OK);
    T_EQ_INT(num(doc, "expiring_days"), 30);
    T_EQ_STR(names(doc, "expiring", "id", buf, sizeof(buf)), "EXC-01,EXC-07,EXC-09,EXC-05");
    cJSON_Delete(doc);
}

static void test_errors(void)
{
    static const struct {
        int64_t since, until;
        int by, expiring_days, top;
        pv_status rc;
    } cases[] = {
        {S, S, AUDIT_REPORT_BY_NONE, 0, 0, PV_EINVAL},
        {S, S - 1, AUDIT_REPORT_BY_NONE, 0, 0, PV_EINVAL},
        {S, UNTIL, 7, 0, 0, PV_EINVAL},
        {S, UNTIL, AUDIT_REPORT_BY_NONE, -1, 0, PV_EINVAL},
        {S, UNTIL, AUDIT_REPORT_BY_NONE, 100000, 0, PV_EINVAL},
        {S, UNTIL, AUDIT_REPORT_BY_NONE, 0, -1, PV_EINVAL},
    };
    struct pv_err err = {PV_OK, ""};
    char missing[128];
    cJSON *doc = NULL;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct audit_report_opts o = {
            cases[i].since,         cases[i].until, NOW, NULL, (enum audit_report_by)cases[i].by,
            cases[i].expiring_days, cases[i].top};

        err.msg[0] = '\0';
        if (!T_EQ_INT(audit_report(db, &o, &doc, &err), cases[i].rc))
            t_diag("  in error case %zu", i);
        T_OK(err.msg[0] != '\0');
    }
    {
        struct audit_report_opts o = {S, UNTIL, NOW, NULL, AUDIT_REPORT_BY_NONE, 0, 0};

        snprintf(missing, sizeof(missing), "%s/missing.db", dir);
        T_EQ_INT(audit_report(missing, &o, &doc, &err), PV_ENOENT);
        T_EQ_INT(audit_report(missing, &o, &doc, NULL), PV_ENOENT); /* 'err' may be NULL */

        /* A store of schema 1 has neither exceptions nor exception_available. */
        snprintf(missing, sizeof(missing), "%s/v1.db", dir);
        T_EQ_INT(exec_sql(missing, "PRAGMA user_version = 1"), SQLITE_OK);
        T_EQ_INT(audit_report(missing, &o, &doc, &err), PV_EIO);
        T_OK(strstr(err.msg, "schema version 1; the adoption report needs 2") != NULL);
    }
    T_OK(doc == NULL); /* never written on failure */
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    const struct dirent *e;
    char p[4096];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(path);
}

int main(void)
{
    const char *keep = getenv("PAVED_REPORT_DB");
    const char *tmp = getenv("TMPDIR");
    struct audit_options opt;
    struct audit *a = NULL;
    struct pv_err err = {PV_OK, ""};
    char side[4200];

    snprintf(dir, sizeof(dir), "%s/paved-report.XXXXXX",
             tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (keep != NULL && keep[0] != '\0') {
        snprintf(db, sizeof(db), "%s", keep);
        unlink(db);
        snprintf(side, sizeof(side), "%s-wal", db);
        unlink(side);
        snprintf(side, sizeof(side), "%s-shm", db);
        unlink(side);
    } else {
        snprintf(db, sizeof(db), "%s/report.db", dir);
    }
    memset(&opt, 0, sizeof(opt)); /* defaults; no outbox callback */
    opt.path = db;
    if (!T_OK(audit_open(&a, &opt, &err) == PV_OK)) {
        t_diag("audit_open: %s", err.msg);
        remove_dir(dir);
        return t_done();
    }
    write_decisions(a);
    audit_close(a);
    write_exceptions();

    test_store();
    test_whole_window();
    test_by_week();
    test_by_month_and_day();
    test_iso_year();
    test_team_filter();
    test_empty_window();
    test_top_policies();
    test_expiring();
    test_errors();
    remove_dir(dir);
    return t_done();
}
