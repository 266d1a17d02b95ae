/*
 * geo internals shared by the module's .c files: the local frame and the one evaluation of the
 * model that both ch_geo_evaluate and the index use, so that they cannot disagree; the packed
 * record, cells and the index structure.
 */
#ifndef CH_GEO_INTERNAL_H
#define CH_GEO_INTERNAL_H

#include "geo/geo.h"

#include <math.h>
#include <stdint.h>

#define GEO_DEG2RAD (M_PI / 180.0)
#define GEO_RAD2DEG (180.0 / M_PI)

/* WGS84. */
#define GEO_WGS84_A  6378137.0
#define GEO_WGS84_F  (1.0 / 298.257223563)
#define GEO_WGS84_E2 (GEO_WGS84_F * (2.0 - GEO_WGS84_F))

/* A point is within range when its distance is at most the range plus this slack (1 mm), so
 * that a point placed on the border counts whichever way the last bit rounds. */
#define GEO_RANGE_SLACK_M 1e-3
/* The same for the edges of a field of view, in degrees. */
#define GEO_FOV_SLACK_DEG 1e-6

/* Grid: rows of 0.00225 degrees of latitude (about 250 m); each row split into as many columns
 * as make cells about 250 m wide at the row's centre latitude (at least one). */
#define GEO_CELL_LAT_E7 22500
#define GEO_NROWS       80000 /* 180e7 / 22500 */

/* The local frame at a query point: radii of curvature there (metres per radian) and the
 * sine/cosine of its latitude. */
typedef struct geo_frame {
    double lat, lon; /* degrees */
    double m_rad;    /* meridional radius M, metres per radian of latitude */
    double n_rad;    /* prime-vertical radius N, metres per radian of longitude at the equator */
    double sin_lat, cos_lat;
} geo_frame_t;

void ch_geo__frame_init(geo_frame_t *f, double lat, double lon);

/* East (x) and north (y) offsets in metres of the point (lat, lon) from the frame's origin.
 * The longitude difference is wrapped into -180..180 (the antimeridian). The cosine is taken at
 * the mid latitude by a first-order expansion (docs/geo.md: error below 1 cm at 10 km). */
/* lon_to - lon_from in degrees, wrapped into -180..180. */
static inline double geo_dlon(double lon_from, double lon_to)
{
    double dl = lon_to - lon_from;
    if (dl > 180.0) {
        dl -= 360.0;
    } else if (dl < -180.0) {
        dl += 360.0;
    }
    return dl;
}

static inline void geo_frame_offset(const geo_frame_t *f, double lat, double lon, double *x,
                                    double *y)
{
    double dphi = (lat - f->lat) * GEO_DEG2RAD;
    double dl = geo_dlon(f->lon, lon);
    double cosm = f->cos_lat - f->sin_lat * dphi * 0.5;
    if (cosm < 0.0) {
        cosm = 0.0;
    }
    *x = dl * GEO_DEG2RAD * f->n_rad * cosm;
    *y = dphi * f->m_rad;
}

/* Evaluates the model for camera cam seen from the frame's origin (the query point). Fills out
 * when not NULL. This is the single implementation behind ch_geo_evaluate and every query. */
ch_geo_visibility_t ch_geo__eval(const geo_frame_t *f, const ch_geo_cam_t *cam,
                                 ch_geo_result_t *out);

/* The packed record, 32 bytes, stored inline in its cell so that a query walks memory in
 * order. */
typedef struct geo_rec {
    int64_t id;
    int32_t lat_e7, lon_e7;
    uint32_t range_dm;
    uint16_t heading_cdeg, fov_cdeg;
    uint16_t agency_ix;  /* into idx->agencies */
    uint16_t purpose_ix; /* into idx->purposes, GEO_NO_PURPOSE when none */
    uint16_t pixels_10k; /* saturated at 65535 */
    uint8_t bits;        /* kind (2 bits), status (2 bits), range_known (1 bit) */
    uint8_t pad;
} geo_rec_t;

#define GEO_NO_PURPOSE 0xFFFFu
#define GEO_MAX_DICT   0xFFF0u

typedef struct geo_cell {
    uint64_t key; /* row << 32 | col */
    geo_rec_t *items;
    uint32_t n, cap;
} geo_cell_t;

/* Open-addressing maps (linear probing, power-of-two capacity). */
/* The id map's slot: where a camera's record is. The id itself is read from the record, which
 * halves the map (8 bytes a slot, about 10 bytes a camera at scale). */
typedef struct geo_idslot {
    uint32_t cell; /* GEO_SLOT_EMPTY when free */
    uint32_t pos;
} geo_idslot_t;

#define GEO_SLOT_EMPTY UINT32_MAX

struct ch_geo {
    geo_cell_t *cells;
    size_t ncells, cells_cap;
    uint32_t *cellmap; /* cell index + 1, 0 = empty; keyed by cell key */
    size_t cellmap_cap;
    geo_idslot_t *ids;
    size_t ids_cap, count;
    uint32_t *row_cols; /* columns per row */
    int64_t *agencies;
    size_t nagencies, agencies_cap;
    char **purposes;
    size_t npurposes, purposes_cap;
    uint32_t max_range_dm; /* the largest range ever indexed (never shrinks) */
    int refs;              /* owners (ch_geo_ref); changed only when 1 (ch_geo_unshare) */
};

/* Cell key of a position. */
uint64_t ch_geo__cell_key(const ch_geo_t *idx, int32_t lat_e7, int32_t lon_e7);
/* The cell with this key, or NULL. */
const geo_cell_t *ch_geo__cell_find(const ch_geo_t *idx, uint64_t key);
/* Unpacks a record into the model's form. */
void ch_geo__rec_to_cam(const ch_geo_t *idx, const geo_rec_t *r, ch_geo_cam_t *out);
/* Unpacks record r into *cam and evaluates it from frame f into *res: 1 when the camera sees
 * the point within radius_m metres, 0 when not (a query's candidate then goes no further). */
static inline int ch_geo__rec_sees(const ch_geo_t *idx, const geo_frame_t *f, const geo_rec_t *r,
                                   double radius_m, ch_geo_cam_t *cam, ch_geo_result_t *res)
{
    ch_geo__rec_to_cam(idx, r, cam);
    return ch_geo__eval(f, cam, res) != CH_GEO_VIS_NONE && !(res->distance_m > radius_m);
}
/* 1 when the record passes the filter. purpose_ix is the resolved purpose (GEO_NO_PURPOSE + 1
 * means "asked for a purpose that no camera has": nothing passes); see ch_geo__filter_prepare. */
typedef struct geo_filter_prep {
    const ch_geo_filter_t *f;
    uint32_t purpose_ix; /* UINT32_MAX when not filtered */
    int impossible;      /* the filter can match nothing */
} geo_filter_prep_t;
void ch_geo__filter_prepare(const ch_geo_t *idx, const ch_geo_filter_t *f, geo_filter_prep_t *p);
int ch_geo__filter_pass(const ch_geo_t *idx, const geo_filter_prep_t *p, const geo_rec_t *r);

/*
 * Calls fn for every record whose cell may hold a point within radius_m of the frame origin
 * under the frame's distance (a superset: the caller evaluates). Stops and returns fn's value
 * when it is non-zero.
 */
typedef int (*geo_visit_fn)(void *ctx, const geo_rec_t *r);
int ch_geo__visit_radius(const ch_geo_t *idx, const geo_frame_t *f, double radius_m,
                         geo_visit_fn fn, void *ctx);

/*
 * A polygon prepared for many point tests. Its edges (every ring; horizontal ones left out, as
 * a horizontal line never crosses them) are binned into latitude bands over the polygon's
 * extent, in ring order within a band, so that a point or a grid row looks only at the edges of
 * its band instead of every edge. Each edge keeps the two ring positions it joins exactly as
 * ch_geo_polygon_contains reads them, and the tests below use its very predicate and
 * arithmetic, so they answer bit for bit what that straightforward test answers.
 */
typedef struct geo_edge {
    double yi, xi, yj, xj; /* pts[i] and pts[j] = pts[i - 1] of the ring */
    uint32_t ring;
} geo_edge_t;

typedef struct geo_poly {
    double s, w, n, e;     /* the outer ring's bounding box */
    double band_s, band_k; /* band of lat: floor((lat - band_s) * band_k), clamped */
    geo_edge_t *edges;
    size_t nedges;
    uint32_t *band_start; /* nbands + 1 offsets into band_edges */
    uint32_t *band_edges; /* edge indexes, ring order within each band */
    size_t nbands;
    size_t nrings;
    size_t band_entries; /* the length of band_edges */
} geo_poly_t;

/* Prepares poly (valid rings of >= 4 positions; borrowed only for the call). */
void ch_geo__poly_init(geo_poly_t *gp, const ch_geo_polygon_t *poly);
void ch_geo__poly_fini(geo_poly_t *gp);
/* 1 when the point is inside (ch_geo_polygon_contains' answer); *tests (may be NULL) grows by
 * the edges looked at. */
int ch_geo__poly_contains(const geo_poly_t *gp, double lat, double lon, size_t *tests);

/* One grid row's crossings, reused from row to row (ch_geo__poly_row). */
typedef struct geo_row_scratch {
    uint32_t *col;   /* per crossing: the first column whose centre is at or east of it */
    uint32_t *ring;  /* per crossing: its ring */
    uint32_t *order; /* crossing indexes bucketed by col */
    size_t cap;
    uint32_t *start; /* cols + 2 bucket offsets */
    size_t start_cap;
    uint8_t *parity; /* per ring */
} geo_row_scratch_t;

void ch_geo__row_scratch_fini(geo_row_scratch_t *sc);
/*
 * The scanline: marks inside[col] = 1 for every col of 0..cols-1 whose point (lat, west +
 * (col + 0.5) * dlon) is inside, leaving the others untouched; returns how many it marked. The
 * row's crossings with the band's edges are computed once, each placed at the first column
 * centre it lies west of (a bucket per column: no sort), and the row is swept from west to
 * east with one parity per ring: O(edges of the band + cols).
 */
size_t ch_geo__poly_row(const geo_poly_t *gp, geo_row_scratch_t *sc, double lat, double west,
                        double dlon, size_t cols, uint8_t *inside);

#endif /* CH_GEO_INTERNAL_H */
