-- The string library is shared and read-only.
return { id = "bad-string-format", golden_path = true, check = function(req, params, violation)
    string.format = function() return "hijacked" end
end }
