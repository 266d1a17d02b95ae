/* Unit tests of api/query.c and api/routes.c: percent-decoding (Korean text included), query
 * parameters, list filters, cursors, route matching and path ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
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

/* ---- the shared list parser ---- */

static int parse_hhmm(const char *v, void *dest)
{
    if (strlen(v) != 5 || v[2] != ':') {
        return CH_EPARSE;
    }
    *(int *)dest = (v[0] - '0') * 600 + (v[1] - '0') * 60 + (v[3] - '0') * 10 + (v[4] - '0');
    return 0;
}

static const char *const colours[] = {"red", "green", "blue", NULL};

/* Every kind once; the destinations start at their defaults, as a handler sets them. */
typedef struct every_kind {
    int64_t id, count, cursor, since;
    int limit, minutes, count_seen;
    const char *colour, *note, *search, *month;
    ch_store_filter_t box;
} every_kind_t;

static int read_every_kind(const char *query, every_kind_t *k, ch_api__query_t *q,
                           ch_api__err_t *err)
{
    memset(k, 0, sizeof(*k));
    memset(err, 0, sizeof(*err));
    k->limit = 100;
    k->count = -1;
    k->minutes = 540;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_ID("agency_id", &k->id)},
        {CH_API__QP_INT("count", &k->count, 0, 9), .seen = &k->count_seen},
        {CH_API__QP_CURSOR("cursor", &k->cursor)},
        {CH_API__QP_LIMIT("limit", &k->limit)},
        {CH_API__QP_CHOICE("colour", &k->colour, colours)},
        {CH_API__QP_TEXT("note", &k->note)},
        {CH_API__QP_SEARCH("q", &k->search)},
        {CH_API__QP_TIME("since", &k->since)},
        {CH_API__QP_MONTH("month", &k->month), .required = 1},
        {CH_API__QP_BBOX("bbox", &k->box)},
        {CH_API__QP_PARSE("at", &k->minutes, parse_hhmm, "HH:MM")},
        {CH_API__QP_END},
    };
    return ch_api__query_read(S(query), spec, q, err);
}

static void test_list_parser_fills_every_kind_and_keeps_defaults(void **state)
{
    every_kind_t k;
    ch_api__query_t q;
    ch_api__err_t err;
    char cursor[CH_API__CURSOR_MAX];
    ch_api__cursor_encode(77, cursor);
    char query[512];
    snprintf(query, sizeof(query),
             "agency_id=12&count=0&cursor=%s&limit=1000&colour=green&note=&q=%%EB%%91%%94&"
             "since=2026-11-25T08:00:00Z&month=2026-11&bbox=126.9,37.5,127.1,37.6&at=07:30",
             cursor);
    assert_int_equal(read_every_kind(query, &k, &q, &err), 0);
    assert_int_equal(k.id, 12);
    assert_int_equal(k.count, 0);
    assert_int_equal(k.count_seen, 1);
    assert_int_equal(k.cursor, 77);
    assert_int_equal(k.limit, 1000);
    assert_string_equal(k.colour, "green");
    assert_string_equal(k.note, ""); /* text keeps an empty value */
    assert_string_equal(k.search, "둔");
    assert_true(k.since == 1795593600LL * 1000000000LL);
    assert_string_equal(k.month, "2026-11");
    assert_int_equal(k.box.has_bbox, 1);
    assert_true(k.box.min_lon == 126.9 && k.box.max_lat == 37.6);
    assert_int_equal(k.minutes, 450);
    ch_api__query_fini(&q);
    /* Only the required month: everything else keeps the caller's default. */
    assert_int_equal(read_every_kind("month=1970-01&q=", &k, &q, &err), 0);
    assert_int_equal(k.limit, 100);
    assert_int_equal(k.count, -1);
    assert_int_equal(k.count_seen, 0);
    assert_int_equal(k.minutes, 540);
    assert_int_equal(k.id, 0);
    assert_null(k.colour);
    assert_null(k.note);
    assert_null(k.search); /* an empty search box searches nothing */
    assert_int_equal(k.box.has_bbox, 0);
    ch_api__query_fini(&q);
}

/* Reads query against the every-kind spec and checks the 400's field and message. */
static void expect_list_error(const char *query, const char *field, const char *message)
{
    every_kind_t k;
    ch_api__query_t q;
    ch_api__err_t err;
    int rc = read_every_kind(query, &k, &q, &err);
    ch_api__query_fini(&q);
    if (rc != CH_EINVAL || err.status != 400 || strcmp(err.code, "invalid") != 0 ||
        strcmp(err.field, field) != 0 || strcmp(err.message, message) != 0) {
        print_error("query %s: rc %d status %d field '%s' message '%s'; expected '%s' '%s'\n",
                    query, rc, err.status, err.field, err.message, field, message);
        fail();
    }
    assert_int_equal(q.count, 0);
}

static void test_list_parser_names_the_parameter_of_each_mistake(void **state)
{
    static const char unknown[] =
        "unknown query parameter; takes agency_id, count, cursor, limit, colour, note, q, "
        "since, month, bbox, at";
    expect_list_error("month=2026-01&limt=5", "limt", unknown);
    expect_list_error("month=2026-01&limit=1&limit=2", "limit",
                      "query parameter given more than once");
    expect_list_error("month=2026-01&limit=0", "limit", "limit must be an integer 1..1000");
    expect_list_error("month=2026-01&limit=1001", "limit", "limit must be an integer 1..1000");
    expect_list_error("month=2026-01&limit=ten", "limit", "limit must be an integer 1..1000");
    expect_list_error("month=2026-01&limit=", "limit", "limit must be an integer 1..1000");
    expect_list_error("month=2026-01&cursor=12", "cursor",
                      "cursor is not one this server handed out; start again without it");
    expect_list_error("month=2026-01&agency_id=0", "agency_id",
                      "agency_id must be a positive integer");
    expect_list_error("month=2026-01&agency_id=-3", "agency_id",
                      "agency_id must be a positive integer");
    expect_list_error("month=2026-01&agency_id=1x", "agency_id",
                      "agency_id must be a positive integer");
    expect_list_error("month=2026-01&count=10", "count", "count must be an integer 0..9");
    expect_list_error("month=2026-01&colour=gren", "colour",
                      "colour must be one of red, green, blue");
    expect_list_error("month=2026-01&colour=", "colour", "colour must be one of red, green, blue");
    expect_list_error("month=2026-01&colour=RED", "colour",
                      "colour must be one of red, green, blue");
    expect_list_error("month=2026-01&since=yesterday", "since",
                      "since must be RFC 3339 (2026-11-25T08:00:00Z), a date or epoch seconds");
    expect_list_error("month=2026-13", "month", "month must be a month, YYYY-MM");
    expect_list_error("month=2026-1", "month", "month must be a month, YYYY-MM");
    expect_list_error("month=+026-01", "month", "month must be a month, YYYY-MM");
    expect_list_error("month=1969-12", "month", "month must be a month, YYYY-MM");
    expect_list_error("month=2026-01&bbox=1,2,3", "bbox",
                      "bbox must be min_lon,min_lat,max_lon,max_lat within -180..180 and "
                      "-90..90, min <= max");
    expect_list_error("month=2026-01&at=7:30", "at", "at must be HH:MM");
    expect_list_error("", "month", "month is required");
    expect_list_error("limit=5", "month", "month is required");
    expect_list_error("month=2026-01&=5", "query", unknown); /* no name at all */
    /* An unknown name is answered before a bad value, wherever it stands. */
    expect_list_error("month=2026-01&limit=0&colr=red", "colr", unknown);
    /* Values are checked in the query's order. */
    expect_list_error("month=2026-01&colour=x&limit=0", "colour",
                      "colour must be one of red, green, blue");
    expect_list_error("month=2026-01&limit=0&colour=x", "limit",
                      "limit must be an integer 1..1000");
    /* A field longer than the error's buffer is cut at a UTF-8 boundary. */
    every_kind_t k;
    ch_api__query_t q;
    ch_api__err_t err;
    char query[512];
    size_t n = (size_t)snprintf(query, sizeof(query), "month=2026-01&");
    for (int i = 0; i < 30; i++) {
        n += (size_t)snprintf(query + n, sizeof(query) - n, "%%EB%%91%%94"); /* 둔, 3 bytes */
    }
    snprintf(query + n, sizeof(query) - n, "=1");
    assert_int_equal(read_every_kind(query, &k, &q, &err), CH_EINVAL);
    assert_true(strlen(err.field) == 63);
    assert_true(ch_api__utf8_valid(err.field, strlen(err.field)));
    ch_api__query_fini(&q);
}

static void test_an_empty_spec_takes_no_parameters(void **state)
{
    static const ch_api__qparam_t none[] = {{CH_API__QP_END}};
    ch_api__query_t q;
    ch_api__err_t err;
    assert_int_equal(ch_api__query_read(S(""), none, &q, &err), 0);
    ch_api__query_fini(&q);
    assert_int_equal(ch_api__query_read(S("&&"), none, &q, &err), 0); /* empty pieces */
    ch_api__query_fini(&q);
    assert_int_equal(ch_api__query_read(S("limit=5"), none, &q, &err), CH_EINVAL);
    assert_string_equal(err.field, "limit");
    assert_string_equal(err.message, "this endpoint takes no query parameters");
    ch_api__query_fini(&q);
}

/* The store's own lists make the message of each enumerated filter. */
static void test_unknown_choices_list_the_accepted_values(void **state)
{
    ch_api__query_t q;
    ch_api__err_t err;
    ch_store_filter_t f;
    assert_int_equal(filter("kind=dome", CH_API__CAMERAS, &f, &q, &err), CH_EINVAL);
    assert_string_equal(err.message, "kind must be one of fixed, ptz, unknown");
    ch_api__query_fini(&q);
    assert_int_equal(filter("status=fault", CH_API__CAMERAS, &f, &q, &err), CH_EINVAL);
    assert_string_equal(err.message,
                        "status must be one of active, inactive, unlocated, maintenance");
    ch_api__query_fini(&q);
    /* The longest list, the agency types, fits the message whole. */
    assert_int_equal(filter("type=police", CH_API__AGENCIES, &f, &q, &err), CH_EINVAL);
    assert_non_null(strstr(err.message, "police-112, "));
    assert_non_null(strstr(err.message, ", other"));
    ch_api__query_fini(&q);
    assert_int_equal(filter("limt=5", CH_API__DEVICES, &f, &q, &err), CH_EINVAL);
    assert_string_equal(err.message, "unknown query parameter; takes agency_id, kind, status, q, "
                                     "bbox, cursor, limit");
    ch_api__query_fini(&q);
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
        cmocka_unit_test(test_list_parser_fills_every_kind_and_keeps_defaults),
        cmocka_unit_test(test_list_parser_names_the_parameter_of_each_mistake),
        cmocka_unit_test(test_an_empty_spec_takes_no_parameters),
        cmocka_unit_test(test_unknown_choices_list_the_accepted_values),
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
