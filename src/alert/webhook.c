/*
 * alert/webhook.c: each alert POSTed as JSON to alert.webhook_url, by a small HTTP/1.1 client on
 * the control loop (net's client dials each try: the name resolved on the pool, a non-blocking
 * connect; then net's connection carries the request, the answer's head, at most
 * MAX_RESPONSE_HEAD bytes, and the rest of the try's deadline). Alerts go one at a time, in the
 * order raised; a try that fails (no connection, a timeout, a status other than 2xx) is retried
 * after a wait that doubles from first_retry_ms up to max_retry_ms; after max_tries the alert is
 * dropped with a log line, and so is a new alert that finds the queue full. Nothing here ever
 * blocks the loop. An https:// URL speaks TLS inside the same connection (net's
 * ch_net_conn_tls_connect): the receiver's chain must lead to the hub's CAs (tls.ca_bundle)
 * and name the URL's host; a refused certificate is a failed try ("TLS: ...").
 */
#include "alert/alert.h"
#include "core/config.h"
#include "net/net.h"
#include "proto/proto.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RESPONSE_HEAD 16384
#define MAX_RESP_HEADERS  64

typedef struct item {
    char *body; /* the alert's JSON text */
    int64_t alert_id;
    int tries;
} item_t;

typedef struct attempt attempt_t;

struct ch_alert_webhook {
    uv_loop_t *loop;
    ch_alert_engine_t *eng;
    ch_alert_webhook_config_t cfg;
    char host[256];
    uint16_t port;
    char *path;
    char *host_header;
    char *secret; /* NULL: unsigned */
    int https;    /* the URL is https:// (cfg.tls holds a reference) */
    item_t *q;    /* ring of cap items */
    size_t cap, head, count;
    uv_timer_t retry_timer;
    attempt_t *cur; /* the try in flight, or NULL */
    int waiting;    /* the retry timer runs */
    int closing;
    int handles; /* open handles and requests (the timer, a try) */
    uint64_t delivered, failed_tries, dropped;
};

/* One try: dial (net's client: resolve, connect, the try's deadline), then on net's
 * connection write the request and read the status line. */
struct attempt {
    ch_alert_webhook_t *wh;
    ch_net_dial_t dial;
    ch_net_conn_t conn;
    int has_conn; /* conn was opened: it is closed, not the dial */
    int open;     /* the dial and the conn not yet closed */
    int done;     /* the result is known */
    int ok;
    char why[96];
    ch_buf_t req;
};

static void start_next(ch_alert_webhook_t *wh);

static void wh_maybe_free(ch_alert_webhook_t *wh)
{
    if (!wh->closing || wh->handles > 0) {
        return;
    }
    for (size_t i = 0; i < wh->count; i++) {
        ch_free(wh->q[(wh->head + i) % wh->cap].body);
    }
    ch_free(wh->q);
    ch_net_tls_unref(wh->cfg.tls);
    ch_free(wh->path);
    ch_free(wh->host_header);
    if (wh->secret != NULL) {
        sodium_memzero(wh->secret, strlen(wh->secret));
        ch_free(wh->secret);
    }
    ch_free(wh);
}

int ch_alert_webhook_read_status(const char *buf, size_t len, int *status)
{
    ch_proto_header_t headers[MAX_RESP_HEADERS];
    ch_proto_response_t resp;
    int n = ch_proto_parse_response(buf, len, &resp, headers, MAX_RESP_HEADERS);
    if (n == CH_EAGAIN) {
        return CH_EAGAIN;
    }
    if (n < 0 || resp.kind != CH_PROTO_HTTP || resp.major != 1) {
        return CH_EPARSE;
    }
    *status = resp.status;
    return n;
}

/* The front item is done with: delivered or given up. */
static void pop_front(ch_alert_webhook_t *wh)
{
    ch_free(wh->q[wh->head].body);
    wh->head = (wh->head + 1) % wh->cap;
    wh->count--;
}

static void on_retry(uv_timer_t *t)
{
    ch_alert_webhook_t *wh = t->data;
    wh->waiting = 0;
    start_next(wh);
}

/* Called once per try, after its handles are closed. */
static void attempt_finished(attempt_t *a)
{
    ch_alert_webhook_t *wh = a->wh;
    wh->cur = NULL;
    wh->handles--;
    ch_buf_fini(&a->req);
    int ok = a->ok;
    char why[96];
    snprintf(why, sizeof(why), "%s", a->why);
    ch_free(a);
    if (wh->closing) {
        wh_maybe_free(wh);
        return;
    }
    item_t *it = &wh->q[wh->head];
    it->tries++;
    if (ok) {
        wh->delivered++;
        ch_log(CH_LOG_INFO, "alert", "msg=\"webhook delivered\" alert=%lld tries=%d",
               (long long)it->alert_id, it->tries);
        pop_front(wh);
        start_next(wh);
        return;
    }
    wh->failed_tries++;
    if (it->tries >= wh->cfg.max_tries) {
        wh->dropped++;
        ch_log(CH_LOG_ERROR, "alert",
               "msg=\"webhook gave up; alert dropped\" alert=%lld tries=%d why=\"%s\"",
               (long long)it->alert_id, it->tries, why);
        pop_front(wh);
        start_next(wh);
        return;
    }
    uint64_t wait = wh->cfg.first_retry_ms;
    for (int i = 1; i < it->tries && wait < wh->cfg.max_retry_ms; i++) {
        wait *= 2;
    }
    if (wait > wh->cfg.max_retry_ms) {
        wait = wh->cfg.max_retry_ms;
    }
    ch_log(CH_LOG_WARN, "alert",
           "msg=\"webhook try failed\" alert=%lld tries=%d retry_ms=%llu "
           "why=\"%s\"",
           (long long)it->alert_id, it->tries, (unsigned long long)wait, why);
    wh->waiting = 1;
    uv_timer_start(&wh->retry_timer, on_retry, wait, 0);
}

static void closed_one(attempt_t *a)
{
    if (--a->open == 0) {
        attempt_finished(a);
    }
}

static void on_dial_closed(ch_net_dial_t *d)
{
    closed_one(d->data);
}

static void on_conn_closed(ch_net_conn_t *c)
{
    closed_one(c->data);
}

/* Ends the try with its result (once): closes its connection; attempt_finished follows. */
static void attempt_end(attempt_t *a, int ok, const char *why)
{
    if (a->done) {
        return;
    }
    a->done = 1;
    a->ok = ok;
    snprintf(a->why, sizeof(a->why), "%s", why);
    if (a->has_conn) {
        ch_net_conn_close(&a->conn, on_conn_closed); /* the dial is closing already */
    } else {
        ch_net_dial_close(&a->dial, on_dial_closed);
    }
}

/* The connection cannot go on: the deadline, the receiver gone, a failed read or write, or a
 * head that fills the read buffer. */
static void on_conn_error(ch_net_conn_t *c, int status)
{
    const char *tls_why = ch_net_conn_tls_error(c);
    if (tls_why != NULL) {
        char why[96];
        snprintf(why, sizeof(why), "TLS: %s", tls_why); /* "unable to get local issuer ..." */
        attempt_end(c->data, 0, why);
        return;
    }
    attempt_end(c->data, 0,
                status == UV_ETIMEDOUT ? "timed out"
                : status == UV_EOF     ? "closed before a complete answer"
                : status == UV_ENOBUFS ? "answer head too large"
                                       : "read failed");
}

static void on_read(ch_net_conn_t *c)
{
    attempt_t *a = c->data;
    if (a->done) {
        return;
    }
    int status = 0;
    int rc = ch_alert_webhook_read_status((const char *)c->in, c->in_len, &status);
    if (rc == CH_EAGAIN) {
        if (c->in_len == c->in_cap) {
            attempt_end(a, 0, "answer head too large");
        }
        return;
    }
    if (rc < 0) {
        attempt_end(a, 0, "not an HTTP answer");
        return;
    }
    char why[48];
    snprintf(why, sizeof(why), "status %d", status);
    attempt_end(a, status >= 200 && status < 300, why);
}

static void on_connect(ch_net_dial_t *d, int status)
{
    attempt_t *a = d->data;
    if (a->done) {
        return;
    }
    if (status < 0) {
        attempt_end(a, 0,
                    status == UV_ETIMEDOUT ? "timed out"
                    : !d->resolved         ? "host not resolved"
                                           : "connection failed");
        return;
    }
    a->conn.data = a;
    a->conn.on_read = on_read;
    a->conn.on_error = on_conn_error;
    a->has_conn = 1;
    a->open = 2; /* the dial closes now, the connection when the try ends */
    ch_alert_webhook_t *wh = a->wh;
    if (ch_net_dial_conn(d, &a->conn, MAX_RESPONSE_HEAD, 0, on_dial_closed) != 0) {
        attempt_end(a, 0, "write failed");
        return;
    }
    /* Over TLS the request waits inside the connection for the handshake to end. */
    if (wh->https &&
        ch_net_conn_tls_connect(&a->conn, wh->cfg.tls, wh->host, NULL, wh->cfg.handshake_ms) != 0) {
        const char *tls_why = ch_net_conn_tls_error(&a->conn);
        char why[96];
        snprintf(why, sizeof(why), "TLS: %s", tls_why != NULL ? tls_why : "cannot start");
        attempt_end(a, 0, why);
        return;
    }
    if (ch_net_conn_send(&a->conn, a->req.data, a->req.len) != 0 ||
        ch_net_conn_read_start(&a->conn) != 0) {
        attempt_end(a, 0, "write failed");
    }
}

/* Appends the signature headers of one try (see ch_alert_webhook_config_t.secret). Each try
 * signs afresh, so a retry an hour later carries that hour's timestamp. */
static void sign(ch_buf_t *req, const char *secret, const char *body, size_t blen)
{
    char ts[24];
    int tn = snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[2 * sizeof(mac) + 1];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (unsigned long long)tn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, blen);
    crypto_auth_hmacsha256_final(&st, mac);
    ch_hex_encode(hex, sizeof(hex), mac, sizeof(mac), 0);
    ch_buf_appendf(req, "X-Cctvhub-Timestamp: %s\r\nX-Cctvhub-Signature: v1=%s\r\n", ts, hex);
    sodium_memzero(&st, sizeof(st));
}

static void start_next(ch_alert_webhook_t *wh)
{
    if (wh->closing || wh->cur != NULL || wh->waiting || wh->count == 0) {
        return;
    }
    const item_t *it = &wh->q[wh->head];
    attempt_t *a = ch_calloc(1, sizeof(*a));
    a->wh = wh;
    ch_buf_init(&a->req);
    size_t blen = strlen(it->body);
    ch_buf_appendf(&a->req,
                   "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: cctvhub/" CH_VERSION "\r\n"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                   wh->path, wh->host_header, blen);
    if (wh->secret != NULL) {
        sign(&a->req, wh->secret, it->body, blen);
    }
    ch_buf_append_str(&a->req, "Connection: close\r\n\r\n");
    ch_buf_append(&a->req, it->body, blen);
    wh->cur = a;
    wh->handles++;
    a->open = 1;
    a->dial.data = a;
    ch_net_dial_start(&a->dial, wh->loop, wh->host, wh->port, uv_now(wh->loop) + wh->cfg.timeout_ms,
                      on_connect);
}

static void on_alert(void *ud, const json_t *alert)
{
    ch_alert_webhook_t *wh = ud;
    json_int_t id = json_integer_value(json_object_get(alert, "id"));
    if (wh->count == wh->cap) {
        wh->dropped++;
        ch_log(CH_LOG_ERROR, "alert",
               "msg=\"webhook queue full; alert dropped\" alert=%lld "
               "queued=%zu",
               (long long)id, wh->count);
        return;
    }
    char *text = json_dumps(alert, CH_ALERT_DUMP_FLAGS);
    if (text == NULL) {
        return;
    }
    item_t *it = &wh->q[(wh->head + wh->count) % wh->cap];
    it->body = ch_strdup(text);
    free(text);
    it->alert_id = (int64_t)id;
    it->tries = 0;
    wh->count++;
    start_next(wh);
}

/* 1 when host is this machine: "localhost" or an address of 127.0.0.0/8 (IPv6 literals are
 * not taken in the URL). */
static int is_loopback(const char *host)
{
    struct in_addr a;
    if (strcmp(host, "localhost") == 0) {
        return 1;
    }
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int ch_alert_webhook_new(uv_loop_t *loop, ch_alert_engine_t *eng,
                         const ch_alert_webhook_config_t *cfg, ch_alert_webhook_t **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->url == NULL) {
        return CH_EINVAL;
    }
    ch_alert_webhook_t *wh = ch_calloc(1, sizeof(*wh));
    int port;
    const char *path;
    if (ch_config_parse_http_url(cfg->url, wh->host, sizeof(wh->host), &port, &path, &wh->https) !=
            0 ||
        (wh->https && cfg->tls == NULL)) {
        ch_free(wh);
        return CH_EINVAL;
    }
    if (!wh->https && !is_loopback(wh->host)) {
        ch_log(CH_LOG_WARN, "alert",
               "msg=\"webhook over plain http beyond this machine: alerts cross the network in "
               "clear; an https:// URL is checked against tls.ca_bundle\" key=alert.webhook_url");
    }
    wh->loop = loop;
    wh->eng = eng;
    wh->cfg = *cfg;
    wh->cfg.url = NULL;
    wh->cfg.secret = NULL;
    wh->cfg.tls = wh->https ? ch_net_tls_ref(cfg->tls) : NULL;
    wh->secret = cfg->secret != NULL ? ch_strdup(cfg->secret) : NULL;
    if (wh->cfg.max_tries <= 0) {
        wh->cfg.max_tries = 8;
    }
    if (wh->cfg.first_retry_ms == 0) {
        wh->cfg.first_retry_ms = 1000;
    }
    if (wh->cfg.max_retry_ms == 0) {
        wh->cfg.max_retry_ms = 60000;
    }
    if (wh->cfg.max_queue == 0) {
        wh->cfg.max_queue = 1000;
    }
    if (wh->cfg.timeout_ms == 0) {
        wh->cfg.timeout_ms = 10000;
    }
    wh->port = (uint16_t)port;
    wh->path = ch_strdup(path);
    ch_buf_t hh;
    ch_buf_init(&hh);
    ch_buf_appendf(&hh, port == (wh->https ? 443 : 80) ? "%s" : "%s:%d", wh->host, port);
    wh->host_header = ch_buf_steal(&hh);
    wh->cap = wh->cfg.max_queue;
    wh->q = ch_calloc(wh->cap, sizeof(*wh->q));
    int rc = ch_alert_listen(eng, on_alert, wh);
    if (rc != 0) {
        wh->closing = 1;
        wh_maybe_free(wh);
        return rc;
    }
    uv_timer_init(loop, &wh->retry_timer);
    wh->retry_timer.data = wh;
    wh->handles++;
    *out = wh;
    return 0;
}

json_t *ch_alert_webhook_stats(const ch_alert_webhook_t *wh)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "queued", (json_int_t)wh->count, "delivered",
                     (json_int_t)wh->delivered, "failed_tries", (json_int_t)wh->failed_tries,
                     "dropped", (json_int_t)wh->dropped);
}

static void on_retry_timer_closed(uv_handle_t *h)
{
    ch_alert_webhook_t *wh = h->data;
    wh->handles--;
    wh_maybe_free(wh);
}

void ch_alert_webhook_close(ch_alert_webhook_t *wh)
{
    if (wh == NULL || wh->closing) {
        return;
    }
    wh->closing = 1;
    ch_alert_unlisten(wh->eng, on_alert, wh);
    if (wh->count > 0) {
        ch_log(CH_LOG_WARN, "alert", "msg=\"webhook stopped; alerts not delivered\" queued=%zu",
               wh->count);
    }
    uv_close((uv_handle_t *)&wh->retry_timer, on_retry_timer_closed);
    if (wh->cur != NULL) {
        attempt_end(wh->cur, 0, "stopping"); /* a name lookup in flight is cancelled */
    }
}
