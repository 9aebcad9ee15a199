/* lua/api.c: C functions of the `paved` module. Owns the per-state cache of compiled
 * PCRE2 patterns (the corpus's regexes are RE2 syntax, which PCRE2 accepts). */
#include "api.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <lauxlib.h>

#include "convert.h"
#include "vm.h"

#define REGEX_CACHE_MAX 512
#define REGEX_MATCH_LIMIT 1000000u
#define REGEX_DEPTH_LIMIT 10000u

static const char CACHE_KEY[] = "paved.regex.cache";
static const char CODE_MT[] = "paved.regex.code";
static const char COUNT_KEY[] = "paved.regex.count";

struct regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
};

static int regex_gc(lua_State *L)
{
    struct regex *r = luaL_checkudata(L, 1, CODE_MT);

    pcre2_match_context_free(r->mctx);
    pcre2_match_data_free(r->md);
    pcre2_code_free(r->code);
    r->code = NULL;
    r->md = NULL;
    r->mctx = NULL;
    return 0;
}

/* Pushes the cache table, creating it on first use.  [-0, +1, e] */
static void push_cache(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, CACHE_KEY) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 16);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
}

/* Returns the compiled form of the pattern at index 1, compiling and caching it
 * on first use. Raises with PCRE2's message and offset on a bad pattern. */
static struct regex *compiled(lua_State *L)
{
    size_t len;
    const char *pat = luaL_checklstring(L, 1, &len);
    struct regex *r;
    int errcode;
    PCRE2_SIZE erroff;
    lua_Integer n;

    push_cache(L);
    if (lua_getfield(L, -1, pat) == LUA_TUSERDATA) {
        r = lua_touserdata(L, -1);
        lua_pop(L, 2);
        return r;
    }
    lua_pop(L, 1);
    /* The userdata exists before anything is allocated outside Lua, so a raise
     * below never leaks: __gc frees what was created. */
    r = lua_newuserdatauv(L, sizeof(*r), 0);
    r->code = NULL;
    r->md = NULL;
    r->mctx = NULL;
    luaL_setmetatable(L, CODE_MT);
    r->code = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &errcode,
                            &erroff, NULL);
    if (r->code == NULL) {
        PCRE2_UCHAR msg[160];

        pcre2_get_error_message(errcode, msg, sizeof(msg));
        luaL_error(L, "invalid regular expression \"%s\" at offset %d: %s", pat, (int)erroff,
                   (const char *)msg);
        return NULL;
    }
    r->md = pcre2_match_data_create_from_pattern(r->code, NULL);
    r->mctx = pcre2_match_context_create(NULL);
    if (r->md == NULL || r->mctx == NULL) {
        luaL_error(L, "not enough memory for regular expression");
        return NULL;
    }
    pcre2_set_match_limit(r->mctx, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, REGEX_DEPTH_LIMIT);
    /* A bounded cache: a policy building patterns from input cannot grow it forever.
     * stack: cache | regex <- top */
    lua_getfield(L, LUA_REGISTRYINDEX, COUNT_KEY);
    n = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (n >= REGEX_CACHE_MAX) {
        lua_createtable(L, 0, 16);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, CACHE_KEY);
        lua_replace(L, -3);
        n = 0;
    }
    lua_pushinteger(L, n + 1);
    lua_setfield(L, LUA_REGISTRYINDEX, COUNT_KEY);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, pat);
    lua_pop(L, 2);
    return r;
}

/* paved.regex(pattern, subject) -> bool  [-0, +1, e]
 * Searches 'subject' for 'pattern' (unanchored, like RE2's MatchString). */
static int l_regex(lua_State *L)
{
    struct regex *r = compiled(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int rc = pcre2_match(r->code, (PCRE2_SPTR)s, len, 0, 0, r->md, r->mctx);

    if (rc >= 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (rc == PCRE2_ERROR_NOMATCH) {
        lua_pushboolean(L, 0);
        return 1;
    }
    {
        PCRE2_UCHAR msg[160];

        pcre2_get_error_message(rc, msg, sizeof(msg));
        return luaL_error(L, "regular expression \"%s\": %s", lua_tostring(L, 1),
                          (const char *)msg);
    }
}

/* paved.regex_match(pattern, subject) -> string...|nil  [-0, +n, e]
 * The capture groups of the first match (nil for a group that did not take part),
 * or the whole match when the pattern has no groups; nil when nothing matches. */
static int l_regex_match(lua_State *L)
{
    struct regex *r = compiled(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    int rc = pcre2_match(r->code, (PCRE2_SPTR)s, len, 0, 0, r->md, r->mctx);
    PCRE2_SIZE *ov;
    uint32_t groups;

    if (rc == PCRE2_ERROR_NOMATCH) {
        lua_pushnil(L);
        return 1;
    }
    if (rc < 0) {
        PCRE2_UCHAR msg[160];

        pcre2_get_error_message(rc, msg, sizeof(msg));
        return luaL_error(L, "regular expression \"%s\": %s", lua_tostring(L, 1),
                          (const char *)msg);
    }
    ov = pcre2_get_ovector_pointer(r->md);
    pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (groups == 0) {
        lua_pushlstring(L, s + ov[0], ov[1] - ov[0]);
        return 1;
    }
    luaL_checkstack(L, (int)groups, "too many capture groups");
    for (uint32_t g = 1; g <= groups; g++) {
        if ((int)g >= rc || ov[2 * g] == PCRE2_UNSET)
            lua_pushnil(L);
        else
            lua_pushlstring(L, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    }
    return (int)groups;
}

/* where(fn) -> "file:line" where the Lua function 'fn' is defined  [-0, +1, e] */
static int l_where(lua_State *L)
{
    lua_Debug ar;

    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    if (!lua_getinfo(L, ">S", &ar) || ar.linedefined <= 0) {
        lua_pushliteral(L, "?");
        return 1;
    }
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.linedefined);
    return 1;
}

static const char JSON_MT[] = "paved.json";

static int json_gc(lua_State *L)
{
    cJSON **j = luaL_checkudata(L, 1, JSON_MT);

    cJSON_Delete(*j);
    *j = NULL;
    return 0;
}

/* paved.quota(team) -> table|nil  [-0, +1, e] */
static int l_quota(lua_State *L)
{
    const char *team = luaL_checkstring(L, 1);
    const struct vm_host *h;
    cJSON **box;

    lua_getfield(L, LUA_REGISTRYINDEX, API_HOST_KEY);
    h = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (h == NULL || h->quota == NULL) {
        lua_pushnil(L);
        return 1;
    }
    /* The answer is owned by a userdata, so a conversion that raises cannot leak it. */
    box = lua_newuserdatauv(L, sizeof(*box), 0);
    *box = NULL;
    luaL_setmetatable(L, JSON_MT);
    *box = h->quota(h->arg, team);
    if (*box == NULL) {
        lua_pushnil(L);
        return 1;
    }
    convert_push(L, *box);
    cJSON_Delete(*box);
    *box = NULL;
    return 1;
}

void api_push(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"quota", l_quota}, {"where", l_where}, {"regex", l_regex}, {"regex_match", l_regex_match},
        {NULL, NULL},
    };

    if (luaL_newmetatable(L, CODE_MT)) {
        lua_pushcfunction(L, regex_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, JSON_MT)) {
        lua_pushcfunction(L, json_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_pushlightuserdata(L, convert_null());
    lua_setfield(L, -2, "null");
}
