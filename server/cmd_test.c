/* server/cmd_test.c: `paved test`, which runs policy test cases in the corpus JSON
 * Lines format against the bundle, one binding per case, in process. */
#include "cli.h"

#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "xalloc.h"

#define CASE_FILE_MAX_BYTES ((size_t)64 << 20)

static const char usage[] =
    "usage: paved test [options] PATH...\n"
    "\n"
    "Runs policy test cases: JSON Lines files (*.jsonl) and directories of them, one case\n"
    "per line in the corpus case format: policy, params, operation, object, expect\n"
    "(allow|deny), expect_count (number or null) and optionally match, namespace,\n"
    "inventory, old_object, user_info, subject ({team, service, actor}: req.subject), kind\n"
    "(req.kind: deploy, provision or credential), source_path, note, and expect_patch (the JSON\n"
    "Patch a mutating policy must return). Each case instantiates its policy once with\n"
    "the case's params and match and decides the object.\n"
    "\n"
    "Prints each failure with its source_path, what was expected and what was got, then\n"
    "'N passed, N failed'. Exit status: 0 when every case passed, 1 when any failed,\n"
    "2 on a usage error or when the policies cannot be loaded.\n"
    "\n"
    "options:\n"
    "  --policies DIR   load the policies of DIR instead of the shipped bundle\n"
    "  --only GLOB      run only the cases whose policy id matches GLOB (e.g. 'psp-*')\n"
    "  -v, --verbose    print every case, passed ones too\n"
    "  -h, --help       show this help\n"
    "\n"
    "example:\n"
    "  paved test policies/tests ../shared/corpus\n"
    "  paved test --only 'psa-*' ../shared/corpus/psa-visible.jsonl\n";

struct run {
    struct cli_engine *e;
    const char *only;
    bool is_verbose;
    size_t passed;
    size_t failed;
    size_t filtered;
};

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void fail(struct run *run, const char *where, const char *policy, const char *what,
                 const char *detail)
{
    run->failed++;
    printf("FAIL %s [%s]: %s%s\n", where, policy != NULL ? policy : "?", what, detail);
}

/* Runs one case line. 'where' names it (source_path or file:line). */
static void run_case(struct run *run, const cJSON *c, const char *where)
{
    const char *policy = str_field(c, "policy");
    const char *expect = str_field(c, "expect");
    const char *op = str_field(c, "operation");
    const cJSON *object = cJSON_GetObjectItemCaseSensitive(c, "object");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(c, "expect_count");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(c, "params");
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(c, "match");
    const cJSON *expect_patch = cJSON_GetObjectItemCaseSensitive(c, "expect_patch");
    cJSON *patch = NULL;
    struct vm_binding b;
    struct pv_request req;
    struct vm_result r;
    struct pv_err err = {0};
    const char *got;
    size_t n;
    bool is_ok;
    char what[300];

    if (policy == NULL || expect == NULL || !cJSON_IsObject(object) ||
        (strcmp(expect, "allow") != 0 && strcmp(expect, "deny") != 0)) {
        fail(run, where, policy,
             "invalid case: needs \"policy\", \"object\" (a mapping) and \"expect\" (allow|deny)",
             "");
        return;
    }
    if (run->only != NULL && fnmatch(run->only, policy, 0) != 0) {
        run->filtered++;
        return;
    }
    if (vm_policy_find(run->e->vm, policy) == NULL) {
        fail(run, where, policy, "no policy with this id in the bundle", "");
        return;
    }
    b.policy_id = policy;
    b.params = cJSON_IsObject(params) ? params : NULL;
    b.match = cJSON_IsObject(match) ? match : NULL;
    if (vm_set_bindings(run->e->vm, &b, 1, &err)) {
        fail(run, where, policy, "cannot bind the policy: ", err.msg);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.kind = "deploy";
    req.operation = op != NULL ? op : "CREATE";
    req.source = "ci";
    req.object = object;
    req.old_object = cJSON_GetObjectItemCaseSensitive(c, "old_object");
    req.inventory = cJSON_GetObjectItemCaseSensitive(c, "inventory");
    req.user_info = cJSON_GetObjectItemCaseSensitive(c, "user_info");
    req.subject = cJSON_GetObjectItemCaseSensitive(c, "subject");
    if (req.subject != NULL && !cJSON_IsObject(req.subject))
        req.subject = NULL;
    if (str_field(c, "kind") != NULL)
        req.kind = str_field(c, "kind");
    {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(object, "metadata");
        const char *ns = str_field(md, "namespace");

        req.namespace = ns != NULL ? ns : str_field(c, "namespace");
    }
    if (vm_begin(run->e->vm, &req, &err)) {
        fail(run, where, policy, "cannot evaluate: ", err.msg);
        return;
    }
    vm_eval(run->e->vm, 0, &r);
    if (expect_patch != NULL && r.outcome < VM_ERROR) {
        struct vm_result mr;

        vm_mutate(run->e->vm, 0, &mr, &patch);
        if (mr.outcome >= VM_ERROR) {
            vm_result_fini(&r);
            r = mr;
        } else {
            vm_result_fini(&mr);
        }
        if (patch == NULL)
            patch = cJSON_CreateArray();
    }
    if (!vm_unchanged(run->e->vm, what, sizeof(what))) {
        char msg[600];

        snprintf(msg, sizeof(msg),
                 "the policy changed %s; it must treat the request and "
                 "its params as read-only",
                 what);
        vm_result_fini(&r);
        r.outcome = VM_ERROR;
        r.error = xstrdup(msg);
    }
    vm_end(run->e->vm);
    n = r.n_violations + r.n_dropped;
    if (r.outcome >= VM_ERROR) {
        got = "error";
        is_ok = false;
    } else {
        got = n > 0 ? "deny" : "allow";
        is_ok = strcmp(got, expect) == 0;
        if (is_ok && cJSON_IsNumber(count) && (double)n != count->valuedouble)
            is_ok = false;
        if (is_ok && expect_patch != NULL && !cJSON_Compare(patch, expect_patch, 1))
            is_ok = false;
    }
    if (is_ok) {
        run->passed++;
        if (run->is_verbose)
            printf("ok   %s [%s]: %s (%zu violations)\n", where, policy, got, n);
    } else {
        run->failed++;
        printf("FAIL %s [%s]: expected %s", where, policy, expect);
        if (cJSON_IsNumber(count))
            printf(" with %d violations", (int)count->valuedouble);
        if (r.outcome >= VM_ERROR)
            printf(", got a policy error: %s\n", r.error);
        else
            printf(", got %s with %zu violations\n", got, n);
        for (size_t i = 0; i < r.n_violations; i++)
            printf("       - %s\n", r.violations[i]);
        if (expect_patch != NULL && patch != NULL) {
            char *want = cJSON_PrintUnformatted(expect_patch);
            char *have = cJSON_PrintUnformatted(patch);

            printf("       patch expected %s\n       patch got      %s\n", want, have);
            free(want);
            free(have);
        }
    }
    cJSON_Delete(patch);
    vm_result_fini(&r);
}

static void run_file(struct run *run, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    struct pv_err err = {0};
    char *line;
    int lineno = 0;

    if (fs_read_file(path, CASE_FILE_MAX_BYTES, &text, &len, &err)) {
        run->failed++;
        printf("FAIL %s: %s\n", path, err.msg);
        return;
    }
    line = text;
    while (line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t llen = nl != NULL ? (size_t)(nl - line) : (size_t)(text + len - line);
        char where[512];
        cJSON *c;

        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        if (strspn(line, " \t\r") < llen) {
            c = cJSON_ParseWithLength(line, llen);
            if (c == NULL || !cJSON_IsObject(c)) {
                run->failed++;
                printf("FAIL %s: not a JSON object (each line holds one case)\n", where);
            } else {
                const char *sp = str_field(c, "source_path");
                char full[1200];

                if (sp != NULL) {
                    snprintf(full, sizeof(full), "%s (%s)", sp, where);
                    run_case(run, c, full);
                } else {
                    run_case(run, c, where);
                }
            }
            cJSON_Delete(c);
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    free(text);
}

static int run_path(struct run *run, const char *path, int depth)
{
    struct stat st;
    struct pv_err err = {0};
    char **names = NULL;
    size_t n = 0;

    if (stat(path, &st) != 0) {
        fprintf(stderr, "paved test: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(run, path);
        return 0;
    }
    if (depth > 16)
        return 0;
    if (fs_list_dir(path, &names, &n, &err)) {
        fprintf(stderr, "paved test: %s\n", err.msg);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char *p = fs_join(path, names[i]);
        struct stat cst;

        if (stat(p, &cst) == 0 && (S_ISDIR(cst.st_mode) || fs_has_suffix(p, ".jsonl")))
            run_path(run, p, depth + 1);
        free(p);
    }
    fs_names_free(names, n);
    return 0;
}

int cmd_test(int argc, char **argv)
{
    static const struct option opts[] = {
        {"policies", required_argument, NULL, 'p'},
        {"only", required_argument, NULL, 'o'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_engine e;
    struct run run = {0};
    const char *policies = NULL;
    struct pv_err err = {0};
    int c;
    int status = EXIT_ALLOW;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            policies = optarg;
            break;
        case 'o':
            run.only = optarg;
            break;
        case 'v':
            run.is_verbose = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return EXIT_ALLOW;
        default:
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "paved test: no PATH given\n\n%s", usage);
        return EXIT_USAGE;
    }
    if (cli_engine_open(&e, policies, NULL, false, &err)) {
        fprintf(stderr, "paved test: %s\n", err.msg);
        return EXIT_USAGE;
    }
    run.e = &e;
    for (int i = optind; i < argc; i++)
        if (run_path(&run, argv[i], 0) != 0)
            status = EXIT_USAGE;
    cli_engine_close(&e);
    if (run.only != NULL && run.passed + run.failed == 0)
        fprintf(stderr, "paved test: no case matched --only '%s'\n", run.only);
    printf("%zu passed, %zu failed\n", run.passed, run.failed);
    if (status == EXIT_ALLOW && run.failed > 0)
        status = EXIT_DENY;
    return status;
}
