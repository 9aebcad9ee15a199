/* webhooks/admission.c: AdmissionReview decoding and response encoding. */
#include "admission.h"

#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"

pv_status admission_decode(const cJSON *review, struct admission_req *out, struct pv_err *err)
{
    const cJSON *req;
    const cJSON *dry;
    const char *kind;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(review))
        return pv_err_set(err, PV_EINVAL, "the body must be an AdmissionReview object");
    req = cJSON_GetObjectItemCaseSensitive(review, "request");
    out->uid = json_str(req, "uid", NULL);
    out->api_version = json_str(review, "apiVersion", NULL);
    kind = json_str(review, "kind", NULL);
    if (kind == NULL || strcmp(kind, "AdmissionReview") != 0)
        return pv_err_set(err, PV_EINVAL, "kind must be AdmissionReview");
    if (out->api_version == NULL || strcmp(out->api_version, "admission.k8s.io/v1") != 0)
        return pv_err_set(err, PV_EINVAL,
                          "apiVersion must be admission.k8s.io/v1 (set admissionReviewVersions: "
                          "[v1] in the webhook configuration)");
    if (!cJSON_IsObject(req))
        return pv_err_set(err, PV_EINVAL, "the review has no request");
    if (out->uid == NULL || out->uid[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "request.uid is missing");
    out->operation = json_str(req, "operation", NULL);
    if (out->operation == NULL ||
        (strcmp(out->operation, "CREATE") != 0 && strcmp(out->operation, "UPDATE") != 0 &&
         strcmp(out->operation, "DELETE") != 0 && strcmp(out->operation, "CONNECT") != 0))
        return pv_err_set(err, PV_EINVAL,
                          "request.operation must be CREATE, UPDATE, DELETE or CONNECT");
    out->namespace = json_str(req, "namespace", NULL);
    out->name = json_str(req, "name", NULL);
    out->sub_resource = json_str(req, "subResource", NULL);
    out->user_info = cJSON_GetObjectItemCaseSensitive(req, "userInfo");
    out->username = json_str(out->user_info, "username", NULL);
    dry = cJSON_GetObjectItemCaseSensitive(req, "dryRun");
    out->is_dry_run = cJSON_IsTrue(dry);
    out->object = cJSON_GetObjectItemCaseSensitive(req, "object");
    out->old_object = cJSON_GetObjectItemCaseSensitive(req, "oldObject");
    /* DELETE carries the object being deleted as oldObject. */
    if (!cJSON_IsObject(out->object) && strcmp(out->operation, "DELETE") == 0 &&
        cJSON_IsObject(out->old_object)) {
        out->object = out->old_object;
        out->old_object = NULL;
    }
    if (!cJSON_IsObject(out->old_object))
        out->old_object = NULL;
    if (!cJSON_IsObject(out->object))
        out->object = NULL;
    return PV_OK;
}

void admission_to_request(const struct admission_req *ar, const cJSON *subject,
                          struct pv_request *req)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(ar->object, "metadata");
    const char *ns = json_str(md, "namespace", NULL);

    memset(req, 0, sizeof(*req));
    req->kind = "deploy";
    req->operation = ar->operation;
    req->source = "admission";
    req->namespace = ar->namespace != NULL && ar->namespace[0] != '\0' ? ar->namespace : ns;
    req->is_dry_run = ar->is_dry_run;
    req->object = ar->object;
    req->old_object = ar->old_object;
    req->subject = subject;
    req->user_info = ar->user_info;
}

char *admission_response_json(const struct admission_resp *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *resp;
    cJSON *ann;
    char *text;

    cJSON_AddStringToObject(root, "apiVersion",
                            r->api_version != NULL ? r->api_version : "admission.k8s.io/v1");
    cJSON_AddStringToObject(root, "kind", "AdmissionReview");
    resp = cJSON_AddObjectToObject(root, "response");
    cJSON_AddStringToObject(resp, "uid", r->uid != NULL ? r->uid : "");
    cJSON_AddBoolToObject(resp, "allowed", r->is_allowed);
    if (!r->is_allowed || r->message != NULL) {
        cJSON *st = cJSON_AddObjectToObject(resp, "status");

        if (!r->is_allowed) {
            cJSON_AddNumberToObject(st, "code", r->status_code != 0 ? r->status_code : 403);
            cJSON_AddStringToObject(st, "reason",
                                    r->status_code >= 500 ? "InternalError" : "Forbidden");
        }
        if (r->message != NULL)
            cJSON_AddStringToObject(st, "message", r->message);
    }
    if (r->n_warnings > 0) {
        cJSON *w = cJSON_AddArrayToObject(resp, "warnings");

        for (size_t i = 0; i < r->n_warnings; i++)
            cJSON_AddItemToArray(w, cJSON_CreateString(r->warnings[i]));
    }
    if (r->patch_b64 != NULL) {
        cJSON_AddStringToObject(resp, "patchType", "JSONPatch");
        cJSON_AddStringToObject(resp, "patch", r->patch_b64);
    }
    if (r->decision_id != NULL) {
        ann = cJSON_AddObjectToObject(resp, "auditAnnotations");
        cJSON_AddStringToObject(ann, "paved.dev/decision-id", r->decision_id);
        if (r->path != NULL)
            cJSON_AddStringToObject(ann, "paved.dev/path", r->path);
    }
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}
