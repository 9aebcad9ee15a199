-- The sandbox has no os.execute.
return { id = "bad-os-execute", golden_path = true, check = function(req, params, violation)
    os.execute("echo pwned")
end }
