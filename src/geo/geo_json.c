/*
 * GeoJSON in (strict LineString and Polygon parsers whose errors name what is wrong) and JSON out
 * (results and coverage for the REST routes), plus the query-string filter parser.
 */
#include "geo/geo_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...) CH_PRINTF(3, 4);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void ch_geo_line_fini(ch_geo_line_t *l)
{
    if (l == NULL) {
        return;
    }
    ch_free(l->pts);
    l->pts = NULL;
    l->count = 0;
}

void ch_geo_polygon_fini(ch_geo_polygon_t *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->count; i++) {
        ch_free(p->rings[i].pts);
    }
    ch_free(p->rings);
    p->rings = NULL;
    p->count = 0;
}

/*
 * Finds the geometry of the wanted type: the object itself, or a Feature's "geometry". Returns
 * its "coordinates" array or NULL with err set.
 */
static const json_t *geometry_coords(const json_t *j, const char *want, char *err, size_t errlen)
{
    if (!json_is_object(j)) {
        set_err(err, errlen, "GeoJSON must be an object");
        return NULL;
    }
    const json_t *type = json_object_get(j, "type");
    if (!json_is_string(type)) {
        set_err(err, errlen, "GeoJSON object has no string \"type\"");
        return NULL;
    }
    if (strcmp(json_string_value(type), "Feature") == 0) {
        j = json_object_get(j, "geometry");
        if (!json_is_object(j)) {
            set_err(err, errlen, "Feature has no \"geometry\" object");
            return NULL;
        }
        type = json_object_get(j, "type");
        if (!json_is_string(type)) {
            set_err(err, errlen, "geometry has no string \"type\"");
            return NULL;
        }
    }
    if (strcmp(json_string_value(type), want) != 0) {
        set_err(err, errlen, "geometry type must be %s", want);
        return NULL;
    }
    const json_t *coords = json_object_get(j, "coordinates");
    if (!json_is_array(coords)) {
        set_err(err, errlen, "%s has no \"coordinates\" array", want);
        return NULL;
    }
    return coords;
}

/* Reads one [lon, lat] or [lon, lat, alt] position. what names it in errors. */
static int parse_position(const json_t *p, ch_geo_point_t *out, const char *what, char *err,
                          size_t errlen)
{
    if (!json_is_array(p) || json_array_size(p) < 2 || json_array_size(p) > 3) {
        set_err(err, errlen, "%s must be an array [lon, lat] or [lon, lat, alt]", what);
        return CH_EPARSE;
    }
    for (size_t i = 0; i < json_array_size(p); i++) {
        if (!json_is_number(json_array_get(p, i))) {
            set_err(err, errlen, "%s: element %zu is not a number", what, i);
            return CH_EPARSE;
        }
    }
    double lon = json_number_value(json_array_get(p, 0));
    double lat = json_number_value(json_array_get(p, 1));
    if (!isfinite(lon) || lon < -180.0 || lon > 180.0) {
        set_err(err, errlen, "%s: longitude %g outside -180..180", what, lon);
        return CH_EPARSE;
    }
    if (!isfinite(lat) || lat < -90.0 || lat > 90.0) {
        set_err(err, errlen, "%s: latitude %g outside -90..90 (positions are [lon, lat])", what,
                lat);
        return CH_EPARSE;
    }
    out->lat = lat;
    out->lon = lon;
    return 0;
}

/* Reads an array of positions into a fresh array; min is the least count allowed. */
static int parse_positions(const json_t *arr, size_t min, size_t *budget, const char *what,
                           ch_geo_point_t **pts, size_t *count, char *err, size_t errlen)
{
    *pts = NULL;
    *count = 0;
    if (!json_is_array(arr)) {
        set_err(err, errlen, "%s must be an array of positions", what);
        return CH_EPARSE;
    }
    size_t n = json_array_size(arr);
    if (n > *budget) {
        set_err(err, errlen, "%s: too many positions (at most %d in all)", what,
                CH_GEO_MAX_VERTICES);
        return CH_ETOOBIG;
    }
    if (n < min) {
        set_err(err, errlen, "%s needs at least %zu positions, has %zu", what, min, n);
        return CH_EPARSE;
    }
    ch_geo_point_t *p = ch_malloc(n * sizeof(*p));
    for (size_t i = 0; i < n; i++) {
        char w[96];
        snprintf(w, sizeof(w), "%s position %zu", what, i);
        int rc = parse_position(json_array_get(arr, i), &p[i], w, err, errlen);
        if (rc != 0) {
            ch_free(p);
            return rc;
        }
    }
    *budget -= n;
    *pts = p;
    *count = n;
    return 0;
}

int ch_geo_parse_linestring(const json_t *j, ch_geo_line_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const json_t *coords = geometry_coords(j, "LineString", err, errlen);
    if (coords == NULL) {
        return CH_EPARSE;
    }
    size_t budget = CH_GEO_MAX_VERTICES;
    return parse_positions(coords, 2, &budget, "LineString", &out->pts, &out->count, err, errlen);
}

int ch_geo_parse_polygon(const json_t *j, ch_geo_polygon_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const json_t *coords = geometry_coords(j, "Polygon", err, errlen);
    if (coords == NULL) {
        return CH_EPARSE;
    }
    size_t nrings = json_array_size(coords);
    if (nrings == 0) {
        set_err(err, errlen, "Polygon needs at least one ring");
        return CH_EPARSE;
    }
    /* Every ring has at least four positions, so this bounds the allocation as well. */
    if (nrings > CH_GEO_MAX_VERTICES / 4) {
        set_err(err, errlen, "Polygon: too many rings");
        return CH_ETOOBIG;
    }
    out->rings = ch_calloc(nrings, sizeof(ch_geo_ring_t));
    size_t budget = CH_GEO_MAX_VERTICES;
    int rc = 0;
    for (size_t i = 0; i < nrings; i++) {
        char what[48];
        snprintf(what, sizeof(what), "Polygon ring %zu", i);
        rc = parse_positions(json_array_get(coords, i), 4, &budget, what, &out->rings[i].pts,
                             &out->rings[i].count, err, errlen);
        if (rc != 0) {
            goto out;
        }
        out->count = i + 1;
        const ch_geo_ring_t *r = &out->rings[i];
        if (r->pts[0].lat != r->pts[r->count - 1].lat ||
            r->pts[0].lon != r->pts[r->count - 1].lon) {
            set_err(err, errlen, "%s is not closed (last position must equal the first)", what);
            rc = CH_EPARSE;
            goto out;
        }
    }
out:
    if (rc != 0) {
        out->count = nrings; /* free every ring parsed so far; the rest are zeroed */
        ch_geo_polygon_fini(out);
    }
    return rc;
}

/* Rounds for output: centimetres and hundredths of a degree say all the model knows, and short
 * numbers keep the answers small. */
static json_t *num(double v, double unit)
{
    return json_real(round(v / unit) * unit);
}

json_t *ch_geo_results_to_json(const ch_geo_results_t *r)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < r->count; i++) {
        const ch_geo_result_t *x = &r->items[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(x->camera_id));
        json_object_set_new(o, "agency_id", json_integer(x->agency_id));
        json_object_set_new(o, "lat", json_real(x->lat));
        json_object_set_new(o, "lon", json_real(x->lon));
        json_object_set_new(o, "kind", json_string(ch_geo_kind_name(x->kind)));
        json_object_set_new(o, "status", json_string(ch_geo_status_name(x->status)));
        if (r->query != CH_GEO_Q_AREA) {
            json_object_set_new(o, "distance_m", num(x->distance_m, 0.01));
            json_object_set_new(o, "bearing_deg", num(x->bearing_deg, 0.01));
            json_object_set_new(o, "range_m", num(x->range_m, 0.1));
            json_object_set_new(o, "visibility",
                                json_string(ch_geo_visibility_name(x->visibility)));
            if (x->pan_deg >= 0.0) {
                json_object_set_new(o, "pan_deg", num(x->pan_deg, 0.01));
            }
            json_object_set_new(o, "score", num(x->score, 0.0001));
        }
        if (r->query == CH_GEO_Q_PATH) {
            json_object_set_new(o, "from_m", num(x->from_m, 0.1));
            json_object_set_new(o, "to_m", num(x->to_m, 0.1));
        }
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o, s:I, s:b}", "cameras", arr, "count", (json_int_t)r->count, "truncated",
                     r->truncated);
}

json_t *ch_geo_bell_cameras(const ch_geo_t *idx, double lat, double lon, double radius_m)
{
    if (idx == NULL) {
        return NULL;
    }
    ch_geo_filter_t f;
    memset(&f, 0, sizeof(f));
    f.exclude_offline = 1; /* an inactive camera shows nobody anything */
    ch_geo_results_t r;
    memset(&r, 0, sizeof(r));
    json_t *cameras = NULL;
    if (ch_geo_near(idx, lat, lon, radius_m, CH_GEO_DEFAULT_LIMIT, &f, &r) == 0) {
        cameras = ch_geo_results_to_json(&r);
    }
    ch_geo_results_fini(&r);
    return cameras;
}

/* Appends the rectangle of cells [c0, c1) in row `row` as a GeoJSON polygon. */
static void append_run(json_t *mp, const ch_geo_coverage_t *c, size_t row, size_t c0, size_t c1)
{
    double s = c->south + (double)row * c->dlat, n = s + c->dlat;
    double w = c->west + (double)c0 * c->dlon, e = c->west + (double)c1 * c->dlon;
    json_t *ring = json_pack("[[f,f],[f,f],[f,f],[f,f],[f,f]]", w, s, e, s, e, n, w, n, w, s);
    json_array_append_new(mp, json_pack("[o]", ring));
}

/* A MultiPolygon of the inside cells nobody sees (want_maybe 0: blind; 1: only possibly
 * seen), runs of such cells in a row merged into one rectangle to keep the answer small. */
static json_t *cells_multipolygon(const ch_geo_coverage_t *c, int want_maybe)
{
    json_t *mp = json_array();
    for (size_t row = 0; row < c->rows; row++) {
        size_t start = SIZE_MAX;
        for (size_t col = 0; col <= c->cols; col++) {
            int pick = 0;
            if (col < c->cols) {
                size_t i = row * c->cols + col;
                pick = c->inside[i] && c->seen[i] == 0 &&
                       (want_maybe ? c->maybe[i] > 0 : c->maybe[i] == 0);
            }
            if (pick && start == SIZE_MAX) {
                start = col;
            } else if (!pick && start != SIZE_MAX) {
                append_run(mp, c, row, start, col);
                start = SIZE_MAX;
            }
        }
    }
    return json_pack("{s:s, s:o}", "type", "MultiPolygon", "coordinates", mp);
}

json_t *ch_geo_coverage_to_json(const ch_geo_coverage_t *c)
{
    json_t *features = json_array();
    json_array_append_new(features, json_pack("{s:s, s:o, s:{s:b}}", "type", "Feature", "geometry",
                                              cells_multipolygon(c, 0), "properties", "blind", 1));
    json_array_append_new(features, json_pack("{s:s, s:o, s:{s:b}}", "type", "Feature", "geometry",
                                              cells_multipolygon(c, 1), "properties", "maybe", 1));
    json_t *stats = json_pack("{s:f, s:I, s:I, s:I, s:I, s:I, s:I}", "cell_m", c->cell_m, "rows",
                              (json_int_t)c->rows, "cols", (json_int_t)c->cols, "cells_inside",
                              (json_int_t)c->cells_inside, "cells_seen", (json_int_t)c->cells_seen,
                              "cells_maybe", (json_int_t)c->cells_maybe, "cells_blind",
                              (json_int_t)c->cells_blind);
    /* The counts of every cell, row-major from the south-west corner: how many cameras see
     * it (and how many possibly do); null for cells outside the polygon. */
    size_t n = c->rows * c->cols;
    json_t *seen = json_array(), *maybe = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(seen, c->inside[i] ? json_integer(c->seen[i]) : json_null());
        json_array_append_new(maybe, c->inside[i] ? json_integer(c->maybe[i]) : json_null());
    }
    json_t *grid = json_pack("{s:f, s:f, s:f, s:f, s:I, s:I, s:o, s:o}", "south", c->south, "west",
                             c->west, "dlat", c->dlat, "dlon", c->dlon, "rows", (json_int_t)c->rows,
                             "cols", (json_int_t)c->cols, "seen", seen, "maybe", maybe);
    return json_pack("{s:s, s:o, s:o, s:o}", "type", "FeatureCollection", "features", features,
                     "stats", stats, "grid", grid);
}

int ch_geo_filter_parse(ch_geo_filter_t *f, const char *purpose, const char *agency,
                        const char *kind, const char *status, const char *exclude_offline,
                        char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->purpose = purpose != NULL && purpose[0] != '\0' ? purpose : NULL;
    if (agency != NULL && agency[0] != '\0') {
        int64_t v;
        if (ch_parse_int64(agency, strlen(agency), &v) != 0 || v <= 0) {
            set_err(err, errlen, "agency must be a positive integer id");
            return CH_EINVAL;
        }
        f->agency_id = v;
    }
    if (kind != NULL && kind[0] != '\0') {
        if (ch_geo_kind_parse(kind, &f->kind) != 0) {
            set_err(err, errlen, "kind must be fixed, ptz or unknown");
            return CH_EINVAL;
        }
        f->has_kind = 1;
    }
    if (status != NULL && status[0] != '\0') {
        if (ch_geo_status_parse(status, &f->status) != 0) {
            set_err(err, errlen, "status must be active, inactive or maintenance");
            return CH_EINVAL;
        }
        f->has_status = 1;
    }
    if (exclude_offline != NULL && exclude_offline[0] != '\0') {
        if (strcmp(exclude_offline, "1") == 0 || strcmp(exclude_offline, "true") == 0) {
            f->exclude_offline = 1;
        } else if (strcmp(exclude_offline, "0") != 0 && strcmp(exclude_offline, "false") != 0) {
            set_err(err, errlen, "exclude_offline must be true, false, 1 or 0");
            return CH_EINVAL;
        }
    }
    return 0;
}
