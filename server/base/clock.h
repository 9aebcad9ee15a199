/* server/base/clock.h: the wall clock that decisions, exceptions, break-glass and the
 * notification outbox read. One function, so tests can move time without touching
 * production code paths: only the test binary (build/<variant>/paved-test, compiled
 * with -DPV_TEST_CLOCK) honours an override. */
#ifndef PV_CLOCK_H
#define PV_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Unix epoch milliseconds (CLOCK_REALTIME). In a build with PV_TEST_CLOCK, plus the
 * signed number of seconds written in the file that the PAVED_TEST_CLOCK environment
 * variable names (re-read on every call, so a test can advance time while a server
 * runs; a missing or unreadable file adds nothing). Thread-safe. */
int64_t clock_wall_ms(void);

/* True in a PV_TEST_CLOCK build (paved-test), so it can say so at start-up. */
bool clock_is_test_build(void);

#endif
