/*
 * media/camera.c: one camera's stream on its loop (see camera.h). A camera is made by its first
 * viewer or hold; its pull starts then, keeps running while a viewer or a hold stays, and the
 * camera is freed idle_stop_s after the last left (at once when it has no source and no viewer
 * waits). Its source is what the control loop sent: a pull that has none asks and waits. The
 * pull's news reaches the viewers through here.
 */
#include "media/camera.h"

#include "media/pull.h"
#include "media/viewer.h"
#include "media/ws.h"

#include <stdio.h>
#include <string.h>

/* ---- the table ----------------------------------------------------------------------------- */

ch_media__cam_t *ch_media__cam_find(ch_media__loop_t *l, int64_t id)
{
    for (ch_media__cam_t *c = l->cams; c != NULL; c = c->next) {
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}

ch_media__cam_t *ch_media__cam_get(ch_media__loop_t *l, int64_t id)
{
    ch_media__cam_t *c = ch_media__cam_find(l, id);
    if (c != NULL) {
        return c;
    }
    c = ch_calloc(1, sizeof(*c));
    c->id = id;
    c->loop = l;
    ch_media_stream_config_t sc = {l->relay->cfg.window, 0, 1};
    c->store = ch_media_stream_new(&sc);
    /* Browsers too start at once from a cached keyframe: their stream is made with the pull
     * (the assembler and muxer cost about 20 us a second for a 4 Mbit/s camera). */
    ch_media__ws_enable(c);
    c->pull.state_since_ms = ch_time_now_ms();
    c->idle_since_ms = ch_media__now_ms();
    c->next = l->cams;
    l->cams = c;
    return c;
}

void ch_media__cam_free(ch_media__cam_t *c)
{
    ch_media__loop_t *l = c->loop;
    for (ch_media__cam_t **p = &l->cams; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    l->gone_bytes_in += c->bytes_in;
    ch_media__pull_stop(c);
    ch_media__ws_free(c);
    ch_media_stream_free(c->store);
    ch_free(c->sdp);
    ch_free(c);
}

void ch_media__cam_touch(ch_media__cam_t *c)
{
    if (c->holds > 0 || c->conns != NULL) {
        c->idle_since_ms = 0;
        if (c->pull.state == PULL_STOPPED && !c->loop->stopping) {
            ch_media__pull_start(c);
        }
    } else if (c->idle_since_ms == 0) {
        c->idle_since_ms = ch_media__now_ms();
    }
}

void ch_media__cam_hold(ch_media__loop_t *l, int64_t id, int delta)
{
    ch_media__cam_t *c = delta > 0 ? ch_media__cam_get(l, id) : ch_media__cam_find(l, id);
    if (c == NULL) {
        return;
    }
    if (delta > 0) {
        c->holds += (unsigned)delta;
    } else {
        unsigned d = (unsigned)-delta;
        c->holds = c->holds > d ? c->holds - d : 0;
    }
    ch_media__cam_touch(c);
}

void ch_media__cam_end_grant(ch_media__loop_t *l, int64_t grant_id)
{
    for (ch_media__cam_t *c = l->cams; c != NULL; c = c->next) {
        ch_media__viewers_end_grant(c, grant_id);
    }
}

/* ---- the source ---------------------------------------------------------------------------- */

const ch_media_source_t *ch_media__cam_source(ch_media__cam_t *c)
{
    switch (c->src_state) {
    case SRC_KNOWN:
        return &c->src;
    case SRC_ASKED:
        return NULL;
    case SRC_NONE:
        /* An answer of none is used once, not kept: the next start asks again. */
        c->src_state = SRC_UNKNOWN;
        memset(&c->src, 0, sizeof(c->src));
        return &c->src;
    case SRC_UNKNOWN:
        break;
    }
    if (ch_media__want_source(c->loop->relay, c->id) != 0) {
        memset(&c->src, 0, sizeof(c->src));
        return &c->src; /* nobody to ask: no source */
    }
    c->src_state = SRC_ASKED;
    return NULL;
}

/* The control loop's message: the camera's source (NULL: none). A pull waiting for it goes
 * on; one running under another source restarts. */
static void cam_source_set(ch_media__cam_t *c, const ch_media_source_t *src)
{
    int has = src != NULL && src->url[0] != '\0';
    int same = has && c->src_state == SRC_KNOWN && strcmp(c->src.url, src->url) == 0 &&
               strcmp(c->src.user, src->user) == 0 && strcmp(c->src.password, src->password) == 0;
    if (has) {
        c->src = *src;
        c->src_state = SRC_KNOWN;
    } else {
        memset(&c->src, 0, sizeof(c->src));
        c->src_state = SRC_NONE;
    }
    if (c->pull.state == PULL_SOURCE) {
        ch_media__pull_start(c);
    } else if (!same) {
        ch_media__pull_restart(c);
    }
}

void ch_media__cam_source_sent(ch_media__loop_t *l, int64_t id, const ch_media_source_t *src)
{
    ch_media__cam_t *c = ch_media__cam_find(l, id);
    if (c != NULL && !l->stopping) {
        cam_source_set(c, src);
    }
}

/* ---- the tick and the snapshot ------------------------------------------------------------- */

static void rate_update(ch_media__cam_t *c, int64_t now)
{
    if (c->last_rate_ms == 0) {
        c->last_rate_ms = now;
        c->last_frames = c->frames;
        c->last_bytes = c->bytes_in;
        return;
    }
    int64_t dt = now - c->last_rate_ms;
    if (dt < 1000) {
        return;
    }
    c->fps = (double)(c->frames - c->last_frames) * 1000.0 / (double)dt;
    c->bitrate_bps = (c->bytes_in - c->last_bytes) * 8000u / (uint64_t)dt;
    c->last_rate_ms = now;
    c->last_frames = c->frames;
    c->last_bytes = c->bytes_in;
}

void ch_media__cam_tick_all(ch_media__loop_t *l, int64_t now)
{
    unsigned idle_ms = l->relay->cfg.idle_stop_s * 1000u;
    for (ch_media__cam_t *c = l->cams, *next; c != NULL; c = next) {
        next = c->next;
        ch_media__pull_tick(c, now);
        if (c->unflushed > 0) {
            ch_media__cam_flush(c);
        }
        rate_update(c, now);
        if (c->no_source && c->conns == NULL) {
            ch_media__cam_free(c);
            continue;
        }
        if (c->idle_since_ms != 0 && c->conns == NULL && c->holds == 0 &&
            now - c->idle_since_ms >= (int64_t)idle_ms) {
            ch_log(CH_LOG_INFO, "media", "msg=\"pull stopped: no viewer\" camera=%lld",
                   (long long)c->id);
            ch_media__cam_free(c);
        }
    }
}

void ch_media__cam_info(ch_media__cam_t *c, ch_media_stream_info_t *s)
{
    const ch_media__pull_t *p = &c->pull;
    s->camera_id = c->id;
    s->loop = c->loop->index;
    s->state = ch_media__pull_state_name(p->state);
    s->transport = p->udp_port != 0 ? "udp" : "tcp";
    s->state_since_ms = p->state_since_ms;
    if (p->codec.sps_valid) {
        snprintf(s->codec, sizeof(s->codec), "%s", p->codec.sps_info.codec);
        s->width = p->codec.sps_info.width;
        s->height = p->codec.sps_info.height;
    }
    s->fps = c->fps;
    s->bitrate_bps = c->bitrate_bps;
    s->gop_frames = c->gop_frames;
    s->bytes_in = c->bytes_in;
    s->packets_in = c->packets_in;
    s->keyframes = c->keyframes;
    s->reconnects = p->reconnects;
    s->holds = c->holds;
    snprintf(s->last_error, sizeof(s->last_error), "%s", p->last_error);
    s->cached_packets = ch_media_stream_held(c->store);
    s->first_key_ms = p->first_key_ms;
    size_t nv = ch_media__viewers_info(c, NULL, 0);
    if (nv > 0) {
        ch_media_viewer_info_t *vi = ch_calloc(nv, sizeof(*vi));
        s->nviewers = ch_media__viewers_info(c, vi, nv);
        s->viewers = vi;
    }
}

/* ---- between the pull and the viewers ------------------------------------------------------ */

void ch_media__cam_ready(ch_media__cam_t *c)
{
    ch_media__viewers_ready(c);
}

void ch_media__cam_failed(ch_media__cam_t *c)
{
    ch_media__viewers_failed(c);
}

void ch_media__cam_flush(ch_media__cam_t *c)
{
    ch_media__viewers_flush(c);
}

void ch_media__cam_break(ch_media__cam_t *c)
{
    ch_media_stream_drop_partial(c->store);
    ch_media__ws_reset(c);
}

void ch_media__cam_codec_reset(ch_media__cam_t *c)
{
    ch_media__ws_reset(c);
}

int ch_media__cam_inspect(ch_media__cam_t *c, const ch_codec_rtp_t *rtp, ch_codec_pkt_t *info)
{
    return c->ws != NULL ? ch_media__ws_push(c, rtp, info)
                         : ch_codec_stream_push(&c->pull.codec, rtp, info);
}

void ch_media__cam_stored(ch_media__cam_t *c)
{
    if (c->ws != NULL) {
        ch_media__ws_drain(c);
    }
}

ch_media_stream_t *ch_media__cam_browser_store(ch_media__cam_t *c)
{
    return ch_media__ws_store(c);
}
