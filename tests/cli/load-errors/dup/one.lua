-- First definition of the id "same".
return { id = "same", check = function() end }
