-- check() returns a number instead of nothing, a message or a list of messages.
return { id = "bad-return-number", golden_path = true, check = function(req, params, violation)
    return 42
end }
