/*
 * libFuzzer target for the interleaved frame reader of proto/, run the way an RTSP client
 * reads its connection: frames, response heads (with bodies) and requests mixed on one stream
 * of bytes, consumed from the front until the reader needs more or finds garbage.
 *
 * The input is consumed twice: whole, and fed in pieces whose sizes come from the input
 * itself (as recv would cut it); both runs must see the same frames and messages.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Consumes what it can from buf[0, len): returns the bytes consumed and adds a checksum of
 * what was seen to *sum. *stop is set when the stream is out of sync or a message is bad. */
static size_t consume(const char *buf, size_t len, uint64_t *sum, int *stop)
{
    size_t at = 0;
    while (at < len && !*stop) {
        ch_proto_interleaved_t f;
        int rc = ch_proto_interleaved_read(buf + at, len - at, &f);
        assert(rc > 0 || rc == CH_EAGAIN || rc == CH_ENOENT || rc == CH_EPARSE);
        if (rc > 0) {
            assert((size_t)rc == 4 + f.payload.len && (size_t)rc <= len - at);
            assert(f.payload.ptr == buf + at + 4);
            *sum = *sum * 31 + f.channel * 65537u + f.payload.len;
            at += (size_t)rc;
            continue;
        }
        if (rc == CH_EAGAIN) {
            break;
        }
        if (rc == CH_EPARSE) {
            *stop = 1;
            break;
        }
        /* A message: a response, else a request (a server's GET_PARAMETER). */
        ch_proto_header_t h[16];
        ch_proto_response_t resp;
        int hrc = ch_proto_parse_response(buf + at, len - at, &resp, h, 16);
        size_t n;
        const ch_proto_header_t *hs = h;
        size_t nh;
        if (hrc > 0) {
            n = (size_t)hrc;
            nh = resp.num_headers;
        } else {
            ch_proto_request_t req;
            int qrc = ch_proto_parse_request(buf + at, len - at, &req, h, 16);
            if (qrc > 0) {
                n = (size_t)qrc;
                nh = req.num_headers;
            } else if (qrc == CH_EAGAIN || hrc == CH_EAGAIN) {
                break; /* a message has begun: wait for the rest */
            } else {
                *stop = 1;
                break;
            }
        }
        ch_slice_t body;
        int brc = ch_proto_split_body(buf + at, len - at, n, hs, nh, 4096, &body);
        if (brc == CH_EAGAIN) {
            break;
        }
        if (brc < 0) {
            *stop = 1;
            break;
        }
        *sum = *sum * 31 + (uint64_t)brc;
        at += (size_t)brc;
    }
    return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *whole = malloc(size ? size : 1);
    if (whole == NULL) {
        return 0;
    }
    memcpy(whole, data, size);
    uint64_t sum1 = 0;
    int stop1 = 0;
    size_t used1 = consume(whole, size, &sum1, &stop1);
    assert(used1 <= size);

    /* Now as recv would deliver it: a growing buffer, a piece at a time. The piece sizes are
     * taken from the data so that the fuzzer explores the cuts. */
    char *acc = malloc(size ? size : 1);
    if (acc == NULL) {
        free(whole);
        return 0;
    }
    size_t have = 0, start = 0, fed = 0;
    uint64_t sum2 = 0;
    int stop2 = 0;
    while (fed < size && !stop2) {
        size_t piece = 1 + (size_t)((unsigned char)data[fed] % 97);
        if (piece > size - fed) {
            piece = size - fed;
        }
        memcpy(acc + have, data + fed, piece);
        have += piece;
        fed += piece;
        /* An exactly sized copy of the unconsumed bytes, so ASan sees over-reads. */
        size_t pending = have - start;
        char *view = malloc(pending ? pending : 1);
        if (view == NULL) {
            break;
        }
        memcpy(view, acc + start, pending);
        start += consume(view, pending, &sum2, &stop2);
        free(view);
    }
    if (!stop1 && !stop2) {
        assert(sum1 == sum2 && start == used1);
    }
    free(acc);
    free(whole);
    return 0;
}
