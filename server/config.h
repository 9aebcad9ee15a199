/* server/config.h: paved.yaml, loaded once into an immutable snapshot: the bindings
 * that instantiate policies and the limits of the policy sandbox. */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "status.h"
#include "vm.h"

/* The entry points a decision can come from. */
enum cfg_entry {
    CFG_ADMISSION = 0,
    CFG_CI,
    CFG_API,
    CFG_N_ENTRIES,
};

#define CFG_UNSET (-1)

struct cfg_binding {
    const char *id;                 /* unique; defaults to the policy id */
    const char *policy;             /* policy id */
    const cJSON *params;            /* mapping or NULL */
    const cJSON *match;             /* Gatekeeper match mapping or NULL */
    int enforcement[CFG_N_ENTRIES]; /* enum vm_enforcement, or CFG_UNSET: policy default */
    int line;                       /* where the binding starts in the file, if known */
};

/* The `server:` section (paved serve); flags override each field. */
struct cfg_server {
    const char *listen;   /* "host:port", default 127.0.0.1:8443 */
    const char *tls_cert; /* PEM files */
    const char *tls_key;
    const char *client_ca;
    bool is_insecure_http;    /* plain HTTP, only when asked for */
    int threads;              /* worker threads, default 2 x CPUs */
    size_t max_body_bytes;    /* default 6 MiB */
    int request_timeout_ms;   /* decision deadline, audit wait included; default 2500 */
    int connection_timeout_s; /* idle connections are closed after it; default 30 */
};

/* The `audit:` section. */
struct cfg_audit {
    const char *db; /* SQLite file, default paved.db */
    bool is_async;  /* durability: async */
    size_t queue_max;
};

enum cfg_role {
    ROLE_ADMIN = 0,
    ROLE_APPROVER,
    ROLE_CI,
    ROLE_READER,
};

/* An API token: only its SHA-256 is kept. */
struct cfg_token {
    const char *name;
    enum cfg_role role;
    unsigned char sha256[32];
};

/* The `subject:` section: where a request's team and service come from. */
struct cfg_subject {
    const char *team_label;    /* default "team" */
    const char *service_label; /* default "app.kubernetes.io/name" */
    const cJSON *namespaces;   /* mapping namespace -> team, or NULL */
};

struct config {
    cJSON *root; /* owns every string and subtree the bindings point into */
    struct cfg_subject subject;
    struct cfg_token *tokens;
    size_t n_tokens;
    struct cfg_server server;
    struct cfg_audit audit;
    char *name; /* file name, or "<embedded default>" */
    struct cfg_binding *bindings;
    size_t n_bindings;
    const char *policies_dir; /* NULL: the embedded bundle */
    struct vm_limits limits;
};

/* Parses a config held in memory ('text', 'len' bytes, borrowed). 'name' is used in
 * messages. Returns PV_OK with *out (free with config_free), PV_EPARSE with line and
 * column for YAML errors, PV_ECONFIG naming the key for unknown keys, wrong types or
 * bad values. */
pv_status config_parse(struct config **out, const char *text, size_t len, const char *name,
                       struct pv_err *err);

/* Reads and parses the file at 'path'. Errors as config_parse plus PV_ENOENT/PV_EIO. */
pv_status config_load_file(struct config **out, const char *path, struct pv_err *err);

/* The embedded default: the golden path for workloads (policies/default.yaml). */
pv_status config_load_default(struct config **out, struct pv_err *err);

void config_free(struct config *cfg);

/* Parses "ci", "admission", "api" (returns CFG_N_ENTRIES for anything else). */
enum cfg_entry config_entry_parse(const char *s);

/* The token whose hash equals SHA-256('presented'), compared in constant time, or
 * NULL. */
const struct cfg_token *config_find_token(const struct config *cfg, const char *presented);

const char *config_role_name(enum cfg_role r);

/* Returns the vm bindings for 'cfg' (caller frees the array with free()). */
struct vm_binding *config_vm_bindings(const struct config *cfg);

#endif
