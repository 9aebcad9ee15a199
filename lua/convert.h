/* lua/convert.h: cJSON <-> Lua values. Objects become tables keyed by member name
 * (null members are left out), arrays become sequences (null elements become the
 * light userdata convert_null()), integral numbers become Lua integers. */
#ifndef PV_CONVERT_H
#define PV_CONVERT_H

#include <stdbool.h>
#include <stddef.h>

#include <lua.h>

#include <cjson/cJSON.h>

#define CONVERT_MAX_DEPTH 512

/* Pushes 'j' (borrowed) as a Lua value. Raises a Lua error past CONVERT_MAX_DEPTH
 * levels or when memory runs out, so call it in protected mode.  [-0, +1, e] */
void convert_push(lua_State *L, const cJSON *j);

/* Like convert_push for a Kubernetes object, leaving out metadata.managedFields: the
 * API server's field-ownership bookkeeping, often the largest part of an admission
 * request and never a policy's business.  [-0, +1, e] */
void convert_push_resource(lua_State *L, const cJSON *j);

/* True when the Lua value at 'idx' is still what convert_push (or, with
 * 'is_resource', convert_push_resource) made of 'j': same types, keys, lengths and
 * values, and no metatable set on any table. On a difference, writes its path
 * relative to the value (".spec.containers[1].image", or "" for the value itself)
 * into 'path' ('cap' bytes). Never raises; uses at most 3 stack slots per level.
 * [-0, +0, -] */
bool convert_same(lua_State *L, int idx, const cJSON *j, bool is_resource, char *path, size_t cap);

/* The light userdata standing for JSON null inside arrays. */
void *convert_null(void);

/* Converts the Lua value at 'idx' to JSON. Tables with only keys 1..n become arrays,
 * other tables objects (string keys only). Raises on functions, userdata other than
 * convert_null(), non-string keys, cycles or depth past CONVERT_MAX_DEPTH. Returns a
 * tree the caller frees with cJSON_Delete; call in protected mode and anchor the
 * result (e.g. in a userdata) if a later call can raise.  [-0, +0, e] */
cJSON *convert_to_json(lua_State *L, int idx);

#endif
