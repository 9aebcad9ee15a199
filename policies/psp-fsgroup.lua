-- psp-fsgroup: applies `rule` to the pod's spec.securityContext.fsGroup.
--   MustRunAs: set, and inside one of `ranges` (min..max, inclusive);
--   MayRunAs:  unset, or inside one of `ranges`;
--   RunAsAny:  anything.
-- Without `rule` nothing is checked. Like upstream, an unknown rule allows
-- nothing, and an empty `ranges` list admits no value. One violation per pod.
-- UPDATE is skipped.
local paved = require "paved"

local function ranges_text(ranges)
    return paved.ranges_text(ranges) or "none"
end

return {
    id          = "psp-fsgroup",
    title       = "Pod fsGroup lies inside the allowed ranges",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- fsGroup is immutable on a running pod; UPDATE is not re-judged.
        if paved.is_update(req) then
            return
        end
        local rule = params.rule
        if not paved.is_set(rule) then
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
            elseif not paved.in_ranges(ranges, fg) then
                violation("spec.securityContext.fsGroup %s is outside the allowed ranges (%s); "
                    .. "set it to a value inside them", tostring(fg), ranges_text(ranges))
            end
        elseif rule == "MayRunAs" then
            if paved.is_set(fg) and not paved.in_ranges(ranges, fg) then
                violation("spec.securityContext.fsGroup %s is outside the allowed ranges (%s); "
                    .. "set it to a value inside them or leave it unset", tostring(fg), ranges_text(ranges))
            end
        else
            violation("psp-fsgroup rule %q is not one of MustRunAs, MayRunAs, RunAsAny, so no fsGroup "
                .. "is allowed; fix the policy parameter", tostring(rule))
        end
    end,
}
