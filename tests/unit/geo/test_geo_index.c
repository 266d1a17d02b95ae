/*
 * Unit tests of the geo index and the near query: a brute-force oracle over random cameras and
 * points must agree exactly with the index (set, order and every field), through upserts, moves
 * and removals, with filters, near the poles and across the antimeridian; plus the edge cases
 * of the issue (duplicate positions, unlocated cameras, the range border) and loading from a
 * real store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "geo/geo.h"

/* A deterministic generator, so that a failure reproduces. */
static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double urand(double lo, double hi)
{
    return lo + (hi - lo) * (double)(rng() >> 11) / 9007199254740992.0;
}

static const char *const kinds[] = {"fixed", "ptz", "unknown"};
static const char *const statuses[] = {"active", "active", "active", "inactive", "maintenance"};
static const char *const purposes[] = {"생활방범", "어린이보호", "교통단속", "다목적"};

/* A random camera around (lat0, lon0) within `spread` degrees, with every mix of known and
 * unknown heading, fov, range and pixels. */
static void random_camera(ch_camera_t *c, int64_t id, double lat0, double lon0, double spread)
{
    ch_camera_init(c);
    c->id = id;
    c->agency_id = 1 + (int64_t)(rng() % 3);
    c->located = 1;
    c->lat = lat0 + urand(-spread, spread);
    c->lon = lon0 + urand(-spread, spread);
    if (c->lat > 90.0) {
        c->lat = 90.0;
    }
    if (c->lat < -90.0) {
        c->lat = -90.0;
    }
    if (c->lon > 180.0) {
        c->lon -= 360.0;
    }
    if (c->lon < -180.0) {
        c->lon += 360.0;
    }
    c->kind = (char *)kinds[rng() % 3];
    c->status = (char *)statuses[rng() % 5];
    c->purpose = (char *)purposes[rng() % 4];
    if (rng() % 2) {
        c->heading_deg = (double)(rng() % 3600) / 10.0;
    }
    switch (rng() % 4) {
    case 0:
        c->fov_deg = 360.0;
        break;
    case 1:
        c->fov_deg = 10.0 + (double)(rng() % 120);
        break;
    default:
        break;
    }
    if (rng() % 3 == 0) {
        c->range_m = 5.0 + (double)(rng() % 2000) / 10.0;
    }
    static const int64_t px[] = {0, 410000, 1300000, 2000000, 5000000};
    c->pixels = px[rng() % 5];
}

typedef struct world {
    ch_camera_t *cams;
    int *live;
    size_t n;
} world_t;

/* The oracle: every live camera through ch_geo_evaluate, filtered, sorted, cut to limit. */
static void oracle_near(const world_t *w, double lat, double lon, double radius, size_t limit,
                        const ch_geo_filter_t *f, ch_geo_results_t *out)
{
    out->items = ch_calloc(w->n + 1, sizeof(ch_geo_result_t));
    out->count = 0;
    for (size_t i = 0; i < w->n; i++) {
        ch_geo_cam_t cam;
        if (!w->live[i] || ch_geo_cam_from_camera(&w->cams[i], &cam) != 0) {
            continue;
        }
        const ch_camera_t *c = &w->cams[i];
        if (f != NULL) {
            if (f->purpose != NULL && strcmp(f->purpose, c->purpose) != 0) {
                continue;
            }
            if (f->agency_id != 0 && f->agency_id != c->agency_id) {
                continue;
            }
            if (f->has_kind && cam.kind != f->kind) {
                continue;
            }
            if (f->has_status && cam.status != f->status) {
                continue;
            }
            if (f->exclude_offline && cam.status != CH_GEO_STATUS_ACTIVE) {
                continue;
            }
        }
        ch_geo_result_t r;
        if (ch_geo_evaluate(&cam, lat, lon, &r) == CH_GEO_VIS_NONE || r.distance_m > radius) {
            continue;
        }
        out->items[out->count++] = r;
    }
    /* Insertion sort: the oracle should be obviously right, not fast. */
    for (size_t i = 1; i < out->count; i++) {
        ch_geo_result_t x = out->items[i];
        size_t j = i;
        while (j > 0 && ch_geo_result_cmp(&x, &out->items[j - 1]) < 0) {
            out->items[j] = out->items[j - 1];
            j--;
        }
        out->items[j] = x;
    }
    if (out->count > limit) {
        out->count = limit;
    }
}

static void assert_same(const ch_geo_results_t *a, const ch_geo_results_t *b)
{
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const ch_geo_result_t *x = &a->items[i], *y = &b->items[i];
        assert_int_equal(x->camera_id, y->camera_id);
        assert_true(x->score == y->score);
        assert_true(x->distance_m == y->distance_m);
        assert_true(x->bearing_deg == y->bearing_deg);
        assert_true(x->pan_deg == y->pan_deg);
        assert_int_equal(x->visibility, y->visibility);
    }
}

static void check_queries(ch_geo_t *idx, const world_t *w, double lat0, double lon0, double spread,
                          int nq, const ch_geo_filter_t *f, size_t *nonempty)
{
    for (int q = 0; q < nq; q++) {
        double lat = lat0 + urand(-spread, spread), lon = lon0 + urand(-spread, spread);
        lat = fmax(-90.0, fmin(90.0, lat));
        lon = lon > 180.0 ? lon - 360.0 : (lon < -180.0 ? lon + 360.0 : lon);
        double radius = urand(20.0, 400.0);
        size_t limit = 1 + rng() % 30;
        ch_geo_results_t got, want;
        assert_int_equal(ch_geo_near(idx, lat, lon, radius, limit, f, &got), 0);
        oracle_near(w, lat, lon, radius, limit, f, &want);
        assert_same(&got, &want);
        *nonempty += got.count > 0;
        ch_geo_results_fini(&got);
        ch_geo_results_fini(&want);
    }
}

static void build_world(world_t *w, ch_geo_t *idx, size_t n, double lat0, double lon0,
                        double spread)
{
    w->n = n;
    w->cams = ch_calloc(n, sizeof(ch_camera_t));
    w->live = ch_calloc(n, sizeof(int));
    for (size_t i = 0; i < n; i++) {
        random_camera(&w->cams[i], (int64_t)i + 1, lat0, lon0, spread);
        /* Some share an exact position with an earlier camera. */
        if (i > 0 && rng() % 10 == 0) {
            w->cams[i].lat = w->cams[i - 1].lat;
            w->cams[i].lon = w->cams[i - 1].lon;
        }
        /* Some are unlocated: they must never come back. */
        if (rng() % 20 == 0) {
            w->cams[i].located = 0;
            w->cams[i].lat = w->cams[i].lon = 0.0;
            w->cams[i].status = "unlocated";
        }
        w->live[i] = 1;
        assert_int_equal(ch_geo_upsert(idx, &w->cams[i]), 0);
    }
}

static void free_world(world_t *w)
{
    ch_free(w->cams);
    ch_free(w->live);
}

static void test_near_agrees_with_brute_force_oracle(void **state)
{
    (void)state;
    rng_state = 0x1234567;
    ch_geo_t *idx = ch_geo_new();
    world_t w;
    build_world(&w, idx, 4000, 37.5665, 126.9780, 0.02);
    size_t nonempty = 0;
    check_queries(idx, &w, 37.5665, 126.9780, 0.02, 1500, NULL, &nonempty);
    assert_true(nonempty > 1000); /* the test must exercise real answers */
    free_world(&w);
    ch_geo_free(idx);
}

static void test_near_filters_agree_with_oracle(void **state)
{
    (void)state;
    rng_state = 0xabcdef;
    ch_geo_t *idx = ch_geo_new();
    world_t w;
    build_world(&w, idx, 3000, 35.1796, 129.0756, 0.015);
    ch_geo_filter_t filters[6];
    memset(filters, 0, sizeof(filters));
    filters[0].purpose = "어린이보호";
    filters[1].agency_id = 2;
    filters[2].has_kind = 1;
    filters[2].kind = CH_GEO_KIND_PTZ;
    filters[3].has_status = 1;
    filters[3].status = CH_GEO_STATUS_MAINTENANCE;
    filters[4].exclude_offline = 1;
    filters[5].purpose = "no such purpose";
    for (size_t i = 0; i < CH_ARRAY_SIZE(filters); i++) {
        size_t nonempty = 0;
        check_queries(idx, &w, 35.1796, 129.0756, 0.015, 300, &filters[i], &nonempty);
        assert_true(i == 5 ? nonempty == 0 : nonempty > 50);
    }
    free_world(&w);
    ch_geo_free(idx);
}

static void test_upsert_and_remove_follow_changes(void **state)
{
    (void)state;
    rng_state = 0x5151;
    ch_geo_t *idx = ch_geo_new();
    world_t w;
    build_world(&w, idx, 2000, 36.3504, 127.3845, 0.01);
    for (int round = 0; round < 2000; round++) {
        size_t i = rng() % w.n;
        switch (rng() % 4) {
        case 0: /* removed */
            w.live[i] = 0;
            (void)ch_geo_remove(idx, w.cams[i].id);
            break;
        case 1: /* moved far (another cell) or near (the same cell) */
            w.cams[i].located = 1;
            w.cams[i].status = "active";
            w.cams[i].lat = 36.3504 + urand(-0.01, 0.01);
            w.cams[i].lon = 127.3845 + urand(-0.01, 0.01);
            w.live[i] = 1;
            assert_int_equal(ch_geo_upsert(idx, &w.cams[i]), 0);
            break;
        case 2: /* turned, re-statused */
            w.cams[i].heading_deg = (double)(rng() % 360);
            w.cams[i].status = (char *)statuses[rng() % 5];
            w.live[i] = 1;
            assert_int_equal(ch_geo_upsert(idx, &w.cams[i]), 0);
            break;
        default: /* became unlocated: an upsert removes it */
            w.cams[i].located = 0;
            w.live[i] = 1;
            assert_int_equal(ch_geo_upsert(idx, &w.cams[i]), 0);
            ch_geo_cam_t cam;
            assert_int_equal(ch_geo_get(idx, w.cams[i].id, &cam), CH_ENOTFOUND);
            break;
        }
        if (round % 100 == 0) {
            size_t nonempty = 0;
            check_queries(idx, &w, 36.3504, 127.3845, 0.01, 40, NULL, &nonempty);
        }
    }
    size_t expect = 0;
    for (size_t i = 0; i < w.n; i++) {
        ch_geo_cam_t cam;
        int in = w.live[i] && w.cams[i].located;
        expect += in;
        assert_int_equal(ch_geo_get(idx, w.cams[i].id, &cam), in ? 0 : CH_ENOTFOUND);
    }
    assert_int_equal(ch_geo_count(idx), expect);
    size_t nonempty = 0;
    check_queries(idx, &w, 36.3504, 127.3845, 0.01, 300, NULL, &nonempty);
    assert_int_equal(ch_geo_remove(idx, 999999), CH_ENOTFOUND);
    free_world(&w);
    ch_geo_free(idx);
}

static void test_poles_and_antimeridian_agree_with_oracle(void **state)
{
    (void)state;
    static const double places[][2] = {{89.999, 0.0},  {-89.999, 45.0},    {90.0, 180.0},
                                       {0.0, 179.999}, {-33.0, -179.9995}, {65.0, 180.0},
                                       {-90.0, -180.0}};
    for (size_t p = 0; p < CH_ARRAY_SIZE(places); p++) {
        rng_state = 0x77 + p;
        ch_geo_t *idx = ch_geo_new();
        world_t w;
        build_world(&w, idx, 800, places[p][0], places[p][1], 0.003);
        size_t nonempty = 0;
        check_queries(idx, &w, places[p][0], places[p][1], 0.003, 200, NULL, &nonempty);
        assert_true(nonempty > 20);
        ch_geo_results_t r;
        assert_int_equal(ch_geo_near(idx, places[p][0], places[p][1], 10000.0, 1000, NULL, &r), 0);
        ch_geo_results_fini(&r);
        free_world(&w);
        ch_geo_free(idx);
    }
}

static void test_unlocated_cameras_are_never_returned(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    ch_camera_t c;
    ch_camera_init(&c);
    c.id = 7;
    c.agency_id = 1;
    c.kind = "ptz";
    c.status = "unlocated";
    c.located = 0;
    assert_int_equal(ch_geo_upsert(idx, &c), 0);
    assert_int_equal(ch_geo_count(idx), 0);
    ch_geo_results_t r;
    assert_int_equal(ch_geo_near(idx, 0.0, 0.0, 1000.0, 10, NULL, &r), 0);
    assert_int_equal(r.count, 0);
    /* A "located" camera with an impossible position is refused and not indexed. */
    c.located = 1;
    c.lat = 123.0;
    assert_int_equal(ch_geo_upsert(idx, &c), CH_EINVAL);
    c.lat = NAN;
    assert_int_equal(ch_geo_upsert(idx, &c), CH_EINVAL);
    assert_int_equal(ch_geo_count(idx), 0);
    ch_geo_free(idx);
}

static void test_duplicate_positions_tie_break_by_id(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    for (int64_t id = 10; id >= 1; id--) {
        ch_camera_t c;
        ch_camera_init(&c);
        c.id = id;
        c.agency_id = 1;
        c.located = 1;
        c.lat = 37.5;
        c.lon = 127.0;
        c.kind = "fixed";
        c.status = "active";
        assert_int_equal(ch_geo_upsert(idx, &c), 0);
    }
    ch_geo_results_t r;
    assert_int_equal(ch_geo_near(idx, 37.5001, 127.0, 300.0, 4, NULL, &r), 0);
    assert_int_equal(r.count, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(r.items[i].camera_id, (int64_t)i + 1);
        assert_int_equal(r.items[i].visibility, CH_GEO_VIS_HEADING_UNKNOWN);
    }
    ch_geo_results_fini(&r);
    ch_geo_free(idx);
}

static void test_bad_near_arguments_are_refused(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    ch_geo_results_t r;
    assert_int_equal(ch_geo_near(idx, 91.0, 0.0, 100.0, 10, NULL, &r), CH_EINVAL);
    assert_int_equal(ch_geo_near(idx, 0.0, 181.0, 100.0, 10, NULL, &r), CH_EINVAL);
    assert_int_equal(ch_geo_near(idx, 0.0, 0.0, 0.0, 10, NULL, &r), CH_EINVAL);
    assert_int_equal(ch_geo_near(idx, 0.0, 0.0, NAN, 10, NULL, &r), CH_EINVAL);
    assert_int_equal(ch_geo_near(idx, 0.0, 0.0, 20000.0, 10, NULL, &r), CH_EINVAL);
    assert_int_equal(ch_geo_near(idx, 0.0, 0.0, 100.0, 5000, NULL, &r), CH_EINVAL);
    ch_geo_free(idx);
}

/* The store's own pages: 2,500 cameras (more than two pages of 1000) and some unlocated. */
static void test_load_pages_through_the_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/ch_geo_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/store.db", dir);
    ch_store_t *st = NULL;
    char *err = NULL;
    assert_int_equal(ch_store_open(url, &st, &err), 0);
    ch_agency_t a;
    memset(&a, 0, sizeof(a));
    a.name = "중구청";
    a.kind = "provider";
    a.level = "district";
    a.type = "district-center";
    assert_int_equal(ch_store_agency_create(st, &a), 0);
    assert_int_equal(ch_store_begin(st), 0);
    rng_state = 0x99;
    size_t located = 0;
    for (int i = 0; i < 2500; i++) {
        ch_camera_t c;
        random_camera(&c, 0, 35.10, 129.03, 0.01);
        c.id = 0;
        c.agency_id = a.id;
        c.name = "cam";
        if (i % 7 == 0) {
            c.located = 0;
            c.lat = c.lon = 0.0;
            c.status = "unlocated";
        }
        located += c.located;
        assert_int_equal(ch_store_camera_create(st, &c), 0);
    }
    assert_int_equal(ch_store_commit(st), 0);
    ch_geo_t *idx = ch_geo_new();
    assert_int_equal(ch_geo_load(idx, st), 0);
    assert_int_equal(ch_geo_count(idx), located);
    ch_geo_free(idx);
    ch_store_close(st);
    char p[160];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/store.db%s", dir, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_near_agrees_with_brute_force_oracle),
        cmocka_unit_test(test_near_filters_agree_with_oracle),
        cmocka_unit_test(test_upsert_and_remove_follow_changes),
        cmocka_unit_test(test_poles_and_antimeridian_agree_with_oracle),
        cmocka_unit_test(test_unlocated_cameras_are_never_returned),
        cmocka_unit_test(test_duplicate_positions_tie_break_by_id),
        cmocka_unit_test(test_bad_near_arguments_are_refused),
        cmocka_unit_test(test_load_pages_through_the_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
