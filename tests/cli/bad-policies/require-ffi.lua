-- require loads only the bundled modules.
return { id = "bad-require-ffi", golden_path = true, check = function(req, params, violation)
    local ffi = require "ffi"
    violation("got ffi %s", tostring(ffi))
end }
