/* audit/outbox.h: the delivery side of the notification outbox. The audit writer inserts
 * rows ('pending') in the transaction of the event they announce; the notifier claims
 * due rows, and records each attempt ('delivered', retried later, or 'dead'). The CLI
 * lists rows and puts dead ones back in line. */
#ifndef PV_AUDIT_OUTBOX_H
#define PV_AUDIT_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "status.h"

/* Longest error text stored in outbox.last_error (longer ones are cut). */
#define OUTBOX_ERROR_MAX 512

/* One claimed row. Every string is owned by the array (audit_outbox_msgs_free). */
struct outbox_msg {
    int64_t id;      /* outbox.id: the X-Paved-Delivery value receivers dedupe on */
    char *endpoint;  /* endpoint name as configured when the row was written */
    char *event;     /* "exception.approved", ... */
    char *body;      /* JSON text as stored, NUL-terminated */
    size_t body_len; /* bytes of 'body' */
    int64_t created_ms;
    int attempts; /* attempts made before this one */
};

/* What the outbox holds, for /metrics. */
struct outbox_counts {
    int64_t pending;           /* rows waiting (in flight included) */
    int64_t dead;              /* rows that need an operator (paved notify retry) */
    int64_t oldest_pending_ms; /* created_ms of the oldest pending row, 0 when none */
};

struct audit_outbox;

/* Opens its own read-write connection to the store at 'path' (borrowed), which must
 * exist and hold the outbox (audit_open creates and migrates it). WAL lets it write
 * beside the audit writer; the busy timeout of schema_open_rw covers the moments they
 * collide. On success *out is the handle (close with audit_outbox_close). Returns
 * PV_ENOENT when 'path' does not exist, PV_EIO with SQLite's message when it cannot be
 * opened or is not a paved store with an outbox. Use a handle from one thread at a
 * time. */
pv_status audit_outbox_open(struct audit_outbox **out, const char *path, struct pv_err *err);

/* Closes the connection and frees 'o' (takes it). audit_outbox_close(NULL) does nothing. */
void audit_outbox_close(struct audit_outbox *o);

/* Claims up to 'limit' pending rows whose next_ms <= 'now_ms' (the longest overdue
 * ones when more are due), returned oldest (lowest id) first, and pushes their next_ms to 'now_ms'
 * + 'lease_ms' in the same statement, so neither this process's next poll nor another process
 * reading the same store starts a second transfer of a row while one is in flight. A deliverer that
 * dies before recording the outcome leaves the row pending: it is due again once the lease has
 * passed (the message goes out twice at worst; receivers dedupe on the id). On success *out holds
 * *n_out messages (*out is NULL when none are due); the caller frees the array with
 * audit_outbox_msgs_free. Returns PV_EIO with SQLite's message. */
pv_status audit_outbox_claim(struct audit_outbox *o, int64_t now_ms, int64_t lease_ms, size_t limit,
                             struct outbox_msg **out, size_t *n_out, struct pv_err *err);

/* Frees 'msgs' (takes it) and the 'n' messages it holds. Accepts NULL. */
void audit_outbox_msgs_free(struct outbox_msg *msgs, size_t n);

/* Records that row 'id' was delivered at 'now_ms' with answer 'http_status': state
 * delivered, attempts + 1, last_status, delivered_ms. Returns PV_OK (when the row is gone
 * or no longer pending nothing changes), PV_EIO with SQLite's message. */
pv_status audit_outbox_delivered(struct audit_outbox *o, int64_t id, int64_t now_ms,
                                 int http_status, struct pv_err *err);

/* Records a failed attempt of row 'id': attempts + 1, last_status 'http_status' (0: no
 * HTTP answer, stored as NULL), last_error 'error' (borrowed; cut at OUTBOX_ERROR_MAX
 * bytes), and either next_ms = 'next_ms' or, when 'next_ms' is negative, state dead.
 * Returns PV_OK (also when the row is no longer pending), PV_EIO with SQLite's message. */
pv_status audit_outbox_failed(struct audit_outbox *o, int64_t id, int http_status,
                              const char *error, int64_t next_ms, struct pv_err *err);

/* Gives back the lease of a claimed row without counting an attempt (a transfer
 * abandoned at shutdown): next_ms = 'now_ms', so it goes out first after a restart.
 * Returns PV_OK, PV_EIO with SQLite's message. */
pv_status audit_outbox_release(struct audit_outbox *o, int64_t id, int64_t now_ms,
                               struct pv_err *err);

/* Sets *out to the smallest next_ms of the pending rows (in flight included), or -1 when
 * nothing is pending. Returns PV_OK, PV_EIO with SQLite's message. */
pv_status audit_outbox_next_due_ms(struct audit_outbox *o, int64_t *out, struct pv_err *err);

/* Fills *out with the counts of pending and dead rows. Returns PV_OK, PV_EIO. */
pv_status audit_outbox_counts(struct audit_outbox *o, struct outbox_counts *out,
                              struct pv_err *err);

/* ---- For `paved notify` (any process) ---- */

/* Returns the rows of the store at 'path' (borrowed, opened read-only), newest first,
 * in state 'state' ("pending", "delivered" or "dead"; NULL: any), at most 'limit' (0:
 * 1000), as a JSON array of objects {id, endpoint, event, state, attempts, created_ms,
 * next_ms, last_status, last_error, delivered_ms, body} (body parsed back into JSON;
 * NULL columns as null). On success *out is the array (caller frees with cJSON_Delete).
 * Returns PV_EINVAL for an unknown 'state', PV_ENOENT when 'path' does not exist,
 * PV_EIO with SQLite's message. */
pv_status audit_outbox_list(const char *path, const char *state, size_t limit, cJSON **out,
                            struct pv_err *err);

/* Puts rows of the store at 'path' (opened read-write; it must already exist) back in
 * line: state pending, attempts 0, next_ms 'now_ms' (last_error and last_status stay as
 * a record of what went wrong). With 'is_all_dead', every dead row ('id' is ignored);
 * otherwise row 'id', if it is dead or pending. Sets *n_out to the number of rows
 * changed: 0 when no row is dead, or there is no row 'id'. Returns PV_OK; PV_ENOENT when
 * 'path' does not exist; PV_EINVAL when row 'id' was already delivered; PV_EIO with
 * SQLite's message. A running server picks the rows up at its next poll. */
pv_status audit_outbox_retry(const char *path, int64_t id, bool is_all_dead, int64_t now_ms,
                             size_t *n_out, struct pv_err *err);

#endif
