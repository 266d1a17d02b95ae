/*
 * cctvhub tls: a private CA and its certificates, for a first install and the tests.
 *
 *   tls init          the CA and the hub's server certificate (its names: localhost, the
 *                     loopback addresses, the host name, and each --name)
 *   tls client NAME   an agency system's client certificate, and its SPKI fingerprint
 *   tls revoke FILE   the certificate's serial into the CA's CRL
 *   tls fingerprint   a certificate's SPKI fingerprint (an API key's binding, a camera's pin)
 *
 * The work is net's PKI (net/net.h, ch_net_pki_*); this file parses command lines, picks the
 * files' names and says what was made and how to trust it.
 */
#include "main/main.h"

#include "net/net.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Validity in days: the CA outlives what it signs; a server certificate stays within what
 * clients accept of one (825 days, Apple's platforms' limit even for a private CA). */
#define TLS_CA_DAYS     3650
#define TLS_SERVER_DAYS 825
#define TLS_CLIENT_DAYS 365
#define TLS_CRL_DAYS    30
#define TLS_DAYS_MAX    36500
#define TLS_NAMES_MAX   64

static const char tls_usage[] =
    "usage: cctvhub tls <command> [options]\n"
    "\n"
    "commands:\n"
    "  init           make a private CA and the hub's server certificate\n"
    "  client NAME    make a client certificate for an agency's system\n"
    "  revoke FILE    revoke a certificate the CA issued (DIR/ca.crl)\n"
    "  fingerprint FILE  print a certificate's SPKI fingerprint\n"
    "\n"
    "Run 'cctvhub tls <command> --help' for a command's options. DIR is --dir, by default\n"
    "DATA_DIR/tls (hub.data_dir, --data-dir). Keys are ECDSA P-256, files PEM, keys mode 0600.\n";

static const char tls_init_usage[] =
    "usage: cctvhub tls init [--dir DIR] [--name HOST]... [--days N] [--force]\n"
    "                        [--config FILE] [--data-dir DIR]\n"
    "\n"
    "Makes a private CA (DIR/ca.crt, DIR/ca.key) and the hub's server certificate signed by it\n"
    "(DIR/server.crt: the certificate and the CA's, the chain a server sends; DIR/server.key),\n"
    "for localhost, 127.0.0.1, ::1, this machine's host name and each --name, and prints how to\n"
    "trust it. Refuses when DIR/ca.key exists: a new CA would leave every certificate the old\n"
    "one signed, agencies' client certificates too, unverifiable.\n"
    "\n"
    "  --dir DIR     where the files go; default DATA_DIR/tls\n"
    "  --name HOST   another name of the hub (a DNS name or an IP address); repeatable\n"
    "  --days N      the server certificate's validity (default 825); the CA's is 3650 days,\n"
    "                or N when longer\n"
    "  --force       replace an existing CA (and its CRL)\n"
    "\n"
    "Exit codes: 0 made; 1 a CA exists or a file could not be written; 2 bad command line;\n"
    "            3 bad configuration; 4 DIR cannot be created.\n";

static const char tls_client_usage[] =
    "usage: cctvhub tls client NAME [--dir DIR] [--days N] [--force]\n"
    "                               [--config FILE] [--data-dir DIR]\n"
    "\n"
    "Makes a client certificate for an agency's system, signed by the CA in DIR (made by 'tls\n"
    "init'): DIR/clients/NAME.crt and DIR/clients/NAME.key (mode 0600), subject CN = NAME,\n"
    "extended key usage clientAuth. Prints its SPKI fingerprint (sha256:...) on stdout: the\n"
    "value an administrator binds the agency's API key to. Give the agency both files and\n"
    "DIR/ca.crt.\n"
    "\n"
    "  NAME          the agency's name, as \"police-112\": letters, digits, '.', '_' and '-',\n"
    "                at most 64, not starting with '.' or '-'\n"
    "  --dir DIR     the CA's directory; default DATA_DIR/tls\n"
    "  --days N      validity (default 365)\n"
    "  --force       replace an existing NAME.crt and NAME.key (revoke the old one first:\n"
    "                'cctvhub tls revoke DIR/clients/NAME.crt')\n"
    "\n"
    "Exit codes: 0 made; 1 no CA, the files exist or could not be written; 2 bad command line;\n"
    "            3 bad configuration; 4 DIR/clients cannot be created.\n";

static const char tls_revoke_usage[] =
    "usage: cctvhub tls revoke FILE [--dir DIR] [--days N] [--config FILE] [--data-dir DIR]\n"
    "\n"
    "Revokes the certificate in FILE, which the CA in DIR must have issued: its serial goes into\n"
    "DIR/ca.crl (made when absent), signed by the CA again, valid N days (default 30). A TLS\n"
    "peer that checks the CRL refuses the certificate from then on, and refuses every one once\n"
    "the CRL is past its next update: run revoke again before then (revoking a certificate\n"
    "already revoked renews the CRL).\n"
    "\n"
    "Exit codes: 0 revoked (or revoked already); 1 no CA, FILE is no certificate of this CA, or\n"
    "            the CRL could not be written; 2 bad command line; 3 bad configuration.\n";

static const char tls_fingerprint_usage[] =
    "usage: cctvhub tls fingerprint FILE\n"
    "\n"
    "Prints the SPKI fingerprint of the (first) certificate in FILE, PEM or DER: \"sha256:\" and\n"
    "the hex of SHA-256 over its DER SubjectPublicKeyInfo, the same as\n"
    "  openssl x509 -in FILE -pubkey -noout | openssl pkey -pubin -outform der | sha256sum\n"
    "It names the key, not the certificate: what an API key is bound to, and what pins a\n"
    "camera's self-signed certificate.\n"
    "\n"
    "Exit codes: 0 printed; 1 FILE holds no certificate or cannot be read; 2 bad command line.\n";

/* A command's arguments: the common options, its value flags, --name (repeatable, when names
 * is not NULL), --force (when force is not NULL), and at most one positional argument (when
 * pos is not NULL). -1 once read, else the exit code to return. */
typedef struct tls_args {
    const char *cmd;
    const char *usage;
    const ch_main_flag_t *flags;
    const char **names; /* TLS_NAMES_MAX of them */
    size_t n_names;
    int *force;
    const char **pos;
} tls_args_t;

static int tls_parse(tls_args_t *a, ch_main_opts_t *opts, int argc, char **argv)
{
    memset(opts, 0, sizeof(*opts));
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int r = ch_main__option(opts, argc, argv, &i, a->flags);
        if (r == 0 && a->names != NULL) {
            r = ch_main__flag_value(argc, argv, &i, "--name", &value);
            if (r > 0) {
                if (a->n_names == TLS_NAMES_MAX) {
                    fprintf(stderr, "cctvhub %s: at most %d --name\n", a->cmd, TLS_NAMES_MAX);
                    return CH_EXIT_USAGE;
                }
                a->names[a->n_names++] = value;
            }
        }
        if (r < 0) {
            return CH_EXIT_USAGE;
        }
        if (r > 0) {
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(a->usage, stdout);
            return CH_EXIT_OK;
        }
        if (a->force != NULL && strcmp(argv[i], "--force") == 0) {
            *a->force = 1;
            continue;
        }
        if (argv[i][0] == '-' || a->pos == NULL || *a->pos != NULL) {
            fprintf(stderr, "cctvhub %s: unknown or unexpected \"%s\"\n\n%s", a->cmd, argv[i],
                    a->usage);
            return CH_EXIT_USAGE;
        }
        *a->pos = argv[i];
    }
    if (a->pos != NULL && *a->pos == NULL) {
        fprintf(stderr, "cctvhub %s: missing argument\n\n%s", a->cmd, a->usage);
        return CH_EXIT_USAGE;
    }
    return -1;
}

/* --days: a whole number 1..TLS_DAYS_MAX into *days (left as it is when s is NULL). 0, or -1
 * after saying why. */
static int tls_days(const char *cmd, const char *s, int *days)
{
    uint64_t v;
    if (s == NULL) {
        return 0;
    }
    if (ch_main__parse_u64(s, &v) != 0 || v < 1 || v > TLS_DAYS_MAX) {
        fprintf(stderr, "cctvhub %s: --days must be a whole number from 1 to %d, not \"%s\"\n", cmd,
                TLS_DAYS_MAX, s);
        return -1;
    }
    *days = (int)v;
    return 0;
}

/* The CA's directory into *dir (free with ch_free): --dir when given, else DATA_DIR/tls from
 * the configuration. CH_EXIT_OK, or the exit code after saying why. */
static int tls_dir(const ch_main_opts_t *opts, const char *dir_flag, char **dir)
{
    if (dir_flag != NULL) {
        *dir = ch_strdup(dir_flag);
        return CH_EXIT_OK;
    }
    ch_config_t cfg;
    int exit_code = ch_main__load_config(opts, &cfg);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    ch_buf_t b = {0};
    ch_buf_appendf(&b, "%s/tls", cfg.data_dir);
    *dir = ch_buf_steal(&b);
    ch_config_fini(&cfg);
    return CH_EXIT_OK;
}

/* The date days from now, as "2029-03-12". */
static void tls_until(int days, char out[16])
{
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

/* Adds name to names unless it is there already (DNS names match whatever their case). */
static void tls_add_name(const char **names, size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcasecmp(names[i], name) == 0) {
            return;
        }
    }
    if (*n < TLS_NAMES_MAX + 4) {
        names[(*n)++] = name;
    }
}

/* ---- tls init ------------------------------------------------------------------------- */

static int tls_init(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *dir_flag = NULL, *days_flag = NULL;
    const char *given[TLS_NAMES_MAX];
    int force = 0;
    const ch_main_flag_t flags[] = {{"--dir", &dir_flag}, {"--days", &days_flag}, {NULL, NULL}};
    tls_args_t a = {.cmd = "tls init",
                    .usage = tls_init_usage,
                    .flags = flags,
                    .names = given,
                    .force = &force};
    int exit_code = tls_parse(&a, &opts, argc, argv);
    if (exit_code >= 0) {
        return exit_code;
    }
    int days = TLS_SERVER_DAYS;
    if (tls_days(a.cmd, days_flag, &days) != 0) {
        return CH_EXIT_USAGE;
    }
    for (size_t i = 0; i < a.n_names; i++) {
        if (!ch_net_pki_name_valid(given[i])) {
            fprintf(stderr,
                    "cctvhub tls init: --name \"%s\" is neither a DNS name (letters, digits, "
                    "'-' and '.') nor an IP address\n",
                    given[i]);
            return CH_EXIT_USAGE;
        }
    }
    /* The names a client on this machine or the network may use; the host name only when it
     * can be one (a container's may not). */
    char host[256] = "";
    if (gethostname(host, sizeof(host)) != 0 || !ch_net_pki_name_valid(host)) {
        host[0] = '\0';
    }
    const char *names[TLS_NAMES_MAX + 4];
    size_t n_names = 0;
    tls_add_name(names, &n_names, "localhost");
    tls_add_name(names, &n_names, "127.0.0.1");
    tls_add_name(names, &n_names, "::1");
    if (host[0] != '\0') {
        tls_add_name(names, &n_names, host);
    }
    for (size_t i = 0; i < a.n_names; i++) {
        tls_add_name(names, &n_names, given[i]);
    }
    char *dir = NULL;
    exit_code = tls_dir(&opts, dir_flag, &dir);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    ch_buf_t crt = {0}, key = {0};
    char *err = NULL;
    int rc = ch_main__mkdir_p(dir);
    if (rc != 0) {
        fprintf(stderr, "cctvhub tls init: cannot create %s: %s\n", dir, ch_strerror(rc));
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    char ca_cn[65];
    snprintf(ca_cn, sizeof(ca_cn), "cctvhub CA %.53s", host[0] != '\0' ? host : "localhost");
    int ca_days = days > TLS_CA_DAYS ? days : TLS_CA_DAYS;
    rc = ch_net_pki_ca_make(dir, ca_cn, ca_days, force, &err);
    if (rc != 0) {
        fprintf(stderr, "cctvhub tls init: %s%s\n", err,
                rc == CH_EEXIST ? "; --force makes a new CA" : "");
        exit_code = CH_EXIT_FAILURE;
        goto out;
    }
    /* The server's files belong to the CA just made: whatever was there before was signed by
     * a CA that is gone, so they are replaced. */
    ch_buf_appendf(&crt, "%s/server.crt", dir);
    ch_buf_appendf(&key, "%s/server.key", dir);
    ch_net_pki_cert_req_t req = {
        .role = CH_NET_PKI_SERVER,
        .cn = a.n_names > 0 ? given[0] : (host[0] != '\0' ? host : "localhost"),
        .names = names,
        .n_names = n_names,
        .days = days,
    };
    rc = ch_net_pki_cert_make(dir, &req, crt.data, key.data, 1, &err);
    char fp[CH_NET_PKI_FINGERPRINT_SIZE];
    if (rc == 0) {
        rc = ch_net_pki_fingerprint_file(crt.data, fp, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "cctvhub tls init: %s\n", err);
        exit_code = CH_EXIT_FAILURE;
        goto out;
    }
    char ca_until[16], until[16];
    tls_until(ca_days, ca_until);
    tls_until(days, until);
    printf("made a private CA and the hub's certificate in %s:\n", dir);
    printf("  %s/ca.crt      the CA's certificate (until %s): give it to every client\n", dir,
           ca_until);
    printf("  %s/ca.key      the CA's key (secret, mode 0600): whoever holds it can make "
           "certificates that clients trust\n",
           dir);
    printf("  %s/server.crt  the hub's certificate and the CA's (the chain), until %s, for:\n", dir,
           until);
    printf("                 ");
    for (size_t i = 0; i < n_names; i++) {
        printf("%s%s", i > 0 ? " " : "", names[i]);
    }
    printf("\n  %s/server.key  its key (secret, mode 0600)\n", dir);
    printf("  server SPKI fingerprint %s\n", fp);
    printf("\nthe hub serves it with tls.cert = %s/server.crt and tls.key = %s/server.key\n", dir,
           dir);
    printf("(CCTVHUB_TLS_CERT, CCTVHUB_TLS_KEY); agencies' client certificates are checked with "
           "tls.client_ca = %s/ca.crt\nand, once one is revoked, tls.client_crl = %s/ca.crl\n",
           dir, dir);
    printf("\nclients trust it with the CA's certificate, for example:\n");
    printf("  curl --cacert %s/ca.crt https://127.0.0.1:8080/api/v1/version\n", dir);
    printf("  gst-launch-1.0 rtspsrc location=rtsps://127.0.0.1:322/... ! decodebin ! "
           "autovideosink\n    (GStreamer checks the chain: %s/ca.crt as rtspsrc's "
           "tls-database, or among the system's CAs: update-ca-certificates)\n",
           dir);
    printf("  ffplay rtsps://127.0.0.1:322/... encrypts too, but Debian's ffmpeg 5.1 does not "
           "check an rtsps:// server's certificate\n");
    printf("agencies' systems get client certificates: cctvhub tls client NAME --dir %s\n", dir);
out:
    ch_free(err);
    ch_free(dir);
    ch_buf_fini(&crt);
    ch_buf_fini(&key);
    return exit_code;
}

/* ---- tls client ----------------------------------------------------------------------- */

/* Whether name may name a client's files and certificate: see tls_client_usage. */
static int tls_client_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static int tls_client(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *dir_flag = NULL, *days_flag = NULL, *name = NULL;
    int force = 0;
    const ch_main_flag_t flags[] = {{"--dir", &dir_flag}, {"--days", &days_flag}, {NULL, NULL}};
    tls_args_t a = {.cmd = "tls client",
                    .usage = tls_client_usage,
                    .flags = flags,
                    .force = &force,
                    .pos = &name};
    int exit_code = tls_parse(&a, &opts, argc, argv);
    if (exit_code >= 0) {
        return exit_code;
    }
    int days = TLS_CLIENT_DAYS;
    if (tls_days(a.cmd, days_flag, &days) != 0) {
        return CH_EXIT_USAGE;
    }
    if (!tls_client_name_valid(name)) {
        fprintf(stderr,
                "cctvhub tls client: NAME \"%s\" must be letters, digits, '.', '_' and '-', at "
                "most 64, not starting with '.' or '-'\n",
                name);
        return CH_EXIT_USAGE;
    }
    char *dir = NULL;
    exit_code = tls_dir(&opts, dir_flag, &dir);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    ch_buf_t sub = {0}, crt = {0}, key = {0};
    char *err = NULL;
    ch_buf_appendf(&sub, "%s/clients", dir);
    ch_buf_appendf(&crt, "%s/%s.crt", sub.data, name);
    ch_buf_appendf(&key, "%s/%s.key", sub.data, name);
    /* Only below an existing DIR: without one there is no CA, which the PKI says, and a
     * mistyped --dir leaves no empty directories behind. */
    int rc = mkdir(sub.data, 0750) == 0 || errno == EEXIST || errno == ENOENT ? 0 : -errno;
    if (rc != 0) {
        fprintf(stderr, "cctvhub tls client: cannot create %s: %s\n", sub.data, ch_strerror(rc));
        exit_code = CH_EXIT_STORE;
        goto out;
    }
    ch_net_pki_cert_req_t req = {.role = CH_NET_PKI_CLIENT, .cn = name, .days = days};
    rc = ch_net_pki_cert_make(dir, &req, crt.data, key.data, force, &err);
    char fp[CH_NET_PKI_FINGERPRINT_SIZE];
    if (rc == 0) {
        rc = ch_net_pki_fingerprint_file(crt.data, fp, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "cctvhub tls client: %s%s\n", err,
                rc == CH_EEXIST ? " (--force replaces it; revoke the old one first)" : "");
        exit_code = CH_EXIT_FAILURE;
        goto out;
    }
    char until[16];
    tls_until(days, until);
    /* The fingerprint alone on stdout, so that a script can capture it. */
    printf("%s\n", fp);
    fprintf(stderr,
            "cctvhub tls client: wrote %s (until %s) and %s (secret, mode 0600) for \"%s\"; "
            "give them and %s/ca.crt to the agency, and bind its API key to the SPKI "
            "fingerprint above\n",
            crt.data, until, key.data, name, dir);
out:
    ch_free(err);
    ch_free(dir);
    ch_buf_fini(&sub);
    ch_buf_fini(&crt);
    ch_buf_fini(&key);
    return exit_code;
}

/* ---- tls revoke ----------------------------------------------------------------------- */

static int tls_revoke(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *dir_flag = NULL, *days_flag = NULL, *file = NULL;
    const ch_main_flag_t flags[] = {{"--dir", &dir_flag}, {"--days", &days_flag}, {NULL, NULL}};
    tls_args_t a = {.cmd = "tls revoke", .usage = tls_revoke_usage, .flags = flags, .pos = &file};
    int exit_code = tls_parse(&a, &opts, argc, argv);
    if (exit_code >= 0) {
        return exit_code;
    }
    int days = TLS_CRL_DAYS;
    if (tls_days(a.cmd, days_flag, &days) != 0) {
        return CH_EXIT_USAGE;
    }
    char *dir = NULL;
    exit_code = tls_dir(&opts, dir_flag, &dir);
    if (exit_code != CH_EXIT_OK) {
        return exit_code;
    }
    char *err = NULL;
    int already = 0;
    int rc = ch_net_pki_revoke(dir, file, days, &already, &err);
    if (rc != 0) {
        fprintf(stderr, "cctvhub tls revoke: %s\n", err);
        exit_code = CH_EXIT_FAILURE;
        goto out;
    }
    char until[16];
    tls_until(days, until);
    printf("%s %s: %s/ca.crl lists it; the CRL's next update is %s (run revoke again before "
           "then to renew it)\n",
           already ? "revoked already" : "revoked", file, dir, until);
out:
    ch_free(err);
    ch_free(dir);
    return exit_code;
}

/* ---- tls fingerprint ------------------------------------------------------------------ */

static int tls_fingerprint(int argc, char **argv)
{
    ch_main_opts_t opts;
    const char *file = NULL;
    tls_args_t a = {.cmd = "tls fingerprint", .usage = tls_fingerprint_usage, .pos = &file};
    int exit_code = tls_parse(&a, &opts, argc, argv);
    if (exit_code >= 0) {
        return exit_code;
    }
    char fp[CH_NET_PKI_FINGERPRINT_SIZE];
    char *err = NULL;
    if (ch_net_pki_fingerprint_file(file, fp, &err) != 0) {
        fprintf(stderr, "cctvhub tls fingerprint: %s\n", err);
        ch_free(err);
        return CH_EXIT_FAILURE;
    }
    printf("%s\n", fp);
    return CH_EXIT_OK;
}

int ch_main_tls(int argc, char **argv)
{
    if (argc < 2) {
        fputs(tls_usage, stderr);
        return CH_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(tls_usage, stdout);
        return CH_EXIT_OK;
    }
    if (strcmp(sub, "init") == 0) {
        return tls_init(argc - 1, argv + 1);
    }
    if (strcmp(sub, "client") == 0) {
        return tls_client(argc - 1, argv + 1);
    }
    if (strcmp(sub, "revoke") == 0) {
        return tls_revoke(argc - 1, argv + 1);
    }
    if (strcmp(sub, "fingerprint") == 0) {
        return tls_fingerprint(argc - 1, argv + 1);
    }
    fprintf(stderr, "cctvhub tls: unknown command \"%s\"\n\n%s", sub, tls_usage);
    return CH_EXIT_USAGE;
}
