-- psp-capabilities: limits Linux capabilities per container.
--   * every name in securityContext.capabilities.add must be in
--     `allowedCapabilities` (case-insensitive; "*" allows any; absent allows none);
--   * securityContext.capabilities.drop must contain every name of
--     `requiredDropCapabilities`, or "ALL" (case-insensitive).
-- The add check and the drop check are separate violations. UPDATE is skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local lower = string.lower

-- Lower-cased set of a list parameter.
local function lower_set(t)
    local s = {}
    for _, v in ipairs(paved.list(t)) do
        s[lower(tostring(v))] = true
    end
    return s
end

return {
    id          = "psp-capabilities",
    title       = "Containers add only allowed capabilities and drop the required ones",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- Capabilities are immutable on a running pod; UPDATE is not re-judged.
        if paved.is_update(req) then
            return
        end
        local required = paved.list(params.requiredDropCapabilities)
        local allowed -- built lazily: most containers add nothing
        for c, field in paved.each_container(req, params) do
            local caps = paved.get(c, "securityContext", "capabilities")
            local add = paved.list(type(caps) == "table" and caps.add or nil)
            if #add > 0 then
                allowed = allowed or lower_set(params.allowedCapabilities)
                if not allowed["*"] then
                    local bad
                    for _, name in ipairs(add) do
                        if not allowed[lower(tostring(name))] then
                            bad = bad or {}
                            bad[#bad + 1] = tostring(name)
                        end
                    end
                    if bad then
                        violation("%s %q: securityContext.capabilities.add has disallowed capabilities "
                            .. "(%s); remove them (allowed: %s)", LABEL[field],
                            tostring(c.name), paved.join(bad),
                            paved.join(params.allowedCapabilities, "none"))
                    end
                end
            end
            if #required > 0 then
                local dropped = lower_set(type(caps) == "table" and caps.drop or nil)
                if not dropped["all"] then
                    local missing
                    for _, name in ipairs(required) do
                        if not dropped[lower(tostring(name))] then
                            missing = missing or {}
                            missing[#missing + 1] = tostring(name)
                        end
                    end
                    if missing then
                        violation("%s %q: securityContext.capabilities.drop is missing required capabilities "
                            .. "(%s); add them to the drop list, or drop \"ALL\"", LABEL[field],
                            tostring(c.name), paved.join(missing))
                    end
                end
            end
        end
    end,
}
