/*
 * The alerts' live feed on a real libuv loop and real loopback TCP connections: the handshake
 * answered (and a bad one refused with 400), each alert one text frame, a ping answered, and a
 * client that stops reading dropped once its queue passes the budget while another client
 * keeps getting every alert.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "alert/alert.h"

typedef struct fixture {
    char dir[256];
    ch_store_t *st;
    ch_alert_engine_t *eng;
    uv_loop_t loop;
    ch_alert_live_t *live;
    int lfd; /* a listening socket on 127.0.0.1 */
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ch_alert_ws_XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    char url[320];
    snprintf(url, sizeof(url), "sqlite:%s/hub.db", fx->dir);
    ch_alert_config_t cfg = {.offline_after_ms = 1000, .provider_down_count = 0};
    if (ch_store_open(url, &fx->st, NULL) != 0 || ch_alert_new(fx->st, &cfg, &fx->eng) != 0) {
        return -1;
    }
    uv_loop_init(&fx->loop);
    /* A small budget, so that a client that stops reading passes it quickly. */
    if (ch_alert_live_new(&fx->loop, fx->eng, 60000, 16384, &fx->live) != 0) {
        return -1;
    }
    fx->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fx->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fx->lfd, 8) != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_alert_live_close(fx->live);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    ch_alert_free(fx->eng);
    ch_store_close(fx->st);
    close(fx->lfd);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    ch_free(fx);
    return 0;
}

/* Connects a client (its receive buffer small when small is set), and hands the server side
 * to the live feed with request as the bytes the HTTP server read. Returns the client fd. */
static int connect_client(fixture_t *fx, const char *request, int small)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fx->lfd, (struct sockaddr *)&a, &al), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (small) {
        int n = 4096;
        assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &n, sizeof(n)), 0);
    }
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int s = accept(fx->lfd, NULL, NULL);
    assert_true(s >= 0);
    if (small) {
        int n = 4096;
        assert_int_equal(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n)), 0);
    }
    ch_alert_live_take(fx->live, s, request, strlen(request), NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    return c;
}

static const char HANDSHAKE[] =
    "GET /api/v1/alerts/live HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:8080\r\n\r\n";

/* Reads exactly n bytes from fd (blocking), running the loop meanwhile. */
static void read_exact(fixture_t *fx, int fd, char *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        ssize_t r = recv(fd, out + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
        } else if (r == 0) {
            fail_msg("closed after %zu of %zu bytes", got, n);
        } else {
            usleep(1000);
        }
    }
}

static void read_head(fixture_t *fx, int fd, char *out, size_t cap)
{
    size_t n = 0;
    while (n < 4 || memcmp(out + n - 4, "\r\n\r\n", 4) != 0) {
        assert_true(n + 1 < cap);
        read_exact(fx, fd, out + n, 1);
        n++;
    }
    out[n] = '\0';
}

static void publish(fixture_t *fx, int64_t id)
{
    json_t *a = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "kind", "bell-pressed",
                          "message", "emergency bell pressed: a test of the live feed");
    ch_alert_publish(fx->eng, a);
    json_decref(a);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void test_handshake_and_one_text_frame_per_alert(void **state)
{
    fixture_t *fx = *state;
    int c = connect_client(fx, HANDSHAKE, 0);
    char head[512];
    read_head(fx, c, head, sizeof(head));
    assert_non_null(strstr(head, "HTTP/1.1 101 Switching Protocols\r\n"));
    /* RFC 6455's own example key and accept value. */
    assert_non_null(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert_int_equal(ch_alert_live_clients(fx->live), 1);
    publish(fx, 7);
    char h[2];
    read_exact(fx, c, h, 2);
    assert_int_equal((uint8_t)h[0], 0x81); /* FIN, text */
    size_t len = (uint8_t)h[1];
    assert_true(len < 126);
    char body[128];
    read_exact(fx, c, body, len);
    body[len] = '\0';
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "id")), 7);
    json_decref(j);
    /* A masked ping "hi" gets a pong "hi". */
    const uint8_t ping[] = {0x89, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    assert_int_equal(send(c, ping, sizeof(ping), 0), (ssize_t)sizeof(ping));
    char pong[4];
    read_exact(fx, c, pong, 4);
    assert_int_equal((uint8_t)pong[0], 0x8a);
    assert_int_equal(pong[1], 2);
    assert_memory_equal(pong + 2, "hi", 2);
    close(c);
}

static void test_a_bad_handshake_or_origin_is_refused(void **state)
{
    fixture_t *fx = *state;
    const char *bad[] = {
        "GET /api/v1/alerts/live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        "GET /api/v1/alerts/live HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Origin: http://evil.example\r\n\r\n",
        "garbage\r\n\r\n",
    };
    const char *want[] = {"HTTP/1.1 400 ", "HTTP/1.1 403 ", "HTTP/1.1 400 "};
    for (size_t i = 0; i < 3; i++) {
        int c = connect_client(fx, bad[i], 0);
        char head[512];
        read_head(fx, c, head, sizeof(head));
        assert_true(strncmp(head, want[i], strlen(want[i])) == 0);
        close(c);
    }
    assert_int_equal(ch_alert_live_clients(fx->live), 0);
}

static void test_a_client_that_stops_reading_is_dropped_and_others_go_on(void **state)
{
    fixture_t *fx = *state;
    int slow = connect_client(fx, HANDSHAKE, 1);
    int fast = connect_client(fx, HANDSHAKE, 0);
    char head[512];
    read_head(fx, fast, head, sizeof(head));
    assert_int_equal(ch_alert_live_clients(fx->live), 2);
    /* The fast one reads everything; the slow one nothing. */
    size_t fast_frames = 0;
    char buf[65536];
    size_t pending = 0;
    for (int64_t id = 1; id <= 3000 && ch_alert_live_clients(fx->live) == 2; id++) {
        publish(fx, id);
        ssize_t r;
        while ((r = recv(fast, buf + pending, sizeof(buf) - pending, MSG_DONTWAIT)) > 0) {
            pending += (size_t)r;
        }
        size_t off = 0;
        while (pending - off >= 2 && pending - off >= 2 + (size_t)(uint8_t)buf[off + 1]) {
            off += 2 + (size_t)(uint8_t)buf[off + 1];
            fast_frames++;
        }
        memmove(buf, buf + off, pending - off);
        pending -= off;
    }
    for (int i = 0; i < 10; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(ch_alert_live_clients(fx->live), 1);
    assert_true(fast_frames > 100);
    /* The slow one's socket is closed: after what was sent, an end of stream. */
    ssize_t r;
    size_t drained = 0;
    for (int i = 0; i < 1000; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        r = recv(slow, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0) {
            break;
        }
        if (r > 0) {
            drained += (size_t)r;
        } else {
            usleep(1000);
        }
    }
    assert_int_equal(r, 0);
    assert_true(drained > 0);
    close(slow);
    close(fast);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_and_one_text_frame_per_alert, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_bad_handshake_or_origin_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_client_that_stops_reading_is_dropped_and_others_go_on, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
