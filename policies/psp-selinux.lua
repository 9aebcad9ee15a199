-- psp-selinux: every seLinuxOptions that is set (pod securityContext, and each
-- non-exempt container) must fit one allowedSELinuxOptions entry. UPDATE is
-- skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local get, list, is_set = paved.get, paved.list, paved.is_set

local OPTION_FIELDS = { "level", "role", "type", "user" }

-- seLinuxOptions fit an allowedSELinuxOptions entry when each of level, role,
-- type and user is either unset in the options or equal to the entry's value
-- (an entry without that key then only admits options without it).
local function fits(options, allowed)
    if type(options) ~= "table" then
        options = {}
    end
    for _, entry in ipairs(list(allowed)) do
        if type(entry) == "table" then
            local ok = true
            for i = 1, #OPTION_FIELDS do
                local f = OPTION_FIELDS[i]
                local v = options[f]
                if is_set(v) and entry[f] ~= v then
                    ok = false
                    break
                end
            end
            if ok then
                return true
            end
        end
    end
    return false
end

local function describe(options)
    if type(options) ~= "table" then
        return tostring(options)
    end
    local out = {}
    for i = 1, #OPTION_FIELDS do
        local f = OPTION_FIELDS[i]
        if options[f] ~= nil then
            out[#out + 1] = f .. "=" .. tostring(options[f])
        end
    end
    return "{" .. table.concat(out, ", ") .. "}"
end

local function describe_allowed(allowed)
    local out = {}
    for _, e in ipairs(list(allowed)) do
        out[#out + 1] = describe(e)
    end
    if #out == 0 then
        return "none (allowedSELinuxOptions is empty)"
    end
    return table.concat(out, " or ")
end

return {
    id          = "psp-selinux",
    title       = "SELinux options are within the allowed set",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- seLinuxOptions are immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        local spec = paved.pod_spec(req.object)
        if not spec then
            return
        end
        local allowed = params.allowedSELinuxOptions
        -- The pod-level options are judged once, independent of images.
        local pod_opts = get(spec, "securityContext", "seLinuxOptions")
        if is_set(pod_opts) and not fits(pod_opts, allowed) then
            violation("pod spec.securityContext.seLinuxOptions %s are not allowed; "
                      .. "use options matching one of: %s", describe(pod_opts),
                      describe_allowed(allowed))
        end
        for c, field in paved.each_container(req, params) do
            local opts = get(c, "securityContext", "seLinuxOptions")
            if is_set(opts) and not fits(opts, allowed) then
                violation("%s %q: securityContext.seLinuxOptions %s are not allowed; "
                          .. "use options matching one of: %s", LABEL[field], tostring(c.name),
                          describe(opts), describe_allowed(allowed))
            end
        end
    end,
}
