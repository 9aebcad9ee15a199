-- error() with a message.
return { id = "bad-raise", golden_path = true, check = function(req, params, violation)
    error("deliberate failure")
end }
