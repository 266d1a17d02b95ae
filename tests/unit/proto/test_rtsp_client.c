/*
 * Unit tests of proto's RTSP client session (rtsp_client.c) against canned camera answers:
 * the whole exchange of a pull (OPTIONS, DESCRIBE, SETUP, PLAY, keep-alive, TEARDOWN), a
 * Digest and a Basic challenge, refused and missing credentials, a stale nonce, redirects
 * and a redirect loop, a UDP offer refused with 461, malformed and huge answers. Answers are
 * fed as exactly sized heap copies, so that AddressSanitizer catches any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

static ch_proto_rtsp_client_t c;

/* Feeds one whole answer; returns read()'s result, which must be the answer's size when
 * positive. */
static int feed(const char *answer)
{
    size_t len = strlen(answer);
    char *copy = ch_malloc(len ? len : 1);
    memcpy(copy, answer, len);
    int rc = ch_proto_rtsp_client_read(&c, copy, len);
    ch_free(copy);
    if (rc > 0) {
        assert_int_equal(rc, (int)len);
    }
    return rc;
}

/* The request out must begin with method and target and hold each of the lines given. */
static void assert_request(const char *start, const char *line1, const char *line2)
{
    ch_buf_append_char(&c.out, '\0');
    c.out.len--;
    if (strncmp(c.out.data, start, strlen(start)) != 0) {
        fail_msg("request \"%s\" does not start with \"%s\"", c.out.data, start);
    }
    if (line1 != NULL && strstr(c.out.data, line1) == NULL) {
        fail_msg("request \"%s\" lacks \"%s\"", c.out.data, line1);
    }
    if (line2 != NULL && strstr(c.out.data, line2) == NULL) {
        fail_msg("request \"%s\" lacks \"%s\"", c.out.data, line2);
    }
    assert_true(c.out.len >= 4 && memcmp(c.out.data + c.out.len - 4, "\r\n\r\n", 4) == 0);
}

static void begin(const char *url, const char *user, const char *pass, unsigned retries)
{
    ch_proto_rtsp_client_init(&c, "cctvhub-test", retries);
    assert_int_equal(ch_proto_rtsp_client_begin(&c, url, user, pass), 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_IDLE);
    ch_proto_rtsp_client_start(&c);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_OPTIONS);
}

#define OK_OPTIONS                                                                                 \
    "RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, "        \
    "TEARDOWN\r\n\r\n"
#define SDP                                                                                        \
    "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n"                          \
    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n"
#define DESCRIBED                                                                                  \
    "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Base: rtsp://10.0.0.1/s/\r\n"                           \
    "Content-Type: application/sdp\r\nContent-Length: 124\r\n\r\n" SDP

static void test_a_pull_runs_options_describe_setup_play_and_keeps_alive(void **state)
{
    (void)state;
    assert_int_equal(strlen(SDP), 124);
    begin("rtsp://10.0.0.1:8554/s?x=1", NULL, NULL, 1);
    assert_string_equal(c.host, "10.0.0.1");
    assert_int_equal(c.port, 8554);
    assert_request("OPTIONS rtsp://10.0.0.1:8554/s?x=1 RTSP/1.0\r\nCSeq: 1\r\n",
                   "User-Agent: cctvhub-test\r\n", NULL);
    assert_true(feed(OK_OPTIONS) > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_DESCRIBE);
    assert_true(c.keepalive_get_parameter);
    assert_request("DESCRIBE rtsp://10.0.0.1:8554/s?x=1 RTSP/1.0\r\nCSeq: 2\r\n",
                   "Accept: application/sdp\r\n", NULL);
    assert_true(feed(DESCRIBED) > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_DESCRIBED);
    assert_int_equal(c.sdp.len, strlen(SDP));
    assert_string_equal(c.base, "rtsp://10.0.0.1/s/");
    ch_proto_sdp_t sdp;
    assert_int_equal(ch_proto_sdp_parse(c.sdp.data, c.sdp.len, &sdp), 0);
    ch_proto_rtsp_client_setup(&c, sdp.control, sdp.media[0].control, 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_SETUP);
    assert_request("SETUP rtsp://10.0.0.1/s/trackID=1 RTSP/1.0\r\nCSeq: 3\r\n",
                   "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n", NULL);
    assert_true(feed("RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: ab12;timeout=30\r\n"
                     "Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_PLAY);
    assert_string_equal(c.session, "ab12");
    assert_int_equal(c.session_timeout, 30);
    assert_true(c.tcp);
    assert_int_equal(c.rtp_ch, 2);
    assert_request("PLAY rtsp://10.0.0.1/s/ RTSP/1.0\r\nCSeq: 4\r\n", "Session: ab12\r\n",
                   "Range: npt=0.000-\r\n");
    assert_true(feed("RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: ab12\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_PLAYING);
    ch_proto_rtsp_client_keepalive(&c);
    assert_request("GET_PARAMETER rtsp://10.0.0.1/s/ RTSP/1.0\r\nCSeq: 5\r\n", "Session: ab12",
                   NULL);
    /* Keep-alives' answers, even refusals, change nothing. */
    assert_true(feed("RTSP/1.0 454 Session Not Found\r\nCSeq: 5\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_PLAYING);
    ch_proto_rtsp_client_teardown(&c);
    assert_request("TEARDOWN rtsp://10.0.0.1/s/ RTSP/1.0\r\nCSeq: 6\r\n", "Session: ab12", NULL);
    ch_proto_rtsp_client_fini(&c);
}

static void test_a_digest_challenge_is_answered_and_kept_for_later_requests(void **state)
{
    (void)state;
    begin("rtsp://admin:p%40ss@10.0.0.1/s", "other", "other", 0);
    assert_string_equal(c.user, "admin");
    assert_string_equal(c.pass, "p@ss");
    assert_request("OPTIONS rtsp://10.0.0.1/s RTSP/1.0", NULL, NULL);
    assert_null(strstr(c.out.data, "admin"));
    assert_true(feed("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic "
                     "realm=\"c\"\r\nWWW-Authenticate: Digest realm=\"c\", nonce=\"n1\"\r\n\r\n") >
                0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_OPTIONS);
    assert_request("OPTIONS rtsp://10.0.0.1/s RTSP/1.0\r\nCSeq: 2\r\n",
                   "Authorization: Digest username=\"admin\", realm=\"c\", nonce=\"n1\"", NULL);
    assert_true(feed("RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n") > 0);
    assert_request("DESCRIBE rtsp://10.0.0.1/s RTSP/1.0\r\nCSeq: 3\r\n", "Authorization: Digest",
                   "uri=\"rtsp://10.0.0.1/s\"");
    /* A stale nonce is answered again; a plain second 401 means the password is wrong. */
    assert_true(feed("RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\nWWW-Authenticate: Digest "
                     "realm=\"c\", nonce=\"n2\", stale=true\r\n\r\n") > 0);
    assert_request("DESCRIBE rtsp://10.0.0.1/s RTSP/1.0", "nonce=\"n2\"", NULL);
    assert_true(feed("RTSP/1.0 401 Unauthorized\r\nCSeq: 4\r\nWWW-Authenticate: Digest "
                     "realm=\"c\", nonce=\"n3\"\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_true(c.auth_failed);
    assert_non_null(strstr(c.error, "refused the credentials"));
    assert_int_equal(c.out.len, 0);
    ch_proto_rtsp_client_fini(&c);
}

static void test_a_pull_answers_one_refusal_again_and_the_nonce_staleness_is_bounded(void **state)
{
    (void)state;
    const char *basic =
        "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic realm=\"c\"\r\n\r\n";
    begin("rtsp://10.0.0.1/s", "u", "p", 1);
    assert_true(feed(basic) > 0);
    assert_request("OPTIONS", "Authorization: Basic dTpw\r\n", NULL);
    assert_true(feed(basic) > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_OPTIONS);
    assert_true(feed(basic) > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "refused the credentials"));
    ch_proto_rtsp_client_fini(&c);

    const char *stale = "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest "
                        "realm=\"c\", nonce=\"n\", stale=TRUE\r\n\r\n";
    begin("rtsp://10.0.0.1/s", "u", "p", 0);
    for (int i = 0; i < 3; i++) {
        assert_true(feed(stale) > 0);
        assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_OPTIONS);
    }
    assert_true(feed(stale) > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "stale"));
    ch_proto_rtsp_client_fini(&c);
}

static void test_a_challenge_without_credentials_or_answerable_scheme_fails(void **state)
{
    (void)state;
    begin("rtsp://10.0.0.1/s", NULL, NULL, 0);
    assert_true(feed("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic "
                     "realm=\"c\"\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_true(c.auth_failed);
    assert_non_null(strstr(c.error, "none are configured"));
    ch_proto_rtsp_client_fini(&c);

    begin("rtsp://10.0.0.1/s", "u", "p", 0);
    assert_true(feed("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Bearer "
                     "realm=\"c\"\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "401 without a challenge"));
    ch_proto_rtsp_client_fini(&c);

    /* A user name Basic cannot carry. */
    begin("rtsp://a%3Ab:p@10.0.0.1/s", NULL, NULL, 0);
    assert_true(feed("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Basic "
                     "realm=\"c\"\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_true(c.auth_failed);
    assert_non_null(strstr(c.error, "cannot be sent"));
    ch_proto_rtsp_client_fini(&c);
}

static void test_redirects_are_followed_three_times_and_a_loop_fails(void **state)
{
    (void)state;
    begin("rtsp://10.0.0.1/a", "u", "p", 0);
    /* OPTIONS' answer never ends the session: DESCRIBE decides. */
    assert_true(feed("RTSP/1.0 302 Found\r\nCSeq: 1\r\nLocation: rtsp://10.0.0.2/b\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_DESCRIBE);
    for (int i = 0; i < 3; i++) {
        char loc[128];
        snprintf(loc, sizeof(loc),
                 "RTSP/1.0 301 Moved\r\nCSeq: 2\r\nLocation: rtsp://x:y@10.0.0.%d:99/b\r\n\r\n",
                 i + 2);
        assert_true(feed(loc) > 0);
        assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_REDIRECTED);
        assert_int_equal(c.out.len, 0);
        assert_int_equal(ch_proto_rtsp_client_begin(&c, c.redirect, "u", "p"), 0);
        assert_string_equal(c.user, "x");
        assert_int_equal(c.port, 99);
        assert_int_equal(c.cseq, 0);
        ch_proto_rtsp_client_start(&c);
        assert_true(feed(OK_OPTIONS) > 0);
        assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_DESCRIBE);
    }
    assert_true(feed("RTSP/1.0 302 Found\r\nCSeq: 2\r\nLocation: rtsp://10.0.0.9/b\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "more than 3 redirects"));
    ch_proto_rtsp_client_fini(&c);

    static const char *const bad[] = {
        "RTSP/1.0 302 Found\r\nCSeq: 2\r\n\r\n",
        "RTSP/1.0 302 Found\r\nCSeq: 2\r\nLocation: http://10.0.0.2/b\r\n\r\n",
        "RTSP/1.0 302 Found\r\nCSeq: 2\r\nLocation: rtsp://\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        begin("rtsp://10.0.0.1/a", NULL, NULL, 0);
        assert_true(feed(OK_OPTIONS) > 0);
        assert_true(feed(bad[i]) > 0);
        assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
        assert_non_null(strstr(c.error, "DESCRIBE answered 302 without an rtsp:// Location"));
        ch_proto_rtsp_client_fini(&c);
    }
}

static void test_a_udp_offer_falls_back_to_tcp_on_461(void **state)
{
    (void)state;
    begin("rtsp://10.0.0.1:8554/s", NULL, NULL, 1);
    assert_true(feed(OK_OPTIONS) > 0);
    assert_true(feed(DESCRIBED) > 0);
    ch_proto_rtsp_client_setup(&c, (ch_slice_t){"*", 1}, (ch_slice_t){"rtsp://10.0.0.3/t", 17},
                               5000);
    assert_request("SETUP rtsp://10.0.0.3/t RTSP/1.0",
                   "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n", NULL);
    assert_true(feed("RTSP/1.0 461 Unsupported Transport\r\nCSeq: 3\r\n\r\n") > 0);
    assert_true(c.udp_refused);
    assert_int_equal(c.udp_port, 0);
    assert_request("SETUP rtsp://10.0.0.3/t RTSP/1.0", "interleaved=0-1", NULL);
    /* Without the UDP offer, a UDP answer is a refusal of TCP. */
    assert_true(feed("RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: s\r\n"
                     "Transport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "refused TCP"));
    ch_proto_rtsp_client_fini(&c);

    begin("rtsp://10.0.0.1:8554/s", NULL, NULL, 1);
    assert_true(feed(OK_OPTIONS) > 0);
    assert_true(feed(DESCRIBED) > 0);
    ch_proto_rtsp_client_setup(&c, (ch_slice_t){"*", 1}, (ch_slice_t){"t", 1}, 0);
    assert_true(feed("RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "without a valid Session"));
    ch_proto_rtsp_client_fini(&c);
}

static void test_refusals_malformed_and_huge_answers_fail_the_session(void **state)
{
    (void)state;
    begin("rtsp://10.0.0.1/s", NULL, NULL, 0);
    assert_true(feed("RTSP/1.0 404 Not Found\r\nCSeq: 1\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_DESCRIBE);
    assert_true(feed("RTSP/1.0 503 Service \"Unavailable\"\r\nCSeq: 2\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_false(c.auth_failed);
    assert_string_equal(c.error, "DESCRIBE answered 503 Service ?Unavailable?");
    /* After the end, answers are consumed and ignored. */
    assert_true(feed("RTSP/1.0 200 OK\r\nCSeq: 3\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    ch_proto_rtsp_client_fini(&c);

    begin("rtsp://10.0.0.1/s", NULL, NULL, 0);
    assert_int_equal(feed("RTSP/1.0 200 OK\r\nCSeq: 1"), CH_EAGAIN);
    assert_int_equal(feed("RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 10\r\n\r\nabc"),
                     CH_EAGAIN);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_OPTIONS);
    assert_int_equal(feed("HTTP/1.1 200\r\nBad Header: x\r\n\r\n"), CH_EPARSE);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "malformed"));
    ch_proto_rtsp_client_fini(&c);

    begin("rtsp://10.0.0.1/s", NULL, NULL, 0);
    assert_int_equal(feed("RTSP/1.0 200 OK\r\nContent-Length: 99999999\r\n\r\n"), CH_EPARSE);
    assert_non_null(strstr(c.error, "bad body"));
    ch_proto_rtsp_client_fini(&c);

    /* A head that never ends: refused once it passes the limit. */
    ch_buf_t huge;
    ch_buf_init(&huge);
    ch_buf_append_str(&huge, "RTSP/1.0 200 OK\r\n");
    ch_buf_append_str(&huge, "X-Padding: ");
    while (huge.len <= CH_PROTO_RTSP_CLIENT_MAX_HEAD) {
        ch_buf_append_str(&huge,
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }
    ch_buf_append_char(&huge, '\0');
    begin("rtsp://10.0.0.1/s", NULL, NULL, 0);
    assert_int_equal(feed(huge.data), CH_ETOOBIG);
    assert_non_null(strstr(c.error, "head is too long"));
    ch_proto_rtsp_client_fini(&c);
    ch_buf_fini(&huge);
}

static void test_rtsps_speaks_tls_and_a_redirect_never_leaves_it(void **state)
{
    (void)state;
    begin("rtsps://cam.example:8322/a", NULL, NULL, 0);
    assert_int_equal(c.tls, 1);
    assert_int_equal(c.port, 8322);
    assert_string_equal(c.wire, "rtsps://cam.example:8322/a");
    ch_proto_rtsp_client_fini(&c);
    begin("RTSPS://cam.example/a", NULL, NULL, 0);
    assert_int_equal(c.tls, 1);
    assert_int_equal(c.port, 322);
    ch_proto_rtsp_client_fini(&c);

    /* rtsp:// to rtsps:// is followed (into TLS) ... */
    begin("rtsp://10.0.0.1/a", NULL, NULL, 0);
    assert_int_equal(c.tls, 0);
    assert_true(feed(OK_OPTIONS) > 0);
    assert_true(feed("RTSP/1.0 302 Found\r\nCSeq: 2\r\nLocation: rtsps://10.0.0.2/b\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_REDIRECTED);
    assert_int_equal(ch_proto_rtsp_client_begin(&c, c.redirect, NULL, NULL), 0);
    assert_int_equal(c.tls, 1);
    assert_int_equal(c.port, 322);
    /* ... but never back out of it. */
    ch_proto_rtsp_client_start(&c);
    assert_true(feed(OK_OPTIONS) > 0);
    assert_true(feed("RTSP/1.0 302 Found\r\nCSeq: 2\r\nLocation: rtsp://10.0.0.3/b\r\n\r\n") > 0);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_REDIRECTED);
    assert_int_equal(ch_proto_rtsp_client_begin(&c, c.redirect, NULL, NULL), CH_EPARSE);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_non_null(strstr(c.error, "would leave TLS"));
    ch_proto_rtsp_client_fini(&c);
}

static void test_bad_urls_fail_at_begin(void **state)
{
    (void)state;
    ch_proto_rtsp_client_init(&c, "t", 0);
    assert_int_equal(ch_proto_rtsp_client_begin(&c, "http://x/", NULL, NULL), CH_EPARSE);
    assert_int_equal(c.state, CH_PROTO_RTSP_CLIENT_FAILED);
    assert_string_equal(c.error, "the stream URL is not a valid rtsp:// URL");
    assert_int_equal(ch_proto_rtsp_client_begin(&c, NULL, NULL, NULL), CH_EPARSE);
    assert_int_equal(ch_proto_rtsp_client_begin(&c, "rtsps://x/", NULL, NULL), 0);
    assert_int_equal(ch_proto_rtsp_client_begin(&c, "rtsp://a:%00@x/", NULL, NULL), CH_EPARSE);
    assert_non_null(strstr(c.error, "credentials are malformed"));
    assert_int_equal(ch_proto_rtsp_client_begin(&c, "rtsp://[::1]:10/s", NULL, NULL), 0);
    assert_string_equal(c.host, "::1");
    assert_string_equal(c.wire, "rtsp://[::1]:10/s");
    ch_proto_rtsp_client_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_pull_runs_options_describe_setup_play_and_keeps_alive),
        cmocka_unit_test(test_a_digest_challenge_is_answered_and_kept_for_later_requests),
        cmocka_unit_test(test_a_pull_answers_one_refusal_again_and_the_nonce_staleness_is_bounded),
        cmocka_unit_test(test_a_challenge_without_credentials_or_answerable_scheme_fails),
        cmocka_unit_test(test_redirects_are_followed_three_times_and_a_loop_fails),
        cmocka_unit_test(test_rtsps_speaks_tls_and_a_redirect_never_leaves_it),
        cmocka_unit_test(test_a_udp_offer_falls_back_to_tcp_on_461),
        cmocka_unit_test(test_refusals_malformed_and_huge_answers_fail_the_session),
        cmocka_unit_test(test_bad_urls_fail_at_begin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
