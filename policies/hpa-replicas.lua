local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring
local mtype, floor, sformat, concat = math.type, math.floor, string.format, table.concat

-- Renders a JSON number without a trailing ".0" for integral floats.
local function num(n)
    if mtype(n) == "float" and n == floor(n) and n > -2 ^ 53 and n < 2 ^ 53 then
        return sformat("%d", n)
    end
    return tostring(n)
end

local function ranges_text(ranges)
    local parts = {}
    for _, r in ipairs(paved.list(ranges)) do
        if type(r) == "table" then
            parts[#parts + 1] = num(r.min_replicas) .. "-" .. num(r.max_replicas)
        end
    end
    if #parts == 0 then
        return "none configured"
    end
    return concat(parts, ", ")
end

-- True when [lo, hi] lies inside one of the configured ranges (inclusive).
-- Without any range nothing is allowed, as upstream.
local function within_ranges(ranges, lo, hi)
    for _, r in ipairs(paved.list(ranges)) do
        if type(r) == "table" and type(r.min_replicas) == "number" and type(r.max_replicas) == "number"
            and r.min_replicas <= lo and r.max_replicas >= hi then
            return true
        end
    end
    return false
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
            if not within_ranges(params.ranges, lo, hi) then
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
