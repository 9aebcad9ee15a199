-- psp-proc-mount: under the Default policy (the default), a container that
-- sets securityContext.procMount must set it to Default; the Unmasked policy
-- allows anything. UPDATE is skipped.
local paved = require "paved"

local get, is_exempt, lower = paved.get, paved.is_exempt, paved.lower

local LABEL = {
    containers = "container",
    initContainers = "init container",
    ephemeralContainers = "ephemeral container",
}

-- The allowed procMount type: "unmasked" only when the param says so
-- (case-insensitively); anything absent, non-string or unknown is "default".
local function allowed_type(p)
    if type(p) == "string" and lower(p) == "unmasked" then
        return "unmasked"
    end
    return "default"
end

return {
    id          = "psp-proc-mount",
    title       = "Containers use the Default /proc mount",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                  "ReplicaSet", "ReplicationController" } },
    params      = {},
    check = function(req, params, violation)
        -- securityContext.procMount is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        if allowed_type(params.procMount) == "unmasked" then
            return -- every procMount type is allowed
        end
        local exempt = params.exemptImages
        for c, field in paved.containers(req.object) do
            -- Only containers that set procMount are checked; the value must be
            -- Default (in any letter case).
            local pm = get(c, "securityContext", "procMount")
            if pm ~= nil and not (type(pm) == "string" and lower(pm) == "default")
                and not is_exempt(c.image, exempt) then
                violation("%s %q: securityContext.procMount is %q but only Default is allowed; "
                          .. "set it to Default or remove it", LABEL[field], tostring(c.name),
                          tostring(pm))
            end
        end
    end,
}
