/* Unit tests of api/event_json.c: the event engine's views as the API writes them, byte for
 * byte (the console and the integration tests read these bytes): the keys in their order,
 * times as RFC 3339 text or null, the stored JSON texts (a grant's why, an event's path) put in
 * as they are, the token and URLs only when the view holds them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/event_json.h"

#define T1 1767225600123LL /* 2026-01-01T00:00:00.123Z */

/* The compact text of j (as the API sends it), j released. */
static char *text_of(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(j);
    assert_non_null(s);
    return s;
}

static void assert_json(json_t *j, const char *want)
{
    char *s = text_of(j);
    assert_string_equal(s, want);
    free(s);
}

/* A grant of camera 7 (provider 3), its camera chosen for why. */
static void make_grant(ch_event_grant_view_t *g, int64_t id, const char *status, const char *why)
{
    memset(g, 0, sizeof(*g));
    g->grant.id = id;
    g->grant.event_id = 5;
    g->grant.camera_id = 7;
    g->grant.agency_id = 2;
    g->grant.provider_id = 3;
    g->grant.status = ch_strdup(status);
    g->grant.why = why != NULL ? ch_strdup(why) : NULL;
    g->grant.expires_at = T1 + 600000;
}

static void test_a_grant_with_its_token_and_an_ended_one(void **state)
{
    (void)state;
    ch_event_grant_view_t g;
    make_grant(&g, 11, "active", "{\"score\":0.5,\"visibility\":\"in_fov\"}");
    g.token = ch_strdup("v1.AAA.BBB");
    g.rtsp_url = ch_strdup("rtsp://h:8554/cameras/7?token=v1.AAA.BBB");
    g.ws_url = ch_strdup("ws://h:8080/api/v1/cameras/7/live?token=v1.AAA.BBB");
    assert_json(
        ch_api__grant_json(&g),
        "{\"id\":11,\"camera_id\":7,\"provider_id\":3,\"status\":\"active\","
        "\"expires_at\":\"2026-01-01T00:10:00.123Z\","
        "\"reason\":{\"score\":0.5,\"visibility\":\"in_fov\"},"
        "\"token\":\"v1.AAA.BBB\",\"rtsp_url\":\"rtsp://h:8554/cameras/7?token=v1.AAA.BBB\","
        "\"ws_url\":\"ws://h:8080/api/v1/cameras/7/live?token=v1.AAA.BBB\"}");
    ch_event_grant_view_fini(&g);

    /* Ended: when, by whom, why (null when none); no token; a why that is not JSON is null. */
    make_grant(&g, 12, "revoked", "not json");
    g.grant.ended_at = T1 + 1000;
    g.grant.ended_by = ch_strdup("user:kim");
    assert_json(ch_api__grant_json(&g),
                "{\"id\":12,\"camera_id\":7,\"provider_id\":3,\"status\":\"revoked\","
                "\"expires_at\":\"2026-01-01T00:10:00.123Z\",\"reason\":null,"
                "\"ended_at\":\"2026-01-01T00:00:01.123Z\",\"ended_by\":\"user:kim\","
                "\"end_reason\":null}");
    ch_event_grant_view_fini(&g);

    /* Pending: no expiry yet. */
    make_grant(&g, 13, "pending", NULL);
    g.grant.expires_at = 0;
    assert_json(ch_api__grant_json(&g),
                "{\"id\":13,\"camera_id\":7,\"provider_id\":3,\"status\":\"pending\","
                "\"expires_at\":null,\"reason\":null}");
    ch_event_grant_view_fini(&g);
}

/* An event at a place, open, with one grant. */
static void make_event(ch_event_view_t *v)
{
    memset(v, 0, sizeof(*v));
    ch_event_t *e = &v->event;
    e->id = 5;
    e->service = ch_strdup("112-center");
    e->agency_id = 2;
    e->status = ch_strdup("active");
    e->located = 1;
    e->lat = 37.5665;
    e->lon = 126.978;
    e->incident = ch_strdup("112-1");
    e->duration_s = 600;
    e->expires_at = T1 + 600000;
    e->extensions = 1;
    e->ptz = 1;
    e->basis_code = ch_strdup("PIPA-18-2-7");
    e->created_by = ch_strdup("apikey:1");
    e->created_at = T1;
    v->basis_text = ch_strdup("개인정보 보호법 제18조 제2항 제7호");
    v->grants = ch_calloc(1, sizeof(*v->grants));
    v->ngrants = 1;
    make_grant(&v->grants[0], 11, "active", "{\"visibility\":\"needs_pan\"}");
}

static void test_an_event_with_its_grants(void **state)
{
    (void)state;
    ch_event_view_t v;
    make_event(&v);
    assert_json(ch_api__event_json(&v),
                "{\"id\":5,\"service\":\"112-center\",\"agency_id\":2,\"status\":\"active\","
                "\"location\":{\"lat\":37.5665,\"lon\":126.978},\"path\":null,"
                "\"incident\":\"112-1\",\"reason\":null,\"case\":null,\"duration_s\":600,"
                "\"expires_at\":\"2026-01-01T00:10:00.123Z\",\"extensions\":1,\"ptz\":true,"
                "\"export\":false,\"legal_basis\":{\"code\":\"PIPA-18-2-7\","
                "\"text\":\"개인정보 보호법 제18조 제2항 제7호\"},\"created_by\":\"apikey:1\","
                "\"decided_by\":null,\"decision_note\":null,\"closed_by\":null,"
                "\"close_reason\":null,\"closed_at\":null,"
                "\"created_at\":\"2026-01-01T00:00:00.123Z\",\"grants\":[{\"id\":11,"
                "\"camera_id\":7,\"provider_id\":3,\"status\":\"active\","
                "\"expires_at\":\"2026-01-01T00:10:00.123Z\","
                "\"reason\":{\"visibility\":\"needs_pan\"}}]}");
    ch_event_view_fini(&v);

    /* Along a path, closed, its service gone from the services file, no grants. */
    memset(&v, 0, sizeof(v));
    ch_event_t *e = &v.event;
    e->id = 6;
    e->service = ch_strdup("old-service");
    e->agency_id = 2;
    e->status = ch_strdup("closed");
    e->path = ch_strdup("{\"type\":\"LineString\",\"coordinates\":[[126.9,37.5],[127,37.6]]}");
    e->reason = ch_strdup("chase");
    e->case_name = ch_strdup("c-9");
    e->export_allowed = 1;
    e->created_by = ch_strdup("user:park");
    e->decided_by = ch_strdup("user:kim");
    e->decision_note = ch_strdup("ok");
    e->closed_by = ch_strdup("user:park");
    e->close_reason = ch_strdup("done");
    e->closed_at = T1 + 2000;
    e->created_at = T1;
    assert_json(ch_api__event_json(&v),
                "{\"id\":6,\"service\":\"old-service\",\"agency_id\":2,\"status\":\"closed\","
                "\"location\":null,\"path\":{\"type\":\"LineString\",\"coordinates\":"
                "[[126.9,37.5],[127,37.6]]},\"incident\":null,\"reason\":\"chase\","
                "\"case\":\"c-9\",\"duration_s\":0,\"expires_at\":null,\"extensions\":0,"
                "\"ptz\":false,\"export\":true,\"legal_basis\":{\"code\":null,\"text\":null},"
                "\"created_by\":\"user:park\",\"decided_by\":\"user:kim\","
                "\"decision_note\":\"ok\",\"closed_by\":\"user:park\",\"close_reason\":\"done\","
                "\"closed_at\":\"2026-01-01T00:00:02.123Z\","
                "\"created_at\":\"2026-01-01T00:00:00.123Z\",\"grants\":[]}");
    ch_event_view_fini(&v);
}

static void test_a_page_is_its_events_in_order(void **state)
{
    (void)state;
    ch_event_page_t p;
    memset(&p, 0, sizeof(p));
    assert_json(ch_api__event_items_json(&p), "[]");
    p.items = ch_calloc(2, sizeof(*p.items));
    p.count = 2;
    make_event(&p.items[0]);
    make_event(&p.items[1]);
    p.items[1].event.id = 4;
    json_t *items = ch_api__event_items_json(&p);
    assert_int_equal(json_array_size(items), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *one = ch_api__event_json(&p.items[i]);
        assert_true(json_equal(json_array_get(items, i), one));
        json_decref(one);
    }
    json_decref(items);
    ch_event_page_fini(&p);
    assert_null(p.items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_grant_with_its_token_and_an_ended_one),
        cmocka_unit_test(test_an_event_with_its_grants),
        cmocka_unit_test(test_a_page_is_its_events_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
