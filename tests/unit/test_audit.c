/* tests/unit/test_audit.c: the audit store (audit/): group commit from several threads,
 * the hash chain and its verification against tampering, async mode, a full queue, a
 * failing disk, reopening, query filters, export and decision ids. Uses real SQLite
 * files in a mkdtemp directory that is removed at the end. */
#include "audit.h"

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chain.h"
#include "t.h"
#include "xalloc.h"

static char dir[64];

/* Returns a path in the test directory (static buffer per call site slot). */
static const char *db_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t in_ms(uint64_t ms)
{
    return mono_ns() + ms * 1000000u;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

/* A record with the required fields; 'violations' may be NULL. Returns: the store takes
 * it, or the caller frees with audit_record_free. */
static struct audit_record *make_record(int64_t time_ms, const char *team, const char *service,
                                        const char *path, const char *source,
                                        const char *violations)
{
    struct audit_record *r = xcalloc(1, sizeof(*r));

    audit_new_id(r->id);
    r->time_ms = time_ms;
    r->source = xstrdup(source);
    r->request_uid = xstrdup("uid-1");
    r->kind = xstrdup("deploy");
    r->operation = xstrdup("CREATE");
    r->team = xstrdup(team);
    r->service = dup_or_null(service);
    r->namespace = xstrdup("default");
    r->resource_kind = xstrdup("Deployment");
    r->resource_name = xstrdup("web");
    r->actor = NULL;
    r->decision = xstrdup(strcmp(path, "denied") == 0 ? "deny" : "allow");
    r->path = xstrdup(path);
    r->violations = dup_or_null(violations);
    r->bundle_hash = xstrdup("ab12");
    r->latency_us = 42;
    r->is_dry_run = false;
    return r;
}

static struct audit_record *simple_record(void)
{
    return make_record(1700000000000, "payments", "api", "golden", "admission", NULL);
}

static struct audit *open_store(const char *path, bool is_async, size_t queue_max,
                                uint32_t batch_max)
{
    struct audit_options opt = {
        .path = path, .is_async = is_async, .queue_max = queue_max, .batch_max = batch_max};
    struct audit *a = NULL;
    struct pv_err err = {PV_OK, ""};
    pv_status rc = audit_open(&a, &opt, &err);

    if (rc)
        t_diag("audit_open(%s): %s", path, err.msg);
    return rc == PV_OK ? a : NULL;
}

static int verify_rows(const char *path, struct audit_verify_result *res)
{
    struct pv_err err = {PV_OK, ""};

    memset(res, 0, sizeof(*res));
    if (audit_verify(path, res, &err) != PV_OK) {
        t_diag("audit_verify: %s", err.msg);
        return -1;
    }
    if (!res->is_ok)
        t_diag("verify: rowid %" PRId64 " (%s): %s", res->bad_rowid, res->bad_id, res->reason);
    return res->is_ok ? (int)res->rows : -1;
}

static int exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);

    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        t_diag("sql %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
    return rc;
}

/* Returns the first column of the first row of 'sql' as text into 'out'. */
static void query_text(const char *path, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    out[0] = '\0';
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static long query_long(const char *path, const char *sql)
{
    char buf[64];

    query_text(path, sql, buf, sizeof(buf));
    return strtol(buf, NULL, 10);
}

/* ---- Decision ids ---- */

#define NIDS 10000

static void *make_ids(void *arg)
{
    char(*ids)[AUDIT_ID_LEN + 1] = arg;

    for (int i = 0; i < NIDS / 4; i++)
        audit_new_id(ids[i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_ids(void)
{
    static char ids[NIDS][AUDIT_ID_LEN + 1];
    pthread_t th[4];
    int ordered = 1;
    int wellformed = 1;
    int unique = 1;

    for (int i = 0; i < NIDS; i++)
        audit_new_id(ids[i]);
    for (int i = 0; i < NIDS; i++) {
        if (strlen(ids[i]) != 30 || strncmp(ids[i], "dec-", 4) != 0 ||
            strspn(ids[i] + 4, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != 26)
            wellformed = 0;
        if (i > 0 && strcmp(ids[i - 1], ids[i]) >= 0)
            ordered = 0;
    }
    T_OK(wellformed);
    T_OK(ordered);

    /* From four threads at once: still unique. */
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, make_ids, ids[i * (NIDS / 4)]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    qsort(ids, NIDS, sizeof(ids[0]), cmp_id);
    for (int i = 1; i < NIDS; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            unique = 0;
    T_OK(unique);

    /* The time prefix: an id made later in another millisecond sorts after. */
    {
        char a[AUDIT_ID_LEN + 1];
        char b[AUDIT_ID_LEN + 1];
        struct timespec ts = {0, 2000000};

        audit_new_id(a);
        nanosleep(&ts, NULL);
        audit_new_id(b);
        T_OK(strncmp(a, b, 14) < 0); /* "dec-" + 10 time characters */
    }
}

/* ---- Many threads, group commit ---- */

#define NTHREADS 8
#define PER_THREAD 1000

struct submitter {
    struct audit *a;
    int n_ok;
    int n_fail;
};

static void *submit_many(void *arg)
{
    struct submitter *s = arg;
    static const char *const teams[] = {"payments", "search", "infra"};

    for (int i = 0; i < PER_THREAD; i++) {
        struct pv_err err = {PV_OK, ""};
        struct audit_record *r = make_record(
            1700000000000 + i, teams[i % 3], "api", i % 5 ? "golden" : "off-road", "admission",
            i % 5 ? "[]"
                  : "[{\"binding\":\"b\",\"policy\":\"no-latest\","
                    "\"enforcement\":\"warn\",\"message\":\"pin the tag\"}]");

        if (audit_submit(s->a, r, in_ms(30000), &err) == PV_OK)
            s->n_ok++;
        else
            s->n_fail++;
    }
    return NULL;
}

static void test_threads(void)
{
    char path[128];
    struct submitter subs[NTHREADS];
    pthread_t th[NTHREADS];
    struct audit_stats st;
    struct audit_verify_result res;
    struct audit *a;
    uint64_t t0, t1;
    int ok = 0;
    int fail = 0;
    char first_prev[80];

    db_path(path, sizeof(path), "threads.db");
    a = open_store(path, false, 0, 0);
    if (!T_OK(a != NULL))
        return;
    t0 = mono_ns();
    for (int i = 0; i < NTHREADS; i++) {
        subs[i].a = a;
        subs[i].n_ok = 0;
        subs[i].n_fail = 0;
        pthread_create(&th[i], NULL, submit_many, &subs[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        ok += subs[i].n_ok;
        fail += subs[i].n_fail;
    }
    t1 = mono_ns();
    audit_stats(a, &st);
    T_EQ_INT(ok, NTHREADS * PER_THREAD);
    T_EQ_INT(fail, 0);
    T_EQ_INT(st.committed, NTHREADS * PER_THREAD);
    T_OK(st.commits >= 1 && st.commits <= st.committed);
    T_EQ_INT(st.commit_failures, 0);
    T_OK(st.is_writable);
    T_EQ_INT(st.queue_depth, 0);
    {
        uint64_t in_buckets = 0;

        for (int i = 0; i < 8; i++)
            in_buckets += st.commit_latency_us_buckets[i];
        T_EQ_INT(in_buckets, st.commits);
    }
    t_diag("group commit: %d rows from %d threads in %.3f s: %.0f rows/s, %" PRIu64
           " commits (%.1f rows per commit, mean commit %.0f us)",
           ok, NTHREADS, (double)(t1 - t0) / 1e9, ok / ((double)(t1 - t0) / 1e9), st.commits,
           st.commits ? (double)st.committed / (double)st.commits : 0.0,
           st.commits ? (double)st.commit_latency_us_sum / (double)st.commits : 0.0);
    audit_close(a);

    T_EQ_INT(verify_rows(path, &res), NTHREADS * PER_THREAD);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM decisions"), NTHREADS * PER_THREAD);
    T_EQ_INT(query_long(path, "SELECT count(DISTINCT id) FROM decisions"), NTHREADS * PER_THREAD);
    query_text(path, "SELECT prev_hash FROM decisions WHERE rowid = 1", first_prev,
               sizeof(first_prev));
    T_EQ_STR(first_prev, chain_zero_hash);
    /* Each row links to the one before it. */
    T_EQ_INT(query_long(path, "SELECT count(*) FROM decisions d JOIN decisions p ON p.rowid = "
                              "d.rowid - 1 WHERE d.prev_hash <> p.hash"),
             0);
    /* One decision_policies row per off-road decision; services seen once. */
    T_EQ_INT(query_long(path, "SELECT count(*) FROM decision_policies WHERE policy='no-latest'"),
             NTHREADS * PER_THREAD / 5);
    T_EQ_INT(query_long(path, "SELECT count(*) FROM services"), 3);
    {
        char mode[16];

        query_text(path, "PRAGMA journal_mode", mode, sizeof(mode));
        T_EQ_STR(mode, "wal");
    }
}

/* ---- Tampering ---- */

static void test_tamper(void)
{
    char path[128];
    char id[64];
    char sql[512];
    struct audit_verify_result res;

    db_path(path, sizeof(path), "threads.db"); /* written by test_threads */

    /* Change a field: that row is named; restored, the chain is whole again. */
    char team[64];

    query_text(path, "SELECT id FROM decisions WHERE rowid = 1234", id, sizeof(id));
    query_text(path, "SELECT team FROM decisions WHERE rowid = 1234", team, sizeof(team));
    T_EQ_INT(exec_sql(path, "UPDATE decisions SET team = 'evil' WHERE rowid = 1234"), SQLITE_OK);
    T_EQ_INT(verify_rows(path, &res), -1);
    T_OK(!res.is_ok);
    T_EQ_INT(res.bad_rowid, 1234);
    T_EQ_STR(res.bad_id, id);
    T_OK(strstr(res.reason, "modified") != NULL);
    T_EQ_INT(res.rows, 1234);
    snprintf(sql, sizeof(sql), "UPDATE decisions SET team = '%s' WHERE rowid = 1234", team);
    T_EQ_INT(exec_sql(path, sql), SQLITE_OK);
    T_EQ_INT(verify_rows(path, &res), NTHREADS * PER_THREAD);

    /* Integers are covered too. */
    T_EQ_INT(exec_sql(path, "UPDATE decisions SET dry_run = 1 WHERE rowid = 1234"), SQLITE_OK);
    T_EQ_INT(verify_rows(path, &res), -1);
    T_EQ_INT(res.bad_rowid, 1234);
    T_EQ_INT(exec_sql(path, "UPDATE decisions SET dry_run = 0, latency_us = 43 WHERE rowid = "
                            "1234"),
             SQLITE_OK);
    T_EQ_INT(verify_rows(path, &res), -1);
    T_EQ_INT(res.bad_rowid, 1234);
    T_EQ_INT(exec_sql(path, "UPDATE decisions SET latency_us = 42 WHERE rowid = 1234"), SQLITE_OK);
    T_EQ_INT(verify_rows(path, &res), NTHREADS * PER_THREAD);

    /* Rewrite a row and its hash: the next row's prev_hash gives it away. */
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        struct chain_field f[CHAIN_NFIELDS];
        char hash[CHAIN_HASH_HEX_LEN + 1] = "";
        char prev[CHAIN_HASH_HEX_LEN + 1] = "";
        char next_id[64];

        exec_sql(path, "UPDATE decisions SET team = 'evil' WHERE rowid = 2000");
        sqlite3_open(path, &db);
        sqlite3_prepare_v2(db,
                           "SELECT rowid, id, time_ms, source, request_uid, kind, operation, "
                           "team, service, namespace, resource_kind, resource_name, actor, "
                           "decision, path, violations, bundle_hash, latency_us, dry_run, "
                           "details, prev_hash FROM decisions WHERE rowid = 2000",
                           -1, &st, NULL);
        if (sqlite3_step(st) == SQLITE_ROW) {
            for (int i = 0; i < CHAIN_NFIELDS; i++) {
                f[i].p = (const char *)sqlite3_column_text(st, i);
                f[i].len = (size_t)sqlite3_column_bytes(st, i);
            }
            snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(st, 20));
            chain_hash(prev, f, hash, NULL);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        snprintf(sql, sizeof(sql), "UPDATE decisions SET hash = '%s' WHERE rowid = 2000", hash);
        T_EQ_INT(exec_sql(path, sql), SQLITE_OK);
        query_text(path, "SELECT id FROM decisions WHERE rowid = 2001", next_id, sizeof(next_id));
        T_EQ_INT(verify_rows(path, &res), -1);
        T_EQ_INT(res.bad_rowid, 2001);
        T_EQ_STR(res.bad_id, next_id);
        T_OK(strstr(res.reason, "prev_hash") != NULL);
    }

    /* Delete a row below that break: the row after the gap is named first. */
    T_EQ_INT(exec_sql(path, "DELETE FROM decisions WHERE rowid = 100"), SQLITE_OK);
    T_EQ_INT(verify_rows(path, &res), -1);
    T_EQ_INT(res.bad_rowid, 101);
    T_OK(strstr(res.reason, "deleted") != NULL);

    /* Delete the first row. */
    T_EQ_INT(exec_sql(path, "DELETE FROM decisions WHERE rowid = 1"), SQLITE_OK);
    T_EQ_INT(verify_rows(path, &res), -1);
    T_EQ_INT(res.bad_rowid, 2);
}

/* ---- Async ---- */

#define NASYNC 20000

static void test_async(void)
{
    char path[128];
    struct audit_verify_result res;
    struct audit_stats st;
    struct audit *a;
    uint64_t t0, t1;
    int ok = 0;

    db_path(path, sizeof(path), "async.db");
    a = open_store(path, true, 0, 0);
    if (!T_OK(a != NULL))
        return;
    t0 = mono_ns();
    for (int i = 0; i < NASYNC; i++)
        if (audit_submit(a, simple_record(), in_ms(30000), NULL) == PV_OK)
            ok++;
    audit_stats(a, &st);
    audit_close(a); /* drains the queue */
    t1 = mono_ns();
    T_EQ_INT(ok, NASYNC);
    T_EQ_INT(verify_rows(path, &res), NASYNC);
    t_diag("async: %d rows queued by one thread and committed in %.3f s: %.0f rows/s", ok,
           (double)(t1 - t0) / 1e9, ok / ((double)(t1 - t0) / 1e9));
}

/* ---- Full queue ---- */

static void test_queue_full(void)
{
    char path[128];
    struct audit_verify_result res;
    struct audit_stats st;
    struct pv_err err = {PV_OK, ""};
    struct audit *a;
    sqlite3 *lock = NULL;
    int ok = 0;
    pv_status rc = PV_OK;

    db_path(path, sizeof(path), "full.db");
    a = open_store(path, true, 2, 1);
    if (!T_OK(a != NULL))
        return;
    /* Another connection holds the write lock, so the writer waits in BEGIN (up to its
     * 5 s busy timeout) while the queue fills. */
    T_EQ_INT(sqlite3_open(path, &lock), SQLITE_OK);
    T_EQ_INT(sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 10; i++) {
        rc = audit_submit(a, simple_record(), in_ms(100), &err);
        if (rc)
            break;
        ok++;
    }
    T_EQ_INT(rc, PV_ETIMEOUT);
    T_OK(strstr(err.msg, "queue full") != NULL);
    T_OK(ok >= 2 && ok <= 3);
    audit_stats(a, &st);
    T_EQ_INT(st.queue_depth, 2);
    /* A deadline already past fails at once. */
    T_EQ_INT(audit_submit(a, simple_record(), 0, NULL), PV_ETIMEOUT);
    sqlite3_exec(lock, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(lock);
    audit_close(a);
    T_EQ_INT(verify_rows(path, &res), ok);
}

/* ---- Failing disk, reopen ---- */

static void test_disk_failure(void)
{
    char path[128];
    char prev_of_5[80];
    char hash_of_4[80];
    struct audit_verify_result res;
    struct audit_stats st;
    struct pv_err err = {PV_OK, ""};
    struct rlimit old;
    struct rlimit zero;
    struct audit *a;
    pv_status rc_fail;
    pv_status rc_after;
    int ok = 0;

    db_path(path, sizeof(path), "disk.db");
    a = open_store(path, false, 0, 0);
    if (!T_OK(a != NULL))
        return;
    for (int i = 0; i < 3; i++)
        if (audit_submit(a, simple_record(), in_ms(30000), NULL) == PV_OK)
            ok++;
    T_EQ_INT(ok, 3);

    /* A file size limit of 0 makes every write to a file fail (EFBIG), as a full disk
     * would. Nothing may be printed while it holds. */
    signal(SIGXFSZ, SIG_IGN);
    fflush(stdout);
    getrlimit(RLIMIT_FSIZE, &old);
    zero = old;
    zero.rlim_cur = 0;
    setrlimit(RLIMIT_FSIZE, &zero);
    rc_fail = audit_submit(a, simple_record(), in_ms(30000), &err);
    audit_stats(a, &st);
    setrlimit(RLIMIT_FSIZE, &old);

    T_EQ_INT(rc_fail, PV_EIO);
    T_OK(strstr(err.msg, "not recorded") != NULL);
    t_diag("commit failure message: %s", err.msg);
    T_OK(!st.is_writable);
    T_EQ_INT(st.commit_failures, 1);
    T_EQ_INT(st.committed, 3);

    /* The disk recovers: the store says it is writable again without any record
     * submitted (a pod that is not ready gets no traffic to prove it). */
    for (int i = 0; i < 50; i++) {
        audit_stats(a, &st);
        if (st.is_writable)
            break;
        usleep(100000);
    }
    T_OK(st.is_writable);
    /* The chain continues from the last committed row. */
    rc_after = audit_submit(a, simple_record(), in_ms(30000), NULL);
    T_EQ_INT(rc_after, PV_OK);
    audit_stats(a, &st);
    T_OK(st.is_writable);
    T_EQ_INT(st.committed, 4);
    audit_close(a);
    T_EQ_INT(verify_rows(path, &res), 4);

    /* Reopen: the head is read from the last row. */
    a = open_store(path, false, 0, 0);
    if (!T_OK(a != NULL))
        return;
    T_EQ_INT(audit_submit(a, simple_record(), in_ms(30000), NULL), PV_OK);
    T_EQ_INT(audit_submit(a, simple_record(), in_ms(30000), NULL), PV_OK);
    audit_close(a);
    T_EQ_INT(verify_rows(path, &res), 6);
    query_text(path, "SELECT prev_hash FROM decisions WHERE rowid = 5", prev_of_5,
               sizeof(prev_of_5));
    query_text(path, "SELECT hash FROM decisions WHERE rowid = 4", hash_of_4, sizeof(hash_of_4));
    T_EQ_STR(prev_of_5, hash_of_4);
}

/* ---- Bad records and bad files ---- */

static void test_bad_input(void)
{
    char path[128];
    char other[128];
    struct audit_verify_result res;
    struct pv_err err = {PV_OK, ""};
    struct audit_record *r;
    struct audit_stats st;
    struct audit *a;
    cJSON *rows = NULL;
    struct audit_filter f;
    FILE *fp;

    db_path(path, sizeof(path), "bad.db");
    a = open_store(path, false, 0, 0);
    if (!T_OK(a != NULL))
        return;
    r = simple_record();
    free(r->team);
    r->team = NULL;
    T_EQ_INT(audit_submit(a, r, in_ms(1000), &err), PV_EINVAL);
    T_OK(strstr(err.msg, "team") != NULL);
    r = simple_record();
    free(r->violations);
    r->violations = xstrdup("{not json");
    T_EQ_INT(audit_submit(a, r, in_ms(1000), &err), PV_EINVAL);
    r = simple_record();
    snprintf(r->id, sizeof(r->id), "x");
    T_EQ_INT(audit_submit(a, r, in_ms(1000), &err), PV_EINVAL);

    /* A duplicate id fails that record only; the store stays writable. */
    r = simple_record();
    T_EQ_INT(audit_submit(a, r, in_ms(1000), &err), PV_OK);
    r = simple_record();
    query_text(path, "SELECT id FROM decisions WHERE rowid = 1", r->id, sizeof(r->id));
    T_EQ_INT(audit_submit(a, r, in_ms(1000), &err), PV_EINVAL);
    T_OK(strstr(err.msg, "duplicate") != NULL);
    T_EQ_INT(audit_submit(a, simple_record(), in_ms(1000), &err), PV_OK);
    audit_stats(a, &st);
    T_OK(st.is_writable);
    audit_close(a);
    T_EQ_INT(verify_rows(path, &res), 2);

    /* Missing files, directories and files that are not databases. */
    T_EQ_INT(audit_verify(db_path(other, sizeof(other), "missing.db"), &res, &err), PV_ENOENT);
    memset(&f, 0, sizeof(f));
    T_EQ_INT(audit_query(other, &f, &rows, &err), PV_ENOENT);
    T_EQ_INT(audit_export(other, stdout, &err), PV_ENOENT);
    {
        struct audit_options opt = {.path = "/nonexistent-dir/x/paved.db"};

        a = NULL;
        T_EQ_INT(audit_open(&a, &opt, &err), PV_EIO);
        T_OK(a == NULL);
    }
    db_path(other, sizeof(other), "text.db");
    fp = fopen(other, "w");
    if (fp != NULL) {
        fputs("this is not a database, just some text long enough to be read\n", fp);
        fclose(fp);
    }
    T_EQ_INT(audit_verify(other, &res, &err), PV_EIO);
    t_diag("not a database: %s", err.msg);
    {
        struct audit_options opt = {.path = other};

        a = NULL;
        T_EQ_INT(audit_open(&a, &opt, &err), PV_EIO);
    }
    /* A write-protected file is refused at open (root ignores permissions). */
    if (geteuid() != 0) {
        struct audit_options opt = {.path = path};

        chmod(path, 0444);
        a = NULL;
        T_EQ_INT(audit_open(&a, &opt, &err), PV_EIO);
        chmod(path, 0644);
    }
}

/* ---- Query and export ---- */

#define NQ 20
#define T0 1700000000000

static const char *const q_paths[] = {"golden", "exception", "off-road", "denied"};

static const char *q_team(int i)
{
    return i % 2 == 0 ? "payments" : "search";
}

static const char *q_service(int i)
{
    return i % 3 == 0 ? "api" : "web";
}

static const char *q_source(int i)
{
    return i % 5 == 0 ? "ci" : "admission";
}

static bool q_has(int i, const char *policy)
{
    if (strcmp(policy, "no-latest") == 0)
        return i % 4 != 0;
    if (strcmp(policy, "psa-restricted") == 0)
        return i % 4 != 0 && i % 3 == 1;
    return false;
}

static void q_violations(int i, char *buf, size_t cap)
{
    const char *v = "{\"binding\":\"b\",\"policy\":\"no-latest\",\"enforcement\":\"warn\","
                    "\"message\":\"m\"}";
    const char *p = "{\"binding\":\"psa\",\"policy\":\"psa-restricted\",\"enforcement\":"
                    "\"deny\",\"message\":\"root\"}";

    if (i % 4 == 0)
        snprintf(buf, cap, "[]");
    else if (i % 3 == 1)
        snprintf(buf, cap, "[%s,%s,%s]", v, p, p); /* a policy twice: one index row */
    else
        snprintf(buf, cap, "[%s]", v);
}

static int expect_count(const char *team, const char *service, const char *policy, const char *path,
                        const char *source, int from, int to)
{
    int n = 0;

    for (int i = from; i < to; i++)
        if ((team == NULL || strcmp(team, q_team(i)) == 0) &&
            (service == NULL || strcmp(service, q_service(i)) == 0) &&
            (policy == NULL || q_has(i, policy)) &&
            (path == NULL || strcmp(path, q_paths[i % 4]) == 0) &&
            (source == NULL || strcmp(source, q_source(i)) == 0))
            n++;
    return n;
}

static int query_count(const char *db, const struct audit_filter *f)
{
    struct pv_err err = {PV_OK, ""};
    cJSON *rows = NULL;
    int n;

    if (audit_query(db, f, &rows, &err) != PV_OK) {
        t_diag("audit_query: %s", err.msg);
        return -1;
    }
    n = cJSON_GetArraySize(rows);
    cJSON_Delete(rows);
    return n;
}

static void test_query(void)
{
    char path[128];
    char out_path[128];
    struct audit *a;
    struct audit_filter f;
    struct pv_err err = {PV_OK, ""};
    cJSON *rows = NULL;
    char first_path[32];
    int ok = 0;
    int sorted = 1;

    db_path(path, sizeof(path), "query.db");
    a = open_store(path, false, 0, 0);
    if (!T_OK(a != NULL))
        return;
    for (int i = 0; i < NQ; i++) {
        char v[512];
        struct audit_record *r;

        q_violations(i, v, sizeof(v));
        r = make_record(T0 + i * 60000, q_team(i), q_service(i), q_paths[i % 4], q_source(i), v);
        r->is_dry_run = i == 7;
        if (audit_submit(a, r, in_ms(30000), NULL) == PV_OK)
            ok++;
    }
    audit_close(a);
    T_EQ_INT(ok, NQ);

    static const struct {
        const char *team, *service, *policy, *path, *source;
    } cases[] = {
        {NULL, NULL, NULL, NULL, NULL},
        {"payments", NULL, NULL, NULL, NULL},
        {"payments", "api", NULL, NULL, NULL},
        {NULL, "web", NULL, NULL, NULL},
        {NULL, NULL, "psa-restricted", NULL, NULL},
        {NULL, NULL, "no-latest", NULL, NULL},
        {"search", NULL, "psa-restricted", NULL, NULL},
        {NULL, NULL, NULL, "off-road", NULL},
        {NULL, NULL, NULL, NULL, "ci"},
        {NULL, NULL, "no-such-policy", NULL, NULL},
        {"nobody", NULL, NULL, NULL, NULL},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        memset(&f, 0, sizeof(f));
        f.team = cases[c].team;
        f.service = cases[c].service;
        f.policy = cases[c].policy;
        f.path = cases[c].path;
        f.source = cases[c].source;
        if (!T_EQ_INT(query_count(path, &f),
                      expect_count(f.team, f.service, f.policy, f.path, f.source, 0, NQ)))
            t_diag("filter case %zu", c);
    }
    /* Time range: since inclusive, until exclusive. */
    memset(&f, 0, sizeof(f));
    f.since_ms = T0 + 5 * 60000;
    f.until_ms = T0 + 10 * 60000;
    T_EQ_INT(query_count(path, &f), 5);
    f.team = "payments";
    T_EQ_INT(query_count(path, &f), expect_count("payments", NULL, NULL, NULL, NULL, 5, 10));
    memset(&f, 0, sizeof(f));
    f.since_ms = T0 + 15 * 60000;
    T_EQ_INT(query_count(path, &f), 5);

    /* Limit and order: newest first. */
    memset(&f, 0, sizeof(f));
    f.limit = 3;
    T_EQ_INT(audit_query(path, &f, &rows, &err), PV_OK);
    T_EQ_INT(cJSON_GetArraySize(rows), 3);
    {
        const cJSON *o = cJSON_GetArrayItem(rows, 0);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "time_ms");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "violations");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "dry_run");
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "hash");
        const cJSON *actor = cJSON_GetObjectItemCaseSensitive(o, "actor");
        const cJSON *prev = NULL;
        const cJSON *el;

        T_OK(cJSON_IsNumber(t) && (int64_t)t->valuedouble == T0 + 19 * 60000);
        T_OK(cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3); /* i = 19: [v, p, p] */
        T_OK(cJSON_IsFalse(d));
        T_OK(cJSON_IsString(h) && strlen(h->valuestring) == 64);
        T_OK(cJSON_IsNull(actor));
        T_EQ_STR(cJSON_GetObjectItemCaseSensitive(o, "team")->valuestring, q_team(19));
        cJSON_ArrayForEach(el, rows)
        {
            const cJSON *te = cJSON_GetObjectItemCaseSensitive(el, "time_ms");

            if (prev != NULL && te->valuedouble >= prev->valuedouble)
                sorted = 0;
            prev = te;
        }
        T_OK(sorted);
    }
    cJSON_Delete(rows);
    rows = NULL;
    /* dry_run comes back as true. */
    memset(&f, 0, sizeof(f));
    f.since_ms = T0 + 7 * 60000;
    f.until_ms = T0 + 8 * 60000;
    T_EQ_INT(audit_query(path, &f, &rows, &err), PV_OK);
    T_OK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rows, 0), "dry_run")));
    cJSON_Delete(rows);

    /* services: first sight wins. */
    T_EQ_INT(query_long(path, "SELECT count(*) FROM services"), 4);
    query_text(path, "SELECT first_path FROM services WHERE team='payments' AND service='api'",
               first_path, sizeof(first_path));
    T_EQ_STR(first_path, "golden"); /* i = 0 */
    T_EQ_INT(query_long(path, "SELECT count(*) FROM decision_policies"),
             expect_count(NULL, NULL, "no-latest", NULL, NULL, 0, NQ) +
                 expect_count(NULL, NULL, "psa-restricted", NULL, NULL, 0, NQ));

    /* Export: one JSON object per line, oldest first. */
    {
        FILE *fp = fopen(db_path(out_path, sizeof(out_path), "export.jsonl"), "w+");
        char line[8192];
        int lines = 0;
        int parsed = 0;
        double last = 0;
        int ordered = 1;

        if (!T_OK(fp != NULL))
            return;
        T_EQ_INT(audit_export(path, fp, &err), PV_OK);
        rewind(fp);
        while (fgets(line, sizeof(line), fp) != NULL) {
            cJSON *o = cJSON_Parse(line);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "time_ms");

            lines++;
            if (o != NULL && cJSON_IsNumber(t)) {
                parsed++;
                if (t->valuedouble < last)
                    ordered = 0;
                last = t->valuedouble;
            }
            cJSON_Delete(o);
        }
        fclose(fp);
        T_EQ_INT(lines, NQ);
        T_EQ_INT(parsed, NQ);
        T_OK(ordered);
    }
}

/* ---- Reading while a server writes ---- */

static void test_read_while_writing(void)
{
    char path[128];
    struct audit_verify_result res;
    struct audit *a;
    int rows;

    db_path(path, sizeof(path), "live.db");
    a = open_store(path, false, 0, 0);
    if (!T_OK(a != NULL))
        return;
    for (int i = 0; i < 50; i++)
        audit_submit(a, simple_record(), in_ms(30000), NULL);
    rows = verify_rows(path, &res); /* the store is still open */
    T_EQ_INT(rows, 50);
    audit_close(a);
}

/* ---- Setup ---- */

/* ---- audit_submit_cb ---- */

struct cb_count {
    pthread_mutex_t mu;
    int ok;
    int failed;
};

static void count_done(void *arg, pv_status rc, const char *msg)
{
    struct cb_count *c = arg;

    (void)msg;
    pthread_mutex_lock(&c->mu);
    if (rc == PV_OK)
        c->ok++;
    else
        c->failed++;
    pthread_mutex_unlock(&c->mu);
}

static void test_submit_cb(void)
{
    char path[128];
    struct cb_count c = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    struct audit_verify_result res;
    struct pv_err err = {PV_OK, ""};
    struct audit *a = open_store(db_path(path, sizeof(path), "cb.db"), false, 0, 0);
    struct audit_record *bad;
    int queued = 0;

    if (!T_OK(a != NULL))
        return;
    /* Many records queued without waiting: every callback runs once, after its commit. */
    for (int i = 0; i < 2000; i++)
        queued += audit_submit_cb(a, simple_record(), UINT64_MAX, count_done, &c, &err) == PV_OK;
    T_EQ_INT(queued, 2000);
    /* A record refused before queueing: an error, and its callback never runs. */
    bad = simple_record();
    free(bad->team);
    bad->team = NULL;
    T_EQ_INT(audit_submit_cb(a, bad, UINT64_MAX, count_done, &c, &err), PV_EINVAL);
    audit_close(a);
    T_EQ_INT(c.ok, 2000);
    T_EQ_INT(c.failed, 0);
    T_EQ_INT(verify_rows(path, &res), 2000);
    T_OK(res.is_ok);
}

/* ---- audit_backup ---- */

static void *backup_writer(void *arg)
{
    struct audit *a = arg;
    struct pv_err err = {PV_OK, ""};

    for (int i = 0; i < 3000; i++)
        audit_submit(a, simple_record(), UINT64_MAX, &err);
    return NULL;
}

static void test_backup(void)
{
    char path[128];
    char copy[128];
    struct pv_err err = {PV_OK, ""};
    struct audit_verify_result res;
    struct audit *a = open_store(db_path(path, sizeof(path), "bk.db"), false, 0, 0);
    pthread_t t;
    int copies_ok = 0;

    if (!T_OK(a != NULL))
        return;
    db_path(copy, sizeof(copy), "bk-copy.db");
    pthread_create(&t, NULL, backup_writer, a);
    /* Copies taken while the writer commits: each a consistent, verifiable snapshot. */
    for (int i = 0; i < 5; i++) {
        if (audit_backup(path, copy, true, &err) == PV_OK && verify_rows(copy, &res) >= 0)
            copies_ok++;
        else
            t_diag("backup %d: %s", i, err.msg);
    }
    pthread_join(t, NULL);
    T_EQ_INT(copies_ok, 5);
    /* An existing target is refused without force, and left as it was. */
    T_EQ_INT(audit_backup(path, copy, false, &err), PV_EINVAL);
    T_OK(strstr(err.msg, "exists") != NULL);
    audit_close(a);
    T_EQ_INT(audit_backup(path, copy, true, &err), PV_OK);
    T_EQ_INT(verify_rows(copy, &res), 3000);
    /* A copy has no write-ahead log of its own. */
    {
        char wal[160];
        struct stat st;

        snprintf(wal, sizeof(wal), "%s-wal", copy);
        T_OK(stat(wal, &st) != 0);
    }
    T_EQ_INT(audit_backup("/nonexistent/x.db", copy, true, &err) != PV_OK, 1);
}

static void remove_dir(const char *d)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    char p[512];

    if (dp == NULL)
        return;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", d, e->d_name);
        unlink(p);
    }
    closedir(dp);
    rmdir(d);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/paved-audit.XXXXXX",
             tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_ids();
    test_threads();
    test_tamper();
    test_async();
    test_queue_full();
    test_disk_failure();
    test_bad_input();
    test_query();
    test_read_while_writing();
    test_submit_cb();
    test_backup();
    remove_dir(dir);
    return t_done();
}
