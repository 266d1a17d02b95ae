/*
 * libFuzzer target: an MQTT message as the device watch receives it, through the topic scheme
 * and the payload parser. The first byte chooses how much of the input is the topic (the rest
 * is the payload). Every outcome must be 0, CH_ENOENT or CH_EPARSE with a reason, never a
 * crash; an accepted message must carry what its kind promises.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "health/health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t tlen = data[0];
    data++;
    size--;
    if (tlen > size) {
        tlen = size;
    }
    char *topic = malloc(tlen + 1);
    /* The payload in a buffer of exactly its size, so that a read past the end is seen. */
    char *payload = malloc(size - tlen + 1);
    if (topic == NULL || payload == NULL) {
        free(topic);
        free(payload);
        return 0;
    }
    memcpy(topic, data, tlen);
    topic[tlen] = '\0';
    memcpy(payload, data + tlen, size - tlen);
    ch_health_mqtt_msg_t m;
    char why[128];
    int rc = ch_health_mqtt_parse("cctvhub", topic, payload, size - tlen, &m, why, sizeof(why));
    if (rc != 0 && rc != CH_ENOENT && rc != CH_EPARSE) {
        abort();
    }
    if (rc != 0 && why[0] == '\0') {
        abort();
    }
    if (rc == 0) {
        if (m.agency_id <= 0 || m.device_id <= 0) {
            abort();
        }
        if (m.kind == CH_HEALTH_MQTT_STATE && strcmp(m.status, "ok") != 0 &&
            strcmp(m.status, "fault") != 0 && strcmp(m.status, "maintenance") != 0) {
            abort();
        }
        if (m.kind == CH_HEALTH_MQTT_EVENT && strcmp(m.event_type, "bell-pressed") != 0) {
            abort();
        }
        if (m.has_battery && !(m.battery >= 0 && m.battery <= 100)) {
            abort();
        }
    }
    free(topic);
    free(payload);
    return 0;
}
