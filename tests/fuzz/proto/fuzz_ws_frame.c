/*
 * libFuzzer target for the WebSocket frame reader of proto/ (what browsers send to the live
 * video endpoint): frames consumed from the front of the input until the reader needs more or
 * refuses; each frame's size must cover exactly its header and payload, control frames must be
 * short and final. The handshake's accept value is computed for the input's first 24 bytes.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    size_t at = 0;
    while (at < size) {
        ch_proto_ws_frame_t f;
        int rc = ch_proto_ws_read(buf + at, size - at, 4096, &f);
        assert(rc > 0 || rc == CH_EAGAIN || rc == CH_EPARSE || rc == CH_ETOOBIG);
        if (rc <= 0) {
            break;
        }
        assert((size_t)rc <= size - at);
        assert(f.payload >= buf + at && f.payload + f.payload_len == buf + at + (size_t)rc);
        assert(f.payload_len <= 4096);
        assert(f.opcode < 8 || (f.payload_len <= 125 && f.fin));
        at += (size_t)rc;
    }
    if (size >= 24) {
        char acc[CH_PROTO_WS_ACCEPT_LEN + 1];
        int rc = ch_proto_ws_accept((ch_slice_t){(const char *)data, 24}, acc);
        assert(rc == 0 || rc == CH_EPARSE);
        assert(rc != 0 || strlen(acc) == CH_PROTO_WS_ACCEPT_LEN);
    }
    uint8_t hdr[CH_PROTO_WS_HEADER_MAX];
    size_t hl = ch_proto_ws_header(CH_PROTO_WS_BINARY, size, hdr);
    assert(hl == (size < 126 ? 2u : size <= 0xffff ? 4u : 10u));
    free(buf);
    return 0;
}
