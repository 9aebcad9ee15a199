/* tests/fuzz/fuzz_config.c: libFuzzer target for config_parse() (server/config.h) on
 * arbitrary YAML: libyaml through server/base/yamldoc.c (anchors, aliases, merge keys,
 * the depth and node limits), then every section parser, the new ones included
 * (notifications, credentials, quotas, prices, exceptions, breakglass). The text is
 * handed over in an allocation of exactly its length, with no NUL after it, as the
 * header allows. When it parses, every string the snapshot points to is read (so ASan
 * sees one that points into freed memory) and the lookups run on it.
 *
 * config_parse reads files and the environment for secrets (secret_file, secret_env):
 * stdin is /dev/null here (secret_file: - reads it) and PAVED_FUZZ_SECRET is set, so
 * both paths can succeed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "status.h"
#include "xalloc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_config: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (freopen("/dev/null", "r", stdin) == NULL)
        die("cannot reopen stdin on /dev/null");
    setenv("PAVED_FUZZ_SECRET", "fuzz-secret-0123456789", 1);
    return 0;
}

/* Reads the string 's' (may be NULL) to its end; returns its length. */
static size_t touch(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

static void touch_json(const cJSON *v)
{
    char *text;

    if (v == NULL)
        return;
    text = cJSON_PrintUnformatted(v);
    free(text);
}

static void walk(const struct config *cfg)
{
    size_t n = 0;
    struct vm_binding *vb;
    const struct cfg_quota *q;

    n += touch(cfg->name) + touch(cfg->policies_dir);
    n += touch(cfg->server.listen) + touch(cfg->server.tls_cert) + touch(cfg->server.tls_key) +
         touch(cfg->server.client_ca) + touch(cfg->audit.db);
    n += touch(cfg->subject.team_label) + touch(cfg->subject.service_label);
    touch_json(cfg->subject.namespaces);
    for (size_t i = 0; i < cfg->n_bindings; i++) {
        const struct cfg_binding *b = &cfg->bindings[i];

        n += touch(b->id) + touch(b->policy);
        touch_json(b->params);
        touch_json(b->match);
        for (int e = 0; e < CFG_N_ENTRIES; e++)
            if (b->enforcement[e] < CFG_UNSET)
                die("a binding's enforcement is below CFG_UNSET");
    }
    for (size_t i = 0; i < cfg->n_tokens; i++)
        n += touch(cfg->tokens[i].name) + touch(config_role_name(cfg->tokens[i].role));
    for (size_t i = 0; i < cfg->notifications.n_endpoints; i++) {
        const struct cfg_endpoint *e = &cfg->notifications.endpoints[i];

        n += touch(e->name) + touch(e->url) + touch(e->cacert);
        if (e->secret == NULL && e->secret_len != 0)
            die("an endpoint has a secret length but no secret");
        if (e->secret_len > 0 && (e->secret[0] == 0 || e->secret[e->secret_len - 1] == 0))
            n++; /* read both ends of the secret */
        touch_json(e->events);
        touch_json(e->policies);
    }
    n += touch(cfg->credentials.issuer) + touch(cfg->credentials.keys_dir);
    for (size_t i = 0; i < cfg->credentials.n_issuers; i++) {
        const struct cfg_oidc_issuer *is = &cfg->credentials.issuers[i];

        n += touch(is->issuer) + touch(is->jwks_url) + touch(is->audience) + touch(is->cacert) +
             touch(is->team_claim) + touch(is->service_claim);
        touch_json(is->teams);
    }
    for (size_t i = 0; i < cfg->n_quotas; i++) {
        q = &cfg->quotas[i];
        n += touch(q->team);
        if (q->cpu_millis < -1 || q->memory_bytes < -1 || q->storage_bytes < -1 ||
            q->environments < -1 || !(q->monthly_cost >= -1))
            die("a quota limit is below -1 (no limit)");
        if (config_quota_of(cfg, q->team) == NULL)
            die("config_quota_of does not find a team that has a quota");
    }
    n += touch(cfg->prices.currency);
    if (!(cfg->prices.hours_per_month > 0))
        die("prices.hours_per_month is not positive");
    q = config_quota_of(cfg, NULL);
    if (q != NULL && strcmp(q->team, "*") != 0)
        die("config_quota_of(NULL) is not the \"*\" quota");
    (void)config_quota_of(cfg, "payments");
    (void)config_find_token(cfg, "fuzz-token");
    vb = config_vm_bindings(cfg);
    for (size_t i = 0; i < cfg->n_bindings; i++)
        n += touch(vb[i].policy_id);
    free(vb);
    if (n == SIZE_MAX)
        die("unreachable");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmalloc(size > 0 ? size : 1);
    struct config *cfg = NULL;
    struct pv_err err = {PV_OK, ""};
    pv_status rc;

    if (size > 0)
        memcpy(text, data, size);
    rc = config_parse(&cfg, text, size, "fuzz.yaml", &err);
    if (strnlen(err.msg, sizeof(err.msg)) == sizeof(err.msg))
        die("config_parse left an unterminated message");
    if (rc == PV_OK) {
        if (cfg == NULL)
            die("config_parse: PV_OK without a config");
        walk(cfg);
        config_free(cfg);
    } else if (err.msg[0] == '\0') {
        die("config_parse failed without a message");
    }
    free(text);
    return 0;
}
