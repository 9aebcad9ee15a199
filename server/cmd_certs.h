/* server/cmd_certs.h: `paved certs`, the command that writes development certificates
 * for `paved serve` (see certs.h for what they contain). */
#ifndef PV_CMD_CERTS_H
#define PV_CMD_CERTS_H

/* Runs `paved certs` with 'argc'/'argv' (borrowed; argv[0] is "certs"). Prints the
 * written files on stdout and errors on stderr. Returns the process exit status: 0 on
 * success, 1 when the certificates could not be made or written, 2 for a usage error.
 * Not thread-safe (getopt). */
int cmd_certs(int argc, char **argv);

#endif
