/*
 * Unit tests of proto's SDP parser and of control URL resolution, on session descriptions as
 * real servers and cameras send them: GStreamer's RTSP server and FFmpeg (captured on this
 * machine, tests/data/rtsp/), and Hikvision, Dahua and Axis cameras (their published answers,
 * addresses changed), with their quirks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

static char *copy;
static ch_proto_sdp_t sdp;

/* Parses an exactly sized copy of s[0, len), so that ASan sees any over-read. */
static int parse_n(const char *s, size_t len)
{
    ch_free(copy);
    copy = ch_malloc(len ? len : 1);
    memcpy(copy, s, len);
    return ch_proto_sdp_parse(copy, len, &sdp);
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s));
}

static void assert_slice(ch_slice_t s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0) {
        fail_msg("slice \"%.*s\" is not \"%s\"", (int)s.len, s.ptr, want);
    }
}

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
    return ch_buf_steal(&b);
}

/* Resolves control against base and checks the result. */
static void assert_resolves(const char *base, ch_slice_t control, const char *want)
{
    ch_buf_t b;
    ch_buf_init(&b);
    assert_int_equal(ch_proto_sdp_resolve_control((ch_slice_t){base, strlen(base)}, control, &b),
                     0);
    assert_string_equal(b.data, want);
    ch_buf_fini(&b);
}

static void assert_param(ch_slice_t fmtp, const char *name, const char *want)
{
    ch_slice_t v;
    assert_int_equal(ch_proto_sdp_fmtp_param(fmtp, name, &v), 0);
    assert_slice(v, want);
}

static void test_gstreamer_describe_sdp_resolves_against_content_base(void **state)
{
    size_t len;
    char *msg = read_fixture("gst_describe.txt", &len);
    ch_proto_header_t h[16];
    ch_proto_response_t resp;
    int head = ch_proto_parse_response(msg, len, &resp, h, 16);
    assert_true(head > 0);
    ch_slice_t body;
    assert_int_equal(
        ch_proto_split_body(msg, len, (size_t)head, h, resp.num_headers, 1 << 16, &body), (int)len);
    assert_int_equal(parse_n(body.ptr, body.len), 0);
    assert_slice(sdp.session_name, "Session streamed with GStreamer");
    assert_slice(sdp.control, "*");
    assert_slice(sdp.range, "npt=now-");
    assert_int_equal(sdp.num_media, 1);
    const ch_proto_sdp_media_t *m = &sdp.media[0];
    assert_slice(m->type, "video");
    assert_int_equal(m->port, 0);
    assert_slice(m->proto, "RTP/AVP");
    assert_slice(m->control, "stream=0");
    assert_slice(m->connection, "IN IP4 0.0.0.0");
    assert_slice(m->bandwidth.len ? m->bandwidth : CH_SLICE_LIT("?"), "AS:2097");
    const ch_proto_sdp_format_t *f = ch_proto_sdp_format_find(m, 96);
    assert_non_null(f);
    assert_slice(f->encoding, "H264");
    assert_int_equal(f->clock_rate, 90000);
    assert_param(f->fmtp, "packetization-mode", "1");
    ch_slice_t sps;
    assert_int_equal(ch_proto_sdp_fmtp_param(f->fmtp, "sprop-parameter-sets", &sps), 0);
    assert_true(sps.len > 10 && memchr(sps.ptr, ',', sps.len) != NULL);
    assert_null(ch_proto_sdp_format_find(m, 97));

    /* Content-Base ends with '/': the aggregate is the base, the track is appended. */
    ch_slice_t base = ch_proto_rtsp_content_base(h, resp.num_headers, CH_SLICE_LIT("unused"));
    ch_buf_t agg, track;
    ch_buf_init(&agg);
    ch_buf_init(&track);
    assert_int_equal(ch_proto_sdp_resolve_control(base, sdp.control, &agg), 0);
    assert_int_equal(ch_proto_sdp_resolve_control(base, m->control, &track), 0);
    assert_int_equal(agg.len, base.len);
    assert_int_equal(track.len, base.len + strlen("stream=0"));
    assert_string_equal(track.data + base.len, "stream=0");
    ch_buf_fini(&agg);
    ch_buf_fini(&track);
    ch_free(msg);
}

static void test_ffmpeg_sdps_give_h264_and_h265_parameter_sets(void **state)
{
    size_t len;
    char *text = read_fixture("ffmpeg_h264.sdp", &len);
    assert_int_equal(parse_n(text, len), 0);
    assert_slice(sdp.session_name, "No Name");
    assert_slice(sdp.connection, "IN IP4 127.0.0.1");
    assert_int_equal(sdp.control.len, 0);
    assert_int_equal(sdp.num_media, 1);
    assert_int_equal(sdp.media[0].port, 5004);
    assert_int_equal(sdp.media[0].control.len, 0);
    const ch_proto_sdp_format_t *f = ch_proto_sdp_format_find(&sdp.media[0], 96);
    assert_slice(f->encoding, "H264");
    /* FFmpeg puts a space after each ';'. */
    assert_param(f->fmtp, "profile-level-id", "64000D");
    assert_param(f->fmtp, "PACKETIZATION-MODE", "1");
    ch_free(text);

    text = read_fixture("ffmpeg_h265.sdp", &len);
    assert_int_equal(parse_n(text, len), 0);
    f = ch_proto_sdp_format_find(&sdp.media[0], 96);
    assert_slice(f->encoding, "H265");
    ch_slice_t v;
    assert_int_equal(ch_proto_sdp_fmtp_param(f->fmtp, "sprop-vps", &v), 0);
    assert_int_equal(ch_proto_sdp_fmtp_param(f->fmtp, "sprop-sps", &v), 0);
    assert_int_equal(ch_proto_sdp_fmtp_param(f->fmtp, "sprop-pps", &v), 0);
    assert_true(v.len > 4 && v.ptr[v.len - 1] == '=');
    assert_int_equal(ch_proto_sdp_fmtp_param(f->fmtp, "sprop-sei", &v), CH_ENOENT);
    /* Without any control, the media URL is the request URL (the base). */
    assert_resolves("rtsp://127.0.0.1:8554/live", sdp.media[0].control,
                    "rtsp://127.0.0.1:8554/live");
    ch_free(text);
}

/* A Hikvision DS-2CD answer: absolute controls carrying the query, "a=recvonly" (the camera's
 * own direction, reversed), a Media_header blob. */
static const char hikvision[] =
    "v=0\r\n"
    "o=- 1109162014219182 1109162014219192 IN IP4 192.168.1.64\r\n"
    "s=Media Presentation\r\n"
    "e=NONE\r\n"
    "b=AS:5050\r\n"
    "t=0 0\r\n"
    "a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "b=AS:5000\r\n"
    "a=recvonly\r\n"
    "a=x-dimensions:1920,1080\r\n"
    "a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode=unicast\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 profile-level-id=420029; packetization-mode=1; "
    "sprop-parameter-sets=Z00AKZpkA8ARPyzUBAQFAAADA+gAAOpgBA==,aO48gA==\r\n"
    "a=Media_header:MEDIAINFO=494D4B48010100000400000100000000000000000000000000000000000000000000"
    "000000000000;\r\n"
    "a=appversion:1.0\r\n";

static void test_hikvision_absolute_controls_are_used_as_they_are(void **state)
{
    assert_int_equal(parse(hikvision), 0);
    assert_slice(sdp.bandwidth, "AS:5050");
    assert_int_equal(sdp.num_media, 1);
    const ch_proto_sdp_media_t *m = &sdp.media[0];
    assert_slice(m->bandwidth, "AS:5000");
    assert_slice(m->direction, "recvonly");
    assert_resolves("rtsp://192.168.1.64:554/Streaming/Channels/101", m->control,
                    "rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1?transportmode="
                    "unicast");
    assert_resolves("rtsp://192.168.1.64:554/Streaming/Channels/101", sdp.control,
                    "rtsp://192.168.1.64:554/Streaming/Channels/101/?transportmode=unicast");
    assert_param(ch_proto_sdp_format_find(m, 96)->fmtp, "sprop-parameter-sets",
                 "Z00AKZpkA8ARPyzUBAQFAAADA+gAAOpgBA==,aO48gA==");
}

/* A Dahua IPC-HFW answer for an H.265 main stream with G.711 audio: LF line ends, trailing
 * spaces, relative "trackID=N" controls, a blank line at the end. */
static const char dahua[] =
    "v=0\n"
    "o=- 2251938202 2251938202 IN IP4 0.0.0.0 \n"
    "s=Media Server\n"
    "c=IN IP4 0.0.0.0\n"
    "t=0 0\n"
    "a=control:*\n"
    "a=packetization-supported:DH\n"
    "a=rtppayload-supported:DH\n"
    "a=range:npt=now-\n"
    "m=video 0 RTP/AVP 96\n"
    "a=control:trackID=0   \n"
    "a=framerate:25.000000\n"
    "a=rtpmap:96 H265/90000\n"
    "a=fmtp:96 profile-id=1;sprop-sps=QgEBAWAAAAMAsAAAAwAAAwB7oAPAgBDlja5"
    "JMvTcBAQEAg==;sprop-pps=RAHA8vA8kAA=;sprop-vps=QAEMAf//AWAAAAMAsAAAAwAA"
    "AwB7rAk=\n"
    "a=recvonly\n"
    "m=audio 0 RTP/AVP 8\n"
    "a=control:trackID=1\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=recvonly\n"
    "\n";

static void test_dahua_lf_lines_and_relative_controls_resolve(void **state)
{
    assert_int_equal(parse(dahua), 0);
    assert_slice(sdp.origin, "- 2251938202 2251938202 IN IP4 0.0.0.0");
    assert_int_equal(sdp.num_media, 2);
    const ch_proto_sdp_media_t *v = &sdp.media[0];
    const ch_proto_sdp_media_t *a = &sdp.media[1];
    assert_slice(v->control, "trackID=0");
    const ch_proto_sdp_format_t *f = ch_proto_sdp_format_find(v, 96);
    assert_slice(f->encoding, "H265");
    assert_param(f->fmtp, "sprop-vps", "QAEMAf//AWAAAAMAsAAAAwAAAwB7rAk=");
    assert_param(f->fmtp, "sprop-pps", "RAHA8vA8kAA=");
    assert_slice(a->type, "audio");
    f = ch_proto_sdp_format_find(a, 8);
    assert_slice(f->encoding, "PCMA");
    assert_int_equal(f->clock_rate, 8000);
    assert_int_equal(f->fmtp.len, 0);
    /* Dahua's Content-Base keeps the query and ends with '/'. */
    const char *base = "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0/";
    assert_resolves(base, sdp.control, base);
    assert_resolves(base, v->control,
                    "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0/trackID=0");
    /* Without Content-Base (some firmwares), the request URL gets the '/' first. */
    assert_resolves("rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0", a->control,
                    "rtsp://10.0.0.5:554/cam/realmonitor?channel=1&subtype=0/trackID=1");
}

/* An Axis answer (its server is GStreamer-based) with absolute controls and a session control
 * that differs from the request URL. */
static const char axis[] =
    "v=0\r\n"
    "o=- 1234567890123456789 1 IN IP4 192.168.0.90\r\n"
    "s=Session streamed with GStreamer\r\n"
    "i=rtsp-server\r\n"
    "t=0 0\r\n"
    "a=tool:GStreamer\r\n"
    "a=type:broadcast\r\n"
    "a=range:npt=now-\r\n"
    "a=control:rtsp://192.168.0.90/axis-media/media.amp?videocodec=h264\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "c=IN IP4 0.0.0.0\r\n"
    "b=AS:50000\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;profile-level-id=4d0029;"
    "sprop-parameter-sets=Z00AKeKQDwBE/LgLcBAQGkHiRFQ=,aO48gA==\r\n"
    "a=ts-refclk:local\r\n"
    "a=mediaclk:sender\r\n"
    "a=recvonly\r\n"
    "a=control:rtsp://192.168.0.90/axis-media/media.amp/stream=0?videocodec=h264\r\n"
    "a=framerate:30.000000\r\n"
    "a=transform:1.000000,0.000000,0.000000;0.000000,1.000000,0.000000;0.000000,0.000000,"
    "1.000000\r\n";

static void test_axis_session_and_media_controls_are_kept_apart(void **state)
{
    assert_int_equal(parse(axis), 0);
    assert_slice(sdp.control, "rtsp://192.168.0.90/axis-media/media.amp?videocodec=h264");
    assert_slice(sdp.media[0].control,
                 "rtsp://192.168.0.90/axis-media/media.amp/stream=0?videocodec=h264");
    assert_param(ch_proto_sdp_format_find(&sdp.media[0], 96)->fmtp, "profile-level-id", "4d0029");
}

static void test_control_resolution_rules(void **state)
{
    assert_resolves("rtsp://c/s", CH_SLICE_LIT("trackID=1"), "rtsp://c/s/trackID=1");
    assert_resolves("rtsp://c/s/", CH_SLICE_LIT("trackID=1"), "rtsp://c/s/trackID=1");
    assert_resolves("rtsp://c/s/", CH_SLICE_LIT("/trackID=1"), "rtsp://c/s/trackID=1");
    assert_resolves("rtsp://c/s", CH_SLICE_LIT("/trackID=1"), "rtsp://c/s/trackID=1");
    assert_resolves("rtsp://c/s/", CH_SLICE_LIT("//trackID=1"), "rtsp://c/s/trackID=1");
    assert_resolves("rtsp://c/s/", CH_SLICE_LIT("/"), "rtsp://c/s/");
    assert_resolves("rtsp://c/s", CH_SLICE_LIT("*"), "rtsp://c/s");
    assert_resolves("rtsp://c/s", CH_SLICE_LIT(""), "rtsp://c/s");
    assert_resolves("rtsp://c/s", CH_SLICE_LIT("RTSP://other/x"), "RTSP://other/x");
    assert_resolves("", CH_SLICE_LIT("rtsp://other/x"), "rtsp://other/x");
    /* A ':' after a byte that no scheme holds ('=' here) does not make a control absolute. */
    assert_resolves("rtsp://c/s", CH_SLICE_LIT("a=b:c"), "rtsp://c/s/a=b:c");
    ch_buf_t b;
    ch_buf_init(&b);
    assert_int_equal(ch_proto_sdp_resolve_control(CH_SLICE_LIT(""), CH_SLICE_LIT("trackID=1"), &b),
                     CH_EPARSE);
    ch_buf_fini(&b);
}

static void test_payload_types_rtpmap_and_fmtp_edge_cases(void **state)
{
    /* Unlisted payload types, a malformed rtpmap and session-level rtpmap are skipped; more
     * than CH_PROTO_SDP_MAX_FORMATS formats keep the first ones; encoding parameters. */
    const char *s = "v=0\r\n"
                    "a=rtpmap:96 H264/90000\r\n"
                    "m=audio 0 RTP/AVP 0 8 96 97 98 99 100 101 102 103 104 105 106 107 108 109 "
                    "110 111\r\n"
                    "a=rtpmap:97 opus/48000/2\r\n"
                    "a=rtpmap:98 H264\r\n"
                    "a=rtpmap:99 X/0\r\n"
                    "a=rtpmap:120 H264/90000\r\n"
                    "a=rtpmap:96 H264/90000\r\n"
                    "a=fmtp:96\r\n"
                    "a=fmtp:x y\r\n"
                    "a=sendonly\r\n";
    assert_int_equal(parse(s), 0);
    const ch_proto_sdp_media_t *m = &sdp.media[0];
    assert_int_equal(m->num_formats, CH_PROTO_SDP_MAX_FORMATS);
    assert_int_equal(m->formats[0].pt, 0);
    assert_null(ch_proto_sdp_format_find(m, 111));
    const ch_proto_sdp_format_t *f = ch_proto_sdp_format_find(m, 97);
    assert_slice(f->encoding, "opus");
    assert_int_equal(f->clock_rate, 48000);
    assert_slice(f->enc_params, "2");
    assert_int_equal(ch_proto_sdp_format_find(m, 98)->encoding.len, 0);
    assert_int_equal(ch_proto_sdp_format_find(m, 99)->clock_rate, 0);
    assert_int_equal(ch_proto_sdp_format_find(m, 96)->clock_rate, 90000);
    assert_int_equal(ch_proto_sdp_format_find(m, 96)->fmtp.len, 0);
    assert_slice(m->direction, "sendonly");

    /* Non-RTP media keep no formats; port/count is accepted. */
    assert_int_equal(parse("v=0\nm=application 9/2 TCP/MSRP *\nm=video 5000 RTP/AVP 96\n"), 0);
    assert_int_equal(sdp.num_media, 2);
    assert_int_equal(sdp.media[0].num_formats, 0);
    assert_int_equal(sdp.media[0].port, 9);

    /* fmtp getter: bare names, spaces, case, a value holding '='. */
    ch_slice_t v;
    ch_slice_t fmtp = CH_SLICE_LIT(" a=1 ;flag; B = x=y ;;");
    assert_int_equal(ch_proto_sdp_fmtp_param(fmtp, "b", &v), 0);
    assert_slice(v, "x=y");
    assert_int_equal(ch_proto_sdp_fmtp_param(fmtp, "flag", &v), 0);
    assert_int_equal(v.len, 0);
    assert_int_equal(ch_proto_sdp_fmtp_param(fmtp, "c", &v), CH_ENOENT);
    assert_int_equal(ch_proto_sdp_fmtp_param(CH_SLICE_LIT(""), "a", &v), CH_ENOENT);
}

static void test_malformed_sdps_are_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "\r\n",
        "v=1\r\n",
        "s=x\r\nv=0\r\n",
        "v=0\r\nX=y\r\n",
        "v=0\r\nmm\r\n",
        "v=0\r\n=x\r\n",
        "v=0\r\ns=a\rb\r\n",
        "v=0\r\ns=a\x01\r\n",
        "v=0\r\ns=a\x7f\r\n",
        "v=0\r\nm=video 0 RTP/AVP\r\n",
        "v=0\r\nm=video 0\r\n",
        "v=0\r\nm=video x RTP/AVP 96\r\n",
        "v=0\r\nm=video 65536 RTP/AVP 96\r\n",
        "v=0\r\nm=video 0/x RTP/AVP 96\r\n",
        "v=0\r\nm=video 0 RTP/AVP 128\r\n",
        "v=0\r\nm=video 0 RTP/AVP 96x\r\n",
        "v=0\r\nm=vi\x80o 0 RTP/AVP 96\r\n",
        " v=0\r\n",
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        int rc = parse(bad[k]);
        if (rc != CH_EPARSE) {
            fail_msg("case %zu: rc %d", k, rc);
        }
    }
    /* A NUL anywhere is refused. */
    const char nul[] = "v=0\r\ns=a\0b\r\n";
    assert_int_equal(parse_n(nul, sizeof(nul) - 1), CH_EPARSE);

    /* More than CH_PROTO_SDP_MAX_MEDIA media sections. */
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, "v=0\r\n");
    for (int k = 0; k < CH_PROTO_SDP_MAX_MEDIA; k++) {
        ch_buf_append_str(&b, "m=video 0 RTP/AVP 96\r\n");
    }
    assert_int_equal(parse_n(b.data, b.len), 0);
    assert_int_equal(sdp.num_media, CH_PROTO_SDP_MAX_MEDIA);
    ch_buf_append_str(&b, "m=video 0 RTP/AVP 96\r\n");
    assert_int_equal(parse_n(b.data, b.len), CH_ETOOBIG);
    ch_buf_fini(&b);
}

static void test_quirks_are_tolerated(void **state)
{
    /* No trailing line end, tabs and spaces at line ends, unknown letters, a duplicate
     * control (the first wins), a session without any control, no s= line at all. */
    const char *s = "v=0 \t\r\n"
                    "z=whatever\r\n"
                    "x-custom=1\r\n";
    assert_int_equal(parse(s), CH_EPARSE); /* "x-" is not a letter followed by '=' */
    s = "v=0\r\n"
        "y=future\r\n"
        "m=video 0 RTP/AVP 96\r\n"
        "a=control:track1\r\n"
        "a=control:track2\r\n"
        "a=rtpmap:96 H264/90000 \t";
    assert_int_equal(parse(s), 0);
    assert_int_equal(sdp.session_name.len, 0);
    assert_int_equal(sdp.control.len, 0);
    assert_slice(sdp.media[0].control, "track1");
    assert_slice(ch_proto_sdp_format_find(&sdp.media[0], 96)->encoding, "H264");
    /* Multiple spaces between m= fields, as one camera sends. */
    assert_int_equal(parse("v=0\nm=video  0  RTP/AVP  96 97\n"), 0);
    assert_int_equal(sdp.media[0].num_formats, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gstreamer_describe_sdp_resolves_against_content_base),
        cmocka_unit_test(test_ffmpeg_sdps_give_h264_and_h265_parameter_sets),
        cmocka_unit_test(test_hikvision_absolute_controls_are_used_as_they_are),
        cmocka_unit_test(test_dahua_lf_lines_and_relative_controls_resolve),
        cmocka_unit_test(test_axis_session_and_media_controls_are_kept_apart),
        cmocka_unit_test(test_control_resolution_rules),
        cmocka_unit_test(test_payload_types_rtpmap_and_fmtp_edge_cases),
        cmocka_unit_test(test_malformed_sdps_are_refused),
        cmocka_unit_test(test_quirks_are_tolerated),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ch_free(copy);
    return rc;
}
