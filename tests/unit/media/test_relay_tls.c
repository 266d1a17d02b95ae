/*
 * The relay's RTSPS listener: beside the plain one, it answers RTSP inside TLS with the
 * context it was given; plain bytes and a handshake that never ends close that connection
 * only, counted (ch_media_relay_totals) and, for a failure, told to tls_refused with the peer
 * and OpenSSL's reason; ch_media_relay_set_tls serves a new context to new connections while
 * open ones keep theirs, and NULL closes new ones unanswered. The clients are OpenSSL's own,
 * blocking, on the test's thread; certificates are made by the openssl command line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "media/media.h"
#include "support/fixture.h"

static char dir[256];

static void path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* A CA and two server certificates of it for 127.0.0.1 (CN hub-1 and hub-2: a renewal). */
static int make_certs(void **state)
{
    (void)state;
    if (ch_test_tmpdir(dir, sizeof(dir), "ch_test_relay_tls") != 0) {
        return -1;
    }
    int rc = 0;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    rc |= ch_test_sh(
        dir, "openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca", ec);
    rc |= ch_test_sh(
        dir, "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
             "> server.ext");
    for (int i = 1; i <= 2; i++) {
        rc |= ch_test_sh(
            dir,
            "openssl req %s -keyout hub-%d.key -out hub-%d.csr -subj /CN=hub-%d && openssl x509 "
            "-req -in hub-%d.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "
            "server.ext -out hub-%d.crt",
            ec, i, i, i, i, i);
    }
    return rc;
}

static int remove_certs(void **state)
{
    (void)state;
    return ch_test_rmtree(dir);
}

static ch_net_tls_t *server_ctx(int n)
{
    char cert[300], key[300], crt[32], k[32];
    snprintf(crt, sizeof(crt), "hub-%d.crt", n);
    snprintf(k, sizeof(k), "hub-%d.key", n);
    path(cert, sizeof(cert), crt);
    path(key, sizeof(key), k);
    ch_net_tls_config_t cfg = {.cert_file = cert, .key_file = key};
    ch_net_tls_t *t = NULL;
    char err[256];
    assert_int_equal(ch_net_tls_server_new(&cfg, &t, err, sizeof(err)), 0);
    return t;
}

/* ---- the relay's callbacks ---------------------------------------------------------------- */

static pthread_mutex_t told_lock = PTHREAD_MUTEX_INITIALIZER;
static int told;
static char told_peer[64], told_why[128];

static void on_tls_refused(void *ud, const char *peer, const char *why)
{
    (void)ud;
    pthread_mutex_lock(&told_lock);
    told++;
    snprintf(told_peer, sizeof(told_peer), "%s", peer);
    snprintf(told_why, sizeof(told_why), "%s", why);
    pthread_mutex_unlock(&told_lock);
}

static int told_count(void)
{
    pthread_mutex_lock(&told_lock);
    int n = told;
    pthread_mutex_unlock(&told_lock);
    return n;
}

static ch_media_relay_t *start(ch_net_tls_t *tls, uint64_t handshake_ms)
{
    ch_media_relay_config_t cfg = {
        .listen = "127.0.0.1:0",
        .loops = 2,
        .tls_listen = "127.0.0.1:0",
        .tls = tls,
        .tls_handshake_ms = handshake_ms,
        .tls_refused = on_tls_refused,
    };
    ch_media_relay_t *r = NULL;
    char err[256];
    assert_int_equal(ch_media_relay_start(&cfg, &r, err, sizeof(err)), 0);
    assert_true(ch_media_relay_tls_port(r) > 0);
    assert_int_not_equal(ch_media_relay_tls_port(r), ch_media_relay_port(r));
    return r;
}

/* Waits (up to 5 s) until the relay's totals show want failures and want_timeouts. */
static void wait_totals(ch_media_relay_t *r, uint64_t failed, uint64_t timed_out)
{
    ch_media_relay_totals_t t;
    for (int i = 0; i < 500; i++) {
        ch_media_relay_totals(r, &t);
        if (t.tls_failed == failed && t.tls_timed_out == timed_out) {
            return;
        }
        usleep(10000);
    }
    ch_media_relay_totals(r, &t);
    assert_int_equal(t.tls_failed, failed);
    assert_int_equal(t.tls_timed_out, timed_out);
}

/* ---- clients ------------------------------------------------------------------------------ */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

typedef struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    int fd;
} client_t;

/* A TLS client checking the server against the test CA: 1 when the handshake ended. */
static int client_open(client_t *c, int port)
{
    char ca[300];
    path(ca, sizeof(ca), "ca.crt");
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->fd = dial(port);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    int ok = SSL_connect(c->ssl) == 1;
    ERR_clear_error();
    return ok;
}

static void client_close(client_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}

/* The CN of the certificate the server showed c. */
static void client_peer_cn(client_t *c, char *out, size_t n)
{
    X509 *x = SSL_get1_peer_certificate(c->ssl);
    assert_non_null(x);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)n);
    X509_free(x);
}

/* OPTIONS inside TLS: the answer's status line is 200. */
static void client_options(client_t *c, int cseq)
{
    char req[64], got[512];
    int n = snprintf(req, sizeof(req), "OPTIONS * RTSP/1.0\r\nCSeq: %d\r\n\r\n", cseq);
    assert_int_equal(SSL_write(c->ssl, req, n), n);
    size_t have = 0;
    while (have < sizeof(got) - 1 && strstr(got, "\r\n\r\n") == NULL) {
        int r = SSL_read(c->ssl, got + have, (int)(sizeof(got) - 1 - have));
        assert_true(r > 0);
        have += (size_t)r;
        got[have] = '\0';
    }
    assert_memory_equal(got, "RTSP/1.0 200 OK\r\n", 17);
}

/* Reads fd until the peer closes it (an end or a reset); the bytes read (at most cap), or -1
 * when it stayed open (the 5 s receive timeout). */
static ssize_t read_to_close(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    while (have < cap) {
        ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r > 0) {
            have += (size_t)r;
        } else if (r == 0) {
            break;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return -1;
        } else if (errno != EINTR) {
            break; /* a reset */
        }
    }
    return (ssize_t)have;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_rtsps_answers_inside_tls_and_plain_bytes_close_that_connection_only(void **state)
{
    (void)state;
    told = 0;
    ch_net_tls_t *t = server_ctx(1);
    ch_media_relay_t *r = start(t, 5000);
    ch_net_tls_unref(t); /* the relay holds its own reference */
    int port = ch_media_relay_tls_port(r);

    client_t a;
    assert_true(client_open(&a, port));
    client_options(&a, 1);

    /* Plain RTSP to the TLS port: closed, never answered in clear; counted and told. */
    int fd = dial(port);
    static const char opt[] = "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    assert_int_equal(send(fd, opt, sizeof(opt) - 1, 0), (ssize_t)(sizeof(opt) - 1));
    char buf[4096];
    ssize_t n = read_to_close(fd, buf, sizeof(buf) - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_null(strstr(buf, "RTSP/1.0"));
    close(fd);
    wait_totals(r, 1, 0);
    for (int i = 0; i < 500 && told_count() == 0; i++) {
        usleep(10000);
    }
    assert_int_equal(told_count(), 1);
    assert_memory_equal(told_peer, "127.0.0.1:", 10);
    assert_true(told_why[0] != '\0');

    /* The first client goes on. */
    client_options(&a, 2);
    client_close(&a);
    ch_media_relay_stop(r);
}

static void test_a_handshake_that_never_ends_is_closed_at_its_deadline(void **state)
{
    (void)state;
    told = 0;
    ch_net_tls_t *t = server_ctx(1);
    ch_media_relay_t *r = start(t, 200);
    ch_net_tls_unref(t);
    int fd = dial(ch_media_relay_tls_port(r));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[64];
    assert_int_equal(read_to_close(fd, buf, sizeof(buf)), 0); /* closed, nothing said */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(took >= 0.15 && took < 2.0);
    close(fd);
    wait_totals(r, 0, 1);
    assert_int_equal(told_count(), 0); /* a timeout is no refusal of a certificate */
    ch_media_relay_stop(r);
}

static void test_a_swapped_context_serves_new_connections_only(void **state)
{
    (void)state;
    ch_net_tls_t *t1 = server_ctx(1), *t2 = server_ctx(2);
    ch_media_relay_t *r = start(t1, 5000);
    int port = ch_media_relay_tls_port(r);
    client_t a, b, c;
    char cn[64];
    assert_true(client_open(&a, port));
    client_peer_cn(&a, cn, sizeof(cn));
    assert_string_equal(cn, "hub-1");

    ch_media_relay_set_tls(r, t2, 5000); /* a reload */
    ch_net_tls_unref(t1);                /* the old context may go: a is still served */
    ch_net_tls_unref(t2);
    assert_true(client_open(&b, port));
    client_peer_cn(&b, cn, sizeof(cn));
    assert_string_equal(cn, "hub-2");
    client_options(&b, 1);
    client_options(&a, 1);

    /* No context: a new connection is closed, never served in clear. */
    ch_media_relay_set_tls(r, NULL, 5000);
    assert_false(client_open(&c, port));
    client_close(&c);
    client_options(&a, 2);
    client_close(&a);
    client_close(&b);
    ch_media_relay_stop(r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a client writing to a connection the relay closed */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtsps_answers_inside_tls_and_plain_bytes_close_that_connection_only),
        cmocka_unit_test(test_a_handshake_that_never_ends_is_closed_at_its_deadline),
        cmocka_unit_test(test_a_swapped_context_serves_new_connections_only),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
