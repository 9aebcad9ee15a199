-- paved-ids: container-limits container-requests
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

local quantity, tostring, type = paved.quantity, tostring, type

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
        applies_to = { resources = paved.POD_KINDS },
        params = {},
        check = function(req, params, violation)
            local cpu_on = not is_off(params.cpu) and not (absent_cpu_disables and params.cpu == nil)
            -- A max param that is negative counts as unparsable, like a value.
            local max_cpu = cpu_on and quantity(params.cpu, true) or nil
            local max_mem = quantity(params.memory, true)
            -- one violation per distinct message (container name, kind, value)
            local report = paved.unique(violation)

            local function check_field(name, sec, field, max, max_orig)
                local v = sec[field]
                if not paved.is_set(v) or v == "" then
                    if max then
                        report("container %q has no %s.%s; set it to at most %s", name, what, field,
                            tostring(max_orig))
                    else
                        report("container %q has no %s.%s; set it", name, what, field)
                    end
                end
                if v ~= nil then
                    -- negative values are not valid resource amounts: unparsable
                    local q = quantity(v, true)
                    if q == nil then
                        report("container %q: %s.%s %q is not a valid quantity; use a value such as %s",
                            name, what, field, tostring(v), field == "cpu" and "\"500m\"" or "\"512Mi\"")
                    elseif max and not paved.quantity_le(q, max) then
                        report("container %q: %s %s %s is higher than the maximum allowed %s; lower it "
                            .. "to at most %s", name, field, noun, tostring(v), tostring(max_orig),
                            tostring(max_orig))
                    end
                end
            end

            for c in paved.each_container(req, params, paved.REGULAR_AND_INIT) do
                local name = tostring(c.name)
                local sec = paved.get(c, "resources", section)
                if type(sec) ~= "table" then
                    report("container %q has no %s; set %s", name, what,
                        cpu_on and (what .. ".cpu and " .. what .. ".memory") or (what .. ".memory"))
                else
                    if cpu_on then
                        check_field(name, sec, "cpu", max_cpu, params.cpu)
                    end
                    check_field(name, sec, "memory", max_mem, params.memory)
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
