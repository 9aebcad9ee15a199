-- paved-ids: psp-seccomp psp-seccomp-v2
-- psp-seccomp and psp-seccomp-v2: each container's effective seccomp profile
-- must be allowed. psp-seccomp understands both the legacy annotations and the
-- securityContext fields (annotation-style names such as runtime/default);
-- psp-seccomp-v2 reads only the securityContext fields and uses their type
-- names (RuntimeDefault, Localhost, Unconfined). Neither skips UPDATE.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local get, list, has_prefix, is_set = paved.get, paved.list, paved.has_prefix, paved.is_set

local APPLIES_TO = { resources = paved.POD_KINDS }

local POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
local CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"

local function has_star(t)
    for _, x in ipairs(list(t)) do
        if x == "*" then
            return true
        end
    end
    return false
end

-- The allowed profiles (or files) for messages.
local function describe(allowed)
    return paved.join(allowed, "none (allowedProfiles is empty)")
end

-- ---- psp-seccomp: annotation and field schemes ----

-- The set of annotation-style names allowed by the params. Every entry is
-- allowed verbatim; in addition, a field-scheme entry (a name without '/')
-- is translated into annotation names once per allowedLocalhostFiles entry.
-- (Upstream only translates when allowedLocalhostFiles has entries, so a bare
-- "RuntimeDefault" without any localhost file stays a literal name.)
local function v1_allowed_set(params)
    local set = {}
    local files = list(params.allowedLocalhostFiles)
    for _, p in ipairs(list(params.allowedProfiles)) do
        set[p] = true
        if type(p) == "string" and not p:find("/", 1, true) then
            for _, f in ipairs(files) do
                if p == "RuntimeDefault" then
                    set["runtime/default"], set["docker/default"] = true, true
                elseif p == "Localhost" and (type(f) == "string" or type(f) == "number") then
                    set["localhost/" .. f] = true
                elseif p == "Unconfined" then
                    set["unconfined"] = true
                end
            end
        end
    end
    return set
end

-- A seccompProfile field as an annotation-style name; nil when its type is
-- unknown or a Localhost profile names no file (such profiles are not judged).
local function v1_canonical(sp, runtime_default)
    if type(sp) ~= "table" then
        return nil
    end
    local t = sp.type
    if t == "RuntimeDefault" then
        return runtime_default
    elseif t == "Localhost" then
        local f = sp.localhostProfile
        if type(f) == "string" or type(f) == "number" then
            return "localhost/" .. f
        end
        return nil
    elseif t == "Unconfined" then
        return "unconfined"
    end
    return nil
end

local seccomp = {
    id          = "psp-seccomp",
    title       = "Containers use an allowed seccomp profile",
    golden_path = true,
    enforcement = "deny",
    applies_to  = APPLIES_TO,
    params      = {},
    -- Not skipped on UPDATE: upstream checks every operation.
    check = function(req, params, violation)
        if has_star(params.allowedProfiles) then
            return
        end
        local spec, meta = paved.pod_spec(req.object)
        if not spec then
            return
        end
        local allowed = v1_allowed_set(params)
        -- RuntimeDefault in a securityContext is named after whichever of the
        -- two equivalent annotation names the params use.
        local rd = "runtime/default"
        if not paved.contains(params.allowedProfiles, "runtime/default")
            and paved.contains(params.allowedProfiles, "docker/default") then
            rd = "docker/default"
        end
        local annotations = type(meta.annotations) == "table" and meta.annotations or {}
        local pod_sp = get(spec, "securityContext", "seccompProfile")
        for c, field in paved.each_container(req, params) do
            local name = tostring(c.name)
            -- First set source wins: container field, pod field, container
            -- annotation, pod annotation.
            local profile, where, judged = nil, nil, true
            local csp = get(c, "securityContext", "seccompProfile")
            if is_set(csp) then
                profile, where = v1_canonical(csp, rd), "container securityContext.seccompProfile"
                judged = profile ~= nil
            elseif is_set(pod_sp) then
                profile, where = v1_canonical(pod_sp, rd), "pod securityContext.seccompProfile"
                judged = profile ~= nil
            else
                local key = CONTAINER_ANNOTATION .. name
                if is_set(annotations[key]) then
                    profile, where = annotations[key], "annotation " .. key
                elseif is_set(annotations[POD_ANNOTATION]) then
                    profile, where = annotations[POD_ANNOTATION], "annotation " .. POD_ANNOTATION
                else
                    -- Nothing set: the pseudo-profile "not configured",
                    -- which only passes if allowedProfiles names it literally.
                    profile, where = "not configured", "no profile set on the container or pod"
                end
            end
            if judged and not (allowed[profile]
                    or (allowed["localhost/*"] and has_prefix(profile, "localhost/"))) then
                violation("%s %q: seccomp profile %q (from %s) is not allowed; "
                          .. "set securityContext.seccompProfile to one of: %s",
                          LABEL[field], name, tostring(profile), where,
                          describe(params.allowedProfiles))
            end
        end
    end,
}

-- ---- psp-seccomp-v2: securityContext fields only ----

local seccomp_v2 = {
    id          = "psp-seccomp-v2",
    title       = "Containers use an allowed seccomp profile (securityContext fields)",
    golden_path = true,
    enforcement = "deny",
    applies_to  = APPLIES_TO,
    params      = {},
    -- Not skipped on UPDATE, like psp-seccomp.
    check = function(req, params, violation)
        local profiles = params.allowedProfiles
        if has_star(profiles) then
            return
        end
        local spec = paved.pod_spec(req.object)
        if not spec then
            return
        end
        -- "Localhost" in allowedProfiles allows the files of
        -- allowedLocalhostFiles (when that param is absent, only a Localhost
        -- profile without a file). A "*" file allows any Localhost profile,
        -- even when "Localhost" is not listed.
        local files = params.allowedLocalhostFiles
        if files == nil then
            files = { "" }
        end
        local any_file = has_star(files)
        local localhost_ok = paved.contains(profiles, "Localhost")
        local pod_sp = get(spec, "securityContext", "seccompProfile")
        for c, field in paved.each_container(req, params) do
            local sp, where
            local csp = get(c, "securityContext", "seccompProfile")
            if is_set(csp) then
                sp, where = csp, "container securityContext.seccompProfile"
            elseif is_set(pod_sp) then
                sp, where = pod_sp, "pod securityContext.seccompProfile"
            end
            local ptype, file
            if sp == nil then
                ptype, file, where = "not configured", "", "no profile set on the container or pod"
            elseif type(sp) == "table" then
                ptype = sp.type
                file = sp.localhostProfile
                if file == nil then
                    file = ""
                end
            end
            -- A profile without a type is not judged (as upstream).
            if ptype ~= nil then
                local ok
                if ptype == "Localhost" then
                    ok = any_file or (localhost_ok and paved.contains(files, file))
                else
                    ok = paved.contains(profiles, ptype)
                end
                if not ok then
                    local name = tostring(c.name)
                    if ptype == "Localhost" then
                        violation("%s %q: seccomp profile Localhost with file %q (from %s) is not "
                                  .. "allowed; use an allowed profile (%s) or an allowed "
                                  .. "localhostProfile (%s)", LABEL[field], name, tostring(file),
                                  where, describe(profiles), describe(files))
                    else
                        violation("%s %q: seccomp profile %q (from %s) is not allowed; "
                                  .. "set securityContext.seccompProfile.type to one of: %s",
                                  LABEL[field], name, tostring(ptype), where, describe(profiles))
                    end
                end
            end
        end
    end,
}

return { seccomp, seccomp_v2 }
