/* server/remote.h: `paved check --server`: decisions made by a paved server through
 * POST /v1/decide (libcurl), returned in the shape of a local decision so the gate's
 * output and exit codes are the same offline and centrally audited. */
#ifndef PV_REMOTE_H
#define PV_REMOTE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "decide.h"
#include "status.h"

struct remote;

/* What a remote decision's items point to; release with remote_result_fini after
 * decision_fini. */
struct remote_result {
    struct cfg_binding *bindings;
    struct vm_policy *policies;
    size_t n;
    char decision_id[40];
};

/* Prepares calls to 'base_url' (e.g. https://paved.example:8443; borrowed). 'token'
 * (borrowed) is sent as a bearer token; 'cacert' (may be NULL) names the CA file to
 * trust; plain http:// is refused unless 'is_insecure_http'. Returns PV_EINVAL with a
 * message for a bad URL. */
pv_status remote_open(struct remote **out, const char *base_url, const char *token,
                      const char *cacert, bool is_insecure_http, struct pv_err *err);
void remote_close(struct remote *r);

/* Sends one object for a decision. On PV_OK fills *d (decision_fini) and *res
 * (remote_result_fini). Returns PV_EIO for transport errors and PV_EINVAL for an
 * answer that is not a decision, with the server's message. */
pv_status remote_decide(struct remote *r, const cJSON *object, const char *namespace,
                        struct decision *d, struct remote_result *res, struct pv_err *err);

void remote_result_fini(struct remote_result *res);

#endif
