-- string.dump is removed.
return { id = "bad-string-dump", golden_path = true, check = function(req, params, violation)
    local s = string.dump(function() end)
    violation("dumped %d bytes", #s)
end }
