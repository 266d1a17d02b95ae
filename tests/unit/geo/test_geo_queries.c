/*
 * Unit tests of the path, area and coverage queries on hand-made cases with known answers, the
 * strict GeoJSON parsers (each error names what is wrong) and the JSON the routes send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "geo/geo.h"

/* A local frame for building cases: metres east/north of an origin in Busan. */
#define LAT0          35.1
#define LON0          129.0
#define M_PER_DEG_LAT 110950.0 /* close enough for placing cases; the model measures */

static double lat_at(double north_m)
{
    return LAT0 + north_m / M_PER_DEG_LAT;
}

static double lon_at(double east_m)
{
    return LON0 + east_m / (M_PER_DEG_LAT * cos(LAT0 * M_PI / 180.0));
}

static void add_cam(ch_geo_t *idx, int64_t id, double east, double north, const char *kind,
                    double heading, double fov, double range)
{
    ch_camera_t c;
    ch_camera_init(&c);
    c.id = id;
    c.agency_id = 1;
    c.located = 1;
    c.lat = lat_at(north);
    c.lon = lon_at(east);
    c.kind = (char *)kind;
    c.status = "active";
    c.heading_deg = heading;
    c.fov_deg = fov;
    c.range_m = range;
    assert_int_equal(ch_geo_upsert(idx, &c), 0);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_path_orders_cameras_along_it_with_their_stretch(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    add_cam(idx, 1, 300.0, 10.0, "fixed", 180.0, 90.0, 40.0); /* looks south onto x 290..310 */
    add_cam(idx, 2, 100.0, 20.0, "ptz", -1.0, 360.0, 50.0);   /* all round, x 54.2..145.8 */
    add_cam(idx, 3, 200.0, 500.0, "ptz", -1.0, 360.0, 50.0);  /* too far from the path */
    add_cam(idx, 4, 400.0, 10.0, "fixed", 0.0, 90.0, 40.0);   /* looks away, north */
    ch_geo_line_t line;
    ch_geo_point_t pts[] = {
        {lat_at(0), lon_at(0)}, {lat_at(0), lon_at(250)}, {lat_at(0), lon_at(500)}};
    line.pts = pts;
    line.count = 3;
    ch_geo_results_t r;
    assert_int_equal(ch_geo_path(idx, &line, 300.0, NULL, &r), 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.items[0].camera_id, 2);
    assert_true(r.items[0].from_m > 53.0 && r.items[0].from_m < 61.0);
    assert_true(r.items[0].to_m > 140.0 && r.items[0].to_m < 147.0);
    assert_true(fabs(r.items[0].distance_m - 20.0) < 0.5); /* best point: straight below */
    assert_int_equal(r.items[1].camera_id, 1);
    assert_true(r.items[1].from_m > 288.0 && r.items[1].from_m < 296.0);
    assert_true(r.items[1].to_m > 304.0 && r.items[1].to_m < 312.0);
    assert_int_equal(r.items[1].visibility, CH_GEO_VIS_IN_FOV);
    json_t *j = ch_geo_results_to_json(&r);
    json_t *c0 = json_array_get(json_object_get(j, "cameras"), 0);
    assert_non_null(json_object_get(c0, "from_m"));
    assert_non_null(json_object_get(c0, "pan_deg"));
    json_decref(j);
    ch_geo_results_fini(&r);
    /* A narrow radius leaves out the camera 20 m away but keeps the one 10 m away. */
    assert_int_equal(ch_geo_path(idx, &line, 15.0, NULL, &r), 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.items[0].camera_id, 1);
    ch_geo_results_fini(&r);
    line.count = 1;
    assert_int_equal(ch_geo_path(idx, &line, 15.0, NULL, &r), CH_EINVAL);
    ch_geo_free(idx);
}

static void test_area_returns_cameras_inside_but_not_in_holes(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    add_cam(idx, 1, 100.0, 100.0, "fixed", -1, -1, -1);  /* inside */
    add_cam(idx, 2, 500.0, 500.0, "fixed", -1, -1, -1);  /* in the hole */
    add_cam(idx, 3, 1500.0, 500.0, "fixed", -1, -1, -1); /* outside */
    add_cam(idx, 4, 900.0, 50.0, "ptz", -1, -1, -1);     /* inside */
    ch_camera_t u;
    ch_camera_init(&u);
    u.id = 5;
    u.agency_id = 1;
    u.kind = "fixed";
    u.status = "unlocated";
    assert_int_equal(ch_geo_upsert(idx, &u), 0);
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"type\":\"Polygon\",\"coordinates\":["
             "[[%.9f,%.9f],[%.9f,%.9f],[%.9f,%.9f],[%.9f,%.9f],[%.9f,%.9f]],"
             "[[%.9f,%.9f],[%.9f,%.9f],[%.9f,%.9f],[%.9f,%.9f],[%.9f,%.9f]]]}",
             lon_at(0), lat_at(0), lon_at(1000), lat_at(0), lon_at(1000), lat_at(1000), lon_at(0),
             lat_at(1000), lon_at(0), lat_at(0), lon_at(400), lat_at(400), lon_at(600), lat_at(400),
             lon_at(600), lat_at(600), lon_at(400), lat_at(600), lon_at(400), lat_at(400));
    json_t *j = parse(text);
    ch_geo_polygon_t poly;
    char err[160];
    assert_int_equal(ch_geo_parse_polygon(j, &poly, err, sizeof(err)), 0);
    json_decref(j);
    assert_int_equal(poly.count, 2);
    ch_geo_results_t r;
    assert_int_equal(ch_geo_area(idx, &poly, NULL, &r), 0);
    assert_int_equal(r.count, 2);
    assert_int_equal(r.items[0].camera_id, 1);
    assert_int_equal(r.items[1].camera_id, 4);
    json_t *out = ch_geo_results_to_json(&r);
    json_t *c0 = json_array_get(json_object_get(out, "cameras"), 0);
    assert_null(json_object_get(c0, "distance_m"));
    json_decref(out);
    ch_geo_results_fini(&r);
    ch_geo_filter_t f;
    memset(&f, 0, sizeof(f));
    f.has_kind = 1;
    f.kind = CH_GEO_KIND_PTZ;
    assert_int_equal(ch_geo_area(idx, &poly, &f, &r), 0);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.items[0].camera_id, 4);
    ch_geo_results_fini(&r);
    ch_geo_polygon_fini(&poly);
    ch_geo_free(idx);
}

static void square(ch_geo_polygon_t *poly, ch_geo_point_t pts[5], double size)
{
    pts[0] = (ch_geo_point_t){lat_at(0), lon_at(0)};
    pts[1] = (ch_geo_point_t){lat_at(0), lon_at(size)};
    pts[2] = (ch_geo_point_t){lat_at(size), lon_at(size)};
    pts[3] = (ch_geo_point_t){lat_at(size), lon_at(0)};
    pts[4] = pts[0];
    static ch_geo_ring_t ring;
    ring.pts = pts;
    ring.count = 5;
    poly->rings = &ring;
    poly->count = 1;
}

static void test_coverage_counts_cells_and_finds_blind_spots(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    add_cam(idx, 1, 100.0, 100.0, "ptz", -1.0, 360.0, 50.0);  /* a disc of radius 50 m */
    add_cam(idx, 2, 180.0, 180.0, "fixed", -1.0, -1.0, 20.0); /* heading unknown: maybe */
    ch_geo_polygon_t poly;
    ch_geo_point_t pts[5];
    square(&poly, pts, 200.0);
    ch_geo_coverage_t c;
    assert_int_equal(ch_geo_coverage(idx, &poly, 10.0, NULL, &c), 0);
    assert_true(c.rows >= 20 && c.rows <= 21 && c.cols >= 20 && c.cols <= 21);
    /* pi * 50^2 / 10^2 = 78.5 cells of 10 m have their centre in the disc. */
    assert_true(c.cells_seen >= 72 && c.cells_seen <= 86);
    /* pi * 20^2 / 4 (a quarter disc inside the corner, less its overlap) ~ 12 cells maybe. */
    assert_true(c.cells_maybe >= 6 && c.cells_maybe <= 16);
    assert_int_equal(c.cells_inside, c.cells_seen + c.cells_maybe + c.cells_blind);
    assert_true(c.cells_blind > 250);
    /* The cell at the centre of the disc is seen, a corner cell is blind. */
    size_t mid = (size_t)(100.0 / 10.0) * c.cols + 10;
    assert_true(c.seen[mid] >= 1);
    assert_int_equal(c.seen[0] + c.maybe[0], 0);
    json_t *j = ch_geo_coverage_to_json(&c);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "FeatureCollection");
    json_t *blind = json_array_get(json_object_get(j, "features"), 0);
    json_t *geom = json_object_get(blind, "geometry");
    assert_string_equal(json_string_value(json_object_get(geom, "type")), "MultiPolygon");
    assert_true(json_array_size(json_object_get(geom, "coordinates")) > 10);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "stats"), "cells_blind")),
        (json_int_t)c.cells_blind);
    json_decref(j);
    ch_geo_coverage_fini(&c);
    /* Excluding both cameras by filter leaves everything blind. */
    ch_geo_filter_t f;
    memset(&f, 0, sizeof(f));
    f.agency_id = 99;
    assert_int_equal(ch_geo_coverage(idx, &poly, 10.0, &f, &c), 0);
    assert_int_equal(c.cells_blind, c.cells_inside);
    ch_geo_coverage_fini(&c);
    assert_int_equal(ch_geo_coverage(idx, &poly, 1.0, NULL, &c), CH_EINVAL);
    square(&poly, pts, 60000.0);
    assert_int_equal(ch_geo_coverage(idx, &poly, 5.0, NULL, &c), CH_ETOOBIG);
    ch_geo_free(idx);
}

typedef struct bad_case {
    const char *json;
    int rc;
    const char *says;
} bad_case_t;

static void test_geojson_parsers_are_strict_and_say_what_is_wrong(void **state)
{
    (void)state;
    static const bad_case_t lines[] = {
        {"[1,2]", CH_EPARSE, "object"},
        {"{\"coordinates\":[[0,0],[1,1]]}", CH_EPARSE, "type"},
        {"{\"type\":\"Point\",\"coordinates\":[0,0]}", CH_EPARSE, "LineString"},
        {"{\"type\":\"LineString\"}", CH_EPARSE, "coordinates"},
        {"{\"type\":\"LineString\",\"coordinates\":[[0,0]]}", CH_EPARSE, "at least 2"},
        {"{\"type\":\"LineString\",\"coordinates\":[[0,0],[1,\"2\"]]}", CH_EPARSE, "position 1"},
        {"{\"type\":\"LineString\",\"coordinates\":[[0,0],[37.5,127.0]]}", CH_EPARSE, "latitude"},
        {"{\"type\":\"LineString\",\"coordinates\":[[0,0],[181,0]]}", CH_EPARSE, "longitude"},
        {"{\"type\":\"LineString\",\"coordinates\":[[0,0],[1]]}", CH_EPARSE, "[lon, lat]"},
        {"{\"type\":\"Feature\",\"geometry\":null}", CH_EPARSE, "geometry"},
    };
    char err[200];
    for (size_t i = 0; i < CH_ARRAY_SIZE(lines); i++) {
        json_t *j = parse(lines[i].json);
        ch_geo_line_t l;
        err[0] = '\0';
        assert_int_equal(ch_geo_parse_linestring(j, &l, err, sizeof(err)), lines[i].rc);
        if (strstr(err, lines[i].says) == NULL) {
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, lines[i].says);
        }
        assert_null(l.pts);
        json_decref(j);
    }
    static const bad_case_t polys[] = {
        {"{\"type\":\"Polygon\",\"coordinates\":[]}", CH_EPARSE, "at least one ring"},
        {"{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1]]]}", CH_EPARSE,
         "not closed"},
        {"{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[0,0]]]}", CH_EPARSE, "at least 4"},
        {"{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]],[[0,0],[1,0]]]}",
         CH_EPARSE, "ring 1"},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(polys); i++) {
        json_t *j = parse(polys[i].json);
        ch_geo_polygon_t p;
        assert_int_equal(ch_geo_parse_polygon(j, &p, err, sizeof(err)), polys[i].rc);
        if (strstr(err, polys[i].says) == NULL) {
            fail_msg("polygon case %zu: \"%s\" does not say \"%s\"", i, err, polys[i].says);
        }
        assert_null(p.rings);
        json_decref(j);
    }
    /* Good input: a Feature around a LineString, altitude allowed. */
    json_t *j = parse("{\"type\":\"Feature\",\"properties\":{},\"geometry\":{\"type\":"
                      "\"LineString\",\"coordinates\":[[129.0,35.1,12.5],[129.01,35.11]]}}");
    ch_geo_line_t l;
    assert_int_equal(ch_geo_parse_linestring(j, &l, err, sizeof(err)), 0);
    assert_int_equal(l.count, 2);
    assert_true(l.pts[0].lat == 35.1 && l.pts[0].lon == 129.0);
    ch_geo_line_fini(&l);
    json_decref(j);
    /* Over the vertex limit. */
    json_t *coords = json_array();
    for (int i = 0; i <= CH_GEO_MAX_VERTICES; i++) {
        json_array_append_new(coords, json_pack("[f,f]", 129.0 + i * 1e-5, 35.0));
    }
    j = json_pack("{s:s, s:o}", "type", "LineString", "coordinates", coords);
    assert_int_equal(ch_geo_parse_linestring(j, &l, err, sizeof(err)), CH_ETOOBIG);
    assert_non_null(strstr(err, "too many"));
    json_decref(j);
}

static void test_near_json_carries_every_reason(void **state)
{
    (void)state;
    ch_geo_t *idx = ch_geo_new();
    add_cam(idx, 1, 0.0, 30.0, "fixed", 180.0, 60.0, 60.0);
    add_cam(idx, 2, 0.0, -30.0, "unknown", -1.0, -1.0, 60.0);
    ch_geo_results_t r;
    assert_int_equal(ch_geo_near(idx, lat_at(0), lon_at(0), 300.0, 20, NULL, &r), 0);
    assert_int_equal(r.count, 2);
    json_t *j = ch_geo_results_to_json(&r);
    json_t *arr = json_object_get(j, "cameras");
    json_t *a = json_array_get(arr, 0), *b = json_array_get(arr, 1);
    assert_int_equal(json_integer_value(json_object_get(a, "id")), 1);
    assert_string_equal(json_string_value(json_object_get(a, "visibility")), "in_fov");
    assert_string_equal(json_string_value(json_object_get(b, "visibility")), "heading_unknown");
    static const char *const keys[] = {"distance_m", "bearing_deg", "score", "range_m",
                                       "kind",       "status",      "lat",   "lon"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(keys); i++) {
        assert_non_null(json_object_get(a, keys[i]));
    }
    assert_null(json_object_get(a, "pan_deg")); /* a fixed camera: pan does not apply */
    assert_true(fabs(json_real_value(json_object_get(a, "bearing_deg")) - 180.0) < 0.05);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
    json_decref(j);
    ch_geo_results_fini(&r);
    ch_geo_free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_orders_cameras_along_it_with_their_stretch),
        cmocka_unit_test(test_area_returns_cameras_inside_but_not_in_holes),
        cmocka_unit_test(test_coverage_counts_cells_and_finds_blind_spots),
        cmocka_unit_test(test_geojson_parsers_are_strict_and_say_what_is_wrong),
        cmocka_unit_test(test_near_json_carries_every_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
