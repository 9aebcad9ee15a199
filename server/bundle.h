/* server/bundle.h: the policy bundle: the bundled Lua modules plus the policy sources,
 * either compiled into the binary or read from a directory. */
#ifndef PV_BUNDLE_H
#define PV_BUNDLE_H

#include <stdbool.h>

#include "status.h"
#include "vm.h"

struct bundle {
    struct vm_source *modules;
    size_t n_modules;
    struct vm_source *policies;
    size_t n_policies;
    char **owned; /* texts and paths read from disk */
    size_t n_owned;
};

#define BUNDLE_MAX_FILE_BYTES ((size_t)4 << 20)

/* Fills 'b' with the embedded modules and the policies of 'dir' (every *.lua file
 * directly in it, sorted by name), or the embedded policies when 'dir' is NULL.
 * Borrows 'dir'. Returns PV_ENOENT/PV_EIO naming the file, PV_ETOOBIG past
 * BUNDLE_MAX_FILE_BYTES, PV_EINVAL when the directory has no policy. On failure
 * 'b' holds nothing to free. */
pv_status bundle_load(struct bundle *b, const char *dir, struct pv_err *err);

void bundle_fini(struct bundle *b);

/* True when policy source 'src' may define policy 'id': the ids its first line
 * declares (`-- paved-ids: a b psa-*`, a trailing '*' matching by prefix), or else the
 * file's base name. */
bool bundle_source_may_define(const struct vm_source *src, const char *id);

/* The policy sources of 'b' that may define one of 'ids' (borrowed): an array of
 * *n_out sources (borrowing the texts of 'b') the caller frees with free(). */
struct vm_source *bundle_select(const struct bundle *b, const char *const *ids, size_t n_ids,
                                size_t *n_out);

/* The embedded file at 'path' (e.g. "policies/default.yaml"), or NULL. */
const struct vm_source *bundle_embedded(const char *path, struct vm_source *out);

#endif
