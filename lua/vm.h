/* lua/vm.h: one sandboxed Lua state holding the policy bundle and its bindings.
 * A vm is used by one thread at a time; values cross in and out only as cJSON or C
 * data. */
#ifndef PV_VM_H
#define PV_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "request.h"
#include "status.h"

/* One Lua source compiled into the binary or read from disk. */
struct vm_source {
    const char *path; /* e.g. "policies/psa.lua": used in file:line messages */
    const char *text;
    size_t len;
};

struct vm_limits {
    size_t max_memory;         /* bytes one evaluation may allocate beyond the bundle */
    uint64_t max_instructions; /* per binding evaluation, counted once the request has
                                * run for VM_GRACE_US (see vm_begin) */
    uint32_t timeout_ms;       /* wall clock per request (all bindings) */
    uint32_t grace_us;         /* run hook-free this long; 0: VM_GRACE_US */
};

/* Lua 5.4 sends every instruction through its slow path while a count hook is set,
 * which costs well-behaved policies about a fifth of their time. So a request runs
 * without a hook for its first VM_GRACE_US microseconds; a per-thread timer then arms
 * the hook, which enforces the instruction budget and the deadline from there on. */
#define VM_GRACE_US 1000

enum vm_enforcement {
    VM_DENY = 0,
    VM_WARN,
    VM_AUDIT,
};

/* What a loaded policy declares (copied out of Lua; valid until vm_free). */
struct vm_policy {
    char *id;
    char *title;
    char *file;
    bool is_golden_path;
    bool is_on_error_deny;
    bool is_mutating; /* has a mutate function */
    enum vm_enforcement enforcement;
    bool exceptions_allowed;
    bool exceptions_self_service;
    int exceptions_max_days;
};

/* One binding: a policy instantiated with params and a scope. */
struct vm_binding {
    const char *policy_id; /* borrowed */
    const cJSON *params;   /* borrowed; NULL for the policy's defaults */
    const cJSON *match;    /* borrowed; Gatekeeper match syntax; NULL: policy's applies_to */
};

enum vm_outcome {
    VM_SKIPPED = 0, /* object out of the binding's scope */
    VM_OK,          /* evaluated; see violations */
    VM_ERROR,       /* the policy raised or returned garbage */
    VM_TIMEOUT,     /* the request's deadline passed */
    VM_BUDGET,      /* the instruction budget ran out */
    VM_NOMEM,       /* the memory cap was reached */
};

#define VM_MAX_VIOLATIONS 256

/* The result of one binding on one request. Owned by the caller: vm_result_fini. */
struct vm_result {
    enum vm_outcome outcome;
    char **violations; /* outcome VM_OK: messages, n_violations of them */
    size_t n_violations;
    size_t n_dropped; /* violations past VM_MAX_VIOLATIONS, counted only */
    char *error;      /* outcome >= VM_ERROR: "file:line: message" */
    uint64_t elapsed_ns;
};

/* What a vm may ask of its host (the server), given once with vm_set_host: lower code
 * gets callbacks rather than reaching up. */
struct vm_host {
    /* The quota of 'team' as JSON (caller frees), or NULL when there is none. Called on
     * the vm's thread while a policy runs; must not call back into the vm. */
    cJSON *(*quota)(void *arg, const char *team);
    void *arg;
};

struct vm;

/* Creates a sandboxed state and loads the bundled modules ('modules': lua/paved.lua
 * and lua/engine.lua) and then every policy source in 'policies'. Borrows both
 * arrays. On success *out is the new vm (free with vm_free). Returns PV_EPOLICY with
 * "file:line: message" in 'err' when a source fails to compile, raises or returns a
 * bad policy table; PV_EINVAL when a module is missing. */
pv_status vm_new(struct vm **out, const struct vm_limits *lim, const struct vm_source *modules,
                 size_t n_modules, const struct vm_source *policies, size_t n_policies,
                 struct pv_err *err);

/* Sets the host callbacks (copied; 'h' NULL removes them). */
void vm_set_host(struct vm *vm, const struct vm_host *h);

/* Frees 'vm' and everything it owns. vm_free(NULL) does nothing. */
void vm_free(struct vm *vm);

/* The loaded policies (borrowed; valid until vm_free). */
size_t vm_policy_count(const struct vm *vm);
const struct vm_policy *vm_policy_at(const struct vm *vm, size_t i);
const struct vm_policy *vm_policy_find(const struct vm *vm, const char *id);

/* Replaces the bindings. Borrows 'b'. Returns PV_EPOLICY naming the binding when a
 * policy id is unknown or params/match are not objects. */
pv_status vm_set_bindings(struct vm *vm, const struct vm_binding *b, size_t n, struct pv_err *err);
size_t vm_binding_count(const struct vm *vm);

/* The policy binding 'i' instantiates (borrowed; valid until the next
 * vm_set_bindings or vm_free), or NULL when 'i' is out of range. */
const struct vm_policy *vm_binding_policy(const struct vm *vm, size_t i);

/* Converts 'inventory' (a JSON array of objects that exist beside the request; borrowed)
 * once and keeps it as the `req.inventory` of every later request that brings none.
 * NULL drops it. Returns PV_EINVAL when it is not an array, PV_ENOMEM when it does not
 * fit in memory. */
pv_status vm_set_inventory(struct vm *vm, const cJSON *inventory, struct pv_err *err);

/* Converts 'req' (borrowed) into the `req` table and starts the request's deadline.
 * Returns PV_ENOMEM when the object alone exceeds the memory cap, PV_EINVAL when it
 * is not a JSON object. */
pv_status vm_begin(struct vm *vm, const struct pv_request *req, struct pv_err *err);

/* Evaluates binding 'i' on the request of the last vm_begin. Fills *out (which the
 * caller releases with vm_result_fini). Never fails: a misbehaving policy is an
 * outcome, not an error. */
void vm_eval(struct vm *vm, size_t i, struct vm_result *out);

/* Policies must treat the request and their params as read-only (`req` itself is a
 * read-only table; deep writes are caught here). Returns true when the request's
 * object, old_object, subject, user_info and per-request inventory, and every
 * binding's params, still equal what was handed in. Otherwise returns false and
 * writes what changed ("req.object.metadata.labels (a key was added)", "params of
 * binding 3.repos[1]") into 'what' ('cap' bytes). Call between vm_eval and vm_end. */
bool vm_unchanged(struct vm *vm, char *what, size_t cap);

/* Puts back every binding's params as vm_set_bindings made them. Returns PV_ENOMEM
 * with a message when that fails. */
pv_status vm_restore_params(struct vm *vm, struct pv_err *err);

/* Runs the mutate function of binding 'i' on the request of the last vm_begin. Fills
 * *out like vm_eval (VM_SKIPPED when the policy does not mutate or the object is out
 * of scope) and, on VM_OK, *ops with the JSONPatch operations it returned (a cJSON
 * array the caller frees, or NULL for none). */
void vm_mutate(struct vm *vm, size_t i, struct vm_result *out, cJSON **ops);

/* Drops the request table so its memory can be collected. */
void vm_end(struct vm *vm);

void vm_result_fini(struct vm_result *r);

/* Bytes the Lua state holds now (for benchmarks and tests). */
size_t vm_memory_used(const struct vm *vm);

#endif
