/*
 * hub_alert: alerts and the MQTT device watch wired to the hub (serve.c).
 *  - the alert engine on the control loop's store handle, its tick (once a second), its live
 *    WebSocket feed for the console and, with alert.webhook_url, the webhook;
 *  - with mqtt.url or mqtt.host, the device watch: its transitions go to the alert rules, and
 *    a bell press goes with the cameras that see the bell (the geo index given at start, the
 *    same query as GET /api/v1/geo/near within alert.bell_radius_m);
 *  - what the API's routes under /api/v1/alerts and /api/v1/devices/{id}/state answer from
 *    (ch_main__alerts_services).
 * Camera states come from the health module's listener: ch_main__alerts_engine() gives the
 * engine to call ch_alert_camera_state on.
 */
#ifndef CH_MAIN_HUB_ALERT_H
#define CH_MAIN_HUB_ALERT_H

#include "alert/alert.h"
#include "api/api.h"
#include "core/config.h"
#include "core/metrics.h"
#include "geo/geo.h"
#include "net/net.h"
#include "store/store.h"

#include <uv.h>

typedef struct ch_main_alerts ch_main_alerts_t;

/* Starts alerts (and MQTT when configured) on loop; geo(geo_ud) gives the geo index at each
 * bell (NULL: none yet); client_tls (hub_tls.c's client context, referenced) carries an
 * https:// webhook. 0, or prints why and returns a CH_EXIT_* code. */
int ch_main__alerts_start(uv_loop_t *loop, const ch_config_t *cfg, ch_store_t *st,
                          ch_net_tls_t *client_tls, const ch_geo_t *(*geo)(void *ud), void *geo_ud,
                          ch_main_alerts_t **out);
/* Fills the API's alert services: the engine, its live feed, the device watch's views. */
void ch_main__alerts_services(ch_main_alerts_t *ma, ch_api_services_t *svc);
/* The store worker that the alert engine writes alerts on and the MQTT device watch rereads
 * devices and writes transitions on (NULL: the loop's handle, at once). */
void ch_main__alerts_set_worker(ch_main_alerts_t *ma, ch_store_worker_t *w);
/* The engine, for the health module's camera listener. */
ch_alert_engine_t *ch_main__alerts_engine(ch_main_alerts_t *ma);
/* The alerts' and devices' metrics (a ch_metrics_collect_fn; ud is the ch_main_alerts_t):
 * cctvhub_alerts{state}, cctvhub_alerts_raised_total, cctvhub_alerts_resolved_total,
 * cctvhub_alert_live_clients, cctvhub_webhook_queued, cctvhub_webhook_posts_total{outcome};
 * with MQTT: cctvhub_mqtt_connected, cctvhub_mqtt_messages_total{outcome},
 * cctvhub_devices{state}. Loop thread. */
void ch_main__alerts_collect(ch_metrics_writer_t *w, void *ud);
/* Closes handles and connections (when stopping, before the loop's last run). NULL is fine. */
void ch_main__alerts_close(ch_main_alerts_t *ma);
/* Frees what is left once the loop has ended. NULL is fine. */
void ch_main__alerts_free(ch_main_alerts_t *ma);

#endif /* CH_MAIN_HUB_ALERT_H */
