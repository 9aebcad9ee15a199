-- psp-fsgroup: applies `rule` to the pod's spec.securityContext.fsGroup.
--   MustRunAs: set, and inside one of `ranges` (min..max, inclusive);
--   MayRunAs:  unset, or inside one of `ranges`;
--   RunAsAny:  anything.
-- Without `rule` nothing is checked. Like upstream, an unknown rule allows
-- nothing, and an empty `ranges` list admits no value. One violation per pod.
-- UPDATE is skipped.
local paved = require "paved"

local function in_ranges(ranges, v)
    if type(v) ~= "number" then
        return false
    end
    for _, r in ipairs(paved.list(ranges)) do
        if type(r) == "table" and type(r.min) == "number" and type(r.max) == "number"
            and r.min <= v and v <= r.max then
            return true
        end
    end
    return false
end

local function ranges_text(ranges)
    local out = {}
    for _, r in ipairs(paved.list(ranges)) do
        if type(r) == "table" then
            out[#out + 1] = tostring(r.min) .. "-" .. tostring(r.max)
        end
    end
    return #out > 0 and table.concat(out, ", ") or "none"
end

return {
    id          = "psp-fsgroup",
    title       = "Pod fsGroup lies inside the allowed ranges",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
        "ReplicaSet", "ReplicationController" } },
    params      = {},
    check = function(req, params, violation)
        -- fsGroup is immutable on a running pod; UPDATE is not re-judged.
        if paved.is_update(req) then
            return
        end
        local rule = params.rule
        if rule == nil or rule == false then
            return
        end
        local spec = paved.pod_spec(req.object)
        if not spec then
            return
        end
        if rule == "RunAsAny" then
            return
        end
        local fg = paved.get(spec, "securityContext", "fsGroup")
        local ranges = params.ranges
        if rule == "MustRunAs" then
            if fg == nil then
                violation("spec.securityContext.fsGroup is not set but rule MustRunAs requires it; "
                    .. "set it to a value in the allowed ranges (%s)", ranges_text(ranges))
            elseif not in_ranges(ranges, fg) then
                violation("spec.securityContext.fsGroup %s is outside the allowed ranges (%s); "
                    .. "set it to a value inside them", tostring(fg), ranges_text(ranges))
            end
        elseif rule == "MayRunAs" then
            if fg ~= nil and fg ~= false and not in_ranges(ranges, fg) then
                violation("spec.securityContext.fsGroup %s is outside the allowed ranges (%s); "
                    .. "set it to a value inside them or leave it unset", tostring(fg), ranges_text(ranges))
            end
        else
            violation("psp-fsgroup rule %q is not one of MustRunAs, MayRunAs, RunAsAny, so no fsGroup "
                .. "is allowed; fix the policy parameter", tostring(rule))
        end
    end,
}
