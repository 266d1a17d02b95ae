/*
 * libFuzzer target for RTSP response heads, the body split and every RTSP header helper of
 * proto/ (CSeq, Session, Transport with a build/parse round trip, Public, Range, RTP-Info,
 * Content-Base, WWW-Authenticate with the Authorization builder).
 *
 * The first input byte picks the header capacity (0..31); the rest is copied into a block of
 * exactly its size so that AddressSanitizer sees any read past the end. Every slice a helper
 * returns must lie inside the input.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *g_base;
static size_t g_len;

static void check_slice(ch_slice_t s)
{
    if (s.len == 0) {
        return;
    }
    assert(s.ptr >= g_base && s.ptr + s.len <= g_base + g_len);
}

static void fuzz_value(ch_slice_t v)
{
    uint32_t dummy;
    (void)dummy;
    ch_proto_rtsp_session_t s;
    if (ch_proto_rtsp_parse_session(v, &s) == 0) {
        check_slice(s.id);
        assert(s.id.len >= 1 && s.id.len <= CH_PROTO_RTSP_MAX_SESSION_ID);
        assert(s.has_timeout || s.timeout == CH_PROTO_RTSP_DEFAULT_TIMEOUT);
    }

    /* Transport: walk the list; each accepted spec must survive build and parse again. */
    ch_slice_t list = v;
    for (int k = 0; k < 64; k++) {
        ch_proto_rtsp_transport_t t;
        ch_slice_t before = list;
        int rc = ch_proto_rtsp_parse_transport(&list, &t);
        assert(rc == 0 || rc == CH_ENOENT || rc == CH_EUNSUPP || rc == CH_EPARSE);
        if (rc == CH_ENOENT || rc == CH_EPARSE) {
            assert(list.ptr == before.ptr && list.len == before.len);
            break;
        }
        assert(list.len < before.len);
        if (rc == 0) {
            check_slice(t.mode);
            check_slice(t.destination);
            check_slice(t.source);
            assert(!t.has_interleaved || t.interleaved[0] <= t.interleaved[1]);
            ch_buf_t b;
            ch_buf_init(&b);
            if (ch_proto_rtsp_build_transport(&t, &b) == 0) {
                ch_slice_t again = {b.data, b.len};
                ch_proto_rtsp_transport_t t2;
                assert(ch_proto_rtsp_parse_transport(&again, &t2) == 0);
                assert(t2.tcp == t.tcp && t2.multicast == t.multicast);
                assert(t2.has_interleaved == t.has_interleaved);
                assert(!t.has_interleaved || (t2.interleaved[0] == t.interleaved[0] &&
                                              t2.interleaved[1] == t.interleaved[1]));
                assert(t2.has_client_port == t.has_client_port);
                assert(!t.has_client_port || (t2.client_port[0] == t.client_port[0] &&
                                              t2.client_port[1] == t.client_port[1]));
                assert(t2.has_server_port == t.has_server_port);
                assert(t2.has_ssrc == t.has_ssrc && (!t.has_ssrc || t2.ssrc == t.ssrc));
                assert(t2.mode.len == t.mode.len);
            }
            ch_buf_fini(&b);
        }
    }

    ch_proto_rtsp_range_t r;
    if (ch_proto_rtsp_parse_range(v, &r) == 0) {
        assert(r.has_start || r.has_end);
        assert(!(r.has_start && r.has_end && !r.start_now) || r.start_ms <= r.end_ms);
    }

    list = v;
    for (int k = 0; k < 64; k++) {
        ch_proto_rtsp_rtp_info_t info;
        ch_slice_t before = list;
        int rc = ch_proto_rtsp_parse_rtp_info(&list, &info);
        assert(rc == 0 || rc == CH_ENOENT || rc == CH_EPARSE);
        if (rc != 0) {
            break;
        }
        assert(list.len < before.len);
        check_slice(info.url);
        assert(info.url.len > 0);
    }

    (void)ch_proto_rtsp_public_has(v, "OPTIONS");

    ch_proto_auth_challenge_t c;
    int rc = ch_proto_auth_parse_challenge(v, &c);
    assert(rc == 0 || rc == CH_EPARSE || rc == CH_EUNSUPP);
    if (rc == 0) {
        check_slice(c.realm);
        check_slice(c.nonce);
        check_slice(c.opaque);
        ch_proto_auth_request_t req = {
            CH_SLICE_LIT("admin"),           CH_SLICE_LIT("pass"),     "DESCRIBE",
            CH_SLICE_LIT("rtsp://cam/live"), CH_SLICE_LIT("0a4f113b"), 1};
        ch_buf_t b;
        ch_buf_init(&b);
        int arc = ch_proto_auth_authorization(&c, &req, &b);
        assert(arc == 0);
        /* The header we build never holds a line end, whatever the challenge held. */
        assert(memchr(b.data, '\r', b.len) == NULL && memchr(b.data, '\n', b.len) == NULL);
        ch_buf_fini(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t cap = data[0] % 32;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data + 1, len);
    g_base = buf;
    g_len = len;

    /* The whole input as one header value too: helpers see values the head parser would
     * never pass (controls, line ends), and must still not crash or over-read. */
    fuzz_value((ch_slice_t){buf, len});

    ch_proto_header_t headers[32];
    ch_proto_response_t resp;
    int rc = ch_proto_parse_response(buf, len, &resp, headers, cap);
    assert(rc > 0 || rc == CH_EAGAIN || rc == CH_EPARSE || rc == CH_ETOOBIG);
    if (rc > 0) {
        size_t head = (size_t)rc;
        assert(head <= len);
        assert(resp.status >= 100 && resp.status <= 599);
        check_slice(resp.protocol);
        check_slice(resp.reason);
        ch_proto_response_t again;
        ch_proto_header_t headers2[32];
        assert(ch_proto_parse_response(buf, head, &again, headers2, cap) == rc);

        ch_slice_t body;
        int brc = ch_proto_split_body(buf, len, head, resp.headers, resp.num_headers, 4096, &body);
        assert(brc > 0 || brc == CH_EAGAIN || brc == CH_EPARSE || brc == CH_ETOOBIG);
        if (brc > 0) {
            assert((size_t)brc <= len && body.ptr == buf + head && (size_t)brc == head + body.len);
        }
        uint32_t cseq;
        (void)!ch_proto_rtsp_cseq(resp.headers, resp.num_headers, &cseq);
        ch_slice_t b =
            ch_proto_rtsp_content_base(resp.headers, resp.num_headers, CH_SLICE_LIT("rtsp://x/"));
        (void)b;
        ch_proto_auth_challenge_t c;
        (void)!ch_proto_auth_pick(resp.headers, resp.num_headers, &c);
        for (size_t k = 0; k < resp.num_headers; k++) {
            check_slice(resp.headers[k].name);
            check_slice(resp.headers[k].value);
            fuzz_value(resp.headers[k].value);
        }
    } else if (rc == CH_EAGAIN && len > 0) {
        ch_proto_response_t prefix;
        assert(ch_proto_parse_response(buf, len - 1, &prefix, headers, cap) == CH_EAGAIN);
    }
    free(buf);
    return 0;
}
