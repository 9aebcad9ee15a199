local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local type, tostring = type, tostring

-- A digest reference: "@<algorithm>:<encoded>", e.g. "@sha256:0123abcd...".
-- The algorithm may have components separated by + . _ or -.
local DIGEST = "@[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"

return {
    id = "image-digests",
    title = "Container images are pinned by digest",
    golden_path = false,
    enforcement = "deny",
    params = {},
    check = function(req, params, violation)
        for c, field in paved.each_container(req, params) do
            local image = c.image
            -- A container without an image string has nothing to check.
            if type(image) == "string" and not paved.regex(DIGEST, image) then
                violation("%s %q: image %q has no digest; pin it as <image>@sha256:<digest>",
                    LABEL[field], tostring(c.name), image)
            end
        end
    end,
}
