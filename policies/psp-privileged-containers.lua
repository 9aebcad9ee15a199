-- psp-privileged-containers: no container (regular, init or ephemeral) may set
-- securityContext.privileged; one violation per non-exempt privileged
-- container. UPDATE is skipped.
local paved = require "paved"

local get, is_exempt = paved.get, paved.is_exempt

local LABEL = {
    containers = "container",
    initContainers = "init container",
    ephemeralContainers = "ephemeral container",
}

return {
    id          = "psp-privileged-containers",
    title       = "Containers do not run privileged",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                  "ReplicaSet", "ReplicationController" } },
    params      = {},
    check = function(req, params, violation)
        -- securityContext.privileged is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        local exempt = params.exemptImages
        for c, field in paved.containers(req.object) do
            -- Upstream treats any set value other than false as privileged.
            local p = get(c, "securityContext", "privileged")
            if p ~= nil and p ~= false and not is_exempt(c.image, exempt) then
                violation("%s %q: securityContext.privileged is %s; set it to false or remove it",
                          LABEL[field], tostring(c.name), tostring(p))
            end
        end
    end,
}
