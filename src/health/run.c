/*
 * health/run.c: the runner of camera health on the control loop (see health.h): a timer four
 * times a second that reads the camera set again when due, takes the relay's live figures,
 * starts the due probes and writes the transitions to the store.
 *
 * The store: with a store worker (ch_health_set_worker) the camera set is read, and the
 * transitions and the watch window written, on the worker's thread, and their results taken
 * on the loop, so the loop never waits for the store (a rescan of a city's cameras reads tens
 * of thousands of rows; a database over the network makes every write a round trip). At most
 * one rescan and one watch write are on the worker at a time; flushes queue in order behind
 * each other, and the worker runs requests in the order queued, so a reader queued on the same
 * worker after ch_health_flush sees the transitions. Without a worker (at start, before the
 * hub's worker exists; at stop, after it closed; unit tests) the runner's own handle does the
 * same on the loop.
 */
#include "health/health_internal.h"
#include "store/store.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define TICK_MS 250
/* How often this run's watch window is moved forward: after a crash, at most this much of the
 * hub's last minutes is counted as not watched. */
#define WATCH_SEEN_MS 15000

static int sync_row(void *ud, const ch_store_stream_row_t *r)
{
    ch_health_sync_camera(ud, r->id, r->agency_id, r->url, r->user, r->password, r->tls_pin);
    return 0;
}

/* The camera set as read on the worker: each camera's strings copied. */
typedef struct scan_row {
    int64_t id, agency_id;
    char *url, *user, *password, *tls_pin;
} scan_row_t;

typedef struct scan_job {
    ch_health_t *h;
    int64_t now;
    scan_row_t *rows;
    size_t n, cap;
} scan_job_t;

static char *dup_or_null(const char *s)
{
    return s != NULL ? ch_strdup(s) : NULL;
}

static int scan_row(void *ud, const ch_store_stream_row_t *r)
{
    scan_job_t *j = ud;
    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 256;
        j->rows = ch_realloc(j->rows, j->cap * sizeof(*j->rows));
    }
    j->rows[j->n++] = (scan_row_t){r->id,
                                   r->agency_id,
                                   dup_or_null(r->url),
                                   dup_or_null(r->user),
                                   dup_or_null(r->password),
                                   dup_or_null(r->tls_pin)};
    return 0;
}

static int scan_work(ch_store_t *st, void *ud)
{
    return ch_store_camera_scan_streams(st, scan_row, ud);
}

static void free_secret(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        ch_free(s);
    }
}

static void scan_free(scan_job_t *j)
{
    for (size_t i = 0; i < j->n; i++) {
        ch_free(j->rows[i].url);
        free_secret(j->rows[i].user);
        free_secret(j->rows[i].password);
        ch_free(j->rows[i].tls_pin);
    }
    ch_free(j->rows);
    ch_free(j);
}

/* The set read, or the store's refusal (then the set stays as it was). */
static void sync_failed(ch_health_t *h, const char *why)
{
    ch_log(CH_LOG_ERROR, "health", "msg=\"cameras not read; the set stays\" error=\"%s\"", why);
    ch_health_sync_begin(h); /* forgets what was read */
    for (size_t i = 0; i < h->ncams; i++) {
        h->cams[i]->seen = h->sync_gen;
    }
}

static void scan_done(void *ud, int rc)
{
    scan_job_t *j = ud;
    ch_health_t *h = j->h;
    h->scanning = 0;
    if (!h->stopping) {
        ch_health_sync_begin(h);
        if (rc == 0) {
            for (size_t i = 0; i < j->n; i++) {
                const scan_row_t *r = &j->rows[i];
                ch_health_sync_camera(h, r->id, r->agency_id, r->url, r->user, r->password,
                                      r->tls_pin);
            }
        } else {
            sync_failed(h, ch_strerror(rc));
        }
        ch_health_sync_end(h, j->now);
    }
    scan_free(j);
}

/* Reads the camera set again. On a store error the set stays as it was. */
static void rescan(ch_health_t *h, int64_t now)
{
    if (h->scanning) {
        return; /* asked again: read when this one is back (rescan_asked stays) */
    }
    h->rescan_asked = 0;
    h->next_rescan_ms = now + (int64_t)h->cfg.rescan_s * 1000;
    if (h->worker != NULL) {
        scan_job_t *j = ch_calloc(1, sizeof(*j));
        j->h = h;
        j->now = now;
        if (ch_store_async(h->worker, scan_work, scan_done, j) == 0) {
            h->scanning = 1;
            return;
        }
        scan_free(j);
        h->rescan_asked = 1; /* the worker is busy: at the next tick */
        return;
    }
    ch_health_sync_begin(h);
    if (ch_store_camera_scan_streams(h->st, sync_row, h) != 0) {
        sync_failed(h, ch_store_errmsg(h->st));
    }
    ch_health_sync_end(h, now);
}

/* rows of recs (their strings point into recs). */
static ch_store_health_row_t *rows_of(const ch_health_record_t *recs, size_t n)
{
    ch_store_health_row_t *rows = ch_calloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        rows[i].camera_id = recs[i].camera_id;
        rows[i].agency_id = recs[i].agency_id;
        rows[i].at_ms = recs[i].at_ms;
        rows[i].old_state = ch_health_state_name(recs[i].old_state);
        rows[i].new_state = ch_health_state_name(recs[i].new_state);
        rows[i].reason = recs[i].reason;
    }
    return rows;
}

static int write_records(ch_store_t *st, const ch_health_record_t *recs, size_t n)
{
    ch_store_health_row_t *rows = rows_of(recs, n);
    int rc = ch_store_health_add(st, rows, n);
    ch_free(rows);
    return rc;
}

/* The store refused recs (busy with an import): they are put back in front of any newer
 * ones, for the next tick. */
static void put_back(ch_health_t *h, ch_health_record_t *recs, size_t n, const char *why)
{
    if (h->stopping && h->st == NULL) {
        ch_log(CH_LOG_ERROR, "health", "msg=\"transitions lost at stop\" count=%zu error=\"%s\"", n,
               why);
        ch_free(recs);
        return;
    }
    ch_log(CH_LOG_WARN, "health", "msg=\"transitions not stored yet\" count=%zu error=\"%s\"", n,
           why);
    if (h->nrecords > 0) {
        recs = ch_realloc(recs, (n + h->nrecords) * sizeof(*recs));
        memcpy(recs + n, h->records, h->nrecords * sizeof(*recs));
        ch_free(h->records);
    }
    h->records = recs;
    h->nrecords += n;
    h->crecords = h->nrecords;
}

typedef struct flush_job {
    ch_health_t *h;
    ch_health_record_t *recs;
    size_t n;
} flush_job_t;

static int flush_work(ch_store_t *st, void *ud)
{
    flush_job_t *j = ud;
    return write_records(st, j->recs, j->n);
}

static void flush_done(void *ud, int rc)
{
    flush_job_t *j = ud;
    j->h->flushing--;
    if (rc == 0) {
        ch_free(j->recs);
    } else {
        put_back(j->h, j->recs, j->n, ch_strerror(rc));
    }
    ch_free(j);
}

/* Writes the transitions of this tick in one transaction; kept for the next tick when the
 * store refuses (busy with an import). */
static void flush(ch_health_t *h)
{
    ch_health_record_t *recs = NULL;
    size_t n = ch_health_take_records(h, &recs);
    if (n == 0) {
        ch_free(recs);
        return;
    }
    if (h->worker != NULL) {
        flush_job_t *j = ch_calloc(1, sizeof(*j));
        *j = (flush_job_t){h, recs, n};
        if (ch_store_async(h->worker, flush_work, flush_done, j) == 0) {
            h->flushing++;
            return;
        }
        ch_free(j);
        put_back(h, recs, n, "the store worker is busy");
        return;
    }
    int rc = write_records(h->st, recs, n);
    if (rc == 0) {
        ch_free(recs);
        return;
    }
    put_back(h, recs, n, ch_store_errmsg(h->st));
}

/* The watch window's write was answered: rc 0 (the window is open, or moved to now), or the
 * store's refusal (busy: tried again at the next tick). */
static void watched(ch_health_t *h, int rc, int64_t now, const char *why)
{
    if (rc == 0) {
        h->watch_seen_ms = now;
    } else if (rc != CH_EAGAIN) {
        ch_log(CH_LOG_WARN, "health", "msg=\"watch window not stored\" error=\"%s\"", why);
        h->watch_seen_ms = now; /* not every tick */
    }
}

typedef struct watch_job {
    ch_health_t *h;
    int64_t now, id; /* id: the window to move; 0: open one, its id comes back here */
} watch_job_t;

static int watch_write(ch_store_t *st, int64_t now, int64_t *id)
{
    return *id == 0 ? ch_store_health_watch_begin(st, now, id)
                    : ch_store_health_watch_seen(st, *id, now);
}

static int watch_work(ch_store_t *st, void *ud)
{
    watch_job_t *j = ud;
    return watch_write(st, j->now, &j->id);
}

static void watch_done(void *ud, int rc)
{
    watch_job_t *j = ud;
    ch_health_t *h = j->h;
    h->watching = 0;
    if (rc == 0) {
        h->watch_id = j->id;
    }
    watched(h, rc, j->now, ch_strerror(rc));
    ch_free(j);
}

/* Opens this run's watch window, or moves its end to now. A busy store (an import holding the
 * write lock) is tried again at the next tick. With probes off (probe_interval 0) nothing is
 * watched: no window. */
static void watch(ch_health_t *h, int64_t now)
{
    if (h->cfg.probe_interval_s == 0) {
        return;
    }
    if (h->worker != NULL) {
        if (h->watching) {
            return; /* moved when it is back */
        }
        watch_job_t *j = ch_calloc(1, sizeof(*j));
        *j = (watch_job_t){h, now, h->watch_id};
        if (ch_store_async(h->worker, watch_work, watch_done, j) == 0) {
            h->watching = 1;
            return;
        }
        ch_free(j);
        return; /* the worker is busy: at the next tick */
    }
    int rc = watch_write(h->st, now, &h->watch_id);
    watched(h, rc, now, ch_store_errmsg(h->st));
}

static void start_due(ch_health_t *h, int64_t now);

static void on_probe(void *ud, int64_t camera_id, const ch_health_probe_result_t *r)
{
    ch_health_t *h = ud;
    if (h->stopping) {
        h->in_flight--; /* aborted at stop: says nothing about the camera */
        return;
    }
    ch_log(CH_LOG_DEBUG, "health", "msg=probe camera=%lld outcome=%d latency_ms=%.1f reason=\"%s\"",
           (long long)camera_id, (int)r->outcome, r->latency_s * 1000.0,
           r->reason != NULL ? r->reason : "");
    int64_t now = ch_time_now_ms();
    ch_health_probe_done(h, camera_id, r, now);
    /* Its slot is free: a due probe takes it now, not at the next tick, so the rate is bounded
     * by the cap and the cameras' answers, not by the tick. */
    start_due(h, now);
}

/* Starts the due probes the cap allows. Not re-entered: a probe that ends at once (a bad URL)
 * calls back into on_probe from inside the loop below. */
static void start_due(ch_health_t *h, int64_t now)
{
    if (h->starting || h->stopping) {
        return;
    }
    h->starting = 1;
    ch_health_probe_req_t reqs[32];
    size_t n;
    do {
        n = ch_health_due(h, now, reqs, CH_ARRAY_SIZE(reqs));
        for (size_t i = 0; i < n; i++) {
            /* The request's strings are the camera's own: copied by the probe at once. */
            ch_health__probe_start(h->loop, &h->probes, reqs[i].camera_id, reqs[i].url,
                                   reqs[i].user, reqs[i].password, reqs[i].tls_pin, h->cfg.tls,
                                   h->cfg.tls_handshake_ms, (uint64_t)h->cfg.timeout_s * 1000,
                                   on_probe, h);
        }
    } while (n == CH_ARRAY_SIZE(reqs));
    h->starting = 0;
}

static void tick(uv_timer_t *t)
{
    ch_health_t *h = t->data;
    int64_t now = ch_time_now_ms();
    if (h->stopping) {
        return;
    }
    if (h->rescan_asked || now >= h->next_rescan_ms) {
        rescan(h, now);
    }
    if (h->live_fn != NULL) {
        ch_health_live_begin(h);
        h->live_fn(h->live_ud, h, now);
        ch_health_live_end(h, now);
    }
    start_due(h, now);
    flush(h);
    if (now - h->watch_seen_ms >= WATCH_SEEN_MS || (h->watch_id == 0 && h->watch_seen_ms == 0)) {
        watch(h, now);
    }
}

static int restore_row(void *ud, const ch_store_health_row_t *r)
{
    ch_health_state_t s;
    if (ch_health_state_parse(r->new_state, &s) == 0) {
        ch_health_restore(ud, r->camera_id, s, r->at_ms);
        ch_health__end_unwatched(ud, r->camera_id, r->agency_id, s, ch_time_now_ms());
    }
    return 0;
}

int ch_health_start(ch_health_t *h, uv_loop_t *loop, const char *store_url,
                    ch_health_live_source_fn live_fn, void *live_ud, char *err, size_t errlen)
{
    char *serr = NULL;
    if (ch_store_open(store_url, &h->st, &serr) != 0) {
        snprintf(err, errlen, "health: cannot open the store: %s", serr != NULL ? serr : "?");
        ch_free(serr);
        return CH_EDB;
    }
    h->loop = loop;
    h->live_fn = live_fn;
    h->live_ud = live_ud;
    int64_t now = ch_time_now_ms();
    rescan(h, now);
    /* The states the cameras had when the hub stopped, and since when: an outage that began
     * before a restart keeps its start. */
    if (ch_store_health_last(h->st, INT64_MAX, restore_row, h) != 0) {
        ch_log(CH_LOG_WARN, "health", "msg=\"last states not read\" error=\"%s\"",
               ch_store_errmsg(h->st));
    }
    watch(h, now);
    h->timer = ch_calloc(1, sizeof(*h->timer));
    uv_timer_init(loop, h->timer);
    h->timer->data = h;
    uv_timer_start(h->timer, tick, TICK_MS, TICK_MS);
    ch_log(CH_LOG_INFO, "health",
           "msg=started cameras=%zu probe_interval_s=%u concurrency=%u timeout_s=%u "
           "fail_threshold=%u",
           h->ncams, h->cfg.probe_interval_s, h->cfg.concurrency, h->cfg.timeout_s,
           h->cfg.fail_threshold);
    return 0;
}

void ch_health_flush(ch_health_t *h)
{
    if (h != NULL && h->st != NULL) {
        flush(h);
        if (h->watch_id != 0) {
            watch(h, ch_time_now_ms());
        }
    }
}

void ch_health_set_worker(ch_health_t *h, ch_store_worker_t *w)
{
    if (h != NULL) {
        h->worker = w;
    }
}

void ch_health_changed(ch_health_t *h)
{
    if (h != NULL) {
        h->rescan_asked = 1;
    }
}

static void free_handle(uv_handle_t *hd)
{
    ch_free(hd);
}

void ch_health_stop(ch_health_t *h)
{
    if (h == NULL || h->stopping) {
        return;
    }
    h->stopping = 1;
    if (h->timer != NULL) {
        uv_timer_stop(h->timer);
        uv_close((uv_handle_t *)h->timer, free_handle);
        h->timer = NULL;
    }
    while (h->probes != NULL) {
        ch_health__probe_abort(h->probes);
    }
    /* The last writes on the runner's own handle, now: the worker's requests still in flight
     * complete when it closes (a flush refused then is logged as lost). */
    h->worker = NULL;
    if (h->st != NULL) {
        flush(h);
        if (h->watch_id != 0) {
            watch(h, ch_time_now_ms());
        }
        ch_store_close(h->st);
        h->st = NULL;
    }
}
