/* server/remote.c: the libcurl client of POST /v1/decide for `paved check --server`. */
#include "remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "jsonutil.h"
#include "xalloc.h"

#define REMOTE_MAX_ANSWER ((size_t)16 << 20)

struct remote {
    CURL *curl;
    struct curl_slist *headers;
    char *url;
    char errbuf[CURL_ERROR_SIZE];
};

struct answer {
    char *p;
    size_t len;
    bool is_too_big;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t len = size * n;

    if (a->len + len > REMOTE_MAX_ANSWER) {
        a->is_too_big = true;
        return 0;
    }
    a->p = xrealloc(a->p, a->len + len + 1);
    memcpy(a->p + a->len, data, len);
    a->len += len;
    a->p[a->len] = '\0';
    return len;
}

pv_status remote_open(struct remote **out, const char *base_url, const char *token,
                      const char *cacert, bool is_insecure_http, struct pv_err *err)
{
    struct remote *r;
    size_t len = strlen(base_url);
    char auth[600];

    if (strncmp(base_url, "https://", 8) != 0 &&
        !(is_insecure_http && strncmp(base_url, "http://", 7) == 0))
        return pv_err_set(err, PV_EINVAL,
                          "--server %s: use an https:// URL (plain http:// needs "
                          "--insecure-http)",
                          base_url);
    /* Only `paved check --server` needs libcurl, and it runs on one thread: initialise
     * it here rather than slow every command's start (STYLE 5: before any thread). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return pv_err_set(err, PV_EIO, "cannot initialise libcurl");
    r = xcalloc(1, sizeof(*r));
    r->curl = curl_easy_init();
    PV_ASSERT(r->curl != NULL);
    while (len > 0 && base_url[len - 1] == '/')
        len--;
    r->url = xmalloc(len + sizeof("/v1/decide"));
    memcpy(r->url, base_url, len);
    memcpy(r->url + len, "/v1/decide", sizeof("/v1/decide"));
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        r->headers = curl_slist_append(r->headers, auth);
        OPENSSL_cleanse(auth, sizeof(auth));
    }
    curl_easy_setopt(r->curl, CURLOPT_URL, r->url);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, is_insecure_http ? "https,http" : "https");
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_data);
    if (cacert != NULL)
        curl_easy_setopt(r->curl, CURLOPT_CAINFO, cacert);
    *out = r;
    return PV_OK;
}

void remote_close(struct remote *r)
{
    if (r == NULL)
        return;
    curl_easy_cleanup(r->curl);
    curl_slist_free_all(r->headers);
    free(r->url);
    free(r);
    curl_global_cleanup();
}

void remote_result_fini(struct remote_result *res)
{
    for (size_t i = 0; i < res->n; i++) {
        free((char *)(uintptr_t)res->bindings[i].id);
        free(res->policies[i].id);
        free(res->policies[i].title);
    }
    free(res->bindings);
    free(res->policies);
    memset(res, 0, sizeof(*res));
}

static enum vm_enforcement enforcement_of(const char *s)
{
    if (strcmp(s, "warn") == 0)
        return VM_WARN;
    if (strcmp(s, "audit") == 0)
        return VM_AUDIT;
    return VM_DENY;
}

/* Turns the findings of an answer into decision items, one per finding. */
static void fill(const cJSON *ans, struct decision *d, struct remote_result *res)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ans, "violations");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(ans, "errors");
    size_t n = (size_t)cJSON_GetArraySize(v) + (size_t)cJSON_GetArraySize(e);
    const cJSON *x;

    res->bindings = xcalloc(n ? n : 1, sizeof(*res->bindings));
    res->policies = xcalloc(n ? n : 1, sizeof(*res->policies));
    d->items = xcalloc(n ? n : 1, sizeof(*d->items));
    cJSON_ArrayForEach(x, v)
    {
        struct decide_item *it = &d->items[d->n_items];

        res->bindings[res->n].id = xstrdup(json_str(x, "binding", NULL));
        res->policies[res->n].id = xstrdup(json_str(x, "policy", NULL));
        res->policies[res->n].title = xstrdup(json_str(x, "title", NULL));
        it->binding = &res->bindings[res->n];
        it->policy = &res->policies[res->n];
        res->n++;
        d->n_items++;
        it->enforcement = enforcement_of(json_str(x, "enforcement", NULL));
        it->is_violated = true;
        it->r.outcome = VM_OK;
        it->r.violations = xcalloc(1, sizeof(*it->r.violations));
        it->r.violations[0] = xstrdup(json_str(x, "message", NULL));
        it->r.n_violations = 1;
        if (it->enforcement == VM_DENY)
            d->n_deny++;
        else if (it->enforcement == VM_WARN)
            d->n_warn++;
        else
            d->n_audit++;
    }
    cJSON_ArrayForEach(x, e)
    {
        struct decide_item *it = &d->items[d->n_items];

        res->bindings[res->n].id = xstrdup(json_str(x, "binding", NULL));
        res->policies[res->n].id = xstrdup(json_str(x, "policy", NULL));
        res->policies[res->n].title = xstrdup("");
        res->policies[res->n].is_on_error_deny =
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "denies"));
        it->binding = &res->bindings[res->n];
        it->policy = &res->policies[res->n];
        res->n++;
        d->n_items++;
        it->enforcement = VM_DENY;
        it->is_violated = it->policy->is_on_error_deny;
        it->r.outcome = VM_ERROR;
        it->r.error = xstrdup(json_str(x, "message", NULL));
        d->n_errors++;
    }
}

pv_status remote_decide(struct remote *r, const cJSON *object, const char *namespace,
                        struct decision *d, struct remote_result *res, struct pv_err *err)
{
    cJSON *body = cJSON_CreateObject();
    struct answer a = {0};
    cJSON *ans = NULL;
    char *text;
    long status = 0;
    CURLcode cc;
    const char *path;
    pv_status rc = PV_OK;

    memset(d, 0, sizeof(*d));
    memset(res, 0, sizeof(*res));
    cJSON_AddStringToObject(body, "kind", "deploy");
    cJSON_AddItemToObject(body, "object", cJSON_CreateObjectReference(object->child));
    if (namespace != NULL)
        cJSON_AddStringToObject(body, "namespace", namespace);
    text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    r->errbuf[0] = '\0';
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &a);
    cc = curl_easy_perform(r->curl);
    free(text);
    if (cc != CURLE_OK) {
        rc = pv_err_set(err, PV_EIO, "%s: %s", r->url,
                        a.is_too_big           ? "answer too large"
                        : r->errbuf[0] != '\0' ? r->errbuf
                                               : curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
    ans = a.p != NULL ? cJSON_ParseWithLength(a.p, a.len) : NULL;
    if (status != 200) {
        const char *msg = ans != NULL ? json_str(ans, "error", NULL) : "";

        rc = pv_err_set(err, status == 401 || status == 403 ? PV_EINVAL : PV_EIO,
                        "%s answered %ld%s%s", r->url, status, msg[0] != '\0' ? ": " : "", msg);
        goto done;
    }
    path = json_str(ans, "path", NULL);
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(ans, "allowed")) || path[0] == '\0') {
        rc = pv_err_set(err, PV_EINVAL, "%s: the answer is not a decision", r->url);
        goto done;
    }
    d->is_allowed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ans, "allowed"));
    d->path = strcmp(path, "denied") == 0      ? DECIDE_DENIED
              : strcmp(path, "off-road") == 0  ? DECIDE_OFF_ROAD
              : strcmp(path, "exception") == 0 ? DECIDE_EXCEPTION
                                               : DECIDE_GOLDEN;
    snprintf(res->decision_id, sizeof(res->decision_id), "%s", json_str(ans, "decision_id", NULL));
    fill(ans, d, res);
done:
    cJSON_Delete(ans);
    free(a.p);
    return rc;
}
