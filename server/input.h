/* server/input.h: manifests read for `paved check`: files, directories (recursive,
 * *.yaml|*.yml|*.json) and stdin, split into Kubernetes objects with their origin. */
#ifndef PV_INPUT_H
#define PV_INPUT_H

#include <cjson/cJSON.h>

#include "status.h"

#define INPUT_MAX_FILE_BYTES ((size_t)32 << 20)

/* One object to decide. */
struct input_obj {
    const cJSON *object; /* borrowed from the set's roots */
    const char *file;    /* borrowed from the set */
    int doc;             /* 1-based document number in the file */
    int item;            /* 1-based index inside a List document, or 0 */
    int line;            /* line where the document starts (1 for JSON files) */
};

struct input_set {
    struct input_obj *objs;
    size_t n_objs;
    cJSON **roots; /* owned */
    size_t n_roots;
    char **files; /* owned */
    size_t n_files;
    char **errors; /* owned: one "file:line: what" per input that could not be read */
    size_t n_errors;
};

void input_init(struct input_set *set);
void input_fini(struct input_set *set);

/* Adds every object found at 'path' ("-" for stdin; borrowed). A file that cannot be
 * read or parsed adds nothing and its message ("file:line: what") is appended to
 * set->errors; the other files of a directory are still read. Returns PV_OK when
 * everything was read, else the status of the first failure (PV_EPARSE, PV_EDEPTH,
 * PV_ETOOBIG, PV_EINVAL for a document that is not an object or has no kind,
 * PV_ENOENT/PV_EIO), with its message in 'err'. */
pv_status input_add_path(struct input_set *set, const char *path, struct pv_err *err);

/* Parses one buffer as JSON (when 'name' ends in .json or the text starts with '{' or
 * '[') or as YAML, adding its objects. Borrows 'text' and 'name'. */
pv_status input_add_text(struct input_set *set, const char *text, size_t len, const char *name,
                         struct pv_err *err);

#endif
