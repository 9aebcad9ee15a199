/* server/config.h: paved.yaml, loaded once into an immutable snapshot: the bindings
 * that instantiate policies and the limits of the policy sandbox. */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <cjson/cJSON.h>

#include "status.h"
#include "vm.h"

/* The entry points a decision can come from. */
enum cfg_entry {
    CFG_ADMISSION = 0,
    CFG_CI,
    CFG_API,
    CFG_N_ENTRIES,
};

#define CFG_UNSET (-1)

struct cfg_binding {
    const char *id;                 /* unique; defaults to the policy id */
    const char *policy;             /* policy id */
    const cJSON *params;            /* mapping or NULL */
    const cJSON *match;             /* Gatekeeper match mapping or NULL */
    int enforcement[CFG_N_ENTRIES]; /* enum vm_enforcement, or CFG_UNSET: policy default */
    int line;                       /* where the binding starts in the file, if known */
};

struct config {
    cJSON *root; /* owns every string and subtree the bindings point into */
    char *name;  /* file name, or "<embedded default>" */
    struct cfg_binding *bindings;
    size_t n_bindings;
    const char *policies_dir; /* NULL: the embedded bundle */
    struct vm_limits limits;
};

/* Parses a config held in memory ('text', 'len' bytes, borrowed). 'name' is used in
 * messages. Returns PV_OK with *out (free with config_free), PV_EPARSE with line and
 * column for YAML errors, PV_ECONFIG naming the key for unknown keys, wrong types or
 * bad values. */
pv_status config_parse(struct config **out, const char *text, size_t len, const char *name,
                       struct pv_err *err);

/* Reads and parses the file at 'path'. Errors as config_parse plus PV_ENOENT/PV_EIO. */
pv_status config_load_file(struct config **out, const char *path, struct pv_err *err);

/* The embedded default: the golden path for workloads (policies/default.yaml). */
pv_status config_load_default(struct config **out, struct pv_err *err);

void config_free(struct config *cfg);

/* Parses "ci", "admission", "api" (returns CFG_N_ENTRIES for anything else). */
enum cfg_entry config_entry_parse(const char *s);

/* Returns the vm bindings for 'cfg' (caller frees the array with free()). */
struct vm_binding *config_vm_bindings(const struct config *cfg);

#endif
