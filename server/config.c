/* server/config.c: reads paved.yaml (libyaml through base/yaml.c) and checks every key,
 * so a typo is an error naming the key instead of a silently ignored setting. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bundle.h"
#include "duration.h"
#include "fsutil.h"
#include "xalloc.h"
#include "yamldoc.h"

#define CONFIG_MAX_BYTES ((size_t)4 << 20)

static const struct yaml_limits config_yaml_limits = {.max_depth = 64, .max_nodes = 200000};

enum cfg_entry config_entry_parse(const char *s)
{
    if (strcmp(s, "admission") == 0)
        return CFG_ADMISSION;
    if (strcmp(s, "ci") == 0)
        return CFG_CI;
    if (strcmp(s, "api") == 0)
        return CFG_API;
    return CFG_N_ENTRIES;
}

static int parse_enforcement(const char *s)
{
    if (strcmp(s, "deny") == 0)
        return VM_DENY;
    if (strcmp(s, "warn") == 0)
        return VM_WARN;
    if (strcmp(s, "audit") == 0)
        return VM_AUDIT;
    return CFG_UNSET;
}

pv_status config_check_keys(const cJSON *obj, const char *const *allowed, const char *where,
                            const char *name, struct pv_err *err)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, obj)
    {
        const char *const *a;

        for (a = allowed; *a != NULL; a++)
            if (strcmp(*a, c->string) == 0)
                break;
        if (*a == NULL) {
            char list[256] = "";
            size_t len = 0;

            for (a = allowed; *a != NULL && len < sizeof(list) - 40; a++)
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                        a == allowed ? "" : ", ", *a);
            return pv_err_set(err, PV_ECONFIG, "%s: %s: unknown key \"%s\" (expected one of: %s)",
                              name, where, c->string, list);
        }
    }
    return PV_OK;
}

static pv_status parse_enforcement_value(struct cfg_binding *b, const cJSON *v, const char *where,
                                         const char *name, struct pv_err *err)
{
    const cJSON *c;

    if (cJSON_IsString(v)) {
        int e = parse_enforcement(v->valuestring);

        if (e == CFG_UNSET)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: enforcement \"%s\" is not deny, warn or audit", name, where,
                              v->valuestring);
        for (int i = 0; i < CFG_N_ENTRIES; i++)
            b->enforcement[i] = e;
        return PV_OK;
    }
    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: enforcement must be deny|warn|audit or a mapping of entry "
                          "point (default, admission, ci, api) to one of them",
                          name, where);
    /* "default" first, then the entry points it does not override. */
    c = cJSON_GetObjectItemCaseSensitive(v, "default");
    if (c != NULL) {
        pv_status rc = parse_enforcement_value(b, c, where, name, err);

        if (rc)
            return rc;
    }
    cJSON_ArrayForEach(c, v)
    {
        enum cfg_entry entry;
        int e;

        if (strcmp(c->string, "default") == 0)
            continue;
        entry = config_entry_parse(c->string);
        if (entry == CFG_N_ENTRIES)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: enforcement: unknown entry point \"%s\" (expected "
                              "default, admission, ci or api)",
                              name, where, c->string);
        e = cJSON_IsString(c) ? parse_enforcement(c->valuestring) : CFG_UNSET;
        if (e == CFG_UNSET)
            return pv_err_set(err, PV_ECONFIG, "%s: %s: enforcement.%s must be deny, warn or audit",
                              name, where, c->string);
        b->enforcement[entry] = e;
    }
    return PV_OK;
}

static pv_status parse_binding(struct config *cfg, const cJSON *item, size_t i, struct pv_err *err)
{
    static const char *const keys[] = {"id",          "policy",      "params", "match",
                                       "enforcement", "description", NULL};
    static const char *const match_keys[] = {"kinds",
                                             "namespaces",
                                             "excludedNamespaces",
                                             "labelSelector",
                                             "namespaceSelector",
                                             "scope",
                                             "name",
                                             "source",
                                             NULL};
    struct cfg_binding *b = &cfg->bindings[i];
    char where[64];
    const cJSON *v;
    pv_status rc;

    snprintf(where, sizeof(where), "bindings[%zu]", i);
    for (int e = 0; e < CFG_N_ENTRIES; e++)
        b->enforcement[e] = CFG_UNSET;
    if (!cJSON_IsObject(item))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: each binding must be a mapping", cfg->name,
                          where);
    rc = config_check_keys(item, keys, where, cfg->name, err);
    if (rc)
        return rc;
    v = cJSON_GetObjectItemCaseSensitive(item, "policy");
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return pv_err_set(err, PV_ECONFIG, "%s: %s: \"policy\" (a policy id) is required",
                          cfg->name, where);
    b->policy = v->valuestring;
    v = cJSON_GetObjectItemCaseSensitive(item, "id");
    if (v != NULL && !cJSON_IsString(v))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: \"id\" must be a string", cfg->name, where);
    b->id = v != NULL ? v->valuestring : b->policy;
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->bindings[j].id, b->id) == 0)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: binding id \"%s\" is already used by bindings[%zu]; give "
                              "each binding of the same policy its own id",
                              cfg->name, where, b->id, j);
    v = cJSON_GetObjectItemCaseSensitive(item, "params");
    if (v != NULL && !cJSON_IsNull(v) && !cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: \"params\" must be a mapping", cfg->name,
                          where);
    b->params = cJSON_IsObject(v) ? v : NULL;
    v = cJSON_GetObjectItemCaseSensitive(item, "match");
    if (v != NULL && !cJSON_IsNull(v)) {
        if (!cJSON_IsObject(v))
            return pv_err_set(err, PV_ECONFIG, "%s: %s: \"match\" must be a mapping", cfg->name,
                              where);
        snprintf(where, sizeof(where), "bindings[%zu].match", i);
        rc = config_check_keys(v, match_keys, where, cfg->name, err);
        if (rc)
            return rc;
        snprintf(where, sizeof(where), "bindings[%zu]", i);
        b->match = v;
    }
    v = cJSON_GetObjectItemCaseSensitive(item, "enforcement");
    if (v != NULL)
        return parse_enforcement_value(b, v, where, cfg->name, err);
    return PV_OK;
}

static pv_status parse_limits(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"max_memory_mb", "max_instructions", "timeout_ms",
                                       "hook_grace_us", NULL};
    const cJSON *c;
    pv_status rc;

    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: policy_limits must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "policy_limits", cfg->name, err);
    if (rc)
        return rc;
    cJSON_ArrayForEach(c, v)
    {
        double d = cJSON_IsNumber(c) ? c->valuedouble : -1;

        if (d < 1 || d > 1e12)
            return pv_err_set(err, PV_ECONFIG, "%s: policy_limits.%s must be a positive number",
                              cfg->name, c->string);
        if (strcmp(c->string, "max_memory_mb") == 0) {
            if (d > 4096)
                return pv_err_set(err, PV_ECONFIG,
                                  "%s: policy_limits.max_memory_mb is at most 4096", cfg->name);
            cfg->limits.max_memory = (size_t)d << 20;
        } else if (strcmp(c->string, "max_instructions") == 0) {
            cfg->limits.max_instructions = (uint64_t)d;
        } else if (strcmp(c->string, "hook_grace_us") == 0) {
            if (d > 10000000)
                return pv_err_set(err, PV_ECONFIG,
                                  "%s: policy_limits.hook_grace_us is at most 10000000", cfg->name);
            cfg->limits.grace_us = (uint32_t)d;
        } else {
            if (d > 60000)
                return pv_err_set(err, PV_ECONFIG, "%s: policy_limits.timeout_ms is at most 60000",
                                  cfg->name);
            cfg->limits.timeout_ms = (uint32_t)d;
        }
    }
    return PV_OK;
}

static pv_status opt_string(const cJSON *sec, const char *k, const char **out, const char *where,
                            const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);

    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return pv_err_set(err, PV_ECONFIG, "%s: %s.%s must be a non-empty string", name, where, k);
    *out = v->valuestring;
    return PV_OK;
}

static pv_status opt_int(const cJSON *sec, const char *k, double lo, double hi, double *out,
                         const char *where, const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);

    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return pv_err_set(err, PV_ECONFIG, "%s: %s.%s must be a whole number from %.0f to %.0f",
                          name, where, k, lo, hi);
    *out = v->valuedouble;
    return PV_OK;
}

static pv_status parse_server(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"listen",
                                       "tls_cert",
                                       "tls_key",
                                       "client_ca",
                                       "insecure_http",
                                       "threads",
                                       "max_body_bytes",
                                       "request_timeout_ms",
                                       "connection_timeout_s",
                                       NULL};
    struct cfg_server *s = &cfg->server;
    const cJSON *b;
    double d;
    pv_status rc;

    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: server must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "server", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "listen", &s->listen, "server", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "tls_cert", &s->tls_cert, "server", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "tls_key", &s->tls_key, "server", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "client_ca", &s->client_ca, "server", cfg->name, err);
    if (rc)
        return rc;
    b = cJSON_GetObjectItemCaseSensitive(v, "insecure_http");
    if (b != NULL && !cJSON_IsBool(b))
        return pv_err_set(err, PV_ECONFIG, "%s: server.insecure_http must be true or false",
                          cfg->name);
    s->is_insecure_http = cJSON_IsTrue(b);
    d = s->threads;
    rc = opt_int(v, "threads", 1, 256, &d, "server", cfg->name, err);
    s->threads = (int)d;
    d = (double)s->max_body_bytes;
    if (rc == PV_OK)
        rc = opt_int(v, "max_body_bytes", 1024, 64 << 20, &d, "server", cfg->name, err);
    s->max_body_bytes = (size_t)d;
    d = s->request_timeout_ms;
    if (rc == PV_OK)
        rc = opt_int(v, "request_timeout_ms", 100, 60000, &d, "server", cfg->name, err);
    s->request_timeout_ms = (int)d;
    d = s->connection_timeout_s;
    if (rc == PV_OK)
        rc = opt_int(v, "connection_timeout_s", 1, 3600, &d, "server", cfg->name, err);
    s->connection_timeout_s = (int)d;
    return rc;
}

static pv_status parse_subject(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"team_label", "service_label", "namespaces", NULL};
    const cJSON *ns;
    const cJSON *c;
    pv_status rc;

    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: subject must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "subject", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "team_label", &cfg->subject.team_label, "subject", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "service_label", &cfg->subject.service_label, "subject", cfg->name, err);
    if (rc)
        return rc;
    ns = cJSON_GetObjectItemCaseSensitive(v, "namespaces");
    if (ns == NULL || cJSON_IsNull(ns))
        return PV_OK;
    if (!cJSON_IsObject(ns))
        return pv_err_set(err, PV_ECONFIG,
                          "%s: subject.namespaces must map namespaces to teams (shop: payments)",
                          cfg->name);
    cJSON_ArrayForEach(c, ns)
    {
        if (!cJSON_IsString(c) || c->valuestring[0] == '\0')
            return pv_err_set(err, PV_ECONFIG, "%s: subject.namespaces.%s must be a team name",
                              cfg->name, c->string);
    }
    cfg->subject.namespaces = ns;
    return PV_OK;
}

static pv_status parse_audit(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"db", "durability", "queue_max", NULL};
    const char *dur = NULL;
    double d = (double)cfg->audit.queue_max;
    pv_status rc;

    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: audit must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "audit", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "db", &cfg->audit.db, "audit", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "durability", &dur, "audit", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_int(v, "queue_max", 1, 1 << 24, &d, "audit", cfg->name, err);
    if (rc)
        return rc;
    cfg->audit.queue_max = (size_t)d;
    if (dur != NULL && strcmp(dur, "sync") != 0 && strcmp(dur, "async") != 0)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: audit.durability must be sync (the answer waits for the commit) "
                          "or async",
                          cfg->name);
    cfg->audit.is_async = dur != NULL && strcmp(dur, "async") == 0;
    return PV_OK;
}

static pv_status parse_exceptions(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"remind_days", NULL};
    double d = cfg->exceptions.remind_days;
    pv_status rc;

    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: exceptions must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "exceptions", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_int(v, "remind_days", 0, 365, &d, "exceptions", cfg->name, err);
    cfg->exceptions.remind_days = (int)d;
    return rc;
}

static pv_status parse_breakglass(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"max_duration", NULL};
    const char *dur = NULL;
    int64_t s = 0;
    pv_status rc;

    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: breakglass must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "breakglass", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "max_duration", &dur, "breakglass", cfg->name, err);
    if (rc || dur == NULL)
        return rc;
    if (!duration_parse(dur, &s) || s < 60 || s > 7 * 86400)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: breakglass.max_duration must be a duration from 1m to 7d (30m, "
                          "4h)",
                          cfg->name);
    cfg->breakglass.max_duration_s = s;
    return PV_OK;
}

const char *config_role_name(enum cfg_role r)
{
    switch (r) {
    case ROLE_ADMIN:
        return "admin";
    case ROLE_APPROVER:
        return "approver";
    case ROLE_CI:
        return "ci";
    case ROLE_READER:
        return "reader";
    }
    return "?";
}

static void sha256(const void *p, size_t len, unsigned char out[32])
{
    unsigned int n = 32;

    PV_ASSERT(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) == 1);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* tokens: [{name, role, sha256 | file | env}]. A token given in clear (file or env) is
 * hashed at once and the clear text wiped. */
static pv_status parse_tokens(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"name", "role", "sha256", "file", "env", "teams", NULL};
    static const char *const roles[] = {"admin", "approver", "ci", "reader"};
    const cJSON *t;
    size_t i = 0;

    if (!cJSON_IsArray(v))
        return pv_err_set(err, PV_ECONFIG, "%s: tokens must be a list", cfg->name);
    cfg->tokens = xcalloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*cfg->tokens));
    cJSON_ArrayForEach(t, v)
    {
        struct cfg_token *tok = &cfg->tokens[i];
        char where[32];
        const char *role = NULL;
        const char *hex = NULL;
        const char *file = NULL;
        const char *env = NULL;
        int r;
        pv_status rc;

        snprintf(where, sizeof(where), "tokens[%zu]", i);
        if (!cJSON_IsObject(t))
            return pv_err_set(err, PV_ECONFIG, "%s: %s must be a mapping", cfg->name, where);
        rc = config_check_keys(t, keys, where, cfg->name, err);
        if (rc == PV_OK)
            rc = opt_string(t, "name", &tok->name, where, cfg->name, err);
        if (rc == PV_OK)
            rc = opt_string(t, "role", &role, where, cfg->name, err);
        if (rc == PV_OK)
            rc = opt_string(t, "sha256", &hex, where, cfg->name, err);
        if (rc == PV_OK)
            rc = opt_string(t, "file", &file, where, cfg->name, err);
        if (rc == PV_OK)
            rc = opt_string(t, "env", &env, where, cfg->name, err);
        if (rc)
            return rc;
        if (tok->name == NULL)
            return pv_err_set(err, PV_ECONFIG, "%s: %s needs a name", cfg->name, where);
        tok->teams = cJSON_GetObjectItemCaseSensitive(t, "teams");
        if (tok->teams != NULL) {
            const cJSON *team;

            if (!cJSON_IsArray(tok->teams) || cJSON_GetArraySize(tok->teams) == 0)
                return pv_err_set(err, PV_ECONFIG,
                                  "%s: %s (%s): teams must be a non-empty list of team names",
                                  cfg->name, where, tok->name);
            cJSON_ArrayForEach(team, tok->teams)
            {
                if (!cJSON_IsString(team) || team->valuestring[0] == '\0')
                    return pv_err_set(err, PV_ECONFIG, "%s: %s (%s): teams holds a non-name",
                                      cfg->name, where, tok->name);
            }
        }
        for (r = 0; r < 4; r++)
            if (role != NULL && strcmp(role, roles[r]) == 0)
                break;
        if (r == 4)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s (%s): role must be admin, approver, ci or reader", cfg->name,
                              where, tok->name);
        tok->role = (enum cfg_role)r;
        if ((hex != NULL) + (file != NULL) + (env != NULL) != 1)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s (%s): give exactly one of sha256 (hex of the token's "
                              "SHA-256), file or env",
                              cfg->name, where, tok->name);
        if (hex != NULL) {
            if (strlen(hex) != 64)
                return pv_err_set(err, PV_ECONFIG, "%s: %s (%s): sha256 must be 64 hex digits",
                                  cfg->name, where, tok->name);
            for (int k = 0; k < 32; k++) {
                int hi = hex_digit(hex[2 * k]);
                int lo = hex_digit(hex[2 * k + 1]);

                if (hi < 0 || lo < 0)
                    return pv_err_set(err, PV_ECONFIG, "%s: %s (%s): sha256 is not hex", cfg->name,
                                      where, tok->name);
                tok->sha256[k] = (unsigned char)(hi << 4 | lo);
            }
        } else {
            char *secret = NULL;
            size_t len = 0;

            if (file != NULL) {
                rc = fs_read_file(file, 4096, &secret, &len, err);
                if (rc)
                    return rc;
            } else {
                const char *e = getenv(env);

                if (e == NULL || e[0] == '\0')
                    return pv_err_set(err, PV_ECONFIG,
                                      "%s: %s (%s): environment variable %s "
                                      "is not set",
                                      cfg->name, where, tok->name, env);
                secret = xstrdup(e);
                len = strlen(secret);
            }
            while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
                len--;
            sha256(secret, len, tok->sha256);
            OPENSSL_cleanse(secret, len);
            free(secret);
        }
        i++;
        cfg->n_tokens = i;
    }
    return PV_OK;
}

bool config_token_may_act_for(const struct cfg_token *t, const char *team)
{
    const cJSON *x;

    if (t->teams == NULL)
        return true;
    cJSON_ArrayForEach(x, t->teams)
    {
        if (team != NULL && strcmp(x->valuestring, team) == 0)
            return true;
    }
    return false;
}

const struct cfg_token *config_find_token(const struct config *cfg, const char *presented)
{
    unsigned char h[32];
    const struct cfg_token *found = NULL;

    if (presented == NULL || presented[0] == '\0')
        return NULL;
    sha256(presented, strlen(presented), h);
    /* Every token is compared, so the time does not tell which one matched. */
    for (size_t i = 0; i < cfg->n_tokens; i++)
        if (CRYPTO_memcmp(h, cfg->tokens[i].sha256, 32) == 0)
            found = &cfg->tokens[i];
    return found;
}

pv_status config_parse(struct config **out, const char *text, size_t len, const char *name,
                       struct pv_err *err)
{
    static const char *const keys[] = {
        "bindings",   "policies_dir", "policy_limits", "server",      "audit",  "tokens", "subject",
        "exceptions", "breakglass",   "notifications", "credentials", "quotas", "prices", NULL};
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    const cJSON *v;
    pv_status rc;

    cfg->name = xstrdup(name);
    cfg->limits.max_memory = (size_t)32 << 20;
    cfg->limits.max_instructions = 10000000;
    cfg->limits.timeout_ms = 2000;
    cfg->server.listen = "127.0.0.1:8443";
    cfg->server.max_body_bytes = (size_t)6 << 20;
    cfg->server.request_timeout_ms = 2500;
    cfg->server.connection_timeout_s = 30;
    cfg->audit.db = "paved.db";
    cfg->subject.team_label = "team";
    cfg->subject.service_label = "app.kubernetes.io/name";
    cfg->audit.queue_max = 65536;
    cfg->exceptions.remind_days = 3;
    cfg->breakglass.max_duration_s = 4 * 3600;
    cfg->notifications.max_attempts = 8;
    cfg->notifications.backoff_initial_ms = 1000;
    cfg->notifications.backoff_max_ms = 300000;
    cfg->credentials.issuer = "paved";
    cfg->credentials.keys_dir = "keys";
    cfg->credentials.max_ttl_s = 3600;
    cfg->credentials.leeway_s = 60;
    cfg->credentials.jwks_cache_s = 300;
    cfg->prices.currency = "USD";
    cfg->prices.hours_per_month = 730;
    rc = yaml_parse_one(text, len, name, &config_yaml_limits, &cfg->root, err);
    if (rc)
        goto fail;
    if (!cJSON_IsObject(cfg->root)) {
        rc = pv_err_set(err, PV_ECONFIG, "%s: the configuration must be a mapping", name);
        goto fail;
    }
    rc = config_check_keys(cfg->root, keys, "top level", name, err);
    if (rc)
        goto fail;
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "policies_dir");
    if (v != NULL) {
        if (!cJSON_IsString(v)) {
            rc = pv_err_set(err, PV_ECONFIG, "%s: policies_dir must be a path", name);
            goto fail;
        }
        cfg->policies_dir = v->valuestring;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "server");
    if (v != NULL) {
        rc = parse_server(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "subject");
    if (v != NULL) {
        rc = parse_subject(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "tokens");
    if (v != NULL) {
        rc = parse_tokens(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "audit");
    if (v != NULL) {
        rc = parse_audit(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "exceptions");
    if (v != NULL) {
        rc = parse_exceptions(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "breakglass");
    if (v != NULL) {
        rc = parse_breakglass(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "notifications");
    if (v != NULL) {
        rc = config_parse_notifications(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "credentials");
    if (v != NULL) {
        rc = config_parse_credentials(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "quotas");
    if (v != NULL) {
        rc = config_parse_quotas(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "prices");
    if (v != NULL) {
        rc = config_parse_prices(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "policy_limits");
    if (v != NULL) {
        rc = parse_limits(cfg, v, err);
        if (rc)
            goto fail;
    }
    v = cJSON_GetObjectItemCaseSensitive(cfg->root, "bindings");
    /* A config that lost its bindings (an empty or truncated file) must not quietly
     * turn the gate into allow-all: binding nothing has to be said (bindings: []). */
    if (v == NULL || cJSON_IsNull(v)) {
        rc = pv_err_set(err, PV_ECONFIG,
                        "%s: no bindings: list the policies to enforce under \"bindings:\" "
                        "(write \"bindings: []\" to enforce none)",
                        name);
        goto fail;
    }
    {
        size_t n = (size_t)cJSON_GetArraySize(v);
        const cJSON *item;

        if (!cJSON_IsArray(v)) {
            rc = pv_err_set(err, PV_ECONFIG, "%s: bindings must be a list", name);
            goto fail;
        }
        cfg->bindings = xcalloc(n ? n : 1, sizeof(*cfg->bindings));
        cJSON_ArrayForEach(item, v)
        {
            rc = parse_binding(cfg, item, cfg->n_bindings, err);
            if (rc)
                goto fail;
            cfg->n_bindings++;
        }
    }
    *out = cfg;
    return PV_OK;
fail:
    config_free(cfg);
    return rc;
}

pv_status config_load_file(struct config **out, const char *path, struct pv_err *err)
{
    char *text = NULL;
    size_t len = 0;
    pv_status rc = fs_read_file(path, CONFIG_MAX_BYTES, &text, &len, err);

    if (rc)
        return rc;
    rc = config_parse(out, text, len, path, err);
    free(text);
    return rc;
}

pv_status config_load_default(struct config **out, struct pv_err *err)
{
    struct vm_source src;

    if (bundle_embedded("policies/default.yaml", &src) == NULL)
        return pv_err_set(err, PV_ECONFIG, "the embedded default configuration is missing");
    return config_parse(out, src.text, src.len, src.path, err);
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    config_notifications_free(cfg);
    config_credentials_free(cfg);
    free(cfg->quotas);
    cJSON_Delete(cfg->root);
    if (cfg->tokens != NULL)
        OPENSSL_cleanse(cfg->tokens, cfg->n_tokens * sizeof(*cfg->tokens));
    free(cfg->tokens);
    free(cfg->bindings);
    free(cfg->name);
    free(cfg);
}

struct vm_binding *config_vm_bindings(const struct config *cfg)
{
    struct vm_binding *b = xcalloc(cfg->n_bindings ? cfg->n_bindings : 1, sizeof(*b));

    for (size_t i = 0; i < cfg->n_bindings; i++) {
        b[i].policy_id = cfg->bindings[i].policy;
        b[i].params = cfg->bindings[i].params;
        b[i].match = cfg->bindings[i].match;
    }
    return b;
}
