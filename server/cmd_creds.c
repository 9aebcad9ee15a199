/* server/cmd_creds.c: `paved creds issue`: exchanges an identity (an upstream OIDC token
 * from a file, or the caller's API token) for a short-lived credential minted by a paved
 * server (POST /v1/credentials, apiclient.h) and prints it. */
#include "cmd_creds.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "apiclient.h"
#include "duration.h"
#include "fsutil.h"
#include "jwt.h"
#include "xalloc.h"

#define MAX_SCOPES 64
#define MAX_TTL_S 86400

#define EXIT_STATUS_TEXT                                                                           \
    "exit status: 0 success, 1 the server refused (a 4xx answer: the identity token is\n"          \
    "invalid or expired, or the credential policy denied the audience, a scope or the\n"           \
    "TTL; the server's message is printed), 2 usage error, unreadable identity token,\n"           \
    "connection or TLS failure, server error (5xx) or an answer that is not the expected\n"        \
    "JSON.\n"

static const char usage[] =
    "usage: paved creds issue --audience A --scope S [--scope S2 ...] [--ttl DURATION]\n"
    "                         [--id-token FILE] [--format token|json] [connection options]\n"
    "\n"
    "Exchanges who you are for a short-lived credential: a JWT signed by the paved server\n"
    "(ES256, verifiable with its /.well-known/jwks.json) for one audience and a set of\n"
    "scopes. The server's credential policy decides whether, which scopes and for how long;\n"
    "the issuance (never the token) is recorded in its audit log.\n"
    "\n"
    "commands:\n"
    "  issue   ask for a credential (POST /v1/credentials)\n"
    "\n"
    "Run 'paved creds issue --help' for the options.\n" EXIT_STATUS_TEXT;

static const char usage_issue[] =
    "usage: paved creds issue --audience A --scope S [--scope S2 ...] [--ttl DURATION]\n"
    "                         (--id-token FILE | --team T --service S)\n"
    "                         [--format token|json] [connection options]\n"
    "\n"
    "Asks the server for a credential (POST /v1/credentials). Your identity is one of:\n"
    "  - an upstream OIDC token (--id-token FILE): a CI provider's ID token or a\n"
    "    Kubernetes service-account token, whose issuer the server trusts\n"
    "    (credentials.oidc); it is sent in the body and no API token is sent;\n"
    "  - your API token (--token-file, --token or $PAVED_TOKEN), when --id-token is not\n"
    "    given.\n"
    "\n"
    "options:\n"
    "  --audience A        the audience (aud) the credential is for (required)\n"
    "  --scope S           a scope to ask for; repeat for several (at least one, at most\n"
    "                      64)\n"
    "  --ttl DURATION      the lifetime to ask for (15m, 1h; at most 24h); the server caps\n"
    "                      it at credentials.max_ttl and its policy's limit (default: the\n"
    "                      server's)\n"
    "  --team T            with an API token: the team the credential is for (with an\n"
    "  --service S           id token, both come from its claims)\n"
    "  --id-token FILE     read the upstream OIDC token from FILE (\"-\" for standard input;\n"
    "                      surrounding whitespace ignored), e.g.\n"
    "                      /var/run/secrets/kubernetes.io/serviceaccount/token\n"
    "  --format FMT        token (default): print the credential alone, for $(...); json:\n"
    "                      the server's whole answer (token, expiry, jti, scopes)\n"
    "\n" APICLIENT_USAGE_OPTIONS "\n"
    "The credential is a secret: it goes to standard output only, never to a log. Tokens\n"
    "on the command line (--token) are visible in 'ps'; prefer files or variables.\n"
    "\n" EXIT_STATUS_TEXT "\n"
    "examples:\n"
    "  # In a Kubernetes pod, with its projected service-account token:\n"
    "  TOKEN=$(paved creds issue --server https://paved.paved-system.svc:8443 \\\n"
    "      --id-token /var/run/secrets/tokens/paved --audience artifacts \\\n"
    "      --scope read:packages --ttl 15m)\n"
    "\n"
    "  # With an API token:\n"
    "  PAVED_TOKEN=$(cat ci.token) paved creds issue --server https://paved.example:8443 \\\n"
    "      --audience deploy-api --scope deploy:staging --format json\n";

struct args {
    struct apiclient_opts conn;
    const char *audience;
    const char *scopes[MAX_SCOPES];
    size_t n_scopes;
    const char *ttl;
    const char *id_token_file;
    const char *team;
    const char *service;
    bool is_json;
};

static int fail_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "paved creds issue: %s%s%s\nRun 'paved creds issue --help' for usage.\n", msg,
            arg != NULL ? ": " : "", arg != NULL ? arg : "");
    return APICLIENT_EXIT_ERROR;
}

enum { OPT_AUDIENCE = 256, OPT_SCOPE, OPT_TTL, OPT_ID_TOKEN, OPT_FORMAT, OPT_TEAM, OPT_SERVICE };

/* Returns -1 to go on, or the exit status (0 after --help). */
static int parse_args(struct args *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"audience", required_argument, NULL, OPT_AUDIENCE},
        {"scope", required_argument, NULL, OPT_SCOPE},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"id-token", required_argument, NULL, OPT_ID_TOKEN},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"team", required_argument, NULL, OPT_TEAM},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"help", no_argument, NULL, 'h'},
        APICLIENT_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct pv_err err = {PV_OK, ""};
    int64_t ttl_s = 0;
    int c;

    memset(a, 0, sizeof(*a));
    apiclient_opts_init(&a->conn);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_issue, stdout);
            return APICLIENT_EXIT_OK;
        }
        if (c == ':')
            return fail_usage("missing value for", argv[optind - 1]);
        if (c == '?' && optopt > ' ' && optopt < 0x7f) {
            char opt[3] = {'-', (char)optopt, '\0'};

            return fail_usage("unknown option", opt);
        }
        if (c == '?')
            return fail_usage("unknown option", argv[optind - 1]);
        if (apiclient_is_opt(c)) {
            if (apiclient_opts_set(&a->conn, c, optarg, &err))
                return fail_usage(err.msg, NULL);
            continue;
        }
        switch (c) {
        case OPT_AUDIENCE:
            if (optarg[0] == '\0')
                return fail_usage("empty value for", "--audience");
            a->audience = optarg;
            break;
        case OPT_SCOPE:
            if (optarg[0] == '\0')
                return fail_usage("empty value for", "--scope");
            if (a->n_scopes == MAX_SCOPES)
                return fail_usage("more than 64 values for", "--scope");
            a->scopes[a->n_scopes++] = optarg;
            break;
        case OPT_TTL:
            if (!duration_parse(optarg, &ttl_s) || ttl_s > MAX_TTL_S)
                return fail_usage("--ttl: expected a duration of at most 24h (15m, 1h)", optarg);
            a->ttl = optarg;
            break;
        case OPT_ID_TOKEN:
            if (optarg[0] == '\0')
                return fail_usage("empty value for", "--id-token");
            a->id_token_file = optarg;
            break;
        case OPT_TEAM:
            if (optarg[0] == '\0')
                return fail_usage("empty value for", "--team");
            a->team = optarg;
            break;
        case OPT_SERVICE:
            if (optarg[0] == '\0')
                return fail_usage("empty value for", "--service");
            a->service = optarg;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "token") != 0 && strcmp(optarg, "json") != 0)
                return fail_usage("--format: expected token or json", optarg);
            a->is_json = strcmp(optarg, "json") == 0;
            break;
        default:
            PV_ASSERT(!"an option in the table without a case");
        }
    }
    if (optind < argc)
        return fail_usage("unexpected argument", argv[optind]);
    if (a->audience == NULL)
        return fail_usage("--audience is required", NULL);
    if (a->n_scopes == 0)
        return fail_usage("at least one --scope is required", NULL);
    if (a->id_token_file != NULL && (a->conn.token != NULL || a->conn.token_file != NULL))
        return fail_usage("give --id-token or an API token (--token, --token-file), not both",
                          NULL);
    if (a->id_token_file != NULL && (a->team != NULL || a->service != NULL))
        return fail_usage("--team and --service come from the id token's claims; drop them", NULL);
    if (a->id_token_file == NULL && (a->team == NULL || a->service == NULL))
        return fail_usage("with an API token, name the credential's --team and --service", NULL);
    return -1;
}

/* Reads the identity token of 'path' into *out (the caller wipes and frees it). */
static int read_id_token(const char *path, char **out)
{
    struct pv_err err = {PV_OK, ""};
    char *text = NULL;
    size_t len = 0;
    size_t start = 0;

    if (fs_read_file(path, JWT_MAX_TOKEN_BYTES + 64, &text, &len, &err)) {
        fprintf(stderr, "paved creds issue: --id-token: %s\n", err.msg);
        return APICLIENT_EXIT_ERROR;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        text[--len] = '\0';
    while (start < len && (text[start] == ' ' || text[start] == '\t' || text[start] == '\n' ||
                           text[start] == '\r'))
        start++;
    for (size_t i = start; i < len; i++) {
        if ((unsigned char)text[i] <= 0x20 || (unsigned char)text[i] >= 0x7f) {
            OPENSSL_cleanse(text, len);
            free(text);
            fprintf(stderr,
                    "paved creds issue: --id-token %s: the token holds whitespace or control "
                    "characters\n",
                    path);
            return APICLIENT_EXIT_ERROR;
        }
    }
    if (start == len || len - start > JWT_MAX_TOKEN_BYTES) {
        OPENSSL_cleanse(text, len);
        free(text);
        fprintf(stderr, "paved creds issue: --id-token %s: %s\n", path,
                start == len ? "the file is empty" : "the token is longer than 16 KiB");
        return APICLIENT_EXIT_ERROR;
    }
    *out = xstrndup(text + start, len - start);
    OPENSSL_cleanse(text, len);
    free(text);
    return -1;
}

/* Opens the client: with an identity token no API token is sent. */
static int open_client(const struct args *a, struct apiclient **out)
{
    struct pv_err err = {PV_OK, ""};
    const char *server = a->conn.server != NULL ? a->conn.server : getenv("PAVED_SERVER");
    pv_status rc;

    if (a->id_token_file == NULL) {
        rc = apiclient_open_opts(out, &a->conn, &err);
    } else if (server == NULL || server[0] == '\0') {
        rc = pv_err_set(&err, PV_EINVAL, "no server: pass --server URL or set $PAVED_SERVER");
    } else {
        rc = apiclient_open(out, server, NULL, a->conn.cacert, a->conn.is_insecure_http,
                            a->conn.timeout_ms, &err);
    }
    if (rc)
        return fail_usage(err.msg, NULL);
    return -1;
}

/* Wipes the string member 'name' of 'o' (a secret) in place. */
static void wipe_member(cJSON *o, const char *name)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    if (cJSON_IsString(v))
        OPENSSL_cleanse(v->valuestring, strlen(v->valuestring));
}

static int do_issue(int argc, char **argv)
{
    struct args a;
    struct apiclient *c = NULL;
    char *id_token = NULL;
    cJSON *body = NULL;
    cJSON *scopes;
    cJSON *ans = NULL;
    char *text = NULL;
    int rc = parse_args(&a, argc, argv);

    if (rc < 0 && a.id_token_file != NULL)
        rc = read_id_token(a.id_token_file, &id_token);
    if (rc < 0)
        rc = open_client(&a, &c);
    if (rc >= 0)
        goto done;
    body = cJSON_CreateObject();
    PV_ASSERT(body != NULL);
    if (id_token != NULL)
        PV_ASSERT(cJSON_AddStringToObject(body, "id_token", id_token) != NULL);
    PV_ASSERT(cJSON_AddStringToObject(body, "audience", a.audience) != NULL);
    if (a.team != NULL)
        PV_ASSERT(cJSON_AddStringToObject(body, "team", a.team) != NULL);
    if (a.service != NULL)
        PV_ASSERT(cJSON_AddStringToObject(body, "service", a.service) != NULL);
    scopes = cJSON_AddArrayToObject(body, "scopes");
    PV_ASSERT(scopes != NULL);
    for (size_t i = 0; i < a.n_scopes; i++) {
        cJSON *s = cJSON_CreateString(a.scopes[i]);

        PV_ASSERT(s != NULL);
        cJSON_AddItemToArray(scopes, s);
    }
    if (a.ttl != NULL)
        PV_ASSERT(cJSON_AddStringToObject(body, "ttl", a.ttl) != NULL);
    rc = apiclient_run(c, "creds issue", "POST", "/v1/credentials", body, "token", cJSON_String,
                       &ans);
    if (rc != APICLIENT_EXIT_OK)
        goto done;
    if (a.is_json) {
        text = cJSON_Print(ans);
        if (text != NULL)
            printf("%s\n", text);
    } else {
        printf("%s\n", cJSON_GetObjectItemCaseSensitive(ans, "token")->valuestring);
    }
    rc = fflush(stdout) == 0 ? APICLIENT_EXIT_OK : APICLIENT_EXIT_ERROR;
done:
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    if (ans != NULL)
        wipe_member(ans, "token");
    cJSON_Delete(ans);
    if (body != NULL)
        wipe_member(body, "id_token");
    cJSON_Delete(body);
    if (id_token != NULL) {
        OPENSSL_cleanse(id_token, strlen(id_token));
        free(id_token);
    }
    apiclient_close(c);
    return rc;
}

int cmd_creds(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;

    if (sub == NULL) {
        fputs(usage, stderr);
        return APICLIENT_EXIT_ERROR;
    }
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return APICLIENT_EXIT_OK;
    }
    if (strcmp(sub, "issue") == 0)
        return do_issue(argc - 1, argv + 1);
    fprintf(stderr, "paved creds: unknown command '%s'\n\n%s", sub, usage);
    return APICLIENT_EXIT_ERROR;
}
