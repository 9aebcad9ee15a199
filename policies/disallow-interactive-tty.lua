-- disallow-interactive-tty: no container (containers, initContainers,
-- ephemeralContainers) that is not exempt may set `stdin` or `tty` to true.
-- One violation per container, naming whichever of the two fields are set.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local is_set, tostring = paved.is_set, tostring

return {
    id = "disallow-interactive-tty",
    title = "Containers do not request an interactive terminal",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        -- upstream messages name only the container and image, so a verbatim
        -- duplicate in another list collapses into one
        local once = paved.once(violation)
        for c, field in paved.each_container(req, params) do
            -- upstream treats any value other than false (and absent) as set
            local stdin, tty = is_set(c.stdin), is_set(c.tty)
            if stdin or tty then
                local name = tostring(c.name)
                local what = stdin and tty and "stdin and tty are set; set both" or
                    (stdin and "stdin is set; set it" or "tty is set; set it")
                once(name .. "\0" .. tostring(c.image),
                    "%s %q: %s to false (or remove), and use kubectl exec/debug for "
                    .. "interactive access", LABEL[field], name, what)
            end
        end
    end,
}
