/*
 * Camera health's metrics families, written from a snapshot (ch_health_collect in health.h).
 */
#include "health/health.h"

void ch_health_collect(ch_metrics_writer_t *w, void *ud)
{
    ch_health_snapshot_t h;
    ch_health_snapshot(ud, &h);
    if (ch_metrics_family(w, "cctvhub_cameras", CH_METRICS_GAUGE,
                          "Cameras with a stream URL by health state (probes and live pulls).") ==
        0) {
        for (int i = 0; i < CH_HEALTH_NSTATES; i++) {
            ch_metrics_label_t l = {"state", ch_health_state_name((ch_health_state_t)i)};
            ch_metrics_value_u64(w, &l, 1, h.by_state[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_probes_total", CH_METRICS_COUNTER,
                          "Camera probes (RTSP OPTIONS and DESCRIBE) by outcome.") == 0) {
        static const char *const outcome[] = {"ok", "failed", "auth_failed"};
        uint64_t v[] = {h.probes_ok, h.probes_failed, h.probes_auth_failed};
        for (size_t i = 0; i < CH_ARRAY_SIZE(v); i++) {
            ch_metrics_label_t l = {"outcome", outcome[i]};
            ch_metrics_value_u64(w, &l, 1, v[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_probes_in_flight", CH_METRICS_GAUGE,
                          "Camera probes running now.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, h.in_flight);
    }
    if (ch_metrics_family(w, "cctvhub_probe_duration_seconds", CH_METRICS_HISTOGRAM,
                          "Time to a successful probe's answer (connect, OPTIONS, DESCRIBE).") ==
        0) {
        ch_metrics_hist_data_t d = {
            .n = CH_HEALTH_NBUCKETS,
            .le = ch_health_buckets,
            .cumulative = h.latency_buckets,
            .count = h.latency_count,
            .sum = h.latency_sum_s,
        };
        ch_metrics_histogram(w, NULL, 0, &d);
    }
}

/* A sample of an integer member of o (0 when absent or not positive). */
static void value_of(ch_metrics_writer_t *w, const ch_metrics_label_t *l, const json_t *o,
                     const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    ch_metrics_value_u64(w, l, 1, v > 0 ? (uint64_t)v : 0);
}

void ch_health_devices_collect(ch_metrics_writer_t *w, void *ud)
{
    json_t *d = ch_health_devices_stats(ud);
    if (d == NULL) {
        return;
    }
    if (ch_metrics_family(w, "cctvhub_mqtt_connected", CH_METRICS_GAUGE,
                          "1 while the device watch is connected and "
                          "subscribed to the broker.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, json_is_true(json_object_get(d, "connected")));
    }
    if (ch_metrics_family(w, "cctvhub_mqtt_messages_total", CH_METRICS_COUNTER,
                          "MQTT messages: accepted, or dropped by reason "
                          "(topic, payload, device).") == 0) {
        static const char *const why[] = {"topic", "payload", "device"};
        ch_metrics_label_t l = {"outcome", "accepted"};
        value_of(w, &l, d, "accepted");
        for (size_t i = 0; i < CH_ARRAY_SIZE(why); i++) {
            l.value = why[i];
            value_of(w, &l, json_object_get(d, "dropped"), why[i]);
        }
    }
    const json_t *by = json_object_get(d, "devices");
    if (by != NULL && ch_metrics_family(w, "cctvhub_devices", CH_METRICS_GAUGE,
                                        "Devices heard over MQTT by state.") == 0) {
        static const char *const states[] = {"online", "fault", "offline"};
        for (size_t i = 0; i < CH_ARRAY_SIZE(states); i++) {
            ch_metrics_label_t l = {"state", states[i]};
            value_of(w, &l, by, states[i]);
        }
    }
    json_decref(d);
}
