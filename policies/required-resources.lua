-- required-resources: every container and initContainer that is not exempt
-- must declare each resource named in `limits` under resources.limits and each
-- one named in `requests` under resources.requests. Only presence counts; the
-- values are not parsed. One violation per container and section, listing all
-- the names that section lacks. With neither param, nothing is required.
local paved = require "paved"

local concat, tostring, type, ipairs = table.concat, tostring, type, ipairs

-- The names of `required` absent from the section table (nil when none).
local function missing_names(required, sec)
    local out, dup
    for _, n in ipairs(required) do
        local v = type(sec) == "table" and sec[n] or nil
        if not paved.is_set(v) then
            out = out or {}
            dup = dup or {}
            if not dup[n] then
                dup[n] = true
                out[#out + 1] = tostring(n)
            end
        end
    end
    return out
end

return {
    id = "required-resources",
    title = "Containers declare the required resource limits and requests",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        local want_limits = paved.list(params.limits)
        local want_requests = paved.list(params.requests)
        if #want_limits == 0 and #want_requests == 0 then
            return
        end
        -- the same container name with the same gap twice is one message
        violation = paved.unique(violation)

        local function check_section(name, res, section, want)
            local miss = missing_names(want, type(res) == "table" and res[section] or nil)
            if miss then
                violation("container %q: resources.%s is missing %s; add a value for each", name,
                    section, concat(miss, ", "))
            end
        end

        for c in paved.each_container(req, params, paved.REGULAR_AND_INIT) do
            local name = tostring(c.name)
            check_section(name, c.resources, "limits", want_limits)
            check_section(name, c.resources, "requests", want_requests)
        end
    end,
}
