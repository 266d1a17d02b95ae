/*
 * proto: hand-written, zero-copy parsers of wire formats. For now: the head of an HTTP/1.x or
 * RTSP/1.0 request (one parser serves both, as their request heads share one grammar).
 *
 * The parser works in the style of picohttpparser: it reads a whole request head in place and
 * fills a struct of slices that point into the caller's buffer; it never allocates and never
 * writes to the input. It is strict on purpose, because a lenient head parser is how request
 * smuggling starts:
 *   - the method and header names are tokens (RFC 9110 tchar);
 *   - the request target is one or more bytes other than controls and space (bytes >= 0x80
 *     are let through, as nginx does, for clients that send raw UTF-8 paths);
 *   - the protocol is "HTTP/d.d" or "RTSP/d.d"; which versions a server accepts is its choice;
 *   - header values hold no control characters other than horizontal tab;
 *   - lines end with CRLF, or with a bare LF; a bare CR is an error;
 *   - obsolete line folding (a line starting with SP or HTAB) and whitespace between a header
 *     name and its colon are rejected;
 *   - empty lines before the request line are skipped (RFC 9112 section 2.2).
 */
#ifndef CH_PROTO_H
#define CH_PROTO_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

/** Which protocol a request line names. */
typedef enum ch_proto_kind {
    CH_PROTO_HTTP = 1, /* "HTTP/x.y" */
    CH_PROTO_RTSP = 2, /* "RTSP/x.y" */
} ch_proto_kind_t;

/** One header: both slices point into the parsed buffer. value has no leading or trailing
 * whitespace and may be empty. */
typedef struct ch_proto_header {
    ch_slice_t name;
    ch_slice_t value;
} ch_proto_header_t;

/** A parsed request head. Every slice points into the buffer given to the parser, so the head
 * is valid only as long as that buffer is unchanged. */
typedef struct ch_proto_request {
    ch_slice_t method;   /* "GET", "DESCRIBE" */
    ch_slice_t target;   /* "/api/v1/health", "rtsp://cam/stream", "*" */
    ch_slice_t protocol; /* "HTTP/1.1" or "RTSP/1.0" as sent */
    ch_proto_kind_t kind;
    int major;                  /* 0..9 */
    int minor;                  /* 0..9 */
    ch_proto_header_t *headers; /* the caller's array, filled with num_headers entries */
    size_t num_headers;
} ch_proto_request_t;

/**
 * Parses the request head at the start of buf[0, len).
 *
 * headers is the caller's array of max_headers entries; on success req->headers points to it
 * and req->num_headers says how many were filled. Returns:
 *   > 0          the number of bytes the head takes (through the empty line that ends it);
 *   CH_EAGAIN    the bytes so far are a valid beginning of a head, but it is not complete;
 *   CH_EPARSE    malformed (found as early as possible, even in an incomplete head);
 *   CH_ETOOBIG   more than max_headers headers.
 * On an error req holds nothing useful. The caller bounds len (the head size limit) itself:
 * the parser accepts any size.
 */
int ch_proto_parse_request(const char *buf, size_t len, ch_proto_request_t *req,
                           ch_proto_header_t *headers, size_t max_headers) CH_MUST_CHECK;

/** Finds the first header named name (ASCII case-insensitive); NULL when absent. */
const ch_proto_header_t *ch_proto_header_find(const ch_proto_header_t *headers, size_t n,
                                              const char *name);

/**
 * Finds Content-Length among headers. Returns 0 and sets *out when present, CH_ENOENT when
 * absent, CH_EPARSE when a value is not all digits (no sign, no spaces, no list), is over
 * INT64_MAX, or when two Content-Length headers differ (identical repeats are accepted, as
 * RFC 9110 section 8.6 allows).
 */
int ch_proto_content_length(const ch_proto_header_t *headers, size_t n,
                            uint64_t *out) CH_MUST_CHECK;

/** How a message's body is delimited and what the client asks of the connection. */
typedef struct ch_proto_framing {
    uint64_t content_length;     /* valid when has_content_length */
    unsigned has_content_length; /* 1 when a (valid) Content-Length header is present */
    unsigned transfer_encoding;  /* 1 when any Transfer-Encoding header is present */
    unsigned chunked;            /* 1 when the last transfer coding is "chunked" */
    unsigned conn_close;         /* "Connection: close" */
    unsigned conn_keep_alive;    /* "Connection: keep-alive" */
    unsigned conn_upgrade;       /* "Connection: upgrade" (WebSocket later) */
    unsigned expect_continue;    /* "Expect: 100-continue" */
} ch_proto_framing_t;

/**
 * Reads the framing headers (Content-Length, Transfer-Encoding, Connection, Expect) in one pass.
 * Connection is a comma-separated list of case-insensitive tokens. Returns 0, or CH_EPARSE
 * for a bad Content-Length (see ch_proto_content_length) or an empty Transfer-Encoding. A
 * message with both Transfer-Encoding and Content-Length is returned as is; the caller decides
 * (a server should refuse it, RFC 9112 section 6.3).
 */
int ch_proto_framing(const ch_proto_header_t *headers, size_t n,
                     ch_proto_framing_t *out) CH_MUST_CHECK;

/**
 * Tells whether a connection stays open after this request by the rules of HTTP/1.0 and 1.1:
 * HTTP/1.1 (and later 1.x, and RTSP) keep it unless "Connection: close"; HTTP/1.0 closes it
 * unless "Connection: keep-alive". Returns 1 to keep, 0 to close.
 */
int ch_proto_keep_alive(const ch_proto_request_t *req, const ch_proto_framing_t *framing);

#endif /* CH_PROTO_H */
