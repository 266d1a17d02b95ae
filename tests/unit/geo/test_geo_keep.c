/*
 * The keeper (geo.h, geo_keep.c) on a real loop and a temporary SQLite store: the index follows
 * cameras told one by one, and a reload on the pool keeps the changes told while it ran (they
 * are replayed onto the index it brings, in order), so nothing told is lost and nothing is read
 * again on the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "geo/geo.h"
#include "support/fixture.h"

#include <uv.h>

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;
    int64_t agency;
    char url[320];
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = test_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "geo_keep", &fx->st) != 0) {
        test_free(fx);
        return -1;
    }
    fx->agency = ch_test_store_agency(fx->st, "종로구", "provider");
    snprintf(fx->url, sizeof(fx->url), "sqlite:%s", fx->ts.path);
    *state = fx;
    return fx->agency > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    int rc = ch_test_store_close(&fx->ts, fx->st);
    test_free(fx);
    return rc;
}

/* A located, active camera at (lat, lon), not stored. */
static void camera_at(ch_camera_t *c, int64_t agency, double lat, double lon)
{
    ch_camera_init(c);
    c->agency_id = agency;
    c->name = "cam";
    c->kind = "fixed";
    c->status = "active";
    c->located = 1;
    c->lat = lat;
    c->lon = lon;
}

static int64_t stored_camera(fixture_t *fx, double lat, double lon)
{
    ch_camera_t c;
    camera_at(&c, fx->agency, lat, lon);
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    return c.id;
}

static void reloaded(void *ud)
{
    (*(int *)ud)++;
}

static int placed(ch_geo_keeper_t *k, int64_t id)
{
    ch_geo_cam_t cam;
    return ch_geo_get(*ch_geo_keeper_slot(k), id, &cam) == 0;
}

static void test_changes_told_during_a_reload_are_replayed_onto_its_index(void **state)
{
    fixture_t *fx = *state;
    int64_t kept = stored_camera(fx, 37.57, 126.98);
    int64_t gone = stored_camera(fx, 37.58, 126.99);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ch_geo_keeper_t *k = NULL;
    assert_int_equal(ch_geo_keeper_new(&loop, fx->st, fx->url, &k), 0);
    assert_true(placed(k, kept) && placed(k, gone));

    int done = 0;
    ch_geo_keeper_reload(k, reloaded, &done);
    /* While the pool reads every camera: a camera told with a record the store does not hold
     * (only the replay can bring it into the pool's index), one deleted, one moved. */
    ch_camera_t extra;
    camera_at(&extra, fx->agency, 37.50, 127.00);
    extra.id = 999999;
    ch_geo_keeper_camera(k, extra.id, &extra);
    assert_int_equal(ch_store_camera_delete(fx->st, gone), 0);
    ch_geo_keeper_camera(k, gone, NULL);
    ch_camera_t moved;
    camera_at(&moved, fx->agency, 37.40, 127.10);
    moved.id = kept;
    ch_geo_keeper_camera(k, kept, &moved);
    while (done == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_true(placed(k, extra.id));
    assert_false(placed(k, gone));
    ch_geo_cam_t got;
    assert_int_equal(ch_geo_get(*ch_geo_keeper_slot(k), kept, &got), 0);
    assert_true(got.lat_e7 >= 373999999 && got.lat_e7 <= 374000001); /* where it was told */
    assert_true(got.lon_e7 >= 1270999999 && got.lon_e7 <= 1271000001);

    /* A reload with nothing told meanwhile brings the store as it is: the camera only told is
     * not there. */
    ch_geo_keeper_reload(k, reloaded, &done);
    while (done == 1) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_false(placed(k, extra.id));
    assert_true(placed(k, kept));

    ch_geo_keeper_free(k);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_changes_told_during_a_reload_are_replayed_onto_its_index, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
