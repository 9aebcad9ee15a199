local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring

local function ingress_api(av)
    return paved.has_prefix(av, "extensions/") or paved.has_prefix(av, "networking.k8s.io/")
end

return {
    id = "unique-ingress-host",
    title = "Ingress hosts are unique across the cluster",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = { "Ingress" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        if obj.kind ~= "Ingress" or not ingress_api(obj.apiVersion) then
            return
        end
        local rules = paved.list(paved.get(obj, "spec", "rules"))
        if rules[1] == nil then
            return
        end
        -- The hosts of this Ingress; rules without a host are not compared.
        local mine = nil
        for _, rule in ipairs(rules) do
            local host = type(rule) == "table" and rule.host or nil
            if host ~= nil then
                mine = mine or {}
                mine[host] = true
            end
        end
        if not mine then
            return
        end
        local my_name, my_ns = paved.get(obj, "metadata", "name"), req.namespace
        -- One violation per distinct conflicting host.
        local once = paved.once(violation)
        for other in paved.inventory(req, "Ingress") do
            local md = type(other.metadata) == "table" and other.metadata or {}
            -- Namespaced Ingresses of any namespace, except this very object.
            if md.namespace ~= nil and ingress_api(other.apiVersion)
                and not (md.namespace == my_ns and md.name == my_name) then
                for _, r in ipairs(paved.list(paved.get(other, "spec", "rules"))) do
                    local host = type(r) == "table" and r.host or nil
                    if host ~= nil and mine[host] then
                        once(host, "Ingress host %q is already used by Ingress %s/%s; choose a "
                            .. "different host", tostring(host), tostring(md.namespace),
                            tostring(md.name))
                    end
                end
            end
        end
    end,
}
