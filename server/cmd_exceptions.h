/* server/cmd_exceptions.h: `paved exceptions` and `paved breakglass`, the command-line
 * client of a paved server's exception and break-glass API (see apiclient.h). */
#ifndef PV_CMD_EXCEPTIONS_H
#define PV_CMD_EXCEPTIONS_H

/* Runs `paved exceptions SUBCOMMAND [options]` (request, list, show, approve, deny,
 * revoke); argv[0] is "exceptions". Borrows argv. Prints results on stdout and errors
 * on stderr. Returns the exit status: 0 success, 1 the server refused (4xx), 2 usage
 * error, transport failure, server error (5xx) or an answer that is not the expected
 * JSON. Not thread-safe (getopt, curl_global_init). */
int cmd_exceptions(int argc, char **argv);

/* Runs `paved breakglass [options]` (start a window), `paved breakglass list` or
 * `paved breakglass end ID`; argv[0] is "breakglass". Borrows argv. Output, exit
 * statuses and thread-safety as cmd_exceptions. */
int cmd_breakglass(int argc, char **argv);

#endif
