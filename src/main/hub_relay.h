/*
 * hub_relay: the media relay wired to the hub (serve.c). The relay knows nothing of the store,
 * the events engine or the audit log; this file gives it what it asks for:
 *  - a camera's stream URL and credentials, read on the hub's store worker (one batch at a
 *    time, in the order asked; without a worker, from the relay's own handle on the control
 *    loop) and sent by message when the relay asks (want_source) or the camera's settings
 *    change;
 *  - the check of a view token, by the events module's access gate (ch_event_gate_t: the
 *    signature with the node's public key, the expiry, the camera, and that the grant is still
 *    live in the set kept from the engine's notices, so a revoked grant's token is refused at
 *    once), its answer mapped to the relay's status and reason; then, for an agency bound to
 *    a client certificate (its tls_key), that the viewer showed that certificate, from the
 *    agencies' keys kept in memory (read at start, followed on st's change feed);
 *  - view.start, view.end and view.refuse records on the audit log;
 *  - pre-warm: a grant that starts holds its camera's pull until it ends (relay.prewarm).
 * It also hands GET /api/v1/streams the relay's snapshot for the API to render.
 */
#ifndef CH_MAIN_HUB_RELAY_H
#define CH_MAIN_HUB_RELAY_H

#include "audit/audit.h"
#include "core/config.h"
#include "event/event.h"
#include "net/net.h"

#include <jansson.h>

typedef struct ch_main_relay ch_main_relay_t;

/* Starts the relay on cfg->rtsp_listen, and with rtsps (the RTSPS context; NULL: none) on
 * cfg->rtsps_listen too, its failed handshakes audited as refusals (action tls.refuse). 0, or
 * prints why and returns a CH_EXIT_* code. st is the control loop's handle, restored already
 * by the event engine: the gate loads its active grants (held when pre-warming) and follows its
 * change feed (ch_event_follow_grants), and the agencies' client certificate keys are read
 * and followed the same way (st must outlive ch_main__relay_stop). client_tls (hub_tls.c's client
 * context; the relay keeps a reference) carries the pulls of rtsps:// cameras. */
int ch_main__relay_start(const ch_config_t *cfg, ch_net_tls_t *rtsps, ch_audit_t *audit,
                         const uint8_t pk[32], ch_store_t *st, ch_net_tls_t *client_tls,
                         ch_main_relay_t **out);
/* A reload's RTSPS context for new connections (ch_media_relay_set_tls). NULL mr is fine. */
void ch_main__relay_set_tls(ch_main_relay_t *mr, ch_net_tls_t *rtsps, uint64_t handshake_ms);
/* Whether the relay serves RTSPS. */
int ch_main__relay_tls(const ch_main_relay_t *mr);
/* The store worker that reads cameras' sources from now on (NULL: the relay's own handle, on
 * the loop). The worker closes before the relay stops: its last reads reach the relay. */
void ch_main__relay_set_worker(ch_main_relay_t *mr, ch_store_worker_t *w);
/* Closes every viewer (recorded) and pull; before the audit log closes. NULL is fine. */
void ch_main__relay_stop(ch_main_relay_t *mr);
/* The grants' base: "rtsps://HOST:PORT" of rtsps.listen with RTSPS, else "rtsp://HOST:PORT" of
 * rtsp.listen, with the port bound (either may ask for port 0). */
void ch_main__relay_base(const ch_main_relay_t *mr, char *out, size_t cap);
/* Takes a browser's WebSocket upgrade (ch_api_services_t.live). */
void ch_main__relay_live(void *ud, int fd, const void *raw, size_t len, ch_net_tls_conn_t *tls);
/* A camera's stream settings changed: its new source goes to the relay, whose running pull
 * restarts (the hub's follower of camera changes; on the control loop). */
void ch_main__relay_camera_source(void *ud, int64_t camera_id);
/* A camera was deleted or taken out of service: the relay is told it has no source, so a
 * running pull stops instead of reconnecting to the old URL (control loop). */
void ch_main__relay_camera_gone(void *ud, int64_t camera_id);
/* The streams answer, rendered by the API (ch_api_streams_json) from the relay's typed
 * snapshot (ch_media_relay_streams). For ch_api_services_t.streams. */
json_t *ch_main__relay_streams(void *ud);
/* The relay's metrics (a ch_metrics_collect_fn; ud is the ch_main_relay_t): pulls by state,
 * viewers by transport, bytes in and out, views started, live grants the relay knows. */
void ch_main__relay_collect(ch_metrics_writer_t *w, void *ud);
/* The pulls' live figures for camera health (a ch_health_live_source_fn; ud is the relay). */
struct ch_health;
void ch_main__relay_health(void *ud, struct ch_health *h, int64_t now_ms);

#endif /* CH_MAIN_HUB_RELAY_H */
