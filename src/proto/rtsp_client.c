/*
 * An RTSP/1.0 client session without I/O (proto.h): the requests a camera is asked and the
 * reading of its answers, for the relay's pull and the health probe alike. The caller owns
 * the connection: it connects to host and port, writes out, and hands every answer to read.
 *
 * The rules the two clients used to keep apart, in one place: OPTIONS is asked first and its
 * answer never ends the session (some cameras fail it and still play); a 401 is answered with
 * the strongest challenge we support and the same credentials, again only for a stale nonce
 * (or auth_retries times), and at most three times per connection; a 3xx is followed to its
 * rtsp:// Location at most CH_PROTO_RTSP_CLIENT_MAX_REDIRECTS times per session.
 */
#include "proto/proto.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define MAX_HEADERS    48
#define MAX_CHALLENGES 3 /* answered per connection, stale nonces included */

static void copy_slice(char *out, size_t cap, ch_slice_t s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(out, s.ptr, n);
    out[n] = '\0';
}

static void set_str(char *out, size_t cap, const char *s)
{
    copy_slice(out, cap, (ch_slice_t){s != NULL ? s : "", s != NULL ? strlen(s) : 0});
}

/* Ends the session: state FAILED, out emptied, the reason kept. */
static void fail(ch_proto_rtsp_client_t *c, unsigned auth, const char *fmt, ...) CH_PRINTF(3, 4);
static void fail(ch_proto_rtsp_client_t *c, unsigned auth, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    c->state = CH_PROTO_RTSP_CLIENT_FAILED;
    c->auth_failed = auth;
    ch_buf_reset(&c->out);
}

void ch_proto_rtsp_client_init(ch_proto_rtsp_client_t *c, const char *user_agent,
                               unsigned auth_retries)
{
    memset(c, 0, sizeof(*c));
    c->user_agent = user_agent;
    c->auth_retries = auth_retries;
    ch_buf_init(&c->sdp);
    ch_buf_init(&c->out);
}

void ch_proto_rtsp_client_fini(ch_proto_rtsp_client_t *c)
{
    ch_buf_fini(&c->sdp);
    ch_buf_fini(&c->out);
}

int ch_proto_rtsp_client_begin(ch_proto_rtsp_client_t *c, const char *url, const char *user,
                               const char *password)
{
    char text[sizeof(c->redirect)]; /* url may be c->redirect */
    set_str(text, sizeof(text), url);
    c->state = CH_PROTO_RTSP_CLIENT_IDLE;
    c->cseq = 0;
    c->nc = 0;
    c->has_challenge = 0;
    c->challenges = 0;
    c->refusals = 0;
    c->session[0] = '\0';
    c->status = 0;
    c->auth_failed = 0;
    c->error[0] = '\0';
    ch_buf_reset(&c->sdp);
    ch_buf_reset(&c->out);
    ch_proto_url_t u;
    if (url == NULL || ch_proto_url_parse(text, strlen(text), &u) != 0) {
        fail(c, 0,
             c->redirects > 0 ? "redirected to a URL that is not a valid rtsp:// URL"
                              : "the stream URL is not a valid rtsp:// URL");
        return CH_EPARSE;
    }
    /* rtsps:// speaks TLS (the caller's connection carries it). A redirect never leaves TLS
     * for clear text: the credentials and the video would follow it. */
    unsigned tls = u.scheme.len == 5;
    if (c->redirects > 0 && c->tls && !tls) {
        fail(c, 0, "redirected from rtsps:// to rtsp://: refused (the stream would leave TLS)");
        return CH_EPARSE;
    }
    c->tls = tls;
    if (u.has_userinfo) {
        if (ch_proto_url_decode(u.user, c->user, sizeof(c->user)) < 0 ||
            ch_proto_url_decode(u.password, c->pass, sizeof(c->pass)) < 0) {
            fail(c, 0, "the stream URL's credentials are malformed");
            return CH_EPARSE;
        }
    } else {
        set_str(c->user, sizeof(c->user), user);
        set_str(c->pass, sizeof(c->pass), password);
    }
    ch_buf_t wb;
    ch_buf_init(&wb);
    ch_proto_url_append(&u, CH_PROTO_URL_WIRE, &wb);
    copy_slice(c->wire, sizeof(c->wire), (ch_slice_t){wb.data, wb.len});
    ch_buf_fini(&wb);
    copy_slice(c->host, sizeof(c->host), u.host);
    c->port = u.port;
    return 0;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Puts one request in out: the request line, CSeq, User-Agent, Authorization when a challenge
 * is kept (and auth), Session after DESCRIBE, extra header lines. 0, or -1 with state FAILED. */
static int request(ch_proto_rtsp_client_t *c, const char *method, const char *url, int auth,
                   const char *extra)
{
    ch_buf_reset(&c->out);
    ch_buf_appendf(&c->out, "%s %s RTSP/1.0\r\nCSeq: %u\r\n", method, url, ++c->cseq);
    if (c->user_agent != NULL) {
        ch_buf_appendf(&c->out, "User-Agent: %s\r\n", c->user_agent);
    }
    if (auth && c->has_challenge) {
        ch_proto_auth_challenge_t ch;
        if (ch_proto_auth_parse_challenge((ch_slice_t){c->challenge, strlen(c->challenge)}, &ch) !=
            0) {
            fail(c, 0, "the camera's challenge cannot be answered");
            return -1;
        }
        uint8_t rb[8];
        char cnonce[2 * sizeof(rb) + 1];
        if (getrandom(rb, sizeof(rb), 0) != (ssize_t)sizeof(rb)) {
            uint64_t t = ch_time_mono_ns();
            memcpy(rb, &t, sizeof(rb));
        }
        ch_hex_encode(cnonce, sizeof(cnonce), rb, sizeof(rb), 0);
        ch_proto_auth_request_t ar = {
            .user = {c->user, strlen(c->user)},
            .password = {c->pass, strlen(c->pass)},
            .method = method,
            .uri = {url, strlen(url)},
            .cnonce = {cnonce, 2 * sizeof(rb)},
            .nc = ++c->nc,
        };
        ch_buf_append_str(&c->out, "Authorization: ");
        if (ch_proto_auth_authorization(&ch, &ar, &c->out) != 0) {
            fail(c, 1, "the credentials cannot be sent in the camera's authentication scheme");
            return -1;
        }
        ch_buf_append_str(&c->out, "\r\n");
    }
    if (c->session[0] != '\0' && strcmp(method, "DESCRIBE") != 0) {
        ch_buf_appendf(&c->out, "Session: %s\r\n", c->session);
    }
    if (extra != NULL) {
        ch_buf_append_str(&c->out, extra);
    }
    ch_buf_append_str(&c->out, "\r\n");
    return 0;
}

/* The request of the awaiting state, (re)sent. */
static void send_step(ch_proto_rtsp_client_t *c)
{
    switch (c->state) {
    case CH_PROTO_RTSP_CLIENT_OPTIONS:
        (void)request(c, "OPTIONS", c->wire, 1, NULL);
        break;
    case CH_PROTO_RTSP_CLIENT_DESCRIBE:
        (void)request(c, "DESCRIBE", c->wire, 1, "Accept: application/sdp\r\n");
        break;
    case CH_PROTO_RTSP_CLIENT_SETUP:
        if (c->udp_port != 0) {
            char t[96];
            snprintf(t, sizeof(t), "Transport: RTP/AVP;unicast;client_port=%u-%u\r\n",
                     (unsigned)c->udp_port, (unsigned)c->udp_port + 1u);
            (void)request(c, "SETUP", c->setup_url, 1, t);
        } else {
            (void)request(c, "SETUP", c->setup_url, 1,
                          "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n");
        }
        break;
    case CH_PROTO_RTSP_CLIENT_PLAY:
        (void)request(c, "PLAY", c->play_url, 1, "Range: npt=0.000-\r\n");
        break;
    default:
        break;
    }
}

static void step(ch_proto_rtsp_client_t *c, ch_proto_rtsp_client_state_t s)
{
    c->state = s;
    send_step(c);
}

void ch_proto_rtsp_client_start(ch_proto_rtsp_client_t *c)
{
    assert(c->state == CH_PROTO_RTSP_CLIENT_IDLE);
    step(c, CH_PROTO_RTSP_CLIENT_OPTIONS);
}

void ch_proto_rtsp_client_setup(ch_proto_rtsp_client_t *c, ch_slice_t session_control,
                                ch_slice_t media_control, uint16_t udp_port)
{
    assert(c->state == CH_PROTO_RTSP_CLIENT_DESCRIBED);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_slice_t base = {c->base, strlen(c->base)};
    int rc = ch_proto_sdp_resolve_control(base, media_control, &b);
    copy_slice(c->setup_url, sizeof(c->setup_url), (ch_slice_t){b.data, b.len});
    ch_buf_reset(&b);
    if (rc == 0) {
        rc = ch_proto_sdp_resolve_control(base, session_control, &b);
        copy_slice(c->play_url, sizeof(c->play_url), (ch_slice_t){b.data, b.len});
    }
    ch_buf_fini(&b);
    if (rc != 0) {
        fail(c, 0, "the camera's control URLs cannot be resolved");
        return;
    }
    c->udp_port = udp_port;
    c->tcp = 0;
    c->rtp_ch = 0;
    step(c, CH_PROTO_RTSP_CLIENT_SETUP);
}

void ch_proto_rtsp_client_keepalive(ch_proto_rtsp_client_t *c)
{
    assert(c->state == CH_PROTO_RTSP_CLIENT_PLAYING);
    (void)request(c, c->keepalive_get_parameter ? "GET_PARAMETER" : "OPTIONS", c->play_url, 1,
                  NULL);
}

void ch_proto_rtsp_client_teardown(ch_proto_rtsp_client_t *c)
{
    assert(c->state == CH_PROTO_RTSP_CLIENT_PLAYING);
    (void)request(c, "TEARDOWN", c->play_url, 0, NULL);
}

/* ---- answers ----------------------------------------------------------------------------- */

static const char *step_name(ch_proto_rtsp_client_state_t s)
{
    switch (s) {
    case CH_PROTO_RTSP_CLIENT_OPTIONS:
        return "OPTIONS";
    case CH_PROTO_RTSP_CLIENT_DESCRIBE:
        return "DESCRIBE";
    case CH_PROTO_RTSP_CLIENT_SETUP:
        return "SETUP";
    default:
        return "PLAY";
    }
}

/* A 401: the next request carries an answer to its challenge, or the session fails. */
static void on_challenge(ch_proto_rtsp_client_t *c, const ch_proto_response_t *r)
{
    ch_proto_auth_challenge_t ch;
    if (ch_proto_auth_pick(r->headers, r->num_headers, &ch) != 0) {
        fail(c, 1, "401 without a challenge the hub can answer");
        return;
    }
    if (c->user[0] == '\0') {
        fail(c, 1, "the camera asks for credentials and none are configured");
        return;
    }
    if (c->has_challenge && !ch.stale && ++c->refusals > c->auth_retries) {
        fail(c, 1, "the camera refused the credentials (401)");
        return;
    }
    if (++c->challenges > MAX_CHALLENGES) {
        fail(c, 1, "the camera keeps saying the nonce is stale");
        return;
    }
    if (ch.value.len >= sizeof(c->challenge)) {
        fail(c, 1, "the camera's challenge is too long");
        return;
    }
    copy_slice(c->challenge, sizeof(c->challenge), ch.value);
    c->has_challenge = 1;
    c->nc = 0;
    send_step(c);
}

/* A 3xx: state REDIRECTED with an rtsp:// Location, or the session fails. */
static void on_redirect(ch_proto_rtsp_client_t *c, const ch_proto_response_t *r)
{
    const ch_proto_header_t *loc = ch_proto_header_find(r->headers, r->num_headers, "location");
    ch_proto_url_t u;
    if (loc == NULL || loc->value.len >= sizeof(c->redirect) || loc->value.len < 7 ||
        (strncasecmp(loc->value.ptr, "rtsp://", 7) != 0 &&
         strncasecmp(loc->value.ptr, "rtsps://", 8) != 0) ||
        ch_proto_url_parse(loc->value.ptr, loc->value.len, &u) != 0) {
        fail(c, 0, "%s answered %d without an rtsp:// Location", step_name(c->state), r->status);
        return;
    }
    if (++c->redirects > CH_PROTO_RTSP_CLIENT_MAX_REDIRECTS) {
        fail(c, 0, "more than %d redirects", CH_PROTO_RTSP_CLIENT_MAX_REDIRECTS);
        return;
    }
    copy_slice(c->redirect, sizeof(c->redirect), loc->value);
    c->state = CH_PROTO_RTSP_CLIENT_REDIRECTED;
}

/* Any other answer than 200, 401 and 3xx: the reason phrase in printable ASCII. */
static void on_refusal(ch_proto_rtsp_client_t *c, const ch_proto_response_t *r)
{
    char reason[64];
    size_t n = r->reason.len < sizeof(reason) - 1 ? r->reason.len : sizeof(reason) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)r->reason.ptr[i];
        reason[i] = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
    }
    reason[n] = '\0';
    fail(c, 0, "%s answered %d %s", step_name(c->state), r->status, reason);
}

static void on_setup(ch_proto_rtsp_client_t *c, const ch_proto_response_t *r)
{
    const ch_proto_header_t *h = ch_proto_header_find(r->headers, r->num_headers, "session");
    ch_proto_rtsp_session_t ss;
    if (h == NULL || ch_proto_rtsp_parse_session(h->value, &ss) != 0) {
        fail(c, 0, "SETUP answered without a valid Session");
        return;
    }
    copy_slice(c->session, sizeof(c->session), ss.id);
    c->session_timeout = ss.timeout > 0 ? ss.timeout : CH_PROTO_RTSP_DEFAULT_TIMEOUT;
    c->rtp_ch = 0;
    h = ch_proto_header_find(r->headers, r->num_headers, "transport");
    if (h != NULL) {
        ch_slice_t list = h->value;
        ch_proto_rtsp_transport_t t;
        if (ch_proto_rtsp_parse_transport(&list, &t) == 0) {
            if (!t.tcp && c->udp_port == 0) {
                fail(c, 0, "the camera refused TCP interleaved transport");
                return;
            }
            c->tcp = t.tcp; /* it may choose TCP over a UDP offer */
            if (t.has_interleaved) {
                c->rtp_ch = t.interleaved[0];
            }
        }
    }
    step(c, CH_PROTO_RTSP_CLIENT_PLAY);
}

/* One whole answer to the awaiting state's request. */
static void on_answer(ch_proto_rtsp_client_t *c, const ch_proto_response_t *r, ch_slice_t body)
{
    ch_buf_reset(&c->out); /* the caller took the last request */
    c->status = r->status;
    if (r->status == 401) {
        on_challenge(c, r);
        return;
    }
    if (c->state == CH_PROTO_RTSP_CLIENT_OPTIONS) {
        if (r->status == 200) {
            const ch_proto_header_t *pub =
                ch_proto_header_find(r->headers, r->num_headers, "public");
            c->keepalive_get_parameter =
                pub != NULL && ch_proto_rtsp_public_has(pub->value, "GET_PARAMETER");
        }
        step(c, CH_PROTO_RTSP_CLIENT_DESCRIBE); /* some cameras fail OPTIONS and still play */
        return;
    }
    if (r->status >= 300 && r->status < 400) {
        on_redirect(c, r);
        return;
    }
    if (r->status == 461 && c->state == CH_PROTO_RTSP_CLIENT_SETUP && c->udp_port != 0) {
        c->udp_port = 0; /* Unsupported Transport: this camera does TCP only */
        c->udp_refused = 1;
        send_step(c);
        return;
    }
    if (r->status != 200) {
        on_refusal(c, r);
        return;
    }
    switch (c->state) {
    case CH_PROTO_RTSP_CLIENT_DESCRIBE: {
        ch_slice_t base = ch_proto_rtsp_content_base(r->headers, r->num_headers,
                                                     (ch_slice_t){c->wire, strlen(c->wire)});
        copy_slice(c->base, sizeof(c->base), base);
        ch_buf_reset(&c->sdp);
        ch_buf_append(&c->sdp, body.ptr, body.len);
        c->state = CH_PROTO_RTSP_CLIENT_DESCRIBED;
        return;
    }
    case CH_PROTO_RTSP_CLIENT_SETUP:
        on_setup(c, r);
        return;
    default: /* PLAY */
        c->state = CH_PROTO_RTSP_CLIENT_PLAYING;
        c->redirects = 0;
        c->challenges = 0;
        c->refusals = 0;
        return;
    }
}

int ch_proto_rtsp_client_read(ch_proto_rtsp_client_t *c, const char *buf, size_t len)
{
    ch_proto_header_t hdrs[MAX_HEADERS];
    ch_proto_response_t resp;
    int hl = ch_proto_parse_response(buf, len, &resp, hdrs, MAX_HEADERS);
    if (hl == CH_EAGAIN) {
        if (len > CH_PROTO_RTSP_CLIENT_MAX_HEAD) {
            fail(c, 0, "the camera's answer head is too long");
            return CH_ETOOBIG;
        }
        return CH_EAGAIN;
    }
    if (hl < 0) {
        fail(c, 0, "the camera's answer is malformed");
        return CH_EPARSE;
    }
    ch_slice_t body;
    int total = ch_proto_split_body(buf, len, (size_t)hl, hdrs, resp.num_headers,
                                    CH_PROTO_RTSP_CLIENT_MAX_BODY, &body);
    if (total == CH_EAGAIN) {
        return CH_EAGAIN;
    }
    if (total < 0) {
        fail(c, 0, "the camera's answer has a bad body");
        return CH_EPARSE;
    }
    switch (c->state) {
    case CH_PROTO_RTSP_CLIENT_OPTIONS:
    case CH_PROTO_RTSP_CLIENT_DESCRIBE:
    case CH_PROTO_RTSP_CLIENT_SETUP:
    case CH_PROTO_RTSP_CLIENT_PLAY:
        on_answer(c, &resp, body);
        break;
    default:
        break; /* a keep-alive's answer, or one after the end */
    }
    return total;
}
