/*
 * health/probe.c: one camera probe on the control loop: a connection dialled by net's client
 * (a host name resolved on the pool, a non-blocking connect), then net's connection (a read
 * buffer of CH_HEALTH__PROBE_IN bytes, the writes, the rest of the deadline) that carries the
 * requests of a probe session (probe_session.c over proto's RTSP client session: OPTIONS,
 * DESCRIBE, one answer to a challenge) and its answers, all within one deadline
 * (health.probe_timeout_s); a redirect closes the connection and begins again at its URL (the
 * session bounds them, as for the relay's pull). A probe costs the camera one short connection and
 * two or three answers; it never starts a stream. An rtsps:// camera is probed over TLS inside
 * the same connection (net's ch_net_conn_tls_connect): its certificate checked against the
 * hub's CAs and the URL's host, or its key against the camera's pin; a certificate refused is
 * a failed probe whose reason says why ("TLS: certificate rejected", "TLS: hostname mismatch").
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
    ch_net_dial_t dial; /* dials the camera (net's client) */
    ch_net_conn_t conn; /* then carries the session (net's connection) */
    int on;             /* the connection now: 0 none, ON_DIAL, ON_CONN */
    int open;           /* the dials and conns not yet closed */
    int redirecting;    /* once all are closed, begin again at the redirect */
    int done;
    char user[128], pass[128];     /* the credentials, kept across redirects */
    char pin[CH_NET_TLS_SPKI_LEN]; /* the camera's pinned key; empty: none */
    ch_net_tls_t *tls;             /* the client context (a reference), or NULL */
    uint64_t handshake_ms;
    int64_t camera_id;
    uint64_t t0_ns;
    uint64_t timeout_ms;
    uint64_t deadline_ms; /* uv_now's clock: the whole probe's, redirects included */
    ch_health__probe_cb cb;
    void *ud;
    ch_health__session_t s;
};

enum { ON_DIAL = 1, ON_CONN = 2 };

static void begin(ch_health__probe_t *p, const char *url, const char *user, const char *password);

static void maybe_free(ch_health__probe_t *p)
{
    if (p->done && p->open == 0) {
        ch_health__session_fini(&p->s);
        ch_net_tls_unref(p->tls);
        ch_free(p);
    }
}

/* A dial or a conn is closed: once all are, a redirect begins again, an ended probe is freed. */
static void closed_one(ch_health__probe_t *p)
{
    if (--p->open > 0) {
        return;
    }
    if (p->redirecting && !p->done) {
        p->redirecting = 0;
        begin(p, p->s.rtsp.redirect, p->user, p->pass);
        return;
    }
    maybe_free(p);
}

static void on_dial_closed(ch_net_dial_t *d)
{
    closed_one(d->data);
}

static void on_conn_closed(ch_net_conn_t *c)
{
    closed_one(c->data);
}

static void close_connection(ch_health__probe_t *p)
{
    if (p->on == ON_DIAL) {
        ch_net_dial_close(&p->dial, on_dial_closed);
    } else if (p->on == ON_CONN) {
        ch_net_conn_close(&p->conn, on_conn_closed);
    }
    p->on = 0;
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
    close_connection(p);
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

/* Writes the session's next request, or reports its end, or follows a redirect. */
static void advance(ch_health__probe_t *p)
{
    if (p->s.rtsp.state == CH_PROTO_RTSP_CLIENT_REDIRECTED && !p->s.done && !p->done) {
        snprintf(p->user, sizeof(p->user), "%s", p->s.rtsp.user);
        snprintf(p->pass, sizeof(p->pass), "%s", p->s.rtsp.pass);
        p->redirecting = 1;
        close_connection(p);
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
    int rc = ch_net_conn_send(&p->conn, out->data, out->len);
    ch_buf_reset(out);
    if (rc != 0) {
        fail(p, "write to the camera: %s", rc == CH_EIO ? "connection lost" : uv_strerror(rc));
    }
}

static void on_read(ch_net_conn_t *c)
{
    ch_health__probe_t *p = c->data;
    if (p->done || p->redirecting) {
        return;
    }
    ch_net_conn_consume(c, ch_health__session_input(&p->s, (const char *)c->in, c->in_len));
    advance(p);
}

static void fail_timeout(ch_health__probe_t *p)
{
    fail(p, "no answer within %llu s (%s)", (unsigned long long)(p->timeout_ms / 1000),
         p->on != ON_CONN                                    ? "connect"
         : p->s.rtsp.tls && !ch_net_conn_tls_ready(&p->conn) ? "TLS handshake"
         : p->s.rtsp.state == CH_PROTO_RTSP_CLIENT_OPTIONS   ? "OPTIONS"
                                                             : "DESCRIBE");
}

/* The deadline, the camera gone, a failed read or write (a full buffer ends the session
 * before the conn would say UV_ENOBUFS). */
static void on_conn_error(ch_net_conn_t *c, int status)
{
    ch_health__probe_t *p = c->data;
    if (p->done || p->redirecting) {
        return;
    }
    if (status == UV_ETIMEDOUT) {
        fail_timeout(p);
        return;
    }
    const char *tls_why = ch_net_conn_tls_error(c);
    if (tls_why != NULL) {
        fail(p, "TLS: %s", tls_why); /* "certificate rejected" (the pin), "hostname mismatch" */
        return;
    }
    fail(p, "%s",
         status == UV_EOF       ? "the camera closed the connection"
         : status == UV_ENOBUFS ? "the camera's answer is too long"
                                : uv_strerror(status));
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
    p->conn.data = p;
    p->conn.on_read = on_read;
    p->conn.on_error = on_conn_error;
    p->on = ON_CONN;
    p->open++; /* the dial closes now, the conn when the probe ends or is redirected */
    int rc = ch_net_dial_conn(d, &p->conn, CH_HEALTH__PROBE_IN, 0, on_dial_closed);
    if (rc == 0 && p->s.rtsp.tls) {
        /* The requests written next wait for the handshake inside the connection. */
        rc = ch_net_conn_tls_connect(&p->conn, p->tls, p->s.rtsp.host,
                                     p->pin[0] != '\0' ? p->pin : NULL, p->handshake_ms);
        if (rc != 0) {
            const char *why = ch_net_conn_tls_error(&p->conn);
            fail(p, "TLS: %s", why != NULL ? why : ch_strerror(rc));
            return;
        }
    }
    if (rc == 0) {
        rc = ch_net_conn_read_start(&p->conn);
    }
    if (rc != 0) {
        fail(p, "cannot read from the camera: %s", uv_strerror(rc));
        return;
    }
    ch_proto_rtsp_client_start(&p->s.rtsp);
    advance(p);
}

void ch_health__probe_start(uv_loop_t *loop, ch_health__probe_t **list, int64_t camera_id,
                            const char *url, const char *user, const char *password,
                            const char *tls_pin, ch_net_tls_t *tls, uint64_t handshake_ms,
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
    snprintf(p->pin, sizeof(p->pin), "%s", tls_pin != NULL ? tls_pin : "");
    p->tls = tls != NULL ? ch_net_tls_ref(tls) : NULL;
    p->handshake_ms = handshake_ms;
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
    if (p->s.rtsp.tls && p->tls == NULL) {
        fail(p, "rtsps:// needs the hub's TLS client, which is not set up");
        return;
    }
    p->dial.data = p;
    p->on = ON_DIAL;
    p->open++;
    ch_net_dial_start(&p->dial, p->loop, p->s.rtsp.host, p->s.rtsp.port, p->deadline_ms,
                      on_connected);
}
