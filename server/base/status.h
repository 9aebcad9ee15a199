/* server/base/status.h: paved's status codes and the human-readable error record
 * passed as the last parameter wherever a person will read the failure. */
#ifndef PV_STATUS_H
#define PV_STATUS_H

#include <stddef.h>

typedef enum {
    PV_OK = 0,
    PV_EINVAL,   /* bad argument or malformed input */
    PV_EPARSE,   /* JSON/YAML syntax error */
    PV_ETOOBIG,  /* input exceeds a configured ceiling */
    PV_EDEPTH,   /* nesting deeper than allowed */
    PV_EIO,      /* read/write failure */
    PV_ENOENT,   /* file or object not found */
    PV_EPOLICY,  /* policy failed to load or evaluate */
    PV_ETIMEOUT, /* deadline passed */
    PV_ENOMEM,   /* memory cap reached */
    PV_EFULL,    /* queue full */
    PV_ECONFIG,  /* bad configuration */
} pv_status;

#define PV_ERR_MSG_MAX 256

/* Error detail: a code plus a message a person can act on. */
struct pv_err {
    pv_status code;
    char msg[PV_ERR_MSG_MAX];
};

/* Returns a static description of 'rc'. */
const char *pv_strerror(pv_status rc);

/* Records 'code' and the formatted message in 'err' (which may be NULL) and
 * returns 'code', so callers write `return pv_err_set(err, PV_EINVAL, ...)`. */
pv_status pv_err_set(struct pv_err *err, pv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logs file:line and the failed expression, then aborts. Always compiled in:
 * for invariants whose violation would corrupt memory, never for input. */
#define PV_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x))                                                                                  \
            pv_assert_fail(__FILE__, __LINE__, #x);                                                \
    } while (0)

_Noreturn void pv_assert_fail(const char *file, int line, const char *expr);

#endif
