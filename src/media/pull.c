/*
 * media/pull.c: the camera side of a stream, an RTSP/1.0 client on the camera's loop.
 *
 * proto's RTSP client session (the one the health probe drives too) asks OPTIONS, DESCRIBE,
 * SETUP of the first H.264/H.265 video track over TCP interleaved (or UDP), PLAY, answers
 * Basic or Digest challenges and follows up to 3 redirects; here, the choice of the track, a
 * keep-alive at half the session timeout, a step deadline for slow answers, interleaved
 * frames, stall detection, reconnects with capped exponential backoff. Packets are inspected
 * by the codec module (access units, keyframes, parameter sets), their sequence numbers,
 * timestamps and SSRC rewritten so viewers see one continuous stream across reconnects, and
 * stored once in the camera's fan-out store. An rtsps:// camera is pulled over TLS inside the
 * same connection (net's ch_net_conn_tls_connect with the relay's client context): its chain
 * checked against the hub's CAs and the URL's host, or only its key against the camera's pin;
 * a refused certificate fails the pull like any other error, its reason in last_error (which
 * health shows as the camera's).
 */
#include "media/pull.h"

#include "media/camera.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define STEP_MS     15000 /* a camera answering slower than this is given up on */
#define BACKOFF_MIN 500

typedef ch_media__pull_t pull_t;
typedef ch_media__cam_t cam_t;

static void pull_connect(cam_t *c);
static void forget_dial(pull_t *p);
static int open_udp(cam_t *c);
static int on_rtp(cam_t *c, uint8_t *pkt, size_t len, int64_t now);

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) {
        return 0;
    }
    if (a->ss_family == AF_INET) {
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
    }
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

const char *ch_media__pull_state_name(ch_media__pull_state_t s)
{
    switch (s) {
    case PULL_STOPPED:
        return "stopped";
    case PULL_SOURCE:
    case PULL_CONNECTING:
    case PULL_OPTIONS:
    case PULL_DESCRIBE:
    case PULL_SETUP:
    case PULL_PLAY:
        return "connecting";
    case PULL_PLAYING:
        return "playing";
    case PULL_BACKOFF:
        return "backoff";
    }
    return "stopped";
}

static void set_state(pull_t *p, ch_media__pull_state_t s)
{
    if (ch_media__pull_state_name(p->state) != ch_media__pull_state_name(s)) {
        p->state_since_ms = ch_time_now_ms();
    }
    p->state = s;
}

static void close_udp(pull_t *p)
{
    for (int i = 0; i < 2; i++) {
        if (p->udp[i] != NULL) {
            ch_media__sock_close(p->udp[i]);
            p->udp[i] = NULL;
        }
    }
    p->udp_port = 0;
}

static void on_conn_closed(ch_net_conn_t *conn)
{
    ch_free(conn);
}

/* Closes the RTSP connection (what the socket took is sent, the rest dropped) and the UDP
 * sockets. */
static void close_sock(pull_t *p)
{
    if (p->conn != NULL) {
        p->conn->data = NULL;
        ch_net_conn_close(p->conn, on_conn_closed);
        p->conn = NULL;
    }
    close_udp(p);
}

/* Gives up on this connection; retries after the backoff. */
static void fail(cam_t *c, const char *fmt, ...) CH_PRINTF(2, 3);
static void fail(cam_t *c, const char *fmt, ...)
{
    pull_t *p = &c->pull;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
    va_end(ap);
    ch_log(CH_LOG_WARN, "media",
           "msg=\"camera pull failed\" camera=%lld error=\"%s\" retry_ms=%lld", (long long)c->id,
           p->last_error, (long long)p->backoff_ms);
    close_sock(p);
    forget_dial(p);
    ch_media__cam_break(c); /* the frame it was sending never ends */
    set_state(p, PULL_BACKOFF);
    p->retry_at_ms = ch_media__now_ms() + p->backoff_ms;
    p->backoff_ms *= 2;
    int64_t cap = (int64_t)c->loop->relay->cfg.backoff_max_s * 1000;
    if (p->backoff_ms > cap) {
        p->backoff_ms = cap;
    }
    ch_media__cam_failed(c);
}

/* ---- writing requests ---------------------------------------------------------------------- */

/* Sends the session's next request, if any; fails the pull when the session failed. 0 or -1. */
static int send_out(cam_t *c)
{
    pull_t *p = &c->pull;
    if (p->rtsp.state == CH_PROTO_RTSP_CLIENT_FAILED) {
        fail(c, "%s", p->rtsp.error);
        return -1;
    }
    if (p->rtsp.out.len > 0 && p->conn != NULL) {
        /* Requests are small: the connection's queue (CH_MEDIA__PULL_OUT) overflows only
         * when the camera reads none of them. */
        int rc = ch_net_conn_send(p->conn, p->rtsp.out.data, p->rtsp.out.len);
        ch_buf_reset(&p->rtsp.out);
        if (rc != 0) {
            fail(c, "write to the camera: %s",
                 rc == CH_ETOOBIG ? "it reads none of our requests" : uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

/* A new step of the session: its request out, and the step's deadline (the connection's). */
static void step(cam_t *c, ch_media__pull_state_t s)
{
    set_state(&c->pull, s);
    ch_net_conn_deadline(c->pull.conn, STEP_MS, CH_NET_DEADLINE_STEP);
    (void)send_out(c);
}

/* ---- answers ------------------------------------------------------------------------------- */

static int on_describe(cam_t *c)
{
    pull_t *p = &c->pull;
    ch_proto_sdp_t sdp;
    if (ch_proto_sdp_parse(p->rtsp.sdp.data, p->rtsp.sdp.len, &sdp) != 0) {
        fail(c, "the camera's SDP is malformed");
        return -1;
    }
    const ch_proto_sdp_media_t *m = NULL;
    const ch_proto_sdp_format_t *f = NULL;
    ch_codec_kind_t kind = 0;
    for (size_t i = 0; i < sdp.num_media && m == NULL; i++) {
        if (!ch_slice_eq_nocase(sdp.media[i].type, "video")) {
            continue; /* audio is never pulled (PIPA Art. 25) */
        }
        for (size_t k = 0; k < sdp.media[i].num_formats; k++) {
            const ch_proto_sdp_format_t *ff = &sdp.media[i].formats[k];
            if (ch_slice_eq_nocase(ff->encoding, "H264")) {
                kind = CH_CODEC_H264;
            } else if (ch_slice_eq_nocase(ff->encoding, "H265")) {
                kind = CH_CODEC_H265;
            } else {
                continue;
            }
            m = &sdp.media[i];
            f = ff;
            break;
        }
    }
    if (m == NULL) {
        fail(c, "the camera offers no H.264 or H.265 video track");
        return -1;
    }
    uint16_t udp_port = 0;
    /* Over TLS the video stays in the TLS connection (interleaved): RTP over UDP beside it
     * would cross the network in clear. */
    if (c->loop->relay->cfg.pull_udp && !p->rtsp.tls && !p->rtsp.udp_refused &&
        (p->udp_port != 0 || open_udp(c) == 0)) {
        udp_port = p->udp_port;
    }
    ch_proto_rtsp_client_setup(&p->rtsp, sdp.control, m->control, udp_port);
    if (p->rtsp.state == CH_PROTO_RTSP_CLIENT_FAILED) {
        fail(c, "%s", p->rtsp.error);
        return -1;
    }
    p->pt = f->pt;
    ch_media__cam_codec_reset(c); /* the assembler reads the codec state about to be reset */
    ch_codec_stream_init(&p->codec, kind);
    if (f->fmtp.len > 0 && ch_codec_stream_set_fmtp(&p->codec, f->fmtp.ptr, f->fmtp.len) != 0) {
        ch_log(CH_LOG_INFO, "media", "msg=\"camera fmtp not understood\" camera=%lld",
               (long long)c->id);
    }
    c->kind = kind;
    /* What viewers get: one video track, our controls, the camera's format line. */
    ch_buf_t s;
    ch_buf_init(&s);
    ch_buf_appendf(&s,
                   "v=0\r\no=- %lld 1 IN IP4 0.0.0.0\r\ns=cctvhub camera %lld\r\n"
                   "c=IN IP4 0.0.0.0\r\nt=0 0\r\na=tool:cctvhub\r\na=range:npt=now-\r\n"
                   "a=control:*\r\nm=video 0 RTP/AVP %u\r\n",
                   (long long)c->id, (long long)c->id, (unsigned)f->pt);
    if (m->bandwidth.len > 0) {
        ch_buf_appendf(&s, "b=%.*s\r\n", (int)m->bandwidth.len, m->bandwidth.ptr);
    }
    ch_buf_appendf(&s, "a=rtpmap:%u %s/%u\r\n", (unsigned)f->pt,
                   kind == CH_CODEC_H264 ? "H264" : "H265",
                   f->clock_rate > 0 ? f->clock_rate : 90000u);
    if (f->fmtp.len > 0) {
        ch_buf_appendf(&s, "a=fmtp:%u %.*s\r\n", (unsigned)f->pt, (int)f->fmtp.len, f->fmtp.ptr);
    }
    ch_buf_append_str(&s, "a=control:trackID=0\r\n");
    char *text = ch_buf_steal(&s);
    if (c->sdp == NULL || strcmp(c->sdp, text) != 0) {
        ch_free(c->sdp);
        c->sdp = text;
    } else {
        ch_free(text);
    }
    step(c, PULL_SETUP);
    return 0;
}

static void on_play(cam_t *c)
{
    pull_t *p = &c->pull;
    int64_t now = ch_media__now_ms();
    set_state(p, PULL_PLAYING);
    /* From here the tick watches for stalls (no valid video for relay.stall_s). */
    ch_net_conn_deadline(p->conn, 0, CH_NET_DEADLINE_STEP);
    p->last_rx_ms = now;
    p->next_keepalive_ms = now + (int64_t)p->rtsp.session_timeout * 500;
    p->new_session = 1;
    p->confirmed = 0;
    p->cand_count = 0;
    ch_buf_reset(&p->pend);
    p->last_error[0] = '\0';
    ch_log(CH_LOG_INFO, "media", "msg=\"camera playing\" camera=%lld", (long long)c->id);
    ch_media__cam_ready(c);
}

/* The session read a whole answer: follows it to its next step, or to its end. 0, or -1 when
 * the connection is gone. */
static int on_response(cam_t *c)
{
    pull_t *p = &c->pull;
    ch_proto_rtsp_client_t *s = &p->rtsp;
    switch (s->state) {
    case CH_PROTO_RTSP_CLIENT_REDIRECTED:
        snprintf(p->url, sizeof(p->url), "%s", s->redirect);
        ch_log(CH_LOG_INFO, "media", "msg=\"camera redirected\" camera=%lld", (long long)c->id);
        close_sock(p);
        pull_connect(c);
        return -1;
    case CH_PROTO_RTSP_CLIENT_DESCRIBED:
        return on_describe(c);
    case CH_PROTO_RTSP_CLIENT_DESCRIBE:
        if (p->state == PULL_OPTIONS) {
            step(c, PULL_DESCRIBE);
            return p->conn != NULL ? 0 : -1;
        }
        break;
    case CH_PROTO_RTSP_CLIENT_SETUP:
        if (s->udp_refused && p->udp_port != 0) {
            close_udp(p); /* Unsupported Transport: this camera does TCP only */
        }
        break;
    case CH_PROTO_RTSP_CLIENT_PLAY:
        if (p->state == PULL_SETUP) {
            if (s->tcp) {
                close_udp(p); /* it chose TCP over our UDP offer: fine */
            }
            step(c, PULL_PLAY);
            return p->conn != NULL ? 0 : -1;
        }
        break;
    case CH_PROTO_RTSP_CLIENT_PLAYING:
        if (p->state != PULL_PLAYING) {
            on_play(c);
        }
        return 0;
    default:
        break;
    }
    /* The same step (a request sent again with an answer to a challenge), or a failure. */
    return send_out(c) == 0 && p->conn != NULL ? 0 : -1;
}

/* ---- media --------------------------------------------------------------------------------- */

/* A packet of the confirmed source: inspected, renumbered, stored. 1 when stored. */
static int accept_rtp(cam_t *c, uint8_t *pkt, size_t len, const ch_codec_rtp_t *r, int64_t now)
{
    pull_t *p = &c->pull;
    ch_codec_rtp_t rtp = *r;
    ch_codec_pkt_t info;
    int crc = ch_media__cam_inspect(c, &rtp, &info);
    if (crc != 0 && crc != CH_EUNSUPP) {
        return 0; /* malformed: forwarded by no one (a valid but unread payload goes on) */
    }
    if (p->new_session) {
        if (p->have_out) {
            int64_t gap = now - p->out_mono_ms;
            p->seq_delta = (uint16_t)(p->out_seq + 1u - rtp.seq);
            p->ts_delta =
                (uint32_t)(p->out_ts + (uint32_t)((gap > 0 ? gap : 1) * 90) - rtp.timestamp);
        } else {
            uint8_t rb[4];
            if (getrandom(rb, sizeof(rb), 0) != (ssize_t)sizeof(rb)) {
                memset(rb, 0x5a, sizeof(rb));
            }
            p->ssrc = (uint32_t)rb[0] << 24 | (uint32_t)rb[1] << 16 | (uint32_t)rb[2] << 8 | rb[3];
            p->seq_delta = 0;
            p->ts_delta = 0;
            p->have_out = 1;
        }
        p->new_session = 0;
    }
    p->out_seq = (uint16_t)(rtp.seq + p->seq_delta);
    p->out_ts = rtp.timestamp + p->ts_delta;
    p->out_mono_ms = now;
    pkt[2] = (uint8_t)(p->out_seq >> 8);
    pkt[3] = (uint8_t)p->out_seq;
    pkt[4] = (uint8_t)(p->out_ts >> 24);
    pkt[5] = (uint8_t)(p->out_ts >> 16);
    pkt[6] = (uint8_t)(p->out_ts >> 8);
    pkt[7] = (uint8_t)p->out_ts;
    pkt[8] = (uint8_t)(p->ssrc >> 24);
    pkt[9] = (uint8_t)(p->ssrc >> 16);
    pkt[10] = (uint8_t)(p->ssrc >> 8);
    pkt[11] = (uint8_t)p->ssrc;
    if (info.flags & CH_CODEC_PKT_AU_END) {
        c->frames++;
    }
    if (info.flags & CH_CODEC_PKT_KEYFRAME) {
        c->keyframes++;
        if (c->keyframes > 1) {
            c->gop_frames = (uint32_t)(c->frames - c->frames_at_key);
        }
        c->frames_at_key = c->frames;
        if (!p->got_key_this_session) {
            p->got_key_this_session = 1;
            p->first_key_ms = now - p->connect_mono_ms;
            p->backoff_ms = BACKOFF_MIN;
        }
    }
    unsigned flags =
        info.flags & (CH_CODEC_PKT_AU_START | CH_CODEC_PKT_AU_END | CH_CODEC_PKT_KEYFRAME);
    if (ch_media_stream_push(c->store, 0, pkt, len, flags) < 0) {
        return 0;
    }
    c->bytes_in += len;
    c->packets_in++;
    c->unflushed += len;
    if (info.flags & CH_CODEC_PKT_AU_END) {
        c->flush_due = 1;
    }
    ch_media__cam_stored(c);
    return 1;
}

/*
 * One source at a time. A source (an SSRC) is taken once three of its packets came in
 * sequence; its first two wait in `pend` meanwhile, so nothing of it is lost. Random bytes
 * sometimes pass as RTP of the right payload type, never three in sequence: garbage never
 * opens a session, and never reaches a viewer. A camera that goes on with a new SSRC (its
 * encoder restarted, a new resolution) is followed the same way, renumbered so that viewers
 * see one continuous stream.
 */
static int on_rtp(cam_t *c, uint8_t *pkt, size_t len, int64_t now)
{
    pull_t *p = &c->pull;
    ch_codec_rtp_t rtp;
    if (ch_codec_rtp_parse(pkt, len, &rtp) != 0 || rtp.payload_type != p->pt) {
        return 0;
    }
    if (p->confirmed && rtp.ssrc == p->in_ssrc) {
        return accept_rtp(c, pkt, len, &rtp, now);
    }
    if (p->cand_count > 0 && rtp.ssrc == p->cand_ssrc && rtp.seq == (uint16_t)(p->cand_seq + 1u)) {
        p->cand_count++;
    } else {
        p->cand_ssrc = rtp.ssrc;
        p->cand_count = 1;
        ch_buf_reset(&p->pend);
    }
    p->cand_seq = rtp.seq;
    if (p->cand_count < 3) {
        uint32_t n = (uint32_t)len;
        ch_buf_append(&p->pend, &n, sizeof(n));
        ch_buf_append(&p->pend, pkt, len);
        return 0;
    }
    if (p->confirmed) {
        ch_media__cam_break(c); /* the old source's unfinished frame */
    }
    p->confirmed = 1;
    p->in_ssrc = rtp.ssrc;
    p->new_session = 1; /* renumbered from here, as after a reconnect */
    p->cand_count = 0;
    int any = 0;
    for (size_t off = 0; off + sizeof(uint32_t) <= p->pend.len;) {
        uint32_t n;
        memcpy(&n, p->pend.data + off, sizeof(n));
        uint8_t *q = (uint8_t *)p->pend.data + off + sizeof(n);
        ch_codec_rtp_t qr;
        if (ch_codec_rtp_parse(q, n, &qr) == 0) {
            any |= accept_rtp(c, q, n, &qr, now);
        }
        off += sizeof(n) + n;
    }
    ch_buf_reset(&p->pend);
    return accept_rtp(c, pkt, len, &rtp, now) | any;
}

/* Consumes whole messages and frames from the connection's buffer, parsed in place (a video
 * packet's header is renumbered there before it is stored); stops when the connection changed
 * (a failure, a redirect). */
static void on_conn_read(ch_net_conn_t *conn)
{
    cam_t *c = conn->data;
    pull_t *p = &c->pull;
    size_t off = 0;
    int pushed = 0;
    int64_t now = ch_media__now_ms();
    while (off < conn->in_len && p->conn == conn) {
        const char *b = (const char *)conn->in + off;
        size_t len = conn->in_len - off;
        ch_proto_interleaved_t f;
        int r = ch_proto_interleaved_read(b, len, &f);
        if (r > 0) {
            if (f.channel == p->rtsp.rtp_ch && p->state == PULL_PLAYING) {
                /* Only video the codec module accepts counts as life: a camera sending
                 * garbage in well-formed frames is as stalled as a silent one. */
                if (on_rtp(c, (uint8_t *)f.payload.ptr, f.payload.len, now)) {
                    pushed = 1;
                    p->last_rx_ms = now;
                    p->bad_packets = 0;
                } else {
                    p->bad_packets++;
                }
            }
            off += (size_t)r;
            continue;
        }
        if (r == CH_EAGAIN) {
            break;
        }
        if (r == CH_EPARSE) {
            fail(c, "the camera sent bytes that are neither RTSP nor interleaved RTP");
            break;
        }
        int total = ch_proto_rtsp_client_read(&p->rtsp, b, len);
        if (total == CH_EAGAIN) {
            break;
        }
        if (total < 0) {
            fail(c, "%s", p->rtsp.error);
            break;
        }
        off += (size_t)total;
        if (on_response(c) != 0) {
            break;
        }
    }
    if (p->conn == conn) {
        ch_net_conn_consume(conn, off);
    }
    /* Viewers get whole frames: one writev each per frame, however the camera's bytes were
     * cut into reads (a camera writing packet by packet would otherwise cost one writev per
     * packet per viewer). A frame that never ends goes out at 256 KiB, or on the tick. */
    if (pushed && (c->flush_due || c->unflushed >= 256 * 1024)) {
        ch_media__cam_flush(c);
    }
}

static void on_conn_error(ch_net_conn_t *conn, int status)
{
    cam_t *c = conn->data;
    pull_t *p = &c->pull;
    const char *tls_why = ch_net_conn_tls_error(conn);
    if (status == UV_ETIMEDOUT && p->rtsp.tls && !ch_net_conn_tls_ready(conn)) {
        fail(c, "TLS: the camera's handshake did not end in time");
    } else if (tls_why != NULL) {
        /* "certificate rejected" (not the pinned key), "hostname mismatch", "unable to get
         * local issuer certificate" (a CA the hub does not trust) */
        fail(c, "TLS: %s", tls_why);
    } else if (status == UV_ETIMEDOUT) {
        fail(c, "the camera did not answer within %d s (%s)", STEP_MS / 1000,
             p->state == PULL_OPTIONS    ? "OPTIONS"
             : p->state == PULL_DESCRIBE ? "DESCRIBE"
             : p->state == PULL_SETUP    ? "SETUP"
             : p->state == PULL_PLAY     ? "PLAY"
                                         : "connect");
    } else if (status == UV_ENOBUFS) {
        fail(c, "the camera's input does not parse"); /* its buffer full, nothing whole */
    } else if (status == UV_EOF) {
        fail(c, "the camera closed the connection");
    } else {
        fail(c, "camera socket: %s", uv_strerror(status));
    }
}

/* ---- RTP over UDP (relay.pull_transport = udp) ------------------------------------------------
 */

static void on_udp(ch_media__sock_t *s, int status, int events)
{
    (void)events;
    cam_t *c = s->owner;
    pull_t *p = &c->pull;
    if (status < 0) {
        return;
    }
    static _Thread_local uint8_t buf[65536];
    int pushed = 0;
    int64_t now = ch_media__now_ms();
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(s->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n < 0) {
            break; /* EAGAIN: drained */
        }
        /* Only the camera's packets, and only RTP (RTCP on the odd port is read and dropped). */
        if (s != p->udp[0] || p->state != PULL_PLAYING || !same_host(&from, &p->peer)) {
            continue;
        }
        if (on_rtp(c, buf, (size_t)n, now)) {
            pushed = 1;
            p->last_rx_ms = now;
            p->bad_packets = 0;
        } else {
            p->bad_packets++;
        }
    }
    if (pushed && (c->flush_due || c->unflushed >= 256 * 1024)) {
        ch_media__cam_flush(c);
    }
}

/* Two UDP sockets on an even port and the next (RFC 3550), on the address family of the
 * camera's connection. 0, or -1 (the SETUP then asks for TCP). */
static int open_udp(cam_t *c)
{
    pull_t *p = &c->pull;
    int fam = p->peer.ss_family == AF_INET6 ? AF_INET6 : AF_INET;
    for (int attempt = 0; attempt < 32; attempt++) {
        int fd[2] = {-1, -1};
        uint16_t port = 0;
        for (int i = 0; i < 2; i++) {
            fd[i] = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof(ss));
            socklen_t sl;
            if (fam == AF_INET6) {
                ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(i == 0 ? 0 : (uint16_t)(port + 1));
                sl = sizeof(struct sockaddr_in6);
            } else {
                ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
                ((struct sockaddr_in *)&ss)->sin_port = htons(i == 0 ? 0 : (uint16_t)(port + 1));
                sl = sizeof(struct sockaddr_in);
            }
            if (fd[i] < 0 || bind(fd[i], (struct sockaddr *)&ss, sl) != 0) {
                break;
            }
            if (i == 0) {
                socklen_t bl = sizeof(ss);
                if (getsockname(fd[0], (struct sockaddr *)&ss, &bl) != 0) {
                    break;
                }
                port = ntohs(fam == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
                if (port % 2 != 0 || port == 65535) {
                    break; /* RTP wants an even port */
                }
            }
        }
        if (fd[0] >= 0 && fd[1] >= 0 && port != 0 && port % 2 == 0) {
            int big = 4 << 20;
            (void)setsockopt(fd[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
            for (int i = 0; i < 2; i++) {
                p->udp[i] = ch_media__sock_new(c->loop, fd[i], c, on_udp);
                if (p->udp[i] == NULL) {
                    close(fd[i]);
                } else {
                    ch_media__sock_want(p->udp[i], UV_READABLE);
                }
            }
            if (p->udp[0] == NULL || p->udp[1] == NULL) {
                close_udp(p);
                return -1;
            }
            p->udp_port = port;
            return 0;
        }
        for (int i = 0; i < 2; i++) {
            if (fd[i] >= 0) {
                close(fd[i]);
            }
        }
    }
    return -1;
}

/* ---- connecting ---------------------------------------------------------------------------- */

/* A dial in flight (net's client: the lookup, the connect and their deadline), on the heap so
 * that a pull that fails, retries or stops meanwhile just forgets it; it frees itself once its
 * handles are closed. */
typedef struct pull_dial {
    ch_net_dial_t dial;
    cam_t *cam; /* NULL once the pull forgot it */
} pull_dial_t;

static void on_dial_closed(ch_net_dial_t *d)
{
    ch_free(d->data);
}

/* The pull no longer waits for its dial (a failure, a retry, the stop): cancelled. */
static void forget_dial(pull_t *p)
{
    pull_dial_t *pd = p->resolving;
    if (pd != NULL) {
        p->resolving = NULL;
        pd->cam = NULL;
        ch_net_dial_close(&pd->dial, on_dial_closed);
    }
}

/* The connected socket moves from the dial into net's connection (the rest of the dial's
 * deadline with it), read in place on the camera's loop; the session then asks OPTIONS. */
static void on_dialled(ch_net_dial_t *d, int status)
{
    pull_dial_t *pd = d->data;
    cam_t *c = pd->cam;
    if (c == NULL) {
        return; /* forget_dial closed it */
    }
    pull_t *p = &c->pull;
    p->resolving = NULL;
    pd->cam = NULL;
    if (status != 0) {
        ch_net_dial_close(d, on_dial_closed);
        if (d->resolved) {
            fail(c, "cannot connect to the camera: %s", uv_strerror(status));
        } else {
            fail(c, "cannot resolve the camera's host: %s", uv_strerror(status));
        }
        return;
    }
    ch_net_conn_t *conn = ch_calloc(1, sizeof(*conn));
    conn->data = c;
    conn->on_read = on_conn_read;
    conn->on_error = on_conn_error;
    int rc = ch_net_dial_conn(d, conn, CH_MEDIA__PULL_IN, CH_MEDIA__PULL_OUT, on_dial_closed);
    p->conn = conn;
    if (rc == 0 && p->rtsp.tls) {
        /* The OPTIONS written next waits for the handshake inside the connection. */
        const ch_media_relay_config_t *cfg = &c->loop->relay->cfg;
        rc = ch_net_conn_tls_connect(conn, cfg->pull_tls, p->rtsp.host,
                                     p->src.tls_pin[0] != '\0' ? p->src.tls_pin : NULL,
                                     cfg->pull_handshake_ms);
        if (rc != 0) {
            const char *why = ch_net_conn_tls_error(conn);
            fail(c, "TLS: %s", why != NULL ? why : ch_strerror(rc));
            return;
        }
    }
    if (rc == 0) {
        rc = ch_net_conn_read_start(conn);
    }
    if (rc != 0) {
        fail(c, "cannot take the camera's socket: %s", uv_strerror(rc));
        return;
    }
    (void)uv_tcp_nodelay(&conn->tcp, 1);
    int pl = (int)sizeof(p->peer);
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&p->peer, &pl) != 0) {
        memset(&p->peer, 0, sizeof(p->peer));
    }
    ch_proto_rtsp_client_start(&p->rtsp);
    step(c, PULL_OPTIONS);
}

static void pull_connect(cam_t *c)
{
    pull_t *p = &c->pull;
    if (ch_proto_rtsp_client_begin(&p->rtsp, p->url, p->src.user, p->src.password) != 0) {
        fail(c, "%s", p->rtsp.error);
        return;
    }
    if (p->rtsp.tls && c->loop->relay->cfg.pull_tls == NULL) {
        fail(c, "rtsps:// needs the hub's TLS client, which is not set up");
        return;
    }
    p->got_key_this_session = 0;
    p->connect_mono_ms = ch_media__now_ms();
    set_state(p, PULL_CONNECTING);
    p->next_keepalive_ms = p->connect_mono_ms + STEP_MS;
    forget_dial(p);
    pull_dial_t *pd = ch_calloc(1, sizeof(*pd));
    pd->cam = c;
    pd->dial.data = pd;
    p->resolving = pd;
    /* The step's own deadline (the tick) comes first and names the step; the dial's is a
     * backstop. on_dialled may run before this returns. */
    ch_net_dial_start(&pd->dial, &c->loop->loop, p->rtsp.host, p->rtsp.port,
                      uv_now(&c->loop->loop) + STEP_MS + 1000, on_dialled);
}

void ch_media__pull_start(cam_t *c)
{
    pull_t *p = &c->pull;
    const ch_media_source_t *src = ch_media__cam_source(c);
    if (src == NULL) {
        /* Asked of the control loop: its answer calls this again. Given up on, as a camera
         * that does not answer, after the step's deadline. */
        set_state(p, PULL_SOURCE);
        p->next_keepalive_ms = ch_media__now_ms() + STEP_MS;
        return;
    }
    p->src = *src;
    if (p->src.url[0] == '\0') {
        /* Nothing to pull (most imported cameras): not held warm, gone once no viewer waits. */
        snprintf(p->last_error, sizeof(p->last_error), "the camera has no stream URL");
        set_state(p, PULL_STOPPED);
        c->no_source = 1;
        ch_media__cam_failed(c);
        return;
    }
    c->no_source = 0;
    snprintf(p->url, sizeof(p->url), "%s", p->src.url);
    if (p->backoff_ms == 0) {
        p->backoff_ms = BACKOFF_MIN;
    }
    if (p->rtsp.user_agent == NULL) {
        ch_proto_rtsp_client_init(&p->rtsp, "cctvhub", 1);
    }
    p->rtsp.redirects = 0;
    pull_connect(c);
}

/* Ends the camera's session politely when one is playing (TEARDOWN, best effort: the
 * connection closes anyway), closes the connection and forgets a name being resolved. */
static void end_session(pull_t *p)
{
    if (p->conn != NULL && p->state == PULL_PLAYING &&
        p->rtsp.state == CH_PROTO_RTSP_CLIENT_PLAYING && p->rtsp.session[0] != '\0') {
        ch_proto_rtsp_client_teardown(&p->rtsp);
        int rc = ch_net_conn_send(p->conn, p->rtsp.out.data, p->rtsp.out.len);
        CH_UNUSED(rc); /* the connection closes anyway */
        ch_buf_reset(&p->rtsp.out);
    }
    close_sock(p);
    forget_dial(p);
}

void ch_media__pull_stop(cam_t *c)
{
    pull_t *p = &c->pull;
    end_session(p);
    ch_buf_fini(&p->pend);
    ch_proto_rtsp_client_fini(&p->rtsp);
    set_state(p, PULL_STOPPED);
}

void ch_media__pull_restart(cam_t *c)
{
    pull_t *p = &c->pull;
    if (p->state == PULL_STOPPED && c->holds == 0 && c->conns == NULL) {
        return; /* nobody waits: the next start takes the new source anyway */
    }
    end_session(p);
    ch_media__cam_break(c); /* the old session's unfinished frame */
    /* Connect again at the next tick, at once and without the old backoff: the new settings
     * deserve a fresh try. Viewers stay, as across any reconnect. */
    p->backoff_ms = BACKOFF_MIN;
    p->retry_at_ms = ch_media__now_ms();
    set_state(p, PULL_BACKOFF);
    ch_log(CH_LOG_INFO, "media",
           "msg=\"camera pull restarts: its stream settings changed\" camera=%lld",
           (long long)c->id);
}

void ch_media__pull_tick(cam_t *c, int64_t now)
{
    pull_t *p = &c->pull;
    switch (p->state) {
    case PULL_STOPPED:
        return;
    case PULL_BACKOFF:
        if (now >= p->retry_at_ms) {
            if (c->holds > 0 || c->conns != NULL) {
                p->reconnects++;
                ch_media__pull_start(c);
            } else {
                set_state(p, PULL_STOPPED);
            }
        }
        return;
    case PULL_PLAYING: {
        int64_t stall = (int64_t)c->loop->relay->cfg.stall_s * 1000;
        if (now - p->last_rx_ms >= stall) {
            if (p->bad_packets > 0) {
                fail(c, "no valid video for %u s (%llu packets that are not the camera's video)",
                     c->loop->relay->cfg.stall_s, (unsigned long long)p->bad_packets);
            } else {
                fail(c, "stalled: no packet for %u s", c->loop->relay->cfg.stall_s);
            }
            return;
        }
        if (now >= p->next_keepalive_ms) {
            p->next_keepalive_ms = now + (int64_t)p->rtsp.session_timeout * 500;
            ch_proto_rtsp_client_keepalive(&p->rtsp);
            (void)send_out(c);
        }
        return;
    }
    case PULL_SOURCE:
        if (now >= p->next_keepalive_ms) {
            c->src_state = SRC_UNKNOWN; /* asked again at the retry */
            fail(c, "the hub did not give the camera's source within %d s", STEP_MS / 1000);
        }
        return;
    case PULL_CONNECTING:
        /* The steps after it have the connection's deadline (on_conn_error). */
        if (now >= p->next_keepalive_ms) {
            fail(c, "the camera did not answer within %d s (connect)", STEP_MS / 1000);
        }
        return;
    default:
        return;
    }
}
