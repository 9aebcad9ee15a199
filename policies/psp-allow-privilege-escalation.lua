-- psp-allow-privilege-escalation: every container must explicitly turn off
-- privilege escalation. A missing securityContext, a missing field or any value
-- other than false is a violation (Gatekeeper's K8sPSPAllowPrivilegeEscalationContainer).
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

return {
    id          = "psp-allow-privilege-escalation",
    title       = "Containers must set allowPrivilegeEscalation: false",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- The field is immutable on a running pod, so UPDATE requests are not re-judged.
        if paved.is_update(req) then
            return
        end
        for c, field in paved.each_container(req, params) do
            local sc = c.securityContext
            local ape = nil
            if type(sc) == "table" then
                ape = sc.allowPrivilegeEscalation
            end
            if ape ~= false then
                local state = ape == nil and "is not set" or ("is " .. tostring(ape))
                violation("%s %q: securityContext.allowPrivilegeEscalation %s; set it to false",
                    LABEL[field], tostring(c.name), state)
            end
        end
    end,
}
