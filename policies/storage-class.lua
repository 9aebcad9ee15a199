local paved = require "paved"

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local concat, sort = table.concat, table.sort

-- The names of the storage.k8s.io/v1 StorageClasses in the inventory, as a
-- set, or nil when there are none.
local function storage_classes(req)
    local set = nil
    for o in paved.inventory(req, "StorageClass") do
        local name = paved.get(o, "metadata", "name")
        if o.apiVersion == "storage.k8s.io/v1" and name ~= nil then
            set = set or {}
            set[name] = true
        end
    end
    return set
end

-- A class is allowed when it exists and allowedStorageClasses is absent or
-- lists it or "*". An empty allowedStorageClasses allows nothing.
local function allowed(classes, params, name)
    if not classes or not classes[name] then
        return false
    end
    local list = params.allowedStorageClasses
    if list == nil then
        return true
    end
    for _, a in ipairs(paved.list(list)) do
        if a == "*" or a == name then
            return true
        end
    end
    return false
end

-- "Use one of: a, b" for the messages: the existing classes, narrowed to the
-- allow-list when there is one.
local function choices(classes, params)
    local out = {}
    for name in pairs(classes or {}) do
        if allowed(classes, params, name) then
            out[#out + 1] = tostring(name)
        end
    end
    if #out == 0 then
        return "no usable StorageClass exists"
    end
    sort(out)
    return "use one of: " .. concat(out, ", ")
end

return {
    id = "storage-class",
    title = "Volume claims use an existing, allowed StorageClass",
    golden_path = false,
    enforcement = "deny",
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        local classes = storage_classes(req)
        -- Without any StorageClass in the inventory nothing can be validated;
        -- upstream reports this for every object in scope.
        if not classes then
            violation("no StorageClass is known to the policy engine (inventory has none); "
                .. "sync storage.k8s.io/v1 StorageClasses into the inventory")
        end
        if obj.apiVersion == "v1" and obj.kind == "PersistentVolumeClaim" then
            local sc = paved.get(obj, "spec", "storageClassName")
            if sc == nil then
                violation("PersistentVolumeClaim %q: spec.storageClassName is not set; set it (%s)",
                    tostring(paved.get(obj, "metadata", "name") or "?"), choices(classes, params))
            elseif not allowed(classes, params, sc) then
                violation("PersistentVolumeClaim %q: storageClassName %q is not an existing allowed "
                    .. "StorageClass; %s", tostring(paved.get(obj, "metadata", "name") or "?"),
                    tostring(sc), choices(classes, params))
            end
        elseif obj.apiVersion == "apps/v1" and obj.kind == "StatefulSet" then
            local name = tostring(paved.get(obj, "metadata", "name") or "?")
            -- Upstream words these per class name, not per template: templates
            -- without a class make one violation, and each distinct bad name one.
            local unnamed, bad = false, nil
            for _, vct in ipairs(paved.list(paved.get(obj, "spec", "volumeClaimTemplates"))) do
                local sc = paved.get(vct, "spec", "storageClassName")
                if sc == nil then
                    if not unnamed then
                        unnamed = true
                        violation("StatefulSet %q: volumeClaimTemplate %q has no spec.storageClassName; "
                            .. "set it (%s)", name, tostring(paved.get(vct, "metadata", "name") or "?"),
                            choices(classes, params))
                    end
                elseif not allowed(classes, params, sc) then
                    bad = bad or {}
                    if not bad[sc] then
                        bad[sc] = true
                        violation("StatefulSet %q: volumeClaimTemplate %q uses storageClassName %q, which "
                            .. "is not an existing allowed StorageClass; %s", name,
                            tostring(paved.get(vct, "metadata", "name") or "?"), tostring(sc),
                            choices(classes, params))
                    end
                end
            end
        end
    end,
}
