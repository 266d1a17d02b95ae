/*
 * The geo routes: which cameras see a point, a path, an area, and where no camera sees.
 *
 *   GET  /api/v1/geo/near?lat=&lon=&radius_m=&limit=   best cameras for a point
 *   POST /api/v1/geo/path?radius_m=                     cameras along a GeoJSON LineString
 *   POST /api/v1/geo/area                               cameras inside a GeoJSON Polygon
 *   POST /api/v1/geo/coverage?cell_m=                   coverage grid and blind spots
 *
 * Every route also takes the filters purpose, agency_id, kind, status and exclude_offline.
 * The index (src/geo) lives in memory. A near query takes microseconds and is answered inline
 * on the control loop. Path, area and coverage can take up to a second (10,000 positions, a
 * million cells): they are checked here on the loop (sizes within the geo module's bounds),
 * then computed on a pool thread against a reference to the index (ch_geo_ref; the loop copies
 * the index before changing it while a job holds it), so the loop, its other requests and the
 * grants' expiry never wait for them.
 */
#include "api/api_internal.h"

#include "geo/geo.h"
#include "health/health.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct ch_api__geo_job {
    ch_api__route_id_t route;
    ch_geo_t *geo; /* a reference: unchanged while the job runs */
    ch_geo_filter_t f;
    char *purpose; /* f.purpose points here (the query's strings go with the request) */
    double radius_m, cell_m;
    ch_geo_line_t line;
    ch_geo_polygon_t poly;
    int rc;
    ch_geo_results_t r;        /* path and area, between the two passes */
    ch_health_state_t *health; /* r's cameras' states, read on the loop (NULL: none kept) */
    int marked;                /* the states were read: the second pass writes the answer */
    char *text;                /* the answer, serialised on the pool */
};

/* The serialisation ch_api__reply_json uses: compact, twelve significant digits. */
#define GEO_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

static ch_api__geo_job_t *job_new(ch_geo_t *geo, ch_api__route_id_t route, const ch_geo_filter_t *f)
{
    ch_api__geo_job_t *j = ch_calloc(1, sizeof(*j));
    j->route = route;
    j->geo = ch_geo_ref(geo);
    j->f = *f;
    j->purpose = ch_strdup(f->purpose);
    j->f.purpose = j->purpose;
    return j;
}

void ch_api__geo_job_free(ch_api__geo_job_t *j)
{
    if (j == NULL) {
        return;
    }
    ch_geo_free(j->geo);
    ch_free(j->purpose);
    ch_geo_line_fini(&j->line);
    ch_geo_polygon_fini(&j->poly);
    ch_geo_results_fini(&j->r);
    ch_free(j->health);
    free(j->text); /* json_dumps allocates with malloc */
    ch_free(j);
}

/* The answer of path and area, with each camera's health when the states were read (as
 * ch_api__health_mark adds them). */
static void write_results(ch_api__geo_job_t *j)
{
    json_t *o = ch_geo_results_to_json(&j->r);
    json_t *cams = json_object_get(o, "cameras");
    for (size_t i = 0; j->health != NULL && i < j->r.count; i++) {
        json_object_set_new(json_array_get(cams, i), "health",
                            json_string(ch_health_state_name(j->health[i])));
    }
    j->text = json_dumps(o, GEO_DUMP_FLAGS);
    json_decref(o);
}

void ch_api__geo_run(ch_api__geo_job_t *j)
{
    if (j->marked) {
        write_results(j);
        return;
    }
    switch (j->route) {
    case CH_API__R_GEO_PATH:
        j->rc = ch_geo_path(j->geo, &j->line, j->radius_m, &j->f, &j->r);
        break;
    case CH_API__R_GEO_AREA:
        j->rc = ch_geo_area(j->geo, &j->poly, &j->f, &j->r);
        break;
    default: {
        /* A million cells make tens of megabytes of JSON: built and written here too. */
        ch_geo_coverage_t cov;
        memset(&cov, 0, sizeof(cov));
        j->rc = ch_geo_coverage(j->geo, &j->poly, j->cell_m, &j->f, &cov);
        if (j->rc == 0) {
            json_t *o = ch_geo_coverage_to_json(&cov);
            j->text = json_dumps(o, GEO_DUMP_FLAGS);
            json_decref(o);
        }
        ch_geo_coverage_fini(&cov);
        break;
    }
    }
}

int ch_api__geo_mark(ch_api__geo_job_t *j, const ch_health_t *health)
{
    if (j->marked || j->rc != 0 || j->route == CH_API__R_GEO_COVERAGE) {
        return 0;
    }
    if (health != NULL && j->r.count > 0) {
        /* One lookup a camera here on the loop; the health table is the loop's. */
        int64_t *ids = ch_malloc(j->r.count * sizeof(int64_t));
        for (size_t i = 0; i < j->r.count; i++) {
            ids[i] = j->r.items[i].camera_id;
        }
        j->health = ch_malloc(j->r.count * sizeof(ch_health_state_t));
        ch_health_states(health, ids, j->r.count, j->health);
        ch_free(ids);
    }
    j->marked = 1;
    return 1;
}

int ch_api__geo_finish(ch_api__geo_job_t *j, char **text, ch_api__err_t *err)
{
    *text = NULL;
    if (j->rc == CH_ETOOBIG && j->route == CH_API__R_GEO_AREA) {
        ch_api__err_set(err, 422, "too_complex", "geometry",
                        "the polygon needs more than %d edge tests for the cameras in its box: "
                        "send a simpler polygon or a smaller area",
                        CH_GEO_MAX_AREA_EDGE_TESTS);
        return 422;
    }
    if (j->rc != 0) {
        ch_api__err_set(err, 400, "invalid", "geometry",
                        j->route == CH_API__R_GEO_PATH ? "the path cannot be answered"
                                                       : "the area cannot be answered");
        return 400;
    }
    if (j->text == NULL) {
        ch_api__err_set(err, 500, "internal", NULL, "the answer could not be written");
        return 500;
    }
    *text = j->text;
    j->text = NULL;
    return 200;
}

/* Only these parameters (plus the filters), each at most once. */
static int check_params(const ch_api__query_t *q, const char *const *own, ch_api__err_t *err)
{
    static const char *const filters[] = {"purpose", "agency_id",       "kind",
                                          "status",  "exclude_offline", NULL};
    for (size_t i = 0; i < q->count; i++) {
        int ok = 0;
        for (const char *const *a = own; *a != NULL; a++) {
            ok |= strcmp(q->items[i].name, *a) == 0;
        }
        for (const char *const *a = filters; *a != NULL; a++) {
            ok |= strcmp(q->items[i].name, *a) == 0;
        }
        if (!ok) {
            ch_api__err_set(err, 400, "invalid", q->items[i].name, "unknown query parameter");
            return CH_EINVAL;
        }
    }
    return 0;
}

static int parse_filter(const ch_api__query_t *q, ch_geo_filter_t *f, ch_api__err_t *err)
{
    char msg[160] = "";
    if (ch_geo_filter_parse(f, ch_api__query_get(q, "purpose"), ch_api__query_get(q, "agency_id"),
                            ch_api__query_get(q, "kind"), ch_api__query_get(q, "status"),
                            ch_api__query_get(q, "exclude_offline"), msg, sizeof(msg)) != 0) {
        /* The geo module's message starts with the parameter ("kind must be ..."). */
        static const char *const params[] = {"purpose", "agency", "kind", "status",
                                             "exclude_offline"};
        const char *field = NULL;
        for (size_t i = 0; i < CH_ARRAY_SIZE(params); i++) {
            size_t n = strlen(params[i]);
            if (strncmp(msg, params[i], n) == 0 && msg[n] == ' ') {
                field = strcmp(params[i], "agency") == 0 ? "agency_id" : params[i];
            }
        }
        ch_api__err_set(err, 400, "invalid", field, "%s", msg);
        return CH_EINVAL;
    }
    return 0;
}

/* A number parameter within [min, max]; *present says whether it was given. */
static int query_double(const ch_api__query_t *q, const char *name, double min, double max,
                        double *out, ch_api__err_t *err)
{
    const char *v = ch_api__query_get(q, name);
    if (v == NULL) {
        return 0;
    }
    double d;
    if (ch_parse_double(v, strlen(v), &d) != 0 || !(d >= min && d <= max)) {
        ch_api__err_set(err, 400, "invalid", name, "%s must be a number in [%g, %g]", name, min,
                        max);
        return CH_EINVAL;
    }
    *out = d;
    return 0;
}

static int answer_near(const ch_geo_t *geo, const ch_api__query_t *q, json_t **json,
                       ch_api__err_t *err)
{
    static const char *const own[] = {"lat", "lon", "radius_m", "limit", NULL};
    double lat = NAN, lon = NAN, radius = 300, limit = CH_GEO_DEFAULT_LIMIT;
    ch_geo_filter_t f;
    if (check_params(q, own, err) != 0 || query_double(q, "lat", -90, 90, &lat, err) != 0 ||
        query_double(q, "lon", -180, 180, &lon, err) != 0 ||
        query_double(q, "radius_m", 1, CH_GEO_MAX_RADIUS_M, &radius, err) != 0 ||
        query_double(q, "limit", 1, CH_GEO_MAX_LIMIT, &limit, err) != 0 ||
        parse_filter(q, &f, err) != 0) {
        return 400;
    }
    if (isnan(lat) || isnan(lon)) {
        ch_api__err_set(err, 400, "invalid", isnan(lat) ? "lat" : "lon",
                        "lat and lon (WGS84 degrees) are required");
        return 400;
    }
    if (limit != floor(limit)) {
        ch_api__err_set(err, 400, "invalid", "limit", "limit must be an integer");
        return 400;
    }
    ch_geo_results_t r;
    memset(&r, 0, sizeof(r));
    if (ch_geo_near(geo, lat, lon, radius, (size_t)limit, &f, &r) != 0) {
        ch_api__err_set(err, 400, "invalid", NULL, "the query cannot be answered");
        return 400;
    }
    *json = ch_geo_results_to_json(&r);
    ch_geo_results_fini(&r);
    return 200;
}

/* A body ch_geo_parse_linestring or ch_geo_parse_polygon refused with rc, msg saying why: 413
 * when it is too large, else 400. Sets err and returns its status. */
static int refuse_geometry(int rc, const char *msg, ch_api__err_t *err)
{
    ch_api__err_set(err, rc == CH_ETOOBIG ? 413 : 400,
                    rc == CH_ETOOBIG ? "payload_too_large" : "invalid", "geometry", "%s", msg);
    return err->status;
}

static int answer_path(ch_geo_t *geo, const ch_api__query_t *q, const json_t *body,
                       ch_api__geo_job_t **job, ch_api__err_t *err)
{
    static const char *const own[] = {"radius_m", NULL};
    double radius = 100;
    ch_geo_filter_t f;
    if (check_params(q, own, err) != 0 ||
        query_double(q, "radius_m", 1, CH_GEO_MAX_RADIUS_M, &radius, err) != 0 ||
        parse_filter(q, &f, err) != 0) {
        return 400;
    }
    ch_geo_line_t line;
    char msg[200] = "";
    int rc = ch_geo_parse_linestring(body, &line, msg, sizeof(msg));
    if (rc != 0) {
        return refuse_geometry(rc, msg, err);
    }
    *job = job_new(geo, CH_API__R_GEO_PATH, &f);
    (*job)->line = line;
    (*job)->radius_m = radius;
    return 202;
}

static int answer_polygon(ch_geo_t *geo, ch_api__route_id_t route, const ch_api__query_t *q,
                          const json_t *body, ch_api__geo_job_t **job, ch_api__err_t *err)
{
    static const char *const own_area[] = {NULL};
    static const char *const own_cov[] = {"cell_m", NULL};
    int coverage = route == CH_API__R_GEO_COVERAGE;
    double cell = 25;
    ch_geo_filter_t f;
    if (check_params(q, coverage ? own_cov : own_area, err) != 0 ||
        query_double(q, "cell_m", CH_GEO_MIN_CELL_M, 10000, &cell, err) != 0 ||
        parse_filter(q, &f, err) != 0) {
        return 400;
    }
    ch_geo_polygon_t poly;
    char msg[200] = "";
    int rc = ch_geo_parse_polygon(body, &poly, msg, sizeof(msg));
    if (rc != 0) {
        return refuse_geometry(rc, msg, err);
    }
    /* The grid's size is known before any work: refused here, at once. */
    if (coverage && (rc = ch_geo_coverage_check(&poly, cell, msg, sizeof(msg))) != 0) {
        ch_geo_polygon_fini(&poly);
        ch_api__err_set(err, 400, "invalid", rc == CH_ETOOBIG ? "cell_m" : "geometry", "%s", msg);
        return 400;
    }
    *job = job_new(geo, route, &f);
    (*job)->poly = poly;
    (*job)->cell_m = cell;
    return 202;
}

int ch_api__geo_answer(ch_geo_t *geo, ch_api__route_id_t route, ch_slice_t query,
                       const json_t *body, json_t **json, ch_api__geo_job_t **job,
                       ch_api__err_t *err)
{
    *json = NULL;
    *job = NULL;
    ch_api__query_t q;
    if (ch_api__query_parse(query, &q, err) != 0) {
        ch_api__query_fini(&q);
        return err->status;
    }
    int status;
    switch (route) {
    case CH_API__R_GEO_NEAR:
        status = answer_near(geo, &q, json, err);
        break;
    case CH_API__R_GEO_PATH:
        status = answer_path(geo, &q, body, job, err);
        break;
    default:
        status = answer_polygon(geo, route, &q, body, job, err);
        break;
    }
    ch_api__query_fini(&q);
    return status;
}
