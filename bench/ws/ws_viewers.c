/*
 * bench/ws/ws_viewers: N browser-like WebSocket viewers of one live stream
 * (ws://HOST:PORT/api/v1/cameras/ID/live?token=...), on one epoll loop. Each connects, sends
 * the upgrade, checks the 101 and then reads frames (text and binary messages) for the run.
 * Reports one CSV line: viewers, upgraded, streaming (bytes in the last second), failed,
 * Mbit/s min and median, time to the first binary message p50/p95/max (ms).
 *
 * usage: ws_viewers -n N --seconds S URL
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct viewer {
    int fd;
    int upgraded, failed;
    size_t head_len;
    char head[1024];
    uint64_t need; /* bytes of the current frame still to skip */
    uint8_t hdr[10];
    size_t hdr_len; /* bytes of the current frame header read */
    int cur_op;
    double t0, first_bin;
    uint64_t bytes, bytes_mark;
} viewer_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Consumes received bytes: frame headers, then payloads skipped (counted). */
static void eat(viewer_t *v, const uint8_t *p, size_t n, double t)
{
    v->bytes += n;
    while (n > 0) {
        if (v->need > 0) {
            size_t k = n < v->need ? n : (size_t)v->need;
            v->need -= k;
            p += k;
            n -= k;
            continue;
        }
        v->hdr[v->hdr_len++] = *p++;
        n--;
        size_t want = 2;
        if (v->hdr_len >= 2) {
            unsigned l = v->hdr[1] & 0x7f;
            want = l == 126 ? 4 : l == 127 ? 10 : 2;
        }
        if (v->hdr_len < want) {
            continue;
        }
        unsigned l = v->hdr[1] & 0x7f;
        uint64_t len = l;
        if (l == 126) {
            len = (uint64_t)v->hdr[2] << 8 | v->hdr[3];
        } else if (l == 127) {
            len = 0;
            for (int i = 0; i < 8; i++) {
                len = len << 8 | v->hdr[2 + i];
            }
        }
        v->cur_op = v->hdr[0] & 0x0f;
        if (v->cur_op == 2 && v->first_bin == 0) {
            v->first_bin = t;
        }
        v->need = len;
        v->hdr_len = 0;
    }
}

int main(int argc, char **argv)
{
    int n = 1;
    double seconds = 10;
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            n = (int)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            url = argv[i];
        }
    }
    char host[64];
    int port = 0;
    const char *path;
    if (url == NULL || strncmp(url, "ws://", 5) != 0 || n < 1) {
        fprintf(stderr, "usage: ws_viewers -n N --seconds S ws://HOST:PORT/PATH\n");
        return 2;
    }
    const char *h = url + 5, *colon = strchr(h, ':');
    path = strchr(h, '/');
    if (colon == NULL || path == NULL || colon > path || (size_t)(colon - h) >= sizeof(host)) {
        fprintf(stderr, "ws_viewers: bad URL\n");
        return 2;
    }
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    port = (int)strtol(colon + 1, NULL, 10);
    struct rlimit rl = {(rlim_t)n + 64, (rlim_t)n + 64};
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "ws_viewers: host must be an IPv4 address\n");
        return 2;
    }
    int ep = epoll_create1(0);
    viewer_t *vs = calloc((size_t)n, sizeof(*vs));
    char req[4096];
    int rlen = snprintf(req, sizeof(req),
                        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n",
                        path, host, port);
    if (ep < 0 || vs == NULL || rlen <= 0 || (size_t)rlen >= sizeof(req)) {
        return 1;
    }
    double start = now_s();
    for (int i = 0; i < n; i++) {
        viewer_t *v = &vs[i];
        v->t0 = now_s();
        v->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (v->fd < 0 || connect(v->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            write(v->fd, req, (size_t)rlen) != rlen) {
            v->failed = 1;
            continue;
        }
        int fl = fcntl(v->fd, F_GETFL);
        (void)fcntl(v->fd, F_SETFL, fl | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        (void)epoll_ctl(ep, EPOLL_CTL_ADD, v->fd, &ev);
    }
    static uint8_t buf[1 << 16];
    double mark_at = start + seconds - 1.0;
    int marked = 0;
    for (;;) {
        double t = now_s();
        if (t >= start + seconds) {
            break;
        }
        if (!marked && t >= mark_at) {
            for (int i = 0; i < n; i++) {
                vs[i].bytes_mark = vs[i].bytes;
            }
            marked = 1;
        }
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 100);
        for (int e = 0; e < k; e++) {
            viewer_t *v = &vs[evs[e].data.u32];
            ssize_t r = read(v->fd, buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) {
                    continue;
                }
                v->failed = 1;
                (void)epoll_ctl(ep, EPOLL_CTL_DEL, v->fd, NULL);
                continue;
            }
            size_t off = 0;
            if (!v->upgraded) {
                size_t take = (size_t)r;
                if (v->head_len + take > sizeof(v->head) - 1) {
                    take = sizeof(v->head) - 1 - v->head_len;
                }
                memcpy(v->head + v->head_len, buf, take);
                v->head_len += take;
                v->head[v->head_len] = '\0';
                char *end = strstr(v->head, "\r\n\r\n");
                if (end == NULL) {
                    continue;
                }
                if (strncmp(v->head, "HTTP/1.1 101", 12) != 0) {
                    v->failed = 1;
                    (void)epoll_ctl(ep, EPOLL_CTL_DEL, v->fd, NULL);
                    continue;
                }
                v->upgraded = 1;
                size_t hl = (size_t)(end + 4 - v->head);
                off = hl - (v->head_len - take);
            }
            eat(v, buf + off, (size_t)r - off, now_s());
        }
    }
    int upgraded = 0, streaming = 0, failed = 0, nt = 0;
    double *mb = calloc((size_t)n, sizeof(double)), *tt = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++) {
        viewer_t *v = &vs[i];
        upgraded += v->upgraded;
        failed += v->failed;
        if (v->bytes > v->bytes_mark) {
            streaming++;
        }
        mb[i] = (double)v->bytes * 8 / 1e6 / seconds;
        if (v->first_bin > 0) {
            tt[nt++] = (v->first_bin - v->t0) * 1000;
        }
        close(v->fd);
    }
    qsort(mb, (size_t)n, sizeof(double), cmp_double);
    qsort(tt, (size_t)nt, sizeof(double), cmp_double);
    printf("viewers,upgraded,streaming,failed,mbps_min,mbps_median,first_p50_ms,first_p95_ms,"
           "first_max_ms\n");
    printf("%d,%d,%d,%d,%.2f,%.2f,%.1f,%.1f,%.1f\n", n, upgraded, streaming, failed, mb[0],
           mb[n / 2], nt ? tt[nt / 2] : -1,
           nt ? tt[(nt * 95) / 100 < nt ? (nt * 95) / 100 : nt - 1] : -1, nt ? tt[nt - 1] : -1);
    free(mb);
    free(tt);
    free(vs);
    return 0;
}
