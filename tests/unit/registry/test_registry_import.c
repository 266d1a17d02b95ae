/*
 * Unit tests of the import into a real (SQLite) store: the real files with independently
 * computed counts, idempotent re-import, updates in place, all-or-nothing, rejections.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry/registry.h"
#include "support/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

/* 2026-11-25T00:00:00Z: the reference "now" for date checks. */
#define NOW_MS 1795564800000LL

typedef struct fixture {
    ch_test_store_t ts; /* the store's directory holds the test's files too */
    ch_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (ch_test_store_open(&f->ts, "ch_registry_test", &f->st) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    int rc = ch_test_store_close(&f->ts, f->st);
    free(f);
    return rc;
}

static int64_t count(ch_store_t *st, const char *what)
{
    int64_t n = -1;
    assert_int_equal(ch_store_count(st, what, &n), 0);
    return n;
}

static int import_file(ch_store_t *st, const char *path, const char *agency,
                       ch_import_report_t *rep)
{
    ch_import_options_t opt = {.agency = agency, .now_ms = NOW_MS};
    char *err = NULL;
    ch_import_report_init(rep);
    int rc = ch_registry_import_file(st, path, &opt, rep, &err);
    if (rc != 0) {
        assert_non_null(err);
        assert_string_equal(err, rep->error);
    }
    ch_free(err);
    return rc;
}

static int import_text(ch_store_t *st, const char *text, ch_import_report_t *rep)
{
    ch_import_options_t opt = {.now_ms = NOW_MS};
    ch_import_report_init(rep);
    return ch_registry_import_buffer(st, "inline.csv", text, strlen(text), &opt, rep, NULL);
}

/*
 * The real files. Expectations were computed apart from this code, with Python's csv module
 * over the files decoded by Python's own cp949 codec (the script is quoted in the module's
 * report): rows = records after the header; cameras = the sum of 카메라대수 / CCTV 수량 where
 * it is 1..64, else 1; flagged = rows with unusable or swapped coordinates (blank, 0,0, outside
 * 33-39.5 N / 124-132 E, or one decimal or fewer on both), or a 카메라대수 outside 1..64, or a
 * 설치연월 that is unparseable, before 1990 or after 2026-11; skipped = exact repeats of an
 * earlier row (all cells equal after trimming), none in these files; unlocated = cameras of the
 * rows with unusable coordinates.
 *   busan: 2 unlocated rows (0.0,0.0 and 30.07 N), 카메라대수 104 (one row), 설치연월 2027-02.
 *   daejeon: 990 rows at the placeholder 36.1,127.1 (1317 cameras), 설치연월 190507 twice.
 */
static const struct real_file {
    const char *name;
    const char *encoding;
    const char *layout;
    long rows, cameras, devices, flagged, skipped, unlocated, agencies;
} real_files[] = {
    {"busan_cctv_std_20241206_utf8_crlf.csv", "UTF-8", "cctv-standard", 15737, 20423, 0, 4, 0, 2,
     20},
    {"daejeon_5gu_cctv_std_20260520_cp949.csv", "CP949", "cctv-standard", 9037, 15394, 0, 992, 0,
     1317, 5},
    /* Two agencies are new here: 대덕구청's 공원녹지과 and 기후환경과; the rest came with the
     * CCTV file above. */
    {"daejeon_5gu_safety_bell_std_20260530_cp949.csv", "CP949", "emergency-bell", 575, 0, 575, 0, 0,
     0, 2},
    {"seoul_ansimi_cctv_jongno_20221201_cp949.csv", "CP949", "seoul-ansimi", 1930, 1930, 0, 0, 0, 0,
     1},
};

static void test_real_files_import_with_expected_counts(void **state)
{
    fixture_t *f = *state;
    long cameras = 0, devices = 0;
    for (size_t i = 0; i < sizeof(real_files) / sizeof(real_files[0]); i++) {
        const struct real_file *w = &real_files[i];
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", CH_DATA_DIR, w->name);
        ch_import_report_t rep;
        assert_int_equal(import_file(f->st, path, NULL, &rep), 0);
        assert_true(rep.ok);
        assert_string_equal(rep.file, w->name);
        assert_string_equal(rep.encoding, w->encoding);
        assert_string_equal(rep.layout, w->layout);
        assert_int_equal(rep.rows, w->rows);
        assert_int_equal(rep.cameras, w->cameras);
        assert_int_equal(rep.cameras_created, w->cameras);
        assert_int_equal(rep.devices_created, w->devices);
        assert_int_equal(rep.flagged_count, w->flagged);
        assert_int_equal(rep.skipped_count, w->skipped);
        assert_int_equal(rep.unlocated, w->unlocated);
        assert_int_equal(rep.agencies_created, w->agencies);
        cameras += w->cameras;
        devices += w->devices;
        assert_int_equal(count(f->st, "cameras"), cameras);
        assert_int_equal(count(f->st, "devices"), devices);
        ch_import_report_fini(&rep);
    }
    assert_int_equal(count(f->st, "agencies"), 28);

    /* Spot checks of what was stored. */
    ch_agency_t a;
    assert_int_equal(ch_store_agency_find_by_name(f->st, "서울특별시 종로구", &a), 0);
    assert_string_equal(a.kind, "provider");
    assert_string_equal(a.level, "district");
    assert_string_equal(a.type, "district-center");
    ch_agency_fini(&a);
    assert_int_equal(ch_store_agency_find_by_name(f->st, "대전광역시 동구청", &a), 0);
    assert_string_equal(a.code, "3640000");
    assert_string_equal(a.phone, "042-251-4175");
    ch_agency_fini(&a);
    ch_store_filter_t flt = {.status = "unlocated", .limit = 1000};
    ch_camera_list_t l;
    assert_int_equal(ch_store_camera_list(f->st, &flt, &l), 0);
    assert_int_equal(l.total, 2 + 1317);
    assert_int_equal(l.items[0].located, 0);
    assert_non_null(strstr(l.items[0].flags, "unlocated"));
    ch_camera_list_free(&l);
    ch_store_filter_t ptz = {.kind = "ptz", .text = "흑교로 74", .limit = 10};
    assert_int_equal(ch_store_camera_list(f->st, &ptz, &l), 0);
    /* Busan line 2 (3 cameras) and line 395 (1 camera, other coordinates) are both at
     * 흑교로 74 and both "360도 전방면". */
    assert_int_equal(l.count, 4);
    assert_string_equal(l.items[0].name, "흑교로 74 #1");
    assert_int_equal(l.items[0].source_line, 2);
    assert_true(l.items[0].fov_deg == 360);
    assert_int_equal(l.items[0].pixels, 2000000);
    assert_string_equal(l.items[0].installed_ym, "2018-09");
    ch_camera_list_free(&l);
}

static void test_reimport_changes_nothing(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof(real_files) / sizeof(real_files[0]); i++) {
        const struct real_file *w = &real_files[i];
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", CH_DATA_DIR, w->name);
        for (int pass = 0; pass < 2; pass++) {
            ch_import_report_t rep;
            assert_int_equal(import_file(f->st, path, NULL, &rep), 0);
            if (pass == 1) {
                assert_int_equal(rep.cameras_created, 0);
                assert_int_equal(rep.cameras_updated, 0);
                assert_int_equal(rep.cameras_unchanged, w->cameras);
                assert_int_equal(rep.devices_created, 0);
                assert_int_equal(rep.devices_updated, 0);
                assert_int_equal(rep.devices_unchanged, w->devices);
                assert_int_equal(rep.agencies_created, 0);
            }
            ch_import_report_fini(&rep);
        }
    }
    assert_int_equal(count(f->st, "cameras"), 20423 + 15394 + 1930);
    assert_int_equal(count(f->st, "devices"), 575);
}

#define STD_HEADER                                                                                                          \
    "관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수," \
    "촬영방면정보,보관일수,설치연월,WGS84위도,WGS84경도\n"

static void test_newer_file_updates_in_place(void **state)
{
    fixture_t *f = *state;
    ch_import_report_t rep;
    assert_int_equal(import_text(f->st,
                                 STD_HEADER "부산광역시 중구청,흑교로 74,,다목적,2,200,,30,2018-09,"
                                            "35.1034,129.0339\n"
                                            "부산광역시 중구청,영주로 5,,생활방범,1,200,고정,30,,"
                                            "35.1049,129.0287\n",
                                 &rep),
                     0);
    assert_int_equal(rep.cameras_created, 3);
    assert_int_equal(rep.agencies_created, 1);
    ch_import_report_fini(&rep);
    /* Next year's file: the first site got a direction and a third camera, the second is the
     * same, a new site appeared. */
    assert_int_equal(import_text(f->st,
                                 STD_HEADER "부산광역시 중구청,흑교로 74,,다목적,3,200,회전,30,"
                                            "2018-09,35.1034,129.0339\n"
                                            "부산광역시 중구청,영주로 5,,생활방범,1,200,고정,30,,"
                                            "35.1049,129.0287\n"
                                            "부산광역시 중구청,대청로 1,,생활방범,1,200,,30,,"
                                            "35.1060,129.0216\n",
                                 &rep),
                     0);
    assert_int_equal(rep.cameras_created, 2);
    assert_int_equal(rep.cameras_updated, 2);
    assert_int_equal(rep.cameras_unchanged, 1);
    assert_int_equal(rep.agencies_created, 0);
    ch_import_report_fini(&rep);
    assert_int_equal(count(f->st, "cameras"), 5);
    ch_store_filter_t flt = {.kind = "ptz", .limit = 10};
    ch_camera_list_t l;
    assert_int_equal(ch_store_camera_list(f->st, &flt, &l), 0);
    assert_int_equal(l.count, 3);
    assert_int_equal(l.items[0].id, 1); /* updated in place: same id */
    ch_camera_list_free(&l);
}

static void test_city_level_agency(void **state)
{
    fixture_t *f = *state;
    ch_import_report_t rep;
    assert_int_equal(import_text(f->st,
                                 STD_HEADER "부산광역시,시청로 1,,교통단속,1,200,,30,,35.1796,"
                                            "129.0756\n"
                                            "대전광역시 대덕구청 공원녹지과,대덕대로 1,,생활방범,1,"
                                            "200,,30,,36.3466,127.4156\n",
                                 &rep),
                     0);
    assert_int_equal(rep.agencies_created, 2);
    ch_import_report_fini(&rep);
    ch_agency_t a;
    assert_int_equal(ch_store_agency_find_by_name(f->st, "부산광역시", &a), 0);
    assert_string_equal(a.level, "city");
    assert_string_equal(a.type, "city-agency");
    ch_agency_fini(&a);
    assert_int_equal(ch_store_agency_find_by_name(f->st, "대전광역시 대덕구청 공원녹지과", &a), 0);
    assert_string_equal(a.level, "district");
    ch_agency_fini(&a);
}

/* A file that fails after rows were stored leaves the store as it was. */
static void test_a_failing_file_changes_nothing(void **state)
{
    fixture_t *f = *state;
    ch_import_report_t rep;
    assert_int_equal(import_text(f->st,
                                 STD_HEADER "부산광역시 중구청,a,,다목적,1,200,,30,,35.1034,"
                                            "129.0339\n",
                                 &rep),
                     0);
    ch_import_report_fini(&rep);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, STD_HEADER);
    for (int i = 0; i < 500; i++) {
        ch_buf_appendf(&b, "새기관,road %d,,다목적,2,200,,30,,35.1034,129.0339\n", i);
    }
    ch_buf_append_str(&b, "새기관,\"never closed,,다목적,1,200,,30,,35.1034,129.0339\n");
    for (int i = 0; i < 200; i++) {
        ch_buf_appendf(&b, "새기관,after %d,,다목적,1,200,,30,,35.1034,129.0339\n", i);
    }
    assert_int_equal(import_text(f->st, b.data, &rep), CH_EPARSE);
    assert_false(rep.ok);
    assert_int_equal(rep.cameras_created, 0);
    assert_int_equal(rep.agencies_created, 0);
    assert_non_null(strstr(rep.error, "line 502"));
    ch_import_report_fini(&rep);
    ch_buf_fini(&b);
    assert_int_equal(count(f->st, "cameras"), 1);
    assert_int_equal(count(f->st, "agencies"), 1);
    ch_agency_t a;
    assert_int_equal(ch_store_agency_find_by_name(f->st, "새기관", &a), CH_ENOTFOUND);
}

/* The file is converted on a second thread while this one stores; a store failure deep in a
 * file larger than the rows the converter may run ahead stops it, and the file changes
 * nothing. The failure is made by a trigger on a separate connection. */
static void test_a_store_failure_stops_the_conversion_and_changes_nothing(void **state)
{
    fixture_t *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->ts.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER boom BEFORE INSERT ON cameras "
                                  "WHEN NEW.source_line = 6001 BEGIN SELECT RAISE(ABORT, 'boom'); "
                                  "END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, STD_HEADER);
    for (int i = 0; i < 12000; i++) {
        ch_buf_appendf(&b, "부산광역시 중구청,road %d,,다목적,3,200,,30,,35.1034,129.0339\n", i);
    }
    ch_import_report_t rep;
    assert_int_equal(import_text(f->st, b.data, &rep), CH_EDB);
    assert_false(rep.ok);
    assert_non_null(strstr(rep.error, "line 6001"));
    assert_non_null(strstr(rep.error, "boom"));
    assert_int_equal(rep.cameras_created, 0);
    assert_int_equal(rep.agencies_created, 0);
    /* The converter stopped before the end of the file. */
    assert_true(rep.rows < 12000);
    ch_import_report_fini(&rep);
    assert_int_equal(count(f->st, "cameras"), 0);
    assert_int_equal(count(f->st, "agencies"), 0);

    /* Without the trigger the same file goes in whole. */
    assert_int_equal(sqlite3_exec(db, "DROP TRIGGER boom", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(import_text(f->st, b.data, &rep), 0);
    assert_int_equal(rep.rows, 12000);
    assert_int_equal(rep.cameras_created, 36000);
    ch_import_report_fini(&rep);
    assert_int_equal(count(f->st, "cameras"), 36000);
    ch_camera_t c;
    assert_int_equal(ch_store_camera_get(f->st, 36000, &c), 0);
    assert_string_equal(c.name, "road 11999 #3");
    assert_int_equal(c.source_line, 12001);
    ch_camera_fini(&c);
    ch_buf_fini(&b);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static void test_unreadable_files_are_rejected_without_change(void **state)
{
    fixture_t *f = *state;
    char path[320];
    snprintf(path, sizeof(path), "%s/a.csv", f->ts.dir);
    static const struct {
        const char *data;
        size_t len;
        const char *says;
    } cases[] = {
        {"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", 14, "xlsx"},
        {"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00\x00\x00", 12, "xls"},
        {"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 16, "binary"},
        {"name,value\nfoo,1\n", 17, "no recognizable header"},
        {"", 0, "empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, cases[i].data, cases[i].len);
        ch_import_report_t rep;
        int rc = import_file(f->st, path, NULL, &rep);
        assert_true(rc == CH_EUNSUPP || rc == CH_EPARSE);
        assert_false(rep.ok);
        if (strstr(rep.error, cases[i].says) == NULL) {
            fail_msg("case %zu: \"%s\" does not say %s", i, rep.error, cases[i].says);
        }
        ch_import_report_fini(&rep);
    }
    ch_import_report_t rep;
    assert_true(import_file(f->st, "/nonexistent/x.csv", NULL, &rep) < 0);
    assert_non_null(strstr(rep.error, "cannot read"));
    ch_import_report_fini(&rep);
    assert_int_equal(count(f->st, "cameras"), 0);
    assert_int_equal(count(f->st, "agencies"), 0);
}

static void test_agency_override_and_dry_run(void **state)
{
    fixture_t *f = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", CH_DATA_DIR,
             "seoul_ansimi_cctv_jongno_20221201_cp949.csv");
    ch_import_report_t rep;
    assert_int_equal(import_file(NULL, path, NULL, &rep), 0); /* no store: a dry run */
    assert_int_equal(rep.cameras, 1930);
    assert_int_equal(rep.cameras_created, 0);
    ch_import_report_fini(&rep);
    assert_int_equal(import_file(f->st, path, "종로구청", &rep), 0);
    assert_int_equal(rep.agencies_created, 1);
    ch_import_report_fini(&rep);
    ch_agency_t a;
    assert_int_equal(ch_store_agency_find_by_name(f->st, "종로구청", &a), 0);
    ch_agency_fini(&a);
    assert_int_equal(count(f->st, "agencies"), 1);
}

/* An import confined to one agency (a provider's): the override must name that agency; rows of
 * another agency, of an unknown one or on another agency's key are skipped with their codes, in
 * line order among the converter's own skips, and leave the counts and the flagged list. */
#define NO_HEADER                                                                                                                        \
    "관리번호,관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수," \
    "촬영방면정보,보관일수,설치연월,WGS84위도,WGS84경도\n"

static int import_scoped(ch_store_t *st, const char *text, const char *agency, int64_t own,
                         ch_import_report_t *rep)
{
    ch_import_options_t opt = {
        .agency = agency, .now_ms = NOW_MS, .scope = CH_IMPORT_OWN_AGENCY, .own_agency_id = own};
    ch_import_report_init(rep);
    return ch_registry_import_buffer(st, "scoped.csv", text, strlen(text), &opt, rep, NULL);
}

static void test_own_agency_scope_skips_and_reports(void **state)
{
    fixture_t *f = *state;
    ch_import_report_t rep;
    assert_int_equal(import_text(f->st,
                                 NO_HEADER "T-1,theirs,종로 1,,생활방범,2,200,,30,,37.57,126.98\n"
                                           "M-0,mine,종로 2,,생활방범,1,200,,30,,37.58,126.99\n",
                                 &rep),
                     0);
    ch_import_report_fini(&rep);
    ch_agency_t a;
    assert_int_equal(ch_store_agency_find_by_name(f->st, "mine", &a), 0);
    int64_t mine = a.id;
    ch_agency_fini(&a);
    const char *text = NO_HEADER "M-1,mine,종로 3,,생활방범,2,200,,30,,37.571,126.981\n"
                                 "X-1,theirs,종로 4,,생활방범,1,200,,30,,37.572,126.982\n"
                                 "X-9,mine,too few cells\n"
                                 "X-2,nobody,종로 5,,생활방범,1,200,,30,,,\n"
                                 "T-1,mine,종로 1,,생활방범,2,200,,30,,37.57,126.98\n"
                                 "M-2,mine,종로 6,,생활방범,1,200,,30,1900-01,37.573,126.983\n";
    assert_int_equal(import_scoped(f->st, text, NULL, mine, &rep), 0);
    assert_int_equal(rep.rows, 6);
    assert_int_equal(rep.sites, 2);
    assert_int_equal(rep.cameras, 3);
    assert_int_equal(rep.cameras_created, 3);
    assert_int_equal(rep.unlocated, 0);
    assert_int_equal(rep.agencies_created, 0);
    static const struct {
        int line;
        const char *code;
    } want[] = {{3, CH_IMPORT_SKIP_OTHER_AGENCY},
                {4, NULL},
                {5, CH_IMPORT_SKIP_UNKNOWN_AGENCY},
                {6, CH_IMPORT_SKIP_OTHER_AGENCY_RECORD}};
    assert_int_equal(rep.skipped_count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(rep.skipped[i].line, want[i].line);
        if (want[i].code == NULL) {
            assert_null(rep.skipped[i].code);
        } else {
            assert_string_equal(rep.skipped[i].code, want[i].code);
            assert_int_equal(strncmp(rep.skipped[i].reason, want[i].code, strlen(want[i].code)), 0);
        }
    }
    assert_int_equal(rep.flagged_count, 1); /* line 5's "unlocated" went with the row */
    assert_int_equal(rep.flagged[0].line, 7);
    json_t *j = ch_import_report_to_json(&rep);
    json_t *sk = json_array_get(json_object_get(j, "skipped"), 0);
    assert_string_equal(json_string_value(json_object_get(sk, "code")), "other-agency");
    assert_null(json_object_get(json_array_get(json_object_get(j, "skipped"), 1), "code"));
    json_decref(j);
    ch_import_report_fini(&rep);
    assert_int_equal(count(f->st, "agencies"), 2);
    assert_int_equal(count(f->st, "cameras"), 6);
    ch_camera_t c;
    assert_int_equal(ch_store_camera_get(f->st, 2, &c), 0); /* T-1#2: still theirs */
    assert_true(c.agency_id != mine);
    assert_true(c.located);
    ch_camera_fini(&c);

    /* The override: another agency, or one that does not exist, refuses the whole file. */
    assert_int_equal(import_scoped(f->st, text, "theirs", mine, &rep), CH_EPERM);
    assert_int_equal(rep.ok, 0);
    assert_non_null(strstr(rep.error, "another agency"));
    ch_import_report_fini(&rep);
    assert_int_equal(import_scoped(f->st, text, "nobody", mine, &rep), CH_EPERM);
    ch_import_report_fini(&rep);
    assert_int_equal(count(f->st, "agencies"), 2);
    /* Its own: every row is its own, but another agency's key stays refused. */
    assert_int_equal(import_scoped(f->st, text, "mine", mine, &rep), 0);
    assert_int_equal(rep.cameras_created, 2);
    assert_int_equal(rep.skipped_count, 2);
    assert_string_equal(rep.skipped[1].code, CH_IMPORT_SKIP_OTHER_AGENCY_RECORD);
    ch_import_report_fini(&rep);
    /* No agency at all (a provider without one) touches nothing. */
    assert_int_equal(import_scoped(f->st, text, NULL, 0, &rep), 0);
    assert_int_equal(rep.sites, 0);
    assert_int_equal(rep.skipped_count, 6);
    ch_import_report_fini(&rep);
    assert_int_equal(count(f->st, "cameras"), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_files_import_with_expected_counts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reimport_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_file_updates_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_city_level_agency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failing_file_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_store_failure_stops_the_conversion_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_files_are_rejected_without_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_agency_override_and_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_agency_scope_skips_and_reports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
