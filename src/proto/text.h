/*
 * Private to proto: small text helpers shared by the HTTP, RTSP, SDP, URL and
 * authentication parsers. Static inline, so each file keeps its own copy and nothing leaks into the
 * API.
 */
#ifndef CH_PROTO_TEXT_H
#define CH_PROTO_TEXT_H

#include "core/core.h"
#include "proto/proto.h"

#include <stddef.h>
#include <stdint.h>

/* ASCII lower case, without the locale that tolower() consults. */
static inline unsigned char ch_proto__lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* 1 when s equals the literal lit, ignoring ASCII case. */
static inline int ch_proto__ieq(ch_slice_t s, const char *lit)
{
    size_t i = 0;
    for (; i < s.len; i++) {
        if (lit[i] == '\0' ||
            ch_proto__lower((unsigned char)s.ptr[i]) != ch_proto__lower((unsigned char)lit[i])) {
            return 0;
        }
    }
    return lit[i] == '\0';
}

/* 1 when s equals the literal lit exactly. */
static inline int ch_proto__eq(ch_slice_t s, const char *lit)
{
    size_t i = 0;
    for (; i < s.len; i++) {
        if (lit[i] == '\0' || s.ptr[i] != lit[i]) {
            return 0;
        }
    }
    return lit[i] == '\0';
}

/* s without leading and trailing SP and HTAB. */
static inline ch_slice_t ch_proto__trim(ch_slice_t s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

/* Splits *s at the first c: returns what comes before it and leaves *s after it (empty when
 * there is no c, in which case the whole of *s is returned). */
static inline ch_slice_t ch_proto__split(ch_slice_t *s, char c)
{
    ch_slice_t head = *s;
    for (size_t i = 0; i < s->len; i++) {
        if (s->ptr[i] == c) {
            head.len = i;
            s->ptr += i + 1;
            s->len -= i + 1;
            return head;
        }
    }
    s->ptr += s->len;
    s->len = 0;
    return head;
}

/* Parses all of s as 1 to max_len decimal digits whose value is no greater than max, without
 * overflow whatever the length. 0 or CH_EPARSE. */
static inline int ch_proto__digits(ch_slice_t s, size_t max_len, uint64_t max, uint64_t *out)
{
    if (s.len == 0 || s.len > max_len) {
        return CH_EPARSE;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < '0' || c > '9') {
            return CH_EPARSE;
        }
        uint64_t d = (uint64_t)(c - '0');
        if (x > (max - d) / 10) {
            return CH_EPARSE;
        }
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Parses all of s as 1 to 10 decimal digits no greater than max. 0 or CH_EPARSE. */
static inline int ch_proto__u32(ch_slice_t s, uint32_t max, uint32_t *out)
{
    uint64_t x;
    if (ch_proto__digits(s, 10, max, &x) < 0) {
        return CH_EPARSE;
    }
    *out = (uint32_t)x;
    return 0;
}

/* The number in the headers called name (ASCII case ignored), parsed as ch_proto__digits does:
 * 0 with *out set; CH_ENOENT when there is none; CH_EPARSE when a value is no such number or
 * two values differ (a repeat is allowed only with the same value: RFC 9110 section 8.6 for
 * Content-Length, the same reading for RTSP's CSeq). */
static inline int ch_proto__header_number(const ch_proto_header_t *headers, size_t n,
                                          const char *name, size_t max_len, uint64_t max,
                                          uint64_t *out)
{
    int found = 0;
    uint64_t value = 0;
    for (size_t k = 0; k < n; k++) {
        if (!ch_proto__ieq(headers[k].name, name)) {
            continue;
        }
        uint64_t v;
        if (ch_proto__digits(headers[k].value, max_len, max, &v) < 0 || (found && v != value)) {
            return CH_EPARSE;
        }
        found = 1;
        value = v;
    }
    if (!found) {
        return CH_ENOENT;
    }
    *out = value;
    return 0;
}

#endif /* CH_PROTO_TEXT_H */
