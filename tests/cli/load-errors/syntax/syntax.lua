return {
    id = "syntax",
    check = function(req)
        if then
    end,
}
