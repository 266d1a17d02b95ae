/*
 * Unit tests of net's client connection (client.c) on a real loop and 127.0.0.1: a dial that
 * connects and then passes its deadline, one refused, a name that does not resolve, a name
 * that does, and a close while the lookup is in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_dial_connects_and_its_deadline_comes_after),
        cmocka_unit_test(test_a_name_without_address_fails_and_a_lookup_can_be_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
