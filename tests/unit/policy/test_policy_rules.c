/*
 * Decisions on a small policy written for the test: every denial rule fires with its code,
 * extensions within and beyond their limits, approval, durations, and camera selection with
 * providers, purposes and opt-outs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "policy/policy.h"

static const char policy_json[] =
    "{\"version\": 1, \"services\": ["
    " {\"id\": \"strict\", \"name\": \"Strict\", \"relay\": [\"relay-external\"],"
    "  \"agency_types\": [\"police-112\"],"
    "  \"providers\": {\"agency_types\": [\"district-center\"], \"purposes\": [\"방범\"],"
    "                \"opt_out\": [42, 9]},"
    "  \"radius_m\": 250.5, \"max_cameras\": 5, \"duration_max_s\": 600,"
    "  \"extension\": {\"allowed\": true, \"by\": [\"operator\"], \"max_count\": 2},"
    "  \"ptz\": false, \"export\": false, \"approval_required\": true,"
    "  \"identify_persons\": true,"
    "  \"legal_basis\": {\"code\": \"PIPA-18-2-7\", \"text\": \"crime investigation\"},"
    "  \"requires\": {\"incident\": true, \"reason\": true, \"case\": [\"a\", \"b\"]}},"
    " {\"id\": \"open\", \"name\": \"Open\", \"relay\": [\"own-use\"],"
    "  \"agency_types\": [\"fire-119\", \"police-112\"],"
    "  \"providers\": {\"agency_types\": \"all\", \"purposes\": \"all\"},"
    "  \"radius_m\": 100, \"max_cameras\": 3, \"duration_max_s\": 60,"
    "  \"extension\": {\"allowed\": false},"
    "  \"ptz\": true, \"export\": true, \"approval_required\": false,"
    "  \"identify_persons\": false,"
    "  \"legal_basis\": {\"code\": \"PIPA-18-2-3\", \"text\": \"urgent life\"},"
    "  \"requires\": {\"incident\": false, \"reason\": false}},"
    " {\"id\": \"follow\", \"name\": \"Follow\", \"relay\": [\"relay-external\"],"
    "  \"agency_types\": [\"police-112\"],"
    "  \"providers\": {\"agency_types\": \"all\", \"purposes\": \"all\"},"
    "  \"radius_m\": 300, \"max_cameras\": 10, \"duration_max_s\": 600,"
    "  \"extension\": {\"allowed\": false},"
    "  \"ptz\": false, \"export\": false, \"approval_required\": false,"
    "  \"identify_persons\": true, \"follows_subject\": true, \"max_speed_kmh\": 36,"
    "  \"legal_basis\": {\"code\": \"PIPA-18-2-7\", \"text\": \"crime investigation\"},"
    "  \"requires\": {\"incident\": true, \"reason\": true}}"
    "]}";

static ch_policy_t *pol;

static int setup(void **state)
{
    CH_UNUSED(state);
    char *err = NULL;
    int rc = ch_policy_load_buffer(policy_json, strlen(policy_json), &pol, &err);
    if (rc != 0) {
        print_error("%s\n", err);
    }
    ch_free(err);
    return rc;
}

static int teardown(void **state)
{
    CH_UNUSED(state);
    ch_policy_free(pol);
    return 0;
}

/* A request to "strict" that passes every rule but approval. */
static ch_policy_request_t strict_request(void)
{
    ch_policy_request_t r;
    memset(&r, 0, sizeof(r));
    r.service = "strict";
    r.agency_type = "police-112";
    r.agency_id = 1;
    r.role = CH_POLICY_ROLE_AGENCY;
    r.action = CH_POLICY_OPEN;
    r.duration_s = 300;
    r.has_incident = 1;
    r.has_reason = 1;
    r.case_name = "a";
    return r;
}

/* Decides r and checks the outcome and rule. */
static void expect(const ch_policy_request_t *r, ch_policy_outcome_t outcome, const char *rule)
{
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide(pol, r, &d), 0);
    if (strcmp(d.rule, rule) != 0) {
        print_error("expected %s, got %s (%s)\n", rule, d.rule, d.reason);
    }
    assert_string_equal(d.rule, rule);
    assert_int_equal(d.outcome, outcome);
    assert_true(strlen(d.reason) > 10);
    if (outcome == CH_POLICY_DENIED) {
        assert_int_equal(d.duration_s, 0);
    }
}

static void test_each_denial_rule_fires_with_its_code(void **state)
{
    CH_UNUSED(state);
    ch_policy_request_t r = strict_request();
    r.service = "nope";
    expect(&r, CH_POLICY_DENIED, "unknown_service");
    r = strict_request();
    r.service = NULL;
    expect(&r, CH_POLICY_DENIED, "unknown_service");
    r = strict_request();
    r.role = (ch_policy_role_t)7;
    expect(&r, CH_POLICY_DENIED, "role_invalid");
    r = strict_request();
    r.agency_type = "fire-119";
    expect(&r, CH_POLICY_DENIED, "agency_type_not_allowed");
    r.agency_type = "no-such-type";
    expect(&r, CH_POLICY_DENIED, "agency_type_not_allowed");
    r.agency_type = NULL;
    expect(&r, CH_POLICY_DENIED, "agency_type_not_allowed");
    r = strict_request();
    r.action = (ch_policy_action_t)5;
    expect(&r, CH_POLICY_DENIED, "action_invalid");
    r = strict_request();
    r.has_incident = 0;
    expect(&r, CH_POLICY_DENIED, "incident_required");
    r = strict_request();
    r.has_reason = 0;
    expect(&r, CH_POLICY_DENIED, "reason_required");
    r = strict_request();
    r.case_name = "";
    expect(&r, CH_POLICY_DENIED, "case_required");
    r.case_name = "c";
    expect(&r, CH_POLICY_DENIED, "case_not_allowed");
    r = strict_request();
    r.duration_s = -1;
    expect(&r, CH_POLICY_DENIED, "duration_invalid");
    r.duration_s = 601;
    expect(&r, CH_POLICY_DENIED, "duration_over_limit");
    r = strict_request();
    r.want_ptz = 1;
    expect(&r, CH_POLICY_DENIED, "ptz_not_allowed");
    r = strict_request();
    r.want_export = 1;
    expect(&r, CH_POLICY_DENIED, "export_not_allowed");
}

static void test_decide_refuses_null_arguments(void **state)
{
    CH_UNUSED(state);
    ch_policy_request_t r = strict_request();
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide(NULL, &r, &d), CH_EINVAL);
    assert_int_equal(ch_policy_decide(pol, NULL, &d), CH_EINVAL);
    assert_int_equal(ch_policy_decide(pol, &r, NULL), CH_EINVAL);
}

static void test_approval_needed_whoever_asks_and_given_by_another_person(void **state)
{
    CH_UNUSED(state);
    ch_policy_request_t r = strict_request();
    expect(&r, CH_POLICY_NEEDS_APPROVAL, "approval_required");
    /* An operator's own request is not its approval (issue 15, item 10). */
    r.role = CH_POLICY_ROLE_OPERATOR;
    expect(&r, CH_POLICY_NEEDS_APPROVAL, "approval_required");
    /* Approved by the person who asked: refused, and the event stays waiting. */
    r.approved = 1;
    r.self_approval = 1;
    expect(&r, CH_POLICY_DENIED, "approval_by_requester");
    r.self_approval = 0;
    expect(&r, CH_POLICY_ALLOWED, "allowed");
    r.role = CH_POLICY_ROLE_AGENCY;
    expect(&r, CH_POLICY_ALLOWED, "allowed");
    /* A service without approval has no approver to check. */
    ch_policy_request_t o = strict_request();
    o.service = "open";
    o.agency_type = "fire-119";
    o.duration_s = 0;
    o.approved = 1;
    o.self_approval = 1;
    expect(&o, CH_POLICY_ALLOWED, "allowed");
    /* Rules still bind the operator: approving cannot lift a denial. */
    r.role = CH_POLICY_ROLE_OPERATOR;
    r.duration_s = 9999;
    expect(&r, CH_POLICY_DENIED, "duration_over_limit");
}

static void test_allowed_decision_carries_limits_and_legal_basis(void **state)
{
    CH_UNUSED(state);
    ch_policy_request_t r = strict_request();
    r.approved = 1;
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide(pol, &r, &d), 0);
    assert_int_equal(d.outcome, CH_POLICY_ALLOWED);
    assert_int_equal(d.duration_s, 300);
    assert_true(d.radius_m == 250.5);
    assert_int_equal(d.max_cameras, 5);
    assert_string_equal(d.basis_code, "PIPA-18-2-7");
    assert_string_equal(d.basis_text, "crime investigation");
    assert_string_equal(d.service->id, "strict");
    assert_string_equal(ch_policy_outcome_name(d.outcome), "allowed");
    /* Zero asks for the longest; the longest itself is fine. */
    r.duration_s = 0;
    assert_int_equal(ch_policy_decide(pol, &r, &d), 0);
    assert_int_equal(d.duration_s, 600);
    r.duration_s = 600;
    assert_int_equal(ch_policy_decide(pol, &r, &d), 0);
    assert_int_equal(d.outcome, CH_POLICY_ALLOWED);
    /* PTZ and export granted where the service allows and they are asked. */
    ch_policy_request_t o = strict_request();
    o.service = "open";
    o.agency_type = "fire-119";
    o.duration_s = 0;
    o.want_ptz = 1;
    o.want_export = 1;
    assert_int_equal(ch_policy_decide(pol, &o, &d), 0);
    assert_int_equal(d.outcome, CH_POLICY_ALLOWED);
    assert_true(d.ptz && d.export_allowed);
    assert_int_equal(d.duration_s, 60);
}

static void test_extensions_within_and_beyond_limits(void **state)
{
    CH_UNUSED(state);
    ch_policy_request_t r = strict_request();
    r.action = CH_POLICY_EXTEND;
    r.role = CH_POLICY_ROLE_OPERATOR;
    r.approved = 1; /* only an active, so approved, event is extended */
    r.extension_count = 0;
    expect(&r, CH_POLICY_ALLOWED, "allowed");
    r.extension_count = 1;
    expect(&r, CH_POLICY_ALLOWED, "allowed");
    r.extension_count = 2;
    expect(&r, CH_POLICY_DENIED, "extension_limit");
    r.extension_count = -1;
    expect(&r, CH_POLICY_DENIED, "extension_limit");
    /* Only operators extend this service. */
    r.extension_count = 0;
    r.role = CH_POLICY_ROLE_AGENCY;
    expect(&r, CH_POLICY_DENIED, "extension_role_not_allowed");
    /* An extension step is bounded by the longest duration too. */
    r.role = CH_POLICY_ROLE_OPERATOR;
    r.duration_s = 601;
    expect(&r, CH_POLICY_DENIED, "duration_over_limit");
    /* A service without extensions. */
    ch_policy_request_t o = strict_request();
    o.service = "open";
    o.action = CH_POLICY_EXTEND;
    o.duration_s = 10;
    expect(&o, CH_POLICY_DENIED, "extension_not_allowed");
}

/* Decides a move of a "follow" (36 km/h: 10 m/s) or "open" event; checks outcome and rule. */
static void expect_move(const char *service, ch_policy_role_t role, double distance_m,
                        int64_t elapsed_ms, ch_policy_outcome_t outcome, const char *rule)
{
    ch_policy_move_t m = {role, distance_m, elapsed_ms};
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide_move(ch_policy_find(pol, service), &m, &d), 0);
    if (strcmp(d.rule, rule) != 0) {
        print_error("expected %s, got %s (%s)\n", rule, d.rule, d.reason);
    }
    assert_string_equal(d.rule, rule);
    assert_int_equal(d.outcome, outcome);
    assert_true(strlen(d.reason) > 10);
}

static void test_moves_only_for_following_services_at_a_plausible_speed(void **state)
{
    CH_UNUSED(state);
    const ch_policy_role_t ag = CH_POLICY_ROLE_AGENCY, op = CH_POLICY_ROLE_OPERATOR;
    assert_true(ch_policy_find(pol, "follow")->follows_subject);
    assert_true(ch_policy_find(pol, "follow")->max_speed_kmh == 36.0);
    assert_false(ch_policy_find(pol, "open")->follows_subject);
    /* A place that does not follow a subject never moves, not even by an operator. */
    expect_move("open", ag, 1.0, 60000, CH_POLICY_DENIED, "not_moving_subject");
    expect_move("open", op, 1.0, 60000, CH_POLICY_DENIED, "not_moving_subject");
    /* 10 m/s is the limit: 100 m in 10 s passes, 101 m does not; an operator may override. */
    expect_move("follow", ag, 100.0, 10000, CH_POLICY_ALLOWED, "allowed");
    expect_move("follow", ag, 101.0, 10000, CH_POLICY_DENIED, "implausible_speed");
    expect_move("follow", op, 101.0, 10000, CH_POLICY_ALLOWED, "implausible_speed_override");
    /* 325 km in 2 s (Seoul to Busan in one step). */
    expect_move("follow", ag, 325000.0, 2000, CH_POLICY_DENIED, "implausible_speed");
    /* No time at all: only staying put passes; a clock gone backwards counts as no time. */
    expect_move("follow", ag, 0.0, 0, CH_POLICY_ALLOWED, "allowed");
    expect_move("follow", ag, 0.5, 0, CH_POLICY_DENIED, "implausible_speed");
    expect_move("follow", ag, 0.5, -5000, CH_POLICY_DENIED, "implausible_speed");
    /* Nonsense distances are refused for everyone. */
    expect_move("follow", op, -1.0, 10000, CH_POLICY_DENIED, "implausible_speed");
    expect_move("follow", op, NAN, 10000, CH_POLICY_DENIED, "implausible_speed");
    expect_move("follow", op, INFINITY, 10000, CH_POLICY_DENIED, "implausible_speed");
    /* The sentence says how fast and what the limit is. */
    ch_policy_move_t m = {ag, 325000.0, 2000};
    ch_policy_decision_t d;
    assert_int_equal(ch_policy_decide_move(ch_policy_find(pol, "follow"), &m, &d), 0);
    assert_non_null(strstr(d.reason, "325.0 km in 2.0 s (585000 km/h)"));
    assert_non_null(strstr(d.reason, "at most 36 km/h"));
    /* Unknown service, NULL arguments. */
    assert_int_equal(ch_policy_decide_move(NULL, &m, &d), 0);
    assert_string_equal(d.rule, "unknown_service");
    assert_int_equal(ch_policy_decide_move(ch_policy_find(pol, "follow"), NULL, &d), CH_EINVAL);
    assert_int_equal(ch_policy_decide_move(ch_policy_find(pol, "follow"), &m, NULL), CH_EINVAL);
}

static void test_camera_allowed_follows_providers_purposes_and_opt_outs(void **state)
{
    CH_UNUSED(state);
    const ch_policy_service_t *s = ch_policy_find(pol, "strict");
    const char *rule = NULL;
    assert_true(ch_policy_camera_allowed(s, "district-center", 5, "방범", &rule));
    assert_string_equal(rule, "camera_allowed");
    assert_false(ch_policy_camera_allowed(s, "district-center", 42, "방범", &rule));
    assert_string_equal(rule, "provider_opted_out");
    assert_false(ch_policy_camera_allowed(s, "district-center", 9, "방범", &rule));
    assert_string_equal(rule, "provider_opted_out");
    assert_false(ch_policy_camera_allowed(s, "city-agency", 5, "방범", &rule));
    assert_string_equal(rule, "provider_type_not_allowed");
    assert_false(ch_policy_camera_allowed(s, "bogus", 5, "방범", &rule));
    assert_string_equal(rule, "provider_type_not_allowed");
    assert_false(ch_policy_camera_allowed(s, "district-center", 5, "다목적", &rule));
    assert_string_equal(rule, "purpose_not_allowed");
    assert_false(ch_policy_camera_allowed(s, "district-center", 5, NULL, &rule));
    assert_string_equal(rule, "purpose_not_allowed");
    assert_false(ch_policy_camera_allowed(NULL, "district-center", 5, "방범", &rule));
    assert_string_equal(rule, "unknown_service");
    /* A provider that opts out of one service still shares with the others. */
    const ch_policy_service_t *o = ch_policy_find(pol, "open");
    assert_true(ch_policy_camera_allowed(o, "district-center", 42, "방범", NULL));
    assert_true(ch_policy_camera_allowed(o, "police-station", 42, "아무거나", NULL));
    assert_true(ch_policy_camera_allowed(o, "city-agency", 42, NULL, NULL));
}

static void test_vocabularies_and_lookups(void **state)
{
    CH_UNUSED(state);
    assert_int_equal(ch_policy_agency_type_index("police-112"), CH_POLICY_AT_POLICE_112);
    assert_int_equal(ch_policy_agency_type_index("other"), CH_POLICY_AT_OTHER);
    assert_int_equal(ch_policy_agency_type_index("Police-112"), -1);
    assert_null(ch_policy_agency_type_name(CH_POLICY_AT_COUNT));
    assert_true(ch_policy_purpose_known("약자보호"));
    assert_false(ch_policy_purpose_known("방범 "));
    ch_policy_role_t role;
    assert_int_equal(ch_policy_role_parse("operator", &role), 0);
    assert_int_equal(role, CH_POLICY_ROLE_OPERATOR);
    assert_int_equal(ch_policy_role_parse("admin", &role), CH_EINVAL);
    assert_int_equal(ch_policy_count(pol), 3);
    assert_string_equal(ch_policy_at(pol, 1)->id, "open");
    assert_null(ch_policy_at(pol, 3));
    assert_null(ch_policy_find(pol, "STRICT"));
    assert_string_equal(ch_policy_outcome_name(CH_POLICY_NEEDS_APPROVAL), "needs-approval");
    assert_string_equal(ch_policy_outcome_name(CH_POLICY_DENIED), "denied");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_denial_rule_fires_with_its_code),
        cmocka_unit_test(test_decide_refuses_null_arguments),
        cmocka_unit_test(test_approval_needed_whoever_asks_and_given_by_another_person),
        cmocka_unit_test(test_moves_only_for_following_services_at_a_plausible_speed),
        cmocka_unit_test(test_allowed_decision_carries_limits_and_legal_basis),
        cmocka_unit_test(test_extensions_within_and_beyond_limits),
        cmocka_unit_test(test_camera_allowed_follows_providers_purposes_and_opt_outs),
        cmocka_unit_test(test_vocabularies_and_lookups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
