/*
 * The MQTT device watch's topic scheme and payloads: what is accepted and what each kind of
 * bad message is refused as (a wrong topic is not a malformed payload: they are counted apart).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "health/health.h"

static int parse(const char *topic, const char *payload, ch_health_mqtt_msg_t *m)
{
    char why[128];
    return ch_health_mqtt_parse("cctvhub", topic, payload, strlen(payload), m, why, sizeof(why));
}

static void test_state_with_every_field(void **state)
{
    (void)state;
    ch_health_mqtt_msg_t m;
    assert_int_equal(parse("cctvhub/12/345/state",
                           "{\"status\":\"ok\",\"battery\":87.5,\"heartbeat_s\":30,"
                           "\"time\":\"2026-12-06T12:00:00+09:00\",\"rssi_dbm\":-61,"
                           "\"temperature_c\":21.5,\"firmware\":\"2.1.0\",\"attrs\":{\"x\":1}}",
                           &m),
                     0);
    assert_int_equal(m.kind, CH_HEALTH_MQTT_STATE);
    assert_int_equal(m.agency_id, 12);
    assert_int_equal(m.device_id, 345);
    assert_string_equal(m.status, "ok");
    assert_true(m.has_battery);
    assert_true(m.battery == 87.5);
    assert_int_equal(m.heartbeat_s, 30);
    assert_int_equal(m.time_ms, 1796526000000LL);
}

static void test_heartbeats_and_events(void **state)
{
    (void)state;
    ch_health_mqtt_msg_t m;
    assert_int_equal(parse("cctvhub/1/2/heartbeat", "", &m), 0);
    assert_int_equal(m.kind, CH_HEALTH_MQTT_HEARTBEAT);
    assert_int_equal(parse("cctvhub/1/2/heartbeat", "{\"battery\":3}", &m), 0);
    assert_true(m.has_battery && m.battery == 3);
    assert_int_equal(parse("cctvhub/1/2/event", "{\"type\":\"bell-pressed\",\"id\":\"e-1\"}", &m),
                     0);
    assert_int_equal(m.kind, CH_HEALTH_MQTT_EVENT);
    assert_string_equal(m.event_type, "bell-pressed");
    /* Another prefix with levels of its own. */
    char why[128];
    assert_int_equal(
        ch_health_mqtt_parse("seoul/cctv", "seoul/cctv/1/2/heartbeat", "", 0, &m, why, sizeof(why)),
        0);
}

static void test_topics_outside_the_scheme(void **state)
{
    (void)state;
    ch_health_mqtt_msg_t m;
    const char *bad[] = {"cctvhub/1/2",
                         "cctvhub/1/2/state/x",
                         "cctvhub/0/2/state",
                         "cctvhub/01/2/state",
                         "cctvhub/1/-2/state",
                         "cctvhub/a/2/state",
                         "cctvhub//2/state",
                         "other/1/2/state",
                         "cctvhubx/1/2/state",
                         "cctvhub/1/2/reboot",
                         "cctvhub/1/2/",
                         "CCTVHUB/1/2/state",
                         "cctvhub/99999999999999999999/2/state"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], "{\"status\":\"ok\"}", &m), CH_ENOENT);
    }
}

static void test_malformed_payloads(void **state)
{
    (void)state;
    ch_health_mqtt_msg_t m;
    const char *bad_state[] = {"",
                               "not json",
                               "[]",
                               "{}",
                               "{\"status\":\"ok\",\"status\":\"fault\"}",
                               "{\"status\":\"broken\"}",
                               "{\"status\":1}",
                               "{\"status\":\"ok\",\"battery\":-1}",
                               "{\"status\":\"ok\",\"battery\":\"full\"}",
                               "{\"status\":\"ok\",\"heartbeat_s\":0}",
                               "{\"status\":\"ok\",\"heartbeat_s\":1.5}",
                               "{\"status\":\"ok\",\"time\":\"1970-01-01T00:00:00Z\"}",
                               "{\"status\":\"ok\",\"time\":12}",
                               "{\"status\":\"ok\",\"firmware\":\"\"}",
                               "{\"status\":\"ok\",\"attrs\":[]}",
                               "{\"status\":\"ok\",\"unknown\":1}",
                               "{\"status\":\"ok\"} trailing"};
    for (size_t i = 0; i < sizeof(bad_state) / sizeof(bad_state[0]); i++) {
        assert_int_equal(parse("cctvhub/1/2/state", bad_state[i], &m), CH_EPARSE);
    }
    assert_int_equal(parse("cctvhub/1/2/event", "{\"type\":\"tamper\"}", &m), CH_EPARSE);
    assert_int_equal(parse("cctvhub/1/2/event", "{}", &m), CH_EPARSE);
    assert_int_equal(parse("cctvhub/1/2/event", "", &m), CH_EPARSE);
    assert_int_equal(parse("cctvhub/1/2/heartbeat", "{\"status\":\"ok\"}", &m), CH_EPARSE);
    /* libmosquitto gives an empty payload as NULL. */
    char nwhy[128];
    assert_int_equal(
        ch_health_mqtt_parse("cctvhub", "cctvhub/1/2/state", NULL, 0, &m, nwhy, sizeof(nwhy)),
        CH_EPARSE);
    assert_int_equal(
        ch_health_mqtt_parse("cctvhub", "cctvhub/1/2/heartbeat", NULL, 0, &m, nwhy, sizeof(nwhy)),
        0);
    /* Over the size limit, even if well formed. */
    char big[CH_HEALTH_MQTT_MAX_PAYLOAD + 64];
    memset(big, ' ', sizeof(big) - 1);
    memcpy(big, "{\"status\":\"ok\"}", 15);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse("cctvhub/1/2/state", big, &m), CH_EPARSE);
    /* The reason never quotes the payload. */
    char why[128];
    const char secret[] = "{\"status\":\"hunter2\"}";
    assert_int_equal(ch_health_mqtt_parse("cctvhub", "cctvhub/1/2/state", secret, strlen(secret),
                                          &m, why, sizeof(why)),
                     CH_EPARSE);
    assert_null(strstr(why, "hunter2"));
    assert_string_equal(why, "status must be ok, fault or maintenance");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_with_every_field),
        cmocka_unit_test(test_heartbeats_and_events),
        cmocka_unit_test(test_topics_outside_the_scheme),
        cmocka_unit_test(test_malformed_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
