/* server/cmd_keys.h: `paved keys`, the command that manages paved's credential signing
 * keys in keys_dir (see keys.h): rotate, list, print the JWKS, sign test claims. */
#ifndef PV_CMD_KEYS_H
#define PV_CMD_KEYS_H

/* Runs `paved keys rotate|list|jwks|sign [options]`; argv[0] is "keys". Borrows argv.
 * Prints results on stdout and errors on stderr. Returns the exit status: 0 success, 1
 * the keys could not be read, made or used, 2 usage error. Not thread-safe (getopt). */
int cmd_keys(int argc, char **argv);

#endif
