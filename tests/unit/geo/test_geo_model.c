/*
 * Unit tests of the visibility model: the field of view across north, the range border, PTZ
 * pan, unknown headings, 360-degree cameras, defaults, the score and order, and the distance
 * against Vincenty's inverse on the WGS84 ellipsoid.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "geo/geo.h"

#define D2R (M_PI / 180.0)

static ch_geo_cam_t make_cam(const char *kind, double heading, double fov, double range,
                             const char *status)
{
    ch_camera_t c;
    ch_camera_init(&c);
    c.id = 1;
    c.agency_id = 1;
    c.located = 1;
    c.lat = 37.5;
    c.lon = 127.0;
    c.kind = (char *)kind;
    c.status = (char *)status;
    c.heading_deg = heading;
    c.fov_deg = fov;
    c.range_m = range;
    c.pixels = 2000000;
    ch_geo_cam_t cam;
    assert_int_equal(ch_geo_cam_from_camera(&c, &cam), 0);
    return cam;
}

/* Finds the point that the model puts at exactly (bearing, distance) from the camera, by a few
 * rounds of correcting a first guess: the model's own frame decides, so borders are exact. */
static void place(const ch_geo_cam_t *cam, double bearing, double dist, double *lat, double *lon)
{
    double clat = cam->lat_e7 * 1e-7, clon = cam->lon_e7 * 1e-7;
    double tx = dist * sin(bearing * D2R), ty = dist * cos(bearing * D2R);
    *lat = clat + ty / 111000.0;
    *lon = clon + tx / (111000.0 * cos(clat * D2R));
    for (int i = 0; i < 8; i++) {
        ch_geo_result_t r;
        ch_geo_cam_t wide = *cam;
        wide.range_dm = 10000000;
        (void)ch_geo_evaluate(&wide, *lat, *lon, &r);
        double x = r.distance_m * sin(r.bearing_deg * D2R),
               y = r.distance_m * cos(r.bearing_deg * D2R);
        *lat += (ty - y) / 111000.0;
        *lon += (tx - x) / (111000.0 * cos(clat * D2R));
    }
}

static ch_geo_visibility_t vis_at(const ch_geo_cam_t *cam, double bearing, double dist,
                                  ch_geo_result_t *r)
{
    double lat, lon;
    place(cam, bearing, dist, &lat, &lon);
    return ch_geo_evaluate(cam, lat, lon, r);
}

static void test_fov_across_north_heading_350_fov_40(void **state)
{
    (void)state;
    ch_geo_cam_t cam = make_cam("fixed", 350.0, 40.0, 100.0, "active");
    ch_geo_result_t r;
    static const double inside[] = {330.0, 335.0, 350.0, 359.9, 0.0, 5.0, 10.0};
    static const double outside[] = {329.9, 10.1, 90.0, 170.0, 180.0, 300.0};
    for (size_t i = 0; i < CH_ARRAY_SIZE(inside); i++) {
        assert_int_equal(vis_at(&cam, inside[i], 40.0, &r), CH_GEO_VIS_IN_FOV);
        assert_true(fabs(r.distance_m - 40.0) < 1e-6);
        assert_true(r.pan_deg == CH_GEO_PAN_UNKNOWN); /* a fixed camera does not pan */
    }
    for (size_t i = 0; i < CH_ARRAY_SIZE(outside); i++) {
        assert_int_equal(vis_at(&cam, outside[i], 40.0, &r), CH_GEO_VIS_NONE);
    }
}

static void test_point_on_range_border_is_seen_and_beyond_is_not(void **state)
{
    (void)state;
    ch_geo_cam_t cam = make_cam("fixed", 90.0, 90.0, 50.0, "active");
    ch_geo_result_t r;
    assert_int_equal(vis_at(&cam, 90.0, 50.0, &r), CH_GEO_VIS_IN_FOV);
    assert_true(fabs(r.distance_m - 50.0) < 1e-6);
    assert_true(r.score > 0.0);
    assert_int_equal(vis_at(&cam, 90.0, 49.99, &r), CH_GEO_VIS_IN_FOV);
    assert_int_equal(vis_at(&cam, 90.0, 50.01, &r), CH_GEO_VIS_NONE);
    /* The camera's own position: distance 0 is within any range. */
    assert_int_equal(ch_geo_evaluate(&cam, 37.5, 127.0, &r), CH_GEO_VIS_IN_FOV);
    assert_true(r.distance_m == 0.0);
}

static void test_ptz_reports_the_pan_it_needs(void **state)
{
    (void)state;
    ch_geo_cam_t cam = make_cam("ptz", 90.0, 60.0, 100.0, "active");
    ch_geo_result_t r;
    assert_int_equal(vis_at(&cam, 100.0, 30.0, &r), CH_GEO_VIS_IN_FOV);
    assert_true(r.pan_deg == 0.0);
    assert_int_equal(vis_at(&cam, 180.0, 30.0, &r), CH_GEO_VIS_NEEDS_PAN);
    assert_true(fabs(r.pan_deg - 60.0) < 1e-6);
    assert_int_equal(vis_at(&cam, 0.0, 30.0, &r), CH_GEO_VIS_NEEDS_PAN);
    assert_true(fabs(r.pan_deg - 60.0) < 1e-6);
    assert_int_equal(vis_at(&cam, 270.0, 30.0, &r), CH_GEO_VIS_NEEDS_PAN);
    assert_true(fabs(r.pan_deg - 150.0) < 1e-6);
    /* Heading unknown: it can turn, but how far is not known. */
    ch_geo_cam_t lost = make_cam("ptz", -1.0, -1.0, 100.0, "active");
    assert_int_equal(vis_at(&lost, 200.0, 30.0, &r), CH_GEO_VIS_NEEDS_PAN);
    assert_true(r.pan_deg == CH_GEO_PAN_UNKNOWN);
    /* Out of range it does not help to turn. */
    assert_int_equal(vis_at(&cam, 180.0, 120.0, &r), CH_GEO_VIS_NONE);
}

static void test_360_degree_camera_sees_all_round(void **state)
{
    (void)state;
    ch_geo_cam_t ptz = make_cam("ptz", -1.0, 360.0, 80.0, "active");
    ch_geo_cam_t fixed = make_cam("fixed", 45.0, 360.0, 80.0, "active");
    ch_geo_result_t r;
    for (double b = 0.0; b < 360.0; b += 22.5) {
        assert_int_equal(vis_at(&ptz, b, 60.0, &r), CH_GEO_VIS_IN_FOV);
        assert_true(r.pan_deg == 0.0);
        assert_int_equal(vis_at(&fixed, b, 60.0, &r), CH_GEO_VIS_IN_FOV);
    }
}

static void test_unknown_heading_is_possible_with_lower_score(void **state)
{
    (void)state;
    ch_geo_cam_t known = make_cam("fixed", 0.0, 90.0, 60.0, "active");
    ch_geo_cam_t unknown = make_cam("unknown", -1.0, -1.0, 60.0, "active");
    ch_geo_result_t a, b;
    assert_int_equal(vis_at(&known, 0.0, 30.0, &a), CH_GEO_VIS_IN_FOV);
    assert_int_equal(vis_at(&unknown, 0.0, 30.0, &b), CH_GEO_VIS_HEADING_UNKNOWN);
    assert_true(a.score > b.score);
    assert_true(b.pan_deg == CH_GEO_PAN_UNKNOWN);
    /* A known heading with an unknown fov takes the default fixed lens of 90 degrees. */
    ch_geo_cam_t nofov = make_cam("fixed", 0.0, -1.0, 60.0, "active");
    assert_int_equal(vis_at(&nofov, 44.9, 30.0, &a), CH_GEO_VIS_IN_FOV);
    assert_int_equal(vis_at(&nofov, 45.1, 30.0, &a), CH_GEO_VIS_NONE);
}

static void test_score_prefers_near_sure_sharp_and_active(void **state)
{
    (void)state;
    ch_geo_cam_t cam = make_cam("fixed", 0.0, 90.0, 100.0, "active");
    ch_geo_result_t near, far;
    (void)vis_at(&cam, 0.0, 10.0, &near);
    (void)vis_at(&cam, 0.0, 90.0, &far);
    assert_true(near.score > far.score);
    ch_geo_cam_t off = make_cam("fixed", 0.0, 90.0, 100.0, "maintenance");
    ch_geo_result_t o;
    (void)vis_at(&off, 0.0, 10.0, &o);
    assert_true(o.score < near.score);
    /* Offline cameras sort after every active one, even a worse active one. */
    assert_true(ch_geo_result_cmp(&far, &o) < 0);
    ch_geo_cam_t lowres = cam;
    lowres.pixels_10k = 41;
    ch_geo_result_t l;
    (void)vis_at(&lowres, 0.0, 10.0, &l);
    assert_true(l.score < near.score);
    assert_true(near.score <= 1.0 && o.score >= 0.0);
}

static void test_default_range_by_kind_and_pixels(void **state)
{
    (void)state;
    assert_true(ch_geo_default_range_m(CH_GEO_KIND_FIXED, 0) == 40.0);
    assert_true(ch_geo_default_range_m(CH_GEO_KIND_FIXED, 410000) == 25.0);
    assert_true(ch_geo_default_range_m(CH_GEO_KIND_UNKNOWN, 2000000) == 50.0);
    assert_true(ch_geo_default_range_m(CH_GEO_KIND_PTZ, 2000000) == 100.0);
    assert_true(ch_geo_default_range_m(CH_GEO_KIND_PTZ, 8000000) == 140.0);
    ch_geo_cam_t cam = make_cam("ptz", -1.0, -1.0, -1.0, "active");
    assert_int_equal(cam.range_dm, 1000);
    assert_int_equal(cam.range_known, 0);
}

/* Vincenty's inverse formula on WGS84 (distance and initial bearing), the reference. */
static double vincenty(double lat1, double lon1, double lat2, double lon2, double *az)
{
    const double a = 6378137.0, f = 1 / 298.257223563, b = a * (1 - f);
    double L = (lon2 - lon1) * D2R;
    double U1 = atan((1 - f) * tan(lat1 * D2R)), U2 = atan((1 - f) * tan(lat2 * D2R));
    double sinU1 = sin(U1), cosU1 = cos(U1), sinU2 = sin(U2), cosU2 = cos(U2);
    double lambda = L, prev, sinSigma, cosSigma, sigma, cos2Alpha, cos2SigmaM, sinLambda, cosLambda;
    int iter = 0;
    do {
        sinLambda = sin(lambda);
        cosLambda = cos(lambda);
        sinSigma =
            sqrt(pow(cosU2 * sinLambda, 2) + pow(cosU1 * sinU2 - sinU1 * cosU2 * cosLambda, 2));
        cosSigma = sinU1 * sinU2 + cosU1 * cosU2 * cosLambda;
        sigma = atan2(sinSigma, cosSigma);
        double sinAlpha = cosU1 * cosU2 * sinLambda / sinSigma;
        cos2Alpha = 1 - sinAlpha * sinAlpha;
        cos2SigmaM = cosSigma - 2 * sinU1 * sinU2 / cos2Alpha;
        double C = f / 16 * cos2Alpha * (4 + f * (4 - 3 * cos2Alpha));
        prev = lambda;
        lambda =
            L + (1 - C) * f * sinAlpha *
                    (sigma + C * sinSigma *
                                 (cos2SigmaM + C * cosSigma * (-1 + 2 * cos2SigmaM * cos2SigmaM)));
    } while (fabs(lambda - prev) > 1e-13 && ++iter < 200);
    double uSq = cos2Alpha * (a * a - b * b) / (b * b);
    double A = 1 + uSq / 16384 * (4096 + uSq * (-768 + uSq * (320 - 175 * uSq)));
    double B = uSq / 1024 * (256 + uSq * (-128 + uSq * (74 - 47 * uSq)));
    double dSigma = B * sinSigma *
                    (cos2SigmaM + B / 4 *
                                      (cosSigma * (-1 + 2 * cos2SigmaM * cos2SigmaM) -
                                       B / 6 * cos2SigmaM * (-3 + 4 * sinSigma * sinSigma) *
                                           (-3 + 4 * cos2SigmaM * cos2SigmaM)));
    *az = atan2(cosU2 * sinLambda, cosU1 * sinU2 - sinU1 * cosU2 * cosLambda) / D2R;
    if (*az < 0) {
        *az += 360.0;
    }
    return b * A * (sigma - dSigma);
}

static void test_distance_within_one_metre_of_ellipsoid_at_10_km(void **state)
{
    (void)state;
    unsigned s = 12345;
    double worst = 0.0;
    static const double lats[] = {33.0, 35.1, 37.5, 38.9, 0.0, -45.0, 60.0, 75.0};
    for (size_t li = 0; li < CH_ARRAY_SIZE(lats); li++) {
        for (int i = 0; i < 500; i++) {
            s = s * 1103515245u + 12345u;
            double b = (s >> 8) % 36000 / 100.0;
            s = s * 1103515245u + 12345u;
            double d = 10.0 + (s >> 8) % 9990000 / 1000.0;
            double lat1 = lats[li], lon1 = 127.0;
            /* A point at roughly (b, d), then the reference says where it really is. */
            double lat2 = lat1 + d * cos(b * D2R) / 111000.0;
            double lon2 = lon1 + d * sin(b * D2R) / (111000.0 * cos(lat1 * D2R));
            double az, ref = vincenty(lat1, lon1, lat2, lon2, &az);
            double mine_b, mine = ch_geo_distance_m(lat1, lon1, lat2, lon2, &mine_b);
            double err = fabs(mine - ref);
            worst = err > worst ? err : worst;
            assert_true(err < 1.0);
            /* The bearing agrees to within what 0.2 m across 10 m means. */
            double db = fabs(mine_b - az);
            db = db > 180.0 ? 360.0 - db : db;
            assert_true(db < 0.2 / ref * 180.0 / M_PI + 0.01);
        }
    }
    print_message("worst distance error within 10 km: %.4f m\n", worst);
    assert_true(worst < 0.5);
}

static void test_poles_and_antimeridian_do_not_crash(void **state)
{
    (void)state;
    ch_geo_cam_t cam = make_cam("ptz", 10.0, 60.0, 100.0, "active");
    cam.lat_e7 = 900000000;
    cam.lon_e7 = 1800000000;
    ch_geo_result_t r;
    (void)ch_geo_evaluate(&cam, 90.0, -180.0, &r);
    assert_true(isfinite(r.distance_m) && isfinite(r.bearing_deg) && isfinite(r.score));
    (void)ch_geo_evaluate(&cam, 89.9995, 0.0, &r);
    assert_true(isfinite(r.distance_m));
    cam.lat_e7 = 0;
    cam.lon_e7 = 1799999900; /* 179.99999 E */
    assert_int_equal(ch_geo_evaluate(&cam, 0.0, -179.99999, &r), CH_GEO_VIS_NEEDS_PAN);
    assert_true(r.distance_m < 3.0); /* across the antimeridian, not around the world */
    assert_true(fabs(r.bearing_deg - 90.0) < 1e-6);
}

static void test_names_and_parsers_round_trip(void **state)
{
    (void)state;
    ch_geo_kind_t k;
    ch_geo_status_t s;
    assert_int_equal(ch_geo_kind_parse("ptz", &k), 0);
    assert_string_equal(ch_geo_kind_name(k), "ptz");
    assert_int_equal(ch_geo_kind_parse("PTZ", &k), CH_EINVAL);
    assert_int_equal(ch_geo_status_parse("maintenance", &s), 0);
    assert_string_equal(ch_geo_status_name(s), "maintenance");
    assert_string_equal(ch_geo_visibility_name(CH_GEO_VIS_HEADING_UNKNOWN), "heading_unknown");
    ch_geo_filter_t f;
    char err[128];
    assert_int_equal(
        ch_geo_filter_parse(&f, "어린이보호", "12", "fixed", "active", "true", err, sizeof(err)),
        0);
    assert_int_equal(f.agency_id, 12);
    assert_true(f.has_kind && f.kind == CH_GEO_KIND_FIXED && f.exclude_offline);
    assert_int_equal(ch_geo_filter_parse(&f, NULL, "x", NULL, NULL, NULL, err, sizeof(err)),
                     CH_EINVAL);
    assert_non_null(strstr(err, "agency"));
    assert_int_equal(ch_geo_filter_parse(&f, NULL, NULL, "dome", NULL, NULL, err, sizeof(err)),
                     CH_EINVAL);
    assert_non_null(strstr(err, "kind"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fov_across_north_heading_350_fov_40),
        cmocka_unit_test(test_point_on_range_border_is_seen_and_beyond_is_not),
        cmocka_unit_test(test_ptz_reports_the_pan_it_needs),
        cmocka_unit_test(test_360_degree_camera_sees_all_round),
        cmocka_unit_test(test_unknown_heading_is_possible_with_lower_score),
        cmocka_unit_test(test_score_prefers_near_sure_sharp_and_active),
        cmocka_unit_test(test_default_range_by_kind_and_pixels),
        cmocka_unit_test(test_distance_within_one_metre_of_ellipsoid_at_10_km),
        cmocka_unit_test(test_poles_and_antimeridian_do_not_crash),
        cmocka_unit_test(test_names_and_parsers_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
