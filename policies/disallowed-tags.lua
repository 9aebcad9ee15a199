-- disallowed-tags: no container (containers, initContainers,
-- ephemeralContainers) that is not exempt may use an image ending in
-- ":<tag>" for a tag in `tags`, nor an image without any tag. "Without a tag"
-- means the last '/'-separated segment has no ':', so "registry:5000/app" is
-- untagged while "app@sha256:..." counts as tagged (its last segment has a
-- ':'). The two rules are reported separately. UPDATE is not skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local list, tostring, type, ipairs = paved.list, tostring, type, ipairs
local sfind, ssub = string.find, string.sub

-- The tag of `tags` that the image ends with (as ":<tag>"), or nil.
local function bad_tag(tags, image)
    for _, t in ipairs(tags) do
        if type(t) == "string" then
            local suffix_len = #t + 1
            if #image >= suffix_len and ssub(image, -suffix_len) == ":" .. t then
                return t
            end
        end
    end
    return nil
end

-- True when the segment after the last '/' contains no ':'.
local function untagged(image)
    local start = 1
    while true do
        local s = sfind(image, "/", start, true)
        if not s then
            break
        end
        start = s + 1
    end
    return sfind(image, ":", start, true) == nil
end

return {
    id = "disallowed-tags",
    title = "Container images are pinned to an allowed tag",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        local tags = list(params.tags)
        -- Gatekeeper keeps a set of messages (which name the container and
        -- image only), so a container repeated verbatim in another list is
        -- reported once per rule.
        local once = paved.once(violation)
        for c, field in paved.each_container(req, params) do
            local image = c.image
            if type(image) == "string" then
                local name = tostring(c.name)
                local t = bad_tag(tags, image)
                if t then
                    once("tag\0" .. name .. "\0" .. image,
                        "%s %q: image %q uses the disallowed tag %q (disallowed: %s); "
                        .. "pin a specific version tag or digest", LABEL[field], name,
                        image, t, paved.join(tags))
                end
                if untagged(image) then
                    once("none\0" .. name .. "\0" .. image,
                        "%s %q: image %q has no tag, so it floats to latest; pin a "
                        .. "specific version tag", LABEL[field], name, image)
                end
            end
        end
    end,
}
