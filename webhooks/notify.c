/* webhooks/notify.c: outbound notifications (see notify.h). Owns the delivery thread,
 * its libcurl multi handle, the transfers in flight and a copy of the endpoints. */
#include "notify.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "clock.h"
#include "log.h"
#include "outbox.h"
#include "xalloc.h"

#define LEASE_MARGIN_MS 5000 /* a claimed row is someone else's again after timeout + this */
#define CONNECT_TIMEOUT_MAX_MS 10000
#define SNIPPET_MAX 200 /* bytes of an error answer kept in last_error */
#define EVENT_MAX 64

/* One endpoint, with its own copies of the strings. */
struct ep {
    char *name;
    char *url;
    char *secret;
    size_t secret_len;
    char *cacert;
    bool is_http_allowed;
    bool is_slack;
    int timeout_ms;
};

/* The endpoints and retry policy of one notify_set_endpoints call. */
struct ep_set {
    struct ep *eps;
    size_t n;
    struct notify_policy policy;
    int64_t lease_ms; /* the longest timeout + LEASE_MARGIN_MS */
};

/* One message being sent. Nothing in it points into an ep_set: libcurl copies the
 * strings it is given, so a reload can free the old endpoints while this runs. */
struct transfer {
    bool is_used;
    CURL *easy;
    struct curl_slist *headers;
    int64_t id;
    char *endpoint;
    char *event;
    char *body; /* as sent; libcurl reads it until the transfer ends */
    size_t body_len;
    int attempts; /* made before this one */
    int64_t started_ms;
    char errbuf[CURL_ERROR_SIZE];
    char snippet[SNIPPET_MAX + 1]; /* start of the answer's body */
    size_t snippet_len;
};

struct notify {
    pthread_t thread;
    CURLM *multi; /* wakeups from any thread; everything else on the thread */
    /* Used by the thread only: */
    struct audit_outbox *outbox;
    EVP_MAC *hmac;
    struct ep_set *cur; /* NULL until the first notify_set_endpoints */
    struct transfer slots[NOTIFY_MAX_IN_FLIGHT];
    size_t n_in_flight;
    int64_t next_poll_ms; /* when to read the outbox again (wall ms) */
    bool is_counts_stale; /* rows changed since the counts were read */

    pthread_mutex_t mu;
    struct ep_set *next;       /* guarded by mu: the newest endpoints, not adopted yet */
    bool is_woken;             /* guarded by mu */
    bool is_stopping;          /* guarded by mu */
    struct notify_stats stats; /* guarded by mu */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- Endpoints ---- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static void ep_set_free(struct ep_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        struct ep *e = &s->eps[i];

        free(e->name);
        /* A webhook URL often carries a token in its path (Slack's do). */
        OPENSSL_cleanse(e->url, strlen(e->url));
        free(e->url);
        OPENSSL_cleanse(e->secret, e->secret_len);
        free(e->secret);
        free(e->cacert);
    }
    free(s->eps);
    free(s);
}

static struct ep_set *ep_set_copy(const struct notify_endpoint *e, size_t count,
                                  const struct notify_policy *p)
{
    struct ep_set *s = xcalloc(1, sizeof(*s));
    int max_timeout = 0;

    s->eps = xcalloc(count ? count : 1, sizeof(*s->eps));
    s->n = count;
    for (size_t i = 0; i < count; i++) {
        struct ep *d = &s->eps[i];

        d->name = xstrdup(e[i].name != NULL ? e[i].name : "");
        d->url = xstrdup(e[i].url != NULL ? e[i].url : "");
        d->secret = xmalloc(e[i].secret_len + 1);
        if (e[i].secret_len > 0)
            memcpy(d->secret, e[i].secret, e[i].secret_len);
        d->secret[e[i].secret_len] = '\0';
        d->secret_len = e[i].secret_len;
        d->cacert = dup_or_null(e[i].cacert);
        d->is_http_allowed = e[i].is_http_allowed;
        d->is_slack = e[i].is_slack;
        d->timeout_ms = e[i].timeout_ms;
        if (d->timeout_ms <= 0)
            d->timeout_ms = 5000;
        else if (d->timeout_ms < 100)
            d->timeout_ms = 100;
        else if (d->timeout_ms > 60000)
            d->timeout_ms = 60000;
        if (d->timeout_ms > max_timeout)
            max_timeout = d->timeout_ms;
    }
    s->policy = *p;
    if (s->policy.max_attempts < 1)
        s->policy.max_attempts = 1;
    if (s->policy.backoff_initial_ms < 1)
        s->policy.backoff_initial_ms = 1;
    if (s->policy.backoff_max_ms < s->policy.backoff_initial_ms)
        s->policy.backoff_max_ms = s->policy.backoff_initial_ms;
    s->lease_ms = (int64_t)max_timeout + LEASE_MARGIN_MS;
    return s;
}

static const struct ep *find_endpoint(const struct ep_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->eps[i].name, name) == 0)
            return &s->eps[i];
    return NULL;
}

/* ---- Outcomes ---- */

/* A random delay in [d/2, d], d = min(max, initial * 2^(attempts-1)). */
static int64_t backoff_ms(const struct notify_policy *p, int attempts)
{
    int64_t d = p->backoff_initial_ms;
    uint64_t r = 0;
    int64_t lo;

    for (int i = 1; i < attempts && d < p->backoff_max_ms; i++)
        d *= 2;
    if (d > p->backoff_max_ms)
        d = p->backoff_max_ms;
    lo = d / 2;
    /* Without randomness the full delay is still a correct, if synchronised, wait. */
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        return d;
    return lo + (int64_t)(r % (uint64_t)(d - lo + 1));
}

static void store_result(struct notify *n, pv_status rc, const struct pv_err *err)
{
    pthread_mutex_lock(&n->mu);
    n->stats.is_store_ok = rc == PV_OK;
    pthread_mutex_unlock(&n->mu);
    if (rc)
        log_msg(LOG_WARN, "notify", "outbox: %s", err->msg);
}

static void record_delivered(struct notify *n, const struct transfer *t, long status)
{
    struct pv_err err = {PV_OK, ""};
    int64_t now = clock_wall_ms();
    pv_status rc = audit_outbox_delivered(n->outbox, t->id, now, (int)status, &err);

    store_result(n, rc, &err);
    n->is_counts_stale = true;
    pthread_mutex_lock(&n->mu);
    n->stats.delivered++;
    pthread_mutex_unlock(&n->mu);
    log_msg(LOG_INFO, "notify",
            "delivered id=%" PRId64 " event=%s endpoint=%s status=%ld attempt=%d ms=%" PRId64,
            t->id, t->event, t->endpoint, status, t->attempts + 1, now - t->started_ms);
}

/* Counts a failed attempt of message 'id': retried after a backoff, or dead once it was
 * the last attempt the policy allows (or 'is_final': retrying cannot help). */
static void record_failed(struct notify *n, int64_t id, const char *endpoint, const char *event,
                          int attempts_before, long status, const char *error, bool is_final)
{
    const struct notify_policy *p = &n->cur->policy;
    struct pv_err err = {PV_OK, ""};
    int64_t now = clock_wall_ms();
    int attempts = attempts_before + 1;
    bool is_dead = is_final || attempts >= p->max_attempts;
    int64_t next_ms = is_dead ? -1 : now + backoff_ms(p, attempts);
    pv_status rc = audit_outbox_failed(n->outbox, id, (int)status, error, next_ms, &err);

    store_result(n, rc, &err);
    /* The retry may be due before the next regular poll. */
    if (!is_dead && next_ms < n->next_poll_ms)
        n->next_poll_ms = next_ms;
    n->is_counts_stale = true;
    pthread_mutex_lock(&n->mu);
    n->stats.failed++;
    if (is_dead)
        n->stats.dead++;
    pthread_mutex_unlock(&n->mu);
    if (is_dead)
        log_msg(LOG_ERROR, "notify",
                "dead id=%" PRId64 " event=%s endpoint=%s attempts=%d: %s; fix the endpoint, "
                "then `paved notify retry --dead`",
                id, event, endpoint, attempts, error);
    else
        log_msg(LOG_WARN, "notify",
                "failed id=%" PRId64 " event=%s endpoint=%s attempt=%d/%d retry_in_ms=%" PRId64
                ": %s",
                id, event, endpoint, attempts, p->max_attempts, next_ms - now, error);
}

/* ---- Transfers ---- */

static void transfer_free(struct notify *n, struct transfer *t)
{
    if (t->easy != NULL) {
        curl_multi_remove_handle(n->multi, t->easy);
        curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    free(t->endpoint);
    free(t->event);
    free(t->body);
    memset(t, 0, sizeof(*t));
}

/* Keeps the start of the answer for last_error and discards the rest. */
static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * nmemb;
    size_t room = SNIPPET_MAX - t->snippet_len;
    size_t take = len < room ? len : room;

    memcpy(t->snippet + t->snippet_len, p, take);
    t->snippet_len += take;
    t->snippet[t->snippet_len] = '\0';
    return len;
}

/* Event names come from our own writer; checking them keeps a hand-edited row from
 * injecting a header. */
static bool is_header_safe(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > EVENT_MAX)
        return false;
    for (const char *c = s; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '-' || *c == '_'))
            return false;
    return true;
}

/* The body to send: the stored one, plus "text" (the summary) for Slack-compatible
 * endpoints. Returns: caller frees with free(); *len_out is its length. */
static char *body_for(const struct ep *e, const struct outbox_msg *m, size_t *len_out)
{
    cJSON *o;
    const cJSON *summary;
    char *text;
    char *out;

    if (e->is_slack) {
        o = cJSON_ParseWithLength(m->body, m->body_len);
        summary = cJSON_GetObjectItemCaseSensitive(o, "summary");
        if (cJSON_IsObject(o) && cJSON_IsString(summary) && !cJSON_HasObjectItem(o, "text") &&
            cJSON_AddStringToObject(o, "text", summary->valuestring) != NULL) {
            text = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            if (text != NULL) {
                *len_out = strlen(text);
                out = xstrndup(text, *len_out);
                cJSON_free(text);
                return out;
            }
        } else {
            cJSON_Delete(o);
            log_msg(LOG_WARN, "notify",
                    "id=%" PRId64 " endpoint=%s: body is not an object with a summary; sent "
                    "without \"text\"",
                    m->id, e->name);
        }
    }
    *len_out = m->body_len;
    return xstrndup(m->body, m->body_len);
}

/* Lowercase hex HMAC-SHA256(secret, ts "." body) into 'out'. Returns false when OpenSSL
 * fails. */
static bool sign(struct notify *n, const struct ep *e, const char *ts, const char *body,
                 size_t body_len, char out[65])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(n->hmac);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    bool is_ok;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    is_ok = ctx != NULL &&
            EVP_MAC_init(ctx, (const unsigned char *)e->secret, e->secret_len, params) == 1 &&
            EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) == 1 &&
            EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
            EVP_MAC_update(ctx, (const unsigned char *)body, body_len) == 1 &&
            EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) == 1 && mac_len == 32;
    EVP_MAC_CTX_free(ctx);
    if (is_ok)
        for (size_t i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", mac[i]);
    OPENSSL_cleanse(mac, sizeof(mac));
    return is_ok;
}

static struct curl_slist *add_header(struct curl_slist *list, bool *is_ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static struct curl_slist *add_header(struct curl_slist *list, bool *is_ok, const char *fmt, ...)
{
    char line[256];
    struct curl_slist *grown;
    va_list ap;
    int len;

    va_start(ap, fmt);
    len = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(line)) {
        *is_ok = false;
        return list;
    }
    grown = curl_slist_append(list, line);
    if (grown == NULL) {
        *is_ok = false;
        return list;
    }
    return grown;
}

/* Sets up and adds the transfer of 'm' to 'e' in slot 't'. Returns NULL, or a message
 * saying why it could not start (the slot is then free again). */
static const char *start_transfer(struct notify *n, struct transfer *t, const struct ep *e,
                                  const struct outbox_msg *m, int64_t now)
{
    const char *protocols = e->is_http_allowed ? "http,https" : "https";
    char ts[24];
    char sig[65];
    bool is_ok = true;
    CURLcode c = CURLE_OK;

    t->is_used = true;
    t->id = m->id;
    t->endpoint = xstrdup(m->endpoint);
    t->event = xstrdup(m->event);
    t->attempts = m->attempts;
    t->started_ms = now;
    t->body = body_for(e, m, &t->body_len);
    snprintf(ts, sizeof(ts), "%" PRId64, now / 1000);
    if (!sign(n, e, ts, t->body, t->body_len, sig)) {
        transfer_free(n, t);
        return "cannot compute the HMAC-SHA256 signature (OpenSSL failed)";
    }
    t->headers = add_header(t->headers, &is_ok, "Content-Type: application/json");
    t->headers = add_header(t->headers, &is_ok, "X-Paved-Event: %s", m->event);
    t->headers = add_header(t->headers, &is_ok, "X-Paved-Timestamp: %s", ts);
    t->headers = add_header(t->headers, &is_ok, "X-Paved-Signature: sha256=%s", sig);
    t->headers = add_header(t->headers, &is_ok, "X-Paved-Delivery: %" PRId64, m->id);
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    t->headers = add_header(t->headers, &is_ok, "Expect:");
    t->easy = curl_easy_init();
    if (!is_ok || t->easy == NULL) {
        transfer_free(n, t);
        return "out of memory setting up the transfer";
    }
    c = curl_easy_setopt(t->easy, CURLOPT_URL, e->url);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, protocols);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS,
                             (long)(e->timeout_ms < CONNECT_TIMEOUT_MAX_MS
                                        ? e->timeout_ms
                                        : CONNECT_TIMEOUT_MAX_MS));
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_USERAGENT, NOTIFY_USER_AGENT);
    if (c == CURLE_OK && e->cacert != NULL)
        c = curl_easy_setopt(t->easy, CURLOPT_CAINFO, e->cacert);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    if (c == CURLE_OK)
        c = curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    if (c != CURLE_OK) {
        transfer_free(n, t);
        return curl_easy_strerror(c);
    }
    if (curl_multi_add_handle(n->multi, t->easy) != CURLM_OK) {
        transfer_free(n, t);
        return "libcurl refused the transfer";
    }
    n->n_in_flight++;
    return NULL;
}

/* Starts the transfer of 'm', or records at once why it cannot be sent. */
static void start_one(struct notify *n, const struct outbox_msg *m, int64_t now)
{
    const struct ep *e = find_endpoint(n->cur, m->endpoint);
    struct transfer *t = NULL;
    const char *why;
    char msg[160];

    if (e == NULL) {
        snprintf(msg, sizeof(msg), "endpoint %.64s is no longer configured", m->endpoint);
        record_failed(n, m->id, m->endpoint, m->event, m->attempts, 0, msg, true);
        return;
    }
    if (!is_header_safe(m->event)) {
        record_failed(n, m->id, m->endpoint, "?", m->attempts, 0,
                      "the event name is not a header-safe token", true);
        return;
    }
    /* libcurl refuses it too (CURLOPT_PROTOCOLS_STR); this says why in words. */
    if (strncasecmp(e->url, "https://", 8) != 0 &&
        !(e->is_http_allowed && strncasecmp(e->url, "http://", 7) == 0)) {
        record_failed(n, m->id, m->endpoint, m->event, m->attempts, 0,
                      e->is_http_allowed ? "the endpoint URL is neither https:// nor http://"
                                         : "http:// is refused for this endpoint (allow_http is "
                                           "off); use https://",
                      false);
        return;
    }
    for (size_t i = 0; i < NOTIFY_MAX_IN_FLIGHT && t == NULL; i++)
        if (!n->slots[i].is_used)
            t = &n->slots[i];
    /* The claim asked for free slots only, so this cannot happen; if it did, the row's
     * lease runs out and it is sent later. */
    if (t == NULL)
        return;
    why = start_transfer(n, t, e, m, now);
    if (why != NULL)
        record_failed(n, m->id, m->endpoint, m->event, m->attempts, 0, why, false);
}

/* Text of the answer's start with control characters blanked, for last_error. */
static void clean_snippet(char *s)
{
    for (char *c = s; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
}

static void finish_one(struct notify *n, struct transfer *t, CURLcode res)
{
    long status = 0;
    char msg[CURL_ERROR_SIZE + SNIPPET_MAX + 64];

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (res == CURLE_OK && status >= 200 && status <= 299) {
        record_delivered(n, t, status);
    } else {
        if (res != CURLE_OK) {
            snprintf(msg, sizeof(msg), "%s",
                     t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(res));
        } else {
            clean_snippet(t->snippet);
            snprintf(msg, sizeof(msg), "HTTP %ld%s%s%s", status,
                     status >= 300 && status <= 399 ? " (redirects are not followed)" : "",
                     t->snippet_len > 0 ? ": " : "", t->snippet);
        }
        record_failed(n, t->id, t->endpoint, t->event, t->attempts, res == CURLE_OK ? status : 0,
                      msg, false);
    }
    transfer_free(n, t);
    n->n_in_flight--;
}

/* Runs libcurl and records every transfer that has ended. */
static void pump(struct notify *n)
{
    CURLMsg *cm;
    int running = 0;
    int left = 0;

    curl_multi_perform(n->multi, &running);
    while ((cm = curl_multi_info_read(n->multi, &left)) != NULL) {
        struct transfer *t = NULL;

        if (cm->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        PV_ASSERT(t == NULL || t->easy == cm->easy_handle);
        if (t != NULL)
            finish_one(n, t, cm->data.result);
    }
}

/* ---- The thread ---- */

static void refresh_counts(struct notify *n)
{
    struct outbox_counts c;
    struct pv_err err = {PV_OK, ""};
    pv_status rc = audit_outbox_counts(n->outbox, &c, &err);

    store_result(n, rc, &err);
    pthread_mutex_lock(&n->mu);
    if (rc == PV_OK) {
        n->stats.pending = c.pending;
        n->stats.dead_stored = c.dead;
        n->stats.oldest_pending_ms = c.oldest_pending_ms;
    }
    n->stats.in_flight = n->n_in_flight;
    pthread_mutex_unlock(&n->mu);
}

/* Claims what is due and fits in the free slots and starts it, then sets when to look
 * again. *is_full_out says the claim took every slot it could, so more may be waiting as
 * soon as one frees. */
static void poll_outbox(struct notify *n, int64_t now, bool *is_full_out)
{
    size_t free_slots = NOTIFY_MAX_IN_FLIGHT - n->n_in_flight;
    struct outbox_msg *msgs = NULL;
    struct pv_err err = {PV_OK, ""};
    int64_t due = -1;
    size_t count = 0;
    pv_status rc;

    *is_full_out = false;
    n->next_poll_ms = now + NOTIFY_POLL_MS;
    rc = audit_outbox_claim(n->outbox, now, n->cur->lease_ms, free_slots, &msgs, &count, &err);
    store_result(n, rc, &err);
    if (rc)
        return;
    if (count > 0)
        n->is_counts_stale = true;
    for (size_t i = 0; i < count; i++)
        start_one(n, &msgs[i], now);
    audit_outbox_msgs_free(msgs, count);
    *is_full_out = count == free_slots;
    rc = audit_outbox_next_due_ms(n->outbox, &due, &err);
    store_result(n, rc, &err);
    /* A row due now but not claimed is one committed a moment ago: look at once. */
    if (rc == PV_OK && due >= 0 && due < n->next_poll_ms)
        n->next_poll_ms = due;
}

/* Gives in-flight transfers until their timeout, at most NOTIFY_STOP_GRACE_MS, then
 * abandons the rest, handing their rows back for the next start. */
static void drain(struct notify *n)
{
    uint64_t deadline = mono_ms() + NOTIFY_STOP_GRACE_MS;

    for (;;) {
        uint64_t now;

        pump(n);
        now = mono_ms();
        if (n->n_in_flight == 0 || now >= deadline)
            break;
        curl_multi_poll(n->multi, NULL, 0, (int)(deadline - now < 100 ? deadline - now : 100),
                        NULL);
    }
    for (size_t i = 0; i < NOTIFY_MAX_IN_FLIGHT; i++) {
        struct transfer *t = &n->slots[i];
        struct pv_err err = {PV_OK, ""};
        pv_status rc;

        if (!t->is_used)
            continue;
        rc = audit_outbox_release(n->outbox, t->id, clock_wall_ms(), &err);
        store_result(n, rc, &err);
        log_msg(LOG_INFO, "notify",
                "abandoned id=%" PRId64 " event=%s endpoint=%s at shutdown; it stays pending",
                t->id, t->event, t->endpoint);
        transfer_free(n, t);
        n->n_in_flight--;
    }
}

static void *run(void *arg)
{
    struct notify *n = arg;
    int64_t next_counts = 0;
    bool is_full = false;

    for (;;) {
        struct ep_set *fresh;
        bool is_woken;
        bool is_stopping;
        int64_t now;
        int64_t wait;

        pthread_mutex_lock(&n->mu);
        fresh = n->next;
        n->next = NULL;
        is_woken = n->is_woken;
        n->is_woken = false;
        is_stopping = n->is_stopping;
        pthread_mutex_unlock(&n->mu);
        if (is_stopping)
            break;
        if (fresh != NULL) {
            ep_set_free(n->cur);
            n->cur = fresh;
            is_woken = true;
        }
        now = clock_wall_ms();
        if (n->cur != NULL && n->n_in_flight < NOTIFY_MAX_IN_FLIGHT &&
            (is_woken || is_full || now >= n->next_poll_ms))
            poll_outbox(n, now, &is_full);
        pump(n);
        pthread_mutex_lock(&n->mu);
        n->stats.in_flight = n->n_in_flight;
        pthread_mutex_unlock(&n->mu);
        now = clock_wall_ms();
        if (n->is_counts_stale || now >= next_counts) {
            refresh_counts(n);
            n->is_counts_stale = false;
            next_counts = now + NOTIFY_POLL_MS;
        }
        /* With every slot busy only a finished transfer (or a wakeup) changes anything;
         * libcurl's own timers shorten the wait as needed. */
        if (n->n_in_flight >= NOTIFY_MAX_IN_FLIGHT || n->cur == NULL)
            wait = NOTIFY_POLL_MS;
        else if (is_full)
            wait = 0;
        else
            wait = n->next_poll_ms - now;
        if (wait < 0)
            wait = 0;
        if (wait > NOTIFY_POLL_MS)
            wait = NOTIFY_POLL_MS;
        curl_multi_poll(n->multi, NULL, 0, (int)wait, NULL);
    }
    drain(n);
    refresh_counts(n);
    return NULL;
}

/* ---- Public ---- */

static void notify_free(struct notify *n)
{
    curl_multi_cleanup(n->multi);
    audit_outbox_close(n->outbox);
    EVP_MAC_free(n->hmac);
    ep_set_free(n->cur);
    ep_set_free(n->next);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

pv_status notify_start(struct notify **out, const char *db_path, struct pv_err *err)
{
    struct notify *n = xcalloc(1, sizeof(*n));
    pv_status rc;

    pthread_mutex_init(&n->mu, NULL);
    n->stats.is_store_ok = true;
    rc = audit_outbox_open(&n->outbox, db_path, err);
    if (rc)
        goto fail;
    n->multi = curl_multi_init();
    n->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (n->multi == NULL || n->hmac == NULL) {
        rc = pv_err_set(err, PV_EIO, "notify: cannot set up %s",
                        n->multi == NULL ? "libcurl" : "OpenSSL's HMAC");
        goto fail;
    }
    /* Connections are kept per host between messages; a few are enough. */
    curl_multi_setopt(n->multi, CURLMOPT_MAXCONNECTS, (long)NOTIFY_MAX_IN_FLIGHT);
    if (pthread_create(&n->thread, NULL, run, n) != 0) {
        rc = pv_err_set(err, PV_EIO, "notify: cannot start the delivery thread");
        goto fail;
    }
    *out = n;
    return PV_OK;
fail:
    notify_free(n);
    return rc;
}

void notify_set_endpoints(struct notify *n, const struct notify_endpoint *e, size_t count,
                          const struct notify_policy *p)
{
    struct ep_set *s = ep_set_copy(e, count, p);
    struct ep_set *old;

    pthread_mutex_lock(&n->mu);
    old = n->next;
    n->next = s;
    pthread_mutex_unlock(&n->mu);
    ep_set_free(old);
    curl_multi_wakeup(n->multi);
}

void notify_wake(struct notify *n)
{
    pthread_mutex_lock(&n->mu);
    n->is_woken = true;
    pthread_mutex_unlock(&n->mu);
    curl_multi_wakeup(n->multi);
}

void notify_stats(struct notify *n, struct notify_stats *out)
{
    pthread_mutex_lock(&n->mu);
    *out = n->stats;
    pthread_mutex_unlock(&n->mu);
}

void notify_stop(struct notify *n)
{
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    n->is_stopping = true;
    pthread_mutex_unlock(&n->mu);
    curl_multi_wakeup(n->multi);
    pthread_join(n->thread, NULL);
    notify_free(n);
}
