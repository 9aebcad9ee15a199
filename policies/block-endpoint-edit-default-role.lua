-- block-endpoint-edit-default-role: the built-in ClusterRole
-- system:aggregate-to-edit must not grant create/patch/update on endpoints
-- (CVE-2021-25740: editors could point a Service at arbitrary addresses).
-- Upstream emits a single fixed message however many rules offend, so this
-- reports at most one violation per object.
local paved = require "paved"

local EDIT_VERBS = { create = true, patch = true, update = true }

local function edit_verb(verbs)
    for _, v in ipairs(paved.list(verbs)) do
        if EDIT_VERBS[v] then
            return v
        end
    end
    return nil
end

return {
    id = "block-endpoint-edit-default-role",
    title = "The default edit role cannot modify endpoints",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "ClusterRole" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        if type(obj) ~= "table" or obj.kind ~= "ClusterRole"
            or paved.get(obj, "metadata", "name") ~= "system:aggregate-to-edit" then
            return
        end
        for _, rule in ipairs(paved.list(obj.rules)) do
            if type(rule) == "table" and paved.contains(rule.resources, "endpoints") then
                local verb = edit_verb(rule.verbs)
                if verb then
                    violation("ClusterRole system:aggregate-to-edit grants %q on endpoints; remove "
                        .. "the create, patch and update verbs for endpoints (on Kubernetes < 1.22 "
                        .. "also annotate it rbac.authorization.kubernetes.io/autoupdate=false so "
                        .. "the API server does not restore them)", verb)
                    return
                end
            end
        end
    end,
}
