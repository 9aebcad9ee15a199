-- paved-ids: psa-*
-- psa.lua: the Kubernetes Pod Security Admission (Pod Security Standards) family.
--
--   psa-baseline, psa-restricted   every check of the level; one violation per
--                                  failing check
--   psa-<level>-<checkID>          a single check as PSA runs it at that level
--
-- Semantics follow the upstream checks (kubernetes/pod-security-admission,
-- policy/check_*.go) at v1.37; `version` ("latest" or "v1.NN") selects the
-- historical behaviour of each check where it changed (minimum versions, the
-- Windows and user-namespace relaxations, the sysctl allow-list, SELinux types,
-- seccomp annotations before v1.19). Versions newer than the newest known one
-- are treated as the newest, as PSA does.
--
-- The pod is the object itself, or the pod template of a controller
-- (paved.pod_spec); AppArmor/seccomp annotations are read from that template's
-- metadata. Containers are initContainers + containers + ephemeralContainers.
--
-- `exclude` = [{checks = [ids], images = [patterns]}]: an entry without images
-- waives the pod-level fields of those checks (pod securityContext, host
-- namespaces, volumes, sysctls, annotations); for checks where containers may
-- inherit the pod-level value (runAsNonRoot, seccompProfile_restricted) a waived
-- pod level also counts as satisfied for containers that leave the field unset.
-- An entry with images waives those checks for the containers whose image
-- matches one pattern ("*" = all, trailing "*" = prefix, else exact).
local paved = require "paved"

local get, list, match_any = paved.get, paved.list, paved.match_any
local type, ipairs, pairs, tostring, tonumber, error = type, ipairs, pairs, tostring, tonumber, error
local concat, sort, tointeger = table.concat, table.sort, math.tointeger
local sformat, ssub = string.format, string.sub

local LATEST = 37 -- newest PSA minor version implemented here (v1.37)

local EMPTY = setmetatable({}, { __newindex = function() error("read-only", 2) end })

local function tbl(v)
    return type(v) == "table" and v or EMPTY
end

-- ---- message helpers ----

local function add(arr, v)
    arr = arr or {}
    arr[#arr + 1] = v
    return arr
end

local function quoted(items)
    local out = {}
    for i, s in ipairs(items) do
        out[i] = '"' .. tostring(s) .. '"'
    end
    return concat(out, ", ")
end

local function ctr_word(items)
    return #items == 1 and "container" or "containers"
end

-- sorted, de-duplicated copy of a set table's keys
local function sorted_keys(set)
    local out = {}
    for k in pairs(set) do
        out[#out + 1] = k
    end
    sort(out)
    return out
end

-- "pod and containers "a", "b"" style subject for pod+container setters.
local function setters(pod_bad, ctrs)
    local parts = {}
    if pod_bad then
        parts[1] = "pod"
    end
    if ctrs then
        parts[#parts + 1] = ctr_word(ctrs) .. " " .. quoted(ctrs)
    end
    return concat(parts, " and ")
end

-- ---- evaluation context ----
-- ctx = { spec=, meta=, psc=, ctrs=, v=, windows=, userns= }
-- ex  = { pod = bool (pod-level fields waived), imgs = patterns|nil }

local NOEX = { pod = false }

local CTR_FIELDS = { "initContainers", "containers", "ephemeralContainers" }

local function skipped(ex, c)
    return ex.imgs ~= nil and match_any(ex.imgs, c.image)
end

local function cname(c)
    local n = c.name
    return n == nil and "" or tostring(n)
end

local function sc_of(c)
    return tbl(c.securityContext)
end

-- ---- the checks ----
-- Each check returns nil when it passes, else the detail text (what is wrong
-- and what to change).

local function allowPrivilegeEscalation(ctx, ex)
    -- Windows pods have no privilege escalation concept (v1.25+).
    if ctx.v >= 25 and ctx.windows then
        return nil
    end
    local bad
    for _, c in ipairs(ctx.ctrs) do
        -- only an explicit false passes; unset counts as allowed escalation
        if not skipped(ex, c) and sc_of(c).allowPrivilegeEscalation ~= false then
            bad = add(bad, cname(c))
        end
    end
    if bad then
        return sformat("%s %s must set securityContext.allowPrivilegeEscalation=false",
            ctr_word(bad), quoted(bad))
    end
end

local function apparmor_type_ok(t)
    return t == "RuntimeDefault" or t == "Localhost"
end

local APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

local function appArmorProfile(ctx, ex)
    local pod_bad, bad
    local values = {}
    if not ex.pod then
        local p = ctx.psc.appArmorProfile
        if type(p) == "table" and not apparmor_type_ok(p.type) then
            pod_bad = true
            values[tostring(p.type or "")] = true
        end
    end
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local p = sc_of(c).appArmorProfile
            if type(p) == "table" and not apparmor_type_ok(p.type) then
                bad = add(bad, cname(c))
                values[tostring(p.type or "")] = true
            end
        end
    end
    -- the deprecated per-container annotations live in the pod metadata and are
    -- treated as pod-level fields
    local annos
    if not ex.pod then
        for k, val in pairs(tbl(ctx.meta.annotations)) do
            if type(k) == "string" and ssub(k, 1, #APPARMOR_PREFIX) == APPARMOR_PREFIX then
                local s = type(val) == "string" and val or tostring(val)
                if not (s == "" or s == "runtime/default" or ssub(s, 1, 10) == "localhost/") then
                    annos = add(annos, sformat("%s=%q", k, s))
                end
            end
        end
    end
    if not (pod_bad or bad or annos) then
        return nil
    end
    local who = setters(pod_bad, bad)
    local msg = {}
    if pod_bad or bad then
        msg[1] = sformat("%s must not set securityContext.appArmorProfile.type to %s",
            who, quoted(sorted_keys(values)))
    end
    if annos then
        sort(annos)
        msg[#msg + 1] = sformat("forbidden AppArmor %s %s", #annos == 1 and "annotation" or "annotations",
            concat(annos, ", "))
    end
    return concat(msg, "; ") .. ' (use type "RuntimeDefault" or "Localhost", or annotation values '
        .. '"runtime/default" or "localhost/<profile>")'
end

local CAPS_BASELINE = paved.set({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})

local function capabilities_baseline(ctx, ex)
    local bad
    local caps = {}
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local ok = true
            for _, cap in ipairs(list(get(c, "securityContext", "capabilities", "add"))) do
                if not CAPS_BASELINE[cap] then
                    ok = false
                    caps[tostring(cap)] = true
                end
            end
            if not ok then
                bad = add(bad, cname(c))
            end
        end
    end
    if bad then
        return sformat("%s %s must not include %s in securityContext.capabilities.add; "
            .. "add only capabilities of the default set", ctr_word(bad), quoted(bad),
            quoted(sorted_keys(caps)))
    end
end

local function capabilities_restricted(ctx, ex)
    if ctx.v >= 25 and ctx.windows then
        return nil
    end
    local nodrop, adding
    local caps = {}
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local capt = get(c, "securityContext", "capabilities")
            if type(capt) ~= "table" then
                nodrop = add(nodrop, cname(c))
            else
                -- "ALL" must be dropped (exact, case-sensitive)
                local dropped = false
                for _, d in ipairs(list(capt.drop)) do
                    if d == "ALL" then
                        dropped = true
                        break
                    end
                end
                if not dropped then
                    nodrop = add(nodrop, cname(c))
                end
                local forbidden = false
                for _, a in ipairs(list(capt.add)) do
                    if a ~= "NET_BIND_SERVICE" then
                        forbidden = true
                        caps[tostring(a)] = true
                    end
                end
                if forbidden then
                    adding = add(adding, cname(c))
                end
            end
        end
    end
    local msg = {}
    if nodrop then
        msg[1] = sformat('%s %s must set securityContext.capabilities.drop=["ALL"]',
            ctr_word(nodrop), quoted(nodrop))
    end
    if adding then
        msg[#msg + 1] = sformat("%s %s must not include %s in securityContext.capabilities.add "
            .. '(only "NET_BIND_SERVICE" may be added)', ctr_word(adding), quoted(adding),
            quoted(sorted_keys(caps)))
    end
    if #msg > 0 then
        return concat(msg, "; ")
    end
end

local function hostNamespaces(ctx, ex)
    if ex.pod then
        return nil
    end
    local spec, bad = ctx.spec, nil
    if spec.hostNetwork == true then
        bad = add(bad, "hostNetwork=true")
    end
    if spec.hostPID == true then
        bad = add(bad, "hostPID=true")
    end
    if spec.hostIPC == true then
        bad = add(bad, "hostIPC=true")
    end
    if bad then
        local pron = #bad == 1 and "it" or "them"
        return sformat("pod sets %s; set %s to false or remove %s", concat(bad, ", "), pron, pron)
    end
end

local function hostPathVolumes(ctx, ex)
    if ex.pod then
        return nil
    end
    local bad
    for _, vol in ipairs(list(ctx.spec.volumes)) do
        if type(vol) == "table" and vol.hostPath ~= nil then
            bad = add(bad, vol.name == nil and "" or tostring(vol.name))
        end
    end
    if bad then
        return sformat("%s %s %s hostPath; use another volume type", #bad == 1 and "volume" or "volumes",
            quoted(bad), #bad == 1 and "uses" or "use")
    end
end

local function hostPorts(ctx, ex)
    local bad
    local ports = {}
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local ok = true
            for _, p in ipairs(list(c.ports)) do
                local hp = type(p) == "table" and p.hostPort or nil
                if hp ~= nil and hp ~= 0 then
                    ok = false
                    local n = tointeger(hp)
                    ports[n and tostring(n) or tostring(hp)] = true
                end
            end
            if not ok then
                bad = add(bad, cname(c))
            end
        end
    end
    if bad then
        local plist = sorted_keys(ports)
        return sformat("%s %s %s %s %s; remove hostPort or set it to 0", ctr_word(bad), quoted(bad),
            #bad == 1 and "uses" or "use", #plist == 1 and "hostPort" or "hostPorts", concat(plist, ", "))
    end
end

local PROBES = { "livenessProbe", "readinessProbe", "startupProbe" }
local HANDLERS = { "postStart", "preStop" }

local function handler_hosts(h, hosts)
    if type(h) ~= "table" then
        return false
    end
    local found = false
    for _, kind in ipairs({ "httpGet", "tcpSocket" }) do
        local host = get(h, kind, "host")
        if host ~= nil and host ~= "" then
            hosts[tostring(host)] = true
            found = true
        end
    end
    return found
end

local function hostProbesAndHostLifecycle(ctx, ex)
    if ctx.v < 34 then
        return nil
    end
    local bad
    local hosts = {}
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local found = false
            for _, p in ipairs(PROBES) do
                if handler_hosts(c[p], hosts) then
                    found = true
                end
            end
            local lc = c.lifecycle
            if type(lc) == "table" then
                for _, h in ipairs(HANDLERS) do
                    if handler_hosts(lc[h], hosts) then
                        found = true
                    end
                end
            end
            if found then
                bad = add(bad, cname(c))
            end
        end
    end
    if bad then
        local hl = sorted_keys(hosts)
        return sformat("%s %s %s probe or lifecycle %s %s; remove the host field (it defaults to the pod IP)",
            ctr_word(bad), quoted(bad), #bad == 1 and "uses" or "use", #hl == 1 and "host" or "hosts",
            quoted(hl))
    end
end

local function privileged(ctx, ex)
    local bad
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) and sc_of(c).privileged == true then
            bad = add(bad, cname(c))
        end
    end
    if bad then
        return sformat("%s %s must not set securityContext.privileged=true; set it to false or remove it",
            ctr_word(bad), quoted(bad))
    end
end

local function procmount_common(ctx, ex)
    local bad
    local types = {}
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local pm = sc_of(c).procMount
            if pm ~= nil and pm ~= "Default" then
                bad = add(bad, cname(c))
                types[tostring(pm)] = true
            end
        end
    end
    if bad then
        return sformat('%s %s must not set securityContext.procMount to %s; set it to "Default" or remove it',
            ctr_word(bad), quoted(bad), quoted(sorted_keys(types)))
    end
end

local function procMount(ctx, ex)
    -- user-namespaced pods (hostUsers: false) may use any procMount (v1.35+)
    if ctx.v >= 35 and ctx.userns then
        return nil
    end
    return procmount_common(ctx, ex)
end

local function procMount_restricted(ctx, ex)
    if ctx.v < 35 then
        return nil
    end
    return procmount_common(ctx, ex)
end

local ALLOWED_VOLUMES = { "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
    "persistentVolumeClaim", "projected", "secret" }
local RESTRICTED_VOLUMES = { "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs",
    "iscsi", "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO",
    "storageos" }

local function restrictedVolumes(ctx, ex)
    if ex.pod then
        return nil
    end
    local bad
    local types = {}
    for _, vol in ipairs(list(ctx.spec.volumes)) do
        if type(vol) == "table" then
            local allowed = false
            for _, k in ipairs(ALLOWED_VOLUMES) do
                if vol[k] ~= nil then
                    allowed = true
                    break
                end
            end
            if not allowed then
                -- A volume that names none of the known sources is defaulted to
                -- emptyDir by the API server, so only a restricted source fails.
                for _, k in ipairs(RESTRICTED_VOLUMES) do
                    if vol[k] ~= nil then
                        bad = add(bad, vol.name == nil and "" or tostring(vol.name))
                        types[k] = true
                        break
                    end
                end
            end
        end
    end
    if bad then
        local tl = sorted_keys(types)
        return sformat("%s %s %s restricted volume %s %s; use configMap, csi, downwardAPI, emptyDir, "
            .. "ephemeral, image, persistentVolumeClaim, projected or secret volumes",
            #bad == 1 and "volume" or "volumes", quoted(bad), #bad == 1 and "uses" or "use",
            #tl == 1 and "type" or "types", quoted(tl))
    end
end

local function runAsNonRoot(ctx, ex)
    if ctx.v >= 35 and ctx.userns then
        return nil
    end
    local pod_bad = false
    local pod_true = false
    if ex.pod then
        pod_true = true -- a waived pod level counts as satisfied for inheriting containers
    else
        local v = ctx.psc.runAsNonRoot
        if v == false then
            pod_bad = true
        elseif v == true then
            pod_true = true
        end
    end
    local explicit, implicit
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local v = sc_of(c).runAsNonRoot
            if v ~= nil then
                if v == false then
                    explicit = add(explicit, cname(c))
                end
            elseif not pod_true then
                implicit = add(implicit, cname(c))
            end
        end
    end
    if pod_bad or explicit then
        return sformat("%s must not set securityContext.runAsNonRoot=false; set it to true",
            setters(pod_bad, explicit))
    end
    if implicit then
        return sformat("pod or %s %s must set securityContext.runAsNonRoot=true", ctr_word(implicit),
            quoted(implicit))
    end
end

local function runAsUser(ctx, ex)
    if ctx.v < 23 then
        return nil
    end
    if ctx.v >= 35 and ctx.userns then
        return nil
    end
    local pod_bad = not ex.pod and ctx.psc.runAsUser == 0
    local bad
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) and sc_of(c).runAsUser == 0 then
            bad = add(bad, cname(c))
        end
    end
    if pod_bad or bad then
        return sformat("%s must not set runAsUser=0; use a non-zero user id or leave it unset",
            setters(pod_bad, bad))
    end
end

local SELINUX_TYPES_1_0 = paved.set({ "", "container_t", "container_init_t", "container_kvm_t" })
local SELINUX_TYPES_1_31 = paved.set({ "", "container_t", "container_init_t", "container_kvm_t",
    "container_engine_t" })

local function nonempty(s)
    return s ~= nil and s ~= ""
end

local function seLinuxOptions(ctx, ex)
    local allowed = ctx.v >= 31 and SELINUX_TYPES_1_31 or SELINUX_TYPES_1_0
    local types = {}
    local set_user, set_role = false, false
    local function valid(o)
        local ok = true
        local t = o.type
        if t == nil then
            t = ""
        end
        if not allowed[t] then
            ok = false
            types[tostring(t)] = true
        end
        if nonempty(o.user) then
            ok = false
            set_user = true
        end
        if nonempty(o.role) then
            ok = false
            set_role = true
        end
        return ok
    end
    local pod_bad = false
    if not ex.pod then
        local o = ctx.psc.seLinuxOptions
        if type(o) == "table" and not valid(o) then
            pod_bad = true
        end
    end
    local bad
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local o = sc_of(c).seLinuxOptions
            if type(o) == "table" and not valid(o) then
                bad = add(bad, cname(c))
            end
        end
    end
    if not (pod_bad or bad) then
        return nil
    end
    local data = {}
    local tl = sorted_keys(types)
    if #tl > 0 then
        data[1] = sformat("%s %s", #tl == 1 and "type" or "types", quoted(tl))
    end
    if set_user then
        data[#data + 1] = "user may not be set"
    end
    if set_role then
        data[#data + 1] = "role may not be set"
    end
    return sformat("%s set forbidden securityContext.seLinuxOptions: %s; use type container_t, "
        .. "container_init_t, container_kvm_t%s or leave it empty, and leave user and role empty",
        setters(pod_bad, bad), concat(data, "; "), ctx.v >= 31 and ", container_engine_t" or "")
end

local function seccomp_ok(t)
    return t == "RuntimeDefault" or t == "Localhost"
end

local SECCOMP_POD_ANNO = "seccomp.security.alpha.kubernetes.io/pod"
local SECCOMP_CTR_ANNO = "container.seccomp.security.alpha.kubernetes.io/"

local function seccomp_anno_ok(v)
    return v == "runtime/default" or v == "docker/default"
        or (type(v) == "string" and ssub(v, 1, 10) == "localhost/")
end

-- before v1.19 seccomp was configured with annotations only
local function seccomp_annotations(ctx, ex)
    local annos = tbl(ctx.meta.annotations)
    local bad = {}
    if not ex.pod then
        local v = annos[SECCOMP_POD_ANNO]
        if v ~= nil and not seccomp_anno_ok(v) then
            bad[sformat("%s=%q", SECCOMP_POD_ANNO, tostring(v))] = true
        end
    end
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local k = SECCOMP_CTR_ANNO .. cname(c)
            local v = annos[k]
            if v ~= nil and not seccomp_anno_ok(v) then
                bad[sformat("%s=%q", k, tostring(v))] = true
            end
        end
    end
    local l = sorted_keys(bad)
    if #l > 0 then
        return sformat('forbidden %s %s; use "runtime/default" or "localhost/<profile>"',
            #l == 1 and "annotation" or "annotations", concat(l, ", "))
    end
end

local function seccompProfile_baseline(ctx, ex)
    if ctx.v < 19 then
        return seccomp_annotations(ctx, ex)
    end
    local values = {}
    local pod_bad = false
    if not ex.pod then
        local p = ctx.psc.seccompProfile
        if type(p) == "table" and not seccomp_ok(p.type) then
            pod_bad = true
            values[tostring(p.type or "")] = true
        end
    end
    local bad
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local p = sc_of(c).seccompProfile
            if type(p) == "table" and not seccomp_ok(p.type) then
                bad = add(bad, cname(c))
                values[tostring(p.type or "")] = true
            end
        end
    end
    if pod_bad or bad then
        return sformat('%s must not set securityContext.seccompProfile.type to %s; use "RuntimeDefault" '
            .. 'or "Localhost"', setters(pod_bad, bad), quoted(sorted_keys(values)))
    end
end

local function seccompProfile_restricted(ctx, ex)
    if ctx.v < 19 then
        return nil
    end
    if ctx.v >= 25 and ctx.windows then
        return nil
    end
    local values = {}
    local pod_bad, pod_set = false, false
    if ex.pod then
        pod_set = true -- a waived pod level counts as set for inheriting containers
    else
        local p = ctx.psc.seccompProfile
        if type(p) == "table" then
            if seccomp_ok(p.type) then
                pod_set = true
            else
                pod_bad = true
                values[tostring(p.type or "")] = true
            end
        end
    end
    local explicit, implicit
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) then
            local p = sc_of(c).seccompProfile
            if type(p) == "table" then
                if not seccomp_ok(p.type) then
                    explicit = add(explicit, cname(c))
                    values[tostring(p.type or "")] = true
                end
            elseif not pod_set then
                implicit = add(implicit, cname(c))
            end
        end
    end
    if pod_bad or explicit then
        return sformat('%s must not set securityContext.seccompProfile.type to %s; use "RuntimeDefault" '
            .. 'or "Localhost"', setters(pod_bad, explicit), quoted(sorted_keys(values)))
    end
    if implicit then
        return sformat('pod or %s %s must set securityContext.seccompProfile.type to "RuntimeDefault" '
            .. 'or "Localhost"', ctr_word(implicit), quoted(implicit))
    end
end

-- the allow-list grows with the version
local SYSCTLS = {
    { 0, { "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start" } },
    { 27, { "net.ipv4.ip_local_reserved_ports" } },
    { 29, { "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes" } },
    { 32, { "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem" } },
    { 37, { "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat" } },
}
local sysctl_sets = {} -- minor version -> allow set (built lazily)

local function sysctl_allowed(v)
    local s = sysctl_sets[v]
    if not s then
        s = {}
        for _, step in ipairs(SYSCTLS) do
            if v >= step[1] then
                for _, n in ipairs(step[2]) do
                    s[n] = true
                end
            end
        end
        sysctl_sets[v] = s
    end
    return s
end

local function sysctls(ctx, ex)
    if ex.pod then
        return nil
    end
    local allowed = sysctl_allowed(ctx.v)
    local bad
    for _, s in ipairs(list(ctx.psc.sysctls)) do
        local name = type(s) == "table" and s.name or nil
        if not allowed[name] then
            bad = add(bad, tostring(name or ""))
        end
    end
    if bad then
        return sformat("forbidden %s %s in securityContext.sysctls; use only the safe sysctls (%s)",
            #bad == 1 and "sysctl" or "sysctls", concat(bad, ", "), concat(sorted_keys(allowed), ", "))
    end
end

local function windowsHostProcess(ctx, ex)
    local pod_bad = not ex.pod and get(ctx.psc, "windowsOptions", "hostProcess") == true
    local bad
    for _, c in ipairs(ctx.ctrs) do
        if not skipped(ex, c) and get(c, "securityContext", "windowsOptions", "hostProcess") == true then
            bad = add(bad, cname(c))
        end
    end
    if pod_bad or bad then
        return sformat("%s must not set securityContext.windowsOptions.hostProcess=true; set it to false "
            .. "or remove it", setters(pod_bad, bad))
    end
end

-- id -> level, first minor version the check exists, function, the baseline
-- check it replaces at the restricted level (from which version), title
local CHECK_LIST = {
    { id = "allowPrivilegeEscalation", level = "restricted", min = 8, fn = allowPrivilegeEscalation,
        title = "Containers disallow privilege escalation" },
    { id = "appArmorProfile", level = "baseline", min = 0, fn = appArmorProfile,
        title = "AppArmor profile is not overridden or disabled" },
    { id = "capabilities_baseline", level = "baseline", min = 0, fn = capabilities_baseline,
        title = "Containers add only default capabilities" },
    { id = "capabilities_restricted", level = "restricted", min = 22, fn = capabilities_restricted,
        overrides = "capabilities_baseline", title = "Containers drop ALL capabilities" },
    { id = "hostNamespaces", level = "baseline", min = 0, fn = hostNamespaces,
        title = "Pods do not share host namespaces" },
    { id = "hostPathVolumes", level = "baseline", min = 0, fn = hostPathVolumes,
        title = "Pods use no hostPath volumes" },
    { id = "hostPorts", level = "baseline", min = 0, fn = hostPorts,
        title = "Containers use no host ports" },
    { id = "hostProbesAndHostLifecycle", level = "baseline", min = 34, fn = hostProbesAndHostLifecycle,
        title = "Probes and lifecycle handlers set no host" },
    { id = "privileged", level = "baseline", min = 0, fn = privileged,
        title = "Containers are not privileged" },
    { id = "procMount", level = "baseline", min = 0, fn = procMount,
        title = "Containers use the default /proc mount" },
    { id = "procMount_restricted", level = "restricted", min = 35, fn = procMount_restricted,
        overrides = "procMount", title = "Containers use the default /proc mount (restricted)" },
    { id = "restrictedVolumes", level = "restricted", min = 0, fn = restrictedVolumes,
        overrides = "hostPathVolumes", title = "Pods use only restricted volume types" },
    { id = "runAsNonRoot", level = "restricted", min = 0, fn = runAsNonRoot,
        title = "Containers run as non-root" },
    { id = "runAsUser", level = "restricted", min = 23, fn = runAsUser,
        title = "Containers do not run as user 0" },
    { id = "seLinuxOptions", level = "baseline", min = 0, fn = seLinuxOptions,
        title = "SELinux options are restricted" },
    { id = "seccompProfile_baseline", level = "baseline", min = 0, fn = seccompProfile_baseline,
        title = "Seccomp profile is not Unconfined" },
    { id = "seccompProfile_restricted", level = "restricted", min = 19, fn = seccompProfile_restricted,
        overrides = "seccompProfile_baseline", title = "Seccomp profile is RuntimeDefault or Localhost" },
    { id = "sysctls", level = "baseline", min = 0, fn = sysctls,
        title = "Pods set only safe sysctls" },
    { id = "windowsHostProcess", level = "baseline", min = 0, fn = windowsHostProcess,
        title = "Windows pods are not HostProcess" },
}

-- Ordered check list of a level at a minor version: baseline checks (minus the
-- ones a restricted check overrides at that version), then restricted checks.
local level_cache = {}
local function level_checks(level, v)
    local key = level .. v
    local out = level_cache[key]
    if out then
        return out
    end
    out = {}
    local overridden = {}
    if level == "restricted" then
        for _, c in ipairs(CHECK_LIST) do
            if c.level == "restricted" and c.overrides and v >= c.min then
                overridden[c.overrides] = true
            end
        end
    end
    for _, pass in ipairs({ "baseline", "restricted" }) do
        if pass == "baseline" or level == "restricted" then
            for _, c in ipairs(CHECK_LIST) do
                if c.level == pass and v >= c.min and not overridden[c.id] then
                    out[#out + 1] = c
                end
            end
        end
    end
    level_cache[key] = out
    return out
end

-- "latest" (or unset) -> LATEST; "v1.NN" / "1.NN" -> NN, capped at LATEST.
local function parse_version(s)
    if s == nil or s == "" or s == "latest" then
        return LATEST, "latest"
    end
    local minor = type(s) == "string" and paved.regex_match("^v?1\\.(\\d+)$", s)
    if not minor then
        error(sformat("psa: invalid version %q; use \"latest\" or \"v1.<minor>\"", tostring(s)), 0)
    end
    local n = tonumber(minor)
    if n > LATEST then
        n = LATEST
    end
    return n, s
end

-- Builds check id -> { pod = bool, imgs = patterns|nil } from params.exclude.
local function compile_exclude(exclude)
    if type(exclude) ~= "table" or exclude[1] == nil then
        return nil
    end
    local out = {}
    for _, e in ipairs(exclude) do
        if type(e) == "table" then
            local imgs = e.images
            local has_imgs = type(imgs) == "table" and imgs[1] ~= nil
            local ids = e.checks
            if type(ids) == "string" then
                ids = { ids } -- tolerate a single id given as a string
            end
            for _, id in ipairs(list(ids)) do
                if type(id) == "string" then
                    local x = out[id]
                    if not x then
                        x = { pod = false }
                        out[id] = x
                    end
                    if has_imgs then
                        x.imgs = x.imgs or {}
                        for _, p in ipairs(imgs) do
                            x.imgs[#x.imgs + 1] = p
                        end
                    else
                        x.pod = true
                    end
                end
            end
        end
    end
    return out
end

local function build_ctx(req, v)
    local spec, meta = paved.pod_spec(req.object)
    if not spec then
        return nil
    end
    local ctrs = {}
    for _, f in ipairs(CTR_FIELDS) do
        for _, c in ipairs(list(spec[f])) do
            if type(c) == "table" then
                ctrs[#ctrs + 1] = c
            end
        end
    end
    return {
        spec = spec, meta = meta or EMPTY, psc = tbl(spec.securityContext), ctrs = ctrs, v = v,
        windows = get(spec, "os", "name") == "windows",
        userns = spec.hostUsers == false,
    }
end

-- PSA lets a Pod UPDATE through without evaluation when nothing it cares about
-- changed: same number of containers and init containers, the same image at
-- each index, and no ephemeral container added or given a new image. Every
-- other update (and every controller update) is evaluated in full.
local function same_images(a, b)
    a, b = list(a), list(b)
    if #a ~= #b then
        return false
    end
    for i = 1, #a do
        if get(a[i], "image") ~= get(b[i], "image") then
            return false
        end
    end
    return true
end

local function insignificant_pod_update(req)
    local obj, old = req.object, req.old_object
    if req.operation ~= "UPDATE" or type(old) ~= "table" or type(obj) ~= "table"
        or obj.kind ~= "Pod" or old.kind ~= "Pod" then
        return false
    end
    local spec, ospec = tbl(obj.spec), tbl(old.spec)
    if not same_images(spec.containers, ospec.containers)
        or not same_images(spec.initContainers, ospec.initContainers) then
        return false
    end
    for _, c in ipairs(list(spec.ephemeralContainers)) do
        local found = false
        for _, oc in ipairs(list(ospec.ephemeralContainers)) do
            if get(oc, "name") == get(c, "name") then
                if get(oc, "image") ~= get(c, "image") then
                    return false
                end
                found = true
                break
            end
        end
        if not found then
            return false
        end
    end
    return true
end

local function run(req, params, violation, level, checks, v, vlabel)
    -- PSA admits only CREATE and UPDATE
    if req.operation == "DELETE" or req.operation == "CONNECT" or insignificant_pod_update(req) then
        return
    end
    local ctx = build_ctx(req, v)
    if not ctx then
        return
    end
    local ex_map = compile_exclude(params.exclude)
    for _, c in ipairs(checks) do
        local ex = ex_map and ex_map[c.id] or NOEX
        local detail = c.fn(ctx, ex)
        if detail then
            violation("%s", sformat("PodSecurity %s:%s check %s failed: %s", level, vlabel, c.id, detail))
        end
    end
end

local POD_KINDS = { "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
    "ReplicationController", "Job", "CronJob", "PodTemplate" }

local policies = {}

for _, level in ipairs({ "baseline", "restricted" }) do
    policies[#policies + 1] = {
        id = "psa-" .. level,
        title = "Pods meet the Pod Security Standards " .. level .. " level",
        golden_path = true,
        enforcement = "deny",
        applies_to = { resources = POD_KINDS },
        params = { level = level, version = "latest", exclude = {} },
        check = function(req, params, violation)
            local lvl = params.level or level
            if lvl == "privileged" then
                return
            end
            if lvl ~= "baseline" and lvl ~= "restricted" then
                error(sformat("psa: invalid level %q; use \"baseline\" or \"restricted\"", tostring(lvl)), 0)
            end
            local v, vlabel = parse_version(params.version)
            run(req, params, violation, lvl, level_checks(lvl, v), v, vlabel)
        end,
    }
end

-- Per-check ids: every baseline check at both levels, and every restricted
-- check (including the baseline checks a restricted check overrides) at the
-- restricted level. Each runs only the named check.
for _, level in ipairs({ "baseline", "restricted" }) do
    for _, c in ipairs(CHECK_LIST) do
        if level == "restricted" or c.level == "baseline" then
            local checks = { c }
            policies[#policies + 1] = {
                id = "psa-" .. level .. "-" .. c.id,
                title = c.title .. " (Pod Security " .. level .. ")",
                golden_path = true,
                enforcement = "deny",
                applies_to = { resources = POD_KINDS },
                params = { level = level, version = "latest", check = c.id, exclude = {} },
                check = function(req, params, violation)
                    local v, vlabel = parse_version(params.version)
                    if v < c.min then
                        return -- the check does not exist at that version
                    end
                    run(req, params, violation, level, checks, v, vlabel)
                end,
            }
        end
    end
end

return policies
