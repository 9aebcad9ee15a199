-- container-resource-ratios: every container and initContainer that is not
-- exempt must set cpu and memory limits and requests (parsable quantities),
-- and its limits may exceed its requests by at most a factor:
--   limits.memory <= ratio    * requests.memory
--   limits.cpu    <= cpuRatio * requests.cpu     (cpuRatio defaults to ratio)
-- The ratios may be given as numbers or numeric strings ("2", "1.5"); a ratio
-- that is absent or not numeric disables that comparison only. A missing
-- limits or requests block is one violation, as upstream; identical messages
-- collapse as in Gatekeeper's set of violations. Ephemeral containers cannot
-- carry resources and are not checked.
local paved = require "paved"

local quantity, tostring, tonumber, type = paved.quantity, tostring, tonumber, type

local function ratio_of(v)
    local n = tonumber(v)
    if n == nil or n ~= n then
        return nil
    end
    return n
end

local SECTIONS = { "limits", "requests" }
local FIELDS = { "cpu", "memory" }
local EXAMPLE = { cpu = "\"500m\"", memory = "\"512Mi\"" }

return {
    id = "container-resource-ratios",
    title = "Container limits stay within a ratio of their requests",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        local mem_ratio = ratio_of(params.ratio)
        local cpu_ratio
        if params.cpuRatio ~= nil then
            cpu_ratio = ratio_of(params.cpuRatio)
        else
            cpu_ratio = mem_ratio
        end
        -- one violation per distinct (container name, message kind, value): the
        -- ratio messages name only the limit, as upstream's do
        local once = paved.once(violation)
        local function report(name, kind, value, fmt, ...)
            once(name .. "\0" .. kind .. "\0" .. tostring(value), fmt, ...)
        end

        for c in paved.each_container(req, params, paved.REGULAR_AND_INIT) do
            local name = tostring(c.name)
            local res = c.resources
            local parsed = { limits = {}, requests = {} }
            for _, section in ipairs(SECTIONS) do
                local sec = type(res) == "table" and res[section] or nil
                if type(sec) ~= "table" then
                    report(name, "none-" .. section, nil,
                        "container %q has no resources.%s; set resources.%s.cpu and "
                        .. "resources.%s.memory", name, section, section, section)
                else
                    for _, field in ipairs(FIELDS) do
                        local v = sec[field]
                        if not paved.is_set(v) or v == "" then
                            report(name, "missing-" .. section .. field, nil,
                                "container %q has no resources.%s.%s; set it", name, section,
                                field)
                        end
                        if v ~= nil then
                            local q = quantity(v, true)
                            if q == nil then
                                report(name, "parse-" .. section .. field, v,
                                    "container %q: resources.%s.%s %q is not a valid quantity; "
                                    .. "use a value such as %s", name, section, field,
                                    tostring(v), EXAMPLE[field])
                            else
                                parsed[section][field] = q
                            end
                        end
                    end
                end
            end
            local lim, rq = parsed.limits, parsed.requests
            if cpu_ratio and lim.cpu and rq.cpu
                and not paved.quantity_le(lim.cpu, cpu_ratio * rq.cpu) then
                report(name, "ratio-cpu", res.limits.cpu,
                    "container %q: cpu limit %s is more than %s times its cpu request %s; lower "
                    .. "the limit or raise the request", name, tostring(res.limits.cpu),
                    tostring(params.cpuRatio ~= nil and params.cpuRatio or params.ratio),
                    tostring(res.requests.cpu))
            end
            if mem_ratio and lim.memory and rq.memory
                and not paved.quantity_le(lim.memory, mem_ratio * rq.memory) then
                report(name, "ratio-memory", res.limits.memory,
                    "container %q: memory limit %s is more than %s times its memory request %s; "
                    .. "lower the limit or raise the request", name, tostring(res.limits.memory),
                    tostring(params.ratio), tostring(res.requests.memory))
            end
        end
    end,
}
