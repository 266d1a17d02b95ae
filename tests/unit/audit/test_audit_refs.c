/*
 * Unit tests of the one rule of "which audit records concern object X" (src/audit/refs.c),
 * the rule of GET /api/v1/audit's index and of `cctvhub audit show`: records of every kind the
 * hub writes (registry changes, events, grants, views, alerts, imports, users, API keys,
 * configuration), and which cameras, agencies and events each refers to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "audit/audit.h"

/* One record and the ids it must refer to, per kind (0-terminated; at most 7). */
typedef struct rule_case {
    const char *name;
    const char *json;
    int64_t cameras[8];
    int64_t agencies[8];
    int64_t events[8];
} rule_case_t;

static const rule_case_t cases[] = {
    {"camera.create names its camera and, in details, its agency",
     "{\"actor\":\"user:kim\",\"action\":\"camera.create\",\"object\":\"camera:7\","
     "\"details\":{\"agency_id\":12}}",
     {7},
     {12},
     {0}},
    {"agency.update names only its agency",
     "{\"actor\":\"user:kim\",\"action\":\"agency.update\",\"object\":\"agency:12\","
     "\"details\":null}",
     {0},
     {12},
     {0}},
    {"event.open names its event, its agency and the cameras it asks for",
     "{\"actor\":\"agency:12\",\"action\":\"event.open\",\"object\":\"event:3\","
     "\"details\":{\"agency_id\":12,\"cameras\":[7,8,9],\"service\":\"fire\"}}",
     {7, 8, 9},
     {12},
     {3}},
    {"grant.create names its camera and event in details",
     "{\"actor\":\"user:lee\",\"action\":\"grant.create\",\"object\":\"grant:40\","
     "\"details\":{\"event_id\":3,\"camera_id\":8,\"agency_id\":12,\"grant_id\":40}}",
     {8},
     {12},
     {3}},
    {"view.start by an agency: the actor is not a reference, details.agency_id is",
     "{\"actor\":\"agency:12\",\"action\":\"view.start\",\"object\":\"camera:8\","
     "\"details\":{\"grant_id\":40,\"event_id\":3,\"agency_id\":12,\"peer\":\"10.0.0.9\"}}",
     {8},
     {12},
     {3}},
    {"a view refused to an agency names no agency when details do not",
     "{\"actor\":\"agency:13\",\"action\":\"view.refuse\",\"object\":\"camera:8\","
     "\"details\":{\"status\":403}}",
     {8},
     {0},
     {0}},
    {"a list of cameras holding objects (a bell alert's): only integers are ids",
     "{\"actor\":\"system\",\"action\":\"alert.ack\",\"object\":\"alert:2\","
     "\"details\":{\"cameras\":[{\"id\":5},7],\"agency_id\":4}}",
     {7},
     {4},
     {0}},
    {"an import's agency is a name, not an id",
     "{\"actor\":\"user:kim\",\"action\":\"import.start\",\"object\":\"import:seoul.csv\","
     "\"details\":{\"file\":\"seoul.csv\",\"agency\":\"12\",\"bytes\":300}}",
     {0},
     {0},
     {0}},
    {"a user's creation names the user's agency",
     "{\"actor\":\"local:root\",\"action\":\"user.create\",\"object\":\"user:kim\","
     "\"details\":{\"role\":\"agency\",\"agency_id\":12,\"via\":\"cli\"}}",
     {0},
     {12},
     {0}},
    {"an API key's revocation names the key's agency",
     "{\"actor\":\"user:kim\",\"action\":\"apikey.revoke\",\"object\":\"apikey:9\","
     "\"details\":{\"agency_id\":13,\"via\":\"api\"}}",
     {0},
     {13},
     {0}},
    {"a reload refers to nothing",
     "{\"actor\":\"system\",\"action\":\"config.reload\",\"object\":null,"
     "\"details\":{\"changed\":[\"http.listen\"]}}",
     {0},
     {0},
     {0}},
    {"details.camera, details.agency and details.events count; strings do not",
     "{\"actor\":\"user:x\",\"action\":\"test\",\"object\":\"camera:x7\","
     "\"details\":{\"camera\":5,\"cameras\":[\"6\",6,-1,0],\"agency\":\"12\",\"agencies\":[14],"
     "\"events\":[1,2],\"event_id\":\"3\"}}",
     {5, 6},
     {14},
     {1, 2}},
    {"an object of another kind, and a prefix that only starts alike, refer to nothing",
     "{\"actor\":\"user:x\",\"action\":\"test\",\"object\":\"cameras:7\","
     "\"details\":{\"camera_ids\":[7],\"event\":true}}",
     {0},
     {0},
     {0}},
};

/* The expected ids of a case, counted. */
static size_t count(const int64_t *ids)
{
    size_t n = 0;
    while (n < 8 && ids[n] != 0) {
        n++;
    }
    return n;
}

/* Whether id is among the expected. */
static int expected(const int64_t *ids, int64_t id)
{
    for (size_t i = 0; i < count(ids); i++) {
        if (ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

/* Checks one kind of one record both ways: the ids ch_audit_refs lists are the expected ones,
 * and ch_audit_refers_to says yes exactly for them among every id that appears in any case. */
static void check_kind(const rule_case_t *c, const json_t *rec, ch_audit_kind_t kind,
                       const int64_t *want)
{
    ch_audit_refs_t r = {0};
    ch_audit_refs(rec, kind, &r);
    if (r.n != count(want)) {
        fail_msg("%s: kind %d: %zu ids, expected %zu", c->name, (int)kind, r.n, count(want));
    }
    for (size_t i = 0; i < r.n; i++) {
        if (r.ids[i] != want[i]) {
            fail_msg("%s: kind %d: id %zu is %lld, expected %lld", c->name, (int)kind, i,
                     (long long)r.ids[i], (long long)want[i]);
        }
    }
    for (int64_t id = -1; id <= 50; id++) {
        if (ch_audit_refers_to(rec, kind, id) != expected(want, id)) {
            fail_msg("%s: kind %d: refers_to(%lld) is %d", c->name, (int)kind, (long long)id,
                     ch_audit_refers_to(rec, kind, id));
        }
    }
    ch_audit_refs_fini(&r);
}

static void test_each_kind_of_record_refers_to_the_objects_it_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *rec = json_loads(cases[i].json, 0, &jerr);
        if (rec == NULL) {
            fail_msg("%s: bad JSON: %s", cases[i].name, jerr.text);
        }
        check_kind(&cases[i], rec, CH_AUDIT_CAMERA, cases[i].cameras);
        check_kind(&cases[i], rec, CH_AUDIT_AGENCY, cases[i].agencies);
        check_kind(&cases[i], rec, CH_AUDIT_EVENT, cases[i].events);
        json_decref(rec);
    }
}

static void test_the_actor_is_not_a_reference(void **state)
{
    (void)state;
    json_t *rec = json_pack("{s:s, s:s, s:n, s:{}}", "actor", "agency:12", "action", "view.end",
                            "object", "details");
    assert_false(ch_audit_refers_to(rec, CH_AUDIT_AGENCY, 12));
    ch_audit_refs_t r = {0};
    ch_audit_refs(rec, CH_AUDIT_AGENCY, &r);
    assert_int_equal(r.n, 0);
    ch_audit_refs_fini(&r);
    json_decref(rec);
}

static void test_a_grant_of_many_cameras_is_referred_to_by_each(void **state)
{
    (void)state;
    /* No cap: the index once kept 64 cameras of a record, so a search missed the 65th on. */
    json_t *cams = json_array();
    for (int i = 1; i <= 1000; i++) {
        json_array_append_new(cams, json_integer(i));
    }
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:{s:o, s:I}}", "actor", "user:lee", "action", "event.approve",
                  "object", "event:3", "details", "cameras", cams, "agency_id", (json_int_t)12);
    ch_audit_refs_t r = {0};
    ch_audit_refs(rec, CH_AUDIT_CAMERA, &r);
    assert_int_equal(r.n, 1000);
    assert_int_equal(r.ids[999], 1000);
    assert_true(ch_audit_refers_to(rec, CH_AUDIT_CAMERA, 1000));
    assert_false(ch_audit_refers_to(rec, CH_AUDIT_CAMERA, 1001));
    /* The struct is reused: a second record resets it. */
    ch_audit_refs(rec, CH_AUDIT_EVENT, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ids[0], 3);
    ch_audit_refs_fini(&r);
    ch_audit_refs_fini(&r); /* twice is fine */
    json_decref(rec);
}

static void test_what_is_not_a_record_refers_to_nothing(void **state)
{
    (void)state;
    ch_audit_refs_t r = {0};
    ch_audit_refs(NULL, CH_AUDIT_CAMERA, &r);
    assert_int_equal(r.n, 0);
    json_t *arr = json_pack("[s]", "camera:7");
    ch_audit_refs(arr, CH_AUDIT_CAMERA, &r);
    assert_int_equal(r.n, 0);
    assert_false(ch_audit_refers_to(arr, CH_AUDIT_CAMERA, 7));
    json_decref(arr);
    json_t *rec = json_pack("{s:s, s:s}", "object", "camera:7", "details", "camera:8");
    assert_false(ch_audit_refers_to(rec, CH_AUDIT_CAMERA, 8));
    assert_true(ch_audit_refers_to(rec, CH_AUDIT_CAMERA, 7));
    assert_false(ch_audit_refers_to(rec, CH_AUDIT_CAMERA, 0));
    json_decref(rec);
    ch_audit_refs_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_kind_of_record_refers_to_the_objects_it_names),
        cmocka_unit_test(test_the_actor_is_not_a_reference),
        cmocka_unit_test(test_a_grant_of_many_cameras_is_referred_to_by_each),
        cmocka_unit_test(test_what_is_not_a_record_refers_to_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
