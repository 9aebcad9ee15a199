/* server/certs.c: `paved certs` behind the command line: makes a development CA, a
 * serving certificate and a client certificate with OpenSSL 3 and writes them as PEM
 * files with safe modes; checks that a key file belongs to a certificate. */
#include "certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fsutil.h"
#include "xalloc.h"

#define CA_CN "paved development CA"
#define CLIENT_CN "paved development client"
/* X.509 upper bound of a commonName (RFC 5280 ub-common-name). */
#define CN_MAX_LEN 64
/* notBefore lies this far in the past, so a node whose clock is a little behind the
 * machine that made the certificate still accepts it. */
#define BACKDATE_SECONDS 300
/* Largest PEM file certs_check_pair() reads. */
#define PEM_MAX_BYTES (1u << 20)

static const char *const default_hosts[] = {"localhost", "127.0.0.1", "::1"};

/* Records 'what' and the last OpenSSL error in 'err', clears OpenSSL's error queue and
 * returns PV_ECONFIG. */
static pv_status ossl_fail(struct pv_err *err, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char detail[200] = "unknown error";

    if (e != 0)
        ERR_error_string_n(e, detail, sizeof(detail));
    ERR_clear_error();
    return pv_err_set(err, PV_ECONFIG, "%s: %s", what, detail);
}

/* ---- Host names ---- */

/* True when 's' is a DNS name: labels of 1..63 letters, digits and inner hyphens
 * joined by dots, the first label optionally "*", the last not all digits (so "1.2.3"
 * is not mistaken for a name). */
static bool is_dns_name(const char *s)
{
    size_t len = strlen(s);
    size_t label_len = 0;
    bool is_all_digits = true;
    const char *p = s;

    if (len == 0 || len > CERTS_MAX_HOST_LEN)
        return false;
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    for (;; p++) {
        char c = *p;

        if (c == '.' || c == '\0') {
            if (label_len == 0 || label_len > 63 || p[-1] == '-')
                return false;
            if (c == '\0')
                return !is_all_digits;
            label_len = 0;
            is_all_digits = true;
            continue;
        }
        if (c == '-') {
            if (label_len == 0)
                return false;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return false;
        }
        if (c < '0' || c > '9')
            is_all_digits = false;
        label_len++;
    }
}

/* Reads 'host' as an IPv4 or IPv6 address into 'addr' (*len_out 4 or 16) or, when it
 * is not one, checks it as a DNS name (*len_out 0). */
static pv_status parse_host(const char *host, unsigned char addr[16], int *len_out,
                            struct pv_err *err)
{
    if (host == NULL || host[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "empty host name");
    if (inet_pton(AF_INET, host, addr) == 1) {
        *len_out = 4;
        return PV_OK;
    }
    if (inet_pton(AF_INET6, host, addr) == 1) {
        *len_out = 16;
        return PV_OK;
    }
    if (!is_dns_name(host))
        return pv_err_set(err, PV_EINVAL,
                          "host '%.*s%s' is neither an IP address nor a DNS name (letters, "
                          "digits, inner '-', dot-separated labels of up to 63 bytes, at most "
                          "%d bytes in all, an optional leading '*.')",
                          64, host, strlen(host) > 64 ? "..." : "", CERTS_MAX_HOST_LEN);
    *len_out = 0;
    return PV_OK;
}

pv_status certs_check_host(const char *host, struct pv_err *err)
{
    unsigned char addr[16];
    int addr_len;

    return parse_host(host, addr, &addr_len, err);
}

/* Appends 'host' to 'names' as an iPAddress when inet_pton reads it as IPv4 or IPv6,
 * otherwise as a dNSName. Returns PV_EINVAL for a host that is neither. */
static pv_status add_general_name(GENERAL_NAMES *names, const char *host, struct pv_err *err)
{
    unsigned char addr[16];
    int addr_len = 0;
    GENERAL_NAME *gn = NULL;
    ASN1_STRING *value = NULL;
    int type;
    pv_status rc;

    rc = parse_host(host, addr, &addr_len, err);
    if (rc)
        return rc;
    if (addr_len) {
        type = GEN_IPADD;
        value = ASN1_OCTET_STRING_new();
        if (value == NULL || ASN1_OCTET_STRING_set(value, addr, addr_len) != 1)
            goto fail;
    } else {
        type = GEN_DNS;
        value = ASN1_IA5STRING_new();
        if (value == NULL || ASN1_STRING_set(value, host, (int)strlen(host)) != 1)
            goto fail;
    }
    gn = GENERAL_NAME_new();
    if (gn == NULL)
        goto fail;
    GENERAL_NAME_set0_value(gn, type, value);
    value = NULL;
    if (sk_GENERAL_NAME_push(names, gn) <= 0)
        goto fail;
    return PV_OK;
fail:
    ASN1_STRING_free(value);
    GENERAL_NAME_free(gn);
    return ossl_fail(err, "subjectAltName");
}

/* ---- Certificates ---- */

/* Sets a random 128-bit serial (RFC 5280 allows up to 20 octets; DER adds a zero octet
 * when the top bit is set, so the encoding never exceeds 17). */
static pv_status set_random_serial(X509 *x, struct pv_err *err)
{
    unsigned char bytes[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    pv_status rc = PV_OK;

    if (RAND_bytes(bytes, sizeof(bytes)) != 1)
        return ossl_fail(err, "random serial");
    /* A zero serial is not allowed; 2^-128 odds, but cheap to rule out. */
    bytes[sizeof(bytes) - 1] |= 1;
    bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
    if (bn != NULL)
        serial = BN_to_ASN1_INTEGER(bn, NULL);
    if (serial == NULL || X509_set_serialNumber(x, serial) != 1)
        rc = ossl_fail(err, "serial number");
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

/* Adds the extension 'nid' with the OpenSSL config-syntax 'value' (a constant of this
 * file, never input), in the context of subject 'x' and issuer 'issuer'. */
static pv_status add_ext(X509 *x, X509 *issuer, int nid, const char *value, struct pv_err *err)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int is_added;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return ossl_fail(err, OBJ_nid2sn(nid));
    is_added = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return is_added == 1 ? PV_OK : ossl_fail(err, OBJ_nid2sn(nid));
}

/* What one certificate is for. */
enum cert_kind {
    CERT_CA,
    CERT_SERVER,
    CERT_CLIENT,
};

/* Makes a certificate of 'kind' for 'key' with subject CN 'cn', valid for 'days',
 * signed by 'issuer_key' and named after 'issuer' (NULL: self-signed). 'sans' (may be
 * NULL) is copied into the subjectAltName. Borrows everything. On success *out is a
 * certificate the caller frees with X509_free(). */
static pv_status make_cert(X509 **out, enum cert_kind kind, EVP_PKEY *key, const char *cn, int days,
                           GENERAL_NAMES *sans, X509 *issuer, EVP_PKEY *issuer_key,
                           struct pv_err *err)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    pv_status rc = PV_ECONFIG;

    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1) {
        rc = ossl_fail(err, "certificate");
        goto fail;
    }
    rc = set_random_serial(x, err);
    if (rc)
        goto fail;
    name = X509_NAME_new();
    if (name == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECONDS) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL ||
        X509_set_pubkey(x, key) != 1) {
        rc = ossl_fail(err, "certificate subject, validity or key");
        goto fail;
    }
    /* The extension context needs the issuer certificate for authorityKeyIdentifier;
     * a self-signed CA is its own issuer. */
    if (issuer == NULL)
        issuer = x;
    rc = add_ext(x, issuer, NID_subject_key_identifier, "hash", err);
    if (rc == PV_OK && kind != CERT_CA)
        rc = add_ext(x, issuer, NID_authority_key_identifier, "keyid:always", err);
    if (rc)
        goto fail;
    switch (kind) {
    case CERT_CA:
        /* pathlen:0: this CA signs leaf certificates only. */
        rc = add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err);
        if (rc == PV_OK)
            rc = add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign", err);
        break;
    case CERT_SERVER:
    case CERT_CLIENT:
        rc = add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE", err);
        if (rc == PV_OK)
            rc = add_ext(x, issuer, NID_key_usage, "critical,digitalSignature", err);
        if (rc == PV_OK)
            rc = add_ext(x, issuer, NID_ext_key_usage,
                         kind == CERT_SERVER ? "serverAuth" : "clientAuth", err);
        break;
    }
    if (rc)
        goto fail;
    if (sans != NULL &&
        X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1) {
        rc = ossl_fail(err, "subjectAltName");
        goto fail;
    }
    /* X509_sign returns the signature size, 0 on failure. */
    if (X509_sign(x, issuer_key, EVP_sha256()) <= 0) {
        rc = ossl_fail(err, "signing the certificate");
        goto fail;
    }
    X509_NAME_free(name);
    *out = x;
    return PV_OK;
fail:
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

/* ---- PEM files ---- */

/* One file to write: its name in the output directory, its mode and its PEM text. */
struct out_file {
    const char *name;
    mode_t mode;
    BIO *pem;     /* memory BIO; secure (wiped when freed) for keys */
    char *path;   /* out_dir/name */
    bool is_made; /* this call created the file */
};

/* Fills 'f' with the PEM of the private key 'key' (when 'key' is set) or the
 * certificate 'cert'. Borrows both. */
static pv_status pem_encode(struct out_file *f, EVP_PKEY *key, X509 *cert, struct pv_err *err)
{
    int is_ok;

    /* The secure-memory BIO clears its buffer when freed, so no key bytes stay behind. */
    f->pem = BIO_new(key ? BIO_s_secmem() : BIO_s_mem());
    if (f->pem == NULL)
        return ossl_fail(err, f->name);
    if (key)
        is_ok = PEM_write_bio_PrivateKey(f->pem, key, NULL, NULL, 0, NULL, NULL);
    else
        is_ok = PEM_write_bio_X509(f->pem, cert);
    return is_ok == 1 ? PV_OK : ossl_fail(err, f->name);
}

/* Writes 'len' bytes of 'p' to 'fd', then syncs. */
static pv_status write_all(int fd, const char *p, size_t len, const char *path, struct pv_err *err)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return pv_err_set(err, PV_EIO, "%s: write: %s", path,
                              n < 0 ? strerror(errno) : "no progress");
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) != 0)
        return pv_err_set(err, PV_EIO, "%s: fsync: %s", path, strerror(errno));
    return PV_OK;
}

/* Writes 'f' to f->path. Without 'force' the file is created with O_EXCL, so an
 * existing file is never touched. With 'force' a temporary file in the same directory
 * is written and renamed over f->path. Either way the file is created with mode 0600
 * and fchmod()ed to f->mode before any byte is written. */
static pv_status write_file(struct out_file *f, const char *dir, bool force, struct pv_err *err)
{
    char *data = NULL;
    long len = BIO_get_mem_data(f->pem, &data);
    char *tmp = NULL;
    const char *target = f->path;
    pv_status rc = PV_OK;
    int fd;

    if (len <= 0 || data == NULL)
        return pv_err_set(err, PV_ECONFIG, "%s: empty PEM", f->path);
    if (force) {
        tmp = fs_join(dir, ".paved-certs.XXXXXX");
        fd = mkstemp(tmp); /* mode 0600 */
        target = tmp;
    } else {
        fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        rc = pv_err_set(err, errno == EEXIST ? PV_EINVAL : PV_EIO, "%s: %s%s", target,
                        strerror(errno),
                        errno == EEXIST ? "; refusing to overwrite it without force" : "");
        free(tmp);
        return rc;
    }
    if (!force)
        f->is_made = true;
    if (fchmod(fd, f->mode) != 0)
        rc = pv_err_set(err, PV_EIO, "%s: chmod: %s", target, strerror(errno));
    if (rc == PV_OK)
        rc = write_all(fd, data, (size_t)len, target, err);
    if (close(fd) != 0 && rc == PV_OK)
        rc = pv_err_set(err, PV_EIO, "%s: close: %s", target, strerror(errno));
    if (rc == PV_OK && force && rename(tmp, f->path) != 0)
        rc = pv_err_set(err, PV_EIO, "%s: rename: %s", f->path, strerror(errno));
    if (rc && force)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- Entry points ---- */

/* Checks the options and returns the hosts to use in *hosts_out and *n_out. */
static pv_status check_options(const struct certs_options *opt, const char *const **hosts_out,
                               size_t *n_out, struct pv_err *err)
{
    if (opt->out_dir == NULL || opt->out_dir[0] == '\0')
        return pv_err_set(err, PV_EINVAL, "no output directory given");
    if (opt->days < 0 || opt->days > CERTS_MAX_DAYS)
        return pv_err_set(err, PV_EINVAL, "days %d: must be between 1 and %d (0: 365)", opt->days,
                          CERTS_MAX_DAYS);
    if (opt->ca_days < 0 || opt->ca_days > CERTS_MAX_DAYS)
        return pv_err_set(err, PV_EINVAL, "CA days %d: must be between 1 and %d (0: 3650)",
                          opt->ca_days, CERTS_MAX_DAYS);
    if (opt->n_hosts > CERTS_MAX_HOSTS)
        return pv_err_set(err, PV_EINVAL, "%zu hosts: at most %d are allowed", opt->n_hosts,
                          CERTS_MAX_HOSTS);
    if (opt->n_hosts > 0 && opt->hosts == NULL)
        return pv_err_set(err, PV_EINVAL, "n_hosts is %zu but no hosts given", opt->n_hosts);
    if (opt->n_hosts == 0) {
        *hosts_out = default_hosts;
        *n_out = sizeof(default_hosts) / sizeof(default_hosts[0]);
    } else {
        *hosts_out = opt->hosts;
        *n_out = opt->n_hosts;
    }
    return PV_OK;
}

pv_status certs_generate(const struct certs_options *opt, struct pv_err *err)
{
    enum { CA_CRT, CA_KEY, TLS_CRT, TLS_KEY, CLI_CRT, CLI_KEY, N_FILES };
    struct out_file files[N_FILES] = {
        [CA_CRT] = {CERTS_CA_CERT, 0644, NULL, NULL, false},
        [CA_KEY] = {CERTS_CA_KEY, 0600, NULL, NULL, false},
        [TLS_CRT] = {CERTS_TLS_CERT, 0644, NULL, NULL, false},
        [TLS_KEY] = {CERTS_TLS_KEY, 0600, NULL, NULL, false},
        [CLI_CRT] = {CERTS_CLIENT_CERT, 0644, NULL, NULL, false},
        [CLI_KEY] = {CERTS_CLIENT_KEY, 0600, NULL, NULL, false},
    };
    size_t n_files = opt->with_client ? N_FILES : CLI_CRT;
    const char *const *hosts = NULL;
    size_t n_hosts = 0;
    GENERAL_NAMES *sans = NULL;
    EVP_PKEY *ca_key = NULL;
    EVP_PKEY *tls_key = NULL;
    EVP_PKEY *cli_key = NULL;
    X509 *ca = NULL;
    X509 *tls = NULL;
    X509 *cli = NULL;
    const char *cn;
    pv_status rc;

    rc = check_options(opt, &hosts, &n_hosts, err);
    if (rc)
        return rc;
    sans = sk_GENERAL_NAME_new_null();
    if (sans == NULL) {
        rc = ossl_fail(err, "subjectAltName");
        goto done;
    }
    for (size_t i = 0; i < n_hosts && rc == PV_OK; i++)
        rc = add_general_name(sans, hosts[i], err);
    if (rc)
        goto done;
    cn = strlen(hosts[0]) <= CN_MAX_LEN ? hosts[0] : "paved";

    /* Every key and certificate exists in memory before the first file is touched. */
    ca_key = EVP_EC_gen("P-256");
    tls_key = EVP_EC_gen("P-256");
    if (opt->with_client)
        cli_key = EVP_EC_gen("P-256");
    if (ca_key == NULL || tls_key == NULL || (opt->with_client && cli_key == NULL)) {
        rc = ossl_fail(err, "generating a P-256 key");
        goto done;
    }
    rc = make_cert(&ca, CERT_CA, ca_key, CA_CN, opt->ca_days ? opt->ca_days : CERTS_DEFAULT_CA_DAYS,
                   NULL, NULL, ca_key, err);
    if (rc == PV_OK)
        rc = make_cert(&tls, CERT_SERVER, tls_key, cn, opt->days ? opt->days : CERTS_DEFAULT_DAYS,
                       sans, ca, ca_key, err);
    if (rc == PV_OK && opt->with_client)
        rc = make_cert(&cli, CERT_CLIENT, cli_key, CLIENT_CN,
                       opt->days ? opt->days : CERTS_DEFAULT_DAYS, NULL, ca, ca_key, err);
    if (rc == PV_OK)
        rc = pem_encode(&files[CA_CRT], NULL, ca, err);
    if (rc == PV_OK)
        rc = pem_encode(&files[CA_KEY], ca_key, NULL, err);
    if (rc == PV_OK)
        rc = pem_encode(&files[TLS_CRT], NULL, tls, err);
    if (rc == PV_OK)
        rc = pem_encode(&files[TLS_KEY], tls_key, NULL, err);
    if (rc == PV_OK && opt->with_client)
        rc = pem_encode(&files[CLI_CRT], NULL, cli, err);
    if (rc == PV_OK && opt->with_client)
        rc = pem_encode(&files[CLI_KEY], cli_key, NULL, err);
    if (rc)
        goto done;

    rc = fs_make_dirs(opt->out_dir, "output directory", err);
    if (rc)
        goto done;
    for (size_t i = 0; i < n_files; i++)
        files[i].path = fs_join(opt->out_dir, files[i].name);
    /* Without force, look before writing anything so a partial set is never left
     * behind; O_EXCL in write_file still guards against a file appearing meanwhile. */
    for (size_t i = 0; i < n_files && !opt->force; i++) {
        struct stat st;

        if (lstat(files[i].path, &st) == 0) {
            rc = pv_err_set(err, PV_EINVAL,
                            "%s already exists; refusing to overwrite it without force",
                            files[i].path);
            goto done;
        }
    }
    /* Keys first: a certificate never sits on disk without its key. */
    for (size_t i = 0; i < n_files && rc == PV_OK; i++)
        if (files[i].mode == 0600)
            rc = write_file(&files[i], opt->out_dir, opt->force, err);
    for (size_t i = 0; i < n_files && rc == PV_OK; i++)
        if (files[i].mode != 0600)
            rc = write_file(&files[i], opt->out_dir, opt->force, err);
    if (rc) {
        for (size_t i = 0; i < n_files; i++)
            if (files[i].is_made)
                unlink(files[i].path);
    }
done:
    for (size_t i = 0; i < N_FILES; i++) {
        BIO_free(files[i].pem);
        free(files[i].path);
    }
    X509_free(cli);
    X509_free(tls);
    X509_free(ca);
    EVP_PKEY_free(cli_key);
    EVP_PKEY_free(tls_key);
    EVP_PKEY_free(ca_key);
    GENERAL_NAMES_free(sans);
    return rc;
}

/* pem_password_cb that supplies no passphrase, so an encrypted key fails instead of
 * prompting on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

pv_status certs_check_pair(const char *cert_pem_path, const char *key_pem_path, struct pv_err *err)
{
    char *cert_text = NULL;
    char *key_text = NULL;
    size_t cert_len = 0;
    size_t key_len = 0;
    BIO *bio = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    pv_status rc;

    rc = fs_read_file(cert_pem_path, PEM_MAX_BYTES, &cert_text, &cert_len, err);
    if (rc == PV_OK)
        rc = fs_read_file(key_pem_path, PEM_MAX_BYTES, &key_text, &key_len, err);
    if (rc)
        goto done;
    bio = BIO_new_mem_buf(cert_text, (int)cert_len);
    if (bio != NULL)
        cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (cert == NULL) {
        ERR_clear_error();
        rc = pv_err_set(err, PV_EPARSE, "%s: no PEM certificate (BEGIN CERTIFICATE) found",
                        cert_pem_path);
        goto done;
    }
    bio = BIO_new_mem_buf(key_text, (int)key_len);
    if (bio != NULL)
        key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (key == NULL) {
        ERR_clear_error();
        rc = pv_err_set(err, PV_EPARSE,
                        "%s: no unencrypted PEM private key found (encrypted keys are not "
                        "supported)",
                        key_pem_path);
        goto done;
    }
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        rc = pv_err_set(err, PV_EINVAL, "the private key %s does not match the certificate %s",
                        key_pem_path, cert_pem_path);
    }
done:
    EVP_PKEY_free(key);
    X509_free(cert);
    if (key_text != NULL)
        OPENSSL_cleanse(key_text, key_len);
    free(key_text);
    free(cert_text);
    return rc;
}
