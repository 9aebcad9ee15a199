/* server/base/fsutil.c: bounded file reads and sorted directory listings. */
#include "fsutil.h"

#include <limits.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xalloc.h"

pv_status fs_read_file(const char *path, size_t max_bytes, char **out, size_t *len_out,
                       struct pv_err *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    size_t cap = 65536;
    size_t len = 0;
    pv_status rc = PV_OK;
    char *buf;

    if (f == NULL)
        return pv_err_set(err, errno == ENOENT ? PV_ENOENT : PV_EIO, "%s: %s", path,
                          strerror(errno));
    buf = xmalloc(cap);
    /* Read until EOF or one byte past the limit, growing the buffer as needed. */
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
        if (n == 0 || len > max_bytes)
            break;
    }
    if (len > max_bytes)
        rc = pv_err_set(err, PV_ETOOBIG, "%s: larger than the limit of %zu MiB", name,
                        max_bytes >> 20);
    else if (ferror(f))
        rc = pv_err_set(err, PV_EIO, "%s: %s", name, strerror(errno));
    if (!is_stdin)
        fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *len_out = len;
    return PV_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

pv_status fs_list_dir(const char *dir, char ***names_out, size_t *n_out, struct pv_err *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;

    if (d == NULL)
        return pv_err_set(err, errno == ENOENT ? PV_ENOENT : PV_EIO, "%s: %s", dir,
                          strerror(errno));
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = xrealloc(names, (n + 1) * sizeof(*names));
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), cmp_names);
    *names_out = names;
    *n_out = n;
    return PV_OK;
}

void fs_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

char *fs_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(len);

    snprintf(p, len, "%s%s%s", dir, fs_has_suffix(dir, "/") ? "" : "/", name);
    return p;
}

bool fs_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

pv_status fs_make_dirs(const char *dir, const char *what, struct pv_err *err)
{
    size_t len = strlen(dir);
    char *path;
    struct stat st;
    pv_status rc = PV_OK;

    if (len == 0 || len >= PATH_MAX)
        return pv_err_set(err, PV_EINVAL, "%s: %s", what,
                          len == 0 ? "empty path" : "path too long");
    /* Trailing slashes would make the last parent the directory itself. */
    while (len > 1 && dir[len - 1] == '/')
        len--;
    path = xstrndup(dir, len);
    /* Each '/' after the first byte ends a parent; the full path is the last one. */
    for (size_t i = 1; i <= len && rc == PV_OK; i++) {
        bool is_last = i == len;

        if (!is_last && path[i] != '/')
            continue;
        if (!is_last)
            path[i] = '\0';
        /* mkdir may fail with EEXIST, or on some file systems EACCES or EROFS, for a
         * directory that exists: what is there decides. */
        if (mkdir(path, is_last ? 0700 : 0755) != 0) {
            int mkdir_errno = errno;

            if (stat(path, &st) != 0)
                rc = pv_err_set(err, PV_EIO, "cannot create directory %s: %s", path,
                                strerror(mkdir_errno));
            else if (!S_ISDIR(st.st_mode))
                rc = pv_err_set(err, PV_EIO, "cannot create directory %s: %s is not a directory",
                                dir, path);
        }
        if (!is_last)
            path[i] = '/';
    }
    free(path);
    return rc;
}
