local paved = require "paved"

local type, tostring = type, tostring

-- A digest reference: "@<algorithm>:<encoded>", e.g. "@sha256:0123abcd...".
-- The algorithm may have components separated by + . _ or -.
local DIGEST = "@[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"

local LABEL = {
    containers = "container",
    initContainers = "initContainer",
    ephemeralContainers = "ephemeralContainer",
}

return {
    id = "image-digests",
    title = "Container images are pinned by digest",
    golden_path = false,
    enforcement = "deny",
    params = {},
    check = function(req, params, violation)
        local exempt = params.exemptImages
        for c, field in paved.containers(req.object) do
            local image = c.image
            -- A container without an image string has nothing to check.
            if type(image) == "string" and not paved.is_exempt(image, exempt)
                and not paved.regex(DIGEST, image) then
                violation("%s %q: image %q has no digest; pin it as <image>@sha256:<digest>",
                    LABEL[field], tostring(c.name), image)
            end
        end
    end,
}
