/*
 * Unit tests of the registry's pure cell readers: encoding detection, 촬영방면정보,
 * 설치연월, coordinates and 카메라화소수.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "registry/registry.h"

#include <string.h>

/* ---- encoding ----------------------------------------------------------------------------- */

static int detect(const char *data, size_t len, ch_import_encoding_t *enc, char **err)
{
    *err = NULL;
    return ch_registry_detect_encoding(data, len, enc, err);
}

static void test_encoding_utf8_with_and_without_bom(void **state)
{
    (void)state;
    ch_import_encoding_t enc;
    char *err;
    const char plain[] = "관리기관명,카메라대수\n부산광역시 중구청,3\n";
    assert_int_equal(detect(plain, sizeof(plain) - 1, &enc, &err), 0);
    assert_int_equal(enc, CH_IMPORT_ENC_UTF8);
    const char bom[] = "\xEF\xBB\xBF관리기관명,카메라대수\n";
    assert_int_equal(detect(bom, sizeof(bom) - 1, &enc, &err), 0);
    assert_int_equal(enc, CH_IMPORT_ENC_UTF8_BOM);
    assert_string_equal(ch_import_encoding_name(enc), "UTF-8-BOM");
    /* Plain ASCII is UTF-8. */
    assert_int_equal(detect("a,b\n1,2\n", 8, &enc, &err), 0);
    assert_int_equal(enc, CH_IMPORT_ENC_UTF8);
}

static void test_encoding_cp949_is_recognised(void **state)
{
    (void)state;
    ch_import_encoding_t enc;
    char *err;
    /* "관리기관명,카메라대수\n" in CP949 (iconv -t cp949). */
    const char cp949[] = "\xB0\xFC\xB8\xAE\xB1\xE2\xB0\xFC\xB8\xED,\xC4\xAB\xB8\xDE\xB6\xF3"
                         "\xB4\xEB\xBC\xF6\n";
    assert_int_equal(detect(cp949, sizeof(cp949) - 1, &enc, &err), 0);
    assert_int_equal(enc, CH_IMPORT_ENC_CP949);
    /* A UTF-8 file with one stray byte is still UTF-8 (the byte becomes U+FFFD). */
    char mixed[4096];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        memcpy(mixed + n, "카메라", 9);
        n += 9;
    }
    mixed[n++] = (char)0xff;
    assert_int_equal(detect(mixed, n, &enc, &err), 0);
    assert_int_equal(enc, CH_IMPORT_ENC_UTF8);
}

static void test_encoding_utf16_bom(void **state)
{
    (void)state;
    ch_import_encoding_t enc;
    char *err;
    assert_int_equal(detect("\xFF\xFE"
                            "a\0",
                            4, &enc, &err),
                     0);
    assert_int_equal(enc, CH_IMPORT_ENC_UTF16LE);
    assert_int_equal(detect("\xFE\xFF\0a", 4, &enc, &err), 0);
    assert_int_equal(enc, CH_IMPORT_ENC_UTF16BE);
}

static void test_encoding_rejects_spreadsheets_and_binary(void **state)
{
    (void)state;
    ch_import_encoding_t enc;
    char *err;
    assert_int_equal(detect("PK\x03\x04\x14\0\x06\0", 8, &enc, &err), CH_EUNSUPP);
    assert_non_null(strstr(err, "xlsx"));
    ch_free(err);
    assert_int_equal(detect("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0", 10, &enc, &err), CH_EUNSUPP);
    assert_non_null(strstr(err, "xls"));
    ch_free(err);
    assert_int_equal(detect("\x7F"
                            "ELF\x02\x01\x01\0\0\0",
                            10, &enc, &err),
                     CH_EUNSUPP);
    assert_non_null(strstr(err, "binary"));
    ch_free(err);
    assert_int_equal(detect("", 0, &enc, &err), CH_EUNSUPP);
    assert_non_null(strstr(err, "empty"));
    ch_free(err);
    /* Random high bytes: neither UTF-8 nor CP949. */
    char junk[512];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (char)(i % 2 ? 0x80 : 0xff);
    }
    assert_int_equal(detect(junk, sizeof(junk), &enc, &err), CH_EUNSUPP);
    ch_free(err);
}

/* ---- 촬영방면정보 --------------------------------------------------------------------------- */

#define U CH_STORE_UNKNOWN_DOUBLE

static void check_direction(const char *text, const char *kind, double fov, double heading,
                            double range, int note)
{
    ch_direction_t d;
    ch_registry_parse_direction(text, strlen(text), &d);
    if (strcmp(d.kind, kind) != 0 || d.fov_deg != fov || d.heading_deg != heading ||
        d.range_m != range || d.keep_as_note != note) {
        fail_msg("\"%s\": got kind=%s fov=%g heading=%g range=%g note=%d", text, d.kind, d.fov_deg,
                 d.heading_deg, d.range_m, d.keep_as_note);
    }
}

static void test_direction_table(void **state)
{
    (void)state;
    /* text, kind, fov, heading, range, kept as note */
    check_direction("", "unknown", U, U, U, 0);
    check_direction("   ", "unknown", U, U, U, 0);
    check_direction("고정", "fixed", U, U, U, 0);
    check_direction("회전", "ptz", U, U, U, 0);
    check_direction("360도 전방면", "ptz", 360, U, U, 0);
    check_direction("360도전방면", "ptz", 360, U, U, 0);
    check_direction("360도다방면", "ptz", 360, U, U, 0);
    check_direction("360도 전방향", "ptz", 360, U, U, 0);
    check_direction("360도전방향", "ptz", 360, U, U, 0);
    check_direction("360", "ptz", 360, U, U, 0);
    check_direction("360°", "ptz", 360, U, U, 0);
    check_direction("90도 정면", "fixed", 90, U, U, 0);
    check_direction("90도 전방", "fixed", 90, U, U, 0);
    check_direction("60도 단방향", "fixed", 60, U, U, 0);
    check_direction("60도단방향", "fixed", 60, U, U, 0);
    check_direction("170도 방면", "fixed", 170, U, U, 0);
    check_direction("130", "unknown", 130, U, U, 0);
    check_direction("45°", "unknown", 45, U, U, 0);
    check_direction("반경 2~3m", "unknown", U, U, 3, 0);
    check_direction("반경 50m", "unknown", U, U, 50, 0);
    check_direction("북", "unknown", U, 0, U, 0);
    check_direction("북측", "unknown", U, 0, U, 0);
    check_direction("북동", "unknown", U, 45, U, 0);
    check_direction("동향", "unknown", U, 90, U, 0);
    check_direction("남동", "unknown", U, 135, U, 0);
    check_direction("남쪽", "unknown", U, 180, U, 0);
    check_direction("남서 방향", "unknown", U, 225, U, 0);
    check_direction("서측", "unknown", U, 270, U, 0);
    check_direction("북서쪽", "unknown", U, 315, U, 0);
    check_direction("NE", "unknown", U, 45, U, 0);
    check_direction("\xE3\x80\x80북측\xE3\x80\x80", "unknown", U, 0, U, 0); /* U+3000 */
    /* Landmarks are notes; a place name with 동 in it is no compass. */
    check_direction("주택 앞 삼거리", "unknown", U, U, U, 1);
    check_direction("특정방면", "unknown", U, U, U, 1);
    check_direction("동광동주민센터 앞 공중전화부스 방면", "unknown", U, U, U, 1);
    /* Mixed text: kept, and what it clearly says is taken. */
    check_direction("360도 전방면/용두산길 방면", "ptz", 360, U, U, 1);
    check_direction("회전(열화상)", "ptz", U, U, U, 1);
    check_direction("학교주변고정", "fixed", U, U, U, 1);
    /* Out-of-range angles are not angles. */
    check_direction("720", "unknown", U, U, U, 1);
}

/* ---- 설치연월 ------------------------------------------------------------------------------- */

static void check_date(const char *text, int rc, const char *out)
{
    char ym[8];
    const char *why;
    int got = ch_registry_normalize_installed(text, strlen(text), 202611, ym, &why);
    if (got != rc || (rc == 0 && strcmp(ym, out) != 0)) {
        fail_msg("\"%s\": rc=%d out=%s why=%s", text, got, ym, why ? why : "");
    }
}

static void test_installed_dates_are_normalised_and_checked(void **state)
{
    (void)state;
    check_date("2018-09", 0, "2018-09");
    check_date("201809", 0, "2018-09");
    check_date("2018.9", 0, "2018-09");
    check_date("2018/09", 0, "2018-09");
    check_date("2018-09-15", 0, "2018-09");
    check_date("20180915", 0, "2018-09");
    check_date("2018년 9월", 0, "2018-09");
    check_date("2018", 0, "2018");
    check_date("2018년", 0, "2018");
    check_date("2018-09-15 10:00:00", 0, "2018-09");
    check_date("", 1, "");
    check_date("1900", CH_EPARSE, NULL);
    check_date("190507", CH_EPARSE, NULL);
    check_date("2027-02", CH_EPARSE, NULL); /* after the reference month 2026-11 */
    check_date("2027", CH_EPARSE, NULL);
    check_date("11-Dec", CH_EPARSE, NULL); /* Excel's mangling of 2011-12 */
    check_date("Dec-11", CH_EPARSE, NULL);
    check_date("2018-13", CH_EPARSE, NULL);
    check_date("2018-00", CH_EPARSE, NULL);
    check_date("미상", CH_EPARSE, NULL);
    check_date("40513", CH_EPARSE, NULL); /* an Excel serial date */
    check_date("2026-11", 0, "2026-11");
}

/* ---- coordinates -------------------------------------------------------------------------- */

static ch_coord_verdict_t coords(const char *a, const char *b, double *lat, double *lon)
{
    return ch_registry_check_coords(a, strlen(a), b, strlen(b), lat, lon);
}

static void test_coordinates_verdicts(void **state)
{
    (void)state;
    double lat, lon;
    assert_int_equal(coords("35.10346759", "129.0339846", &lat, &lon), CH_COORD_OK);
    assert_true(lat == 35.10346759 && lon == 129.0339846);
    assert_int_equal(coords("37.5912", "126.9900", &lat, &lon), CH_COORD_OK);
    assert_int_equal(coords("", "129.03", &lat, &lon), CH_COORD_BLANK);
    assert_int_equal(coords("0", "0", &lat, &lon), CH_COORD_ZERO);
    assert_int_equal(coords("0.0", "0.0", &lat, &lon), CH_COORD_ZERO);
    assert_int_equal(coords("99.999999", "999.999999", &lat, &lon), CH_COORD_SENTINEL);
    assert_int_equal(coords("30.072746", "129.07068", &lat, &lon), CH_COORD_OUTSIDE);
    assert_int_equal(coords("40.1", "129.5", &lat, &lon), CH_COORD_OUTSIDE);
    assert_int_equal(coords("abc", "129.5", &lat, &lon), CH_COORD_UNPARSEABLE);
    assert_int_equal(coords("36.1", "127.1", &lat, &lon), CH_COORD_TOO_COARSE);
    assert_int_equal(coords("36.35", "127.38", &lat, &lon), CH_COORD_COARSE);
    assert_true(lat == 36.35 && lon == 127.38);
    assert_int_equal(coords("129.0339846", "35.10346759", &lat, &lon), CH_COORD_SWAPPED);
    assert_true(lat == 35.10346759 && lon == 129.0339846);
}

/* ---- 카메라화소수 ------------------------------------------------------------------------- */

static void check_pixels(const char *text, int rc, int64_t want)
{
    int64_t px = -1;
    int got = ch_registry_parse_pixels(text, strlen(text), &px);
    if (got != rc || px != want) {
        fail_msg("\"%s\": rc=%d pixels=%lld", text, got, (long long)px);
    }
}

static void test_pixels_rule(void **state)
{
    (void)state;
    check_pixels("200", 0, 2000000);
    check_pixels("41", 0, 410000);
    check_pixels("130", 0, 1300000);
    check_pixels("800", 0, 8000000);
    check_pixels("0", 0, 0);
    check_pixels("", 0, 0);
    check_pixels("2", 0, 2000000);
    check_pixels("2.1", 0, 2100000);
    check_pixels("200만", 0, 2000000);
    check_pixels("200만 화소", 0, 2000000);
    check_pixels("2MP", 0, 2000000);
    check_pixels("2073600", 0, 2073600);
    check_pixels("2,073,600", 0, 2073600);
    check_pixels("50000", CH_EPARSE, 0);
    check_pixels("HD", CH_EPARSE, 0);
    check_pixels("999999999", CH_EPARSE, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoding_utf8_with_and_without_bom),
        cmocka_unit_test(test_encoding_cp949_is_recognised),
        cmocka_unit_test(test_encoding_utf16_bom),
        cmocka_unit_test(test_encoding_rejects_spreadsheets_and_binary),
        cmocka_unit_test(test_direction_table),
        cmocka_unit_test(test_installed_dates_are_normalised_and_checked),
        cmocka_unit_test(test_coordinates_verdicts),
        cmocka_unit_test(test_pixels_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
