-- psp-privileged-containers: no container (regular, init or ephemeral) may set
-- securityContext.privileged; one violation per non-exempt privileged
-- container. UPDATE is skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local get = paved.get

return {
    id          = "psp-privileged-containers",
    title       = "Containers do not run privileged",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- securityContext.privileged is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        for c, field in paved.each_container(req, params) do
            -- Upstream treats any set value other than false as privileged.
            local p = get(c, "securityContext", "privileged")
            if paved.is_set(p) then
                violation("%s %q: securityContext.privileged is %s; set it to false or remove it",
                          LABEL[field], tostring(c.name), tostring(p))
            end
        end
    end,
}
