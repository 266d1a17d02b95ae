/*
 * A private PKI with OpenSSL 3's libcrypto: a CA, server and client certificates, a CRL, and
 * SPKI fingerprints (net.h, "PKI"). What the files hold is what a TLS peer checks, so the
 * choices follow what clients demand of a server certificate today: a subjectAltName (names
 * are matched there, never in the CN), extendedKeyUsage serverAuth, digitalSignature for an
 * ECDSA key, at most 825 days by default (the caller's choice; Apple's platforms refuse
 * longer server certificates even from a private CA).
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define PKI_DAYS_MAX 36500
/* A certificate starts a little before it is made: a peer whose clock runs a few minutes
 * behind would otherwise refuse a certificate made a moment ago as "not yet valid". */
#define PKI_BACKDATE_S (5 * 60)
/* RFC 5280's upper bound on a common name (ub-common-name). */
#define PKI_CN_MAX 64

/* Sets *err to the formatted message, followed by OpenSSL's reason when its error queue holds
 * one (the queue is cleared either way, so a later message never shows a stale reason).
 * Returns rc, so that a failure is one line: `return pki_fail(err, CH_EIO, "...")`. */
static int CH_PRINTF(3, 4) pki_fail(char **err, int rc, const char *fmt, ...)
{
    unsigned long e = ERR_peek_last_error();
    if (err != NULL && *err == NULL) {
        ch_buf_t b = {0};
        va_list ap;
        va_start(ap, fmt);
        ch_buf_vappendf(&b, fmt, ap);
        va_end(ap);
        if (e != 0) {
            char reason[256];
            ERR_error_string_n(e, reason, sizeof(reason));
            ch_buf_appendf(&b, " (%s)", reason);
        }
        *err = ch_buf_steal(&b);
    }
    ERR_clear_error();
    return rc;
}

static int days_valid(int days)
{
    return days >= 1 && days <= PKI_DAYS_MAX;
}

/* ---- files ---------------------------------------------------------------------------- */

/*
 * Writes [data, data+len) to path with mode, whole or not at all: into a temporary file next
 * to it (O_EXCL, fsync'd), then renamed over path (replace) or hard-linked to it, which fails
 * with EEXIST when path exists, so that two racing writers never both win and an existing key
 * is never replaced by accident. CH_EEXIST, or -errno.
 */
static int pki_write_file(const char *path, const void *data, size_t len, mode_t mode, int replace)
{
    ch_buf_t tmp = {0};
    ch_buf_appendf(&tmp, "%s.tmp%ld", path, (long)getpid());
    (void)unlink(tmp.data); /* a leftover of a crashed run of this same pid */
    int rc = 0;
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = ch_write_all(fd, data, len);
    /* The umask may have taken bits away from a public file; a key's 0600 is only narrowed. */
    if (rc == 0 && fchmod(fd, mode) != 0) {
        rc = -errno;
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
    }
    if (rc == 0) {
        if (replace) {
            rc = rename(tmp.data, path) == 0 ? 0 : -errno;
        } else {
            rc = link(tmp.data, path) == 0 ? 0 : (errno == EEXIST ? CH_EEXIST : -errno);
        }
    }
    (void)unlink(tmp.data); /* after a rename it is gone already */
out:
    ch_buf_fini(&tmp);
    return rc;
}

/* The PEM text a writer puts into a memory BIO, written to path as pki_write_file does. */
static int pki_write_bio(BIO *bio, const char *path, mode_t mode, int replace)
{
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    if (n <= 0) {
        return CH_EIO;
    }
    return pki_write_file(path, p, (size_t)n, mode, replace);
}

/* Reads the whole file at path into *b (a file of a few kilobytes). 0 or -errno. */
static int pki_read(const char *path, ch_buf_t *b)
{
    ch_buf_init(b);
    int rc = ch_buf_read_file(b, path);
    if (rc != 0) {
        ch_buf_fini(b);
    }
    return rc;
}

/* A PEM reader's password callback that has none: a key file encrypted by someone else fails
 * to load with a message instead of OpenSSL prompting on the terminal. */
static int pki_no_password(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* The first certificate in the file at path, PEM or DER. NULL after setting *err (and *rc). */
static X509 *pki_load_cert(const char *path, int *rc, char **err)
{
    ch_buf_t b;
    int r = pki_read(path, &b);
    if (r != 0) {
        *rc = pki_fail(err, r, "cannot read %s: %s", path, ch_strerror(r));
        return NULL;
    }
    X509 *x = NULL;
    BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio != NULL) {
        x = PEM_read_bio_X509(bio, NULL, pki_no_password, NULL);
        BIO_free(bio);
    }
    if (x == NULL) {
        /* Not PEM: a camera's certificate saved as DER, say. */
        const unsigned char *p = (const unsigned char *)b.data;
        x = d2i_X509(NULL, &p, (long)b.len);
    }
    ch_buf_fini(&b);
    if (x == NULL) {
        ERR_clear_error(); /* the reasons of two parsers failing say less than this */
        *rc = pki_fail(err, CH_EPARSE, "%s holds no certificate (PEM or DER)", path);
    }
    return x;
}

/* The private key in the PEM file at path. NULL after setting *err (and *rc). */
static EVP_PKEY *pki_load_key(const char *path, int *rc, char **err)
{
    ch_buf_t b;
    int r = pki_read(path, &b);
    if (r != 0) {
        *rc = pki_fail(err, r, "cannot read %s: %s", path, ch_strerror(r));
        return NULL;
    }
    EVP_PKEY *k = NULL;
    BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio != NULL) {
        k = PEM_read_bio_PrivateKey(bio, NULL, pki_no_password, NULL);
        BIO_free(bio);
    }
    OPENSSL_cleanse(b.data, b.len);
    ch_buf_fini(&b);
    if (k == NULL) {
        *rc = pki_fail(err, CH_EPARSE, "%s holds no private key (unencrypted PEM)", path);
    }
    return k;
}

/* The CA of dir: its certificate and key, checked to belong together. 0, or an error with
 * *err set (nothing to free). */
static int pki_load_ca(const char *dir, X509 **ca, EVP_PKEY **key, char **err)
{
    ch_buf_t cp = {0}, kp = {0};
    int rc = 0;
    *ca = NULL;
    *key = NULL;
    ch_buf_appendf(&cp, "%s/" CH_NET_PKI_CA_CERT, dir);
    ch_buf_appendf(&kp, "%s/" CH_NET_PKI_CA_KEY, dir);
    if (access(cp.data, F_OK) != 0 || access(kp.data, F_OK) != 0) {
        rc = pki_fail(err, CH_ENOENT, "no CA in %s (%s and %s); make one first", dir, cp.data,
                      kp.data);
        goto out;
    }
    *ca = pki_load_cert(cp.data, &rc, err);
    if (*ca == NULL) {
        goto out;
    }
    *key = pki_load_key(kp.data, &rc, err);
    if (*key == NULL) {
        goto out;
    }
    if (X509_check_private_key(*ca, *key) != 1) {
        rc = pki_fail(err, CH_EPARSE, "%s is not the key of %s", kp.data, cp.data);
        goto out;
    }
out:
    if (rc != 0) {
        X509_free(*ca);
        EVP_PKEY_free(*key);
        *ca = NULL;
        *key = NULL;
    }
    ch_buf_fini(&cp);
    ch_buf_fini(&kp);
    return rc;
}

/* ---- certificates --------------------------------------------------------------------- */

/* A new P-256 key, or NULL (OpenSSL's error queued). */
static EVP_PKEY *pki_new_key(void)
{
    return EVP_EC_gen("P-256");
}

/* Sets a random positive 128-bit serial: unique without a counter to keep (RFC 5280 allows up
 * to 20 bytes; CA/Browser rules ask for at least 64 random bits). 0 or CH_EIO. */
static int pki_set_serial(X509 *x)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        return CH_EIO;
    }
    r[0] &= 0x7f; /* positive */
    r[0] |= 0x40; /* never zero, and always 16 bytes of DER */
    BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : CH_EIO;
}

/* Whether cn may be a common name: 1 to 64 bytes, no control character. */
static int pki_cn_valid(const char *cn)
{
    size_t n = cn != NULL ? strlen(cn) : 0;
    if (n == 0 || n > PKI_CN_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)cn[i] < 0x20 || cn[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Whether s is a DNS name a certificate may carry: labels of letters, digits and hyphens (no
 * hyphen at either end), 1 to 63 bytes each, 253 in all; the first label may be "*". */
static int pki_dns_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) {
        return 0;
    }
    const char *label = s;
    for (const char *p = s;; p++) {
        if (*p != '.' && *p != '\0') {
            continue;
        }
        size_t len = (size_t)(p - label);
        if (len == 0 || len > 63) {
            return 0;
        }
        if (!(len == 1 && label[0] == '*' && label == s && *p == '.')) {
            if (label[0] == '-' || label[len - 1] == '-') {
                return 0;
            }
            for (size_t i = 0; i < len; i++) {
                char c = label[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-')) {
                    return 0;
                }
            }
        }
        if (*p == '\0') {
            return 1;
        }
        label = p + 1;
    }
}

int ch_net_pki_name_valid(const char *name)
{
    if (name == NULL) {
        return 0;
    }
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    ERR_clear_error();
    int is_ip = ip != NULL;
    ASN1_OCTET_STRING_free(ip);
    return is_ip || pki_dns_valid(name);
}

/* The subjectAltName of names: an IP literal as an iPAddress, anything else as a dNSName.
 * NULL after setting *err (a bad name). Built from typed values rather than OpenSSL's
 * "DNS:a,IP:b" text, so that a name cannot smuggle in another entry. */
static GENERAL_NAMES *pki_san(const char *const *names, size_t n, int *rc, char **err)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (gens == NULL) {
        *rc = pki_fail(err, CH_EIO, "cannot make a subjectAltName");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        GENERAL_NAME *g = NULL;
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(names[i]);
        ERR_clear_error(); /* a name that is no IP literal leaves an error queued */
        if (ip != NULL) {
            g = GENERAL_NAME_new();
            if (g != NULL) {
                GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
            } else {
                ASN1_OCTET_STRING_free(ip);
            }
        } else if (pki_dns_valid(names[i])) {
            ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
            if (dns != NULL && ASN1_STRING_set(dns, names[i], -1) == 1 &&
                (g = GENERAL_NAME_new()) != NULL) {
                GENERAL_NAME_set0_value(g, GEN_DNS, dns);
            } else {
                ASN1_IA5STRING_free(dns);
            }
        } else {
            *rc = pki_fail(err, CH_EINVAL,
                           "\"%s\" is neither a DNS name (letters, digits, '-' and '.') nor an "
                           "IP address",
                           names[i]);
            GENERAL_NAMES_free(gens);
            return NULL;
        }
        if (g == NULL || sk_GENERAL_NAME_push(gens, g) == 0) {
            GENERAL_NAME_free(g);
            GENERAL_NAMES_free(gens);
            *rc = pki_fail(err, CH_EIO, "cannot make a subjectAltName");
            return NULL;
        }
    }
    return gens;
}

/* Adds the extension nid from OpenSSL's configuration text value (a fixed text of ours, never
 * a caller's), in the context of ctx (subject and issuer). 0 or CH_EIO. */
static int pki_add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : CH_EIO;
}

/*
 * A new certificate for key, subject CN = cn, valid from a few minutes ago for days days,
 * issued by issuer (NULL: itself) and not yet signed, with a random serial and the subject
 * key identifier; the authority key identifier too when issuer is given (a self-signed CA adds
 * its own once the subject key identifier is there). NULL (OpenSSL's error queued).
 */
static X509 *pki_new_cert(EVP_PKEY *key, const char *cn, int days, X509 *issuer)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (x == NULL || name == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        pki_set_serial(x) != 0 ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                   -1, -1, 0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -PKI_BACKDATE_S) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL ||
        X509_set_pubkey(x, key) != 1) {
        goto fail;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    if (pki_add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0) {
        goto fail;
    }
    if (pki_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0) {
        goto fail;
    }
    X509_NAME_free(name);
    return x;
fail:
    X509_NAME_free(name);
    X509_free(x);
    return NULL;
}

/* The PEM of the key into a new file at path (0600). 0, CH_EEXIST, -errno or CH_EIO. */
static int pki_write_key(EVP_PKEY *key, const char *path, int replace)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = CH_EIO;
    if (bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1) {
        rc = pki_write_bio(bio, path, 0600, replace);
    }
    if (bio != NULL) {
        /* The key's bytes are not left in freed memory. */
        char *p = NULL;
        long n = BIO_get_mem_data(bio, &p);
        if (n > 0) {
            OPENSSL_cleanse(p, (size_t)n);
        }
    }
    BIO_free(bio);
    return rc;
}

/* The PEM of x, then of chain when not NULL, into path (0644). */
static int pki_write_cert(X509 *x, X509 *chain, const char *path, int replace)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = CH_EIO;
    if (bio != NULL && PEM_write_bio_X509(bio, x) == 1 &&
        (chain == NULL || PEM_write_bio_X509(bio, chain) == 1)) {
        rc = pki_write_bio(bio, path, 0644, replace);
    }
    BIO_free(bio);
    return rc;
}

int ch_net_pki_ca_make(const char *dir, const char *cn, int days, int force, char **err)
{
    if (err != NULL) {
        *err = NULL;
    }
    ERR_clear_error();
    if (dir == NULL || !pki_cn_valid(cn)) {
        return pki_fail(err, CH_EINVAL, "a CA's name must be 1 to %d bytes, no control character",
                        PKI_CN_MAX);
    }
    if (!days_valid(days)) {
        return pki_fail(err, CH_EINVAL, "days must be 1 to %d", PKI_DAYS_MAX);
    }
    ch_buf_t cp = {0}, kp = {0}, crlp = {0};
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    int rc = 0;
    ch_buf_appendf(&cp, "%s/" CH_NET_PKI_CA_CERT, dir);
    ch_buf_appendf(&kp, "%s/" CH_NET_PKI_CA_KEY, dir);
    ch_buf_appendf(&crlp, "%s/" CH_NET_PKI_CA_CRL, dir);
    if (!force && access(kp.data, F_OK) == 0) {
        rc = pki_fail(err, CH_EEXIST,
                      "%s exists; refusing to replace a CA key (every certificate it signed "
                      "would stop verifying)",
                      kp.data);
        goto out;
    }
    key = pki_new_key();
    x = key != NULL ? pki_new_cert(key, cn, days, NULL) : NULL;
    if (x == NULL) {
        rc = pki_fail(err, CH_EIO, "cannot make the CA certificate");
        goto out;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (pki_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        pki_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        X509_sign(x, key, EVP_sha256()) <= 0) {
        rc = pki_fail(err, CH_EIO, "cannot make the CA certificate");
        goto out;
    }
    rc = pki_write_key(key, kp.data, force);
    if (rc == CH_EEXIST) {
        rc = pki_fail(err, rc, "%s exists; refusing to replace a CA key", kp.data);
        goto out;
    }
    if (rc != 0) {
        rc = pki_fail(err, rc, "cannot write %s: %s", kp.data, ch_strerror(rc));
        goto out;
    }
    rc = pki_write_cert(x, NULL, cp.data, 1);
    if (rc != 0) {
        rc = pki_fail(err, rc, "cannot write %s: %s", cp.data, ch_strerror(rc));
        goto out;
    }
    if (unlink(crlp.data) != 0 && errno != ENOENT) {
        rc = pki_fail(err, -errno, "cannot remove the old CA's %s: %s", crlp.data, strerror(errno));
        goto out;
    }
out:
    X509_free(x);
    EVP_PKEY_free(key);
    ch_buf_fini(&cp);
    ch_buf_fini(&kp);
    ch_buf_fini(&crlp);
    return rc;
}

int ch_net_pki_cert_make(const char *ca_dir, const ch_net_pki_cert_req_t *req,
                         const char *cert_path, const char *key_path, int force, char **err)
{
    if (err != NULL) {
        *err = NULL;
    }
    ERR_clear_error();
    if (ca_dir == NULL || req == NULL || cert_path == NULL || key_path == NULL ||
        (req->role != CH_NET_PKI_SERVER && req->role != CH_NET_PKI_CLIENT) ||
        (req->n_names > 0 && req->names == NULL)) {
        return pki_fail(err, CH_EINVAL, "bad certificate request");
    }
    if (!pki_cn_valid(req->cn)) {
        return pki_fail(err, CH_EINVAL, "a name must be 1 to %d bytes, no control character",
                        PKI_CN_MAX);
    }
    if (!days_valid(req->days)) {
        return pki_fail(err, CH_EINVAL, "days must be 1 to %d", PKI_DAYS_MAX);
    }
    if (req->role == CH_NET_PKI_SERVER && req->n_names == 0) {
        return pki_fail(err, CH_EINVAL, "a server certificate needs at least one name");
    }
    if (!force) {
        const char *exists = access(key_path, F_OK) == 0    ? key_path
                             : access(cert_path, F_OK) == 0 ? cert_path
                                                            : NULL;
        if (exists != NULL) {
            return pki_fail(err, CH_EEXIST, "%s exists; refusing to replace it", exists);
        }
    }
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    GENERAL_NAMES *san = NULL;
    int rc = pki_load_ca(ca_dir, &ca, &ca_key, err);
    if (rc != 0) {
        goto out;
    }
    if (req->n_names > 0 && (san = pki_san(req->names, req->n_names, &rc, err)) == NULL) {
        goto out;
    }
    key = pki_new_key();
    x = key != NULL ? pki_new_cert(key, req->cn, req->days, ca) : NULL;
    if (x == NULL) {
        rc = pki_fail(err, CH_EIO, "cannot make the certificate");
        goto out;
    }
    /* A certificate may not outlive its CA: a peer refuses the chain from the CA's end on. */
    if (ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0 &&
        X509_set1_notAfter(x, X509_get0_notAfter(ca)) != 1) {
        rc = pki_fail(err, CH_EIO, "cannot make the certificate");
        goto out;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    int server = req->role == CH_NET_PKI_SERVER;
    if (pki_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        pki_add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
        pki_add_ext(x, &ctx, NID_ext_key_usage, server ? "serverAuth" : "clientAuth") != 0 ||
        (san != NULL && X509_add1_ext_i2d(x, NID_subject_alt_name, san, 0, 0) != 1) ||
        X509_sign(x, ca_key, EVP_sha256()) <= 0) {
        rc = pki_fail(err, CH_EIO, "cannot make the certificate");
        goto out;
    }
    rc = pki_write_key(key, key_path, force);
    if (rc != 0) {
        rc = pki_fail(err, rc, "cannot write %s: %s", key_path,
                      rc == CH_EEXIST ? "it exists" : ch_strerror(rc));
        goto out;
    }
    rc = pki_write_cert(x, server ? ca : NULL, cert_path, force);
    if (rc != 0) {
        rc = pki_fail(err, rc, "cannot write %s: %s", cert_path,
                      rc == CH_EEXIST ? "it exists" : ch_strerror(rc));
        /* A key without its certificate is of no use and would block the next try. */
        (void)unlink(key_path);
        goto out;
    }
out:
    GENERAL_NAMES_free(san);
    X509_free(x);
    EVP_PKEY_free(key);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

/* ---- revocation ----------------------------------------------------------------------- */

/* The CRL in the PEM file at path, or NULL after setting *err (and *rc). */
static X509_CRL *pki_load_crl(const char *path, int *rc, char **err)
{
    ch_buf_t b;
    int r = pki_read(path, &b);
    if (r != 0) {
        *rc = pki_fail(err, r, "cannot read %s: %s", path, ch_strerror(r));
        return NULL;
    }
    X509_CRL *crl = NULL;
    BIO *bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio != NULL) {
        crl = PEM_read_bio_X509_CRL(bio, NULL, pki_no_password, NULL);
        BIO_free(bio);
    }
    ch_buf_fini(&b);
    if (crl == NULL) {
        *rc = pki_fail(err, CH_EPARSE, "%s holds no CRL (PEM)", path);
    }
    return crl;
}

/* Adds a copy of every entry of old to crl, and tells whether serial is among them. Written
 * into a new CRL rather than edited in place, so that no encoding cached from the file is
 * signed again. 0 or CH_EIO. */
static int pki_crl_copy(X509_CRL *crl, X509_CRL *old, const ASN1_INTEGER *serial, int *found)
{
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(old);
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
        if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(r), serial) == 0) {
            *found = 1;
        }
        X509_REVOKED *copy = X509_REVOKED_dup(r);
        if (copy == NULL || X509_CRL_add0_revoked(crl, copy) != 1) {
            X509_REVOKED_free(copy);
            return CH_EIO;
        }
    }
    return 0;
}

/* The old CRL's number plus one (1 without one): each CRL a CA signs has a larger number
 * (RFC 5280 5.2.3), so a client can tell the newer of two. 0 or CH_EIO. */
static int pki_crl_number(X509_CRL *crl, X509_CRL *old)
{
    ASN1_INTEGER *prev = old != NULL ? X509_CRL_get_ext_d2i(old, NID_crl_number, NULL, NULL) : NULL;
    BIGNUM *bn = prev != NULL ? ASN1_INTEGER_to_BN(prev, NULL) : BN_new();
    ASN1_INTEGER *next = NULL;
    int ok = bn != NULL && BN_add_word(bn, 1) == 1 && (next = BN_to_ASN1_INTEGER(bn, NULL)) &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, next, 0, 0) == 1;
    ASN1_INTEGER_free(prev);
    ASN1_INTEGER_free(next);
    BN_free(bn);
    return ok ? 0 : CH_EIO;
}

int ch_net_pki_revoke(const char *ca_dir, const char *cert_path, int days, int *already, char **err)
{
    if (err != NULL) {
        *err = NULL;
    }
    if (already != NULL) {
        *already = 0;
    }
    ERR_clear_error();
    if (ca_dir == NULL || cert_path == NULL) {
        return pki_fail(err, CH_EINVAL, "bad revocation request");
    }
    if (!days_valid(days)) {
        return pki_fail(err, CH_EINVAL, "days must be 1 to %d", PKI_DAYS_MAX);
    }
    ch_buf_t crlp = {0};
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL;
    X509_CRL *old = NULL, *crl = NULL;
    X509_REVOKED *entry = NULL;
    ASN1_TIME *now = NULL;
    BIO *bio = NULL;
    int rc = pki_load_ca(ca_dir, &ca, &ca_key, err);
    if (rc != 0) {
        goto out;
    }
    if ((x = pki_load_cert(cert_path, &rc, err)) == NULL) {
        goto out;
    }
    /* Issued by this CA: its name and, what matters, its signature. A serial of another CA's
     * certificate in our CRL would revoke nothing and hide the mistake. */
    if (X509_check_issued(ca, x) != X509_V_OK || X509_verify(x, ca_key) != 1) {
        rc = pki_fail(err, CH_EINVAL, "%s was not issued by the CA in %s", cert_path, ca_dir);
        goto out;
    }
    if (X509_cmp(ca, x) == 0) {
        rc = pki_fail(err, CH_EINVAL,
                      "%s is the CA's own certificate; a CA is replaced (tls init --force), "
                      "not revoked",
                      cert_path);
        goto out;
    }
    ch_buf_appendf(&crlp, "%s/" CH_NET_PKI_CA_CRL, ca_dir);
    if (access(crlp.data, F_OK) == 0) {
        if ((old = pki_load_crl(crlp.data, &rc, err)) == NULL) {
            goto out;
        }
        if (X509_CRL_verify(old, ca_key) != 1) {
            rc = pki_fail(err, CH_EINVAL,
                          "%s is not signed by the CA in %s (an older CA's?); move it away",
                          crlp.data, ca_dir);
            goto out;
        }
    }
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    int found = 0;
    crl = X509_CRL_new();
    now = ASN1_TIME_new();
    if (crl == NULL || now == NULL || X509_gmtime_adj(now, 0) == NULL ||
        X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, now) != 1 || X509_time_adj_ex(now, days, 0, NULL) == NULL ||
        X509_CRL_set1_nextUpdate(crl, now) != 1 ||
        (old != NULL && pki_crl_copy(crl, old, serial, &found) != 0)) {
        rc = pki_fail(err, CH_EIO, "cannot make the CRL");
        goto out;
    }
    if (!found) {
        entry = X509_REVOKED_new();
        if (entry == NULL || X509_REVOKED_set_serialNumber(entry, (ASN1_INTEGER *)serial) != 1 ||
            X509_gmtime_adj(now, 0) == NULL || X509_REVOKED_set_revocationDate(entry, now) != 1 ||
            X509_CRL_add0_revoked(crl, entry) != 1) {
            rc = pki_fail(err, CH_EIO, "cannot make the CRL");
            goto out;
        }
        entry = NULL; /* the CRL's now */
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, NULL, NULL, crl, 0);
    X509_EXTENSION *aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
    int ok = aki != NULL && X509_CRL_add_ext(crl, aki, -1) == 1;
    X509_EXTENSION_free(aki);
    if (!ok || pki_crl_number(crl, old) != 0 || X509_CRL_sort(crl) != 1 ||
        X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0 || (bio = BIO_new(BIO_s_mem())) == NULL ||
        PEM_write_bio_X509_CRL(bio, crl) != 1) {
        rc = pki_fail(err, CH_EIO, "cannot make the CRL");
        goto out;
    }
    rc = pki_write_bio(bio, crlp.data, 0644, 1);
    if (rc != 0) {
        rc = pki_fail(err, rc, "cannot write %s: %s", crlp.data, ch_strerror(rc));
        goto out;
    }
    if (already != NULL) {
        *already = found;
    }
out:
    BIO_free(bio);
    X509_REVOKED_free(entry);
    ASN1_TIME_free(now);
    X509_CRL_free(crl);
    X509_CRL_free(old);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    ch_buf_fini(&crlp);
    return rc;
}

/* ---- fingerprints --------------------------------------------------------------------- */

int ch_net_pki_fingerprint(const struct x509_st *cert, char out[CH_NET_PKI_FINGERPRINT_SIZE])
{
    out[0] = '\0';
    /* X509_get_X509_PUBKEY takes a const certificate in OpenSSL 3. */
    const X509_PUBKEY *spki = cert != NULL ? X509_get_X509_PUBKEY(cert) : NULL;
    unsigned char *der = NULL;
    int len = spki != NULL ? i2d_X509_PUBKEY(spki, &der) : -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int ok = len > 0 && EVP_Digest(der, (size_t)len, md, &md_len, EVP_sha256(), NULL) == 1 &&
             md_len == 32;
    OPENSSL_free(der);
    ERR_clear_error();
    if (!ok) {
        return CH_EINVAL;
    }
    memcpy(out, "sha256:", 7);
    ch_hex_encode(out + 7, CH_NET_PKI_FINGERPRINT_SIZE - 7, md, md_len, 0);
    return 0;
}

int ch_net_pki_fingerprint_file(const char *path, char out[CH_NET_PKI_FINGERPRINT_SIZE], char **err)
{
    if (err != NULL) {
        *err = NULL;
    }
    out[0] = '\0';
    ERR_clear_error();
    int rc = 0;
    X509 *x = pki_load_cert(path, &rc, err);
    if (x == NULL) {
        return rc;
    }
    rc = ch_net_pki_fingerprint(x, out);
    X509_free(x);
    if (rc != 0) {
        return pki_fail(err, CH_EPARSE, "%s: the certificate's public key cannot be read", path);
    }
    return 0;
}
