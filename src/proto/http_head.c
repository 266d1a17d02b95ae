/*
 * The request head parser of proto.h and its framing helpers.
 *
 * The parser is one pass over the bytes with a bounds check before every read: running out of
 * input is CH_EAGAIN, anything else unexpected is CH_EPARSE at once, so a server can refuse
 * garbage without waiting for a whole head. Character classes are 256-byte tables because a
 * table lookup per byte is cheaper than a chain of comparisons.
 */
#include "proto/proto.h"
#include "proto/text.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

/* RFC 9110 tchar: the bytes a method or header name may hold. */
static const unsigned char tchar_table[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* The bytes a request target may hold: visible ASCII and obs-text, no space, no controls. */
static const unsigned char target_table[256] = {
    [0x21 ... 0x7e] = 1,
    [0x80 ... 0xff] = 1,
};

/* The bytes a header value may hold: visible ASCII, SP, HTAB and obs-text. */
static const unsigned char value_table[256] = {
    ['\t'] = 1,
    [0x20 ... 0x7e] = 1,
    [0x80 ... 0xff] = 1,
};

/* Compares [p, p+n) with the lower-case literal lit, ignoring ASCII case. */
static int ieq(const char *p, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n; i++) {
        if (lit[i] == '\0' || ch_proto__lower((unsigned char)p[i]) != (unsigned char)lit[i]) {
            return 0;
        }
    }
    return lit[i] == '\0';
}

/* Consumes one line end (CRLF or bare LF) at *i. CH_EAGAIN when the input stops inside it,
 * CH_EPARSE when the byte at *i starts no line end (a bare CR, or a control character). */
static int eat_eol(const unsigned char *p, size_t len, size_t *i)
{
    if (*i >= len) {
        return CH_EAGAIN;
    }
    if (p[*i] == '\n') {
        *i += 1;
        return 0;
    }
    if (p[*i] != '\r') {
        return CH_EPARSE;
    }
    if (*i + 1 >= len) {
        return CH_EAGAIN;
    }
    if (p[*i + 1] != '\n') {
        return CH_EPARSE;
    }
    *i += 2;
    return 0;
}

/* The protocol fields that request and status lines share. */
typedef struct protocol_out {
    ch_slice_t *slice;
    ch_proto_kind_t *kind;
    int *major;
    int *minor;
} protocol_out_t;

/* Parses "HTTP/d.d" or "RTSP/d.d" at *i into out. */
static int parse_protocol(const unsigned char *p, size_t len, size_t *i, protocol_out_t out)
{
    size_t start = *i;
    if (start >= len) {
        return CH_EAGAIN;
    }
    const char *name;
    if (p[start] == 'H') {
        name = "HTTP/";
        *out.kind = CH_PROTO_HTTP;
    } else if (p[start] == 'R') {
        name = "RTSP/";
        *out.kind = CH_PROTO_RTSP;
    } else {
        return CH_EPARSE;
    }
    for (size_t k = 1; k < 5; k++) {
        if (start + k >= len) {
            return CH_EAGAIN;
        }
        if (p[start + k] != (unsigned char)name[k]) {
            return CH_EPARSE;
        }
    }
    /* "d.d": exactly one digit each side, as RFC 9112 section 2.3 says. */
    static const char shape[] = "0.0";
    for (size_t k = 0; k < 3; k++) {
        size_t at = start + 5 + k;
        if (at >= len) {
            return CH_EAGAIN;
        }
        int ok = shape[k] == '.' ? p[at] == '.' : (p[at] >= '0' && p[at] <= '9');
        if (!ok) {
            return CH_EPARSE;
        }
    }
    *out.major = p[start + 5] - '0';
    *out.minor = p[start + 7] - '0';
    out.slice->ptr = (const char *)p + start;
    out.slice->len = 8;
    *i = start + 8;
    return 0;
}

/* Parses one header line at *i (known to start with a tchar) into h, through its line end. */
static int parse_header(const unsigned char *p, size_t len, size_t *i, ch_proto_header_t *h)
{
    size_t at = *i;
    size_t start = at;
    while (at < len && tchar_table[p[at]]) {
        at++;
    }
    if (at >= len) {
        return CH_EAGAIN;
    }
    if (p[at] != ':') {
        /* Also catches "Name :" (whitespace before the colon), which RFC 9112 section 5.1
         * says a server must reject: proxies disagree on what such a name means. */
        return CH_EPARSE;
    }
    h->name.ptr = (const char *)p + start;
    h->name.len = at - start;
    at++;
    while (at < len && (p[at] == ' ' || p[at] == '\t')) {
        at++;
    }
    size_t vstart = at;
    while (at < len && value_table[p[at]]) {
        at++;
    }
    size_t vend = at;
    int rc = eat_eol(p, len, &at);
    if (rc < 0) {
        return rc;
    }
    while (vend > vstart && (p[vend - 1] == ' ' || p[vend - 1] == '\t')) {
        vend--;
    }
    h->value.ptr = (const char *)p + vstart;
    h->value.len = vend - vstart;
    *i = at;
    return 0;
}

/* Parses header lines at *i up to and through the empty line that ends the head, into
 * headers[0, max_headers); *count says how many were filled. Shared by requests and responses,
 * so that both refuse the same things. */
static int parse_headers(const unsigned char *p, size_t len, size_t *io, ch_proto_header_t *headers,
                         size_t max_headers, size_t *count)
{
    size_t i = *io;
    size_t n = 0;
    int rc;
    for (;;) {
        if (i >= len) {
            return CH_EAGAIN;
        }
        if (p[i] == '\r' || p[i] == '\n') {
            rc = eat_eol(p, len, &i);
            if (rc < 0) {
                return rc;
            }
            break;
        }
        if (!tchar_table[p[i]]) {
            /* SP or HTAB here is obsolete line folding (RFC 9112 section 5.2): refused. */
            return CH_EPARSE;
        }
        if (n == max_headers) {
            return CH_ETOOBIG;
        }
        rc = parse_header(p, len, &i, &headers[n]);
        if (rc < 0) {
            return rc;
        }
        n++;
    }
    if (i > INT_MAX) {
        return CH_ETOOBIG;
    }
    *io = i;
    *count = n;
    return 0;
}

/* Skips empty lines (CRLF or LF) at *i; CH_EAGAIN when the input ends before a line that is
 * not empty. */
static int skip_empty_lines(const unsigned char *p, size_t len, size_t *i)
{
    for (;;) {
        if (*i >= len) {
            return CH_EAGAIN;
        }
        if (p[*i] == '\n') {
            *i += 1;
        } else if (p[*i] == '\r') {
            if (*i + 1 >= len) {
                return CH_EAGAIN;
            }
            if (p[*i + 1] != '\n') {
                return CH_EPARSE;
            }
            *i += 2;
        } else {
            return 0;
        }
    }
}

/* Takes at *i a non-empty run of the bytes that table allows, ended by a SP: *out is the run
 * and *i is left past the SP. CH_EAGAIN when the input stops first, else CH_EPARSE. */
static int take_word(const char *buf, size_t len, size_t *i, const unsigned char *table,
                     ch_slice_t *out)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t start = *i, k = start;
    while (k < len && table[p[k]]) {
        k++;
    }
    if (k >= len) {
        return CH_EAGAIN;
    }
    if (k == start || p[k] != ' ') {
        return CH_EPARSE;
    }
    out->ptr = buf + start;
    out->len = k - start;
    *i = k + 1;
    return 0;
}

/* method SP target SP protocol, up to the line end. */
static int request_line(const char *buf, size_t len, size_t *i, ch_proto_request_t *req)
{
    int rc = take_word(buf, len, i, tchar_table, &req->method);
    if (rc == 0) {
        rc = take_word(buf, len, i, target_table, &req->target);
    }
    if (rc == 0) {
        rc = parse_protocol((const unsigned char *)buf, len, i,
                            (protocol_out_t){&req->protocol, &req->kind, &req->major, &req->minor});
    }
    return rc;
}

/* protocol SP status [SP reason], up to the line end. */
static int status_line(const char *buf, size_t len, size_t *io, ch_proto_response_t *resp)
{
    const unsigned char *p = (const unsigned char *)buf;
    int rc = parse_protocol(
        p, len, io, (protocol_out_t){&resp->protocol, &resp->kind, &resp->major, &resp->minor});
    if (rc < 0) {
        return rc;
    }
    size_t i = *io;
    if (i >= len) {
        return CH_EAGAIN;
    }
    if (p[i] != ' ') {
        return CH_EPARSE;
    }
    i++;
    /* Exactly three digits (RFC 9112 section 4, RFC 2326 section 7.1), the first 1..5. */
    int status = 0;
    for (size_t k = 0; k < 3; k++, i++) {
        if (i >= len) {
            return CH_EAGAIN;
        }
        if (p[i] < '0' || p[i] > '9' || (k == 0 && (p[i] < '1' || p[i] > '5'))) {
            return CH_EPARSE;
        }
        status = status * 10 + (p[i] - '0');
    }
    resp->status = status;
    if (i >= len) {
        return CH_EAGAIN;
    }
    /* The reason phrase may be empty, and some cameras leave out the space before it too;
     * nothing depends on the phrase, so both are accepted. */
    if (p[i] == ' ') {
        i++;
        size_t start = i;
        while (i < len && value_table[p[i]]) {
            i++;
        }
        size_t end = i;
        while (end > start && (p[end - 1] == ' ' || p[end - 1] == '\t')) {
            end--;
        }
        resp->reason.ptr = buf + start;
        resp->reason.len = end - start;
    }
    *io = i;
    return 0;
}

/* A whole head: the start line (a request's when req is not NULL, else resp's status line),
 * its line end and the headers, into the caller's array. Bytes consumed, CH_EAGAIN or
 * CH_EPARSE. */
static int parse_head(const char *buf, size_t len, ch_proto_request_t *req,
                      ch_proto_response_t *resp, ch_proto_header_t *headers, size_t max_headers)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0, n = 0;
    assert(buf != NULL || len == 0);
    /* Empty lines before the start line are skipped: some clients send a CRLF after a POST
     * body, which a pipelining server would otherwise read as a bad request, and some servers
     * end a body with a stray CRLF that Content-Length does not count; on a connection that
     * carries several messages it must not poison the next one. */
    int rc = skip_empty_lines(p, len, &i);
    if (rc == 0) {
        rc = req != NULL ? request_line(buf, len, &i, req) : status_line(buf, len, &i, resp);
    }
    if (rc == 0) {
        rc = eat_eol(p, len, &i);
    }
    if (rc == 0) {
        rc = parse_headers(p, len, &i, headers, max_headers, &n);
    }
    if (rc < 0) {
        return rc;
    }
    if (req != NULL) {
        req->headers = headers;
        req->num_headers = n;
    } else {
        resp->headers = headers;
        resp->num_headers = n;
    }
    return (int)i;
}

int ch_proto_parse_request(const char *buf, size_t len, ch_proto_request_t *req,
                           ch_proto_header_t *headers, size_t max_headers)
{
    memset(req, 0, sizeof(*req));
    return parse_head(buf, len, req, NULL, headers, max_headers);
}

int ch_proto_parse_response(const char *buf, size_t len, ch_proto_response_t *resp,
                            ch_proto_header_t *headers, size_t max_headers)
{
    memset(resp, 0, sizeof(*resp));
    return parse_head(buf, len, NULL, resp, headers, max_headers);
}

const ch_proto_header_t *ch_proto_header_find(const ch_proto_header_t *headers, size_t n,
                                              const char *name)
{
    size_t name_len = strlen(name);
    for (size_t k = 0; k < n; k++) {
        const ch_slice_t *hn = &headers[k].name;
        if (hn->len != name_len) {
            continue;
        }
        size_t j = 0;
        while (j < name_len && ch_proto__lower((unsigned char)hn->ptr[j]) ==
                                   ch_proto__lower((unsigned char)name[j])) {
            j++;
        }
        if (j == name_len) {
            return &headers[k];
        }
    }
    return NULL;
}

/* A whole Content-Length value is one or more digits, at most INT64_MAX (a body's size). */
int ch_proto_content_length(const ch_proto_header_t *headers, size_t n, uint64_t *out)
{
    return ch_proto__header_number(headers, n, "content-length", SIZE_MAX, INT64_MAX, out);
}

/* Calls fn(token, ud) for each element of a comma-separated list (RFC 9110 section 5.6.1),
 * trimmed of optional whitespace; empty elements are skipped, as the RFC asks. */
static void each_token(ch_slice_t v, void (*fn)(const char *p, size_t n, void *ud), void *ud)
{
    size_t k = 0;
    while (k < v.len) {
        while (k < v.len && (v.ptr[k] == ' ' || v.ptr[k] == '\t' || v.ptr[k] == ',')) {
            k++;
        }
        size_t start = k;
        while (k < v.len && v.ptr[k] != ',') {
            k++;
        }
        size_t end = k;
        while (end > start && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t')) {
            end--;
        }
        if (end > start) {
            fn(v.ptr + start, end - start, ud);
        }
    }
}

static void on_connection_token(const char *p, size_t n, void *ud)
{
    ch_proto_framing_t *f = ud;
    if (ieq(p, n, "close")) {
        f->conn_close = 1;
    } else if (ieq(p, n, "keep-alive")) {
        f->conn_keep_alive = 1;
    } else if (ieq(p, n, "upgrade")) {
        f->conn_upgrade = 1;
    }
}

/* Remembers whether the last transfer coding seen is "chunked". */
static void on_coding_token(const char *p, size_t n, void *ud)
{
    ch_proto_framing_t *f = ud;
    f->chunked = ieq(p, n, "chunked");
}

int ch_proto_framing(const ch_proto_header_t *headers, size_t n, ch_proto_framing_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t k = 0; k < n; k++) {
        const ch_proto_header_t *h = &headers[k];
        /* The length test first: most headers are none of these four. */
        switch (h->name.len) {
        case 14:
            if (ieq(h->name.ptr, 14, "content-length")) {
                uint64_t v;
                if (ch_proto__digits(h->value, SIZE_MAX, INT64_MAX, &v) < 0) {
                    return CH_EPARSE;
                }
                if (out->has_content_length && v != out->content_length) {
                    return CH_EPARSE;
                }
                out->has_content_length = 1;
                out->content_length = v;
            }
            break;
        case 17:
            if (ieq(h->name.ptr, 17, "transfer-encoding")) {
                if (h->value.len == 0) {
                    return CH_EPARSE;
                }
                out->transfer_encoding = 1;
                out->chunked = 0;
                each_token(h->value, on_coding_token, out);
            }
            break;
        case 10:
            if (ieq(h->name.ptr, 10, "connection")) {
                each_token(h->value, on_connection_token, out);
            }
            break;
        case 6:
            if (ieq(h->name.ptr, 6, "expect") && ieq(h->value.ptr, h->value.len, "100-continue")) {
                out->expect_continue = 1;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

int ch_proto_keep_alive(const ch_proto_request_t *req, const ch_proto_framing_t *framing)
{
    if (framing->conn_close) {
        return 0;
    }
    if (req->kind == CH_PROTO_RTSP) {
        return 1;
    }
    if (req->major == 1 && req->minor >= 1) {
        return 1;
    }
    return framing->conn_keep_alive ? 1 : 0;
}

int ch_proto_split_body(const char *buf, size_t len, size_t head_len,
                        const ch_proto_header_t *headers, size_t n, size_t max_body,
                        ch_slice_t *body)
{
    assert(head_len <= len);
    uint64_t clen = 0;
    int rc = ch_proto_content_length(headers, n, &clen);
    if (rc == CH_ENOENT) {
        /* RTSP: no Content-Length means no body (RFC 2326 section 12.14); an RTSP answer is
         * never delimited by closing the connection. */
        clen = 0;
    } else if (rc < 0) {
        return rc;
    }
    if (head_len > INT_MAX || clen > max_body || clen > (uint64_t)(INT_MAX - head_len)) {
        return CH_ETOOBIG;
    }
    if (len - head_len < clen) {
        return CH_EAGAIN;
    }
    body->ptr = buf + head_len;
    body->len = (size_t)clen;
    return (int)(head_len + clen);
}
