/*
 * media/loop.c: the relay's loops (see loop.h, and media.h for the relay's API). Each media
 * loop is a thread with its own libuv loop, a 100 ms tick (the cameras' tick: stalls,
 * keep-alives, reconnects, idle pulls; viewers' deadlines; the streams snapshot) and an inbox
 * of commands from other threads. Cameras belong to loop (id mod N); the listener is loop 0's.
 * The control loop's side: the cameras whose source a pull asks for, handed to want_source.
 */
#include "media/loop.h"

#include "media/camera.h"
#include "media/viewer.h"

#include "core/config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS     100
#define SNAPSHOT_MS 500

int64_t ch_media__now_ms(void)
{
    return (int64_t)(ch_time_mono_ns() / 1000000u);
}

/* ---- sockets ------------------------------------------------------------------------------- */

static void sock_cb(uv_poll_t *h, int status, int events)
{
    ch_media__sock_t *s = h->data;
    s->on_event(s, status, events);
}

ch_media__sock_t *ch_media__sock_new(ch_media__loop_t *l, int fd, void *owner,
                                     void (*on_event)(ch_media__sock_t *, int, int))
{
    ch_media__sock_t *s = ch_calloc(1, sizeof(*s));
    s->fd = fd;
    s->owner = owner;
    s->on_event = on_event;
    if (uv_poll_init(&l->loop, &s->poll, fd) != 0) {
        ch_free(s);
        return NULL;
    }
    s->poll.data = s;
    return s;
}

void ch_media__sock_want(ch_media__sock_t *s, int events)
{
    if (events == s->events) {
        return;
    }
    s->events = events;
    if (events == 0) {
        uv_poll_stop(&s->poll);
    } else {
        uv_poll_start(&s->poll, events, sock_cb);
    }
}

static void sock_closed(uv_handle_t *h)
{
    ch_media__sock_t *s = h->data;
    if (!s->keep_fd) {
        close(s->fd);
    }
    if (s->on_closed != NULL) {
        s->on_closed(s);
    } else {
        ch_free(s);
    }
}

void ch_media__sock_close(ch_media__sock_t *s)
{
    if (s == NULL) {
        return;
    }
    uv_poll_stop(&s->poll);
    s->events = 0;
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

/* ---- sources, by message ------------------------------------------------------------------- */

int ch_media__want_source(ch_media_relay_t *r, int64_t id)
{
    if (r->control_wake == NULL) {
        return CH_ENOENT;
    }
    pthread_mutex_lock(&r->control_lock);
    if (r->nwanted == r->capwanted) {
        r->capwanted = r->capwanted ? r->capwanted * 2 : 16;
        r->wanted = ch_realloc(r->wanted, r->capwanted * sizeof(*r->wanted));
    }
    r->wanted[r->nwanted++] = id;
    uv_async_send(r->control_wake);
    pthread_mutex_unlock(&r->control_lock);
    return 0;
}

/* On the control loop: the cameras asked since the last wake-up, each to want_source. */
static void control_wake(uv_async_t *a)
{
    ch_media_relay_t *r = a->data;
    pthread_mutex_lock(&r->control_lock);
    int64_t *ids = r->wanted;
    size_t n = r->nwanted;
    r->wanted = NULL;
    r->nwanted = r->capwanted = 0;
    pthread_mutex_unlock(&r->control_lock);
    for (size_t i = 0; i < n; i++) {
        r->cfg.want_source(r->cfg.ud, ids[i]);
    }
    ch_free(ids);
}

/* ---- records on the pool --------------------------------------------------------------------- */

typedef struct rec_job {
    uv_work_t work;
    ch_media__loop_t *loop;
    ch_media_record_t rec;
    ch_media__conn_t *conn;
    void (*done)(ch_media__conn_t *c, int rc);
    int rc;
} rec_job_t;

static void rec_work(uv_work_t *w)
{
    rec_job_t *j = w->data;
    ch_media_relay_t *r = j->loop->relay;
    j->rc = r->cfg.record != NULL ? r->cfg.record(r->cfg.ud, &j->rec) : 0;
}

static void rec_after(uv_work_t *w, int status)
{
    rec_job_t *j = w->data;
    if (status != 0 && j->rc == 0) {
        j->rc = CH_EIO;
    }
    if (j->done != NULL) {
        j->done(j->conn, j->rc);
    }
    ch_free(j);
}

void ch_media__record(ch_media__loop_t *l, const ch_media_record_t *rec, ch_media__conn_t *c,
                      void (*done)(ch_media__conn_t *c, int rc))
{
    rec_job_t *j = ch_calloc(1, sizeof(*j));
    j->work.data = j;
    j->loop = l;
    j->rec = *rec;
    j->conn = c;
    j->done = done;
    if (uv_queue_work(&l->loop, &j->work, rec_work, rec_after) != 0) {
        j->rc = CH_EIO;
        if (done != NULL) {
            done(c, j->rc);
        }
        ch_free(j);
    }
}

/* A failed RTSPS handshake, told on the pool: the hub audits it, which may wait for the disk. */
typedef struct tls_job {
    uv_work_t work;
    ch_media_relay_t *relay;
    char peer[64];
    char why[128];
} tls_job_t;

static void tls_work(uv_work_t *w)
{
    tls_job_t *j = w->data;
    j->relay->cfg.tls_refused(j->relay->cfg.ud, j->peer, j->why);
}

static void tls_after(uv_work_t *w, int status)
{
    (void)status;
    ch_free(w->data);
}

void ch_media__tls_refused(ch_media__loop_t *l, const char *peer, const char *why)
{
    ch_media_relay_t *r = l->relay;
    if (r->cfg.tls_refused == NULL) {
        return;
    }
    tls_job_t *j = ch_calloc(1, sizeof(*j));
    j->work.data = j;
    j->relay = r;
    snprintf(j->peer, sizeof(j->peer), "%s", peer);
    snprintf(j->why, sizeof(j->why), "%s", why);
    if (uv_queue_work(&l->loop, &j->work, tls_work, tls_after) != 0) {
        ch_free(j);
    }
}

/* ---- the snapshot ---------------------------------------------------------------------------- */

static void free_snap(ch_media_stream_info_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ch_free((void *)a[i].viewers);
    }
    ch_free(a);
}

static void snapshot(ch_media__loop_t *l)
{
    size_t n = 0;
    for (ch_media__cam_t *c = l->cams; c != NULL; c = c->next) {
        n++;
    }
    ch_media_stream_info_t *a = n > 0 ? ch_calloc(n, sizeof(*a)) : NULL;
    size_t i = 0;
    for (ch_media__cam_t *c = l->cams; c != NULL; c = c->next, i++) {
        ch_media__cam_info(c, &a[i]);
    }
    ch_media_relay_totals_t t = {.bytes_in = l->gone_bytes_in,
                                 .bytes_out = {l->gone_bytes_out[0], l->gone_bytes_out[1]},
                                 .views = {l->views[0], l->views[1]}};
    for (ch_media__cam_t *c = l->cams; c != NULL; c = c->next) {
        t.bytes_in += c->bytes_in;
    }
    for (ch_media__conn_t *c = l->conns; c != NULL; c = ch_media__conn_next(c)) {
        int ws = 0;
        uint64_t b = ch_media__conn_bytes(c, &ws);
        t.bytes_out[ws] += b;
    }
    ch_media_relay_t *r = l->relay;
    pthread_mutex_lock(&r->lock);
    ch_media_stream_info_t *old = r->snap[l->index];
    size_t nold = r->nsnap[l->index];
    r->snap[l->index] = a;
    r->nsnap[l->index] = n;
    r->totals[l->index] = t;
    pthread_mutex_unlock(&r->lock);
    free_snap(old, nold);
}

void ch_media_relay_totals(ch_media_relay_t *r, ch_media_relay_totals_t *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    for (unsigned i = 0; i < r->nloops; i++) {
        const ch_media_relay_totals_t *t = &r->totals[i];
        out->bytes_in += t->bytes_in;
        for (int k = 0; k < 2; k++) {
            out->bytes_out[k] += t->bytes_out[k];
            out->views[k] += t->views[k];
        }
    }
    pthread_mutex_unlock(&r->lock);
    out->unauthorized = ch_net_door_count(&r->door, NULL);
    out->tls_failed = atomic_load_explicit(&r->tls_failed, memory_order_relaxed);
    out->tls_timed_out = atomic_load_explicit(&r->tls_timed_out, memory_order_relaxed);
    for (int i = 0; i < CH_MEDIA_REFUSED__COUNT; i++) {
        out->refused[i] = atomic_load_explicit(&r->refused[i], memory_order_relaxed);
    }
}

size_t ch_media_relay_streams(ch_media_relay_t *r, ch_media_stream_info_t **out)
{
    *out = NULL;
    if (r == NULL) {
        return 0;
    }
    pthread_mutex_lock(&r->lock);
    size_t n = 0;
    for (unsigned i = 0; i < r->nloops; i++) {
        n += r->nsnap[i];
    }
    ch_media_stream_info_t *a = n > 0 ? ch_calloc(n, sizeof(*a)) : NULL;
    size_t k = 0;
    for (unsigned i = 0; i < r->nloops; i++) {
        for (size_t j = 0; j < r->nsnap[i]; j++, k++) {
            a[k] = r->snap[i][j];
            if (a[k].nviewers > 0) {
                ch_media_viewer_info_t *v = ch_calloc(a[k].nviewers, sizeof(*v));
                memcpy(v, a[k].viewers, a[k].nviewers * sizeof(*v));
                a[k].viewers = v;
            }
        }
    }
    pthread_mutex_unlock(&r->lock);
    *out = a;
    return n;
}

void ch_media_relay_streams_free(ch_media_stream_info_t *streams, size_t n)
{
    free_snap(streams, n);
}

void ch_media_relay_each_stream(ch_media_relay_t *r,
                                void (*fn)(void *ud, const ch_media_stream_info_t *s), void *ud)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    for (unsigned i = 0; i < r->nloops; i++) {
        for (size_t k = 0; k < r->nsnap[i]; k++) {
            fn(ud, &r->snap[i][k]);
        }
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- the loop -------------------------------------------------------------------------------- */

static void loop_tick(uv_timer_t *t)
{
    ch_media__loop_t *l = t->data;
    int64_t now = ch_media__now_ms();
    ch_media__cam_tick_all(l, now);
    for (ch_media__conn_t *c = l->conns, *next; c != NULL; c = next) {
        next = ch_media__conn_next(c);
        ch_media__conn_tick(c, now);
    }
    if (l->listener_paused) {
        l->listener_paused = 0;
        if (l->listener != NULL) {
            ch_media__sock_want(l->listener, UV_READABLE);
        }
        if (l->tls_listener != NULL) {
            ch_media__sock_want(l->tls_listener, UV_READABLE);
        }
    }
    if (now - l->last_snapshot_ms >= SNAPSHOT_MS) {
        l->last_snapshot_ms = now;
        snapshot(l);
    }
}

static void loop_stop(ch_media__loop_t *l)
{
    l->stopping = 1;
    while (l->conns != NULL) {
        ch_media__conn_close(l->conns, "shutdown");
    }
    while (l->cams != NULL) {
        ch_media__cam_free(l->cams);
    }
    if (l->listener != NULL) {
        ch_media__sock_close(l->listener);
        l->listener = NULL;
    }
    if (l->tls_listener != NULL) {
        ch_media__sock_close(l->tls_listener);
        l->tls_listener = NULL;
    }
    uv_timer_stop(&l->tick);
    uv_close((uv_handle_t *)&l->tick, NULL);
    uv_idle_stop(&l->more);
    uv_close((uv_handle_t *)&l->more, NULL);
    pthread_mutex_lock(&l->lock);
    l->closed = 1;
    pthread_mutex_unlock(&l->lock);
    uv_close((uv_handle_t *)&l->wake, NULL);
}

static void loop_wake(uv_async_t *a)
{
    ch_media__loop_t *l = a->data;
    pthread_mutex_lock(&l->lock);
    ch_media__cmd_t *cmd = l->inbox;
    l->inbox = NULL;
    l->inbox_tail = &l->inbox;
    pthread_mutex_unlock(&l->lock);
    while (cmd != NULL) {
        ch_media__cmd_t *next = cmd->next;
        switch (cmd->kind) {
        case CMD_HOLD:
            ch_media__cam_hold(l, cmd->id, cmd->delta);
            break;
        case CMD_END_GRANT:
            ch_media__cam_end_grant(l, cmd->id);
            break;
        case CMD_SOURCE:
            ch_media__cam_source_sent(l, cmd->id, cmd->src);
            break;
        case CMD_CONN:
            ch_media__conn_adopt(l, cmd->conn);
            break;
        case CMD_STOP:
            if (!l->stopping) {
                loop_stop(l);
            }
            break;
        case CMD_SWEEP:
            atomic_store_explicit(&l->sweep_posted, 0, memory_order_relaxed);
            if (!l->stopping) {
                ch_media__loop_sweep(l);
            }
            break;
        }
        ch_free(cmd->src);
        ch_free(cmd);
        cmd = next;
    }
}

void ch_media__post(ch_media__loop_t *l, ch_media__cmd_t *cmd)
{
    cmd->next = NULL;
    pthread_mutex_lock(&l->lock);
    *l->inbox_tail = cmd;
    l->inbox_tail = &cmd->next;
    /* A stopped loop's inbox is emptied by ch_media_relay_stop after the join. */
    if (!l->closed) {
        uv_async_send(&l->wake);
    }
    pthread_mutex_unlock(&l->lock);
}

static void *loop_main(void *arg)
{
    ch_media__loop_t *l = arg;
    uv_run(&l->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- the relay ------------------------------------------------------------------------------- */

/* A listening socket on host:port (key names the setting in errors), or a negative code. */
static int listen_socket(const char *key, const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        slen = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        slen = sizeof(*a6);
    } else {
        snprintf(err, errlen, "%s: %s is not an IP address", key, host);
        return CH_EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", key, strerror(errno));
        return -errno;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot listen on %s:%d: %s", key, host, port, strerror(e));
        close(fd);
        return -e;
    }
    return fd;
}

/* Listens on listen ("ADDR:PORT", key names the setting in errors): the socket, with *host and
 * *port the address bound (the port the kernel picked for 0), or a negative code with err. */
static int bind_listener(const char *key, const char *listen, char host[64], int *port, char *err,
                         size_t errlen)
{
    if (ch_config_parse_listen(listen != NULL ? listen : "", host, port) != 0) {
        snprintf(err, errlen, "%s: expected ADDR:PORT, got \"%s\"", key,
                 listen != NULL ? listen : "");
        return CH_EINVAL;
    }
    int fd = listen_socket(key, host, *port, err, errlen);
    if (fd < 0) {
        return fd;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0) {
        *port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    return fd;
}

/* Descriptors the process has open now (/proc/self/fd), or 0 when it cannot tell. */
static uint64_t open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return 0;
    }
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory's own */
}

/*
 * Whether the door's caps fit the descriptor limit: what is open now, the listener and each
 * loop's own (an epoll and an eventfd; 4 counted), max_unauthorized connections and the
 * reserve band must all be under RLIMIT_NOFILE, or the caps would promise what a flood could
 * not be given. Sets r->nofile. 0, or CH_EINVAL with err naming the keys.
 */
static int check_descriptors(ch_media_relay_t *r, unsigned loops, char *err, size_t errlen)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        r->nofile = 0;
        return 0;
    }
    r->nofile = (uint64_t)rl.rlim_cur;
    uint64_t open = open_descriptors() + 2 + 4 * (uint64_t)loops;
    uint64_t need = open + r->cfg.max_unauthorized + r->cfg.fd_reserve;
    if (need <= r->nofile) {
        return 0;
    }
    snprintf(err, errlen,
             "relay.max_unauthorized (%u) and relay.fd_reserve (%u) do not fit the descriptor "
             "limit: with %llu descriptors in use they need %llu, RLIMIT_NOFILE is %llu (hard "
             "limit %llu); lower them or raise the limit (ulimit -n, LimitNOFILE=)",
             r->cfg.max_unauthorized, r->cfg.fd_reserve, (unsigned long long)open,
             (unsigned long long)need, (unsigned long long)rl.rlim_cur,
             (unsigned long long)(rl.rlim_max == RLIM_INFINITY ? 0 : rl.rlim_max));
    return CH_EINVAL;
}

int ch_media_relay_start(const ch_media_relay_config_t *cfg, ch_media_relay_t **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    ch_media_relay_t *r = ch_calloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->cfg.pull_tls = NULL; /* referenced once the start cannot fail */
    if (r->cfg.idle_stop_s == 0) {
        r->cfg.idle_stop_s = 10;
    }
    if (r->cfg.stall_s == 0) {
        r->cfg.stall_s = 5;
    }
    if (r->cfg.backoff_max_s == 0) {
        r->cfg.backoff_max_s = 30;
    }
    if (r->cfg.describe_s == 0) {
        r->cfg.describe_s = 10;
    }
    if (r->cfg.viewer_budget == 0) {
        r->cfg.viewer_budget = 4u << 20;
    }
    if (r->cfg.max_unauthorized == 0) {
        r->cfg.max_unauthorized = 256;
    }
    if (r->cfg.max_unauthorized_per_addr == 0) {
        r->cfg.max_unauthorized_per_addr = 32;
    }
    if (r->cfg.auth_timeout_s == 0) {
        r->cfg.auth_timeout_s = 10;
    }
    if (r->cfg.fd_reserve == 0) {
        r->cfg.fd_reserve = 128;
    }
    unsigned n = cfg->loops;
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 1;
    }
    if (n > 64) {
        n = 64;
    }
    int crc = check_descriptors(r, n, err, errlen);
    if (crc != 0) {
        ch_free(r);
        return crc;
    }
    int fd = bind_listener("rtsp.listen", cfg->listen, r->host, &r->port, err, errlen);
    if (fd < 0) {
        ch_free(r);
        return fd;
    }
    int tls_fd = -1;
    char tls_host[64] = "";
    if (cfg->tls != NULL) {
        tls_fd =
            bind_listener("rtsps.listen", cfg->tls_listen, tls_host, &r->tls_port, err, errlen);
        if (tls_fd < 0) {
            close(fd);
            ch_free(r);
            return tls_fd;
        }
    }
    pthread_mutex_init(&r->tls_lock, NULL);
    r->tls = ch_net_tls_ref(cfg->tls);
    r->cfg.tls = NULL; /* r->tls, under tls_lock */
    r->tls_handshake_ms = cfg->tls_handshake_ms;
    r->nloops = n;
    r->loops = ch_calloc(n, sizeof(*r->loops));
    r->snap = ch_calloc(n, sizeof(*r->snap));
    r->nsnap = ch_calloc(n, sizeof(*r->nsnap));
    r->totals = ch_calloc(n, sizeof(*r->totals));
    pthread_mutex_init(&r->lock, NULL);
    ch_net_door_init(&r->door, r->cfg.max_unauthorized, r->cfg.max_unauthorized_per_addr, 1);
    for (unsigned i = 0; i < n; i++) {
        ch_media__loop_t *l = &r->loops[i];
        l->relay = r;
        l->index = i;
        pthread_mutex_init(&l->lock, NULL);
        l->inbox_tail = &l->inbox;
        if (uv_loop_init(&l->loop) != 0) {
            ch_log(CH_LOG_ERROR, "media", "msg=\"uv_loop_init failed\"");
            abort();
        }
        uv_async_init(&l->loop, &l->wake, loop_wake);
        l->wake.data = l;
        uv_timer_init(&l->loop, &l->tick);
        l->tick.data = l;
        uv_timer_start(&l->tick, loop_tick, TICK_MS, TICK_MS);
        uv_idle_init(&l->loop, &l->more);
        l->more.data = l;
    }
    pthread_mutex_init(&r->control_lock, NULL);
    if (cfg->control != NULL && cfg->want_source != NULL) {
        r->control_wake = ch_calloc(1, sizeof(*r->control_wake));
        if (uv_async_init(cfg->control, r->control_wake, control_wake) != 0) {
            ch_log(CH_LOG_ERROR, "media", "msg=\"uv_async_init failed\"");
            abort();
        }
        r->control_wake->data = r;
        uv_unref((uv_handle_t *)r->control_wake); /* keeps no loop alive */
    }
    if (cfg->pull_tls != NULL) {
        r->cfg.pull_tls = ch_net_tls_ref(cfg->pull_tls);
    }
    ch_media__listener_start(&r->loops[0], fd, 0);
    if (tls_fd >= 0) {
        ch_media__listener_start(&r->loops[0], tls_fd, 1);
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&r->loops[i].thread, NULL, loop_main, &r->loops[i]) != 0) {
            ch_log(CH_LOG_ERROR, "media", "msg=\"pthread_create failed\"");
            abort();
        }
    }
    char tls_at[80] = "none";
    if (tls_fd >= 0) {
        snprintf(tls_at, sizeof(tls_at), "%s:%d", tls_host, r->tls_port);
    }
    ch_log(CH_LOG_INFO, "media",
           "msg=\"relay listening\" rtsp=%s:%d rtsps=%s loops=%u max_unauthorized=%u "
           "per_addr=%u auth_timeout_s=%u fd_reserve=%u nofile=%llu",
           r->host, r->port, tls_at, n, r->cfg.max_unauthorized, r->cfg.max_unauthorized_per_addr,
           r->cfg.auth_timeout_s, r->cfg.fd_reserve, (unsigned long long)r->nofile);
    *out = r;
    return 0;
}

int ch_media_relay_port(const ch_media_relay_t *r)
{
    return r->port;
}

int ch_media_relay_tls_port(const ch_media_relay_t *r)
{
    return r != NULL ? r->tls_port : 0;
}

void ch_media_relay_set_tls(ch_media_relay_t *r, ch_net_tls_t *tls, uint64_t handshake_ms)
{
    if (r == NULL || r->tls_port == 0) {
        return;
    }
    ch_net_tls_t *fresh = ch_net_tls_ref(tls);
    pthread_mutex_lock(&r->tls_lock);
    ch_net_tls_t *old = r->tls;
    r->tls = fresh;
    r->tls_handshake_ms = handshake_ms;
    pthread_mutex_unlock(&r->tls_lock);
    ch_net_tls_unref(old); /* connections that took it keep their own reference */
}

static void post_new(ch_media__loop_t *l, int kind, int64_t id, int delta)
{
    ch_media__cmd_t *cmd = ch_calloc(1, sizeof(*cmd));
    cmd->kind = kind;
    cmd->id = id;
    cmd->delta = delta;
    ch_media__post(l, cmd);
}

static void free_handle(uv_handle_t *h)
{
    ch_free(h);
}

void ch_media_relay_stop(ch_media_relay_t *r)
{
    if (r == NULL) {
        return;
    }
    for (unsigned i = 0; i < r->nloops; i++) {
        post_new(&r->loops[i], CMD_STOP, 0, 0);
    }
    for (unsigned i = 0; i < r->nloops; i++) {
        ch_media__loop_t *l = &r->loops[i];
        pthread_join(l->thread, NULL);
        /* Commands that came after the stop (viewers handed over) are dropped here. */
        for (ch_media__cmd_t *c = l->inbox, *next; c != NULL; c = next) {
            next = c->next;
            if (c->kind == CMD_CONN) {
                ch_media__conn_adopt(NULL, c->conn); /* frees it */
            }
            ch_free(c->src);
            ch_free(c);
        }
        if (uv_loop_close(&l->loop) != 0) {
            ch_log(CH_LOG_WARN, "media", "msg=\"a media loop closed with handles open\"");
        }
        pthread_mutex_destroy(&l->lock);
        free_snap(r->snap[i], r->nsnap[i]);
    }
    /* The media threads are joined: nobody sends to the control handle any more. */
    if (r->control_wake != NULL) {
        uv_close((uv_handle_t *)r->control_wake, free_handle);
    }
    ch_free(r->wanted);
    pthread_mutex_destroy(&r->control_lock);
    pthread_mutex_destroy(&r->lock);
    ch_net_tls_unref(r->tls);
    pthread_mutex_destroy(&r->tls_lock);
    ch_net_door_fini(&r->door);
    ch_free(r->snap);
    ch_free(r->nsnap);
    ch_free(r->totals);
    ch_free(r->loops);
    ch_net_tls_unref(r->cfg.pull_tls);
    ch_free(r);
}

static ch_media__loop_t *owner(ch_media_relay_t *r, int64_t camera_id)
{
    uint64_t id = (uint64_t)camera_id;
    return &r->loops[id % r->nloops];
}

void ch_media_relay_hold(ch_media_relay_t *r, int64_t camera_id, int delta)
{
    if (r != NULL && camera_id > 0 && delta != 0) {
        post_new(owner(r, camera_id), CMD_HOLD, camera_id, delta);
    }
}

void ch_media_relay_end_grant(ch_media_relay_t *r, int64_t grant_id)
{
    if (r == NULL) {
        return;
    }
    for (unsigned i = 0; i < r->nloops; i++) {
        post_new(&r->loops[i], CMD_END_GRANT, grant_id, 0);
    }
}

void ch_media_relay_source(ch_media_relay_t *r, int64_t camera_id, const ch_media_source_t *src)
{
    if (r == NULL || camera_id <= 0) {
        return;
    }
    ch_media__cmd_t *cmd = ch_calloc(1, sizeof(*cmd));
    cmd->kind = CMD_SOURCE;
    cmd->id = camera_id;
    if (src != NULL && src->url[0] != '\0') {
        cmd->src = ch_malloc(sizeof(*cmd->src));
        *cmd->src = *src;
    }
    ch_media__post(owner(r, camera_id), cmd);
}

ch_media__loop_t *ch_media__owner(ch_media_relay_t *r, int64_t camera_id)
{
    return owner(r, camera_id);
}

/* An evicted connection holds its descriptor until its loop closes it: waiting for the tick
 * (100 ms) let a fast flood pile hundreds of them up to the reserve band. Which loop has it is
 * the owner's to know, so every loop is asked; one sweep at a time is in an inbox. */
void ch_media__sweep_soon(ch_media_relay_t *r)
{
    for (unsigned i = 0; i < r->nloops; i++) {
        ch_media__loop_t *l = &r->loops[i];
        if (!atomic_exchange_explicit(&l->sweep_posted, 1, memory_order_relaxed)) {
            post_new(l, CMD_SWEEP, 0, 0);
        }
    }
}
