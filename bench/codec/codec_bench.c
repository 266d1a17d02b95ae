/*
 * bench/codec: codec/ on a real H.264 stream, each figure against a plain memcpy of the same
 * bytes in the same run:
 *   - inspection (RTP header parse and depacketizer push) per packet, against a memcpy of the
 *     packet;
 *   - access-unit assembly (the same, plus the NAL units copied out into length-prefixed
 *     access units) per packet, against the same memcpy;
 *   - fMP4 muxing (moof + mdat written around an access unit) per access unit, against a
 *     memcpy of the unit's bytes;
 *   - the browser path whole (assembly and muxing) per access unit, against a memcpy of the
 *     unit's packets.
 * usage: codec_bench FILE.h264 [ROUNDS]
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

/* Whether a NAL unit opens a new access unit once the current one has a slice (H.264
 * 7.4.1.2.3): SEI, SPS, PPS, AUD, or a slice whose first_mb_in_slice is 0. */
static int opens_au(const uint8_t *nal, size_t len)
{
    unsigned t = nal[0] & 0x1fu;
    if (t == 6 || t == 7 || t == 8 || t == 9) {
        return 1;
    }
    return t >= 1 && t <= 5 && len > 1 && (nal[1] & 0x80);
}

static void add(pkt_t **v, size_t *n, size_t *cap, uint8_t *b, size_t len)
{
    if (*n == *cap) {
        *cap *= 2;
        *v = realloc(*v, *cap * sizeof(pkt_t));
    }
    (*v)[(*n)++] = (pkt_t){b, len};
}

/* Packetizes an Annex B stream: one NAL unit per packet, FU-A above 1400 bytes; one RTP
 * timestamp per access unit (25 fps), the marker on each access unit's last packet. */
static size_t packetize(const uint8_t *d, size_t len, pkt_t **out)
{
    size_t cap = 1024, n = 0;
    pkt_t *v = malloc(cap * sizeof(pkt_t));
    size_t start = SIZE_MAX;
    uint16_t seq = 0;
    uint32_t ts = 0;
    int has_slice = 0;
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
            if (nlen > 0 && has_slice && opens_au(nal, nlen)) {
                v[n - 1].p[1] |= 0x80; /* the previous unit's last packet */
                ts += 3600;
                has_slice = 0;
            }
            unsigned t = nlen > 0 ? nal[0] & 0x1fu : 0;
            has_slice |= t >= 1 && t <= 5;
            for (size_t pos = 1, first = 1; nlen > 0 && (pos < nlen || first);) {
                size_t body = nlen <= 1400 ? nlen : (nlen - pos < 1398 ? nlen - pos : 1398);
                size_t plen = 12 + (nlen <= 1400 ? nlen : 2 + body);
                uint8_t *b = malloc(plen);
                memset(b, 0, 12);
                b[0] = 0x80;
                b[1] = 96;
                b[2] = (uint8_t)(seq >> 8);
                b[3] = (uint8_t)seq++;
                b[4] = (uint8_t)(ts >> 24);
                b[5] = (uint8_t)(ts >> 16);
                b[6] = (uint8_t)(ts >> 8);
                b[7] = (uint8_t)ts;
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
                add(&v, &n, &cap, b, plen);
            }
        }
        start = i + 3;
        i += 2;
    }
    if (n > 0) {
        v[n - 1].p[1] |= 0x80;
    }
    *out = v;
    return n;
}

/* Keeps the compiler from dropping a copy nobody reads. */
static void keep(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
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
            keep(dst);
            sum += dst[0];
        }
    }
    double copy = now() - t0;

    /* Assembly: the stream and its assembler, kept across rounds (a warm camera). The access
     * units of the first round are kept aside for the muxing figures. */
    static ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    size_t aus = 0, au_cap = 1024, au_bytes = 0, au_max = 0;
    ch_codec_au_t *saved = malloc(au_cap * sizeof(ch_codec_au_t));
    unsigned long broken = 0;
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        ch_codec_stream_init(&s, CH_CODEC_H264);
        for (size_t i = 0; i < n; i++) {
            ch_codec_rtp_t rtp;
            ch_codec_pkt_t info;
            if (ch_codec_rtp_parse(pk[i].p, pk[i].len, &rtp) != 0 ||
                ch_codec_assembler_push(&a, &rtp, &info) < 0) {
                continue;
            }
            const ch_codec_au_t *au;
            while ((au = ch_codec_assembler_next(&a)) != NULL) {
                broken += (au->flags & CH_CODEC_AU_BROKEN) != 0;
                if (r == 0) {
                    if (aus == au_cap) {
                        au_cap *= 2;
                        saved = realloc(saved, au_cap * sizeof(ch_codec_au_t));
                    }
                    saved[aus] = *au;
                    uint8_t *copy_of = malloc(au->len);
                    memcpy(copy_of, au->data, au->len);
                    saved[aus].data = copy_of;
                    au_bytes += au->len;
                    au_max = au->len > au_max ? au->len : au_max;
                    aus++;
                }
            }
        }
    }
    double assemble = now() - t0;

    /* The floor of assembly: each packet's bytes appended to one buffer the size of the
     * largest unit, started over at each marker (what assembly copies, without looking). */
    uint8_t *unit = malloc(au_max + 2048);
    size_t at = 0;
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < n; i++) {
            size_t k = pk[i].len - 12 < au_max + 2048 - at ? pk[i].len - 12 : 0;
            memcpy(unit + at, pk[i].p + 12, k);
            keep(unit);
            at += k;
            if (pk[i].p[1] & 0x80) {
                sum += unit[0];
                at = 0;
            }
        }
    }
    double append = now() - t0;

    /* Muxing alone, on the units kept aside, against a memcpy of the same units into the
     * same buffer. */
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    size_t out_cap = au_max + CH_CODEC_FMP4_FRAGMENT_OVERHEAD;
    uint8_t *out = malloc(out_cap);
    size_t muxed = 0, mux_bytes = 0;
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < aus; i++) {
            int w = ch_codec_fmp4_fragment(&m, &s, &saved[i], out, out_cap);
            if (w > 0) {
                keep(out);
                muxed++;
                mux_bytes += (size_t)w;
            }
        }
    }
    double mux = now() - t0;
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < aus; i++) {
            memcpy(out, saved[i].data, saved[i].len);
            keep(out);
            sum += out[0];
        }
    }
    double au_copy = now() - t0;

    /* The browser path whole: packets in, fragments out. */
    ch_codec_fmp4_reset(&m);
    size_t frags = 0;
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        ch_codec_stream_init(&s, CH_CODEC_H264);
        for (size_t i = 0; i < n; i++) {
            ch_codec_rtp_t rtp;
            ch_codec_pkt_t info;
            if (ch_codec_rtp_parse(pk[i].p, pk[i].len, &rtp) != 0 ||
                ch_codec_assembler_push(&a, &rtp, &info) < 0) {
                continue;
            }
            const ch_codec_au_t *au;
            while ((au = ch_codec_assembler_next(&a)) != NULL) {
                if (ch_codec_fmp4_fragment(&m, &s, au, out, out_cap) > 0) {
                    keep(out);
                    frags++;
                }
            }
        }
    }
    double whole = now() - t0;

    double total = (double)n * rounds;
    double total_au = (double)aus * rounds;
    printf("packets=%zu bytes=%zu rounds=%d keyframes=%lu access_units=%zu unit_bytes=%zu "
           "broken=%lu muxed=%zu fragments=%zu\n",
           n, bytes, rounds, keys / rounds, aus, au_bytes, broken, muxed / rounds, frags / rounds);
    printf("inspect:  %.1f Mpkt/s (%.1f ns/pkt)\n", total / inspect / 1e6, inspect / total * 1e9);
    printf("assemble: %.1f Mpkt/s (%.1f ns/pkt)\n", total / assemble / 1e6, assemble / total * 1e9);
    printf("memcpy:   %.1f Mpkt/s (%.1f ns/pkt) [sum %lu]\n", total / copy / 1e6,
           copy / total * 1e9, sum);
    printf("append:   %.1f Mpkt/s (%.1f ns/pkt) memcpy of the packets' payloads into units\n",
           total / append / 1e6, append / total * 1e9);
    printf("mux:      %.1f kAU/s (%.0f ns/AU, %.2f GB/s) \n", total_au / mux / 1e3,
           mux / total_au * 1e9, (double)mux_bytes / mux / 1e9);
    printf("memcpy:   %.1f kAU/s (%.0f ns/AU, %.2f GB/s) of the same units\n",
           total_au / au_copy / 1e3, au_copy / total_au * 1e9,
           (double)au_bytes * rounds / au_copy / 1e9);
    printf("whole:    %.1f kAU/s (%.0f ns/AU) assembly and muxing, packets in\n",
           total_au / whole / 1e3, whole / total_au * 1e9);
    printf("memcpy:   %.0f ns/AU of the same packets\n", copy / total_au * 1e9);
    printf("ratios: inspect/memcpy %.2f assemble/memcpy %.2f assemble/append %.2f mux/memcpy "
           "%.2f whole/memcpy %.2f whole/(append+memcpy) %.2f\n",
           inspect / copy, assemble / copy, assemble / append, mux / au_copy, whole / copy,
           whole / (append + au_copy));
    ch_codec_assembler_fini(&a);
    return 0;
}
