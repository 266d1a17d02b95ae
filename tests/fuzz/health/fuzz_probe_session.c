/*
 * libFuzzer target: a camera's answers to a health probe (health/probe_session.c) fed in
 * pieces, as reads would cut them, until the session ends or the bytes run out: RTSP heads and
 * bodies, Basic and Digest challenges, SDPs. The first byte chooses whether credentials are
 * set and how the rest is cut. The bytes not used wait in a buffer of the probe connection's
 * size, as in the conn. A session ends with a reason, and never uses more than it was given.
 */
#include "health/health_internal.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned flags = data[0];
    data++;
    size--;
    static ch_health__session_t s;
    static char in[CH_HEALTH__PROBE_IN];
    size_t in_len = 0;
    ch_health__session_init(&s);
    int rc =
        ch_health__session_begin(&s, "rtsp://10.0.0.1:554/stream1", (flags & 1) ? "admin" : NULL,
                                 (flags & 1) ? "pass word" : NULL);
    assert(rc == 0);
    ch_proto_rtsp_client_start(&s.rtsp);
    assert(s.rtsp.out.len > 0);
    size_t piece = 1 + ((flags >> 1) & 0x7f) * 3; /* 1 .. 382 bytes per read */
    size_t off = 0;
    while (off < size && !s.done && s.rtsp.state != CH_PROTO_RTSP_CLIENT_REDIRECTED) {
        size_t room = sizeof(in) - in_len;
        size_t n = size - off < piece ? size - off : piece;
        if (n > room) {
            n = room;
        }
        memcpy(in + in_len, data + off, n);
        in_len += n;
        off += n;
        ch_buf_reset(&s.rtsp.out);
        size_t used = ch_health__session_input(&s, in, in_len);
        assert(used <= in_len);
        memmove(in, in + used, in_len - used);
        in_len -= used;
        assert(s.done || in_len < sizeof(in));
    }
    if (s.done) {
        assert(s.reason[0] != '\0');
        assert(s.outcome != CH_HEALTH_PROBE_OK || s.codec[0] != '\0');
    }
    /* A redirect is only ever to an rtsp:// URL, and never alongside an end. */
    if (s.rtsp.state == CH_PROTO_RTSP_CLIENT_REDIRECTED) {
        assert(!s.done && strncasecmp(s.rtsp.redirect, "rtsp://", 7) == 0);
    }
    ch_health__session_fini(&s);

    /* The report's month parameter, from the same bytes. */
    char month[9];
    size_t m = size < 8 ? size : 8;
    memcpy(month, data, m);
    month[m] = '\0';
    int64_t from = 0, to = 0;
    if (ch_health_month_range(month, 540, &from, &to) == 0) {
        assert(to > from && to - from <= 31LL * 86400 * 1000);
    }
    return 0;
}
