/* webhooks/admission.h: AdmissionReview admission.k8s.io/v1 in and out: turns a review
 * into the normalised request of DESIGN.md and a decision into the review response. */
#ifndef PV_ADMISSION_H
#define PV_ADMISSION_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "request.h"
#include "status.h"

/* A decoded review. Every pointer borrows from the review's cJSON tree. */
struct admission_req {
    const char *uid;
    const char *api_version; /* of the review, echoed in the response */
    const char *operation;
    const char *namespace;
    const char *name;
    const char *sub_resource;
    const char *username;
    const cJSON *object;     /* object, or oldObject on DELETE */
    const cJSON *old_object; /* oldObject on UPDATE, else NULL */
    const cJSON *user_info;
    bool is_dry_run;
};

/* Decodes 'review' (borrowed). On PV_OK fills *out. Returns PV_EINVAL with a message
 * for a body that is not an AdmissionReview of admission.k8s.io/v1 with a request, a
 * uid and an operation. When the uid could be read it is set in out->uid even on
 * failure, so the caller can still answer with a well-formed review. */
pv_status admission_decode(const cJSON *review, struct admission_req *out, struct pv_err *err);

/* Fills 'req' (the engine's view) from 'ar'; 'subject' is borrowed. */
void admission_to_request(const struct admission_req *ar, const cJSON *subject,
                          struct pv_request *req);

/* A response under construction: the caller sets the fields and calls
 * admission_response_json. */
struct admission_resp {
    const char *uid;
    const char *api_version;
    bool is_allowed;
    int status_code;     /* used when denied, e.g. 403 */
    const char *message; /* denial message, or NULL */
    const char *const *warnings;
    size_t n_warnings;
    const char *decision_id; /* auditAnnotations["paved.dev/decision-id"] */
    const char *path;        /* auditAnnotations["paved.dev/path"] */
    const char *patch_b64;   /* JSONPatch, base64; NULL for none */
};

/* Returns the AdmissionReview response body; caller frees with free(). */
char *admission_response_json(const struct admission_resp *r);

#endif
