/*
 * health/probe.c: one camera probe on the control loop: a non-blocking libuv TCP connection (a
 * host name through uv_getaddrinfo on the pool) that carries the requests of a probe session
 * (probe_session.c over proto's RTSP client session: OPTIONS, DESCRIBE, one answer to a
 * challenge) and its answers, all within one deadline (health.probe_timeout_s); a redirect
 * closes the connection and begins again at its URL (the session bounds them, as for the
 * relay's pull). A probe costs the camera one short connection and two or three answers; it
 * never starts a stream.
 */
#include "health/health_internal.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct ch_health__probe {
    ch_health__probe_t *next, **prev; /* the runner's list of running probes */
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int tcp_open, resolving, open_handles, writes, done, connected;
    char user[128], pass[128]; /* the credentials, kept across redirects */
    int64_t camera_id;
    uint16_t port;
    uint64_t t0_ns;
    uint64_t timeout_ms;
    ch_health__probe_cb cb;
    void *ud;
    ch_health__session_t s;
};

/* One request in flight: its bytes live until the write's callback. */
typedef struct write_req {
    uv_write_t req;
    ch_health__probe_t *p;
    size_t len;
    char data[];
} write_req_t;

static void maybe_free(ch_health__probe_t *p)
{
    if (p->done && p->open_handles == 0 && p->writes == 0 && !p->resolving) {
        ch_health__session_fini(&p->s);
        ch_free(p);
    }
}

static void on_closed(uv_handle_t *hd)
{
    ch_health__probe_t *p = hd->data;
    p->open_handles--;
    maybe_free(p);
}

/* Reports the session's outcome once, then closes the probe's handles. */
static void finish(ch_health__probe_t *p)
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
    ch_health_probe_result_t r = {
        .outcome = p->s.outcome,
        .latency_s = (double)(ch_time_mono_ns() - p->t0_ns) / 1e9,
        .codec = p->s.codec[0] ? p->s.codec : NULL,
        .reason = p->s.reason,
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

static void fail(ch_health__probe_t *p, const char *fmt, ...) CH_PRINTF(2, 3);
static void fail(ch_health__probe_t *p, const char *fmt, ...)
{
    if (!p->s.done) {
        char reason[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        ch_health__session_end(&p->s, CH_HEALTH_PROBE_FAILED, NULL, "%s", reason);
    }
    finish(p);
}

void ch_health__probe_abort(ch_health__probe_t *p)
{
    fail(p, "aborted");
}

static void on_written(uv_write_t *w, int status)
{
    write_req_t *wr = w->data;
    ch_health__probe_t *p = wr->p;
    ch_free(wr);
    p->writes--;
    /* UV_ECANCELED: the connection was closed under it for a redirect. */
    if (status < 0 && status != UV_ECANCELED && !p->done) {
        fail(p, "write to the camera: %s", uv_strerror(status));
    }
    maybe_free(p);
}

static void begin(ch_health__probe_t *p, const char *url, const char *user, const char *password);

/* The old connection is closed: the redirect's URL gets a new one (within the same deadline). */
static void on_closed_for_redirect(uv_handle_t *hd)
{
    ch_health__probe_t *p = hd->data;
    p->open_handles--;
    if (p->done) {
        maybe_free(p);
        return;
    }
    begin(p, p->s.rtsp.redirect, p->user, p->pass);
}

/* Writes the session's next request, or reports its end, or follows a redirect. */
static void advance(ch_health__probe_t *p)
{
    if (p->s.rtsp.state == CH_PROTO_RTSP_CLIENT_REDIRECTED && !p->s.done && !p->done) {
        snprintf(p->user, sizeof(p->user), "%s", p->s.rtsp.user);
        snprintf(p->pass, sizeof(p->pass), "%s", p->s.rtsp.pass);
        p->connected = 0;
        p->tcp_open = 0;
        uv_close((uv_handle_t *)&p->tcp, on_closed_for_redirect);
        return;
    }
    if (p->s.done) {
        finish(p);
        return;
    }
    ch_buf_t *out = &p->s.rtsp.out;
    if (out->len == 0) {
        return; /* more of the answer to come */
    }
    write_req_t *wr = ch_malloc(sizeof(*wr) + out->len);
    wr->p = p;
    wr->len = out->len;
    memcpy(wr->data, out->data, wr->len);
    ch_buf_reset(out);
    wr->req.data = wr;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
    int rc = uv_write(&wr->req, (uv_stream_t *)&p->tcp, &b, 1, on_written);
    if (rc != 0) {
        ch_free(wr);
        fail(p, "write to the camera: %s", uv_strerror(rc));
        return;
    }
    p->writes++;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
    ch_health__probe_t *p = hd->data;
    CH_UNUSED(suggested);
    *b = uv_buf_init(p->s.in + p->s.in_len, (unsigned)(sizeof(p->s.in) - p->s.in_len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    ch_health__probe_t *p = st->data;
    CH_UNUSED(b);
    if (p->done || n == 0) {
        return;
    }
    if (n < 0) {
        fail(p, "%s", n == UV_EOF ? "the camera closed the connection" : uv_strerror((int)n));
        return;
    }
    ch_health__session_input(&p->s, (size_t)n);
    advance(p);
}

static void on_connected(uv_connect_t *req, int status)
{
    ch_health__probe_t *p = req->data;
    if (p->done) {
        return;
    }
    if (status < 0) {
        fail(p, "cannot connect to the camera: %s",
             status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
        return;
    }
    p->connected = 1;
    (void)uv_tcp_nodelay(&p->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
    if (rc != 0) {
        fail(p, "cannot read from the camera: %s", uv_strerror(rc));
        return;
    }
    ch_proto_rtsp_client_start(&p->s.rtsp);
    advance(p);
}

static void connect_to(ch_health__probe_t *p, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(p->loop, &p->tcp);
    if (rc != 0) {
        fail(p, "socket: %s", uv_strerror(rc));
        return;
    }
    p->tcp.data = p;
    p->tcp_open = 1;
    p->open_handles++;
    p->conn.data = p;
    rc = uv_tcp_connect(&p->conn, &p->tcp, sa, on_connected);
    if (rc != 0) {
        fail(p, "cannot connect to the camera: %s", uv_strerror(rc));
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
        fail(p, "cannot resolve the camera's host: %s", uv_strerror(status));
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
    fail(p, "no answer within %llu s (%s)", (unsigned long long)(p->timeout_ms / 1000),
         !p->connected                                     ? "connect"
         : p->s.rtsp.state == CH_PROTO_RTSP_CLIENT_OPTIONS ? "OPTIONS"
                                                           : "DESCRIBE");
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
    p->timeout_ms = timeout_ms;
    ch_health__session_init(&p->s);
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->open_handles = 1;
    uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);
    begin(p, url, user, password);
}

/* A session for url (its userinfo, if any, before user and password) on a new connection. */
static void begin(ch_health__probe_t *p, const char *url, const char *user, const char *password)
{
    if (ch_health__session_begin(&p->s, url, user, password) != 0) {
        finish(p);
        return;
    }
    p->port = p->s.rtsp.port;
    const char *host = p->s.rtsp.host;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(host, p->port, &a4) == 0) {
        connect_to(p, (const struct sockaddr *)&a4);
    } else if (uv_ip6_addr(host, p->port, &a6) == 0) {
        connect_to(p, (const struct sockaddr *)&a6);
    } else {
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        p->gai.data = p;
        int rc = uv_getaddrinfo(p->loop, &p->gai, on_resolved, host, NULL, &hints);
        if (rc != 0) {
            fail(p, "cannot resolve the camera's host: %s", uv_strerror(rc));
            return;
        }
        p->resolving = 1;
    }
}
