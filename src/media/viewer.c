/*
 * media/viewer.c: the viewers' side, an RTSP/1.0 server (TCP interleaved).
 *
 * Loop 0 accepts; a connection moves to its camera's loop when its first request names the
 * camera (rtsp://HOST:PORT/cameras/{id}...). The view token (query "token=", a Bearer header,
 * or the password of Basic credentials) is checked through the configuration's authorize
 * callback before anything else; refusals are recorded. DESCRIBE answers the camera's SDP as
 * soon as the pull knows it (a cold camera makes it wait, up to describe_s); PLAY is answered
 * once its view.start record is durable, and the viewer then joins the fan-out store at the
 * cached keyframe. Each connection is a ch_net_conn_t (net.h) on its loop: requests, RTCP and
 * WebSocket frames are parsed in place in its read buffer; answers and media go out as one
 * referenced write at a time (ch_net_conn_write_ref: the fan-out ring's packets themselves, no
 * copy; one writev per viewer per camera read), and a viewer whose write is still queued waits
 * for it; one too far behind is skipped, then closed.
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
    ch_net_conn_t net;       /* its socket on its loop, while net_open */
    int fd;                  /* before net is opened on a loop (accepted, handed over), or -1 */
    ch_buf_t carry;          /* bytes read before then, fed to net at the open */
    ch_net_tls_conn_t *tls_carry; /* its TLS session while it moves (with fd), or NULL */
    ch_net_tls_t *tls_accept;     /* accepted on the RTSPS port: the context its handshake
                                     runs with once net is open (a reference), or NULL */
    uint64_t tls_handshake_ms;
    int net_open; /* net was opened on this loop and its closed() has not run */
    cam_t *cam;
    int64_t camera_id;
    char peer[64];
    ch_buf_t out;      /* answers not yet given to net */
    ch_buf_t sending;  /* answers the pending write references */
    int pending;       /* a referenced write is queued (one at a time): out waits, v is held */
    size_t pend_media; /* media bytes of it: v advances by them once it left */
    int more;          /* more to write at the loop's next turn (on_more) */
    int migrating;     /* moving to its camera's loop once its pending write left */
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
    int handle_open; /* net is closing: the struct waits for its closed() */
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
 * its grant (for a refusal only the one of a valid token refused for want of its agency's
 * certificate: check_token leaves nothing else in c->acc before c authorizes), camera, address
 * and transport; an end's bytes and time. */
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
    if (kind != CH_MEDIA_VIEW_REFUSE || !c->authorized) {
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
    ch_buf_fini(&c->sending);
    ch_buf_fini(&c->carry);
    ch_net_tls_conn_free(c->tls_carry);
    ch_net_tls_unref(c->tls_accept);
    ch_free(c);
}

/* A closed connection is freed once its socket's handles are closed and no record of it is in
 * flight: callers up the stack (a read callback that wrote, then closed) may still look at it
 * until they return to the loop. */
static void conn_maybe_free(conn_t *c)
{
    if (c->closing && c->refs == 0 && !c->handle_open) {
        conn_free(c);
    }
}

static void net_closed(ch_net_conn_t *n)
{
    conn_t *c = n->data;
    c->net_open = 0;
    c->handle_open = 0;
    conn_maybe_free(c);
}

/* Closes c's socket now: libuv reads no queued byte after this (a write's packets may go). */
static void net_stop(conn_t *c)
{
    if (c->net_open && !c->handle_open) {
        c->handle_open = 1;
        ch_net_conn_close(&c->net, net_closed);
    }
}

/* The ring dooms c while its write is queued (the packet it reads is going): the socket closes
 * at once, the write's release (UV_ECANCELED) then closes c. */
static void viewer_lost(ch_media_viewer_t *v)
{
    net_stop((conn_t *)(void *)((char *)v - offsetof(conn_t, v)));
}

/* The WebSocket close code for why. Not inlined: gcc would fold the comparisons against each
 * caller's constant reason and warn (-Wstring-compare) that they are always unequal. */
__attribute__((noinline)) static uint16_t ws_close_code(const char *why)
{
    return strcmp(why, "shutdown") == 0 ? 1001 : strcmp(why, "slow") == 0 ? 1013 : 1008;
}

void ch_media__conn_close(conn_t *c, const char *why)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    c->why = why;
    door_leave(c);
    if (c->ws && c->joined && !c->ws_said_bye && !c->pending && c->out.len == 0 && c->net_open &&
        !c->handle_open) {
        /* Tell the browser why, when no message is half written (best effort). */
        uint16_t code = ws_close_code(why);
        size_t rl = strlen(why);
        uint8_t fr[CH_PROTO_WS_HEADER_MAX + 2 + 32];
        if (rl <= 32) {
            size_t hl = ch_proto_ws_header(CH_PROTO_WS_CLOSE, 2 + rl, fr);
            fr[hl] = (uint8_t)(code >> 8);
            fr[hl + 1] = (uint8_t)code;
            memcpy(fr + hl + 2, why, rl);
            int rc = ch_net_conn_send(&c->net, fr, hl + 2 + rl);
            (void)rc;
        }
    }
    net_stop(c); /* before the viewer leaves: its pending write stops reading the ring */
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

/* uv_buf_t is laid out as struct iovec on Unix (libuv's promise): the ring's iovecs are given
 * to net as they are. */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec) &&
                   offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base) &&
                   offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t is an iovec");

static void migrate_now(conn_t *c);
static void on_written(ch_net_conn_t *n, void *arg, int status);

/* The loop's next turn writes on for the viewers marked more (conn_write's fairness). */
static void on_more(uv_idle_t *h)
{
    ch_media__loop_t *l = h->data;
    int again = 0;
    for (conn_t *c = l->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->more) {
            c->more = 0;
            conn_write(c);
            again |= c->more;
        }
    }
    if (!again) {
        uv_idle_stop(h);
    }
}

/*
 * Writes what c has to write: its answers first, then the packets its cursor has not written,
 * as one ch_net_conn_write_ref of references into the ring (no copy). When the socket takes all
 * at once, the cursor advances and the next batch goes, two at most (a live frame takes one; a
 * keyframe or the cached GOP of a new viewer more), then the rest at the loop's next turn, so
 * that 200 viewers joining at once share the loop fairly instead of the first ones' GOPs
 * delaying the others' answers. What the socket does not take waits in net's queue, one write
 * at a time: the cursor stays on its packets (the ring keeps them; the viewer is held, as if
 * mid-packet) until on_written advances it.
 */
static void conn_write(conn_t *c)
{
    for (int round = 0; !c->closing && c->net_open && !c->handle_open && !c->pending; round++) {
        if (round == 2) {
            c->more = 1;
            uv_idle_start(&c->loop->more, on_more);
            return;
        }
        uv_buf_t iov[MAX_IOV];
        unsigned k = 0;
        size_t media = 0;
        if (c->out.len > 0) {
            ch_buf_t t = c->sending;
            c->sending = c->out;
            c->out = t;
            ch_buf_reset(&c->out);
            iov[k++] = uv_buf_init(c->sending.data, (unsigned)c->sending.len);
        }
        if (c->joined) {
            k += (unsigned)ch_media_viewer_iov(&c->v, (struct iovec *)(void *)(iov + k),
                                               MAX_IOV - k, &media);
            if (c->v.doomed) {
                ch_media__conn_close(c, "slow");
                return;
            }
        }
        if (k == 0) {
            if (c->close_after_write) {
                ch_media__conn_close(c, "teardown");
            }
            return;
        }
        int rc = ch_net_conn_write_ref(&c->net, iov, k, on_written, c);
        if (rc < 0) {
            ch_media__conn_close(c, "closed");
            return;
        }
        if (rc == 0) {
            c->pending = 1;
            c->pend_media = media;
            c->v.held = media > 0;
            return;
        }
        ch_buf_reset(&c->sending);
        if (media > 0) {
            ch_media_viewer_advance(&c->v, media);
        }
    }
}

/* c's pending write left net's queue: written (the cursor advances past it), or dropped. */
static void on_written(ch_net_conn_t *n, void *arg, int status)
{
    conn_t *c = arg;
    (void)n;
    c->pending = 0;
    c->v.held = 0;
    if (status != 0 || c->closing) {
        ch_media__conn_close(c, c->v.doomed ? "slow" : "closed");
        return;
    }
    ch_buf_reset(&c->sending);
    if (c->pend_media > 0) {
        ch_media_viewer_advance(&c->v, c->pend_media);
        c->pend_media = 0;
    }
    if (c->migrating) {
        migrate_now(c);
        return;
    }
    conn_write(c);
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
        if (!c->pending && !c->more) {
            conn_write(c);
            continue;
        }
        /* Its socket is full (or its turn comes later). Over budget between writes: skip now
         * (in conn_write); stuck in a write far behind, or doomed by the window: close it. */
        size_t lag = ch_media_viewer_lag(&c->v);
        if (c->v.doomed || (c->pending && lag > 2 * budget)) {
            ch_media__conn_close(c, "slow");
        } else if (!c->pending && lag > budget) {
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
    /* The scheme of the port it came in on: a client follows Content-Base for its SETUP. */
    if (ch_net_conn_is_tls(&c->net)) {
        ch_buf_append(out, "rtsps://", 8);
    } else {
        ch_buf_append(out, "rtsp://", 7);
    }
    const char *host = at != NULL ? at + 1 : req->target.ptr + u->scheme.len + 3;
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
    c->v.lost = viewer_lost;
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

/* The view token tok for camera id: 0 (c->acc filled), or 401 / 403 with *why. The client
 * certificate's key the connection showed goes along: an agency may be held to its own. A
 * refusal keeps what authorize filled (a valid token without the agency's certificate), so
 * that the record says whose grant it was. */
static int check_token(conn_t *c, ch_slice_t tok, int64_t id, const char **why)
{
    ch_media_relay_t *r = c->loop->relay;
    *why = tok.len == 0 ? "no_credential" : "bad_token";
    memset(&c->acc, 0, sizeof(c->acc));
    int st = tok.len == 0 ? 401
             : r->cfg.authorize != NULL
                 ? r->cfg.authorize(r->cfg.ud, tok.ptr, tok.len, id,
                                    ch_net_conn_tls_peer_spki(&c->net), &c->acc, why)
                 : 403;
    if (st != 0) {
        return st == 401 ? 401 : 403;
    }
    return 0;
}

/* c's socket left this loop (ch_net_conn_detach): c goes to its camera's loop. */
static void migrate_closed(ch_net_conn_t *n)
{
    conn_t *c = n->data;
    c->net_open = 0;
    ch_media__cmd_t *cmd = ch_calloc(1, sizeof(*cmd));
    cmd->kind = CMD_CONN;
    cmd->conn = c;
    ch_media__post(ch_media__owner(c->relay, c->camera_id), cmd);
}

/* Hands c to its camera's loop once its pending write left (on_written comes back here); its
 * unprocessed input and answers not yet written go with it. */
static void migrate_now(conn_t *c)
{
    if (c->pending) {
        ch_net_conn_read_stop(&c->net);
        return;
    }
    loop_unlink(c);
    int rc = ch_net_conn_detach(&c->net, &c->fd, &c->carry, &c->tls_carry, migrate_closed);
    if (rc != 0) {
        loop_link(c->loop, c);
        c->migrating = 0;
        ch_media__conn_close(c, "error");
    }
}

/* Marks c for its camera's loop: process hands it over with the input from the request on. */
static void migrate(conn_t *c)
{
    c->migrating = 1;
}

static void on_net_read(ch_net_conn_t *n)
{
    process(n->data);
}

/* An RTSPS handshake that failed (a bad client certificate, bytes that are not TLS) or did not
 * end in time: counted, a failure told to the hub with OpenSSL's reason (it audits it as a
 * refusal, as for HTTPS), and only this connection closed. */
static void tls_handshake_failed(conn_t *c, int status)
{
    ch_media_relay_t *r = c->relay;
    const char *why = ch_net_conn_tls_error(&c->net);
    if (status == UV_ETIMEDOUT) {
        atomic_fetch_add_explicit(&r->tls_timed_out, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&r->tls_failed, 1, memory_order_relaxed);
        if (status == UV_EPROTO) {
            ch_media__tls_refused(c->loop, c->peer, why != NULL ? why : "TLS error");
        }
    }
    ch_log(CH_LOG_DEBUG, "media", "msg=\"RTSPS handshake failed\" peer=%s reason=\"%s\"", c->peer,
           why != NULL ? why : uv_err_name(status));
}

static void on_net_error(ch_net_conn_t *n, int status)
{
    conn_t *c = n->data;
    if (ch_net_conn_is_tls(n) && !ch_net_conn_tls_ready(n)) {
        tls_handshake_failed(c, status);
        ch_media__conn_close(c, "tls");
        return;
    }
    ch_media__conn_close(c, status == UV_ENOBUFS ? "error" : "closed");
}

void ch_media__conn_adopt(ch_media__loop_t *l, conn_t *c)
{
    if (l == NULL || l->stopping) {
        close(c->fd);
        conn_free(c);
        return;
    }
    if (in_reserve(c->relay, c->fd)) {
        /* Moved from another loop on a duplicate of its descriptor (ch_net_conn_detach): the
         * band applies to that one as to the accepted one, unanswered and unrecorded. */
        count_refusal(c->relay, CH_MEDIA_REFUSED_FD_RESERVE);
        close(c->fd);
        conn_free(c);
        return;
    }
    loop_link(l, c);
    c->migrating = 0;
    c->net.data = c;
    c->net.on_read = on_net_read;
    c->net.on_error = on_net_error;
    int rc = ch_net_conn_open(&c->net, &l->loop, c->fd, IN_CAP, 0);
    c->net_open = 1;
    if (rc != 0) {
        close(c->fd);
    }
    c->fd = -1;
    if (rc == 0 && c->tls_carry != NULL) {
        ch_net_conn_tls_adopt(&c->net, c->tls_carry);
        c->tls_carry = NULL;
    }
    if (rc == 0 && c->tls_accept != NULL) {
        rc = ch_net_conn_tls_accept(&c->net, c->tls_accept, c->tls_handshake_ms);
    }
    ch_net_tls_unref(c->tls_accept);
    c->tls_accept = NULL;
    if (rc == 0 && c->carry.len > 0) {
        rc = ch_net_conn_feed(&c->net, c->carry.data, c->carry.len);
    }
    ch_buf_reset(&c->carry);
    if (rc != 0) {
        ch_media__conn_close(c, "error");
        return;
    }
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
    while (!c->closing && c->net_open && !c->handle_open && !c->migrating && !c->blocked &&
           off < c->net.in_len) {
        const char *b = (const char *)c->net.in + off;
        size_t len = c->net.in_len - off;
        if (c->ws && c->st == C_PLAYING) {
            int r = ws_input(c, c->net.in + off, len);
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
            c->last_req_ms = ch_media__now_ms();
            int wait = handle_http(c, &req);
            if (c->migrating) {
                break; /* the request goes with the rest of the input, unhandled */
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
            off = c->net.in_len;
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
            off = c->net.in_len;
            break;
        }
        c->last_req_ms = ch_media__now_ms();
        int wait = handle(c, &req);
        if (c->migrating) {
            break; /* moved to another loop: the request goes with the rest, unhandled */
        }
        off += (size_t)total;
        if (wait) {
            break;
        }
    }
    if (c->closing || !c->net_open || c->handle_open) {
        return;
    }
    ch_net_conn_consume(&c->net, off);
    if (c->migrating) {
        migrate_now(c);
        return;
    }
    if (c->net.in_len == c->net.in_cap) {
        if (!c->blocked) {
            ch_media__conn_close(c, "error"); /* a request head larger than we take */
            return;
        }
        ch_net_conn_read_stop(&c->net); /* input waits (a DESCRIBE or PLAY pending) */
    } else if (ch_net_conn_read_start(&c->net) != 0) {
        ch_media__conn_close(c, "closed");
        return;
    }
    conn_write(c);
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
    ch_buf_init(&c->out);
    ch_buf_init(&c->sending);
    ch_buf_init(&c->carry);
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

/* Loop 0's listeners: plain RTSP, or RTSPS (s is l->tls_listener), whose connections are
 * refused and counted at the door exactly as plain ones before any handshake is spent. */
static void on_accept(ch_media__sock_t *s, int status, int events)
{
    (void)events;
    ch_media__loop_t *l = s->owner;
    if (status < 0) {
        return;
    }
    ch_media_relay_t *r = l->relay;
    int tls = s == l->tls_listener;
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
        if (tls) {
            pthread_mutex_lock(&r->tls_lock);
            c->tls_accept = ch_net_tls_ref(r->tls);
            c->tls_handshake_ms = r->tls_handshake_ms;
            pthread_mutex_unlock(&r->tls_lock);
            if (c->tls_accept == NULL) {
                close(fd); /* RTSPS turned off: never plaintext on its port */
                conn_free(c);
                continue;
            }
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
static void refuse_handed_over(int fd, ch_net_tls_conn_t *tls)
{
    static const char answer[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: 83\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n" DOOR_BODY;
    ch_net_refuse_fd(fd, tls, answer, sizeof(answer) - 1);
}

void ch_media_relay_adopt(ch_media_relay_t *r, int fd, const void *raw, size_t len,
                          ch_net_tls_conn_t *tls)
{
    if (r == NULL || len > IN_CAP) {
        ch_net_tls_conn_free(tls);
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
        refuse_handed_over(fd, tls);
        return;
    }
    conn_t *c = conn_new(r, fd, &ss);
    if (door_enter(c) >= 0) {
        conn_free(c);
        refuse_handed_over(fd, tls);
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ch_buf_append(&c->carry, raw, len);
    c->tls_carry = tls;
    ch_media__cmd_t *cmd = ch_calloc(1, sizeof(*cmd));
    cmd->kind = CMD_CONN;
    cmd->conn = c;
    ch_media__post(&r->loops[0], cmd);
}

void ch_media__listener_start(ch_media__loop_t *l, int fd, int tls)
{
    ch_media__sock_t *s = ch_media__sock_new(l, fd, l, on_accept);
    if (s == NULL) {
        close(fd);
        return;
    }
    if (tls) {
        l->tls_listener = s;
    } else {
        l->listener = s;
    }
    ch_media__sock_want(s, UV_READABLE);
}
