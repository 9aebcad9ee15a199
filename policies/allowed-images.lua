-- allowed-images: every container image (containers, initContainers,
-- ephemeralContainers) must equal an entry of `allowedImages`, or start with
-- the part before the `*` of an entry that ends in `*`. Unlike allowed-repos,
-- "ubuntu" does not admit "ubuntumalicious": without a trailing `*` the match is
-- exact. UPDATE is not skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local tostring = tostring

return {
    id = "allowed-images",
    title = "Container images are on the allowed list",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        local allowed = params.allowedImages
        -- Gatekeeper reports a set of messages: identical ones collapse.
        violation = paved.unique(violation)
        for c, field in paved.each_container(req, params) do
            local image = c.image
            -- exact match, or prefix match for an entry ending in '*' (so a
            -- lone "*" admits everything): the paved.match_entry rule
            if not paved.match_any(allowed, image) then
                violation("%s %q: image %q is not an allowed image (allowed: %s); "
                    .. "use one of the allowed images", LABEL[field], tostring(c.name),
                    tostring(image), paved.join(allowed))
            end
        end
    end,
}
