local paved = require "paved"

local type, pairs, tostring = type, pairs, tostring
local concat, sort = table.concat, table.sort

-- The selector as a set of key=value pairs (a missing selector is the empty
-- set), with its size.
local function selector(svc)
    local sel = paved.get(svc, "spec", "selector")
    local n = 0
    if type(sel) ~= "table" then
        return nil, 0
    end
    for _ in pairs(sel) do
        n = n + 1
    end
    return sel, n
end

-- True when two selectors hold the same pairs. Two Services without a
-- selector compare equal, as upstream (both flatten to the empty set).
local function same(a, na, b)
    if type(b) ~= "table" then
        return na == 0
    end
    local nb = 0
    for k, v in pairs(b) do
        nb = nb + 1
        if nb > na or a[k] ~= v then
            return false
        end
    end
    return nb == na
end

local function text(sel)
    local parts = {}
    for k, v in pairs(sel or {}) do
        parts[#parts + 1] = tostring(k) .. "=" .. tostring(v)
    end
    sort(parts)
    return concat(parts, ",")
end

return {
    id = "unique-service-selector",
    title = "Service selectors are unique across the cluster",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "Service" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        if obj.kind ~= "Service" or obj.apiVersion ~= "v1" then
            return
        end
        local mine, n = selector(obj)
        local my_name, my_ns = paved.get(obj, "metadata", "name"), req.namespace
        for other in paved.inventory(req, "Service") do
            local md = type(other.metadata) == "table" and other.metadata or {}
            -- Any namespaced Service except this very object.
            if md.namespace ~= nil and not (md.namespace == my_ns and md.name == my_name
                    and other.apiVersion == obj.apiVersion)
                and same(mine, n, paved.get(other, "spec", "selector")) then
                violation("Service %q has the same selector {%s} as Service %s/%s; change "
                    .. "spec.selector so that it is unique", tostring(my_name or "?"), text(mine),
                    tostring(md.namespace), tostring(md.name))
            end
        end
    end,
}
