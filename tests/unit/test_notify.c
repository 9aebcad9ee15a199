/* tests/unit/test_notify.c: outbound notifications: the notifications: config section,
 * the outbox API (audit/outbox.c), `paved notify`, and the notifier (webhooks/notify.c)
 * against a real HTTP receiver on 127.0.0.1: delivery, headers and signature, Slack text,
 * retries with backoff and jitter, dead-lettering, an endpoint down then up, http://
 * refused, unknown endpoints, and rows surviving a stop, an abandoned transfer or a
 * crashed deliverer. Real SQLite files in a mkdtemp directory, removed at the end. */
#include "notify.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>

#include "audit.h"
#include "clock.h"
#include "cmd_notify.h"
#include "config.h"
#include "outbox.h"
#include "t.h"

static char dir[64];

#define WAIT_MAX_MS 5000

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---- A real HTTP receiver on 127.0.0.1 ---- */

#define RECV_MAX 32
#define RECV_BUF 65536

struct recv_req {
    char method[16];
    char target[256];
    char head[8192]; /* header lines, "\r\n"-separated */
    char *body;
    size_t body_len;
    int64_t answered_ms; /* clock_wall_ms() just before the answer was written */
};

struct receiver {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    int status;                     /* guarded by mu: the status to answer */
    bool is_hang;                   /* guarded by mu: hold the connection without answering */
    bool is_stop;                   /* guarded by mu */
    struct recv_req reqs[RECV_MAX]; /* guarded by mu */
    size_t n;                       /* guarded by mu */
};

static bool recv_stopping(struct receiver *r)
{
    bool is_stop;

    pthread_mutex_lock(&r->mu);
    is_stop = r->is_stop;
    pthread_mutex_unlock(&r->mu);
    return is_stop;
}

/* Reads one request (head and Content-Length body) from 'c' into 'q'. */
static bool read_request(int c, struct recv_req *q)
{
    char *buf = malloc(RECV_BUF);
    size_t len = 0;
    char *end = NULL;
    size_t head_len;
    size_t content_len = 0;
    const char *cl;
    bool is_ok = false;

    while (end == NULL && len < RECV_BUF - 1) {
        ssize_t k = recv(c, buf + len, RECV_BUF - 1 - len, 0);

        if (k <= 0)
            goto done;
        len += (size_t)k;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (end == NULL)
        goto done;
    head_len = (size_t)(end - buf);
    if (sscanf(buf, "%15s %255s", q->method, q->target) != 2)
        goto done;
    {
        const char *eol = strstr(buf, "\r\n");
        size_t n = head_len - (size_t)(eol + 2 - buf);

        if (n >= sizeof(q->head))
            n = sizeof(q->head) - 1;
        memcpy(q->head, eol + 2, n);
        q->head[n] = '\0';
    }
    cl = strcasestr(q->head, "Content-Length:");
    if (cl != NULL)
        content_len = strtoul(cl + 15, NULL, 10);
    if (content_len > RECV_BUF - 1)
        goto done;
    q->body = malloc(content_len + 1);
    q->body_len = len - head_len - 4;
    if (q->body_len > content_len)
        q->body_len = content_len;
    memcpy(q->body, end + 4, q->body_len);
    while (q->body_len < content_len) {
        ssize_t k = recv(c, q->body + q->body_len, content_len - q->body_len, 0);

        if (k <= 0)
            goto done;
        q->body_len += (size_t)k;
    }
    q->body[q->body_len] = '\0';
    is_ok = true;
done:
    free(buf);
    return is_ok;
}

static void *recv_run(void *arg)
{
    struct receiver *r = arg;

    while (!recv_stopping(r)) {
        struct pollfd p = {r->fd, POLLIN, 0};
        struct timeval tv = {2, 0};
        struct recv_req q;
        char answer[128];
        int status;
        int c;

        if (poll(&p, 1, 20) <= 0)
            continue;
        c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        memset(&q, 0, sizeof(q));
        if (!read_request(c, &q)) {
            free(q.body);
            close(c);
            continue;
        }
        pthread_mutex_lock(&r->mu);
        if (r->n < RECV_MAX) {
            r->reqs[r->n++] = q;
            q.body = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        free(q.body);
        /* Hang: hold the connection (bounded: 15 s) until released, stopped, or the
         * client gives up and closes it. */
        for (int i = 0; i < 1500; i++) {
            struct pollfd cp = {c, POLLIN, 0};
            char byte;
            bool is_hang;

            pthread_mutex_lock(&r->mu);
            is_hang = r->is_hang && !r->is_stop;
            pthread_mutex_unlock(&r->mu);
            if (!is_hang)
                break;
            if (poll(&cp, 1, 10) > 0 && recv(c, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
                break;
        }
        pthread_mutex_lock(&r->mu);
        status = r->status;
        if (r->n > 0)
            r->reqs[r->n - 1].answered_ms = clock_wall_ms();
        pthread_mutex_unlock(&r->mu);
        snprintf(answer, sizeof(answer),
                 "HTTP/1.1 %d X\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", status);
        /* The client may be gone (an abandoned transfer): nothing to do about it. */
        (void)send(c, answer, strlen(answer), MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

/* Listens on 127.0.0.1:'port' (0: any free port). Returns false when it cannot. */
static bool recv_start(struct receiver *r, int port, int status)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int one = 1;

    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->status = status;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (r->fd < 0 || bind(r->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(r->fd, 64) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&a, &alen) != 0) {
        t_diag("receiver: %s", strerror(errno));
        if (r->fd >= 0)
            close(r->fd);
        pthread_mutex_destroy(&r->mu);
        return false;
    }
    r->port = ntohs(a.sin_port);
    pthread_create(&r->thread, NULL, recv_run, r);
    return true;
}

static void recv_stop(struct receiver *r)
{
    pthread_mutex_lock(&r->mu);
    r->is_stop = true;
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    close(r->fd);
    for (size_t i = 0; i < r->n; i++)
        free(r->reqs[i].body);
    pthread_mutex_destroy(&r->mu);
}

static size_t recv_count(struct receiver *r)
{
    size_t n;

    pthread_mutex_lock(&r->mu);
    n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void recv_set(struct receiver *r, int status, bool is_hang)
{
    pthread_mutex_lock(&r->mu);
    r->status = status;
    r->is_hang = is_hang;
    pthread_mutex_unlock(&r->mu);
}

/* Waits until the receiver has seen 'n' requests; false after WAIT_MAX_MS. */
static bool recv_wait(struct receiver *r, size_t n)
{
    uint64_t end = mono_ms() + WAIT_MAX_MS;

    while (recv_count(r) < n && mono_ms() < end)
        sleep_ms(5);
    return recv_count(r) >= n;
}

/* Copies the value of header 'name' of request 'q' into 'out' ("" when absent). */
static const char *header(const struct recv_req *q, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = q->head;

    out[0] = '\0';
    while (*p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);

        if (len > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            size_t vlen;

            while (*v == ' ')
                v++;
            vlen = len - (size_t)(v - p);
            if (vlen >= cap)
                vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return out;
        }
        if (eol == NULL)
            break;
        p = eol + 2;
    }
    return out;
}

/* A port on which nothing listens (bound once by the kernel's choice, then closed). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = 0;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- The store ---- */

static void make_store(char *path, size_t cap, const char *name)
{
    struct audit_options opt;
    struct audit *a = NULL;
    struct pv_err err = {PV_OK, ""};

    snprintf(path, cap, "%s/%s", dir, name);
    memset(&opt, 0, sizeof(opt));
    opt.path = path;
    if (audit_open(&a, &opt, &err) != PV_OK)
        t_diag("audit_open(%s): %s", path, err.msg);
    audit_close(a);
}

/* Inserts a pending row as the audit writer does; returns its id (0 on failure). */
static int64_t insert_row(const char *path, const char *endpoint, const char *event,
                          const char *body)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t now = clock_wall_ms();
    int64_t id = 0;

    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "INSERT INTO outbox (endpoint, event, body, created_ms, state, attempts,"
                           " next_ms) VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?4)",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_bind_text(st, 1, endpoint, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, event, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        if (sqlite3_step(st) == SQLITE_DONE)
            id = sqlite3_last_insert_rowid(db);
    }
    if (id == 0)
        t_diag("insert_row: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return id;
}

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        t_diag("sql %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

struct row {
    char state[16];
    int attempts;
    int64_t next_ms;
    int last_status; /* -1: NULL */
    char last_error[600];
    bool is_found;
};

static struct row get_row(const char *path, int64_t id)
{
    struct row r;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    memset(&r, 0, sizeof(r));
    r.last_status = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT state, attempts, next_ms, last_status, last_error FROM outbox "
                           "WHERE id = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            r.is_found = true;
            snprintf(r.state, sizeof(r.state), "%s", (const char *)sqlite3_column_text(st, 0));
            r.attempts = sqlite3_column_int(st, 1);
            r.next_ms = sqlite3_column_int64(st, 2);
            if (sqlite3_column_type(st, 3) != SQLITE_NULL)
                r.last_status = sqlite3_column_int(st, 3);
            if (sqlite3_column_type(st, 4) != SQLITE_NULL)
                snprintf(r.last_error, sizeof(r.last_error), "%s",
                         (const char *)sqlite3_column_text(st, 4));
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return r;
}

/* Waits until row 'id' is in 'state'; returns the row as last read (WAIT_MAX_MS). */
static struct row wait_state(const char *path, int64_t id, const char *state)
{
    uint64_t end = mono_ms() + WAIT_MAX_MS;
    struct row r = get_row(path, id);

    while (strcmp(r.state, state) != 0 && mono_ms() < end) {
        sleep_ms(5);
        r = get_row(path, id);
    }
    return r;
}

/* Waits until row 'id' has at least 'attempts' attempts (WAIT_MAX_MS). */
static struct row wait_attempts(const char *path, int64_t id, int attempts)
{
    uint64_t end = mono_ms() + WAIT_MAX_MS;
    struct row r = get_row(path, id);

    while (r.attempts < attempts && mono_ms() < end) {
        sleep_ms(2);
        r = get_row(path, id);
    }
    return r;
}

/* ---- Helpers for the notifier ---- */

static const char secret[] = "s3cr3t-key-for-tests";

static struct notify_endpoint endpoint(const char *name, const char *url, bool is_slack)
{
    struct notify_endpoint e;

    memset(&e, 0, sizeof(e));
    e.name = name;
    e.url = url;
    e.secret = secret;
    e.secret_len = strlen(secret);
    e.is_http_allowed = true;
    e.is_slack = is_slack;
    e.timeout_ms = 2000;
    return e;
}

static struct notify *start(const char *path)
{
    struct notify *n = NULL;
    struct pv_err err = {PV_OK, ""};

    if (notify_start(&n, path, &err) != PV_OK)
        t_diag("notify_start: %s", err.msg);
    return n;
}

static const char body1[] =
    "{\"event\":\"exception.approved\",\"time\":\"2026-12-04T10:00:00Z\",\"summary\":\"EXC-1 "
    "for payments/api was approved by alice\",\"exception\":{\"id\":\"EXC-1\"}}";

/* ---- Config ---- */

static void test_config_good(void)
{
    char path[128];
    char yaml[2048];
    struct config *cfg = NULL;
    struct pv_err err = {PV_OK, ""};
    FILE *f;
    const struct cfg_endpoint *e;

    snprintf(path, sizeof(path), "%s/hook.secret", dir);
    f = fopen(path, "w");
    fputs("file-secret\n", f);
    fclose(f);
    setenv("PAVED_TEST_HOOK_SECRET", "env-secret", 1);
    snprintf(yaml, sizeof(yaml),
             "bindings: []\n"
             "notifications:\n"
             "  max_attempts: 5\n"
             "  backoff_initial_ms: 100\n"
             "  backoff_max_ms: 1000\n"
             "  endpoints:\n"
             "    - name: platform-slack\n"
             "      url: https://hooks.example/x\n"
             "      secret_env: PAVED_TEST_HOOK_SECRET\n"
             "      events: [exception.*, breakglass.started, decision.denied]\n"
             "      policies: [psa-restricted]\n"
             "      slack: true\n"
             "      timeout_ms: 3000\n"
             "      cacert: /etc/paved/hook-ca.pem\n"
             "    - name: local_audit.v1\n"
             "      url: http://127.0.0.1:9/h\n"
             "      allow_http: true\n"
             "      secret_file: %s\n"
             "    - name: inline\n"
             "      url: https://x.example/\n"
             "      secret: \"inline-secret\"\n",
             path);
    if (!T_EQ_INT(config_parse(&cfg, yaml, strlen(yaml), "t.yaml", &err), PV_OK)) {
        t_diag("%s", err.msg);
        return;
    }
    T_EQ_INT(cfg->notifications.max_attempts, 5);
    T_EQ_INT(cfg->notifications.backoff_initial_ms, 100);
    T_EQ_INT(cfg->notifications.backoff_max_ms, 1000);
    T_EQ_INT(cfg->notifications.n_endpoints, 3);
    e = &cfg->notifications.endpoints[0];
    T_EQ_STR(e->name, "platform-slack");
    T_EQ_STR(e->url, "https://hooks.example/x");
    T_EQ_INT(e->secret_len, strlen("env-secret"));
    T_OK(e->secret != NULL && memcmp(e->secret, "env-secret", e->secret_len) == 0);
    T_EQ_INT(cJSON_GetArraySize(e->events), 3);
    T_EQ_INT(cJSON_GetArraySize(e->policies), 1);
    T_OK(e->is_slack);
    T_OK(!e->is_http_allowed);
    T_EQ_INT(e->timeout_ms, 3000);
    T_EQ_STR(e->cacert, "/etc/paved/hook-ca.pem");
    e = &cfg->notifications.endpoints[1];
    T_EQ_STR(e->name, "local_audit.v1");
    T_EQ_INT(e->secret_len, strlen("file-secret")); /* the newline is not part of it */
    T_OK(e->secret != NULL && memcmp(e->secret, "file-secret", e->secret_len) == 0);
    T_OK(e->is_http_allowed);
    T_OK(e->events == NULL && e->policies == NULL);
    T_EQ_INT(e->timeout_ms, 5000);
    T_OK(e->cacert == NULL);
    e = &cfg->notifications.endpoints[2];
    T_OK(e->secret != NULL && e->secret_len == 13 && memcmp(e->secret, "inline-secret", 13) == 0);
    {
        /* The inline copy in the parsed tree is wiped. */
        const cJSON *nt = cJSON_GetObjectItemCaseSensitive(cfg->root, "notifications");
        const cJSON *eps = cJSON_GetObjectItemCaseSensitive(nt, "endpoints");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(eps, 2), "secret");

        T_OK(cJSON_IsString(s) && strstr(s->valuestring, "inline") == NULL);
    }
    config_free(cfg);

    /* Defaults when the section is absent. */
    cfg = NULL;
    if (T_EQ_INT(config_parse(&cfg, "bindings: []\n", 13, "t.yaml", &err), PV_OK)) {
        T_EQ_INT(cfg->notifications.n_endpoints, 0);
        T_EQ_INT(cfg->notifications.max_attempts, 8);
        T_EQ_INT(cfg->notifications.backoff_initial_ms, 1000);
        T_EQ_INT(cfg->notifications.backoff_max_ms, 300000);
        config_free(cfg);
    }
    unlink(path);
}

static void test_config_errors(void)
{
    static const struct {
        const char *endpoints; /* YAML under notifications:, or the whole section */
        const char *want1;
        const char *want2;
    } cases[] = {
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n      secrt: x\n",
         "notifications.endpoints[0] (a): unknown key \"secrt\"", "expected one of"},
        {"  endpoints:\n    - name: a\n      url: http://x/\n      secret: k\n",
         "notifications.endpoints[0] (a): url", "allow_http"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n"
         "      secret_env: HOME\n",
         "notifications.endpoints[0] (a)", "exactly one of secret_env"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n", "notifications.endpoints[0] (a)",
         "exactly one of secret_env"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n"
         "      events: [exception.approved, exception.approve]\n",
         "notifications.endpoints[0] (a): events[1]", "unknown event \"exception.approve\""},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n"
         "    - name: a\n      url: https://y/\n      secret: k\n",
         "notifications.endpoints[1]: name \"a\" is already used", "endpoints[0]"},
        {"  endpoints:\n    - name: A b\n      url: https://x/\n      secret: k\n",
         "notifications.endpoints[0]: name \"A b\"", "a-z"},
        {"  endpoints:\n    - url: https://x/\n      secret: k\n",
         "notifications.endpoints[0]: name is required", NULL},
        {"  endpoints:\n    - name: a\n      secret: k\n", "notifications.endpoints[0] (a)",
         "url is required"},
        {"  endpoints:\n    - name: a\n      url: ftp://x/\n      secret: k\n",
         "notifications.endpoints[0] (a): url", "https://"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret_env: PAVED_NOT_SET_X\n",
         "notifications.endpoints[0] (a): secret_env", "PAVED_NOT_SET_X is not set"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret_file: /nonexistent/s\n",
         "notifications.endpoints[0] (a): secret_file", "/nonexistent/s"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n"
         "      events: [decision.denied]\n",
         "notifications.endpoints[0] (a)", "policies"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n"
         "      events: [exception.*]\n      policies: [p]\n",
         "notifications.endpoints[0] (a): policies", "decision.denied"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n"
         "      timeout_ms: 50\n",
         "notifications.endpoints[0] (a): timeout_ms", "100 to 60000"},
        {"  endpoints:\n    - name: a\n      url: https://x/\n      secret: k\n"
         "      slack: maybe\n",
         "notifications.endpoints[0] (a): slack", "true or false"},
        {"  max_attempt: 3\n", "notifications: unknown key \"max_attempt\"", NULL},
        {"  max_attempts: 0\n", "notifications: max_attempts", "1 to 100"},
        {"  backoff_initial_ms: 5000\n  backoff_max_ms: 1000\n", "backoff_max_ms", "at least"},
        {"  endpoints: {a: 1}\n", "notifications.endpoints must be a list", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024];
        struct config *cfg = NULL;
        struct pv_err err = {PV_OK, ""};
        pv_status rc;

        snprintf(yaml, sizeof(yaml), "bindings: []\nnotifications:\n%s", cases[i].endpoints);
        rc = config_parse(&cfg, yaml, strlen(yaml), "t.yaml", &err);
        if (!T_EQ_INT(rc, PV_ECONFIG) || !T_OK(strncmp(err.msg, "t.yaml: ", 8) == 0) ||
            !T_OK(strstr(err.msg, cases[i].want1) != NULL) ||
            !T_OK(cases[i].want2 == NULL || strstr(err.msg, cases[i].want2) != NULL))
            t_diag("case %zu: %s", i, err.msg);
        if (rc == PV_OK)
            config_free(cfg);
    }
}

/* ---- The outbox API and `paved notify` ---- */

/* Runs cmd_notify with its output sent to /dev/null; returns the exit status. */
static int run_cmd(int argc, const char *const *args)
{
    char *argv[16];
    int saved_out;
    int saved_err;
    int null_fd = open("/dev/null", O_WRONLY);
    int status;

    for (int i = 0; i < argc; i++)
        argv[i] = (char *)(uintptr_t)args[i];
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1);
    saved_err = dup(2);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    status = cmd_notify(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(null_fd);
    return status;
}

static void test_outbox_api(void)
{
    char path[128];
    struct audit_outbox *o = NULL;
    struct outbox_msg *msgs = NULL;
    struct outbox_counts counts;
    struct pv_err err = {PV_OK, ""};
    size_t n = 0;
    int64_t due = 0;
    int64_t now;
    int64_t id1, id2, id3;
    cJSON *list = NULL;

    make_store(path, sizeof(path), "api.db");
    T_EQ_INT(audit_outbox_open(&o, "/nonexistent/x.db", &err), PV_ENOENT);
    if (!T_EQ_INT(audit_outbox_open(&o, path, &err), PV_OK)) {
        t_diag("%s", err.msg);
        return;
    }
    T_EQ_INT(audit_outbox_next_due_ms(o, &due, &err), PV_OK);
    T_EQ_INT(due, -1);
    id1 = insert_row(path, "a", "exception.approved", body1);
    id2 = insert_row(path, "b", "breakglass.started", "{\"summary\":\"x\"}");
    id3 = insert_row(path, "a", "exception.denied", "{}");
    now = clock_wall_ms();

    /* A claim leases: the same rows are not handed out again until the lease passes. */
    T_EQ_INT(audit_outbox_claim(o, now, 60000, 2, &msgs, &n, &err), PV_OK);
    if (T_EQ_INT(n, 2)) {
        T_EQ_INT(msgs[0].id, id1);
        T_EQ_INT(msgs[1].id, id2);
        T_EQ_STR(msgs[0].endpoint, "a");
        T_EQ_STR(msgs[0].event, "exception.approved");
        T_EQ_STR(msgs[0].body, body1);
        T_EQ_INT(msgs[0].body_len, strlen(body1));
        T_EQ_INT(msgs[0].attempts, 0);
    }
    audit_outbox_msgs_free(msgs, n);
    T_EQ_INT(audit_outbox_claim(o, now, 60000, 10, &msgs, &n, &err), PV_OK);
    T_OK(n == 1 && msgs[0].id == id3);
    audit_outbox_msgs_free(msgs, n);
    T_EQ_INT(audit_outbox_claim(o, now, 60000, 10, &msgs, &n, &err), PV_OK);
    T_OK(n == 0 && msgs == NULL);
    T_EQ_INT(get_row(path, id1).next_ms, now + 60000);
    T_EQ_INT(audit_outbox_next_due_ms(o, &due, &err), PV_OK);
    T_EQ_INT(due, now + 60000);

    /* Outcomes. */
    T_EQ_INT(audit_outbox_delivered(o, id1, now + 5, 204, &err), PV_OK);
    T_EQ_STR(get_row(path, id1).state, "delivered");
    T_EQ_INT(get_row(path, id1).attempts, 1);
    T_EQ_INT(get_row(path, id1).last_status, 204);
    T_EQ_INT(audit_outbox_failed(o, id2, 503, "HTTP 503", now + 1000, &err), PV_OK);
    T_EQ_STR(get_row(path, id2).state, "pending");
    T_EQ_INT(get_row(path, id2).attempts, 1);
    T_EQ_INT(get_row(path, id2).next_ms, now + 1000);
    T_EQ_STR(get_row(path, id2).last_error, "HTTP 503");
    T_EQ_INT(audit_outbox_failed(o, id3, 0, "refused", -1, &err), PV_OK);
    T_EQ_STR(get_row(path, id3).state, "dead");
    T_EQ_INT(get_row(path, id3).last_status, -1);
    T_EQ_INT(audit_outbox_release(o, id2, now - 1, &err), PV_OK);
    T_EQ_INT(get_row(path, id2).next_ms, now - 1);
    T_EQ_INT(get_row(path, id2).attempts, 1);
    /* A long error is cut, never refused. */
    {
        char big[2000];

        memset(big, 'e', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        T_EQ_INT(audit_outbox_failed(o, id2, 500, big, now, &err), PV_OK);
        T_EQ_INT(strlen(get_row(path, id2).last_error), OUTBOX_ERROR_MAX);
    }
    T_EQ_INT(audit_outbox_counts(o, &counts, &err), PV_OK);
    T_EQ_INT(counts.pending, 1);
    T_EQ_INT(counts.dead, 1);
    T_OK(counts.oldest_pending_ms > 0 && counts.oldest_pending_ms <= now);
    audit_outbox_close(o);

    /* List. */
    if (T_EQ_INT(audit_outbox_list(path, NULL, 0, &list, &err), PV_OK)) {
        const cJSON *first = cJSON_GetArrayItem(list, 0);
        const cJSON *last = cJSON_GetArrayItem(list, 2);

        T_EQ_INT(cJSON_GetArraySize(list), 3);
        T_EQ_INT(cJSON_GetObjectItemCaseSensitive(first, "id")->valuedouble, id3); /* newest */
        T_OK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(first, "last_status")));
        T_OK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(last, "body")));
        cJSON_Delete(list);
    }
    if (T_EQ_INT(audit_outbox_list(path, "dead", 10, &list, &err), PV_OK)) {
        T_EQ_INT(cJSON_GetArraySize(list), 1);
        cJSON_Delete(list);
    }
    T_EQ_INT(audit_outbox_list(path, "lost", 10, &list, &err), PV_EINVAL);
    T_EQ_INT(audit_outbox_list("/nonexistent/x.db", NULL, 10, &list, &err), PV_ENOENT);

    /* Retry. */
    T_EQ_INT(audit_outbox_retry(path, id1, false, now, &n, &err), PV_EINVAL); /* delivered */
    T_OK(strstr(err.msg, "already delivered") != NULL);
    n = 99;
    T_EQ_INT(audit_outbox_retry(path, 999, false, now, &n, &err), PV_OK);
    T_EQ_INT(n, 0);
    T_EQ_INT(audit_outbox_retry("/nonexistent/x.db", 1, false, now, &n, &err), PV_ENOENT);
    T_EQ_INT(audit_outbox_retry(path, 0, true, now + 7, &n, &err), PV_OK);
    T_EQ_INT(n, 1);
    T_EQ_STR(get_row(path, id3).state, "pending");
    T_EQ_INT(get_row(path, id3).attempts, 0);
    T_EQ_INT(get_row(path, id3).next_ms, now + 7);
    T_EQ_STR(get_row(path, id3).last_error, "refused"); /* kept as a record */
    T_EQ_INT(audit_outbox_retry(path, 0, true, now, &n, &err), PV_OK);
    T_EQ_INT(n, 0);

    /* paved notify: exit statuses. */
    {
        char id_text[24];
        const char *list_all[] = {"notify", "list", "--db", path};
        const char *list_json[] = {"notify",  "list",    "--db",     path,
                                   "--state", "pending", "--format", "json"};
        const char *list_bad[] = {"notify", "list", "--db", path, "--state", "lost"};
        const char *list_missing[] = {"notify", "list", "--db", "/nonexistent/x.db"};
        const char *retry_dead[] = {"notify", "retry", "--db", path, "--dead"};
        const char *retry_none[] = {"notify", "retry", "--db", path, "12345"};
        const char *retry_both[] = {"notify", "retry", "--db", path, "--dead", "1"};
        const char *retry_bad[] = {"notify", "retry", "--db", path, "x1"};
        const char *retry_one[] = {"notify", "retry", "--db", path, id_text};
        const char *help[] = {"notify", "retry", "--help"};

        T_EQ_INT(run_cmd(4, list_all), 0);
        T_EQ_INT(run_cmd(8, list_json), 0);
        T_EQ_INT(run_cmd(6, list_bad), 2);
        T_EQ_INT(run_cmd(4, list_missing), 2);
        T_EQ_INT(run_cmd(5, retry_dead), 1); /* nothing is dead now */
        T_EQ_INT(run_cmd(5, retry_none), 1);
        T_EQ_INT(run_cmd(6, retry_both), 2);
        T_EQ_INT(run_cmd(5, retry_bad), 2);
        T_EQ_INT(run_cmd(3, help), 0);
        exec_sql(path, "UPDATE outbox SET state = 'dead' WHERE id = 3");
        snprintf(id_text, sizeof(id_text), "%" PRId64, id3);
        T_EQ_INT(run_cmd(5, retry_one), 0);
        T_EQ_STR(get_row(path, id3).state, "pending");
    }
}

/* ---- Delivery ---- */

static void check_signature(const struct recv_req *q, const char *label)
{
    char ts[64];
    char sig[128];
    char want[80] = "sha256=";
    unsigned char mac[32];
    unsigned int mac_len = 0;
    char *msg;
    size_t len;

    header(q, "X-Paved-Timestamp", ts, sizeof(ts));
    header(q, "X-Paved-Signature", sig, sizeof(sig));
    len = strlen(ts) + 1 + q->body_len;
    msg = malloc(len + 1);
    snprintf(msg, len + 1, "%s.%s", ts, q->body);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, len, mac, &mac_len);
    free(msg);
    for (unsigned int i = 0; i < mac_len; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    if (!T_EQ_STR(sig, want))
        t_diag("%s", label);
}

static void test_delivery(void)
{
    char path[128];
    char url[64];
    char h[256];
    struct receiver r;
    struct notify *n;
    struct notify_endpoint eps[2];
    struct notify_policy pol = {3, 50, 100};
    struct notify_stats st;
    int64_t t0 = clock_wall_ms();
    int64_t id1, id2;
    struct row row;

    make_store(path, sizeof(path), "deliver.db");
    if (!recv_start(&r, 0, 200))
        return;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", r.port);
    eps[0] = endpoint("plain", url, false);
    eps[1] = endpoint("chat", url, true);
    n = start(path);
    if (n == NULL) {
        recv_stop(&r);
        return;
    }
    id1 = insert_row(path, "plain", "exception.approved", body1);
    notify_wake(n);
    /* Nothing goes out before the endpoints are known. */
    sleep_ms(150);
    T_EQ_INT(recv_count(&r), 0);
    T_EQ_STR(get_row(path, id1).state, "pending");
    notify_set_endpoints(n, eps, 2, &pol);
    row = wait_state(path, id1, "delivered");
    T_EQ_STR(row.state, "delivered");
    T_EQ_INT(row.attempts, 1);
    T_EQ_INT(row.last_status, 200);
    if (T_EQ_INT(recv_count(&r), 1)) {
        const struct recv_req *q = &r.reqs[0];
        char want[32];
        long long ts;

        T_EQ_STR(q->method, "POST");
        T_EQ_STR(q->target, "/hook");
        T_EQ_STR(q->body, body1); /* byte for byte as stored */
        T_EQ_STR(header(q, "Content-Type", h, sizeof(h)), "application/json");
        T_EQ_STR(header(q, "User-Agent", h, sizeof(h)), "paved/0.1.0");
        T_EQ_STR(header(q, "X-Paved-Event", h, sizeof(h)), "exception.approved");
        snprintf(want, sizeof(want), "%" PRId64, id1);
        T_EQ_STR(header(q, "X-Paved-Delivery", h, sizeof(h)), want);
        ts = strtoll(header(q, "X-Paved-Timestamp", h, sizeof(h)), NULL, 10);
        T_OK(ts >= t0 / 1000 && ts <= clock_wall_ms() / 1000);
        T_EQ_STR(header(q, "Expect", h, sizeof(h)), "");
        check_signature(q, "plain");
    }

    /* Slack-compatible: "text" is the summary, added when sending. */
    id2 = insert_row(path, "chat", "exception.approved", body1);
    notify_wake(n);
    row = wait_state(path, id2, "delivered");
    T_EQ_STR(row.state, "delivered");
    if (T_EQ_INT(recv_count(&r), 2)) {
        const struct recv_req *q = &r.reqs[1];
        cJSON *b = cJSON_Parse(q->body);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(b, "text");
        const cJSON *summary = cJSON_GetObjectItemCaseSensitive(b, "summary");
        const cJSON *exc = cJSON_GetObjectItemCaseSensitive(b, "exception");

        T_OK(cJSON_IsString(text) && cJSON_IsString(summary) &&
             strcmp(text->valuestring, summary->valuestring) == 0);
        T_OK(cJSON_IsObject(exc));
        check_signature(q, "slack"); /* over the body as sent */
        cJSON_Delete(b);
    }
    T_OK(strstr(r.reqs[0].body, "\"text\"") == NULL);
    notify_stats(n, &st);
    T_EQ_INT(st.delivered, 2);
    T_EQ_INT(st.failed, 0);
    T_EQ_INT(st.dead, 0);
    T_OK(st.is_store_ok);
    notify_stop(n);
    recv_stop(&r);
}

/* A receiver answering 500: attempts counted, next_ms within the jitter bounds, dead
 * after max_attempts. */
static void test_retries(void)
{
    char path[128];
    char url[64];
    struct receiver r;
    struct notify *n;
    struct notify_endpoint ep;
    struct notify_policy pol = {3, 200, 300};
    struct notify_stats st;
    int64_t id;
    struct row row;

    make_store(path, sizeof(path), "retry.db");
    if (!recv_start(&r, 0, 500))
        return;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r.port);
    ep = endpoint("flaky", url, false);
    n = start(path);
    if (n == NULL) {
        recv_stop(&r);
        return;
    }
    notify_set_endpoints(n, &ep, 1, &pol);
    id = insert_row(path, "flaky", "breakglass.started", "{\"summary\":\"bg\"}");
    notify_wake(n);
    for (int k = 1; k <= 2; k++) {
        /* delay = min(300, 200 * 2^(k-1)); the wait is in [delay/2, delay]. */
        int64_t delay = k == 1 ? 200 : 300;
        int64_t answered;

        row = wait_attempts(path, id, k);
        if (!T_EQ_INT(row.attempts, k))
            break;
        T_EQ_STR(row.state, "pending");
        T_EQ_INT(row.last_status, 500);
        T_OK(strstr(row.last_error, "HTTP 500: hello") != NULL);
        pthread_mutex_lock(&r.mu);
        answered = r.n >= (size_t)k ? r.reqs[k - 1].answered_ms : 0;
        pthread_mutex_unlock(&r.mu);
        if (!T_OK(row.next_ms >= answered + delay / 2 && row.next_ms <= answered + delay + 100))
            t_diag("attempt %d: next_ms - answered = %" PRId64 ", delay %" PRId64, k,
                   row.next_ms - answered, delay);
    }
    row = wait_state(path, id, "dead");
    T_EQ_STR(row.state, "dead");
    T_EQ_INT(row.attempts, 3);
    T_EQ_INT(row.last_status, 500);
    T_EQ_INT(recv_count(&r), 3);
    /* The counts of the outbox follow its rows within a poll. */
    for (uint64_t end = mono_ms() + WAIT_MAX_MS; mono_ms() < end; sleep_ms(5)) {
        notify_stats(n, &st);
        if (st.dead_stored == 1 && st.pending == 0)
            break;
    }
    T_EQ_INT(st.failed, 3);
    T_EQ_INT(st.dead, 1);
    T_EQ_INT(st.delivered, 0);
    T_EQ_INT(st.dead_stored, 1);
    T_EQ_INT(st.pending, 0);
    notify_stop(n);
    recv_stop(&r);
}

/* Nothing listens on the port; then a receiver comes up there. */
static void test_down_then_up(void)
{
    char path[128];
    char url[64];
    struct receiver r;
    struct notify *n;
    struct notify_endpoint ep;
    struct notify_policy pol = {100, 50, 100};
    int port = free_port();
    int64_t id;
    struct row row;

    make_store(path, sizeof(path), "down.db");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    ep = endpoint("later", url, false);
    n = start(path);
    if (!T_OK(n != NULL && port > 0))
        return;
    notify_set_endpoints(n, &ep, 1, &pol);
    id = insert_row(path, "later", "exception.expiring", body1);
    notify_wake(n);
    row = wait_attempts(path, id, 2);
    T_OK(row.attempts >= 2);
    T_EQ_STR(row.state, "pending");
    T_EQ_INT(row.last_status, -1); /* no HTTP answer */
    if (!T_OK(strstr(row.last_error, "onnect") != NULL))
        t_diag("last_error: %s", row.last_error);
    if (T_OK(recv_start(&r, port, 200))) {
        row = wait_state(path, id, "delivered");
        T_EQ_STR(row.state, "delivered");
        T_EQ_INT(recv_count(&r), 1);
        recv_stop(&r);
    }
    notify_stop(n);
}

/* http:// without allow_http, and a row for an endpoint that is gone. */
static void test_refused(void)
{
    char path[128];
    char url[64];
    struct receiver r;
    struct notify *n;
    struct notify_endpoint ep;
    struct notify_policy pol = {1, 50, 100};
    struct notify_stats st;
    int64_t id1, id2;
    struct row row;

    make_store(path, sizeof(path), "refused.db");
    if (!recv_start(&r, 0, 200))
        return;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r.port);
    ep = endpoint("plain-http", url, false);
    ep.is_http_allowed = false;
    n = start(path);
    if (n == NULL) {
        recv_stop(&r);
        return;
    }
    notify_set_endpoints(n, &ep, 1, &pol);
    id1 = insert_row(path, "plain-http", "exception.revoked", body1);
    id2 = insert_row(path, "gone", "exception.revoked", body1);
    notify_wake(n);
    row = wait_state(path, id1, "dead");
    T_EQ_STR(row.state, "dead");
    T_EQ_INT(row.attempts, 1);
    if (!T_OK(strstr(row.last_error, "allow_http") != NULL))
        t_diag("last_error: %s", row.last_error);
    row = wait_state(path, id2, "dead");
    T_EQ_STR(row.state, "dead");
    T_EQ_STR(row.last_error, "endpoint gone is no longer configured");
    T_EQ_INT(recv_count(&r), 0);
    notify_stats(n, &st);
    T_EQ_INT(st.dead, 2);
    notify_stop(n);
    recv_stop(&r);
}

/* Rows outlive the notifier: a timed-out transfer, one abandoned by notify_stop, one
 * leased by a deliverer that crashed. */
static void test_restart(void)
{
    char path[128];
    char url[64];
    struct receiver r;
    struct notify *n;
    struct notify_endpoint ep;
    /* Retries wait 0.5 to 1 s: time to change the endpoint between two attempts. */
    struct notify_policy pol = {5, 1000, 1000};
    int64_t id;
    uint64_t t;
    struct row row;

    make_store(path, sizeof(path), "restart.db");
    if (!recv_start(&r, 0, 200))
        return;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", r.port);

    /* A receiver that never answers: the endpoint's timeout is a failed attempt. */
    recv_set(&r, 200, true);
    ep = endpoint("slow", url, false);
    ep.timeout_ms = 300;
    n = start(path);
    if (n == NULL) {
        recv_stop(&r);
        return;
    }
    notify_set_endpoints(n, &ep, 1, &pol);
    id = insert_row(path, "slow", "exception.expired", body1);
    notify_wake(n);
    row = wait_attempts(path, id, 1);
    T_EQ_INT(row.attempts, 1);
    T_EQ_STR(row.state, "pending");
    if (!T_OK(strstr(row.last_error, "imeout") != NULL || strstr(row.last_error, "timed out")))
        t_diag("last_error: %s", row.last_error);

    /* In flight at notify_stop: abandoned after the grace, the attempt not counted. */
    ep.timeout_ms = 30000;
    notify_set_endpoints(n, &ep, 1, &pol);
    T_OK(recv_wait(&r, 2)); /* the retry after the timeout */
    t = mono_ms();
    notify_stop(n);
    t = mono_ms() - t;
    T_OK(t >= NOTIFY_STOP_GRACE_MS - 100 && t < NOTIFY_STOP_GRACE_MS + 1500);
    row = get_row(path, id);
    T_EQ_STR(row.state, "pending");
    T_EQ_INT(row.attempts, 1);
    T_OK(row.next_ms <= clock_wall_ms());

    /* A new notifier sends it. */
    recv_set(&r, 200, false);
    n = start(path);
    if (n == NULL) {
        recv_stop(&r);
        return;
    }
    notify_set_endpoints(n, &ep, 1, &pol);
    row = wait_state(path, id, "delivered");
    T_EQ_STR(row.state, "delivered");
    T_EQ_INT(row.attempts, 2);
    notify_stop(n);

    /* A deliverer that claimed a row and died: it goes out once the lease has passed. */
    {
        struct audit_outbox *o = NULL;
        struct outbox_msg *msgs = NULL;
        struct pv_err err = {PV_OK, ""};
        size_t count = 0;
        size_t before = recv_count(&r);

        id = insert_row(path, "slow", "exception.expired", body1);
        T_EQ_INT(audit_outbox_open(&o, path, &err), PV_OK);
        T_EQ_INT(audit_outbox_claim(o, clock_wall_ms(), 400, 10, &msgs, &count, &err), PV_OK);
        T_EQ_INT(count, 1);
        audit_outbox_msgs_free(msgs, count);
        audit_outbox_close(o);
        n = start(path);
        if (n == NULL) {
            recv_stop(&r);
            return;
        }
        notify_set_endpoints(n, &ep, 1, &pol);
        sleep_ms(100);
        T_EQ_INT(recv_count(&r), before); /* still leased */
        row = wait_state(path, id, "delivered");
        T_EQ_STR(row.state, "delivered");
        T_EQ_INT(row.attempts, 1);
        notify_stop(n);
    }
    recv_stop(&r);
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

    snprintf(dir, sizeof(dir), "%s/paved-notify.XXXXXX",
             tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    /* Loopback only: no proxy from the environment in between. */
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_config_good();
    test_config_errors();
    test_outbox_api();
    test_delivery();
    test_retries();
    test_down_then_up();
    test_refused();
    test_restart();
    curl_global_cleanup();
    remove_dir(dir);
    return t_done();
}
