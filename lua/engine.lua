-- lua/engine.lua: the evaluation driver inside each sandboxed Lua state. Owns the
-- loaded policies, the bindings (policy + params + match scope) and the request of
-- the current evaluation. lua/vm.c is its only caller; policies never see it.

local paved = require "paved"
local c = __paved_c

local type, pairs, ipairs, tostring, error, select = type, pairs, ipairs, tostring, error, select
local sformat, smatch = string.format, string.match

local E = {}

local policies = {}      -- array of validated policy tables, in load order
local by_id = {}         -- id -> policy
local bindings = {}      -- array of { policy=, params=, match=, kinds= }
local req = nil          -- the request being evaluated

-- ---- Loading ----

local ENFORCEMENTS = { deny = true, warn = true, audit = true }
local ON_ERROR = { deny = true, allow = true }

-- The admission operations a policy decides: applies_to.operations, by default
-- CREATE and UPDATE. A DELETE or CONNECT reaches only policies that ask for it, so
-- cleaning up a non-compliant object is never blocked by rules about its content.
local DEFAULT_OPERATIONS = { CREATE = true, UPDATE = true }
local function operation_set(list)
    if type(list) ~= "table" then
        return DEFAULT_OPERATIONS
    end
    local set = {}
    for _, op in ipairs(list) do
        set[op] = true
    end
    return set
end

-- 'last' is the last line of the file: where a policy without a check function
-- is reported, since its table has no position of its own.
local function validate(p, file, last)
    local at = (type(p) == "table" and type(p.check) == "function") and c.where(p.check)
        or (file .. ":" .. tostring(last))
    if type(p) ~= "table" then
        error(sformat("%s: the file must return a policy table or a list of them, got %s", at,
            type(p)), 0)
    end
    if type(p.id) ~= "string" or not smatch(p.id, "^[a-z0-9][a-z0-9_-]*[A-Za-z0-9_]*$") then
        error(sformat("%s: policy id must be a kebab-case string, got %s", at, tostring(p.id)), 0)
    end
    if by_id[p.id] then
        error(sformat("%s: policy id %q is already defined at %s", at, p.id, by_id[p.id].at), 0)
    end
    if type(p.check) ~= "function" then
        error(sformat("%s: policy %q has no check function", at, p.id), 0)
    end
    if p.mutate ~= nil and type(p.mutate) ~= "function" then
        error(sformat("%s: policy %q: mutate must be a function", at, p.id), 0)
    end
    if p.title ~= nil and type(p.title) ~= "string" then
        error(sformat("%s: policy %q: title must be a string", at, p.id), 0)
    end
    local enf = p.enforcement or "deny"
    if not ENFORCEMENTS[enf] then
        error(sformat("%s: policy %q: enforcement must be deny, warn or audit, got %s",
            at, p.id, tostring(enf)), 0)
    end
    local golden = p.golden_path == true
    local on_error = p.on_error or (golden and "deny" or "allow")
    if not ON_ERROR[on_error] then
        error(sformat("%s: policy %q: on_error must be deny or allow, got %s", at, p.id,
            tostring(on_error)), 0)
    end
    if p.params ~= nil and type(p.params) ~= "table" then
        error(sformat("%s: policy %q: params must be a table", at, p.id), 0)
    end
    local ex = p.exceptions
    if ex ~= nil and type(ex) ~= "table" then
        error(sformat("%s: policy %q: exceptions must be a table", at, p.id), 0)
    end
    return {
        id = p.id, title = p.title or p.id, file = file, at = at, check = p.check,
        mutate = p.mutate,
        golden_path = golden, enforcement = enf, on_error = on_error,
        params = p.params or {}, resources = paved.get(p, "applies_to", "resources"),
        operations = operation_set(paved.get(p, "applies_to", "operations")),
        exceptions_allowed = not ex or ex.allowed ~= false,
        exceptions_self_service = ex ~= nil and ex.self_service == true,
        exceptions_max_days = ex and ex.max_days or 30,
    }
end

-- E.register(value, file, last): value is what a policy file returned: one policy
-- table or an array of them; last is the file's last line.
function E.register(v, file, last)
    if type(v) == "table" and v.id == nil and v[1] ~= nil then
        for _, p in ipairs(v) do
            local q = validate(p, file, last)
            policies[#policies + 1] = q
            by_id[q.id] = q
        end
    else
        local q = validate(v, file, last)
        policies[#policies + 1] = q
        by_id[q.id] = q
    end
end

-- E.policies() -> array of policies (read by vm.c for their metadata).
function E.policies()
    return policies
end

-- ---- Bindings ----

local function merge(defaults, over)
    if type(over) ~= "table" then
        return defaults
    end
    local m = {}
    for k, v in pairs(defaults) do
        m[k] = v
    end
    for k, v in pairs(over) do
        m[k] = v
    end
    return m
end

-- Precomputes the kind set of a Gatekeeper `match.kinds` list, or of the
-- policy's applies_to.resources when the binding has no match.
local function kind_set(match, policy)
    local set = nil
    if type(match) == "table" and type(match.kinds) == "table" then
        set = {}
        for _, k in ipairs(match.kinds) do
            local groups = paved.list(type(k) == "table" and k.apiGroups)
            local kinds = paved.list(type(k) == "table" and k.kinds)
            for _, kind in ipairs(#kinds > 0 and kinds or { "*" }) do
                set[kind] = set[kind] or {}
                for _, g in ipairs(#groups > 0 and groups or { "*" }) do
                    set[kind][g] = true
                end
            end
        end
    elseif type(policy.resources) == "table" then
        -- A match without kinds keeps the policy's own applies_to.resources.
        set = {}
        for _, kind in ipairs(policy.resources) do
            set[kind] = { ["*"] = true }
        end
    end
    return set
end

-- E.set_bindings(list): list of { policy = id, params = table|nil, match = table|nil }.
-- Raises naming the entry on an unknown policy id.
function E.set_bindings(list)
    local out = {}
    for i, b in ipairs(list) do
        local p = by_id[b.policy]
        if not p then
            error(sformat("binding %d: unknown policy %q", i, tostring(b.policy)), 0)
        end
        out[i] = { policy = p, params = merge(p.params, b.params), match = b.match,
            kinds = kind_set(b.match, p) }
    end
    bindings = out
end

-- E.params_of(i) -> the params table binding i hands to its policy.
function E.params_of(i)
    return bindings[i].params
end

-- E.set_params(i, t): replaces them (after a policy changed them).
function E.set_params(i, t)
    bindings[i].params = t
end

-- ---- Scope (Gatekeeper match semantics) ----

local function api_group(obj)
    local av = type(obj.apiVersion) == "string" and obj.apiVersion or ""
    local slash = av:find("/", 1, true)
    return slash and av:sub(1, slash - 1) or ""
end

local function name_matches(patterns, name)
    for _, p in ipairs(paved.list(patterns)) do
        if paved.glob(p, name) then
            return true
        end
    end
    return false
end

-- The namespace object of the request: the object itself when it is a
-- Namespace, else the inventory Namespace of that name.
local function namespace_object(obj, ns)
    if obj.kind == "Namespace" then
        return obj
    end
    if ns == nil then
        return nil
    end
    for o in paved.inventory(req, "Namespace") do
        if paved.get(o, "metadata", "name") == ns then
            return o
        end
    end
    return nil
end

local function in_scope(b, obj)
    local kinds = b.kinds
    if kinds then
        local groups = kinds[obj.kind] or kinds["*"]
        if not groups or not (groups["*"] or groups[api_group(obj)]) then
            return false
        end
    end
    local m = b.match
    if type(m) ~= "table" then
        return true
    end
    local ns = req.namespace
    local cluster_scoped = ns == nil or obj.kind == "Namespace"
    local scope = m.scope
    if scope == "Namespaced" and cluster_scoped then
        return false
    elseif scope == "Cluster" and not cluster_scoped then
        return false
    end
    -- For a Namespace object Gatekeeper matches namespaces against its own name.
    local nsname = obj.kind == "Namespace" and paved.get(obj, "metadata", "name") or ns
    -- Cluster-scoped objects other than Namespaces pass namespace criteria.
    if m.namespaces ~= nil and nsname ~= nil and not name_matches(m.namespaces, nsname) then
        return false
    end
    if m.excludedNamespaces ~= nil and nsname ~= nil and name_matches(m.excludedNamespaces, nsname) then
        return false
    end
    if m.name ~= nil and not paved.glob(m.name, paved.get(obj, "metadata", "name") or "") then
        return false
    end
    if m.labelSelector ~= nil then
        local labels = paved.get(obj, "metadata", "labels")
        if not paved.selector_matches(m.labelSelector, labels) then
            return false
        end
    end
    if m.namespaceSelector ~= nil then
        local nso = namespace_object(obj, nsname)
        if nso == nil and not cluster_scoped then
            return false
        end
        if nso ~= nil and not paved.selector_matches(m.namespaceSelector,
                paved.get(nso, "metadata", "labels")) then
            return false
        end
    end
    return true
end

-- ---- Evaluation ----

-- E.set_request(r): the request every following E.eval() sees.
function E.set_request(r)
    req = r
end

-- E.eval(i, violation) -> bool: runs binding i on the current request; false
-- when the object is out of the binding's scope. violation is the C collector.
function E.eval(i, violation)
    local b = bindings[i]
    local obj = req.object
    if type(obj) ~= "table" or not b.policy.operations[req.operation] or not in_scope(b, obj) then
        return false
    end
    local ret = b.policy.check(req, b.params, violation)
    -- check() may also return its violations: a message or a list of messages.
    if ret ~= nil then
        local t = type(ret)
        if t == "string" then
            violation(ret)
        elseif t == "table" then
            for _, m in ipairs(ret) do
                if type(m) ~= "string" then
                    error(sformat("%s: check() returned a list holding a %s; return nothing, "
                        .. "a message or a list of messages", b.policy.at, type(m)), 0)
                end
                violation(m)
            end
        else
            error(sformat("%s: check() returned a %s; return nothing, a message or a list "
                .. "of messages", b.policy.at, t), 0)
        end
    end
    return true
end

-- E.mutate(i) -> list of JSONPatch operations | nil: runs the mutate function of
-- binding i's policy on the current request, when it has one and the object is in
-- scope.
function E.mutate(i)
    local b = bindings[i]
    local obj = req.object
    local fn = b.policy.mutate
    if fn == nil or type(obj) ~= "table" or not b.policy.operations[req.operation]
        or not in_scope(b, obj) then
        return nil
    end
    local ops = fn(req, b.params)
    if ops == nil then
        return nil
    end
    if type(ops) ~= "table" or (ops[1] == nil and next(ops) ~= nil) then
        error(sformat("%s: mutate() returned a %s; return a list of JSONPatch operations",
            b.policy.at, type(ops) == "table" and "table that is not a list" or type(ops)), 0)
    end
    if ops[1] == nil then
        return nil
    end
    for k, op in ipairs(ops) do
        if type(op) ~= "table" or type(op.op) ~= "string" or type(op.path) ~= "string" then
            error(sformat("%s: mutate() operation %d needs op and path strings", b.policy.at, k), 0)
        end
    end
    return ops
end

return E
