/* tests/fuzz/fuzz_exc_json.c: libFuzzer target for audit_exc_set_from_json()
 * (audit/audit.h), which reads the exceptions file `paved exceptions list --format json`
 * wrote (and anyone can edit) for `paved check`, then audit_exc_match() on the set it
 * built: with fixed arguments, and with each exception's own team, service, namespace
 * and first policy just before and at its expiry. Checks beyond the sanitizers: a match
 * is an exception of the set that covers the arguments and has not expired; an
 * exception is found by its own fields until it expires; a failure names the entry. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "audit.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS ((int64_t)1767225600000) /* 2026-01-01T00:00:00Z */
#define MAX_OWN_CHECKS 16

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_exc_json: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
    abort();
}

static bool eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* audit_exc_match, then what it returned must be in 's' and cover the arguments. */
static const struct audit_exc *match(const struct audit_exc_set *s, const char *team,
                                     const char *service, const char *ns, const char *policy,
                                     int64_t now_ms)
{
    const struct audit_exc *e = audit_exc_match(s, team, service, ns, policy, now_ms);
    bool is_covered = false;

    if (e == NULL)
        return NULL;
    if (e < s->items || e >= s->items + s->n)
        die("audit_exc_match returned an exception outside the set", NULL);
    if (e->expires_ms <= now_ms)
        die("audit_exc_match returned an expired exception", e->id);
    if (!eq(e->team, team) || !eq(e->service, service) ||
        (e->namespace != NULL && !eq(e->namespace, ns)))
        die("audit_exc_match returned an exception for another subject", e->id);
    for (size_t k = 0; k < e->n_policies; k++)
        is_covered = is_covered || eq(e->policies[k], policy);
    if (!is_covered)
        die("audit_exc_match returned an exception for another policy", e->id);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const teams[] = {"payments", "web", "", NULL};
    static const char *const policies[] = {"psa-restricted", "cost-tags", "*", NULL};
    cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
    struct audit_exc_set s = {0};
    struct pv_err err = {PV_OK, ""};

    if (doc == NULL)
        return 0;
    if (audit_exc_set_from_json(doc, &s, &err) != PV_OK) {
        cJSON_Delete(doc);
        if (err.msg[0] == '\0')
            die("audit_exc_set_from_json failed without a message", NULL);
        if (s.items != NULL || s.n != 0)
            die("audit_exc_set_from_json failed but filled the set", NULL);
        return 0;
    }
    /* The set owns its strings: the document can go. */
    cJSON_Delete(doc);
    for (size_t t = 0; t < sizeof(teams) / sizeof(teams[0]); t++)
        for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
            match(&s, teams[t], "api", "prod", policies[p], NOW_MS);
            match(&s, teams[t], "api", NULL, policies[p], NOW_MS);
        }
    for (size_t i = 0; i < s.n && i < MAX_OWN_CHECKS; i++) {
        const struct audit_exc *e = &s.items[i];

        if (e->id == NULL || e->team == NULL || e->service == NULL ||
            (e->n_policies > 0 && e->policies == NULL))
            die("an exception of the set lacks a field", NULL);
        for (size_t k = 0; k < e->n_policies; k++)
            if (e->policies[k] == NULL)
                die("an exception's policy is NULL", e->id);
        if (e->n_policies == 0)
            continue;
        if (e->expires_ms > INT64_MIN &&
            match(&s, e->team, e->service, e->namespace != NULL ? e->namespace : "any",
                  e->policies[0], e->expires_ms - 1) == NULL)
            die("an approved exception does not cover its own subject before it expires", e->id);
        if (match(&s, e->team, e->service, e->namespace, e->policies[0], e->expires_ms) == e)
            die("an exception still matches at its expiry", e->id);
    }
    match(&s, NULL, NULL, NULL, NULL, NOW_MS);
    match(NULL, "payments", "api", "prod", "psa-restricted", NOW_MS);
    audit_exc_set_fini(&s);
    return 0;
}
