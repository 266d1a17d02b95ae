/*
 * Unit tests of the camera probe (probe.c over net's client and connection) on a real loop
 * and 127.0.0.1, against a camera on the same loop: one that answers OPTIONS and DESCRIBE (the
 * probe's outcome and codec), one that stalls after the connect (cut by the probe's deadline),
 * one that answers with an endless line (cut by the RTSP session's head limit) and one with an
 * endless body (cut by the connection's read buffer), both long before the deadline. No hostile
 * camera crashes the probe or holds it past its deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loopback.h"
#include "health/health_internal.h"

enum { CAM_GOOD = 0, CAM_STALL = 1, CAM_ENDLESS = 2, CAM_HUGE = 3 };

/* Answers each whole request of a good camera: OPTIONS, then DESCRIBE with an H.264 SDP. */
static void cam_answer(loopback_peer_t *cam, uv_stream_t *s)
{
    char *end;
    while ((end = strstr(cam->in, "\r\n\r\n")) != NULL) {
        const char *cs = strstr(cam->in, "CSeq:");
        long cseq = cs != NULL && cs < end ? strtol(cs + 5, NULL, 10) : 0;
        static const char sdp[] = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n"
                                  "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        static char out[1024];
        int n = cam->answers++ == 0
                    ? snprintf(out, sizeof(out),
                               "RTSP/1.0 200 OK\r\nCSeq: %ld\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n",
                               cseq)
                    : snprintf(out, sizeof(out),
                               "RTSP/1.0 200 OK\r\nCSeq: %ld\r\nContent-Type: application/sdp\r\n"
                               "Content-Length: %zu\r\n\r\n%s",
                               cseq, sizeof(sdp) - 1, sdp);
        uv_buf_t b = uv_buf_init(out, (unsigned)n);
        assert_int_equal(uv_try_write(s, &b, 1), n);
        size_t used = (size_t)(end + 4 - cam->in);
        memmove(cam->in, cam->in + used, cam->in_len - used + 1);
        cam->in_len -= used;
    }
}

static void cam_read(loopback_peer_t *cam, uv_stream_t *s)
{
    if (cam->kind == CAM_GOOD) {
        cam_answer(cam, s);
    } else if (cam->kind != CAM_STALL && cam->answers++ == 0) {
        /* An answer whose header line never ends, or whose body is larger than a probe reads. */
        loopback_send_endless(cam, s,
                              cam->kind == CAM_ENDLESS
                                  ? "RTSP/1.0 200 OK\r\nX-Endless: "
                                  : "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 65536\r\n\r\n");
    } /* CAM_STALL: reads and says nothing */
}

typedef struct result {
    int calls;
    ch_health_outcome_t outcome;
    char codec[16], reason[160];
    uint64_t ms;
} result_t;

static void on_result(void *ud, int64_t camera_id, const ch_health_probe_result_t *r)
{
    result_t *res = ud;
    assert_int_equal(camera_id, 7);
    res->calls++;
    res->outcome = r->outcome;
    snprintf(res->codec, sizeof(res->codec), "%s", r->codec != NULL ? r->codec : "");
    snprintf(res->reason, sizeof(res->reason), "%s", r->reason);
    res->ms = (uint64_t)(r->latency_s * 1000);
}

/* Probes a camera of kind at scheme://127.0.0.1 (TLS with the client context tls for rtsps)
 * with a deadline of timeout_ms; runs the loop until the probe freed itself and the camera is
 * closed. */
static void probe_with(const char *scheme, ch_net_tls_t *tls, int kind, uint64_t timeout_ms,
                       result_t *res)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    loopback_peer_t cam;
    int port = loopback_listen(&loop, &cam, kind, cam_read);
    char url[64];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d/stream1", scheme, port);
    memset(res, 0, sizeof(*res));
    ch_health__probe_t *list = NULL;
    ch_health__probe_start(&loop, &list, 7, url, NULL, NULL, NULL, tls, 0, timeout_ms, on_result,
                           res);
    while (res->calls == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_null(list);
    loopback_close(&cam);
    uv_run(&loop, UV_RUN_DEFAULT); /* the probe's handles close, and it frees itself */
    assert_int_equal(res->calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void probe(int kind, uint64_t timeout_ms, result_t *res)
{
    probe_with("rtsp", NULL, kind, timeout_ms, res);
}

static void test_a_camera_that_answers_is_ok_with_its_codec(void **state)
{
    (void)state;
    result_t res;
    probe(CAM_GOOD, 5000, &res);
    assert_int_equal(res.outcome, CH_HEALTH_PROBE_OK);
    assert_string_equal(res.codec, "H264");
    assert_string_equal(res.reason, "ok");
}

static void test_a_camera_that_stalls_is_cut_by_the_deadline(void **state)
{
    (void)state;
    result_t res;
    probe(CAM_STALL, 1000, &res);
    assert_int_equal(res.outcome, CH_HEALTH_PROBE_FAILED);
    assert_string_equal(res.reason, "no answer within 1 s (OPTIONS)");
    assert_true(res.ms >= 900 && res.ms < 4000);
}

static void test_a_camera_that_sends_an_endless_line_is_cut_by_the_head_limit(void **state)
{
    (void)state;
    result_t res;
    probe(CAM_ENDLESS, 20000, &res);
    assert_int_equal(res.outcome, CH_HEALTH_PROBE_FAILED);
    assert_string_equal(res.reason, "the camera's answer head is too long");
    assert_true(res.ms < 10000); /* not the deadline */
}

static void test_a_camera_that_sends_an_endless_body_is_cut_by_the_read_buffer(void **state)
{
    (void)state;
    result_t res;
    probe(CAM_HUGE, 20000, &res);
    assert_int_equal(res.outcome, CH_HEALTH_PROBE_FAILED);
    assert_string_equal(res.reason, "the camera's answer is too long");
    assert_true(res.ms < 10000);
}

/* rtsps:// speaks TLS first: the ClientHello goes out before any request, and a camera that
 * never answers it is cut by the deadline, the reason naming the handshake (not OPTIONS). */
static void test_an_rtsps_probe_speaks_tls_first(void **state)
{
    (void)state;
    ch_net_tls_config_t cc = {0};
    ch_net_tls_t *tls = NULL;
    char err[256];
    assert_int_equal(ch_net_tls_client_new(&cc, &tls, err, sizeof(err)), 0);
    result_t res;
    probe_with("rtsps", tls, CAM_STALL, 1000, &res);
    assert_int_equal(res.outcome, CH_HEALTH_PROBE_FAILED);
    assert_string_equal(res.reason, "no answer within 1 s (TLS handshake)");
    ch_net_tls_unref(tls); /* the probe held its own reference */
}

static void test_an_rtsps_probe_without_a_tls_client_fails_at_once(void **state)
{
    (void)state;
    result_t res;
    probe_with("rtsps", NULL, CAM_GOOD, 5000, &res);
    assert_int_equal(res.outcome, CH_HEALTH_PROBE_FAILED);
    assert_string_equal(res.reason, "rtsps:// needs the hub's TLS client, which is not set up");
    assert_true(res.ms < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_camera_that_answers_is_ok_with_its_codec),
        cmocka_unit_test(test_a_camera_that_stalls_is_cut_by_the_deadline),
        cmocka_unit_test(test_a_camera_that_sends_an_endless_line_is_cut_by_the_head_limit),
        cmocka_unit_test(test_a_camera_that_sends_an_endless_body_is_cut_by_the_read_buffer),
        cmocka_unit_test(test_an_rtsps_probe_speaks_tls_first),
        cmocka_unit_test(test_an_rtsps_probe_without_a_tls_client_fails_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
