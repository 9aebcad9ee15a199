local paved = require "paved"

local tostring = tostring

local KINDS = { Pod = true, DaemonSet = true, Deployment = true, Job = true, StatefulSet = true }

return {
    id = "disallow-default-namespace",
    title = "Workloads are not deployed to the default namespace",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "Pod", "DaemonSet", "Deployment", "Job", "StatefulSet" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        if not KINDS[obj.kind] then
            return
        end
        -- req.namespace is metadata.namespace or the request's namespace. A
        -- namespaced object with neither lands in "default" when applied.
        local ns = req.namespace
        if ns == nil or ns == "default" then
            violation("%s %q is in the \"default\" namespace; set metadata.namespace to a "
                .. "dedicated namespace", obj.kind,
                tostring(paved.get(obj, "metadata", "name") or "?"))
        end
    end,
}
