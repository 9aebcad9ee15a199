-- psp-proc-mount: under the Default policy (the default), a container that
-- sets securityContext.procMount must set it to Default; the Unmasked policy
-- allows anything. UPDATE is skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local get, lower = paved.get, paved.lower

-- The allowed procMount type: "unmasked" only when the param says so
-- (case-insensitively); anything absent, non-string or unknown is "default".
local function allowed_type(p)
    if type(p) == "string" and lower(p) == "unmasked" then
        return "unmasked"
    end
    return "default"
end

return {
    id          = "psp-proc-mount",
    title       = "Containers use the Default /proc mount",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- securityContext.procMount is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        if allowed_type(params.procMount) == "unmasked" then
            return -- every procMount type is allowed
        end
        for c, field in paved.each_container(req, params) do
            -- Only containers that set procMount are checked; the value must be
            -- Default (in any letter case).
            local pm = get(c, "securityContext", "procMount")
            if pm ~= nil and not (type(pm) == "string" and lower(pm) == "default") then
                violation("%s %q: securityContext.procMount is %q but only Default is allowed; "
                          .. "set it to Default or remove it", LABEL[field], tostring(c.name),
                          tostring(pm))
            end
        end
    end,
}
