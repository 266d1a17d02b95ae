/*
 * libFuzzer target for the SDP parser of proto/ and control URL resolution.
 *
 * The input is an SDP body, copied into a block of exactly its size. Every slice of the
 * result must lie inside it, every listed format must be found by its payload type, fmtp
 * lookups must return slices of their fmtp text, and resolving each control against a base
 * with and without a trailing '/' must give a URL that starts with the base (or is the
 * absolute control itself). The rtsp:// URL parser is fed the same bytes.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *g_base;
static size_t g_len;

static void check_slice(ch_slice_t s)
{
    if (s.len == 0) {
        return;
    }
    assert(s.ptr >= g_base && s.ptr + s.len <= g_base + g_len);
    assert(memchr(s.ptr, '\n', s.len) == NULL);
}

static void check_resolve(ch_slice_t control)
{
    static const char *const bases[] = {"rtsp://cam/live", "rtsp://cam/live/"};
    for (size_t k = 0; k < 2; k++) {
        ch_slice_t base = {bases[k], strlen(bases[k])};
        ch_buf_t b;
        ch_buf_init(&b);
        assert(ch_proto_sdp_resolve_control(base, control, &b) == 0);
        int starts = b.len >= base.len && memcmp(b.data, base.ptr, base.len) == 0;
        assert(starts || b.len <= control.len);
        /* Never two slashes joined where base and a relative control meet (an absolute
         * control comes back unchanged and may hold anything). */
        int unchanged = b.len == control.len && memcmp(b.data, control.ptr, control.len) == 0;
        if (starts && b.len > base.len && !unchanged) {
            assert(!(b.data[base.len - 1] == '/' && b.data[base.len] == '/'));
        }
        ch_buf_fini(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    g_base = buf;
    g_len = size;

    ch_proto_sdp_t *sdp = malloc(sizeof(*sdp));
    if (sdp == NULL) {
        free(buf);
        return 0;
    }
    int rc = ch_proto_sdp_parse(buf, size, sdp);
    assert(rc == 0 || rc == CH_EPARSE || rc == CH_ETOOBIG);
    if (rc == 0) {
        assert(sdp->num_media <= CH_PROTO_SDP_MAX_MEDIA);
        check_slice(sdp->origin);
        check_slice(sdp->session_name);
        check_slice(sdp->control);
        check_slice(sdp->connection);
        check_slice(sdp->bandwidth);
        check_slice(sdp->range);
        check_resolve(sdp->control);
        for (size_t i = 0; i < sdp->num_media; i++) {
            const ch_proto_sdp_media_t *m = &sdp->media[i];
            check_slice(m->type);
            check_slice(m->proto);
            check_slice(m->control);
            check_slice(m->connection);
            check_slice(m->bandwidth);
            check_slice(m->direction);
            assert(m->type.len > 0 && m->proto.len > 0);
            assert(m->num_formats <= CH_PROTO_SDP_MAX_FORMATS);
            check_resolve(m->control);
            for (size_t k = 0; k < m->num_formats; k++) {
                const ch_proto_sdp_format_t *f = &m->formats[k];
                assert(f->pt <= 127);
                assert(ch_proto_sdp_format_find(m, f->pt) != NULL);
                check_slice(f->encoding);
                check_slice(f->enc_params);
                check_slice(f->fmtp);
                assert((f->encoding.len == 0) == (f->clock_rate == 0));
                static const char *const names[] = {"sprop-parameter-sets", "packetization-mode",
                                                    "sprop-vps", "sprop-sps", "sprop-pps"};
                for (size_t n = 0; n < CH_ARRAY_SIZE(names); n++) {
                    ch_slice_t v;
                    if (ch_proto_sdp_fmtp_param(f->fmtp, names[n], &v) == 0 && v.len > 0) {
                        assert(v.ptr >= f->fmtp.ptr && v.ptr + v.len <= f->fmtp.ptr + f->fmtp.len);
                    }
                }
            }
        }
    }
    free(sdp);

    /* The same bytes as a URL, and as a control against an empty base. */
    ch_proto_url_t u;
    int urc = ch_proto_url_parse(buf, size, &u);
    assert(urc == 0 || urc == CH_EPARSE || urc == CH_EUNSUPP);
    if (urc == 0) {
        check_slice(u.scheme);
        check_slice(u.user);
        check_slice(u.password);
        check_slice(u.host);
        check_slice(u.path_query);
        check_slice(u.query);
        assert(u.host.len > 0 && u.port > 0);
        char dec[64];
        int drc = ch_proto_url_decode(u.password, dec, sizeof(dec));
        /* The parser accepts "%00" as a valid escape; decoding refuses it. */
        assert(drc >= 0 || drc == CH_ETOOBIG || (drc == CH_EPARSE && u.password.len >= 3));
        if (drc >= 0) {
            assert(strlen(dec) == (size_t)drc);
        }
        ch_buf_t b;
        ch_buf_init(&b);
        ch_proto_url_append(&u, CH_PROTO_URL_WIRE, &b);
        /* What we print must parse back to the same host, port and path. */
        ch_proto_url_t again;
        assert(ch_proto_url_parse(b.data, b.len, &again) == 0);
        assert(again.port == u.port && again.host.len == u.host.len && !again.has_userinfo);
        assert(again.path_query.len == u.path_query.len);
        ch_buf_reset(&b);
        ch_proto_url_append(&u, CH_PROTO_URL_LOG, &b);
        ch_buf_fini(&b);
    }
    ch_buf_t b;
    ch_buf_init(&b);
    int crc = ch_proto_sdp_resolve_control((ch_slice_t){NULL, 0}, (ch_slice_t){buf, size}, &b);
    assert(crc == 0 || crc == CH_EPARSE);
    ch_buf_fini(&b);
    free(buf);
    return 0;
}
