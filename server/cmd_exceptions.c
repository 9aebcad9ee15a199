/* server/cmd_exceptions.c: `paved exceptions request|list|show|approve|deny|revoke` and
 * `paved breakglass [list|end]`: parse and check the arguments locally, call the server's
 * /v1/exceptions and /v1/breakglass API (apiclient.h) and print the answer for people,
 * or as the server's JSON for tools. */
#include "cmd_exceptions.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "apiclient.h"
#include "duration.h"
#include "jsonutil.h"
#include "xalloc.h"

/* Most values a repeatable option (--policy, --namespace, --team) takes. */
#define MAX_LIST 64
#define MAX_LIMIT 10000

/* ---- Usage ---- */

#define EXIT_STATUS_TEXT                                                                           \
    "exit status: 0 success, 1 the server refused (a 4xx answer: role, separation of\n"            \
    "duties, state, policy rules; the server's message is printed), 2 usage error,\n"              \
    "connection or TLS failure, server error (5xx) or an answer that is not the expected JSON.\n"

static const char usage_exceptions[] =
    "usage: paved exceptions COMMAND [options]\n"
    "\n"
    "An exception lets one team's service (optionally in one namespace) depart from named\n"
    "golden-path policies until it expires. It is requested with a justification, then\n"
    "approved or denied by someone with the approver role who is not the requester;\n"
    "policies with exceptions.self_service approve at once. Approved exceptions expire on\n"
    "their own or are revoked early. Every step is recorded in the server's audit log.\n"
    "These commands call a paved server's API (/v1/exceptions).\n"
    "\n"
    "commands:\n"
    "  request   ask for an exception to one or more policies\n"
    "  list      list exceptions, filtered by state, team, service, policy or expiry\n"
    "  show      one exception with its history of events\n"
    "  approve   approve a pending exception (approver role, not the requester)\n"
    "  deny      deny a pending exception, with a reason\n"
    "  revoke    end an approved exception before it expires\n"
    "\n"
    "Run 'paved exceptions COMMAND --help' for the options of a command.\n"
    "environment: PAVED_SERVER (the server URL), PAVED_TOKEN (the API token).\n" EXIT_STATUS_TEXT;

static const char usage_request[] =
    "usage: paved exceptions request --team T --service S [--namespace NS] --policy P\n"
    "                                [--policy P2 ...] --justification TEXT [--ticket URL]\n"
    "                                --duration DURATION [connection options]\n"
    "\n"
    "Asks the server for an exception (POST /v1/exceptions; token role ci, approver or\n"
    "admin). The server refuses a policy that allows no exceptions, an unknown policy and\n"
    "a duration over the policy's cap. Most requests wait for an approver; when every\n"
    "named policy is self-service the exception is approved at once.\n"
    "\n"
    "options:\n"
    "  --team T              the team that owns the service (required)\n"
    "  --service S           the service the exception is for (required)\n"
    "  --namespace NS        limit the exception to one namespace (default: all of the\n"
    "                        service's namespaces)\n"
    "  --policy P            a policy id to except; repeat for several (at least one)\n"
    "  --justification TEXT  why the golden path does not fit here (required)\n"
    "  --ticket URL          the issue or change ticket that tracks the exception\n"
    "  --duration DURATION   how long it lasts once approved: 90m, 12h, 7d, 2w (required)\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n"
    "output: the exception's id and state, and what happens next: the approve command for\n"
    "an approver, or the expiry of a self-service exception.\n"
    "\n" EXIT_STATUS_TEXT "\n"
    "example:\n"
    "  paved exceptions request --team payments --service checkout --policy cost-tags \\\n"
    "      --justification 'tags land with the billing migration' \\\n"
    "      --ticket https://jira.example/PAY-812 --duration 7d\n";

static const char usage_list[] =
    "usage: paved exceptions list [--state S] [--team T] [--service S] [--policy P]\n"
    "                             [--expiring-within DURATION] [--limit N]\n"
    "                             [--format table|json] [connection options]\n"
    "\n"
    "Lists exceptions (GET /v1/exceptions; any token). Filters combine with AND.\n"
    "\n"
    "options:\n"
    "  --state S                   pending, approved, denied, expired or revoked\n"
    "  --team T                    exceptions of team T\n"
    "  --service S                 exceptions of service S\n"
    "  --policy P                  exceptions that name policy P\n"
    "  --expiring-within DURATION  approved exceptions that expire within DURATION (7d)\n"
    "  --limit N                   at most N exceptions (1 to 10000; default: the server's)\n"
    "  --format FMT                table (default) or json: the JSON array of exception\n"
    "                              objects exactly as the server sent them, which\n"
    "                              'paved check --exceptions FILE' reads, so a CI gate\n"
    "                              decides offline the way the cluster does\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n"
    "table columns: ID, STATE, TEAM/SERVICE, NAMESPACE, POLICIES, EXPIRES, REQUESTED BY.\n"
    "\n" EXIT_STATUS_TEXT "\n"
    "examples:\n"
    "  paved exceptions list --state pending\n"
    "  paved exceptions list --state approved --expiring-within 7d --team payments\n"
    "  paved exceptions list --state approved --format json > exceptions.json\n";

static const char usage_show[] =
    "usage: paved exceptions show ID [--format table|json] [connection options]\n"
    "\n"
    "Shows one exception and its events: each transition (requested, approved, denied,\n"
    "expired, revoked) with its time, actor, new state, and the decision id and hash of\n"
    "its row in the audit log (GET /v1/exceptions/ID; any token).\n"
    "\n"
    "options:\n"
    "  --format FMT   table (default) or json (the exception object as the server sent it)\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n" EXIT_STATUS_TEXT "\n"
    "example:\n"
    "  paved exceptions show EXC-01JD3Z6W4R8N5Q2T7Y9B0C1E2F\n";

static const char usage_approve[] =
    "usage: paved exceptions approve ID [--reason TEXT] [connection options]\n"
    "\n"
    "Approves a pending exception (POST /v1/exceptions/ID/approve). It needs a token with\n"
    "the approver or admin role, and the server refuses the requester itself (separation\n"
    "of duties, 403) and an exception that is not pending (409). The exception applies at\n"
    "once and expires after its duration.\n"
    "\n"
    "options:\n"
    "  --reason TEXT   why it was approved, kept in the audit log\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n" EXIT_STATUS_TEXT "\n"
    "example:\n"
    "  paved exceptions approve EXC-01JD3Z6W4R8N5Q2T7Y9B0C1E2F --reason 'billing migration'\n";

static const char usage_deny[] =
    "usage: paved exceptions deny ID --reason TEXT [connection options]\n"
    "\n"
    "Denies a pending exception (POST /v1/exceptions/ID/deny; approver or admin role). The\n"
    "reason is required: the requester reads it in the notification and 'show'.\n"
    "\n"
    "options:\n"
    "  --reason TEXT   why it was denied (required)\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n" EXIT_STATUS_TEXT "\n"
    "example:\n"
    "  paved exceptions deny EXC-01JD3Z6W4R8N5Q2T7Y9B0C1E2F --reason 'add the tags instead'\n";

static const char usage_revoke[] =
    "usage: paved exceptions revoke ID [--reason TEXT] [connection options]\n"
    "\n"
    "Ends an approved exception before it expires (POST /v1/exceptions/ID/revoke;\n"
    "approver or admin role). Decisions from then on apply the policies again. The server\n"
    "refuses an exception that is not approved (409).\n"
    "\n"
    "options:\n"
    "  --reason TEXT   why it was revoked, kept in the audit log\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n" EXIT_STATUS_TEXT "\n"
    "example:\n"
    "  paved exceptions revoke EXC-01JD3Z6W4R8N5Q2T7Y9B0C1E2F --reason 'tags are in'\n";

static const char usage_breakglass[] =
    "usage: paved breakglass --duration DURATION --reason TEXT (--namespace NS | --team T)...\n"
    "                        [connection options]\n"
    "       paved breakglass list [--format table|json] [connection options]\n"
    "       paved breakglass end ID [--reason TEXT] [connection options]\n"
    "\n"
    "Break-glass opens a short window for an incident: in the named namespaces and for\n"
    "the named teams, violations that would deny only warn, and each such decision is\n"
    "recorded with the path 'breakglass' and the window's id. Exceptions still apply as\n"
    "usual. The first form starts a window (POST /v1/breakglass; admin role); the\n"
    "server refuses a duration over its configured cap (422). 'list' shows the windows\n"
    "(any token) and 'end' closes one early (admin role).\n"
    "\n"
    "options:\n"
    "  --duration DURATION   how long the window stays open: 15m, 30m, 2h (required)\n"
    "  --reason TEXT         the incident, kept in the audit log (required)\n"
    "  --namespace NS        a namespace the window covers; repeat for several\n"
    "  --team T              a team the window covers; repeat for several\n"
    "                        (at least one --namespace or --team)\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n"
    "Run 'paved breakglass list --help' or 'paved breakglass end --help' for those.\n"
    "\n" EXIT_STATUS_TEXT "\n"
    "example:\n"
    "  paved breakglass --duration 30m --reason 'INC-4711 checkout down' --namespace payments\n";

static const char usage_bg_list[] =
    "usage: paved breakglass list [--format table|json] [connection options]\n"
    "\n"
    "Lists the break-glass windows, active and ended (GET /v1/breakglass; any token).\n"
    "\n"
    "options:\n"
    "  --format FMT   table (default) or json (the array of windows as the server sent it)\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n"
    "table columns: ID, ACTIVE, STARTED BY, ENDS, NAMESPACES, TEAMS, REASON.\n"
    "\n" EXIT_STATUS_TEXT;

static const char usage_bg_end[] =
    "usage: paved breakglass end ID [--reason TEXT] [connection options]\n"
    "\n"
    "Closes a break-glass window before its end (POST /v1/breakglass/ID/end; admin\n"
    "role): from then on the policies deny again.\n"
    "\n"
    "options:\n"
    "  --reason TEXT   why it ended, kept in the audit log\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n" EXIT_STATUS_TEXT "\n"
    "example:\n"
    "  paved breakglass end BG-01JD3Z9K2M4P6R8T0V2X4Z6B8D --reason 'INC-4711 resolved'\n";

/* ---- Arguments ---- */

enum {
    OPT_TEAM = 256,
    OPT_SERVICE,
    OPT_NAMESPACE,
    OPT_POLICY,
    OPT_JUSTIFICATION,
    OPT_TICKET,
    OPT_DURATION,
    OPT_REASON,
    OPT_STATE,
    OPT_EXPIRING_WITHIN,
    OPT_LIMIT,
    OPT_FORMAT,
};

struct list {
    const char *v[MAX_LIST];
    size_t n;
};

/* What one command line said; strings borrowed from argv. */
struct args {
    struct apiclient_opts conn;
    const char *cmd; /* "exceptions approve", for messages */
    const char *id;
    const char *service;
    const char *justification;
    const char *ticket;
    const char *duration;
    const char *reason;
    const char *state;
    const char *expiring_within;
    long limit;
    bool is_json;
    struct list teams;
    struct list namespaces;
    struct list policies;
};

static int fail_usage(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "paved %s: %s%s%s\nRun 'paved %s --help' for usage.\n", cmd, msg,
            arg != NULL ? ": " : "", arg != NULL ? arg : "", cmd);
    return APICLIENT_EXIT_ERROR;
}

/* The name of a text option (they must not be empty), or NULL for the others. */
static const char *option_name(int c)
{
    switch (c) {
    case OPT_TEAM:
        return "--team";
    case OPT_SERVICE:
        return "--service";
    case OPT_NAMESPACE:
        return "--namespace";
    case OPT_POLICY:
        return "--policy";
    case OPT_JUSTIFICATION:
        return "--justification";
    case OPT_TICKET:
        return "--ticket";
    case OPT_REASON:
        return "--reason";
    default:
        return NULL;
    }
}

static bool is_state(const char *s)
{
    static const char *const states[] = {"pending", "approved", "denied", "expired", "revoked"};

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(s, states[i]) == 0)
            return true;
    return false;
}

/* Records the value of one command option 'c' in 'a'. Returns -1 to go on, or the
 * exit status after printing a usage error. */
static int take_option(struct args *a, int c, const char *arg)
{
    struct list *l = NULL;
    int64_t secs;
    char *end = NULL;

    /* Every text option names something: an empty one is a slip (an unset variable). */
    if (option_name(c) != NULL && arg[0] == '\0')
        return fail_usage(a->cmd, "empty value for", option_name(c));
    switch (c) {
    case OPT_TEAM:
        l = &a->teams;
        break;
    case OPT_NAMESPACE:
        l = &a->namespaces;
        break;
    case OPT_POLICY:
        l = &a->policies;
        break;
    case OPT_SERVICE:
        a->service = arg;
        break;
    case OPT_JUSTIFICATION:
        a->justification = arg;
        break;
    case OPT_TICKET:
        a->ticket = arg;
        break;
    case OPT_REASON:
        a->reason = arg;
        break;
    case OPT_DURATION:
        if (!duration_parse(arg, &secs))
            return fail_usage(a->cmd,
                              "--duration: expected a whole number and a unit s, m, h, d or w "
                              "(30m, 7d)",
                              arg);
        a->duration = arg;
        break;
    case OPT_EXPIRING_WITHIN:
        if (!duration_parse(arg, &secs))
            return fail_usage(a->cmd,
                              "--expiring-within: expected a whole number and a unit s, m, h, d "
                              "or w (7d)",
                              arg);
        a->expiring_within = arg;
        break;
    case OPT_STATE:
        if (!is_state(arg))
            return fail_usage(
                a->cmd, "--state: expected pending, approved, denied, expired or revoked", arg);
        a->state = arg;
        break;
    case OPT_LIMIT:
        a->limit = strtol(arg, &end, 10);
        if (end == arg || *end != '\0' || a->limit < 1 || a->limit > MAX_LIMIT)
            return fail_usage(a->cmd, "--limit: expected a number from 1 to 10000", arg);
        break;
    case OPT_FORMAT:
        if (strcmp(arg, "json") != 0 && strcmp(arg, "table") != 0)
            return fail_usage(a->cmd, "--format: expected table or json", arg);
        a->is_json = strcmp(arg, "json") == 0;
        break;
    default:
        PV_ASSERT(!"an option in a table without a case");
    }
    if (l != NULL) {
        if (l->n == MAX_LIST)
            return fail_usage(a->cmd, "more than 64 values for", option_name(c));
        l->v[l->n++] = arg;
    }
    return -1;
}

/* Parses argv (argv[0] is the subcommand) with the options 'longopts' accepts, into 'a'.
 * 'want_id' asks for exactly one ID argument. Returns -1 to go on, or the exit status:
 * 0 after printing 'usage' for --help, 2 after a usage error. */
static int parse_args(struct args *a, const char *cmd, const char *usage,
                      const struct option *longopts, bool want_id, int argc, char **argv)
{
    struct pv_err err = {PV_OK, ""};
    int c;
    int rc;

    memset(a, 0, sizeof(*a));
    apiclient_opts_init(&a->conn);
    a->cmd = cmd;
    optind = 1;
    opterr = 0;
    /* The leading ':' makes getopt_long tell a missing value (':') from an unknown
     * option ('?'). */
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return APICLIENT_EXIT_OK;
        }
        if (c == ':')
            return fail_usage(cmd, "missing value for", argv[optind - 1]);
        if (c == '?' && optopt > ' ' && optopt < 0x7f) {
            char opt[3] = {'-', (char)optopt, '\0'};

            return fail_usage(cmd, "unknown option", opt);
        }
        if (c == '?')
            return fail_usage(cmd, "unknown option", argv[optind - 1]);
        if (apiclient_is_opt(c)) {
            if (apiclient_opts_set(&a->conn, c, optarg, &err))
                return fail_usage(cmd, err.msg, NULL);
            continue;
        }
        rc = take_option(a, c, optarg);
        if (rc >= 0)
            return rc;
    }
    if (want_id) {
        if (optind >= argc)
            return fail_usage(cmd, "the exception or window ID is required", NULL);
        if (argv[optind][0] == '\0')
            return fail_usage(cmd, "empty ID", NULL);
        a->id = argv[optind++];
    }
    if (optind < argc)
        return fail_usage(cmd, "unexpected argument", argv[optind]);
    return -1;
}

/* Opens the client 'a' asks for into *out. Returns -1 to go on, or 2 after printing why
 * not. */
static int open_client(const struct args *a, struct apiclient **out)
{
    struct pv_err err = {PV_OK, ""};

    if (apiclient_open_opts(out, &a->conn, &err))
        return fail_usage(a->cmd, err.msg, NULL);
    return -1;
}

/* Calls the server and frees what the call borrowed; see apiclient_run. */
static int call(const struct args *a, const char *method, const char *path, cJSON *body,
                const char *key, int want_type, cJSON **answer_out)
{
    struct apiclient *c = NULL;
    int rc = open_client(a, &c);

    if (rc < 0)
        rc = apiclient_run(c, a->cmd, method, path, body, key, want_type, answer_out);
    apiclient_close(c);
    cJSON_Delete(body);
    return rc;
}

/* Returns "prefix/<escaped id>suffix"; the caller frees it. */
static char *id_path(const char *prefix, const char *id, const char *suffix)
{
    char *esc = apiclient_escape(id);
    size_t cap = strlen(prefix) + 1 + strlen(esc) + strlen(suffix) + 1;
    char *p = xmalloc(cap);

    snprintf(p, cap, "%s/%s%s", prefix, esc, suffix);
    free(esc);
    return p;
}

/* Appends "?key=value" (or "&key=value") with 'value' escaped to the heap string *path. */
static void query_add(char **path, const char *key, const char *value)
{
    char *esc;
    size_t len;
    size_t cap;

    if (value == NULL)
        return;
    esc = apiclient_escape(value);
    len = strlen(*path);
    cap = len + 1 + strlen(key) + 1 + strlen(esc) + 1;
    *path = xrealloc(*path, cap);
    snprintf(*path + len, cap - len, "%c%s=%s", strchr(*path, '?') != NULL ? '&' : '?', key, esc);
    free(esc);
}

static cJSON *string_array(const struct list *l)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; i < l->n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(l->v[i]));
    return arr;
}

/* {"reason": ...} or {} when there is none. */
static cJSON *reason_body(const char *reason)
{
    cJSON *body = cJSON_CreateObject();

    if (reason != NULL)
        cJSON_AddStringToObject(body, "reason", reason);
    return body;
}

/* ---- Output ---- */

/* The cleaned string o[name], or "-" when it is missing or not a string. */
static const char *field(const cJSON *o, const char *name, char *buf, size_t cap)
{
    return apiclient_clean(json_str(o, name, NULL), buf, cap);
}

static bool number(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsNumber(v))
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

/* The time at o[name_at] (RFC 3339 from the server), else o[name_ms] formatted, else "-". */
static const char *when(const cJSON *o, const char *name_at, const char *name_ms, char *buf,
                        size_t cap)
{
    struct tm tm;
    time_t t;
    int64_t ms;

    if (name_at != NULL && json_str(o, name_at, NULL) != NULL)
        return field(o, name_at, buf, cap);
    if (name_ms == NULL || !number(o, name_ms, &ms)) {
        snprintf(buf, cap, "-");
        return buf;
    }
    t = (time_t)(ms / 1000);
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "%" PRId64, ms);
    return buf;
}

/* The strings of the array o[name], cleaned and joined by ',', or "-" when none. */
static const char *joined(const cJSON *o, const char *name, char *buf, size_t cap)
{
    const cJSON *el;
    size_t len = 0;
    char one[256];

    buf[0] = '\0';
    cJSON_ArrayForEach(el, cJSON_GetObjectItemCaseSensitive(o, name))
    {
        int n;

        if (!cJSON_IsString(el))
            continue;
        n = snprintf(buf + len, cap - len, "%s%s", len > 0 ? "," : "",
                     apiclient_clean(el->valuestring, one, sizeof(one)));
        if (n < 0 || (size_t)n >= cap - len) {
            memcpy(buf + cap - 4, "...", 4); /* cap is at least 64: keep what fits */
            return buf;
        }
        len += (size_t)n;
    }
    if (len == 0)
        snprintf(buf, cap, "-");
    return buf;
}

static const char *duration_of(const cJSON *o, char *buf, size_t cap)
{
    int64_t s;

    if (!number(o, "duration_s", &s) || s <= 0)
        snprintf(buf, cap, "-");
    else
        duration_format(s, buf, cap);
    return buf;
}

static void print_json(const cJSON *v)
{
    /* cJSON allocates with xmalloc (main), so NULL cannot happen. */
    char *s = cJSON_Print(v);

    if (s != NULL)
        printf("%s\n", s);
    cJSON_free(s);
}

static void print_exception_table(const cJSON *arr)
{
    static const char fmt[] = "%-30s  %-8s  %-30s  %-14s  %-24s  %-20s  %s\n";
    const cJSON *o;

    if (cJSON_GetArraySize(arr) == 0) {
        printf("no exceptions match\n");
        return;
    }
    printf(fmt, "ID", "STATE", "TEAM/SERVICE", "NAMESPACE", "POLICIES", "EXPIRES", "REQUESTED BY");
    cJSON_ArrayForEach(o, arr)
    {
        char id[64], state[16], team[64], service[64], ts[130], ns[64], policies[256];
        char expires[64], dur[32], by[64];

        snprintf(ts, sizeof(ts), "%s/%s", field(o, "team", team, sizeof(team)),
                 field(o, "service", service, sizeof(service)));
        when(o, "expires_at", "expires_ms", expires, sizeof(expires));
        if (strcmp(expires, "-") == 0 && json_str(o, "state", NULL) != NULL &&
            strcmp(json_str(o, "state", NULL), "pending") == 0)
            snprintf(expires, sizeof(expires), "%s once approved",
                     duration_of(o, dur, sizeof(dur)));
        printf(fmt, field(o, "id", id, sizeof(id)), field(o, "state", state, sizeof(state)), ts,
               field(o, "namespace", ns, sizeof(ns)),
               joined(o, "policies", policies, sizeof(policies)), expires,
               field(o, "requested_by", by, sizeof(by)));
    }
}

static void print_exception(const cJSON *e)
{
    static const char efmt[] = "  %-20s  %-19s  %-9s  %-20s  %-30s  %s\n";
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(e, "events");
    const cJSON *ev;
    char a[1024], b[256], t[64], d[32];

    printf("exception %s\n", field(e, "id", a, sizeof(a)));
    printf("  state          %s%s\n", field(e, "state", a, sizeof(a)),
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "self_service")) ? " (self-service)"
                                                                             : "");
    printf("  team/service   %s/", field(e, "team", a, sizeof(a)));
    printf("%s\n", field(e, "service", a, sizeof(a)));
    printf("  namespace      %s\n", json_str(e, "namespace", NULL) != NULL
                                        ? field(e, "namespace", a, sizeof(a))
                                        : "(all of the service's)");
    printf("  policies       %s\n", joined(e, "policies", a, sizeof(a)));
    printf("  justification  %s\n", field(e, "justification", a, sizeof(a)));
    printf("  ticket         %s\n", field(e, "ticket", a, sizeof(a)));
    printf("  requested      %s by %s, for %s\n",
           when(e, "requested_at", "requested_ms", t, sizeof(t)),
           field(e, "requested_by", b, sizeof(b)), duration_of(e, d, sizeof(d)));
    if (json_str(e, "decided_by", NULL) != NULL) {
        printf("  decided        %s by %s", when(e, NULL, "decided_ms", t, sizeof(t)),
               field(e, "decided_by", b, sizeof(b)));
        if (json_str(e, "reason", NULL) != NULL)
            printf(": %s", field(e, "reason", a, sizeof(a)));
        printf("\n");
    }
    printf("  expires        %s\n", when(e, "expires_at", "expires_ms", t, sizeof(t)));
    printf("  ended          %s\n", when(e, NULL, "ended_ms", t, sizeof(t)));
    if (!cJSON_IsArray(events))
        return;
    printf("\nevents:\n");
    printf(efmt, "TIME", "EVENT", "STATE", "ACTOR", "DECISION ID", "HASH");
    cJSON_ArrayForEach(ev, events)
    {
        char event[32], state[16], actor[64], decision[64], hash[80];

        printf(efmt, when(ev, NULL, "time_ms", t, sizeof(t)),
               field(ev, "event", event, sizeof(event)), field(ev, "state", state, sizeof(state)),
               field(ev, "actor", actor, sizeof(actor)),
               field(ev, "decision_id", decision, sizeof(decision)),
               field(ev, "hash", hash, sizeof(hash)));
    }
}

static void print_breakglass_table(const cJSON *arr)
{
    static const char fmt[] = "%-30s  %-6s  %-16s  %-26s  %-24s  %-20s  %s\n";
    const cJSON *o;

    if (cJSON_GetArraySize(arr) == 0) {
        printf("no break-glass windows\n");
        return;
    }
    printf(fmt, "ID", "ACTIVE", "STARTED BY", "ENDS", "NAMESPACES", "TEAMS", "REASON");
    cJSON_ArrayForEach(o, arr)
    {
        char id[64], by[64], ends[64], ns[256], teams[256], reason[256];

        /* A window closed early shows when it ended; the others when they end. */
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "ended_ms"))) {
            snprintf(ends, sizeof(ends), "ended ");
            when(o, NULL, "ended_ms", ends + 6, sizeof(ends) - 6);
        } else {
            when(o, "ends_at", "ends_ms", ends, sizeof(ends));
        }
        printf(fmt, field(o, "id", id, sizeof(id)),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "active")) ? "yes" : "no",
               field(o, "started_by", by, sizeof(by)), ends,
               joined(o, "namespaces", ns, sizeof(ns)), joined(o, "teams", teams, sizeof(teams)),
               field(o, "reason", reason, sizeof(reason)));
    }
}

/* ---- paved exceptions ---- */

static int run_request(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"team", required_argument, NULL, OPT_TEAM},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"justification", required_argument, NULL, OPT_JUSTIFICATION},
        {"ticket", required_argument, NULL, OPT_TICKET},
        {"duration", required_argument, NULL, OPT_DURATION},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char cmd[] = "exceptions request";
    struct args a;
    cJSON *body;
    cJSON *ans = NULL;
    const cJSON *e;
    const char *state;
    char id[128], t[64], policies[512], who[256], b1[64];
    int rc = parse_args(&a, cmd, usage_request, longopts, false, argc, argv);

    if (rc >= 0)
        return rc;
    if (a.teams.n == 0)
        return fail_usage(cmd, "--team T is required", NULL);
    if (a.teams.n > 1)
        return fail_usage(cmd, "--team given more than once (one exception is for one team)", NULL);
    if (a.service == NULL)
        return fail_usage(cmd, "--service S is required", NULL);
    if (a.namespaces.n > 1)
        return fail_usage(cmd, "--namespace given more than once (request one per namespace)",
                          NULL);
    if (a.policies.n == 0)
        return fail_usage(cmd, "at least one --policy P is required", NULL);
    if (a.justification == NULL)
        return fail_usage(cmd, "--justification TEXT is required", NULL);
    if (a.duration == NULL)
        return fail_usage(cmd, "--duration DURATION is required (7d)", NULL);

    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "team", a.teams.v[0]);
    cJSON_AddStringToObject(body, "service", a.service);
    if (a.namespaces.n == 1)
        cJSON_AddStringToObject(body, "namespace", a.namespaces.v[0]);
    cJSON_AddItemToObject(body, "policies", string_array(&a.policies));
    cJSON_AddStringToObject(body, "justification", a.justification);
    if (a.ticket != NULL)
        cJSON_AddStringToObject(body, "ticket", a.ticket);
    cJSON_AddStringToObject(body, "duration", a.duration);
    rc = call(&a, "POST", "/v1/exceptions", body, "exception", cJSON_Object, &ans);
    if (rc != APICLIENT_EXIT_OK)
        return rc;

    e = cJSON_GetObjectItemCaseSensitive(ans, "exception");
    state = json_str(e, "state", NULL);
    field(e, "id", id, sizeof(id));
    joined(e, "policies", policies, sizeof(policies));
    snprintf(who, sizeof(who), "%s/%s", field(e, "team", t, sizeof(t)),
             field(e, "service", b1, sizeof(b1)));
    if (state != NULL && strcmp(state, "pending") == 0) {
        printf("requested %s: pending, waiting for an approver\n", id);
        printf("  %s may depart from %s for %s once approved\n", who, policies,
               duration_of(e, b1, sizeof(b1)));
        printf("next: an approver runs: paved exceptions approve %s\n", id);
        printf("      (or: paved exceptions deny %s --reason TEXT)\n", id);
    } else if (state != NULL && strcmp(state, "approved") == 0) {
        printf("requested %s: approved%s until %s\n", id,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "self_service")) ? " (self-service)"
                                                                                 : "",
               when(e, "expires_at", "expires_ms", t, sizeof(t)));
        printf("  %s may depart from %s from now on\n", who, policies);
        printf("end it early with: paved exceptions revoke %s\n", id);
    } else {
        printf("requested %s: %s\n", id, field(e, "state", t, sizeof(t)));
        if (json_str(e, "reason", NULL) != NULL)
            printf("  reason: %s\n", field(e, "reason", policies, sizeof(policies)));
    }
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

static int run_list(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"state", required_argument, NULL, OPT_STATE},
        {"team", required_argument, NULL, OPT_TEAM},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"expiring-within", required_argument, NULL, OPT_EXPIRING_WITHIN},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"format", required_argument, NULL, OPT_FORMAT},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char cmd[] = "exceptions list";
    struct args a;
    cJSON *ans = NULL;
    const cJSON *arr;
    char *path;
    char limit[24];
    int rc = parse_args(&a, cmd, usage_list, longopts, false, argc, argv);

    if (rc >= 0)
        return rc;
    if (a.teams.n > 1 || a.policies.n > 1)
        return fail_usage(cmd, "--team and --policy filter by one value each", NULL);
    path = xstrdup("/v1/exceptions");
    query_add(&path, "state", a.state);
    query_add(&path, "team", a.teams.n == 1 ? a.teams.v[0] : NULL);
    query_add(&path, "service", a.service);
    query_add(&path, "policy", a.policies.n == 1 ? a.policies.v[0] : NULL);
    query_add(&path, "expiring_within", a.expiring_within);
    snprintf(limit, sizeof(limit), "%ld", a.limit);
    query_add(&path, "limit", a.limit > 0 ? limit : NULL);
    rc = call(&a, "GET", path, NULL, "exceptions", cJSON_Array, &ans);
    free(path);
    if (rc != APICLIENT_EXIT_OK)
        return rc;
    arr = cJSON_GetObjectItemCaseSensitive(ans, "exceptions");
    if (a.is_json)
        print_json(arr);
    else
        print_exception_table(arr);
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

static int run_show(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct args a;
    cJSON *ans = NULL;
    const cJSON *e;
    char *path;
    int rc = parse_args(&a, "exceptions show", usage_show, longopts, true, argc, argv);

    if (rc >= 0)
        return rc;
    path = id_path("/v1/exceptions", a.id, "");
    rc = call(&a, "GET", path, NULL, "exception", cJSON_Object, &ans);
    free(path);
    if (rc != APICLIENT_EXIT_OK)
        return rc;
    e = cJSON_GetObjectItemCaseSensitive(ans, "exception");
    if (a.is_json)
        print_json(e);
    else
        print_exception(e);
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

/* approve, deny and revoke: POST /v1/exceptions/ID/<verb> {"reason"}. */
static int run_transition(int argc, char **argv, const char *verb, const char *usage,
                          bool is_reason_required)
{
    static const struct option longopts[] = {
        {"reason", required_argument, NULL, OPT_REASON},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct args a;
    cJSON *ans = NULL;
    const cJSON *e;
    char cmd[64];
    char suffix[32];
    char *path;
    char id[128], state[32], t[64], policies[512], team[64], service[64];
    int rc;

    snprintf(cmd, sizeof(cmd), "exceptions %s", verb);
    rc = parse_args(&a, cmd, usage, longopts, true, argc, argv);
    if (rc >= 0)
        return rc;
    if (is_reason_required && a.reason == NULL)
        return fail_usage(cmd, "--reason TEXT is required", NULL);
    snprintf(suffix, sizeof(suffix), "/%s", verb);
    path = id_path("/v1/exceptions", a.id, suffix);
    rc = call(&a, "POST", path, reason_body(a.reason), "exception", cJSON_Object, &ans);
    free(path);
    if (rc != APICLIENT_EXIT_OK)
        return rc;
    e = cJSON_GetObjectItemCaseSensitive(ans, "exception");
    printf("%s: %s\n", field(e, "id", id, sizeof(id)), field(e, "state", state, sizeof(state)));
    if (strcmp(state, "approved") == 0)
        printf("  %s/%s may depart from %s until %s\n", field(e, "team", team, sizeof(team)),
               field(e, "service", service, sizeof(service)),
               joined(e, "policies", policies, sizeof(policies)),
               when(e, "expires_at", "expires_ms", t, sizeof(t)));
    else if (strcmp(state, "revoked") == 0 || strcmp(state, "denied") == 0)
        printf("  %s/%s follows %s again\n", field(e, "team", team, sizeof(team)),
               field(e, "service", service, sizeof(service)),
               joined(e, "policies", policies, sizeof(policies)));
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

int cmd_exceptions(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;

    if (sub == NULL) {
        fputs(usage_exceptions, stderr);
        return APICLIENT_EXIT_ERROR;
    }
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_exceptions, stdout);
        return APICLIENT_EXIT_OK;
    }
    if (strcmp(sub, "request") == 0)
        return run_request(argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return run_list(argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return run_show(argc - 1, argv + 1);
    if (strcmp(sub, "approve") == 0)
        return run_transition(argc - 1, argv + 1, "approve", usage_approve, false);
    if (strcmp(sub, "deny") == 0)
        return run_transition(argc - 1, argv + 1, "deny", usage_deny, true);
    if (strcmp(sub, "revoke") == 0)
        return run_transition(argc - 1, argv + 1, "revoke", usage_revoke, false);
    fprintf(stderr, "paved exceptions: unknown command '%s'\n\n%s", sub, usage_exceptions);
    return APICLIENT_EXIT_ERROR;
}

/* ---- paved breakglass ---- */

static int run_bg_start(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"duration", required_argument, NULL, OPT_DURATION},
        {"reason", required_argument, NULL, OPT_REASON},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"team", required_argument, NULL, OPT_TEAM},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char cmd[] = "breakglass";
    struct args a;
    cJSON *body;
    cJSON *ans = NULL;
    const cJSON *w;
    char id[128], t[64], ns[512], teams[512];
    int rc = parse_args(&a, cmd, usage_breakglass, longopts, false, argc, argv);

    if (rc >= 0)
        return rc;
    if (a.duration == NULL)
        return fail_usage(cmd, "--duration DURATION is required (30m)", NULL);
    if (a.reason == NULL)
        return fail_usage(cmd, "--reason TEXT is required", NULL);
    if (a.namespaces.n == 0 && a.teams.n == 0)
        return fail_usage(cmd, "name what the window covers: at least one --namespace or --team",
                          NULL);
    body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "duration", a.duration);
    cJSON_AddStringToObject(body, "reason", a.reason);
    cJSON_AddItemToObject(body, "namespaces", string_array(&a.namespaces));
    cJSON_AddItemToObject(body, "teams", string_array(&a.teams));
    rc = call(&a, "POST", "/v1/breakglass", body, "breakglass", cJSON_Object, &ans);
    if (rc != APICLIENT_EXIT_OK)
        return rc;
    w = cJSON_GetObjectItemCaseSensitive(ans, "breakglass");
    printf("break-glass %s: open until %s\n", field(w, "id", id, sizeof(id)),
           when(w, "ends_at", "ends_ms", t, sizeof(t)));
    printf("  namespaces  %s\n", joined(w, "namespaces", ns, sizeof(ns)));
    printf("  teams       %s\n", joined(w, "teams", teams, sizeof(teams)));
    printf("end it early with: paved breakglass end %s\n", id);
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

static int run_bg_list(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct args a;
    cJSON *ans = NULL;
    const cJSON *arr;
    int rc = parse_args(&a, "breakglass list", usage_bg_list, longopts, false, argc, argv);

    if (rc >= 0)
        return rc;
    rc = call(&a, "GET", "/v1/breakglass", NULL, "breakglass", cJSON_Array, &ans);
    if (rc != APICLIENT_EXIT_OK)
        return rc;
    arr = cJSON_GetObjectItemCaseSensitive(ans, "breakglass");
    if (a.is_json)
        print_json(arr);
    else
        print_breakglass_table(arr);
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

static int run_bg_end(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"reason", required_argument, NULL, OPT_REASON},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct args a;
    cJSON *ans = NULL;
    const cJSON *w;
    char *path;
    char id[128], t[64];
    int rc = parse_args(&a, "breakglass end", usage_bg_end, longopts, true, argc, argv);

    if (rc >= 0)
        return rc;
    path = id_path("/v1/breakglass", a.id, "/end");
    rc = call(&a, "POST", path, reason_body(a.reason), "breakglass", cJSON_Object, &ans);
    free(path);
    if (rc != APICLIENT_EXIT_OK)
        return rc;
    w = cJSON_GetObjectItemCaseSensitive(ans, "breakglass");
    printf("break-glass %s: ended at %s\n", field(w, "id", id, sizeof(id)),
           when(w, NULL, "ended_ms", t, sizeof(t)));
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

int cmd_breakglass(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;

    if (sub == NULL) {
        fputs(usage_breakglass, stderr);
        return APICLIENT_EXIT_ERROR;
    }
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_breakglass, stdout);
        return APICLIENT_EXIT_OK;
    }
    if (strcmp(sub, "list") == 0)
        return run_bg_list(argc - 1, argv + 1);
    if (strcmp(sub, "end") == 0)
        return run_bg_end(argc - 1, argv + 1);
    if (sub[0] != '-') {
        fprintf(stderr,
                "paved breakglass: unknown command '%s' (list, end, or options to start "
                "a window)\nRun 'paved breakglass --help' for usage.\n",
                sub);
        return APICLIENT_EXIT_ERROR;
    }
    return run_bg_start(argc, argv);
}
