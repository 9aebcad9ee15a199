/* server/config.h: paved.yaml, loaded once into an immutable snapshot: the bindings
 * that instantiate policies and the limits of the policy sandbox. */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

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
    const cJSON *teams; /* `teams:`: the only teams it may act for (credentials,
                         * exception requests); NULL: any team */
    unsigned char sha256[32];
};

/* The `subject:` section: where a request's team and service come from. */
struct cfg_subject {
    const char *team_label;    /* default "team" */
    const char *service_label; /* default "app.kubernetes.io/name" */
    const cJSON *namespaces;   /* mapping namespace -> team, or NULL */
};

/* The `exceptions:` section. */
struct cfg_exceptions {
    int remind_days; /* "exception.expiring" goes out this many days before; default 3 */
};

/* The `breakglass:` section. */
struct cfg_breakglass {
    int64_t max_duration_s; /* cap of one break-glass window; default 4 h */
};

/* One outbound notification endpoint (`notifications.endpoints[]`). */
struct cfg_endpoint {
    const char *name; /* unique; the outbox names endpoints by it */
    const char *url;  /* https:// (http:// only with allow_http) */
    char *secret;     /* HMAC-SHA256 key, owned; wiped by config_free */
    size_t secret_len;
    const cJSON *events;   /* array of event names or "prefix.*" globs; NULL: every event */
    const cJSON *policies; /* policy ids whose denials are sent (decision.denied); NULL: none */
    const char *cacert;    /* CA file to trust for this endpoint, or NULL: system CAs */
    bool is_http_allowed;  /* allow_http: true */
    bool is_slack;         /* slack: true adds a Slack-compatible "text" field */
    int timeout_ms;        /* per transfer; default 5000 */
};

/* The `notifications:` section. */
struct cfg_notifications {
    struct cfg_endpoint *endpoints; /* owned array */
    size_t n_endpoints;
    int max_attempts;       /* then the message is dead-lettered; default 8 */
    int backoff_initial_ms; /* first retry delay, doubled each attempt, with jitter; 1000 */
    int backoff_max_ms;     /* ceiling of one delay; default 300000 */
};

/* One upstream OIDC issuer whose JWTs `POST /v1/credentials` accepts
 * (`credentials.oidc[]`). */
struct cfg_oidc_issuer {
    const char *issuer;        /* the exact `iss` claim */
    const char *jwks_url;      /* https:// (http:// only with allow_http) */
    const char *audience;      /* the `aud` the token must carry */
    const char *cacert;        /* CA file for the JWKS endpoint, or NULL: system CAs */
    const char *team_claim;    /* claim naming the team; default "team" */
    const char *service_claim; /* claim naming the service; default "service" */
    const cJSON *teams;        /* optional mapping claim value -> team */
    bool is_http_allowed;
};

/* The `credentials:` section: paved as a short-lived credential issuer. */
struct cfg_credentials {
    const char *issuer;              /* `iss` of the tokens paved mints; default "paved" */
    const char *keys_dir;            /* signing keys (paved keys rotate); default "keys" */
    int64_t max_ttl_s;               /* hard cap of a minted token's lifetime; default 3600 */
    int64_t leeway_s;                /* clock skew allowed on exp/nbf/iat; default 60 */
    int64_t jwks_cache_s;            /* how long a fetched JWKS is used; default 300 */
    struct cfg_oidc_issuer *issuers; /* owned array */
    size_t n_issuers;
};

/* Per-team limits (`quotas:`); a negative value means no limit. */
struct cfg_quota {
    const char *team;      /* "*" is the default for teams not listed */
    int64_t cpu_millis;    /* cpu requests, in millicores */
    int64_t memory_bytes;  /* memory requests */
    int64_t storage_bytes; /* PersistentVolumeClaim requests */
    int64_t environments;  /* provisioned environments */
    double monthly_cost;   /* estimated monthly cost, in the price table's currency */
};

/* The price table (`prices:`): what a month of each resource costs. */
struct cfg_prices {
    const char *currency;     /* default "USD" */
    double cpu_hour;          /* one cpu for an hour */
    double memory_gib_hour;   /* one GiB of memory for an hour */
    double storage_gib_month; /* one GiB of storage for a month */
    double environment_month; /* one provisioned environment for a month */
    double hours_per_month;   /* default 730 */
};

struct config {
    cJSON *root; /* owns every string and subtree the bindings point into */
    struct cfg_credentials credentials;
    struct cfg_quota *quotas; /* owned array */
    size_t n_quotas;
    struct cfg_prices prices;
    struct cfg_exceptions exceptions;
    struct cfg_breakglass breakglass;
    struct cfg_notifications notifications;
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

/* For the section parsers (config_*.c): fails with PV_ECONFIG naming the first key of
 * 'obj' not in 'allowed' (NULL-terminated), "NAME: WHERE: unknown key "k" (expected one
 * of: ...)". Borrows everything. */
pv_status config_check_keys(const cJSON *obj, const char *const *allowed, const char *where,
                            const char *name, struct pv_err *err);

/* Parses the `notifications:` section 'v' (borrowed from cfg->root) into
 * cfg->notifications (server/config_notify.c). Returns PV_ECONFIG naming the key. */
pv_status config_parse_notifications(struct config *cfg, const cJSON *v, struct pv_err *err);

/* Wipes the secrets and frees cfg->notifications. */
void config_notifications_free(struct config *cfg);

/* Parses the `credentials:` section 'v' (borrowed from cfg->root) into
 * cfg->credentials (server/config_creds.c). Returns PV_ECONFIG naming the key. */
pv_status config_parse_credentials(struct config *cfg, const cJSON *v, struct pv_err *err);
void config_credentials_free(struct config *cfg);

/* Parses `quotas:` and `prices:` (server/config_quota.c). */
pv_status config_parse_quotas(struct config *cfg, const cJSON *v, struct pv_err *err);
pv_status config_parse_prices(struct config *cfg, const cJSON *v, struct pv_err *err);

/* The quota of 'team' (its own entry, else the "*" entry), or NULL: no limits. */
const struct cfg_quota *config_quota_of(const struct config *cfg, const char *team);

/* Parses "ci", "admission", "api" (returns CFG_N_ENTRIES for anything else). */
enum cfg_entry config_entry_parse(const char *s);

/* The token whose hash equals SHA-256('presented'), compared in constant time, or
 * NULL. */
const struct cfg_token *config_find_token(const struct config *cfg, const char *presented);

const char *config_role_name(enum cfg_role r);

/* True when token 't' may act for 'team' (its `teams:` list names it, or it has none). */
bool config_token_may_act_for(const struct cfg_token *t, const char *team);

/* Returns the vm bindings for 'cfg' (caller frees the array with free()). */
struct vm_binding *config_vm_bindings(const struct config *cfg);

#endif
