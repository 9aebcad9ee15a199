/* server/usage.c: the resources a Kubernetes object or a provision request holds, their
 * monthly cost and the quota message. The rules are in usage.h. */
#include "usage.h"

#include <inttypes.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quantity.h"

#define PATH_CAP 192
#define COUNT_MAX 2147483647 /* replicas and parallelism are int32 in Kubernetes */
#define GIB 1073741824.0

enum { R_CPU, R_MEMORY, R_N };

static const char *const resource_names[R_N] = {"cpu", "memory"};
static const double resource_scales[R_N] = {1000, 1}; /* millicores from cores, bytes */

/* ---- Reading fields ---- */

/* A field's path for a message into 'buf' ('cap' bytes); a path too long for it ends in
 * "...". */
static void path_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void path_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* 'path' + "." + 'key' (or 'key' alone at the root) into 'buf'. */
static void join(char *buf, size_t cap, const char *path, const char *key)
{
    path_fmt(buf, cap, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
}

static bool add_to(int64_t *acc, int64_t v)
{
    if (v > INT64_MAX - *acc)
        return false;
    *acc += v;
    return true;
}

static bool mul_by(int64_t *acc, int64_t n)
{
    if (n != 0 && *acc > INT64_MAX / n)
        return false;
    *acc *= n;
    return true;
}

static pv_status too_large(const char *path, struct pv_err *err)
{
    return pv_err_set(err, PV_EINVAL, "%s: the total is too large", path);
}

/* *out = the mapping at o[key], NULL when it is absent or null. 'path' names 'o'. */
static pv_status opt_object(const cJSON *o, const char *key, const char *path, const cJSON **out,
                            struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char where[PATH_CAP];

    if (v == NULL || cJSON_IsNull(v)) {
        *out = NULL;
        return PV_OK;
    }
    if (!cJSON_IsObject(v)) {
        join(where, sizeof(where), path, key);
        return pv_err_set(err, PV_EINVAL, "%s must be a mapping", where);
    }
    *out = v;
    return PV_OK;
}

/* As opt_object() for a list. */
static pv_status opt_array(const cJSON *o, const char *key, const char *path, const cJSON **out,
                           struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char where[PATH_CAP];

    if (v == NULL || cJSON_IsNull(v)) {
        *out = NULL;
        return PV_OK;
    }
    if (!cJSON_IsArray(v)) {
        join(where, sizeof(where), path, key);
        return pv_err_set(err, PV_EINVAL, "%s must be a list", where);
    }
    *out = v;
    return PV_OK;
}

/* Walks down the mappings 'keys' (NULL-terminated) from 'o', whose path is 'path', and
 * writes the path reached to 'out_path'. *out is NULL when a step is absent. */
static pv_status walk(const cJSON *o, const char *path, const char *const *keys, const cJSON **out,
                      char *out_path, struct pv_err *err)
{
    char here[PATH_CAP];

    path_fmt(here, sizeof(here), "%s", path);
    for (; *keys != NULL && o != NULL; keys++) {
        pv_status rc = opt_object(o, *keys, here, &o, err);
        char next[PATH_CAP];

        if (rc)
            return rc;
        join(next, sizeof(next), here, *keys);
        memcpy(here, next, sizeof(here));
    }
    for (; *keys != NULL; keys++) {
        char next[PATH_CAP];

        join(next, sizeof(next), here, *keys);
        memcpy(here, next, sizeof(here));
    }
    *out = o;
    memcpy(out_path, here, PATH_CAP);
    return PV_OK;
}

/* *out = the quantity 'v' (named 'path') x 'scale', rounded up. */
static pv_status read_amount(const cJSON *v, const char *path, double scale, int64_t *out,
                             struct pv_err *err)
{
    double d;

    if (!quantity_json(v, &d)) {
        if (cJSON_IsString(v))
            return pv_err_set(err, PV_EINVAL,
                              "%s: \"%.64s\" is not a quantity (e.g. \"500m\", "
                              "\"2\", \"1Gi\")",
                              path, v->valuestring);
        return pv_err_set(err, PV_EINVAL, "%s must be a quantity (e.g. \"500m\", \"2\", \"1Gi\")",
                          path);
    }
    if (!(d >= 0))
        return pv_err_set(err, PV_EINVAL, "%s: a negative amount is not a request", path);
    if (!quantity_ceil(d, scale, out))
        return pv_err_set(err, PV_EINVAL, "%s: the amount is too large", path);
    return PV_OK;
}

/* *out = o[key] as a replica count, 'dflt' when absent or null. */
static pv_status read_count(const cJSON *o, const char *key, const char *path, int64_t dflt,
                            int64_t *out, struct pv_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    char where[PATH_CAP];

    if (v == NULL || cJSON_IsNull(v)) {
        *out = dflt;
        return PV_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= COUNT_MAX) ||
        v->valuedouble != floor(v->valuedouble)) {
        join(where, sizeof(where), path, key);
        return pv_err_set(err, PV_EINVAL, "%s must be a whole number from 0 to %d", where,
                          COUNT_MAX);
    }
    *out = (int64_t)v->valuedouble;
    return PV_OK;
}

/* ---- Pods ---- */

/* The request of container 'c' (named 'path') for each resource into 'out': requests,
 * else limits. */
static pv_status container_requests(const cJSON *c, const char *path, int64_t out[R_N],
                                    struct pv_err *err)
{
    const cJSON *res;
    const cJSON *requests = NULL;
    const cJSON *limits = NULL;
    char rpath[PATH_CAP];
    pv_status rc;

    if (!cJSON_IsObject(c))
        return pv_err_set(err, PV_EINVAL, "%s must be a mapping", path);
    rc = opt_object(c, "resources", path, &res, err);
    if (rc)
        return rc;
    join(rpath, sizeof(rpath), path, "resources");
    if (res != NULL) {
        rc = opt_object(res, "requests", rpath, &requests, err);
        if (rc == PV_OK)
            rc = opt_object(res, "limits", rpath, &limits, err);
        if (rc)
            return rc;
    }
    for (int r = 0; r < R_N; r++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(requests, resource_names[r]);
        const char *from = "requests";
        char where[PATH_CAP];

        if (v == NULL || cJSON_IsNull(v)) {
            v = cJSON_GetObjectItemCaseSensitive(limits, resource_names[r]);
            from = "limits";
        }
        out[r] = 0;
        if (v == NULL || cJSON_IsNull(v))
            continue;
        path_fmt(where, sizeof(where), "%s.%s.%s", rpath, from, resource_names[r]);
        rc = read_amount(v, where, resource_scales[r], &out[r], err);
        if (rc)
            return rc;
    }
    return PV_OK;
}

/* The effective request of one pod whose spec is 'spec' (named 'path'; NULL holds
 * nothing), as the scheduler computes it (k8s.io/component-helpers resource.PodRequests):
 * containers and sidecars add up; each other init container needs its own request plus
 * the sidecars started before it; the pod needs the largest of these; overhead adds. */
static pv_status pod_requests(const cJSON *spec, const char *path, int64_t out[R_N],
                              struct pv_err *err)
{
    int64_t sum[R_N] = {0};
    int64_t sidecars[R_N] = {0};
    int64_t init_max[R_N] = {0};
    const cJSON *list;
    const cJSON *overhead;
    const cJSON *c;
    char where[PATH_CAP];
    size_t i = 0;
    pv_status rc;

    if (spec == NULL) {
        memset(out, 0, sizeof(int64_t) * R_N);
        return PV_OK;
    }
    rc = opt_array(spec, "containers", path, &list, err);
    if (rc)
        return rc;
    cJSON_ArrayForEach(c, list)
    {
        int64_t req[R_N];

        path_fmt(where, sizeof(where), "%s.containers[%zu]", path, i++);
        rc = container_requests(c, where, req, err);
        if (rc)
            return rc;
        for (int r = 0; r < R_N; r++)
            if (!add_to(&sum[r], req[r]))
                return too_large(where, err);
    }
    rc = opt_array(spec, "initContainers", path, &list, err);
    if (rc)
        return rc;
    i = 0;
    cJSON_ArrayForEach(c, list)
    {
        int64_t req[R_N];
        const char *policy;

        path_fmt(where, sizeof(where), "%s.initContainers[%zu]", path, i++);
        rc = container_requests(c, where, req, err);
        if (rc)
            return rc;
        policy = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "restartPolicy"));
        for (int r = 0; r < R_N; r++) {
            if (policy != NULL && strcmp(policy, "Always") == 0) {
                if (!add_to(&sum[r], req[r]) || !add_to(&sidecars[r], req[r]))
                    return too_large(where, err);
                req[r] = sidecars[r];
            } else if (!add_to(&req[r], sidecars[r])) {
                return too_large(where, err);
            }
            if (req[r] > init_max[r])
                init_max[r] = req[r];
        }
    }
    for (int r = 0; r < R_N; r++)
        if (init_max[r] > sum[r])
            sum[r] = init_max[r];
    rc = opt_object(spec, "overhead", path, &overhead, err);
    if (rc)
        return rc;
    for (int r = 0; r < R_N && overhead != NULL; r++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(overhead, resource_names[r]);
        int64_t extra = 0;

        if (v == NULL || cJSON_IsNull(v))
            continue;
        path_fmt(where, sizeof(where), "%s.overhead.%s", path, resource_names[r]);
        rc = read_amount(v, where, resource_scales[r], &extra, err);
        if (rc)
            return rc;
        if (!add_to(&sum[r], extra))
            return too_large(where, err);
    }
    memcpy(out, sum, sizeof(sum));
    return PV_OK;
}

/* The storage requested by the claim spec at o.spec (o named 'path'), into *out. */
static pv_status claim_storage(const cJSON *o, const char *path, int64_t *out, struct pv_err *err)
{
    static const char *const keys[] = {"spec", "resources", "requests", NULL};
    const cJSON *requests;
    const cJSON *v;
    char where[PATH_CAP];
    char leaf[PATH_CAP];
    pv_status rc;

    rc = walk(o, path, keys, &requests, where, err);
    if (rc)
        return rc;
    v = cJSON_GetObjectItemCaseSensitive(requests, "storage");
    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return PV_OK;
    join(leaf, sizeof(leaf), where, "storage");
    return read_amount(v, leaf, 1, out, err);
}

/* ---- Kinds ---- */

enum shape {
    SHAPE_POD,      /* 1 x spec */
    SHAPE_REPLICAS, /* spec.replicas x spec.template.spec */
    SHAPE_DAEMON,   /* 1 x spec.template.spec */
    SHAPE_JOB,      /* spec.parallelism x spec.template.spec */
    SHAPE_CRONJOB,  /* spec.jobTemplate.spec.parallelism x its template.spec */
    SHAPE_CLAIM,    /* spec.resources.requests.storage */
};

struct kind {
    const char *kind;
    const char *group;     /* "" is the core group (apiVersion "v1") */
    const char *alt_group; /* an older group that served it, or NULL */
    enum shape shape;
};

static const struct kind kinds[] = {
    {"Pod", "", NULL, SHAPE_POD},
    {"ReplicationController", "", NULL, SHAPE_REPLICAS},
    {"PersistentVolumeClaim", "", NULL, SHAPE_CLAIM},
    {"Deployment", "apps", "extensions", SHAPE_REPLICAS},
    {"ReplicaSet", "apps", "extensions", SHAPE_REPLICAS},
    {"StatefulSet", "apps", NULL, SHAPE_REPLICAS},
    {"DaemonSet", "apps", "extensions", SHAPE_DAEMON},
    {"Job", "batch", NULL, SHAPE_JOB},
    {"CronJob", "batch", NULL, SHAPE_CRONJOB},
};

/* The entry for obj's kind, or NULL when it holds nothing. */
static const struct kind *kind_of(const cJSON *obj)
{
    const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "kind"));
    const char *api = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"));

    if (kind == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const struct kind *k = &kinds[i];
        const char *slash;
        size_t len;

        if (strcmp(k->kind, kind) != 0)
            continue;
        if (api == NULL)
            return k;
        slash = strchr(api, '/');
        len = slash != NULL ? (size_t)(slash - api) : 0;
        if ((strlen(k->group) == len && strncmp(api, k->group, len) == 0) ||
            (k->alt_group != NULL && strlen(k->alt_group) == len &&
             strncmp(api, k->alt_group, len) == 0))
            return k;
        return NULL;
    }
    return NULL;
}

pv_status usage_of_object(const cJSON *obj, struct usage *out, bool *is_charged, struct pv_err *err)
{
    static const char *const spec_keys[] = {"spec", NULL};
    static const char *const job_keys[] = {"spec", "jobTemplate", "spec", NULL};
    static const char *const template_keys[] = {"template", "spec", NULL};
    const struct kind *k = cJSON_IsObject(obj) ? kind_of(obj) : NULL;
    struct usage u = {0};
    const cJSON *base;
    const cJSON *pod;
    char base_path[PATH_CAP];
    char pod_path[PATH_CAP];
    int64_t count = 1;
    int64_t per_pod[R_N] = {0};
    pv_status rc;

    if (k == NULL) {
        *out = u;
        *is_charged = false;
        return PV_OK;
    }
    if (k->shape == SHAPE_CLAIM) {
        rc = claim_storage(obj, "", &u.storage_bytes, err);
        if (rc)
            return rc;
        *out = u;
        *is_charged = true;
        return PV_OK;
    }
    /* base: the mapping that holds the count and the pod template. */
    rc = walk(obj, "", k->shape == SHAPE_CRONJOB ? job_keys : spec_keys, &base, base_path, err);
    if (rc)
        return rc;
    if (k->shape == SHAPE_REPLICAS)
        rc = read_count(base, "replicas", base_path, 1, &count, err);
    else if (k->shape == SHAPE_JOB || k->shape == SHAPE_CRONJOB)
        rc = read_count(base, "parallelism", base_path, 1, &count, err);
    if (rc)
        return rc;
    if (k->shape == SHAPE_POD) {
        pod = base;
        memcpy(pod_path, base_path, sizeof(pod_path));
    } else {
        rc = walk(base, base_path, template_keys, &pod, pod_path, err);
        if (rc)
            return rc;
    }
    rc = pod_requests(pod, pod_path, per_pod, err);
    if (rc)
        return rc;
    u.cpu_millis = per_pod[R_CPU];
    u.memory_bytes = per_pod[R_MEMORY];
    if (!mul_by(&u.cpu_millis, count) || !mul_by(&u.memory_bytes, count))
        return too_large(pod_path, err);
    if (strcmp(k->kind, "StatefulSet") == 0) {
        const cJSON *claims;
        const cJSON *c;
        size_t i = 0;

        rc = opt_array(base, "volumeClaimTemplates", base_path, &claims, err);
        if (rc)
            return rc;
        cJSON_ArrayForEach(c, claims)
        {
            char where[PATH_CAP];
            int64_t storage;

            path_fmt(where, sizeof(where), "%s.volumeClaimTemplates[%zu]", base_path, i++);
            if (!cJSON_IsObject(c))
                return pv_err_set(err, PV_EINVAL, "%s must be a mapping", where);
            rc = claim_storage(c, where, &storage, err);
            if (rc)
                return rc;
            if (!mul_by(&storage, count) || !add_to(&u.storage_bytes, storage))
                return too_large(where, err);
        }
    }
    *out = u;
    *is_charged = true;
    return PV_OK;
}

pv_status usage_of_provision(const cJSON *obj, struct usage *out, struct pv_err *err)
{
    static const char *const size_keys[] = {"cpu", "memory", "storage"};
    struct usage u = {.environments = 1};
    int64_t *fields[] = {&u.cpu_millis, &u.memory_bytes, &u.storage_bytes};
    const double scales[] = {1000, 1, 1};
    const char *name;
    const cJSON *size;
    const cJSON *c;
    pv_status rc;

    if (!cJSON_IsObject(obj))
        return pv_err_set(err, PV_EINVAL,
                          "a provision request's object must be a mapping "
                          "{\"environment\": \"name\", \"size\": {...}}");
    name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "environment"));
    if (name == NULL || name[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "environment: the environment's name is required");
    rc = opt_object(obj, "size", "", &size, err);
    if (rc)
        return rc;
    cJSON_ArrayForEach(c, size)
    {
        char where[PATH_CAP];
        size_t i;

        for (i = 0; i < 3; i++)
            if (strcmp(c->string, size_keys[i]) == 0)
                break;
        if (i == 3)
            return pv_err_set(err, PV_EINVAL,
                              "size: unknown resource \"%.64s\" (expected cpu, memory, storage)",
                              c->string);
        if (cJSON_IsNull(c))
            continue;
        join(where, sizeof(where), "size", size_keys[i]);
        rc = read_amount(c, where, scales[i], fields[i], err);
        if (rc)
            return rc;
    }
    *out = u;
    return PV_OK;
}

double usage_monthly_cost(const struct usage *u, const struct cfg_prices *p)
{
    double cores = (double)u->cpu_millis / 1000.0;
    double memory_gib = (double)u->memory_bytes / GIB;
    double storage_gib = (double)u->storage_bytes / GIB;

    return cores * p->cpu_hour * p->hours_per_month +
           memory_gib * p->memory_gib_hour * p->hours_per_month +
           storage_gib * p->storage_gib_month + (double)u->environments * p->environment_month;
}

/* ---- Formatting ---- */

static const char *const binary_units[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

/* Canonical: "2" or "2500m". */
static void cpu_canonical(int64_t millis, char *buf, size_t cap)
{
    if (millis % 1000 == 0)
        snprintf(buf, cap, "%" PRId64, millis / 1000);
    else
        snprintf(buf, cap, "%" PRId64 "m", millis);
}

/* Canonical: the largest binary unit that divides 'bytes' exactly. */
static void bytes_canonical(int64_t bytes, char *buf, size_t cap)
{
    int unit = 0;

    while (bytes != 0 && unit < 6 && bytes % 1024 == 0) {
        bytes /= 1024;
        unit++;
    }
    snprintf(buf, cap, "%" PRId64 "%s", bytes, binary_units[unit]);
}

/* Drops trailing zeros of the fraction of the number at the start of 'buf' (and the
 * point with them), keeping what follows. */
static void trim_fraction(char *buf)
{
    char *dot = strchr(buf, '.');
    char *end;
    char *last;

    if (dot == NULL)
        return;
    end = dot + 1;
    while (*end >= '0' && *end <= '9')
        end++;
    last = end;
    while (last > dot + 1 && last[-1] == '0')
        last--;
    if (last == dot + 1)
        last = dot;
    memmove(last, end, strlen(end) + 1);
}

/* People's cores: "34", "2.5", "0.001". Exact: millicores have three decimals. */
static void cpu_human(int64_t millis, char *buf, size_t cap)
{
    snprintf(buf, cap, "%" PRId64 ".%03" PRId64, millis / 1000, millis % 1000);
    trim_fraction(buf);
}

/* People's bytes: "70Gi", "1.5Ti", "512Mi" with up to 'decimals' decimals, or plain bytes
 * below 1Ki. */
static void bytes_human(int64_t bytes, int decimals, char *buf, size_t cap)
{
    double v = (double)bytes;
    int unit = 0;

    while (unit < 6 && v >= 1024) {
        v /= 1024;
        unit++;
    }
    snprintf(buf, cap, "%.*f%s", decimals, v, binary_units[unit]);
    trim_fraction(buf);
}

cJSON *usage_json(const struct usage *u)
{
    cJSON *o = cJSON_CreateObject();
    char buf[32];

    cpu_canonical(u->cpu_millis, buf, sizeof(buf));
    cJSON_AddStringToObject(o, "cpu", buf);
    cJSON_AddNumberToObject(o, "cpu_millis", (double)u->cpu_millis);
    bytes_canonical(u->memory_bytes, buf, sizeof(buf));
    cJSON_AddStringToObject(o, "memory", buf);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)u->memory_bytes);
    bytes_canonical(u->storage_bytes, buf, sizeof(buf));
    cJSON_AddStringToObject(o, "storage", buf);
    cJSON_AddNumberToObject(o, "storage_bytes", (double)u->storage_bytes);
    cJSON_AddNumberToObject(o, "environments", (double)u->environments);
    return o;
}

/* 'a' > 'limit' bytes, written so that the two read apart: more decimals while the
 * compact forms parse to values that are not apart, then plain bytes. */
static void bytes_pair(int64_t a, int64_t limit, char *abuf, char *lbuf, size_t cap)
{
    for (int d = 2; d <= 6; d++) {
        double av;
        double lv;

        bytes_human(a, d, abuf, cap);
        bytes_human(limit, d, lbuf, cap);
        if (quantity_parse(abuf, &av) && quantity_parse(lbuf, &lv) && av > lv)
            return;
    }
    snprintf(abuf, cap, "%" PRId64, a);
    snprintf(lbuf, cap, "%" PRId64, limit);
}

/* As bytes_pair() for amounts of money. */
static void money_pair(double a, double limit, char *abuf, char *lbuf, size_t cap)
{
    for (int d = 2; d <= 9; d++) {
        snprintf(abuf, cap, "%.*f", d, a);
        snprintf(lbuf, cap, "%.*f", d, limit);
        if (strtod(abuf, NULL) > strtod(lbuf, NULL))
            return;
    }
    snprintf(abuf, cap, "%.17g", a);
    snprintf(lbuf, cap, "%.17g", limit);
}

/* True when 'after' is over 'limit' (negative: none) and grew from 'before'. */
static bool is_over(int64_t before, int64_t after, int64_t limit)
{
    return limit >= 0 && after > limit && after > before;
}

bool usage_exceeds(const struct cfg_quota *q, const char *team, const struct usage *used,
                   const struct usage *after, double cost_after, const struct cfg_prices *p,
                   char *msg, size_t cap)
{
    char a[48];
    char l[48];

    PV_ASSERT(used != NULL && after != NULL && p != NULL && msg != NULL);
    if (q == NULL)
        return false;
    if (team == NULL)
        team = "?";
    if (is_over(used->cpu_millis, after->cpu_millis, q->cpu_millis)) {
        cpu_human(after->cpu_millis, a, sizeof(a));
        cpu_human(q->cpu_millis, l, sizeof(l));
        snprintf(msg, cap, "team %s would use %s of %s cpu", team, a, l);
        return true;
    }
    if (is_over(used->memory_bytes, after->memory_bytes, q->memory_bytes)) {
        bytes_pair(after->memory_bytes, q->memory_bytes, a, l, sizeof(a));
        snprintf(msg, cap, "team %s would use %s of %s memory", team, a, l);
        return true;
    }
    if (is_over(used->storage_bytes, after->storage_bytes, q->storage_bytes)) {
        bytes_pair(after->storage_bytes, q->storage_bytes, a, l, sizeof(a));
        snprintf(msg, cap, "team %s would use %s of %s storage", team, a, l);
        return true;
    }
    if (is_over(used->environments, after->environments, q->environments)) {
        snprintf(msg, cap, "team %s would use %" PRId64 " of %" PRId64 " environments", team,
                 after->environments, q->environments);
        return true;
    }
    if (q->monthly_cost >= 0 && cost_after > q->monthly_cost &&
        cost_after > usage_monthly_cost(used, p)) {
        money_pair(cost_after, q->monthly_cost, a, l, sizeof(a));
        snprintf(msg, cap, "team %s would use %s of %s %s a month", team, a, l, p->currency);
        return true;
    }
    return false;
}
