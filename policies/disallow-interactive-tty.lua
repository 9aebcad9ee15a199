-- disallow-interactive-tty: no container (containers, initContainers,
-- ephemeralContainers) that is not exempt may set `stdin` or `tty` to true.
-- One violation per container, naming whichever of the two fields are set.
local paved = require "paved"

local is_exempt, tostring = paved.is_exempt, tostring

local LABEL = { containers = "container", initContainers = "initContainer",
    ephemeralContainers = "ephemeralContainer" }

return {
    id = "disallow-interactive-tty",
    title = "Containers do not request an interactive terminal",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
        "ReplicationController", "Job", "CronJob" } },
    params = {},
    check = function(req, params, violation)
        local exempt = params.exemptImages
        local seen
        for c, field in paved.containers(req.object) do
            -- upstream treats any value other than false (and absent) as set
            local stdin = c.stdin ~= nil and c.stdin ~= false
            local tty = c.tty ~= nil and c.tty ~= false
            if (stdin or tty) and not is_exempt(c.image, exempt) then
                local name = tostring(c.name)
                -- upstream messages name only the container and image, so a
                -- verbatim duplicate in another list collapses into one
                local key = name .. "\0" .. tostring(c.image)
                seen = seen or {}
                if not seen[key] then
                    seen[key] = true
                    local what = stdin and tty and "stdin and tty are set; set both" or
                        (stdin and "stdin is set; set it" or "tty is set; set it")
                    violation("%s %q: %s to false (or remove), and use kubectl exec/debug for "
                        .. "interactive access", LABEL[field], name, what)
                end
            end
        end
    end,
}
