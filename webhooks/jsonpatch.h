/* webhooks/jsonpatch.h: RFC 6902 JSON Patch (add, remove, replace) applied to a cJSON
 * document, used to chain mutating policies and to check the patch a mutating
 * webhook answers with. */
#ifndef PV_JSONPATCH_H
#define PV_JSONPATCH_H

#include <cjson/cJSON.h>

#include "status.h"

/* Applies the operations of 'patch' (a JSON array, borrowed) to 'doc' in place, in
 * order. Supports "add" (object member or array index, "-" appends), "remove" and
 * "replace"; every operation needs "path" (a JSON Pointer, RFC 6901) and, for add and
 * replace, "value". Returns PV_OK, or PV_EINVAL naming the operation (its index and
 * path) and why; operations before the failing one stay applied, so apply to a copy
 * when that matters. */
pv_status jsonpatch_apply(cJSON *doc, const cJSON *patch, struct pv_err *err);

/* Returns 's' base64-encoded (standard alphabet, padded); caller frees with free(). */
char *jsonpatch_base64(const char *s, size_t len);

#endif
