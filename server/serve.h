/* server/serve.h: `paved serve`: the HTTPS admission webhook and decision API. */
#ifndef PV_SERVE_H
#define PV_SERVE_H

/* Runs the server until SIGINT/SIGTERM; returns the process exit status. */
int cmd_serve(int argc, char **argv);

#endif
