/* server/cmd_audit.h: `paved audit`: verify, query and export the decision log. */
#ifndef PV_CMD_AUDIT_H
#define PV_CMD_AUDIT_H

/* Runs `paved audit SUBCOMMAND [options]`; argv[0] is "audit". Borrows argv. Prints
 * results on stdout and errors on stderr. Returns the exit status: 0 success (verify:
 * the chain is intact), 1 verify found a bad row, 2 usage error or unreadable database.
 * Not thread-safe (getopt). */
int cmd_audit(int argc, char **argv);

#endif
