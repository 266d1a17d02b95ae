/*
 * hub_metrics: the registry GET /metrics renders, wired to the hub's parts (serve.c). Each
 * part writes its own families through its collector; this file registers them, in the order
 * a reader of the page expects (the build and process first), and adds the one the store
 * answers: cameras registered, by status.
 *
 * Other parts join with one call each, before the first scrape:
 *     ch_metrics_register(ch_main__metrics_registry(hm), ch_health_collect, health);
 * Names kept free for them: cctvhub_cameras{state} (cameras by health state: online,
 * degraded, offline, auth_failed, unknown) and the histogram cctvhub_probe_duration_seconds
 * (a ch_metrics_hist_data_t from the health module's fixed buckets); cctvhub_devices{state}
 * and cctvhub_alerts_total for the alerts.
 */
#ifndef CH_MAIN_HUB_METRICS_H
#define CH_MAIN_HUB_METRICS_H

#include "audit/audit.h"
#include "core/metrics.h"
#include "health/health.h"
#include "net/net.h"
#include "store/store.h"

typedef struct ch_main_metrics ch_main_metrics_t;

/* Builds the registry: process basics, the store's cameras by status (as the API's scrape
 * read them on the store worker: ch_main__metrics_counts) and the HTTP server's open
 * connections (http, may be NULL). The hub then gives it to the API
 * (ch_api_services_t.metrics), which adds its HTTP figures, and adds the other parts'
 * collectors after them: the events engine, the relay, the audit log, alerts, health. Loop
 * thread. */
ch_main_metrics_t *ch_main__metrics_new(ch_http_server_t *http, int64_t started_at_ms);
/* Where the API leaves the cameras by status it read before rendering
 * (ch_api_services_t.metrics_counts). */
struct ch_registry_counts *ch_main__metrics_counts(ch_main_metrics_t *hm);
/* Camera health's families (cctvhub_cameras{state}, cctvhub_probes_total{outcome},
 * cctvhub_probes_in_flight, cctvhub_probe_duration_seconds). NULL is fine for either. */
void ch_main__metrics_add_health(ch_main_metrics_t *hm, ch_health_t *health);
/* The registry, for parts wired later (health, alerts). */
ch_metrics_t *ch_main__metrics_registry(ch_main_metrics_t *hm);
/* Frees it (NULL is fine), and with it every collector registered; the API must be freed
 * first. */
void ch_main__metrics_free(ch_main_metrics_t *hm);

#endif /* CH_MAIN_HUB_METRICS_H */
