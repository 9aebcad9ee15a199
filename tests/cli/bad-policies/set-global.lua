-- Globals are read-only.
return { id = "bad-set-global", golden_path = true, check = function(req, params, violation)
    leaked_state = true
end }
