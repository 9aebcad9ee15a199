/* server/base/jsonutil.h: small read helpers over cJSON trees used across modules. */
#ifndef PV_JSONUTIL_H
#define PV_JSONUTIL_H

#include <cjson/cJSON.h>

/* The string at o[a] (or o[a][b] when 'b' is not NULL), or NULL when a step is
 * missing or the value is not a string. Borrows from 'o'. */
const char *json_str(const cJSON *o, const char *a, const char *b);

#endif
