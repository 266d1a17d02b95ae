/*
 * media/camera.h: one camera's stream on its loop (camera.c): its lifecycle (made by the first
 * viewer or hold, its pull started and stopped, warm while held, freed once idle), its source
 * as the control loop sent it, its stores and figures. The leaves (pull.c, viewer.c, ws.c)
 * call the camera and the loop, never each other: what the pull learns reaches the viewers
 * through the functions below.
 */
#ifndef CH_MEDIA_CAMERA_H
#define CH_MEDIA_CAMERA_H

#include "codec/codec.h"
#include "media/loop.h"
#include "proto/proto.h"

#include <sys/socket.h>

typedef struct ch_media__ws ch_media__ws_t; /* ws.c */

typedef enum ch_media__pull_state {
    PULL_STOPPED = 0,
    PULL_SOURCE, /* the camera's source is asked of the control loop */
    PULL_CONNECTING,
    PULL_OPTIONS,
    PULL_DESCRIBE,
    PULL_SETUP,
    PULL_PLAY,
    PULL_PLAYING,
    PULL_BACKOFF,
} ch_media__pull_state_t;

/* The pull connection's read buffer (fixed: a camera whose answer or frame does not fit is cut)
 * and its write queue (requests only). */
#define CH_MEDIA__PULL_IN  (2 * (CH_MEDIA_MAX_PACKET + 4) + 8192)
#define CH_MEDIA__PULL_OUT (64 * 1024)

/* The camera side of one stream (pull.c). */
typedef struct ch_media__pull {
    ch_media__pull_state_t state;
    ch_net_conn_t *conn;          /* the RTSP connection (net's, on the heap), NULL when none */
    void *resolving;              /* a name lookup in flight */
    struct sockaddr_storage peer; /* the camera's address (UDP packets must come from it) */
    ch_media__sock_t *udp[2];     /* RTP and RTCP over UDP (relay.pull_transport = udp) */
    uint16_t udp_port;
    ch_media_source_t src;
    char url[1024]; /* the URL asked now (after redirects), with its userinfo */
    /* The exchange with the camera (proto's RTSP client session): the URL as on a request
     * line, credentials, challenge, redirects, controls, Session, Transport, a 461 to UDP. */
    ch_proto_rtsp_client_t rtsp;
    uint8_t pt; /* the video payload type */
    ch_codec_stream_t codec;
    int64_t state_since_ms; /* wall clock */
    int64_t connect_mono_ms;
    int64_t last_rx_ms;   /* monotonic: the last video packet accepted */
    uint64_t bad_packets; /* on the video channel since then, refused by the codec module */
    int64_t next_keepalive_ms;
    int64_t retry_at_ms;
    int64_t backoff_ms;
    int got_key_this_session;
    int64_t first_key_ms;
    unsigned reconnects;
    char last_error[160];
    /* Continuity of what viewers get across reconnects. */
    int have_out, new_session;
    uint16_t seq_delta, out_seq;
    uint32_t ts_delta, out_ts, ssrc;
    uint32_t in_ssrc;   /* the camera's SSRC in this session */
    int confirmed;      /* in_ssrc is taken (three packets in sequence) */
    uint32_t cand_ssrc; /* a source not yet taken: its SSRC, last seq, packets in sequence */
    uint16_t cand_seq;
    unsigned cand_count;
    ch_buf_t pend; /* its packets meanwhile: [u32 length][bytes]... */
    int64_t out_mono_ms;
} ch_media__pull_t;

/* One camera's stream on its loop. */
struct ch_media__cam {
    int64_t id;
    ch_media__loop_t *loop;
    ch_media__cam_t *next;
    ch_media_stream_t *store;
    ch_media__pull_t pull;
    /* The camera's source as the control loop last sent it (ch_media_relay_source). */
    enum { SRC_UNKNOWN = 0, SRC_ASKED, SRC_KNOWN, SRC_NONE } src_state;
    ch_media_source_t src;
    char *sdp; /* what viewers' DESCRIBE gets, NULL until the camera's is known */
    ch_codec_kind_t kind;
    ch_media__conn_t *conns; /* viewers bound to this camera (list through cam_next) */
    size_t nplaying;
    unsigned holds;
    int no_source;         /* the camera has no stream URL: dropped despite holds */
    int64_t idle_since_ms; /* monotonic; 0 while it has viewers or holds */
    /* figures */
    uint64_t bytes_in, packets_in, frames, keyframes;
    uint64_t last_frames, last_bytes;
    int64_t last_rate_ms;
    double fps;
    uint64_t bitrate_bps;
    uint64_t frames_at_key;
    uint32_t gop_frames;
    ch_media__ws_t *ws; /* the stream for browsers (ws.c), from the first WebSocket viewer */
    size_t unflushed;   /* bytes stored since viewers were last written to */
    int flush_due;      /* a frame ended since */
};

/* The loop's camera, or NULL; ch_media__cam_get makes it when missing. */
ch_media__cam_t *ch_media__cam_find(ch_media__loop_t *l, int64_t id);
ch_media__cam_t *ch_media__cam_get(ch_media__loop_t *l, int64_t id);
/* Frees the camera: its pull stopped, its stores freed. Its viewers must have left. */
void ch_media__cam_free(ch_media__cam_t *c);
/* Its viewers or holds changed: starts the pull, or counts the idle time from now. */
void ch_media__cam_touch(ch_media__cam_t *c);

/* What the loop's commands and tick ask of its cameras. */
void ch_media__cam_hold(ch_media__loop_t *l, int64_t id, int delta);
void ch_media__cam_end_grant(ch_media__loop_t *l, int64_t grant_id); /* every camera's viewers */
/* The control loop's message: the camera's source (NULL: none). A pull waiting for it goes
 * on; one running under another source restarts. No-op for a camera not on the loop. */
void ch_media__cam_source_sent(ch_media__loop_t *l, int64_t id, const ch_media_source_t *src);
/* Pulls' deadlines, pending writes, rates, idle cameras freed. */
void ch_media__cam_tick_all(ch_media__loop_t *l, int64_t now);
/* The camera's line of the streams snapshot (its viewers in a new array s->viewers). */
void ch_media__cam_info(ch_media__cam_t *c, ch_media_stream_info_t *s);

/* For the pull. */
/* The camera's source for a pull about to connect (an empty URL: none); or NULL when it is
 * asked of the control loop: the answer starts the waiting pull (PULL_SOURCE) again. */
const ch_media_source_t *ch_media__cam_source(ch_media__cam_t *c);
void ch_media__cam_ready(ch_media__cam_t *c);  /* the SDP is known: answer waiting DESCRIBEs */
void ch_media__cam_failed(ch_media__cam_t *c); /* the camera cannot be reached now */
void ch_media__cam_flush(ch_media__cam_t *c);  /* new packets: write to every viewer */
/* The session broke or changed: the unfinished frame is dropped from every store. */
void ch_media__cam_break(ch_media__cam_t *c);
/* The codec state is about to be reset (a new SDP): the browsers' assembler starts over. */
void ch_media__cam_codec_reset(ch_media__cam_t *c);
/* Inspects one video packet (ch_codec_stream_push, through the browsers' assembler while
 * there is one), then, once the packet is stored, drains what that made for browsers. */
int ch_media__cam_inspect(ch_media__cam_t *c, const ch_codec_rtp_t *rtp, ch_codec_pkt_t *info);
void ch_media__cam_stored(ch_media__cam_t *c);

/* For the viewers: the store a browser's WebSocket viewer joins, or NULL. */
ch_media_stream_t *ch_media__cam_browser_store(ch_media__cam_t *c);

#endif /* CH_MEDIA_CAMERA_H */
