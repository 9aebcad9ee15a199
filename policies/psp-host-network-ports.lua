-- psp-host-network-ports:
--   * spec.hostNetwork: true is denied unless the `hostNetwork` param is true
--     (exemptImages do not apply to this pod-level check);
--   * every hostPort of a non-exempt container must be >= `min` and <= `max`
--     (each bound checked only when given; a present hostPort of 0 is below min).
-- Upstream emits one message per pod whatever the number of problems, so all
-- problems are reported together in a single violation. UPDATE is skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

return {
    id          = "psp-host-network-ports",
    title       = "Pods use the host network and host ports only as allowed",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- hostNetwork and ports are immutable; UPDATE is not re-judged.
        if paved.is_update(req) then
            return
        end
        local spec = paved.pod_spec(req.object)
        if not spec then
            return
        end
        local problems
        if not paved.is_set(params.hostNetwork) and paved.is_set(spec.hostNetwork) then
            problems = { "spec.hostNetwork is true; set it to false" }
        end
        local min, max = params.min, params.max
        if type(min) ~= "number" then
            min = nil
        end
        if type(max) ~= "number" then
            max = nil
        end
        if min or max then
            for c, field in paved.each_container(req, params) do
                for _, p in ipairs(paved.list(c.ports)) do
                    local hp = type(p) == "table" and p.hostPort or nil
                    if type(hp) == "number" and ((min and hp < min) or (max and hp > max)) then
                        problems = problems or {}
                        problems[#problems + 1] = string.format(
                            "%s %q: hostPort %s is outside the allowed range %s-%s; use a port in range "
                            .. "or drop hostPort", LABEL[field], tostring(c.name), tostring(hp),
                            min and tostring(min) or "*", max and tostring(max) or "*")
                    end
                end
            end
        end
        if problems then
            violation("%s", table.concat(problems, "; "))
        end
    end,
}
