/* server/apiclient.c: the libcurl client of the paved JSON API for `paved exceptions` and
 * `paved breakglass`: one easy handle per client, bounded answers, the token kept out of
 * every message and wiped on close. */
#include "apiclient.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "duration.h"
#include "fsutil.h"
#include "jsonutil.h"
#include "log.h"
#include "xalloc.h"

#define APICLIENT_MAX_TIMEOUT_S 3600
#define APICLIENT_MAX_CONNECT_MS 10000L

struct apiclient {
    CURL *curl;
    struct curl_slist *headers; /* one of them carries the token: wiped on close */
    char *base_url;             /* without trailing slashes */
    char errbuf[CURL_ERROR_SIZE];
};

struct answer {
    char *p;
    size_t len;
    bool is_too_big;
};

/* ---- Shared options ---- */

void apiclient_opts_init(struct apiclient_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = APICLIENT_DEFAULT_TIMEOUT_MS;
}

bool apiclient_is_opt(int c)
{
    return c >= APICLIENT_OPT_SERVER && c <= APICLIENT_OPT_TIMEOUT;
}

pv_status apiclient_opts_set(struct apiclient_opts *o, int c, const char *arg, struct pv_err *err)
{
    int64_t s;

    switch (c) {
    case APICLIENT_OPT_SERVER:
        o->server = arg;
        return PV_OK;
    case APICLIENT_OPT_TOKEN:
        o->token = arg;
        return PV_OK;
    case APICLIENT_OPT_TOKEN_FILE:
        o->token_file = arg;
        return PV_OK;
    case APICLIENT_OPT_CACERT:
        o->cacert = arg;
        return PV_OK;
    case APICLIENT_OPT_INSECURE_HTTP:
        o->is_insecure_http = true;
        return PV_OK;
    case APICLIENT_OPT_TIMEOUT:
        if (!duration_parse(arg, &s) || s > APICLIENT_MAX_TIMEOUT_S)
            return pv_err_set(err, PV_EINVAL,
                              "--timeout: expected a duration of at most 1h (10s, 2m): %s", arg);
        o->timeout_ms = (long)s * 1000;
        return PV_OK;
    default:
        return pv_err_set(err, PV_EINVAL, "not a connection option");
    }
}

/* A bearer token is one run of visible ASCII (RFC 6750 token68 and JWTs are narrower):
 * anything else would break the header line or smuggle another one. */
static bool is_token_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return len > 0;
}

pv_status apiclient_open_opts(struct apiclient **out, const struct apiclient_opts *o,
                              struct pv_err *err)
{
    const char *server = o->server != NULL ? o->server : getenv("PAVED_SERVER");
    const char *token = o->token;
    const char *from = "--token";
    struct pv_err ferr = {PV_OK, ""};
    char *file_text = NULL;
    size_t len = 0;
    pv_status rc;

    if (server == NULL || server[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "no server: pass --server URL or set $PAVED_SERVER");
    if (o->token != NULL && o->token_file != NULL)
        return pv_err_set(err, PV_EINVAL, "give --token or --token-file, not both");
    if (o->token_file != NULL) {
        rc = fs_read_file(o->token_file, APICLIENT_MAX_TOKEN, &file_text, &len, &ferr);
        if (rc)
            return pv_err_set(err, rc, "--token-file %s", ferr.msg);
        while (len > 0 && (file_text[len - 1] == '\n' || file_text[len - 1] == '\r' ||
                           file_text[len - 1] == ' ' || file_text[len - 1] == '\t'))
            file_text[--len] = '\0';
        token = file_text;
        from = o->token_file;
    } else if (token == NULL) {
        token = getenv("PAVED_TOKEN");
        from = "$PAVED_TOKEN";
    }
    if (token == NULL || token[0] == '\0') {
        rc = pv_err_set(err, PV_EINVAL,
                        "no API token: pass --token-file FILE or --token TOKEN, or set "
                        "$PAVED_TOKEN");
    } else if (strlen(token) > APICLIENT_MAX_TOKEN || !is_token_text(token, strlen(token))) {
        /* Name where the token came from, never the token itself. */
        rc = pv_err_set(err, PV_EINVAL,
                        "the token from %s holds whitespace or control characters or is longer "
                        "than %zu bytes",
                        from, APICLIENT_MAX_TOKEN);
    } else {
        rc = apiclient_open(out, server, token, o->cacert, o->is_insecure_http, o->timeout_ms, err);
    }
    if (file_text != NULL) {
        OPENSSL_cleanse(file_text, len);
        free(file_text);
    }
    return rc;
}

/* ---- Transfers ---- */

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t len = size * n;

    if (len > APICLIENT_MAX_ANSWER - a->len) {
        a->is_too_big = true;
        return 0;
    }
    a->p = xrealloc(a->p, a->len + len + 1);
    memcpy(a->p + a->len, data, len);
    a->len += len;
    a->p[a->len] = '\0';
    return len;
}

pv_status apiclient_open(struct apiclient **out, const char *base_url, const char *token,
                         const char *cacert, bool is_insecure_http, long timeout_ms,
                         struct pv_err *err)
{
    struct apiclient *c;
    size_t len = strlen(base_url);
    char *auth;
    size_t auth_cap;

    if (strncmp(base_url, "https://", 8) != 0 &&
        !(is_insecure_http && strncmp(base_url, "http://", 7) == 0))
        return pv_err_set(err, PV_EINVAL,
                          "--server %s: use an https:// URL (plain http:// needs "
                          "--insecure-http)",
                          base_url);
    if (strchr(base_url, '?') != NULL || strchr(base_url, '#') != NULL)
        return pv_err_set(err, PV_EINVAL, "--server %s: give the server's URL without a query",
                          base_url);
    /* The API commands run on one thread: initialise libcurl here rather than slow every
     * command's start (STYLE 5: before any thread). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return pv_err_set(err, PV_EIO, "cannot initialise libcurl");
    c = xcalloc(1, sizeof(*c));
    c->curl = curl_easy_init();
    PV_ASSERT(c->curl != NULL);
    while (len > 0 && base_url[len - 1] == '/')
        len--;
    c->base_url = xstrndup(base_url, len);
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Accept: application/json");
    /* No "Expect: 100-continue" round trip for long justifications. */
    c->headers = curl_slist_append(c->headers, "Expect:");
    if (token != NULL) {
        auth_cap = strlen(token) + sizeof("Authorization: Bearer ");
        auth = xmalloc(auth_cap);
        snprintf(auth, auth_cap, "Authorization: Bearer %s", token);
        c->headers = curl_slist_append(c->headers, auth);
        OPENSSL_cleanse(auth, auth_cap);
        free(auth);
    }
    PV_ASSERT(c->headers != NULL);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "paved/" PAVED_VERSION);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < APICLIENT_MAX_CONNECT_MS ? timeout_ms : APICLIENT_MAX_CONNECT_MS);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, is_insecure_http ? "https,http" : "https");
    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)APICLIENT_MAX_ANSWER);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    if (cacert != NULL)
        curl_easy_setopt(c->curl, CURLOPT_CAINFO, cacert);
    *out = c;
    return PV_OK;
}

void apiclient_close(struct apiclient *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->curl);
    for (struct curl_slist *h = c->headers; h != NULL; h = h->next)
        OPENSSL_cleanse(h->data, strlen(h->data));
    curl_slist_free_all(c->headers);
    free(c->base_url);
    free(c);
    curl_global_cleanup();
}

pv_status apiclient_call(struct apiclient *c, const char *method, const char *path,
                         const cJSON *body, long *status_out, cJSON **answer_out,
                         struct pv_err *err)
{
    size_t base_len = strlen(c->base_url);
    size_t path_len = strlen(path);
    struct answer a = {0};
    char *url = xmalloc(base_len + path_len + 1);
    char *text = NULL;
    long status = 0;
    CURLcode cc;
    pv_status rc = PV_OK;

    PV_ASSERT(path[0] == '/');
    memcpy(url, c->base_url, base_len);
    memcpy(url + base_len, path, path_len + 1);
    if (body != NULL) {
        text = cJSON_PrintUnformatted(body);
        PV_ASSERT(text != NULL);
    }
    c->errbuf[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    } else {
        /* POST (or another method) with the body, or with an empty one. */
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text != NULL ? text : "");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(text != NULL ? strlen(text) : 0));
    }
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
                     strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ? NULL : method);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &a);
    cc = curl_easy_perform(c->curl);
    if (cc != CURLE_OK) {
        if (a.is_too_big || cc == CURLE_FILESIZE_EXCEEDED)
            rc = pv_err_set(err, PV_ETOOBIG, "%s: the answer is larger than %zu MiB", url,
                            APICLIENT_MAX_ANSWER >> 20);
        else
            rc = pv_err_set(err, PV_EIO, "%s: %s", url,
                            c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(cc));
        log_msg(LOG_DEBUG, "apiclient", "%s %s failed: %s", method, url,
                err != NULL ? err->msg : "");
        goto done;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    log_msg(LOG_DEBUG, "apiclient", "%s %s -> %ld (%zu bytes)", method, url, status, a.len);
    *status_out = status;
    *answer_out = a.p != NULL ? cJSON_ParseWithLength(a.p, a.len) : NULL;
done:
    free(text);
    free(a.p);
    free(url);
    return rc;
}

/* ---- Judging answers ---- */

int apiclient_run(struct apiclient *c, const char *cmd, const char *method, const char *path,
                  const cJSON *body, const char *key, int want_type, cJSON **answer_out)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *ans = NULL;
    const cJSON *item;
    const char *msg;
    char clean[1024];
    long status = 0;

    if (apiclient_call(c, method, path, body, &status, &ans, &err)) {
        fprintf(stderr, "paved %s: %s\n", cmd, apiclient_clean(err.msg, clean, sizeof(clean)));
        return APICLIENT_EXIT_ERROR;
    }
    if (status >= 200 && status <= 299) {
        item = cJSON_IsObject(ans) ? cJSON_GetObjectItemCaseSensitive(ans, key) : NULL;
        if (item != NULL && (item->type & 0xFF) == want_type) {
            *answer_out = ans;
            return APICLIENT_EXIT_OK;
        }
        fprintf(stderr,
                "paved %s: %s%s answered %ld without the expected JSON (an object with "
                "\"%s\")\n",
                cmd, apiclient_clean(c->base_url, clean, sizeof(clean)), path, status, key);
        cJSON_Delete(ans);
        return APICLIENT_EXIT_ERROR;
    }
    msg = json_str(ans, "error", NULL);
    if (msg == NULL)
        msg = "(no error message in the answer)";
    apiclient_clean(msg, clean, sizeof(clean));
    cJSON_Delete(ans);
    if (status >= 400 && status <= 499) {
        fprintf(stderr, "paved %s: refused (%ld): %s\n", cmd, status, clean);
        return APICLIENT_EXIT_REFUSED;
    }
    fprintf(stderr, "paved %s: server error (%ld): %s\n", cmd, status, clean);
    return APICLIENT_EXIT_ERROR;
}

/* ---- Text ---- */

char *apiclient_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);
    char *out = xmalloc(len * 3 + 1);
    char *o = out;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0xF];
        }
    }
    *o = '\0';
    return out;
}

const char *apiclient_clean(const char *s, char *buf, size_t cap)
{
    size_t len = 0;

    PV_ASSERT(cap >= 4);
    if (s == NULL)
        s = "-";
    for (; *s != '\0' && len < cap - 1; s++)
        buf[len++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    buf[len] = '\0';
    if (*s != '\0')
        memcpy(buf + cap - 4, "...", 4);
    return buf;
}
