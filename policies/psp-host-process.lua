-- psp-host-process: Windows HostProcess containers get full access to the
-- node, so windowsOptions.hostProcess: true is refused on the pod
-- securityContext (one violation, exemptImages do not apply) and on each
-- container (one violation per non-exempt container). UPDATE is skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local get = paved.get

return {
    id          = "psp-host-process",
    title       = "Windows HostProcess pods and containers are not allowed",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- windowsOptions.hostProcess cannot change on a running pod, so only
        -- creation is checked.
        if paved.is_update(req) then
            return
        end
        local spec = paved.pod_spec(req.object)
        if not spec then
            return
        end
        -- The pod-level setting is reported once, whatever the images are.
        if get(spec, "securityContext", "windowsOptions", "hostProcess") == true then
            violation("pod spec.securityContext.windowsOptions.hostProcess is true; "
                      .. "remove it or set it to false (HostProcess pods are not allowed)")
        end
        for c, field in paved.each_container(req, params) do
            if get(c, "securityContext", "windowsOptions", "hostProcess") == true then
                violation("%s %q: securityContext.windowsOptions.hostProcess is true; "
                          .. "remove it or set it to false", LABEL[field], tostring(c.name))
            end
        end
    end,
}
