/* Unit tests of api/query.c and api/routes.c: percent-decoding (Korean text included), query
 * parameters, list filters, cursors, route matching and path ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "api/api_internal.h"
#include "auth/auth.h"

static ch_slice_t S(const char *s)
{
    return (ch_slice_t){s, strlen(s)};
}

static void test_percent_decoding_turns_escapes_and_plus_into_bytes(void **state)
{
    char *out = NULL;
    assert_int_equal(ch_api__percent_decode("a%20b+c", 7, 1, &out), 0);
    assert_string_equal(out, "a b c");
    ch_free(out);
    assert_int_equal(ch_api__percent_decode("a+b", 3, 0, &out), 0);
    assert_string_equal(out, "a+b");
    ch_free(out);
    assert_int_equal(ch_api__percent_decode("%2f%2F", 6, 1, &out), 0);
    assert_string_equal(out, "//");
    ch_free(out);
    assert_int_equal(ch_api__percent_decode("", 0, 1, &out), 0);
    assert_string_equal(out, "");
    ch_free(out);
}

static void test_percent_decoding_reads_korean_utf8(void **state)
{
    /* "서구" (U+C11C U+AD6C) as a browser sends it. */
    const char *in = "%EC%84%9C%EA%B5%AC";
    char *out = NULL;
    assert_int_equal(ch_api__percent_decode(in, strlen(in), 1, &out), 0);
    assert_string_equal(out, "서구");
    ch_free(out);
    /* Raw UTF-8 bytes (not escaped) pass through too. */
    assert_int_equal(ch_api__percent_decode("대전", strlen("대전"), 1, &out), 0);
    assert_string_equal(out, "대전");
    ch_free(out);
}

static void test_percent_decoding_rejects_malformed_input(void **state)
{
    static const char *bad[] = {
        "%",
        "%4",
        "%zz",
        "a%g0",
        "%00",          /* NUL would cut C strings */
        "%C0%AF",       /* overlong '/' */
        "%ED%A0%80",    /* UTF-16 surrogate */
        "%F4%90%80%80", /* above U+10FFFF */
        "%EC%84",       /* truncated sequence */
        "%B5",          /* lone continuation byte (a CP949 second byte) */
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        char *out = (char *)1;
        assert_int_equal(ch_api__percent_decode(bad[i], strlen(bad[i]), 1, &out), CH_EPARSE);
        assert_null(out);
    }
}

static void test_utf8_validation_is_strict(void **state)
{
    assert_true(ch_api__utf8_valid("abc", 3));
    assert_true(ch_api__utf8_valid("\xf0\x9f\x93\xb7", 4)); /* U+1F4F7 camera */
    assert_false(ch_api__utf8_valid("\xe0\x80\x80", 3));    /* overlong */
    assert_false(ch_api__utf8_valid("\xf8\x88\x80\x80\x80", 5));
    assert_false(ch_api__utf8_valid("\xc3", 1));
}

static void test_query_parameters_are_split_and_decoded(void **state)
{
    ch_api__query_t q;
    ch_api__err_t err;
    assert_int_equal(
        ch_api__query_parse(S("q=%EC%84%9C%EA%B5%AC+1&limit=5&&flag&empty="), &q, &err), 0);
    assert_int_equal(q.count, 4);
    assert_string_equal(ch_api__query_get(&q, "q"), "서구 1");
    assert_string_equal(ch_api__query_get(&q, "limit"), "5");
    assert_string_equal(ch_api__query_get(&q, "flag"), "");
    assert_string_equal(ch_api__query_get(&q, "empty"), "");
    assert_null(ch_api__query_get(&q, "cursor"));
    ch_api__query_fini(&q);
    assert_int_equal(ch_api__query_parse(S(""), &q, &err), 0);
    assert_int_equal(q.count, 0);
    ch_api__query_fini(&q);
}

static void test_repeated_or_undecodable_parameters_are_named(void **state)
{
    ch_api__query_t q;
    ch_api__err_t err;
    assert_int_equal(ch_api__query_parse(S("limit=1&limit=2"), &q, &err), CH_EINVAL);
    assert_string_equal(err.field, "limit");
    assert_int_equal(q.count, 0);
    ch_api__query_fini(&q);
    assert_int_equal(ch_api__query_parse(S("q=%E"), &q, &err), CH_EINVAL);
    assert_string_equal(err.field, "q");
    ch_api__query_fini(&q);
    assert_int_equal(ch_api__query_parse(S("%ff=1"), &q, &err), CH_EINVAL);
    assert_string_equal(err.field, "query");
    ch_api__query_fini(&q);
}

/* Parses query into a filter for res; returns the result and leaves the error in err. */
static int filter(const char *query, ch_api__resource_t res, ch_store_filter_t *f,
                  ch_api__query_t *q, ch_api__err_t *err)
{
    memset(err, 0, sizeof(*err));
    int rc = ch_api__query_parse(S(query), q, err);
    if (rc == 0) {
        rc = ch_api__filter_from_query(q, res, f, err);
    }
    return rc;
}

static void expect_filter_error(const char *query, ch_api__resource_t res, const char *field)
{
    ch_api__query_t q;
    ch_api__err_t err;
    ch_store_filter_t f;
    int rc = filter(query, res, &f, &q, &err);
    ch_api__query_fini(&q);
    if (rc != CH_EINVAL || strcmp(err.field, field) != 0) {
        print_error("query %s: rc %d field '%s', expected '%s'\n", query, rc, err.field, field);
        fail();
    }
    assert_int_equal(err.status, 400);
}

static void test_camera_filters_are_read_from_the_query(void **state)
{
    ch_api__query_t q;
    ch_api__err_t err;
    ch_store_filter_t f;
    assert_int_equal(
        filter("agency_id=3&purpose=%EC%83%9D%ED%99%9C%EB%B0%A9%EB%B2%94&kind=ptz&"
               "status=active&q=%EB%91%94%EC%82%B0&bbox=127.3,36.2,127.5,36.4&limit=50",
               CH_API__CAMERAS, &f, &q, &err),
        0);
    assert_int_equal(f.agency_id, 3);
    assert_string_equal(f.purpose, "생활방범");
    assert_string_equal(f.kind, "ptz");
    assert_string_equal(f.status, "active");
    assert_string_equal(f.text, "둔산");
    assert_int_equal(f.has_bbox, 1);
    assert_true(f.min_lon == 127.3 && f.min_lat == 36.2 && f.max_lon == 127.5 && f.max_lat == 36.4);
    assert_int_equal(f.limit, 50);
    assert_int_equal(f.after_id, 0);
    ch_api__query_fini(&q);
    /* Defaults: 100 items, no filters; an empty search text filters nothing. */
    assert_int_equal(filter("q=", CH_API__AGENCIES, &f, &q, &err), 0);
    assert_int_equal(f.limit, 100);
    assert_null(f.text);
    assert_int_equal(f.has_bbox, 0);
    ch_api__query_fini(&q);
}

static void test_bad_filters_name_the_parameter(void **state)
{
    expect_filter_error("limit=0", CH_API__CAMERAS, "limit");
    expect_filter_error("limit=1001", CH_API__CAMERAS, "limit");
    expect_filter_error("limit=ten", CH_API__CAMERAS, "limit");
    expect_filter_error("agency_id=-1", CH_API__CAMERAS, "agency_id");
    expect_filter_error("agency_id=x", CH_API__DEVICES, "agency_id");
    expect_filter_error("kind=dome", CH_API__CAMERAS, "kind");
    expect_filter_error("kind=ptz", CH_API__DEVICES, "kind");
    expect_filter_error("status=fault", CH_API__CAMERAS, "status");
    expect_filter_error("type=police", CH_API__AGENCIES, "type");
    expect_filter_error("level=planet", CH_API__AGENCIES, "level");
    expect_filter_error("bbox=1,2,3", CH_API__CAMERAS, "bbox");
    expect_filter_error("bbox=1,2,3,4,5", CH_API__CAMERAS, "bbox");
    expect_filter_error("bbox=127.5,36.2,127.3,36.4", CH_API__CAMERAS, "bbox"); /* min > max */
    expect_filter_error("bbox=127,91,128,92", CH_API__CAMERAS, "bbox");
    expect_filter_error("bbox=a,b,c,d", CH_API__DEVICES, "bbox");
    expect_filter_error("cursor=!!", CH_API__CAMERAS, "cursor");
    expect_filter_error("cursor=12", CH_API__CAMERAS, "cursor");
    /* Parameters another resource takes are unknown here. */
    expect_filter_error("bbox=1,2,3,4", CH_API__AGENCIES, "bbox");
    expect_filter_error("purpose=x", CH_API__DEVICES, "purpose");
    expect_filter_error("level=city", CH_API__CAMERAS, "level");
    expect_filter_error("limt=5", CH_API__CAMERAS, "limt");
}

static void test_cursors_round_trip_and_reject_forgeries(void **state)
{
    static const int64_t ids[] = {1, 9, 10, 99, 100, 12345, 4294967296LL, INT64_MAX};
    for (size_t i = 0; i < CH_ARRAY_SIZE(ids); i++) {
        char cursor[CH_API__CURSOR_MAX];
        ch_api__cursor_encode(ids[i], cursor);
        for (const char *p = cursor; *p; p++) {
            assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                        (*p >= '0' && *p <= '9') || *p == '-' || *p == '_');
        }
        int64_t back = 0;
        assert_int_equal(ch_api__cursor_decode(cursor, &back), 0);
        assert_true(back == ids[i]);
    }
    char c[CH_API__CURSOR_MAX];
    ch_api__cursor_encode(42, c);
    assert_string_equal(c, "djE6NDI"); /* base64url("v1:42") */
    int64_t v;
    assert_int_equal(ch_api__cursor_decode("", &v), CH_EPARSE);
    assert_int_equal(ch_api__cursor_decode("djE6NDI=", &v), CH_EPARSE); /* padding */
    assert_int_equal(ch_api__cursor_decode("djE6NDJ", &v), CH_EPARSE);  /* non-zero spare bits */
    assert_int_equal(ch_api__cursor_decode("djE6MDQy", &v), CH_EPARSE); /* "v1:042" */
    assert_int_equal(ch_api__cursor_decode("djE6MA", &v), CH_EPARSE);   /* "v1:0" */
    assert_int_equal(ch_api__cursor_decode("djI6NDI", &v), CH_EPARSE);  /* "v2:42" */
    assert_int_equal(ch_api__cursor_decode("djE6LTE", &v), CH_EPARSE);  /* "v1:-1" */
    assert_int_equal(ch_api__cursor_decode("42", &v), CH_EPARSE);
}

static void test_routes_match_method_and_path(void **state)
{
    ch_api__match_t m;
    assert_int_equal(ch_api__route_match(S("GET"), S("/api/v1/health"), &m), 0);
    assert_int_equal(m.route, CH_API__R_HEALTH);
    assert_int_equal(ch_api__route_match(S("GET"), S("/api/v1/cameras"), &m), 0);
    assert_int_equal(m.route, CH_API__R_LIST);
    assert_int_equal(m.resource, CH_API__CAMERAS);
    assert_int_equal(ch_api__route_match(S("DELETE"), S("/api/v1/agencies/12"), &m), 0);
    assert_int_equal(m.route, CH_API__R_DELETE);
    assert_int_equal(m.resource, CH_API__AGENCIES);
    assert_int_equal(m.id.len, 2);
    assert_memory_equal(m.id.ptr, "12", 2);
    assert_int_equal(ch_api__route_match(S("PATCH"), S("/api/v1/devices/3"), &m), 0);
    assert_int_equal(m.route, CH_API__R_PATCH);
    assert_int_equal(m.resource, CH_API__DEVICES);
    assert_int_equal(ch_api__route_match(S("POST"), S("/api/v1/imports"), &m), 0);
    assert_int_equal(m.route, CH_API__R_IMPORT);
}

static void test_unknown_paths_and_wrong_methods_are_told_apart(void **state)
{
    ch_api__match_t m;
    assert_int_equal(ch_api__route_match(S("GET"), S("/api/v1/nothing"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("GET"), S("/api/v1/cameras/"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("GET"), S("/api/v1/cameras/1/x"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("GET"), S("/api/v1/camerasx"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("GET"), S("//"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("GET"), S("/index.html"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("GET"), S("/console/"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("GET"), S("/console"), &m), CH_ENOTFOUND);
    assert_int_equal(ch_api__route_match(S("POST"), S("/"), &m), CH_EUNSUPP);
    assert_int_equal(ch_api__route_match(S("DELETE"), S("/api/v1/cameras"), &m), CH_EUNSUPP);
    assert_string_equal(m.allow, "GET, POST");
    assert_int_equal(ch_api__route_match(S("POST"), S("/api/v1/cameras/5"), &m), CH_EUNSUPP);
    assert_string_equal(m.allow, "GET, PUT, PATCH, DELETE");
    assert_int_equal(ch_api__route_match(S("GET"), S("/api/v1/imports"), &m), CH_EUNSUPP);
    assert_string_equal(m.allow, "POST");
    assert_int_equal(ch_api__route_match(S("get"), S("/api/v1/health"), &m), CH_EUNSUPP);
}

static void test_console_routes_take_the_rest_of_the_path(void **state)
{
    ch_api__match_t m;
    assert_int_equal(ch_api__route_match(S("GET"), S("/"), &m), 0);
    assert_int_equal(m.route, CH_API__R_CONSOLE_INDEX);
    assert_true(m.roles & CH_AUTH_PUBLIC);
    assert_int_equal(ch_api__route_match(S("GET"), S("/console/config.json"), &m), 0);
    assert_int_equal(m.route, CH_API__R_CONSOLE_CONFIG);
    assert_int_equal(ch_api__route_match(S("GET"), S("/console/vendor/leaflet/leaflet.js"), &m), 0);
    assert_int_equal(m.route, CH_API__R_CONSOLE_FILE);
    assert_true(m.roles & CH_AUTH_PUBLIC);
    assert_int_equal(m.id.len, strlen("vendor/leaflet/leaflet.js"));
    assert_memory_equal(m.id.ptr, "vendor/leaflet/leaflet.js", m.id.len);
    /* The rest is taken as is: the static handler decides what it may serve. */
    assert_int_equal(ch_api__route_match(S("GET"), S("/console/../../etc/passwd"), &m), 0);
    assert_int_equal(m.route, CH_API__R_CONSOLE_FILE);
    assert_int_equal(ch_api__route_match(S("DELETE"), S("/console/app.js"), &m), CH_EUNSUPP);
    assert_string_equal(m.allow, "GET");
    assert_int_equal(ch_api__route_match(S("POST"), S("/console/config.json"), &m), CH_EUNSUPP);
    assert_string_equal(m.allow, "GET");
}

/* No path the console's route accepts can leave the web root or name a hidden file. */
static void test_console_paths_cannot_climb_out_or_reach_hidden_files(void **state)
{
    assert_true(ch_api__static_path_ok(S("app.js")));
    assert_true(ch_api__static_path_ok(S("index.html")));
    assert_true(ch_api__static_path_ok(S("vendor/leaflet/leaflet.css")));
    assert_true(ch_api__static_path_ok(S("vendor/leaflet/images/layers-2x.png")));
    assert_true(ch_api__static_path_ok(S("a_b-c.d.mjs")));
    static const char *const bad[] = {
        "../etc/passwd.txt",
        "..",
        ".",
        "./app.js",
        "vendor/../../x.js",
        "vendor/..",
        "vendor/./app.js",
        ".git/config.txt",
        ".env.json",
        "vendor/.hidden.js",
        "/etc/passwd.txt",
        "vendor//app.js",
        "vendor/",
        "%2e%2e/x.js",
        "..%2fx.js",
        "app.js%00.png",
        "app.js?x",
        "a\\b.js",
        "node_modules/leaflet/dist/leaflet.js",
        "x/node_modules/y.js",
        "app.js ",
        "app",
        "package.json.bak",
        "server.c",
        "",
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        if (ch_api__static_path_ok((ch_slice_t){bad[i], strlen(bad[i])})) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
    char very_long[300];
    memset(very_long, 'a', sizeof(very_long));
    memcpy(very_long + sizeof(very_long) - 3, ".js", 3);
    assert_false(ch_api__static_path_ok((ch_slice_t){very_long, sizeof(very_long)}));
    /* A NUL inside the slice is not a plain character either. */
    assert_false(ch_api__static_path_ok((ch_slice_t){"a\0b.js", 6}));
}

static void test_console_files_get_their_content_type(void **state)
{
    assert_string_equal(ch_api__static_type(S("index.html")), "text/html; charset=utf-8");
    assert_string_equal(ch_api__static_type(S("app.js")), "text/javascript; charset=utf-8");
    assert_string_equal(ch_api__static_type(S("x.mjs")), "text/javascript; charset=utf-8");
    assert_string_equal(ch_api__static_type(S("a/b.css")), "text/css; charset=utf-8");
    assert_string_equal(ch_api__static_type(S("i.png")), "image/png");
    assert_string_equal(ch_api__static_type(S("i.svg")), "image/svg+xml");
    assert_string_equal(ch_api__static_type(S("config.json")), "application/json");
    assert_null(ch_api__static_type(S("x.map")));
    assert_null(ch_api__static_type(S(".js")));
    assert_null(ch_api__static_type(S("js")));
}

static void test_path_ids_are_canonical_positive_integers(void **state)
{
    int64_t id;
    assert_int_equal(ch_api__parse_id(S("1"), &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(ch_api__parse_id(S("9223372036854775807"), &id), 0);
    assert_true(id == INT64_MAX);
    assert_int_equal(ch_api__parse_id(S("9223372036854775808"), &id), CH_EPARSE);
    assert_int_equal(ch_api__parse_id(S("0"), &id), CH_EPARSE);
    assert_int_equal(ch_api__parse_id(S("01"), &id), CH_EPARSE);
    assert_int_equal(ch_api__parse_id(S("-1"), &id), CH_EPARSE);
    assert_int_equal(ch_api__parse_id(S("+1"), &id), CH_EPARSE);
    assert_int_equal(ch_api__parse_id(S("1a"), &id), CH_EPARSE);
    assert_int_equal(ch_api__parse_id(S(""), &id), CH_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_decoding_turns_escapes_and_plus_into_bytes),
        cmocka_unit_test(test_percent_decoding_reads_korean_utf8),
        cmocka_unit_test(test_percent_decoding_rejects_malformed_input),
        cmocka_unit_test(test_utf8_validation_is_strict),
        cmocka_unit_test(test_query_parameters_are_split_and_decoded),
        cmocka_unit_test(test_repeated_or_undecodable_parameters_are_named),
        cmocka_unit_test(test_camera_filters_are_read_from_the_query),
        cmocka_unit_test(test_bad_filters_name_the_parameter),
        cmocka_unit_test(test_cursors_round_trip_and_reject_forgeries),
        cmocka_unit_test(test_routes_match_method_and_path),
        cmocka_unit_test(test_unknown_paths_and_wrong_methods_are_told_apart),
        cmocka_unit_test(test_console_routes_take_the_rest_of_the_path),
        cmocka_unit_test(test_console_paths_cannot_climb_out_or_reach_hidden_files),
        cmocka_unit_test(test_console_files_get_their_content_type),
        cmocka_unit_test(test_path_ids_are_canonical_positive_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
