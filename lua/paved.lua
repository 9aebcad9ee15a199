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
-- req and params are read-only: req raises on assignment, and deeper writes are
-- detected after the evaluation and make it a policy error.

local c = __paved_c
local M = {}

M.null = c.null

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
-- Captured before the sandbox narrows string.find/match/gmatch/gsub for policies
-- (Lua patterns are trusted here: these patterns are fixed and linear).
local smatch = string.match
local sfind, ssub, slower, supper, sbyte = string.find, string.sub, string.lower, string.upper,
    string.byte
local sformat, concat, mtype, floor = string.format, table.concat, math.type, math.floor

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

-- paved.is_set(v) -> bool: v is present and not false (Rego truthiness: a
-- field holding false counts as unset).
function M.is_set(v)
    return v ~= nil and v ~= false
end

-- ---- Messages ----

-- paved.join(list [, empty]) -> string: the elements of list, each through
-- tostring, joined with ", "; 'empty' (default "") when list is empty or not a
-- table.
function M.join(t, empty)
    local out = {}
    for i, x in ipairs(list(t)) do
        out[i] = tostring(x)
    end
    if out[1] == nil then
        return empty or ""
    end
    return concat(out, ", ")
end

-- paved.num(n) -> string: a JSON number for messages, without the trailing
-- ".0" of an integral float (2.0 -> "2"); anything else through tostring.
function M.num(n)
    if mtype(n) == "float" and n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
        return sformat("%d", n)
    end
    return tostring(n)
end

-- paved.unique(violation) -> function(fmt, ...): a violation function that
-- records each distinct message once, as Gatekeeper reports a set of messages.
-- Use it where a repeated item (a container listed twice, a duplicate list
-- entry) would otherwise repeat a violation word for word.
function M.unique(violation)
    local seen = {}
    return function(fmt, ...)
        local msg = select("#", ...) > 0 and sformat(fmt, ...) or fmt
        if not seen[msg] then
            seen[msg] = true
            violation(msg)
        end
    end
end

-- paved.once(violation) -> function(key, fmt, ...): a violation function that
-- records at most one violation per key (any value but nil), the first one.
-- For policies whose upstream message names less than paved's does, so that
-- the key, not the text, decides what counts as a repeat.
function M.once(violation)
    local seen = {}
    return function(key, fmt, ...)
        if not seen[key] then
            seen[key] = true
            violation(fmt, ...)
        end
    end
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
-- invalid pattern. Patterns are compiled once and cached per Lua state, and every
-- match runs under a backtracking budget, so no pattern can hang a request.
M.regex = c.regex

-- paved.regex_match(pattern, s) -> string...|nil: the first match of the PCRE2
-- pattern in s: its capture groups (an unset group is nil) or, without groups,
-- the whole match; nil when nothing matches. This is how policies extract parts
-- of strings: Lua patterns (string.match and friends) are not available to them.
M.regex_match = c.regex_match

-- paved.quota(team) -> table|nil: what 'team' may hold and holds now, as the
-- server's ledger says: { team=, limits={cpu_millis=, memory_bytes=,
-- storage_bytes=, environments=, monthly_cost=}, used={...}, remaining={...},
-- currency= } (a limit of -1 is none); nil where no ledger is available (paved
-- check and paved test run without one).
M.quota = c.quota

-- ---- Pod-bearing objects ----

-- paved.POD_KINDS: the kinds that carry a pod spec (Pod, the controllers and
-- CronJob), for a policy's applies_to.resources. Do not modify it.
M.POD_KINDS = { "Pod", "Deployment", "ReplicaSet", "ReplicationController", "StatefulSet",
    "DaemonSet", "Job", "CronJob" }

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

-- paved.pod_spec_pointer(obj) -> string|nil: the JSON Pointer of the pod spec that
-- paved.pod_spec returns ("/spec", "/spec/template/spec",
-- "/spec/jobTemplate/spec/template/spec"), for mutate() patches.
function M.pod_spec_pointer(obj)
    if not M.pod_spec(obj) then
        return nil
    end
    local kind = obj.kind
    if kind == "Pod" then
        return "/spec"
    elseif kind == "CronJob" then
        return "/spec/jobTemplate/spec/template/spec"
    elseif kind == "PodTemplate" then
        return "/template/spec"
    end
    return "/spec/template/spec"
end

-- paved.pointer_escape(s) -> s with '~' and '/' escaped for a JSON Pointer token.
function M.pointer_escape(s)
    local out = {}
    for i = 1, #s do
        local ch = ssub(s, i, i)
        out[i] = ch == "~" and "~0" or (ch == "/" and "~1" or ch)
    end
    return table.concat(out)
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

-- paved.CONTAINER_LABEL: how a container of each pod-spec list is named in
-- messages ("container", "init container", "ephemeral container"), by field.
M.CONTAINER_LABEL = {
    containers = "container",
    initContainers = "init container",
    ephemeralContainers = "ephemeral container",
}

-- paved.each_container(req, params [, fields]) -> iterator yielding
-- (container, field, spec) like paved.containers(req.object, fields), but
-- skipping the containers whose image matches params.exemptImages
-- (paved.is_exempt).
function M.each_container(req, params, fields)
    local exempt = params.exemptImages
    local next_ctr = M.containers(req.object, fields)
    return function()
        while true do
            local ctr, field, spec = next_ctr()
            if ctr == nil or not M.match_any(exempt, ctr.image) then
                return ctr, field, spec
            end
        end
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
    local name = smatch(repository, "([^/]*)$")
    return { registry = registry, repository = repository, tag = tag, digest = digest, name = name }
end

-- ---- Quantities ----

local SUFFIX = {
    n = 1e-9, u = 1e-6, m = 1e-3, [""] = 1, k = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15, E = 1e18,
    Ki = 2 ^ 10, Mi = 2 ^ 20, Gi = 2 ^ 30, Ti = 2 ^ 40, Pi = 2 ^ 50, Ei = 2 ^ 60,
}

-- A quantity in base units, or nil (see paved.quantity).
local function parse_quantity(v)
    if type(v) == "number" then
        return v
    end
    if type(v) ~= "string" then
        return nil
    end
    local sign, num, suffix = smatch(v, "^([+-]?)(%d*%.?%d*)(.*)$")
    if not num or num == "" or num == "." then
        return nil
    end
    local n = tonumber(num)
    if not n then
        return nil
    end
    local mult = SUFFIX[suffix]
    if not mult then
        local e = smatch(suffix, "^[eE]([+-]?%d+)$")
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

-- paved.quantity(v [, nonnegative]) -> number|nil: a Kubernetes quantity
-- ("500m", "1Gi", "1e3", 2) in base units (cores, bytes). nil when v is not a
-- valid quantity; with nonnegative true, also nil for a negative or NaN value
-- (not a valid resource amount).
-- Parsed strings are remembered (bounded): the same few values ("500m", "1Gi")
-- come back in every request and every resource policy.
local qcache, qcache_n = {}, 0
local QCACHE_MAX = 4096

function M.quantity(v, nonnegative)
    local n
    if type(v) == "string" then
        n = qcache[v]
        if n == nil then
            n = parse_quantity(v) or false
            if qcache_n >= QCACHE_MAX then
                qcache, qcache_n = {}, 0
            end
            qcache[v], qcache_n = n, qcache_n + 1
        end
        n = n or nil
    else
        n = parse_quantity(v)
    end
    if nonnegative and n ~= nil and (n ~= n or n < 0) then
        return nil
    end
    return n
end

-- paved.quantity_le(a, b) -> bool: a <= b for two numbers in base units,
-- tolerating floating-point noise (so "0.2" and "200m" compare equal); false
-- only when a exceeds b by more than that noise (a NaN operand gives true).
function M.quantity_le(a, b)
    return not (a > b + (b < 0 and -b or b) * 1e-12)
end

-- ---- Ranges ----

-- paved.in_ranges(ranges, lo [, hi [, min_key, max_key]]) -> bool: true when
-- the numbers lo..hi (hi defaults to lo) lie inside one of the inclusive
-- ranges, a list of { min=, max= } tables (or of the keys given). false when lo
-- or hi is not a number; entries without numeric bounds match nothing, so an
-- absent or empty list admits no value.
function M.in_ranges(ranges, lo, hi, min_key, max_key)
    hi = hi == nil and lo or hi
    if type(lo) ~= "number" or type(hi) ~= "number" then
        return false
    end
    min_key, max_key = min_key or "min", max_key or "max"
    for _, r in ipairs(list(ranges)) do
        if type(r) == "table" then
            local a, b = r[min_key], r[max_key]
            if type(a) == "number" and type(b) == "number" and a <= lo and hi <= b then
                return true
            end
        end
    end
    return false
end

-- paved.ranges_text(ranges [, min_key, max_key]) -> string|nil: the ranges as
-- "min-max, min-max" for messages (bounds through paved.num), or nil when the
-- list has no table entry.
function M.ranges_text(ranges, min_key, max_key)
    min_key, max_key = min_key or "min", max_key or "max"
    local out = {}
    for _, r in ipairs(list(ranges)) do
        if type(r) == "table" then
            out[#out + 1] = M.num(r[min_key]) .. "-" .. M.num(r[max_key])
        end
    end
    return out[1] and concat(out, ", ") or nil
end

-- ---- Label selectors ----

-- paved.labels_subset(sub, super) -> bool: every key=value of the labels table
-- sub is also in super. A nil or non-table sub is empty (always a subset); a
-- nil or non-table super is empty.
function M.labels_subset(sub, super)
    super = type(super) == "table" and super or EMPTY
    for k, v in pairs(list(sub)) do
        if super[k] ~= v then
            return false
        end
    end
    return true
end

-- paved.selector_matches(selector, labels) -> bool: a Kubernetes LabelSelector
-- ({matchLabels=, matchExpressions=}) against a labels table. An empty selector
-- matches everything; a nil selector matches everything.
function M.selector_matches(sel, labels)
    if type(sel) ~= "table" then
        return true
    end
    labels = type(labels) == "table" and labels or {}
    if not M.labels_subset(sel.matchLabels, labels) then
        return false
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
