/* server/api.c: /v1/exceptions and /v1/breakglass (see api.h). Every change is an
 * audit event applied by the store's writer, which re-checks the state inside its
 * transaction, so two approvers racing cannot both win. */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "duration.h"
#include "jsonutil.h"
#include "log.h"
#include "xalloc.h"

#define FIELD_MAX 253 /* team, service, namespace, policy ids (DNS-label sized) */
#define TEXT_MAX 2000 /* justification, reason */
#define TICKET_MAX 500
#define POLICIES_MAX 32
#define LIST_LIMIT_MAX 10000

static void answer(struct api_answer *out, unsigned int status, cJSON *doc)
{
    out->status = status;
    out->body = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
}

static void answer_error(struct api_answer *out, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void answer_error(struct api_answer *out, unsigned int status, const char *fmt, ...)
{
    char msg[PV_ERR_MSG_MAX + 64];
    cJSON *doc = cJSON_CreateObject();
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(doc, "error", msg);
    answer(out, status, doc);
}

static void answer_wrapped(struct api_answer *out, unsigned int status, const char *key, cJSON *v)
{
    cJSON *doc = cJSON_CreateObject();

    cJSON_AddItemToObject(doc, key, v);
    answer(out, status, doc);
}

static bool has_role(const struct cfg_token *t, enum cfg_role a, enum cfg_role b)
{
    return t->role == a || t->role == b;
}

/* The HTTP status of a refused or failed transition. */
static unsigned int status_of(pv_status rc)
{
    switch (rc) {
    case PV_ENOENT:
        return 404;
    case PV_EINVAL:
        return 409;
    case PV_ECONFIG:
        return 403;
    case PV_ETIMEOUT:
    case PV_EFULL:
        return 503;
    default:
        return 500;
    }
}

pv_status api_submit_event(struct audit *a, enum audit_op op, cJSON *args, const char *actor,
                           const char *notify_routes, uint64_t deadline_ns, struct pv_err *err)
{
    struct audit_record *rec = xcalloc(1, sizeof(*rec));
    bool is_bg = op == AUDIT_OP_BG_START || op == AUDIT_OP_BG_END;
    static const char *const ops[] = {"NONE",   "REQUEST", "APPROVE", "DENY", "REVOKE",
                                      "EXPIRE", "REMIND",  "START",   "END"};

    audit_new_id(rec->id);
    rec->time_ms = clock_wall_ms();
    rec->source = xstrdup("api");
    rec->kind = xstrdup(is_bg ? "breakglass" : "exception");
    rec->operation = xstrdup(ops[op]);
    /* Placeholders: the transition fills in the exception's own values. */
    rec->team = xstrdup("-");
    rec->decision = xstrdup("-");
    rec->path = xstrdup("event");
    rec->actor = xstrdup(actor);
    rec->op = op;
    rec->op_args = args;
    rec->notify_routes = notify_routes != NULL ? xstrdup(notify_routes) : NULL;
    return audit_submit_op(a, rec, deadline_ns, err);
}

/* Parses "a/b/c" after the collection prefix: *id and *action point into 'buf'. */
static void split_rest(const char *rest, char *buf, size_t cap, const char **id,
                       const char **action)
{
    char *slash;

    *id = NULL;
    *action = NULL;
    if (rest[0] != '/' || rest[1] == '\0')
        return;
    snprintf(buf, cap, "%s", rest + 1);
    *id = buf;
    slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
        *action = slash + 1;
    }
}

bool api_only_keys(const cJSON *body, const char *const *allowed, const char **bad)
{
    const cJSON *k;

    cJSON_ArrayForEach(k, body)
    {
        bool is_known = false;

        for (size_t i = 0; allowed[i] != NULL; i++)
            if (strcmp(k->string, allowed[i]) == 0)
                is_known = true;
        if (!is_known) {
            *bad = k->string;
            return false;
        }
    }
    return true;
}

/* A string field: NULL when absent; *is_bad when present but not a string of 1..max
 * bytes. */
static const char *str_field(const cJSON *body, const char *k, size_t max, bool *is_bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, k);

    if (v == NULL || cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > max) {
        *is_bad = true;
        return NULL;
    }
    return v->valuestring;
}

/* ---- /v1/exceptions ---- */

static void exc_request(const struct api_call *c, struct api_answer *out)
{
    static const char *const keys[] = {"team",     "service", "namespace",     "policies", "policy",
                                       "duration", "ticket",  "justification", NULL};
    cJSON *body = cJSON_ParseWithLength(c->body, c->len);
    cJSON *policies = cJSON_CreateArray();
    cJSON *args = NULL;
    const cJSON *p;
    const cJSON *plist;
    const char *bad = NULL;
    bool is_bad = false;
    bool is_self_service = true;
    const char *team;
    const char *service;
    const char *ns;
    const char *just;
    const char *ticket;
    const char *dur;
    int64_t seconds = 0;
    char id[AUDIT_EXC_ID_LEN + 1];
    struct pv_err err = {0};
    pv_status rc;
    cJSON *x = NULL;

    if (!has_role(c->tok, ROLE_CI, ROLE_APPROVER) && c->tok->role != ROLE_ADMIN) {
        answer_error(out, 403,
                     "token %s has the role %s; requesting an exception needs ci, "
                     "approver or admin",
                     c->tok->name, config_role_name(c->tok->role));
        goto done;
    }
    if (!cJSON_IsObject(body)) {
        answer_error(out, 400,
                     "send a JSON object: {\"team\", \"service\", \"namespace\"?, "
                     "\"policies\": [..], \"justification\", \"ticket\"?, "
                     "\"duration\": \"7d\"}");
        goto done;
    }
    if (!api_only_keys(body, keys, &bad)) {
        answer_error(out, 400, "unknown field \"%.64s\"", bad);
        goto done;
    }
    team = str_field(body, "team", FIELD_MAX, &is_bad);
    service = str_field(body, "service", FIELD_MAX, &is_bad);
    ns = str_field(body, "namespace", FIELD_MAX, &is_bad);
    just = str_field(body, "justification", TEXT_MAX, &is_bad);
    ticket = str_field(body, "ticket", TICKET_MAX, &is_bad);
    dur = str_field(body, "duration", 32, &is_bad);
    if (is_bad || team == NULL || service == NULL || just == NULL || dur == NULL) {
        answer_error(out, 400,
                     "team, service, justification and duration are required strings (team, "
                     "service, namespace up to %d bytes, justification up to %d)",
                     FIELD_MAX, TEXT_MAX);
        goto done;
    }
    if (!duration_parse(dur, &seconds)) {
        answer_error(out, 400, "duration \"%.32s\" is not a duration such as 12h, 7d or 2w", dur);
        goto done;
    }
    if (!config_token_may_act_for(c->tok, team)) {
        answer_error(out, 403, "token %s may not act for team %.100s (its teams: list)",
                     c->tok->name, team);
        goto done;
    }
    plist = cJSON_GetObjectItemCaseSensitive(body, "policies");
    if (plist == NULL && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "policy"))) {
        cJSON_AddItemToArray(policies, cJSON_CreateString(json_str(body, "policy", NULL)));
    } else if (cJSON_IsArray(plist) && cJSON_GetArraySize(plist) > 0 &&
               cJSON_GetArraySize(plist) <= POLICIES_MAX) {
        cJSON_ArrayForEach(p, plist)
        {
            if (!cJSON_IsString(p) || p->valuestring[0] == '\0' ||
                strlen(p->valuestring) > FIELD_MAX) {
                is_bad = true;
                break;
            }
            cJSON_AddItemToArray(policies, cJSON_CreateString(p->valuestring));
        }
    } else {
        is_bad = true;
    }
    if (is_bad) {
        answer_error(out, 400, "policies must be a list of 1 to %d policy ids", POLICIES_MAX);
        goto done;
    }
    cJSON_ArrayForEach(p, policies)
    {
        const struct vm_policy *vp = vm_policy_find(c->vm, p->valuestring);

        if (vp == NULL) {
            answer_error(out, 422,
                         "policy %.64s is not enforced by this server (see paved "
                         "policies and the config's bindings)",
                         p->valuestring);
            goto done;
        }
        if (!vp->exceptions_allowed) {
            answer_error(out, 422,
                         "policy %s allows no exceptions (exceptions.allowed = false): change "
                         "what it reports instead",
                         vp->id);
            goto done;
        }
        if (vp->exceptions_max_days > 0 && seconds > (int64_t)vp->exceptions_max_days * 86400) {
            answer_error(out, 422,
                         "duration %s exceeds the %d-day cap of policy %s (exceptions.max_days); "
                         "ask for %dd or less",
                         dur, vp->exceptions_max_days, vp->id, vp->exceptions_max_days);
            goto done;
        }
        if (!vp->exceptions_self_service)
            is_self_service = false;
    }
    audit_new_exception_id(id, false);
    args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "id", id);
    cJSON_AddStringToObject(args, "team", team);
    cJSON_AddStringToObject(args, "service", service);
    if (ns != NULL)
        cJSON_AddStringToObject(args, "namespace", ns);
    cJSON_AddItemToObject(args, "policies", policies);
    policies = NULL;
    cJSON_AddStringToObject(args, "justification", just);
    if (ticket != NULL)
        cJSON_AddStringToObject(args, "ticket", ticket);
    cJSON_AddNumberToObject(args, "duration_s", (double)seconds);
    cJSON_AddBoolToObject(args, "self_service", is_self_service);
    rc = api_submit_event(c->audit, AUDIT_OP_EXC_REQUEST, args, c->tok->name, c->notify_routes,
                          c->deadline_ns, &err);
    if (rc) {
        answer_error(out, status_of(rc), "%s", err.msg);
        goto done;
    }
    out->is_changed = true;
    if (audit_exception_get(c->db_path, id, &x, &err)) {
        answer_error(out, 500, "exception %s recorded, but reading it back failed: %s", id,
                     err.msg);
        goto done;
    }
    log_msg(LOG_INFO, "exceptions", "exception=%s requested_by=%s team=%s service=%s state=%s", id,
            c->tok->name, team, service, json_str(x, "state", NULL));
    answer_wrapped(out, 201, "exception", x);
done:
    cJSON_Delete(policies);
    cJSON_Delete(body);
}

static void exc_list(const struct api_call *c, struct api_answer *out)
{
    struct audit_exc_filter f = {0};
    const char *within = c->arg(c->arg_cls, "expiring_within");
    const char *limit = c->arg(c->arg_cls, "limit");
    const char *state = c->arg(c->arg_cls, "state");
    struct pv_err err = {0};
    cJSON *arr = NULL;
    int64_t s = 0;

    if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "approved") != 0 &&
        strcmp(state, "denied") != 0 && strcmp(state, "expired") != 0 &&
        strcmp(state, "revoked") != 0) {
        answer_error(out, 400, "state is one of pending, approved, denied, expired, revoked");
        return;
    }
    if (within != NULL) {
        if (!duration_parse(within, &s)) {
            answer_error(out, 400, "expiring_within takes a duration (7d, 12h)");
            return;
        }
        f.expiring_before_ms = clock_wall_ms() + s * 1000;
    }
    if (limit != NULL) {
        char *end = NULL;
        long n = strtol(limit, &end, 10);

        if (end == limit || *end != '\0' || n < 1 || n > LIST_LIMIT_MAX) {
            answer_error(out, 400, "limit takes 1 to %d", LIST_LIMIT_MAX);
            return;
        }
        f.limit = (size_t)n;
    }
    f.state = state;
    f.team = c->arg(c->arg_cls, "team");
    f.service = c->arg(c->arg_cls, "service");
    f.policy = c->arg(c->arg_cls, "policy");
    if (audit_exceptions_list(c->db_path, &f, &arr, &err)) {
        answer_error(out, 500, "%s", err.msg);
        return;
    }
    answer_wrapped(out, 200, "exceptions", arr);
}

/* approve | deny | revoke of exception 'id'. */
static void exc_transition(const struct api_call *c, const char *id, const char *action,
                           struct api_answer *out)
{
    static const char *const keys[] = {"reason", NULL};
    cJSON *body = c->len > 0 ? cJSON_ParseWithLength(c->body, c->len) : cJSON_CreateObject();
    enum audit_op op;
    const char *bad = NULL;
    bool is_bad = false;
    const char *reason;
    struct pv_err err = {0};
    cJSON *cur = NULL;
    cJSON *args;
    pv_status rc;

    if (strcmp(action, "approve") == 0) {
        op = AUDIT_OP_EXC_APPROVE;
    } else if (strcmp(action, "deny") == 0) {
        op = AUDIT_OP_EXC_DENY;
    } else if (strcmp(action, "revoke") == 0) {
        op = AUDIT_OP_EXC_REVOKE;
    } else {
        answer_error(out, 404, "no such action %.32s: use approve, deny or revoke", action);
        goto done;
    }
    if (!cJSON_IsObject(body) || !api_only_keys(body, keys, &bad)) {
        answer_error(out, 400, "send {\"reason\": \"...\"} (or no body)%s%.64s",
                     bad != NULL ? "; unknown field " : "", bad != NULL ? bad : "");
        goto done;
    }
    reason = str_field(body, "reason", TEXT_MAX, &is_bad);
    if (is_bad || (op == AUDIT_OP_EXC_DENY && reason == NULL)) {
        answer_error(out, 400, "reason must be a string of up to %d bytes%s", TEXT_MAX,
                     op == AUDIT_OP_EXC_DENY ? "; a denial needs one" : "");
        goto done;
    }
    rc = audit_exception_get(c->db_path, id, &cur, &err);
    if (rc) {
        answer_error(out, rc == PV_ENOENT ? 404 : 500, "%s", err.msg);
        goto done;
    }
    /* Approving and denying are the approvers'; the requester may withdraw (revoke) an
     * exception of their own. */
    if (!has_role(c->tok, ROLE_APPROVER, ROLE_ADMIN) &&
        !(op == AUDIT_OP_EXC_REVOKE &&
          strcmp(c->tok->name, json_str(cur, "requested_by", NULL)) == 0)) {
        answer_error(out, 403, "token %s has the role %s; %s an exception needs the approver role",
                     c->tok->name, config_role_name(c->tok->role),
                     op == AUDIT_OP_EXC_APPROVE ? "approving"
                     : op == AUDIT_OP_EXC_DENY  ? "denying"
                                                : "revoking");
        goto done;
    }
    args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "id", id);
    if (reason != NULL)
        cJSON_AddStringToObject(args, "reason", reason);
    rc = api_submit_event(c->audit, op, args, c->tok->name, c->notify_routes, c->deadline_ns, &err);
    if (rc) {
        answer_error(out, status_of(rc), "%s", err.msg);
        goto done;
    }
    out->is_changed = true;
    cJSON_Delete(cur);
    cur = NULL;
    if (audit_exception_get(c->db_path, id, &cur, &err)) {
        answer_error(out, 500, "%s", err.msg);
        goto done;
    }
    log_msg(LOG_INFO, "exceptions", "exception=%s %s by=%s state=%s", id, action, c->tok->name,
            json_str(cur, "state", NULL));
    answer_wrapped(out, 200, "exception", cur);
    cur = NULL;
done:
    cJSON_Delete(cur);
    cJSON_Delete(body);
}

void api_exceptions(const struct api_call *c, struct api_answer *out)
{
    char buf[128];
    const char *id;
    const char *action;
    struct pv_err err = {0};
    cJSON *x = NULL;

    memset(out, 0, sizeof(*out));
    if (strlen(c->rest) >= sizeof(buf)) {
        answer_error(out, 404, "no such exception");
        return;
    }
    split_rest(c->rest, buf, sizeof(buf), &id, &action);
    if (id == NULL) {
        if (strcmp(c->method, "POST") == 0) {
            exc_request(c, out);
        } else if (strcmp(c->method, "GET") == 0) {
            exc_list(c, out);
        } else {
            out->allow = "GET, POST";
            answer_error(out, 405, "use GET or POST");
        }
        return;
    }
    if (action == NULL) {
        pv_status rc;

        if (strcmp(c->method, "GET") != 0) {
            out->allow = "GET";
            answer_error(out, 405, "use GET");
            return;
        }
        rc = audit_exception_get(c->db_path, id, &x, &err);
        if (rc)
            answer_error(out, rc == PV_ENOENT ? 404 : 500, "%s", err.msg);
        else
            answer_wrapped(out, 200, "exception", x);
        return;
    }
    if (strcmp(c->method, "POST") != 0) {
        out->allow = "POST";
        answer_error(out, 405, "use POST");
        return;
    }
    exc_transition(c, id, action, out);
}

/* ---- /v1/breakglass ---- */

static bool string_list(const cJSON *v, cJSON *into)
{
    const cJSON *e;

    if (v == NULL || cJSON_IsNull(v))
        return true;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > POLICIES_MAX)
        return false;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e) || e->valuestring[0] == '\0' || strlen(e->valuestring) > FIELD_MAX)
            return false;
        cJSON_AddItemToArray(into, cJSON_CreateString(e->valuestring));
    }
    return true;
}

static void bg_start(const struct api_call *c, struct api_answer *out)
{
    static const char *const keys[] = {"duration", "reason", "namespaces", "teams", NULL};
    cJSON *body = cJSON_ParseWithLength(c->body, c->len);
    cJSON *ns = cJSON_CreateArray();
    cJSON *teams = cJSON_CreateArray();
    const char *bad = NULL;
    bool is_bad = false;
    const char *dur;
    const char *reason;
    int64_t seconds = 0;
    char id[AUDIT_EXC_ID_LEN + 1];
    char cap[32];
    struct pv_err err = {0};
    cJSON *args;
    cJSON *list = NULL;
    const cJSON *w;

    if (c->tok->role != ROLE_ADMIN) {
        answer_error(out, 403, "token %s has the role %s; break-glass needs the admin role",
                     c->tok->name, config_role_name(c->tok->role));
        goto done;
    }
    if (!cJSON_IsObject(body) || !api_only_keys(body, keys, &bad)) {
        answer_error(out, 400,
                     "send {\"duration\": \"30m\", \"reason\": \"...\", \"namespaces\": [..], "
                     "\"teams\": [..]}%s%.64s",
                     bad != NULL ? "; unknown field " : "", bad != NULL ? bad : "");
        goto done;
    }
    dur = str_field(body, "duration", 32, &is_bad);
    reason = str_field(body, "reason", TEXT_MAX, &is_bad);
    if (is_bad || dur == NULL || reason == NULL ||
        !string_list(cJSON_GetObjectItemCaseSensitive(body, "namespaces"), ns) ||
        !string_list(cJSON_GetObjectItemCaseSensitive(body, "teams"), teams)) {
        answer_error(out, 400,
                     "duration and reason are required strings; namespaces and teams lists of "
                     "names");
        goto done;
    }
    if (cJSON_GetArraySize(ns) + cJSON_GetArraySize(teams) == 0) {
        answer_error(out, 400, "name the scope: at least one namespace or team");
        goto done;
    }
    if (!duration_parse(dur, &seconds)) {
        answer_error(out, 400, "duration \"%.32s\" is not a duration such as 30m or 2h", dur);
        goto done;
    }
    duration_format(c->cfg->breakglass.max_duration_s, cap, sizeof(cap));
    if (seconds > c->cfg->breakglass.max_duration_s) {
        answer_error(out, 422, "duration %s exceeds breakglass.max_duration (%s)", dur, cap);
        goto done;
    }
    audit_new_exception_id(id, true);
    args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "id", id);
    cJSON_AddStringToObject(args, "reason", reason);
    cJSON_AddItemToObject(args, "namespaces", ns);
    cJSON_AddItemToObject(args, "teams", teams);
    ns = NULL;
    teams = NULL;
    cJSON_AddNumberToObject(args, "duration_s", (double)seconds);
    if (api_submit_event(c->audit, AUDIT_OP_BG_START, args, c->tok->name, c->notify_routes,
                         c->deadline_ns, &err)) {
        answer_error(out, status_of(err.code), "%s", err.msg);
        goto done;
    }
    out->is_changed = true;
    log_msg(LOG_WARN, "breakglass", "breakglass=%s started_by=%s duration=%s reason=%.200s", id,
            c->tok->name, dur, reason);
    if (audit_breakglass_list(c->db_path, clock_wall_ms(), &list, &err)) {
        answer_error(out, 500, "%s", err.msg);
        goto done;
    }
    cJSON_ArrayForEach(w, list)
    {
        if (strcmp(json_str(w, "id", NULL), id) == 0) {
            answer_wrapped(out, 201, "breakglass", cJSON_Duplicate(w, 1));
            goto done;
        }
    }
    answer_error(out, 500, "break-glass %s recorded but not found", id);
done:
    cJSON_Delete(list);
    cJSON_Delete(ns);
    cJSON_Delete(teams);
    cJSON_Delete(body);
}

void api_breakglass(const struct api_call *c, struct api_answer *out)
{
    char buf[128];
    const char *id;
    const char *action;
    struct pv_err err = {0};
    cJSON *list = NULL;
    cJSON *args;
    const cJSON *w;

    memset(out, 0, sizeof(*out));
    if (strlen(c->rest) >= sizeof(buf)) {
        answer_error(out, 404, "no such break-glass window");
        return;
    }
    split_rest(c->rest, buf, sizeof(buf), &id, &action);
    if (id == NULL) {
        if (strcmp(c->method, "POST") == 0) {
            bg_start(c, out);
        } else if (strcmp(c->method, "GET") == 0) {
            if (audit_breakglass_list(c->db_path, clock_wall_ms(), &list, &err))
                answer_error(out, 500, "%s", err.msg);
            else
                answer_wrapped(out, 200, "breakglass", list);
        } else {
            out->allow = "GET, POST";
            answer_error(out, 405, "use GET or POST");
        }
        return;
    }
    if (action == NULL || strcmp(action, "end") != 0) {
        answer_error(out, 404, "use POST /v1/breakglass/{id}/end");
        return;
    }
    if (strcmp(c->method, "POST") != 0) {
        out->allow = "POST";
        answer_error(out, 405, "use POST");
        return;
    }
    if (c->tok->role != ROLE_ADMIN) {
        answer_error(out, 403, "token %s has the role %s; ending break-glass needs admin",
                     c->tok->name, config_role_name(c->tok->role));
        return;
    }
    args = cJSON_CreateObject();
    cJSON_AddStringToObject(args, "id", id);
    if (api_submit_event(c->audit, AUDIT_OP_BG_END, args, c->tok->name, c->notify_routes,
                         c->deadline_ns, &err)) {
        answer_error(out, status_of(err.code), "%s", err.msg);
        return;
    }
    out->is_changed = true;
    log_msg(LOG_WARN, "breakglass", "breakglass=%s ended_by=%s", id, c->tok->name);
    if (audit_breakglass_list(c->db_path, clock_wall_ms(), &list, &err)) {
        answer_error(out, 500, "%s", err.msg);
        return;
    }
    cJSON_ArrayForEach(w, list)
    {
        if (strcmp(json_str(w, "id", NULL), id) == 0) {
            answer_wrapped(out, 200, "breakglass", cJSON_Duplicate(w, 1));
            cJSON_Delete(list);
            return;
        }
    }
    cJSON_Delete(list);
    answer_error(out, 500, "break-glass %s ended but not found", id);
}
