-- policies/cost-tags.lua: every workload and namespace says who pays for it. The
-- labels feed cost attribution and the adoption report, so they are part of the
-- golden path: `team`, `service` and `cost-center`, the cost center from an allowed
-- list (or, with an empty list, matching a naming pattern).
local paved = require "paved"

local function quoted_list(t)
    local parts = {}
    for i, v in ipairs(t) do
        parts[i] = string.format("%q", v)
    end
    return table.concat(parts, ", ")
end

return {
    id = "cost-tags",
    title = "Workloads and namespaces carry team, service and cost-center labels",
    golden_path = true,
    enforcement = "deny",
    applies_to = {
        resources = { "Pod", "Deployment", "ReplicaSet", "ReplicationController", "StatefulSet",
            "DaemonSet", "Job", "CronJob", "Namespace" },
    },
    params = {
        -- Labels every object in scope must carry, with a non-empty value.
        labels = { "team", "service", "cost-center" },
        -- The label holding the cost center.
        cost_center_label = "cost-center",
        -- Allowed cost centers; empty means any value matching cost_center_pattern.
        cost_centers = {},
        -- RE2 pattern a cost center must match when cost_centers is empty.
        cost_center_pattern = "^[a-z0-9][a-z0-9-]{1,62}$",
        -- Namespaces need only these labels (they have no service of their own).
        namespace_labels = { "team", "cost-center" },
    },
    exceptions = { allowed = true, self_service = false, max_days = 30 },
    check = function(req, params, violation)
        local obj = req.object
        local labels = paved.get(obj, "metadata", "labels")
        if type(labels) ~= "table" then
            labels = {}
        end
        local required = obj.kind == "Namespace" and params.namespace_labels or params.labels
        for _, key in ipairs(paved.list(required)) do
            local v = labels[key]
            if type(v) ~= "string" or v == "" then
                violation("metadata.labels is missing %q; add it (e.g. %s: <value>) so the cost "
                    .. "of this %s is attributed", key, key, tostring(obj.kind))
            end
        end
        local ccl = params.cost_center_label
        local cc = labels[ccl]
        if type(cc) == "string" and cc ~= "" then
            local allowed = paved.list(params.cost_centers)
            if #allowed > 0 then
                if not paved.contains(allowed, cc) then
                    violation("label %s=%q is not a known cost center; use one of %s", ccl, cc,
                        quoted_list(allowed))
                end
            elseif type(params.cost_center_pattern) == "string"
                and not paved.regex(params.cost_center_pattern, cc) then
                violation("label %s=%q does not match %s; use your team's cost center code", ccl,
                    cc, params.cost_center_pattern)
            end
        end
    end,
}
