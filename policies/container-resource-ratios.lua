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

local quantity, is_exempt, tostring, tonumber, type = paved.quantity, paved.is_exempt, tostring,
    tonumber, type

local function canon(v)
    local q = quantity(v)
    if q == nil or q ~= q or q < 0 then
        return nil
    end
    return q
end

local function ratio_of(v)
    local n = tonumber(v)
    if n == nil or n ~= n then
        return nil
    end
    return n
end

-- a > b with a little tolerance for floating-point noise.
local function greater(a, b)
    return a > b + (b < 0 and -b or b) * 1e-12
end

local SECTIONS = { "limits", "requests" }
local FIELDS = { "cpu", "memory" }
local EXAMPLE = { cpu = "\"500m\"", memory = "\"512Mi\"" }

return {
    id = "container-resource-ratios",
    title = "Container limits stay within a ratio of their requests",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
        "ReplicationController", "Job", "CronJob" } },
    params = {},
    check = function(req, params, violation)
        local mem_ratio = ratio_of(params.ratio)
        local cpu_ratio
        if params.cpuRatio ~= nil then
            cpu_ratio = ratio_of(params.cpuRatio)
        else
            cpu_ratio = mem_ratio
        end
        local exempt = params.exemptImages
        local seen

        local function report(name, kind, value, fmt, ...)
            local key = name .. "\0" .. kind .. "\0" .. tostring(value)
            seen = seen or {}
            if not seen[key] then
                seen[key] = true
                violation(fmt, ...)
            end
        end

        for c in paved.containers(req.object, paved.REGULAR_AND_INIT) do
            if not is_exempt(c.image, exempt) then
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
                            if v == nil or v == "" or v == false then
                                report(name, "missing-" .. section .. field, nil,
                                    "container %q has no resources.%s.%s; set it", name, section,
                                    field)
                            end
                            if v ~= nil then
                                local q = canon(v)
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
                if cpu_ratio and lim.cpu and rq.cpu and greater(lim.cpu, cpu_ratio * rq.cpu) then
                    report(name, "ratio-cpu", res.limits.cpu,
                        "container %q: cpu limit %s is more than %s times its cpu request %s; lower "
                        .. "the limit or raise the request", name, tostring(res.limits.cpu),
                        tostring(params.cpuRatio ~= nil and params.cpuRatio or params.ratio),
                        tostring(res.requests.cpu))
                end
                if mem_ratio and lim.memory and rq.memory and greater(lim.memory, mem_ratio * rq.memory) then
                    report(name, "ratio-memory", res.limits.memory,
                        "container %q: memory limit %s is more than %s times its memory request %s; "
                        .. "lower the limit or raise the request", name, tostring(res.limits.memory),
                        tostring(params.ratio), tostring(res.requests.memory))
                end
            end
        end
    end,
}
