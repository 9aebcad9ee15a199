/* lua/vm.c: the only place a lua_State is created. Owns the sandbox (allowlisted
 * libraries, read-only globals, text-only chunks), the counting allocator with its
 * memory cap, the instruction/deadline hook, and the calls into lua/engine.lua. */
#include "vm.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "api.h"
#include "convert.h"
#include "log.h"
#include "xalloc.h"

#define HOOK_EVERY 1000
#define LOAD_MEMORY_MAX ((size_t)256 << 20)

struct vm {
    lua_State *L;
    /* Allocator accounting. */
    size_t used;
    size_t limit;
    /* Limits of the current evaluation. */
    struct vm_limits lim;
    uint64_t instructions;
    uint64_t deadline_ns;
    enum vm_outcome tripped; /* VM_OK, or the limit that stopped the evaluation */
    bool refused_once;       /* the last allocation was refused */
    size_t baseline;         /* bytes held after loading bundle and bindings */
    bool in_eval;
    /* Collector target while a binding runs. */
    struct vm_result *cur;
    /* Registry references. */
    int ref_eval;                     /* engine.eval */
    int ref_mutate;                   /* engine.mutate */
    int ref_violation;                /* the violation collector closure */
    int ref_msgh;                     /* error handler */
    int ref_inventory;                /* shared inventory table, or LUA_NOREF */
    int ref_req;                      /* the request's data table (behind the read-only proxy) */
    const struct pv_request *cur_req; /* borrowed from vm_begin to vm_end */
    cJSON **params_snap;              /* n_bindings snapshots of the params, NULL where not JSON */
    size_t n_bindings;
    const struct vm_policy **binding_policies; /* n_bindings entries */
    volatile sig_atomic_t is_hooked; /* the count hook is set (also by the timer signal) */
    struct vm_policy *policies;
    size_t n_policies;
    struct vm_host host; /* its address is in the registry (API_HOST_KEY) */
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Allocator and hook ---- */

static void hook(lua_State *L, lua_Debug *ar);

static void trip(struct vm *vm, enum vm_outcome why)
{
    if (vm->tripped == VM_OK)
        vm->tripped = why;
    /* From now on every instruction raises, so no pcall in the policy can keep
     * running after the limit. */
    lua_sethook(vm->L, hook, LUA_MASKCOUNT, 1);
}

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct vm *vm = ud;
    size_t old = ptr != NULL ? osize : 0;

    if (nsize == 0) {
        free(ptr);
        vm->used -= old;
        return NULL;
    }
    if (nsize > old && vm->used + (nsize - old) > vm->limit) {
        /* Lua answers a refusal with a full collection and one retry; only a
         * refused retry means the policy itself holds too much. Then requests are
         * granted within a slack of an eighth of the cap until the hook raises at
         * the next instruction, so the error names the policy's line (a memory
         * error carries none). */
        if (vm->in_eval && vm->refused_once) {
            trip(vm, VM_NOMEM);
            if (vm->used + (nsize - old) <= vm->limit + vm->lim.max_memory / 8)
                goto grant;
        }
        vm->refused_once = true;
        return NULL;
    }
grant:
    vm->refused_once = false;
    ptr = realloc(ptr, nsize);
    if (ptr == NULL)
        return NULL;
    vm->used = vm->used - old + nsize;
    return ptr;
}

static struct vm *vm_of(lua_State *L)
{
    void *ud = NULL;

    lua_getallocf(L, &ud);
    return ud;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    struct vm *vm = vm_of(L);

    if (!vm->in_eval)
        return;
    if (vm->tripped == VM_OK) {
        vm->instructions += HOOK_EVERY;
        if (vm->instructions > vm->lim.max_instructions)
            trip(vm, VM_BUDGET);
        else if (now_ns() > vm->deadline_ns)
            trip(vm, VM_TIMEOUT);
        else
            return;
    }
    /* Report where the policy was, not where its caller is (luaL_error's level 1). */
    if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);
    else
        lua_pushliteral(L, "");
    switch (vm->tripped) {
    case VM_BUDGET:
        lua_pushfstring(L, "instruction budget of %d exceeded", (int)vm->lim.max_instructions);
        break;
    case VM_TIMEOUT:
        lua_pushfstring(L, "deadline of %d ms exceeded", (int)vm->lim.timeout_ms);
        break;
    case VM_NOMEM:
        lua_pushfstring(L, "memory limit of %d KiB exceeded", (int)(vm->lim.max_memory >> 10));
        break;
    case VM_SKIPPED:
    case VM_OK:
    case VM_ERROR:
        lua_pushliteral(L, "limit exceeded");
        break;
    }
    lua_concat(L, 2);
    lua_error(L);
}

/* ---- The grace timer ---- */

/* Each thread that evaluates has one POSIX timer signalling that thread. While a
 * request runs, 'running' names its vm; the handler arms the count hook, which
 * lua_sethook allows from a signal handler. */
static __thread struct vm *running;
static __thread timer_t grace_timer;
static __thread int grace_state; /* 0: not created, 1: ready, -1: unavailable */
static pthread_once_t grace_once = PTHREAD_ONCE_INIT;
static bool grace_signal_ok;

static void on_grace(int sig)
{
    struct vm *vm = running;

    (void)sig;
    if (vm != NULL) {
        vm->is_hooked = 1;
        lua_sethook(vm->L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    }
}

static void install_grace_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_grace;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    grace_signal_ok = sigaction(SIGRTMIN + 3, &sa, NULL) == 0;
}

/* Arms the timer for this request, or the hook at once when no timer can be had. */
static void grace_start(struct vm *vm)
{
    struct itimerspec its;
    uint32_t us;

    if (grace_state == 0) {
        struct sigevent sev;

        pthread_once(&grace_once, install_grace_handler);
        memset(&sev, 0, sizeof(sev));
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = SIGRTMIN + 3;
        sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        grace_state =
            grace_signal_ok && timer_create(CLOCK_MONOTONIC, &sev, &grace_timer) == 0 ? 1 : -1;
        if (grace_state < 0)
            log_msg(LOG_WARN, "vm", "no grace timer: policies run with the count hook always on");
    }
    running = vm;
    if (grace_state < 0) {
        vm->is_hooked = 1;
        lua_sethook(vm->L, hook, LUA_MASKCOUNT, HOOK_EVERY);
        return;
    }
    memset(&its, 0, sizeof(its));
    us = vm->lim.grace_us != 0 ? vm->lim.grace_us : VM_GRACE_US;
    its.it_value.tv_sec = (time_t)(us / 1000000u);
    its.it_value.tv_nsec = (long)(us % 1000000u) * 1000;
    timer_settime(grace_timer, 0, &its, NULL);
}

static void grace_stop(struct vm *vm)
{
    running = NULL;
    if (grace_state > 0) {
        struct itimerspec its;

        memset(&its, 0, sizeof(its));
        timer_settime(grace_timer, 0, &its, NULL);
    }
    lua_sethook(vm->L, NULL, 0, 0);
    vm->is_hooked = 0;
}

/* ---- Sandbox ---- */

static int l_readonly(lua_State *L)
{
    return luaL_error(L,
                      "attempt to set '%s' in a read-only table (globals and library "
                      "tables are read-only; use a local)",
                      luaL_optstring(L, 2, "?"));
}

/* Replaces the table at the top with a read-only proxy of it.  [-1, +1, e] */
static void make_readonly(lua_State *L)
{
    lua_createtable(L, 0, 0);
    lua_createtable(L, 0, 3);
    lua_rotate(L, -3, -1);
    /* stack: proxy | mt | original <- top */
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_readonly);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* print(...) goes to the log at DEBUG instead of stdout. */
static int l_print(lua_State *L)
{
    luaL_Buffer b;
    int n = lua_gettop(L);

    if (!log_enabled(LOG_DEBUG))
        return 0;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
        if (i < n)
            luaL_addchar(&b, '\t');
    }
    luaL_pushresult(&b);
    log_msg(LOG_DEBUG, "policy", "print: %s", lua_tostring(L, -1));
    return 0;
}

/* load(chunk [, name [, mode [, env]]]): text chunks only; env defaults to the
 * sandbox globals. Upvalue 1: the original load. */
static int l_load(lua_State *L)
{
    int has_env = lua_gettop(L) >= 4;

    lua_settop(L, 4);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushliteral(L, "t");
    if (has_env)
        lua_pushvalue(L, 4);
    else
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_call(L, 4, 2);
    return 2;
}

/* require(name): only modules bundled into this state. */
static int l_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);

    lua_getfield(L, LUA_REGISTRYINDEX, "paved.loaded");
    if (lua_getfield(L, -1, name) == LUA_TNIL)
        return luaL_error(L,
                          "module '%s' is not available: require only reaches the "
                          "bundled modules (paved)",
                          name);
    return 1;
}

static void copy_fields(lua_State *L, int from, const char *const *names)
{
    for (; *names != NULL; names++) {
        lua_getfield(L, from, *names);
        lua_setfield(L, -2, *names);
    }
}

static const char *const pattern_fns[] = {"find", "match", "gmatch", "gsub", NULL};

/* string.find/match/gmatch/gsub for policies. Lua's pattern matcher backtracks inside
 * one C call, where neither the count hook nor the deadline can stop it, so a
 * pattern with magic characters is refused; plain text (and find with plain=true)
 * goes to the real function. Upvalues: the real function, its name.  [-0, +?, e] */
static int l_plain_only(lua_State *L)
{
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    size_t len;
    const char *pat = luaL_checklstring(L, 2, &len);
    bool is_plain = strcmp(name, "find") == 0 && lua_toboolean(L, 4);

    if (!is_plain && strcspn(pat, "^$*+?.([%-") < len)
        return luaL_error(L,
                          "string.%s: Lua patterns are not available to policies (their "
                          "backtracking cannot be interrupted); use paved.regex or "
                          "paved.regex_match (PCRE2, with a match budget), or plain text",
                          name);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* Builds the sandbox globals from the opened libraries and installs a read-only
 * proxy of them as the state's globals.  [-0, +0, e] */
static void build_sandbox(lua_State *L)
{
    static const char *const base[] = {
        "assert",   "error",    "ipairs", "next",   "pairs",        "pcall",
        "rawequal", "rawget",   "rawlen", "select", "setmetatable", "getmetatable",
        "tonumber", "tostring", "type",   "xpcall", "_VERSION",     NULL,
    };
    static const char *const os_allowed[] = {"time", "clock", NULL};
    static const char *const libs[] = {"string", "table", "math", "utf8", NULL};
    int g;

    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    g = lua_gettop(L);
    /* string.dump would expose bytecode; remove it from the shared table itself. */
    lua_getfield(L, g, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    /* Policies get a copy of the string table whose pattern functions refuse Lua
     * patterns (see l_plain_only); the string metatable, which serves method calls
     * such as s:match(), points to that copy and is protected. The bundled modules
     * captured the real functions while they loaded. */
    lua_createtable(L, 0, 20);
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    for (const char *const *fn = pattern_fns; *fn != NULL; fn++) {
        lua_getfield(L, -2, *fn);
        lua_pushstring(L, *fn);
        lua_pushcclosure(L, l_plain_only, 2);
        lua_setfield(L, -2, *fn);
    }
    /* stack: globals | real string | restricted string <- top */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "read-only");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_setfield(L, g, "string");
    lua_pop(L, 1);

    lua_createtable(L, 0, 32);
    copy_fields(L, g, base);
    lua_pushcfunction(L, l_print);
    lua_setfield(L, -2, "print");
    lua_getfield(L, g, "load");
    lua_pushcclosure(L, l_load, 1);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, l_require);
    lua_setfield(L, -2, "require");
    for (const char *const *lib = libs; *lib != NULL; lib++) {
        lua_getfield(L, g, *lib);
        make_readonly(L);
        lua_setfield(L, -2, *lib);
    }
    lua_getfield(L, g, "os");
    lua_createtable(L, 0, 2);
    copy_fields(L, lua_gettop(L) - 1, os_allowed);
    make_readonly(L);
    lua_setfield(L, -3, "os");
    lua_pop(L, 1);
    /* stack: real globals | sandbox <- top. _G must name the proxy, or writing
     * through it would reach the shared table. */
    lua_pushvalue(L, -1);
    make_readonly(L);
    /* stack: real globals | sandbox | proxy <- top */
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "_G");
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pop(L, 2);
}

/* ---- Errors ---- */

/* True when 'msg' already starts with "path/file.lua:" (a position or a file). */
static bool has_position(const char *msg)
{
    const char *colon = strchr(msg, ':');
    const char *lua = strstr(msg, ".lua:");

    return colon != NULL && lua != NULL && lua + 4 == colon &&
           memchr(msg, ' ', (size_t)(colon - msg)) == NULL;
}

/* Message handler: turns any error value into "file:line: message", adding the
 * position of the innermost Lua frame when the message has none (errors raised by
 * C functions). */
static int l_msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    lua_Debug ar;

    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (has_position(msg)) {
        lua_pushstring(L, msg);
        return 1;
    }
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || ar.source[0] != '@')
            continue;
        lua_pushfstring(L, "%s:%d: %s", ar.source + 1, ar.currentline, msg);
        return 1;
    }
    lua_pushstring(L, msg);
    return 1;
}

/* ---- Violations ---- */

/* violation(fmt, ...) or violation(message): records one violation of the running
 * binding. Upvalue 1: string.format.  [-0, +0, e] */
static int l_violation(lua_State *L)
{
    struct vm *vm = vm_of(L);
    struct vm_result *r = vm->cur;
    const char *msg;
    size_t len;

    if (r == NULL)
        return luaL_error(L, "violation() called outside an evaluation");
    if (lua_gettop(L) > 1) {
        lua_pushvalue(L, lua_upvalueindex(1));
        lua_insert(L, 1);
        lua_call(L, lua_gettop(L) - 1, 1);
    }
    msg = luaL_tolstring(L, 1, &len);
    if (r->n_violations >= VM_MAX_VIOLATIONS) {
        r->n_dropped++;
        return 0;
    }
    if (r->violations == NULL)
        r->violations = xcalloc(VM_MAX_VIOLATIONS, sizeof(*r->violations));
    r->violations[r->n_violations++] = xstrndup(msg, len > 2048 ? 2048 : len);
    return 0;
}

/* ---- Loading ---- */

struct load_args {
    struct vm *vm;
    const struct vm_source *modules;
    size_t n_modules;
    const struct vm_source *policies;
    size_t n_policies;
};

static const struct vm_source *find_source(const struct vm_source *s, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].path, path) == 0)
            return &s[i];
    return NULL;
}

/* Compiles and runs one chunk as text, leaving its first result.  [-0, +1, e] */
static void run_chunk(lua_State *L, const struct vm_source *src)
{
    char name[300];

    snprintf(name, sizeof(name), "@%s", src->path);
    if (luaL_loadbufferx(L, src->text, src->len, name, "t") != LUA_OK)
        lua_error(L);
    lua_call(L, 0, 1);
}

/* A policy file runs its top level under the same limits as an evaluation, so a file
 * that loops or allocates without end fails to load instead of hanging paved.
 * vm_new clears the hook when this raises.  [-0, +1, e] */
static void run_policy_chunk(lua_State *L, struct vm *vm, const struct vm_source *src)
{
    vm->instructions = 0;
    vm->deadline_ns = now_ns() + (uint64_t)vm->lim.timeout_ms * 1000000u;
    vm->tripped = VM_OK;
    vm->limit = vm->used + vm->lim.max_memory;
    vm->in_eval = true;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    run_chunk(L, src);
    lua_sethook(L, NULL, 0, 0);
    vm->in_eval = false;
    vm->limit = LOAD_MEMORY_MAX;
}

/* The number of the last line of 'src' holding anything. */
static lua_Integer last_line(const struct vm_source *src)
{
    lua_Integer line = 1;
    lua_Integer last = 1;

    for (size_t i = 0; i < src->len; i++) {
        if (src->text[i] == '\n')
            line++;
        else if (src->text[i] != ' ' && src->text[i] != '\t' && src->text[i] != '\r')
            last = line;
    }
    return last;
}

static char *field_string(lua_State *L, int t, const char *k, const char *dflt)
{
    const char *s;
    char *copy;

    lua_getfield(L, t, k);
    s = lua_tostring(L, -1);
    copy = xstrdup(s != NULL ? s : dflt);
    lua_pop(L, 1);
    return copy;
}

static bool field_bool(lua_State *L, int t, const char *k)
{
    bool b;

    lua_getfield(L, t, k);
    b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

static enum vm_enforcement parse_enforcement(const char *s)
{
    if (strcmp(s, "warn") == 0)
        return VM_WARN;
    if (strcmp(s, "audit") == 0)
        return VM_AUDIT;
    return VM_DENY;
}

/* Copies each policy's declaration out of engine.policies(). Stack: engine at 'e'. */
static void read_policies(lua_State *L, struct vm *vm, int e)
{
    size_t n;

    lua_getfield(L, e, "policies");
    lua_call(L, 0, 1);
    n = (size_t)lua_rawlen(L, -1);
    vm->policies = xcalloc(n ? n : 1, sizeof(*vm->policies));
    for (size_t i = 0; i < n; i++) {
        struct vm_policy *p = &vm->policies[i];
        int t;
        char *enf;

        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        t = lua_gettop(L);
        /* Counted first so vm_free releases whatever was copied if a raise follows. */
        vm->n_policies = i + 1;
        p->id = field_string(L, t, "id", "?");
        p->title = field_string(L, t, "title", "");
        p->file = field_string(L, t, "file", "?");
        p->is_golden_path = field_bool(L, t, "golden_path");
        p->is_mutating = field_bool(L, t, "mutate");
        enf = field_string(L, t, "on_error", "deny");
        p->is_on_error_deny = strcmp(enf, "deny") == 0;
        free(enf);
        enf = field_string(L, t, "enforcement", "deny");
        p->enforcement = parse_enforcement(enf);
        free(enf);
        p->exceptions_allowed = field_bool(L, t, "exceptions_allowed");
        p->exceptions_self_service = field_bool(L, t, "exceptions_self_service");
        lua_getfield(L, t, "exceptions_max_days");
        p->exceptions_max_days = (int)lua_tointeger(L, -1);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

static int load_cb(lua_State *L)
{
    struct load_args *a = lua_touserdata(L, 1);
    struct vm *vm = a->vm;
    const struct vm_source *paved = find_source(a->modules, a->n_modules, "lua/paved.lua");
    const struct vm_source *engine = find_source(a->modules, a->n_modules, "lua/engine.lua");
    int e;

    if (paved == NULL || engine == NULL)
        return luaL_error(L, "the bundled modules lua/paved.lua and lua/engine.lua are missing");
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 1);
    lua_pop(L, 6);

    /* The C helpers are visible as a global only while the modules load. */
    api_push(L);
    lua_setglobal(L, "__paved_c");
    lua_createtable(L, 0, 2);
    lua_setfield(L, LUA_REGISTRYINDEX, "paved.loaded");

    run_chunk(L, paved);
    make_readonly(L);
    lua_getfield(L, LUA_REGISTRYINDEX, "paved.loaded");
    lua_insert(L, -2);
    lua_setfield(L, -2, "paved");
    lua_pop(L, 1);
    /* engine.lua requires "paved", which resolves through the table just filled. */
    lua_pushcfunction(L, l_require);
    lua_setglobal(L, "require");
    run_chunk(L, engine);
    e = lua_gettop(L);
    lua_pushnil(L);
    lua_setglobal(L, "__paved_c");

    /* The violation collector, closing over the real string.format. */
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "format");
    lua_pushcclosure(L, l_violation, 1);
    vm->ref_violation = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_msgh);
    vm->ref_msgh = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, e, "eval");
    vm->ref_eval = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, e, "mutate");
    vm->ref_mutate = luaL_ref(L, LUA_REGISTRYINDEX);

    build_sandbox(L);

    for (size_t i = 0; i < a->n_policies; i++) {
        lua_getfield(L, e, "register");
        run_policy_chunk(L, vm, &a->policies[i]);
        lua_pushstring(L, a->policies[i].path);
        lua_pushinteger(L, last_line(&a->policies[i]));
        lua_call(L, 3, 0);
    }
    read_policies(L, vm, e);
    lua_pushvalue(L, e);
    lua_setfield(L, LUA_REGISTRYINDEX, "paved.engine");
    return 0;
}

static const struct vm_limits default_limits = {
    .max_memory = (size_t)32 << 20,
    .max_instructions = 10000000,
    .timeout_ms = 1000,
};

pv_status vm_new(struct vm **out, const struct vm_limits *lim, const struct vm_source *modules,
                 size_t n_modules, const struct vm_source *policies, size_t n_policies,
                 struct pv_err *err)
{
    struct vm *vm = xcalloc(1, sizeof(*vm));
    struct load_args a = {vm, modules, n_modules, policies, n_policies};
    int rc;

    vm->lim = lim != NULL ? *lim : default_limits;
    vm->limit = LOAD_MEMORY_MAX;
    vm->ref_eval = vm->ref_violation = vm->ref_msgh = vm->ref_inventory = LUA_NOREF;
    vm->ref_mutate = LUA_NOREF;
    vm->ref_req = LUA_NOREF;
    vm->L = lua_newstate(l_alloc, vm);
    if (vm->L == NULL) {
        free(vm);
        return pv_err_set(err, PV_ENOMEM, "cannot create a Lua state");
    }
    lua_gc(vm->L, LUA_GCINC, 300, 0, 0);
    lua_pushcfunction(vm->L, l_msgh);
    lua_pushcfunction(vm->L, load_cb);
    lua_pushlightuserdata(vm->L, &a);
    rc = lua_pcall(vm->L, 1, 0, 1);
    if (rc != LUA_OK) {
        if (rc == LUA_ERRMEM)
            pv_err_set(err, PV_EPOLICY, "loading the policies: memory limit of %d KiB exceeded",
                       (int)(vm->lim.max_memory >> 10));
        else
            pv_err_set(err, PV_EPOLICY, "%s", lua_tostring(vm->L, -1));
        lua_sethook(vm->L, NULL, 0, 0);
        vm->in_eval = false;
        vm_free(vm);
        return PV_EPOLICY;
    }
    lua_settop(vm->L, 0);
    *out = vm;
    return PV_OK;
}

static void free_snapshots(struct vm *vm)
{
    for (size_t i = 0; vm->params_snap != NULL && i < vm->n_bindings; i++)
        cJSON_Delete(vm->params_snap[i]);
    free(vm->params_snap);
    vm->params_snap = NULL;
}

void vm_set_host(struct vm *vm, const struct vm_host *h)
{
    if (h != NULL)
        vm->host = *h;
    else
        memset(&vm->host, 0, sizeof(vm->host));
    lua_pushlightuserdata(vm->L, &vm->host);
    lua_setfield(vm->L, LUA_REGISTRYINDEX, API_HOST_KEY);
}

void vm_free(struct vm *vm)
{
    if (vm == NULL)
        return;
    if (vm->L != NULL)
        lua_close(vm->L);
    for (size_t i = 0; i < vm->n_policies; i++) {
        free(vm->policies[i].id);
        free(vm->policies[i].title);
        free(vm->policies[i].file);
    }
    free(vm->policies);
    free(vm->binding_policies);
    free_snapshots(vm);
    free(vm);
}

size_t vm_policy_count(const struct vm *vm)
{
    return vm->n_policies;
}

const struct vm_policy *vm_policy_at(const struct vm *vm, size_t i)
{
    return i < vm->n_policies ? &vm->policies[i] : NULL;
}

const struct vm_policy *vm_policy_find(const struct vm *vm, const char *id)
{
    for (size_t i = 0; i < vm->n_policies; i++)
        if (strcmp(vm->policies[i].id, id) == 0)
            return &vm->policies[i];
    return NULL;
}

size_t vm_memory_used(const struct vm *vm)
{
    return vm->used;
}

/* ---- Bindings ---- */

struct bind_args {
    const struct vm_binding *b;
    size_t n;
};

static int bind_cb(lua_State *L)
{
    struct bind_args *a = lua_touserdata(L, 1);

    lua_getfield(L, LUA_REGISTRYINDEX, "paved.engine");
    lua_getfield(L, -1, "set_bindings");
    lua_createtable(L, (int)a->n, 0);
    for (size_t i = 0; i < a->n; i++) {
        const struct vm_binding *b = &a->b[i];

        if (b->params != NULL && !cJSON_IsObject(b->params))
            return luaL_error(L, "binding %d (%s): params must be a mapping", (int)i + 1,
                              b->policy_id);
        if (b->match != NULL && !cJSON_IsObject(b->match))
            return luaL_error(L, "binding %d (%s): match must be a mapping", (int)i + 1,
                              b->policy_id);
        lua_createtable(L, 0, 3);
        lua_pushstring(L, b->policy_id);
        lua_setfield(L, -2, "policy");
        if (b->params != NULL) {
            convert_push(L, b->params);
            lua_setfield(L, -2, "params");
        }
        if (b->match != NULL) {
            convert_push(L, b->match);
            lua_setfield(L, -2, "match");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_call(L, 1, 0);
    return 0;
}

/* ---- Read-only request and params ---- */

static int snapshot_cb(lua_State *L)
{
    cJSON **out = lua_touserdata(L, 1);

    lua_getfield(L, LUA_REGISTRYINDEX, "paved.engine");
    lua_getfield(L, -1, "params_of");
    lua_pushinteger(L, lua_tointeger(L, 2));
    lua_call(L, 1, 1);
    *out = convert_to_json(L, -1);
    return 0;
}

/* Records each binding's params as JSON, so vm_unchanged can tell if a policy wrote
 * to them. Params that are not plain data (a default holding a function) are not
 * recorded, and so not checked. */
static void take_snapshots(struct vm *vm)
{
    lua_State *L = vm->L;

    vm->params_snap = xcalloc(vm->n_bindings ? vm->n_bindings : 1, sizeof(*vm->params_snap));
    for (size_t i = 0; i < vm->n_bindings; i++) {
        lua_pushcfunction(L, snapshot_cb);
        lua_pushlightuserdata(L, &vm->params_snap[i]);
        lua_pushinteger(L, (lua_Integer)i + 1);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
            vm->params_snap[i] = NULL;
            lua_pop(L, 1);
        }
    }
}

static int restore_cb(lua_State *L)
{
    struct vm *vm = lua_touserdata(L, 1);

    lua_getfield(L, LUA_REGISTRYINDEX, "paved.engine");
    for (size_t i = 0; i < vm->n_bindings; i++) {
        if (vm->params_snap[i] == NULL)
            continue;
        lua_getfield(L, -1, "set_params");
        lua_pushinteger(L, (lua_Integer)i + 1);
        convert_push(L, vm->params_snap[i]);
        lua_call(L, 2, 0);
    }
    return 0;
}

pv_status vm_restore_params(struct vm *vm, struct pv_err *err)
{
    lua_State *L = vm->L;
    size_t limit = vm->limit;
    int rc;

    vm->limit = LOAD_MEMORY_MAX;
    lua_pushcfunction(L, restore_cb);
    lua_pushlightuserdata(L, vm);
    rc = lua_pcall(L, 1, 0, 0);
    vm->limit = limit;
    if (rc != LUA_OK) {
        pv_err_set(err, PV_ENOMEM, "cannot restore the bindings' params: %s", lua_tostring(L, -1));
        lua_settop(L, 0);
        return PV_ENOMEM;
    }
    return PV_OK;
}

/* Compares field 'k' of the table at the top with 'j' (NULL: must be absent, or an
 * empty table when 'is_empty_ok'). */
static bool field_same(lua_State *L, const char *k, const cJSON *j, bool is_resource,
                       bool is_empty_ok, char *what, size_t cap)
{
    char path[256];
    bool is_same;

    lua_getfield(L, -1, k);
    if (j == NULL || cJSON_IsNull(j)) {
        is_same = lua_isnil(L, -1);
        if (!is_same && is_empty_ok && lua_istable(L, -1) && !lua_getmetatable(L, -1)) {
            lua_pushnil(L);
            is_same = lua_next(L, -2) == 0;
            if (!is_same)
                lua_pop(L, 2);
        }
        path[0] = '\0';
    } else {
        is_same = convert_same(L, -1, j, is_resource, path, sizeof(path));
    }
    lua_pop(L, 1);
    if (!is_same)
        snprintf(what, cap, "req.%s%s", k, path);
    return is_same;
}

bool vm_unchanged(struct vm *vm, char *what, size_t cap)
{
    lua_State *L = vm->L;
    const struct pv_request *r = vm->cur_req;
    bool is_same = true;

    if (r == NULL || vm->ref_req == LUA_NOREF)
        return true;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_req);
    is_same =
        field_same(L, "object", r->object, true, false, what, cap) &&
        field_same(L, "old_object",
                   r->old_object != NULL && cJSON_IsObject(r->old_object) ? r->old_object : NULL,
                   true, false, what, cap) &&
        field_same(L, "subject", r->subject, false, true, what, cap) &&
        field_same(L, "user_info", r->user_info, false, true, what, cap) &&
        (r->inventory == NULL || field_same(L, "inventory", r->inventory, false, true, what, cap));
    lua_pop(L, 1);
    if (!is_same)
        return false;
    lua_getfield(L, LUA_REGISTRYINDEX, "paved.engine");
    for (size_t i = 0; i < vm->n_bindings; i++) {
        char path[256];

        if (vm->params_snap == NULL || vm->params_snap[i] == NULL)
            continue;
        lua_getfield(L, -1, "params_of");
        lua_pushinteger(L, (lua_Integer)i + 1);
        /* params_of only indexes a table the engine owns: it cannot raise. */
        if (lua_pcall(L, 1, 1, 0) != LUA_OK ||
            !convert_same(L, -1, vm->params_snap[i], false, path, sizeof(path))) {
            snprintf(what, cap, "params of binding %zu%s", i + 1, path);
            is_same = false;
        }
        lua_pop(L, 1);
        if (!is_same)
            break;
    }
    lua_pop(L, 1);
    return is_same;
}

pv_status vm_set_bindings(struct vm *vm, const struct vm_binding *b, size_t n, struct pv_err *err)
{
    struct bind_args a = {b, n};
    lua_State *L = vm->L;
    int rc;

    vm->limit = LOAD_MEMORY_MAX;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_msgh);
    lua_pushcfunction(L, bind_cb);
    lua_pushlightuserdata(L, &a);
    rc = lua_pcall(L, 1, 0, -3);
    if (rc != LUA_OK) {
        pv_err_set(err, PV_EPOLICY, "%s", lua_tostring(L, -1));
        lua_settop(L, 0);
        return PV_EPOLICY;
    }
    lua_settop(L, 0);
    free_snapshots(vm);
    vm->n_bindings = n;
    take_snapshots(vm);
    free(vm->binding_policies);
    vm->binding_policies = xcalloc(n ? n : 1, sizeof(*vm->binding_policies));
    for (size_t i = 0; i < n; i++)
        vm->binding_policies[i] = vm_policy_find(vm, b[i].policy_id);
    lua_gc(L, LUA_GCCOLLECT);
    vm->baseline = vm->used;
    return PV_OK;
}

size_t vm_binding_count(const struct vm *vm)
{
    return vm->n_bindings;
}

const struct vm_policy *vm_binding_policy(const struct vm *vm, size_t i)
{
    return i < vm->n_bindings ? vm->binding_policies[i] : NULL;
}

/* ---- Evaluation ---- */

static void set_string(lua_State *L, const char *k, const char *v)
{
    if (v == NULL)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

static void set_json(lua_State *L, const char *k, const cJSON *v, bool as_empty_table)
{
    if (v != NULL && !cJSON_IsNull(v))
        convert_push(L, v);
    else if (as_empty_table)
        lua_createtable(L, 0, 0);
    else
        return;
    lua_setfield(L, -2, k);
}

static int begin_cb(lua_State *L)
{
    const struct pv_request *r = lua_touserdata(L, 1);
    struct vm *vm = vm_of(L);

    lua_getfield(L, LUA_REGISTRYINDEX, "paved.engine");
    lua_getfield(L, -1, "set_request");
    lua_createtable(L, 0, 12);
    set_string(L, "kind", r->kind != NULL ? r->kind : "deploy");
    set_string(L, "operation", r->operation != NULL ? r->operation : "CREATE");
    set_string(L, "source", r->source != NULL ? r->source : "ci");
    set_string(L, "namespace", r->namespace);
    lua_pushboolean(L, r->is_dry_run);
    lua_setfield(L, -2, "dry_run");
    convert_push_resource(L, r->object);
    lua_setfield(L, -2, "object");
    if (r->old_object != NULL && cJSON_IsObject(r->old_object)) {
        convert_push_resource(L, r->old_object);
        lua_setfield(L, -2, "old_object");
    }
    set_json(L, "subject", r->subject, true);
    if (r->inventory == NULL && vm->ref_inventory != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_inventory);
        lua_setfield(L, -2, "inventory");
    } else {
        set_json(L, "inventory", r->inventory, true);
    }
    set_json(L, "user_info", r->user_info, true);
    /* stack: engine | set_request | data <- top. Policies get a read-only proxy of
     * the data table, so req.namespace = "kube-system" raises at once. */
    lua_pushvalue(L, -1);
    vm->ref_req = luaL_ref(L, LUA_REGISTRYINDEX);
    make_readonly(L);
    lua_call(L, 1, 0);
    return 0;
}

static int inventory_cb(lua_State *L)
{
    convert_push(L, lua_touserdata(L, 1));
    return 1;
}

pv_status vm_set_inventory(struct vm *vm, const cJSON *inventory, struct pv_err *err)
{
    lua_State *L = vm->L;
    int rc;

    luaL_unref(L, LUA_REGISTRYINDEX, vm->ref_inventory);
    vm->ref_inventory = LUA_NOREF;
    if (inventory == NULL)
        return PV_OK;
    if (!cJSON_IsArray(inventory))
        return pv_err_set(err, PV_EINVAL, "the inventory must be a list of objects");
    vm->limit = LOAD_MEMORY_MAX;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_msgh);
    lua_pushcfunction(L, inventory_cb);
    lua_pushlightuserdata(L, (void *)(uintptr_t)inventory);
    rc = lua_pcall(L, 1, 1, -3);
    if (rc != LUA_OK) {
        pv_err_set(err, rc == LUA_ERRMEM ? PV_ENOMEM : PV_EINVAL, "inventory: %s",
                   lua_tostring(L, -1));
        lua_settop(L, 0);
        return err != NULL ? err->code : PV_EINVAL;
    }
    vm->ref_inventory = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    vm->baseline = vm->used;
    return PV_OK;
}

pv_status vm_begin(struct vm *vm, const struct pv_request *req, struct pv_err *err)
{
    lua_State *L = vm->L;
    int rc;

    if (req->object == NULL || !cJSON_IsObject(req->object))
        return pv_err_set(err, PV_EINVAL, "the object under review must be a JSON object");
    vm->cur_req = req;
    vm->limit = vm->baseline + vm->lim.max_memory;
    vm->deadline_ns = now_ns() + (uint64_t)vm->lim.timeout_ms * 1000000u;
    vm->tripped = VM_OK;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_msgh);
    lua_pushcfunction(L, begin_cb);
    lua_pushlightuserdata(L, (void *)(uintptr_t)req);
    rc = lua_pcall(L, 1, 0, -3);
    if (rc != LUA_OK) {
        pv_status st = rc == LUA_ERRMEM ? PV_ENOMEM : PV_EINVAL;

        pv_err_set(err, st, "cannot hand the object to policies: %s", lua_tostring(L, -1));
        lua_settop(L, 0);
        vm_end(vm);
        return st;
    }
    lua_settop(L, 0);
    grace_start(vm);
    return PV_OK;
}

static int ops_cb(lua_State *L)
{
    cJSON **ops = lua_touserdata(L, 1);

    *ops = convert_to_json(L, 2);
    return 0;
}

/* Runs engine function 'ref' (eval or mutate) for binding 'i'; with 'ops', converts a
 * returned table of JSONPatch operations. */
static void run_binding(struct vm *vm, size_t i, int ref, struct vm_result *out, cJSON **ops)
{
    lua_State *L = vm->L;
    uint64_t t0 = now_ns();
    int rc;

    memset(out, 0, sizeof(*out));
    if (i >= vm->n_bindings) {
        out->outcome = VM_ERROR;
        out->error = xstrdup("no such binding");
        return;
    }
    vm->cur = out;
    vm->instructions = 0;
    vm->in_eval = true;
    if (vm->tripped == VM_TIMEOUT || t0 > vm->deadline_ns)
        vm->tripped = VM_TIMEOUT;
    else
        vm->tripped = VM_OK;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_msgh);
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ref_violation);
    if (vm->tripped == VM_TIMEOUT) {
        lua_settop(L, 0);
        lua_pushfstring(L, "deadline of %d ms exceeded before this policy ran",
                        (int)vm->lim.timeout_ms);
        rc = LUA_ERRRUN;
    } else {
        rc = lua_pcall(L, 2, 1, 1);
    }
    /* A tripped limit left the hook raising at every instruction: calm it down. */
    if (vm->tripped != VM_OK) {
        if (vm->is_hooked)
            lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
        else
            lua_sethook(L, NULL, 0, 0);
    }
    if (rc == LUA_OK && vm->tripped == VM_OK && ops == NULL) {
        out->outcome = lua_toboolean(L, -1) ? VM_OK : VM_SKIPPED;
    } else if (rc == LUA_OK && vm->tripped == VM_OK) {
        out->outcome = lua_istable(L, -1) ? VM_OK : VM_SKIPPED;
        if (out->outcome == VM_OK) {
            int top = lua_gettop(L);

            lua_pushcfunction(L, ops_cb);
            lua_pushlightuserdata(L, ops);
            lua_pushvalue(L, top);
            if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
                const char *m = lua_tostring(L, -1);
                char msg[400];

                snprintf(msg, sizeof(msg), "%s: mutate() returned operations that are not JSON: %s",
                         vm->binding_policies[i] != NULL ? vm->binding_policies[i]->file : "?",
                         m != NULL ? m : "?");
                out->outcome = VM_ERROR;
                out->error = xstrdup(msg);
                *ops = NULL;
            }
        }
    } else {
        const char *msg = lua_tostring(L, -1);

        out->outcome = vm->tripped != VM_OK ? vm->tripped : VM_ERROR;
        if (rc == LUA_ERRMEM) {
            /* Lua skips the message handler for memory errors: no position. */
            out->outcome = VM_NOMEM;
            msg = lua_pushfstring(L, "%s: memory limit of %d KiB exceeded",
                                  vm->binding_policies[i] != NULL ? vm->binding_policies[i]->file
                                                                  : "?",
                                  (int)(vm->lim.max_memory >> 10));
        }
        out->error = xstrdup(msg != NULL ? msg : "unknown error");
    }
    vm->in_eval = false;
    vm->cur = NULL;
    if (vm->tripped != VM_TIMEOUT)
        vm->tripped = VM_OK;
    lua_settop(L, 0);
    out->elapsed_ns = now_ns() - t0;
}

void vm_eval(struct vm *vm, size_t i, struct vm_result *out)
{
    run_binding(vm, i, vm->ref_eval, out, NULL);
}

void vm_mutate(struct vm *vm, size_t i, struct vm_result *out, cJSON **ops)
{
    *ops = NULL;
    run_binding(vm, i, vm->ref_mutate, out, ops);
}

void vm_end(struct vm *vm)
{
    lua_State *L = vm->L;

    grace_stop(vm);
    luaL_unref(L, LUA_REGISTRYINDEX, vm->ref_req);
    vm->ref_req = LUA_NOREF;
    vm->cur_req = NULL;
    lua_getfield(L, LUA_REGISTRYINDEX, "paved.engine");
    lua_getfield(L, -1, "set_request");
    lua_pushnil(L);
    vm->limit = (size_t)-1;
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        log_msg(LOG_ERROR, "vm", "cannot release the request: %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    vm->limit = LOAD_MEMORY_MAX;
    vm->tripped = VM_OK;
}

void vm_result_fini(struct vm_result *r)
{
    for (size_t i = 0; i < r->n_violations; i++)
        free(r->violations[i]);
    free(r->violations);
    free(r->error);
    memset(r, 0, sizeof(*r));
}
