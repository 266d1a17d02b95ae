/*
 * bench/relay/viewers.c: N RTSP viewers over TCP against one URL, the load client of the relay
 * benchmark (issue 6).
 *
 * Each viewer connects, sends OPTIONS (unless --no-options), DESCRIBE, SETUP of the first
 * H.264 or H.265 video track with RTP/AVP/TCP;unicast;interleaved=0-1 (the SETUP URL is the
 * track's a=control resolved against Content-Base, else the request URL, with the query of
 * the base kept after the path, where a view token lives), PLAY, and then reads interleaved
 * frames until the run ends. It looks at the start of every RTP packet on channel 0 to find
 * the first keyframe (H.264 IDR in a single NAL unit, STAP-A or the start of an FU-A; H.265
 * IRAP 16-21 in a single unit, AP or the start of an FU) and records the time from the
 * connect() call to the arrival of that packet: the "time to first keyframe" a person in
 * front of a player waits for a picture.
 *
 * One thread, epoll, non-blocking sockets. The RTSP exchange before PLAY is read into a
 * per-viewer buffer and parsed with the project's proto parsers; after PLAY the stream is cut
 * into frames as it arrives without being stored (payload bytes are only counted), so 3,000
 * viewers at 4 Mbit/s cost one read() per socket per wake-up and little else. Keep-alives
 * (GET_PARAMETER, or OPTIONS with --keepalive-options) go every 20 s within the session, and
 * their answers are read from between the frames.
 *
 * With --tls CAFILE the URL is rtsps:// (RTSP over TLS, port 322 unless given): after the TCP
 * connect each viewer runs a non-blocking OpenSSL handshake (TLS 1.2 or 1.3, the server's
 * certificate verified against CAFILE and the URL's host name or IP address), then the same
 * exchange and counting over SSL_write and SSL_read; the time to first keyframe then includes
 * the handshake, as a player's would, and the handshake's own time is reported beside it.
 * Without --tls nothing of this runs (the plain path makes the same calls it always made).
 *
 * The run stops by itself after --seconds (or at SIGTERM or SIGINT, reporting what it saw).
 * "Streaming" means data arrived in the last second of the run; the per-viewer rate is measured
 * over the last --window seconds.
 *
 * usage: viewers [options] rtsp://host:port/path?query
 *   -n N               viewers (default 1)
 *   --seconds S        length of the run, from the first connect (default 20)
 *   --ramp S           spread the connects evenly over S seconds (default 0: all at once)
 *   --window S         rate window at the end of the run (default half of what follows the ramp)
 *   --timeout S        an RTSP answer not complete after S seconds fails the viewer (default 10)
 *   --keepalive S      keep-alive period (default 20)
 *   --keepalive-options  send OPTIONS instead of GET_PARAMETER
 *   --no-options       skip the first OPTIONS
 *   --csv              print one machine-readable line (see --csv-header) instead of the report
 *   --csv-header       print the names of the --csv fields and exit
 *   --label TEXT       first field of the --csv line (default "-")
 *   --tls CAFILE       rtsps://: TLS to the server, verified against the CA certificates in CAFILE
 *   --phases FILE      write each viewer's steps to FILE, one line each (ms from the run's start:
 *                      connect() called, connection up (TLS included), OPTIONS, DESCRIBE, SETUP
 *                      and PLAY answered, first keyframe; 0: not reached), its local port (the
 *                      server's log names it) and the run's start in wall-clock time, to see
 *                      where a join's time goes
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/core.h"
#include "proto/proto.h"

#define MAX_HEAD_BYTES 65536 /* an RTSP answer (head and SDP) larger than this fails the viewer */
#define MAX_HEADERS    48
#define PREFIX_BYTES   160 /* the start of each RTP packet kept to find a keyframe */
#define READ_CHUNK     (256 * 1024)
#define TLS_READ_AHEAD (64 * 1024) /* OpenSSL's read buffer per TLS viewer: several records */

/* The states of a viewer, in order. */
enum {
    V_WAITING,    /* not started yet (ramp) */
    V_CONNECTING, /* connect() in progress */
    V_TLS,        /* TLS handshake in progress (--tls) */
    V_OPTIONS,
    V_DESCRIBE,
    V_SETUP,
    V_PLAY,
    V_PLAYING, /* reading frames */
    V_CLOSED,  /* failed or closed by the server: why says which */
};

static const char *const state_names[] = {"waiting", "connect", "TLS",     "OPTIONS", "DESCRIBE",
                                          "SETUP",   "PLAY",    "PLAYING", "closed"};

/* Where the frame reader is within the stream after PLAY. */
enum {
    S_BOUNDARY, /* at the start of a frame or an RTSP message */
    S_HEADER,   /* inside the 4-byte '$' header */
    S_PAYLOAD,  /* inside a frame's payload */
    S_HEAD,     /* inside the head of an RTSP answer (a keep-alive's) */
    S_BODY,     /* inside the body of that answer */
};

typedef struct viewer {
    int fd;
    SSL *ssl; /* with --tls, from the TCP connect on; NULL otherwise */
    int state;
    uint32_t cseq;
    double t_start;            /* connect() called */
    double t_tls;              /* TLS handshake done; 0 until then (or without --tls) */
    double t_play;             /* PLAY answered 200 */
    double t_key;              /* first keyframe packet began to arrive; 0 until then */
    double t_up;               /* connection up (TCP, and TLS with --tls): the first request goes */
    unsigned port;             /* --phases: the local port, as the server's log names the peer */
    double t_answer[V_CLOSED]; /* --phases: when the 200 answering a state's request came */
    double t_request;          /* last request sent, for --timeout */
    double next_keepalive;
    uint64_t bytes;        /* bytes read after the PLAY answer */
    uint64_t bytes_window; /* bytes at the start of the rate window */
    uint64_t bytes_last_s; /* bytes one second before the end */
    ch_buf_t in;           /* the RTSP exchange before PLAY; answer heads after it */
    ch_buf_t out;          /* bytes not yet written */
    size_t out_off;
    char *session; /* Session id from SETUP */
    char *setup_url;
    char *play_url;
    /* frame reader */
    int sstate;
    uint8_t hdr[4];
    unsigned hdr_n;
    uint8_t channel;
    uint32_t remain;
    uint64_t body_remain;
    uint8_t prefix[PREFIX_BYTES];
    unsigned prefix_n;
    double t_pkt; /* when the current packet began to arrive */
    int h265;
    uint32_t keepalive_ok;
    uint32_t keepalive_bad;
    char why[120]; /* why the viewer closed, or empty */
} viewer_t;

typedef struct options {
    long n;
    double seconds, ramp, window, timeout, keepalive;
    int keepalive_options, no_options, csv;
    const char *label;
    const char *url;
    const char *tls_ca; /* --tls CAFILE, or NULL */
    const char *phases; /* --phases FILE, or NULL */
} options_t;

static options_t opt = {1, 20, 0, 0, 10, 20, 0, 0, 0, "-", NULL, NULL, NULL};
static struct sockaddr_storage server_addr;
static socklen_t server_addr_len;
static char *request_url;  /* the URL without credentials, as request lines carry it */
static SSL_CTX *tls_ctx;   /* --tls: one context for every viewer */
static char tls_host[256]; /* --tls: the name or address the certificate must carry */
static int tls_host_is_ip;
static char tls_negotiated[80]; /* the first handshake's version and cipher suite, for the report */
static int ep;
static uint8_t *scratch;
static volatile sig_atomic_t stop_now; /* SIGTERM or SIGINT: end the run and report */

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_now = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Closes a viewer and says why, the first reason only. */
static void viewer_close(viewer_t *v, const char *fmt, ...) CH_PRINTF(2, 3);
static void viewer_close(viewer_t *v, const char *fmt, ...)
{
    if (v->state == V_CLOSED) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof(v->why), fmt, ap);
    va_end(ap);
    if (v->ssl != NULL) {
        SSL_free(v->ssl); /* no close_notify: the socket closes at once */
        v->ssl = NULL;
    }
    if (v->fd >= 0) {
        close(v->fd); /* also leaves the epoll set */
        v->fd = -1;
    }
    v->state = V_CLOSED;
    ch_buf_fini(&v->in);
    ch_buf_fini(&v->out);
}

/* ---- TLS (--tls) ---------------------------------------------------------------------------- */

/* The first queued OpenSSL error as text, or what the last call's error code was. */
static const char *tls_error_text(int code)
{
    static char text[160];
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, text, sizeof(text));
    } else if (code == SSL_ERROR_SYSCALL) {
        snprintf(text, sizeof(text), "%s", errno != 0 ? strerror(errno) : "closed by the server");
    } else {
        snprintf(text, sizeof(text), "SSL error %d", code);
    }
    ERR_clear_error();
    return text;
}

/*
 * SSL_read or SSL_write of n bytes as read() and write() would say it: the byte count, 0 when
 * the server closed the connection (reading), or -1 with errno EAGAIN (OpenSSL wants the socket
 * readable or writable first; TLS 1.3 may answer a read with a write, so both count as not yet)
 * or EPROTO (v->why holds OpenSSL's reason, the viewer is to be closed with it).
 */
static ssize_t tls_io(viewer_t *v, int writing, void *p, size_t n)
{
    ERR_clear_error();
    errno = 0;
    int rc = writing ? SSL_write(v->ssl, p, (int)n) : SSL_read(v->ssl, p, (int)n);
    if (rc > 0) {
        return rc;
    }
    int code = SSL_get_error(v->ssl, rc);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (!writing && (code == SSL_ERROR_ZERO_RETURN ||
                     (code == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno == 0))) {
        return 0;
    }
    snprintf(v->why, sizeof(v->why), "TLS %s: %s", writing ? "write" : "read",
             tls_error_text(code));
    errno = EPROTO;
    return -1;
}

static void viewer_begin_rtsp(viewer_t *v, double now);

/* Moves the handshake along; on success starts the RTSP exchange. */
static void viewer_handshake(viewer_t *v, double now)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(v->ssl);
    if (rc == 1) {
        v->t_tls = now;
        if (tls_negotiated[0] == '\0') {
            snprintf(tls_negotiated, sizeof(tls_negotiated), "%s %s", SSL_get_version(v->ssl),
                     SSL_get_cipher_name(v->ssl));
        }
        viewer_begin_rtsp(v, now);
        return;
    }
    int code = SSL_get_error(v->ssl, rc);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
        struct epoll_event e = {.events = EPOLLIN | (code == SSL_ERROR_WANT_WRITE ? EPOLLOUT : 0),
                                .data.ptr = v};
        epoll_ctl(ep, EPOLL_CTL_MOD, v->fd, &e);
        return;
    }
    long verify = SSL_get_verify_result(v->ssl);
    if (verify != X509_V_OK) {
        viewer_close(v, "TLS: certificate not verified: %s", X509_verify_cert_error_string(verify));
        ERR_clear_error();
        return;
    }
    viewer_close(v, "TLS handshake: %s", tls_error_text(code));
}

/* Starts TLS on v's connected socket: verified against --tls's CA and the URL's host. */
static void viewer_start_tls(viewer_t *v, double now)
{
    v->ssl = SSL_new(tls_ctx);
    if (v->ssl == NULL || SSL_set_fd(v->ssl, v->fd) != 1) {
        viewer_close(v, "TLS: %s", tls_error_text(0));
        return;
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(v->ssl);
    int ok = tls_host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, tls_host)
                            : SSL_set_tlsext_host_name(v->ssl, tls_host) == 1 &&
                                  SSL_set1_host(v->ssl, tls_host) == 1;
    if (!ok) {
        viewer_close(v, "TLS: cannot check the host %s: %s", tls_host, tls_error_text(0));
        return;
    }
    SSL_set_connect_state(v->ssl);
    v->state = V_TLS;
    viewer_handshake(v, now);
}

/* The context every --tls viewer shares: TLS 1.2 or 1.3 only, the server's chain verified
 * against the CA certificates of file ca. */
static void tls_setup(const char *ca, const ch_proto_url_t *u)
{
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (tls_ctx == NULL || SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(tls_ctx, ca, NULL) != 1) {
        fprintf(stderr, "viewers: --tls %s: %s\n", ca, tls_error_text(0));
        exit(2);
    }
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
    /* Partial writes and a moving buffer: a request queued behind one the socket did not take
     * grows (and may move) the buffer the retried SSL_write is given. */
    SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read several records per read() call, as the plain path reads up to READ_CHUNK. */
    SSL_CTX_set_read_ahead(tls_ctx, 1);
    SSL_CTX_set_default_read_buffer_len(tls_ctx, TLS_READ_AHEAD);
    snprintf(tls_host, sizeof(tls_host), "%.*s", (int)u->host.len, u->host.ptr);
    /* An IPv6 literal comes bracketed from the URL. */
    size_t hl = strlen(tls_host);
    if (hl >= 2 && tls_host[0] == '[' && tls_host[hl - 1] == ']') {
        memmove(tls_host, tls_host + 1, hl - 2);
        tls_host[hl - 2] = '\0';
    }
    unsigned char addr[16];
    tls_host_is_ip =
        inet_pton(AF_INET, tls_host, addr) == 1 || inet_pton(AF_INET6, tls_host, addr) == 1;
}

/* ---- requests ------------------------------------------------------------------------------- */

/* Writes what is pending; asks for EPOLLOUT while some remains. */
static void viewer_flush(viewer_t *v)
{
    while (v->out_off < v->out.len) {
        ssize_t w = v->ssl != NULL
                        ? tls_io(v, 1, v->out.data + v->out_off, v->out.len - v->out_off)
                        : write(v->fd, v->out.data + v->out_off, v->out.len - v->out_off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && errno == EAGAIN) {
            struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = v};
            epoll_ctl(ep, EPOLL_CTL_MOD, v->fd, &e);
            return;
        }
        if (w < 0 && errno == EPROTO) {
            char why[sizeof(v->why)];
            snprintf(why, sizeof(why), "%s", v->why);
            v->why[0] = '\0';
            viewer_close(v, "%s: %s", state_names[v->state], why);
            return;
        }
        if (w < 0) {
            viewer_close(v, "write in %s: %s", state_names[v->state], strerror(errno));
            return;
        }
        v->out_off += (size_t)w;
    }
    ch_buf_reset(&v->out);
    v->out_off = 0;
}

/* Queues one request; extra is more header lines, each ending in CRLF, or NULL. */
static void viewer_request(viewer_t *v, const char *method, const char *url, const char *extra,
                           double now)
{
    ch_buf_appendf(&v->out,
                   "%s %s RTSP/1.0\r\nCSeq: %u\r\nUser-Agent: cctvhub-bench-viewers\r\n%s%s%s\r\n",
                   method, url, ++v->cseq, v->session != NULL ? "Session: " : "",
                   v->session != NULL ? v->session : "", v->session != NULL ? "\r\n" : "");
    if (extra != NULL) {
        /* The extra lines go before the empty line that ends the head. */
        v->out.len -= 2;
        ch_buf_append_str(&v->out, extra);
        ch_buf_append_str(&v->out, "\r\n");
    }
    v->t_request = now;
    viewer_flush(v);
}

static void viewer_start(viewer_t *v, double now)
{
    v->t_start = now;
    v->fd = socket(server_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (v->fd < 0) {
        v->state = V_CONNECTING;
        viewer_close(v, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(v->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    v->state = V_CONNECTING;
    v->t_request = now;
    if (connect(v->fd, (struct sockaddr *)&server_addr, server_addr_len) != 0 &&
        errno != EINPROGRESS) {
        viewer_close(v, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = v};
    epoll_ctl(ep, EPOLL_CTL_ADD, v->fd, &e);
}

/* ---- keyframes ---------------------------------------------------------------------------- */

static int h264_key(unsigned type)
{
    return type == 5;
}

static int h265_key(unsigned type)
{
    return type >= 16 && type <= 21;
}

/*
 * Tells whether the RTP packet whose first n bytes are p carries a keyframe or the start of
 * one. Only the start of the packet is known (n may be less than the packet), which is enough:
 * the NAL unit type, an FU's start bit and an aggregation's first units are near the front.
 */
static int rtp_has_keyframe(const uint8_t *p, size_t n, int h265)
{
    if (n < 12 || (p[0] >> 6) != 2) {
        return 0;
    }
    size_t off = 12 + 4 * (size_t)(p[0] & 0x0F);
    if (p[0] & 0x10) {
        if (n < off + 4) {
            return 0;
        }
        off += 4 + 4 * (size_t)((p[off + 2] << 8) | p[off + 3]);
    }
    if (n <= off) {
        return 0;
    }
    const uint8_t *q = p + off;
    size_t m = n - off;
    if (!h265) {
        unsigned t = q[0] & 0x1F;
        if (t == 28 || t == 29) { /* FU-A, FU-B: the start fragment names the type */
            return m >= 2 && (q[1] & 0x80) && h264_key(q[1] & 0x1F);
        }
        if (t == 24 || t == 25) { /* STAP-A, STAP-B (after a 2-byte DON) */
            for (size_t k = t == 24 ? 1 : 3; k + 2 < m;) {
                if (h264_key(q[k + 2] & 0x1F)) {
                    return 1;
                }
                k += 2 + ((size_t)q[k] << 8 | q[k + 1]);
            }
            return 0;
        }
        return h264_key(t);
    }
    if (m < 2) {
        return 0;
    }
    unsigned t = (q[0] >> 1) & 0x3F;
    if (t == 49) { /* FU */
        return m >= 3 && (q[2] & 0x80) && h265_key(q[2] & 0x3F);
    }
    if (t == 48) { /* AP (without DONL) */
        for (size_t k = 2; k + 2 < m;) {
            if (h265_key((q[k + 2] >> 1) & 0x3F)) {
                return 1;
            }
            k += 2 + ((size_t)q[k] << 8 | q[k + 1]);
        }
        return 0;
    }
    return h265_key(t);
}

/* ---- the RTSP exchange before PLAY ------------------------------------------------------ */

static char *slice_dup(ch_slice_t s)
{
    return ch_strndup(s.ptr, s.len);
}

/*
 * The URL a request uses for control relative to base: as ch_proto_sdp_resolve_control does
 * it (one '/' between the base's path and the control, "*" or empty as the base itself, an
 * absolute control as it is), except that a query on the base stays at the end of the result
 * ("rtsp://h/cameras/7?token=t" and "trackID=0" give "rtsp://h/cameras/7/trackID=0?token=t"),
 * as GStreamer's rtspsrc does, since the query is where a view token travels.
 */
static char *resolve_control(ch_slice_t base, ch_slice_t control)
{
    ch_buf_t out = {0};
    const char *q = memchr(base.ptr, '?', base.len);
    int relative = control.len > 0 && !ch_slice_eq(control, "*") &&
                   memchr(control.ptr, ':', control.len) == NULL;
    if (q == NULL || !relative) {
        if (ch_proto_sdp_resolve_control(base, control, &out) != 0) {
            ch_buf_fini(&out);
            return NULL;
        }
        return ch_buf_steal(&out);
    }
    ch_slice_t path = {base.ptr, (size_t)(q - base.ptr)};
    if (ch_proto_sdp_resolve_control(path, control, &out) != 0) {
        ch_buf_fini(&out);
        return NULL;
    }
    ch_buf_append(&out, q, base.len - (size_t)(q - base.ptr));
    return ch_buf_steal(&out);
}

/* Handles the answer to DESCRIBE: picks the video track and sends SETUP. Returns 0 or -1
 * (the viewer is closed). */
static int on_describe(viewer_t *v, const ch_proto_response_t *r, ch_slice_t body, double now)
{
    ch_proto_sdp_t sdp;
    if (ch_proto_sdp_parse(body.ptr, body.len, &sdp) != 0) {
        viewer_close(v, "DESCRIBE: bad SDP");
        return -1;
    }
    const ch_proto_sdp_media_t *video = NULL;
    for (size_t i = 0; i < sdp.num_media && video == NULL; i++) {
        const ch_proto_sdp_media_t *m = &sdp.media[i];
        for (size_t k = 0; k < m->num_formats; k++) {
            if (ch_slice_eq_nocase(m->formats[k].encoding, "H264") ||
                ch_slice_eq_nocase(m->formats[k].encoding, "H265")) {
                video = m;
                v->h265 = ch_slice_eq_nocase(m->formats[k].encoding, "H265");
                break;
            }
        }
    }
    if (video == NULL) {
        viewer_close(v, "DESCRIBE: no H.264 or H.265 track in the SDP");
        return -1;
    }
    ch_slice_t req = {request_url, strlen(request_url)};
    ch_slice_t base = ch_proto_rtsp_content_base(r->headers, r->num_headers, req);
    v->setup_url = resolve_control(base, video->control);
    v->play_url = resolve_control(base, sdp.control);
    if (v->setup_url == NULL || v->play_url == NULL) {
        viewer_close(v, "DESCRIBE: cannot resolve the control URLs");
        return -1;
    }
    v->state = V_SETUP;
    viewer_request(v, "SETUP", v->setup_url, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n",
                   now);
    return 0;
}

static void feed_frames(viewer_t *v, const uint8_t *p, size_t n, double now);

/*
 * Parses the answers in v->in before PLAY and moves the viewer along. After the PLAY answer
 * whatever follows it in the buffer (the first frames, often in the same read) goes to the
 * frame reader.
 */
static void on_control_bytes(viewer_t *v, double now)
{
    while (v->state >= V_OPTIONS && v->state <= V_PLAY && v->in.len > 0) {
        ch_proto_interleaved_t fr;
        int rc = ch_proto_interleaved_read(v->in.data, v->in.len, &fr);
        if (rc > 0) { /* a frame before the PLAY answer (RTCP): skip it */
            memmove(v->in.data, v->in.data + rc, v->in.len - (size_t)rc);
            v->in.len -= (size_t)rc;
            continue;
        }
        if (rc == CH_EAGAIN) {
            return;
        }
        ch_proto_response_t r;
        ch_proto_header_t hs[MAX_HEADERS];
        int head = ch_proto_parse_response(v->in.data, v->in.len, &r, hs, MAX_HEADERS);
        if (head == CH_EAGAIN) {
            if (v->in.len > MAX_HEAD_BYTES) {
                viewer_close(v, "%s: answer head over %d bytes", state_names[v->state],
                             MAX_HEAD_BYTES);
            }
            return;
        }
        if (head < 0) {
            viewer_close(v, "%s: malformed answer", state_names[v->state]);
            return;
        }
        ch_slice_t body;
        int total = ch_proto_split_body(v->in.data, v->in.len, (size_t)head, r.headers,
                                        r.num_headers, MAX_HEAD_BYTES, &body);
        if (total == CH_EAGAIN) {
            return;
        }
        if (total < 0) {
            viewer_close(v, "%s: bad answer body", state_names[v->state]);
            return;
        }
        if (r.status != 200) {
            viewer_close(v, "%s: %d %.*s", state_names[v->state], r.status, (int)r.reason.len,
                         r.reason.ptr);
            return;
        }
        v->t_answer[v->state] = now;
        switch (v->state) {
        case V_OPTIONS:
            v->state = V_DESCRIBE;
            viewer_request(v, "DESCRIBE", request_url, "Accept: application/sdp\r\n", now);
            break;
        case V_DESCRIBE:
            if (on_describe(v, &r, body, now) != 0) {
                return;
            }
            break;
        case V_SETUP: {
            const ch_proto_header_t *h = ch_proto_header_find(r.headers, r.num_headers, "Session");
            ch_proto_rtsp_session_t s;
            if (h == NULL || ch_proto_rtsp_parse_session(h->value, &s) != 0) {
                viewer_close(v, "SETUP: no valid Session header");
                return;
            }
            v->session = slice_dup(s.id);
            v->state = V_PLAY;
            viewer_request(v, "PLAY", v->play_url, NULL, now);
            break;
        }
        case V_PLAY: {
            v->state = V_PLAYING;
            v->t_play = now;
            v->next_keepalive = now + opt.keepalive;
            size_t rest = v->in.len - (size_t)total;
            uint8_t *tail = ch_malloc(rest + 1);
            memcpy(tail, v->in.data + total, rest);
            ch_buf_reset(&v->in);
            feed_frames(v, tail, rest, now);
            ch_free(tail);
            return;
        }
        default:
            break;
        }
        if (v->state == V_CLOSED) {
            return;
        }
        memmove(v->in.data, v->in.data + total, v->in.len - (size_t)total);
        v->in.len -= (size_t)total;
    }
}

/* ---- the stream after PLAY ----------------------------------------------------------------- */

static void on_packet_start(viewer_t *v)
{
    if (v->t_key == 0 && v->channel == 0 && rtp_has_keyframe(v->prefix, v->prefix_n, v->h265)) {
        v->t_key = v->t_pkt;
    }
}

/* Cuts p[0, n) into frames and keep-alive answers, counting bytes; stores no payload. */
static void feed_frames(viewer_t *v, const uint8_t *p, size_t n, double now)
{
    v->bytes += n;
    size_t i = 0;
    while (i < n && v->state == V_PLAYING) {
        switch (v->sstate) {
        case S_BOUNDARY:
            if (p[i] == '$') {
                v->sstate = S_HEADER;
                v->hdr_n = 0;
            } else {
                v->sstate = S_HEAD;
                ch_buf_reset(&v->in);
            }
            break;
        case S_HEADER:
            v->hdr[v->hdr_n++] = p[i++];
            if (v->hdr_n == 4) {
                v->channel = v->hdr[1];
                v->remain = (uint32_t)v->hdr[2] << 8 | v->hdr[3];
                v->prefix_n = 0;
                v->t_pkt = now;
                v->sstate = v->remain > 0 ? S_PAYLOAD : S_BOUNDARY;
            }
            break;
        case S_PAYLOAD: {
            size_t take = n - i < v->remain ? n - i : v->remain;
            if (v->t_key == 0 && v->prefix_n < PREFIX_BYTES) {
                size_t k = PREFIX_BYTES - v->prefix_n < take ? PREFIX_BYTES - v->prefix_n : take;
                memcpy(v->prefix + v->prefix_n, p + i, k);
                v->prefix_n += (unsigned)k;
                /* Look once: when the prefix is full or the packet ends, whichever first. */
                if (v->prefix_n == PREFIX_BYTES || take == v->remain) {
                    on_packet_start(v);
                }
            }
            i += take;
            v->remain -= (uint32_t)take;
            if (v->remain == 0) {
                v->sstate = S_BOUNDARY;
            }
            break;
        }
        case S_HEAD: {
            /* A keep-alive's answer between frames: gather its head, then skip its body. */
            ch_buf_append_char(&v->in, (char)p[i++]);
            if (v->in.len >= 4 && memcmp(v->in.data + v->in.len - 4, "\r\n\r\n", 4) == 0) {
                ch_proto_response_t r;
                ch_proto_header_t hs[MAX_HEADERS];
                uint64_t body = 0;
                if (ch_proto_parse_response(v->in.data, v->in.len, &r, hs, MAX_HEADERS) <= 0 ||
                    (ch_proto_content_length(r.headers, r.num_headers, &body) != 0 &&
                     ch_proto_header_find(r.headers, r.num_headers, "Content-Length") != NULL)) {
                    viewer_close(v, "PLAYING: stream out of sync (bad answer between frames)");
                    return;
                }
                if (r.status == 200) {
                    v->keepalive_ok++;
                } else {
                    v->keepalive_bad++;
                }
                v->body_remain = body;
                v->sstate = body > 0 ? S_BODY : S_BOUNDARY;
            } else if (v->in.len > 8192) {
                viewer_close(v, "PLAYING: stream out of sync (no frame, no answer)");
                return;
            }
            break;
        }
        case S_BODY: {
            size_t take = n - i < v->body_remain ? n - i : (size_t)v->body_remain;
            i += take;
            v->body_remain -= take;
            if (v->body_remain == 0) {
                v->sstate = S_BOUNDARY;
            }
            break;
        }
        }
    }
}

/* ---- events ------------------------------------------------------------------------------ */

/* The connection (and its TLS, with --tls) is up: the first request goes. */
static void viewer_begin_rtsp(viewer_t *v, double now)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = v};
    epoll_ctl(ep, EPOLL_CTL_MOD, v->fd, &e);
    v->t_up = now;
    if (opt.phases != NULL) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        if (getsockname(v->fd, (struct sockaddr *)&sa, &sl) == 0) {
            v->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                     : ((struct sockaddr_in *)&sa)->sin_port);
        }
    }
    if (opt.no_options) {
        v->state = V_DESCRIBE;
        viewer_request(v, "DESCRIBE", request_url, "Accept: application/sdp\r\n", now);
    } else {
        v->state = V_OPTIONS;
        viewer_request(v, "OPTIONS", request_url, NULL, now);
    }
}

/*
 * Reads a TLS viewer until OpenSSL wants the socket again. Unlike the plain path it cannot stop
 * after a few rounds: records OpenSSL has read ahead sit in its buffer, where epoll does not see
 * them. Each SSL_read gives one record (16 KiB at most).
 */
static void on_tls_readable(viewer_t *v, double now)
{
    while (v->state != V_CLOSED) {
        ssize_t got = tls_io(v, 0, scratch, READ_CHUNK);
        if (got < 0 && errno == EAGAIN) {
            return;
        }
        if (got < 0) {
            char why[sizeof(v->why)];
            snprintf(why, sizeof(why), "%s", v->why);
            v->why[0] = '\0';
            viewer_close(v, "%s: %s", state_names[v->state], why);
            return;
        }
        if (got == 0) {
            viewer_close(v, "%s: closed by the server", state_names[v->state]);
            return;
        }
        if (v->state == V_PLAYING) {
            feed_frames(v, scratch, (size_t)got, now);
        } else {
            ch_buf_append(&v->in, scratch, (size_t)got);
            on_control_bytes(v, now);
        }
    }
}

static void on_event(viewer_t *v, uint32_t events, double now)
{
    if (v->state == V_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(v->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            viewer_close(v, "connect: %s", strerror(err));
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLIN))) {
            return;
        }
        if (tls_ctx != NULL) {
            viewer_start_tls(v, now);
        } else {
            viewer_begin_rtsp(v, now);
        }
        return;
    }
    if (v->state == V_TLS) {
        viewer_handshake(v, now);
        return;
    }
    if ((events & EPOLLOUT) && v->state != V_CLOSED) {
        if (v->out.len > v->out_off) {
            viewer_flush(v);
        }
        if (v->state != V_CLOSED && v->out.len == v->out_off) {
            struct epoll_event e = {.events = EPOLLIN, .data.ptr = v};
            epoll_ctl(ep, EPOLL_CTL_MOD, v->fd, &e);
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || v->state == V_CLOSED) {
        return;
    }
    if (v->ssl != NULL) {
        on_tls_readable(v, now);
        return;
    }
    for (int rounds = 0; rounds < 4 && v->state != V_CLOSED; rounds++) {
        ssize_t got = read(v->fd, scratch, READ_CHUNK);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 && errno == EAGAIN) {
            return;
        }
        if (got <= 0) {
            viewer_close(v, "%s: %s", state_names[v->state],
                         got == 0 ? "closed by the server" : strerror(errno));
            return;
        }
        if (v->state == V_PLAYING) {
            feed_frames(v, scratch, (size_t)got, now);
        } else {
            ch_buf_append(&v->in, scratch, (size_t)got);
            on_control_bytes(v, now);
        }
        if ((size_t)got < READ_CHUNK) {
            return;
        }
    }
}

/* Timeouts of answers before PLAY, and keep-alives while playing. */
static void on_tick(viewer_t *vs, long n, double now)
{
    for (long i = 0; i < n; i++) {
        viewer_t *v = &vs[i];
        if (v->state >= V_CONNECTING && v->state <= V_PLAY && now - v->t_request > opt.timeout) {
            viewer_close(v, "%s: no answer within %.0f s", state_names[v->state], opt.timeout);
        } else if (v->state == V_PLAYING && now >= v->next_keepalive) {
            v->next_keepalive = now + opt.keepalive;
            viewer_request(v, opt.keepalive_options ? "OPTIONS" : "GET_PARAMETER", v->play_url,
                           NULL, now);
        }
    }
}

/* ---- the report ------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of sorted values by the nearest rank; 0 without values. */
static double quantile(const double *sorted, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    return sorted[(rank > n ? n : rank) - 1];
}

typedef struct reason {
    char text[120];
    long count;
} reason_t;

/* This process's CPU time (user and system), to tell when the client is the bottleneck. */
static double process_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* --phases: one line per viewer with the times of its steps, in ms from t0 (0: not reached). */
static void write_phases(const viewer_t *vs, long n, double t0, double t0_wall)
{
    FILE *f = fopen(opt.phases, "w");
    if (f == NULL) {
        fprintf(stderr, "viewers: --phases %s: %s\n", opt.phases, strerror(errno));
        return;
    }
    fprintf(f, "# t0_wall=%.6f (the run's start, seconds since the epoch)\n", t0_wall);
    fprintf(f, "viewer,port,connect,up,options,describe,setup,play,keyframe\n");
    for (long i = 0; i < n; i++) {
        const viewer_t *v = &vs[i];
        double t[] = {v->t_start,
                      v->t_up,
                      v->t_answer[V_OPTIONS],
                      v->t_answer[V_DESCRIBE],
                      v->t_answer[V_SETUP],
                      v->t_play,
                      v->t_key};
        fprintf(f, "%ld,%u", i, v->port);
        for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
            fprintf(f, ",%.2f", t[k] > 0 ? (t[k] - t0) * 1e3 : 0.0);
        }
        fputc('\n', f);
    }
    fclose(f);
}

static void report(viewer_t *vs, long n, double t0, double t0_wall, double window)
{
    if (opt.phases != NULL) {
        write_phases(vs, n, t0, t0_wall);
    }
    double cpu = process_cpu_s();
    long started = 0, playing = 0, streaming = 0, dead = 0, failed = 0, no_key = 0;
    double *ttfk = ch_calloc((size_t)n + 1, sizeof(double));
    double *tplay = ch_calloc((size_t)n + 1, sizeof(double));
    double *rate = ch_calloc((size_t)n + 1, sizeof(double));
    double *ttls = ch_calloc((size_t)n + 1, sizeof(double));
    size_t nk = 0, np = 0, nr = 0, nt = 0;
    double total_rate = 0;
    uint64_t ka_ok = 0, ka_bad = 0;
    reason_t *reasons = ch_calloc((size_t)n + 1, sizeof(reason_t));
    size_t nreasons = 0;
    for (long i = 0; i < n; i++) {
        viewer_t *v = &vs[i];
        if (v->state == V_WAITING) {
            continue;
        }
        started++;
        ka_ok += v->keepalive_ok;
        ka_bad += v->keepalive_bad;
        if (v->t_tls > 0) {
            ttls[nt++] = (v->t_tls - v->t_start) * 1e3;
        }
        if (v->t_play > 0) {
            playing++;
            tplay[np++] = (v->t_play - v->t_start) * 1e3;
        }
        if (v->t_key > 0) {
            ttfk[nk++] = (v->t_key - v->t_start) * 1e3;
        } else if (v->t_play > 0) {
            no_key++;
        }
        int alive = v->state == V_PLAYING && v->bytes > v->bytes_last_s;
        if (alive) {
            streaming++;
            rate[nr] = (double)(v->bytes - v->bytes_window) * 8 / window / 1e6;
            total_rate += rate[nr++];
            continue;
        }
        const char *why = v->why;
        if (v->state == V_PLAYING) {
            dead++;
            why = "PLAYING: no data in the last second";
        } else if (v->t_play > 0) {
            dead++;
        } else {
            failed++;
        }
        size_t k = 0;
        while (k < nreasons && strcmp(reasons[k].text, why) != 0) {
            k++;
        }
        if (k == nreasons) {
            snprintf(reasons[k].text, sizeof(reasons[k].text), "%s", why);
            nreasons++;
        }
        reasons[k].count++;
    }
    qsort(ttfk, nk, sizeof(double), cmp_double);
    qsort(tplay, np, sizeof(double), cmp_double);
    qsort(rate, nr, sizeof(double), cmp_double);
    qsort(ttls, nt, sizeof(double), cmp_double);
    const char *top = "-";
    long top_count = 0;
    for (size_t k = 0; k < nreasons; k++) {
        if (reasons[k].count > top_count) {
            top = reasons[k].text;
            top_count = reasons[k].count;
        }
    }
    /* The first viewer's absolute times let two runs started together be compared. */
    double first_key_abs = vs[0].t_key > 0 ? vs[0].t_key : 0;
    if (opt.csv) {
        char topq[160];
        size_t j = 0;
        for (const char *c = top; *c != '\0' && j + 1 < sizeof(topq); c++) {
            topq[j++] = *c == ',' ? ';' : *c;
        }
        topq[j] = '\0';
        printf("%s,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.2f,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.6f,%.6f,"
               "%llu,%llu,%.2f,%.1f,%.1f,%s,%s\n",
               opt.label, n, started, playing, streaming, dead, failed, no_key,
               quantile(rate, nr, 0), quantile(rate, nr, 0.5), total_rate, quantile(ttfk, nk, 0.5),
               quantile(ttfk, nk, 0.95), nk > 0 ? ttfk[nk - 1] : 0, quantile(tplay, np, 0.5),
               quantile(tplay, np, 0.95), t0, first_key_abs, (unsigned long long)ka_ok,
               (unsigned long long)ka_bad, cpu, quantile(ttls, nt, 0.5), quantile(ttls, nt, 0.95),
               tls_negotiated[0] != '\0' ? tls_negotiated : "-", topq);
    } else {
        printf("%s: %ld viewers, %ld started, %ld got PLAY 200, %ld streaming (data in the last "
               "second), %ld dead after PLAY, %ld failed before\n",
               opt.url != NULL ? request_url : "", n, started, playing, streaming, dead, failed);
        printf("Mbit/s per streaming viewer over the last %.1f s: min %.2f, median %.2f, max "
               "%.2f; total %.1f\n",
               window, quantile(rate, nr, 0), quantile(rate, nr, 0.5), quantile(rate, nr, 1),
               total_rate);
        printf("time to first keyframe (connect to its first byte), %zu viewers: p50 %.1f ms, "
               "p95 %.1f ms, max %.1f ms%s\n",
               nk, quantile(ttfk, nk, 0.5), quantile(ttfk, nk, 0.95), nk > 0 ? ttfk[nk - 1] : 0,
               no_key > 0 ? " (some playing viewers never saw one)" : "");
        printf("time to the PLAY answer: p50 %.1f ms, p95 %.1f ms; keep-alives answered %llu "
               "(200) %llu (other); this client used %.2f s of CPU\n",
               quantile(tplay, np, 0.5), quantile(tplay, np, 0.95), (unsigned long long)ka_ok,
               (unsigned long long)ka_bad, cpu);
        if (tls_ctx != NULL) {
            printf("TLS handshake done (connect to the end of the handshake), %zu viewers: p50 "
                   "%.1f ms, p95 %.1f ms; %s\n",
                   nt, quantile(ttls, nt, 0.5), quantile(ttls, nt, 0.95),
                   tls_negotiated[0] != '\0' ? tls_negotiated : "no handshake done");
        }
        for (size_t k = 0; k < nreasons; k++) {
            printf("  %ld x %s\n", reasons[k].count, reasons[k].text);
        }
    }
    ch_free(ttfk);
    ch_free(tplay);
    ch_free(rate);
    ch_free(ttls);
    ch_free(reasons);
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: viewers [-n N] [--seconds S] [--ramp S] [--window S] [--timeout S]\n"
                    "               [--keepalive S] [--keepalive-options] [--no-options]\n"
                    "               [--csv] [--csv-header] [--label TEXT] [--phases FILE]\n"
                    "               rtsp://host:port/path | --tls CAFILE rtsps://host:port/path\n");
    exit(2);
}

static double arg_double(const char *s)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || d < 0) {
        usage();
    }
    return d;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (strcmp(a, "-n") == 0 && more) {
            char *end;
            errno = 0;
            opt.n = strtol(argv[++i], &end, 10);
            if (errno != 0 || *end != '\0' || opt.n < 1 || opt.n > 100000) {
                usage();
            }
        } else if (strcmp(a, "--seconds") == 0 && more) {
            opt.seconds = arg_double(argv[++i]);
        } else if (strcmp(a, "--ramp") == 0 && more) {
            opt.ramp = arg_double(argv[++i]);
        } else if (strcmp(a, "--window") == 0 && more) {
            opt.window = arg_double(argv[++i]);
        } else if (strcmp(a, "--timeout") == 0 && more) {
            opt.timeout = arg_double(argv[++i]);
        } else if (strcmp(a, "--keepalive") == 0 && more) {
            opt.keepalive = arg_double(argv[++i]);
        } else if (strcmp(a, "--keepalive-options") == 0) {
            opt.keepalive_options = 1;
        } else if (strcmp(a, "--no-options") == 0) {
            opt.no_options = 1;
        } else if (strcmp(a, "--csv") == 0) {
            opt.csv = 1;
        } else if (strcmp(a, "--csv-header") == 0) {
            printf("label,viewers,started,playing,streaming,dead,failed,no_keyframe,mbps_min,"
                   "mbps_median,mbps_total,ttfk_p50_ms,ttfk_p95_ms,ttfk_max_ms,play_p50_ms,"
                   "play_p95_ms,t0_mono,first_key_mono,keepalive_ok,keepalive_bad,client_cpu_s,"
                   "tls_p50_ms,tls_p95_ms,tls_cipher,top_failure\n");
            exit(0);
        } else if (strcmp(a, "--label") == 0 && more) {
            opt.label = argv[++i];
        } else if (strcmp(a, "--tls") == 0 && more) {
            opt.tls_ca = argv[++i];
        } else if (strcmp(a, "--phases") == 0 && more) {
            opt.phases = argv[++i];
        } else if (a[0] != '-' && opt.url == NULL) {
            opt.url = a;
        } else {
            usage();
        }
    }
    if (opt.url == NULL || opt.seconds < 1 || opt.ramp >= opt.seconds) {
        usage();
    }
    if (opt.window <= 0) {
        opt.window = (opt.seconds - opt.ramp) / 2;
    }
    if (opt.window < 1) {
        opt.window = 1;
    }
    if (opt.window > opt.seconds - 1) {
        opt.window = opt.seconds - 1;
    }
}

/* Resolves the URL's host once; every viewer connects to that address. */
static void resolve_url(void)
{
    ch_proto_url_t u;
    if (ch_proto_url_parse(opt.url, strlen(opt.url), &u) != 0) {
        fprintf(stderr, "viewers: not an rtsp:// or rtsps:// URL: %s\n", opt.url);
        exit(2);
    }
    int rtsps = ch_slice_eq_nocase(u.scheme, "rtsps");
    if (rtsps != (opt.tls_ca != NULL)) {
        fprintf(stderr, "viewers: %s\n",
                rtsps ? "an rtsps:// URL needs --tls CAFILE" : "--tls needs an rtsps:// URL");
        exit(2);
    }
    if (rtsps) {
        tls_setup(opt.tls_ca, &u);
    }
    ch_buf_t b = {0};
    ch_proto_url_append(&u, CH_PROTO_URL_WIRE, &b);
    request_url = ch_buf_steal(&b);
    char host[256], port[8];
    snprintf(host, sizeof(host), "%.*s", (int)u.host.len, u.host.ptr);
    snprintf(port, sizeof(port), "%u", (unsigned)u.port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || ai == NULL) {
        fprintf(stderr, "viewers: %s: %s\n", host, gai_strerror(rc));
        exit(2);
    }
    memcpy(&server_addr, ai->ai_addr, ai->ai_addrlen);
    server_addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
}

/* Each viewer takes a descriptor: raise the soft limit (and the hard one when allowed). */
static void raise_nofile(long n)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)n + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) {
        return;
    }
    if (rl.rlim_max < want) {
        struct rlimit up = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            return;
        }
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        fprintf(stderr, "viewers: only %llu descriptors allowed; some viewers will fail\n",
                (unsigned long long)rl.rlim_cur);
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    resolve_url();
    raise_nofile(opt.n);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    scratch = ch_malloc(READ_CHUNK);
    ep = epoll_create1(EPOLL_CLOEXEC);
    viewer_t *vs = ch_calloc((size_t)opt.n, sizeof(viewer_t));
    for (long i = 0; i < opt.n; i++) {
        vs[i].fd = -1;
    }
    double t0 = now_s();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    double t0_wall = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
    double end = t0 + opt.seconds;
    double mark_window = end - opt.window, mark_last = end - 1;
    int window_done = 0, last_done = 0;
    long next_start = 0;
    double next_tick = t0 + 0.25;
    struct epoll_event evs[512];
    for (;;) {
        double now = now_s();
        /* Start the viewers due: all at once, or evenly over the ramp. */
        while (next_start < opt.n &&
               (opt.ramp == 0 || now >= t0 + opt.ramp * (double)next_start / (double)opt.n)) {
            viewer_start(&vs[next_start++], now);
        }
        if (!window_done && now >= mark_window) {
            for (long i = 0; i < opt.n; i++) {
                vs[i].bytes_window = vs[i].bytes;
            }
            window_done = 1;
        }
        if (!last_done && now >= mark_last) {
            for (long i = 0; i < opt.n; i++) {
                vs[i].bytes_last_s = vs[i].bytes;
            }
            last_done = 1;
        }
        if (now >= end || stop_now) {
            break;
        }
        if (now >= next_tick) {
            on_tick(vs, next_start, now);
            next_tick = now + 0.25;
        }
        double wake = next_tick < end ? next_tick : end;
        if (next_start < opt.n) {
            double due = t0 + opt.ramp * (double)next_start / (double)opt.n;
            wake = due < wake ? due : wake;
        }
        int ms = (int)((wake - now) * 1e3) + 1;
        int k = epoll_wait(ep, evs, 512, ms < 0 ? 0 : ms);
        for (int j = 0; j < k; j++) {
            on_event(evs[j].data.ptr, evs[j].events, now_s());
        }
    }
    report(vs, opt.n, t0, t0_wall, opt.window);
    for (long i = 0; i < opt.n; i++) {
        viewer_close(&vs[i], "end of the run");
        ch_free(vs[i].session);
        ch_free(vs[i].setup_url);
        ch_free(vs[i].play_url);
    }
    ch_free(vs);
    ch_free(scratch);
    close(ep);
    return 0;
}
