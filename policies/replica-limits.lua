local paved = require "paved"

local type = type

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
        if paved.in_ranges(params.ranges, replicas, replicas, "min_replicas", "max_replicas") then
            return
        end
        local allowed = paved.ranges_text(params.ranges, "min_replicas", "max_replicas")
            or "none configured"
        if replicas == nil then
            violation("%s: spec.replicas is not set; set it inside an allowed range (%s)",
                paved.name(obj), allowed)
        else
            violation("%s: spec.replicas %s is not allowed; set it inside an allowed range (%s)",
                paved.name(obj), paved.num(replicas), allowed)
        end
    end,
}
