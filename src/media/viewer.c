/*
 * media/viewer.c: the viewers' side, an RTSP/1.0 server (TCP interleaved).
 *
 * Loop 0 accepts; a connection moves to its camera's loop when its first request names the
 * camera (rtsp://HOST:PORT/cameras/{id}...). The view token (query "token=", a Bearer header,
 * or the password of Basic credentials) is checked through the configuration's authorize
 * callback before anything else; refusals are recorded. DESCRIBE answers the camera's SDP as
 * soon as the pull knows it (a cold camera makes it wait, up to describe_s); PLAY is answered
 * once its view.start record is durable, and the viewer then joins the fan-out store at the
 * cached keyframe. Media is written with one writev per viewer per camera read; a viewer whose
 * socket is full waits for writability, and one too far behind is skipped, then closed.
 *
 * The door: OPTIONS needs no token, so a connection costs an attacker nothing until it must
 * authorize. Connections not yet authorized are capped in all and per address, and closed
 * auth_timeout_s after their accept whatever they send; none is taken on a descriptor of the
 * reserve band (the top fd_reserve of RLIMIT_NOFILE), which stays for HTTP and the audit log.
 */
#include "media/viewer.h"

#include "media/camera.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define IN_CAP      8192
#define MAX_HEADERS 32
#define MAX_IOV     64
#define MAX_REFUSED 3
#define IDLE_MS     60000 /* a connection not playing and silent this long is closed */

typedef ch_media__cam_t cam_t;
typedef ch_media__conn_t conn_t;

typedef enum conn_state {
    C_NEW = 0,
    C_WAIT_SDP,     /* a DESCRIBE waits for the camera */
    C_PLAY_PENDING, /* a PLAY waits for its view.start record */
    C_PLAYING,
} conn_state_t;

struct ch_media__conn {
    conn_t *next, *prev;         /* the loop's list */
    conn_t *cam_next, *cam_prev; /* the camera's list */
    ch_media__loop_t *loop;
    ch_media_relay_t *relay;
    ch_net_door_node_t door; /* its place at the door until it authorizes */
    int64_t accepted_ms;     /* monotonic */
    ch_media__sock_t *sock;
    int fd;
    cam_t *cam;
    int64_t camera_id;
    char peer[64];
    char in[IN_CAP];
    size_t in_len;
    ch_buf_t out;
    size_t out_off;
    conn_state_t st;
    int authorized;
    ch_media_access_t acc;
    char session[17];
    int setup_done;
    ch_media_viewer_t v;
    int joined;
    int64_t started_wall_ms, started_mono_ms;
    int64_t deadline_ms;
    int64_t last_req_ms; /* monotonic: its last request (or its accept) */
    uint32_t wait_cseq;
    char base[160]; /* Content-Base of a waiting DESCRIBE */
    unsigned refused;
    int refs;
    int closing;
    int handle_open; /* closing: its socket's handle is still being closed */
    int ws_said_bye; /* a close frame went out (or is queued): no second one */
    const char *why; /* why it closed */
    int blocked;     /* input waits: a DESCRIBE for the camera, a PLAY for its record */
    int ws;          /* a browser: HTTP upgraded to WebSocket, fMP4 messages from cam->ws */
    char ws_accept[CH_PROTO_WS_ACCEPT_LEN + 1];
    int close_after_write;
};

static void process(conn_t *c);
static void conn_write(conn_t *c);
static void http_error(conn_t *c, int status, const char *reason, const char *code,
                       const char *message, const char *headers);

conn_t *ch_media__conn_next(conn_t *c)
{
    return c->next;
}

uint64_t ch_media__conn_bytes(const conn_t *c, int *ws)
{
    *ws = c->ws ? 1 : 0;
    return c->joined ? c->v.bytes : 0;
}

/* ---- lists --------------------------------------------------------------------------------- */

static void loop_link(ch_media__loop_t *l, conn_t *c)
{
    c->loop = l;
    c->prev = NULL;
    c->next = l->conns;
    if (l->conns != NULL) {
        l->conns->prev = c;
    }
    l->conns = c;
}

static void loop_unlink(conn_t *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (c->loop->conns == c) {
        c->loop->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->next = c->prev = NULL;
}

static void cam_link(cam_t *cam, conn_t *c)
{
    c->cam = cam;
    c->cam_prev = NULL;
    c->cam_next = cam->conns;
    if (cam->conns != NULL) {
        cam->conns->cam_prev = c;
    }
    cam->conns = c;
    ch_media__cam_touch(cam);
}

static void cam_unlink(conn_t *c)
{
    cam_t *cam = c->cam;
    if (cam == NULL) {
        return;
    }
    if (c->cam_prev != NULL) {
        c->cam_prev->cam_next = c->cam_next;
    } else {
        cam->conns = c->cam_next;
    }
    if (c->cam_next != NULL) {
        c->cam_next->cam_prev = c->cam_prev;
    }
    c->cam = NULL;
    c->cam_next = c->cam_prev = NULL;
    ch_media__cam_touch(cam);
}

/* ---- the door ------------------------------------------------------------------------------ */

const char *const ch_media_refusal_names[CH_MEDIA_REFUSED__COUNT] = {
    [CH_MEDIA_REFUSED_MAX_UNAUTHORIZED] = "max_unauthorized",
    [CH_MEDIA_REFUSED_PER_ADDR] = "max_unauthorized_per_addr",
    [CH_MEDIA_REFUSED_FD_RESERVE] = "fd_reserve",
    [CH_MEDIA_REFUSED_NO_DESCRIPTOR] = "no_descriptor",
    [CH_MEDIA_REFUSED_AUTH_TIMEOUT] = "auth_timeout",
};

static void count_refusal(ch_media_relay_t *r, ch_media_refusal_t why)
{
    atomic_fetch_add_explicit(&r->refused[why], 1, memory_order_relaxed);
}

/* Counts c in at the door (net.h; it evicts the oldest when full), or says why not: -1 when let
 * in, CH_MEDIA_REFUSED_PER_ADDR when its address has max_unauthorized_per_addr waiting. */
static int door_enter(conn_t *c)
{
    ch_media_relay_t *r = c->relay;
    int evicted = 0;
    int why = -1;
    if (ch_net_door_enter(&r->door, &c->door, &evicted) != CH_NET_DOOR_IN) {
        /* The relay's door evicts, so it is never full: only an address is. */
        why = CH_MEDIA_REFUSED_PER_ADDR;
        count_refusal(r, (ch_media_refusal_t)why);
    }
    if (evicted) {
        count_refusal(r, CH_MEDIA_REFUSED_MAX_UNAUTHORIZED);
        ch_media__sweep_soon(r);
    }
    return why;
}

/* c no longer waits at the door: it authorized, or it is closing. */
static void door_leave(conn_t *c)
{
    ch_net_door_leave(&c->relay->door, &c->door);
}

/* Whether fd is one of the reserve band's: the top fd_reserve descriptors of the limit.
 * Descriptors are numbered lowest free first and keep their number, so connections kept only
 * below the band never hold one of it, whatever else is open: no count to keep. */
static int in_reserve(const ch_media_relay_t *r, int fd)
{
    return r->nofile > 0 && (uint64_t)fd + r->cfg.fd_reserve >= r->nofile;
}

/* ---- records ------------------------------------------------------------------------------- */

/* Sends c's record of kind to the audit log (done, when given, gets the result on the loop):
 * its grant (not for a refusal), camera, address and transport; an end's bytes and time. */
static void record_view(conn_t *c, ch_media_record_kind_t kind, int status, const char *why,
                        void (*done)(conn_t *c, int rc))
{
    ch_media_record_t rec = {
        .kind = kind,
        .camera_id = c->camera_id,
        .status = status,
        .reason = why,
        .transport = c->ws ? "ws" : "rtsp",
    };
    if (kind != CH_MEDIA_VIEW_REFUSE) {
        rec.access = c->acc;
    }
    if (kind == CH_MEDIA_VIEW_END && c->joined) {
        rec.bytes = c->v.bytes;
        rec.duration_ms = ch_media__now_ms() - c->started_mono_ms;
    }
    memcpy(rec.peer, c->peer, sizeof(rec.peer));
    ch_media__record(c->loop, &rec, c, done);
}

/* ---- closing ------------------------------------------------------------------------------- */

static void conn_free(conn_t *c)
{
    door_leave(c);
    ch_buf_fini(&c->out);
    ch_free(c);
}

/* A closed connection is freed once its socket's handle is closed and no record of it is in
 * flight: callers up the stack (a poll callback that wrote, then closed) may still look at it
 * until they return to the loop. */
static void conn_maybe_free(conn_t *c)
{
    if (c->closing && c->refs == 0 && !c->handle_open) {
        conn_free(c);
    }
}

static void conn_sock_closed(ch_media__sock_t *s)
{
    conn_t *c = s->owner;
    ch_free(s);
    c->handle_open = 0;
    conn_maybe_free(c);
}

void ch_media__conn_close(conn_t *c, const char *why)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    c->why = why;
    door_leave(c);
    if (c->ws && c->joined && !c->ws_said_bye && c->v.off == 0 && c->out.len == c->out_off &&
        c->sock != NULL) {
        /* Tell the browser why, when no message is half written (best effort). */
        uint16_t code = strcmp(why, "shutdown") == 0 ? 1001
                        : strcmp(why, "slow") == 0   ? 1013
                                                     : 1008;
        size_t rl = strlen(why);
        uint8_t fr[CH_PROTO_WS_HEADER_MAX + 2 + 32];
        if (rl <= 32) {
            size_t hl = ch_proto_ws_header(CH_PROTO_WS_CLOSE, 2 + rl, fr);
            fr[hl] = (uint8_t)(code >> 8);
            fr[hl + 1] = (uint8_t)code;
            memcpy(fr + hl + 2, why, rl);
            ssize_t w = write(c->fd, fr, hl + 2 + rl);
            (void)w;
        }
    }
    if (c->joined) {
        c->loop->gone_bytes_out[c->ws ? 1 : 0] += c->v.bytes;
        record_view(c, CH_MEDIA_VIEW_END, 0, why, NULL);
        ch_media_viewer_leave(&c->v);
        c->joined = 0;
        if (c->cam != NULL && c->cam->nplaying > 0) {
            c->cam->nplaying--;
        }
        ch_log(CH_LOG_INFO, "media",
               "msg=\"viewer left\" camera=%lld grant=%lld peer=%s reason=%s bytes=%llu",
               (long long)c->camera_id, (long long)c->acc.grant_id, c->peer, why,
               (unsigned long long)c->v.bytes);
    }
    cam_unlink(c);
    loop_unlink(c);
    if (c->sock != NULL) {
        c->sock->on_closed = conn_sock_closed;
        c->handle_open = 1;
        ch_media__sock_close(c->sock);
        c->sock = NULL;
    }
    conn_maybe_free(c);
}

/* ---- answers ------------------------------------------------------------------------------- */

static void reply(conn_t *c, uint32_t cseq, int status, const char *reason, const char *headers,
                  const char *body)
{
    ch_buf_appendf(&c->out, "RTSP/1.0 %d %s\r\nCSeq: %u\r\nServer: cctvhub\r\n", status, reason,
                   cseq);
    if (headers != NULL) {
        ch_buf_append_str(&c->out, headers);
    }
    if (body != NULL) {
        ch_buf_appendf(&c->out, "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    } else {
        ch_buf_append_str(&c->out, "\r\n");
    }
}

/* Writes what c has to write: two writev at most (a live frame takes one; a keyframe or
 * the cached GOP of a new viewer more), then the rest when the socket says it is writable,
 * so that 200 viewers joining at once share the loop fairly instead of the first ones'
 * GOPs delaying the others' answers. */
static void conn_write(conn_t *c)
{
    for (int round = 0; !c->closing; round++) {
        if (round == 2) {
            ch_media__sock_want(c->sock, UV_READABLE | UV_WRITABLE);
            return;
        }
        struct iovec iov[MAX_IOV];
        size_t k = 0, ctl = c->out.len - c->out_off, media = 0;
        if (ctl > 0 && (!c->joined || c->v.off == 0)) {
            iov[k].iov_base = c->out.data + c->out_off;
            iov[k].iov_len = ctl;
            k++;
        } else {
            ctl = 0;
        }
        if (c->joined) {
            /* A frame begun is finished before an answer goes out. */
            size_t max = c->out.len > c->out_off && ctl == 0 ? 1 : MAX_IOV - k;
            k += ch_media_viewer_iov(&c->v, iov + k, max, &media);
            if (c->v.doomed) {
                ch_media__conn_close(c, "slow");
                return;
            }
        }
        if (k == 0) {
            if (c->close_after_write) {
                ch_media__conn_close(c, "teardown");
                return;
            }
            ch_media__sock_want(c->sock, UV_READABLE);
            return;
        }
        ssize_t w = writev(c->fd, iov, (int)k);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ch_media__sock_want(c->sock, UV_READABLE | UV_WRITABLE);
                return;
            }
            ch_media__conn_close(c, "closed");
            return;
        }
        size_t left = (size_t)w;
        if (ctl > 0) {
            size_t take = left < ctl ? left : ctl;
            c->out_off += take;
            left -= take;
            if (c->out_off == c->out.len) {
                ch_buf_reset(&c->out);
                c->out_off = 0;
            }
        }
        if (left > 0) {
            ch_media_viewer_advance(&c->v, left);
        }
        if ((size_t)w < ctl + media) {
            ch_media__sock_want(c->sock, UV_READABLE | UV_WRITABLE);
            return;
        }
    }
}

void ch_media__viewers_flush(cam_t *cam)
{
    size_t budget = cam->loop->relay->cfg.viewer_budget;
    cam->unflushed = 0;
    cam->flush_due = 0;
    for (conn_t *c = cam->conns, *next; c != NULL; c = next) {
        next = c->cam_next;
        if (!c->joined) {
            continue;
        }
        if (!(c->sock->events & UV_WRITABLE)) {
            conn_write(c);
            continue;
        }
        /* Its socket is full. Over budget at a packet boundary: skip now (in conn_write);
         * stuck mid-packet far behind, or doomed by the window: close it. */
        size_t lag = ch_media_viewer_lag(&c->v);
        if (c->v.doomed || (c->v.off > 0 && lag > 2 * budget)) {
            ch_media__conn_close(c, "slow");
        } else if (c->v.off == 0 && lag > budget) {
            conn_write(c);
        }
    }
}

/* ---- requests ------------------------------------------------------------------------------ */

/* rtsp://HOST[:PORT]/cameras/{id}[/...][?...]: the id, or 0. */
static int64_t camera_of(const ch_proto_url_t *u)
{
    static const char prefix[] = "/cameras/";
    ch_slice_t pq = u->path_query;
    if (pq.len <= sizeof(prefix) - 1 || memcmp(pq.ptr, prefix, sizeof(prefix) - 1) != 0) {
        return 0;
    }
    const char *p = pq.ptr + sizeof(prefix) - 1, *end = pq.ptr + pq.len;
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9') {
        q++;
    }
    if (q == p || q - p > 18 || (q < end && *q != '/' && *q != '?')) {
        return 0;
    }
    int64_t id;
    if (ch_parse_int64(p, (size_t)(q - p), &id) != 0 || id <= 0) {
        return 0;
    }
    return id;
}

/* The view token: "token=" in the query, a Bearer header, or the password of Basic. */
static ch_slice_t find_token(const ch_proto_request_t *req, const ch_proto_url_t *u, char *scratch,
                             size_t cap)
{
    ch_slice_t q = u->query;
    for (size_t i = 0; i + 6 <= q.len; i++) {
        if ((i == 0 || q.ptr[i - 1] == '&') && memcmp(q.ptr + i, "token=", 6) == 0) {
            size_t s = i + 6, e = s;
            while (e < q.len && q.ptr[e] != '&' && q.ptr[e] != '/') {
                e++;
            }
            return (ch_slice_t){q.ptr + s, e - s};
        }
    }
    const ch_proto_header_t *h =
        ch_proto_header_find(req->headers, req->num_headers, "authorization");
    if (h == NULL) {
        return (ch_slice_t){NULL, 0};
    }
    ch_slice_t v = h->value;
    if (v.len > 7 && strncasecmp(v.ptr, "bearer ", 7) == 0) {
        size_t s = 7;
        while (s < v.len && v.ptr[s] == ' ') {
            s++;
        }
        return (ch_slice_t){v.ptr + s, v.len - s};
    }
    if (v.len > 6 && strncasecmp(v.ptr, "basic ", 6) == 0) {
        size_t s = 6;
        while (s < v.len && v.ptr[s] == ' ') {
            s++;
        }
        int n = ch_codec_base64_decode(v.ptr + s, v.len - s, (uint8_t *)scratch, cap - 1);
        if (n > 0) {
            const char *colon = memchr(scratch, ':', (size_t)n);
            if (colon != NULL) {
                return (ch_slice_t){colon + 1, (size_t)(scratch + n - colon - 1)};
            }
        }
    }
    return (ch_slice_t){NULL, 0};
}

static void record_refusal(conn_t *c, int status, const char *why)
{
    record_view(c, CH_MEDIA_VIEW_REFUSE, status, why, NULL);
    ch_log(CH_LOG_INFO, "media", "msg=\"viewer refused\" camera=%lld peer=%s status=%d reason=%s",
           (long long)c->camera_id, c->peer, status, why);
}

static void refuse(conn_t *c, uint32_t cseq, int status, const char *why)
{
    record_refusal(c, status, why);
    if (status == 401) {
        reply(c, cseq, 401, "Unauthorized", "WWW-Authenticate: Basic realm=\"cctvhub\"\r\n", NULL);
    } else {
        reply(c, cseq, 403, "Forbidden", NULL, NULL);
    }
    if (++c->refused >= MAX_REFUSED) {
        c->close_after_write = 1;
    }
}

static void content_base(conn_t *c, const ch_proto_request_t *req, const ch_proto_url_t *u,
                         ch_buf_t *out)
{
    /* The authority as the client wrote it, then our path. */
    size_t auth_len = (size_t)(u->path_query.ptr - req->target.ptr);
    if (u->path_query.len == 0) {
        auth_len = req->target.len;
    }
    const char *at = memchr(req->target.ptr, '@', auth_len);
    ch_buf_append(out, "rtsp://", 7);
    const char *host = at != NULL ? at + 1 : req->target.ptr + 7;
    if (host < req->target.ptr + auth_len) {
        ch_buf_append(out, host, (size_t)(req->target.ptr + auth_len - host));
    }
    ch_buf_appendf(out, "/cameras/%lld/", (long long)c->camera_id);
}

static void answer_describe(conn_t *c, uint32_t cseq, const char *base)
{
    char headers[1400];
    snprintf(headers, sizeof(headers), "Content-Base: %s\r\nContent-Type: application/sdp\r\n",
             base);
    reply(c, cseq, 200, "OK", headers, c->cam->sdp);
}

static void on_start_recorded(conn_t *c, int rc)
{
    c->refs--;
    if (c->closing) {
        if (rc == 0) {
            /* It went away while its start was being recorded: the record gets its end. */
            record_view(c, CH_MEDIA_VIEW_END, 0, c->why, NULL);
        }
        conn_maybe_free(c);
        return;
    }
    c->blocked = 0;
    if (rc != 0 || c->cam == NULL) {
        if (c->ws) {
            http_error(c, 503, "Service Unavailable", "audit_unavailable",
                       "the view could not be put on the audit record", NULL);
        } else {
            reply(c, c->wait_cseq, 503, "Service Unavailable", NULL, NULL);
        }
        c->st = C_NEW;
        conn_write(c);
        return;
    }
    if (c->ws) {
        ch_proto_ws_switching(c->ws_accept, &c->out);
        ch_media_viewer_join(ch_media__cam_browser_store(c->cam), &c->v,
                             c->loop->relay->cfg.viewer_budget);
    } else {
        char headers[128];
        snprintf(headers, sizeof(headers), "Session: %s;timeout=60\r\nRange: npt=now-\r\n",
                 c->session);
        reply(c, c->wait_cseq, 200, "OK", headers, NULL);
        ch_media_viewer_join(c->cam->store, &c->v, c->loop->relay->cfg.viewer_budget);
    }
    c->joined = 1;
    c->loop->views[c->ws ? 1 : 0]++;
    c->cam->nplaying++;
    c->st = C_PLAYING;
    c->started_wall_ms = ch_time_now_ms();
    c->started_mono_ms = ch_media__now_ms();
    ch_log(
        CH_LOG_INFO, "media", "msg=\"viewer playing\" camera=%lld grant=%lld agency=%lld peer=%s",
        (long long)c->camera_id, (long long)c->acc.grant_id, (long long)c->acc.agency_id, c->peer);
    conn_write(c);
    if (!c->closing) {
        process(c);
    }
}

/* A PLAY (or a WebSocket upgrade): answered once its view.start record is durable. */
static void begin_view(conn_t *c)
{
    c->st = C_PLAY_PENDING;
    c->blocked = 1;
    c->refs++;
    record_view(c, CH_MEDIA_VIEW_START, 0, NULL, on_start_recorded);
}

/* The view token tok for camera id: 0 (c->acc filled), or 401 / 403 with *why. */
static int check_token(conn_t *c, ch_slice_t tok, int64_t id, const char **why)
{
    ch_media_relay_t *r = c->loop->relay;
    *why = tok.len == 0 ? "no_credential" : "bad_token";
    int st = tok.len == 0 ? 401
             : r->cfg.authorize != NULL
                 ? r->cfg.authorize(r->cfg.ud, tok.ptr, tok.len, id, &c->acc, why)
                 : 403;
    if (st != 0) {
        memset(&c->acc, 0, sizeof(c->acc));
        return st == 401 ? 401 : 403;
    }
    return 0;
}

static void migrate_closed(ch_media__sock_t *s)
{
    conn_t *c = s->owner;
    ch_free(s);
    ch_media__cmd_t *cmd = ch_calloc(1, sizeof(*cmd));
    cmd->kind = CMD_CONN;
    cmd->conn = c;
    ch_media__post(ch_media__owner(c->loop->relay, c->camera_id), cmd);
}

/* Hands c to its camera's loop; its unprocessed input goes with it. */
static void migrate(conn_t *c)
{
    loop_unlink(c);
    ch_media__sock_t *s = c->sock;
    c->sock = NULL;
    s->keep_fd = 1;
    s->on_closed = migrate_closed;
    ch_media__sock_close(s);
}

static void on_conn_sock(ch_media__sock_t *s, int status, int events);

void ch_media__conn_adopt(ch_media__loop_t *l, conn_t *c)
{
    if (l == NULL || l->stopping) {
        close(c->fd);
        conn_free(c);
        return;
    }
    loop_link(l, c);
    c->sock = ch_media__sock_new(l, c->fd, c, on_conn_sock);
    if (c->sock == NULL) {
        loop_unlink(c);
        close(c->fd);
        conn_free(c);
        return;
    }
    ch_media__sock_want(c->sock, UV_READABLE);
    process(c);
}

/* Handles one request; returns 0 to go on, 1 when input must wait (or the connection moved
 * or closed). */
static int handle(conn_t *c, const ch_proto_request_t *req)
{
    uint32_t cseq = 0;
    if (ch_proto_rtsp_cseq(req->headers, req->num_headers, &cseq) != 0) {
        reply(c, 0, 400, "Bad Request", NULL, NULL);
        c->close_after_write = 1;
        return 1;
    }
    static const char public_hdr[] =
        "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER\r\n";
    ch_slice_t m = req->method;
    if (ch_slice_eq(m, "OPTIONS") && ch_slice_eq(req->target, "*")) {
        reply(c, cseq, 200, "OK", public_hdr, NULL);
        return 0;
    }
    ch_proto_url_t u;
    if (ch_proto_url_parse(req->target.ptr, req->target.len, &u) != 0) {
        reply(c, cseq, 400, "Bad Request", NULL, NULL);
        return 0;
    }
    int64_t id = camera_of(&u);
    if (id == 0) {
        reply(c, cseq, 404, "Not Found", NULL, NULL);
        return 0;
    }
    if (c->camera_id != 0 && c->camera_id != id) {
        reply(c, cseq, 400, "Bad Request", NULL, NULL); /* one camera per connection */
        return 0;
    }
    c->camera_id = id;
    if (ch_media__owner(c->loop->relay, id) != c->loop) {
        migrate(c);
        return 1;
    }
    if (ch_slice_eq(m, "OPTIONS")) {
        reply(c, cseq, 200, "OK", public_hdr, NULL);
        return 0;
    }
    if (ch_slice_eq(m, "TEARDOWN")) {
        reply(c, cseq, 200, "OK", NULL, NULL);
        c->close_after_write = 1;
        return 1;
    }
    if (!c->authorized) {
        char scratch[512];
        const char *why;
        int st = check_token(c, find_token(req, &u, scratch, sizeof(scratch)), id, &why);
        if (st != 0) {
            refuse(c, cseq, st, why);
            return 0;
        }
        c->authorized = 1;
        door_leave(c);
        cam_link(ch_media__cam_get(c->loop, id), c);
    }
    if (ch_slice_eq(m, "DESCRIBE")) {
        ch_buf_t base;
        ch_buf_init(&base);
        content_base(c, req, &u, &base);
        if (c->cam->sdp != NULL) {
            answer_describe(c, cseq, base.data);
            ch_buf_fini(&base);
            return 0;
        }
        snprintf(c->base, sizeof(c->base), "%s", base.data);
        ch_buf_fini(&base);
        c->st = C_WAIT_SDP;
        c->wait_cseq = cseq;
        c->deadline_ms = ch_media__now_ms() + (int64_t)c->loop->relay->cfg.describe_s * 1000;
        c->blocked = 1;
        return 1;
    }
    const ch_proto_header_t *sh = ch_proto_header_find(req->headers, req->num_headers, "session");
    if (sh != NULL && c->session[0] != '\0') {
        ch_proto_rtsp_session_t ss;
        if (ch_proto_rtsp_parse_session(sh->value, &ss) != 0 || !ch_slice_eq(ss.id, c->session)) {
            reply(c, cseq, 454, "Session Not Found", NULL, NULL);
            return 0;
        }
    }
    if (ch_slice_eq(m, "SETUP")) {
        const ch_proto_header_t *th =
            ch_proto_header_find(req->headers, req->num_headers, "transport");
        int tcp = 0;
        if (th != NULL) {
            ch_slice_t list = th->value;
            ch_proto_rtsp_transport_t t;
            while (list.len > 0 && ch_proto_rtsp_parse_transport(&list, &t) == 0) {
                if (t.tcp && !t.multicast) {
                    tcp = 1;
                    break;
                }
            }
        }
        if (!tcp) {
            reply(c, cseq, 461, "Unsupported Transport", NULL, NULL);
            return 0;
        }
        if (c->session[0] == '\0') {
            uint8_t b[8];
            if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
                uint64_t t = ch_time_mono_ns() ^ (uint64_t)(uintptr_t)c;
                memcpy(b, &t, sizeof(b));
            }
            ch_hex_encode(c->session, sizeof(c->session), b, sizeof(b), CH_HEX_UPPER);
        }
        c->setup_done = 1;
        char headers[160];
        snprintf(headers, sizeof(headers),
                 "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: %s;timeout=60\r\n",
                 c->session);
        reply(c, cseq, 200, "OK", headers, NULL);
        return 0;
    }
    if (ch_slice_eq(m, "PLAY")) {
        if (!c->setup_done) {
            reply(c, cseq, 455, "Method Not Valid in This State", NULL, NULL);
            return 0;
        }
        if (c->st == C_PLAYING) {
            char headers[96];
            snprintf(headers, sizeof(headers), "Session: %s;timeout=60\r\n", c->session);
            reply(c, cseq, 200, "OK", headers, NULL);
            return 0;
        }
        c->wait_cseq = cseq;
        begin_view(c);
        return 1;
    }
    if (ch_slice_eq(m, "GET_PARAMETER") || ch_slice_eq(m, "SET_PARAMETER")) {
        char headers[96] = "";
        if (c->session[0] != '\0') {
            snprintf(headers, sizeof(headers), "Session: %s;timeout=60\r\n", c->session);
        }
        reply(c, cseq, 200, "OK", headers, NULL);
        return 0;
    }
    reply(c, cseq, 501, "Not Implemented", public_hdr, NULL);
    return 0;
}

/* ---- browsers: WebSocket ------------------------------------------------------------------ */

/* An HTTP answer before the upgrade (a refusal); the connection closes after it. */
static void http_error(conn_t *c, int status, const char *reason, const char *code,
                       const char *message, const char *headers)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                     message);
    if (n < 0 || (size_t)n >= sizeof(body)) {
        n = 0;
    }
    ch_buf_appendf(&c->out,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   "Connection: close\r\nCache-Control: no-store\r\n%s\r\n%.*s",
                   status, reason, n, headers != NULL ? headers : "", n, body);
    c->close_after_write = 1;
}

/* /api/v1/cameras/{id}/live[?query]: the id, or 0. */
static int64_t live_camera_of(ch_slice_t target, ch_slice_t *query)
{
    static const char prefix[] = "/api/v1/cameras/";
    const char *p = target.ptr, *end = target.ptr + target.len;
    const char *q = memchr(p, '?', target.len);
    *query = q != NULL ? (ch_slice_t){q + 1, (size_t)(end - q - 1)} : (ch_slice_t){NULL, 0};
    size_t plen = (size_t)((q != NULL ? q : end) - p);
    if (plen <= sizeof(prefix) - 1 + 5 || memcmp(p, prefix, sizeof(prefix) - 1) != 0 ||
        memcmp(p + plen - 5, "/live", 5) != 0) {
        return 0;
    }
    int64_t id;
    const char *ds = p + sizeof(prefix) - 1;
    size_t dl = plen - (sizeof(prefix) - 1) - 5;
    if (dl > 18 || ch_parse_int64(ds, dl, &id) != 0 || id <= 0) {
        return 0;
    }
    return id;
}

/* GET /api/v1/cameras/{id}/live?token=...: the token checked as for RTSP, then the handshake;
 * the 101 goes out once the view.start record is durable (on_start_recorded). */
static int handle_http(conn_t *c, const ch_proto_request_t *req)
{
    ch_slice_t query;
    int64_t id = live_camera_of(req->target, &query);
    if (!ch_slice_eq(req->method, "GET") || id == 0) {
        http_error(c, 404, "Not Found", "not_found", "no such live stream", NULL);
        return 1;
    }
    c->camera_id = id;
    if (ch_media__owner(c->loop->relay, id) != c->loop) {
        migrate(c);
        return 1;
    }
    ch_proto_url_t u;
    memset(&u, 0, sizeof(u));
    u.query = query;
    char scratch[512];
    c->ws = 1;
    const char *why;
    int st = check_token(c, find_token(req, &u, scratch, sizeof(scratch)), id, &why);
    if (st != 0) {
        record_refusal(c, st, why);
        if (st == 401) {
            http_error(c, 401, "Unauthorized", "unauthenticated", why, NULL);
        } else {
            http_error(c, 403, "Forbidden", "forbidden", why, NULL);
        }
        return 1;
    }
    int hs = ch_proto_ws_upgrade_asked(req) ? ch_proto_ws_handshake(req, c->ws_accept) : CH_EPARSE;
    if (hs != 0 && hs != CH_EUNSUPP) {
        http_error(c, 400, "Bad Request", "invalid", "a WebSocket upgrade is expected", NULL);
        return 1;
    }
    if (hs == CH_EUNSUPP) {
        http_error(c, 426, "Upgrade Required", "invalid", "WebSocket version 13 only",
                   "Sec-WebSocket-Version: 13\r\n");
        return 1;
    }
    c->authorized = 1;
    door_leave(c);
    cam_link(ch_media__cam_get(c->loop, id), c); /* its browsers' stream is made with it */
    begin_view(c);
    return 1;
}

/* One frame from the browser: a close is answered and ends the view, a ping gets its pong,
 * anything else is read and dropped. Returns the bytes taken, 0 to wait for more, -1 when the
 * connection closed. */
static int ws_input(conn_t *c, uint8_t *buf, size_t len)
{
    ch_proto_ws_frame_t f;
    int r = ch_proto_ws_read(buf, len, IN_CAP - 16, &f);
    if (r == CH_EAGAIN) {
        return 0;
    }
    if (r < 0) {
        ch_media__conn_close(c, "error");
        return -1;
    }
    ch_proto_ws_reply_t reply;
    ch_proto_ws_reply(&f, &reply);
    if (reply.len > 0) {
        ch_buf_append(&c->out, reply.bytes, reply.len);
    }
    if (reply.close) {
        c->close_after_write = 1;
        c->ws_said_bye = 1;
    }
    c->last_req_ms = ch_media__now_ms();
    return r;
}

static void process(conn_t *c)
{
    size_t off = 0;
    while (off < c->in_len && !c->blocked && !c->closing && c->sock != NULL) {
        const char *b = c->in + off;
        size_t len = c->in_len - off;
        if (c->ws && c->st == C_PLAYING) {
            int r = ws_input(c, (uint8_t *)c->in + off, len);
            if (r <= 0) {
                if (r < 0) {
                    return;
                }
                break;
            }
            off += (size_t)r;
            continue;
        }
        ch_proto_interleaved_t f;
        int r = ch_proto_interleaved_read(b, len, &f);
        if (r > 0) {
            off += (size_t)r; /* the viewer's RTCP: not needed */
            continue;
        }
        if (r == CH_EAGAIN) {
            break;
        }
        if (r == CH_EPARSE) {
            ch_media__conn_close(c, "error");
            return;
        }
        ch_proto_header_t hdrs[MAX_HEADERS];
        ch_proto_request_t req;
        int hl = ch_proto_parse_request(b, len, &req, hdrs, MAX_HEADERS);
        if (hl == CH_EAGAIN) {
            break;
        }
        if (hl > 0 && req.kind == CH_PROTO_HTTP && !c->authorized) {
            /* A browser's WebSocket upgrade (handed over by the HTTP server). */
            ch_media__sock_t *before = c->sock;
            c->last_req_ms = ch_media__now_ms();
            int wait = handle_http(c, &req);
            if (c->sock == NULL && before != NULL && !c->closing) {
                memmove(c->in, c->in + off, c->in_len - off);
                c->in_len -= off;
                return;
            }
            off += (size_t)hl;
            if (wait) {
                break;
            }
            continue;
        }
        if (hl < 0 || req.kind != CH_PROTO_RTSP) {
            reply(c, 0, 400, "Bad Request", NULL, NULL);
            c->close_after_write = 1;
            off = c->in_len;
            break;
        }
        ch_slice_t body;
        int total =
            ch_proto_split_body(b, len, (size_t)hl, hdrs, req.num_headers, IN_CAP / 2, &body);
        if (total == CH_EAGAIN) {
            break;
        }
        if (total < 0) {
            reply(c, 0, 400, "Bad Request", NULL, NULL);
            c->close_after_write = 1;
            off = c->in_len;
            break;
        }
        ch_media__sock_t *before = c->sock;
        c->last_req_ms = ch_media__now_ms();
        int wait = handle(c, &req);
        if (c->sock == NULL && before != NULL && !c->closing) {
            /* Moved to another loop: the request goes with the rest of the input, unhandled. */
            memmove(c->in, c->in + off, c->in_len - off);
            c->in_len -= off;
            return;
        }
        off += (size_t)total;
        if (wait) {
            break;
        }
    }
    if (c->closing) {
        return;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == IN_CAP && !c->blocked) {
        ch_media__conn_close(c, "error"); /* a request head larger than we take */
        return;
    }
    conn_write(c);
}

static void on_conn_sock(ch_media__sock_t *s, int status, int events)
{
    conn_t *c = s->owner;
    if (status < 0) {
        ch_media__conn_close(c, "closed");
        return;
    }
    if (events & UV_WRITABLE) {
        conn_write(c);
        if (c->closing || c->sock != s) {
            return;
        }
    }
    if (events & UV_READABLE) {
        if (c->in_len == IN_CAP) {
            /* Input waits (a DESCRIBE or PLAY pending) and more is piling up. */
            ch_media__sock_want(s, s->events & ~UV_READABLE);
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (n == 0) {
            ch_media__conn_close(c, "closed");
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                ch_media__conn_close(c, "closed");
            }
            return;
        }
        c->in_len += (size_t)n;
        process(c);
    }
}

/* ---- the camera's side tells ---------------------------------------------------------------- */

void ch_media__viewers_ready(cam_t *cam)
{
    for (conn_t *c = cam->conns, *next; c != NULL; c = next) {
        next = c->cam_next;
        if (c->st == C_WAIT_SDP && cam->sdp != NULL) {
            answer_describe(c, c->wait_cseq, c->base);
            c->st = C_NEW;
            c->blocked = 0;
            process(c);
        }
    }
}

void ch_media__viewers_failed(cam_t *cam)
{
    if (cam->sdp != NULL) {
        return; /* viewers stay: the stream resumes after the reconnect */
    }
    for (conn_t *c = cam->conns, *next; c != NULL; c = next) {
        next = c->cam_next;
        if (c->st == C_WAIT_SDP) {
            reply(c, c->wait_cseq, 503, "Service Unavailable", NULL, NULL);
            c->st = C_NEW;
            c->blocked = 0;
            c->close_after_write = 1;
            conn_write(c);
        }
    }
}

void ch_media__viewers_end_grant(cam_t *cam, int64_t grant_id)
{
    for (conn_t *c = cam->conns, *next; c != NULL; c = next) {
        next = c->cam_next;
        if (c->authorized && c->acc.grant_id == grant_id) {
            ch_media__conn_close(c, "grant_ended");
        }
    }
}

size_t ch_media__viewers_info(cam_t *cam, ch_media_viewer_info_t *out, size_t max)
{
    size_t n = 0;
    for (conn_t *c = cam->conns; c != NULL; c = c->cam_next) {
        if (!c->joined) {
            continue;
        }
        if (out != NULL && n < max) {
            ch_media_viewer_info_t *v = &out[n];
            v->grant_id = c->acc.grant_id;
            v->event_id = c->acc.event_id;
            v->agency_id = c->acc.agency_id;
            memcpy(v->peer, c->peer, sizeof(v->peer));
            v->since_ms = c->started_wall_ms;
            v->bytes = c->v.bytes;
            v->skips = c->v.skips;
            v->lag_bytes = ch_media_viewer_lag(&c->v);
            v->transport = c->ws ? "ws" : "rtsp";
        } else if (out != NULL) {
            break;
        }
        n++;
    }
    return n;
}

void ch_media__loop_sweep(ch_media__loop_t *l)
{
    for (conn_t *c = l->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (!c->authorized && ch_net_door_evicted(&c->door)) {
            ch_media__conn_close(c, "evicted");
        }
    }
}

void ch_media__conn_tick(conn_t *c, int64_t now)
{
    if (!c->authorized && ch_net_door_evicted(&c->door)) {
        ch_media__conn_close(c, "evicted");
        return;
    }
    if (!c->authorized && now - c->accepted_ms >= (int64_t)c->relay->cfg.auth_timeout_s * 1000) {
        /* OPTIONS and refused requests keep a connection busy, not welcome. */
        count_refusal(c->relay, CH_MEDIA_REFUSED_AUTH_TIMEOUT);
        ch_media__conn_close(c, "auth_timeout");
        return;
    }
    if ((c->st == C_NEW) && now - c->last_req_ms >= IDLE_MS) {
        ch_media__conn_close(c, "timeout");
        return;
    }
    if (c->st == C_WAIT_SDP && now >= c->deadline_ms) {
        reply(c, c->wait_cseq, 503, "Service Unavailable", NULL, NULL);
        c->st = C_NEW;
        c->blocked = 0;
        c->close_after_write = 1;
        conn_write(c);
    }
}

/* ---- accepting ----------------------------------------------------------------------------- */

/* A new connection of r on fd from peer ss ("?:0" when unknown), not yet at the door. */
static conn_t *conn_new(ch_media_relay_t *r, int fd, const struct sockaddr_storage *ss)
{
    conn_t *c = ch_calloc(1, sizeof(*c));
    c->relay = r;
    c->fd = fd;
    c->last_req_ms = ch_media__now_ms();
    c->accepted_ms = c->last_req_ms;
    ch_net_door_key(ss, c->door.addr);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    return c;
}

static void on_accept(ch_media__sock_t *s, int status, int events)
{
    (void)events;
    ch_media__loop_t *l = s->owner;
    if (status < 0) {
        return;
    }
    ch_media_relay_t *r = l->relay;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Pause accepting until the next tick rather than spin. */
                count_refusal(r, CH_MEDIA_REFUSED_NO_DESCRIPTOR);
                ch_log(CH_LOG_WARN, "media", "msg=\"cannot accept a viewer: out of descriptors\"");
                ch_media__sock_want(s, 0);
                l->listener_paused = 1;
            }
            return;
        }
        /* Refused at the door: closed at once, unanswered (it has asked nothing yet) and
         * unrecorded (a flood must not write the audit log); counted for /metrics. Accepting
         * and closing keeps the listen queue moving, so waiting clients learn at once. */
        if (in_reserve(r, fd)) {
            count_refusal(r, CH_MEDIA_REFUSED_FD_RESERVE);
            close(fd);
            continue;
        }
        conn_t *c = conn_new(r, fd, &ss);
        if (door_enter(c) >= 0) {
            close(fd);
            conn_free(c);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        ch_media__conn_adopt(l, c);
    }
}

#define DOOR_BODY                                                                                  \
    "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections wait to "             \
    "authorize\"}}"
_Static_assert(sizeof(DOOR_BODY) - 1 == 83, "the 503's Content-Length");

/* A browser's connection refused at the door: a best-effort 503 (it sent its request), then
 * closed. */
static void refuse_handed_over(int fd)
{
    static const char answer[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 83\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n" DOOR_BODY;
    ssize_t w = write(fd, answer, sizeof(answer) - 1);
    (void)w;
    close(fd);
}

void ch_media_relay_adopt(ch_media_relay_t *r, int fd, const void *raw, size_t len)
{
    if (r == NULL || len > IN_CAP) {
        close(fd);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
        ss.ss_family = AF_UNSPEC;
    }
    if (in_reserve(r, fd)) {
        count_refusal(r, CH_MEDIA_REFUSED_FD_RESERVE);
        refuse_handed_over(fd);
        return;
    }
    conn_t *c = conn_new(r, fd, &ss);
    if (door_enter(c) >= 0) {
        conn_free(c);
        refuse_handed_over(fd);
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memcpy(c->in, raw, len);
    c->in_len = len;
    ch_media__cmd_t *cmd = ch_calloc(1, sizeof(*cmd));
    cmd->kind = CMD_CONN;
    cmd->conn = c;
    ch_media__post(&r->loops[0], cmd);
}

void ch_media__listener_start(ch_media__loop_t *l, int fd)
{
    l->listener = ch_media__sock_new(l, fd, l, on_accept);
    if (l->listener == NULL) {
        close(fd);
        return;
    }
    ch_media__sock_want(l->listener, UV_READABLE);
}
