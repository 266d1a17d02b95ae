/*
 * Unit tests of TLS inside net's connection (tls.c, conn.c) on a real loop over 127.0.0.1:
 * both ends are ch_net_conn_t (a server and a client), with certificates made by the openssl
 * command line in a temporary folder. Bytes cross both ways whole (a large write queued, a
 * referenced write released once its ciphertext left), the client checks the server's chain
 * and name or its pinned key, the server asks for and checks client certificates and tells
 * their key, a handshake that does not end in time, random bytes and a client without a
 * certificate where one is required all fail that connection with a reason, a session moves
 * whole to another loop, and records that wait while the owner does not read come when it
 * reads again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "support/fixture.h"

static char dir[256];

static void path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* A CA, a server certificate for 127.0.0.1 and localhost, a client certificate of that CA,
 * and a client certificate of another CA. */
static int make_certs(void **state)
{
    (void)state;
    if (ch_test_tmpdir(dir, sizeof(dir), "ch_test_tls") != 0) {
        return -1;
    }
    int rc = 0;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    rc |= ch_test_sh(
        dir, "openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca", ec);
    rc |= ch_test_sh(
        dir, "openssl req -x509 %s -keyout other.key -out other.crt -days 2 -subj /CN=other-ca",
        ec);
    rc |= ch_test_sh(
        dir,
        "openssl req %s -keyout server.key -out server.csr -subj /CN=hub && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' "
        "> server.ext && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile server.ext -out server.crt",
        ec);
    rc |= ch_test_sh(
        dir,
        "openssl req %s -keyout client.key -out client.csr -subj /CN=police-112 && "
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && openssl x509 -req -in "
        "client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile client.ext "
        "-out client.crt",
        ec);
    rc |= ch_test_sh(
        dir,
        "openssl req %s -keyout stranger.key -out stranger.csr -subj /CN=stranger && "
        "openssl x509 -req -in stranger.csr -CA other.crt -CAkey other.key -CAcreateserial "
        "-days 2 -extfile client.ext -out stranger.crt",
        ec);
    return rc;
}

static int remove_certs(void **state)
{
    (void)state;
    return ch_test_rmtree(dir);
}

typedef struct side {
    ch_net_conn_t conn;
    int errors, last_error, closed;
    ch_buf_t got;
    int released, release_status;
    int keep; /* do not consume (the owner holds its bytes) */
} side_t;

static void on_closed(ch_net_conn_t *c)
{
    ((side_t *)c->data)->closed++;
}

static void on_error(ch_net_conn_t *c, int status)
{
    side_t *s = c->data;
    s->errors++;
    s->last_error = status;
}

static void on_read(ch_net_conn_t *c)
{
    side_t *s = c->data;
    if (s->keep) {
        return;
    }
    ch_buf_append(&s->got, c->in, c->in_len);
    ch_net_conn_consume(c, c->in_len);
}

static void on_release(ch_net_conn_t *c, void *arg, int status)
{
    side_t *s = c->data;
    assert_ptr_equal(arg, s);
    s->released++;
    s->release_status = status;
}

static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(l, 1), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
    *b = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*b, (struct sockaddr *)&sin, sizeof(sin)), 0);
    *a = accept(l, NULL, NULL);
    assert_true(*a >= 0);
    close(l);
    assert_int_equal(fcntl(*a, F_SETFL, fcntl(*a, F_GETFL) | O_NONBLOCK), 0);
    assert_int_equal(fcntl(*b, F_SETFL, fcntl(*b, F_GETFL) | O_NONBLOCK), 0);
}

static void side_open(side_t *s, uv_loop_t *loop, int fd)
{
    memset(s, 0, sizeof(*s));
    ch_buf_init(&s->got);
    s->conn.data = s;
    s->conn.on_read = on_read;
    s->conn.on_error = on_error;
    assert_int_equal(ch_net_conn_open(&s->conn, loop, fd, 4096, 0), 0);
}

static void side_close(side_t *s, uv_loop_t *loop)
{
    ch_net_conn_close(&s->conn, on_closed);
    while (s->closed == 0) {
        uv_run(loop, UV_RUN_ONCE);
    }
    ch_buf_fini(&s->got);
}

/* Runs the loop until done(ud) or 10 s. */
static void run_until(uv_loop_t *loop, int (*done)(void *ud), void *ud)
{
    uint64_t end = uv_hrtime() + 10000000000ull;
    while (!done(ud) && uv_hrtime() < end) {
        if (uv_run(loop, UV_RUN_NOWAIT) == 0) {
            usleep(1000);
        }
    }
}

static ch_net_tls_t *server_ctx(const char *client_ca, int require)
{
    char cert[300], key[300], ca[300];
    path(cert, sizeof(cert), "server.crt");
    path(key, sizeof(key), "server.key");
    if (client_ca != NULL) {
        path(ca, sizeof(ca), client_ca);
    }
    ch_net_tls_config_t cfg = {.cert_file = cert,
                               .key_file = key,
                               .ca_file = client_ca != NULL ? ca : NULL,
                               .require_client_cert = require,
                               .alpn = "http/1.1"};
    ch_net_tls_t *t = NULL;
    char err[200];
    assert_int_equal(ch_net_tls_server_new(&cfg, &t, err, sizeof(err)), 0);
    return t;
}

static ch_net_tls_t *client_ctx(const char *own)
{
    char ca[300], cert[300], key[300];
    path(ca, sizeof(ca), "ca.crt");
    ch_net_tls_config_t cfg = {.ca_file = ca};
    if (own != NULL) {
        snprintf(cert, sizeof(cert), "%s/%s.crt", dir, own);
        snprintf(key, sizeof(key), "%s/%s.key", dir, own);
        cfg.cert_file = cert;
        cfg.key_file = key;
    }
    ch_net_tls_t *t = NULL;
    char err[200];
    assert_int_equal(ch_net_tls_client_new(&cfg, &t, err, sizeof(err)), 0);
    return t;
}

typedef struct pair {
    uv_loop_t loop;
    side_t srv, cli;
    ch_net_tls_t *sctx, *cctx;
} pair_t;

static void pair_open(pair_t *p, ch_net_tls_t *sctx, ch_net_tls_t *cctx, const char *host,
                      const char *pin)
{
    uv_loop_init(&p->loop);
    int a, b;
    tcp_pair(&a, &b);
    int small = 8192; /* so that a large write is queued */
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    int one = 1; /* small windows and Nagle would wait on delayed acknowledgements */
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    p->sctx = sctx;
    p->cctx = cctx;
    side_open(&p->srv, &p->loop, a);
    side_open(&p->cli, &p->loop, b);
    assert_int_equal(ch_net_conn_tls_accept(&p->srv.conn, sctx, 2000), 0);
    assert_int_equal(ch_net_conn_tls_connect(&p->cli.conn, cctx, host, pin, 2000), 0);
    assert_int_equal(ch_net_conn_read_start(&p->srv.conn), 0);
    assert_int_equal(ch_net_conn_read_start(&p->cli.conn), 0);
}

static void pair_close(pair_t *p)
{
    side_close(&p->srv, &p->loop);
    side_close(&p->cli, &p->loop);
    ch_net_tls_unref(p->sctx);
    ch_net_tls_unref(p->cctx);
    uv_run(&p->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&p->loop), 0);
}

static int both_ready(void *ud)
{
    pair_t *p = ud;
    return (ch_net_conn_tls_ready(&p->srv.conn) && ch_net_conn_tls_ready(&p->cli.conn)) ||
           p->srv.errors > 0 || p->cli.errors > 0;
}

static int any_error(void *ud)
{
    pair_t *p = ud;
    return p->srv.errors > 0 || p->cli.errors > 0;
}

typedef struct want {
    side_t *s;
    size_t n;
} want_t;

static int got_enough(void *ud)
{
    want_t *w = ud;
    return w->s->got.len >= w->n || w->s->errors > 0;
}

static void test_bytes_cross_both_ways_whole_and_a_referenced_write_is_released(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p, server_ctx(NULL, 0), client_ctx(NULL), "127.0.0.1", NULL);
    /* Written before the handshake ended: it waits for it. */
    assert_int_equal(ch_net_conn_send(&p.cli.conn, "hello", 5), 0);
    run_until(&p.loop, both_ready, &p);
    assert_int_equal(p.srv.errors, 0);
    assert_int_equal(p.cli.errors, 0);
    assert_string_equal(ch_net_conn_tls_version(&p.cli.conn), "TLSv1.3");
    assert_null(ch_net_conn_tls_peer_spki(&p.srv.conn)); /* no client certificate asked */

    size_t total = 3u << 20;
    uint8_t *big = malloc(total);
    for (size_t i = 0; i < total; i++) {
        big[i] = (uint8_t)(i * 7 + i / 251);
    }
    /* Many small buffers (packets) and a large one, by reference: the client does not read
     * for now, so the ciphertext waits in the server's queue and release comes later. */
    ch_net_conn_read_stop(&p.cli.conn);
    uv_buf_t bufs[40];
    size_t off = 0;
    for (int i = 0; i < 39; i++) {
        bufs[i] = uv_buf_init((char *)big + off, 1400);
        off += 1400;
    }
    bufs[39] = uv_buf_init((char *)big + off, (unsigned)(total - off));
    int rc = ch_net_conn_write_ref(&p.srv.conn, bufs, 40, on_release, &p.srv);
    assert_int_equal(rc, 0); /* queued: 3 MiB do not fit a loopback socket's buffers */
    assert_true(p.srv.conn.out_queued > 0);
    assert_int_equal(p.srv.released, 0);
    assert_int_equal(ch_net_conn_read_start(&p.cli.conn), 0);
    want_t w = {&p.cli, total};
    run_until(&p.loop, got_enough, &w);
    assert_int_equal(p.cli.got.len, total);
    assert_memory_equal(p.cli.got.data, big, total);
    assert_int_equal(p.srv.released, 1);
    assert_int_equal(p.srv.release_status, 0);
    want_t h = {&p.srv, 5};
    run_until(&p.loop, got_enough, &h);
    assert_int_equal(p.srv.got.len, 5);
    assert_memory_equal(p.srv.got.data, "hello", 5);
    free(big);
    pair_close(&p);
}

static void test_the_client_checks_the_name_or_the_pinned_key(void **state)
{
    (void)state;
    /* The certificate is for 127.0.0.1 and localhost, not example.org. */
    pair_t p;
    pair_open(&p, server_ctx(NULL, 0), client_ctx(NULL), "example.org", NULL);
    run_until(&p.loop, any_error, &p);
    assert_int_equal(p.cli.last_error, UV_EPROTO);
    assert_non_null(strstr(ch_net_conn_tls_error(&p.cli.conn), "hostname mismatch"));
    pair_close(&p);

    /* Pinned: the server's key passes whatever its chain (a client without its CA). */
    char fp[CH_NET_TLS_SPKI_LEN], crt[300];
    path(crt, sizeof(crt), "server.crt");
    FILE *f = fopen(crt, "r");
    assert_non_null(f);
    char pem[4096];
    size_t n = fread(pem, 1, sizeof(pem) - 1, f);
    fclose(f);
    pem[n] = '\0';
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der | "
             "sha256sum | cut -c1-64",
             crt);
    FILE *pp = popen(cmd, "r");
    char hex[80] = {0};
    assert_non_null(fgets(hex, sizeof(hex), pp));
    pclose(pp);
    hex[64] = '\0';
    snprintf(fp, sizeof(fp), "sha256:%s", hex);

    ch_net_tls_config_t none = {.ca_file = NULL};
    ch_net_tls_t *bare = NULL;
    char err[200];
    assert_int_equal(ch_net_tls_client_new(&none, &bare, err, sizeof(err)), 0);
    pair_open(&p, server_ctx(NULL, 0), bare, "camera.local", fp);
    run_until(&p.loop, both_ready, &p);
    assert_int_equal(p.cli.errors, 0);
    assert_true(ch_net_conn_tls_ready(&p.cli.conn));
    pair_close(&p);

    /* Another pin: refused, although the chain would pass. */
    fp[10] = fp[10] == 'a' ? 'b' : 'a';
    pair_open(&p, server_ctx(NULL, 0), client_ctx(NULL), "127.0.0.1", fp);
    run_until(&p.loop, any_error, &p);
    assert_int_equal(p.cli.last_error, UV_EPROTO);
    assert_non_null(ch_net_conn_tls_error(&p.cli.conn));
    pair_close(&p);
}

static void test_client_certificates_are_checked_and_their_key_told(void **state)
{
    (void)state;
    pair_t p;
    /* Required: a client without one is refused. */
    pair_open(&p, server_ctx("ca.crt", 1), client_ctx(NULL), "127.0.0.1", NULL);
    run_until(&p.loop, any_error, &p);
    assert_int_equal(p.srv.last_error, UV_EPROTO);
    assert_non_null(strstr(ch_net_conn_tls_error(&p.srv.conn), "certificate"));
    pair_close(&p);

    /* Of another CA: refused, with the reason. */
    pair_open(&p, server_ctx("ca.crt", 0), client_ctx("stranger"), "127.0.0.1", NULL);
    run_until(&p.loop, any_error, &p);
    assert_true(p.srv.errors > 0);
    assert_non_null(strstr(ch_net_conn_tls_error(&p.srv.conn), "issuer certificate"));
    pair_close(&p);

    /* The agency's: the server knows its key. */
    pair_open(&p, server_ctx("ca.crt", 0), client_ctx("client"), "localhost", NULL);
    run_until(&p.loop, both_ready, &p);
    assert_int_equal(ch_net_conn_send(&p.cli.conn, "x", 1), 0);
    want_t w = {&p.srv, 1};
    run_until(&p.loop, got_enough, &w);
    assert_int_equal(p.srv.errors, 0);
    const char *spki = ch_net_conn_tls_peer_spki(&p.srv.conn);
    assert_non_null(spki);
    assert_int_equal(strlen(spki), 71);
    assert_memory_equal(spki, "sha256:", 7);
    pair_close(&p);
}

static void test_garbage_and_a_silent_peer_fail_that_connection_only(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    ch_net_tls_t *sctx = server_ctx(NULL, 0);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &loop, a);
    assert_int_equal(ch_net_conn_tls_accept(&s.conn, sctx, 100), 0);
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"; /* plaintext to a TLS port */
    assert_int_equal(write(b, junk, sizeof(junk) - 1), (ssize_t)(sizeof(junk) - 1));
    want_t w = {&s, 1};
    run_until(&loop, got_enough, &w);
    assert_int_equal(s.last_error, UV_EPROTO);
    assert_int_equal(s.got.len, 0);
    assert_non_null(ch_net_conn_tls_error(&s.conn));
    side_close(&s, &loop);
    close(b);

    /* A peer that never ends its handshake: the handshake deadline. */
    tcp_pair(&a, &b);
    side_open(&s, &loop, a);
    assert_int_equal(ch_net_conn_tls_accept(&s.conn, sctx, 100), 0);
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    assert_int_equal(write(b, "\x16\x03\x01", 3), 3); /* a record header, then nothing */
    run_until(&loop, got_enough, &w);
    assert_int_equal(s.last_error, UV_ETIMEDOUT);
    assert_non_null(strstr(ch_net_conn_tls_error(&s.conn), "in time"));
    side_close(&s, &loop);
    close(b);
    ch_net_tls_unref(sctx);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_session_moves_whole_and_waiting_records_come_on_read_start(void **state)
{
    (void)state;
    pair_t p;
    pair_open(&p, server_ctx(NULL, 0), client_ctx(NULL), "127.0.0.1", NULL);
    run_until(&p.loop, both_ready, &p);
    /* The server holds its bytes (a request being handled) and stops reading. */
    p.srv.keep = 1;
    assert_int_equal(ch_net_conn_send(&p.cli.conn, "first", 5), 0);
    for (int i = 0; i < 50 && p.srv.conn.in_len < 5; i++) {
        uv_run(&p.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(p.srv.conn.in_len, 5);
    ch_net_conn_read_stop(&p.srv.conn);
    assert_int_equal(ch_net_conn_send(&p.cli.conn, "second", 6), 0);
    for (int i = 0; i < 50; i++) {
        uv_run(&p.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(p.srv.conn.in_len, 5); /* not read while stopped */

    /* Hand-over to another loop: the session and the bytes not consumed go. */
    int fd = -1;
    ch_buf_t unread;
    ch_buf_init(&unread);
    ch_net_tls_conn_t *tls = NULL;
    assert_int_equal(ch_net_conn_detach(&p.srv.conn, &fd, &unread, NULL, on_closed), CH_EUNSUPP);
    assert_int_equal(ch_net_conn_detach(&p.srv.conn, &fd, &unread, &tls, on_closed), 0);
    assert_non_null(tls);
    assert_int_equal(unread.len, 5);
    while (p.srv.closed == 0) {
        uv_run(&p.loop, UV_RUN_ONCE);
    }
    uv_loop_t loop2;
    uv_loop_init(&loop2);
    side_t moved;
    side_open(&moved, &loop2, fd);
    ch_net_conn_tls_adopt(&moved.conn, tls);
    assert_int_equal(ch_net_conn_feed(&moved.conn, unread.data, unread.len), 0);
    ch_buf_fini(&unread);
    ch_buf_append(&moved.got, moved.conn.in, moved.conn.in_len);
    ch_net_conn_consume(&moved.conn, moved.conn.in_len);
    assert_int_equal(ch_net_conn_read_start(&moved.conn), 0);
    want_t w = {&moved, 11};
    for (int i = 0; i < 2000 && !got_enough(&w); i++) {
        uv_run(&loop2, UV_RUN_NOWAIT);
        uv_run(&p.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_int_equal(moved.got.len, 11);
    assert_memory_equal(moved.got.data, "firstsecond", 11);
    /* And it answers on the moved session. */
    assert_int_equal(ch_net_conn_send(&moved.conn, "ok", 2), 0);
    want_t r = {&p.cli, 2};
    for (int i = 0; i < 2000 && !got_enough(&r); i++) {
        uv_run(&loop2, UV_RUN_NOWAIT);
        uv_run(&p.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_memory_equal(p.cli.got.data, "ok", 2);
    side_close(&moved, &loop2);
    uv_run(&loop2, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop2), 0);
    ch_buf_fini(&p.srv.got);
    side_close(&p.cli, &p.loop);
    ch_net_tls_unref(p.sctx);
    ch_net_tls_unref(p.cctx);
    uv_run(&p.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&p.loop), 0);
}

static void test_bad_files_are_refused_with_a_reason(void **state)
{
    (void)state;
    ch_net_tls_config_t cfg = {.cert_file = "/nonexistent/server.crt"};
    ch_net_tls_t *t = NULL;
    char err[200] = "";
    assert_int_equal(ch_net_tls_server_new(&cfg, &t, err, sizeof(err)), CH_EINVAL);
    assert_null(t);
    assert_non_null(strstr(err, "/nonexistent/server.crt"));
    char cert[300], key[300];
    path(cert, sizeof(cert), "server.crt");
    path(key, sizeof(key), "client.key"); /* not the certificate's key */
    ch_net_tls_config_t mism = {.cert_file = cert, .key_file = key};
    assert_int_equal(ch_net_tls_server_new(&mism, &t, err, sizeof(err)), CH_EINVAL);
    assert_non_null(strstr(err, "does not match"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_cross_both_ways_whole_and_a_referenced_write_is_released),
        cmocka_unit_test(test_the_client_checks_the_name_or_the_pinned_key),
        cmocka_unit_test(test_client_certificates_are_checked_and_their_key_told),
        cmocka_unit_test(test_garbage_and_a_silent_peer_fail_that_connection_only),
        cmocka_unit_test(test_a_session_moves_whole_and_waiting_records_come_on_read_start),
        cmocka_unit_test(test_bad_files_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
