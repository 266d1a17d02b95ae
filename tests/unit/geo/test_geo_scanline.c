/*
 * Unit tests of the cheap point in polygon: the banded edges (ch_geo__poly_contains) and the
 * scanline per grid row (ch_geo__poly_row, and so ch_geo_coverage's cells inside) must answer
 * exactly what the straightforward even-odd test (ch_geo_polygon_contains: every edge of every
 * ring) answers, on concave polygons, combs, holes, vertices placed on cell centres and
 * degenerate polygons; the area query against every camera tested the straightforward way; the
 * size bounds of a coverage request; and an index shared with a running query staying
 * unchanged while its owner changes a private copy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo/geo_internal.h"

/* A small deterministic generator (xorshift64*), so a failure can be replayed. */
static uint64_t rng_state = 88172645463325252ULL;

static double rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* A polygon of up to 8 rings built point by point; each ring is closed by ring_close. */
typedef struct poly_builder {
    ch_geo_polygon_t p;
    size_t cap[8];
} poly_builder_t;

static void pb_init(poly_builder_t *b)
{
    memset(b, 0, sizeof(*b));
    b->p.rings = calloc(8, sizeof(ch_geo_ring_t));
}

static void pb_ring(poly_builder_t *b)
{
    assert_true(b->p.count < 8);
    b->p.count++;
}

static void pb_add(poly_builder_t *b, double lat, double lon)
{
    size_t r = b->p.count - 1;
    ch_geo_ring_t *ring = &b->p.rings[r];
    if (ring->count == b->cap[r]) {
        b->cap[r] = b->cap[r] ? 2 * b->cap[r] : 16;
        ring->pts = realloc(ring->pts, b->cap[r] * sizeof(ch_geo_point_t));
    }
    ring->pts[ring->count++] = (ch_geo_point_t){lat, lon};
}

static void pb_close(poly_builder_t *b)
{
    ch_geo_ring_t *ring = &b->p.rings[b->p.count - 1];
    pb_add(b, ring->pts[0].lat, ring->pts[0].lon);
}

static void pb_fini(poly_builder_t *b)
{
    for (size_t r = 0; r < b->p.count; r++) {
        free(b->p.rings[r].pts);
    }
    free(b->p.rings);
}

/* A star-shaped (so concave) ring of n points around (lat, lon), radii in [r0, r1] degrees. */
static void star_ring(poly_builder_t *b, double lat, double lon, size_t n, double r0, double r1,
                      int clockwise)
{
    pb_ring(b);
    for (size_t i = 0; i < n; i++) {
        double a = 2.0 * M_PI * (double)i / (double)n * (clockwise ? -1.0 : 1.0);
        double r = r0 + (r1 - r0) * rnd();
        pb_add(b, lat + r * sin(a), lon + r * cos(a));
    }
    pb_close(b);
}

/* An ellipse of n points, radii rlat and rlon degrees. */
static void ellipse_ring(poly_builder_t *b, double lat, double lon, size_t n, double rlat,
                         double rlon)
{
    pb_ring(b);
    for (size_t i = 0; i < n; i++) {
        double a = 2.0 * M_PI * (double)i / (double)n;
        pb_add(b, lat + rlat * sin(a), lon + rlon * cos(a));
    }
    pb_close(b);
}

/* Compares the scanline of a grid (rows x cols, centres at south/west + (k + 0.5) * step) and
 * the banded point test with the straightforward test at every centre. */
static void check_grid(const ch_geo_polygon_t *p, double south, double west, double dlat,
                       double dlon, size_t rows, size_t cols)
{
    geo_poly_t gp;
    ch_geo__poly_init(&gp, p);
    geo_row_scratch_t sc;
    memset(&sc, 0, sizeof(sc));
    uint8_t *row = malloc(cols);
    for (size_t r = 0; r < rows; r++) {
        double lat = south + ((double)r + 0.5) * dlat;
        memset(row, 0, cols);
        size_t marked = ch_geo__poly_row(&gp, &sc, lat, west, dlon, cols, row);
        size_t want_marked = 0;
        for (size_t c = 0; c < cols; c++) {
            double lon = west + ((double)c + 0.5) * dlon;
            int want = ch_geo_polygon_contains(p, lat, lon);
            want_marked += (size_t)want;
            if (row[c] != want || ch_geo__poly_contains(&gp, lat, lon, NULL) != want) {
                fail_msg("row %zu col %zu (%.12f, %.12f): reference %d, scanline %d, banded %d", r,
                         c, lat, lon, want, row[c], ch_geo__poly_contains(&gp, lat, lon, NULL));
            }
        }
        assert_int_equal(marked, want_marked);
    }
    free(row);
    ch_geo__row_scratch_fini(&sc);
    ch_geo__poly_fini(&gp);
}

/* The points that matter most: every vertex, midpoints of edges, and points just beside them. */
static void check_vertices(const ch_geo_polygon_t *p)
{
    geo_poly_t gp;
    ch_geo__poly_init(&gp, p);
    for (size_t r = 0; r < p->count; r++) {
        const ch_geo_ring_t *ring = &p->rings[r];
        /* Every vertex of small rings, about 300 of a large one (the reference is O(n)). */
        size_t step = ring->count / 300 + 1;
        for (size_t i = 0; i + 1 < ring->count; i += step) {
            const ch_geo_point_t *a = &ring->pts[i], *b = &ring->pts[i + 1];
            double pts[][2] = {{a->lat, a->lon},
                               {(a->lat + b->lat) / 2, (a->lon + b->lon) / 2},
                               {a->lat, nextafter(a->lon, 1e9)},
                               {a->lat, nextafter(a->lon, -1e9)},
                               {nextafter(a->lat, 1e9), a->lon},
                               {nextafter(a->lat, -1e9), a->lon}};
            for (size_t k = 0; k < CH_ARRAY_SIZE(pts); k++) {
                assert_int_equal(ch_geo__poly_contains(&gp, pts[k][0], pts[k][1], NULL),
                                 ch_geo_polygon_contains(p, pts[k][0], pts[k][1]));
            }
        }
    }
    ch_geo__poly_fini(&gp);
}

static void test_concave_polygons_agree_with_the_straightforward_test(void **state)
{
    (void)state;
    for (int round = 0; round < 40; round++) {
        poly_builder_t b;
        pb_init(&b);
        size_t n = 3 + (size_t)(rnd() * (round < 20 ? 30 : 600));
        star_ring(&b, 35.1, 129.0, n, 0.001, 0.01, round & 1);
        check_grid(&b.p, 35.088, 128.988, 0.0006 + 0.0003 * rnd(), 0.0006 + 0.0003 * rnd(), 45, 45);
        check_vertices(&b.p);
        pb_fini(&b);
    }
}

static void test_holes_agree_with_the_straightforward_test(void **state)
{
    (void)state;
    for (int round = 0; round < 6; round++) {
        poly_builder_t b;
        pb_init(&b);
        star_ring(&b, 35.1, 129.0, 200, 0.008, 0.01, 0);
        star_ring(&b, 35.1, 129.0, 50, 0.002, 0.004, 1);       /* a hole in the middle */
        star_ring(&b, 35.106, 129.0, 20, 0.0005, 0.001, 0);    /* a small one north */
        star_ring(&b, 35.1, 129.012, 20, 0.003, 0.004, round); /* one sticking out east */
        star_ring(&b, 35.1, 129.0005, 30, 0.0025, 0.0035, 0);  /* overlapping the first */
        check_grid(&b.p, 35.088, 128.985, 0.0003, 0.0003, 90, 110);
        check_vertices(&b.p);
        pb_fini(&b);
    }
}

/* A comb whose every tooth spans the whole height: every row crosses every tooth, the worst
 * case of the bands (they cannot split such edges) and of the crossings per row. */
static void test_comb_agrees_with_the_straightforward_test(void **state)
{
    (void)state;
    poly_builder_t b;
    pb_init(&b);
    pb_ring(&b);
    size_t teeth = 100;
    for (size_t i = 0; i < teeth; i++) {
        double x = 129.0 + 0.0001 * (double)i;
        pb_add(&b, 35.0, x);
        pb_add(&b, 35.05, x + 0.00005);
    }
    pb_add(&b, 34.99, 129.0 + 0.0001 * (double)teeth);
    pb_add(&b, 34.99, 129.0);
    pb_close(&b);
    check_grid(&b.p, 34.985, 128.999, 0.0011, 0.000013, 60, 850);
    check_vertices(&b.p);
    pb_fini(&b);
}

/* Vertices exactly on cell centres (and on the rows' latitudes), where a crossing ties with the
 * centre: the scanline must settle each tie as the straightforward test does. */
static void test_vertices_on_cell_centres(void **state)
{
    (void)state;
    double south = 37.5, west = 127.0, dlat = 0.0005, dlon = 0.0006;
    size_t rows = 40, cols = 40;
    for (int round = 0; round < 60; round++) {
        poly_builder_t b;
        pb_init(&b);
        pb_ring(&b);
        size_t n = 3 + (size_t)(rnd() * 25);
        for (size_t i = 0; i < n; i++) {
            size_t r = (size_t)(rnd() * (double)rows), c = (size_t)(rnd() * (double)cols);
            pb_add(&b, south + ((double)r + 0.5) * dlat, west + ((double)c + 0.5) * dlon);
        }
        pb_close(&b);
        check_grid(&b.p, south, west, dlat, dlon, rows, cols);
        check_vertices(&b.p);
        pb_fini(&b);
    }
    /* An axis-aligned square through centres: its west and south edges run through them. */
    poly_builder_t b;
    pb_init(&b);
    pb_ring(&b);
    double s = south + 5.5 * dlat, n = south + 30.5 * dlat;
    double w = west + 5.5 * dlon, e = west + 30.5 * dlon;
    pb_add(&b, s, w);
    pb_add(&b, s, e);
    pb_add(&b, n, e);
    pb_add(&b, n, w);
    pb_close(&b);
    check_grid(&b.p, south, west, dlat, dlon, rows, cols);
    pb_fini(&b);
}

static void test_degenerate_polygons_are_empty_or_agree(void **state)
{
    (void)state;
    double south = 35.0, west = 129.0, d = 0.001;
    /* Every point on one line (no area), a point repeated, a spike out and back. */
    const double cases[][5][2] = {
        {{35.01, 129.01}, {35.02, 129.02}, {35.03, 129.03}, {35.01, 129.01}, {0, 0}},
        {{35.01, 129.01}, {35.01, 129.01}, {35.01, 129.01}, {35.01, 129.01}, {0, 0}},
        {{35.01, 129.01}, {35.01, 129.03}, {35.01, 129.01}, {35.01, 129.01}, {0, 0}},
        {{35.01, 129.01}, {35.03, 129.01}, {35.01, 129.01}, {35.01, 129.01}, {0, 0}},
        {{35.005, 129.005}, {35.02, 129.02}, {35.005, 129.035}, {35.02, 129.02}, {35.005, 129.005}},
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(cases); k++) {
        poly_builder_t b;
        pb_init(&b);
        pb_ring(&b);
        for (size_t i = 0; i < 5 && cases[k][i][0] != 0; i++) {
            pb_add(&b, cases[k][i][0], cases[k][i][1]);
        }
        check_grid(&b.p, south, west, d, d, 40, 40);
        check_vertices(&b.p);
        /* Through the coverage query too: no cell inside, nothing crashes. */
        ch_geo_t *idx = ch_geo_new();
        ch_geo_coverage_t c;
        int rc = ch_geo_coverage(idx, &b.p, 5.0, NULL, &c);
        assert_int_equal(rc, 0);
        assert_int_equal(c.cells_inside, 0);
        ch_geo_coverage_fini(&c);
        ch_geo_free(idx);
        pb_fini(&b);
    }
}

/* The coverage query's cells inside and the area query's cameras, each against the
 * straightforward test. */
static void test_coverage_and_area_agree_with_the_straightforward_test(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    for (int64_t id = 1; id <= 3000; id++) {
        ch_geo_cam_t cam = {.id = id,
                            .agency_id = 1,
                            .lat_e7 = (int32_t)lround((35.085 + 0.03 * rnd()) * 1e7),
                            .lon_e7 = (int32_t)lround((128.985 + 0.03 * rnd()) * 1e7),
                            .heading_cdeg = UINT16_MAX,
                            .fov_cdeg = UINT16_MAX,
                            .range_dm = 500,
                            .kind = CH_GEO_KIND_UNKNOWN};
        assert_int_equal(ch_geo_upsert_cam(idx, &cam, NULL), 0);
    }
    for (int round = 0; round < 4; round++) {
        poly_builder_t b;
        pb_init(&b);
        star_ring(&b, 35.1, 129.0, 50 + 100 * (size_t)round, 0.004, 0.012, 0);
        if (round & 1) {
            star_ring(&b, 35.1, 129.0, 40, 0.001, 0.003, 1);
        }
        ch_geo_coverage_t c;
        assert_int_equal(ch_geo_coverage(idx, &b.p, 30.0, NULL, &c), 0);
        size_t inside = 0;
        for (size_t r = 0; r < c.rows; r++) {
            for (size_t col = 0; col < c.cols; col++) {
                int want = ch_geo_polygon_contains(&b.p, c.south + ((double)r + 0.5) * c.dlat,
                                                   c.west + ((double)col + 0.5) * c.dlon);
                assert_int_equal(c.inside[r * c.cols + col], want);
                inside += (size_t)want;
            }
        }
        assert_int_equal(c.cells_inside, inside);
        assert_true(inside > 0);
        ch_geo_coverage_fini(&c);

        ch_geo_results_t res;
        assert_int_equal(ch_geo_area(idx, &b.p, NULL, &res), 0);
        size_t k = 0;
        for (int64_t id = 1; id <= 3000; id++) {
            ch_geo_cam_t cam;
            assert_int_equal(ch_geo_get(idx, id, &cam), 0);
            if (ch_geo_polygon_contains(&b.p, cam.lat_e7 * 1e-7, cam.lon_e7 * 1e-7)) {
                assert_true(k < res.count);
                assert_int_equal(res.items[k].camera_id, id);
                k++;
            }
        }
        assert_int_equal(k, res.count);
        ch_geo_results_fini(&res);
        pb_fini(&b);
    }
    ch_geo_free(idx);
}

/* The bounds name their limit; a request just inside them is answered. */
static void test_coverage_bounds_vertices_times_rows(void **state)
{
    (void)state;
    poly_builder_t b;
    pb_init(&b);
    /* 9,999 positions on a circle of 2.2 km radius: 4.4 km at 5 m is 880 rows. */
    ellipse_ring(&b, 37.5, 127.0, 9998, 0.02, 0.02);
    char err[200];
    assert_int_equal(ch_geo_coverage_check(&b.p, 5.0, err, sizeof(err)), 0);
    ch_geo_t *idx = ch_geo_new();
    ch_geo_coverage_t c;
    assert_int_equal(ch_geo_coverage(idx, &b.p, 5.0, NULL, &c), 0);
    assert_true(c.cells_inside > 400000);
    ch_geo_coverage_fini(&c);
    pb_fini(&b);
    /* The same positions on a tall thin ellipse, 1,200 rows of 10 m (few cells): over
     * positions x rows. */
    pb_init(&b);
    ellipse_ring(&b, 37.5, 127.0, 9998, 0.054, 0.005);
    assert_int_equal(ch_geo_coverage_check(&b.p, 10.0, err, sizeof(err)), CH_ETOOBIG);
    assert_non_null(strstr(err, "10000000"));
    assert_non_null(strstr(err, "9999 positions"));
    assert_int_equal(ch_geo_coverage(idx, &b.p, 10.0, NULL, &c), CH_ETOOBIG);
    assert_int_equal(ch_geo_coverage_check(&b.p, 2.0, err, sizeof(err)), CH_EINVAL);
    assert_non_null(strstr(err, "cell_m"));
    pb_fini(&b);
    /* Over the cells: 12 km square at 5 m. */
    pb_init(&b);
    ellipse_ring(&b, 37.5, 127.0, 100, 0.054, 0.068);
    assert_int_equal(ch_geo_coverage_check(&b.p, 5.0, err, sizeof(err)), CH_ETOOBIG);
    assert_non_null(strstr(err, "1000000"));
    pb_fini(&b);
    ch_geo_free(idx);
}

/* A comb of 10,000 positions whose every edge spans the box over 5,000 cameras would need 50
 * million edge tests: refused, not worked on. */
static void test_area_refuses_a_polygon_too_complex_for_its_cameras(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    for (int64_t id = 1; id <= 5000; id++) {
        ch_geo_cam_t cam = {.id = id,
                            .agency_id = 1,
                            .lat_e7 = (int32_t)lround((35.0 + 0.05 * rnd()) * 1e7),
                            .lon_e7 = (int32_t)lround((129.0 + 0.5 * rnd()) * 1e7),
                            .heading_cdeg = UINT16_MAX,
                            .fov_cdeg = UINT16_MAX,
                            .range_dm = 500};
        assert_int_equal(ch_geo_upsert_cam(idx, &cam, NULL), 0);
    }
    poly_builder_t b;
    pb_init(&b);
    pb_ring(&b);
    for (size_t i = 0; i < 4999; i++) {
        double x = 129.0 + 0.0001 * (double)i;
        pb_add(&b, 35.0, x);
        pb_add(&b, 35.05, x + 0.00005);
    }
    pb_add(&b, 34.99, 129.5);
    pb_close(&b);
    ch_geo_results_t res;
    assert_int_equal(ch_geo_area(idx, &b.p, NULL, &res), CH_ETOOBIG);
    assert_null(res.items);
    pb_fini(&b);
    ch_geo_free(idx);
}

/* A reader's reference keeps the index it took unchanged; the owner changes a private copy. */
static void test_a_shared_index_is_copied_before_it_changes(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    ch_geo_cam_t cam = {.id = 7,
                        .agency_id = 3,
                        .lat_e7 = 351000000,
                        .lon_e7 = 1290000000,
                        .heading_cdeg = UINT16_MAX,
                        .fov_cdeg = UINT16_MAX,
                        .range_dm = 500};
    assert_int_equal(ch_geo_upsert_cam(idx, &cam, "방범"), 0);
    assert_ptr_equal(ch_geo_unshare(idx), idx); /* sole owner: no copy */
    ch_geo_t *reader = ch_geo_ref(idx);
    ch_geo_t *own = ch_geo_unshare(idx);
    assert_ptr_not_equal(own, reader);
    cam.lat_e7 += 100000; /* moves 1 km north: another cell */
    assert_int_equal(ch_geo_upsert_cam(own, &cam, "교통"), 0);
    cam.id = 8;
    assert_int_equal(ch_geo_upsert_cam(own, &cam, NULL), 0);
    ch_geo_cam_t got;
    assert_int_equal(ch_geo_get(reader, 7, &got), 0);
    assert_int_equal(got.lat_e7, 351000000);
    assert_string_equal(ch_geo_purpose_of(reader, 7), "방범");
    assert_int_equal(ch_geo_get(reader, 8, &got), CH_ENOTFOUND);
    assert_int_equal(ch_geo_count(reader), 1);
    assert_int_equal(ch_geo_get(own, 7, &got), 0);
    assert_int_equal(got.lat_e7, 351100000);
    assert_string_equal(ch_geo_purpose_of(own, 7), "교통");
    assert_int_equal(ch_geo_count(own), 2);
    ch_geo_free(reader); /* the last reference to the old one */
    assert_int_equal(ch_geo_remove(own, 8), 0);
    ch_geo_free(own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concave_polygons_agree_with_the_straightforward_test),
        cmocka_unit_test(test_holes_agree_with_the_straightforward_test),
        cmocka_unit_test(test_comb_agrees_with_the_straightforward_test),
        cmocka_unit_test(test_vertices_on_cell_centres),
        cmocka_unit_test(test_degenerate_polygons_are_empty_or_agree),
        cmocka_unit_test(test_coverage_and_area_agree_with_the_straightforward_test),
        cmocka_unit_test(test_coverage_bounds_vertices_times_rows),
        cmocka_unit_test(test_area_refuses_a_polygon_too_complex_for_its_cameras),
        cmocka_unit_test(test_a_shared_index_is_copied_before_it_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
