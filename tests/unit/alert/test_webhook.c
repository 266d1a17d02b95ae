/*
 * Unit tests of the alert webhook (webhook.c over net's client and connection) on a real loop
 * and 127.0.0.1, an alert raised on a real SQLite store and posted to a receiver on the same
 * loop: one that answers 200 (delivered), one that stalls after reading the post (cut by the
 * try's deadline) and one whose answer head never ends (cut by the connection's read buffer,
 * long before the deadline). No hostile receiver crashes the webhook or holds a try past its
 * deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../loopback.h"
#include "alert/alert.h"

enum { RECV_OK = 0, RECV_STALL = 1, RECV_ENDLESS = 2 };

static void recv_read(loopback_peer_t *r, uv_stream_t *s)
{
    if (r->answers > 0 || strstr(r->in, "\r\n\r\n") == NULL || r->kind == RECV_STALL) {
        return; /* the body follows the head; a stalling receiver never answers */
    }
    r->answers++;
    if (r->kind == RECV_OK) {
        static char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        uv_buf_t out = uv_buf_init(ok, sizeof(ok) - 1);
        assert_int_equal(uv_try_write(s, &out, 1), (int)sizeof(ok) - 1);
    } else {
        loopback_send_endless(r, s, "HTTP/1.1 200 OK\r\nX-Endless: ");
    }
}

static json_int_t stat_of(const ch_alert_webhook_t *wh, const char *key)
{
    json_t *s = ch_alert_webhook_stats(wh);
    json_int_t v = json_integer_value(json_object_get(s, key));
    json_decref(s);
    return v;
}

/* Raises one alert, posted with one try of timeout_ms to a receiver of kind; *delivered and
 * *dropped say how it ended, *ms how long it took. */
static void post_one(int kind, uint64_t timeout_ms, json_int_t *delivered, json_int_t *dropped,
                     uint64_t *ms)
{
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/ch_webhook_test_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    char url[320];
    snprintf(url, sizeof(url), "sqlite:%s/hub.db", dir);
    char *err = NULL;
    ch_store_t *st = NULL;
    assert_int_equal(ch_store_open(url, &st, &err), 0);
    ch_agency_t ag = {0};
    ag.name = "중구 통합관제센터";
    ag.kind = "provider";
    ag.level = "district";
    ag.type = "district-center";
    assert_int_equal(ch_store_agency_create(st, &ag), 0);
    ch_alert_config_t acfg = {.offline_after_ms = 0, .provider_down_count = 0};
    ch_alert_engine_t *eng = NULL;
    assert_int_equal(ch_alert_new(st, &acfg, &eng), 0);

    uv_loop_t loop;
    uv_loop_init(&loop);
    loopback_peer_t r;
    int port = loopback_listen(&loop, &r, kind, recv_read);
    char hook[64];
    snprintf(hook, sizeof(hook), "http://127.0.0.1:%d/hooks/cctv", port);
    ch_alert_webhook_config_t wcfg = {.url = hook, .max_tries = 1, .timeout_ms = timeout_ms};
    ch_alert_webhook_t *wh = NULL;
    assert_int_equal(ch_alert_webhook_new(&loop, eng, &wcfg, &wh), 0);

    uint64_t t0 = uv_now(&loop);
    ch_alert_camera_state(eng, 11, ag.id, "online", "offline", ch_time_now_ms(), "no answer");
    ch_alert_tick(eng);
    while (stat_of(wh, "delivered") + stat_of(wh, "dropped") == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_update_time(&loop);
    *ms = uv_now(&loop) - t0;
    *delivered = stat_of(wh, "delivered");
    *dropped = stat_of(wh, "dropped");
    assert_true(r.accepted);

    ch_alert_webhook_close(wh);
    loopback_close(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    ch_alert_free(eng);
    ch_store_close(st);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_a_receiver_that_answers_200_gets_the_alert(void **state)
{
    (void)state;
    json_int_t delivered, dropped;
    uint64_t ms;
    post_one(RECV_OK, 5000, &delivered, &dropped, &ms);
    assert_int_equal(delivered, 1);
    assert_int_equal(dropped, 0);
}

static void test_a_receiver_that_stalls_is_cut_by_the_deadline(void **state)
{
    (void)state;
    json_int_t delivered, dropped;
    uint64_t ms;
    post_one(RECV_STALL, 500, &delivered, &dropped, &ms);
    assert_int_equal(delivered, 0);
    assert_int_equal(dropped, 1);
    assert_true(ms >= 450 && ms < 4000);
}

static void test_a_receiver_with_an_endless_head_is_cut_by_the_read_buffer(void **state)
{
    (void)state;
    json_int_t delivered, dropped;
    uint64_t ms;
    post_one(RECV_ENDLESS, 20000, &delivered, &dropped, &ms);
    assert_int_equal(delivered, 0);
    assert_int_equal(dropped, 1);
    assert_true(ms < 10000); /* not the deadline */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_receiver_that_answers_200_gets_the_alert),
        cmocka_unit_test(test_a_receiver_that_stalls_is_cut_by_the_deadline),
        cmocka_unit_test(test_a_receiver_with_an_endless_head_is_cut_by_the_read_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
