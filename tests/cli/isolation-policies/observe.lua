-- Reports the kind it sees: must be the manifest's, whatever ran before it.
return { id = "iso-observe", golden_path = true, check = function(req, params, violation)
    violation("observe saw kind=%s", tostring(req.object.kind))
end }
