/*
 * main/hub_relay.c: the relay's callbacks (see hub_relay.h). authorize runs on media threads
 * and record on the libuv pool; what they share with the control loop is the access gate
 * (event/, thread-safe: the live grants and the tokens' check). Cameras' sources are read from
 * the store on the hub's store worker (or, without one, on the control loop) and sent to the
 * relay by message from the control loop: no media thread waits on the database, and the loop
 * does not wait for the read either.
 */
#include "main/hub_relay.h"

#include "api/api.h"
#include "health/health.h"
#include "main/hub_audit.h"
#include "main/main.h"
#include "media/media.h"
#include "store/store.h"

#include <assert.h>
#include <sodium.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

/*
 * Sources asked for (a pull wants its camera's, a camera's settings changed, a camera went),
 * in the order asked. One batch at a time is on the worker, so the relay hears a camera's
 * sources in that order whatever the worker's load: a "gone" after a change is never
 * overtaken by the change's read.
 */
typedef struct source_req {
    int64_t camera_id;
    int gone; /* no source: nothing to read */
    ch_media_source_t src;
} source_req_t;

typedef struct source_batch {
    struct ch_main_relay *mr;
    source_req_t *items;
    size_t n, cap;
} source_batch_t;

/*
 * The agencies' client certificate keys (ch_agency_t.tls_key), for the media loops to hold a
 * grant's viewers to their agency's certificate without reading the store per viewer: read at
 * start and kept current from the change feed of the control loop's handle (agency_changed).
 * Only agencies with a key are here; few agencies have one, so a list searched in full is
 * enough. The lock covers the list (the control loop writes, media threads read a copy).
 */
typedef struct agency_key {
    int64_t agency_id;
    char key[CH_NET_TLS_SPKI_LEN];
} agency_key_t;

typedef struct agency_keys {
    pthread_mutex_t lock;
    agency_key_t *items;
    size_t n, cap;
} agency_keys_t;

struct ch_main_relay {
    ch_media_relay_t *relay;
    ch_audit_t *audit;
    ch_event_gate_t *gate;     /* the live grants and the check of view tokens */
    ch_event_follow_t *follow; /* the gate following the grants of the loop's handle */
    int prewarm;
    char listen[96];
    char tls_listen[96];       /* rtsps.listen, or "" without RTSPS */
    pthread_t control;         /* the control loop's thread, the only one that reads st */
    ch_store_t *st;            /* the relay's own handle: cameras' stream URLs without the worker */
    ch_store_worker_t *worker; /* the hub's store worker, or NULL */
    source_batch_t *queued;    /* sources asked for, not yet sent to the worker */
    int reading;               /* a batch is on the worker */
    agency_keys_t keys;        /* the agencies bound to a client certificate */
    ch_store_t *feed;          /* the control loop's handle whose feed keys follows */
    ch_store_watch_t *agencies_watch;
};

/* ---- live grants --------------------------------------------------------------------------- */

/* The gate followed a grant's change (ch_event_follow_grants, on the control loop). */
static void on_grant(void *ud, const ch_event_notice_t *n, int hold)
{
    ch_main_relay_t *mr = ud;
    if (n->kind == CH_EVENT_GRANT_ENDED) {
        ch_media_relay_end_grant(mr->relay, n->grant_id);
    }
    if (hold != 0 && mr->prewarm && n->camera_id > 0) {
        ch_media_relay_hold(mr->relay, n->camera_id, hold);
    }
}

/* ---- agencies bound to a client certificate ------------------------------------------------ */

/* Sets agency id's key (NULL or "": none) in the list. Control loop. */
static void keys_set(agency_keys_t *k, int64_t id, const char *key)
{
    pthread_mutex_lock(&k->lock);
    size_t i = 0;
    while (i < k->n && k->items[i].agency_id != id) {
        i++;
    }
    if (key == NULL || key[0] == '\0') {
        if (i < k->n) {
            k->items[i] = k->items[--k->n];
        }
    } else {
        if (i == k->n) {
            if (k->n == k->cap) {
                k->cap = k->cap ? k->cap * 2 : 8;
                k->items = ch_realloc(k->items, k->cap * sizeof(*k->items));
            }
            k->n++;
        }
        k->items[i].agency_id = id;
        snprintf(k->items[i].key, sizeof(k->items[i].key), "%s", key);
    }
    pthread_mutex_unlock(&k->lock);
}

/* Copies agency id's key into out (CH_NET_TLS_SPKI_LEN bytes): 1 when it has one, else 0.
 * Any thread. */
static int keys_get(agency_keys_t *k, int64_t id, char *out)
{
    int found = 0;
    pthread_mutex_lock(&k->lock);
    for (size_t i = 0; i < k->n; i++) {
        if (k->items[i].agency_id == id) {
            memcpy(out, k->items[i].key, CH_NET_TLS_SPKI_LEN);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&k->lock);
    return found;
}

/* Reads every agency's key from st, replacing the list: at start, and when the feed says many
 * agencies changed. 0, or the store's code (the list is left as it was). Control loop. */
static int keys_load(agency_keys_t *k, ch_store_t *st)
{
    agency_key_t *items = NULL;
    size_t n = 0, cap = 0;
    ch_store_filter_t f = {.limit = 1000};
    int rc;
    for (;;) {
        ch_agency_list_t l = {0};
        if ((rc = ch_store_agency_list(st, &f, &l)) != 0) {
            ch_free(items);
            return rc;
        }
        for (size_t i = 0; i < l.count; i++) {
            const ch_agency_t *a = &l.items[i];
            if (a->tls_key == NULL || a->tls_key[0] == '\0') {
                continue;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                items = ch_realloc(items, cap * sizeof(*items));
            }
            items[n].agency_id = a->id;
            snprintf(items[n].key, sizeof(items[n].key), "%s", a->tls_key);
            n++;
        }
        f.after_id = l.next_id;
        ch_agency_list_free(&l);
        if (f.after_id == 0) {
            break;
        }
    }
    pthread_mutex_lock(&k->lock);
    agency_key_t *old = k->items;
    k->items = items;
    k->n = n;
    k->cap = cap;
    pthread_mutex_unlock(&k->lock);
    ch_free(old);
    return 0;
}

/* The feed of the agencies table (the control loop's handle, whoever wrote): the agency's key
 * as committed, read back here. A viewer already playing keeps playing: the certificate is
 * checked when a viewer is admitted, as the token is. */
static void agency_changed(void *ud, const ch_store_change_t *c)
{
    ch_main_relay_t *mr = ud;
    if (c->id == 0) {
        if (keys_load(&mr->keys, mr->feed) != 0) {
            ch_log(CH_LOG_ERROR, "media", "msg=\"agencies' client keys not reread\" error=\"%s\"",
                   ch_store_errmsg(mr->feed));
        }
        return;
    }
    ch_agency_t a;
    memset(&a, 0, sizeof(a));
    int rc = c->op == CH_STORE_DELETE ? CH_ENOTFOUND : ch_store_agency_get(mr->feed, c->id, &a);
    if (rc == 0 || rc == CH_ENOTFOUND) {
        keys_set(&mr->keys, c->id, rc == 0 ? a.tls_key : NULL);
    } else {
        /* A read that failed keeps the key known: a binding is never lifted by an error. */
        ch_log(CH_LOG_ERROR, "media",
               "msg=\"agency's client key not reread\" agency=%lld error=\"%s\"", (long long)c->id,
               ch_store_errmsg(mr->feed));
    }
    ch_agency_fini(&a);
}

/* ---- the relay's callbacks ----------------------------------------------------------------- */

/*
 * The gate's answer as the relay's status and reason (docs/internals/media.md), then the
 * agency's certificate: a grant of an agency bound to a client certificate is viewed only
 * through a TLS connection that showed that certificate (client_key), as its API keys are
 * used (auth.c's ch_auth_tls_binding_check). Plain RTSP and a browser's wss:// show none.
 */
static int on_authorize(void *ud, const char *token, size_t len, int64_t camera_id,
                        const char *client_key, ch_media_access_t *out, const char **reason)
{
    ch_main_relay_t *mr = ud;
    ch_event_claims_t cl;
    char bound[CH_NET_TLS_SPKI_LEN];
    int rc = ch_event_gate_authorize(mr->gate, token, len, camera_id, ch_time_now_ms() / 1000, &cl);
    switch (rc) {
    case 0:
        *out = (ch_media_access_t){cl.grant_id, cl.event_id, cl.camera_id, cl.agency_id};
        if (keys_get(&mr->keys, cl.agency_id, bound)) {
            if (client_key == NULL) {
                *reason = "client_certificate_required";
                return 403;
            }
            if (strcmp(client_key, bound) != 0) {
                *reason = "client_certificate_mismatch";
                return 403;
            }
        }
        return 0;
    case CH_EEXPIRED:
        *reason = "expired";
        return 403;
    case CH_EINVAL:
        *reason = "other_camera";
        return 403;
    case CH_ENOENT:
        *reason = "grant_ended";
        return 403;
    default:
        *reason = "bad_token";
        return 401;
    }
}

/* Reads the camera's stream URL, credentials and TLS pin from st into *src (left empty when the
 * camera is gone or has no URL). The worker's thread, or the control loop without a worker. */
static void read_source(ch_store_t *st, int64_t camera_id, ch_media_source_t *src)
{
    memset(src, 0, sizeof(*src));
    ch_camera_t cam;
    ch_camera_init(&cam);
    int rc = ch_store_camera_get(st, camera_id, &cam);
    if (rc == 0 && cam.rtsp_url != NULL && cam.rtsp_url[0] != '\0') {
        snprintf(src->url, sizeof(src->url), "%s", cam.rtsp_url);
        snprintf(src->user, sizeof(src->user), "%s", cam.rtsp_username ? cam.rtsp_username : "");
        snprintf(src->password, sizeof(src->password), "%s",
                 cam.rtsp_password ? cam.rtsp_password : "");
        snprintf(src->tls_pin, sizeof(src->tls_pin), "%s", cam.tls_pin ? cam.tls_pin : "");
    }
    ch_camera_fini(&cam);
}

static int batch_work(ch_store_t *st, void *ud)
{
    source_batch_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->items[i].gone) {
            read_source(st, b->items[i].camera_id, &b->items[i].src);
        }
    }
    return 0;
}

static void batch_free(source_batch_t *b)
{
    if (b != NULL) {
        /* The credentials read are not left in freed memory. */
        sodium_memzero(b->items, b->cap * sizeof(*b->items));
        ch_free(b->items);
        ch_free(b);
    }
}

static void kick(ch_main_relay_t *mr);

/* Back on the control loop: each source to the relay, in the order asked. */
static void batch_done(void *ud, int rc)
{
    (void)rc;
    source_batch_t *b = ud;
    ch_main_relay_t *mr = b->mr;
    assert(pthread_equal(pthread_self(), mr->control));
    for (size_t i = 0; i < b->n; i++) {
        ch_media_relay_source(mr->relay, b->items[i].camera_id,
                              b->items[i].gone ? NULL : &b->items[i].src);
    }
    batch_free(b);
    mr->reading = 0;
    kick(mr);
}

/* Sends what is queued to the worker, unless a batch is there already. Without a worker, or
 * with one that is full or closing, the batch is read here, on the loop (the order holds: no
 * batch of ours is on the worker). */
static void kick(ch_main_relay_t *mr)
{
    if (mr->reading || mr->queued == NULL) {
        return;
    }
    source_batch_t *b = mr->queued;
    mr->queued = NULL;
    mr->reading = 1;
    if (mr->worker != NULL && ch_store_async(mr->worker, batch_work, batch_done, b) == 0) {
        return;
    }
    (void)batch_work(mr->st, b);
    batch_done(b, 0);
}

/* On the control loop: the camera's source (or none: gone) goes to the relay, after any asked
 * for before it. */
static void send_source(ch_main_relay_t *mr, int64_t camera_id, int gone)
{
    assert(pthread_equal(pthread_self(), mr->control));
    source_batch_t *b = mr->queued;
    if (b == NULL) {
        b = mr->queued = ch_calloc(1, sizeof(*b));
        b->mr = mr;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        source_req_t *items = ch_calloc(cap, sizeof(*items));
        if (b->n > 0) {
            memcpy(items, b->items, b->n * sizeof(*items));
        }
        ch_free(b->items);
        b->items = items;
        b->cap = cap;
    }
    b->items[b->n++] = (source_req_t){.camera_id = camera_id, .gone = gone};
    kick(mr);
}

void ch_main__relay_set_worker(ch_main_relay_t *mr, ch_store_worker_t *w)
{
    if (mr != NULL) {
        mr->worker = w;
    }
}

/* A pull needs the camera's source (the relay's want_source, on the control loop). */
static void on_want_source(void *ud, int64_t camera_id)
{
    send_source(ud, camera_id, 0);
}

static int on_record(void *ud, const ch_media_record_t *r)
{
    ch_main_relay_t *mr = ud;
    char actor[48], object[48];
    const char *action = r->kind == CH_MEDIA_VIEW_START ? "view.start"
                         : r->kind == CH_MEDIA_VIEW_END ? "view.end"
                                                        : "view.refuse";
    if (r->access.agency_id > 0) {
        snprintf(actor, sizeof(actor), "agency:%lld", (long long)r->access.agency_id);
    } else {
        snprintf(actor, sizeof(actor), "viewer:unauthenticated");
    }
    snprintf(object, sizeof(object), "camera:%lld", (long long)r->camera_id);
    json_t *d = json_object();
    json_object_set_new(d, "transport", json_string(r->transport != NULL ? r->transport : "rtsp"));
    json_object_set_new(d, "peer", json_string(r->peer));
    if (r->access.grant_id > 0) {
        json_object_set_new(d, "grant_id", json_integer(r->access.grant_id));
        json_object_set_new(d, "event_id", json_integer(r->access.event_id));
        json_object_set_new(d, "agency_id", json_integer(r->access.agency_id));
    }
    if (r->kind == CH_MEDIA_VIEW_END) {
        json_object_set_new(d, "bytes", json_integer((json_int_t)r->bytes));
        json_object_set_new(d, "duration_ms", json_integer(r->duration_ms));
    }
    if (r->kind == CH_MEDIA_VIEW_REFUSE) {
        json_object_set_new(d, "status", json_integer(r->status));
    }
    if (r->reason != NULL) {
        json_object_set_new(d, "reason", json_string(r->reason));
    }
    ch_audit_entry_t e = {
        .actor = actor,
        .action = action,
        .object = object,
        .outcome = r->kind == CH_MEDIA_VIEW_REFUSE ? "denied" : "ok",
        .details = d,
    };
    /* A refusal costs its sender nothing: refusals are counted per peer (ch_audit_refusal). */
    int rc = r->kind == CH_MEDIA_VIEW_REFUSE ? ch_audit_refusal(mr->audit, r->peer, r->status, &e)
                                             : ch_audit_append(mr->audit, &e, NULL);
    json_decref(d);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "media",
               "msg=\"view record failed\" action=%s camera=%lld error=\"%s\"", action,
               (long long)r->camera_id, ch_strerror(rc));
    }
    return rc;
}

/* An RTSPS handshake failed (a client certificate of another CA, expired or revoked, or not
 * TLS at all): a refusal on the record as HTTPS's are (serve.c), one per address and interval,
 * the rest counted. Pool thread. */
static void on_tls_refused(void *ud, const char *peer, const char *reason)
{
    ch_main_relay_t *mr = ud;
    ch_main__audit_tls_refusal(mr->audit, "rtsps", peer, reason);
}

/* ---- start, stop, streams ------------------------------------------------------------------ */

int ch_main__relay_start(const ch_config_t *cfg, ch_net_tls_t *rtsps, ch_audit_t *audit,
                         const uint8_t pk[32], ch_store_t *st, ch_net_tls_t *client_tls,
                         ch_main_relay_t **out)
{
    *out = NULL;
    const char *pt = cfg->relay_pull_transport != NULL ? cfg->relay_pull_transport : "tcp";
    ch_main_relay_t *mr = ch_calloc(1, sizeof(*mr));
    mr->audit = audit;
    mr->gate = ch_event_gate_new(pk);
    mr->prewarm = cfg->relay_prewarm != 0;
    snprintf(mr->listen, sizeof(mr->listen), "%s", cfg->rtsp_listen);
    if (rtsps != NULL && cfg->rtsps_listen != NULL) {
        snprintf(mr->tls_listen, sizeof(mr->tls_listen), "%s", cfg->rtsps_listen);
    }
    mr->control = pthread_self();
    pthread_mutex_init(&mr->keys.lock, NULL);
    char *serr = NULL;
    if (ch_store_open(cfg->store_url, &mr->st, &serr) != 0) {
        fprintf(stderr, "cctvhub serve: the relay cannot open the store: %s\n",
                serr != NULL ? serr : "?");
        ch_free(serr);
        ch_event_gate_free(mr->gate);
        pthread_mutex_destroy(&mr->keys.lock);
        ch_free(mr);
        return CH_EXIT_STORE;
    }
    ch_media_relay_config_t rc = {
        .listen = cfg->rtsp_listen,
        .loops = (unsigned)cfg->relay_loops,
        .idle_stop_s = (unsigned)cfg->relay_idle_stop_s,
        .stall_s = (unsigned)cfg->relay_stall_s,
        .backoff_max_s = (unsigned)cfg->relay_backoff_max_s,
        .viewer_budget = (size_t)cfg->relay_viewer_budget_kb * 1024,
        .pull_udp = strcmp(pt, "udp") == 0,
        .pull_tls = client_tls,
        .pull_handshake_ms = cfg->tls_handshake_timeout_ms,
        .max_unauthorized = (unsigned)cfg->relay_max_unauthorized,
        .max_unauthorized_per_addr = (unsigned)cfg->relay_max_unauthorized_per_addr,
        .auth_timeout_s = (unsigned)cfg->relay_auth_timeout_s,
        .fd_reserve = (unsigned)cfg->relay_fd_reserve,
        .tls_listen = cfg->rtsps_listen,
        .tls = mr->tls_listen[0] != '\0' ? rtsps : NULL,
        .tls_handshake_ms = cfg->tls_handshake_timeout_ms,
        .tls_refused = on_tls_refused,
        /* serve.c runs the control loop on libuv's default loop. */
        .control = uv_default_loop(),
        .want_source = on_want_source,
        .authorize = on_authorize,
        .record = on_record,
        .ud = mr,
    };
    char err[512];
    int r = ch_media_relay_start(&rc, &mr->relay, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "cctvhub serve: %s\n", err);
        ch_store_close(mr->st);
        ch_event_gate_free(mr->gate);
        pthread_mutex_destroy(&mr->keys.lock);
        ch_free(mr);
        return r == CH_EINVAL ? CH_EXIT_CONFIG : CH_EXIT_STORE;
    }
    if (ch_event_follow_grants(st, mr->gate, on_grant, mr, &mr->follow) != 0) {
        fprintf(stderr, "cctvhub serve: the relay cannot read the live grants: %s\n",
                ch_store_errmsg(st));
        ch_main__relay_stop(mr);
        return CH_EXIT_STORE;
    }
    /* Watched before the first read: a change committed in between is told, not lost. */
    mr->feed = st;
    if (ch_store_watch(st, CH_STORE_T_AGENCIES, agency_changed, mr, &mr->agencies_watch) != 0 ||
        keys_load(&mr->keys, st) != 0) {
        fprintf(stderr, "cctvhub serve: the relay cannot read the agencies' client keys: %s\n",
                ch_store_errmsg(st));
        ch_main__relay_stop(mr);
        return CH_EXIT_STORE;
    }
    *out = mr;
    return 0;
}

void ch_main__relay_stop(ch_main_relay_t *mr)
{
    if (mr == NULL) {
        return;
    }
    ch_event_follow_end(mr->follow);
    if (mr->agencies_watch != NULL) {
        ch_store_unwatch(mr->feed, mr->agencies_watch);
    }
    ch_media_relay_stop(mr->relay);
    /* The control loop has ended (serve.c stops the relay after it): one more turn closes the
     * relay's handle on it. */
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    batch_free(mr->queued); /* none: the worker closed first, reading what was queued */
    ch_store_close(mr->st);
    ch_event_gate_free(mr->gate);
    pthread_mutex_destroy(&mr->keys.lock);
    ch_free(mr->keys.items);
    ch_free(mr);
}

void ch_main__relay_base(const ch_main_relay_t *mr, char *out, size_t cap)
{
    /* With RTSPS every viewer who follows the API is sent to the encrypted port. */
    int tls = ch_media_relay_tls_port(mr->relay) != 0;
    char host[64];
    int port = 0;
    if (ch_config_parse_listen(tls ? mr->tls_listen : mr->listen, host, &port) != 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    }
    int v6 = strchr(host, ':') != NULL;
    snprintf(out, cap, "%s://%s%s%s:%d", tls ? "rtsps" : "rtsp", v6 ? "[" : "", host, v6 ? "]" : "",
             tls ? ch_media_relay_tls_port(mr->relay) : ch_media_relay_port(mr->relay));
}

int ch_main__relay_tls(const ch_main_relay_t *mr)
{
    return mr != NULL && ch_media_relay_tls_port(mr->relay) != 0;
}

void ch_main__relay_set_tls(ch_main_relay_t *mr, ch_net_tls_t *rtsps, uint64_t handshake_ms)
{
    if (mr != NULL) {
        ch_media_relay_set_tls(mr->relay, rtsps, handshake_ms);
    }
}

void ch_main__relay_camera_source(void *ud, int64_t camera_id)
{
    send_source(ud, camera_id, 0);
}

void ch_main__relay_camera_gone(void *ud, int64_t camera_id)
{
    send_source(ud, camera_id, 1);
}

void ch_main__relay_live(void *ud, int fd, const void *raw, size_t len, ch_net_tls_conn_t *tls)
{
    ch_main_relay_t *mr = ud;
    ch_media_relay_adopt(mr->relay, fd, raw, len, tls);
}

typedef struct live_copy {
    ch_health_live_t *items;
    size_t n, cap;
} live_copy_t;

static void copy_live(void *ud, const ch_media_stream_info_t *s)
{
    live_copy_t *lc = ud;
    if (lc->n == lc->cap) {
        lc->cap = lc->cap ? lc->cap * 2 : 16;
        lc->items = ch_realloc(lc->items, lc->cap * sizeof(*lc->items));
    }
    ch_health_live_t *l = &lc->items[lc->n++];
    memset(l, 0, sizeof(*l));
    l->camera_id = s->camera_id;
    l->playing = s->state != NULL && strcmp(s->state, "playing") == 0;
    l->since_ms = s->state_since_ms;
    l->fps = s->fps;
    l->bitrate_bps = s->bitrate_bps;
    l->width = s->width;
    l->height = s->height;
    l->gop_frames = s->gop_frames;
    l->keyframes = s->keyframes;
    l->packets_in = s->packets_in;
    snprintf(l->codec, sizeof(l->codec), "%s", s->codec);
    snprintf(l->last_error, sizeof(l->last_error), "%s", s->last_error);
}

void ch_main__relay_health(void *ud, struct ch_health *h, int64_t now_ms)
{
    ch_main_relay_t *mr = ud;
    if (mr == NULL) {
        return;
    }
    /* Copied under the relay's lock, fed after it: the health listener may do anything. */
    live_copy_t lc = {NULL, 0, 0};
    ch_media_relay_each_stream(mr->relay, copy_live, &lc);
    for (size_t i = 0; i < lc.n; i++) {
        ch_health_live(h, &lc.items[i], now_ms);
    }
    ch_free(lc.items);
}

json_t *ch_main__relay_streams(void *ud)
{
    ch_main_relay_t *mr = ud;
    ch_media_stream_info_t *streams = NULL;
    size_t n = mr != NULL ? ch_media_relay_streams(mr->relay, &streams) : 0;
    json_t *answer = ch_api_streams_json(streams, n);
    ch_media_relay_streams_free(streams, n);
    return answer;
}

/* ---- metrics --------------------------------------------------------------------------------- */

static const char *const pull_states[] = {"connecting", "playing", "backoff", "stopped"};

typedef struct relay_counts {
    uint64_t pulls[CH_ARRAY_SIZE(pull_states)];
    uint64_t viewers[2]; /* rtsp, ws */
} relay_counts_t;

static void count_stream(void *ud, const ch_media_stream_info_t *s)
{
    relay_counts_t *n = ud;
    for (size_t i = 0; i < CH_ARRAY_SIZE(pull_states); i++) {
        if (strcmp(s->state, pull_states[i]) == 0) {
            n->pulls[i]++;
        }
    }
    for (size_t i = 0; i < s->nviewers; i++) {
        const char *t = s->viewers[i].transport;
        n->viewers[t != NULL && strcmp(t, "ws") == 0 ? 1 : 0]++;
    }
}

void ch_main__relay_collect(ch_metrics_writer_t *w, void *ud)
{
    ch_main_relay_t *mr = ud;
    static const char *const transports[] = {"rtsp", "ws"};
    relay_counts_t n;
    memset(&n, 0, sizeof(n));
    ch_media_relay_each_stream(mr->relay, count_stream, &n);
    ch_media_relay_totals_t t;
    ch_media_relay_totals(mr->relay, &t);
    if (ch_metrics_family(w, "cctvhub_pulls", CH_METRICS_GAUGE,
                          "Camera pulls of the relay by state (as of the media loops' last "
                          "snapshot, twice a second).") == 0) {
        for (size_t i = 0; i < CH_ARRAY_SIZE(pull_states); i++) {
            ch_metrics_label_t l = {"state", pull_states[i]};
            ch_metrics_value_u64(w, &l, 1, n.pulls[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_viewers", CH_METRICS_GAUGE,
                          "Viewers playing now, by transport (rtsp, ws).") == 0) {
        for (int i = 0; i < 2; i++) {
            ch_metrics_label_t l = {"transport", transports[i]};
            ch_metrics_value_u64(w, &l, 1, n.viewers[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_views_total", CH_METRICS_COUNTER,
                          "Viewers that started playing, by transport.") == 0) {
        for (int i = 0; i < 2; i++) {
            ch_metrics_label_t l = {"transport", transports[i]};
            ch_metrics_value_u64(w, &l, 1, t.views[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_relay_bytes_in_total", CH_METRICS_COUNTER,
                          "Bytes of video read from cameras (RTP as received).") == 0) {
        ch_metrics_value_u64(w, NULL, 0, t.bytes_in);
    }
    if (ch_metrics_family(w, "cctvhub_relay_bytes_out_total", CH_METRICS_COUNTER,
                          "Bytes of video written to viewers, by transport.") == 0) {
        for (int i = 0; i < 2; i++) {
            ch_metrics_label_t l = {"transport", transports[i]};
            ch_metrics_value_u64(w, &l, 1, t.bytes_out[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_relay_unauthorized", CH_METRICS_GAUGE,
                          "Viewers' connections waiting to authorize (capped by "
                          "relay.max_unauthorized).") == 0) {
        ch_metrics_value_u64(w, NULL, 0, t.unauthorized);
    }
    if (ch_metrics_family(w, "cctvhub_relay_refused_total", CH_METRICS_COUNTER,
                          "Viewers' connections refused or closed at the door, unrecorded: "
                          "max_unauthorized, max_unauthorized_per_addr, fd_reserve (the "
                          "descriptors kept for HTTP and the audit log), no_descriptor, "
                          "auth_timeout.") == 0) {
        for (int i = 0; i < CH_MEDIA_REFUSED__COUNT; i++) {
            ch_metrics_label_t l = {"reason", ch_media_refusal_names[i]};
            ch_metrics_value_u64(w, &l, 1, t.refused[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_rtsps_tls_handshake_failures_total", CH_METRICS_COUNTER,
                          "RTSPS handshakes that failed (a bad or unknown client certificate, "
                          "not TLS) or did not end within tls.handshake_timeout_ms.") == 0) {
        ch_metrics_label_t f = {"reason", "failed"}, t2 = {"reason", "timeout"};
        ch_metrics_value_u64(w, &f, 1, t.tls_failed);
        ch_metrics_value_u64(w, &t2, 1, t.tls_timed_out);
    }
    size_t live = ch_event_gate_live(mr->gate);
    if (ch_metrics_family(w, "cctvhub_relay_grants", CH_METRICS_GAUGE,
                          "Live grants the relay admits viewers for (follows "
                          "cctvhub_grants_active).") == 0) {
        ch_metrics_value_u64(w, NULL, 0, live);
    }
}
