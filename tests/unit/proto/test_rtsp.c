/*
 * Unit tests of proto's RTSP pieces: response heads and bodies, header values, interleaved
 * frames, rtsp:// URLs and authentication.
 *
 * Real answers come from tests/data/rtsp/ (captured from GStreamer's RTSP server by
 * capture_gst.py). Parsers are fed exactly sized heap copies, so that AddressSanitizer catches
 * any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

#define MAX_H 16

static ch_proto_header_t headers[MAX_H];
static char *copy;

/* An exactly sized copy of s[0, len), alive until the next call. */
static const char *exact(const char *s, size_t len)
{
    ch_free(copy);
    copy = ch_malloc(len ? len : 1);
    memcpy(copy, s, len);
    return copy;
}

static ch_slice_t sl(const char *s)
{
    return (ch_slice_t){exact(s, strlen(s)), strlen(s)};
}

static void assert_slice(ch_slice_t s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0) {
        fail_msg("slice \"%.*s\" is not \"%s\"", (int)s.len, s.ptr, want);
    }
}

/* Reads tests/data/rtsp/<name> into a heap block of exactly its size. */
static char *read_fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/data/rtsp/%s", CH_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
    }
    fclose(f);
    *len = b.len;
    char *out = ch_malloc(b.len ? b.len : 1);
    memcpy(out, b.data, b.len);
    ch_buf_fini(&b);
    return out;
}

static int parse_resp(const char *s, ch_proto_response_t *resp)
{
    return ch_proto_parse_response(exact(s, strlen(s)), strlen(s), resp, headers, MAX_H);
}

/* ---- response heads ------------------------------------------------------------------- */

static void test_gstreamer_describe_answer_splits_into_head_and_sdp(void **state)
{
    size_t len;
    char *msg = read_fixture("gst_describe.txt", &len);
    ch_proto_response_t resp;
    int head = ch_proto_parse_response(msg, len, &resp, headers, MAX_H);
    assert_true(head > 0);
    assert_int_equal(resp.kind, CH_PROTO_RTSP);
    assert_int_equal(resp.major, 1);
    assert_int_equal(resp.minor, 0);
    assert_int_equal(resp.status, 200);
    assert_slice(resp.reason, "OK");
    uint32_t cseq;
    assert_int_equal(ch_proto_rtsp_cseq(resp.headers, resp.num_headers, &cseq), 0);
    assert_int_equal(cseq, 2);
    ch_slice_t body;
    int total =
        ch_proto_split_body(msg, len, (size_t)head, resp.headers, resp.num_headers, 65536, &body);
    assert_int_equal(total, (int)len);
    assert_true(body.len > 100 && memcmp(body.ptr, "v=0\r\n", 5) == 0);
    ch_slice_t base = ch_proto_rtsp_content_base(resp.headers, resp.num_headers,
                                                 CH_SLICE_LIT("rtsp://127.0.0.1/test"));
    assert_true(base.len > 7 && base.ptr[base.len - 1] == '/');

    /* Every shorter prefix of the body asks for more; every prefix of the head too. */
    for (size_t cut = (size_t)head; cut < len; cut++) {
        assert_int_equal(ch_proto_split_body(msg, cut, (size_t)head, resp.headers, resp.num_headers,
                                             65536, &body),
                         CH_EAGAIN);
    }
    for (size_t cut = 0; cut < (size_t)head; cut++) {
        ch_proto_response_t r2;
        ch_proto_header_t h2[MAX_H];
        assert_int_equal(ch_proto_parse_response(exact(msg, cut), cut, &r2, h2, MAX_H), CH_EAGAIN);
    }
    /* A body limit below Content-Length is refused before the body arrives. */
    assert_int_equal(ch_proto_split_body(msg, (size_t)head, (size_t)head, resp.headers,
                                         resp.num_headers, 100, &body),
                     CH_ETOOBIG);
    ch_free(msg);
}

static void test_gstreamer_options_and_setup_answers_are_read(void **state)
{
    size_t len;
    char *msg = read_fixture("gst_options.txt", &len);
    ch_proto_response_t resp;
    assert_int_equal(ch_proto_parse_response(msg, len, &resp, headers, MAX_H), (int)len);
    const ch_proto_header_t *pub = ch_proto_header_find(resp.headers, resp.num_headers, "public");
    assert_non_null(pub);
    assert_true(ch_proto_rtsp_public_has(pub->value, "GET_PARAMETER"));
    assert_true(ch_proto_rtsp_public_has(pub->value, "OPTIONS"));
    assert_true(ch_proto_rtsp_public_has(pub->value, "TEARDOWN"));
    assert_false(ch_proto_rtsp_public_has(pub->value, "GET"));
    assert_false(ch_proto_rtsp_public_has(pub->value, "get_parameter"));
    ch_slice_t body;
    assert_int_equal(ch_proto_split_body(msg, len, len, resp.headers, resp.num_headers, 0, &body),
                     (int)len);
    assert_int_equal(body.len, 0);
    ch_free(msg);

    msg = read_fixture("gst_setup.txt", &len);
    assert_int_equal(ch_proto_parse_response(msg, len, &resp, headers, MAX_H), (int)len);
    const ch_proto_header_t *tr = ch_proto_header_find(resp.headers, resp.num_headers, "transport");
    assert_non_null(tr);
    ch_slice_t list = tr->value;
    ch_proto_rtsp_transport_t t;
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), 0);
    assert_true(t.tcp);
    assert_false(t.multicast);
    assert_true(t.has_interleaved);
    assert_int_equal(t.interleaved[0], 0);
    assert_int_equal(t.interleaved[1], 1);
    assert_true(t.has_ssrc);
    assert_int_equal(t.ssrc, 0x9157DF48u);
    assert_slice(t.mode, "PLAY");
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), CH_ENOENT);
    const ch_proto_header_t *se = ch_proto_header_find(resp.headers, resp.num_headers, "session");
    assert_non_null(se);
    ch_proto_rtsp_session_t s;
    assert_int_equal(ch_proto_rtsp_parse_session(se->value, &s), 0);
    assert_slice(s.id, "1QnnbU4ocKCJOZl.");
    assert_false(s.has_timeout);
    assert_int_equal(s.timeout, CH_PROTO_RTSP_DEFAULT_TIMEOUT);
    ch_free(msg);
}

static void test_status_line_variants_are_parsed(void **state)
{
    ch_proto_response_t r;
    const char *s = "RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\n"
                    "WWW-Authenticate: Digest realm=\"IP Camera\", nonce=\"abc\"\r\n\r\n";
    assert_int_equal(parse_resp(s, &r), (int)strlen(s));
    assert_int_equal(r.status, 401);
    assert_slice(r.reason, "Unauthorized");
    assert_int_equal(r.num_headers, 2);

    /* Some cameras send no reason phrase, with or without the space. */
    s = "RTSP/1.0 200\r\nCSeq: 1\r\n\r\n";
    assert_int_equal(parse_resp(s, &r), (int)strlen(s));
    assert_int_equal(r.reason.len, 0);
    s = "RTSP/1.0 200 \r\n\r\n";
    assert_int_equal(parse_resp(s, &r), (int)strlen(s));
    assert_int_equal(r.reason.len, 0);

    /* Multi-word reasons, bare LF, a leading empty line (a stray CRLF after a body). */
    s = "\r\nRTSP/1.0 454 Session Not Found\nCSeq: 9\n\n";
    assert_int_equal(parse_resp(s, &r), (int)strlen(s));
    assert_int_equal(r.status, 454);
    assert_slice(r.reason, "Session Not Found");

    s = "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n";
    assert_int_equal(parse_resp(s, &r), (int)strlen(s));
    assert_int_equal(r.kind, CH_PROTO_HTTP);
    assert_int_equal(r.minor, 1);
}

static void test_malformed_status_lines_are_refused(void **state)
{
    static const char *const bad[] = {
        "RTSP/1.0 20 OK\r\n\r\n",
        "RTSP/1.0 2000 OK\r\n\r\n",
        "RTSP/1.0 099 OK\r\n\r\n",
        "RTSP/1.0 600 OK\r\n\r\n",
        "RTSP/1.0  200 OK\r\n\r\n",
        "RTSP/1.0\t200 OK\r\n\r\n",
        "RTSP/10 200 OK\r\n\r\n",
        "rtsp/1.0 200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "RTSP/1.0 200 OK\rX\r\n\r\n",
        "RTSP/1.0 2x0 OK\r\n\r\n",
        "RTSP/1.0 200OK\r\n\r\n",
        "RTSP/1.0 200 O\x01K\r\n\r\n",
        "RTSP/1.0 200 OK\r\n X: y\r\n\r\n",
        "RTSP/1.0 200 OK\r\nCSeq : 1\r\n\r\n",
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        ch_proto_response_t r;
        int rc = parse_resp(bad[k], &r);
        if (rc != CH_EPARSE) {
            fail_msg("case %zu: rc %d", k, rc);
        }
    }
    /* A NUL in the reason is refused too. */
    ch_proto_response_t r;
    const char nul[] = "RTSP/1.0 200 O\0K\r\n\r\n";
    assert_int_equal(
        ch_proto_parse_response(exact(nul, sizeof(nul) - 1), sizeof(nul) - 1, &r, headers, MAX_H),
        CH_EPARSE);
    /* Header capacity is enforced as for requests. */
    const char *s = "RTSP/1.0 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    assert_int_equal(ch_proto_parse_response(exact(s, strlen(s)), strlen(s), &r, headers, 1),
                     CH_ETOOBIG);
}

static void test_body_split_follows_content_length(void **state)
{
    const char *s = "RTSP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhelloRTSP/1.0 200 OK\r\n\r\n";
    ch_proto_response_t r;
    int head = parse_resp(s, &r);
    assert_true(head > 0);
    ch_slice_t body;
    assert_int_equal(
        ch_proto_split_body(copy, strlen(s), (size_t)head, r.headers, r.num_headers, 10, &body),
        head + 5);
    assert_slice(body, "hello");
    /* Bad or disagreeing lengths. */
    static const char *const bad[] = {
        "RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n",
        "RTSP/1.0 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "RTSP/1.0 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "RTSP/1.0 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        head = parse_resp(bad[k], &r);
        assert_true(head > 0);
        assert_int_equal(ch_proto_split_body(copy, strlen(bad[k]), (size_t)head, r.headers,
                                             r.num_headers, 1 << 20, &body),
                         CH_EPARSE);
    }
}

/* ---- header values -------------------------------------------------------------------- */

static void test_cseq_must_be_digits_and_agree(void **state)
{
    ch_proto_header_t h[2] = {{CH_SLICE_LIT("CSeq"), CH_SLICE_LIT("4294967295")},
                              {CH_SLICE_LIT("cseq"), CH_SLICE_LIT("4294967295")}};
    uint32_t v;
    assert_int_equal(ch_proto_rtsp_cseq(h, 2, &v), 0);
    assert_int_equal(v, 4294967295u);
    assert_int_equal(ch_proto_rtsp_cseq(h, 0, &v), CH_ENOENT);
    static const char *const bad[] = {"",   "4294967296", " 1",  "1 ",
                                      "-1", "+1",         "0x1", "12345678901"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        h[0].value = (ch_slice_t){bad[k], strlen(bad[k])};
        assert_int_equal(ch_proto_rtsp_cseq(h, 1, &v), CH_EPARSE);
    }
    h[0].value = CH_SLICE_LIT("1");
    h[1].value = CH_SLICE_LIT("2");
    assert_int_equal(ch_proto_rtsp_cseq(h, 2, &v), CH_EPARSE);
}

static void test_session_id_and_timeout_are_read(void **state)
{
    ch_proto_rtsp_session_t s;
    assert_int_equal(ch_proto_rtsp_parse_session(sl("12345678;timeout=30"), &s), 0);
    assert_slice(s.id, "12345678");
    assert_true(s.has_timeout);
    assert_int_equal(s.timeout, 30);
    /* Spaces around ';' and '=' (Dahua), other parameters, upper case. */
    assert_int_equal(ch_proto_rtsp_parse_session(sl("A1b2$-_.+ ; foo=bar; TIMEOUT = 65"), &s), 0);
    assert_slice(s.id, "A1b2$-_.+");
    assert_int_equal(s.timeout, 65);
    assert_int_equal(ch_proto_rtsp_parse_session(sl("xyz;"), &s), 0);
    assert_false(s.has_timeout);

    char longid[CH_PROTO_RTSP_MAX_SESSION_ID + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(ch_proto_rtsp_parse_session(sl(longid), &s), CH_EPARSE);
    longid[sizeof(longid) - 2] = '\0';
    assert_int_equal(ch_proto_rtsp_parse_session(sl(longid), &s), 0);

    static const char *const bad[] = {"",
                                      ";timeout=5",
                                      "a b",
                                      "a,b",
                                      "a;timeout=",
                                      "a;timeout=x",
                                      "a;timeout=-1",
                                      "a\"b",
                                      "a;timeout=1234567890",
                                      "a;=5",
                                      "a;timeout=\"5"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        if (ch_proto_rtsp_parse_session(sl(bad[k]), &s) != CH_EPARSE) {
            fail_msg("session \"%s\" accepted", bad[k]);
        }
    }
}

static void test_transport_specs_are_parsed_one_at_a_time(void **state)
{
    ch_proto_rtsp_transport_t t;
    /* A client's offers: SAVP is skipped as unsupported, UDP then TCP follow. */
    ch_slice_t list = sl("RTP/SAVP;unicast;client_port=4588-4589, "
                         "RTP/AVP;unicast;client_port=4588-4589;server_port=6256-6257 ,"
                         "RTP/AVP/TCP;interleaved=2");
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), CH_EUNSUPP);
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), 0);
    assert_false(t.tcp);
    assert_true(t.has_client_port && t.has_server_port);
    assert_int_equal(t.client_port[0], 4588);
    assert_int_equal(t.client_port[1], 4589);
    assert_int_equal(t.server_port[0], 6256);
    assert_int_equal(t.server_port[1], 6257);
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), 0);
    assert_true(t.tcp);
    assert_int_equal(t.interleaved[0], 2);
    assert_int_equal(t.interleaved[1], 3);
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), CH_ENOENT);

    /* Multicast, destination, decimal-looking ssrc too long (ignored), unquoted mode. */
    list = sl("rtp/avp/udp;multicast;destination=232.0.0.1;port=5000-5001;ttl=16;"
              "ssrc=1234567890;mode=play");
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), 0);
    assert_true(t.multicast);
    assert_slice(t.destination, "232.0.0.1");
    assert_false(t.has_ssrc);
    assert_slice(t.mode, "play");

    static const char *const bad[] = {
        "RTP/AVP/TCP;interleaved=256-257",
        "RTP/AVP/TCP;interleaved=1-0",
        "RTP/AVP/TCP;interleaved=255",
        "RTP/AVP;client_port=65536",
        "RTP/AVP;client_port=a-b",
        "RTP/AVP;client_port=",
        "RTP/AVP;mode=\"PLAY",
        "RTP/AVP;mo de=x",
        "RTP",
        "RTP/",
        "RTP/AVP/",
        "/AVP",
        "RTP/AVP;server_port=1-2-3",
        "RTP/AVP;client_port=-5",
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        ch_slice_t l = sl(bad[k]);
        ch_slice_t before = l;
        if (ch_proto_rtsp_parse_transport(&l, &t) != CH_EPARSE) {
            fail_msg("transport \"%s\" accepted", bad[k]);
        }
        assert_ptr_equal(l.ptr, before.ptr);
    }
    list = sl(" , ");
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), CH_ENOENT);
    list = sl("RAW/RAW/UDP;unicast");
    assert_int_equal(ch_proto_rtsp_parse_transport(&list, &t), CH_EUNSUPP);
}

static void test_transport_build_round_trips(void **state)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_proto_rtsp_transport_t t = {0};
    t.tcp = 1;
    t.has_interleaved = 1;
    t.interleaved[0] = 0;
    t.interleaved[1] = 1;
    assert_int_equal(ch_proto_rtsp_build_transport(&t, &b), 0);
    assert_string_equal(b.data, "RTP/AVP/TCP;unicast;interleaved=0-1");

    ch_buf_reset(&b);
    memset(&t, 0, sizeof(t));
    t.has_client_port = 1;
    t.client_port[0] = 50000;
    t.client_port[1] = 50001;
    t.has_server_port = 1;
    t.server_port[0] = 6970;
    t.server_port[1] = 6971;
    t.has_ssrc = 1;
    t.ssrc = 0xAB;
    t.mode = CH_SLICE_LIT("PLAY");
    assert_int_equal(ch_proto_rtsp_build_transport(&t, &b), 0);
    assert_string_equal(
        b.data, "RTP/AVP;unicast;client_port=50000-50001;server_port=6970-6971;ssrc=000000AB;"
                "mode=\"PLAY\"");
    ch_slice_t l = {b.data, b.len};
    ch_proto_rtsp_transport_t back;
    assert_int_equal(ch_proto_rtsp_parse_transport(&l, &back), 0);
    assert_int_equal(back.client_port[1], 50001);
    assert_int_equal(back.server_port[0], 6970);
    assert_int_equal(back.ssrc, 0xAB);
    assert_slice(back.mode, "PLAY");

    t.mode = CH_SLICE_LIT("PL\"AY");
    assert_int_equal(ch_proto_rtsp_build_transport(&t, &b), CH_EINVAL);
    t.mode = CH_SLICE_LIT("PLAY");
    t.client_port[1] = 1;
    assert_int_equal(ch_proto_rtsp_build_transport(&t, &b), CH_EINVAL);
    ch_buf_fini(&b);
}

static void test_content_base_falls_back_to_location_then_request(void **state)
{
    ch_slice_t req = CH_SLICE_LIT("rtsp://cam/live");
    ch_proto_header_t h[2] = {{CH_SLICE_LIT("Content-Location"), CH_SLICE_LIT("rtsp://cam/loc/")},
                              {CH_SLICE_LIT("content-base"), CH_SLICE_LIT("rtsp://cam/base/")}};
    assert_slice(ch_proto_rtsp_content_base(h, 2, req), "rtsp://cam/base/");
    assert_slice(ch_proto_rtsp_content_base(h, 1, req), "rtsp://cam/loc/");
    assert_slice(ch_proto_rtsp_content_base(h, 0, req), "rtsp://cam/live");
    h[1].value = CH_SLICE_LIT("");
    assert_slice(ch_proto_rtsp_content_base(h, 2, req), "rtsp://cam/loc/");
}

static void test_range_npt_forms_are_read(void **state)
{
    ch_proto_rtsp_range_t r;
    assert_int_equal(ch_proto_rtsp_parse_range(sl("npt=now-"), &r), 0);
    assert_true(r.start_now && r.has_start && !r.has_end);
    assert_int_equal(ch_proto_rtsp_parse_range(sl("npt=0.000-"), &r), 0);
    assert_true(r.has_start && !r.start_now && r.start_ms == 0);
    assert_int_equal(ch_proto_rtsp_parse_range(sl("npt=12.3456-20"), &r), 0);
    assert_int_equal(r.start_ms, 12345);
    assert_int_equal(r.end_ms, 20000);
    assert_int_equal(ch_proto_rtsp_parse_range(sl("npt=1:02:03.5-"), &r), 0);
    assert_int_equal(r.start_ms, 3723500);
    assert_int_equal(ch_proto_rtsp_parse_range(sl("npt=-7.;time=19970123T143720Z"), &r), 0);
    assert_true(!r.has_start && r.has_end && r.end_ms == 7000);
    assert_int_equal(ch_proto_rtsp_parse_range(sl("npt = 5 - "), &r), 0);
    assert_int_equal(r.start_ms, 5000);
    assert_int_equal(ch_proto_rtsp_parse_range(sl("clock=19961108T142300Z-"), &r), CH_EUNSUPP);
    assert_int_equal(ch_proto_rtsp_parse_range(sl("smpte=10:07:00-"), &r), CH_EUNSUPP);
    static const char *const bad[] = {
        "npt=",     "npt=-",     "npt=5",   "npt=a-", "npt=1:2-",   "npt=1:60:00-", "npt=1:00:60-",
        "npt=10-5", "npt=5-now", "npt=.5-", "0-",     "npt=1.2.3-", "npt=1:2:3:4-", "n pt=0-"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        if (ch_proto_rtsp_parse_range(sl(bad[k]), &r) != CH_EPARSE) {
            fail_msg("range \"%s\" accepted", bad[k]);
        }
    }
}

static void test_rtp_info_streams_are_read_in_order(void **state)
{
    size_t len;
    char *msg = read_fixture("gst_play_stream.bin", &len);
    ch_proto_response_t resp;
    int head = ch_proto_parse_response(msg, len, &resp, headers, MAX_H);
    assert_true(head > 0);
    const ch_proto_header_t *ri = ch_proto_header_find(resp.headers, resp.num_headers, "rtp-info");
    assert_non_null(ri);
    ch_slice_t list = ri->value;
    ch_proto_rtsp_rtp_info_t info;
    assert_int_equal(ch_proto_rtsp_parse_rtp_info(&list, &info), 0);
    assert_true(info.url.len > 10 && memcmp(info.url.ptr, "rtsp://127.0.0.1:", 17) == 0);
    assert_true(info.has_seq && info.has_rtptime);
    assert_int_equal(ch_proto_rtsp_parse_rtp_info(&list, &info), CH_ENOENT);
    const ch_proto_header_t *range = ch_proto_header_find(resp.headers, resp.num_headers, "range");
    ch_proto_rtsp_range_t r;
    assert_int_equal(ch_proto_rtsp_parse_range(range->value, &r), 0);
    assert_true(r.start_now);
    ch_free(msg);

    list = sl("url=rtsp://cam/s/trackID=1;seq=65535;rtptime=4294967295, "
              "url=trackID=2;rtptime=1;ssrc=1234");
    assert_int_equal(ch_proto_rtsp_parse_rtp_info(&list, &info), 0);
    assert_slice(info.url, "rtsp://cam/s/trackID=1");
    assert_int_equal(info.seq, 65535);
    assert_int_equal(info.rtptime, 4294967295u);
    assert_int_equal(ch_proto_rtsp_parse_rtp_info(&list, &info), 0);
    assert_slice(info.url, "trackID=2");
    assert_false(info.has_seq);
    assert_int_equal(ch_proto_rtsp_parse_rtp_info(&list, &info), CH_ENOENT);
    static const char *const bad[] = {"seq=1;rtptime=2",          "url=;seq=1",  "url=a;seq=65536",
                                      "url=a;rtptime=4294967296", "url=a;seq=x", "url=a;s q=1"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        ch_slice_t l = sl(bad[k]);
        if (ch_proto_rtsp_parse_rtp_info(&l, &info) != CH_EPARSE) {
            fail_msg("rtp-info \"%s\" accepted", bad[k]);
        }
    }
}

/* ---- interleaved frames --------------------------------------------------------------- */

static void test_gstreamer_play_stream_is_walked_frame_by_frame(void **state)
{
    size_t len;
    char *msg = read_fixture("gst_play_stream.bin", &len);
    size_t at = 0;
    ch_proto_interleaved_t f;
    /* The PLAY answer comes first: the reader says "not a frame", the head parser takes it. */
    assert_int_equal(ch_proto_interleaved_read(msg, len, &f), CH_ENOENT);
    ch_proto_response_t resp;
    int head = ch_proto_parse_response(msg, len, &resp, headers, MAX_H);
    assert_true(head > 0);
    at = (size_t)head;
    size_t frames = 0, rtp = 0, rtcp = 0;
    for (;;) {
        int rc = ch_proto_interleaved_read(msg + at, len - at, &f);
        if (rc == CH_EAGAIN) {
            break;
        }
        assert_true(rc > 4);
        assert_int_equal((size_t)rc, 4 + f.payload.len);
        assert_ptr_equal(f.payload.ptr, msg + at + 4);
        assert_true(f.channel <= 1);
        if (f.channel == 0) {
            /* RTP version 2 */
            assert_int_equal((unsigned char)f.payload.ptr[0] >> 6, 2);
            rtp++;
        } else {
            rtcp++;
        }
        frames++;
        at += (size_t)rc;
    }
    assert_true(rtp > 5);
    assert_true(frames == rtp + rtcp);
    assert_true(len - at < 4 + 65535);
    /* The cut-off frame at the end asks for more at every split of its header too. */
    for (size_t cut = at; cut < len; cut++) {
        assert_int_equal(ch_proto_interleaved_read(exact(msg + at, cut - at), cut - at, &f),
                         CH_EAGAIN);
    }
    ch_free(msg);
}

static void test_interleaved_reader_tells_frames_messages_and_garbage_apart(void **state)
{
    ch_proto_interleaved_t f;
    const char zero[] = "$\x05\x00\x00RTSP/1.0";
    assert_int_equal(ch_proto_interleaved_read(exact(zero, sizeof(zero) - 1), sizeof(zero) - 1, &f),
                     4);
    assert_int_equal(f.channel, 5);
    assert_int_equal(f.payload.len, 0);
    const char big[] = "$\xff\x01\x00";
    assert_int_equal(ch_proto_interleaved_read(exact(big, 4), 4, &f), CH_EAGAIN);
    assert_int_equal(ch_proto_interleaved_read(exact("", 0), 0, &f), CH_EAGAIN);
    static const char *const msgs[] = {"RTSP/1.0 200 OK", "GET_PARAMETER ", "\r\n", "\n", "O"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(msgs); k++) {
        assert_int_equal(
            ch_proto_interleaved_read(exact(msgs[k], strlen(msgs[k])), strlen(msgs[k]), &f),
            CH_ENOENT);
    }
    static const char garbage[] = {'\x80', '\0', ' ', '\t', '\x7f', '"', '(', '@'};
    for (size_t k = 0; k < sizeof(garbage); k++) {
        assert_int_equal(ch_proto_interleaved_read(exact(&garbage[k], 1), 1, &f), CH_EPARSE);
    }
    uint8_t hdr[4];
    assert_int_equal(ch_proto_interleaved_header(3, 65535, hdr), 0);
    assert_memory_equal(hdr, "$\x03\xff\xff", 4);
    assert_int_equal(ch_proto_interleaved_header(3, 65536, hdr), CH_ETOOBIG);
}

/* ---- URLs ----------------------------------------------------------------------------- */

static void test_url_parts_are_found(void **state)
{
    ch_proto_url_t u;
    ch_slice_t s =
        sl("rtsp://admin:p%40ss@192.168.1.64:8554/Streaming/Channels/101?transportmode=unicast");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    assert_slice(u.scheme, "rtsp");
    assert_true(u.has_userinfo && u.has_password);
    assert_slice(u.user, "admin");
    assert_slice(u.password, "p%40ss");
    assert_slice(u.host, "192.168.1.64");
    assert_int_equal(u.port, 8554);
    assert_true(u.has_port);
    assert_slice(u.path_query, "/Streaming/Channels/101?transportmode=unicast");
    assert_slice(u.query, "transportmode=unicast");
    char dec[64];
    assert_int_equal(ch_proto_url_decode(u.password, dec, sizeof(dec)), 4);
    assert_string_equal(dec, "p@ss");

    /* Defaults, IPv6, rtsps, an empty port, a raw '@' in the password. */
    s = sl("RTSP://cam.local");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    assert_int_equal(u.port, 554);
    assert_false(u.has_port || u.has_userinfo);
    assert_int_equal(u.path_query.len, 0);
    s = sl("rtsp://[fe80::1:2]:10554/a");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    assert_true(u.host_is_ipv6);
    assert_slice(u.host, "fe80::1:2");
    assert_int_equal(u.port, 10554);
    s = sl("rtsps://[::ffff:10.0.0.1]/x");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    assert_int_equal(u.port, 322);
    s = sl("rtsp://cam:/x");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    assert_int_equal(u.port, 554);
    s = sl("rtsp://admin:p@ss:w@rd@cam/live");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    assert_slice(u.user, "admin");
    assert_slice(u.password, "p@ss:w@rd");
    assert_slice(u.host, "cam");
    s = sl("rtsp://user@cam?x");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    assert_true(u.has_userinfo && !u.has_password);
    assert_slice(u.path_query, "?x");
    assert_slice(u.query, "x");
}

static void test_bad_urls_are_refused(void **state)
{
    static const char *const bad[] = {
        "rtsp:/cam",
        "rtsp//cam",
        "rtsp://",
        "rtsp://:554/x",
        "rtsp://cam:0/",
        "rtsp://cam:65536",
        "rtsp://cam:5a4/",
        "rtsp://ca m/",
        "rtsp://cam/a b",
        "rtsp://cam/#frag",
        "rtsp://cam/%zz",
        "rtsp://cam/%4",
        "rtsp://u:%g0@cam",
        "rtsp://[fe80::1",
        "rtsp://[::1]x/",
        "rtsp://[1]/",
        "rtsp://[fe80::1%25eth0]/",
        "rtsp://cam/\x80",
        "1rtsp://cam",
        "://cam",
        "rtsp://c\"am/",
        "rtsp://cam/\x7f",
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        ch_proto_url_t u;
        ch_slice_t s = sl(bad[k]);
        if (ch_proto_url_parse(s.ptr, s.len, &u) != CH_EPARSE) {
            fail_msg("url \"%s\" accepted", bad[k]);
        }
    }
    ch_proto_url_t u;
    ch_slice_t s = sl("http://cam/");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), CH_EUNSUPP);
    char out[4];
    assert_int_equal(ch_proto_url_decode(CH_SLICE_LIT("a%00b"), out, sizeof(out)), CH_EPARSE);
    assert_int_equal(ch_proto_url_decode(CH_SLICE_LIT("a%2"), out, sizeof(out)), CH_EPARSE);
    assert_int_equal(ch_proto_url_decode(CH_SLICE_LIT("abcd"), out, sizeof(out)), CH_ETOOBIG);
    assert_int_equal(ch_proto_url_decode(CH_SLICE_LIT("abc"), out, sizeof(out)), 3);
    assert_int_equal(ch_proto_url_decode(CH_SLICE_LIT(""), out, 0), CH_ETOOBIG);
}

static void test_url_is_printed_without_credentials(void **state)
{
    ch_proto_url_t u;
    ch_slice_t s = sl("rtsp://admin:secret@[::1]:8554/cameras/7?token=abc.def&x&y=");
    assert_int_equal(ch_proto_url_parse(s.ptr, s.len, &u), 0);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_proto_url_append(&u, CH_PROTO_URL_WIRE, &b);
    assert_string_equal(b.data, "rtsp://[::1]:8554/cameras/7?token=abc.def&x&y=");
    ch_buf_reset(&b);
    ch_proto_url_append(&u, CH_PROTO_URL_LOG, &b);
    assert_string_equal(b.data, "rtsp://[::1]:8554/cameras/7?token=***&x&y=***");
    assert_null(strstr(b.data, "secret"));
    ch_buf_fini(&b);
}

/* ---- authentication ------------------------------------------------------------------- */

static void test_digest_md5_matches_rfc_2617_example(void **state)
{
    /* RFC 2617 section 3.5. */
    ch_proto_auth_challenge_t c;
    assert_int_equal(ch_proto_auth_parse_challenge(
                         sl("Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", "
                            "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
                            "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""),
                         &c),
                     0);
    assert_int_equal(c.scheme, CH_PROTO_AUTH_DIGEST);
    assert_int_equal(c.algorithm, CH_PROTO_DIGEST_MD5);
    assert_true(c.qop_auth && c.has_opaque && !c.stale);
    assert_slice(c.realm, "testrealm@host.com");
    ch_proto_auth_request_t r = {
        CH_SLICE_LIT("Mufasa"),          CH_SLICE_LIT("Circle Of Life"), "GET",
        CH_SLICE_LIT("/dir/index.html"), CH_SLICE_LIT("0a4f113b"),       1};
    char hex[65];
    assert_int_equal(ch_proto_auth_digest_response(&c, &r, hex), 0);
    assert_string_equal(hex, "6629fae49393a05397450978507c4ef1");
    ch_buf_t b;
    ch_buf_init(&b);
    assert_int_equal(ch_proto_auth_authorization(&c, &r, &b), 0);
    assert_string_equal(b.data, "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
                                "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
                                "uri=\"/dir/index.html\", "
                                "response=\"6629fae49393a05397450978507c4ef1\", "
                                "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, "
                                "nc=00000001, cnonce=\"0a4f113b\"");
    ch_buf_fini(&b);
}

static void test_digest_sha256_and_md5_match_rfc_7616_examples(void **state)
{
    /* RFC 7616 section 3.9.1: the same request answered with SHA-256 and with MD5. */
    ch_proto_header_t h[3] = {
        {CH_SLICE_LIT("WWW-Authenticate"), CH_SLICE_LIT("Basic realm=\"http-auth@example.org\"")},
        {CH_SLICE_LIT("WWW-Authenticate"),
         CH_SLICE_LIT("Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", "
                      "algorithm=MD5, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
                      "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"")},
        {CH_SLICE_LIT("WWW-Authenticate"),
         CH_SLICE_LIT("Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", "
                      "algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
                      "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"")},
    };
    ch_proto_auth_request_t r = {CH_SLICE_LIT("Mufasa"),
                                 CH_SLICE_LIT("Circle of Life"),
                                 "GET",
                                 CH_SLICE_LIT("/dir/index.html"),
                                 CH_SLICE_LIT("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"),
                                 1};
    ch_proto_auth_challenge_t c;
    char hex[65];
    assert_int_equal(ch_proto_auth_pick(h, 3, &c), 0);
    assert_int_equal(c.algorithm, CH_PROTO_DIGEST_SHA256);
    /* The whole header value of the chosen challenge, to keep for the requests to come. */
    assert_ptr_equal(c.value.ptr, h[2].value.ptr);
    assert_int_equal(c.value.len, h[2].value.len);
    assert_int_equal(ch_proto_auth_digest_response(&c, &r, hex), 0);
    assert_string_equal(hex, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    ch_buf_t b;
    ch_buf_init(&b);
    assert_int_equal(ch_proto_auth_authorization(&c, &r, &b), 0);
    assert_non_null(strstr(b.data, ", algorithm=SHA-256"));
    assert_non_null(strstr(b.data, "response=\"753927fa0e85d155564e2e272a28d1802ca10daf44"));

    assert_int_equal(ch_proto_auth_pick(h, 2, &c), 0);
    assert_int_equal(c.algorithm, CH_PROTO_DIGEST_MD5);
    assert_int_equal(ch_proto_auth_digest_response(&c, &r, hex), 0);
    assert_string_equal(hex, "8ca523f5e9506fed4657c9700eebdbec");

    /* Basic alone: "Aladdin:open sesame" from RFC 7617. */
    assert_int_equal(ch_proto_auth_pick(h, 1, &c), 0);
    assert_int_equal(c.scheme, CH_PROTO_AUTH_BASIC);
    ch_proto_auth_request_t basic = {CH_SLICE_LIT("Aladdin"),
                                     CH_SLICE_LIT("open sesame"),
                                     "DESCRIBE",
                                     CH_SLICE_LIT("rtsp://cam/"),
                                     {NULL, 0},
                                     0};
    ch_buf_reset(&b);
    assert_int_equal(ch_proto_auth_authorization(&c, &basic, &b), 0);
    assert_string_equal(b.data, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    basic.user = CH_SLICE_LIT("a:b");
    assert_int_equal(ch_proto_auth_authorization(&c, &basic, &b), CH_EINVAL);
    ch_buf_fini(&b);
    assert_int_equal(ch_proto_auth_pick(h, 0, &c), CH_ENOENT);
}

static void test_digest_without_qop_uses_rfc_2069_form(void **state)
{
    /* Many cameras send realm and nonce only: response = H(HA1:nonce:HA2), no nc/cnonce. */
    ch_proto_auth_challenge_t c;
    assert_int_equal(
        ch_proto_auth_parse_challenge(
            sl("Digest realm=\"IP Camera(C1234)\", nonce=\"a1b2c3\", stale=\"FALSE\""), &c),
        0);
    assert_false(c.qop_auth || c.stale || c.has_opaque);
    ch_proto_auth_request_t r = {CH_SLICE_LIT("admin"),
                                 CH_SLICE_LIT("12345"),
                                 "DESCRIBE",
                                 CH_SLICE_LIT("rtsp://192.168.1.64:554/Streaming/Channels/101"),
                                 {NULL, 0},
                                 1};
    ch_buf_t b;
    ch_buf_init(&b);
    assert_int_equal(ch_proto_auth_authorization(&c, &r, &b), 0);
    assert_null(strstr(b.data, "qop"));
    assert_null(strstr(b.data, "algorithm"));
    /* Checked against Python's hashlib: md5(md5("admin:IP Camera(C1234):12345"):a1b2c3:
     * md5("DESCRIBE:rtsp://192.168.1.64:554/Streaming/Channels/101")). */
    char hex[65];
    assert_int_equal(ch_proto_auth_digest_response(&c, &r, hex), 0);
    assert_non_null(strstr(b.data, hex));
    assert_string_equal(hex, "e9573504f7b5359c6022cf3f9d6d42d4");
    ch_buf_fini(&b);
    assert_int_equal(ch_proto_auth_parse_challenge(sl("digest REALM=r, NONCE=n, STALE=true"), &c),
                     0);
    assert_true(c.stale);
    assert_slice(c.nonce, "n");
}

static void test_bad_and_unsupported_challenges_are_refused(void **state)
{
    ch_proto_auth_challenge_t c;
    static const char *const unsupp[] = {
        "Bearer realm=\"x\"",
        "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess",
        "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256",
        "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
        "Digest realm=\"a\\\"b\", nonce=\"n\"",
        "NTLM",
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(unsupp); k++) {
        if (ch_proto_auth_parse_challenge(sl(unsupp[k]), &c) != CH_EUNSUPP) {
            fail_msg("challenge \"%s\" not unsupported", unsupp[k]);
        }
    }
    static const char *const bad[] = {
        "",
        "Digest nonce=\"n\"",
        "Digest realm=\"r\"",
        "Digest realm=\"r\", nonce=\"n",
        "Digest realm=\"r\" nonce=\"n\"",
        "Digest realm=, nonce=\"n\"",
        "Digest realm=\"r\", nonce=\"\"",
        "Digest=realm",
        "Basic realm=\"x",
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        if (ch_proto_auth_parse_challenge(sl(bad[k]), &c) != CH_EPARSE) {
            fail_msg("challenge \"%s\" accepted", bad[k]);
        }
    }
    /* Two challenges in one value: the first is read. */
    assert_int_equal(ch_proto_auth_parse_challenge(sl("Digest realm=\"r\", nonce=\"n\", Basic "
                                                      "realm=\"r\""),
                                                   &c),
                     0);
    assert_int_equal(c.scheme, CH_PROTO_AUTH_DIGEST);

    /* Unfit inputs to the builder. */
    assert_int_equal(
        ch_proto_auth_parse_challenge(sl("Digest realm=\"r\", nonce=\"n\", qop=auth"), &c), 0);
    ch_proto_auth_request_t r = {CH_SLICE_LIT("u"),         CH_SLICE_LIT("p"),     "PLAY",
                                 CH_SLICE_LIT("rtsp://c/"), CH_SLICE_LIT("short"), 1};
    ch_buf_t b;
    ch_buf_init(&b);
    assert_int_equal(ch_proto_auth_authorization(&c, &r, &b), CH_EINVAL);
    r.cnonce = CH_SLICE_LIT("abcdefgh");
    r.user = CH_SLICE_LIT("u\"");
    assert_int_equal(ch_proto_auth_authorization(&c, &r, &b), CH_EINVAL);
    r.user = CH_SLICE_LIT("u");
    r.uri = CH_SLICE_LIT("");
    assert_int_equal(ch_proto_auth_authorization(&c, &r, &b), CH_EINVAL);
    r.uri = CH_SLICE_LIT("rtsp://c/");
    assert_int_equal(ch_proto_auth_authorization(&c, &r, &b), 0);
    assert_non_null(strstr(b.data, "nc=00000001, cnonce=\"abcdefgh\""));
    ch_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gstreamer_describe_answer_splits_into_head_and_sdp),
        cmocka_unit_test(test_gstreamer_options_and_setup_answers_are_read),
        cmocka_unit_test(test_status_line_variants_are_parsed),
        cmocka_unit_test(test_malformed_status_lines_are_refused),
        cmocka_unit_test(test_body_split_follows_content_length),
        cmocka_unit_test(test_cseq_must_be_digits_and_agree),
        cmocka_unit_test(test_session_id_and_timeout_are_read),
        cmocka_unit_test(test_transport_specs_are_parsed_one_at_a_time),
        cmocka_unit_test(test_transport_build_round_trips),
        cmocka_unit_test(test_content_base_falls_back_to_location_then_request),
        cmocka_unit_test(test_range_npt_forms_are_read),
        cmocka_unit_test(test_rtp_info_streams_are_read_in_order),
        cmocka_unit_test(test_gstreamer_play_stream_is_walked_frame_by_frame),
        cmocka_unit_test(test_interleaved_reader_tells_frames_messages_and_garbage_apart),
        cmocka_unit_test(test_url_parts_are_found),
        cmocka_unit_test(test_bad_urls_are_refused),
        cmocka_unit_test(test_url_is_printed_without_credentials),
        cmocka_unit_test(test_digest_md5_matches_rfc_2617_example),
        cmocka_unit_test(test_digest_sha256_and_md5_match_rfc_7616_examples),
        cmocka_unit_test(test_digest_without_qop_uses_rfc_2069_form),
        cmocka_unit_test(test_bad_and_unsupported_challenges_are_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ch_free(copy);
    return rc;
}
