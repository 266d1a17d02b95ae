/*
 * codec/stream.c: the depacketizer of codec.h, H.264 over RTP (RFC 6184) and H.265 over RTP
 * (RFC 7798), reduced to what a forwarding relay needs.
 *
 * Per packet the work is a few header bytes: one byte (H.264) or two (H.265) say whether the
 * payload is one NAL unit, an aggregation of several, or a fragment of one. Types are
 * gathered as bits of a 64-bit mask, and the questions "keyframe?" and "parameter set?" are
 * then one AND each with a per-codec mask, instead of a chain of comparisons per NAL unit.
 * Payload bytes are read only when a parameter set goes by: compared with the stored copy
 * (a memcmp of a few dozen bytes, once per keyframe) and copied when it differs.
 */
#include "codec/codec.h"
#include "codec/nal.h"

#include <assert.h>
#include <string.h>

/* One packet's walk: the stream, the report being filled, and the types started here. */
typedef struct walk {
    ch_codec_stream_t *s;
    ch_codec_pkt_t *info;
    uint64_t started;
    uint64_t params; /* the parameter set mask of the stream's codec */
} walk_t;

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static unsigned nal_type(ch_codec_kind_t kind, const uint8_t *nal)
{
    return kind == CH_CODEC_H264 ? nal[0] & 0x1fu : (nal[0] >> 1) & 0x3fu;
}

void ch_codec_stream_init(ch_codec_stream_t *s, ch_codec_kind_t kind)
{
    assert(kind == CH_CODEC_H264 || kind == CH_CODEC_H265);
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->fu_type = -1;
}

/* Stores the parameter set of the given type, made of hdr[0, hdr_len) then body[0, body_len)
 * (two parts because a fragmented or DONL-carrying unit has its header apart from its body),
 * when it differs from the stored one. An SPS is parsed at once, so that sps_info always
 * describes the stored SPS. Returns 1 when something changed, 0 when not, or the SPS parser's
 * error (the bytes are stored anyway: they are what the camera sends). */
static int capture(ch_codec_stream_t *s, unsigned type, const uint8_t *hdr, size_t hdr_len,
                   const uint8_t *body, size_t body_len)
{
    ch_codec_param_t *slot;
    int is_sps = 0;
    if (s->kind == CH_CODEC_H264) {
        is_sps = type == H264_SPS;
        slot = is_sps ? &s->sps : &s->pps;
    } else {
        is_sps = type == H265_SPS;
        slot = type == H265_VPS ? &s->vps : is_sps ? &s->sps : &s->pps;
    }
    size_t len = hdr_len + body_len;
    if (len > CH_CODEC_PARAM_MAX) {
        s->params_dropped++;
        return 0;
    }
    if (slot->len == len && memcmp(slot->data, hdr, hdr_len) == 0 &&
        (body_len == 0 || memcmp(slot->data + hdr_len, body, body_len) == 0)) {
        return 0;
    }
    memcpy(slot->data, hdr, hdr_len);
    if (body_len > 0) { /* body may be NULL then, which memcpy must not see */
        memcpy(slot->data + hdr_len, body, body_len);
    }
    slot->len = (uint16_t)len;
    s->params_version++;
    if (!is_sps) {
        return 1;
    }
    int rc = s->kind == CH_CODEC_H264 ? ch_codec_h264_sps_parse(slot->data, len, &s->sps_info)
                                      : ch_codec_h265_sps_parse(slot->data, len, &s->sps_info);
    s->sps_valid = rc == 0;
    return rc == 0 ? 1 : rc;
}

/* Records a NAL unit carried whole in this packet. */
static void whole_nal(walk_t *w, unsigned type, const uint8_t *hdr, size_t hdr_len,
                      const uint8_t *body, size_t body_len)
{
    uint64_t bit = BIT(type);
    w->started |= bit;
    w->info->nal_count++;
    if (bit & w->params) {
        if (capture(w->s, type, hdr, hdr_len, body, body_len) > 0) {
            w->info->flags |= CH_CODEC_PKT_PARAMS;
        }
    }
}

/* Appends to the parameter set being put back together, or marks it cut when it outgrows the
 * buffer (it is then dropped at its end). */
static void fu_append(ch_codec_stream_t *s, const uint8_t *p, size_t n)
{
    if (s->fu_over || n > (size_t)CH_CODEC_PARAM_MAX - s->fu_len) {
        s->fu_over = 1;
        return;
    }
    memcpy(s->fu_buf + s->fu_len, p, n);
    s->fu_len = (uint16_t)(s->fu_len + n);
}

/* One fragment (FU-A or FU) of a NAL unit of the given type: hdr is the unit's rebuilt NAL
 * header, data the fragment's bytes. Only parameter sets are put back together: every other
 * unit is the relay's to forward, not to read. */
static int fragment(walk_t *w, int start, int end, unsigned type, const uint8_t *hdr,
                    size_t hdr_len, const uint8_t *data, size_t len)
{
    ch_codec_stream_t *s = w->s;
    uint64_t bit = BIT(type);
    w->info->flags |= CH_CODEC_PKT_FRAGMENT;
    if (start && end) {
        return CH_EPARSE; /* both RFCs forbid a fragment that is a whole unit */
    }
    w->info->nal_types |= bit;
    int is_param = (bit & w->params) != 0;
    if (start) {
        w->started |= bit;
        w->info->nal_count++;
        s->fu_type = (int)type;
        s->fu_len = 0;
        s->fu_over = 0;
        if (is_param) {
            fu_append(s, hdr, hdr_len);
        }
    } else if (s->fu_type != (int)type) {
        w->info->flags |= CH_CODEC_PKT_ORPHAN;
        s->fu_type = -1;
        return 0;
    }
    if (is_param) {
        fu_append(s, data, len);
    }
    if (end) {
        if (is_param) {
            if (s->fu_over) {
                s->params_dropped++;
            } else if (capture(s, type, s->fu_buf, s->fu_len, NULL, 0) > 0) {
                w->info->flags |= CH_CODEC_PKT_PARAMS;
            }
        }
        s->fu_type = -1;
    }
    return 0;
}

/* An aggregation packet (STAP-A, AP): units from p[off] on, each a 16-bit size then the unit,
 * with DON fields first when donl (2 bytes before the first unit, 1 before the others: RFC
 * 7798 4.4.2). The whole packet is checked before anything is recorded, so that a packet with
 * a bad size claims nothing. min is the smallest unit (its NAL header). */
static int aggregation(walk_t *w, const uint8_t *p, size_t n, size_t off, size_t min, int donl)
{
    size_t count = 0;
    for (size_t i = off; i < n;) {
        size_t skip = donl ? (count == 0 ? 2 : 1) : 0;
        if (n - i < skip + 2) {
            return CH_EPARSE;
        }
        size_t size = be16(p + i + skip);
        i += skip + 2;
        if (size < min || size > n - i) {
            return CH_EPARSE;
        }
        unsigned type = nal_type(w->s->kind, p + i);
        if (type >= (w->s->kind == CH_CODEC_H264 ? 24u : 48u)) {
            return CH_EPARSE; /* an aggregation or fragment inside an aggregation */
        }
        i += size;
        count++;
    }
    if (count == 0) {
        return CH_EPARSE;
    }
    for (size_t i = off, k = 0; i < n; k++) {
        i += donl ? (k == 0 ? 2 : 1) : 0;
        size_t size = be16(p + i);
        i += 2;
        whole_nal(w, nal_type(w->s->kind, p + i), p + i, size, NULL, 0);
        i += size;
    }
    w->s->fu_type = -1;
    return 0;
}

static int h264_payload(walk_t *w, const uint8_t *p, size_t n)
{
    if (n < 1) {
        return CH_EPARSE;
    }
    unsigned type = p[0] & 0x1fu;
    if (type >= 1 && type <= 23) {
        w->s->fu_type = -1;
        whole_nal(w, type, p, n, NULL, 0);
        return 0;
    }
    if (type == H264_STAP_A) {
        return aggregation(w, p, n, 1, 1, 0);
    }
    if (type == H264_FU_A) {
        if (n < 3) {
            return CH_EPARSE;
        }
        unsigned inner = p[1] & 0x1fu;
        if (inner == 0 || inner > 23) {
            return CH_EPARSE;
        }
        /* The unit's header: F and NRI from the indicator, the type from the FU header. */
        uint8_t hdr = (uint8_t)((p[0] & 0xe0) | inner);
        return fragment(w, p[1] >> 7, (p[1] >> 6) & 1, inner, &hdr, 1, p + 2, n - 2);
    }
    /* STAP-B, MTAP16, MTAP24 and FU-B exist only in the interleaved mode, which cameras do
     * not use; 0, 30 and 31 are reserved. */
    return CH_EUNSUPP;
}

static int h265_payload(walk_t *w, const uint8_t *p, size_t n)
{
    if (n < 2) {
        return CH_EPARSE;
    }
    unsigned type = (p[0] >> 1) & 0x3fu;
    if ((p[1] & 7) == 0) {
        return CH_EPARSE; /* nuh_temporal_id_plus1 may not be 0 */
    }
    size_t donl = w->s->donl ? 2 : 0;
    if (type < H265_AP) {
        if (n < 2 + donl) {
            return CH_EPARSE;
        }
        w->s->fu_type = -1;
        whole_nal(w, type, p, 2, p + 2 + donl, n - 2 - donl);
        return 0;
    }
    if (type == H265_AP) {
        return aggregation(w, p, n, 2, 2, w->s->donl);
    }
    if (type == H265_FU) {
        if (n < 3) {
            return CH_EPARSE;
        }
        unsigned start = p[2] >> 7, inner = p[2] & 0x3fu;
        size_t off = 3 + (start ? donl : 0); /* DONL only in the first fragment */
        if (inner >= H265_AP || n < off) {
            return CH_EPARSE;
        }
        uint8_t hdr[2] = {(uint8_t)((p[0] & 0x81) | (inner << 1)), p[1]};
        return fragment(w, (int)start, (p[2] >> 6) & 1, inner, hdr, 2, p + off, n - off);
    }
    return CH_EUNSUPP; /* PACI (50) carries nothing a relay needs; 51..63 are unspecified */
}

int ch_codec_stream_push(ch_codec_stream_t *s, const ch_codec_rtp_t *rtp, ch_codec_pkt_t *info)
{
    /* Access units from the RTP header alone (RFC 6184 5.1, RFC 7798 4.1): a new one starts
     * after a marker or when the timestamp moves, which still works when the marker packet
     * was lost or the camera never sets the marker. */
    uint32_t flags = rtp->marker ? CH_CODEC_PKT_AU_END : 0;
    if (!s->started || s->last_marker || rtp->timestamp != s->last_ts) {
        flags |= CH_CODEC_PKT_AU_START;
    }
    if (s->started && (uint16_t)(s->last_seq + 1u) != rtp->seq) {
        flags |= CH_CODEC_PKT_GAP;
        s->fu_type = -1; /* a fragment after a loss would be put together wrong */
    }
    s->started = 1;
    s->last_marker = rtp->marker;
    s->last_seq = rtp->seq;
    s->last_ts = rtp->timestamp;

    info->flags = flags;
    info->nal_count = 0;
    info->nal_types = 0;
    int h264 = s->kind == CH_CODEC_H264;
    walk_t w = {s, info, 0, h264 ? H264_PARAMS : H265_PARAMS};
    int rc = h264 ? h264_payload(&w, rtp->payload, rtp->payload_len)
                  : h265_payload(&w, rtp->payload, rtp->payload_len);
    if (rc < 0) {
        info->nal_count = 0;
        info->nal_types = 0;
        info->flags &= ~(uint32_t)CH_CODEC_PKT_FRAGMENT;
        return rc;
    }
    info->nal_types |= w.started;
    if (w.started & (h264 ? H264_KEY : H265_KEY)) {
        info->flags |= CH_CODEC_PKT_KEYFRAME;
    }
    return 0;
}

/* ---- SDP fmtp --------------------------------------------------------------------------- */

/* Decodes one base64 parameter set and stores it. want is the mask of types the key may
 * carry. */
static int take_sprop(ch_codec_stream_t *s, const char *b64, size_t len, uint64_t want)
{
    uint8_t nal[CH_CODEC_PARAM_MAX];
    int n = ch_codec_base64_decode(b64, len, nal, sizeof(nal));
    if (n == CH_ETOOBIG) {
        s->params_dropped++;
        return 0;
    }
    size_t min = s->kind == CH_CODEC_H264 ? 1 : 2;
    if (n < 0 || (size_t)n < min) {
        return CH_EPARSE;
    }
    unsigned type = nal_type(s->kind, nal);
    if (!(BIT(type) & want)) {
        return CH_EPARSE;
    }
    int rc = capture(s, type, nal, (size_t)n, NULL, 0);
    return rc < 0 ? rc : 0;
}

/* Each comma-separated item of a sprop value. */
static int take_sprop_list(ch_codec_stream_t *s, const char *v, size_t len, uint64_t want)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ',') {
            j++;
        }
        if (j > i) {
            int rc = take_sprop(s, v + i, j - i, want);
            if (rc < 0) {
                return rc;
            }
        }
        i = j + 1;
    }
    return 0;
}

static int key_is(const char *k, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n == m && memcmp(k, lit, m) == 0;
}

int ch_codec_stream_set_fmtp(ch_codec_stream_t *s, const char *fmtp, size_t len)
{
    size_t i = 0;
    /* "a=fmtp:96 " (or "fmtp:96 ") in front is skipped: the parameters follow the first
     * space. */
    if ((len >= 2 && memcmp(fmtp, "a=", 2) == 0) || (len >= 5 && memcmp(fmtp, "fmtp:", 5) == 0)) {
        while (i < len && fmtp[i] != ' ') {
            i++;
        }
    }
    while (i < len) {
        while (i < len && (fmtp[i] == ' ' || fmtp[i] == '\t' || fmtp[i] == ';')) {
            i++;
        }
        size_t k = i;
        while (i < len && fmtp[i] != ';') {
            i++;
        }
        size_t end = i;
        while (end > k && (fmtp[end - 1] == ' ' || fmtp[end - 1] == '\t' || fmtp[end - 1] == '\r' ||
                           fmtp[end - 1] == '\n')) {
            end--;
        }
        const char *eq = memchr(fmtp + k, '=', end - k);
        if (eq == NULL) {
            continue;
        }
        size_t klen = (size_t)(eq - (fmtp + k));
        const char *v = eq + 1;
        size_t vlen = (size_t)(fmtp + end - v);
        const char *key = fmtp + k;
        int rc = 0;
        if (s->kind == CH_CODEC_H264 && key_is(key, klen, "sprop-parameter-sets")) {
            rc = take_sprop_list(s, v, vlen, H264_PARAMS);
        } else if (s->kind == CH_CODEC_H265 && key_is(key, klen, "sprop-vps")) {
            rc = take_sprop_list(s, v, vlen, BIT(H265_VPS));
        } else if (s->kind == CH_CODEC_H265 && key_is(key, klen, "sprop-sps")) {
            rc = take_sprop_list(s, v, vlen, BIT(H265_SPS));
        } else if (s->kind == CH_CODEC_H265 && key_is(key, klen, "sprop-pps")) {
            rc = take_sprop_list(s, v, vlen, BIT(H265_PPS));
        } else if (s->kind == CH_CODEC_H265 && key_is(key, klen, "sprop-max-don-diff")) {
            int64_t d;
            if (ch_parse_int64(v, vlen, &d) != 0 || d < 0 || d > 32767) {
                return CH_EPARSE;
            }
            s->donl = d > 0;
        }
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}
