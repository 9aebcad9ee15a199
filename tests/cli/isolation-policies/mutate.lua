-- Scribbles on its request and params: neither may leak into another binding's
-- evaluation or into the next object's (the fix may make them read-only instead).
return { id = "iso-mutate", golden_path = true, check = function(req, params, violation)
    req.object.kind = "Hacked"
    params.n = (params.n or 0) + 1
    violation("mutate saw n=%d", params.n)
end }
