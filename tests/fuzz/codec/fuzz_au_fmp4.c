/*
 * libFuzzer target for codec/'s access-unit assembler and fMP4 muxer: RTP packets of one
 * stream go through ch_codec_assembler_push, and every access unit handed out through
 * ch_codec_fmp4_fragment.
 *
 * Input: one mode byte (bit 0: H.265 rather than H.264; bit 1: DONL fields; bit 2: a
 * fragment buffer of only 64 bytes past the overhead, so that CH_ETOOBIG is taken), then
 * packets, each a control byte, a 16-bit big-endian payload length (a length past the end
 * takes what is left) and the payload. The control byte drives the RTP header, so that the
 * fuzzer reaches access-unit borders, gaps and timestamp jumps without having to find them
 * in 12 raw bytes: bit 0 the marker; bits 1-2 the sequence step (+1, +2, -1, +0); bits 3-5
 * the timestamp step (0, +3600, +1, -3600, +2^31, +3000, +900000, +90000); bit 6 resets the
 * assembler before the packet (a reconnect), bit 7 the stream too. Each packet is
 * built in a heap block of exactly its size, so that AddressSanitizer sees a read past it.
 *
 * Invariants: every access unit is a whole number of length-prefixed NAL units (each at least
 * its NAL header long) matching its nal_count, within CH_CODEC_AU_MAX, and never holds a
 * parameter set; a fragment is exactly its overhead plus the unit, its boxes' sizes add up,
 * its sequence number is the previous plus one, its decode time moves forward, and the first
 * fragment and the first after a reset are keyframes; the init segment's top-level boxes
 * fill it exactly.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void check_au(const ch_codec_au_t *au, ch_codec_kind_t kind)
{
    size_t off = 0, count = 0;
    assert(au->len <= CH_CODEC_AU_MAX);
    while (off < au->len) {
        assert(au->len - off >= 4);
        uint32_t n = rd32(au->data + off);
        assert(n >= (kind == CH_CODEC_H264 ? 1u : 2u) && n <= au->len - off - 4);
        const uint8_t *nal = au->data + off + 4;
        unsigned type = kind == CH_CODEC_H264 ? nal[0] & 0x1fu : (nal[0] >> 1) & 0x3fu;
        assert(kind == CH_CODEC_H264 ? type != 7 && type != 8 : type < 32 || type > 34);
        off += 4 + n;
        count++;
    }
    assert(count == au->nal_count && count > 0);
}

/* The top-level boxes of b[0, len) fill it exactly. */
static void check_boxes(const uint8_t *b, size_t len)
{
    size_t off = 0;
    while (off < len) {
        assert(len - off >= 8);
        uint32_t n = rd32(b + off);
        assert(n >= 8 && n <= len - off);
        off += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    unsigned mode = data[0];
    ch_codec_kind_t kind = (mode & 1) ? CH_CODEC_H265 : CH_CODEC_H264;
    static ch_codec_stream_t s;
    static ch_codec_assembler_t a;
    static ch_codec_fmp4_t m;
    ch_codec_stream_init(&s, kind);
    s.donl = (mode >> 1) & 1;
    ch_codec_assembler_init(&a, &s);
    ch_codec_fmp4_reset(&m);
    size_t cap = (mode & 4) ? CH_CODEC_FMP4_FRAGMENT_OVERHEAD + 64 : 1 << 17;
    uint8_t *frag = malloc(cap);
    if (frag == NULL) {
        return 0;
    }
    static const uint32_t ts_steps[8] = {0,           3600, 1,      (uint32_t)-3600,
                                         0x80000000u, 3000, 900000, 90000};
    static const uint16_t seq_steps[4] = {1, 2, (uint16_t)-1, 0};
    uint16_t seq = 0;
    uint32_t ts = 0;
    uint32_t last_sequence = 0;
    uint64_t last_dts = 0;
    int muxed = 0;
    size_t i = 1;
    while (i < size) {
        unsigned ctl = data[i++];
        size_t n = size - i < 2 ? 0 : ((size_t)data[i] << 8) | data[i + 1];
        i += size - i < 2 ? size - i : 2;
        if (n > size - i) {
            n = size - i;
        }
        if (ctl & 0x40) {
            ch_codec_assembler_reset(&a);
        }
        if (ctl & 0x80) {
            ch_codec_stream_init(&s, kind);
            s.donl = (mode >> 1) & 1;
        }
        seq = (uint16_t)(seq + seq_steps[(ctl >> 1) & 3]);
        ts += ts_steps[(ctl >> 3) & 7];
        uint8_t *pkt = malloc(12 + n);
        if (pkt == NULL) {
            break;
        }
        pkt[0] = 0x80;
        pkt[1] = (uint8_t)(((ctl & 1) << 7) | 96);
        pkt[2] = (uint8_t)(seq >> 8);
        pkt[3] = (uint8_t)seq;
        pkt[4] = (uint8_t)(ts >> 24);
        pkt[5] = (uint8_t)(ts >> 16);
        pkt[6] = (uint8_t)(ts >> 8);
        pkt[7] = (uint8_t)ts;
        memset(pkt + 8, 0, 4);
        if (n > 0) {
            memcpy(pkt + 12, data + i, n);
        }
        i += n;
        ch_codec_rtp_t rtp;
        ch_codec_pkt_t info;
        int parsed = ch_codec_rtp_parse(pkt, 12 + n, &rtp);
        assert(parsed == 0);
        int rc = ch_codec_assembler_push(&a, &rtp, &info);
        assert(rc == 0 || rc == CH_EPARSE || rc == CH_EUNSUPP);
        int last = i >= size;
        for (int pass = 0; pass < 1 + last; pass++) {
            if (pass == 1) {
                ch_codec_assembler_flush(&a);
            }
            const ch_codec_au_t *au;
            while ((au = ch_codec_assembler_next(&a)) != NULL) {
                check_au(au, kind);
                int w = ch_codec_fmp4_fragment(&m, &s, au, frag, cap);
                if (w == CH_EAGAIN || w == CH_ETOOBIG) {
                    continue;
                }
                assert(w > 0 && (size_t)w == CH_CODEC_FMP4_FRAGMENT_OVERHEAD + au->len);
                check_boxes(frag, (size_t)w);
                uint32_t sequence = rd32(frag + 20);
                uint64_t dts = ((uint64_t)rd32(frag + 60) << 32) | rd32(frag + 64);
                assert(sequence == last_sequence + 1);
                assert(muxed == 0 ? dts == 0 : dts > last_dts);
                assert(!(au->flags & CH_CODEC_AU_BROKEN));
                assert(muxed > 0 || (au->flags & CH_CODEC_AU_KEYFRAME));
                assert(!(au->flags & CH_CODEC_AU_DISCONTINUITY) ||
                       (au->flags & CH_CODEC_AU_KEYFRAME));
                assert(memcmp(frag + w - (int)au->len, au->data, au->len) == 0);
                last_sequence = sequence;
                last_dts = dts;
                muxed++;
                assert(m.init_len > 0 && m.init_len <= CH_CODEC_FMP4_INIT_MAX);
                check_boxes(m.init, m.init_len);
                assert(m.width >= 1 && m.width <= CH_CODEC_MAX_DIM);
            }
        }
        free(pkt);
    }
    free(frag);
    ch_codec_assembler_fini(&a);
    return 0;
}
