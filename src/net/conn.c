/*
 * net/conn.c: a connection on a libuv loop (ch_net_conn_t, see net.h): a read buffer with a
 * cap (fixed, or growing per phase), a bounded write queue flushed with one writev per turn, a
 * deadline, one close, and the hand-over of its descriptor (and of the bytes not yet read) to
 * another loop.
 *
 * Every byte read enters through conn_received and every byte written leaves through
 * conn_send: where TLS decrypts and encrypts (tls.c, through net/tls_conn.h), so that the
 * owners of connections never see ciphertext. A TLS connection reads into its ciphertext
 * buffer, drives the handshake and decrypts into c->in; its records leave through
 * ch_net__conn_raw_send, straight to the socket when nothing is queued.
 */
#include "net/net.h"
#include "net/tls_conn.h"

#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The most chunks one uv_write carries (one writev; libuv writes the rest in more calls). */
#define WRITE_BATCH 64
/* The read buffer is compacted, or grown, only when less than this is free: a read then always
 * has room for a useful amount, and bytes are moved once per 2 KiB read at most. */
#define IN_MIN_ROOM 2048
/* A buffer grown above this is given back once everything in it is consumed: an idle
 * connection should not keep a large body's memory. */
#define IN_SHRINK_OVER (64 * 1024)

/* One entry of the write queue: bytes copied into data, or a reference to the caller's
 * (ch_net_conn_write_ref), whose last entry carries the release callback. Reference entries
 * come from and go back to c->spare. */
struct ch_net_conn_chunk {
    struct ch_net_conn_chunk *next;
    char *base; /* data, or the caller's bytes */
    size_t len;
    ch_net_conn_release_cb release; /* a reference's last entry: called when it leaves */
    void *arg;
    unsigned ref;
    char data[];
};

/* Drops the list of entries from k on (they left the queue: written, or dropped with status):
 * releases the references, frees the copies, keeps reference entries for reuse. */
static void chunks_drop(ch_net_conn_t *c, struct ch_net_conn_chunk *k, int status)
{
    while (k != NULL) {
        struct ch_net_conn_chunk *next = k->next;
        if (k->release != NULL) {
            k->release(c, k->arg, status);
        }
        if (k->ref) {
            k->next = c->spare;
            c->spare = k;
        } else {
            ch_free(k);
        }
        k = next;
    }
}

static void conn_fail(ch_net_conn_t *c, int status)
{
    if (c->closing || c->failed) {
        return;
    }
    c->failed = 1;
    if (c->on_error != NULL) {
        c->on_error(c, status);
    }
}

static void tls_pump(ch_net_conn_t *c);

/* When the timer must fire next: the owner's deadline, or a TLS handshake's when earlier. */
static uint64_t next_due(const ch_net_conn_t *c)
{
    uint64_t due = c->due;
    if (c->tls != NULL && !c->tls->ready && c->tls->hs_due > 0 &&
        (due == 0 || c->tls->hs_due < due)) {
        due = c->tls->hs_due;
    }
    return due;
}

static void on_deadline(uv_timer_t *t);

/* The timer fires at next_due: it moves only when it would fire later than that. */
static void timer_sync(ch_net_conn_t *c)
{
    uint64_t due = next_due(c);
    if (due == 0 || (c->timer_armed && c->timer_due <= due)) {
        return;
    }
    uint64_t now = uv_now(c->loop);
    uv_timer_start(&c->timer, on_deadline, due > now ? due - now : 0, 0);
    c->timer_armed = 1;
    c->timer_due = due;
}

/* Fires at timer_due, which may be earlier than the deadline (it moved later since: an idle
 * deadline re-armed by reads, a new step): then it re-arms itself for the rest. It also fires
 * at once (kick) to decrypt what a TLS connection holds when its owner reads again. */
static void on_deadline(uv_timer_t *t)
{
    ch_net_conn_t *c = t->data;
    c->timer_armed = 0;
    if (c->closing) {
        return;
    }
    if (c->kick) {
        c->kick = 0;
        tls_pump(c);
        if (c->closing) {
            return;
        }
    }
    uint64_t now = uv_now(c->loop);
    if (c->tls != NULL && !c->tls->ready && c->tls->hs_due > 0 && now >= c->tls->hs_due) {
        c->tls->hs_due = 0;
        snprintf(c->tls->err, sizeof(c->tls->err), "the handshake did not end in time");
        if (c->on_error != NULL) {
            c->on_error(c, UV_ETIMEDOUT);
        }
        return;
    }
    if (c->due != 0 && now >= c->due) {
        c->due = 0;
        if (c->on_error != NULL) {
            c->on_error(c, UV_ETIMEDOUT);
        }
        return;
    }
    timer_sync(c);
}

/* The deadline falls ms from now: the timer moves only when it would fire later than that. */
static void deadline_arm(ch_net_conn_t *c, uint64_t ms)
{
    c->due = uv_now(c->loop) + ms;
    timer_sync(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    ch_net_conn_t *c = h->data;
    if (--c->open_handles > 0) {
        return;
    }
    struct ch_net_conn_chunk *k = c->head;
    c->head = c->tail = NULL;
    c->out_queued = 0;
    chunks_drop(c, k, UV_ECANCELED);
    while (c->spare != NULL) {
        k = c->spare;
        c->spare = k->next;
        ch_free(k);
    }
    ch_free(c->in_buf);
    c->in_buf = c->in = NULL;
    c->in_len = 0;
    if (c->tls != NULL) {
        ch_net__tls_conn_free(c->tls);
        c->tls = NULL;
    }
    if (c->closed != NULL) {
        c->closed(c);
    }
}

/* What open and accept share: c zeroed but for the owner's fields, its buffer and timer. */
static void conn_init(ch_net_conn_t *c, uv_loop_t *loop, size_t in_cap, size_t out_cap)
{
    void *data = c->data;
    ch_net_conn_read_cb on_read = c->on_read;
    ch_net_conn_error_cb on_error = c->on_error;
    memset(c, 0, sizeof(*c));
    c->data = data;
    c->on_read = on_read;
    c->on_error = on_error;
    c->loop = loop;
    c->in_first = in_cap > 0 ? in_cap : 1;
    c->in_max = c->in_first;
    c->in_cap = c->in_first;
    c->out_cap = out_cap;
    c->in_buf = c->in = ch_malloc(c->in_cap);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
}

int ch_net_conn_open(ch_net_conn_t *c, uv_loop_t *loop, int fd, size_t in_cap, size_t out_cap)
{
    conn_init(c, loop, in_cap, out_cap);
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc != 0) {
        return rc;
    }
    c->tcp.data = c;
    c->open_handles = 2;
    rc = uv_tcp_open(&c->tcp, fd);
    if (rc != 0) {
        c->failed = 1;
    }
    return rc;
}

int ch_net_conn_accept(ch_net_conn_t *c, uv_stream_t *listener, size_t in_cap, size_t out_cap)
{
    conn_init(c, listener->loop, in_cap, out_cap);
    int rc = uv_tcp_init(listener->loop, &c->tcp);
    if (rc != 0) {
        return rc;
    }
    c->tcp.data = c;
    c->open_handles = 2;
    rc = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rc != 0) {
        c->failed = 1;
    }
    return rc;
}

void ch_net_conn_in_limit(ch_net_conn_t *c, size_t max, size_t expect)
{
    c->in_max = max > c->in_first ? max : c->in_first;
    c->in_expect = expect < c->in_max ? expect : c->in_max;
}

/* Whether room at the end of the buffer will do: it holds want, and either IN_MIN_ROOM or all
 * the rest of what the owner expects. */
static int room_enough(size_t room, size_t want, size_t rest)
{
    return room >= want && (room >= IN_MIN_ROOM || (rest > 0 && room >= rest));
}

/*
 * Makes room at the end of the buffer for want more bytes (at least 1): compacts when less
 * than IN_MIN_ROOM is free and the rest of what the owner expects does not fit either, grows
 * by doubling up to in_max (or at once to what the owner expects), gives back a large buffer
 * once all is consumed. Returns the room at the end (0: full, nothing consumed, at its cap).
 */
static size_t in_make_room(ch_net_conn_t *c, size_t want)
{
    if (c->in_len == 0) {
        c->in = c->in_buf;
        if (c->in_cap > IN_SHRINK_OVER && c->in_cap > c->in_first) {
            c->in_cap = c->in_first;
            ch_free(c->in_buf);
            c->in_buf = c->in = ch_malloc(c->in_cap);
        }
    }
    size_t rest = c->in_expect > c->in_len ? c->in_expect - c->in_len : 0;
    size_t off = (size_t)(c->in - c->in_buf);
    size_t room = c->in_cap - off - c->in_len;
    if (room_enough(room, want, rest)) {
        return room;
    }
    if (off > 0) {
        memmove(c->in_buf, c->in, c->in_len);
        c->in = c->in_buf;
        room += off;
        if (room_enough(room, want, rest)) {
            return room;
        }
    }
    if (c->in_cap >= c->in_max) {
        return room;
    }
    size_t cap = c->in_cap * 2;
    if (c->in_expect > c->in_cap) {
        /* A body of known size: its exact size at once, not a series of doublings. */
        cap = c->in_expect > c->in_len + IN_MIN_ROOM ? c->in_expect : c->in_len + IN_MIN_ROOM;
    }
    if (cap < c->in_len + want) {
        cap = c->in_len + want;
    }
    if (cap > c->in_max) {
        cap = c->in_max;
    }
    c->in_buf = c->in = ch_realloc(c->in_buf, cap);
    c->in_cap = cap;
    return cap - c->in_len;
}

/* Drives a TLS connection on what it holds: the handshake, then every record into c->in, and
 * the owner told; again while the owner reads on and consumes (its buffer was full), until
 * nothing is left or the owner stops reading (read_start kicks it again). */
static void tls_pump(ch_net_conn_t *c)
{
    ch_net_tls_conn_t *t = c->tls;
    if (t->peer_closed) {
        if (c->reading) {
            ch_net_conn_read_stop(c);
            conn_fail(c, UV_EOF);
        }
        return;
    }
    while (!c->closing && !c->failed) {
        if (!t->ready) {
            int h = ch_net__tls_handshake(t);
            if (h == 0) {
                return; /* needs the peer's next flight */
            }
            if (h < 0) {
                conn_fail(c, h);
                return;
            }
            timer_sync(c); /* the handshake deadline is over */
            if (t->early_len > 0) {
                uv_buf_t b = uv_buf_init(t->early, (unsigned)t->early_len);
                int rc = ch_net__tls_write(t, &b, 1);
                ch_free(t->early);
                t->early = NULL;
                t->early_len = 0;
                if (rc != 0) {
                    conn_fail(c, rc);
                    return;
                }
            }
        }
        size_t got = 0, room = 0;
        int rc = 0;
        for (;;) {
            room = in_make_room(c, 1);
            if (room == 0) {
                break;
            }
            size_t n = 0;
            rc = ch_net__tls_read(t, c->in + c->in_len, room, &n);
            if (rc <= 0) {
                break;
            }
            c->in_len += n;
            got += n;
        }
        size_t before = c->in_len;
        if (got > 0 && c->on_read != NULL) {
            c->on_read(c);
        }
        if (c->closing || c->failed) {
            return;
        }
        if (rc == UV_EOF && !c->reading) {
            t->peer_closed = 1; /* told once the owner reads again, as a socket's EOF is */
            return;
        }
        if (rc < 0) {
            ch_net_conn_read_stop(c);
            conn_fail(c, rc);
            return;
        }
        if (room > 0 || !ch_net__tls_pending(t)) {
            return; /* everything is in c->in: the next bytes come from the socket */
        }
        if (!c->reading) {
            return; /* read_start kicks it again */
        }
        if (got == 0 || c->in_len >= before) {
            /* The buffer is full at its cap and the owner took nothing. */
            ch_net_conn_read_stop(c);
            conn_fail(c, UV_ENOBUFS);
            return;
        }
    }
}

/* Bytes the socket gave: the owner's (plaintext), or ciphertext TLS decrypts into c->in. */
static void conn_received(ch_net_conn_t *c, size_t n)
{
    if (c->deadline_kind == CH_NET_DEADLINE_IDLE && c->due > 0) {
        deadline_arm(c, c->deadline_ms);
    }
    if (c->tls != NULL) {
        c->tls->cin_len += n;
        tls_pump(c);
        /* An idle connection keeps no ciphertext buffer: a thousand viewers or keep-alive
         * clients would hold 18 KiB each. (c->tls is gone if the owner handed c over.) */
        ch_net_tls_conn_t *t = c->tls;
        if (t != NULL && t->cin_len == 0) {
            ch_free(t->cin);
            t->cin = NULL;
        }
        return;
    }
    c->in_len += n;
    if (c->on_read != NULL) {
        c->on_read(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    ch_net_conn_t *c = h->data;
    CH_UNUSED(suggested);
    ch_net_tls_conn_t *t = c->tls;
    if (t != NULL) {
        /* Ciphertext: OpenSSL takes it all before the next read unless c->in is full (then
         * what is left waits, and a full buffer here says UV_ENOBUFS). */
        if (t->cin == NULL) {
            t->cin = ch_malloc(t->cin_cap);
        }
        if (t->cin_off > 0 && t->cin_off < t->cin_len) {
            memmove(t->cin, t->cin + t->cin_off, t->cin_len - t->cin_off);
            t->cin_len -= t->cin_off;
            t->cin_off = 0;
        }
        *buf = uv_buf_init((char *)t->cin + t->cin_len, (unsigned)(t->cin_cap - t->cin_len));
        return;
    }
    /* A full buffer gives libuv no room: the read callback then says UV_ENOBUFS. */
    size_t room = in_make_room(c, 1);
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)room);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    ch_net_conn_t *c = s->data;
    CH_UNUSED(buf);
    if (c->closing) {
        return;
    }
    if (n < 0) {
        ch_net_conn_read_stop(c);
        conn_fail(c, (int)n);
        return;
    }
    if (n > 0) {
        conn_received(c, (size_t)n);
    }
}

int ch_net_conn_read_start(ch_net_conn_t *c)
{
    if (c->closing || c->failed) {
        return CH_EIO;
    }
    if (c->reading) {
        return 0;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc == 0) {
        c->reading = 1;
        if (c->tls != NULL && ch_net__tls_pending(c->tls) && !c->kick) {
            /* Records already read wait for the owner: decrypt them from the loop, not from
             * inside the owner's call. */
            c->kick = 1;
            uv_timer_start(&c->timer, on_deadline, 0, 0);
            c->timer_armed = 1;
            c->timer_due = uv_now(c->loop);
        }
    }
    return rc;
}

void ch_net_conn_read_stop(ch_net_conn_t *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

int ch_net_conn_feed(ch_net_conn_t *c, const void *p, size_t len)
{
    if (len > 0 && in_make_room(c, len) < len) {
        return CH_ETOOBIG;
    }
    if (len > 0) {
        memcpy(c->in + c->in_len, p, len);
        c->in_len += len;
    }
    return 0;
}

void ch_net_conn_consume(ch_net_conn_t *c, size_t n)
{
    assert(n <= c->in_len);
    c->in_len -= n;
    c->in = c->in_len > 0 ? c->in + n : c->in_buf;
}

void ch_net_conn_deadline(ch_net_conn_t *c, uint64_t ms, int kind)
{
    if (c->closing) {
        return;
    }
    c->deadline_ms = ms;
    c->deadline_kind = kind;
    if (ms == 0) {
        c->due = 0; /* the timer, if armed, finds no deadline and stops */
    } else {
        deadline_arm(c, ms);
    }
}

static int start_write(ch_net_conn_t *c);

static void on_written(uv_write_t *req, int status)
{
    ch_net_conn_t *c = req->data;
    c->writing = 0;
    /* The entries written leave the queue before any release runs: a release may write. */
    struct ch_net_conn_chunk *done = c->head, *last = NULL;
    for (size_t i = 0; i < c->in_flight && c->head != NULL; i++) {
        last = c->head;
        c->out_queued -= last->len;
        c->head = last->next;
    }
    if (last != NULL) {
        last->next = NULL;
    } else {
        done = NULL;
    }
    if (c->head == NULL) {
        c->tail = NULL;
    }
    c->in_flight = 0;
    chunks_drop(c, done, status < 0 ? status : 0);
    if (status < 0) {
        if (status != UV_ECANCELED) {
            conn_fail(c, status);
        }
        return;
    }
    if (c->head != NULL && !c->writing && !c->closing && !c->failed) {
        int rc = start_write(c);
        if (rc != 0) {
            conn_fail(c, rc);
        }
    }
}

/* One uv_write (a writev) of the chunks queued, WRITE_BATCH at most. */
static int start_write(ch_net_conn_t *c)
{
    uv_buf_t bufs[WRITE_BATCH];
    unsigned n = 0;
    for (struct ch_net_conn_chunk *k = c->head; k != NULL && n < WRITE_BATCH; k = k->next) {
        bufs[n++] = uv_buf_init(k->base, (unsigned)k->len);
    }
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, n, on_written);
    if (rc == 0) {
        c->writing = 1;
        c->in_flight = n;
    }
    return rc;
}

static void queue_append(ch_net_conn_t *c, struct ch_net_conn_chunk *k)
{
    k->next = NULL;
    if (c->tail != NULL) {
        c->tail->next = k;
    } else {
        c->head = k;
    }
    c->tail = k;
    c->out_queued += k->len;
}

/* Queues what the socket did not take (bufs past their first skip bytes): one copy, or one
 * reference entry per buffer, the last with release. */
__attribute__((noinline)) static void queue_rest(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n,
                                                 size_t skip, size_t rest,
                                                 ch_net_conn_release_cb release, void *arg, int ref)
{
    struct ch_net_conn_chunk *copy = NULL, *k = NULL;
    if (!ref) {
        copy = ch_malloc(sizeof(*copy) + rest);
        memset(copy, 0, sizeof(*copy));
        copy->base = copy->data;
    }
    for (unsigned i = 0; i < n; i++) {
        size_t bl = bufs[i].len;
        if (skip >= bl) {
            skip -= bl;
            continue;
        }
        if (copy != NULL) {
            memcpy(copy->data + copy->len, bufs[i].base + skip, bl - skip);
            copy->len += bl - skip;
        } else {
            if (c->spare != NULL) {
                k = c->spare;
                c->spare = k->next;
            } else {
                k = ch_malloc(sizeof(*k));
            }
            memset(k, 0, sizeof(*k));
            k->ref = 1;
            k->base = bufs[i].base + skip;
            k->len = bl - skip;
            queue_append(c, k);
        }
        skip = 0;
    }
    if (copy != NULL) {
        queue_append(c, copy);
    } else {
        k->release = release; /* the last entry: the call's bytes have all left with it */
        k->arg = arg;
    }
}

int ch_net__conn_raw_send(ch_net_conn_t *c, const void *p, size_t len)
{
    if (c->closing || c->failed) {
        return CH_EIO;
    }
    size_t done = 0;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    if (c->head == NULL) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (w >= 0) {
            done = (size_t)w;
        } else if (w != UV_EAGAIN) {
            c->failed = 1;
            return w;
        }
    }
    if (done == len) {
        return 0;
    }
    queue_rest(c, &b, 1, done, len - done, NULL, NULL, 0);
    if (!c->writing) {
        int rc = start_write(c);
        if (rc != 0) {
            c->failed = 1;
            return rc;
        }
    }
    return 0;
}

/* A TLS connection's write: encrypted now (the caller's bytes are free at once), its records
 * to the socket or the queue; release, if any, rides on the last queued record. Before the
 * handshake ends the plaintext waits (copied) for it. */
static int tls_send(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n, size_t total,
                    ch_net_conn_release_cb release, void *arg)
{
    ch_net_tls_conn_t *t = c->tls;
    if (!t->ready) {
        t->early = ch_realloc(t->early, t->early_len + total);
        for (unsigned i = 0; i < n; i++) {
            memcpy(t->early + t->early_len, bufs[i].base, bufs[i].len);
            t->early_len += bufs[i].len;
        }
        return 1;
    }
    int rc = ch_net__tls_write(t, bufs, n);
    if (rc != 0) {
        c->failed = 1;
        return rc;
    }
    if (c->head == NULL) {
        return 1;
    }
    /* Something is queued: the last entry is this call's last record (a queue that was not
     * empty takes every record whole). */
    c->tail->release = release;
    c->tail->arg = arg;
    return 0;
}

/* Bytes for the socket (encrypted first on a TLS connection). What the socket does not take
 * at once is queued, copied or referenced. 1 when the socket took everything, 0 when some is
 * queued, or a libuv error. */
static int conn_send(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n, size_t total,
                     ch_net_conn_release_cb release, void *arg, int ref)
{
    if (c->tls != NULL) {
        return tls_send(c, bufs, n, total, release, arg);
    }
    size_t done = 0;
    if (c->head == NULL) {
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (w >= 0) {
            done = (size_t)w;
        } else if (w != UV_EAGAIN) {
            c->failed = 1;
            return w;
        }
    }
    if (done == total) {
        return 1;
    }
    queue_rest(c, bufs, n, done, total - done, release, arg, ref);
    if (!c->writing) {
        int rc = start_write(c);
        if (rc != 0) {
            c->failed = 1;
            return rc;
        }
    }
    return 0;
}

/* What both writes check first: 0 to go on (*total set), 1 for nothing to send, or an error. */
static int write_check(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n, size_t *total)
{
    if (c->closing || c->failed || c->shut) {
        return CH_EIO;
    }
    *total = 0;
    for (unsigned i = 0; i < n; i++) {
        *total += bufs[i].len;
    }
    if (*total == 0) {
        return 1;
    }
    if (c->out_cap > 0 && c->out_queued + *total > c->out_cap) {
        return CH_ETOOBIG;
    }
    return 0;
}

int ch_net_conn_write(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    size_t total;
    int rc = write_check(c, bufs, n, &total);
    if (rc == 0) {
        rc = conn_send(c, bufs, n, total, NULL, NULL, 0);
    }
    return rc > 0 ? 0 : rc;
}

int ch_net_conn_write_ref(ch_net_conn_t *c, const uv_buf_t *bufs, unsigned n,
                          ch_net_conn_release_cb release, void *arg)
{
    size_t total;
    int rc = write_check(c, bufs, n, &total);
    if (rc == 0) {
        rc = conn_send(c, bufs, n, total, release, arg, 1);
    }
    return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    ch_net_conn_t *c = req->data;
    if (status < 0 && status != UV_ECANCELED) {
        conn_fail(c, status);
    }
}

int ch_net_conn_shutdown(ch_net_conn_t *c)
{
    if (c->closing || c->failed) {
        return CH_EIO;
    }
    if (c->shut) {
        return 0;
    }
    if (c->tls != NULL) {
        int rc = ch_net__tls_close_notify(c->tls);
        if (rc != 0) {
            return rc;
        }
    }
    c->shutdown_req.data = c;
    int rc = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown);
    if (rc == 0) {
        c->shut = 1;
    }
    return rc;
}

int ch_net_conn_send(ch_net_conn_t *c, const void *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    return ch_net_conn_write(c, &b, 1);
}

void ch_net_conn_close(ch_net_conn_t *c, ch_net_conn_closed_cb closed)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    c->closed = closed;
    ch_net_conn_read_stop(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->open_handles == 2) {
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
}

int ch_net_conn_detach(ch_net_conn_t *c, int *fd, ch_buf_t *unread, ch_net_tls_conn_t **tls,
                       ch_net_conn_closed_cb closed)
{
    *fd = -1;
    if (tls != NULL) {
        *tls = NULL;
    }
    if (c->closing || c->failed) {
        return CH_EIO;
    }
    if (c->head != NULL) {
        return CH_EAGAIN;
    }
    if (c->tls != NULL && (tls == NULL || !c->tls->ready)) {
        return CH_EUNSUPP;
    }
    uv_os_fd_t ofd;
    int rc = uv_fileno((uv_handle_t *)&c->tcp, &ofd);
    if (rc != 0) {
        return rc;
    }
    /* The handle closes its descriptor; a duplicate keeps the socket (non-blocking, as the
     * flags are the socket's) for the next owner. */
    int nfd = fcntl(ofd, F_DUPFD_CLOEXEC, 0);
    if (nfd < 0) {
        return -errno;
    }
    ch_net_conn_read_stop(c);
    if (unread != NULL && c->in_len > 0) {
        ch_buf_append(unread, c->in, c->in_len);
    }
    c->in_len = 0;
    *fd = nfd;
    if (c->tls != NULL) {
        /* The session goes whole, with the ciphertext not yet decrypted. */
        c->tls->conn = NULL;
        *tls = c->tls;
        c->tls = NULL;
    }
    ch_net_conn_close(c, closed);
    return 0;
}

static int tls_attach(ch_net_conn_t *c, ch_net_tls_t *t, const char *host, const char *pin,
                      uint64_t handshake_ms)
{
    if (c->closing || c->failed || c->tls != NULL || t == NULL) {
        return CH_EINVAL;
    }
    char err[160];
    ch_net_tls_conn_t *tc = ch_net__tls_conn_new(t, host, pin, err, sizeof(err));
    if (tc == NULL) {
        ch_log(CH_LOG_WARN, "net", "%s", err);
        return CH_ENOMEM;
    }
    tc->conn = c;
    c->tls = tc;
    if (handshake_ms > 0) {
        tc->hs_due = uv_now(c->loop) + handshake_ms;
        timer_sync(c);
    }
    return 0;
}

int ch_net_conn_tls_accept(ch_net_conn_t *c, ch_net_tls_t *t, uint64_t handshake_ms)
{
    return tls_attach(c, t, NULL, NULL, handshake_ms);
}

int ch_net_conn_tls_connect(ch_net_conn_t *c, ch_net_tls_t *t, const char *host, const char *pin,
                            uint64_t handshake_ms)
{
    int rc = tls_attach(c, t, host, pin, handshake_ms);
    if (rc == 0) {
        /* The ClientHello goes now; the rest comes from the read path. */
        rc = ch_net__tls_handshake(c->tls);
        rc = rc < 0 ? rc : 0;
    }
    return rc;
}

void ch_net_conn_tls_adopt(ch_net_conn_t *c, ch_net_tls_conn_t *tls)
{
    tls->conn = c;
    tls->hs_due = 0;
    c->tls = tls;
}

int ch_net_conn_is_tls(const ch_net_conn_t *c)
{
    return c->tls != NULL;
}

int ch_net_conn_tls_ready(const ch_net_conn_t *c)
{
    return c->tls != NULL && c->tls->ready;
}

const char *ch_net_conn_tls_peer_spki(const ch_net_conn_t *c)
{
    return c->tls != NULL && c->tls->peer_spki[0] != '\0' ? c->tls->peer_spki : NULL;
}

const char *ch_net_conn_tls_error(const ch_net_conn_t *c)
{
    return c->tls != NULL && c->tls->err[0] != '\0' ? c->tls->err : NULL;
}

const char *ch_net_conn_tls_version(const ch_net_conn_t *c)
{
    return c->tls != NULL ? ch_net__tls_version(c->tls) : NULL;
}
