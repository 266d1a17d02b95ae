/*
 * media/loop.h: the media loops (loop.c), the relay's floor inside media: threads with their
 * own libuv loop, each an inbox of commands from other threads and a 100 ms tick; sockets,
 * records on the pool, the streams snapshot and the control loop's side of the relay. The
 * camera (camera.h) and the leaves (pull.c, viewer.c, ws.c) build on it. Everything here
 * belongs to one media loop's thread, except the fields marked otherwise.
 */
#ifndef CH_MEDIA_LOOP_H
#define CH_MEDIA_LOOP_H

#include "media/media.h"
#include "net/net.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct ch_media__loop ch_media__loop_t;
typedef struct ch_media__cam ch_media__cam_t;   /* camera.h */
typedef struct ch_media__conn ch_media__conn_t; /* viewer.c */

/* A socket watched by a uv_poll_t. The handle is closed (and the fd with it, unless keep_fd)
 * asynchronously; the owner frees nothing of it itself. */
typedef struct ch_media__sock {
    uv_poll_t poll;
    int fd;
    int events; /* UV_READABLE | UV_WRITABLE now watched */
    int keep_fd;
    void *owner;
    void (*on_event)(struct ch_media__sock *s, int status, int events);
    void (*on_closed)(struct ch_media__sock *s); /* after the handle is closed, or NULL */
} ch_media__sock_t;

ch_media__sock_t *ch_media__sock_new(ch_media__loop_t *l, int fd, void *owner,
                                     void (*on_event)(ch_media__sock_t *, int, int));
void ch_media__sock_want(ch_media__sock_t *s, int events);
void ch_media__sock_close(ch_media__sock_t *s);

/* A command from another thread. */
typedef struct ch_media__cmd {
    enum { CMD_HOLD = 1, CMD_END_GRANT, CMD_CONN, CMD_STOP, CMD_SOURCE, CMD_SWEEP } kind;
    int64_t id;
    int delta;
    ch_media_source_t *src; /* CMD_SOURCE: the camera's source, or NULL for none; owned */
    ch_media__conn_t *conn; /* CMD_CONN: a viewer handed over, its socket closed on the sender */
    struct ch_media__cmd *next;
} ch_media__cmd_t;

struct ch_media__loop {
    ch_media_relay_t *relay;
    unsigned index;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    pthread_t thread;
    pthread_mutex_t lock; /* guards inbox */
    ch_media__cmd_t *inbox, **inbox_tail;
    ch_media__sock_t *listener;     /* loop 0 only */
    ch_media__sock_t *tls_listener; /* loop 0 only, with RTSPS: its connections speak TLS */
    int listener_paused;            /* out of descriptors: resumed at the next tick */
    atomic_int sweep_posted;        /* a CMD_SWEEP is in the inbox (any thread) */
    ch_media__cam_t *cams;
    ch_media__conn_t *conns; /* every viewer connection of this loop */
    uv_idle_t more;          /* runs while viewers have more to write at the next turn */
    int stopping;
    int closed; /* guarded by lock: the wake handle is closed */
    int64_t last_snapshot_ms;
    /* Counters of what has gone (cameras freed, viewers closed) and of views started; the
     * snapshot adds the live ones and publishes the sum in the relay's totals. */
    uint64_t gone_bytes_in, gone_bytes_out[2], views[2];
};

struct ch_media_relay {
    ch_media_relay_config_t cfg;
    uint64_t nofile; /* RLIMIT_NOFILE's soft limit at start; 0: unlimited (no reserve band) */
    /* Connections not yet authorized: entered on accept (loop 0) or hand-over (the HTTP
     * thread), left on authorization or close on any loop (they move to their camera's loop
     * before they authorize). */
    ch_net_door_t door; /* net.h: the same rule as HTTP's; evicts the oldest */
    _Atomic uint64_t refused[CH_MEDIA_REFUSED__COUNT];
    unsigned nloops;
    ch_media__loop_t *loops;
    char host[64];
    int port;
    /* RTSPS (cfg.tls): the port bound (0: none), and the context and handshake deadline new
     * connections take, swapped by ch_media_relay_set_tls from any thread (under tls_lock). */
    int tls_port;
    pthread_mutex_t tls_lock;
    ch_net_tls_t *tls;
    uint64_t tls_handshake_ms;
    _Atomic uint64_t tls_failed, tls_timed_out;
    /* Guarded by lock: each loop's last snapshot, for ch_media_relay_each_stream. */
    pthread_mutex_t lock;
    ch_media_stream_info_t **snap; /* per loop: an array of nsnap[i] (viewers inside) */
    size_t *nsnap;
    ch_media_relay_totals_t *totals; /* per loop, as of its last snapshot */
    /* The control loop's side (cfg.control): cameras whose source a pull waits for, posted by
     * media threads and handed to cfg.want_source there. NULL without a control loop. */
    uv_async_t *control_wake;
    pthread_mutex_t control_lock; /* wanted */
    int64_t *wanted;
    size_t nwanted, capwanted;
};

/* Monotonic milliseconds. */
int64_t ch_media__now_ms(void);

/* Queues a command for the loop (from any thread); the loop frees it. */
void ch_media__post(ch_media__loop_t *l, ch_media__cmd_t *cmd);
/* The loop a camera belongs to (id mod N). */
ch_media__loop_t *ch_media__owner(ch_media_relay_t *r, int64_t camera_id);
/* The door evicted a connection: every loop closes its evicted ones soon (from any thread). */
void ch_media__sweep_soon(ch_media_relay_t *r);
/* Sends a record to the pool; done (may be NULL) runs on the loop with the result. */
void ch_media__record(ch_media__loop_t *l, const ch_media_record_t *rec, ch_media__conn_t *c,
                      void (*done)(ch_media__conn_t *c, int rc));
/* A failed RTSPS handshake of peer, for what (OpenSSL's reason): cfg.tls_refused runs on the
 * pool (both copied). */
void ch_media__tls_refused(ch_media__loop_t *l, const char *peer, const char *why);
/* Asks the control loop for a camera's source (cfg.want_source runs there); 0, or CH_ENOENT
 * when the relay has no control loop to ask. Media thread. */
int ch_media__want_source(ch_media_relay_t *r, int64_t camera_id);

#endif /* CH_MEDIA_LOOP_H */
