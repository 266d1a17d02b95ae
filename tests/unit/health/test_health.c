/*
 * Camera health without a loop or a socket: the state machine (probe results and live pulls
 * to states, the failure threshold, auth failures, restores), the scheduler (first probes
 * spread over the interval, the cap on concurrent probes, retries after a failure, a camera
 * set that changes), the snapshot for metrics, and the monthly report's arithmetic, all with
 * fixed times. Then the store's side: transitions written and read back, the last state per
 * camera, the cameras with stream URLs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health/health.h"
#include "store/store.h"

#include <uv.h>

#define T0     1800000000000LL /* 2027-01-15, ms */
#define MINUTE 60000LL
#define HOUR   (60 * MINUTE)

static const ch_health_probe_result_t OK = {CH_HEALTH_PROBE_OK, 0.02, "H264", "ok"};
static const ch_health_probe_result_t FAIL = {CH_HEALTH_PROBE_FAILED, 5, NULL,
                                              "cannot connect to the camera: connection refused"};
static const ch_health_probe_result_t AUTH = {CH_HEALTH_PROBE_AUTH_FAILED, 0.01, NULL,
                                              "the camera refused the credentials (401)"};

typedef struct seen {
    ch_health_transition_t t[64];
    char reasons[64][160];
    size_t n;
} seen_t;

static void listener(void *ud, const ch_health_transition_t *t)
{
    seen_t *s = ud;
    assert_true(s->n < 64);
    s->t[s->n] = *t;
    snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%s", t->reason);
    s->t[s->n].reason = s->reasons[s->n];
    s->n++;
}

static ch_health_t *new_health(unsigned interval_s, unsigned concurrency)
{
    ch_health_config_t cfg = {
        .probe_interval_s = interval_s,
        .concurrency = concurrency,
        .fail_threshold = 3,
        .min_fps = 10,
        .keyframe_max_s = 10,
        .seed = 42,
    };
    return ch_health_new(&cfg);
}

/* n cameras with ids 1..n, agency 100 + id % 2. */
static void sync_n(ch_health_t *h, int n, int64_t now)
{
    ch_health_sync_begin(h);
    for (int i = 1; i <= n; i++) {
        ch_health_sync_camera(h, i, 100 + i % 2, "rtsp://10.0.0.1/s", "u", "p", NULL);
    }
    ch_health_sync_end(h, now);
}

/* Runs every probe due at now with result r; returns how many ran. */
static size_t run_due(ch_health_t *h, int64_t now, const ch_health_probe_result_t *r)
{
    ch_health_probe_req_t req[64];
    size_t total = 0, n;
    while ((n = ch_health_due(h, now, req, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            ch_health_probe_done(h, req[i].camera_id, r, now);
        }
        total += n;
    }
    return total;
}

static ch_health_state_t state(const ch_health_t *h, int64_t id)
{
    return ch_health_state_of(h, id);
}

/* ---- the state machine --------------------------------------------------------------------- */

static void test_one_lost_probe_does_not_make_a_camera_offline(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(60, 8);
    seen_t seen = {0};
    ch_health_set_listener(h, listener, &seen);
    sync_n(h, 1, T0);
    assert_int_equal(state(h, 1), CH_HEALTH_UNKNOWN);
    ch_health_probe_done(h, 1, &OK, T0); /* not running: ignored */
    assert_int_equal(state(h, 1), CH_HEALTH_UNKNOWN);
    assert_int_equal(run_due(h, T0 + 60 * 1000, &OK), 1);
    assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.t[0].old_state, CH_HEALTH_UNKNOWN);
    assert_int_equal(seen.t[0].new_state, CH_HEALTH_ONLINE);
    assert_int_equal(seen.t[0].agency_id, 101);

    /* Two failures: still online; the third makes it offline, with the reason. */
    int64_t t = T0 + 60 * 1000, first_fail = 0;
    int fails = 0;
    while (fails < 3) {
        t += 1000;
        size_t n = run_due(h, t, &FAIL);
        if (n > 0 && first_fail == 0) {
            first_fail = t;
        }
        fails += (int)n;
        if (fails < 3) {
            assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);
        }
        assert_true(t < T0 + 10 * MINUTE);
    }
    assert_int_equal(state(h, 1), CH_HEALTH_OFFLINE);
    assert_int_equal(seen.n, 2);
    assert_non_null(strstr(seen.reasons[1], "3 probes in a row failed"));
    assert_non_null(strstr(seen.reasons[1], "connection refused"));
    /* Retries came at a third of the interval (and a tenth of jitter), not a full one. */
    assert_true(t - first_fail <= 2 * (20 + 6 + 1) * 1000);
    assert_true(t - first_fail >= 2 * 20 * 1000);

    /* One success brings it back. */
    ch_health_info_t info;
    assert_int_equal(ch_health_get(h, 1, &info), 0);
    assert_int_equal(info.failures, 3);
    t = info.next_probe_ms;
    assert_int_equal(run_due(h, t, &OK), 1);
    assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);
    assert_int_equal(ch_health_get(h, 1, &info), 0);
    assert_int_equal(info.failures, 0);
    assert_string_equal(info.codec, "H264");
    assert_int_equal(info.since_ms, t);
    assert_int_equal(seen.n, 3);

    /* Stored records: one per transition, in order. */
    ch_health_record_t *rec = NULL;
    size_t n = ch_health_take_records(h, &rec);
    assert_int_equal(n, 3);
    assert_int_equal(rec[1].new_state, CH_HEALTH_OFFLINE);
    assert_int_equal(rec[2].old_state, CH_HEALTH_OFFLINE);
    ch_free(rec);
    assert_int_equal(ch_health_take_records(h, &rec), 0);
    ch_free(rec);
    ch_health_free(h);
}

static void test_refused_credentials_are_auth_failed_at_once(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(60, 8);
    sync_n(h, 1, T0);
    assert_int_equal(run_due(h, T0 + 60 * 1000, &AUTH), 1);
    assert_int_equal(state(h, 1), CH_HEALTH_AUTH_FAILED);
    ch_health_info_t info;
    assert_int_equal(ch_health_get(h, 1, &info), 0);
    assert_string_equal(info.reason, "the camera refused the credentials (401)");
    /* Unreachable afterwards: offline after the threshold. */
    int64_t t = info.next_probe_ms;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ch_health_get(h, 1, &info), 0);
        t = info.next_probe_ms;
        assert_int_equal(run_due(h, t, &FAIL), 1);
    }
    assert_int_equal(state(h, 1), CH_HEALTH_OFFLINE);
    ch_health_snapshot_t s;
    ch_health_snapshot(h, &s);
    assert_int_equal(s.probes_auth_failed, 1);
    assert_int_equal(s.probes_failed, 3);
    assert_int_equal(s.by_state[CH_HEALTH_OFFLINE], 1);
    ch_health_free(h);
}

static void test_live_pull_is_evidence_and_can_be_degraded(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(60, 8);
    seen_t seen = {0};
    ch_health_set_listener(h, listener, &seen);
    sync_n(h, 1, T0);
    ch_health_live_t l = {
        .camera_id = 1, .playing = 1, .since_ms = T0, .fps = 25, .keyframes = 1, .packets_in = 100};
    ch_health_live_begin(h);
    ch_health_live(h, &l, T0 + 1000);
    ch_health_live_end(h, T0 + 1000);
    assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);
    assert_string_equal(seen.reasons[0], "live pull playing");
    /* No probe while the pull plays: its next probe moved an interval away. */
    ch_health_info_t info;
    assert_int_equal(ch_health_get(h, 1, &info), 0);
    assert_true(info.next_probe_ms >= T0 + 1000 + 54 * 1000);
    assert_true(info.has_live && info.live.fps == 25);

    /* Low fps, once settled: degraded. */
    l.fps = 4;
    l.packets_in = 200;
    l.keyframes = 2;
    ch_health_live_begin(h);
    ch_health_live(h, &l, T0 + 2000); /* 2 s into the pull: not judged yet */
    ch_health_live_end(h, T0 + 2000);
    assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);
    ch_health_live(h, &l, T0 + 6000);
    assert_int_equal(state(h, 1), CH_HEALTH_DEGRADED);
    assert_non_null(strstr(seen.reasons[1], "4.0 fps, under health.min_fps 10"));

    /* Good fps but no new keyframe for more than 10 s: degraded for that. */
    l.fps = 25;
    ch_health_live(h, &l, T0 + 7000);
    assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);
    l.packets_in = 900;
    ch_health_live(h, &l, T0 + 17000);
    assert_int_equal(state(h, 1), CH_HEALTH_DEGRADED);
    assert_non_null(strstr(seen.reasons[3], "without a keyframe for 15 s"));
    assert_int_equal(ch_health_get(h, 1, &info), 0);
    assert_int_equal(info.last_frame_ms, T0 + 17000);
    assert_int_equal(info.last_keyframe_ms, T0 + 2000);
    l.keyframes = 3;
    ch_health_live(h, &l, T0 + 18000);
    assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);

    /* A probe's success does not override the pull's verdict while it plays. */
    l.fps = 2;
    ch_health_live(h, &l, T0 + 19000);
    assert_int_equal(state(h, 1), CH_HEALTH_DEGRADED);

    /* The pull breaks: a probe within a second; the pull gone, probes decide again. */
    l.playing = 0;
    ch_health_live_begin(h);
    ch_health_live(h, &l, T0 + 20000);
    ch_health_live_end(h, T0 + 20000);
    assert_int_equal(ch_health_get(h, 1, &info), 0);
    assert_int_equal(info.next_probe_ms, T0 + 21000);
    ch_health_live_begin(h);
    ch_health_live_end(h, T0 + 20500);
    ch_health_probe_req_t req[4];
    assert_int_equal(ch_health_due(h, T0 + 21000, req, 4), 1);
    assert_int_equal(req[0].camera_id, 1);
    ch_health_probe_done(h, 1, &OK, T0 + 21000);
    assert_int_equal(state(h, 1), CH_HEALTH_ONLINE);
    /* A report for a camera not watched changes nothing. */
    l.camera_id = 99;
    ch_health_live(h, &l, T0 + 22000);
    assert_int_equal(ch_health_get(h, 99, &info), CH_ENOTFOUND);
    ch_health_free(h);
}

static void test_restore_keeps_since_and_state(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(60, 8);
    seen_t seen = {0};
    ch_health_set_listener(h, listener, &seen);
    sync_n(h, 3, T0);
    ch_health_restore(h, 1, CH_HEALTH_OFFLINE, T0 - HOUR);
    ch_health_restore(h, 2, CH_HEALTH_ONLINE, T0 - 2 * HOUR);
    ch_health_restore(h, 7, CH_HEALTH_ONLINE, T0); /* not watched: ignored */
    assert_int_equal(seen.n, 0);
    ch_health_info_t info;
    assert_int_equal(ch_health_get(h, 1, &info), 0);
    assert_int_equal(info.state, CH_HEALTH_OFFLINE);
    assert_int_equal(info.since_ms, T0 - HOUR);
    ch_health_snapshot_t s;
    ch_health_snapshot(h, &s);
    assert_int_equal(s.cameras, 3);
    assert_int_equal(s.by_state[CH_HEALTH_OFFLINE], 1);
    assert_int_equal(s.by_state[CH_HEALTH_ONLINE], 1);
    assert_int_equal(s.by_state[CH_HEALTH_UNKNOWN], 1);
    /* A restored offline camera stays offline on its next failure (no record), and one
     * success brings it back. */
    ch_health_probe_req_t req[8];
    size_t n = ch_health_due(h, T0 + 60 * 1000, req, 8);
    assert_int_equal(n, 3);
    ch_health_probe_done(h, 1, &FAIL, T0 + 60 * 1000);
    assert_int_equal(state(h, 1), CH_HEALTH_OFFLINE);
    assert_int_equal(seen.n, 0);
    ch_health_free(h);
}

/* ---- the scheduler ------------------------------------------------------------------------- */

static void test_first_probes_are_spread_over_the_interval(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(60, 100000);
    sync_n(h, 18000, T0);
    /* Per second of the first interval: about 300 probes each, never all at once. The probes
     * are left running, so no camera comes twice. */
    static ch_health_probe_req_t req[18000];
    size_t per_sec[60] = {0}, total = 0;
    for (int sec = 0; sec < 60; sec++) {
        per_sec[sec] = ch_health_due(h, T0 + (sec + 1) * 1000 - 1, req + total, 18000 - total);
        total += per_sec[sec];
    }
    assert_int_equal(total, 18000);
    for (int sec = 0; sec < 60; sec++) {
        assert_true(per_sec[sec] > 200 && per_sec[sec] < 400);
    }
    int64_t done = T0 + 60 * 1000;
    for (size_t i = 0; i < total; i++) {
        ch_health_probe_done(h, req[i].camera_id, &OK, done);
    }
    /* The next round is an interval later, give or take a tenth. */
    assert_int_equal(run_due(h, done + 54 * 1000 - 1, &OK), 0);
    assert_int_equal(run_due(h, done + 66 * 1000, &OK), 18000);
    ch_health_snapshot_t s;
    ch_health_snapshot(h, &s);
    assert_int_equal(s.by_state[CH_HEALTH_ONLINE], 18000);
    ch_health_free(h);
}

static void test_concurrent_probes_are_capped(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(10, 5);
    sync_n(h, 50, T0);
    ch_health_probe_req_t req[64];
    int64_t late = T0 + 10 * 1000;
    size_t n = ch_health_due(h, late, req, 64);
    assert_int_equal(n, 5); /* all 50 are due; 5 may run */
    assert_int_equal(ch_health_due(h, late, req + n, 64), 0);
    ch_health_snapshot_t s;
    ch_health_snapshot(h, &s);
    assert_int_equal(s.in_flight, 5);
    /* One ends: one more may start. */
    ch_health_probe_done(h, req[0].camera_id, &OK, late);
    assert_int_equal(ch_health_due(h, late, req + 5, 64), 1);
    /* A running camera is never handed out twice. */
    for (size_t i = 0; i < 6; i++) {
        for (size_t k = i + 1; k < 6; k++) {
            assert_true(req[i].camera_id != req[k].camera_id);
        }
    }
    ch_health_free(h);
}

static void test_camera_set_changes(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(60, 8);
    sync_n(h, 3, T0);
    assert_int_equal(run_due(h, T0 + 60 * 1000, &OK), 3);
    /* Camera 2 goes, 4 comes, 3's URL changes: 3 is probed again within a second. */
    ch_health_sync_begin(h);
    ch_health_sync_camera(h, 1, 101, "rtsp://10.0.0.1/s", "u", "p", NULL);
    ch_health_sync_camera(h, 3, 101, "rtsp://10.0.0.9/new", "u", "p", NULL);
    ch_health_sync_camera(h, 4, 100, "rtsp://10.0.0.4/s", NULL, NULL, NULL);
    ch_health_sync_camera(h, 4, 100, "rtsp://10.0.0.4/s", NULL, NULL, NULL); /* twice: once */
    ch_health_sync_end(h, T0 + 61 * 1000);
    ch_health_info_t info;
    assert_int_equal(ch_health_get(h, 2, &info), CH_ENOTFOUND);
    /* Its observation ended with a recorded transition to unknown. */
    ch_health_record_t *rec = NULL;
    size_t nrec = ch_health_take_records(h, &rec);
    assert_true(nrec >= 1);
    assert_int_equal(rec[nrec - 1].camera_id, 2);
    assert_int_equal(rec[nrec - 1].old_state, CH_HEALTH_ONLINE);
    assert_int_equal(rec[nrec - 1].new_state, CH_HEALTH_UNKNOWN);
    assert_non_null(strstr(rec[nrec - 1].reason, "no longer watched"));
    ch_free(rec);
    assert_int_equal(state(h, 2), CH_HEALTH_UNKNOWN);
    assert_int_equal(ch_health_get(h, 3, &info), 0);
    assert_true(info.next_probe_ms <= T0 + 62 * 1000);
    assert_int_equal(info.state, CH_HEALTH_ONLINE);
    ch_health_snapshot_t s;
    ch_health_snapshot(h, &s);
    assert_int_equal(s.cameras, 3);
    assert_int_equal(s.by_state[CH_HEALTH_ONLINE], 2);
    assert_int_equal(s.by_state[CH_HEALTH_UNKNOWN], 1);
    ch_health_probe_req_t req[8];
    size_t n = ch_health_due(h, T0 + 62 * 1000, req, 8);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        if (req[i].camera_id == 3) {
            found = 1;
            assert_string_equal(req[i].url, "rtsp://10.0.0.9/new");
        }
        assert_true(req[i].camera_id != 1); /* probed a second ago */
    }
    assert_true(found);
    /* Dropped while its probe runs: the result is ignored, the slot freed. */
    ch_health_sync_begin(h);
    ch_health_sync_camera(h, 1, 101, "rtsp://10.0.0.1/s", "u", "p", NULL);
    ch_health_sync_end(h, T0 + 62 * 1000);
    for (size_t i = 0; i < n; i++) {
        ch_health_probe_done(h, req[i].camera_id, &FAIL, T0 + 63 * 1000);
    }
    ch_health_snapshot(h, &s);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.cameras, 1);
    /* Probes off: nothing is ever due, states come from live pulls only. */
    ch_health_t *off = new_health(0, 8);
    sync_n(off, 5, T0);
    assert_int_equal(run_due(off, T0 + 365LL * 24 * HOUR, &OK), 0);
    ch_health_free(off);
    ch_health_free(h);
}

static void test_latency_histogram_is_cumulative(void **unused)
{
    (void)unused;
    ch_health_t *h = new_health(60, 8);
    sync_n(h, 3, T0);
    ch_health_probe_req_t req[8];
    assert_int_equal(ch_health_due(h, T0 + 60 * 1000, req, 8), 3);
    ch_health_probe_result_t r = OK;
    double lat[3] = {0.004, 0.3, 20};
    for (int i = 0; i < 3; i++) {
        r.latency_s = lat[i];
        ch_health_probe_done(h, req[i].camera_id, &r, T0 + 60 * 1000);
    }
    ch_health_snapshot_t s;
    ch_health_snapshot(h, &s);
    assert_int_equal(s.latency_count, 3);
    assert_true(fabs(s.latency_sum_s - 20.304) < 1e-9);
    assert_int_equal(s.latency_buckets[0], 1);                      /* <= 0.005 */
    assert_int_equal(s.latency_buckets[5], 1);                      /* <= 0.25 */
    assert_int_equal(s.latency_buckets[6], 2);                      /* <= 0.5 */
    assert_int_equal(s.latency_buckets[CH_HEALTH_NBUCKETS - 1], 2); /* <= 10; +Inf is count */
    ch_health_free(h);
}

static void test_state_names(void **unused)
{
    (void)unused;
    ch_health_state_t s;
    const char *names[] = {"unknown", "online", "degraded", "offline", "auth-failed"};
    for (int i = 0; i < CH_HEALTH_NSTATES; i++) {
        assert_int_equal(ch_health_state_parse(names[i], &s), 0);
        assert_int_equal(s, i);
        assert_string_equal(ch_health_state_name(s), names[i]);
    }
    assert_int_equal(ch_health_state_parse("Online", &s), CH_EINVAL);
    assert_int_equal(ch_health_state_parse(NULL, &s), CH_EINVAL);
}

/* ---- the report ---------------------------------------------------------------------------- */

static void test_report_arithmetic(void **unused)
{
    (void)unused;
    /* A 30-day month; camera 1 (agency 7) online all month but one 90-minute outage that
     * moves from offline to auth-failed; camera 2 (agency 7) offline from before the month
     * until day 10; camera 3 (agency 8) never seen; camera 4 (agency 8) first seen on day 15,
     * online after; camera 5 (agency 8) degraded all month. */
    int64_t from = T0, to = T0 + 30 * 24 * HOUR, day = 24 * HOUR;
    ch_health_report_builder_t *b = ch_health_report_begin(from, to);
    ch_health_report_camera(b, 7, 2);
    ch_health_report_camera(b, 8, 4);
    ch_health_report_transition(b, 1, 7, CH_HEALTH_ONLINE, from - day);
    ch_health_report_transition(b, 1, 7, CH_HEALTH_OFFLINE, from + day);
    ch_health_report_transition(b, 1, 7, CH_HEALTH_AUTH_FAILED, from + day + 30 * MINUTE);
    ch_health_report_transition(b, 1, 7, CH_HEALTH_ONLINE, from + day + 90 * MINUTE);
    ch_health_report_transition(b, 2, 7, CH_HEALTH_OFFLINE, from - 5 * day);
    ch_health_report_transition(b, 2, 7, CH_HEALTH_ONLINE, from + 10 * day);
    ch_health_report_transition(b, 4, 8, CH_HEALTH_ONLINE, from + 15 * day);
    ch_health_report_transition(b, 5, 8, CH_HEALTH_DEGRADED, from - day);
    ch_health_report_transition(b, 9, 9, CH_HEALTH_ONLINE, to + day); /* after: nothing */
    ch_health_report_t r;
    ch_health_report_end(b, &r);
    assert_int_equal(r.nrows, 3);
    const ch_health_report_row_t *a7 = &r.rows[0], *a8 = &r.rows[1], *a9 = &r.rows[2];
    assert_int_equal(a7->agency_id, 7);
    assert_int_equal(a7->cameras, 2);
    assert_int_equal(a7->probed_cameras, 2);
    assert_int_equal(a7->outages, 2);
    double month_s = 30.0 * 86400;
    assert_true(fabs(a7->observed_s - 2 * month_s) < 1e-6);
    assert_true(fabs(a7->outage_s - (90 * 60 + 10 * 86400.0)) < 1e-6);
    assert_true(fabs(a7->availability_pct - 100.0 * (2 * month_s - a7->outage_s) / (2 * month_s)) <
                1e-9);
    assert_int_equal(a8->agency_id, 8);
    assert_int_equal(a8->cameras, 4);
    assert_int_equal(a8->probed_cameras, 2);
    assert_int_equal(a8->outages, 0);
    assert_true(fabs(a8->observed_s - (month_s + 15 * 86400.0)) < 1e-6);
    assert_true(fabs(a8->availability_pct - 100.0) < 1e-9);
    assert_int_equal(a9->probed_cameras, 0);
    assert_true(a9->availability_pct < 0);

    ch_buf_t csv;
    ch_buf_init(&csv);
    ch_health_report_csv(&r, "2027-01", &csv);
    ch_buf_append_char(&csv, '\0');
    const char *head = "\xEF\xBB\xBFperiod,2027-01,unwatched_minutes,0.0\r\nagency_id,agency_name,";
    assert_true(strncmp(csv.data, head, strlen(head)) == 0);
    assert_non_null(strstr(csv.data, "\r\n7,,2,2,"));
    assert_non_null(strstr(csv.data, ",2,"));
    assert_non_null(strstr(csv.data, "\r\n9,,0,0,,0,0.0,0.0\r\n"));
    assert_non_null(strstr(csv.data, "\r\ntotal,,6,4,"));
    ch_buf_fini(&csv);
    ch_health_report_fini(&r);

    /* Month boundaries in Korean time. */
    int64_t f = 0, t = 0;
    assert_int_equal(ch_health_month_range("2026-11", 540, &f, &t), 0);
    assert_int_equal(f, 1793458800000LL); /* 2026-10-31T15:00:00Z */
    assert_int_equal(t, 1796050800000LL); /* 2026-11-30T15:00:00Z */
    assert_int_equal(ch_health_month_range("2026-12", 0, &f, &t), 0);
    assert_int_equal(t - f, 31 * 86400000LL);
    const char *bad[] = {"2026-13", "2026-00", "2026-1", "26-11",   "2026/11",
                         "+026-11", "2026-+1", "",       "2026-11x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ch_health_month_range(bad[i], 540, &f, &t), CH_EPARSE);
    }
    /* The part a report covers: the current month up to now, a month not begun empty. */
    assert_int_equal(ch_health_month_so_far("2026-11", 540, 1794000000000LL, &f, &t), 0);
    assert_int_equal(f, 1793458800000LL);
    assert_int_equal(t, 1794000000000LL);
    assert_int_equal(ch_health_month_so_far("2026-11", 540, 1800000000000LL, &f, &t), 0);
    assert_int_equal(t, 1796050800000LL);
    assert_int_equal(ch_health_month_so_far("2026-11", 540, 1700000000000LL, &f, &t), 0);
    assert_int_equal(t, f);
    assert_int_equal(ch_health_month_so_far("2026-13", 540, 0, &f, &t), CH_EPARSE);
    /* UTC offsets, as the report's --utc-offset and utc_offset take them. */
    int off = 0;
    assert_int_equal(ch_health_utc_offset_parse("+09:00", &off), 0);
    assert_int_equal(off, 540);
    assert_int_equal(ch_health_utc_offset_parse("-05:30", &off), 0);
    assert_int_equal(off, -330);
    const char *bad_offsets[] = {"09:00", "+9:00", "+15:00", "+09:60", "++9:00", "+09:+5", ""};
    for (size_t i = 0; i < sizeof(bad_offsets) / sizeof(bad_offsets[0]); i++) {
        assert_int_equal(ch_health_utc_offset_parse(bad_offsets[i], &off), CH_EPARSE);
    }
}

static void test_report_windows_merge_and_clip(void **unused)
{
    (void)unused;
    /* Windows overlapping each other and the period's edges count once; a camera online all
     * along is observed exactly for the watched time. */
    int64_t from = T0, to = T0 + 10 * HOUR;
    ch_health_report_builder_t *b = ch_health_report_begin(from, to);
    ch_health_report_window(b, from - HOUR, from + HOUR);         /* 1 h inside */
    ch_health_report_window(b, from + 2 * HOUR, from + 4 * HOUR); /* 2 h */
    ch_health_report_window(b, from + 3 * HOUR, from + 5 * HOUR); /* +1 h (overlap) */
    ch_health_report_window(b, from + 5 * HOUR, from + 5 * HOUR); /* empty */
    ch_health_report_window(b, from + 9 * HOUR, to + 5 * HOUR);   /* 1 h inside */
    ch_health_report_camera(b, 1, 1);
    ch_health_report_transition(b, 1, 1, CH_HEALTH_ONLINE, from - 2 * HOUR);
    ch_health_report_t r;
    ch_health_report_end(b, &r);
    assert_int_equal(r.nrows, 1);
    assert_true(fabs(r.rows[0].observed_s - 5 * 3600.0) < 1e-6);
    assert_true(fabs(r.unwatched_s - 5 * 3600.0) < 1e-6);
    assert_true(fabs(r.rows[0].availability_pct - 100.0) < 1e-9);
    ch_health_report_fini(&r);
}

/* ---- the store's side ---------------------------------------------------------------------- */

static int collect(void *ud, const ch_store_health_row_t *r)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 1024 - n, "%lld:%lld:%s>%s;", (long long)r->camera_id, (long long)r->at_ms,
             r->old_state, r->new_state);
    return 0;
}

static int collect_stream(void *ud, const ch_store_stream_row_t *r)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 1024 - n, "%lld:%s:%s;", (long long)r->id, r->url,
             r->user != NULL ? r->user : "-");
    return 0;
}

static void test_store_keeps_transitions_and_report_reads_them(void **unused)
{
    (void)unused;
    char dir[] = "/tmp/cctvhub-health-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/h.db", dir);
    ch_store_t *st = NULL;
    assert_int_equal(ch_store_open(url, &st, NULL), 0);
    ch_agency_t a = {
        .name = "마포구", .kind = "provider", .level = "district", .type = "district-center"};
    assert_int_equal(ch_store_agency_create(st, &a), 0);
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        ch_camera_t c;
        ch_camera_init(&c);
        c.agency_id = a.id;
        c.name = "cam";
        c.kind = "fixed";
        c.status = "active";
        c.rtsp_url = i < 2 ? "rtsp://10.0.0.1/s" : NULL;
        c.rtsp_username = i == 1 ? "admin" : NULL;
        assert_int_equal(ch_store_camera_create(st, &c), 0);
        ids[i] = c.id;
    }
    char out[1024] = "";
    assert_int_equal(ch_store_camera_scan_streams(st, collect_stream, out), 0);
    char want[256];
    snprintf(want, sizeof(want), "%lld:rtsp://10.0.0.1/s:-;%lld:rtsp://10.0.0.1/s:admin;",
             (long long)ids[0], (long long)ids[1]);
    assert_string_equal(out, want);

    ch_store_health_row_t rows[] = {
        {0, ids[0], a.id, T0 - HOUR, "unknown", "online", "ok"},
        {0, ids[1], a.id, T0 - HOUR, "unknown", "offline", "3 probes in a row failed"},
        {0, ids[0], a.id, T0 + HOUR, "online", "offline", NULL},
        {0, ids[0], a.id, T0 + 2 * HOUR, "offline", "online", "ok"},
    };
    assert_int_equal(ch_store_health_add(st, rows, 4), 0);
    /* Another writer holds the lock (an import): no wait, CH_EAGAIN, nothing written. */
    ch_store_t *other = NULL;
    assert_int_equal(ch_store_open(url, &other, NULL), 0);
    assert_int_equal(ch_store_begin(other), 0);
    assert_int_equal(ch_store_health_add(st, rows, 1), CH_EAGAIN);
    assert_int_equal(ch_store_rollback(other), 0);
    ch_store_close(other);
    ch_store_health_row_t bad = {0, 0, a.id, T0, "unknown", "online", NULL};
    assert_int_equal(ch_store_health_add(st, &bad, 1), CH_EINVAL);

    out[0] = '\0';
    assert_int_equal(ch_store_health_last(st, INT64_MAX, collect, out), 0);
    snprintf(want, sizeof(want), "%lld:%lld:offline>online;%lld:%lld:unknown>offline;",
             (long long)ids[0], T0 + 2 * HOUR, (long long)ids[1], T0 - HOUR);
    assert_string_equal(out, want);
    out[0] = '\0';
    assert_int_equal(ch_store_health_last(st, T0, collect, out), 0);
    assert_non_null(strstr(out, "unknown>online"));
    out[0] = '\0';
    assert_int_equal(ch_store_health_range(st, ids[0], T0, INT64_MAX, 1, 1, collect, out), 0);
    snprintf(want, sizeof(want), "%lld:%lld:offline>online;", (long long)ids[0], T0 + 2 * HOUR);
    assert_string_equal(out, want);

    /* The report of [T0, T0 + 4h): camera 0 online 3 h of 4, camera 1 offline all along. */
    ch_health_report_t r;
    assert_int_equal(ch_health_report_load(st, T0, T0 + 4 * HOUR, &r), 0);
    assert_int_equal(r.nrows, 1);
    assert_string_equal(r.rows[0].agency_name, "마포구");
    assert_int_equal(r.rows[0].cameras, 3);
    assert_int_equal(r.rows[0].probed_cameras, 2);
    assert_int_equal(r.rows[0].outages, 2);
    assert_true(fabs(r.rows[0].availability_pct - 100.0 * 3 / 8) < 1e-9);
    assert_true(fabs(r.rows[0].outage_s - 5 * 3600.0) < 1e-6);
    ch_health_report_fini(&r);

    /* Watch windows: the hub ran [T0, T0 + 1h) and [T0 + 3h, T0 + 4h) only. Camera 0's outage
     * (T0 + 1h .. T0 + 2h) fell wholly while it was down: not counted, no outage. Camera 1 is
     * offline in both windows: one outage (across the down time), two hours of it. */
    int64_t w1 = 0, w2 = 0;
    assert_int_equal(ch_store_health_watch_begin(st, T0, &w1), 0);
    assert_int_equal(ch_store_health_watch_seen(st, w1, T0 + HOUR), 0);
    assert_int_equal(ch_store_health_watch_seen(st, w1, T0 + HOUR / 2), 0); /* never back */
    assert_int_equal(ch_store_health_watch_begin(st, T0 + 3 * HOUR, &w2), 0);
    assert_true(w2 > w1);
    assert_int_equal(ch_store_health_watch_seen(st, 0, T0), CH_EINVAL);
    assert_int_equal(ch_store_open(url, &other, NULL), 0);
    assert_int_equal(ch_store_begin(other), 0);
    assert_int_equal(ch_store_health_watch_seen(st, w2, T0 + 4 * HOUR), CH_EAGAIN);
    assert_int_equal(ch_store_rollback(other), 0);
    ch_store_close(other);
    assert_int_equal(ch_store_health_watch_seen(st, w2, T0 + 4 * HOUR), 0);
    assert_int_equal(ch_health_report_load(st, T0, T0 + 4 * HOUR, &r), 0);
    assert_int_equal(r.nrows, 1);
    assert_int_equal(r.rows[0].probed_cameras, 2);
    assert_int_equal(r.rows[0].outages, 1);
    assert_true(fabs(r.rows[0].observed_s - 4 * 3600.0) < 1e-6);
    assert_true(fabs(r.rows[0].outage_s - 2 * 3600.0) < 1e-6);
    assert_true(fabs(r.rows[0].availability_pct - 50.0) < 1e-9);
    assert_true(fabs(r.unwatched_s - 2 * 3600.0) < 1e-6);
    json_t *j = ch_health_report_json(&r, "test");
    assert_true(fabs(json_real_value(json_object_get(j, "unwatched_minutes")) - 120.0) < 1e-9);
    json_decref(j);
    ch_health_report_fini(&r);

    /* Deleting a camera keeps its history. */
    assert_int_equal(ch_store_camera_delete(st, ids[1]), 0);
    out[0] = '\0';
    assert_int_equal(ch_store_health_range(st, ids[1], INT64_MIN, INT64_MAX, 0, 0, collect, out),
                     0);
    assert_non_null(strstr(out, "unknown>offline"));
    ch_store_close(st);
    char path[160];
    snprintf(path, sizeof(path), "%s/h.db", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/h.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/h.db-shm", dir);
    unlink(path);
    rmdir(dir);
}

/* ---- the runner on a store worker ----------------------------------------------------------- */

typedef struct rows_seen {
    size_t n;
} rows_seen_t;

static int count_row(void *ud, const ch_store_health_row_t *r)
{
    (void)r;
    ((rows_seen_t *)ud)->n++;
    return 0;
}

static int count_window(void *ud, int64_t from_ms, int64_t to_ms)
{
    (void)from_ms;
    (void)to_ms;
    ((rows_seen_t *)ud)->n++;
    return 0;
}

static int64_t new_stream_camera(ch_store_t *st, int64_t agency_id, const char *url)
{
    ch_camera_t c;
    ch_camera_init(&c);
    c.agency_id = agency_id;
    c.name = "cam";
    c.kind = "fixed";
    c.status = "active";
    c.rtsp_url = (char *)url;
    assert_int_equal(ch_store_camera_create(st, &c), 0);
    return c.id;
}

/* Turns the loop until ok(h, ud) holds, for up to 20 s. */
static int run_until(uv_loop_t *loop, ch_health_t *h, int (*ok)(ch_health_t *, void *), void *ud)
{
    for (int i = 0; i < 2000; i++) {
        if (ok(h, ud)) {
            return 1;
        }
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    return ok(h, ud);
}

static int watches(ch_health_t *h, void *ud)
{
    ch_health_info_t info;
    return ch_health_get(h, *(int64_t *)ud, &info) == 0;
}

typedef struct stored {
    ch_store_t *st;
    int64_t camera_id;
} stored_t;

static int offline_stored(ch_health_t *h, void *ud)
{
    (void)h;
    stored_t *s = ud;
    rows_seen_t n = {0};
    assert_int_equal(
        ch_store_health_range(s->st, s->camera_id, INT64_MIN, INT64_MAX, 0, 0, count_row, &n), 0);
    return n.n > 0;
}

/*
 * With the hub's store worker, the runner reads the camera set and writes its transitions and
 * its watch window there: a camera added by another handle is picked up at the rescan the
 * worker read, its failed probe's transition to offline reaches the store through the worker,
 * and so does the watch window; at stop the last writes go through the runner's own handle.
 */
static void test_runner_reads_and_writes_on_a_store_worker(void **unused)
{
    (void)unused;
    char dir[] = "/tmp/cctvhub-health-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/h.db", dir);
    ch_store_t *st = NULL;
    assert_int_equal(ch_store_open(url, &st, NULL), 0);
    ch_agency_t a = {
        .name = "마포구", .kind = "provider", .level = "district", .type = "district-center"};
    assert_int_equal(ch_store_agency_create(st, &a), 0);
    /* Port 1 on loopback refuses at once: every probe fails fast. */
    int64_t first = new_stream_camera(st, a.id, "rtsp://127.0.0.1:1/a");

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ch_health_config_t cfg = {
        .probe_interval_s = 1, .fail_threshold = 1, .timeout_s = 2, .rescan_s = 3600, .seed = 7};
    ch_health_t *h = ch_health_new(&cfg);
    char err[256];
    assert_int_equal(ch_health_start(h, &loop, url, NULL, NULL, err, sizeof(err)), 0);
    ch_health_info_t info;
    assert_int_equal(ch_health_get(h, first, &info), 0); /* read at start, on its own handle */

    ch_store_worker_t *w = NULL;
    assert_int_equal(ch_store_worker_open(&loop, url, &w, NULL), 0);
    ch_health_set_worker(h, w);
    int64_t second = new_stream_camera(st, a.id, "rtsp://127.0.0.1:1/b");
    assert_int_not_equal(ch_health_get(h, second, &info), 0);
    ch_health_changed(h);
    assert_true(run_until(&loop, h, watches, &second));

    stored_t s = {st, second};
    assert_true(run_until(&loop, h, offline_stored, &s));
    assert_int_equal(ch_health_state_of(h, second), CH_HEALTH_OFFLINE);
    rows_seen_t windows = {0};
    assert_int_equal(ch_store_health_watch_list(st, INT64_MIN, INT64_MAX, count_window, &windows),
                     0);
    assert_int_equal(windows.n, 1);

    /* A camera deleted by another handle leaves the set at the next rescan. */
    assert_int_equal(ch_store_camera_delete(st, first), 0);
    ch_health_changed(h);
    for (int i = 0; i < 2000 && ch_health_get(h, first, &info) == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_int_not_equal(ch_health_get(h, first, &info), 0);

    ch_health_stop(h);
    ch_store_worker_close(w);
    ch_health_set_worker(h, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ch_health_free(h);
    assert_int_equal(uv_loop_close(&loop), 0);
    windows.n = 0;
    assert_int_equal(ch_store_health_watch_list(st, INT64_MIN, INT64_MAX, count_window, &windows),
                     0);
    assert_int_equal(windows.n, 1); /* moved, not opened again */
    ch_store_close(st);
    char path[160];
    snprintf(path, sizeof(path), "%s/h.db", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/h.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/h.db-shm", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_lost_probe_does_not_make_a_camera_offline),
        cmocka_unit_test(test_refused_credentials_are_auth_failed_at_once),
        cmocka_unit_test(test_live_pull_is_evidence_and_can_be_degraded),
        cmocka_unit_test(test_restore_keeps_since_and_state),
        cmocka_unit_test(test_first_probes_are_spread_over_the_interval),
        cmocka_unit_test(test_concurrent_probes_are_capped),
        cmocka_unit_test(test_camera_set_changes),
        cmocka_unit_test(test_latency_histogram_is_cumulative),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_report_arithmetic),
        cmocka_unit_test(test_report_windows_merge_and_clip),
        cmocka_unit_test(test_store_keeps_transitions_and_report_reads_them),
        cmocka_unit_test(test_runner_reads_and_writes_on_a_store_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
