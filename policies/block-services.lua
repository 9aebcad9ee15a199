-- paved-ids: block-loadbalancer-services block-nodeport-services
-- block-loadbalancer-services and block-nodeport-services: a Service must not
-- use the given spec.type, because both expose it outside the cluster network
-- without going through the shared ingress. One violation per Service.
local paved = require "paved"

local function blocker(id, svc_type, title, advice)
    return {
        id = id,
        title = title,
        golden_path = false,
        enforcement = "deny",
        applies_to = { resources = { "Service" } },
        params = {},
        check = function(req, params, violation)
            local obj = req.object
            if type(obj) == "table" and obj.kind == "Service"
                and paved.get(obj, "spec", "type") == svc_type then
                violation("%s: spec.type %s is not allowed; %s", paved.name(obj), svc_type, advice)
            end
        end,
    }
end

return {
    blocker("block-loadbalancer-services", "LoadBalancer",
        "Services are not of type LoadBalancer",
        "use type ClusterIP and expose it through an Ingress or Gateway"),
    blocker("block-nodeport-services", "NodePort",
        "Services are not of type NodePort",
        "use type ClusterIP and expose it through an Ingress or Gateway"),
}
