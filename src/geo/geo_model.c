/*
 * The visibility model (docs/geo.md): the local frame, defaults for what a camera record does
 * not say, the evaluation of one camera against one point, the score and the order of results.
 */
#include "geo/geo_internal.h"

#include <math.h>
#include <string.h>

const char *ch_geo_kind_name(ch_geo_kind_t k)
{
    switch (k) {
    case CH_GEO_KIND_FIXED:
        return "fixed";
    case CH_GEO_KIND_PTZ:
        return "ptz";
    default:
        return "unknown";
    }
}

const char *ch_geo_status_name(ch_geo_status_t s)
{
    switch (s) {
    case CH_GEO_STATUS_ACTIVE:
        return "active";
    case CH_GEO_STATUS_INACTIVE:
        return "inactive";
    case CH_GEO_STATUS_MAINTENANCE:
        return "maintenance";
    default:
        return "other";
    }
}

const char *ch_geo_visibility_name(ch_geo_visibility_t v)
{
    switch (v) {
    case CH_GEO_VIS_IN_FOV:
        return "in_fov";
    case CH_GEO_VIS_NEEDS_PAN:
        return "needs_pan";
    case CH_GEO_VIS_HEADING_UNKNOWN:
        return "heading_unknown";
    default:
        return "none";
    }
}

int ch_geo_kind_parse(const char *s, ch_geo_kind_t *out)
{
    if (s == NULL) {
        return CH_EINVAL;
    }
    if (strcmp(s, "fixed") == 0) {
        *out = CH_GEO_KIND_FIXED;
    } else if (strcmp(s, "ptz") == 0) {
        *out = CH_GEO_KIND_PTZ;
    } else if (strcmp(s, "unknown") == 0) {
        *out = CH_GEO_KIND_UNKNOWN;
    } else {
        return CH_EINVAL;
    }
    return 0;
}

int ch_geo_status_parse(const char *s, ch_geo_status_t *out)
{
    if (s == NULL) {
        return CH_EINVAL;
    }
    if (strcmp(s, "active") == 0) {
        *out = CH_GEO_STATUS_ACTIVE;
    } else if (strcmp(s, "inactive") == 0) {
        *out = CH_GEO_STATUS_INACTIVE;
    } else if (strcmp(s, "maintenance") == 0) {
        *out = CH_GEO_STATUS_MAINTENANCE;
    } else {
        return CH_EINVAL;
    }
    return 0;
}

/*
 * Default range when a record does not give one. Published inventories rarely say how far a
 * camera sees, so the figure comes from what they do say: resolution sets how far a face or a
 * plate stays legible, and a PTZ camera's optical zoom doubles that. The figures are
 * deliberately modest (docs/geo.md): a camera reported that cannot see is worse than one left
 * out.
 */
double ch_geo_default_range_m(ch_geo_kind_t kind, int64_t pixels)
{
    double r;
    if (pixels <= 0) {
        r = 40.0;
    } else if (pixels < 1000000) {
        r = 25.0;
    } else if (pixels < 2000000) {
        r = 35.0;
    } else if (pixels < 4000000) {
        r = 50.0;
    } else {
        r = 70.0;
    }
    return kind == CH_GEO_KIND_PTZ ? 2.0 * r : r;
}

/* The field of view assumed when the heading is known but the fov is not: a typical fixed
 * lens (about 4 mm on a 1/2.8" sensor) sees 90 degrees; a PTZ's fov is taken at a middling
 * zoom, 60 degrees, for the pan it needs. */
static double default_fov_deg(ch_geo_kind_t kind)
{
    return kind == CH_GEO_KIND_PTZ ? 60.0 : 90.0;
}

static int valid_position(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 && lon >= -180.0 &&
           lon <= 180.0;
}

int ch_geo_cam_from_camera(const ch_camera_t *c, ch_geo_cam_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = c->id;
    out->agency_id = c->agency_id;
    if (!c->located || !valid_position(c->lat, c->lon)) {
        return CH_EINVAL;
    }
    out->lat_e7 = (int32_t)lround(c->lat * 1e7);
    out->lon_e7 = (int32_t)lround(c->lon * 1e7);
    ch_geo_kind_t kind = CH_GEO_KIND_UNKNOWN;
    if (c->kind != NULL && ch_geo_kind_parse(c->kind, &kind) != 0) {
        kind = CH_GEO_KIND_UNKNOWN;
    }
    out->kind = kind;
    ch_geo_status_t st = CH_GEO_STATUS_OTHER;
    if (c->status != NULL && ch_geo_status_parse(c->status, &st) != 0) {
        st = CH_GEO_STATUS_OTHER;
    }
    out->status = st;
    out->heading_cdeg = UINT16_MAX;
    if (isfinite(c->heading_deg) && c->heading_deg >= 0.0) {
        double h = fmod(c->heading_deg, 360.0);
        out->heading_cdeg = (uint16_t)(lround(h * 100.0) % 36000);
    }
    out->fov_cdeg = UINT16_MAX;
    if (isfinite(c->fov_deg) && c->fov_deg > 0.0) {
        double fv = c->fov_deg >= 360.0 ? 360.0 : c->fov_deg;
        long q = lround(fv * 100.0);
        out->fov_cdeg = (uint16_t)(q < 1 ? 1 : q);
    }
    if (isfinite(c->range_m) && c->range_m > 0.0) {
        double r = c->range_m > 100000.0 ? 100000.0 : c->range_m;
        long q = lround(r * 10.0);
        out->range_dm = (uint32_t)(q < 1 ? 1 : q);
        out->range_known = 1;
    } else {
        out->range_dm = (uint32_t)lround(ch_geo_default_range_m(kind, c->pixels) * 10.0);
        out->range_known = 0;
    }
    int64_t px = c->pixels > 0 ? c->pixels / 10000 : 0;
    out->pixels_10k = (uint32_t)(px > 65535 ? 65535 : px);
    return 0;
}

void ch_geo__frame_init(geo_frame_t *f, double lat, double lon)
{
    if (lat > 90.0) {
        lat = 90.0;
    } else if (lat < -90.0) {
        lat = -90.0;
    }
    f->lat = lat;
    f->lon = lon;
    f->sin_lat = sin(lat * GEO_DEG2RAD);
    f->cos_lat = cos(lat * GEO_DEG2RAD);
    double w = 1.0 - GEO_WGS84_E2 * f->sin_lat * f->sin_lat;
    double sw = sqrt(w);
    f->n_rad = GEO_WGS84_A / sw;
    f->m_rad = GEO_WGS84_A * (1.0 - GEO_WGS84_E2) / (w * sw);
}

double ch_geo_distance_m(double lat_a, double lon_a, double lat_b, double lon_b,
                         double *bearing_deg)
{
    geo_frame_t f;
    double x, y;
    ch_geo__frame_init(&f, lat_a, lon_a);
    geo_frame_offset(&f, lat_b, lon_b, &x, &y);
    if (bearing_deg != NULL) {
        double b = atan2(x, y) * GEO_RAD2DEG - geo_dlon(lon_a, lon_b) * f.sin_lat * 0.5;
        b = b >= 360.0 ? b - 360.0 : b;
        *bearing_deg = b < 0.0 ? b + 360.0 : b;
    }
    return sqrt(x * x + y * y);
}

/* The smallest angle between two directions, 0..180 degrees. */
static double angle_off(double a, double b)
{
    double d = fabs(a - b);
    d = fmod(d, 360.0);
    return d > 180.0 ? 360.0 - d : d;
}

/*
 * The score (docs/geo.md): certainty weighs most, then how far into the range the point lies,
 * then resolution and the pan needed. Cameras that are not active keep a quarter of their
 * score and are sorted after every active one anyway (ch_geo_result_cmp).
 */
static double score_of(const ch_geo_cam_t *cam, ch_geo_visibility_t vis, double d, double range,
                       double pan, int pan_applies)
{
    int heading_known = cam->heading_cdeg != UINT16_MAX;
    double cert;
    switch (vis) {
    case CH_GEO_VIS_IN_FOV:
        cert = 1.0;
        break;
    case CH_GEO_VIS_NEEDS_PAN:
        cert = heading_known ? 0.8 : 0.7;
        break;
    default:
        cert = 0.4;
        break;
    }
    if (!cam->range_known) {
        cert *= 0.9;
    }
    double dist_f = 1.0 - d / range;
    if (dist_f < 0.0) {
        dist_f = 0.0;
    }
    double pan_f = 1.0;
    if (pan_applies) {
        pan_f = pan < 0.0 ? 0.5 : 1.0 - pan / 180.0;
    }
    double res_f = 0.5;
    if (cam->pixels_10k > 0) {
        res_f = cam->pixels_10k / 400.0;
        res_f = res_f < 0.25 ? 0.25 : (res_f > 1.0 ? 1.0 : res_f);
    }
    double s = 0.45 * cert + 0.30 * dist_f + 0.10 * pan_f + 0.15 * res_f;
    if (cam->status != CH_GEO_STATUS_ACTIVE) {
        s *= 0.25;
    }
    return s;
}

ch_geo_visibility_t ch_geo__eval(const geo_frame_t *f, const ch_geo_cam_t *cam,
                                 ch_geo_result_t *out)
{
    double clat = cam->lat_e7 * 1e-7, clon = cam->lon_e7 * 1e-7;
    double x, y;
    geo_frame_offset(f, clat, clon, &x, &y);
    double d = sqrt(x * x + y * y);
    double range = cam->range_dm * 0.1;
    ch_geo_visibility_t vis = CH_GEO_VIS_NONE;
    double bearing = 0.0, pan = CH_GEO_PAN_UNKNOWN;
    int pan_applies = cam->kind == CH_GEO_KIND_PTZ;

    if (d <= range + GEO_RANGE_SLACK_M) {
        /* The bearing from the camera to the point is the reverse of the offset vector, less
         * half the meridian convergence between them: the frame's north is the mid point's,
         * the camera's north is turned by (lon_point - lon_camera) * sin(lat) / 2. */
        bearing = atan2(-x, -y) * GEO_RAD2DEG + geo_dlon(f->lon, clon) * f->sin_lat * 0.5;
        if (d <= GEO_RANGE_SLACK_M) {
            /* At the camera itself there is no direction: it is where the camera looks. */
            bearing = cam->heading_cdeg != UINT16_MAX ? cam->heading_cdeg * 0.01 : 0.0;
        }
        if (bearing < 0.0) {
            bearing += 360.0;
        }
        if (bearing >= 360.0) {
            bearing -= 360.0;
        }
        int heading_known = cam->heading_cdeg != UINT16_MAX;
        double fov =
            cam->fov_cdeg != UINT16_MAX ? cam->fov_cdeg * 0.01 : default_fov_deg(cam->kind);
        if (fov >= 360.0) {
            vis = CH_GEO_VIS_IN_FOV;
            pan = pan_applies ? 0.0 : CH_GEO_PAN_UNKNOWN;
        } else if (heading_known) {
            double off = angle_off(bearing, cam->heading_cdeg * 0.01);
            double half = fov * 0.5;
            if (off <= half + GEO_FOV_SLACK_DEG) {
                vis = CH_GEO_VIS_IN_FOV;
                pan = pan_applies ? 0.0 : CH_GEO_PAN_UNKNOWN;
            } else if (pan_applies) {
                vis = CH_GEO_VIS_NEEDS_PAN;
                pan = off - half;
            }
        } else if (pan_applies) {
            vis = CH_GEO_VIS_NEEDS_PAN;
        } else {
            vis = CH_GEO_VIS_HEADING_UNKNOWN;
        }
    }
    if (out != NULL) {
        out->camera_id = cam->id;
        out->agency_id = cam->agency_id;
        out->lat = clat;
        out->lon = clon;
        out->kind = cam->kind;
        out->status = cam->status;
        out->distance_m = d;
        out->bearing_deg = bearing;
        out->range_m = range;
        out->visibility = vis;
        out->pan_deg = pan;
        out->score = vis == CH_GEO_VIS_NONE ? 0.0 : score_of(cam, vis, d, range, pan, pan_applies);
        out->from_m = 0.0;
        out->to_m = 0.0;
    }
    return vis;
}

ch_geo_visibility_t ch_geo_evaluate(const ch_geo_cam_t *cam, double lat, double lon,
                                    ch_geo_result_t *out)
{
    geo_frame_t f;
    ch_geo__frame_init(&f, lat, lon);
    return ch_geo__eval(&f, cam, out);
}

int ch_geo_result_cmp(const ch_geo_result_t *a, const ch_geo_result_t *b)
{
    int oa = a->status != CH_GEO_STATUS_ACTIVE, ob = b->status != CH_GEO_STATUS_ACTIVE;
    if (oa != ob) {
        return oa - ob;
    }
    if (a->score != b->score) {
        return a->score > b->score ? -1 : 1;
    }
    if (a->distance_m != b->distance_m) {
        return a->distance_m < b->distance_m ? -1 : 1;
    }
    return (a->camera_id > b->camera_id) - (a->camera_id < b->camera_id);
}

void ch_geo_results_fini(ch_geo_results_t *r)
{
    if (r == NULL) {
        return;
    }
    ch_free(r->items);
    r->items = NULL;
    r->count = 0;
}
