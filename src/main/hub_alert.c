/*
 * hub_alert.c: alerts and the MQTT device watch wired to the hub; see hub_alert.h.
 */
#include "main/hub_alert.h"

#include "geo/geo.h"
#include "health/health.h"
#include "main/main.h"

#include <stdio.h>
#include <string.h>

struct ch_main_alerts {
    ch_alert_engine_t *eng;
    ch_alert_live_t *live;
    ch_alert_webhook_t *webhook;
    ch_health_devices_t *devices;
    const ch_geo_t *(*geo)(void *ud); /* the cameras a bell's alert names */
    void *geo_ud;
    double bell_radius_m;
    uv_timer_t tick;
    int tick_open;
};

static void on_tick(uv_timer_t *t)
{
    ch_main_alerts_t *ma = t->data;
    ch_alert_tick(ma->eng);
}

static void on_device_state(void *ud, const ch_health_device_event_t *ev)
{
    ch_main_alerts_t *ma = ud;
    ch_alert_device_state(ma->eng, ev->device_id, ev->agency_id, ev->name, ev->old_state,
                          ev->new_state, ev->at_ms, ev->reason);
}

/* A bell: the cameras that see it (ch_geo_bell_cameras, the rule is geo's)
 * go into the alert so an operator can look at once. */
static void on_bell(void *ud, const ch_health_device_event_t *ev)
{
    ch_main_alerts_t *ma = ud;
    const ch_geo_t *geo = ma->geo != NULL ? ma->geo(ma->geo_ud) : NULL;
    json_t *cameras =
        ev->located ? ch_geo_bell_cameras(geo, ev->lat, ev->lon, ma->bell_radius_m) : NULL;
    ch_alert_bell(ma->eng, ev->device_id, ev->agency_id, ev->name, ev->located, ev->lat, ev->lon,
                  ev->at_ms, cameras, NULL);
}

static int device_state(void *ud, int64_t id, ch_health_device_state_t *out)
{
    ch_main_alerts_t *ma = ud;
    return ma->devices != NULL ? ch_health_devices_state(ma->devices, id, out) : CH_ENOENT;
}

static int mqtt_stats(void *ud, ch_health_devices_stats_t *out)
{
    ch_main_alerts_t *ma = ud;
    if (ma->devices == NULL) {
        return CH_ENOENT;
    }
    ch_health_devices_stats(ma->devices, out);
    return 0;
}

int ch_main__alerts_start(uv_loop_t *loop, const ch_config_t *cfg, ch_store_t *st,
                          ch_net_tls_t *client_tls, const ch_geo_t *(*geo)(void *ud), void *geo_ud,
                          ch_main_alerts_t **out)
{
    *out = NULL;
    ch_main_alerts_t *ma = ch_calloc(1, sizeof(*ma));
    ma->geo = geo;
    ma->geo_ud = geo_ud;
    ma->bell_radius_m = (double)cfg->alert_bell_radius_m;
    ch_alert_config_t acfg = {
        .offline_after_ms = (int64_t)cfg->alert_offline_after_s * 1000,
        .provider_down_count = (int)cfg->alert_provider_down_count,
    };
    if (ch_alert_new(st, &acfg, &ma->eng) != 0) {
        fprintf(stderr, "cctvhub serve: cannot start alerts: %s\n", ch_store_errmsg(st));
        ch_free(ma);
        return CH_EXIT_STORE;
    }
    if (ch_alert_live_new(loop, ma->eng, 0, 0, &ma->live) != 0) {
        fprintf(stderr, "cctvhub serve: cannot start the alerts' live feed\n");
        ch_alert_free(ma->eng);
        ch_free(ma);
        return CH_EXIT_FAILURE;
    }
    if (cfg->alert_webhook_url != NULL) {
        ch_alert_webhook_config_t wcfg = {
            .url = cfg->alert_webhook_url,
            .max_tries = (int)cfg->alert_webhook_max_tries,
            .secret = cfg->alert_webhook_secret,
            .tls = client_tls,
            .handshake_ms = cfg->tls_handshake_timeout_ms,
        };
        if (ch_alert_webhook_new(loop, ma->eng, &wcfg, &ma->webhook) != 0) {
            fprintf(stderr, "cctvhub serve: configuration error: alert.webhook_url: not usable\n");
            ch_main__alerts_close(ma);
            uv_run(loop, UV_RUN_NOWAIT);
            ch_main__alerts_free(ma);
            return CH_EXIT_CONFIG;
        }
        ch_log(CH_LOG_INFO, "alert", "msg=\"webhook on\" max_tries=%llu signed=%s tls=%s",
               (unsigned long long)cfg->alert_webhook_max_tries,
               cfg->alert_webhook_secret != NULL ? "yes" : "no",
               strncmp(cfg->alert_webhook_url, "https://", 8) == 0 ? "yes" : "no");
    }
    uv_timer_init(loop, &ma->tick);
    ma->tick.data = ma;
    ma->tick_open = 1;
    uv_timer_start(&ma->tick, on_tick, 1000, 1000);
    if (cfg->mqtt_host != NULL) {
        ch_health_devices_config_t dcfg = {
            .host = cfg->mqtt_host,
            .port = (int)cfg->mqtt_port,
            .tls = (int)cfg->mqtt_tls,
            .username = cfg->mqtt_username,
            .password = cfg->mqtt_password,
            .tls_ca = cfg->mqtt_tls_ca,
            .tls_cert = cfg->mqtt_tls_cert,
            .tls_key = cfg->mqtt_tls_key,
            .client_id = cfg->mqtt_client_id,
            .topic_prefix = cfg->mqtt_topic_prefix,
            .heartbeat_ms = (int64_t)cfg->mqtt_heartbeat_s * 1000,
        };
        int drc = ch_health_devices_new(loop, st, &dcfg, &ma->devices);
        if (drc != 0) {
            if (drc == CH_EDB) {
                fprintf(stderr,
                        "cctvhub serve: the MQTT device watch cannot read the devices: "
                        "%s\n",
                        ch_store_errmsg(st));
            } else {
                fprintf(stderr, "cctvhub serve: configuration error: mqtt.tls_ca, mqtt.tls_cert "
                                "or mqtt.tls_key: the TLS files cannot be used\n");
            }
            ch_main__alerts_close(ma);
            uv_run(loop, UV_RUN_NOWAIT);
            ch_main__alerts_free(ma);
            return drc == CH_EDB ? CH_EXIT_STORE : CH_EXIT_CONFIG;
        }
        ch_health_devices_on_state(ma->devices, on_device_state, ma);
        ch_health_devices_on_bell(ma->devices, on_bell, ma);
        ch_health_devices_start(ma->devices);
        ch_log(CH_LOG_INFO, "health",
               "msg=\"mqtt device watch on\" host=%s port=%llu tls=%llu "
               "prefix=%s",
               cfg->mqtt_host, (unsigned long long)cfg->mqtt_port,
               (unsigned long long)cfg->mqtt_tls, cfg->mqtt_topic_prefix);
    }
    *out = ma;
    return 0;
}

void ch_main__alerts_set_worker(ch_main_alerts_t *ma, ch_store_worker_t *w)
{
    if (ma == NULL) {
        return;
    }
    if (ma->eng != NULL) {
        ch_alert_use_worker(ma->eng, w);
    }
    if (ma->devices != NULL) {
        ch_health_devices_set_worker(ma->devices, w);
    }
}

void ch_main__alerts_services(ch_main_alerts_t *ma, ch_api_services_t *svc)
{
    svc->alerts = ma->eng;
    svc->alerts_live = ma->live;
    svc->device_state = device_state;
    svc->mqtt_stats = mqtt_stats;
    svc->device_state_ud = ma;
}

void ch_main__alerts_collect(ch_metrics_writer_t *w, void *ud)
{
    ch_main_alerts_t *ma = ud;
    ch_alert_parts_t parts = {ma->eng, ma->live, ma->webhook};
    ch_alert_collect(w, &parts);
    if (ma->devices != NULL) {
        ch_health_devices_collect(w, ma->devices);
    }
}

ch_alert_engine_t *ch_main__alerts_engine(ch_main_alerts_t *ma)
{
    return ma != NULL ? ma->eng : NULL;
}

void ch_main__alerts_close(ch_main_alerts_t *ma)
{
    if (ma == NULL) {
        return;
    }
    ch_health_devices_close(ma->devices);
    ma->devices = NULL;
    ch_alert_webhook_close(ma->webhook);
    ma->webhook = NULL;
    ch_alert_live_close(ma->live);
    ma->live = NULL;
    if (ma->tick_open) {
        uv_close((uv_handle_t *)&ma->tick, NULL);
        ma->tick_open = 0;
    }
}

void ch_main__alerts_free(ch_main_alerts_t *ma)
{
    if (ma == NULL) {
        return;
    }
    ch_alert_free(ma->eng);
    ch_free(ma);
}
