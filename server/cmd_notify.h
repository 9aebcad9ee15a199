/* server/cmd_notify.h: `paved notify`: list the notification outbox and put dead
 * messages back in line. */
#ifndef PV_CMD_NOTIFY_H
#define PV_CMD_NOTIFY_H

/* Runs `paved notify SUBCOMMAND [options]`; argv[0] is "notify". Borrows argv. Prints
 * results on stdout and errors on stderr. Returns the exit status: 0 success, 1 nothing
 * to retry or no such message, 2 usage error or unreadable database. Not thread-safe
 * (getopt). */
int cmd_notify(int argc, char **argv);

#endif
