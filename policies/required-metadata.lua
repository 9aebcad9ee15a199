-- paved-ids: required-labels required-annotations
-- required-labels and required-annotations: the same rules, applied to
-- metadata.labels (param `labels`) or metadata.annotations (param `annotations`).
local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring
local concat, sort = table.concat, table.sort

-- field: "labels" | "annotations"; noun: "label" | "annotation";
-- custom_message: whether the `message` param replaces the default text.
local function make_check(field, noun, custom_message)
    return function(req, params, violation)
        local have = paved.get(req.object, "metadata", field)
        have = type(have) == "table" and have or {}
        local custom = custom_message and type(params.message) == "string" and params.message or nil
        local rules = paved.list(params[field])

        -- All missing keys together make a single violation.
        local missing, seen = nil, nil
        for _, rule in ipairs(rules) do
            local key = type(rule) == "table" and rule.key or nil
            if key ~= nil and have[key] == nil then
                missing, seen = missing or {}, seen or {}
                local k = tostring(key)
                if not seen[k] then
                    seen[k] = true
                    missing[#missing + 1] = k
                end
            end
        end
        if missing then
            sort(missing)
            if custom then
                violation("%s (missing %s(s): %s)", custom, noun, concat(missing, ", "))
            else
                violation("%s: missing required %s(s) %s; add them to metadata.%s",
                    paved.name(req.object), noun, concat(missing, ", "), field)
            end
        end

        -- One violation per present key whose value fails a non-empty
        -- allowedRegex. Identical rules repeat the same message and count
        -- once; with a custom message every such violation reads the same
        -- and upstream reports it once.
        local once = paved.once(violation)
        for _, rule in ipairs(rules) do
            if type(rule) == "table" then
                local key, re = rule.key, rule.allowedRegex
                local value = key ~= nil and have[key] or nil
                if value ~= nil and type(re) == "string" and re ~= ""
                    and not paved.regex(re, tostring(value)) then
                    if custom then
                        once("", "%s (%s %q has value %q, which does not match %s)", custom, noun,
                            tostring(key), tostring(value), re)
                    else
                        once(tostring(key) .. "\0" .. re, "%s: %s %q has value %q, which does not "
                            .. "match the allowed regex %s; change the value to match it",
                            paved.name(req.object), noun, tostring(key), tostring(value), re)
                    end
                end
            end
        end
    end
end

return {
    {
        id = "required-labels",
        title = "Objects carry the required labels",
        golden_path = true,
        enforcement = "deny",
        params = {},
        check = make_check("labels", "label", true),
    },
    {
        id = "required-annotations",
        title = "Objects carry the required annotations",
        golden_path = false,
        enforcement = "deny",
        params = {},
        check = make_check("annotations", "annotation", false),
    },
}
