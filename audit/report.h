/* audit/report.h: the adoption report (DESIGN.md "Adoption"): golden path vs exception
 * vs off-road vs denied per team and period, headline and voluntary adoption, the
 * policies teams route around, and the exceptions about to expire. Read-only; used by
 * `paved audit report`, GET /v1/reports/adoption and the /metrics gauges. */
#ifndef PV_AUDIT_REPORT_H
#define PV_AUDIT_REPORT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "status.h"

/* How the window is cut into periods. Periods are UTC: a day starts at 00:00, a week is
 * an ISO week (Monday 00:00, labelled "2026-W48" with the ISO week-numbering year), a
 * month starts on its 1st. The first and last periods may be partial: only what falls
 * inside the window counts. */
enum audit_report_by {
    AUDIT_REPORT_BY_NONE = 0, /* one period, "all": the whole window */
    AUDIT_REPORT_BY_DAY,
    AUDIT_REPORT_BY_WEEK,
    AUDIT_REPORT_BY_MONTH,
};

#define AUDIT_REPORT_EXPIRING_DAYS 14 /* default of 'expiring_days' */
#define AUDIT_REPORT_TOP_POLICIES 10  /* default of 'top_policies' */

struct audit_report_opts {
    int64_t since_ms; /* the window is [since_ms, until_ms), Unix milliseconds */
    int64_t until_ms;
    int64_t now_ms;   /* "now" for the expiring list (a parameter so tests can fix it) */
    const char *team; /* only this team; NULL: every team (borrowed) */
    enum audit_report_by by;
    int expiring_days; /* approved exceptions expiring in [now, now + N days); 0: 14 */
    int top_policies;  /* at most N entries in top_exception_policies; 0: 10 */
};

/* What is counted (the same text is in `paved audit report --help`):
 *
 * - A service is new in the window when its first recorded decision (services.
 *   first_seen_ms, written for deploy and provision decisions) is in [since, until).
 * - Decisions counted: kind "deploy" or "provision", not dry-run, inside the window, of
 *   services that are new in the window. Credential decisions, mutating-webhook records
 *   (kind "mutation") and audit events (path "event") never count; nor do decisions of
 *   services first seen before the window, however recent the decision.
 * - Per team and period: new_services (first seen in that period), and the decisions of
 *   that period by path: golden, exception, off_road, denied, breakglass; decisions is
 *   their sum.
 * - headline_adoption = (golden + exception) / decisions; null when decisions is 0.
 * - voluntary_adoption = eligible_golden / (eligible_golden + eligible_exception), where
 *   the eligible counts take only decisions of new services for which an exception was
 *   available (services.exception_available: a golden-path policy in scope allowed
 *   exceptions); null when the denominator is 0.
 * - winning_on_merit: voluntary >= 70 %. winning_on_policy: voluntary < 40 % while
 *   headline >= 70 %. Both false while the figures they need are null.
 * - top_exception_policies: each policy named by exceptions requested in the window
 *   (requested_ms in [since, until)) in any state but denied, most requested first.
 * - expiring: approved exceptions whose expires_ms is in [now, now + expiring_days). */

/* Builds the adoption report of the audit store at 'path' (opened read-only, so it
 * works beside a running server; every figure comes from one read transaction) for
 * the window and filters of 'o' (borrowed). On success *out is the document (caller
 * frees with cJSON_Delete):
 *
 *   {"since": RFC 3339, "since_ms", "until", "until_ms", "now_ms",
 *    "by": "none"|"day"|"week"|"month", "team": T|null, "expiring_days",
 *    "teams": [{"team", "periods": [P...], "total": P}...],      sorted by team
 *    "total": {"periods": [P...], "total": P},                    every team together
 *    "top_exception_policies": [{"policy", "exceptions", "approved_or_active",
 *                                "teams": [..]}...],
 *    "expiring": [{"id", "team", "service", "namespace", "policies": [..],
 *                  "expires_at": RFC 3339, "expires_ms"}...]}    soonest first
 *
 * where each P is {"period": "2026-12-01"|"2026-W48"|"2026-12"|"all", "start_ms",
 * "new_services", "golden", "exception", "off_road", "denied", "breakglass",
 * "decisions", "eligible_golden", "eligible_exception", "headline_adoption",
 * "voluntary_adoption" (numbers from 0 to 1, or null), "winning_on_merit",
 * "winning_on_policy"}. A team is listed when it has a new service in the window (or
 * is 'o->team'). With 'by' NONE every team has the one period "all" (start_ms = since);
 * otherwise periods without a new service or a decision are left out, oldest first.
 * "total" entries have period "all". approved_or_active counts the exceptions that were
 * approved (still active, or expired or revoked since); teams lists the requesting
 * teams, sorted.
 *
 * Returns PV_EINVAL when until_ms <= since_ms or a limit is negative, PV_ENOENT when
 * 'path' does not exist, PV_EIO (with SQLite's message) when it cannot be read, is
 * not a paved audit store, or is of schema 1 (before exceptions). Thread-safe (its own connection).
 */
pv_status audit_report(const char *path, const struct audit_report_opts *o, cJSON **out,
                       struct pv_err *err);

/* The name of 'by' as in the document ("none", "day", "week", "month"); static. */
const char *audit_report_by_name(enum audit_report_by by);

#endif
