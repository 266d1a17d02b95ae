/*
 * media/pull.h: the camera side of a stream (pull.c), a leaf driven by the camera (camera.c):
 * started, stopped, restarted and ticked by it; what it learns goes back to the camera.
 */
#ifndef CH_MEDIA_PULL_H
#define CH_MEDIA_PULL_H

#include "media/camera.h"

void ch_media__pull_start(ch_media__cam_t *c);
void ch_media__pull_stop(ch_media__cam_t *c);
/* The camera's stream settings changed: a running (or awaited) pull drops its session and
 * connects again at the next tick with the camera's source; viewers stay. */
void ch_media__pull_restart(ch_media__cam_t *c);
void ch_media__pull_tick(ch_media__cam_t *c, int64_t now);
const char *ch_media__pull_state_name(ch_media__pull_state_t s);

#endif /* CH_MEDIA_PULL_H */
