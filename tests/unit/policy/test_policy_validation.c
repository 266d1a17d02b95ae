/*
 * A services file is refused on any mistake, and the message names the service and the field:
 * unknown fields, wrong types, values out of range, duplicate ids, a missing legal basis,
 * unknown agency types, roles, purposes and relay roles, and malformed documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

/* A valid service "s1", to be broken one field at a time. */
static const char base_service[] =
    "{\"id\": \"s1\", \"name\": \"One\", \"note\": \"why\", \"relay\": [\"relay-external\"],"
    " \"agency_types\": [\"police-112\"],"
    " \"providers\": {\"agency_types\": \"all\", \"purposes\": [\"방범\"], \"opt_out\": [3]},"
    " \"radius_m\": 500, \"max_cameras\": 10, \"duration_max_s\": 600,"
    " \"extension\": {\"allowed\": true, \"by\": [\"agency\"], \"max_count\": 1},"
    " \"ptz\": false, \"export\": false, \"approval_required\": false,"
    " \"identify_persons\": true,"
    " \"legal_basis\": {\"code\": \"PIPA-18-2-7\", \"text\": \"t\", \"comment\": \"c\"},"
    " \"requires\": {\"incident\": true, \"reason\": false}}";

/* Sets (or with value NULL removes) the field at a dotted path of obj; steals value. */
static void set_path(json_t *obj, const char *path, json_t *value)
{
    char key[128];
    const char *dot = strchr(path, '.');
    if (dot != NULL) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        set_path(json_object_get(obj, key), dot + 1, value);
        return;
    }
    if (value == NULL) {
        assert_int_equal(json_object_del(obj, path), 0);
    } else {
        assert_int_equal(json_object_set_new(obj, path, value), 0);
    }
}

/* Loads a document; returns the rc, *msg the message (caller frees). */
static int load_doc(json_t *doc, char **msg)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    ch_policy_t *p = (ch_policy_t *)0x1;
    int rc = ch_policy_load_buffer(text, strlen(text), &p, msg);
    free(text);
    if (rc == 0) {
        assert_non_null(p);
        assert_null(*msg);
        ch_policy_free(p);
    } else {
        assert_null(p);
        assert_non_null(*msg);
    }
    return rc;
}

/* A document of the base service with one change at path. */
static json_t *variant(const char *path, json_t *value)
{
    json_error_t je;
    json_t *svc = json_loads(base_service, 0, &je);
    assert_non_null(svc);
    if (path != NULL) {
        set_path(svc, path, value);
    }
    return json_pack("{s:i, s:[o]}", "version", 1, "services", svc);
}

/* Loads the variant and checks the message names service and field and says text. */
static void expect_error(const char *path, json_t *value, const char *where, const char *field,
                         const char *text)
{
    json_t *doc = variant(path, value);
    char *msg = NULL;
    int rc = load_doc(doc, &msg);
    json_decref(doc);
    assert_int_equal(rc, CH_EPARSE);
    char want[256];
    snprintf(want, sizeof(want), "%s, field \"%s\": ", where, field);
    if (strstr(msg, want) == NULL || strstr(msg, text) == NULL) {
        print_error("message: %s\nwanted: %s ... %s\n", msg, want, text);
    }
    assert_non_null(strstr(msg, want));
    assert_non_null(strstr(msg, text));
    ch_free(msg);
}

static void test_base_service_loads(void **state)
{
    CH_UNUSED(state);
    json_t *doc = variant(NULL, NULL);
    char *msg = NULL;
    assert_int_equal(load_doc(doc, &msg), 0);
    json_decref(doc);
}

static void test_unknown_fields_are_refused_with_their_path(void **state)
{
    CH_UNUSED(state);
    const char *s1 = "service \"s1\"";
    expect_error("aproval_required", json_true(), s1, "aproval_required", "unknown field");
    expect_error("providers.opt_outs", json_array(), s1, "providers.opt_outs", "unknown field");
    expect_error("extension.max", json_integer(1), s1, "extension.max", "unknown field");
    expect_error("legal_basis.url", json_string("x"), s1, "legal_basis.url", "unknown field");
    expect_error("requires.warrant", json_true(), s1, "requires.warrant", "unknown field");
}

static void test_bad_types_are_refused(void **state)
{
    CH_UNUSED(state);
    const char *s1 = "service \"s1\"";
    expect_error("radius_m", json_string("500"), s1, "radius_m", "must be a number");
    expect_error("ptz", json_string("yes"), s1, "ptz", "true or false");
    expect_error("max_cameras", json_real(1.5), s1, "max_cameras", "integer");
    expect_error("name", json_integer(3), s1, "name", "must be a string");
    expect_error("agency_types", json_string("police-112"), s1, "agency_types", "array");
    expect_error("providers", json_string("all"), s1, "providers", "object");
    expect_error("extension.by", json_pack("[i]", 1), s1, "extension.by", "must be a string");
    expect_error("legal_basis", json_string("PIPA"), s1, "legal_basis", "object");
    expect_error("requires.case", json_pack("[]"), s1, "requires.case", "non-empty array");
    expect_error("providers.opt_out", json_pack("[s]", "3"), s1, "providers.opt_out",
                 "positive agency id");
    expect_error("providers.purposes", json_string("some"), s1, "providers.purposes",
                 "\"all\" or a list");
}

static void test_values_out_of_range_are_refused(void **state)
{
    CH_UNUSED(state);
    const char *s1 = "service \"s1\"";
    expect_error("radius_m", json_integer(-1), s1, "radius_m", "greater than 0");
    expect_error("radius_m", json_real(0.0), s1, "radius_m", "greater than 0");
    expect_error("radius_m", json_integer(50001), s1, "radius_m", "at most 50000");
    expect_error("max_cameras", json_integer(0), s1, "max_cameras", "between 1 and 1000");
    expect_error("duration_max_s", json_integer(604801), s1, "duration_max_s", "between");
    expect_error("duration_max_s", json_integer(-5), s1, "duration_max_s", "between");
    expect_error("extension.max_count", json_integer(0), s1, "extension.max_count", "between");
    expect_error("extension.max_count", json_integer(101), s1, "extension.max_count", "between");
    expect_error("providers.opt_out", json_pack("[i]", -3), s1, "providers.opt_out",
                 "positive agency id");
    expect_error("providers.opt_out", json_pack("[i,i]", 3, 3), s1, "providers.opt_out", "twice");
    expect_error("name", json_string(""), s1, "name", "non-empty");
}

/* Loads the base service with follows_subject and max_speed_kmh as given (NULL: absent) and
 * returns what was loaded into *follows and *speed. */
static void load_following(json_t *follows, json_t *speed, int *out_follows, double *out_speed)
{
    json_t *doc = variant(NULL, NULL);
    json_t *svc = json_array_get(json_object_get(doc, "services"), 0);
    if (follows != NULL) {
        json_object_set_new(svc, "follows_subject", follows);
    }
    if (speed != NULL) {
        json_object_set_new(svc, "max_speed_kmh", speed);
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ch_policy_t *p = NULL;
    char *msg = NULL;
    assert_int_equal(ch_policy_load_buffer(text, strlen(text), &p, &msg), 0);
    free(text);
    const ch_policy_service_t *s = ch_policy_find(p, "s1");
    *out_follows = s->follows_subject;
    *out_speed = s->max_speed_kmh;
    ch_policy_free(p);
}

static void test_following_a_subject_is_optional_checked_and_has_a_default_speed(void **state)
{
    CH_UNUSED(state);
    const char *s1 = "service \"s1\"";
    int follows = -1;
    double speed = -1;
    /* Not said: the service watches a place (the safe default for files older than the
     * field). */
    load_following(NULL, NULL, &follows, &speed);
    assert_int_equal(follows, 0);
    load_following(json_false(), NULL, &follows, &speed);
    assert_int_equal(follows, 0);
    /* Following without a speed: 200 km/h; with one: as given, fractions too. */
    load_following(json_true(), NULL, &follows, &speed);
    assert_int_equal(follows, 1);
    assert_true(speed == CH_POLICY_DEFAULT_SPEED_KMH && speed == 200.0);
    load_following(json_true(), json_real(7.5), &follows, &speed);
    assert_true(speed == 7.5);
    load_following(json_true(), json_integer(1000), &follows, &speed);
    assert_true(speed == 1000.0);
    /* Wrong types and ranges, and a speed for a service that does not follow. */
    expect_error("follows_subject", json_string("yes"), s1, "follows_subject", "true or false");
    expect_error("follows_subject", json_integer(1), s1, "follows_subject", "true or false");
    expect_error("max_speed_kmh", json_integer(120), s1, "max_speed_kmh",
                 "\"follows_subject\" is not true");
    json_t *doc = variant("follows_subject", json_true());
    json_t *svc = json_array_get(json_object_get(doc, "services"), 0);
    const struct {
        json_t *v;
        const char *text;
    } bad[] = {{json_string("200"), "must be a number"},
               {json_integer(0), "greater than 0 and at most 1000"},
               {json_real(-3.0), "greater than 0"},
               {json_real(1000.5), "at most 1000"},
               {json_null(), "must be a number"}};
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        json_object_set_new(svc, "max_speed_kmh", bad[i].v);
        char *msg = NULL;
        assert_int_equal(load_doc(doc, &msg), CH_EPARSE);
        if (strstr(msg, "service \"s1\", field \"max_speed_kmh\": ") == NULL ||
            strstr(msg, bad[i].text) == NULL) {
            print_error("message: %s\nwanted: %s\n", msg, bad[i].text);
        }
        assert_non_null(strstr(msg, "service \"s1\", field \"max_speed_kmh\": "));
        assert_non_null(strstr(msg, bad[i].text));
        ch_free(msg);
    }
    json_decref(doc);
}

static void test_missing_required_fields_and_legal_basis_are_refused(void **state)
{
    CH_UNUSED(state);
    const char *s1 = "service \"s1\"";
    expect_error("legal_basis", NULL, s1, "legal_basis", "is required");
    expect_error("legal_basis.code", NULL, s1, "legal_basis.code", "is required");
    expect_error("legal_basis.text", json_string(""), s1, "legal_basis.text", "non-empty");
    expect_error("legal_basis.code", json_string("PIPA 18"), s1, "legal_basis.code",
                 "must be 1..64");
    expect_error("name", NULL, s1, "name", "is required");
    expect_error("relay", NULL, s1, "relay", "is required");
    expect_error("agency_types", NULL, s1, "agency_types", "is required");
    expect_error("providers.agency_types", NULL, s1, "providers.agency_types", "is required");
    expect_error("providers.purposes", NULL, s1, "providers.purposes", "is required");
    expect_error("radius_m", NULL, s1, "radius_m", "is required");
    expect_error("export", NULL, s1, "export", "is required");
    expect_error("identify_persons", NULL, s1, "identify_persons", "is required");
    expect_error("extension.by", NULL, s1, "extension.by", "is required");
    expect_error("requires.reason", NULL, s1, "requires.reason", "is required");
    expect_error("extension", json_pack("{s:b, s:i}", "allowed", 0, "max_count", 2), s1,
                 "extension", "\"allowed\" is false");
}

static void test_unknown_vocabulary_is_refused(void **state)
{
    CH_UNUSED(state);
    const char *s1 = "service \"s1\"";
    expect_error("agency_types", json_pack("[s]", "polcie-112"), s1, "agency_types",
                 "unknown agency type \"polcie-112\"");
    expect_error("providers.agency_types", json_pack("[s]", "district"), s1,
                 "providers.agency_types", "unknown agency type \"district\"");
    expect_error("extension.by", json_pack("[s]", "mayor"), s1, "extension.by",
                 "unknown role \"mayor\"");
    expect_error("providers.purposes", json_pack("[s]", "감시"), s1, "providers.purposes",
                 "unknown camera purpose");
    expect_error("relay", json_pack("[s]", "relay"), s1, "relay", "unknown relay role");
    expect_error("agency_types", json_pack("[s,s]", "military", "military"), s1, "agency_types",
                 "twice");
}

static void test_bad_or_missing_ids_name_the_position(void **state)
{
    CH_UNUSED(state);
    expect_error("id", json_string("Bad Id"), "services[0]", "id", "a-z 0-9");
    expect_error("id", NULL, "services[0]", "id", "is required");
    expect_error("id", json_integer(5), "services[0]", "id", "a-z 0-9");
}

static void test_duplicate_service_ids_are_refused(void **state)
{
    CH_UNUSED(state);
    json_t *doc = variant(NULL, NULL);
    json_t *svcs = json_object_get(doc, "services");
    json_array_append_new(svcs, json_deep_copy(json_array_get(svcs, 0)));
    char *msg = NULL;
    assert_int_equal(load_doc(doc, &msg), CH_EPARSE);
    assert_non_null(strstr(msg, "service \"s1\", field \"id\": duplicate service id"));
    ch_free(msg);
    /* An error in a later service names that service. */
    json_object_set_new(json_array_get(svcs, 1), "id", json_string("s2"));
    json_object_set_new(json_array_get(svcs, 1), "max_cameras", json_integer(-2));
    assert_int_equal(load_doc(doc, &msg), CH_EPARSE);
    assert_non_null(strstr(msg, "service \"s2\", field \"max_cameras\""));
    ch_free(msg);
    json_decref(doc);
}

/* Loads raw text and checks the rc and a part of the message. */
static void expect_raw(const char *text, int want_rc, const char *part)
{
    ch_policy_t *p = NULL;
    char *msg = NULL;
    int rc = ch_policy_load_buffer(text, strlen(text), &p, &msg);
    if (rc != want_rc || strstr(msg, part) == NULL) {
        print_error("text: %s\nmessage: %s\n", text, msg != NULL ? msg : "(none)");
    }
    assert_int_equal(rc, want_rc);
    assert_null(p);
    assert_non_null(strstr(msg, part));
    ch_free(msg);
}

static void test_malformed_documents_are_refused(void **state)
{
    CH_UNUSED(state);
    expect_raw("", CH_EPARSE, "invalid JSON");
    expect_raw("{\"version\": 1,", CH_EPARSE, "invalid JSON");
    expect_raw("[]", CH_EPARSE, "must be a JSON object");
    expect_raw("{\"version\": 1, \"version\": 1, \"services\": []}", CH_EPARSE, "invalid JSON");
    expect_raw("{\"version\": 2, \"services\": [1]}", CH_EPARSE,
               "field \"version\": must be between 1 and 1");
    expect_raw("{\"services\": [1]}", CH_EPARSE, "field \"version\": is required");
    expect_raw("{\"version\": 1, \"services\": []}", CH_EPARSE, "field \"services\"");
    expect_raw("{\"version\": 1}", CH_EPARSE, "field \"services\": is required");
    expect_raw("{\"version\": 1, \"services\": [1]}", CH_EPARSE, "services[0]");
    expect_raw("{\"version\": 1, \"extra\": 1, \"services\": [1]}", CH_EPARSE,
               "field \"extra\": unknown field");
    expect_raw("{\"version\": 1, \"note\": 3, \"services\": [1]}", CH_EPARSE,
               "field \"note\": must be a string");
}

static void test_oversized_and_missing_files_are_refused(void **state)
{
    CH_UNUSED(state);
    size_t n = CH_POLICY_MAX_FILE_BYTES + 1;
    char *big = ch_malloc(n);
    memset(big, ' ', n);
    ch_policy_t *p = NULL;
    char *msg = NULL;
    assert_int_equal(ch_policy_load_buffer(big, n, &p, &msg), CH_ETOOBIG);
    assert_null(p);
    ch_free(msg);
    ch_free(big);
    assert_int_equal(ch_policy_load_file("/nonexistent/services.json", &p, &msg), CH_ENOENT);
    assert_null(p);
    assert_non_null(strstr(msg, "/nonexistent/services.json"));
    ch_free(msg);
    /* A NULL err is fine. */
    assert_int_equal(ch_policy_load_buffer("x", 1, &p, NULL), CH_EPARSE);
    ch_policy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_service_loads),
        cmocka_unit_test(test_unknown_fields_are_refused_with_their_path),
        cmocka_unit_test(test_bad_types_are_refused),
        cmocka_unit_test(test_values_out_of_range_are_refused),
        cmocka_unit_test(test_following_a_subject_is_optional_checked_and_has_a_default_speed),
        cmocka_unit_test(test_missing_required_fields_and_legal_basis_are_refused),
        cmocka_unit_test(test_unknown_vocabulary_is_refused),
        cmocka_unit_test(test_bad_or_missing_ids_name_the_position),
        cmocka_unit_test(test_duplicate_service_ids_are_refused),
        cmocka_unit_test(test_malformed_documents_are_refused),
        cmocka_unit_test(test_oversized_and_missing_files_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
