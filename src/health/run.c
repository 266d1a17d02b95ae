/*
 * health/run.c: the runner of camera health on the control loop (see health.h): a timer four
 * times a second that reads the camera set again when due, takes the relay's live figures,
 * starts the due probes and writes the transitions to the store.
 */
#include "health/health_internal.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

#define TICK_MS 250
/* How often this run's watch window is moved forward: after a crash, at most this much of the
 * hub's last minutes is counted as not watched. */
#define WATCH_SEEN_MS 15000

static int sync_row(void *ud, const ch_store_stream_row_t *r)
{
    ch_health_sync_camera(ud, r->id, r->agency_id, r->url, r->user, r->password);
    return 0;
}

/* Reads the camera set again. On a store error the set stays as it was. */
static void rescan(ch_health_t *h, int64_t now)
{
    h->rescan_asked = 0;
    h->next_rescan_ms = now + (int64_t)h->cfg.rescan_s * 1000;
    ch_health_sync_begin(h);
    if (ch_store_camera_scan_streams(h->st, sync_row, h) != 0) {
        ch_log(CH_LOG_ERROR, "health", "msg=\"cameras not read; the set stays\" error=\"%s\"",
               ch_store_errmsg(h->st));
        ch_health_sync_begin(h); /* forgets what was read */
        for (size_t i = 0; i < h->ncams; i++) {
            h->cams[i]->seen = h->sync_gen;
        }
    }
    ch_health_sync_end(h, now);
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
    ch_store_health_row_t *rows = ch_calloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        rows[i].camera_id = recs[i].camera_id;
        rows[i].agency_id = recs[i].agency_id;
        rows[i].at_ms = recs[i].at_ms;
        rows[i].old_state = ch_health_state_name(recs[i].old_state);
        rows[i].new_state = ch_health_state_name(recs[i].new_state);
        rows[i].reason = recs[i].reason;
    }
    int rc = ch_store_health_add(h->st, rows, n);
    ch_free(rows);
    if (rc == 0) {
        ch_free(recs);
        return;
    }
    ch_log(CH_LOG_WARN, "health", "msg=\"transitions not stored yet\" count=%zu error=\"%s\"", n,
           ch_store_errmsg(h->st));
    /* Put them back in front of any newer ones. */
    if (h->nrecords > 0) {
        recs = ch_realloc(recs, (n + h->nrecords) * sizeof(*recs));
        memcpy(recs + n, h->records, h->nrecords * sizeof(*recs));
        ch_free(h->records);
    }
    h->records = recs;
    h->nrecords += n;
    h->crecords = h->nrecords;
}

/* Opens this run's watch window, or moves its end to now. A busy store (an import holding the
 * write lock) is tried again at the next tick. With probes off (probe_interval 0) nothing is
 * watched: no window. */
static void watch(ch_health_t *h, int64_t now)
{
    int rc;
    if (h->cfg.probe_interval_s == 0) {
        return;
    }
    if (h->watch_id == 0) {
        rc = ch_store_health_watch_begin(h->st, now, &h->watch_id);
    } else {
        rc = ch_store_health_watch_seen(h->st, h->watch_id, now);
    }
    if (rc == 0) {
        h->watch_seen_ms = now;
    } else if (rc != CH_EAGAIN) {
        ch_log(CH_LOG_WARN, "health", "msg=\"watch window not stored\" error=\"%s\"",
               ch_store_errmsg(h->st));
        h->watch_seen_ms = now; /* not every tick */
    }
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
                                   reqs[i].user, reqs[i].password,
                                   (uint64_t)h->cfg.timeout_s * 1000, on_probe, h);
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
    if (h->st != NULL) {
        flush(h);
        if (h->watch_id != 0) {
            watch(h, ch_time_now_ms());
        }
        ch_store_close(h->st);
        h->st = NULL;
    }
}
