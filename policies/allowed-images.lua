-- allowed-images: every container image (containers, initContainers,
-- ephemeralContainers) must equal an entry of `allowedImages`, or start with
-- the part before the `*` of an entry that ends in `*`. Unlike allowed-repos,
-- "ubuntu" does not admit "ubuntumalicious": without a trailing `*` the match is
-- exact. UPDATE is not skipped.
local paved = require "paved"

local list, is_exempt, ssub = paved.list, paved.is_exempt, string.sub
local concat, tostring, type, ipairs = table.concat, tostring, type, ipairs

local LABEL = { containers = "container", initContainers = "initContainer",
    ephemeralContainers = "ephemeralContainer" }

-- Exact match, or prefix match for an entry ending in '*' (so a lone "*"
-- admits everything). paved.match_entry has the same rule.
local function image_allowed(entries, image)
    if type(image) ~= "string" then
        return false
    end
    for _, e in ipairs(entries) do
        if type(e) == "string" then
            if ssub(e, -1) == "*" then
                if ssub(image, 1, #e - 1) == ssub(e, 1, -2) then
                    return true
                end
            elseif e == image then
                return true
            end
        end
    end
    return false
end

return {
    id = "allowed-images",
    title = "Container images are on the allowed list",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
        "ReplicationController", "Job", "CronJob" } },
    params = {},
    check = function(req, params, violation)
        local allowed = list(params.allowedImages)
        local exempt = params.exemptImages
        local seen
        for c, field in paved.containers(req.object) do
            local image = c.image
            if not image_allowed(allowed, image) and not is_exempt(image, exempt) then
                -- Gatekeeper reports a set of messages: identical ones collapse.
                local key = field .. "\0" .. tostring(c.name) .. "\0" .. tostring(image)
                seen = seen or {}
                if not seen[key] then
                    seen[key] = true
                    local names = {}
                    for i, e in ipairs(allowed) do
                        names[i] = tostring(e)
                    end
                    violation("%s %q: image %q is not an allowed image (allowed: %s); "
                        .. "use one of the allowed images", LABEL[field], tostring(c.name),
                        tostring(image), concat(names, ", "))
                end
            end
        end
    end,
}
