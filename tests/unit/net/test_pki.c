/*
 * The private PKI (net/tls_pki.c), checked against what others make of its files: the openssl
 * command verifies the chains and reads the CRL, OpenSSL's X509 API reads the names and key
 * usages, and the openssl pipeline an administrator would type computes the same SPKI
 * fingerprint. Keys must be 0600 whatever the umask, and nothing is replaced without force.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/net.h"
#include "support/fixture.h"

typedef struct pki {
    char dir[256];
    char server_crt[320], server_key[320];
    char client_crt[320], client_key[320];
    char other_crt[320], other_key[320];
} pki_t;

static const char *const server_names[] = {"localhost", "127.0.0.1", "::1", "hub.example.org",
                                           "10.1.2.3"};

/* A CA, a server certificate and two client certificates in a new directory. */
static int setup(void **state)
{
    pki_t *p = calloc(1, sizeof(*p));
    if (p == NULL || ch_test_tmpdir(p->dir, sizeof(p->dir), "ch_pki") != 0) {
        free(p);
        return -1;
    }
    snprintf(p->server_crt, sizeof(p->server_crt), "%s/server.crt", p->dir);
    snprintf(p->server_key, sizeof(p->server_key), "%s/server.key", p->dir);
    snprintf(p->client_crt, sizeof(p->client_crt), "%s/police-112.crt", p->dir);
    snprintf(p->client_key, sizeof(p->client_key), "%s/police-112.key", p->dir);
    snprintf(p->other_crt, sizeof(p->other_crt), "%s/fire-119.crt", p->dir);
    snprintf(p->other_key, sizeof(p->other_key), "%s/fire-119.key", p->dir);
    char *err = NULL;
    ch_net_pki_cert_req_t server = {.role = CH_NET_PKI_SERVER,
                                    .cn = "hub.example.org",
                                    .names = server_names,
                                    .n_names = CH_ARRAY_SIZE(server_names),
                                    .days = 825};
    ch_net_pki_cert_req_t client = {.role = CH_NET_PKI_CLIENT, .cn = "police-112", .days = 365};
    ch_net_pki_cert_req_t other = {.role = CH_NET_PKI_CLIENT, .cn = "fire-119", .days = 365};
    /* The widest umask a careless shell may have: the keys' mode must not come from it. */
    mode_t old = umask(0);
    int rc = ch_net_pki_ca_make(p->dir, "test CA", 3650, 0, &err);
    if (rc == 0) {
        rc = ch_net_pki_cert_make(p->dir, &server, p->server_crt, p->server_key, 0, &err);
    }
    if (rc == 0) {
        rc = ch_net_pki_cert_make(p->dir, &client, p->client_crt, p->client_key, 0, &err);
    }
    if (rc == 0) {
        rc = ch_net_pki_cert_make(p->dir, &other, p->other_crt, p->other_key, 0, &err);
    }
    umask(old);
    if (rc != 0) {
        fprintf(stderr, "setup: %s\n", err != NULL ? err : ch_strerror(rc));
        ch_free(err);
        ch_test_rmtree(p->dir);
        free(p);
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pki_t *p = *state;
    int rc = ch_test_rmtree(p->dir);
    free(p);
    return rc;
}

/* Runs a shell command (its output to /dev/null); its exit status. */
static int CH_PRINTF(1, 2) sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd) - 32, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd) - 32);
    memcpy(cmd + n, " >/dev/null 2>&1", 17);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* Runs a shell command and returns its standard output (free with ch_free); asserts that it
 * exits 0. */
static char *CH_PRINTF(1, 2) sh_out(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    ch_buf_t b = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, got);
    }
    int st = pclose(f);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ch_buf_append_char(&b, '\0');
    return ch_buf_steal(&b);
}

/* openssl verify with the CRL: the CRL file, the CA's directory, the certificate. */
#define VERIFY_CRL "openssl verify -crl_check -CRLfile %s -CAfile %s/ca.crt %s"

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static void read_file(const char *path, ch_buf_t *b)
{
    ch_buf_init(b);
    assert_int_equal(ch_buf_read_file(b, path), 0);
}

static void test_openssl_verifies_the_server_and_client_certificates_against_the_ca(void **state)
{
    pki_t *p = *state;
    assert_int_equal(sh("openssl verify -CAfile %s/ca.crt %s", p->dir, p->server_crt), 0);
    assert_int_equal(sh("openssl verify -CAfile %s/ca.crt %s", p->dir, p->client_crt), 0);
    /* The purposes a TLS server and client check: each certificate serves its role only. */
    assert_int_equal(
        sh("openssl verify -purpose sslserver -CAfile %s/ca.crt %s", p->dir, p->server_crt), 0);
    assert_int_equal(
        sh("openssl verify -purpose sslclient -CAfile %s/ca.crt %s", p->dir, p->client_crt), 0);
    assert_int_not_equal(
        sh("openssl verify -purpose sslserver -CAfile %s/ca.crt %s", p->dir, p->client_crt), 0);
    assert_int_not_equal(
        sh("openssl verify -purpose sslclient -CAfile %s/ca.crt %s", p->dir, p->server_crt), 0);
    /* Against another CA, nothing verifies. */
    char other[256];
    assert_int_equal(ch_test_tmpdir(other, sizeof(other), "ch_pki_other"), 0);
    char *err = NULL;
    assert_int_equal(ch_net_pki_ca_make(other, "another CA", 30, 0, &err), 0);
    assert_int_not_equal(sh("openssl verify -CAfile %s/ca.crt %s", other, p->server_crt), 0);
    assert_int_equal(ch_test_rmtree(other), 0);
}

static void test_the_ca_is_a_ca_for_certificates_and_crls_only(void **state)
{
    pki_t *p = *state;
    char path[320];
    snprintf(path, sizeof(path), "%s/ca.crt", p->dir);
    X509 *ca = load_cert(path);
    assert_int_equal(X509_check_ca(ca), 1);
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(ca, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_check_issued(ca, ca), X509_V_OK); /* self-signed */
    EVP_PKEY *pk = X509_get0_pubkey(ca);
    assert_int_equal(EVP_PKEY_get_bits(pk), 256);
    assert_true(EVP_PKEY_is_a(pk, "EC"));
    char cn[64];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "test CA");
    /* Valid for the days asked, from about now. */
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(ca)), 1);
    assert_true(days == 3649 || days == 3650);
    X509_free(ca);
}

static void test_the_server_certificate_has_its_names_server_auth_and_the_chain(void **state)
{
    pki_t *p = *state;
    X509 *x = load_cert(p->server_crt);
    /* The names as a TLS client matches them (in the subjectAltName). */
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "hub.example.org", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "HUB.example.org", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "other.example.org", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "10.1.2.4", 0), 0);
    /* Exactly the names given, in order, typed. */
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    assert_int_equal(sk_GENERAL_NAME_num(san), (int)CH_ARRAY_SIZE(server_names));
    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        unsigned char ip[16];
        int af = strchr(server_names[i], ':') != NULL ? AF_INET6 : AF_INET;
        if (inet_pton(af, server_names[i], ip) == 1) {
            assert_int_equal(g->type, GEN_IPADD);
            size_t len = af == AF_INET6 ? 16 : 4;
            assert_int_equal(ASN1_STRING_length(g->d.iPAddress), (int)len);
            assert_memory_equal(ASN1_STRING_get0_data(g->d.iPAddress), ip, len);
        } else {
            assert_int_equal(g->type, GEN_DNS);
            assert_string_equal((const char *)ASN1_STRING_get0_data(g->d.dNSName), server_names[i]);
        }
    }
    GENERAL_NAMES_free(san);
    assert_true(X509_get_extension_flags(x) & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_ca(x), 0);
    X509_free(x);
    /* server.crt is the chain: the certificate, then the CA's, byte for byte. */
    ch_buf_t chain, ca;
    char path[320];
    snprintf(path, sizeof(path), "%s/ca.crt", p->dir);
    read_file(p->server_crt, &chain);
    read_file(path, &ca);
    assert_true(chain.len > ca.len);
    assert_memory_equal(chain.data + chain.len - ca.len, ca.data, ca.len);
    assert_non_null(strstr(chain.data, "-----BEGIN CERTIFICATE-----"));
    ch_buf_fini(&chain);
    ch_buf_fini(&ca);
}

static void test_a_client_certificate_names_the_agency_with_client_auth(void **state)
{
    pki_t *p = *state;
    X509 *x = load_cert(p->client_crt);
    X509 *y = load_cert(p->other_crt);
    char cn[65];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "police-112");
    assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
    assert_null(X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL));
    /* Random 128-bit serials (positive, 16 bytes of DER): two certificates never share one. */
    const ASN1_INTEGER *sx = X509_get0_serialNumber(x), *sy = X509_get0_serialNumber(y);
    assert_int_equal(ASN1_STRING_length(sx), 16);
    assert_int_equal(ASN1_STRING_length(sy), 16);
    assert_int_not_equal(ASN1_INTEGER_cmp(sx, sy), 0);
    assert_int_not_equal(ASN1_STRING_type(sx), V_ASN1_NEG_INTEGER);
    /* Its own key, not the CA's nor another client's. */
    assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(x), X509_get0_pubkey(y)), 1);
    X509_free(x);
    X509_free(y);
    /* The client's file is the certificate alone. */
    ch_buf_t b;
    read_file(p->client_crt, &b);
    char *second = strstr(b.data + 1, "-----BEGIN CERTIFICATE-----");
    assert_null(second);
    ch_buf_fini(&b);
}

static void test_keys_are_0600_and_certificates_0644_whatever_the_umask(void **state)
{
    pki_t *p = *state;
    char ca_key[320], ca_crt[320];
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", p->dir);
    snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", p->dir);
    const char *keys[] = {ca_key, p->server_key, p->client_key, p->other_key};
    const char *certs[] = {ca_crt, p->server_crt, p->client_crt, p->other_crt};
    for (size_t i = 0; i < CH_ARRAY_SIZE(keys); i++) {
        struct stat st;
        assert_int_equal(stat(keys[i], &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(stat(certs[i], &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        /* Unencrypted PKCS#8 that the openssl command reads as an EC key. */
        assert_int_equal(sh("openssl pkey -in %s -noout", keys[i]), 0);
        assert_int_equal(sh("openssl x509 -in %s -noout -checkend 0", certs[i]), 0);
    }
    /* No temporary file is left behind. */
    assert_int_equal(sh("ls %s | grep -q tmp", p->dir), 1);
}

static void test_the_ca_key_is_never_replaced_without_force(void **state)
{
    pki_t *p = *state;
    char ca_key[320], ca_crt[320], crl[320];
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", p->dir);
    snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", p->dir);
    snprintf(crl, sizeof(crl), "%s/ca.crl", p->dir);
    ch_buf_t before, after;
    read_file(ca_key, &before);
    char *err = NULL;
    assert_int_equal(ch_net_pki_ca_make(p->dir, "test CA", 3650, 0, &err), CH_EEXIST);
    assert_non_null(strstr(err, "refusing to replace"));
    ch_free(err);
    read_file(ca_key, &after);
    assert_int_equal(after.len, before.len);
    assert_memory_equal(after.data, before.data, before.len);
    ch_buf_fini(&after);
    /* Nor a certificate or key already issued. */
    ch_buf_t key_before;
    read_file(p->client_key, &key_before);
    ch_net_pki_cert_req_t client = {.role = CH_NET_PKI_CLIENT, .cn = "police-112", .days = 1};
    assert_int_equal(ch_net_pki_cert_make(p->dir, &client, p->client_crt, p->client_key, 0, &err),
                     CH_EEXIST);
    assert_non_null(strstr(err, p->client_key));
    ch_free(err);
    read_file(p->client_key, &after);
    assert_int_equal(after.len, key_before.len);
    assert_memory_equal(after.data, key_before.data, key_before.len);
    ch_buf_fini(&after);
    ch_buf_fini(&key_before);
    /* With force: a new CA, and the old CA's CRL goes with it; the old certificates no longer
     * verify. */
    assert_int_equal(ch_net_pki_revoke(p->dir, p->other_crt, 30, NULL, &err), 0);
    assert_int_equal(access(crl, F_OK), 0);
    assert_int_equal(ch_net_pki_ca_make(p->dir, "test CA", 3650, 1, &err), 0);
    read_file(ca_key, &after);
    assert_false(after.len == before.len && memcmp(after.data, before.data, before.len) == 0);
    ch_buf_fini(&after);
    ch_buf_fini(&before);
    assert_int_not_equal(access(crl, F_OK), 0);
    assert_int_not_equal(sh("openssl verify -CAfile %s %s", ca_crt, p->server_crt), 0);
    struct stat st;
    assert_int_equal(stat(ca_key, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_a_revoked_certificate_is_in_the_crl_and_fails_verification_alone(void **state)
{
    pki_t *p = *state;
    char crl[320];
    snprintf(crl, sizeof(crl), "%s/ca.crl", p->dir);
    assert_int_not_equal(access(crl, F_OK), 0); /* made by the first revocation */
    char *err = NULL;
    int already = -1;
    assert_int_equal(ch_net_pki_revoke(p->dir, p->client_crt, 30, &already, &err), 0);
    assert_int_equal(already, 0);
    /* The serial, as the openssl command prints both. */
    char *serial = sh_out("openssl x509 -in %s -noout -serial | cut -d= -f2", p->client_crt);
    serial[strcspn(serial, "\n")] = '\0';
    assert_int_equal(strlen(serial), 32);
    char *text = sh_out("openssl crl -in %s -noout -text", crl);
    assert_non_null(strstr(text, serial));
    assert_non_null(strstr(text, "Issuer: CN = test CA"));
    assert_non_null(strstr(text, "Next Update"));
    ch_free(text);
    /* The CRL is the CA's: the openssl command checks its signature. */
    assert_int_equal(sh("openssl crl -in %s -noout -CAfile %s/ca.crt", crl, p->dir), 0);
    assert_int_not_equal(sh(VERIFY_CRL, crl, p->dir, p->client_crt), 0);
    assert_int_equal(sh(VERIFY_CRL, crl, p->dir, p->other_crt), 0);
    assert_int_equal(sh(VERIFY_CRL, crl, p->dir, p->server_crt), 0);
    /* Again: listed once, said so, the CRL signed anew (its number grows). */
    assert_int_equal(ch_net_pki_revoke(p->dir, p->client_crt, 30, &already, &err), 0);
    assert_int_equal(already, 1);
    text = sh_out("openssl crl -in %s -noout -text", crl);
    char *first = strstr(text, serial);
    assert_non_null(first);
    assert_null(strstr(first + 1, serial));
    ch_free(text);
    text = sh_out("openssl crl -in %s -noout -crlnumber", crl);
    assert_string_equal(text, "crlNumber=0x02\n");
    ch_free(text);
    /* A second revocation keeps the first. */
    assert_int_equal(ch_net_pki_revoke(p->dir, p->other_crt, 30, &already, &err), 0);
    assert_int_equal(already, 0);
    assert_int_not_equal(sh(VERIFY_CRL, crl, p->dir, p->client_crt), 0);
    assert_int_not_equal(sh(VERIFY_CRL, crl, p->dir, p->other_crt), 0);
    assert_int_equal(sh(VERIFY_CRL, crl, p->dir, p->server_crt), 0);
    ch_free(serial);
    /* The CA's own certificate, and one of another CA, are refused with the file named. */
    char path[320];
    snprintf(path, sizeof(path), "%s/ca.crt", p->dir);
    assert_int_equal(ch_net_pki_revoke(p->dir, path, 30, &already, &err), CH_EINVAL);
    assert_non_null(strstr(err, "own certificate"));
    ch_free(err);
    char other[256];
    assert_int_equal(ch_test_tmpdir(other, sizeof(other), "ch_pki_other"), 0);
    assert_int_equal(ch_net_pki_ca_make(other, "test CA", 30, 0, &err), 0); /* the same name */
    snprintf(path, sizeof(path), "%s/ca.crt", other);
    assert_int_equal(ch_net_pki_revoke(p->dir, path, 30, &already, &err), CH_EINVAL);
    assert_non_null(strstr(err, "not issued by"));
    ch_free(err);
    assert_int_equal(ch_test_rmtree(other), 0);
    /* No CA: said so. */
    assert_int_equal(ch_net_pki_revoke("/nonexistent", p->client_crt, 30, NULL, &err), CH_ENOENT);
    assert_non_null(strstr(err, "no CA"));
    ch_free(err);
}

static void test_the_fingerprint_is_what_the_openssl_pipeline_prints(void **state)
{
    pki_t *p = *state;
    char ca[320], der[320];
    snprintf(ca, sizeof(ca), "%s/ca.crt", p->dir);
    snprintf(der, sizeof(der), "%s/client.der", p->dir);
    const char *files[] = {ca, p->server_crt, p->client_crt, p->other_crt};
    char seen[4][CH_NET_PKI_FINGERPRINT_SIZE];
    for (size_t i = 0; i < CH_ARRAY_SIZE(files); i++) {
        char fp[CH_NET_PKI_FINGERPRINT_SIZE];
        char *err = NULL;
        assert_int_equal(ch_net_pki_fingerprint_file(files[i], fp, &err), 0);
        char *want = sh_out("openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform "
                            "der | sha256sum | cut -d' ' -f1",
                            files[i]);
        want[strcspn(want, "\n")] = '\0';
        assert_int_equal(strlen(want), 64);
        assert_int_equal(strlen(fp), 7 + 64);
        assert_memory_equal(fp, "sha256:", 7);
        assert_string_equal(fp + 7, want);
        ch_free(want);
        /* From the X509 itself, the same. */
        X509 *x = load_cert(files[i]);
        char fp2[CH_NET_PKI_FINGERPRINT_SIZE];
        assert_int_equal(ch_net_pki_fingerprint(x, fp2), 0);
        assert_string_equal(fp2, fp);
        X509_free(x);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(seen[j], fp);
        }
        memcpy(seen[i], fp, sizeof(fp));
    }
    /* A DER certificate (as a camera's may come) gives the same. */
    assert_int_equal(sh("openssl x509 -in %s -outform der -out %s", p->client_crt, der), 0);
    char fp[CH_NET_PKI_FINGERPRINT_SIZE];
    char *err = NULL;
    assert_int_equal(ch_net_pki_fingerprint_file(der, fp, &err), 0);
    assert_string_equal(fp, seen[2]);
    /* A key is no certificate; a missing file is said. */
    assert_int_equal(ch_net_pki_fingerprint_file(p->client_key, fp, &err), CH_EPARSE);
    assert_non_null(strstr(err, "holds no certificate"));
    ch_free(err);
    assert_int_equal(ch_net_pki_fingerprint_file("/nonexistent.crt", fp, &err), CH_ENOENT);
    assert_non_null(strstr(err, "/nonexistent.crt"));
    ch_free(err);
    assert_int_equal(ch_net_pki_fingerprint(NULL, fp), CH_EINVAL);
}

static void test_bad_requests_are_refused_with_the_reason(void **state)
{
    pki_t *p = *state;
    char crt[320], key[320];
    snprintf(crt, sizeof(crt), "%s/bad.crt", p->dir);
    snprintf(key, sizeof(key), "%s/bad.key", p->dir);
    const char *good[] = {"localhost", "*.example.org", "a-b.example",
                          "1.2.3.4",   "fe80::1",       "::ffff:10.0.0.1"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(good); i++) {
        assert_int_equal(ch_net_pki_name_valid(good[i]), 1);
    }
    const char *bad[] = {"",         "a b", "-x.example",   "x-.example", "x..example", "x.*.y",
                         "ex_ample", "x.",  "a,IP:1.2.3.4", NULL,         NULL};
    /* A label over 63 bytes, and a name over 253. */
    char long_label[80], long_name[300];
    memset(long_label, 'a', 64);
    memcpy(long_label + 64, ".example", 9);
    for (size_t i = 0; i < 127; i++) {
        memcpy(long_name + 2 * i, "a.", 2);
    }
    long_name[253] = 'b'; /* 254 bytes, no dot at the end */
    long_name[254] = '\0';
    bad[CH_ARRAY_SIZE(bad) - 2] = long_label;
    bad[CH_ARRAY_SIZE(bad) - 1] = long_name;
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        assert_int_equal(ch_net_pki_name_valid(bad[i]), 0);
        const char *names[] = {"localhost", bad[i]};
        ch_net_pki_cert_req_t req = {
            .role = CH_NET_PKI_SERVER, .cn = "x", .names = names, .n_names = 2, .days = 1};
        char *err = NULL;
        assert_int_equal(ch_net_pki_cert_make(p->dir, &req, crt, key, 0, &err), CH_EINVAL);
        assert_non_null(strstr(err, "neither a DNS name"));
        ch_free(err);
        assert_int_not_equal(access(key, F_OK), 0); /* nothing written */
        assert_int_not_equal(access(crt, F_OK), 0);
    }
    char *err = NULL;
    ch_net_pki_cert_req_t req = {.role = CH_NET_PKI_SERVER, .cn = "x", .days = 1};
    assert_int_equal(ch_net_pki_cert_make(p->dir, &req, crt, key, 0, &err), CH_EINVAL);
    assert_non_null(strstr(err, "at least one name"));
    ch_free(err);
    req.role = CH_NET_PKI_CLIENT;
    req.days = 0;
    assert_int_equal(ch_net_pki_cert_make(p->dir, &req, crt, key, 0, &err), CH_EINVAL);
    ch_free(err);
    req.days = 1;
    req.cn = "";
    assert_int_equal(ch_net_pki_cert_make(p->dir, &req, crt, key, 0, &err), CH_EINVAL);
    ch_free(err);
    req.cn = "an agency's name far longer than the sixty-four bytes a common name may hold";
    assert_int_equal(ch_net_pki_cert_make(p->dir, &req, crt, key, 0, &err), CH_EINVAL);
    ch_free(err);
    req.cn = "x";
    assert_int_equal(ch_net_pki_cert_make("/nonexistent", &req, crt, key, 0, &err), CH_ENOENT);
    assert_non_null(strstr(err, "no CA in /nonexistent"));
    ch_free(err);
    assert_int_not_equal(access(key, F_OK), 0);
    /* A certificate asked to outlive its CA ends with it. */
    req.days = 36500;
    assert_int_equal(ch_net_pki_cert_make(p->dir, &req, crt, key, 0, &err), 0);
    char ca_path[320];
    snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", p->dir);
    X509 *ca = load_cert(ca_path), *x = load_cert(crt);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)), 0);
    X509_free(ca);
    X509_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_openssl_verifies_the_server_and_client_certificates_against_the_ca, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_the_ca_is_a_ca_for_certificates_and_crls_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_the_server_certificate_has_its_names_server_auth_and_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_client_certificate_names_the_agency_with_client_auth,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_are_0600_and_certificates_0644_whatever_the_umask,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_ca_key_is_never_replaced_without_force, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_revoked_certificate_is_in_the_crl_and_fails_verification_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_fingerprint_is_what_the_openssl_pipeline_prints,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_are_refused_with_the_reason, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
