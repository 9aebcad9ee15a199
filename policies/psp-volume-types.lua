-- psp-volume-types: every volume source type (each key of a volume other than
-- name) must be listed in `volumes`; "*" allows all. UPDATE is skipped.
local paved = require "paved"

local list = paved.list

return {
    id          = "psp-volume-types",
    title       = "Pods use only allowed volume types",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob",
                                  "ReplicaSet", "ReplicationController" } },
    params      = {},
    check = function(req, params, violation)
        -- spec.volumes is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        local allowed = list(params.volumes)
        for _, v in ipairs(allowed) do
            if v == "*" then
                return -- every volume type is allowed
            end
        end
        -- One violation per distinct disallowed volume type (not per volume):
        -- two hostPath volumes make a single violation.
        local seen
        for vol in paved.volumes(req.object) do
            for key, val in pairs(vol) do
                if key ~= "name" and val ~= false and not (seen and seen[key]) then
                    local ok = false
                    for _, a in ipairs(allowed) do
                        if a == key then
                            ok = true
                            break
                        end
                    end
                    if not ok then
                        seen = seen or {}
                        seen[key] = true
                        local names = {}
                        for _, a in ipairs(allowed) do
                            names[#names + 1] = tostring(a)
                        end
                        violation("volume %q uses type %s, which is not allowed; use one of: %s",
                                  tostring(vol.name), tostring(key),
                                  #names > 0 and table.concat(names, ", ") or "none (volumes is empty)")
                    end
                end
            end
        end
    end,
}
