/*
 * registry conversion: CSV text to camera and device records, without a store.
 *
 * The input is decoded to UTF-8 in large chunks (one iconv call per megabyte) and streamed
 * through libcsv. Each field is appended to one row buffer; at the end of a row its cells are
 * normalised in place (trimmed, inner whitespace collapsed), and the records built from them
 * point into that buffer or into a per-row arena, so a steady import allocates nothing per
 * cell or per row. The first records are searched for the header (a note line may sit above
 * it); the header's names decide the layout.
 *
 * Line numbers are physical lines (1-based, header included): libcsv reports every line break
 * outside quotes (CSV_REPALL_NL), and breaks inside quoted cells are counted in the cells.
 */
#include "registry/registry_private.h"

#include <assert.h>
#include <csv.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- columns and header names ------------------------------------------------------------ */

enum ch_registry__col {
    COL_AGENCY,
    COL_ROAD,
    COL_LOT,
    COL_PURPOSE,
    COL_COUNT,
    COL_PIXELS,
    COL_DIRECTION,
    COL_RETENTION,
    COL_INSTALLED,
    COL_PHONE,
    COL_LAT,
    COL_LON,
    COL_DATA_DATE,
    COL_CODE,
    COL_MGMT_NO,
    COL_UPDATE_KIND,
    COL_DISTRICT,
    COL_ANSIMI_ADDR,
    COL_BELL_NO,
    COL_PLACE_TYPE,
    COL_PLACE,
    COL_LINK,
    COL_POLICE,
    COL_SECURITY,
    COL_OFFICE,
    COL_FEATURES,
    COL_CHECKED_AT,
    COL_CHECK_RESULT,
    COL_KNOWN, /* a name we know and do not use (번호, 데이터갱신시점, ...) */
    COL__COUNT
};

/* Header names after normalisation (no spaces, quotes, BOM, underscores or a trailing
 * "(...)", ASCII lower case), every variant seen across years and publishers. */
static const struct {
    const char *name;
    int col;
} ch_registry__names[] = {
    {"관리기관명", COL_AGENCY},
    {"관리기관", COL_AGENCY},
    {"관리기관명칭", COL_AGENCY},
    {"소재지도로명주소", COL_ROAD},
    {"도로명주소", COL_ROAD},
    {"소재지지번주소", COL_LOT},
    {"지번주소", COL_LOT},
    {"설치목적구분", COL_PURPOSE},
    {"설치목적", COL_PURPOSE},
    {"카메라대수", COL_COUNT},
    {"카메라수", COL_COUNT},
    {"cctv수량", COL_COUNT},
    {"cctv대수", COL_COUNT},
    {"카메라화소수", COL_PIXELS},
    {"카메라화소", COL_PIXELS},
    {"화소수", COL_PIXELS},
    {"촬영방면정보", COL_DIRECTION},
    {"촬영방면", COL_DIRECTION},
    {"촬영방향", COL_DIRECTION},
    {"보관일수", COL_RETENTION},
    {"보관기간", COL_RETENTION},
    {"설치연월", COL_INSTALLED},
    {"설치년월", COL_INSTALLED},
    {"설치연도", COL_INSTALLED},
    {"설치년도", COL_INSTALLED},
    {"설치일자", COL_INSTALLED},
    {"설치연월일", COL_INSTALLED},
    {"안전비상벨설치연도", COL_INSTALLED},
    {"관리기관전화번호", COL_PHONE},
    {"전화번호", COL_PHONE},
    {"wgs84위도", COL_LAT},
    {"위도", COL_LAT},
    {"latitude", COL_LAT},
    {"lat", COL_LAT},
    {"wgs84경도", COL_LON},
    {"경도", COL_LON},
    {"longitude", COL_LON},
    {"lon", COL_LON},
    {"lng", COL_LON},
    {"데이터기준일자", COL_DATA_DATE},
    {"기준일자", COL_DATA_DATE},
    {"수정일시", COL_DATA_DATE},
    {"개방자치단체코드", COL_CODE},
    {"관리번호", COL_MGMT_NO},
    {"데이터갱신구분", COL_UPDATE_KIND},
    {"자치구", COL_DISTRICT},
    {"시군구", COL_DISTRICT},
    {"안심주소", COL_ANSIMI_ADDR},
    {"안전비상벨관리번호", COL_BELL_NO},
    {"설치장소유형", COL_PLACE_TYPE},
    {"설치위치", COL_PLACE},
    {"연계방식", COL_LINK},
    {"경찰연계유무", COL_POLICE},
    {"경비업체연계유무", COL_SECURITY},
    {"관리사무소연계유무", COL_OFFICE},
    {"부가기능", COL_FEATURES},
    {"최종점검일자", COL_CHECKED_AT},
    {"최종점검결과구분", COL_CHECK_RESULT},
    {"번호", COL_KNOWN},
    {"연번", COL_KNOWN},
    {"순번", COL_KNOWN},
    {"데이터갱신시점", COL_KNOWN},
    {"최종수정시점", COL_KNOWN},
    {"제공기관코드", COL_KNOWN},
    {"제공기관명", COL_KNOWN},
};

enum ch_registry__layout {
    LAYOUT_NONE = 0,
    LAYOUT_CCTV,
    LAYOUT_BELL,
    LAYOUT_ANSIMI,
};

static const char *ch_registry__layout_name(int layout)
{
    switch (layout) {
    case LAYOUT_CCTV:
        return "cctv-standard";
    case LAYOUT_BELL:
        return "emergency-bell";
    case LAYOUT_ANSIMI:
        return "seoul-ansimi";
    }
    return NULL;
}

/* Records to look at for the header before giving up. */
#define CH_REGISTRY__HEADER_SEARCH 30
/* An unterminated quote that swallows more lines than this fails the file instead of one row:
 * the rest of the file would silently vanish into a single cell. */
#define CH_REGISTRY__MAX_SWALLOWED_LINES 100

/* ---- converter state --------------------------------------------------------------------- */

typedef struct ch_registry__conv {
    const ch_import_options_t *opt;
    ch_import_report_t *rep;
    ch_import_row_fn fn;
    void *user;
    char *source_file;
    int rc;    /* first error: stops the conversion */
    char *err; /* its message, when we made it */

    /* line accounting */
    int line;       /* the physical line the next row starts on */
    int pending_cr; /* a CR ended the last row; a LF may follow */
    int row_line;
    int row_newlines;
    int chunk_has_nul; /* the chunk being parsed holds a NUL byte (rare: checked per chunk) */

    /* the row being assembled: field bytes, each NUL-terminated, and their places */
    ch_buf_t bytes;
    size_t *off;
    size_t *len;
    char **cell;
    size_t nf, cap_f;

    /* the header */
    int header_found;
    int records_seen;
    int layout;
    int col[COL__COUNT];
    unsigned keep;    /* CH_STORE_F_* groups the header has no column for */
    size_t ncols;     /* cells up to the last named header cell */
    size_t ncols_all; /* cells in the header, trailing empty ones included */

    ch_registry__map_t dups;  /* row content -> first line */
    ch_registry__map_t sites; /* site key base -> rows seen with it */
    ch_registry__arena_t arena;
    ch_camera_t cam; /* the row's first camera */
    ch_device_t dev;
    ch_buf_t flags;
    ch_buf_t reason;
    ch_buf_t tmp;
    int now_ym;
} ch_registry__conv_t;

static void ch_registry__fail(ch_registry__conv_t *c, int rc, const char *fmt, ...) CH_PRINTF(3, 4);

static void ch_registry__fail(ch_registry__conv_t *c, int rc, const char *fmt, ...)
{
    if (c->rc != 0) {
        return;
    }
    c->rc = rc;
    ch_buf_t b;
    ch_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    ch_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    c->err = ch_buf_steal(&b);
}

/* ---- header ------------------------------------------------------------------------------ */

/* Lower-cases ASCII and drops what varies between publishers: spaces, quotes, BOM, '_', '-'
 * and a trailing parenthesised unit ("카메라화소수(만화소)"). */
static size_t ch_registry__header_key(const char *s, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n && w + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ' || ch == '"' || ch == '\'' || ch == '_' || ch == '-' || ch == '\t') {
            continue;
        }
        if (ch == 0xef && i + 2 < n && (unsigned char)s[i + 1] == 0xbb &&
            (unsigned char)s[i + 2] == 0xbf) {
            i += 2;
            continue;
        }
        if (ch == 0xe3 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
            (unsigned char)s[i + 2] == 0x80) {
            i += 2;
            continue;
        }
        if (ch == '(' && w > 0 && n > 0 && s[n - 1] == ')') {
            break;
        }
        out[w++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    out[w] = '\0';
    return w;
}

/*
 * The groups of record fields a header has no column for. A re-import leaves them as the
 * store has them (ch_store_upsert_opts_t.keep), so that what the API set there survives a file
 * that says nothing of it: a list without coordinates, addresses, 촬영방면정보, ... (the Seoul
 * Ansimi list has none of the last).
 */
static unsigned ch_registry__kept_groups(const int *col)
{
    static const struct {
        int col;
        unsigned group;
    } groups[] = {
        {COL_ROAD, CH_STORE_F_ROAD_ADDRESS},   {COL_LOT, CH_STORE_F_LOT_ADDRESS},
        {COL_PURPOSE, CH_STORE_F_PURPOSE},     {COL_DIRECTION, CH_STORE_F_DIRECTION},
        {COL_PIXELS, CH_STORE_F_PIXELS},       {COL_RETENTION, CH_STORE_F_RETENTION},
        {COL_INSTALLED, CH_STORE_F_INSTALLED},
    };
    unsigned keep = col[COL_LAT] < 0 || col[COL_LON] < 0 ? CH_STORE_F_POSITION : 0;
    for (size_t i = 0; i < CH_ARRAY_SIZE(groups); i++) {
        if (col[groups[i].col] < 0) {
            keep |= groups[i].group;
        }
    }
    return keep;
}

/*
 * Tries the current record as the header. It is one when at least three names are known and
 * the names decide a layout that has a place (coordinates or an address) to put records.
 */
static int ch_registry__try_header(ch_registry__conv_t *c)
{
    int col[COL__COUNT];
    for (int i = 0; i < COL__COUNT; i++) {
        col[i] = -1;
    }
    int known = 0;
    size_t last_named = 0;
    for (size_t f = 0; f < c->nf; f++) {
        char key[128];
        size_t kn = ch_registry__header_key(c->cell[f], c->len[f], key, sizeof(key));
        if (kn == 0) {
            continue;
        }
        last_named = f + 1;
        for (size_t k = 0; k < CH_ARRAY_SIZE(ch_registry__names); k++) {
            if (strcmp(key, ch_registry__names[k].name) == 0) {
                int cl = ch_registry__names[k].col;
                if (cl != COL_KNOWN && col[cl] < 0) {
                    col[cl] = (int)f;
                }
                known++;
                break;
            }
        }
    }
    if (known < 3) {
        return 0;
    }
    int has_place = (col[COL_LAT] >= 0 && col[COL_LON] >= 0) || col[COL_ROAD] >= 0 ||
                    col[COL_LOT] >= 0 || col[COL_ANSIMI_ADDR] >= 0 || col[COL_PLACE] >= 0;
    int layout = LAYOUT_NONE;
    if (col[COL_BELL_NO] >= 0 || (col[COL_LINK] >= 0 && col[COL_POLICE] >= 0)) {
        layout = LAYOUT_BELL;
    } else if (col[COL_ANSIMI_ADDR] >= 0 ||
               (col[COL_DISTRICT] >= 0 && col[COL_AGENCY] < 0 && col[COL_COUNT] >= 0)) {
        layout = LAYOUT_ANSIMI;
    } else if (col[COL_COUNT] >= 0 || col[COL_PURPOSE] >= 0 || col[COL_DIRECTION] >= 0 ||
               col[COL_PIXELS] >= 0) {
        layout = LAYOUT_CCTV;
    }
    if (layout == LAYOUT_NONE || !has_place) {
        return 0;
    }
    memcpy(c->col, col, sizeof(col));
    c->layout = layout;
    c->keep = ch_registry__kept_groups(col);
    c->ncols = last_named;
    c->ncols_all = c->nf;
    return 1;
}

/* ---- rows -------------------------------------------------------------------------------- */

static ch_slice_t ch_registry__cell(const ch_registry__conv_t *c, int col)
{
    int f = c->col[col];
    if (f < 0 || (size_t)f >= c->nf) {
        return (ch_slice_t){"", 0};
    }
    return (ch_slice_t){c->cell[f], c->len[f]};
}

/* The cell as a C string for a record, or NULL when blank. Cells are NUL-terminated in place. */
static char *ch_registry__cell_str(const ch_registry__conv_t *c, int col)
{
    int f = c->col[col];
    if (f < 0 || (size_t)f >= c->nf || c->len[f] == 0) {
        return NULL;
    }
    return c->cell[f];
}

/* Adds a flag code (once) and a reason to the row's report entry. */
static void ch_registry__flag(ch_registry__conv_t *c, const char *code, const char *fmt, ...)
    CH_PRINTF(3, 4);

static void ch_registry__flag(ch_registry__conv_t *c, const char *code, const char *fmt, ...)
{
    size_t cl = strlen(code);
    const char *p = c->flags.data;
    int have = 0;
    while (p != NULL && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == cl && memcmp(p, code, n) == 0) {
            have = 1;
            break;
        }
        p = e ? e + 1 : NULL;
    }
    if (!have) {
        if (c->flags.len) {
            ch_buf_append_char(&c->flags, ',');
        }
        ch_buf_append(&c->flags, code, cl);
    }
    if (c->reason.len) {
        ch_buf_append_str(&c->reason, "; ");
    }
    va_list ap;
    va_start(ap, fmt);
    ch_buf_vappendf(&c->reason, fmt, ap);
    va_end(ap);
}

/* Appends a cell value, quoted and clipped, to the row's reason text. */
static void ch_registry__flag_value(ch_registry__conv_t *c, ch_slice_t v)
{
    ch_buf_append_str(&c->reason, " \"");
    ch_registry__append_clipped(&c->reason, v.ptr, v.len, 40);
    ch_buf_append_char(&c->reason, '"');
}

static void ch_registry__skip(ch_registry__conv_t *c, const char *fmt, ...) CH_PRINTF(2, 3);

static void ch_registry__skip(ch_registry__conv_t *c, const char *fmt, ...)
{
    ch_buf_t b;
    ch_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    ch_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    ch_registry__report_skip(c->rep, c->row_line, b.data ? b.data : "");
    ch_buf_fini(&b);
}

/* A site's key base: the publisher's 관리번호 when there is one, else a hash of the cells that
 * identify the site. The n-th row with the same base in one file gets "~n", so rows that
 * repeat a site (publishers that list one camera per row) keep distinct, stable keys. */
static const char *ch_registry__key_base(ch_registry__conv_t *c, const char *prefix,
                                         const ch_slice_t *parts, size_t nparts)
{
    ch_slice_t no = ch_registry__cell(c, COL_MGMT_NO);
    char base[160];
    size_t pl = strlen(prefix);
    memcpy(base, prefix, pl);
    if (no.len > 0 && no.len < 100) {
        memcpy(base + pl, ":no:", 4);
        memcpy(base + pl + 4, no.ptr, no.len);
        base[pl + 4 + no.len] = '\0';
    } else {
        uint64_t h = CH_REGISTRY__FNV_OFFSET;
        for (size_t i = 0; i < nparts; i++) {
            h = ch_registry__fnv1a(h, parts[i].ptr, parts[i].len);
            h = ch_registry__fnv1a(h, "\x1f", 1);
        }
        uint8_t be[8];
        for (int i = 0; i < 8; i++) {
            be[i] = (uint8_t)(h >> (56 - 8 * i));
        }
        base[pl] = ':';
        ch_hex_encode(base + pl + 1, 17, be, sizeof(be), 0);
    }
    ch_registry__h128_t hk;
    ch_registry__hash128(base, strlen(base), &hk);
    int found;
    int *seen = ch_registry__map_upsert(&c->sites, hk, 0, &found);
    if (seen == NULL) {
        ch_registry__fail(c, CH_ENOMEM, "out of memory");
        return NULL;
    }
    (*seen)++;
    if (*seen > 1) {
        return ch_registry__arena_numbered(&c->arena, base, strlen(base), "~", (size_t)*seen);
    }
    return ch_registry__arena_strndup(&c->arena, base, strlen(base));
}

/* Position checks shared by every layout: sets located/lat/lon and flags the row. */
static int ch_registry__position(ch_registry__conv_t *c, double *lat, double *lon)
{
    ch_slice_t la = ch_registry__cell(c, COL_LAT);
    ch_slice_t lo = ch_registry__cell(c, COL_LON);
    ch_coord_verdict_t v = ch_registry_check_coords(la.ptr, la.len, lo.ptr, lo.len, lat, lon);
    switch (v) {
    case CH_COORD_OK:
        return 1;
    case CH_COORD_COARSE:
        ch_registry__flag(c, "coarse-coords", "%s", ch_registry__coord_reason(v));
        return 1;
    case CH_COORD_SWAPPED:
        ch_registry__flag(c, "swapped-coords", "%s", ch_registry__coord_reason(v));
        return 1;
    default:
        ch_registry__flag(c, "unlocated", "unlocated: %s", ch_registry__coord_reason(v));
        if (v != CH_COORD_BLANK) {
            ch_buf_append_str(&c->reason, " (");
            ch_registry__append_clipped(&c->reason, la.ptr, la.len, 24);
            ch_buf_append_char(&c->reason, ',');
            ch_registry__append_clipped(&c->reason, lo.ptr, lo.len, 24);
            ch_buf_append_char(&c->reason, ')');
        }
        *lat = 0;
        *lon = 0;
        return 0;
    }
}

static const char *ch_registry__installed(ch_registry__conv_t *c, const char *label)
{
    ch_slice_t s = ch_registry__cell(c, COL_INSTALLED);
    char ym[8];
    const char *why;
    int rc = ch_registry_normalize_installed(s.ptr, s.len, c->now_ym, ym, &why);
    if (rc == 0) {
        return ch_registry__arena_strndup(&c->arena, ym, strlen(ym));
    }
    if (rc < 0) {
        ch_registry__flag(c, "bad-date", "%s", label);
        ch_registry__flag_value(c, s);
        ch_buf_appendf(&c->reason, " %s", why);
    }
    return NULL;
}

static void ch_registry__camera_blank(ch_camera_t *cam)
{
    memset(cam, 0, sizeof(*cam));
    cam->heading_deg = CH_STORE_UNKNOWN_DOUBLE;
    cam->fov_deg = CH_STORE_UNKNOWN_DOUBLE;
    cam->range_m = CH_STORE_UNKNOWN_DOUBLE;
}

/* 카메라대수, with the rules of the header's note: blank, 0, text or more than
 * CH_REGISTRY_MAX_CAMERAS_PER_SITE make one camera and a flag. */
static size_t ch_registry__camera_count(ch_registry__conv_t *c, const char *label)
{
    ch_slice_t s = ch_registry__cell(c, COL_COUNT);
    if (c->col[COL_COUNT] < 0) {
        return 1;
    }
    int64_t n;
    if (s.len == 0) {
        ch_registry__flag(c, "bad-count", "%s blank: 1 camera assumed", label);
        return 1;
    }
    if (ch_registry__parse_count(s.ptr, s.len, &n) != 0) {
        ch_registry__flag(c, "bad-count", "%s", label);
        ch_registry__flag_value(c, s);
        ch_buf_append_str(&c->reason, " is not a number: 1 camera assumed");
        return 1;
    }
    if (n == 0) {
        ch_registry__flag(c, "bad-count", "%s 0: 1 camera assumed", label);
        return 1;
    }
    if (n > CH_REGISTRY_MAX_CAMERAS_PER_SITE) {
        ch_registry__flag(c, "bad-count", "%s %lld is implausible for one site: 1 camera made",
                          label, (long long)n);
        return 1;
    }
    return (size_t)n;
}

/* Hands the row's records to the callback and counts them. */
static void ch_registry__emit(ch_registry__conv_t *c, ch_import_row_t *row)
{
    ch_import_report_t *rep = c->rep;
    rep->sites++;
    rep->cameras += (long)row->camera_count;
    rep->devices += row->device ? 1 : 0;
    if (row->camera != NULL && !row->camera->located) {
        rep->unlocated += (long)row->camera_count;
    }
    if (row->device && !row->device->located) {
        rep->unlocated++;
    }
    if (c->flags.len) {
        ch_registry__report_flag(rep, c->row_line, c->flags.data, c->reason.data);
    }
    if (c->fn != NULL) {
        int rc = c->fn(c->user, row);
        if (rc != 0 && c->rc == 0) {
            c->rc = rc;
        }
    }
}

/* Rows of the national CCTV standard data and of the Seoul Ansimi list. */
static void ch_registry__convert_cctv(ch_registry__conv_t *c)
{
    int ansimi = c->layout == LAYOUT_ANSIMI;
    const char *agency = c->opt && c->opt->agency && *c->opt->agency ? c->opt->agency : NULL;
    if (agency == NULL && ansimi) {
        ch_slice_t d = ch_registry__cell(c, COL_DISTRICT);
        if (d.len > 0) {
            agency = ch_registry__arena_printf(&c->arena, "서울특별시 %.*s", (int)d.len, d.ptr);
        }
    }
    if (agency == NULL) {
        agency = ch_registry__cell_str(c, COL_AGENCY);
    }
    if (agency == NULL) {
        ch_registry__skip(c, ansimi ? "자치구 is blank (give the agency with --agency)"
                                    : "관리기관명 is blank (give the agency with --agency)");
        return;
    }

    double lat, lon;
    int located = ch_registry__position(c, &lat, &lon);
    size_t n = ch_registry__camera_count(c, ansimi ? "CCTV 수량" : "카메라대수");

    int64_t pixels = 0;
    ch_slice_t px = ch_registry__cell(c, COL_PIXELS);
    if (ch_registry_parse_pixels(px.ptr, px.len, &pixels) != 0) {
        ch_registry__flag(c, "bad-pixels", "카메라화소수");
        ch_registry__flag_value(c, px);
        ch_buf_append_str(&c->reason, " is not a pixel count");
    }
    int retention = 0;
    ch_slice_t rt = ch_registry__cell(c, COL_RETENTION);
    if (rt.len > 0) {
        int64_t d;
        if (ch_registry__parse_count(rt.ptr, rt.len, &d) != 0 ||
            d > CH_REGISTRY_MAX_RETENTION_DAYS) {
            ch_registry__flag(c, "bad-retention", "보관일수");
            ch_registry__flag_value(c, rt);
            ch_buf_append_str(&c->reason, " ignored");
        } else {
            retention = (int)d;
        }
    }
    const char *installed = ch_registry__installed(c, "설치연월");

    ch_slice_t dir = ch_registry__cell(c, COL_DIRECTION);
    ch_direction_t dv;
    ch_registry_parse_direction(dir.ptr, dir.len, &dv);

    const char *status = located ? "active" : "unlocated";
    ch_slice_t upd = ch_registry__cell(c, COL_UPDATE_KIND);
    if (upd.len == 1 && (upd.ptr[0] == 'D' || upd.ptr[0] == 'd')) {
        status = "inactive";
        ch_registry__flag(c, "deleted",
                          "데이터갱신구분 D: deleted by the publisher, kept inactive");
    }

    char *road = ch_registry__cell_str(c, COL_ROAD);
    char *lot = ch_registry__cell_str(c, COL_LOT);
    char *addr = ansimi ? ch_registry__cell_str(c, COL_ANSIMI_ADDR) : NULL;
    const char *site = addr ? addr : road ? road : lot;
    if (site == NULL) {
        site = ch_registry__arena_printf(&c->arena, "%s CCTV (line %d)", agency, c->row_line);
        ch_registry__flag(c, "no-address", "no address: named after the agency and line");
    }

    ch_slice_t parts[7];
    size_t np = 0;
    parts[np++] = (ch_slice_t){agency, strlen(agency)};
    parts[np++] = ch_registry__cell(c, ansimi ? COL_ANSIMI_ADDR : COL_ROAD);
    parts[np++] = ch_registry__cell(c, COL_LOT);
    parts[np++] = ch_registry__cell(c, COL_LAT);
    parts[np++] = ch_registry__cell(c, COL_LON);
    parts[np++] = ch_registry__cell(c, COL_PURPOSE);
    const char *base = ch_registry__key_base(c, ansimi ? "ansimi" : "cctv", parts, np);
    if (base == NULL) {
        return;
    }
    char *flags =
        c->flags.len ? ch_registry__arena_strndup(&c->arena, c->flags.data, c->flags.len) : NULL;

    /* The site's first camera; the others differ only in their numbers (registry.h). */
    ch_camera_t *cam = &c->cam;
    {
        ch_registry__camera_blank(cam);
        cam->name = ch_registry__arena_numbered(&c->arena, site, strlen(site), " #", 1);
        cam->located = located;
        cam->lat = lat;
        cam->lon = lon;
        cam->road_address = road;
        cam->lot_address = lot;
        cam->purpose = ch_registry__cell_str(c, COL_PURPOSE);
        cam->kind = (char *)dv.kind;
        cam->heading_deg = dv.heading_deg;
        cam->fov_deg = dv.fov_deg;
        cam->range_m = dv.range_m;
        cam->pixels = pixels;
        cam->retention_days = retention;
        cam->installed_ym = (char *)installed;
        cam->status = (char *)status;
        cam->direction = ch_registry__cell_str(c, COL_DIRECTION);
        cam->note = dv.keep_as_note ? cam->direction : NULL;
        cam->flags = flags;
        cam->source_file = c->source_file;
        cam->source_line = c->row_line;
        cam->source_key = ch_registry__arena_numbered(&c->arena, base, strlen(base), "#", 1);
    }
    ch_import_row_t row = {
        .line = c->row_line,
        .agency_name = agency,
        .agency_phone = ch_registry__cell_str(c, COL_PHONE),
        .agency_code = ch_registry__cell_str(c, COL_CODE),
        .camera = cam,
        .camera_count = n,
        .device = NULL,
        .keep = c->keep,
    };
    ch_registry__emit(c, &row);
}

/* Adds "key": cell to the attribute object when the cell is not blank; Y/N become booleans. */
static void ch_registry__attr(ch_registry__conv_t *c, json_t *o, const char *key, int col, int yn)
{
    ch_slice_t s = ch_registry__cell(c, col);
    if (s.len == 0) {
        return;
    }
    if (yn && s.len == 1 && (s.ptr[0] == 'Y' || s.ptr[0] == 'N')) {
        json_object_set_new(o, key, json_boolean(s.ptr[0] == 'Y'));
        return;
    }
    json_t *v = json_stringn(s.ptr, s.len);
    if (v != NULL) {
        json_object_set_new(o, key, v);
    }
}

/* Rows of the national emergency-bell standard data: one device each. */
static void ch_registry__convert_bell(ch_registry__conv_t *c)
{
    const char *agency = c->opt && c->opt->agency && *c->opt->agency
                             ? c->opt->agency
                             : ch_registry__cell_str(c, COL_AGENCY);
    if (agency == NULL) {
        ch_registry__skip(c, "관리기관명 is blank (give the agency with --agency)");
        return;
    }
    double lat, lon;
    int located = ch_registry__position(c, &lat, &lon);
    const char *installed = ch_registry__installed(c, "안전비상벨설치연도");

    json_t *attrs = json_object();
    ch_registry__attr(c, attrs, "bell_no", COL_BELL_NO, 0);
    ch_registry__attr(c, attrs, "purpose", COL_PURPOSE, 0);
    ch_registry__attr(c, attrs, "place_type", COL_PLACE_TYPE, 0);
    ch_registry__attr(c, attrs, "place", COL_PLACE, 0);
    ch_registry__attr(c, attrs, "link", COL_LINK, 0);
    ch_registry__attr(c, attrs, "police_link", COL_POLICE, 1);
    ch_registry__attr(c, attrs, "security_link", COL_SECURITY, 1);
    ch_registry__attr(c, attrs, "office_link", COL_OFFICE, 1);
    ch_registry__attr(c, attrs, "features", COL_FEATURES, 0);
    if (installed != NULL) {
        json_object_set_new(attrs, "installed", json_string(installed));
    }
    ch_registry__attr(c, attrs, "last_check", COL_CHECKED_AT, 0);
    ch_registry__attr(c, attrs, "last_check_ok", COL_CHECK_RESULT, 1);
    /* Sorted keys: the canonical text the API writes too, so "unchanged" compares equal. */
    char *text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(attrs);
    char *attr_text = text ? ch_registry__arena_strndup(&c->arena, text, strlen(text)) : NULL;
    free(text);

    char *road = ch_registry__cell_str(c, COL_ROAD);
    char *lot = ch_registry__cell_str(c, COL_LOT);
    char *place = ch_registry__cell_str(c, COL_PLACE);
    char *bell_no = ch_registry__cell_str(c, COL_BELL_NO);
    const char *name = place ? place : road ? road : lot;
    if (name == NULL) {
        name = ch_registry__arena_printf(&c->arena, "%s 비상벨 %s (line %d)", agency,
                                         bell_no ? bell_no : "", c->row_line);
        ch_registry__flag(c, "no-address", "no address: named after the agency and line");
    }

    ch_slice_t parts[7];
    size_t np = 0;
    parts[np++] = (ch_slice_t){agency, strlen(agency)};
    parts[np++] = ch_registry__cell(c, COL_BELL_NO);
    parts[np++] = ch_registry__cell(c, COL_ROAD);
    parts[np++] = ch_registry__cell(c, COL_LOT);
    parts[np++] = ch_registry__cell(c, COL_PLACE);
    parts[np++] = ch_registry__cell(c, COL_LAT);
    parts[np++] = ch_registry__cell(c, COL_LON);
    const char *base = ch_registry__key_base(c, "bell", parts, np);
    if (base == NULL) {
        return;
    }

    ch_device_t *d = &c->dev;
    memset(d, 0, sizeof(*d));
    d->name = (char *)name;
    d->kind = (char *)"emergency-bell";
    d->located = located;
    d->lat = lat;
    d->lon = lon;
    d->road_address = road;
    d->lot_address = lot;
    d->status = (char *)(located ? "active" : "unlocated");
    d->attrs = attr_text;
    d->flags =
        c->flags.len ? ch_registry__arena_strndup(&c->arena, c->flags.data, c->flags.len) : NULL;
    d->source_file = c->source_file;
    d->source_line = c->row_line;
    d->source_key = (char *)base;
    ch_import_row_t row = {
        .line = c->row_line,
        .agency_name = agency,
        .agency_phone = ch_registry__cell_str(c, COL_PHONE),
        .agency_code = ch_registry__cell_str(c, COL_CODE),
        .camera = NULL,
        .camera_count = 0,
        .device = d,
        .keep = c->keep,
    };
    ch_registry__emit(c, &row);
}

/*
 * A complete record. Before the header: is it the header? After: checks the shape, drops
 * exact duplicates, converts.
 */
static void ch_registry__record(ch_registry__conv_t *c)
{
    for (size_t f = 0; f < c->nf; f++) {
        size_t n = c->len[f];
        c->cell[f] = ch_registry__normalize_cell(c->bytes.data + c->off[f], &n);
        c->len[f] = n;
    }
    if (!c->header_found) {
        if (ch_registry__try_header(c)) {
            c->header_found = 1;
            c->rep->header_line = c->row_line;
            c->rep->layout = ch_strdup(ch_registry__layout_name(c->layout));
        } else if (++c->records_seen >= CH_REGISTRY__HEADER_SEARCH) {
            ch_registry__fail(c, CH_EPARSE,
                              "no recognizable header in the first %d records (expected names "
                              "such as 관리기관명, 카메라대수, WGS84위도)",
                              CH_REGISTRY__HEADER_SEARCH);
        }
        return;
    }
    /* A row of only empty cells (",,,,") is padding that spreadsheets leave; not a row. */
    size_t used = 0;
    for (size_t f = 0; f < c->nf; f++) {
        used += c->len[f];
    }
    if (used == 0) {
        return;
    }
    c->rep->rows++;
    if (c->nf < c->ncols) {
        ch_registry__skip(c, "malformed row: %zu cells, the header has %zu", c->nf, c->ncols);
        return;
    }
    /* More cells than the header: an unquoted comma has shifted the row (a shifted row whose
     * last cell is blank looks like padding, so even empty extra cells do not pass). Fewer
     * trailing empty cells than the header's padding columns are fine. */
    for (size_t f = c->ncols; f < c->nf; f++) {
        if (c->len[f] > 0 || f >= c->ncols_all) {
            ch_registry__skip(c,
                              "malformed row: %zu cells, the header has %zu (a comma in an "
                              "unquoted cell?)",
                              c->nf, c->ncols_all);
            return;
        }
    }
    ch_buf_reset(&c->tmp);
    for (size_t f = 0; f < c->ncols; f++) {
        ch_buf_append(&c->tmp, c->cell[f], c->len[f]);
        ch_buf_append_char(&c->tmp, '\x1f');
    }
    ch_registry__h128_t h;
    ch_registry__hash128(c->tmp.data, c->tmp.len, &h);
    int found;
    int *first = ch_registry__map_upsert(&c->dups, h, c->row_line, &found);
    if (first == NULL) {
        ch_registry__fail(c, CH_ENOMEM, "out of memory");
        return;
    }
    if (found) {
        ch_registry__skip(c, "duplicate of line %d", *first);
        return;
    }
    ch_registry__arena_reset(&c->arena);
    ch_buf_reset(&c->flags);
    ch_buf_reset(&c->reason);
    if (c->layout == LAYOUT_BELL) {
        ch_registry__convert_bell(c);
    } else {
        ch_registry__convert_cctv(c);
    }
}

/* libcsv: one field. Copied once into the row buffer (NUL bytes, which would cut C strings,
 * become spaces). */
static void ch_registry__on_field(void *s, size_t len, void *data)
{
    ch_registry__conv_t *c = data;
    if (c->rc != 0) {
        return;
    }
    if (c->nf == 0) {
        if (c->pending_cr) {
            c->line++; /* a lone CR ended the previous line */
            c->pending_cr = 0;
        }
        c->row_line = c->line;
        c->row_newlines = 0;
        ch_buf_reset(&c->bytes);
    }
    if (c->nf == c->cap_f) {
        c->cap_f = c->cap_f ? c->cap_f * 2 : 32;
        c->off = ch_realloc(c->off, c->cap_f * sizeof(*c->off));
        c->len = ch_realloc(c->len, c->cap_f * sizeof(*c->len));
        c->cell = ch_realloc(c->cell, c->cap_f * sizeof(*c->cell));
    }
    c->off[c->nf] = c->bytes.len;
    c->len[c->nf] = len;
    c->nf++;
    ch_buf_reserve(&c->bytes, len + 1);
    char *q = c->bytes.data + c->bytes.len;
    if (len > 0) {
        const char *p = s;
        memcpy(q, p, len);
        if (c->chunk_has_nul) {
            for (char *z = memchr(q, '\0', len); z != NULL;
                 z = memchr(z, '\0', (size_t)(q + len - z))) {
                *z = ' ';
            }
        }
        for (const char *nl = memchr(p, '\n', len); nl != NULL;
             nl = memchr(nl + 1, '\n', (size_t)(p + len - nl - 1))) {
            c->row_newlines++;
        }
    }
    q[len] = '\0';
    c->bytes.len += len + 1;
}

/* libcsv: the end of a row (term is the CR or LF that ended it, or -1 at the end of input);
 * with CSV_REPALL_NL also every blank line, as a row without fields. */
static void ch_registry__on_row(int term, void *data)
{
    ch_registry__conv_t *c = data;
    if (c->rc == 0 && c->nf > 0) {
        ch_registry__record(c);
    }
    if (c->nf > 0) {
        c->line += c->row_newlines;
        c->row_newlines = 0;
    }
    c->nf = 0;
    if (term == '\n') {
        c->line++;
        c->pending_cr = 0;
    } else if (term == '\r') {
        if (c->pending_cr) {
            c->line++;
        }
        c->pending_cr = 1;
    }
}

/* The separator: tab when the first lines hold more tabs than commas (Excel's "Unicode text"
 * export), else comma. */
static unsigned char ch_registry__delimiter(const char *p, size_t n)
{
    size_t commas = 0, tabs = 0, lines = 0;
    for (size_t i = 0; i < n && i < 65536 && lines < 30; i++) {
        commas += p[i] == ',';
        tabs += p[i] == '\t';
        lines += p[i] == '\n';
    }
    return tabs > commas ? '\t' : ',';
}

static int ch_registry__now_ym(const ch_import_options_t *opt)
{
    int64_t ms = opt && opt->now_ms ? opt->now_ms : ch_time_now_ms();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
}

static void ch_registry__conv_fini(ch_registry__conv_t *c)
{
    ch_buf_fini(&c->bytes);
    ch_free(c->off);
    ch_free(c->len);
    ch_free(c->cell);
    ch_registry__map_fini(&c->dups);
    ch_registry__map_fini(&c->sites);
    ch_registry__arena_fini(&c->arena);
    ch_buf_fini(&c->flags);
    ch_buf_fini(&c->reason);
    ch_buf_fini(&c->tmp);
    ch_free(c->source_file);
    ch_free(c->err);
}

/* libcsv's allocations go through ours, so fault injection reaches them too. */
static void *ch_registry__csv_realloc(void *p, size_t n)
{
    return ch_try_realloc(p, n);
}

int ch_registry_convert_buffer(const char *name, const char *data, size_t len,
                               const ch_import_options_t *opt, ch_import_row_fn row_fn, void *user,
                               ch_import_report_t *rep, char **err)
{
    ch_registry__conv_t c;
    memset(&c, 0, sizeof(c));
    c.opt = opt;
    c.rep = rep;
    c.fn = row_fn;
    c.user = user;
    c.line = 1;
    c.now_ym = ch_registry__now_ym(opt);
    c.source_file = ch_strdup(name ? name : "");
    for (int i = 0; i < COL__COUNT; i++) {
        c.col[i] = -1;
    }
    if (rep->file == NULL) {
        rep->file = ch_strdup(name ? name : "");
    }
    rep->bytes = len;

    ch_import_encoding_t enc;
    ch_registry__decoder_t *dec = NULL;
    struct csv_parser csv;
    int csv_ready = 0;
    int rc = ch_registry_detect_encoding(data, len, &enc, &c.err);
    if (rc != 0) {
        c.rc = rc;
        goto out;
    }
    rep->encoding = ch_strdup(ch_import_encoding_name(enc));
    /* Room for the rows a file of this size holds (about 150 bytes a row in the national
     * data), so that the maps do not rehash a quarter of a million keys on the way. */
    size_t expect = len / 150 < 4000000 ? len / 150 : 4000000;
    if (ch_registry__map_reserve(&c.dups, expect) != 0 ||
        ch_registry__map_reserve(&c.sites, expect) != 0) {
        ch_registry__fail(&c, CH_ENOMEM, "out of memory");
        goto out;
    }
    rc = ch_registry__decoder_new(enc, data, len, &dec);
    if (rc != 0) {
        ch_registry__fail(&c, rc, "cannot decode %s: %s", ch_import_encoding_name(enc),
                          ch_strerror(rc));
        goto out;
    }
    if (csv_init(&csv, CSV_REPALL_NL) != 0) {
        ch_registry__fail(&c, CH_ENOMEM, "out of memory");
        goto out;
    }
    csv_ready = 1;
    csv_set_realloc_func(&csv, ch_registry__csv_realloc);
    csv_set_free_func(&csv, ch_free);
    csv_set_blk_size(&csv, 4096);

    uint64_t last_progress = 0;
    for (int first = 1;; first = 0) {
        const char *chunk;
        size_t n;
        rc = ch_registry__decoder_next(dec, &chunk, &n);
        if (rc != 0) {
            ch_registry__fail(&c, rc, "cannot decode: %s", ch_strerror(rc));
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (first) {
            csv_set_delim(&csv, ch_registry__delimiter(chunk, n));
        }
        /* A field may have begun in the previous chunk: once a NUL is seen, keep looking. */
        c.chunk_has_nul |= memchr(chunk, '\0', n) != NULL;
        if (csv_parse(&csv, chunk, n, ch_registry__on_field, ch_registry__on_row, &c) != n &&
            c.rc == 0) {
            ch_registry__fail(&c, CH_ENOMEM, "CSV parser: %s", csv_strerror(csv_error(&csv)));
        }
        if (c.rc != 0) {
            goto out;
        }
        uint64_t done = ch_registry__decoder_consumed(dec);
        if (opt && opt->progress && done - last_progress >= (1u << 20)) {
            opt->progress(opt->progress_user, done, len);
            last_progress = done;
        }
    }
    /* A quoted cell still open at the end (libcsv's FIELD_BEGUN state, 2, with quoted set):
     * libcsv would hand it over as if closed; it is a malformed row, or, when it swallowed a
     * large part of the file, a file we must not pretend to have imported. */
    if (c.rc == 0 && csv.quoted && csv.pstate == 2) {
        size_t swallowed = 0;
        for (size_t i = 0; i < csv.entry_pos; i++) {
            swallowed += csv.entry_buf[i] == '\n';
        }
        int start = c.nf > 0 ? c.row_line : c.line + (c.pending_cr ? 1 : 0);
        if (swallowed > CH_REGISTRY__MAX_SWALLOWED_LINES) {
            ch_registry__fail(&c, CH_EPARSE,
                              "a quoted cell that starts on line %d is never closed: the rest "
                              "of the file (%zu lines) would be lost",
                              start, swallowed);
        } else if (c.header_found) {
            c.rep->rows++;
            c.row_line = start;
            ch_registry__skip(&c, "malformed row: a quoted cell is never closed");
        }
        csv_fini(&csv, NULL, NULL, NULL);
    } else if (c.rc == 0) {
        csv_fini(&csv, ch_registry__on_field, ch_registry__on_row, &c);
    }
    if (c.rc == 0 && !c.header_found) {
        ch_registry__fail(&c, CH_EPARSE,
                          "no recognizable header (expected names such as 관리기관명, "
                          "카메라대수, WGS84위도)");
    }
    rep->invalid_bytes = ch_registry__decoder_invalid(dec);
    if (opt && opt->progress && c.rc == 0) {
        opt->progress(opt->progress_user, len, len);
    }

out:
    if (rc == 0) {
        rc = c.rc;
    }
    if (rc != 0) {
        const char *msg = c.err ? c.err : ch_strerror(rc);
        if (rep->error == NULL) {
            rep->error = ch_strdup(msg);
        }
        if (err != NULL && *err == NULL) {
            *err = ch_strdup(msg);
        }
    }
    if (csv_ready) {
        csv_free(&csv);
    }
    ch_registry__decoder_free(dec);
    ch_registry__conv_fini(&c);
    return rc;
}
