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
 * For the browser (issue 7), at the end of this header: an access-unit assembler (RTP
 * packets to whole pictures as length-prefixed NAL units, copied once into two reusable
 * buffers, the only memory this module allocates) and a fragmented-MP4 muxer (an init
 * segment, then one moof + mdat per picture, written into the caller's buffer), both meant
 * to run once per camera so that every browser viewer shares the same bytes.
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

/* ---- access-unit assembler --------------------------------------------------------------- */

/* The largest access unit kept; past it the unit is marked broken and its further NAL units
 * are dropped (a camera cannot make the relay hold more than this per stream). */
#define CH_CODEC_AU_MAX (16u << 20)

/* ch_codec_au_t.flags */
#define CH_CODEC_AU_KEYFRAME      0x01u /* holds an IDR (H.264) or IRAP (H.265) slice */
#define CH_CODEC_AU_BROKEN        0x02u /* a packet was lost, malformed or cut: do not decode it */
#define CH_CODEC_AU_PARAMS        0x04u /* the stream's parameter sets changed since the last unit */
#define CH_CODEC_AU_MARKER        0x08u /* ended by the marker bit (else by a timestamp change) */
#define CH_CODEC_AU_DISCONTINUITY 0x10u /* first unit after a reset: decode from a keyframe */

/**
 * One access unit (one picture) put back together from its RTP packets: its NAL units in
 * decoding order, each as a 4-byte big-endian length then the unit (NAL header included,
 * emulation prevention bytes kept), which is what an MP4 sample holds (avcC/hvcC with
 * lengthSizeMinusOne 3). Parameter sets (SPS, PPS, VPS) are not in data: they go to the
 * stream (ch_codec_stream_t) and from there into the init segment. data is owned by the
 * assembler and valid until the next ch_codec_assembler_push/flush/reset/fini; data[0, len) is
 * always a whole number of length-prefixed units, even in a broken unit (a cut unit is
 * removed, not kept half).
 */
typedef struct ch_codec_au {
    const uint8_t *data;
    size_t len;
    uint32_t timestamp; /* RTP timestamp (90 kHz) */
    uint32_t flags;     /* CH_CODEC_AU_* */
    uint32_t nal_count; /* units in data */
    uint64_t nal_types; /* bit t: a NAL unit of type t was seen in it (parameter sets too) */
} ch_codec_au_t;

/* One buffer of the assembler: an access unit being built or handed out. */
typedef struct ch_codec_au_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    ch_codec_au_t au;
} ch_codec_au_buf_t;

/**
 * The access-unit assembler of one stream: RTP packets in, whole access units out. The
 * caller embeds it beside the stream's ch_codec_stream_t, which keeps the parameter sets.
 * Two buffers, reused: a packet with a new timestamp closes the previous unit (which must
 * stay readable) and starts the next in the other buffer; units ended by the marker are
 * released at the next call, so with markers one buffer serves them all. The buffers grow
 * to the largest unit seen, so once warm nothing is allocated per packet. Fields are
 * private.
 */
typedef struct ch_codec_assembler {
    ch_codec_stream_t *stream;
    ch_codec_au_buf_t buf[2];
    unsigned building;     /* index of the buffer being built */
    uint8_t open;          /* a unit is being built */
    uint8_t carry_broken;  /* a broken unit held no NAL unit: its loss falls on the next */
    uint8_t discontinuity; /* reset: the next unit handed out says so */
    uint8_t ready_count;   /* units closed by the last call, not yet taken */
    uint8_t ready_next;    /* the next of them to hand out */
    uint8_t ready[2];      /* buffer indexes, oldest first */
    size_t fu_off;         /* where the fragmented unit in progress starts in data */
    int fu_type;           /* its NAL type, -1 when none */
    uint32_t params_seen;  /* the stream's params_version at the last unit handed out */
} ch_codec_assembler_t;

/**
 * Sets up a for the stream s (initialized by the caller with ch_codec_stream_init, and
 * possibly given its SDP parameters). a keeps the pointer: s must outlive a, and while a is
 * used, every packet of the stream goes through ch_codec_assembler_push (which pushes it to
 * s), not ch_codec_stream_push. Allocates nothing yet.
 */
void ch_codec_assembler_init(ch_codec_assembler_t *a, ch_codec_stream_t *s);

/**
 * The stream stopped and will resume later (the camera's connection was lost and is being
 * made again): drops the unit being built and the units ready, keeps the buffers. The next
 * unit handed out carries CH_CODEC_AU_DISCONTINUITY, so that a muxer waits for a keyframe.
 * The caller resets the stream itself if it wants (ch_codec_stream_init, then its SDP).
 */
void ch_codec_assembler_reset(ch_codec_assembler_t *a);

/** Frees the buffers; a may be initialized again. Accepts a zeroed struct. */
void ch_codec_assembler_fini(ch_codec_assembler_t *a);

/**
 * Takes one RTP packet of the stream, in arrival order: pushes it to the stream (so info and
 * the return value are exactly ch_codec_stream_push's, and the packet should be forwarded
 * whatever this returns), then adds its NAL units to the access unit being built. A packet
 * closes the previous unit when it starts a new one (a marker before, or a new timestamp),
 * and its own unit when it carries the marker: so 0, 1 or 2 units are ready afterwards, to
 * take with ch_codec_assembler_next() before the next call. A unit is BROKEN when a sequence
 * gap falls in it or just before it, when a payload is malformed or of an unsupported kind
 * (its content is lost), when a fragmented NAL unit is cut (an end, a middle or a start is
 * missing), or when it outgrows CH_CODEC_AU_MAX. Reordered packets are not put back in order:
 * a reordered packet reads as a gap. Allocates only while a unit is bigger than any before.
 */
int ch_codec_assembler_push(ch_codec_assembler_t *a, const ch_codec_rtp_t *rtp,
                            ch_codec_pkt_t *info) CH_MUST_CHECK;

/**
 * Closes the unit being built, if any, as if the next packet had a new timestamp (end of a
 * stream, or a stream whose camera never sets the marker and has paused). Then 0 or 1 units
 * are ready; earlier ready units are dropped.
 */
void ch_codec_assembler_flush(ch_codec_assembler_t *a);

/**
 * The next access unit closed by the last push or flush, oldest first, or NULL when there is
 * none left. The unit (and its data) stays valid until the next push, flush, reset or fini.
 * Units with no NAL unit but parameter sets are not handed out (their parameter sets are in
 * the stream).
 */
const ch_codec_au_t *ch_codec_assembler_next(ch_codec_assembler_t *a);

/* ---- fMP4 muxer -------------------------------------------------------------------------- */

/* The largest init segment: the fixed boxes (under 700 bytes) and three parameter sets of at
 * most CH_CODEC_PARAM_MAX bytes. */
#define CH_CODEC_FMP4_INIT_MAX 4096
/* The bytes a fragment adds around its access unit's data: moof (100) and the mdat header. */
#define CH_CODEC_FMP4_FRAGMENT_OVERHEAD 108
/* The track's timescale: RTP's video clock. */
#define CH_CODEC_FMP4_TIMESCALE 90000
/* The duration given to the first sample, before a second timestamp says better (30 fps). */
#define CH_CODEC_FMP4_FIRST_DURATION 3000

/**
 * The fragmented-MP4 muxer of one stream (ISO/IEC 14496-12, as Media Source Extensions take
 * it): one init segment (ftyp + moov), then one fragment (moof + mdat) per access unit, one
 * sample each. Meant to run once per camera: every viewer gets the same bytes (the init
 * segment, then the fragments from a keyframe on), so nothing here is per viewer. The caller
 * embeds it; the fields are read-only for the caller:
 *   init, init_len   the current init segment, made from the stream's parameter sets at
 *                    every keyframe (so it follows a change at the keyframe after it);
 *   init_serial      bumped when the init segment's bytes change: a viewer whose last init
 *                    segment had another serial must be sent this one before the next
 *                    fragment;
 *   codec            the RFC 6381 codec string of the init segment (for
 *                    MediaSource.isTypeSupported('video/mp4; codecs="..."')), from the SPS;
 *   width, height    the displayed picture size, from the SPS.
 * Decode times come from the RTP timestamps, unwrapped across the 32-bit wrap, 0 at the first
 * fragment. A sample's duration is the previous timestamp step (the last known), so that a
 * fragment leaves as soon as its access unit is whole rather than one frame later; tfdt is
 * exact in every fragment, so a guessed duration never accumulates drift.
 */
typedef struct ch_codec_fmp4 {
    uint8_t init[CH_CODEC_FMP4_INIT_MAX];
    size_t init_len; /* 0 until the first keyframe with parameter sets */
    uint32_t init_serial;
    char codec[48];
    uint32_t width;
    uint32_t height;
    /* private */
    uint32_t params_version; /* the stream's when init was built */
    uint32_t sequence;       /* mfhd sequence_number of the last fragment */
    uint8_t timing;          /* the timeline has started */
    uint8_t need_key;        /* dropping until a whole keyframe */
    uint32_t last_ts;        /* RTP timestamp of the last unit seen */
    uint32_t duration;       /* the last timestamp step */
    uint64_t dts;            /* decode time of the last unit seen */
    uint64_t dropped;        /* units not muxed (broken, or waiting for a keyframe) */
} ch_codec_fmp4_t;

/** Resets m: no init segment, the next fragment starts the timeline at 0 from a keyframe. */
void ch_codec_fmp4_reset(ch_codec_fmp4_t *m);

/**
 * Writes the init segment of the stream s into m->init (ftyp, then moov: mvhd, trak with
 * tkhd, mdia with mdhd at 90 kHz, hdlr vide, minf with vmhd, dinf, stbl with stsd holding
 * avc1+avcC or hvc1+hvcC and empty stts, stsc, stsz, stco; then mvex with trex), and sets
 * codec, width and height; init_serial moves on only when the bytes differ from the last
 * init segment's. ch_codec_fmp4_fragment calls it by itself at every keyframe; a caller may
 * call it to have the init segment before the first frame. Returns 0, or CH_EAGAIN when the
 * stream lacks a parameter set (or its SPS did not parse); m is unchanged then.
 */
int ch_codec_fmp4_write_init(ch_codec_fmp4_t *m, const ch_codec_stream_t *s) CH_MUST_CHECK;

/**
 * Muxes one access unit of the stream s as one fragment written to out[0, cap): moof (mfhd;
 * traf with tfhd default-base-is-moof, tfdt version 1, trun with data offset, duration, size
 * and flags, sync or not) then mdat with au->data. Call it for every unit the assembler hands
 * out, broken ones included (their timestamps keep the timeline). cap must be at least
 * CH_CODEC_FMP4_FRAGMENT_OVERHEAD + au->len. Returns the bytes written, or:
 *   CH_EAGAIN   nothing written, by design: the unit is broken, or not a keyframe while m
 *               waits for one (at the start, after a broken unit, after parameter sets
 *               changed, at a discontinuity), or a keyframe before the stream has its
 *               parameter sets;
 *   CH_ETOOBIG  cap is too small (nothing written, the unit counts as dropped).
 * When it returns bytes after rebuilding the init segment, m->init_serial has moved on.
 */
int ch_codec_fmp4_fragment(ch_codec_fmp4_t *m, const ch_codec_stream_t *s, const ch_codec_au_t *au,
                           uint8_t *out, size_t cap) CH_MUST_CHECK;

#endif /* CH_CODEC_H */
