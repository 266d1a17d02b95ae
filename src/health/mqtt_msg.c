/*
 * health/mqtt_msg.c: the topic scheme and the payloads of the MQTT device watch, parsed
 * strictly (jansson, duplicate keys refused, every key known, every value checked). Pure: no
 * loop, no store, so the fuzz target drives it directly.
 */
#include "health/health.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* An id level: 1..INT64_MAX in decimal, no sign, no leading zero. */
static int parse_id(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 19 || p[0] < '1' || p[0] > '9') {
        return CH_EPARSE;
    }
    return ch_parse_int64(p, n, out) == 0 && *out > 0 ? 0 : CH_EPARSE;
}

static int parse_topic(const char *prefix, const char *topic, ch_health_mqtt_msg_t *out)
{
    size_t pn = strlen(prefix);
    if (strncmp(topic, prefix, pn) != 0 || topic[pn] != '/') {
        return CH_ENOENT;
    }
    const char *p = topic + pn + 1;
    const char *s1 = strchr(p, '/');
    if (s1 == NULL || parse_id(p, (size_t)(s1 - p), &out->agency_id) != 0) {
        return CH_ENOENT;
    }
    const char *s2 = strchr(s1 + 1, '/');
    if (s2 == NULL || parse_id(s1 + 1, (size_t)(s2 - s1 - 1), &out->device_id) != 0) {
        return CH_ENOENT;
    }
    const char *last = s2 + 1;
    if (strcmp(last, "state") == 0) {
        out->kind = CH_HEALTH_MQTT_STATE;
    } else if (strcmp(last, "heartbeat") == 0) {
        out->kind = CH_HEALTH_MQTT_HEARTBEAT;
    } else if (strcmp(last, "event") == 0) {
        out->kind = CH_HEALTH_MQTT_EVENT;
    } else {
        return CH_ENOENT;
    }
    return 0;
}

/*
 * The keys of each message, as data: a key's checker reads its value into the message or
 * refuses it with a reason naming the key. One loop (parse_keys) walks a payload against the
 * table of its kind, so every kind refuses unknown keys and bad values the same way.
 */
typedef int (*take_fn)(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                       size_t why_len);

typedef struct key_spec {
    const char *name;
    take_fn take;
} key_spec_t;

/* "time": an RFC 3339 text or epoch seconds as text (core's parser), within the years
 * 2000..2100 so a device with a reset clock is caught. */
static int take_time(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                     size_t why_len)
{
    (void)key;
    int64_t ns;
    if (!json_is_string(v) || ch_time_parse_ns(json_string_value(v), &ns) != 0 ||
        ns < 946684800LL * 1000000000LL || ns > 4102444800LL * 1000000000LL) {
        snprintf(why, why_len, "time must be an RFC 3339 time between 2000 and 2100");
        return CH_EPARSE;
    }
    out->time_ms = ns / 1000000;
    return 0;
}

static int take_battery(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                        size_t why_len)
{
    (void)key;
    double b = json_number_value(v);
    if (!json_is_number(v) || !isfinite(b) || b < 0 || b > 100) {
        snprintf(why, why_len, "battery must be a number in [0, 100]");
        return CH_EPARSE;
    }
    out->has_battery = 1;
    out->battery = b;
    return 0;
}

/* A string of 1 to 64 bytes, checked and not kept (firmware, an event's id). */
static int take_short_string(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                             size_t why_len)
{
    (void)out;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64) {
        snprintf(why, why_len, "%s must be a string of 1 to %d bytes", key, 64);
        return CH_EPARSE;
    }
    return 0;
}

/* A finite number, checked and not kept (rssi_dbm, temperature_c). */
static int take_number(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                       size_t why_len)
{
    (void)out;
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
        snprintf(why, why_len, "%s must be a number", key);
        return CH_EPARSE;
    }
    return 0;
}

static int take_attrs(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                      size_t why_len)
{
    (void)key;
    (void)out;
    if (!json_is_object(v)) {
        snprintf(why, why_len, "attrs must be an object");
        return CH_EPARSE;
    }
    return 0;
}

static int take_status(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                       size_t why_len)
{
    (void)key;
    const char *s = json_string_value(v);
    if (s == NULL ||
        (strcmp(s, "ok") != 0 && strcmp(s, "fault") != 0 && strcmp(s, "maintenance") != 0)) {
        snprintf(why, why_len, "status must be ok, fault or maintenance");
        return CH_EPARSE;
    }
    snprintf(out->status, sizeof(out->status), "%s", s);
    return 0;
}

static int take_heartbeat_s(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                            size_t why_len)
{
    (void)key;
    json_int_t h = json_integer_value(v);
    if (!json_is_integer(v) || h < 1 || h > 86400) {
        snprintf(why, why_len, "heartbeat_s must be an integer in [1, 86400]");
        return CH_EPARSE;
    }
    out->heartbeat_s = (int64_t)h;
    return 0;
}

static int take_event_type(json_t *v, const char *key, ch_health_mqtt_msg_t *out, char *why,
                           size_t why_len)
{
    (void)key;
    const char *s = json_string_value(v);
    if (s == NULL || strcmp(s, "bell-pressed") != 0) {
        snprintf(why, why_len, "type must be bell-pressed");
        return CH_EPARSE;
    }
    snprintf(out->event_type, sizeof(out->event_type), "%s", s);
    return 0;
}

static const key_spec_t state_keys[] = {
    {"status", take_status},
    {"battery", take_battery},
    {"heartbeat_s", take_heartbeat_s},
    {"time", take_time},
    {"rssi_dbm", take_number},
    {"temperature_c", take_number},
    {"firmware", take_short_string},
    {"attrs", take_attrs},
    {NULL, NULL},
};
static const key_spec_t heartbeat_keys[] = {
    {"time", take_time},
    {"battery", take_battery},
    {NULL, NULL},
};
static const key_spec_t event_keys[] = {
    {"type", take_event_type}, {"time", take_time}, {"id", take_short_string},
    {"attrs", take_attrs},     {NULL, NULL},
};

/* Every key of o through its checker in keys; what names the message ("a state message"). */
static int parse_keys(json_t *o, const key_spec_t *keys, const char *what,
                      ch_health_mqtt_msg_t *out, char *why, size_t why_len)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        const key_spec_t *k = keys;
        while (k->name != NULL && strcmp(k->name, key) != 0) {
            k++;
        }
        if (k->name == NULL) {
            snprintf(why, why_len, "unknown key in %s", what);
            return CH_EPARSE;
        }
        if (k->take(v, key, out, why, why_len) != 0) {
            return CH_EPARSE;
        }
    }
    return 0;
}

int ch_health_mqtt_parse(const char *prefix, const char *topic, const void *payload, size_t len,
                         ch_health_mqtt_msg_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (why_len > 0) {
        why[0] = '\0';
    }
    if (parse_topic(prefix, topic, out) != 0) {
        snprintf(why, why_len, "not a topic of the scheme");
        return CH_ENOENT;
    }
    if (len > CH_HEALTH_MQTT_MAX_PAYLOAD) {
        snprintf(why, why_len, "payload over %d bytes", CH_HEALTH_MQTT_MAX_PAYLOAD);
        return CH_EPARSE;
    }
    if (len == 0 && out->kind == CH_HEALTH_MQTT_HEARTBEAT) {
        return 0; /* a bare heartbeat */
    }
    json_error_t jerr;
    json_t *o = json_loadb(payload != NULL ? payload : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        snprintf(why, why_len, "not JSON (line %d column %d)", jerr.line, jerr.column);
        return CH_EPARSE;
    }
    int rc;
    if (!json_is_object(o)) {
        snprintf(why, why_len, "not a JSON object");
        rc = CH_EPARSE;
    } else if (out->kind == CH_HEALTH_MQTT_STATE) {
        rc = parse_keys(o, state_keys, "a state message", out, why, why_len);
        if (rc == 0 && out->status[0] == '\0') {
            snprintf(why, why_len, "a state message needs status");
            rc = CH_EPARSE;
        }
    } else if (out->kind == CH_HEALTH_MQTT_HEARTBEAT) {
        rc = parse_keys(o, heartbeat_keys, "a heartbeat message", out, why, why_len);
    } else {
        rc = parse_keys(o, event_keys, "an event message", out, why, why_len);
        if (rc == 0 && out->event_type[0] == '\0') {
            snprintf(why, why_len, "an event message needs type");
            rc = CH_EPARSE;
        }
    }
    json_decref(o);
    return rc;
}
