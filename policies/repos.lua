-- paved-ids: allowed-repos disallowed-repos
-- allowed-repos and disallowed-repos: plain string-prefix checks of every
-- container image (containers, initContainers, ephemeralContainers) against
-- the `repos` list. Neither skips UPDATE.
local paved = require "paved"

local has_prefix, list = paved.has_prefix, paved.list
local tostring, type, ipairs = tostring, type, ipairs
local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

-- Which entry of `repos` (plain prefix, no wildcard) the image starts with, or nil.
local function prefix_hit(repos, image)
    if type(image) ~= "string" then
        return nil
    end
    for _, r in ipairs(repos) do
        if type(r) == "string" and has_prefix(image, r) then
            return r
        end
    end
    return nil
end

-- Gatekeeper collects messages in a set, so a second container with the same
-- field, name and image adds nothing: both checks report through
-- paved.unique so that counts agree.

return {
    {
        id = "allowed-repos",
        title = "Container images come from allowed repositories",
        golden_path = true,
        enforcement = "deny",
        applies_to = { resources = paved.POD_KINDS },
        params = {},
        check = function(req, params, violation)
            local repos = list(params.repos)
            violation = paved.unique(violation)
            for c, field in paved.each_container(req, params) do
                local image = c.image
                if not prefix_hit(repos, image) then
                    violation("%s %q: image %q does not start with an allowed repository (%s); "
                        .. "pull it from one of those repositories", LABEL[field], tostring(c.name),
                        tostring(image), paved.join(repos))
                end
            end
        end,
    },
    {
        id = "disallowed-repos",
        title = "Container images do not come from disallowed repositories",
        golden_path = true,
        enforcement = "deny",
        applies_to = { resources = paved.POD_KINDS },
        params = {},
        check = function(req, params, violation)
            local repos = list(params.repos)
            if #repos == 0 then
                return
            end
            violation = paved.unique(violation)
            for c, field in paved.each_container(req, params) do
                local image = c.image
                local hit = prefix_hit(repos, image)
                if hit then
                    violation("%s %q: image %q comes from the disallowed repository %q "
                        .. "(disallowed: %s); use an image from another repository", LABEL[field],
                        tostring(c.name), image, hit, paved.join(repos))
                end
            end
        end,
    },
}
