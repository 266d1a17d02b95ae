/*
 * media/ws.c: a camera's stream for browsers, made once per camera and shared by every
 * WebSocket viewer. Made with the camera's first WebSocket viewer: from then on the pull hands
 * its packets to the codec module's access-unit assembler (in place of the inspection alone),
 * each whole access unit is muxed as one fMP4 fragment, and each fragment is stored once, as
 * the WebSocket message viewers get (frame header and moof + mdat), in the camera's second
 * fan-out store. Every keyframe is preceded by a text message naming the codec and size and by
 * the init segment, so that a viewer joining at the cached keyframe gets all it needs to start
 * a MediaSource from the store alone.
 */
#include "media/ws.h"

#include "media/camera.h"

#include <stdio.h>
#include <string.h>

struct ch_media__ws {
    ch_codec_assembler_t as;
    ch_codec_fmp4_t mux;
    ch_media_stream_t *store;
    uint8_t *frag;
    size_t frag_cap;
    uint64_t messages, dropped;
};

void ch_media__ws_enable(ch_media__cam_t *c)
{
    if (c->ws != NULL) {
        return;
    }
    ch_media__ws_t *w = ch_calloc(1, sizeof(*w));
    ch_codec_assembler_init(&w->as, &c->pull.codec);
    ch_codec_fmp4_reset(&w->mux);
    ch_media_stream_config_t sc = {c->loop->relay->cfg.window, 0, 0};
    w->store = ch_media_stream_new(&sc);
    c->ws = w;
}

void ch_media__ws_free(ch_media__cam_t *c)
{
    ch_media__ws_t *w = c->ws;
    if (w == NULL) {
        return;
    }
    ch_codec_assembler_fini(&w->as);
    ch_media_stream_free(w->store);
    ch_free(w->frag);
    ch_free(w);
    c->ws = NULL;
}

ch_media_stream_t *ch_media__ws_store(ch_media__cam_t *c)
{
    return c->ws != NULL ? c->ws->store : NULL;
}

int ch_media__ws_push(ch_media__cam_t *c, const ch_codec_rtp_t *rtp, ch_codec_pkt_t *info)
{
    return ch_codec_assembler_push(&c->ws->as, rtp, info);
}

void ch_media__ws_reset(ch_media__cam_t *c)
{
    if (c->ws != NULL) {
        ch_codec_assembler_reset(&c->ws->as);
    }
}

static void push(ch_media__cam_t *c, unsigned opcode, const uint8_t *data, size_t len,
                 unsigned flags)
{
    uint8_t hdr[CH_PROTO_WS_HEADER_MAX];
    size_t hl = ch_proto_ws_header(opcode, len, hdr);
    if (ch_media_stream_push_message(c->ws->store, hdr, hl, data, len, flags) >= 0) {
        c->ws->messages++;
        c->flush_due = 1;
        c->unflushed += hl + len;
    }
}

void ch_media__ws_drain(ch_media__cam_t *c)
{
    ch_media__ws_t *w = c->ws;
    const ch_codec_au_t *au;
    while ((au = ch_codec_assembler_next(&w->as)) != NULL) {
        size_t need = au->len + CH_CODEC_FMP4_FRAGMENT_OVERHEAD;
        if (need > w->frag_cap) {
            w->frag_cap = need * 2;
            ch_free(w->frag);
            w->frag = ch_malloc(w->frag_cap);
        }
        int n = ch_codec_fmp4_fragment(&w->mux, &c->pull.codec, au, w->frag, w->frag_cap);
        if (n < 0) {
            w->dropped++;
            continue;
        }
        if (au->flags & CH_CODEC_AU_KEYFRAME) {
            /* A viewer may start here: what the browser needs first, then the keyframe. */
            char text[160];
            int tl = snprintf(text, sizeof(text),
                              "{\"type\":\"init\",\"codec\":\"%s\",\"width\":%u,\"height\":%u,"
                              "\"serial\":%u}",
                              w->mux.codec, w->mux.width, w->mux.height, w->mux.init_serial);
            if (tl < 0 || (size_t)tl >= sizeof(text)) {
                continue;
            }
            push(c, CH_PROTO_WS_TEXT, (const uint8_t *)text, (size_t)tl, CH_MEDIA_AU_START);
            push(c, CH_PROTO_WS_BINARY, w->mux.init, w->mux.init_len, 0);
            push(c, CH_PROTO_WS_BINARY, w->frag, (size_t)n, CH_MEDIA_KEYFRAME | CH_MEDIA_AU_END);
        } else {
            push(c, CH_PROTO_WS_BINARY, w->frag, (size_t)n, CH_MEDIA_AU_START | CH_MEDIA_AU_END);
        }
    }
}
