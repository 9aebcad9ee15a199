-- psp-flexvolume-drivers: every flexVolume volume must use a driver listed in
-- `allowedFlexVolumes[].driver` (exact match). One violation per volume.
-- An empty list forbids every flexVolume; an absent list reports nothing, as
-- upstream cannot build its message without it. UPDATE is skipped.
local paved = require "paved"

return {
    id          = "psp-flexvolume-drivers",
    title       = "FlexVolume volumes use an allowed driver",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- spec.volumes is immutable, so UPDATE is not re-judged.
        if paved.is_update(req) then
            return
        end
        local allowed = params.allowedFlexVolumes
        if type(allowed) ~= "table" then
            return
        end
        for v in paved.volumes(req.object) do
            local fv = v.flexVolume
            if type(fv) == "table" then
                local driver = fv.driver
                local ok = false
                if driver ~= nil then
                    for _, a in ipairs(allowed) do
                        if type(a) == "table" and a.driver == driver then
                            ok = true
                            break
                        end
                    end
                end
                if not ok then
                    local names = {}
                    for _, a in ipairs(allowed) do
                        if type(a) == "table" and a.driver ~= nil then
                            names[#names + 1] = tostring(a.driver)
                        end
                    end
                    violation("volume %q: flexVolume driver %s is not allowed; use one of the allowed "
                        .. "drivers (%s) or another volume type", tostring(v.name),
                        driver == nil and "(unset)" or string.format("%q", tostring(driver)),
                        #names > 0 and table.concat(names, ", ") or "none")
                end
            end
        end
    end,
}
