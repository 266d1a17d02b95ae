/*
 * Unit tests of the import on the record (ch_registry_import_recorded): "import.start" before
 * the import and "import" with its outcome after, nothing imported when the first record
 * cannot be written, and the metrics collector's count of cameras by status.
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
#include <string.h>
#include <unistd.h>

#define CSV                                                                                                                              \
    "관리번호,관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수," \
    "촬영방면정보,보관일수,설치연월,WGS84위도,WGS84경도\n"                                                             \
    "M-1,mine,종로 3,,생활방범,2,200,,30,,37.571,126.981\n"

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;
} fixture_t;

/* What the recorder saw; fail_at: the record (1-based) to refuse, or 0. */
typedef struct seen {
    int n;
    int fail_at;
    char actions[4][32];
    char outcomes[4][16];
    char objects[4][64];
    json_t *details[4];
} seen_t;

static int record(void *data, const char *action, const char *object, const char *outcome,
                  json_t *details)
{
    seen_t *s = data;
    int i = s->n++;
    if (s->fail_at == s->n) {
        json_decref(details);
        return CH_EIO;
    }
    snprintf(s->actions[i], sizeof(s->actions[i]), "%s", action);
    snprintf(s->outcomes[i], sizeof(s->outcomes[i]), "%s", outcome);
    snprintf(s->objects[i], sizeof(s->objects[i]), "%s", object);
    s->details[i] = details;
    return 0;
}

static void seen_fini(seen_t *s)
{
    for (int i = 0; i < 4; i++) {
        json_decref(s->details[i]);
    }
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (ch_test_store_open(&f->ts, "ch_registry_rec", &f->st) != 0) {
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

static void test_import_is_announced_then_its_result_recorded(void **state)
{
    fixture_t *f = *state;
    seen_t s = {0};
    ch_registry_recorder_t rec = {record, &s};
    ch_registry_import_req_t req = {.label = "up.csv", .data = CSV, .len = strlen(CSV)};
    ch_import_report_t rep;
    ch_import_report_init(&rep);
    char *err = NULL;
    ch_fault_t fault;
    assert_int_equal(ch_registry_import_recorded(f->st, &req, &rec, &rep, &err, &fault), 0);
    assert_int_equal(rep.cameras_created, 2);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.actions[0], "import.start");
    assert_string_equal(s.objects[0], "import:up.csv");
    assert_string_equal(json_string_value(json_object_get(s.details[0], "file")), "up.csv");
    assert_int_equal(json_integer_value(json_object_get(s.details[0], "bytes")), strlen(CSV));
    assert_string_equal(s.actions[1], "import");
    assert_string_equal(s.outcomes[1], "ok");
    assert_int_equal(json_integer_value(json_object_get(s.details[1], "cameras_created")), 2);
    ch_import_report_fini(&rep);
    seen_fini(&s);
}

static void test_nothing_is_imported_when_the_start_cannot_be_recorded(void **state)
{
    fixture_t *f = *state;
    seen_t s = {.fail_at = 1};
    ch_registry_recorder_t rec = {record, &s};
    ch_registry_import_req_t req = {.label = "up.csv", .data = CSV, .len = strlen(CSV)};
    ch_import_report_t rep;
    ch_import_report_init(&rep);
    ch_fault_t fault;
    assert_int_equal(ch_registry_import_recorded(f->st, &req, &rec, &rep, NULL, &fault), CH_EIO);
    assert_int_equal(fault.kind, CH_FAULT_AUDIT);
    assert_string_equal(fault.rule, "start");
    ch_camera_list_t l = {0};
    ch_store_filter_t flt = {.limit = 1};
    assert_int_equal(ch_store_camera_list(f->st, &flt, &l), 0);
    assert_int_equal(l.total, 0);
    ch_camera_list_free(&l);
    ch_import_report_fini(&rep);
    seen_fini(&s);
}

static void test_a_rejected_file_is_recorded_as_an_error(void **state)
{
    fixture_t *f = *state;
    seen_t s = {0};
    ch_registry_recorder_t rec = {record, &s};
    ch_registry_import_req_t req = {.label = "missing.csv", .path = "/nonexistent/missing.csv"};
    ch_import_report_t rep;
    ch_import_report_init(&rep);
    char *err = NULL;
    ch_fault_t fault;
    assert_int_not_equal(ch_registry_import_recorded(f->st, &req, &rec, &rep, &err, &fault), 0);
    assert_string_equal(fault.rule, "import");
    assert_int_equal(s.n, 2);
    assert_null(json_object_get(s.details[0], "bytes"));
    assert_string_equal(s.outcomes[1], "error");
    ch_free(err);
    ch_import_report_fini(&rep);
    seen_fini(&s);
}

static void test_collector_counts_cameras_by_status(void **state)
{
    fixture_t *f = *state;
    ch_registry_import_req_t req = {.label = "up.csv", .data = CSV, .len = strlen(CSV)};
    ch_import_report_t rep;
    ch_import_report_init(&rep);
    assert_int_equal(ch_registry_import_recorded(f->st, &req, NULL, &rep, NULL, NULL), 0);
    ch_import_report_fini(&rep);
    ch_metrics_t *m = ch_metrics_new();
    assert_int_equal(ch_metrics_register(m, ch_registry_collect, f->st), 0);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "cctvhub_cameras_registered{status=\"active\"} 2\n"));
    ch_buf_fini(&b);
    ch_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_is_announced_then_its_result_recorded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nothing_is_imported_when_the_start_cannot_be_recorded,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_rejected_file_is_recorded_as_an_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_collector_counts_cameras_by_status, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
