-- policies/credential.lua: who may have which short-lived credential. POST
-- /v1/credentials turns a verified identity into a request object
--
--   { apiVersion = "paved.dev/v1", kind = "CredentialRequest",
--     spec = { audience = "vault", scopes = { "db:payments:read" }, ttl_s = 900 },
--     identity = { via = "oidc" | "token", issuer = ..., subject = ..., claims = {...} } }
--
-- with req.subject.team and req.subject.service taken from the identity. check()
-- denies a request no grant covers; mutate() narrows an allowed one to what the
-- grants give: the scopes they list (globs) and a lifetime no longer than their
-- max_ttl_s. paved then caps the lifetime at credentials.max_ttl of the config.
--
-- params.grants: list of { teams = {globs}, services = {globs} (optional),
--   audiences = {globs}, scopes = {globs}, max_ttl_s = seconds (optional) }.
-- The default grants nothing: every credential is denied until the config says who
-- gets what.
local paved = require "paved"

local function any_glob(patterns, s)
    for _, p in ipairs(paved.list(patterns)) do
        if type(p) == "string" and type(s) == "string" and paved.glob(p, s) then
            return true
        end
    end
    return false
end

-- The grants that cover the request's team, service and audience.
local function grants_for(req, params)
    local team = paved.get(req, "subject", "team")
    local service = paved.get(req, "subject", "service")
    local audience = paved.get(req.object, "spec", "audience")
    local out = {}
    for _, g in ipairs(paved.list(params.grants)) do
        if type(g) == "table" and any_glob(g.teams, team) and any_glob(g.audiences, audience)
            and (g.services == nil or any_glob(g.services, service)) then
            out[#out + 1] = g
        end
    end
    return out
end

-- The requested scopes some grant gives, in the order asked, and the longest
-- lifetime those grants allow (nil: no limit of theirs).
local function granted(req, params)
    local grants = grants_for(req, params)
    local scopes, max_ttl = {}, nil
    for _, s in ipairs(paved.list(paved.get(req.object, "spec", "scopes"))) do
        for _, g in ipairs(grants) do
            if any_glob(g.scopes, s) then
                scopes[#scopes + 1] = s
                local t = math.type(g.max_ttl_s) and g.max_ttl_s or nil
                if t == nil then
                    max_ttl = nil
                elseif max_ttl == nil or t > max_ttl then
                    max_ttl = t
                end
                break
            end
        end
    end
    return grants, scopes, max_ttl
end

return {
    id = "credential",
    title = "Short-lived credentials are issued only for what a grant gives",
    golden_path = false,
    enforcement = "deny",
    applies_to = { resources = { "CredentialRequest" } },
    exceptions = { allowed = false },
    params = { grants = {} },
    check = function(req, params, violation)
        local team = paved.get(req, "subject", "team") or "unknown"
        local audience = paved.get(req.object, "spec", "audience") or "?"
        local grants, scopes = granted(req, params)
        if #grants == 0 then
            violation("no grant gives team %s a credential for audience %s; ask the platform "
                .. "team to add one to the credential binding's grants", team, audience)
        elseif #scopes == 0 then
            violation("none of the requested scopes is granted to team %s for audience %s",
                team, audience)
        end
    end,
    mutate = function(req, params)
        local _, scopes, max_ttl = granted(req, params)
        local asked = paved.list(paved.get(req.object, "spec", "scopes"))
        local ttl = paved.get(req.object, "spec", "ttl_s")
        local ops = {}
        if #scopes > 0 and #scopes ~= #asked then
            ops[#ops + 1] = { op = "replace", path = "/spec/scopes", value = scopes }
        end
        if max_ttl ~= nil and math.type(ttl) and ttl > max_ttl then
            ops[#ops + 1] = { op = "replace", path = "/spec/ttl_s", value = max_ttl }
        end
        return ops
    end,
}
