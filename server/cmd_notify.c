/* server/cmd_notify.c: `paved notify list|retry`: shows the outbox of outbound
 * notifications and puts dead messages back in line, beside a running server. */
#include "cmd_notify.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "outbox.h"

enum {
    NOTIFY_EXIT_OK = 0,
    NOTIFY_EXIT_NONE = 1,
    NOTIFY_EXIT_USAGE = 2,
};

static const char usage[] =
    "usage: paved notify COMMAND --db FILE [options]\n"
    "\n"
    "Shows and repairs the outbox of outbound notifications. Each event (an exception\n"
    "requested, approved, denied, revoked, expiring or expired; break-glass started or\n"
    "ended; a denial by a watched policy) becomes one message per endpoint whose filter\n"
    "matches, written in the same transaction as its audit record. paved serve POSTs\n"
    "each message, signed with HMAC-SHA256, retries failures with exponential backoff,\n"
    "and marks it dead after notifications.max_attempts failed attempts.\n"
    "\n"
    "commands:\n"
    "  list      list messages, newest first, with their state, attempts and last error\n"
    "  retry     put dead (or pending) messages back in line, to be sent at once\n"
    "\n"
    "Run 'paved notify COMMAND --help' for the options of a command.\n"
    "exit status: 0 success, 1 nothing to retry or no such message, 2 usage error or\n"
    "unreadable file.\n";

static const char usage_list[] =
    "usage: paved notify list --db FILE [--state STATE] [--limit N] [--format table|json]\n"
    "\n"
    "Lists outbox messages, newest first. The file is opened read-only, so this is safe\n"
    "beside a running server.\n"
    "\n"
    "options:\n"
    "  --db FILE         the SQLite audit database (required)\n"
    "  --state STATE     pending (waiting for its next attempt, or in flight), delivered\n"
    "                    or dead (needs an operator: see 'paved notify retry')\n"
    "  --limit N         at most N messages (default 1000)\n"
    "  --format FMT      table (default) or json (an array of objects with every column\n"
    "                    and the body)\n"
    "  -h, --help        show this help\n"
    "\n"
    "columns: ID (sent as X-Paved-Delivery; receivers dedupe on it), CREATED, ENDPOINT,\n"
    "EVENT, STATE, ATTEMPTS, NEXT (earliest next attempt of a pending message), STATUS\n"
    "(HTTP status of the last answer, - when there was none) and LAST ERROR.\n"
    "\n"
    "exit status: 0 success (also when nothing matches), 2 usage error, missing or\n"
    "unreadable file.\n"
    "\n"
    "examples:\n"
    "  paved notify list --db /var/lib/paved/paved.db --state dead\n"
    "  paved notify list --db paved.db --limit 10 --format json\n";

static const char usage_retry[] =
    "usage: paved notify retry --db FILE (ID ... | --dead)\n"
    "\n"
    "Puts messages back in line: state pending, attempts 0, next attempt now. A running\n"
    "paved serve sends them within a second; otherwise they go out when it starts. Fix\n"
    "what made them fail first (the endpoint's URL, secret, certificate or availability:\n"
    "see LAST ERROR in 'paved notify list --state dead'). The last error and status stay\n"
    "until the next attempt replaces them.\n"
    "\n"
    "A retried message keeps its id (X-Paved-Delivery), so a receiver that did process\n"
    "it before can recognise it. Delivered messages are never sent again.\n"
    "\n"
    "options:\n"
    "  --db FILE     the SQLite audit database (required; opened for writing)\n"
    "  --dead        every dead message\n"
    "  ID ...        these messages, dead or pending (ids from 'paved notify list')\n"
    "  -h, --help    show this help\n"
    "\n"
    "exit status: 0 messages were put back, 1 no message is dead (--dead), or an ID does\n"
    "not exist or was already delivered (the other IDs are still retried), 2 usage error,\n"
    "missing or unreadable file.\n"
    "\n"
    "examples:\n"
    "  paved notify retry --db /var/lib/paved/paved.db --dead\n"
    "  paved notify retry --db paved.db 42 43\n";

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

/* The number o[name] as an integer, or -1 when it is null or missing. */
static int64_t int_field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static void print_table(const cJSON *arr)
{
    static const char fmt[] = "%-8s  %-20s  %-20s  %-20s  %-9s  %-8s  %-20s  %-6s  %s\n";
    const cJSON *o;

    printf(fmt, "ID", "CREATED", "ENDPOINT", "EVENT", "STATE", "ATTEMPTS", "NEXT", "STATUS",
           "LAST ERROR");
    cJSON_ArrayForEach(o, arr)
    {
        const char *state = str_field(o, "state");
        int64_t status = int_field(o, "last_status");
        char id[24];
        char created[40];
        char next[40] = "-";
        char attempts[24];
        char code[24] = "-";

        snprintf(id, sizeof(id), "%" PRId64, int_field(o, "id"));
        format_time(int_field(o, "created_ms"), created, sizeof(created));
        if (strcmp(state, "pending") == 0)
            format_time(int_field(o, "next_ms"), next, sizeof(next));
        snprintf(attempts, sizeof(attempts), "%" PRId64, int_field(o, "attempts"));
        if (status >= 0)
            snprintf(code, sizeof(code), "%" PRId64, status);
        printf(fmt, id, created, str_field(o, "endpoint"), str_field(o, "event"), state, attempts,
               next, code, str_field(o, "last_error"));
    }
}

/* ---- Commands ---- */

static int fail_usage(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "paved notify %s: %s%s%s\nRun 'paved notify %s --help' for usage.\n", cmd, msg,
            arg ? ": " : "", arg ? arg : "", cmd);
    return NOTIFY_EXIT_USAGE;
}

/* The message of 'err' without the "audit: " of the layer that made it. */
static const char *err_text(const struct pv_err *err)
{
    return strncmp(err->msg, "audit: ", 7) == 0 ? err->msg + 7 : err->msg;
}

enum {
    OPT_DB = 256,
    OPT_STATE,
    OPT_LIMIT,
    OPT_FORMAT,
    OPT_DEAD,
};

static int run_list(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"state", required_argument, NULL, OPT_STATE},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pv_err err = {PV_OK, ""};
    const char *db = NULL;
    const char *state = NULL;
    size_t limit = 0;
    bool is_json = false;
    cJSON *rows = NULL;
    char *end = NULL;
    long long n;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db = optarg;
            break;
        case OPT_STATE:
            if (strcmp(optarg, "pending") != 0 && strcmp(optarg, "delivered") != 0 &&
                strcmp(optarg, "dead") != 0)
                return fail_usage("list", "--state: expected pending, delivered or dead", optarg);
            state = optarg;
            break;
        case OPT_LIMIT:
            n = strtoll(optarg, &end, 10);
            if (end == optarg || *end != '\0' || n < 1 || n > 10000000)
                return fail_usage("list", "--limit: expected a number from 1 to 10000000", optarg);
            limit = (size_t)n;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "json") == 0)
                is_json = true;
            else if (strcmp(optarg, "table") == 0)
                is_json = false;
            else
                return fail_usage("list", "--format: expected table or json", optarg);
            break;
        case 'h':
            fputs(usage_list, stdout);
            return NOTIFY_EXIT_OK;
        default:
            return fail_usage("list", "unknown option or missing value", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage("list", "unexpected argument", argv[optind]);
    if (db == NULL)
        return fail_usage("list", "--db FILE is required", NULL);
    if (audit_outbox_list(db, state, limit, &rows, &err)) {
        fprintf(stderr, "paved notify list: %s\n", err_text(&err));
        return NOTIFY_EXIT_USAGE;
    }
    if (is_json) {
        char *s = cJSON_Print(rows);

        if (s != NULL)
            printf("%s\n", s);
        cJSON_free(s);
    } else {
        print_table(rows);
    }
    cJSON_Delete(rows);
    return NOTIFY_EXIT_OK;
}

static int run_retry(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"db", required_argument, NULL, OPT_DB},
        {"dead", no_argument, NULL, OPT_DEAD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pv_err err = {PV_OK, ""};
    const char *db = NULL;
    bool is_all_dead = false;
    int64_t now = clock_wall_ms();
    int status = NOTIFY_EXIT_OK;
    size_t total = 0;
    size_t n = 0;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DB:
            db = optarg;
            break;
        case OPT_DEAD:
            is_all_dead = true;
            break;
        case 'h':
            fputs(usage_retry, stdout);
            return NOTIFY_EXIT_OK;
        default:
            return fail_usage("retry", "unknown option or missing value", argv[optind - 1]);
        }
    }
    if (db == NULL)
        return fail_usage("retry", "--db FILE is required", NULL);
    if (is_all_dead == (optind < argc))
        return fail_usage("retry", "give either message IDs or --dead", NULL);
    /* Every ID is checked before any is changed: a typo must not retry half a list. */
    for (int i = optind; i < argc; i++) {
        char *end = NULL;
        long long id = strtoll(argv[i], &end, 10);

        if (end == argv[i] || *end != '\0' || id < 1)
            return fail_usage("retry", "not a message ID", argv[i]);
    }
    if (is_all_dead) {
        if (audit_outbox_retry(db, 0, true, now, &n, &err)) {
            fprintf(stderr, "paved notify retry: %s\n", err_text(&err));
            return NOTIFY_EXIT_USAGE;
        }
        if (n == 0) {
            printf("no dead messages: nothing to retry\n");
            return NOTIFY_EXIT_NONE;
        }
        printf("%zu dead message%s back in line\n", n, n == 1 ? "" : "s");
        return NOTIFY_EXIT_OK;
    }
    for (int i = optind; i < argc; i++) {
        int64_t id = (int64_t)strtoll(argv[i], NULL, 10);
        pv_status rc = audit_outbox_retry(db, id, false, now, &n, &err);

        if (rc == PV_EINVAL) {
            fprintf(stderr, "paved notify retry: %s\n", err_text(&err));
            status = NOTIFY_EXIT_NONE;
            continue;
        }
        if (rc) {
            fprintf(stderr, "paved notify retry: %s\n", err_text(&err));
            return NOTIFY_EXIT_USAGE;
        }
        if (n == 0) {
            fprintf(stderr, "paved notify retry: %s: no message %" PRId64 "\n", db, id);
            status = NOTIFY_EXIT_NONE;
            continue;
        }
        total += n;
        printf("message %" PRId64 " back in line\n", id);
    }
    if (total == 0)
        status = NOTIFY_EXIT_NONE;
    return status;
}

int cmd_notify(int argc, char **argv)
{
    const char *sub;

    if (argc < 2) {
        fputs(usage, stderr);
        return NOTIFY_EXIT_USAGE;
    }
    sub = argv[1];
    if (strcmp(sub, "list") == 0)
        return run_list(argc - 1, argv + 1);
    if (strcmp(sub, "retry") == 0)
        return run_retry(argc - 1, argv + 1);
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage, stdout);
        return NOTIFY_EXIT_OK;
    }
    fprintf(stderr, "paved notify: unknown command '%s'\n\n%s", sub, usage);
    return NOTIFY_EXIT_USAGE;
}
