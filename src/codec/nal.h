/*
 * Private to codec: the NAL unit types that the access-unit assembler (au.c) and the packet
 * inspector (stream.c) both read, as bits of a 64-bit mask, so that "keyframe?" and "parameter
 * set?" are one AND each with a per-codec mask.
 */
#ifndef CH_CODEC_NAL_H
#define CH_CODEC_NAL_H

#include <stdint.h>

#define BIT(t) ((uint64_t)1 << (t))

/* H.264 types (RFC 6184 table 1 and H.264 table 7-1). */
#define H264_IDR    5
#define H264_SPS    7
#define H264_PPS    8
#define H264_STAP_A 24
#define H264_FU_A   28
#define H264_KEY    BIT(H264_IDR)
#define H264_PARAMS (BIT(H264_SPS) | BIT(H264_PPS))

/* H.265 types (RFC 7798 section 4.4 and H.265 table 7-1): IRAP is 16..21. */
#define H265_VPS    32
#define H265_SPS    33
#define H265_PPS    34
#define H265_AP     48
#define H265_FU     49
#define H265_PACI   50
#define H265_KEY    (BIT(16) | BIT(17) | BIT(18) | BIT(19) | BIT(20) | BIT(21))
#define H265_PARAMS (BIT(H265_VPS) | BIT(H265_SPS) | BIT(H265_PPS))

#endif /* CH_CODEC_NAL_H */
