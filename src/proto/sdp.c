/*
 * SDP (RFC 8866) as RTSP servers and cameras send it in DESCRIBE answers (proto.h), and the
 * resolution of its control URLs.
 *
 * Only what a relay needs is kept: the media sections, their payload types with rtpmap and
 * fmtp, control, connection, bandwidth and direction. The rest (o=, t=, k=, most attributes)
 * is skipped, since cameras fill those lines with every variation imaginable and nothing here
 * depends on them. What is refused is what would make the lines themselves ambiguous: bytes
 * that are not text, a bare CR, a line that is not "<letter>=".
 */
#include "proto/proto.h"
#include "proto/text.h"

#include <string.h>

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Splits *s at the next run of spaces; the part before it is returned. */
static ch_slice_t next_word(ch_slice_t *s)
{
    ch_slice_t w = ch_proto__split(s, ' ');
    while (s->len > 0 && s->ptr[0] == ' ') {
        s->ptr++;
        s->len--;
    }
    return w;
}

/* Parses "<media> <port>[/<count>] <proto> <fmt> ..." into m. */
static int parse_media_line(ch_slice_t v, ch_proto_sdp_media_t *m)
{
    memset(m, 0, sizeof(*m));
    ch_slice_t rest = v;
    m->type = next_word(&rest);
    ch_slice_t port = next_word(&rest);
    m->proto = next_word(&rest);
    if (m->type.len == 0 || port.len == 0 || m->proto.len == 0 || rest.len == 0) {
        return CH_EPARSE;
    }
    for (size_t i = 0; i < m->type.len; i++) {
        unsigned char c = (unsigned char)m->type.ptr[i];
        if (c <= 0x20 || c >= 0x7f) {
            return CH_EPARSE;
        }
    }
    ch_slice_t count = port;
    port = ch_proto__split(&count, '/');
    uint32_t x;
    if (ch_proto__u32(port, 65535, &x) < 0) {
        return CH_EPARSE;
    }
    m->port = (uint16_t)x;
    if (port.len < v.len && count.ptr > port.ptr + port.len &&
        ch_proto__u32(count, 65535, &x) < 0) {
        return CH_EPARSE;
    }
    /* RTP profiles name payload types by number; other protocols (udp, TCP/MSRP) by other
     * tokens, which a relay of RTP streams has no use for. */
    int rtp = m->proto.len >= 4 && ch_proto__ieq((ch_slice_t){m->proto.ptr, 4}, "rtp/");
    while (rest.len > 0) {
        ch_slice_t fmt = next_word(&rest);
        if (fmt.len == 0) {
            continue;
        }
        if (!rtp) {
            continue;
        }
        if (ch_proto__u32(fmt, 127, &x) < 0) {
            return CH_EPARSE;
        }
        if (m->num_formats < CH_PROTO_SDP_MAX_FORMATS) {
            m->formats[m->num_formats].pt = (uint8_t)x;
            m->num_formats++;
        }
    }
    return 0;
}

/* Reads the payload type that starts an rtpmap or fmtp value and finds its format in m.
 * Returns NULL (the attribute is then skipped) when malformed or not listed. */
static ch_proto_sdp_format_t *format_of(ch_proto_sdp_media_t *m, ch_slice_t *v)
{
    ch_slice_t pt = next_word(v);
    uint32_t x;
    if (m == NULL || ch_proto__u32(pt, 127, &x) < 0) {
        return NULL;
    }
    for (size_t k = 0; k < m->num_formats; k++) {
        if (m->formats[k].pt == x) {
            return &m->formats[k];
        }
    }
    return NULL;
}

/* a=rtpmap:<pt> <encoding>/<clock>[/<params>] */
static void parse_rtpmap(ch_proto_sdp_media_t *m, ch_slice_t v)
{
    ch_proto_sdp_format_t *f = format_of(m, &v);
    if (f == NULL) {
        return;
    }
    ch_slice_t rest = ch_proto__trim(v);
    ch_slice_t enc = ch_proto__split(&rest, '/');
    ch_slice_t clock = ch_proto__split(&rest, '/');
    uint32_t rate;
    if (enc.len == 0 || ch_proto__u32(clock, UINT32_MAX, &rate) < 0 || rate == 0) {
        return;
    }
    for (size_t i = 0; i < enc.len; i++) {
        if (enc.ptr[i] == ' ' || enc.ptr[i] == '\t') {
            return;
        }
    }
    f->encoding = enc;
    f->clock_rate = rate;
    f->enc_params = rest;
}

/* a=fmtp:<pt> <parameters> */
static void parse_fmtp(ch_proto_sdp_media_t *m, ch_slice_t v)
{
    ch_proto_sdp_format_t *f = format_of(m, &v);
    if (f != NULL) {
        f->fmtp = ch_proto__trim(v);
    }
}

static void set_once(ch_slice_t *field, ch_slice_t v)
{
    if (field->len == 0) {
        *field = v;
    }
}

/* Handles one a= line; m is NULL at session level. */
static void parse_attribute(ch_proto_sdp_t *sdp, ch_proto_sdp_media_t *m, ch_slice_t v)
{
    ch_slice_t value = v;
    ch_slice_t name = ch_proto__split(&value, ':');
    value = ch_proto__trim(value);
    if (ch_proto__eq(name, "control")) {
        set_once(m != NULL ? &m->control : &sdp->control, value);
    } else if (ch_proto__eq(name, "rtpmap")) {
        parse_rtpmap(m, value);
    } else if (ch_proto__eq(name, "fmtp")) {
        parse_fmtp(m, value);
    } else if (ch_proto__eq(name, "range") && m == NULL) {
        set_once(&sdp->range, value);
    } else if (m != NULL && value.len == 0 && name.len == v.len &&
               (ch_proto__eq(name, "sendonly") || ch_proto__eq(name, "recvonly") ||
                ch_proto__eq(name, "sendrecv") || ch_proto__eq(name, "inactive"))) {
        m->direction = name;
    }
}

int ch_proto_sdp_parse(const char *text, size_t len, ch_proto_sdp_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    int seen_version = 0;
    ch_proto_sdp_media_t *m = NULL;
    while (i < len) {
        size_t start = i;
        while (i < len && text[i] != '\n') {
            i++;
        }
        size_t end = i;
        if (i < len) {
            i++; /* the LF */
        }
        if (end > start && text[end - 1] == '\r') {
            end--;
        }
        for (size_t k = start; k < end; k++) {
            unsigned char c = (unsigned char)text[k];
            /* CR here is a bare CR; NUL and other controls are not text. */
            if ((c < 0x20 && c != '\t') || c == 0x7f) {
                return CH_EPARSE;
            }
        }
        /* Some cameras pad lines with trailing spaces, or end the body with an empty line.
         * Leading whitespace is not trimmed: no sender produces it, and "<letter>=" must
         * start the line. */
        while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t')) {
            end--;
        }
        ch_slice_t line = {text + start, end - start};
        if (line.len == 0) {
            continue;
        }
        if (line.len < 2 || line.ptr[1] != '=' || line.ptr[0] < 'a' || line.ptr[0] > 'z') {
            return CH_EPARSE;
        }
        char type = line.ptr[0];
        ch_slice_t v = {line.ptr + 2, line.len - 2};
        if (!seen_version) {
            if (type != 'v' || !ch_proto__eq(v, "0")) {
                return CH_EPARSE;
            }
            seen_version = 1;
            continue;
        }
        switch (type) {
        case 'o':
            set_once(&out->origin, v);
            break;
        case 's':
            set_once(&out->session_name, v);
            break;
        case 'c':
            set_once(m != NULL ? &m->connection : &out->connection, v);
            break;
        case 'b':
            set_once(m != NULL ? &m->bandwidth : &out->bandwidth, v);
            break;
        case 'm':
            if (out->num_media == CH_PROTO_SDP_MAX_MEDIA) {
                return CH_ETOOBIG;
            }
            m = &out->media[out->num_media];
            if (parse_media_line(v, m) < 0) {
                return CH_EPARSE;
            }
            out->num_media++;
            break;
        case 'a':
            parse_attribute(out, m, v);
            break;
        default:
            break; /* t=, i=, u=, e=, p=, k=, r=, z= and future letters */
        }
    }
    return seen_version ? 0 : CH_EPARSE;
}

const ch_proto_sdp_format_t *ch_proto_sdp_format_find(const ch_proto_sdp_media_t *m, unsigned pt)
{
    for (size_t k = 0; k < m->num_formats; k++) {
        if (m->formats[k].pt == pt) {
            return &m->formats[k];
        }
    }
    return NULL;
}

int ch_proto_sdp_fmtp_param(ch_slice_t fmtp, const char *name, ch_slice_t *value)
{
    ch_slice_t rest = fmtp;
    while (rest.len > 0) {
        ch_slice_t v = ch_proto__trim(ch_proto__split(&rest, ';'));
        ch_slice_t n = ch_proto__trim(ch_proto__split(&v, '='));
        if (n.len > 0 && ch_proto__ieq(n, name)) {
            *value = ch_proto__trim(v);
            return 0;
        }
    }
    return CH_ENOENT;
}

/* RFC 3986 section 3.1: a reference that starts with "scheme:" is absolute. */
static int is_absolute(ch_slice_t s)
{
    if (s.len == 0 ||
        !((s.ptr[0] >= 'a' && s.ptr[0] <= 'z') || (s.ptr[0] >= 'A' && s.ptr[0] <= 'Z'))) {
        return 0;
    }
    for (size_t i = 1; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == ':') {
            return 1;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '+' ||
                 c == '-' || c == '.';
        if (!ok) {
            return 0;
        }
    }
    return 0;
}

int ch_proto_sdp_resolve_control(ch_slice_t base, ch_slice_t control, ch_buf_t *out)
{
    control = ch_proto__trim(control);
    if (is_absolute(control)) {
        ch_buf_append(out, control.ptr, control.len);
        return 0;
    }
    if (base.len == 0) {
        return CH_EPARSE;
    }
    ch_buf_append(out, base.ptr, base.len);
    if (control.len == 0 || ch_proto__eq(control, "*")) {
        return 0;
    }
    /* Exactly one '/' where base and control meet, however many either side has: a camera
     * that sends "/trackID=1" against a base ending in '/' means the same track. */
    while (control.len > 0 && control.ptr[0] == '/') {
        control.ptr++;
        control.len--;
    }
    if (base.ptr[base.len - 1] != '/') {
        ch_buf_append_char(out, '/');
    }
    ch_buf_append(out, control.ptr, control.len);
    return 0;
}
