/*
 * bench/events/load.c: an open-loop HTTP load generator for POST /api/v1/events.
 *
 * wrk is closed-loop: each connection sends its next request when the previous answer is in,
 * so with C connections the latency it reports is C / throughput whatever the server does
 * (Little's law). A city's agencies do not wait for each other: events arrive at a rate. This
 * tool sends requests on a fixed schedule (rate R over C keep-alive connections) and measures
 * each latency from the moment the request was due, not from when a connection was free, so
 * a stalled server shows in the figures (no coordinated omission).
 *
 * usage: load HOST PORT CONNECTIONS RATE SECONDS POINTS_FILE API_KEY
 * prints: sent, answered, achieved rate, statuses, latency p50/p90/p99/max in ms.
 */
#define _GNU_SOURCE
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    int busy;
    double due; /* when the request in flight was due (s) */
    char buf[65536];
    size_t len;
} conn_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static long parse_long(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v <= 0) {
        fprintf(stderr, "load: \"%s\" is not a positive number\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: load HOST PORT CONNECTIONS RATE SECONDS POINTS_FILE API_KEY\n");
        return 2;
    }
    const char *host = argv[1];
    int port = (int)parse_long(argv[2]);
    int nconn = (int)parse_long(argv[3]);
    double rate = (double)parse_long(argv[4]);
    double seconds = (double)parse_long(argv[5]);
    const char *key = argv[7];

    /* Points: "lat lon" lines. */
    FILE *f = fopen(argv[6], "r");
    if (f == NULL) {
        perror("load: points");
        return 2;
    }
    size_t npts = 0, cap = 1024;
    double *pts = malloc(cap * 2 * sizeof(double));
    char line[128];
    while (fgets(line, sizeof(line), f) != NULL) {
        char *sp = strchr(line, ' ');
        if (sp == NULL) {
            continue;
        }
        if (npts == cap) {
            cap *= 2;
            pts = realloc(pts, cap * 2 * sizeof(double));
        }
        pts[2 * npts] = strtod(line, NULL);
        pts[2 * npts + 1] = strtod(sp + 1, NULL);
        npts++;
    }
    fclose(f);
    if (npts == 0) {
        fprintf(stderr, "load: no points\n");
        return 2;
    }

    int ep = epoll_create1(0);
    conn_t *c = calloc((size_t)nconn, sizeof(*c));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    for (int i = 0; i < nconn; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c[i].fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("load: connect");
            return 1;
        }
        int one = 1;
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }

    size_t total = (size_t)(rate * seconds);
    double *lat = malloc(total * sizeof(double));
    size_t sent = 0, done = 0, non2xx = 0, errors = 0;
    long statuses[6] = {0};
    int *idle = malloc((size_t)nconn * sizeof(int));
    int nidle = nconn;
    for (int i = 0; i < nconn; i++) {
        idle[i] = i;
    }
    double start = now_s() + 0.05;
    double end_by = start + seconds + 10; /* answers may come late: wait 10 s more at most */
    char req[1024], body[512];

    while (done + errors < total && now_s() < end_by) {
        double t = now_s();
        /* Send every request that is due, on idle connections (late ones keep their due). */
        while (sent < total && nidle > 0 && start + (double)sent / rate <= t) {
            int i = idle[--nidle];
            size_t k = (size_t)(rnd() * (double)npts) % npts;
            double la = pts[2 * k] + (rnd() - 0.5) * 0.001;
            double lo = pts[2 * k + 1] + (rnd() - 0.5) * 0.001;
            int bl = snprintf(body, sizeof(body),
                              "{\"service\":\"112-dispatch\",\"location\":{\"lat\":%.6f,"
                              "\"lon\":%.6f},\"incident\":\"LOAD-%zu\",\"reason\":\"load "
                              "test\",\"duration_s\":1800}",
                              la, lo, sent);
            int rl = snprintf(req, sizeof(req),
                              "POST /api/v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: "
                              "Bearer %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %d\r\n\r\n%s",
                              host, key, bl, body);
            c[i].due = start + (double)sent / rate;
            c[i].busy = 1;
            c[i].len = 0;
            if (write(c[i].fd, req, (size_t)rl) != rl) {
                errors++;
                c[i].busy = 0;
                idle[nidle++] = i;
            }
            sent++;
        }
        double next = sent < total ? start + (double)sent / rate : t + 0.01;
        int timeout = nidle > 0 && next > t ? (int)((next - t) * 1000) : (nidle > 0 ? 0 : 10);
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, timeout);
        for (int e = 0; e < n; e++) {
            int i = (int)evs[e].data.u32;
            conn_t *cn = &c[i];
            ssize_t r = read(cn->fd, cn->buf + cn->len, sizeof(cn->buf) - cn->len - 1);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                    continue;
                }
                fprintf(stderr, "load: connection %d closed\n", i);
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, cn->fd, NULL);
                continue;
            }
            cn->len += (size_t)r;
            cn->buf[cn->len] = '\0';
            char *head_end = strstr(cn->buf, "\r\n\r\n");
            if (head_end == NULL) {
                continue;
            }
            char *cl = strcasestr(cn->buf, "\r\nContent-Length:");
            size_t blen = cl != NULL && cl < head_end ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
            size_t need = (size_t)(head_end + 4 - cn->buf) + blen;
            if (cn->len < need) {
                continue;
            }
            int status = (int)strtol(cn->buf + 9, NULL, 10);
            statuses[status / 100 <= 5 ? status / 100 : 0]++;
            if (status < 200 || status > 299) {
                non2xx++;
            }
            lat[done++] = now_s() - cn->due;
            cn->busy = 0;
            cn->len = 0;
            idle[nidle++] = i;
        }
    }
    double elapsed = now_s() - start;
    qsort(lat, done, sizeof(double), cmp_double);
#define PCT(p) (done ? lat[(size_t)((double)(done - 1) * (p))] * 1000 : 0)
    printf("sent %zu answered %zu in %.2f s: %.0f/s offered %.0f/s; 2xx %ld 4xx %ld 5xx %ld "
           "errors %zu\n",
           sent, done, elapsed, (double)done / elapsed, rate, statuses[2], statuses[4], statuses[5],
           errors);
    printf("latency ms: p50 %.2f p90 %.2f p99 %.2f max %.2f\n", PCT(0.50), PCT(0.90), PCT(0.99),
           done ? lat[done - 1] * 1000 : 0);
    free(lat);
    free(pts);
    free(idle);
    free(c);
    return non2xx > 0 || errors > 0 ? 1 : 0;
}
