/* server/bundle.c: collects the Lua sources a vm loads: embedded or from disk. */
#include "bundle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "fsutil.h"
#include "xalloc.h"

const struct vm_source *bundle_embedded(const char *path, struct vm_source *out)
{
    for (size_t i = 0; i < embedded_count; i++) {
        if (strcmp(embedded_files[i].path, path) == 0) {
            out->path = embedded_files[i].path;
            out->text = embedded_files[i].data;
            out->len = embedded_files[i].len;
            return out;
        }
    }
    return NULL;
}

static void add_source(struct vm_source **arr, size_t *n, const char *path, const char *text,
                       size_t len)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[*n].path = path;
    (*arr)[*n].text = text;
    (*arr)[*n].len = len;
    (*n)++;
}

static char *keep(struct bundle *b, char *p)
{
    b->owned = xrealloc(b->owned, (b->n_owned + 1) * sizeof(*b->owned));
    b->owned[b->n_owned++] = p;
    return p;
}

static pv_status load_dir(struct bundle *b, const char *dir, struct pv_err *err)
{
    char **names = NULL;
    size_t n = 0;
    size_t n_lua = 0;
    pv_status rc = fs_list_dir(dir, &names, &n, err);

    if (rc) {
        char msg[PV_ERR_MSG_MAX];

        snprintf(msg, sizeof(msg), "%s", err != NULL ? err->msg : dir);
        return pv_err_set(err, rc, "policy directory %s", msg);
    }
    for (size_t i = 0; i < n && rc == PV_OK; i++) {
        char *path;
        char *text = NULL;
        size_t len = 0;

        if (!fs_has_suffix(names[i], ".lua"))
            continue;
        n_lua++;
        path = keep(b, fs_join(dir, names[i]));
        rc = fs_read_file(path, BUNDLE_MAX_FILE_BYTES, &text, &len, err);
        if (rc == PV_OK)
            add_source(&b->policies, &b->n_policies, path, keep(b, text), len);
    }
    fs_names_free(names, n);
    if (rc == PV_OK && n_lua == 0)
        rc = pv_err_set(err, PV_EINVAL, "policy directory %s holds no *.lua policy", dir);
    return rc;
}

pv_status bundle_load(struct bundle *b, const char *dir, struct pv_err *err)
{
    pv_status rc = PV_OK;

    memset(b, 0, sizeof(*b));
    for (size_t i = 0; i < embedded_count; i++) {
        const struct embedded_file *f = &embedded_files[i];

        if (strncmp(f->path, "lua/", 4) == 0 && fs_has_suffix(f->path, ".lua"))
            add_source(&b->modules, &b->n_modules, f->path, f->data, f->len);
        else if (dir == NULL && strncmp(f->path, "policies/", 9) == 0 &&
                 fs_has_suffix(f->path, ".lua"))
            add_source(&b->policies, &b->n_policies, f->path, f->data, f->len);
    }
    if (dir != NULL)
        rc = load_dir(b, dir, err);
    if (rc)
        bundle_fini(b);
    return rc;
}

void bundle_fini(struct bundle *b)
{
    for (size_t i = 0; i < b->n_owned; i++)
        free(b->owned[i]);
    free(b->owned);
    free(b->modules);
    free(b->policies);
    memset(b, 0, sizeof(*b));
}

static bool token_matches(const char *tok, size_t len, const char *id)
{
    if (len > 0 && tok[len - 1] == '*')
        return strncmp(id, tok, len - 1) == 0;
    return strlen(id) == len && strncmp(id, tok, len) == 0;
}

bool bundle_source_may_define(const struct vm_source *src, const char *id)
{
    static const char tag[] = "-- paved-ids:";
    const char *base = strrchr(src->path, '/');
    size_t blen;

    if (src->len >= sizeof(tag) - 1 && strncmp(src->text, tag, sizeof(tag) - 1) == 0) {
        const char *p = src->text + sizeof(tag) - 1;
        const char *end = memchr(src->text, '\n', src->len);

        if (end == NULL)
            end = src->text + src->len;
        while (p < end) {
            size_t n;

            p += strspn(p, " \t,\r");
            n = strcspn(p, " \t,\r\n");
            if (p + n > end)
                n = (size_t)(end - p);
            if (n > 0 && token_matches(p, n, id))
                return true;
            p += n > 0 ? n : 1;
        }
        return false;
    }
    base = base != NULL ? base + 1 : src->path;
    blen = strlen(base);
    if (blen > 4 && strcmp(base + blen - 4, ".lua") == 0)
        blen -= 4;
    return token_matches(base, blen, id);
}

struct vm_source *bundle_select(const struct bundle *b, const char *const *ids, size_t n_ids,
                                size_t *n_out)
{
    struct vm_source *out = xcalloc(b->n_policies ? b->n_policies : 1, sizeof(*out));
    size_t n = 0;

    for (size_t i = 0; i < b->n_policies; i++) {
        for (size_t k = 0; k < n_ids; k++) {
            if (bundle_source_may_define(&b->policies[i], ids[k])) {
                out[n++] = b->policies[i];
                break;
            }
        }
    }
    *n_out = n;
    return out;
}
