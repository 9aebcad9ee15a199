/* server/creds.c: POST /v1/credentials and the published keys (see creds.h). The
 * identity is verified first (an upstream OIDC JWT against its issuer's JWKS, or an API
 * token), then the request is decided by the bound `credential` policy, which may
 * narrow it (its mutate() patches the scopes and the lifetime), then paved caps the
 * lifetime, signs, and commits the audit record before the token leaves. */
#include "creds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "clock.h"
#include "decide.h"
#include "duration.h"
#include "jsonpatch.h"
#include "jsonutil.h"
#include "jwt.h"
#include "keys.h"
#include "log.h"
#include "oidc.h"
#include "xalloc.h"

#define SCOPES_MAX 32
#define FIELD_MAX 253
#define TTL_DEFAULT_S 900
#define ID_TOKEN_MAX (16 * 1024)

struct creds {
    struct oidc *oidc;
    char *keys_dir;
    int64_t max_ttl_s;
    pthread_mutex_t mu;
    struct keys *ks; /* guarded by mu; reloaded when keys.json changes (paved keys rotate) */
};

pv_status creds_new(struct creds **out, const struct config *cfg, const char *keys_dir,
                    struct pv_err *err)
{
    struct creds *cr = xcalloc(1, sizeof(*cr));
    pv_status rc;

    pthread_mutex_init(&cr->mu, NULL);
    cr->keys_dir = xstrdup(keys_dir);
    cr->max_ttl_s = cfg->credentials.max_ttl_s;
    rc = oidc_new(&cr->oidc, &cfg->credentials, err);
    if (rc == PV_OK)
        rc = keys_ensure(keys_dir, cr->max_ttl_s, clock_wall_ms(), NULL, err);
    if (rc == PV_OK)
        rc = keys_load(&cr->ks, keys_dir, err);
    if (rc) {
        creds_free(cr);
        return rc;
    }
    *out = cr;
    return PV_OK;
}

void creds_free(struct creds *cr)
{
    if (cr == NULL)
        return;
    oidc_free(cr->oidc);
    keys_free(cr->ks);
    pthread_mutex_destroy(&cr->mu);
    free(cr->keys_dir);
    free(cr);
}

/* Reloads the keys when a rotation replaced keys.json. Called with cr->mu held. */
static void keys_fresh(struct creds *cr)
{
    struct keys *ks = NULL;
    struct pv_err err = {0};

    if (!keys_is_stale(cr->ks))
        return;
    if (keys_load(&ks, cr->keys_dir, &err)) {
        log_msg(LOG_ERROR, "creds", "keys of %s not reloaded, the loaded ones stay: %s",
                cr->keys_dir, err.msg);
        return;
    }
    keys_free(cr->ks);
    cr->ks = ks;
    log_msg(LOG_INFO, "creds", "signing keys reloaded from %s", cr->keys_dir);
}

cJSON *creds_jwks(struct creds *cr, int64_t now_ms)
{
    cJSON *j;

    pthread_mutex_lock(&cr->mu);
    keys_fresh(cr);
    j = keys_jwks(cr->ks, now_ms);
    pthread_mutex_unlock(&cr->mu);
    return j;
}

cJSON *creds_discovery(const struct config *cfg)
{
    const char *iss = cfg->credentials.issuer;
    cJSON *d = cJSON_CreateObject();
    char uri[2200];
    size_t n = strlen(iss);

    while (n > 0 && iss[n - 1] == '/')
        n--;
    snprintf(uri, sizeof(uri), "%.*s/.well-known/jwks.json", (int)n, iss);
    cJSON_AddStringToObject(d, "issuer", iss);
    cJSON_AddStringToObject(d, "jwks_uri", uri);
    cJSON_AddItemToObject(d, "id_token_signing_alg_values_supported",
                          cJSON_CreateStringArray((const char *[]){"ES256"}, 1));
    cJSON_AddItemToObject(d, "response_types_supported",
                          cJSON_CreateStringArray((const char *[]){"id_token"}, 1));
    cJSON_AddItemToObject(d, "subject_types_supported",
                          cJSON_CreateStringArray((const char *[]){"public"}, 1));
    cJSON_AddItemToObject(
        d, "claims_supported",
        cJSON_CreateStringArray((const char *[]){"iss", "sub", "aud", "scope", "iat", "nbf", "exp",
                                                 "jti", "team", "service", "paved_decision_id"},
                                11));
    return d;
}

/* ---- Answers ---- */

static void answer_doc(struct api_answer *out, unsigned int status, cJSON *doc)
{
    out->status = status;
    out->body = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
}

static void answer_error(struct api_answer *out, unsigned int status, const char *msg,
                         const char *decision_id)
{
    cJSON *doc = cJSON_CreateObject();

    cJSON_AddStringToObject(doc, "error", msg);
    if (decision_id != NULL)
        cJSON_AddStringToObject(doc, "decision_id", decision_id);
    answer_doc(out, status, doc);
}

/* ---- The audit record ---- */

struct outcome {
    const char *team;
    const char *service;
    const char *actor;
    const char *namespace;
    bool is_allowed;
    const char *path;
    cJSON *violations; /* borrowed JSON array, or NULL */
    cJSON *credential; /* borrowed: details.credential */
};

/* Commits the record of one issuance or refusal (kind "credential") under the decision
 * id 'id', made here when 'id' is empty. */
static pv_status record(const struct creds_call *call, const struct outcome *o,
                        char id[AUDIT_ID_LEN + 1], struct pv_err *err)
{
    struct audit_record *rec = xcalloc(1, sizeof(*rec));
    cJSON *details = cJSON_CreateObject();

    if (id[0] == '\0')
        audit_new_id(id);
    memcpy(rec->id, id, AUDIT_ID_LEN + 1);
    rec->time_ms = clock_wall_ms();
    rec->source = xstrdup("api");
    rec->kind = xstrdup("credential");
    rec->operation = xstrdup("CREATE");
    rec->team = xstrdup(o->team != NULL ? o->team : "unknown");
    rec->service = o->service != NULL ? xstrdup(o->service) : NULL;
    rec->namespace = o->namespace != NULL ? xstrdup(o->namespace) : NULL;
    rec->resource_kind = xstrdup("CredentialRequest");
    rec->actor = o->actor != NULL ? xstrdup(o->actor) : NULL;
    rec->decision = xstrdup(o->is_allowed ? "allow" : "deny");
    rec->path = xstrdup(o->path);
    rec->violations = o->violations != NULL ? cJSON_PrintUnformatted(o->violations) : NULL;
    rec->bundle_hash = call->bundle_hash != NULL ? xstrdup(call->bundle_hash) : NULL;
    cJSON_AddItemToObject(details, "credential", cJSON_Duplicate(o->credential, 1));
    rec->details = cJSON_PrintUnformatted(details);
    cJSON_Delete(details);
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o->credential, "jti")))
        rec->resource_name = xstrdup(json_str(o->credential, "jti", NULL));
    return audit_submit(call->audit, rec, call->deadline_ns, err);
}

/* A refusal before the policy ran (identity, body): recorded, then answered. */
static void refuse(const struct creds_call *call, struct api_answer *out, unsigned int status,
                   const char *team, const char *actor, const char *why, cJSON *credential)
{
    struct outcome o = {0};
    struct pv_err err = {0};
    char id[AUDIT_ID_LEN + 1] = "";
    cJSON *v = cJSON_CreateArray();
    cJSON *x = cJSON_CreateObject();

    cJSON_AddStringToObject(x, "binding", "identity");
    cJSON_AddStringToObject(x, "policy", "credential-identity");
    cJSON_AddStringToObject(x, "enforcement", "deny");
    cJSON_AddStringToObject(x, "message", why);
    cJSON_AddItemToArray(v, x);
    cJSON_AddStringToObject(credential, "refused", why);
    o.team = team;
    o.actor = actor;
    o.path = "denied";
    o.violations = v;
    o.credential = credential;
    if (record(call, &o, id, &err)) {
        log_msg(LOG_ERROR, "creds", "refusal not recorded: %s", err.msg);
        answer_error(out, 503, err.msg, NULL);
    } else {
        log_msg(LOG_INFO, "creds", "decision=%s refused: %s", id, why);
        answer_error(out, status, why, id);
    }
    cJSON_Delete(v);
}

/* ---- Identity ---- */

struct identity {
    char team[FIELD_MAX + 1];
    char service[FIELD_MAX + 1];
    char subject[512];
    char issuer[1024];
    const char *via; /* "oidc" | "token" */
    cJSON *claims;   /* owned: verified upstream claims, or NULL */
};

/* Verifies who asks. On failure fills 'why' and returns the HTTP status to refuse with
 * (401); 0 on success. */
static unsigned int identify(struct creds *cr, const struct creds_call *call, const cJSON *body,
                             struct identity *id, char *why, size_t cap)
{
    const char *token = json_str(body, "id_token", NULL);
    struct pv_err err = {0};

    memset(id, 0, sizeof(*id));
    if (token != NULL) {
        const struct cfg_oidc_issuer *is;
        const char *sub;

        if (call->cfg->credentials.n_issuers == 0) {
            snprintf(why, cap, "this server trusts no OIDC issuer (credentials.oidc)");
            return 401;
        }
        if (oidc_verify(cr->oidc, token, clock_wall_ms() / 1000, &id->claims, id->issuer,
                        sizeof(id->issuer), &err)) {
            snprintf(why, cap, "id_token refused: %s", err.msg);
            return 401;
        }
        is = oidc_find_issuer(&call->cfg->credentials, id->issuer);
        if (is == NULL || oidc_subject(is, id->claims, id->team, sizeof(id->team), id->service,
                                       sizeof(id->service), &err)) {
            snprintf(why, cap, "id_token of %.100s: %.200s", id->issuer,
                     is == NULL ? "issuer not configured" : err.msg);
            return 401;
        }
        sub = json_str(id->claims, "sub", NULL);
        snprintf(id->subject, sizeof(id->subject), "%s", sub != NULL ? sub : id->service);
        id->via = "oidc";
        return 0;
    }
    {
        const char *h = call->authorization;
        const char *team = json_str(body, "team", NULL);
        const char *service = json_str(body, "service", NULL);
        const struct cfg_token *t;

        if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
            snprintf(why, cap,
                     "send an id_token (an OIDC JWT of a configured issuer) or an API token "
                     "(Authorization: Bearer)");
            return 401;
        }
        t = config_find_token(call->cfg, h + 7);
        if (t == NULL) {
            snprintf(why, cap, "unknown API token");
            return 401;
        }
        if (t->role != ROLE_CI && t->role != ROLE_ADMIN) {
            snprintf(why, cap, "token %s has the role %s; credentials need ci or admin", t->name,
                     config_role_name(t->role));
            return 403;
        }
        if (team == NULL || service == NULL || team[0] == '\0' || service[0] == '\0' ||
            strlen(team) > FIELD_MAX || strlen(service) > FIELD_MAX) {
            snprintf(why, cap, "with an API token, name the team and the service in the body");
            return 400;
        }
        if (!config_token_may_act_for(t, team)) {
            snprintf(why, cap, "token %s may not act for team %.100s (its teams: list)", t->name,
                     team);
            return 403;
        }
        snprintf(id->team, sizeof(id->team), "%s", team);
        snprintf(id->service, sizeof(id->service), "%s", service);
        snprintf(id->subject, sizeof(id->subject), "token:%s", t->name);
        id->via = "token";
        return 0;
    }
}

/* ---- The request ---- */

/* Checks the body; fills 'why' and returns false when it is malformed. */
static bool check_body(const cJSON *body, int64_t *ttl_s, char *why, size_t cap)
{
    const cJSON *scopes = cJSON_GetObjectItemCaseSensitive(body, "scopes");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(body, "id_token");
    const char *aud = json_str(body, "audience", NULL);
    const char *ttl = json_str(body, "ttl", NULL);
    static const char *const keys[] = {"id_token", "audience", "scopes", "ttl",
                                       "team",     "service",  NULL};
    const char *bad = NULL;
    const cJSON *s;

    if (!cJSON_IsObject(body)) {
        snprintf(why, cap,
                 "send {\"id_token\"?, \"audience\", \"scopes\": [..], \"ttl\": "
                 "\"15m\"}");
        return false;
    }
    if (!api_only_keys(body, keys, &bad)) {
        snprintf(why, cap, "unknown field \"%.64s\"", bad);
        return false;
    }
    if (tok != NULL && (!cJSON_IsString(tok) || strlen(tok->valuestring) > ID_TOKEN_MAX)) {
        snprintf(why, cap, "id_token must be a string of at most %d bytes", ID_TOKEN_MAX);
        return false;
    }
    if (aud == NULL || aud[0] == '\0' || strlen(aud) > FIELD_MAX) {
        snprintf(why, cap, "audience is required: the service the credential is for");
        return false;
    }
    if (!cJSON_IsArray(scopes) || cJSON_GetArraySize(scopes) < 1 ||
        cJSON_GetArraySize(scopes) > SCOPES_MAX) {
        snprintf(why, cap, "scopes must be a list of 1 to %d scopes", SCOPES_MAX);
        return false;
    }
    cJSON_ArrayForEach(s, scopes)
    {
        if (!cJSON_IsString(s) || s->valuestring[0] == '\0' || strlen(s->valuestring) > FIELD_MAX ||
            strchr(s->valuestring, ' ') != NULL) {
            snprintf(why, cap, "each scope is a non-empty string without spaces");
            return false;
        }
    }
    *ttl_s = TTL_DEFAULT_S;
    if (cJSON_GetObjectItemCaseSensitive(body, "ttl") != NULL &&
        (ttl == NULL || !duration_parse(ttl, ttl_s))) {
        snprintf(why, cap, "ttl is a duration such as 15m or 1h");
        return false;
    }
    return true;
}

/* The object the credential policy decides. */
static cJSON *request_object(const struct config *cfg, const cJSON *body, const struct identity *id,
                             int64_t ttl_s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON *labels = cJSON_AddObjectToObject(md, "labels");
    cJSON *spec;
    cJSON *ident;

    cJSON_AddStringToObject(o, "apiVersion", "paved.dev/v1");
    cJSON_AddStringToObject(o, "kind", "CredentialRequest");
    cJSON_AddStringToObject(md, "name", id->service);
    /* The subject's labels, so req.subject comes out as for any other object. */
    cJSON_AddStringToObject(labels, cfg->subject.team_label, id->team);
    cJSON_AddStringToObject(labels, cfg->subject.service_label, id->service);
    spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddStringToObject(spec, "audience", json_str(body, "audience", NULL));
    cJSON_AddItemToObject(spec, "scopes",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(body, "scopes"), 1));
    cJSON_AddNumberToObject(spec, "ttl_s", (double)ttl_s);
    ident = cJSON_AddObjectToObject(o, "identity");
    cJSON_AddStringToObject(ident, "via", id->via);
    cJSON_AddStringToObject(ident, "subject", id->subject);
    if (id->issuer[0] != '\0')
        cJSON_AddStringToObject(ident, "issuer", id->issuer);
    if (id->claims != NULL)
        cJSON_AddItemToObject(ident, "claims", cJSON_Duplicate(id->claims, 1));
    return o;
}

/* Evaluates the policies on 'obj': the mutating bindings may narrow it first. On PV_OK
 * *granted is the object as granted (caller frees) and *d the decision on it. */
static pv_status decide_request(const struct creds_call *call, cJSON *obj, const cJSON *subject,
                                cJSON **granted, struct decision *d, bool *is_judged,
                                struct pv_err *err)
{
    struct pv_request req = {0};
    struct decision dm;
    cJSON *patch = NULL;
    cJSON *g = cJSON_Duplicate(obj, 1);
    pv_status rc;

    req.kind = "credential";
    req.operation = "CREATE";
    req.source = "api";
    req.object = obj;
    req.subject = subject;
    rc = decide_mutate(call->vm, call->cfg, &req, &dm, &patch, err);
    decision_fini(&dm);
    if (rc == PV_OK && cJSON_GetArraySize(patch) > 0 && jsonpatch_apply(g, patch, err) != PV_OK)
        rc = PV_EPOLICY;
    cJSON_Delete(patch);
    if (rc) {
        cJSON_Delete(g);
        return rc;
    }
    req.object = g;
    rc = decide_eval(call->vm, call->cfg, CFG_API, &req, d, err);
    if (rc) {
        decision_fini(d);
        cJSON_Delete(g);
        return rc;
    }
    /* A credential no credential policy looked at is not granted by default: one whose
     * id starts with "credential" must have been in scope. */
    *is_judged = false;
    for (size_t i = 0; i < d->n_items; i++)
        if (d->items[i].r.outcome != VM_SKIPPED &&
            strncmp(d->items[i].policy->id, "credential", 10) == 0)
            *is_judged = true;
    *granted = g;
    return PV_OK;
}

static char *new_jti(void)
{
    unsigned char r[16];
    char *out = xmalloc(33);

    PV_ASSERT(RAND_bytes(r, sizeof(r)) == 1);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    return out;
}

static char *scope_string(const cJSON *scopes)
{
    size_t cap = 1;
    const cJSON *s;
    char *out;

    cJSON_ArrayForEach(s, scopes)
    {
        if (cJSON_IsString(s))
            cap += strlen(s->valuestring) + 1;
    }
    out = xcalloc(1, cap);
    cJSON_ArrayForEach(s, scopes)
    {
        if (!cJSON_IsString(s))
            continue;
        if (out[0] != '\0')
            strncat(out, " ", cap - strlen(out) - 1);
        strncat(out, s->valuestring, cap - strlen(out) - 1);
    }
    return out;
}

void creds_issue(struct creds *cr, const struct creds_call *call, struct api_answer *out)
{
    cJSON *body = cJSON_ParseWithLength(call->body, call->len);
    cJSON *cred = cJSON_CreateObject();
    struct identity id;
    struct decision d = {0};
    struct outcome o = {0};
    struct pv_err err = {0};
    cJSON *obj = NULL;
    cJSON *granted = NULL;
    cJSON *subject = NULL;
    cJSON *claims = NULL;
    cJSON *v = NULL;
    char *token = NULL;
    char *jti = NULL;
    char *scope = NULL;
    char why[PV_ERR_MSG_MAX + 64];
    char decision_id[AUDIT_ID_LEN + 1] = "";
    bool is_judged = false;
    int64_t ttl_s = 0;
    int64_t now_ms;
    unsigned int status;

    memset(out, 0, sizeof(*out));
    memset(&id, 0, sizeof(id));
    if (!check_body(body, &ttl_s, why, sizeof(why))) {
        answer_error(out, 400, why, NULL);
        goto done;
    }
    cJSON_AddStringToObject(cred, "audience", json_str(body, "audience", NULL));
    cJSON_AddItemToObject(cred, "requested_scopes",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(body, "scopes"), 1));
    status = identify(cr, call, body, &id, why, sizeof(why));
    if (status != 0) {
        refuse(call, out, status, NULL, NULL, why, cred);
        goto done;
    }
    cJSON_AddStringToObject(cred, "via", id.via);
    cJSON_AddStringToObject(cred, "subject", id.subject);
    if (id.issuer[0] != '\0')
        cJSON_AddStringToObject(cred, "upstream_issuer", id.issuer);
    obj = request_object(call->cfg, body, &id, ttl_s);
    subject = decide_subject(call->cfg, obj, NULL, NULL, id.subject);
    if (decide_request(call, obj, subject, &granted, &d, &is_judged, &err)) {
        refuse(call, out, 500, id.team, id.subject, err.msg, cred);
        goto done;
    }
    v = decide_findings_list(&d);
    o.team = id.team;
    o.service = id.service;
    o.actor = id.subject;
    o.violations = v;
    o.credential = cred;
    if (!is_judged) {
        refuse(call, out, 403, id.team, id.subject,
               "no credential policy is bound: bind the credential policy with grants in "
               "paved.yaml",
               cred);
        goto done;
    }
    now_ms = clock_wall_ms();
    if (!d.is_allowed) {
        o.path = "denied";
        if (record(call, &o, decision_id, &err)) {
            answer_error(out, 503, err.msg, NULL);
        } else {
            cJSON *doc = cJSON_CreateObject();
            const char *first = json_str(cJSON_GetArrayItem(v, 0), "message", NULL);

            snprintf(why, sizeof(why), "the credential policy denies this request: %.250s",
                     first != NULL ? first : "(no message)");
            cJSON_AddStringToObject(doc, "error", why);
            cJSON_AddStringToObject(doc, "decision_id", decision_id);
            cJSON_AddItemToObject(doc, "violations", cJSON_Duplicate(v, 1));
            answer_doc(out, 403, doc);
            log_msg(LOG_INFO, "creds", "decision=%s denied team=%s subject=%s", decision_id,
                    id.team, id.subject);
        }
        goto done;
    }
    {
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(granted, "spec");
        const cJSON *scopes = cJSON_GetObjectItemCaseSensitive(spec, "scopes");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(spec, "ttl_s");
        /* A policy's patch may put anything there: a lifetime that is not a whole
         * number of seconds grants nothing. */
        int64_t granted_ttl = t == NULL ? ttl_s : json_int64_or(t, 0);
        int64_t iat = now_ms / 1000;
        char exp_at[40];
        EVP_PKEY *key;
        const char *kid = NULL;
        pv_status rc;

        if (granted_ttl > call->cfg->credentials.max_ttl_s)
            granted_ttl = call->cfg->credentials.max_ttl_s;
        if (granted_ttl < 1 || !cJSON_IsArray(scopes) || cJSON_GetArraySize(scopes) == 0) {
            refuse(call, out, 403, id.team, id.subject, "the policy left nothing to grant", cred);
            goto done;
        }
        jti = new_jti();
        scope = scope_string(scopes);
        /* The record keeps the audience the token is for (a policy may have changed it). */
        cJSON_ReplaceItemInObjectCaseSensitive(
            cred, "audience", cJSON_CreateString(json_str(spec, "audience", NULL)));
        claims = cJSON_CreateObject();
        cJSON_AddStringToObject(claims, "iss", call->cfg->credentials.issuer);
        cJSON_AddStringToObject(claims, "sub", id.subject);
        cJSON_AddStringToObject(claims, "aud", json_str(spec, "audience", NULL));
        cJSON_AddStringToObject(claims, "scope", scope);
        cJSON_AddNumberToObject(claims, "iat", (double)iat);
        cJSON_AddNumberToObject(claims, "nbf", (double)iat);
        cJSON_AddNumberToObject(claims, "exp", (double)(iat + granted_ttl));
        cJSON_AddStringToObject(claims, "jti", jti);
        cJSON_AddStringToObject(claims, "team", id.team);
        cJSON_AddStringToObject(claims, "service", id.service);
        /* The record's decision id, made up front so the token and the record agree. */
        audit_new_id(decision_id);
        cJSON_AddStringToObject(claims, "paved_decision_id", decision_id);
        cJSON_AddStringToObject(cred, "jti", jti);
        cJSON_AddItemToObject(cred, "scopes", cJSON_Duplicate(scopes, 1));
        cJSON_AddNumberToObject(cred, "ttl_s", (double)granted_ttl);
        cJSON_AddNumberToObject(cred, "issued_ms", (double)(iat * 1000));
        cJSON_AddNumberToObject(cred, "expires_ms", (double)((iat + granted_ttl) * 1000));
        o.path = "golden";
        o.is_allowed = true;
        pthread_mutex_lock(&cr->mu);
        keys_fresh(cr);
        key = keys_current(cr->ks, &kid);
        cJSON_AddStringToObject(cred, "kid", kid);
        /* Sign first: a token exists only once its record commits, and it is thrown away
         * when the commit fails. */
        rc = jwt_sign_es256(key, kid, claims, &token, &err);
        pthread_mutex_unlock(&cr->mu);
        if (rc) {
            answer_error(out, 500, err.msg, NULL);
            goto done;
        }
        if (record(call, &o, decision_id, &err)) {
            log_msg(LOG_ERROR, "creds", "issuance not recorded, no token: %s", err.msg);
            answer_error(out, 503, err.msg, NULL);
            goto done;
        }
        {
            cJSON *doc = cJSON_CreateObject();

            audit_format_time((iat + granted_ttl) * 1000, exp_at, sizeof(exp_at));
            cJSON_AddStringToObject(doc, "token", token);
            cJSON_AddStringToObject(doc, "token_type", "Bearer");
            cJSON_AddStringToObject(doc, "jti", jti);
            cJSON_AddStringToObject(doc, "audience", json_str(spec, "audience", NULL));
            cJSON_AddItemToObject(doc, "scopes", cJSON_Duplicate(scopes, 1));
            cJSON_AddNumberToObject(doc, "expires_in", (double)granted_ttl);
            cJSON_AddStringToObject(doc, "expires_at", exp_at);
            cJSON_AddStringToObject(doc, "decision_id", decision_id);
            answer_doc(out, 201, doc);
            log_msg(LOG_INFO, "creds",
                    "decision=%s issued jti=%s team=%s subject=%s aud=%s scope=\"%s\" ttl=%lld",
                    decision_id, jti, id.team, id.subject, json_str(spec, "audience", NULL), scope,
                    (long long)granted_ttl);
        }
    }
done:
    if (token != NULL)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(jti);
    free(scope);
    cJSON_Delete(claims);
    cJSON_Delete(v);
    decision_fini(&d);
    cJSON_Delete(granted);
    cJSON_Delete(subject);
    cJSON_Delete(obj);
    cJSON_Delete(id.claims);
    cJSON_Delete(cred);
    cJSON_Delete(body);
}
