/* server/base/status.c: status code descriptions and error records. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *pv_strerror(pv_status rc)
{
    switch (rc) {
    case PV_OK:
        return "ok";
    case PV_EINVAL:
        return "invalid input";
    case PV_EPARSE:
        return "parse error";
    case PV_ETOOBIG:
        return "input too large";
    case PV_EDEPTH:
        return "nesting too deep";
    case PV_EIO:
        return "i/o error";
    case PV_ENOENT:
        return "not found";
    case PV_EPOLICY:
        return "policy error";
    case PV_ETIMEOUT:
        return "deadline exceeded";
    case PV_ENOMEM:
        return "memory limit reached";
    case PV_EFULL:
        return "queue full";
    case PV_ECONFIG:
        return "configuration error";
    }
    return "unknown status";
}

pv_status pv_err_set(struct pv_err *err, pv_status code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void pv_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "paved: assertion failed at %s:%d: %s\n", file, line, expr);
    abort();
}
