-- lua/paved.lua: the `paved` module every policy requires. Pure-Lua helpers for
-- Kubernetes objects; paved.regex is the one C function (PCRE2), injected by
-- lua/api.c before this chunk runs as `__paved_c`.
--
-- The request table a policy's check(req, params, violation) receives:
--   req.kind        "deploy" | "provision" | "credential"
--   req.operation   "CREATE" | "UPDATE" | "DELETE" | "CONNECT"
--   req.source      "admission" | "ci" | "api"
--   req.subject     { team=, service=, env=, actor=, groups={} }
--   req.object      the resource (JSON objects are tables; JSON null inside an
--                   array is paved.null; a null object member is absent)
--   req.old_object  the previous version on UPDATE, else nil
--   req.namespace   the effective namespace (metadata.namespace, else the
--                   request's namespace), or nil for cluster-scoped objects
--   req.dry_run     boolean
--   req.inventory   array of objects already in the cluster (may be empty)
--   req.user_info   { username=, groups={} } of the requester (may be empty)
-- violation(fmt, ...) records one violation; its text should say what to change.

local c = __paved_c
local M = {}

M.null = c.null

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local sfind, ssub, slower, supper, sbyte = string.find, string.sub, string.lower, string.upper,
    string.byte

-- ---- Safe access ----

-- paved.get(t, k1, k2, ...) -> value|nil: nested lookup that stops at the
-- first missing step or non-table value.
function M.get(t, ...)
    local n = select("#", ...)
    for i = 1, n do
        if type(t) ~= "table" then
            return nil
        end
        t = t[(select(i, ...))]
    end
    return t
end

-- paved.list(v) -> table: v when it is a table, else an empty table, so that
-- ipairs() over an optional field never raises.
local EMPTY = setmetatable({}, { __newindex = function() error("paved.list(): read-only", 2) end })
function M.list(v)
    if type(v) == "table" then
        return v
    end
    return EMPTY
end
local list = M.list

-- paved.contains(list, v) -> bool
function M.contains(t, v)
    for _, x in ipairs(list(t)) do
        if x == v then
            return true
        end
    end
    return false
end

-- paved.set(list) -> table with each element as key mapped to true.
function M.set(t)
    local s = {}
    for _, x in ipairs(list(t)) do
        s[x] = true
    end
    return s
end

-- ---- String matching ----

-- paved.has_prefix(s, prefix) -> bool
function M.has_prefix(s, prefix)
    return type(s) == "string" and type(prefix) == "string" and ssub(s, 1, #prefix) == prefix
end
local has_prefix = M.has_prefix

-- paved.has_suffix(s, suffix) -> bool
function M.has_suffix(s, suffix)
    return type(s) == "string" and type(suffix) == "string"
        and (#suffix == 0 or ssub(s, -#suffix) == suffix)
end

-- paved.glob(pattern, s) -> bool: '*' matches any run of characters, '?' one
-- character; everything else is literal.
function M.glob(pattern, s)
    if type(pattern) ~= "string" or type(s) ~= "string" then
        return false
    end
    local pi, si, star, mark = 1, 1, nil, 0
    local pn, sn = #pattern, #s
    while si <= sn do
        local pc = sbyte(pattern, pi)
        if pi <= pn and (pc == 63 or pc == sbyte(s, si)) then -- '?' or literal
            pi, si = pi + 1, si + 1
        elseif pi <= pn and pc == 42 then -- '*'
            star, mark, pi = pi, si, pi + 1
        elseif star then
            pi, mark = star + 1, mark + 1
            si = mark
        else
            return false
        end
    end
    while pi <= pn and sbyte(pattern, pi) == 42 do
        pi = pi + 1
    end
    return pi > pn
end

-- paved.match_entry(entry, s) -> bool: the list-entry rule used by the
-- Gatekeeper library: "*" matches everything, a trailing '*' makes the entry a
-- prefix, anything else must match exactly.
function M.match_entry(entry, s)
    if type(entry) ~= "string" or type(s) ~= "string" then
        return false
    end
    if entry == "*" then
        return true
    end
    if ssub(entry, -1) == "*" then
        return ssub(s, 1, #entry - 1) == ssub(entry, 1, -2)
    end
    return entry == s
end
local match_entry = M.match_entry

-- paved.match_any(entries, s) -> bool: match_entry over a list.
function M.match_any(entries, s)
    for _, e in ipairs(list(entries)) do
        if match_entry(e, s) then
            return true
        end
    end
    return false
end

-- paved.is_exempt(image, exemptImages) -> bool
function M.is_exempt(image, exempt)
    return M.match_any(exempt, image)
end

-- paved.regex(pattern, s) -> bool: PCRE2 search (not anchored); raises on an
-- invalid pattern. Patterns are compiled once and cached per Lua state.
M.regex = c.regex

-- ---- Pod-bearing objects ----

M.POD_CONTROLLERS = {
    Deployment = true, ReplicaSet = true, ReplicationController = true,
    StatefulSet = true, DaemonSet = true, Job = true,
}

-- paved.pod_spec(obj) -> spec, metadata | nil: the pod spec and pod metadata of
-- a Pod, of a controller's pod template, or of a CronJob's job template.
-- metadata may be an empty table when the template has none.
function M.pod_spec(obj)
    if type(obj) ~= "table" then
        return nil
    end
    local kind, spec = obj.kind, obj.spec
    if type(spec) ~= "table" then
        return nil
    end
    if kind == "Pod" then
        return spec, (type(obj.metadata) == "table" and obj.metadata or {})
    end
    local tmpl
    if M.POD_CONTROLLERS[kind] then
        tmpl = spec.template
    elseif kind == "CronJob" then
        tmpl = M.get(spec, "jobTemplate", "spec", "template")
    elseif kind == "PodTemplate" then
        tmpl = obj.template
    end
    if type(tmpl) ~= "table" or type(tmpl.spec) ~= "table" then
        return nil
    end
    return tmpl.spec, (type(tmpl.metadata) == "table" and tmpl.metadata or {})
end

local ALL_FIELDS = { "containers", "initContainers", "ephemeralContainers" }
M.ALL_CONTAINERS = ALL_FIELDS
M.REGULAR_AND_INIT = { "containers", "initContainers" }
M.REGULAR = { "containers" }

-- paved.containers(obj [, fields]) -> iterator yielding (container, field, spec)
-- for every container of a pod-bearing object. 'fields' is a list of
-- "containers", "initContainers", "ephemeralContainers" (default: all three).
-- Non-table entries are skipped.
function M.containers(obj, fields)
    local spec = M.pod_spec(obj)
    fields = fields or ALL_FIELDS
    local fi, ci, cur = 1, 0, nil
    return function()
        if not spec then
            return nil
        end
        while fields[fi] do
            if cur == nil then
                cur = list(spec[fields[fi]])
                ci = 0
            end
            ci = ci + 1
            local ctr = cur[ci]
            if ctr == nil then
                fi, cur = fi + 1, nil
            elseif type(ctr) == "table" then
                return ctr, fields[fi], spec
            end
        end
        return nil
    end
end

-- paved.volumes(obj) -> iterator yielding each volume table of the pod spec.
function M.volumes(obj)
    local spec = M.pod_spec(obj)
    local vols = list(spec and spec.volumes)
    local i = 0
    return function()
        while true do
            i = i + 1
            local v = vols[i]
            if v == nil or type(v) == "table" then
                return v
            end
        end
    end
end

-- ---- Images ----

-- paved.image(ref) -> table|nil: a container image reference split into
-- { registry=, repository=, tag=, digest=, name= }. registry is the first path
-- component when it looks like a host (contains '.' or ':' or is "localhost"),
-- else nil (Docker Hub). name is the last path component. tag and digest are
-- nil when absent.
function M.image(ref)
    if type(ref) ~= "string" or ref == "" then
        return nil
    end
    local rest, digest = ref, nil
    local at = sfind(rest, "@", 1, true)
    if at then
        rest, digest = ssub(rest, 1, at - 1), ssub(rest, at + 1)
    end
    local tag
    local lastslash = 0
    for i = #rest, 1, -1 do
        if sbyte(rest, i) == 47 then
            lastslash = i
            break
        end
    end
    local colon = sfind(rest, ":", lastslash + 1, true)
    if colon then
        rest, tag = ssub(rest, 1, colon - 1), ssub(rest, colon + 1)
    end
    local registry, repository = nil, rest
    local slash = sfind(rest, "/", 1, true)
    if slash then
        local first = ssub(rest, 1, slash - 1)
        if sfind(first, "[.:]") or first == "localhost" then
            registry, repository = first, ssub(rest, slash + 1)
        end
    end
    local name = repository:match("([^/]*)$")
    return { registry = registry, repository = repository, tag = tag, digest = digest, name = name }
end

-- ---- Quantities ----

local SUFFIX = {
    n = 1e-9, u = 1e-6, m = 1e-3, [""] = 1, k = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15, E = 1e18,
    Ki = 2 ^ 10, Mi = 2 ^ 20, Gi = 2 ^ 30, Ti = 2 ^ 40, Pi = 2 ^ 50, Ei = 2 ^ 60,
}

-- paved.quantity(v) -> number|nil: a Kubernetes quantity ("500m", "1Gi",
-- "1e3", 2) in base units (cores, bytes). nil when v is not a valid quantity.
function M.quantity(v)
    if type(v) == "number" then
        return v
    end
    if type(v) ~= "string" then
        return nil
    end
    local sign, num, suffix = v:match("^([+-]?)(%d*%.?%d*)(.*)$")
    if not num or num == "" or num == "." then
        return nil
    end
    local n = tonumber(num)
    if not n then
        return nil
    end
    local mult = SUFFIX[suffix]
    if not mult then
        local e = suffix:match("^[eE]([+-]?%d+)$")
        if not e then
            return nil
        end
        mult = 10 ^ tonumber(e)
    end
    n = n * mult
    if sign == "-" then
        n = -n
    end
    return n
end

-- ---- Label selectors ----

-- paved.selector_matches(selector, labels) -> bool: a Kubernetes LabelSelector
-- ({matchLabels=, matchExpressions=}) against a labels table. An empty selector
-- matches everything; a nil selector matches everything.
function M.selector_matches(sel, labels)
    if type(sel) ~= "table" then
        return true
    end
    labels = type(labels) == "table" and labels or {}
    for k, v in pairs(list(sel.matchLabels)) do
        if labels[k] ~= v then
            return false
        end
    end
    for _, e in ipairs(list(sel.matchExpressions)) do
        local have = labels[e.key]
        local op = e.operator
        if op == "In" then
            if have == nil or not M.contains(e.values, have) then
                return false
            end
        elseif op == "NotIn" then
            if have ~= nil and M.contains(e.values, have) then
                return false
            end
        elseif op == "Exists" then
            if have == nil then
                return false
            end
        elseif op == "DoesNotExist" then
            if have ~= nil then
                return false
            end
        else
            error("label selector: unknown operator " .. tostring(op), 2)
        end
    end
    return true
end

-- ---- Inventory ----

-- paved.inventory(req [, kind [, namespace]]) -> iterator over the objects of
-- req.inventory, optionally only those of 'kind' and (when given) 'namespace'.
function M.inventory(req, kind, namespace)
    local inv = list(req.inventory)
    local i = 0
    return function()
        while true do
            i = i + 1
            local o = inv[i]
            if o == nil then
                return nil
            end
            if type(o) == "table" and (kind == nil or o.kind == kind)
                and (namespace == nil or M.get(o, "metadata", "namespace") == namespace) then
                return o
            end
        end
    end
end

-- paved.is_update(req) -> bool
function M.is_update(req)
    return req.operation == "UPDATE"
end

-- paved.name(obj) -> "kind/namespace/name" for messages.
function M.name(obj)
    local md = type(obj) == "table" and obj.metadata or nil
    local ns = type(md) == "table" and md.namespace
    local nm = type(md) == "table" and md.name or "?"
    return tostring(type(obj) == "table" and obj.kind or "?") .. "/" ..
        (ns and (tostring(ns) .. "/") or "") .. tostring(nm)
end

M.lower, M.upper = slower, supper

return M
