/* server/base/clock.c: the wall clock (see clock.h); the test-clock override exists
 * only when compiled with -DPV_TEST_CLOCK. */
#include "clock.h"

#include <time.h>

#ifdef PV_TEST_CLOCK
#include <stdio.h>
#include <stdlib.h>

/* The offset in seconds from the file named by PAVED_TEST_CLOCK, or 0. */
static int64_t test_offset_ms(void)
{
    const char *path = getenv("PAVED_TEST_CLOCK");
    char buf[64];
    char *end = NULL;
    size_t n;
    long long s;
    FILE *f;

    if (path == NULL)
        return 0;
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    s = strtoll(buf, &end, 10);
    if (end == buf)
        return 0;
    return (int64_t)s * 1000;
}
#endif

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    int64_t ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#ifdef PV_TEST_CLOCK
    ms += test_offset_ms();
#endif
    return ms;
}

bool clock_is_test_build(void)
{
#ifdef PV_TEST_CLOCK
    return true;
#else
    return false;
#endif
}
