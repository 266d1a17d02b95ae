/*
 * bench/lib/rtp_clip.h: an Annex B H.264 clip as the interleaved RTP frames a relay sends,
 * for the floors of the relay and TLS benchmarks (bench/relay/fanout_bench.c,
 * bench/tls/tls_floor.c), so that both write the very same bytes.
 *
 * The clip is cut into NAL units, grouped into access units (a new one at each first slice,
 * or a parameter set after a slice), packetized as a camera would (a single NAL unit up to
 * 1,400 bytes, FU-A above), each packet with its 4-byte '$' header on channel 0, one RTP
 * timestamp per access unit (90 kHz at 25 fps) and the marker on its last packet. A frame is
 * one access unit's packets back to back.
 *
 * Header-only (static functions), for programs built with one cc line; it aborts the program
 * on a file it cannot read or on out-of-memory, which is all a benchmark can do.
 */
#ifndef CH_BENCH_RTP_CLIP_H
#define CH_BENCH_RTP_CLIP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTP_CLIP_MAX_PAYLOAD 1400 /* a NAL unit larger than this is cut into FU-A fragments */

typedef struct rtp_clip_frame {
    uint8_t *bytes; /* the frame's interleaved RTP packets back to back */
    size_t len;
    size_t *pkt_off; /* each packet's offset in bytes */
    size_t *pkt_len; /* each packet's length with its 4-byte header */
    unsigned *flags; /* the caller's au_start and keyframe flags, per packet */
    size_t npkts;
} rtp_clip_frame_t;

static void *rtp_clip__realloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "rtp_clip: out of memory\n");
        exit(2);
    }
    return p;
}

static void rtp_clip__add_pkt(rtp_clip_frame_t *f, const uint8_t *payload, size_t plen,
                              const uint8_t *prefix, size_t prelen, uint16_t seq, uint32_t ts,
                              unsigned flags)
{
    size_t len = 4 + 12 + prelen + plen;
    f->bytes = rtp_clip__realloc(f->bytes, f->len + len);
    f->pkt_off = rtp_clip__realloc(f->pkt_off, (f->npkts + 1) * sizeof(size_t));
    f->pkt_len = rtp_clip__realloc(f->pkt_len, (f->npkts + 1) * sizeof(size_t));
    f->flags = rtp_clip__realloc(f->flags, (f->npkts + 1) * sizeof(unsigned));
    uint8_t *p = f->bytes + f->len;
    size_t rtp = len - 4;
    p[0] = '$';
    p[1] = 0;
    p[2] = (uint8_t)(rtp >> 8);
    p[3] = (uint8_t)rtp;
    p[4] = 0x80;
    p[5] = 96;
    p[6] = (uint8_t)(seq >> 8);
    p[7] = (uint8_t)seq;
    p[8] = (uint8_t)(ts >> 24);
    p[9] = (uint8_t)(ts >> 16);
    p[10] = (uint8_t)(ts >> 8);
    p[11] = (uint8_t)ts;
    memset(p + 12, 0x11, 4);
    if (prelen > 0) {
        memcpy(p + 16, prefix, prelen);
    }
    memcpy(p + 16 + prelen, payload, plen);
    f->pkt_off[f->npkts] = f->len;
    f->pkt_len[f->npkts] = len;
    f->flags[f->npkts] = flags;
    f->npkts++;
    f->len += len;
}

/*
 * Loads the Annex B clip at path as frames (an array of *nframes, never freed: it lives as
 * long as the benchmark). au_start and keyframe are the flag values to set on a frame's first
 * packet and on the packets that begin an IDR slice (the relay benchmark passes the media
 * module's, others 0).
 */
static rtp_clip_frame_t *rtp_clip_load(const char *path, size_t *nframes, unsigned au_start,
                                       unsigned keyframe)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        exit(2);
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *data = rtp_clip__realloc(NULL, size > 0 ? (size_t)size : 1);
    if (size <= 0 || fread(data, 1, (size_t)size, fp) != (size_t)size) {
        fprintf(stderr, "%s: cannot read the clip\n", path);
        exit(2);
    }
    fclose(fp);
    rtp_clip_frame_t *frames = rtp_clip__realloc(NULL, sizeof(rtp_clip_frame_t));
    memset(frames, 0, sizeof(*frames));
    size_t nf = 1, cap = 1;
    int seen_vcl = 0;
    uint16_t seq = 0;
    size_t i = 0, n = (size_t)size;
    while (i + 3 < n) {
        size_t s = i;
        while (s + 3 <= n && !(data[s] == 0 && data[s + 1] == 0 && data[s + 2] == 1)) {
            s++;
        }
        if (s + 3 > n) {
            break;
        }
        s += 3;
        size_t e = s;
        while (e + 3 <= n && !(data[e] == 0 && data[e + 1] == 0 && data[e + 2] == 1)) {
            e++;
        }
        if (e + 3 > n) {
            e = n;
        }
        size_t end = e;
        while (end > s && data[end - 1] == 0) {
            end--;
        }
        i = e;
        if (end <= s) {
            continue;
        }
        uint8_t t = data[s] & 0x1F;
        int vcl = t >= 1 && t <= 5;
        int first_slice = vcl && end - s > 1 && (data[s + 1] & 0x80);
        if (seen_vcl && (t == 7 || t == 8 || t == 9 || first_slice)) {
            if (nf == cap) {
                cap *= 2;
                frames = rtp_clip__realloc(frames, cap * sizeof(rtp_clip_frame_t));
            }
            memset(&frames[nf], 0, sizeof(rtp_clip_frame_t));
            nf++;
            seen_vcl = 0;
        }
        rtp_clip_frame_t *f = &frames[nf - 1];
        uint32_t ts = (uint32_t)(nf - 1) * 3600;
        unsigned flags = f->npkts == 0 ? au_start : 0;
        if (t == 5) {
            flags |= keyframe;
        }
        size_t len = end - s;
        if (len <= RTP_CLIP_MAX_PAYLOAD) {
            rtp_clip__add_pkt(f, data + s, len, NULL, 0, seq++, ts, flags);
        } else {
            for (size_t k = 1; k < len; k += RTP_CLIP_MAX_PAYLOAD) {
                size_t c = len - k < RTP_CLIP_MAX_PAYLOAD ? len - k : RTP_CLIP_MAX_PAYLOAD;
                uint8_t fu[2] = {(uint8_t)((data[s] & 0xE0) | 28),
                                 (uint8_t)(t | (k == 1 ? 0x80 : 0) | (k + c >= len ? 0x40 : 0))};
                rtp_clip__add_pkt(f, data + s + k, c, fu, 2, seq++, ts, k == 1 ? flags : 0);
            }
        }
        seen_vcl |= vcl;
    }
    for (size_t k = 0; k < nf; k++) {
        if (frames[k].npkts > 0) {
            frames[k].bytes[frames[k].pkt_off[frames[k].npkts - 1] + 5] |= 0x80; /* marker */
        }
    }
    free(data);
    *nframes = nf;
    return frames;
}

#endif
