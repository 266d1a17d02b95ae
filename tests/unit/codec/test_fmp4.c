/*
 * Unit tests of codec/'s access-unit assembler (au.c) and fragmented-MP4 muxer (fmp4.c).
 *
 *  - The boxes, byte for byte: the expected init segments and fragments below are written out
 *    field by field from ISO/IEC 14496-12 (ftyp, moov, moof and their children) and 14496-15
 *    (avcC, hvcC), for parameter sets x264 and x265 made (320x240, High 1.3 and Main 2.0),
 *    not produced by the muxer and pasted back.
 *  - The assembler on hand-made packets: single units, STAP-A/AP, FU-A/FU with and without
 *    DONL, access units ended by the marker or by a new timestamp, and every way of losing
 *    data (a lost packet anywhere, a reordered one, a fragment cut at either end, a malformed
 *    payload, a unit over the size limit).
 *  - The assembler on real streams encoded at test time by Debian's ffmpeg (skipped with a
 *    message without it), packetized by the reference packetizer below at several MTUs: every
 *    access unit must come out with exactly the NAL units of the Annex B stream.
 *
 * The same program is the integration test's muxing tool (tests/integration/test_fmp4.py):
 *   test_fmp4 mux h264|h265 IN OUT [--mtu N] [--no-markers] [--no-aggregate] [--donl]
 *                                  [--lose-every N]
 * packetizes an Annex B file, pushes it through the assembler and the muxer and writes the
 * init segment and the fragments to OUT; it prints what it did as key=value pairs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec/codec.h"

/* ---- helpers ---------------------------------------------------------------------------- */

#define BE16(v) (uint8_t)((v) >> 8), (uint8_t)(v)
#define BE32(v)                                                                                    \
    (uint8_t)((uint32_t)(v) >> 24), (uint8_t)((v) >> 16), (uint8_t)((v) >> 8), (uint8_t)(v)
#define T(a, b, c, d) (uint8_t)(a), (uint8_t)(b), (uint8_t)(c), (uint8_t)(d)

static int in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (path == NULL) {
        return 0;
    }
    char buf[512];
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0) {
            return 1;
        }
        path += n + (end != NULL);
    }
    return 0;
}

static uint8_t *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
    }
    fclose(f);
    *len = b.len;
    return (uint8_t *)b.data;
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Shows where two byte strings first differ, then fails. */
static void assert_bytes(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
    size_t n = got_len < want_len ? got_len : want_len;
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fail_msg("byte %zu: got %02x, want %02x (lengths %zu and %zu)", i, got[i], want[i],
                     got_len, want_len);
        }
    }
    if (got_len != want_len) {
        fail_msg("lengths differ: got %zu, want %zu", got_len, want_len);
    }
}

/* ---- NAL units and access units of an Annex B stream -------------------------------------- */

typedef struct nal {
    const uint8_t *p;
    size_t len;
} nal_t;

typedef struct au_ref {
    size_t first; /* index of its first NAL unit */
    size_t count;
    int key;
} au_ref_t;

typedef struct clip {
    ch_codec_kind_t kind;
    uint8_t *data;
    size_t len;
    nal_t *nals;
    size_t nal_count;
    au_ref_t *aus;
    size_t au_count;
} clip_t;

static unsigned type_of(ch_codec_kind_t kind, const uint8_t *p)
{
    return kind == CH_CODEC_H264 ? p[0] & 0x1fu : (p[0] >> 1) & 0x3fu;
}

static int is_param(ch_codec_kind_t kind, unsigned t)
{
    return kind == CH_CODEC_H264 ? t == 7 || t == 8 : t >= 32 && t <= 34;
}

static int is_key(ch_codec_kind_t kind, unsigned t)
{
    return kind == CH_CODEC_H264 ? t == 5 : t >= 16 && t <= 21;
}

static int is_vcl(ch_codec_kind_t kind, unsigned t)
{
    return kind == CH_CODEC_H264 ? t >= 1 && t <= 5 : t <= 31;
}

/* Whether a NAL unit opens a new access unit once the current one has a picture (H.264
 * 7.4.1.2.3, H.265 7.4.2.4.4): the non-VCL units that may only come before a picture, or a
 * slice that is the first of its picture. */
static int opens_au(ch_codec_kind_t kind, const nal_t *n)
{
    unsigned t = type_of(kind, n->p);
    if (kind == CH_CODEC_H264) {
        if (t == 6 || t == 7 || t == 8 || t == 9 || (t >= 14 && t <= 18)) {
            return 1;
        }
        return t >= 1 && t <= 5 && n->len > 1 && (n->p[1] & 0x80); /* first_mb_in_slice 0 */
    }
    if (t == 32 || t == 33 || t == 34 || t == 35 || t == 39 || (t >= 41 && t <= 44) ||
        (t >= 48 && t <= 55)) {
        return 1;
    }
    return t <= 31 && n->len > 2 && (n->p[2] & 0x80); /* first_slice_segment_in_pic_flag */
}

static void split_clip(clip_t *c)
{
    size_t cap = 256;
    c->nals = ch_malloc(cap * sizeof(nal_t));
    c->nal_count = 0;
    size_t start = SIZE_MAX;
    for (size_t i = 0; i <= c->len; i++) {
        int sc = i + 3 <= c->len && c->data[i] == 0 && c->data[i + 1] == 0 && c->data[i + 2] == 1;
        if (!sc && i != c->len) {
            continue;
        }
        if (start != SIZE_MAX) {
            size_t end = i;
            while (end > start && c->data[end - 1] == 0) {
                end--; /* trailing_zero_8bits and the 4-byte start code's first zero */
            }
            if (end > start) {
                if (c->nal_count == cap) {
                    cap *= 2;
                    c->nals = ch_realloc(c->nals, cap * sizeof(nal_t));
                }
                c->nals[c->nal_count++] = (nal_t){c->data + start, end - start};
            }
        }
        start = i + 3;
        i += 2;
    }
    c->aus = ch_malloc((c->nal_count + 1) * sizeof(au_ref_t));
    c->au_count = 0;
    int has_vcl = 0;
    for (size_t i = 0; i < c->nal_count; i++) {
        unsigned t = type_of(c->kind, c->nals[i].p);
        if (c->au_count == 0 || (has_vcl && opens_au(c->kind, &c->nals[i]))) {
            c->aus[c->au_count++] = (au_ref_t){i, 0, 0};
            has_vcl = 0;
        }
        au_ref_t *a = &c->aus[c->au_count - 1];
        a->count++;
        a->key |= is_key(c->kind, t);
        has_vcl |= is_vcl(c->kind, t);
    }
}

static void clip_free(clip_t *c)
{
    ch_free(c->data);
    ch_free(c->nals);
    ch_free(c->aus);
    memset(c, 0, sizeof(*c));
}

/* ---- a reference packetizer --------------------------------------------------------------- */

typedef struct pkt {
    uint8_t *p;
    size_t len;
    size_t au; /* the access unit it carries */
} pkt_t;

typedef struct pkts {
    pkt_t *v;
    size_t n;
    size_t cap;
} pkts_t;

typedef struct popts {
    size_t mtu;    /* the largest payload */
    int aggregate; /* STAP-A/AP for runs of units that fit together */
    int markers;   /* the marker bit on each access unit's last packet */
    int donl;      /* H.265 DONL/DOND fields */
    uint16_t seq;  /* first sequence number */
    uint32_t ts;   /* first timestamp; 3600 per access unit (25 fps) */
} popts_t;

typedef struct pstate {
    const popts_t *o;
    ch_codec_kind_t kind;
    uint16_t seq;
    uint16_t don;
} pstate_t;

static void emit(pkts_t *ps, pstate_t *st, size_t au, uint32_t ts, const uint8_t *pay, size_t len)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 1024;
        ps->v = ch_realloc(ps->v, ps->cap * sizeof(pkt_t));
    }
    /* A heap block of exactly the packet's size, so ASan sees a read past its end. */
    uint8_t *b = ch_malloc(12 + len);
    b[0] = 0x80;
    b[1] = 96;
    b[2] = (uint8_t)(st->seq >> 8);
    b[3] = (uint8_t)st->seq;
    st->seq++;
    b[4] = (uint8_t)(ts >> 24);
    b[5] = (uint8_t)(ts >> 16);
    b[6] = (uint8_t)(ts >> 8);
    b[7] = (uint8_t)ts;
    b[8] = 0x12;
    b[9] = 0x34;
    b[10] = 0x56;
    b[11] = 0x78;
    memcpy(b + 12, pay, len);
    ps->v[ps->n++] = (pkt_t){b, 12 + len, au};
}

/* Packetizes one access unit's NAL units (RFC 6184 mode 1, RFC 7798). */
static void packetize_au(pkts_t *ps, pstate_t *st, size_t au, uint32_t ts, const nal_t *nals,
                         size_t count)
{
    const popts_t *o = st->o;
    int h264 = st->kind == CH_CODEC_H264;
    size_t hdr = h264 ? 1 : 2;
    size_t donl = !h264 && o->donl ? 2 : 0;
    size_t first_pkt = ps->n;
    uint8_t *pay = ch_malloc(o->mtu + 64);
    for (size_t i = 0; i < count;) {
        /* How many units from i fit into one aggregation packet. */
        size_t k = 0, size = hdr;
        while (o->aggregate && i + k < count) {
            size_t add = 2 + nals[i + k].len + (donl ? (k == 0 ? 2 : 1) : 0);
            if (size + add > o->mtu) {
                break;
            }
            size += add;
            k++;
        }
        if (k >= 2) {
            size_t n = 0;
            if (h264) {
                uint8_t nri = 0;
                for (size_t j = 0; j < k; j++) {
                    nri = (uint8_t)(nri | (nals[i + j].p[0] & 0x60));
                }
                pay[n++] = (uint8_t)(nri | 24);
            } else {
                uint8_t tid = 7;
                for (size_t j = 0; j < k; j++) {
                    tid = (uint8_t)((nals[i + j].p[1] & 7) < tid ? nals[i + j].p[1] & 7 : tid);
                }
                pay[n++] = 48 << 1;
                pay[n++] = tid;
            }
            for (size_t j = 0; j < k; j++) {
                if (donl) {
                    if (j == 0) {
                        pay[n++] = (uint8_t)(st->don >> 8);
                        pay[n++] = (uint8_t)st->don;
                    } else {
                        pay[n++] = 0; /* DOND: the next DON, minus one */
                    }
                    st->don++;
                }
                pay[n++] = (uint8_t)(nals[i + j].len >> 8);
                pay[n++] = (uint8_t)nals[i + j].len;
                memcpy(pay + n, nals[i + j].p, nals[i + j].len);
                n += nals[i + j].len;
            }
            emit(ps, st, au, ts, pay, n);
            i += k;
            continue;
        }
        const nal_t *u = &nals[i];
        if (u->len + donl <= o->mtu) {
            size_t n = 0;
            memcpy(pay, u->p, hdr);
            n = hdr;
            if (donl) {
                pay[n++] = (uint8_t)(st->don >> 8);
                pay[n++] = (uint8_t)st->don;
            }
            memcpy(pay + n, u->p + hdr, u->len - hdr);
            n += u->len - hdr;
            st->don++;
            emit(ps, st, au, ts, pay, n);
            i++;
            continue;
        }
        /* Fragments: FU-A (indicator, header) or FU (payload header, FU header, DONL). */
        size_t pos = hdr;
        while (pos < u->len) {
            size_t n = 0;
            int start = pos == hdr;
            if (h264) {
                pay[n++] = (uint8_t)((u->p[0] & 0xe0) | 28);
                pay[n++] = (uint8_t)(u->p[0] & 0x1f);
            } else {
                pay[n++] = (uint8_t)((u->p[0] & 0x81) | (49 << 1));
                pay[n++] = u->p[1];
                pay[n++] = (uint8_t)((u->p[0] >> 1) & 0x3f);
                if (start && donl) {
                    pay[n++] = (uint8_t)(st->don >> 8);
                    pay[n++] = (uint8_t)st->don;
                }
            }
            size_t room = o->mtu - n;
            size_t body = u->len - pos < room ? u->len - pos : room;
            uint8_t *fu = pay + (h264 ? 1 : 2);
            if (start) {
                *fu |= 0x80;
            }
            if (pos + body == u->len) {
                *fu |= 0x40;
            }
            memcpy(pay + n, u->p + pos, body);
            emit(ps, st, au, ts, pay, n + body);
            pos += body;
        }
        st->don++;
        i++;
    }
    if (o->markers && ps->n > first_pkt) {
        ps->v[ps->n - 1].p[1] |= 0x80;
    }
    ch_free(pay);
}

static void packetize_clip(const clip_t *c, const popts_t *o, pkts_t *ps)
{
    pstate_t st = {o, c->kind, o->seq, 0};
    memset(ps, 0, sizeof(*ps));
    for (size_t a = 0; a < c->au_count; a++) {
        packetize_au(ps, &st, a, o->ts + (uint32_t)(3600u * a), c->nals + c->aus[a].first,
                     c->aus[a].count);
    }
}

static void pkts_free(pkts_t *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        ch_free(ps->v[i].p);
    }
    ch_free(ps->v);
    memset(ps, 0, sizeof(*ps));
}

/* ---- helpers around the code under test ---------------------------------------------------- */

/* A copy of an access unit handed out, to look at after later pushes. */
typedef struct got {
    uint8_t *data;
    size_t len;
    uint32_t ts;
    uint32_t flags;
    uint32_t nal_count;
} got_t;

typedef struct gots {
    got_t v[64];
    size_t n;
} gots_t;

static void take(ch_codec_assembler_t *a, gots_t *g)
{
    const ch_codec_au_t *au;
    while ((au = ch_codec_assembler_next(a)) != NULL) {
        assert_true(g->n < CH_ARRAY_SIZE(g->v));
        got_t *x = &g->v[g->n++];
        x->data = ch_malloc(au->len + 1);
        memcpy(x->data, au->data, au->len);
        x->len = au->len;
        x->ts = au->timestamp;
        x->flags = au->flags;
        x->nal_count = au->nal_count;
    }
}

static void gots_free(gots_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        ch_free(g->v[i].data);
    }
    g->n = 0;
}

/* Builds an RTP packet in a heap block of exactly its size and pushes it. */
static int push(ch_codec_assembler_t *a, uint16_t seq, uint32_t ts, int marker, const uint8_t *pay,
                size_t len, gots_t *g)
{
    uint8_t *b = ch_malloc(12 + len);
    uint8_t hdr[12] = {0x80, (uint8_t)((marker ? 0x80 : 0) | 96), BE16(seq), BE32(ts), BE32(1)};
    memcpy(b, hdr, 12);
    memcpy(b + 12, pay, len);
    ch_codec_rtp_t rtp;
    assert_int_equal(ch_codec_rtp_parse(b, 12 + len, &rtp), 0);
    ch_codec_pkt_t info;
    int rc = ch_codec_assembler_push(a, &rtp, &info);
    ch_free(b);
    take(a, g);
    return rc;
}

/* Checks that data is exactly the given NAL units, length-prefixed. */
static void assert_units(const got_t *x, const nal_t *want, size_t count)
{
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        if (x->len - off < 4 + want[i].len) {
            fail_msg("unit %zu: data too short (%zu of %zu bytes)", i, x->len, off);
        }
        assert_int_equal(rd32(x->data + off), want[i].len);
        assert_memory_equal(x->data + off + 4, want[i].p, want[i].len);
        off += 4 + want[i].len;
    }
    assert_int_equal(off, x->len);
    assert_int_equal(x->nal_count, count);
}

/* Checks that data is a whole number of length-prefixed units. */
static void assert_well_formed(const uint8_t *d, size_t len)
{
    size_t off = 0;
    while (off < len) {
        assert_true(len - off >= 4);
        uint32_t n = rd32(d + off);
        assert_true(n >= 1 && n <= len - off - 4);
        off += 4 + n;
    }
}

/* ---- parameter sets made by x264 and x265 (320x240) ---------------------------------------- */

/* x264 High profile, level 1.3, 4:2:0 8 bits. */
static const uint8_t h264_sps[] = {0x67, 0x64, 0x00, 0x0d, 0xac, 0xb4, 0x0a, 0x0f,
                                   0xd8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80,
                                   0x00, 0x00, 0x19, 0x07, 0x8a, 0x15, 0x50};
static const uint8_t h264_pps[] = {0x68, 0xef, 0x0f, 0xcb};

/* x265 Main profile, level 2.0: general_profile_compatibility_flag[1] and [2] set (coded
 * 0x60000000), the progressive and frame-only constraint flags (0x90 then zeros). */
static const uint8_t h265_vps[] = {0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60,
                                   0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
                                   0x00, 0x00, 0x03, 0x00, 0x3c, 0xba, 0x02, 0x40};
static const uint8_t h265_sps[] = {0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90,
                                   0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xa0, 0x0a,
                                   0x08, 0x0f, 0x16, 0x5b, 0xa4, 0xa4, 0xc2, 0xf0, 0x16, 0x80,
                                   0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x0c, 0x84};
static const uint8_t h265_pps[] = {0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89};

/* The boxes every init segment shares, up to the sample entry (14496-12). */
#define FTYP                                                                                       \
    BE32(28), T('f', 't', 'y', 'p'), T('i', 's', 'o', '5'), BE32(0x200), T('i', 's', 'o', '5'),    \
        T('i', 's', 'o', '6'), T('m', 'p', '4', '1')
#define MATRIX                                                                                     \
    BE32(0x00010000), BE32(0), BE32(0), BE32(0), BE32(0x00010000), BE32(0), BE32(0), BE32(0),      \
        BE32(0x40000000)
#define MVHD                                                                                       \
    BE32(108), T('m', 'v', 'h', 'd'), BE32(0), /* version 0, flags */                              \
        BE32(0), BE32(0),                      /* creation and modification times */               \
        BE32(1000), BE32(0),                   /* timescale, duration */                           \
        BE32(0x00010000), BE16(0x0100),        /* rate 1.0, volume 1.0 */                          \
        BE16(0), BE32(0), BE32(0),             /* reserved */                                      \
        MATRIX, BE32(0), BE32(0), BE32(0), BE32(0), BE32(0), BE32(0), /* pre_defined */            \
        BE32(2)                                                       /* next_track_ID */
#define TKHD(w, h)                                                                                 \
    BE32(92), T('t', 'k', 'h', 'd'), BE32(3),        /* flags: enabled, in movie */                \
        BE32(0), BE32(0), BE32(1), BE32(0), BE32(0), /* times, track_ID 1, reserved, duration */   \
        BE32(0), BE32(0),                            /* reserved */                                \
        BE16(0), BE16(0), BE16(0), BE16(0), /* layer, alternate_group, volume, reserved */         \
        MATRIX, BE32((w) << 16), BE32((h) << 16)
#define MDHD                                                                                       \
    BE32(32), T('m', 'd', 'h', 'd'), BE32(0), BE32(0), BE32(0), BE32(90000), BE32(0),              \
        BE16(0x55c4), BE16(0) /* "und", pre_defined */
#define HDLR                                                                                       \
    BE32(45), T('h', 'd', 'l', 'r'), BE32(0), BE32(0), T('v', 'i', 'd', 'e'), BE32(0), BE32(0),    \
        BE32(0), 'V', 'i', 'd', 'e', 'o', 'H', 'a', 'n', 'd', 'l', 'e', 'r', 0
#define VMHD BE32(20), T('v', 'm', 'h', 'd'), BE32(1), BE16(0), BE16(0), BE16(0), BE16(0)
#define DINF                                                                                       \
    BE32(36), T('d', 'i', 'n', 'f'), BE32(28), T('d', 'r', 'e', 'f'), BE32(0), BE32(1), BE32(12),  \
        T('u', 'r', 'l', ' '), BE32(1)
/* VisualSampleEntry fields after the type (78 bytes). */
#define VISUAL(w, h)                                                                               \
    0, 0, 0, 0, 0, 0, BE16(1),              /* reserved, data_reference_index */                   \
        BE32(0), BE32(0), BE32(0), BE32(0), /* pre_defined, reserved, pre_defined[3] */            \
        BE16(w), BE16(h), BE32(0x00480000), BE32(0x00480000), BE32(0), BE16(1), /* frames */       \
        BE32(0), BE32(0), BE32(0), BE32(0), BE32(0), BE32(0), BE32(0), BE32(0), /* name */         \
        BE16(0x18), BE16(0xffff)
#define EMPTY_TABLES                                                                               \
    BE32(16), T('s', 't', 't', 's'), BE32(0), BE32(0), BE32(16), T('s', 't', 's', 'c'), BE32(0),   \
        BE32(0), BE32(20), T('s', 't', 's', 'z'), BE32(0), BE32(0), BE32(0), BE32(16),             \
        T('s', 't', 'c', 'o'), BE32(0), BE32(0)
#define MVEX                                                                                       \
    BE32(40), T('m', 'v', 'e', 'x'), BE32(32), T('t', 'r', 'e', 'x'), BE32(0), BE32(1), BE32(1),   \
        BE32(0), BE32(0), BE32(0)

/* Sizes, summed by hand: avcC 8 + 6 + 2 + 23 + 1 + 2 + 4 + 4 (the High profile's chroma and
 * depth bytes) = 50; avc1 86 + 50 = 136; stsd 16 + 136 = 152; stbl 8 + 152 + 68 = 228; minf
 * 8 + 20 + 36 + 228 = 292; mdia 8 + 32 + 45 + 292 = 377; trak 8 + 92 + 377 = 477; moov 8 +
 * 108 + 477 + 40 = 633. */
static const uint8_t h264_init[] = {FTYP,
                                    BE32(633),
                                    T('m', 'o', 'o', 'v'),
                                    MVHD,
                                    BE32(477),
                                    T('t', 'r', 'a', 'k'),
                                    TKHD(320, 240),
                                    BE32(377),
                                    T('m', 'd', 'i', 'a'),
                                    MDHD,
                                    HDLR,
                                    BE32(292),
                                    T('m', 'i', 'n', 'f'),
                                    VMHD,
                                    DINF,
                                    BE32(228),
                                    T('s', 't', 'b', 'l'),
                                    BE32(152),
                                    T('s', 't', 's', 'd'),
                                    BE32(0),
                                    BE32(1),
                                    BE32(136),
                                    T('a', 'v', 'c', '1'),
                                    VISUAL(320, 240),
                                    BE32(50),
                                    T('a', 'v', 'c', 'C'),
                                    1, /* configurationVersion */
                                    0x64,
                                    0x00,
                                    0x0d, /* profile, compatibility, level: the SPS's bytes 1-3 */
                                    0xff, /* 111111 + lengthSizeMinusOne 3 */
                                    0xe1, /* 111 + one SPS */
                                    BE16(23),
                                    0x67,
                                    0x64,
                                    0x00,
                                    0x0d,
                                    0xac,
                                    0xb4,
                                    0x0a,
                                    0x0f,
                                    0xd8,
                                    0x08,
                                    0x80,
                                    0x00,
                                    0x00,
                                    0x03,
                                    0x00,
                                    0x80,
                                    0x00,
                                    0x00,
                                    0x19,
                                    0x07,
                                    0x8a,
                                    0x15,
                                    0x50,
                                    1, /* one PPS */
                                    BE16(4),
                                    0x68,
                                    0xef,
                                    0x0f,
                                    0xcb,
                                    0xfd, /* 111111 + chroma_format_idc 1 */
                                    0xf8,
                                    0xf8, /* 11111 + bit depths minus 8 */
                                    0,    /* no SPS extension */
                                    EMPTY_TABLES,
                                    MVEX};

/* hvcC 8 + 23 + (5 + 24) + (5 + 40) + (5 + 6) = 116; hvc1 86 + 116 = 202; stsd 218; stbl 294;
 * minf 358; mdia 443; trak 543; moov 699. */
static const uint8_t h265_init[] = {
    FTYP,
    BE32(699),
    T('m', 'o', 'o', 'v'),
    MVHD,
    BE32(543),
    T('t', 'r', 'a', 'k'),
    TKHD(320, 240),
    BE32(443),
    T('m', 'd', 'i', 'a'),
    MDHD,
    HDLR,
    BE32(358),
    T('m', 'i', 'n', 'f'),
    VMHD,
    DINF,
    BE32(294),
    T('s', 't', 'b', 'l'),
    BE32(218),
    T('s', 't', 's', 'd'),
    BE32(0),
    BE32(1),
    BE32(202),
    T('h', 'v', 'c', '1'),
    VISUAL(320, 240),
    BE32(116),
    T('h', 'v', 'c', 'C'),
    1,    /* configurationVersion */
    0x01, /* profile space 0, tier 0, profile 1 (Main) */
    0x60,
    0x00,
    0x00,
    0x00, /* compatibility flags 1 and 2, as coded */
    0x90,
    0x00,
    0x00,
    0x00,
    0x00,
    0x00, /* constraint flags (emulation prevention removed) */
    0x3c, /* level 2.0 (60) */
    0xf0,
    0x00, /* 1111 + min_spatial_segmentation_idc 0 */
    0xfc, /* 111111 + parallelismType 0 */
    0xfd, /* 111111 + chroma_format_idc 1 */
    0xf8,
    0xf8,    /* 11111 + bit depths minus 8 */
    BE16(0), /* avgFrameRate */
    0x0f,    /* constantFrameRate 0, one temporal layer, nested, lengthSizeMinusOne 3 */
    3,       /* arrays */
    0xa0,
    BE16(1),
    BE16(24),
    0x40,
    0x01,
    0x0c,
    0x01,
    0xff,
    0xff,
    0x01,
    0x60,
    0x00,
    0x00,
    0x03,
    0x00,
    0x90,
    0x00,
    0x00,
    0x03,
    0x00,
    0x00,
    0x03,
    0x00,
    0x3c,
    0xba,
    0x02,
    0x40,
    0xa1,
    BE16(1),
    BE16(40),
    0x42,
    0x01,
    0x01,
    0x01,
    0x60,
    0x00,
    0x00,
    0x03,
    0x00,
    0x90,
    0x00,
    0x00,
    0x03,
    0x00,
    0x00,
    0x03,
    0x00,
    0x3c,
    0xa0,
    0x0a,
    0x08,
    0x0f,
    0x16,
    0x5b,
    0xa4,
    0xa4,
    0xc2,
    0xf0,
    0x16,
    0x80,
    0x80,
    0x00,
    0x00,
    0x03,
    0x00,
    0x80,
    0x00,
    0x00,
    0x0c,
    0x84,
    0xa2,
    BE16(1),
    BE16(6),
    0x44,
    0x01,
    0xc0,
    0x73,
    0xc1,
    0x89,
    EMPTY_TABLES,
    MVEX};

/* The stream state after its parameter sets went by in band, in one STAP-A/AP. */
static void stream_with_params(ch_codec_stream_t *s, ch_codec_assembler_t *a, ch_codec_kind_t kind)
{
    ch_codec_stream_init(s, kind);
    ch_codec_assembler_init(a, s);
    uint8_t pay[256];
    size_t n = 0;
    gots_t g = {.n = 0};
    if (kind == CH_CODEC_H264) {
        pay[n++] = 0x78; /* STAP-A, NRI 3 */
        pay[n++] = 0;
        pay[n++] = sizeof(h264_sps);
        memcpy(pay + n, h264_sps, sizeof(h264_sps));
        n += sizeof(h264_sps);
        pay[n++] = 0;
        pay[n++] = sizeof(h264_pps);
        memcpy(pay + n, h264_pps, sizeof(h264_pps));
        n += sizeof(h264_pps);
    } else {
        pay[n++] = 48 << 1;
        pay[n++] = 1;
        const uint8_t *ps[3] = {h265_vps, h265_sps, h265_pps};
        size_t lens[3] = {sizeof(h265_vps), sizeof(h265_sps), sizeof(h265_pps)};
        for (int i = 0; i < 3; i++) {
            pay[n++] = 0;
            pay[n++] = (uint8_t)lens[i];
            memcpy(pay + n, ps[i], lens[i]);
            n += lens[i];
        }
    }
    assert_int_equal(push(a, 100, 9000, 0, pay, n, &g), 0);
    assert_int_equal(g.n, 0);
    assert_true(s->sps_valid);
}

/* ---- the boxes -------------------------------------------------------------------------- */

static void test_h264_init_segment_is_byte_exact(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    stream_with_params(&s, &a, CH_CODEC_H264);
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    assert_int_equal(ch_codec_fmp4_write_init(&m, &s), 0);
    assert_bytes(m.init, m.init_len, h264_init, sizeof(h264_init));
    assert_string_equal(m.codec, "avc1.64000D");
    assert_int_equal(m.width, 320);
    assert_int_equal(m.height, 240);
    assert_int_equal(m.init_serial, 1);
    ch_codec_assembler_fini(&a);
}

static void test_h265_init_segment_is_byte_exact(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    stream_with_params(&s, &a, CH_CODEC_H265);
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    assert_int_equal(ch_codec_fmp4_write_init(&m, &s), 0);
    assert_bytes(m.init, m.init_len, h265_init, sizeof(h265_init));
    assert_string_equal(m.codec, "hvc1.1.6.L60.90");
    assert_int_equal(m.width, 320);
    assert_int_equal(m.height, 240);
    ch_codec_assembler_fini(&a);
}

static void test_init_segment_waits_for_every_parameter_set(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    ch_codec_stream_init(&s, CH_CODEC_H265);
    assert_int_equal(ch_codec_fmp4_write_init(&m, &s), CH_EAGAIN);
    /* VPS and SPS from the SDP, no PPS yet. */
    char fmtp[] = "sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA8ugJA;"
                  "sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA8oAoIDxZbpKTC8BaAgAAAAwCAAAAMhA==";
    assert_int_equal(ch_codec_stream_set_fmtp(&s, fmtp, strlen(fmtp)), 0);
    assert_true(s.sps_valid);
    assert_int_equal(ch_codec_fmp4_write_init(&m, &s), CH_EAGAIN);
    assert_int_equal(m.init_len, 0);
    char pps[] = "sprop-pps=RAHAc8GJ";
    assert_int_equal(ch_codec_stream_set_fmtp(&s, pps, strlen(pps)), 0);
    assert_int_equal(ch_codec_fmp4_write_init(&m, &s), 0);
    assert_bytes(m.init, m.init_len, h265_init, sizeof(h265_init));
}

/* moof (mfhd, traf (tfhd, tfdt v1, trun)) and mdat, for one sample (14496-12 8.8). */
static size_t expected_fragment(uint8_t *out, uint32_t seq, uint64_t dts, uint32_t dur, int key,
                                const uint8_t *data, uint32_t len)
{
    const uint8_t head[] = {BE32(100),
                            T('m', 'o', 'o', 'f'),
                            BE32(16),
                            T('m', 'f', 'h', 'd'),
                            BE32(0),
                            BE32(seq),
                            BE32(76),
                            T('t', 'r', 'a', 'f'),
                            BE32(16),
                            T('t', 'f', 'h', 'd'),
                            BE32(0x00020000), /* default-base-is-moof */
                            BE32(1),          /* track_ID */
                            BE32(20),
                            T('t', 'f', 'd', 't'),
                            BE32(0x01000000),
                            BE32((uint32_t)(dts >> 32)),
                            BE32((uint32_t)dts),
                            BE32(32),
                            T('t', 'r', 'u', 'n'),
                            BE32(0x00000701), /* data offset, duration, size, flags */
                            BE32(1),          /* sample_count */
                            BE32(108),        /* data_offset: moof 100 + mdat header 8 */
                            BE32(dur),
                            BE32(len),
                            BE32(key ? 0x02000000 : 0x01010000),
                            BE32(8 + len),
                            T('m', 'd', 'a', 't')};
    memcpy(out, head, sizeof(head));
    memcpy(out + sizeof(head), data, len);
    return sizeof(head) + len;
}

/* Pushes one access unit of a single NAL unit; returns it as handed out (or NULL). */
static const ch_codec_au_t *push_unit(ch_codec_assembler_t *a, uint16_t seq, uint32_t ts,
                                      const uint8_t *nal, size_t len)
{
    uint8_t *b = ch_malloc(12 + len);
    uint8_t hdr[12] = {0x80, 0x80 | 96, BE16(seq), BE32(ts), BE32(1)};
    memcpy(b, hdr, 12);
    memcpy(b + 12, nal, len);
    ch_codec_rtp_t rtp;
    assert_int_equal(ch_codec_rtp_parse(b, 12 + len, &rtp), 0);
    ch_codec_pkt_t info;
    int rc = ch_codec_assembler_push(a, &rtp, &info);
    assert_true(rc == 0 || rc == CH_EPARSE || rc == CH_EUNSUPP);
    ch_free(b);
    return ch_codec_assembler_next(a);
}

static void test_fragments_are_byte_exact_with_unwrapped_decode_times(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    stream_with_params(&s, &a, CH_CODEC_H264);
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    static const uint8_t idr[] = {0x65, 0x88, 0x84, 0x21};
    static const uint8_t p[] = {0x41, 0x9a, 0x26};
    uint8_t out[512], want[512];
    /* Timestamps that wrap: 0xfffff000, +3600 (past 2^32), +3000, +3600. */
    uint32_t ts[] = {0xfffff000u, 0xfffff000u + 3600u, 0xfffff000u + 6600u, 0xfffff000u + 10200u};
    uint64_t dts[] = {0, 3600, 6600, 10200};
    uint32_t dur[] = {CH_CODEC_FMP4_FIRST_DURATION, 3600, 3000, 3600};
    for (int i = 0; i < 4; i++) {
        const uint8_t *nal = i == 0 ? idr : p;
        size_t len = i == 0 ? sizeof(idr) : sizeof(p);
        const ch_codec_au_t *au = push_unit(&a, (uint16_t)(101 + i), ts[i], nal, len);
        assert_non_null(au);
        assert_int_equal(au->timestamp, ts[i]);
        assert_int_equal(!!(au->flags & CH_CODEC_AU_KEYFRAME), i == 0);
        int n = ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out));
        uint8_t sample[8] = {BE32((uint32_t)len)};
        memcpy(sample + 4, nal, len);
        size_t wn = expected_fragment(want, (uint32_t)(i + 1), dts[i], dur[i], i == 0, sample,
                                      (uint32_t)(4 + len));
        assert_true(n > 0);
        assert_bytes(out, (size_t)n, want, wn);
        assert_int_equal(CH_CODEC_FMP4_FRAGMENT_OVERHEAD + au->len, (size_t)n);
    }
    assert_int_equal(m.init_serial, 1);
    assert_bytes(m.init, m.init_len, h264_init, sizeof(h264_init));
    ch_codec_assembler_fini(&a);
}

static void test_decode_time_crosses_many_wraps_and_survives_clock_jumps(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    stream_with_params(&s, &a, CH_CODEC_H264);
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    static const uint8_t idr[] = {0x65, 0x88};
    uint8_t out[256];
    /* Keyframes only, 9 s apart (just under the 10 s a step may take before it counts as a
     * clock jump), 25,000 of them: the 32-bit clock wraps four times. */
    uint32_t ts = 0x80000000u;
    uint64_t want = 0;
    for (int i = 0; i < 25000; i++) {
        const ch_codec_au_t *au = push_unit(&a, (uint16_t)(101 + i), ts, idr, sizeof(idr));
        assert_non_null(au);
        int n = ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out));
        assert_true(n > 0);
        uint64_t got = ((uint64_t)rd32(out + 60) << 32) | rd32(out + 64);
        assert_int_equal(got, want);
        ts += 9 * 90000;
        want += 9 * 90000;
    }
    assert_true(want > 4 * 0x100000000ull);
    /* The clock jumps back 1 hour, then forward 1 hour: time moves on by the last step. */
    uint64_t before = m.dts;
    const ch_codec_au_t *au =
        push_unit(&a, (uint16_t)(101 + 25000), ts - 3600 * 90000u, idr, sizeof(idr));
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    assert_int_equal(m.dts, before + 9 * 90000);
    au = push_unit(&a, (uint16_t)(102 + 25000), ts + 3600 * 90000u, idr, sizeof(idr));
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    assert_int_equal(m.dts, before + 18 * 90000);
    ch_codec_assembler_fini(&a);
}

static void test_muxer_waits_for_a_keyframe_and_drops_until_the_next_after_loss(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    stream_with_params(&s, &a, CH_CODEC_H264);
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    static const uint8_t idr[] = {0x65, 0x88};
    static const uint8_t p[] = {0x41, 0x9a};
    uint8_t out[256];
    uint16_t seq = 101;
    uint32_t ts = 0;
    /* P-frames before the first keyframe are dropped: nothing written, no init yet. */
    const ch_codec_au_t *au = push_unit(&a, seq++, ts += 3600, p, sizeof(p));
    assert_int_equal(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)), CH_EAGAIN);
    assert_int_equal(m.init_len, 0);
    au = push_unit(&a, seq++, ts += 3600, idr, sizeof(idr));
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    assert_int_equal(rd32(out + 20), 1); /* the first fragment's sequence number */
    au = push_unit(&a, seq++, ts += 3600, p, sizeof(p));
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    /* A packet is lost: the next unit is broken, and P-frames after it wait. */
    seq++;
    au = push_unit(&a, seq++, ts += 7200, p, sizeof(p));
    assert_true(au->flags & CH_CODEC_AU_BROKEN);
    assert_int_equal(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)), CH_EAGAIN);
    au = push_unit(&a, seq++, ts += 3600, p, sizeof(p));
    assert_false(au->flags & CH_CODEC_AU_BROKEN);
    assert_int_equal(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)), CH_EAGAIN);
    au = push_unit(&a, seq++, ts += 3600, idr, sizeof(idr));
    int n = ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out));
    assert_true(n > 0);
    /* Sequence numbers count fragments written; the decode time counts every unit since the
     * first keyframe: three steps of 3600 and one of 7200. */
    assert_int_equal(rd32(out + 20), 3);
    assert_int_equal(rd32(out + 64), 5 * 3600);
    assert_int_equal(m.dropped, 3);
    /* A buffer too small is refused, and the stream waits for a keyframe again. */
    au = push_unit(&a, seq++, ts += 3600, p, sizeof(p));
    assert_int_equal(ch_codec_fmp4_fragment(&m, &s, au, out, 100), CH_ETOOBIG);
    au = push_unit(&a, seq++, ts += 3600, p, sizeof(p));
    assert_int_equal(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)), CH_EAGAIN);
    ch_codec_assembler_fini(&a);
}

static void test_new_parameter_sets_rebuild_the_init_segment_at_the_next_keyframe(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    stream_with_params(&s, &a, CH_CODEC_H264);
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    static const uint8_t idr[] = {0x65, 0x88};
    static const uint8_t p[] = {0x41, 0x9a};
    uint8_t out[256];
    const ch_codec_au_t *au = push_unit(&a, 101, 3600, idr, sizeof(idr));
    assert_true(au->flags & CH_CODEC_AU_PARAMS); /* the first unit after them */
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    assert_int_equal(m.init_serial, 1);
    /* The same parameter sets again change nothing. */
    gots_t g = {.n = 0};
    assert_int_equal(push(&a, 102, 7200, 0, h264_sps, sizeof(h264_sps), &g), 0);
    au = push_unit(&a, 103, 7200, idr, sizeof(idr));
    assert_false(au->flags & CH_CODEC_AU_PARAMS);
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    assert_int_equal(m.init_serial, 1);
    /* A new SPS (1280x720 Constrained Baseline): a P-frame after it is dropped; the next
     * keyframe brings a new init segment. */
    static const uint8_t sps720[] = {0x67, 0x42, 0x00, 0x1f, 0x95, 0xa8, 0x14, 0x01, 0x6e, 0x40};
    assert_int_equal(push(&a, 104, 10800, 0, sps720, sizeof(sps720), &g), 0);
    au = push_unit(&a, 105, 10800, p, sizeof(p));
    assert_true(au->flags & CH_CODEC_AU_PARAMS);
    assert_int_equal(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)), CH_EAGAIN);
    assert_int_equal(m.init_serial, 1);
    au = push_unit(&a, 106, 14400, idr, sizeof(idr));
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    assert_int_equal(m.init_serial, 2);
    assert_int_equal(m.width, 1280);
    assert_int_equal(m.height, 720);
    assert_string_equal(m.codec, "avc1.42001F");
    /* Baseline: no chroma and depth bytes after the PPS. */
    assert_int_equal(m.init_len, sizeof(h264_init) - 4 - sizeof(h264_sps) + sizeof(sps720));
    ch_codec_assembler_fini(&a);
}

static void
test_reconnect_waits_for_a_keyframe_and_the_init_follows_new_parameter_sets(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    stream_with_params(&s, &a, CH_CODEC_H264);
    static ch_codec_fmp4_t m;
    ch_codec_fmp4_reset(&m);
    static const uint8_t idr[] = {0x65, 0x88};
    static const uint8_t p[] = {0x41, 0x9a};
    uint8_t out[256];
    const ch_codec_au_t *au = push_unit(&a, 101, 3600, idr, sizeof(idr));
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    uint32_t version = s.params_version;
    /* The camera's connection drops in the middle of a unit (a first fragment, no end)... */
    uint8_t frag[] = {0x7c, 0x85, 0x11, 0x22};
    gots_t g = {.n = 0};
    assert_int_equal(push(&a, 102, 7200, 0, frag, sizeof(frag), &g), 0);
    ch_codec_assembler_reset(&a);
    /* ...and comes back with a new RTP base, new sequence numbers and a new SPS (1280x720);
     * the stream starts over, so its params_version climbs back to the same number. */
    ch_codec_stream_init(&s, CH_CODEC_H264);
    static const uint8_t sps720[] = {0x67, 0x42, 0x00, 0x1f, 0x95, 0xa8, 0x14, 0x01, 0x6e, 0x40};
    assert_int_equal(push(&a, 5000, 123456789, 0, sps720, sizeof(sps720), &g), 0);
    assert_int_equal(push(&a, 5001, 123456789, 0, h264_pps, sizeof(h264_pps), &g), 0);
    assert_int_equal(s.params_version, version);
    au = push_unit(&a, 5002, 123456789, p, sizeof(p));
    assert_non_null(au);
    assert_int_equal(au->flags & (CH_CODEC_AU_DISCONTINUITY | CH_CODEC_AU_BROKEN),
                     CH_CODEC_AU_DISCONTINUITY);
    assert_int_equal(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)), CH_EAGAIN);
    au = push_unit(&a, 5003, 123456789 + 3600, idr, sizeof(idr));
    assert_false(au->flags & CH_CODEC_AU_DISCONTINUITY);
    uint64_t before = m.dts;
    assert_true(ch_codec_fmp4_fragment(&m, &s, au, out, sizeof(out)) > 0);
    assert_int_equal(m.init_serial, 2);
    assert_int_equal(m.width, 1280);
    assert_string_equal(m.codec, "avc1.42001F");
    /* The timeline goes on: one step per unit across the jump of the RTP clock. */
    assert_int_equal(m.dts, before + 3600);
    assert_int_equal(rd32(out + 20), 2);
    gots_free(&g);
    ch_codec_assembler_fini(&a);
}

/* ---- the assembler on hand-made packets --------------------------------------------------- */

static void test_single_units_make_one_access_unit_per_marker(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    gots_t g = {.n = 0};
    static const uint8_t aud[] = {0x09, 0xf0};
    static const uint8_t sei[] = {0x06, 0x05, 0x01, 0x80};
    static const uint8_t idr1[] = {0x65, 0x88, 0x80, 0x01};
    static const uint8_t idr2[] = {0x65, 0x08, 0x80, 0x02};
    assert_int_equal(push(&a, 1, 900, 0, aud, sizeof(aud), &g), 0);
    assert_int_equal(push(&a, 2, 900, 0, h264_sps, sizeof(h264_sps), &g), 0);
    assert_int_equal(push(&a, 3, 900, 0, h264_pps, sizeof(h264_pps), &g), 0);
    assert_int_equal(push(&a, 4, 900, 0, sei, sizeof(sei), &g), 0);
    assert_int_equal(push(&a, 5, 900, 0, idr1, sizeof(idr1), &g), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(push(&a, 6, 900, 1, idr2, sizeof(idr2), &g), 0);
    assert_int_equal(g.n, 1);
    nal_t want[] = {
        {aud, sizeof(aud)}, {sei, sizeof(sei)}, {idr1, sizeof(idr1)}, {idr2, sizeof(idr2)}};
    assert_units(&g.v[0], want, 4); /* the SPS and PPS are in the stream, not in the unit */
    assert_int_equal(g.v[0].ts, 900);
    assert_int_equal(g.v[0].flags, CH_CODEC_AU_KEYFRAME | CH_CODEC_AU_MARKER | CH_CODEC_AU_PARAMS);
    assert_memory_equal(s.sps.data, h264_sps, sizeof(h264_sps));
    assert_memory_equal(s.pps.data, h264_pps, sizeof(h264_pps));
    gots_free(&g);
    ch_codec_assembler_fini(&a);
}

static void test_timestamp_change_ends_a_unit_without_marker(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    gots_t g = {.n = 0};
    static const uint8_t p1[] = {0x41, 0x9a, 0x01};
    static const uint8_t p2[] = {0x41, 0x9a, 0x02};
    static const uint8_t p3[] = {0x41, 0x9a, 0x03};
    assert_int_equal(push(&a, 10, 1000, 0, p1, sizeof(p1), &g), 0);
    assert_int_equal(g.n, 0);
    /* A new timestamp closes the first unit; this one has the marker, so it closes too:
     * two units from one push, oldest first. */
    assert_int_equal(push(&a, 11, 4600, 1, p2, sizeof(p2), &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.v[0].ts, 1000);
    assert_int_equal(g.v[0].flags, 0);
    assert_int_equal(g.v[1].ts, 4600);
    assert_int_equal(g.v[1].flags, CH_CODEC_AU_MARKER);
    nal_t w1 = {p1, sizeof(p1)}, w2 = {p2, sizeof(p2)}, w3 = {p3, sizeof(p3)};
    assert_units(&g.v[0], &w1, 1);
    assert_units(&g.v[1], &w2, 1);
    /* The last unit of a stream without markers leaves with a flush. */
    assert_int_equal(push(&a, 12, 8200, 0, p3, sizeof(p3), &g), 0);
    assert_int_equal(g.n, 2);
    ch_codec_assembler_flush(&a);
    take(&a, &g);
    assert_int_equal(g.n, 3);
    assert_units(&g.v[2], &w3, 1);
    ch_codec_assembler_flush(&a);
    assert_null(ch_codec_assembler_next(&a));
    gots_free(&g);
    ch_codec_assembler_fini(&a);
}

/* A 3000-byte IDR slice cut into FU-A fragments of about 1000 bytes. */
static uint8_t big_idr[3000];

static void make_big_idr(void)
{
    big_idr[0] = 0x65;
    for (size_t i = 1; i < sizeof(big_idr); i++) {
        big_idr[i] = (uint8_t)(i * 7 + 1);
    }
}

static size_t fu_a(uint8_t *out, const uint8_t *nal, size_t from, size_t to, size_t len)
{
    out[0] = (uint8_t)((nal[0] & 0xe0) | 28);
    out[1] = (uint8_t)((from == 1 ? 0x80 : 0) | (to == len ? 0x40 : 0) | (nal[0] & 0x1f));
    memcpy(out + 2, nal + from, to - from);
    return 2 + to - from;
}

static void test_stap_a_and_fu_a_are_put_back_together(void **state)
{
    (void)state;
    make_big_idr();
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    gots_t g = {.n = 0};
    static const uint8_t sei[] = {0x06, 0x05, 0x01, 0x80};
    uint8_t pay[1200];
    size_t n = 0;
    pay[n++] = 0x78;
    const uint8_t *units[3] = {h264_sps, h264_pps, sei};
    size_t lens[3] = {sizeof(h264_sps), sizeof(h264_pps), sizeof(sei)};
    for (int i = 0; i < 3; i++) {
        pay[n++] = 0;
        pay[n++] = (uint8_t)lens[i];
        memcpy(pay + n, units[i], lens[i]);
        n += lens[i];
    }
    assert_int_equal(push(&a, 65535, 90000, 0, pay, n, &g), 0);
    size_t cuts[] = {1, 1000, 2000, sizeof(big_idr)};
    for (int i = 0; i < 3; i++) {
        n = fu_a(pay, big_idr, cuts[i], cuts[i + 1], sizeof(big_idr));
        assert_int_equal(push(&a, (uint16_t)i, 90000, i == 2, pay, n, &g), 0);
    }
    assert_int_equal(g.n, 1);
    nal_t want[] = {{sei, sizeof(sei)}, {big_idr, sizeof(big_idr)}};
    assert_units(&g.v[0], want, 2);
    assert_int_equal(g.v[0].flags, CH_CODEC_AU_KEYFRAME | CH_CODEC_AU_MARKER | CH_CODEC_AU_PARAMS);
    gots_free(&g);
    ch_codec_assembler_fini(&a);
}

/* Pushes the big IDR as FU-A fragments 0..2 (skipping those in lose[]), in the given order,
 * then a P-frame unit with the next timestamp and a marker. Returns what came out. */
static void fu_scenario(const int *order, size_t count, gots_t *g)
{
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    size_t cuts[] = {1, 1000, 2000, sizeof(big_idr)};
    uint8_t pay[1200];
    for (size_t i = 0; i < count; i++) {
        int k = order[i];
        size_t n = fu_a(pay, big_idr, cuts[k], cuts[k + 1], sizeof(big_idr));
        int rc = push(&a, (uint16_t)(100 + k), 3600, k == 2, pay, n, g);
        assert_int_equal(rc, 0);
    }
    static const uint8_t p[] = {0x41, 0x9a, 0x02};
    assert_int_equal(push(&a, 103, 7200, 1, p, sizeof(p), g), 0);
    for (size_t i = 0; i < g->n; i++) {
        assert_well_formed(g->v[i].data, g->v[i].len);
    }
    ch_codec_assembler_fini(&a);
}

static void test_lost_fragments_break_the_access_unit(void **state)
{
    (void)state;
    make_big_idr();
    gots_t g = {.n = 0};
    static const uint8_t p[] = {0x41, 0x9a, 0x02};
    nal_t wp = {p, sizeof(p)};

    /* All three: whole. */
    int all[] = {0, 1, 2};
    fu_scenario(all, 3, &g);
    assert_int_equal(g.n, 2);
    assert_false(g.v[0].flags & CH_CODEC_AU_BROKEN);
    assert_false(g.v[1].flags & CH_CODEC_AU_BROKEN);
    gots_free(&g);

    /* The middle is lost: the end reads as a gap; the IDR is cut out and the unit is broken
     * (and holds nothing, so it is not handed out: the loss falls on the next unit). */
    int no_middle[] = {0, 2};
    fu_scenario(no_middle, 2, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.v[0].ts, 7200);
    assert_true(g.v[0].flags & CH_CODEC_AU_BROKEN);
    assert_units(&g.v[0], &wp, 1);
    gots_free(&g);

    /* The start is lost: orphan fragments. */
    int no_start[] = {1, 2};
    fu_scenario(no_start, 2, &g);
    assert_int_equal(g.n, 1);
    assert_true(g.v[0].flags & CH_CODEC_AU_BROKEN);
    gots_free(&g);

    /* The end (with the marker) is lost: the next packet has a new timestamp and follows a
     * gap, so the IDR's unit is closed cut, and the next one is broken too (what was lost
     * may have been its head). */
    int no_end[] = {0, 1};
    fu_scenario(no_end, 2, &g);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.v[0].ts, 7200);
    assert_true(g.v[0].flags & CH_CODEC_AU_BROKEN);
    assert_units(&g.v[0], &wp, 1);
    gots_free(&g);

    /* Reordered: 0, 2, 1. */
    int reordered[] = {0, 2, 1};
    fu_scenario(reordered, 3, &g);
    for (size_t i = 0; i < g.n; i++) {
        assert_true(g.v[i].flags & CH_CODEC_AU_BROKEN);
    }
    gots_free(&g);
}

static void test_fu_start_while_another_is_open_cuts_the_first(void **state)
{
    (void)state;
    make_big_idr();
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    gots_t g = {.n = 0};
    uint8_t pay[1200];
    size_t n = fu_a(pay, big_idr, 1, 1000, sizeof(big_idr));
    assert_int_equal(push(&a, 1, 3600, 0, pay, n, &g), 0);
    /* A single unit where the fragment's next part should be (a camera's bug). */
    static const uint8_t sei[] = {0x06, 0x05, 0x01, 0x80};
    assert_int_equal(push(&a, 2, 3600, 0, sei, sizeof(sei), &g), 0);
    static const uint8_t idr[] = {0x65, 0x88, 0x80};
    assert_int_equal(push(&a, 3, 3600, 1, idr, sizeof(idr), &g), 0);
    assert_int_equal(g.n, 1);
    assert_true(g.v[0].flags & CH_CODEC_AU_BROKEN);
    nal_t want[] = {{sei, sizeof(sei)}, {idr, sizeof(idr)}};
    assert_units(&g.v[0], want, 2);
    gots_free(&g);
    ch_codec_assembler_fini(&a);
}

static void test_malformed_and_unsupported_payloads_break_the_unit(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    gots_t g = {.n = 0};
    static const uint8_t p[] = {0x41, 0x9a};
    static const uint8_t bad_stap[] = {0x78, 0x00, 0x09, 0x41}; /* size past the end */
    static const uint8_t stap_b[] = {0x79, 0x00, 0x01, 0x00, 0x02, 0x41, 0x9a};
    assert_int_equal(push(&a, 1, 3600, 0, p, sizeof(p), &g), 0);
    assert_int_equal(push(&a, 2, 3600, 1, bad_stap, sizeof(bad_stap), &g), CH_EPARSE);
    assert_int_equal(g.n, 1);
    assert_true(g.v[0].flags & CH_CODEC_AU_BROKEN);
    assert_int_equal(g.v[0].nal_count, 1);
    assert_int_equal(push(&a, 3, 7200, 0, p, sizeof(p), &g), 0);
    assert_int_equal(push(&a, 4, 7200, 1, stap_b, sizeof(stap_b), &g), CH_EUNSUPP);
    assert_int_equal(g.n, 2);
    assert_true(g.v[1].flags & CH_CODEC_AU_BROKEN);
    /* An empty payload alone: the unit holds nothing; its loss falls on the next. */
    assert_int_equal(push(&a, 5, 10800, 1, p, 0, &g), CH_EPARSE);
    assert_int_equal(g.n, 2);
    assert_int_equal(push(&a, 6, 14400, 1, p, sizeof(p), &g), 0);
    assert_int_equal(g.n, 3);
    assert_true(g.v[2].flags & CH_CODEC_AU_BROKEN);
    assert_int_equal(push(&a, 7, 18000, 1, p, sizeof(p), &g), 0);
    assert_false(g.v[3].flags & CH_CODEC_AU_BROKEN);
    gots_free(&g);
    ch_codec_assembler_fini(&a);
}

static void test_h265_ap_and_fu_with_and_without_donl(void **state)
{
    (void)state;
    for (int donl = 0; donl <= 1; donl++) {
        static ch_codec_stream_t s;
        ch_codec_assembler_t a;
        ch_codec_stream_init(&s, CH_CODEC_H265);
        if (donl) {
            char fmtp[] = "sprop-max-don-diff=2";
            assert_int_equal(ch_codec_stream_set_fmtp(&s, fmtp, strlen(fmtp)), 0);
        }
        ch_codec_assembler_init(&a, &s);
        gots_t g = {.n = 0};
        static const uint8_t sei[] = {0x4e, 0x01, 0x05, 0x01, 0x80}; /* prefix SEI (39) */
        uint8_t idr[2500];
        idr[0] = 19 << 1; /* IDR_W_RADL */
        idr[1] = 1;
        for (size_t i = 2; i < sizeof(idr); i++) {
            idr[i] = (uint8_t)(i * 13 + 5);
        }
        /* AP: VPS, SPS, PPS, SEI (DONL 0, then DOND 0 each). */
        uint8_t pay[1400];
        size_t n = 0;
        pay[n++] = 48 << 1;
        pay[n++] = 1;
        const uint8_t *units[4] = {h265_vps, h265_sps, h265_pps, sei};
        size_t lens[4] = {sizeof(h265_vps), sizeof(h265_sps), sizeof(h265_pps), sizeof(sei)};
        for (int i = 0; i < 4; i++) {
            if (donl) {
                if (i == 0) {
                    pay[n++] = 0;
                }
                pay[n++] = 0;
            }
            pay[n++] = 0;
            pay[n++] = (uint8_t)lens[i];
            memcpy(pay + n, units[i], lens[i]);
            n += lens[i];
        }
        assert_int_equal(push(&a, 7, 0xfffffff0u, 0, pay, n, &g), 0);
        assert_true(s.sps_valid);
        /* FU: 1200-byte fragments; DONL only in the first. */
        for (size_t pos = 2, first = 1; pos < sizeof(idr); first = 0) {
            size_t body = sizeof(idr) - pos < 1200 ? sizeof(idr) - pos : 1200;
            n = 0;
            pay[n++] = 49 << 1;
            pay[n++] = 1;
            pay[n++] = (uint8_t)((first ? 0x80 : 0) | (pos + body == sizeof(idr) ? 0x40 : 0) | 19);
            if (first && donl) {
                pay[n++] = 0;
                pay[n++] = 4;
            }
            memcpy(pay + n, idr + pos, body);
            n += body;
            pos += body;
            assert_int_equal(push(&a, (uint16_t)(8 + (pos > 1202) + (pos > 2402)), 0xfffffff0u,
                                  pos == sizeof(idr), pay, n, &g),
                             0);
        }
        assert_int_equal(g.n, 1);
        nal_t want[] = {{sei, sizeof(sei)}, {idr, sizeof(idr)}};
        assert_units(&g.v[0], want, 2);
        assert_int_equal(g.v[0].flags,
                         CH_CODEC_AU_KEYFRAME | CH_CODEC_AU_MARKER | CH_CODEC_AU_PARAMS);
        assert_int_equal(g.v[0].ts, 0xfffffff0u);
        /* A single trailing picture (TRAIL_R, 1) with DONL when set. */
        uint8_t single[8] = {0x02, 0x01};
        n = 2;
        if (donl) {
            single[n++] = 0;
            single[n++] = 5;
        }
        single[n++] = 0xd0;
        single[n++] = 0x09;
        assert_int_equal(push(&a, 11, 0xfffffff0u + 3600u, 1, single, n, &g), 0);
        assert_int_equal(g.n, 2);
        static const uint8_t trail[] = {0x02, 0x01, 0xd0, 0x09};
        nal_t wt = {trail, sizeof(trail)};
        assert_units(&g.v[1], &wt, 1);
        assert_int_equal(g.v[1].flags, CH_CODEC_AU_MARKER);
        gots_free(&g);
        ch_codec_assembler_fini(&a);
    }
}

static void test_unit_over_the_size_limit_is_broken_and_dropped_whole(void **state)
{
    (void)state;
    static ch_codec_stream_t s;
    ch_codec_assembler_t a;
    ch_codec_stream_init(&s, CH_CODEC_H264);
    ch_codec_assembler_init(&a, &s);
    gots_t g = {.n = 0};
    static const uint8_t sei[] = {0x06, 0x05, 0x01, 0x80};
    assert_int_equal(push(&a, 0, 3600, 0, sei, sizeof(sei), &g), 0);
    /* One FU-A of 17 MiB in 60,000-byte fragments. */
    size_t frag = 60000, total = 17u << 20;
    uint8_t *pay = ch_malloc(frag + 2);
    uint16_t seq = 1;
    for (size_t pos = 1; pos < total; pos += frag - 2, seq++) {
        size_t body = total - pos < frag - 2 ? total - pos : frag - 2;
        pay[0] = 0x7c;
        pay[1] = (uint8_t)((pos == 1 ? 0x80 : 0) | (pos + body == total ? 0x40 : 0) | 5);
        memset(pay + 2, 0xab, body);
        assert_int_equal(push(&a, seq, 3600, pos + body == total, pay, 2 + body, &g), 0);
    }
    ch_free(pay);
    assert_int_equal(g.n, 1);
    assert_true(g.v[0].flags & CH_CODEC_AU_BROKEN);
    nal_t want = {sei, sizeof(sei)};
    assert_units(&g.v[0], &want, 1);
    gots_free(&g);
    /* The next unit is whole again. */
    static const uint8_t p[] = {0x41, 0x9a};
    assert_int_equal(push(&a, seq, 7200, 1, p, sizeof(p), &g), 0);
    assert_int_equal(g.n, 1);
    assert_false(g.v[0].flags & CH_CODEC_AU_BROKEN);
    gots_free(&g);
    ch_codec_assembler_fini(&a);
}

/* ---- the assembler and muxer on real streams ----------------------------------------------- */

static char workdir[64];
static int have_ffmpeg;

static int group_setup(void **state)
{
    (void)state;
    have_ffmpeg = in_path("ffmpeg");
    snprintf(workdir, sizeof(workdir), "/tmp/ch_fmp4_XXXXXX");
    if (mkdtemp(workdir) == NULL) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Encodes 2 s of a 320x240 test pattern (25 fps, a keyframe every 25 frames). */
static int encode(const char *name, ch_codec_kind_t kind, clip_t *c)
{
    if (!have_ffmpeg) {
        return 0;
    }
    char path[128], cmd[1024];
    snprintf(path, sizeof(path), "%s/%s", workdir, name);
    if (access(path, R_OK) != 0) {
        snprintf(cmd, sizeof(cmd),
                 "ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi "
                 "-i testsrc2=size=320x240:rate=25 -t 2 %s -f %s '%s'",
                 kind == CH_CODEC_H264
                     ? "-c:v libx264 -preset veryfast -bf 0 -g 25 -sc_threshold 0 -slices 2"
                     : "-c:v libx265 -preset ultrafast -x265-params "
                       "keyint=25:min-keyint=25:scenecut=0:bframes=0:log-level=error:slices=2",
                 kind == CH_CODEC_H264 ? "h264" : "hevc", path);
        if (system(cmd) != 0) {
            return 0;
        }
    }
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->data = load(path, &c->len);
    if (c->data == NULL) {
        return 0;
    }
    split_clip(c);
    return 1;
}

/* Every access unit of the clip comes out whole, with exactly its NAL units (parameter sets
 * aside), its timestamp and its keyframe flag; the buffers stop growing after one pass. */
static void check_clip(const clip_t *c, const popts_t *o, ch_codec_assembler_t *a,
                       ch_codec_stream_t *s)
{
    pkts_t ps;
    packetize_clip(c, o, &ps);
    size_t next = 0;
    for (size_t i = 0; i < ps.n; i++) {
        ch_codec_rtp_t rtp;
        ch_codec_pkt_t info;
        assert_int_equal(ch_codec_rtp_parse(ps.v[i].p, ps.v[i].len, &rtp), 0);
        assert_int_equal(ch_codec_assembler_push(a, &rtp, &info), 0);
        const ch_codec_au_t *au;
        while ((au = ch_codec_assembler_next(a)) != NULL) {
            assert_true(next < c->au_count);
            const au_ref_t *r = &c->aus[next];
            nal_t want[64];
            size_t n = 0;
            for (size_t k = 0; k < r->count; k++) {
                const nal_t *u = &c->nals[r->first + k];
                if (!is_param(c->kind, type_of(c->kind, u->p))) {
                    assert_true(n < CH_ARRAY_SIZE(want));
                    want[n++] = *u;
                }
            }
            got_t x = {(uint8_t *)au->data, au->len, au->timestamp, au->flags, au->nal_count};
            assert_units(&x, want, n);
            assert_int_equal(au->timestamp, o->ts + (uint32_t)(3600u * next));
            assert_int_equal(!!(au->flags & CH_CODEC_AU_KEYFRAME), r->key);
            assert_false(au->flags & CH_CODEC_AU_BROKEN);
            assert_int_equal(!!(au->flags & CH_CODEC_AU_MARKER), o->markers);
            next++;
        }
    }
    ch_codec_assembler_flush(a);
    if (ch_codec_assembler_next(a) != NULL) {
        next++;
    }
    assert_int_equal(next, c->au_count);
    pkts_free(&ps);
    assert_true(s->sps_valid);
}

static void run_clip(const char *name, ch_codec_kind_t kind, int donl)
{
    clip_t c;
    memset(&c, 0, sizeof(c));
    if (!encode(name, kind, &c)) {
        skip();
    }
    assert_true(c.au_count == 50);
    static const popts_t opts[] = {
        {1400, 1, 1, 0, 65000, 0xffff0000u}, /* sequence and timestamp wrap within */
        {1200, 0, 1, 0, 0, 12345},
        {500, 1, 0, 0, 100, 0}, /* no markers: borders from timestamps */
        {64, 1, 1, 0, 7, 90000},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(opts); i++) {
        static ch_codec_stream_t s;
        ch_codec_assembler_t a;
        popts_t o = opts[i];
        o.donl = donl;
        ch_codec_stream_init(&s, kind);
        s.donl = (uint8_t)donl;
        ch_codec_assembler_init(&a, &s);
        check_clip(&c, &o, &a, &s);
        /* Warm: a second pass allocates nothing (the buffers keep their places and sizes). */
        void *d0 = a.buf[0].data, *d1 = a.buf[1].data;
        size_t c0 = a.buf[0].cap, c1 = a.buf[1].cap;
        ch_codec_stream_init(&s, kind);
        s.donl = (uint8_t)donl;
        check_clip(&c, &o, &a, &s);
        assert_ptr_equal(a.buf[0].data, d0);
        assert_ptr_equal(a.buf[1].data, d1);
        assert_int_equal(a.buf[0].cap, c0);
        assert_int_equal(a.buf[1].cap, c1);
        ch_codec_assembler_fini(&a);
    }
    clip_free(&c);
}

static void test_h264_clip_access_units_come_out_whole(void **state)
{
    (void)state;
    run_clip("c.h264", CH_CODEC_H264, 0);
}

static void test_h265_clip_access_units_come_out_whole(void **state)
{
    (void)state;
    run_clip("c.h265", CH_CODEC_H265, 0);
}

static void test_h265_clip_with_donl_comes_out_whole(void **state)
{
    (void)state;
    run_clip("c.h265", CH_CODEC_H265, 1);
}

/* ---- the muxing tool ---------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: test_fmp4 mux h264|h265 IN OUT [--mtu N] [--no-markers] "
                    "[--no-aggregate] [--donl] [--lose-every N]\n");
    return 2;
}

static int mux_tool(int argc, char **argv)
{
    if (argc < 5) {
        return usage();
    }
    clip_t c;
    memset(&c, 0, sizeof(c));
    c.kind = strcmp(argv[2], "h265") == 0 ? CH_CODEC_H265 : CH_CODEC_H264;
    popts_t o = {1400, 1, 1, 0, 65000, 0xffffffffu - 2u * 90000u}; /* both wrap early */
    long lose = 0;
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "--mtu") == 0 && i + 1 < argc) {
            o.mtu = (size_t)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-markers") == 0) {
            o.markers = 0;
        } else if (strcmp(argv[i], "--no-aggregate") == 0) {
            o.aggregate = 0;
        } else if (strcmp(argv[i], "--donl") == 0) {
            o.donl = 1;
        } else if (strcmp(argv[i], "--lose-every") == 0 && i + 1 < argc) {
            lose = strtol(argv[++i], NULL, 10);
        } else {
            return usage();
        }
    }
    if (o.mtu < 16 || o.mtu > 60000) {
        return usage();
    }
    c.data = load(argv[3], &c.len);
    if (c.data == NULL) {
        perror(argv[3]);
        return 1;
    }
    split_clip(&c);
    pkts_t ps;
    packetize_clip(&c, &o, &ps);
    FILE *out = fopen(argv[4], "wb");
    if (out == NULL) {
        perror(argv[4]);
        return 1;
    }
    static ch_codec_stream_t s;
    static ch_codec_assembler_t a;
    static ch_codec_fmp4_t m;
    ch_codec_stream_init(&s, c.kind);
    s.donl = (uint8_t)o.donl;
    ch_codec_assembler_init(&a, &s);
    ch_codec_fmp4_reset(&m);
    size_t cap = 1 << 20, muxed = 0, keys = 0, aus = 0, broken = 0, lost = 0, bytes = 0;
    uint8_t *frag = ch_malloc(cap);
    uint32_t serial = 0;
    for (size_t i = 0; i <= ps.n; i++) {
        if (i < ps.n) {
            if (lose > 0 && i % (size_t)lose == (size_t)lose - 1) {
                lost++;
                continue;
            }
            ch_codec_rtp_t rtp;
            ch_codec_pkt_t info;
            if (ch_codec_rtp_parse(ps.v[i].p, ps.v[i].len, &rtp) != 0 ||
                ch_codec_assembler_push(&a, &rtp, &info) < 0) {
                fprintf(stderr, "packet %zu refused\n", i);
                return 1;
            }
        } else {
            ch_codec_assembler_flush(&a);
        }
        const ch_codec_au_t *au;
        while ((au = ch_codec_assembler_next(&a)) != NULL) {
            aus++;
            broken += (au->flags & CH_CODEC_AU_BROKEN) != 0;
            if (CH_CODEC_FMP4_FRAGMENT_OVERHEAD + au->len > cap) {
                cap = 2 * (CH_CODEC_FMP4_FRAGMENT_OVERHEAD + au->len);
                frag = ch_realloc(frag, cap);
            }
            int n = ch_codec_fmp4_fragment(&m, &s, au, frag, cap);
            if (n == CH_EAGAIN) {
                continue;
            }
            if (n < 0) {
                fprintf(stderr, "fragment: %s\n", ch_strerror(n));
                return 1;
            }
            if (m.init_serial != serial) {
                /* A second init segment mid-file is what MSE takes; this tool's clips have
                 * one set of parameter sets, so it happens once. */
                fwrite(m.init, 1, m.init_len, out);
                bytes += m.init_len;
                serial = m.init_serial;
            }
            fwrite(frag, 1, (size_t)n, out);
            bytes += (size_t)n;
            muxed++;
            keys += (au->flags & CH_CODEC_AU_KEYFRAME) != 0;
        }
    }
    if (fclose(out) != 0) {
        perror(argv[4]);
        return 1;
    }
    printf("packets=%zu lost=%zu access_units=%zu reference_units=%zu broken=%zu muxed=%zu "
           "keyframes=%zu dropped=%llu inits=%u bytes=%zu codec=%s width=%u height=%u\n",
           ps.n, lost, aus, c.au_count, broken, muxed, keys, (unsigned long long)m.dropped,
           m.init_serial, bytes, m.codec, m.width, m.height);
    ch_free(frag);
    ch_codec_assembler_fini(&a);
    pkts_free(&ps);
    clip_free(&c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "mux") == 0) {
        return mux_tool(argc, argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_init_segment_is_byte_exact),
        cmocka_unit_test(test_h265_init_segment_is_byte_exact),
        cmocka_unit_test(test_init_segment_waits_for_every_parameter_set),
        cmocka_unit_test(test_fragments_are_byte_exact_with_unwrapped_decode_times),
        cmocka_unit_test(test_decode_time_crosses_many_wraps_and_survives_clock_jumps),
        cmocka_unit_test(test_muxer_waits_for_a_keyframe_and_drops_until_the_next_after_loss),
        cmocka_unit_test(test_new_parameter_sets_rebuild_the_init_segment_at_the_next_keyframe),
        cmocka_unit_test(
            test_reconnect_waits_for_a_keyframe_and_the_init_follows_new_parameter_sets),
        cmocka_unit_test(test_single_units_make_one_access_unit_per_marker),
        cmocka_unit_test(test_timestamp_change_ends_a_unit_without_marker),
        cmocka_unit_test(test_stap_a_and_fu_a_are_put_back_together),
        cmocka_unit_test(test_lost_fragments_break_the_access_unit),
        cmocka_unit_test(test_fu_start_while_another_is_open_cuts_the_first),
        cmocka_unit_test(test_malformed_and_unsupported_payloads_break_the_unit),
        cmocka_unit_test(test_h265_ap_and_fu_with_and_without_donl),
        cmocka_unit_test(test_unit_over_the_size_limit_is_broken_and_dropped_whole),
        cmocka_unit_test(test_h264_clip_access_units_come_out_whole),
        cmocka_unit_test(test_h265_clip_access_units_come_out_whole),
        cmocka_unit_test(test_h265_clip_with_donl_comes_out_whole),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
