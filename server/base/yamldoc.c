/* server/base/yamldoc.c: YAML text -> cJSON documents through libyaml's event API. Owns the
 * go-yaml v2 scalar rules, alias and merge-key expansion, and the depth and node limits.
 * Nothing here recurses on the C stack; cJSON's own recursion is bounded by max_depth. */
#include "yamldoc.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "xalloc.h"

/* cJSON reports a failed allocation with NULL or false. Like xmalloc, give up: input
 * sizes are capped before we get here, so running out means the machine is full. */
static _Noreturn void json_oom(void)
{
    fprintf(stderr, "paved: out of memory building JSON\n");
    abort();
}

static cJSON *must(cJSON *j)
{
    if (j == NULL)
        json_oom();
    return j;
}

static void must_add(cJSON_bool is_ok)
{
    if (!is_ok)
        json_oom();
}

/* ---- String-keyed hash table: duplicate mapping keys and anchors ---- */

struct slot {
    const char *key; /* borrowed from the value it maps to */
    void *val;
};

struct strmap {
    struct slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t n;
    uint64_t seed; /* per-parse, so colliding keys cannot be precomputed */
};

static uint64_t hash_str(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325u ^ seed;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3u;
    }
    return h ^ (h >> 31);
}

/* Returns the slot holding 'key', or the empty slot where it belongs. Needs cap > 0. */
static struct slot *map_find(const struct strmap *m, const char *key)
{
    size_t i = (size_t)hash_str(key, m->seed) & (m->cap - 1);

    while (m->slots[i].key != NULL && strcmp(m->slots[i].key, key) != 0)
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static void *map_get(const struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    return map_find(m, key)->val;
}

/* Inserts or replaces; 'key' must stay valid while it is in the table. */
static void map_put(struct strmap *m, const char *key, void *val)
{
    struct slot *s;

    if ((m->n + 1) * 2 > m->cap) {
        struct strmap bigger = {NULL, m->cap ? m->cap * 2 : 8, 0, m->seed};
        size_t i;

        bigger.slots = xcalloc(bigger.cap, sizeof(*bigger.slots));
        for (i = 0; i < m->cap; i++) {
            if (m->slots[i].key != NULL) {
                *map_find(&bigger, m->slots[i].key) = m->slots[i];
                bigger.n++;
            }
        }
        free(m->slots);
        *m = bigger;
    }
    s = map_find(m, key);
    if (s->key == NULL)
        m->n++;
    s->key = key;
    s->val = val;
}

static void map_fini(struct strmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}

/* ---- Scalar resolution (go-yaml v2 resolve.go) ---- */

enum kind { K_NULL, K_BOOL, K_INT, K_FLOAT, K_STR };

struct scalar {
    enum kind kind;
    int is_true;
    double num;   /* K_INT and K_FLOAT */
    int64_t i;    /* K_INT when is_int64 */
    int is_int64; /* K_INT that Go's ParseInt accepted (not a uint64 or big.Int) */
};

/* go-yaml v2's resolveMap: looked up only when the first character has a hint. */
static const struct words {
    const char *spelling[5]; /* NULL-padded */
    enum kind kind;
    int is_true;
    double num;
} WORDS[] = {
    {{"y", "Y", "yes", "Yes", "YES"}, K_BOOL, 1, 0},
    {{"true", "True", "TRUE"}, K_BOOL, 1, 0},
    {{"on", "On", "ON"}, K_BOOL, 1, 0},
    {{"n", "N", "no", "No", "NO"}, K_BOOL, 0, 0},
    {{"false", "False", "FALSE"}, K_BOOL, 0, 0},
    {{"off", "Off", "OFF"}, K_BOOL, 0, 0},
    {{"", "~", "null", "Null", "NULL"}, K_NULL, 0, 0},
    {{".nan", ".NaN", ".NAN"}, K_FLOAT, 0, NAN},
    {{".inf", ".Inf", ".INF"}, K_FLOAT, 0, INFINITY},
    {{"+.inf", "+.Inf", "+.INF"}, K_FLOAT, 0, INFINITY},
    {{"-.inf", "-.Inf", "-.INF"}, K_FLOAT, 0, -INFINITY},
};

/* go-yaml v2's resolveTable: 'S'ign, 'D'igit, 'M'ap word, '.', or 0 (always a string). */
static char hint_of(unsigned char ch)
{
    if (ch == '+' || ch == '-')
        return 'S';
    if (ch >= '0' && ch <= '9')
        return 'D';
    if (ch != '\0' && strchr("yYnNtTfFoO~", ch) != NULL)
        return 'M';
    if (ch == '.')
        return '.';
    return 0;
}

enum { NUM_OK, NUM_SYNTAX, NUM_RANGE };

static int digit_value(unsigned char ch)
{
    unsigned char lower = ch | 0x20;

    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (lower >= 'a' && lower <= 'z')
        return lower - 'a' + 10;
    return -1;
}

/* Go's strconv.ParseUint(s, base, 64), where base 0 reads a 0b/0o/0x/0 prefix. Returns
 * NUM_OK, or whichever of NUM_SYNTAX/NUM_RANGE Go would report first. Also sets
 * '*approx' to the value as a double (still meaningful past UINT64_MAX) and
 * '*is_wellformed' when every character is a digit, as big.Int.SetString requires. */
static int parse_uint_go(const char *s, int base, uint64_t *out, double *approx, int *is_wellformed)
{
    uint64_t n = 0;
    int rc = NUM_OK;

    *approx = 0;
    *is_wellformed = *s != '\0';
    if (*s == '\0')
        return NUM_SYNTAX;
    if (base == 0) {
        base = 10;
        if (s[0] == '0') {
            int prefix = strlen(s) >= 3 ? (unsigned char)s[1] | 0x20 : 0;

            if (prefix == 'b' || prefix == 'o' || prefix == 'x') {
                base = prefix == 'b' ? 2 : prefix == 'o' ? 8 : 16;
                s += 2;
            } else {
                base = 8;
                s++;
            }
        }
    }
    for (; *s != '\0'; s++) {
        int d = digit_value((unsigned char)*s);

        if (d < 0 || d >= base) {
            if (rc == NUM_OK)
                rc = NUM_SYNTAX;
            *is_wellformed = 0;
            continue;
        }
        *approx = *approx * base + d;
        if (rc == NUM_OK && n > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            rc = NUM_RANGE;
        n = n * (uint64_t)base + (uint64_t)d;
    }
    if (rc == NUM_OK)
        *out = n;
    return rc;
}

/* Go's strconv.ParseInt(s, base, 64). */
static int parse_int_go(const char *s, int base, int64_t *out)
{
    int is_neg = *s == '-';
    uint64_t u = 0;
    double approx;
    int is_wellformed;
    int rc;

    if (*s == '+' || *s == '-')
        s++;
    rc = parse_uint_go(s, base, &u, &approx, &is_wellformed);
    if (rc)
        return rc;
    if (u > (uint64_t)INT64_MAX + (is_neg ? 1u : 0u))
        return NUM_RANGE;
    if (is_neg)
        *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    else
        *out = (int64_t)u;
    return NUM_OK;
}

/* go-yaml v2's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static int is_float_syntax(const char *s)
{
    size_t n;

    if (*s == '+' || *s == '-')
        s++;
    if (*s == '.') {
        for (n = 0, s++; *s >= '0' && *s <= '9'; s++)
            n++;
        if (n == 0)
            return 0;
    } else {
        for (n = 0; *s >= '0' && *s <= '9'; s++)
            n++;
        if (n == 0)
            return 0;
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9')
                s++;
        }
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        for (n = 0; *s >= '0' && *s <= '9'; s++)
            n++;
        if (n == 0)
            return 0;
    }
    return *s == '\0';
}

/* Go's strconv.ParseFloat on text that passed is_float_syntax(): fails only when the
 * value overflows. (strtod follows the C locale; paved never calls setlocale.) */
static int parse_float(const char *s, double *out)
{
    double d;

    errno = 0;
    d = strtod(s, NULL);
    if (errno == ERANGE && isinf(d))
        return 0;
    *out = d;
    return 1;
}

/* The 'D'igit and 'S'ign branch of go-yaml v2's resolve(). */
static void resolve_number(const char *in, size_t len, struct scalar *out)
{
    char *plain = xmalloc(len + 1);
    size_t n = 0;
    size_t i;
    uint64_t u;
    double approx;
    int is_wellformed;
    int uint_rc;

    for (i = 0; i < len; i++)
        if (in[i] != '_')
            plain[n++] = in[i];
    plain[n] = '\0';
    if (parse_int_go(plain, 0, &out->i) == NUM_OK) {
        out->kind = K_INT;
        out->is_int64 = 1;
        out->num = (double)out->i;
        goto done;
    }
    uint_rc = parse_uint_go(plain, 0, &u, &approx, &is_wellformed);
    if (uint_rc == NUM_OK) {
        out->kind = K_INT;
        out->num = (double)u;
        goto done;
    }
    if (is_float_syntax(plain) && parse_float(plain, &out->num)) {
        out->kind = K_FLOAT;
        goto done;
    }
    /* go-yaml v2 retries "0b..." with base 2, which also admits a sign after the prefix. */
    if (strncmp(plain, "0b", 2) == 0) {
        double ignored;
        int ignored_wf;

        if (parse_int_go(plain + 2, 2, &out->i) == NUM_OK) {
            out->kind = K_INT;
            out->is_int64 = 1;
            out->num = (double)out->i;
            goto done;
        }
        if (parse_uint_go(plain + 2, 2, &u, &ignored, &ignored_wf) == NUM_OK) {
            out->kind = K_INT;
            out->num = (double)u;
            goto done;
        }
    }
    /* Past uint64: go-yaml v2 returns a big.Int; JSON holds the nearest double. */
    if (uint_rc == NUM_RANGE && is_wellformed) {
        out->kind = K_INT;
        out->num = approx;
    }
done:
    free(plain);
}

/* Resolves an untagged plain scalar 's' ('len' bytes, NUL-terminated, no NUL inside). */
static void resolve_plain(const char *s, size_t len, struct scalar *out)
{
    char hint = len == 0 ? 'N' : hint_of((unsigned char)s[0]);
    size_t i;
    size_t k;

    memset(out, 0, sizeof(*out));
    out->kind = K_STR;
    if (hint == 0)
        return;
    for (i = 0; i < sizeof(WORDS) / sizeof(WORDS[0]); i++) {
        for (k = 0; k < 5 && WORDS[i].spelling[k] != NULL; k++) {
            if (strcmp(s, WORDS[i].spelling[k]) == 0) {
                out->kind = WORDS[i].kind;
                out->is_true = WORDS[i].is_true;
                out->num = WORDS[i].num;
                return;
            }
        }
    }
    if (hint == '.') {
        if (is_float_syntax(s) && parse_float(s, &out->num))
            out->kind = K_FLOAT;
    } else if (hint == 'D' || hint == 'S') {
        resolve_number(s, len, out);
    }
}

enum tag { TAG_NONE, TAG_STR, TAG_INT, TAG_FLOAT, TAG_BOOL, TAG_NULL, TAG_MERGE, TAG_OTHER };

static enum tag tag_of(const yaml_char_t *tag)
{
    static const char prefix[] = "tag:yaml.org,2002:";
    static const struct {
        const char *name;
        enum tag tag;
    } known[] = {{"str", TAG_STR},   {"int", TAG_INT},   {"float", TAG_FLOAT},
                 {"bool", TAG_BOOL}, {"null", TAG_NULL}, {"merge", TAG_MERGE}};
    const char *t = (const char *)tag;
    size_t i;

    if (t == NULL)
        return TAG_NONE;
    if (strncmp(t, prefix, sizeof(prefix) - 1) != 0)
        return TAG_OTHER;
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(t + sizeof(prefix) - 1, known[i].name) == 0)
            return known[i].tag;
    return TAG_OTHER; /* !!timestamp, !!binary, !!set...: kept as text */
}

static const char *kind_name(enum kind k)
{
    switch (k) {
    case K_NULL:
        return "!!null";
    case K_BOOL:
        return "!!bool";
    case K_INT:
        return "!!int";
    case K_FLOAT:
        return "!!float";
    case K_STR:
        return "!!str";
    }
    return "?";
}

static cJSON *scalar_json(const struct scalar *sc, const char *text)
{
    switch (sc->kind) {
    case K_NULL:
        return must(cJSON_CreateNull());
    case K_BOOL:
        return must(cJSON_CreateBool(sc->is_true));
    case K_INT:
    case K_FLOAT:
        return must(cJSON_CreateNumber(sc->num));
    case K_STR:
        break;
    }
    return must(cJSON_CreateString(text));
}

/* strconv.FormatFloat(v, 'g', -1, 32), as sigs.k8s.io/yaml spells float keys. */
static void format_float32(double v, char *buf, size_t size)
{
    float f;
    int digits;
    int exp10;
    const char *e;

    if (isnan(v) || isinf(v) || fabs(v) > FLT_MAX) {
        snprintf(buf, size, "%s", isnan(v) ? ".nan" : v > 0 ? ".inf" : "-.inf");
        return;
    }
    f = (float)v;
    for (digits = 1; digits < 9; digits++) {
        snprintf(buf, size, "%.*e", digits - 1, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    snprintf(buf, size, "%.*e", digits - 1, (double)f);
    e = strchr(buf, 'e');
    exp10 = e != NULL ? (int)strtol(e + 1, NULL, 10) : 0;
    if (exp10 >= -4 && exp10 < 6)
        snprintf(buf, size, "%.*f", digits - 1 - exp10 > 0 ? digits - 1 - exp10 : 0, (double)f);
}

/* Spells a resolved scalar as a JSON object key the way sigs.k8s.io/yaml does. Returns
 * the key (caller frees), or NULL and sets '*problem'. */
static char *key_text(const struct scalar *sc, const char *text, const char **problem)
{
    char buf[64];

    switch (sc->kind) {
    case K_STR:
        return xstrdup(text);
    case K_BOOL:
        return xstrdup(sc->is_true ? "true" : "false");
    case K_INT:
        if (!sc->is_int64) {
            *problem = "integer mapping key beyond 64 bits is not supported";
            return NULL;
        }
        snprintf(buf, sizeof(buf), "%" PRId64, sc->i);
        return xstrdup(buf);
    case K_FLOAT:
        format_float32(sc->num, buf, sizeof(buf));
        return xstrdup(buf);
    case K_NULL:
        break;
    }
    *problem = "null mapping key is not supported";
    return NULL;
}

/* ---- Conversion state ---- */

struct anchor {
    char *name;              /* owned; the anchor table's key */
    const cJSON *node;       /* borrows: lives in the document tree or the graveyard */
    char *key;               /* owned: the node spelled as a mapping key, or NULL */
    const char *key_problem; /* static: why 'key' is NULL */
    size_t n_nodes;          /* nodes an alias copies */
    size_t height;           /* nesting levels an alias adds (0 for a scalar) */
    unsigned long seq;       /* which definition of 'name' this is */
    int is_open;             /* its collection is still being parsed */
};

/* One open mapping or sequence. */
struct frame {
    cJSON *node; /* owned until closed and handed to the parent */
    int is_map;
    char *key;       /* owned: key awaiting its value; NULL when a key is next */
    int is_merge;    /* 'key' is the merge key '<<' */
    size_t key_line; /* where 'key' is, for messages */
    size_t key_col;
    struct strmap keys;          /* mappings: key -> cJSON item already in 'node' */
    struct strmap explicit_keys; /* keys written out in this mapping -> 1 + their line */
    struct anchor *anchor;       /* borrows, or NULL */
    unsigned long anchor_seq;    /* 'anchor' is ours while anchor->seq equals this */
    size_t nodes_at_open;
    size_t height; /* 1 + the tallest child so far */
};

struct conv {
    const char *text;
    size_t len;
    const char *name;
    const struct yaml_limits *lim;
    struct pv_err *err;
    size_t line; /* of the event being handled, 1-based */
    size_t col;
    size_t n_nodes; /* over the whole stream */
    struct frame *stack;
    size_t depth;
    size_t stack_cap;
    struct strmap anchors; /* name -> struct anchor *, per document */
    unsigned long anchor_seq;
    /* Nodes dropped from the tree (a replaced duplicate key, a merged mapping) that an
     * anchor may still point to; freed when the document ends. */
    cJSON *graveyard;
    cJSON *root;
    int is_root_empty; /* the document has no content */
    size_t doc_line;
    size_t content_line; /* 0 until the document's first node */
    struct yaml_doc *docs;
    size_t n_docs;
    size_t docs_cap;
};

static pv_status fail(struct conv *c, pv_status rc, size_t line, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static pv_status fail(struct conv *c, pv_status rc, size_t line, size_t col, const char *fmt, ...)
{
    char what[PV_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return pv_err_set(c->err, rc, "%s:%zu:%zu: %s", c->name, line, col, what);
}

static pv_status count_nodes(struct conv *c, size_t n)
{
    if (n > c->lim->max_nodes - c->n_nodes)
        return fail(c, PV_ETOOBIG, c->line, c->col,
                    "more than %zu YAML nodes (each alias counts as a full copy)",
                    c->lim->max_nodes);
    c->n_nodes += n;
    return PV_OK;
}

/* Checks that a node 'height' levels tall fits below the open collections. */
static pv_status check_depth(struct conv *c, size_t height)
{
    if (height > c->lim->max_depth || c->depth > c->lim->max_depth - height)
        return fail(c, PV_EDEPTH, c->line, c->col, "YAML nested deeper than %zu levels",
                    c->lim->max_depth);
    return PV_OK;
}

static void bury(struct conv *c, cJSON *node)
{
    if (c->graveyard == NULL)
        c->graveyard = must(cJSON_CreateArray());
    must_add(cJSON_AddItemToArray(c->graveyard, node));
}

static struct frame *top_frame(struct conv *c)
{
    return c->depth > 0 ? &c->stack[c->depth - 1] : NULL;
}

static int expects_key(const struct frame *f)
{
    return f != NULL && f->is_map && f->key == NULL;
}

/* Returns the record for a new definition of anchor 'name'. */
static struct anchor *define_anchor(struct conv *c, const char *name)
{
    struct anchor *a = map_get(&c->anchors, name);

    if (a == NULL) {
        a = xcalloc(1, sizeof(*a));
        a->name = xstrdup(name);
        map_put(&c->anchors, a->name, a);
    }
    free(a->key);
    a->key = NULL;
    a->key_problem = "a mapping key must be a scalar";
    a->node = NULL;
    a->seq = ++c->anchor_seq;
    a->is_open = 0;
    return a;
}

static void clear_anchors(struct conv *c)
{
    size_t i;

    for (i = 0; i < c->anchors.cap; i++) {
        struct anchor *a = c->anchors.slots[i].val;

        if (a != NULL) {
            free(a->name);
            free(a->key);
            free(a);
        }
    }
    map_fini(&c->anchors);
}

/* Puts 'item' (takes it) into mapping 'f' under 'key' (borrowed), replacing a value
 * an earlier merge put there. */
static void put(struct conv *c, struct frame *f, const char *key, cJSON *item)
{
    cJSON *old = map_get(&f->keys, key);

    if (old != NULL)
        bury(c, cJSON_DetachItemViaPointer(f->node, old));
    must_add(cJSON_AddItemToObject(f->node, key, item));
    map_put(&f->keys, item->string, item);
}

/* A key written out in the mapping: it overrides merged values, and writing it twice
 * is an error, as kubectl reports it ("key already set in map"): otherwise the object
 * a policy checks and the one the cluster stores could differ. */
static pv_status insert(struct conv *c, struct frame *f, const char *key, cJSON *item)
{
    uintptr_t first = (uintptr_t)map_get(&f->explicit_keys, key);

    if (first != 0) {
        pv_status rc =
            fail(c, PV_EINVAL, f->key_line, f->key_col,
                 "mapping key \"%s\" already defined at line %zu", key, (size_t)(first - 1));

        cJSON_Delete(item);
        return rc;
    }
    put(c, f, key, item);
    f->explicit_keys.seed = f->keys.seed;
    map_put(&f->explicit_keys, item->string, (void *)(uintptr_t)(f->key_line + 1));
    return PV_OK;
}

/* Merged keys never replace keys written out in the mapping, before or after '<<'. */
static void merge_object(struct conv *c, struct frame *f, const cJSON *obj)
{
    const cJSON *ch;

    for (ch = obj->child; ch != NULL; ch = ch->next)
        if (map_get(&f->explicit_keys, ch->string) == NULL)
            put(c, f, ch->string, must(cJSON_Duplicate(ch, 1)));
}

/* Applies merge key '<<' with 'value' (takes it; 'n_nodes' big) to mapping 'f'. */
static pv_status merge(struct conv *c, struct frame *f, cJSON *value, size_t n_nodes)
{
    pv_status rc = PV_OK;
    const cJSON *el = NULL;

    if (cJSON_IsArray(value)) {
        for (el = value->child; el != NULL; el = el->next)
            if (!cJSON_IsObject(el))
                break;
    }
    if (!cJSON_IsObject(value) && !(cJSON_IsArray(value) && el == NULL)) {
        rc = fail(c, PV_EINVAL, f->key_line, f->key_col,
                  "merge key '<<' needs a mapping or a sequence of mappings");
        goto done;
    }
    /* The copies are new nodes: charge them again. */
    rc = count_nodes(c, n_nodes);
    if (rc)
        goto done;
    if (cJSON_IsObject(value)) {
        merge_object(c, f, value);
    } else if (value->child != NULL) {
        /* Earlier mappings in the sequence take precedence, so apply them last. */
        for (el = value->child->prev;; el = el->prev) {
            merge_object(c, f, el);
            if (el == value->child)
                break;
        }
    }
done:
    bury(c, value); /* an anchor may point into it */
    return rc;
}

/* Hands a finished node (takes it) to the open collection, or makes it the root. */
static pv_status add_value(struct conv *c, cJSON *node, size_t height, size_t n_nodes)
{
    struct frame *f = top_frame(c);
    pv_status rc = PV_OK;
    char *key;

    if (f == NULL) {
        PV_ASSERT(c->root == NULL);
        c->root = node;
        return PV_OK;
    }
    if (height + 1 > f->height)
        f->height = height + 1;
    if (!f->is_map) {
        must_add(cJSON_AddItemToArray(f->node, node));
        return PV_OK;
    }
    PV_ASSERT(f->key != NULL);
    key = f->key;
    f->key = NULL;
    if (f->is_merge)
        rc = merge(c, f, node, n_nodes);
    else
        rc = insert(c, f, key, node);
    f->is_merge = 0;
    free(key);
    return rc;
}

static void note_content(struct conv *c)
{
    if (c->content_line == 0)
        c->content_line = c->line;
}

/* ---- Events ---- */

static pv_status on_scalar(struct conv *c, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *anchor = (const char *)ev->data.scalar.anchor;
    enum tag tag = tag_of(ev->data.scalar.tag);
    int is_plain = tag == TAG_NONE && ev->data.scalar.plain_implicit;
    struct frame *f = top_frame(c);
    const char *problem = NULL;
    struct scalar sc;
    cJSON *node = NULL;
    pv_status rc;

    rc = count_nodes(c, 1);
    if (rc)
        return rc;
    /* JSON strings end at NUL: a value that hides one could slip past a policy. */
    if (memchr(text, '\0', len) != NULL)
        return fail(c, PV_EINVAL, c->line, c->col, "NUL character in a scalar");
    if (is_plain) {
        resolve_plain(text, len, &sc);
    } else if (tag == TAG_INT || tag == TAG_FLOAT || tag == TAG_BOOL || tag == TAG_NULL) {
        enum kind want = tag == TAG_INT     ? K_INT
                         : tag == TAG_FLOAT ? K_FLOAT
                         : tag == TAG_BOOL  ? K_BOOL
                                            : K_NULL;

        resolve_plain(text, len, &sc);
        if (want == K_FLOAT && sc.kind == K_INT && sc.is_int64)
            sc.kind = K_FLOAT;
        if (sc.kind != want)
            return fail(c, PV_EINVAL, c->line, c->col, "cannot decode %s `%.40s` as a %s",
                        kind_name(sc.kind), text, kind_name(want));
    } else {
        memset(&sc, 0, sizeof(sc));
        sc.kind = K_STR;
    }

    if (!expects_key(f) || anchor != NULL)
        node = scalar_json(&sc, text);
    if (anchor != NULL) {
        struct anchor *a = define_anchor(c, anchor);

        a->node = node;
        a->n_nodes = 1;
        a->height = 0;
        a->key = key_text(&sc, text, &a->key_problem);
    }
    if (expects_key(f)) {
        if (node != NULL)
            bury(c, node); /* kept for the anchor's aliases */
        f->key_line = c->line;
        f->key_col = c->col;
        f->is_merge = strcmp(text, "<<") == 0 && (is_plain || tag == TAG_MERGE);
        f->key = key_text(&sc, text, &problem);
        if (f->key == NULL)
            return fail(c, PV_EINVAL, c->line, c->col, "%s", problem);
        return PV_OK;
    }
    if (f == NULL && len == 0 && is_plain && anchor == NULL)
        c->is_root_empty = 1;
    else
        note_content(c);
    return add_value(c, node, 0, 1);
}

static pv_status on_alias(struct conv *c, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const struct anchor *a = map_get(&c->anchors, name);
    struct frame *f = top_frame(c);
    pv_status rc;

    note_content(c);
    if (a == NULL)
        return fail(c, PV_EINVAL, c->line, c->col, "unknown anchor '%.64s' referenced", name);
    if (a->is_open)
        return fail(c, PV_EINVAL, c->line, c->col, "anchor '%.64s' value contains itself", name);
    if (expects_key(f)) {
        rc = count_nodes(c, 1);
        if (rc)
            return rc;
        if (a->key == NULL)
            return fail(c, PV_EINVAL, c->line, c->col, "%s", a->key_problem);
        f->key_line = c->line;
        f->key_col = c->col;
        f->key = xstrdup(a->key);
        f->is_merge = 0; /* go-yaml v2 never merges through an alias key */
        return PV_OK;
    }
    /* Check before copying, so an alias bomb is refused without being built. */
    rc = check_depth(c, a->height);
    if (rc == PV_OK)
        rc = count_nodes(c, a->n_nodes);
    if (rc)
        return rc;
    return add_value(c, must(cJSON_Duplicate(a->node, 1)), a->height, a->n_nodes);
}

static pv_status on_start(struct conv *c, const yaml_event_t *ev, int is_map)
{
    const char *anchor =
        (const char *)(is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
    struct frame *f;
    pv_status rc;

    note_content(c);
    if (expects_key(top_frame(c)))
        return fail(c, PV_EINVAL, c->line, c->col, "a mapping key must be a scalar, not a %s",
                    is_map ? "mapping" : "sequence");
    rc = check_depth(c, 1);
    if (rc == PV_OK)
        rc = count_nodes(c, 1);
    if (rc)
        return rc;
    if (c->depth == c->stack_cap) {
        c->stack_cap = c->stack_cap ? c->stack_cap * 2 : 16;
        c->stack = xrealloc(c->stack, c->stack_cap * sizeof(*c->stack));
    }
    f = &c->stack[c->depth++];
    memset(f, 0, sizeof(*f));
    f->node = must(is_map ? cJSON_CreateObject() : cJSON_CreateArray());
    f->is_map = is_map;
    f->keys.seed = (uint64_t)(uintptr_t)c * 0x9e3779b97f4a7c15u;
    f->nodes_at_open = c->n_nodes - 1;
    f->height = 1;
    if (anchor != NULL) {
        f->anchor = define_anchor(c, anchor);
        f->anchor->is_open = 1;
        f->anchor_seq = f->anchor->seq;
    }
    return PV_OK;
}

static pv_status on_end(struct conv *c)
{
    struct frame *f;
    cJSON *node;
    size_t height;
    size_t n_nodes;

    PV_ASSERT(c->depth > 0); /* libyaml pairs every start with an end */
    f = &c->stack[c->depth - 1];
    node = f->node;
    height = f->height;
    n_nodes = c->n_nodes - f->nodes_at_open;
    /* A later anchor of the same name, started inside this node, wins (as in go-yaml). */
    if (f->anchor != NULL && f->anchor->seq == f->anchor_seq) {
        f->anchor->node = node;
        f->anchor->n_nodes = n_nodes;
        f->anchor->height = height;
        f->anchor->is_open = 0;
    }
    free(f->key);
    map_fini(&f->keys);
    map_fini(&f->explicit_keys);
    c->depth--;
    return add_value(c, node, height, n_nodes);
}

static void end_document(struct conv *c)
{
    struct yaml_doc *d;
    size_t line = c->content_line ? c->content_line : c->doc_line;

    if (c->n_docs == c->docs_cap) {
        c->docs_cap = c->docs_cap ? c->docs_cap * 2 : 4;
        c->docs = xrealloc(c->docs, c->docs_cap * sizeof(*c->docs));
    }
    d = &c->docs[c->n_docs++];
    if (c->is_root_empty) {
        cJSON_Delete(c->root);
        c->root = NULL;
    }
    d->json = c->root;
    d->line = line > INT_MAX ? INT_MAX : (int)line;
    c->root = NULL;
    clear_anchors(c);
    cJSON_Delete(c->graveyard);
    c->graveyard = NULL;
}

static pv_status on_event(struct conv *c, const yaml_event_t *ev, int *is_done)
{
    c->line = ev->start_mark.line + 1;
    c->col = ev->start_mark.column + 1;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        c->doc_line = c->line;
        c->content_line = 0;
        c->is_root_empty = 0;
        return PV_OK;
    case YAML_DOCUMENT_END_EVENT:
        end_document(c);
        return PV_OK;
    case YAML_SCALAR_EVENT:
        return on_scalar(c, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(c, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(c, ev, 0);
    case YAML_MAPPING_START_EVENT:
        return on_start(c, ev, 1);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(c);
    case YAML_STREAM_END_EVENT:
        *is_done = 1;
        return PV_OK;
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
        return PV_OK;
    }
    return PV_OK;
}

/* Reader errors carry a byte offset rather than a mark. */
static void offset_to_mark(const struct conv *c, size_t offset, size_t *line, size_t *col)
{
    size_t i;

    *line = 1;
    *col = 1;
    for (i = 0; i < offset && i < c->len; i++) {
        if (c->text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static pv_status parser_error(struct conv *c, const yaml_parser_t *p)
{
    const char *problem = p->problem != NULL ? p->problem : "syntax error";
    size_t line;
    size_t col;

    if (p->error == YAML_MEMORY_ERROR)
        return pv_err_set(c->err, PV_ENOMEM, "%s: out of memory while parsing YAML", c->name);
    if (p->error == YAML_READER_ERROR) {
        offset_to_mark(c, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            return fail(c, PV_EPARSE, line, col, "%s (#x%X)", problem, (unsigned)p->problem_value);
        return fail(c, PV_EPARSE, line, col, "%s", problem);
    }
    line = p->problem_mark.line + 1;
    col = p->problem_mark.column + 1;
    if (p->context != NULL)
        return fail(c, PV_EPARSE, line, col, "%s (%s at line %zu)", problem, p->context,
                    (size_t)p->context_mark.line + 1);
    return fail(c, PV_EPARSE, line, col, "%s", problem);
}

static void conv_fini(struct conv *c)
{
    size_t i;

    for (i = 0; i < c->depth; i++) {
        cJSON_Delete(c->stack[i].node);
        free(c->stack[i].key);
        map_fini(&c->stack[i].keys);
        map_fini(&c->stack[i].explicit_keys);
    }
    free(c->stack);
    clear_anchors(c);
    cJSON_Delete(c->graveyard);
    cJSON_Delete(c->root);
    yaml_docs_free(c->docs, c->n_docs);
}

/* ---- Public ---- */

pv_status yaml_parse_docs(const char *text, size_t len, const char *name,
                          const struct yaml_limits *lim, struct yaml_doc **out, size_t *n_out,
                          struct pv_err *err)
{
    struct conv c;
    yaml_parser_t parser;
    yaml_event_t ev;
    pv_status rc = PV_OK;
    int is_done = 0;

    PV_ASSERT(lim != NULL && out != NULL && n_out != NULL);
    memset(&c, 0, sizeof(c));
    c.text = text != NULL ? text : "";
    c.len = text != NULL ? len : 0;
    c.name = name != NULL ? name : "yaml";
    c.lim = lim;
    c.err = err;
    c.anchors.seed = (uint64_t)(uintptr_t)&c * 0x9e3779b97f4a7c15u;
    if (!yaml_parser_initialize(&parser))
        return pv_err_set(err, PV_ENOMEM, "%s: cannot set up the YAML parser", c.name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)c.text, c.len);
    /* JSON wants UTF-8; without this libyaml would also accept UTF-16. */
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    while (!is_done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(&c, &parser);
            break;
        }
        rc = on_event(&c, &ev, &is_done);
        yaml_event_delete(&ev);
        if (rc)
            break;
    }
    yaml_parser_delete(&parser);
    if (rc == PV_OK) {
        *out = c.docs;
        *n_out = c.n_docs;
        c.docs = NULL;
        c.n_docs = 0;
    }
    conv_fini(&c);
    return rc;
}

void yaml_docs_free(struct yaml_doc *docs, size_t n)
{
    size_t i;

    if (docs == NULL)
        return;
    for (i = 0; i < n; i++)
        cJSON_Delete(docs[i].json);
    free(docs);
}

pv_status yaml_parse_one(const char *text, size_t len, const char *name,
                         const struct yaml_limits *lim, cJSON **out, struct pv_err *err)
{
    struct yaml_doc *docs = NULL;
    size_t n = 0;
    pv_status rc;

    rc = yaml_parse_docs(text, len, name, lim, &docs, &n, err);
    if (rc)
        return rc;
    if (n > 1) {
        rc = pv_err_set(err, PV_EINVAL, "%s:%d:1: expected one YAML document, found another",
                        name != NULL ? name : "yaml", docs[1].line);
        goto done;
    }
    if (n == 1 && docs[0].json != NULL) {
        *out = docs[0].json;
        docs[0].json = NULL;
    } else {
        *out = must(cJSON_CreateObject());
    }
done:
    yaml_docs_free(docs, n);
    return rc;
}
