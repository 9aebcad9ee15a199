/* lua/convert.c: cJSON <-> Lua conversion for requests, params and policy results. */
#include "convert.h"

#include <math.h>
#include <string.h>

#include <lauxlib.h>

static char null_sentinel;

void *convert_null(void)
{
    return &null_sentinel;
}

static void push_value(lua_State *L, const cJSON *j, int depth)
{
    if (depth > CONVERT_MAX_DEPTH) {
        luaL_error(L, "JSON nested deeper than %d levels", CONVERT_MAX_DEPTH);
        return;
    }
    if (cJSON_IsObject(j)) {
        int n = 0;
        const cJSON *c;

        for (c = j->child; c != NULL; c = c->next)
            n++;
        luaL_checkstack(L, 3, "converting JSON");
        lua_createtable(L, 0, n);
        for (c = j->child; c != NULL; c = c->next) {
            if (cJSON_IsNull(c) || c->string == NULL)
                continue;
            /* pushlstring + rawset: no metamethods to consult, and no trip through
             * the C-string cache that lua_setfield keys go through. */
            lua_pushlstring(L, c->string, strlen(c->string));
            push_value(L, c, depth + 1);
            lua_rawset(L, -3);
        }
    } else if (cJSON_IsArray(j)) {
        int n = cJSON_GetArraySize(j);
        lua_Integer i = 1;
        const cJSON *c;

        luaL_checkstack(L, 3, "converting JSON");
        lua_createtable(L, n, 0);
        for (c = j->child; c != NULL; c = c->next) {
            push_value(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
    } else if (cJSON_IsString(j)) {
        lua_pushlstring(L, j->valuestring, strlen(j->valuestring));
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;

        if (isfinite(d) && d == floor(d) && fabs(d) <= 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if (cJSON_IsRaw(j)) {
        lua_pushstring(L, j->valuestring);
    } else {
        lua_pushlightuserdata(L, convert_null());
    }
}

void convert_push(lua_State *L, const cJSON *j)
{
    push_value(L, j, 0);
}

void convert_push_resource(lua_State *L, const cJSON *j)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const cJSON *c;
    int n = 0;

    if (!cJSON_IsObject(j) || !cJSON_IsObject(md) ||
        cJSON_GetObjectItemCaseSensitive(md, "managedFields") == NULL) {
        push_value(L, j, 0);
        return;
    }
    for (c = j->child; c != NULL; c = c->next)
        n++;
    luaL_checkstack(L, 4, "converting JSON");
    lua_createtable(L, 0, n);
    for (c = j->child; c != NULL; c = c->next) {
        if (cJSON_IsNull(c) || c->string == NULL)
            continue;
        if (c == md) {
            const cJSON *m;

            lua_createtable(L, 0, 8);
            for (m = md->child; m != NULL; m = m->next) {
                if (cJSON_IsNull(m) || m->string == NULL || strcmp(m->string, "managedFields") == 0)
                    continue;
                push_value(L, m, 2);
                lua_setfield(L, -2, m->string);
            }
        } else {
            push_value(L, c, 1);
        }
        lua_setfield(L, -2, c->string);
    }
}

/* ---- Lua -> JSON ---- */

/* The result tree is anchored in a userdata with __gc so that a Lua error part-way
 * through frees it. */
struct anchor {
    cJSON *root;
};

static int anchor_gc(lua_State *L)
{
    struct anchor *a = lua_touserdata(L, 1);

    cJSON_Delete(a->root);
    a->root = NULL;
    return 0;
}

static int is_sequence(lua_State *L, int idx, lua_Integer *n_out)
{
    lua_Integer n = 0;
    lua_Integer max = 0;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
            lua_pop(L, 1);
            return 0;
        }
        if (lua_tointeger(L, -1) > max)
            max = lua_tointeger(L, -1);
        n++;
    }
    *n_out = n;
    return n > 0 && max == n;
}

/* Creates the node for the value at 'idx' without its children. */
static cJSON *new_node(lua_State *L, int idx, int depth)
{
    lua_Integer n = 0;

    if (depth > CONVERT_MAX_DEPTH)
        luaL_error(L, "value nested deeper than %d levels (a cycle?)", CONVERT_MAX_DEPTH);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return cJSON_CreateNull();
    case LUA_TBOOLEAN:
        return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return cJSON_CreateNumber((double)lua_tointeger(L, idx));
        return cJSON_CreateNumber(lua_tonumber(L, idx));
    case LUA_TSTRING:
        return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TTABLE:
        return is_sequence(L, idx, &n) ? cJSON_CreateArray() : cJSON_CreateObject();
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == convert_null())
            return cJSON_CreateNull();
        break;
    default:
        break;
    }
    luaL_error(L, "cannot convert a %s to JSON", luaL_typename(L, idx));
    return NULL;
}

/* Fills the children of 'node' (already linked into the anchored tree, so a raise
 * part-way frees it) from the table at 'idx'. */
static void fill(lua_State *L, int idx, int depth, cJSON *node)
{
    luaL_checkstack(L, 4, "converting to JSON");
    if (cJSON_IsArray(node)) {
        for (lua_Integer i = 1;; i++) {
            cJSON *child;

            if (lua_rawgeti(L, idx, i) == LUA_TNIL) {
                lua_pop(L, 1);
                return;
            }
            child = new_node(L, lua_gettop(L), depth + 1);
            cJSON_AddItemToArray(node, child);
            if (lua_istable(L, -1))
                fill(L, lua_gettop(L), depth + 1, child);
            lua_pop(L, 1);
        }
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        cJSON *child;

        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "cannot convert a table with a %s key to JSON", luaL_typename(L, -2));
        child = new_node(L, lua_gettop(L), depth + 1);
        cJSON_AddItemToObject(node, lua_tostring(L, -2), child);
        if (lua_istable(L, -1))
            fill(L, lua_gettop(L), depth + 1, child);
        lua_pop(L, 1);
    }
}

cJSON *convert_to_json(lua_State *L, int idx)
{
    struct anchor *a;
    cJSON *root;

    idx = lua_absindex(L, idx);
    a = lua_newuserdatauv(L, sizeof(*a), 0);
    a->root = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, anchor_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    a->root = new_node(L, idx, 0);
    if (lua_istable(L, idx))
        fill(L, idx, 0, a->root);
    root = a->root;
    a->root = NULL;
    lua_pop(L, 1);
    return root;
}
