/*
 * health/report.c: the monthly availability report per provider (see health.h): pure
 * arithmetic over each camera's transitions, and its loading from the store.
 *
 * A camera's time in [from, to) is cut at its transitions; each piece counts for the state
 * the camera was in. Observed time is time in a known state (not unknown); available time is
 * online or degraded (video was there); outage time is offline or auth-failed, and an outage
 * is one run of such pieces (offline then auth-failed is one outage). Only the parts of a
 * piece inside a watch window count: while the hub was down nobody observed the camera, and
 * an outage that lasted across a restart is one outage with the down time left out.
 */
#include "health/health_internal.h"
#include "store/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ch_health_report_builder {
    int64_t from, to;
    ch_health_windows_t win; /* none: all of [from, to) counts */
    ch_health_report_row_t *rows;
    size_t nrows, crows;
    /* The camera being read. */
    int have;
    int64_t cam, agency;
    ch_health_state_t state;
    int64_t at;
    int in_outage;
    double observed, available, outage;
    uint64_t outages;
};

ch_health_report_builder_t *ch_health_report_begin(int64_t from_ms, int64_t to_ms)
{
    ch_health_report_builder_t *b = ch_calloc(1, sizeof(*b));
    b->from = from_ms;
    b->to = to_ms > from_ms ? to_ms : from_ms;
    return b;
}

static ch_health_report_row_t *row_of(ch_health_report_builder_t *b, int64_t agency_id)
{
    for (size_t i = 0; i < b->nrows; i++) {
        if (b->rows[i].agency_id == agency_id) {
            return &b->rows[i];
        }
    }
    if (b->nrows == b->crows) {
        b->crows = b->crows ? b->crows * 2 : 32;
        b->rows = ch_realloc(b->rows, b->crows * sizeof(*b->rows));
    }
    ch_health_report_row_t *r = &b->rows[b->nrows++];
    memset(r, 0, sizeof(*r));
    r->agency_id = agency_id;
    return r;
}

/* ---- watch windows ------------------------------------------------------------------------- */

void ch_health_windows_add(ch_health_windows_t *ws, int64_t from_ms, int64_t to_ms)
{
    if (to_ms <= from_ms) {
        return;
    }
    if (ws->n > 0 && from_ms <= ws->w[ws->n - 1].to) {
        ch_health_window_t *last = &ws->w[ws->n - 1];
        last->to = to_ms > last->to ? to_ms : last->to;
        return;
    }
    if (ws->n == ws->cap) {
        ws->cap = ws->cap ? ws->cap * 2 : 16;
        ws->w = ch_realloc(ws->w, ws->cap * sizeof(*ws->w));
    }
    ws->w[ws->n++] = (ch_health_window_t){from_ms, to_ms};
}

int64_t ch_health_windows_cover(const ch_health_windows_t *ws, int64_t s, int64_t e)
{
    if (e <= s) {
        return 0;
    }
    if (ws->n == 0) {
        return e - s;
    }
    /* The first window that ends after s. */
    size_t lo = 0, hi = ws->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ws->w[mid].to <= s) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    int64_t sum = 0;
    for (size_t i = lo; i < ws->n && ws->w[i].from < e; i++) {
        int64_t a = ws->w[i].from > s ? ws->w[i].from : s;
        int64_t z = ws->w[i].to < e ? ws->w[i].to : e;
        sum += z > a ? z - a : 0;
    }
    return sum;
}

static int window_row(void *ud, int64_t from_ms, int64_t to_ms)
{
    ch_health_windows_add(ud, from_ms, to_ms);
    return 0;
}

int ch_health_windows_load(struct ch_store *st, int64_t from_ms, int64_t to_ms,
                           ch_health_windows_t *ws)
{
    return ch_store_health_watch_list(st, from_ms, to_ms, window_row, ws);
}

void ch_health_windows_fini(ch_health_windows_t *ws)
{
    ch_free(ws->w);
    memset(ws, 0, sizeof(*ws));
}

/* ---- the report ------------------------------------------------------------------------------ */

void ch_health_report_window(ch_health_report_builder_t *b, int64_t from_ms, int64_t to_ms)
{
    ch_health_windows_add(&b->win, from_ms > b->from ? from_ms : b->from,
                          to_ms < b->to ? to_ms : b->to);
}

void ch_health_report_camera(ch_health_report_builder_t *b, int64_t agency_id, uint64_t cameras)
{
    row_of(b, agency_id)->cameras += cameras;
}

/* Accounts the piece [b->at, until) of the current camera in b->state. */
static void piece(ch_health_report_builder_t *b, int64_t until)
{
    int64_t s = b->at > b->from ? b->at : b->from;
    int64_t e = until < b->to ? until : b->to;
    if (e <= s) {
        return;
    }
    int64_t w = ch_health_windows_cover(&b->win, s, e);
    if (w <= 0) {
        return; /* nobody watched: says nothing, and does not end an outage either */
    }
    double d = (double)w / 1000.0;
    int out = b->state == CH_HEALTH_OFFLINE || b->state == CH_HEALTH_AUTH_FAILED;
    if (b->state != CH_HEALTH_UNKNOWN) {
        b->observed += d;
    }
    if (b->state == CH_HEALTH_ONLINE || b->state == CH_HEALTH_DEGRADED) {
        b->available += d;
    }
    if (out) {
        b->outage += d;
        if (!b->in_outage) {
            b->outages++;
        }
    }
    b->in_outage = out;
}

static void end_camera(ch_health_report_builder_t *b)
{
    if (!b->have) {
        return;
    }
    piece(b, b->to);
    ch_health_report_row_t *r = row_of(b, b->agency);
    if (b->observed > 0) {
        r->probed_cameras++;
    }
    r->observed_s += b->observed;
    r->available_s += b->available;
    r->outage_s += b->outage;
    r->outages += b->outages;
    b->have = 0;
}

void ch_health_report_transition(ch_health_report_builder_t *b, int64_t camera_id,
                                 int64_t agency_id, ch_health_state_t state, int64_t at_ms)
{
    if (b->have && b->cam == camera_id) {
        piece(b, at_ms);
    } else {
        end_camera(b);
        b->have = 1;
        b->cam = camera_id;
        b->in_outage = 0;
        b->observed = b->available = b->outage = 0;
        b->outages = 0;
    }
    b->agency = agency_id;
    b->state = state;
    b->at = at_ms;
}

static int row_cmp(const void *a, const void *b)
{
    int64_t x = ((const ch_health_report_row_t *)a)->agency_id;
    int64_t y = ((const ch_health_report_row_t *)b)->agency_id;
    return x < y ? -1 : x > y;
}

void ch_health_report_end(ch_health_report_builder_t *b, ch_health_report_t *out)
{
    end_camera(b);
    for (size_t i = 0; i < b->nrows; i++) {
        ch_health_report_row_t *r = &b->rows[i];
        r->availability_pct = r->observed_s > 0 ? 100.0 * r->available_s / r->observed_s : -1;
    }
    if (b->nrows > 0) {
        qsort(b->rows, b->nrows, sizeof(*b->rows), row_cmp); /* rows is NULL when none */
    }
    out->from_ms = b->from;
    out->to_ms = b->to;
    out->unwatched_s =
        (double)(b->to - b->from - ch_health_windows_cover(&b->win, b->from, b->to)) / 1000.0;
    out->rows = b->rows;
    out->nrows = b->nrows;
    ch_health_windows_fini(&b->win);
    ch_free(b);
}

void ch_health_report_fini(ch_health_report_t *r)
{
    if (r != NULL) {
        ch_free(r->rows);
        memset(r, 0, sizeof(*r));
    }
}

/* ---- from the store ------------------------------------------------------------------------ */

typedef struct before {
    int64_t camera_id, agency_id, at;
    ch_health_state_t state;
} before_t;

typedef struct load {
    ch_health_report_builder_t *b;
    before_t *before;
    size_t n, cap, next;
} load_t;

static int count_row(void *ud, int64_t agency_id, int64_t cameras)
{
    ch_health_report_camera(ud, agency_id, (uint64_t)cameras);
    return 0;
}

static int before_row(void *ud, const ch_store_health_row_t *r)
{
    load_t *l = ud;
    ch_health_state_t s;
    if (ch_health_state_parse(r->new_state, &s) != 0) {
        return 0;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->before = ch_realloc(l->before, l->cap * sizeof(*l->before));
    }
    l->before[l->n++] = (before_t){r->camera_id, r->agency_id, r->at_ms, s};
    return 0;
}

/* Feeds the states at from of the cameras up to camera_id (included). */
static void feed_before(load_t *l, int64_t camera_id)
{
    while (l->next < l->n && l->before[l->next].camera_id <= camera_id) {
        const before_t *x = &l->before[l->next++];
        ch_health_report_transition(l->b, x->camera_id, x->agency_id, x->state, x->at);
    }
}

static int range_row(void *ud, const ch_store_health_row_t *r)
{
    load_t *l = ud;
    ch_health_state_t s;
    if (ch_health_state_parse(r->new_state, &s) != 0) {
        return 0;
    }
    feed_before(l, r->camera_id);
    ch_health_report_transition(l->b, r->camera_id, r->agency_id, s, r->at_ms);
    return 0;
}

int ch_health_report_load(struct ch_store *st, int64_t from_ms, int64_t to_ms,
                          ch_health_report_t *out)
{
    memset(out, 0, sizeof(*out));
    load_t l = {.b = ch_health_report_begin(from_ms, to_ms)};
    int rc = ch_health_windows_load(st, from_ms, to_ms, &l.b->win);
    if (rc == 0) {
        rc = ch_store_camera_count_by_agency(st, count_row, l.b);
    }
    if (rc == 0) {
        rc = ch_store_health_last(st, from_ms, before_row, &l);
    }
    if (rc == 0) {
        rc = ch_store_health_range(st, 0, from_ms, to_ms, 0, 0, range_row, &l);
    }
    feed_before(&l, INT64_MAX);
    ch_free(l.before);
    ch_health_report_t r;
    ch_health_report_end(l.b, &r);
    if (rc != 0) {
        ch_health_report_fini(&r);
        return rc;
    }
    for (size_t i = 0; i < r.nrows; i++) {
        ch_agency_t a;
        if (ch_store_agency_get(st, r.rows[i].agency_id, &a) == 0) {
            snprintf(r.rows[i].agency_name, sizeof(r.rows[i].agency_name), "%s",
                     a.name != NULL ? a.name : "");
            ch_agency_fini(&a);
        }
    }
    *out = r;
    return 0;
}

/* ---- periods and formats ------------------------------------------------------------------- */

int ch_health_utc_offset_parse(const char *v, int *minutes)
{
    int64_t hh = 0, mm = 0;
    if (strlen(v) != 6 || (v[0] != '+' && v[0] != '-') || v[3] != ':' || v[1] == '+' ||
        v[1] == '-' || v[4] == '+' || v[4] == '-' || ch_parse_int64(v + 1, 2, &hh) != 0 ||
        ch_parse_int64(v + 4, 2, &mm) != 0 || hh > 14 || mm > 59) {
        return CH_EPARSE;
    }
    *minutes = (int)(hh * 60 + mm) * (v[0] == '-' ? -1 : 1);
    return 0;
}

int ch_health_month_range(const char *month, int offset_min, int64_t *from_ms, int64_t *to_ms)
{
    if (month == NULL || strlen(month) != 7 || month[4] != '-') {
        return CH_EPARSE;
    }
    int64_t y = 0, m = 0;
    if (ch_parse_int64(month, 4, &y) != 0 || ch_parse_int64(month + 5, 2, &m) != 0 || y < 1970 ||
        y > 9999 || m < 1 || m > 12 || month[0] == '+' || month[5] == '+' || month[0] == '-' ||
        month[5] == '-') {
        return CH_EPARSE;
    }
    struct tm a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.tm_year = (int)y - 1900;
    a.tm_mon = (int)m - 1;
    a.tm_mday = 1;
    b = a;
    if (++b.tm_mon == 12) {
        b.tm_mon = 0;
        b.tm_year++;
    }
    *from_ms = ((int64_t)timegm(&a) - (int64_t)offset_min * 60) * 1000;
    *to_ms = ((int64_t)timegm(&b) - (int64_t)offset_min * 60) * 1000;
    return 0;
}

int ch_health_month_so_far(const char *month, int offset_min, int64_t now_ms, int64_t *from_ms,
                           int64_t *to_ms)
{
    int rc = ch_health_month_range(month, offset_min, from_ms, to_ms);
    if (rc != 0) {
        return rc;
    }
    if (*to_ms > now_ms) {
        *to_ms = now_ms;
    }
    if (*to_ms < *from_ms) {
        *to_ms = *from_ms;
    }
    return 0;
}

/* Appends a CSV field, quoted when it holds a comma, quote or line break (RFC 4180). */
static void csv_field(ch_buf_t *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        ch_buf_append_str(out, s);
        return;
    }
    ch_buf_append_char(out, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            ch_buf_append_char(out, '"');
        }
        ch_buf_append_char(out, *s);
    }
    ch_buf_append_char(out, '"');
}

static void csv_row(ch_buf_t *out, const char *id, const char *name,
                    const ch_health_report_row_t *r)
{
    csv_field(out, id);
    ch_buf_append_char(out, ',');
    csv_field(out, name);
    ch_buf_appendf(out, ",%llu,%llu,", (unsigned long long)r->cameras,
                   (unsigned long long)r->probed_cameras);
    if (r->availability_pct >= 0) {
        ch_buf_appendf(out, "%.3f", r->availability_pct);
    }
    ch_buf_appendf(out, ",%llu,%.1f,%.1f\r\n", (unsigned long long)r->outages, r->outage_s / 60.0,
                   r->observed_s / 60.0);
}

static void total_of(const ch_health_report_t *r, ch_health_report_row_t *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < r->nrows; i++) {
        t->cameras += r->rows[i].cameras;
        t->probed_cameras += r->rows[i].probed_cameras;
        t->observed_s += r->rows[i].observed_s;
        t->available_s += r->rows[i].available_s;
        t->outage_s += r->rows[i].outage_s;
        t->outages += r->rows[i].outages;
    }
    t->availability_pct = t->observed_s > 0 ? 100.0 * t->available_s / t->observed_s : -1;
}

void ch_health_report_csv(const ch_health_report_t *r, const char *label, ch_buf_t *out)
{
    ch_buf_append_str(out, "\xEF\xBB\xBF");
    ch_buf_append_str(out, "period,");
    csv_field(out, label != NULL ? label : "");
    ch_buf_appendf(out, ",unwatched_minutes,%.1f",
                   (double)(int64_t)(r->unwatched_s / 6.0 + 0.5) / 10.0);
    ch_buf_append_str(out, "\r\nagency_id,agency_name,cameras,probed_cameras,availability_pct,"
                           "outages,outage_minutes,observed_minutes\r\n");
    char id[24];
    for (size_t i = 0; i < r->nrows; i++) {
        snprintf(id, sizeof(id), "%lld", (long long)r->rows[i].agency_id);
        csv_row(out, id, r->rows[i].agency_name, &r->rows[i]);
    }
    ch_health_report_row_t t;
    total_of(r, &t);
    csv_row(out, "total", "", &t);
}

static json_t *row_json(const ch_health_report_row_t *r, int with_agency)
{
    json_t *o = json_object();
    if (with_agency) {
        json_object_set_new(o, "agency_id", json_integer(r->agency_id));
        json_object_set_new(o, "agency_name",
                            r->agency_name[0] ? json_string(r->agency_name) : json_null());
    }
    json_object_set_new(o, "cameras", json_integer((json_int_t)r->cameras));
    json_object_set_new(o, "probed_cameras", json_integer((json_int_t)r->probed_cameras));
    json_object_set_new(o, "availability_pct",
                        r->availability_pct >= 0
                            ? json_real((double)(int64_t)(r->availability_pct * 1000 + 0.5) / 1000)
                            : json_null());
    json_object_set_new(o, "outages", json_integer((json_int_t)r->outages));
    json_object_set_new(o, "outage_minutes",
                        json_real((double)(int64_t)(r->outage_s / 6.0 + 0.5) / 10.0));
    json_object_set_new(o, "observed_minutes",
                        json_real((double)(int64_t)(r->observed_s / 6.0 + 0.5) / 10.0));
    return o;
}

struct json_t *ch_health_report_json(const ch_health_report_t *r, const char *label)
{
    char from[32], to[32];
    ch_time_format_rfc3339(r->from_ms, from);
    ch_time_format_rfc3339(r->to_ms, to);
    json_t *items = json_array();
    for (size_t i = 0; i < r->nrows; i++) {
        json_array_append_new(items, row_json(&r->rows[i], 1));
    }
    ch_health_report_row_t t;
    total_of(r, &t);
    return json_pack("{s:s, s:s, s:s, s:f, s:o, s:o}", "period", label != NULL ? label : "", "from",
                     from, "to", to, "unwatched_minutes",
                     (double)(int64_t)(r->unwatched_s / 6.0 + 0.5) / 10.0, "items", items, "total",
                     row_json(&t, 0));
}
