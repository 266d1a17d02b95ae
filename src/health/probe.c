/*
 * health/probe.c: one camera probe, an RTSP/1.0 client of two requests on the control loop.
 *
 * Connect (non-blocking libuv TCP; a host name through uv_getaddrinfo on the pool), OPTIONS,
 * then DESCRIBE with Accept: application/sdp; a 401 is answered once with Basic or Digest
 * (proto's challenge parser and answer builder, as the relay's pull does) and a second 401
 * means the credentials are refused. The DESCRIBE answer's SDP names the codec of the first
 * video track. No SETUP: a probe never starts a stream, so it costs the camera one short
 * connection and two answers. Everything within one deadline (health.probe_timeout_s).
 */
#include "health/health_internal.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define PROBE_IN    (64 * 1024) /* a head and an SDP; more is not a camera's DESCRIBE answer */
#define MAX_HEADERS 48

enum { STEP_CONNECT = 0, STEP_OPTIONS = 1, STEP_DESCRIBE = 2 };

struct ch_health__probe {
    ch_health__probe_t *next, **prev; /* the runner's list of running probes */
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int tcp_open, resolving, open_handles, done;
    int64_t camera_id;
    char wire[1024]; /* the URL without userinfo, as on the request line */
    char user[128], pass[128];
    uint16_t port;
    int step;
    uint32_t cseq;
    char challenge[1024];
    int has_challenge;
    uint32_t nc;
    uint64_t t0_ns;
    ch_buf_t out; /* the request being written (one at a time) */
    size_t in_len;
    char in[PROBE_IN];
    ch_health__probe_cb cb;
    void *ud;
};

static void maybe_free(ch_health__probe_t *p)
{
    if (p->done && p->open_handles == 0 && !p->resolving) {
        ch_buf_fini(&p->out);
        ch_free(p);
    }
}

static void on_closed(uv_handle_t *hd)
{
    ch_health__probe_t *p = hd->data;
    p->open_handles--;
    maybe_free(p);
}

/* Reports the outcome once, then closes the probe's handles. */
static void finish(ch_health__probe_t *p, ch_health_outcome_t outcome, const char *codec,
                   const char *fmt, ...) CH_PRINTF(4, 5);
static void finish(ch_health__probe_t *p, ch_health_outcome_t outcome, const char *codec,
                   const char *fmt, ...)
{
    if (p->done) {
        return;
    }
    p->done = 1;
    if (p->prev != NULL) {
        *p->prev = p->next;
        if (p->next != NULL) {
            p->next->prev = p->prev;
        }
        p->prev = NULL;
    }
    char reason[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    ch_health_probe_result_t r = {
        .outcome = outcome,
        .latency_s = (double)(ch_time_mono_ns() - p->t0_ns) / 1e9,
        .codec = codec,
        .reason = reason,
    };
    if (p->cb != NULL) {
        p->cb(p->ud, p->camera_id, &r);
    }
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_closed);
    if (p->tcp_open) {
        p->tcp_open = 0;
        uv_close((uv_handle_t *)&p->tcp, on_closed);
    }
    if (p->resolving) {
        (void)uv_cancel((uv_req_t *)&p->gai); /* its callback still runs, and frees */
    }
    maybe_free(p);
}

void ch_health__probe_abort(ch_health__probe_t *p)
{
    finish(p, CH_HEALTH_PROBE_FAILED, NULL, "aborted");
}

/* ---- requests ------------------------------------------------------------------------------ */

static void on_written(uv_write_t *w, int status)
{
    ch_health__probe_t *p = w->data;
    if (status < 0 && status != UV_ECANCELED) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "write to the camera: %s", uv_strerror(status));
    }
}

static void send_step(ch_health__probe_t *p)
{
    const char *method = p->step == STEP_OPTIONS ? "OPTIONS" : "DESCRIBE";
    ch_buf_reset(&p->out);
    ch_buf_appendf(&p->out, "%s %s RTSP/1.0\r\nCSeq: %u\r\nUser-Agent: cctvhub-health\r\n", method,
                   p->wire, ++p->cseq);
    if (p->step == STEP_DESCRIBE) {
        ch_buf_append_str(&p->out, "Accept: application/sdp\r\n");
    }
    if (p->has_challenge) {
        ch_proto_auth_challenge_t ch;
        if (ch_proto_auth_parse_challenge((ch_slice_t){p->challenge, strlen(p->challenge)}, &ch) !=
            0) {
            finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the camera's challenge cannot be answered");
            return;
        }
        uint8_t rb[8];
        char cnonce[17];
        if (getrandom(rb, sizeof(rb), 0) != (ssize_t)sizeof(rb)) {
            uint64_t t = ch_time_mono_ns();
            memcpy(rb, &t, sizeof(rb));
        }
        for (int i = 0; i < 8; i++) {
            snprintf(cnonce + 2 * i, 3, "%02x", rb[i]);
        }
        ch_proto_auth_request_t ar = {
            .user = {p->user, strlen(p->user)},
            .password = {p->pass, strlen(p->pass)},
            .method = method,
            .uri = {p->wire, strlen(p->wire)},
            .cnonce = {cnonce, 16},
            .nc = ++p->nc,
        };
        ch_buf_append_str(&p->out, "Authorization: ");
        if (ch_proto_auth_authorization(&ch, &ar, &p->out) != 0) {
            finish(p, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                   "the credentials cannot be sent in the camera's authentication scheme");
            return;
        }
        ch_buf_append_str(&p->out, "\r\n");
    }
    ch_buf_append_str(&p->out, "\r\n");
    uv_buf_t b = uv_buf_init(p->out.data, (unsigned)p->out.len);
    p->wr.data = p;
    int rc = uv_write(&p->wr, (uv_stream_t *)&p->tcp, &b, 1, on_written);
    if (rc != 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "write to the camera: %s", uv_strerror(rc));
    }
}

/* ---- answers ------------------------------------------------------------------------------- */

/* The codec of the first video track of an SDP: its rtpmap name in capitals ("H264"), or
 * "pt<N>" for a static payload type without one. 0, or -1 when there is no video track. */
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
            out[k] = (char)toupper((unsigned char)f->encoding.ptr[k]);
        }
        out[n] = '\0';
        return 0;
    }
    return -1;
}

/* One whole answer. Returns 1 when the probe ended. */
static int on_answer(ch_health__probe_t *p, const ch_proto_response_t *r, ch_slice_t body)
{
    if (r->status == 401) {
        ch_proto_auth_challenge_t ch;
        if (ch_proto_auth_pick(r->headers, r->num_headers, &ch) != 0) {
            finish(p, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                   "401 without a challenge the hub can answer");
            return 1;
        }
        if (p->user[0] == '\0') {
            finish(p, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                   "the camera asks for credentials and none are configured");
            return 1;
        }
        if (p->has_challenge && !ch.stale) {
            finish(p, CH_HEALTH_PROBE_AUTH_FAILED, NULL,
                   "the camera refused the credentials (401)");
            return 1;
        }
        const ch_proto_header_t *hv = NULL;
        for (size_t i = 0; i < r->num_headers; i++) {
            const ch_proto_header_t *x = &r->headers[i];
            if (ch_slice_eq_nocase(x->name, "www-authenticate") && x->value.ptr <= ch.realm.ptr &&
                ch.realm.ptr <= x->value.ptr + x->value.len) {
                hv = x;
            }
        }
        if (hv == NULL || hv->value.len >= sizeof(p->challenge)) {
            finish(p, CH_HEALTH_PROBE_AUTH_FAILED, NULL, "the camera's challenge is too long");
            return 1;
        }
        memcpy(p->challenge, hv->value.ptr, hv->value.len);
        p->challenge[hv->value.len] = '\0';
        p->has_challenge = 1;
        p->nc = 0;
        send_step(p);
        return p->done;
    }
    if (p->step == STEP_OPTIONS) {
        /* Some cameras fail OPTIONS and still play: DESCRIBE decides. */
        p->step = STEP_DESCRIBE;
        send_step(p);
        return p->done;
    }
    if (r->status != 200) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "DESCRIBE answered %d %.*s", r->status,
               (int)(r->reason.len < 60 ? r->reason.len : 60), r->reason.ptr);
        return 1;
    }
    char codec[16];
    int rc = sdp_codec(body, codec, sizeof(codec));
    if (rc == -2) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the camera's SDP is malformed");
    } else if (rc != 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the camera offers no video track");
    } else {
        finish(p, CH_HEALTH_PROBE_OK, codec, "ok");
    }
    return 1;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
    ch_health__probe_t *p = hd->data;
    CH_UNUSED(suggested);
    *b = uv_buf_init(p->in + p->in_len, (unsigned)(sizeof(p->in) - p->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    ch_health__probe_t *p = s->data;
    CH_UNUSED(b);
    if (p->done) {
        return;
    }
    if (n < 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "%s",
               n == UV_EOF ? "the camera closed the connection" : uv_strerror((int)n));
        return;
    }
    p->in_len += (size_t)n;
    size_t off = 0;
    while (off < p->in_len && !p->done) {
        ch_proto_header_t hdrs[MAX_HEADERS];
        ch_proto_response_t resp;
        const char *q = p->in + off;
        size_t len = p->in_len - off;
        int hl = ch_proto_parse_response(q, len, &resp, hdrs, MAX_HEADERS);
        if (hl == CH_EAGAIN) {
            break;
        }
        if (hl < 0) {
            finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the camera's answer is not RTSP");
            return;
        }
        ch_slice_t body;
        int total = ch_proto_split_body(q, len, (size_t)hl, hdrs, resp.num_headers,
                                        sizeof(p->in) / 2, &body);
        if (total == CH_EAGAIN) {
            break;
        }
        if (total < 0) {
            finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the camera's answer has a bad body");
            return;
        }
        off += (size_t)total;
        if (on_answer(p, &resp, body)) {
            return;
        }
    }
    if (p->done) {
        return;
    }
    memmove(p->in, p->in + off, p->in_len - off);
    p->in_len -= off;
    if (p->in_len == sizeof(p->in)) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the camera's answer is too long");
    }
}

/* ---- connecting ---------------------------------------------------------------------------- */

static void on_connected(uv_connect_t *req, int status)
{
    ch_health__probe_t *p = req->data;
    if (p->done) {
        return;
    }
    if (status < 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "cannot connect to the camera: %s",
               status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
        return;
    }
    (void)uv_tcp_nodelay(&p->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    if (rc != 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "cannot read from the camera: %s", uv_strerror(rc));
        return;
    }
    p->step = STEP_OPTIONS;
    send_step(p);
}

static void connect_to(ch_health__probe_t *p, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(p->loop, &p->tcp);
    if (rc != 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "socket: %s", uv_strerror(rc));
        return;
    }
    p->tcp.data = p;
    p->tcp_open = 1;
    p->open_handles++;
    p->conn.data = p;
    rc = uv_tcp_connect(&p->conn, &p->tcp, sa, on_connected);
    if (rc != 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "cannot connect to the camera: %s",
               uv_strerror(rc));
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ch_health__probe_t *p = req->data;
    p->resolving = 0;
    if (p->done) {
        uv_freeaddrinfo(res);
        maybe_free(p);
        return;
    }
    if (status != 0 || res == NULL) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "cannot resolve the camera's host: %s",
               uv_strerror(status));
    } else {
        struct sockaddr_storage ss;
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        if (ss.ss_family == AF_INET6) {
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(p->port);
        } else {
            ((struct sockaddr_in *)&ss)->sin_port = htons(p->port);
        }
        connect_to(p, (struct sockaddr *)&ss);
    }
    uv_freeaddrinfo(res);
}

static void on_timeout(uv_timer_t *t)
{
    ch_health__probe_t *p = t->data;
    static const char *const what[] = {"connect", "OPTIONS", "DESCRIBE"};
    finish(p, CH_HEALTH_PROBE_FAILED, NULL, "no answer within %.0f s (%s)",
           (double)uv_timer_get_repeat(t) / 1000.0 + 0.0, what[p->step]);
}

void ch_health__probe_start(uv_loop_t *loop, ch_health__probe_t **list, int64_t camera_id,
                            const char *url, const char *user, const char *password,
                            uint64_t timeout_ms, ch_health__probe_cb cb, void *ud)
{
    ch_health__probe_t *p = ch_calloc(1, sizeof(*p));
    p->next = *list;
    if (p->next != NULL) {
        p->next->prev = &p->next;
    }
    p->prev = list;
    *list = p;
    p->loop = loop;
    p->camera_id = camera_id;
    p->cb = cb;
    p->ud = ud;
    p->t0_ns = ch_time_mono_ns();
    ch_buf_init(&p->out);
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->open_handles = 1;
    /* The repeat value only carries the deadline for the message; the timer fires once. */
    uv_timer_set_repeat(&p->timer, timeout_ms);
    uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);

    ch_proto_url_t u;
    if (url == NULL || ch_proto_url_parse(url, strlen(url), &u) != 0) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the stream URL is not a valid rtsp:// URL");
        return;
    }
    if (u.scheme.len != 4) {
        finish(p, CH_HEALTH_PROBE_FAILED, NULL, "rtsps:// is not supported yet");
        return;
    }
    ch_buf_t wb;
    ch_buf_init(&wb);
    ch_proto_url_append(&u, CH_PROTO_URL_WIRE, &wb);
    snprintf(p->wire, sizeof(p->wire), "%.*s", (int)wb.len, wb.data);
    ch_buf_fini(&wb);
    if (u.has_userinfo) {
        if (ch_proto_url_decode(u.user, p->user, sizeof(p->user)) < 0 ||
            ch_proto_url_decode(u.password, p->pass, sizeof(p->pass)) < 0) {
            finish(p, CH_HEALTH_PROBE_FAILED, NULL, "the stream URL's credentials are malformed");
            return;
        }
    } else {
        snprintf(p->user, sizeof(p->user), "%s", user != NULL ? user : "");
        snprintf(p->pass, sizeof(p->pass), "%s", password != NULL ? password : "");
    }
    p->port = u.port;
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)u.host.len, u.host.ptr);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(host, u.port, &a4) == 0) {
        connect_to(p, (const struct sockaddr *)&a4);
    } else if (uv_ip6_addr(host, u.port, &a6) == 0) {
        connect_to(p, (const struct sockaddr *)&a6);
    } else {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        p->gai.data = p;
        int rc = uv_getaddrinfo(loop, &p->gai, on_resolved, host, NULL, &hints);
        if (rc != 0) {
            finish(p, CH_HEALTH_PROBE_FAILED, NULL, "cannot resolve the camera's host: %s",
                   uv_strerror(rc));
            return;
        }
        p->resolving = 1;
    }
}
