/* server/base/duration.h: durations as people write them in flags, configs and API
 * bodies: "90s", "30m", "4h", "7d", "2w" (one whole number and one unit). */
#ifndef PV_DURATION_H
#define PV_DURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses 's' (borrowed) into seconds in *out. Returns false (leaving *out alone) for
 * anything else: no unit, another unit, a sign, zero, or more than ten years. */
bool duration_parse(const char *s, int64_t *out);

/* Writes 'seconds' the way duration_parse reads it, in the largest unit that divides
 * it exactly ("7d", "90m", "45s") into 'buf' ('cap' bytes). */
void duration_format(int64_t seconds, char *buf, size_t cap);

#endif
