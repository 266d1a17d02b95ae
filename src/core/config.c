/*
 * Configuration loading: defaults < INI file < environment < flags. See config.h.
 *
 * Every key is one row of a table (name, environment variable, type, field offset), so that
 * the file, the environment and the flags go through the same setter and the same validation,
 * and the error message always names the key.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum ch_config_type {
    CH_CFG_STR,
    CH_CFG_UINT,
    CH_CFG_LEVEL,
    CH_CFG_LISTEN,
} ch_config_type_t;

typedef struct ch_config_key {
    const char *name; /* "section.key" */
    const char *env;
    ch_config_type_t type;
    size_t offset;
    uint64_t min, max; /* for CH_CFG_UINT */
    int reloadable;
} ch_config_key_t;

#define CH_CFG_FIELD(f) offsetof(ch_config_t, f)

static const ch_config_key_t ch__config_keys[] = {
    {"hub.data_dir", "CCTVHUB_DATA_DIR", CH_CFG_STR, CH_CFG_FIELD(data_dir), 0, 0, 0},
    {"store.url", "CCTVHUB_STORE_URL", CH_CFG_STR, CH_CFG_FIELD(store_url), 0, 0, 0},
    {"log.level", "CCTVHUB_LOG_LEVEL", CH_CFG_LEVEL, CH_CFG_FIELD(log_level), 0, 0, 1},
    {"http.listen", "CCTVHUB_HTTP_LISTEN", CH_CFG_LISTEN, CH_CFG_FIELD(http_listen), 0, 0, 0},
    {"http.max_head", "CCTVHUB_HTTP_MAX_HEAD", CH_CFG_UINT, CH_CFG_FIELD(http_max_head), 256,
     1 << 20, 1},
    {"http.max_target", "CCTVHUB_HTTP_MAX_TARGET", CH_CFG_UINT, CH_CFG_FIELD(http_max_target), 64,
     1 << 20, 1},
    {"http.max_headers", "CCTVHUB_HTTP_MAX_HEADERS", CH_CFG_UINT, CH_CFG_FIELD(http_max_headers), 1,
     1024, 1},
    {"http.max_body", "CCTVHUB_HTTP_MAX_BODY", CH_CFG_UINT, CH_CFG_FIELD(http_max_body), 0,
     (uint64_t)1 << 32, 1},
    {"http.request_timeout_ms", "CCTVHUB_HTTP_REQUEST_TIMEOUT_MS", CH_CFG_UINT,
     CH_CFG_FIELD(http_request_timeout_ms), 10, 3600000, 1},
    {"http.idle_timeout_ms", "CCTVHUB_HTTP_IDLE_TIMEOUT_MS", CH_CFG_UINT,
     CH_CFG_FIELD(http_idle_timeout_ms), 10, 86400000, 1},
    {"http.max_connections", "CCTVHUB_HTTP_MAX_CONNECTIONS", CH_CFG_UINT,
     CH_CFG_FIELD(http_max_connections), 1, 1000000, 1},
    {"http.max_connections_per_addr", "CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR", CH_CFG_UINT,
     CH_CFG_FIELD(http_max_connections_per_addr), 0, 1000000, 1},
    {"http.fd_reserve", "CCTVHUB_HTTP_FD_RESERVE", CH_CFG_UINT, CH_CFG_FIELD(http_fd_reserve), 4,
     1 << 20, 0},
    {"import.max_bytes", "CCTVHUB_IMPORT_MAX_BYTES", CH_CFG_UINT, CH_CFG_FIELD(import_max_bytes),
     1024, (uint64_t)1 << 36, 0},
    {"hub.node_id", "CCTVHUB_NODE_ID", CH_CFG_STR, CH_CFG_FIELD(node_id), 0, 0, 0},
    {"audit.checkpoint_records", "CCTVHUB_AUDIT_CHECKPOINT_RECORDS", CH_CFG_UINT,
     CH_CFG_FIELD(audit_checkpoint_records), 1, 1000000000, 0},
    {"audit.checkpoint_ms", "CCTVHUB_AUDIT_CHECKPOINT_MS", CH_CFG_UINT,
     CH_CFG_FIELD(audit_checkpoint_ms), 10, 3600000, 0},
    {"audit.refusal_interval_ms", "CCTVHUB_AUDIT_REFUSAL_INTERVAL_MS", CH_CFG_UINT,
     CH_CFG_FIELD(audit_refusal_interval_ms), 100, 86400000, 0},
    {"audit.reserve_bytes", "CCTVHUB_AUDIT_RESERVE_BYTES", CH_CFG_UINT,
     CH_CFG_FIELD(audit_reserve_bytes), 0, (uint64_t)1 << 32, 0},
    {"policy.services_file", "CCTVHUB_SERVICES_FILE", CH_CFG_STR, CH_CFG_FIELD(services_file), 0, 0,
     1},
    {"auth.session_idle_s", "CCTVHUB_AUTH_SESSION_IDLE_S", CH_CFG_UINT,
     CH_CFG_FIELD(auth_session_idle_s), 60, 86400, 0},
    {"auth.session_max_s", "CCTVHUB_AUTH_SESSION_MAX_S", CH_CFG_UINT,
     CH_CFG_FIELD(auth_session_max_s), 60, 7 * 86400, 0},
    {"auth.max_failed_logins", "CCTVHUB_AUTH_MAX_FAILED_LOGINS", CH_CFG_UINT,
     CH_CFG_FIELD(auth_max_failed_logins), 1, 1000, 0},
    {"auth.lockout_s", "CCTVHUB_AUTH_LOCKOUT_S", CH_CFG_UINT, CH_CFG_FIELD(auth_lockout_s), 1,
     86400, 0},
    {"auth.max_failures_per_address", "CCTVHUB_AUTH_MAX_FAILURES_PER_ADDRESS", CH_CFG_UINT,
     CH_CFG_FIELD(auth_max_failures_per_address), 1, 100000, 0},
    {"auth.cookie_secure", "CCTVHUB_AUTH_COOKIE_SECURE", CH_CFG_UINT,
     CH_CFG_FIELD(auth_cookie_secure), 0, 1, 0},
    {"auth.hash_threads", "CCTVHUB_AUTH_HASH_THREADS", CH_CFG_UINT, CH_CFG_FIELD(auth_hash_threads),
     1, 64, 0},
    {"auth.max_hashes_in_flight", "CCTVHUB_AUTH_MAX_HASHES_IN_FLIGHT", CH_CFG_UINT,
     CH_CFG_FIELD(auth_max_hashes_in_flight), 1, 4096, 0},
    {"auth.max_hashes_per_address", "CCTVHUB_AUTH_MAX_HASHES_PER_ADDRESS", CH_CFG_UINT,
     CH_CFG_FIELD(auth_max_hashes_per_address), 1, 4096, 0},
    {"http.trusted_proxies", "CCTVHUB_HTTP_TRUSTED_PROXIES", CH_CFG_STR,
     CH_CFG_FIELD(http_trusted_proxies), 0, 0, 0},
    {"rtsp.listen", "CCTVHUB_RTSP_LISTEN", CH_CFG_LISTEN, CH_CFG_FIELD(rtsp_listen), 0, 0, 0},
    {"event.bounds", "CCTVHUB_EVENT_BOUNDS", CH_CFG_STR, CH_CFG_FIELD(event_bounds), 0, 0, 0},
    {"event.grace_s", "CCTVHUB_EVENT_GRACE_S", CH_CFG_UINT, CH_CFG_FIELD(event_grace_s), 1, 3600,
     0},
    {"relay.loops", "CCTVHUB_RELAY_LOOPS", CH_CFG_UINT, CH_CFG_FIELD(relay_loops), 0, 64, 0},
    {"relay.prewarm", "CCTVHUB_RELAY_PREWARM", CH_CFG_UINT, CH_CFG_FIELD(relay_prewarm), 0, 1, 0},
    {"relay.idle_stop_s", "CCTVHUB_RELAY_IDLE_STOP_S", CH_CFG_UINT, CH_CFG_FIELD(relay_idle_stop_s),
     1, 3600, 0},
    {"relay.stall_s", "CCTVHUB_RELAY_STALL_S", CH_CFG_UINT, CH_CFG_FIELD(relay_stall_s), 1, 600, 0},
    {"relay.backoff_max_s", "CCTVHUB_RELAY_BACKOFF_MAX_S", CH_CFG_UINT,
     CH_CFG_FIELD(relay_backoff_max_s), 1, 3600, 0},
    {"relay.viewer_budget_kb", "CCTVHUB_RELAY_VIEWER_BUDGET_KB", CH_CFG_UINT,
     CH_CFG_FIELD(relay_viewer_budget_kb), 64, 1048576, 0},
    {"relay.pull_transport", "CCTVHUB_RELAY_PULL_TRANSPORT", CH_CFG_STR,
     CH_CFG_FIELD(relay_pull_transport), 0, 0, 0},
    {"relay.max_unauthorized", "CCTVHUB_RELAY_MAX_UNAUTHORIZED", CH_CFG_UINT,
     CH_CFG_FIELD(relay_max_unauthorized), 1, 65536, 0},
    {"relay.max_unauthorized_per_addr", "CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR", CH_CFG_UINT,
     CH_CFG_FIELD(relay_max_unauthorized_per_addr), 1, 65536, 0},
    {"relay.auth_timeout_s", "CCTVHUB_RELAY_AUTH_TIMEOUT_S", CH_CFG_UINT,
     CH_CFG_FIELD(relay_auth_timeout_s), 1, 600, 0},
    {"relay.fd_reserve", "CCTVHUB_RELAY_FD_RESERVE", CH_CFG_UINT, CH_CFG_FIELD(relay_fd_reserve), 8,
     1 << 20, 0},
    {"rtsp.public_url", "CCTVHUB_RTSP_PUBLIC_URL", CH_CFG_STR, CH_CFG_FIELD(rtsp_public_url), 0, 0,
     0},
    {"http.public_url", "CCTVHUB_HTTP_PUBLIC_URL", CH_CFG_STR, CH_CFG_FIELD(http_public_url), 0, 0,
     0},
    {"http.web_root", "CCTVHUB_HTTP_WEB_ROOT", CH_CFG_STR, CH_CFG_FIELD(web_root), 0, 0, 0},
    {"console.tile_url", "CCTVHUB_CONSOLE_TILE_URL", CH_CFG_STR, CH_CFG_FIELD(console_tile_url), 0,
     0, 0},
    {"mqtt.url", "CCTVHUB_MQTT_URL", CH_CFG_STR, CH_CFG_FIELD(mqtt_url), 0, 0, 0},
    {"mqtt.host", "CCTVHUB_MQTT_HOST", CH_CFG_STR, CH_CFG_FIELD(mqtt_host), 0, 0, 0},
    {"mqtt.port", "CCTVHUB_MQTT_PORT", CH_CFG_UINT, CH_CFG_FIELD(mqtt_port), 1, 65535, 0},
    {"mqtt.username", "CCTVHUB_MQTT_USERNAME", CH_CFG_STR, CH_CFG_FIELD(mqtt_username), 0, 0, 0},
    {"mqtt.password", "CCTVHUB_MQTT_PASSWORD", CH_CFG_STR, CH_CFG_FIELD(mqtt_password), 0, 0, 0},
    {"mqtt.tls_ca", "CCTVHUB_MQTT_TLS_CA", CH_CFG_STR, CH_CFG_FIELD(mqtt_tls_ca), 0, 0, 0},
    {"mqtt.tls_cert", "CCTVHUB_MQTT_TLS_CERT", CH_CFG_STR, CH_CFG_FIELD(mqtt_tls_cert), 0, 0, 0},
    {"mqtt.tls_key", "CCTVHUB_MQTT_TLS_KEY", CH_CFG_STR, CH_CFG_FIELD(mqtt_tls_key), 0, 0, 0},
    {"mqtt.client_id", "CCTVHUB_MQTT_CLIENT_ID", CH_CFG_STR, CH_CFG_FIELD(mqtt_client_id), 0, 0, 0},
    {"mqtt.topic_prefix", "CCTVHUB_MQTT_TOPIC_PREFIX", CH_CFG_STR, CH_CFG_FIELD(mqtt_topic_prefix),
     0, 0, 0},
    {"mqtt.heartbeat_s", "CCTVHUB_MQTT_HEARTBEAT_S", CH_CFG_UINT, CH_CFG_FIELD(mqtt_heartbeat_s), 1,
     86400, 0},
    {"tls.cert", "CCTVHUB_TLS_CERT", CH_CFG_STR, CH_CFG_FIELD(tls_cert), 0, 0, 0},
    {"tls.key", "CCTVHUB_TLS_KEY", CH_CFG_STR, CH_CFG_FIELD(tls_key), 0, 0, 0},
    {"tls.client_ca", "CCTVHUB_TLS_CLIENT_CA", CH_CFG_STR, CH_CFG_FIELD(tls_client_ca), 0, 0, 0},
    {"tls.client_crl", "CCTVHUB_TLS_CLIENT_CRL", CH_CFG_STR, CH_CFG_FIELD(tls_client_crl), 0, 0, 0},
    {"tls.ca_bundle", "CCTVHUB_TLS_CA_BUNDLE", CH_CFG_STR, CH_CFG_FIELD(tls_ca_bundle), 0, 0, 0},
    {"tls.handshake_timeout_ms", "CCTVHUB_TLS_HANDSHAKE_TIMEOUT_MS", CH_CFG_UINT,
     CH_CFG_FIELD(tls_handshake_timeout_ms), 50, 600000, 0},
    {"http.tls", "CCTVHUB_HTTP_TLS", CH_CFG_UINT, CH_CFG_FIELD(http_tls), 0, 1, 0},
    {"http.allow_plaintext", "CCTVHUB_HTTP_ALLOW_PLAINTEXT", CH_CFG_UINT,
     CH_CFG_FIELD(http_allow_plaintext), 0, 1, 0},
    {"http.hsts_max_age_s", "CCTVHUB_HTTP_HSTS_MAX_AGE_S", CH_CFG_UINT,
     CH_CFG_FIELD(http_hsts_max_age_s), 0, (uint64_t)1 << 31, 0},
    {"rtsp.allow_plaintext", "CCTVHUB_RTSP_ALLOW_PLAINTEXT", CH_CFG_UINT,
     CH_CFG_FIELD(rtsp_allow_plaintext), 0, 1, 0},
    {"rtsps.listen", "CCTVHUB_RTSPS_LISTEN", CH_CFG_STR, CH_CFG_FIELD(rtsps_listen), 0, 0, 0},
    {"rtsps.public_url", "CCTVHUB_RTSPS_PUBLIC_URL", CH_CFG_STR, CH_CFG_FIELD(rtsps_public_url), 0,
     0, 0},
    {"alert.offline_after_s", "CCTVHUB_ALERT_OFFLINE_AFTER_S", CH_CFG_UINT,
     CH_CFG_FIELD(alert_offline_after_s), 0, 7 * 86400, 0},
    {"alert.provider_down_count", "CCTVHUB_ALERT_PROVIDER_DOWN_COUNT", CH_CFG_UINT,
     CH_CFG_FIELD(alert_provider_down_count), 0, 1000000, 0},
    {"alert.bell_radius_m", "CCTVHUB_ALERT_BELL_RADIUS_M", CH_CFG_UINT,
     CH_CFG_FIELD(alert_bell_radius_m), 1, 10000, 0},
    {"alert.webhook_url", "CCTVHUB_ALERT_WEBHOOK_URL", CH_CFG_STR, CH_CFG_FIELD(alert_webhook_url),
     0, 0, 0},
    {"alert.webhook_max_tries", "CCTVHUB_ALERT_WEBHOOK_MAX_TRIES", CH_CFG_UINT,
     CH_CFG_FIELD(alert_webhook_max_tries), 1, 100, 0},
    {"alert.webhook_secret", "CCTVHUB_ALERT_WEBHOOK_SECRET", CH_CFG_STR,
     CH_CFG_FIELD(alert_webhook_secret), 0, 0, 0},
    {"metrics.token", "CCTVHUB_METRICS_TOKEN", CH_CFG_STR, CH_CFG_FIELD(metrics_token), 0, 0, 0},
    {"health.probe_interval", "CCTVHUB_HEALTH_PROBE_INTERVAL", CH_CFG_UINT,
     CH_CFG_FIELD(health_probe_interval), 0, 86400, 0},
    {"health.probe_concurrency", "CCTVHUB_HEALTH_PROBE_CONCURRENCY", CH_CFG_UINT,
     CH_CFG_FIELD(health_probe_concurrency), 1, 4096, 0},
    {"health.probe_timeout_s", "CCTVHUB_HEALTH_PROBE_TIMEOUT_S", CH_CFG_UINT,
     CH_CFG_FIELD(health_probe_timeout_s), 1, 300, 0},
    {"health.fail_threshold", "CCTVHUB_HEALTH_FAIL_THRESHOLD", CH_CFG_UINT,
     CH_CFG_FIELD(health_fail_threshold), 1, 100, 0},
    {"health.min_fps", "CCTVHUB_HEALTH_MIN_FPS", CH_CFG_UINT, CH_CFG_FIELD(health_min_fps), 0, 240,
     0},
    {"health.keyframe_max_s", "CCTVHUB_HEALTH_KEYFRAME_MAX_S", CH_CFG_UINT,
     CH_CFG_FIELD(health_keyframe_max_s), 1, 3600, 0},
    {"health.rescan_s", "CCTVHUB_HEALTH_RESCAN_S", CH_CFG_UINT, CH_CFG_FIELD(health_rescan_s), 1,
     86400, 0},
};

/* "host" or "host:port" (n bytes at hp, one colon at most) into host (NUL-terminated, shorter
 * than host_cap) and *port (default_port without one; 1..65535). 0 or CH_EINVAL. */
static int ch__config_host_port(const char *hp, size_t n, char *host, size_t host_cap,
                                int default_port, int *port)
{
    const char *colon = memchr(hp, ':', n);
    size_t hlen = colon != NULL ? (size_t)(colon - hp) : n;
    if (hlen == 0 || hlen >= host_cap) {
        return CH_EINVAL;
    }
    *port = default_port;
    if (colon != NULL) {
        int64_t p;
        if (ch_parse_int64(colon + 1, n - hlen - 1, &p) != 0 || p < 1 || p > 65535) {
            return CH_EINVAL; /* a second colon fails here too */
        }
        *port = (int)p;
    }
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    return 0;
}

int ch_config_parse_mqtt_url(const char *s, char *host, size_t host_cap, int *port, int *tls)
{
    const char *rest;
    if (strncmp(s, "mqtt://", 7) == 0) {
        rest = s + 7;
        *tls = 0;
    } else if (strncmp(s, "mqtts://", 8) == 0) {
        rest = s + 8;
        *tls = 1;
    } else {
        return CH_EINVAL;
    }
    size_t n = strlen(rest);
    if (n > 0 && rest[n - 1] == '/') {
        n--; /* "mqtt://broker/" */
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)rest[i];
        if (ch <= ' ' || ch >= 0x7f || strchr("/?#@[]\\\"'", ch) != NULL) {
            return CH_EINVAL; /* no path, userinfo or IPv6 literal: keys say those */
        }
    }
    return ch__config_host_port(rest, n, host, host_cap, *tls ? 8883 : 1883, port);
}

int ch_config_parse_http_url(const char *s, char *host, size_t host_cap, int *port,
                             const char **path, int *tls)
{
    *tls = strncmp(s, "https://", 8) == 0;
    if (!*tls && strncmp(s, "http://", 7) != 0) {
        return CH_EINVAL;
    }
    const char *rest = s + (*tls ? 8 : 7);
    const char *slash = strchr(rest, '/');
    size_t alen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '#') {
            return CH_EINVAL; /* nothing that could break the request line */
        }
    }
    if (memchr(rest, '@', alen) != NULL || memchr(rest, '[', alen) != NULL ||
        ch__config_host_port(rest, alen, host, host_cap, *tls ? 443 : 80, port) != 0) {
        return CH_EINVAL;
    }
    *path = slash != NULL ? slash : "/";
    return 0;
}

/* 1 when s can be metrics.token: 16..256 characters a Bearer credential may hold (RFC 6750's
 * b64token), so that a scraper can send it as it is. */
static int ch__config_token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 16 || n > 256) {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("-._~+/=", *p) != NULL)) {
            return 0;
        }
    }
    return 1;
}

int ch_config_parse_bounds(const char *value, double out[4])
{
    const char *p = value;
    for (int i = 0; i < 4; i++) {
        const char *e = strchr(p, ',');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        if ((i < 3) != (e != NULL) || ch_parse_double(p, n, &out[i]) != 0) {
            return CH_EINVAL;
        }
        p = e != NULL ? e + 1 : p + n;
    }
    if (out[0] < -180 || out[2] > 180 || out[1] < -90 || out[3] > 90 || out[0] >= out[2] ||
        out[1] >= out[3]) {
        return CH_EINVAL;
    }
    return 0;
}

static const ch_config_key_t *ch__config_find(const char *name)
{
    for (size_t i = 0; i < CH_ARRAY_SIZE(ch__config_keys); i++) {
        if (strcmp(ch__config_keys[i].name, name) == 0) {
            return &ch__config_keys[i];
        }
    }
    return NULL;
}

int ch_config_key_reloadable(const char *key)
{
    const ch_config_key_t *k = ch__config_find(key);
    return k != NULL && k->reloadable;
}

int ch_config_parse_listen(const char *s, char host[64], int *port)
{
    const char *colon;
    size_t hlen;
    const char *h = s;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return CH_EINVAL;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return CH_EINVAL;
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= 64) {
        return CH_EINVAL;
    }
    int64_t p;
    if (ch_parse_int64(colon + 1, strlen(colon + 1), &p) != 0 || p < 0 || p > 65535) {
        return CH_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

/*
 * 1 when s can be the console's tile URL: http:// or https://, the {z}, {x} and {y} of a
 * Leaflet template, and no character that could end the Content-Security-Policy header it
 * goes into (quotes, semicolons, commas, spaces, controls).
 */
static int ch__config_tile_url_ok(const char *s)
{
    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) {
        return 0;
    }
    if (strstr(s, "{z}") == NULL || strstr(s, "{x}") == NULL || strstr(s, "{y}") == NULL) {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' || *p == ';' || *p == ',' ||
            *p == '\\') {
            return 0;
        }
    }
    return 1;
}

/* A public base URL (rtsp.public_url, http.public_url): one of the schemes, a host, no path,
 * query or trailing slash, nothing that could break a header or a JSON string. */
static int ch__config_public_url_ok(const char *s, const char *const *schemes)
{
    const char *rest = NULL;
    for (; *schemes != NULL; schemes++) {
        size_t n = strlen(*schemes);
        if (strncmp(s, *schemes, n) == 0) {
            rest = s + n;
            break;
        }
    }
    if (rest == NULL || *rest == '\0' || *rest == ':') {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)rest; *p != '\0'; p++) {
        if (*p <= ' ' || *p >= 0x7f || strchr("\"'\\;,/?#@{}<>", *p) != NULL) {
            return 0;
        }
    }
    return 1;
}

/*
 * The default of http.web_root: the web/ directory of the source tree this file was compiled
 * from (__FILE__ is absolute in our CMake builds), when it exists and has an index.html; else
 * NULL. A hub run from a build directory then serves the console with no setting at all.
 */
static char *ch__config_default_web_root(void)
{
    static const char tail[] = "src/core/config.c";
    const char *file = __FILE__;
    size_t n = strlen(file);
    if (file[0] != '/' || n < sizeof(tail) - 1 ||
        strcmp(file + n - (sizeof(tail) - 1), tail) != 0) {
        return NULL;
    }
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_appendf(&b, "%.*sweb", (int)(n - (sizeof(tail) - 1)), file);
    ch_buf_t index;
    ch_buf_init(&index);
    ch_buf_appendf(&index, "%s/index.html", b.data);
    struct stat st;
    int ok = stat(index.data, &st) == 0 && S_ISREG(st.st_mode);
    ch_buf_fini(&index);
    if (!ok) {
        ch_buf_fini(&b);
        return NULL;
    }
    return ch_buf_steal(&b);
}

int ch_ip_parse(const char *s, size_t n, uint8_t out[16])
{
    char text[INET6_ADDRSTRLEN + 2];
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= INET6_ADDRSTRLEN) {
        return CH_EINVAL;
    }
    memcpy(text, s, n);
    text[n] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(out, mapped, 12);
        memcpy(out + 12, &v4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, text, out) == 1 ? 0 : CH_EINVAL;
}

int ch_cidr_contains(const ch_cidr_t *nets, size_t n, const uint8_t addr[16])
{
    for (size_t i = 0; i < n; i++) {
        unsigned bits = nets[i].prefix;
        size_t whole = bits / 8;
        if (memcmp(nets[i].addr, addr, whole) != 0) {
            continue;
        }
        unsigned rest = bits % 8;
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        if (rest == 0 || ((nets[i].addr[whole] ^ addr[whole]) & mask) == 0) {
            return 1;
        }
    }
    return 0;
}

int ch_config_parse_cidrs(const char *s, ch_cidr_t *out, size_t cap)
{
    size_t count = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        const char *end = e != NULL ? e : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t')) {
            p++;
        }
        const char *q = end;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t')) {
            q--;
        }
        const char *slash = memchr(p, '/', (size_t)(q - p));
        const char *addr_end = slash != NULL ? slash : q;
        ch_cidr_t net;
        if (count == cap || ch_ip_parse(p, (size_t)(addr_end - p), net.addr) != 0) {
            return CH_EINVAL;
        }
        int v4 = memcmp(net.addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 && *p != '[' &&
                 memchr(p, ':', (size_t)(addr_end - p)) == NULL;
        unsigned max = v4 ? 32 : 128;
        unsigned prefix = max;
        if (slash != NULL) {
            int64_t v;
            if (slash + 1 == q || slash[1] < '0' || slash[1] > '9' ||
                ch_parse_int64(slash + 1, (size_t)(q - slash - 1), &v) != 0 || v > (int64_t)max) {
                return CH_EINVAL;
            }
            prefix = (unsigned)v;
        }
        net.prefix = v4 ? prefix + 96 : prefix;
        /* Host bits set ("10.0.0.1/8") are cleared: the network is what is meant. */
        for (unsigned b = net.prefix; b < 128; b++) {
            net.addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
        }
        out[count++] = net;
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    return (int)count;
}

/* 1 when path names a regular file (following links). */
static int ch__config_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The default of policy.services_file: the services.json the hub ships with, so that a hub
 * started without the setting answers events instead of refusing every one. Looked for where an
 * installed binary finds it (<prefix>/etc/cctvhub/services.json, <exe dir>/../etc/services.json,
 * with the binary in <prefix>/bin), then in the source tree this file was compiled from (a
 * developer's hub in a build directory). NULL when none of them is a regular file.
 */
static char *ch__config_default_services_file(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0'; /* the binary's directory */
            static const char *const tails[] = {"/../etc/cctvhub/services.json",
                                                "/../etc/services.json"};
            for (size_t i = 0; i < CH_ARRAY_SIZE(tails); i++) {
                ch_buf_t b;
                ch_buf_init(&b);
                ch_buf_appendf(&b, "%s%s", exe, tails[i]);
                char *real = ch__config_is_file(b.data) ? realpath(b.data, NULL) : NULL;
                ch_buf_fini(&b);
                if (real != NULL) {
                    char *found = ch_strdup(real); /* ours are freed with ch_free */
                    free(real);
                    return found;
                }
            }
        }
    }
    static const char tail[] = "src/core/config.c";
    const char *file = __FILE__;
    size_t len = strlen(file);
    if (file[0] != '/' || len < sizeof(tail) - 1 ||
        strcmp(file + len - (sizeof(tail) - 1), tail) != 0) {
        return NULL;
    }
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_appendf(&b, "%.*setc/services.json", (int)(len - (sizeof(tail) - 1)), file);
    if (!ch__config_is_file(b.data)) {
        ch_buf_fini(&b);
        return NULL;
    }
    return ch_buf_steal(&b);
}

/* Sets one key from text; on a bad value fills *err with "<origin>: key: why". */
static int ch__config_set(ch_config_t *cfg, const ch_config_key_t *k, const char *value,
                          const char *origin, char **err)
{
    char *base = (char *)cfg + k->offset;
    ch_buf_t msg;
    ch_buf_init(&msg);
    switch (k->type) {
    case CH_CFG_STR:
        if (value[0] == '\0') {
            ch_buf_appendf(&msg, "%s: %s: must not be empty", origin, k->name);
            goto fail;
        }
        static const char *const rtsp_schemes[] = {"rtsp://", "rtsps://", NULL};
        static const char *const http_schemes[] = {"http://", "https://", NULL};
        if ((strcmp(k->name, "rtsp.public_url") == 0 &&
             !ch__config_public_url_ok(value, rtsp_schemes)) ||
            (strcmp(k->name, "http.public_url") == 0 &&
             !ch__config_public_url_ok(value, http_schemes))) {
            ch_buf_appendf(&msg,
                           "%s: %s: \"%s\" is not a base URL (scheme://host[:port], no path; "
                           "for example %s)",
                           origin, k->name, value,
                           k->name[0] == 'r' ? "rtsp://cctv.example.go.kr:8554"
                                             : "https://cctv.example.go.kr");
            goto fail;
        }
        if (strcmp(k->name, "http.trusted_proxies") == 0) {
            ch_cidr_t nets[CH_CIDR_MAX];
            if (ch_config_parse_cidrs(value, nets, CH_CIDR_MAX) < 0) {
                ch_buf_appendf(&msg,
                               "%s: %s: \"%s\" is not a comma-separated list of at most %d "
                               "addresses or networks (for example 10.0.0.5, 10.1.0.0/16, ::1)",
                               origin, k->name, value, CH_CIDR_MAX);
                goto fail;
            }
        }
        if (strcmp(k->name, "relay.pull_transport") == 0 && strcmp(value, "tcp") != 0 &&
            strcmp(value, "udp") != 0) {
            ch_buf_appendf(&msg, "%s: %s: \"%s\" is not tcp or udp", origin, k->name, value);
            goto fail;
        }
        if (strcmp(k->name, "event.bounds") == 0) {
            double b[4];
            if (ch_config_parse_bounds(value, b) != 0) {
                ch_buf_appendf(&msg,
                               "%s: %s: \"%s\" is not min_lon,min_lat,max_lon,max_lat in "
                               "degrees (for example 126.76,37.41,127.19,37.72)",
                               origin, k->name, value);
                goto fail;
            }
        }
        if (strcmp(k->name, "mqtt.url") == 0) {
            char h[256];
            int port, tls;
            if (ch_config_parse_mqtt_url(value, h, sizeof(h), &port, &tls) != 0) {
                ch_buf_appendf(&msg,
                               "%s: %s: \"%s\" is not mqtt://host[:port] or mqtts://host[:port] "
                               "(credentials go in mqtt.username and mqtt.password)",
                               origin, k->name, value);
                goto fail;
            }
        }
        if (strcmp(k->name, "alert.webhook_url") == 0) {
            char h[256];
            int port;
            const char *path;
            int tls;
            if (ch_config_parse_http_url(value, h, sizeof(h), &port, &path, &tls) != 0) {
                ch_buf_appendf(&msg,
                               "%s: %s: \"%s\" is not an https:// or http://host[:port]/path URL",
                               origin, k->name, value);
                goto fail;
            }
        }
        if ((strcmp(k->name, "metrics.token") == 0 ||
             strcmp(k->name, "alert.webhook_secret") == 0) &&
            !ch__config_token_ok(value)) {
            /* The value is a secret: the message never repeats it. */
            ch_buf_appendf(&msg,
                           "%s: %s: not a token of 16 to 256 characters from A-Z a-z 0-9 - . _ ~ "
                           "+ / = (for example the output of: openssl rand -hex 32)",
                           origin, k->name);
            goto fail;
        }
        if (strcmp(k->name, "console.tile_url") == 0 && !ch__config_tile_url_ok(value)) {
            ch_buf_appendf(&msg,
                           "%s: %s: \"%s\" is not an http(s) URL template with {z}, {x} and {y} "
                           "(for example https://tiles.example.go.kr/{z}/{x}/{y}.png)",
                           origin, k->name, value);
            goto fail;
        }
        ch_free(*(char **)base);
        *(char **)base = ch_strdup(value);
        return 0;
    case CH_CFG_LISTEN: {
        char host[64];
        int port;
        if (ch_config_parse_listen(value, host, &port) != 0) {
            ch_buf_appendf(&msg, "%s: %s: \"%s\" is not ADDR:PORT (for example 127.0.0.1:8080)",
                           origin, k->name, value);
            goto fail;
        }
        ch_free(*(char **)base);
        *(char **)base = ch_strdup(value);
        return 0;
    }
    case CH_CFG_LEVEL:
        if (ch_log_level_parse(value, (ch_log_level_t *)(void *)base) != 0) {
            ch_buf_appendf(&msg, "%s: %s: \"%s\" is not one of debug, info, warn, error", origin,
                           k->name, value);
            goto fail;
        }
        return 0;
    case CH_CFG_UINT: {
        int64_t v;
        if (ch_parse_int64(value, strlen(value), &v) != 0 || v < 0 || (uint64_t)v < k->min ||
            (uint64_t)v > k->max) {
            ch_buf_appendf(&msg, "%s: %s: \"%s\" is not an integer in [%llu, %llu]", origin,
                           k->name, value, (unsigned long long)k->min, (unsigned long long)k->max);
            goto fail;
        }
        *(uint64_t *)(void *)base = (uint64_t)v;
        return 0;
    }
    }
    ch_buf_appendf(&msg, "%s: %s: unknown type", origin, k->name);
fail:
    if (err != NULL && *err == NULL) {
        *err = ch_buf_steal(&msg);
    }
    ch_buf_fini(&msg);
    return CH_EINVAL;
}

typedef struct ch_config_ini_ctx {
    ch_config_t *cfg;
    const char *file;
    char **err;
    FILE *fp;
    int line; /* of the last line read: Debian's inih does not pass line numbers */
} ch_config_ini_ctx_t;

/* The line reader for ini_parse_stream: fgets that counts lines, so errors can name one. */
static char *ch__config_ini_reader(char *str, int num, void *stream)
{
    ch_config_ini_ctx_t *ctx = stream;
    char *r = fgets(str, num, ctx->fp);
    if (r != NULL) {
        ctx->line++;
    }
    return r;
}

static int ch__config_ini_handler(void *user, const char *section, const char *name,
                                  const char *value)
{
    ch_config_ini_ctx_t *ctx = user;
    int lineno = ctx->line;
    if (*ctx->err != NULL) {
        return 1; /* report only the first error */
    }
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", section, name);
    char origin[512];
    snprintf(origin, sizeof(origin), "%s:%d", ctx->file, lineno);
    const ch_config_key_t *k = ch__config_find(key);
    if (k == NULL) {
        ch_buf_t msg;
        ch_buf_init(&msg);
        ch_buf_appendf(&msg, "%s: %s: unknown key", origin, key);
        *ctx->err = ch_buf_steal(&msg);
        return 0;
    }
    return ch__config_set(ctx->cfg, k, value, origin, ctx->err) == 0;
}

/* The defaults by field: numbers (uint64_t fields) and strings (copied). */
typedef struct ch_config_default {
    size_t offset;
    uint64_t number;
    const char *text;
} ch_config_default_t;

static const ch_config_default_t ch__config_numbers[] = {
    {CH_CFG_FIELD(http_max_head), 16384, NULL},
    {CH_CFG_FIELD(http_max_target), 8192, NULL},
    {CH_CFG_FIELD(http_max_headers), 64, NULL},
    {CH_CFG_FIELD(http_max_body), 1048576, NULL},
    {CH_CFG_FIELD(http_request_timeout_ms), 10000, NULL},
    {CH_CFG_FIELD(http_idle_timeout_ms), 60000, NULL},
    {CH_CFG_FIELD(http_max_connections), 10000, NULL},
    {CH_CFG_FIELD(http_max_connections_per_addr), 64, NULL},
    {CH_CFG_FIELD(http_fd_reserve), 32, NULL},
    {CH_CFG_FIELD(import_max_bytes), 268435456, NULL},
    {CH_CFG_FIELD(audit_checkpoint_records), 1000, NULL},
    {CH_CFG_FIELD(audit_checkpoint_ms), 1000, NULL},
    {CH_CFG_FIELD(audit_refusal_interval_ms), 60000, NULL},
    {CH_CFG_FIELD(audit_reserve_bytes), 4 * 1024 * 1024, NULL},
    {CH_CFG_FIELD(auth_session_idle_s), 1800, NULL},
    {CH_CFG_FIELD(auth_session_max_s), 43200, NULL},
    {CH_CFG_FIELD(auth_max_failed_logins), 5, NULL},
    {CH_CFG_FIELD(auth_lockout_s), 900, NULL},
    {CH_CFG_FIELD(auth_max_failures_per_address), 20, NULL},
    {CH_CFG_FIELD(auth_cookie_secure), 0, NULL},
    {CH_CFG_FIELD(auth_hash_threads), 2, NULL},
    {CH_CFG_FIELD(auth_max_hashes_in_flight), 16, NULL},
    {CH_CFG_FIELD(auth_max_hashes_per_address), 2, NULL},
    {CH_CFG_FIELD(event_grace_s), 30, NULL},
    {CH_CFG_FIELD(relay_loops), 0, NULL},
    {CH_CFG_FIELD(relay_prewarm), 1, NULL},
    {CH_CFG_FIELD(relay_idle_stop_s), 10, NULL},
    {CH_CFG_FIELD(relay_stall_s), 5, NULL},
    {CH_CFG_FIELD(relay_backoff_max_s), 30, NULL},
    {CH_CFG_FIELD(relay_viewer_budget_kb), 4096, NULL},
    {CH_CFG_FIELD(relay_max_unauthorized), 256, NULL},
    {CH_CFG_FIELD(relay_max_unauthorized_per_addr), 32, NULL},
    {CH_CFG_FIELD(relay_auth_timeout_s), 10, NULL},
    {CH_CFG_FIELD(relay_fd_reserve), 128, NULL},
    {CH_CFG_FIELD(health_probe_interval), 60, NULL},
    {CH_CFG_FIELD(health_probe_concurrency), 64, NULL},
    {CH_CFG_FIELD(health_probe_timeout_s), 5, NULL},
    {CH_CFG_FIELD(health_fail_threshold), 3, NULL},
    {CH_CFG_FIELD(health_min_fps), 5, NULL},
    {CH_CFG_FIELD(health_keyframe_max_s), 10, NULL},
    {CH_CFG_FIELD(health_rescan_s), 30, NULL},
    {CH_CFG_FIELD(mqtt_heartbeat_s), 60, NULL},
    {CH_CFG_FIELD(tls_handshake_timeout_ms), 10000, NULL},
    {CH_CFG_FIELD(http_tls), 1, NULL},
    {CH_CFG_FIELD(http_hsts_max_age_s), 31536000, NULL},
    {CH_CFG_FIELD(alert_offline_after_s), 300, NULL},
    {CH_CFG_FIELD(alert_provider_down_count), 10, NULL},
    {CH_CFG_FIELD(alert_bell_radius_m), 300, NULL},
    {CH_CFG_FIELD(alert_webhook_max_tries), 8, NULL},
};

static const ch_config_default_t ch__config_texts[] = {
    {CH_CFG_FIELD(data_dir), 0, "./var"},
    {CH_CFG_FIELD(http_listen), 0, "127.0.0.1:8080"},
    {CH_CFG_FIELD(node_id), 0, "cctvhub"},
    {CH_CFG_FIELD(rtsp_listen), 0, "127.0.0.1:8554"},
    {CH_CFG_FIELD(event_bounds), 0, "124.5,33.0,132.0,38.7"},
    {CH_CFG_FIELD(relay_pull_transport), 0, "tcp"},
    {CH_CFG_FIELD(mqtt_topic_prefix), 0, "cctvhub"},
};

static void ch__config_defaults(ch_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < CH_ARRAY_SIZE(ch__config_numbers); i++) {
        *(uint64_t *)((char *)cfg + ch__config_numbers[i].offset) = ch__config_numbers[i].number;
    }
    for (size_t i = 0; i < CH_ARRAY_SIZE(ch__config_texts); i++) {
        *(char **)((char *)cfg + ch__config_texts[i].offset) = ch_strdup(ch__config_texts[i].text);
    }
    cfg->log_level = CH_LOG_INFO;
    cfg->web_root = ch__config_default_web_root();
}

/* The MQTT keys together: one broker address, TLS files that exist in pairs, a topic prefix
 * that is a plain topic level path. Fills the derived fields. 0 or CH_EINVAL with *err. */
static int ch__config_check_mqtt(ch_config_t *cfg, char **err)
{
    ch_buf_t msg;
    ch_buf_init(&msg);
    if (cfg->mqtt_url != NULL && cfg->mqtt_host != NULL) {
        ch_buf_appendf(&msg, "mqtt.host: set mqtt.url or mqtt.host, not both");
        goto fail;
    }
    if (cfg->mqtt_url != NULL) {
        char h[256];
        int port, tls;
        if (ch_config_parse_mqtt_url(cfg->mqtt_url, h, sizeof(h), &port, &tls) != 0) {
            ch_buf_appendf(&msg, "mqtt.url: not mqtt://host[:port] or mqtts://host[:port]");
            goto fail;
        }
        cfg->mqtt_host = ch_strdup(h);
        cfg->mqtt_tls = (uint64_t)tls;
        if (cfg->mqtt_port == 0) {
            cfg->mqtt_port = (uint64_t)port;
        }
    }
    if (cfg->mqtt_host == NULL) {
        static const char *const needs[] = {"mqtt.username", "mqtt.password", "mqtt.tls_ca",
                                            "mqtt.tls_cert", "mqtt.tls_key"};
        char *const vals[] = {cfg->mqtt_username, cfg->mqtt_password, cfg->mqtt_tls_ca,
                              cfg->mqtt_tls_cert, cfg->mqtt_tls_key};
        for (size_t i = 0; i < CH_ARRAY_SIZE(needs); i++) {
            if (vals[i] != NULL) {
                ch_buf_appendf(&msg, "%s: set, but no broker (mqtt.url or mqtt.host)", needs[i]);
                goto fail;
            }
        }
        return 0;
    }
    if (cfg->mqtt_tls_ca != NULL) {
        cfg->mqtt_tls = 1;
    }
    if ((cfg->mqtt_tls_cert != NULL) != (cfg->mqtt_tls_key != NULL)) {
        ch_buf_appendf(&msg, "%s: mqtt.tls_cert and mqtt.tls_key go together",
                       cfg->mqtt_tls_cert != NULL ? "mqtt.tls_key" : "mqtt.tls_cert");
        goto fail;
    }
    if (cfg->mqtt_tls_cert != NULL && !cfg->mqtt_tls) {
        ch_buf_appendf(&msg, "mqtt.tls_cert: a client certificate needs TLS (mqtts:// or "
                             "mqtt.tls_ca)");
        goto fail;
    }
    if (cfg->mqtt_password != NULL && cfg->mqtt_username == NULL) {
        ch_buf_appendf(&msg, "mqtt.password: set, but no mqtt.username");
        goto fail;
    }
    for (const char *p = cfg->mqtt_topic_prefix; *p != '\0'; p++) {
        if (*p == '+' || *p == '#' || (unsigned char)*p < ' ' || *p == 0x7f) {
            ch_buf_appendf(&msg,
                           "mqtt.topic_prefix: \"%s\" must not hold wildcards or "
                           "control characters",
                           cfg->mqtt_topic_prefix);
            goto fail;
        }
    }
    if (cfg->mqtt_topic_prefix[0] == '/' ||
        cfg->mqtt_topic_prefix[strlen(cfg->mqtt_topic_prefix) - 1] == '/') {
        ch_buf_appendf(&msg, "mqtt.topic_prefix: must not start or end with '/'");
        goto fail;
    }
    if (cfg->mqtt_port == 0) {
        cfg->mqtt_port = cfg->mqtt_tls ? 8883 : 1883;
    }
    if (cfg->mqtt_client_id == NULL) {
        ch_buf_t id;
        ch_buf_init(&id);
        ch_buf_appendf(&id, "cctvhub-%s", cfg->node_id);
        cfg->mqtt_client_id = ch_buf_steal(&id);
    }
    return 0;
fail:
    *err = ch_buf_steal(&msg);
    return CH_EINVAL;
}

int ch_config_listen_is_loopback(const char *listen)
{
    char host[64];
    int port;
    if (listen == NULL || ch_config_parse_listen(listen, host, &port) != 0) {
        return 0;
    }
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

int ch_config_http_tls(const ch_config_t *cfg)
{
    return cfg->tls_cert != NULL && cfg->http_tls;
}

/* The TLS keys together, the RTSPS listener's default, and the rule that nothing is served in
 * clear beyond this machine unless a listener's allow_plaintext says so. */
static int ch__config_check_tls(ch_config_t *cfg, char **err)
{
    ch_buf_t msg;
    ch_buf_init(&msg);
    static const char *const needs[] = {"tls.key", "tls.client_ca", "rtsps.public_url"};
    char *const vals[] = {cfg->tls_key, cfg->tls_client_ca, cfg->rtsps_public_url};
    for (size_t i = 0; i < CH_ARRAY_SIZE(needs); i++) {
        if (vals[i] != NULL && cfg->tls_cert == NULL) {
            ch_buf_appendf(&msg, "%s: set, but tls.cert is not (TLS is off)", needs[i]);
            goto fail;
        }
    }
    if (cfg->tls_client_crl != NULL && cfg->tls_client_ca == NULL) {
        ch_buf_appendf(&msg, "tls.client_crl: set, but tls.client_ca is not");
        goto fail;
    }
    const char *files[] = {cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, cfg->tls_client_crl,
                           cfg->tls_ca_bundle};
    static const char *const names[] = {"tls.cert", "tls.key", "tls.client_ca", "tls.client_crl",
                                        "tls.ca_bundle"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(files); i++) {
        if (files[i] != NULL && !ch__config_is_file(files[i])) {
            ch_buf_appendf(&msg, "%s: %s is not a readable file", names[i], files[i]);
            goto fail;
        }
    }
    if (cfg->rtsps_listen != NULL && strcmp(cfg->rtsps_listen, "none") == 0) {
        ch_free(cfg->rtsps_listen);
        cfg->rtsps_listen = NULL;
    } else if (cfg->rtsps_listen != NULL) {
        char host[64];
        int port;
        if (cfg->tls_cert == NULL) {
            ch_buf_appendf(&msg, "rtsps.listen: set, but tls.cert is not (TLS is off)");
            goto fail;
        }
        if (ch_config_parse_listen(cfg->rtsps_listen, host, &port) != 0) {
            ch_buf_appendf(&msg, "rtsps.listen: \"%s\" is not ADDR:PORT", cfg->rtsps_listen);
            goto fail;
        }
    } else if (cfg->tls_cert != NULL) {
        char host[64];
        int port;
        if (ch_config_parse_listen(cfg->rtsp_listen, host, &port) == 0) {
            ch_buf_appendf(&msg, strchr(host, ':') != NULL ? "[%s]:322" : "%s:322", host);
            cfg->rtsps_listen = ch_buf_steal(&msg);
        }
    }
    if (!ch_config_http_tls(cfg) && !cfg->http_allow_plaintext &&
        !ch_config_listen_is_loopback(cfg->http_listen)) {
        ch_buf_appendf(&msg,
                       "http.listen: %s would serve plaintext beyond this machine: set tls.cert "
                       "(cctvhub tls init makes one) or http.allow_plaintext = 1",
                       cfg->http_listen);
        goto fail;
    }
    if (!cfg->rtsp_allow_plaintext && !ch_config_listen_is_loopback(cfg->rtsp_listen)) {
        ch_buf_appendf(&msg,
                       "rtsp.listen: %s would serve plaintext beyond this machine: use "
                       "rtsps.listen (with tls.cert) or set rtsp.allow_plaintext = 1",
                       cfg->rtsp_listen);
        goto fail;
    }
    ch_buf_fini(&msg);
    return 0;
fail:
    *err = ch_buf_steal(&msg);
    return -1;
}

int ch_config_load(ch_config_t *cfg, const char *file, char *const *envp,
                   const ch_config_override_t *overrides, size_t n_overrides, char **err)
{
    char *local_err = NULL;
    char **errp = err ? err : &local_err;
    *errp = NULL;
    ch__config_defaults(cfg);

    if (file != NULL) {
        cfg->config_file = ch_strdup(file);
        /* A directory opens and reads as an empty file: every key would silently take its
         * default. Only a regular file will do (a FIFO would also block the open). */
        struct stat st;
        if (stat(file, &st) == 0 && !S_ISREG(st.st_mode)) {
            ch_buf_t msg;
            ch_buf_init(&msg);
            ch_buf_appendf(&msg, "%s: the configuration file is not a regular file%s", file,
                           S_ISDIR(st.st_mode) ? " (a directory)" : "");
            *errp = ch_buf_steal(&msg);
            goto fail;
        }
        ch_config_ini_ctx_t ctx = {cfg, file, errp, fopen(file, "r"), 0};
        int rc = -1;
        if (ctx.fp != NULL) {
            rc = ini_parse_stream(ch__config_ini_reader, &ctx, ch__config_ini_handler, &ctx);
            if (ferror(ctx.fp)) {
                rc = -1; /* a read error is not the end of the file */
            }
            fclose(ctx.fp);
        }
        if (rc < 0) {
            ch_buf_t msg;
            ch_buf_init(&msg);
            ch_buf_appendf(&msg, "%s: cannot read the configuration file", file);
            if (*errp == NULL) {
                *errp = ch_buf_steal(&msg);
            }
            ch_buf_fini(&msg);
            goto fail;
        }
        if (*errp != NULL) {
            goto fail;
        }
        if (rc > 0) {
            ch_buf_t msg;
            ch_buf_init(&msg);
            ch_buf_appendf(&msg, "%s:%d: not a valid INI line", file, rc);
            *errp = ch_buf_steal(&msg);
            goto fail;
        }
    }

    for (char *const *e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, "CCTVHUB_", 8) != 0) {
            continue;
        }
        const char *eq = strchr(*e, '=');
        if (eq == NULL) {
            continue;
        }
        size_t nlen = (size_t)(eq - *e);
        for (size_t i = 0; i < CH_ARRAY_SIZE(ch__config_keys); i++) {
            const ch_config_key_t *k = &ch__config_keys[i];
            if (strlen(k->env) == nlen && strncmp(k->env, *e, nlen) == 0) {
                char origin[128];
                snprintf(origin, sizeof(origin), "environment %s", k->env);
                if (ch__config_set(cfg, k, eq + 1, origin, errp) != 0) {
                    goto fail;
                }
            }
        }
    }

    for (size_t i = 0; i < n_overrides; i++) {
        const ch_config_key_t *k = ch__config_find(overrides[i].key);
        if (k == NULL) {
            ch_buf_t msg;
            ch_buf_init(&msg);
            ch_buf_appendf(&msg, "flag: %s: unknown key", overrides[i].key);
            *errp = ch_buf_steal(&msg);
            goto fail;
        }
        char origin[160];
        snprintf(origin, sizeof(origin), "flag --%s", overrides[i].key);
        if (ch__config_set(cfg, k, overrides[i].value, origin, errp) != 0) {
            goto fail;
        }
    }

    if (cfg->store_url == NULL) {
        ch_buf_t u;
        ch_buf_init(&u);
        ch_buf_appendf(&u, "sqlite:%s/cctvhub.db", cfg->data_dir);
        cfg->store_url = ch_buf_steal(&u);
    }
    if (cfg->services_file == NULL) {
        cfg->services_file = ch__config_default_services_file();
        cfg->services_file_default = cfg->services_file != NULL;
    } else if (strcmp(cfg->services_file, "none") == 0) {
        ch_free(cfg->services_file);
        cfg->services_file = NULL;
    }
    if (cfg->web_root != NULL && strcmp(cfg->web_root, "none") == 0) {
        ch_free(cfg->web_root);
        cfg->web_root = NULL;
    }
    if (cfg->http_max_target >= cfg->http_max_head) {
        ch_buf_t msg;
        ch_buf_init(&msg);
        ch_buf_appendf(&msg, "http.max_target: %llu must be smaller than http.max_head (%llu)",
                       (unsigned long long)cfg->http_max_target,
                       (unsigned long long)cfg->http_max_head);
        *errp = ch_buf_steal(&msg);
        goto fail;
    }
    if (cfg->http_fd_reserve >= cfg->relay_fd_reserve) {
        /* The relay must stop taking descriptors before HTTP does, or a flood of viewers'
         * connections would leave the API none. */
        ch_buf_t msg;
        ch_buf_init(&msg);
        ch_buf_appendf(&msg, "http.fd_reserve: %llu must be smaller than relay.fd_reserve (%llu)",
                       (unsigned long long)cfg->http_fd_reserve,
                       (unsigned long long)cfg->relay_fd_reserve);
        *errp = ch_buf_steal(&msg);
        goto fail;
    }
    if (ch__config_check_mqtt(cfg, errp) != 0) {
        goto fail;
    }
    if (cfg->alert_webhook_secret != NULL && cfg->alert_webhook_url == NULL) {
        *errp = ch_strdup("alert.webhook_secret: set, but alert.webhook_url is not (nothing "
                          "to sign)");
        goto fail;
    }
    if (ch__config_check_tls(cfg, errp) != 0) {
        goto fail;
    }
    return 0;

fail:
    ch_config_fini(cfg);
    if (err == NULL) {
        ch_free(local_err);
    }
    return CH_EINVAL;
}

void ch_config_fini(ch_config_t *cfg)
{
    ch_free(cfg->config_file);
    ch_free(cfg->data_dir);
    ch_free(cfg->store_url);
    ch_free(cfg->http_listen);
    ch_free(cfg->http_trusted_proxies);
    ch_free(cfg->node_id);
    ch_free(cfg->services_file);
    ch_free(cfg->rtsp_listen);
    ch_free(cfg->relay_pull_transport);
    ch_free(cfg->rtsp_public_url);
    ch_free(cfg->http_public_url);
    ch_free(cfg->event_bounds);
    ch_free(cfg->web_root);
    ch_free(cfg->console_tile_url);
    ch_free(cfg->metrics_token);
    ch_free(cfg->mqtt_url);
    ch_free(cfg->mqtt_host);
    ch_free(cfg->mqtt_username);
    ch_free(cfg->mqtt_password);
    ch_free(cfg->mqtt_tls_ca);
    ch_free(cfg->mqtt_tls_cert);
    ch_free(cfg->mqtt_tls_key);
    ch_free(cfg->mqtt_client_id);
    ch_free(cfg->mqtt_topic_prefix);
    ch_free(cfg->alert_webhook_url);
    ch_free(cfg->alert_webhook_secret);
    ch_free(cfg->tls_cert);
    ch_free(cfg->tls_key);
    ch_free(cfg->tls_client_ca);
    ch_free(cfg->tls_client_crl);
    ch_free(cfg->tls_ca_bundle);
    ch_free(cfg->rtsps_listen);
    ch_free(cfg->rtsps_public_url);
    memset(cfg, 0, sizeof(*cfg));
}

void ch_config_dump(const ch_config_t *cfg, ch_buf_t *out)
{
    static const char *levels[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(ch__config_keys); i++) {
        const ch_config_key_t *k = &ch__config_keys[i];
        const char *base = (const char *)cfg + k->offset;
        switch (k->type) {
        case CH_CFG_STR:
        case CH_CFG_LISTEN: {
            const char *v = *(char *const *)(const void *)base;
            if (strcmp(k->name, "store.url") == 0 && v != NULL && strstr(v, "@") != NULL) {
                v = "(set; hidden: it holds credentials)";
            }
            if ((strcmp(k->name, "metrics.token") == 0 ||
                 strcmp(k->name, "alert.webhook_secret") == 0) &&
                v != NULL) {
                v = "(set; hidden)";
            }
            if (strcmp(k->name, "mqtt.password") == 0 && v != NULL) {
                v = "(set; hidden)";
            }
            ch_buf_appendf(out, "%s=%s\n", k->name, v ? v : "");
            break;
        }
        case CH_CFG_LEVEL:
            ch_buf_appendf(out, "%s=%s\n", k->name,
                           levels[*(const ch_log_level_t *)(const void *)base]);
            break;
        case CH_CFG_UINT:
            ch_buf_appendf(out, "%s=%llu\n", k->name,
                           (unsigned long long)*(const uint64_t *)(const void *)base);
            break;
        }
    }
}
