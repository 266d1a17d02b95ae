/*
 * The shipped etc/services.json: it loads, holds the 11 linked services of MISSION.md §1 with
 * a note and a legal basis each, and every service admits exactly its intended agency types.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "policy/policy.h"

static ch_policy_t *shipped;

static int load_shipped(void **state)
{
    CH_UNUSED(state);
    char *err = NULL;
    int rc = ch_policy_load_file(CH_SOURCE_DIR "/etc/services.json", &shipped, &err);
    if (rc != 0) {
        print_error("%s\n", err != NULL ? err : "?");
    }
    ch_free(err);
    return rc;
}

static int free_shipped(void **state)
{
    CH_UNUSED(state);
    ch_policy_free(shipped);
    shipped = NULL;
    return 0;
}

/* Each service and the agency types it is meant for (MISSION.md §1). */
static const struct {
    const char *id;
    const char *types[4];
} intended[] = {
    {"112-center", {"police-112", "police-station"}},
    {"112-dispatch", {"police-112", "police-station"}},
    {"119-dispatch", {"fire-119"}},
    {"vulnerable-persons", {"police-112", "police-station"}},
    {"disaster-response", {"disaster-room", "mayor-office"}},
    {"anklet-violation", {"moj-tracking"}},
    {"wanted-vehicle", {"police-112", "police-station"}},
    {"women-safe-return", {"police-112", "police-station"}},
    {"military-training", {"military"}},
    {"ansimi-sos", {"ansimi", "district-center", "city-agency"}},
    {"city-dashboard", {"mayor-office"}},
};

static int is_intended(size_t i, const char *type)
{
    for (size_t k = 0; k < 4 && intended[i].types[k] != NULL; k++) {
        if (strcmp(intended[i].types[k], type) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A request that supplies everything any service asks for. */
static ch_policy_request_t full_request(const char *service, const char *type)
{
    ch_policy_request_t r;
    memset(&r, 0, sizeof(r));
    r.service = service;
    r.agency_type = type;
    r.agency_id = 7;
    r.role = CH_POLICY_ROLE_AGENCY;
    r.action = CH_POLICY_OPEN;
    r.has_incident = 1;
    r.has_reason = 1;
    r.case_name = "curfew-breach";
    return r;
}

static void test_shipped_file_holds_the_eleven_services_with_notes_and_basis(void **state)
{
    CH_UNUSED(state);
    assert_int_equal(ch_policy_count(shipped), CH_ARRAY_SIZE(intended));
    for (size_t i = 0; i < CH_ARRAY_SIZE(intended); i++) {
        const ch_policy_service_t *s = ch_policy_find(shipped, intended[i].id);
        assert_non_null(s);
        assert_non_null(s->note);
        assert_true(strlen(s->note) > 40);
        assert_non_null(s->basis_code);
        assert_non_null(s->basis_text);
        assert_true(s->relay != 0);
    }
}

static void test_every_service_admits_exactly_its_intended_agency_types(void **state)
{
    CH_UNUSED(state);
    for (size_t i = 0; i < CH_ARRAY_SIZE(intended); i++) {
        for (int t = 0; t < CH_POLICY_AT_COUNT; t++) {
            const char *type = ch_policy_agency_type_name(t);
            ch_policy_request_t r = full_request(intended[i].id, type);
            r.approved = 1;
            ch_policy_decision_t d;
            assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
            if (is_intended(i, type)) {
                if (d.outcome != CH_POLICY_ALLOWED) {
                    print_error("%s %s: %s\n", intended[i].id, type, d.reason);
                }
                assert_int_equal(d.outcome, CH_POLICY_ALLOWED);
                assert_string_equal(d.rule, "allowed");
                assert_int_equal(d.duration_s, d.service->duration_max_s);
                assert_string_equal(d.basis_code, d.service->basis_code);
            } else {
                assert_int_equal(d.outcome, CH_POLICY_DENIED);
                assert_string_equal(d.rule, "agency_type_not_allowed");
            }
        }
    }
}

static void test_112_rests_on_crime_investigation_and_needs_an_incident(void **state)
{
    CH_UNUSED(state);
    ch_policy_request_t r = full_request("112-center", "police-112");
    r.has_incident = 0;
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
    assert_int_equal(d.outcome, CH_POLICY_DENIED);
    assert_string_equal(d.rule, "incident_required");
    assert_string_equal(ch_policy_find(shipped, "112-center")->basis_code, "PIPA-18-2-7");
    assert_string_equal(ch_policy_find(shipped, "119-dispatch")->basis_code, "PIPA-18-2-3");
    assert_string_equal(ch_policy_find(shipped, "disaster-response")->basis_code, "DSA-2025");
    assert_string_equal(ch_policy_find(shipped, "vulnerable-persons")->basis_code, "MCA-2024");
}

static void test_anklet_violation_is_limited_to_the_four_mou_cases(void **state)
{
    CH_UNUSED(state);
    static const char *const ok[] = {"device-tampering", "curfew-breach", "exclusion-zone",
                                     "protected-person-approach"};
    ch_policy_decision_t d;
    for (size_t i = 0; i < CH_ARRAY_SIZE(ok); i++) {
        ch_policy_request_t r = full_request("anklet-violation", "moj-tracking");
        r.case_name = ok[i];
        assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
        assert_int_equal(d.outcome, CH_POLICY_ALLOWED);
    }
    ch_policy_request_t r = full_request("anklet-violation", "moj-tracking");
    r.case_name = NULL;
    assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
    assert_string_equal(d.rule, "case_required");
    r.case_name = "general-surveillance";
    assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
    assert_string_equal(d.rule, "case_not_allowed");
    assert_int_equal(ch_policy_find(shipped, "anklet-violation")->cases_count, 4);
}

static void test_approval_services_wait_for_an_operator(void **state)
{
    CH_UNUSED(state);
    static const struct {
        const char *id, *type;
    } cases[] = {{"wanted-vehicle", "police-station"}, {"military-training", "military"}};
    for (size_t i = 0; i < CH_ARRAY_SIZE(cases); i++) {
        ch_policy_request_t r = full_request(cases[i].id, cases[i].type);
        ch_policy_decision_t d;
        assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
        assert_int_equal(d.outcome, CH_POLICY_NEEDS_APPROVAL);
        assert_string_equal(d.rule, "approval_required");
        /* An operator waits too, and is approved by another person only. */
        r.role = CH_POLICY_ROLE_OPERATOR;
        assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
        assert_int_equal(d.outcome, CH_POLICY_NEEDS_APPROVAL);
        r.approved = 1;
        r.self_approval = 1;
        assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
        assert_string_equal(d.rule, "approval_by_requester");
        r.self_approval = 0;
        assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
        assert_int_equal(d.outcome, CH_POLICY_ALLOWED);
    }
    /* And the emergency services never wait. */
    ch_policy_request_t r = full_request("119-dispatch", "fire-119");
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide(shipped, &r, &d), 0);
    assert_int_equal(d.outcome, CH_POLICY_ALLOWED);
}

static void test_only_services_following_a_subject_move(void **state)
{
    CH_UNUSED(state);
    /* Those whose purpose follows a moving subject (issue 15, item 11); the rest watch a
     * place. */
    static const char *const following[] = {"112-dispatch",      "vulnerable-persons",
                                            "anklet-violation",  "wanted-vehicle",
                                            "women-safe-return", "ansimi-sos"};
    size_t n = 0;
    for (size_t i = 0; i < ch_policy_count(shipped); i++) {
        const ch_policy_service_t *s = ch_policy_at(shipped, i);
        int want = 0;
        for (size_t k = 0; k < CH_ARRAY_SIZE(following); k++) {
            want |= strcmp(s->id, following[k]) == 0;
        }
        if (s->follows_subject != want) {
            print_error("%s: follows_subject %d\n", s->id, s->follows_subject);
        }
        assert_int_equal(s->follows_subject, want);
        assert_true(want ? s->max_speed_kmh == 200.0 : s->max_speed_kmh == 0.0);
        n += (size_t)want;
    }
    assert_int_equal(n, CH_ARRAY_SIZE(following));
    /* The 112 center's event stays at its place: Seoul to Busan is refused outright. */
    ch_policy_move_t m = {CH_POLICY_ROLE_AGENCY, 325000.0, 3600 * 1000};
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide_move(ch_policy_find(shipped, "112-center"), &m, &d), 0);
    assert_string_equal(d.rule, "not_moving_subject");
    assert_int_equal(ch_policy_decide_move(ch_policy_find(shipped, "wanted-vehicle"), &m, &d), 0);
    assert_string_equal(d.rule, "implausible_speed"); /* 325 km/h */
    m.elapsed_ms = 2 * 3600 * 1000;
    assert_int_equal(ch_policy_decide_move(ch_policy_find(shipped, "wanted-vehicle"), &m, &d), 0);
    assert_string_equal(d.rule, "allowed"); /* 162.5 km/h */
}

static void test_wanted_vehicle_draws_on_plate_cameras_of_districts_only(void **state)
{
    CH_UNUSED(state);
    const ch_policy_service_t *s = ch_policy_find(shipped, "wanted-vehicle");
    const char *rule = NULL;
    assert_true(ch_policy_camera_allowed(s, "district-center", 3, "차량방범", &rule));
    assert_string_equal(rule, "camera_allowed");
    assert_true(ch_policy_camera_allowed(s, "district-center", 3, "교통단속", NULL));
    assert_false(ch_policy_camera_allowed(s, "district-center", 3, "어린이보호", &rule));
    assert_string_equal(rule, "purpose_not_allowed");
    assert_false(ch_policy_camera_allowed(s, "city-agency", 4, "차량방범", &rule));
    assert_string_equal(rule, "provider_type_not_allowed");
}

static void test_city_dashboard_is_own_use_without_identification(void **state)
{
    CH_UNUSED(state);
    const ch_policy_service_t *s = ch_policy_find(shipped, "city-dashboard");
    assert_int_equal(s->relay, CH_POLICY_OWN_USE);
    assert_false(s->identify_persons);
    assert_false(s->ptz);
    assert_false(s->export_allowed);
    assert_false(ch_policy_camera_allowed(s, "district-center", 1, "교통정보수집", NULL));
    assert_true(ch_policy_camera_allowed(s, "city-agency", 1, "교통정보수집", NULL));
    assert_false(ch_policy_camera_allowed(s, "city-agency", 1, "생활방범", NULL));
    assert_int_equal(ch_policy_find(shipped, "disaster-response")->relay,
                     CH_POLICY_RELAY_INTERNAL | CH_POLICY_OWN_USE);
    assert_int_equal(ch_policy_find(shipped, "ansimi-sos")->relay, CH_POLICY_OWN_MONITORING);
}

/* A policy swapped out by a reload stays whole while a reader holds a reference: the loader's
 * free leaves it to the reader's (ASan would see a use after free otherwise). */
static void test_a_referenced_policy_outlives_its_reload(void **state)
{
    CH_UNUSED(state);
    ch_policy_t *p = NULL;
    assert_int_equal(ch_policy_load_file(CH_SOURCE_DIR "/etc/services.json", &p, NULL), 0);
    ch_policy_t *held = ch_policy_ref(p);
    assert_ptr_equal(held, p);
    assert_null(ch_policy_ref(NULL));
    ch_policy_free(p); /* the reload's: the reader's reference remains */
    const ch_policy_service_t *s = ch_policy_find(held, "112-center");
    assert_non_null(s);
    assert_string_equal(s->id, "112-center");
    ch_policy_free(held);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_file_holds_the_eleven_services_with_notes_and_basis),
        cmocka_unit_test(test_every_service_admits_exactly_its_intended_agency_types),
        cmocka_unit_test(test_112_rests_on_crime_investigation_and_needs_an_incident),
        cmocka_unit_test(test_anklet_violation_is_limited_to_the_four_mou_cases),
        cmocka_unit_test(test_approval_services_wait_for_an_operator),
        cmocka_unit_test(test_only_services_following_a_subject_move),
        cmocka_unit_test(test_wanted_vehicle_draws_on_plate_cameras_of_districts_only),
        cmocka_unit_test(test_city_dashboard_is_own_use_without_identification),
        cmocka_unit_test(test_a_referenced_policy_outlives_its_reload),
    };
    return cmocka_run_group_tests(tests, load_shipped, free_shipped);
}
