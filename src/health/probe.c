/*
 * health/probe.c: one camera probe on the control loop: a connection dialled by net's client
 * (a host name resolved on the pool, a non-blocking connect) that carries the requests of a
 * probe session (probe_session.c over proto's RTSP client session: OPTIONS, DESCRIBE, one
 * answer to a challenge) and its answers, all within one deadline (health.probe_timeout_s,
 * the dial's); a redirect closes the connection and begins again at its URL (the session
 * bounds them, as for the relay's pull). A probe costs the camera one short connection and two or
 * three answers; it never starts a stream.
 */
#include "health/health_internal.h"
#include "net/net.h"
#include "proto/proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct ch_health__probe {
    ch_health__probe_t *next, **prev; /* the runner's list of running probes */
    uv_loop_t *loop;
    ch_net_dial_t dial; /* the connection to the camera (net's client) */
    int dialing;        /* dial started and not yet closed */
    int writes, done;
    char user[128], pass[128]; /* the credentials, kept across redirects */
    int64_t camera_id;
    uint64_t t0_ns;
    uint64_t timeout_ms;
    uint64_t deadline_ms; /* uv_now's clock: the whole probe's, redirects included */
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
    if (p->done && !p->dialing && p->writes == 0) {
        ch_health__session_fini(&p->s);
        ch_free(p);
    }
}

static void on_dial_closed(ch_net_dial_t *d)
{
    ch_health__probe_t *p = d->data;
    p->dialing = 0;
    maybe_free(p);
}

/* Reports the session's outcome once, then closes the probe's connection. */
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
    if (p->dialing && !p->dial.closing) {
        ch_net_dial_close(&p->dial, on_dial_closed);
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
static void on_closed_for_redirect(ch_net_dial_t *d)
{
    ch_health__probe_t *p = d->data;
    p->dialing = 0;
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
        ch_net_dial_close(&p->dial, on_closed_for_redirect);
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
    int rc = uv_write(&wr->req, (uv_stream_t *)&p->dial.tcp, &b, 1, on_written);
    if (rc != 0) {
        ch_free(wr);
        fail(p, "write to the camera: %s", uv_strerror(rc));
        return;
    }
    p->writes++;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
    ch_health__probe_t *p = ((ch_net_dial_t *)hd->data)->data;
    CH_UNUSED(suggested);
    *b = uv_buf_init(p->s.in + p->s.in_len, (unsigned)(sizeof(p->s.in) - p->s.in_len));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    ch_health__probe_t *p = ((ch_net_dial_t *)st->data)->data;
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

static void fail_timeout(ch_health__probe_t *p)
{
    fail(p, "no answer within %llu s (%s)", (unsigned long long)(p->timeout_ms / 1000),
         !p->dial.connected                                ? "connect"
         : p->s.rtsp.state == CH_PROTO_RTSP_CLIENT_OPTIONS ? "OPTIONS"
                                                           : "DESCRIBE");
}

static void on_deadline(ch_net_dial_t *d)
{
    fail_timeout(d->data);
}

static void on_connected(ch_net_dial_t *d, int status)
{
    ch_health__probe_t *p = d->data;
    if (p->done) {
        return;
    }
    if (status == UV_ETIMEDOUT) {
        fail_timeout(p);
        return;
    }
    if (status < 0 && !d->resolved) {
        fail(p, "cannot resolve the camera's host: %s", uv_strerror(status));
        return;
    }
    if (status < 0) {
        fail(p, "cannot connect to the camera: %s",
             status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
        return;
    }
    (void)uv_tcp_nodelay(&d->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&d->tcp, on_alloc, on_read);
    if (rc != 0) {
        fail(p, "cannot read from the camera: %s", uv_strerror(rc));
        return;
    }
    ch_proto_rtsp_client_start(&p->s.rtsp);
    advance(p);
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
    p->deadline_ms = uv_now(loop) + timeout_ms;
    ch_health__session_init(&p->s);
    begin(p, url, user, password);
}

/* A session for url (its userinfo, if any, before user and password) on a new connection. */
static void begin(ch_health__probe_t *p, const char *url, const char *user, const char *password)
{
    if (ch_health__session_begin(&p->s, url, user, password) != 0) {
        finish(p);
        return;
    }
    p->dial.data = p;
    p->dial.on_deadline = on_deadline;
    p->dialing = 1;
    ch_net_dial_start(&p->dial, p->loop, p->s.rtsp.host, p->s.rtsp.port, p->deadline_ms,
                      on_connected);
}
