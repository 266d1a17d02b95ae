/*
 * net/tls.c: TLS contexts (ch_net_tls_t: OpenSSL's SSL_CTX with the hub's rules) and the
 * TLS state of one connection (ch_net_tls_conn_t), which conn.c drives: every byte a
 * connection reads goes through tls_recv here before its owner sees it, every byte it writes
 * through tls_send; the owners of connections see plain bytes only (see net.h).
 *
 * The rules, in one place:
 *   - TLS 1.2 and 1.3 only; TLS 1.3's three suites; TLS 1.2's ECDHE with AES-GCM or
 *     ChaCha20-Poly1305 (forward secrecy, AEAD only); no renegotiation, no compression;
 *   - session resumption by tickets whose keys are the process's (shared by every context, so
 *     a certificate reload keeps them), rotated every CH_NET_TLS_TICKET_ROTATE_S and kept one
 *     period more for resuming (a ticket lives at most two periods);
 *   - a server asks for a client certificate only when it has client CAs (ca_file), checked
 *     against them and their CRL (crl_file) when given;
 *   - a client checks the server's chain against ca_file (or the system's CAs) and its name,
 *     unless it pins the server's key (a camera's self-signed certificate): then the key's SPKI
 *     fingerprint must be the pin, and nothing else is accepted.
 *
 * The connection's bytes pass through a BIO of our own (not a memory BIO): OpenSSL reads
 * records from the ciphertext buffer the socket filled, and each record it writes goes straight
 * to the socket (uv_try_write) or, when the socket is busy, into the connection's queue: one
 * copy fewer than a memory BIO. Small writes (RTP packets) are gathered into full records first.
 */
#include "net/tls_conn.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The plaintext of one TLS record at most: small writes are gathered into records this big. */
#define RECORD_MAX 16384
/* The records of one write are gathered into one socket write of up to this many bytes (four
 * records and their overhead): one syscall where there would be one per record. */
#define GATHER_MAX (4 * (RECORD_MAX + 256))

/* The thread's gathered ciphertext: filled by bio_write while ch_net__tls_write runs, empty
 * between calls (tls_gather_flush). */
static _Thread_local unsigned char gather_buf[GATHER_MAX];
static _Thread_local size_t gather_len;

struct ch_net_tls {
    SSL_CTX *ctx;
    int server;
    atomic_int refs;
};

/* ---- ticket keys: the process's, shared by every context ------------------------------- */

typedef struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    int64_t made; /* seconds; 0: none */
} ticket_key_t;

static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static ticket_key_t ticket_cur, ticket_old;

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* Under ticket_lock: a new current key when there is none or it is a period old. */
static int ticket_rotate(int64_t now)
{
    if (ticket_cur.made != 0 && now - ticket_cur.made < CH_NET_TLS_TICKET_ROTATE_S) {
        return 0;
    }
    ticket_key_t k;
    if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
        RAND_bytes(k.hmac, sizeof(k.hmac)) != 1) {
        return -1;
    }
    k.made = now;
    ticket_old = ticket_cur;
    ticket_cur = k;
    return 0;
}

static int ticket_mac_init(EVP_MAC_CTX *hctx, const unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

/* OpenSSL's ticket key callback: encrypt with the current key; decrypt with the current one
 * (1), the previous one (2: resume, and send a new ticket), or none (0: a full handshake). */
static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    CH_UNUSED(s);
    ticket_key_t k;
    int answer = 1;
    pthread_mutex_lock(&ticket_lock);
    int64_t now = now_s();
    if (ticket_rotate(now) != 0) {
        pthread_mutex_unlock(&ticket_lock);
        return -1;
    }
    if (enc) {
        k = ticket_cur;
    } else if (memcmp(key_name, ticket_cur.name, 16) == 0) {
        k = ticket_cur;
    } else if (ticket_old.made != 0 && memcmp(key_name, ticket_old.name, 16) == 0 &&
               now - ticket_old.made < 2 * CH_NET_TLS_TICKET_ROTATE_S) {
        k = ticket_old;
        answer = 2;
    } else {
        pthread_mutex_unlock(&ticket_lock);
        return 0;
    }
    pthread_mutex_unlock(&ticket_lock);
    if (enc) {
        memcpy(key_name, k.name, 16);
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
            answer = -1;
        }
    } else if (EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1) {
        answer = -1;
    }
    if (answer > 0 && ticket_mac_init(hctx, k.hmac) != 0) {
        answer = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return answer;
}

/* ---- contexts ---------------------------------------------------------------------------- */

static const char TLS12_CIPHERS[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char TLS13_SUITES[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/* OpenSSL's last error as text into err (with what failed first). */
static void ssl_err(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s%s%s: %s", what, file != NULL ? " " : "", file != NULL ? file : "",
                 why != NULL ? why : "failed");
    }
    ERR_clear_error();
}

/* The server's ALPN choice: the one protocol it speaks, or no agreement (the handshake goes
 * on without ALPN for a client that offered none). */
static int alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    CH_UNUSED(s);
    const unsigned char *want = arg; /* length-prefixed */
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen) {
            break;
        }
        if (l == want[0] && memcmp(in + i + 1, want + 1, l) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)l;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int ctx_common(SSL_CTX *ctx, char *err, size_t errlen)
{
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1) {
        ssl_err(err, errlen, "tls: cipher settings", NULL);
        return CH_EINVAL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Our BIO takes every record whole (socket or queue): a write never half-succeeds. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return 0;
}

static int ctx_cert(SSL_CTX *ctx, const ch_net_tls_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->cert_file == NULL) {
        return 0;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        ssl_err(err, errlen, "tls: certificate", cfg->cert_file);
        return CH_EINVAL;
    }
    const char *key = cfg->key_file != NULL ? cfg->key_file : cfg->cert_file;
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        ssl_err(err, errlen, mismatch ? "tls: the key does not match the certificate" : "tls: key",
                key);
        return CH_EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, errlen, "tls: the key does not match the certificate", key);
        return CH_EINVAL;
    }
    return 0;
}

static int ctx_crl(SSL_CTX *ctx, const char *file, char *err, size_t errlen)
{
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lk = X509_STORE_add_lookup(st, X509_LOOKUP_file());
    if (lk == NULL || X509_load_crl_file(lk, file, X509_FILETYPE_PEM) <= 0) {
        ssl_err(err, errlen, "tls: CRL", file);
        return CH_EINVAL;
    }
    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    return 0;
}

static ch_net_tls_t *tls_wrap(SSL_CTX *ctx, int server)
{
    ch_net_tls_t *t = ch_calloc(1, sizeof(*t));
    t->ctx = ctx;
    t->server = server;
    atomic_init(&t->refs, 1);
    return t;
}

int ch_net_tls_server_new(const ch_net_tls_config_t *cfg, ch_net_tls_t **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    if (cfg == NULL || cfg->cert_file == NULL) {
        snprintf(err, errlen, "tls: a server needs a certificate");
        return CH_EINVAL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_err(err, errlen, "tls: context", NULL);
        return CH_ENOMEM;
    }
    int rc = ctx_common(ctx, err, errlen);
    if (rc == 0) {
        rc = ctx_cert(ctx, cfg, err, errlen);
    }
    if (rc == 0 && cfg->ca_file != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            ssl_err(err, errlen, "tls: client CA", cfg->ca_file);
            rc = CH_EINVAL;
        } else {
            SSL_CTX_set_client_CA_list(ctx, names);
            SSL_CTX_set_verify(ctx,
                               SSL_VERIFY_PEER |
                                   (cfg->require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                               NULL);
            SSL_CTX_set_verify_depth(ctx, 4);
        }
        if (rc == 0 && cfg->crl_file != NULL) {
            rc = ctx_crl(ctx, cfg->crl_file, err, errlen);
        }
    }
    if (rc == 0) {
        /* Tickets only (no server-side cache): stateless, shared keys across reloads. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_timeout(ctx, 2 * CH_NET_TLS_TICKET_ROTATE_S);
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        static const unsigned char sid[] = "cctvhub";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
        if (cfg->alpn != NULL) {
            size_t l = strlen(cfg->alpn);
            if (l == 0 || l > 32) {
                snprintf(err, errlen, "tls: bad ALPN protocol");
                rc = CH_EINVAL;
            } else {
                /* Stored in the context's ex data slot-free way: a static table of the
                 * protocols the hub speaks (the pointer must outlive the context). */
                static const unsigned char http11[] = "\x08http/1.1";
                if (strcmp(cfg->alpn, "http/1.1") != 0) {
                    snprintf(err, errlen, "tls: ALPN protocol %s not known", cfg->alpn);
                    rc = CH_EINVAL;
                } else {
                    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)http11);
                }
            }
        }
        if (cfg->lean) {
            SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        }
    }
    if (rc != 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = tls_wrap(ctx, 1);
    return 0;
}

int ch_net_tls_client_new(const ch_net_tls_config_t *cfg, ch_net_tls_t **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ssl_err(err, errlen, "tls: context", NULL);
        return CH_ENOMEM;
    }
    int rc = ctx_common(ctx, err, errlen);
    if (rc == 0 && cfg != NULL) {
        rc = ctx_cert(ctx, cfg, err, errlen);
    }
    if (rc == 0) {
        const char *ca = cfg != NULL ? cfg->ca_file : NULL;
        int ok = ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL)
                            : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            ssl_err(err, errlen, "tls: CA bundle", ca != NULL ? ca : "(the system's)");
            rc = CH_EINVAL;
        }
    }
    if (rc == 0 && cfg != NULL && cfg->crl_file != NULL) {
        rc = ctx_crl(ctx, cfg->crl_file, err, errlen);
    }
    if (rc != 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    *out = tls_wrap(ctx, 0);
    return 0;
}

ch_net_tls_t *ch_net_tls_ref(ch_net_tls_t *t)
{
    if (t != NULL) {
        atomic_fetch_add(&t->refs, 1);
    }
    return t;
}

void ch_net_tls_unref(ch_net_tls_t *t)
{
    if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1) {
        SSL_CTX_free(t->ctx); /* connections hold their own references to it */
        ch_free(t);
    }
}

/* ---- a connection's TLS ------------------------------------------------------------------ */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;
static int ex_pin = -1;

/* OpenSSL asks for ciphertext: from what the socket read into t->cin. */
static int bio_read(BIO *b, char *buf, size_t len, size_t *got)
{
    ch_net_tls_conn_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t have = t->cin_len - t->cin_off;
    if (have == 0) {
        BIO_set_retry_read(b);
        *got = 0;
        return 0;
    }
    size_t n = len < have ? len : have;
    memcpy(buf, t->cin + t->cin_off, n);
    t->cin_off += n;
    if (t->cin_off == t->cin_len) {
        t->cin_off = t->cin_len = 0;
    }
    *got = n;
    return 1;
}

/* OpenSSL has a record to send: to the socket, or to the connection's queue (conn.c). */
/* Sends the gathered records of t (one socket write). 0 or an error (t->io_error). */
static int tls_gather_flush(ch_net_tls_conn_t *t)
{
    int rc = 0;
    if (gather_len > 0) {
        rc = t->conn != NULL ? ch_net__conn_raw_send(t->conn, gather_buf, gather_len) : CH_EIO;
        gather_len = 0;
        if (rc < 0 && t->io_error == 0) {
            t->io_error = rc;
        }
    }
    return rc < 0 ? rc : 0;
}

static int bio_write(BIO *b, const char *buf, size_t len, size_t *put)
{
    ch_net_tls_conn_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (t->gathering && t->conn != NULL && len <= GATHER_MAX) {
        if (gather_len + len > GATHER_MAX && tls_gather_flush(t) != 0) {
            *put = 0;
            return 0;
        }
        memcpy(gather_buf + gather_len, buf, len);
        gather_len += len;
        *put = len;
        return 1;
    }
    if (t->gathering && tls_gather_flush(t) != 0) {
        *put = 0;
        return 0;
    }
    int rc = CH_EIO;
    if (t->conn != NULL) {
        rc = ch_net__conn_raw_send(t->conn, buf, len);
    } else if (t->raw_fd >= 0) {
        /* A handed-over connection refused before any loop took it: best effort, as a
         * plaintext refusal's write() is. */
        rc = write(t->raw_fd, buf, len) == (ssize_t)len ? 0 : CH_EIO;
    }
    if (rc < 0) {
        t->io_error = rc;
        *put = 0;
        return 0;
    }
    *put = len;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    CH_UNUSED(b);
    CH_UNUSED(num);
    CH_UNUSED(ptr);
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_init_once(void)
{
    bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ch_net_conn");
    if (bio_method != NULL) {
        BIO_meth_set_read_ex(bio_method, bio_read);
        BIO_meth_set_write_ex(bio_method, bio_write);
        BIO_meth_set_ctrl(bio_method, bio_ctrl);
        BIO_meth_set_create(bio_method, bio_create);
    }
    ex_pin = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* A pinned server: its certificate (depth 0) passes when its key is the pin, whatever its
 * chain says (a camera's self-signed certificate); nothing else passes. */
static int pin_verify(int preverify, X509_STORE_CTX *xs)
{
    CH_UNUSED(preverify);
    SSL *s = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    const char *pin = s != NULL ? SSL_get_ex_data(s, ex_pin) : NULL;
    if (pin == NULL) {
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(xs) != 0) {
        return 1; /* the chain above the leaf does not matter: the key is pinned */
    }
    X509 *leaf = X509_STORE_CTX_get_current_cert(xs);
    char fp[CH_NET_TLS_SPKI_LEN];
    if (leaf != NULL && ch_net_pki_fingerprint(leaf, fp) == 0 && strcmp(fp, pin) == 0) {
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 1;
    }
    X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
    return 0;
}

ch_net_tls_conn_t *ch_net__tls_conn_new(ch_net_tls_t *ctx, const char *host, const char *pin,
                                        char *err, size_t errlen)
{
    pthread_once(&bio_once, bio_init_once);
    if (bio_method == NULL || ex_pin < 0) {
        snprintf(err, errlen, "tls: no BIO");
        return NULL;
    }
    SSL *ssl = SSL_new(ctx->ctx);
    BIO *bio = ssl != NULL ? BIO_new(bio_method) : NULL;
    if (bio == NULL) {
        SSL_free(ssl);
        ssl_err(err, errlen, "tls: new connection", NULL);
        return NULL;
    }
    ch_net_tls_conn_t *t = ch_calloc(1, sizeof(*t));
    t->ssl = ssl;
    t->server = ctx->server;
    t->cin_cap = CH_NET__TLS_CIN;
    t->raw_fd = -1;
    t->cin = ch_malloc(t->cin_cap);
    BIO_set_data(bio, t);
    SSL_set_bio(ssl, bio, bio);
    if (ctx->server) {
        SSL_set_accept_state(ssl);
        return t;
    }
    SSL_set_connect_state(ssl);
    int ok = 1;
    if (pin != NULL) {
        snprintf(t->pin, sizeof(t->pin), "%s", pin);
        ok = SSL_set_ex_data(ssl, ex_pin, t->pin) == 1;
        SSL_set_verify(ssl, SSL_VERIFY_PEER, pin_verify);
    } else if (host != NULL && host[0] != '\0') {
        /* The name to check: an IP literal against the certificate's IP addresses, a name
         * against its DNS names. */
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) {
            ok = SSL_set1_host(ssl, host) == 1;
        }
    }
    if (ok && host != NULL && host[0] != '\0' && strchr(host, ':') == NULL &&
        strspn(host, "0123456789.") != strlen(host)) {
        ok = SSL_set_tlsext_host_name(ssl, host) == 1; /* SNI: names only */
    }
    if (!ok) {
        ssl_err(err, errlen, "tls: peer name", host);
        ch_net__tls_conn_free(t);
        return NULL;
    }
    return t;
}

void ch_net_tls_conn_free(ch_net_tls_conn_t *t)
{
    ch_net__tls_conn_free(t);
}

void ch_net_refuse_fd(int fd, ch_net_tls_conn_t *tls, const void *p, size_t len)
{
    if (tls != NULL) {
        tls->conn = NULL;
        tls->raw_fd = fd;
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        if (ch_net__tls_write(tls, &b, 1) == 0) {
            (void)ch_net__tls_close_notify(tls);
        }
        ch_net__tls_conn_free(tls);
    } else if (write(fd, p, len) < 0) {
        /* the client is gone; nothing to do */
    }
    close(fd);
}

void ch_net__tls_conn_free(ch_net_tls_conn_t *t)
{
    if (t == NULL) {
        return;
    }
    SSL_free(t->ssl); /* frees the BIO */
    ch_free(t->cin);
    ch_free(t->early);
    ch_free(t);
}

/* Why the connection failed, into t->err: the certificate check's verdict when there is one,
 * else OpenSSL's reason. */
static void tls_note_error(ch_net_tls_conn_t *t, int sslerr)
{
    long v = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_last_error();
    const char *why = NULL;
    if (v != X509_V_OK) {
        why = X509_verify_cert_error_string(v);
    } else if (e != 0) {
        why = ERR_reason_error_string(e);
    } else if (sslerr == SSL_ERROR_SYSCALL) {
        why = "the peer closed during the handshake";
    }
    snprintf(t->err, sizeof(t->err), "%s", why != NULL ? why : "TLS error");
    ERR_clear_error();
}

/* The handshake ended: the peer's key, when it showed a certificate that passed. */
static void tls_established(ch_net_tls_conn_t *t)
{
    t->ready = 1;
    X509 *peer = SSL_get0_peer_certificate(t->ssl);
    if (peer != NULL && SSL_get_verify_result(t->ssl) == X509_V_OK) {
        if (ch_net_pki_fingerprint(peer, t->peer_spki) != 0) {
            t->peer_spki[0] = '\0';
        }
    }
}

int ch_net__tls_handshake(ch_net_tls_conn_t *t)
{
    if (t->ready) {
        return 1;
    }
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        tls_established(t);
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ && t->io_error == 0) {
        return 0;
    }
    if (t->io_error != 0) {
        snprintf(t->err, sizeof(t->err), "write failed");
        return t->io_error;
    }
    tls_note_error(t, e);
    return UV_EPROTO;
}

int ch_net__tls_read(ch_net_tls_conn_t *t, uint8_t *buf, size_t room, size_t *got)
{
    *got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(t->ssl, buf, room, got);
    if (r == 1) {
        return 1;
    }
    int e = SSL_get_error(t->ssl, r);
    if (t->io_error != 0) {
        return t->io_error;
    }
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return UV_EOF; /* close_notify */
    case SSL_ERROR_SYSCALL:
        return UV_EOF; /* the BIO never fails reads: no more bytes will come */
    default:
        tls_note_error(t, e);
        return UV_EPROTO;
    }
}

int ch_net__tls_pending(const ch_net_tls_conn_t *t)
{
    return t->peer_closed || t->cin_len > t->cin_off || SSL_has_pending(t->ssl);
}

/* SSL_write of len bytes (a record or part of one). 0 or an error. */
static int tls_write_once(ch_net_tls_conn_t *t, const void *p, size_t len)
{
    size_t put = 0;
    ERR_clear_error();
    if (SSL_write_ex(t->ssl, p, len, &put) == 1 && put == len) {
        return 0;
    }
    if (t->io_error != 0) {
        return t->io_error;
    }
    tls_note_error(t, SSL_get_error(t->ssl, 0));
    return UV_EPROTO;
}

static int tls_write_records(ch_net_tls_conn_t *t, const uv_buf_t *bufs, unsigned n);

int ch_net__tls_write(ch_net_tls_conn_t *t, const uv_buf_t *bufs, unsigned n)
{
    /* The records of this write leave together (gather_buf), in as few socket writes as
     * GATHER_MAX allows. */
    t->gathering = 1;
    gather_len = 0;
    int rc = tls_write_records(t, bufs, n);
    int fl = tls_gather_flush(t);
    t->gathering = 0;
    return rc != 0 ? rc : fl;
}

static int tls_write_records(ch_net_tls_conn_t *t, const uv_buf_t *bufs, unsigned n)
{
    /* Gathered into full records: a record per RTP packet would cost a header, a tag and
     * the cipher's set-up each. The staging buffer is the thread's: it is empty between
     * calls. */
    static _Thread_local unsigned char stage[RECORD_MAX];
    size_t fill = 0;
    for (unsigned i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)bufs[i].base;
        size_t l = bufs[i].len;
        while (l > 0) {
            if (fill == 0 && l >= RECORD_MAX) {
                int rc = tls_write_once(t, p, RECORD_MAX);
                if (rc != 0) {
                    return rc;
                }
                p += RECORD_MAX;
                l -= RECORD_MAX;
                continue;
            }
            size_t take = RECORD_MAX - fill < l ? RECORD_MAX - fill : l;
            memcpy(stage + fill, p, take);
            fill += take;
            p += take;
            l -= take;
            if (fill == RECORD_MAX) {
                int rc = tls_write_once(t, stage, fill);
                if (rc != 0) {
                    return rc;
                }
                fill = 0;
            }
        }
    }
    return fill > 0 ? tls_write_once(t, stage, fill) : 0;
}

int ch_net__tls_close_notify(ch_net_tls_conn_t *t)
{
    if (!t->ready) {
        return 0;
    }
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
    return t->io_error;
}

const char *ch_net__tls_version(const ch_net_tls_conn_t *t)
{
    return SSL_get_version(t->ssl);
}
_Static_assert(CH_NET_TLS_SPKI_LEN == CH_NET_PKI_FINGERPRINT_SIZE, "one fingerprint size");
