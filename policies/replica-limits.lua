local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring
local mtype, floor, sformat, concat = math.type, math.floor, string.format, table.concat

local function num(n)
    if mtype(n) == "float" and n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
        return sformat("%d", n)
    end
    return tostring(n)
end

return {
    id = "replica-limits",
    title = "Workload replica counts stay within the allowed ranges",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = { "Deployment", "StatefulSet", "ReplicaSet", "ReplicationController" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        local spec = obj.spec
        -- Objects without a spec are not checked; any object with one must
        -- state a numeric replicas count inside one of the ranges.
        if type(spec) ~= "table" then
            return
        end
        local replicas = spec.replicas
        if type(replicas) == "number" then
            for _, r in ipairs(paved.list(params.ranges)) do
                if type(r) == "table" and type(r.min_replicas) == "number"
                    and type(r.max_replicas) == "number"
                    and r.min_replicas <= replicas and replicas <= r.max_replicas then
                    return
                end
            end
        end
        local parts = {}
        for _, r in ipairs(paved.list(params.ranges)) do
            if type(r) == "table" then
                parts[#parts + 1] = num(r.min_replicas) .. "-" .. num(r.max_replicas)
            end
        end
        local allowed = #parts > 0 and concat(parts, ", ") or "none configured"
        if replicas == nil then
            violation("%s: spec.replicas is not set; set it inside an allowed range (%s)",
                paved.name(obj), allowed)
        else
            violation("%s: spec.replicas %s is not allowed; set it inside an allowed range (%s)",
                paved.name(obj), num(replicas), allowed)
        end
    end,
}
