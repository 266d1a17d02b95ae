/*
 * health/probe_session.c: what a probe says and how it reads the camera's answers, without a
 * socket (probe.c carries the bytes; the fuzz target feeds it directly).
 *
 * The exchange is proto's RTSP client session, the one the relay's pull drives too: OPTIONS,
 * then DESCRIBE with Accept: application/sdp; a 401 is answered once with Basic or Digest and
 * a second 401 means the credentials are refused; a redirect (3xx with an rtsp:// Location)
 * leaves the session REDIRECTED for the probe to connect again. Here: the outcome of its end,
 * and the codec of the first video track of the DESCRIBE answer's SDP. No SETUP: a probe never
 * starts a stream.
 */
#include "health/health_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ch_health__session_init(ch_health__session_t *s)
{
    memset(s, 0, sizeof(*s));
    ch_proto_rtsp_client_init(&s->rtsp, "cctvhub-health", 0);
}

void ch_health__session_fini(ch_health__session_t *s)
{
    ch_proto_rtsp_client_fini(&s->rtsp);
}

void ch_health__session_end(ch_health__session_t *s, ch_health_outcome_t outcome, const char *codec,
                            const char *fmt, ...)
{
    if (s->done) {
        return;
    }
    s->done = 1;
    s->outcome = outcome;
    snprintf(s->codec, sizeof(s->codec), "%s", codec != NULL ? codec : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof(s->reason), fmt, ap);
    va_end(ap);
}

int ch_health__session_begin(ch_health__session_t *s, const char *url, const char *user,
                             const char *password)
{
    if (ch_proto_rtsp_client_begin(&s->rtsp, url, user, password) != 0) {
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "%s", s->rtsp.error);
        return -1;
    }
    return 0;
}

/* The codec of the first video track of an SDP: its rtpmap name in capitals ("H264"), or
 * "pt<N>" for a static payload type without one. 0; -1 without a video track; -2 when the SDP
 * does not parse. */
static int sdp_codec(ch_slice_t body, char *out, size_t cap)
{
    ch_proto_sdp_t sdp;
    if (ch_proto_sdp_parse(body.ptr, body.len, &sdp) != 0) {
        return -2;
    }
    for (size_t i = 0; i < sdp.num_media; i++) {
        const ch_proto_sdp_media_t *m = &sdp.media[i];
        if (!ch_slice_eq_nocase(m->type, "video") || m->num_formats == 0) {
            continue;
        }
        const ch_proto_sdp_format_t *f = &m->formats[0];
        if (f->encoding.len == 0) {
            snprintf(out, cap, "pt%u", (unsigned)f->pt);
            return 0;
        }
        size_t n = f->encoding.len < cap - 1 ? f->encoding.len : cap - 1;
        for (size_t k = 0; k < n; k++) {
            unsigned char ch = (unsigned char)f->encoding.ptr[k];
            out[k] = isalnum(ch) || ch == '-' || ch == '.' ? (char)toupper(ch) : '_';
        }
        out[n] = '\0';
        return 0;
    }
    return -1;
}

/* After a whole answer: ends the session when the exchange ended. */
static void on_answer(ch_health__session_t *s)
{
    ch_proto_rtsp_client_t *c = &s->rtsp;
    if (c->state == CH_PROTO_RTSP_CLIENT_FAILED) {
        ch_health__session_end(
            s, c->auth_failed ? CH_HEALTH_PROBE_AUTH_FAILED : CH_HEALTH_PROBE_FAILED, NULL, "%s",
            c->error);
        return;
    }
    if (c->state != CH_PROTO_RTSP_CLIENT_DESCRIBED) {
        return;
    }
    char codec[16];
    int rc = sdp_codec((ch_slice_t){c->sdp.data, c->sdp.len}, codec, sizeof(codec));
    if (rc == -2) {
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "the camera's SDP is malformed");
    } else if (rc != 0) {
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "the camera offers no video track");
    } else {
        ch_health__session_end(s, CH_HEALTH_PROBE_OK, codec, "ok");
    }
}

size_t ch_health__session_input(ch_health__session_t *s, const char *in, size_t len)
{
    size_t off = 0;
    while (off < len && !s->done && s->rtsp.state != CH_PROTO_RTSP_CLIENT_REDIRECTED) {
        int total = ch_proto_rtsp_client_read(&s->rtsp, in + off, len - off);
        if (total == CH_EAGAIN) {
            break;
        }
        if (total > 0) {
            off += (size_t)total;
        }
        on_answer(s);
        if (s->rtsp.out.len > 0) {
            /* Our next request is out: what else the camera sent before it is stale. */
            return len;
        }
    }
    if (!s->done && len - off >= CH_HEALTH__PROBE_IN) {
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "the camera's answer is too long");
    }
    return off;
}
