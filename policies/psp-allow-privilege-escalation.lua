-- psp-allow-privilege-escalation: every container must explicitly turn off
-- privilege escalation. A missing securityContext, a missing field or any value
-- other than false is a violation (Gatekeeper's K8sPSPAllowPrivilegeEscalationContainer).
local paved = require "paved"

local KIND_LABEL = {
    containers = "container",
    initContainers = "init container",
    ephemeralContainers = "ephemeral container",
}

return {
    id          = "psp-allow-privilege-escalation",
    title       = "Containers must set allowPrivilegeEscalation: false",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
        "ReplicaSet", "ReplicationController" } },
    params      = {},
    check = function(req, params, violation)
        -- The field is immutable on a running pod, so UPDATE requests are not re-judged.
        if paved.is_update(req) then
            return
        end
        local exempt = params.exemptImages
        for c, field in paved.containers(req.object) do
            if not paved.is_exempt(c.image, exempt) then
                local sc = c.securityContext
                local ape = nil
                if type(sc) == "table" then
                    ape = sc.allowPrivilegeEscalation
                end
                if ape ~= false then
                    local state = ape == nil and "is not set" or ("is " .. tostring(ape))
                    violation("%s %q: securityContext.allowPrivilegeEscalation %s; set it to false",
                        KIND_LABEL[field], tostring(c.name), state)
                end
            end
        end
    end,
}
