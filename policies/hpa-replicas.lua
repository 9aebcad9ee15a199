local paved = require "paved"

local type, tostring, num = type, tostring, paved.num

local function ranges_text(ranges)
    return paved.ranges_text(ranges, "min_replicas", "max_replicas") or "none configured"
end

return {
    id = "hpa-replicas",
    title = "HorizontalPodAutoscalers stay within replica limits and target existing workloads",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "HorizontalPodAutoscaler" } },
    params = {},
    check = function(req, params, violation)
        local hpa = req.object
        if hpa.kind ~= "HorizontalPodAutoscaler" then
            return
        end
        local name = tostring(paved.get(hpa, "metadata", "name") or "?")
        local spec = type(hpa.spec) == "table" and hpa.spec or {}
        -- minReplicas defaults to 1 in the Kubernetes API; maxReplicas is
        -- required, so without it the replica rules have nothing to check.
        local lo = spec.minReplicas
        if lo == nil then
            lo = 1
        end
        local hi = spec.maxReplicas
        if type(lo) == "number" and type(hi) == "number" then
            -- [lo, hi] must lie inside one range; without any range nothing
            -- is allowed, as upstream.
            if not paved.in_ranges(params.ranges, lo, hi, "min_replicas", "max_replicas") then
                violation("HorizontalPodAutoscaler %q: minReplicas %s / maxReplicas %s is outside the "
                    .. "allowed replica ranges (%s); set both inside one allowed range",
                    name, num(lo), num(hi), ranges_text(params.ranges))
            end
            -- Upstream requires the spread parameter: without it every HPA violates.
            local spread = params.minimumReplicaSpread
            if type(spread) ~= "number" or hi - lo < spread then
                violation("HorizontalPodAutoscaler %q: maxReplicas - minReplicas is %s, below the "
                    .. "required spread of %s; widen the gap between minReplicas and maxReplicas",
                    name, num(hi - lo), type(spread) == "number" and num(spread) or "(unset)")
            end
        end
        if params.enforceScaleTargetRef then
            local ref = spec.scaleTargetRef
            if type(ref) == "table" then
                local found = false
                local ns = req.namespace
                for o in paved.inventory(req, ref.kind, ns) do
                    if ns ~= nil and o.kind == ref.kind and o.apiVersion == ref.apiVersion
                        and paved.get(o, "metadata", "name") == ref.name then
                        found = true
                        break
                    end
                end
                if not found then
                    violation("HorizontalPodAutoscaler %q: scaleTargetRef %s %s/%s does not exist in "
                        .. "namespace %s; point it at an existing workload",
                        name, tostring(ref.apiVersion), tostring(ref.kind), tostring(ref.name),
                        tostring(req.namespace))
                end
            end
        end
    end,
}
