/*
 * bench/relay/fanout_bench.c: the relay's fan-out against the floor, before the relay exists.
 *
 * One 1080p H.264 camera (an Annex B clip packetized into RTP by ../lib/rtp_clip.h, FU-A over
 * 1,400 bytes) played in real time at 25 fps to N loopback TCP readers, two ways, in the same
 * run:
 *  - floor: the bytes of each frame, interleaved headers included, prepared once; one writev
 *    per frame per viewer; no store, no cursor, no protocol work at all. No relay can spend
 *    less CPU than that;
 *  - fanout: each packet pushed into a ch_media_stream (stored once), each viewer's iovecs
 *    gathered from its cursor, one writev per frame per viewer, the cursor advanced by what
 *    the socket took (backpressure and the GOP cache are live).
 * It reports the sender thread's CPU time (getrusage RUSAGE_THREAD) for each, and the ratio.
 * The readers drain every socket on another thread and count bytes.
 *
 * usage: fanout_bench CLIP.h264 VIEWERS SECONDS [both|floor]
 * "floor" runs the floor alone (run.sh measures it beside each RTSP run, so that both see the
 * same machine).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

#include "media/media.h"

#include "../lib/rtp_clip.h"

typedef rtp_clip_frame_t frame_t;

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

/* ---- readers ------------------------------------------------------------------------------- */

typedef struct readers {
    int ep;
    volatile int stop;
    uint64_t bytes;
} readers_t;

static void *reader_main(void *arg)
{
    readers_t *r = arg;
    static char buf[1 << 16];
    struct epoll_event ev[256];
    while (!r->stop) {
        int n = epoll_wait(r->ep, ev, 256, 50);
        for (int i = 0; i < n; i++) {
            for (;;) {
                ssize_t got = read(ev[i].data.fd, buf, sizeof(buf));
                if (got <= 0) {
                    break;
                }
                r->bytes += (uint64_t)got;
            }
        }
    }
    return NULL;
}

static void connect_viewers(int nv, int *wfd, int ep)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(ls, 4096) != 0 ||
        getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
        perror("listen");
        exit(1);
    }
    for (int i = 0; i < nv; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("connect");
            exit(1);
        }
        int a = accept(ls, NULL, NULL);
        fcntl(a, F_SETFL, O_NONBLOCK);
        fcntl(c, F_SETFL, O_NONBLOCK);
        wfd[i] = a;
        struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
    }
    close(ls);
}

/* ---- the two senders ----------------------------------------------------------------------- */

static double run(int fanout, const frame_t *frames, size_t nframes, int nv, double seconds,
                  uint64_t *received, uint64_t *short_writes)
{
    readers_t r = {.ep = epoll_create1(0)};
    int *wfd = malloc((size_t)nv * sizeof(int));
    connect_viewers(nv, wfd, r.ep);
    pthread_t th;
    pthread_create(&th, NULL, reader_main, &r);
    ch_media_stream_t *s = fanout ? ch_media_stream_new(NULL) : NULL;
    ch_media_viewer_t *v = calloc((size_t)nv, sizeof(*v));
    struct iovec *iov = malloc(512 * sizeof(struct iovec));
    double start = now_s();
    double cpu0 = thread_cpu_s();
    size_t total = (size_t)(seconds * 25);
    *short_writes = 0;
    for (size_t k = 0; k < total; k++) {
        double due = start + (double)k / 25.0;
        double wait = due - now_s();
        if (wait > 0) {
            struct timespec ts = {0, (long)(wait * 1e9)};
            nanosleep(&ts, NULL);
        }
        const frame_t *f = &frames[k % nframes];
        if (fanout) {
            for (size_t p = 0; p < f->npkts; p++) {
                const uint8_t *pk = f->bytes + f->pkt_off[p];
                if (ch_media_stream_push(s, 0, pk + 4, f->pkt_len[p] - 4, f->flags[p]) < 0) {
                    exit(1);
                }
            }
            if (k == 0) {
                for (int i = 0; i < nv; i++) {
                    ch_media_viewer_join(s, &v[i], (size_t)8 << 20);
                }
            }
            for (int i = 0; i < nv; i++) {
                size_t bytes;
                size_t n = ch_media_viewer_iov(&v[i], iov, 512, &bytes);
                if (n == 0) {
                    continue;
                }
                ssize_t w = writev(wfd[i], iov, (int)n);
                if (w > 0) {
                    ch_media_viewer_advance(&v[i], (size_t)w);
                }
                if (w < (ssize_t)bytes) {
                    (*short_writes)++;
                }
            }
        } else {
            /* One iovec per packet, as a relay without a store would build them. */
            for (size_t p = 0; p < f->npkts && p < 512; p++) {
                iov[p].iov_base = f->bytes + f->pkt_off[p];
                iov[p].iov_len = f->pkt_len[p];
            }
            int n = (int)(f->npkts < 512 ? f->npkts : 512);
            for (int i = 0; i < nv; i++) {
                ssize_t w = writev(wfd[i], iov, n);
                if (w < (ssize_t)f->len) {
                    (*short_writes)++;
                }
            }
        }
    }
    double cpu = thread_cpu_s() - cpu0;
    usleep(300000);
    r.stop = 1;
    pthread_join(th, NULL);
    *received = r.bytes;
    if (s != NULL) {
        for (int i = 0; i < nv; i++) {
            ch_media_viewer_leave(&v[i]);
        }
        ch_media_stream_free(s);
    }
    for (int i = 0; i < nv; i++) {
        close(wfd[i]);
    }
    close(r.ep);
    free(iov);
    free(v);
    free(wfd);
    return cpu;
}

int main(int argc, char **argv)
{
    if (argc != 4 &&
        !(argc == 5 && (strcmp(argv[4], "both") == 0 || strcmp(argv[4], "floor") == 0))) {
        fprintf(stderr, "usage: fanout_bench CLIP.h264 VIEWERS SECONDS [both|floor]\n");
        return 2;
    }
    int floor_only = argc == 5 && strcmp(argv[4], "floor") == 0;
    size_t nframes = 0;
    frame_t *frames = rtp_clip_load(argv[1], &nframes, CH_MEDIA_AU_START, CH_MEDIA_KEYFRAME);
    long nvl = strtol(argv[2], NULL, 10);
    double seconds = strtod(argv[3], NULL);
    int nv = nvl > 0 && nvl < 100000 ? (int)nvl : 1;
    if (seconds <= 0) {
        seconds = 10;
    }
    uint64_t bytes = 0;
    for (size_t k = 0; k < nframes; k++) {
        bytes += frames[k].len;
    }
    double mbps = (double)bytes * 8 / ((double)nframes / 25.0) / 1e6;
    uint64_t got_floor, got_fan = 0, sw_floor, sw_fan = 0;
    double floor_cpu = run(0, frames, nframes, nv, seconds, &got_floor, &sw_floor);
    printf("clip %zu frames, %.2f Mbit/s; %d viewers for %.0f s\n", nframes, mbps, nv, seconds);
    printf("floor:  sender CPU %.3f s (%.1f%% of a core), received %.1f Mbit/s per viewer, "
           "short writes %llu\n",
           floor_cpu, floor_cpu / seconds * 100, (double)got_floor * 8 / seconds / 1e6 / nv,
           (unsigned long long)sw_floor);
    if (floor_only) {
        return 0;
    }
    double fan_cpu = run(1, frames, nframes, nv, seconds, &got_fan, &sw_fan);
    printf("fanout: sender CPU %.3f s (%.1f%% of a core), received %.1f Mbit/s per viewer, "
           "short writes %llu\n",
           fan_cpu, fan_cpu / seconds * 100, (double)got_fan * 8 / seconds / 1e6 / nv,
           (unsigned long long)sw_fan);
    printf("ratio fanout / floor: %.3f\n", fan_cpu / floor_cpu);
    return 0;
}
