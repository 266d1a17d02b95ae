/*
 * libFuzzer target for the request head parser of proto/ and its framing helpers.
 *
 * The first input byte picks the header capacity (0..31), so that the CH_ETOOBIG path is
 * fuzzed too; the rest is the head. The input is copied into a block of exactly its size, so
 * that AddressSanitizer sees any read past the end. On success every slice must lie inside
 * the input and the result must not depend on bytes after the head.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks that s lies within [base, base+len). */
static void check_slice(ch_slice_t s, const char *base, size_t len)
{
    if (s.len == 0) {
        return;
    }
    assert(s.ptr >= base && s.ptr + s.len <= base + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t cap = data[0] % 32;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data + 1, len);

    ch_proto_header_t headers[32];
    ch_proto_request_t req;
    int rc = ch_proto_parse_request(buf, len, &req, headers, cap);
    assert(rc > 0 || rc == CH_EAGAIN || rc == CH_EPARSE || rc == CH_ETOOBIG);
    if (rc > 0) {
        size_t n = (size_t)rc;
        assert(n <= len);
        assert(req.num_headers <= cap);
        assert(req.kind == CH_PROTO_HTTP || req.kind == CH_PROTO_RTSP);
        check_slice(req.method, buf, n);
        check_slice(req.target, buf, n);
        check_slice(req.protocol, buf, n);
        assert(req.method.len > 0 && req.target.len > 0 && req.protocol.len == 8);
        for (size_t k = 0; k < req.num_headers; k++) {
            check_slice(req.headers[k].name, buf, n);
            check_slice(req.headers[k].value, buf, n);
            assert(req.headers[k].name.len > 0);
        }
        /* The head alone parses to the same length: the parser did not look beyond it. */
        ch_proto_request_t again;
        ch_proto_header_t headers2[32];
        assert(ch_proto_parse_request(buf, n, &again, headers2, cap) == rc);
        assert(again.num_headers == req.num_headers);

        uint64_t cl = 0;
        int clrc = ch_proto_content_length(req.headers, req.num_headers, &cl);
        assert(clrc == 0 || clrc == CH_ENOENT || clrc == CH_EPARSE);
        ch_proto_framing_t f;
        int frc = ch_proto_framing(req.headers, req.num_headers, &f);
        assert(frc == 0 || frc == CH_EPARSE);
        if (frc == 0) {
            assert(f.has_content_length == (clrc == 0));
            assert(!f.has_content_length || f.content_length == cl);
            assert(cl <= (uint64_t)INT64_MAX);
            int keep = ch_proto_keep_alive(&req, &f);
            assert(keep == 0 || keep == 1);
        }
        (void)ch_proto_header_find(req.headers, req.num_headers, "host");
    } else if (rc == CH_EAGAIN && len > 0) {
        /* Every prefix of an incomplete valid beginning is incomplete too. */
        ch_proto_request_t prefix;
        assert(ch_proto_parse_request(buf, len - 1, &prefix, headers, cap) == CH_EAGAIN);
    }
    free(buf);
    return 0;
}
