/*
 * codec/au.c: the access-unit assembler of codec.h. RTP packets of one H.264 (RFC 6184,
 * packetization modes 0 and 1) or H.265 (RFC 7798) stream in, whole access units out, each a
 * run of length-prefixed NAL units as an MP4 sample holds them.
 *
 * The packet first goes to the stream's depacketizer (stream.c), which finds the access-unit
 * borders, captures the parameter sets and validates the payload; this file then walks the
 * same payload a second time to copy the NAL units out. Walking twice costs a few header
 * bytes per packet, and keeps stream.c the zero-copy inspection the RTSP fan-out uses alone.
 *
 * Copies: a NAL unit's bytes are copied once, from the packet into the unit's buffer, with
 * room for its 4-byte length left in front; a fragmented unit (FU-A, FU) is appended fragment
 * by fragment and its length written when its end arrives. Nothing else is copied, and the
 * buffers are reused, so a warm assembler allocates nothing.
 */
#include "codec/codec.h"
#include "codec/nal.h"

#include <assert.h>
#include <string.h>

/* The first size a buffer gets: a P-frame of a 4 Mbit/s camera fits, so most streams grow
 * their buffers once or twice (at their first keyframes) and never again. */
#define AU_FIRST_CAP (64u * 1024u)

/* Set in a buffer's au.flags while it is being built: data went over CH_CODEC_AU_MAX and
 * further units are dropped. Cleared before the unit is handed out. */
#define AU_OVER 0x80000000u

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void ch_codec_assembler_init(ch_codec_assembler_t *a, ch_codec_stream_t *s)
{
    memset(a, 0, sizeof(*a));
    a->stream = s;
    a->fu_type = -1;
}

void ch_codec_assembler_fini(ch_codec_assembler_t *a)
{
    for (int i = 0; i < 2; i++) {
        ch_free(a->buf[i].data);
        a->buf[i].data = NULL;
        a->buf[i].cap = 0;
        a->buf[i].len = 0;
    }
    a->open = 0;
    a->ready_count = 0;
    a->ready_next = 0;
}

void ch_codec_assembler_reset(ch_codec_assembler_t *a)
{
    a->open = 0;
    a->ready_count = 0;
    a->ready_next = 0;
    a->carry_broken = 0;
    a->fu_type = -1;
    a->discontinuity = 1;
}

static int is_h264(const ch_codec_assembler_t *a)
{
    return a->stream->kind == CH_CODEC_H264;
}

/* Makes room for n more bytes in b, or marks the unit over its limit and returns 0. The
 * buffer doubles, so a unit of size S costs at most log2(S / 64 KiB) reallocations, once. */
static int room(ch_codec_au_buf_t *b, size_t n)
{
    if (b->au.flags & AU_OVER) {
        return 0;
    }
    if (n > CH_CODEC_AU_MAX - b->len) {
        b->au.flags |= AU_OVER | CH_CODEC_AU_BROKEN;
        return 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : AU_FIRST_CAP;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->data = ch_realloc(b->data, cap);
        b->cap = cap;
    }
    return 1;
}

/* Drops the fragmented unit in progress, if any: its bytes are taken out of the buffer (the
 * unit is cut, so the access unit is broken). */
static void fu_cut(ch_codec_assembler_t *a, ch_codec_au_buf_t *b)
{
    if (a->fu_type < 0) {
        return;
    }
    b->len = a->fu_off;
    b->au.flags |= CH_CODEC_AU_BROKEN;
    a->fu_type = -1;
}

/* Appends one whole NAL unit, made of hdr[0, hdr_len) then body[0, body_len) (an H.265 unit
 * with DONL has its two header bytes apart from its body). Parameter sets are not kept: the
 * stream holds them. */
static void whole_nal(ch_codec_assembler_t *a, ch_codec_au_buf_t *b, const uint8_t *hdr,
                      size_t hdr_len, const uint8_t *body, size_t body_len)
{
    unsigned type = is_h264(a) ? hdr[0] & 0x1fu : (hdr[0] >> 1) & 0x3fu;
    b->au.nal_types |= BIT(type);
    if (BIT(type) & (is_h264(a) ? H264_PARAMS : H265_PARAMS)) {
        return;
    }
    size_t n = hdr_len + body_len;
    if (!room(b, 4 + n)) {
        return;
    }
    put_be32(b->data + b->len, (uint32_t)n);
    memcpy(b->data + b->len + 4, hdr, hdr_len);
    if (body_len > 0) {
        memcpy(b->data + b->len + 4 + hdr_len, body, body_len);
    }
    b->len += 4 + n;
    b->au.nal_count++;
}

/* One fragment of a NAL unit of the given type: hdr is the unit's rebuilt NAL header (used
 * at the start), data the fragment's bytes. Fragmented parameter sets are put back together
 * by the stream; here they are followed only to keep the fragment state right. */
static void fragment(ch_codec_assembler_t *a, ch_codec_au_buf_t *b, int start, int end,
                     unsigned type, const uint8_t *hdr, size_t hdr_len, const uint8_t *data,
                     size_t len)
{
    int param = (BIT(type) & (is_h264(a) ? H264_PARAMS : H265_PARAMS)) != 0;
    b->au.nal_types |= BIT(type);
    if (start) {
        fu_cut(a, b); /* a unit started while another was open: the other lost its end */
        a->fu_type = (int)type;
        a->fu_off = b->len;
        if (!param && room(b, 4 + hdr_len)) {
            memcpy(b->data + b->len + 4, hdr, hdr_len);
            b->len += 4 + hdr_len;
        }
    } else if (a->fu_type != (int)type) {
        /* A middle or end without its start (lost, or in the previous unit). */
        fu_cut(a, b);
        b->au.flags |= CH_CODEC_AU_BROKEN;
        return;
    }
    if (!param && len > 0) {
        if (room(b, len)) {
            memcpy(b->data + b->len, data, len);
            b->len += len;
        } else {
            b->len = a->fu_off; /* over the limit: the unit is dropped whole */
        }
    }
    if (end) {
        if (!param && !(b->au.flags & AU_OVER)) {
            put_be32(b->data + a->fu_off, (uint32_t)(b->len - a->fu_off - 4));
            b->au.nal_count++;
        }
        a->fu_type = -1;
    }
}

/* The units of an aggregation packet (STAP-A, AP) from p[off] on; the stream has already
 * checked every size, so this walk only copies. DON fields come first when donl (2 bytes
 * before the first unit, 1 before the others). */
static void aggregation(ch_codec_assembler_t *a, ch_codec_au_buf_t *b, const uint8_t *p, size_t n,
                        size_t off, int donl)
{
    fu_cut(a, b);
    for (size_t i = off, k = 0; i < n; k++) {
        i += donl ? (k == 0 ? 2 : 1) : 0;
        size_t size = be16(p + i);
        i += 2;
        assert(size <= n - i);
        whole_nal(a, b, p + i, size, NULL, 0);
        i += size;
    }
}

/* Copies the NAL units of one payload the stream accepted (its checks are not repeated:
 * stream.c refuses, with CH_EPARSE, every payload this walk could misread). */
static void walk(ch_codec_assembler_t *a, ch_codec_au_buf_t *b, const uint8_t *p, size_t n)
{
    if (is_h264(a)) {
        unsigned type = p[0] & 0x1fu;
        if (type == H264_STAP_A) {
            aggregation(a, b, p, n, 1, 0);
        } else if (type == H264_FU_A) {
            uint8_t hdr = (uint8_t)((p[0] & 0xe0) | (p[1] & 0x1f));
            fragment(a, b, p[1] >> 7, (p[1] >> 6) & 1, p[1] & 0x1fu, &hdr, 1, p + 2, n - 2);
        } else {
            fu_cut(a, b);
            whole_nal(a, b, p, n, NULL, 0);
        }
        return;
    }
    unsigned type = (p[0] >> 1) & 0x3fu;
    int donl = a->stream->donl;
    if (type == H265_AP) {
        aggregation(a, b, p, n, 2, donl);
    } else if (type == H265_FU) {
        unsigned start = p[2] >> 7, inner = p[2] & 0x3fu;
        size_t off = 3 + (start && donl ? 2 : 0);
        uint8_t hdr[2] = {(uint8_t)((p[0] & 0x81) | (inner << 1)), p[1]};
        fragment(a, b, (int)start, (p[2] >> 6) & 1, inner, hdr, 2, p + off, n - off);
    } else {
        fu_cut(a, b);
        size_t skip = donl ? 2 : 0;
        whole_nal(a, b, p, 2, p + 2 + skip, n - 2 - skip);
    }
}

/* Ends the unit being built and queues it for ch_codec_assembler_next(), unless it holds no
 * NAL unit (parameter sets only, or nothing left of it). */
static void close_unit(ch_codec_assembler_t *a)
{
    if (!a->open) {
        return;
    }
    ch_codec_au_buf_t *b = &a->buf[a->building];
    fu_cut(a, b);
    a->open = 0;
    b->au.flags &= ~AU_OVER;
    if (b->au.nal_types & (is_h264(a) ? H264_KEY : H265_KEY)) {
        b->au.flags |= CH_CODEC_AU_KEYFRAME;
    }
    if (b->au.nal_count == 0) {
        /* What was lost may have been this unit's slices, or the next unit's head; and
         * parameter sets it brought are reported with the next unit handed out. */
        a->carry_broken |= (b->au.flags & CH_CODEC_AU_BROKEN) != 0;
        return;
    }
    if (a->stream->params_version != a->params_seen) {
        b->au.flags |= CH_CODEC_AU_PARAMS;
        a->params_seen = a->stream->params_version;
    }
    if (a->discontinuity) {
        b->au.flags |= CH_CODEC_AU_DISCONTINUITY;
        a->discontinuity = 0;
    }
    b->au.data = b->data;
    b->au.len = b->len;
    assert(a->ready_count < 2);
    a->ready[a->ready_count++] = (uint8_t)a->building;
}

static void open_unit(ch_codec_assembler_t *a, uint32_t timestamp)
{
    /* The other buffer only when this one holds a unit closed by this very call (a new
     * timestamp without a marker before it). With markers, units are released at the next
     * call, before it builds: one buffer then serves every unit and stays in the cache. */
    if (a->ready_count > 0 && a->ready[a->ready_count - 1] == a->building) {
        a->building ^= 1u;
    }
    ch_codec_au_buf_t *b = &a->buf[a->building];
    b->len = 0;
    memset(&b->au, 0, sizeof(b->au));
    b->au.timestamp = timestamp;
    if (a->carry_broken) {
        b->au.flags |= CH_CODEC_AU_BROKEN;
        a->carry_broken = 0;
    }
    a->fu_type = -1;
    a->open = 1;
}

int ch_codec_assembler_push(ch_codec_assembler_t *a, const ch_codec_rtp_t *rtp,
                            ch_codec_pkt_t *info)
{
    /* Units handed out by the previous call are released: their buffers may be reused. */
    a->ready_count = 0;
    a->ready_next = 0;
    int rc = ch_codec_stream_push(a->stream, rtp, info);
    uint32_t f = info->flags;
    int gap = (f & CH_CODEC_PKT_GAP) != 0;

    if (a->open && (f & CH_CODEC_PKT_AU_START)) {
        /* A new timestamp without a marker before it: the previous unit ends here. If
         * packets were lost just before, its marker (and maybe its tail) may be among them. */
        if (gap) {
            a->buf[a->building].au.flags |= CH_CODEC_AU_BROKEN;
        }
        close_unit(a);
    }
    if (!a->open) {
        open_unit(a, rtp->timestamp);
    }
    ch_codec_au_buf_t *b = &a->buf[a->building];
    if (gap) {
        fu_cut(a, b); /* the fragment in progress lost its middle or end */
        b->au.flags |= CH_CODEC_AU_BROKEN;
    }
    if (rc == 0) {
        walk(a, b, rtp->payload, rtp->payload_len);
    } else {
        fu_cut(a, b);
        b->au.flags |= CH_CODEC_AU_BROKEN; /* what the payload carried is lost */
    }
    if (rtp->marker) {
        b->au.flags |= CH_CODEC_AU_MARKER;
        close_unit(a);
    }
    return rc;
}

void ch_codec_assembler_flush(ch_codec_assembler_t *a)
{
    a->ready_count = 0;
    a->ready_next = 0;
    close_unit(a);
}

const ch_codec_au_t *ch_codec_assembler_next(ch_codec_assembler_t *a)
{
    if (a->ready_next >= a->ready_count) {
        return NULL;
    }
    return &a->buf[a->ready[a->ready_next++]].au;
}
