/*
 * The spatial index: a grid of ~250 m cells keyed by (row, column), each cell an array of packed
 * 32-byte records, found through an open-addressing map; an id map gives each camera's cell and
 * slot so that upserts and removals are O(1) without a rebuild. Also the near query.
 */
#include "geo/geo_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64's finaliser: cheap and spreads sequential ids and cell keys over the table. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* A fresh id map of cap empty slots. */
static geo_idslot_t *ids_alloc(size_t cap)
{
    geo_idslot_t *t = ch_malloc(cap * sizeof(geo_idslot_t));
    for (size_t i = 0; i < cap; i++) {
        t[i].cell = GEO_SLOT_EMPTY;
        t[i].pos = 0;
    }
    return t;
}

ch_geo_t *ch_geo_new(void)
{
    ch_geo_t *idx = ch_calloc(1, sizeof(*idx));
    idx->row_cols = ch_malloc(GEO_NROWS * sizeof(uint32_t));
    /* Columns per row: as many ~250 m cells as fit around the parallel at the row's centre.
     * Computed once so that a position's cell never depends on anything but the position. */
    double cell_deg = GEO_CELL_LAT_E7 * 1e-7;
    for (uint32_t r = 0; r < GEO_NROWS; r++) {
        double center = -90.0 + (r + 0.5) * cell_deg;
        double n = floor(360.0 * cos(center * GEO_DEG2RAD) / cell_deg);
        idx->row_cols[r] = n < 1.0 ? 1u : (uint32_t)n;
    }
    idx->cellmap_cap = 1024;
    idx->cellmap = ch_calloc(idx->cellmap_cap, sizeof(uint32_t));
    idx->ids_cap = 1024;
    idx->ids = ids_alloc(idx->ids_cap);
    idx->refs = 1;
    return idx;
}

void ch_geo_free(ch_geo_t *idx)
{
    if (idx == NULL) {
        return;
    }
    assert(idx->refs > 0);
    if (--idx->refs > 0) {
        return;
    }
    for (size_t i = 0; i < idx->ncells; i++) {
        ch_free(idx->cells[i].items);
    }
    ch_free_strings(idx->purposes, idx->npurposes);
    ch_free(idx->agencies);
    ch_free(idx->cells);
    ch_free(idx->cellmap);
    ch_free(idx->ids);
    ch_free(idx->row_cols);
    ch_free(idx);
}

ch_geo_t *ch_geo_ref(ch_geo_t *idx)
{
    assert(idx->refs > 0);
    idx->refs++;
    return idx;
}

/* A deep copy with one reference: every array is copied, nothing is shared with idx. At 1.6
 * million cameras this is about 90 MiB of copying; it happens only when a camera changes while
 * a heavy query holds the index, and then once until the next query takes the copy. */
static ch_geo_t *geo_clone(const ch_geo_t *idx)
{
    ch_geo_t *c = ch_calloc(1, sizeof(*c));
    *c = *idx;
    c->refs = 1;
    c->cells = ch_malloc((idx->cells_cap ? idx->cells_cap : 1) * sizeof(geo_cell_t));
    for (size_t i = 0; i < idx->ncells; i++) {
        c->cells[i] = idx->cells[i];
        c->cells[i].items = NULL;
        if (idx->cells[i].cap > 0) {
            c->cells[i].items = ch_malloc(idx->cells[i].cap * sizeof(geo_rec_t));
            memcpy(c->cells[i].items, idx->cells[i].items, idx->cells[i].n * sizeof(geo_rec_t));
        }
    }
    c->cellmap = ch_malloc(idx->cellmap_cap * sizeof(uint32_t));
    memcpy(c->cellmap, idx->cellmap, idx->cellmap_cap * sizeof(uint32_t));
    c->ids = ch_malloc(idx->ids_cap * sizeof(geo_idslot_t));
    memcpy(c->ids, idx->ids, idx->ids_cap * sizeof(geo_idslot_t));
    c->row_cols = ch_malloc(GEO_NROWS * sizeof(uint32_t));
    memcpy(c->row_cols, idx->row_cols, GEO_NROWS * sizeof(uint32_t));
    c->agencies = NULL;
    if (idx->agencies_cap > 0) {
        c->agencies = ch_malloc(idx->agencies_cap * sizeof(int64_t));
        memcpy(c->agencies, idx->agencies, idx->nagencies * sizeof(int64_t));
    }
    c->purposes = NULL;
    if (idx->purposes_cap > 0) {
        c->purposes = ch_malloc(idx->purposes_cap * sizeof(char *));
        for (size_t i = 0; i < idx->npurposes; i++) {
            c->purposes[i] = ch_strdup(idx->purposes[i]);
        }
    }
    return c;
}

ch_geo_t *ch_geo_unshare(ch_geo_t *idx)
{
    assert(idx->refs > 0);
    if (idx->refs == 1) {
        return idx;
    }
    ch_geo_t *c = geo_clone(idx);
    ch_geo_free(idx);
    return c;
}

static uint32_t row_of(int32_t lat_e7)
{
    int64_t r = ((int64_t)lat_e7 + 900000000LL) / GEO_CELL_LAT_E7;
    return r >= GEO_NROWS ? GEO_NROWS - 1 : (uint32_t)r;
}

uint64_t ch_geo__cell_key(const ch_geo_t *idx, int32_t lat_e7, int32_t lon_e7)
{
    uint32_t row = row_of(lat_e7);
    uint64_t ncols = idx->row_cols[row];
    uint64_t col = ((uint64_t)((int64_t)lon_e7 + 1800000000LL) * ncols) / 3600000000ULL;
    if (col >= ncols) {
        col = 0; /* +180 is -180 */
    }
    return (uint64_t)row << 32 | col;
}

const geo_cell_t *ch_geo__cell_find(const ch_geo_t *idx, uint64_t key)
{
    size_t mask = idx->cellmap_cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        uint32_t v = idx->cellmap[i];
        if (v == 0) {
            return NULL;
        }
        if (idx->cells[v - 1].key == key) {
            return &idx->cells[v - 1];
        }
    }
}

static void cellmap_put(ch_geo_t *idx, uint64_t key, uint32_t cell)
{
    size_t mask = idx->cellmap_cap - 1;
    size_t i = mix64(key) & mask;
    while (idx->cellmap[i] != 0) {
        i = (i + 1) & mask;
    }
    idx->cellmap[i] = cell + 1;
}

/* The cell for key, created when missing. Cells are never freed (an emptied cell keeps its
 * slot, which a later camera nearby reuses); the map is kept at most half full. */
static uint32_t cell_get_or_add(ch_geo_t *idx, uint64_t key)
{
    const geo_cell_t *c = ch_geo__cell_find(idx, key);
    if (c != NULL) {
        return (uint32_t)(c - idx->cells);
    }
    if (idx->ncells == idx->cells_cap) {
        idx->cells_cap = idx->cells_cap ? idx->cells_cap * 2 : 256;
        idx->cells = ch_realloc(idx->cells, idx->cells_cap * sizeof(geo_cell_t));
    }
    uint32_t ci = (uint32_t)idx->ncells++;
    memset(&idx->cells[ci], 0, sizeof(geo_cell_t));
    idx->cells[ci].key = key;
    if (2 * idx->ncells > idx->cellmap_cap) {
        ch_free(idx->cellmap);
        idx->cellmap_cap *= 2;
        idx->cellmap = ch_calloc(idx->cellmap_cap, sizeof(uint32_t));
        for (uint32_t i = 0; i < idx->ncells; i++) {
            cellmap_put(idx, idx->cells[i].key, i);
        }
    } else {
        cellmap_put(idx, key, ci);
    }
    return ci;
}

static int64_t slot_id(const ch_geo_t *idx, const geo_idslot_t *s)
{
    return idx->cells[s->cell].items[s->pos].id;
}

static geo_idslot_t *ids_find(const ch_geo_t *idx, int64_t id)
{
    size_t mask = idx->ids_cap - 1;
    for (size_t i = mix64((uint64_t)id) & mask;; i = (i + 1) & mask) {
        if (idx->ids[i].cell == GEO_SLOT_EMPTY) {
            return NULL;
        }
        if (slot_id(idx, &idx->ids[i]) == id) {
            return &idx->ids[i];
        }
    }
}

static void ids_put(ch_geo_t *idx, int64_t id, uint32_t cell, uint32_t pos)
{
    size_t mask = idx->ids_cap - 1;
    size_t i = mix64((uint64_t)id) & mask;
    while (idx->ids[i].cell != GEO_SLOT_EMPTY) {
        i = (i + 1) & mask;
    }
    idx->ids[i] = (geo_idslot_t){cell, pos};
}

/* Grows the id map at 4/5 full: 1.6 million cameras fit 2^21 slots (16 MiB). */
static void ids_reserve(ch_geo_t *idx)
{
    if (5 * (idx->count + 1) <= 4 * idx->ids_cap) {
        return;
    }
    geo_idslot_t *old = idx->ids;
    size_t old_cap = idx->ids_cap;
    idx->ids_cap *= 2;
    idx->ids = ids_alloc(idx->ids_cap);
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].cell != GEO_SLOT_EMPTY) {
            ids_put(idx, slot_id(idx, &old[i]), old[i].cell, old[i].pos);
        }
    }
    ch_free(old);
}

/* Deletes a slot with backward shifting, so that lookups need no tombstones. Every record the
 * slots point to must still be in place (the caller moves records afterwards). */
static void ids_delete(ch_geo_t *idx, geo_idslot_t *slot)
{
    size_t mask = idx->ids_cap - 1;
    size_t i = (size_t)(slot - idx->ids);
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (idx->ids[j].cell == GEO_SLOT_EMPTY) {
            break;
        }
        size_t home = mix64((uint64_t)slot_id(idx, &idx->ids[j])) & mask;
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        int in_between = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_between) {
            idx->ids[i] = idx->ids[j];
            i = j;
        }
    }
    idx->ids[i].cell = GEO_SLOT_EMPTY;
}

/* Small dictionaries: agency ids and purpose texts as 16-bit indexes in the records. */
static int agency_ix(ch_geo_t *idx, int64_t agency_id, uint16_t *out)
{
    for (size_t i = 0; i < idx->nagencies; i++) {
        if (idx->agencies[i] == agency_id) {
            *out = (uint16_t)i;
            return 0;
        }
    }
    if (idx->nagencies >= GEO_MAX_DICT) {
        return CH_ETOOBIG;
    }
    if (idx->nagencies == idx->agencies_cap) {
        idx->agencies_cap = idx->agencies_cap ? idx->agencies_cap * 2 : 64;
        idx->agencies = ch_realloc(idx->agencies, idx->agencies_cap * sizeof(int64_t));
    }
    idx->agencies[idx->nagencies] = agency_id;
    *out = (uint16_t)idx->nagencies++;
    return 0;
}

static int purpose_lookup(const ch_geo_t *idx, const char *p, uint16_t *out)
{
    for (size_t i = 0; i < idx->npurposes; i++) {
        if (strcmp(idx->purposes[i], p) == 0) {
            *out = (uint16_t)i;
            return 0;
        }
    }
    return CH_ENOTFOUND;
}

static int purpose_ix(ch_geo_t *idx, const char *p, uint16_t *out)
{
    if (p == NULL) {
        *out = GEO_NO_PURPOSE;
        return 0;
    }
    if (purpose_lookup(idx, p, out) == 0) {
        return 0;
    }
    if (idx->npurposes >= GEO_MAX_DICT) {
        return CH_ETOOBIG;
    }
    if (idx->npurposes == idx->purposes_cap) {
        idx->purposes_cap = idx->purposes_cap ? idx->purposes_cap * 2 : 32;
        idx->purposes = ch_realloc(idx->purposes, idx->purposes_cap * sizeof(char *));
    }
    idx->purposes[idx->npurposes] = ch_strdup(p);
    *out = (uint16_t)idx->npurposes++;
    return 0;
}

void ch_geo__rec_to_cam(const ch_geo_t *idx, const geo_rec_t *r, ch_geo_cam_t *out)
{
    out->id = r->id;
    out->agency_id = idx->agencies[r->agency_ix];
    out->lat_e7 = r->lat_e7;
    out->lon_e7 = r->lon_e7;
    out->heading_cdeg = r->heading_cdeg;
    out->fov_cdeg = r->fov_cdeg;
    out->range_dm = r->range_dm;
    out->pixels_10k = r->pixels_10k;
    out->kind = (ch_geo_kind_t)(r->bits & 3);
    out->status = (ch_geo_status_t)((r->bits >> 2) & 3);
    out->range_known = (r->bits >> 4) & 1;
}

int ch_geo_remove(ch_geo_t *idx, int64_t id)
{
    assert(idx->refs == 1); /* a query may be reading it: ch_geo_unshare first */
    if (id == 0) {
        return CH_ENOTFOUND;
    }
    geo_idslot_t *s = ids_find(idx, id);
    if (s == NULL) {
        return CH_ENOTFOUND;
    }
    geo_cell_t *c = &idx->cells[s->cell];
    uint32_t pos = s->pos;
    ids_delete(idx, s);
    if (pos + 1 < c->n) {
        /* Swap-remove: the last record fills the hole, and its id slot learns the new place. */
        geo_idslot_t *moved = ids_find(idx, c->items[c->n - 1].id);
        moved->pos = pos;
        c->items[pos] = c->items[c->n - 1];
    }
    c->n--;
    idx->count--;
    return 0;
}

int ch_geo_upsert_cam(ch_geo_t *idx, const ch_geo_cam_t *cam, const char *purpose)
{
    assert(idx->refs == 1); /* a query may be reading it: ch_geo_unshare first */
    if (cam->id == 0) {
        return CH_EINVAL;
    }
    uint16_t aix, pix;
    int rc = agency_ix(idx, cam->agency_id, &aix);
    if (rc == 0) {
        rc = purpose_ix(idx, purpose, &pix);
    }
    if (rc != 0) {
        return rc;
    }
    geo_rec_t r;
    memset(&r, 0, sizeof(r));
    r.id = cam->id;
    r.lat_e7 = cam->lat_e7;
    r.lon_e7 = cam->lon_e7;
    r.range_dm = cam->range_dm > 0 ? cam->range_dm : 1;
    r.heading_cdeg = cam->heading_cdeg;
    r.fov_cdeg = cam->fov_cdeg;
    r.agency_ix = aix;
    r.purpose_ix = pix;
    r.pixels_10k = (uint16_t)(cam->pixels_10k > 65535 ? 65535 : cam->pixels_10k);
    r.bits = (uint8_t)((cam->kind & 3) | ((cam->status & 3) << 2) | ((cam->range_known & 1) << 4));
    if (r.range_dm > idx->max_range_dm) {
        idx->max_range_dm = r.range_dm;
    }

    uint64_t key = ch_geo__cell_key(idx, r.lat_e7, r.lon_e7);
    geo_idslot_t *s = ids_find(idx, cam->id);
    if (s != NULL && idx->cells[s->cell].key == key) {
        idx->cells[s->cell].items[s->pos] = r; /* same cell: replace in place */
        return 0;
    }
    if (s != NULL) {
        (void)ch_geo_remove(idx, cam->id);
    }
    uint32_t ci = cell_get_or_add(idx, key);
    geo_cell_t *c = &idx->cells[ci];
    if (c->n == c->cap) {
        /* Grow by half: cells stay within ~25% of their size on average. */
        c->cap = c->cap < 4 ? 4 : c->cap + c->cap / 2;
        c->items = ch_realloc(c->items, c->cap * sizeof(geo_rec_t));
    }
    c->items[c->n] = r;
    ids_reserve(idx);
    ids_put(idx, r.id, ci, c->n);
    c->n++;
    idx->count++;
    return 0;
}

int ch_geo_upsert(ch_geo_t *idx, const ch_camera_t *c)
{
    ch_geo_cam_t cam;
    if (ch_geo_cam_from_camera(c, &cam) != 0) {
        (void)ch_geo_remove(idx, c->id);
        return c->located ? CH_EINVAL : 0;
    }
    return ch_geo_upsert_cam(idx, &cam, c->purpose);
}

int ch_geo_get(const ch_geo_t *idx, int64_t id, ch_geo_cam_t *out)
{
    if (id == 0) {
        return CH_ENOTFOUND;
    }
    geo_idslot_t *s = ids_find(idx, id);
    if (s == NULL) {
        return CH_ENOTFOUND;
    }
    ch_geo__rec_to_cam(idx, &idx->cells[s->cell].items[s->pos], out);
    return 0;
}

const char *ch_geo_purpose_of(const ch_geo_t *idx, int64_t id)
{
    geo_idslot_t *s = id != 0 ? ids_find(idx, id) : NULL;
    if (s == NULL) {
        return NULL;
    }
    uint16_t p = idx->cells[s->cell].items[s->pos].purpose_ix;
    return p == GEO_NO_PURPOSE || p >= idx->npurposes ? NULL : idx->purposes[p];
}

size_t ch_geo_count(const ch_geo_t *idx)
{
    return idx->count;
}

size_t ch_geo_memory_bytes(const ch_geo_t *idx)
{
    size_t b = sizeof(*idx) + GEO_NROWS * sizeof(uint32_t);
    b += idx->cells_cap * sizeof(geo_cell_t) + idx->cellmap_cap * sizeof(uint32_t);
    b += idx->ids_cap * sizeof(geo_idslot_t);
    for (size_t i = 0; i < idx->ncells; i++) {
        b += idx->cells[i].cap * sizeof(geo_rec_t);
    }
    b += idx->agencies_cap * sizeof(int64_t) + idx->purposes_cap * sizeof(char *);
    for (size_t i = 0; i < idx->npurposes; i++) {
        b += strlen(idx->purposes[i]) + 1;
    }
    return b;
}

/*
 * Loads the store page by page: 1000 cameras a call keeps each page's memory small and lets the
 * store use its primary-key order (after_id) rather than OFFSET, which would be quadratic.
 */
/* One camera of the store's scan: cameras that cannot be placed are skipped, as ever. */
static int geo_load_one(void *ud, const ch_camera_t *c)
{
    int rc = ch_geo_upsert(ud, c);
    return rc == CH_ETOOBIG ? rc : 0;
}

int ch_geo_load(ch_geo_t *idx, ch_store_t *st)
{
    /* One pass over the located cameras' few columns: paging through full records (and a
     * total per page) took 23 s for 1.6 million cameras. */
    return ch_store_camera_scan_located(st, geo_load_one, idx);
}

void ch_geo__filter_prepare(const ch_geo_t *idx, const ch_geo_filter_t *f, geo_filter_prep_t *p)
{
    p->f = f;
    p->purpose_ix = UINT32_MAX;
    p->impossible = 0;
    if (f == NULL) {
        return;
    }
    if (f->purpose != NULL) {
        uint16_t ix;
        if (purpose_lookup(idx, f->purpose, &ix) == 0) {
            p->purpose_ix = ix;
        } else {
            p->impossible = 1;
        }
    }
}

int ch_geo__filter_pass(const ch_geo_t *idx, const geo_filter_prep_t *p, const geo_rec_t *r)
{
    const ch_geo_filter_t *f = p->f;
    if (f == NULL) {
        return 1;
    }
    if (p->impossible) {
        return 0;
    }
    if (p->purpose_ix != UINT32_MAX && r->purpose_ix != p->purpose_ix) {
        return 0;
    }
    if (f->agency_id != 0 && idx->agencies[r->agency_ix] != f->agency_id) {
        return 0;
    }
    if (f->has_kind && (ch_geo_kind_t)(r->bits & 3) != f->kind) {
        return 0;
    }
    ch_geo_status_t st = (ch_geo_status_t)((r->bits >> 2) & 3);
    if (f->has_status && st != f->status) {
        return 0;
    }
    if (f->exclude_offline && st != CH_GEO_STATUS_ACTIVE) {
        return 0;
    }
    return 1;
}

/*
 * Visits the cells that may hold a camera within radius_m of the frame's origin. Rows come from
 * the latitude band |dlat| * M <= radius. In each row the longitude half-width is radius over
 * the smallest east-west scale the frame's distance gives inside that row (the cosine term is
 * linear in latitude, so its minimum is at a row edge): a camera outside it is farther than the
 * radius under exactly the distance the model uses, so index and model cannot disagree. Near a
 * pole, where that scale reaches zero, the whole row is visited (rows there have few cells).
 */
int ch_geo__visit_radius(const ch_geo_t *idx, const geo_frame_t *f, double radius_m,
                         geo_visit_fn fn, void *ctx)
{
    if (idx->count == 0) {
        return 0;
    }
    double r = radius_m * 1.000001 + 0.01;
    double dlat = r / f->m_rad * GEO_RAD2DEG + 1e-7;
    double lat_lo = f->lat - dlat, lat_hi = f->lat + dlat;
    if (lat_lo < -90.0) {
        lat_lo = -90.0;
    }
    if (lat_hi > 90.0) {
        lat_hi = 90.0;
    }
    uint32_t r_lo = row_of((int32_t)floor(lat_lo * 1e7));
    uint32_t r_hi = row_of((int32_t)ceil(lat_hi * 1e7));
    for (uint32_t row = r_lo; row <= r_hi; row++) {
        double a = -90.0 + (double)row * GEO_CELL_LAT_E7 * 1e-7;
        double b = a + GEO_CELL_LAT_E7 * 1e-7;
        a = a < lat_lo ? lat_lo : a;
        b = b > lat_hi ? lat_hi : b;
        double ca = f->cos_lat - f->sin_lat * (a - f->lat) * GEO_DEG2RAD * 0.5;
        double cb = f->cos_lat - f->sin_lat * (b - f->lat) * GEO_DEG2RAD * 0.5;
        double cmin = ca < cb ? ca : cb;
        uint32_t ncols = idx->row_cols[row];
        int64_t k_lo = 0, k_hi = (int64_t)ncols - 1;
        if (cmin > 1e-9) {
            double dlon = r / (f->n_rad * cmin) * GEO_RAD2DEG + 1e-7;
            if (dlon < 180.0) {
                k_lo = (int64_t)floor((f->lon - dlon + 180.0) / 360.0 * ncols);
                k_hi = (int64_t)floor((f->lon + dlon + 180.0) / 360.0 * ncols);
                if (k_hi - k_lo + 1 >= (int64_t)ncols) {
                    k_lo = 0;
                    k_hi = (int64_t)ncols - 1;
                }
            }
        }
        for (int64_t k = k_lo; k <= k_hi; k++) {
            int64_t col = ((k % (int64_t)ncols) + (int64_t)ncols) % (int64_t)ncols;
            const geo_cell_t *c = ch_geo__cell_find(idx, (uint64_t)row << 32 | (uint64_t)col);
            if (c == NULL) {
                continue;
            }
            for (uint32_t i = 0; i < c->n; i++) {
                int rc = fn(ctx, &c->items[i]);
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    return 0;
}

/* ---- near ------------------------------------------------------------------------------- */

typedef struct near_ctx {
    const ch_geo_t *idx;
    const geo_frame_t *f;
    geo_filter_prep_t fp;
    double radius_m;
    ch_geo_result_t *heap; /* the worst kept result at heap[0] */
    size_t n, limit;
} near_ctx_t;

/* The heap keeps the `limit` best results; its root is the worst of them (max-heap under the
 * result order), so a candidate only has to beat the root. */
static void heap_down(ch_geo_result_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && ch_geo_result_cmp(&h[l], &h[m]) > 0) {
            m = l;
        }
        if (r < n && ch_geo_result_cmp(&h[r], &h[m]) > 0) {
            m = r;
        }
        if (m == i) {
            return;
        }
        ch_geo_result_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(ch_geo_result_t *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (ch_geo_result_cmp(&h[i], &h[p]) <= 0) {
            return;
        }
        ch_geo_result_t t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int near_visit(void *vctx, const geo_rec_t *r)
{
    near_ctx_t *ctx = vctx;
    if (!ch_geo__filter_pass(ctx->idx, &ctx->fp, r)) {
        return 0;
    }
    /* Most candidates are out of their range: reject those on the squared distance before
     * unpacking, with a margin so that borderline cases go to the full evaluation. */
    double x, y, lim = r->range_dm * 0.1 + GEO_RANGE_SLACK_M;
    geo_frame_offset(ctx->f, r->lat_e7 * 1e-7, r->lon_e7 * 1e-7, &x, &y);
    if (x * x + y * y > lim * lim * (1.0 + 1e-9) + 1e-9) {
        return 0;
    }
    ch_geo_cam_t cam;
    ch_geo_result_t res;
    if (!ch_geo__rec_sees(ctx->idx, ctx->f, r, ctx->radius_m, &cam, &res)) {
        return 0;
    }
    if (ctx->n < ctx->limit) {
        ctx->heap[ctx->n] = res;
        heap_up(ctx->heap, ctx->n);
        ctx->n++;
    } else if (ch_geo_result_cmp(&res, &ctx->heap[0]) < 0) {
        ctx->heap[0] = res;
        heap_down(ctx->heap, ctx->n, 0);
    }
    return 0;
}

static int cmp_results(const void *a, const void *b)
{
    return ch_geo_result_cmp(a, b);
}

static int valid_query_point(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 && lon >= -180.0 &&
           lon <= 180.0;
}

int ch_geo_near(const ch_geo_t *idx, double lat, double lon, double radius_m, size_t limit,
                const ch_geo_filter_t *filter, ch_geo_results_t *out)
{
    memset(out, 0, sizeof(*out));
    out->query = CH_GEO_Q_NEAR;
    if (!valid_query_point(lat, lon) || !isfinite(radius_m) || radius_m <= 0.0 ||
        radius_m > CH_GEO_MAX_RADIUS_M || limit > CH_GEO_MAX_LIMIT) {
        return CH_EINVAL;
    }
    if (limit == 0) {
        limit = CH_GEO_DEFAULT_LIMIT;
    }
    geo_frame_t f;
    ch_geo__frame_init(&f, lat, lon);
    near_ctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.idx = idx;
    ctx.f = &f;
    ctx.radius_m = radius_m;
    ctx.limit = limit;
    ch_geo__filter_prepare(idx, filter, &ctx.fp);
    if (ctx.fp.impossible) {
        return 0;
    }
    ctx.heap = ch_malloc(limit * sizeof(ch_geo_result_t));
    /* No camera sees farther than the largest range indexed, so a larger radius only costs. */
    double search = idx->max_range_dm * 0.1 + GEO_RANGE_SLACK_M;
    if (search > radius_m) {
        search = radius_m;
    }
    (void)ch_geo__visit_radius(idx, &f, search, near_visit, &ctx);
    qsort(ctx.heap, ctx.n, sizeof(ch_geo_result_t), cmp_results);
    out->items = ctx.heap;
    out->count = ctx.n;
    if (ctx.n == 0) {
        ch_free(ctx.heap);
        out->items = NULL;
    }
    return 0;
}
