/* server/cmd_creds.h: `paved creds`, the command-line client of a paved server's
 * credential exchange (POST /v1/credentials; see apiclient.h). */
#ifndef PV_CMD_CREDS_H
#define PV_CMD_CREDS_H

/* Runs `paved creds issue [options]`; argv[0] is "creds". Borrows argv. Prints the
 * minted token (or the server's whole answer) on stdout and errors on stderr. Returns
 * the exit status: 0 success, 1 the server refused (4xx), 2 usage error, unreadable
 * identity token, transport failure, server error (5xx) or an answer that is not the
 * expected JSON. Not thread-safe (getopt, curl_global_init). */
int cmd_creds(int argc, char **argv);

#endif
