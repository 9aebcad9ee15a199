-- psp-read-only-root-filesystem: every non-exempt container must set
-- securityContext.readOnlyRootFilesystem: true. UPDATE is skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local get = paved.get

return {
    id          = "psp-read-only-root-filesystem",
    title       = "Containers run with a read-only root filesystem",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- readOnlyRootFilesystem is immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        for c, field in paved.each_container(req, params) do
            -- Missing counts as writable: only an explicit true passes.
            local ro = get(c, "securityContext", "readOnlyRootFilesystem")
            if ro ~= true then
                violation("%s %q: securityContext.readOnlyRootFilesystem is %s; set it to true",
                          LABEL[field], tostring(c.name), ro == nil and "not set" or tostring(ro))
            end
        end
    end,
}
