/*
 * event/event_select.c: camera selection.
 */
#include "event/event_internal.h"

#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "event"

/* ---- camera selection ---------------------------------------------------------------------- */

/* The agency types of providers met during one selection (a handful). */
typedef struct type_cache {
    int64_t id[32];
    char type[32][32];
    size_t n;
} type_cache_t;

static const char *provider_type(ch_store_t *st, type_cache_t *tc, int64_t id)
{
    for (size_t i = 0; i < tc->n; i++) {
        if (tc->id[i] == id) {
            return tc->type[i];
        }
    }
    ch_agency_t a;
    if (ch_store_agency_get(st, id, &a) != 0) {
        ch_agency_fini(&a);
        return NULL;
    }
    size_t k = tc->n < 32 ? tc->n++ : 31;
    tc->id[k] = id;
    snprintf(tc->type[k], sizeof(tc->type[k]), "%s", a.type);
    ch_agency_fini(&a);
    return tc->type[k];
}

/*
 * The cameras the service may draw on that see the place (or path), best first, at most
 * max_cameras: the geo module's answer filtered by the service's providers, purposes and
 * opt-outs. Offline cameras are left out.
 */
/* A path's cameras, found off the loop against a reference to the index. */
struct ch_event_path_query {
    ch_geo_t *geo;      /* a reference (ch_geo_ref), dropped by ch_event_path_query_free */
    ch_geo_line_t line; /* a copy of the path */
    double radius_m;
    int rc;
    ch_geo_results_t res;
};

/* The radius of the geo query for a service's radius. */
static double query_radius(double radius_m)
{
    return radius_m > CH_GEO_MAX_RADIUS_M ? CH_GEO_MAX_RADIUS_M : radius_m;
}

ch_event_path_query_t *ch_event__path_query_new(ch_event_engine_t *eng, const ch_geo_line_t *line,
                                                double radius_m)
{
    ch_event_path_query_t *q = ch_calloc(1, sizeof(*q));
    q->geo = ch_geo_ref(eng->geo);
    q->line.count = line->count;
    q->line.pts = ch_malloc((line->count + 1) * sizeof(*line->pts));
    memcpy(q->line.pts, line->pts, line->count * sizeof(*line->pts));
    q->radius_m = query_radius(radius_m);
    return q;
}

void ch_event_path_query_run(ch_event_path_query_t *q)
{
    ch_geo_filter_t gf = {.exclude_offline = 1};
    q->rc = ch_geo_path(q->geo, &q->line, q->radius_m, &gf, &q->res);
}

void ch_event_path_query_free(ch_event_path_query_t *q)
{
    if (q == NULL) {
        return;
    }
    ch_geo_free(q->geo);
    ch_geo_line_fini(&q->line);
    ch_geo_results_fini(&q->res);
    ch_free(q);
}

int ch_event__select_cameras(ch_store_t *st, ch_geo_t *geo, const ch_policy_service_t *svc,
                             int located, double lat, double lon, const ch_geo_line_t *line,
                             const ch_event_path_query_t *q, double radius_m, int max_cameras,
                             choice_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (geo == NULL) {
        return 0;
    }
    ch_geo_results_t res;
    memset(&res, 0, sizeof(res));
    const ch_geo_results_t *got = &res;
    ch_geo_filter_t gf = {.exclude_offline = 1};
    double radius = query_radius(radius_m);
    int rc;
    if (!located && q != NULL && q->radius_m == radius) {
        rc = q->rc; /* found off the loop */
        got = &q->res;
    } else {
        rc = located ? ch_geo_near(geo, lat, lon, radius, CH_GEO_MAX_LIMIT, &gf, &res)
                     : ch_geo_path(geo, line, radius, &gf, &res);
    }
    if (rc != 0) {
        return rc;
    }
    type_cache_t tc;
    tc.n = 0;
    choice_t *c = ch_calloc(got->count + 1, sizeof(*c));
    size_t k = 0;
    for (size_t i = 0; i < got->count && k < (size_t)max_cameras; i++) {
        const ch_geo_result_t *r = &got->items[i];
        const char *type = provider_type(st, &tc, r->agency_id);
        const char *purpose = ch_geo_purpose_of(geo, r->camera_id);
        if (type == NULL || !ch_policy_camera_allowed(svc, type, r->agency_id, purpose, NULL)) {
            continue;
        }
        c[k].r = *r;
        c[k].provider_id = r->agency_id;
        k++;
    }
    ch_geo_results_fini(&res);
    *out = c;
    *n = k;
    return 0;
}

/* Why a camera was chosen, as stored with its grant. */
char *ch_event__why_text(const ch_geo_result_t *r, int path)
{
    json_t *o =
        json_pack("{s:s, s:f, s:f, s:f}", "visibility", ch_geo_visibility_name(r->visibility),
                  "distance_m", round(r->distance_m * 10) / 10, "bearing_deg",
                  round(r->bearing_deg * 10) / 10, "score", round(r->score * 1000) / 1000);
    if (path) {
        json_object_set_new(o, "from_m", json_real(round(r->from_m)));
        json_object_set_new(o, "to_m", json_real(round(r->to_m)));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
    json_decref(o);
    char *copy = ch_strdup(s);
    free(s);
    return copy;
}
