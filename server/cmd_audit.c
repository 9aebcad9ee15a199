/* server/cmd_audit.c: `paved audit verify|query|export|backup|report`: reads the decision
 * log of a SQLite file (read-only, so beside a running server) and prints it for people
 * or tools. */
#include "cmd_audit.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "audit.h"
#include "clock.h"
#include "report.h"

enum {
    AUDIT_EXIT_OK = 0,
    AUDIT_EXIT_BAD = 1,
    AUDIT_EXIT_USAGE = 2,
};

static const char usage[] =
    "usage: paved audit COMMAND --db FILE [options]\n"
    "\n"
    "Reads the decision log that `paved serve` writes: every admission, CI and API\n"
    "decision, each row sealed into a SHA-256 hash chain. The file is opened read-only,\n"
    "so these commands are safe beside a running server.\n"
    "\n"
    "commands:\n"
    "  verify    walk the hash chain and name the first row that does not match\n"
    "  query     list decisions, newest first, filtered by time, team, service, policy,\n"
    "            path or source\n"
    "  export    write every decision, oldest first, as JSON Lines\n"
    "  backup    copy the store while the server keeps writing, then verify the copy\n"
    "  report    adoption of the golden path per team: golden, exception, off-road and\n"
    "            denied decisions of new services, headline and voluntary adoption, the\n"
    "            policies teams route around, and the exceptions about to expire\n"
    "\n"
    "Run 'paved audit COMMAND --help' for the options of a command.\n"
    "exit status: 0 success, 1 verify found a bad row, 2 usage error or unreadable file.\n";

static const char usage_verify[] =
    "usage: paved audit verify --db FILE\n"
    "\n"
    "Walks the decision log from its first row. Each row stores prev_hash, the hash of\n"
    "the row before it (64 zeros for the first), and hash = SHA-256(prev_hash ||\n"
    "canonical row), the canonical row covering every other column (audit/chain.c). A\n"
    "row whose content was edited, a deleted or reordered row, or a rewritten prev_hash\n"
    "breaks the chain at that row.\n"
    "\n"
    "options:\n"
    "  --db FILE     the SQLite audit database (required)\n"
    "  -h, --help    show this help\n"
    "\n"
    "output: 'chain ok: N rows', or 'chain broken at rowid R (decision ID): REASON'.\n"
    "A deleted last row leaves no trace in the chain itself: compare the row count with\n"
    "an earlier export or the server's metrics.\n"
    "\n"
    "exit status: 0 the chain is intact, 1 a bad row was found, 2 usage error, missing\n"
    "or unreadable file.\n"
    "\n"
    "example:\n"
    "  paved audit verify --db /var/lib/paved/paved.db\n";

static const char usage_query[] =
    "usage: paved audit query --db FILE [filters] [--limit N] [--format table|json]\n"
    "\n"
    "Lists decisions, newest first. Filters combine with AND.\n"
    "\n"
    "options:\n"
    "  --db FILE         the SQLite audit database (required)\n"
    "  --since TIME      decisions at or after TIME\n"
    "  --until TIME      decisions before TIME\n"
    "  --team T          decisions of team T\n"
    "  --service S       decisions of service S\n"
    "  --policy P        decisions with a violation of policy P (any enforcement)\n"
    "  --path P          golden, exception, off-road or denied\n"
    "  --source S        admission, ci or api\n"
    "  --limit N         at most N decisions (default 1000)\n"
    "  --format FMT      table (default) or json (an array of objects with every column)\n"
    "  -h, --help        show this help\n"
    "\n"
    "TIME is a duration before now (30d, 12h, 15m, 90s, 2w), a date (2026-11-01, midnight\n"
    "UTC) or an RFC 3339 timestamp (2026-11-01T08:30:00Z, 2026-11-01T10:30:00+02:00).\n"
    "\n"
    "exit status: 0 success (also when nothing matches), 2 usage error, missing or\n"
    "unreadable file.\n"
    "\n"
    "examples:\n"
    "  paved audit query --db paved.db --since 7d --path off-road\n"
    "  paved audit query --db paved.db --team payments --policy psa-restricted --format json\n";

static const char usage_backup[] =
    "usage: paved audit backup --db FILE --out FILE [--force]\n"
    "\n"
    "Copies the audit store with SQLite's online backup API: one consistent snapshot,\n"
    "taken in a read transaction that never blocks the server's writer, so it is safe\n"
    "while paved serve runs. The copy is written beside --out and renamed into place, is\n"
    "a standalone file (no -wal), and is verified (the hash chain is walked) before the\n"
    "command reports success. Restore by stopping the server and copying the file back.\n"
    "\n"
    "options:\n"
    "  --db FILE     the store to copy\n"
    "  --out FILE    where to write the copy (refused when it exists)\n"
    "  --force       replace an existing --out\n"
    "\n"
    "exit status: 0 copied and verified, 1 the copy does not verify, 2 usage error or the\n"
    "copy failed.\n"
    "\n"
    "example:\n"
    "  paved audit backup --db /var/lib/paved/paved.db --out /backup/paved-$(date +%F).db\n";

static const char usage_report[] =
    "usage: paved audit report --db FILE [--since TIME] [--until TIME] [--team T]\n"
    "                          [--by day|week|month] [--format table|json|csv]\n"
    "                          [--expiring-days N] [--top N]\n"
    "\n"
    "Tells a platform team whether it wins on merit: of the services that started in the\n"
    "window, how many decisions followed the golden path, and how many of those that\n"
    "could have taken an exception chose the golden path anyway.\n"
    "\n"
    "What is counted:\n"
    "  new service     a (team, service) whose first recorded deploy or provision\n"
    "                  decision is in the window [--since, --until). A service first seen\n"
    "                  before the window is not new, however busy it is inside it.\n"
    "  decisions       deploy and provision decisions of new services inside the window,\n"
    "                  dry runs excluded, by path: golden, exception, off-road, denied,\n"
    "                  break-glass. Credential decisions, mutating-webhook records and\n"
    "                  audit events never count.\n"
    "  headline        (golden + exception) / all those decisions.\n"
    "  voluntary       golden / (golden + exception), counting only decisions of new\n"
    "                  services for which an exception was available (a golden-path\n"
    "                  policy in scope allows exceptions).\n"
    "  merit           voluntary >= 70 %: teams choose the golden path.\n"
    "  policy          voluntary < 40 % while headline >= 70 %: adoption is mandated.\n"
    "A figure without decisions to divide is shown as '-' (null in JSON), and no flag is\n"
    "raised on it.\n"
    "\n"
    "The report also lists the policies named by exceptions requested in the window (any\n"
    "state but denied), most requested first, with how many were approved and by which\n"
    "teams: what teams route around, the platform team's backlog. And the approved\n"
    "exceptions that expire in the next --expiring-days days, soonest first.\n"
    "\n"
    "options:\n"
    "  --db FILE            the SQLite audit database (required)\n"
    "  --since TIME         start of the window, included (default 30d: 30 days ago)\n"
    "  --until TIME         end of the window, excluded (default now)\n"
    "  --team T             only team T (listed even when it has nothing in the window)\n"
    "  --by PERIOD          day, week or month: one row per team and period, UTC; weeks\n"
    "                       are ISO weeks (Monday 00:00, '2026-W48'). Periods cut by the\n"
    "                       window count only what falls inside it; periods without a new\n"
    "                       service or a decision are left out. Default: the whole window.\n"
    "  --format FMT         table (default), json (the document of GET\n"
    "                       /v1/reports/adoption) or csv (a header line, then one row per\n"
    "                       team and period; totals only in table and json)\n"
    "  --expiring-days N    the expiring list looks N days ahead (default 14, max 3650)\n"
    "  --top N              at most N policies in the exception list (default 10, max 1000)\n"
    "  --cost               the cost report instead: the estimated monthly cost of what is\n"
    "                       admitted now (the quota ledger), and what the window's allowed\n"
    "                       decisions added (each records its object's cost)\n"
    "  --group-by G         with --cost: team (default), service or cost-center (the\n"
    "                       cost-center label)\n"
    "  -h, --help           show this help\n"
    "\n"
    "TIME is a duration before now (30d, 12h, 15m, 90s, 2w), a date (2026-11-01, midnight\n"
    "UTC) or an RFC 3339 timestamp (2026-11-01T08:30:00Z, 2026-11-01T10:30:00+02:00).\n"
    "\n"
    "exit status: 0 success (also when the window is empty), 2 usage error, missing or\n"
    "unreadable file.\n"
    "\n"
    "examples:\n"
    "  paved audit report --db /var/lib/paved/paved.db\n"
    "  paved audit report --db paved.db --since 2026-10-01 --until 2027-01-01 --by month\n"
    "  paved audit report --db paved.db --since 12w --by week --team payments --format csv\n";

static const char usage_export[] =
    "usage: paved audit export --db FILE [--out FILE]\n"
    "\n"
    "Writes every decision, oldest first, as one JSON object per line (JSON Lines) with\n"
    "every column, including prev_hash and hash, so the chain can be checked elsewhere.\n"
    "\n"
    "options:\n"
    "  --db FILE     the SQLite audit database (required)\n"
    "  --out FILE    write to FILE (replaced only once the export is complete) instead of\n"
    "                standard output\n"
    "  -h, --help    show this help\n"
    "\n"
    "exit status: 0 success, 2 usage error, missing or unreadable database, or a failed\n"
    "write.\n"
    "\n"
    "example:\n"
    "  paved audit export --db paved.db --out decisions-2026-11.jsonl\n";

/* ---- Time arguments ---- */

/* Reads exactly 'n' digits at 's' into *out. */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Parses "YYYY-MM-DD" at 's' (10 characters) into the date fields of *tm. */
static bool parse_date(const char *s, struct tm *tm)
{
    int y, mo, d;

    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    memset(tm, 0, sizeof(*tm));
    tm->tm_year = y - 1900;
    tm->tm_mon = mo - 1;
    tm->tm_mday = d;
    return true;
}

/* timegm, refusing dates that do not exist (2026-02-30). */
static bool to_epoch(struct tm *tm, int64_t *out)
{
    struct tm check;
    struct tm want = *tm;
    time_t t = timegm(tm);

    if (gmtime_r(&t, &check) == NULL || check.tm_mday != want.tm_mday ||
        check.tm_mon != want.tm_mon || check.tm_year != want.tm_year)
        return false;
    *out = (int64_t)t;
    return true;
}

/* Parses a --since/--until value (see usage_query) into Unix milliseconds. */
bool cmd_audit_parse_time(const char *s, int64_t now_ms, int64_t *out)
{
    size_t len = strlen(s);
    struct tm tm;
    int64_t secs;
    int64_t ms = 0;
    const char *p;

    if (len >= 2 && strchr("smhdw", s[len - 1]) != NULL && s[0] >= '0' && s[0] <= '9') {
        static const int64_t unit_ms[] = {1000, 60000, 3600000, 86400000, 604800000};
        char *end = NULL;
        long long n = strtoll(s, &end, 10);

        if (end != s + len - 1 || n < 0 || n > 100000000)
            return false;
        *out = now_ms - n * unit_ms[strchr("smhdw", s[len - 1]) - "smhdw"];
        return true;
    }
    if (len < 10 || !parse_date(s, &tm))
        return false;
    if (len == 10) {
        if (!to_epoch(&tm, &secs))
            return false;
        *out = secs * 1000;
        return true;
    }
    /* RFC 3339: date 'T' HH:MM:SS [.fraction] ('Z' | ('+'|'-') HH:MM) */
    p = s + 10;
    if ((*p != 'T' && *p != 't' && *p != ' ') || !digits(p + 1, 2, &tm.tm_hour) || p[3] != ':' ||
        !digits(p + 4, 2, &tm.tm_min) || p[6] != ':' || !digits(p + 7, 2, &tm.tm_sec) ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return false;
    p += 9;
    if (*p == '.') {
        int scale = 100;

        p++;
        if (*p < '0' || *p > '9')
            return false;
        for (; *p >= '0' && *p <= '9'; p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    if (!to_epoch(&tm, &secs))
        return false;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        *out = secs * 1000 + ms;
        return true;
    }
    if (*p == '+' || *p == '-') {
        int oh, om;
        int64_t off;

        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || p[6] != '\0' ||
            oh > 23 || om > 59)
            return false;
        off = ((int64_t)oh * 3600 + om * 60) * (*p == '+' ? 1 : -1);
        *out = (secs - off) * 1000 + ms;
        return true;
    }
    return false;
}

/* ---- Output ---- */

static void format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%" PRId64, ms);
}

static const char *str_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) ? v->valuestring : "-";
}

/* Comma-joined policy ids of the violations of 'o' into 'buf'. */
static void policy_list(const cJSON *o, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "violations");
    const cJSON *el;
    size_t len = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(el, v)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(el, "policy");
        int n;

        if (!cJSON_IsString(p) || strstr(buf, p->valuestring) != NULL)
            continue;
        n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", p->valuestring);
        if (n < 0 || (size_t)n >= cap - len) {
            buf[len] = '\0';
            return;
        }
        len += (size_t)n;
    }
    if (len == 0)
        snprintf(buf, cap, "-");
}

static void print_table(const cJSON *arr)
{
    static const char fmt[] = "%-20s  %-30s  %-10s  %-14s  %-18s  %-8s  %-9s  %s\n";
    const cJSON *o;

    printf(fmt, "TIME", "DECISION ID", "SOURCE", "TEAM", "SERVICE", "DECISION", "PATH", "POLICIES");
    cJSON_ArrayForEach(o, arr)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "time_ms");
        char when[40];
        char policies[512];

        format_time(cJSON_IsNumber(t) ? (int64_t)t->valuedouble : 0, when, sizeof(when));
        policy_list(o, policies, sizeof(policies));
        printf(fmt, when, str_field(o, "id"), str_field(o, "source"), str_field(o, "team"),
               str_field(o, "service"), str_field(o, "decision"), str_field(o, "path"), policies);
    }
}

/* ---- Report output ---- */

/* The number o[name] as an integer, or 0 when missing. */
static long long num_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

/* A ratio of 'o' as "87.5%", or "-" when it is null. */
static void percent(const cJSON *o, const char *name, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.1f%%", v->valuedouble * 100.0);
    else
        snprintf(buf, cap, "-");
}

/* The FLAG column of period 'p': "merit", "policy" or "-". */
static const char *flag_text(const cJSON *p)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "winning_on_merit")))
        return "merit";
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "winning_on_policy")))
        return "policy";
    return "-";
}

/* Comma-joined strings of the array o[name] into 'buf' ("-" when empty). */
static void join_strings(const cJSON *o, const char *name, char *buf, size_t cap)
{
    const cJSON *el;
    size_t len = 0;

    buf[0] = '\0';
    cJSON_ArrayForEach(el, cJSON_GetObjectItemCaseSensitive(o, name))
    {
        int n;

        if (!cJSON_IsString(el))
            continue;
        n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", el->valuestring);
        if (n < 0 || (size_t)n >= cap - len) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)n;
    }
    if (len == 0)
        snprintf(buf, cap, "-");
}

/* One row of the table; 'period' NULL: the period's own label. */
static void report_row(int team_w, const char *team, const char *period, const cJSON *p)
{
    char headline[16];
    char voluntary[16];

    percent(p, "headline_adoption", headline, sizeof(headline));
    percent(p, "voluntary_adoption", voluntary, sizeof(voluntary));
    printf("%-*s  %-10s  %5lld  %6lld  %9lld  %8lld  %6lld  %11lld  %8s  %9s  %s\n", team_w, team,
           period != NULL ? period : str_field(p, "period"), num_field(p, "new_services"),
           num_field(p, "golden"), num_field(p, "exception"), num_field(p, "off_road"),
           num_field(p, "denied"), num_field(p, "breakglass"), headline, voluntary, flag_text(p));
}

/* The rows of one entry of "teams" (or the "total" entry): its periods, then its total
 * when there is more than the one period "all". */
static void report_rows(int team_w, const char *team, const cJSON *entry, bool is_by)
{
    const cJSON *p;

    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(entry, "periods"))
    {
        report_row(team_w, team, NULL, p);
    }
    if (is_by)
        report_row(team_w, team, "total", cJSON_GetObjectItemCaseSensitive(entry, "total"));
}

/* Prints the report document 'doc' (borrowed) for a person: a row per team and period,
 * the all-teams rows, the top exception policies and the expiring exceptions. */
static void print_report_table(const cJSON *doc)
{
    const cJSON *teams = cJSON_GetObjectItemCaseSensitive(doc, "teams");
    const cJSON *top = cJSON_GetObjectItemCaseSensitive(doc, "top_exception_policies");
    const cJSON *expiring = cJSON_GetObjectItemCaseSensitive(doc, "expiring");
    const char *by = str_field(doc, "by");
    bool is_by = strcmp(by, "none") != 0;
    const cJSON *el;
    int team_w = (int)strlen("all teams");
    int policy_w = (int)strlen("POLICY");
    char buf[1024];

    cJSON_ArrayForEach(el, teams)
    {
        int n = (int)strlen(str_field(el, "team"));

        if (n > team_w)
            team_w = n > 40 ? 40 : n;
    }
    printf("adoption of the golden path, %s to %s%s%s\n", str_field(doc, "since"),
           str_field(doc, "until"), is_by ? ", by " : "", is_by ? by : "");
    printf("new services: first decision in the window; decisions: theirs, deploy and "
           "provision, no dry runs\n\n");
    printf("%-*s  %-10s  %5s  %6s  %9s  %8s  %6s  %11s  %8s  %9s  %s\n", team_w, "TEAM", "PERIOD",
           "NEW", "GOLDEN", "EXCEPTION", "OFF-ROAD", "DENIED", "BREAK-GLASS", "HEADLINE",
           "VOLUNTARY", "FLAG");
    cJSON_ArrayForEach(el, teams)
    {
        report_rows(team_w, str_field(el, "team"), el, is_by);
    }
    if (cJSON_GetArraySize(teams) == 0)
        printf("(no new services in the window)\n");
    report_rows(team_w, "all teams", cJSON_GetObjectItemCaseSensitive(doc, "total"), is_by);
    printf("\nFLAG: merit = voluntary >= 70%%; policy = voluntary < 40%% with headline >= 70%%\n");

    printf("\ntop exception policies (exceptions requested in the window, denied ones "
           "excluded):\n");
    cJSON_ArrayForEach(el, top)
    {
        int n = (int)strlen(str_field(el, "policy"));

        if (n > policy_w)
            policy_w = n > 60 ? 60 : n;
    }
    if (cJSON_GetArraySize(top) == 0) {
        printf("(none)\n");
    } else {
        printf("%-*s  %10s  %8s  %s\n", policy_w, "POLICY", "EXCEPTIONS", "APPROVED", "TEAMS");
        cJSON_ArrayForEach(el, top)
        {
            join_strings(el, "teams", buf, sizeof(buf));
            printf("%-*s  %10lld  %8lld  %s\n", policy_w, str_field(el, "policy"),
                   num_field(el, "exceptions"), num_field(el, "approved_or_active"), buf);
        }
    }

    printf("\napproved exceptions expiring in the next %lld days (soonest first):\n",
           num_field(doc, "expiring_days"));
    if (cJSON_GetArraySize(expiring) == 0) {
        printf("(none)\n");
        return;
    }
    printf("%-30s  %-20s  %-*s  %-18s  %s\n", "ID", "EXPIRES", team_w, "TEAM", "SERVICE",
           "POLICIES");
    cJSON_ArrayForEach(el, expiring)
    {
        join_strings(el, "policies", buf, sizeof(buf));
        printf("%-30s  %-20s  %-*s  %-18s  %s\n", str_field(el, "id"), str_field(el, "expires_at"),
               team_w, str_field(el, "team"), str_field(el, "service"), buf);
    }
}

/* Writes 's' as one CSV field (RFC 4180: quoted when it holds a comma, quote or line
 * break, quotes doubled). */
static void csv_field(const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* Writes ",<ratio>" with four decimals, or "," when it is null. */
static void csv_ratio(const cJSON *p, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);

    if (cJSON_IsNumber(v))
        printf(",%.4f", v->valuedouble);
    else
        fputs(",", stdout);
}

/* Prints a header line, then one row per team and period of 'doc' (borrowed); the
 * totals are left to the reader (the counts add up; the ratios follow from them). */
static void print_report_csv(const cJSON *doc)
{
    const cJSON *team;
    const cJSON *p;
    char start[40];

    printf("team,period,start,new_services,golden,exception,off_road,denied,breakglass,"
           "decisions,eligible_golden,eligible_exception,headline_adoption,voluntary_adoption,"
           "winning_on_merit,winning_on_policy\n");
    cJSON_ArrayForEach(team, cJSON_GetObjectItemCaseSensitive(doc, "teams"))
    {
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(team, "periods"))
        {
            format_time(num_field(p, "start_ms"), start, sizeof(start));
            csv_field(str_field(team, "team"));
            putchar(',');
            csv_field(str_field(p, "period"));
            printf(",%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld", start,
                   num_field(p, "new_services"), num_field(p, "golden"), num_field(p, "exception"),
                   num_field(p, "off_road"), num_field(p, "denied"), num_field(p, "breakglass"),
                   num_field(p, "decisions"), num_field(p, "eligible_golden"),
                   num_field(p, "eligible_exception"));
            csv_ratio(p, "headline_adoption");
            csv_ratio(p, "voluntary_adoption");
            printf(",%s,%s\n",
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "winning_on_merit")) ? "true"
                                                                                         : "false",
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "winning_on_policy"))
                       ? "true"
                       : "false");
        }
    }
}

/* ---- Commands ---- */

static int fail_usage(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "paved audit %s: %s%s%s\nRun 'paved audit %s --help' for usage.\n", cmd, msg,
            arg ? ": " : "", arg ? arg : "", cmd);
    return AUDIT_EXIT_USAGE;
}

static int fail_err(const char *cmd, const struct pv_err *err)
{
    const char *msg = err->msg;

    if (strncmp(msg, "audit: ", 7) == 0)
        msg += 7;
    fprintf(stderr, "paved audit %s: %s\n", cmd, msg);
    return AUDIT_EXIT_USAGE;
}

enum {
    OPT_DB = 256,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_TEAM,
    OPT_SERVICE,
    OPT_POLICY,
    OPT_PATH,
    OPT_SOURCE,
    OPT_LIMIT,
    OPT_FORMAT,
    OPT_OUT,
    OPT_BY,
    OPT_EXPIRING_DAYS,
    OPT_TOP,
    OPT_COST,
    OPT_GROUP_BY,
};

static int run_verify(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct audit_verify_result res;
    struct pv_err err = {PV_OK, ""};
    const char *db = NULL;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db = optarg;
            break;
        case 'h':
            fputs(usage_verify, stdout);
            return AUDIT_EXIT_OK;
        default:
            return fail_usage("verify", "unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("verify", "unexpected argument", argv[optind]);
    if (db == NULL)
        return fail_usage("verify", "--db FILE is required", NULL);
    if (audit_verify(db, &res, &err))
        return fail_err("verify", &err);
    if (res.is_ok) {
        printf("chain ok: %" PRIu64 " rows\n", res.rows);
        return AUDIT_EXIT_OK;
    }
    printf("chain broken at rowid %" PRId64 " (decision %s): %s\n", res.bad_rowid, res.bad_id,
           res.reason);
    printf("%" PRIu64 " rows checked; rows before rowid %" PRId64 " are intact\n", res.rows,
           res.bad_rowid);
    return AUDIT_EXIT_BAD;
}

static int run_query(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"team", required_argument, NULL, OPT_TEAM},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"path", required_argument, NULL, OPT_PATH},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct audit_filter f;
    struct pv_err err = {PV_OK, ""};
    const char *db = NULL;
    bool is_json = false;
    int64_t now = clock_wall_ms();
    cJSON *rows = NULL;
    char *end = NULL;
    long long n;
    int c;

    memset(&f, 0, sizeof(f));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db = optarg;
            break;
        case OPT_SINCE:
            if (!cmd_audit_parse_time(optarg, now, &f.since_ms))
                return fail_usage("query", "--since: not a duration, date or RFC 3339 time",
                                  optarg);
            break;
        case OPT_UNTIL:
            if (!cmd_audit_parse_time(optarg, now, &f.until_ms))
                return fail_usage("query", "--until: not a duration, date or RFC 3339 time",
                                  optarg);
            if (f.until_ms == 0)
                f.until_ms = -1; /* 0 means "no bound": before the epoch matches nothing */
            break;
        case OPT_TEAM:
            f.team = optarg;
            break;
        case OPT_SERVICE:
            f.service = optarg;
            break;
        case OPT_POLICY:
            f.policy = optarg;
            break;
        case OPT_PATH:
            if (strcmp(optarg, "golden") != 0 && strcmp(optarg, "exception") != 0 &&
                strcmp(optarg, "off-road") != 0 && strcmp(optarg, "denied") != 0)
                return fail_usage("query", "--path: expected golden, exception, off-road or denied",
                                  optarg);
            f.path = optarg;
            break;
        case OPT_SOURCE:
            f.source = optarg;
            break;
        case OPT_LIMIT:
            n = strtoll(optarg, &end, 10);
            if (end == optarg || *end != '\0' || n < 1 || n > 10000000)
                return fail_usage("query", "--limit: expected a number from 1 to 10000000", optarg);
            f.limit = (size_t)n;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "json") == 0)
                is_json = true;
            else if (strcmp(optarg, "table") == 0)
                is_json = false;
            else
                return fail_usage("query", "--format: expected table or json", optarg);
            break;
        case 'h':
            fputs(usage_query, stdout);
            return AUDIT_EXIT_OK;
        default:
            return fail_usage("query", "unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("query", "unexpected argument", argv[optind]);
    if (db == NULL)
        return fail_usage("query", "--db FILE is required", NULL);
    if (f.since_ms != 0 && f.until_ms != 0 && f.until_ms <= f.since_ms)
        return fail_usage("query", "--until must be later than --since", NULL);
    if (audit_query(db, &f, &rows, &err))
        return fail_err("query", &err);
    if (is_json) {
        char *s = cJSON_Print(rows);

        if (s != NULL)
            printf("%s\n", s);
        cJSON_free(s);
    } else {
        print_table(rows);
    }
    cJSON_Delete(rows);
    return AUDIT_EXIT_OK;
}

static int run_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"out", required_argument, NULL, OPT_OUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pv_err err = {PV_OK, ""};
    const char *db = NULL;
    const char *out_path = NULL;
    char tmp[4096];
    FILE *out = stdout;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db = optarg;
            break;
        case OPT_OUT:
            out_path = optarg;
            break;
        case 'h':
            fputs(usage_export, stdout);
            return AUDIT_EXIT_OK;
        default:
            return fail_usage("export", "unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("export", "unexpected argument", argv[optind]);
    if (db == NULL)
        return fail_usage("export", "--db FILE is required", NULL);
    if (out_path != NULL) {
        /* Written beside the target and renamed, so a failed export leaves no half file. */
        int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", out_path, (long)getpid());

        if (n < 0 || (size_t)n >= sizeof(tmp))
            return fail_usage("export", "--out: path too long", NULL);
        out = fopen(tmp, "w");
        if (out == NULL) {
            fprintf(stderr, "paved audit export: cannot write %s: %s\n", out_path, strerror(errno));
            return AUDIT_EXIT_USAGE;
        }
    }
    if (audit_export(db, out, &err)) {
        if (out != stdout) {
            fclose(out);
            remove(tmp);
        }
        return fail_err("export", &err);
    }
    if (out != stdout) {
        if (fclose(out) != 0 || rename(tmp, out_path) != 0) {
            fprintf(stderr, "paved audit export: cannot write %s: %s\n", out_path, strerror(errno));
            remove(tmp);
            return AUDIT_EXIT_USAGE;
        }
    }
    return AUDIT_EXIT_OK;
}

static int run_backup(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"out", required_argument, NULL, OPT_OUT},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pv_err err = {PV_OK, ""};
    struct audit_verify_result res;
    const char *db = NULL;
    const char *out_path = NULL;
    bool is_force = false;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db = optarg;
            break;
        case OPT_OUT:
            out_path = optarg;
            break;
        case 'f':
            is_force = true;
            break;
        case 'h':
            fputs(usage_backup, stdout);
            return AUDIT_EXIT_OK;
        default:
            return fail_usage("backup", "unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("backup", "unexpected argument", argv[optind]);
    if (db == NULL || out_path == NULL)
        return fail_usage("backup", "--db FILE and --out FILE are required", NULL);
    if (audit_backup(db, out_path, is_force, &err))
        return fail_err("backup", &err);
    if (audit_verify(out_path, &res, &err))
        return fail_err("backup", &err);
    if (!res.is_ok) {
        fprintf(stderr, "paved audit backup: the copy %s does not verify: row %lld (%s): %s\n",
                out_path, (long long)res.bad_rowid, res.bad_id, res.reason);
        return AUDIT_EXIT_BAD;
    }
    printf("backup %s: %llu rows, chain ok\n", out_path, (unsigned long long)res.rows);
    return AUDIT_EXIT_OK;
}

/* Parses a whole number from 'min' to 'max' into *out. */
static bool parse_count(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    long n;

    errno = 0;
    n = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || n < min || n > max)
        return false;
    *out = (int)n;
    return true;
}

/* `paved audit report --cost`: the ledger (what is admitted now) and what the window's
 * decisions added, grouped by team, service or cost center. */
static int run_cost_report(const char *db, const struct audit_report_opts *o,
                           enum audit_cost_group group, bool is_json, bool is_csv)
{
    struct audit_cost_filter f = {0};
    struct pv_err err = {PV_OK, ""};
    const char *g = audit_cost_group_name(group);
    cJSON *doc = NULL;
    const cJSON *x;
    char since[40];
    char until[40];

    f.team = o->team;
    f.since_ms = o->since_ms;
    f.until_ms = o->until_ms;
    f.group_by = group;
    if (audit_costs(db, &f, &doc, &err))
        return fail_err("report", &err);
    if (is_json) {
        char *text = cJSON_Print(doc);

        puts(text);
        free(text);
        cJSON_Delete(doc);
        return AUDIT_EXIT_OK;
    }
    if (is_csv) {
        printf("%s,objects,cpu_millis,memory_bytes,storage_bytes,environments,monthly_cost\n", g);
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(doc, "current"))
        {
            printf("%s,%.0f,%.0f,%.0f,%.0f,%.0f,%.2f\n", str_field(x, g),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "objects")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "cpu_millis")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "memory_bytes")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "storage_bytes")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "environments")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "monthly_cost")));
        }
        cJSON_Delete(doc);
        return AUDIT_EXIT_OK;
    }
    format_time(o->since_ms, since, sizeof(since));
    format_time(o->until_ms, until, sizeof(until));
    printf("estimated monthly cost now (the quota ledger: what is admitted and holds "
           "resources)\n\n");
    printf("%-32s %8s %10s %12s %12s %5s %14s\n", "GROUP", "OBJECTS", "CPU", "MEMORY", "STORAGE",
           "ENVS", "MONTHLY COST");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(doc, "current"))
    {
        printf("%-32.32s %8.0f %10.2f %11.2fG %11.2fG %5.0f %14.2f\n", str_field(x, g),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "objects")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "cpu_millis")) / 1000.0,
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "memory_bytes")) /
                   1073741824.0,
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "storage_bytes")) /
                   1073741824.0,
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "environments")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "monthly_cost")));
    }
    printf("\nadmitted from %s to %s (allowed decisions, dry runs excluded)\n\n", since, until);
    printf("%-32s %10s %20s %20s\n", "GROUP", "DECISIONS", "COST OF OBJECTS", "COST ADDED");
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(doc, "admitted"))
    {
        printf("%-32.32s %10.0f %20.2f %20.2f\n", str_field(x, g),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "decisions")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "monthly_cost_of_objects")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(x, "monthly_cost_added")));
    }
    printf("\ncosts are per month, in the currency of the server's price table\n");
    cJSON_Delete(doc);
    return AUDIT_EXIT_OK;
}

/* `paved audit report`: see usage_report. Returns the exit status. */
static int run_report(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"since", required_argument, NULL, OPT_SINCE},
        {"until", required_argument, NULL, OPT_UNTIL},
        {"team", required_argument, NULL, OPT_TEAM},
        {"by", required_argument, NULL, OPT_BY},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"expiring-days", required_argument, NULL, OPT_EXPIRING_DAYS},
        {"top", required_argument, NULL, OPT_TOP},
        {"cost", no_argument, NULL, OPT_COST},
        {"group-by", required_argument, NULL, OPT_GROUP_BY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    enum { FMT_TABLE, FMT_JSON, FMT_CSV } format = FMT_TABLE;
    struct audit_report_opts o;
    struct pv_err err = {PV_OK, ""};
    const char *db = NULL;
    int64_t now = clock_wall_ms();
    cJSON *doc = NULL;
    bool is_cost = false;
    enum audit_cost_group group = AUDIT_COST_BY_TEAM;
    int c;

    memset(&o, 0, sizeof(o));
    o.now_ms = now;
    o.until_ms = now;
    o.since_ms = now - INT64_C(30) * 86400000;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db = optarg;
            break;
        case OPT_SINCE:
            if (!cmd_audit_parse_time(optarg, now, &o.since_ms))
                return fail_usage("report", "--since: not a duration, date or RFC 3339 time",
                                  optarg);
            break;
        case OPT_UNTIL:
            if (!cmd_audit_parse_time(optarg, now, &o.until_ms))
                return fail_usage("report", "--until: not a duration, date or RFC 3339 time",
                                  optarg);
            break;
        case OPT_TEAM:
            o.team = optarg;
            break;
        case OPT_BY:
            if (strcmp(optarg, "day") == 0)
                o.by = AUDIT_REPORT_BY_DAY;
            else if (strcmp(optarg, "week") == 0)
                o.by = AUDIT_REPORT_BY_WEEK;
            else if (strcmp(optarg, "month") == 0)
                o.by = AUDIT_REPORT_BY_MONTH;
            else
                return fail_usage("report", "--by: expected day, week or month", optarg);
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "table") == 0)
                format = FMT_TABLE;
            else if (strcmp(optarg, "json") == 0)
                format = FMT_JSON;
            else if (strcmp(optarg, "csv") == 0)
                format = FMT_CSV;
            else
                return fail_usage("report", "--format: expected table, json or csv", optarg);
            break;
        case OPT_EXPIRING_DAYS:
            if (!parse_count(optarg, 1, 3650, &o.expiring_days))
                return fail_usage("report", "--expiring-days: expected a number from 1 to 3650",
                                  optarg);
            break;
        case OPT_TOP:
            if (!parse_count(optarg, 1, 1000, &o.top_policies))
                return fail_usage("report", "--top: expected a number from 1 to 1000", optarg);
            break;
        case OPT_COST:
            is_cost = true;
            break;
        case OPT_GROUP_BY:
            if (strcmp(optarg, "team") == 0)
                group = AUDIT_COST_BY_TEAM;
            else if (strcmp(optarg, "service") == 0)
                group = AUDIT_COST_BY_SERVICE;
            else if (strcmp(optarg, "cost-center") == 0)
                group = AUDIT_COST_BY_COST_CENTER;
            else
                return fail_usage("report", "--group-by: expected team, service or cost-center",
                                  optarg);
            break;
        case 'h':
            fputs(usage_report, stdout);
            return AUDIT_EXIT_OK;
        default:
            return fail_usage("report", "unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("report", "unexpected argument", argv[optind]);
    if (db == NULL)
        return fail_usage("report", "--db FILE is required", NULL);
    if (o.until_ms <= o.since_ms)
        return fail_usage("report", "--until must be later than --since", NULL);
    if (is_cost)
        return run_cost_report(db, &o, group, format == FMT_JSON, format == FMT_CSV);
    if (audit_report(db, &o, &doc, &err))
        return fail_err("report", &err);
    if (format == FMT_JSON) {
        char *s = cJSON_Print(doc);

        if (s != NULL)
            printf("%s\n", s);
        cJSON_free(s);
    } else if (format == FMT_CSV) {
        print_report_csv(doc);
    } else {
        print_report_table(doc);
    }
    cJSON_Delete(doc);
    return AUDIT_EXIT_OK;
}

int cmd_audit(int argc, char **argv)
{
    const char *sub;

    if (argc < 2) {
        fputs(usage, stderr);
        return AUDIT_EXIT_USAGE;
    }
    sub = argv[1];
    if (strcmp(sub, "verify") == 0)
        return run_verify(argc - 1, argv + 1);
    if (strcmp(sub, "query") == 0)
        return run_query(argc - 1, argv + 1);
    if (strcmp(sub, "export") == 0)
        return run_export(argc - 1, argv + 1);
    if (strcmp(sub, "backup") == 0)
        return run_backup(argc - 1, argv + 1);
    if (strcmp(sub, "report") == 0)
        return run_report(argc - 1, argv + 1);
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage, stdout);
        return AUDIT_EXIT_OK;
    }
    fprintf(stderr, "paved audit: unknown command '%s'\n\n%s", sub, usage);
    return AUDIT_EXIT_USAGE;
}
