-- psp-host-namespaces: a pod may not share the host's PID or IPC namespace.
-- hostNetwork is left to psp-host-network-ports.
local paved = require "paved"

return {
    id          = "psp-host-namespaces",
    title       = "Pods must not share the host PID or IPC namespace",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- hostPID / hostIPC are immutable, so UPDATE requests are skipped.
        if paved.is_update(req) then
            return
        end
        local spec = paved.pod_spec(req.object)
        if not spec then
            return
        end
        -- Upstream reports a single violation per pod whichever of the two fields
        -- is set (its message is the same), so both are named in one message.
        local pid, ipc = paved.is_set(spec.hostPID), paved.is_set(spec.hostIPC)
        if pid and ipc then
            violation("spec.hostPID and spec.hostIPC are true: sharing the host namespaces is not allowed; "
                .. "set both to false or remove them")
        elseif pid then
            violation("spec.hostPID is true: sharing the host PID namespace is not allowed; "
                .. "set it to false or remove it")
        elseif ipc then
            violation("spec.hostIPC is true: sharing the host IPC namespace is not allowed; "
                .. "set it to false or remove it")
        end
    end,
}
