/* webhooks/notify.h: outbound notifications. One thread with one libcurl multi handle
 * reads the store's outbox (audit/outbox.h) and POSTs each message, signed with
 * HMAC-SHA256, to its endpoint; failures are retried with exponential backoff and
 * jitter, then dead-lettered. Delivery is at least once: a row is marked delivered only
 * after a 2xx answer, so receivers dedupe on X-Paved-Delivery. */
#ifndef PV_NOTIFY_H
#define PV_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define NOTIFY_MAX_IN_FLIGHT 16   /* transfers at once */
#define NOTIFY_POLL_MS 500        /* the outbox is read at least this often */
#define NOTIFY_STOP_GRACE_MS 2000 /* what notify_stop gives in-flight transfers */
#define NOTIFY_USER_AGENT "paved/0.1.0"

/* One endpoint, as the server's config names it (server/config.h: cfg_endpoint). */
struct notify_endpoint {
    const char *name;   /* the outbox's endpoint column */
    const char *url;    /* https:// (http:// only when 'is_http_allowed'); never logged */
    const char *secret; /* HMAC-SHA256 key, 'secret_len' bytes; never logged */
    size_t secret_len;
    const char *cacert;   /* CA file to trust instead of the system's, or NULL */
    bool is_http_allowed; /* allow plain http:// */
    bool is_slack;        /* send a Slack-compatible "text" field (the summary) too */
    int timeout_ms;       /* whole transfer, connection included */
};

/* Retries: attempt k (1-based) that fails waits a random time in [d/2, d] with
 * d = min(backoff_max_ms, backoff_initial_ms * 2^(k-1)); after 'max_attempts' failed
 * attempts the message is dead (paved notify retry puts it back). */
struct notify_policy {
    int max_attempts;
    int backoff_initial_ms;
    int backoff_max_ms;
};

/* Counters since notify_start, and the outbox as last read, for /metrics. */
struct notify_stats {
    uint64_t delivered;        /* messages answered with 2xx */
    uint64_t failed;           /* failed attempts, the last one of a dead message too */
    uint64_t dead;             /* messages dead-lettered */
    size_t in_flight;          /* transfers running now */
    int64_t pending;           /* pending rows in the outbox (in flight included) */
    int64_t dead_stored;       /* dead rows in the outbox, waiting for an operator */
    int64_t oldest_pending_ms; /* created_ms of the oldest pending row, 0 when none */
    bool is_store_ok;          /* the last read or write of the outbox succeeded */
};

struct notify;

/* Opens the outbox of the store at 'db_path' (borrowed; audit_open must have created
 * it) and starts the delivery thread. Nothing is sent until notify_set_endpoints has
 * been called once: before that every endpoint would look unknown. curl_global_init
 * must have run (main() does it before any thread starts). On success *out is the
 * notifier (stop and free with notify_stop). Returns the errors of audit_outbox_open
 * (PV_ENOENT, PV_EIO) or PV_EIO when libcurl or the thread cannot start. */
pv_status notify_start(struct notify **out, const char *db_path, struct pv_err *err);

/* Replaces the endpoints and the retry policy with deep copies of 'e' ('count'
 * entries) and 'p' (both borrowed; secrets copied, and wiped when replaced). Transfers
 * already running finish with what they started with; a row naming an endpoint that is
 * no longer in the list goes dead when it is next due. Call it again on every config
 * reload. Thread-safe. */
void notify_set_endpoints(struct notify *n, const struct notify_endpoint *e, size_t count,
                          const struct notify_policy *p);

/* Tells the thread that new rows were committed, so it reads the outbox now instead of
 * at its next poll. Cheap and thread-safe; never call it after notify_stop. */
void notify_wake(struct notify *n);

/* Copies the counters into *out. Thread-safe. */
void notify_stats(struct notify *n, struct notify_stats *out);

/* Stops reading the outbox, gives the transfers in flight up to their timeout but at
 * most NOTIFY_STOP_GRACE_MS to finish (their outcome is recorded as usual), abandons
 * the others (their rows stay pending with the attempt not counted, and go out first
 * after a restart), joins the thread and frees 'n' (takes it). notify_stop(NULL) does
 * nothing. Call it once, after the audit writer has been drained. */
void notify_stop(struct notify *n);

#endif
