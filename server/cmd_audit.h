/* server/cmd_audit.h: `paved audit`: verify, query and export the decision log. */
#ifndef PV_CMD_AUDIT_H
#define PV_CMD_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

/* Runs `paved audit SUBCOMMAND [options]`; argv[0] is "audit". Borrows argv. Prints
 * results on stdout and errors on stderr. Returns the exit status: 0 success (verify:
 * the chain is intact), 1 verify found a bad row, 2 usage error or unreadable database.
 * Not thread-safe (getopt). */
int cmd_audit(int argc, char **argv);

/* Parses a point in time for the audit filters: a duration back from 'now_ms' ("30d",
 * "12h", "15m"), a date (2026-11-01) or RFC 3339, into Unix milliseconds. Returns false
 * when 's' is none of them. */
bool cmd_audit_parse_time(const char *s, int64_t now_ms, int64_t *out);

#endif
