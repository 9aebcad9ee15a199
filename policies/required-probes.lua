local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring
local concat = table.concat

-- True when the container has a usable `probe`: a probe object that sets at
-- least one handler of probeTypes. A null or non-object probe is missing.
-- With no probeTypes (paved extension) any probe object is accepted.
local function has_probe(c, probe, types)
    local p = c[probe]
    if type(p) ~= "table" then
        return false
    end
    if types[1] == nil then
        return true
    end
    for _, t in ipairs(types) do
        if p[t] ~= nil then
            return true
        end
    end
    return false
end

return {
    id = "required-probes",
    title = "Containers declare health probes",
    golden_path = true,
    enforcement = "deny",
    -- A team may waive probes for itself, briefly (recorded as an exception all the same).
    exceptions = { allowed = true, self_service = true, max_days = 14 },
    params = { requireAll = true },
    check = function(req, params, violation)
        -- Probes cannot change on UPDATE, so only CREATE is checked.
        if req.operation == "UPDATE" then
            return
        end
        local probes = paved.list(params.probes)
        if probes[1] == nil then
            return
        end
        local types = paved.list(params.probeTypes)
        local kind = tostring(req.object.kind)
        local name = tostring(paved.get(req.object, "metadata", "name") or "?")
        local handlers = types[1] ~= nil and concat(types, ", ") or nil
        -- Only regular containers: init and ephemeral containers take no probes.
        for c in paved.containers(req.object, paved.REGULAR) do
            if params.requireAll == false then
                -- Paved extension: one of the listed probes is enough.
                local ok = false
                for _, probe in ipairs(probes) do
                    if has_probe(c, probe, types) then
                        ok = true
                        break
                    end
                end
                if not ok then
                    violation("container %q in %s %q has none of the probes %s; add at least one%s",
                        tostring(c.name), kind, name, concat(probes, ", "),
                        handlers and (" using one of " .. handlers) or "")
                end
            else
                for _, probe in ipairs(probes) do
                    if not has_probe(c, probe, types) then
                        violation("container %q in %s %q has no %s; add one%s",
                            tostring(c.name), kind, name, tostring(probe),
                            handlers and (" using one of " .. handlers) or "")
                    end
                end
            end
        end
    end,
}
