/*
 * api/health_routes.c: camera health (src/health) over HTTP: one camera's health with its
 * recent transitions, the list with counts per state, a camera's outages, the monthly
 * availability report per provider (JSON or CSV), and the health state added to geo and event
 * answers. A provider sees its own agency's cameras only.
 */
#include "api/api_ctx.h"
#include "health/health.h"

#include <stdio.h>
#include <string.h>

#define RECENT_TRANSITIONS 20
#define DAY_MS             (86400LL * 1000)

/* ---- marks in other answers ---------------------------------------------------------------- */

void ch_api__health_mark(const ch_api_t *api, json_t *items, const char *id_key)
{
    if (api->svc.health == NULL || !json_is_array(items)) {
        return;
    }
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o)
    {
        json_t *id = json_object_get(o, id_key);
        if (json_is_integer(id)) {
            ch_health_state_t s = ch_health_state_of(api->svc.health, json_integer_value(id));
            json_object_set_new(o, "health", json_string(ch_health_state_name(s)));
        }
    }
}

/* ---- helpers ------------------------------------------------------------------------------- */

json_t *ch_api__time_or_null(int64_t ms)
{
    if (ms <= 0) {
        return json_null();
    }
    char t[32];
    ch_time_format_rfc3339(ms, t);
    return json_string(t);
}

static json_t *round_real(double v, double scale)
{
    return json_real((double)(int64_t)(v * scale + 0.5) / scale);
}

/* The camera named by the {id} segment, which the caller may see. 0 with *cam filled (free with
 * ch_camera_fini), or non-zero after answering. */
static int camera_for(api_ctx_t *c, ch_slice_t seg, ch_camera_t *cam)
{
    int64_t id = 0;
    if (ch_api__parse_id(seg, &id) != 0) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such camera");
        return -1;
    }
    int rc = ch_store_camera_get(c->api->st, id, cam);
    if (rc == CH_ENOTFOUND) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such camera");
        return -1;
    }
    if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
        return -1;
    }
    if (c->who.role == CH_AUTH_PROVIDER && cam->agency_id != c->who.agency_id) {
        ch_camera_fini(cam);
        ch_api__reply_error(c, 403, "forbidden", NULL,
                            "a provider sees the health of its own agency's cameras only");
        return -1;
    }
    return 0;
}

static json_t *live_json(const ch_health_info_t *i)
{
    if (!i->has_live) {
        return json_null();
    }
    const ch_health_live_t *l = &i->live;
    json_t *o = json_object();
    json_object_set_new(o, "playing", json_boolean(l->playing));
    json_object_set_new(o, "since", ch_api__time_or_null(l->since_ms));
    json_object_set_new(o, "codec", l->codec[0] ? json_string(l->codec) : json_null());
    json_object_set_new(o, "width", l->width ? json_integer(l->width) : json_null());
    json_object_set_new(o, "height", l->height ? json_integer(l->height) : json_null());
    json_object_set_new(o, "fps", round_real(l->fps, 100));
    json_object_set_new(o, "bitrate_bps", json_integer((json_int_t)l->bitrate_bps));
    json_object_set_new(o, "gop_frames", l->gop_frames ? json_integer(l->gop_frames) : json_null());
    json_object_set_new(o, "keyframe_interval_s",
                        l->gop_frames && l->fps > 0 ? round_real(l->gop_frames / l->fps, 100)
                                                    : json_null());
    json_object_set_new(o, "last_frame", ch_api__time_or_null(i->last_frame_ms));
    json_object_set_new(o, "last_keyframe", ch_api__time_or_null(i->last_keyframe_ms));
    json_object_set_new(o, "last_error",
                        l->last_error[0] ? json_string(l->last_error) : json_null());
    return o;
}

/* A watched camera's health; a camera without a stream URL is "unknown", not watched. */
static json_t *info_json(const ch_health_info_t *i, int watched, int full)
{
    json_t *o = json_object();
    json_object_set_new(o, "camera_id", json_integer(i->camera_id));
    json_object_set_new(o, "agency_id", json_integer(i->agency_id));
    json_object_set_new(o, "state", json_string(ch_health_state_name(i->state)));
    json_object_set_new(o, "since", ch_api__time_or_null(i->since_ms));
    json_object_set_new(o, "reason", i->reason[0] ? json_string(i->reason) : json_null());
    json_object_set_new(o, "last_probe", ch_api__time_or_null(i->last_probe_ms));
    json_object_set_new(o, "latency_ms",
                        i->latency_s >= 0 ? round_real(i->latency_s * 1000, 10) : json_null());
    json_object_set_new(o, "codec", i->codec[0] ? json_string(i->codec) : json_null());
    if (full) {
        json_object_set_new(o, "watched", json_boolean(watched));
        json_object_set_new(o, "last_probe_ok",
                            i->last_probe_ms > 0 ? json_boolean(i->last_probe_ok) : json_null());
        json_object_set_new(o, "last_ok", ch_api__time_or_null(i->last_ok_ms));
        json_object_set_new(o, "failures", json_integer(i->failures));
        json_object_set_new(o, "next_probe", ch_api__time_or_null(i->next_probe_ms));
        json_object_set_new(o, "live", live_json(i));
    }
    return o;
}

static int add_transition(void *ud, const ch_store_health_row_t *r)
{
    char t[32];
    ch_time_format_rfc3339(r->at_ms, t);
    json_array_append_new(ud, json_pack("{s:s, s:s, s:s, s:s?}", "at", t, "from", r->old_state,
                                        "to", r->new_state, "reason", r->reason));
    return 0;
}

/* ---- GET /api/v1/cameras/{id}/health ------------------------------------------------------- */

static void handle_one(api_ctx_t *c, ch_slice_t seg)
{
    if (ch_api__reject_query(c)) {
        return;
    }
    ch_camera_t cam;
    if (camera_for(c, seg, &cam) != 0) {
        return;
    }
    ch_health_info_t info;
    int watched =
        c->api->svc.health != NULL && ch_health_get(c->api->svc.health, cam.id, &info) == 0;
    if (!watched) {
        memset(&info, 0, sizeof(info));
        info.camera_id = cam.id;
        info.agency_id = cam.agency_id;
        info.latency_s = -1;
        snprintf(info.reason, sizeof(info.reason), "%s",
                 cam.rtsp_url == NULL ? "the camera has no stream URL" : "not probed yet");
    }
    ch_camera_fini(&cam);
    ch_health_flush(c->api->svc.health);
    json_t *o = info_json(&info, watched, 1);
    json_t *tr = json_array();
    if (ch_store_health_range(c->api->st, info.camera_id, INT64_MIN, INT64_MAX, 1,
                              RECENT_TRANSITIONS, add_transition, tr) != 0) {
        json_decref(tr);
        json_decref(o);
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
        return;
    }
    json_object_set_new(o, "transitions", tr);
    ch_api__reply_json(c, 200, NULL, o);
}

/* ---- GET /api/v1/camera-health ------------------------------------------------------------- */

typedef struct list_job {
    int has_state;
    ch_health_state_t state;
    int64_t after_id;
    int limit;
    uint64_t counts[CH_HEALTH_NSTATES];
    int64_t total, last_id;
    int more;
    json_t *items;
} list_job_t;

static int list_one(void *ud, const ch_health_info_t *i)
{
    list_job_t *j = ud;
    j->counts[i->state]++;
    if (j->has_state && i->state != j->state) {
        return 0;
    }
    j->total++;
    if (i->camera_id <= j->after_id) {
        return 0;
    }
    if ((int)json_array_size(j->items) >= j->limit) {
        j->more = 1;
        return 0;
    }
    json_array_append_new(j->items, info_json(i, 1, 0));
    j->last_id = i->camera_id;
    return 0;
}

static void handle_list(api_ctx_t *c)
{
    ch_api__query_t q;
    list_job_t j;
    memset(&j, 0, sizeof(j));
    j.limit = 100;
    int64_t agency_id = 0;
    const char *state = NULL;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_CHOICE("state", &state, ch_health_state_names)},
        {CH_API__QP_ID("agency_id", &agency_id)},
        {CH_API__QP_LIMIT("limit", &j.limit)},
        {CH_API__QP_CURSOR("cursor", &j.after_id)},
        {CH_API__QP_END},
    };
    int rc = ch_api__list_query(c, spec, &q);
    j.has_state = state != NULL;
    if (rc == 0 && state != NULL && ch_health_state_parse(state, &j.state) != 0) {
        ch_api__reply_error(c, 500, "internal", "state", "a state word the module does not know");
        rc = -1;
    }
    ch_api__query_fini(&q);
    if (rc != 0) {
        return;
    }
    if (c->who.role == CH_AUTH_PROVIDER) {
        if (agency_id != 0 && agency_id != c->who.agency_id) {
            ch_api__reply_error(c, 403, "forbidden", "agency_id",
                                "a provider sees the health of its own agency's cameras only");
            return;
        }
        agency_id = c->who.agency_id;
    }
    j.items = json_array();
    if (c->api->svc.health != NULL) {
        ch_health_each(c->api->svc.health, agency_id, list_one, &j);
    }
    json_t *counts = json_object();
    for (int s = 0; s < CH_HEALTH_NSTATES; s++) {
        json_object_set_new(counts, ch_health_state_name((ch_health_state_t)s),
                            json_integer((json_int_t)j.counts[s]));
    }
    char cursor[CH_API__CURSOR_MAX];
    if (j.more) {
        ch_api__cursor_encode(j.last_id, cursor);
    }
    ch_api__reply_json(c, 200, NULL,
                       json_pack("{s:o, s:I, s:o, s:o}", "items", j.items, "total",
                                 (json_int_t)j.total, "next",
                                 j.more ? json_string(cursor) : json_null(), "counts", counts));
}

/* ---- GET /api/v1/cameras/{id}/outages ------------------------------------------------------ */

typedef struct outage_job {
    json_t *items;
    int64_t start; /* of the open outage, 0 when none */
    const char *state;
    char reason[160];
    int64_t to, now;
    double total_s;
    ch_health_windows_t win; /* up to now; none: all time counts as watched */
} outage_job_t;

static int is_outage(const char *s)
{
    return s != NULL && (strcmp(s, "offline") == 0 || strcmp(s, "auth-failed") == 0);
}

static void outage_close(outage_job_t *j, int64_t end)
{
    char a[32];
    ch_time_format_rfc3339(j->start, a);
    int64_t until = end != 0 ? end : j->now;
    double d = (double)(until - j->start) / 1000.0;
    double u =
        (double)((until - j->start) - ch_health_windows_cover(&j->win, j->start, until)) / 1000.0;
    j->total_s += d;
    json_array_append_new(j->items, json_pack("{s:s, s:o, s:o, s:o, s:s, s:s?}", "start", a, "end",
                                              end != 0 ? ch_api__time_or_null(end) : json_null(),
                                              "duration_s", round_real(d, 10), "unwatched_s",
                                              round_real(u, 10), "state", j->state, "reason",
                                              j->reason[0] ? j->reason : NULL));
    j->start = 0;
}

static int outage_row(void *ud, const ch_store_health_row_t *r)
{
    outage_job_t *j = ud;
    if (is_outage(r->new_state)) {
        if (j->start == 0) {
            j->start = r->at_ms;
            j->state = strcmp(r->new_state, "offline") == 0 ? "offline" : "auth-failed";
            snprintf(j->reason, sizeof(j->reason), "%s", r->reason != NULL ? r->reason : "");
        }
    } else if (j->start != 0) {
        outage_close(j, r->at_ms);
    }
    return 0;
}

static void handle_outages(api_ctx_t *c, ch_slice_t seg)
{
    ch_api__query_t q;
    int64_t now = ch_time_now_ms();
    int64_t from_ns = 0, to_ns = 0;
    int has_from = 0, has_to = 0;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_TIME("from", &from_ns), .seen = &has_from},
        {CH_API__QP_TIME("to", &to_ns), .seen = &has_to},
        {CH_API__QP_END},
    };
    int bad = ch_api__list_query(c, spec, &q);
    ch_api__query_fini(&q);
    if (bad) {
        return;
    }
    int64_t to = has_to ? to_ns / 1000000 : now;
    int64_t from = has_from ? from_ns / 1000000 : to - 30 * DAY_MS;
    if (from >= to) {
        ch_api__reply_error(c, 400, "invalid", "from", "from must be before to");
        return;
    }
    ch_camera_t cam;
    if (camera_for(c, seg, &cam) != 0) {
        return;
    }
    int64_t id = cam.id;
    ch_camera_fini(&cam);
    ch_health_flush(c->api->svc.health);
    outage_job_t j;
    memset(&j, 0, sizeof(j));
    j.items = json_array();
    j.to = to;
    j.now = now < to ? now : to;
    /* Every window up to now (one row per run of the hub): an outage may have begun long
     * before from. */
    int rc = ch_health_windows_load(c->api->st, INT64_MIN, INT64_MAX, &j.win);
    /* The state at from: an outage that began before it is one of the period's. */
    if (rc == 0) {
        rc = ch_store_health_range(c->api->st, id, INT64_MIN, from, 1, 1, outage_row, &j);
    }
    if (rc == 0) {
        rc = ch_store_health_range(c->api->st, id, from, to, 0, 0, outage_row, &j);
    }
    if (rc == 0 && j.start != 0) {
        outage_close(&j, 0); /* still going on */
    }
    ch_health_windows_fini(&j.win);
    if (rc != 0) {
        json_decref(j.items);
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
        return;
    }
    char f[32], t[32];
    ch_time_format_rfc3339(from, f);
    ch_time_format_rfc3339(to, t);
    ch_api__reply_json(c, 200, NULL,
                       json_pack("{s:I, s:s, s:s, s:o, s:I, s:o}", "camera_id", (json_int_t)id,
                                 "from", f, "to", t, "items", j.items, "total",
                                 (json_int_t)json_array_size(j.items), "outage_s",
                                 round_real(j.total_s, 10)));
}

/* ---- GET /api/v1/reports/availability ------------------------------------------------------ */

/* "+09:00" or "-05:30" to minutes east of UTC, into *(int *)dest. 0 or CH_EPARSE. */
static int parse_offset(const char *v, void *dest)
{
    return ch_health_utc_offset_parse(v, dest);
}

/* The month's report, read on the store worker (every transition of the month and the
 * windows of the hub's runs), rendered and answered on the loop. */
typedef struct report_read {
    int64_t from, to;
    int csv;
    char label[16];
    ch_health_report_t r;
} report_read_t;

static int report_work(ch_store_t *st, void *job)
{
    report_read_t *j = job;
    return ch_health_report_load(st, j->from, j->to, &j->r);
}

static void report_done(api_ctx_t *c, void *job, int rc)
{
    report_read_t *j = job;
    if (c == NULL) {
        /* nobody to answer */
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
    } else if (!j->csv) {
        ch_api__reply_json(c, 200, NULL, ch_health_report_json(&j->r, j->label));
    } else {
        ch_buf_t b;
        ch_buf_init(&b);
        ch_health_report_csv(&j->r, j->label, &b);
        char disp[96];
        snprintf(disp, sizeof(disp),
                 "Content-Disposition: attachment; filename=\"cctvhub-availability-%s.csv\"\r\n",
                 j->label);
        ch_api__reply(c, 200, "text/csv; charset=utf-8", disp, b.data, b.len);
        ch_buf_fini(&b);
    }
    if (rc == 0) {
        ch_health_report_fini(&j->r);
    }
    ch_free(j);
}

static void handle_report(api_ctx_t *c)
{
    static const char *const formats[] = {"json", "csv", NULL};
    ch_api__query_t q;
    const char *month = NULL;
    const char *format = NULL;
    int off = 540;
    int64_t from = 0, to = 0;
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_MONTH("month", &month), .required = 1},
        {CH_API__QP_CHOICE("format", &format, formats)},
        {CH_API__QP_PARSE("utc_offset", &off, parse_offset, "+HH:MM (+09:00 by default)")},
        {CH_API__QP_END},
    };
    if (ch_api__list_query(c, spec, &q) != 0) {
        ch_api__query_fini(&q);
        return;
    }
    int64_t now = ch_time_now_ms();
    if (ch_health_month_so_far(month, off, now, &from, &to) != 0) {
        ch_api__query_fini(&q);
        ch_api__reply_error(c, 400, "invalid", "month", "month must be a month, YYYY-MM");
        return;
    }
    int csv = format != NULL && strcmp(format, "csv") == 0;
    char label[16];
    snprintf(label, sizeof(label), "%s", month);
    ch_api__query_fini(&q);
    if (from >= now) {
        ch_api__reply_error(c, 400, "invalid", "month", "the month has not begun");
        return;
    }
    /* The transitions still in memory go to the store first, on the loop's handle, so that
     * the worker's read sees them. */
    ch_health_flush(c->api->svc.health);
    report_read_t *j = ch_calloc(1, sizeof(*j));
    j->from = from;
    j->to = to;
    j->csv = csv;
    snprintf(j->label, sizeof(j->label), "%s", label);
    ch_api__store_read(c, report_work, report_done, j);
}

void ch_api__handle_health(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t id)
{
    switch (route) {
    case CH_API__R_CAMERA_HEALTH:
        handle_one(c, id);
        break;
    case CH_API__R_CAMERA_OUTAGES:
        handle_outages(c, id);
        break;
    case CH_API__R_HEALTH_LIST:
        handle_list(c);
        break;
    case CH_API__R_AVAILABILITY:
        handle_report(c);
        break;
    default:
        break;
    }
}
