/*
 * The alert engine on the store's feed, on a real loop and a temporary SQLite file: alerts
 * written by the store worker reach the listeners once, when their rows are committed; a
 * resolve that arrives before its create is written is not lost; an acknowledgement made on
 * the worker as the API makes it is heard once, as written; an alert acknowledged or resolved
 * by a second handle (an operator through another handle, another node) is heard at the feed's
 * poll, and the rules follow it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "alert/alert.h"
#include "support/fixture.h"

#define T0 1796000000000LL /* ms */

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;    /* the loop's handle, the engine's */
    ch_store_t *other; /* a second handle on the same file */
    ch_store_worker_t *w;
    uv_loop_t loop;
    ch_alert_engine_t *eng;
    int64_t now;
    int64_t agency;
    json_t *heard; /* every alert the listener got, in order */
} fixture_t;

static int64_t clock_fn(void *ud)
{
    return ((fixture_t *)ud)->now;
}

static void listener(void *ud, const json_t *alert)
{
    fixture_t *fx = ud;
    json_array_append_new(fx->heard, json_deep_copy(alert));
}

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_alert_feed", &fx->st) != 0) {
        ch_free(fx);
        return -1;
    }
    char url[320];
    snprintf(url, sizeof(url), "sqlite:%s", fx->ts.path);
    char *err = NULL;
    if (uv_loop_init(&fx->loop) != 0 || ch_store_worker_open(&fx->loop, url, &fx->w, &err) != 0 ||
        ch_store_open(url, &fx->other, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err != NULL ? err : "?");
        ch_free(err);
        return -1;
    }
    ch_store_worker_feed(fx->w, fx->st);
    fx->agency = ch_test_store_agency(fx->st, "중구 통합관제센터", "provider");
    fx->now = T0;
    fx->heard = json_array();
    ch_alert_config_t cfg = {
        .offline_after_ms = 0, .provider_down_count = 0, .clock = clock_fn, .clock_ud = fx};
    if (fx->agency == 0 || ch_alert_new(fx->st, &cfg, &fx->eng) != 0 ||
        ch_alert_listen(fx->eng, listener, fx) != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_alert_use_worker(fx->eng, NULL);
    ch_store_worker_close(fx->w);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    ch_alert_free(fx->eng);
    ch_store_close(fx->other);
    int rc = ch_test_store_close(&fx->ts, fx->st);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    json_decref(fx->heard);
    ch_free(fx);
    return rc;
}

/* Runs the loop until the worker has nothing in flight (it keeps the loop alive until then). */
static void run(fixture_t *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(ch_store_worker_waiting(fx->w), 0);
}

static size_t heard_count(fixture_t *fx)
{
    return json_array_size(fx->heard);
}

static const char *heard_str(fixture_t *fx, size_t i, const char *key)
{
    assert_true(i < heard_count(fx));
    return json_string_value(json_object_get(json_array_get(fx->heard, i), key));
}

static int64_t heard_id(fixture_t *fx, size_t i)
{
    assert_true(i < heard_count(fx));
    return json_integer_value(json_object_get(json_array_get(fx->heard, i), "id"));
}

/* The alerts stored in state (NULL: any). */
static int64_t stored(fixture_t *fx, const char *state)
{
    ch_store_filter_t f;
    memset(&f, 0, sizeof(f));
    f.status = state;
    ch_alert_list_t l;
    assert_int_equal(ch_store_alert_list(fx->st, &f, &l), 0);
    int64_t n = l.total;
    ch_alert_list_free(&l);
    return n;
}

/* ch_alert_stats' count of unresolved alerts in state. */
static int64_t counted(fixture_t *fx, const char *state)
{
    json_t *s = ch_alert_stats(fx->eng);
    int64_t n = json_integer_value(json_object_get(s, state));
    json_decref(s);
    return n;
}

static void test_an_alert_raised_on_the_worker_is_heard_once_at_its_commit(void **state)
{
    fixture_t *fx = *state;
    ch_alert_use_worker(fx->eng, fx->w);
    ch_alert_device_state(fx->eng, 5, fx->agency, "비상벨 5", "online", "offline", fx->now,
                          "heartbeat missed");
    /* Reported twice while its row is being written: still one alert. */
    ch_alert_device_state(fx->eng, 5, fx->agency, "비상벨 5", "online", "offline", fx->now,
                          "heartbeat missed");
    assert_int_equal(heard_count(fx), 0); /* nothing is committed yet */
    run(fx);
    assert_int_equal(heard_count(fx), 1);
    assert_string_equal(heard_str(fx, 0, "kind"), "device-offline");
    assert_string_equal(heard_str(fx, 0, "state"), "open");
    assert_string_equal(heard_str(fx, 0, "message"),
                        "device 5 (비상벨 5) is offline (heartbeat missed)");
    assert_true(heard_id(fx, 0) > 0);
    assert_int_equal(stored(fx, "open"), 1);
    /* The metrics' count follows, counted on the worker after the write. */
    assert_int_equal(counted(fx, "open"), 1);
    /* The loop's poll of other handles' changes does not tell the worker's again. */
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(heard_count(fx), 1);
    /* The alert as heard is the alert as stored. */
    json_t *got = NULL;
    assert_int_equal(ch_alert_get(fx->eng, heard_id(fx, 0), &got), 0);
    assert_true(json_equal(got, json_array_get(fx->heard, 0)));
    json_decref(got);
    /* Its resolve goes the same way. */
    ch_alert_device_state(fx->eng, 5, fx->agency, NULL, "offline", "online", fx->now + 1000, NULL);
    assert_int_equal(heard_count(fx), 1);
    run(fx);
    assert_int_equal(heard_count(fx), 2);
    assert_int_equal(heard_id(fx, 1), heard_id(fx, 0));
    assert_string_equal(heard_str(fx, 1, "state"), "resolved");
    assert_string_equal(heard_str(fx, 1, "resolved_reason"), "device online again");
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(heard_count(fx), 2);
    assert_int_equal(counted(fx, "open"), 0);
}

static void test_a_resolve_that_races_its_create_is_not_lost(void **state)
{
    fixture_t *fx = *state;
    ch_alert_use_worker(fx->eng, fx->w);
    /* Offline then online again before the worker wrote the alert. */
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "online", "offline", fx->now, NULL);
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "offline", "online", fx->now + 500, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 2);
    assert_string_equal(heard_str(fx, 0, "state"), "open");
    assert_string_equal(heard_str(fx, 1, "state"), "resolved");
    assert_string_equal(heard_str(fx, 1, "resolved_reason"), "device online again");
    assert_int_equal(heard_id(fx, 1), heard_id(fx, 0));
    assert_int_equal(stored(fx, "open"), 0);
    assert_int_equal(stored(fx, "resolved"), 1);
    /* The subject is free: offline again is a new alert, and it resolves by its id. */
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "online", "offline", fx->now + 1000, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 3);
    assert_true(heard_id(fx, 2) > heard_id(fx, 0));
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "offline", "fault", fx->now + 2000, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 4);
    assert_int_equal(heard_id(fx, 3), heard_id(fx, 2));
    assert_string_equal(heard_str(fx, 3, "resolved_reason"), "device fault again");
    assert_int_equal(stored(fx, "resolved"), 2);
    /* Offline, online and offline again, all in flight: the first resolved, the second open. */
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "fault", "offline", fx->now + 3000, NULL);
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "offline", "online", fx->now + 4000, NULL);
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "online", "offline", fx->now + 5000, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 7);
    assert_int_equal(stored(fx, "resolved"), 3);
    assert_int_equal(stored(fx, "open"), 1);
    ch_alert_device_state(fx->eng, 7, fx->agency, NULL, "offline", "online", fx->now + 6000, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 8);
    assert_int_equal(stored(fx, "open"), 0);
}

static void test_an_ack_written_by_a_second_handle_is_heard_at_the_poll(void **state)
{
    fixture_t *fx = *state;
    ch_alert_use_worker(fx->eng, fx->w); /* the changed row is read on the worker */
    ch_alert_bell(fx->eng, 9, fx->agency, "비상벨 9", 0, 0, 0, fx->now, NULL, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 1);
    int64_t id = heard_id(fx, 0);
    /* An operator's ack through another handle (the API's worker, another node). */
    json_t *out = NULL;
    assert_int_equal(ch_alert_ack_write(fx->other, id, "user:kim", "출동", fx->now + 30000, &out),
                     0);
    assert_int_equal(heard_count(fx), 1);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    run(fx);
    assert_int_equal(heard_count(fx), 2);
    assert_string_equal(heard_str(fx, 1, "state"), "acknowledged");
    assert_string_equal(heard_str(fx, 1, "acked_by"), "user:kim");
    assert_string_equal(heard_str(fx, 1, "note"), "출동");
    assert_true(json_equal(out, json_array_get(fx->heard, 1)));
    json_decref(out);
    /* Another handle's change is counted too (the engine's worker counts after the poll). */
    assert_int_equal(counted(fx, "open"), 0);
    assert_int_equal(counted(fx, "acknowledged"), 1);
    /* Once: the next poll has nothing new. */
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    run(fx);
    assert_int_equal(heard_count(fx), 2);
    /* A second ack is refused whichever handle asks. */
    assert_int_equal(ch_alert_ack_write(fx->st, id, "user:lee", NULL, fx->now, &out), CH_ECONFLICT);
    assert_null(out);
    assert_int_equal(heard_count(fx), 2);
}

/* The API's acknowledgement: written on the worker, the alert as written handed to the engine
 * before the worker's commit is told (ch_alert_written). */
typedef struct ack_job {
    fixture_t *fx;
    int64_t id;
    json_t *after;
    int done;
} ack_job_t;

static int ack_work(ch_store_t *st, void *ud)
{
    ack_job_t *j = ud;
    int rc = ch_store_begin(st);
    if (rc != 0) {
        return rc;
    }
    rc = ch_alert_ack_write(st, j->id, "user:admin", NULL, j->fx->now, &j->after);
    if (rc == 0) {
        rc = ch_store_commit(st);
    }
    if (rc != 0) {
        ch_store_rollback(st);
    }
    return rc;
}

static void ack_telling(void *ud, int rc)
{
    ack_job_t *j = ud;
    if (rc == 0) {
        ch_alert_written(j->fx->eng, j->after);
    }
}

static void ack_done(void *ud, int rc)
{
    ack_job_t *j = ud;
    j->done = rc == 0 ? 1 : -1;
}

static void test_an_ack_on_the_worker_is_heard_once_as_written(void **state)
{
    fixture_t *fx = *state;
    ch_alert_use_worker(fx->eng, fx->w);
    ch_alert_device_state(fx->eng, 3, fx->agency, NULL, "online", "offline", fx->now, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 1);
    ack_job_t j = {.fx = fx, .id = heard_id(fx, 0)};
    assert_int_equal(ch_store_async_watched(fx->w, ack_work, ack_telling, ack_done, &j), 0);
    run(fx);
    assert_int_equal(j.done, 1);
    assert_int_equal(heard_count(fx), 2);
    assert_true(json_equal(j.after, json_array_get(fx->heard, 1)));
    assert_string_equal(heard_str(fx, 1, "state"), "acknowledged");
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    run(fx);
    assert_int_equal(heard_count(fx), 2);
    json_decref(j.after);
    /* Still the device's open alert: the device heard again resolves it. */
    ch_alert_device_state(fx->eng, 3, fx->agency, NULL, "offline", "online", fx->now, NULL);
    run(fx);
    assert_int_equal(heard_count(fx), 3);
    assert_int_equal(heard_id(fx, 2), heard_id(fx, 0));
    assert_string_equal(heard_str(fx, 2, "state"), "resolved");
}

static void test_an_alert_resolved_elsewhere_frees_its_subject(void **state)
{
    fixture_t *fx = *state;
    /* Without a worker: written and read at once on the loop's handle. */
    ch_alert_device_state(fx->eng, 11, fx->agency, NULL, "online", "offline", fx->now, NULL);
    assert_int_equal(heard_count(fx), 1);
    int64_t id = heard_id(fx, 0);
    ch_alert_t a;
    assert_int_equal(ch_store_alert_get(fx->other, id, &a), 0);
    ch_free(a.status);
    a.status = ch_strdup("resolved");
    a.resolved_at = fx->now + 1000;
    a.resolved_reason = ch_strdup("closed by the other node");
    assert_int_equal(ch_store_alert_update(fx->other, &a), 0);
    ch_alert_fini(&a);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(heard_count(fx), 2);
    assert_string_equal(heard_str(fx, 1, "state"), "resolved");
    assert_string_equal(heard_str(fx, 1, "resolved_reason"), "closed by the other node");
    /* The engine does not resolve it a second time when the device is heard again ... */
    ch_alert_device_state(fx->eng, 11, fx->agency, NULL, "offline", "online", fx->now + 2000, NULL);
    assert_int_equal(heard_count(fx), 2);
    /* ... and the next outage is a new alert. */
    ch_alert_device_state(fx->eng, 11, fx->agency, NULL, "online", "offline", fx->now + 3000, NULL);
    assert_int_equal(heard_count(fx), 3);
    assert_true(heard_id(fx, 2) > id);
    /* An alert raised elsewhere becomes its subject's open one: no second is raised here, and
     * the device heard again resolves it. */
    ch_alert_t b;
    memset(&b, 0, sizeof(b));
    b.kind = "device-offline";
    b.severity = "warning";
    b.subject_type = "device";
    b.subject_id = 12;
    b.agency_id = fx->agency;
    b.message = "device 12 is offline (no heartbeat)";
    b.status = "open";
    b.raised_at = fx->now;
    assert_int_equal(ch_store_alert_create(fx->other, &b), 0);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(heard_count(fx), 4);
    assert_int_equal(heard_id(fx, 3), b.id);
    ch_alert_device_state(fx->eng, 12, fx->agency, NULL, "online", "offline", fx->now, NULL);
    assert_int_equal(heard_count(fx), 4);
    ch_alert_device_state(fx->eng, 12, fx->agency, NULL, "offline", "online", fx->now, NULL);
    assert_int_equal(heard_count(fx), 5);
    assert_int_equal(heard_id(fx, 4), b.id);
    assert_string_equal(heard_str(fx, 4, "state"), "resolved");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_an_alert_raised_on_the_worker_is_heard_once_at_its_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_resolve_that_races_its_create_is_not_lost, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_ack_written_by_a_second_handle_is_heard_at_the_poll,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_ack_on_the_worker_is_heard_once_as_written, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_alert_resolved_elsewhere_frees_its_subject, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
