/* Unit tests of configuration: precedence, validation messages that name the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

static char *write_ini(const char *text)
{
    char *path = ch_strdup("/tmp/ch_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults_listen_on_loopback_8080(void **state)
{
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, NULL, 0, &err), 0);
    assert_string_equal(cfg.http_listen, "127.0.0.1:8080");
    assert_string_equal(cfg.data_dir, "./var");
    assert_string_equal(cfg.store_url, "sqlite:./var/cctvhub.db");
    ch_config_fini(&cfg);
}

/* Nothing in clear beyond loopback unless a listener says so; TLS keys need tls.cert; with a
 * certificate the RTSPS listener defaults to rtsp.listen's host, port 322. */
static void test_plaintext_stays_on_loopback_and_tls_keys_go_together(void **state)
{
    (void)state;
    ch_config_t cfg;
    char *err = NULL;
    ch_config_override_t wide[] = {{"http.listen", "0.0.0.0:8080"}};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, wide, 1, &err), CH_EINVAL);
    assert_non_null(strstr(err, "http.listen: 0.0.0.0:8080 would serve plaintext"));
    ch_free(err);
    ch_config_override_t allowed[] = {{"http.listen", "0.0.0.0:8080"},
                                      {"http.allow_plaintext", "1"}};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, allowed, 2, &err), 0);
    assert_false(ch_config_http_tls(&cfg));
    assert_null(cfg.rtsps_listen);
    ch_config_fini(&cfg);
    ch_config_override_t rtsp[] = {{"rtsp.listen", "[fd00::1]:8554"}};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, rtsp, 1, &err), CH_EINVAL);
    assert_non_null(strstr(err, "rtsp.listen: [fd00::1]:8554 would serve plaintext"));
    ch_free(err);
    ch_config_override_t key[] = {{"tls.key", "/etc/hostname"}};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, key, 1, &err), CH_EINVAL);
    assert_non_null(strstr(err, "tls.key: set, but tls.cert is not"));
    ch_free(err);
    ch_config_override_t missing[] = {{"tls.cert", "/nonexistent/hub.crt"}};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, missing, 1, &err), CH_EINVAL);
    assert_non_null(strstr(err, "tls.cert: /nonexistent/hub.crt is not a readable file"));
    ch_free(err);
    /* Any readable file passes here; its PEM is read when the listener starts. */
    ch_config_override_t on[] = {{"tls.cert", "/etc/hostname"},
                                 {"http.listen", "0.0.0.0:8443"},
                                 {"rtsp.listen", "127.0.0.2:8554"}};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, on, 3, &err), 0);
    assert_true(ch_config_http_tls(&cfg));
    assert_string_equal(cfg.rtsps_listen, "127.0.0.2:322");
    assert_int_equal(cfg.http_hsts_max_age_s, 31536000);
    ch_config_fini(&cfg);
}

static void test_flags_beat_environment_beats_file(void **state)
{
    char *path = write_ini("[http]\nlisten = 127.0.0.1:1111\nmax_body = 2048\n[hub]\n"
                           "data_dir = /tmp/from-file\n");
    char *envp[] = {"CCTVHUB_HTTP_LISTEN=127.0.0.1:2222", "CCTVHUB_HTTP_MAX_BODY=4096", "OTHER=1",
                    NULL};
    ch_config_override_t flags[] = {{"http.listen", "127.0.0.1:3333"}};
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, path, envp, flags, 1, &err), 0);
    assert_string_equal(cfg.http_listen, "127.0.0.1:3333");
    assert_int_equal(cfg.http_max_body, 4096);
    assert_string_equal(cfg.data_dir, "/tmp/from-file");
    assert_string_equal(cfg.store_url, "sqlite:/tmp/from-file/cctvhub.db");
    ch_config_fini(&cfg);
    unlink(path);
    ch_free(path);
}

static void test_bad_value_in_file_names_key_file_and_line(void **state)
{
    char *path = write_ini("[http]\nlisten = 127.0.0.1:1\nmax_body = lots\n");
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, path, NULL, NULL, 0, &err), CH_EINVAL);
    assert_non_null(err);
    assert_non_null(strstr(err, "http.max_body"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, ":3:"));
    ch_free(err);
    unlink(path);
    ch_free(path);
}

static void test_unknown_key_is_an_error(void **state)
{
    char *path = write_ini("[http]\nlisten_port = 80\n");
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, path, NULL, NULL, 0, &err), CH_EINVAL);
    assert_non_null(strstr(err, "http.listen_port"));
    assert_non_null(strstr(err, "unknown key"));
    ch_free(err);
    unlink(path);
    ch_free(path);
}

static void test_bad_environment_value_names_variable(void **state)
{
    char *envp[] = {"CCTVHUB_HTTP_LISTEN=nonsense", NULL};
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, NULL, envp, NULL, 0, &err), CH_EINVAL);
    assert_non_null(strstr(err, "CCTVHUB_HTTP_LISTEN"));
    assert_non_null(strstr(err, "http.listen"));
    ch_free(err);
}

static void test_missing_file_is_an_error(void **state)
{
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, "/nonexistent/cctvhub.ini", NULL, NULL, 0, &err),
                     CH_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/cctvhub.ini"));
    ch_free(err);
}

static void test_listen_parses_ipv4_and_ipv6(void **state)
{
    char host[64];
    int port;
    assert_int_equal(ch_config_parse_listen("0.0.0.0:0", host, &port), 0);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 0);
    assert_int_equal(ch_config_parse_listen("[::1]:8443", host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8443);
    assert_int_equal(ch_config_parse_listen("localhost", host, &port), CH_EINVAL);
    assert_int_equal(ch_config_parse_listen("1.2.3.4:65536", host, &port), CH_EINVAL);
    assert_int_equal(ch_config_parse_listen(":80", host, &port), CH_EINVAL);
}

static void test_only_limits_and_log_level_reload(void **state)
{
    assert_true(ch_config_key_reloadable("log.level"));
    assert_true(ch_config_key_reloadable("http.max_body"));
    assert_false(ch_config_key_reloadable("http.listen"));
    assert_false(ch_config_key_reloadable("store.url"));
}

static void test_console_web_root_defaults_to_the_source_tree_and_none_turns_it_off(void **state)
{
    (void)state;
    ch_config_t cfg;
    char *err = NULL;
    /* The tests are built from a source tree whose web/ has the console's index.html. */
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, NULL, 0, &err), 0);
    assert_non_null(cfg.web_root);
    assert_string_equal(cfg.web_root, CH_SOURCE_DIR "/web");
    assert_null(cfg.console_tile_url);
    ch_config_fini(&cfg);
    char *envp[] = {"CCTVHUB_HTTP_WEB_ROOT=none", NULL};
    assert_int_equal(ch_config_load(&cfg, NULL, envp, NULL, 0, &err), 0);
    assert_null(cfg.web_root);
    ch_config_fini(&cfg);
    ch_config_override_t flag = {"http.web_root", "/srv/console"};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, &flag, 1, &err), 0);
    assert_string_equal(cfg.web_root, "/srv/console");
    assert_false(ch_config_key_reloadable("http.web_root"));
    ch_config_fini(&cfg);
}

static void test_console_tile_url_must_be_an_http_template(void **state)
{
    (void)state;
    ch_config_t cfg;
    char *err = NULL;
    static const char *const good[] = {"https://tiles.example.go.kr/{z}/{x}/{y}.png",
                                       "http://10.0.0.5:8080/osm/{z}/{x}/{y}.png",
                                       "https://{s}.tile.example.org/{z}/{x}/{y}.png?key=abc"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ch_config_override_t flag = {"console.tile_url", good[i]};
        assert_int_equal(ch_config_load(&cfg, NULL, NULL, &flag, 1, &err), 0);
        assert_string_equal(cfg.console_tile_url, good[i]);
        ch_config_fini(&cfg);
    }
    /* Not http(s), no {z}/{x}/{y}, or a character that could end the CSP header it goes in. */
    static const char *const bad[] = {"ftp://x/{z}/{x}/{y}.png",
                                      "javascript:{z}{x}{y}",
                                      "https://x/tiles.png",
                                      "https://x/{z}/{x}.png",
                                      "https://x/{z}/{x}/{y}.png; script-src *",
                                      "https://x/{z}/{x}/{y}.png 'unsafe-inline'",
                                      "https://x/{z}/{x}/{y},.png",
                                      "https://x/{z}/{x}/{y}\".png"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ch_config_override_t flag = {"console.tile_url", bad[i]};
        assert_int_equal(ch_config_load(&cfg, NULL, NULL, &flag, 1, &err), CH_EINVAL);
        assert_non_null(strstr(err, "console.tile_url"));
        ch_free(err);
        err = NULL;
    }
}

static void test_mqtt_is_off_without_a_broker_and_url_splits_into_host_port_tls(void **state)
{
    (void)state;
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, NULL, 0, &err), 0);
    assert_null(cfg.mqtt_host);
    assert_string_equal(cfg.mqtt_topic_prefix, "cctvhub");
    assert_int_equal(cfg.mqtt_heartbeat_s, 60);
    assert_int_equal(cfg.alert_offline_after_s, 300);
    assert_int_equal(cfg.alert_provider_down_count, 10);
    assert_null(cfg.alert_webhook_url);
    ch_config_fini(&cfg);

    char *envp[] = {"CCTVHUB_MQTT_URL=mqtts://broker.example.go.kr", "CCTVHUB_MQTT_USERNAME=hub",
                    "CCTVHUB_MQTT_PASSWORD=s3cret", NULL};
    assert_int_equal(ch_config_load(&cfg, NULL, envp, NULL, 0, &err), 0);
    assert_string_equal(cfg.mqtt_host, "broker.example.go.kr");
    assert_int_equal(cfg.mqtt_port, 8883);
    assert_int_equal(cfg.mqtt_tls, 1);
    assert_string_equal(cfg.mqtt_client_id, "cctvhub-cctvhub");
    ch_buf_t dump;
    ch_buf_init(&dump);
    ch_config_dump(&cfg, &dump);
    assert_null(strstr(dump.data, "s3cret"));
    assert_non_null(strstr(dump.data, "mqtt.password=(set; hidden)"));
    ch_buf_fini(&dump);
    ch_config_fini(&cfg);

    ch_config_override_t flags[] = {{"mqtt.host", "10.0.0.9"}, {"mqtt.port", "11883"}};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, flags, 2, &err), 0);
    assert_int_equal(cfg.mqtt_port, 11883);
    assert_int_equal(cfg.mqtt_tls, 0);
    ch_config_fini(&cfg);
}

static void test_bad_mqtt_and_alert_keys_are_named(void **state)
{
    (void)state;
    static const struct {
        ch_config_override_t flags[2];
        size_t n;
        const char *key;
    } cases[] = {
        {{{"mqtt.url", "tcp://broker"}}, 1, "mqtt.url"},
        {{{"mqtt.url", "mqtt://user:pw@broker"}}, 1, "mqtt.url"},
        {{{"mqtt.url", "mqtt://broker:0"}}, 1, "mqtt.url"},
        {{{"mqtt.url", "mqtt://broker/path"}}, 1, "mqtt.url"},
        {{{"mqtt.url", "mqtt://b"}, {"mqtt.host", "b"}}, 2, "mqtt.host"},
        {{{"mqtt.username", "hub"}}, 1, "mqtt.username"},
        {{{"mqtt.host", "b"}, {"mqtt.password", "x"}}, 2, "mqtt.password"},
        {{{"mqtt.host", "b"}, {"mqtt.tls_key", "/k"}}, 2, "mqtt.tls_cert"},
        {{{"mqtt.host", "b"}, {"mqtt.topic_prefix", "city/#"}}, 2, "mqtt.topic_prefix"},
        {{{"mqtt.host", "b"}, {"mqtt.topic_prefix", "city/"}}, 2, "mqtt.topic_prefix"},
        {{{"mqtt.heartbeat_s", "0"}}, 1, "mqtt.heartbeat_s"},
        {{{"alert.webhook_url", "ftp://hooks.example/x"}}, 1, "alert.webhook_url"},
        {{{"alert.webhook_url", "http://a b/x"}}, 1, "alert.webhook_url"},
        {{{"alert.webhook_max_tries", "0"}}, 1, "alert.webhook_max_tries"},
        {{{"alert.provider_down_count", "-1"}}, 1, "alert.provider_down_count"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ch_config_t cfg;
        char *err = NULL;
        assert_int_equal(ch_config_load(&cfg, NULL, NULL, cases[i].flags, cases[i].n, &err),
                         CH_EINVAL);
        if (strstr(err, cases[i].key) == NULL) {
            fail_msg("case %zu: \"%s\" does not name %s", i, err, cases[i].key);
        }
        ch_free(err);
    }
    char host[64];
    int port = 0;
    const char *path = NULL;
    int tls = -1;
    assert_int_equal(ch_config_parse_http_url("http://10.1.2.3:9000/hooks/cctv?x=1", host,
                                              sizeof(host), &port, &path, &tls),
                     0);
    assert_string_equal(host, "10.1.2.3");
    assert_int_equal(port, 9000);
    assert_string_equal(path, "/hooks/cctv?x=1");
    assert_int_equal(tls, 0);
    assert_int_equal(
        ch_config_parse_http_url("http://ops.example", host, sizeof(host), &port, &path, &tls), 0);
    assert_int_equal(port, 80);
    assert_string_equal(path, "/");
    /* https:// speaks TLS, 443 by default. */
    assert_int_equal(ch_config_parse_http_url("https://ops.example/hook", host, sizeof(host), &port,
                                              &path, &tls),
                     0);
    assert_string_equal(host, "ops.example");
    assert_int_equal(port, 443);
    assert_string_equal(path, "/hook");
    assert_int_equal(tls, 1);
    assert_int_equal(ch_config_parse_http_url("https://ops.example:8443", host, sizeof(host), &port,
                                              &path, &tls),
                     0);
    assert_int_equal(port, 8443);
    assert_int_equal(
        ch_config_parse_http_url("ftp://ops.example/", host, sizeof(host), &port, &path, &tls),
        CH_EINVAL);
}

static void test_metrics_token_is_checked_and_never_shown(void **state)
{
    (void)state;
    ch_config_t cfg;
    char *err = NULL;
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, NULL, 0, &err), 0);
    assert_null(cfg.metrics_token);
    ch_config_fini(&cfg);
    char *envp[] = {"CCTVHUB_METRICS_TOKEN=0123456789abcdef0123456789abcdef", NULL};
    assert_int_equal(ch_config_load(&cfg, NULL, envp, NULL, 0, &err), 0);
    assert_string_equal(cfg.metrics_token, "0123456789abcdef0123456789abcdef");
    ch_buf_t b;
    ch_buf_init(&b);
    ch_config_dump(&cfg, &b);
    assert_null(strstr(b.data, "0123456789abcdef"));
    assert_non_null(strstr(b.data, "metrics.token=(set; hidden)"));
    ch_buf_fini(&b);
    ch_config_fini(&cfg);
    /* Too short, too long, or a character a Bearer header cannot carry: refused, and the
     * message names the key without repeating the secret. */
    char longer[300];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    const char *bad[] = {"short", longer, "has space in it 1234", "quote\"in-it-0123456789",
                         "tab\tin-it-0123456789"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ch_config_override_t flag = {"metrics.token", bad[i]};
        assert_int_equal(ch_config_load(&cfg, NULL, NULL, &flag, 1, &err), CH_EINVAL);
        assert_non_null(strstr(err, "metrics.token"));
        assert_null(strstr(err, bad[i]));
        ch_free(err);
        err = NULL;
    }
    assert_false(ch_config_key_reloadable("metrics.token"));

    /* The webhook's secret: the same rules, hidden the same way, and only with a webhook. */
    char *wenv[] = {"CCTVHUB_ALERT_WEBHOOK_URL=http://127.0.0.1:9/x",
                    "CCTVHUB_ALERT_WEBHOOK_SECRET=whsec-0123456789abcdef", NULL};
    assert_int_equal(ch_config_load(&cfg, NULL, wenv, NULL, 0, &err), 0);
    assert_string_equal(cfg.alert_webhook_secret, "whsec-0123456789abcdef");
    ch_buf_init(&b);
    ch_config_dump(&cfg, &b);
    assert_null(strstr(b.data, "whsec-0123456789abcdef"));
    assert_non_null(strstr(b.data, "alert.webhook_secret=(set; hidden)"));
    ch_buf_fini(&b);
    ch_config_fini(&cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ch_config_override_t flag = {"alert.webhook_secret", bad[i]};
        assert_int_equal(ch_config_load(&cfg, NULL, wenv, &flag, 1, &err), CH_EINVAL);
        assert_non_null(strstr(err, "alert.webhook_secret"));
        assert_null(strstr(err, bad[i]));
        ch_free(err);
        err = NULL;
    }
    char *alone[] = {"CCTVHUB_ALERT_WEBHOOK_SECRET=whsec-0123456789abcdef", NULL};
    assert_int_equal(ch_config_load(&cfg, NULL, alone, NULL, 0, &err), CH_EINVAL);
    assert_non_null(strstr(err, "alert.webhook_secret"));
    assert_null(strstr(err, "whsec-0123456789abcdef"));
    ch_free(err);
}

static void test_trusted_proxies_parse_into_networks(void **state)
{
    (void)state;
    ch_cidr_t nets[CH_CIDR_MAX];
    uint8_t a[16];
    int n = ch_config_parse_cidrs(" 10.0.0.5 ,10.1.0.0/16, ::1, fd00::/8,192.168.7.9/24", nets,
                                  CH_CIDR_MAX);
    assert_int_equal(n, 5);
    static const struct {
        const char *ip;
        int in;
    } cases[] = {
        {"10.0.0.5", 1},        {"10.0.0.6", 0}, {"10.1.255.3", 1},
        {"10.2.0.1", 0},        {"::1", 1},      {"::2", 0},
        {"fd12::9", 1},         {"fe00::1", 0},  {"192.168.7.1", 1},
        {"192.168.8.1", 0},     {"[::1]", 1},    {"::ffff:10.0.0.5", 1},
        {"::ffff:10.0.0.6", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ch_ip_parse(cases[i].ip, strlen(cases[i].ip), a), 0);
        assert_int_equal(ch_cidr_contains(nets, (size_t)n, a), cases[i].in);
    }
    /* /0 holds everything of its family, nothing of the other. */
    n = ch_config_parse_cidrs("0.0.0.0/0", nets, CH_CIDR_MAX);
    assert_int_equal(n, 1);
    assert_int_equal(ch_ip_parse("203.0.113.9", 11, a), 0);
    assert_int_equal(ch_cidr_contains(nets, 1, a), 1);
    assert_int_equal(ch_ip_parse("2001:db8::1", 11, a), 0);
    assert_int_equal(ch_cidr_contains(nets, 1, a), 0);
    static const char *const bad[] = {
        "",
        "10.0.0.1,",
        ",10.0.0.1",
        "10.0.0.1/33",
        "::1/129",
        "10.0.0.1/",
        "10.0.0.1/x",
        "10.0.0.256",
        "host.example",
        "10.0.0.1/-1",
        "10.0.0.0/+8",
        "10.0.0.1:80",
        "1.2.3.4 5.6.7.8",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ch_config_parse_cidrs(bad[i], nets, CH_CIDR_MAX), CH_EINVAL);
    }
    /* More than the cap. */
    assert_int_equal(ch_config_parse_cidrs("::1,::2,::3", nets, 2), CH_EINVAL);
    /* As a key: a bad list stops the start and is named. */
    ch_config_t cfg;
    char *err = NULL;
    ch_config_override_t flag = {"http.trusted_proxies", "10.0.0.0/8, proxy.local"};
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, &flag, 1, &err), CH_EINVAL);
    assert_non_null(strstr(err, "http.trusted_proxies"));
    ch_free(err);
    err = NULL;
    flag.value = "10.0.0.0/8, ::1";
    assert_int_equal(ch_config_load(&cfg, NULL, NULL, &flag, 1, &err), 0);
    assert_string_equal(cfg.http_trusted_proxies, "10.0.0.0/8, ::1");
    assert_int_equal(cfg.auth_hash_threads, 2);
    assert_int_equal(cfg.auth_max_hashes_in_flight, 16);
    assert_int_equal(cfg.auth_max_hashes_per_address, 2);
    ch_config_fini(&cfg);
    char *const envp[] = {"CCTVHUB_AUTH_HASH_THREADS=0", NULL};
    assert_int_equal(ch_config_load(&cfg, NULL, envp, NULL, 0, &err), CH_EINVAL);
    assert_non_null(strstr(err, "CCTVHUB_AUTH_HASH_THREADS"));
    ch_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trusted_proxies_parse_into_networks),
        cmocka_unit_test(test_defaults_listen_on_loopback_8080),
        cmocka_unit_test(test_plaintext_stays_on_loopback_and_tls_keys_go_together),
        cmocka_unit_test(test_flags_beat_environment_beats_file),
        cmocka_unit_test(test_bad_value_in_file_names_key_file_and_line),
        cmocka_unit_test(test_unknown_key_is_an_error),
        cmocka_unit_test(test_bad_environment_value_names_variable),
        cmocka_unit_test(test_missing_file_is_an_error),
        cmocka_unit_test(test_listen_parses_ipv4_and_ipv6),
        cmocka_unit_test(test_only_limits_and_log_level_reload),
        cmocka_unit_test(test_console_web_root_defaults_to_the_source_tree_and_none_turns_it_off),
        cmocka_unit_test(test_console_tile_url_must_be_an_http_template),
        cmocka_unit_test(test_mqtt_is_off_without_a_broker_and_url_splits_into_host_port_tls),
        cmocka_unit_test(test_bad_mqtt_and_alert_keys_are_named),
        cmocka_unit_test(test_metrics_token_is_checked_and_never_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
