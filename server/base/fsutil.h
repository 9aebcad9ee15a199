/* server/base/fsutil.h: small file-system helpers shared by the commands: bounded
 * whole-file reads and sorted directory listings. */
#ifndef PV_FSUTIL_H
#define PV_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Reads a whole file of at most 'max_bytes' ("-" is stdin). On success *out is a
 * NUL-terminated buffer the caller frees with free() and *len_out its length. Returns
 * PV_ENOENT, PV_EIO or PV_ETOOBIG with the path in 'err'. */
pv_status fs_read_file(const char *path, size_t max_bytes, char **out, size_t *len_out,
                       struct pv_err *err);

/* Lists the entries of 'dir' except those starting with '.', sorted by name. On
 * success *names_out holds *n_out names; the caller frees them with fs_names_free.
 * Returns PV_ENOENT or PV_EIO with the path in 'err'. */
pv_status fs_list_dir(const char *dir, char ***names_out, size_t *n_out, struct pv_err *err);
void fs_names_free(char **names, size_t n);

/* Returns "dir/name" (no doubled slash); the caller frees it. */
char *fs_join(const char *dir, const char *name);

/* Creates 'dir' and its missing parents: parents with mode 0755, 'dir' itself with 0700
 * (both less the umask). An existing 'dir' must be a directory; its mode is left
 * alone. 'what' names the directory in messages ("keys directory"). Returns PV_EINVAL
 * for an empty or too long path, PV_EIO naming the part that cannot be created. */
pv_status fs_make_dirs(const char *dir, const char *what, struct pv_err *err);

/* True when 's' ends with 'suffix'. */
bool fs_has_suffix(const char *s, const char *suffix);

#endif
