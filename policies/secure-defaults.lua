-- policies/secure-defaults.lua: the mutating half of the golden path. Where a workload
-- leaves them unset, POST /k8s/mutate sets the secure defaults Pod Security restricted
-- asks for, so the compliant manifest is also the shortest one:
--   * the pod's securityContext.seccompProfile: {type: RuntimeDefault}
--   * every container's and init container's securityContext.allowPrivilegeEscalation: false
-- Privileged containers and those adding CAP_SYS_ADMIN are left alone (the API server
-- rejects allowPrivilegeEscalation=false with them); validation still denies them.
-- Nothing is ever overwritten, only added.
local paved = require "paved"

local FIELDS = { "containers", "initContainers" }

local function adds_sys_admin(sc)
    for _, cap in ipairs(paved.list(paved.get(sc, "capabilities", "add"))) do
        if cap == "SYS_ADMIN" or cap == "CAP_SYS_ADMIN" then
            return true
        end
    end
    return false
end

return {
    id = "secure-defaults",
    title = "Secure defaults are set where a workload leaves them unset",
    golden_path = false,
    enforcement = "audit",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function()
        -- A mutator: validation is the Pod Security bindings' job.
    end,
    mutate = function(req)
        local obj = req.object
        local spec = paved.pod_spec(obj)
        local base = paved.pod_spec_pointer(obj)
        if not spec or not base then
            return nil
        end
        local ops = {}
        local psc = spec.securityContext
        if type(psc) ~= "table" then
            ops[#ops + 1] = { op = "add", path = base .. "/securityContext",
                value = { seccompProfile = { type = "RuntimeDefault" } } }
        elseif psc.seccompProfile == nil then
            ops[#ops + 1] = { op = "add", path = base .. "/securityContext/seccompProfile",
                value = { type = "RuntimeDefault" } }
        end
        for _, field in ipairs(FIELDS) do
            for i, c in ipairs(paved.list(spec[field])) do
                local sc = type(c) == "table" and c.securityContext or nil
                local at = base .. "/" .. field .. "/" .. (i - 1) .. "/securityContext"
                if type(c) ~= "table" then
                    -- not a container: leave it to validation
                elseif sc == nil then
                    ops[#ops + 1] = { op = "add", path = at,
                        value = { allowPrivilegeEscalation = false } }
                elseif type(sc) == "table" and sc.allowPrivilegeEscalation == nil
                    and sc.privileged ~= true and not adds_sys_admin(sc) then
                    ops[#ops + 1] = { op = "add", path = at .. "/allowPrivilegeEscalation",
                        value = false }
                end
            end
        end
        return ops
    end,
}
