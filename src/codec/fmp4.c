/*
 * codec/fmp4.c: the fragmented-MP4 muxer of codec.h (ISO/IEC 14496-12 boxes, 14496-15 sample
 * entries avc1/avcC and hvc1/hvcC), written for Media Source Extensions: one init segment,
 * then one moof + mdat per access unit.
 *
 * Boxes are written front to back with a small writer that leaves each box's size to be
 * filled in when the box ends, so no size is computed twice by hand. A fragment is the same
 * 100 bytes of moof each time but for four fields (sequence number, decode time, duration,
 * flags) and the sample size, then the unit's bytes: its cost is one memcpy of the unit.
 */
#include "codec/codec.h"

#include <assert.h>
#include <string.h>

/* sample_flags (14496-12 8.8.3.1): a sync sample depends on no other (sample_depends_on 2);
 * another depends on others (1) and is a non-sync sample. */
#define SAMPLE_SYNC     0x02000000u
#define SAMPLE_NON_SYNC 0x01010000u

/* A timestamp step above this (10 s), or a step backwards, is a jump of the camera's clock
 * rather than time passing: the timeline then moves on by one last duration instead. */
#define MAX_STEP (10u * CH_CODEC_FMP4_TIMESCALE)

typedef struct writer {
    uint8_t *p;
    size_t len;
    size_t cap;
    int over; /* a write did not fit: everything after is dropped, the result refused */
} writer_t;

static void put(writer_t *w, const void *src, size_t n)
{
    if (w->over || n > w->cap - w->len) {
        w->over = 1;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put8(writer_t *w, uint32_t v)
{
    uint8_t b = (uint8_t)v;
    put(w, &b, 1);
}

static void put16(writer_t *w, uint32_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put32(writer_t *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

static void put64(writer_t *w, uint64_t v)
{
    put32(w, (uint32_t)(v >> 32));
    put32(w, (uint32_t)v);
}

static void zeros(writer_t *w, size_t n)
{
    static const uint8_t z[32];
    while (n > 0) {
        size_t k = n < sizeof(z) ? n : sizeof(z);
        put(w, z, k);
        n -= k;
    }
}

/* Opens a box: its size is written by box_end. Returns where the box starts. */
static size_t box(writer_t *w, const char type[4])
{
    size_t at = w->len;
    put32(w, 0);
    put(w, type, 4);
    return at;
}

/* A FullBox: version and 24 bits of flags after the type. */
static size_t full_box(writer_t *w, const char type[4], unsigned version, uint32_t flags)
{
    size_t at = box(w, type);
    put32(w, ((uint32_t)version << 24) | (flags & 0xffffffu));
    return at;
}

static void box_end(writer_t *w, size_t at)
{
    if (w->over) {
        return;
    }
    size_t n = w->len - at;
    w->p[at] = (uint8_t)(n >> 24);
    w->p[at + 1] = (uint8_t)(n >> 16);
    w->p[at + 2] = (uint8_t)(n >> 8);
    w->p[at + 3] = (uint8_t)n;
}

/* The unity transformation matrix of mvhd and tkhd (14496-12 8.2.2.3: 16.16 and 2.30 fixed
 * point). */
static void matrix(writer_t *w)
{
    static const uint32_t m[9] = {0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000};
    for (int i = 0; i < 9; i++) {
        put32(w, m[i]);
    }
}

static void ftyp(writer_t *w)
{
    /* iso5: moof-based fragments with default-base-is-moof and tfdt; iso6 adds nothing MSE
     * needs but is what browsers' own recorders write; mp41 for older players. */
    size_t at = box(w, "ftyp");
    put(w, "iso5", 4);
    put32(w, 0x200); /* minor_version */
    put(w, "iso5iso6mp41", 12);
    box_end(w, at);
}

static void mvhd(writer_t *w)
{
    size_t at = full_box(w, "mvhd", 0, 0);
    put32(w, 0);          /* creation_time */
    put32(w, 0);          /* modification_time */
    put32(w, 1000);       /* timescale: the movie's own, unused by fragments */
    put32(w, 0);          /* duration: unknown (live) */
    put32(w, 0x00010000); /* rate 1.0 */
    put16(w, 0x0100);     /* volume 1.0 */
    zeros(w, 10);         /* reserved */
    matrix(w);
    zeros(w, 24); /* pre_defined */
    put32(w, 2);  /* next_track_ID */
    box_end(w, at);
}

static void tkhd(writer_t *w, uint32_t width, uint32_t height)
{
    size_t at = full_box(w, "tkhd", 0, 0x3); /* track_enabled | track_in_movie */
    put32(w, 0);                             /* creation_time */
    put32(w, 0);                             /* modification_time */
    put32(w, 1);                             /* track_ID */
    put32(w, 0);                             /* reserved */
    put32(w, 0);                             /* duration */
    zeros(w, 8);                             /* reserved */
    put16(w, 0);                             /* layer */
    put16(w, 0);                             /* alternate_group */
    put16(w, 0);                             /* volume: 0 for video */
    put16(w, 0);                             /* reserved */
    matrix(w);
    put32(w, width << 16); /* 16.16 fixed point */
    put32(w, height << 16);
    box_end(w, at);
}

static void mdhd(writer_t *w)
{
    size_t at = full_box(w, "mdhd", 0, 0);
    put32(w, 0); /* creation_time */
    put32(w, 0); /* modification_time */
    put32(w, CH_CODEC_FMP4_TIMESCALE);
    put32(w, 0);      /* duration */
    put16(w, 0x55c4); /* language "und": three 5-bit letters minus 0x60 */
    put16(w, 0);      /* pre_defined */
    box_end(w, at);
}

static void hdlr(writer_t *w)
{
    size_t at = full_box(w, "hdlr", 0, 0);
    put32(w, 0); /* pre_defined */
    put(w, "vide", 4);
    zeros(w, 12);               /* reserved */
    put(w, "VideoHandler", 13); /* name, NUL included */
    box_end(w, at);
}

static void dinf(writer_t *w)
{
    size_t at = box(w, "dinf");
    size_t dref = full_box(w, "dref", 0, 0);
    put32(w, 1);                              /* entry_count */
    size_t url = full_box(w, "url ", 0, 0x1); /* flag 1: the media is in this file */
    box_end(w, url);
    box_end(w, dref);
    box_end(w, at);
}

/* AVCDecoderConfigurationRecord (14496-15 5.3.3.1): one SPS, one PPS, 4-byte lengths. */
static void avcc(writer_t *w, const ch_codec_stream_t *s)
{
    const ch_codec_sps_t *i = &s->sps_info;
    size_t at = box(w, "avcC");
    put8(w, 1);              /* configurationVersion */
    put8(w, s->sps.data[1]); /* AVCProfileIndication */
    put8(w, s->sps.data[2]); /* profile_compatibility */
    put8(w, s->sps.data[3]); /* AVCLevelIndication */
    put8(w, 0xfc | 3);       /* reserved 111111, lengthSizeMinusOne 3 */
    put8(w, 0xe0 | 1);       /* reserved 111, numOfSequenceParameterSets */
    put16(w, s->sps.len);
    put(w, s->sps.data, s->sps.len);
    put8(w, 1); /* numOfPictureParameterSets */
    put16(w, s->pps.len);
    put(w, s->pps.data, s->pps.len);
    /* The profiles that code chroma format and bit depths carry them here too. */
    unsigned p = i->profile_idc;
    if (p == 100 || p == 110 || p == 122 || p == 144) {
        put8(w, 0xfc | i->chroma_format_idc);
        put8(w, 0xf8 | (unsigned)(i->bit_depth_luma - 8));
        put8(w, 0xf8 | (unsigned)(i->bit_depth_chroma - 8));
        put8(w, 0); /* numOfSequenceParameterSetExt */
    }
    box_end(w, at);
}

/* One array of an HEVCDecoderConfigurationRecord: one parameter set, complete (hvc1 keeps
 * every parameter set in the sample entry). */
static void hvcc_array(writer_t *w, unsigned type, const ch_codec_param_t *ps)
{
    put8(w, 0x80 | type); /* array_completeness 1, reserved 0, NAL_unit_type */
    put16(w, 1);          /* numNalus */
    put16(w, ps->len);
    put(w, ps->data, ps->len);
}

/* HEVCDecoderConfigurationRecord (14496-15 8.3.3.1): the general profile, tier and level as
 * the SPS reader found them, then the VPS, SPS and PPS. Fields this reader does not learn
 * (min_spatial_segmentation_idc, parallelismType, avgFrameRate, constantFrameRate) are 0,
 * which the format defines as "unknown". */
static void hvcc(writer_t *w, const ch_codec_stream_t *s)
{
    const ch_codec_sps_t *i = &s->sps_info;
    size_t at = box(w, "hvcC");
    put8(w, 1); /* configurationVersion */
    put8(w, ((unsigned)i->profile_space << 6) | ((unsigned)i->tier << 5) | i->profile_idc);
    /* The reader keeps flag j at bit j; the record has flag 0 first, as coded. */
    uint32_t compat = 0;
    for (unsigned j = 0; j < 32; j++) {
        compat |= ((i->compat >> j) & 1u) << (31 - j);
    }
    put32(w, compat);
    put(w, i->constraint_ptl, 6);
    put8(w, i->level_idc);
    put16(w, 0xf000); /* reserved 1111, min_spatial_segmentation_idc 0 */
    put8(w, 0xfc);    /* reserved 111111, parallelismType 0 */
    put8(w, 0xfc | i->chroma_format_idc);
    put8(w, 0xf8 | (unsigned)(i->bit_depth_luma - 8));
    put8(w, 0xf8 | (unsigned)(i->bit_depth_chroma - 8));
    put16(w, 0); /* avgFrameRate */
    /* The SPS's first byte after its NAL header: sps_video_parameter_set_id (4 bits),
     * sps_max_sub_layers_minus1 (3), sps_temporal_id_nesting_flag (1). No emulation
     * prevention byte can come before it. */
    unsigned b = s->sps.data[2];
    unsigned layers = ((b >> 1) & 7u) + 1u, nested = b & 1u;
    put8(w, (layers << 3) | (nested << 2) | 3); /* constantFrameRate 0, lengthSizeMinusOne 3 */
    put8(w, 3);                                 /* numOfArrays */
    hvcc_array(w, 32, &s->vps);
    hvcc_array(w, 33, &s->sps);
    hvcc_array(w, 34, &s->pps);
    box_end(w, at);
}

/* VisualSampleEntry (14496-12 12.1.3) avc1 or hvc1 with its configuration box. */
static void sample_entry(writer_t *w, const ch_codec_stream_t *s)
{
    int h264 = s->kind == CH_CODEC_H264;
    size_t at = box(w, h264 ? "avc1" : "hvc1");
    zeros(w, 6);  /* reserved */
    put16(w, 1);  /* data_reference_index */
    zeros(w, 16); /* pre_defined, reserved, pre_defined[3] */
    put16(w, s->sps_info.width);
    put16(w, s->sps_info.height);
    put32(w, 0x00480000); /* horizresolution 72 dpi */
    put32(w, 0x00480000); /* vertresolution */
    put32(w, 0);          /* reserved */
    put16(w, 1);          /* frame_count */
    zeros(w, 32);         /* compressorname: empty */
    put16(w, 0x0018);     /* depth: colour without alpha */
    put16(w, 0xffff);     /* pre_defined -1 */
    if (h264) {
        avcc(w, s);
    } else {
        hvcc(w, s);
    }
    box_end(w, at);
}

static void stbl(writer_t *w, const ch_codec_stream_t *s)
{
    size_t at = box(w, "stbl");
    size_t stsd = full_box(w, "stsd", 0, 0);
    put32(w, 1); /* entry_count */
    sample_entry(w, s);
    box_end(w, stsd);
    /* No samples in the moov: they are all in fragments. */
    size_t b = full_box(w, "stts", 0, 0);
    put32(w, 0);
    box_end(w, b);
    b = full_box(w, "stsc", 0, 0);
    put32(w, 0);
    box_end(w, b);
    b = full_box(w, "stsz", 0, 0);
    put32(w, 0); /* sample_size */
    put32(w, 0); /* sample_count */
    box_end(w, b);
    b = full_box(w, "stco", 0, 0);
    put32(w, 0);
    box_end(w, b);
    box_end(w, at);
}

static void mvex(writer_t *w)
{
    size_t at = box(w, "mvex");
    size_t trex = full_box(w, "trex", 0, 0);
    put32(w, 1); /* track_ID */
    put32(w, 1); /* default_sample_description_index */
    put32(w, 0); /* default_sample_duration */
    put32(w, 0); /* default_sample_size */
    put32(w, 0); /* default_sample_flags */
    box_end(w, trex);
    box_end(w, at);
}

void ch_codec_fmp4_reset(ch_codec_fmp4_t *m)
{
    memset(m, 0, sizeof(*m));
    m->need_key = 1;
    m->duration = CH_CODEC_FMP4_FIRST_DURATION;
}

int ch_codec_fmp4_write_init(ch_codec_fmp4_t *m, const ch_codec_stream_t *s)
{
    int h264 = s->kind == CH_CODEC_H264;
    /* The SPS bytes read directly (avcC's three bytes, hvcC's sub-layer byte) must exist:
     * an SPS that parsed is at least that long. */
    if (!s->sps_valid || s->sps.len < (h264 ? 4 : 3) || s->pps.len == 0 ||
        (!h264 && s->vps.len == 0)) {
        return CH_EAGAIN;
    }
    uint8_t tmp[CH_CODEC_FMP4_INIT_MAX];
    writer_t w = {tmp, 0, sizeof(tmp), 0};
    ftyp(&w);
    size_t moov = box(&w, "moov");
    mvhd(&w);
    size_t trak = box(&w, "trak");
    tkhd(&w, s->sps_info.width, s->sps_info.height);
    size_t mdia = box(&w, "mdia");
    mdhd(&w);
    hdlr(&w);
    size_t minf = box(&w, "minf");
    size_t vmhd = full_box(&w, "vmhd", 0, 0x1);
    put16(&w, 0); /* graphicsmode: copy */
    zeros(&w, 6); /* opcolor */
    box_end(&w, vmhd);
    dinf(&w);
    stbl(&w, s);
    box_end(&w, minf);
    box_end(&w, mdia);
    box_end(&w, trak);
    mvex(&w);
    box_end(&w, moov);
    /* Three parameter sets of CH_CODEC_PARAM_MAX bytes and the fixed boxes fit. */
    assert(!w.over);
    if (w.over) {
        return CH_ETOOBIG;
    }
    /* Viewers are sent an init segment again only when its bytes change. */
    if (w.len != m->init_len || memcmp(m->init, tmp, w.len) != 0) {
        memcpy(m->init, tmp, w.len);
        m->init_len = w.len;
        m->init_serial++;
    }
    m->params_version = s->params_version;
    m->width = s->sps_info.width;
    m->height = s->sps_info.height;
    memcpy(m->codec, s->sps_info.codec, sizeof(m->codec));
    return 0;
}

/* Moves the timeline on to the unit's timestamp: the step since the last unit, taken as a
 * signed 32-bit difference so that the timestamp's wrap is a step like any other. */
static void advance(ch_codec_fmp4_t *m, uint32_t ts)
{
    int32_t step = (int32_t)(ts - m->last_ts);
    if (step > 0 && (uint32_t)step <= MAX_STEP) {
        m->dts += (uint32_t)step;
        m->duration = (uint32_t)step;
    } else {
        m->dts += m->duration; /* a clock jump, or a repeated timestamp: keep time moving */
    }
    m->last_ts = ts;
}

int ch_codec_fmp4_fragment(ch_codec_fmp4_t *m, const ch_codec_stream_t *s, const ch_codec_au_t *au,
                           uint8_t *out, size_t cap)
{
    if (m->timing) {
        advance(m, au->timestamp);
    }
    int key = (au->flags & CH_CODEC_AU_KEYFRAME) != 0;
    if (au->flags & CH_CODEC_AU_BROKEN) {
        m->need_key = 1;
        m->dropped++;
        return CH_EAGAIN;
    }
    if (s->params_version != m->params_version || (au->flags & CH_CODEC_AU_DISCONTINUITY)) {
        /* New parameter sets (frames after them need the new init segment, which is sent
         * before a keyframe), or units before this one are missing. */
        m->need_key = 1;
    }
    if (m->need_key && !key) {
        m->dropped++;
        return CH_EAGAIN;
    }
    if (key && ch_codec_fmp4_write_init(m, s) != 0) {
        /* At every keyframe, so that the init segment always matches the parameter sets,
         * even when params_version, started over by ch_codec_stream_init after a reconnect,
         * happens to come back to the same number: once a GOP, about a microsecond. */
        m->need_key = 1;
        m->dropped++;
        return CH_EAGAIN;
    }
    if (cap < CH_CODEC_FMP4_FRAGMENT_OVERHEAD || au->len > cap - CH_CODEC_FMP4_FRAGMENT_OVERHEAD) {
        m->dropped++;
        m->need_key = 1; /* the frames after it would miss their reference */
        return CH_ETOOBIG;
    }
    if (!m->timing) {
        m->timing = 1;
        m->dts = 0;
        m->last_ts = au->timestamp;
    }
    m->need_key = 0;
    m->sequence++;

    writer_t w = {out, 0, cap, 0};
    size_t moof = box(&w, "moof");
    size_t mfhd = full_box(&w, "mfhd", 0, 0);
    put32(&w, m->sequence);
    box_end(&w, mfhd);
    size_t traf = box(&w, "traf");
    size_t tfhd = full_box(&w, "tfhd", 0, 0x020000); /* default-base-is-moof */
    put32(&w, 1);                                    /* track_ID */
    box_end(&w, tfhd);
    size_t tfdt = full_box(&w, "tfdt", 1, 0); /* version 1: 64-bit decode time */
    put64(&w, m->dts);
    box_end(&w, tfdt);
    /* data-offset, sample-duration, sample-size and sample-flags present. */
    size_t trun = full_box(&w, "trun", 0, 0x000001 | 0x000100 | 0x000200 | 0x000400);
    put32(&w, 1);                               /* sample_count */
    put32(&w, CH_CODEC_FMP4_FRAGMENT_OVERHEAD); /* data_offset: from the moof to the data */
    put32(&w, m->duration);
    put32(&w, (uint32_t)au->len);
    put32(&w, key ? SAMPLE_SYNC : SAMPLE_NON_SYNC);
    box_end(&w, trun);
    box_end(&w, traf);
    box_end(&w, moof);
    put32(&w, (uint32_t)(8 + au->len));
    put(&w, "mdat", 4);
    assert(!w.over && w.len == CH_CODEC_FMP4_FRAGMENT_OVERHEAD);
    put(&w, au->data, au->len);
    return (int)w.len;
}
