/*
 * Unit tests of the HTTP server of net/: each test starts a server on 127.0.0.1:0 in a libuv
 * loop on a background thread and drives it with plain blocking sockets, as a client would.
 *
 * The handler answers {"ok":true,"len":N} with N the body length it received; /slow answers
 * the same 300 ms later from a uv_timer (an asynchronous handler); /err answers a JSON error;
 * /big accepts bodies up to 4 MiB through the body-limit callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

/* ---- the server under test -------------------------------------------------------------- */

typedef struct server {
    uv_loop_t loop;
    uv_async_t stop;
    ch_http_server_t *http;
    pthread_t thread;
    int port;
    atomic_int requests;  /* handler calls */
    atomic_int slow_seen; /* /slow requests being handled */
    atomic_int done;      /* the shutdown callback ran */
    int stopped;
} server_t;

typedef struct slow_reply {
    uv_timer_t timer;
    ch_http_request_t *req;
} slow_reply_t;

static void answer_ok(ch_http_request_t *req, int slow)
{
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"ok\":true,\"len\":%zu%s}", req->body_len,
                     slow ? ",\"slow\":true" : "");
    ch_http_respond(req, 200, "application/json", NULL, body, (size_t)n);
}

static void on_slow_closed(uv_handle_t *h)
{
    ch_free(h->data);
}

static void on_slow_timer(uv_timer_t *t)
{
    slow_reply_t *s = t->data;
    answer_ok(s->req, 1);
    uv_close((uv_handle_t *)&s->timer, on_slow_closed);
}

static void handler(ch_http_request_t *req, void *ud)
{
    server_t *srv = ud;
    atomic_fetch_add(&srv->requests, 1);
    if (ch_slice_eq(req->path, "/slow")) {
        slow_reply_t *s = ch_calloc(1, sizeof(*s));
        s->req = req;
        s->timer.data = s;
        uv_timer_init(&srv->loop, &s->timer);
        uv_timer_start(&s->timer, on_slow_timer, 300, 0);
        atomic_fetch_add(&srv->slow_seen, 1);
        return;
    }
    if (ch_slice_eq(req->path, "/large")) {
        size_t n = 4u << 20;
        char *big = ch_malloc(n);
        memset(big, 'x', n);
        ch_http_respond(req, 200, "application/octet-stream", NULL, big, n);
        ch_free(big);
        return;
    }
    if (ch_slice_eq(req->path, "/peer")) {
        ch_http_respond(req, 200, "text/plain", NULL, req->peer, strlen(req->peer));
        return;
    }
    if (ch_slice_eq(req->path, "/err")) {
        ch_http_respond_error(req, 404, "not_found", "no \"such\" thing", "id");
        return;
    }
    if (ch_slice_eq(req->path, "/query")) {
        char body[256];
        const ch_slice_t *ua = ch_http_request_header(req, "user-agent");
        int n = snprintf(body, sizeof(body), "%.*s|%.*s|%.*s|%d|%s", (int)req->path.len,
                         req->path.ptr, (int)req->query.len, req->query.ptr, ua ? (int)ua->len : 0,
                         ua ? ua->ptr : "", req->minor_version,
                         strncmp(req->peer, "127.0.0.1:", 10) == 0 ? "peer" : req->peer);
        ch_http_respond(req, 200, "text/plain", "X-Test: 1\r\n", body, (size_t)n);
        return;
    }
    answer_ok(req, 0);
}

static size_t body_limit(const ch_http_request_t *req, void *ud)
{
    return ch_slice_eq(req->path, "/big") ? 4u << 20 : 0;
}

static void on_shutdown_done(void *ud)
{
    server_t *srv = ud;
    atomic_store(&srv->done, 1);
}

static void on_stop(uv_async_t *a)
{
    server_t *srv = a->data;
    ch_http_server_shutdown(srv->http, on_shutdown_done, srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_thread(void *arg)
{
    server_t *srv = arg;
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* The trusted proxies the next server_start sets (NULL: none). */
static const char *next_trusted;

/* Starts a server with limits (NULL for the defaults) and its loop thread. */
static server_t *server_start(const ch_http_limits_t *limits)
{
    server_t *srv = ch_calloc(1, sizeof(*srv));
    assert_int_equal(uv_loop_init(&srv->loop), 0);
    assert_int_equal(uv_async_init(&srv->loop, &srv->stop, on_stop), 0);
    srv->stop.data = srv;
    assert_int_equal(ch_http_server_new(&srv->loop, limits, handler, body_limit, srv, &srv->http),
                     0);
    if (next_trusted != NULL) {
        ch_cidr_t nets[CH_CIDR_MAX];
        int n = ch_config_parse_cidrs(next_trusted, nets, CH_CIDR_MAX);
        assert_true(n > 0);
        ch_http_server_set_trusted_proxies(srv->http, nets, (size_t)n);
        next_trusted = NULL;
    }
    assert_int_equal(ch_http_server_listen(srv->http, "127.0.0.1:0"), 0);
    srv->port = ch_http_server_port(srv->http);
    assert_true(srv->port > 0);
    assert_int_equal(pthread_create(&srv->thread, NULL, server_thread, srv), 0);
    return srv;
}

/* Asks for a graceful shutdown and waits for the loop to end. */
static void server_stop(server_t *srv)
{
    if (!srv->stopped) {
        uv_async_send(&srv->stop);
        pthread_join(srv->thread, NULL);
        srv->stopped = 1;
    }
}

static void server_free(server_t *srv)
{
    server_stop(srv);
    assert_int_equal(atomic_load(&srv->done), 1);
    assert_int_equal(uv_loop_close(&srv->loop), 0);
    ch_free(srv);
}

static ch_http_limits_t limits_with(void (*edit)(ch_http_limits_t *))
{
    ch_http_limits_t l;
    ch_http_limits_default(&l);
    edit(&l);
    return l;
}

/* ---- a blocking client ------------------------------------------------------------------ */

typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len;
} client_t;

typedef struct response {
    int status;
    char head[4096];
    char body[8192];
    size_t body_len;
} response_t;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -errno;
    }
    return fd;
}

static client_t *client_new(server_t *srv)
{
    client_t *c = ch_calloc(1, sizeof(*c));
    c->fd = connect_port(srv->port);
    assert_true(c->fd >= 0);
    return c;
}

static void client_free(client_t *c)
{
    close(c->fd);
    ch_free(c);
}

/* Sends all of [p, p+n); returns 0 or -errno (the server may close early on purpose). */
static int send_bytes(client_t *c, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static void send_str(client_t *c, const char *s)
{
    assert_int_equal(send_bytes(c, s, strlen(s)), 0);
}

/* Reads more bytes into c->buf: >0 bytes read, 0 EOF, <0 error or timeout. */
static ssize_t client_fill(client_t *c)
{
    if (c->len == sizeof(c->buf)) {
        return -ENOBUFS;
    }
    ssize_t k;
    do {
        k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    } while (k < 0 && errno == EINTR);
    if (k < 0) {
        return -errno;
    }
    c->len += (size_t)k;
    return k;
}

/* Reads one response; no_body for the answer to HEAD. Returns 0, or -1 when the connection
 * ended (or timed out) first. Bytes after the response stay in c->buf. */
static int read_response(client_t *c, response_t *r, int no_body)
{
    memset(r, 0, sizeof(*r));
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t head_len = (size_t)(end - c->buf) + 4;
            assert_true(head_len < sizeof(r->head));
            memcpy(r->head, c->buf, head_len);
            r->head[head_len] = '\0';
            assert_int_equal(strncmp(r->head, "HTTP/1.1 ", 9), 0);
            r->status = (int)strtol(r->head + 9, NULL, 10);
            size_t cl = 0;
            const char *h = strstr(r->head, "\r\nContent-Length: ");
            if (h && !no_body) {
                cl = (size_t)strtoul(h + 18, NULL, 10);
            }
            assert_true(cl < sizeof(r->body));
            while (c->len < head_len + cl) {
                if (client_fill(c) <= 0) {
                    return -1;
                }
            }
            memcpy(r->body, c->buf + head_len, cl);
            r->body[cl] = '\0';
            r->body_len = cl;
            memmove(c->buf, c->buf + head_len + cl, c->len - head_len - cl);
            c->len -= head_len + cl;
            return 0;
        }
        if (client_fill(c) <= 0) {
            return -1;
        }
    }
}

/* Waits for the server to close: 1 when it did (EOF or reset) within the receive timeout. */
static int closed_by_server(client_t *c)
{
    for (;;) {
        c->len = 0;
        ssize_t k = client_fill(c);
        if (k == 0 || k == -ECONNRESET) {
            return 1;
        }
        if (k < 0) {
            return 0;
        }
    }
}

static void assert_has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL) {
        fail_msg("\"%s\" not found in:\n%s", needle, hay);
    }
}

/* One request/response on a fresh connection, then checks that the server closed it. */
static void expect_refusal(server_t *srv, const char *request, int status, const char *code)
{
    client_t *c = client_new(srv);
    response_t r;
    send_bytes(c, request, strlen(request));
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, status);
    assert_has(r.head, "Connection: close\r\n");
    assert_has(r.head, "Content-Type: application/json\r\n");
    char want[128];
    snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    assert_has(r.body, want);
    assert_true(closed_by_server(c));
    client_free(c);
}

/* The server still answers after whatever the test did to it. */
static void assert_server_alive(server_t *srv)
{
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET /alive HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    client_free(c);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_keep_alive_serves_several_requests_on_one_connection(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    for (int i = 0; i < 3; i++) {
        send_str(c, "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_int_equal(read_response(c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "{\"ok\":true,\"len\":0}");
        assert_has(r.head, "HTTP/1.1 200 OK\r\n");
        assert_has(r.head, "\r\nServer: cctvhub\r\n");
        assert_has(r.head, "\r\nDate: ");
        assert_has(r.head, " GMT\r\n");
        assert_has(r.head, "\r\nContent-Type: application/json\r\n");
        assert_has(r.head, "\r\nContent-Length: 19\r\n");
        assert_has(r.head, "\r\nConnection: keep-alive\r\n");
    }
    assert_int_equal(atomic_load(&srv->requests), 3);
    client_free(c);
    server_free(srv);
}

static void test_request_parts_reach_the_handler(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET /query?a=1&b=%20 HTTP/1.1\r\nUser-Agent: unit\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "/query|a=1&b=%20|unit|1|peer");
    assert_has(r.head, "\r\nX-Test: 1\r\n");
    client_free(c);
    server_free(srv);
}

/* The peer the server gives the handler for a request with the extra header lines xff. */
static void expect_peer(client_t *c, const char *xff, const char *want)
{
    response_t r;
    char req[1024];
    snprintf(req, sizeof(req), "GET /peer HTTP/1.1\r\n%s\r\n", xff);
    send_str(c, req);
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    if (strcmp(want, "proxy") == 0) {
        assert_int_equal(strncmp(r.body, "127.0.0.1:", 10), 0);
    } else {
        assert_string_equal(r.body, want);
    }
}

static void test_x_forwarded_for_names_the_client_behind_trusted_proxies_only(void **state)
{
    /* Without trusted proxies the header changes nothing. */
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    expect_peer(c, "X-Forwarded-For: 10.1.1.1\r\n", "proxy");
    client_free(c);
    server_free(srv);
    /* Trusted: this client (127.0.0.1) and 10.9.0.0/16. */
    next_trusted = "127.0.0.1, 10.9.0.0/16";
    srv = server_start(NULL);
    c = client_new(srv);
    expect_peer(c, "", "proxy");
    expect_peer(c, "X-Forwarded-For: 10.1.1.1\r\n", "10.1.1.1");
    /* The right-most address a trusted proxy did not add; what the client wrote itself on
     * the left counts for nothing. */
    expect_peer(c, "X-Forwarded-For: 1.2.3.4, 10.1.1.1\r\n", "10.1.1.1");
    expect_peer(c, "X-Forwarded-For: 1.2.3.4,10.9.1.1 , 10.9.2.2\r\n", "1.2.3.4");
    expect_peer(c, "X-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 10.9.0.5\r\n", "1.2.3.4");
    expect_peer(c, "X-Forwarded-For: 10.9.0.7\r\n", "10.9.0.7"); /* all trusted: the first */
    /* On the same connection, a request without the header is the proxy's again. */
    expect_peer(c, "", "proxy");
    /* IPv6, bracketed or not, and IPv4-mapped IPv6 as IPv4. */
    expect_peer(c, "X-Forwarded-For: 2001:db8::1\r\n", "[2001:db8::1]");
    expect_peer(c, "X-Forwarded-For: [2001:DB8::2]\r\n", "[2001:db8::2]");
    expect_peer(c, "X-Forwarded-For: ::ffff:192.0.2.9\r\n", "192.0.2.9");
    /* Malformed right-most entries leave the proxy as the peer; a malformed entry further left
     * stops the walk at the last good hop. */
    expect_peer(c, "X-Forwarded-For: garbage\r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: 1.2.3.4, garbage\r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: 10.1.1.1:5555\r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: 1.2.3.4, , 10.9.0.8\r\n", "10.9.0.8");
    expect_peer(c, "X-Forwarded-For: \r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: ,,,\r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: 1.2.3.4/8\r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: 999.1.1.1\r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: [[::1]]\r\n", "proxy");
    expect_peer(c, "X-Forwarded-For: ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255\r\n",
                "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]");
    client_free(c);
    server_free(srv);
}

static void test_pipelined_requests_in_one_write_are_answered_in_order(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
                "POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy"
                "POST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz");
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(read_response(c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        char want[64];
        snprintf(want, sizeof(want), "{\"ok\":true,\"len\":%d}", i);
        assert_string_equal(r.body, want);
    }
    client_free(c);
    server_free(srv);
}

static void test_pipelined_requests_wait_for_a_slow_handler(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET /slow HTTP/1.1\r\n\r\nGET /fast HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_string_equal(r.body, "{\"ok\":true,\"len\":0,\"slow\":true}");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_string_equal(r.body, "{\"ok\":true,\"len\":0}");
    client_free(c);
    server_free(srv);
}

static void test_request_sent_byte_by_byte_is_assembled(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    const char *s = "POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
    for (size_t k = 0; s[k]; k++) {
        assert_int_equal(send_bytes(c, s + k, 1), 0);
        if (k % 8 == 0) {
            sleep_ms(1);
        }
    }
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_string_equal(r.body, "{\"ok\":true,\"len\":4}");
    client_free(c);
    server_free(srv);
}

static void test_large_body_within_a_raised_limit_is_read_whole(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    size_t n = 3u << 20;
    char *body = ch_malloc(n);
    memset(body, 'b', n);
    char head[128];
    snprintf(head, sizeof(head), "POST /big HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
    send_str(c, head);
    /* In pieces, so that the server's buffer grows and moves while the body comes in. */
    for (size_t off = 0; off < n; off += 100000) {
        size_t k = n - off < 100000 ? n - off : 100000;
        assert_int_equal(send_bytes(c, body + off, k), 0);
    }
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    char want[64];
    snprintf(want, sizeof(want), "{\"ok\":true,\"len\":%zu}", n);
    assert_string_equal(r.body, want);
    /* And the connection goes on. */
    send_str(c, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    ch_free(body);
    client_free(c);
    server_free(srv);
}

/* Reads one response with a body of any size, checking that every body byte is want.
 * Returns the body length, or -1. */
static long read_large_response(client_t *c, char want)
{
    response_t r;
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (client_fill(c) <= 0) {
            return -1;
        }
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    assert_true(head_len < sizeof(r.head));
    memcpy(r.head, c->buf, head_len);
    r.head[head_len] = '\0';
    const char *h = strstr(r.head, "\r\nContent-Length: ");
    assert_non_null(h);
    size_t cl = (size_t)strtoul(h + 18, NULL, 10);
    memmove(c->buf, c->buf + head_len, c->len - head_len);
    c->len -= head_len;
    size_t got = 0;
    while (got < cl) {
        if (c->len == 0 && client_fill(c) <= 0) {
            return -1;
        }
        size_t k = c->len < cl - got ? c->len : cl - got;
        for (size_t i = 0; i < k; i++) {
            assert_int_equal(c->buf[i], want);
        }
        memmove(c->buf, c->buf + k, c->len - k);
        c->len -= k;
        got += k;
    }
    return (long)cl;
}

static void test_large_pipelined_answers_reach_a_slow_reader_whole(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = ch_calloc(1, sizeof(*c));
    /* A small receive window, so that the server's socket fills and uv_write must queue. */
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)srv->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    response_t r;
    send_str(c, "GET /large HTTP/1.1\r\n\r\nGET /large HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    /* Not reading yet: the kernel's buffers fill and the server must queue the rest. */
    sleep_ms(200);
    assert_int_equal(read_large_response(c, 'x'), 4L << 20);
    assert_int_equal(read_large_response(c, 'x'), 4L << 20);
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_string_equal(r.body, "{\"ok\":true,\"len\":0}");
    client_free(c);
    server_free(srv);
}

static void test_many_pipelined_requests_across_buffer_ends_are_all_answered(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    /* About 12 KiB in one write: requests straddle the end of the server's read buffer, in
     * their heads and in their bodies, so that it must move and grow the buffer under them. */
    ch_buf_t all;
    ch_buf_init(&all);
    int count = 200;
    for (int i = 0; i < count; i++) {
        int len = i % 7;
        ch_buf_appendf(&all, "POST /p%d HTTP/1.1\r\nX-Pad: %0*d\r\nContent-Length: %d\r\n\r\n%.*s",
                       i, 1 + i % 13, 0, len, len, "abcdefg");
    }
    assert_int_equal(send_bytes(c, all.data, all.len), 0);
    ch_buf_fini(&all);
    for (int i = 0; i < count; i++) {
        assert_int_equal(read_response(c, &r, 0), 0);
        char want[64];
        snprintf(want, sizeof(want), "{\"ok\":true,\"len\":%d}", i % 7);
        assert_string_equal(r.body, want);
    }
    client_free(c);
    server_free(srv);
}

static void test_http_1_0_request_is_answered_then_closed(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_has(r.head, "\r\nConnection: close\r\n");
    assert_true(closed_by_server(c));
    client_free(c);
    server_free(srv);
}

static void test_http_1_0_keep_alive_keeps_the_connection(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    for (int i = 0; i < 2; i++) {
        send_str(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_int_equal(read_response(c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        assert_has(r.head, "\r\nConnection: keep-alive\r\n");
    }
    client_free(c);
    server_free(srv);
}

static void test_connection_close_is_honoured_in_http_1_1(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    /* The second request is never answered: the first one closes the connection. */
    send_str(c, "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_has(r.head, "\r\nConnection: close\r\n");
    assert_int_equal(c->len, 0);
    assert_true(closed_by_server(c));
    assert_int_equal(atomic_load(&srv->requests), 1);
    client_free(c);
    server_free(srv);
}

static void test_head_request_gets_headers_without_body(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &r, 1), 0);
    assert_int_equal(r.status, 200);
    assert_has(r.head, "\r\nContent-Length: 19\r\n");
    /* The next bytes are the next response, not a body. */
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true,\"len\":0}");
    client_free(c);
    server_free(srv);
}

static void test_expect_100_continue_gets_an_interim_response(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 100);
    send_str(c, "hello");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true,\"len\":5}");
    client_free(c);
    server_free(srv);
}

static void test_malformed_head_gets_400_and_only_that_connection_closes(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *other = client_new(srv);
    expect_refusal(srv, "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "bad_request");
    expect_refusal(srv, "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad_request");
    expect_refusal(srv, "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "bad_request");
    expect_refusal(srv, "\x16\x03\x01\x00\xa5\x01\x00\x00", 400, "bad_request");
    expect_refusal(srv, "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400,
                   "bad_request");
    expect_refusal(srv, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "bad_request");
    /* A connection opened before is unaffected. */
    response_t r;
    send_str(other, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(other, &r, 0), 0);
    assert_int_equal(r.status, 200);
    client_free(other);
    server_free(srv);
}

static void short_request_timeout(ch_http_limits_t *l)
{
    l->request_timeout_ms = 200;
}

static void test_slow_client_gets_408(void **state)
{
    ch_http_limits_t l = limits_with(short_request_timeout);
    server_t *srv = server_start(&l);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET /api/v1/health HTTP/1.1\r\nHo");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    assert_has(r.body, "\"code\":\"request_timeout\"");
    assert_true(closed_by_server(c));
    assert_int_equal(atomic_load(&srv->requests), 0);
    client_free(c);
    assert_server_alive(srv);
    server_free(srv);
}

static void test_slow_body_gets_408(void **state)
{
    ch_http_limits_t l = limits_with(short_request_timeout);
    server_t *srv = server_start(&l);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 408);
    assert_true(closed_by_server(c));
    client_free(c);
    server_free(srv);
}

static void test_body_over_the_limit_gets_413_before_it_is_sent(void **state)
{
    server_t *srv = server_start(NULL);
    expect_refusal(srv, "POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", 413,
                   "payload_too_large");
    expect_refusal(srv, "POST /big HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n", 413,
                   "payload_too_large");
    expect_refusal(srv, "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
                   "bad_request");
    server_free(srv);
}

static void test_long_target_gets_414(void **state)
{
    server_t *srv = server_start(NULL);
    size_t n = 9000;
    char *req = ch_malloc(n + 64);
    memcpy(req, "GET /", 5);
    memset(req + 5, 'a', n);
    snprintf(req + 5 + n, 64, " HTTP/1.1\r\n\r\n");
    expect_refusal(srv, req, 414, "uri_too_long");
    /* Also while the request line is still coming, beyond the head limit. */
    char *partial = ch_malloc(20000);
    memcpy(partial, "GET /", 5);
    memset(partial + 5, 'a', 20000 - 6);
    partial[20000 - 1] = '\0';
    expect_refusal(srv, partial, 414, "uri_too_long");
    ch_free(partial);
    ch_free(req);
    server_free(srv);
}

static void test_oversized_head_gets_431(void **state)
{
    server_t *srv = server_start(NULL);
    size_t n = 17000;
    char *req = ch_malloc(n + 64);
    int k = snprintf(req, 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + k, 'v', n);
    snprintf(req + k + n, 64, "\r\n\r\n");
    expect_refusal(srv, req, 431, "headers_too_large");
    /* Incomplete and over the limit: refused without waiting for the end. */
    req[k + n] = '\0';
    expect_refusal(srv, req, 431, "headers_too_large");
    ch_free(req);
    server_free(srv);
}

static void few_headers(ch_http_limits_t *l)
{
    l->max_headers = 4;
}

static void test_too_many_headers_get_431(void **state)
{
    ch_http_limits_t l = limits_with(few_headers);
    server_t *srv = server_start(&l);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    client_free(c);
    expect_refusal(srv, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 431,
                   "headers_too_large");
    server_free(srv);
}

static void test_chunked_upload_gets_501(void **state)
{
    server_t *srv = server_start(NULL);
    expect_refusal(srv,
                   "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                   501, "not_implemented");
    expect_refusal(srv,
                   "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                   501, "not_implemented");
    server_free(srv);
}

static void test_unsupported_version_gets_505(void **state)
{
    server_t *srv = server_start(NULL);
    expect_refusal(srv, "GET / HTTP/2.0\r\n\r\n", 505, "http_version_not_supported");
    expect_refusal(srv, "GET / HTTP/1.2\r\n\r\n", 505, "http_version_not_supported");
    expect_refusal(srv, "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", 505, "http_version_not_supported");
    server_free(srv);
}

static void short_idle(ch_http_limits_t *l)
{
    l->idle_timeout_ms = 200;
}

static void test_idle_keep_alive_connection_is_closed(void **state)
{
    ch_http_limits_t l = limits_with(short_idle);
    server_t *srv = server_start(&l);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(closed_by_server(c));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 100 && ms < 2000);
    client_free(c);
    server_free(srv);
}

static void test_activity_postpones_the_idle_close(void **state)
{
    ch_http_limits_t l = limits_with(short_idle);
    server_t *srv = server_start(&l);
    client_t *c = client_new(srv);
    response_t r;
    /* Requests every 100 ms keep a connection with a 200 ms idle limit open. */
    for (int i = 0; i < 5; i++) {
        send_str(c, "GET / HTTP/1.1\r\n\r\n");
        assert_int_equal(read_response(c, &r, 0), 0);
        assert_int_equal(r.status, 200);
        sleep_ms(100);
    }
    assert_true(closed_by_server(c));
    client_free(c);
    server_free(srv);
}

static void test_error_body_is_json_with_code_message_and_field(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    response_t r;
    send_str(c, "GET /err HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 404);
    assert_has(r.head, "HTTP/1.1 404 Not Found\r\n");
    assert_has(r.head, "\r\nContent-Type: application/json\r\n");
    assert_string_equal(r.body,
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"such\\\" thing\","
                        "\"field\":\"id\"}}");
    /* A handler's error does not close the connection. */
    assert_has(r.head, "\r\nConnection: keep-alive\r\n");
    client_free(c);
    server_free(srv);
}

static void two_connections(ch_http_limits_t *l)
{
    l->max_connections = 2;
}

static void test_a_full_server_closes_an_idle_connection_for_a_newcomer(void **state)
{
    (void)state;
    ch_http_limits_t l = limits_with(two_connections);
    server_t *srv = server_start(&l);
    client_t *a = client_new(srv);
    client_t *b = client_new(srv);
    response_t r;
    send_str(a, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(a, &r, 0), 0);
    send_str(b, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(b, &r, 0), 0);
    /* Both idle, from one address: the oldest gives its place. */
    client_t *c = client_new(srv);
    send_str(c, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_true(closed_by_server(a));
    client_free(a);
    send_str(b, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(b, &r, 0), 0);
    assert_int_equal(r.status, 200);
    /* With a request begun on each, none is idle: the newcomer is refused. */
    send_str(b, "GET / HTTP/1.1\r\n");
    send_str(c, "GET / HTTP/1.1\r\n");
    sleep_ms(100);
    client_t *d = client_new(srv);
    assert_int_equal(read_response(d, &r, 0), 0);
    assert_int_equal(r.status, 503);
    assert_has(r.body, "\"code\":\"too_many_connections\"");
    assert_has(r.head, "\r\nRetry-After: 1\r\n");
    assert_true(closed_by_server(d));
    client_free(d);
    /* The begun requests go on. */
    send_str(b, "\r\n");
    assert_int_equal(read_response(b, &r, 0), 0);
    assert_int_equal(r.status, 200);
    client_free(b);
    client_free(c);
    sleep_ms(100);
    assert_server_alive(srv);
    server_free(srv);
}

static void two_per_address(ch_http_limits_t *l)
{
    l->max_connections_per_addr = 2;
}

static void
test_connections_over_the_per_address_cap_get_503_unless_from_a_trusted_proxy(void **state)
{
    (void)state;
    ch_http_limits_t l = limits_with(two_per_address);
    server_t *srv = server_start(&l);
    client_t *a = client_new(srv);
    client_t *b = client_new(srv);
    client_t *c = client_new(srv);
    response_t r;
    assert_int_equal(read_response(c, &r, 0), 0);
    assert_int_equal(r.status, 503);
    assert_has(r.body, "\"code\":\"too_many_connections\"");
    assert_has(r.head, "\r\nRetry-After: 1\r\n");
    assert_true(closed_by_server(c));
    client_free(c);
    send_str(a, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(a, &r, 0), 0);
    assert_int_equal(r.status, 200);
    /* Once one closes, a place is free. */
    client_free(b);
    sleep_ms(100);
    assert_server_alive(srv);
    client_free(a);
    server_free(srv);

    /* Every client of a trusted proxy shares its address: no cap by address. */
    next_trusted = "127.0.0.1";
    srv = server_start(&l);
    client_t *p[4];
    for (int k = 0; k < 4; k++) {
        p[k] = client_new(srv);
        send_str(p[k], "GET / HTTP/1.1\r\n\r\n");
        assert_int_equal(read_response(p[k], &r, 0), 0);
        assert_int_equal(r.status, 200);
    }
    for (int k = 0; k < 4; k++) {
        client_free(p[k]);
    }
    server_free(srv);
}

static void test_graceful_shutdown_finishes_the_in_flight_request(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *idle = client_new(srv);
    client_t *busy = client_new(srv);
    response_t r;
    send_str(idle, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(read_response(idle, &r, 0), 0);
    send_str(busy, "GET /slow HTTP/1.1\r\n\r\n");
    while (atomic_load(&srv->slow_seen) == 0) {
        sleep_ms(5);
    }
    uv_async_send(&srv->stop);
    /* The idle connection closes at once; the busy one gets its answer, then closes. */
    assert_true(closed_by_server(idle));
    assert_int_equal(atomic_load(&srv->done), 0);
    assert_int_equal(read_response(busy, &r, 0), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true,\"len\":0,\"slow\":true}");
    assert_has(r.head, "\r\nConnection: close\r\n");
    assert_true(closed_by_server(busy));
    pthread_join(srv->thread, NULL);
    srv->stopped = 1;
    assert_int_equal(atomic_load(&srv->done), 1);
    /* Nothing listens any more. */
    assert_int_equal(connect_port(srv->port), -ECONNREFUSED);
    client_free(idle);
    client_free(busy);
    server_free(srv);
}

static void test_client_gone_during_a_slow_handler_harms_nothing(void **state)
{
    server_t *srv = server_start(NULL);
    client_t *c = client_new(srv);
    send_str(c, "GET /slow HTTP/1.1\r\n\r\n");
    while (atomic_load(&srv->slow_seen) == 0) {
        sleep_ms(5);
    }
    /* A reset, not a polite close: the answer then meets a dead socket. */
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    client_free(c);
    sleep_ms(400);
    assert_server_alive(srv);
    server_free(srv);
}

static void test_shutdown_with_no_connections_calls_done(void **state)
{
    server_t *srv = server_start(NULL);
    server_stop(srv);
    assert_int_equal(atomic_load(&srv->done), 1);
    server_free(srv);
}

static void test_listen_refuses_bad_addresses(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ch_http_server_t *http;
    assert_int_equal(ch_http_server_new(&loop, NULL, handler, NULL, NULL, &http), 0);
    static const char *const bad[] = {
        "",          "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
        "nohost:80", ":80",       "[::1:80",    "[::1]80",         "127.0.0.1:8x"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        if (ch_http_server_listen(http, bad[k]) != CH_EINVAL) {
            fail_msg("\"%s\" was not refused", bad[k]);
        }
    }
    assert_int_equal(ch_http_server_listen(http, "127.0.0.1:0"), 0);
    /* Listening twice is a caller's mistake. */
    assert_int_equal(ch_http_server_listen(http, "127.0.0.1:0"), CH_EINVAL);
    /* A port in use is reported as such. */
    char busy[32];
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", ch_http_server_port(http));
    ch_http_server_t *second;
    assert_int_equal(ch_http_server_new(&loop, NULL, handler, NULL, NULL, &second), 0);
    assert_int_equal(ch_http_server_listen(second, busy), -EADDRINUSE);
    ch_http_server_shutdown(second, NULL, NULL);
    assert_true(ch_http_server_port(http) > 0);
    ch_http_server_shutdown(http, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_status_texts_are_the_standard_ones(void **state)
{
    assert_string_equal(ch_http_status_text(200), "OK");
    assert_string_equal(ch_http_status_text(404), "Not Found");
    assert_string_equal(ch_http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(ch_http_status_text(599), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x_forwarded_for_names_the_client_behind_trusted_proxies_only),
        cmocka_unit_test(test_keep_alive_serves_several_requests_on_one_connection),
        cmocka_unit_test(test_request_parts_reach_the_handler),
        cmocka_unit_test(test_pipelined_requests_in_one_write_are_answered_in_order),
        cmocka_unit_test(test_pipelined_requests_wait_for_a_slow_handler),
        cmocka_unit_test(test_request_sent_byte_by_byte_is_assembled),
        cmocka_unit_test(test_large_body_within_a_raised_limit_is_read_whole),
        cmocka_unit_test(test_large_pipelined_answers_reach_a_slow_reader_whole),
        cmocka_unit_test(test_many_pipelined_requests_across_buffer_ends_are_all_answered),
        cmocka_unit_test(test_http_1_0_request_is_answered_then_closed),
        cmocka_unit_test(test_http_1_0_keep_alive_keeps_the_connection),
        cmocka_unit_test(test_connection_close_is_honoured_in_http_1_1),
        cmocka_unit_test(test_head_request_gets_headers_without_body),
        cmocka_unit_test(test_expect_100_continue_gets_an_interim_response),
        cmocka_unit_test(test_malformed_head_gets_400_and_only_that_connection_closes),
        cmocka_unit_test(test_slow_client_gets_408),
        cmocka_unit_test(test_slow_body_gets_408),
        cmocka_unit_test(test_body_over_the_limit_gets_413_before_it_is_sent),
        cmocka_unit_test(test_long_target_gets_414),
        cmocka_unit_test(test_oversized_head_gets_431),
        cmocka_unit_test(test_too_many_headers_get_431),
        cmocka_unit_test(test_chunked_upload_gets_501),
        cmocka_unit_test(test_unsupported_version_gets_505),
        cmocka_unit_test(test_idle_keep_alive_connection_is_closed),
        cmocka_unit_test(test_activity_postpones_the_idle_close),
        cmocka_unit_test(test_error_body_is_json_with_code_message_and_field),
        cmocka_unit_test(test_a_full_server_closes_an_idle_connection_for_a_newcomer),
        cmocka_unit_test(
            test_connections_over_the_per_address_cap_get_503_unless_from_a_trusted_proxy),
        cmocka_unit_test(test_graceful_shutdown_finishes_the_in_flight_request),
        cmocka_unit_test(test_client_gone_during_a_slow_handler_harms_nothing),
        cmocka_unit_test(test_shutdown_with_no_connections_calls_done),
        cmocka_unit_test(test_listen_refuses_bad_addresses),
        cmocka_unit_test(test_status_texts_are_the_standard_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
