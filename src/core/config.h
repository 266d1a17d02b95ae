/*
 * Configuration: one struct, filled from (lowest to highest precedence) built-in defaults,
 * an INI file (inih), CCTVHUB_* environment variables, and command-line flags, then
 * validated. A bad value stops the start with a message that names the key and where it came
 * from ('/etc/cctvhub.ini:7: http.max_body: "lots" is not an integer in [0, 4294967296]').
 *
 * Keys (INI section.key / environment / default):
 *   hub.data_dir               CCTVHUB_DATA_DIR               ./var
 *   store.url                  CCTVHUB_STORE_URL              sqlite:<data_dir>/cctvhub.db
 *   log.level                  CCTVHUB_LOG_LEVEL              info          (reloadable)
 *   http.listen                CCTVHUB_HTTP_LISTEN            127.0.0.1:8080
 *   http.max_head              CCTVHUB_HTTP_MAX_HEAD          16384         (reloadable)
 *   http.max_target            CCTVHUB_HTTP_MAX_TARGET        8192          (reloadable)
 *   http.max_headers           CCTVHUB_HTTP_MAX_HEADERS       64            (reloadable)
 *   http.max_body              CCTVHUB_HTTP_MAX_BODY          1048576       (reloadable)
 *   http.request_timeout_ms    CCTVHUB_HTTP_REQUEST_TIMEOUT_MS 10000        (reloadable)
 *   http.idle_timeout_ms       CCTVHUB_HTTP_IDLE_TIMEOUT_MS   60000         (reloadable)
 *   http.max_connections       CCTVHUB_HTTP_MAX_CONNECTIONS   10000         (reloadable)
 *   http.max_connections_per_addr CCTVHUB_HTTP_MAX_CONNECTIONS_PER_ADDR 64   (reloadable; 0 off)
 *   http.fd_reserve            CCTVHUB_HTTP_FD_RESERVE        32
 *   import.max_bytes           CCTVHUB_IMPORT_MAX_BYTES       268435456
 *   hub.node_id                CCTVHUB_NODE_ID                cctvhub
 *   audit.checkpoint_records   CCTVHUB_AUDIT_CHECKPOINT_RECORDS 1000
 *   audit.checkpoint_ms        CCTVHUB_AUDIT_CHECKPOINT_MS    1000
 *   audit.refusal_interval_ms  CCTVHUB_AUDIT_REFUSAL_INTERVAL_MS 60000
 *   audit.reserve_bytes        CCTVHUB_AUDIT_RESERVE_BYTES    4194304
 *   policy.services_file       CCTVHUB_SERVICES_FILE          the shipped one (reloadable)
 *   auth.session_idle_s        CCTVHUB_AUTH_SESSION_IDLE_S    1800
 *   auth.session_max_s         CCTVHUB_AUTH_SESSION_MAX_S     43200
 *   auth.max_failed_logins     CCTVHUB_AUTH_MAX_FAILED_LOGINS 5
 *   auth.lockout_s             CCTVHUB_AUTH_LOCKOUT_S         900
 *   auth.max_failures_per_address CCTVHUB_AUTH_MAX_FAILURES_PER_ADDRESS 20
 *   auth.cookie_secure         CCTVHUB_AUTH_COOKIE_SECURE     0
 *   auth.hash_threads          CCTVHUB_AUTH_HASH_THREADS      2
 *   auth.max_hashes_in_flight  CCTVHUB_AUTH_MAX_HASHES_IN_FLIGHT 16
 *   auth.max_hashes_per_address CCTVHUB_AUTH_MAX_HASHES_PER_ADDRESS 2
 *   http.trusted_proxies       CCTVHUB_HTTP_TRUSTED_PROXIES   (none)
 *   rtsp.listen                CCTVHUB_RTSP_LISTEN            127.0.0.1:8554
 *   relay.max_unauthorized     CCTVHUB_RELAY_MAX_UNAUTHORIZED 256
 *   relay.max_unauthorized_per_addr CCTVHUB_RELAY_MAX_UNAUTHORIZED_PER_ADDR 32
 *   relay.auth_timeout_s       CCTVHUB_RELAY_AUTH_TIMEOUT_S   10
 *   relay.fd_reserve           CCTVHUB_RELAY_FD_RESERVE       128
 *   event.bounds               CCTVHUB_EVENT_BOUNDS           124.5,33.0,132.0,38.7
 *   event.grace_s              CCTVHUB_EVENT_GRACE_S          30
 *   http.web_root              CCTVHUB_HTTP_WEB_ROOT          <source tree>/web when it exists
 *   console.tile_url           CCTVHUB_CONSOLE_TILE_URL       (none)
 *   metrics.token              CCTVHUB_METRICS_TOKEN          (none)
 *   mqtt.url                   CCTVHUB_MQTT_URL               (none: MQTT off)
 *   mqtt.host                  CCTVHUB_MQTT_HOST              (none)
 *   mqtt.port                  CCTVHUB_MQTT_PORT              1883, 8883 with TLS
 *   mqtt.username              CCTVHUB_MQTT_USERNAME          (none)
 *   mqtt.password              CCTVHUB_MQTT_PASSWORD          (none; never logged or dumped)
 *   mqtt.tls_ca                CCTVHUB_MQTT_TLS_CA            (none)
 *   mqtt.tls_cert              CCTVHUB_MQTT_TLS_CERT          (none)
 *   mqtt.tls_key               CCTVHUB_MQTT_TLS_KEY           (none)
 *   mqtt.client_id             CCTVHUB_MQTT_CLIENT_ID         cctvhub-<hub.node_id>
 *   mqtt.topic_prefix          CCTVHUB_MQTT_TOPIC_PREFIX      cctvhub
 *   mqtt.heartbeat_s           CCTVHUB_MQTT_HEARTBEAT_S       60
 *   alert.offline_after_s      CCTVHUB_ALERT_OFFLINE_AFTER_S  300
 *   alert.provider_down_count  CCTVHUB_ALERT_PROVIDER_DOWN_COUNT 10       (0: rule off)
 *   alert.bell_radius_m        CCTVHUB_ALERT_BELL_RADIUS_M    300
 *   alert.webhook_url          CCTVHUB_ALERT_WEBHOOK_URL      (none)
 *   alert.webhook_max_tries    CCTVHUB_ALERT_WEBHOOK_MAX_TRIES 8
 *   alert.webhook_secret       CCTVHUB_ALERT_WEBHOOK_SECRET   (none: posts unsigned; never logged)
 *   tls.cert                   CCTVHUB_TLS_CERT               (none: TLS off)
 *   tls.key                    CCTVHUB_TLS_KEY                (none: in tls.cert)
 *   tls.client_ca              CCTVHUB_TLS_CLIENT_CA          (none: no client certificates)
 *   tls.client_crl             CCTVHUB_TLS_CLIENT_CRL         (none)
 *   tls.ca_bundle              CCTVHUB_TLS_CA_BUNDLE          (none: the system's CAs)
 *   tls.handshake_timeout_ms   CCTVHUB_TLS_HANDSHAKE_TIMEOUT_MS 10000
 *   http.tls                   CCTVHUB_HTTP_TLS               1 (with tls.cert: HTTPS)
 *   http.allow_plaintext       CCTVHUB_HTTP_ALLOW_PLAINTEXT   0
 *   http.hsts_max_age_s        CCTVHUB_HTTP_HSTS_MAX_AGE_S    31536000
 *   rtsp.allow_plaintext       CCTVHUB_RTSP_ALLOW_PLAINTEXT   0
 *   rtsps.listen               CCTVHUB_RTSPS_LISTEN           with tls.cert: rtsp.listen's host,
 *                                                             port 322; "none": off
 *   rtsps.public_url           CCTVHUB_RTSPS_PUBLIC_URL       (none)
 *
 * TLS (tls.*): with tls.cert (the hub's certificate chain, PEM; tls.key its key) the HTTP
 * listener speaks HTTPS (unless http.tls = 0) and the relay listens for RTSPS on rtsps.listen;
 * tls.client_ca (and tls.client_crl) are the CAs of agencies' client certificates, asked for
 * on HTTPS and RTSPS; tls.ca_bundle is what the hub checks the servers it calls against
 * (cameras over rtsps://, webhooks over https://). A plaintext listener (http without TLS,
 * rtsp.listen) on an address other than loopback refuses to start unless its allow_plaintext
 * is 1. The certificate files are read again on SIGHUP.
 *
 * hub.node_id is the "node" of audit records; a signed audit checkpoint is written every
 * audit.checkpoint_records records or audit.checkpoint_ms milliseconds; policy.services_file
 * is the services file (etc/services.json), read again on SIGHUP. Its default is the file the
 * hub ships with, found at <exe dir>/../etc/cctvhub/services.json, <exe dir>/../etc/
 * services.json or the source tree's etc/services.json (services_file_default then says so);
 * "none" loads none (every event refused). The configuration file must be a regular file.
 * http.web_root is the
 * directory of the operator console's files (index.html, ...), served at / and /console/;
 * "none" serves none. Its default is the web/ directory of the source tree this binary was
 * built from, when that directory exists (a developer's or `make demo`'s hub), else none.
 * console.tile_url is the base map's tile URL template given to the console
 * ("https://tiles.example.go.kr/{z}/{x}/{y}.png"); none: a plain background.
 * http.trusted_proxies lists the addresses or networks ("10.0.0.5, 10.1.0.0/16, fd00::/8") of
 * the reverse proxies in front of the hub: a request from one of them is taken to come from
 * the right-most address of its X-Forwarded-For that is not itself a trusted proxy. Without
 * it X-Forwarded-For is ignored.
 */
#ifndef CH_CONFIG_H
#define CH_CONFIG_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ch_config {
    char *config_file; /* the INI file read, or NULL */
    char *data_dir;
    char *store_url;
    ch_log_level_t log_level;
    char *http_listen;
    uint64_t http_max_head;
    uint64_t http_max_target;
    uint64_t http_max_headers;
    uint64_t http_max_body;
    uint64_t http_request_timeout_ms;
    uint64_t http_idle_timeout_ms;
    uint64_t http_max_connections;
    uint64_t http_max_connections_per_addr; /* from one address (IPv6: /64); 0: no cap */
    uint64_t http_fd_reserve; /* HTTP accepts no connection on one of the top this many fds */
    uint64_t import_max_bytes;
    char *node_id;
    uint64_t audit_checkpoint_records;
    uint64_t audit_checkpoint_ms;
    uint64_t audit_refusal_interval_ms; /* refusals of one peer and kind: one record per interval */
    uint64_t audit_reserve_bytes;       /* disk kept for records that end access */
    char *services_file;                /* the services (etc/services.json), or NULL for none */
    int services_file_default; /* 1: services_file is the shipped one, found, not configured */
    uint64_t auth_session_idle_s;
    uint64_t auth_session_max_s;
    uint64_t auth_max_failed_logins;
    uint64_t auth_lockout_s;
    uint64_t auth_max_failures_per_address;
    uint64_t auth_cookie_secure; /* 0 or 1 */
    uint64_t auth_hash_threads;
    uint64_t auth_max_hashes_in_flight;
    uint64_t auth_max_hashes_per_address;
    char *http_trusted_proxies; /* as given; ch_config_parse_cidrs reads it; NULL: none */
    char *rtsp_listen;          /* the relay's RTSP address; grants' rtsp_url point there */
    char *event_bounds;         /* "min_lon,min_lat,max_lon,max_lat": the area served */
    uint64_t event_grace_s;     /* a moving subject's cameras behind it stay this long */
    uint64_t relay_loops;       /* media threads; 0: one per core */
    uint64_t relay_prewarm;     /* 1: a new grant starts its camera's pull at once */
    uint64_t relay_idle_stop_s; /* a pull without viewers stops after this */
    uint64_t relay_stall_s;     /* no packet for this long: reconnect */
    uint64_t relay_backoff_max_s;
    uint64_t relay_viewer_budget_kb; /* a viewer this far behind skips to the newest keyframe */
    char *relay_pull_transport;      /* "tcp" (interleaved) or "udp" (TCP when refused) */
    uint64_t relay_max_unauthorized; /* viewers' connections not yet authorized, in all */
    uint64_t relay_max_unauthorized_per_addr; /* the same from one address (IPv6: one /64) */
    uint64_t relay_auth_timeout_s; /* a connection not authorized within this is closed */
    uint64_t relay_fd_reserve;     /* the relay accepts on none of the top this many fds */
    char *rtsp_public_url;  /* "rtsp://cctv.example.go.kr:8554": grants' rtsp_url base, or NULL */
    char *http_public_url;  /* "https://cctv.example.go.kr": grants' ws_url base (wss), or NULL */
    char *web_root;         /* the console's files, or NULL for none */
    char *console_tile_url; /* the console's base map tiles, or NULL for none */
    char *metrics_token;    /* Prometheus scrapers' Bearer token for GET /metrics, or NULL */
    uint64_t health_probe_interval;    /* s between probes of a camera; 0: no probes */
    uint64_t health_probe_concurrency; /* most probes at once */
    uint64_t health_probe_timeout_s;   /* one probe's deadline */
    uint64_t health_fail_threshold;    /* failed probes in a row before offline */
    uint64_t health_min_fps;           /* a live pull under this is degraded; 0: off */
    uint64_t health_keyframe_max_s;    /* a live pull without a keyframe this long is degraded */
    uint64_t health_rescan_s;          /* the camera set is read again this often */
    /* The MQTT device watch (no mqtt.url nor mqtt.host: off). mqtt.url is split into
     * mqtt_host, mqtt_port and mqtt_tls at load; mqtt_url keeps the text as given. */
    char *mqtt_url;
    char *mqtt_host;
    uint64_t mqtt_port; /* 0 until load: then 1883, or 8883 with TLS */
    uint64_t mqtt_tls;  /* 1: mqtts:// or a tls_ca */
    char *mqtt_username;
    char *mqtt_password; /* never logged, never dumped */
    char *mqtt_tls_ca;
    char *mqtt_tls_cert;
    char *mqtt_tls_key;
    char *mqtt_client_id;
    char *mqtt_topic_prefix;
    uint64_t mqtt_heartbeat_s;
    /* Alerts. */
    uint64_t alert_offline_after_s;
    uint64_t alert_provider_down_count; /* 0: the rule is off */
    uint64_t alert_bell_radius_m;
    char *alert_webhook_url; /* http://host[:port]/path, or NULL */
    uint64_t alert_webhook_max_tries;
    char *alert_webhook_secret; /* signs each post (HMAC-SHA256), or NULL */
    /* TLS (see above). */
    char *tls_cert;
    char *tls_key;
    char *tls_client_ca;
    char *tls_client_crl;
    char *tls_ca_bundle;
    uint64_t tls_handshake_timeout_ms;
    uint64_t http_tls;             /* 1: HTTPS when tls_cert is set */
    uint64_t http_allow_plaintext; /* 1: plaintext HTTP beyond loopback is allowed */
    uint64_t http_hsts_max_age_s;  /* Strict-Transport-Security on HTTPS answers; 0: none */
    uint64_t rtsp_allow_plaintext; /* 1: rtsp.listen beyond loopback is allowed */
    char *rtsps_listen;            /* the relay's RTSPS address, or NULL (off) */
    char *rtsps_public_url;        /* "rtsps://cctv.example.go.kr:322": grants' base, or NULL */
} ch_config_t;

/* Whether TLS is on for the HTTP listener (tls.cert set and http.tls). */
int ch_config_http_tls(const ch_config_t *cfg);
/* Whether the address of a listen string ("0.0.0.0:8080") is loopback (127/8, ::1). */
int ch_config_listen_is_loopback(const char *listen);

/* One command-line override: key is the dotted name ("http.listen"). */
typedef struct ch_config_override {
    const char *key;
    const char *value;
} ch_config_override_t;

/*
 * Loads the configuration into cfg (which the caller then releases with ch_config_fini).
 * file may be NULL (no INI file). envp is the environment (NULL-terminated "K=V" strings; NULL
 * means none). overrides are applied last. On error returns CH_EINVAL and sets *err to a
 * message naming the key and its origin (free it with ch_free); cfg is then left finalised.
 */
int ch_config_load(ch_config_t *cfg, const char *file, char *const *envp,
                   const ch_config_override_t *overrides, size_t n_overrides,
                   char **err) CH_MUST_CHECK;
void ch_config_fini(ch_config_t *cfg);

/* Whether key ("log.level") can change on SIGHUP without a restart. */
int ch_config_key_reloadable(const char *key);

/* Writes "key=value" lines of the effective configuration (for `--print-config` and logs). */
void ch_config_dump(const ch_config_t *cfg, ch_buf_t *out);

/* Splits "ADDR:PORT" or "[v6]:PORT" into host and port; 0 or CH_EINVAL. host must hold 64. */
int ch_config_parse_listen(const char *s, char host[64], int *port) CH_MUST_CHECK;

/* Splits mqtt.url ("mqtt://broker:1883", "mqtts://broker") into host (host_cap bytes), port
 * (the scheme's default when none) and tls; 0 or CH_EINVAL (another scheme, userinfo, a
 * path, a bad port). */
int ch_config_parse_mqtt_url(const char *s, char *host, size_t host_cap, int *port,
                             int *tls) CH_MUST_CHECK;

/* Splits an http:// or https://host[:port][/path] URL (alert.webhook_url) into host, port (80
 * or 443 when none), *path (pointing into s; "/" when none) and *tls (https); 0 or CH_EINVAL
 * (another scheme, userinfo, an IPv6 literal, spaces or controls, a bad port). */
int ch_config_parse_http_url(const char *s, char *host, size_t host_cap, int *port,
                             const char **path, int *tls) CH_MUST_CHECK;

/* One network: an address and its prefix length. IPv4 is held as IPv4-mapped IPv6
 * (::ffff:a.b.c.d, prefix + 96), so one comparison serves both families. */
typedef struct ch_cidr {
    uint8_t addr[16];
    unsigned prefix; /* 0..128 */
} ch_cidr_t;

#define CH_CIDR_MAX 64

/* Parses one IP address (IPv4 dotted, or IPv6, optionally in brackets; no port) of n bytes
 * into 16 bytes (IPv4 mapped as above). 0 or CH_EINVAL. */
int ch_ip_parse(const char *s, size_t n, uint8_t out[16]) CH_MUST_CHECK;
/* 1 when addr is in one of the n networks. */
int ch_cidr_contains(const ch_cidr_t *nets, size_t n, const uint8_t addr[16]);
/* Parses a comma-separated list of addresses and networks ("10.0.0.5, 10.1.0.0/16, ::1,
 * fd00::/8"; http.trusted_proxies) into out (at most cap). The count, or CH_EINVAL (a bad
 * address or prefix, an empty item, more than cap). */
int ch_config_parse_cidrs(const char *s, ch_cidr_t *out, size_t cap) CH_MUST_CHECK;

/* Parses "min_lon,min_lat,max_lon,max_lat" (event.bounds) into out in that order. 0 or
 * CH_EINVAL (not four numbers, out of range, or min >= max). */
int ch_config_parse_bounds(const char *value, double out[4]) CH_MUST_CHECK;

#endif /* CH_CONFIG_H */
