/* server/apiclient.h: the JSON-over-HTTPS client (libcurl) of the paved API for the
 * commands that manage exceptions and break-glass windows, and the options they share:
 * --server, --token, --token-file, --cacert, --insecure-http and --timeout. */
#ifndef PV_APICLIENT_H
#define PV_APICLIENT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "status.h"

/* Ceilings: an answer larger than this fails the call; so does a longer token. */
#define APICLIENT_MAX_ANSWER ((size_t)16 << 20)
#define APICLIENT_MAX_TOKEN ((size_t)16 << 10)
#define APICLIENT_DEFAULT_TIMEOUT_MS 10000L

/* Exit statuses of the API commands. */
enum {
    APICLIENT_EXIT_OK = 0,
    APICLIENT_EXIT_REFUSED = 1, /* the server answered 4xx */
    APICLIENT_EXIT_ERROR = 2,   /* usage, transport, 5xx or an unexpected answer */
};

/* getopt_long codes of the shared options; a command's own codes stay below 0x1000. */
enum {
    APICLIENT_OPT_SERVER = 0x1000,
    APICLIENT_OPT_TOKEN,
    APICLIENT_OPT_TOKEN_FILE,
    APICLIENT_OPT_CACERT,
    APICLIENT_OPT_INSECURE_HTTP,
    APICLIENT_OPT_TIMEOUT,
};

/* The entries of the shared options, for a command's `struct option` table. */
#define APICLIENT_LONGOPTS                                                                         \
    {"server", required_argument, NULL, APICLIENT_OPT_SERVER},                                     \
        {"token", required_argument, NULL, APICLIENT_OPT_TOKEN},                                   \
        {"token-file", required_argument, NULL, APICLIENT_OPT_TOKEN_FILE},                         \
        {"cacert", required_argument, NULL, APICLIENT_OPT_CACERT},                                 \
        {"insecure-http", no_argument, NULL, APICLIENT_OPT_INSECURE_HTTP},                         \
    {                                                                                              \
        "timeout", required_argument, NULL, APICLIENT_OPT_TIMEOUT                                  \
    }

/* The shared options as the usage texts describe them. */
#define APICLIENT_USAGE_OPTIONS                                                                    \
    "connection options:\n"                                                                        \
    "  --server URL        the paved server, e.g. https://paved.example:8443 (default:\n"          \
    "                      $PAVED_SERVER)\n"                                                       \
    "  --token TOKEN       API token sent as 'Authorization: Bearer' (default: $PAVED_TOKEN);\n"   \
    "                      prefer --token-file or the variable, which stay out of 'ps'\n"          \
    "  --token-file FILE   read the token from FILE (trailing newline ignored)\n"                  \
    "  --cacert FILE       CA certificate(s) to trust for the server (PEM)\n"                      \
    "  --insecure-http     allow a plain http:// server URL (tests and local development)\n"       \
    "  --timeout DURATION  limit on each request, connecting included (default 10s)\n"             \
    "  -h, --help          show this help\n"

/* What the shared options said. Strings are borrowed from argv. */
struct apiclient_opts {
    const char *server;
    const char *token;
    const char *token_file;
    const char *cacert;
    bool is_insecure_http;
    long timeout_ms;
};

struct apiclient;

/* Sets every option to its default (no server, no token, APICLIENT_DEFAULT_TIMEOUT_MS);
 * the environment is read by apiclient_open_opts. */
void apiclient_opts_init(struct apiclient_opts *o);

/* True when the getopt_long code 'c' is one of APICLIENT_LONGOPTS. */
bool apiclient_is_opt(int c);

/* Records the shared option 'c' with its argument 'arg' (borrowed; NULL for
 * --insecure-http) in 'o'. Returns PV_EINVAL with a message for a bad value (a
 * --timeout that is not a duration of at most one hour). */
pv_status apiclient_opts_set(struct apiclient_opts *o, int c, const char *arg, struct pv_err *err);

/* Opens a client as 'o' says: the URL is --server, else $PAVED_SERVER; the token is
 * --token, else the content of --token-file, else $PAVED_TOKEN. Returns PV_EINVAL with a
 * message when there is no server or no token, both --token and --token-file were
 * given, the token holds whitespace or control characters or is longer than
 * APICLIENT_MAX_TOKEN, or the URL is refused (see apiclient_open); PV_ENOENT or PV_EIO
 * when the token file cannot be read. On PV_OK, *out is closed with apiclient_close. */
pv_status apiclient_open_opts(struct apiclient **out, const struct apiclient_opts *o,
                              struct pv_err *err);

/* Prepares calls to 'base_url' (e.g. https://paved.example:8443; trailing slashes
 * dropped). 'token' (may be NULL) is sent as a bearer token and never printed or
 * logged; 'cacert' (may be NULL) names the CA file to trust. Only https:// is allowed,
 * plus http:// when 'is_insecure_http'; redirects are not followed. Each transfer is
 * limited to 'timeout_ms' (connecting included). Borrows the strings. Returns PV_EINVAL
 * with a message for a refused URL and PV_EIO when libcurl cannot start. On PV_OK, *out
 * is closed with apiclient_close. Not thread-safe (curl_global_init). */
pv_status apiclient_open(struct apiclient **out, const char *base_url, const char *token,
                         const char *cacert, bool is_insecure_http, long timeout_ms,
                         struct pv_err *err);

/* Closes 'c', wiping its copy of the token. apiclient_close(NULL) does nothing. */
void apiclient_close(struct apiclient *c);

/* Sends 'method' ("GET" or "POST") to the server's 'path' (starting with "/", query
 * included and already escaped) with the JSON 'body' (borrowed; NULL sends none) and
 * waits for the answer. On PV_OK, whatever the HTTP status, *status_out holds it and
 * *answer_out the parsed body (the caller frees it with cJSON_Delete), or NULL when the
 * body was empty or not JSON. Returns PV_EIO with the URL and libcurl's message for a
 * transport failure (connection, TLS, timeout) and PV_ETOOBIG for an answer larger than
 * APICLIENT_MAX_ANSWER. */
pv_status apiclient_call(struct apiclient *c, const char *method, const char *path,
                         const cJSON *body, long *status_out, cJSON **answer_out,
                         struct pv_err *err);

/* apiclient_call, judged for a command: 'cmd' names it in messages ("exceptions
 * approve"). A 2xx answer must be a JSON object whose member 'key' has the cJSON type
 * 'want_type' (cJSON_Object or cJSON_Array); then *answer_out is the whole answer
 * (caller frees with cJSON_Delete) and the result is APICLIENT_EXIT_OK. Otherwise
 * prints one line on stderr and returns APICLIENT_EXIT_REFUSED for a 4xx answer
 * ("paved exceptions approve: refused (403): <the server's error>") or
 * APICLIENT_EXIT_ERROR for a transport failure, a 5xx or other status, or an answer
 * that is not the expected JSON; *answer_out is then untouched. */
int apiclient_run(struct apiclient *c, const char *cmd, const char *method, const char *path,
                  const cJSON *body, const char *key, int want_type, cJSON **answer_out);

/* Returns 's' percent-encoded for a URL path segment or query value (everything but
 * A-Z a-z 0-9 - . _ ~ is escaped). The caller frees it with free(). */
char *apiclient_escape(const char *s);

/* Copies text from the server 's' (borrowed; NULL gives "-") into 'buf' ('cap' bytes,
 * at least 4) for a terminal: control characters become '?', and text that does not
 * fit is cut and ends in "...". Returns 'buf'. */
const char *apiclient_clean(const char *s, char *buf, size_t cap);

#endif
