/* server/base/yamldoc.h: YAML text -> cJSON documents, resolving plain scalars the way
 * Kubernetes does (go-yaml v2, YAML 1.1 rules). Owns no state between calls. */
#ifndef PV_YAMLDOC_H
#define PV_YAMLDOC_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "status.h"

/* One YAML document converted to JSON. */
struct yaml_doc {
    cJSON *json; /* owned by the array; NULL for an empty document */
    int line;    /* 1-based line where the document's content starts */
};

struct yaml_limits {
    size_t max_depth; /* deepest nesting of mappings/sequences accepted, e.g. 100 */
    size_t max_nodes; /* total scalars+collections accepted, e.g. 1,000,000 */
};

/* Parses every document of 'text' ('len' bytes, need not be NUL-terminated; borrows
 * it). 'name' (borrowed) is used in messages: "NAME:LINE:COL: what". 'lim' (borrowed)
 * bounds the work: 'max_depth' counts nested mappings/sequences (a top-level mapping is
 * depth 1; an alias counts as deep as the subtree it copies) and 'max_nodes' counts
 * every scalar, key and collection of the whole stream, an alias counting as the size
 * of the subtree it copies. Keep 'max_depth' modest (~100): cJSON frees trees
 * recursively.
 *
 * Conversion follows go-yaml v2 as used by sigs.k8s.io/yaml:
 * - Plain scalars resolve to null (empty, ~, null/Null/NULL), booleans (y/Y/yes/Yes/YES,
 *   n/N/no/No/NO, true/True/TRUE, false/False/FALSE, on/On/ON, off/Off/OFF), integers
 *   (decimal with sign, 0x hex, 0o and leading-0 octal, 0b binary; '_' is ignored in
 *   anything starting with a digit or sign), floats (1.5, 1e3, 1., .5, .inf/-.Inf/.NAN
 *   and their spellings) or else strings. Quoted and block scalars are strings.
 * - Tags !!str, !!int, !!float, !!bool and !!null are honoured (a value the tag cannot
 *   hold is PV_EINVAL); !!timestamp, !!binary (kept as base64 text) and unknown tags
 *   yield the scalar's text. Tags on collections are ignored.
 * - Mapping keys become JSON strings: booleans "true"/"false", integers in decimal,
 *   floats in Go's shortest float32 form ("1.5", "1e+06"). A null key, an integer key
 *   beyond int64, or a non-scalar key is PV_EINVAL, and so is a key written twice in
 *   one mapping (as kubectl reports it), with the line of both.
 * - Anchors and aliases: an alias copies the anchored subtree. Merge keys '<<' take a
 *   mapping or a sequence of mappings (earlier ones win); keys written out in the
 *   mapping win over merged ones, whether they come before or after '<<'.
 * - .inf and .nan become cJSON numbers holding infinity/NaN (cJSON prints them as null).
 * - A document with no content ("---" alone, or only comments after "---") yields
 *   json=NULL; a stream without any "---" or content (empty, or only comments) holds
 *   no documents at all.
 * On success sets *out to an array of *n_out documents (NULL when there are none) that
 * the caller frees with yaml_docs_free(), and returns PV_OK. Otherwise leaves *out and
 * *n_out untouched, fills 'err' (may be NULL) and returns:
 * PV_EPARSE  syntax error, invalid UTF-8 or control bytes (message has line and column);
 * PV_EDEPTH  nesting beyond 'max_depth' (message has the line);
 * PV_ETOOBIG more than 'max_nodes' nodes, e.g. an alias bomb ("billion laughs");
 * PV_EINVAL  an unsupported construct: non-scalar or null mapping key, undefined or
 *            self-containing alias, bad merge value, a NUL character in a scalar, a
 *            value its tag cannot hold;
 * PV_ENOMEM  libyaml ran out of memory.
 * Thread-safe: no shared state. */
pv_status yaml_parse_docs(const char *text, size_t len, const char *name,
                          const struct yaml_limits *lim, struct yaml_doc **out, size_t *n_out,
                          struct pv_err *err);

/* Frees 'docs' (takes it) and the 'n' JSON trees it holds. yaml_docs_free(NULL, 0) does
 * nothing. */
void yaml_docs_free(struct yaml_doc *docs, size_t n);

/* Convenience: parses exactly one document (used for config files), as
 * yaml_parse_docs(). An empty input, or a single empty document, yields an empty JSON
 * object; otherwise *out is the document's root, whatever its type (the caller checks
 * it). On success sets *out (caller frees with cJSON_Delete()) and returns PV_OK.
 * Returns the errors of yaml_parse_docs(), plus PV_EINVAL when 'text' holds more than
 * one document; *out is then untouched. */
pv_status yaml_parse_one(const char *text, size_t len, const char *name,
                         const struct yaml_limits *lim, cJSON **out, struct pv_err *err);

#endif
