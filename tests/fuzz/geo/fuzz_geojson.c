/*
 * libFuzzer target for the GeoJSON input of the geo routes: any bytes through jansson, then the
 * LineString and Polygon parsers, then the path, area and coverage queries on a small fixed
 * index (Busan, plus cameras at a pole and on the antimeridian), then the JSON answers. Checks
 * the invariants the routes rely on: a parser either fills its output or leaves it empty with a
 * message; every result is a camera that sees the path within the radius, in order.
 *
 * Seeds: tests/fuzz/corpus/fuzz_geojson/.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "geo/geo.h"

static ch_geo_t *fixed_index(void)
{
    static ch_geo_t *idx;
    if (idx != NULL) {
        return idx;
    }
    idx = ch_geo_new();
    static const char *const kinds[] = {"fixed", "ptz", "unknown"};
    for (int i = 0; i < 60; i++) {
        ch_camera_t c;
        ch_camera_init(&c);
        c.id = i + 1;
        c.agency_id = 1 + i % 2;
        c.located = 1;
        c.lat = 35.1 + (i % 8) * 0.0004;
        c.lon = 129.0 + (i / 8) * 0.0005;
        if (i >= 56) {
            c.lat = i % 2 ? 89.9999 : 0.0;
            c.lon = i % 2 ? 10.0 : 179.99995;
        }
        c.kind = (char *)kinds[i % 3];
        c.status = i % 7 == 0 ? "inactive" : "active";
        c.heading_deg = i % 2 ? (i * 37) % 360 : -1.0;
        c.fov_deg = i % 5 == 0 ? 360.0 : (i % 5 == 1 ? 40.0 : -1.0);
        c.range_m = i % 4 == 0 ? 30.0 + i : -1.0;
        if (ch_geo_upsert(idx, &c) != 0) {
            abort();
        }
    }
    return idx;
}

static void check_results(const ch_geo_results_t *r, double radius)
{
    for (size_t i = 0; i < r->count; i++) {
        const ch_geo_result_t *x = &r->items[i];
        assert(x->camera_id >= 1 && x->camera_id <= 60);
        if (r->query == CH_GEO_Q_PATH) {
            assert(x->visibility != CH_GEO_VIS_NONE);
            assert(x->distance_m <= radius);
            assert(x->from_m <= x->to_m);
            assert(isfinite(x->score) && x->score >= 0.0 && x->score <= 1.0);
            assert(i == 0 || r->items[i - 1].from_m <= x->from_m);
        }
    }
    json_t *j = ch_geo_results_to_json(r);
    assert(j != NULL);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20) {
        return 0;
    }
    ch_geo_t *idx = fixed_index();
    json_error_t e;
    json_t *j = json_loadb((const char *)data, size, 0, &e);
    if (j == NULL) {
        return 0;
    }
    char err[256];
    ch_geo_line_t line;
    err[0] = '\0';
    int rc = ch_geo_parse_linestring(j, &line, err, sizeof(err));
    if (rc == 0) {
        assert(line.count >= 2 && line.count <= CH_GEO_MAX_VERTICES);
        ch_geo_results_t r;
        if (ch_geo_path(idx, &line, 150.0, NULL, &r) == 0) {
            check_results(&r, 150.0);
            ch_geo_results_fini(&r);
        }
        ch_geo_line_fini(&line);
    } else {
        assert(line.pts == NULL && line.count == 0 && err[0] != '\0');
    }
    ch_geo_polygon_t poly;
    err[0] = '\0';
    rc = ch_geo_parse_polygon(j, &poly, err, sizeof(err));
    if (rc == 0) {
        assert(poly.count >= 1);
        for (size_t i = 0; i < poly.count; i++) {
            const ch_geo_ring_t *ring = &poly.rings[i];
            assert(ring->count >= 4);
            assert(ring->pts[0].lat == ring->pts[ring->count - 1].lat);
        }
        ch_geo_results_t r;
        if (ch_geo_area(idx, &poly, NULL, &r) == 0) {
            check_results(&r, 0.0);
            for (size_t i = 0; i < r.count; i++) {
                assert(ch_geo_polygon_contains(&poly, r.items[i].lat, r.items[i].lon));
            }
            ch_geo_results_fini(&r);
        }
        /* Coverage only on small shapes: the check below tests every cell the straightforward
         * way (cells x vertices). */
        if (poly.rings[0].count <= 64) {
            ch_geo_coverage_t c;
            if (ch_geo_coverage(idx, &poly, 500.0, NULL, &c) == 0) {
                assert(c.cells_inside == c.cells_seen + c.cells_maybe + c.cells_blind);
                /* The scanline agrees with the straightforward test at every cell centre. */
                for (size_t row = 0; row < c.rows && c.rows * c.cols <= 20000; row++) {
                    double lat = c.south + ((double)row + 0.5) * c.dlat;
                    for (size_t col = 0; col < c.cols; col++) {
                        double lon = c.west + ((double)col + 0.5) * c.dlon;
                        assert(c.inside[row * c.cols + col] ==
                               ch_geo_polygon_contains(&poly, lat, lon));
                    }
                }
                json_t *cj = ch_geo_coverage_to_json(&c);
                assert(cj != NULL);
                json_decref(cj);
                ch_geo_coverage_fini(&c);
            }
        }
        ch_geo_polygon_fini(&poly);
    } else {
        assert(poly.rings == NULL && poly.count == 0 && err[0] != '\0');
    }
    json_decref(j);
    return 0;
}
