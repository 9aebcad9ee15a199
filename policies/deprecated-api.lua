local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring

return {
    id = "deprecated-api",
    title = "Objects do not use deprecated API versions",
    golden_path = false,
    enforcement = "deny",
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        local av, kind = obj.apiVersion, obj.kind
        if av == nil or kind == nil then
            return
        end
        local version = params.k8sVersion
        version = version ~= nil and tostring(version) or "(unknown)"
        -- Entries repeating the same target give the same message: count once.
        violation = paved.unique(violation)
        for _, kv in ipairs(paved.list(params.kvs)) do
            if type(kv) == "table" and kv.deprecatedAPI == av and paved.contains(kv.kinds, kind) then
                local target = kv.targetAPI
                -- A targetAPI of "None" means the kind was removed without a replacement.
                if target == "None" then
                    violation("%s uses apiVersion %s, which is deprecated in Kubernetes %s and has "
                        .. "no replacement; see the Kubernetes API deprecation guide and migrate "
                        .. "away from it", kind, av, version)
                else
                    violation("%s uses apiVersion %s, which is deprecated in Kubernetes %s; "
                        .. "change apiVersion to %s", kind, av, version, tostring(target))
                end
            end
        end
    end,
}
