local paved = require "paved"

local type, tostring, num = type, tostring, paved.num

-- maxUnavailable is bad only when it is a number <= 0. Absent means fine, and
-- so does a percentage string (upstream compares with the JSON ordering, in
-- which every string is greater than every number).
local function bad_max_unavailable(spec)
    local v = type(spec) == "table" and spec.maxUnavailable or nil
    return type(v) == "number" and v <= 0
end

-- minAvailable must stay below the workload's replicas. Absent means no
-- limit. Upstream compares replicas > minAvailable with the JSON ordering, so
-- a string minAvailable (e.g. "50%") is never below a number of replicas and
-- always violates.
local function bad_min_available(spec, replicas)
    local v = type(spec) == "table" and spec.minAvailable or nil
    if v == nil then
        return false
    end
    if type(v) == "number" then
        return not (replicas > v)
    end
    return type(v) == "string"
end

return {
    id = "pdb-limits",
    title = "PodDisruptionBudgets leave room for voluntary disruptions",
    golden_path = false,
    enforcement = "deny",
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        local name = tostring(paved.get(obj, "metadata", "name") or "?")
        if obj.kind == "PodDisruptionBudget" and bad_max_unavailable(obj.spec) then
            violation("PodDisruptionBudget %q: maxUnavailable is %s, which blocks every voluntary "
                .. "eviction; set it to a positive number", name, num(obj.spec.maxUnavailable))
        end
        -- Workloads: compare with every policy/v1 PDB of the namespace whose
        -- matchLabels are a subset of the workload's selector matchLabels.
        local labels = paved.get(obj, "spec", "selector", "matchLabels")
        local ns = req.namespace
        if type(labels) ~= "table" or ns == nil then
            return
        end
        local replicas = obj.spec.replicas
        for pdb in paved.inventory(req, "PodDisruptionBudget", ns) do
            if pdb.apiVersion == "policy/v1" then
                local spec = pdb.spec
                local sel = paved.get(spec, "selector", "matchLabels")
                if paved.labels_subset(sel, labels) then
                    local pname = tostring(paved.get(pdb, "metadata", "name") or "?")
                    if bad_max_unavailable(spec) then
                        violation("%s %q is selected by PodDisruptionBudget %q whose maxUnavailable is %s; "
                            .. "set the PDB's maxUnavailable to a positive number", tostring(obj.kind), name,
                            pname, num(spec.maxUnavailable))
                    end
                    -- Without a numeric replicas count there is nothing to compare.
                    if type(replicas) == "number" and bad_min_available(spec, replicas) then
                        violation("%s %q has %s replica(s) but PodDisruptionBudget %q has minAvailable %s; "
                            .. "raise replicas above minAvailable or lower the PDB's minAvailable",
                            tostring(obj.kind), name, num(replicas), pname, num(spec.minAvailable))
                    end
                end
            end
        end
    end,
}
