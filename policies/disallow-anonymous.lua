-- disallow-anonymous: a RoleBinding or ClusterRoleBinding must not grant its
-- role to system:anonymous or system:unauthenticated (nor to
-- system:authenticated when `disallowAuthenticated` is true), unless the bound
-- role (roleRef.name) is listed in `allowedRoles`. Any subject kind counts; only
-- the name is compared. One violation per offending name, however many subjects
-- repeat it.
local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring

local BASE = { "system:unauthenticated", "system:anonymous" }

return {
    id = "disallow-anonymous",
    title = "RBAC bindings do not grant roles to anonymous users",
    golden_path = false,
    enforcement = "deny",
    -- Granting a role to anonymous users is never a case for an exception.
    exceptions = { allowed = false },
    applies_to = { resources = { "RoleBinding", "ClusterRoleBinding" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        if type(obj) ~= "table" or (obj.kind ~= "RoleBinding" and obj.kind ~= "ClusterRoleBinding") then
            return
        end
        local role = paved.get(obj, "roleRef", "name")
        if role ~= nil and paved.contains(params.allowedRoles, role) then
            return
        end
        local subjects = paved.list(obj.subjects)
        local function has_subject(name)
            for _, s in ipairs(subjects) do
                if type(s) == "table" and s.name == name then
                    return true
                end
            end
            return false
        end
        local function check_group(group)
            if has_subject(group) then
                violation("%s binds %q to %s; remove that subject, or bind a role listed in "
                    .. "allowedRoles", paved.name(obj), tostring(role), group)
            end
        end
        for _, g in ipairs(BASE) do
            check_group(g)
        end
        local da = params.disallowAuthenticated
        if da == true or da == "true" then
            check_group("system:authenticated")
        end
    end,
}
