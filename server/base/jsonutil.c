/* server/base/jsonutil.c: small read helpers over cJSON trees. */
#include "jsonutil.h"

const char *json_str(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

    if (b != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, b);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool json_int64(const cJSON *v, int64_t *out)
{
    const double limit = 9007199254740992.0; /* 2^53 */
    double d;

    if (!cJSON_IsNumber(v))
        return false;
    d = v->valuedouble;
    /* NaN fails both comparisons. */
    if (!(d >= -limit && d <= limit) || d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

int64_t json_int64_or(const cJSON *v, int64_t fallback)
{
    int64_t n = fallback;

    return json_int64(v, &n) ? n : fallback;
}
