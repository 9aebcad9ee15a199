/* server/cmd_check.c: `paved check`, the CI gate: decides manifests offline with the
 * bundle and bindings, and reports as text, JSON or JUnit XML. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "decide.h"
#include "fsutil.h"
#include "input.h"
#include "jsonutil.h"
#include "remote.h"
#include "xalloc.h"

static const char usage[] =
    "usage: paved check [options] PATH...|-\n"
    "\n"
    "Decides Kubernetes manifests the way the admission webhook would, offline. PATH is\n"
    "a file, a directory (searched recursively for *.yaml, *.yml and *.json) or '-' for\n"
    "standard input. YAML files may hold several documents; List kinds are expanded.\n"
    "\n"
    "Without --config the shipped golden path applies (Pod Security restricted, cost\n"
    "tags, approved registries, no latest tag, requests and limits, probes); objects no\n"
    "binding targets, such as a ConfigMap, are allowed.\n"
    "\n"
    "options:\n"
    "  --config FILE     bindings and limits (paved.yaml) instead of the shipped defaults\n"
    "  --policies DIR    load the policies of DIR instead of the shipped bundle\n"
    "  --format FMT      text (default), json or junit\n"
    "  --explain         show every binding evaluated per object, its result and time\n"
    "  --namespace NS    namespace of objects whose metadata names none\n"
    "  -q, --quiet       text format: print only denied objects and the summary\n"
    "  --server URL      decide on a paved server (POST URL/v1/decide), recorded in its\n"
    "                    audit store with source ci; output and exit status as offline\n"
    "  --token T         API token for --server (default: $PAVED_TOKEN)\n"
    "  --cacert FILE     CA certificate to trust for --server\n"
    "  --insecure-http   allow an http:// --server URL\n"
    "  --exceptions FILE honour the approved exceptions of FILE (written by paved\n"
    "                    exceptions list --format json), so CI decides as the cluster\n"
    "                    does: a covered violation is allowed (path exception) until its\n"
    "                    expiry\n"
    "  -h, --help        show this help\n"
    "\n"
    "exit status: 0 every object allowed (warnings are printed), 1 any object denied,\n"
    "2 usage error, unreadable or malformed input (reported as file:line), or a policy\n"
    "bundle or config that fails to load.\n"
    "\n"
    "examples:\n"
    "  paved check deploy/\n"
    "  helm template ./chart | paved check --format junit - > paved-report.xml\n"
    "  paved check --config paved.yaml --explain k8s/web.yaml\n";

enum format {
    FMT_TEXT,
    FMT_JSON,
    FMT_JUNIT,
};

struct opts {
    enum format format;
    bool is_explain;
    bool is_quiet;
    const char *namespace;
};

/* Kinds that live outside namespaces: --namespace does not apply to them. */
static bool is_cluster_scoped(const char *kind)
{
    static const char *const kinds[] = {
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "CSIDriver",
        "APIService",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        NULL,
    };

    for (const char *const *k = kinds; *k != NULL; k++)
        if (strcmp(*k, kind) == 0)
            return true;
    return false;
}

/* 'ns' is the namespace the object was decided in (its own, or --namespace). */
static void object_name(const struct input_obj *o, const char *ns, char *out, size_t cap)
{
    const char *kind = json_str(o->object, "kind", NULL);
    const char *name = json_str(o->object, "metadata", "name");

    snprintf(out, cap, "%s/%s%s%s", kind != NULL ? kind : "?", ns != NULL ? ns : "",
             ns != NULL ? "/" : "", name != NULL ? name : "(unnamed)");
}

static void origin_of(const struct input_obj *o, char *out, size_t cap)
{
    if (o->item > 0)
        snprintf(out, cap, "%s:%d (document %d, item %d)", o->file, o->line, o->doc, o->item);
    else
        snprintf(out, cap, "%s:%d (document %d)", o->file, o->line, o->doc);
}

/* ---- Text ---- */

static bool same_id(const struct decide_item *it)
{
    return strcmp(it->binding->id, it->policy->id) == 0;
}

static void print_text(const struct opts *op, const struct input_obj *o, const char *ns,
                       const struct decision *d, const struct pv_request *req)
{
    char name[512];
    char origin[600];
    const char *verdict = !d->is_allowed            ? "DENIED"
                          : d->n_warn + d->n_errors ? "ALLOWED with warnings"
                                                    : "ALLOWED";

    if (op->is_quiet && d->is_allowed)
        return;
    object_name(o, ns, name, sizeof(name));
    origin_of(o, origin, sizeof(origin));
    printf("%s  %s  %s\n", verdict, name, origin);
    for (size_t i = 0; i < d->n_items; i++) {
        const struct decide_item *it = &d->items[i];
        const char *enf = decide_enforcement_name(it->enforcement);

        if (op->is_explain) {
            printf("  binding %-28s %-8s %5zu violation(s)  %7.1f us\n", it->binding->id,
                   decide_outcome_name(it->r.outcome), it->r.n_violations,
                   (double)it->r.elapsed_ns / 1000.0);
        }
        if (it->r.outcome >= VM_ERROR) {
            printf("  %-5s %s: policy error (%s, %s): %s\n", it->is_violated ? enf : "error",
                   it->binding->id, decide_outcome_name(it->r.outcome),
                   it->policy->is_on_error_deny ? "on_error=deny" : "on_error=allow", it->r.error);
            continue;
        }
        if (!it->is_violated || (it->enforcement == VM_AUDIT && !op->is_explain))
            continue;
        if (it->is_covered) {
            char until[40];

            audit_format_time(it->exception_until_ms, until, sizeof(until));
            for (size_t j = 0; j < it->r.n_violations; j++)
                printf("  allow %s%s%s%s: by exception %s until %s: %s\n", it->binding->id,
                       same_id(it) ? "" : " (", same_id(it) ? "" : it->policy->id,
                       same_id(it) ? "" : ")", it->exception_id, until, it->r.violations[j]);
            continue;
        }
        for (size_t j = 0; j < it->r.n_violations; j++)
            printf("  %-5s %s%s%s%s: %s\n", enf, it->binding->id, same_id(it) ? "" : " (",
                   same_id(it) ? "" : it->policy->id, same_id(it) ? "" : ")", it->r.violations[j]);
        if (it->r.n_dropped > 0)
            printf("  %-5s %s: ... and %zu more\n", enf, it->binding->id, it->r.n_dropped);
        if (it->enforcement == VM_DENY && req != NULL && it->r.n_violations > 0) {
            char hint[400];

            decide_exception_hint(it->policy, req, hint, sizeof(hint));
            printf("        %s\n", hint);
        }
    }
}

/* ---- JSON ---- */

static cJSON *json_of(const struct opts *op, const struct input_obj *o, const char *ns,
                      const struct decision *d, const struct pv_request *req)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *bs = op->is_explain ? cJSON_AddArrayToObject(j, "bindings") : NULL;
    const char *name = json_str(o->object, "metadata", "name");

    cJSON_AddStringToObject(j, "file", o->file);
    cJSON_AddNumberToObject(j, "document", o->doc);
    if (o->item > 0)
        cJSON_AddNumberToObject(j, "item", o->item);
    cJSON_AddNumberToObject(j, "line", o->line);
    cJSON_AddStringToObject(j, "kind", json_str(o->object, "kind", NULL));
    if (ns != NULL)
        cJSON_AddStringToObject(j, "namespace", ns);
    if (name != NULL)
        cJSON_AddStringToObject(j, "name", name);
    cJSON_AddBoolToObject(j, "allowed", d->is_allowed);
    cJSON_AddStringToObject(j, "path", decide_path_name(d->path));
    for (size_t i = 0; i < d->n_items; i++) {
        const struct decide_item *it = &d->items[i];

        if (bs != NULL) {
            cJSON *b = cJSON_CreateObject();

            cJSON_AddStringToObject(b, "binding", it->binding->id);
            cJSON_AddStringToObject(b, "policy", it->policy->id);
            cJSON_AddStringToObject(b, "result", decide_outcome_name(it->r.outcome));
            cJSON_AddNumberToObject(b, "violations", (double)it->r.n_violations);
            cJSON_AddNumberToObject(b, "micros", (double)it->r.elapsed_ns / 1000.0);
            cJSON_AddItemToArray(bs, b);
        }
    }
    if (req != NULL)
        decide_findings_json_hinted(d, req, j);
    else
        decide_findings_json(d, j);
    return j;
}

/* ---- JUnit ---- */

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                fputc(*s, f);
            break;
        }
    }
}

static void print_junit_case(const struct input_obj *o, const char *ns, const struct decision *d)
{
    char name[512];
    char origin[600];

    object_name(o, ns, name, sizeof(name));
    origin_of(o, origin, sizeof(origin));
    fputs("    <testcase classname=\"", stdout);
    xml_escaped(stdout, o->file);
    fputs("\" name=\"", stdout);
    xml_escaped(stdout, name);
    printf("\" time=\"%.6f\">\n", (double)d->elapsed_ns / 1e9);
    if (!d->is_allowed) {
        fputs("      <failure message=\"denied by paved\" type=\"denied\">", stdout);
        xml_escaped(stdout, origin);
        fputc('\n', stdout);
        for (size_t i = 0; i < d->n_items; i++) {
            const struct decide_item *it = &d->items[i];

            if (!it->is_violated || it->enforcement != VM_DENY)
                continue;
            if (it->r.outcome >= VM_ERROR) {
                printf("%s: policy error: ", it->binding->id);
                xml_escaped(stdout, it->r.error);
                fputc('\n', stdout);
            }
            for (size_t k = 0; k < it->r.n_violations; k++) {
                printf("%s: ", it->binding->id);
                xml_escaped(stdout, it->r.violations[k]);
                fputc('\n', stdout);
            }
        }
        fputs("</failure>\n", stdout);
    }
    if (d->n_warn > 0) {
        fputs("      <system-out>", stdout);
        for (size_t i = 0; i < d->n_items; i++) {
            const struct decide_item *it = &d->items[i];

            if (!it->is_violated || it->enforcement != VM_WARN)
                continue;
            for (size_t k = 0; k < it->r.n_violations; k++) {
                printf("warning %s: ", it->binding->id);
                xml_escaped(stdout, it->r.violations[k]);
                fputc('\n', stdout);
            }
        }
        fputs("</system-out>\n", stdout);
    }
    fputs("    </testcase>\n", stdout);
}

/* ---- The command ---- */

/* Reads the exceptions file of --exceptions (paved exceptions list --format json) into
 * *out. Prints the error and returns it on failure. */
static pv_status load_exceptions(const char *path, struct audit_exc_set *out)
{
    struct pv_err err = {0};
    char *text = NULL;
    size_t len = 0;
    cJSON *doc;
    pv_status rc = fs_read_file(path, (size_t)64 << 20, &text, &len, &err);

    if (rc) {
        fprintf(stderr, "paved check: --exceptions: %s\n", err.msg);
        return rc;
    }
    doc = cJSON_ParseWithLength(text, len);
    free(text);
    if (doc == NULL) {
        fprintf(stderr,
                "paved check: --exceptions %s: not JSON (write it with paved exceptions "
                "list --format json)\n",
                path);
        return PV_EPARSE;
    }
    rc = audit_exc_set_from_json(doc, out, &err);
    cJSON_Delete(doc);
    if (rc)
        fprintf(stderr, "paved check: --exceptions %s: %s\n", path, err.msg);
    return rc;
}

int cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"policies", required_argument, NULL, 'p'},
        {"format", required_argument, NULL, 'f'},
        {"explain", no_argument, NULL, 'e'},
        {"namespace", required_argument, NULL, 'n'},
        {"quiet", no_argument, NULL, 'q'},
        {"server", required_argument, NULL, 'S'},
        {"token", required_argument, NULL, 'T'},
        {"cacert", required_argument, NULL, 'A'},
        {"insecure-http", no_argument, NULL, 'I'},
        {"exceptions", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct opts op = {FMT_TEXT, false, false, NULL};
    const char *config = NULL;
    const char *policies = NULL;
    struct cli_engine e;
    struct input_set in;
    struct pv_err err = {0};
    size_t n_input_errors = 0;
    size_t n_denied = 0;
    size_t n_warned = 0;
    size_t n_failed = 0;
    cJSON *report = NULL;
    cJSON *objs = NULL;
    cJSON *inventory = NULL;
    const char *server = NULL;
    const char *token = getenv("PAVED_TOKEN");
    const char *cacert = NULL;
    bool is_insecure_http = false;
    struct remote *remote = NULL;
    const char *exceptions_file = NULL;
    struct audit_exc_set exc = {0};
    int64_t now_ms = clock_wall_ms();
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'p':
            policies = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "text") == 0) {
                op.format = FMT_TEXT;
            } else if (strcmp(optarg, "json") == 0) {
                op.format = FMT_JSON;
            } else if (strcmp(optarg, "junit") == 0) {
                op.format = FMT_JUNIT;
            } else {
                fprintf(stderr, "paved check: unknown format '%s' (text, json or junit)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'e':
            op.is_explain = true;
            break;
        case 'n':
            op.namespace = optarg;
            break;
        case 'q':
            op.is_quiet = true;
            break;
        case 'S':
            server = optarg;
            break;
        case 'T':
            token = optarg;
            break;
        case 'A':
            cacert = optarg;
            break;
        case 'I':
            is_insecure_http = true;
            break;
        case 'X':
            exceptions_file = optarg;
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
        fprintf(stderr, "paved check: no PATH given (use - for standard input)\n\n%s", usage);
        return EXIT_USAGE;
    }
    if (server != NULL && (config != NULL || policies != NULL || op.is_explain)) {
        fprintf(stderr, "paved check: --server decides with the server's bindings: drop --config, "
                        "--policies and --explain\n");
        return EXIT_USAGE;
    }
    if (server != NULL && exceptions_file != NULL) {
        fprintf(stderr, "paved check: --server decides with the server's exceptions: drop "
                        "--exceptions\n");
        return EXIT_USAGE;
    }
    if (exceptions_file != NULL && load_exceptions(exceptions_file, &exc) != PV_OK)
        return EXIT_USAGE;
    if (server != NULL) {
        memset(&e, 0, sizeof(e));
        if (remote_open(&remote, server, token, cacert, is_insecure_http, &err)) {
            fprintf(stderr, "paved check: %s\n", err.msg);
            return EXIT_USAGE;
        }
    } else if (cli_engine_open(&e, policies, config, true, &err)) {
        fprintf(stderr, "paved check: %s\n", err.msg);
        audit_exc_set_fini(&exc);
        return EXIT_USAGE;
    }
    input_init(&in);
    for (int i = optind; i < argc; i++)
        input_add_path(&in, argv[i], NULL);
    for (size_t i = 0; i < in.n_errors; i++)
        fprintf(stderr, "paved check: error: %s\n", in.errors[i]);
    n_input_errors = in.n_errors;
    /* Every object of the run is the inventory of the others, so uniqueness and
     * cross-object policies (unique ingress host, PDBs, namespace selectors) see the
     * whole set of manifests, as they would see the cluster at admission. */
    inventory = cJSON_CreateArray();
    for (size_t i = 0; i < in.n_objs; i++)
        cJSON_AddItemToArray(inventory, cJSON_CreateObjectReference(in.objs[i].object->child));
    if (remote == NULL && vm_set_inventory(e.vm, inventory, &err)) {
        fprintf(stderr, "paved check: error: %s\n", err.msg);
        n_input_errors++;
    }
    if (op.format == FMT_JSON) {
        report = cJSON_CreateObject();
        objs = cJSON_AddArrayToObject(report, "objects");
    } else if (op.format == FMT_JUNIT) {
        printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
               "  <testsuite name=\"paved check\" tests=\"%zu\">\n",
               in.n_objs);
    }
    for (size_t i = 0; i < in.n_objs; i++) {
        const struct input_obj *o = &in.objs[i];
        const char *kind = json_str(o->object, "kind", NULL);
        const char *ns = json_str(o->object, "metadata", "namespace");
        cJSON *subject;
        struct pv_request req = {0};
        struct remote_result res = {0};
        struct decision d;
        pv_status rc;

        if (ns == NULL && op.namespace != NULL && kind != NULL && !is_cluster_scoped(kind))
            ns = op.namespace;
        subject = decide_subject(e.cfg, o->object, ns, NULL, NULL);
        req.kind = "deploy";
        req.operation = "CREATE";
        req.source = "ci";
        req.namespace = ns;
        req.object = o->object;
        req.subject = subject;
        rc = remote != NULL ? remote_decide(remote, o->object, ns, &d, &res, &err)
                            : decide_eval(e.vm, e.cfg, CFG_CI, &req, &d, &err);
        if (rc == PV_OK && remote == NULL)
            decide_apply_exceptions(&d, &req, &exc, NULL, now_ms);
        if (rc) {
            char origin[600];

            origin_of(o, origin, sizeof(origin));
            fprintf(stderr, "paved check: error: %s: %s\n", origin, err.msg);
            n_input_errors++;
        } else {
            n_denied += !d.is_allowed;
            n_warned += d.is_allowed && (d.n_warn > 0 || d.n_errors > 0);
            n_failed += d.n_errors;
            if (op.format == FMT_TEXT)
                print_text(&op, o, ns, &d, remote == NULL ? &req : NULL);
            else if (op.format == FMT_JSON)
                cJSON_AddItemToArray(objs, json_of(&op, o, ns, &d, remote == NULL ? &req : NULL));
            else
                print_junit_case(o, ns, &d);
        }
        decision_fini(&d);
        remote_result_fini(&res);
        cJSON_Delete(subject);
    }
    if (op.format == FMT_TEXT) {
        printf("paved: %zu object%s checked: %zu denied, %zu allowed with warnings, %zu "
               "allowed%s\n",
               in.n_objs, in.n_objs == 1 ? "" : "s", n_denied, n_warned,
               in.n_objs - n_denied - n_warned, n_input_errors ? "; input errors above" : "");
    } else if (op.format == FMT_JSON) {
        cJSON *s = cJSON_AddObjectToObject(report, "summary");
        char *text;

        cJSON_AddNumberToObject(s, "objects", (double)in.n_objs);
        cJSON_AddNumberToObject(s, "denied", (double)n_denied);
        cJSON_AddNumberToObject(s, "warned", (double)n_warned);
        cJSON_AddNumberToObject(s, "policy_errors", (double)n_failed);
        cJSON_AddNumberToObject(s, "input_errors", (double)n_input_errors);
        text = cJSON_Print(report);
        puts(text);
        free(text);
        cJSON_Delete(report);
    } else {
        printf("  </testsuite>\n</testsuites>\n");
    }
    cJSON_Delete(inventory);
    input_fini(&in);
    remote_close(remote);
    cli_engine_close(&e);
    audit_exc_set_fini(&exc);
    if (n_input_errors > 0)
        return EXIT_USAGE;
    return n_denied > 0 ? EXIT_DENY : EXIT_ALLOW;
}
