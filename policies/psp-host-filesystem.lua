-- psp-host-filesystem: every hostPath volume must fall under an
-- `allowedHostPaths` entry. `pathPrefix` matches whole path segments, so /foo
-- covers /foo and /foo/bar but not /foobar. When the matching entry has
-- readOnly: true, every volumeMount of that volume (any container, exempt or
-- not) must be readOnly; another matching entry without readOnly also allows
-- it. An empty or absent list forbids every hostPath volume. One violation per
-- volume. UPDATE is skipped.
local paved = require "paved"

local sfind, ssub = string.find, string.sub

-- Path -> list of segments: "/" is the empty list; otherwise the leading and
-- trailing slashes are trimmed and the rest is split on "/" (empty segments
-- between doubled slashes are kept, as upstream does).
local function segments(p)
    if p == "/" then
        return {}
    end
    local first, last = 1, #p
    while first <= last and ssub(p, first, first) == "/" do
        first = first + 1
    end
    while last >= first and ssub(p, last, last) == "/" do
        last = last - 1
    end
    local s = ssub(p, first, last)
    local out, pos = {}, 1
    while true do
        local i = sfind(s, "/", pos, true)
        if not i then
            out[#out + 1] = ssub(s, pos)
            return out
        end
        out[#out + 1] = ssub(s, pos, i - 1)
        pos = i + 1
    end
end

local function path_matches(prefix, path)
    if type(prefix) ~= "string" or type(path) ~= "string" then
        return false
    end
    local a, b = segments(prefix), segments(path)
    if #a > #b then
        return false
    end
    for i = 1, #a do
        if a[i] ~= b[i] then
            return false
        end
    end
    return true
end

-- Name of the first container that mounts the volume writable, or nil.
local function writable_mount(obj, volume_name)
    for c in paved.containers(obj) do
        for _, m in ipairs(paved.list(c.volumeMounts)) do
            if type(m) == "table" and m.name == volume_name and not paved.is_set(m.readOnly) then
                return c.name or "?"
            end
        end
    end
    return nil
end

return {
    id          = "psp-host-filesystem",
    title       = "hostPath volumes stay under allowed host paths",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        -- spec.volumes is immutable; UPDATE is not re-judged.
        if paved.is_update(req) then
            return
        end
        local allowed = paved.list(params.allowedHostPaths)
        for v in paved.volumes(req.object) do
            local hp = v.hostPath
            if type(hp) == "table" then
                local path = hp.path
                local ok, ro_blocker = false, nil
                local w_done, w = false, nil -- writable mount, looked up at most once
                for _, e in ipairs(allowed) do
                    if type(e) == "table" and path_matches(e.pathPrefix, path) then
                        if e.readOnly ~= true then
                            ok = true
                            break
                        end
                        if not w_done then
                            w_done, w = true, writable_mount(req.object, v.name)
                        end
                        if w == nil then
                            ok = true
                            break
                        end
                        ro_blocker = ro_blocker or { prefix = e.pathPrefix, container = w }
                    end
                end
                if not ok then
                    if #allowed == 0 then
                        violation("volume %q: hostPath %q is not allowed (no host paths are allowed); "
                            .. "use another volume type", tostring(v.name), tostring(path))
                    elseif ro_blocker then
                        violation("volume %q: hostPath %q is allowed only read-only (prefix %q) but container "
                            .. "%q mounts it writable; set readOnly: true on every volumeMount of it",
                            tostring(v.name), tostring(path), tostring(ro_blocker.prefix),
                            tostring(ro_blocker.container))
                    else
                        local prefixes = {}
                        for _, e in ipairs(allowed) do
                            if type(e) == "table" then
                                prefixes[#prefixes + 1] = tostring(e.pathPrefix)
                            end
                        end
                        violation("volume %q: hostPath %q is not under an allowed path prefix (%s); "
                            .. "use a path under one of them or another volume type", tostring(v.name),
                            tostring(path), table.concat(prefixes, ", "))
                    end
                end
            end
        end
    end,
}
