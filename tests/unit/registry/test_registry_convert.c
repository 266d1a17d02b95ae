/*
 * Unit tests of CSV to record conversion without a store: layouts and header variants, cell
 * clean-up, validation, duplicates, malformed rows, line numbers, keys. Variants that the real
 * files lack are built here as small synthetic files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry/registry.h"

#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-11-25T00:00:00Z: the reference "now" for date checks. */
#define NOW_MS 1795564800000LL

/* ---- a collector of converted records ------------------------------------------------------- */

typedef struct cam {
    int line;
    char *agency, *name, *kind, *status, *flags, *note, *installed, *key, *road, *lot;
    char *purpose, *direction, *source_file;
    double fov, heading, range, lat, lon;
    int located, retention;
    int64_t pixels;
} got_cam_t;

typedef struct dev {
    char *agency, *name, *status, *attrs, *key, *flags;
    int located;
    double lat, lon;
} got_dev_t;

typedef struct got {
    got_cam_t cams[256];
    size_t ncams;
    got_dev_t devs[16];
    size_t ndevs;
    char *agency_phone, *agency_code;
    ch_import_report_t rep;
    int rc;
    char *err;
} got_t;

static char *dup_or_null(const char *s)
{
    return s ? ch_strdup(s) : NULL;
}

/* Camera i of a site from its first camera's name or key, which ends in "#1". */
static char *numbered(const char *first, size_t i)
{
    size_t n = strlen(first);
    assert_true(n >= 2 && strcmp(first + n - 2, "#1") == 0);
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*s%zu", (int)(n - 1), first, i + 1);
    return ch_strdup(buf);
}

static int collect(void *user, ch_import_row_t *row)
{
    got_t *g = user;
    ch_free(g->agency_phone);
    ch_free(g->agency_code);
    g->agency_phone = dup_or_null(row->agency_phone);
    g->agency_code = dup_or_null(row->agency_code);
    for (size_t i = 0; i < row->camera_count && g->ncams < 256; i++) {
        const ch_camera_t *c = row->camera;
        got_cam_t *o = &g->cams[g->ncams++];
        assert_int_equal(c->agency_id, 0);
        o->line = row->line;
        o->agency = dup_or_null(row->agency_name);
        o->name = numbered(c->name, i);
        o->kind = dup_or_null(c->kind);
        o->status = dup_or_null(c->status);
        o->flags = dup_or_null(c->flags);
        o->note = dup_or_null(c->note);
        o->installed = dup_or_null(c->installed_ym);
        o->key = numbered(c->source_key, i);
        o->road = dup_or_null(c->road_address);
        o->lot = dup_or_null(c->lot_address);
        o->purpose = dup_or_null(c->purpose);
        o->direction = dup_or_null(c->direction);
        o->source_file = dup_or_null(c->source_file);
        o->fov = c->fov_deg;
        o->heading = c->heading_deg;
        o->range = c->range_m;
        o->lat = c->lat;
        o->lon = c->lon;
        o->located = c->located;
        o->retention = c->retention_days;
        o->pixels = c->pixels;
        assert_int_equal(c->source_line, row->line);
    }
    if (row->device != NULL && g->ndevs < 16) {
        got_dev_t *o = &g->devs[g->ndevs++];
        o->agency = dup_or_null(row->agency_name);
        o->name = dup_or_null(row->device->name);
        o->status = dup_or_null(row->device->status);
        o->attrs = dup_or_null(row->device->attrs);
        o->key = dup_or_null(row->device->source_key);
        o->flags = dup_or_null(row->device->flags);
        o->located = row->device->located;
        o->lat = row->device->lat;
        o->lon = row->device->lon;
    }
    return 0;
}

static void got_free(got_t *g)
{
    for (size_t i = 0; i < g->ncams; i++) {
        got_cam_t *o = &g->cams[i];
        char *s[] = {o->agency,  o->name,      o->kind,       o->status, o->flags,
                     o->note,    o->installed, o->key,        o->road,   o->lot,
                     o->purpose, o->direction, o->source_file};
        for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++) {
            ch_free(s[k]);
        }
    }
    for (size_t i = 0; i < g->ndevs; i++) {
        got_dev_t *o = &g->devs[i];
        char *s[] = {o->agency, o->name, o->status, o->attrs, o->key, o->flags};
        for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++) {
            ch_free(s[k]);
        }
    }
    ch_free(g->agency_phone);
    ch_free(g->agency_code);
    ch_free(g->err);
    ch_import_report_fini(&g->rep);
    free(g);
}

static got_t *convert_opt(const char *data, size_t len, const char *agency)
{
    got_t *g = calloc(1, sizeof(*g));
    ch_import_options_t opt = {.agency = agency, .now_ms = NOW_MS};
    ch_import_report_init(&g->rep);
    g->rc = ch_registry_convert_buffer("test.csv", data, len, &opt, collect, g, &g->rep, &g->err);
    return g;
}

static got_t *convert(const char *text)
{
    return convert_opt(text, strlen(text), NULL);
}

/* The text in CP949, as publishers' spreadsheets save it. */
static char *to_cp949(const char *utf8, size_t *out_len)
{
    iconv_t cd = iconv_open("CP949", "UTF-8");
    assert_true(cd != (iconv_t)-1);
    size_t inleft = strlen(utf8), cap = inleft * 2 + 16, outleft = cap;
    char *out = malloc(cap), *op = out, *ip = (char *)utf8;
    assert_true(iconv(cd, &ip, &inleft, &op, &outleft) != (size_t)-1);
    iconv_close(cd);
    *out_len = cap - outleft;
    return out;
}

static int has_issue(const ch_import_issue_t *v, size_t n, int line, const char *needle)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].line == line && strstr(v[i].reason, needle) != NULL) {
            return 1;
        }
    }
    return 0;
}

#define STD_HEADER                                                                                                                 \
    "번호,관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수," \
    "촬영방면정보,보관일수,설치연월,관리기관전화번호,WGS84위도,WGS84경도,데이터기준일자\n"

/* ---- layouts ------------------------------------------------------------------------------ */

static void test_standard_row_makes_one_camera_per_declared_count(void **state)
{
    (void)state;
    got_t *g = convert(STD_HEADER "1,부산광역시 중구청,흑교로 74,보수동1가 50-1,다목적,3,200,"
                                  "360도 전방면,30,2018-09,051-600-4172,35.10346759,129.0339846,"
                                  "2022-06-08\n"
                                  "2,부산광역시 중구청,,영주동 284-3,생활방범,1,41,90도 정면,30,"
                                  "201907,051-600-4172,35.10492566,129.0287177,2022-06-08\n");
    assert_int_equal(g->rc, 0);
    assert_string_equal(g->rep.encoding, "UTF-8");
    assert_string_equal(g->rep.layout, "cctv-standard");
    assert_int_equal(g->rep.header_line, 1);
    assert_int_equal(g->rep.rows, 2);
    assert_int_equal(g->rep.cameras, 4);
    assert_int_equal(g->ncams, 4);
    assert_int_equal(g->rep.flagged_count, 0);
    got_cam_t *c = &g->cams[0];
    assert_string_equal(c->agency, "부산광역시 중구청");
    assert_string_equal(c->name, "흑교로 74 #1");
    assert_string_equal(g->cams[2].name, "흑교로 74 #3");
    assert_string_equal(c->kind, "ptz");
    assert_true(c->fov == 360);
    assert_int_equal(c->pixels, 2000000);
    assert_int_equal(c->retention, 30);
    assert_string_equal(c->installed, "2018-09");
    assert_string_equal(c->status, "active");
    assert_int_equal(c->located, 1);
    assert_true(c->lat == 35.10346759);
    assert_string_equal(c->purpose, "다목적");
    assert_string_equal(c->direction, "360도 전방면");
    assert_null(c->note);
    assert_null(c->flags);
    assert_string_equal(c->source_file, "test.csv");
    assert_int_equal(c->line, 2);
    assert_non_null(strstr(c->key, "cctv:"));
    assert_string_not_equal(g->cams[0].key, g->cams[1].key);
    /* No road address: the lot address names the camera. */
    c = &g->cams[3];
    assert_string_equal(c->name, "영주동 284-3 #1");
    assert_string_equal(c->kind, "fixed");
    assert_true(c->fov == 90);
    assert_int_equal(c->pixels, 410000);
    assert_string_equal(c->installed, "2019-07");
    assert_int_equal(c->line, 3);
    got_free(g);
}

/* The same site written in every header variant the data README describes must give the same
 * camera. */
static void test_header_variants_give_the_same_camera(void **state)
{
    (void)state;
    static const char *const variants[] = {
        /* the 2023+ layout with extra columns */
        "개방자치단체코드,관리번호,관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,"
        "카메라대수,카메라화소수,촬영방면정보,보관일수,설치연월,관리기관전화번호,WGS84위도,"
        "WGS84경도,데이터기준일자,데이터갱신구분,데이터갱신시점,최종수정시점\n"
        "3640000,2026364000008,대전광역시 동구청,계족로 191,용운동 431-4,생활방범,2,200,고정,30,"
        "2016-09,042-251-4175,36.3283,127.4540,2026-05-20,I,2026-05-24 22:28:20,\n",
        /* a note line above the header */
        "※ 이 자료는 2026년 5월 기준입니다\n"
        "관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수,"
        "촬영방면정보,보관일수,설치연월,WGS84위도,WGS84경도\n"
        "대전광역시 동구청,계족로 191,용운동 431-4,생활방범,2,200,고정,30,2016-09,36.3283,"
        "127.4540\n",
        /* coordinates first, 위도/경도, 설치년월 */
        "위도,경도,관리기관명,소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,"
        "카메라화소수,촬영방면정보,보관일수,설치년월\n"
        "36.3283,127.4540,대전광역시 동구청,계족로 191,용운동 431-4,생활방범,2,200,고정,30,"
        "201609\n",
        /* a quoted first header cell, trailing empty columns, CRLF */
        "\"관리기관명\",소재지도로명주소,소재지지번주소,설치목적구분,카메라대수,카메라화소수,"
        "촬영방면정보,보관일수,설치연월,WGS84위도,WGS84경도,,\r\n"
        "대전광역시 동구청,계족로 191,용운동 431-4,생활방범,2,200,고정,30,2016-09,36.3283,"
        "127.4540,,\r\n",
        /* a BOM, every cell quoted, padded cells and ideographic spaces */
        "\xEF\xBB\xBF\"관리기관명\",\"소재지도로명주소\",\"소재지지번주소\",\"설치목적구분\","
        "\"카메라대수\",\"카메라화소수\",\"촬영방면정보\",\"보관일수\",\"설치연월\",\"WGS84위도\","
        "\"WGS84경도\"\n"
        "\"\xE3\x80\x80대전광역시  동구청 \",\" 계족로 191\",\"용운동 431-4\",\"생활방범\",\" 2 \","
        "\"200\",\"고정\",\"30\",\"2016-09\",\"36.3283\",\"127.4540\"\n",
        /* tab-separated (Excel's Unicode text export) */
        "관리기관명\t소재지도로명주소\t소재지지번주소\t설치목적구분\t카메라대수\t카메라화소수\t"
        "촬영방면정보\t보관일수\t설치연도\tWGS84위도\tWGS84경도\n"
        "대전광역시 동구청\t계족로 191\t용운동 431-4\t생활방범\t2\t200\t고정\t30\t2016-09\t36.3283"
        "\t127.4540\n",
    };
    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        for (int cp949 = 0; cp949 < 2; cp949++) {
            size_t len = strlen(variants[v]);
            char *data = NULL;
            if (cp949) {
                if (variants[v][0] == '\xEF') {
                    continue; /* a BOM says UTF-8 */
                }
                data = to_cp949(variants[v], &len);
            }
            got_t *g = convert_opt(data ? data : variants[v], len, NULL);
            if (g->rc != 0 || g->ncams != 2) {
                fail_msg("variant %zu (cp949 %d): rc=%d cameras=%zu err=%s", v, cp949, g->rc,
                         g->ncams, g->err ? g->err : "");
            }
            assert_string_equal(g->rep.encoding, cp949 ? "CP949" : v == 4 ? "UTF-8-BOM" : "UTF-8");
            assert_string_equal(g->rep.layout, "cctv-standard");
            assert_int_equal(g->rep.rows, 1);
            assert_int_equal(g->rep.skipped_count, 0);
            assert_int_equal(g->rep.flagged_count, 0);
            assert_int_equal(g->rep.header_line, v == 1 ? 2 : 1);
            got_cam_t *c = &g->cams[1];
            assert_string_equal(c->agency, "대전광역시 동구청");
            assert_string_equal(c->name, "계족로 191 #2");
            assert_string_equal(c->lot, "용운동 431-4");
            assert_string_equal(c->kind, "fixed");
            assert_string_equal(c->installed, "2016-09");
            assert_int_equal(c->pixels, 2000000);
            assert_true(c->lat == 36.3283 && c->lon == 127.454);
            assert_int_equal(c->line, v == 1 ? 3 : 2);
            if (v == 0) {
                assert_string_equal(c->key, "cctv:no:2026364000008#2");
                assert_string_equal(g->agency_code, "3640000");
                assert_string_equal(g->agency_phone, "042-251-4175");
            }
            got_free(g);
            free(data);
        }
    }
}

/* Excel's "Unicode text" export: UTF-16LE with a BOM, tab-separated. */
static void test_utf16_tab_separated_export(void **state)
{
    (void)state;
    const char *text = "관리기관명\t소재지도로명주소\t카메라대수\tWGS84위도\tWGS84경도\r\n"
                       "대전광역시 동구청\t계족로 191\t2\t36.3283\t127.4540\r\n";
    iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
    assert_true(cd != (iconv_t)-1);
    size_t inleft = strlen(text), cap = inleft * 4 + 16, outleft = cap - 2;
    char *out = malloc(cap), *op = out + 2, *ip = (char *)text;
    out[0] = (char)0xff;
    out[1] = (char)0xfe;
    assert_true(iconv(cd, &ip, &inleft, &op, &outleft) != (size_t)-1);
    iconv_close(cd);
    got_t *g = convert_opt(out, (size_t)(op - out), NULL);
    assert_int_equal(g->rc, 0);
    assert_string_equal(g->rep.encoding, "UTF-16LE");
    assert_int_equal(g->ncams, 2);
    assert_string_equal(g->cams[1].name, "계족로 191 #2");
    assert_int_equal(g->cams[1].line, 2);
    got_free(g);
    free(out);
}

static void test_multiline_cells_tabs_and_thousands_keep_rows_and_lines(void **state)
{
    (void)state;
    got_t *g =
        convert(STD_HEADER "\"83,557\",대전광역시 중구청,\"중앙로 138\",,생활방범,1,\"2,073,600\","
                           "\"행복빌라 삼거리\n(나루터식당 옆)\",30,2016-09,,36.3283,127.4540,\n"
                           "\n"
                           "2,대전광역시 중구청,\"중앙로\t140\",,생활방범,1,200,\"북측\","
                           "30,2016-09,,36.3284,127.4541,\n"
                           "3,대전광역시 중구청,중앙로 142,,생활방범,0,200,,30,11-Dec,,,,\n");
    assert_int_equal(g->rc, 0);
    assert_int_equal(g->rep.rows, 3);
    assert_int_equal(g->ncams, 3);
    got_cam_t *c = &g->cams[0];
    assert_int_equal(c->pixels, 2073600);
    assert_string_equal(c->direction, "행복빌라 삼거리 (나루터식당 옆)");
    assert_string_equal(c->note, "행복빌라 삼거리 (나루터식당 옆)");
    assert_int_equal(c->line, 2);
    /* The quoted line break and the blank line count: the next row is on line 5. */
    c = &g->cams[1];
    assert_int_equal(c->line, 5);
    assert_string_equal(c->road, "중앙로 140");
    assert_true(c->heading == 0);
    c = &g->cams[2];
    assert_int_equal(c->line, 6);
    assert_int_equal(g->rep.flagged_count, 1);
    assert_int_equal(g->rep.flagged[0].line, 6);
    assert_non_null(strstr(g->rep.flagged[0].flags, "bad-count"));
    assert_non_null(strstr(g->rep.flagged[0].flags, "bad-date"));
    assert_non_null(strstr(g->rep.flagged[0].flags, "unlocated"));
    assert_non_null(strstr(g->rep.flagged[0].reason, "11-Dec"));
    got_free(g);
}

/* ---- validation --------------------------------------------------------------------------- */

static void test_unusable_coordinates_keep_the_camera_unlocated(void **state)
{
    (void)state;
    got_t *g = convert(STD_HEADER "1,중구청,a,,생활방범,1,200,,30,,,,,\n"
                                  "2,중구청,b,,생활방범,1,200,,30,,,0,0,\n"
                                  "3,중구청,c,,생활방범,1,200,,30,,,99.999999,999.999999,\n"
                                  "4,중구청,d,,생활방범,1,200,,30,,,30.072746,129.07068,\n"
                                  "5,중구청,e,,생활방범,1,200,,30,,,129.0339846,35.10346759,\n"
                                  "6,중구청,f,,생활방범,1,200,,30,,,36.1,127.1,\n"
                                  "7,중구청,g,,생활방범,1,200,,30,,,36.35,127.38,\n"
                                  "8,중구청,h,,생활방범,1,200,,30,,,북위37,127.38,\n");
    assert_int_equal(g->rc, 0);
    assert_int_equal(g->ncams, 8);
    static const struct {
        int located;
        const char *flag;
    } want[] = {{0, "unlocated"},      {0, "unlocated"}, {0, "unlocated"},     {0, "unlocated"},
                {1, "swapped-coords"}, {0, "unlocated"}, {1, "coarse-coords"}, {0, "unlocated"}};
    for (size_t i = 0; i < 8; i++) {
        got_cam_t *c = &g->cams[i];
        assert_int_equal(c->located, want[i].located);
        assert_string_equal(c->flags, want[i].flag);
        assert_string_equal(c->status, want[i].located ? "active" : "unlocated");
        if (!c->located) {
            assert_true(c->lat == 0 && c->lon == 0);
        }
    }
    assert_true(g->cams[4].lat == 35.10346759 && g->cams[4].lon == 129.0339846);
    assert_int_equal(g->rep.flagged_count, 8);
    assert_int_equal(g->rep.unlocated, 6);
    assert_true(has_issue(g->rep.flagged, 8, 2, "blank coordinates"));
    assert_true(has_issue(g->rep.flagged, 8, 3, "0,0"));
    assert_true(has_issue(g->rep.flagged, 8, 4, "placeholder"));
    assert_true(has_issue(g->rep.flagged, 8, 5, "outside Korea"));
    assert_true(has_issue(g->rep.flagged, 8, 6, "swapped"));
    got_free(g);
}

static void test_impossible_dates_and_counts_are_flagged(void **state)
{
    (void)state;
    got_t *g = convert(STD_HEADER "1,중구청,a,,생활방범,1,200,,30,1900,,35.1001,129.0101,\n"
                                  "2,중구청,b,,생활방범,1,200,,30,2031-01,,35.1001,129.0102,\n"
                                  "3,중구청,c,,생활방범,1,200,,30,11-Dec,,35.1001,129.0103,\n"
                                  "4,중구청,d,,생활방범,0,200,,30,2020,,35.1001,129.0104,\n"
                                  "5,중구청,e,,생활방범,,200,,30,2020,,35.1001,129.0105,\n"
                                  "6,중구청,f,,생활방범,104,200,,30,2020,,35.1001,129.0106,\n"
                                  "7,중구청,g,,생활방범,두대,HD,,30,2020,,35.1001,129.0107,\n"
                                  "8,중구청,h,,생활방범,64,200,,30,2020,,35.1001,129.0108,\n");
    assert_int_equal(g->rc, 0);
    /* Seven rows of one camera each, and 64 for the last: the largest sane count. */
    assert_int_equal(g->rep.cameras, 7 + 64);
    assert_int_equal(g->rep.flagged_count, 7);
    assert_true(has_issue(g->rep.flagged, 7, 2, "impossible year"));
    assert_true(has_issue(g->rep.flagged, 7, 3, "in the future"));
    assert_true(has_issue(g->rep.flagged, 7, 4, "unparseable"));
    assert_true(has_issue(g->rep.flagged, 7, 5, "카메라대수 0"));
    assert_true(has_issue(g->rep.flagged, 7, 6, "blank"));
    assert_true(has_issue(g->rep.flagged, 7, 7, "104 is implausible"));
    assert_true(has_issue(g->rep.flagged, 7, 8, "not a number"));
    assert_true(has_issue(g->rep.flagged, 7, 8, "pixel"));
    assert_null(g->cams[0].installed);
    assert_string_equal(g->cams[3].installed, "2020");
    assert_string_equal(g->cams[0].flags, "bad-date");
    got_free(g);
}

/* ---- duplicates, malformed rows ------------------------------------------------------------ */

static void test_exact_duplicates_once_and_repeated_sites_kept(void **state)
{
    (void)state;
    got_t *g = convert(
        STD_HEADER "1,동구청,범내남로 26,범일동 1494-2,생활방범,1,200,,30,,,35.14241,129.05059,\n"
                   "1,동구청,범내남로 26,범일동 1494-2,생활방범,1,200,,30,,,35.14241,129.05059,\n"
                   "2,동구청,범내남로 26,범일동 1494-2,생활방범,1,200,,30,,,35.14241,129.05059,\n"
                   "1, 동구청 ,범내남로 26,범일동 1494-2,생활방범,1,200,,30,,,35.14241,"
                   "129.05059,\n");
    assert_int_equal(g->rc, 0);
    assert_int_equal(g->rep.rows, 4);
    /* Lines 3 and 5 repeat line 2 (padding aside); line 4 is another camera of the same site
     * (the publisher lists one camera per row, with its own number). */
    assert_int_equal(g->rep.skipped_count, 2);
    assert_int_equal(g->rep.skipped[0].line, 3);
    assert_string_equal(g->rep.skipped[0].reason, "duplicate of line 2");
    assert_int_equal(g->rep.skipped[1].line, 5);
    assert_string_equal(g->rep.skipped[1].reason, "duplicate of line 2");
    assert_int_equal(g->ncams, 2);
    assert_string_not_equal(g->cams[0].key, g->cams[1].key);
    assert_non_null(strstr(g->cams[1].key, "~2#1"));
    got_free(g);
}

static void test_malformed_rows_are_skipped_not_fatal(void **state)
{
    (void)state;
    got_t *g = convert(STD_HEADER "1,중구청,a,,생활방범,1,200,,30,,,35.11,129.011,\n"
                                  "2,중구청,b,,생활방범,1,200\n"
                                  "3,중구청,c,동,1가,생활방범,1,200,,30,,,35.12,129.012,\n"
                                  ",,,,,,,,,,,,,\n"
                                  "4,,d,,생활방범,1,200,,30,,,35.13,129.013,\n"
                                  "5,중구청,e,,생활방범,1,200,,30,,,35.14,129.014,\n");
    assert_int_equal(g->rc, 0);
    assert_int_equal(g->rep.rows, 5); /* the empty ",,,," line is padding, not a row */
    assert_int_equal(g->ncams, 2);
    assert_int_equal(g->rep.skipped_count, 3);
    assert_true(has_issue(g->rep.skipped, 3, 3, "malformed row: 7 cells"));
    assert_true(has_issue(g->rep.skipped, 3, 4, "malformed row: 15 cells"));
    assert_true(has_issue(g->rep.skipped, 3, 6, "관리기관명 is blank"));
    assert_int_equal(g->cams[1].line, 7);
    got_free(g);
}

static void test_unterminated_quote(void **state)
{
    (void)state;
    /* At the end of the file: the last row is skipped. */
    got_t *g = convert(STD_HEADER "1,중구청,a,,생활방범,1,200,,30,,,35.11,129.011,\n"
                                  "2,중구청,\"b,,생활방범,1,200,,30,,,35.12,129.012,\n");
    assert_int_equal(g->rc, 0);
    assert_int_equal(g->ncams, 1);
    assert_int_equal(g->rep.skipped_count, 1);
    assert_int_equal(g->rep.skipped[0].line, 3);
    assert_non_null(strstr(g->rep.skipped[0].reason, "never closed"));
    got_free(g);

    /* Early in a long file: the rest would vanish into one cell, so the file fails. */
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, STD_HEADER "1,중구청,\"a,,생활방범,1,200,,30,,,35.11,129.011,\n");
    for (int i = 0; i < 300; i++) {
        ch_buf_appendf(&b, "%d,중구청,x%d,,생활방범,1,200,,30,,,35.11,129.011,\n", i + 2, i);
    }
    g = convert_opt(b.data, b.len, NULL);
    assert_int_equal(g->rc, CH_EPARSE);
    assert_non_null(strstr(g->err, "line 2"));
    assert_non_null(strstr(g->rep.error, "never closed"));
    got_free(g);
    ch_buf_fini(&b);
}

static void test_files_without_a_header_are_rejected(void **state)
{
    (void)state;
    got_t *g = convert("a,b,c\n1,2,3\n");
    assert_int_equal(g->rc, CH_EPARSE);
    assert_non_null(strstr(g->err, "no recognizable header"));
    assert_int_equal(g->ncams, 0);
    got_free(g);
    /* Names we know but no place to put a camera: not a camera list. */
    g = convert("관리기관명,설치목적구분,카메라대수\n중구청,생활방범,1\n");
    assert_int_equal(g->rc, CH_EPARSE);
    got_free(g);
    /* Thirty-odd lines of prose before anything: given up on. */
    ch_buf_t b;
    ch_buf_init(&b);
    for (int i = 0; i < 40; i++) {
        ch_buf_append_str(&b, "설명 문장입니다\n");
    }
    ch_buf_append_str(&b, STD_HEADER);
    g = convert_opt(b.data, b.len, NULL);
    assert_int_equal(g->rc, CH_EPARSE);
    got_free(g);
    ch_buf_fini(&b);
    /* A header and no rows is a valid, empty file. */
    g = convert(STD_HEADER);
    assert_int_equal(g->rc, 0);
    assert_int_equal(g->rep.rows, 0);
    got_free(g);
}

/* ---- other lists ----------------------------------------------------------------------------- */

static void test_emergency_bells_become_devices(void **state)
{
    (void)state;
    got_t *g = convert(
        "개방자치단체코드,관리번호,안전비상벨관리번호,설치목적,설치장소유형,설치위치,"
        "소재지도로명주소,소재지지번주소,WGS84위도,WGS84경도,연계방식,경찰연계유무,"
        "경비업체연계유무,관리사무소연계유무,부가기능,안전비상벨설치연도,최종점검일자,"
        "최종점검결과구분,관리기관명,관리기관전화번호,데이터기준일자,데이터갱신구분,"
        "데이터갱신시점,최종수정시점\n"
        "3640000,202636400000900166,2022-47,방범용,기타,\"삼성동 369-10\n(통신회선 주소 : "
        "삼성동 458)\",대전광역시 동구 중동 61-8,대전광역시 동구 중동 61-8,36.3314,127.4302,"
        "양방향,N,N,Y,경보등+경보음,2022,2026-05-30,Y,대전광역시 동구청,042-251-4175,"
        "2026-05-30,I,2026-06-19 22:28:23,2026-06-18 16:21:05\n");
    assert_int_equal(g->rc, 0);
    assert_string_equal(g->rep.layout, "emergency-bell");
    assert_int_equal(g->rep.devices, 1);
    assert_int_equal(g->ncams, 0);
    assert_int_equal(g->ndevs, 1);
    got_dev_t *d = &g->devs[0];
    assert_string_equal(d->agency, "대전광역시 동구청");
    assert_string_equal(d->name, "삼성동 369-10 (통신회선 주소 : 삼성동 458)");
    assert_string_equal(d->key, "bell:no:202636400000900166");
    assert_string_equal(d->status, "active");
    assert_int_equal(d->located, 1);
    assert_non_null(strstr(d->attrs, "\"bell_no\":\"2022-47\""));
    assert_non_null(strstr(d->attrs, "\"police_link\":false"));
    assert_non_null(strstr(d->attrs, "\"office_link\":true"));
    assert_non_null(strstr(d->attrs, "\"installed\":\"2022\""));
    got_free(g);
}

static void test_ansimi_list_uses_the_district_as_agency(void **state)
{
    (void)state;
    const char *text = "\"자치구\",\"안심 주소\",\"위도\",\"경도\",\"CCTV 수량\",\"수정 일시\"\n"
                       "\"종로구\",\"공원001_명륜3가 산 2-11 와룡공원_메인\",\"37.5913\","
                       "\"126.9945\",\"2\",\"2022-12-01\"";
    got_t *g = convert(text);
    assert_int_equal(g->rc, 0);
    assert_string_equal(g->rep.layout, "seoul-ansimi");
    assert_int_equal(g->ncams, 2);
    assert_string_equal(g->cams[0].agency, "서울특별시 종로구");
    assert_string_equal(g->cams[1].name, "공원001_명륜3가 산 2-11 와룡공원_메인 #2");
    assert_non_null(strstr(g->cams[0].key, "ansimi:"));
    char *k0 = ch_strdup(g->cams[0].key);
    got_free(g);
    /* --agency overrides, and the key (which names the agency) changes with it. */
    g = convert_opt(text, strlen(text), "종로구청");
    assert_string_equal(g->cams[0].agency, "종로구청");
    assert_string_not_equal(g->cams[0].key, k0);
    ch_free(k0);
    got_free(g);
}

static void test_agency_option_supplies_a_missing_agency(void **state)
{
    (void)state;
    const char *text = STD_HEADER "1,,a,,생활방범,1,200,,30,,,35.11,129.011,\n";
    got_t *g = convert(text);
    assert_int_equal(g->rep.skipped_count, 1);
    got_free(g);
    g = convert_opt(text, strlen(text), "부산광역시 중구청");
    assert_int_equal(g->rep.skipped_count, 0);
    assert_string_equal(g->cams[0].agency, "부산광역시 중구청");
    got_free(g);
}

/* ---- keys, progress ----------------------------------------------------------------------- */

static void test_keys_are_stable_across_runs_and_row_order(void **state)
{
    (void)state;
    got_t *a = convert(STD_HEADER "1,중구청,a,,생활방범,2,200,,30,,,35.11,129.011,\n"
                                  "2,중구청,b,,생활방범,1,200,고정,30,,,35.12,129.012,\n");
    got_t *b = convert(STD_HEADER "9,중구청,b,,생활방범,1,500,회전,7,,,35.12,129.012,\n"
                                  "8,중구청,a,,생활방범,2,200,,30,2019,,35.11,129.011,\n");
    assert_string_equal(a->cams[0].key, b->cams[1].key);
    assert_string_equal(a->cams[1].key, b->cams[2].key);
    assert_string_equal(a->cams[2].key, b->cams[0].key);
    got_free(a);
    got_free(b);
}

static uint64_t last_done, last_total;
static int progress_calls;

static void on_progress(void *user, uint64_t done, uint64_t total)
{
    (void)user;
    assert_true(done >= last_done);
    last_done = done;
    last_total = total;
    progress_calls++;
}

static void test_progress_reaches_the_total(void **state)
{
    (void)state;
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, STD_HEADER);
    for (int i = 0; i < 40000; i++) {
        ch_buf_appendf(&b, "%d,중구청,x%d,,생활방범,1,200,,30,,,35.11,129.011,\n", i, i);
    }
    ch_import_options_t opt = {.progress = on_progress, .now_ms = NOW_MS};
    ch_import_report_t rep;
    ch_import_report_init(&rep);
    assert_int_equal(
        ch_registry_convert_buffer("p.csv", b.data, b.len, &opt, NULL, NULL, &rep, NULL), 0);
    assert_true(progress_calls >= 2);
    assert_int_equal(last_done, b.len);
    assert_int_equal(last_total, b.len);
    assert_int_equal(rep.cameras, 40000);
    ch_import_report_fini(&rep);
    ch_buf_fini(&b);
}

/* Every allocation the conversion may survive failing (maps, decoder, the CSV parser's buffer)
 * makes it fail cleanly with CH_ENOMEM and a message, never crash or leak. */
static void test_out_of_memory_fails_cleanly(void **state)
{
    (void)state;
    const char *text = STD_HEADER "1,중구청,a,,생활방범,2,200,,30,,,35.11,129.011,\n";
    size_t len = 0;
    char *cp = to_cp949(text, &len);
    int failures = 0;
    for (long n = 1; n < 12; n++) {
        ch_alloc_fail_after(n);
        got_t *g = convert_opt(cp, len, NULL);
        ch_alloc_fail_after(0);
        if (g->rc != 0) {
            assert_int_equal(g->rc, CH_ENOMEM);
            assert_non_null(g->rep.error);
            assert_int_equal(g->ncams, 0);
            failures++;
        } else {
            assert_int_equal(g->ncams, 2);
        }
        got_free(g);
    }
    assert_true(failures >= 3);
    free(cp);
}

static void test_report_json_has_every_field(void **state)
{
    (void)state;
    got_t *g = convert(STD_HEADER "1,중구청,a,,생활방범,1,200,,30,1900,,35.11,129.011,\n"
                                  "1,중구청,a,,생활방범,1,200,,30,1900,,35.11,129.011,\n");
    json_t *j = ch_import_report_to_json(&g->rep);
    static const char *const keys[] = {"file",
                                       "encoding",
                                       "layout",
                                       "rows",
                                       "cameras_created",
                                       "cameras_updated",
                                       "cameras_unchanged",
                                       "devices_created",
                                       "devices_updated",
                                       "devices_unchanged",
                                       "agencies_created",
                                       "flagged",
                                       "skipped",
                                       "duration_s"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (json_object_get(j, keys[i]) == NULL) {
            fail_msg("missing %s", keys[i]);
        }
    }
    json_t *f = json_array_get(json_object_get(j, "flagged"), 0);
    assert_int_equal(json_integer_value(json_object_get(f, "line")), 2);
    json_t *s = json_array_get(json_object_get(j, "skipped"), 0);
    assert_string_equal(json_string_value(json_object_get(s, "reason")), "duplicate of line 2");
    json_decref(j);
    got_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_row_makes_one_camera_per_declared_count),
        cmocka_unit_test(test_header_variants_give_the_same_camera),
        cmocka_unit_test(test_utf16_tab_separated_export),
        cmocka_unit_test(test_multiline_cells_tabs_and_thousands_keep_rows_and_lines),
        cmocka_unit_test(test_unusable_coordinates_keep_the_camera_unlocated),
        cmocka_unit_test(test_impossible_dates_and_counts_are_flagged),
        cmocka_unit_test(test_exact_duplicates_once_and_repeated_sites_kept),
        cmocka_unit_test(test_malformed_rows_are_skipped_not_fatal),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_files_without_a_header_are_rejected),
        cmocka_unit_test(test_emergency_bells_become_devices),
        cmocka_unit_test(test_ansimi_list_uses_the_district_as_agency),
        cmocka_unit_test(test_agency_option_supplies_a_missing_agency),
        cmocka_unit_test(test_keys_are_stable_across_runs_and_row_order),
        cmocka_unit_test(test_progress_reaches_the_total),
        cmocka_unit_test(test_out_of_memory_fails_cleanly),
        cmocka_unit_test(test_report_json_has_every_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
