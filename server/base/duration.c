/* server/base/duration.c: "30m" / "4h" / "7d" durations (see duration.h). */
#include "duration.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define DURATION_MAX_S (10LL * 366 * 86400)

bool duration_parse(const char *s, int64_t *out)
{
    char *end = NULL;
    long long n;
    long long unit;

    if (s == NULL || s[0] < '0' || s[0] > '9')
        return false;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || end == s || end[0] == '\0' || end[1] != '\0' || n <= 0)
        return false;
    switch (end[0]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return false;
    }
    if (n > DURATION_MAX_S / unit)
        return false;
    *out = (int64_t)(n * unit);
    return true;
}

void duration_format(int64_t seconds, char *buf, size_t cap)
{
    static const struct {
        int64_t s;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (seconds > 0 && seconds % units[i].s == 0) {
            snprintf(buf, cap, "%lld%c", (long long)(seconds / units[i].s), units[i].unit);
            return;
        }
    }
    snprintf(buf, cap, "%llds", (long long)seconds);
}
