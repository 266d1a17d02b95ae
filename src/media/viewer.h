/*
 * media/viewer.h: the viewers' side (viewer.c), a leaf: its connections on the loops (the
 * listener, hand-over between loops, ticks, the door's sweep) and, for the camera, what its
 * viewers are told (the SDP is known, the camera cannot be reached, new packets, a grant
 * ended) and what the snapshot shows of them.
 */
#ifndef CH_MEDIA_VIEWER_H
#define CH_MEDIA_VIEWER_H

#include "media/camera.h"

/* For the loop. */
/* Listens on fd on loop 0: plain RTSP, or with tls RTSPS (each connection accepted with the
 * relay's context in force). */
void ch_media__listener_start(ch_media__loop_t *l, int fd, int tls);
/* Takes a connection handed over to l; l NULL (the loop stopped) frees it. */
void ch_media__conn_adopt(ch_media__loop_t *l, ch_media__conn_t *conn);
void ch_media__conn_close(ch_media__conn_t *conn, const char *why);
void ch_media__conn_tick(ch_media__conn_t *conn, int64_t now);
void ch_media__loop_sweep(ch_media__loop_t *l); /* closes the loop's evicted connections */
ch_media__conn_t *ch_media__conn_next(ch_media__conn_t *conn); /* the loop's list */
/* Media bytes a playing viewer was written so far, and its transport (0 RTSP, 1 WebSocket);
 * 0 for a viewer not playing. */
uint64_t ch_media__conn_bytes(const ch_media__conn_t *conn, int *ws);

/* For the camera: its viewers. */
void ch_media__viewers_ready(ch_media__cam_t *c);  /* answers waiting DESCRIBEs */
void ch_media__viewers_failed(ch_media__cam_t *c); /* 503 to waiting DESCRIBEs (no SDP yet) */
void ch_media__viewers_flush(ch_media__cam_t *c);  /* writes new packets to every viewer */
void ch_media__viewers_end_grant(ch_media__cam_t *c, int64_t grant_id);
/* The playing viewers' lines of the snapshot: how many there are, at most max written. */
size_t ch_media__viewers_info(ch_media__cam_t *c, ch_media_viewer_info_t *out, size_t max);

#endif /* CH_MEDIA_VIEWER_H */
