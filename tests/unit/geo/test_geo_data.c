/*
 * The real Busan and Daejeon CCTV files (tests/data/cctv) as data: every row with a usable
 * position is indexed, a camera is found at its own position, and index and brute force agree
 * on queries among real, clustered and duplicated positions. The rows are read with a minimal
 * CSV reader here (quotes, CRLF, CP949 through iconv) rather than through the registry, so that
 * the geo test links with the geo module alone; the direction and pixel rules below are the
 * registry's (docs/internals/registry.md) in short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <iconv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo/geo.h"

typedef struct row_cam {
    ch_camera_t cam;
    char purpose[64];
} row_cam_t;

typedef struct dataset {
    row_cam_t *rows;
    size_t n, cap, located;
} dataset_t;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = ch_malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static char *cp949_to_utf8(const char *in, size_t len, size_t *out_len)
{
    iconv_t cd = iconv_open("UTF-8", "CP949");
    assert_true(cd != (iconv_t)-1);
    size_t cap = len * 2 + 16, left_out = cap, left_in = len;
    char *out = ch_malloc(cap), *op = out;
    char *ip = (char *)in;
    while (left_in > 0) {
        if (iconv(cd, &ip, &left_in, &op, &left_out) == (size_t)-1) {
            ip++; /* a byte the table lacks: skip it, the numbers we need are ASCII */
            left_in--;
        }
    }
    iconv_close(cd);
    *out_len = (size_t)(op - out);
    out[*out_len] = '\0';
    return out;
}

/* Splits the next CSV record (quotes, doubled quotes, CRLF) into at most 32 cells, in place.
 * Returns the number of cells, 0 at the end. */
static int next_record(char **pp, char *end, char *cells[32])
{
    char *p = *pp;
    if (p >= end) {
        return 0;
    }
    int n = 0;
    char *w = p;
    cells[n++] = w;
    int quoted = 0;
    while (p < end) {
        char ch = *p++;
        if (quoted) {
            if (ch == '"' && p < end && *p == '"') {
                *w++ = '"';
                p++;
            } else if (ch == '"') {
                quoted = 0;
            } else {
                *w++ = ch;
            }
        } else if (ch == '"') {
            quoted = 1;
        } else if (ch == ',') {
            *w++ = '\0';
            if (n < 32) {
                cells[n++] = w;
            }
        } else if (ch == '\n') {
            break;
        } else if (ch != '\r') {
            *w++ = ch;
        }
    }
    *w = '\0';
    *pp = p;
    return n;
}

static int col_of(char **hdr, int n, const char *a, const char *b)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(hdr[i], a) == 0 || (b != NULL && strcmp(hdr[i], b) == 0)) {
            return i;
        }
    }
    fail_msg("no column %s", a);
    return -1;
}

/* The registry's direction table, in short. */
static void direction(const char *d, ch_camera_t *c)
{
    c->kind = "unknown";
    if (strstr(d, "360") != NULL) {
        c->kind = "ptz";
        c->fov_deg = 360.0;
    } else if (strstr(d, "회전") != NULL) {
        c->kind = "ptz";
    } else if (strstr(d, "고정") != NULL) {
        c->kind = "fixed";
    } else if (strstr(d, "도 정면") != NULL || strstr(d, "도 단방향") != NULL) {
        c->kind = "fixed";
        c->fov_deg = strtod(d, NULL);
    }
}

static void load_csv(dataset_t *ds, const char *name, int cp949)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", CH_DATA_DIR, name);
    size_t len;
    char *raw = read_file(path, &len);
    char *text = raw;
    if (cp949) {
        text = cp949_to_utf8(raw, len, &len);
        ch_free(raw);
    }
    char *p = text, *end = text + len, *hdr[32], *cells[32];
    int nh = next_record(&p, end, hdr);
    int c_lat = col_of(hdr, nh, "WGS84위도", "위도"), c_lon = col_of(hdr, nh, "WGS84경도", "경도");
    int c_dir = col_of(hdr, nh, "촬영방면정보", NULL), c_px = col_of(hdr, nh, "카메라화소수", NULL);
    int c_purpose = col_of(hdr, nh, "설치목적구분", NULL);
    int n;
    while ((n = next_record(&p, end, cells)) > 0) {
        if (n < nh) {
            continue;
        }
        if (ds->n == ds->cap) {
            ds->cap = ds->cap ? ds->cap * 2 : 4096;
            ds->rows = ch_realloc(ds->rows, ds->cap * sizeof(row_cam_t));
        }
        row_cam_t *r = &ds->rows[ds->n];
        ch_camera_t *c = &r->cam;
        ch_camera_init(c);
        c->id = (int64_t)ds->n + 1;
        c->agency_id = cp949 ? 2 : 1;
        c->status = "active";
        direction(cells[c_dir], c);
        double px = strtod(cells[c_px], NULL);
        c->pixels = px >= 100000 ? (int64_t)px
                                 : (px > 0 && px < 10 ? (int64_t)(px * 1e6) : (int64_t)(px * 1e4));
        snprintf(r->purpose, sizeof(r->purpose), "%s", cells[c_purpose]);
        char *e1, *e2;
        double lat = strtod(cells[c_lat], &e1), lon = strtod(cells[c_lon], &e2);
        if (e1 != cells[c_lat] && e2 != cells[c_lon] && lat >= 33.0 && lat <= 39.5 &&
            lon >= 124.0 && lon <= 132.0) {
            c->located = 1;
            c->lat = lat;
            c->lon = lon;
            ds->located++;
        } else {
            c->status = "unlocated";
        }
        ds->n++;
    }
    ch_free(text);
}

static void test_real_busan_and_daejeon_cameras_are_indexed_and_found(void **state)
{
    (void)state;
    dataset_t ds;
    memset(&ds, 0, sizeof(ds));
    load_csv(&ds, "busan_cctv_std_20241206_utf8_crlf.csv", 0);
    size_t busan = ds.n;
    load_csv(&ds, "daejeon_5gu_cctv_std_20260520_cp949.csv", 1);
    assert_true(busan > 15000 && ds.n - busan > 9000);
    ch_geo_t *idx = ch_geo_new();
    size_t kinds[3] = {0, 0, 0};
    for (size_t i = 0; i < ds.n; i++) {
        ds.rows[i].cam.purpose = ds.rows[i].purpose;
        assert_int_equal(ch_geo_upsert(idx, &ds.rows[i].cam), 0);
        ch_geo_kind_t k;
        if (ch_geo_kind_parse(ds.rows[i].cam.kind, &k) == 0) {
            kinds[k]++;
        }
    }
    assert_int_equal(ch_geo_count(idx), ds.located);
    print_message("rows %zu, located %zu; unknown %zu fixed %zu ptz %zu; %zu bytes\n", ds.n,
                  ds.located, kinds[0], kinds[1], kinds[2], ch_geo_memory_bytes(idx));

    /* Every 50th located camera is found at its own position. */
    for (size_t i = 0; i < ds.n; i += 50) {
        const ch_camera_t *c = &ds.rows[i].cam;
        if (!c->located) {
            continue;
        }
        ch_geo_results_t r;
        assert_int_equal(ch_geo_near(idx, c->lat, c->lon, 1.0, 1000, NULL, &r), 0);
        int found = 0;
        for (size_t k = 0; k < r.count; k++) {
            found |= r.items[k].camera_id == c->id;
        }
        assert_true(found);
        ch_geo_results_fini(&r);
    }

    /* Index and brute force agree near real cameras (dense, duplicated districts). */
    unsigned s = 42;
    size_t answered = 0;
    for (int q = 0; q < 300; q++) {
        s = s * 1103515245u + 12345u;
        const ch_camera_t *c = &ds.rows[(s >> 4) % ds.n].cam;
        if (!c->located) {
            continue;
        }
        double lat = c->lat + ((int)((s >> 8) % 200) - 100) * 1e-5, lon = c->lon;
        ch_geo_results_t got;
        assert_int_equal(ch_geo_near(idx, lat, lon, 300.0, 20, NULL, &got), 0);
        ch_geo_result_t *all = ch_calloc(ds.n, sizeof(*all));
        size_t n = 0;
        for (size_t i = 0; i < ds.n; i++) {
            ch_geo_cam_t cam;
            if (ch_geo_cam_from_camera(&ds.rows[i].cam, &cam) == 0 &&
                ch_geo_evaluate(&cam, lat, lon, &all[n]) != CH_GEO_VIS_NONE &&
                all[n].distance_m <= 300.0) {
                n++;
            }
        }
        qsort(all, n, sizeof(*all), (int (*)(const void *, const void *))ch_geo_result_cmp);
        assert_int_equal(got.count, n < 20 ? n : 20);
        for (size_t k = 0; k < got.count; k++) {
            assert_int_equal(got.items[k].camera_id, all[k].camera_id);
            assert_true(got.items[k].score == all[k].score);
        }
        answered += got.count > 0;
        ch_free(all);
        ch_geo_results_fini(&got);
    }
    assert_true(answered > 200);
    ch_geo_free(idx);
    ch_free(ds.rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_busan_and_daejeon_cameras_are_indexed_and_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
