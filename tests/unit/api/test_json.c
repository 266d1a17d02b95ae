/* Unit tests of api/json.c: request bodies to records (each validation error names its field),
 * records back to JSON (credentials never), and body parsing. No HTTP, no store handle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "api/api_internal.h"

/* Parses text as a body and converts it into the record of resource res; returns the result
 * and leaves the error in *err. */
static int convert(ch_api__resource_t res, const char *text, ch_api__err_t *err)
{
    memset(err, 0, sizeof(*err));
    json_t *body = ch_api__parse_body(text, strlen(text), err);
    if (body == NULL) {
        return CH_EPARSE;
    }
    int rc;
    if (res == CH_API__AGENCIES) {
        ch_agency_t a;
        memset(&a, 0, sizeof(a));
        rc = ch_api__agency_from_json(body, &a, err);
        ch_agency_fini(&a);
    } else if (res == CH_API__CAMERAS) {
        ch_camera_t c;
        ch_camera_init(&c);
        rc = ch_api__camera_from_json(body, &c, err);
        ch_camera_fini(&c);
    } else {
        ch_device_t d;
        ch_device_init(&d);
        rc = ch_api__device_from_json(body, &d, err);
        ch_device_fini(&d);
    }
    json_decref(body);
    return rc;
}

/* Asserts that text is rejected as 400 "invalid" naming field. */
static void expect_field_error(ch_api__resource_t res, const char *text, const char *field)
{
    ch_api__err_t err;
    int rc = convert(res, text, &err);
    if (rc != CH_EINVAL || strcmp(err.field, field) != 0) {
        print_error("body %s: rc %d field '%s' message '%s', expected field '%s'\n", text, rc,
                    err.field, err.message, field);
        fail();
    }
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid");
}

#define CAM_OK "\"agency_id\":1,\"name\":\"cam\""
#define DEV_OK "\"agency_id\":1,\"name\":\"bell\",\"kind\":\"emergency-bell\""
/* A client certificate's key as the PKI writes it: 64 lowercase hex digits after "sha256:". */
#define KEY64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define AGY_OK                                                                                     \
    "\"name\":\"서구\",\"kind\":\"provider\",\"level\":\"district\",\"type\":\"district-center\""

static void test_agency_body_with_every_field_converts(void **state)
{
    const char *text = "{" AGY_OK ",\"phone\":\"042-123-4567\",\"code\":\"3660000\","
                       "\"tls_key\":\"sha256:" KEY64 "\"}";
    ch_api__err_t err;
    json_t *body = ch_api__parse_body(text, strlen(text), &err);
    assert_non_null(body);
    ch_agency_t a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(ch_api__agency_from_json(body, &a, &err), 0);
    assert_string_equal(a.name, "서구");
    assert_string_equal(a.kind, "provider");
    assert_string_equal(a.level, "district");
    assert_string_equal(a.type, "district-center");
    assert_string_equal(a.phone, "042-123-4567");
    assert_string_equal(a.code, "3660000");
    assert_string_equal(a.tls_key, "sha256:" KEY64);
    ch_agency_fini(&a);
    json_decref(body);
}

static void test_agency_errors_name_the_field(void **state)
{
    expect_field_error(CH_API__AGENCIES,
                       "{\"kind\":\"user\",\"level\":\"city\",\"type\":\"other\"}", "name");
    expect_field_error(CH_API__AGENCIES,
                       "{\"name\":\"\",\"kind\":\"user\",\"level\":\"city\",\"type\":\"other\"}",
                       "name");
    expect_field_error(CH_API__AGENCIES,
                       "{\"name\":\"x\",\"kind\":\"seller\",\"level\":\"city\",\"type\":\"other\"}",
                       "kind");
    expect_field_error(CH_API__AGENCIES,
                       "{\"name\":\"x\",\"kind\":\"user\",\"level\":\"planet\",\"type\":\"other\"}",
                       "level");
    expect_field_error(CH_API__AGENCIES,
                       "{\"name\":\"x\",\"kind\":\"user\",\"level\":\"city\",\"type\":\"police\"}",
                       "type");
    expect_field_error(CH_API__AGENCIES, "{\"name\":\"x\",\"kind\":\"user\",\"level\":\"city\"}",
                       "type");
    expect_field_error(CH_API__AGENCIES, "{" AGY_OK ",\"phone\":42}", "phone");
    expect_field_error(CH_API__AGENCIES, "{" AGY_OK ",\"name2\":\"x\"}", "name2");
}

/* An agency's tls_key is compared byte for byte with what a handshake showed: only the PKI's
 * own form is taken (as an API key's), null clears it. */
static void test_agency_tls_key_must_be_the_pki_fingerprint(void **state)
{
    (void)state;
    expect_field_error(CH_API__AGENCIES, "{" AGY_OK ",\"tls_key\":\"sha256:00\"}", "tls_key");
    expect_field_error(CH_API__AGENCIES, "{" AGY_OK ",\"tls_key\":\"SHA256:" KEY64 "\"}",
                       "tls_key");
    expect_field_error(CH_API__AGENCIES,
                       "{" AGY_OK ",\"tls_key\":\"sha256:0123456789ABCDEF0123456789abcdef"
                       "0123456789abcdef0123456789abcdef\"}",
                       "tls_key");
    expect_field_error(CH_API__AGENCIES, "{" AGY_OK ",\"tls_key\":\"" KEY64 "\"}", "tls_key");
    expect_field_error(CH_API__AGENCIES, "{" AGY_OK ",\"tls_key\":7}", "tls_key");
    const char *text = "{" AGY_OK ",\"tls_key\":null}";
    ch_api__err_t err;
    json_t *body = ch_api__parse_body(text, strlen(text), &err);
    ch_agency_t a;
    memset(&a, 0, sizeof(a));
    a.tls_key = ch_strdup("sha256:" KEY64);
    assert_int_equal(ch_api__agency_from_json(body, &a, &err), 0);
    assert_null(a.tls_key);
    ch_agency_fini(&a);
    json_decref(body);
}

static void test_every_agency_type_is_accepted(void **state)
{
    static const char *types[] = {"police-112",      "police-station", "fire-119", "moj-tracking",
                                  "disaster-room",   "mayor-office",   "ansimi",   "military",
                                  "district-center", "city-agency",    "other"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(types); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"name\":\"x\",\"kind\":\"both\",\"level\":\"national\",\"type\":\"%s\"}",
                 types[i]);
        ch_api__err_t err;
        assert_int_equal(convert(CH_API__AGENCIES, text, &err), 0);
    }
}

static void test_unknown_field_is_rejected_by_name(void **state)
{
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"latitude\":37.5}", "latitude");
    expect_field_error(CH_API__DEVICES, "{" DEV_OK ",\"heading_deg\":10}", "heading_deg");
    ch_api__err_t err;
    assert_int_equal(convert(CH_API__CAMERAS, "{" CAM_OK ",\"bogus\":1}", &err), CH_EINVAL);
    assert_string_equal(err.message, "unknown field");
}

static void test_wrong_json_types_are_named(void **state)
{
    expect_field_error(CH_API__CAMERAS, "{\"agency_id\":\"1\",\"name\":\"cam\"}", "agency_id");
    expect_field_error(CH_API__CAMERAS, "{\"agency_id\":1.5,\"name\":\"cam\"}", "agency_id");
    expect_field_error(CH_API__CAMERAS, "{\"agency_id\":1,\"name\":7}", "name");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":\"37\",\"lon\":127}", "lat");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"kind\":true}", "kind");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"pixels\":2.5}", "pixels");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"note\":[]}", "note");
    expect_field_error(CH_API__DEVICES, "{" DEV_OK ",\"attrs\":\"x\"}", "attrs");
}

static void test_camera_requires_agency_id_and_name(void **state)
{
    expect_field_error(CH_API__CAMERAS, "{\"name\":\"cam\"}", "agency_id");
    expect_field_error(CH_API__CAMERAS, "{\"agency_id\":null,\"name\":\"cam\"}", "agency_id");
    expect_field_error(CH_API__CAMERAS, "{\"agency_id\":0,\"name\":\"cam\"}", "agency_id");
    expect_field_error(CH_API__CAMERAS, "{\"agency_id\":1}", "name");
    expect_field_error(CH_API__DEVICES, "{\"agency_id\":1,\"name\":\"b\"}", "kind");
}

static void test_position_ranges_and_pairing_are_checked(void **state)
{
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":90.0001,\"lon\":127}", "lat");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":-91,\"lon\":127}", "lat");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":37,\"lon\":180.5}", "lon");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":37,\"lon\":-181}", "lon");
    /* A lone coordinate names the one that is missing. */
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":37}", "lon");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"lon\":127,\"lat\":null}", "lat");
    expect_field_error(CH_API__DEVICES, "{" DEV_OK ",\"lon\":127}", "lat");
    ch_api__err_t err;
    assert_int_equal(convert(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":-90,\"lon\":180}", &err), 0);
    assert_int_equal(convert(CH_API__CAMERAS, "{" CAM_OK ",\"lat\":90,\"lon\":-180}", &err), 0);
}

static void test_camera_number_ranges_are_checked(void **state)
{
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"heading_deg\":360.5}", "heading_deg");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"heading_deg\":-1}", "heading_deg");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"fov_deg\":361}", "fov_deg");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"range_m\":-0.5}", "range_m");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"pixels\":-1}", "pixels");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"retention_days\":3651}", "retention_days");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"retention_days\":-1}", "retention_days");
    ch_api__err_t err;
    assert_int_equal(convert(CH_API__CAMERAS,
                             "{" CAM_OK ",\"heading_deg\":360,\"fov_deg\":0,\"range_m\":0,"
                             "\"pixels\":0,\"retention_days\":3650}",
                             &err),
                     0);
}

static void test_camera_text_formats_are_checked(void **state)
{
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"installed_ym\":\"2024-13\"}",
                       "installed_ym");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"installed_ym\":\"24-01\"}", "installed_ym");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"installed_ym\":\"2024-1x\"}",
                       "installed_ym");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"codec\":\"mjpeg\"}", "codec");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"status\":\"broken\"}", "status");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"kind\":\"dome\"}", "kind");
    expect_field_error(CH_API__DEVICES, "{" DEV_OK ",\"status\":\"maintenance\"}", "status");
    ch_api__err_t err;
    assert_int_equal(convert(CH_API__CAMERAS, "{" CAM_OK ",\"installed_ym\":\"2019\"}", &err), 0);
    assert_int_equal(convert(CH_API__CAMERAS, "{" CAM_OK ",\"installed_ym\":\"2019-07\"}", &err),
                     0);
}

static void test_overlong_strings_are_rejected(void **state)
{
    char text[2048];
    char name[400];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"agency_id\":1,\"name\":\"%s\"}", name);
    expect_field_error(CH_API__CAMERAS, text, "name");
}

static void test_bad_rtsp_url_is_named_without_echoing_it(void **state)
{
    ch_api__err_t err;
    assert_int_equal(
        convert(CH_API__CAMERAS, "{" CAM_OK ",\"rtsp_url\":\"http://admin:s3cret@cam/\"}", &err),
        CH_EINVAL);
    assert_string_equal(err.field, "rtsp_url");
    assert_null(strstr(err.message, "s3cret"));
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"rtsp_url\":\"rtsp://a b\"}", "rtsp_url");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"rtsp_url\":\"rtsp://\"}", "rtsp_url");
    expect_field_error(CH_API__CAMERAS, "{" CAM_OK ",\"rtsp_password\":1234}", "rtsp_password");
    assert_int_equal(
        convert(CH_API__CAMERAS, "{" CAM_OK ",\"rtsp_url\":\"RTSPS://cam:322/s\"}", &err), 0);
}

static void test_camera_defaults_follow_the_position(void **state)
{
    const char *located = "{" CAM_OK ",\"lat\":36.35,\"lon\":127.38}";
    const char *unlocated = "{" CAM_OK "}";
    ch_api__err_t err;
    json_t *b1 = ch_api__parse_body(located, strlen(located), &err);
    json_t *b2 = ch_api__parse_body(unlocated, strlen(unlocated), &err);
    ch_camera_t c;
    ch_camera_init(&c);
    assert_int_equal(ch_api__camera_from_json(b1, &c, &err), 0);
    assert_int_equal(c.located, 1);
    assert_true(c.lat > 36.34 && c.lat < 36.36);
    assert_string_equal(c.status, "active");
    assert_string_equal(c.kind, "unknown");
    assert_true(c.heading_deg == CH_STORE_UNKNOWN_DOUBLE);
    assert_int_equal(ch_api__camera_from_json(b2, &c, &err), 0);
    assert_int_equal(c.located, 0);
    assert_true(c.lat == 0.0 && c.lon == 0.0);
    assert_string_equal(c.status, "unlocated");
    ch_camera_fini(&c);
    json_decref(b1);
    json_decref(b2);
}

/* A client that reads a camera and writes it back must not wipe credentials it never saw. */
static void test_absent_credentials_are_kept_and_null_clears_them(void **state)
{
    ch_api__err_t err;
    ch_camera_t c;
    ch_camera_init(&c);
    const char *with =
        "{" CAM_OK ",\"rtsp_url\":\"rtsp://10.0.0.5/s1\",\"rtsp_username\":\"admin\","
        "\"rtsp_password\":\"pw\"}";
    const char *without = "{" CAM_OK ",\"note\":\"moved\"}";
    const char *cleared = "{" CAM_OK ",\"rtsp_url\":null,\"rtsp_password\":null}";
    json_t *b = ch_api__parse_body(with, strlen(with), &err);
    assert_int_equal(ch_api__camera_from_json(b, &c, &err), 0);
    json_decref(b);
    b = ch_api__parse_body(without, strlen(without), &err);
    assert_int_equal(ch_api__camera_from_json(b, &c, &err), 0);
    json_decref(b);
    assert_string_equal(c.rtsp_url, "rtsp://10.0.0.5/s1");
    assert_string_equal(c.rtsp_username, "admin");
    assert_string_equal(c.rtsp_password, "pw");
    assert_string_equal(c.note, "moved");
    b = ch_api__parse_body(cleared, strlen(cleared), &err);
    assert_int_equal(ch_api__camera_from_json(b, &c, &err), 0);
    json_decref(b);
    assert_null(c.rtsp_url);
    assert_null(c.rtsp_password);
    assert_string_equal(c.rtsp_username, "admin");
    ch_camera_fini(&c);
}

static void test_camera_json_never_holds_credentials(void **state)
{
    ch_camera_t c;
    ch_camera_init(&c);
    c.id = 7;
    c.agency_id = 2;
    c.name = ch_strdup("cam");
    c.kind = ch_strdup("ptz");
    c.status = ch_strdup("active");
    c.rtsp_url = ch_strdup("rtsp://admin:topsecret@10.0.0.5/s1");
    c.rtsp_username = ch_strdup("admin-user");
    c.rtsp_password = ch_strdup("hunter2");
    json_t *j = ch_api__camera_to_json(&c);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_null(strstr(text, "topsecret"));
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "admin-user"));
    assert_null(strstr(text, "rtsp_url"));
    assert_null(strstr(text, "rtsp_password"));
    assert_true(json_is_true(json_object_get(j, "rtsp_configured")));
    assert_true(json_is_null(json_object_get(j, "lat")));
    assert_true(json_is_null(json_object_get(j, "heading_deg")));
    free(text);
    json_decref(j);
    ch_free(c.rtsp_url);
    c.rtsp_url = NULL;
    j = ch_api__camera_to_json(&c);
    assert_true(json_is_false(json_object_get(j, "rtsp_configured")));
    json_decref(j);
    ch_camera_fini(&c);
}

/* What the API answers can be sent back unchanged (the server's own fields are ignored). */
static void test_record_json_round_trips_through_the_body_reader(void **state)
{
    ch_camera_t c;
    ch_camera_init(&c);
    c.id = 9;
    c.agency_id = 3;
    c.name = ch_strdup("둔산동 사거리");
    c.located = 1;
    c.lat = 36.3504;
    c.lon = 127.3845;
    c.kind = ch_strdup("fixed");
    c.status = ch_strdup("active");
    c.heading_deg = 90;
    c.pixels = 2000000;
    c.retention_days = 30;
    c.flags = ch_strdup("bad-date");
    c.source_key = ch_strdup("k1");
    c.created_at = 1764057600000;
    json_t *j = ch_api__camera_to_json(&c);
    ch_camera_t back;
    ch_camera_init(&back);
    ch_api__err_t err;
    assert_int_equal(ch_api__camera_from_json(j, &back, &err), 0);
    assert_string_equal(back.name, c.name);
    assert_true(back.lat == c.lat && back.lon == c.lon);
    assert_true(back.heading_deg == 90);
    assert_int_equal(back.pixels, 2000000);
    assert_int_equal(back.retention_days, 30);
    assert_null(back.flags); /* server-owned: ignored */
    assert_int_equal(back.id, 0);
    json_decref(j);
    ch_camera_fini(&back);
    ch_camera_fini(&c);

    ch_device_t d;
    ch_device_init(&d);
    const char *text = "{" DEV_OK ",\"attrs\":{\"z\":1,\"a\":\"b\"},\"lat\":36.1,\"lon\":127.1}";
    json_t *b = ch_api__parse_body(text, strlen(text), &err);
    assert_int_equal(ch_api__device_from_json(b, &d, &err), 0);
    assert_string_equal(d.attrs, "{\"a\":\"b\",\"z\":1}");
    assert_string_equal(d.status, "active");
    json_t *dj = ch_api__device_to_json(&d);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(dj, "attrs"), "z")), 1);
    json_decref(dj);
    json_decref(b);
    ch_device_fini(&d);
}

static void test_bodies_that_are_not_one_json_object_are_bad_json(void **state)
{
    static const char *bad[] = {"",
                                "{",
                                "[1,2]",
                                "\"x\"",
                                "{\"a\":1}x",
                                "{\"name\":\"a\",\"name\":\"b\"}",
                                "{\"a\":\"\\u0000\"}",
                                "\xff\xfe{}"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        ch_api__err_t err;
        memset(&err, 0, sizeof(err));
        json_t *j = ch_api__parse_body(bad[i], strlen(bad[i]), &err);
        assert_null(j);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "bad_json");
        /* The message must itself be a valid JSON string. */
        json_t *e = ch_api__err_to_json(&err);
        assert_non_null(json_object_get(json_object_get(e, "error"), "message"));
        json_decref(e);
    }
}

static void test_error_json_has_field_only_when_one_is_at_fault(void **state)
{
    ch_api__err_t err;
    ch_api__err_set(&err, 404, "not_found", NULL, "no such camera");
    json_t *j = ch_api__err_to_json(&err);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text,
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no such camera\"}}");
    free(text);
    json_decref(j);
    ch_api__err_set(&err, 400, "invalid", "lat", "lat must be between %g and %g", -90.0, 90.0);
    j = ch_api__err_to_json(&err);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "field")),
                        "lat");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agency_body_with_every_field_converts),
        cmocka_unit_test(test_agency_errors_name_the_field),
        cmocka_unit_test(test_agency_tls_key_must_be_the_pki_fingerprint),
        cmocka_unit_test(test_every_agency_type_is_accepted),
        cmocka_unit_test(test_unknown_field_is_rejected_by_name),
        cmocka_unit_test(test_wrong_json_types_are_named),
        cmocka_unit_test(test_camera_requires_agency_id_and_name),
        cmocka_unit_test(test_position_ranges_and_pairing_are_checked),
        cmocka_unit_test(test_camera_number_ranges_are_checked),
        cmocka_unit_test(test_camera_text_formats_are_checked),
        cmocka_unit_test(test_overlong_strings_are_rejected),
        cmocka_unit_test(test_bad_rtsp_url_is_named_without_echoing_it),
        cmocka_unit_test(test_camera_defaults_follow_the_position),
        cmocka_unit_test(test_absent_credentials_are_kept_and_null_clears_them),
        cmocka_unit_test(test_camera_json_never_holds_credentials),
        cmocka_unit_test(test_record_json_round_trips_through_the_body_reader),
        cmocka_unit_test(test_bodies_that_are_not_one_json_object_are_bad_json),
        cmocka_unit_test(test_error_json_has_field_only_when_one_is_at_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
