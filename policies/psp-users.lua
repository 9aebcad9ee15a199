-- psp-users: PSP-style rules for runAsUser, runAsGroup, supplementalGroups and
-- fsGroup, judged per non-exempt container on its effective value (container
-- securityContext first, then the pod's). One violation per container and
-- field. UPDATE is skipped.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local get, list, is_set = paved.get, paved.list, paved.is_set

-- The group-like fields, checked after runAsUser, in this order.
local GROUP_FIELDS = { "runAsGroup", "supplementalGroups", "fsGroup" }

-- The effective value of a securityContext field for a container: the
-- container's own value when it has one, else the pod's.
local function effective(c, spec, field)
    local v = get(c, "securityContext", field)
    if v ~= nil then
        return v
    end
    return get(spec, "securityContext", field)
end

local function show(v)
    if type(v) == "table" then
        local out = {}
        for _, x in ipairs(v) do
            out[#out + 1] = tostring(x)
        end
        return "[" .. table.concat(out, ", ") .. "]"
    end
    return tostring(v)
end

local function show_ranges(ranges)
    return paved.ranges_text(ranges) or "none"
end

-- A value is accepted by a rule. RunAsAny takes anything; MustRunAs and
-- MayRunAs need it inside the ranges (missing or malformed ranges admit
-- nothing); any other rule rejects a set value.
local function accepts(rule, v, ranges)
    if rule == "RunAsAny" then
        return true
    end
    if rule == "MustRunAs" or rule == "MayRunAs" then
        return paved.in_ranges(ranges, v)
    end
    return false
end

local function check_user(c, spec, p, label, name, violation)
    local rule = p.rule
    local uid = effective(c, spec, "runAsUser")
    if is_set(uid) then
        local ok
        if rule == nil then
            ok = true -- no rule: nothing to enforce
        elseif rule == "RunAsAny" then
            ok = true
        elseif rule == "MustRunAsNonRoot" then
            ok = uid ~= 0
        elseif rule == "MustRunAs" then
            ok = paved.in_ranges(p.ranges, uid)
        else
            ok = false -- MayRunAs and unknown rules do not apply to runAsUser
        end
        if not ok then
            if rule == "MustRunAsNonRoot" then
                violation("%s %q: runs as user %s (root); set securityContext.runAsUser to a "
                          .. "non-zero UID", label, name, show(uid))
            else
                violation("%s %q: runAsUser %s is not allowed by rule %s (ranges: %s); "
                          .. "set securityContext.runAsUser to an allowed UID", label, name,
                          show(uid), tostring(rule), show_ranges(p.ranges))
            end
        end
    elseif rule == "MustRunAs" then
        violation("%s %q: runAsUser is not set; set securityContext.runAsUser to a UID in "
                  .. "ranges %s", label, name, show_ranges(p.ranges))
    elseif rule == "MustRunAsNonRoot" and not is_set(effective(c, spec, "runAsNonRoot")) then
        violation("%s %q: neither runAsUser nor runAsNonRoot is set; set "
                  .. "securityContext.runAsNonRoot to true or runAsUser to a non-zero UID",
                  label, name)
    end
end

local function check_group(c, spec, field, p, label, name, violation)
    local rule = p.rule
    local v = effective(c, spec, field)
    if is_set(v) then
        if rule == nil then
            return
        end
        local bad = false
        if type(v) == "table" then
            -- A list (supplementalGroups) is one violation when any member
            -- falls outside.
            for _, g in ipairs(v) do
                if not accepts(rule, g, p.ranges) then
                    bad = true
                    break
                end
            end
        else
            bad = not accepts(rule, v, p.ranges)
        end
        if bad then
            violation("%s %q: %s %s is not allowed by rule %s (ranges: %s); set "
                      .. "securityContext.%s inside the allowed ranges", label, name, field,
                      show(v), tostring(rule), show_ranges(p.ranges), field)
        end
    elseif rule == "MustRunAs" then
        violation("%s %q: %s is not set; set securityContext.%s inside ranges %s", label, name,
                  field, field, show_ranges(p.ranges))
    end
end

return {
    id          = "psp-users",
    title       = "Users and groups are within the allowed ranges",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- User and group fields are immutable: only creation is checked.
        if paved.is_update(req) then
            return
        end
        local user_p = params.runAsUser
        if type(user_p) ~= "table" then
            user_p = nil
        end
        local any_group = false
        for i = 1, #GROUP_FIELDS do
            if type(params[GROUP_FIELDS[i]]) == "table" then
                any_group = true
            end
        end
        if not user_p and not any_group then
            return -- no rule configured
        end
        for c, field, spec in paved.each_container(req, params) do
            local label, name = LABEL[field], tostring(c.name)
            if user_p then
                check_user(c, spec, user_p, label, name, violation)
            end
            for i = 1, #GROUP_FIELDS do
                local f = GROUP_FIELDS[i]
                local p = params[f]
                if type(p) == "table" then
                    check_group(c, spec, f, p, label, name, violation)
                end
            end
        end
    end,
}
