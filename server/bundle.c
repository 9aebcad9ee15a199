/* server/bundle.c: collects the Lua sources a vm loads: embedded or from disk. */
#include "bundle.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "embedded.h"
#include "xalloc.h"

pv_status bundle_read_file(const char *path, size_t max_bytes, char **out, size_t *len_out,
                           struct pv_err *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    size_t cap = 65536;
    size_t len = 0;
    char *buf;

    if (f == NULL)
        return pv_err_set(err, errno == ENOENT ? PV_ENOENT : PV_EIO, "%s: %s", path,
                          strerror(errno));
    buf = xmalloc(cap);
    for (;;) {
        size_t n;

        if (len == cap - 1) {
            if (cap - 1 > max_bytes)
                break;
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (n == 0)
            break;
        if (len > max_bytes)
            break;
    }
    if (len > max_bytes) {
        free(buf);
        if (!is_stdin)
            fclose(f);
        return pv_err_set(err, PV_ETOOBIG, "%s: larger than the limit of %zu MiB",
                          is_stdin ? "<stdin>" : path, max_bytes >> 20);
    }
    if (ferror(f)) {
        int e = errno;

        free(buf);
        if (!is_stdin)
            fclose(f);
        return pv_err_set(err, PV_EIO, "%s: %s", path, strerror(e));
    }
    if (!is_stdin)
        fclose(f);
    buf[len] = '\0';
    *out = buf;
    *len_out = len;
    return PV_OK;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

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

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static pv_status load_dir(struct bundle *b, const char *dir, struct pv_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    pv_status rc = PV_OK;

    if (d == NULL)
        return pv_err_set(err, errno == ENOENT ? PV_ENOENT : PV_EIO, "policy directory %s: %s",
                          dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".lua"))
            continue;
        names = xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n == 0) {
        free(names);
        return pv_err_set(err, PV_EINVAL, "policy directory %s holds no *.lua policy", dir);
    }
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && rc == PV_OK; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = keep(b, xmalloc(plen));
        char *text = NULL;
        size_t len = 0;

        snprintf(path, plen, "%s%s%s", dir, has_suffix(dir, "/") ? "" : "/", names[i]);
        rc = bundle_read_file(path, BUNDLE_MAX_FILE_BYTES, &text, &len, err);
        if (rc == PV_OK)
            add_source(&b->policies, &b->n_policies, path, keep(b, text), len);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

pv_status bundle_load(struct bundle *b, const char *dir, struct pv_err *err)
{
    pv_status rc = PV_OK;

    memset(b, 0, sizeof(*b));
    for (size_t i = 0; i < embedded_count; i++) {
        const struct embedded_file *f = &embedded_files[i];

        if (strncmp(f->path, "lua/", 4) == 0 && has_suffix(f->path, ".lua"))
            add_source(&b->modules, &b->n_modules, f->path, f->data, f->len);
        else if (dir == NULL && strncmp(f->path, "policies/", 9) == 0 && has_suffix(f->path, ".lua"))
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
