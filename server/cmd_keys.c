/* server/cmd_keys.c: `paved keys rotate|list|jwks|sign`: parses the command line, finds
 * the keys directory (--dir, or credentials.keys_dir of --config) and calls keys.h. */
#include "cmd_keys.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "clock.h"
#include "config.h"
#include "duration.h"
#include "fsutil.h"
#include "jwt.h"
#include "keys.h"
#include "xalloc.h"

enum {
    KEYS_EXIT_OK = 0,
    KEYS_EXIT_FAIL = 1,
    KEYS_EXIT_USAGE = 2,
};

#define CLAIMS_MAX_BYTES ((size_t)64 << 10)

/* ---- Usage ---- */

#define DIR_OPTIONS                                                                                \
    "  --dir DIR           the keys directory (default: credentials.keys_dir of --config,\n"       \
    "                      else ./keys)\n"                                                         \
    "  --config FILE       read credentials.keys_dir and credentials.max_ttl from FILE\n"          \
    "                      (paved.yaml); give --config or --dir, not both\n"                       \
    "  -h, --help          show this help\n"

#define EXIT_TEXT                                                                                  \
    "exit status: 0 success, 1 the keys could not be read, written or used (the reason is\n"       \
    "printed), 2 usage error.\n"

static const char usage[] =
    "usage: paved keys COMMAND [options]\n"
    "\n"
    "paved signs the short-lived credentials it mints (POST /v1/credentials) with ES256\n"
    "(ECDSA P-256, SHA-256) keys kept in one directory, credentials.keys_dir:\n"
    "  <kid>.pem   each private key, PKCS #8 PEM, created with mode 0600\n"
    "  keys.json   the index: kid, created, retired and published-until times\n"
    "The directory is created with mode 0700. The current key is the newest one that is\n"
    "not retired; 'paved serve' creates the first one when the directory is empty and\n"
    "publishes every key that is still needed at /.well-known/jwks.json.\n"
    "\n"
    "commands:\n"
    "  rotate   create a new key and make it current; the old one keeps being published\n"
    "           until every token it signed has expired, then is deleted\n"
    "  list     list the keys and their state\n"
    "  jwks     print the public keys as a JWK Set, as the server publishes them\n"
    "  sign     sign a claims file with the current key (a debugging aid for relying\n"
    "           parties)\n"
    "\n"
    "Run 'paved keys COMMAND --help' for the options of a command.\n" EXIT_TEXT;

static const char usage_rotate[] =
    "usage: paved keys rotate [--dir DIR | --config FILE] [--max-ttl DURATION]\n"
    "\n"
    "Creates a new P-256 key (kid \"k-\" and 16 random hex digits) and makes it the current\n"
    "signing key. The key it replaces is retired now, and stays in the JWKS for the\n"
    "longest lifetime of a token it can have signed (--max-ttl) plus 10 minutes of margin\n"
    "for clock skew and for servers to pick up the new key, so no token it signed stops\n"
    "verifying early. Keys whose publication has ended are deleted, file and entry. The\n"
    "directory and its parents are created when missing. Concurrent rotations (another\n"
    "shell, a server starting) wait for each other through a lock file, DIR/.lock.\n"
    "\n"
    "A running 'paved serve' picks up the new index and signs with the new key from then\n"
    "on. Rotate regularly (e.g. monthly), and at once when a key may have leaked; tokens\n"
    "the old key signed still verify until its published-until time.\n"
    "\n"
    "options:\n"
    "  --max-ttl DURATION  the longest lifetime of a token the retiring key signed, 1m to\n"
    "                      24h (default: credentials.max_ttl of --config, else 1h)\n" DIR_OPTIONS
    "\n"
    "output: the new kid.\n"
    "\n" EXIT_TEXT "\n"
    "examples:\n"
    "  paved keys rotate --config /etc/paved/paved.yaml\n"
    "  paved keys rotate --dir /var/lib/paved/keys --max-ttl 30m\n";

static const char usage_list[] =
    "usage: paved keys list [--dir DIR | --config FILE]\n"
    "\n"
    "Lists the keys of the directory, oldest first.\n"
    "\n"
    "options:\n" DIR_OPTIONS "\n"
    "columns: KID; CREATED; RETIRED (- while it signs); PUBLISHED UNTIL (- while current;\n"
    "after it the key leaves the JWKS and the next rotation deletes it); CURRENT (yes for\n"
    "the key new tokens are signed with). Times are UTC.\n"
    "\n" EXIT_TEXT;

static const char usage_jwks[] =
    "usage: paved keys jwks [--dir DIR | --config FILE]\n"
    "\n"
    "Prints the JWK Set of the keys still published, newest (current) first, exactly as\n"
    "'paved serve' serves it at /.well-known/jwks.json: {\"keys\":[{\"kty\":\"EC\",\"crv\":\n"
    "\"P-256\",\"x\",\"y\",\"kid\",\"use\":\"sig\",\"alg\":\"ES256\"}, ...]}. No private part.\n"
    "\n"
    "options:\n" DIR_OPTIONS "\n" EXIT_TEXT "\n"
    "example:\n"
    "  paved keys jwks --dir var/keys > jwks.json\n";

static const char usage_sign[] =
    "usage: paved keys sign --claims FILE [--dir DIR | --config FILE]\n"
    "\n"
    "A debugging aid for relying parties: signs the JSON object in FILE (\"-\" for standard\n"
    "input) as is, with the current key, and prints the compact JWS (header\n"
    "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":...}). Nothing is added or checked: write the\n"
    "iss, aud, exp (and whatever else the relying party wants) yourself. The token is as\n"
    "valid as any the server mints, so keep it to test audiences and short lifetimes.\n"
    "Nothing is recorded in the audit log.\n"
    "\n"
    "options:\n"
    "  --claims FILE       the claims, a JSON object of at most 64 KiB (required)\n" DIR_OPTIONS
    "\n" EXIT_TEXT "\n"
    "example:\n"
    "  exp=$(($(date +%s) + 300))\n"
    "  echo '{\"iss\":\"paved\",\"aud\":\"test\",\"sub\":\"me\",\"exp\":'$exp'}' |\n"
    "      paved keys sign --dir var/keys --claims -\n";

/* ---- Arguments ---- */

struct args {
    const char *cmd; /* "keys rotate", ... */
    const char *dir;
    const char *config;
    const char *claims;
    int64_t max_ttl_s; /* 0: not given */
};

static int fail_usage(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "paved %s: %s%s%s\nRun 'paved %s --help' for usage.\n", cmd, msg,
            arg != NULL ? ": " : "", arg != NULL ? arg : "", cmd);
    return KEYS_EXIT_USAGE;
}

enum { OPT_DIR = 256, OPT_CONFIG, OPT_MAX_TTL, OPT_CLAIMS };

/* Parses argv (argv[0] is the subcommand) into 'a'; 'with_max_ttl' and 'with_claims'
 * say which of those options the subcommand takes. Returns -1 to go on, or the exit
 * status (0 after --help). */
static int parse_args(struct args *a, const char *cmd, const char *help, bool with_max_ttl,
                      bool with_claims, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, OPT_DIR},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"max-ttl", required_argument, NULL, OPT_MAX_TTL},
        {"claims", required_argument, NULL, OPT_CLAIMS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(help, stdout);
            return KEYS_EXIT_OK;
        case ':':
            return fail_usage(cmd, "missing value for", argv[optind - 1]);
        case OPT_DIR:
            if (optarg[0] == '\0')
                return fail_usage(cmd, "empty value for", "--dir");
            a->dir = optarg;
            break;
        case OPT_CONFIG:
            a->config = optarg;
            break;
        case OPT_MAX_TTL:
            if (!with_max_ttl)
                return fail_usage(cmd, "unknown option", "--max-ttl");
            if (!duration_parse(optarg, &a->max_ttl_s) || a->max_ttl_s < 60 || a->max_ttl_s > 86400)
                return fail_usage(cmd, "--max-ttl: expected a duration from 1m to 24h", optarg);
            break;
        case OPT_CLAIMS:
            if (!with_claims)
                return fail_usage(cmd, "unknown option", "--claims");
            a->claims = optarg;
            break;
        default:
            if (optopt > ' ' && optopt < 0x7f) {
                char opt[3] = {'-', (char)optopt, '\0'};

                return fail_usage(cmd, "unknown option", opt);
            }
            return fail_usage(cmd, "unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail_usage(cmd, "unexpected argument", argv[optind]);
    if (a->dir != NULL && a->config != NULL)
        return fail_usage(cmd, "give --dir or --config, not both", NULL);
    if (with_claims && a->claims == NULL)
        return fail_usage(cmd, "--claims FILE is required", NULL);
    return -1;
}

/* Resolves the directory (and the max TTL) from --dir or --config into *dir_out (the
 * caller frees it) and *max_ttl_out. Returns -1 to go on, or the exit status. */
static int resolve(const struct args *a, char **dir_out, int64_t *max_ttl_out)
{
    struct config *cfg = NULL;
    struct pv_err err = {PV_OK, ""};

    *max_ttl_out = a->max_ttl_s != 0 ? a->max_ttl_s : 3600;
    if (a->config == NULL) {
        *dir_out = xstrdup(a->dir != NULL ? a->dir : "keys");
        return -1;
    }
    if (config_load_file(&cfg, a->config, &err)) {
        fprintf(stderr, "paved %s: %s\n", a->cmd, err.msg);
        return KEYS_EXIT_FAIL;
    }
    *dir_out = xstrdup(cfg->credentials.keys_dir);
    if (a->max_ttl_s == 0)
        *max_ttl_out = cfg->credentials.max_ttl_s;
    config_free(cfg);
    return -1;
}

/* Loads the key set of 'dir'; prints why not. */
static int load(const struct args *a, const char *dir, struct keys **out)
{
    struct pv_err err = {PV_OK, ""};
    pv_status rc = keys_load(out, dir, &err);

    if (rc == PV_OK)
        return -1;
    fprintf(stderr, "paved %s: %s\n", a->cmd, err.msg);
    if (rc == PV_ENOENT)
        fprintf(stderr, "paved %s: create one with 'paved keys rotate --dir %s'\n", a->cmd, dir);
    return KEYS_EXIT_FAIL;
}

/* "2026-12-04T10:00:00Z", or "-" for -1. */
static const char *format_ms(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms < 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, cap, "-");
    return buf;
}

/* ---- Subcommands ---- */

static int do_rotate(int argc, char **argv)
{
    struct args a;
    struct pv_err err = {PV_OK, ""};
    char kid[KEYS_KID_LEN + 1];
    char *dir = NULL;
    int64_t max_ttl_s = 0;
    int rc = parse_args(&a, "keys rotate", usage_rotate, true, false, argc, argv);

    if (rc < 0)
        rc = resolve(&a, &dir, &max_ttl_s);
    if (rc >= 0)
        goto done;
    if (keys_rotate(dir, max_ttl_s, clock_wall_ms(), kid, sizeof(kid), &err)) {
        fprintf(stderr, "paved keys rotate: %s\n", err.msg);
        rc = KEYS_EXIT_FAIL;
        goto done;
    }
    printf("%s\n", kid);
    rc = fflush(stdout) == 0 ? KEYS_EXIT_OK : KEYS_EXIT_FAIL;
done:
    free(dir);
    return rc;
}

static int do_list(int argc, char **argv)
{
    struct args a;
    struct keys *ks = NULL;
    char *dir = NULL;
    int64_t max_ttl_s = 0;
    int rc = parse_args(&a, "keys list", usage_list, false, false, argc, argv);

    if (rc < 0)
        rc = resolve(&a, &dir, &max_ttl_s);
    if (rc < 0)
        rc = load(&a, dir, &ks);
    if (rc >= 0)
        goto done;
    printf("%-20s %-21s %-21s %-21s %s\n", "KID", "CREATED", "RETIRED", "PUBLISHED UNTIL",
           "CURRENT");
    for (size_t i = 0; i < keys_count(ks); i++) {
        struct keys_info k;
        char created[32];
        char retired[32];
        char until[32];

        keys_info(ks, i, &k);
        printf("%-20s %-21s %-21s %-21s %s\n", k.kid,
               format_ms(k.created_ms, created, sizeof(created)),
               format_ms(k.retired_ms, retired, sizeof(retired)),
               format_ms(k.publish_until_ms, until, sizeof(until)), k.is_current ? "yes" : "");
    }
    rc = fflush(stdout) == 0 ? KEYS_EXIT_OK : KEYS_EXIT_FAIL;
done:
    keys_free(ks);
    free(dir);
    return rc;
}

static int do_jwks(int argc, char **argv)
{
    struct args a;
    struct keys *ks = NULL;
    cJSON *jwks = NULL;
    char *text = NULL;
    char *dir = NULL;
    int64_t max_ttl_s = 0;
    int rc = parse_args(&a, "keys jwks", usage_jwks, false, false, argc, argv);

    if (rc < 0)
        rc = resolve(&a, &dir, &max_ttl_s);
    if (rc < 0)
        rc = load(&a, dir, &ks);
    if (rc >= 0)
        goto done;
    jwks = keys_jwks(ks, clock_wall_ms());
    text = cJSON_Print(jwks);
    if (text != NULL)
        printf("%s\n", text);
    rc = fflush(stdout) == 0 ? KEYS_EXIT_OK : KEYS_EXIT_FAIL;
done:
    free(text);
    cJSON_Delete(jwks);
    keys_free(ks);
    free(dir);
    return rc;
}

static int do_sign(int argc, char **argv)
{
    struct args a;
    struct pv_err err = {PV_OK, ""};
    struct keys *ks = NULL;
    cJSON *claims = NULL;
    char *text = NULL;
    size_t len = 0;
    char *token = NULL;
    char *dir = NULL;
    const char *kid = NULL;
    EVP_PKEY *key;
    int64_t max_ttl_s = 0;
    int rc = parse_args(&a, "keys sign", usage_sign, false, true, argc, argv);

    if (rc < 0)
        rc = resolve(&a, &dir, &max_ttl_s);
    if (rc >= 0)
        goto done;
    if (fs_read_file(a.claims, CLAIMS_MAX_BYTES, &text, &len, &err)) {
        fprintf(stderr, "paved keys sign: --claims: %s\n", err.msg);
        rc = KEYS_EXIT_FAIL;
        goto done;
    }
    claims = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(claims)) {
        fprintf(stderr, "paved keys sign: --claims %s: not a JSON object\n", a.claims);
        rc = KEYS_EXIT_FAIL;
        goto done;
    }
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(claims, "exp")))
        fprintf(stderr, "paved keys sign: warning: the claims have no exp: paved itself refuses "
                        "such tokens\n");
    rc = load(&a, dir, &ks);
    if (rc >= 0)
        goto done;
    key = keys_current(ks, &kid);
    if (jwt_sign_es256(key, kid, claims, &token, &err)) {
        fprintf(stderr, "paved keys sign: %s\n", err.msg);
        rc = KEYS_EXIT_FAIL;
        goto done;
    }
    printf("%s\n", token);
    rc = fflush(stdout) == 0 ? KEYS_EXIT_OK : KEYS_EXIT_FAIL;
done:
    if (token != NULL) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    cJSON_Delete(claims);
    free(text);
    keys_free(ks);
    free(dir);
    return rc;
}

int cmd_keys(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;

    if (sub == NULL) {
        fputs(usage, stderr);
        return KEYS_EXIT_USAGE;
    }
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage, stdout);
        return KEYS_EXIT_OK;
    }
    if (strcmp(sub, "rotate") == 0)
        return do_rotate(argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return do_list(argc - 1, argv + 1);
    if (strcmp(sub, "jwks") == 0)
        return do_jwks(argc - 1, argv + 1);
    if (strcmp(sub, "sign") == 0)
        return do_sign(argc - 1, argv + 1);
    fprintf(stderr, "paved keys: unknown command '%s'\n\n%s", sub, usage);
    return KEYS_EXIT_USAGE;
}
