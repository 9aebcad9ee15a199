-- psp-read-only-root-filesystem: every non-exempt container must set
-- securityContext.readOnlyRootFilesystem: true. UPDATE is skipped.
local paved = require "paved"

local get, is_exempt = paved.get, paved.is_exempt

local LABEL = {
    containers = "container",
    initContainers = "init container",
    ephemeralContainers = "ephemeral container",
}

return {
    id          = "psp-read-only-root-filesystem",
    title       = "Containers run with a read-only root filesystem",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                  "ReplicaSet", "ReplicationController" } },
    params      = {},
    check = function(req, params, violation)
        -- readOnlyRootFilesystem is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        local exempt = params.exemptImages
        for c, field in paved.containers(req.object) do
            -- Missing counts as writable: only an explicit true passes.
            local ro = get(c, "securityContext", "readOnlyRootFilesystem")
            if ro ~= true and not is_exempt(c.image, exempt) then
                violation("%s %q: securityContext.readOnlyRootFilesystem is %s; set it to true",
                          LABEL[field], tostring(c.name), ro == nil and "not set" or tostring(ro))
            end
        end
    end,
}
