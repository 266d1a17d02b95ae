/*
 * The queries beyond near: along a path, inside a polygon, and the coverage grid.
 */
#include "geo/geo_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Even-odd ray casting over one ring in the lon/lat plane: the rings the map draws are small
 * enough (a district) that straight edges in degrees are what the user drew. */
static int ring_contains(const ch_geo_ring_t *r, double lat, double lon)
{
    int in = 0;
    for (size_t i = 0, j = r->count - 1; i < r->count; j = i++) {
        double yi = r->pts[i].lat, yj = r->pts[j].lat;
        double xi = r->pts[i].lon, xj = r->pts[j].lon;
        if ((yi > lat) != (yj > lat)) {
            double x = xi + (lat - yi) * (xj - xi) / (yj - yi);
            if (lon < x) {
                in = !in;
            }
        }
    }
    return in;
}

int ch_geo_polygon_contains(const ch_geo_polygon_t *p, double lat, double lon)
{
    if (p->count == 0 || !ring_contains(&p->rings[0], lat, lon)) {
        return 0;
    }
    for (size_t i = 1; i < p->count; i++) {
        if (ring_contains(&p->rings[i], lat, lon)) {
            return 0;
        }
    }
    return 1;
}

/* ---- the prepared polygon: bands of edges, point tests and the scanline ------------------ */

static size_t poly_band(const geo_poly_t *gp, double lat)
{
    double b = floor((lat - gp->band_s) * gp->band_k);
    if (!(b > 0.0)) {
        return 0;
    }
    return b >= (double)gp->nbands ? gp->nbands - 1 : (size_t)b;
}

/* Counts the band entries nb bands would need (an edge is listed in every band from that of its
 * lower end to that of its upper end). */
static size_t poly_band_entries(geo_poly_t *gp, size_t nb, double top)
{
    gp->nbands = nb;
    gp->band_k = top > gp->band_s ? (double)nb / (top - gp->band_s) : 0.0;
    size_t total = 0;
    for (size_t k = 0; k < gp->nedges; k++) {
        const geo_edge_t *ed = &gp->edges[k];
        total += poly_band(gp, fmax(ed->yi, ed->yj)) - poly_band(gp, fmin(ed->yi, ed->yj)) + 1;
    }
    return total;
}

/*
 * Bands: as many as edges (at most 4,096), halved while the entries exceed 16 per edge, so
 * that memory stays O(edges) even for a comb whose every edge spans the whole polygon. The
 * band of a latitude is monotonic in it, so an edge listed from the band of its lower end to
 * that of its upper end is in the band of every latitude it crosses: a band holds a superset of
 * the edges that matter, and the tests below still apply the exact predicate.
 */
void ch_geo__poly_init(geo_poly_t *gp, const ch_geo_polygon_t *poly)
{
    memset(gp, 0, sizeof(*gp));
    gp->nrings = poly->count;
    size_t total = 0;
    for (size_t r = 0; r < poly->count; r++) {
        total += poly->rings[r].count;
    }
    gp->edges = ch_malloc((total ? total : 1) * sizeof(geo_edge_t));
    const ch_geo_ring_t *outer = &poly->rings[0];
    gp->s = gp->n = outer->pts[0].lat;
    gp->w = gp->e = outer->pts[0].lon;
    double lo = gp->s, hi = gp->n;
    for (size_t r = 0; r < poly->count; r++) {
        const ch_geo_ring_t *ring = &poly->rings[r];
        for (size_t i = 0, j = ring->count - 1; i < ring->count; j = i++) {
            const ch_geo_point_t *a = &ring->pts[i], *b = &ring->pts[j];
            if (r == 0) {
                gp->s = fmin(gp->s, a->lat);
                gp->n = fmax(gp->n, a->lat);
                gp->w = fmin(gp->w, a->lon);
                gp->e = fmax(gp->e, a->lon);
            }
            lo = fmin(lo, a->lat);
            hi = fmax(hi, a->lat);
            if (a->lat == b->lat) {
                continue; /* (yi > y) != (yj > y) is never true for it */
            }
            gp->edges[gp->nedges++] =
                (geo_edge_t){.yi = a->lat, .xi = a->lon, .yj = b->lat, .xj = b->lon, .ring = r};
        }
    }
    /* Bands span every ring (a malformed hole may stick out of the outer ring). */
    gp->band_s = lo;
    size_t nb = gp->nedges < 4096 ? (gp->nedges ? gp->nedges : 1) : 4096;
    size_t entries = poly_band_entries(gp, nb, hi);
    while (nb > 1 && entries > 16 * gp->nedges + 64) {
        nb /= 2;
        entries = poly_band_entries(gp, nb, hi);
    }
    gp->band_entries = entries;
    gp->band_start = ch_calloc(nb + 1, sizeof(uint32_t));
    gp->band_edges = ch_malloc((entries ? entries : 1) * sizeof(uint32_t));
    for (size_t k = 0; k < gp->nedges; k++) {
        const geo_edge_t *ed = &gp->edges[k];
        size_t b0 = poly_band(gp, fmin(ed->yi, ed->yj)), b1 = poly_band(gp, fmax(ed->yi, ed->yj));
        for (size_t b = b0; b <= b1; b++) {
            gp->band_start[b + 1]++;
        }
    }
    for (size_t b = 0; b < nb; b++) {
        gp->band_start[b + 1] += gp->band_start[b];
    }
    uint32_t *fill = ch_malloc(nb * sizeof(uint32_t));
    memcpy(fill, gp->band_start, nb * sizeof(uint32_t));
    /* Edges in their order, so each band lists them ring by ring. */
    for (size_t k = 0; k < gp->nedges; k++) {
        const geo_edge_t *ed = &gp->edges[k];
        size_t b0 = poly_band(gp, fmin(ed->yi, ed->yj)), b1 = poly_band(gp, fmax(ed->yi, ed->yj));
        for (size_t b = b0; b <= b1; b++) {
            gp->band_edges[fill[b]++] = (uint32_t)k;
        }
    }
    ch_free(fill);
}

void ch_geo__poly_fini(geo_poly_t *gp)
{
    if (gp == NULL) {
        return;
    }
    ch_free(gp->edges);
    ch_free(gp->band_start);
    ch_free(gp->band_edges);
    memset(gp, 0, sizeof(*gp));
}

/* The crossing of edge ed with the parallel y, as ring_contains computes it; only when
 * (yi > y) != (yj > y). */
static inline double edge_x(const geo_edge_t *ed, double y)
{
    return ed->xi + (y - ed->yi) * (ed->xj - ed->xi) / (ed->yj - ed->yi);
}

int ch_geo__poly_contains(const geo_poly_t *gp, double lat, double lon, size_t *tests)
{
    /* The box first (with a hair of slack east and west: a crossing computed in floating point
     * may lie an ulp outside the box, and the exact test below decides). */
    if (lat < gp->s || lat > gp->n || lon < gp->w - 1e-9 || lon > gp->e + 1e-9) {
        return 0;
    }
    size_t b = poly_band(gp, lat);
    const uint32_t *ix = gp->band_edges + gp->band_start[b];
    size_t m = gp->band_start[b + 1] - gp->band_start[b];
    if (tests != NULL) {
        *tests += m;
    }
    /* The band lists the edges ring by ring: close each ring's count as the next begins. */
    uint32_t ring = 0;
    int in = 0;
    for (size_t k = 0; k < m; k++) {
        const geo_edge_t *ed = &gp->edges[ix[k]];
        if (ed->ring != ring) {
            if (ring == 0 ? !in : in) {
                return 0;
            }
            ring = ed->ring;
            in = 0;
        }
        if ((ed->yi > lat) != (ed->yj > lat) && lon < edge_x(ed, lat)) {
            in = !in;
        }
    }
    /* The last ring looked at; when no edge of the outer ring was, the point is outside. */
    return ring == 0 ? in : !in;
}

void ch_geo__row_scratch_fini(geo_row_scratch_t *sc)
{
    if (sc == NULL) {
        return;
    }
    ch_free(sc->col);
    ch_free(sc->ring);
    ch_free(sc->order);
    ch_free(sc->start);
    ch_free(sc->parity);
    memset(sc, 0, sizeof(*sc));
}

/* The first column (0..cols) whose centre west + (col + 0.5) * dlon is at or east of x: where
 * the crossing passes to the west of the sweep. Estimated by division, then settled with the
 * very expression the centres are computed with (monotonic in col), so that ties go exactly
 * as in the straightforward test (lon < x). */
static uint32_t crossing_col(double x, double west, double dlon, size_t cols)
{
    double est = ceil((x - west) / dlon - 0.5);
    size_t c = !(est > 0.0) ? 0 : (est >= (double)cols ? cols : (size_t)est);
    while (c > 0 && x <= west + ((double)(c - 1) + 0.5) * dlon) {
        c--;
    }
    while (c < cols && !(x <= west + ((double)c + 0.5) * dlon)) {
        c++;
    }
    return (uint32_t)c;
}

size_t ch_geo__poly_row(const geo_poly_t *gp, geo_row_scratch_t *sc, double lat, double west,
                        double dlon, size_t cols, uint8_t *inside)
{
    if (lat < gp->s || lat > gp->n || cols == 0) {
        return 0;
    }
    if (sc->parity == NULL) {
        sc->parity = ch_calloc(gp->nrings ? gp->nrings : 1, 1);
    }
    size_t b = poly_band(gp, lat);
    const uint32_t *ix = gp->band_edges + gp->band_start[b];
    size_t m = gp->band_start[b + 1] - gp->band_start[b];
    if (m > sc->cap) {
        sc->cap = m;
        sc->col = ch_realloc(sc->col, m * sizeof(uint32_t));
        sc->ring = ch_realloc(sc->ring, m * sizeof(uint32_t));
        sc->order = ch_realloc(sc->order, m * sizeof(uint32_t));
    }
    if (cols + 2 > sc->start_cap) {
        sc->start_cap = cols + 2;
        sc->start = ch_realloc(sc->start, sc->start_cap * sizeof(uint32_t));
    }
    memset(sc->start, 0, (cols + 2) * sizeof(uint32_t));
    /*
     * A point is inside a ring when an odd number of its crossings lie east of it (lon < x).
     * Sweeping east, a crossing passes to the west at the first centre with x <= lon: start
     * each ring's parity at its count of crossings (all east of a point far west) and flip it
     * as each passes.
     */
    size_t k = 0;
    for (size_t t = 0; t < m; t++) {
        const geo_edge_t *ed = &gp->edges[ix[t]];
        if ((ed->yi > lat) != (ed->yj > lat)) {
            sc->col[k] = crossing_col(edge_x(ed, lat), west, dlon, cols);
            sc->ring[k] = ed->ring;
            sc->parity[ed->ring] = 0;
            sc->start[sc->col[k] + 1]++;
            k++;
        }
    }
    if (k == 0) {
        return 0;
    }
    for (size_t c = 0; c <= cols; c++) {
        sc->start[c + 1] += sc->start[c];
    }
    size_t odd_holes = 0;
    for (size_t t = 0; t < k; t++) {
        uint32_t r = sc->ring[t];
        sc->parity[r] ^= 1;
        if (r != 0) {
            odd_holes += sc->parity[r] ? 1 : (size_t)-1;
        }
        /* Bucket by column; start[c] then ends at the end of bucket c - 1. */
        sc->order[sc->start[sc->col[t]]++] = (uint32_t)t;
    }
    size_t next = 0, marked = 0;
    for (size_t col = 0; col < cols; col++) {
        /* After the bucketing pass, start[col] is the end of bucket col. */
        for (; next < sc->start[col]; next++) {
            uint32_t r = sc->ring[sc->order[next]];
            sc->parity[r] ^= 1;
            if (r != 0) {
                odd_holes += sc->parity[r] ? 1 : (size_t)-1;
            }
        }
        if (next == k) {
            break; /* every crossing is west: outside from here on */
        }
        if (sc->parity[0] && odd_holes == 0) {
            inside[col] = 1;
            marked++;
        }
    }
    return marked;
}

/* The bounding box of a polygon's outer ring. */
static void poly_bbox(const ch_geo_polygon_t *p, double *s, double *w, double *n, double *e)
{
    const ch_geo_ring_t *r = &p->rings[0];
    *s = *n = r->pts[0].lat;
    *w = *e = r->pts[0].lon;
    for (size_t i = 1; i < r->count; i++) {
        *s = fmin(*s, r->pts[i].lat);
        *n = fmax(*n, r->pts[i].lat);
        *w = fmin(*w, r->pts[i].lon);
        *e = fmax(*e, r->pts[i].lon);
    }
}

/*
 * Calls fn for every record in the cells that overlap the box (south..north, west..east; west
 * <= east, so a box may not cross the antimeridian: GeoJSON asks for such shapes to be split).
 */
static int visit_bbox(const ch_geo_t *idx, double s, double w, double n, double e, geo_visit_fn fn,
                      void *ctx)
{
    s = fmax(s, -90.0);
    n = fmin(n, 90.0);
    w = fmax(w, -180.0);
    e = fmin(e, 180.0);
    if (idx->count == 0 || s > n || w > e) {
        return 0;
    }
    int64_t r_lo = ((int64_t)floor(s * 1e7) + 900000000LL) / GEO_CELL_LAT_E7;
    int64_t r_hi = ((int64_t)ceil(n * 1e7) + 900000000LL) / GEO_CELL_LAT_E7;
    if (r_hi >= GEO_NROWS) {
        r_hi = GEO_NROWS - 1;
    }
    /* A box with more grid cells than the index has occupied cells (a province, the world) is
     * cheaper to answer by walking the occupied cells and testing each record. */
    double est = (double)(r_hi - r_lo + 1) * ((e - w) / (GEO_CELL_LAT_E7 * 1e-7) + 2.0);
    if (est > (double)idx->ncells) {
        int32_t s7 = (int32_t)floor(s * 1e7), n7 = (int32_t)ceil(n * 1e7);
        int32_t w7 = (int32_t)floor(w * 1e7), e7 = (int32_t)ceil(e * 1e7);
        for (size_t ci = 0; ci < idx->ncells; ci++) {
            const geo_cell_t *c = &idx->cells[ci];
            for (uint32_t i = 0; i < c->n; i++) {
                const geo_rec_t *r = &c->items[i];
                if (r->lat_e7 < s7 || r->lat_e7 > n7 || r->lon_e7 < w7 || r->lon_e7 > e7) {
                    continue;
                }
                int rc = fn(ctx, r);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        return 0;
    }
    for (int64_t row = r_lo < 0 ? 0 : r_lo; row <= r_hi; row++) {
        uint64_t ncols = idx->row_cols[row];
        int64_t c_lo = (int64_t)floor((w + 180.0) / 360.0 * (double)ncols);
        int64_t c_hi = (int64_t)floor((e + 180.0) / 360.0 * (double)ncols);
        c_lo = c_lo < 0 ? 0 : c_lo;
        c_hi = c_hi >= (int64_t)ncols ? (int64_t)ncols - 1 : c_hi;
        for (int64_t col = c_lo; col <= c_hi; col++) {
            const geo_cell_t *c = ch_geo__cell_find(idx, (uint64_t)row << 32 | (uint64_t)col);
            for (uint32_t i = 0; c != NULL && i < c->n; i++) {
                int rc = fn(ctx, &c->items[i]);
                if (rc != 0) {
                    return rc;
                }
            }
        }
        /* A camera at exactly +180 lives in column 0 of its row. */
        if (e >= 180.0 && c_lo > 0) {
            const geo_cell_t *c = ch_geo__cell_find(idx, (uint64_t)row << 32);
            for (uint32_t i = 0; c != NULL && i < c->n; i++) {
                int rc = fn(ctx, &c->items[i]);
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    return 0;
}

static int cmp_by_id(const void *a, const void *b)
{
    const ch_geo_result_t *x = a, *y = b;
    return (x->camera_id > y->camera_id) - (x->camera_id < y->camera_id);
}

/* ---- area ------------------------------------------------------------------------------- */

typedef struct area_ctx {
    const ch_geo_t *idx;
    const geo_poly_t *gp;
    size_t tests; /* edges looked at so far */
    geo_filter_prep_t fp;
    ch_geo_result_t *items;
    size_t n, cap;
    int truncated;
} area_ctx_t;

/* A new slot at the end of the results *items (*n of them, room for *cap), which grows as
 * needed up to CH_GEO_MAX_AREA_RESULTS: past that, NULL with *truncated set. */
static ch_geo_result_t *results_push(ch_geo_result_t **items, size_t *n, size_t *cap,
                                     int *truncated)
{
    if (*n == CH_GEO_MAX_AREA_RESULTS) {
        *truncated = 1;
        return NULL;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *items = ch_realloc(*items, *cap * sizeof(ch_geo_result_t));
    }
    return &(*items)[(*n)++];
}

static int area_visit(void *vctx, const geo_rec_t *r)
{
    area_ctx_t *ctx = vctx;
    double lat = r->lat_e7 * 1e-7, lon = r->lon_e7 * 1e-7;
    if (!ch_geo__filter_pass(ctx->idx, &ctx->fp, r)) {
        return 0;
    }
    int in = ch_geo__poly_contains(ctx->gp, lat, lon, &ctx->tests);
    if (ctx->tests > CH_GEO_MAX_AREA_EDGE_TESTS) {
        return CH_ETOOBIG;
    }
    if (!in) {
        return 0;
    }
    ch_geo_result_t *x = results_push(&ctx->items, &ctx->n, &ctx->cap, &ctx->truncated);
    if (x == NULL) {
        return 0;
    }
    ch_geo_cam_t cam;
    ch_geo__rec_to_cam(ctx->idx, r, &cam);
    memset(x, 0, sizeof(*x));
    x->camera_id = cam.id;
    x->agency_id = cam.agency_id;
    x->lat = lat;
    x->lon = lon;
    x->kind = cam.kind;
    x->status = cam.status;
    x->range_m = cam.range_dm * 0.1;
    x->pan_deg = CH_GEO_PAN_UNKNOWN;
    return 0;
}

int ch_geo_area(const ch_geo_t *idx, const ch_geo_polygon_t *poly, const ch_geo_filter_t *filter,
                ch_geo_results_t *out)
{
    memset(out, 0, sizeof(*out));
    out->query = CH_GEO_Q_AREA;
    if (poly == NULL || poly->count == 0 || poly->rings[0].count < 4) {
        return CH_EINVAL;
    }
    area_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.idx = idx;
    ch_geo__filter_prepare(idx, filter, &ctx.fp);
    if (ctx.fp.impossible) {
        return 0;
    }
    geo_poly_t gp;
    ch_geo__poly_init(&gp, poly);
    ctx.gp = &gp;
    int rc = visit_bbox(idx, gp.s, gp.w, gp.n, gp.e, area_visit, &ctx);
    ch_geo__poly_fini(&gp);
    if (rc != 0) {
        ch_free(ctx.items);
        return rc;
    }
    /* When the cap was hit, which cameras made it depends on cell order; sorting by id at least
     * makes the page stable for the same index. */
    if (ctx.n > 1) {
        qsort(ctx.items, ctx.n, sizeof(ch_geo_result_t), cmp_by_id);
    }
    out->items = ctx.items;
    out->count = ctx.n;
    out->truncated = ctx.truncated;
    return 0;
}

/* ---- path ------------------------------------------------------------------------------- */

typedef struct path_ctx {
    const ch_geo_t *idx;
    geo_filter_prep_t fp;
    const geo_frame_t *f;
    double radius_m, along;
    ch_geo_result_t *items;
    size_t n, cap;
    uint32_t *map; /* result index + 1 by camera id, 0 = empty */
    size_t map_cap;
    int truncated;
} path_ctx_t;

static size_t id_hash(int64_t id)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
    return (size_t)(x ^ (x >> 29));
}

static uint32_t *path_slot(path_ctx_t *ctx, int64_t id)
{
    size_t mask = ctx->map_cap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = ctx->map[i];
        if (v == 0 || ctx->items[v - 1].camera_id == id) {
            return &ctx->map[i];
        }
    }
}

static void path_map_grow(path_ctx_t *ctx)
{
    ch_free(ctx->map);
    ctx->map_cap *= 2;
    ctx->map = ch_calloc(ctx->map_cap, sizeof(uint32_t));
    for (size_t i = 0; i < ctx->n; i++) {
        *path_slot(ctx, ctx->items[i].camera_id) = (uint32_t)(i + 1);
    }
}

static int path_visit(void *vctx, const geo_rec_t *r)
{
    path_ctx_t *ctx = vctx;
    if (!ch_geo__filter_pass(ctx->idx, &ctx->fp, r)) {
        return 0;
    }
    ch_geo_cam_t cam;
    ch_geo_result_t res;
    if (!ch_geo__rec_sees(ctx->idx, ctx->f, r, ctx->radius_m, &cam, &res)) {
        return 0;
    }
    uint32_t *slot = path_slot(ctx, cam.id);
    if (*slot != 0) {
        ch_geo_result_t *x = &ctx->items[*slot - 1];
        double from = x->from_m;
        if (ch_geo_result_cmp(&res, x) < 0) {
            *x = res; /* keep the reason at its best point */
        }
        x->from_m = from;
        x->to_m = ctx->along;
        return 0;
    }
    ch_geo_result_t *x = results_push(&ctx->items, &ctx->n, &ctx->cap, &ctx->truncated);
    if (x == NULL) {
        return 0;
    }
    res.from_m = res.to_m = ctx->along;
    *x = res;
    *slot = (uint32_t)ctx->n;
    if (2 * ctx->n > ctx->map_cap) {
        path_map_grow(ctx);
    }
    return 0;
}

static int cmp_along(const void *a, const void *b)
{
    const ch_geo_result_t *x = a, *y = b;
    if (x->from_m != y->from_m) {
        return x->from_m < y->from_m ? -1 : 1;
    }
    return ch_geo_result_cmp(x, y);
}

/*
 * Samples the path every `step` metres (segments interpolated linearly in lat/lon, longitude
 * wrapped so that a segment across the antimeridian takes the short way) and asks, at each
 * sample, which cameras see it. Sampling rather than exact segment-sector intersection keeps one
 * model (ch_geo__eval) for every query; at 5 m steps a stretch is off by at most 5 m.
 */
int ch_geo_path(const ch_geo_t *idx, const ch_geo_line_t *line, double radius_m,
                const ch_geo_filter_t *filter, ch_geo_results_t *out)
{
    memset(out, 0, sizeof(*out));
    out->query = CH_GEO_Q_PATH;
    if (line == NULL || line->count < 2 || line->count > CH_GEO_MAX_VERTICES ||
        !isfinite(radius_m) || radius_m <= 0.0 || radius_m > CH_GEO_MAX_RADIUS_M) {
        return CH_EINVAL;
    }
    double total = 0.0;
    for (size_t i = 0; i + 1 < line->count; i++) {
        const ch_geo_point_t *a = &line->pts[i], *b = &line->pts[i + 1];
        if (!isfinite(a->lat) || !isfinite(a->lon) || !isfinite(b->lat) || !isfinite(b->lon)) {
            return CH_EINVAL;
        }
        total += ch_geo_distance_m(a->lat, a->lon, b->lat, b->lon, NULL);
    }
    double step = CH_GEO_PATH_STEP_M;
    if (total / step > CH_GEO_PATH_MAX_SAMPLES) {
        step = total / CH_GEO_PATH_MAX_SAMPLES;
    }
    path_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.idx = idx;
    ctx.radius_m = radius_m;
    ctx.map_cap = 256;
    ctx.map = ch_calloc(ctx.map_cap, sizeof(uint32_t));
    ch_geo__filter_prepare(idx, filter, &ctx.fp);
    double search = idx->max_range_dm * 0.1 + GEO_RANGE_SLACK_M;
    search = search > radius_m ? radius_m : search;
    double along = 0.0;
    for (size_t i = 0; i + 1 < line->count && !ctx.fp.impossible; i++) {
        const ch_geo_point_t *a = &line->pts[i], *b = &line->pts[i + 1];
        double len = ch_geo_distance_m(a->lat, a->lon, b->lat, b->lon, NULL);
        double dlon = b->lon - a->lon;
        dlon = dlon > 180.0 ? dlon - 360.0 : (dlon < -180.0 ? dlon + 360.0 : dlon);
        size_t nseg = (size_t)ceil(len / step);
        nseg = nseg == 0 ? 1 : nseg;
        for (size_t j = (i == 0 ? 0 : 1); j <= nseg; j++) {
            double t = (double)j / (double)nseg;
            double lon = a->lon + t * dlon;
            lon = lon > 180.0 ? lon - 360.0 : (lon < -180.0 ? lon + 360.0 : lon);
            geo_frame_t f;
            ch_geo__frame_init(&f, a->lat + t * (b->lat - a->lat), lon);
            ctx.f = &f;
            ctx.along = along + t * len;
            (void)ch_geo__visit_radius(idx, &f, search, path_visit, &ctx);
        }
        along += len;
    }
    ch_free(ctx.map);
    if (ctx.n > 1) {
        qsort(ctx.items, ctx.n, sizeof(ch_geo_result_t), cmp_along);
    }
    out->items = ctx.items;
    out->count = ctx.n;
    out->truncated = ctx.truncated;
    return 0;
}

/* ---- coverage --------------------------------------------------------------------------- */

void ch_geo_coverage_fini(ch_geo_coverage_t *c)
{
    if (c == NULL) {
        return;
    }
    ch_free(c->inside);
    ch_free(c->seen);
    ch_free(c->maybe);
    memset(c, 0, sizeof(*c));
}

typedef struct cover_ctx {
    const ch_geo_t *idx;
    geo_filter_prep_t fp;
    ch_geo_coverage_t *c;
    geo_frame_t *row_frames; /* one per row, at the row's centre latitude */
    double m_per_dlat, m_per_dlon;
} cover_ctx_t;

/* Counts, for one camera, every inside cell whose centre it sees. Only the cells within its
 * range box are tried. */
static int cover_visit(void *vctx, const geo_rec_t *r)
{
    cover_ctx_t *ctx = vctx;
    ch_geo_coverage_t *c = ctx->c;
    if (!ch_geo__filter_pass(ctx->idx, &ctx->fp, r)) {
        return 0;
    }
    ch_geo_cam_t cam;
    ch_geo__rec_to_cam(ctx->idx, r, &cam);
    double lat = cam.lat_e7 * 1e-7, lon = cam.lon_e7 * 1e-7;
    double reach = cam.range_dm * 0.1 + 1.0;
    double drow = reach / ctx->m_per_dlat / c->dlat, dcol = reach / ctx->m_per_dlon / c->dlon;
    double fr = (lat - c->south) / c->dlat, fc = (lon - c->west) / c->dlon;
    int64_t r0 = (int64_t)floor(fr - drow - 1), r1 = (int64_t)ceil(fr + drow + 1);
    int64_t c0 = (int64_t)floor(fc - dcol - 1), c1 = (int64_t)ceil(fc + dcol + 1);
    r0 = r0 < 0 ? 0 : r0;
    c0 = c0 < 0 ? 0 : c0;
    r1 = r1 >= (int64_t)c->rows ? (int64_t)c->rows - 1 : r1;
    c1 = c1 >= (int64_t)c->cols ? (int64_t)c->cols - 1 : c1;
    for (int64_t row = r0; row <= r1; row++) {
        geo_frame_t f = ctx->row_frames[row];
        for (int64_t col = c0; col <= c1; col++) {
            size_t i = (size_t)row * c->cols + (size_t)col;
            if (!c->inside[i]) {
                continue;
            }
            f.lon = c->west + ((double)col + 0.5) * c->dlon;
            ch_geo_visibility_t v = ch_geo__eval(&f, &cam, NULL);
            if (v == CH_GEO_VIS_IN_FOV || v == CH_GEO_VIS_NEEDS_PAN) {
                c->seen[i] += c->seen[i] < UINT16_MAX;
            } else if (v == CH_GEO_VIS_HEADING_UNKNOWN) {
                c->maybe[i] += c->maybe[i] < UINT16_MAX;
            }
        }
    }
    return 0;
}

/* The grid of a coverage request, and whether it is within the bounds (see
 * ch_geo_coverage_check). */
typedef struct cover_grid {
    double s, w, n, e;
    geo_frame_t mid;
    double m_per_dlat, m_per_dlon, dlat, dlon, rows, cols;
} cover_grid_t;

static int cover_grid(const ch_geo_polygon_t *poly, double cell_m, cover_grid_t *g, char *err,
                      size_t errlen)
{
    if (errlen > 0) {
        err[0] = '\0';
    }
    if (poly == NULL || poly->count == 0 || poly->rings[0].count < 4) {
        snprintf(err, errlen, "the polygon needs an outer ring of at least 4 positions");
        return CH_EINVAL;
    }
    if (!isfinite(cell_m) || cell_m < CH_GEO_MIN_CELL_M) {
        snprintf(err, errlen, "cell_m must be at least %g", CH_GEO_MIN_CELL_M);
        return CH_EINVAL;
    }
    poly_bbox(poly, &g->s, &g->w, &g->n, &g->e);
    ch_geo__frame_init(&g->mid, (g->s + g->n) / 2.0, (g->w + g->e) / 2.0);
    g->m_per_dlat = g->mid.m_rad * GEO_DEG2RAD;
    g->m_per_dlon = g->mid.n_rad * g->mid.cos_lat * GEO_DEG2RAD;
    if (g->m_per_dlon < 1.0) {
        /* A box at the pole has no east-west extent to grid. */
        snprintf(err, errlen, "a polygon at a pole has no grid");
        return CH_EINVAL;
    }
    g->dlat = cell_m / g->m_per_dlat;
    g->dlon = cell_m / g->m_per_dlon;
    g->rows = fmax(1.0, ceil((g->n - g->s) / g->dlat));
    g->cols = fmax(1.0, ceil((g->e - g->w) / g->dlon));
    if (g->rows * g->cols > CH_GEO_MAX_COVER_CELLS) {
        snprintf(err, errlen,
                 "the grid would have %.0f cells, more than %d: choose a larger cell_m or a "
                 "smaller area",
                 g->rows * g->cols, CH_GEO_MAX_COVER_CELLS);
        return CH_ETOOBIG;
    }
    size_t vertices = 0;
    for (size_t r = 0; r < poly->count; r++) {
        vertices += poly->rings[r].count;
    }
    if ((double)vertices * g->rows > CH_GEO_MAX_COVER_VERTEX_ROWS) {
        snprintf(err, errlen,
                 "the polygon's %zu positions times the grid's %.0f rows exceed %d: choose a "
                 "larger cell_m or a simpler polygon",
                 vertices, g->rows, CH_GEO_MAX_COVER_VERTEX_ROWS);
        return CH_ETOOBIG;
    }
    return 0;
}

int ch_geo_coverage_check(const ch_geo_polygon_t *poly, double cell_m, char *err, size_t errlen)
{
    cover_grid_t g;
    return cover_grid(poly, cell_m, &g, err, errlen);
}

int ch_geo_coverage(const ch_geo_t *idx, const ch_geo_polygon_t *poly, double cell_m,
                    const ch_geo_filter_t *filter, ch_geo_coverage_t *out)
{
    memset(out, 0, sizeof(*out));
    cover_grid_t g;
    int rc = cover_grid(poly, cell_m, &g, NULL, 0);
    if (rc != 0) {
        return rc;
    }
    double s = g.s, w = g.w, n = g.n, e = g.e;
    geo_frame_t mid = g.mid;
    double m_per_dlat = g.m_per_dlat, m_per_dlon = g.m_per_dlon;
    double dlat = g.dlat, dlon = g.dlon, rows = g.rows, cols = g.cols;
    out->south = s;
    out->west = w;
    out->dlat = dlat;
    out->dlon = dlon;
    out->cell_m = cell_m;
    out->rows = (size_t)rows;
    out->cols = (size_t)cols;
    size_t total = out->rows * out->cols;
    out->inside = ch_calloc(total, 1);
    out->seen = ch_calloc(total, sizeof(uint16_t));
    out->maybe = ch_calloc(total, sizeof(uint16_t));
    cover_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.idx = idx;
    ctx.c = out;
    ctx.m_per_dlat = m_per_dlat;
    ctx.m_per_dlon = m_per_dlon;
    ctx.row_frames = ch_malloc(out->rows * sizeof(geo_frame_t));
    /* Which cells are inside: one scanline per row (the row's crossings computed once) instead
     * of every cell against every edge, which took 10 s for 10,000 positions at 5 m. */
    geo_poly_t gp;
    ch_geo__poly_init(&gp, poly);
    geo_row_scratch_t sc;
    memset(&sc, 0, sizeof(sc));
    for (size_t r = 0; r < out->rows; r++) {
        double lat = s + ((double)r + 0.5) * dlat;
        ch_geo__frame_init(&ctx.row_frames[r], lat, w);
        out->cells_inside +=
            ch_geo__poly_row(&gp, &sc, lat, w, dlon, out->cols, out->inside + r * out->cols);
    }
    ch_geo__row_scratch_fini(&sc);
    ch_geo__poly_fini(&gp);
    ch_geo__filter_prepare(idx, filter, &ctx.fp);
    if (!ctx.fp.impossible) {
        /* Cameras outside the polygon see into it: widen the box by the largest range. */
        double reach = idx->max_range_dm * 0.1 + 1.0;
        double mlat = reach / m_per_dlat;
        double cmin = cos(fmin(89.0, fmax(fabs(s), fabs(n)) + mlat) * GEO_DEG2RAD);
        double mlon = reach / (mid.n_rad * cmin * GEO_DEG2RAD);
        (void)visit_bbox(idx, s - mlat, w - mlon, n + mlat, e + mlon, cover_visit, &ctx);
    }
    ch_free(ctx.row_frames);
    for (size_t i = 0; i < total; i++) {
        if (!out->inside[i]) {
            continue;
        }
        if (out->seen[i] > 0) {
            out->cells_seen++;
        } else if (out->maybe[i] > 0) {
            out->cells_maybe++;
        } else {
            out->cells_blind++;
        }
    }
    return 0;
}
