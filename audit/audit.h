/* audit/audit.h: the audit store's contract: durable, hash-chained decision records in
 * SQLite (WAL), written by one group-commit thread, and read back for queries, exports
 * and chain verification. Nothing outside audit/ sees SQLite. */
#ifndef PV_AUDIT_H
#define PV_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "status.h"

#define AUDIT_ID_LEN 32 /* "dec-" + 26 chars, NUL included below */

/* A transition carried by an event record (kind "exception" or "breakglass", path
 * "event"): the writer applies it to the exceptions / breakglass tables in the same
 * transaction that seals the record into the hash chain, after checking that it is
 * allowed from the current state (audit/exceptions.c). 'op_args' says what: */
enum audit_op {
    AUDIT_OP_NONE = 0,
    AUDIT_OP_EXC_REQUEST, /* {"id","team","service","namespace"?,"policies":[..],
                           *  "justification","ticket"?,"duration_s","self_service"} */
    AUDIT_OP_EXC_APPROVE, /* {"id","reason"?}: pending -> approved; never by the requester */
    AUDIT_OP_EXC_DENY,    /* {"id","reason"?}: pending -> denied */
    AUDIT_OP_EXC_REVOKE,  /* {"id","reason"?}: approved -> revoked */
    AUDIT_OP_EXC_EXPIRE,  /* {"id"}: approved -> expired, once expires_ms <= time_ms */
    AUDIT_OP_EXC_REMIND,  /* {"id","days"}: the "expiring" reminder, once per exception */
    AUDIT_OP_BG_START,    /* {"id","reason","namespaces":[..],"teams":[..],"duration_s"} */
    AUDIT_OP_BG_END,      /* {"id","reason"?}: ends a window (early, or when due) */
};

/* What an admitted object holds (the quota ledger). */
struct audit_usage {
    int64_t cpu_millis;
    int64_t memory_bytes;
    int64_t storage_bytes;
    int64_t environments;
    double monthly_cost;
};

/* A ledger change a decision carries (rec->charge), applied by the writer in the
 * decision's own transaction after the team's quota check, so concurrent requests can
 * never both take the last unit. Only an allowed decision charges. */
struct audit_charge {
    char *key;                /* "Deployment/shop/checkout", "env/review-42"; owned */
    char *cost_center;        /* owned, may be NULL */
    bool is_release;          /* DELETE: the key's row goes */
    bool is_check_only;       /* dry run: checked, never charged */
    bool is_forced;           /* break-glass: charged without the quota check */
    struct audit_usage usage; /* what the key holds once admitted */
};

/* The quota check, called on the writer thread inside the transaction: 'before' is what
 * 'team' holds now, 'after' what it would hold with the charge. Returns true and writes
 * the reason ("team payments would use 34 of 32 cpu") into 'msg' when a resource that
 * grows would pass its limit. */
typedef bool audit_quota_fn(void *arg, const char *team, const struct audit_usage *before,
                            const struct audit_usage *after, char *msg, size_t cap);

/* One decision, allocated with xcalloc. Every string is owned by the record (NULL allowed
 * for optional ones; source, kind, team, decision and path are required); violations NULL
 * is stored as "[]". audit_record_free releases the strings and the record. */
struct audit_record {
    char id[AUDIT_ID_LEN + 1]; /* from audit_new_id */
    int64_t time_ms;           /* Unix epoch milliseconds */
    char *source;              /* "admission" | "ci" | "api" */
    char *request_uid;         /* AdmissionReview request.uid, or NULL */
    char *kind;                /* "deploy" | "provision" | "credential" */
    char *operation;           /* CREATE | UPDATE | DELETE | CONNECT */
    char *team;                /* "unknown" when it cannot be determined */
    char *service;
    char *namespace;
    char *resource_kind;
    char *resource_name;
    char *actor;       /* userInfo.username, token name, or NULL */
    char *decision;    /* "allow" | "deny" */
    char *path;        /* "golden" | "exception" | "off-road" | "denied" */
    char *violations;  /* JSON array text: [{"binding","policy","enforcement","message"}] */
    char *bundle_hash; /* hex SHA-256 of the policy bundle and config */
    int64_t latency_us;
    bool is_dry_run;
    /* Not columns of the row: */
    bool is_exception_available; /* a golden-path policy that allows exceptions was in
                                  * scope (services.exception_available, for the
                                  * voluntary-adoption figure) */
    enum audit_op op;            /* AUDIT_OP_NONE for decisions */
    cJSON *op_args;              /* owned; see enum audit_op */
    char *details;               /* JSON object text (cost, quota, credential) or NULL;
                                  * chained when present */
    struct audit_charge *charge; /* owned, or NULL */
    char *notify_routes;         /* JSON text [{"endpoint","events":[..],"policies":[..]}]
                                  * of the configured endpoints, or NULL: the writer puts
                                  * a message in the outbox for each endpoint whose
                                  * filter matches this record's event */
};

/* Fills 'out' with a new decision id: "dec-" followed by 26 characters that sort by
 * time (milliseconds, then randomness from OpenSSL). Thread-safe. */
void audit_new_id(char out[AUDIT_ID_LEN + 1]);

/* Formats epoch milliseconds as RFC 3339 UTC ("2026-12-04T10:00:00Z") into 'buf'. */
void audit_format_time(int64_t ms, char *buf, size_t cap);

/* Frees the strings of 'r' and 'r' itself. audit_record_free(NULL) does nothing. */
void audit_record_free(struct audit_record *r);

/* Called on the writer thread after a commit that put messages in the outbox (the
 * notifier wakes up). Must return quickly. */
typedef void audit_outbox_fn(void *arg);

struct audit_options {
    const char *path;           /* SQLite file; created with the schema when missing */
    bool is_async;              /* audit.durability: async (answer before the commit) */
    size_t queue_max;           /* records waiting for the writer; default 65536 */
    uint32_t batch_max;         /* records per transaction; default 256 */
    audit_outbox_fn *on_outbox; /* may be NULL */
    void *on_outbox_arg;
    audit_quota_fn *quota_check; /* may be NULL: no limits */
    void *quota_arg;
};

struct audit_stats {
    size_t queue_depth;
    uint64_t committed; /* records committed since open */
    uint64_t commits;   /* transactions */
    uint64_t commit_failures;
    uint64_t commit_latency_us_sum;
    uint64_t commit_latency_us_buckets[8]; /* <=100us, 250, 500, 1ms, 2.5, 5, 10, +Inf */
    bool is_writable;                      /* the last commit (or the open) succeeded */
};

struct audit;

/* Opens (creating if needed) the store at opt->path in WAL mode, migrates the schema,
 * and starts the writer thread (and, off the commit path, the checkpointer). On
 * success *out is the store (close with audit_close). Returns PV_EIO with SQLite's
 * message when the file cannot be opened or migrated. */
pv_status audit_open(struct audit **out, const struct audit_options *opt, struct pv_err *err);

/* Hands 'rec' (takes it, even on failure) to the writer. With sync durability, blocks
 * until the batch holding it has committed; with async, until it is queued, except for
 * a record with a charge or of kind "credential", whose commit is always waited for. A full
 * queue makes the caller wait; past 'deadline_ns' (CLOCK_MONOTONIC) it returns
 * PV_ETIMEOUT and the record is not written (the caller answers with an error, so
 * nothing acknowledged is lost); UINT64_MAX waits without limit. Returns PV_EIO when the
 * commit failed (disk full, read-only file) or the store is closing: the caller must not
 * report the decision as recorded. Returns PV_EINVAL (a required field missing, an id
 * not from audit_new_id or already recorded, violations not a JSON array) or
 * PV_ETOOBIG (strings over 1 MiB together) for a malformed record. Once queued, a sync
 * submitter waits for its batch whatever the deadline. Thread-safe. */
pv_status audit_submit(struct audit *a, struct audit_record *rec, uint64_t deadline_ns,
                       struct pv_err *err);

/* Completion of audit_submit_cb: 'rc' is PV_OK once the record's batch committed;
 * PV_EFULL when it committed as a denial because its charge would exceed the team's
 * quota ('msg' says which limit); else PV_EIO (or PV_EINVAL for a duplicate id) with
 * 'msg' saying why. 'msg' is borrowed
 * for the call. Runs on the writer thread: return quickly and do not submit from it. */
typedef void audit_done_fn(void *arg, pv_status rc, const char *msg);

/* Like audit_submit, but returns once the record is queued instead of waiting for the
 * commit; 'done' runs exactly once afterwards, when the batch holding the record has
 * committed or failed. With async durability 'done' runs before this returns. When it
 * returns an error (invalid record, queue full until 'deadline_ns', closing) the record
 * was not queued and 'done' never runs. Takes 'rec' in every case. Thread-safe. */
pv_status audit_submit_cb(struct audit *a, struct audit_record *rec, uint64_t deadline_ns,
                          audit_done_fn *done, void *arg, struct pv_err *err);

/* Like audit_submit for a record that carries an op (rec->op != AUDIT_OP_NONE): waits
 * for the commit even with async durability, because the caller answers with the
 * outcome. Returns PV_OK once committed; PV_ENOENT (no such exception or window),
 * PV_EINVAL (the transition is not allowed from the current state: "EXC-.. is denied,
 * only a pending exception can be approved"), or PV_ECONFIG for separation of duties
 * (the requester approving), each with the message in 'err'; errors as audit_submit
 * otherwise. Takes 'rec'. Thread-safe. */
pv_status audit_submit_op(struct audit *a, struct audit_record *rec, uint64_t deadline_ns,
                          struct pv_err *err);

/* Copies the counters into *out. Thread-safe. */
void audit_stats(struct audit *a, struct audit_stats *out);

/* Stops accepting records, commits everything queued, stops the threads, closes the
 * database. audit_close(NULL) does nothing. */
void audit_close(struct audit *a);

/* ---- Reading (any process; opens the file read-only) ---- */

struct audit_filter {
    int64_t since_ms; /* time_ms >= since_ms; 0: no lower bound */
    int64_t until_ms; /* time_ms < until_ms; 0: no upper bound */
    const char *team; /* NULL: any */
    const char *service;
    const char *policy; /* decisions with a violation of this policy id */
    const char *path;
    const char *source;
    size_t limit; /* 0: 1000 */
};

/* Returns the matching decisions, newest first, as a JSON array of objects with every
 * column (violations parsed back into JSON). Caller frees with cJSON_Delete. Returns
 * PV_EIO / PV_ENOENT with a message on failure. */
pv_status audit_query(const char *path, const struct audit_filter *f, cJSON **out,
                      struct pv_err *err);

/* Writes every decision, oldest first, as one JSON object per line to 'out'. */
pv_status audit_export(const char *path, FILE *out, struct pv_err *err);

/* Copies the store at 'path' to 'out_path' with SQLite's online backup API: one read
 * transaction, so the copy is a consistent snapshot taken while a server keeps
 * writing (WAL readers do not block the writer). Writes a temporary file beside
 * 'out_path' and renames it into place; refuses an existing 'out_path' unless
 * 'is_force'. The copy is a standalone database (rollback journal, no -wal file).
 * Returns PV_ENOENT/PV_EIO with SQLite's message, PV_EINVAL for an existing target. */
pv_status audit_backup(const char *path, const char *out_path, bool is_force, struct pv_err *err);

/* ---- Exceptions and break-glass (audit/exceptions.c; readers open read-only) ---- */

#define AUDIT_EXC_ID_LEN 30 /* "EXC-" + 26 characters, NUL not included */

/* Fills 'out' with a new exception id "EXC-<26>" (or "BG-<26>" when 'is_breakglass'),
 * time-ordered like decision ids. Thread-safe. */
void audit_new_exception_id(char out[AUDIT_EXC_ID_LEN + 1], bool is_breakglass);

struct audit_exc_filter {
    const char *state; /* pending | approved | denied | expired | revoked; NULL: any */
    const char *team;
    const char *service;
    const char *policy;         /* exceptions naming this policy id */
    int64_t expiring_before_ms; /* approved ones whose expiry is before this; 0: off */
    size_t limit;               /* 0: 1000 */
};

/* The exceptions matching 'f', newest first, as a JSON array of objects: id, team,
 * service, namespace, policies, justification, ticket, requested_by, requested_at
 * (RFC 3339) and requested_ms, duration_s, state, self_service, decided_by,
 * decided_ms, reason, expires_at/expires_ms, ended_ms. Caller frees. PV_EIO/PV_ENOENT. */
pv_status audit_exceptions_list(const char *path, const struct audit_exc_filter *f, cJSON **out,
                                struct pv_err *err);

/* One exception (as in the list) with "events": its audit rows oldest first ({decision_id,
 * time_ms, event, actor, state, hash}). PV_ENOENT when there is no exception 'id'. */
pv_status audit_exception_get(const char *path, const char *id, cJSON **out, struct pv_err *err);

/* An approved exception, as decisions match it. */
struct audit_exc {
    char *id;
    char *team;
    char *service;
    char *namespace; /* NULL: any namespace */
    char **policies;
    size_t n_policies;
    int64_t expires_ms;
    bool is_reminded;
};

struct audit_exc_set {
    struct audit_exc *items;
    size_t n;
};

/* Loads every approved exception (expired ones included until the sweeper moves them:
 * matching checks the expiry) into *out (release with audit_exc_set_fini). */
pv_status audit_exceptions_approved(const char *path, struct audit_exc_set *out,
                                    struct pv_err *err);

/* Builds a set from what `paved exceptions list --format json` printed: a JSON array
 * of exception objects, or {"exceptions": [...]} (borrowed). Keeps the approved ones.
 * Returns PV_EINVAL naming the entry that is malformed. */
pv_status audit_exc_set_from_json(const cJSON *doc, struct audit_exc_set *out, struct pv_err *err);

void audit_exc_set_fini(struct audit_exc_set *s);

/* The first exception of 's' that covers 'policy' for (team, service, namespace) and
 * has not expired at 'now_ms', or NULL. Borrows everything. */
const struct audit_exc *audit_exc_match(const struct audit_exc_set *s, const char *team,
                                        const char *service, const char *namespace,
                                        const char *policy, int64_t now_ms);

/* A break-glass window that has not been ended. */
struct audit_bg {
    char *id;
    char **namespaces; /* scope: these namespaces ... */
    size_t n_namespaces;
    char **teams; /* ... and these teams */
    size_t n_teams;
    int64_t ends_ms;
};

struct audit_bg_set {
    struct audit_bg *items;
    size_t n;
};

/* Loads the windows not yet ended (release with audit_bg_set_fini). */
pv_status audit_breakglass_open(const char *path, struct audit_bg_set *out, struct pv_err *err);
void audit_bg_set_fini(struct audit_bg_set *s);

/* The window of 's' whose scope holds 'namespace' or 'team' and that lasts past
 * 'now_ms', or NULL. */
const struct audit_bg *audit_bg_match(const struct audit_bg_set *s, const char *namespace,
                                      const char *team, int64_t now_ms);

/* Every break-glass window, newest first, as a JSON array ({id, started_by, reason,
 * namespaces, teams, started_ms, ends_ms, ended_ms, ended_by, active}). */
pv_status audit_breakglass_list(const char *path, int64_t now_ms, cJSON **out, struct pv_err *err);

/* ---- The quota ledger and costs (audit/ledger.c; read-only) ---- */

/* What 'team' holds now, summed over its ledger rows. */
pv_status audit_team_usage(const char *path, const char *team, struct audit_usage *out,
                           struct pv_err *err);

enum audit_cost_group {
    AUDIT_COST_BY_TEAM = 0,
    AUDIT_COST_BY_SERVICE,
    AUDIT_COST_BY_COST_CENTER,
};

struct audit_cost_filter {
    const char *team; /* NULL: every team */
    int64_t since_ms; /* window of the "admitted" part */
    int64_t until_ms; /* 0: now */
    enum audit_cost_group group_by;
};

/* {"group_by", "current": [{<group>, objects, cpu_millis, memory_bytes, storage_bytes,
 * environments, monthly_cost}] (the ledger: what is admitted now), "admitted":
 * [{<group>, decisions, monthly_cost_of_objects, monthly_cost_added}] (the allowed
 * decisions of the window)}, most expensive first. Caller frees. */
pv_status audit_costs(const char *path, const struct audit_cost_filter *f, cJSON **out,
                      struct pv_err *err);
const char *audit_cost_group_name(enum audit_cost_group g);

struct audit_verify_result {
    uint64_t rows; /* rows checked */
    bool is_ok;
    int64_t bad_rowid; /* first row whose hash does not match, or 0 */
    char bad_id[AUDIT_ID_LEN + 1];
    char reason[160];
};

/* Walks the hash chain from the first row: each row's hash must equal
 * SHA-256(previous row's hash || canonical row). Fills *out; returns PV_OK when the walk
 * completed (whatever it found), PV_EIO/PV_ENOENT when the file cannot be read. */
pv_status audit_verify(const char *path, struct audit_verify_result *out, struct pv_err *err);

#endif
