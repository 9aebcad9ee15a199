/* server/cmd_quota.c: `paved quota show TEAM`: a team's quota, what it holds and what is
 * left, as the server's ledger says (GET /v1/quotas/TEAM). */
#include "cmd_quota.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "apiclient.h"

static const char usage[] =
    "usage: paved quota show TEAM [--format table|json] [connection options]\n"
    "\n"
    "Shows the quota of TEAM (quotas: in the server's paved.yaml; the \"*\" entry for teams\n"
    "not listed), what its admitted objects and environments hold now, and what is left.\n"
    "The server keeps a ledger: every allowed workload charges replicas x container\n"
    "requests, every PersistentVolumeClaim its storage, every provisioned environment one\n"
    "environment and its size; an UPDATE charges the difference and a DELETE releases. A\n"
    "request that would pass a limit is denied with the numbers (\"team payments would\n"
    "use 34 of 32 cpu\").\n"
    "\n"
    "options:\n"
    "  --format FMT        table (default) or json (the server's "
    "document)\n" APICLIENT_USAGE_OPTIONS "\n"
    "exit status: 0 shown, 1 the server refused (e.g. 401 for a bad token), 2 usage,\n"
    "transport or server error.\n"
    "\n"
    "example:\n"
    "  PAVED_SERVER=https://paved.example:8443 PAVED_TOKEN=... paved quota show payments\n";

enum {
    OPT_FORMAT = 1,
};

static double num(const cJSON *o, const char *k, bool *is_set)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    *is_set = cJSON_IsNumber(v);
    return *is_set ? v->valuedouble : 0;
}

/* One table row: resource, used, limit, remaining, in the unit 'div' of 'unit'. */
static void row(const cJSON *doc, const char *name, const char *k, double div, const char *unit,
                int decimals)
{
    bool has_used;
    bool has_lim;
    bool has_rem;
    double used = num(cJSON_GetObjectItemCaseSensitive(doc, "used"), k, &has_used) / div;
    double lim = num(cJSON_GetObjectItemCaseSensitive(doc, "limits"), k, &has_lim) / div;
    double rem = num(cJSON_GetObjectItemCaseSensitive(doc, "remaining"), k, &has_rem) / div;
    char l[32] = "-";
    char r[32] = "-";

    if (has_lim)
        snprintf(l, sizeof(l), "%.*f%s", decimals, lim, unit);
    if (has_rem)
        snprintf(r, sizeof(r), "%.*f%s", decimals, rem, unit);
    printf("  %-14s %14.*f%-4s %14s %14s\n", name, decimals, used, unit, l, r);
}

static int run_show(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT},
        APICLIENT_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct apiclient_opts o;
    struct apiclient *cl = NULL;
    struct pv_err err = {0};
    bool is_json = false;
    cJSON *ans = NULL;
    char path[600];
    char *team;
    int c;
    int rc;

    apiclient_opts_init(&o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (apiclient_is_opt(c)) {
            if (apiclient_opts_set(&o, c, optarg, &err)) {
                fprintf(stderr, "paved quota show: %s\n", err.msg);
                return APICLIENT_EXIT_ERROR;
            }
            continue;
        }
        switch (c) {
        case OPT_FORMAT:
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "table") != 0) {
                fprintf(stderr, "paved quota show: --format is table or json\n");
                return APICLIENT_EXIT_ERROR;
            }
            is_json = strcmp(optarg, "json") == 0;
            break;
        case 'h':
            fputs(usage, stdout);
            return APICLIENT_EXIT_OK;
        default:
            fputs(usage, stderr);
            return APICLIENT_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc || argv[optind][0] == '\0') {
        fprintf(stderr, "paved quota show: name one TEAM\n\n%s", usage);
        return APICLIENT_EXIT_ERROR;
    }
    if (apiclient_open_opts(&cl, &o, &err)) {
        fprintf(stderr, "paved quota show: %s\n", err.msg);
        return APICLIENT_EXIT_ERROR;
    }
    team = apiclient_escape(argv[optind]);
    snprintf(path, sizeof(path), "/v1/quotas/%s", team);
    free(team);
    rc = apiclient_run(cl, "quota show", "GET", path, NULL, "used", cJSON_Object, &ans);
    apiclient_close(cl);
    if (rc != APICLIENT_EXIT_OK)
        return rc;
    if (is_json) {
        char *text = cJSON_Print(ans);

        puts(text);
        free(text);
    } else {
        const char *cur = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans, "currency"));
        const char *q = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ans, "quota"));
        char money[16];

        snprintf(money, sizeof(money), " %s", cur != NULL ? cur : "");
        printf("team %s (quota entry: %s)\n", argv[optind], q != NULL ? q : "none");
        printf("  %-14s %18s %14s %14s\n", "RESOURCE", "USED", "LIMIT", "REMAINING");
        row(ans, "cpu", "cpu_millis", 1000, "", 2);
        row(ans, "memory", "memory_bytes", 1024.0 * 1024 * 1024, "Gi", 2);
        row(ans, "storage", "storage_bytes", 1024.0 * 1024 * 1024, "Gi", 2);
        row(ans, "environments", "environments", 1, "", 0);
        row(ans, "monthly cost", "monthly_cost", 1, money, 2);
    }
    cJSON_Delete(ans);
    return APICLIENT_EXIT_OK;
}

int cmd_quota(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? APICLIENT_EXIT_ERROR : APICLIENT_EXIT_OK;
    }
    if (strcmp(argv[1], "show") == 0)
        return run_show(argc - 1, argv + 1);
    fprintf(stderr, "paved quota: unknown command '%s' (use show)\n\n%s", argv[1], usage);
    return APICLIENT_EXIT_ERROR;
}
