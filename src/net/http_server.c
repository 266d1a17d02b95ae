/*
 * The HTTP/1.1 server of net.h on libuv.
 *
 * One ch_http_conn_t per TCP connection holds everything the connection needs, so that the
 * common path (a keep-alive GET answered at once) allocates nothing per request. Its socket,
 * read buffer, deadline and writes are net's connection (conn.c, ch_net_conn_t), so that TLS
 * goes in there once for every protocol:
 *   - conn.in: the read buffer. Requests are parsed in place (proto/), so the slices of a
 *     request point into it; pipelined requests simply wait there, after the current one, which
 *     is always at its start (an answered request is consumed, which moves no byte). Its cap
 *     is set per phase: a head's, or a body's known size.
 *   - out: responses not yet handed to the connection. Responses made during one read callback
 *     are gathered and written with one system call at its end (as Redis does), tried with
 *     uv_try_write first, which needs no write request.
 *   - wbuf: the bytes the connection's queue references (ch_net_conn_write_ref) when the kernel
 *     took only part: out and wbuf swap, so nothing is copied.
 *   - the connection's one deadline, whose timer is re-armed lazily: a keep-alive request costs
 *     a store, not a heap update. Which deadline it is (idle, request, linger) is ours.
 *
 * A connection moves through stages: HEAD (reading a head), BODY (reading a Content-Length
 * body), HANDLER (the handler has the request), CLOSING (a last response is being written, no
 * more requests are read) and DRAIN (after that response, our side is shut down and whatever
 * the client still sends is read and thrown away, so that the kernel does not answer it with a
 * reset that could destroy the response before the client read it).
 *
 * A connection is freed when both its handles are closed and no handler holds its request; a
 * handler that answers after the connection died is answered into the void.
 */
#include "net/net.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define IN_INITIAL     4096         /* first read buffer of a connection */
#define IN_HEAD_SLACK  2048         /* a head's buffer holds max_head and this: 431 is seen */
#define OUT_HIGH_WATER (256 * 1024) /* stop reading requests while this much is unwritten */
#define OUT_KEEP_MAX   (64 * 1024)  /* a written buffer larger than this is given back */
#define LINGER_MS      2000         /* how long DRAIN waits for the client to close */
#define LISTEN_BACKLOG 4096         /* the kernel caps it at net.core.somaxconn */
#define EVICT_SAMPLE   128          /* idle connections looked at to choose one to close */

enum conn_stage {
    STAGE_HEAD,
    STAGE_BODY,
    STAGE_HANDLER,
    STAGE_CLOSING,
    STAGE_DRAIN,
};

enum deadline_kind {
    DEADLINE_NONE,
    DEADLINE_IDLE,    /* keep-alive: no request started */
    DEADLINE_REQUEST, /* a request started and must be complete by then: else 408 */
    DEADLINE_LINGER,  /* DRAIN: the client had its chance to read our last response */
};

struct ch_http_conn {
    ch_net_conn_t conn; /* socket, read buffer, deadline, write queue */
    ch_http_server_t *srv;
    ch_http_conn_t *prev;
    ch_http_conn_t *next;
    ch_http_conn_t *idle_prev; /* the server's idle list, oldest first (when in_idle) */
    ch_http_conn_t *idle_next;

    const uint8_t *head_at; /* where the current head was parsed (conn.in may move since) */
    ch_buf_t out;
    ch_buf_t wbuf;

    ch_http_request_t req;
    char tcp_peer[64];    /* the connection's peer, "ADDR:PORT" */
    uint8_t tcp_addr[16]; /* and its address (IPv4 mapped), when tcp_addr_ok */
    int tcp_addr_ok;
    ch_net_door_node_t door; /* its place in the server's door (counts by address) */
    ch_http_header_t *headers;
    size_t headers_cap;
    size_t head_len;   /* bytes of the current head, from in_pos */
    uint64_t body_len; /* Content-Length of the current request */

    enum conn_stage stage;
    enum deadline_kind deadline_kind;
    unsigned conn_open : 1; /* conn not yet closed (its closed callback not run) */
    unsigned keep_alive : 1;
    unsigned is_head_method : 1;
    unsigned expect_continue : 1;
    unsigned sent_continue : 1;
    unsigned request_timed : 1; /* a DEADLINE_REQUEST covers the current request */
    unsigned in_flight : 1;
    unsigned batching : 1;      /* in on_read or conn_process: responses wait for their flush */
    unsigned write_pending : 1; /* conn's queue references wbuf */
    unsigned close_after_write : 1;
    unsigned closing : 1; /* uv_close called */
    unsigned in_idle : 1; /* on the server's idle list */
};

/* The requests the server answers itself, before any handler (see ch_http_server_refusals). */
typedef enum {
    REFUSE_BAD_REQUEST,
    REFUSE_TIMEOUT,
    REFUSE_BODY_TOO_LARGE,
    REFUSE_URI_TOO_LONG,
    REFUSE_HEADERS_TOO_LARGE,
    REFUSE_NOT_IMPLEMENTED,
    REFUSE_TOO_MANY_CONNECTIONS,
    REFUSE_VERSION,
    REFUSE__COUNT
} refusal_t;

static const struct {
    int status;
    const char *code;
} refusals[REFUSE__COUNT] = {
    [REFUSE_BAD_REQUEST] = {400, "bad_request"},
    [REFUSE_TIMEOUT] = {408, "request_timeout"},
    [REFUSE_BODY_TOO_LARGE] = {413, "payload_too_large"},
    [REFUSE_URI_TOO_LONG] = {414, "uri_too_long"},
    [REFUSE_HEADERS_TOO_LARGE] = {431, "headers_too_large"},
    [REFUSE_NOT_IMPLEMENTED] = {501, "not_implemented"},
    [REFUSE_TOO_MANY_CONNECTIONS] = {503, "too_many_connections"},
    [REFUSE_VERSION] = {505, "http_version_not_supported"},
};

_Static_assert(REFUSE__COUNT <= CH_HTTP_REFUSALS_MAX, "net.h: CH_HTTP_REFUSALS_MAX");

struct ch_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int listener_open;
    int listening;
    int port;
    ch_http_limits_t limits;
    uint64_t nofile; /* RLIMIT_NOFILE's soft limit when the limits were set; 0: unknown */
    ch_http_handler_fn handler;
    ch_http_body_limit_fn body_limit;
    void *ud;
    ch_cidr_t trusted[CH_CIDR_MAX]; /* reverse proxies whose X-Forwarded-For is believed */
    size_t num_trusted;

    /* Every connection not yet closed, counted in all (max_connections) and by address
     * (max_connections_per_addr; trusted proxies exempt) by the rule the relay uses. */
    ch_net_door_t door;
    ch_http_conn_t *conns; /* every connection not yet freed */
    /* Connections waiting for a request, in the order they began to wait: where a full
     * server looks for one to close for a newcomer. */
    ch_http_conn_t *idle_oldest, *idle_newest;
    size_t num_conns;
    size_t in_flight;
    uint64_t refused[REFUSE__COUNT];

    ch_proto_header_t *scratch; /* parser output, copied into the connection's headers */
    size_t scratch_cap;

    int shutting_down;
    int done_called;
    void (*done)(void *ud);
    void *done_ud;

    time_t date_sec;
    char date_line[64]; /* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" */
    size_t date_len;

    /* TLS (ch_http_server_set_tls): the context new connections get, their handshake
     * deadline, the HSTS line every answer over TLS carries, and the failed handshakes. */
    ch_net_tls_t *tls;
    uint64_t tls_handshake_ms;
    char hsts[80];
    size_t hsts_len;
    uint64_t tls_failed, tls_timed_out;
    ch_http_tls_refusal_fn on_tls_refusal;
    void *tls_refusal_ud;
};

static void conn_process(ch_http_conn_t *c);
static void conn_flush(ch_http_conn_t *c);
static void conn_close(ch_http_conn_t *c);
static void conn_update_reading(ch_http_conn_t *c);

/* ---- server bookkeeping -------------------------------------------------------------- */

/* Calls done and frees the server once shutdown was asked and every handle is closed. The
 * caller must not touch srv after this returns, as it may be gone. */
static void srv_check_done(ch_http_server_t *srv)
{
    if (!srv->shutting_down || srv->listener_open || srv->num_conns > 0 || srv->done_called) {
        return;
    }
    srv->done_called = 1;
    if (srv->done) {
        srv->done(srv->done_ud);
    }
    ch_net_door_fini(&srv->door);
    ch_net_tls_unref(srv->tls);
    ch_free(srv->scratch);
    ch_free(srv);
}

/* Refreshes the cached Date header line. Called per response; the formatting happens once per
 * second, which is all HTTP dates resolve. Formatted by hand because strftime's %a and %b
 * follow the locale and HTTP wants English names. */
static void srv_update_date(ch_http_server_t *srv)
{
    time_t now = time(NULL);
    if (now == srv->date_sec && srv->date_len) {
        return;
    }
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&now, &tm);
    int n =
        snprintf(srv->date_line, sizeof(srv->date_line),
                 "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday % 7], tm.tm_mday,
                 months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    srv->date_len = (n > 0 && (size_t)n < sizeof(srv->date_line)) ? (size_t)n : 0;
    srv->date_sec = now;
}

/* ---- deadlines ------------------------------------------------------------------------- */

/* Sets the connection's deadline to ms from now (0: none), a step, or idle for a keep-alive
 * wait. The connection's timer is moved only when it would fire later than the new deadline. */
static void conn_set_deadline(ch_http_conn_t *c, enum deadline_kind kind, uint64_t ms)
{
    /* A limit of 0 turns that timeout off. */
    c->deadline_kind = ms == 0 ? DEADLINE_NONE : kind;
    ch_net_conn_deadline(&c->conn, ms,
                         kind == DEADLINE_IDLE ? CH_NET_DEADLINE_IDLE : CH_NET_DEADLINE_STEP);
}

/* No deadline: a handler has the request. The connection's timer may still fire (a store
 * here, not a call, on the hot path); on_conn_error then does nothing. */
static void conn_clear_deadline(ch_http_conn_t *c)
{
    c->deadline_kind = DEADLINE_NONE;
}

/* ---- the idle list ---------------------------------------------------------------------- */

/* c waits for a request (again): to the newest end of the idle list. */
static void conn_idle_enter(ch_http_conn_t *c)
{
    ch_http_server_t *srv = c->srv;
    if (c->in_idle && srv->idle_newest == c) {
        return;
    }
    if (c->in_idle) {
        /* Out first: it goes back to the newest end. */
        c->in_idle = 0;
        if (c->idle_prev) {
            c->idle_prev->idle_next = c->idle_next;
        } else {
            srv->idle_oldest = c->idle_next;
        }
        c->idle_next->idle_prev = c->idle_prev; /* not the newest: it has a next */
    }
    c->in_idle = 1;
    c->idle_next = NULL;
    c->idle_prev = srv->idle_newest;
    if (srv->idle_newest) {
        srv->idle_newest->idle_next = c;
    } else {
        srv->idle_oldest = c;
    }
    srv->idle_newest = c;
}

/* c no longer waits: a request began, or it closes. No-op when not on the list. */
static void conn_idle_leave(ch_http_conn_t *c)
{
    ch_http_server_t *srv = c->srv;
    if (!c->in_idle) {
        return;
    }
    c->in_idle = 0;
    if (c->idle_prev) {
        c->idle_prev->idle_next = c->idle_next;
    } else {
        srv->idle_oldest = c->idle_next;
    }
    if (c->idle_next) {
        c->idle_next->idle_prev = c->idle_prev;
    } else {
        srv->idle_newest = c->idle_prev;
    }
    c->idle_prev = c->idle_next = NULL;
}

/* ---- writing --------------------------------------------------------------------------- */

/* Appends n bytes at *p, which the caller reserved room for. */
static char *put(char *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

/* Writes v in decimal at p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}

/* Appends a whole response to c->out. Bodies are left out for HEAD requests and for the
 * statuses that have none (1xx, 204, 304), and Content-Length too where RFC 9110 forbids it.
 * extra may be NULL; content_type may be NULL. */
static void conn_append_response(ch_http_conn_t *c, int status, const char *content_type,
                                 const char *extra, const void *body, size_t body_len,
                                 int keep_alive, int head_only)
{
    ch_http_server_t *srv = c->srv;
    if (status < 100 || status > 999) {
        status = 500;
    }
    const char *reason = ch_http_status_text(status);
    size_t reason_len = strlen(reason);
    size_t ct_len = content_type ? strlen(content_type) : 0;
    size_t extra_len = extra ? strlen(extra) : 0;
    int no_body = status < 200 || status == 204 || status == 304;
    int send_body = !no_body && !head_only && body_len > 0;

    srv_update_date(srv);
    /* Every fixed part below is counted in the 160. */
    ch_buf_reserve(&c->out, 160 + reason_len + srv->date_len + srv->hsts_len + ct_len + extra_len +
                                (send_body ? body_len : 0));
    char *p = c->out.data + c->out.len;
    p = put(p, "HTTP/1.1 ", 9);
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = put(p, "\r\nServer: cctvhub\r\n", 19);
    p = put(p, srv->date_line, srv->date_len);
    if (c->conn.tls != NULL && srv->hsts_len > 0) {
        p = put(p, srv->hsts, srv->hsts_len);
    }
    if (content_type) {
        p = put(p, "Content-Type: ", 14);
        p = put(p, content_type, ct_len);
        p = put(p, "\r\n", 2);
    }
    if (!no_body) {
        p = put(p, "Content-Length: ", 16);
        p = put_u64(p, body_len);
        p = put(p, "\r\n", 2);
    }
    if (status >= 200) {
        if (keep_alive) {
            p = put(p, "Connection: keep-alive\r\n", 24);
        } else {
            p = put(p, "Connection: close\r\n", 19);
        }
    }
    if (extra_len) {
        p = put(p, extra, extra_len);
    }
    p = put(p, "\r\n", 2);
    if (send_body) {
        p = put(p, body, body_len);
    }
    c->out.len = (size_t)(p - c->out.data);
    assert(c->out.len < c->out.cap);
    c->out.data[c->out.len] = '\0';
}

/* Appends s to b as the inside of a JSON string. */
static void json_escape(ch_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            ch_buf_append_char(b, '\\');
            ch_buf_append_char(b, (char)ch);
        } else if (ch < 0x20) {
            char u[7] = "\\u00";
            ch_hex_encode(u + 4, 3, &ch, 1, 0);
            ch_buf_append(b, u, 6);
        } else {
            ch_buf_append_char(b, (char)ch);
        }
    }
}

/* Makes the JSON error body of net.h into b. */
static void error_body(ch_buf_t *b, const char *code, const char *message, const char *field)
{
    ch_buf_append_str(b, "{\"error\":{\"code\":\"");
    json_escape(b, code ? code : "error");
    ch_buf_append_str(b, "\",\"message\":\"");
    json_escape(b, message ? message : "");
    ch_buf_append_char(b, '"');
    if (field) {
        ch_buf_append_str(b, ",\"field\":\"");
        json_escape(b, field);
        ch_buf_append_char(b, '"');
    }
    ch_buf_append_str(b, "}}");
}

/* The last response is out: shut our side down and wait (a little) for the client to close.
 * During a server shutdown the connection is closed at once instead, so that shutdown does
 * not wait for clients. */
static void conn_linger(ch_http_conn_t *c)
{
    if (c->closing || c->stage == STAGE_DRAIN) {
        return;
    }
    if (c->srv->shutting_down) {
        conn_close(c);
        return;
    }
    c->stage = STAGE_DRAIN;
    /* A failure of the shutdown comes to on_conn_error: the connection closes. */
    if (ch_net_conn_shutdown(&c->conn) < 0) {
        conn_close(c);
        return;
    }
    conn_set_deadline(c, DEADLINE_LINGER, LINGER_MS);
    conn_update_reading(c);
}

/* Called when every byte given to the kernel so far is written. */
static void conn_write_drained(ch_http_conn_t *c)
{
    if (c->close_after_write) {
        conn_linger(c);
        return;
    }
    /* Reading may have stopped for backpressure, and pipelined requests may wait in the
     * buffer: go on with them. */
    if (c->stage == STAGE_HEAD && !c->batching) {
        conn_process(c);
        if (!c->write_pending) {
            conn_flush(c);
        }
    }
    conn_update_reading(c);
}

/* The bytes of wbuf the connection queued have left: written (status 0), or dropped. */
static void on_out_written(ch_net_conn_t *conn, void *arg, int status)
{
    ch_http_conn_t *c = arg;
    CH_UNUSED(conn);
    c->write_pending = 0;
    c->wbuf.len = 0;
    if (c->wbuf.cap > OUT_KEEP_MAX) {
        ch_buf_fini(&c->wbuf);
    }
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->closing) {
        return;
    }
    if (c->out.len) {
        conn_flush(c);
        return;
    }
    conn_write_drained(c);
}

/* Hands c->out to the connection: uv_try_write first, which needs no request and finishes at
 * once in the common case; whatever the kernel does not take stays where it is, referenced by
 * the connection's queue, and out and wbuf swap (no copy). Only one such write is pending at a
 * time; responses made meanwhile wait in out. */
static void conn_flush(ch_http_conn_t *c)
{
    if (c->closing || c->write_pending || c->out.len == 0) {
        return;
    }
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned int)c->out.len);
    int rc = ch_net_conn_write_ref(&c->conn, &b, 1, on_out_written, c);
    if (rc == 1) {
        c->out.len = 0;
        if (c->out.cap > OUT_KEEP_MAX) {
            /* A large answer is out: an idle connection should not keep its memory. */
            ch_buf_fini(&c->out);
        }
        conn_write_drained(c);
        return;
    }
    if (rc < 0) {
        conn_close(c);
        return;
    }
    ch_buf_t tmp = c->wbuf;
    c->wbuf = c->out;
    c->out = tmp;
    c->out.len = 0;
    c->write_pending = 1;
    conn_update_reading(c);
}

/* Answers a request the server refuses (a limit or a malformed head) and closes the
 * connection after the answer. Never called while a handler has the request. */
static void conn_error(ch_http_conn_t *c, refusal_t why, const char *message)
{
    assert(!c->in_flight);
    if (c->closing || c->stage == STAGE_CLOSING || c->stage == STAGE_DRAIN) {
        return;
    }
    int status = refusals[why].status;
    const char *code = refusals[why].code;
    c->srv->refused[why]++;
    ch_log(CH_LOG_DEBUG, "net", "msg=\"request refused\" peer=%s status=%d code=%s", c->req.peer,
           status, code);
    ch_buf_t body;
    ch_buf_init(&body);
    error_body(&body, code, message, NULL);
    conn_append_response(c, status, "application/json", NULL, body.data, body.len, 0, 0);
    ch_buf_fini(&body);
    c->stage = STAGE_CLOSING;
    c->close_after_write = 1;
    conn_clear_deadline(c);
    conn_flush(c);
    conn_update_reading(c);
}

/* ---- closing --------------------------------------------------------------------------- */

/* Frees c once its handles are closed and no handler holds its request. */
static void conn_maybe_free(ch_http_conn_t *c)
{
    if (c->conn_open || c->in_flight) {
        return;
    }
    ch_http_server_t *srv = c->srv;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    srv->num_conns--;
    ch_free(c->headers);
    ch_buf_fini(&c->out);
    ch_buf_fini(&c->wbuf);
    ch_free(c);
    srv_check_done(srv);
}

static void on_conn_closed(ch_net_conn_t *conn)
{
    ch_http_conn_t *c = conn->data;
    c->conn_open = 0;
    conn_maybe_free(c);
}

/* Closes the connection now (without an answer). Safe to call more than once. */
static void conn_close(ch_http_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    ch_net_door_leave(&c->srv->door, &c->door);
    conn_idle_leave(c);
    ch_net_conn_close(&c->conn, on_conn_closed);
}

/* ---- reading --------------------------------------------------------------------------- */

/* Reads while the connection can take a request: not while a handler has one (requests are
 * answered in order, and the request's slices point into the buffer), not while a write is
 * pending (backpressure), and after the last response only in DRAIN. */
static void conn_update_reading(ch_http_conn_t *c)
{
    if (c->closing) {
        return;
    }
    int want;
    if (c->stage == STAGE_DRAIN) {
        want = 1;
    } else {
        want = !c->in_flight && !c->write_pending && !c->close_after_write &&
               c->stage != STAGE_CLOSING;
    }
    if (want == (int)c->conn.reading) {
        return;
    }
    if (want) {
        if (ch_net_conn_read_start(&c->conn) < 0) {
            conn_close(c);
        }
    } else {
        ch_net_conn_read_stop(&c->conn);
    }
}

/* The read buffer's phase: while a head is read it doubles up to the head limit (and a little,
 * so that a head over it is seen and refused); while a body is read it grows at once to the
 * whole request. Once all is consumed, a buffer above 64 KiB goes back (conn.c). */
static void conn_in_phase(ch_http_conn_t *c)
{
    size_t head_cap = c->srv->limits.max_head + IN_HEAD_SLACK;
    if (c->stage == STAGE_BODY) {
        size_t need = c->head_len + (size_t)c->body_len;
        ch_net_conn_in_limit(&c->conn, need > head_cap ? need : head_cap, need);
    } else {
        ch_net_conn_in_limit(&c->conn, head_cap, 0);
    }
}

/* The connection read bytes (conn.in holds them, the current request first). */
static void on_conn_read(ch_net_conn_t *conn)
{
    ch_http_conn_t *c = conn->data;
    if (c->closing) {
        return;
    }
    if (c->stage == STAGE_DRAIN) {
        ch_net_conn_consume(&c->conn, c->conn.in_len);
        return;
    }
    /* Responses made while processing this read are written together, by the flush below. */
    c->batching = 1;
    conn_process(c);
    conn_flush(c);
    c->batching = 0;
    conn_update_reading(c);
}

/* EOF, a reset, a failed write, the deadline, or a TLS handshake that failed or did not end
 * in time (counted; a refusal told to the owner with its reason). */
static void on_conn_error(ch_net_conn_t *conn, int status)
{
    ch_http_conn_t *c = conn->data;
    ch_http_server_t *srv = c->srv;
    if (ch_net_conn_is_tls(conn) && !ch_net_conn_tls_ready(conn)) {
        const char *why = ch_net_conn_tls_error(conn);
        if (status == UV_ETIMEDOUT) {
            srv->tls_timed_out++;
        } else if (status == UV_EPROTO) {
            srv->tls_failed++;
            if (srv->on_tls_refusal != NULL) {
                srv->on_tls_refusal(srv->tls_refusal_ud, c->tcp_peer,
                                    why != NULL ? why : "TLS error");
            }
        }
        ch_log(CH_LOG_DEBUG, "net", "msg=\"TLS handshake failed\" peer=%s reason=\"%s\"",
               c->tcp_peer, why != NULL ? why : uv_err_name(status));
        conn_close(c);
        return;
    }
    if (status != UV_ETIMEDOUT) {
        /* A request half read is lost; the client gave up on it. */
        conn_close(c);
        return;
    }
    switch (c->deadline_kind) {
    case DEADLINE_REQUEST:
        conn_error(c, REFUSE_TIMEOUT, "the request was not received in time");
        break;
    case DEADLINE_IDLE:
    case DEADLINE_LINGER:
        conn_close(c);
        break;
    case DEADLINE_NONE:
        break;
    }
}

/* ---- requests -------------------------------------------------------------------------- */

/* Tells whether the request target seen so far is over max_target, for a head that is not
 * complete yet: a client sending a huge target then gets 414, not 431 or a timeout. The
 * parser has checked the bytes so far, so the target runs from the first space on. */
static int target_over_limit(const char *p, size_t n, size_t max_target)
{
    size_t i = 0;
    while (i < n && (p[i] == '\r' || p[i] == '\n')) {
        i++;
    }
    const char *sp = memchr(p + i, ' ', n - i);
    if (sp == NULL) {
        return 0;
    }
    size_t t = (size_t)(sp - p) + 1;
    const char *end = memchr(p + t, ' ', n - t);
    size_t len = end ? (size_t)(end - (p + t)) : n - t;
    return len > max_target;
}

/* Points the connection's request at the parsed head: method, target, path and query, and
 * the headers (copied into the connection's own array, as the parser's is shared). */
static void conn_set_slices(ch_http_conn_t *c, const ch_proto_request_t *pr)
{
    if (c->headers_cap < pr->num_headers) {
        size_t cap = c->srv->limits.max_headers;
        if (cap < pr->num_headers) {
            cap = pr->num_headers;
        }
        c->headers = ch_realloc(c->headers, cap * sizeof(*c->headers));
        c->headers_cap = cap;
    }
    for (size_t k = 0; k < pr->num_headers; k++) {
        c->headers[k].name = pr->headers[k].name;
        c->headers[k].value = pr->headers[k].value;
    }
    ch_http_request_t *r = &c->req;
    r->method = pr->method;
    r->target = pr->target;
    const char *q = memchr(pr->target.ptr, '?', pr->target.len);
    if (q) {
        r->path.ptr = pr->target.ptr;
        r->path.len = (size_t)(q - pr->target.ptr);
        r->query.ptr = q + 1;
        r->query.len = pr->target.len - r->path.len - 1;
    } else {
        r->path = pr->target;
        r->query.ptr = pr->target.ptr + pr->target.len;
        r->query.len = 0;
    }
    r->minor_version = pr->minor;
    r->headers = c->headers;
    r->num_headers = pr->num_headers;
}

/* The right-most address of the X-Forwarded-For headers (read right to left, last header
 * first) that is not a trusted proxy, into out as "a.b.c.d" or "[v6]". 0, or CH_ENOTFOUND when
 * there is no such header or its right-most entry is malformed (the peer stays the proxy). */
static int forwarded_client(const ch_http_conn_t *c, char *out, size_t out_len)
{
    const ch_http_server_t *srv = c->srv;
    const ch_http_request_t *r = &c->req;
    int found = 0;
    for (size_t k = r->num_headers; k-- > 0;) {
        if (!ch_slice_eq_nocase(r->headers[k].name, "X-Forwarded-For")) {
            continue;
        }
        const char *v = r->headers[k].value.ptr;
        const char *end = v + r->headers[k].value.len;
        while (end > v) {
            const char *comma = end;
            while (comma > v && comma[-1] != ',') {
                comma--;
            }
            const char *p = comma, *q = end;
            while (p < q && (*p == ' ' || *p == '\t')) {
                p++;
            }
            while (q > p && (q[-1] == ' ' || q[-1] == '\t')) {
                q--;
            }
            uint8_t a[16];
            if (ch_ip_parse(p, (size_t)(q - p), a) != 0) {
                return found ? 0 : CH_ENOTFOUND; /* the last good hop stands */
            }
            char text[INET6_ADDRSTRLEN];
            int v4 = memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
            if (v4) {
                inet_ntop(AF_INET, a + 12, text, sizeof(text));
                snprintf(out, out_len, "%s", text);
            } else {
                inet_ntop(AF_INET6, a, text, sizeof(text));
                snprintf(out, out_len, "[%s]", text);
            }
            found = 1;
            if (!ch_cidr_contains(srv->trusted, srv->num_trusted, a)) {
                return 0;
            }
            end = comma > v ? comma - 1 : v;
        }
    }
    return found ? 0 : CH_ENOTFOUND;
}

/* The request's peer: the connection's, or behind a trusted proxy the client it names. */
static void conn_set_peer(ch_http_conn_t *c)
{
    ch_http_request_t *r = &c->req;
    if (c->srv->num_trusted > 0 && c->tcp_addr_ok &&
        ch_cidr_contains(c->srv->trusted, c->srv->num_trusted, c->tcp_addr) &&
        forwarded_client(c, r->peer, sizeof(r->peer)) == 0) {
        return;
    }
    snprintf(r->peer, sizeof(r->peer), "%s", c->tcp_peer);
}

/* Parses the head at in_pos and checks it against every limit. Returns 1 when the request
 * was accepted (stage BODY), 0 when more bytes are needed or the request was refused. */
static int conn_parse_head(ch_http_conn_t *c)
{
    ch_http_server_t *srv = c->srv;
    const ch_http_limits_t *lim = &srv->limits;
    const char *data = (const char *)c->conn.in;
    size_t avail = c->conn.in_len;

    if (avail == 0) {
        conn_set_deadline(c, DEADLINE_IDLE, lim->idle_timeout_ms);
        conn_idle_enter(c);
        return 0;
    }
    conn_idle_leave(c);
    if (srv->scratch_cap < lim->max_headers) {
        srv->scratch = ch_realloc(srv->scratch, lim->max_headers * sizeof(*srv->scratch));
        srv->scratch_cap = lim->max_headers;
    }
    ch_proto_request_t pr;
    int rc = ch_proto_parse_request(data, avail, &pr, srv->scratch, lim->max_headers);
    if (rc == CH_EAGAIN) {
        conn_in_phase(c); /* the head limit may have changed (a reload) */
        if (target_over_limit(data, avail, lim->max_target)) {
            conn_error(c, REFUSE_URI_TOO_LONG, "the request target is too long");
        } else if (avail > lim->max_head) {
            conn_error(c, REFUSE_HEADERS_TOO_LARGE, "the request head is too large");
        } else if (!c->request_timed) {
            conn_set_deadline(c, DEADLINE_REQUEST, lim->request_timeout_ms);
            c->request_timed = 1;
        }
        return 0;
    }
    if (rc == CH_ETOOBIG) {
        conn_error(c, REFUSE_HEADERS_TOO_LARGE, "the request has too many headers");
        return 0;
    }
    if (rc < 0) {
        conn_error(c, REFUSE_BAD_REQUEST, "the request head is malformed");
        return 0;
    }
    if (pr.target.len > lim->max_target) {
        conn_error(c, REFUSE_URI_TOO_LONG, "the request target is too long");
        return 0;
    }
    if ((size_t)rc > lim->max_head) {
        conn_error(c, REFUSE_HEADERS_TOO_LARGE, "the request head is too large");
        return 0;
    }
    if (pr.kind != CH_PROTO_HTTP || pr.major != 1 || pr.minor > 1) {
        conn_error(c, REFUSE_VERSION, "only HTTP/1.0 and HTTP/1.1 are served");
        return 0;
    }
    ch_proto_framing_t fr;
    if (ch_proto_framing(pr.headers, pr.num_headers, &fr) < 0) {
        conn_error(c, REFUSE_BAD_REQUEST, "the Content-Length or Transfer-Encoding is invalid");
        return 0;
    }
    if (fr.transfer_encoding) {
        /* Chunked uploads are not needed by any client of ours; refusing them also rules out
         * the Content-Length/Transfer-Encoding ambiguity that request smuggling relies on. */
        conn_error(c, REFUSE_NOT_IMPLEMENTED, "Transfer-Encoding in requests is not supported");
        return 0;
    }

    conn_set_slices(c, &pr);
    conn_set_peer(c);
    c->req.tls = ch_net_conn_is_tls(&c->conn);
    c->req.tls_peer_key = ch_net_conn_tls_peer_spki(&c->conn);
    c->req.body = NULL;
    c->req.body_len = 0;
    c->req.conn = c;
    c->req.user = NULL;
    c->keep_alive = (unsigned)ch_proto_keep_alive(&pr, &fr);
    c->is_head_method = ch_slice_eq(pr.method, "HEAD");
    c->expect_continue = fr.expect_continue && pr.minor == 1;
    c->sent_continue = 0;
    c->head_at = c->conn.in;

    size_t limit = lim->max_body;
    if (srv->body_limit) {
        size_t l = srv->body_limit(&c->req, srv->ud);
        if (l) {
            limit = l;
        }
    }
    uint64_t cl = fr.has_content_length ? fr.content_length : 0;
    if (cl > limit) {
        conn_error(c, REFUSE_BODY_TOO_LARGE, "the request body is too large");
        return 0;
    }
    c->head_len = (size_t)rc;
    c->body_len = cl;
    c->stage = STAGE_BODY;
    if (cl > 0) {
        conn_in_phase(c);
    }
    return 1;
}

/* Tells whether the whole body is in; if not, asks for it (100 Continue) and makes sure the
 * request deadline runs. */
static int conn_body_ready(ch_http_conn_t *c)
{
    size_t avail = c->conn.in_len;
    if (avail - c->head_len >= c->body_len) {
        return 1;
    }
    if (c->expect_continue && !c->sent_continue && avail == c->head_len) {
        ch_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->sent_continue = 1;
    }
    if (!c->request_timed) {
        conn_set_deadline(c, DEADLINE_REQUEST, c->srv->limits.request_timeout_ms);
        c->request_timed = 1;
    }
    return 0;
}

/* Hands the complete request to the handler. */
static void conn_dispatch(ch_http_conn_t *c)
{
    ch_http_server_t *srv = c->srv;
    if (c->head_at != c->conn.in) {
        /* The buffer moved under the head while the body came in (compacted or grown): parse
         * it again where it is now. The bytes are the same, so the result is too. */
        ch_proto_request_t pr;
        int rc = ch_proto_parse_request((const char *)c->conn.in, c->head_len, &pr, srv->scratch,
                                        c->req.num_headers);
        assert(rc == (int)c->head_len);
        CH_UNUSED(rc);
        conn_set_slices(c, &pr);
        c->head_at = c->conn.in;
    }
    if (c->body_len) {
        c->req.body = (const char *)c->conn.in + c->head_len;
        c->req.body_len = (size_t)c->body_len;
    }
    c->stage = STAGE_HANDLER;
    c->in_flight = 1;
    c->request_timed = 0;
    srv->in_flight++;
    conn_clear_deadline(c);
    srv->handler(&c->req, srv->ud);
}

/* Serves the requests in the buffer, in order, until one is incomplete, one is with an
 * asynchronous handler, the connection stops taking requests, or answers pile up unwritten. */
static void conn_process(ch_http_conn_t *c)
{
    unsigned was_batching = c->batching;
    c->batching = 1;
    /* During a shutdown no new request starts, but one whose head already arrived is in
     * flight: its body is still read (within request_timeout_ms) and it is answered. */
    while (!c->closing && !c->in_flight && (!c->srv->shutting_down || c->stage == STAGE_BODY)) {
        if (c->write_pending && c->out.len >= OUT_HIGH_WATER) {
            break;
        }
        if (c->stage == STAGE_HEAD && !conn_parse_head(c)) {
            break;
        }
        if (c->stage != STAGE_BODY || !conn_body_ready(c)) {
            break;
        }
        conn_dispatch(c);
    }
    c->batching = was_batching;
}

void ch_http_respond(ch_http_request_t *req, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t body_len)
{
    ch_http_conn_t *c = req->conn;
    ch_http_server_t *srv = c->srv;
    assert(c->in_flight);
    c->in_flight = 0;
    srv->in_flight--;
    if (c->closing) {
        /* The connection died while the handler worked: nobody to answer. */
        conn_maybe_free(c);
        return;
    }
    int keep = c->keep_alive && !srv->shutting_down;
    conn_append_response(c, status, content_type, extra_headers, body, body_len, keep,
                         c->is_head_method);
    ch_net_conn_consume(&c->conn, c->head_len + (size_t)c->body_len);
    int had_body = c->body_len > 0;
    c->head_len = 0;
    c->body_len = 0;
    if (keep) {
        c->stage = STAGE_HEAD;
        if (had_body) {
            conn_in_phase(c); /* back to a head's cap */
        }
    } else {
        c->stage = STAGE_CLOSING;
        c->close_after_write = 1;
    }
    if (!c->batching) {
        /* Answered later than its read: write now, which also goes on with pipelined
         * requests once the answer is out (conn_write_drained). */
        conn_flush(c);
        conn_update_reading(c);
    }
}

int ch_http_hand_over(ch_http_request_t *req, int *fd, ch_buf_t *raw, ch_net_tls_conn_t **tls)
{
    ch_http_conn_t *c = req->conn;
    ch_http_server_t *srv = c->srv;
    assert(c->in_flight);
    /* Answers of earlier pipelined requests still on their way: not now. */
    if (c->closing || c->write_pending || c->out.len > 0 || c->wbuf.len > 0) {
        return CH_EAGAIN;
    }
    /* The bytes from the request's head on go with the socket: the next owner answers it. */
    int rc = ch_net_conn_detach(&c->conn, fd, raw, tls, on_conn_closed);
    if (rc != 0) {
        return rc;
    }
    c->in_flight = 0;
    srv->in_flight--;
    conn_close(c); /* the connection closes its descriptor; the duplicate keeps the socket */
    return 0;
}

void ch_http_respond_error(ch_http_request_t *req, int status, const char *code,
                           const char *message, const char *field)
{
    ch_buf_t body;
    ch_buf_init(&body);
    error_body(&body, code, message, field);
    ch_http_respond(req, status, "application/json", NULL, body.data, body.len);
    ch_buf_fini(&body);
}

/* ---- accepting ------------------------------------------------------------------------- */

/* Writes "ADDR:PORT" of the connection's peer into out, and its address into c->tcp_addr. */
static void conn_peer_name(ch_http_conn_t *c, char *out, size_t out_len)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    out[0] = '\0';
    if (uv_tcp_getpeername(&c->conn.tcp, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(out, out_len, "unknown");
        return;
    }
    ch_net_door_key(&ss, c->door.addr);
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        uv_ip4_name(sin, host, sizeof(host));
        port = ntohs(sin->sin_port);
        snprintf(out, out_len, "%s:%d", host, port);
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(c->tcp_addr, mapped, 12);
        memcpy(c->tcp_addr + 12, &sin->sin_addr, 4);
        c->tcp_addr_ok = 1;
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(sin6, host, sizeof(host));
        port = ntohs(sin6->sin6_port);
        snprintf(out, out_len, "[%s]:%d", host, port);
        memcpy(c->tcp_addr, &sin6->sin6_addr, 16);
        c->tcp_addr_ok = 1;
    } else {
        snprintf(out, out_len, "unknown");
    }
}

/* Whether c's descriptor is among the top limits.fd_reserve of the process's limit.
 * Descriptors are numbered lowest free first and keep their number, so connections taken only
 * below the band never hold one of the fd_reserve descriptors above it: those stay for what
 * must not fail for want of one (the audit log's files, the store, cameras' pulls). The
 * relay's band is wider (relay.fd_reserve > http.fd_reserve), so a flood of viewers'
 * connections stops there and leaves HTTP the difference. No count to keep, no system call. */
static int descriptors_low(ch_http_conn_t *c)
{
    const ch_http_server_t *srv = c->srv;
    uv_os_fd_t fd;
    if (srv->limits.fd_reserve == 0 || srv->nofile == 0 ||
        uv_fileno((const uv_handle_t *)&c->conn.tcp, &fd) != 0 || fd < 0) {
        return 0;
    }
    return (uint64_t)fd + srv->limits.fd_reserve >= srv->nofile;
}

/* The soft RLIMIT_NOFILE (0 when unlimited or unknown: no band). */
static uint64_t nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return 0;
    }
    return (uint64_t)rl.rlim_cur;
}

/* Whether c is idle: a keep-alive connection between requests (no byte of the next one read,
 * nothing being answered or written). Closing it loses nothing: a client reopens. */
static int conn_idle(const ch_http_conn_t *c)
{
    return !c->closing && c->stage == STAGE_HEAD && !c->in_flight && !c->request_timed &&
           c->conn.in_len == 0 && !c->write_pending && c->out.len == 0 && c->wbuf.len == 0;
}

/*
 * The server is full (max_connections): closes an idle connection of the address holding the
 * most, so that one address cannot fill the server and keep a newcomer out. Looks at the
 * EVICT_SAMPLE connections idle the longest (a bound: the server is full when this runs, and
 * a flood of newcomers must not cost a walk over every connection each) and closes the one
 * whose address holds the most connections, the oldest on a tie. One address holding most of
 * the server holds most of any such sample. Trusted proxies are not counted by address and
 * are left alone. Returns whether one was closed.
 */
static int srv_evict_idle(ch_http_server_t *srv)
{
    ch_http_conn_t *victim = NULL;
    uint32_t most = 0;
    int seen = 0;
    for (ch_http_conn_t *c = srv->idle_oldest; c && seen < EVICT_SAMPLE; c = c->idle_next, seen++) {
        if (c->door.exempt || !c->door.at_door || !conn_idle(c)) {
            continue;
        }
        uint32_t n = ch_net_door_count(&srv->door, c->door.addr);
        if (n > most) {
            most = n;
            victim = c;
        }
    }
    if (victim == NULL) {
        return 0;
    }
    ch_log(CH_LOG_DEBUG, "net", "msg=\"idle connection closed for a newcomer\" peer=%s held=%u",
           victim->tcp_peer, most);
    conn_close(victim);
    return 1;
}

/* Refuses c at once, before any request: one best-effort 503, with no waiting, then close. The
 * client learns why instead of seeing a bare reset. */
static void conn_refuse_connection(ch_http_conn_t *c, const char *message)
{
    ch_http_server_t *srv = c->srv;
    ch_buf_t body;
    ch_buf_init(&body);
    srv->refused[REFUSE_TOO_MANY_CONNECTIONS]++;
    if (c->conn.tls != NULL) {
        /* Over TLS the answer could go only after a handshake, which is what a full server
         * must not spend: the connection just closes. */
        ch_buf_fini(&body);
        conn_close(c);
        return;
    }
    error_body(&body, refusals[REFUSE_TOO_MANY_CONNECTIONS].code, message, NULL);
    conn_append_response(c, refusals[REFUSE_TOO_MANY_CONNECTIONS].status, "application/json",
                         "Retry-After: 1\r\n", body.data, body.len, 0, 0);
    ch_buf_fini(&body);
    /* Whatever the socket does not take at once is dropped by the close. */
    int rc = ch_net_conn_send(&c->conn, c->out.data, c->out.len);
    CH_UNUSED(rc);
    conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    ch_http_server_t *srv = server->data;
    if (status < 0) {
        /* Typically EMFILE: log once a second at most, as a storm would flood stderr. */
        static int64_t last_log_ms;
        int64_t now = ch_time_now_ms();
        if (now - last_log_ms >= 1000) {
            last_log_ms = now;
            ch_log(CH_LOG_WARN, "net", "msg=\"accept failed\" error=%s", uv_strerror(status));
        }
        return;
    }
    ch_http_conn_t *c = ch_calloc(1, sizeof(*c));
    c->srv = srv;
    c->conn.data = c;
    c->conn.on_read = on_conn_read;
    c->conn.on_error = on_conn_error;
    int accepted = ch_net_conn_accept(&c->conn, server, IN_INITIAL, 0);
    c->conn_open = 1;
    c->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->num_conns++;
    c->stage = STAGE_HEAD;

    if (accepted < 0 || (srv->tls != NULL &&
                         ch_net_conn_tls_accept(&c->conn, srv->tls, srv->tls_handshake_ms) != 0)) {
        conn_close(c);
        return;
    }
    conn_peer_name(c, c->tcp_peer, sizeof(c->tcp_peer));
    if (descriptors_low(c)) {
        conn_refuse_connection(c, "the server has too many connections");
        return;
    }
    /* Every client behind a trusted proxy shares its address: not capped by address. */
    c->door.exempt = srv->num_trusted > 0 && c->tcp_addr_ok &&
                     ch_cidr_contains(srv->trusted, srv->num_trusted, c->tcp_addr);
    int evicted;
    int rc = ch_net_door_enter(&srv->door, &c->door, &evicted);
    if (rc == CH_NET_DOOR_FULL && srv_evict_idle(srv)) {
        rc = ch_net_door_enter(&srv->door, &c->door, &evicted);
    }
    if (rc != CH_NET_DOOR_IN) {
        conn_refuse_connection(c, rc == CH_NET_DOOR_PER_ADDR
                                      ? "too many connections from this address"
                                      : "the server has too many connections");
        return;
    }
    /* Responses are small and written whole; Nagle would only delay them. */
    uv_tcp_nodelay(&c->conn.tcp, 1);
    snprintf(c->req.peer, sizeof(c->req.peer), "%s", c->tcp_peer);
    conn_in_phase(c);
    conn_set_deadline(c, DEADLINE_IDLE, srv->limits.idle_timeout_ms);
    conn_idle_enter(c);
    conn_update_reading(c);
}

/* ---- the server ------------------------------------------------------------------------ */

/* A limit as the door's cap (which is unsigned). */
static unsigned door_cap(size_t limit)
{
    return limit > UINT32_MAX ? UINT32_MAX : (unsigned)limit;
}

/* The door's total: max_connections, at least 1 (a door holds at least one). */
static unsigned door_total(size_t max_connections)
{
    return max_connections == 0 ? 1 : door_cap(max_connections);
}

int ch_http_server_new(uv_loop_t *loop, const ch_http_limits_t *limits, ch_http_handler_fn handler,
                       ch_http_body_limit_fn body_limit, void *ud, ch_http_server_t **out)
{
    if (loop == NULL || handler == NULL || out == NULL) {
        return CH_EINVAL;
    }
    ch_http_server_t *srv = ch_calloc(1, sizeof(*srv));
    srv->loop = loop;
    if (limits) {
        srv->limits = *limits;
    } else {
        ch_http_limits_default(&srv->limits);
    }
    srv->nofile = nofile_limit();
    ch_net_door_init(&srv->door, door_total(srv->limits.max_connections),
                     door_cap(srv->limits.max_connections_per_addr), 0);
    srv->handler = handler;
    srv->body_limit = body_limit;
    srv->ud = ud;
    int rc = uv_tcp_init(loop, &srv->listener);
    if (rc < 0) {
        ch_net_door_fini(&srv->door);
        ch_free(srv);
        return rc;
    }
    srv->listener.data = srv;
    srv->listener_open = 1;
    *out = srv;
    return 0;
}

/* Splits "ADDR:PORT" or "[ADDR6]:PORT" into a socket address. */
static int parse_listen_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_str;
    size_t host_len;
    int v6 = 0;
    if (addr == NULL) {
        return CH_EINVAL;
    }
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':') {
            return CH_EINVAL;
        }
        host_len = (size_t)(close - addr - 1);
        memcpy(host, addr + 1, host_len < sizeof(host) ? host_len : 0);
        port_str = close + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL) {
            return CH_EINVAL;
        }
        host_len = (size_t)(colon - addr);
        memcpy(host, addr, host_len < sizeof(host) ? host_len : 0);
        port_str = colon + 1;
    }
    if (host_len == 0 || host_len >= sizeof(host)) {
        return CH_EINVAL;
    }
    host[host_len] = '\0';
    int64_t port;
    if (ch_parse_int64(port_str, strlen(port_str), &port) < 0 || port < 0 || port > 65535 ||
        port_str[0] == '+' || port_str[0] == '-') {
        return CH_EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    int rc = v6 ? uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss)
                : uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
    return rc < 0 ? CH_EINVAL : 0;
}

int ch_http_server_listen(ch_http_server_t *srv, const char *addr)
{
    struct sockaddr_storage ss;
    int rc = parse_listen_addr(addr, &ss);
    if (rc < 0) {
        return rc;
    }
    if (srv->listening || srv->shutting_down) {
        return CH_EINVAL;
    }
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (rc < 0) {
        return rc;
    }
    rc = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        return rc;
    }
    struct sockaddr_storage bound;
    int len = (int)sizeof(bound);
    rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
    if (rc < 0) {
        return rc;
    }
    srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    srv->listening = 1;
    return 0;
}

int ch_http_server_port(const ch_http_server_t *srv)
{
    return srv->port;
}

void ch_http_server_set_trusted_proxies(ch_http_server_t *srv, const ch_cidr_t *nets, size_t n)
{
    if (n > CH_CIDR_MAX) {
        n = CH_CIDR_MAX;
    }
    if (n > 0) {
        memcpy(srv->trusted, nets, n * sizeof(*nets));
    }
    srv->num_trusted = n;
}

void ch_http_server_set_tls(ch_http_server_t *srv, ch_net_tls_t *tls, uint64_t handshake_ms,
                            uint64_t hsts_max_age_s, ch_http_tls_refusal_fn on_tls_refusal,
                            void *ud)
{
    ch_net_tls_t *old = srv->tls;
    srv->tls = ch_net_tls_ref(tls);
    ch_net_tls_unref(old);
    srv->tls_handshake_ms = handshake_ms;
    srv->on_tls_refusal = on_tls_refusal;
    srv->tls_refusal_ud = ud;
    srv->hsts_len = 0;
    if (hsts_max_age_s > 0) {
        int n =
            snprintf(srv->hsts, sizeof(srv->hsts), "Strict-Transport-Security: max-age=%llu\r\n",
                     (unsigned long long)hsts_max_age_s);
        srv->hsts_len = n > 0 && (size_t)n < sizeof(srv->hsts) ? (size_t)n : 0;
    }
}

void ch_http_server_tls_failures(const ch_http_server_t *srv, uint64_t *failed, uint64_t *timed_out)
{
    *failed = srv->tls_failed;
    *timed_out = srv->tls_timed_out;
}

void ch_http_server_set_limits(ch_http_server_t *srv, const ch_http_limits_t *limits)
{
    srv->limits = *limits;
    srv->nofile = nofile_limit();
    ch_net_door_set_caps(&srv->door, door_total(limits->max_connections),
                         door_cap(limits->max_connections_per_addr));
}

size_t ch_http_server_connections(const ch_http_server_t *srv)
{
    return srv->num_conns;
}

size_t ch_http_server_in_flight(const ch_http_server_t *srv)
{
    return srv->in_flight;
}

size_t ch_http_server_refusals(const ch_http_server_t *srv, ch_http_refusal_t *out, size_t n)
{
    size_t i = 0;
    for (; i < REFUSE__COUNT && i < n; i++) {
        out[i].status = refusals[i].status;
        out[i].code = refusals[i].code;
        out[i].count = srv->refused[i];
    }
    return i;
}

void ch_http_server_collect(ch_metrics_writer_t *w, void *ud)
{
    const ch_http_server_t *srv = ud;
    if (ch_metrics_family(w, "cctvhub_http_connections", CH_METRICS_GAUGE,
                          "Open connections of the HTTP server.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, ch_http_server_connections(srv));
    }
    /* Refused before routing: cctvhub_http_requests_total counts only what reached a route. */
    if (ch_metrics_family(w, "cctvhub_http_refused_total", CH_METRICS_COUNTER,
                          "Requests the HTTP server answered itself before routing (limits, "
                          "malformed heads, timeouts), by status and error code.") == 0) {
        ch_http_refusal_t r[CH_HTTP_REFUSALS_MAX];
        size_t n = ch_http_server_refusals(srv, r, CH_ARRAY_SIZE(r));
        for (size_t i = 0; i < n; i++) {
            char status[8];
            snprintf(status, sizeof(status), "%d", r[i].status);
            ch_metrics_label_t l[2] = {{"code", status}, {"reason", r[i].code}};
            ch_metrics_value_u64(w, l, 2, r[i].count);
        }
    }
    if (ch_metrics_family(w, "cctvhub_http_tls_handshake_failures_total", CH_METRICS_COUNTER,
                          "HTTPS handshakes that failed (a bad or unknown client certificate, "
                          "not TLS) or did not end within tls.handshake_timeout_ms.") == 0) {
        ch_metrics_label_t f = {"reason", "failed"}, t = {"reason", "timeout"};
        ch_metrics_value_u64(w, &f, 1, srv->tls_failed);
        ch_metrics_value_u64(w, &t, 1, srv->tls_timed_out);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    ch_http_server_t *srv = h->data;
    srv->listener_open = 0;
    srv_check_done(srv);
}

void ch_http_server_shutdown(ch_http_server_t *srv, void (*done)(void *ud), void *ud)
{
    if (srv->shutting_down) {
        return;
    }
    srv->shutting_down = 1;
    srv->done = done;
    srv->done_ud = ud;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    for (ch_http_conn_t *c = srv->conns; c; c = c->next) {
        /* conn_close() frees nothing at once, so c->next stays valid. A request whose
         * head arrived is in flight too: let it finish. */
        if (c->closing || c->in_flight || c->stage == STAGE_BODY) {
            continue;
        }
        if (c->write_pending) {
            c->stage = STAGE_CLOSING;
            c->close_after_write = 1;
        } else {
            conn_close(c);
        }
    }
}
