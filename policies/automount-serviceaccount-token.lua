-- automount-serviceaccount-token: a pod must not get the service account token
-- mounted automatically. Denied when spec.automountServiceAccountToken is true,
-- or when the field is absent and a container or initContainer already mounts
-- the token path (ephemeral containers cannot carry that mount, so they are not
-- looked at). Both fields are immutable, so UPDATE is skipped.
-- Paved extension `requireExplicitFalse`: only an explicit `false` passes.
local paved = require "paved"

local TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"

local function mounts_token(obj)
    for c in paved.containers(obj, paved.REGULAR_AND_INIT) do
        for _, m in ipairs(paved.list(c.volumeMounts)) do
            if type(m) == "table" and m.mountPath == TOKEN_PATH then
                return c
            end
        end
    end
    return nil
end

return {
    id = "automount-serviceaccount-token",
    title = "Pods do not automount the service account token",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        if paved.is_update(req) then
            return
        end
        local spec = paved.pod_spec(req.object)
        if not spec then
            return
        end
        local v = spec.automountServiceAccountToken
        if v == true then
            violation("%s: the pod spec sets automountServiceAccountToken: true; set it to false and mount "
                .. "a projected token only where the pod needs API access", paved.name(req.object))
        elseif v == nil then
            if params.requireExplicitFalse == true then
                violation("%s: the pod spec does not set automountServiceAccountToken, so the token is "
                    .. "mounted by default; set it to false explicitly", paved.name(req.object))
            else
                local c = mounts_token(req.object)
                if c then
                    violation("%s: container %q mounts the service account token at %s while the pod "
                        .. "spec leaves automountServiceAccountToken unset; set it to false and remove "
                        .. "the mount", paved.name(req.object), tostring(c.name), TOKEN_PATH)
                end
            end
        end
    end,
}
