/*
 * media/ws.h: a camera's stream for browsers (ws.c), a leaf the camera owns: the pull's
 * packets reach it through the camera (ch_media__cam_inspect, ch_media__cam_stored), viewers
 * join its store through the camera (ch_media__cam_browser_store).
 */
#ifndef CH_MEDIA_WS_H
#define CH_MEDIA_WS_H

#include "media/camera.h"

void ch_media__ws_enable(ch_media__cam_t *c);
void ch_media__ws_free(ch_media__cam_t *c);
ch_media_stream_t *ch_media__ws_store(ch_media__cam_t *c);
/* In place of ch_codec_stream_push while c->ws exists; then drain after the packet is stored. */
int ch_media__ws_push(ch_media__cam_t *c, const ch_codec_rtp_t *rtp, ch_codec_pkt_t *info);
void ch_media__ws_drain(ch_media__cam_t *c);
void ch_media__ws_reset(ch_media__cam_t *c); /* the camera reconnects */

#endif /* CH_MEDIA_WS_H */
