-- Unbounded allocation: the memory cap must stop it.
return { id = "bad-alloc", golden_path = true, check = function(req, params, violation)
    local t, s = {}, string.rep("x", 1024 * 1024)
    local i = 0
    while true do i = i + 1; t[i] = s .. i end
end }
