-- block-wildcard-ingress: every rule of an Ingress must name a concrete host.
-- A missing or empty host catches every hostname, and a host containing '*'
-- catches a whole domain; either can steal traffic from other applications.
-- One violation per offending rule.
-- Paved extensions: `allowWildcard` accepts hosts containing '*';
-- `allowEmptyHost` accepts rules with a missing or empty host.
local paved = require "paved"

local sfind, type, ipairs = string.find, type, ipairs

return {
    id = "block-wildcard-ingress",
    title = "Ingress rules name a specific host",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "Ingress" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        if type(obj) ~= "table" or obj.kind ~= "Ingress" then
            return
        end
        local allow_wild = params.allowWildcard == true
        local allow_empty = params.allowEmptyHost == true
        for i, rule in ipairs(paved.list(paved.get(obj, "spec", "rules"))) do
            if type(rule) == "table" then
                local host = rule.host
                if host == nil or host == "" then
                    if not allow_empty then
                        violation("%s: spec.rules[%d] has no host, so it matches every hostname; "
                            .. "set host to the service's own hostname", paved.name(obj), i - 1)
                    end
                elseif type(host) == "string" and sfind(host, "*", 1, true) then
                    if not allow_wild then
                        violation("%s: spec.rules[%d].host %q is a wildcard; use an exact "
                            .. "hostname", paved.name(obj), i - 1, host)
                    end
                end
            end
        end
    end,
}
