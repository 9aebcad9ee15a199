-- A backtracking string pattern: a single C call (string.find) that runs for seconds
-- without executing a Lua instruction. The deadline must still stop it.
return { id = "slow-backtrack", golden_path = true, check = function(req, params, violation)
    local n = 25
    local s = string.rep("a", n)
    s:find(string.rep("a?", n) .. string.rep("a", n))
    violation("pattern done")
end }
