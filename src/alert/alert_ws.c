/*
 * alert/alert_ws.c: GET /api/v1/alerts/live, the console's live feed of alerts, as a WebSocket
 * server on the control loop. The API authorizes the request and hands the connection over
 * (ch_http_hand_over); here the handshake is answered and each new or changed alert is sent as
 * one text message. A client never slows the loop: writes are queued in libuv and a client
 * whose queue passes its budget is dropped, as is one that does not answer pings.
 */
#include "alert/alert.h"
#include "net/net.h"
#include "proto/proto.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_IN       8192 /* a client sends pings, pongs and close frames: small */
#define MAX_HEADERS  64
#define DEFAULT_PING 30000

typedef struct client {
    ch_net_conn_t conn; /* its read buffer holds MAX_IN, its write queue the live's max_queue */
    struct client *prev, *next;
    ch_alert_live_t *live;
    int closing;
    int awaiting_pong; /* a ping went out and no pong came back yet */
    char peer[64];
} client_t;

struct ch_alert_live {
    uv_loop_t *loop;
    ch_alert_engine_t *eng;
    uv_timer_t ping_timer;
    client_t *clients;
    size_t nclients;
    size_t max_queue;
    uint64_t ping_ms;
    int closing;
    int timer_closed;
};

static void live_maybe_free(ch_alert_live_t *live)
{
    if (live->closing && live->timer_closed && live->clients == NULL) {
        ch_free(live);
    }
}

static void on_client_closed(ch_net_conn_t *conn)
{
    client_t *c = conn->data;
    ch_alert_live_t *live = c->live;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        live->clients = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    live->nclients--;
    ch_free(c);
    live_maybe_free(live);
}

static void client_close(client_t *c, const char *why)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    ch_log(CH_LOG_INFO, "alert", "msg=\"live client closed\" peer=%s why=\"%s\"", c->peer, why);
    ch_net_conn_close(&c->conn, on_client_closed);
}

/* Queues bytes on the client; drops it when its queue is over budget. 0 or -1 (closed). */
static int client_send(client_t *c, const void *head, size_t head_len, const void *body,
                       size_t body_len)
{
    if (c->closing) {
        return -1;
    }
    uv_buf_t b[2] = {uv_buf_init((char *)head, (unsigned)head_len),
                     uv_buf_init((char *)body, (unsigned)body_len)};
    int rc = ch_net_conn_write(&c->conn, b, body_len > 0 ? 2 : 1);
    if (rc != 0) {
        client_close(c, rc == CH_ETOOBIG ? "too slow: its queue is full" : "write failed");
        return -1;
    }
    return 0;
}

static int client_frame(client_t *c, unsigned opcode, const void *payload, size_t len)
{
    uint8_t h[CH_PROTO_WS_HEADER_MAX];
    size_t hn = ch_proto_ws_header(opcode, len, h);
    return client_send(c, h, hn, payload, len);
}

/* The frames a client sent: pings are answered, pongs noted, a close is echoed, data ignored
 * (the feed is one-way). A malformed frame closes this client only. */
static void client_process(client_t *c)
{
    size_t off = 0;
    while (!c->closing && off < c->conn.in_len) {
        ch_proto_ws_frame_t f;
        int n = ch_proto_ws_read(c->conn.in + off, c->conn.in_len - off, MAX_IN / 2, &f);
        if (n == CH_EAGAIN) {
            break;
        }
        if (n < 0) {
            uint8_t bye[CH_PROTO_WS_CLOSE_FRAME_LEN];
            size_t bn = ch_proto_ws_close_frame(CH_PROTO_WS_PROTOCOL_ERROR, bye);
            (void)client_send(c, bye, bn, NULL, 0);
            client_close(c, "malformed frame");
            return;
        }
        off += (size_t)n;
        if (f.opcode == CH_PROTO_WS_PONG) {
            c->awaiting_pong = 0;
        }
        ch_proto_ws_reply_t r;
        ch_proto_ws_reply(&f, &r);
        if (r.len > 0) {
            (void)client_send(c, r.bytes, r.len, NULL, 0);
        }
        if (r.close) {
            client_close(c, "closed by the client");
            return;
        }
    }
    if (off > 0 && !c->closing) {
        ch_net_conn_consume(&c->conn, off);
    }
}

static void on_read(ch_net_conn_t *conn)
{
    client_t *c = conn->data;
    client_process(c);
    if (!c->closing && c->conn.in_len == c->conn.in_cap) {
        client_close(c, "frame too large");
    }
}

static void on_conn_error(ch_net_conn_t *conn, int status)
{
    client_t *c = conn->data;
    client_close(c, status == UV_EOF       ? "client went away"
                    : status == UV_ENOBUFS ? "frame too large"
                                           : "connection failed");
}

static void on_ping(uv_timer_t *t)
{
    ch_alert_live_t *live = t->data;
    for (client_t *c = live->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->closing) {
            continue;
        }
        if (c->awaiting_pong) {
            client_close(c, "no pong");
            continue;
        }
        c->awaiting_pong = 1;
        (void)client_frame(c, CH_PROTO_WS_PING, "cctvhub", 7);
    }
}

/* Each new or changed alert: one text message to every client. The frame is made once. */
static void on_alert(void *ud, const json_t *alert)
{
    ch_alert_live_t *live = ud;
    if (live->clients == NULL) {
        return;
    }
    char *text = json_dumps(alert, CH_ALERT_DUMP_FLAGS);
    if (text == NULL) {
        return;
    }
    size_t len = strlen(text);
    uint8_t h[CH_PROTO_WS_HEADER_MAX];
    size_t hn = ch_proto_ws_header(CH_PROTO_WS_TEXT, len, h);
    for (client_t *c = live->clients, *next; c != NULL; c = next) {
        next = c->next;
        (void)client_send(c, h, hn, text, len);
    }
    free(text);
}

int ch_alert_live_new(uv_loop_t *loop, ch_alert_engine_t *eng, uint64_t ping_ms, size_t max_queue,
                      ch_alert_live_t **out)
{
    *out = NULL;
    ch_alert_live_t *live = ch_calloc(1, sizeof(*live));
    live->loop = loop;
    live->eng = eng;
    live->ping_ms = ping_ms ? ping_ms : DEFAULT_PING;
    live->max_queue = max_queue ? max_queue : (1u << 20);
    int rc = ch_alert_listen(eng, on_alert, live);
    if (rc != 0) {
        ch_free(live);
        return rc;
    }
    uv_timer_init(loop, &live->ping_timer);
    live->ping_timer.data = live;
    uv_timer_start(&live->ping_timer, on_ping, live->ping_ms, live->ping_ms);
    *out = live;
    return 0;
}

size_t ch_alert_live_clients(const ch_alert_live_t *live)
{
    return live != NULL ? live->nclients : 0;
}

/* Writes a plain HTTP error on fd (best effort: the socket is fresh and the answer small). */
static void refuse_fd(int fd, ch_net_tls_conn_t *tls, int status, const char *reason,
                      const char *code, const char *msg)
{
    char body[256], resp[512];
    int bn =
        snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
    int rn = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n%s",
                      status, reason, bn, body);
    ch_net_refuse_fd(fd, tls, resp, rn > 0 ? (size_t)rn : 0);
}

/* 1 when the Origin header (absent: a non-browser client) names the host the request was sent
 * to: a page of another site must not read the alerts with the operator's cookie. */
static int origin_ok(const ch_proto_request_t *req)
{
    const ch_proto_header_t *o = ch_proto_header_find(req->headers, req->num_headers, "origin");
    if (o == NULL) {
        return 1;
    }
    const ch_proto_header_t *h = ch_proto_header_find(req->headers, req->num_headers, "host");
    if (h == NULL) {
        return 0;
    }
    ch_slice_t v = o->value;
    size_t skip = 0;
    if (v.len > 7 && memcmp(v.ptr, "http://", 7) == 0) {
        skip = 7;
    } else if (v.len > 8 && memcmp(v.ptr, "https://", 8) == 0) {
        skip = 8;
    } else {
        return 0;
    }
    return v.len - skip == h->value.len && memcmp(v.ptr + skip, h->value.ptr, h->value.len) == 0;
}

/* A client whose connection could not be opened: never listed. */
static void on_refused_closed(ch_net_conn_t *conn)
{
    ch_free(conn->data);
}

void ch_alert_live_take(ch_alert_live_t *live, int fd, const void *raw, size_t len,
                        ch_net_tls_conn_t *tls)
{
    ch_proto_header_t headers[MAX_HEADERS];
    ch_proto_request_t req;
    int n = ch_proto_parse_request(raw, len, &req, headers, MAX_HEADERS);
    if (n <= 0) {
        refuse_fd(fd, tls, 400, "Bad Request", "bad_request", "malformed request");
        return;
    }
    if (live->closing) {
        refuse_fd(fd, tls, 503, "Service Unavailable", "unavailable", "the hub is stopping");
        return;
    }
    char accept[CH_PROTO_WS_ACCEPT_LEN + 1];
    if (ch_proto_ws_handshake(&req, accept) != 0) {
        refuse_fd(fd, tls, 400, "Bad Request", "bad_request",
                  "a WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
        return;
    }
    if (!origin_ok(&req)) {
        refuse_fd(fd, tls, 403, "Forbidden", "forbidden", "the Origin is not this hub");
        return;
    }
    client_t *c = ch_calloc(1, sizeof(*c));
    c->live = live;
    c->conn.data = c;
    c->conn.on_read = on_read;
    c->conn.on_error = on_conn_error;
    if (ch_net_conn_open(&c->conn, live->loop, fd, MAX_IN, live->max_queue) != 0) {
        c->closing = 1;
        ch_net_conn_close(&c->conn, on_refused_closed);
        ch_net_tls_conn_free(tls);
        close(fd);
        return;
    }
    if (tls != NULL) {
        ch_net_conn_tls_adopt(&c->conn, tls);
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    c->peer[0] = '\0';
    if (uv_tcp_getpeername(&c->conn.tcp, (struct sockaddr *)&ss, &sl) == 0 &&
        ss.ss_family == AF_INET) {
        char ip[INET_ADDRSTRLEN];
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        uv_ip4_name(sin, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, ntohs(sin->sin_port));
    }
    c->next = live->clients;
    if (live->clients != NULL) {
        live->clients->prev = c;
    }
    live->clients = c;
    live->nclients++;
    ch_buf_t resp;
    ch_buf_init(&resp);
    ch_proto_ws_switching(accept, &resp);
    int rc = client_send(c, resp.data, resp.len, NULL, 0);
    ch_buf_fini(&resp);
    if (rc != 0) {
        return;
    }
    /* Bytes the client sent right behind its head are frames already. */
    size_t rest = len - (size_t)n;
    if (rest > 0 && rest < c->conn.in_cap &&
        ch_net_conn_feed(&c->conn, (const char *)raw + n, rest) == 0) {
        client_process(c);
    }
    if (!c->closing && ch_net_conn_read_start(&c->conn) != 0) {
        client_close(c, "read failed");
        return;
    }
    ch_log(CH_LOG_INFO, "alert", "msg=\"live client joined\" peer=%s clients=%zu", c->peer,
           live->nclients);
}

static void on_timer_closed(uv_handle_t *h)
{
    ch_alert_live_t *live = h->data;
    live->timer_closed = 1;
    live_maybe_free(live);
}

void ch_alert_live_close(ch_alert_live_t *live)
{
    if (live == NULL || live->closing) {
        return;
    }
    live->closing = 1;
    ch_alert_unlisten(live->eng, on_alert, live);
    for (client_t *c = live->clients, *next; c != NULL; c = next) {
        next = c->next;
        uint8_t bye[CH_PROTO_WS_CLOSE_FRAME_LEN];
        size_t bn = ch_proto_ws_close_frame(CH_PROTO_WS_GOING_AWAY, bye);
        (void)client_send(c, bye, bn, NULL, 0);
        client_close(c, "the hub is stopping");
    }
    uv_close((uv_handle_t *)&live->ping_timer, on_timer_closed);
}
