/* server/base/jsonutil.h: small read helpers over cJSON trees used across modules. */
#ifndef PV_JSONUTIL_H
#define PV_JSONUTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* The string at o[a] (or o[a][b] when 'b' is not NULL), or NULL when a step is
 * missing or the value is not a string. Borrows from 'o'. */
const char *json_str(const cJSON *o, const char *a, const char *b);

/* Writes the number 'v' to *out and returns true when it is a JSON number that is
 * integral and within +-2^53 (what a double holds exactly); false otherwise, without
 * touching *out. Converting a larger or non-finite double to int64_t is undefined. */
bool json_int64(const cJSON *v, int64_t *out);

/* json_int64 of 'v', or 'fallback' when it is not a representable integer. */
int64_t json_int64_or(const cJSON *v, int64_t fallback);

#endif
