/* server/base/request.h: the normalised request of DESIGN.md, as C sees it before
 * lua/ turns it into the `req` table policies read. Every pointer is borrowed. */
#ifndef PV_REQUEST_H
#define PV_REQUEST_H

#include <stdbool.h>

#include <cjson/cJSON.h>

struct pv_request {
    const char *kind;      /* "deploy" | "provision" | "credential" */
    const char *operation; /* "CREATE" | "UPDATE" | "DELETE" | "CONNECT" */
    const char *source;    /* "admission" | "ci" | "api" */
    const char *namespace; /* effective namespace, or NULL */
    bool is_dry_run;
    const cJSON *object;     /* the resource; never NULL */
    const cJSON *old_object; /* previous version on UPDATE, or NULL */
    const cJSON *subject;    /* {team, service, env, actor, groups} or NULL */
    const cJSON *inventory;  /* array of existing objects, or NULL */
    const cJSON *user_info;  /* {username, groups} or NULL */
};

#endif
