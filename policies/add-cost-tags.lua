-- policies/add-cost-tags.lua: the mutating side of cost tags. When a workload in a
-- namespace with team defaults (params.namespaces, from the config) lacks one of the
-- cost labels, POST /k8s/mutate adds the namespace's value, on the object and on its
-- pod template (cost tools read pod labels). Existing labels are never changed; a
-- namespace without defaults is left alone (and cost-tags validation still applies).
--
-- params:
--   namespaces: { <namespace> = { team = "payments", ["cost-center"] = "cc-1042" } }
--   labels:     the label keys to fill (default team and cost-center)
local paved = require "paved"

local function add_missing(ops, base, labels, defaults, keys)
    if type(labels) ~= "table" then
        local value = {}
        local any = false
        for _, k in ipairs(keys) do
            if type(defaults[k]) == "string" then
                value[k] = defaults[k]
                any = true
            end
        end
        if any then
            ops[#ops + 1] = { op = "add", path = base .. "/labels", value = value }
        end
        return
    end
    for _, k in ipairs(keys) do
        if labels[k] == nil and type(defaults[k]) == "string" then
            ops[#ops + 1] = { op = "add", path = base .. "/labels/" .. paved.pointer_escape(k),
                value = defaults[k] }
        end
    end
end

return {
    id = "add-cost-tags",
    title = "Missing cost tags are filled from the namespace's team defaults",
    golden_path = false,
    enforcement = "audit",
    applies_to = { resources = paved.POD_KINDS },
    params = { namespaces = {}, labels = { "team", "cost-center" } },
    check = function()
        -- A mutator: the cost-tags binding validates.
    end,
    mutate = function(req, params)
        local defaults = paved.get(params, "namespaces", req.namespace or "")
        local obj = req.object
        if type(defaults) ~= "table" or type(obj.metadata) ~= "table" then
            return nil
        end
        local keys = paved.list(params.labels)
        local ops = {}
        add_missing(ops, "/metadata", obj.metadata.labels, defaults, keys)
        local spec_ptr = paved.pod_spec_pointer(obj)
        if spec_ptr and spec_ptr ~= "/spec" then
            local tmeta_ptr = spec_ptr:sub(1, -6) .. "/metadata"
            local _, tmeta = paved.pod_spec(obj)
            local has_meta = paved.get(obj, "spec", "template", "metadata") ~= nil
                or paved.get(obj, "spec", "jobTemplate", "spec", "template", "metadata") ~= nil
            if not has_meta then
                ops[#ops + 1] = { op = "add", path = tmeta_ptr, value = {} }
            end
            add_missing(ops, tmeta_ptr, tmeta.labels, defaults, keys)
        end
        return ops
    end,
}
