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

void ch_health_devices_collect(ch_metrics_writer_t *w, void *ud)
{
    ch_health_devices_stats_t d;
    ch_health_devices_stats(ud, &d);
    if (ch_metrics_family(w, "cctvhub_mqtt_connected", CH_METRICS_GAUGE,
                          "1 while the device watch is connected and "
                          "subscribed to the broker.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, (uint64_t)d.connected);
    }
    if (ch_metrics_family(w, "cctvhub_mqtt_messages_total", CH_METRICS_COUNTER,
                          "MQTT messages: accepted, or dropped by reason "
                          "(topic, payload, device).") == 0) {
        static const char *const outcome[] = {"accepted", "topic", "payload", "device"};
        const uint64_t v[] = {d.accepted, d.dropped_topic, d.dropped_payload, d.dropped_device};
        for (size_t i = 0; i < CH_ARRAY_SIZE(v); i++) {
            ch_metrics_label_t l = {"outcome", outcome[i]};
            ch_metrics_value_u64(w, &l, 1, v[i]);
        }
    }
    if (ch_metrics_family(w, "cctvhub_devices", CH_METRICS_GAUGE,
                          "Devices heard over MQTT by state.") == 0) {
        static const char *const states[] = {"online", "fault", "offline"};
        const uint64_t v[] = {d.online, d.fault, d.offline};
        for (size_t i = 0; i < CH_ARRAY_SIZE(v); i++) {
            ch_metrics_label_t l = {"state", states[i]};
            ch_metrics_value_u64(w, &l, 1, v[i]);
        }
    }
}
