/*
 * The relay gets cameras' sources by message: a held camera's pull asks the control loop
 * (want_source runs there, never on a media thread), waits, and connects to the source it is
 * sent; a changed source sent later makes the running pull connect to the new one. Cameras
 * are plain listening sockets that read the pull's first request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "media/media.h"

typedef struct harness {
    uv_loop_t control;
    uv_timer_t busy; /* the control loop's own work: the relay's handle keeps no loop alive */
    pthread_t control_thread;
    ch_media_relay_t *relay;
    int asked;
    int64_t asked_id;
    int asked_elsewhere; /* want_source ran on another thread than the control loop's */
    ch_media_source_t answer;
} harness_t;

static void on_want_source(void *ud, int64_t camera_id)
{
    harness_t *h = ud;
    if (!pthread_equal(pthread_self(), h->control_thread)) {
        h->asked_elsewhere = 1;
    }
    h->asked++;
    h->asked_id = camera_id;
    ch_media_relay_source(h->relay, camera_id, &h->answer);
}

static void on_busy(uv_timer_t *t)
{
    (void)t;
}

/* A camera: a listening socket on 127.0.0.1; its port in *port. */
static int camera_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* Runs the control loop until the camera on fd is connected to, and returns the pull's first
 * request line (up to its end of line) in out. */
static void camera_first_request(harness_t *h, int fd, char *out, size_t cap)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    int ready = 0;
    for (int i = 0; i < 1000 && !ready; i++) {
        uv_run(&h->control, UV_RUN_NOWAIT);
        ready = poll(&pfd, 1, 5) == 1;
    }
    assert_true(ready);
    int c = accept(fd, NULL, NULL);
    assert_true(c >= 0);
    struct pollfd cfd = {c, POLLIN, 0};
    assert_int_equal(poll(&cfd, 1, 5000), 1);
    ssize_t n = read(c, out, cap - 1);
    assert_true(n > 0);
    out[n] = '\0';
    char *eol = strstr(out, "\r\n");
    if (eol != NULL) {
        *eol = '\0';
    }
    close(c);
}

static void test_a_pull_asks_the_control_loop_for_its_source_and_follows_a_change(void **state)
{
    (void)state;
    harness_t h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(uv_loop_init(&h.control), 0);
    h.control_thread = pthread_self();
    uv_timer_init(&h.control, &h.busy);
    uv_timer_start(&h.busy, on_busy, 1000, 1000);
    int port1, port2;
    int cam1 = camera_listen(&port1);
    int cam2 = camera_listen(&port2);
    snprintf(h.answer.url, sizeof(h.answer.url), "rtsp://127.0.0.1:%d/first", port1);

    ch_media_relay_config_t cfg = {
        .listen = "127.0.0.1:0",
        .loops = 2,
        .control = &h.control,
        .want_source = on_want_source,
        .ud = &h,
    };
    char err[256];
    assert_int_equal(ch_media_relay_start(&cfg, &h.relay, err, sizeof(err)), 0);
    ch_media_relay_hold(h.relay, 7, 1);

    char line[512];
    camera_first_request(&h, cam1, line, sizeof(line));
    assert_int_equal(h.asked, 1);
    assert_int_equal(h.asked_id, 7);
    assert_false(h.asked_elsewhere);
    char want[128];
    snprintf(want, sizeof(want), "OPTIONS rtsp://127.0.0.1:%d/first RTSP/1.0", port1);
    assert_string_equal(line, want);

    /* The camera's settings change: the control loop sends the new source unasked. */
    ch_media_source_t moved;
    memset(&moved, 0, sizeof(moved));
    snprintf(moved.url, sizeof(moved.url), "rtsp://127.0.0.1:%d/second", port2);
    ch_media_relay_source(h.relay, 7, &moved);
    camera_first_request(&h, cam2, line, sizeof(line));
    snprintf(want, sizeof(want), "OPTIONS rtsp://127.0.0.1:%d/second RTSP/1.0", port2);
    assert_string_equal(line, want);

    ch_media_relay_stop(h.relay);
    uv_close((uv_handle_t *)&h.busy, NULL);
    uv_run(&h.control, UV_RUN_NOWAIT); /* closes the relay's handle on the control loop */
    assert_int_equal(uv_loop_close(&h.control), 0);
    assert_false(h.asked_elsewhere);
    close(cam1);
    close(cam2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_pull_asks_the_control_loop_for_its_source_and_follows_a_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
