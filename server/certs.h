/* server/certs.h: development certificates for `paved serve`: a self-signed ECDSA P-256
 * CA, a serving certificate with the requested SANs and an optional client certificate,
 * written as PEM files; and a check that a key file belongs to a certificate file. */
#ifndef PV_CERTS_H
#define PV_CERTS_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* The files certs_generate() writes into 'out_dir'. */
#define CERTS_CA_CERT "ca.crt"
#define CERTS_CA_KEY "ca.key"
#define CERTS_TLS_CERT "tls.crt"
#define CERTS_TLS_KEY "tls.key"
#define CERTS_CLIENT_CERT "client.crt"
#define CERTS_CLIENT_KEY "client.key"

/* Defaults applied when the matching field of struct certs_options is 0. */
#define CERTS_DEFAULT_DAYS 365
#define CERTS_DEFAULT_CA_DAYS 3650

/* Limits: a validity of at most 100 years, at most 100 hosts, and a DNS name of at
 * most 253 bytes (RFC 1035). */
#define CERTS_MAX_DAYS 36500
#define CERTS_MAX_HOSTS 100
#define CERTS_MAX_HOST_LEN 253

struct certs_options {
    /* Directory for the files; created (with its parents) mode 0700 when missing.
     * Borrowed. */
    const char *out_dir;
    /* 'n_hosts' names for the serving certificate, borrowed: each an IPv4 or IPv6
     * address (as inet_pton reads it) or a DNS name (letters, digits, '-' and '.', with
     * an optional leading "*." wildcard label). The first one is also the subject CN
     * when it fits in 64 bytes (otherwise the CN is "paved"). With 'n_hosts' 0 the
     * names are localhost, 127.0.0.1 and ::1. */
    const char *const *hosts;
    size_t n_hosts;
    /* Validity in days of the serving and client certificates; 0 means 365. */
    int days;
    /* Validity in days of the CA certificate; 0 means 3650. */
    int ca_days;
    /* Also write client.crt and client.key (extendedKeyUsage clientAuth, CN
     * "paved development client"), to test `paved serve --client-ca`. */
    bool with_client;
    /* Replace files that already exist. Without it an existing file is an error. */
    bool force;
};

/* Generates the CA, the serving certificate and, with 'with_client', the client
 * certificate described by 'opt' (borrowed), and writes them as PEM into 'opt->out_dir':
 * ca.crt, ca.key, tls.crt, tls.key[, client.crt, client.key]. Keys are unencrypted
 * PKCS#8 created with mode 0600 (never readable by others, not even while being
 * written); certificates get mode 0644. Every key is ECDSA P-256, every certificate is
 * signed with SHA-256, carries a random 128-bit serial and is valid from five minutes
 * ago (for clock skew) for its number of days.
 *
 * All the keys and certificates are made before any file is touched, and without
 * 'force' nothing is written when any of the files exists. With 'force' each file is
 * replaced atomically (a new inode, written then renamed over the old one).
 *
 * Returns PV_OK; PV_EINVAL for a bad option (an empty, malformed or too long host, too
 * many hosts, days out of 1..36500) or a file that exists without 'force'; PV_EIO when
 * the directory cannot be created or a file cannot be written (files this call
 * created are removed again); PV_ECONFIG when OpenSSL fails. 'err' (may be NULL) names
 * the host or path. Thread-safe (it uses OpenSSL's thread-safe default RNG).
 */
pv_status certs_generate(const struct certs_options *opt, struct pv_err *err);

/* Checks that 'host' (borrowed) is acceptable as an entry of certs_options.hosts: an
 * IPv4 or IPv6 address or a DNS name as described there. Returns PV_OK, or PV_EINVAL
 * with the host and the rule in 'err' (may be NULL). Thread-safe. */
pv_status certs_check_host(const char *host, struct pv_err *err);

/* Checks that the PEM private key in 'key_pem_path' is the key of the PEM certificate
 * in 'cert_pem_path' (both borrowed; at most 1 MiB each). An encrypted key is refused
 * rather than prompting for a passphrase. Returns PV_OK when they match; PV_ENOENT or
 * PV_EIO when a file cannot be read; PV_EPARSE when a file holds no PEM certificate or
 * key; PV_EINVAL when the key does not match the certificate. 'err' (may be NULL) names
 * both files. Thread-safe. */
pv_status certs_check_pair(const char *cert_pem_path, const char *key_pem_path, struct pv_err *err);

#endif
