/*
 * codec/sps.c: the H.264 and H.265 sequence parameter set readers and the codec strings.
 *
 * An SPS arrives once per keyframe at most and is parsed only when its bytes change, so this
 * file favours plain code over speed. The bit reader never fails in the middle of a read: a
 * read past the end yields zeros and sets a sticky error flag that the parser checks at the
 * points where a bad value could cost something (loop counts, sizes) and once at the end. That
 * keeps the field-by-field code a straight transcription of the specifications' syntax tables
 * (H.264 7.3.2.1.1, H.265 7.3.2.2 and 7.3.3).
 */
#include "codec/codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* An SPS longer than this is read only this far; every field the relay needs lies well
 * before it (the VUI, which can be long, comes after them). */
#define SCRATCH_MAX 512

typedef struct bits {
    const uint8_t *p;
    size_t nbits;
    size_t pos;
    int err; /* a read went past the end */
} bits_t;

/* Copies the NAL unit's payload (after hdr bytes of NAL header) into out without its
 * emulation prevention bytes: in 0x00 0x00 0x03 the 0x03 is dropped (H.264 7.4.1, H.265
 * 7.4.2). Returns the bytes written, at most cap. */
static size_t unescape(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned zeros = 0;
    for (size_t i = 0; i < len && n < cap; i++) {
        uint8_t b = in[i];
        if (zeros >= 2 && b == 0x03) {
            zeros = 0;
            continue;
        }
        zeros = b == 0 ? zeros + 1 : 0;
        out[n++] = b;
    }
    return n;
}

static unsigned read_bit(bits_t *b)
{
    if (b->pos >= b->nbits) {
        b->err = 1;
        return 0;
    }
    unsigned v = (b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1u;
    b->pos++;
    return v;
}

/* n <= 32 bits, most significant first. */
static uint32_t read_bits(bits_t *b, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v = (v << 1) | read_bit(b);
    }
    return v;
}

static void skip_bits(bits_t *b, size_t n)
{
    if (n > b->nbits - b->pos) {
        b->err = 1;
        b->pos = b->nbits;
        return;
    }
    b->pos += n;
}

/* ue(v), Exp-Golomb: up to 31 leading zeros (values up to 2^32 - 2); more is an error. */
static uint32_t read_ue(bits_t *b)
{
    unsigned zeros = 0;
    while (read_bit(b) == 0) {
        if (b->err || ++zeros > 31) {
            b->err = 1;
            return 0;
        }
    }
    if (zeros == 0) {
        return 0;
    }
    return ((1u << zeros) - 1u) + read_bits(b, zeros);
}

/* se(v): ue k maps to 0, 1, -1, 2, -2, ... */
static int64_t read_se(bits_t *b)
{
    uint32_t k = read_ue(b);
    return (k & 1u) ? (int64_t)(k / 2u) + 1 : -(int64_t)(k / 2u);
}

/* Skips an H.264 scaling_list() of size entries (7.3.2.1.1.1): only delta_scale is coded. */
static void skip_scaling_list(bits_t *b, unsigned size)
{
    int64_t last = 8, next = 8;
    for (unsigned j = 0; j < size && !b->err; j++) {
        if (next != 0) {
            int64_t delta = read_se(b);
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

/* The profiles whose SPS carries chroma_format_idc and the bit depths (7.3.2.1.1). */
static int h264_high_profile(unsigned p)
{
    switch (p) {
    case 100:
    case 110:
    case 122:
    case 244:
    case 44:
    case 83:
    case 86:
    case 118:
    case 128:
    case 138:
    case 139:
    case 134:
    case 135:
        return 1;
    default:
        return 0;
    }
}

int ch_codec_h264_sps_parse(const uint8_t *nal, size_t len, ch_codec_sps_t *out)
{
    uint8_t scratch[SCRATCH_MAX];
    if (len < 4 || (nal[0] & 0x1f) != 7) {
        return CH_EPARSE;
    }
    size_t n = unescape(nal + 1, len - 1, scratch, sizeof(scratch));
    bits_t b = {scratch, n * 8, 0, 0};
    ch_codec_sps_t s = {.kind = CH_CODEC_H264};

    s.profile_idc = (uint8_t)read_bits(&b, 8);
    s.constraints = (uint8_t)read_bits(&b, 8);
    s.level_idc = (uint8_t)read_bits(&b, 8);
    if (read_ue(&b) > 31) { /* seq_parameter_set_id */
        return CH_EPARSE;
    }
    uint32_t chroma = 1, separate_planes = 0, depth_luma = 0, depth_chroma = 0;
    if (h264_high_profile(s.profile_idc)) {
        chroma = read_ue(&b);
        if (chroma > 3) {
            return CH_EPARSE;
        }
        if (chroma == 3) {
            separate_planes = read_bit(&b);
        }
        depth_luma = read_ue(&b);
        depth_chroma = read_ue(&b);
        if (depth_luma > 6 || depth_chroma > 6) {
            return CH_EPARSE;
        }
        read_bit(&b);       /* qpprime_y_zero_transform_bypass_flag */
        if (read_bit(&b)) { /* seq_scaling_matrix_present_flag */
            unsigned lists = chroma != 3 ? 8 : 12;
            for (unsigned i = 0; i < lists; i++) {
                if (read_bit(&b)) {
                    skip_scaling_list(&b, i < 6 ? 16 : 64);
                }
            }
        }
    }
    s.chroma_format_idc = (uint8_t)chroma;
    s.bit_depth_luma = (uint8_t)(8 + depth_luma);
    s.bit_depth_chroma = (uint8_t)(8 + depth_chroma);

    if (read_ue(&b) > 12) { /* log2_max_frame_num_minus4 */
        return CH_EPARSE;
    }
    uint32_t poc_type = read_ue(&b);
    if (poc_type == 0) {
        if (read_ue(&b) > 12) { /* log2_max_pic_order_cnt_lsb_minus4 */
            return CH_EPARSE;
        }
    } else if (poc_type == 1) {
        read_bit(&b); /* delta_pic_order_always_zero_flag */
        read_se(&b);  /* offset_for_non_ref_pic */
        read_se(&b);  /* offset_for_top_to_bottom_field */
        uint32_t cycle = read_ue(&b);
        if (cycle > 255) {
            return CH_EPARSE;
        }
        for (uint32_t i = 0; i < cycle && !b.err; i++) {
            read_se(&b); /* offset_for_ref_frame[i] */
        }
    } else if (poc_type != 2) {
        return CH_EPARSE;
    }
    read_ue(&b);  /* max_num_ref_frames */
    read_bit(&b); /* gaps_in_frame_num_value_allowed_flag */
    uint32_t width_mbs = read_ue(&b) + 1u;
    uint32_t height_units = read_ue(&b) + 1u;
    s.frame_mbs_only = (uint8_t)read_bit(&b);
    if (!s.frame_mbs_only) {
        read_bit(&b); /* mb_adaptive_frame_field_flag */
    }
    read_bit(&b);                    /* direct_8x8_inference_flag */
    uint32_t crop[4] = {0, 0, 0, 0}; /* left, right, top, bottom */
    if (read_bit(&b)) {
        for (int i = 0; i < 4; i++) {
            crop[i] = read_ue(&b);
        }
    }
    if (b.err || width_mbs == 0 || height_units == 0 || width_mbs > CH_CODEC_MAX_DIM / 16 ||
        height_units > CH_CODEC_MAX_DIM / 32) {
        return CH_EPARSE;
    }
    /* Cropping is counted in chroma sample units (7.4.2.1.1, table 6-1), doubled vertically
     * for field coding; without chroma (monochrome, or 4:4:4 coded as separate planes) the
     * unit is one luma sample. */
    uint32_t field = 2u - s.frame_mbs_only;
    uint32_t unit_x = 1, unit_y = field;
    if (!separate_planes && chroma != 0) {
        unit_x = chroma == 3 ? 1 : 2;
        unit_y = (chroma == 1 ? 2 : 1) * field;
    }
    s.coded_width = width_mbs * 16;
    s.coded_height = height_units * 16 * field;
    uint64_t cut_x = (uint64_t)unit_x * ((uint64_t)crop[0] + crop[1]);
    uint64_t cut_y = (uint64_t)unit_y * ((uint64_t)crop[2] + crop[3]);
    if (cut_x >= s.coded_width || cut_y >= s.coded_height || s.coded_height > CH_CODEC_MAX_DIM) {
        return CH_EPARSE;
    }
    s.width = s.coded_width - (uint32_t)cut_x;
    s.height = s.coded_height - (uint32_t)cut_y;
    /* RFC 6381 3.3: avc1. and the three bytes after the NAL header, in hex. */
    snprintf(s.codec, sizeof(s.codec), "avc1.%02X%02X%02X", s.profile_idc, s.constraints,
             s.level_idc);
    *out = s;
    return 0;
}

/* Reads profile_tier_level(1, max_sub_layers_minus1) (H.265 7.3.3): the general part into s,
 * the sub-layer parts skipped. */
static void h265_profile_tier_level(bits_t *b, unsigned max_sub_layers_minus1, ch_codec_sps_t *s)
{
    s->profile_space = (uint8_t)read_bits(b, 2);
    s->tier = (uint8_t)read_bit(b);
    s->profile_idc = (uint8_t)read_bits(b, 5);
    /* flag[0] is coded first; the codec string wants flag[j] at bit j. */
    uint32_t coded = read_bits(b, 32);
    uint32_t compat = 0;
    for (unsigned j = 0; j < 32; j++) {
        compat |= ((coded >> (31 - j)) & 1u) << j;
    }
    s->compat = compat;
    for (int i = 0; i < 6; i++) {
        s->constraint_ptl[i] = (uint8_t)read_bits(b, 8);
    }
    s->level_idc = (uint8_t)read_bits(b, 8);

    unsigned profile_present[8] = {0}, level_present[8] = {0};
    for (unsigned i = 0; i < max_sub_layers_minus1; i++) {
        profile_present[i] = read_bit(b);
        level_present[i] = read_bit(b);
    }
    if (max_sub_layers_minus1 > 0) {
        skip_bits(b, 2 * (8 - max_sub_layers_minus1)); /* reserved_zero_2bits */
    }
    for (unsigned i = 0; i < max_sub_layers_minus1; i++) {
        skip_bits(b, (profile_present[i] ? 88 : 0) + (level_present[i] ? 8 : 0));
    }
}

/* Appends to the hvc1 string at *pos; keeps *pos within cap (vsnprintf truncates). */
static void put(char *buf, size_t cap, size_t *pos, const char *fmt, ...) CH_PRINTF(4, 5);
static void put(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    if (*pos >= cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n > 0) {
        *pos += (size_t)n;
    }
}

/* ISO/IEC 14496-15 annex E.3: hvc1.[A-C]profile.compat.{L,H}level{.constraint byte}, the
 * compatibility flags bit-reversed in hex, the trailing zero constraint bytes left out. */
static void h265_codec_string(ch_codec_sps_t *s)
{
    size_t pos = 0;
    char *buf = s->codec;
    size_t cap = sizeof(s->codec);
    put(buf, cap, &pos, "hvc1.");
    if (s->profile_space > 0) {
        put(buf, cap, &pos, "%c", 'A' + s->profile_space - 1);
    }
    put(buf, cap, &pos, "%u", (unsigned)s->profile_idc);
    put(buf, cap, &pos, ".%X", s->compat);
    put(buf, cap, &pos, ".%c%u", s->tier ? 'H' : 'L', (unsigned)s->level_idc);
    int last = 5;
    while (last >= 0 && s->constraint_ptl[last] == 0) {
        last--;
    }
    for (int i = 0; i <= last; i++) {
        put(buf, cap, &pos, ".%X", (unsigned)s->constraint_ptl[i]);
    }
}

int ch_codec_h265_sps_parse(const uint8_t *nal, size_t len, ch_codec_sps_t *out)
{
    uint8_t scratch[SCRATCH_MAX];
    if (len < 3 || ((nal[0] >> 1) & 0x3f) != 33) {
        return CH_EPARSE;
    }
    size_t n = unescape(nal + 2, len - 2, scratch, sizeof(scratch));
    bits_t b = {scratch, n * 8, 0, 0};
    ch_codec_sps_t s = {.kind = CH_CODEC_H265};

    read_bits(&b, 4); /* sps_video_parameter_set_id */
    unsigned max_sub_layers_minus1 = read_bits(&b, 3);
    if (max_sub_layers_minus1 > 6) {
        return CH_EPARSE;
    }
    read_bit(&b); /* sps_temporal_id_nesting_flag */
    h265_profile_tier_level(&b, max_sub_layers_minus1, &s);
    if (read_ue(&b) > 15) { /* sps_seq_parameter_set_id */
        return CH_EPARSE;
    }
    uint32_t chroma = read_ue(&b);
    if (chroma > 3) {
        return CH_EPARSE;
    }
    unsigned separate_planes = chroma == 3 ? read_bit(&b) : 0;
    s.chroma_format_idc = (uint8_t)chroma;
    s.coded_width = read_ue(&b);
    s.coded_height = read_ue(&b);
    uint32_t win[4] = {0, 0, 0, 0}; /* left, right, top, bottom */
    if (read_bit(&b)) {             /* conformance_window_flag */
        for (int i = 0; i < 4; i++) {
            win[i] = read_ue(&b);
        }
    }
    uint32_t depth_luma = read_ue(&b);
    uint32_t depth_chroma = read_ue(&b);
    if (b.err || s.coded_width == 0 || s.coded_height == 0 || s.coded_width > CH_CODEC_MAX_DIM ||
        s.coded_height > CH_CODEC_MAX_DIM || depth_luma > 8 || depth_chroma > 8) {
        return CH_EPARSE;
    }
    s.bit_depth_luma = (uint8_t)(8 + depth_luma);
    s.bit_depth_chroma = (uint8_t)(8 + depth_chroma);
    /* The window is counted in chroma sample units (7.4.3.2.1, table 6-1). */
    uint32_t unit_x = 1, unit_y = 1;
    if (!separate_planes && chroma != 0) {
        unit_x = chroma == 3 ? 1 : 2;
        unit_y = chroma == 1 ? 2 : 1;
    }
    uint64_t cut_x = (uint64_t)unit_x * ((uint64_t)win[0] + win[1]);
    uint64_t cut_y = (uint64_t)unit_y * ((uint64_t)win[2] + win[3]);
    if (cut_x >= s.coded_width || cut_y >= s.coded_height) {
        return CH_EPARSE;
    }
    s.width = s.coded_width - (uint32_t)cut_x;
    s.height = s.coded_height - (uint32_t)cut_y;
    h265_codec_string(&s);
    *out = s;
    return 0;
}
