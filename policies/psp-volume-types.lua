-- psp-volume-types: every volume source type (each key of a volume other than
-- name) must be listed in `volumes`; "*" allows all. UPDATE is skipped.
local paved = require "paved"

local list = paved.list

return {
    id          = "psp-volume-types",
    title       = "Pods use only allowed volume types",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- spec.volumes is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        local allowed = list(params.volumes)
        if paved.contains(allowed, "*") then
            return -- every volume type is allowed
        end
        -- One violation per distinct disallowed volume type (not per volume):
        -- two hostPath volumes make a single violation.
        local once = paved.once(violation)
        for vol in paved.volumes(req.object) do
            for key, val in pairs(vol) do
                if key ~= "name" and paved.is_set(val) and not paved.contains(allowed, key) then
                    once(key, "volume %q uses type %s, which is not allowed; use one of: %s",
                         tostring(vol.name), tostring(key),
                         paved.join(allowed, "none (volumes is empty)"))
                end
            end
        end
    end,
}
