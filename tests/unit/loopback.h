/*
 * For the unit tests that run a peer on their own loop (net's client, the camera probe, the
 * alert webhook): a listener on 127.0.0.1 with a port the kernel chose, which accepts
 * connections, reads them into one buffer and lets the test answer. Include after cmocka.h.
 */
#ifndef CH_TEST_LOOPBACK_H
#define CH_TEST_LOOPBACK_H

#include <string.h>
#include <uv.h>

typedef struct loopback_peer loopback_peer_t;
/* Bytes arrived on s: pe->in[0, in_len) (NUL-terminated) are those the test has not dropped. */
typedef void (*loopback_read_fn)(loopback_peer_t *pe, uv_stream_t *s);

struct loopback_peer {
    uv_tcp_t srv, conn;
    int kind;     /* the test's: how this peer behaves */
    int answers;  /* the test's: what it answered so far */
    int accepted; /* connections accepted (conn is the last) */
    loopback_read_fn on_read;
    char in[65536]; /* starts over when full */
    size_t in_len;
    uv_write_t w;
};

static inline void loopback_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    loopback_peer_t *pe = h->data;
    (void)suggested;
    if (pe->in_len >= sizeof(pe->in) - 1) {
        pe->in_len = 0;
    }
    *b = uv_buf_init(pe->in + pe->in_len, (unsigned)(sizeof(pe->in) - 1 - pe->in_len));
}

static inline void loopback_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    loopback_peer_t *pe = s->data;
    (void)b;
    if (n <= 0) {
        return;
    }
    pe->in_len += (size_t)n;
    pe->in[pe->in_len] = '\0';
    if (pe->on_read != NULL) {
        pe->on_read(pe, s);
    }
}

static inline void loopback_incoming(uv_stream_t *srv, int status)
{
    loopback_peer_t *pe = srv->data;
    assert_int_equal(status, 0);
    assert_false(pe->accepted); /* one connection a test */
    assert_int_equal(uv_tcp_init(srv->loop, &pe->conn), 0);
    pe->conn.data = pe;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&pe->conn), 0);
    pe->accepted = 1;
    assert_int_equal(uv_read_start((uv_stream_t *)&pe->conn, loopback_alloc, loopback_read), 0);
}

/* Listens on 127.0.0.1:0 with pe (a peer of the test's kind, on_read called as bytes come).
 * Returns the port. */
static inline int loopback_listen(uv_loop_t *loop, loopback_peer_t *pe, int kind,
                                  loopback_read_fn on_read)
{
    memset(pe, 0, sizeof(*pe));
    pe->kind = kind;
    pe->on_read = on_read;
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(loop, &pe->srv), 0);
    pe->srv.data = pe;
    assert_int_equal(uv_tcp_bind(&pe->srv, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&pe->srv, 8, loopback_incoming), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(&pe->srv, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static inline void loopback_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* the client may close before it all went */
}

/* Sends 256 KiB on s: prefix, then 'x' to the end (an endless line or body). Once a peer. */
static inline void loopback_send_endless(loopback_peer_t *pe, uv_stream_t *s, const char *prefix)
{
    static char endless[256 * 1024];
    memset(endless, 'x', sizeof(endless));
    memcpy(endless, prefix, strlen(prefix));
    uv_buf_t out = uv_buf_init(endless, sizeof(endless));
    assert_int_equal(uv_write(&pe->w, s, &out, 1, loopback_written), 0);
}

/* Closes the peer's handles (run the loop after). */
static inline void loopback_close(loopback_peer_t *pe)
{
    if (pe->accepted) {
        uv_close((uv_handle_t *)&pe->conn, NULL);
    }
    uv_close((uv_handle_t *)&pe->srv, NULL);
}

#endif /* CH_TEST_LOOPBACK_H */
