/*
 * Unit tests of the store on its SQLite back end: migrations, CRUD of every record field,
 * error codes, list filters and pagination, import upserts, transactions.
 *
 * Each test opens a fresh database file in its own temporary directory (setup) and removes it
 * afterwards (teardown), so tests are independent and can run in any order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "support/fixture.h"

typedef struct fixture {
    ch_test_store_t ts; /* its directory and path */
    ch_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_store_test", &fx->st) != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    int rc = ch_test_store_close(&fx->ts, fx->st);
    ch_free(fx);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void assert_str_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        assert_ptr_equal(a, b);
    } else {
        assert_string_equal(a, b);
    }
}

static int64_t make_agency(ch_store_t *st, const char *name, const char *type)
{
    ch_agency_t a = {0};
    a.name = (char *)name;
    a.kind = "provider";
    a.level = "district";
    a.type = (char *)type;
    assert_int_equal(ch_store_agency_create(st, &a), 0);
    assert_true(a.id > 0);
    return a.id;
}

/* A camera with every field set to something other than its default. Strings are borrowed
 * literals: do not fini. */
static void fill_camera(ch_camera_t *c, int64_t agency_id, const char *name)
{
    ch_camera_init(c);
    c->agency_id = agency_id;
    c->name = (char *)name;
    c->located = 1;
    c->lat = 37.5729;
    c->lon = 126.9794;
    c->road_address = "서울특별시 종로구 세종대로 209";
    c->lot_address = "세종로 1-68";
    c->purpose = "생활방범";
    c->kind = "ptz";
    c->heading_deg = 135.5;
    c->fov_deg = 90.0;
    c->range_m = 50.0;
    c->pixels = 2000000;
    c->retention_days = 30;
    c->installed_ym = "2018-09";
    c->rtsp_url = "rtsp://10.0.0.5:554/Streaming/Channels/101";
    c->rtsp_username = "admin";
    c->rtsp_password = "p@ss:w/rd\"'%_";
    c->codec = "h265";
    c->status = "active";
    c->direction = "360도 전방면";
    c->note = "주택 앞 삼거리";
    c->flags = "bad-date";
    c->source_file = "seoul.csv";
    c->source_line = 42;
    c->source_key = "seoul:42:1";
}

static void assert_camera_equal(const ch_camera_t *a, const ch_camera_t *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->agency_id, b->agency_id);
    assert_str_or_null(a->name, b->name);
    assert_int_equal(a->located, b->located);
    assert_true(a->lat == b->lat);
    assert_true(a->lon == b->lon);
    assert_str_or_null(a->road_address, b->road_address);
    assert_str_or_null(a->lot_address, b->lot_address);
    assert_str_or_null(a->purpose, b->purpose);
    assert_str_or_null(a->kind, b->kind);
    assert_true(a->heading_deg == b->heading_deg);
    assert_true(a->fov_deg == b->fov_deg);
    assert_true(a->range_m == b->range_m);
    assert_int_equal(a->pixels, b->pixels);
    assert_int_equal(a->retention_days, b->retention_days);
    assert_str_or_null(a->installed_ym, b->installed_ym);
    assert_str_or_null(a->rtsp_url, b->rtsp_url);
    assert_str_or_null(a->rtsp_username, b->rtsp_username);
    assert_str_or_null(a->rtsp_password, b->rtsp_password);
    assert_str_or_null(a->codec, b->codec);
    assert_str_or_null(a->status, b->status);
    assert_str_or_null(a->direction, b->direction);
    assert_str_or_null(a->note, b->note);
    assert_str_or_null(a->flags, b->flags);
    assert_str_or_null(a->source_file, b->source_file);
    assert_int_equal(a->source_line, b->source_line);
    assert_str_or_null(a->source_key, b->source_key);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
}

static void fill_device(ch_device_t *d, int64_t agency_id, const char *name)
{
    ch_device_init(d);
    d->agency_id = agency_id;
    d->name = (char *)name;
    d->kind = "emergency-bell";
    d->located = 1;
    d->lat = 36.3504;
    d->lon = 127.3845;
    d->road_address = "대전광역시 서구 둔산로 100";
    d->lot_address = "둔산동 1420";
    d->status = "fault";
    d->attrs = "{\"linked_to\":\"112\"}";
    d->flags = "unlocated";
    d->source_file = "bell.csv";
    d->source_line = 7;
    d->source_key = "bell:7";
}

static void assert_device_equal(const ch_device_t *a, const ch_device_t *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->agency_id, b->agency_id);
    assert_str_or_null(a->name, b->name);
    assert_str_or_null(a->kind, b->kind);
    assert_int_equal(a->located, b->located);
    assert_true(a->lat == b->lat);
    assert_true(a->lon == b->lon);
    assert_str_or_null(a->road_address, b->road_address);
    assert_str_or_null(a->lot_address, b->lot_address);
    assert_str_or_null(a->status, b->status);
    assert_str_or_null(a->attrs, b->attrs);
    assert_str_or_null(a->flags, b->flags);
    assert_str_or_null(a->source_file, b->source_file);
    assert_int_equal(a->source_line, b->source_line);
    assert_str_or_null(a->source_key, b->source_key);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
}

static int64_t count_of(ch_store_t *st, const char *what)
{
    int64_t n = -1;
    assert_int_equal(ch_store_count(st, what, &n), 0);
    return n;
}

/* Runs one SQL query returning one integer, on a separate connection. */
static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

/* ---- open and migrations ------------------------------------------------------------------- */

static void test_migrations_apply_on_new_file_and_reopen_keeps_version(void **state)
{
    fixture_t *fx = *state;
    int version = ch_store_schema_version(fx->st);
    assert_true(version >= 1);
    assert_int_equal(sql_int(fx->ts.path, "SELECT count(*) FROM schema_migrations"), version);
    assert_int_equal(sql_int(fx->ts.path, "PRAGMA user_version"), version);
    assert_int_equal(sql_int(fx->ts.path, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                          "('agencies','cameras','devices')"),
                     3);
    make_agency(fx->st, "종로구청", "district-center");

    for (int i = 0; i < 2; i++) {
        ch_store_close(fx->st);
        fx->st = NULL;
        char *err = NULL;
        assert_int_equal(ch_store_open(fx->ts.path, &fx->st, &err), 0);
        assert_null(err);
        assert_int_equal(ch_store_schema_version(fx->st), version);
        assert_int_equal(sql_int(fx->ts.path, "SELECT count(*) FROM schema_migrations"), version);
        assert_int_equal(count_of(fx->st, "agencies"), 1);
    }
}

static void test_open_sets_wal_and_foreign_keys(void **state)
{
    fixture_t *fx = *state;
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(fx->ts.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_database_newer_than_build_is_refused(void **state)
{
    fixture_t *fx = *state;
    ch_store_close(fx->st);
    fx->st = NULL;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->ts.path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO schema_migrations VALUES(999, 0)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    char *err = NULL;
    assert_int_equal(ch_store_open(fx->ts.path, &fx->st, &err), CH_EDB);
    assert_null(fx->st);
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    ch_free(err);
}

static void test_postgresql_url_is_unsupported_with_message(void **state)
{
    ch_store_t *st = (ch_store_t *)1;
    char *err = NULL;
    assert_int_equal(ch_store_open("postgresql://hub@db/cctvhub", &st, &err), CH_EUNSUPP);
    assert_null(st);
    assert_non_null(err);
    assert_non_null(strstr(err, "PostgreSQL"));
    ch_free(err);
    assert_int_equal(ch_store_open("", &st, NULL), CH_EINVAL);
}

/* ---- CRUD ---------------------------------------------------------------------------------- */

static void test_agency_crud_round_trips_every_field(void **state)
{
    fixture_t *fx = *state;
    ch_agency_t a = {0}, got;
    a.name = "서울경찰청 112종합상황실";
    a.kind = "user";
    a.level = "city";
    a.type = "police-112";
    a.phone = "02-700-5000";
    a.code = "1130000";
    a.tls_key = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(ch_store_agency_create(fx->st, &a), 0);
    assert_true(a.id > 0);
    assert_true(a.created_at > 0);
    assert_int_equal(a.created_at, a.updated_at);

    assert_int_equal(ch_store_agency_get(fx->st, a.id, &got), 0);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.name, a.name);
    assert_string_equal(got.kind, a.kind);
    assert_string_equal(got.level, a.level);
    assert_string_equal(got.type, a.type);
    assert_string_equal(got.phone, a.phone);
    assert_string_equal(got.code, a.code);
    assert_string_equal(got.tls_key, a.tls_key);
    assert_int_equal(got.created_at, a.created_at);
    assert_int_equal(got.updated_at, a.updated_at);
    ch_agency_fini(&got);

    assert_int_equal(ch_store_agency_find_by_name(fx->st, "서울경찰청 112종합상황실", &got), 0);
    assert_int_equal(got.id, a.id);
    ch_agency_fini(&got);
    assert_int_equal(ch_store_agency_find_by_name(fx->st, "none", &got), CH_ENOTFOUND);

    ch_agency_t u = a;
    u.name = "renamed";
    u.kind = "both";
    u.level = "national";
    u.type = "other";
    u.phone = NULL;
    u.code = NULL;
    u.tls_key = NULL;
    u.created_at = 0;
    assert_int_equal(ch_store_agency_update(fx->st, &u), 0);
    assert_int_equal(u.created_at, a.created_at);
    assert_int_equal(ch_store_agency_get(fx->st, a.id, &got), 0);
    assert_string_equal(got.name, "renamed");
    assert_string_equal(got.kind, "both");
    assert_string_equal(got.level, "national");
    assert_string_equal(got.type, "other");
    assert_null(got.phone);
    assert_null(got.code);
    assert_null(got.tls_key);
    assert_int_equal(got.created_at, a.created_at);
    assert_int_equal(got.updated_at, u.updated_at);
    ch_agency_fini(&got);

    assert_int_equal(ch_store_agency_delete(fx->st, a.id), 0);
    assert_int_equal(ch_store_agency_get(fx->st, a.id, &got), CH_ENOTFOUND);
    assert_int_equal(ch_store_agency_delete(fx->st, a.id), CH_ENOTFOUND);
    assert_int_equal(ch_store_agency_update(fx->st, &u), CH_ENOTFOUND);
    ch_agency_fini(NULL);
}

static void test_camera_crud_round_trips_every_field(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "종로구청", "district-center");
    int64_t ag2 = make_agency(fx->st, "중구청", "district-center");
    ch_camera_t c, got;
    fill_camera(&c, ag, "세종로 CCTV 1");
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    assert_true(c.id > 0);
    assert_int_equal(ch_store_camera_get(fx->st, c.id, &got), 0);
    assert_camera_equal(&got, &c);
    ch_camera_fini(&got);

    /* Update replaces every field, including back to unknown/NULL, and keeps created_at. */
    ch_camera_t u;
    ch_camera_init(&u);
    u.id = c.id;
    u.agency_id = ag2;
    u.name = "renamed";
    u.kind = "unknown";
    u.status = "unlocated";
    assert_int_equal(ch_store_camera_update(fx->st, &u), 0);
    assert_int_equal(u.created_at, c.created_at);
    assert_int_equal(ch_store_camera_get(fx->st, c.id, &got), 0);
    assert_camera_equal(&got, &u);
    assert_true(got.heading_deg == CH_STORE_UNKNOWN_DOUBLE);
    assert_null(got.rtsp_password);
    ch_camera_fini(&got);

    assert_int_equal(ch_store_camera_delete(fx->st, c.id), 0);
    assert_int_equal(ch_store_camera_get(fx->st, c.id, &got), CH_ENOTFOUND);
    assert_int_equal(ch_store_camera_delete(fx->st, c.id), CH_ENOTFOUND);
    assert_int_equal(ch_store_camera_update(fx->st, &u), CH_ENOTFOUND);

    /* Ids are not reused after a delete: grants and the audit log refer to them. */
    ch_camera_t again;
    fill_camera(&again, ag, "again");
    assert_int_equal(ch_store_camera_create(fx->st, &again), 0);
    assert_true(again.id > c.id);
}

static void test_rtsp_credentials_are_stored_and_returned(void **state)
{
    fixture_t *fx = *state;
    ch_camera_t c, got;
    fill_camera(&c, make_agency(fx->st, "a", "other"), "cam");
    c.rtsp_url = "rtsp://[fe80::1]:8554/live?ch=1&sub=0";
    c.rtsp_username = "관리자";
    c.rtsp_password = "'; DROP TABLE cameras; --";
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    assert_int_equal(ch_store_camera_get(fx->st, c.id, &got), 0);
    assert_string_equal(got.rtsp_url, c.rtsp_url);
    assert_string_equal(got.rtsp_username, c.rtsp_username);
    assert_string_equal(got.rtsp_password, c.rtsp_password);
    ch_camera_fini(&got);
    assert_int_equal(count_of(fx->st, "cameras"), 1);
}

static void test_device_crud_round_trips_every_field(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "대전 서구청", "district-center");
    ch_device_t d, got;
    fill_device(&d, ag, "비상벨 1");
    assert_int_equal(ch_store_device_create(fx->st, &d), 0);
    assert_int_equal(ch_store_device_get(fx->st, d.id, &got), 0);
    assert_device_equal(&got, &d);
    ch_device_fini(&got);

    ch_device_t u;
    ch_device_init(&u);
    u.id = d.id;
    u.agency_id = ag;
    u.name = "wifi";
    u.kind = "wifi-ap";
    u.status = "active";
    assert_int_equal(ch_store_device_update(fx->st, &u), 0);
    assert_int_equal(ch_store_device_get(fx->st, d.id, &got), 0);
    assert_device_equal(&got, &u);
    ch_device_fini(&got);

    assert_int_equal(ch_store_device_delete(fx->st, d.id), 0);
    assert_int_equal(ch_store_device_get(fx->st, d.id, &got), CH_ENOTFOUND);
    assert_int_equal(ch_store_device_delete(fx->st, d.id), CH_ENOTFOUND);
}

/* ---- errors -------------------------------------------------------------------------------- */

static void test_taken_agency_name_is_eexist(void **state)
{
    fixture_t *fx = *state;
    make_agency(fx->st, "부산광역시 중구청", "district-center");
    ch_agency_t a = {.name = "부산광역시 중구청", .kind = "both", .level = "city", .type = "other"};
    assert_int_equal(ch_store_agency_create(fx->st, &a), CH_EEXIST);
    assert_non_null(strstr(ch_store_errmsg(fx->st), "UNIQUE"));

    int64_t other = make_agency(fx->st, "other", "other");
    a.id = other;
    assert_int_equal(ch_store_agency_update(fx->st, &a), CH_EEXIST);
}

static void test_taken_source_key_is_eexist(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    ch_camera_t c1, c2;
    fill_camera(&c1, ag, "one");
    fill_camera(&c2, ag, "two");
    assert_int_equal(ch_store_camera_create(fx->st, &c1), 0);
    assert_int_equal(ch_store_camera_create(fx->st, &c2), CH_EEXIST);
    /* Records created by the API have no key; many of them coexist. */
    c1.source_key = NULL;
    c2.source_key = NULL;
    assert_int_equal(ch_store_camera_create(fx->st, &c1), 0);
    assert_int_equal(ch_store_camera_create(fx->st, &c2), 0);
    assert_int_equal(count_of(fx->st, "cameras"), 3);
}

static void test_camera_with_missing_agency_is_conflict(void **state)
{
    fixture_t *fx = *state;
    ch_camera_t c;
    ch_store_upsert_t outcome;
    fill_camera(&c, 4242, "orphan");
    assert_int_equal(ch_store_camera_create(fx->st, &c), CH_ECONFLICT);
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), CH_ECONFLICT);

    c.agency_id = make_agency(fx->st, "a", "other");
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    c.agency_id = 4242;
    assert_int_equal(ch_store_camera_update(fx->st, &c), CH_ECONFLICT);
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), CH_ECONFLICT);

    ch_device_t d;
    fill_device(&d, 4242, "orphan bell");
    assert_int_equal(ch_store_device_create(fx->st, &d), CH_ECONFLICT);
}

static void test_delete_agency_with_cameras_or_devices_is_conflict(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    ch_camera_t c;
    ch_device_t d;
    fill_camera(&c, ag, "cam");
    fill_device(&d, ag, "bell");
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    assert_int_equal(ch_store_device_create(fx->st, &d), 0);
    assert_int_equal(ch_store_agency_delete(fx->st, ag), CH_ECONFLICT);
    assert_int_equal(ch_store_camera_delete(fx->st, c.id), 0);
    assert_int_equal(ch_store_agency_delete(fx->st, ag), CH_ECONFLICT);
    assert_int_equal(ch_store_device_delete(fx->st, d.id), 0);
    assert_int_equal(ch_store_agency_delete(fx->st, ag), 0);
}

static void test_invalid_records_and_filters_are_einval(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    ch_agency_t a = {.name = "b", .kind = "provider", .level = "district", .type = "pirate"};
    assert_int_equal(ch_store_agency_create(fx->st, &a), CH_EINVAL);
    a.type = "other";
    a.kind = NULL;
    assert_int_equal(ch_store_agency_create(fx->st, &a), CH_EINVAL);
    /* A client certificate's key only in the PKI's form (lowercase hex), as an API key's. */
    a.kind = "provider";
    a.tls_key = "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(ch_store_agency_create(fx->st, &a), CH_EINVAL);
    a.tls_key = "sha256:0123";
    assert_int_equal(ch_store_agency_create(fx->st, &a), CH_EINVAL);
    a.tls_key = NULL;

    ch_camera_t c;
    fill_camera(&c, ag, "cam");
    c.kind = "dome";
    assert_int_equal(ch_store_camera_create(fx->st, &c), CH_EINVAL);
    fill_camera(&c, ag, "cam");
    c.lat = NAN;
    assert_int_equal(ch_store_camera_create(fx->st, &c), CH_EINVAL);
    fill_camera(&c, ag, "cam");
    c.lon = 999.999999;
    assert_int_equal(ch_store_camera_create(fx->st, &c), CH_EINVAL);
    fill_camera(&c, ag, "cam");
    c.status = NULL;
    assert_int_equal(ch_store_camera_create(fx->st, &c), CH_EINVAL);
    fill_camera(&c, ag, "cam");
    c.source_key = NULL;
    ch_store_upsert_t outcome;
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), CH_EINVAL);
    assert_int_equal(count_of(fx->st, "cameras"), 0);

    ch_store_filter_t f = {.limit = 1001};
    ch_camera_list_t l;
    assert_int_equal(ch_store_camera_list(fx->st, &f, &l), CH_EINVAL);
    assert_null(l.items);
    f.limit = -1;
    assert_int_equal(ch_store_camera_list(fx->st, &f, &l), CH_EINVAL);
    int64_t n;
    assert_int_equal(ch_store_count(fx->st, "nonsense", &n), CH_EINVAL);
    assert_int_equal(ch_store_count(fx->st, NULL, &n), CH_EINVAL);
}

/* ---- lists --------------------------------------------------------------------------------- */

typedef struct cam_spec {
    const char *name;
    const char *purpose;
    const char *kind;
    const char *status;
    int located;
    double lat, lon;
    const char *road;
    int agency; /* 0 or 1 */
} cam_spec_t;

static const cam_spec_t cams[] = {
    {"광화문 1", "생활방범", "fixed", "active", 1, 37.5759, 126.9769, "서울 종로구 세종대로 172",
     0},
    {"광화문 2", "어린이보호", "ptz", "active", 1, 37.5760, 126.9770, "서울 종로구 사직로 161", 0},
    {"해운대 1", "생활방범", "ptz", "inactive", 1, 35.1587, 129.1604, "부산 해운대구 우동", 1},
    {"School CCTV", "어린이보호", "fixed", "active", 1, 35.1000, 129.0300, "부산 중구 100%_road",
     1},
    {"unlocated", "교통단속", "unknown", "unlocated", 0, 0, 0, NULL, 1},
};

/* Creates the cameras above under two agencies; returns their ids in ids[]. */
static void make_cams(ch_store_t *st, int64_t ag[2], int64_t ids[])
{
    ag[0] = make_agency(st, "종로구청", "district-center");
    ag[1] = make_agency(st, "부산광역시", "city-agency");
    for (size_t i = 0; i < CH_ARRAY_SIZE(cams); i++) {
        ch_camera_t c;
        ch_camera_init(&c);
        c.agency_id = ag[cams[i].agency];
        c.name = (char *)cams[i].name;
        c.purpose = (char *)cams[i].purpose;
        c.kind = (char *)cams[i].kind;
        c.status = (char *)cams[i].status;
        c.located = cams[i].located;
        c.lat = cams[i].lat;
        c.lon = cams[i].lon;
        c.road_address = (char *)cams[i].road;
        c.lot_address = i == 0 ? "세종로 1-1" : NULL;
        assert_int_equal(ch_store_camera_create(st, &c), 0);
        ids[i] = c.id;
    }
}

/* Lists cameras with f and checks the result is exactly the cameras with the given indexes
 * (into cams[]), in order, with total equal to their number. */
static void assert_cam_list(ch_store_t *st, const ch_store_filter_t *f, const int64_t ids[],
                            const int *want, size_t nwant)
{
    ch_camera_list_t l;
    assert_int_equal(ch_store_camera_list(st, f, &l), 0);
    assert_int_equal(l.count, nwant);
    assert_int_equal(l.total, (int64_t)nwant);
    assert_int_equal(l.next_id, 0);
    for (size_t i = 0; i < nwant; i++) {
        assert_int_equal(l.items[i].id, ids[want[i]]);
        assert_string_equal(l.items[i].name, cams[want[i]].name);
    }
    ch_camera_list_free(&l);
}

static void test_camera_list_filters_by_each_field(void **state)
{
    fixture_t *fx = *state;
    int64_t ag[2], ids[CH_ARRAY_SIZE(cams)];
    make_cams(fx->st, ag, ids);

    ch_store_filter_t f = {0};
    assert_cam_list(fx->st, &f, ids, (int[]){0, 1, 2, 3, 4}, 5);
    assert_cam_list(fx->st, NULL, ids, (int[]){0, 1, 2, 3, 4}, 5);

    f = (ch_store_filter_t){.purpose = "어린이보호"};
    assert_cam_list(fx->st, &f, ids, (int[]){1, 3}, 2);
    f = (ch_store_filter_t){.kind = "ptz"};
    assert_cam_list(fx->st, &f, ids, (int[]){1, 2}, 2);
    f = (ch_store_filter_t){.status = "active"};
    assert_cam_list(fx->st, &f, ids, (int[]){0, 1, 3}, 3);
    f = (ch_store_filter_t){.agency_id = ag[1]};
    assert_cam_list(fx->st, &f, ids, (int[]){2, 3, 4}, 3);
    f = (ch_store_filter_t){.agency_id = ag[1], .purpose = "생활방범"};
    assert_cam_list(fx->st, &f, ids, (int[]){2}, 1);
    f = (ch_store_filter_t){.purpose = "none"};
    assert_cam_list(fx->st, &f, ids, NULL, 0);

    /* Bounding box around Gwanghwamun; the unlocated camera at 0,0 never matches a box. */
    f = (ch_store_filter_t){
        .has_bbox = 1, .min_lat = 37.57, .max_lat = 37.58, .min_lon = 126.97, .max_lon = 126.98};
    assert_cam_list(fx->st, &f, ids, (int[]){0, 1}, 2);
    f = (ch_store_filter_t){
        .has_bbox = 1, .min_lat = -1, .max_lat = 1, .min_lon = -1, .max_lon = 1};
    assert_cam_list(fx->st, &f, ids, NULL, 0);
    f = (ch_store_filter_t){
        .has_bbox = 1, .min_lat = 35, .max_lat = 36, .min_lon = 129, .max_lon = 130, .kind = "ptz"};
    assert_cam_list(fx->st, &f, ids, (int[]){2}, 1);
    /* Edges are inclusive. */
    f = (ch_store_filter_t){.has_bbox = 1,
                            .min_lat = 35.1587,
                            .max_lat = 35.1587,
                            .min_lon = 129.1604,
                            .max_lon = 129.1604};
    assert_cam_list(fx->st, &f, ids, (int[]){2}, 1);

    /* Text: Korean substrings of name, road or lot address; ASCII case does not matter; LIKE
     * wildcards in the text match themselves. */
    f = (ch_store_filter_t){.text = "광화문"};
    assert_cam_list(fx->st, &f, ids, (int[]){0, 1}, 2);
    f = (ch_store_filter_t){.text = "종로구"};
    assert_cam_list(fx->st, &f, ids, (int[]){0, 1}, 2);
    f = (ch_store_filter_t){.text = "세종로 1-1"};
    assert_cam_list(fx->st, &f, ids, (int[]){0}, 1);
    f = (ch_store_filter_t){.text = "해운대"};
    assert_cam_list(fx->st, &f, ids, (int[]){2}, 1);
    f = (ch_store_filter_t){.text = "school cctv"};
    assert_cam_list(fx->st, &f, ids, (int[]){3}, 1);
    f = (ch_store_filter_t){.text = "100%_"};
    assert_cam_list(fx->st, &f, ids, (int[]){3}, 1);
    f = (ch_store_filter_t){.text = "%"};
    assert_cam_list(fx->st, &f, ids, (int[]){3}, 1);
    f = (ch_store_filter_t){.text = "_"};
    assert_cam_list(fx->st, &f, ids, (int[]){3}, 1);
    f = (ch_store_filter_t){.text = "부산", .purpose = "생활방범"};
    assert_cam_list(fx->st, &f, ids, (int[]){2}, 1);
    f = (ch_store_filter_t){.text = ""}; /* empty text does not filter */
    assert_cam_list(fx->st, &f, ids, (int[]){0, 1, 2, 3, 4}, 5);
}

static void test_agency_and_device_lists_filter(void **state)
{
    fixture_t *fx = *state;
    int64_t a1 = make_agency(fx->st, "서울경찰청 112", "police-112");
    int64_t a2 = make_agency(fx->st, "종로소방서", "fire-119");
    int64_t a3 = make_agency(fx->st, "종로구청", "district-center");

    ch_agency_list_t al;
    ch_store_filter_t f = {.type = "fire-119"};
    assert_int_equal(ch_store_agency_list(fx->st, &f, &al), 0);
    assert_int_equal(al.count, 1);
    assert_int_equal(al.items[0].id, a2);
    ch_agency_list_free(&al);
    f = (ch_store_filter_t){.text = "종로", .level = "district", .kind = "provider"};
    assert_int_equal(ch_store_agency_list(fx->st, &f, &al), 0);
    assert_int_equal(al.count, 2);
    assert_int_equal(al.total, 2);
    assert_int_equal(al.items[0].id, a2);
    assert_int_equal(al.items[1].id, a3);
    ch_agency_list_free(&al);
    f = (ch_store_filter_t){.level = "national"};
    assert_int_equal(ch_store_agency_list(fx->st, &f, &al), 0);
    assert_int_equal(al.count, 0);
    assert_null(al.items);
    ch_agency_list_free(&al);

    ch_device_t d;
    fill_device(&d, a1, "벨 1");
    d.source_key = NULL;
    assert_int_equal(ch_store_device_create(fx->st, &d), 0);
    fill_device(&d, a3, "와이파이");
    d.kind = "wifi-ap";
    d.status = "active";
    d.source_key = NULL;
    d.lat = 37.57;
    d.lon = 126.98;
    assert_int_equal(ch_store_device_create(fx->st, &d), 0);
    int64_t wifi = d.id;

    ch_device_list_t dl;
    f = (ch_store_filter_t){.kind = "wifi-ap"};
    assert_int_equal(ch_store_device_list(fx->st, &f, &dl), 0);
    assert_int_equal(dl.count, 1);
    assert_int_equal(dl.items[0].id, wifi);
    ch_device_list_free(&dl);
    f = (ch_store_filter_t){
        .has_bbox = 1, .min_lat = 37, .max_lat = 38, .min_lon = 126, .max_lon = 127};
    assert_int_equal(ch_store_device_list(fx->st, &f, &dl), 0);
    assert_int_equal(dl.count, 1);
    assert_int_equal(dl.items[0].id, wifi);
    ch_device_list_free(&dl);
    f = (ch_store_filter_t){.agency_id = a1, .status = "fault", .text = "벨"};
    assert_int_equal(ch_store_device_list(fx->st, &f, &dl), 0);
    assert_int_equal(dl.count, 1);
    assert_int_equal(dl.total, 1);
    assert_string_equal(dl.items[0].name, "벨 1");
    ch_device_list_free(&dl);
}

/* Walks every page of a list and checks each id is seen once, in increasing order, that every
 * page reports the same total, and that next_id is the last id of a full page and 0 at the
 * end. */
static void walk_pages(ch_store_t *st, ch_store_filter_t f, int64_t expect_total)
{
    int64_t seen = 0, last = 0;
    int pages = 0;
    for (;;) {
        ch_camera_list_t l;
        assert_int_equal(ch_store_camera_list(st, &f, &l), 0);
        assert_int_equal(l.total, expect_total);
        for (size_t i = 0; i < l.count; i++) {
            assert_true(l.items[i].id > last);
            last = l.items[i].id;
        }
        seen += (int64_t)l.count;
        pages++;
        if (l.next_id == 0) {
            assert_int_equal(seen, expect_total);
            ch_camera_list_free(&l);
            break;
        }
        assert_int_equal(l.count, f.limit == 0 ? 100 : f.limit);
        assert_int_equal(l.next_id, last);
        f.after_id = l.next_id;
        ch_camera_list_free(&l);
        assert_true(pages < 1000);
    }
}

static void test_pagination_walks_every_row_once(void **state)
{
    fixture_t *fx = *state;
    int64_t ag[2];
    ag[0] = make_agency(fx->st, "a", "other");
    ag[1] = make_agency(fx->st, "b", "other");
    assert_int_equal(ch_store_begin(fx->st), 0);
    for (int i = 0; i < 250; i++) {
        ch_camera_t c;
        char name[32];
        snprintf(name, sizeof(name), "cam %d", i);
        fill_camera(&c, ag[i % 2], name);
        c.source_key = NULL;
        c.purpose = i % 3 == 0 ? "어린이보호" : "생활방범";
        assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    }
    assert_int_equal(ch_store_commit(fx->st), 0);

    walk_pages(fx->st, (ch_store_filter_t){.limit = 7}, 250);
    walk_pages(fx->st, (ch_store_filter_t){0}, 250);           /* default page of 100 */
    walk_pages(fx->st, (ch_store_filter_t){.limit = 50}, 250); /* exact multiple */
    walk_pages(fx->st, (ch_store_filter_t){.limit = 1000}, 250);
    walk_pages(fx->st, (ch_store_filter_t){.limit = 1, .agency_id = ag[1]}, 125);
    walk_pages(fx->st, (ch_store_filter_t){.limit = 9, .purpose = "어린이보호"}, 84);
    walk_pages(fx->st, (ch_store_filter_t){.limit = 9, .text = "cam 1"}, 111); /* 1, 1x, 1xx */

    /* A cursor past the end: an empty page, total still counts every match. */
    ch_camera_list_t l;
    ch_store_filter_t f = {.after_id = INT64_MAX - 1};
    assert_int_equal(ch_store_camera_list(fx->st, &f, &l), 0);
    assert_int_equal(l.count, 0);
    assert_int_equal(l.total, 250);
    assert_int_equal(l.next_id, 0);
    ch_camera_list_free(&l);
}

/* ---- upserts ------------------------------------------------------------------------------- */

static void test_upsert_reports_created_unchanged_updated_and_keeps_id(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    ch_store_upsert_t outcome = 0;
    ch_camera_t c, got;

    assert_int_equal(ch_store_begin(fx->st), 0);
    fill_camera(&c, ag, "cam");
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_CREATED);
    int64_t id = c.id;
    int64_t created_at = c.created_at;
    assert_true(id > 0);

    /* The same record again: unchanged, same id, nothing written (updated_at kept). */
    ch_camera_t same;
    fill_camera(&same, ag, "cam");
    assert_int_equal(ch_store_camera_upsert(fx->st, &same, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UNCHANGED);
    assert_int_equal(same.id, id);
    assert_int_equal(same.created_at, created_at);
    assert_int_equal(same.updated_at, c.updated_at);

    /* A second key is a second camera. */
    ch_camera_t other;
    fill_camera(&other, ag, "other");
    other.source_key = "seoul:43:1";
    assert_int_equal(ch_store_camera_upsert(fx->st, &other, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_CREATED);
    assert_true(other.id != id);
    assert_int_equal(ch_store_commit(fx->st), 0);

    /* Each field that differs makes an update; NULL and "" differ; the id stays. */
    for (int field = 0; field < 5; field++) {
        ch_camera_t m;
        fill_camera(&m, ag, "cam");
        switch (field) {
        case 0:
            m.name = "renamed";
            break;
        case 1:
            m.installed_ym = "2019-01";
            break;
        case 2:
            m.heading_deg = CH_STORE_UNKNOWN_DOUBLE;
            break;
        case 3:
            m.note = "";
            break;
        case 4:
            m.note = NULL;
            break;
        }
        assert_int_equal(ch_store_camera_upsert(fx->st, &m, &outcome), 0);
        assert_int_equal(outcome, CH_STORE_UPDATED);
        assert_int_equal(m.id, id);
        assert_int_equal(m.created_at, created_at);
        assert_int_equal(ch_store_camera_get(fx->st, id, &got), 0);
        assert_camera_equal(&got, &m);
        ch_camera_fini(&got);
        assert_int_equal(ch_store_camera_upsert(fx->st, &m, &outcome), 0);
        assert_int_equal(outcome, CH_STORE_UNCHANGED);
        /* Back to the original for the next field. */
        fill_camera(&m, ag, "cam");
        assert_int_equal(ch_store_camera_upsert(fx->st, &m, &outcome), 0);
        assert_int_equal(outcome, CH_STORE_UPDATED);
    }

    /* The same data from another file or line (a newer file from the same publisher) is
     * unchanged: provenance alone is not a change, and the stored provenance stays. */
    ch_camera_t moved;
    fill_camera(&moved, ag, "cam");
    moved.source_file = "seoul-2027.csv";
    moved.source_line = 4242;
    assert_int_equal(ch_store_camera_upsert(fx->st, &moved, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UNCHANGED);
    assert_int_equal(moved.id, id);
    assert_int_equal(ch_store_camera_get(fx->st, id, &got), 0);
    assert_string_equal(got.source_file, "seoul.csv");
    assert_int_equal(got.source_line, 42);
    ch_camera_fini(&got);
    assert_int_equal(count_of(fx->st, "cameras"), 2);
}

static void test_device_upsert_reports_each_outcome(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    ch_store_upsert_t outcome = 0;
    ch_device_t d;
    fill_device(&d, ag, "bell");
    assert_int_equal(ch_store_device_upsert(fx->st, &d, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_CREATED);
    int64_t id = d.id;
    fill_device(&d, ag, "bell");
    assert_int_equal(ch_store_device_upsert(fx->st, &d, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UNCHANGED);
    assert_int_equal(d.id, id);
    d.attrs = "{}";
    assert_int_equal(ch_store_device_upsert(fx->st, &d, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UPDATED);
    assert_int_equal(d.id, id);
    assert_int_equal(count_of(fx->st, "devices"), 1);
}

/* Upserts keys k0..k99 in three rounds (round 0 the even keys, round 1 all, round 2 all) and
 * checks every outcome and id. In a transaction on an empty table this runs the bulk load;
 * outside one, or on a big table, the insert-first and lookup-first paths, which alternate
 * here with every key. */
static void upsert_rounds(ch_store_t *st, int64_t ag, int in_tx, const char *prefix)
{
    char key[32];
    int64_t ids[100];
    if (in_tx) {
        assert_int_equal(ch_store_begin(st), 0);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++) {
            if (round == 0 && i % 2 == 1) {
                continue;
            }
            ch_camera_t c;
            ch_store_upsert_t outcome = 0;
            fill_camera(&c, ag, "cam");
            snprintf(key, sizeof(key), "%s%d", prefix, i);
            c.source_key = key;
            int fresh = (round == 0) || (round == 1 && i % 2 == 1);
            if (round == 2 && i % 10 == 0) {
                c.name = "renamed"; /* some updates too */
            }
            assert_int_equal(ch_store_camera_upsert(st, &c, &outcome), 0);
            if (fresh) {
                assert_int_equal(outcome, CH_STORE_CREATED);
                ids[i] = c.id;
            } else {
                assert_int_equal(outcome,
                                 round == 2 && i % 10 == 0 ? CH_STORE_UPDATED : CH_STORE_UNCHANGED);
                assert_int_equal(c.id, ids[i]);
            }
        }
    }
    if (in_tx) {
        assert_int_equal(ch_store_commit(st), 0);
    }
}

static void test_upsert_outcomes_hold_outside_a_transaction(void **state)
{
    fixture_t *fx = *state;
    upsert_rounds(fx->st, make_agency(fx->st, "a", "other"), 0, "k");
    assert_int_equal(count_of(fx->st, "cameras"), 100);
}

/* The schema as text, to check a bulk load leaves it as it found it. */
static char *schema_text(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(name || ':' || coalesce(sql, ''), "
                                        "';') FROM (SELECT * FROM sqlite_schema ORDER BY name)",
                                        -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    char *text = ch_strdup((const char *)sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return text;
}

static void test_bulk_load_into_empty_table_keeps_outcomes_and_schema(void **state)
{
    fixture_t *fx = *state;
    char *before = schema_text(fx->ts.path);
    int64_t ag = make_agency(fx->st, "a", "other");
    upsert_rounds(fx->st, ag, 1, "k");
    char *after = schema_text(fx->ts.path);
    assert_string_equal(before, after);
    assert_int_equal(count_of(fx->st, "cameras"), 100);
    assert_int_equal(sql_int(fx->ts.path, "SELECT count(*) FROM pragma_integrity_check "
                                          "WHERE integrity_check <> 'ok'"),
                     0);
    /* The rebuilt unique index still refuses a taken key. */
    ch_camera_t c;
    fill_camera(&c, ag, "dup");
    c.source_key = "k5";
    assert_int_equal(ch_store_camera_create(fx->st, &c), CH_EEXIST);
    /* A second import into the same (now non-empty) table takes the ordinary path. */
    upsert_rounds(fx->st, ag, 1, "j");
    assert_int_equal(count_of(fx->st, "cameras"), 200);
    ch_free(before);
    ch_free(after);
}

static void test_bulk_load_sees_rows_that_were_there_before(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    ch_camera_t c;
    ch_store_upsert_t outcome;
    fill_camera(&c, ag, "cam");
    c.source_key = "k4";
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    int64_t id = c.id;

    assert_int_equal(ch_store_begin(fx->st), 0);
    fill_camera(&c, ag, "cam");
    c.source_key = "k4";
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UNCHANGED);
    assert_int_equal(c.id, id);
    c.source_key = "k5";
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_CREATED);
    int64_t id5 = c.id;

    /* Writes other than upserts during the load: the key is still checked, lists still work,
     * and later upserts still find every key. */
    fill_camera(&c, ag, "dup");
    c.source_key = "k5";
    assert_int_equal(ch_store_camera_create(fx->st, &c), CH_EEXIST);
    ch_camera_list_t l;
    ch_store_filter_t f = {.purpose = "생활방범"};
    assert_int_equal(ch_store_camera_list(fx->st, &f, &l), 0);
    assert_int_equal(l.total, 2);
    ch_camera_list_free(&l);
    fill_camera(&c, ag, "cam");
    c.source_key = "k5";
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UNCHANGED);
    assert_int_equal(c.id, id5);
    /* A missing agency is still a conflict, and the load goes on after it. */
    fill_camera(&c, ag + 1000, "orphan");
    c.source_key = "k6";
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), CH_ECONFLICT);
    fill_camera(&c, ag, "cam");
    c.source_key = "k6";
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_CREATED);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(count_of(fx->st, "cameras"), 3);
}

static void test_upsert_on_a_big_table_in_a_transaction(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    char key[32];
    /* Enough rows that an import is not a bulk load (the store's threshold is 10,000). */
    assert_int_equal(ch_store_begin(fx->st), 0);
    for (int i = 0; i < 10000; i++) {
        ch_camera_t c;
        fill_camera(&c, ag, "filler");
        snprintf(key, sizeof(key), "f%d", i);
        c.source_key = key;
        assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    }
    assert_int_equal(ch_store_commit(fx->st), 0);
    upsert_rounds(fx->st, ag, 1, "k");
    assert_int_equal(count_of(fx->st, "cameras"), 10100);
}

/* ---- transactions -------------------------------------------------------------------------- */

static void test_rollback_leaves_nothing(void **state)
{
    fixture_t *fx = *state;
    char *before = schema_text(fx->ts.path);
    assert_int_equal(ch_store_rollback(fx->st), 0); /* none open: fine */
    assert_int_equal(ch_store_commit(fx->st), CH_EINVAL);

    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_int_equal(ch_store_begin(fx->st), CH_EINVAL); /* not nestable */
    int64_t ag = make_agency(fx->st, "a", "other");
    for (int i = 0; i < 20; i++) {
        ch_camera_t c;
        ch_store_upsert_t outcome;
        char key[16];
        fill_camera(&c, ag, "cam");
        snprintf(key, sizeof(key), "k%d", i);
        c.source_key = key;
        assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), 0);
    }
    ch_device_t d;
    fill_device(&d, ag, "bell");
    assert_int_equal(ch_store_device_create(fx->st, &d), 0);
    /* A failed row does not end the transaction. */
    ch_camera_t bad;
    fill_camera(&bad, ag + 100, "bad");
    bad.source_key = "bad";
    assert_int_equal(ch_store_camera_create(fx->st, &bad), CH_ECONFLICT);
    /* Lists inside the transaction see its rows. */
    ch_camera_list_t l;
    assert_int_equal(ch_store_camera_list(fx->st, NULL, &l), 0);
    assert_int_equal(l.total, 20);
    ch_camera_list_free(&l);
    assert_int_equal(ch_store_rollback(fx->st), 0);
    char *after = schema_text(fx->ts.path);
    assert_string_equal(before, after);
    ch_free(before);
    ch_free(after);

    assert_int_equal(count_of(fx->st, "agencies"), 0);
    assert_int_equal(count_of(fx->st, "cameras"), 0);
    assert_int_equal(count_of(fx->st, "devices"), 0);

    /* And a commit keeps everything. */
    assert_int_equal(ch_store_begin(fx->st), 0);
    make_agency(fx->st, "a", "other");
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(count_of(fx->st, "agencies"), 1);
}

/* ---- sites: the cameras of one imported row, stored as runs ---------------------------------- */

/* A site's first camera, as the importer makes it (no stream URL). */
static void fill_site(ch_camera_t *c, int64_t agency_id, const char *name, const char *key)
{
    fill_camera(c, agency_id, name);
    c->rtsp_url = c->rtsp_username = c->rtsp_password = c->codec = NULL;
    c->source_key = (char *)key;
}

/* Checks that camera id is camera number n of site prefix (name "<prefix> #n", key
 * "<key>#n") with the site's other fields. */
static void assert_site_camera(ch_store_t *st, int64_t id, const char *prefix, const char *key,
                               int n, const char *purpose)
{
    ch_camera_t got;
    char name[128], k[128];
    snprintf(name, sizeof(name), "%s #%d", prefix, n);
    snprintf(k, sizeof(k), "%s#%d", key, n);
    assert_int_equal(ch_store_camera_get(st, id, &got), 0);
    assert_int_equal(got.id, id);
    assert_string_equal(got.name, name);
    assert_string_equal(got.source_key, k);
    assert_string_equal(got.purpose, purpose);
    assert_string_equal(got.road_address, "서울특별시 종로구 세종대로 209");
    assert_null(got.rtsp_url);
    ch_camera_fini(&got);
}

static ch_store_upsert_counts_t upsert_site(ch_store_t *st, ch_camera_t *c, int count)
{
    ch_store_upsert_counts_t n = {0, 0, 0};
    assert_int_equal(ch_store_camera_upsert_site(st, c, count, &n), 0);
    return n;
}

static void assert_counts(ch_store_upsert_counts_t n, long created, long updated, long unchanged)
{
    assert_int_equal(n.created, created);
    assert_int_equal(n.updated, updated);
    assert_int_equal(n.unchanged, unchanged);
}

/* Every camera of a list walked page by page (pages of `limit`), ids in order. */
static size_t walk_ids(ch_store_t *st, ch_store_filter_t f, int limit, int64_t *ids, size_t cap,
                       int64_t *total)
{
    size_t n = 0;
    f.limit = limit;
    f.after_id = 0;
    for (;;) {
        ch_camera_list_t l;
        assert_int_equal(ch_store_camera_list(st, &f, &l), 0);
        *total = l.total;
        for (size_t i = 0; i < l.count && n < cap; i++) {
            ids[n++] = l.items[i].id;
        }
        int64_t next = l.next_id;
        assert_true(l.count <= (size_t)limit);
        if (next != 0) {
            assert_int_equal(l.count, limit);
            assert_int_equal(next, l.items[l.count - 1].id);
        }
        ch_camera_list_free(&l);
        if (next == 0) {
            return n;
        }
        f.after_id = next;
    }
}

static int scan_count(void *ud, const ch_camera_t *c)
{
    int64_t *ids = ud;
    ids[ids[0] + 1] = c->id;
    ids[0]++;
    return 0;
}

static void test_site_cameras_are_each_a_camera(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "종로구", "district-center");
    ch_camera_t a, b, plain;
    fill_site(&a, ag, "Site A #1", "s:a#1");
    fill_site(&b, ag, "Site B #1", "s:b#1");
    b.purpose = "어린이보호";

    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 5), 5, 0, 0);
    assert_counts(upsert_site(fx->st, &b, 3), 3, 0, 0);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(a.id, 1);
    assert_int_equal(b.id, 6);
    /* Stored as two rows, holding eight cameras. */
    assert_int_equal(sql_int(fx->ts.path, "SELECT count(*) FROM cameras"), 2);
    assert_int_equal(count_of(fx->st, "cameras"), 8);
    for (int i = 0; i < 5; i++) {
        assert_site_camera(fx->st, 1 + i, "Site A", "s:a", i + 1, "생활방범");
    }
    for (int i = 0; i < 3; i++) {
        assert_site_camera(fx->st, 6 + i, "Site B", "s:b", i + 1, "어린이보호");
    }
    ch_camera_t none;
    assert_int_equal(ch_store_camera_get(fx->st, 9, &none), CH_ENOTFOUND);
    assert_int_equal(ch_store_camera_get(fx->st, 0, &none), CH_ENOTFOUND);

    /* A camera created afterwards takes the next id: the runs' ids are taken. */
    fill_camera(&plain, ag, "API camera");
    plain.source_key = NULL;
    assert_int_equal(ch_store_camera_create(fx->st, &plain), 0);
    assert_int_equal(plain.id, 9);

    /* Lists page through runs camera by camera, whatever the page size. */
    int64_t ids[32], total;
    for (int limit = 1; limit <= 10; limit++) {
        ch_store_filter_t f = {0};
        size_t n = walk_ids(fx->st, f, limit, ids, 32, &total);
        assert_int_equal(n, 9);
        assert_int_equal(total, 9);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(ids[i], (int64_t)i + 1);
        }
    }
    ch_store_filter_t f = {0};
    f.purpose = "어린이보호";
    assert_int_equal(walk_ids(fx->st, f, 2, ids, 32, &total), 3);
    assert_int_equal(total, 3);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[2], 8);
    /* A cursor inside a run. */
    ch_store_filter_t g = {0};
    g.after_id = 3;
    g.limit = 3;
    ch_camera_list_t l;
    assert_int_equal(ch_store_camera_list(fx->st, &g, &l), 0);
    assert_int_equal(l.count, 3);
    assert_int_equal(l.items[0].id, 4);
    assert_string_equal(l.items[0].name, "Site A #4");
    assert_string_equal(l.items[2].name, "Site B #1");
    assert_int_equal(l.next_id, 6);
    assert_int_equal(l.total, 9);
    ch_camera_list_free(&l);

    /* The located scan gives every camera. */
    int64_t scanned[33] = {0};
    assert_int_equal(ch_store_camera_scan_located(fx->st, scan_count, scanned), 0);
    assert_int_equal(scanned[0], 9);
    for (int i = 0; i < 9; i++) {
        assert_int_equal(scanned[i + 1], i + 1);
    }
}

static void test_changing_one_camera_of_a_site_leaves_the_others(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "종로구", "district-center");
    ch_camera_t a;
    fill_site(&a, ag, "Site A #1", "s:a#1");
    assert_counts(upsert_site(fx->st, &a, 6), 6, 0, 0);

    /* An operator gives camera 3 its stream and turns camera 6 off. */
    ch_camera_t c;
    assert_int_equal(ch_store_camera_get(fx->st, 3, &c), 0);
    ch_free(c.rtsp_url);
    c.rtsp_url = ch_strdup("rtsp://10.0.0.3/live");
    assert_int_equal(ch_store_camera_update(fx->st, &c), 0);
    ch_camera_fini(&c);
    assert_int_equal(ch_store_camera_get(fx->st, 6, &c), 0);
    ch_free(c.status);
    c.status = ch_strdup("inactive");
    assert_int_equal(ch_store_camera_update(fx->st, &c), 0);
    ch_camera_fini(&c);
    /* And deletes camera 1 and camera 4. */
    assert_int_equal(ch_store_camera_delete(fx->st, 1), 0);
    assert_int_equal(ch_store_camera_delete(fx->st, 4), 0);
    assert_int_equal(ch_store_camera_delete(fx->st, 4), CH_ENOTFOUND);

    assert_int_equal(count_of(fx->st, "cameras"), 4);
    assert_int_equal(ch_store_camera_get(fx->st, 1, &c), CH_ENOTFOUND);
    assert_int_equal(ch_store_camera_get(fx->st, 4, &c), CH_ENOTFOUND);
    assert_site_camera(fx->st, 2, "Site A", "s:a", 2, "생활방범");
    assert_site_camera(fx->st, 5, "Site A", "s:a", 5, "생활방범");
    assert_int_equal(ch_store_camera_get(fx->st, 3, &c), 0);
    assert_string_equal(c.name, "Site A #3");
    assert_string_equal(c.source_key, "s:a#3");
    assert_string_equal(c.rtsp_url, "rtsp://10.0.0.3/live");
    ch_camera_fini(&c);
    assert_int_equal(ch_store_camera_get(fx->st, 6, &c), 0);
    assert_string_equal(c.status, "inactive");
    assert_string_equal(c.name, "Site A #6");
    ch_camera_fini(&c);
    int64_t ids[16], total;
    ch_store_filter_t f = {0};
    assert_int_equal(walk_ids(fx->st, f, 2, ids, 16, &total), 4);
    assert_int_equal(total, 4);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 5);
    assert_int_equal(ids[3], 6);

    /* The same file again: the deleted cameras come back as new ones (as before runs), the one
     * whose imported data changed (status) gets the file's data back, the others are
     * unchanged: camera 3's stream is the operator's, which no import sets or clears. */
    fill_site(&a, ag, "Site A #1", "s:a#1");
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 6), 2, 1, 3);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(count_of(fx->st, "cameras"), 6);
    assert_int_equal(a.id, 7);
    assert_site_camera(fx->st, 7, "Site A", "s:a", 1, "생활방범");
    assert_site_camera(fx->st, 8, "Site A", "s:a", 4, "생활방범");
    assert_int_equal(ch_store_camera_get(fx->st, 3, &c), 0);
    assert_string_equal(c.rtsp_url, "rtsp://10.0.0.3/live");
    ch_camera_fini(&c);
    assert_int_equal(ch_store_camera_get(fx->st, 6, &c), 0);
    assert_string_equal(c.status, "active");
    ch_camera_fini(&c);
    /* And once more: all unchanged. */
    assert_counts(upsert_site(fx->st, &a, 6), 0, 0, 6);
}

/* Sets camera id's status as the API would. */
static void set_status(ch_store_t *st, int64_t id, const char *status)
{
    ch_camera_t c;
    assert_int_equal(ch_store_camera_get(st, id, &c), 0);
    ch_free(c.status);
    c.status = ch_strdup(status);
    assert_int_equal(ch_store_camera_update(st, &c), 0);
    ch_camera_fini(&c);
}

static void assert_status(ch_store_t *st, int64_t id, const char *status)
{
    ch_camera_t c;
    assert_int_equal(ch_store_camera_get(st, id, &c), 0);
    assert_string_equal(c.status, status);
    ch_camera_fini(&c);
}

/* An operator's "maintenance" survives an import that says "active" (changed data or not, a
 * site of one camera or a camera split off a run, in a bulk load or not); the file's
 * "inactive" and "unlocated" replace it. */
static void test_upsert_keeps_maintenance_unless_the_file_deletes_or_unlocates(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "종로구", "district-center");
    ch_camera_t a, b;
    fill_site(&a, ag, "Site A #1", "s:a#1");
    fill_site(&b, ag, "Site B #1", "s:b#1");
    assert_int_equal(ch_store_begin(fx->st), 0); /* a bulk load */
    assert_counts(upsert_site(fx->st, &a, 1), 1, 0, 0);
    assert_counts(upsert_site(fx->st, &b, 3), 3, 0, 0);
    assert_int_equal(ch_store_commit(fx->st), 0);
    set_status(fx->st, 1, "maintenance");
    set_status(fx->st, 3, "maintenance");

    for (int round = 0; round < 2; round++) {
        /* The same data, then a changed cell, inside a transaction (bulk) or not. */
        fill_site(&a, ag, "Site A #1", "s:a#1");
        fill_site(&b, ag, "Site B #1", "s:b#1");
        a.retention_days = b.retention_days = 30 + round * 30;
        if (round == 1) {
            assert_int_equal(ch_store_begin(fx->st), 0);
        }
        assert_counts(upsert_site(fx->st, &a, 1), 0, round, 1 - round);
        assert_counts(upsert_site(fx->st, &b, 3), 0, 3 * round, 3 - 3 * round);
        if (round == 1) {
            assert_int_equal(ch_store_commit(fx->st), 0);
        }
        assert_status(fx->st, 1, "maintenance");
        assert_status(fx->st, 2, "active");
        assert_status(fx->st, 3, "maintenance");
        assert_status(fx->st, 4, "active");
    }
    /* Deleted by the publisher, unlocated: the file's status. */
    fill_site(&a, ag, "Site A #1", "s:a#1");
    fill_site(&b, ag, "Site B #1", "s:b#1");
    a.retention_days = b.retention_days = 60;
    a.status = "inactive";
    b.status = "unlocated";
    b.located = 0;
    b.lat = b.lon = 0;
    assert_counts(upsert_site(fx->st, &a, 1), 0, 1, 0);
    assert_counts(upsert_site(fx->st, &b, 3), 0, 3, 0);
    assert_status(fx->st, 1, "inactive");
    assert_status(fx->st, 3, "unlocated");
    assert_status(fx->st, 4, "unlocated");
}

/* A camera's stream settings are the API's: an upsert (a re-import) neither compares nor writes
 * them, whether its other data changed or not, in a bulk load or not. */
static void test_upsert_keeps_the_stream_settings_set_through_the_api(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    ch_store_upsert_counts_t n = {0, 0, 0};
    ch_store_upsert_t outcome = 0;
    ch_camera_t c, got;

    fill_camera(&c, ag, "cam #1");
    c.source_key = "k#1";
    c.rtsp_url = c.rtsp_username = c.rtsp_password = c.codec = NULL;
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 2, &n), 0);
    for (int64_t id = 1; id <= 2; id++) {
        assert_int_equal(ch_store_camera_get(fx->st, id, &got), 0);
        ch_free(got.rtsp_url);
        ch_free(got.rtsp_username);
        ch_free(got.rtsp_password);
        ch_free(got.codec);
        got.rtsp_url = ch_strdup("rtsp://10.0.0.9/live");
        got.rtsp_username = ch_strdup("viewer");
        got.rtsp_password = ch_strdup("s3cret");
        got.codec = ch_strdup("h264");
        assert_int_equal(ch_store_camera_update(fx->st, &got), 0);
        ch_camera_fini(&got);
    }
    for (int round = 0; round < 3; round++) {
        fill_camera(&c, ag, "cam #1");
        c.source_key = "k#1";
        c.rtsp_url = c.rtsp_username = c.rtsp_password = c.codec = NULL;
        if (round >= 1) {
            c.installed_ym = "2027-01"; /* a newer edition: one cell changed */
        }
        if (round == 2) {
            c.rtsp_url = "rtsp://elsewhere/"; /* what an upsert says of them is not taken */
        }
        memset(&n, 0, sizeof(n));
        assert_int_equal(ch_store_begin(fx->st), 0);
        assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 2, &n), 0);
        assert_int_equal(ch_store_commit(fx->st), 0);
        assert_int_equal(n.updated, round == 1 ? 2 : 0);
        assert_int_equal(n.unchanged, round == 1 ? 0 : 2);
        for (int64_t id = 1; id <= 2; id++) {
            assert_int_equal(ch_store_camera_get(fx->st, id, &got), 0);
            assert_string_equal(got.rtsp_url, "rtsp://10.0.0.9/live");
            assert_string_equal(got.rtsp_username, "viewer");
            assert_string_equal(got.rtsp_password, "s3cret");
            assert_string_equal(got.codec, "h264");
            assert_string_equal(got.installed_ym, round == 0 ? "2018-09" : "2027-01");
            ch_camera_fini(&got);
        }
    }
    /* The single-camera upsert keeps them too; a created camera takes the record whole. */
    fill_camera(&c, ag, "cam #1");
    c.source_key = "k#1";
    c.rtsp_url = NULL;
    c.name = "renamed";
    assert_int_equal(ch_store_camera_upsert(fx->st, &c, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UPDATED);
    assert_int_equal(ch_store_camera_get(fx->st, 1, &got), 0);
    assert_string_equal(got.name, "renamed");
    assert_string_equal(got.rtsp_url, "rtsp://10.0.0.9/live");
    ch_camera_fini(&got);
}

/* Owned upserts (a provider's import) refuse a key held by another agency's record, and change
 * nothing of it or of the site; keys of their own agency, and new keys, go through. */
static void test_owned_upsert_refuses_another_agencys_key(void **state)
{
    fixture_t *fx = *state;
    int64_t mine = make_agency(fx->st, "mine", "district-center");
    int64_t theirs = make_agency(fx->st, "theirs", "district-center");
    const ch_store_upsert_opts_t owned = {.owned = 1};
    ch_store_upsert_counts_t n = {0, 0, 0};
    ch_store_upsert_t outcome = 0;
    ch_camera_t c, got;

    /* Theirs: a run of 3 (ids 1-3) and a site of 2 whose camera 2 an operator changed. */
    fill_site(&c, theirs, "T #1", "t:a#1");
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 3, &n), 0);
    fill_site(&c, theirs, "U #1", "t:b#1");
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 2, &n), 0);
    assert_int_equal(ch_store_camera_get(fx->st, 5, &got), 0);
    ch_free(got.note);
    got.note = ch_strdup("changed");
    assert_int_equal(ch_store_camera_update(fx->st, &got), 0);
    ch_camera_fini(&got);

    assert_int_equal(ch_store_begin(fx->st), 0);
    /* The same data under their key, claimed by mine: the run's first row (found path). */
    fill_site(&c, mine, "T #1", "t:a#1");
    assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 3, &owned, &n), CH_EPERM);
    /* Fewer cameras (camera by camera), and the split site (each camera checked first). */
    assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 2, &owned, &n), CH_EPERM);
    fill_site(&c, mine, "U #1", "t:b#1");
    assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 2, &owned, &n), CH_EPERM);
    /* A site whose #1 is new but whose #2 is theirs: nothing of it is written. */
    assert_int_equal(ch_store_camera_delete(fx->st, 4), 0);
    assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 2, &owned, &n), CH_EPERM);
    /* A new key of mine goes in; my own again is unchanged. */
    memset(&n, 0, sizeof(n));
    fill_site(&c, mine, "M #1", "m:a#1");
    assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 2, &owned, &n), 0);
    assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 2, &owned, &n), 0);
    assert_int_equal(n.created, 2);
    assert_int_equal(n.unchanged, 2);
    assert_int_equal(ch_store_commit(fx->st), 0);
    for (int64_t id = 1; id <= 5; id++) {
        if (id == 4) {
            continue;
        }
        assert_int_equal(ch_store_camera_get(fx->st, id, &got), 0);
        assert_int_equal(got.agency_id, theirs);
        ch_camera_fini(&got);
    }
    assert_int_equal(count_of(fx->st, "cameras"), 6);

    /* The plain upsert (an administrator's import) moves it, as before. */
    memset(&n, 0, sizeof(n));
    fill_site(&c, mine, "T #1", "t:a#1");
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 3, &n), 0);
    assert_int_equal(n.updated, 3);
    assert_int_equal(ch_store_camera_get(fx->st, 2, &got), 0);
    assert_int_equal(got.agency_id, mine);
    ch_camera_fini(&got);

    /* Devices: refused on their key, in a bulk load and outside one. */
    ch_device_t d, dgot;
    fill_device(&d, theirs, "bell");
    assert_int_equal(ch_store_device_upsert(fx->st, &d, &outcome), 0);
    for (int tx = 0; tx < 2; tx++) {
        if (tx) {
            assert_int_equal(ch_store_begin(fx->st), 0);
        }
        fill_device(&d, mine, "bell");
        assert_int_equal(ch_store_device_upsert_with(fx->st, &d, &owned, &outcome), CH_EPERM);
        if (tx) {
            assert_int_equal(ch_store_commit(fx->st), 0);
        }
    }
    assert_int_equal(ch_store_device_get(fx->st, 1, &dgot), 0);
    assert_int_equal(dgot.agency_id, theirs);
    ch_device_fini(&dgot);
    fill_device(&d, theirs, "bell");
    d.name = "bell 2";
    assert_int_equal(ch_store_device_upsert_with(fx->st, &d, &owned, &outcome), 0);
    assert_int_equal(outcome, CH_STORE_UPDATED);
}

/* A file without some columns (the Ansimi list has no 촬영방면정보, 화소수, ...): the upsert keeps
 * those groups as stored, compares only the rest, and updates only the rest. */
static void test_upsert_keeps_the_groups_a_file_does_not_carry(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "a", "other");
    const ch_store_upsert_opts_t ansimi = {.keep = CH_STORE_F_DIRECTION | CH_STORE_F_PIXELS |
                                                   CH_STORE_F_RETENTION | CH_STORE_F_INSTALLED |
                                                   CH_STORE_F_PURPOSE | CH_STORE_F_ROAD_ADDRESS |
                                                   CH_STORE_F_LOT_ADDRESS};
    ch_store_upsert_counts_t n = {0, 0, 0};
    ch_camera_t c, got;
    fill_site(&c, ag, "S #1", "s#1");
    assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 1, &ansimi, &n), 0);
    /* An operator calibrates it. */
    assert_int_equal(ch_store_camera_get(fx->st, 1, &got), 0);
    got.heading_deg = 270.0;
    got.fov_deg = 45.0;
    got.pixels = 8000000;
    ch_free(got.kind);
    got.kind = ch_strdup("fixed");
    assert_int_equal(ch_store_camera_update(fx->st, &got), 0);
    ch_camera_fini(&got);
    for (int round = 0; round < 2; round++) {
        for (int bulk = 0; bulk < 2; bulk++) {
            fill_site(&c, ag, "S #1", "s#1");
            c.heading_deg = c.fov_deg = CH_STORE_UNKNOWN_DOUBLE; /* what the file says */
            c.kind = "unknown";
            c.pixels = 0;
            c.lat = round ? 37.6 : c.lat;
            memset(&n, 0, sizeof(n));
            if (bulk) {
                assert_int_equal(ch_store_begin(fx->st), 0);
            }
            assert_int_equal(ch_store_camera_upsert_site_with(fx->st, &c, 1, &ansimi, &n), 0);
            if (bulk) {
                assert_int_equal(ch_store_commit(fx->st), 0);
            }
            assert_int_equal(n.updated, round && !bulk ? 1 : 0);
            assert_int_equal(ch_store_camera_get(fx->st, 1, &got), 0);
            assert_true(got.heading_deg == 270.0 && got.fov_deg == 45.0);
            assert_int_equal(got.pixels, 8000000);
            assert_string_equal(got.kind, "fixed");
            assert_true(got.lat == (round ? 37.6 : 37.5729));
            ch_camera_fini(&got);
        }
    }
    /* A file that has the column says what it says. */
    fill_site(&c, ag, "S #1", "s#1");
    c.lat = 37.6;
    c.heading_deg = CH_STORE_UNKNOWN_DOUBLE;
    memset(&n, 0, sizeof(n));
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &c, 1, &n), 0);
    assert_int_equal(n.updated, 1);
    assert_int_equal(ch_store_camera_get(fx->st, 1, &got), 0);
    assert_true(got.heading_deg == CH_STORE_UNKNOWN_DOUBLE);
    assert_int_equal(got.pixels, c.pixels);
    ch_camera_fini(&got);
}

static void test_a_site_again_unchanged_grown_or_changed(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "종로구", "district-center");
    ch_camera_t a, b;
    fill_site(&a, ag, "Site A #1", "s:a#1");
    fill_site(&b, ag, "Site B #1", "s:b#1");
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 4), 4, 0, 0);
    assert_counts(upsert_site(fx->st, &b, 2), 2, 0, 0);
    assert_int_equal(ch_store_commit(fx->st), 0);

    /* Unchanged, in a transaction and outside one; the provenance alone is no change. */
    a.source_line = 99;
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 4), 0, 0, 4);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 4), 0, 0, 4);
    assert_int_equal(a.id, 1);

    /* Grown: the new cameras take new ids, the old keep theirs. */
    assert_counts(upsert_site(fx->st, &a, 6), 2, 0, 4);
    assert_site_camera(fx->st, 7, "Site A", "s:a", 5, "생활방범");
    assert_site_camera(fx->st, 8, "Site A", "s:a", 6, "생활방범");
    assert_site_camera(fx->st, 4, "Site A", "s:a", 4, "생활방범");
    assert_counts(upsert_site(fx->st, &a, 6), 0, 0, 6);

    /* Changed data: every camera updated, ids kept. */
    a.purpose = "교통단속";
    assert_counts(upsert_site(fx->st, &a, 6), 0, 6, 0);
    for (int i = 0; i < 4; i++) {
        assert_site_camera(fx->st, 1 + i, "Site A", "s:a", i + 1, "교통단속");
    }
    assert_site_camera(fx->st, 8, "Site A", "s:a", 6, "교통단속");
    assert_site_camera(fx->st, 5, "Site B", "s:b", 1, "생활방범");
    assert_int_equal(count_of(fx->st, "cameras"), 8);
    assert_counts(upsert_site(fx->st, &a, 6), 0, 0, 6);

    /* A camera upserted alone by its key is found inside its site's run. */
    ch_camera_t one;
    fill_site(&one, ag, "Site B #2", "s:b#2");
    ch_store_upsert_t o;
    assert_int_equal(ch_store_camera_upsert(fx->st, &one, &o), 0);
    assert_int_equal(o, CH_STORE_UNCHANGED);
    assert_int_equal(one.id, 6);
    assert_int_equal(count_of(fx->st, "cameras"), 8);
}

static void test_sites_over_cameras_stored_one_by_one(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "종로구", "district-center");
    /* A store from before runs: one row per camera, keys "...#n". */
    const char *names[] = {"Site A #1", "Site A #2", "Site A #3"};
    const char *keys[] = {"s:a#1", "s:a#2", "s:a#3"};
    for (int i = 0; i < 3; i++) {
        ch_camera_t c;
        fill_site(&c, ag, names[i], keys[i]);
        ch_store_upsert_t o;
        assert_int_equal(ch_store_camera_upsert(fx->st, &c, &o), 0);
        assert_int_equal(o, CH_STORE_CREATED);
    }
    ch_camera_t a;
    fill_site(&a, ag, "Site A #1", "s:a#1");
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 3), 0, 0, 3);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(count_of(fx->st, "cameras"), 3);
    /* Camera 1 deleted, then the site again: only camera 1 is new. */
    assert_int_equal(ch_store_camera_delete(fx->st, 1), 0);
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 3), 1, 0, 2);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(count_of(fx->st, "cameras"), 3);
    assert_int_equal(a.id, 4);
}

static void test_a_site_rolled_back_leaves_nothing_and_bad_sites_are_refused(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "종로구", "district-center");
    ch_camera_t a;
    fill_site(&a, ag, "Site A #1", "s:a#1");
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_counts(upsert_site(fx->st, &a, 7), 7, 0, 0);
    assert_int_equal(ch_store_rollback(fx->st), 0);
    assert_int_equal(count_of(fx->st, "cameras"), 0);
    ch_camera_t c;
    fill_camera(&c, ag, "after");
    c.source_key = NULL;
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    assert_int_equal(c.id, 1);

    ch_store_upsert_counts_t n = {0, 0, 0};
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &a, 0, &n), CH_EINVAL);
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &a, CH_STORE_MAX_SITE + 1, &n), CH_EINVAL);
    a.name = "Site A";
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &a, 2, &n), CH_EINVAL);
    a.name = "Site A #1";
    a.source_key = "s:a#2";
    assert_int_equal(ch_store_camera_upsert_site(fx->st, &a, 2, &n), CH_EINVAL);
    assert_int_equal(n.created + n.updated + n.unchanged, 0);
    assert_int_equal(count_of(fx->st, "cameras"), 1);
}

static void test_audit_index_finds_records_by_camera_and_pages_by_seq(void **state)
{
    fixture_t *fx = *state;
    int64_t last = 0;
    assert_int_equal(ch_store_audit_index_last(fx->st, &last), 0);
    assert_int_equal(last, -1);
    /* 25 records: every third about cameras 7 and 8, every fifth by agency 3. */
    const int64_t camera_pair[] = {7, 8}, agencies[] = {3};
    for (int64_t seq = 0; seq < 25; seq++) {
        ch_store_audit_row_t row = {.seq = seq,
                                    .time_ns = 1000 + seq,
                                    .actor = seq % 2 ? "user:kim" : "system",
                                    .action = "view.start",
                                    .camera_ids = camera_pair,
                                    .n_camera_ids = seq % 3 == 0 ? 2 : 0,
                                    .agency_ids = agencies,
                                    .n_agency_ids = seq % 5 == 0 ? 1 : 0};
        assert_int_equal(ch_store_audit_index_add(fx->st, &row), 0);
    }
    ch_store_audit_row_t dup = {.seq = 4, .time_ns = 1, .actor = "x", .action = "y"};
    /* Camera 8 is named beside 7 in the same records. */
    ch_store_audit_filter_t by8 = {.camera_id = 8, .after_seq = -1};
    int64_t *s8 = NULL, t8 = 0, n8next = 0;
    size_t n8 = 0;
    assert_int_equal(ch_store_audit_index_query(fx->st, &by8, &s8, &n8, &t8, &n8next), 0);
    assert_int_equal(t8, 9);
    ch_free(s8);
    assert_int_equal(ch_store_audit_index_add(fx->st, &dup), CH_EEXIST);
    assert_int_equal(ch_store_audit_index_last(fx->st, &last), 0);
    assert_int_equal(last, 24);

    /* Camera 7, two per page: seqs 0 3 6 9 12 15 18 21 24, walked exactly once. */
    ch_store_audit_filter_t f = {.camera_id = 7, .after_seq = -1, .limit = 2};
    int64_t want = 0, pages = 0;
    for (;;) {
        int64_t *seqs = NULL, total = 0, next = 0;
        size_t n = 0;
        assert_int_equal(ch_store_audit_index_query(fx->st, &f, &seqs, &n, &total, &next), 0);
        assert_int_equal(total, 9);
        for (size_t i = 0; i < n; i++, want += 3) {
            assert_int_equal(seqs[i], want);
        }
        ch_free(seqs);
        pages++;
        if (next < 0) {
            break;
        }
        f.after_seq = next;
    }
    assert_int_equal(want, 27);
    assert_int_equal(pages, 5);

    /* Filters combine: agency 3, by kim, in a time window. */
    ch_store_audit_filter_t g = {
        .agency_id = 3, .actor = "user:kim", .since_ns = 1005, .until_ns = 1020, .after_seq = -1};
    int64_t *seqs = NULL, total = 0, next = 0;
    size_t n = 0;
    assert_int_equal(ch_store_audit_index_query(fx->st, &g, &seqs, &n, &total, &next), 0);
    assert_int_equal(n, 2); /* 5 and 15 */
    assert_int_equal(seqs[0], 5);
    assert_int_equal(seqs[1], 15);
    assert_int_equal(next, -1);
    ch_free(seqs);

    assert_int_equal(ch_store_audit_index_clear(fx->st), 0);
    assert_int_equal(ch_store_audit_index_last(fx->st, &last), 0);
    assert_int_equal(last, -1);
}

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ARGON "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"

static void test_accounts_users_keys_sessions_and_outbox(void **state)
{
    fixture_t *fx = *state;
    int64_t ag = make_agency(fx->st, "서울경찰청 112", "police-112");

    /* Users: unique names, roles checked, agency roles need an agency. */
    ch_user_t u = {.name = "kim", .role = "operator", .password_hash = ARGON};
    assert_int_equal(ch_store_user_create(fx->st, &u), 0);
    assert_true(u.id > 0);
    ch_user_t dup = {.name = "kim", .role = "auditor", .password_hash = ARGON};
    assert_int_equal(ch_store_user_create(fx->st, &dup), CH_EEXIST);
    ch_user_t bad = {.name = "lee", .role = "janitor", .password_hash = ARGON};
    assert_int_equal(ch_store_user_create(fx->st, &bad), CH_EINVAL);
    bad.role = "agency";
    assert_int_equal(ch_store_user_create(fx->st, &bad), CH_EINVAL); /* no agency */
    bad.agency_id = ag;
    bad.password_hash = "plain text";
    assert_int_equal(ch_store_user_create(fx->st, &bad), CH_EINVAL); /* not Argon2id */
    bad.password_hash = ARGON;
    assert_int_equal(ch_store_user_create(fx->st, &bad), 0);

    ch_user_t got;
    assert_int_equal(ch_store_user_find(fx->st, "kim", &got), 0);
    assert_int_equal(got.id, u.id);
    assert_string_equal(got.role, "operator");
    assert_string_equal(got.password_hash, ARGON);
    got.failed_logins = 3;
    got.locked_until = 1234;
    assert_int_equal(ch_store_user_update(fx->st, &got), 0);
    ch_user_fini(&got);
    assert_int_equal(ch_store_user_get(fx->st, u.id, &got), 0);
    assert_int_equal(got.failed_logins, 3);
    assert_int_equal(got.locked_until, 1234);
    ch_user_fini(&got);
    assert_int_equal(ch_store_user_find(fx->st, "nobody", &got), CH_ENOTFOUND);

    ch_store_filter_t f = {.agency_id = ag};
    ch_user_list_t ul;
    assert_int_equal(ch_store_user_list(fx->st, &f, &ul), 0);
    assert_int_equal(ul.count, 1);
    assert_string_equal(ul.items[0].name, "lee");
    ch_user_list_free(&ul);

    /* API keys: hashes only, role agency or provider, agency must exist. */
    ch_apikey_t k = {.agency_id = ag, .role = "agency", .secret_hash = HEX_A, .label = "CAD"};
    assert_int_equal(ch_store_apikey_create(fx->st, &k), 0);
    ch_apikey_t kb = {.agency_id = ag, .role = "admin", .secret_hash = HEX_A};
    assert_int_equal(ch_store_apikey_create(fx->st, &kb), CH_EINVAL);
    kb.role = "agency";
    kb.secret_hash = "not hex";
    assert_int_equal(ch_store_apikey_create(fx->st, &kb), CH_EINVAL);
    kb.secret_hash = HEX_B;
    kb.agency_id = 9999;
    assert_int_not_equal(ch_store_apikey_create(fx->st, &kb), 0); /* foreign key */
    ch_apikey_t kg;
    assert_int_equal(ch_store_apikey_get(fx->st, k.id, &kg), 0);
    assert_string_equal(kg.secret_hash, HEX_A);
    assert_int_equal(kg.revoked_at, 0);
    ch_apikey_fini(&kg);

    /* Sessions: found by token hash, ended per user, purged when expired. */
    ch_session_t s1 = {.token_hash = HEX_A, .user_id = u.id, .csrf = "c1", .expires_at = 100};
    ch_session_t s2 = {.token_hash = HEX_B, .user_id = u.id, .csrf = "c2", .expires_at = 500};
    assert_int_equal(ch_store_session_create(fx->st, &s1), 0);
    assert_int_equal(ch_store_session_create(fx->st, &s2), 0);
    ch_session_t sg;
    assert_int_equal(ch_store_session_find(fx->st, HEX_B, &sg), 0);
    assert_int_equal(sg.id, s2.id);
    assert_string_equal(sg.csrf, "c2");
    ch_session_fini(&sg);
    assert_int_equal(ch_store_session_purge(fx->st, 200), 0);
    assert_int_equal(ch_store_session_find(fx->st, HEX_A, &sg), CH_ENOTFOUND);
    assert_int_equal(ch_store_session_find(fx->st, HEX_B, &sg), 0);
    ch_session_fini(&sg);
    assert_int_equal(ch_store_session_end_user(fx->st, u.id), 0);
    assert_int_equal(ch_store_session_find(fx->st, HEX_B, &sg), CH_ENOTFOUND);
    assert_int_equal(ch_store_session_find(fx->st, "short", &sg), CH_ENOTFOUND);

    /* The outbox keeps order and forgets what was deleted. */
    ch_outbox_t o1 = {.actor = "user:root", .action = "user.create", .object = "user:kim"};
    ch_outbox_t o2 = {.actor = "user:root", .action = "apikey.revoke", .details = "{\"a\":1}"};
    assert_int_equal(ch_store_outbox_add(fx->st, &o1), 0);
    assert_int_equal(ch_store_outbox_add(fx->st, &o2), 0);
    ch_store_filter_t all = {0};
    ch_outbox_list_t ol;
    assert_int_equal(ch_store_outbox_list(fx->st, &all, &ol), 0);
    assert_int_equal(ol.count, 2);
    assert_string_equal(ol.items[0].action, "user.create");
    assert_string_equal(ol.items[1].details, "{\"a\":1}");
    ch_outbox_list_free(&ol);
    assert_int_equal(ch_store_outbox_delete(fx->st, o1.id), 0);
    assert_int_equal(ch_store_outbox_list(fx->st, &all, &ol), 0);
    assert_int_equal(ol.count, 1);
    assert_int_equal(ol.items[0].id, o2.id);
    ch_outbox_list_free(&ol);
}

static void test_savepoints_let_one_change_fail_alone_inside_a_transaction(void **state)
{
    fixture_t *fx = *state;
    int64_t n = 0;
    assert_int_equal(ch_store_savepoint(fx->st), CH_EINVAL); /* no transaction */
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_int_equal(ch_store_savepoint(fx->st), 0);
    make_agency(fx->st, "kept", "police-112");
    assert_int_equal(ch_store_release(fx->st), 0);
    assert_int_equal(ch_store_savepoint(fx->st), 0);
    make_agency(fx->st, "undone", "fire-119");
    ch_store_rollback_savepoint(fx->st);
    assert_int_equal(ch_store_savepoint(fx->st), 0);
    make_agency(fx->st, "kept too", "fire-119");
    assert_int_equal(ch_store_release(fx->st), 0);
    assert_int_equal(ch_store_commit(fx->st), 0);
    assert_int_equal(ch_store_count(fx->st, "agencies", &n), 0);
    assert_int_equal(n, 2);
    ch_agency_t a;
    assert_int_equal(ch_store_agency_find_by_name(fx->st, "undone", &a), CH_ENOTFOUND);
    ch_agency_fini(&a);
    /* WAL checkpoints work with autocheckpoint off. */
    assert_int_equal(ch_store_maintain(fx->st, CH_STORE_MAINTAIN_DEFER), 0);
    assert_int_equal(ch_store_maintain(fx->st, CH_STORE_MAINTAIN_NOW), 0);
    assert_int_equal(ch_store_maintain(fx->st, CH_STORE_MAINTAIN_DEFER | CH_STORE_MAINTAIN_NOW), 0);
    assert_int_equal(ch_store_maintain(fx->st, 1u << 7), CH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_apply_on_new_file_and_reopen_keeps_version,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_sets_wal_and_foreign_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_users_keys_sessions_and_outbox, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_savepoints_let_one_change_fail_alone_inside_a_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_database_newer_than_build_is_refused, setup, teardown),
        cmocka_unit_test(test_postgresql_url_is_unsupported_with_message),
        cmocka_unit_test_setup_teardown(test_agency_crud_round_trips_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_camera_crud_round_trips_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rtsp_credentials_are_stored_and_returned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_device_crud_round_trips_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_agency_name_is_eexist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_source_key_is_eexist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_camera_with_missing_agency_is_conflict, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delete_agency_with_cameras_or_devices_is_conflict,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_records_and_filters_are_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_camera_list_filters_by_each_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agency_and_device_lists_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination_walks_every_row_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_reports_created_unchanged_updated_and_keeps_id,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_upsert_reports_each_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_keeps_the_stream_settings_set_through_the_api,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert_keeps_the_groups_a_file_does_not_carry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_owned_upsert_refuses_another_agencys_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_upsert_outcomes_hold_outside_a_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bulk_load_into_empty_table_keeps_outcomes_and_schema,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_load_sees_rows_that_were_there_before, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_upsert_on_a_big_table_in_a_transaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_site_cameras_are_each_a_camera, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changing_one_camera_of_a_site_leaves_the_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_upsert_keeps_maintenance_unless_the_file_deletes_or_unlocates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_site_again_unchanged_grown_or_changed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sites_over_cameras_stored_one_by_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_site_rolled_back_leaves_nothing_and_bad_sites_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_index_finds_records_by_camera_and_pages_by_seq,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
