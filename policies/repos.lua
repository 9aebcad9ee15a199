-- allowed-repos and disallowed-repos: plain string-prefix checks of every
-- container image (containers, initContainers, ephemeralContainers) against
-- the `repos` list. Neither skips UPDATE.
local paved = require "paved"

local has_prefix, is_exempt, list = paved.has_prefix, paved.is_exempt, paved.list
local concat, tostring, type, ipairs = table.concat, tostring, type, ipairs

local POD_KINDS = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
    "ReplicationController", "Job", "CronJob" }

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

-- How a container of each pod-spec list is named in messages.
local LABEL = { containers = "container", initContainers = "initContainer",
    ephemeralContainers = "ephemeralContainer" }

local function repo_list(repos)
    local out = {}
    for i, r in ipairs(list(repos)) do
        out[i] = tostring(r)
    end
    return concat(out, ", ")
end

-- Gatekeeper collects messages in a set, so a second container with the same
-- field, name and image adds nothing; reproduce that so counts agree.
local function first_time(seen, key)
    if seen[key] then
        return false
    end
    seen[key] = true
    return true
end

return {
    {
        id = "allowed-repos",
        title = "Container images come from allowed repositories",
        golden_path = true,
        enforcement = "deny",
        applies_to = { resources = POD_KINDS },
        params = {},
        check = function(req, params, violation)
            local repos = list(params.repos)
            local exempt = params.exemptImages
            local seen
            for c, field in paved.containers(req.object) do
                local image = c.image
                if not is_exempt(image, exempt) and not prefix_hit(repos, image) then
                    seen = seen or {}
                    if first_time(seen, field .. "\0" .. tostring(c.name) .. "\0" .. tostring(image)) then
                        violation("%s %q: image %q does not start with an allowed repository (%s); "
                            .. "pull it from one of those repositories", LABEL[field], tostring(c.name),
                            tostring(image), repo_list(repos))
                    end
                end
            end
        end,
    },
    {
        id = "disallowed-repos",
        title = "Container images do not come from disallowed repositories",
        golden_path = true,
        enforcement = "deny",
        applies_to = { resources = POD_KINDS },
        params = {},
        check = function(req, params, violation)
            local repos = list(params.repos)
            if #repos == 0 then
                return
            end
            local exempt = params.exemptImages
            local seen
            for c, field in paved.containers(req.object) do
                local image = c.image
                local hit = prefix_hit(repos, image)
                if hit and not is_exempt(image, exempt) then
                    seen = seen or {}
                    if first_time(seen, field .. "\0" .. tostring(c.name) .. "\0" .. image) then
                        violation("%s %q: image %q comes from the disallowed repository %q "
                            .. "(disallowed: %s); use an image from another repository", LABEL[field],
                            tostring(c.name), image, hit, repo_list(repos))
                    end
                end
            end
        end,
    },
}
