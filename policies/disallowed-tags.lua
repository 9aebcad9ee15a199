-- disallowed-tags: no container (containers, initContainers,
-- ephemeralContainers) that is not exempt may use an image ending in
-- ":<tag>" for a tag in `tags`, nor an image without any tag. "Without a tag"
-- means the last '/'-separated segment has no ':', so "registry:5000/app" is
-- untagged while "app@sha256:..." counts as tagged (its last segment has a
-- ':'). The two rules are reported separately. UPDATE is not skipped.
local paved = require "paved"

local is_exempt, list, tostring, type, ipairs = paved.is_exempt, paved.list, tostring, type, ipairs
local sfind, ssub, concat = string.find, string.sub, table.concat

local LABEL = { containers = "container", initContainers = "initContainer",
    ephemeralContainers = "ephemeralContainer" }

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
    applies_to = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
        "ReplicationController", "Job", "CronJob" } },
    params = {},
    check = function(req, params, violation)
        local tags = list(params.tags)
        local exempt = params.exemptImages
        local seen
        for c, field in paved.containers(req.object) do
            local image = c.image
            if type(image) == "string" and not is_exempt(image, exempt) then
                local name = tostring(c.name)
                -- Gatekeeper keeps a set of messages (which name the container
                -- and image only), so a container repeated verbatim in another
                -- list is reported once per rule.
                local t = bad_tag(tags, image)
                if t then
                    seen = seen or {}
                    local key = "tag\0" .. name .. "\0" .. image
                    if not seen[key] then
                        seen[key] = true
                        local names = {}
                        for i, x in ipairs(tags) do
                            names[i] = tostring(x)
                        end
                        violation("%s %q: image %q uses the disallowed tag %q (disallowed: %s); "
                            .. "pin a specific version tag or digest", LABEL[field], name, image, t,
                            concat(names, ", "))
                    end
                end
                if untagged(image) then
                    seen = seen or {}
                    local key = "none\0" .. name .. "\0" .. image
                    if not seen[key] then
                        seen[key] = true
                        violation("%s %q: image %q has no tag, so it floats to latest; pin a "
                            .. "specific version tag", LABEL[field], name, image)
                    end
                end
            end
        end
    end,
}
