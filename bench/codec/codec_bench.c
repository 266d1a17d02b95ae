/*
 * bench/codec: packets per second of codec/'s inspection (RTP header parse and depacketizer
 * push) on a real H.264 stream, against a plain memcpy of the same packets as the reference
 * floor. usage: codec_bench FILE.h264 [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/codec.h"

typedef struct pkt {
    uint8_t *p;
    size_t len;
} pkt_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Packetizes an Annex B stream: one NAL unit per packet, FU-A above 1400 bytes. */
static size_t packetize(const uint8_t *d, size_t len, pkt_t **out)
{
    size_t cap = 1024, n = 0;
    pkt_t *v = malloc(cap * sizeof(pkt_t));
    size_t start = SIZE_MAX;
    uint16_t seq = 0;
    for (size_t i = 0; i <= len; i++) {
        int sc = i + 3 <= len && d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1;
        if (!sc && i != len) {
            continue;
        }
        if (start != SIZE_MAX) {
            size_t end = i;
            while (end > start && d[end - 1] == 0) {
                end--;
            }
            const uint8_t *nal = d + start;
            size_t nlen = end - start;
            for (size_t pos = 1, first = 1; pos < nlen || first;) {
                size_t body = nlen <= 1400 ? nlen : (nlen - pos < 1398 ? nlen - pos : 1398);
                size_t plen = 12 + (nlen <= 1400 ? nlen : 2 + body);
                uint8_t *b = malloc(plen);
                memset(b, 0, 12);
                b[0] = 0x80;
                b[1] = 96;
                b[2] = (uint8_t)(seq >> 8);
                b[3] = (uint8_t)seq++;
                b[7] = (uint8_t)n; /* the timestamp barely matters here */
                if (nlen <= 1400) {
                    memcpy(b + 12, nal, nlen);
                    pos = nlen;
                } else {
                    b[12] = (uint8_t)((nal[0] & 0xe0) | 28);
                    b[13] = (uint8_t)((first ? 0x80 : 0) | (pos + body == nlen ? 0x40 : 0) |
                                      (nal[0] & 0x1f));
                    memcpy(b + 14, nal + pos, body);
                    pos += body;
                }
                first = 0;
                if (n == cap) {
                    cap *= 2;
                    v = realloc(v, cap * sizeof(pkt_t));
                }
                v[n++] = (pkt_t){b, plen};
            }
        }
        start = i + 3;
        i += 2;
    }
    *out = v;
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.h264 [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 200;
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc(len);
    if (fread(d, 1, len, f) != len) {
        return 1;
    }
    fclose(f);
    pkt_t *pk;
    size_t n = packetize(d, len, &pk);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += pk[i].len;
    }

    static ch_codec_stream_t s;
    unsigned long keys = 0;
    double t0 = now();
    for (int r = 0; r < rounds; r++) {
        ch_codec_stream_init(&s, CH_CODEC_H264);
        for (size_t i = 0; i < n; i++) {
            ch_codec_rtp_t rtp;
            ch_codec_pkt_t info;
            if (ch_codec_rtp_parse(pk[i].p, pk[i].len, &rtp) == 0 &&
                ch_codec_stream_push(&s, &rtp, &info) == 0) {
                keys += (info.flags & CH_CODEC_PKT_KEYFRAME) != 0;
            }
        }
    }
    double inspect = now() - t0;

    uint8_t *dst = malloc(2048);
    unsigned long sum = 0;
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            memcpy(dst, pk[i].p, pk[i].len);
            __asm__ volatile("" : : "r"(dst) : "memory"); /* keep the copy */
            sum += dst[0];
        }
    }
    double copy = now() - t0;
    double total = (double)n * rounds;
    printf("packets=%zu bytes=%zu rounds=%d keyframes=%lu\n", n, bytes, rounds, keys / rounds);
    printf("inspect: %.1f Mpkt/s (%.1f ns/pkt)\n", total / inspect / 1e6, inspect / total * 1e9);
    printf("memcpy:  %.1f Mpkt/s (%.1f ns/pkt) [sum %lu]\n", total / copy / 1e6, copy / total * 1e9,
           sum);
    return 0;
}
