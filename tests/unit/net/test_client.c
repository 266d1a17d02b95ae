/*
 * Unit tests of net's client connection (client.c) on a real loop and 127.0.0.1: a dial that
 * connects and then passes its deadline, one refused, a name that does not resolve, a name
 * that does, a close while the lookup is in flight, and a connected dial moved into a
 * connection (ch_net_dial_conn): bytes both ways, the rest of the deadline, and a peer that
 * floods it cut by the read buffer's cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "../loopback.h"
#include "net/net.h"

typedef struct probe {
    ch_net_dial_t dial;
    int status, connects, deadlines, closed;
    unsigned resolved;
} probe_t;

static void on_closed(ch_net_dial_t *d)
{
    ((probe_t *)d->data)->closed++;
}

static void on_connect(ch_net_dial_t *d, int status)
{
    probe_t *p = d->data;
    p->connects++;
    p->status = status;
    p->resolved = d->resolved;
    if (status != 0) {
        ch_net_dial_close(d, on_closed);
    }
}

static void on_deadline(ch_net_dial_t *d)
{
    probe_t *p = d->data;
    p->deadlines++;
    ch_net_dial_close(d, on_closed);
}

static void on_incoming(uv_stream_t *srv, int status)
{
    (void)srv;
    (void)status; /* not accepted: the kernel completed the connect, which is all we test */
}

/* A listener on 127.0.0.1 that never accepts; its port. */
static int listen_any(uv_loop_t *loop, uv_tcp_t *srv)
{
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(loop, srv), 0);
    assert_int_equal(uv_tcp_bind(srv, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)srv, 8, on_incoming), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(srv, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void dial(uv_loop_t *loop, probe_t *p, const char *host, int port, uint64_t in_ms)
{
    memset(p, 0, sizeof(*p));
    p->dial.data = p;
    p->dial.on_deadline = on_deadline;
    ch_net_dial_start(&p->dial, loop, host, (uint16_t)port, uv_now(loop) + in_ms, on_connect);
}

static void test_a_dial_connects_and_its_deadline_comes_after(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t srv;
    int port = listen_any(&loop, &srv);
    probe_t p;
    dial(&loop, &p, "127.0.0.1", port, 100);
    while (p.closed == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(p.connects, 1);
    assert_int_equal(p.status, 0);
    assert_true(p.resolved);
    assert_int_equal(p.deadlines, 1);

    /* By name: resolved on the pool, then connected; closed before the deadline. */
    dial(&loop, &p, "localhost", port, 10000);
    while (p.connects == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    if (p.status == 0) {
        assert_true(p.resolved);
        ch_net_dial_close(&p.dial, on_closed);
    }
    while (p.closed == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(p.deadlines, 0);

    /* Refused: the listener is gone. */
    uv_close((uv_handle_t *)&srv, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    dial(&loop, &p, "127.0.0.1", port, 10000);
    while (p.closed == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(p.connects, 1);
    assert_int_equal(p.status, UV_ECONNREFUSED);
    assert_true(p.resolved);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_name_without_address_fails_and_a_lookup_can_be_closed(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    probe_t p;
    dial(&loop, &p, "no-such-camera.invalid", 554, 10000);
    while (p.closed == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(p.connects, 1);
    assert_true(p.status < 0);
    assert_false(p.resolved);

    /* Closed while the lookup runs: no connect callback, one closed callback. */
    dial(&loop, &p, "no-such-camera.invalid", 554, 10000);
    ch_net_dial_close(&p.dial, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(p.connects, 0);
    assert_int_equal(p.closed, 1);

    /* A deadline already past: the connect reports UV_ETIMEDOUT (or its own result). */
    dial(&loop, &p, "no-such-camera.invalid", 554, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(p.connects, 1);
    assert_true(p.status < 0);
    assert_int_equal(p.closed, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- ch_net_dial_conn -------------------------------------------------------------------- */

/* The peer, on the same loop: echoes what it reads, or (PEER_FLOOD) answers with 256 KiB
 * without a line end. */
enum { PEER_ECHO = 0, PEER_FLOOD = 1 };

static void peer_read(loopback_peer_t *pe, uv_stream_t *s)
{
    if (pe->kind == PEER_FLOOD) {
        if (pe->answers++ == 0) {
            loopback_send_endless(pe, s, "");
        }
        return;
    }
    uv_buf_t out = uv_buf_init(pe->in, (unsigned)pe->in_len);
    assert_int_equal(uv_try_write(s, &out, 1), (int)pe->in_len);
    pe->in_len = 0;
}

typedef struct client {
    ch_net_dial_t dial;
    ch_net_conn_t conn;
    int moved, dial_closed, conn_closed, error;
    char got[64];
    size_t got_len;
    uint64_t t0, t_error;
} client_t;

static void client_dial_closed(ch_net_dial_t *d)
{
    ((client_t *)d->data)->dial_closed++;
}

static void client_conn_closed(ch_net_conn_t *c)
{
    ((client_t *)c->data)->conn_closed++;
}

static void client_read(ch_net_conn_t *c)
{
    client_t *cl = c->data;
    if (c->in_len < 5) {
        return; /* the flood fills the buffer, not consumed */
    }
    if (cl->got_len == 0 && memcmp(c->in, "hello", 5) == 0) {
        memcpy(cl->got, c->in, 5);
        cl->got_len = 5;
        ch_net_conn_consume(c, 5);
    }
}

static void client_error(ch_net_conn_t *c, int status)
{
    client_t *cl = c->data;
    cl->error = status;
    cl->t_error = uv_now(c->loop);
    ch_net_conn_close(c, client_conn_closed);
}

static void client_connected(ch_net_dial_t *d, int status)
{
    client_t *cl = d->data;
    assert_int_equal(status, 0);
    cl->conn.data = cl;
    cl->conn.on_read = client_read;
    cl->conn.on_error = client_error;
    assert_int_equal(ch_net_dial_conn(d, &cl->conn, 16, 0, client_dial_closed), 0);
    cl->moved = 1;
    assert_int_equal(ch_net_conn_read_start(&cl->conn), 0);
    assert_int_equal(ch_net_conn_send(&cl->conn, "hello", 5), 0);
}

static void run_client(uv_loop_t *loop, client_t *cl, int port, uint64_t in_ms)
{
    memset(cl, 0, sizeof(*cl));
    cl->dial.data = cl;
    cl->t0 = uv_now(loop);
    ch_net_dial_start(&cl->dial, loop, "127.0.0.1", (uint16_t)port, cl->t0 + in_ms,
                      client_connected);
    while (cl->conn_closed == 0 || cl->dial_closed == 0) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static void close_peer(uv_loop_t *loop, loopback_peer_t *pe)
{
    loopback_close(pe);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void test_a_connected_dial_moves_into_a_conn_with_its_deadline(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    loopback_peer_t pe;
    int port = loopback_listen(&loop, &pe, PEER_ECHO, peer_read);
    client_t cl;
    run_client(&loop, &cl, port, 300);
    assert_true(cl.moved);
    assert_int_equal(cl.dial_closed, 1);
    assert_int_equal(cl.conn_closed, 1);
    /* The echo came back through the conn; then the peer stalled: the rest of the dial's
     * deadline, not a fresh one, cut it. */
    assert_int_equal(cl.got_len, 5);
    assert_int_equal(cl.error, UV_ETIMEDOUT);
    assert_true(cl.t_error - cl.t0 >= 250 && cl.t_error - cl.t0 < 2000);
    close_peer(&loop, &pe);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_peer_that_floods_a_conn_is_cut_by_its_buffer_cap(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    loopback_peer_t pe;
    int port = loopback_listen(&loop, &pe, PEER_FLOOD, peer_read);
    client_t cl;
    run_client(&loop, &cl, port, 10000);
    assert_int_equal(cl.error, UV_ENOBUFS);
    assert_true(cl.t_error - cl.t0 < 5000); /* not the deadline */
    close_peer(&loop, &pe);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_dial_connects_and_its_deadline_comes_after),
        cmocka_unit_test(test_a_name_without_address_fails_and_a_lookup_can_be_closed),
        cmocka_unit_test(test_a_connected_dial_moves_into_a_conn_with_its_deadline),
        cmocka_unit_test(test_a_peer_that_floods_a_conn_is_cut_by_its_buffer_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
