-- Binary chunks must be refused by load.
return { id = "bad-load-binary", golden_path = true, check = function(req, params, violation)
    local f = assert(load("\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86"))
    f()
end }
