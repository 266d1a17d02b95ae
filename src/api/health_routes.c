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

/* ---- one camera's health and outages, read on the store worker ----------------------------- */

/*
 * GET /cameras/{id}/health and /cameras/{id}/outages read the store on the worker: the camera
 * (it exists, and a provider may see it: its own agency's), then its recent transitions or the
 * transitions and the hub's watch windows that make its outages. The live health state, kept
 * in memory by the health module, is added on the loop when the answer is rendered. The
 * transitions the health module still holds in memory go to the store first (ch_health_flush,
 * on the loop's handle), so that the worker's read sees them.
 */
typedef struct camera_read {
    int64_t id;
    int64_t provider_agency; /* the caller's agency when a provider (sees its own only), or 0 */
    int outages;             /* the outages; else the health */
    int refusal;             /* 404 or 403, found by the read; 0: the camera may be shown */
    int64_t agency_id;       /* the camera's */
    int has_url;             /* the camera has a stream URL */
    json_t *transitions;     /* health: the most recent ones */
    int64_t from;            /* outages: the period [from, to) */
    outage_job_t o;
} camera_read_t;

static int camera_read_work(ch_store_t *st, void *job)
{
    camera_read_t *j = job;
    ch_camera_t cam;
    int rc = ch_store_camera_get(st, j->id, &cam);
    if (rc == CH_ENOTFOUND) {
        j->refusal = 404;
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    j->agency_id = cam.agency_id;
    j->has_url = cam.rtsp_url != NULL;
    ch_camera_fini(&cam);
    if (j->provider_agency != 0 && j->agency_id != j->provider_agency) {
        j->refusal = 403;
        return 0;
    }
    if (!j->outages) {
        return ch_store_health_range(st, j->id, INT64_MIN, INT64_MAX, 1, RECENT_TRANSITIONS,
                                     add_transition, j->transitions);
    }
    /* Every window up to now (one row per run of the hub): an outage may have begun long
     * before from. */
    rc = ch_health_windows_load(st, INT64_MIN, INT64_MAX, &j->o.win);
    /* The state at from: an outage that began before it is one of the period's. */
    if (rc == 0) {
        rc = ch_store_health_range(st, j->id, INT64_MIN, j->from, 1, 1, outage_row, &j->o);
    }
    if (rc == 0) {
        rc = ch_store_health_range(st, j->id, j->from, j->o.to, 0, 0, outage_row, &j->o);
    }
    if (rc == 0 && j->o.start != 0) {
        outage_close(&j->o, 0); /* still going on */
    }
    return rc;
}

/* The health answer, with the live state the health module holds (loop). */
static void health_answer(api_ctx_t *c, camera_read_t *j)
{
    ch_health_info_t info;
    int watched =
        c->api->svc.health != NULL && ch_health_get(c->api->svc.health, j->id, &info) == 0;
    if (!watched) {
        memset(&info, 0, sizeof(info));
        info.camera_id = j->id;
        info.agency_id = j->agency_id;
        info.latency_s = -1;
        snprintf(info.reason, sizeof(info.reason), "%s",
                 j->has_url ? "not probed yet" : "the camera has no stream URL");
    }
    json_t *o = info_json(&info, watched, 1);
    json_object_set(o, "transitions", j->transitions);
    ch_api__reply_json(c, 200, NULL, o);
}

static void outages_answer(api_ctx_t *c, camera_read_t *j)
{
    char f[32], t[32];
    ch_time_format_rfc3339(j->from, f);
    ch_time_format_rfc3339(j->o.to, t);
    ch_api__reply_json(c, 200, NULL,
                       json_pack("{s:I, s:s, s:s, s:O, s:I, s:o}", "camera_id", (json_int_t)j->id,
                                 "from", f, "to", t, "items", j->o.items, "total",
                                 (json_int_t)json_array_size(j->o.items), "outage_s",
                                 round_real(j->o.total_s, 10)));
}

static void camera_read_done(api_ctx_t *c, void *job, int rc)
{
    camera_read_t *j = job;
    if (c == NULL) {
        /* nobody to answer */
    } else if (rc != 0) {
        ch_api__reply_error(c, 500, "internal", NULL, "the store failed");
    } else if (j->refusal == 404) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such camera");
    } else if (j->refusal == 403) {
        ch_api__reply_error(c, 403, "forbidden", NULL,
                            "a provider sees the health of its own agency's cameras only");
    } else if (j->outages) {
        outages_answer(c, j);
    } else {
        health_answer(c, j);
    }
    json_decref(j->transitions);
    json_decref(j->o.items);
    ch_health_windows_fini(&j->o.win);
    ch_free(j);
}

/* The job for the camera named by the {id} segment, or NULL after answering 404. */
static camera_read_t *camera_read_new(api_ctx_t *c, ch_slice_t seg)
{
    int64_t id = 0;
    if (ch_api__parse_id(seg, &id) != 0) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such camera");
        return NULL;
    }
    camera_read_t *j = ch_calloc(1, sizeof(*j));
    j->id = id;
    j->provider_agency = c->who.role == CH_AUTH_PROVIDER ? c->who.agency_id : 0;
    return j;
}

static void camera_read_start(api_ctx_t *c, camera_read_t *j)
{
    ch_health_flush(c->api->svc.health);
    ch_api__store_read(c, camera_read_work, camera_read_done, j);
}

static void handle_one(api_ctx_t *c, ch_slice_t seg)
{
    if (ch_api__reject_query(c)) {
        return;
    }
    camera_read_t *j = camera_read_new(c, seg);
    if (j != NULL) {
        j->transitions = json_array();
        camera_read_start(c, j);
    }
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
    camera_read_t *j = camera_read_new(c, seg);
    if (j != NULL) {
        j->outages = 1;
        j->from = from;
        j->o.items = json_array();
        j->o.to = to;
        j->o.now = now < to ? now : to;
        camera_read_start(c, j);
    }
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
