/*
 * geo: the cameras that actually see a place, a path or an area.
 *
 * An in-memory spatial index over every located camera (a grid of ~250 m cells, records of
 * 32 bytes stored inline in their cell), the visibility model of docs/geo.md (distance within
 * range, bearing within the field of view, pan needed, how sure we are) and the queries the
 * REST routes under /api/v1/geo serve: near a point, along a path, inside a polygon, and the
 * coverage grid with its blind spots.
 *
 * Threading: an index is changed from one thread, its owner's (the control loop). Near queries
 * take microseconds and run inline there. The heavy queries (path, area, coverage: up to
 * seconds) run on a worker thread against a reference (ch_geo_ref) that the owner keeps
 * immutable: before changing an index the owner calls ch_geo_unshare, which hands it a private
 * copy when a query still holds the current one. References are taken and dropped on the
 * owner's thread; a worker only reads.
 *
 * Ownership: cameras, geometries and filters passed in are borrowed for the call. Results,
 * geometries filled by the parsers and coverage grids are owned by the caller and released
 * with the matching *_fini. JSON returned is a new reference (json_decref it).
 *
 * Distances: a local equirectangular frame at the query point with the WGS84 ellipsoid's radii
 * of curvature there, corrected to the mid latitude: within 10 km it agrees with the ellipsoid
 * (Vincenty) to well under 1 m below 80 degrees of latitude (docs/geo.md). The poles and the
 * antimeridian are handled without crashing; results there are approximate.
 */
#ifndef CH_GEO_H
#define CH_GEO_H

#include "core/core.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ch_geo ch_geo_t;

/* ---- limits and defaults (docs/geo.md explains each) ----------------------------------- */

#define CH_GEO_MAX_VERTICES     10000   /* per parsed geometry, all rings together */
#define CH_GEO_MAX_LIMIT        1000    /* results of a near query */
#define CH_GEO_DEFAULT_LIMIT    20      /* near query with limit 0 */
#define CH_GEO_MAX_RADIUS_M     10000.0 /* near/path radius */
#define CH_GEO_MAX_AREA_RESULTS 100000  /* area query results (then truncated is set) */
#define CH_GEO_MAX_COVER_CELLS  1000000 /* coverage grid cells */
/* Coverage: polygon positions x grid rows at most. The scanline looks at most at every edge
 * once per row, so this bounds the cost of finding the cells inside (0.3 s on one core for a
 * comb whose every edge crosses every row, 10 ms for a circle): 10,000 positions over 1,000
 * rows (5 km at 5 m), or 1,000 positions over 10,000 rows. */
#define CH_GEO_MAX_COVER_VERTEX_ROWS 10000000
/* Area: edge tests at most (cameras in the box x edges of their latitude band, about 50 ms on
 * one core); a polygon that needs more for the cameras under it is refused (CH_ETOOBIG) rather
 * than worked on for seconds. A district boundary needs a few per camera, so 100,000 cameras
 * under a polygon of 10,000 positions stay well inside. */
#define CH_GEO_MAX_AREA_EDGE_TESTS 20000000
#define CH_GEO_MIN_CELL_M          5.0    /* coverage cell size */
#define CH_GEO_PATH_STEP_M         5.0    /* path sampling step (grows for very long paths) */
#define CH_GEO_PATH_MAX_SAMPLES    200000 /* path samples at most */
#define CH_GEO_PAN_UNKNOWN         (-1.0) /* pan_deg when it cannot be known */

/* ---- camera attributes as the index keeps them -------------------------------------------- */

typedef enum ch_geo_kind {
    CH_GEO_KIND_UNKNOWN = 0,
    CH_GEO_KIND_FIXED = 1,
    CH_GEO_KIND_PTZ = 2,
} ch_geo_kind_t;

typedef enum ch_geo_status {
    CH_GEO_STATUS_ACTIVE = 0,
    CH_GEO_STATUS_INACTIVE = 1,
    CH_GEO_STATUS_MAINTENANCE = 2,
    CH_GEO_STATUS_OTHER = 3, /* any other text a store might hold */
} ch_geo_status_t;

typedef enum ch_geo_visibility {
    CH_GEO_VIS_NONE = 0,            /* not visible (never in results of near/path) */
    CH_GEO_VIS_IN_FOV = 1,          /* within range and within the field of view */
    CH_GEO_VIS_NEEDS_PAN = 2,       /* a PTZ camera that sees it after turning */
    CH_GEO_VIS_HEADING_UNKNOWN = 3, /* within range; where it looks is not known */
} ch_geo_visibility_t;

/* Names as the API prints them ("fixed", "inactive", "in_fov", ...); never NULL. */
const char *ch_geo_kind_name(ch_geo_kind_t k);
const char *ch_geo_status_name(ch_geo_status_t s);
const char *ch_geo_visibility_name(ch_geo_visibility_t v);
/* Parses "fixed"/"ptz"/"unknown" and "active"/"inactive"/"maintenance"; 0 or CH_EINVAL. */
int ch_geo_kind_parse(const char *s, ch_geo_kind_t *out) CH_MUST_CHECK;
int ch_geo_status_parse(const char *s, ch_geo_status_t *out) CH_MUST_CHECK;

/*
 * One camera in the model's own terms, quantised as the index stores it: position in 1e-7
 * degrees, heading and fov in 1/100 degree (UINT16_MAX = unknown), range in decimetres (the
 * effective range: the known one, or the default by kind and pixels, flag range_known says
 * which). The model (ch_geo_evaluate) works on this, so that the index and any brute-force
 * check see exactly the same numbers.
 */
typedef struct ch_geo_cam {
    int64_t id;
    int64_t agency_id;
    int32_t lat_e7, lon_e7;
    uint16_t heading_cdeg; /* 0..35999 or UINT16_MAX */
    uint16_t fov_cdeg;     /* 1..36000 or UINT16_MAX */
    uint32_t range_dm;     /* effective range, > 0 */
    uint32_t pixels_10k;   /* pixels / 10,000, 0 when unknown */
    ch_geo_kind_t kind;
    ch_geo_status_t status;
    int range_known;
} ch_geo_cam_t;

/* Converts a store camera into the model's form (applying the defaults of docs/geo.md).
 * Returns 0, or CH_EINVAL when the camera is not located or its position is not a finite
 * WGS84 position (then it has no place in the index). */
int ch_geo_cam_from_camera(const ch_camera_t *c, ch_geo_cam_t *out) CH_MUST_CHECK;

/* The default range of a camera whose range is unknown, by kind and pixels (0 = unknown). */
double ch_geo_default_range_m(ch_geo_kind_t kind, int64_t pixels);

/* ---- results ------------------------------------------------------------------------------ */

/* One camera in an answer, with the reason it is there. */
typedef struct ch_geo_result {
    int64_t camera_id;
    int64_t agency_id;
    double lat, lon;
    ch_geo_kind_t kind;
    ch_geo_status_t status;
    double distance_m;  /* camera to the point (near), to the nearest point seen (path) */
    double bearing_deg; /* from the camera to that point, 0..360 clockwise from north */
    double range_m;     /* the effective range used */
    ch_geo_visibility_t visibility;
    double pan_deg;      /* turn needed, 0..180, for PTZ cameras with a known heading (0 when it
                            already looks there); CH_GEO_PAN_UNKNOWN when it does not apply or is
                            not known */
    double score;        /* 0..1, higher is better (docs/geo.md) */
    double from_m, to_m; /* path only: the stretch seen, metres along the path */
} ch_geo_result_t;

typedef enum ch_geo_query_kind {
    CH_GEO_Q_NEAR = 0,
    CH_GEO_Q_PATH = 1,
    CH_GEO_Q_AREA = 2,
} ch_geo_query_kind_t;

/* A result array the caller owns (ch_geo_results_fini). */
typedef struct ch_geo_results {
    ch_geo_query_kind_t query;
    ch_geo_result_t *items;
    size_t count;
    int truncated; /* 1 when more matched than were returned (area and path caps) */
} ch_geo_results_t;

void ch_geo_results_fini(ch_geo_results_t *r); /* frees items; r may be NULL */

/* Filters; zero/NULL fields do not filter. Strings are borrowed. */
typedef struct ch_geo_filter {
    const char *purpose; /* exact 설치목적구분 text */
    int64_t agency_id;   /* the provider agency */
    int has_kind;
    ch_geo_kind_t kind;
    int has_status;
    ch_geo_status_t status;
    int exclude_offline; /* leave out inactive, maintenance and other statuses */
} ch_geo_filter_t;

/* ---- the index ---------------------------------------------------------------------------- */

/* A new, empty index with one reference, the caller's (never NULL; allocation aborts on
 * out-of-memory). */
ch_geo_t *ch_geo_new(void);
/* Drops a reference; the last one frees the index. NULL is fine. Owner's thread only. */
void ch_geo_free(ch_geo_t *idx);
/* Takes a reference for a reader (a query on a worker thread): the index stays valid and
 * unchanged until that reference is dropped with ch_geo_free. Owner's thread only. */
ch_geo_t *ch_geo_ref(ch_geo_t *idx);
/*
 * Makes idx safe to change: returns idx itself when the caller holds the only reference, else
 * a private copy (one reference, the caller's) after dropping the caller's reference to idx,
 * which its readers keep until they are done. The caller replaces its pointer with the answer
 * (and tells whoever borrows it). ch_geo_upsert, ch_geo_upsert_cam and ch_geo_remove require
 * an unshared index.
 */
ch_geo_t *ch_geo_unshare(ch_geo_t *idx) CH_MUST_CHECK;

/*
 * Loads every located camera of the store (ch_store_camera_scan_located: one pass over the
 * few columns the index needs) and upserts each. Cameras that cannot be indexed are skipped.
 * Returns 0 or the store's error code; on error the index holds what was loaded so far.
 */
int ch_geo_load(ch_geo_t *idx, ch_store_t *st) CH_MUST_CHECK;

/*
 * Adds a camera or replaces the one with the same id (moved, turned, status changed). A camera
 * that is not located (or has an invalid position) is removed instead, and CH_EINVAL returned
 * for an invalid position of a camera that claims to be located; 0 otherwise.
 */
int ch_geo_upsert(ch_geo_t *idx, const ch_camera_t *c) CH_MUST_CHECK;
/* The same from the model's form (the bench and tests use it). */
int ch_geo_upsert_cam(ch_geo_t *idx, const ch_geo_cam_t *cam, const char *purpose) CH_MUST_CHECK;

/* Removes a camera; 0, or CH_ENOTFOUND when the index does not hold it. */
int ch_geo_remove(ch_geo_t *idx, int64_t id);

/* How many cameras the index holds, and the bytes it uses (records, cells, id map). */
size_t ch_geo_count(const ch_geo_t *idx);
size_t ch_geo_memory_bytes(const ch_geo_t *idx);

/* The purpose (설치목적구분) of an indexed camera, borrowed from the index (valid until the
 * next change), or NULL when the camera has none or is not indexed. */
const char *ch_geo_purpose_of(const ch_geo_t *idx, int64_t id);

/* Copies the indexed form of a camera; 0 or CH_ENOTFOUND. */
int ch_geo_get(const ch_geo_t *idx, int64_t id, ch_geo_cam_t *out) CH_MUST_CHECK;

/* ---- the model ---------------------------------------------------------------------------- */

/*
 * Evaluates whether cam sees the point (lat, lon): fills distance_m, bearing_deg, range_m,
 * visibility, pan_deg and score of out (and the camera fields). Returns the visibility
 * (CH_GEO_VIS_NONE when out of range or outside a fixed camera's field of view). A pure
 * function: the index answers exactly what this answers for each camera.
 */
ch_geo_visibility_t ch_geo_evaluate(const ch_geo_cam_t *cam, double lat, double lon,
                                    ch_geo_result_t *out);

/* Distance in metres and bearing (from a to b, degrees 0..360) in the module's frame. */
double ch_geo_distance_m(double lat_a, double lon_a, double lat_b, double lon_b,
                         double *bearing_deg);

/*
 * The order of results: active cameras before others, then score descending, then distance
 * ascending, then id ascending (the deterministic tie-break). Negative when a comes first.
 */
int ch_geo_result_cmp(const ch_geo_result_t *a, const ch_geo_result_t *b);

/* ---- geometry ----------------------------------------------------------------------------- */

typedef struct ch_geo_point {
    double lat, lon;
} ch_geo_point_t;

typedef struct ch_geo_line {
    ch_geo_point_t *pts;
    size_t count;
} ch_geo_line_t;

/* A closed ring: pts[count - 1] equals pts[0]. */
typedef struct ch_geo_ring {
    ch_geo_point_t *pts;
    size_t count;
} ch_geo_ring_t;

/* rings[0] is the outer ring, the others are holes (GeoJSON). */
typedef struct ch_geo_polygon {
    ch_geo_ring_t *rings;
    size_t count;
} ch_geo_polygon_t;

void ch_geo_line_fini(ch_geo_line_t *l);       /* NULL is fine */
void ch_geo_polygon_fini(ch_geo_polygon_t *p); /* NULL is fine */

/*
 * Strict GeoJSON input. Accepts a geometry object of the right type, or a Feature whose
 * geometry is one. Positions are [lon, lat] or [lon, lat, alt] numbers with lon in -180..180
 * and lat in -90..90; a LineString has >= 2 positions; a Polygon ring has >= 4 positions and
 * is closed (last == first); at most CH_GEO_MAX_VERTICES positions in all. Returns 0 with out
 * filled, CH_EPARSE (malformed) or CH_ETOOBIG (over the limit) with a message naming what is
 * wrong in err (errlen bytes, may be 0), out left empty.
 */
int ch_geo_parse_linestring(const json_t *j, ch_geo_line_t *out, char *err,
                            size_t errlen) CH_MUST_CHECK;
int ch_geo_parse_polygon(const json_t *j, ch_geo_polygon_t *out, char *err,
                         size_t errlen) CH_MUST_CHECK;

/* 1 when the point is inside the polygon (inside the outer ring, outside every hole). */
int ch_geo_polygon_contains(const ch_geo_polygon_t *p, double lat, double lon);

/* ---- queries ------------------------------------------------------------------------------ */

/*
 * The best `limit` (0 = CH_GEO_DEFAULT_LIMIT, at most CH_GEO_MAX_LIMIT) cameras that see the
 * point (lat, lon) from within radius_m (0 < radius_m <= CH_GEO_MAX_RADIUS_M), in the order of
 * ch_geo_result_cmp. filter may be NULL. Returns 0 or CH_EINVAL (bad arguments).
 */
int ch_geo_near(const ch_geo_t *idx, double lat, double lon, double radius_m, size_t limit,
                const ch_geo_filter_t *filter, ch_geo_results_t *out) CH_MUST_CHECK;

/*
 * The cameras within radius_m of some point of the path that see that point, ordered along the
 * path (from_m ascending, then as ch_geo_result_cmp), each with the stretch it sees: from_m and
 * to_m, the first and last sampled point seen, and distance/bearing/visibility/score at its
 * best point. The path is sampled every CH_GEO_PATH_STEP_M metres (more for very long paths).
 * Returns 0 or CH_EINVAL.
 */
int ch_geo_path(const ch_geo_t *idx, const ch_geo_line_t *line, double radius_m,
                const ch_geo_filter_t *filter, ch_geo_results_t *out) CH_MUST_CHECK;

/*
 * The cameras inside the polygon (holes excluded), ordered by id, at most
 * CH_GEO_MAX_AREA_RESULTS (truncated set beyond). Only position counts: distance_m and
 * bearing_deg are 0, visibility CH_GEO_VIS_NONE. Returns 0, CH_EINVAL, or CH_ETOOBIG when
 * the cameras in the box would need more than CH_GEO_MAX_AREA_EDGE_TESTS edge tests.
 */
int ch_geo_area(const ch_geo_t *idx, const ch_geo_polygon_t *poly, const ch_geo_filter_t *filter,
                ch_geo_results_t *out) CH_MUST_CHECK;

/* A coverage grid over a polygon's bounding box, cells of cell_m x cell_m metres in a local
 * frame at the box's centre; row 0 is the south edge, column 0 the west edge. */
typedef struct ch_geo_coverage {
    double south, west; /* the south-west corner of cell (0, 0) */
    double dlat, dlon;  /* a cell's size in degrees */
    double cell_m;
    size_t rows, cols;
    uint8_t *inside;     /* rows*cols: 1 when the cell centre is inside the polygon */
    uint16_t *seen;      /* cameras that see the centre in_fov or after a pan */
    uint16_t *maybe;     /* cameras within range whose heading is unknown */
    size_t cells_inside; /* cells whose centre is inside */
    size_t cells_seen;   /* inside and seen by at least one camera (seen > 0) */
    size_t cells_maybe;  /* inside, seen by none, possibly by some (maybe > 0) */
    size_t cells_blind;  /* inside with seen == 0 and maybe == 0: the blind spots */
} ch_geo_coverage_t;

void ch_geo_coverage_fini(ch_geo_coverage_t *c); /* NULL is fine */

/*
 * Checks the size of a coverage request before any work: 0, CH_EINVAL (cell_m below
 * CH_GEO_MIN_CELL_M or not finite, a bad polygon, a box at a pole) or CH_ETOOBIG (more than
 * CH_GEO_MAX_COVER_CELLS cells, or positions x rows over CH_GEO_MAX_COVER_VERTEX_ROWS), with a
 * message for the client in err (errlen bytes, may be 0) that names the limit.
 */
int ch_geo_coverage_check(const ch_geo_polygon_t *poly, double cell_m, char *err,
                          size_t errlen) CH_MUST_CHECK;

/*
 * Computes the coverage grid of the polygon with cells of cell_m metres (within the bounds of
 * ch_geo_coverage_check). A cell is inside when its centre is (ch_geo_polygon_contains, found
 * with a scanline per row) and seen when a camera's model (ch_geo_evaluate) sees its centre.
 * filter may be NULL. 0, CH_EINVAL or CH_ETOOBIG.
 */
int ch_geo_coverage(const ch_geo_t *idx, const ch_geo_polygon_t *poly, double cell_m,
                    const ch_geo_filter_t *filter, ch_geo_coverage_t *out) CH_MUST_CHECK;

/* ---- JSON for the routes ------------------------------------------------------------------ */

/*
 * {"cameras": [{"id", "agency_id", "lat", "lon", "kind", "status", "distance_m",
 * "bearing_deg", "range_m", "visibility", "pan_deg" (only where it applies), "score",
 * "from_m"/"to_m" (path only)}], "count": n, "truncated": bool}. Area results carry only id,
 * agency_id, lat, lon, kind and status per camera.
 */
json_t *ch_geo_results_to_json(const ch_geo_results_t *r);

/*
 * The cameras an alert for a bell pressed at (lat, lon) names: the near query of
 * GET /api/v1/geo/near within radius_m (the configured alert.bell_radius_m), at most
 * CH_GEO_DEFAULT_LIMIT, inactive and maintenance cameras left out (they show nobody anything),
 * as ch_geo_results_to_json gives them. NULL when idx is NULL or the query is
 * refused (a bad position or radius): the alert then names no cameras.
 */
json_t *ch_geo_bell_cameras(const ch_geo_t *idx, double lat, double lon, double radius_m);

/*
 * A GeoJSON FeatureCollection for the map: one Feature whose geometry is a MultiPolygon of the
 * blind spots (runs of blind cells in a row merged into one rectangle), properties
 * {"blind": true}; one Feature (MultiPolygon) for the cells seen only possibly
 * {"maybe": true}; top-level "stats": {"cell_m", "rows", "cols", "cells_inside",
 * "cells_seen", "cells_maybe", "cells_blind"}; and "grid": {"south", "west", "dlat", "dlon",
 * "rows", "cols", "seen": [...], "maybe": [...]}, the counts of every cell row-major from the
 * south-west corner, null for cells outside the polygon.
 */
json_t *ch_geo_coverage_to_json(const ch_geo_coverage_t *c);

/* ---- the control loop's glue -------------------------------------------------------------- */

/* Parses the query-string filters of the REST routes into f (strings borrowed from the
 * arguments): kind and status names; agency and purpose as given. 0 or CH_EINVAL with
 * err naming the parameter. Any argument may be NULL (not filtered). */
int ch_geo_filter_parse(ch_geo_filter_t *f, const char *purpose, const char *agency,
                        const char *kind, const char *status, const char *exclude_offline,
                        char *err, size_t errlen) CH_MUST_CHECK;

/* ---- the keeper: an index that follows the store's cameras ------------------------------ */

/*
 * The index of a store's cameras kept in step with their changes (geo_keep.c), on the loop of
 * the store handle st (the control loop). Its owner tells it each committed change (for the
 * hub: the registry's "cameras changed" notification); readers find the index in force at
 * *ch_geo_keeper_slot() (it is replaced when a query still holds it, and after a reload), and
 * swapped(ud, idx) is told each replacement (the events engine's reference). Not thread-safe.
 */
typedef struct ch_geo_keeper ch_geo_keeper_t;
struct uv_loop_s;

/* Loads every located camera of st (ch_geo_load) into a new keeper. store_url (copied; NULL:
 * none) opens a handle on the thread pool for a reload, so the loop does not stop for a
 * million cameras. 0, or the store's code with *out NULL. */
int ch_geo_keeper_new(struct uv_loop_s *loop, ch_store_t *st, const char *store_url,
                      ch_geo_keeper_t **out) CH_MUST_CHECK;
/* Who is told that the index was replaced (NULL: nobody). */
void ch_geo_keeper_on_swap(ch_geo_keeper_t *k, void (*swapped)(void *ud, ch_geo_t *idx), void *ud);
/* Where the index in force is: read *slot at each use, never keep it past the loop turn
 * without ch_geo_ref. */
ch_geo_t *const *ch_geo_keeper_slot(const ch_geo_keeper_t *k);
/* Camera id changed: cam is its record as stored now, or NULL to read it from the store (not
 * found: it is removed). A camera that cannot be placed (not located) is not in the index. */
void ch_geo_keeper_camera(ch_geo_keeper_t *k, int64_t id, const ch_camera_t *cam);
/* Many cameras changed (an import): a new index is loaded on the pool and swapped in; when a
 * camera changed meanwhile, it is loaded again on the loop from st, which sees every change.
 * done(ud) (may be NULL) is called on the loop once an index loaded after this call is in
 * force (at once when no store_url was given). */
void ch_geo_keeper_reload(ch_geo_keeper_t *k, void (*done)(void *ud), void *ud);
/* Frees the keeper and drops its reference to the index (readers keep theirs). With a reload
 * on the pool, the keeper is freed when it ends (the loop must run). NULL is fine. */
void ch_geo_keeper_free(ch_geo_keeper_t *k);

#endif /* CH_GEO_H */
/* API-READY */
