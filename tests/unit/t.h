/* tests/unit/t.h: a tiny TAP harness for unit tests. Each check prints "ok N" or
 * "not ok N" with the expression and, on failure, both values; t_done() prints the plan
 * "1..N" and returns the exit code. Checks return 1 when they pass. */
#ifndef PV_T_H
#define PV_T_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int t_count;
static int t_failures;

static inline int t_report(int is_ok, const char *file, int line, const char *what)
{
    t_count++;
    if (!is_ok)
        t_failures++;
    printf("%sok %d - %s:%d: %s\n", is_ok ? "" : "not ", t_count, file, line, what);
    return is_ok;
}

/* Prints a TAP diagnostic line, e.g. which table row a failed check came from. */
static inline void t_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void t_diag(const char *fmt, ...)
{
    va_list ap;

    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputs("\n", stdout);
}

static inline int t_eq_int(long long a, long long b, const char *file, int line, const char *what)
{
    if (!t_report(a == b, file, line, what)) {
        t_diag("  got:      %lld", a);
        t_diag("  expected: %lld", b);
    }
    return a == b;
}

static inline int t_eq_str(const char *a, const char *b, const char *file, int line,
                           const char *what)
{
    int is_ok = (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;

    if (!t_report(is_ok, file, line, what)) {
        t_diag("  got:      %s%s%s", a ? "\"" : "", a ? a : "NULL", a ? "\"" : "");
        t_diag("  expected: %s%s%s", b ? "\"" : "", b ? b : "NULL", b ? "\"" : "");
    }
    return is_ok;
}

static inline void t_hex(const char *label, const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t i;

    printf("#   %s", label);
    for (i = 0; i < len && i < 48; i++)
        printf(" %02x", s[i]);
    printf("%s\n", len > 48 ? " ..." : "");
}

static inline int t_eq_mem(const void *a, const void *b, size_t len, const char *file, int line,
                           const char *what)
{
    int is_ok = memcmp(a, b, len) == 0;

    if (!t_report(is_ok, file, line, what)) {
        t_hex("got:     ", a, len);
        t_hex("expected:", b, len);
    }
    return is_ok;
}

/* Prints the plan; returns the process exit code (0 when every check passed). */
static inline int t_done(void)
{
    printf("1..%d\n", t_count);
    if (t_failures)
        printf("# %d of %d checks failed\n", t_failures, t_count);
    return t_failures ? 1 : 0;
}

#define T_OK(expr) t_report((expr) ? 1 : 0, __FILE__, __LINE__, #expr)
#define T_EQ_INT(a, b) t_eq_int((long long)(a), (long long)(b), __FILE__, __LINE__, #a " == " #b)
#define T_EQ_STR(a, b) t_eq_str((a), (b), __FILE__, __LINE__, #a " == " #b)
#define T_EQ_MEM(a, b, len) t_eq_mem((a), (b), (len), __FILE__, __LINE__, #a " == " #b)

#endif
