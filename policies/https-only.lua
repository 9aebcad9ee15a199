local paved = require "paved"

local type, tostring = type, tostring

local ALLOW_HTTP = "kubernetes.io/ingress.allow-http"

return {
    id = "https-only",
    title = "Ingresses serve HTTPS only",
    golden_path = true,
    enforcement = "deny",
    applies_to = { resources = { "Ingress" } },
    params = {},
    check = function(req, params, violation)
        local obj = req.object
        local av = obj.apiVersion
        -- Only the Ingress kinds of the extensions and networking.k8s.io groups.
        if obj.kind ~= "Ingress" or not (paved.has_prefix(av, "extensions/")
            or paved.has_prefix(av, "networking.k8s.io/")) then
            return
        end
        local name = tostring(paved.get(obj, "metadata", "name") or "?")
        local annotated = paved.get(obj, "metadata", "annotations", ALLOW_HTTP) == "false"
        if params.tlsOptional == true then
            if not annotated then
                violation("Ingress %q: annotation %s must be \"false\"; add it so the ingress "
                    .. "does not serve plain HTTP", name, ALLOW_HTTP)
            end
            return
        end
        local tls = paved.get(obj, "spec", "tls")
        local has_tls = type(tls) == "table" and tls[1] ~= nil
        -- Upstream reports the missing annotation and missing TLS as one violation.
        if not (annotated and has_tls) then
            local missing
            if not annotated and not has_tls then
                missing = "the annotation " .. ALLOW_HTTP .. ": \"false\" and a non-empty spec.tls"
            elseif not annotated then
                missing = "the annotation " .. ALLOW_HTTP .. ": \"false\""
            else
                missing = "a non-empty spec.tls"
            end
            violation("Ingress %q must be HTTPS only: add %s", name, missing)
        end
    end,
}
