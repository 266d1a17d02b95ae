/*
 * Decisions on a small policy written for the test: every denial rule fires with its code,
 * extensions within and beyond their limits, approval, durations, and camera selection with
 * providers, purposes and opt-outs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
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
    "  \"requires\": {\"incident\": false, \"reason\": false}}"
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

static void test_approval_needed_for_agency_and_given_by_operator(void **state)
{
    CH_UNUSED(state);
    ch_policy_request_t r = strict_request();
    expect(&r, CH_POLICY_NEEDS_APPROVAL, "approval_required");
    r.role = CH_POLICY_ROLE_OPERATOR;
    expect(&r, CH_POLICY_ALLOWED, "allowed");
    r.role = CH_POLICY_ROLE_AGENCY;
    r.approved = 1;
    expect(&r, CH_POLICY_ALLOWED, "allowed");
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
    assert_int_equal(ch_policy_count(pol), 2);
    assert_string_equal(ch_policy_at(pol, 1)->id, "open");
    assert_null(ch_policy_at(pol, 2));
    assert_null(ch_policy_find(pol, "STRICT"));
    assert_string_equal(ch_policy_outcome_name(CH_POLICY_NEEDS_APPROVAL), "needs-approval");
    assert_string_equal(ch_policy_outcome_name(CH_POLICY_DENIED), "denied");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_denial_rule_fires_with_its_code),
        cmocka_unit_test(test_decide_refuses_null_arguments),
        cmocka_unit_test(test_approval_needed_for_agency_and_given_by_operator),
        cmocka_unit_test(test_allowed_decision_carries_limits_and_legal_basis),
        cmocka_unit_test(test_extensions_within_and_beyond_limits),
        cmocka_unit_test(test_camera_allowed_follows_providers_purposes_and_opt_outs),
        cmocka_unit_test(test_vocabularies_and_lookups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
