-- An endless loop: the instruction budget (or the deadline) must stop it.
return { id = "bad-loop", golden_path = true, check = function(req, params, violation)
    while true do end
end }
