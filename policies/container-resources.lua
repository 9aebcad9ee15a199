-- container-limits and container-requests: every container and initContainer
-- that is not exempt must set resources.<limits|requests>.cpu and .memory to
-- parsable quantities no larger than the `cpu` / `memory` params (equal is
-- fine). Ephemeral containers cannot carry resources and are not checked.
--
-- Upstream details kept on purpose, since the counts depend on them:
--   * a missing resources.<section> block is one violation, not one per field;
--   * an empty-string value is both "missing" and "unparsable" (two messages);
--   * a `cpu` param of "-1" switches every cpu check off. For container-limits
--     an absent `cpu` param does the same (the upstream rule compares the param
--     with "-1", which never holds for an absent param); container-requests
--     still requires a cpu request then, only without a maximum;
--   * a max param that is absent or not a valid quantity (e.g. memory "-1")
--     disables the comparison against the maximum, not the presence check;
--   * identical messages collapse, as in Gatekeeper's set of violations.
local paved = require "paved"

local quantity, is_exempt, tostring, type = paved.quantity, paved.is_exempt, tostring, type

-- A non-negative quantity in base units, or nil (negative values are not
-- valid resource amounts, so they count as unparsable).
local function canon(v)
    local q = quantity(v)
    if q == nil or q ~= q or q < 0 then
        return nil
    end
    return q
end

-- a > b, tolerating floating-point noise so that "0.2" equals "200m".
local function greater(a, b)
    return a > b + (b < 0 and -b or b) * 1e-12
end

local function is_off(v)
    return v == "-1" or v == -1
end

local function family(id, section, noun, title, absent_cpu_disables)
    local what = "resources." .. section
    return {
        id = id,
        title = title,
        golden_path = true,
        enforcement = "deny",
        applies_to = { resources = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
            "ReplicationController", "Job", "CronJob" } },
        params = {},
        check = function(req, params, violation)
            local cpu_on = not is_off(params.cpu) and not (absent_cpu_disables and params.cpu == nil)
            local max_cpu = cpu_on and canon(params.cpu) or nil
            local max_mem = canon(params.memory)
            local exempt = params.exemptImages
            local seen

            -- one violation per distinct (container name, message kind, value)
            local function report(name, kind, value, fmt, ...)
                local key = name .. "\0" .. kind .. "\0" .. tostring(value)
                seen = seen or {}
                if not seen[key] then
                    seen[key] = true
                    violation(fmt, ...)
                end
            end

            local function check_field(name, sec, field, max, max_orig)
                local v = sec[field]
                if v == nil or v == "" or v == false then
                    if max then
                        report(name, "missing-" .. field, nil,
                            "container %q has no %s.%s; set it to at most %s", name, what, field,
                            tostring(max_orig))
                    else
                        report(name, "missing-" .. field, nil, "container %q has no %s.%s; set it",
                            name, what, field)
                    end
                end
                if v ~= nil then
                    local q = canon(v)
                    if q == nil then
                        report(name, "parse-" .. field, v,
                            "container %q: %s.%s %q is not a valid quantity; use a value such as %s",
                            name, what, field, tostring(v), field == "cpu" and "\"500m\"" or "\"512Mi\"")
                    elseif max and greater(q, max) then
                        report(name, "max-" .. field, v,
                            "container %q: %s %s %s is higher than the maximum allowed %s; lower it "
                            .. "to at most %s", name, field, noun, tostring(v), tostring(max_orig),
                            tostring(max_orig))
                    end
                end
            end

            for c in paved.containers(req.object, paved.REGULAR_AND_INIT) do
                if not is_exempt(c.image, exempt) then
                    local name = tostring(c.name)
                    local sec = paved.get(c, "resources", section)
                    if type(sec) ~= "table" then
                        report(name, "none", nil, "container %q has no %s; set %s", name, what,
                            cpu_on and (what .. ".cpu and " .. what .. ".memory") or (what .. ".memory"))
                    else
                        if cpu_on then
                            check_field(name, sec, "cpu", max_cpu, params.cpu)
                        end
                        check_field(name, sec, "memory", max_mem, params.memory)
                    end
                end
            end
        end,
    }
end

return {
    family("container-limits", "limits", "limit", "Containers set bounded cpu and memory limits", true),
    family("container-requests", "requests", "request", "Containers set bounded cpu and memory requests",
        false),
}
