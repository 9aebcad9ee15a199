-- psp-apparmor: each container's effective AppArmor profile must be one of
-- `allowedProfiles`, compared as annotation-style names (runtime/default,
-- unconfined, localhost/<name>). Entries are compared exactly, as upstream does.
--
-- Effective profile, first match wins:
--   1. container securityContext.appArmorProfile (field form, canonicalised)
--   2. annotation container.apparmor.security.beta.kubernetes.io/<container name>
--   3. pod spec.securityContext.appArmorProfile (field form, canonicalised)
--   4. runtime/default (nothing set anywhere)
-- A field-form profile that cannot be canonicalised (unknown type, Localhost
-- without localhostProfile) yields no profile, which is never allowed.
-- UPDATE is not skipped (upstream does not skip it either).
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

-- Field-form profile -> annotation-style name, or nil when it has no valid form.
local function canonical(profile)
    if type(profile) ~= "table" then
        return nil
    end
    local t = profile.type
    if t == "RuntimeDefault" then
        return "runtime/default"
    elseif t == "Unconfined" then
        return "unconfined"
    elseif t == "Localhost" and profile.localhostProfile ~= nil then
        return "localhost/" .. tostring(profile.localhostProfile)
    end
    return nil
end

-- Returns (profile name or nil, where it came from).
local function effective_profile(c, annotations, pod_profile)
    local cp = paved.get(c, "securityContext", "appArmorProfile")
    if cp ~= nil then
        return canonical(cp), "securityContext.appArmorProfile"
    end
    if annotations and type(c.name) == "string" then
        local key = ANNOTATION_PREFIX .. c.name
        local a = annotations[key]
        if a ~= nil then
            return a, "annotation " .. key
        end
    end
    if pod_profile ~= nil then
        return canonical(pod_profile), "pod spec.securityContext.appArmorProfile"
    end
    return "runtime/default", "default (no profile set)"
end

return {
    id          = "psp-apparmor",
    title       = "Containers run with an allowed AppArmor profile",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        local allowed = params.allowedProfiles
        -- Upstream cannot build its message without allowedProfiles, so a
        -- constraint that omits it reports nothing; keep that behaviour.
        if type(allowed) ~= "table" then
            return
        end
        local spec, md = paved.pod_spec(req.object)
        if not spec then
            return
        end
        local annotations = type(md.annotations) == "table" and md.annotations or nil
        local pod_profile = paved.get(spec, "securityContext", "appArmorProfile")
        for c, field in paved.each_container(req, params) do
            local profile, from = effective_profile(c, annotations, pod_profile)
            if profile == nil or not paved.contains(allowed, profile) then
                if profile == nil then
                    violation("%s %q: AppArmor profile from %s is invalid (unknown type or Localhost "
                        .. "without localhostProfile); set a profile allowed by the policy: %s",
                        LABEL[field], tostring(c.name), from, paved.join(allowed))
                else
                    violation("%s %q: AppArmor profile %q (from %s) is not allowed; use one of: %s",
                        LABEL[field], tostring(c.name), tostring(profile), from,
                        paved.join(allowed))
                end
            end
        end
    end,
}
