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

/* cJSON's type tests are calls into the library; conversion and the
 * isolation walk run on every request, so
 * test the type bits directly (cJSON.h documents them). */
static inline int jtype(const cJSON *j)
{
    return j->type & 0xFF;
}

static void push_value(lua_State *L, const cJSON *j, int depth)
{
    const cJSON *c;

    if (depth > CONVERT_MAX_DEPTH) {
        luaL_error(L, "JSON nested deeper than %d levels", CONVERT_MAX_DEPTH);
        return;
    }
    switch (jtype(j)) {
    case cJSON_Object: {
        int n = 0;

        for (c = j->child; c != NULL; c = c->next)
            n++;
        luaL_checkstack(L, 3, "converting JSON");
        lua_createtable(L, 0, n);
        for (c = j->child; c != NULL; c = c->next) {
            if (jtype(c) == cJSON_NULL || c->string == NULL)
                continue;
            /* pushlstring + rawset: no metamethods to consult, and no trip through
             * the C-string cache that lua_setfield keys go through. */
            lua_pushlstring(L, c->string, strlen(c->string));
            push_value(L, c, depth + 1);
            lua_rawset(L, -3);
        }
        return;
    }
    case cJSON_Array: {
        int n = 0;
        lua_Integer i = 1;

        for (c = j->child; c != NULL; c = c->next)
            n++;
        luaL_checkstack(L, 3, "converting JSON");
        lua_createtable(L, n, 0);
        for (c = j->child; c != NULL; c = c->next) {
            push_value(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
        return;
    }
    case cJSON_String:
        lua_pushlstring(L, j->valuestring, strlen(j->valuestring));
        return;
    case cJSON_Number: {
        double d = j->valuedouble;

        if (isfinite(d) && d == floor(d) && fabs(d) <= 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
        return;
    }
    case cJSON_True:
    case cJSON_False:
        lua_pushboolean(L, jtype(j) == cJSON_True);
        return;
    case cJSON_Raw:
        lua_pushstring(L, j->valuestring);
        return;
    default:
        lua_pushlightuserdata(L, convert_null());
        return;
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

/* ---- Lua == JSON ---- */

struct same_ctx {
    char *path;
    size_t cap;
};

/* Prefixes 'seg' to the path built so far (the walk records it on the way out). */
static void path_prepend(struct same_ctx *c, const char *seg)
{
    size_t seg_len = strlen(seg);
    size_t len = strlen(c->path);

    if (seg_len + len + 1 > c->cap)
        return;
    memmove(c->path + seg_len, c->path, len + 1);
    memcpy(c->path, seg, seg_len);
}

/* 'skip' names a member of 'j' left out of the comparison; 'md' names the child of
 * 'j' whose own "managedFields" is left out (a resource's metadata). */
static bool same_value(lua_State *L, int idx, const cJSON *j, int depth, const char *skip,
                       const cJSON *md, struct same_ctx *c);

static size_t count_keys(lua_State *L, int idx)
{
    size_t n = 0;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        n++;
    }
    return n;
}

/* Walks the Lua table once with lua_next and finds each key among the JSON members
 * (objects are small, and this interns no string), then checks that every member
 * was seen. */
static bool same_object(lua_State *L, int idx, const cJSON *j, int depth, const char *skip,
                        const cJSON *md, struct same_ctx *c)
{
    size_t n_json = 0;
    size_t n_lua = 0;

    for (const cJSON *ch = j->child; ch != NULL; ch = ch->next)
        if (jtype(ch) != cJSON_NULL && ch->string != NULL &&
            (skip == NULL || strcmp(ch->string, skip) != 0))
            n_json++;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        const cJSON *ch = NULL;
        size_t klen;
        const char *k;

        n_lua++;
        if (lua_type(L, -2) == LUA_TSTRING) {
            k = lua_tolstring(L, -2, &klen);
            for (ch = j->child; ch != NULL; ch = ch->next)
                if (ch->string != NULL && ch->string[0] == k[0] && jtype(ch) != cJSON_NULL &&
                    strncmp(ch->string, k, klen) == 0 && ch->string[klen] == '\0')
                    break;
        }
        if (ch == NULL || (skip != NULL && strcmp(ch->string, skip) == 0)) {
            lua_pop(L, 2);
            path_prepend(c, " (a key was added)");
            return false;
        }
        if (!same_value(L, lua_gettop(L), ch, depth + 1, ch == md ? "managedFields" : NULL, NULL,
                        c)) {
            char seg[300];

            lua_pop(L, 2);
            snprintf(seg, sizeof(seg), ".%s", ch->string);
            path_prepend(c, seg);
            return false;
        }
        lua_pop(L, 1);
    }
    if (n_lua != n_json) {
        path_prepend(c, " (a key was removed)");
        return false;
    }
    return true;
}

static bool same_array(lua_State *L, int idx, const cJSON *j, int depth, struct same_ctx *c)
{
    lua_Integer i = 0;

    for (const cJSON *ch = j->child; ch != NULL; ch = ch->next) {
        bool is_same;

        lua_rawgeti(L, idx, ++i);
        is_same = same_value(L, lua_gettop(L), ch, depth + 1, NULL, NULL, c);
        lua_pop(L, 1);
        if (!is_same) {
            char seg[32];

            snprintf(seg, sizeof(seg), "[%lld]", (long long)i);
            path_prepend(c, seg);
            return false;
        }
    }
    if (count_keys(L, idx) != (size_t)i) {
        path_prepend(c, " (an element was added)");
        return false;
    }
    return true;
}

static bool same_value(lua_State *L, int idx, const cJSON *j, int depth, const char *skip,
                       const cJSON *md, struct same_ctx *c)
{
    switch (jtype(j)) {
    case cJSON_Object:
    case cJSON_Array:
        if (depth > CONVERT_MAX_DEPTH || !lua_checkstack(L, 4) || lua_type(L, idx) != LUA_TTABLE)
            return false;
        if (lua_getmetatable(L, idx)) {
            lua_pop(L, 1);
            path_prepend(c, " (a metatable was set)");
            return false;
        }
        if (jtype(j) == cJSON_Object)
            return same_object(L, idx, j, depth, skip, md, c);
        return same_array(L, idx, j, depth, c);
    case cJSON_String:
    case cJSON_Raw: {
        size_t len;
        const char *s;

        if (lua_type(L, idx) != LUA_TSTRING)
            return false;
        s = lua_tolstring(L, idx, &len);
        return len == strlen(j->valuestring) && memcmp(s, j->valuestring, len) == 0;
    }
    case cJSON_Number:
        return lua_type(L, idx) == LUA_TNUMBER && lua_tonumber(L, idx) == j->valuedouble;
    case cJSON_True:
    case cJSON_False:
        return lua_type(L, idx) == LUA_TBOOLEAN &&
               lua_toboolean(L, idx) == (jtype(j) == cJSON_True);
    default:
        return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == convert_null();
    }
}

bool convert_same(lua_State *L, int idx, const cJSON *j, bool is_resource, char *path, size_t cap)
{
    struct same_ctx c = {path, cap};
    const cJSON *md = is_resource ? cJSON_GetObjectItemCaseSensitive(j, "metadata") : NULL;

    if (cap > 0)
        path[0] = '\0';
    return same_value(L, lua_absindex(L, idx), j, 0, NULL, md, &c);
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
