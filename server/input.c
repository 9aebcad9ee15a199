/* server/input.c: finds manifest files, parses them (cJSON or libyaml through
 * base/yaml.c), expands List kinds, and remembers where each object came from. */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "xalloc.h"
#include "yamldoc.h"

static const struct yaml_limits manifest_limits = {.max_depth = 200, .max_nodes = 4000000};

void input_init(struct input_set *set)
{
    memset(set, 0, sizeof(*set));
}

void input_fini(struct input_set *set)
{
    for (size_t i = 0; i < set->n_roots; i++)
        cJSON_Delete(set->roots[i]);
    for (size_t i = 0; i < set->n_files; i++)
        free(set->files[i]);
    for (size_t i = 0; i < set->n_errors; i++)
        free(set->errors[i]);
    free(set->errors);
    free(set->roots);
    free(set->files);
    free(set->objs);
    memset(set, 0, sizeof(*set));
}

static void add_obj(struct input_set *set, const cJSON *o, const char *file, int doc, int item,
                    int line)
{
    struct input_obj *x;

    set->objs = xrealloc(set->objs, (set->n_objs + 1) * sizeof(*set->objs));
    x = &set->objs[set->n_objs++];
    x->object = o;
    x->file = file;
    x->doc = doc;
    x->item = item;
    x->line = line;
}

static pv_status check_object(const cJSON *o, const char *file, int line, int doc, int item,
                              struct pv_err *err)
{
    const cJSON *kind;
    char where[48] = "";

    if (item > 0)
        snprintf(where, sizeof(where), " (List item %d)", item);
    if (!cJSON_IsObject(o))
        return pv_err_set(err, PV_EINVAL,
                          "%s:%d: document %d%s is a %s, not a Kubernetes object (a mapping "
                          "with apiVersion and kind)",
                          file, line, doc, where,
                          cJSON_IsArray(o)    ? "list"
                          : cJSON_IsString(o) ? "string"
                          : cJSON_IsNumber(o) ? "number"
                          : cJSON_IsBool(o)   ? "boolean"
                                              : "null");
    kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    if (!cJSON_IsString(kind) || kind->valuestring[0] == '\0')
        return pv_err_set(err, PV_EINVAL,
                          "%s:%d: document %d%s has no \"kind\"; every Kubernetes object needs "
                          "apiVersion and kind",
                          file, line, doc, where);
    return PV_OK;
}

/* Adds the object of one document, expanding a *List into its items. */
static pv_status add_document(struct input_set *set, const cJSON *o, const char *file, int doc,
                              int line, struct pv_err *err)
{
    const cJSON *kind;
    const cJSON *items;
    pv_status rc = check_object(o, file, line, doc, 0, err);

    if (rc)
        return rc;
    kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    /* A captured AdmissionReview is decided as the object it carries. */
    if (strcmp(kind->valuestring, "AdmissionReview") == 0) {
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(o, "request");
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(req, "object");

        if (!cJSON_IsObject(obj))
            obj = cJSON_GetObjectItemCaseSensitive(req, "oldObject");
        if (!cJSON_IsObject(obj))
            return pv_err_set(err, PV_EINVAL,
                              "%s:%d: document %d is an AdmissionReview without request.object",
                              file, line, doc);
        rc = check_object(obj, file, line, doc, 0, err);
        if (rc == PV_OK)
            add_obj(set, obj, file, doc, 0, line);
        return rc;
    }
    items = cJSON_GetObjectItemCaseSensitive(o, "items");
    if (fs_has_suffix(kind->valuestring, "List") && cJSON_IsArray(items)) {
        int i = 0;
        const cJSON *it;

        cJSON_ArrayForEach(it, items)
        {
            i++;
            rc = check_object(it, file, line, doc, i, err);
            if (rc)
                return rc;
            add_obj(set, it, file, doc, i, line);
        }
        return PV_OK;
    }
    add_obj(set, o, file, doc, 0, line);
    return PV_OK;
}

static bool looks_like_json(const char *text, size_t len, const char *name)
{
    if (fs_has_suffix(name, ".json"))
        return true;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')
            continue;
        return text[i] == '{' || text[i] == '[';
    }
    return false;
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

pv_status input_add_text(struct input_set *set, const char *text, size_t len, const char *name,
                         struct pv_err *err)
{
    size_t first_obj = set->n_objs;
    size_t first_root = set->n_roots;
    const char *file;
    pv_status rc = PV_OK;

    const char *nul;

    set->files = xrealloc(set->files, (set->n_files + 1) * sizeof(*set->files));
    file = set->files[set->n_files++] = xstrdup(name);
    /* Manifests are UTF-8 text: a NUL byte would silently cut a string short in the
     * parsers, so the object decided would not be the one applied. */
    nul = memchr(text, '\0', len);
    if (nul != NULL) {
        int line;
        int col;

        line_col(text, nul, &line, &col);
        return pv_err_set(err, PV_EPARSE, "%s:%d:%d: NUL byte; a manifest must be UTF-8 text", name,
                          line, col);
    }
    /* A UTF-8 byte order mark carries no content. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (strspn(text, " \t\r\n") == len)
        return PV_OK;
    if (looks_like_json(text, len, name)) {
        const char *end = NULL;
        cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);

        if (root == NULL) {
            int line;
            int col;

            line_col(text, end != NULL && end >= text && end <= text + len ? end : text, &line,
                     &col);
            return pv_err_set(err, PV_EPARSE,
                              "%s:%d:%d: invalid JSON (a syntax error, or nesting deeper than "
                              "%d levels)",
                              name, line, col, CJSON_NESTING_LIMIT);
        }
        set->roots = xrealloc(set->roots, (set->n_roots + 1) * sizeof(*set->roots));
        set->roots[set->n_roots++] = root;
        rc = add_document(set, root, file, 1, 1, err);
    } else {
        struct yaml_doc *docs = NULL;
        size_t n = 0;

        rc = yaml_parse_docs(text, len, name, &manifest_limits, &docs, &n, err);
        if (rc)
            return rc;
        set->roots = xrealloc(set->roots, (set->n_roots + n + 1) * sizeof(*set->roots));
        for (size_t i = 0; i < n; i++) {
            if (docs[i].json == NULL)
                continue;
            set->roots[set->n_roots++] = docs[i].json;
            docs[i].json = NULL;
            if (rc == PV_OK)
                rc = add_document(set, set->roots[set->n_roots - 1], file, (int)i + 1, docs[i].line,
                                  err);
        }
        yaml_docs_free(docs, n);
    }
    if (rc) {
        /* Nothing of this file is kept. */
        for (size_t i = first_root; i < set->n_roots; i++)
            cJSON_Delete(set->roots[i]);
        set->n_roots = first_root;
        set->n_objs = first_obj;
    }
    return rc;
}

static void note_error(struct input_set *set, const struct pv_err *e)
{
    set->errors = xrealloc(set->errors, (set->n_errors + 1) * sizeof(*set->errors));
    set->errors[set->n_errors++] = xstrdup(e->msg);
}

/* Reads one file; a failure is noted in the set and kept in 'first' if it is the
 * first one. Returns the file's status. */
static pv_status add_file(struct input_set *set, const char *path, struct pv_err *first)
{
    char *text = NULL;
    size_t len = 0;
    struct pv_err e = {0};
    pv_status rc = fs_read_file(path, INPUT_MAX_FILE_BYTES, &text, &len, &e);

    if (rc == PV_OK)
        rc = input_add_text(set, text, len, strcmp(path, "-") == 0 ? "<stdin>" : path, &e);
    free(text);
    if (rc) {
        note_error(set, &e);
        if (first != NULL && first->code == PV_OK)
            *first = e;
    }
    return rc;
}

/* Reads a directory tree. Errors are noted per entry; the walk goes on. */
static void add_dir(struct input_set *set, const char *dir, int depth, struct pv_err *first)
{
    char **names = NULL;
    size_t n = 0;
    struct pv_err e = {0};

    if (depth > 32) {
        pv_err_set(&e, PV_EINVAL, "%s: directories nested deeper than 32 levels", dir);
        goto fail;
    }
    if (fs_list_dir(dir, &names, &n, &e))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        char *path = fs_join(dir, names[i]);
        struct stat st;

        if (stat(path, &st) != 0) {
            struct pv_err se = {0};

            pv_err_set(&se, PV_EIO, "%s: %s", path, strerror(errno));
            note_error(set, &se);
            if (first->code == PV_OK)
                *first = se;
        } else if (S_ISDIR(st.st_mode)) {
            add_dir(set, path, depth + 1, first);
        } else if (S_ISREG(st.st_mode) &&
                   (fs_has_suffix(path, ".yaml") || fs_has_suffix(path, ".yml") ||
                    fs_has_suffix(path, ".json"))) {
            add_file(set, path, first);
        }
        free(path);
    }
    fs_names_free(names, n);
    return;
fail:
    note_error(set, &e);
    if (first->code == PV_OK)
        *first = e;
}

pv_status input_add_path(struct input_set *set, const char *path, struct pv_err *err)
{
    struct pv_err first = {0};
    struct stat st;

    if (strcmp(path, "-") == 0) {
        add_file(set, path, &first);
    } else if (stat(path, &st) != 0) {
        pv_err_set(&first, errno == ENOENT ? PV_ENOENT : PV_EIO, "%s: %s", path, strerror(errno));
        note_error(set, &first);
    } else if (S_ISDIR(st.st_mode)) {
        add_dir(set, path, 0, &first);
    } else {
        add_file(set, path, &first);
    }
    if (first.code != PV_OK && err != NULL)
        *err = first;
    return first.code;
}
