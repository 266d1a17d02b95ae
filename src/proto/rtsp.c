/*
 * RTSP header values and '$'-interleaved frames (proto.h).
 *
 * Every parser here reads a slice that the head parser has already checked (no control bytes
 * other than HTAB, no line ends), so these only have to care about the grammar of one value.
 * They are strict where a wrong guess would make us talk to the wrong stream (channels,
 * ports, session ids) and lenient where cameras are known to differ and nothing depends on
 * the difference (unknown parameters, spaces around ';', quoting of mode).
 */
#include "proto/proto.h"
#include "proto/text.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

/* RFC 9110 tchar, as in http_head.c: what a transport profile or parameter name may hold. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int all_tchar(ch_slice_t s)
{
    if (s.len == 0) {
        return 0;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (!is_tchar((unsigned char)s.ptr[i])) {
            return 0;
        }
    }
    return 1;
}

int ch_proto_rtsp_cseq(const ch_proto_header_t *headers, size_t n, uint32_t *out)
{
    uint64_t v;
    int rc = ch_proto__header_number(headers, n, "cseq", 10, UINT32_MAX, &v);
    if (rc == 0) {
        *out = (uint32_t)v;
    }
    return rc;
}

/* Splits *list at the first c outside double quotes, as ch_proto__split does. An unclosed
 * quote is CH_EPARSE. */
static int split_unquoted(ch_slice_t *list, char c, ch_slice_t *head)
{
    int quoted = 0;
    for (size_t i = 0; i < list->len; i++) {
        char ch = list->ptr[i];
        if (ch == '"') {
            quoted = !quoted;
        } else if (ch == c && !quoted) {
            *head = (ch_slice_t){list->ptr, i};
            list->ptr += i + 1;
            list->len -= i + 1;
            return 0;
        }
    }
    if (quoted) {
        return CH_EPARSE;
    }
    *head = *list;
    list->ptr += list->len;
    list->len = 0;
    return 0;
}

/* Splits a parameter "name[=value]" (already trimmed) into its parts; a value in double
 * quotes loses them. CH_EPARSE when the name is not a token or a quote is misplaced. */
static int split_param(ch_slice_t p, ch_slice_t *name, ch_slice_t *value)
{
    ch_slice_t rest = p;
    *name = ch_proto__trim(ch_proto__split(&rest, '='));
    *value = ch_proto__trim(rest);
    if (!all_tchar(*name)) {
        return CH_EPARSE;
    }
    if (value->len > 0 && value->ptr[0] == '"') {
        if (value->len < 2 || value->ptr[value->len - 1] != '"') {
            return CH_EPARSE;
        }
        value->ptr++;
        value->len -= 2;
    }
    for (size_t i = 0; i < value->len; i++) {
        if (value->ptr[i] == '"') {
            return CH_EPARSE;
        }
    }
    return 0;
}

int ch_proto_rtsp_parse_session(ch_slice_t value, ch_proto_rtsp_session_t *out)
{
    memset(out, 0, sizeof(*out));
    out->timeout = CH_PROTO_RTSP_DEFAULT_TIMEOUT;
    ch_slice_t rest = value;
    ch_slice_t id = ch_proto__trim(ch_proto__split(&rest, ';'));
    if (id.len == 0 || id.len > CH_PROTO_RTSP_MAX_SESSION_ID) {
        return CH_EPARSE;
    }
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.ptr[i];
        /* The id is echoed back in our requests: nothing that could end or split a header. */
        if (c <= 0x20 || c >= 0x7f || c == ',' || c == ';' || c == '"' || c == '\\') {
            return CH_EPARSE;
        }
    }
    out->id = id;
    while (rest.len > 0) {
        ch_slice_t param = ch_proto__trim(ch_proto__split(&rest, ';'));
        if (param.len == 0) {
            continue;
        }
        ch_slice_t name, v;
        if (split_param(param, &name, &v) < 0) {
            return CH_EPARSE;
        }
        if (ch_proto__ieq(name, "timeout")) {
            if (ch_proto__u32(v, 999999999, &out->timeout) < 0) {
                return CH_EPARSE;
            }
            out->has_timeout = 1;
        }
    }
    return 0;
}

/* Parses "a-b" or "a" (then b = a + 1) with both in [0, max] and a <= b. */
static int parse_pair(ch_slice_t v, uint32_t max, uint32_t pair[2])
{
    ch_slice_t rest = v;
    ch_slice_t a = ch_proto__split(&rest, '-');
    if (ch_proto__u32(a, max, &pair[0]) < 0) {
        return CH_EPARSE;
    }
    if (a.len == v.len) {
        /* A single number: the RTCP channel or port is the next one (RFC 2326 12.39). */
        if (pair[0] == max) {
            return CH_EPARSE;
        }
        pair[1] = pair[0] + 1;
        return 0;
    }
    if (ch_proto__u32(rest, max, &pair[1]) < 0 || pair[1] < pair[0]) {
        return CH_EPARSE;
    }
    return 0;
}

/* Parses 1 to 8 hex digits. */
static int parse_hex32(ch_slice_t v, uint32_t *out)
{
    if (v.len == 0 || v.len > 8) {
        return CH_EPARSE;
    }
    uint32_t x = 0;
    for (size_t i = 0; i < v.len; i++) {
        int d = ch_hex_digit((unsigned char)v.ptr[i]);
        if (d < 0) {
            return CH_EPARSE;
        }
        x = (x << 4) | (uint32_t)d;
    }
    *out = x;
    return 0;
}

/* Reads one parameter of a transport specification into t. */
static int transport_param(ch_slice_t name, ch_slice_t v, ch_proto_rtsp_transport_t *t)
{
    uint32_t pair[2];
    if (ch_proto__ieq(name, "unicast")) {
        t->multicast = 0;
    } else if (ch_proto__ieq(name, "multicast")) {
        t->multicast = 1;
    } else if (ch_proto__ieq(name, "interleaved")) {
        if (parse_pair(v, 255, pair) < 0) {
            return CH_EPARSE;
        }
        t->has_interleaved = 1;
        t->interleaved[0] = (uint8_t)pair[0];
        t->interleaved[1] = (uint8_t)pair[1];
    } else if (ch_proto__ieq(name, "client_port") || ch_proto__ieq(name, "server_port")) {
        if (parse_pair(v, 65535, pair) < 0) {
            return CH_EPARSE;
        }
        if (name.ptr[0] == 'c' || name.ptr[0] == 'C') {
            t->has_client_port = 1;
            t->client_port[0] = (uint16_t)pair[0];
            t->client_port[1] = (uint16_t)pair[1];
        } else {
            t->has_server_port = 1;
            t->server_port[0] = (uint16_t)pair[0];
            t->server_port[1] = (uint16_t)pair[1];
        }
    } else if (ch_proto__ieq(name, "ssrc")) {
        /* RFC 2326 says 8 hex digits; some servers send decimal or more digits. The SSRC is
         * informative (the RTP packets carry it), so a strange one is ignored, not refused. */
        t->has_ssrc = parse_hex32(v, &t->ssrc) == 0;
    } else if (ch_proto__ieq(name, "mode")) {
        t->mode = v;
    } else if (ch_proto__ieq(name, "destination")) {
        t->destination = v;
    } else if (ch_proto__ieq(name, "source")) {
        t->source = v;
    }
    return 0;
}

int ch_proto_rtsp_parse_transport(ch_slice_t *list, ch_proto_rtsp_transport_t *out)
{
    memset(out, 0, sizeof(*out));
    ch_slice_t rest = *list;
    ch_slice_t spec;
    /* Skip empty elements, as RFC 9110 list syntax allows. */
    do {
        if (ch_proto__trim(rest).len == 0) {
            return CH_ENOENT;
        }
        if (split_unquoted(&rest, ',', &spec) < 0) {
            return CH_EPARSE;
        }
        spec = ch_proto__trim(spec);
    } while (spec.len == 0);

    ch_slice_t params = spec;
    ch_slice_t profile;
    if (split_unquoted(&params, ';', &profile) < 0) {
        return CH_EPARSE;
    }
    profile = ch_proto__trim(profile);
    /* transport-protocol "/" profile ["/" lower-transport], each a token. */
    ch_slice_t parts = profile;
    ch_slice_t proto_name = ch_proto__split(&parts, '/');
    ch_slice_t profile_name = ch_proto__split(&parts, '/');
    ch_slice_t lower = parts;
    if (!all_tchar(proto_name) || !all_tchar(profile_name) ||
        (lower.len > 0 && !all_tchar(lower)) ||
        (lower.len == 0 && profile.ptr[profile.len - 1] == '/')) {
        return CH_EPARSE;
    }
    int supported = ch_proto__ieq(proto_name, "rtp") && ch_proto__ieq(profile_name, "avp");
    if (lower.len == 0 || ch_proto__ieq(lower, "udp")) {
        out->tcp = 0;
    } else if (ch_proto__ieq(lower, "tcp")) {
        out->tcp = 1;
    } else {
        supported = 0;
    }

    while (params.len > 0) {
        ch_slice_t param;
        if (split_unquoted(&params, ';', &param) < 0) {
            return CH_EPARSE;
        }
        param = ch_proto__trim(param);
        if (param.len == 0) {
            continue;
        }
        ch_slice_t name, v;
        if (split_param(param, &name, &v) < 0) {
            return CH_EPARSE;
        }
        if (supported && transport_param(name, v, out) < 0) {
            return CH_EPARSE;
        }
    }
    *list = rest;
    if (!supported) {
        memset(out, 0, sizeof(*out));
        return CH_EUNSUPP;
    }
    return 0;
}

/* A field written into a Transport value must not end the parameter, the specification, a
 * quoted string or the header. */
static int transport_text_ok(ch_slice_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',' || c == '"') {
            return 0;
        }
    }
    return 1;
}

int ch_proto_rtsp_build_transport(const ch_proto_rtsp_transport_t *t, ch_buf_t *out)
{
    if (!transport_text_ok(t->mode) || !transport_text_ok(t->destination) ||
        !transport_text_ok(t->source)) {
        return CH_EINVAL;
    }
    if ((t->has_interleaved && t->interleaved[1] < t->interleaved[0]) ||
        (t->has_client_port && t->client_port[1] < t->client_port[0]) ||
        (t->has_server_port && t->server_port[1] < t->server_port[0])) {
        return CH_EINVAL;
    }
    ch_buf_append_str(out, t->tcp ? "RTP/AVP/TCP" : "RTP/AVP");
    ch_buf_append_str(out, t->multicast ? ";multicast" : ";unicast");
    if (t->destination.len > 0) {
        ch_buf_appendf(out, ";destination=%.*s", (int)t->destination.len, t->destination.ptr);
    }
    if (t->source.len > 0) {
        ch_buf_appendf(out, ";source=%.*s", (int)t->source.len, t->source.ptr);
    }
    if (t->has_interleaved) {
        ch_buf_appendf(out, ";interleaved=%u-%u", (unsigned)t->interleaved[0],
                       (unsigned)t->interleaved[1]);
    }
    if (t->has_client_port) {
        ch_buf_appendf(out, ";client_port=%u-%u", (unsigned)t->client_port[0],
                       (unsigned)t->client_port[1]);
    }
    if (t->has_server_port) {
        ch_buf_appendf(out, ";server_port=%u-%u", (unsigned)t->server_port[0],
                       (unsigned)t->server_port[1]);
    }
    if (t->has_ssrc) {
        ch_buf_appendf(out, ";ssrc=%08X", (unsigned)t->ssrc);
    }
    if (t->mode.len > 0) {
        ch_buf_appendf(out, ";mode=\"%.*s\"", (int)t->mode.len, t->mode.ptr);
    }
    return 0;
}

ch_slice_t ch_proto_rtsp_content_base(const ch_proto_header_t *headers, size_t n,
                                      ch_slice_t request_url)
{
    static const char *const names[] = {"content-base", "content-location"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(names); k++) {
        const ch_proto_header_t *h = ch_proto_header_find(headers, n, names[k]);
        if (h != NULL && h->value.len > 0) {
            return h->value;
        }
    }
    return request_url;
}

int ch_proto_rtsp_public_has(ch_slice_t value, const char *method)
{
    ch_slice_t rest = value;
    while (rest.len > 0) {
        ch_slice_t m = ch_proto__trim(ch_proto__split(&rest, ','));
        if (ch_proto__eq(m, method)) {
            return 1;
        }
    }
    return 0;
}

/* Parses an npt time: "now" (sets *now), seconds with an optional fraction, or
 * h:mm:ss[.fraction]; fractions are cut to the millisecond. */
static int parse_npt_time(ch_slice_t s, uint64_t *ms, unsigned *now)
{
    if (ch_proto__ieq(s, "now")) {
        *now = 1;
        *ms = 0;
        return 0;
    }
    ch_slice_t frac = s;
    ch_slice_t whole = ch_proto__split(&frac, '.');
    uint64_t fraction_ms = 0;
    uint64_t scale = 100;
    for (size_t i = 0; i < frac.len; i++) {
        unsigned char c = (unsigned char)frac.ptr[i];
        if (c < '0' || c > '9') {
            return CH_EPARSE;
        }
        fraction_ms += (uint64_t)(c - '0') * scale;
        scale /= 10;
    }
    uint32_t parts[3];
    size_t count = 0;
    ch_slice_t rest = whole;
    while (count < 3) {
        ch_slice_t part = ch_proto__split(&rest, ':');
        /* Hours or seconds up to 999999999 (31 years) keep the sum far from overflow. */
        if (ch_proto__u32(part, 999999999, &parts[count]) < 0) {
            return CH_EPARSE;
        }
        count++;
        if (part.ptr + part.len == whole.ptr + whole.len) {
            break;
        }
    }
    if (rest.len > 0 || count == 2) {
        return CH_EPARSE;
    }
    uint64_t seconds;
    if (count == 1) {
        seconds = parts[0];
    } else {
        if (parts[1] > 59 || parts[2] > 59) {
            return CH_EPARSE;
        }
        seconds = (uint64_t)parts[0] * 3600 + parts[1] * 60 + parts[2];
    }
    *ms = seconds * 1000 + fraction_ms;
    return 0;
}

int ch_proto_rtsp_parse_range(ch_slice_t value, ch_proto_rtsp_range_t *out)
{
    memset(out, 0, sizeof(*out));
    ch_slice_t rest = value;
    ch_slice_t spec = ch_proto__trim(ch_proto__split(&rest, ';'));
    ch_slice_t times = spec;
    ch_slice_t unit = ch_proto__trim(ch_proto__split(&times, '='));
    if (unit.len == spec.len) {
        return CH_EPARSE;
    }
    if (!ch_proto__ieq(unit, "npt")) {
        return all_tchar(unit) ? CH_EUNSUPP : CH_EPARSE;
    }
    times = ch_proto__trim(times);
    ch_slice_t end = times;
    ch_slice_t start = ch_proto__trim(ch_proto__split(&end, '-'));
    if (start.len == times.len) {
        return CH_EPARSE; /* no '-' */
    }
    end = ch_proto__trim(end);
    if (start.len == 0 && end.len == 0) {
        return CH_EPARSE;
    }
    unsigned end_now = 0;
    if (start.len > 0) {
        if (parse_npt_time(start, &out->start_ms, &out->start_now) < 0) {
            return CH_EPARSE;
        }
        out->has_start = 1;
    }
    if (end.len > 0) {
        if (parse_npt_time(end, &out->end_ms, &end_now) < 0 || end_now) {
            return CH_EPARSE;
        }
        out->has_end = 1;
        if (out->has_start && !out->start_now && out->end_ms < out->start_ms) {
            return CH_EPARSE;
        }
    }
    return 0;
}

int ch_proto_rtsp_parse_rtp_info(ch_slice_t *list, ch_proto_rtsp_rtp_info_t *out)
{
    memset(out, 0, sizeof(*out));
    ch_slice_t rest = *list;
    ch_slice_t stream;
    do {
        if (ch_proto__trim(rest).len == 0) {
            return CH_ENOENT;
        }
        stream = ch_proto__trim(ch_proto__split(&rest, ','));
    } while (stream.len == 0);

    int has_url = 0;
    while (stream.len > 0) {
        ch_slice_t param = ch_proto__trim(ch_proto__split(&stream, ';'));
        if (param.len == 0) {
            continue;
        }
        ch_slice_t v = param;
        ch_slice_t name = ch_proto__trim(ch_proto__split(&v, '='));
        v = ch_proto__trim(v);
        uint32_t x;
        if (ch_proto__ieq(name, "url")) {
            if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
                v.ptr++;
                v.len -= 2;
            }
            if (v.len == 0) {
                return CH_EPARSE;
            }
            out->url = v;
            has_url = 1;
        } else if (ch_proto__ieq(name, "seq")) {
            if (ch_proto__u32(v, 65535, &x) < 0) {
                return CH_EPARSE;
            }
            out->seq = (uint16_t)x;
            out->has_seq = 1;
        } else if (ch_proto__ieq(name, "rtptime")) {
            if (ch_proto__u32(v, UINT32_MAX, &x) < 0) {
                return CH_EPARSE;
            }
            out->rtptime = x;
            out->has_rtptime = 1;
        } else if (!all_tchar(name)) {
            return CH_EPARSE;
        }
    }
    if (!has_url) {
        return CH_EPARSE;
    }
    *list = rest;
    return 0;
}

int ch_proto_interleaved_read(const char *buf, size_t len, ch_proto_interleaved_t *out)
{
    if (len == 0) {
        return CH_EAGAIN;
    }
    const unsigned char *p = (const unsigned char *)buf;
    if (p[0] != '$') {
        /* A response starts with "RTSP/", a request (a server's GET_PARAMETER, or a viewer's
         * next request) with a method token; stray empty lines are skipped by the head
         * parsers. Anything else means we lost the frame boundaries. */
        if (is_tchar(p[0]) || p[0] == '\r' || p[0] == '\n') {
            return CH_ENOENT;
        }
        return CH_EPARSE;
    }
    if (len < 4) {
        return CH_EAGAIN;
    }
    size_t n = ((size_t)p[2] << 8) | p[3];
    if (len - 4 < n) {
        return CH_EAGAIN;
    }
    out->channel = p[1];
    out->payload.ptr = buf + 4;
    out->payload.len = n;
    return (int)(4 + n);
}

int ch_proto_interleaved_header(uint8_t channel, size_t payload_len, uint8_t out[4])
{
    if (payload_len > 65535) {
        return CH_ETOOBIG;
    }
    out[0] = '$';
    out[1] = channel;
    out[2] = (uint8_t)(payload_len >> 8);
    out[3] = (uint8_t)(payload_len & 0xff);
    return 0;
}
