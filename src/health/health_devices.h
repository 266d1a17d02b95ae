/*
 * health (devices): the MQTT device watch. Smart-city devices (emergency bells, Wi-Fi access
 * points, sensors) publish their state, heartbeats and events to an MQTT broker; the hub
 * subscribes with libmosquitto driven by its own control loop (the socket on a uv_poll, the
 * keepalive on a timer, connects on the thread pool: no thread of libmosquitto's), keeps each
 * device's state, marks a device silent past its heartbeat interval offline, records every
 * transition in the store, and tells listeners (the alert rules) about transitions and bell
 * presses.
 *
 * Topics (docs/internals/health-mqtt.md, README "Devices over MQTT"):
 *   {prefix}/{agency id}/{device id}/state      {"status": "ok"|"fault"|"maintenance",
 *                                                "battery": 0..100, "heartbeat_s": n, ...}
 *   {prefix}/{agency id}/{device id}/heartbeat  empty, or {"time": ..., "battery": ...}
 *   {prefix}/{agency id}/{device id}/event      {"type": "bell-pressed", "time": ..., ...}
 * The ids are the registry's (GET /api/v1/devices): the device must exist and belong to that
 * agency. A message on another topic, with a malformed payload, or from an unknown device is
 * counted, logged at most every 10 s per reason, and dropped.
 *
 * This header is the MQTT part of the health module's public API; at merge it joins
 * health.h. Threading: the loop given to ch_health_devices_new only.
 */
#ifndef CH_HEALTH_DEVICES_H
#define CH_HEALTH_DEVICES_H

#include "core/core.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- the message parser (pure; mqtt_msg.c) -------------------------------------------------- */

#define CH_HEALTH_MQTT_MAX_PAYLOAD 4096

typedef enum ch_health_mqtt_kind {
    CH_HEALTH_MQTT_STATE = 1,
    CH_HEALTH_MQTT_HEARTBEAT = 2,
    CH_HEALTH_MQTT_EVENT = 3,
} ch_health_mqtt_kind_t;

typedef struct ch_health_mqtt_msg {
    ch_health_mqtt_kind_t kind;
    int64_t agency_id;
    int64_t device_id;
    char status[16];     /* state: "ok", "fault", "maintenance" */
    int has_battery;     /* state, heartbeat */
    double battery;      /* percent, 0..100 */
    int64_t heartbeat_s; /* state: the device's heartbeat interval, 0 when not given */
    int64_t time_ms;     /* the device's own time of the message, 0 when not given */
    char event_type[32]; /* event: "bell-pressed" */
} ch_health_mqtt_msg_t;

/*
 * Parses one message: topic (NUL-terminated) under prefix ("cctvhub"), and its payload.
 * Returns 0 with out filled; CH_ENOENT when the topic is not one of the scheme's (another
 * prefix, a bad id, an unknown last level); CH_EPARSE when the payload is not what that topic
 * carries (not JSON, not an object, a duplicate or unknown key, a value of the wrong type or
 * out of range, over CH_HEALTH_MQTT_MAX_PAYLOAD bytes). why (why_len bytes) says what, for
 * logs; it never quotes the payload.
 */
int ch_health_mqtt_parse(const char *prefix, const char *topic, const void *payload, size_t len,
                         ch_health_mqtt_msg_t *out, char *why, size_t why_len) CH_MUST_CHECK;

/* ---- the watch (mqtt.c) --------------------------------------------------------------------- */

typedef struct ch_health_devices ch_health_devices_t;

typedef struct ch_health_devices_config {
    const char *host; /* the broker */
    int port;
    int tls;                         /* 1: TLS (tls_ca, or the system's CAs when NULL) */
    const char *username, *password; /* or NULL */
    const char *tls_ca, *tls_cert, *tls_key;
    const char *client_id;
    const char *topic_prefix;
    int64_t heartbeat_ms;       /* a device that said none is offline after this much silence */
    int64_t (*clock)(void *ud); /* NULL: the wall clock */
    void *clock_ud;
} ch_health_devices_config_t;

/* A device's transition or bell press, as listeners get it (strings borrowed for the call). */
typedef struct ch_health_device_event {
    int64_t device_id;
    int64_t agency_id;
    const char *name;
    const char *kind;      /* "emergency-bell", ... */
    const char *old_state; /* "unknown", "online", "fault", "offline" */
    const char *new_state;
    int64_t at_ms;
    const char *reason;
    int located;
    double lat, lon;
} ch_health_device_event_t;

typedef void (*ch_health_device_fn)(void *ud, const ch_health_device_event_t *ev);

/* Creates the watch (nothing connects before ch_health_devices_start). st is borrowed: the
 * loop's store handle, to look devices up and record transitions. Strings are copied.
 * 0 or CH_EINVAL. */
int ch_health_devices_new(uv_loop_t *loop, ch_store_t *st, const ch_health_devices_config_t *cfg,
                          ch_health_devices_t **out) CH_MUST_CHECK;
/* Who hears of transitions and of bell presses (one each; NULL fn: nobody). */
void ch_health_devices_on_state(ch_health_devices_t *d, ch_health_device_fn fn, void *ud);
void ch_health_devices_on_bell(ch_health_devices_t *d, ch_health_device_fn fn, void *ud);
/* Connects (on the thread pool), then keeps connecting with backoff (1 s doubling to 30 s)
 * whenever the broker is lost. */
void ch_health_devices_start(ch_health_devices_t *d);
/* Counters: {"connected", "connects", "received", "accepted", "dropped": {"topic", "payload",
 * "device"}, "devices": {"online", "fault", "offline"}}. */
json_t *ch_health_devices_stats(ch_health_devices_t *d);
/* What the watch knows of device id: {"device_id", "agency_id", "state", "since",
 * "last_seen", "heartbeat_s", "battery"}, or NULL when it has not heard of it. */
json_t *ch_health_devices_get(ch_health_devices_t *d, int64_t id);
/* Disconnects and closes; the memory goes once every handle is closed and a connect running
 * on the pool has returned (the loop must run). NULL is fine. */
void ch_health_devices_close(ch_health_devices_t *d);

#endif /* CH_HEALTH_DEVICES_H */
