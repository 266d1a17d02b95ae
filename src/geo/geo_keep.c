/*
 * geo: the keeper (geo.h): the index of a store's cameras in step with their committed
 * changes, on the control loop, with a reload of every camera on the thread pool. The cameras
 * changed while a reload runs are kept (their records as told, in order) and replayed onto the
 * index it brings, so the pool's read never has to be done again on the loop.
 */
#include "geo/geo.h"

#include <string.h>
#include <uv.h>

/* At most this many camera changes are kept for the replay; past it the reload's index is read
 * again on the loop (a stream of changes that long would otherwise grow without bound). */
#define REPLAY_MAX 65536

/* A camera changed while a reload ran: its place in the model's form, or gone. */
typedef struct replay {
    int64_t id;
    int placed; /* cam holds its place; else it has none (deleted, unlocated, bad position) */
    ch_geo_cam_t cam;
    char *purpose;
} replay_t;

/* Who waits for a reload to be in force. */
typedef struct waiter {
    void (*done)(void *ud);
    void *ud;
    struct waiter *next;
} waiter_t;

struct ch_geo_keeper {
    uv_loop_t *loop;
    ch_store_t *st; /* the loop's handle: camera reads and a reload that must see everything */
    char *store_url;
    ch_geo_t *idx; /* the index in force, one reference ours */
    void (*swapped)(void *ud, ch_geo_t *idx);
    void *swapped_ud;
    replay_t *replay; /* cameras changed one by one while the reload runs, in order */
    size_t nreplay, creplay;
    int overflow;      /* more than REPLAY_MAX of them: read again here */
    int reloading;     /* a reload runs on the pool */
    int freeing;       /* ch_geo_keeper_free was called while it ran */
    waiter_t *running; /* waiting for the running reload */
    waiter_t *next;    /* asked while one ran (it may have read before their change): the next */
};

typedef struct reload_job {
    uv_work_t work;
    ch_geo_keeper_t *k;
    ch_geo_t *idx; /* loaded on the pool, or NULL when that failed */
} reload_job_t;

static void replay_clear(ch_geo_keeper_t *k)
{
    for (size_t i = 0; i < k->nreplay; i++) {
        ch_free(k->replay[i].purpose);
    }
    k->nreplay = 0;
    k->overflow = 0;
}

/* Keeps a change told while a reload runs (cam NULL: gone). */
static void replay_keep(ch_geo_keeper_t *k, int64_t id, const ch_camera_t *cam)
{
    if (k->overflow) {
        return;
    }
    if (k->nreplay == REPLAY_MAX) {
        replay_clear(k);
        k->overflow = 1;
        return;
    }
    if (k->nreplay == k->creplay) {
        k->creplay = k->creplay ? k->creplay * 2 : 64;
        k->replay = ch_realloc(k->replay, k->creplay * sizeof(*k->replay));
    }
    replay_t *r = &k->replay[k->nreplay++];
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->placed = cam != NULL && ch_geo_cam_from_camera(cam, &r->cam) == 0;
    r->purpose = r->placed && cam->purpose != NULL ? ch_strdup(cam->purpose) : NULL;
}

/* The changes kept, in order, onto idx (held by the keeper alone); 0 or the first refusal. */
static int replay_onto(ch_geo_keeper_t *k, ch_geo_t *idx)
{
    int rc = 0;
    for (size_t i = 0; i < k->nreplay; i++) {
        const replay_t *r = &k->replay[i];
        if (!r->placed) {
            (void)ch_geo_remove(idx, r->id);
        } else if (ch_geo_upsert_cam(idx, &r->cam, r->purpose) != 0 && rc == 0) {
            rc = CH_EINVAL;
        }
    }
    return rc;
}

static void wake(waiter_t *w)
{
    while (w != NULL) {
        waiter_t *n = w->next;
        if (w->done != NULL) {
            w->done(w->ud);
        }
        ch_free(w);
        w = n;
    }
}

static void wait_on(waiter_t **list, void (*done)(void *ud), void *ud)
{
    waiter_t *w = ch_calloc(1, sizeof(*w));
    w->done = done;
    w->ud = ud;
    w->next = *list;
    *list = w;
}

static void swap_in(ch_geo_keeper_t *k, ch_geo_t *idx)
{
    if (idx == k->idx) {
        return;
    }
    ch_geo_free(k->idx);
    k->idx = idx;
    if (k->swapped != NULL) {
        k->swapped(k->swapped_ud, idx);
    }
}

int ch_geo_keeper_new(uv_loop_t *loop, ch_store_t *st, const char *store_url, ch_geo_keeper_t **out)
{
    *out = NULL;
    ch_geo_t *idx = ch_geo_new();
    int rc = ch_geo_load(idx, st);
    if (rc != 0) {
        ch_geo_free(idx);
        return rc;
    }
    ch_geo_keeper_t *k = ch_calloc(1, sizeof(*k));
    k->loop = loop;
    k->st = st;
    k->store_url = store_url != NULL ? ch_strdup(store_url) : NULL;
    k->idx = idx;
    *out = k;
    return 0;
}

void ch_geo_keeper_on_swap(ch_geo_keeper_t *k, void (*swapped)(void *ud, ch_geo_t *idx), void *ud)
{
    k->swapped = swapped;
    k->swapped_ud = ud;
}

ch_geo_t *const *ch_geo_keeper_slot(const ch_geo_keeper_t *k)
{
    return &k->idx;
}

void ch_geo_keeper_camera(ch_geo_keeper_t *k, int64_t id, const ch_camera_t *cam)
{
    /* A path, area or coverage query on the pool may be reading the index: then change a copy
     * (theirs stays as it was until they drop it). */
    ch_geo_t *idx = ch_geo_unshare(k->idx);
    if (idx != k->idx) {
        k->idx = idx; /* unshare dropped our reference to the old one */
        if (k->swapped != NULL) {
            k->swapped(k->swapped_ud, idx);
        }
    }
    ch_camera_t read;
    ch_camera_init(&read);
    if (cam == NULL && ch_store_camera_get(k->st, id, &read) == 0) {
        cam = &read;
    }
    if (cam == NULL) {
        (void)ch_geo_remove(k->idx, id);
    } else if (ch_geo_upsert(k->idx, cam) != 0) {
        ch_log(CH_LOG_WARN, "geo", "msg=\"camera not placed in the geo index\" id=%lld",
               (long long)id);
    }
    if (k->reloading) {
        replay_keep(k, id, cam); /* the pool's read may have come before it */
    }
    ch_camera_fini(&read);
}

static void start_reload(ch_geo_keeper_t *k);

/* On the pool: a new index from a handle of its own (WAL lets the loop's go on). */
static void reload_work(uv_work_t *w)
{
    reload_job_t *j = w->data;
    ch_store_t *st = NULL;
    if (ch_store_open(j->k->store_url, &st, NULL) != 0) {
        return;
    }
    j->idx = ch_geo_new();
    if (ch_geo_load(j->idx, st) != 0) {
        ch_geo_free(j->idx);
        j->idx = NULL;
    }
    ch_store_close(st);
}

/* On the loop: the index loaded from the loop's handle, which sees every change. */
static ch_geo_t *load_here(ch_geo_keeper_t *k)
{
    ch_geo_t *idx = ch_geo_new();
    if (ch_geo_load(idx, k->st) != 0) {
        ch_log(CH_LOG_ERROR, "geo", "msg=\"index reload failed\"");
    }
    return idx;
}

static void reload_done(uv_work_t *w, int status)
{
    reload_job_t *j = w->data;
    ch_geo_keeper_t *k = j->k;
    k->reloading = 0;
    waiter_t *woken = k->running;
    k->running = NULL;
    if (k->freeing) {
        ch_geo_free(j->idx);
        ch_free(j);
        replay_clear(k);
        wake(woken);
        wake(k->next);
        k->next = NULL;
        ch_geo_keeper_free(k);
        return;
    }
    /* The pool's index may miss camera changes told here meanwhile: they are replayed onto
     * it, in order (a change it read already is written again, the same); only a failed load
     * or too many changes are read again here. */
    ch_geo_t *idx = j->idx;
    if (status != 0 || idx == NULL || k->overflow || replay_onto(k, idx) != 0) {
        ch_geo_free(idx);
        idx = load_here(k);
    }
    replay_clear(k);
    ch_free(j);
    swap_in(k, idx);
    ch_log(CH_LOG_INFO, "geo", "msg=\"index reloaded\" cameras=%zu", ch_geo_count(k->idx));
    if (k->next != NULL) {
        start_reload(k);
    }
    wake(woken);
}

void ch_geo_keeper_reload(ch_geo_keeper_t *k, void (*done)(void *ud), void *ud)
{
    wait_on(&k->next, done, ud);
    if (!k->reloading) {
        start_reload(k);
    }
}

/* Starts the reload that k->next waits for. */
static void start_reload(ch_geo_keeper_t *k)
{
    k->running = k->next;
    k->next = NULL;
    if (k->store_url == NULL || k->loop == NULL) {
        swap_in(k, load_here(k));
        waiter_t *w = k->running;
        k->running = NULL;
        wake(w);
        return;
    }
    reload_job_t *j = ch_calloc(1, sizeof(*j));
    j->k = k;
    j->work.data = j;
    if (uv_queue_work(k->loop, &j->work, reload_work, reload_done) != 0) {
        ch_free(j);
        swap_in(k, load_here(k));
        waiter_t *w = k->running;
        k->running = NULL;
        wake(w);
        return;
    }
    k->reloading = 1;
}

void ch_geo_keeper_free(ch_geo_keeper_t *k)
{
    if (k == NULL) {
        return;
    }
    if (k->reloading) {
        k->freeing = 1;
        return;
    }
    ch_geo_free(k->idx);
    replay_clear(k);
    ch_free(k->replay);
    ch_free(k->store_url);
    ch_free(k);
}
