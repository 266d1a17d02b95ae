/*
 * libFuzzer target for codec/: the RTP header parser, the H.264 and H.265 depacketizers and
 * the SPS readers, on a sequence of packets.
 *
 * Input: one mode byte, then packets, each a 16-bit big-endian length and that many bytes (a
 * length past the end takes what is left). Mode bit 0 picks H.265 over H.264; bit 1 makes the
 * first packet an SDP fmtp value instead. Every packet is copied into a block of exactly its
 * size, so that AddressSanitizer sees any read past its end. Invariants: every slice lies
 * inside its packet, a report is consistent with the return code, the stream's parameter
 * sets stay within their buffers, and every size an SPS yields is within CH_CODEC_MAX_DIM.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const uint8_t *p, size_t n, const uint8_t *base, size_t len)
{
    if (n == 0) {
        return;
    }
    assert(p >= base && n <= len && p - base <= (ptrdiff_t)(len - n));
}

static void check_sps(const ch_codec_sps_t *s)
{
    assert(s->width >= 1 && s->width <= CH_CODEC_MAX_DIM);
    assert(s->height >= 1 && s->height <= CH_CODEC_MAX_DIM);
    assert(s->width <= s->coded_width && s->height <= s->coded_height);
    assert(s->coded_width <= CH_CODEC_MAX_DIM && s->coded_height <= CH_CODEC_MAX_DIM);
    assert(memchr(s->codec, '\0', sizeof(s->codec)) != NULL);
    assert(memcmp(s->codec, s->kind == CH_CODEC_H264 ? "avc1." : "hvc1.", 5) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    unsigned mode = data[0];
    ch_codec_kind_t kind = (mode & 1) ? CH_CODEC_H265 : CH_CODEC_H264;
    static ch_codec_stream_t s; /* 4 KB: not on libFuzzer's stack */
    ch_codec_stream_init(&s, kind);
    size_t i = 1;
    int first = 1;
    while (i < size) {
        size_t n = size - i < 2 ? 0 : ((size_t)data[i] << 8) | data[i + 1];
        i += size - i < 2 ? size - i : 2;
        if (n > size - i) {
            n = size - i;
        }
        uint8_t *pkt = malloc(n ? n : 1);
        if (pkt == NULL) {
            return 0;
        }
        memcpy(pkt, data + i, n);
        i += n;

        if (first && (mode & 2)) {
            int rc = ch_codec_stream_set_fmtp(&s, (const char *)pkt, n);
            assert(rc == 0 || rc == CH_EPARSE);
        } else {
            ch_codec_rtp_t rtp;
            int rc = ch_codec_rtp_parse(pkt, n, &rtp);
            assert(rc == 0 || rc == CH_EPARSE);
            if (rc == 0) {
                check_inside(rtp.payload, rtp.payload_len, pkt, n);
                check_inside(rtp.ext, rtp.ext_len, pkt, n);
                check_inside(rtp.csrc, 4 * (size_t)rtp.csrc_count, pkt, n);
                ch_codec_pkt_t info;
                rc = ch_codec_stream_push(&s, &rtp, &info);
                assert(rc == 0 || rc == CH_EPARSE || rc == CH_EUNSUPP);
                if (rc != 0) {
                    assert(info.nal_count == 0 && info.nal_types == 0);
                }
                if (info.flags & CH_CODEC_PKT_KEYFRAME) {
                    assert(info.nal_count > 0);
                }
                assert(((info.flags & CH_CODEC_PKT_AU_END) != 0) == (rtp.marker != 0));
                /* The SPS readers on the raw payload too. */
                ch_codec_sps_t sps;
                if (ch_codec_h264_sps_parse(rtp.payload, rtp.payload_len, &sps) == 0) {
                    check_sps(&sps);
                }
                if (ch_codec_h265_sps_parse(rtp.payload, rtp.payload_len, &sps) == 0) {
                    check_sps(&sps);
                }
            }
        }
        first = 0;
        free(pkt);
        assert(s.vps.len <= CH_CODEC_PARAM_MAX && s.sps.len <= CH_CODEC_PARAM_MAX &&
               s.pps.len <= CH_CODEC_PARAM_MAX && s.fu_len <= CH_CODEC_PARAM_MAX);
        if (s.sps_valid) {
            check_sps(&s.sps_info);
        }
    }
    return 0;
}
