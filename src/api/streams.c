/*
 * api/streams.c: GET /api/v1/streams's answer rendered from the media relay's typed snapshot
 * (ch_media_stream_info_t, see media.h): the relay gives the figures, the API their JSON.
 */
#include "api/api.h"

#include "media/media.h"

#include <jansson.h>

/* One viewer of a stream. */
static json_t *viewer_json(const ch_media_viewer_info_t *v)
{
    char since[32];
    ch_time_format_rfc3339(v->since_ms, since);
    return json_pack("{s:s, s:I, s:I, s:I, s:s, s:s, s:I, s:i, s:I}", "transport",
                     v->transport != NULL ? v->transport : "rtsp", "grant_id",
                     (json_int_t)v->grant_id, "event_id", (json_int_t)v->event_id, "agency_id",
                     (json_int_t)v->agency_id, "peer", v->peer, "since", since, "bytes",
                     (json_int_t)v->bytes, "skips", (int)v->skips, "lag_bytes",
                     (json_int_t)v->lag_bytes);
}

/* One stream: its pull's state and figures, and its viewers. */
static json_t *stream_json(const ch_media_stream_info_t *s)
{
    char since[32];
    ch_time_format_rfc3339(s->state_since_ms, since);
    json_t *viewers = json_array();
    for (size_t i = 0; i < s->nviewers; i++) {
        json_array_append_new(viewers, viewer_json(&s->viewers[i]));
    }
    json_t *o = json_pack(
        "{s:I, s:i, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:i, s:i, s:I, s:o}", "camera_id",
        (json_int_t)s->camera_id, "loop", (int)s->loop, "state", s->state, "state_since", since,
        "reconnects", (int)s->reconnects, "bytes_in", (json_int_t)s->bytes_in, "packets_in",
        (json_int_t)s->packets_in, "keyframes", (json_int_t)s->keyframes, "cached_packets",
        (json_int_t)s->cached_packets, "holds", (int)s->holds, "viewer_count", (int)s->nviewers,
        "first_keyframe_ms", (json_int_t)s->first_key_ms, "viewers", viewers);
    json_object_set_new(o, "codec", s->codec[0] ? json_string(s->codec) : json_null());
    json_object_set_new(o, "transport", json_string(s->transport != NULL ? s->transport : "tcp"));
    json_object_set_new(o, "width", s->width ? json_integer(s->width) : json_null());
    json_object_set_new(o, "height", s->height ? json_integer(s->height) : json_null());
    json_object_set_new(o, "fps", json_real((double)(int64_t)(s->fps * 100 + 0.5) / 100.0));
    json_object_set_new(o, "bitrate_bps", json_integer((json_int_t)s->bitrate_bps));
    json_object_set_new(o, "gop_frames", s->gop_frames ? json_integer(s->gop_frames) : json_null());
    json_object_set_new(o, "last_error",
                        s->last_error[0] ? json_string(s->last_error) : json_null());
    return o;
}

json_t *ch_api_streams_json(const ch_media_stream_info_t *streams, size_t n)
{
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(items, stream_json(&streams[i]));
    }
    return json_pack("{s:o, s:I, s:n}", "items", items, "total", (json_int_t)n, "next");
}
