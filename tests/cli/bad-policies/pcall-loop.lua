-- An endless loop inside pcall, itself retried by pcall forever: catching the
-- budget error must not let the policy keep running.
return { id = "bad-pcall-loop", golden_path = true, check = function(req, params, violation)
    while true do pcall(function() while true do end end) end
end }
