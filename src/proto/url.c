/*
 * rtsp:// URLs (proto.h): parsing, percent-decoding of credentials, and printing without them.
 *
 * Camera URLs are typed by people, so the parser accepts what RFC 3986 allows plus one common
 * sin, a raw '@' in the password; it refuses what could make a URL mean two things (spaces,
 * controls, fragments, raw non-ASCII) rather than guess.
 */
#include "proto/proto.h"
#include "proto/text.h"

#include <string.h>

/* Checks that every '%' in s starts a valid escape "%XY". */
static int escapes_ok(ch_slice_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] != '%') {
            continue;
        }
        if (i + 2 >= s.len || ch_hex_digit((unsigned char)s.ptr[i + 1]) < 0 ||
            ch_hex_digit((unsigned char)s.ptr[i + 2]) < 0) {
            return 0;
        }
    }
    return 1;
}

/* RFC 3986 reg-name bytes: unreserved, sub-delims and '%' (escapes checked apart). */
static int is_regname(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
        return 1;
    }
    return c != '\0' && strchr("-._~!$&'()*+,;=%", c) != NULL;
}

/* Parses host[:port] (the authority without userinfo) into u. */
static int parse_hostport(ch_slice_t hp, ch_proto_url_t *u)
{
    size_t i = 0;
    if (hp.len > 0 && hp.ptr[0] == '[') {
        /* An IPv6 literal: hex digits, ':' and '.' (an embedded IPv4 address); zone ids
         * (RFC 6874) are refused, as a camera on a link-local address is a configuration we
         * do not want to guess about. */
        size_t start = 1;
        i = 1;
        while (i < hp.len && hp.ptr[i] != ']') {
            unsigned char c = (unsigned char)hp.ptr[i];
            if (ch_hex_digit(c) < 0 && c != ':' && c != '.') {
                return CH_EPARSE;
            }
            i++;
        }
        if (i >= hp.len || i - start < 2) {
            return CH_EPARSE;
        }
        int colons = 0;
        for (size_t k = start; k < i; k++) {
            colons += hp.ptr[k] == ':';
        }
        if (colons < 2) {
            return CH_EPARSE;
        }
        u->host = (ch_slice_t){hp.ptr + start, i - start};
        u->host_is_ipv6 = 1;
        i++;
    } else {
        while (i < hp.len && hp.ptr[i] != ':') {
            if (!is_regname((unsigned char)hp.ptr[i])) {
                return CH_EPARSE;
            }
            i++;
        }
        u->host = (ch_slice_t){hp.ptr, i};
        if (u->host.len == 0 || !escapes_ok(u->host)) {
            return CH_EPARSE;
        }
    }
    if (i == hp.len) {
        return 0;
    }
    if (hp.ptr[i] != ':') {
        return CH_EPARSE;
    }
    ch_slice_t port = {hp.ptr + i + 1, hp.len - i - 1};
    if (port.len == 0) {
        return 0; /* "host:" means the default port (RFC 3986 section 3.2.3) */
    }
    uint32_t v;
    if (ch_proto__u32(port, 65535, &v) < 0 || v == 0) {
        return CH_EPARSE;
    }
    u->port = (uint16_t)v;
    u->has_port = 1;
    return 0;
}

int ch_proto_url_parse(const char *s, size_t len, ch_proto_url_t *out)
{
    memset(out, 0, sizeof(*out));
    ch_slice_t all = {s, len};
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '#') {
            return CH_EPARSE;
        }
    }
    ch_slice_t rest = all;
    ch_slice_t scheme = ch_proto__split(&rest, ':');
    if (scheme.len == len || scheme.len == 0) {
        return CH_EPARSE;
    }
    for (size_t i = 0; i < scheme.len; i++) {
        unsigned char c = (unsigned char)scheme.ptr[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
        if (!ok) {
            return CH_EPARSE;
        }
    }
    if (ch_proto__ieq(scheme, "rtsp")) {
        out->port = 554;
    } else if (ch_proto__ieq(scheme, "rtsps")) {
        out->port = 322;
    } else {
        return CH_EUNSUPP;
    }
    out->scheme = scheme;
    if (rest.len < 2 || rest.ptr[0] != '/' || rest.ptr[1] != '/') {
        return CH_EPARSE;
    }
    rest.ptr += 2;
    rest.len -= 2;

    size_t auth_end = 0;
    while (auth_end < rest.len && rest.ptr[auth_end] != '/' && rest.ptr[auth_end] != '?') {
        auth_end++;
    }
    ch_slice_t authority = {rest.ptr, auth_end};
    out->path_query = (ch_slice_t){rest.ptr + auth_end, rest.len - auth_end};

    /* userinfo ends at the LAST '@': "admin:p@ss@cam" is what people write. */
    size_t at = authority.len;
    while (at > 0 && authority.ptr[at - 1] != '@') {
        at--;
    }
    ch_slice_t hostport = authority;
    if (at > 0) {
        ch_slice_t userinfo = {authority.ptr, at - 1};
        hostport = (ch_slice_t){authority.ptr + at, authority.len - at};
        ch_slice_t pw = userinfo;
        out->user = ch_proto__split(&pw, ':');
        out->has_password = out->user.len < userinfo.len;
        out->password = pw;
        out->has_userinfo = 1;
        if (!escapes_ok(out->user) || !escapes_ok(out->password)) {
            return CH_EPARSE;
        }
    }
    int rc = parse_hostport(hostport, out);
    if (rc < 0) {
        return rc;
    }
    ch_slice_t query = out->path_query;
    ch_slice_t path = ch_proto__split(&query, '?');
    if (!escapes_ok(path) || !escapes_ok(query)) {
        return CH_EPARSE;
    }
    if (path.len < out->path_query.len) {
        out->query = query;
    }
    return 0;
}

int ch_proto_url_decode(ch_slice_t in, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (c == '%') {
            if (i + 2 >= in.len) {
                return CH_EPARSE;
            }
            int hi = ch_hex_digit((unsigned char)in.ptr[i + 1]);
            int lo = ch_hex_digit((unsigned char)in.ptr[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                return CH_EPARSE;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= cap) {
            return CH_ETOOBIG;
        }
        out[n++] = (char)c;
    }
    if (cap == 0 || n > INT32_MAX) {
        return CH_ETOOBIG;
    }
    out[n] = '\0';
    return (int)n;
}

void ch_proto_url_append(const ch_proto_url_t *url, unsigned how, ch_buf_t *out)
{
    ch_buf_append(out, url->scheme.ptr, url->scheme.len);
    ch_buf_append_str(out, "://");
    if (url->host_is_ipv6) {
        ch_buf_append_char(out, '[');
    }
    ch_buf_append(out, url->host.ptr, url->host.len);
    if (url->host_is_ipv6) {
        ch_buf_append_char(out, ']');
    }
    if (url->has_port) {
        ch_buf_appendf(out, ":%u", (unsigned)url->port);
    }
    if (how != CH_PROTO_URL_LOG) {
        ch_buf_append(out, url->path_query.ptr, url->path_query.len);
        return;
    }
    ch_slice_t query = url->path_query;
    ch_slice_t path = ch_proto__split(&query, '?');
    ch_buf_append(out, path.ptr, path.len);
    if (path.len == url->path_query.len) {
        return;
    }
    ch_buf_append_char(out, '?');
    /* Keep the names, so a log still says which parameters were there; hide the values,
     * which may be view tokens. */
    int first = 1;
    while (query.len > 0) {
        ch_slice_t pair = ch_proto__split(&query, '&');
        ch_slice_t name = ch_proto__split(&pair, '=');
        if (!first) {
            ch_buf_append_char(out, '&');
        }
        first = 0;
        ch_buf_append(out, name.ptr, name.len);
        if (pair.ptr > name.ptr + name.len) { /* there was an '=' */
            ch_buf_append_str(out, "=***");
        }
    }
}
