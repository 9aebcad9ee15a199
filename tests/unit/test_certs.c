/* tests/unit/test_certs.c: `paved certs` (server/certs.c, server/cmd_certs.c): the files
 * and their modes, the certificates parsed back with OpenSSL (chain, SANs, key type,
 * usages, validity), key/cert pairing, overwrite refusal, bad hosts and directories, and
 * the command's exit codes. Works in a mkdtemp directory it removes at the end. */
#include "certs.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cmd_certs.h"
#include "fsutil.h"
#include "t.h"
#include "xalloc.h"

static char *tmp_root;

/* ---- Helpers ---- */

/* Returns tmp_root/name; the caller frees it. */
static char *tmp_path(const char *name)
{
    return fs_join(tmp_root, name);
}

/* Returns the permission bits of 'dir'/'name', or -1 when it does not exist. */
static int file_mode(const char *dir, const char *name)
{
    char *p = fs_join(dir, name);
    struct stat st;
    int mode = -1;

    if (stat(p, &st) == 0)
        mode = (int)(st.st_mode & 07777);
    free(p);
    return mode;
}

/* Returns the certificate in 'dir'/'name' (caller frees with X509_free) or NULL. */
static X509 *load_cert(const char *dir, const char *name)
{
    char *p = fs_join(dir, name);
    FILE *f = fopen(p, "r");
    X509 *x = NULL;

    if (f != NULL) {
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    free(p);
    return x;
}

/* Returns the contents of 'dir'/'name' (caller frees) or NULL. */
static char *load_text(const char *dir, const char *name)
{
    char *p = fs_join(dir, name);
    char *text = NULL;
    size_t len;

    if (fs_read_file(p, 1 << 20, &text, &len, NULL) != PV_OK)
        text = NULL;
    free(p);
    return text;
}

/* Counts the entries of 'dir' other than "." and "..", dot-files included. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* X509_verify_cert of 'leaf' against the single trusted 'ca' for 'purpose', and
 * 'host' when not NULL. Returns 1 when it verifies. */
static int verify(X509 *ca, X509 *leaf, int purpose, const char *host)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = 0;

    if (store == NULL || ctx == NULL || ca == NULL || leaf == NULL)
        goto done;
    if (X509_STORE_add_cert(store, ca) != 1 || X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, purpose) != 1)
        goto done;
    if (host != NULL && X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0) != 1)
        goto done;
    rc = X509_verify_cert(ctx);
    if (rc != 1)
        t_diag("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
done:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

/* Returns the curve name of the certificate's public key ("" when not EC). */
static const char *curve_of(X509 *x, char *buf, size_t size)
{
    EVP_PKEY *key = X509_get0_pubkey(x);

    buf[0] = '\0';
    if (key == NULL || EVP_PKEY_get_group_name(key, buf, size, NULL) != 1)
        buf[0] = '\0';
    return buf;
}

/* Days between notBefore and notAfter (the 5-minute backdate is in *sec_out). */
static int validity_days(X509 *x, int *sec_out)
{
    int days = -1;

    *sec_out = -1;
    if (ASN1_TIME_diff(&days, sec_out, X509_get0_notBefore(x), X509_get0_notAfter(x)) != 1)
        return -1;
    return days;
}

/* Is the extension 'nid' present and critical? */
static int is_critical(X509 *x, int nid)
{
    int idx = X509_get_ext_by_NID(x, nid, -1);

    return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, idx)) == 1;
}

/* Writes the subject CN of 'x' into 'buf'. */
static const char *cn_of(X509 *x, char *buf, int size)
{
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, size) < 0)
        buf[0] = '\0';
    return buf;
}

/* Runs cmd_certs with 'args' (NULL-terminated, args[0] = "certs"), its stdout sent to
 * /dev/null so it does not mix with TAP. Returns its exit status. */
static int run_cmd(const char *const *args)
{
    char *argv[32];
    int argc = 0;
    int saved = dup(STDOUT_FILENO);
    int null_fd = open("/dev/null", O_WRONLY);
    int status;

    while (args[argc] != NULL && argc < 31) {
        argv[argc] = xstrdup(args[argc]);
        argc++;
    }
    argv[argc] = NULL;
    fflush(stdout);
    dup2(null_fd, STDOUT_FILENO);
    status = cmd_certs(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(null_fd);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return status;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- Tests ---- */

/* Defaults and --client: files, modes, and every property of the three certificates. */
static void test_defaults(void)
{
    char *dir = tmp_path("defaults/sub");
    struct certs_options opt = {.out_dir = dir, .with_client = true};
    struct pv_err err = {0};
    char buf[128];
    X509 *ca;
    X509 *tls;
    X509 *cli;
    BIGNUM *ca_serial = NULL;
    BIGNUM *tls_serial = NULL;
    int sec;

    if (!T_EQ_INT(certs_generate(&opt, &err), PV_OK))
        t_diag("err: %s", err.msg);
    T_EQ_INT(file_mode(dir, ""), 0700);
    T_EQ_INT(file_mode(dir, CERTS_CA_CERT), 0644);
    T_EQ_INT(file_mode(dir, CERTS_CA_KEY), 0600);
    T_EQ_INT(file_mode(dir, CERTS_TLS_CERT), 0644);
    T_EQ_INT(file_mode(dir, CERTS_TLS_KEY), 0600);
    T_EQ_INT(file_mode(dir, CERTS_CLIENT_CERT), 0644);
    T_EQ_INT(file_mode(dir, CERTS_CLIENT_KEY), 0600);
    T_EQ_INT(count_entries(dir), 6);

    ca = load_cert(dir, CERTS_CA_CERT);
    tls = load_cert(dir, CERTS_TLS_CERT);
    cli = load_cert(dir, CERTS_CLIENT_CERT);
    if (!T_OK(ca != NULL && tls != NULL && cli != NULL))
        goto done;

    /* The CA. */
    T_EQ_INT(X509_check_ca(ca), 1);
    T_OK(is_critical(ca, NID_basic_constraints));
    T_OK(is_critical(ca, NID_key_usage));
    T_EQ_INT(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    T_EQ_STR(cn_of(ca, buf, sizeof(buf)), "paved development CA");
    T_EQ_INT(X509_check_issued(ca, ca), X509_V_OK);
    T_EQ_STR(curve_of(ca, buf, sizeof(buf)), "prime256v1");
    T_EQ_INT(validity_days(ca, &sec), 3650);
    T_EQ_INT(sec, 300);

    /* The serving certificate. */
    T_EQ_INT(verify(ca, tls, X509_PURPOSE_SSL_SERVER, "localhost"), 1);
    T_EQ_INT(X509_check_ca(tls), 0);
    T_OK(is_critical(tls, NID_basic_constraints));
    T_EQ_INT(X509_get_extended_key_usage(tls), XKU_SSL_SERVER);
    T_EQ_INT(X509_get_key_usage(tls), KU_DIGITAL_SIGNATURE);
    T_EQ_STR(cn_of(tls, buf, sizeof(buf)), "localhost");
    T_EQ_STR(curve_of(tls, buf, sizeof(buf)), "prime256v1");
    T_EQ_INT(X509_get_signature_nid(tls), NID_ecdsa_with_SHA256);
    T_EQ_INT(X509_check_host(tls, "localhost", 0, 0, NULL), 1);
    T_EQ_INT(X509_check_ip_asc(tls, "127.0.0.1", 0), 1);
    T_EQ_INT(X509_check_ip_asc(tls, "::1", 0), 1);
    T_EQ_INT(X509_check_host(tls, "example.com", 0, 0, NULL), 0);
    T_EQ_INT(X509_check_ip_asc(tls, "10.0.0.1", 0), 0);
    T_EQ_INT(validity_days(tls, &sec), 365);
    T_EQ_INT(verify(ca, tls, X509_PURPOSE_SSL_CLIENT, NULL), 0); /* serverAuth only */

    /* Serials: random, positive, at most 128 bits, distinct. */
    ca_serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);
    tls_serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(tls), NULL);
    if (T_OK(ca_serial != NULL && tls_serial != NULL)) {
        T_OK(!BN_is_negative(tls_serial) && !BN_is_zero(tls_serial));
        T_OK(BN_num_bits(tls_serial) <= 128 && BN_num_bits(tls_serial) > 64);
        T_OK(BN_cmp(ca_serial, tls_serial) != 0);
    }

    /* The client certificate. */
    T_EQ_INT(verify(ca, cli, X509_PURPOSE_SSL_CLIENT, NULL), 1);
    T_EQ_INT(X509_get_extended_key_usage(cli), XKU_SSL_CLIENT);
    T_EQ_INT(X509_check_ca(cli), 0);
    T_EQ_STR(cn_of(cli, buf, sizeof(buf)), "paved development client");
    T_EQ_STR(curve_of(cli, buf, sizeof(buf)), "prime256v1");

    /* Key pairs. */
    {
        char *ca_crt = fs_join(dir, CERTS_CA_CERT);
        char *ca_key = fs_join(dir, CERTS_CA_KEY);
        char *tls_crt = fs_join(dir, CERTS_TLS_CERT);
        char *tls_key = fs_join(dir, CERTS_TLS_KEY);
        char *cli_crt = fs_join(dir, CERTS_CLIENT_CERT);
        char *cli_key = fs_join(dir, CERTS_CLIENT_KEY);
        char *missing = fs_join(dir, "missing.key");

        T_EQ_INT(certs_check_pair(ca_crt, ca_key, NULL), PV_OK);
        T_EQ_INT(certs_check_pair(tls_crt, tls_key, NULL), PV_OK);
        T_EQ_INT(certs_check_pair(cli_crt, cli_key, NULL), PV_OK);
        T_EQ_INT(certs_check_pair(tls_crt, ca_key, &err), PV_EINVAL);
        T_OK(strstr(err.msg, "does not match") != NULL);
        T_OK(strstr(err.msg, "ca.key") != NULL && strstr(err.msg, "tls.crt") != NULL);
        T_EQ_INT(certs_check_pair(tls_crt, missing, &err), PV_ENOENT);
        T_OK(strstr(err.msg, "missing.key") != NULL);
        /* A certificate where the key should be, and the other way round. */
        T_EQ_INT(certs_check_pair(tls_crt, tls_crt, &err), PV_EPARSE);
        T_OK(strstr(err.msg, "private key") != NULL);
        T_EQ_INT(certs_check_pair(tls_key, tls_key, &err), PV_EPARSE);
        T_OK(strstr(err.msg, "certificate") != NULL);
        free(ca_crt);
        free(ca_key);
        free(tls_crt);
        free(tls_key);
        free(cli_crt);
        free(cli_key);
        free(missing);
    }
done:
    BN_free(ca_serial);
    BN_free(tls_serial);
    X509_free(ca);
    X509_free(tls);
    X509_free(cli);
    free(dir);
}

/* Given hosts (DNS, wildcard, IPv4, IPv6), days, and no client pair. */
static void test_hosts(void)
{
    static const char *const hosts[] = {"paved.paved-system.svc", "*.example.com", "10.0.0.7",
                                        "2001:db8::1"};
    char *dir = tmp_path("hosts");
    struct certs_options opt = {
        .out_dir = dir, .hosts = hosts, .n_hosts = 4, .days = 30, .ca_days = 60};
    struct pv_err err = {0};
    char buf[128];
    X509 *ca;
    X509 *tls;
    GENERAL_NAMES *sans = NULL;
    int sec;

    if (!T_EQ_INT(certs_generate(&opt, &err), PV_OK))
        t_diag("err: %s", err.msg);
    T_EQ_INT(count_entries(dir), 4);
    T_EQ_INT(file_mode(dir, CERTS_CLIENT_CERT), -1);
    ca = load_cert(dir, CERTS_CA_CERT);
    tls = load_cert(dir, CERTS_TLS_CERT);
    if (!T_OK(ca != NULL && tls != NULL))
        goto done;
    T_EQ_INT(verify(ca, tls, X509_PURPOSE_SSL_SERVER, "paved.paved-system.svc"), 1);
    T_EQ_INT(verify(ca, tls, X509_PURPOSE_SSL_SERVER, "web.example.com"), 1);
    T_EQ_STR(cn_of(tls, buf, sizeof(buf)), "paved.paved-system.svc");
    T_EQ_INT(X509_check_host(tls, "a.example.com", 0, 0, NULL), 1);
    T_EQ_INT(X509_check_ip_asc(tls, "10.0.0.7", 0), 1);
    T_EQ_INT(X509_check_ip_asc(tls, "2001:db8:0::1", 0), 1);
    T_EQ_INT(X509_check_host(tls, "localhost", 0, 0, NULL), 0);
    T_EQ_INT(X509_check_ip_asc(tls, "127.0.0.1", 0), 0);
    T_EQ_INT(validity_days(tls, &sec), 30);
    T_EQ_INT(validity_days(ca, &sec), 60);

    /* Exactly the given names, in order, with the right types. */
    sans = X509_get_ext_d2i(tls, NID_subject_alt_name, NULL, NULL);
    if (T_OK(sans != NULL) && T_EQ_INT(sk_GENERAL_NAME_num(sans), 4)) {
        static const int types[] = {GEN_DNS, GEN_DNS, GEN_IPADD, GEN_IPADD};
        static const int lens[] = {22, 13, 4, 16};

        for (int i = 0; i < 4; i++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
            int type;
            const ASN1_STRING *v = GENERAL_NAME_get0_value(gn, &type);

            T_EQ_INT(type, types[i]);
            T_EQ_INT(ASN1_STRING_length(v), lens[i]);
        }
    }
done:
    GENERAL_NAMES_free(sans);
    X509_free(ca);
    X509_free(tls);
    free(dir);
}

/* Existing files: refused without force (nothing written), replaced with force. */
static void test_overwrite(void)
{
    char *dir = tmp_path("overwrite");
    struct certs_options opt = {.out_dir = dir};
    struct pv_err err = {0};
    char *before = NULL;
    char *after = NULL;
    X509 *old_ca = NULL;
    X509 *new_ca = NULL;
    X509 *new_tls = NULL;
    char *lone = NULL;
    char *lone_key = NULL;
    int fd;

    T_EQ_INT(certs_generate(&opt, &err), PV_OK);
    before = load_text(dir, CERTS_CA_CERT);
    old_ca = load_cert(dir, CERTS_CA_CERT);
    T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
    T_OK(strstr(err.msg, "already exists") != NULL);
    T_OK(strstr(err.msg, "ca.crt") != NULL);
    after = load_text(dir, CERTS_CA_CERT);
    T_OK(before != NULL && after != NULL && strcmp(before, after) == 0);
    free(after);

    /* --client adds files to a set that exists: still refused as a whole. */
    opt.with_client = true;
    T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
    T_EQ_INT(count_entries(dir), 4);

    opt.force = true;
    if (!T_EQ_INT(certs_generate(&opt, &err), PV_OK))
        t_diag("err: %s", err.msg);
    after = load_text(dir, CERTS_CA_CERT);
    T_OK(before != NULL && after != NULL && strcmp(before, after) != 0);
    T_EQ_INT(count_entries(dir), 6); /* no temporary files left behind */
    T_EQ_INT(file_mode(dir, CERTS_CA_KEY), 0600);
    T_EQ_INT(file_mode(dir, CERTS_TLS_KEY), 0600);
    T_EQ_INT(file_mode(dir, CERTS_CLIENT_KEY), 0600);
    T_EQ_INT(file_mode(dir, CERTS_TLS_CERT), 0644);
    new_ca = load_cert(dir, CERTS_CA_CERT);
    new_tls = load_cert(dir, CERTS_TLS_CERT);
    T_EQ_INT(verify(new_ca, new_tls, X509_PURPOSE_SSL_SERVER, NULL), 1);
    T_EQ_INT(verify(old_ca, new_tls, X509_PURPOSE_SSL_SERVER, NULL), 0); /* another CA */

    /* Only tls.key exists: refused, and none of the other files appears. */
    lone = tmp_path("lone");
    T_EQ_INT(mkdir(lone, 0700), 0);
    lone_key = fs_join(lone, CERTS_TLS_KEY);
    fd = open(lone_key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    T_OK(fd >= 0);
    if (fd >= 0)
        close(fd);
    opt.out_dir = lone;
    opt.force = false;
    T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
    T_OK(strstr(err.msg, "tls.key") != NULL);
    T_EQ_INT(count_entries(lone), 1);

    free(lone_key);
    free(lone);
    X509_free(new_tls);
    X509_free(new_ca);
    X509_free(old_ca);
    free(after);
    free(before);
    free(dir);
}

/* Host entries: accepted and refused, alone and inside a list. */
static void test_bad_hosts(void)
{
    static const struct {
        const char *host;
        pv_status want;
    } cases[] = {
        {"localhost", PV_OK},
        {"paved.paved-system.svc.cluster.local", PV_OK},
        {"*.example.com", PV_OK},
        {"a-b.c", PV_OK},
        {"xn--bcher-kva.example", PV_OK},
        {"1.2.3.4", PV_OK},
        {"::1", PV_OK},
        {"2001:db8::ff00:42:8329", PV_OK},
        {"::ffff:192.0.2.1", PV_OK},
        {"", PV_EINVAL},
        {"bad host", PV_EINVAL},
        {"a..b", PV_EINVAL},
        {".a", PV_EINVAL},
        {"a.", PV_EINVAL},
        {"-a.com", PV_EINVAL},
        {"a-.com", PV_EINVAL},
        {"1.2.3", PV_EINVAL},
        {"256.1.1.1", PV_EINVAL},
        {"fe80::1%eth0", PV_EINVAL},
        {"[::1]", PV_EINVAL},
        {"under_score.com", PV_EINVAL},
        {"a,b", PV_EINVAL},
        {"*", PV_EINVAL},
        {"a.*.com", PV_EINVAL},
        {"ex\xc3\xa4mple.com", PV_EINVAL},
        {"localhost:8443", PV_EINVAL},
    };
    char label63[64];
    char label64[65];
    char name254[255];
    char *dir = tmp_path("bad-hosts");
    struct pv_err err = {0};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *hosts[] = {"localhost", cases[i].host};
        struct certs_options opt = {.out_dir = dir, .hosts = hosts, .n_hosts = 2};

        if (!T_EQ_INT(certs_check_host(cases[i].host, &err), cases[i].want))
            t_diag("host '%s': %s", cases[i].host, err.msg);
        if (cases[i].want == PV_OK)
            continue;
        if (!T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL))
            t_diag("host '%s'", cases[i].host);
        T_OK(cases[i].host[0] == '\0' ? strstr(err.msg, "empty") != NULL
                                      : strstr(err.msg, cases[i].host) != NULL);
        T_EQ_INT(file_mode(dir, ""), -1); /* checked before anything is created */
    }

    memset(label63, 'a', 63);
    label63[63] = '\0';
    memset(label64, 'a', 64);
    label64[64] = '\0';
    T_EQ_INT(certs_check_host(label63, NULL), PV_OK);
    T_EQ_INT(certs_check_host(label64, NULL), PV_EINVAL);
    memset(name254, 'a', 254);
    for (int i = 50; i < 254; i += 50)
        name254[i] = '.';
    name254[254] = '\0';
    T_EQ_INT(certs_check_host(name254, NULL), PV_EINVAL);
    name254[253] = '\0';
    T_EQ_INT(certs_check_host(name254, NULL), PV_OK);

    /* A first host too long for a CN (64 bytes) still works; the CN becomes "paved". */
    {
        const char *hosts[] = {name254};
        struct certs_options opt = {.out_dir = dir, .hosts = hosts, .n_hosts = 1};
        char buf[128];
        X509 *tls;

        T_EQ_INT(certs_generate(&opt, &err), PV_OK);
        tls = load_cert(dir, CERTS_TLS_CERT);
        if (T_OK(tls != NULL)) {
            T_EQ_STR(cn_of(tls, buf, sizeof(buf)), "paved");
            T_EQ_INT(X509_check_host(tls, name254, 0, 0, NULL), 1);
        }
        X509_free(tls);
    }

    /* Other bad options. */
    {
        const char *one[] = {"localhost"};
        struct certs_options opt = {.out_dir = dir, .force = true};

        opt.n_hosts = 1; /* hosts NULL */
        T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
        opt.hosts = one;
        opt.n_hosts = CERTS_MAX_HOSTS + 1;
        T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
        T_OK(strstr(err.msg, "at most 100") != NULL);
        opt.n_hosts = 1;
        opt.days = -1;
        T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
        opt.days = CERTS_MAX_DAYS + 1;
        T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
        opt.days = 1;
        opt.ca_days = CERTS_MAX_DAYS + 1;
        T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
        opt.ca_days = 0;
        opt.out_dir = "";
        T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
        opt.out_dir = NULL;
        T_EQ_INT(certs_generate(&opt, &err), PV_EINVAL);
    }
    free(dir);
}

/* Output directories that cannot be created or written. */
static void test_bad_dirs(void)
{
    char *file = tmp_path("a-file");
    char *below = fs_join(file, "sub");
    char *locked = tmp_path("locked");
    char *locked_sub = fs_join(locked, "sub");
    struct certs_options opt = {.out_dir = below};
    struct pv_err err = {0};
    FILE *f = fopen(file, "w");

    T_OK(f != NULL);
    if (f != NULL)
        fclose(f);
    T_EQ_INT(certs_generate(&opt, &err), PV_EIO);
    T_OK(strstr(err.msg, "cannot create directory") != NULL);
    T_OK(strstr(err.msg, "a-file") != NULL);
    t_diag("message: %s", err.msg);

    opt.out_dir = file;
    T_EQ_INT(certs_generate(&opt, &err), PV_EIO);
    T_OK(strstr(err.msg, "not a directory") != NULL);

    /* Permission checks do not apply to root. */
    if (geteuid() != 0) {
        T_EQ_INT(mkdir(locked, 0500), 0);
        opt.out_dir = locked;
        T_EQ_INT(certs_generate(&opt, &err), PV_EIO);
        T_OK(strstr(err.msg, "Permission denied") != NULL);
        T_EQ_INT(count_entries(locked), 0);
        opt.out_dir = locked_sub;
        T_EQ_INT(certs_generate(&opt, &err), PV_EIO);
        T_OK(strstr(err.msg, "cannot create directory") != NULL);
        chmod(locked, 0700);
    } else {
        t_diag("running as root: skipping the read-only directory checks");
    }
    /* Not even root can create a directory in /proc. */
    if (access("/proc/self", F_OK) == 0) {
        opt.out_dir = "/proc/paved-certs-test/out";
        T_EQ_INT(certs_generate(&opt, &err), PV_EIO);
        T_OK(strstr(err.msg, "cannot create directory /proc/paved-certs-test") != NULL);
        t_diag("message: %s", err.msg);
    }
    free(locked_sub);
    free(locked);
    free(below);
    free(file);
}

/* The command line: exit codes 0, 1 and 2. */
static void test_cmd(void)
{
    char *dir = tmp_path("cmd");
    const char *ok_args[] = {"certs",      "--out",  dir,  "--host",   "paved.local", "--host",
                             "192.0.2.10", "--days", "10", "--client", NULL};
    const char *again_args[] = {"certs", "--out", dir, NULL};
    const char *force_args[] = {"certs", "--out", dir, "--force", "--ca-days", "20", NULL};
    static const char *const usage_cases[][6] = {
        {"certs", NULL},
        {"certs", "--out", NULL},
        {"certs", "--out", "", NULL},
        {"certs", "--out", "x", "--days", "0", NULL},
        {"certs", "--out", "x", "--days", "ten", NULL},
        {"certs", "--out", "x", "--days", "36501", NULL},
        {"certs", "--out", "x", "--ca-days", "-1", NULL},
        {"certs", "--out", "x", "--host", "", NULL},
        {"certs", "--out", "x", "--host", "no way", NULL},
        {"certs", "--out", "x", "extra", NULL},
        {"certs", "--bogus", NULL},
        {"certs", "-xh", NULL},
        {"certs", "--out", "x", "--client=yes", NULL},
    };
    const char *help_args[] = {"certs", "--help", NULL};
    X509 *tls;
    char buf[64];
    int sec;

    for (size_t i = 0; i < sizeof(usage_cases) / sizeof(usage_cases[0]); i++)
        if (!T_EQ_INT(run_cmd(usage_cases[i]), 2))
            t_diag("usage case %zu", i);
    T_EQ_INT(file_mode("x", ""), -1);
    T_EQ_INT(run_cmd(help_args), 0);

    T_EQ_INT(run_cmd(ok_args), 0);
    T_EQ_INT(count_entries(dir), 6);
    tls = load_cert(dir, CERTS_TLS_CERT);
    if (T_OK(tls != NULL)) {
        T_EQ_STR(cn_of(tls, buf, sizeof(buf)), "paved.local");
        T_EQ_INT(X509_check_ip_asc(tls, "192.0.2.10", 0), 1);
        T_EQ_INT(validity_days(tls, &sec), 10);
    }
    X509_free(tls);
    T_EQ_INT(run_cmd(again_args), 1);
    T_EQ_INT(run_cmd(force_args), 0);
    T_EQ_INT(count_entries(dir), 6); /* client files from before stay */
    free(dir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = fs_join(base != NULL && base[0] != '\0' ? base : "/tmp", "paved-certs-XXXXXX");

    tmp_root = mkdtemp(tmpl);
    if (!T_OK(tmp_root != NULL)) {
        free(tmpl);
        return t_done();
    }
    test_defaults();
    test_hosts();
    test_overwrite();
    test_bad_hosts();
    test_bad_dirs();
    test_cmd();
    T_EQ_INT(nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    T_EQ_INT(access(tmp_root, F_OK), -1);
    free(tmpl);
    return t_done();
}
