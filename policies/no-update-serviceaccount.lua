local paved = require "paved"

local type, ipairs, tostring = type, ipairs, tostring

-- The kinds whose pod template carries serviceAccountName.
local KINDS = {
    Pod = true, ReplicationController = true, ReplicaSet = true, Deployment = true,
    StatefulSet = true, DaemonSet = true, Job = true, CronJob = true,
}

-- The pod serviceAccountName of obj, or nil when obj is not one of KINDS or
-- has none.
local function service_account(obj)
    if type(obj) ~= "table" or not KINDS[obj.kind] then
        return nil
    end
    local spec = paved.pod_spec(obj)
    return spec and spec.serviceAccountName
end

local function privileged(user, params)
    user = type(user) == "table" and user or {}
    local username = user.username
    if username == nil then
        username = ""
    end
    if paved.contains(params.allowedUsers, username) then
        return true
    end
    local allowed = paved.set(params.allowedGroups)
    for _, g in ipairs(paved.list(user.groups)) do
        if allowed[g] then
            return true
        end
    end
    return false
end

return {
    id = "no-update-serviceaccount",
    title = "The service account of a workload cannot be changed",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = paved.POD_KINDS },
    params = {},
    check = function(req, params, violation)
        -- Only UPDATEs of pod-bearing kinds are checked; CREATE is always allowed.
        if req.operation ~= "UPDATE" or not KINDS[req.object.kind] then
            return
        end
        local new = service_account(req.object)
        local old = service_account(req.old_object)
        -- Defensive rules: both versions must name their service account.
        if new == nil then
            violation("%s: the object under review has no pod serviceAccountName; set it explicitly",
                paved.name(req.object))
        end
        if old == nil then
            violation("%s: the previous version (oldObject) has no pod serviceAccountName; "
                .. "set serviceAccountName explicitly", paved.name(req.object))
        end
        if new ~= nil and old ~= nil and new ~= old and not privileged(req.user_info, params) then
            violation("%s: user %q may not change serviceAccountName from %q to %q; keep %q or ask an "
                .. "allowed user or group to make the change", paved.name(req.object),
                tostring(paved.get(req.user_info, "username") or ""), tostring(old), tostring(new),
                tostring(old))
        end
    end,
}
