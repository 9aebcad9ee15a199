/* server/cmd_quota.h: `paved quota show TEAM` (through the server's API). */
#ifndef PV_CMD_QUOTA_H
#define PV_CMD_QUOTA_H

/* Runs `paved quota ...` with argv[0] == "quota". Returns the exit status. Not
 * thread-safe (getopt, curl_global_init). */
int cmd_quota(int argc, char **argv);

#endif
