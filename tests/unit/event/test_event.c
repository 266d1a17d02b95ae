/*
 * Unit tests of the event engine, driven through its typed calls as the API drives it, reading
 * the views it answers with (the API's JSON of them is tested in tests/unit/api):
 * a real SQLite store with agencies and cameras made through it, a geo index loaded from that
 * store, the shipped etc/services.json, a real audit log and node key, and an injected clock
 * (no sleeps: expiry, grace and restarts move the clock by hand).
 *
 * The place: point A in central Seoul with cameras placed so that the model of docs/geo.md
 * clearly sees it or not (PTZ cameras see from anywhere within their range; a fixed camera only
 * within heading +- fov/2), and point B 1 km east with two PTZ cameras of another district.
 *
 *   ptz_a      PTZ 20 m north of A, range 100 m, district, 생활방범       sees A (needs_pan)
 *   fixed_a    fixed 30 m south of A facing north, fov 90, range 80 m    sees A (in_fov)
 *   vehicle_a  PTZ 21 m south-east of A, heading unknown, 차량방범       sees A (needs_pan)
 *   away_a     fixed 30 m south of A facing south                        does not see A
 *   inactive_a PTZ 10 m west of A, status inactive                       offline: left out
 *   other_a    PTZ 10 m east of A, provider of type "other"              not drawn on by 112
 *   ptz_b1/b2  PTZ 20 m north/south of B, district 2                     see B, not A
 *
 * Each test gets its own temporary directory (setup), removed afterwards (teardown).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"

#include <jansson.h>
#include <uv.h>

#define T0 1767225600123LL /* 2026-01-01T00:00:00.123Z: not a whole second, on purpose */

#define A_LAT 37.5665
#define A_LON 126.9780
#define N_M   9.0e-6   /* degrees of latitude per metre (a little under, so distances shrink) */
#define E_M   1.133e-5 /* degrees of longitude per metre at 37.57 N */
#define B_LAT A_LAT
#define B_LON (A_LON + 1000 * E_M)

#define MAX_NOTICES 256

typedef struct notice {
    ch_event_notice_kind_t kind;
    int64_t grant_id, event_id, camera_id;
    char status[16];
} notice_t;

typedef struct fixture {
    char dir[256];
    ch_store_t *st;
    ch_geo_t *geo;
    ch_policy_t *policy;
    ch_audit_t *audit;
    ch_audit_key_t key;
    ch_event_engine_t *eng;
    int64_t now; /* the injected clock, ms since the epoch */
    /* agencies */
    int64_t police, station, fire, military, district, district2, other;
    /* cameras */
    int64_t ptz_a, fixed_a, vehicle_a, away_a, inactive_a, other_a, ptz_b1, ptz_b2;
    notice_t notices[MAX_NOTICES];
    size_t nnotices;
    ch_event_gate_t *gate; /* follows the grants table: the notices the relay hears */
    ch_event_follow_t *follow;
} fixture_t;

/* ---- the fixture --------------------------------------------------------------------------- */

static int64_t fixture_clock(void *ud)
{
    return ((fixture_t *)ud)->now;
}

/* A grant's start or end as the gate's follower hears it, when it changes the gate's hold (a
 * repeated start, such as an extension, or the end of a grant never live, is no notice). */
static void on_notice(void *ud, const ch_event_notice_t *n, int hold)
{
    fixture_t *fx = ud;
    if (hold == 0) {
        return;
    }
    assert_true(fx->nnotices < MAX_NOTICES);
    notice_t *s = &fx->notices[fx->nnotices++];
    s->kind = n->kind;
    s->grant_id = n->grant_id;
    s->event_id = n->event_id;
    s->camera_id = n->camera_id;
    snprintf(s->status, sizeof(s->status), "%s", n->status != NULL ? n->status : "");
}

static int64_t make_agency(fixture_t *fx, const char *name, const char *kind, const char *level,
                           const char *type)
{
    ch_agency_t a = {0};
    a.name = (char *)name;
    a.kind = (char *)kind;
    a.level = (char *)level;
    a.type = (char *)type;
    assert_int_equal(ch_store_agency_create(fx->st, &a), 0);
    return a.id;
}

static int64_t make_camera(fixture_t *fx, int64_t agency_id, const char *name, double lat,
                           double lon, const char *kind, double heading, double fov, double range,
                           const char *purpose, const char *status)
{
    ch_camera_t c;
    ch_camera_init(&c);
    c.agency_id = agency_id;
    c.name = (char *)name;
    c.located = 1;
    c.lat = lat;
    c.lon = lon;
    c.kind = (char *)kind;
    c.heading_deg = heading;
    c.fov_deg = fov;
    c.range_m = range;
    c.purpose = (char *)purpose;
    c.status = (char *)status;
    c.pixels = 2000000;
    assert_int_equal(ch_store_camera_create(fx->st, &c), 0);
    return c.id;
}

/*
 * Brings the store's index of the audit log up to date, as the daemon does before it restores
 * the engine (ch_event_restore asks the index whether an event's opening reached the record).
 * Only what the engine asks is indexed here: the event a record is about, by its object
 * ("event:9") or details.event_id.
 */
static void sync_index(fixture_t *fx)
{
    int64_t last = -1;
    assert_int_equal(ch_store_audit_index_last(fx->st, &last), 0);
    ch_audit_iter_t *it = NULL;
    assert_int_equal(ch_audit_iter_new(fx->audit, (uint64_t)(last + 1), &it), 0);
    ch_audit_record_t r;
    int rc;
    while ((rc = ch_audit_iter_next(it, &r)) == 0) {
        json_t *rec = json_loads(r.json, 0, NULL);
        assert_non_null(rec);
        int64_t ids[2];
        size_t n = 0;
        const char *object = json_string_value(json_object_get(rec, "object"));
        if (object != NULL && strncmp(object, "event:", 6) == 0 &&
            ch_parse_int64(object + 6, strlen(object + 6), &ids[n]) == 0) {
            n++;
        }
        json_t *eid = json_object_get(json_object_get(rec, "details"), "event_id");
        if (json_is_integer(eid)) {
            ids[n++] = json_integer_value(eid);
        }
        ch_store_audit_row_t row = {.seq = (int64_t)r.seq,
                                    .time_ns = json_integer_value(json_object_get(rec, "time")),
                                    .actor = json_string_value(json_object_get(rec, "actor")),
                                    .action = json_string_value(json_object_get(rec, "action")),
                                    .event_ids = n > 0 ? ids : NULL,
                                    .n_event_ids = n};
        assert_int_equal(ch_store_audit_index_add(fx->st, &row), 0);
        json_decref(rec);
    }
    assert_int_equal(rc, CH_ENOTFOUND);
    ch_audit_iter_free(it);
}

/* A new engine on the fixture's store, log and clock (after a restart too). */
static void make_engine(fixture_t *fx)
{
    sync_index(fx);
    ch_event_config_t cfg = {.st = fx->st,
                             .audit = fx->audit,
                             .sk = fx->key.sk,
                             .rtsp_base = "rtsp://hub.test:8554",
                             .ws_base = "wss://hub.test",
                             .min_lat = 37.4,
                             .min_lon = 126.8,
                             .max_lat = 37.7,
                             .max_lon = 127.2,
                             .grace_ms = 30000,
                             .clock = fixture_clock,
                             .clock_ud = fx};
    fx->eng = ch_event_engine_new(&cfg);
    assert_non_null(fx->eng);
    ch_event_set_policy(fx->eng, fx->policy);
    ch_event_set_geo(fx->eng, fx->geo);
    assert_int_equal(ch_event_restore(fx->eng), 0);
}

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof(fx->dir), "%s/ch_event_test_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    char url[320], audit_dir[320];
    snprintf(url, sizeof(url), "sqlite:%s/hub.db", fx->dir);
    snprintf(audit_dir, sizeof(audit_dir), "%s/audit", fx->dir);
    char *err = NULL;
    ch_audit_options_t aopt = {.dir = audit_dir, .key = &fx->key};
    if (ch_store_open(url, &fx->st, &err) != 0 ||
        ch_policy_load_file(CH_SOURCE_DIR "/etc/services.json", &fx->policy, &err) != 0 ||
        ch_audit_keys_init(fx->dir, &err) != 0 ||
        ch_audit_keys_load(fx->dir, &fx->key, &err) != 0 ||
        ch_audit_open(&aopt, &fx->audit, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err != NULL ? err : "?");
        ch_free(err);
        return -1;
    }
    fx->now = T0;

    fx->police = make_agency(fx, "서울경찰청 112종합상황실", "user", "city", "police-112");
    fx->station = make_agency(fx, "종로경찰서", "user", "district", "police-station");
    fx->fire = make_agency(fx, "서울종합방재센터 119", "user", "city", "fire-119");
    fx->military = make_agency(fx, "수도방위사령부", "user", "national", "military");
    fx->district = make_agency(fx, "중구 통합관제센터", "provider", "district", "district-center");
    fx->district2 =
        make_agency(fx, "종로구 통합관제센터", "provider", "district", "district-center");
    fx->other = make_agency(fx, "민간 상가관리단", "provider", "district", "other");

    const double unk = CH_STORE_UNKNOWN_DOUBLE;
    fx->ptz_a = make_camera(fx, fx->district, "A ptz north", A_LAT + 20 * N_M, A_LON, "ptz", 90, 60,
                            100, "생활방범", "active");
    fx->fixed_a = make_camera(fx, fx->district, "A fixed south, facing north", A_LAT - 30 * N_M,
                              A_LON, "fixed", 0, 90, 80, "생활방범", "active");
    fx->vehicle_a = make_camera(fx, fx->district, "A plate reader", A_LAT - 15 * N_M,
                                A_LON + 15 * E_M, "ptz", unk, unk, 100, "차량방범", "active");
    fx->away_a = make_camera(fx, fx->district, "A fixed south, facing south", A_LAT - 30 * N_M,
                             A_LON + 2 * E_M, "fixed", 180, 60, 80, "생활방범", "active");
    fx->inactive_a = make_camera(fx, fx->district, "A ptz west, broken", A_LAT, A_LON - 10 * E_M,
                                 "ptz", 0, 60, 100, "생활방범", "inactive");
    fx->other_a = make_camera(fx, fx->other, "A mall ptz", A_LAT, A_LON + 10 * E_M, "ptz", 0, 60,
                              100, "생활방범", "active");
    fx->ptz_b1 = make_camera(fx, fx->district2, "B ptz north", B_LAT + 20 * N_M, B_LON, "ptz", 0,
                             60, 100, "생활방범", "active");
    fx->ptz_b2 = make_camera(fx, fx->district2, "B ptz south", B_LAT - 20 * N_M, B_LON, "ptz", 0,
                             60, 100, "어린이보호", "active");

    fx->geo = ch_geo_new();
    assert_int_equal(ch_geo_load(fx->geo, fx->st), 0);
    assert_int_equal(ch_geo_count(fx->geo), 8);
    static const uint8_t pk[32] = {1};
    fx->gate = ch_event_gate_new(pk);
    assert_int_equal(ch_event_follow_grants(fx->st, fx->gate, on_notice, fx, &fx->follow), 0);
    make_engine(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_event_engine_free(fx->eng);
    ch_event_follow_end(fx->follow);
    ch_event_gate_free(fx->gate);
    ch_geo_free(fx->geo);
    ch_audit_close(fx->audit);
    ch_store_close(fx->st);
    ch_policy_free(fx->policy);
    ch_audit_key_wipe(&fx->key);
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    ch_free(fx);
    return 0;
}

/* ---- actors --------------------------------------------------------------------------------- */

static ch_event_actor_t agency(int64_t id, const char *actor)
{
    return (ch_event_actor_t){actor, CH_EVENT_ROLE_AGENCY, id};
}

static ch_event_actor_t provider(int64_t id, const char *actor)
{
    return (ch_event_actor_t){actor, CH_EVENT_ROLE_PROVIDER, id};
}

static const ch_event_actor_t operator_kim = {"user:kim", CH_EVENT_ROLE_OPERATOR, 0};

/* ---- reading records and answers ------------------------------------------------------------ */

/* A text field of an audit record (a JSON object). */
static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

static int64_t int_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* A time of an audit record: RFC 3339 text. */
static void assert_time(const json_t *v, int64_t ms)
{
    char want[32];
    ch_time_format_rfc3339(ms, want);
    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), want);
}

/* The engine's answers are views on the heap here (view_free), so that a test holds them as it
 * holds pointers. */
static ch_event_view_t *view_new(void)
{
    return ch_calloc(1, sizeof(ch_event_view_t));
}

static void view_free(ch_event_view_t *v)
{
    ch_event_view_fini(v);
    ch_free(v);
}

static size_t grant_count(const ch_event_view_t *ev)
{
    assert_non_null(ev);
    return ev->ngrants;
}

/* Each grant view g of ev in turn (i a size_t). */
#define FOR_EACH_GRANT(i, g, ev)                                                                   \
    for ((i) = 0; (i) < (ev)->ngrants && ((g) = &(ev)->grants[i]); (i)++)

/* The grant of a camera in an event's answer (the last one when several), or NULL. */
static const ch_event_grant_view_t *grant_of(const ch_event_view_t *ev, int64_t camera_id)
{
    const ch_event_grant_view_t *found = NULL;
    for (size_t i = 0; i < ev->ngrants; i++) {
        if (ev->grants[i].grant.camera_id == camera_id) {
            found = &ev->grants[i];
        }
    }
    return found;
}

/* Why a grant's camera was chosen (the JSON object text the store keeps): a text field, a
 * number. */
static void assert_why_str(const ch_event_grant_view_t *g, const char *key, const char *want)
{
    assert_non_null(g);
    json_t *why = json_loads(g->grant.why, 0, NULL);
    assert_true(json_is_object(why));
    assert_string_equal(str_of(why, key), want);
    json_decref(why);
}

static double why_number(const ch_event_grant_view_t *g, const char *key)
{
    json_t *why = json_loads(g->grant.why, 0, NULL);
    json_t *v = json_object_get(why, key);
    assert_true(json_is_number(v));
    double d = json_number_value(v);
    json_decref(why);
    return d;
}

/* An open at (lat, lon); incident, reason NULL and duration_s 0 leave them out. */
static ch_event_open_req_t open_req(const char *service, double lat, double lon,
                                    const char *incident, const char *reason, int64_t duration_s)
{
    ch_event_open_req_t r;
    memset(&r, 0, sizeof(r));
    r.service = service;
    r.located = 1;
    r.lat = lat;
    r.lon = lon;
    r.incident = incident;
    r.reason = reason;
    r.duration_s = duration_s;
    return r;
}

/* After a call: its answer on success, else NULL (a refusal leaves the view zeroed). */
static ch_event_view_t *answered(int rc, ch_event_view_t *v)
{
    if (rc < 0) {
        assert_int_equal(v->event.id, 0);
        assert_null(v->grants);
        view_free(v);
        return NULL;
    }
    return v;
}

/* Opens with req; returns 0, or -1 for any refusal. */
static int try_open(fixture_t *fx, const ch_event_actor_t *who, ch_event_open_req_t req,
                    ch_event_view_t **out, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = view_new();
    int rc = ch_event_open(fx->eng, who, &req, *out, err);
    *out = answered(rc, *out);
    return rc < 0 ? -1 : rc;
}

/* An event of a 112 service that must open (active). */
static ch_event_view_t *open_in(fixture_t *fx, const ch_event_actor_t *who, const char *service,
                                double lat, double lon, int64_t duration_s)
{
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    int rc = try_open(
        fx, who, open_req(service, lat, lon, "112-20260101-0042", "robbery reported", duration_s),
        &out, &err);
    if (rc != 0) {
        fprintf(stderr, "open: %d %s %s\n", err.kind, ch_fault_code(&err), err.message);
    }
    assert_int_equal(rc, 0);
    assert_non_null(out);
    assert_string_equal(out->event.status, "active");
    return out;
}

/* A 112-center event (a place) that must open. */
static ch_event_view_t *open_112(fixture_t *fx, const ch_event_actor_t *who, double lat, double lon,
                                 int64_t duration_s)
{
    return open_in(fx, who, "112-center", lat, lon, duration_s);
}

/* A 112-dispatch event (it follows the patrol car: positions move it) that must open. */
static ch_event_view_t *open_dispatch(fixture_t *fx, const ch_event_actor_t *who, double lat,
                                      double lon, int64_t duration_s)
{
    return open_in(fx, who, "112-dispatch", lat, lon, duration_s);
}

/* Reads an event: its view, or NULL with err (a refusal). */
static ch_event_view_t *try_get(fixture_t *fx, const ch_event_actor_t *who, int64_t id,
                                ch_fault_t *err)
{
    ch_event_view_t *out = view_new();
    memset(err, 0, sizeof(*err));
    return answered(ch_event_get(fx->eng, who, id, out, err), out);
}

static ch_event_view_t *get_event(fixture_t *fx, const ch_event_actor_t *who, int64_t id)
{
    ch_fault_t err;
    ch_event_view_t *out = try_get(fx, who, id, &err);
    assert_non_null(out);
    return out;
}

/* The number of events who lists with f (all of them, whatever the page). */
static int64_t list_total(fixture_t *fx, const ch_event_actor_t *who, const ch_store_filter_t *f)
{
    ch_event_page_t page;
    ch_fault_t err;
    assert_int_equal(ch_event_list(fx->eng, who, f, &page, &err), 0);
    assert_true(page.count <= (size_t)page.total);
    int64_t total = page.total;
    ch_event_page_fini(&page);
    return total;
}

/* Calls an operation taking (id, reason): close, revoke. 0, or -1 for any refusal. */
typedef int (*op_fn)(ch_event_engine_t *, const ch_event_actor_t *, int64_t, const char *,
                     ch_event_view_t *, ch_fault_t *);

static int call(fixture_t *fx, op_fn fn, const ch_event_actor_t *who, int64_t id,
                const char *reason, ch_event_view_t **out, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = view_new();
    int rc = fn(fx->eng, who, id, reason, *out, err);
    *out = answered(rc, *out);
    return rc < 0 ? -1 : rc;
}

/* Revokes one grant: 0 and *out (its view; grant_view_free), or -1 for any refusal. */
static int revoke_grant(fixture_t *fx, const ch_event_actor_t *who, int64_t grant_id,
                        const char *reason, ch_event_grant_view_t **out, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = ch_calloc(1, sizeof(**out));
    int rc = ch_event_revoke_grant(fx->eng, who, grant_id, reason, *out, err);
    if (rc < 0) {
        assert_null((*out)->grant.status);
        ch_free(*out);
        *out = NULL;
    }
    return rc < 0 ? -1 : rc;
}

static void grant_view_free(ch_event_grant_view_t *g)
{
    ch_event_grant_view_fini(g);
    ch_free(g);
}

static int decide(fixture_t *fx, const ch_event_actor_t *who, int64_t id, int approve,
                  const char *note, ch_event_view_t **out, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = view_new();
    int rc = ch_event_decide(fx->eng, who, id, approve, note, *out, err);
    *out = answered(rc, *out);
    return rc < 0 ? -1 : rc;
}

static int extend(fixture_t *fx, const ch_event_actor_t *who, int64_t id, int64_t duration_s,
                  ch_event_view_t **out, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = view_new();
    int rc = ch_event_extend(fx->eng, who, id, duration_s, *out, err);
    *out = answered(rc, *out);
    return rc < 0 ? -1 : rc;
}

static int move_to(fixture_t *fx, const ch_event_actor_t *who, int64_t id, double lat, double lon,
                   ch_event_view_t **out, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = view_new();
    int rc = ch_event_move(fx->eng, who, id, lat, lon, *out, err);
    *out = answered(rc, *out);
    return rc < 0 ? -1 : rc;
}

static int64_t count_of(fixture_t *fx, const char *table)
{
    int64_t n = -1;
    assert_int_equal(ch_store_count(fx->st, table, &n), 0);
    return n;
}

/* ---- tokens --------------------------------------------------------------------------------- */

/* Checks a grant's token and URLs: the token verifies with the node's public key now and names
 * the grant, its event, camera and agency, and the grant's expiry (rounded up to a second). */
static void assert_token(fixture_t *fx, const ch_event_grant_view_t *g, int64_t event_id,
                         int64_t agency_id, int64_t expires_ms)
{
    assert_non_null(g);
    const char *tok = g->token;
    assert_non_null(tok);
    ch_event_claims_t c;
    assert_int_equal(ch_event_token_verify(fx->key.pk, tok, strlen(tok), fx->now / 1000, &c), 0);
    assert_int_equal(c.grant_id, g->grant.id);
    assert_int_equal(c.event_id, event_id);
    assert_int_equal(c.camera_id, g->grant.camera_id);
    assert_int_equal(c.agency_id, agency_id);
    assert_int_equal(c.expires_s, (expires_ms + 999) / 1000);
    char want[512];
    snprintf(want, sizeof(want), "rtsp://hub.test:8554/cameras/%lld?token=%s",
             (long long)c.camera_id, tok);
    assert_string_equal(g->rtsp_url, want);
    snprintf(want, sizeof(want), "wss://hub.test/api/v1/cameras/%lld/live?token=%s",
             (long long)c.camera_id, tok);
    assert_string_equal(g->ws_url, want);
}

static void assert_no_token(const ch_event_grant_view_t *g)
{
    assert_non_null(g);
    assert_null(g->token);
    assert_null(g->rtsp_url);
    assert_null(g->ws_url);
}

/* ---- notices and the audit record ------------------------------------------------------------ */

/* The index of the first notice of kind for grant_id at or after from, or -1. */
static long notice_index(const fixture_t *fx, ch_event_notice_kind_t kind, int64_t grant_id,
                         size_t from)
{
    for (size_t i = from; i < fx->nnotices; i++) {
        if (fx->notices[i].kind == kind && fx->notices[i].grant_id == grant_id) {
            return (long)i;
        }
    }
    return -1;
}

/* Every grant of ev was announced STARTED ("active") and then ENDED with status. */
static void assert_started_then_ended(const fixture_t *fx, const ch_event_view_t *ev,
                                      const char *status)
{
    const ch_event_grant_view_t *g;
    size_t i;
    FOR_EACH_GRANT(i, g, ev)
    {
        int64_t id = g->grant.id;
        long s = notice_index(fx, CH_EVENT_GRANT_STARTED, id, 0);
        assert_true(s >= 0);
        assert_string_equal(fx->notices[s].status, "active");
        assert_int_equal(fx->notices[s].camera_id, g->grant.camera_id);
        long e = notice_index(fx, CH_EVENT_GRANT_ENDED, id, 0);
        assert_true(e > s);
        assert_string_equal(fx->notices[e].status, status);
        assert_int_equal(fx->notices[e].event_id, ev->event.id);
        /* Ended once. */
        assert_int_equal(notice_index(fx, CH_EVENT_GRANT_ENDED, id, (size_t)e + 1), -1);
    }
}

/* The records appended from seq `from` on, as an array of objects. */
static json_t *records_since(fixture_t *fx, uint64_t from)
{
    ch_audit_iter_t *it = NULL;
    assert_int_equal(ch_audit_iter_new(fx->audit, from, &it), 0);
    json_t *a = json_array();
    ch_audit_record_t rec;
    int rc;
    while ((rc = ch_audit_iter_next(it, &rec)) == 0) {
        json_t *j = json_loads(rec.json, 0, NULL);
        assert_non_null(j);
        json_array_append_new(a, j);
    }
    assert_int_equal(rc, CH_ENOTFOUND);
    ch_audit_iter_free(it);
    return a;
}

/* The last record since `from` with this action (and object, when not NULL); a new reference,
 * or NULL. */
static json_t *find_record(fixture_t *fx, uint64_t from, const char *action, const char *object)
{
    json_t *all = records_since(fx, from), *r, *found = NULL;
    size_t i;
    json_array_foreach(all, i, r)
    {
        const char *o = json_string_value(json_object_get(r, "object"));
        if (strcmp(str_of(r, "action"), action) == 0 &&
            (object == NULL || (o != NULL && strcmp(o, object) == 0))) {
            found = r;
        }
    }
    json_incref(found);
    json_decref(all);
    return found;
}

static void event_object(char out[48], int64_t id)
{
    snprintf(out, 48, "event:%lld", (long long)id);
}

/* ---- opening ------------------------------------------------------------------------------- */

static void test_open_grants_the_cameras_that_see_the_point(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_view_t *ev = open_112(fx, &police, A_LAT, A_LON, 900);
    int64_t id = ev->event.id;
    int64_t expires = T0 + 900 * 1000;

    assert_string_equal(ev->event.service, "112-center");
    assert_int_equal(ev->event.agency_id, fx->police);
    assert_int_equal(ev->event.duration_s, 900);
    assert_int_equal(ev->event.expires_at, expires);
    assert_true(ev->event.created_at > 0);
    assert_string_equal(ev->event.basis_code, "PIPA-18-2-7");
    assert_non_null(ev->basis_text);
    assert_string_equal(ev->event.incident, "112-20260101-0042");
    assert_string_equal(ev->event.created_by, "user:park");

    /* Exactly the cameras that see A and that 112-center draws on. */
    assert_int_equal(grant_count(ev), 3);
    const int64_t seen[] = {fx->ptz_a, fx->fixed_a, fx->vehicle_a};
    for (size_t i = 0; i < CH_ARRAY_SIZE(seen); i++) {
        const ch_event_grant_view_t *g = grant_of(ev, seen[i]);
        assert_non_null(g);
        assert_string_equal(g->grant.status, "active");
        assert_int_equal(g->grant.provider_id, fx->district);
        assert_int_equal(g->grant.expires_at, expires);
        assert_non_null(g->grant.why);
        assert_token(fx, g, id, fx->police, expires);
    }
    assert_why_str(grant_of(ev, fx->fixed_a), "visibility", "in_fov");
    assert_why_str(grant_of(ev, fx->ptz_a), "visibility", "needs_pan");
    assert_null(grant_of(ev, fx->away_a));     /* looks away */
    assert_null(grant_of(ev, fx->inactive_a)); /* offline */
    assert_null(grant_of(ev, fx->other_a));    /* a provider type 112-center does not draw on */
    assert_null(grant_of(ev, fx->ptz_b1));     /* 1 km away */
    assert_int_equal(count_of(fx, "events"), 1);
    assert_int_equal(count_of(fx, "grants"), 3);
    assert_int_equal(ch_event_live_grants(fx->eng), 3);
    assert_int_equal(ch_event_next_due(fx->eng), expires);

    /* Started notices, one per grant. */
    assert_int_equal(fx->nnotices, 3);
    for (size_t i = 0; i < fx->nnotices; i++) {
        assert_int_equal(fx->notices[i].kind, CH_EVENT_GRANT_STARTED);
        assert_int_equal(fx->notices[i].event_id, id);
    }

    /* On the record, with the cameras. */
    char object[48];
    event_object(object, id);
    json_t *r = find_record(fx, seq, "event.open", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "outcome"), "ok");
    assert_string_equal(str_of(r, "actor"), "user:park");
    assert_string_equal(str_of(r, "purpose"), "112-center");
    assert_string_equal(str_of(r, "legal_basis"), "PIPA-18-2-7");
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "details"), "cameras")), 3);
    json_decref(r);

    /* Another agency does not see the event; the provider of its cameras does, without
     * tokens. */
    ch_event_actor_t fire = agency(fx->fire, "user:fire");
    ch_fault_t err;
    assert_null(try_get(fx, &fire, id, &err));
    assert_int_equal(err.kind, CH_FAULT_NOT_FOUND);
    ch_event_actor_t prov = provider(fx->district, "apikey:9");
    ch_event_view_t *pv = get_event(fx, &prov, id);
    assert_int_equal(grant_count(pv), 3);
    assert_no_token(grant_of(pv, fx->ptz_a));
    view_free(pv);
    ch_event_actor_t prov2 = provider(fx->district2, "apikey:10");
    assert_null(try_get(fx, &prov2, id, &err));
    assert_int_equal(err.kind, CH_FAULT_NOT_FOUND);
    view_free(ev);

    /* A place no camera sees: the event opens with no grant (and expires all the same). */
    ch_event_view_t *none = open_112(fx, &police, A_LAT + 0.05, A_LON, 60);
    assert_int_equal(grant_count(none), 0);
    fx->now = T0 + 60 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 0);
    ch_event_view_t *v = get_event(fx, &police, none->event.id);
    assert_string_equal(v->event.status, "expired");
    view_free(v);
    view_free(none);
}

/* A two-point GeoJSON LineString: its text (free) and *line parsed (ch_geo_line_fini). */
static char *path_of(double lon1, double lat1, double lon2, double lat2, ch_geo_line_t *line)
{
    json_t *j = json_pack("{s:s, s:[[f,f],[f,f]]}", "type", "LineString", "coordinates", lon1, lat1,
                          lon2, lat2);
    char gerr[200];
    assert_non_null(j);
    assert_int_equal(ch_geo_parse_linestring(j, line, gerr, sizeof(gerr)), 0);
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(j);
    return text;
}

static void test_open_along_a_path(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_geo_line_t line;
    char *text = path_of(A_LON, A_LAT, B_LON, B_LAT, &line);
    ch_event_open_req_t b = open_req("112-center", 0, 0, "112-7", "car chase", 0);
    b.located = 0;
    b.path = &line;
    b.path_geojson = text;
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(try_open(fx, &police, b, &out, &err), 0);
    int64_t id = out->event.id;
    assert_false(out->event.located);
    assert_string_equal(out->event.path, text);
    /* Every camera along the 1 km that sees the line and may serve, and none other. */
    assert_int_equal(grant_count(out), 5);
    const int64_t seen[] = {fx->ptz_a, fx->fixed_a, fx->vehicle_a, fx->ptz_b1, fx->ptz_b2};
    for (size_t i = 0; i < CH_ARRAY_SIZE(seen); i++) {
        const ch_event_grant_view_t *g = grant_of(out, seen[i]);
        assert_non_null(g);
        assert_true(why_number(g, "to_m") >= why_number(g, "from_m"));
        assert_token(fx, g, id, fx->police, fx->now + 3600 * 1000);
    }
    assert_null(grant_of(out, fx->away_a));
    assert_null(grant_of(out, fx->other_a));
    assert_null(grant_of(out, fx->inactive_a));
    view_free(out);
    /* A path event does not move. */
    assert_int_equal(move_to(fx, &police, id, B_LAT, B_LON, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);
    /* A path leaving the city is refused. */
    ch_geo_line_fini(&line);
    free(text);
    text = path_of(A_LON, A_LAT, 129.0, 35.1, &line);
    b = open_req("112-center", 0, 0, "112-8", "x", 0);
    b.located = 0;
    b.path = &line;
    b.path_geojson = text;
    assert_int_equal(try_open(fx, &police, b, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_INVALID);
    assert_string_equal(ch_fault_code(&err), "outside");
    assert_int_equal(count_of(fx, "events"), 1);
    ch_geo_line_fini(&line);
    free(text);
}

/* A path's cameras found off the loop (ch_event_open_prepare, the query run, then the open with
 * its answer) are those an open finds in one call; a place has nothing to run off the loop;
 * a request prepare refuses is refused as the open refuses it. */
static void test_a_path_open_prepared_off_the_loop(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_geo_line_t line;
    char *text = path_of(A_LON, A_LAT, B_LON, B_LAT, &line);
    ch_event_open_req_t b = open_req("112-center", 0, 0, "112-7", "car chase", 0);
    b.located = 0;
    b.path = &line;
    b.path_geojson = text;
    ch_event_path_query_t *q = NULL;
    ch_fault_t err;
    ch_event_view_t *one = NULL, *two = NULL;
    assert_int_equal(ch_event_open_prepare(fx->eng, &police, &b, &q, &err), 0);
    assert_non_null(q);
    ch_event_path_query_run(q);
    b.path_cameras = q;
    assert_int_equal(try_open(fx, &police, b, &one, &err), 0);
    ch_event_path_query_free(q);
    b.path_cameras = NULL;
    assert_int_equal(try_open(fx, &police, b, &two, &err), 0);
    assert_int_equal(grant_count(one), 5);
    assert_int_equal(grant_count(two), 5);
    for (size_t i = 0; i < 5; i++) {
        const ch_event_grant_view_t *g1 = &one->grants[i], *g2 = &two->grants[i];
        assert_int_equal(g1->grant.camera_id, g2->grant.camera_id);
        assert_string_equal(g1->grant.why, g2->grant.why);
    }
    view_free(one);
    view_free(two);

    /* A place: nothing to run off the loop. */
    ch_event_open_req_t at = open_req("112-center", A_LAT, A_LON, "112-1", "x", 60);
    assert_int_equal(ch_event_open_prepare(fx->eng, &police, &at, &q, &err), 0);
    assert_null(q);
    /* Refused as the open refuses: a path leaving the city, a provider. */
    ch_geo_line_fini(&line);
    free(text);
    text = path_of(A_LON, A_LAT, 129.0, 35.1, &line);
    b.path_geojson = text;
    assert_int_equal(ch_event_open_prepare(fx->eng, &police, &b, &q, &err), CH_EINVAL);
    assert_null(q);
    assert_string_equal(ch_fault_code(&err), "outside");
    ch_event_actor_t prov = provider(fx->district, "apikey:3");
    assert_int_equal(ch_event_open_prepare(fx->eng, &prov, &b, &q, &err), CH_EPERM);
    assert_int_equal(err.kind, CH_FAULT_FORBIDDEN);
    assert_null(q);
    assert_int_equal(count_of(fx, "events"), 2);
    ch_geo_line_fini(&line);
    free(text);
}

static void test_tokens_verify_and_fail_when_changed_or_expired(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_112(fx, &police, A_LAT, A_LON, 600);
    const ch_event_grant_view_t *g = grant_of(ev, fx->ptz_a);
    const char *tok = g->token;
    assert_non_null(tok);
    size_t len = strlen(tok);
    assert_true(len < CH_EVENT_TOKEN_MAX);
    assert_int_equal(strncmp(tok, "v1.", 3), 0);
    int64_t expires_s = (T0 + 600 * 1000 + 999) / 1000;

    /* Every single-byte change is refused: bad signature or not a token. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    char copy[CH_EVENT_TOKEN_MAX];
    ch_event_claims_t c;
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < 3; k++) {
            memcpy(copy, tok, len + 1);
            char repl = alphabet[(i * 7 + k * 23 + 1) % (sizeof(alphabet) - 1)];
            if (repl == tok[i]) {
                repl = alphabet[(i * 7 + k * 23 + 2) % (sizeof(alphabet) - 1)];
            }
            copy[i] = repl;
            int rc = ch_event_token_verify(fx->key.pk, copy, len, fx->now / 1000, &c);
            if (rc != CH_EPERM && rc != CH_EPARSE) {
                fprintf(stderr, "byte %zu '%c' -> '%c': %d\n", i, tok[i], repl, rc);
            }
            assert_true(rc == CH_EPERM || rc == CH_EPARSE);
        }
    }
    /* Cut, extended, empty, another key. */
    assert_int_equal(ch_event_token_verify(fx->key.pk, tok, len - 1, fx->now / 1000, &c) != 0, 1);
    memcpy(copy, tok, len);
    copy[len] = 'A';
    copy[len + 1] = '\0';
    assert_int_equal(ch_event_token_verify(fx->key.pk, copy, len + 1, fx->now / 1000, &c) != 0, 1);
    assert_int_equal(ch_event_token_verify(fx->key.pk, "", 0, fx->now / 1000, &c), CH_EPARSE);
    uint8_t other_pk[32];
    memcpy(other_pk, fx->key.pk, sizeof(other_pk));
    other_pk[5] ^= 0x40;
    int rc = ch_event_token_verify(other_pk, tok, len, fx->now / 1000, &c);
    assert_true(rc == CH_EPERM || rc == CH_EPARSE);

    /* A second before the expiry it verifies; at and after it, CH_EEXPIRED with the claims. */
    assert_int_equal(ch_event_token_verify(fx->key.pk, tok, len, expires_s - 1, &c), 0);
    assert_int_equal(ch_event_token_verify(fx->key.pk, tok, len, expires_s, &c), CH_EEXPIRED);
    assert_int_equal(c.grant_id, g->grant.id);
    assert_int_equal(c.expires_s, expires_s);
    assert_int_equal(ch_event_token_verify(fx->key.pk, tok, len, expires_s + 3600, &c),
                     CH_EEXPIRED);

    /* A byte outside the alphabet is refused wherever it is, even where a lenient base64
     * decoder would read it as '_' (libsodium 1.0.18 does so for every byte >= 0x80). */
    for (int64_t gid = 1; gid < 200; gid++) {
        ch_event_claims_t any = {gid, 2, 3, 4, expires_s};
        char t[CH_EVENT_TOKEN_MAX];
        ch_event_token_make(fx->key.sk, &any, t);
        size_t n = strlen(t);
        assert_int_equal(ch_event_token_verify(fx->key.pk, t, n, fx->now / 1000, &c), 0);
        for (size_t i = 0; i < n; i++) {
            static const unsigned char odd[] = {0x80, 0xb8, 0xdf, 0xff, ' ', '=', '+', '/', 0};
            char was = t[i];
            for (size_t k = 0; k < sizeof(odd); k++) {
                t[i] = (char)odd[k];
                rc = ch_event_token_verify(fx->key.pk, t, n, fx->now / 1000, &c);
                assert_true(rc == CH_EPERM || rc == CH_EPARSE);
            }
            t[i] = was;
        }
    }

    /* make -> verify round trip with extreme claims. */
    ch_event_claims_t big = {INT64_MAX, 1, INT64_MAX - 1, 0, INT64_MAX};
    char t2[CH_EVENT_TOKEN_MAX];
    ch_event_token_make(fx->key.sk, &big, t2);
    assert_int_equal(ch_event_token_verify(fx->key.pk, t2, strlen(t2), 0, &c), 0);
    assert_memory_equal(&c, &big, sizeof(c));
    view_free(ev);
}

/* ---- denials -------------------------------------------------------------------------------- */

/* Opens with body and expects a refusal: nothing created, and one "denied" record with action
 * (the record of a denial by the policy names the rule). */
static void expect_refusal(fixture_t *fx, const ch_event_actor_t *who, ch_event_open_req_t body,
                           ch_fault_kind_t kind, const char *code, const char *rule,
                           const char *field, const char *action)
{
    uint64_t seq = ch_audit_size(fx->audit);
    size_t notices = fx->nnotices;
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(try_open(fx, who, body, &out, &err), -1);
    assert_null(out);
    assert_int_equal(err.kind, kind);
    assert_string_equal(ch_fault_code(&err), code);
    if (rule != NULL) {
        assert_non_null(err.rule);
        assert_string_equal(err.rule, rule);
    } else {
        assert_null(err.rule);
    }
    if (field != NULL) {
        assert_string_equal(err.field, field);
    }
    assert_true(err.message[0] != '\0');
    assert_int_equal(count_of(fx, "events"), 0);
    assert_int_equal(count_of(fx, "grants"), 0);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_int_equal(fx->nnotices, notices);

    json_t *recs = records_since(fx, seq);
    assert_int_equal(json_array_size(recs), 1);
    json_t *r = json_array_get(recs, 0);
    assert_string_equal(str_of(r, "outcome"), "denied");
    assert_string_equal(str_of(r, "action"), action);
    assert_string_equal(str_of(r, "actor"), who->actor);
    if (rule != NULL) {
        assert_string_equal(str_of(json_object_get(r, "details"), "rule"), rule);
    } else {
        assert_string_equal(str_of(json_object_get(r, "details"), "code"), code);
    }
    json_decref(recs);
}

static void test_denials_create_nothing_and_are_on_the_record(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_actor_t fire = agency(fx->fire, "user:choi");

    expect_refusal(fx, &fire, open_req("112-center", A_LAT, A_LON, "119-1", "fire", 600),
                   CH_FAULT_DENIED, "denied", "agency_type_not_allowed", NULL, "event.deny");
    expect_refusal(fx, &police, open_req("112-center", A_LAT, A_LON, NULL, "robbery", 600),
                   CH_FAULT_DENIED, "denied", "incident_required", NULL, "event.deny");
    expect_refusal(fx, &police, open_req("112-center", A_LAT, A_LON, "112-1", NULL, 600),
                   CH_FAULT_DENIED, "denied", "reason_required", NULL, "event.deny");
    expect_refusal(fx, &police, open_req("112-center", A_LAT, A_LON, "112-1", "robbery", 3601),
                   CH_FAULT_DENIED, "denied", "duration_over_limit", NULL, "event.deny");
    expect_refusal(fx, &police, open_req("no-such-service", A_LAT, A_LON, "112-1", "x", 60),
                   CH_FAULT_INVALID, "invalid", NULL, "service", "event.open");
    /* Busan: in Korea, outside this hub's city. */
    expect_refusal(fx, &police, open_req("112-center", 35.1796, 129.0756, "112-1", "x", 60),
                   CH_FAULT_INVALID, "outside", NULL, "location", "event.open");
    expect_refusal(fx, &police, open_req("112-center", 0, 0, "112-1", "x", 60), CH_FAULT_INVALID,
                   "outside", NULL, "location", "event.open");
    /* Bad input is refused and recorded too. */
    ch_event_open_req_t b = open_req("112-center", A_LAT, A_LON, "112-1", "x", 60);
    b.has_agency_id = 1;
    b.agency_id = fx->station;
    expect_refusal(fx, &police, b, CH_FAULT_INVALID, "invalid", NULL, "agency_id", "event.open");
    b = open_req("112-center", A_LAT, A_LON, "112-1", "x", 0);
    b.duration_s = -5;
    expect_refusal(fx, &police, b, CH_FAULT_INVALID, "invalid", NULL, "duration_s", "event.open");
    b = open_req("112-center", A_LAT, A_LON, "112-1", "x", 0);
    b.located = 0; /* and no path */
    expect_refusal(fx, &police, b, CH_FAULT_INVALID, "invalid", NULL, "location", "event.open");
    /* What the API refuses by its shape (an unknown field) is on the record too. */
    uint64_t seq = ch_audit_size(fx->audit);
    ch_fault_t shape;
    ch_fault_set(&shape, CH_EINVAL, CH_FAULT_INVALID, NULL, "bogus", "unknown field");
    assert_int_equal(ch_event_open_refused(fx->eng, &police, &shape), CH_EINVAL);
    json_t *recs = records_since(fx, seq);
    assert_int_equal(json_array_size(recs), 1);
    assert_string_equal(str_of(json_array_get(recs, 0), "action"), "event.open");
    assert_string_equal(str_of(json_array_get(recs, 0), "outcome"), "denied");
    assert_string_equal(str_of(json_object_get(json_array_get(recs, 0), "details"), "field"),
                        "bogus");
    json_decref(recs);

    /* Export and PTZ beyond what the service gives. */
    b = open_req("112-dispatch", A_LAT, A_LON, "112-1", "x", 60);
    b.export_allowed = 1;
    expect_refusal(fx, &police, b, CH_FAULT_DENIED, "denied", "export_not_allowed", NULL,
                   "event.deny");

    /* A provider does not open events (403, not recorded as a policy denial). */
    ch_event_actor_t prov = provider(fx->district, "apikey:3");
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    b = open_req("112-center", A_LAT, A_LON, "112-1", "x", 60);
    assert_int_equal(try_open(fx, &prov, b, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_FORBIDDEN);
    /* Nor is it recorded when the API refused its body first. */
    seq = ch_audit_size(fx->audit);
    assert_int_equal(ch_event_open_refused(fx->eng, &prov, &shape), CH_EPERM);
    assert_int_equal(shape.kind, CH_FAULT_FORBIDDEN);
    assert_int_equal(ch_audit_size(fx->audit), seq);
    assert_int_equal(count_of(fx, "events"), 0);
}

/* ---- expiry --------------------------------------------------------------------------------- */

static void test_expiry_on_the_injected_clock(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_view_t *e1 = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *e2 = open_112(fx, &police, A_LAT, A_LON, 1200);
    int64_t id1 = e1->event.id, id2 = e2->event.id;
    assert_int_equal(ch_event_live_grants(fx->eng), 6);
    assert_int_equal(ch_event_next_due(fx->eng), T0 + 600 * 1000);

    /* Not yet due: nothing ends. */
    fx->now = T0 + 600 * 1000 - 1;
    assert_int_equal(ch_event_tick(fx->eng), 0);
    assert_int_equal(ch_event_live_grants(fx->eng), 6);

    /* Past the first expiry: its three grants end, the second event goes on. */
    fx->now = T0 + 600 * 1000 + 250;
    assert_int_equal(ch_event_tick(fx->eng), 3);
    assert_int_equal(ch_event_live_grants(fx->eng), 3);
    assert_int_equal(ch_event_next_due(fx->eng), T0 + 1200 * 1000);
    assert_int_equal(ch_event_tick(fx->eng), 0);

    ch_event_view_t *v1 = get_event(fx, &police, id1);
    assert_string_equal(v1->event.status, "expired");
    assert_string_equal(v1->event.closed_by, "system");
    assert_int_equal(v1->event.closed_at, fx->now);
    assert_int_equal(grant_count(v1), 3);
    const ch_event_grant_view_t *g;
    size_t i;
    FOR_EACH_GRANT(i, g, v1)
    {
        assert_string_equal(g->grant.status, "expired");
        assert_no_token(g);
        assert_int_equal(g->grant.ended_at, fx->now);
        assert_string_equal(g->grant.ended_by, "system");
    }
    assert_started_then_ended(fx, e1, "expired");
    ch_event_view_t *v2 = get_event(fx, &police, id2);
    assert_string_equal(v2->event.status, "active");
    assert_token(fx, grant_of(v2, fx->ptz_a), id2, fx->police, T0 + 1200 * 1000);

    char object[48];
    event_object(object, id1);
    json_t *r = find_record(fx, seq, "event.expire", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "actor"), "system");
    assert_string_equal(str_of(r, "outcome"), "ok");
    json_t *d = json_object_get(r, "details");
    assert_int_equal(int_of(d, "late_ms"), 250);
    assert_int_equal(json_array_size(json_object_get(d, "cameras")), 3);
    json_decref(r);

    /* The second one in its turn; then nothing is due. */
    fx->now = T0 + 1200 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 3);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_int_equal(ch_event_next_due(fx->eng), INT64_MAX);
    view_free(v2);
    v2 = get_event(fx, &police, id2);
    assert_string_equal(v2->event.status, "expired");
    assert_started_then_ended(fx, e2, "expired");

    /* An expired event is not closed or extended. */
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(call(fx, ch_event_close, &police, id1, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);
    assert_int_equal(extend(fx, &police, id1, 60, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);

    /* The list by status. */
    ch_store_filter_t f = {.status = "expired"};
    assert_int_equal(list_total(fx, &police, &f), 2);
    view_free(e1);
    view_free(e2);
    view_free(v1);
    view_free(v2);
}

static void test_restart_expires_what_expired_while_down(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *e1 = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *e2 = open_112(fx, &police, A_LAT, A_LON, 3600);
    int64_t id1 = e1->event.id, id2 = e2->event.id;
    uint64_t seq = ch_audit_size(fx->audit);

    /* Down for 15 minutes. */
    ch_event_engine_free(fx->eng);
    fx->eng = NULL;
    fx->now = T0 + 900 * 1000;
    make_engine(fx); /* restores */

    ch_event_view_t *v1 = get_event(fx, &police, id1);
    assert_string_equal(v1->event.status, "expired");
    const ch_event_grant_view_t *g;
    size_t i;
    FOR_EACH_GRANT(i, g, v1)
    {
        assert_string_equal(g->grant.status, "expired");
    }
    assert_started_then_ended(fx, e1, "expired");
    ch_event_view_t *v2 = get_event(fx, &police, id2);
    assert_string_equal(v2->event.status, "active");
    assert_int_equal(ch_event_live_grants(fx->eng), 3);
    assert_int_equal(ch_event_next_due(fx->eng), T0 + 3600 * 1000);

    char object[48];
    event_object(object, id1);
    json_t *r = find_record(fx, seq, "event.expire", object);
    assert_non_null(r);
    json_t *d = json_object_get(r, "details");
    assert_int_equal(int_of(d, "late_ms"), 300 * 1000);
    assert_time(json_object_get(d, "due"), T0 + 600 * 1000);
    json_decref(r);
    event_object(object, id2);
    assert_null(find_record(fx, seq, "event.expire", object));

    /* The restored engine ends the live one on time. */
    fx->now = T0 + 3600 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 3);
    assert_started_then_ended(fx, e2, "expired");
    view_free(e1);
    view_free(e2);
    view_free(v1);
    view_free(v2);
}

/* ---- approval ------------------------------------------------------------------------------- */

static ch_event_view_t *open_wanted_vehicle(fixture_t *fx, const ch_event_actor_t *who)
{
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(try_open(fx, who,
                              open_req("wanted-vehicle", A_LAT, A_LON, "112-20260101-0099",
                                       "stolen car 12가3456", 600),
                              &out, &err),
                     0);
    return out;
}

static void test_approval_flow(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    uint64_t seq = ch_audit_size(fx->audit);

    /* wanted-vehicle needs an operator's approval and draws on 차량방범 cameras only. */
    ch_event_view_t *ev = open_wanted_vehicle(fx, &police);
    int64_t id = ev->event.id;
    assert_string_equal(ev->event.status, "pending");
    assert_int_equal(ev->event.expires_at, 0);
    assert_int_equal(grant_count(ev), 1);
    const ch_event_grant_view_t *g = grant_of(ev, fx->vehicle_a);
    assert_non_null(g);
    assert_string_equal(g->grant.status, "pending");
    assert_no_token(g);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_int_equal(ch_event_next_due(fx->eng), INT64_MAX);
    assert_int_equal(fx->nnotices, 0);
    char object[48];
    event_object(object, id);
    json_t *r = find_record(fx, seq, "event.request", object);
    assert_non_null(r);
    json_decref(r);

    /* An agency may not approve, not even its own event. */
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(decide(fx, &police, id, 1, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_FORBIDDEN);
    assert_null(out);

    /* The operator approves two minutes later: the time runs from the approval. */
    fx->now = T0 + 120 * 1000;
    int64_t expires = fx->now + 600 * 1000;
    assert_int_equal(decide(fx, &operator_kim, id, 1, "plate confirmed", &out, &err), 0);
    assert_string_equal(out->event.status, "active");
    assert_string_equal(out->event.decided_by, "user:kim");
    assert_string_equal(out->event.decision_note, "plate confirmed");
    assert_int_equal(out->event.expires_at, expires);
    view_free(out);
    assert_int_equal(ch_event_live_grants(fx->eng), 1);
    assert_int_equal(ch_event_next_due(fx->eng), expires);
    assert_int_equal(fx->nnotices, 1);
    assert_int_equal(fx->notices[0].kind, CH_EVENT_GRANT_STARTED);
    assert_int_equal(fx->notices[0].camera_id, fx->vehicle_a);
    r = find_record(fx, seq, "event.approve", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "actor"), "user:kim");
    json_decref(r);

    /* The agency now sees its token. */
    ch_event_view_t *v = get_event(fx, &police, id);
    g = grant_of(v, fx->vehicle_a);
    assert_string_equal(g->grant.status, "active");
    assert_int_equal(g->grant.expires_at, expires);
    assert_token(fx, g, id, fx->police, expires);
    view_free(v);

    /* Approving again is a conflict. */
    assert_int_equal(decide(fx, &operator_kim, id, 1, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);

    /* Another pending event, denied by the operator. */
    ch_event_view_t *ev2 = open_wanted_vehicle(fx, &police);
    int64_t id2 = ev2->event.id;
    assert_string_equal(ev2->event.status, "pending");
    assert_int_equal(decide(fx, &operator_kim, id2, 0, "no case number on file", &out, &err), 0);
    assert_string_equal(out->event.status, "denied");
    assert_string_equal(out->event.decided_by, "user:kim");
    assert_int_equal(grant_count(out), 1);
    g = grant_of(out, fx->vehicle_a);
    assert_string_equal(g->grant.status, "denied");
    assert_no_token(g);
    view_free(out);
    assert_int_equal(ch_event_live_grants(fx->eng), 1);
    event_object(object, id2);
    r = find_record(fx, seq, "event.deny", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "actor"), "user:kim");
    json_decref(r);
    /* ... and neither approved nor denied again. */
    assert_int_equal(decide(fx, &operator_kim, id2, 1, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);
    assert_int_equal(decide(fx, &operator_kim, id2, 0, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);

    /* A pending event that is restored stays pending, then is approved by the new engine. */
    ch_event_view_t *ev3 = open_wanted_vehicle(fx, &police);
    int64_t id3 = ev3->event.id;
    ch_event_engine_free(fx->eng);
    fx->now += 3600 * 1000;
    make_engine(fx);
    v = get_event(fx, &police, id3);
    assert_string_equal(v->event.status, "pending");
    view_free(v);
    assert_int_equal(decide(fx, &operator_kim, id3, 1, NULL, &out, &err), 0);
    assert_int_equal(out->event.expires_at, fx->now + 600 * 1000);
    view_free(out);
    view_free(ev);
    view_free(ev2);
    view_free(ev3);
}

/* ---- extension ------------------------------------------------------------------------------ */

static void test_extension_within_and_beyond_the_rule(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_112(fx, &police, A_LAT, A_LON, 600);
    int64_t id = ev->event.id;
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_view_t *out = NULL;
    ch_fault_t err;

    fx->now = T0 + 60 * 1000;
    /* A step over the service's longest grant. */
    assert_int_equal(extend(fx, &police, id, 3601, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_DENIED);
    assert_string_equal(err.rule, "duration_over_limit");

    /* 112-center: two extensions, by the agency. The time adds to the old expiry. */
    int64_t expires = T0 + 600 * 1000;
    for (int k = 1; k <= 2; k++) {
        expires += 300 * 1000;
        assert_int_equal(extend(fx, &police, id, 300, &out, &err), 0);
        assert_int_equal(out->event.extensions, k);
        assert_int_equal(out->event.expires_at, expires);
        const ch_event_grant_view_t *g;
        size_t i;
        FOR_EACH_GRANT(i, g, out)
        {
            assert_int_equal(g->grant.expires_at, expires);
            assert_token(fx, g, id, fx->police, expires);
        }
        view_free(out);
        assert_int_equal(ch_event_next_due(fx->eng), expires);
    }
    /* The third goes beyond the rule. */
    assert_int_equal(extend(fx, &police, id, 60, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_DENIED);
    assert_string_equal(ch_fault_code(&err), "denied");
    assert_string_equal(err.rule, "extension_limit");
    ch_event_view_t *v = get_event(fx, &police, id);
    assert_int_equal(v->event.extensions, 2);
    assert_int_equal(v->event.expires_at, expires);
    view_free(v);
    char object[48];
    event_object(object, id);
    json_t *r = find_record(fx, seq, "event.extend", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "outcome"), "denied");
    assert_string_equal(str_of(json_object_get(r, "details"), "rule"), "extension_limit");
    json_decref(r);

    /* The old expiry no longer ends anything; the new one does. */
    fx->now = T0 + 600 * 1000 + 1;
    assert_int_equal(ch_event_tick(fx->eng), 0);
    fx->now = expires;
    assert_int_equal(ch_event_tick(fx->eng), 3);

    /* military-training: approved first, and never extended. */
    ch_event_actor_t army = agency(fx->military, "apikey:21");
    ch_event_open_req_t b =
        open_req("military-training", A_LAT, A_LON, NULL, "integrated defense drill", 3600);
    assert_int_equal(try_open(fx, &army, b, &out, &err), 0);
    int64_t mid = out->event.id;
    assert_string_equal(out->event.status, "pending");
    assert_int_equal(grant_count(out), 3);
    view_free(out);
    assert_int_equal(decide(fx, &operator_kim, mid, 1, NULL, &out, &err), 0);
    view_free(out);
    seq = ch_audit_size(fx->audit);
    assert_int_equal(extend(fx, &army, mid, 600, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_DENIED);
    assert_string_equal(err.rule, "extension_not_allowed");
    event_object(object, mid);
    r = find_record(fx, seq, "event.extend", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "outcome"), "denied");
    json_decref(r);

    /* ansimi-sos: only operators extend. */
    ch_event_actor_t center = agency(fx->district, "user:center");
    b = open_req("ansimi-sos", A_LAT, A_LON, "SOS-77", NULL, 600);
    assert_int_equal(try_open(fx, &center, b, &out, &err), 0);
    int64_t aid = out->event.id;
    view_free(out);
    assert_int_equal(extend(fx, &center, aid, 60, &out, &err), -1);
    assert_string_equal(err.rule, "extension_role_not_allowed");
    assert_int_equal(extend(fx, &operator_kim, aid, 60, &out, &err), 0);
    assert_int_equal(out->event.extensions, 1);
    view_free(out);
    view_free(ev);
}

/* ---- close and revoke ----------------------------------------------------------------------- */

static void test_close_by_the_agency(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_actor_t fire = agency(fx->fire, "user:choi");
    ch_event_view_t *ev = open_112(fx, &police, A_LAT, A_LON, 600);
    int64_t id = ev->event.id;
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_view_t *out = NULL;
    ch_fault_t err;

    /* Not another agency's to close, nor a provider's. */
    assert_int_equal(call(fx, ch_event_close, &fire, id, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_NOT_FOUND);
    ch_event_actor_t prov = provider(fx->district, "apikey:3");
    assert_int_equal(call(fx, ch_event_close, &prov, id, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_FORBIDDEN);
    /* Nor revoked by the agency (operators revoke events). */
    assert_int_equal(call(fx, ch_event_revoke, &police, id, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_FORBIDDEN);

    fx->now = T0 + 100 * 1000;
    assert_int_equal(call(fx, ch_event_close, &police, id, "suspect arrested", &out, &err), 0);
    assert_string_equal(out->event.status, "closed");
    assert_string_equal(out->event.closed_by, "user:park");
    assert_string_equal(out->event.close_reason, "suspect arrested");
    assert_int_equal(out->event.closed_at, fx->now);
    const ch_event_grant_view_t *g;
    size_t i;
    FOR_EACH_GRANT(i, g, out)
    {
        assert_string_equal(g->grant.status, "closed");
        assert_string_equal(g->grant.ended_by, "user:park");
        assert_string_equal(g->grant.end_reason, "suspect arrested");
        assert_no_token(g);
    }
    view_free(out);
    assert_started_then_ended(fx, ev, "closed");
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_int_equal(ch_event_next_due(fx->eng), INT64_MAX);
    char object[48];
    event_object(object, id);
    json_t *r = find_record(fx, seq, "event.close", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "outcome"), "ok");
    assert_string_equal(str_of(json_object_get(r, "details"), "reason"), "suspect arrested");
    json_decref(r);

    /* Closed once; the old expiry passes without a trace. */
    assert_int_equal(call(fx, ch_event_close, &police, id, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);
    size_t n = fx->nnotices;
    fx->now = T0 + 3600 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 0);
    assert_int_equal(fx->nnotices, n);
    assert_null(find_record(fx, seq, "event.expire", object));

    /* An operator revokes an event (its grants "revoked"). */
    ch_event_view_t *e2 = open_112(fx, &police, A_LAT, A_LON, 600);
    int64_t id2 = e2->event.id;
    assert_int_equal(call(fx, ch_event_revoke, &operator_kim, id2, "misuse suspected", &out, &err),
                     0);
    assert_string_equal(out->event.status, "closed");
    FOR_EACH_GRANT(i, g, out)
    {
        assert_string_equal(g->grant.status, "revoked");
    }
    view_free(out);
    assert_started_then_ended(fx, e2, "revoked");
    view_free(e2);
    view_free(ev);
}

static void test_revoke_one_grant_by_its_provider(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_dispatch(fx, &police, A_LAT, A_LON, 600);
    int64_t id = ev->event.id;
    int64_t gid = grant_of(ev, fx->ptz_a)->grant.id;
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_view_t *out = NULL;
    ch_event_grant_view_t *gout = NULL;
    ch_fault_t err;

    /* Another provider does not even see the grant; the agency may not revoke it. */
    ch_event_actor_t prov2 = provider(fx->district2, "apikey:12");
    assert_int_equal(revoke_grant(fx, &prov2, gid, NULL, &gout, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_NOT_FOUND);
    assert_int_equal(revoke_grant(fx, &police, gid, NULL, &gout, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_FORBIDDEN);
    ch_event_actor_t prov = provider(fx->district, "apikey:11");
    assert_int_equal(revoke_grant(fx, &prov, 999999, NULL, &gout, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_NOT_FOUND);

    fx->now = T0 + 30 * 1000;
    assert_int_equal(revoke_grant(fx, &prov, gid, "camera in a private area", &gout, &err), 0);
    assert_int_equal(gout->grant.id, gid);
    assert_string_equal(gout->grant.status, "revoked");
    assert_string_equal(gout->grant.ended_by, "apikey:11");
    assert_no_token(gout);
    grant_view_free(gout);
    long e = notice_index(fx, CH_EVENT_GRANT_ENDED, gid, 0);
    assert_true(e >= 0);
    assert_string_equal(fx->notices[e].status, "revoked");
    assert_int_equal(ch_event_live_grants(fx->eng), 2);

    /* The event goes on with the other cameras. */
    ch_event_view_t *v = get_event(fx, &police, id);
    assert_string_equal(v->event.status, "active");
    assert_string_equal(grant_of(v, fx->ptz_a)->grant.status, "revoked");
    assert_no_token(grant_of(v, fx->ptz_a));
    assert_token(fx, grant_of(v, fx->fixed_a), id, fx->police, T0 + 600 * 1000);
    view_free(v);
    char object[48];
    snprintf(object, sizeof(object), "grant:%lld", (long long)gid);
    json_t *r = find_record(fx, seq, "grant.revoke", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "actor"), "apikey:11");
    json_decref(r);

    /* Revoked once. */
    assert_int_equal(revoke_grant(fx, &prov, gid, NULL, &gout, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_CONFLICT);

    /* A move that the revoked camera still sees does not grant it again. */
    assert_int_equal(move_to(fx, &police, id, A_LAT + 2 * N_M, A_LON, &out, &err), 0);
    assert_int_equal(grant_count(out), 3);
    assert_string_equal(grant_of(out, fx->ptz_a)->grant.status, "revoked");
    view_free(out);
    assert_int_equal(ch_event_live_grants(fx->eng), 2);

    /* The expiry ends the two others only. */
    size_t n = fx->nnotices;
    fx->now = T0 + 600 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 2);
    assert_int_equal(fx->nnotices, n + 2);
    v = get_event(fx, &police, id);
    assert_string_equal(grant_of(v, fx->ptz_a)->grant.status, "revoked");
    assert_string_equal(grant_of(v, fx->fixed_a)->grant.status, "expired");
    view_free(v);
    view_free(ev);
}

/* What the relay hears from the gate's follower. */
typedef struct gate_heard {
    int started, ended, hold;
} gate_heard_t;

static void on_gate(void *ud, const ch_event_notice_t *n, int hold)
{
    gate_heard_t *h = ud;
    if (n->kind == CH_EVENT_GRANT_STARTED) {
        h->started++;
    } else {
        h->ended++;
    }
    h->hold += hold;
}

/* The gate follows the grants table, not the engine: what the engine commits reaches it at the
 * commit; a grant ended by another store handle (a direct write, later another node) at the
 * next poll of the feed; a follower started later loads the active grants. */
static void test_the_gate_follows_the_grants_whoever_writes_them(void **state)
{
    fixture_t *fx = *state;
    static const uint8_t pk[32] = {1};
    ch_event_gate_t *gate = ch_event_gate_new(pk);
    gate_heard_t h = {0};
    ch_event_follow_t *f = NULL;
    assert_int_equal(ch_event_follow_grants(fx->st, gate, on_gate, &h, &f), 0);
    assert_int_equal(ch_event_gate_live(gate), 0);
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_dispatch(fx, &police, A_LAT, A_LON, 600);
    int64_t gid = grant_of(ev, fx->ptz_a)->grant.id;
    int64_t gid2 = grant_of(ev, fx->fixed_a)->grant.id;
    assert_int_equal(ch_event_gate_live(gate), 3);
    assert_int_equal(h.hold, 3);

    /* The engine revokes: ended at its commit. */
    ch_event_grant_view_t *out = NULL;
    ch_fault_t err;
    ch_event_actor_t prov = provider(fx->district, "apikey:11");
    assert_int_equal(revoke_grant(fx, &prov, gid, NULL, &out, &err), 0);
    grant_view_free(out);
    assert_false(ch_event_gate_is_live(gate, gid));
    assert_int_equal(h.ended, 1);
    assert_int_equal(h.hold, 2);

    /* Another handle closes a grant: the gate holds it until the feed is polled. */
    char path[320];
    snprintf(path, sizeof(path), "%s/hub.db", fx->dir);
    ch_store_t *o = NULL;
    assert_int_equal(ch_store_open(path, &o, NULL), 0);
    ch_grant_t g;
    assert_int_equal(ch_store_grant_get(o, gid2, &g), 0);
    ch_free(g.status);
    g.status = ch_strdup("closed");
    assert_int_equal(ch_store_grant_update(o, &g), 0);
    ch_grant_fini(&g);
    ch_store_close(o);
    assert_true(ch_event_gate_is_live(gate, gid2));
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_false(ch_event_gate_is_live(gate, gid2));
    assert_int_equal(h.ended, 2);
    assert_int_equal(h.hold, 1);

    /* A gate started now holds the one grant left active. */
    ch_event_gate_t *later = ch_event_gate_new(pk);
    ch_event_follow_t *f2 = NULL;
    assert_int_equal(ch_event_follow_grants(fx->st, later, NULL, NULL, &f2), 0);
    assert_int_equal(ch_event_gate_live(later), 1);
    ch_event_follow_end(f2);
    ch_event_gate_free(later);
    ch_event_follow_end(f);
    ch_event_gate_free(gate);
    view_free(ev);
}

/* Another store handle (a command, later another node) closes grant gid, or event id and its
 * grants still active, row by row, as the engine would not hear of it. */
static void close_elsewhere(fixture_t *fx, int64_t gid, int64_t id)
{
    char path[320];
    snprintf(path, sizeof(path), "%s/hub.db", fx->dir);
    ch_store_t *o = NULL;
    assert_int_equal(ch_store_open(path, &o, NULL), 0);
    ch_grant_list_t l = {0};
    ch_store_filter_t q = {.event_id = id, .status = "active", .limit = 100};
    if (id != 0) {
        assert_int_equal(ch_store_grant_list(o, &q, &l), 0);
    } else {
        l.items = ch_calloc(1, sizeof(*l.items));
        assert_int_equal(ch_store_grant_get(o, gid, &l.items[0]), 0);
        l.count = 1;
    }
    for (size_t i = 0; i < l.count; i++) {
        ch_free(l.items[i].status);
        l.items[i].status = ch_strdup("closed");
        assert_int_equal(ch_store_grant_update(o, &l.items[i]), 0);
    }
    ch_grant_list_free(&l);
    if (id != 0) {
        ch_event_t ev;
        assert_int_equal(ch_store_event_get(o, id, &ev), 0);
        ch_free(ev.status);
        ev.status = ch_strdup("closed");
        assert_int_equal(ch_store_event_update(o, &ev), 0);
        ch_event_fini(&ev);
    }
    ch_store_close(o);
}

/* The engine's live map follows the store's feed too: a grant, then an event, that another
 * handle ends leave it at the next poll, so nothing of them is due and nothing expires; the
 * engine's own close ends its grants once, as before. */
static void test_the_live_map_follows_what_other_handles_end(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_dispatch(fx, &police, A_LAT, A_LON, 600);
    int64_t gid = grant_of(ev, fx->ptz_a)->grant.id;
    assert_int_equal(ch_event_live_grants(fx->eng), 3);

    close_elsewhere(fx, gid, 0);
    assert_int_equal(ch_event_live_grants(fx->eng), 3); /* until the poll */
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(ch_event_live_grants(fx->eng), 2);
    long e = notice_index(fx, CH_EVENT_GRANT_ENDED, gid, 0);
    assert_true(e >= 0);
    assert_string_equal(fx->notices[e].status, "closed");
    assert_int_equal(fx->notices[e].event_id, ev->event.id);
    size_t n = fx->nnotices;
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(fx->nnotices, n);

    close_elsewhere(fx, 0, ev->event.id);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_int_equal(fx->nnotices, n + 2);
    assert_true(ch_event_next_due(fx->eng) == INT64_MAX); /* the event left too */
    uint64_t seq = ch_audit_size(fx->audit);
    fx->now = T0 + 700 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 0);
    assert_int_equal(ch_audit_size(fx->audit), seq); /* no expiry recorded */

    /* The engine's own close hears its commit through the feed: ended once, as before. */
    ch_event_view_t *ev2 = open_112(fx, &police, A_LAT, A_LON, 600);
    assert_true(ch_event_live_grants(fx->eng) > 0);
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(call(fx, ch_event_close, &police, ev2->event.id, "done", &out, &err), 0);
    assert_string_equal(out->event.status, "closed");
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_true(ch_event_next_due(fx->eng) == INT64_MAX);
    assert_started_then_ended(fx, out, "closed");
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    view_free(out);
    view_free(ev2);
    view_free(ev);
}

/* Cameras an import took out of service (another store handle: here the store directly) lose
 * their live and pending grants, each camera read once; the approval then hands out nothing
 * for them; a camera in service keeps its grants. */
static void test_cameras_out_of_service_lose_live_and_pending_grants(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "apikey:1");
    ch_event_view_t *live = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *pending = open_wanted_vehicle(fx, &police);
    assert_string_equal(pending->event.status, "pending");
    assert_non_null(grant_of(live, fx->vehicle_a));
    assert_non_null(grant_of(live, fx->fixed_a));
    int64_t pending_gid = grant_of(pending, fx->vehicle_a)->grant.id;
    int64_t vehicle_gid = grant_of(live, fx->vehicle_a)->grant.id;
    size_t before = ch_event_live_grants(fx->eng);
    assert_int_equal(ch_event_end_inactive_camera_grants(fx->eng, "user:lee"), 0);
    assert_int_equal(ch_event_live_grants(fx->eng), before);

    ch_camera_t c;
    assert_int_equal(ch_store_camera_get(fx->st, fx->vehicle_a, &c), 0);
    ch_free(c.status);
    c.status = ch_strdup("inactive");
    assert_int_equal(ch_store_camera_update(fx->st, &c), 0);
    ch_camera_fini(&c);
    assert_int_equal(ch_store_camera_delete(fx->st, fx->fixed_a), 0);
    uint64_t seq = ch_audit_size(fx->audit);
    fx->now = T0 + 10 * 1000;
    assert_int_equal(ch_event_end_inactive_camera_grants(fx->eng, "user:lee"), 3);
    assert_int_equal(ch_event_live_grants(fx->eng), before - 2);
    assert_true(notice_index(fx, CH_EVENT_GRANT_ENDED, vehicle_gid, 0) >= 0);
    assert_true(notice_index(fx, CH_EVENT_GRANT_ENDED, pending_gid, 0) < 0); /* never live */

    ch_event_view_t *v = get_event(fx, &police, live->event.id);
    assert_string_equal(v->event.status, "active");
    assert_string_equal(grant_of(v, fx->vehicle_a)->grant.status, "revoked");
    assert_string_equal(grant_of(v, fx->vehicle_a)->grant.end_reason, "camera_deactivated");
    assert_string_equal(grant_of(v, fx->vehicle_a)->grant.ended_by, "user:lee");
    assert_string_equal(grant_of(v, fx->fixed_a)->grant.end_reason, "camera_removed");
    assert_string_equal(grant_of(v, fx->ptz_a)->grant.status, "active");
    view_free(v);
    char object[48];
    snprintf(object, sizeof(object), "grant:%lld", (long long)pending_gid);
    json_t *r = find_record(fx, seq, "grant.revoke", object);
    assert_non_null(r);
    assert_string_equal(str_of(json_object_get(r, "details"), "reason"), "camera_deactivated");
    json_decref(r);
    assert_int_equal(ch_event_end_inactive_camera_grants(fx->eng, "user:lee"), 0);

    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(decide(fx, &operator_kim, pending->event.id, 1, NULL, &out, &err), 0);
    assert_string_equal(out->event.status, "active");
    assert_string_equal(grant_of(out, fx->vehicle_a)->grant.status, "revoked");
    assert_no_token(grant_of(out, fx->vehicle_a));
    view_free(out);
    view_free(pending);
    view_free(live);
}

/* ---- concurrent events ------------------------------------------------------------------- */

static void test_concurrent_events_on_the_same_cameras(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_actor_t station = agency(fx->station, "user:lee");
    ch_event_view_t *e1 = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *e2 = open_112(fx, &station, A_LAT + 5 * N_M, A_LON, 1200);
    int64_t id1 = e1->event.id, id2 = e2->event.id;
    const ch_event_grant_view_t *g1 = grant_of(e1, fx->ptz_a), *g2 = grant_of(e2, fx->ptz_a);
    assert_non_null(g1);
    assert_non_null(g2);
    assert_true(g1->grant.id != g2->grant.id);
    assert_token(fx, g2, id2, fx->station, T0 + 1200 * 1000);
    assert_int_equal(ch_event_live_grants(fx->eng), 6);

    /* Each agency sees its own events only. */
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_null(try_get(fx, &station, id1, &err));
    assert_int_equal(err.kind, CH_FAULT_NOT_FOUND);
    ch_store_filter_t f = {0};
    assert_int_equal(list_total(fx, &station, &f), 1);
    assert_int_equal(list_total(fx, &operator_kim, &f), 2);

    /* Closing one leaves the other as it was. */
    assert_int_equal(call(fx, ch_event_close, &police, id1, NULL, &out, &err), 0);
    view_free(out);
    assert_int_equal(ch_event_live_grants(fx->eng), 3);
    assert_int_equal(notice_index(fx, CH_EVENT_GRANT_ENDED, g2->grant.id, 0), -1);
    ch_event_view_t *v2 = get_event(fx, &station, id2);
    assert_string_equal(v2->event.status, "active");
    assert_int_equal(grant_count(v2), 3);
    assert_token(fx, grant_of(v2, fx->ptz_a), id2, fx->station, T0 + 1200 * 1000);
    view_free(v2);
    assert_int_equal(ch_event_next_due(fx->eng), T0 + 1200 * 1000);
    view_free(e1);
    view_free(e2);
}

/* ---- moving subjects ------------------------------------------------------------------------ */

static void test_moving_subject_keeps_cameras_behind_for_the_grace(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_dispatch(fx, &police, A_LAT, A_LON, 600);
    int64_t id = ev->event.id;
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_view_t *out = NULL;
    ch_fault_t err;

    /* Bad positions, and someone else's event. */
    assert_int_equal(move_to(fx, &police, id, 35.1, 129.0, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_INVALID);
    assert_string_equal(ch_fault_code(&err), "outside");
    ch_event_actor_t station = agency(fx->station, "user:lee");
    assert_int_equal(move_to(fx, &station, id, B_LAT, B_LON, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_NOT_FOUND);

    /* To B (1 km in 20 s: 180 km/h, plausible): B's cameras are granted for the rest of the
     * event; A's stay for the grace. */
    fx->now = T0 + 20 * 1000;
    int64_t grace_end = fx->now + 30 * 1000;
    int64_t expires = T0 + 600 * 1000;
    assert_int_equal(move_to(fx, &police, id, B_LAT, B_LON, &out, &err), 0);
    assert_string_equal(out->event.status, "active");
    assert_true(out->event.located && out->event.lon == B_LON);
    assert_int_equal(grant_count(out), 5);
    const int64_t behind[] = {fx->ptz_a, fx->fixed_a, fx->vehicle_a};
    const int64_t ahead[] = {fx->ptz_b1, fx->ptz_b2};
    for (size_t i = 0; i < CH_ARRAY_SIZE(behind); i++) {
        const ch_event_grant_view_t *g = grant_of(out, behind[i]);
        assert_string_equal(g->grant.status, "active");
        assert_int_equal(g->grant.expires_at, grace_end);
        assert_token(fx, g, id, fx->police, grace_end);
    }
    for (size_t i = 0; i < CH_ARRAY_SIZE(ahead); i++) {
        const ch_event_grant_view_t *g = grant_of(out, ahead[i]);
        assert_non_null(g);
        assert_string_equal(g->grant.status, "active");
        assert_int_equal(g->grant.provider_id, fx->district2);
        assert_int_equal(g->grant.expires_at, expires);
        assert_token(fx, g, id, fx->police, expires);
        assert_true(notice_index(fx, CH_EVENT_GRANT_STARTED, g->grant.id, 0) >= 0);
    }
    view_free(out);
    assert_int_equal(ch_event_live_grants(fx->eng), 5);
    assert_int_equal(ch_event_next_due(fx->eng), grace_end);
    char object[48];
    event_object(object, id);
    json_t *r = find_record(fx, seq, "event.move", object);
    assert_non_null(r);
    json_t *d = json_object_get(r, "details");
    assert_int_equal(json_array_size(json_object_get(d, "added")), 2);
    assert_int_equal(json_array_size(json_object_get(d, "leaving")), 3);
    json_decref(r);

    /* Still inside the grace: nothing ends. */
    fx->now = grace_end - 1;
    assert_int_equal(ch_event_tick(fx->eng), 0);

    /* After it: A's cameras are released, B's go on, the event goes on. */
    fx->now = grace_end + 1;
    assert_int_equal(ch_event_tick(fx->eng), 3);
    assert_int_equal(ch_event_live_grants(fx->eng), 2);
    assert_int_equal(ch_event_next_due(fx->eng), expires);
    ch_event_view_t *v = get_event(fx, &police, id);
    assert_string_equal(v->event.status, "active");
    for (size_t i = 0; i < CH_ARRAY_SIZE(behind); i++) {
        const ch_event_grant_view_t *g = grant_of(v, behind[i]);
        assert_string_equal(g->grant.status, "released");
        assert_string_equal(g->grant.ended_by, "system");
        assert_no_token(g);
        long e = notice_index(fx, CH_EVENT_GRANT_ENDED, g->grant.id, 0);
        assert_true(e >= 0);
        assert_string_equal(fx->notices[e].status, "released");
    }
    for (size_t i = 0; i < CH_ARRAY_SIZE(ahead); i++) {
        assert_string_equal(grant_of(v, ahead[i])->grant.status, "active");
    }
    view_free(v);
    r = find_record(fx, seq, "grant.release", object);
    assert_non_null(r);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "details"), "cameras")), 3);
    json_decref(r);

    /* Back to A: A's cameras get new grants, B's their grace; the expiry ends the rest. */
    fx->now = T0 + 100 * 1000;
    assert_int_equal(move_to(fx, &police, id, A_LAT, A_LON, &out, &err), 0);
    assert_int_equal(grant_count(out), 8);
    assert_string_equal(grant_of(out, fx->ptz_a)->grant.status, "active");
    assert_int_equal(grant_of(out, fx->ptz_b1)->grant.expires_at, fx->now + 30 * 1000);
    view_free(out);
    assert_int_equal(ch_event_live_grants(fx->eng), 5);
    fx->now = expires;
    assert_int_equal(ch_event_tick(fx->eng), 5);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    v = get_event(fx, &police, id);
    assert_string_equal(v->event.status, "expired");
    view_free(v);
    view_free(ev);
}

/* ---- an opening that never reached the record ---------------------------------------------- */

/* ---- issue 15: four eyes, plausible moves, the record ahead of the store --------------------- */

static void test_an_operator_never_approves_their_own_request(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "apikey:7");
    const ch_event_actor_t operator_lee = {"user:lee", CH_EVENT_ROLE_OPERATOR, 0};
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    /* An operator opens wanted-vehicle for the police: it waits, like the police's own. */
    ch_event_open_req_t b =
        open_req("wanted-vehicle", A_LAT, A_LON, "112-20260101-0099", "stolen car 12가3456", 600);
    b.has_agency_id = 1;
    b.agency_id = fx->police;
    assert_int_equal(try_open(fx, &operator_kim, b, &out, &err), 0);
    int64_t id = out->event.id;
    assert_string_equal(out->event.status, "pending");
    assert_string_equal(out->event.created_by, "user:kim");
    assert_string_equal(grant_of(out, fx->vehicle_a)->grant.status, "pending");
    assert_no_token(grant_of(out, fx->vehicle_a));
    view_free(out);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    char object[48];
    event_object(object, id);
    json_t *r = find_record(fx, seq, "event.request", object);
    assert_non_null(r);
    json_decref(r);
    /* Approving one's own request is refused with its rule, audited, and changes nothing. */
    assert_int_equal(decide(fx, &operator_kim, id, 1, NULL, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_DENIED);
    assert_string_equal(ch_fault_code(&err), "denied");
    assert_string_equal(err.rule, "approval_by_requester");
    assert_null(out);
    r = find_record(fx, seq, "event.deny", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "outcome"), "denied");
    assert_string_equal(str_of(r, "actor"), "user:kim");
    assert_string_equal(str_of(json_object_get(r, "details"), "rule"), "approval_by_requester");
    json_decref(r);
    ch_event_view_t *v = get_event(fx, &police, id);
    assert_string_equal(v->event.status, "pending");
    assert_null(v->event.decided_by);
    view_free(v);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    /* Another operator approves: the grants start and the police see their token. */
    assert_int_equal(decide(fx, &operator_lee, id, 1, NULL, &out, &err), 0);
    assert_string_equal(out->event.status, "active");
    assert_string_equal(out->event.decided_by, "user:lee");
    view_free(out);
    v = get_event(fx, &police, id);
    assert_token(fx, grant_of(v, fx->vehicle_a), id, fx->police, fx->now + 600 * 1000);
    view_free(v);
    /* The police's own request: approved by an operator as before. */
    ch_event_view_t *ev = open_wanted_vehicle(fx, &police);
    assert_string_equal(ev->event.status, "pending");
    assert_int_equal(decide(fx, &operator_kim, ev->event.id, 1, NULL, &out, &err), 0);
    view_free(out);
    view_free(ev);
}

static void test_only_a_following_event_moves_and_no_faster_than_its_subject(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    char object[48];
    /* A 112-center event watches a place: it never moves, not by an operator either. */
    ch_event_view_t *place = open_112(fx, &police, A_LAT, A_LON, 600);
    int64_t pid = place->event.id;
    uint64_t seq = ch_audit_size(fx->audit);
    fx->now = T0 + 600 * 1000 - 1;
    const ch_event_actor_t *who[] = {&police, &operator_kim};
    for (size_t i = 0; i < CH_ARRAY_SIZE(who); i++) {
        assert_int_equal(move_to(fx, who[i], pid, B_LAT, B_LON, &out, &err), -1);
        assert_int_equal(err.kind, CH_FAULT_DENIED);
        assert_string_equal(ch_fault_code(&err), "denied");
        assert_string_equal(err.rule, "not_moving_subject");
    }
    event_object(object, pid);
    json_t *r = find_record(fx, seq, "event.move", object);
    assert_non_null(r);
    assert_string_equal(str_of(r, "outcome"), "denied");
    json_decref(r);
    ch_event_view_t *v = get_event(fx, &police, pid);
    assert_true(v->event.located && v->event.lon == A_LON);
    assert_null(grant_of(v, fx->ptz_b1));
    view_free(v);

    /* A patrol car (112-dispatch) 1 km away 2 s later: 1,800 km/h, refused (422). */
    fx->now = T0 + 1000 * 1000;
    ch_event_view_t *car = open_dispatch(fx, &police, A_LAT, A_LON, 1800);
    int64_t id = car->event.id;
    event_object(object, id);
    seq = ch_audit_size(fx->audit);
    size_t live = ch_event_live_grants(fx->eng);
    fx->now += 2000;
    assert_int_equal(move_to(fx, &police, id, B_LAT, B_LON, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_TOO_COMPLEX);
    assert_string_equal(ch_fault_code(&err), "implausible");
    assert_string_equal(err.rule, "implausible_speed");
    assert_non_null(strstr(err.message, "at most 200 km/h"));
    assert_int_equal(ch_event_live_grants(fx->eng), live);
    v = get_event(fx, &police, id);
    assert_true(v->event.located && v->event.lon == A_LON);
    assert_int_equal(grant_count(v), 3);
    view_free(v);
    r = find_record(fx, seq, "event.move", object);
    assert_string_equal(str_of(r, "outcome"), "denied");
    assert_string_equal(str_of(json_object_get(r, "details"), "rule"), "implausible_speed");
    json_decref(r);
    /* An operator may place it there (a correction): allowed, and the record says so. */
    assert_int_equal(move_to(fx, &operator_kim, id, B_LAT, B_LON, &out, &err), 0);
    assert_non_null(grant_of(out, fx->ptz_b1));
    view_free(out);
    r = find_record(fx, seq, "event.move", object);
    assert_string_equal(str_of(r, "outcome"), "ok");
    assert_string_equal(str_of(r, "actor"), "user:kim");
    assert_string_equal(str_of(json_object_get(r, "details"), "override"), "implausible_speed");
    json_decref(r);
    /* The next move measures from there and then: back to A 1 s later is refused, 20 s later
     * (180 km/h) is fine. */
    fx->now += 1000;
    assert_int_equal(move_to(fx, &police, id, A_LAT, A_LON, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_TOO_COMPLEX);
    fx->now += 19000;
    assert_int_equal(move_to(fx, &police, id, A_LAT, A_LON, &out, &err), 0);
    view_free(out);
    /* Small quick steps add up to no more than the speed: 60 m in 1 s (216 km/h) is refused,
     * 50 m (180 km/h) is not; no time at all allows no step. */
    fx->now += 1000;
    assert_int_equal(move_to(fx, &police, id, A_LAT + 60 * N_M, A_LON, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_TOO_COMPLEX);
    assert_int_equal(move_to(fx, &police, id, A_LAT + 50 * N_M, A_LON, &out, &err), 0);
    view_free(out);
    assert_int_equal(move_to(fx, &police, id, A_LAT + 51 * N_M, A_LON, &out, &err), -1);
    assert_int_equal(err.kind, CH_FAULT_TOO_COMPLEX);
    view_free(car);
    view_free(place);
}

static void test_a_restored_subject_was_placed_at_its_events_last_write(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    /* The store stamps its writes with the wall clock: run this one on it. */
    fx->now = ch_time_now_ms();
    ch_event_view_t *car = open_dispatch(fx, &police, A_LAT, A_LON, 600);
    int64_t id = car->event.id;
    /* The hub restarts 20 s later: the car was at A when the event opened, not when the hub
     * came back, so 1 km now is 180 km/h, not 1 km in no time. */
    ch_event_engine_free(fx->eng);
    fx->now += 20 * 1000;
    make_engine(fx);
    ch_event_view_t *out = NULL;
    ch_fault_t err;
    assert_int_equal(move_to(fx, &police, id, B_LAT, B_LON, &out, &err), 0);
    view_free(out);
    view_free(car);
}

/* Appends a record as the engine would have, without the store change that should follow it:
 * the hub stopped between the record and its COMMIT. details is stolen. */
static void append_record_only(fixture_t *fx, const char *actor, const char *action,
                               const char *object, json_t *details)
{
    ch_audit_entry_t a = {.actor = actor,
                          .action = action,
                          .object = object,
                          .purpose = "112-center",
                          .outcome = "ok",
                          .details = details};
    assert_int_equal(ch_audit_append(fx->audit, &a, NULL), 0);
    json_decref(details);
}

static void test_a_decision_on_the_record_but_not_in_the_store_is_carried_out_at_start(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *closed = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *revoked = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *expired = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *one = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *kept = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *pending = open_wanted_vehicle(fx, &police);
    assert_int_equal(ch_event_live_grants(fx->eng), 15);
    char object[48];
    /* Each decision reached the record, none its COMMIT. */
    fx->now = T0 + 10 * 1000;
    event_object(object, closed->event.id);
    append_record_only(fx, "user:park", "event.close", object,
                       json_pack("{s:s, s:[]}", "reason", "suspect arrested", "cameras"));
    event_object(object, revoked->event.id);
    append_record_only(fx, "user:kim", "event.revoke", object,
                       json_pack("{s:s}", "reason", "misuse suspected"));
    event_object(object, expired->event.id);
    append_record_only(fx, "system", "event.expire", object,
                       json_pack("{s:s}", "reason", "the granted time is over"));
    int64_t gid = grant_of(one, fx->ptz_a)->grant.id;
    snprintf(object, sizeof(object), "grant:%lld", (long long)gid);
    append_record_only(fx, "apikey:11", "grant.revoke", object,
                       json_pack("{s:I, s:s}", "event_id", (json_int_t)one->event.id, "reason",
                                 "camera in a private area"));
    event_object(object, kept->event.id);
    append_record_only(fx, "user:park", "event.extend", object, json_pack("{s:i}", "extension", 1));
    event_object(object, pending->event.id);
    append_record_only(fx, "user:kim", "event.deny", object, json_pack("{s:s}", "reason", "no"));
    uint64_t size = ch_audit_size(fx->audit);
    /* The next start: the store follows the record, and nothing is recorded twice. */
    for (int round = 0; round < 2; round++) {
        ch_event_engine_free(fx->eng);
        make_engine(fx);
        assert_int_equal(ch_audit_size(fx->audit), size);
        assert_int_equal(ch_event_live_grants(fx->eng), 2 + 3);
        const struct {
            const ch_event_view_t *ev;
            const char *status, *gstatus, *by, *why;
        } want[] = {{closed, "closed", "closed", "user:park", "suspect arrested"},
                    {revoked, "closed", "revoked", "user:kim", "misuse suspected"},
                    {expired, "expired", "expired", "system", "the granted time is over"},
                    {pending, "denied", "denied", "user:kim", "no"}};
        for (size_t i = 0; i < CH_ARRAY_SIZE(want); i++) {
            ch_event_view_t *v = get_event(fx, &police, want[i].ev->event.id);
            assert_string_equal(v->event.status, want[i].status);
            assert_string_equal(v->event.closed_by, want[i].by);
            assert_string_equal(v->event.close_reason, want[i].why);
            assert_true(v->event.closed_at > 0);
            const ch_event_grant_view_t *g;
            size_t k;
            FOR_EACH_GRANT(k, g, v)
            {
                assert_string_equal(g->grant.status, want[i].gstatus);
                assert_string_equal(g->grant.ended_by, want[i].by);
                assert_no_token(g);
            }
            view_free(v);
        }
        ch_event_view_t *v = get_event(fx, &police, one->event.id);
        assert_string_equal(v->event.status, "active");
        assert_string_equal(grant_of(v, fx->ptz_a)->grant.status, "revoked");
        assert_string_equal(grant_of(v, fx->ptz_a)->grant.ended_by, "apikey:11");
        assert_string_equal(grant_of(v, fx->fixed_a)->grant.status, "active");
        view_free(v);
        v = get_event(fx, &police, kept->event.id);
        assert_string_equal(v->event.status, "active");
        assert_int_equal(grant_count(v), 3);
        view_free(v);
    }
    view_free(closed);
    view_free(revoked);
    view_free(expired);
    view_free(one);
    view_free(kept);
    view_free(pending);
}

static void test_open_without_its_record_is_undone(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_open_req_t body = open_req("112-center", A_LAT, A_LON, "112-1", "robbery", 600);
    ch_event_pending_t *p = NULL;
    ch_fault_t err;
    uint64_t seq = ch_audit_size(fx->audit);

    /* The append failed: 503, nothing live, the event and its grants closed in the store. */
    assert_int_equal(ch_event_open_begin(fx->eng, &police, &body, NULL, &p, &err), 0);
    assert_non_null(p);
    int64_t id = p->event_id;
    ch_event_view_t out;
    assert_true(ch_event_open_finish(fx->eng, &police, p, CH_EIO, &out, &err) < 0);
    assert_null(out.grants);
    assert_int_equal(out.event.id, 0);
    assert_int_equal(err.kind, CH_FAULT_AUDIT);
    assert_string_equal(ch_fault_code(&err), "audit_unavailable");
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_int_equal(ch_event_next_due(fx->eng), INT64_MAX);
    assert_int_equal(ch_event_gate_live(fx->gate), 0); /* the relay holds none of them */
    ch_event_view_t *v = get_event(fx, &police, id);
    assert_string_equal(v->event.status, "closed");
    const ch_event_grant_view_t *g;
    size_t i;
    FOR_EACH_GRANT(i, g, v)
    {
        assert_string_equal(g->grant.status, "closed");
        assert_no_token(g);
    }
    view_free(v);
    assert_int_equal(ch_audit_size(fx->audit), seq);

    /* The hub stopped between the store and the record: the next start closes the event. */
    assert_int_equal(ch_event_open_begin(fx->eng, &police, &body, NULL, &p, &err), 0);
    int64_t id2 = p->event_id;
    ch_event_pending_free(p);
    ch_event_view_t *kept = open_112(fx, &police, A_LAT, A_LON, 600); /* recorded: it stands */
    ch_event_engine_free(fx->eng);
    fx->now = T0 + 5000;
    make_engine(fx);
    v = get_event(fx, &police, id2);
    assert_string_equal(v->event.status, "closed");
    assert_string_equal(v->event.closed_by, "system");
    FOR_EACH_GRANT(i, g, v)
    {
        assert_string_equal(g->grant.status, "closed");
    }
    view_free(v);
    char object[48];
    event_object(object, id2);
    json_t *r = find_record(fx, seq, "event.abort", object);
    assert_non_null(r);
    json_decref(r);
    v = get_event(fx, &police, kept->event.id);
    assert_string_equal(v->event.status, "active");
    view_free(v);
    assert_int_equal(ch_event_live_grants(fx->eng), 3);
    view_free(kept);
}

/* What ch_event_batch_end hands back: the opens, in order, and the commit's code. */
static ch_event_pending_t *batch_seen[4];
static int batch_rc[4];
static size_t batch_n;

static void batch_collect(ch_event_pending_t *p, int rc)
{
    assert_true(batch_n < 4);
    batch_seen[batch_n] = p;
    batch_rc[batch_n++] = rc;
}

/* The engine keeps the opens of a batch (one COMMIT) and hands each back at its end, with its
 * caller's ud; a refused open is not in it; each then finishes as one opened alone. */
static void test_a_batch_of_opens_is_the_engines(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_actor_t prov = provider(fx->district, "apikey:3");
    ch_event_open_req_t body = open_req("112-center", A_LAT, A_LON, "112-1", "robbery", 600);
    ch_event_pending_t *p1 = NULL, *p2 = NULL, *p3 = NULL;
    int ud1 = 1, ud2 = 2;
    ch_fault_t err;
    batch_n = 0;
    assert_int_equal(ch_event_batch_end(fx->eng, batch_collect), 0); /* none open */
    assert_int_equal(ch_event_batch_begin(fx->eng), 0);
    assert_true(ch_event_in_batch(fx->eng));
    assert_int_equal(ch_event_open_begin(fx->eng, &police, &body, &ud1, &p1, &err), 0);
    assert_true(ch_event_open_begin(fx->eng, &prov, &body, &ud2, &p3, &err) < 0);
    assert_null(p3);
    assert_int_equal(ch_event_open_begin(fx->eng, &police, &body, &ud2, &p2, &err), 0);
    assert_int_equal(batch_n, 0);
    assert_int_equal(ch_event_batch_end(fx->eng, batch_collect), 0);
    assert_false(ch_event_in_batch(fx->eng));
    assert_int_equal(batch_n, 2);
    assert_ptr_equal(batch_seen[0], p1);
    assert_ptr_equal(batch_seen[1], p2);
    assert_ptr_equal(p1->ud, &ud1);
    assert_ptr_equal(p2->ud, &ud2);
    assert_int_equal(batch_rc[0], 0);
    assert_int_equal(batch_rc[1], 0);
    for (size_t i = 0; i < 2; i++) {
        ch_event_view_t out;
        ch_event_pending_t *p = batch_seen[i];
        int rc = ch_audit_append(fx->audit, &p->entry, NULL);
        assert_int_equal(ch_event_open_finish(fx->eng, &police, p, rc, &out, &err), 0);
        assert_string_equal(out.event.status, "active");
        ch_event_view_fini(&out);
    }
    assert_int_equal(ch_event_live_grants(fx->eng), 6);
    assert_int_equal(count_of(fx, "events"), 2);
}

/* The ledger from raw records, many events interleaved: opened 1..N, each end arriving in
 * reverse order long after (an expiry hours later), moves and extensions in between, records
 * of other objects and refused ones mixed in. Each provision gets its own end, cameras and
 * extensions whatever the distance between its records; the filters pick by overlap. */
/* ---- requests run elsewhere ------------------------------------------------------------------ */

/* A request's store half on a thread of its own with a handle of its own, as the store worker
 * runs it. */
typedef struct elsewhere {
    ch_event_req_t *req;
    ch_store_t *st;
    int rc;
} elsewhere_t;

static void *run_elsewhere_thread(void *ud)
{
    elsewhere_t *e = ud;
    e->rc = ch_event_req_run(e->req, e->st);
    return NULL;
}

/* Makes a request on the loop and runs it on another thread with handle o: 0 and *req (to
 * finish), or new's refusal (*req NULL). */
static int run_elsewhere(fixture_t *fx, ch_store_t *o, const ch_event_actor_t *who,
                         const ch_event_req_args_t *args, ch_event_req_t **req, ch_fault_t *err)
{
    memset(err, 0, sizeof(*err));
    int rc = ch_event_req_new(fx->eng, who, args, req, err);
    if (rc != 0) {
        assert_null(*req);
        return rc;
    }
    elsewhere_t e = {*req, o, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_elsewhere_thread, &e), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    return 0;
}

/* The loop's side: its feed hears the other handle's commit (the worker tells it before its
 * done callback), then the request is finished. The request's code; *a its answer. */
static int finish_here(fixture_t *fx, ch_event_req_t *req, ch_event_answer_t *a, ch_fault_t *err)
{
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    memset(err, 0, sizeof(*err));
    int rc = ch_event_req_finish(fx->eng, req, a, err);
    ch_event_req_free(req);
    return rc;
}

/* All of it: 0 and *a, or the refusal (new's or run's) in err. */
static int ask_elsewhere(fixture_t *fx, ch_store_t *o, const ch_event_actor_t *who,
                         const ch_event_req_args_t *args, ch_event_answer_t *a, ch_fault_t *err)
{
    ch_event_req_t *req = NULL;
    memset(a, 0, sizeof(*a));
    int rc = run_elsewhere(fx, o, who, args, &req, err);
    return rc != 0 ? rc : finish_here(fx, req, a, err);
}

static ch_store_t *second_handle(fixture_t *fx)
{
    char path[320];
    snprintf(path, sizeof(path), "%s/hub.db", fx->dir);
    ch_store_t *o = NULL;
    assert_int_equal(ch_store_open(path, &o, NULL), 0);
    return o;
}

/*
 * Approval, extension, a move, a grant's revocation and a close run on another thread with
 * another store handle, as the API runs them on the store worker: the gate hears each commit at
 * the loop's feed poll (a revoked grant stays admitted until then), and finish gives the live
 * map what the feed does not (grants that start, new expiries, the subject's placing), so the
 * expiry tick ends what it must and nothing else. The records are as the synchronous calls
 * make them.
 */
static void test_requests_run_on_another_handle_and_the_loop_follows(void **state)
{
    fixture_t *fx = *state;
    ch_store_t *o = second_handle(fx);
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_answer_t a;
    ch_fault_t err;
    uint64_t seq = ch_audit_size(fx->audit);
    char object[48];

    /* An approval elsewhere: its grants start at the poll, and join the live map at finish. */
    ch_event_view_t *pending = open_wanted_vehicle(fx, &police);
    assert_string_equal(pending->event.status, "pending");
    int64_t pid = pending->event.id;
    size_t live = ch_event_live_grants(fx->eng);
    ch_event_req_args_t approve = {.kind = CH_EVENT_REQ_DECIDE, .id = pid, .approve = 1};
    ch_event_req_t *req = NULL;
    assert_int_equal(run_elsewhere(fx, o, &operator_kim, &approve, &req, &err), 0);
    int64_t vg = pending->grants[0].grant.id;
    assert_false(ch_event_gate_is_live(fx->gate, vg)); /* the loop has not polled yet */
    assert_int_equal(finish_here(fx, req, &a, &err), 0);
    assert_string_equal(a.event.event.status, "active");
    assert_true(ch_event_gate_is_live(fx->gate, vg));
    assert_int_equal(ch_event_live_grants(fx->eng), live + pending->ngrants);
    assert_int_equal(ch_event_next_due(fx->eng), a.event.event.expires_at);
    event_object(object, pid);
    json_t *r = find_record(fx, seq, "event.approve", object);
    assert_non_null(r);
    json_decref(r);
    ch_event_answer_fini(&a);

    /* An extension elsewhere: the live map takes the new expiry (the old one ends nothing). */
    ch_event_view_t *ev = open_dispatch(fx, &police, A_LAT, A_LON, 600);
    int64_t id = ev->event.id;
    fx->now = T0 + 60 * 1000;
    ch_event_req_args_t ext = {.kind = CH_EVENT_REQ_EXTEND, .id = id, .duration_s = 300};
    assert_int_equal(ask_elsewhere(fx, o, &police, &ext, &a, &err), 0);
    int64_t until = a.event.event.expires_at;
    assert_true(until > ev->event.expires_at);
    ch_event_answer_fini(&a);
    /* A move elsewhere: judged by the speed since the placing the loop knew, placed now. */
    fx->now = T0 + 120 * 1000;
    ch_event_req_args_t mv = {.kind = CH_EVENT_REQ_MOVE, .id = id, .lat = B_LAT, .lon = B_LON};
    assert_int_equal(ask_elsewhere(fx, o, &police, &mv, &a, &err), 0);
    assert_non_null(grant_of(&a.event, fx->ptz_b1));
    int64_t b1 = grant_of(&a.event, fx->ptz_b1)->grant.id;
    assert_true(ch_event_gate_is_live(fx->gate, b1));
    ch_event_answer_fini(&a);
    /* The cameras left behind are released after the grace, by the loop's tick. */
    fx->now = T0 + 120 * 1000 + 30 * 1000;
    assert_true(ch_event_tick(fx->eng) > 0);
    assert_true(ch_event_gate_is_live(fx->gate, b1));
    assert_false(ch_event_gate_is_live(fx->gate, grant_of(ev, fx->ptz_a)->grant.id));

    /* A provider revokes one grant elsewhere: admitted until the poll, cut at it. */
    ch_event_actor_t prov = provider(fx->district2, "apikey:12");
    ch_event_req_args_t rg = {.kind = CH_EVENT_REQ_REVOKE_GRANT, .id = b1, .text = "maintenance"};
    assert_int_equal(run_elsewhere(fx, o, &prov, &rg, &req, &err), 0);
    assert_true(ch_event_gate_is_live(fx->gate, b1));
    assert_int_equal(finish_here(fx, req, &a, &err), 0);
    assert_string_equal(a.grant.grant.status, "revoked");
    assert_null(a.grant.token);
    assert_false(ch_event_gate_is_live(fx->gate, b1));
    ch_event_answer_fini(&a);

    /* A close elsewhere: every grant ends, the live map holds nothing of the event, and its
     * old expiry passes without a record. */
    ch_event_req_args_t cl = {.kind = CH_EVENT_REQ_CLOSE, .id = id, .text = "found"};
    assert_int_equal(ask_elsewhere(fx, o, &police, &cl, &a, &err), 0);
    assert_string_equal(a.event.event.status, "closed");
    for (size_t i = 0; i < a.event.ngrants; i++) {
        assert_false(ch_event_gate_is_live(fx->gate, a.event.grants[i].grant.id));
    }
    ch_event_answer_fini(&a);
    event_object(object, id);
    r = find_record(fx, seq, "event.close", object);
    assert_non_null(r);
    assert_string_equal(str_of(json_object_get(r, "details"), "reason"), "found");
    json_decref(r);
    uint64_t before = ch_audit_size(fx->audit);
    fx->now = until + 1000;
    assert_int_equal(ch_event_tick(fx->eng), (int)pending->ngrants); /* the approved one only */
    assert_null(find_record(fx, before, "event.expire", object));
    assert_int_equal(ch_event_live_grants(fx->eng), live);

    view_free(ev);
    view_free(pending);
    ch_store_close(o);
}

/* The fault of a refusal, field by field. */
static void assert_same_fault(const ch_fault_t *a, const ch_fault_t *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_true((a->code == NULL) == (b->code == NULL));
    if (a->code != NULL) {
        assert_string_equal(a->code, b->code);
    }
    assert_true((a->rule == NULL) == (b->rule == NULL));
    if (a->rule != NULL) {
        assert_string_equal(a->rule, b->rule);
    }
    assert_string_equal(a->field, b->field);
    assert_string_equal(a->message, b->message);
}

/* The synchronous call of a request's operation: its code, and err. */
static int call_sync(fixture_t *fx, const ch_event_actor_t *who, const ch_event_req_args_t *x,
                     ch_fault_t *err)
{
    ch_event_view_t v;
    ch_event_grant_view_t g;
    ch_event_page_t p;
    ch_store_filter_t none = {0};
    int rc = CH_EINVAL;
    memset(err, 0, sizeof(*err));
    memset(&v, 0, sizeof(v));
    memset(&g, 0, sizeof(g));
    memset(&p, 0, sizeof(p));
    switch (x->kind) {
    case CH_EVENT_REQ_GET:
        rc = ch_event_get(fx->eng, who, x->id, &v, err);
        break;
    case CH_EVENT_REQ_LIST:
        rc = ch_event_list(fx->eng, who, x->list != NULL ? x->list : &none, &p, err);
        break;
    case CH_EVENT_REQ_DECIDE:
        rc = ch_event_decide(fx->eng, who, x->id, x->approve, x->text, &v, err);
        break;
    case CH_EVENT_REQ_EXTEND:
        rc = ch_event_extend(fx->eng, who, x->id, x->duration_s, &v, err);
        break;
    case CH_EVENT_REQ_CLOSE:
        rc = ch_event_close(fx->eng, who, x->id, x->text, &v, err);
        break;
    case CH_EVENT_REQ_REVOKE:
        rc = ch_event_revoke(fx->eng, who, x->id, x->text, &v, err);
        break;
    case CH_EVENT_REQ_REVOKE_GRANT:
        rc = ch_event_revoke_grant(fx->eng, who, x->id, x->text, &g, err);
        break;
    case CH_EVENT_REQ_MOVE:
        rc = ch_event_move(fx->eng, who, x->id, x->lat, x->lon, &v, err);
        break;
    }
    ch_event_view_fini(&v);
    ch_event_grant_view_fini(&g);
    ch_event_page_fini(&p);
    return rc;
}

/* A request refused elsewhere answers what the synchronous call answers: not found, another
 * agency's event, a role that may not, a conflict, a denial by the policy (recorded alike). */
static void test_a_request_refused_elsewhere_answers_as_the_call(void **state)
{
    fixture_t *fx = *state;
    ch_store_t *o = second_handle(fx);
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_actor_t fire = agency(fx->fire, "user:choi");
    ch_event_actor_t prov = provider(fx->district, "apikey:3");
    ch_event_view_t *ev = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *done = open_112(fx, &police, A_LAT, A_LON, 600);
    ch_event_view_t *out = NULL;
    ch_fault_t want, got;
    ch_event_answer_t a;

    struct {
        const ch_event_actor_t *who;
        ch_event_req_args_t args;
    } cases[] = {
        {&police, {.kind = CH_EVENT_REQ_GET, .id = 999999}},
        {&fire, {.kind = CH_EVENT_REQ_GET, .id = ev->event.id}},
        {&fire, {.kind = CH_EVENT_REQ_CLOSE, .id = ev->event.id}},
        {&prov, {.kind = CH_EVENT_REQ_CLOSE, .id = ev->event.id}},
        {&police, {.kind = CH_EVENT_REQ_REVOKE, .id = ev->event.id}},
        {&police, {.kind = CH_EVENT_REQ_CLOSE, .id = done->event.id}},
        {&operator_kim, {.kind = CH_EVENT_REQ_DECIDE, .id = ev->event.id, .approve = 1}},
        {&police, {.kind = CH_EVENT_REQ_EXTEND, .id = ev->event.id, .duration_s = -1}},
        {&police, {.kind = CH_EVENT_REQ_EXTEND, .id = ev->event.id, .duration_s = 999999}},
        {&police, {.kind = CH_EVENT_REQ_MOVE, .id = ev->event.id, .lat = 35.1, .lon = 129.0}},
        {&police, {.kind = CH_EVENT_REQ_MOVE, .id = ev->event.id, .lat = B_LAT, .lon = B_LON}},
        {&fire, {.kind = CH_EVENT_REQ_REVOKE_GRANT, .id = ev->grants[0].grant.id}},
        {&prov, {.kind = CH_EVENT_REQ_REVOKE_GRANT, .id = 999999}},
        {&prov, {.kind = CH_EVENT_REQ_LIST}},
    };
    assert_int_equal(call(fx, ch_event_close, &police, done->event.id, NULL, &out, &want), 0);
    view_free(out);
    for (size_t i = 0; i < CH_ARRAY_SIZE(cases); i++) {
        int want_rc = call_sync(fx, cases[i].who, &cases[i].args, &want);
        assert_true(want_rc < 0);
        int rc = ask_elsewhere(fx, o, cases[i].who, &cases[i].args, &a, &got);
        assert_int_equal(rc, want_rc);
        assert_same_fault(&got, &want);
        assert_null(a.event.event.status);
        assert_null(a.grant.grant.status);
        assert_int_equal(a.page.count, 0);
    }
    view_free(done);
    view_free(ev);
    ch_store_close(o);
}

/* With a store worker, the expiry tick queues one pass there and returns at once: the loop
 * holds the grants until it completes (no second pass meanwhile), then the gate hears them
 * end from the feed and the live map lets them go; the record is as the tick's in the call. */
static void test_the_expiry_runs_on_the_store_worker(void **state)
{
    fixture_t *fx = *state;
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_112(fx, &police, A_LAT, A_LON, 600);
    size_t n = ch_event_live_grants(fx->eng);
    assert_true(n > 0);
    char path[320];
    snprintf(path, sizeof(path), "%s/hub.db", fx->dir);
    uv_loop_t loop;
    ch_store_worker_t *w = NULL;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(ch_store_worker_open(&loop, path, &w, NULL), 0);
    ch_store_worker_feed(w, fx->st);
    ch_event_set_store_worker(fx->eng, w);
    uint64_t seq = ch_audit_size(fx->audit);

    fx->now = T0 + 600 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 0); /* queued */
    assert_int_equal(ch_store_worker_waiting(w), 1);
    assert_int_equal(ch_event_tick(fx->eng), 0); /* one pass at a time */
    assert_int_equal(ch_store_worker_waiting(w), 1);
    assert_int_equal(ch_event_live_grants(fx->eng), n);
    assert_true(ch_event_gate_is_live(fx->gate, ev->grants[0].grant.id));
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(ch_event_live_grants(fx->eng), 0);
    assert_true(ch_event_next_due(fx->eng) == INT64_MAX);
    assert_started_then_ended(fx, ev, "expired");
    char object[48];
    event_object(object, ev->event.id);
    json_t *r = find_record(fx, seq, "event.expire", object);
    assert_non_null(r);
    assert_int_equal(int_of(json_object_get(r, "details"), "late_ms"), 0);
    json_decref(r);
    ch_event_view_t *v = get_event(fx, &police, ev->event.id);
    assert_string_equal(v->event.status, "expired");
    view_free(v);
    /* Nothing is due now: a tick queues nothing. */
    assert_int_equal(ch_event_tick(fx->eng), 0);
    assert_int_equal(ch_store_worker_waiting(w), 0);

    ch_event_set_store_worker(fx->eng, NULL);
    ch_store_worker_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    view_free(ev);
}

/* An extension committed elsewhere whose answer the loop has not finished when the old expiry
 * falls due: the tick reads the row, expires nothing and takes the row's expiry. */
static void test_an_extension_not_yet_finished_is_not_expired(void **state)
{
    fixture_t *fx = *state;
    ch_store_t *o = second_handle(fx);
    ch_event_actor_t police = agency(fx->police, "user:park");
    ch_event_view_t *ev = open_112(fx, &police, A_LAT, A_LON, 600);
    uint64_t seq = ch_audit_size(fx->audit);
    ch_event_req_args_t ext = {.kind = CH_EVENT_REQ_EXTEND, .id = ev->event.id, .duration_s = 300};
    ch_event_req_t *req = NULL;
    ch_fault_t err;
    ch_event_answer_t a;
    fx->now = T0 + 599 * 1000;
    assert_int_equal(run_elsewhere(fx, o, &police, &ext, &req, &err), 0);
    fx->now = T0 + 600 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), 0);
    assert_int_equal(ch_event_next_due(fx->eng), T0 + 900 * 1000);
    char object[48];
    event_object(object, ev->event.id);
    assert_null(find_record(fx, seq, "event.expire", object));
    assert_int_equal(finish_here(fx, req, &a, &err), 0);
    assert_string_equal(a.event.event.status, "active");
    assert_int_equal(a.event.event.expires_at, T0 + 900 * 1000);
    ch_event_answer_fini(&a);
    assert_int_equal(ch_event_live_grants(fx->eng), ev->ngrants);
    fx->now = T0 + 900 * 1000;
    assert_int_equal(ch_event_tick(fx->eng), (int)ev->ngrants);
    view_free(ev);
    ch_store_close(o);
}

static void test_ledger_folds_interleaved_events(void **state)
{
    fixture_t *fx = *state;
    enum { N = 400 };
    json_t *d;
    char object[32];
    for (int i = 1; i <= N; i++) {
        snprintf(object, sizeof(object), "event:%d", 1000 + i);
        d = json_pack("{s:I, s:[I], s:b}", "agency_id", (json_int_t)fx->police, "cameras",
                      (json_int_t)(i % 7 + 1), "export", i % 2);
        ch_audit_entry_t e = {
            "agency:1", "event.open", object, "112-dispatch", "경찰관 직무집행법 제8조", "ok", d};
        assert_int_equal(ch_audit_append(fx->audit, &e, NULL), 0);
        json_decref(d);
        if (i % 50 == 0) { /* noise: another object, a refusal of this event */
            ch_audit_entry_t o = {"user:admin", "camera.update", "camera:3", NULL, NULL, "ok",
                                  NULL};
            ch_audit_entry_t r = {"agency:1", "event.close", object, NULL, NULL, "denied", NULL};
            assert_int_equal(ch_audit_append(fx->audit, &o, NULL), 0);
            assert_int_equal(ch_audit_append(fx->audit, &r, NULL), 0);
        }
    }
    for (int i = N; i >= 1; i--) {
        snprintf(object, sizeof(object), "event:%d", 1000 + i);
        if (i % 3 == 0) {
            d = json_pack("{s:[I, I]}", "added", (json_int_t)(i % 7 + 1), (json_int_t)99);
            ch_audit_entry_t m = {"system", "event.move", object, NULL, NULL, "ok", d};
            assert_int_equal(ch_audit_append(fx->audit, &m, NULL), 0);
            json_decref(d);
            ch_audit_entry_t x = {"agency:1", "event.extend", object, NULL, NULL, "ok", NULL};
            assert_int_equal(ch_audit_append(fx->audit, &x, NULL), 0);
        }
        if (i % 5 != 0) { /* every fifth still runs */
            ch_audit_entry_t e = {
                "system", i % 2 ? "event.expire" : "event.close", object, NULL, NULL, "ok", NULL};
            assert_int_equal(ch_audit_append(fx->audit, &e, NULL), 0);
        }
    }
    ch_event_ledger_filter_t f;
    memset(&f, 0, sizeof(f));
    json_t *out = NULL;
    assert_int_equal(ch_event_ledger(fx->audit, fx->st, fx->policy, &f, &out), 0);
    json_t *items = json_object_get(out, "items");
    assert_int_equal(json_array_size(items), N);
    size_t k;
    json_t *row;
    json_array_foreach(items, k, row)
    {
        int i = (int)k + 1;
        assert_int_equal(json_integer_value(json_object_get(row, "event_id")), 1000 + i);
        json_t *cams = json_object_get(row, "cameras");
        assert_int_equal(json_array_size(cams), i % 3 == 0 ? 2 : 1);
        assert_int_equal(json_integer_value(json_array_get(cams, 0)), i % 7 + 1);
        assert_int_equal(json_integer_value(json_object_get(row, "extensions")), i % 3 == 0);
        const char *ended = json_string_value(json_object_get(row, "ended_by"));
        if (i % 5 == 0) {
            assert_null(ended);
            assert_true(json_is_null(json_object_get(row, "period_to")));
        } else {
            assert_string_equal(ended, i % 2 ? "event.expire" : "event.close");
        }
        assert_string_equal(json_string_value(json_object_get(row, "form")),
                            i % 2 ? "live view; export allowed" : "live view");
        assert_string_equal(json_string_value(json_object_get(row, "recipient")),
                            "서울경찰청 112종합상황실");
    }
    json_decref(out);
    /* One event, and one camera (cameras 99 came with the moves of every third). */
    f.event_id = 1000 + 42;
    assert_int_equal(ch_event_ledger(fx->audit, fx->st, fx->policy, &f, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "items")), 1);
    json_decref(out);
    f.event_id = 0;
    f.camera_id = 99;
    assert_int_equal(ch_event_ledger(fx->audit, fx->st, fx->policy, &f, &out), 0);
    assert_int_equal(json_array_size(json_object_get(out, "items")), N / 3);
    json_decref(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_grants_the_cameras_that_see_the_point, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_open_along_a_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_verify_and_fail_when_changed_or_expired, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_denials_create_nothing_and_are_on_the_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expiry_on_the_injected_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_expires_what_expired_while_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_approval_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extension_within_and_beyond_the_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_by_the_agency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_one_grant_by_its_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cameras_out_of_service_lose_live_and_pending_grants,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_events_on_the_same_cameras, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_moving_subject_keeps_cameras_behind_for_the_grace,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_operator_never_approves_their_own_request, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_only_a_following_event_moves_and_no_faster_than_its_subject, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_restored_subject_was_placed_at_its_events_last_write,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_decision_on_the_record_but_not_in_the_store_is_carried_out_at_start, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_open_without_its_record_is_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_gate_follows_the_grants_whoever_writes_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_live_map_follows_what_other_handles_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_of_opens_is_the_engines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_path_open_prepared_off_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ledger_folds_interleaved_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_run_on_another_handle_and_the_loop_follows,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_request_refused_elsewhere_answers_as_the_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_expiry_runs_on_the_store_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_extension_not_yet_finished_is_not_expired, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
