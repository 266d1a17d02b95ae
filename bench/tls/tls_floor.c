/*
 * bench/tls/tls_floor.c: the TLS floor of issue 17, and the plaintext floor beside it.
 *
 * The frames of bench/relay/fanout_bench.c (the camsim 1080p clip as interleaved RTP, built by
 * ../lib/rtp_clip.h) played in real time at 25 fps to N loopback readers, by one sender
 * thread that does nothing else: no store, no cursor, no protocol work. Modes, each on fresh
 * connections, one after the other in the same run:
 *  - plain: one writev per frame per viewer (one iovec per packet), the relay floor (here with
 *    TCP_NODELAY on every sender socket, as on the TLS ones and the relay's);
 *  - CIPHER: TLS 1.3 with that cipher suite only (aes128: TLS_AES_128_GCM_SHA256, aes256:
 *    TLS_AES_256_GCM_SHA384, chacha20: TLS_CHACHA20_POLY1305_SHA256), one SSL_write per frame
 *    per viewer on a non-blocking socket. Suffixes change one thing at a time, to see where
 *    the time goes:
 *      /packet   one SSL_write (so one record) per RTP packet, as a relay that encrypts what
 *                it would have put in each iovec;
 *      /16k      the stream cut into whole 16 KiB records (several frames' packets
 *                coalesced; the rest waits for the next frame), up to four records a call;
 *      +release  SSL_MODE_RELEASE_BUFFERS on the sender's connections (write buffers freed
 *                after each write, allocated again at the next);
 *      +gather   after the handshake, the sender's write BIO is one of ours that appends each
 *                record to one scratch buffer of the thread; after a viewer's SSL_write calls
 *                for the frame, one write() sends them (OpenSSL's own socket BIO makes one
 *                write() per record). A write the socket does not take whole keeps its rest
 *                for the next frame.
 * A write the socket does not take (WANT_WRITE, or a short writev) is counted; in TLS the same
 * SSL_write is retried at the next frame, and that frame dropped for the viewer. A run with any
 * is a run the readers could not keep up with, not a floor.
 *
 * Readers: K threads (default 1), each with an epoll set over its share of the viewers,
 * reading (and in TLS decrypting with SSL_read) every byte and counting it per viewer. Each
 * connection is made and its handshake finished before the clock starts (P-256 ECDHE, the
 * server's certificate verified against the CA by the reader, no session tickets).
 *
 * It reports, per mode, the sender thread's CPU (getrusage RUSAGE_THREAD: utime + stime) per
 * second of video and per viewer, the bytes offered and received (the slowest viewer's
 * Mbit/s), the TLS bytes on the wire and records (from the sender's BIO counters), the memory
 * OpenSSL holds per viewer at the end of the run (both ends: they are in this process), and
 * after the last mode the ratio of each TLS mode's CPU to plain's. Lines are key=value, for
 * run.sh.
 *
 * The main thread is the sender and is named "sender" (readers "reader"). It prints
 * "streaming mode=..." when the clock starts (the handshakes done), so that a profiler can
 * attach to it for the stream alone (run.sh's perf part: perf record -g -t PID).
 *
 * usage: tls_floor --cert CHAIN.pem --key KEY.pem --ca CA.pem [--readers K]
 *                  CLIP.h264 VIEWERS SECONDS MODE...
 * e.g.   tls_floor --cert server.crt --key server.key --ca ca.crt 1080p.h264 1000 10 \
 *                  plain aes128 aes256 chacha20 aes128/16k
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../lib/rtp_clip.h"

#define FPS          25
#define RECORD_BYTES 16384 /* the largest TLS plaintext record */
#define MAX_READERS  16
#define MAX_IOV      512
/* The /16k mode writes at most this many whole records in one SSL_write, so that a chunk
 * read from the looped stream never runs past its wrap-around copy. */
#define CHUNK_RECORDS 4

enum unit { UNIT_FRAME, UNIT_PACKET, UNIT_16K };

typedef struct mode {
    const char *name;  /* as given on the command line */
    const char *suite; /* TLS 1.3 cipher suite, NULL for plain */
    enum unit unit;
    int release_buffers;
    int gather;
} floor_mode_t;

typedef struct viewer {
    int wfd, rfd;
    SSL *tx, *rx; /* the sender's end and the reader's end; NULL in plain mode */
    const uint8_t *pend;
    size_t pend_len; /* an SSL_write the socket did not take, to retry as it was */
    uint8_t *rest;   /* +gather: ciphertext the socket did not take, to send first */
    size_t rest_len;
    uint64_t stream_pos; /* /16k: bytes of the looped stream this viewer was given */
    uint64_t received;   /* bytes its reader got (the reader's thread only) */
} viewer_t;

typedef struct reader {
    pthread_t th;
    int ep;
    int tls;
    volatile int stop;
} reader_t;

typedef struct stats {
    double cpu_s, setup_s;
    uint64_t calls;        /* writev or SSL_write calls */
    uint64_t writes;       /* system calls that wrote: writev, or write() by a BIO or by us */
    uint64_t accepted;     /* plaintext bytes the sender handed over and saw taken */
    uint64_t wire;         /* TLS bytes written after the handshakes */
    uint64_t short_writes; /* writes the socket did not take whole */
    uint64_t dropped;      /* frames skipped for a viewer still retrying an earlier write */
    uint64_t offered;      /* plaintext bytes per viewer the clip gave over the run */
    double mbps_min, mbps_median;
    double openssl_kib_per_viewer; /* OpenSSL's bytes for both ends, at the end of the run */
} stats_t;

static const char *cert_file, *key_file, *ca_file;
static int nreaders = 1;

static void die(const char *what)
{
    fprintf(stderr, "tls_floor: %s", what);
    if (ERR_peek_error() != 0) {
        fprintf(stderr, ": ");
        ERR_print_errors_fp(stderr);
    } else if (errno != 0) {
        fprintf(stderr, ": %s\n", strerror(errno));
    } else {
        fprintf(stderr, "\n");
    }
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- OpenSSL's memory --------------------------------------------------------------------------
 * Every allocation OpenSSL makes goes through these (CRYPTO_set_mem_functions, before its first
 * one), so that the bytes it holds for the connections, both ends, can be read at the end of a
 * mode: what SSL_MODE_RELEASE_BUFFERS saves is there. */

#define MEM_HEADER 16 /* keeps the caller's block 16-byte aligned */

static _Atomic long long openssl_live; /* bytes */

static void *mem_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    uint8_t *p = malloc(n + MEM_HEADER);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &n, sizeof(n));
    openssl_live += (long long)n;
    return p + MEM_HEADER;
}

static void mem_free(void *q, const char *file, int line)
{
    (void)file;
    (void)line;
    if (q == NULL) {
        return;
    }
    uint8_t *p = (uint8_t *)q - MEM_HEADER;
    size_t n;
    memcpy(&n, p, sizeof(n));
    openssl_live -= (long long)n;
    free(p);
}

static void *mem_realloc(void *q, size_t n, const char *file, int line)
{
    if (q == NULL) {
        return mem_malloc(n, file, line);
    }
    if (n == 0) {
        mem_free(q, file, line);
        return NULL;
    }
    uint8_t *p = (uint8_t *)q - MEM_HEADER;
    size_t old;
    memcpy(&old, p, sizeof(old));
    p = realloc(p, n + MEM_HEADER);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &n, sizeof(n));
    openssl_live += (long long)n - (long long)old;
    return p + MEM_HEADER;
}

/* ---- modes ---------------------------------------------------------------------------------- */

static int parse_mode(const char *s, floor_mode_t *m)
{
    memset(m, 0, sizeof(*m));
    m->name = s;
    if (strcmp(s, "plain") == 0) {
        return 0;
    }
    static const struct {
        const char *prefix, *suite;
    } suites[] = {
        {"aes128", "TLS_AES_128_GCM_SHA256"},
        {"aes256", "TLS_AES_256_GCM_SHA384"},
        {"chacha20", "TLS_CHACHA20_POLY1305_SHA256"},
    };
    const char *rest = NULL;
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        size_t n = strlen(suites[i].prefix);
        if (strncmp(s, suites[i].prefix, n) == 0) {
            m->suite = suites[i].suite;
            rest = s + n;
        }
    }
    if (m->suite == NULL) {
        return -1;
    }
    while (*rest != '\0') {
        if (strncmp(rest, "/packet", 7) == 0) {
            m->unit = UNIT_PACKET;
            rest += 7;
        } else if (strncmp(rest, "/16k", 4) == 0) {
            m->unit = UNIT_16K;
            rest += 4;
        } else if (strncmp(rest, "/frame", 6) == 0) {
            m->unit = UNIT_FRAME;
            rest += 6;
        } else if (strncmp(rest, "+release", 8) == 0) {
            m->release_buffers = 1;
            rest += 8;
        } else if (strncmp(rest, "+gather", 7) == 0) {
            m->gather = 1;
            rest += 7;
        } else {
            return -1;
        }
    }
    return 0;
}

/* ---- the sender's write BIOs --------------------------------------------------------------------
 * OpenSSL's socket BIO writes each record as it is made; a count of those writes (a callback on
 * the BIO) tells how many system calls TLS costs. The gather BIO instead appends records to
 * one buffer of the sender thread, which send_frame writes with one call per viewer. */

static uint64_t bio_writes;
static uint8_t *gather_buf;
static size_t gather_len, gather_cap;

static long count_writes(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                         int ret, size_t *processed)
{
    (void)b;
    (void)argp;
    (void)len;
    (void)argi;
    (void)argl;
    (void)processed;
    if (oper == BIO_CB_WRITE) {
        bio_writes++;
    }
    return ret;
}

static int gather_write(BIO *b, const char *data, size_t n, size_t *written)
{
    (void)b;
    if (gather_len + n > gather_cap) {
        gather_cap = (gather_len + n) * 2;
        gather_buf = realloc(gather_buf, gather_cap);
        if (gather_buf == NULL) {
            die("out of memory");
        }
    }
    memcpy(gather_buf + gather_len, data, n);
    gather_len += n;
    *written = n;
    return 1;
}

static long gather_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *gather_method(void)
{
    static BIO_METHOD *m;
    if (m == NULL) {
        m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gather");
        if (m == NULL || BIO_meth_set_write_ex(m, gather_write) != 1 ||
            BIO_meth_set_ctrl(m, gather_ctrl) != 1) {
            die("BIO_meth_new");
        }
    }
    return m;
}

/* Sends what the gather BIO holds for v (after its rest from an earlier frame), with one
 * write(); keeps what the socket does not take. */
static void gather_flush(viewer_t *v, stats_t *st)
{
    if (gather_len == 0) {
        return;
    }
    st->writes++;
    ssize_t w = write(v->wfd, gather_buf, gather_len);
    size_t took = w > 0 ? (size_t)w : 0;
    if (took < gather_len) {
        st->short_writes++;
        v->rest = realloc(v->rest, v->rest_len + gather_len - took);
        if (v->rest == NULL) {
            die("out of memory");
        }
        memcpy(v->rest + v->rest_len, gather_buf + took, gather_len - took);
        v->rest_len += gather_len - took;
    }
    gather_len = 0;
}

/* +gather: sends v's rest from an earlier frame. Returns 1 when nothing remains. */
static int gather_rest(viewer_t *v, stats_t *st)
{
    if (v->rest_len == 0) {
        return 1;
    }
    st->writes++;
    ssize_t w = write(v->wfd, v->rest, v->rest_len);
    size_t took = w > 0 ? (size_t)w : 0;
    memmove(v->rest, v->rest + took, v->rest_len - took);
    v->rest_len -= took;
    return v->rest_len == 0;
}

/* ---- connections ---------------------------------------------------------------------------- */

static SSL_CTX *server_ctx(const floor_mode_t *m)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, m->suite) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "P-256") != 1) {
        die("server context");
    }
    /* The stream is all the sender writes; tickets would only add bytes at the start. */
    SSL_CTX_set_num_tickets(ctx, 0);
    if (m->release_buffers) {
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    }
    return ctx;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        die("client context");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* The readers are not measured, but they share the cores: read ahead in large chunks so
     * that they spend as little as they can. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 65536);
    return ctx;
}

/* Runs both ends' handshakes, non-blocking, until both are done. */
static void handshake(SSL *server, SSL *client)
{
    int s_done = 0, c_done = 0;
    for (int turns = 0; !(s_done && c_done); turns++) {
        if (turns > 100000) {
            die("handshake does not finish");
        }
        if (!c_done) {
            int rc = SSL_do_handshake(client);
            if (rc == 1) {
                c_done = 1;
            } else if (SSL_get_error(client, rc) != SSL_ERROR_WANT_READ &&
                       SSL_get_error(client, rc) != SSL_ERROR_WANT_WRITE) {
                die("client handshake");
            }
        }
        if (!s_done) {
            int rc = SSL_do_handshake(server);
            if (rc == 1) {
                s_done = 1;
            } else if (SSL_get_error(server, rc) != SSL_ERROR_WANT_READ &&
                       SSL_get_error(server, rc) != SSL_ERROR_WANT_WRITE) {
                die("server handshake");
            }
        }
    }
}

/* Connects nv loopback pairs (and their TLS sessions in a TLS mode), readers' ends added to
 * the readers' epoll sets in turn. */
static void connect_viewers(viewer_t *vs, int nv, reader_t *rs, SSL_CTX *sctx, SSL_CTX *cctx,
                            int gather)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 4096) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
        die("listen");
    }
    int one = 1;
    for (int i = 0; i < nv; i++) {
        viewer_t *v = &vs[i];
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            die("connect");
        }
        int a = accept(ls, NULL, NULL);
        if (a < 0) {
            die("accept");
        }
        fcntl(a, F_SETFL, O_NONBLOCK);
        fcntl(c, F_SETFL, O_NONBLOCK);
        /* As a relay does: a frame goes out as soon as it is written. */
        setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        v->wfd = a;
        v->rfd = c;
        if (sctx != NULL) {
            v->tx = SSL_new(sctx);
            v->rx = SSL_new(cctx);
            if (v->tx == NULL || v->rx == NULL || SSL_set_fd(v->tx, a) != 1 ||
                SSL_set_fd(v->rx, c) != 1 || SSL_set1_host(v->rx, "localhost") != 1) {
                die("SSL_new");
            }
            SSL_set_accept_state(v->tx);
            SSL_set_connect_state(v->rx);
            handshake(v->tx, v->rx);
            if (gather) {
                BIO *b = BIO_new(gather_method());
                if (b == NULL) {
                    die("BIO_new");
                }
                SSL_set0_wbio(v->tx, b); /* the socket BIO stays the read BIO */
            } else {
                BIO_set_callback_ex(SSL_get_wbio(v->tx), count_writes);
            }
        }
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = v};
        if (epoll_ctl(rs[i % nreaders].ep, EPOLL_CTL_ADD, c, &e) != 0) {
            die("epoll_ctl");
        }
    }
    close(ls);
}

/* ---- readers -------------------------------------------------------------------------------- */

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    static __thread uint8_t buf[1 << 16];
    struct epoll_event ev[256];
    pthread_setname_np(pthread_self(), "reader");
    while (!r->stop) {
        int n = epoll_wait(r->ep, ev, 256, 50);
        for (int i = 0; i < n; i++) {
            viewer_t *v = ev[i].data.ptr;
            for (;;) {
                int got;
                if (r->tls) {
                    got = SSL_read(v->rx, buf, sizeof(buf));
                } else {
                    got = (int)read(v->rfd, buf, sizeof(buf));
                }
                if (got <= 0) {
                    break;
                }
                v->received += (uint64_t)got;
            }
        }
    }
    return NULL;
}

/* ---- the sender ----------------------------------------------------------------------------- */

/* One SSL_write of p[0, len) for v. Returns 1 when the socket took it, 0 when it is pending
 * (the same call to be repeated later, as OpenSSL requires after WANT_WRITE). */
static int tls_write(viewer_t *v, const uint8_t *p, size_t len, stats_t *st)
{
    st->calls++;
    int w = SSL_write(v->tx, p, (int)len);
    if (w > 0) {
        st->accepted += (uint64_t)w;
        v->pend = NULL;
        return 1;
    }
    if (SSL_get_error(v->tx, w) != SSL_ERROR_WANT_WRITE) {
        die("SSL_write");
    }
    st->short_writes++;
    v->pend = p;
    v->pend_len = len;
    return 0;
}

/* The looped stream for /16k: the clip's frames back to back, followed by a copy of its first
 * CHUNK_RECORDS records, so that any chunk starting inside the loop is contiguous. */
typedef struct looped {
    uint8_t *bytes;
    size_t len;
} looped_t;

static looped_t loop_stream(const rtp_clip_frame_t *frames, size_t nframes)
{
    looped_t l = {0};
    for (size_t k = 0; k < nframes; k++) {
        l.len += frames[k].len;
    }
    size_t tail = (size_t)CHUNK_RECORDS * RECORD_BYTES;
    l.bytes = malloc(l.len + tail);
    if (l.bytes == NULL) {
        die("out of memory");
    }
    size_t off = 0;
    for (size_t k = 0; k < nframes; k++) {
        memcpy(l.bytes + off, frames[k].bytes, frames[k].len);
        off += frames[k].len;
    }
    for (size_t t = 0; t < tail; t++) {
        l.bytes[l.len + t] = l.bytes[t % l.len];
    }
    return l;
}

/* Gives viewer v what the mode writes of frame f (the looped stream's end is at produced). */
static void send_frame(const floor_mode_t *m, viewer_t *v, const rtp_clip_frame_t *f,
                       const looped_t *lp, uint64_t produced, struct iovec *iov, stats_t *st)
{
    if (m->suite == NULL) {
        int n = (int)(f->npkts < MAX_IOV ? f->npkts : MAX_IOV);
        st->calls++;
        st->writes++;
        ssize_t w = writev(v->wfd, iov, n);
        if (w > 0) {
            st->accepted += (uint64_t)w;
        }
        if (w < (ssize_t)f->len) {
            st->short_writes++;
        }
        return;
    }
    if (m->gather && !gather_rest(v, st)) {
        st->dropped++;
        return;
    }
    if (v->pend != NULL && !tls_write(v, v->pend, v->pend_len, st)) {
        st->dropped++;
        return;
    }
    switch (m->unit) {
    case UNIT_FRAME:
        tls_write(v, f->bytes, f->len, st);
        break;
    case UNIT_PACKET:
        for (size_t p = 0; p < f->npkts; p++) {
            if (!tls_write(v, f->bytes + f->pkt_off[p], f->pkt_len[p], st)) {
                break; /* the rest of the frame is dropped for this viewer */
            }
        }
        break;
    case UNIT_16K:
        while (produced - v->stream_pos >= RECORD_BYTES) {
            uint64_t whole = (produced - v->stream_pos) / RECORD_BYTES;
            size_t n = (size_t)(whole < CHUNK_RECORDS ? whole : CHUNK_RECORDS) * RECORD_BYTES;
            const uint8_t *p = lp->bytes + v->stream_pos % lp->len;
            v->stream_pos += n; /* a pending write is retried from v->pend, not from here */
            if (!tls_write(v, p, n, st)) {
                break;
            }
        }
        break;
    }
    if (m->gather) {
        gather_flush(v, st);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One mode: connect, play SECONDS of the clip to nv viewers, measure, disconnect. */
static void run(const floor_mode_t *m, const rtp_clip_frame_t *frames, size_t nframes,
                const looped_t *lp, int nv, double seconds, stats_t *st)
{
    memset(st, 0, sizeof(*st));
    SSL_CTX *sctx = m->suite != NULL ? server_ctx(m) : NULL;
    SSL_CTX *cctx = m->suite != NULL ? client_ctx() : NULL;
    reader_t rs[MAX_READERS];
    viewer_t *vs = calloc((size_t)nv, sizeof(viewer_t));
    struct iovec *iov = malloc(MAX_IOV * sizeof(struct iovec));
    if (vs == NULL || iov == NULL) {
        die("out of memory");
    }
    for (int r = 0; r < nreaders; r++) {
        memset(&rs[r], 0, sizeof(rs[r]));
        rs[r].ep = epoll_create1(0);
        rs[r].tls = m->suite != NULL;
    }
    long long live0 = openssl_live;
    double t_setup = now_s();
    connect_viewers(vs, nv, rs, sctx, cctx, m->gather);
    st->setup_s = now_s() - t_setup;
    uint64_t wire0 = 0;
    for (int i = 0; i < nv && m->suite != NULL; i++) {
        wire0 += BIO_number_written(SSL_get_wbio(vs[i].tx));
    }
    uint64_t bio_writes0 = bio_writes;
    for (int r = 0; r < nreaders; r++) {
        if (pthread_create(&rs[r].th, NULL, reader_main, &rs[r]) != 0) {
            die("pthread_create");
        }
    }

    /* A profiler may attach now: what follows is the stream alone. */
    printf("streaming mode=%s\n", m->name);
    fflush(stdout);
    size_t total = (size_t)(seconds * FPS);
    uint64_t produced = 0;
    double start = now_s();
    double cpu0 = thread_cpu_s();
    for (size_t k = 0; k < total; k++) {
        double wait = start + (double)k / FPS - now_s();
        if (wait > 0) {
            struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
            nanosleep(&ts, NULL);
        }
        const rtp_clip_frame_t *f = &frames[k % nframes];
        st->offered += f->len;
        produced += f->len;
        /* One iovec per packet, as a relay without a store would build them. */
        for (size_t p = 0; p < f->npkts && p < MAX_IOV; p++) {
            iov[p].iov_base = f->bytes + f->pkt_off[p];
            iov[p].iov_len = f->pkt_len[p];
        }
        for (int i = 0; i < nv; i++) {
            send_frame(m, &vs[i], f, lp, produced, iov, st);
        }
    }
    st->cpu_s = thread_cpu_s() - cpu0;
    st->writes += bio_writes - bio_writes0;

    usleep(300000);
    st->openssl_kib_per_viewer = (double)(openssl_live - live0) / 1024 / nv;
    for (int r = 0; r < nreaders; r++) {
        rs[r].stop = 1;
        pthread_join(rs[r].th, NULL);
    }
    double *mbps = malloc((size_t)nv * sizeof(double));
    for (int i = 0; i < nv; i++) {
        mbps[i] = (double)vs[i].received * 8 / seconds / 1e6;
        if (m->suite != NULL) {
            st->wire += BIO_number_written(SSL_get_wbio(vs[i].tx));
            SSL_free(vs[i].tx);
            SSL_free(vs[i].rx);
        }
        close(vs[i].wfd);
        close(vs[i].rfd);
        free(vs[i].rest);
    }
    st->wire -= m->suite != NULL ? wire0 : 0;
    qsort(mbps, (size_t)nv, sizeof(double), cmp_double);
    st->mbps_min = mbps[0];
    st->mbps_median = mbps[nv / 2];
    free(mbps);
    for (int r = 0; r < nreaders; r++) {
        close(rs[r].ep);
    }
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    free(iov);
    free(vs);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: tls_floor --cert CHAIN.pem --key KEY.pem --ca CA.pem [--readers K]\n"
                    "                 CLIP.h264 VIEWERS SECONDS MODE...\n"
                    "modes: plain, aes128, aes256, chacha20, each TLS one with /packet, /16k\n"
                    "       or +release (see the comment at the top of tls_floor.c)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (i + 1 >= argc) {
            usage();
        }
        if (strcmp(argv[i], "--cert") == 0) {
            cert_file = argv[i + 1];
        } else if (strcmp(argv[i], "--key") == 0) {
            key_file = argv[i + 1];
        } else if (strcmp(argv[i], "--ca") == 0) {
            ca_file = argv[i + 1];
        } else if (strcmp(argv[i], "--readers") == 0) {
            char *end;
            long k = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || k < 1 || k > MAX_READERS) {
                usage();
            }
            nreaders = (int)k;
        } else {
            usage();
        }
    }
    if (argc - i < 4) {
        usage();
    }
    const char *clip = argv[i];
    char *end;
    long nvl = strtol(argv[i + 1], &end, 10);
    if (*end != '\0' || nvl < 1 || nvl > 100000) {
        usage();
    }
    double seconds = strtod(argv[i + 2], &end);
    if (*end != '\0' || seconds < 1) {
        usage();
    }
    int nv = (int)nvl;
    int nmodes = argc - (i + 3);
    floor_mode_t *modes = calloc((size_t)nmodes, sizeof(floor_mode_t));
    stats_t *stats = calloc((size_t)nmodes, sizeof(stats_t));
    int need_tls = 0;
    for (int k = 0; k < nmodes; k++) {
        if (parse_mode(argv[i + 3 + k], &modes[k]) != 0) {
            fprintf(stderr, "tls_floor: unknown mode %s\n", argv[i + 3 + k]);
            usage();
        }
        need_tls |= modes[k].suite != NULL;
    }
    if (need_tls && (cert_file == NULL || key_file == NULL || ca_file == NULL)) {
        fprintf(stderr, "tls_floor: a TLS mode needs --cert, --key and --ca\n");
        usage();
    }
    if (CRYPTO_set_mem_functions(mem_malloc, mem_realloc, mem_free) != 1) {
        die("CRYPTO_set_mem_functions");
    }
    pthread_setname_np(pthread_self(), "sender");

    size_t nframes = 0;
    rtp_clip_frame_t *frames = rtp_clip_load(clip, &nframes, 0, 0);
    looped_t lp = loop_stream(frames, nframes);
    double mbps = (double)lp.len * 8 / ((double)nframes / FPS) / 1e6;
    printf("clip frames=%zu mbit_s=%.2f bytes_per_frame=%.0f viewers=%d seconds=%.0f "
           "readers=%d openssl=\"%s\"\n",
           nframes, mbps, (double)lp.len / (double)nframes, nv, seconds, nreaders,
           OpenSSL_version(OPENSSL_VERSION));
    fflush(stdout);

    int plain = -1;
    for (int k = 0; k < nmodes; k++) {
        stats_t *st = &stats[k];
        run(&modes[k], frames, nframes, &lp, nv, seconds, st);
        if (modes[k].suite == NULL) {
            plain = k;
        }
        double plain_bytes = (double)st->accepted;
        double records = modes[k].suite != NULL ? ((double)st->wire - plain_bytes) / 22 : 0;
        printf("mode=%s viewers=%d cpu_s=%.3f core_pct=%.2f us_per_viewer_s=%.2f "
               "calls_per_frame_viewer=%.2f records_per_frame_viewer=%.2f "
               "writes_per_frame_viewer=%.2f offered_mbit_s=%.2f recv_mbit_s_min=%.2f "
               "recv_mbit_s_median=%.2f "
               "wire_overhead_pct=%.2f short_writes=%llu dropped=%llu setup_s=%.2f "
               "openssl_kib_per_viewer=%.1f\n",
               modes[k].name, nv, st->cpu_s, st->cpu_s / seconds * 100,
               st->cpu_s / seconds / nv * 1e6, (double)st->calls / (seconds * FPS) / nv,
               records / (seconds * FPS) / nv, (double)st->writes / (seconds * FPS) / nv,
               (double)st->offered * 8 / seconds / 1e6, st->mbps_min, st->mbps_median,
               plain_bytes > 0 && st->wire > 0 ? ((double)st->wire / plain_bytes - 1) * 100 : 0,
               (unsigned long long)st->short_writes, (unsigned long long)st->dropped, st->setup_s,
               st->openssl_kib_per_viewer);
        fflush(stdout);
    }
    for (int k = 0; k < nmodes && plain >= 0; k++) {
        if (modes[k].suite != NULL) {
            printf("ratio mode=%s over=plain viewers=%d cpu=%.2f\n", modes[k].name, nv,
                   stats[k].cpu_s / stats[plain].cpu_s);
        }
    }
    free(modes);
    free(stats);
    return 0;
}
