/*
 * Private to proto: small text helpers shared by the RTSP, SDP, URL and authentication
 * parsers. Static inline, so each file keeps its own copy and nothing leaks into the API.
 */
#ifndef CH_PROTO_TEXT_H
#define CH_PROTO_TEXT_H

#include "core/core.h"

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

/* Parses all of s as 1 to 10 decimal digits no greater than max. 0 or CH_EPARSE. */
static inline int ch_proto__u32(ch_slice_t s, uint32_t max, uint32_t *out)
{
    if (s.len == 0 || s.len > 10) {
        return CH_EPARSE;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < '0' || c > '9') {
            return CH_EPARSE;
        }
        x = x * 10 + (uint64_t)(c - '0');
    }
    if (x > max) {
        return CH_EPARSE;
    }
    *out = (uint32_t)x;
    return 0;
}

#endif /* CH_PROTO_TEXT_H */
