/*
 * The alert rules with an injected clock on a real SQLite store: a camera offline for more than
 * N minutes, N cameras of one provider down at once, a device offline, a bell with its cameras;
 * resolution when the cause clears (also after a restart); acknowledgement; what listeners get.
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

#include "alert/alert.h"

#define T0     1796000000000LL /* ms */
#define MINUTE 60000LL

typedef struct fixture {
    char dir[256];
    ch_store_t *st;
    ch_alert_engine_t *eng;
    int64_t now;
    json_t *heard; /* every alert the listener got, in order */
    int64_t provider_a, provider_b;
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

static void start_engine(fixture_t *fx, int64_t offline_after_ms, int provider_down)
{
    ch_alert_config_t cfg = {.offline_after_ms = offline_after_ms,
                             .provider_down_count = provider_down,
                             .clock = clock_fn,
                             .clock_ud = fx};
    assert_int_equal(ch_alert_new(fx->st, &cfg, &fx->eng), 0);
    assert_int_equal(ch_alert_listen(fx->eng, listener, fx), 0);
}

static int64_t make_agency(fixture_t *fx, const char *name)
{
    ch_agency_t a = {0};
    a.name = (char *)name;
    a.kind = "provider";
    a.level = "district";
    a.type = "district-center";
    assert_int_equal(ch_store_agency_create(fx->st, &a), 0);
    return a.id;
}

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof(fx->dir), "%s/ch_alert_test_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    char url[320];
    snprintf(url, sizeof(url), "sqlite:%s/hub.db", fx->dir);
    char *err = NULL;
    if (ch_store_open(url, &fx->st, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err != NULL ? err : "?");
        ch_free(err);
        return -1;
    }
    fx->now = T0;
    fx->heard = json_array();
    fx->provider_a = make_agency(fx, "중구 통합관제센터");
    fx->provider_b = make_agency(fx, "종로구 통합관제센터");
    start_engine(fx, 5 * MINUTE, 3);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_alert_free(fx->eng);
    ch_store_close(fx->st);
    json_decref(fx->heard);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    ch_free(fx);
    return 0;
}

/* The alerts in the store matching state and kind (either NULL for any). */
static size_t count_alerts(fixture_t *fx, const char *state, const char *kind)
{
    ch_store_filter_t f;
    memset(&f, 0, sizeof(f));
    f.status = state;
    f.kind = kind;
    ch_alert_list_t l;
    assert_int_equal(ch_store_alert_list(fx->st, &f, &l), 0);
    size_t n = (size_t)l.total;
    ch_alert_list_free(&l);
    return n;
}

static const json_t *heard(fixture_t *fx, size_t i)
{
    assert_true(i < json_array_size(fx->heard));
    return json_array_get(fx->heard, i);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void test_camera_offline_alert_waits_for_the_threshold_then_resolves(void **state)
{
    fixture_t *fx = *state;
    ch_alert_camera_state(fx->eng, 11, fx->provider_a, "online", "offline", fx->now, "no answer");
    ch_alert_tick(fx->eng);
    assert_int_equal(json_array_size(fx->heard), 0);
    fx->now += 5 * MINUTE; /* exactly the threshold: not yet "more than" */
    ch_alert_tick(fx->eng);
    assert_int_equal(json_array_size(fx->heard), 0);
    fx->now += 1000;
    ch_alert_tick(fx->eng);
    assert_int_equal(json_array_size(fx->heard), 1);
    const json_t *a = heard(fx, 0);
    assert_string_equal(str(a, "kind"), "camera-offline");
    assert_string_equal(str(a, "state"), "open");
    assert_string_equal(str(a, "severity"), "warning");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "subject"), "id")), 11);
    assert_int_equal(json_integer_value(json_object_get(a, "agency_id")), fx->provider_a);
    assert_string_equal(str(json_object_get(a, "details"), "down_since"),
                        "2026-11-30T00:53:20.000Z");
    /* Ticking on raises nothing more. */
    fx->now += 10 * MINUTE;
    ch_alert_tick(fx->eng);
    assert_int_equal(json_array_size(fx->heard), 1);
    /* Online again: resolved, with when and why. */
    ch_alert_camera_state(fx->eng, 11, fx->provider_a, "offline", "online", fx->now, NULL);
    assert_int_equal(json_array_size(fx->heard), 2);
    const json_t *r = heard(fx, 1);
    assert_int_equal(json_integer_value(json_object_get(r, "id")),
                     json_integer_value(json_object_get(a, "id")));
    assert_string_equal(str(r, "state"), "resolved");
    assert_string_equal(str(r, "resolved_reason"), "camera online again");
    assert_non_null(str(r, "resolved_at"));
    assert_int_equal(count_alerts(fx, "resolved", "camera-offline"), 1);
    assert_int_equal(count_alerts(fx, "open", NULL), 0);
}

static void test_a_short_outage_raises_nothing(void **state)
{
    fixture_t *fx = *state;
    ch_alert_camera_state(fx->eng, 12, fx->provider_a, "online", "auth-failed", fx->now, NULL);
    fx->now += 4 * MINUTE;
    ch_alert_tick(fx->eng);
    ch_alert_camera_state(fx->eng, 12, fx->provider_a, "auth-failed", "degraded", fx->now, NULL);
    fx->now += 10 * MINUTE;
    ch_alert_tick(fx->eng);
    assert_int_equal(json_array_size(fx->heard), 0);
    assert_int_equal(count_alerts(fx, NULL, NULL), 0);
    /* Degraded and unknown are not down. */
    ch_alert_camera_state(fx->eng, 13, fx->provider_a, "online", "degraded", fx->now, NULL);
    ch_alert_camera_state(fx->eng, 14, fx->provider_a, "online", "unknown", fx->now, NULL);
    fx->now += 60 * MINUTE;
    ch_alert_tick(fx->eng);
    assert_int_equal(count_alerts(fx, NULL, NULL), 0);
}

static void test_provider_down_counts_cameras_of_one_provider_at_once(void **state)
{
    fixture_t *fx = *state;
    /* Two of A and two of B down: below the threshold of 3 for each. */
    ch_alert_camera_state(fx->eng, 21, fx->provider_a, "online", "offline", fx->now, NULL);
    ch_alert_camera_state(fx->eng, 22, fx->provider_a, "online", "offline", fx->now, NULL);
    ch_alert_camera_state(fx->eng, 31, fx->provider_b, "online", "offline", fx->now, NULL);
    ch_alert_camera_state(fx->eng, 32, fx->provider_b, "online", "offline", fx->now, NULL);
    /* The same camera reported down twice counts once. */
    ch_alert_camera_state(fx->eng, 22, fx->provider_a, "offline", "auth-failed", fx->now, NULL);
    assert_int_equal(count_alerts(fx, NULL, "provider-down"), 0);
    ch_alert_camera_state(fx->eng, 23, fx->provider_a, "online", "offline", fx->now, NULL);
    assert_int_equal(count_alerts(fx, "open", "provider-down"), 1);
    const json_t *a = heard(fx, 0);
    assert_string_equal(str(a, "kind"), "provider-down");
    assert_string_equal(str(a, "severity"), "critical");
    assert_string_equal(str(json_object_get(a, "subject"), "type"), "agency");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "subject"), "id")),
                     fx->provider_a);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(a, "details"), "cameras_down")), 3);
    /* A fourth one does not raise a second alert. */
    ch_alert_camera_state(fx->eng, 24, fx->provider_a, "online", "offline", fx->now, NULL);
    assert_int_equal(count_alerts(fx, NULL, "provider-down"), 1);
    /* Back to 3 down: still at the threshold; 2: resolved. */
    ch_alert_camera_state(fx->eng, 24, fx->provider_a, "offline", "online", fx->now, NULL);
    assert_int_equal(count_alerts(fx, "open", "provider-down"), 1);
    ch_alert_camera_state(fx->eng, 21, fx->provider_a, "offline", "online", fx->now, NULL);
    assert_int_equal(count_alerts(fx, "open", "provider-down"), 0);
    assert_int_equal(count_alerts(fx, "resolved", "provider-down"), 1);
    /* B never reached it. */
    ch_store_filter_t f;
    memset(&f, 0, sizeof(f));
    f.agency_id = fx->provider_b;
    ch_alert_list_t l;
    assert_int_equal(ch_store_alert_list(fx->st, &f, &l), 0);
    assert_int_equal(l.total, 0);
    ch_alert_list_free(&l);
}

static void test_an_alert_left_open_resolves_after_a_restart(void **state)
{
    fixture_t *fx = *state;
    ch_alert_camera_state(fx->eng, 41, fx->provider_a, "online", "offline", fx->now, NULL);
    ch_alert_device_state(fx->eng, 7, fx->provider_b, "비상벨 7", "online", "offline", fx->now,
                          "heartbeat missed");
    fx->now += 6 * MINUTE;
    ch_alert_tick(fx->eng);
    assert_int_equal(count_alerts(fx, "open", NULL), 2);
    /* A new run knows nothing of the states, only the unresolved alerts. */
    ch_alert_free(fx->eng);
    start_engine(fx, 5 * MINUTE, 3);
    json_array_clear(fx->heard);
    ch_alert_camera_state(fx->eng, 41, 0, "unknown", "online", fx->now, NULL);
    ch_alert_device_state(fx->eng, 7, fx->provider_b, NULL, "unknown", "online", fx->now, NULL);
    assert_int_equal(count_alerts(fx, "open", NULL), 0);
    assert_int_equal(count_alerts(fx, "resolved", NULL), 2);
    assert_int_equal(json_array_size(fx->heard), 2);
    assert_string_equal(str(heard(fx, 1), "resolved_reason"), "device online again");
}

static void test_device_offline_is_raised_at_once_and_once(void **state)
{
    fixture_t *fx = *state;
    ch_alert_device_state(fx->eng, 5, fx->provider_b, "AP-5", "online", "offline", fx->now,
                          "heartbeat missed");
    ch_alert_device_state(fx->eng, 5, fx->provider_b, "AP-5", "fault", "offline", fx->now, NULL);
    assert_int_equal(count_alerts(fx, "open", "device-offline"), 1);
    const json_t *a = heard(fx, 0);
    assert_string_equal(str(a, "message"), "device 5 (AP-5) is offline (heartbeat missed)");
    /* A fault report is not offline: it resolves the offline alert. */
    ch_alert_device_state(fx->eng, 5, fx->provider_b, "AP-5", "offline", "fault", fx->now, NULL);
    assert_int_equal(count_alerts(fx, "resolved", "device-offline"), 1);
}

static void test_a_bell_carries_its_cameras_and_is_acknowledged_once(void **state)
{
    fixture_t *fx = *state;
    json_t *cams = json_pack("{s:[{s:i, s:f, s:f}, {s:i, s:f, s:f}], s:i, s:b}", "cameras", "id", 3,
                             "distance_m", 12.5, "bearing_deg", 45.0, "id", 4, "distance_m", 40.0,
                             "bearing_deg", 270.0, "count", 2, "truncated", 0);
    int64_t id = 0;
    ch_alert_bell(fx->eng, 9, fx->provider_a, "비상벨 중구-9", 1, 37.56, 126.97, fx->now, cams,
                  &id);
    assert_true(id > 0);
    const json_t *a = heard(fx, 0);
    assert_string_equal(str(a, "kind"), "bell-pressed");
    assert_string_equal(str(a, "severity"), "critical");
    assert_string_equal(str(a, "message"),
                        "emergency bell 9 (비상벨 중구-9) pressed: 2 cameras see it");
    const json_t *list = json_object_get(json_object_get(a, "details"), "cameras");
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "id")), 3);
    /* Acknowledged with a note: the store changes, listeners hear it only when published. */
    fx->now += 30000;
    json_t *out = NULL;
    assert_int_equal(ch_alert_ack(fx->eng, id, "user:kim", "순찰차 출동", &out), 0);
    assert_string_equal(str(out, "state"), "acknowledged");
    assert_string_equal(str(out, "acked_by"), "user:kim");
    assert_string_equal(str(out, "acked_at"), "2026-11-30T00:53:50.000Z");
    assert_string_equal(str(out, "note"), "순찰차 출동");
    assert_int_equal(json_array_size(fx->heard), 1);
    ch_alert_publish(fx->eng, out);
    assert_int_equal(json_array_size(fx->heard), 2);
    json_decref(out);
    assert_int_equal(ch_alert_ack(fx->eng, id, "user:lee", NULL, &out), CH_ECONFLICT);
    assert_null(out);
    assert_int_equal(ch_alert_ack(fx->eng, id + 100, "user:lee", NULL, &out), CH_ENOTFOUND);
    json_t *got = NULL;
    assert_int_equal(ch_alert_get(fx->eng, id, &got), 0);
    assert_string_equal(str(got, "acked_by"), "user:kim");
    json_decref(got);
    /* A bell without a position has an empty camera list. */
    ch_alert_bell(fx->eng, 10, fx->provider_a, NULL, 0, 0, 0, fx->now, NULL, &id);
    assert_int_equal(ch_alert_get(fx->eng, id, &got), 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(got, "details"), "cameras")),
                     0);
    assert_string_equal(str(got, "message"), "emergency bell 10 pressed: 0 cameras see it");
    json_decref(got);
}

static void test_offline_after_zero_raises_at_once(void **state)
{
    fixture_t *fx = *state;
    ch_alert_free(fx->eng);
    start_engine(fx, 0, 0);
    ch_alert_camera_state(fx->eng, 51, fx->provider_a, "online", "offline", fx->now, NULL);
    assert_int_equal(count_alerts(fx, "open", "camera-offline"), 1);
    /* Rule off: any number of cameras down raises no provider-down. */
    for (int64_t i = 52; i < 80; i++) {
        ch_alert_camera_state(fx->eng, i, fx->provider_a, "online", "offline", fx->now, NULL);
    }
    assert_int_equal(count_alerts(fx, NULL, "provider-down"), 0);
    json_t *s = ch_alert_stats(fx->eng);
    assert_int_equal(json_integer_value(json_object_get(s, "cameras_down")), 29);
    assert_int_equal(json_integer_value(json_object_get(s, "open")), 29);
    json_decref(s);
}

static void test_listeners_can_be_removed(void **state)
{
    fixture_t *fx = *state;
    ch_alert_unlisten(fx->eng, listener, fx);
    ch_alert_bell(fx->eng, 9, fx->provider_a, NULL, 0, 0, 0, fx->now, NULL, NULL);
    assert_int_equal(json_array_size(fx->heard), 0);
    assert_int_equal(count_alerts(fx, "open", "bell-pressed"), 1);
}

static void test_webhook_reads_the_status_of_an_answer_head(void **state)
{
    (void)state;
    int status = 0;
    const char ok[] = "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n";
    assert_int_equal(ch_alert_webhook_read_status(ok, sizeof(ok) - 1, &status),
                     (int)sizeof(ok) - 1);
    assert_int_equal(status, 204);
    assert_int_equal(ch_alert_webhook_read_status(ok, 20, &status), CH_EAGAIN);
    const char rtsp[] = "RTSP/1.0 200 OK\r\n\r\n";
    assert_int_equal(ch_alert_webhook_read_status(rtsp, sizeof(rtsp) - 1, &status), CH_EPARSE);
    const char junk[] = "<html>\r\n\r\n";
    assert_int_equal(ch_alert_webhook_read_status(junk, sizeof(junk) - 1, &status), CH_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_camera_offline_alert_waits_for_the_threshold_then_resolves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_short_outage_raises_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_down_counts_cameras_of_one_provider_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_alert_left_open_resolves_after_a_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_device_offline_is_raised_at_once_and_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_bell_carries_its_cameras_and_is_acknowledged_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline_after_zero_raises_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listeners_can_be_removed, setup, teardown),
        cmocka_unit_test(test_webhook_reads_the_status_of_an_answer_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
