/*
 * health/probe_session.c: what a probe says and how it reads the camera's answers, without a
 * socket (probe.c carries the bytes; the fuzz target feeds it directly).
 *
 * OPTIONS, then DESCRIBE with Accept: application/sdp; a 401 is answered once with Basic or
 * Digest (proto's challenge parser and answer builder, as the relay's pull does) and a second
 * 401 means the credentials are refused. A redirect (3xx with an rtsp:// Location, as the
 * relay's pull follows) ends the session with the new URL for the probe to try. The DESCRIBE
 * answer's SDP names the codec of the first video track. No SETUP: a probe never starts a
 * stream.
 */
#include "health/health_internal.h"
#include "proto/proto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define MAX_HEADERS 48

void ch_health__session_init(ch_health__session_t *s, const char *wire, const char *user,
                             const char *password)
{
    memset(s, 0, sizeof(*s));
    ch_buf_init(&s->out);
    snprintf(s->wire, sizeof(s->wire), "%s", wire);
    snprintf(s->user, sizeof(s->user), "%s", user != NULL ? user : "");
    snprintf(s->pass, sizeof(s->pass), "%s", password != NULL ? password : "");
    s->step = CH_HEALTH__STEP_OPTIONS;
}

void ch_health__session_fini(ch_health__session_t *s)
{
    ch_buf_fini(&s->out);
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

void ch_health__session_request(ch_health__session_t *s)
{
    const char *method = s->step == CH_HEALTH__STEP_OPTIONS ? "OPTIONS" : "DESCRIBE";
    ch_buf_reset(&s->out);
    ch_buf_appendf(&s->out, "%s %s RTSP/1.0\r\nCSeq: %u\r\nUser-Agent: cctvhub-health\r\n", method,
                   s->wire, ++s->cseq);
    if (s->step == CH_HEALTH__STEP_DESCRIBE) {
        ch_buf_append_str(&s->out, "Accept: application/sdp\r\n");
    }
    if (s->has_challenge) {
        ch_proto_auth_challenge_t ch;
        if (ch_proto_auth_parse_challenge((ch_slice_t){s->challenge, strlen(s->challenge)}, &ch) !=
            0) {
            ch_buf_reset(&s->out);
            ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL,
                                   "the camera's challenge cannot be answered");
            return;
        }
        uint8_t rb[8];
        char cnonce[17];
        if (getrandom(rb, sizeof(rb), 0) != (ssize_t)sizeof(rb)) {
            uint64_t t = ch_time_mono_ns();
            memcpy(rb, &t, sizeof(rb));
        }
        ch_hex_encode(cnonce, sizeof(cnonce), rb, sizeof(rb), 0);
        ch_proto_auth_request_t ar = {
            .user = {s->user, strlen(s->user)},
            .password = {s->pass, strlen(s->pass)},
            .method = method,
            .uri = {s->wire, strlen(s->wire)},
            .cnonce = {cnonce, 16},
            .nc = ++s->nc,
        };
        ch_buf_append_str(&s->out, "Authorization: ");
        if (ch_proto_auth_authorization(&ch, &ar, &s->out) != 0) {
            ch_buf_reset(&s->out);
            ch_health__session_end(
                s, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                "the credentials cannot be sent in the camera's authentication scheme");
            return;
        }
        ch_buf_append_str(&s->out, "\r\n");
    }
    ch_buf_append_str(&s->out, "\r\n");
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

/* One whole answer: the next request in out, or the end. */
static void on_answer(ch_health__session_t *s, const ch_proto_response_t *r, ch_slice_t body)
{
    if (r->status == 401) {
        ch_proto_auth_challenge_t ch;
        if (ch_proto_auth_pick(r->headers, r->num_headers, &ch) != 0) {
            ch_health__session_end(s, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                                   "401 without a challenge the hub can answer");
            return;
        }
        if (s->user[0] == '\0') {
            ch_health__session_end(s, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                                   "the camera asks for credentials and none are configured");
            return;
        }
        if (s->has_challenge && !ch.stale) {
            ch_health__session_end(s, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                                   "the camera refused the credentials (401)");
            return;
        }
        if (++s->challenges > 3) {
            ch_health__session_end(s, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                                   "the camera keeps saying the nonce is stale");
            return;
        }
        /* The header value holding the chosen challenge, kept for the requests to come. */
        if (ch.value.len >= sizeof(s->challenge)) {
            ch_health__session_end(s, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                                   "the camera's challenge is too long");
            return;
        }
        memcpy(s->challenge, ch.value.ptr, ch.value.len);
        s->challenge[ch.value.len] = '\0';
        s->has_challenge = 1;
        s->nc = 0;
        ch_health__session_request(s);
        return;
    }
    if (s->step == CH_HEALTH__STEP_OPTIONS) {
        /* Some cameras fail OPTIONS and still play: DESCRIBE decides. */
        s->step = CH_HEALTH__STEP_DESCRIBE;
        ch_health__session_request(s);
        return;
    }
    if (r->status >= 300 && r->status < 400) {
        const ch_proto_header_t *loc = ch_proto_header_find(r->headers, r->num_headers, "location");
        if (loc == NULL || loc->value.len >= sizeof(s->redirect) || loc->value.len < 7 ||
            strncasecmp(loc->value.ptr, "rtsp://", 7) != 0) {
            ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL,
                                   "DESCRIBE answered %d without an rtsp:// Location", r->status);
            return;
        }
        memcpy(s->redirect, loc->value.ptr, loc->value.len);
        s->redirect[loc->value.len] = '\0';
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "redirected (%d)", r->status);
        return;
    }
    if (r->status != 200) {
        char reason[64];
        size_t n = r->reason.len < sizeof(reason) - 1 ? r->reason.len : sizeof(reason) - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)r->reason.ptr[i];
            reason[i] = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
        }
        reason[n] = '\0';
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "DESCRIBE answered %d %s",
                               r->status, reason);
        return;
    }
    char codec[16];
    int rc = sdp_codec(body, codec, sizeof(codec));
    if (rc == -2) {
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "the camera's SDP is malformed");
    } else if (rc != 0) {
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "the camera offers no video track");
    } else {
        ch_health__session_end(s, CH_HEALTH_PROBE_OK, codec, "ok");
    }
}

void ch_health__session_input(ch_health__session_t *s, size_t n)
{
    assert(n <= sizeof(s->in) - s->in_len);
    s->in_len += n;
    size_t off = 0;
    while (off < s->in_len && !s->done) {
        ch_proto_header_t hdrs[MAX_HEADERS];
        ch_proto_response_t resp;
        const char *q = s->in + off;
        size_t len = s->in_len - off;
        int hl = ch_proto_parse_response(q, len, &resp, hdrs, MAX_HEADERS);
        if (hl == CH_EAGAIN) {
            break;
        }
        if (hl < 0) {
            ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL,
                                   "the camera's answer is not RTSP");
            return;
        }
        ch_slice_t body;
        int total = ch_proto_split_body(q, len, (size_t)hl, hdrs, resp.num_headers,
                                        sizeof(s->in) / 2, &body);
        if (total == CH_EAGAIN) {
            break;
        }
        if (total < 0) {
            ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL,
                                   "the camera's answer has a bad body");
            return;
        }
        off += (size_t)total;
        ch_buf_reset(&s->out);
        on_answer(s, &resp, body);
        if (s->out.len > 0) {
            /* Our next request is out: what else the camera sent before it is stale. */
            s->in_len = 0;
            return;
        }
    }
    if (s->done) {
        return;
    }
    memmove(s->in, s->in + off, s->in_len - off);
    s->in_len -= off;
    if (s->in_len == sizeof(s->in)) {
        ch_health__session_end(s, CH_HEALTH_PROBE_FAILED, NULL, "the camera's answer is too long");
    }
}
