local paved = require "paved"

local type, ipairs = type, ipairs
local concat, sort = table.concat, table.sort

return {
    id = "external-ips",
    title = "Services use only approved external IPs",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "Service" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        -- Only core (group "") Services: their apiVersion has no group prefix.
        if obj.kind ~= "Service" or type(obj.apiVersion) ~= "string"
            or obj.apiVersion:find("/", 1, true) then
            return
        end
        local ips = paved.get(obj, "spec", "externalIPs")
        if type(ips) ~= "table" or ips[1] == nil then
            return
        end
        -- An absent or empty allowedIPs forbids every external IP.
        local allowed = paved.set(params.allowedIPs)
        local bad, seen = nil, nil
        for _, ip in ipairs(ips) do
            if not allowed[ip] then
                bad, seen = bad or {}, seen or {}
                local s = tostring(ip)
                if not seen[s] then
                    seen[s] = true
                    bad[#bad + 1] = s
                end
            end
        end
        -- Upstream reports all forbidden IPs of a Service in one violation.
        if bad then
            sort(bad)
            local any_allowed = paved.list(params.allowedIPs)[1] ~= nil
            violation("Service %q: spec.externalIPs contains forbidden IP(s) %s; remove them%s",
                tostring(paved.get(obj, "metadata", "name") or "?"), concat(bad, ", "),
                any_allowed and (" or use only allowed IPs (" .. paved.join(params.allowedIPs) .. ")")
                    or " (no external IPs are allowed)")
        end
    end,
}
