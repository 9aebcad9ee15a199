/* server/config_notify.c: the `notifications:` section of paved.yaml: the endpoints
 * outbound notifications go to, their secrets (read once, wiped on free) and the retry
 * policy. Every key is checked, so a typo is an error naming it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "fsutil.h"
#include "xalloc.h"

#define ENDPOINT_NAME_MAX 64
#define ENDPOINT_URL_MAX 2048
#define SECRET_MAX_BYTES 4096

/* The events the audit writer emits; an endpoint's `events:` names these or a
 * "<group>.*" of them. */
static const char *const known_events[] = {
    "exception.requested", "exception.approved",
    "exception.denied",    "exception.revoked",
    "exception.expiring",  "exception.expired",
    "breakglass.started",  "breakglass.ended",
    "decision.denied",     NULL,
};
static const char *const known_globs[] = {"exception.*", "breakglass.*", "decision.*", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (const char *const *p = list; *p != NULL; p++)
        if (strcmp(*p, s) == 0)
            return true;
    return false;
}

/* *out = the string at sec[k], untouched when the key is absent. */
static pv_status opt_string(const cJSON *sec, const char *k, const char **out, const char *where,
                            const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);

    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s must be a non-empty string", name, where, k);
    *out = v->valuestring;
    return PV_OK;
}

/* *out = the whole number at sec[k] in [lo, hi], untouched when the key is absent. */
static pv_status opt_int(const cJSON *sec, const char *k, int lo, int hi, int *out,
                         const char *where, const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);

    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s must be a whole number from %d to %d", name,
                          where, k, lo, hi);
    *out = (int)v->valuedouble;
    return PV_OK;
}

/* *out = the boolean at sec[k], untouched when the key is absent. */
static pv_status opt_bool(const cJSON *sec, const char *k, bool *out, const char *where,
                          const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);

    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsBool(v))
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s must be true or false", name, where, k);
    *out = cJSON_IsTrue(v);
    return PV_OK;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/* A URL with an http(s) scheme, a host, and no whitespace or control characters. The
 * message never quotes the URL: it may carry a token. */
static pv_status check_url(const struct cfg_endpoint *e, const char *where, const char *name,
                           struct pv_err *err)
{
    const char *u = e->url;
    const char *host;
    size_t len = strlen(u);

    if (strncmp(u, "https://", 8) == 0) {
        host = u + 8;
    } else if (strncmp(u, "http://", 7) == 0) {
        if (!e->is_http_allowed)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: url: http:// is refused (the body and its signature would "
                              "travel in clear); use https://, or set allow_http: true",
                              name, where);
        host = u + 7;
    } else {
        return pv_err_set(err, PV_ECONFIG, "%s: %s: url must start with https://", name, where);
    }
    if (len > ENDPOINT_URL_MAX)
        return pv_err_set(err, PV_ECONFIG, "%s: %s: url is longer than %d characters", name, where,
                          ENDPOINT_URL_MAX);
    if (*host == '\0' || *host == '/' || *host == ':')
        return pv_err_set(err, PV_ECONFIG, "%s: %s: url has no host", name, where);
    for (const char *c = u; *c != '\0'; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return pv_err_set(err, PV_ECONFIG, "%s: %s: url contains a space or control character",
                              name, where);
    return PV_OK;
}

/* Reads the secret from exactly one of secret_env, secret_file and secret into e->secret
 * (owned, xmalloc). Trailing newlines of files and variables are not part of it. */
static pv_status read_secret(struct cfg_endpoint *e, const cJSON *item, const char *where,
                             const char *name, struct pv_err *err)
{
    const char *env = NULL;
    const char *file = NULL;
    const char *inline_secret = NULL;
    char *secret = NULL;
    size_t len = 0;
    pv_status rc;

    rc = opt_string(item, "secret_env", &env, where, name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "secret_file", &file, where, name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "secret", &inline_secret, where, name, err);
    if (rc)
        return rc;
    if ((env != NULL) + (file != NULL) + (inline_secret != NULL) != 1)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: give exactly one of secret_env (an environment variable), "
                          "secret_file (a file) or secret (the key itself)%s",
                          name, where,
                          env != NULL || file != NULL || inline_secret != NULL
                              ? ", not several"
                              : ": every message is signed with it");
    if (file != NULL) {
        rc = fs_read_file(file, SECRET_MAX_BYTES, &secret, &len, err);
        if (rc == PV_ETOOBIG)
            return pv_err_set(err, PV_ECONFIG, "%s: %s: secret_file %s is larger than %d bytes",
                              name, where, file, SECRET_MAX_BYTES);
        if (rc) {
            char why[PV_ERR_MSG_MAX];

            snprintf(why, sizeof(why), "%s", err != NULL ? err->msg : "cannot be read");
            return pv_err_set(err, PV_ECONFIG, "%s: %s: secret_file: %s", name, where, why);
        }
    } else if (env != NULL) {
        const char *v = getenv(env);

        if (v == NULL || v[0] == '\0')
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: secret_env: environment variable %s is not set", name, where,
                              env);
        len = strlen(v);
        if (len > SECRET_MAX_BYTES)
            return pv_err_set(err, PV_ECONFIG, "%s: %s: secret_env: %s is longer than %d bytes",
                              name, where, env, SECRET_MAX_BYTES);
        secret = xstrndup(v, len);
    } else {
        /* Wiped from the parsed tree once copied: the key is then held in one place,
         * and the config digest recorded with decisions does not depend on it. */
        cJSON *v = cJSON_GetObjectItemCaseSensitive(item, "secret");

        len = strlen(inline_secret);
        secret = xstrndup(inline_secret, len);
        OPENSSL_cleanse(v->valuestring, len);
    }
    while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
        len--;
    if (len == 0) {
        OPENSSL_cleanse(secret, strlen(secret));
        free(secret);
        return pv_err_set(err, PV_ECONFIG, "%s: %s: the secret is empty", name, where);
    }
    /* The bytes after 'len' (newlines) are not secret, but wipe the whole buffer alike. */
    secret[len] = '\0';
    e->secret = secret;
    e->secret_len = len;
    return PV_OK;
}

/* events: a list of known event names or "<group>.*"; policies: a list of policy ids. */
static pv_status parse_filters(struct cfg_endpoint *e, const cJSON *item, const char *where,
                               const char *name, struct pv_err *err)
{
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(item, "events");
    const cJSON *policies = cJSON_GetObjectItemCaseSensitive(item, "policies");
    bool is_denied_sent = events == NULL;
    const cJSON *c;
    size_t i = 0;

    if (events != NULL) {
        if (!cJSON_IsArray(events) || cJSON_GetArraySize(events) == 0)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: events must be a non-empty list (leave it out for every "
                              "event)",
                              name, where);
        cJSON_ArrayForEach(c, events)
        {
            if (!cJSON_IsString(c))
                return pv_err_set(err, PV_ECONFIG, "%s: %s: events[%zu] must be a string", name,
                                  where, i);
            if (!in_list(known_events, c->valuestring) && !in_list(known_globs, c->valuestring))
                return pv_err_set(err, PV_ECONFIG,
                                  "%s: %s: events[%zu]: unknown event \"%s\" (expected "
                                  "exception.requested|approved|denied|revoked|expiring|expired, "
                                  "breakglass.started|ended, decision.denied, or exception.*, "
                                  "breakglass.*, decision.*)",
                                  name, where, i, c->valuestring);
            if (strcmp(c->valuestring, "decision.denied") == 0 ||
                strcmp(c->valuestring, "decision.*") == 0)
                is_denied_sent = true;
            i++;
        }
        e->events = events;
    }
    if (policies != NULL) {
        i = 0;
        if (!cJSON_IsArray(policies) || cJSON_GetArraySize(policies) == 0)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: policies must be a non-empty list of policy ids", name,
                              where);
        cJSON_ArrayForEach(c, policies)
        {
            if (!cJSON_IsString(c) || c->valuestring[0] == '\0')
                return pv_err_set(err, PV_ECONFIG, "%s: %s: policies[%zu] must be a policy id",
                                  name, where, i);
            i++;
        }
        if (!is_denied_sent)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: policies only select which denials are sent, but events "
                              "does not include decision.denied",
                              name, where);
        e->policies = policies;
    } else if (events != NULL && is_denied_sent) {
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: events includes decision.denied: list the policies whose "
                          "denials are sent under policies",
                          name, where);
    }
    return PV_OK;
}

static pv_status parse_endpoint(struct config *cfg, const cJSON *item, size_t i, struct pv_err *err)
{
    static const char *const keys[] = {"name",   "url",        "secret_env", "secret_file",
                                       "secret", "events",     "policies",   "allow_http",
                                       "slack",  "timeout_ms", "cacert",     NULL};
    struct cfg_endpoint *e = &cfg->notifications.endpoints[i];
    const cJSON *v;
    char where[ENDPOINT_NAME_MAX + 64];
    pv_status rc;

    snprintf(where, sizeof(where), "notifications.endpoints[%zu]", i);
    if (!cJSON_IsObject(item))
        return pv_err_set(err, PV_ECONFIG, "%s: %s must be a mapping", cfg->name, where);
    /* The name first, so every later message can say which endpoint it is about. */
    v = cJSON_GetObjectItemCaseSensitive(item, "name");
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return pv_err_set(err, PV_ECONFIG, "%s: %s: name is required (a-z, 0-9, -, _, .)",
                          cfg->name, where);
    e->name = v->valuestring;
    if (strlen(e->name) > ENDPOINT_NAME_MAX)
        return pv_err_set(err, PV_ECONFIG, "%s: %s: name is longer than %d characters", cfg->name,
                          where, ENDPOINT_NAME_MAX);
    for (const char *c = e->name; *c != '\0'; c++)
        if (!is_name_char(*c))
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: name \"%s\" may hold only a-z, 0-9, -, _ and .", cfg->name,
                              where, e->name);
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->notifications.endpoints[j].name, e->name) == 0)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: name \"%s\" is already used by "
                              "notifications.endpoints[%zu]; the outbox names endpoints by it",
                              cfg->name, where, e->name, j);
    snprintf(where, sizeof(where), "notifications.endpoints[%zu] (%s)", i, e->name);
    rc = config_check_keys(item, keys, where, cfg->name, err);
    if (rc)
        return rc;
    e->timeout_ms = 5000;
    rc = opt_bool(item, "allow_http", &e->is_http_allowed, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_bool(item, "slack", &e->is_slack, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_int(item, "timeout_ms", 100, 60000, &e->timeout_ms, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "cacert", &e->cacert, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "url", &e->url, where, cfg->name, err);
    if (rc)
        return rc;
    if (e->url == NULL)
        return pv_err_set(err, PV_ECONFIG, "%s: %s: url is required", cfg->name, where);
    rc = check_url(e, where, cfg->name, err);
    if (rc == PV_OK)
        rc = parse_filters(e, item, where, cfg->name, err);
    if (rc == PV_OK)
        rc = read_secret(e, item, where, cfg->name, err);
    return rc;
}

pv_status config_parse_notifications(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"max_attempts", "backoff_initial_ms", "backoff_max_ms",
                                       "endpoints", NULL};
    struct cfg_notifications *nt = &cfg->notifications;
    const cJSON *eps;
    const cJSON *item;
    pv_status rc;

    if (cJSON_IsNull(v))
        return PV_OK; /* "notifications:" with everything below commented out */
    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: notifications must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "notifications", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_int(v, "max_attempts", 1, 100, &nt->max_attempts, "notifications", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_int(v, "backoff_initial_ms", 10, 3600000, &nt->backoff_initial_ms, "notifications",
                     cfg->name, err);
    if (rc == PV_OK)
        rc = opt_int(v, "backoff_max_ms", 10, 86400000, &nt->backoff_max_ms, "notifications",
                     cfg->name, err);
    if (rc)
        return rc;
    if (nt->backoff_max_ms < nt->backoff_initial_ms)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: notifications: backoff_max_ms (%d) must be at least "
                          "backoff_initial_ms (%d)",
                          cfg->name, nt->backoff_max_ms, nt->backoff_initial_ms);
    eps = cJSON_GetObjectItemCaseSensitive(v, "endpoints");
    if (eps == NULL || cJSON_IsNull(eps))
        return PV_OK;
    if (!cJSON_IsArray(eps))
        return pv_err_set(err, PV_ECONFIG, "%s: notifications.endpoints must be a list", cfg->name);
    nt->endpoints = xcalloc((size_t)cJSON_GetArraySize(eps) + 1, sizeof(*nt->endpoints));
    cJSON_ArrayForEach(item, eps)
    {
        /* Counted before parsing, so config_notifications_free wipes a secret read by an
         * endpoint that then fails. */
        size_t i = nt->n_endpoints++;

        rc = parse_endpoint(cfg, item, i, err);
        if (rc)
            return rc;
    }
    return PV_OK;
}

void config_notifications_free(struct config *cfg)
{
    for (size_t i = 0; i < cfg->notifications.n_endpoints; i++) {
        struct cfg_endpoint *e = &cfg->notifications.endpoints[i];

        if (e->secret != NULL)
            OPENSSL_cleanse(e->secret, e->secret_len);
        free(e->secret);
    }
    free(cfg->notifications.endpoints);
    cfg->notifications.endpoints = NULL;
    cfg->notifications.n_endpoints = 0;
}
