-- Returns a string where a policy table belongs.
return "not a policy"
