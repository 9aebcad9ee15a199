/* server/cmd_certs.c: `paved certs`: parses the command line into struct certs_options,
 * writes the development CA and certificates, and prints what it wrote. */
#include "cmd_certs.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "certs.h"
#include "cli.h"
#include "fsutil.h"
#include "xalloc.h"

#define SYNOPSIS                                                                                   \
    "usage: paved certs --out DIR [--host NAME]... [--days N] [--ca-days N] [--client]\n"          \
    "                   [--force]\n"

/* Usage errors print the synopsis only; --help prints everything. */
static const char short_usage[] = SYNOPSIS "Run 'paved certs --help' for the details.\n";

static const char usage[] = SYNOPSIS
    "\n"
    "Writes a development certificate authority and a TLS serving certificate for\n"
    "'paved serve', as PEM files in DIR (created with mode 0700 when missing). All keys\n"
    "are ECDSA P-256; certificates are signed with SHA-256 and have random 128-bit\n"
    "serials. These are for development, tests and clusters you run yourself: in\n"
    "production use certificates from your own PKI or cert-manager.\n"
    "\n"
    "files written:\n"
    "  DIR/ca.crt      the CA certificate (CN \"paved development CA\", CA:TRUE, keyCertSign,\n"
    "                  cRLSign), mode 0644: what clients trust\n"
    "  DIR/ca.key      the CA private key, mode 0600: keep it secret, or delete it once the\n"
    "                  certificates are made\n"
    "  DIR/tls.crt     the serving certificate signed by the CA (serverAuth, CA:FALSE), with\n"
    "                  every --host as a subjectAltName and the first one as its CN\n"
    "  DIR/tls.key     its private key, mode 0600\n"
    "  DIR/client.crt  with --client: a client certificate (clientAuth, CN \"paved\n"
    "  DIR/client.key  development client\") and its key, to test 'paved serve --client-ca'\n"
    "Keys are unencrypted PKCS#8 PEM, created 0600 so they are never readable by others.\n"
    "\n"
    "options:\n"
    "  --out DIR       directory to write to (required)\n"
    "  --host NAME     a DNS name (e.g. paved.paved-system.svc, or *.example.com) or an\n"
    "                  IPv4/IPv6 address the server is reached at; repeat for several.\n"
    "                  Default: localhost, 127.0.0.1 and ::1. At most 100.\n"
    "  --days N        validity of the serving and client certificates (default 365)\n"
    "  --ca-days N     validity of the CA certificate (default 3650)\n"
    "  --client        also write client.crt and client.key\n"
    "  --force         replace existing files (each is replaced atomically); without it\n"
    "                  nothing is written when any of the files exists\n"
    "  -h, --help      show this help\n"
    "\n"
    "exit status: 0 the files were written (their paths are printed, one per line),\n"
    "1 they could not be made or written (nothing is left half-written), 2 usage error.\n"
    "\n"
    "examples:\n"
    "  paved certs --out var/certs\n"
    "  paved serve --tls-cert var/certs/tls.crt --tls-key var/certs/tls.key\n"
    "  curl --cacert var/certs/ca.crt https://127.0.0.1:8443/healthz\n"
    "\n"
    "  # In Kubernetes: the Service DNS names as hosts, the CA as the webhook's caBundle.\n"
    "  paved certs --out certs --host paved.paved-system.svc \\\n"
    "      --host paved.paved-system.svc.cluster.local\n"
    "  kubectl -n paved-system create secret tls paved-tls \\\n"
    "      --cert=certs/tls.crt --key=certs/tls.key\n"
    "  base64 -w0 certs/ca.crt    # paste into clientConfig.caBundle of the\n"
    "                             # Validating/MutatingWebhookConfiguration\n"
    "\n"
    "  # Client certificates:\n"
    "  paved certs --out var/certs --client --force\n"
    "  paved serve --tls-cert var/certs/tls.crt --tls-key var/certs/tls.key \\\n"
    "      --client-ca var/certs/ca.crt\n"
    "  curl --cacert var/certs/ca.crt --cert var/certs/client.crt \\\n"
    "      --key var/certs/client.key https://127.0.0.1:8443/healthz\n";

/* Reads a day count of 1..CERTS_MAX_DAYS from 's' into *out. */
static bool parse_days(const char *s, int *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 1 || v > CERTS_MAX_DAYS)
        return false;
    *out = (int)v;
    return true;
}

int cmd_certs(int argc, char **argv)
{
    enum { OPT_OUT = 256, OPT_HOST, OPT_DAYS, OPT_CA_DAYS, OPT_CLIENT, OPT_FORCE };
    static const struct option longopts[] = {
        {"out", required_argument, NULL, OPT_OUT},
        {"host", required_argument, NULL, OPT_HOST},
        {"days", required_argument, NULL, OPT_DAYS},
        {"ca-days", required_argument, NULL, OPT_CA_DAYS},
        {"client", no_argument, NULL, OPT_CLIENT},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const cert_files[] = {
        CERTS_CA_CERT, CERTS_CA_KEY,      CERTS_TLS_CERT,
        CERTS_TLS_KEY, CERTS_CLIENT_CERT, CERTS_CLIENT_KEY,
    };
    struct certs_options opt = {0};
    /* Every --host is one argument, so argc bounds their number. */
    const char **hosts = xcalloc((size_t)argc + 1, sizeof(*hosts));
    struct pv_err err = {0};
    int status = EXIT_SUCCESS;
    size_t n_files;
    pv_status rc;
    int c;

    optind = 0; /* GNU: full re-initialisation, so the command can run more than once */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_OUT:
            opt.out_dir = optarg;
            break;
        case OPT_HOST:
            if (certs_check_host(optarg, &err) != PV_OK) {
                fprintf(stderr, "paved certs: --host: %s\n", err.msg);
                status = EXIT_USAGE;
                goto done;
            }
            hosts[opt.n_hosts++] = optarg;
            break;
        case OPT_DAYS:
        case OPT_CA_DAYS:
            if (!parse_days(optarg, c == OPT_DAYS ? &opt.days : &opt.ca_days)) {
                fprintf(stderr, "paved certs: %s '%s': expected a number of days from 1 to %d\n",
                        c == OPT_DAYS ? "--days" : "--ca-days", optarg, CERTS_MAX_DAYS);
                status = EXIT_USAGE;
                goto done;
            }
            break;
        case OPT_CLIENT:
            opt.with_client = true;
            break;
        case OPT_FORCE:
            opt.force = true;
            break;
        case 'h':
            fputs(usage, stdout);
            goto done;
        default:
            /* opterr is 0: say it here, naming the command rather than argv[0]. A short
             * option is in optopt; a long one is the argument just consumed. */
            if (optopt > 0 && optopt < OPT_OUT)
                fprintf(stderr, "paved certs: unknown option '-%c'\n%s", optopt, short_usage);
            else
                fprintf(stderr, "paved certs: unknown option or missing value: '%s'\n%s",
                        argv[optind - 1], short_usage);
            status = EXIT_USAGE;
            goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "paved certs: unexpected argument '%s' (hosts go after --host)\n%s",
                argv[optind], short_usage);
        status = EXIT_USAGE;
        goto done;
    }
    if (opt.out_dir == NULL || opt.out_dir[0] == '\0') {
        fprintf(stderr, "paved certs: --out DIR is required\n%s", short_usage);
        status = EXIT_USAGE;
        goto done;
    }
    if (opt.n_hosts > CERTS_MAX_HOSTS) {
        fprintf(stderr, "paved certs: %zu hosts given, at most %d are allowed\n", opt.n_hosts,
                CERTS_MAX_HOSTS);
        status = EXIT_USAGE;
        goto done;
    }
    opt.hosts = hosts;
    rc = certs_generate(&opt, &err);
    if (rc) {
        fprintf(stderr, "paved certs: %s\n", err.msg);
        /* Hosts, days and the directory name were checked above, so here PV_EINVAL
         * means that files exist. */
        if (rc == PV_EINVAL)
            fputs("paved certs: pass --force to replace the existing files\n", stderr);
        status = EXIT_FAILURE;
        goto done;
    }
    /* The client pair comes last in cert_files. */
    n_files = sizeof(cert_files) / sizeof(cert_files[0]) - (opt.with_client ? 0 : 2);
    for (size_t i = 0; i < n_files; i++) {
        char *path = fs_join(opt.out_dir, cert_files[i]);

        printf("%s\n", path);
        free(path);
    }
    if (fflush(stdout) != 0)
        status = EXIT_FAILURE;
done:
    free(hosts);
    return status;
}
