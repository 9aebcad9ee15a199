/* webhooks/jsonpatch.c: JSON Patch application on cJSON trees and base64 for answers. */
#include "jsonpatch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "xalloc.h"

#define POINTER_MAX_BYTES 4096

/* Decodes one reference token of a JSON Pointer ('~1' is '/', '~0' is '~') into 'out'
 * ('cap' bytes). Returns its length in the pointer, or -1 for a bad escape. */
static int next_token(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    int used = 0;

    while (p[used] != '\0' && p[used] != '/') {
        char c = p[used];

        if (c == '~') {
            if (p[used + 1] == '0')
                c = '~';
            else if (p[used + 1] == '1')
                c = '/';
            else
                return -1;
            used++;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = c;
        used++;
    }
    out[n] = '\0';
    return used;
}

/* Parses an array index token: digits only, no leading zero. */
static bool parse_index(const char *tok, int *out)
{
    char *end = NULL;
    long v;

    if (tok[0] < '0' || tok[0] > '9' || (tok[0] == '0' && tok[1] != '\0'))
        return false;
    v = strtol(tok, &end, 10);
    if (*end != '\0' || v > 1000000)
        return false;
    *out = (int)v;
    return true;
}

/* Finds the parent container of 'path' and its last token. */
static pv_status resolve(cJSON *doc, const char *path, cJSON **parent, char *last, size_t cap,
                         const char *what, struct pv_err *err)
{
    cJSON *cur = doc;
    const char *p = path;

    if (path[0] != '/')
        return pv_err_set(err, PV_EINVAL, "%s: path \"%s\" must start with '/'", what, path);
    for (;;) {
        int used;

        p++; /* the '/' */
        used = next_token(p, last, cap);
        if (used < 0)
            return pv_err_set(err, PV_EINVAL, "%s: path \"%s\" has a bad escape or is too long",
                              what, path);
        if (p[used] == '\0') {
            *parent = cur;
            return PV_OK;
        }
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, last);
        } else if (cJSON_IsArray(cur)) {
            int i;

            cur = parse_index(last, &i) ? cJSON_GetArrayItem(cur, i) : NULL;
        } else {
            cur = NULL;
        }
        if (cur == NULL)
            return pv_err_set(err, PV_EINVAL, "%s: path \"%s\": \"%s\" does not exist", what, path,
                              last);
        p += used;
    }
}

static pv_status apply_one(cJSON *doc, const cJSON *op, int idx, struct pv_err *err)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(op, "path");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
    char what[64];
    char last[POINTER_MAX_BYTES];
    cJSON *parent = NULL;
    bool is_add;
    bool is_replace;
    pv_status rc;

    snprintf(what, sizeof(what), "patch operation %d", idx);
    if (!cJSON_IsString(o) || !cJSON_IsString(path))
        return pv_err_set(err, PV_EINVAL, "%s needs \"op\" and \"path\" strings", what);
    is_add = strcmp(o->valuestring, "add") == 0;
    is_replace = strcmp(o->valuestring, "replace") == 0;
    if (!is_add && !is_replace && strcmp(o->valuestring, "remove") != 0)
        return pv_err_set(err, PV_EINVAL, "%s: op \"%s\" is not add, remove or replace", what,
                          o->valuestring);
    if ((is_add || is_replace) && value == NULL)
        return pv_err_set(err, PV_EINVAL, "%s (%s %s) needs a value", what, o->valuestring,
                          path->valuestring);
    if (path->valuestring[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "%s: replacing the whole document is not supported",
                          what);
    rc = resolve(doc, path->valuestring, &parent, last, sizeof(last), what, err);
    if (rc)
        return rc;
    if (cJSON_IsObject(parent)) {
        bool exists = cJSON_GetObjectItemCaseSensitive(parent, last) != NULL;

        if (!is_add && !exists)
            return pv_err_set(err, PV_EINVAL, "%s: %s %s: no such member", what, o->valuestring,
                              path->valuestring);
        if (!is_add && !is_replace) {
            cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
            return PV_OK;
        }
        if (exists)
            cJSON_ReplaceItemInObjectCaseSensitive(parent, last, cJSON_Duplicate(value, 1));
        else
            cJSON_AddItemToObject(parent, last, cJSON_Duplicate(value, 1));
        return PV_OK;
    }
    if (cJSON_IsArray(parent)) {
        int n = cJSON_GetArraySize(parent);
        int i = 0;

        if (is_add && strcmp(last, "-") == 0) {
            cJSON_AddItemToArray(parent, cJSON_Duplicate(value, 1));
            return PV_OK;
        }
        if (!parse_index(last, &i) || i > n || (!is_add && i == n))
            return pv_err_set(err, PV_EINVAL, "%s: %s %s: index out of range", what, o->valuestring,
                              path->valuestring);
        if (is_add)
            cJSON_InsertItemInArray(parent, i, cJSON_Duplicate(value, 1));
        else if (is_replace)
            cJSON_ReplaceItemInArray(parent, i, cJSON_Duplicate(value, 1));
        else
            cJSON_DeleteItemFromArray(parent, i);
        return PV_OK;
    }
    return pv_err_set(err, PV_EINVAL, "%s: %s %s: the parent is not an object or array", what,
                      o->valuestring, path->valuestring);
}

pv_status jsonpatch_apply(cJSON *doc, const cJSON *patch, struct pv_err *err)
{
    const cJSON *op;
    int i = 0;

    if (!cJSON_IsArray(patch))
        return pv_err_set(err, PV_EINVAL, "a JSON Patch must be an array of operations");
    cJSON_ArrayForEach(op, patch)
    {
        pv_status rc = apply_one(doc, op, i++, err);

        if (rc)
            return rc;
    }
    return PV_OK;
}

char *jsonpatch_base64(const char *s, size_t len)
{
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    int n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);

    out[n < 0 ? 0 : n] = '\0';
    return out;
}
