-- psp-host-probes-lifecycle: liveness/readiness/startup probes and
-- postStart/preStop hooks must not set httpGet.host or tcpSocket.host (a host
-- other than the pod lets the kubelet reach arbitrary addresses). An empty
-- host is fine. UPDATE is skipped.
--
-- Counting follows upstream, which keeps a set of messages built from the
-- container name, the handler class (probe or lifecycle hook) and the host:
-- two probes of one container naming the same host are one violation.
local paved = require "paved"

local LABEL = paved.CONTAINER_LABEL -- how messages name a container of each list

local PROBES = { "livenessProbe", "readinessProbe", "startupProbe" }
local HOOKS = { "postStart", "preStop" }
local HANDLERS = { "httpGet", "tcpSocket" }

-- Appends offending fields of the handlers in 'holder[names[i]]' to acc,
-- grouped by host; returns acc (created on first hit).
local function scan(acc, holder, names, prefix)
    if type(holder) ~= "table" then
        return acc
    end
    for _, n in ipairs(names) do
        local h = holder[n]
        if type(h) == "table" then
            for _, kind in ipairs(HANDLERS) do
                local host = paved.get(h, kind, "host")
                if host ~= nil and host ~= "" then
                    acc = acc or { order = {}, fields = {} }
                    local key = tostring(host)
                    local f = acc.fields[key]
                    if not f then
                        f = {}
                        acc.fields[key] = f
                        acc.order[#acc.order + 1] = key
                    end
                    f[#f + 1] = prefix .. n .. "." .. kind .. ".host"
                end
            end
        end
    end
    return acc
end

local function report(violation, acc, label, name, what)
    if not acc then
        return
    end
    for _, host in ipairs(acc.order) do
        violation("%s %q: %s set host %q (%s); remove the host field so the %s targets the pod itself",
            label, name, what, host, table.concat(acc.fields[host], ", "),
            what == "probes" and "probe" or "hook")
    end
end

return {
    id          = "psp-host-probes-lifecycle",
    title       = "Probes and lifecycle hooks do not target other hosts",
    golden_path = true,
    enforcement = "deny",
    applies_to  = { resources = paved.POD_KINDS },
    params      = {},
    check = function(req, params, violation)
        if paved.is_update(req) then
            return
        end
        for c, field in paved.each_container(req, params) do
            local probes = scan(nil, c, PROBES, "")
            local hooks = scan(nil, c.lifecycle, HOOKS, "lifecycle.")
            local label, name = LABEL[field], tostring(c.name)
            report(violation, probes, label, name, "probes")
            report(violation, hooks, label, name, "lifecycle hooks")
        end
    end,
}
