/*
 * libFuzzer target: a camera's answers to proto's RTSP client session (rtsp_client.c), read
 * as a pull reads them, until the session ends or the bytes run out: heads and bodies,
 * Basic and Digest challenges, redirects (rtsp:// and rtsps://, followed on the same bytes;
 * never from rtsps:// back to rtsp://), SDPs whose first
 * m= control is set up, SETUP answers with Session and Transport, keep-alives. The first byte
 * chooses the credentials, the retries, a UDP offer and how much of the input each read sees.
 * A session never asks anything after it failed, and always says why it failed.
 */
#include "proto/proto.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned flags = data[0];
    data++;
    size--;
    static ch_proto_rtsp_client_t c;
    ch_proto_rtsp_client_init(&c, "cctvhub-fuzz", (flags >> 1) & 1);
    int rc =
        ch_proto_rtsp_client_begin(&c, "rtsp://10.0.0.1:554/stream1", (flags & 1) ? "admin" : NULL,
                                   (flags & 1) ? "pass word" : NULL);
    assert(rc == 0);
    ch_proto_rtsp_client_start(&c);
    assert(c.out.len > 0);
    size_t window = 1 + ((flags >> 3) & 0x1f) * 64; /* what a read has seen: 1 .. 1985 bytes */
    size_t off = 0;
    while (off < size && c.state != CH_PROTO_RTSP_CLIENT_FAILED) {
        size_t len = size - off < window ? size - off : window;
        /* An exactly sized copy, so that a read past the end is caught. */
        char *copy = ch_malloc(len);
        memcpy(copy, data + off, len);
        ch_buf_reset(&c.out);
        rc = ch_proto_rtsp_client_read(&c, copy, len);
        ch_free(copy);
        if (rc == CH_EAGAIN) {
            if (len == size - off) {
                break;
            }
            window *= 2;
            continue;
        }
        if (rc < 0) {
            assert(c.state == CH_PROTO_RTSP_CLIENT_FAILED);
            break;
        }
        assert((size_t)rc <= len);
        off += (size_t)rc;
        if (c.state == CH_PROTO_RTSP_CLIENT_REDIRECTED) {
            assert(strncasecmp(c.redirect, "rtsp://", 7) == 0 ||
                   strncasecmp(c.redirect, "rtsps://", 8) == 0);
            unsigned was_tls = c.tls;
            int brc = ch_proto_rtsp_client_begin(&c, c.redirect, "admin", "pass word");
            /* Once over TLS, a redirect never leaves it. */
            assert(!(brc == 0 && was_tls && !c.tls));
            if (brc == 0) {
                ch_proto_rtsp_client_start(&c);
            }
        } else if (c.state == CH_PROTO_RTSP_CLIENT_DESCRIBED) {
            ch_proto_sdp_t sdp;
            if (ch_proto_sdp_parse(c.sdp.data, c.sdp.len, &sdp) == 0 && sdp.num_media > 0) {
                ch_proto_rtsp_client_setup(&c, sdp.control, sdp.media[0].control,
                                           (flags & 4) ? 5000 : 0);
            } else {
                break;
            }
        } else if (c.state == CH_PROTO_RTSP_CLIENT_PLAYING) {
            ch_proto_rtsp_client_keepalive(&c);
            assert(c.out.len > 0);
        }
    }
    if (c.state == CH_PROTO_RTSP_CLIENT_FAILED) {
        assert(c.error[0] != '\0');
        assert(c.out.len == 0);
    }
    ch_proto_rtsp_client_fini(&c);
    return 0;
}
