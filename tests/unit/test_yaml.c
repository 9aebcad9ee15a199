/* tests/unit/test_yaml.c: YAML -> JSON conversion (server/base/yaml.c): go-yaml v2 scalar
 * rules, documents, anchors and merges, limits, and malformed input. Needs no files. */
#include "yamldoc.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "t.h"
#include "xalloc.h"

static const struct yaml_limits LIM = {100, 1000000};

static const char *code_name(pv_status rc)
{
    switch (rc) {
    case PV_OK:
        return "OK";
    case PV_EINVAL:
        return "EINVAL";
    case PV_EPARSE:
        return "EPARSE";
    case PV_ETOOBIG:
        return "ETOOBIG";
    case PV_EDEPTH:
        return "EDEPTH";
    case PV_EIO:
        return "EIO";
    case PV_ENOENT:
        return "ENOENT";
    case PV_EPOLICY:
        return "EPOLICY";
    case PV_ETIMEOUT:
        return "ETIMEOUT";
    case PV_ENOMEM:
        return "ENOMEM";
    case PV_EFULL:
        return "EFULL";
    case PV_ECONFIG:
        return "ECONFIG";
    }
    return "?";
}

/* Converts one document and returns it printed compactly, or "ERR:<code>".
 * Returns: caller frees with free(). */
static char *convert_with(const char *yaml, size_t len, const struct yaml_limits *lim,
                          struct pv_err *err)
{
    cJSON *j = NULL;
    char *s;
    pv_status rc;

    rc = yaml_parse_one(yaml, len, "t.yaml", lim, &j, err);
    if (rc) {
        char buf[32];

        snprintf(buf, sizeof(buf), "ERR:%s", code_name(rc));
        return xstrdup(buf);
    }
    s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static char *convert(const char *yaml)
{
    struct pv_err err = {PV_OK, ""};

    return convert_with(yaml, strlen(yaml), &LIM, &err);
}

struct row {
    const char *yaml;
    const char *json; /* compact JSON, or "ERR:<code>" */
};

/* Each row is the text of a mapping value: "v: <yaml>" must give {"v":<json>}. */
static const struct row SCALARS[] = {
    /* null */
    {"", "null"},
    {"~", "null"},
    {"null", "null"},
    {"Null", "null"},
    {"NULL", "null"},
    {"nULL", "\"nULL\""},
    /* bool: go-yaml v2's YAML 1.1 words, exactly these spellings */
    {"y", "true"},
    {"Y", "true"},
    {"yes", "true"},
    {"Yes", "true"},
    {"YES", "true"},
    {"on", "true"},
    {"On", "true"},
    {"ON", "true"},
    {"true", "true"},
    {"True", "true"},
    {"TRUE", "true"},
    {"n", "false"},
    {"N", "false"},
    {"no", "false"},
    {"No", "false"},
    {"NO", "false"},
    {"off", "false"},
    {"Off", "false"},
    {"OFF", "false"},
    {"false", "false"},
    {"False", "false"},
    {"FALSE", "false"},
    {"yEs", "\"yEs\""},
    {"tRUE", "\"tRUE\""},
    {"oN", "\"oN\""},
    {"yess", "\"yess\""},
    /* int */
    {"0", "0"},
    {"42", "42"},
    {"-17", "-17"},
    {"+5", "5"},
    {"0x1F", "31"},
    {"0X1f", "31"},
    {"-0x10", "-16"},
    {"0o17", "15"},
    {"0O17", "15"},
    {"0755", "493"},
    {"-0755", "-493"},
    {"00", "0"},
    {"0b101", "5"},
    {"-0b101", "-5"},
    {"0b-101", "-5"},
    {"1_000", "1000"},
    {"0x_ff", "255"},
    {"1_", "1"},
    {"08", "8"},
    {"9223372036854775807", "9.2233720368547758e+18"},
    {"-9223372036854775808", "-9.2233720368547758e+18"},
    {"18446744073709551615", "1.8446744073709552e+19"},
    {"0x10000000000000000", "1.8446744073709552e+19"},
    {"-0x10000000000000000", "\"-0x10000000000000000\""},
    {"0x", "\"0x\""},
    {"0xg", "\"0xg\""},
    {"0o8", "\"0o8\""},
    {"0b2", "\"0b2\""},
    {"12abc", "\"12abc\""},
    {"1-2", "\"1-2\""},
    {"2001-12-14", "\"2001-12-14\""},
    {"1,000", "\"1,000\""},
    {"+", "\"+\""},
    {"_1", "\"_1\""},
    /* float */
    {"1.5", "1.5"},
    {"-1.5", "-1.5"},
    {"+1.5", "1.5"},
    {"1e3", "1000"},
    {"1E3", "1000"},
    {"1e+3", "1000"},
    {"1.5e-3", "0.0015"},
    {"1.", "1"},
    {"1.e2", "100"},
    {".5", "0.5"},
    {"-.5", "-0.5"},
    {"09.5", "9.5"},
    {"1_0.5", "10.5"},
    {"._5", "\"._5\""},
    {".", "\".\""},
    {"1e", "\"1e\""},
    {"1.2.3", "\"1.2.3\""},
    {"1e999", "\"1e999\""},
    {".5e999", "\".5e999\""},
    {"0x1p3", "\"0x1p3\""},
    {"inf", "\"inf\""},
    {"+inf", "\"+inf\""},
    {"nan", "\"nan\""},
    {".inf", "null"}, /* cJSON prints non-finite numbers as null; see test_nonfinite */
    /* strings */
    {"hello", "\"hello\""},
    {"hello world", "\"hello world\""},
    {"h\xc3\xa9llo", "\"h\xc3\xa9llo\""},
    {"<<", "\"<<\""},
    {"=", "\"=\""},
    {"'yes'", "\"yes\""},
    {"\"yes\"", "\"yes\""},
    {"\"0755\"", "\"0755\""},
    {"'~'", "\"~\""},
    {"''", "\"\""},
    {"\"\"", "\"\""},
    {"\"12\"", "\"12\""},
    {"'1.5'", "\"1.5\""},
    {"\"a\\tb\"", "\"a\\tb\""},
    {"\"\\u00e9\"", "\"\xc3\xa9\""},
    {"|\n  yes\n", "\"yes\\n\""},
    {"|-\n  0755\n", "\"0755\""},
    {">-\n  a\n  b\n", "\"a b\""},
    /* tags */
    {"!!str 12", "\"12\""},
    {"!!str yes", "\"yes\""},
    {"!!str", "\"\""},
    {"!!int \"12\"", "12"},
    {"!!int 0x10", "16"},
    {"!!bool \"yes\"", "true"},
    {"!!bool off", "false"},
    {"!!float 1", "1"},
    {"!!float '1.5'", "1.5"},
    {"!!null ''", "null"},
    {"!!null ~", "null"},
    {"!<tag:yaml.org,2002:int> '7'", "7"},
    {"!foo bar", "\"bar\""},
    {"! 12", "\"12\""},
    {"!!timestamp 2001-12-14", "\"2001-12-14\""},
    {"!!binary aGk=", "\"aGk=\""},
    {"!!int abc", "ERR:EINVAL"},
    {"!!int 1.5", "ERR:EINVAL"},
    {"!!bool 1", "ERR:EINVAL"},
    {"!!null x", "ERR:EINVAL"},
    {"!!float 18446744073709551615", "ERR:EINVAL"},
    /* a NUL would truncate the JSON string */
    {"\"x\\0y\"", "ERR:EINVAL"},
};

static void test_scalars(void)
{
    size_t i;

    for (i = 0; i < sizeof(SCALARS) / sizeof(SCALARS[0]); i++) {
        const struct row *r = &SCALARS[i];
        size_t yaml_len = strlen(r->yaml) + 4;
        size_t want_len = strlen(r->json) + 8;
        char *yaml = xmalloc(yaml_len);
        char *want = xmalloc(want_len);
        char *got;

        snprintf(yaml, yaml_len, "v: %s", r->yaml);
        if (strncmp(r->json, "ERR:", 4) == 0)
            snprintf(want, want_len, "%s", r->json);
        else
            snprintf(want, want_len, "{\"v\":%s}", r->json);
        got = convert(yaml);
        if (!T_EQ_STR(got, want))
            t_diag("input: v: %s", r->yaml);
        free(got);
        free(yaml);
        free(want);
    }
}

/* Whole documents. */
static const struct row DOCS[] = {
    /* block and flow style */
    {"a:\n  b:\n    - c\n    - d: 1\n", "{\"a\":{\"b\":[\"c\",{\"d\":1}]}}"},
    {"{a: [1, 2, {b: c}], d: 'e'}", "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":\"e\"}"},
    {"- 1\n- [x, z]\n- {k: v}\n", "[1,[\"x\",\"z\"],{\"k\":\"v\"}]"},
    /* YAML 1.1: plain y and n are booleans, also as keys (a classic Kubernetes trap) */
    {"[x, y, n]", "[\"x\",true,false]"},
    {"y: 1\nx: 2\n", "{\"true\":1,\"x\":2}"},
    {"[]", "[]"},
    {"{}", "{}"},
    {"[a, [b, [c, []]]]", "[\"a\",[\"b\",[\"c\",[]]]]"},
    {"- - - x\n", "[[[\"x\"]]]"},
    {"42", "42"},
    {"--- |\n  text\n", "\"text\\n\""},
    {"a: 1 # comment\n# more\nb: 2\n", "{\"a\":1,\"b\":2}"},
    {"\xef\xbb\xbf"
     "a: 1\n",
     "{\"a\":1}"}, /* UTF-8 byte order mark */
    /* keys are strings, spelled as sigs.k8s.io/yaml does */
    {"1: a", "{\"1\":\"a\"}"},
    {"-7: a", "{\"-7\":\"a\"}"},
    {"yes: a", "{\"true\":\"a\"}"},
    {"off: a", "{\"false\":\"a\"}"},
    {"0x10: a", "{\"16\":\"a\"}"},
    {"1.5: a", "{\"1.5\":\"a\"}"},
    {"1e6: a", "{\"1e+06\":\"a\"}"},
    {"1e5: a", "{\"100000\":\"a\"}"},
    {"0.1: a", "{\"0.1\":\"a\"}"},
    {"0.00001: a", "{\"1e-05\":\"a\"}"},
    {"3.14159265358979: a", "{\"3.1415927\":\"a\"}"},
    {".inf: a", "{\".inf\":\"a\"}"},
    {"'1': a", "{\"1\":\"a\"}"},
    {"!!str 1: a", "{\"1\":\"a\"}"},
    {"'<<': 1", "{\"<<\":1}"},
    {"~: a", "ERR:EINVAL"},
    {"? \n: a\n", "ERR:EINVAL"},
    {"18446744073709551615: a", "ERR:EINVAL"},
    /* non-scalar keys */
    {"? [a]\n: 1\n", "ERR:EINVAL"},
    {"? {a: 1}\n: 2\n", "ERR:EINVAL"},
    {"{[1]: 2}", "ERR:EINVAL"},
    /* duplicate keys are an error, as kubectl reports them */
    {"a: 1\na: 2\n", "ERR:EINVAL"},
    {"a: 1\nb: 2\na: 3\n", "ERR:EINVAL"},
    {"{a: 1, 1: x, '1': z}", "ERR:EINVAL"},
    {"a: {b: 1}\nc: {b: 2}\n", "{\"a\":{\"b\":1},\"c\":{\"b\":2}}"},
    /* anchors and aliases */
    {"a: &x {p: 1}\nb: *x\n", "{\"a\":{\"p\":1},\"b\":{\"p\":1}}"},
    {"a: &s hello\nb: [*s, *s]\n", "{\"a\":\"hello\",\"b\":[\"hello\",\"hello\"]}"},
    {"a: &x [1, &y {q: 2}]\nb: *y\nc: *x\n",
     "{\"a\":[1,{\"q\":2}],\"b\":{\"q\":2},\"c\":[1,{\"q\":2}]}"},
    {"k: &n name\n*n : v\n", "{\"k\":\"name\",\"name\":\"v\"}"},
    {"k: &n 0x1\n*n : v\n", "{\"k\":1,\"1\":\"v\"}"},
    {"&k key: v\nw: *k\n", "{\"key\":\"v\",\"w\":\"key\"}"},
    {"a: &x [1]\nc: 2\nb: *x\n", "{\"a\":[1],\"c\":2,\"b\":[1]}"},
    {"a: &a [&a 1, *a]\nb: *a\n", "{\"a\":[1,1],\"b\":1}"},
    {"a: &a 1\nb: &a 2\nc: *a\n", "{\"a\":1,\"b\":2,\"c\":2}"},
    {"a: *nope\n", "ERR:EINVAL"},
    {"a: &a [*a]\n", "ERR:EINVAL"},
    {"a: &a {b: *a}\n", "ERR:EINVAL"},
    {"a: &m {x: 1}\n*m : 2\n", "ERR:EINVAL"},
    {"a: &z\n*z : 1\n", "ERR:EINVAL"},
    {"a: &x 1\n---\nb: *x\n", "ERR:EINVAL"},
    /* merge keys */
    {"base: &b {x: 1, z: 2}\nd:\n  <<: *b\n  z: 3\n",
     "{\"base\":{\"x\":1,\"z\":2},\"d\":{\"x\":1,\"z\":3}}"},
    {"a: &a {x: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n",
     "{\"a\":{\"x\":1},\"b\":{\"x\":2,\"z\":2},\"c\":{\"z\":2,\"x\":1}}"},
    /* a key written out wins over a merged one, before or after the merge key */
    {"c:\n  x: 0\n  <<: {x: 1}\n", "{\"c\":{\"x\":0}}"},
    {"c:\n  privileged: true\n  <<: {privileged: false, w: 1}\n",
     "{\"c\":{\"privileged\":true,\"w\":1}}"},
    {"a:\n  <<: &n {z: 2}\nc: *n\n", "{\"a\":{\"z\":2},\"c\":{\"z\":2}}"},
    {"a:\n  <<: []\n", "{\"a\":{}}"},
    {"a:\n  !!merge <<: {m: 1}\n", "{\"a\":{\"m\":1}}"},
    {"a: &l <<\nb:\n  *l : {m: 1}\n", "{\"a\":\"<<\",\"b\":{\"<<\":{\"m\":1}}}"},
    {"a:\n  <<: 1\n", "ERR:EINVAL"},
    {"a:\n  <<: [1]\n", "ERR:EINVAL"},
    {"a:\n  <<: [{x: 1}, [2]]\n", "ERR:EINVAL"},
    {"a:\n  <<:\n", "ERR:EINVAL"},
};

static void test_docs(void)
{
    size_t i;

    for (i = 0; i < sizeof(DOCS) / sizeof(DOCS[0]); i++) {
        char *got = convert(DOCS[i].yaml);

        if (!T_EQ_STR(got, DOCS[i].json))
            t_diag("input: %s", DOCS[i].yaml);
        free(got);
    }
}

static void test_nonfinite(void)
{
    const char *yaml = "[.inf, -.Inf, .NAN, +.INF, .NaN]";
    cJSON *j = NULL;

    T_EQ_INT(yaml_parse_one(yaml, strlen(yaml), "t", &LIM, &j, NULL), PV_OK);
    T_EQ_INT(cJSON_GetArraySize(j), 5);
    T_OK(isinf(cJSON_GetArrayItem(j, 0)->valuedouble) && cJSON_GetArrayItem(j, 0)->valuedouble > 0);
    T_OK(isinf(cJSON_GetArrayItem(j, 1)->valuedouble) && cJSON_GetArrayItem(j, 1)->valuedouble < 0);
    T_OK(isnan(cJSON_GetArrayItem(j, 2)->valuedouble));
    T_OK(isinf(cJSON_GetArrayItem(j, 3)->valuedouble));
    T_OK(isnan(cJSON_GetArrayItem(j, 4)->valuedouble));
    cJSON_Delete(j);
}

/* Parses 'yaml' into documents; returns their count, or -1 on error. */
static long parse_all(const char *yaml, struct yaml_doc **docs)
{
    size_t n = 0;

    *docs = NULL;
    if (yaml_parse_docs(yaml, strlen(yaml), "t.yaml", &LIM, docs, &n, NULL))
        return -1;
    return (long)n;
}

static char *print_doc(const struct yaml_doc *d)
{
    return d->json != NULL ? cJSON_PrintUnformatted(d->json) : xstrdup("(empty)");
}

static void test_multi_docs(void)
{
    static const struct {
        const char *yaml;
        long n;
        const char *json[3];
        int line[3];
    } cases[] = {
        {"a: 1\n---\nb: 2\n", 2, {"{\"a\":1}", "{\"b\":2}"}, {1, 3}},
        {"---\na: 1\n...\n---\n\n# c\nb: 2\n", 2, {"{\"a\":1}", "{\"b\":2}"}, {2, 7}},
        {"# head\n---\n# only a comment\n---\n\n\nkind: Pod\n---\n",
         3,
         {"(empty)", "{\"kind\":\"Pod\"}", "(empty)"},
         {2, 7, 8}},
        {"--- 5\n--- \"s\"\n...\n", 2, {"5", "\"s\""}, {1, 2}},
        {"---\n---\n", 2, {"(empty)", "(empty)"}, {1, 2}},
        {"--- ~\n", 1, {"null"}, {1}},
        {"", 0, {NULL}, {0}},
        {"# only a comment\n", 0, {NULL}, {0}},
        {"\n\n  key: [1,\n   2]\n", 1, {"{\"key\":[1,2]}"}, {3}},
    };
    size_t i;
    long k;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct yaml_doc *docs;
        long n = parse_all(cases[i].yaml, &docs);

        if (!T_EQ_INT(n, cases[i].n)) {
            t_diag("input: %s", cases[i].yaml);
            yaml_docs_free(docs, n > 0 ? (size_t)n : 0);
            continue;
        }
        if (n == 0)
            T_OK(docs == NULL);
        for (k = 0; k < n; k++) {
            char *got = print_doc(&docs[k]);

            T_EQ_STR(got, cases[i].json[k]);
            T_EQ_INT(docs[k].line, cases[i].line[k]);
            free(got);
        }
        yaml_docs_free(docs, (size_t)n);
    }
}

static void test_parse_one(void)
{
    static const char not_terminated[] = {'a', ':', ' ', '1', 'x', 'y', ':'};
    struct pv_err err = {PV_OK, ""};
    cJSON *sentinel = (cJSON *)&err;
    cJSON *j = sentinel;
    char *got;

    got = convert("");
    T_EQ_STR(got, "{}");
    free(got);
    got = convert("---\n");
    T_EQ_STR(got, "{}");
    free(got);
    got = convert("# nothing here\n");
    T_EQ_STR(got, "{}");
    free(got);
    got = convert_with(not_terminated, 4, &LIM, &err);
    T_EQ_STR(got, "{\"a\":1}");
    free(got);
    yaml_docs_free(NULL, 0);

    T_EQ_INT(yaml_parse_one("a: 1\n---\nb: 2\n", 14, "cfg.yaml", &LIM, &j, &err), PV_EINVAL);
    T_OK(j == sentinel);
    T_EQ_INT(err.code, PV_EINVAL);
    T_OK(strncmp(err.msg, "cfg.yaml:3:1: ", 14) == 0);
    /* 'err' may be NULL; *out is untouched on failure */
    T_EQ_INT(yaml_parse_one("[", 1, "t", &LIM, &j, NULL), PV_EPARSE);
    T_OK(j == sentinel);
}

/* ---- Limits ---- */

/* Returns 'open' repeated 'n' times, then 'mid', then 'close' repeated 'n' times.
 * Caller frees. */
static char *nested(const char *open, const char *mid, const char *close, size_t n)
{
    size_t lo = strlen(open);
    size_t lm = strlen(mid);
    size_t lc = strlen(close);
    char *s = xmalloc(n * (lo + lc) + lm + 1);
    char *p = s;
    size_t i;

    for (i = 0; i < n; i++, p += lo)
        memcpy(p, open, lo);
    memcpy(p, mid, lm);
    p += lm;
    for (i = 0; i < n; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

static pv_status parse_with(const char *yaml, const struct yaml_limits *lim, struct pv_err *err)
{
    struct yaml_doc *docs = NULL;
    size_t n = 0;
    pv_status rc;

    rc = yaml_parse_docs(yaml, strlen(yaml), "t.yaml", lim, &docs, &n, err);
    yaml_docs_free(docs, n);
    return rc;
}

static void test_depth(void)
{
    static const struct {
        const char *open;
        const char *mid;
        const char *close;
    } shapes[] = {{"[", "1", "]"}, {"{a: ", "1", "}"}, {"- ", "x", ""}};
    static const struct yaml_limits lim6 = {6, 1000000};
    static const struct yaml_limits lim0 = {0, 1000000};
    struct pv_err err = {PV_OK, ""};
    size_t i;

    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        char *ok = nested(shapes[i].open, shapes[i].mid, shapes[i].close, 100);
        char *deep = nested(shapes[i].open, shapes[i].mid, shapes[i].close, 101);
        char *deeper = nested(shapes[i].open, shapes[i].mid, shapes[i].close, 10000);

        T_EQ_INT(parse_with(ok, &LIM, &err), PV_OK);
        T_EQ_INT(parse_with(deep, &LIM, &err), PV_EDEPTH);
        T_EQ_INT(parse_with(deeper, &LIM, &err), PV_EDEPTH);
        if (!T_OK(strncmp(err.msg, "t.yaml:1:", 9) == 0))
            t_diag("message: %s", err.msg);
        free(ok);
        free(deep);
        free(deeper);
    }
    /* An alias counts as deep as what it copies: 3 open levels + 4 copied > 6. */
    T_EQ_INT(parse_with("a: &a [[[[1]]]]\nb: [*a]\n", &lim6, &err), PV_OK);
    T_EQ_INT(parse_with("a: &a [[[[1]]]]\nb: [[*a]]\n", &lim6, &err), PV_EDEPTH);
    T_OK(strncmp(err.msg, "t.yaml:2:", 9) == 0);
    T_EQ_INT(parse_with("just a scalar", &lim0, &err), PV_OK);
    T_EQ_INT(parse_with("[]", &lim0, &err), PV_EDEPTH);
}

static void test_nodes(void)
{
    static const char laughs[] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                                 "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                 "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                 "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                                 "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                                 "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                                 "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                                 "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                                 "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    static const char merges[] = "a: &a {x: 1, y: 2, z: 3}\n"
                                 "b: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a]}\n"
                                 "c: &c {<<: [*b, *b, *b, *b, *b, *b, *b, *b]}\n";
    static const struct yaml_limits lim4 = {100, 4};
    static const struct yaml_limits lim40 = {100, 40};
    struct pv_err err = {PV_OK, ""};
    clock_t start = clock();

    T_EQ_INT(parse_with(laughs, &LIM, &err), PV_ETOOBIG);
    T_OK(strstr(err.msg, "more than 1000000 YAML nodes") != NULL);
    T_OK((double)(clock() - start) / CLOCKS_PER_SEC < 5.0); /* refused, not built */
    T_EQ_INT(parse_with(merges, &lim40, &err), PV_ETOOBIG);
    T_EQ_INT(parse_with("[1, 2, 3]", &lim4, &err), PV_OK);
    T_EQ_INT(parse_with("[1, 2, 3, 4]", &lim4, &err), PV_ETOOBIG);
    /* the budget covers the whole stream, not each document */
    T_EQ_INT(parse_with("1\n---\n2\n---\n3\n---\n4\n", &lim4, &err), PV_OK);
    T_EQ_INT(parse_with("1\n---\n2\n---\n3\n---\n4\n---\n5\n", &lim4, &err), PV_ETOOBIG);
}

/* ---- Malformed input ---- */

static void test_syntax_errors(void)
{
    static const struct {
        const char *yaml;
        const char *prefix; /* expected start of the message */
    } cases[] = {
        {"a: 1\nb: [1, 2\nc: 3\n", "t.yaml:3:2: "},
        {"a: 1\n  b: 2\n", "t.yaml:2:4: "},
        {"a:\n\tb: 1\n", "t.yaml:2:1: "},
        {"a: 'unterminated\n", "t.yaml:2:1: "},
        {"key: [a, b}\n", "t.yaml:1:11: "},
        {"a: b: c\n", "t.yaml:1:5: "},
        {"x: 1\ny: 2\nz: *\n", "t.yaml:3:5: "},
        {"%YAML 2.0\n---\na\n", "t.yaml:1:1: "},
        {"- a\nb: c\n", "t.yaml:2:1: "},
    };
    struct pv_err err = {PV_OK, ""};
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        T_EQ_INT(parse_with(cases[i].yaml, &LIM, &err), PV_EPARSE);
        T_EQ_INT(err.code, PV_EPARSE);
        if (!T_OK(strncmp(err.msg, cases[i].prefix, strlen(cases[i].prefix)) == 0))
            t_diag("input: %s\n# message: %s", cases[i].yaml, err.msg);
    }
}

static void test_garbage(void)
{
    static const struct {
        const char *bytes;
        size_t len;
        const char *prefix;
    } cases[] = {
#define BYTES(s) s, sizeof(s) - 1
        {BYTES("\xff\xfe\x00g"), "t.yaml:1:1: "},
        {BYTES("a: \xc3\x28\n"), "t.yaml:1:5: "}, /* bad trailing octet */
        {BYTES("a: 1\nb: \x01\n"), "t.yaml:2:4: "},
        {BYTES("a: 1\0b: 2"), "t.yaml:1:5: "},
        {BYTES("a: \xed\xa0\x80\n"), "t.yaml:1:4: "}, /* UTF-16 surrogate */
        {BYTES("\xc0\xaf"), "t.yaml:1:1: "},          /* overlong */
#undef BYTES
    };
    static const char alphabet[] = "[]{}:,-?&*!|>'\"\n\t #%@`~ab1.0x\\";
    struct pv_err err = {PV_OK, ""};
    uint32_t seed = 12345;
    int is_ok = 1;
    size_t i;
    size_t k;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct yaml_doc *docs = NULL;
        size_t n = 0;
        pv_status rc;

        rc = yaml_parse_docs(cases[i].bytes, cases[i].len, "t.yaml", &LIM, &docs, &n, &err);
        T_EQ_INT(rc, PV_EPARSE);
        if (!T_OK(strncmp(err.msg, cases[i].prefix, strlen(cases[i].prefix)) == 0))
            t_diag("message: %s", err.msg);
        if (rc == PV_OK)
            yaml_docs_free(docs, n);
    }
    /* Random bytes and random YAML punctuation: any status, never a crash or a leak. */
    for (i = 0; i < 4000; i++) {
        char buf[96];
        struct yaml_doc *docs = NULL;
        size_t n = 0;
        pv_status rc;

        for (k = 0; k < sizeof(buf); k++) {
            seed = seed * 1103515245u + 12345u;
            buf[k] = i % 2 ? (char)(seed >> 16) : alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
        }
        rc = yaml_parse_docs(buf, sizeof(buf), "fuzz", &LIM, &docs, &n, &err);
        if (rc != PV_OK && rc != PV_EPARSE && rc != PV_EINVAL)
            is_ok = 0;
        if (rc == PV_OK)
            yaml_docs_free(docs, n);
        else if (docs != NULL || strncmp(err.msg, "fuzz:", 5) != 0)
            is_ok = 0;
    }
    T_OK(is_ok);
}

int main(void)
{
    test_scalars();
    test_docs();
    test_nonfinite();
    test_multi_docs();
    test_parse_one();
    test_depth();
    test_nodes();
    test_syntax_errors();
    test_garbage();
    return t_done();
}
