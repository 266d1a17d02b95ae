/*
 * codec: the media relay's view of H.264 and H.265 carried over RTP (issue 6).
 *
 * The relay forwards RTP packets exactly as they arrived; it depacketizes only far enough to
 * learn what it needs to cut and start streams:
 *   - the RTP header (RFC 3550) and the payload's place in the packet;
 *   - per packet, the NAL unit types it carries or starts, whether it starts an access unit
 *     (a picture) and whether it carries the start of a keyframe (H.264 IDR, H.265 IRAP);
 *   - the parameter sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS), in band or from the SDP, and
 *     from the SPS the picture size, profile, level and the codec string browsers ask for.
 *
 * It is on the hot path, so: no allocation at all (the per-stream state is one fixed-size
 * struct the caller embeds), payloads are looked at in place through slices into the packet,
 * and bytes are copied only when a parameter set changes (or is fragmented and must be put
 * back together). Nothing here keeps a pointer into a packet after the call returns.
 *
 * Threading: none of these calls share state; one stream belongs to one thread at a time.
 * See docs/internals/codec.md.
 */
#ifndef CH_CODEC_H
#define CH_CODEC_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

/* ---- RTP ------------------------------------------------------------------------------- */

/** An RTP packet header, parsed in place. payload, csrc and ext point into the packet. */
typedef struct ch_codec_rtp {
    uint8_t padding;      /* P: padding was present (and is excluded from payload) */
    uint8_t extension;    /* X: a header extension is present */
    uint8_t csrc_count;   /* CC: 0..15 */
    uint8_t marker;       /* M: for video, the last packet of an access unit */
    uint8_t payload_type; /* PT: 0..127 */
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
    const uint8_t *csrc;    /* csrc_count big-endian 32-bit words */
    uint16_t ext_profile;   /* "defined by profile" field of the extension, when X */
    const uint8_t *ext;     /* the extension's data words, when X (ext_len bytes) */
    size_t ext_len;         /* a multiple of 4 */
    const uint8_t *payload; /* between the header (with CSRCs, extension) and the padding */
    size_t payload_len;     /* may be 0 */
} ch_codec_rtp_t;

/**
 * Parses the RTP header of pkt[0, len). On success every pointer in out points into pkt.
 * Returns 0, or CH_EPARSE when the packet is shorter than its header says, the version is not
 * 2, or the padding count is 0 or larger than what follows the header. Never reads outside
 * pkt[0, len).
 */
int ch_codec_rtp_parse(const uint8_t *pkt, size_t len, ch_codec_rtp_t *out) CH_MUST_CHECK;

/* ---- SPS -------------------------------------------------------------------------------- */

typedef enum ch_codec_kind {
    CH_CODEC_H264 = 1,
    CH_CODEC_H265 = 2,
} ch_codec_kind_t;

/* The largest width or height an SPS may declare here; bigger ones are refused as garbage. */
#define CH_CODEC_MAX_DIM 16384

/** What the relay learns from a sequence parameter set. */
typedef struct ch_codec_sps {
    ch_codec_kind_t kind;
    uint8_t profile_idc;       /* H.264 profile_idc (100 High); H.265 general_profile_idc */
    uint8_t constraints;       /* H.264: constraint_set0..5 flags and reserved bits, as coded */
    uint8_t level_idc;         /* H.264: 10 x level (31); H.265: 30 x level (120 is 4.0) */
    uint8_t profile_space;     /* H.265 general_profile_space (0..3) */
    uint8_t tier;              /* H.265 general_tier_flag: 1 is High tier */
    uint32_t compat;           /* H.265 general_profile_compatibility_flag[j] is bit j */
    uint8_t constraint_ptl[6]; /* H.265: the 48 bits after the compatibility flags */
    uint8_t chroma_format_idc; /* 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 */
    uint8_t bit_depth_luma;    /* 8, 10, ... */
    uint8_t bit_depth_chroma;
    uint8_t frame_mbs_only; /* H.264 frame_mbs_only_flag (0: may be interlaced) */
    uint32_t width;         /* displayed: coded size minus cropping / conformance window */
    uint32_t height;        /* 1..CH_CODEC_MAX_DIM */
    uint32_t coded_width;   /* before cropping */
    uint32_t coded_height;
    char codec[48]; /* "avc1.64001F" or "hvc1.1.6.L120.90" (RFC 6381, 14496-15) */
} ch_codec_sps_t;

/**
 * Reads an H.264 SPS NAL unit (nal[0] is the NAL header, type 7, no start code) into out;
 * emulation prevention bytes are removed into a bounded scratch buffer first. Returns 0, or
 * CH_EPARSE when the unit is not an SPS, is cut short, or declares a size that is zero, over
 * CH_CODEC_MAX_DIM, or cropped to nothing. out is filled only on success.
 */
int ch_codec_h264_sps_parse(const uint8_t *nal, size_t len, ch_codec_sps_t *out) CH_MUST_CHECK;

/** The same for an H.265 SPS NAL unit (two-byte NAL header, type 33). */
int ch_codec_h265_sps_parse(const uint8_t *nal, size_t len, ch_codec_sps_t *out) CH_MUST_CHECK;

/* ---- depacketizer ----------------------------------------------------------------------- */

/* The largest parameter set kept; a bigger one is counted in params_dropped and ignored. */
#define CH_CODEC_PARAM_MAX 1024

/** One parameter set NAL unit (with its NAL header, without a start code). */
typedef struct ch_codec_param {
    uint16_t len; /* 0: none yet */
    uint8_t data[CH_CODEC_PARAM_MAX];
} ch_codec_param_t;

/* ch_codec_pkt_t.flags */
#define CH_CODEC_PKT_AU_START 0x01u /* first packet of an access unit */
#define CH_CODEC_PKT_AU_END   0x02u /* the marker bit: last packet of an access unit */
#define CH_CODEC_PKT_KEYFRAME 0x04u /* carries the start of an IDR (H.264) or IRAP (H.265) NAL */
#define CH_CODEC_PKT_PARAMS   0x08u /* a parameter set of the stream changed with this packet */
#define CH_CODEC_PKT_GAP      0x10u /* the sequence number is not the previous one plus one */
#define CH_CODEC_PKT_FRAGMENT 0x20u /* a fragment (FU-A, FU) of a NAL unit */
#define CH_CODEC_PKT_ORPHAN   0x40u /* a fragment whose start was not seen (lost or cut) */

/** What one packet carries, as ch_codec_stream_push() reports it. */
typedef struct ch_codec_pkt {
    uint32_t flags;     /* CH_CODEC_PKT_* */
    uint32_t nal_count; /* NAL units carried whole or started here */
    uint64_t nal_types; /* bit t set: carries or starts (or continues) a NAL unit of type t */
} ch_codec_pkt_t;

/**
 * One video stream's depacketizer state: the caller embeds it (about 4 KB) in its per-camera
 * struct and initializes it with ch_codec_stream_init(); there is nothing to free. The fields
 * are read-only for the caller; sps_info is valid when sps_valid.
 */
typedef struct ch_codec_stream {
    ch_codec_kind_t kind;
    uint8_t donl;        /* H.265: sprop-max-don-diff > 0, so DONL/DOND fields are present */
    uint8_t started;     /* a packet has been seen */
    uint8_t last_marker; /* the previous packet's marker bit */
    uint8_t sps_valid;   /* sps_info holds the current SPS, parsed */
    uint16_t last_seq;
    uint32_t last_ts;
    uint32_t params_version; /* bumped whenever a parameter set changes */
    uint32_t params_dropped; /* parameter sets over CH_CODEC_PARAM_MAX, or reassembly cut */
    ch_codec_param_t vps;    /* H.265 only */
    ch_codec_param_t sps;
    ch_codec_param_t pps;
    ch_codec_sps_t sps_info;
    /* The fragmented NAL unit in progress: its type (-1 none), and for a parameter set its
     * bytes put back together (capped at CH_CODEC_PARAM_MAX; fu_over marks a cut). */
    int fu_type;
    uint8_t fu_over;
    uint16_t fu_len;
    uint8_t fu_buf[CH_CODEC_PARAM_MAX];
} ch_codec_stream_t;

/** Resets s for a stream of the given kind; forgets every parameter set. */
void ch_codec_stream_init(ch_codec_stream_t *s, ch_codec_kind_t kind);

/**
 * Looks at one RTP packet of the stream, in arrival order (the caller has parsed it with
 * ch_codec_rtp_parse and picked the stream by payload type). info is always filled, even on an
 * error, because the access-unit bookkeeping is done from the RTP header alone: the packet
 * should be forwarded whatever this returns. Returns:
 *   0           the payload was understood;
 *   CH_EUNSUPP  a valid payload this relay does not look into (H.264 STAP-B, MTAP16, MTAP24,
 *               FU-B; H.265 PACI): it carries nothing the relay needs from a camera;
 *   CH_EPARSE   a malformed payload (empty, an aggregation whose sizes overrun it, a fragment
 *               too short, an H.265 NAL header with TID 0): whatever it claims is ignored.
 * A sequence gap (CH_CODEC_PKT_GAP) drops any fragment being put back together. Reordering
 * is not undone: a reordered packet reads as a gap.
 */
int ch_codec_stream_push(ch_codec_stream_t *s, const ch_codec_rtp_t *rtp,
                         ch_codec_pkt_t *info) CH_MUST_CHECK;

/**
 * Takes the parameter sets of an SDP fmtp attribute: the value after "a=fmtp:<pt> " (or the
 * whole line). H.264 reads sprop-parameter-sets (comma-separated base64 NAL units); H.265
 * reads sprop-vps, sprop-sps, sprop-pps and sprop-max-don-diff. Other parameters are ignored.
 * Returns 0 (also when there is nothing to take), or CH_EPARSE for bad base64, a unit that is
 * not a parameter set, or an SPS that does not parse; sets taken before the error are kept.
 */
int ch_codec_stream_set_fmtp(ch_codec_stream_t *s, const char *fmtp, size_t len) CH_MUST_CHECK;

/**
 * Decodes standard base64 (RFC 4648, padding optional, no whitespace) from in[0, len) into
 * out (cap bytes). Returns the number of bytes written, or CH_EPARSE for a bad character or
 * length, CH_ETOOBIG when out is too small.
 */
int ch_codec_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap) CH_MUST_CHECK;

#endif /* CH_CODEC_H */
