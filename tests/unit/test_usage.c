/* tests/unit/test_usage.c: Kubernetes quantities (server/base/quantity.c), what objects
 * and provision requests hold and cost, the quota messages (server/usage.c), and the
 * quotas: and prices: sections of paved.yaml (server/config_quota.c). */
#include "usage.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "quantity.h"
#include "t.h"

#define KI 1024LL
#define MI (KI * KI)
#define GI (MI * KI)
#define TI (GI * KI)

/* ---- Quantities ---- */

static void test_quantity_parse(void)
{
    static const struct {
        const char *s;
        double want;
    } good[] = {
        {"0", 0},
        {"1", 1},
        {"+1", 1},
        {"-1", -1},
        {"007", 7},
        {"1.5", 1.5},
        {"1.", 1},
        {".5", 0.5},
        {"-.5", -0.5},
        {"500m", 0.5},
        {"250m", 0.25},
        {"100n", 1e-7},
        {"5u", 5e-6},
        {"1k", 1e3},
        {"2M", 2e6},
        {"3G", 3e9},
        {"1T", 1e12},
        {"1P", 1e15},
        {"1E", 1e18},
        {"1Ki", 1024},
        {"1.5Mi", 1572864},
        {"0.5Gi", 536870912},
        {"64Gi", 68719476736.0},
        {"1Ti", 1099511627776.0},
        {"1Pi", 1125899906842624.0},
        {"1Ei", 1152921504606846976.0},
        {"1e3", 1e3},
        {"1E3", 1e3},
        {"5e-2", 0.05},
        {"1e+2", 100},
        {"1.5e1", 15},
        {"12e0", 12},
    };
    static const char *const bad[] = {"",       "Gi",    ".",    "-",    "+",     "1.5.2", "10 Gi",
                                      " 1",     "1 ",    "1KB",  "1K",   "1ki",   "1gi",   "1e",
                                      "1E+",    "1e1.5", "1Gib", "0x10", "1,5",   "inf",   "nan",
                                      "1e401",  "1mi",   "--1",  "1m2",  "1e-",   "+-1",   "1Gi ",
                                      "1.5.Gi", "e3",    "1ee3", "1i",   "1e400", "1.0.0"};
    char longest[80];
    double v;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = -12345;
        if (!T_OK(quantity_parse(good[i].s, &v)) || !T_OK(v == good[i].want))
            t_diag("\"%s\": got %.17g, want %.17g", good[i].s, v, good[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -12345;
        if (!T_OK(!quantity_parse(bad[i], &v)) || !T_OK(v == -12345))
            t_diag("\"%s\" parsed as %.17g", bad[i], v);
    }
    T_OK(!quantity_parse(NULL, &v));
    /* 64 characters parse, 65 do not. */
    memset(longest, '0', 64);
    longest[63] = '1';
    longest[64] = '\0';
    T_OK(quantity_parse(longest, &v) && v == 1);
    longest[64] = '1';
    longest[65] = '\0';
    T_OK(!quantity_parse(longest, &v));
}

static void test_quantity_json(void)
{
    cJSON *num = cJSON_CreateNumber(0.5);
    cJSON *str = cJSON_CreateString("1Gi");
    cJSON *badstr = cJSON_CreateString("1 Gi");
    cJSON *b = cJSON_CreateTrue();
    cJSON *null = cJSON_CreateNull();
    cJSON *nan = cJSON_CreateNumber(NAN);
    cJSON *inf = cJSON_CreateNumber(INFINITY);
    double v = 0;

    T_OK(quantity_json(num, &v) && v == 0.5);
    T_OK(quantity_json(str, &v) && v == 1073741824.0);
    v = 7;
    T_OK(!quantity_json(badstr, &v));
    T_OK(!quantity_json(b, &v));
    T_OK(!quantity_json(null, &v));
    T_OK(!quantity_json(nan, &v));
    T_OK(!quantity_json(inf, &v));
    T_OK(!quantity_json(NULL, &v));
    T_OK(v == 7);
    cJSON_Delete(num);
    cJSON_Delete(str);
    cJSON_Delete(badstr);
    cJSON_Delete(b);
    cJSON_Delete(null);
    cJSON_Delete(nan);
    cJSON_Delete(inf);
}

static void test_quantity_ceil(void)
{
    static const struct {
        const char *s; /* parsed with quantity_parse */
        double scale;
        bool is_ok;
        int64_t want;
    } cases[] = {
        /* 2.007 x 1000 is 2007.0000000000002 in doubles: a plain ceil() would say 2008 */
        {"2.007", 1000, true, 2007},
        {"2007m", 1000, true, 2007},
        {"0.7", 1000, true, 700},
        {"0.3", 1000, true, 300},
        {"0.1", 1000, true, 100},
        {"250m", 1000, true, 250},
        {"2", 1000, true, 2000},
        {"0.0001", 1000, true, 1}, /* rounds up, as Kubernetes does */
        {"1e-20", 1000, true, 1},
        {"0.7000000000001", 1000, true, 701},
        {"1.5", 1, true, 2},
        {"0.1Ki", 1, true, 103},
        {"1Gi", 1, true, 1073741824},
        {"7Ei", 1, true, 8070450532247928832LL},
        {"0", 1, true, 0},
        {"-0", 1, true, 0},
        {"-1", 1, false, 0},
        {"-1m", 1000, false, 0},
        {"8Ei", 1, false, 0}, /* 2^63 does not fit */
        {"1e19", 1, false, 0},
    };
    int64_t out;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double v = 0;

        out = -7;
        T_OK(quantity_parse(cases[i].s, &v));
        if (!T_EQ_INT(quantity_ceil(v, cases[i].scale, &out), cases[i].is_ok))
            t_diag("\"%s\"", cases[i].s);
        if (!T_EQ_INT(out, cases[i].is_ok ? cases[i].want : -7))
            t_diag("\"%s\" x %g", cases[i].s, cases[i].scale);
    }
    out = -7;
    T_OK(!quantity_ceil(NAN, 1, &out) && out == -7);
    T_OK(!quantity_ceil(INFINITY, 1, &out) && out == -7);
}

/* ---- Objects ---- */

struct obj_case {
    const char *note;
    const char *json;
    pv_status rc;
    bool is_charged;
    int64_t cpu_millis;
    int64_t memory_bytes;
    int64_t storage_bytes;
    const char *err; /* a substring of the message when rc != PV_OK */
};

static const struct obj_case obj_cases[] = {
    {"Deployment: 3 replicas x (250m + 100m)",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"replicas\":3,"
     "\"template\":{\"spec\":{\"containers\":["
     "{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"250m\",\"memory\":\"128Mi\"}}},"
     "{\"name\":\"b\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}}]}}}}",
     PV_OK, true, 1050, 3 * 192 * MI, 0, NULL},
    {"Pod: init containers larger than the sum",
     "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{"
     "\"initContainers\":["
     "{\"name\":\"i1\",\"resources\":{\"requests\":{\"cpu\":\"500m\",\"memory\":\"32Mi\"}}},"
     "{\"name\":\"i2\",\"resources\":{\"requests\":{\"cpu\":\"300m\",\"memory\":\"16Mi\"}}}],"
     "\"containers\":["
     "{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}}},"
     "{\"name\":\"b\",\"resources\":{\"requests\":{\"cpu\":\"100m\"}}}]}}",
     PV_OK, true, 500, 64 * MI, 0, NULL},
    {"Pod: limits only, and limits for the one resource requests leave out",
     "{\"kind\":\"Pod\",\"spec\":{\"containers\":["
     "{\"name\":\"a\",\"resources\":{\"limits\":{\"cpu\":1,\"memory\":\"1Gi\"}}},"
     "{\"name\":\"b\",\"resources\":{\"requests\":{\"cpu\":\"200m\"},"
     "\"limits\":{\"cpu\":\"2\",\"memory\":\"512Mi\"}}}]}}",
     PV_OK, true, 1200, GI + 512 * MI, 0, NULL},
    {"Pod: no resources at all",
     "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":\"a\",\"image\":\"x\"}]}}", PV_OK, true,
     0, 0, 0, NULL},
    {"Pod: sidecars add to the sum and to the init containers after them",
     "{\"kind\":\"Pod\",\"spec\":{\"initContainers\":["
     "{\"name\":\"proxy\",\"restartPolicy\":\"Always\",\"resources\":{\"requests\":{\"cpu\":"
     "\"100m\"}}},"
     "{\"name\":\"migrate\",\"resources\":{\"requests\":{\"cpu\":\"500m\"}}}],"
     "\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"200m\"}}}]}}",
     PV_OK, true, 600, 0, 0, NULL},
    {"Pod: overhead adds",
     "{\"kind\":\"Pod\",\"spec\":{\"overhead\":{\"cpu\":\"250m\",\"memory\":\"120Mi\"},"
     "\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"1\",\"memory\":"
     "\"1Gi\"}}}]}}",
     PV_OK, true, 1250, GI + 120 * MI, 0, NULL},
    {"Pod: ephemeral containers are ignored",
     "{\"kind\":\"Pod\",\"spec\":{\"ephemeralContainers\":[{\"name\":\"dbg\",\"resources\":{"
     "\"requests\":{\"cpu\":\"4\"}}}],"
     "\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}}",
     PV_OK, true, 1000, 0, 0, NULL},
    {"Deployment: replicas 0 holds nothing",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"replicas\":0,"
     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{"
     "\"cpu\":\"1\"}}}]}}}}",
     PV_OK, true, 0, 0, 0, NULL},
    {"ReplicaSet: replicas default to 1",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"spec\":{"
     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{"
     "\"cpu\":\"1.5\",\"memory\":\"1G\"}}}]}}}}",
     PV_OK, true, 1500, 1000000000, 0, NULL},
    {"ReplicationController: core group",
     "{\"apiVersion\":\"v1\",\"kind\":\"ReplicationController\",\"spec\":{\"replicas\":2,"
     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"resources\":{\"requests\":{"
     "\"cpu\":\"100m\"}}}]}}}}",
     PV_OK, true, 200, 0, 0, NULL},
    {"StatefulSet: replicas x volumeClaimTemplates",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"spec\":{\"replicas\":2,"
     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"db\",\"resources\":{\"requests\":{"
     "\"cpu\":\"1\",\"memory\":\"2Gi\"}}}]}},"
     "\"volumeClaimTemplates\":["
     "{\"metadata\":{\"name\":\"data\"},\"spec\":{\"resources\":{\"requests\":{\"storage\":"
     "\"10Gi\"}}}},"
     "{\"metadata\":{\"name\":\"wal\"},\"spec\":{\"resources\":{\"requests\":{\"storage\":"
     "\"5Gi\"}}}},"
     "{\"metadata\":{\"name\":\"none\"},\"spec\":{}}]}}",
     PV_OK, true, 2000, 4 * GI, 30 * GI, NULL},
    {"DaemonSet: one node's worth",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"DaemonSet\",\"spec\":{\"replicas\":5,"
     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"agent\",\"resources\":{\"requests\":{"
     "\"cpu\":\"50m\",\"memory\":\"64Mi\"}}}]}}}}",
     PV_OK, true, 50, 64 * MI, 0, NULL},
    {"PersistentVolumeClaim",
     "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"spec\":{\"accessModes\":["
     "\"ReadWriteOnce\"],\"resources\":{\"requests\":{\"storage\":\"100Gi\"}}}}",
     PV_OK, true, 0, 0, 100 * GI, NULL},
    {"Job: parallelism",
     "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"spec\":{\"parallelism\":4,"
     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\",\"resources\":{\"requests\":{"
     "\"cpu\":\"200m\",\"memory\":\"256Mi\"}}}]}}}}",
     PV_OK, true, 800, GI, 0, NULL},
    {"Job: parallelism defaults to 1",
     "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"spec\":{\"completions\":10,"
     "\"template\":{\"spec\":{\"containers\":[{\"name\":\"w\",\"resources\":{\"requests\":{"
     "\"cpu\":\"200m\"}}}]}}}}",
     PV_OK, true, 200, 0, 0, NULL},
    {"CronJob: jobTemplate parallelism",
     "{\"apiVersion\":\"batch/v1\",\"kind\":\"CronJob\",\"spec\":{\"schedule\":\"* * * * *\","
     "\"jobTemplate\":{\"spec\":{\"parallelism\":2,\"template\":{\"spec\":{\"containers\":["
     "{\"name\":\"w\",\"resources\":{\"requests\":{\"cpu\":1.5,\"memory\":\"1Gi\"}}}]}}}}}}",
     PV_OK, true, 3000, 2 * GI, 0, NULL},
    {"CronJob: parallelism defaults to 1",
     "{\"apiVersion\":\"batch/v1\",\"kind\":\"CronJob\",\"spec\":{"
     "\"jobTemplate\":{\"spec\":{\"template\":{\"spec\":{\"containers\":["
     "{\"name\":\"w\",\"resources\":{\"requests\":{\"cpu\":\"300m\"}}}]}}}}}}",
     PV_OK, true, 300, 0, 0, NULL},
    {"Deployment without a template holds nothing, but is charged",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"replicas\":2}}", PV_OK, true,
     0, 0, 0, NULL},
    {"ConfigMap: not charged",
     "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"data\":{\"cpu\":\"4\"}}", PV_OK, false, 0, 0,
     0, NULL},
    {"a custom resource called Job: not charged",
     "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Job\",\"spec\":{\"template\":{\"spec\":{"
     "\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}}}}",
     PV_OK, false, 0, 0, 0, NULL},
    {"Deployment from extensions/v1beta1",
     "{\"apiVersion\":\"extensions/v1beta1\",\"kind\":\"Deployment\",\"spec\":{\"template\":{"
     "\"spec\":{\"containers\":[{\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}}}}",
     PV_OK, true, 1000, 0, 0, NULL},
    {"no kind: not charged", "{\"spec\":{}}", PV_OK, false, 0, 0, 0, NULL},
    {"not an object: not charged", "[1,2]", PV_OK, false, 0, 0, 0, NULL},
    {"bad cpu quantity",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"template\":{\"spec\":{"
     "\"containers\":[{\"name\":\"a\"},{\"name\":\"b\",\"resources\":{\"requests\":{\"cpu\":"
     "\"2 cores\"}}}]}}}}",
     PV_EINVAL, false, 0, 0, 0,
     "spec.template.spec.containers[1].resources.requests.cpu: \"2 cores\" is not a quantity"},
    {"negative memory limit",
     "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"resources\":{\"limits\":{\"memory\":"
     "\"-1Gi\"}}}]}}",
     PV_EINVAL, false, 0, 0, 0, "spec.containers[0].resources.limits.memory: a negative"},
    {"memory of the wrong type",
     "{\"kind\":\"Pod\",\"spec\":{\"initContainers\":[{\"resources\":{\"requests\":{\"memory\":"
     "true}}}]}}",
     PV_EINVAL, false, 0, 0, 0,
     "spec.initContainers[0].resources.requests.memory must be a quantity"},
    {"replicas as a string",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"replicas\":\"3\"}}",
     PV_EINVAL, false, 0, 0, 0, "spec.replicas must be a whole number from 0 to 2147483647"},
    {"replicas fractional",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"spec\":{\"replicas\":1.5}}", PV_EINVAL,
     false, 0, 0, 0, "spec.replicas must be a whole number"},
    {"CronJob: negative parallelism",
     "{\"apiVersion\":\"batch/v1\",\"kind\":\"CronJob\",\"spec\":{\"jobTemplate\":{\"spec\":{"
     "\"parallelism\":-1}}}}",
     PV_EINVAL, false, 0, 0, 0, "spec.jobTemplate.spec.parallelism must be a whole number"},
    {"containers not a list", "{\"kind\":\"Pod\",\"spec\":{\"containers\":{\"a\":1}}}", PV_EINVAL,
     false, 0, 0, 0, "spec.containers must be a list"},
    {"template not a mapping",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"template\":[]}}", PV_EINVAL,
     false, 0, 0, 0, "spec.template must be a mapping"},
    {"bad claim template storage",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"spec\":{\"volumeClaimTemplates\":["
     "{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"10GB\"}}}}]}}",
     PV_EINVAL, false, 0, 0, 0,
     "spec.volumeClaimTemplates[0].spec.resources.requests.storage: \"10GB\" is not a quantity"},
    {"bad PVC storage",
     "{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"spec\":{\"resources\":{"
     "\"requests\":{\"storage\":\"lots\"}}}}",
     PV_EINVAL, false, 0, 0, 0, "spec.resources.requests.storage: \"lots\" is not a quantity"},
    {"total beyond int64",
     "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"spec\":{\"replicas\":3,"
     "\"template\":{\"spec\":{\"containers\":[{\"resources\":{\"requests\":{\"memory\":"
     "\"4Ei\"}}}]}}}}",
     PV_EINVAL, false, 0, 0, 0, "spec.template.spec: the total is too large"},
    {"one amount beyond int64",
     "{\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"resources\":{\"requests\":{\"memory\":"
     "\"9Ei\"}}}]}}",
     PV_EINVAL, false, 0, 0, 0,
     "spec.containers[0].resources.requests.memory: the amount is too "
     "large"},
};

static void test_usage_of_object(void)
{
    for (size_t i = 0; i < sizeof(obj_cases) / sizeof(obj_cases[0]); i++) {
        const struct obj_case *c = &obj_cases[i];
        cJSON *obj = cJSON_Parse(c->json);
        struct usage u = {-1, -1, -1, -1};
        bool is_charged = !c->is_charged;
        struct pv_err err = {0};
        pv_status rc;

        if (!T_OK(obj != NULL)) {
            t_diag("%s: bad test JSON", c->note);
            continue;
        }
        rc = usage_of_object(obj, &u, &is_charged, &err);
        if (!T_EQ_INT(rc, c->rc))
            t_diag("%s: %s", c->note, err.msg);
        if (c->rc == PV_OK) {
            int is_ok = T_EQ_INT(is_charged, c->is_charged);

            is_ok &= T_EQ_INT(u.cpu_millis, c->cpu_millis);
            is_ok &= T_EQ_INT(u.memory_bytes, c->memory_bytes);
            is_ok &= T_EQ_INT(u.storage_bytes, c->storage_bytes);
            is_ok &= T_EQ_INT(u.environments, 0);
            if (!is_ok)
                t_diag("%s", c->note);
        } else {
            /* Out-parameters are written only on success. */
            if (!T_OK(strstr(err.msg, c->err) != NULL) || !T_OK(u.cpu_millis == -1) ||
                !T_OK(is_charged == !c->is_charged))
                t_diag("%s: got \"%s\", want \"%s\"", c->note, err.msg, c->err);
            T_EQ_INT(err.code, PV_EINVAL);
        }
        cJSON_Delete(obj);
    }
    {
        struct usage u;
        bool is_charged = true;

        T_EQ_INT(usage_of_object(NULL, &u, &is_charged, NULL), PV_OK);
        T_OK(!is_charged && u.cpu_millis == 0);
    }
}

/* ---- Provision requests ---- */

static void test_usage_of_provision(void)
{
    static const struct {
        const char *json;
        pv_status rc;
        struct usage want;
        const char *err;
    } cases[] = {
        {"{\"environment\":\"qa-1\",\"size\":{\"cpu\":\"2\",\"memory\":\"4Gi\",\"storage\":"
         "\"20Gi\"}}",
         PV_OK,
         {2000, 4 * GI, 20 * GI, 1},
         NULL},
        {"{\"environment\":\"qa-2\",\"template\":\"small\"}", PV_OK, {0, 0, 0, 1}, NULL},
        {"{\"environment\":\"qa-3\",\"size\":{\"cpu\":0.5,\"memory\":null}}",
         PV_OK,
         {500, 0, 0, 1},
         NULL},
        {"{\"environment\":\"qa\",\"size\":{\"cpu\":\"2\",\"gpu\":1}}",
         PV_EINVAL,
         {0},
         "size: unknown resource \"gpu\""},
        {"{\"environment\":\"qa\",\"size\":{\"memory\":\"lots\"}}",
         PV_EINVAL,
         {0},
         "size.memory: \"lots\" is not a quantity"},
        {"{\"environment\":\"qa\",\"size\":{\"storage\":\"-20Gi\"}}",
         PV_EINVAL,
         {0},
         "size.storage: a negative amount"},
        {"{\"environment\":\"qa\",\"size\":\"big\"}", PV_EINVAL, {0}, "size must be a mapping"},
        {"{\"size\":{}}", PV_EINVAL, {0}, "environment: the environment's name is required"},
        {"{\"environment\":\"\"}", PV_EINVAL, {0}, "environment: the environment's name"},
        {"\"qa\"", PV_EINVAL, {0}, "must be a mapping"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *obj = cJSON_Parse(cases[i].json);
        struct usage u = {-1, -1, -1, -1};
        struct pv_err err = {0};

        if (!T_EQ_INT(usage_of_provision(obj, &u, &err), cases[i].rc))
            t_diag("%s: %s", cases[i].json, err.msg);
        if (cases[i].rc == PV_OK) {
            T_EQ_INT(u.cpu_millis, cases[i].want.cpu_millis);
            T_EQ_INT(u.memory_bytes, cases[i].want.memory_bytes);
            T_EQ_INT(u.storage_bytes, cases[i].want.storage_bytes);
            T_EQ_INT(u.environments, cases[i].want.environments);
        } else if (!T_OK(strstr(err.msg, cases[i].err) != NULL) || !T_OK(u.environments == -1)) {
            t_diag("%s: got \"%s\", want \"%s\"", cases[i].json, err.msg, cases[i].err);
        }
        cJSON_Delete(obj);
    }
}

/* ---- Cost ---- */

static const struct cfg_prices eur = {
    .currency = "EUR",
    .cpu_hour = 0.031,
    .memory_gib_hour = 0.0042,
    .storage_gib_month = 0.10,
    .environment_month = 50,
    .hours_per_month = 730,
};

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

static void test_monthly_cost(void)
{
    static const struct {
        struct usage u;
        double want;
    } cases[] = {
        /* 2 cpu:      2 x 0.031 x 730    =  45.26
         * 4Gi:        4 x 0.0042 x 730   =  12.264
         * 100Gi:      100 x 0.10         =  10.00
         * 1 env:      1 x 50             =  50.00
         *                          total = 117.524 */
        {{2000, 4 * GI, 100 * GI, 1}, 117.524},
        {{0, 0, 0, 0}, 0},
        /* 500m: 0.5 x 0.031 x 730 = 11.315 */
        {{500, 0, 0, 0}, 11.315},
        /* 512Mi: 0.5 x 0.0042 x 730 = 1.533 */
        {{0, 512 * MI, 0, 0}, 1.533},
        /* 1Ti: 1024 x 0.10 = 102.4 */
        {{0, 0, TI, 0}, 102.4},
        /* 3 environments: 150 */
        {{0, 0, 0, 3}, 150},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double got = usage_monthly_cost(&cases[i].u, &eur);

        if (!T_OK(near(got, cases[i].want)))
            t_diag("row %zu: got %.17g, want %.17g", i, got, cases[i].want);
    }
    {
        /* hours_per_month scales cpu and memory only. */
        struct cfg_prices p = eur;
        struct usage u = {1000, GI, GI, 1};

        p.hours_per_month = 720;
        T_OK(near(usage_monthly_cost(&u, &p), 0.031 * 720 + 0.0042 * 720 + 0.10 + 50));
    }
}

/* ---- JSON ---- */

static void test_usage_json(void)
{
    static const struct {
        struct usage u;
        const char *want;
    } cases[] = {
        {{2500, 1536 * MI, 20 * GI, 1},
         "{\"cpu\":\"2500m\",\"cpu_millis\":2500,\"memory\":\"1536Mi\",\"memory_bytes\":"
         "1610612736,\"storage\":\"20Gi\",\"storage_bytes\":21474836480,\"environments\":1}"},
        {{2000, 1000, 0, 0},
         "{\"cpu\":\"2\",\"cpu_millis\":2000,\"memory\":\"1000\",\"memory_bytes\":1000,"
         "\"storage\":\"0\",\"storage_bytes\":0,\"environments\":0}"},
        {{1, TI, 3 * KI, 7},
         "{\"cpu\":\"1m\",\"cpu_millis\":1,\"memory\":\"1Ti\",\"memory_bytes\":1099511627776,"
         "\"storage\":\"3Ki\",\"storage_bytes\":3072,\"environments\":7}"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *j = usage_json(&cases[i].u);
        char *s = cJSON_PrintUnformatted(j);
        double v = 0;

        T_EQ_STR(s, cases[i].want);
        /* The strings are quantities that read back to the numbers. */
        T_OK(quantity_parse(cJSON_GetStringValue(cJSON_GetObjectItem(j, "cpu")), &v) &&
             v * 1000 == (double)cases[i].u.cpu_millis);
        T_OK(quantity_parse(cJSON_GetStringValue(cJSON_GetObjectItem(j, "memory")), &v) &&
             v == (double)cases[i].u.memory_bytes);
        T_OK(quantity_parse(cJSON_GetStringValue(cJSON_GetObjectItem(j, "storage")), &v) &&
             v == (double)cases[i].u.storage_bytes);
        free(s);
        cJSON_Delete(j);
    }
}

/* ---- Quota messages ---- */

static void test_exceeds(void)
{
    static const struct cfg_quota q = {
        .team = "payments",
        .cpu_millis = 32000,
        .memory_bytes = 64 * GI,
        .storage_bytes = TI,
        .environments = 5,
        .monthly_cost = 5000,
    };
    static const struct cfg_quota none = {"*", -1, -1, -1, -1, -1};
    static const struct cfg_quota small = {"web", 2000, 512 * MI, 10 * GI, 0, 100};
    static const struct {
        const struct cfg_quota *q;
        const char *team;
        struct usage used;
        struct usage after;
        double cost_after;
        const char *want; /* NULL: not over */
    } cases[] = {
        {&q,
         "payments",
         {30000, 0, 0, 0},
         {34000, 0, 0, 0},
         0,
         "team payments would use 34 of 32 cpu"},
        {&q,
         "payments",
         {0, 60 * GI, 0, 0},
         {0, 70 * GI, 0, 0},
         0,
         "team payments would use 70Gi of 64Gi memory"},
        {&q,
         "payments",
         {0, 0, 0, 0},
         {0, 64 * GI + 512 * MI, 0, 0},
         0,
         "team payments would use 64.5Gi of 64Gi memory"},
        /* one byte over: the compact forms would read equal, so plain bytes */
        {&q,
         "payments",
         {0, 0, 0, 0},
         {0, 64 * GI + 1, 0, 0},
         0,
         "team payments would use 68719476737 of 68719476736 memory"},
        /* 64Gi + 1Mi: more decimals until the two read apart */
        {&q,
         "payments",
         {0, 0, 0, 0},
         {0, 64 * GI + MI, 0, 0},
         0,
         "team payments would use 64.001Gi of 64Gi memory"},
        {&q,
         "payments",
         {0, 0, TI, 0},
         {0, 0, TI + 512 * GI, 0},
         0,
         "team payments would use 1.5Ti of 1Ti storage"},
        {&q,
         "payments",
         {0, 0, 0, 5},
         {0, 0, 0, 6},
         0,
         "team payments would use 6 of 5 environments"},
        {&q,
         "payments",
         {0, 0, 0, 0},
         {0, 0, 0, 0},
         5120,
         "team payments would use 5120.00 of 5000.00 EUR a month"},
        {&q,
         "payments",
         {0, 0, 0, 0},
         {0, 0, 0, 0},
         5000.004,
         "team payments would use 5000.004 of 5000.000 EUR a month"},
        /* cpu and memory both over: cpu is named first */
        {&q,
         "payments",
         {0, 0, 0, 0},
         {40000, 100 * GI, 0, 0},
         0,
         "team payments would use 40 of 32 cpu"},
        {&small, "web", {0, 0, 0, 0}, {2500, 0, 0, 0}, 0, "team web would use 2.5 of 2 cpu"},
        {&small, "web", {0, 0, 0, 0}, {2001, 0, 0, 0}, 0, "team web would use 2.001 of 2 cpu"},
        {&small,
         "web",
         {0, 0, 0, 0},
         {0, 768 * MI, 0, 0},
         0,
         "team web would use 768Mi of 512Mi memory"},
        {&small, "web", {0, 0, 0, 0}, {0, 0, 0, 1}, 0, "team web would use 1 of 0 environments"},
        {&small,
         NULL,
         {0, 0, 0, 0},
         {0, 0, 11 * GI, 0},
         0,
         "team ? would use 11Gi of 10Gi storage"},
        /* at the limit is not over */
        {&q, "payments", {0, 0, 0, 0}, {32000, 64 * GI, TI, 5}, 5000, NULL},
        /* no limits */
        {&none, "search", {0, 0, 0, 0}, {1000000, TI, 100 * TI, 100}, 1e9, NULL},
        {NULL, "search", {0, 0, 0, 0}, {1000000, TI, 100 * TI, 100}, 1e9, NULL},
        /* over, but the change shrinks it: a team over a lowered quota can still shrink */
        {&q, "payments", {40000, 0, 0, 0}, {36000, 0, 0, 0}, 0, NULL},
        {&q, "payments", {0, 0, 0, 7}, {0, 0, 0, 7}, 0, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[128] = "";
        bool is_over = usage_exceeds(cases[i].q, cases[i].team, &cases[i].used, &cases[i].after,
                                     cases[i].cost_after, &eur, msg, sizeof(msg));

        if (!T_EQ_INT(is_over, cases[i].want != NULL))
            t_diag("row %zu: %s", i, msg);
        T_EQ_STR(msg, cases[i].want != NULL ? cases[i].want : "");
    }
    {
        /* Cost not grown: the used cost is the same as after. */
        struct usage used = {0, 0, 0, 3};
        char msg[64] = "";
        struct cfg_quota cheap = none;

        cheap.monthly_cost = 100;
        T_OK(!usage_exceeds(&cheap, "web", &used, &used, usage_monthly_cost(&used, &eur), &eur, msg,
                            sizeof(msg)));
        T_EQ_STR(msg, "");
        /* Truncated to 'cap'. */
        T_OK(usage_exceeds(&cheap, "payments", &(struct usage){0}, &used, 150, &eur, msg, 10));
        T_EQ_STR(msg, "team paym");
    }
}

/* ---- Config ---- */

static void test_config_good(void)
{
    static const char yaml[] = "bindings: []\n"
                               "quotas:\n"
                               "  - team: payments\n"
                               "    cpu: 32\n"
                               "    memory: 64Gi\n"
                               "    storage: 1Ti\n"
                               "    environments: 5\n"
                               "    monthly_cost: 5000\n"
                               "  - team: web\n"
                               "    cpu: \"500m\"\n"
                               "    memory: 1073741824\n"
                               "  - team: batch\n"
                               "    cpu: 0.5\n"
                               "    monthly_cost: 99.5\n"
                               "  - team: \"*\"\n"
                               "    cpu: 8\n"
                               "prices:\n"
                               "  currency: EUR\n"
                               "  cpu_hour: 0.031\n"
                               "  memory_gib_hour: 0.0042\n"
                               "  storage_gib_month: 0.10\n"
                               "  environment_month: 50\n"
                               "  hours_per_month: 730\n";
    struct config *cfg = NULL;
    struct pv_err err = {0};
    const struct cfg_quota *q;

    if (!T_EQ_INT(config_parse(&cfg, yaml, strlen(yaml), "t.yaml", &err), PV_OK)) {
        t_diag("%s", err.msg);
        return;
    }
    T_EQ_INT(cfg->n_quotas, 4);
    q = config_quota_of(cfg, "payments");
    if (T_OK(q != NULL)) {
        T_EQ_STR(q->team, "payments");
        T_EQ_INT(q->cpu_millis, 32000);
        T_EQ_INT(q->memory_bytes, 64 * GI);
        T_EQ_INT(q->storage_bytes, TI);
        T_EQ_INT(q->environments, 5);
        T_OK(q->monthly_cost == 5000);
    }
    q = config_quota_of(cfg, "web");
    if (T_OK(q != NULL)) {
        T_EQ_INT(q->cpu_millis, 500);
        T_EQ_INT(q->memory_bytes, GI);
        T_EQ_INT(q->storage_bytes, -1); /* left out: no limit */
        T_EQ_INT(q->environments, -1);
        T_OK(q->monthly_cost == -1);
    }
    q = config_quota_of(cfg, "batch");
    if (T_OK(q != NULL)) {
        T_EQ_INT(q->cpu_millis, 500);
        T_OK(q->monthly_cost == 99.5);
    }
    /* Teams not listed get "*". */
    q = config_quota_of(cfg, "search");
    if (T_OK(q != NULL)) {
        T_EQ_STR(q->team, "*");
        T_EQ_INT(q->cpu_millis, 8000);
        T_EQ_INT(q->memory_bytes, -1);
    }
    q = config_quota_of(cfg, NULL);
    T_OK(q != NULL && strcmp(q->team, "*") == 0);
    T_EQ_STR(cfg->prices.currency, "EUR");
    T_OK(cfg->prices.cpu_hour == 0.031);
    T_OK(cfg->prices.memory_gib_hour == 0.0042);
    T_OK(cfg->prices.storage_gib_month == 0.10);
    T_OK(cfg->prices.environment_month == 50);
    T_OK(cfg->prices.hours_per_month == 730);
    config_free(cfg);
}

static void test_config_defaults(void)
{
    static const char yaml[] = "bindings: []\n"
                               "quotas:\n"
                               "  - team: payments\n"
                               "    cpu: 4\n"
                               "prices:\n"
                               "  cpu_hour: 0.05\n";
    struct config *cfg = NULL;
    struct pv_err err = {0};

    if (T_EQ_INT(config_parse(&cfg, "bindings: []\n", 13, "t.yaml", &err), PV_OK)) {
        T_EQ_INT(cfg->n_quotas, 0);
        T_OK(config_quota_of(cfg, "payments") == NULL);
        T_EQ_STR(cfg->prices.currency, "USD");
        T_OK(cfg->prices.hours_per_month == 730);
        T_OK(cfg->prices.cpu_hour == 0 && cfg->prices.environment_month == 0);
        config_free(cfg);
    }
    if (!T_EQ_INT(config_parse(&cfg, yaml, strlen(yaml), "t.yaml", &err), PV_OK)) {
        t_diag("%s", err.msg);
        return;
    }
    /* No "*": teams not listed have no limits. */
    T_OK(config_quota_of(cfg, "search") == NULL);
    T_OK(config_quota_of(cfg, "payments") != NULL);
    T_EQ_STR(cfg->prices.currency, "USD");
    T_OK(cfg->prices.cpu_hour == 0.05);
    T_OK(cfg->prices.hours_per_month == 730);
    config_free(cfg);
}

static void test_config_errors(void)
{
    static const struct {
        const char *yaml; /* after "bindings: []\n" */
        const char *err;
    } cases[] = {
        {"quotas:\n  - team: payments\n    gpu: 2\n",
         "t.yaml: quotas[0]: unknown key \"gpu\" (expected one of: team, cpu, memory, storage, "
         "environments, monthly_cost)"},
        {"quotas:\n  - team: payments\n    cpu: -1\n",
         "t.yaml: quotas[0] (team payments): cpu must not be negative"},
        {"quotas:\n  - team: payments\n    cpu: \"-500m\"\n",
         "t.yaml: quotas[0] (team payments): cpu must not be negative"},
        {"quotas:\n  - team: payments\n    memory: 64GB\n",
         "t.yaml: quotas[0] (team payments): memory must be a number or a quantity such as "
         "\"64Gi\""},
        {"quotas:\n  - team: payments\n    storage: [1Ti]\n",
         "quotas[0] (team payments): storage must be a number or a quantity"},
        {"quotas:\n  - team: payments\n    cpu: 2 cores\n",
         "quotas[0] (team payments): cpu must be a number or a quantity"},
        {"quotas:\n  - team: payments\n    cpu: ~\n",
         "quotas[0] (team payments): cpu must be a number or a quantity"},
        {"quotas:\n  - team: payments\n    memory: 9Ei\n",
         "quotas[0] (team payments): memory is too large"},
        {"quotas:\n  - team: payments\n    cpu: 4\n  - team: web\n  - team: payments\n    cpu: 8\n",
         "t.yaml: quotas[2]: team \"payments\" already has a quota in quotas[0]"},
        {"quotas:\n  - cpu: 4\n", "t.yaml: quotas[0]: team must be a team's name"},
        {"quotas:\n  - team: 7\n", "t.yaml: quotas[0]: team must be a team's name"},
        {"quotas:\n  - team: \"\"\n", "t.yaml: quotas[0]: team must be a team's name"},
        {"quotas:\n  - payments\n", "t.yaml: quotas[0] must be a mapping"},
        {"quotas:\n  payments:\n    cpu: 4\n", "t.yaml: quotas must be a list"},
        {"quotas:\n  - team: payments\n    environments: 1.5\n",
         "quotas[0] (team payments): environments must be a whole number"},
        {"quotas:\n  - team: payments\n    environments: -1\n",
         "quotas[0] (team payments): environments must be a whole number"},
        {"quotas:\n  - team: payments\n    environments: \"5\"\n",
         "quotas[0] (team payments): environments must be a whole number"},
        {"quotas:\n  - team: payments\n    monthly_cost: lots\n",
         "quotas[0] (team payments): monthly_cost must be a number"},
        {"quotas:\n  - team: payments\n    monthly_cost: -5\n",
         "quotas[0] (team payments): monthly_cost must be a number from 0"},
        {"prices:\n  cpu_hours: 0.031\n", "t.yaml: prices: unknown key \"cpu_hours\""},
        {"prices:\n  cpu_hour: -0.031\n", "t.yaml: prices: cpu_hour must be a number from 0"},
        {"prices:\n  memory_gib_hour: cheap\n", "t.yaml: prices: memory_gib_hour must be a number"},
        {"prices:\n  storage_gib_month: .inf\n",
         "t.yaml: prices: storage_gib_month must be a number"},
        {"prices:\n  environment_month: [50]\n",
         "t.yaml: prices: environment_month must be a number"},
        {"prices:\n  currency: 5\n", "t.yaml: prices: currency must be a name"},
        {"prices:\n  currency: \"\"\n", "t.yaml: prices: currency must be a name"},
        {"prices:\n  hours_per_month: 0\n", "t.yaml: prices: hours_per_month must be more than 0"},
        {"prices:\n  hours_per_month: 800\n",
         "t.yaml: prices: hours_per_month must be a number from 0 to 744"},
        {"prices: [1]\n", "t.yaml: prices must be a mapping"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        struct config *cfg = NULL;
        struct pv_err err = {0};
        int n = snprintf(yaml, sizeof(yaml), "bindings: []\n%s", cases[i].yaml);

        T_OK(n > 0 && (size_t)n < sizeof(yaml));
        if (!T_EQ_INT(config_parse(&cfg, yaml, strlen(yaml), "t.yaml", &err), PV_ECONFIG)) {
            t_diag("%s", cases[i].yaml);
            config_free(cfg);
            continue;
        }
        if (!T_OK(strstr(err.msg, cases[i].err) != NULL))
            t_diag("got \"%s\", want \"%s\"", err.msg, cases[i].err);
        T_OK(cfg == NULL);
    }
}

int main(void)
{
    test_quantity_parse();
    test_quantity_json();
    test_quantity_ceil();
    test_usage_of_object();
    test_usage_of_provision();
    test_monthly_cost();
    test_usage_json();
    test_exceeds();
    test_config_good();
    test_config_defaults();
    test_config_errors();
    return t_done();
}
