-- psp-forbidden-sysctls: checks each spec.securityContext.sysctls[].name.
--   * a name matching `forbiddenSysctls` is a violation;
--   * when `allowedSysctls` is given (even empty), a name not matching it is a
--     separate violation.
-- Entries match exactly, by prefix when they end in '*', and "*" matches all.
-- Upstream keeps a set of messages, so a name listed twice counts once.
-- UPDATE is skipped.
local paved = require "paved"

return {
    id          = "psp-forbidden-sysctls",
    title       = "Pods set only allowed sysctls",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- spec.securityContext.sysctls is immutable; UPDATE is not re-judged.
        if paved.is_update(req) then
            return
        end
        local spec = paved.pod_spec(req.object)
        local sysctls = paved.list(paved.get(spec, "securityContext", "sysctls"))
        if #sysctls == 0 then
            return
        end
        local forbidden = params.forbiddenSysctls
        local allowed = params.allowedSysctls
        violation = paved.unique(violation)
        for _, s in ipairs(sysctls) do
            local name = type(s) == "table" and s.name or nil
            if type(name) == "string" then
                if paved.match_any(forbidden, name) then
                    violation("sysctl %q in spec.securityContext.sysctls is forbidden (forbidden: %s); "
                        .. "remove it", name, paved.join(forbidden, "none"))
                end
                if allowed ~= nil and not paved.match_any(allowed, name) then
                    violation("sysctl %q in spec.securityContext.sysctls is not explicitly allowed "
                        .. "(allowed: %s); remove it or use an allowed sysctl", name,
                        paved.join(allowed, "none"))
                end
            end
        end
    end,
}
