/* server/main.c: entry point of the paved binary: process-wide setup and dispatch to
 * the subcommands; also the engine set-up the commands share. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmd_audit.h"
#include "cmd_certs.h"
#include "cmd_creds.h"
#include "cmd_keys.h"
#include "cmd_exceptions.h"
#include "cmd_notify.h"
#include "cmd_quota.h"
#include "serve.h"

#include "log.h"
#include "xalloc.h"

static const char usage[] =
    "usage: paved COMMAND [options]\n"
    "\n"
    "paved decides deploy, provision and credential requests with Lua policies and\n"
    "records whether they followed the golden path.\n"
    "\n"
    "commands:\n"
    "  serve     the HTTPS admission webhook and decision API, with the audit store\n"
    "  check     decide manifests: the CI gate (exit 0 allow, 1 deny, 2 error)\n"
    "  test      run policy test cases (JSON Lines) against the bundle\n"
    "  policies  list the policies of the bundle\n"
    "  audit     verify, query and export the audit store\n"
    "  certs     write a development CA and serving certificate\n"
    "  version   print the version\n"
    "  help      show this help\n"
    "\n"
    "Run 'paved COMMAND --help' for the options of a command.\n"
    "environment: PAVED_LOG=debug|info|warn|error sets the log level (default warn).\n";

static void setup_logging(void)
{
    const char *lvl = getenv("PAVED_LOG");
    enum log_level level = LOG_WARN;

    if (lvl != NULL) {
        if (strcmp(lvl, "debug") == 0)
            level = LOG_DEBUG;
        else if (strcmp(lvl, "info") == 0)
            level = LOG_INFO;
        else if (strcmp(lvl, "error") == 0)
            level = LOG_ERROR;
    }
    log_init(level, false);
}

int main(int argc, char **argv)
{
    cJSON_Hooks hooks = {xmalloc, free};
    const char *cmd;

    cJSON_InitHooks(&hooks);
    setup_logging();
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "test") == 0)
        return cmd_test(argc - 1, argv + 1);
    if (strcmp(cmd, "policies") == 0)
        return cmd_policies(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return cmd_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "exceptions") == 0)
        return cmd_exceptions(argc - 1, argv + 1);
    if (strcmp(cmd, "breakglass") == 0)
        return cmd_breakglass(argc - 1, argv + 1);
    if (strcmp(cmd, "creds") == 0)
        return cmd_creds(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc - 1, argv + 1);
    if (strcmp(cmd, "quota") == 0)
        return cmd_quota(argc - 1, argv + 1);
    if (strcmp(cmd, "notify") == 0)
        return cmd_notify(argc - 1, argv + 1);
    if (strcmp(cmd, "certs") == 0)
        return cmd_certs(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("paved %s (Lua 5.4, policies embedded)\n", PAVED_VERSION);
        return EXIT_ALLOW;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return EXIT_ALLOW;
    }
    fprintf(stderr, "paved: unknown command '%s'\n\n%s", cmd, usage);
    return EXIT_USAGE;
}
