/* audit/exceptions.h: audit-internal contract between the writer and the exception /
 * break-glass state: applying a transition inside the writer's transaction. */
#ifndef PV_AUDIT_EXCEPTIONS_H
#define PV_AUDIT_EXCEPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "audit.h"

/* What a transition tells the outbox. */
struct exc_event {
    char name[40];     /* "exception.approved", "breakglass.started", ... */
    char summary[600]; /* one sentence for people (the Slack text) */
    cJSON *subject;    /* returns: the exception or window after the transition; the
                        * caller frees it */
    char *policies;    /* the exception's policy ids, each NUL-terminated, then ""; the
                        * caller frees it (NULL for break-glass) */
};

/* Applies rec->op with rec->op_args to the tables on 'db' (inside the caller's open
 * transaction; borrows 'db'), checking that the transition is allowed from the current
 * state. On PV_OK fills 'rec' for its row (decision = the new state, team, service,
 * namespace, resource_kind, resource_name, violations = [{"event", "exception" or
 * "breakglass"}]) and *ev. Returns PV_ENOENT, PV_EINVAL (state), PV_ECONFIG
 * (separation of duties) with a message for people, PV_EIO for SQLite failures (the
 * transaction is lost). Writer thread. */
pv_status exc_apply(sqlite3 *db, struct audit_record *rec, struct exc_event *ev,
                    struct pv_err *err);

#endif
