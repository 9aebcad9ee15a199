/* server/api.h: the JSON API of exceptions and break-glass windows (/v1/exceptions,
 * /v1/breakglass): request validation, roles, separation of duties, and the audit
 * events that carry each transition. serve.c routes to it and sends what it returns. */
#ifndef PV_API_H
#define PV_API_H

#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "vm.h"

/* Reads a query parameter of the request ('cls' is the caller's), or NULL. */
typedef const char *api_arg_fn(void *cls, const char *key);

/* What one API call works with; everything borrowed for the call. */
struct api_call {
    struct audit *audit;         /* the store's writer */
    const char *db_path;         /* for reads */
    const struct config *cfg;    /* the snapshot's config */
    struct vm *vm;               /* the calling thread's vm: the bound policies */
    const struct cfg_token *tok; /* the authenticated caller */
    const char *notify_routes;   /* the snapshot's outbox routes (JSON text) or NULL */
    uint64_t deadline_ns;        /* CLOCK_MONOTONIC deadline of the audit commit */
    const char *method;          /* "GET" or "POST" */
    const char *rest;            /* the path after "/v1/exceptions" or "/v1/breakglass" */
    const char *body;            /* the request body, 'len' bytes (NUL-terminated) */
    size_t len;
    api_arg_fn *arg;
    void *arg_cls;
};

/* The answer: an HTTP status and a JSON body (caller frees), plus whether the store's
 * exceptions or windows changed (the caller reloads what decisions match against). */
struct api_answer {
    unsigned int status;
    char *body;
    const char *allow; /* for 405: the methods allowed */
    bool is_changed;
};

/* /v1/exceptions[/{id}[/approve|deny|revoke]]. Fills *out. Never fails otherwise. */
void api_exceptions(const struct api_call *c, struct api_answer *out);

/* /v1/breakglass[/{id}/end]. Fills *out. */
void api_breakglass(const struct api_call *c, struct api_answer *out);

/* True when the JSON object 'body' has only keys of 'allowed' (NULL-terminated); else
 * writes the first other key to *bad (borrowed from 'body') and returns false. */
bool api_only_keys(const cJSON *body, const char *const *allowed, const char **bad);

/* Submits one transition as an audit event (source "api", actor 'actor') and waits for
 * its commit: the sweeper's expiry, reminder and window end. Borrows everything;
 * takes 'args'. Returns audit_submit_op's status with its message in 'err'. */
pv_status api_submit_event(struct audit *a, enum audit_op op, cJSON *args, const char *actor,
                           const char *notify_routes, uint64_t deadline_ns, struct pv_err *err);

#endif
