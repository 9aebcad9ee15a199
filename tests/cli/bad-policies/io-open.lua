-- The sandbox has no io library.
return { id = "bad-io-open", golden_path = true, check = function(req, params, violation)
    local f = io.open("/etc/passwd", "r")
    violation("read %s", f and f:read("l") or "nothing")
end }
