/*
 * net: libuv glue: an HTTP/1.1 server on a libuv loop, built on the zero-copy head parser of
 * proto/ (the same parser serves RTSP later) and on net's connection, the door, a client
 * connection (ch_net_dial_t) and a connection (ch_net_conn_t: read buffer, bounded writev queue
 * of copies or references, deadline, hand-over).
 *
 * The server owns its connections. For each complete request (head and Content-Length body
 * read) it calls the handler once with a ch_http_request_t that stays valid until the handler
 * answers with ch_http_respond(); the handler may answer at once or later from the same loop
 * (after work on the thread pool). Requests on one keep-alive connection are answered in
 * order: the next one is not read until the current one is answered.
 *
 * Limits are enforced before the handler sees anything, each with its status:
 *   400 malformed head; 408 head or body not complete within request_timeout_ms (slow client);
 *   413 body over max_body (or the handler's own body_limit); 414 target over max_target;
 *   431 head over max_head or more than max_headers headers; 501 any Transfer-Encoding
 *   (chunked uploads); 503 a connection beyond max_connections_per_addr from its address, or
 *   beyond max_connections when no connection is idle (else the idle one of the address
 *   holding the most is closed for it), or one whose descriptor is among the top fd_reserve
 *   of the process's limit; 505 a version other than HTTP/1.0 or 1.1.
 * Errors are answered as JSON {"error":{"code":"...","message":"..."}} and the connection is
 * closed; the process never is. Idle keep-alive connections close after idle_timeout_ms.
 */
#ifndef CH_NET_H
#define CH_NET_H

#include "core/config.h"
#include "core/core.h"
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct ch_http_server ch_http_server_t;
typedef struct ch_http_conn ch_http_conn_t;
typedef struct ch_net_tls_conn ch_net_tls_conn_t; /* a connection's TLS (below) */
typedef struct ch_net_tls ch_net_tls_t;           /* a TLS context (below) */

typedef struct ch_http_limits {
    size_t max_head;                 /* bytes of request line + headers; default 16384 */
    size_t max_target;               /* bytes of the request target; default 8192 */
    size_t max_headers;              /* header count; default 64 */
    size_t max_body;                 /* default body limit in bytes; default 1 MiB */
    uint64_t request_timeout_ms;     /* head + body must arrive within this; default 10000;
                                        0 turns it off */
    uint64_t idle_timeout_ms;        /* keep-alive idle; default 60000; 0 turns it off */
    size_t max_connections;          /* beyond this, an idle connection of the address holding
                                        the most is closed for a newcomer, or (none idle) the
                                        newcomer gets 503 and is closed; default 10000 */
    size_t max_connections_per_addr; /* beyond this from one address (IPv6: one /64; trusted
                                        proxies exempt), 503 and close; default 64; 0 off */
    size_t fd_reserve;               /* a connection accepted on one of the top fd_reserve
                                        descriptors (of RLIMIT_NOFILE) gets 503 and is closed, so
                                        that a flood of connections leaves descriptors to the
                                        audit log and the store; default 32; 0 turns it off */
} ch_http_limits_t;

/* Fills l with the defaults above. */
void ch_http_limits_default(ch_http_limits_t *l);

typedef struct ch_http_header {
    ch_slice_t name;
    ch_slice_t value;
} ch_http_header_t;

typedef struct ch_http_request {
    ch_slice_t method; /* "GET" */
    ch_slice_t target; /* "/api/v1/cameras?limit=10" as sent */
    ch_slice_t path;   /* "/api/v1/cameras": target up to '?' (not percent-decoded) */
    ch_slice_t query;  /* "limit=10": after '?', or empty */
    int minor_version; /* 0 or 1 */
    const ch_http_header_t *headers;
    size_t num_headers;
    const char *body; /* Content-Length bytes; NULL when none */
    size_t body_len;
    char peer[64];        /* the client: "127.0.0.1:51234", "[::1]:51234"; behind a trusted proxy
                             the address from X-Forwarded-For, without a port ("10.1.2.3", "[fd00::1]")
                             (see ch_http_server_set_trusted_proxies) */
    ch_http_conn_t *conn; /* opaque; for the server's use */
    void *user;           /* free for the handler's use */
    int tls;              /* it came over TLS (HTTPS) */
    const char *tls_peer_key; /* the client certificate's key ("sha256:..."), checked against
                                 the client CAs; NULL: none shown */
} ch_http_request_t;

/* Called once per complete request. Must eventually call ch_http_respond(req, ...). */
typedef void (*ch_http_handler_fn)(ch_http_request_t *req, void *ud);

/* Optional: called once the head is parsed (body not read yet) to choose the body limit of
 * this request (for example a larger one for POST /api/v1/imports). Return 0 to keep
 * limits.max_body. req->body is NULL here. */
typedef size_t (*ch_http_body_limit_fn)(const ch_http_request_t *req, void *ud);

/* Creates a server on loop; nothing listens until ch_http_server_listen(). limits may be NULL
 * for the defaults. */
int ch_http_server_new(uv_loop_t *loop, const ch_http_limits_t *limits, ch_http_handler_fn handler,
                       ch_http_body_limit_fn body_limit, void *ud,
                       ch_http_server_t **out) CH_MUST_CHECK;

/* Listens on "ADDR:PORT" ("127.0.0.1:8080", "[::1]:8080", "0.0.0.0:0"). With port 0 the
 * kernel picks one: ch_http_server_port() tells which. 0 or -errno / CH_EINVAL. */
int ch_http_server_listen(ch_http_server_t *srv, const char *addr) CH_MUST_CHECK;
int ch_http_server_port(const ch_http_server_t *srv);

/*
 * The reverse proxies in front of the server (copied; n at most CH_CIDR_MAX; 0: none, the
 * default). A request whose connection comes from one of them is taken to come from the
 * right-most address of its X-Forwarded-For headers that is not itself one of them (each
 * proxy appends the address it received from); the request's peer says that address. A
 * malformed entry stops the walk at the last trusted hop. Without trusted proxies
 * X-Forwarded-For is ignored, so a client cannot choose the address it is counted under.
 */
void ch_http_server_set_trusted_proxies(ch_http_server_t *srv, const ch_cidr_t *nets, size_t n);

/* A TLS handshake failed (a bad or unknown client certificate, not TLS at all): peer is
 * "ADDR:PORT", reason what OpenSSL said ("certificate revoked"). */
typedef void (*ch_http_tls_refusal_fn)(void *ud, const char *peer, const char *reason);

/*
 * HTTPS: connections accepted from now on speak TLS with tls (a server context; NULL: plaintext
 * again), each handshake within handshake_ms (0: none), and every answer over TLS carries
 * Strict-Transport-Security with hsts_max_age_s (0: none). The server keeps a reference;
 * connections already open keep their own context (a reload swaps it without dropping them).
 * on_tls_refusal (may be NULL) hears each failed handshake. Loop thread.
 */
void ch_http_server_set_tls(ch_http_server_t *srv, ch_net_tls_t *tls, uint64_t handshake_ms,
                            uint64_t hsts_max_age_s, ch_http_tls_refusal_fn on_tls_refusal,
                            void *ud);
/* Handshakes that failed and that did not end in time, since the start. */
void ch_http_server_tls_failures(const ch_http_server_t *srv, uint64_t *failed,
                                 uint64_t *timed_out);

/* Replaces the limits (SIGHUP reload); applies to requests read from now on. */
void ch_http_server_set_limits(ch_http_server_t *srv, const ch_http_limits_t *limits);

/* Number of open connections and of requests being handled (for health and shutdown). */
size_t ch_http_server_connections(const ch_http_server_t *srv);
size_t ch_http_server_in_flight(const ch_http_server_t *srv);

/* Requests the server answered itself, before any handler saw them: a malformed head (400), a
 * request not received within request_timeout_ms (408), a body, target or head over its limit
 * (413, 414, 431), a chunked upload (501), a connection over max_connections or fd_reserve
 * (503), an HTTP
 * version other than 1.0 and 1.1 (505). One entry per reason, with the status, the error code
 * the answer carried and how many since the server started. */
typedef struct ch_http_refusal {
    int status;
    const char *code;
    uint64_t count;
} ch_http_refusal_t;

#define CH_HTTP_REFUSALS_MAX 8

/* Fills out with at most n entries (CH_HTTP_REFUSALS_MAX covers every reason) and returns how
 * many it wrote. */
size_t ch_http_server_refusals(const ch_http_server_t *srv, ch_http_refusal_t *out, size_t n);

/* The server's families for GET /metrics (a ch_metrics_collect_fn; ud is the server):
 * cctvhub_http_connections (open now) and cctvhub_http_refused_total{code, reason} (the
 * refusals above). Loop thread. */
void ch_http_server_collect(ch_metrics_writer_t *w, void *ud);

/* Graceful stop: closes the listener and idle connections at once, lets requests in flight
 * (with the handler, or whose head arrived and whose body is still coming, within
 * request_timeout_ms) be answered, then closes their connections, and calls done(ud) when
 * every handle is closed; the server is freed after done returns. */
void ch_http_server_shutdown(ch_http_server_t *srv, void (*done)(void *ud), void *ud);

/* Answers req. body (body_len bytes) is copied; content_type may be NULL for no body type.
 * extra_headers is NULL or full header lines each ending in "\r\n" ("Location: /x\r\n").
 * After this call req is invalid. Safe to call only once per request. */
void ch_http_respond(ch_http_request_t *req, int status, const char *content_type,
                     const char *extra_headers, const void *body, size_t body_len);

/*
 * Ends req without an answer by handing its connection over (a WebSocket upgrade served
 * elsewhere): *fd is a new descriptor of the socket (non-blocking, close-on-exec), raw gets
 * the request's bytes as received from its first byte on (the caller parses them again), and
 * the server forgets the connection. CH_EAGAIN while answers to earlier pipelined requests are
 * still being written (answer the request instead); CH_EIO or -errno. The connection's
 * ch_net_conn_detach: the next owner opens a ch_net_conn_t on fd, adopts *tls when not NULL
 * (the connection's TLS session: ch_net_conn_tls_adopt, or ch_net_tls_conn_free) and feeds it
 * raw.
 */
int ch_http_hand_over(ch_http_request_t *req, int *fd, ch_buf_t *raw,
                      ch_net_tls_conn_t **tls) CH_MUST_CHECK;

/* Answers with the JSON error body {"error":{"code":code,"message":message[,"field":field]}}. */
void ch_http_respond_error(ch_http_request_t *req, int status, const char *code,
                           const char *message, const char *field);

/* Finds a header by name (ASCII case-insensitive); NULL when absent. */
const ch_slice_t *ch_http_request_header(const ch_http_request_t *req, const char *name);

/* The standard reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *ch_http_status_text(int status);

/* ---- the door (door.c) ------------------------------------------------------------------ */

/*
 * A door counts connections in all and by address, so that no one address can hold them all:
 * the relay's door counts viewers' connections not yet authorized, the HTTP server's every
 * connection. Addresses are keyed by ch_net_door_key (IPv4 mapped into IPv6, IPv6 cut to its
 * /64, one host's share of addresses). Counts live in an open-addressing table at most half
 * full; the connections at the door are listed in order of arrival. Thread-safe (one mutex).
 */
typedef struct ch_net_door_node {
    uint8_t addr[16];                     /* the peer's key (ch_net_door_key), set by the owner */
    int exempt;                           /* set by the owner: counted in all, not by address
                                             (a trusted proxy: its clients share its address) */
    int at_door;                          /* under the door's lock */
    struct ch_net_door_node *prev, *next; /* the list, oldest first (under the lock) */
    atomic_int evicted;                   /* it gave its place to a newcomer: close it */
} ch_net_door_node_t;

typedef struct ch_net_door_count {
    uint8_t addr[16];
    uint32_t count; /* 0: the slot is free */
} ch_net_door_count_t;

typedef struct ch_net_door {
    pthread_mutex_t lock;
    unsigned max_total, max_per_addr;
    int evict_oldest;
    uint32_t total;
    ch_net_door_count_t *slots;
    size_t mask;
    uint64_t seed; /* secret: many addresses cannot be aimed at one chain */
    ch_net_door_node_t *oldest, *newest;
} ch_net_door_t;

/* What ch_net_door_enter answers. */
enum {
    CH_NET_DOOR_IN = 0,        /* counted in */
    CH_NET_DOOR_PER_ADDR = -1, /* its address has max_per_addr at the door */
    CH_NET_DOOR_FULL = -2,     /* max_total are at the door (a door that does not evict) */
};

/*
 * A door for at most max_total connections (> 0), max_per_addr of them from one address (0: no
 * cap by address). When full, a door that evicts the oldest (the relay's) lets a newcomer in in
 * place of the connection that has waited longest; one that does not (HTTP's) answers
 * CH_NET_DOOR_FULL and its owner chooses whom to close.
 */
void ch_net_door_init(ch_net_door_t *d, unsigned max_total, unsigned max_per_addr,
                      int evict_oldest);
/* New caps (a reload): the table grows when max_total does; nobody is evicted or refused for
 * what is already in. */
void ch_net_door_set_caps(ch_net_door_t *d, unsigned max_total, unsigned max_per_addr);
void ch_net_door_fini(ch_net_door_t *d);
/* The door's key of a peer: IPv4 mapped into IPv6, IPv6 cut to its /64, all zero when
 * unknown. */
void ch_net_door_key(const struct sockaddr_storage *ss, uint8_t out[16]);
/*
 * Counts n (its addr and exempt set, not at the door) in: CH_NET_DOOR_IN, CH_NET_DOOR_PER_ADDR
 * when its address (unless exempt) has max_per_addr at the door, or CH_NET_DOOR_FULL when
 * max_total are there and the door does not evict. A door that evicts the oldest takes it out
 * (its evicted flag set: its owner closes it) and sets *evicted to 1; else *evicted is 0.
 */
int ch_net_door_enter(ch_net_door_t *d, ch_net_door_node_t *n, int *evicted) CH_MUST_CHECK;
/* n leaves the door (no-op when it is not there: never entered, left, or evicted). */
void ch_net_door_leave(ch_net_door_t *d, ch_net_door_node_t *n);
/* Whether n was evicted. From any thread. */
int ch_net_door_evicted(ch_net_door_node_t *n);
/* How many are at the door, in all (addr NULL) or from addr (exempt ones not counted). */
uint32_t ch_net_door_count(ch_net_door_t *d, const uint8_t *addr);

/* ---- a client connection (client.c) ---------------------------------------------------- */

typedef struct ch_net_dial ch_net_dial_t;
/* The connect's outcome: 0 (tcp is connected: read and write it), or a libuv error
 * (resolved says whether the name was found; UV_ETIMEDOUT when the deadline came first). */
typedef void (*ch_net_dial_cb)(ch_net_dial_t *d, int status);
/* The deadline came after the connect succeeded. */
typedef void (*ch_net_dial_deadline_cb)(ch_net_dial_t *d);

/*
 * One outgoing TCP connection on a libuv loop: the host resolved (an IPv4 or IPv6 literal at
 * once, a name through uv_getaddrinfo on the thread pool), a non-blocking connect, and one
 * deadline over its whole life (before the connect it fails the connect with UV_ETIMEDOUT,
 * after it calls on_deadline when set). The caller owns the struct; data and on_deadline are
 * its to set before start. Closed with ch_net_dial_close, whose callback says when the struct
 * may be freed or started again.
 */
struct ch_net_dial {
    void *data;                          /* the caller's */
    ch_net_dial_deadline_cb on_deadline; /* optional */
    uv_tcp_t tcp;                        /* connected once on_connect says 0, until close */
    unsigned resolved;                   /* the host had an address */
    unsigned connected;
    /* Private. */
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    uv_connect_t connect;
    uint16_t port;
    unsigned resolving, tcp_open, open_handles, reported, timed_out, closing;
    ch_net_dial_cb on_connect;
    void (*closed)(ch_net_dial_t *d);
};

/* Dials host:port (a name, or an address literal without brackets) on loop with a deadline in
 * uv_now's milliseconds. on_connect runs exactly once unless the dial is closed first, maybe
 * before this returns. */
void ch_net_dial_start(ch_net_dial_t *d, uv_loop_t *loop, const char *host, uint16_t port,
                       uint64_t deadline_ms, ch_net_dial_cb on_connect);
/* Stops the dial (a connect or lookup in flight is cancelled; on_connect and on_deadline never
 * run again) and closes its handles; closed(d) runs once all are released. Called once per
 * start. */
void ch_net_dial_close(ch_net_dial_t *d, void (*closed)(ch_net_dial_t *d));

struct ch_net_conn; /* below (conn.c) */

/*
 * The dial's socket, once connected (from on_connect with 0, or later), moves into a
 * connection: c (its data, on_read and on_error set first, as for ch_net_conn_open) is opened on
 * a duplicate of the descriptor with a read buffer of in_cap bytes and a write queue of
 * out_cap, what is left of the dial's deadline becomes c's (a step: UV_ETIMEDOUT to on_error),
 * and the dial is closed with closed. Whatever it returns, the dial is closing and c is ended
 * with ch_net_conn_close; 0, or a libuv error or -errno (c failed: close it). Nothing is read
 * until ch_net_conn_read_start.
 */
int ch_net_dial_conn(ch_net_dial_t *d, struct ch_net_conn *c, size_t in_cap, size_t out_cap,
                     void (*closed)(ch_net_dial_t *d)) CH_MUST_CHECK;

/* ---- a connection (conn.c) -------------------------------------------------------------- */

typedef struct ch_net_conn ch_net_conn_t;
/* Bytes were added to c->in (c->in_len of them in all): parse and ch_net_conn_consume. */
typedef void (*ch_net_conn_read_cb)(ch_net_conn_t *c);
/* The connection cannot go on: the peer went away (UV_EOF), a read or write failed (a libuv
 * error), the read buffer is full and nothing was consumed (UV_ENOBUFS), or the deadline came
 * (UV_ETIMEDOUT). The owner closes it (or, for a deadline, may set another). */
typedef void (*ch_net_conn_error_cb)(ch_net_conn_t *c, int status);
/* Every handle is released: the struct may be freed. */
typedef void (*ch_net_conn_closed_cb)(ch_net_conn_t *c);
/* The buffers of a ch_net_conn_write_ref that queued them have left the queue: written
 * (status 0), or dropped (a libuv error, or UV_ECANCELED at the close). They are the caller's
 * again. */
typedef void (*ch_net_conn_release_cb)(ch_net_conn_t *c, void *arg, int status);

enum {
    CH_NET_DEADLINE_STEP = 0, /* fires ms after it was set, whatever happens meanwhile */
    CH_NET_DEADLINE_IDLE = 1, /* fires after ms without a byte read (each read re-arms it) */
};

struct ch_net_conn_chunk;

/*
 * A connection on one libuv loop around a TCP socket: reads go into a buffer the owner parses
 * in place (of in_cap bytes, or growing up to a cap the owner sets per phase); writes go out at
 * once when the socket takes them (uv_try_write) and are otherwise queued, copied
 * (ch_net_conn_write) or referenced until a release callback (ch_net_conn_write_ref), in a
 * queue of at most out_cap bytes flushed with one writev per turn (uv_write of every queued
 * chunk); one deadline (a step or idle) reported through on_error; one close
 * (ch_net_conn_close, idempotent) whose callback says when the struct may be freed; and the
 * hand-over of the descriptor with the bytes not yet parsed (ch_net_conn_detach) to another
 * loop, which opens a connection on it again. All bytes pass through one read and one write
 * function inside conn.c: where TLS will sit.
 *
 * The caller owns the struct; data, on_read and on_error are its to set before open (open keeps
 * them). Everything runs on the loop's thread.
 */
struct ch_net_conn {
    void *data;                  /* the caller's */
    ch_net_conn_read_cb on_read; /* set before open */
    ch_net_conn_error_cb on_error;
    uint8_t *in; /* in[0, in_len) are bytes not yet consumed; the owner may rewrite them in
                    place before consuming them (the pull's RTP headers), never beyond in_len;
                    it may move (compaction, growth) whenever bytes are read or fed */
    size_t in_len, in_cap; /* in_cap: the buffer's size (in_len == in_cap: full) */
    size_t out_queued;     /* bytes waiting in the write queue */
    size_t out_cap;        /* 0: no cap */
    uv_tcp_t tcp;          /* for getpeername and the like; do not read or write it directly */
    /* Private. */
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    struct ch_net_conn_chunk *head, *tail, *spare;
    uint8_t *in_buf;           /* the buffer; in points into it */
    size_t in_first, in_max;   /* its size when (re)allocated, and most it grows to */
    size_t in_expect;          /* bytes the owner awaits in all (a body): grow at once */
    size_t in_flight;          /* chunks of the pending uv_write */
    uint64_t deadline_ms, due; /* the deadline's length, and when it falls (0: none) */
    uint64_t timer_due;        /* when the timer fires, while timer_armed */
    int deadline_kind;
    unsigned reading, writing, closing, failed, open_handles, timer_armed, shut;
    unsigned kick; /* TLS: the timer fires at once to decrypt what waits (read_start) */
    ch_net_conn_closed_cb closed;
    ch_net_tls_conn_t *tls; /* NULL: plaintext */
};

/* Opens c on loop around fd (a connected, non-blocking TCP socket; adopted on success) with a
 * read buffer of in_cap bytes and a write queue of out_cap (0: no cap). Nothing is read until
 * ch_net_conn_read_start. 0 or a libuv error; whatever it returns, c is ended with
 * ch_net_conn_close (on failure the caller still owns fd). */
int ch_net_conn_open(ch_net_conn_t *c, uv_loop_t *loop, int fd, size_t in_cap,
                     size_t out_cap) CH_MUST_CHECK;
/* ch_net_conn_open of the connection waiting on listener (uv_accept). */
int ch_net_conn_accept(ch_net_conn_t *c, uv_stream_t *listener, size_t in_cap,
                       size_t out_cap) CH_MUST_CHECK;
/* Lets the read buffer grow for what comes next (a phase: a head, a body): by doubling, up to
 * max bytes (never below in_cap's first size; max == in_cap at open: a fixed buffer), and at
 * once to hold expect bytes not yet consumed in all when it falls short of them (0: unknown).
 * The buffer is compacted (the bytes not consumed moved to its start) only when less than
 * 2 KiB is free, and once everything is consumed a buffer grown above 64 KiB is given back
 * (the next read starts again at the first size). */
void ch_net_conn_in_limit(ch_net_conn_t *c, size_t max, size_t expect);
/* Puts len bytes received before c was opened (what a hand-over left unread, or what follows
 * a request head) at the end of c->in as if read now; on_read is not called. CH_ETOOBIG (none
 * put) when they do not fit. */
int ch_net_conn_feed(ch_net_conn_t *c, const void *p, size_t len) CH_MUST_CHECK;
/* Starts (again) or stops reading into c->in. */
int ch_net_conn_read_start(ch_net_conn_t *c) CH_MUST_CHECK;
void ch_net_conn_read_stop(ch_net_conn_t *c);
/* Drops the first n (<= in_len) bytes of c->in: the owner parsed them. Moves no byte (the
 * buffer is compacted when room runs short). */
void ch_net_conn_consume(ch_net_conn_t *c, size_t n);
/* Sends the n buffers in order, as one writev when the queue is empty (the bytes are copied
 * when the socket does not take them at once). CH_ETOOBIG when they would take the queue past
 * out_cap (nothing is sent: a slow peer; the owner decides), CH_EIO after a failure or the
 * close, or a libuv error (then close). */
int ch_net_conn_write(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n) CH_MUST_CHECK;
/*
 * ch_net_conn_write without the copy: what the socket does not take at once is queued as
 * references to the caller's buffers, which must stay unchanged until release(c, arg, status)
 * says they left the queue (written, or dropped at a failure or the close, before the close's
 * callback). Returns 1 when the socket took every byte at once (release is not called: the
 * buffers are the caller's again, and nothing was allocated), 0 when some were queued
 * (release runs once, later, never from inside this call), or an error as ch_net_conn_write
 * (release is not called). A refcounted packet takes a reference for the 0 case and gives it
 * back in release; the queue's entries come from a free list kept by c, so a steady stream of
 * queued references allocates nothing.
 */
int ch_net_conn_write_ref(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n,
                          ch_net_conn_release_cb release, void *arg) CH_MUST_CHECK;
/* ch_net_conn_write of one buffer. */
int ch_net_conn_send(ch_net_conn_t *c, const void *p, size_t len) CH_MUST_CHECK;
/* Shuts the write side down (a FIN after what is queued); reading goes on. A failure is
 * reported through on_error. Once. */
int ch_net_conn_shutdown(ch_net_conn_t *c) CH_MUST_CHECK;
/* Sets the deadline: ms from now (0 stops it), a CH_NET_DEADLINE_STEP or _IDLE. Cheap: the
 * timer is restarted only when the deadline comes earlier than it would fire, and a timer that
 * fires early re-arms itself for the rest; so is the idle deadline's re-arm on each read. */
void ch_net_conn_deadline(ch_net_conn_t *c, uint64_t ms, int kind);
/* Closes c once (later calls do nothing): reading stops, the deadline and queued writes are
 * dropped (what the socket already took is sent), closed(c) runs once its handles are
 * released. */
void ch_net_conn_close(ch_net_conn_t *c, ch_net_conn_closed_cb closed);
/* Hands the socket over: *fd gets a new descriptor of it (non-blocking, close-on-exec) for
 * another loop, unread (NULL: dropped) gets the bytes of c->in not consumed, *tls (NULL:
 * refused with CH_EUNSUPP for a TLS connection) gets its TLS session, or NULL for plaintext,
 * to give to ch_net_conn_tls_adopt on the next loop (or free with ch_net_tls_conn_free), and c
 * is closed (closed as for ch_net_conn_close). CH_EAGAIN while writes are queued (nothing
 * done), CH_EIO after a failure or close, or -errno. */
int ch_net_conn_detach(ch_net_conn_t *c, int *fd, ch_buf_t *unread, ch_net_tls_conn_t **tls,
                       ch_net_conn_closed_cb closed) CH_MUST_CHECK;

/* ---- TLS (tls.c, inside the connection) ------------------------------------------------ */

/*
 * TLS sits inside the connection: a connection that speaks it decrypts what it reads before
 * its owner sees c->in, and encrypts what the owner writes (ch_net_conn_write and _write_ref
 * alike; a referenced write is encrypted at once, and its release comes when the ciphertext
 * left, or at once (1) when the socket took it all). The handshake runs from the read path
 * under its own deadline; a connection whose handshake fails, or whose peer sends anything
 * that is not TLS, gets on_error(UV_EPROTO) and ch_net_conn_tls_error says why; one whose
 * handshake does not end in time gets UV_ETIMEDOUT. The rules (versions, suites, tickets,
 * certificate checks) are in tls.c.
 */
/* ch_net_tls_t: a context: certificates and rules; refcounted. */

#define CH_NET_TLS_SPKI_LEN        72    /* "sha256:" + 64 hex + NUL */
#define CH_NET_TLS_TICKET_ROTATE_S 43200 /* ticket keys: a new one every 12 h, kept 24 h */
#define CH_NET_TLS_HANDSHAKE_MS    10000 /* the default handshake deadline */

typedef struct ch_net_tls_config {
    const char *cert_file;   /* PEM: the certificate, then its chain (a server's; a client's own
                                for mutual TLS; NULL for a client without one) */
    const char *key_file;    /* PEM; NULL: in cert_file */
    const char *ca_file;     /* server: the CAs of the clients' certificates (NULL: none asked);
                                client: the CAs a server's chain must lead to (NULL: the
                                system's) */
    const char *crl_file;    /* with ca_file: revoked certificates (NULL: none) */
    int require_client_cert; /* server with ca_file: a client without a certificate is refused
                                (else it may come without; one with a bad one never) */
    const char *alpn;        /* server: the one protocol spoken ("http/1.1"), or NULL */
    int lean;                /* release the buffers of idle connections (many idle ones: HTTP) */
} ch_net_tls_config_t;

/* A server or client context from cfg (the files are read now). 0, or CH_EINVAL / CH_ENOMEM
 * with a clear message in err ("tls: key /etc/x.key: no such file"). */
int ch_net_tls_server_new(const ch_net_tls_config_t *cfg, ch_net_tls_t **out, char *err,
                          size_t errlen) CH_MUST_CHECK;
int ch_net_tls_client_new(const ch_net_tls_config_t *cfg, ch_net_tls_t **out, char *err,
                          size_t errlen) CH_MUST_CHECK;
/* References: a connection keeps what it needs itself, so a context may be dropped (a reload)
 * while its connections go on. Thread-safe. */
ch_net_tls_t *ch_net_tls_ref(ch_net_tls_t *t);
void ch_net_tls_unref(ch_net_tls_t *t);

/* c (opened, not reading yet) speaks TLS as a server from now on, with a handshake deadline
 * of handshake_ms (0: none). 0, or CH_EINVAL / CH_ENOMEM. */
int ch_net_conn_tls_accept(ch_net_conn_t *c, ch_net_tls_t *t, uint64_t handshake_ms) CH_MUST_CHECK;
/* c (opened) speaks TLS as a client of host (SNI, and the name its certificate must carry; an
 * address literal against its IP addresses), or, with pin ("sha256:..."), of whatever server
 * shows that key. The handshake starts at once; writes before it ends wait for it. */
int ch_net_conn_tls_connect(ch_net_conn_t *c, ch_net_tls_t *t, const char *host, const char *pin,
                            uint64_t handshake_ms) CH_MUST_CHECK;
/* A TLS session from ch_net_conn_detach, for c opened on the socket's new loop (before
 * read_start). */
void ch_net_conn_tls_adopt(ch_net_conn_t *c, ch_net_tls_conn_t *tls);
void ch_net_tls_conn_free(ch_net_tls_conn_t *tls);
/* A last answer (len bytes of p) on a handed-over socket no loop took, encrypted when tls is
 * not NULL (then freed), written best effort; fd is closed. */
void ch_net_refuse_fd(int fd, ch_net_tls_conn_t *tls, const void *p, size_t len);
/* Whether c speaks TLS, and whether its handshake has ended. */
int ch_net_conn_is_tls(const ch_net_conn_t *c);
int ch_net_conn_tls_ready(const ch_net_conn_t *c);
/* The peer's verified certificate's key ("sha256:..."), or NULL (none, or plaintext). */
const char *ch_net_conn_tls_peer_spki(const ch_net_conn_t *c);
/* Why TLS failed ("certificate revoked", "unknown CA", "wrong version number"), or NULL. */
const char *ch_net_conn_tls_error(const ch_net_conn_t *c);
/* "TLSv1.3", or NULL for plaintext. */
const char *ch_net_conn_tls_version(const ch_net_conn_t *c);

/* ---- PKI (tls_pki.c) -------------------------------------------------------------------- */

/*
 * A private certificate authority, for a first install and the tests (cctvhub tls): the CA,
 * the hub's server certificate, agencies' client certificates, a certificate revocation list
 * (CRL), and the SPKI fingerprint that binds an API key to a client certificate or pins a
 * camera's self-signed one. Every key is ECDSA P-256 (PEM, PKCS#8, unencrypted, mode 0600),
 * every signature ECDSA with SHA-256, every file PEM, written whole or not at all (a temporary
 * file, fsync'd, then linked or renamed into place). Fallible calls return 0 or a negative
 * code and, when err is not NULL, set *err to a message for people naming the file (free with
 * ch_free; NULL on success). This is command-line work: nothing here runs on a loop.
 */

/* The CA's files in its directory: certificate, key (0600) and revocation list. */
#define CH_NET_PKI_CA_CERT "ca.crt"
#define CH_NET_PKI_CA_KEY  "ca.key"
#define CH_NET_PKI_CA_CRL  "ca.crl"
/* "sha256:" and 64 lowercase hex digits, and the NUL. */
#define CH_NET_PKI_FINGERPRINT_SIZE 72

struct x509_st; /* OpenSSL's X509 */

/* Whether name may go into a certificate's subjectAltName: an IP literal (v4 or v6), or a DNS
 * name of labels of letters, digits and hyphens (none at a label's ends), 1 to 63 bytes each
 * and 253 in all, the first label possibly "*". 1 or 0. */
int ch_net_pki_name_valid(const char *name);

/*
 * Makes a CA in dir (which must exist): dir/ca.key and dir/ca.crt, self-signed, CA:true
 * (critical), keyCertSign and cRLSign (critical), subject CN = cn, valid for days days (1 to
 * 36,500). An existing ca.key is never replaced unless force; with force the old CA's ca.crl
 * is removed too (signed by a key that is gone, it could not be extended). CH_EEXIST (nothing
 * written) when ca.key exists without force, CH_EINVAL for a bad cn or days, -errno for a
 * file, CH_EIO when OpenSSL fails.
 */
int ch_net_pki_ca_make(const char *dir, const char *cn, int days, int force,
                       char **err) CH_MUST_CHECK;

typedef enum ch_net_pki_role {
    CH_NET_PKI_SERVER = 1, /* extendedKeyUsage serverAuth; the file holds the chain */
    CH_NET_PKI_CLIENT = 2, /* extendedKeyUsage clientAuth: an agency's system */
} ch_net_pki_role_t;

/* A certificate to issue. */
typedef struct ch_net_pki_cert_req {
    ch_net_pki_role_t role;
    const char *cn;           /* the subject's common name (an agency's name, a host name) */
    const char *const *names; /* subjectAltNames: DNS names ("*." first label allowed) or IP
                                 literals (v4, v6); a server needs at least one */
    size_t n_names;
    int days; /* validity, 1 to 36,500 */
} ch_net_pki_cert_req_t;

/*
 * Issues the certificate req describes, signed by the CA in ca_dir, with a key of its own and
 * a random 128-bit serial: the key to key_path (0600), the certificate to cert_path (0644;
 * for a server followed by the CA's certificate: the chain a server sends). Neither file is
 * replaced unless force. CH_ENOENT when the CA's files are missing, CH_EPARSE when they do not
 * load or do not match, CH_EINVAL for a bad request (the message names the bad name), CH_EEXIST
 * (nothing written) when a file exists without force, -errno, CH_EIO.
 */
int ch_net_pki_cert_make(const char *ca_dir, const ch_net_pki_cert_req_t *req,
                         const char *cert_path, const char *key_path, int force,
                         char **err) CH_MUST_CHECK;

/*
 * Revokes the certificate in cert_path (its first certificate), which the CA in ca_dir must
 * have issued (its own is refused): its serial is added to ca_dir/ca.crl (made when absent),
 * which is signed again with thisUpdate now and nextUpdate in days days (1 to 36,500). A
 * certificate already there stays once and *already (when not NULL) says so; the CRL is
 * signed again all the same, which is how it is renewed before its nextUpdate. CH_EINVAL when
 * the CA did not issue it, it is the CA's, or ca.crl is not the CA's; CH_ENOENT, CH_EPARSE,
 * -errno, CH_EIO.
 */
int ch_net_pki_revoke(const char *ca_dir, const char *cert_path, int days, int *already,
                      char **err) CH_MUST_CHECK;

/*
 * The SPKI fingerprint of cert: "sha256:" and the lowercase hex of SHA-256 over the DER of its
 * SubjectPublicKeyInfo, what `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
 * sha256sum` prints. It names the key, not the certificate, so a certificate renewed with the
 * same key keeps it. 0, or CH_EINVAL (NULL, or a certificate without a key).
 */
int ch_net_pki_fingerprint(const struct x509_st *cert,
                           char out[CH_NET_PKI_FINGERPRINT_SIZE]) CH_MUST_CHECK;
/* The same of the first certificate in the file at path (PEM, or DER). -errno, CH_EPARSE when
 * it holds no certificate. */
int ch_net_pki_fingerprint_file(const char *path, char out[CH_NET_PKI_FINGERPRINT_SIZE],
                                char **err) CH_MUST_CHECK;

#endif /* CH_NET_H */
