/* server/oidc.c: upstream OIDC token verification: the configured issuers, each with
 * a JWKS cache (fetched with libcurl, reference counted so a refresh never frees a JWKS
 * another thread is verifying with), and the mapping of claims to team and service. */
#include "oidc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "jsonutil.h"
#include "jwt.h"
#include "log.h"
#include "xalloc.h"

/* A fetched JWKS shared by the cache and the requests verifying with it. */
struct jwks_ref {
    cJSON *doc;
    int refs; /* guarded by the issuer's mu */
};

struct issuer {
    char *issuer;
    char *jwks_url;
    char *audience;
    char *cacert; /* or NULL */
    bool is_http_allowed;
    /* Held during a transfer, so one runs at a time per issuer; never taken while mu
     * is held. */
    pthread_mutex_t fetch_mu;
    pthread_mutex_t mu;
    struct jwks_ref *jwks;           /* guarded by mu; NULL until the first fetch */
    int64_t fetched_s;               /* guarded by mu: when 'jwks' was fetched */
    uint64_t gen;                    /* guarded by mu: counts successful fetches */
    int64_t last_attempt_s;          /* guarded by mu: start of the last transfer; -1 none */
    bool is_last_failed;             /* guarded by mu */
    char last_error[PV_ERR_MSG_MAX]; /* guarded by mu: why the last transfer failed */
};

struct oidc {
    struct issuer *v;
    size_t n;
    int64_t cache_s;
    int64_t leeway_s;
};

/* ---- Lifecycle ---- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

pv_status oidc_new(struct oidc **out, const struct cfg_credentials *c, struct pv_err *err)
{
    struct oidc *o = xcalloc(1, sizeof(*o));

    (void)err;
    o->v = xcalloc(c->n_issuers + 1, sizeof(*o->v));
    o->n = c->n_issuers;
    o->cache_s = c->jwks_cache_s;
    o->leeway_s = c->leeway_s;
    for (size_t i = 0; i < c->n_issuers; i++) {
        const struct cfg_oidc_issuer *ci = &c->issuers[i];
        struct issuer *is = &o->v[i];

        is->issuer = xstrdup(ci->issuer);
        is->jwks_url = xstrdup(ci->jwks_url);
        is->audience = xstrdup(ci->audience);
        is->cacert = dup_or_null(ci->cacert);
        is->is_http_allowed = ci->is_http_allowed;
        is->last_attempt_s = -1;
        PV_ASSERT(pthread_mutex_init(&is->fetch_mu, NULL) == 0);
        PV_ASSERT(pthread_mutex_init(&is->mu, NULL) == 0);
    }
    *out = o;
    return PV_OK;
}

static void jwks_release(struct issuer *is, struct jwks_ref *r)
{
    bool is_last;

    if (r == NULL)
        return;
    pthread_mutex_lock(&is->mu);
    is_last = --r->refs == 0;
    pthread_mutex_unlock(&is->mu);
    if (is_last) {
        cJSON_Delete(r->doc);
        free(r);
    }
}

void oidc_free(struct oidc *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->n; i++) {
        struct issuer *is = &o->v[i];

        jwks_release(is, is->jwks);
        pthread_mutex_destroy(&is->mu);
        pthread_mutex_destroy(&is->fetch_mu);
        free(is->issuer);
        free(is->jwks_url);
        free(is->audience);
        free(is->cacert);
    }
    free(o->v);
    free(o);
}

/* ---- Fetching a JWKS ---- */

struct body {
    char *p;
    size_t len;
    bool is_too_big;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t len = size * n;

    if (len > OIDC_MAX_JWKS_BYTES - b->len) {
        b->is_too_big = true;
        return 0;
    }
    b->p = xrealloc(b->p, b->len + len + 1);
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return len;
}

/* GETs the JWKS of 'is' into *out. Messages do not repeat "JWKS of X unavailable". */
static pv_status fetch(const struct issuer *is, cJSON **out, struct pv_err *err)
{
    const char *protocols = is->is_http_allowed ? "https,http" : "https";
    char errbuf[CURL_ERROR_SIZE] = "";
    struct body b = {NULL, 0, false};
    struct curl_slist *headers = NULL;
    CURL *curl = curl_easy_init();
    long status = 0;
    CURLcode cc;
    pv_status rc = PV_OK;

    if (curl == NULL)
        return pv_err_set(err, PV_EIO, "cannot start libcurl");
    headers = curl_slist_append(NULL, "Accept: application/json");
    PV_ASSERT(headers != NULL);
    cc = curl_easy_setopt(curl, CURLOPT_URL, is->jwks_url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protocols);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, OIDC_CONNECT_TIMEOUT_MS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, OIDC_TIMEOUT_MS);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)OIDC_MAX_JWKS_BYTES);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_USERAGENT, "paved/" PAVED_VERSION);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    if (cc == CURLE_OK && is->cacert != NULL)
        cc = curl_easy_setopt(curl, CURLOPT_CAINFO, is->cacert);
    if (cc != CURLE_OK) {
        rc = pv_err_set(err, PV_EIO, "libcurl: %s", curl_easy_strerror(cc));
        goto done;
    }
    cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        if (b.is_too_big || cc == CURLE_FILESIZE_EXCEEDED)
            rc = pv_err_set(err, PV_EIO, "%s: the answer is larger than %zu KiB", is->jwks_url,
                            OIDC_MAX_JWKS_BYTES >> 10);
        else
            rc = pv_err_set(err, PV_EIO, "%s: %s", is->jwks_url,
                            errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        rc = pv_err_set(err, PV_EIO, "%s answered HTTP %ld", is->jwks_url, status);
        goto done;
    }
    if (b.p == NULL) {
        rc = pv_err_set(err, PV_EIO, "%s answered an empty body", is->jwks_url);
        goto done;
    }
    rc = jwt_jwks_parse(b.p, b.len, out, err);
    if (rc) {
        char why[PV_ERR_MSG_MAX];

        snprintf(why, sizeof(why), "%s", err != NULL ? err->msg : "not a JWKS");
        rc = pv_err_set(err, PV_EIO, "%s: %s", is->jwks_url, why);
    }
done:
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(b.p);
    return rc;
}

/* Runs one transfer for 'is' (fetch_mu held, mu not) and records its outcome: a new
 * JWKS replaces the cached one; a failure keeps it and is remembered. */
static pv_status refresh(struct issuer *is, int64_t now_s, struct pv_err *err)
{
    struct jwks_ref *old = NULL;
    cJSON *doc = NULL;
    pv_status rc;

    pthread_mutex_lock(&is->mu);
    is->last_attempt_s = now_s;
    pthread_mutex_unlock(&is->mu);
    rc = fetch(is, &doc, err);
    pthread_mutex_lock(&is->mu);
    if (rc == PV_OK) {
        struct jwks_ref *r = xcalloc(1, sizeof(*r));

        r->doc = doc;
        r->refs = 1; /* the cache's */
        old = is->jwks;
        is->jwks = r;
        is->fetched_s = now_s;
        is->gen++;
        is->is_last_failed = false;
    } else {
        is->is_last_failed = true;
        snprintf(is->last_error, sizeof(is->last_error), "%s",
                 err != NULL ? err->msg : "transfer failed");
    }
    pthread_mutex_unlock(&is->mu);
    jwks_release(is, old);
    if (rc == PV_OK)
        log_msg(LOG_INFO, "oidc", "fetched the JWKS of %s: %d keys", is->issuer,
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "keys")));
    else
        log_msg(LOG_WARN, "oidc", "JWKS of %s unavailable: %s", is->issuer,
                err != NULL ? err->msg : "");
    return rc;
}

/* With mu held: a new reference to the cached JWKS and its generation. */
static struct jwks_ref *take_locked(struct issuer *is, uint64_t *gen_out)
{
    is->jwks->refs++;
    *gen_out = is->gen;
    return is->jwks;
}

static bool is_fresh_locked(const struct issuer *is, int64_t cache_s, int64_t now_s)
{
    return is->jwks != NULL && now_s - is->fetched_s < cache_s && now_s >= is->fetched_s;
}

/* The JWKS to verify with: the cached one while it is fresh (refreshed in passing once
 * past half its life, when no other transfer runs), else a new one. On PV_OK *out is a
 * reference to release with jwks_release and *gen_out its generation. */
static pv_status get_jwks(struct issuer *is, int64_t cache_s, int64_t now_s, struct jwks_ref **out,
                          uint64_t *gen_out, struct pv_err *err)
{
    struct pv_err ferr = {PV_OK, ""};
    bool is_soft = false;
    pv_status rc;

    pthread_mutex_lock(&is->mu);
    if (is_fresh_locked(is, cache_s, now_s)) {
        *out = take_locked(is, gen_out);
        is_soft = now_s - is->fetched_s >= cache_s / 2 &&
                  !(is->last_attempt_s >= 0 && now_s - is->last_attempt_s < OIDC_REFETCH_MIN_S);
        pthread_mutex_unlock(&is->mu);
        /* Only when no transfer runs: this request has a usable JWKS already. */
        if (is_soft && pthread_mutex_trylock(&is->fetch_mu) == 0) {
            pthread_mutex_lock(&is->mu);
            is_soft = is->gen == *gen_out;
            pthread_mutex_unlock(&is->mu);
            if (is_soft)
                (void)refresh(is, now_s, &ferr); /* logged; the cached copy stays */
            pthread_mutex_unlock(&is->fetch_mu);
        }
        return PV_OK;
    }
    pthread_mutex_unlock(&is->mu);

    pthread_mutex_lock(&is->fetch_mu);
    pthread_mutex_lock(&is->mu);
    if (is_fresh_locked(is, cache_s, now_s)) {
        /* Another request fetched it while this one waited. */
        *out = take_locked(is, gen_out);
        pthread_mutex_unlock(&is->mu);
        pthread_mutex_unlock(&is->fetch_mu);
        return PV_OK;
    }
    if (is->is_last_failed && now_s - is->last_attempt_s < OIDC_REFETCH_MIN_S &&
        now_s >= is->last_attempt_s) {
        rc = pv_err_set(err, PV_EIO, "JWKS of %s unavailable: %s (next try in %lld s)", is->issuer,
                        is->last_error,
                        (long long)(OIDC_REFETCH_MIN_S - (now_s - is->last_attempt_s)));
        pthread_mutex_unlock(&is->mu);
        pthread_mutex_unlock(&is->fetch_mu);
        return rc;
    }
    pthread_mutex_unlock(&is->mu);
    rc = refresh(is, now_s, &ferr);
    if (rc == PV_OK) {
        pthread_mutex_lock(&is->mu);
        *out = take_locked(is, gen_out);
        pthread_mutex_unlock(&is->mu);
    } else {
        rc = pv_err_set(err, PV_EIO, "JWKS of %s unavailable: %s", is->issuer, ferr.msg);
    }
    pthread_mutex_unlock(&is->fetch_mu);
    return rc;
}

/* After an unknown kid with the JWKS of generation 'seen_gen': a newer JWKS, fetched
 * now unless another request already did or the last transfer was under
 * OIDC_REFETCH_MIN_S ago. Returns PV_OK with *out, PV_ENOENT when rate-limited (the
 * message says so), PV_EIO when the transfer failed. */
static pv_status refetch(struct issuer *is, int64_t now_s, uint64_t seen_gen, struct jwks_ref **out,
                         uint64_t *gen_out, struct pv_err *err)
{
    struct pv_err ferr = {PV_OK, ""};
    pv_status rc;

    pthread_mutex_lock(&is->fetch_mu);
    pthread_mutex_lock(&is->mu);
    if (is->jwks != NULL && is->gen != seen_gen) {
        *out = take_locked(is, gen_out);
        pthread_mutex_unlock(&is->mu);
        pthread_mutex_unlock(&is->fetch_mu);
        return PV_OK;
    }
    if (is->last_attempt_s >= 0 && now_s - is->last_attempt_s < OIDC_REFETCH_MIN_S &&
        now_s >= is->last_attempt_s) {
        pthread_mutex_unlock(&is->mu);
        pthread_mutex_unlock(&is->fetch_mu);
        return pv_err_set(err, PV_ENOENT, "the JWKS of %s was fetched less than %d s ago",
                          is->issuer, OIDC_REFETCH_MIN_S);
    }
    pthread_mutex_unlock(&is->mu);
    rc = refresh(is, now_s, &ferr);
    if (rc == PV_OK) {
        pthread_mutex_lock(&is->mu);
        *out = take_locked(is, gen_out);
        pthread_mutex_unlock(&is->mu);
    } else {
        rc = pv_err_set(err, PV_EIO, "JWKS of %s unavailable: %s", is->issuer, ferr.msg);
    }
    pthread_mutex_unlock(&is->fetch_mu);
    return rc;
}

/* ---- Verifying ---- */

/* Copies 's' for a message: control and non-ASCII bytes become '?', cut at 'cap'. */
static const char *quote(const char *s, char *buf, size_t cap)
{
    size_t len = 0;

    for (; *s != '\0' && len < cap - 1; s++)
        buf[len++] = ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) ? '?' : *s;
    buf[len] = '\0';
    if (*s != '\0' && cap >= 4)
        memcpy(buf + cap - 4, "...", 4);
    return buf;
}

pv_status oidc_verify(struct oidc *o, const char *token, int64_t now_s, cJSON **claims_out,
                      char *issuer_out, size_t cap, struct pv_err *err)
{
    cJSON *unverified = NULL;
    cJSON *claims = NULL;
    struct issuer *is = NULL;
    struct jwks_ref *ref = NULL;
    struct jwks_ref *newer = NULL;
    uint64_t gen = 0;
    const char *iss;
    char q[96];
    pv_status rc;

    rc = jwt_unverified_claims(token, &unverified, err);
    if (rc)
        return rc;
    iss = json_str(unverified, "iss", NULL);
    if (iss == NULL) {
        rc = pv_err_set(err, PV_EINVAL, "token has no iss claim (a string)");
        goto done;
    }
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->v[i].issuer, iss) == 0)
            is = &o->v[i];
    if (is == NULL) {
        rc = pv_err_set(err, PV_EINVAL, "unknown issuer %s (not in credentials.oidc)",
                        quote(iss, q, sizeof(q)));
        goto done;
    }
    if (strlen(is->issuer) + 1 > cap) {
        rc = pv_err_set(err, PV_ETOOBIG, "issuer longer than %zu bytes", cap);
        goto done;
    }
    rc = get_jwks(is, o->cache_s, now_s, &ref, &gen, err);
    if (rc)
        goto done;
    rc = jwt_verify(token, ref->doc, is->issuer, is->audience, now_s, o->leeway_s, &claims, err);
    if (rc == PV_ENOENT) {
        char first[PV_ERR_MSG_MAX];
        struct pv_err rerr = {PV_OK, ""};
        pv_status rrc;

        snprintf(first, sizeof(first), "%s", err != NULL ? err->msg : "unknown kid");
        rrc = refetch(is, now_s, gen, &newer, &gen, &rerr);
        if (rrc == PV_OK) {
            rc = jwt_verify(token, newer->doc, is->issuer, is->audience, now_s, o->leeway_s,
                            &claims, err);
        } else {
            /* "unknown kid k3 (the JWKS of X was fetched less than 10 s ago)", or the
             * transfer's failure. */
            rc = pv_err_set(err, rrc == PV_ENOENT ? PV_ENOENT : PV_EIO, "%.100s (%.150s)", first,
                            rerr.msg);
        }
    }
    if (rc)
        goto done;
    memcpy(issuer_out, is->issuer, strlen(is->issuer) + 1);
    *claims_out = claims;
    claims = NULL;
done:
    if (is != NULL) {
        jwks_release(is, ref);
        jwks_release(is, newer);
    }
    cJSON_Delete(claims);
    cJSON_Delete(unverified);
    return rc;
}

const struct cfg_oidc_issuer *oidc_find_issuer(const struct cfg_credentials *c, const char *iss)
{
    for (size_t i = 0; i < c->n_issuers; i++)
        if (strcmp(c->issuers[i].issuer, iss) == 0)
            return &c->issuers[i];
    return NULL;
}

/* ---- Subject ---- */

/* *out = the string claim 'name' of 'claims' (borrowed from it); 'what' names its role. */
static pv_status claim_text(const cJSON *claims, const char *name, const char *what,
                            const char **out, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);

    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "token has no %s claim %s (a non-empty string)", what,
                          name);
    for (const char *c = v->valuestring; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return pv_err_set(err, PV_EINVAL, "%s claim %s holds control characters", what, name);
    *out = v->valuestring;
    return PV_OK;
}

pv_status oidc_subject(const struct cfg_oidc_issuer *is, const cJSON *claims, char *team,
                       size_t team_cap, char *service, size_t service_cap, struct pv_err *err)
{
    const char *team_claim = is->team_claim != NULL ? is->team_claim : "team";
    const char *service_claim = is->service_claim != NULL ? is->service_claim : "service";
    const char *t = NULL;
    const char *s = NULL;
    char q[96];
    pv_status rc;

    rc = claim_text(claims, team_claim, "team", &t, err);
    if (rc == PV_OK)
        rc = claim_text(claims, service_claim, "service", &s, err);
    if (rc)
        return rc;
    if (is->teams != NULL) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(is->teams, t);

        if (!cJSON_IsString(m))
            return pv_err_set(err, PV_EINVAL, "%s %s of issuer %s is not mapped to a team (teams)",
                              team_claim, quote(t, q, sizeof(q)), is->issuer);
        t = m->valuestring;
    }
    /* Both checked before either is written: out-parameters change only on success. */
    if (strlen(t) + 1 > team_cap || strlen(s) + 1 > service_cap)
        return pv_err_set(err, PV_ETOOBIG, "team or service is longer than %zu bytes",
                          (strlen(t) + 1 > team_cap ? team_cap : service_cap) - 1);
    memcpy(team, t, strlen(t) + 1);
    memcpy(service, s, strlen(s) + 1);
    return PV_OK;
}
