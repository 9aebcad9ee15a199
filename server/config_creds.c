/* server/config_creds.c: the `credentials:` section of paved.yaml: paved as an issuer
 * of short-lived credentials (its own iss, signing keys directory, TTL cap, clock
 * leeway) and the upstream OIDC issuers whose tokens it accepts. Every key is checked,
 * so a typo is an error naming it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "xalloc.h"

#define ISSUER_MAX 1024
#define URL_MAX 2048
#define CLAIM_NAME_MAX 128
#define TEAM_MAX 128

/* *out = the string at sec[k] (at most 'max_len' bytes, no control characters),
 * untouched when the key is absent. */
static pv_status opt_string(const cJSON *sec, const char *k, size_t max_len, const char **out,
                            const char *where, const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);

    if (v == NULL)
        return PV_OK;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s must be a non-empty string", name, where, k);
    if (strlen(v->valuestring) > max_len)
        return pv_err_set(err, PV_ECONFIG, "%s: %s: %s is longer than %zu characters", name, where,
                          k, max_len);
    for (const char *c = v->valuestring; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return pv_err_set(err, PV_ECONFIG, "%s: %s: %s contains a control character", name,
                              where, k);
    *out = v->valuestring;
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

/* True for "0" or a zero with one unit ("0s", "0m"): duration_parse refuses zero, but
 * a leeway of none is meaningful. */
static bool is_zero_duration(const char *s)
{
    return strcmp(s, "0") == 0 ||
           (s[0] == '0' && s[1] != '\0' && strchr("smhdw", s[1]) != NULL && s[2] == '\0');
}

/* *out = the duration at sec[k] in ['lo_s', 'hi_s'] seconds ('lo_text'..'hi_text' in
 * the message), untouched when the key is absent. Zero is accepted only when 'lo_s' is
 * 0, written 0, "0" or "0s". */
static pv_status opt_duration(const cJSON *sec, const char *k, int64_t lo_s, int64_t hi_s,
                              const char *range, int64_t *out, const char *name, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, k);
    int64_t s = 0;
    bool is_ok;

    if (v == NULL)
        return PV_OK;
    if (lo_s == 0 && cJSON_IsNumber(v) && v->valuedouble == 0) {
        is_ok = true;
    } else if (!cJSON_IsString(v)) {
        is_ok = false;
    } else if (lo_s == 0 && is_zero_duration(v->valuestring)) {
        is_ok = true;
    } else {
        is_ok = duration_parse(v->valuestring, &s) && s >= lo_s && s <= hi_s;
    }
    if (!is_ok)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: credentials.%s must be a duration from %s (a number and a unit: "
                          "s, m, h, d)",
                          name, k, range);
    *out = s;
    return PV_OK;
}

/* An http(s) URL with a host and no whitespace or control characters; http:// only
 * with allow_http. */
static pv_status check_url(const char *u, bool is_http_allowed, const char *where, const char *name,
                           struct pv_err *err)
{
    const char *host;

    if (strncmp(u, "https://", 8) == 0) {
        host = u + 8;
    } else if (strncmp(u, "http://", 7) == 0) {
        if (!is_http_allowed)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: jwks_url: http:// is refused (anyone on the path could "
                              "substitute their own keys); use https://, or set allow_http: true",
                              name, where);
        host = u + 7;
    } else {
        return pv_err_set(err, PV_ECONFIG, "%s: %s: jwks_url must start with https://", name,
                          where);
    }
    if (*host == '\0' || *host == '/' || *host == ':' || *host == '?' || *host == '#')
        return pv_err_set(err, PV_ECONFIG, "%s: %s: jwks_url has no host", name, where);
    for (const char *c = u; *c != '\0'; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: jwks_url contains a space or control character", name,
                              where);
    return PV_OK;
}

/* teams: a mapping of claim values to team names (non-empty strings). */
static pv_status check_teams(const cJSON *teams, const char *where, const char *name,
                             struct pv_err *err)
{
    const cJSON *t;

    if (!cJSON_IsObject(teams))
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: teams must be a mapping of claim values to team names", name,
                          where);
    cJSON_ArrayForEach(t, teams)
    {
        if (!cJSON_IsString(t) || t->valuestring[0] == '\0' || strlen(t->valuestring) > TEAM_MAX)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: teams.%s must be a team name (a string of 1 to %d "
                              "characters)",
                              name, where, t->string, TEAM_MAX);
    }
    return PV_OK;
}

static pv_status parse_issuer(struct config *cfg, const cJSON *item, size_t i, struct pv_err *err)
{
    static const char *const keys[] = {"issuer",        "jwks_url",   "audience",
                                       "cacert",        "allow_http", "team_claim",
                                       "service_claim", "teams",      NULL};
    struct cfg_oidc_issuer *is = &cfg->credentials.issuers[i];
    const cJSON *teams;
    char where[ISSUER_MAX + 64];
    pv_status rc;

    snprintf(where, sizeof(where), "credentials.oidc[%zu]", i);
    if (!cJSON_IsObject(item))
        return pv_err_set(err, PV_ECONFIG, "%s: %s must be a mapping", cfg->name, where);
    /* The issuer first, so later messages can say which one they are about. */
    rc = opt_string(item, "issuer", ISSUER_MAX, &is->issuer, where, cfg->name, err);
    if (rc)
        return rc;
    if (is->issuer == NULL)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: issuer is required (the exact iss of the tokens)", cfg->name,
                          where);
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->credentials.issuers[j].issuer, is->issuer) == 0)
            return pv_err_set(err, PV_ECONFIG,
                              "%s: %s: issuer %s is already configured by credentials.oidc[%zu]",
                              cfg->name, where, is->issuer, j);
    snprintf(where, sizeof(where), "credentials.oidc[%zu] (%s)", i, is->issuer);
    rc = config_check_keys(item, keys, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_bool(item, "allow_http", &is->is_http_allowed, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "jwks_url", URL_MAX, &is->jwks_url, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "audience", ISSUER_MAX, &is->audience, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "cacert", 4096, &is->cacert, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "team_claim", CLAIM_NAME_MAX, &is->team_claim, where, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(item, "service_claim", CLAIM_NAME_MAX, &is->service_claim, where, cfg->name,
                        err);
    if (rc)
        return rc;
    if (is->jwks_url == NULL)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: jwks_url is required (where the issuer "
                          "publishes its keys)",
                          cfg->name, where);
    if (is->audience == NULL)
        return pv_err_set(err, PV_ECONFIG,
                          "%s: %s: audience is required (the aud its tokens must carry for "
                          "paved)",
                          cfg->name, where);
    rc = check_url(is->jwks_url, is->is_http_allowed, where, cfg->name, err);
    if (rc)
        return rc;
    teams = cJSON_GetObjectItemCaseSensitive(item, "teams");
    if (teams != NULL) {
        rc = check_teams(teams, where, cfg->name, err);
        if (rc)
            return rc;
        is->teams = teams;
    }
    if (is->team_claim == NULL)
        is->team_claim = "team";
    if (is->service_claim == NULL)
        is->service_claim = "service";
    return PV_OK;
}

pv_status config_parse_credentials(struct config *cfg, const cJSON *v, struct pv_err *err)
{
    static const char *const keys[] = {"issuer",     "keys_dir", "max_ttl", "leeway",
                                       "jwks_cache", "oidc",     NULL};
    struct cfg_credentials *c = &cfg->credentials;
    const cJSON *list;
    const cJSON *item;
    pv_status rc;

    if (cJSON_IsNull(v))
        return PV_OK; /* "credentials:" with everything below commented out */
    if (!cJSON_IsObject(v))
        return pv_err_set(err, PV_ECONFIG, "%s: credentials must be a mapping", cfg->name);
    rc = config_check_keys(v, keys, "credentials", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "issuer", ISSUER_MAX, &c->issuer, "credentials", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_string(v, "keys_dir", 4096, &c->keys_dir, "credentials", cfg->name, err);
    if (rc == PV_OK)
        rc = opt_duration(v, "max_ttl", 60, 86400, "1m to 24h", &c->max_ttl_s, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_duration(v, "leeway", 0, 600, "0s to 10m", &c->leeway_s, cfg->name, err);
    if (rc == PV_OK)
        rc = opt_duration(v, "jwks_cache", 10, 86400, "10s to 24h", &c->jwks_cache_s, cfg->name,
                          err);
    if (rc)
        return rc;
    list = cJSON_GetObjectItemCaseSensitive(v, "oidc");
    if (list == NULL || cJSON_IsNull(list))
        return PV_OK;
    if (!cJSON_IsArray(list))
        return pv_err_set(err, PV_ECONFIG, "%s: credentials.oidc must be a list of issuers",
                          cfg->name);
    c->issuers = xcalloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*c->issuers));
    cJSON_ArrayForEach(item, list)
    {
        size_t i = c->n_issuers;

        rc = parse_issuer(cfg, item, i, err);
        if (rc)
            return rc;
        c->n_issuers++;
    }
    return PV_OK;
}

void config_credentials_free(struct config *cfg)
{
    /* Every string points into cfg->root; only the array is ours. */
    free(cfg->credentials.issuers);
    cfg->credentials.issuers = NULL;
    cfg->credentials.n_issuers = 0;
}
