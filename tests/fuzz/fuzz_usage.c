/* tests/fuzz/fuzz_usage.c: libFuzzer target for what an admitted object or a provision
 * request holds (server/usage.h) and Kubernetes quantities (server/base/quantity.h).
 * Each input is parsed with cJSON and given to usage_of_object() and
 * usage_of_provision(); the input as a string, and every string in the parsed document,
 * go to quantity_parse(). What a call computes then goes through usage_json(),
 * usage_monthly_cost() and usage_exceeds() against a fixed price table and quota.
 * Checks beyond the sanitizers, from the header's contracts: every field of a usage is
 * >= 0; an uncharged object holds nothing; a provision holds exactly 1 environment;
 * the canonical strings of usage_json() parse back to the same numbers (for numbers a
 * double holds exactly, up to 2^53); a quota message fits its buffer and is terminated;
 * a parsed quantity is finite. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "quantity.h"
#include "status.h"
#include "usage.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define EXACT_MAX ((int64_t)1 << 53)
#define MAX_STRINGS 64

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_usage: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    abort();
}

static const char *what_of(int r)
{
    static const char *const names[] = {"cpu", "memory", "storage", "environments", "cost"};

    return names[r];
}

static void check_quantity(const char *s)
{
    double v = 12345.0;
    int64_t whole = -7;

    if (!quantity_parse(s, &v)) {
        if (v != 12345.0)
            die("quantity_parse failed but changed *out", s);
        return;
    }
    if (!isfinite(v))
        die("quantity_parse gave a value that is not finite", s);
    if (quantity_ceil(v, 1000, &whole) && (whole < 0 || (double)whole < v * 1000 * (1 - 1e-12)))
        die("quantity_ceil rounded down or below zero", s);
    if (quantity_ceil(v, 1, &whole) && whole < 0)
        die("quantity_ceil gave a negative number", s);
}

/* Every string value (and key) of 'v', at most MAX_STRINGS of them. */
static void strings_of(const cJSON *v, int *budget)
{
    const cJSON *c;

    if (v == NULL || *budget <= 0)
        return;
    if (v->string != NULL && (*budget)-- > 0)
        check_quantity(v->string);
    if (cJSON_IsString(v) && (*budget)-- > 0)
        check_quantity(v->valuestring);
    cJSON_ArrayForEach(c, v)
    {
        strings_of(c, budget);
    }
}

/* The number a canonical quantity string of usage_json() stands for, in base units. */
static void check_canonical(const cJSON *o, const char *key, double scale, int64_t want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    double d = 0;
    int64_t back = -1;

    if (!cJSON_IsString(v))
        die("usage_json: missing string", key);
    if (want > EXACT_MAX)
        return;
    if (!quantity_parse(v->valuestring, &d) || !quantity_ceil(d, scale, &back) || back != want)
        die("usage_json: the canonical string does not parse back", v->valuestring);
}

/* The two amounts of a quota message "team t would use A of L ...": they must read apart,
 * and A must not read smaller than L. 'parse' reads an amount. */
static void check_message(const char *msg, bool (*parse)(const char *, double *))
{
    char a[64];
    char l[64];
    double av = 0;
    double lv = 0;

    if (sscanf(msg, "team t would use %63s of %63s", a, l) != 2)
        die("usage_exceeds: unexpected message", msg);
    if (strcmp(a, l) == 0)
        die("usage_exceeds: the amount and the limit read the same", msg);
    if (!parse(a, &av) || !parse(l, &lv))
        die("usage_exceeds: an amount of the message does not parse", msg);
    if (av < lv)
        die("usage_exceeds: the amount reads smaller than the limit", msg);
}

static bool parse_number(const char *s, double *out)
{
    char *end = NULL;

    *out = strtod(s, &end);
    return end != s && *end == '\0';
}

/* One resource at a time limited to just below what 'u' holds: the message must name it
 * with numbers that read apart (usage.h: "more digits when the compact forms of the two
 * would read equal"). */
static void check_close_limits(const struct usage *u, double cost, const struct cfg_prices *p)
{
    const struct usage zero = {0};
    const int64_t held[] = {u->cpu_millis, u->memory_bytes, u->storage_bytes, u->environments};
    char msg[256];

    for (int r = 0; r < 5; r++) {
        struct cfg_quota q = {"t", -1, -1, -1, -1, -1};
        bool (*parse)(const char *, double *) = parse_number;

        if (r < 4 && held[r] <= 0)
            continue;
        if (r == 4 && !(cost > 0))
            continue;
        switch (r) {
        case 0:
            q.cpu_millis = held[r] - 1;
            break;
        case 1:
            q.memory_bytes = held[r] - 1;
            parse = quantity_parse;
            break;
        case 2:
            q.storage_bytes = held[r] - 1;
            parse = quantity_parse;
            break;
        case 3:
            q.environments = held[r] - 1;
            break;
        default:
            q.monthly_cost = nextafter(cost, 0);
            break;
        }
        if (!usage_exceeds(&q, "t", &zero, u, cost, p, msg, sizeof(msg)))
            die("usage_exceeds: a resource over its limit is not refused", what_of(r));
        check_message(msg, parse);
    }
}

static void check_usage(const struct usage *u, const char *what)
{
    static const struct cfg_prices prices = {"EUR", 0.031, 0.0042, 0.10, 50, 730};
    static const struct cfg_quota tiny = {"payments", 1, 1, 1, 0, 0.01};
    static const struct cfg_quota none = {"*", -1, -1, -1, -1, -1};
    struct usage zero = {0};
    char msg[256];
    char small[9];
    cJSON *j;
    double cost;

    if (u->cpu_millis < 0 || u->memory_bytes < 0 || u->storage_bytes < 0 || u->environments < 0)
        die("a usage field is negative", what);
    j = usage_json(u);
    check_canonical(j, "cpu", 1000, u->cpu_millis);
    check_canonical(j, "memory", 1, u->memory_bytes);
    check_canonical(j, "storage", 1, u->storage_bytes);
    cJSON_Delete(j);
    cost = usage_monthly_cost(u, &prices);
    if (!(cost >= 0))
        die("usage_monthly_cost is negative or NaN", what);
    memset(msg, 'x', sizeof(msg));
    if (usage_exceeds(&tiny, "payments", &zero, u, cost, &prices, msg, sizeof(msg)) &&
        strnlen(msg, sizeof(msg)) == sizeof(msg))
        die("usage_exceeds: unterminated message", what);
    memset(small, 'x', sizeof(small));
    if (usage_exceeds(&tiny, NULL, &zero, u, cost, &prices, small, sizeof(small)) &&
        strnlen(small, sizeof(small)) == sizeof(small))
        die("usage_exceeds: unterminated short message", what);
    /* Nothing grows from 'u' to 'u', and "*" with no limits refuses nothing. */
    if (usage_exceeds(&tiny, "payments", u, u, cost, &prices, msg, sizeof(msg)))
        die("usage_exceeds refuses a change that grows nothing", msg);
    if (usage_exceeds(&none, "payments", &zero, u, cost, &prices, msg, sizeof(msg)))
        die("usage_exceeds refuses with no limits", msg);
    check_close_limits(u, cost, &prices);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size + 1);
    cJSON *doc;
    struct usage u;
    bool is_charged;
    struct pv_err err = {PV_OK, ""};
    int budget = MAX_STRINGS;

    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';
    check_quantity(text);
    doc = cJSON_ParseWithLength(text, size);
    free(text);
    if (doc == NULL)
        return 0;
    strings_of(doc, &budget);

    memset(&u, 0x5a, sizeof(u));
    is_charged = true;
    if (usage_of_object(doc, &u, &is_charged, &err) == PV_OK) {
        if (!is_charged && (u.cpu_millis != 0 || u.memory_bytes != 0 || u.storage_bytes != 0 ||
                            u.environments != 0))
            die("usage_of_object: an uncharged object holds something", NULL);
        if (u.environments != 0)
            die("usage_of_object: an object holds an environment", NULL);
        check_usage(&u, "usage_of_object");
    } else if (err.msg[0] == '\0') {
        die("usage_of_object failed without a message", NULL);
    }
    /* err may be NULL. */
    (void)usage_of_object(doc, &u, &is_charged, NULL);

    err.msg[0] = '\0';
    if (usage_of_provision(doc, &u, &err) == PV_OK) {
        if (u.environments != 1)
            die("usage_of_provision: not exactly one environment", NULL);
        check_usage(&u, "usage_of_provision");
    } else if (err.msg[0] == '\0') {
        die("usage_of_provision failed without a message", NULL);
    }
    cJSON_Delete(doc);
    return 0;
}
