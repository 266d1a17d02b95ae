/*
 * media: the relay's hot path (issue 6). This first part is the fan-out store of one camera:
 *
 *  - each RTP packet is stored once, with its 4-byte interleaved header ('$', channel,
 *    length) in front, in a buffer taken from the stream's own free list: no allocation per
 *    packet once the stream is warm, and no copy per viewer;
 *  - the stream keeps a window of packets, numbered from 0, that reaches back to the first
 *    packet of the access unit holding the latest keyframe: the GOP cache. A viewer that joins
 *    starts there at once, and then follows live;
 *  - a viewer is a cursor into the window (packet number and offset inside it);
 *    ch_media_viewer_iov() gathers what it has not written yet as iovecs for one writev, and
 *    ch_media_viewer_advance() moves the cursor by what the socket took;
 *  - backpressure: a viewer further behind than its byte budget skips to the latest GOP start
 *    (one skip); one that falls behind again while its skip is still unwritten is to be closed.
 *    A slow viewer never holds the camera: when the window is full, the viewers still at its
 *    oldest packet are moved to the GOP start or marked for closing.
 *
 * Sockets, loops and RTSP are the caller's: this file is pure memory, so tests can drive it
 * packet by packet. One stream and its viewers belong to one thread.
 */
#ifndef CH_MEDIA_H
#define CH_MEDIA_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define CH_MEDIA_MAX_PACKET 65535 /* an interleaved frame's length field is 16 bits */

typedef struct ch_media_stream ch_media_stream_t;

typedef struct ch_media_stream_config {
    size_t window;    /* most packets kept (GOP cache and viewers' backlog); 0 = 8192 */
    size_t pkt_bytes; /* buffer size for ordinary packets; larger ones get their own; 0 = 1600 */
} ch_media_stream_config_t;

/* Flags of a pushed packet (the codec module's CH_CODEC_PKT_* have the same values). */
#define CH_MEDIA_AU_START 0x01u
#define CH_MEDIA_KEYFRAME 0x04u

/* A viewer's cursor; the caller embeds it in its connection and keeps it zeroed until join. */
typedef struct ch_media_viewer {
    uint64_t next;       /* number of the next packet to write */
    size_t off;          /* bytes of it already written */
    size_t budget;       /* most bytes it may lag behind the head before a skip */
    uint64_t skipped_to; /* where its last skip went (0: never skipped) */
    unsigned skips;      /* how many times it skipped */
    int doomed;          /* 1: too slow even after a skip, or lost its window: close it */
    uint64_t bytes;      /* bytes written so far */
    struct ch_media_viewer *prev_v, *next_v; /* the stream's list */
    ch_media_stream_t *stream;
} ch_media_viewer_t;

/* A new stream (never NULL). */
ch_media_stream_t *ch_media_stream_new(const ch_media_stream_config_t *cfg);
/* Frees the stream; its viewers must have left. NULL is fine. */
void ch_media_stream_free(ch_media_stream_t *s);

/*
 * Stores one RTP packet (len 1..CH_MEDIA_MAX_PACKET) for interleaved channel `channel`, with
 * flags CH_MEDIA_AU_START / CH_MEDIA_KEYFRAME as the depacketizer reported them. A keyframe
 * moves the GOP start to the first packet of its access unit. Returns the packet's number, or
 * CH_ETOOBIG / CH_EINVAL.
 */
int64_t ch_media_stream_push(ch_media_stream_t *s, uint8_t channel, const uint8_t *rtp, size_t len,
                             unsigned flags);

/* The number the next packet will get, and the first packet of the cached GOP (equal to the
 * head while no keyframe has been seen). */
uint64_t ch_media_stream_head(const ch_media_stream_t *s);
uint64_t ch_media_stream_gop_start(const ch_media_stream_t *s);
/* Packets held now, and buffers allocated so far (for tests and metrics). */
size_t ch_media_stream_held(const ch_media_stream_t *s);
size_t ch_media_stream_allocated(const ch_media_stream_t *s);
size_t ch_media_stream_viewers(const ch_media_stream_t *s);

/* A viewer joins: its cursor starts at the GOP start, so its first bytes are a keyframe's. */
void ch_media_viewer_join(ch_media_stream_t *s, ch_media_viewer_t *v, size_t budget);
/* A viewer leaves (before its connection is freed). */
void ch_media_viewer_leave(ch_media_viewer_t *v);

/*
 * Gathers at most max iovecs of what v has not written, oldest first, and sets *bytes to their
 * total. Applies backpressure first (see above): a viewer that comes back doomed gets 0.
 */
size_t ch_media_viewer_iov(ch_media_viewer_t *v, struct iovec *iov, size_t max, size_t *bytes);

/* The socket took n bytes of what ch_media_viewer_iov gave. */
void ch_media_viewer_advance(ch_media_viewer_t *v, size_t n);

/* Bytes v is behind the head. */
size_t ch_media_viewer_lag(const ch_media_viewer_t *v);

#endif /* CH_MEDIA_H */
