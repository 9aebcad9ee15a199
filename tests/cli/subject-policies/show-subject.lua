-- Reports the subject paved derived for the object, so tests can see it.
return { id = "show-subject", check = function(req, params, violation)
    violation("team=%s service=%s", tostring(req.subject.team), tostring(req.subject.service))
end }
