/* server/base/quantity.c: Kubernetes resource quantities: the strict syntax check, the
 * value in base units, and rounding up to whole millicores or bytes. */
#include "quantity.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUANTITY_MAX_LEN 64
#define QUANTITY_MAX_EXP 400

struct suffix {
    const char *s;
    int exp10; /* the value is multiplied by 10^exp10 ... */
    int exp2;  /* ... and by 2^exp2 */
};

static const struct suffix suffixes[] = {
    {"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},   {"M", 6, 0},
    {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
    {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads the e/E exponent at 's' ("e3", "E-2", "e+10") into *out; false for anything else
 * or a magnitude beyond QUANTITY_MAX_EXP. */
static bool parse_exponent(const char *s, int *out)
{
    int sign = 1;
    int e = 0;

    if (*s != 'e' && *s != 'E')
        return false;
    s++;
    if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
    }
    if (!is_digit(*s))
        return false;
    for (; is_digit(*s); s++) {
        e = e * 10 + (*s - '0');
        if (e > QUANTITY_MAX_EXP)
            return false;
    }
    if (*s != '\0')
        return false;
    *out = sign * e;
    return true;
}

bool quantity_parse(const char *s, double *out)
{
    /* sign, digits, '.', "e-NNN", NUL */
    char num[QUANTITY_MAX_LEN + 16];
    const char *p = s;
    const char *suffix;
    size_t i;
    size_t n_digits = 0;
    size_t len;
    int exp10 = 0;
    int exp2 = 0;
    double v;
    char *end;
    int w;

    if (s == NULL || strlen(s) > QUANTITY_MAX_LEN)
        return false;
    if (*p == '+' || *p == '-')
        p++;
    for (; is_digit(*p); p++)
        n_digits++;
    if (*p == '.')
        for (p++; is_digit(*p); p++)
            n_digits++;
    if (n_digits == 0)
        return false;
    suffix = p;
    /* "1E" is exa; "1E3" is an exponent. */
    for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
        if (strcmp(suffix, suffixes[i].s) == 0)
            break;
    if (i < sizeof(suffixes) / sizeof(suffixes[0])) {
        exp10 = suffixes[i].exp10;
        exp2 = suffixes[i].exp2;
    } else if (!parse_exponent(suffix, &exp10)) {
        return false;
    }
    /* strtod on "<sign><digits>e<exp10>" rounds the decimal value once, correctly; the
     * binary multiplier is exact. */
    len = (size_t)(suffix - s);
    w = snprintf(num, sizeof(num), "%.*se%d", (int)len, s, exp10);
    if (w < 0 || (size_t)w >= sizeof(num))
        return false;
    v = strtod(num, &end);
    if (*end != '\0')
        return false;
    v = ldexp(v, exp2);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

bool quantity_json(const cJSON *v, double *out)
{
    if (cJSON_IsString(v))
        return quantity_parse(v->valuestring, out);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return false;
    *out = v->valuedouble;
    return true;
}

bool quantity_ceil(double v, double scale, int64_t *out)
{
    double x;
    double whole;

    if (!(v >= 0) || !(scale > 0))
        return false;
    x = v * scale;
    /* 2^63: the first double past INT64_MAX. */
    if (!(x < 9223372036854775808.0))
        return false;
    whole = round(x);
    /* The value was rounded once by strtod and once by the product: within four units
     * in the last place of a whole number, that number is what was written. */
    if (fabs(x - whole) > x * 4 * DBL_EPSILON)
        whole = ceil(x);
    if (!(whole < 9223372036854775808.0))
        return false;
    *out = (int64_t)whole;
    return true;
}
