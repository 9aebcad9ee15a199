-- ephemeral-storage-limit: every container and initContainer that is not
-- exempt must set resources.limits["ephemeral-storage"] to a parsable quantity
-- no larger than the `ephemeral-storage` param (equal is fine). The field is
-- immutable, so UPDATE is skipped; ephemeral containers cannot carry resources.
-- As upstream: a missing limits block is a single violation; an empty string
-- is both missing and unparsable; an absent or unparsable param disables only
-- the maximum; identical messages collapse.
local paved = require "paved"

local quantity, tostring, type = paved.quantity, tostring, type

local FIELD = "ephemeral-storage"

return {
    id = "ephemeral-storage-limit",
    title = "Containers set a bounded ephemeral-storage limit",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        if paved.is_update(req) then
            return
        end
        local max_orig = params[FIELD]
        local max = quantity(max_orig, true)
        -- one violation per distinct message (container name, kind, value)
        local report = paved.unique(violation)

        for c in paved.each_container(req, params, paved.REGULAR_AND_INIT) do
            local name = tostring(c.name)
            local limits = paved.get(c, "resources", "limits")
            if type(limits) ~= "table" then
                report("container %q has no resources.limits; set "
                    .. "resources.limits.ephemeral-storage%s", name,
                    max and (" to at most " .. tostring(max_orig)) or "")
            else
                local v = limits[FIELD]
                if not paved.is_set(v) or v == "" then
                    report("container %q has no "
                        .. "resources.limits.ephemeral-storage; set it%s", name,
                        max and (" to at most " .. tostring(max_orig)) or "")
                end
                if v ~= nil then
                    local q = quantity(v, true)
                    if q == nil then
                        report("container %q: resources.limits.ephemeral-storage "
                            .. "%q is not a valid quantity; use a value such as \"1Gi\"", name,
                            tostring(v))
                    elseif max and not paved.quantity_le(q, max) then
                        report("container %q: ephemeral-storage limit %s is "
                            .. "higher than the maximum allowed %s; lower it to at most %s", name,
                            tostring(v), tostring(max_orig), tostring(max_orig))
                    end
                end
            end
        end
    end,
}
