-- ephemeral-storage-limit: every container and initContainer that is not
-- exempt must set resources.limits["ephemeral-storage"] to a parsable quantity
-- no larger than the `ephemeral-storage` param (equal is fine). The field is
-- immutable, so UPDATE is skipped; ephemeral containers cannot carry resources.
-- As upstream: a missing limits block is a single violation; an empty string
-- is both missing and unparsable; an absent or unparsable param disables only
-- the maximum; identical messages collapse.
local paved = require "paved"

local quantity, is_exempt, tostring, type = paved.quantity, paved.is_exempt, tostring, type

local FIELD = "ephemeral-storage"

local function canon(v)
    local q = quantity(v)
    if q == nil or q ~= q or q < 0 then
        return nil
    end
    return q
end

return {
    id = "ephemeral-storage-limit",
    title = "Containers set a bounded ephemeral-storage limit",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
        "ReplicationController", "Job", "CronJob" } },
    params = {},
    check = function(req, params, violation)
        if paved.is_update(req) then
            return
        end
        local max_orig = params[FIELD]
        local max = canon(max_orig)
        local exempt = params.exemptImages
        local seen

        local function report(name, kind, value, fmt, ...)
            local key = name .. "\0" .. kind .. "\0" .. tostring(value)
            seen = seen or {}
            if not seen[key] then
                seen[key] = true
                violation(fmt, ...)
            end
        end

        for c in paved.containers(req.object, paved.REGULAR_AND_INIT) do
            if not is_exempt(c.image, exempt) then
                local name = tostring(c.name)
                local limits = paved.get(c, "resources", "limits")
                if type(limits) ~= "table" then
                    report(name, "none", nil, "container %q has no resources.limits; set "
                        .. "resources.limits.ephemeral-storage%s", name,
                        max and (" to at most " .. tostring(max_orig)) or "")
                else
                    local v = limits[FIELD]
                    if v == nil or v == "" or v == false then
                        report(name, "missing", nil, "container %q has no "
                            .. "resources.limits.ephemeral-storage; set it%s", name,
                            max and (" to at most " .. tostring(max_orig)) or "")
                    end
                    if v ~= nil then
                        local q = canon(v)
                        if q == nil then
                            report(name, "parse", v, "container %q: resources.limits.ephemeral-storage "
                                .. "%q is not a valid quantity; use a value such as \"1Gi\"", name,
                                tostring(v))
                        elseif max and q > max + max * 1e-12 then
                            report(name, "max", v, "container %q: ephemeral-storage limit %s is "
                                .. "higher than the maximum allowed %s; lower it to at most %s", name,
                                tostring(v), tostring(max_orig), tostring(max_orig))
                        end
                    end
                end
            end
        end
    end,
}
