-- Loops forever while the bundle loads, before any check runs.
local n = 0
while true do n = n + 1 end
