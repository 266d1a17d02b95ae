/*
 * Unit tests of the registry's change use cases (registry_change.c): a provider is refused on
 * another agency's camera (and the refusal is recorded), the "cameras changed" notification
 * carries the right ids and what changed, fed by the store's change feed (a write that is no use
 * case is told too; a rolled-back one is not), another handle's cameras (an import's) are told
 * when the registry follows, which waits for its slow followers, a change the audit record
 * refuses is undone, and a change run as a request on the store worker is told on the loop
 * with its actor and what it changed.
 *
 * The tests open a fresh SQLite database in their own temporary directory (setup) and remove
 * it afterwards (teardown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry/registry.h"
#include "support/fixture.h"

#include <uv.h>

/* What the use cases handed to the recorder. */
typedef struct recorded {
    int count;
    int fail; /* the code the recorder returns (0: records) */
    char action[32];
    char object[64];
    char outcome[16];
} recorded_t;

/* What the subscribers were told. */
typedef struct told {
    int count;
    unsigned what;
    int64_t ids[4];
    size_t nids;
    int had_camera;
    const ch_camera_t *camera; /* the record told (valid during the telling only) */
    char url[64];              /* its stream URL then */
    char actor[32];
} told_t;

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;
    ch_registry_t reg;
    int64_t own;   /* the provider's agency */
    int64_t other; /* another agency */
    recorded_t rec;
    ch_registry_recorder_t recorder;
    told_t told;
} fixture_t;

static int record(void *data, const char *action, const char *object, const char *outcome,
                  json_t *details)
{
    recorded_t *r = data;
    json_decref(details);
    if (r->fail != 0 && strcmp(outcome, "ok") == 0) {
        return r->fail;
    }
    r->count++;
    snprintf(r->action, sizeof(r->action), "%s", action);
    snprintf(r->object, sizeof(r->object), "%s", object != NULL ? object : "");
    snprintf(r->outcome, sizeof(r->outcome), "%s", outcome);
    return 0;
}

static void follow(void *ud, const ch_registry_change_t *change)
{
    told_t *t = ud;
    t->count++;
    t->what = change->what;
    t->nids = change->count < 4 ? change->count : 4;
    if (t->nids > 0) {
        memcpy(t->ids, change->ids, t->nids * sizeof(int64_t));
    }
    t->had_camera = change->camera != NULL;
    t->camera = change->camera;
    snprintf(t->url, sizeof(t->url), "%s",
             change->camera != NULL && change->camera->rtsp_url != NULL ? change->camera->rtsp_url
                                                                        : "");
    snprintf(t->actor, sizeof(t->actor), "%s", change->actor != NULL ? change->actor : "");
}

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_registry_change", &fx->st) != 0) {
        ch_free(fx);
        return -1;
    }
    fx->own = ch_test_store_agency(fx->st, "서울특별시 종로구", "provider");
    fx->other = ch_test_store_agency(fx->st, "서울특별시 마포구", "provider");
    if (fx->own == 0 || fx->other == 0) {
        return -1;
    }
    ch_registry_init(&fx->reg, fx->st);
    if (ch_registry_subscribe(&fx->reg, follow, &fx->told) != 0 ||
        ch_registry_watch(&fx->reg) != 0) {
        return -1;
    }
    fx->recorder.record = record;
    fx->recorder.data = &fx->rec;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_registry_fini(&fx->reg);
    int rc = ch_test_store_close(&fx->ts, fx->st);
    ch_free(fx);
    return rc;
}

static const ch_registry_actor_t admin = {.name = "user:admin", .scope = CH_IMPORT_ANY_AGENCY};

/* Creates an active, located camera of agency as admin; returns its id. */
static int64_t make_camera(fixture_t *fx, int64_t agency, const char *name)
{
    ch_registry_record_t r;
    ch_fault_t f;
    ch_registry_record_init(CH_REGISTRY_CAMERA, &r);
    r.camera.agency_id = agency;
    r.camera.name = ch_strdup(name);
    r.camera.located = 1;
    r.camera.lat = 37.57;
    r.camera.lon = 126.98;
    r.camera.status = ch_strdup("active");
    r.camera.kind = ch_strdup("unknown");
    int rc = ch_registry_create(&fx->reg, &admin, CH_REGISTRY_CAMERA, &r, &fx->recorder, &f);
    assert_int_equal(rc, 0);
    int64_t id = r.camera.id;
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &r);
    return id;
}

/* An edit that sets the camera's status and moves it to agency_id, each when given. */
typedef struct edit {
    const char *status;
    int64_t agency_id;
} edit_t;

static int edit_camera(void *ud, ch_registry_record_t *r, ch_fault_t *f)
{
    (void)f;
    const edit_t *e = ud;
    if (e->status != NULL) {
        ch_free(r->camera.status);
        r->camera.status = ch_strdup(e->status);
    }
    if (e->agency_id != 0) {
        r->camera.agency_id = e->agency_id;
    }
    return 0;
}

static void test_a_provider_is_refused_on_another_agency_camera(void **state)
{
    fixture_t *fx = *state;
    int64_t theirs = make_camera(fx, fx->other, "마포 1");
    int64_t mine = make_camera(fx, fx->own, "종로 1");
    ch_registry_actor_t provider = {
        .name = "apikey:7", .scope = CH_IMPORT_OWN_AGENCY, .agency_id = fx->own};
    fx->told.count = 0;
    fx->rec.count = 0;
    ch_fault_t f;
    ch_registry_record_t out;

    /* Delete another agency's camera: refused, recorded as a refusal, nothing changes. */
    int rc = ch_registry_delete(&fx->reg, &provider, CH_REGISTRY_CAMERA, theirs, &fx->recorder, &f);
    assert_int_equal(rc, CH_EPERM);
    assert_int_equal(f.kind, CH_FAULT_FORBIDDEN);
    assert_string_equal(f.field, "agency_id");
    assert_string_equal(fx->rec.action, "auth.forbidden");
    assert_string_equal(fx->rec.outcome, "denied");
    assert_int_equal(fx->told.count, 0);
    assert_int_equal(ch_registry_get(&fx->reg, CH_REGISTRY_CAMERA, theirs, &out, &f), 0);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);

    /* Update it: refused on whose it is now. */
    edit_t e = {.status = "inactive"};
    ch_registry_update_t req = {
        .kind = CH_REGISTRY_CAMERA, .id = theirs, .edit = edit_camera, .edit_ud = &e};
    rc = ch_registry_update(&fx->reg, &provider, &req, &out, &fx->recorder, &f);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_int_equal(rc, CH_EPERM);
    assert_int_equal(f.kind, CH_FAULT_FORBIDDEN);

    /* Move its own camera to another agency: refused on whose it would be. */
    edit_t move = {.agency_id = fx->other};
    req.id = mine;
    req.edit_ud = &move;
    rc = ch_registry_update(&fx->reg, &provider, &req, &out, &fx->recorder, &f);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_int_equal(rc, CH_EPERM);
    assert_int_equal(fx->told.count, 0);

    /* Create in another agency: refused before anything is written. */
    ch_registry_record_t r;
    ch_registry_record_init(CH_REGISTRY_CAMERA, &r);
    r.camera.agency_id = fx->other;
    r.camera.name = ch_strdup("마포 2");
    r.camera.status = ch_strdup("unlocated");
    rc = ch_registry_create(&fx->reg, &provider, CH_REGISTRY_CAMERA, &r, &fx->recorder, &f);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &r);
    assert_int_equal(rc, CH_EPERM);
    assert_int_equal(fx->told.count, 0);

    /* Its own camera it may take out of service. */
    req.edit_ud = &e;
    rc = ch_registry_update(&fx->reg, &provider, &req, &out, &fx->recorder, &f);
    assert_int_equal(rc, 0);
    assert_string_equal(out.camera.status, "inactive");
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_string_equal(fx->rec.action, "camera.update");
    assert_int_equal(fx->told.count, 1);
}

static void test_the_notification_names_the_cameras_and_what_changed(void **state)
{
    fixture_t *fx = *state;
    int64_t id = make_camera(fx, fx->own, "종로 2");
    assert_int_equal(fx->told.count, 1);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_CREATED);
    assert_int_equal(fx->told.nids, 1);
    assert_int_equal(fx->told.ids[0], id);
    assert_true(fx->told.had_camera);
    assert_string_equal(fx->told.actor, "user:admin");
    assert_string_equal(fx->rec.action, "camera.create");

    /* Taken out of service: its grants must end. */
    edit_t e = {.status = "inactive"};
    ch_registry_update_t req = {
        .kind = CH_REGISTRY_CAMERA, .id = id, .edit = edit_camera, .edit_ud = &e};
    ch_registry_record_t out;
    ch_fault_t f;
    assert_int_equal(ch_registry_update(&fx->reg, &admin, &req, &out, &fx->recorder, &f), 0);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_int_equal(fx->told.count, 2);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_UPDATED | CH_REGISTRY_CAMERA_INACTIVE);
    assert_int_equal(fx->told.ids[0], id);

    assert_int_equal(
        ch_registry_delete(&fx->reg, &admin, CH_REGISTRY_CAMERA, id, &fx->recorder, &f), 0);
    assert_int_equal(fx->told.count, 3);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_DELETED);
    assert_int_equal(fx->told.ids[0], id);
    assert_false(fx->told.had_camera);
    assert_string_equal(fx->rec.action, "camera.delete");

    /* Agencies and devices are not cameras: no notification. */
    ch_registry_record_t a;
    ch_registry_record_init(CH_REGISTRY_AGENCY, &a);
    a.agency.name = ch_strdup("서울특별시 중구");
    a.agency.kind = ch_strdup("provider");
    a.agency.level = ch_strdup("district");
    a.agency.type = ch_strdup("district-center");
    assert_int_equal(
        ch_registry_create(&fx->reg, &admin, CH_REGISTRY_AGENCY, &a, &fx->recorder, &f), 0);
    ch_registry_record_fini(CH_REGISTRY_AGENCY, &a);
    assert_int_equal(fx->told.count, 3);
    assert_string_equal(fx->rec.action, "agency.create");
}

static int edit_url(void *ud, ch_registry_record_t *r, ch_fault_t *f)
{
    (void)f;
    ch_free(r->camera.rtsp_url);
    r->camera.rtsp_url = ch_strdup(ud);
    return 0;
}

static void test_a_new_stream_url_is_told_as_a_source_change(void **state)
{
    fixture_t *fx = *state;
    int64_t id = make_camera(fx, fx->own, "종로 3");
    ch_registry_update_t req = {.kind = CH_REGISTRY_CAMERA,
                                .id = id,
                                .edit = edit_url,
                                .edit_ud = (void *)"rtsp://cam.example/a"};
    ch_registry_record_t out;
    ch_fault_t f;
    assert_int_equal(ch_registry_update(&fx->reg, &admin, &req, &out, &fx->recorder, &f), 0);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_UPDATED | CH_REGISTRY_CAMERA_SOURCE);
    /* The same URL again: nothing to restart. */
    assert_int_equal(ch_registry_update(&fx->reg, &admin, &req, &out, &fx->recorder, &f), 0);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_UPDATED);
}

static void test_a_camera_written_outside_the_use_cases_is_told_once_committed(void **state)
{
    fixture_t *fx = *state;
    int64_t id = make_camera(fx, fx->own, "종로 7");
    fx->told.count = 0;
    ch_camera_t cam;
    ch_camera_init(&cam);
    assert_int_equal(ch_store_camera_get(fx->st, id, &cam), 0);
    ch_free(cam.note);
    cam.note = ch_strdup("rolled back");
    /* Rolled back: nothing is told. */
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_int_equal(ch_store_camera_update(fx->st, &cam), 0);
    assert_int_equal(fx->told.count, 0);
    assert_int_equal(ch_store_rollback(fx->st), 0);
    assert_int_equal(fx->told.count, 0);
    /* Committed: told as the system's, its stream possibly changed (nobody can say). */
    assert_int_equal(ch_store_begin(fx->st), 0);
    assert_int_equal(ch_store_camera_update(fx->st, &cam), 0);
    assert_int_equal(fx->told.count, 0);
    assert_int_equal(ch_store_commit(fx->st), 0);
    ch_camera_fini(&cam);
    assert_int_equal(fx->told.count, 1);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_UPDATED | CH_REGISTRY_CAMERA_SOURCE);
    assert_int_equal(fx->told.ids[0], id);
    assert_true(fx->told.had_camera);
    assert_string_equal(fx->told.actor, "system");
}

/* A subscriber that follows later (as the geo index reloads on the pool). */
static ch_registry_settle_t *held;
static void follow_later(void *ud, const ch_registry_change_t *change)
{
    (void)ud;
    ch_registry_settle_hold(change->settle);
    held = change->settle;
}

static void settled(void *ud)
{
    (*(int *)ud)++;
}

/* A camera written by another store handle (an import's thread), count of them in one
 * transaction; the last one's id. */
static int64_t other_handle_cameras(const fixture_t *fx, int count)
{
    ch_store_t *o = NULL;
    assert_int_equal(ch_store_open(fx->ts.path, &o, NULL), 0);
    assert_int_equal(ch_store_begin(o), 0);
    int64_t id = 0;
    for (int i = 0; i < count; i++) {
        ch_camera_t c;
        ch_camera_init(&c);
        c.agency_id = fx->own;
        c.name = "imported";
        c.kind = "fixed";
        c.status = "active";
        assert_int_equal(ch_store_camera_create(o, &c), 0);
        id = c.id;
    }
    assert_int_equal(ch_store_commit(o), 0);
    ch_store_close(o);
    return id;
}

static void test_another_handles_cameras_are_settled_once_the_slow_followers_are_done(void **state)
{
    fixture_t *fx = *state;
    int done = 0;
    fx->told.count = 0;
    int64_t id = other_handle_cameras(fx, 1);
    assert_int_equal(fx->told.count, 0); /* not before the registry follows */
    ch_registry_follow(&fx->reg, "user:admin", settled, &done);
    assert_int_equal(fx->told.count, 1);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_CREATED);
    assert_int_equal(fx->told.ids[0], id);
    assert_string_equal(fx->told.actor, "user:admin");
    assert_int_equal(done, 1); /* nobody held it */

    /* Many in one transaction: one change of many cameras; a slow follower holds it. */
    assert_int_equal(ch_registry_subscribe(&fx->reg, follow_later, NULL), 0);
    other_handle_cameras(fx, 1100);
    ch_registry_follow(&fx->reg, "user:admin", settled, &done);
    assert_int_equal(fx->told.count, 2);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_CREATED | CH_REGISTRY_CAMERA_UPDATED |
                                        CH_REGISTRY_CAMERAS_MANY);
    assert_int_equal(fx->told.nids, 0);
    assert_int_equal(done, 1);
    assert_non_null(held);
    ch_registry_settle_release(held);
    assert_int_equal(done, 2);

    /* Told already by another poll (the hub's timer) and still followed: the import waits. */
    held = NULL;
    other_handle_cameras(fx, 1);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(fx->told.count, 3);
    assert_non_null(held);
    ch_registry_follow(&fx->reg, "user:admin", settled, &done);
    assert_int_equal(fx->told.count, 3);
    assert_int_equal(done, 2);
    ch_registry_settle_release(held);
    assert_int_equal(done, 3);
}

/* An import's changes read by another poll before its own follow (the hub's timer, an
 * authenticated request's) are still the importer's: the one actor every expected change has. */
static void test_an_expected_import_keeps_its_actor_whoever_polls(void **state)
{
    fixture_t *fx = *state;
    static const char alice[] = "user:alice", bob[] = "user:bob";
    fx->told.count = 0;
    ch_registry_expect(&fx->reg, alice);
    (void)other_handle_cameras(fx, 1);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(fx->told.count, 1);
    assert_string_equal(fx->told.actor, "user:alice");
    /* Two imports of different actors in flight: nobody can tell whose; the system's. */
    ch_registry_expect(&fx->reg, bob);
    (void)other_handle_cameras(fx, 1);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(fx->told.count, 2);
    assert_string_equal(fx->told.actor, "system");
    ch_registry_unexpect(&fx->reg, alice);
    (void)other_handle_cameras(fx, 1);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_string_equal(fx->told.actor, "user:bob");
    /* Ended: another handle's change is the system's again. */
    ch_registry_unexpect(&fx->reg, bob);
    ch_registry_unexpect(&fx->reg, bob); /* unknown: ignored */
    (void)other_handle_cameras(fx, 1);
    assert_int_equal(ch_store_feed_poll(fx->st), 0);
    assert_int_equal(fx->told.count, 4);
    assert_string_equal(fx->told.actor, "system");
}

static void test_a_change_the_audit_record_refuses_is_undone(void **state)
{
    fixture_t *fx = *state;
    int64_t id = make_camera(fx, fx->own, "종로 4");
    fx->told.count = 0;
    fx->rec.fail = CH_EIO;
    ch_fault_t f;

    /* A create: nothing stored, nobody told. */
    ch_registry_record_t r;
    ch_registry_record_init(CH_REGISTRY_CAMERA, &r);
    r.camera.agency_id = fx->own;
    r.camera.name = ch_strdup("종로 5");
    r.camera.kind = ch_strdup("unknown");
    r.camera.status = ch_strdup("unlocated");
    int rc = ch_registry_create(&fx->reg, &admin, CH_REGISTRY_CAMERA, &r, &fx->recorder, &f);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &r);
    assert_true(rc < 0);
    assert_int_equal(f.kind, CH_FAULT_AUDIT);
    assert_string_equal(ch_fault_code(&f), "audit_unavailable");
    assert_int_equal(fx->told.count, 0);
    ch_store_filter_t filter = {.agency_id = fx->own};
    ch_camera_list_t l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(ch_store_camera_list(fx->st, &filter, &l), 0);
    assert_int_equal(l.total, 1);
    ch_camera_list_free(&l);

    /* An update: the camera stays as it was. */
    edit_t e = {.status = "inactive"};
    ch_registry_update_t req = {
        .kind = CH_REGISTRY_CAMERA, .id = id, .edit = edit_camera, .edit_ud = &e};
    ch_registry_record_t out;
    rc = ch_registry_update(&fx->reg, &admin, &req, &out, &fx->recorder, &f);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_int_equal(f.kind, CH_FAULT_AUDIT);
    assert_int_equal(ch_registry_get(&fx->reg, CH_REGISTRY_CAMERA, id, &out, &f), 0);
    assert_string_equal(out.camera.status, "active");
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);

    /* A delete: the camera is still there. */
    rc = ch_registry_delete(&fx->reg, &admin, CH_REGISTRY_CAMERA, id, &fx->recorder, &f);
    assert_int_equal(f.kind, CH_FAULT_AUDIT);
    assert_int_equal(ch_registry_get(&fx->reg, CH_REGISTRY_CAMERA, id, &out, &f), 0);
    ch_registry_record_fini(CH_REGISTRY_CAMERA, &out);
    assert_int_equal(fx->told.count, 0);
}

static void test_store_refusals_are_faults(void **state)
{
    fixture_t *fx = *state;
    ch_registry_record_t out;
    ch_fault_t f;
    assert_int_equal(ch_registry_get(&fx->reg, CH_REGISTRY_DEVICE, 999, &out, &f), CH_ENOTFOUND);
    ch_registry_record_fini(CH_REGISTRY_DEVICE, &out);
    assert_int_equal(f.kind, CH_FAULT_NOT_FOUND);
    assert_string_equal(f.message, "no such device");
    (void)make_camera(fx, fx->own, "종로 6");
    /* The agency still has a camera. */
    int rc = ch_registry_delete(&fx->reg, &admin, CH_REGISTRY_AGENCY, fx->own, &fx->recorder, &f);
    assert_int_equal(rc, CH_ECONFLICT);
    assert_int_equal(f.kind, CH_FAULT_CONFLICT);
}

/* A request's completion on the loop. */
static void req_done(void *ud, int rc)
{
    ch_registry_req_t *q = ud;
    ch_registry_req_told(q);
    q->fault.rc = rc; /* kept for the test to read */
}

/* The same use case as a request on a store worker: the transaction and its record run on the
 * worker's handle, the "cameras changed" notification comes on the loop with the actor and the
 * source change; a provider's refusal is the same fault, and nothing is told. */
static void test_a_change_on_the_store_worker_is_told_on_the_loop(void **state)
{
    fixture_t *fx = *state;
    int64_t id = make_camera(fx, fx->own, "종로 9");
    uv_loop_t loop;
    ch_store_worker_t *w = NULL;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(ch_store_worker_open(&loop, fx->ts.path, &w, NULL), 0);
    ch_store_worker_feed(w, fx->st);
    fx->told.count = 0;
    ch_registry_req_t q;
    ch_registry_req_init(&q, &fx->reg, CH_REGISTRY_UPDATE, CH_REGISTRY_CAMERA, &admin,
                         &fx->recorder);
    q.id = id;
    q.update = (ch_registry_update_t){.kind = CH_REGISTRY_CAMERA,
                                      .id = id,
                                      .edit = edit_url,
                                      .edit_ud = (void *)"rtsp://cam.example/w"};
    assert_int_equal(
        ch_store_async_watched(w, ch_registry_req_work, ch_registry_req_telling, req_done, &q), 0);
    assert_int_equal(fx->told.count, 0); /* nothing before the loop runs */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(q.fault.rc, 0);
    assert_null(fx->reg.pending);
    assert_string_equal(q.rec.camera.rtsp_url, "rtsp://cam.example/w");
    assert_int_equal(fx->told.count, 1);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_UPDATED | CH_REGISTRY_CAMERA_SOURCE);
    assert_int_equal(fx->told.ids[0], id);
    assert_string_equal(fx->told.actor, "user:admin");
    assert_string_equal(fx->rec.action, "camera.update");
    /* The followers got the record the work read back on the worker's handle: the loop read
     * nothing. */
    assert_ptr_equal(fx->told.camera, &q.rec.camera);
    assert_string_equal(fx->told.url, "rtsp://cam.example/w");
    ch_registry_req_fini(&q);

    /* A camera created on the worker: told with the record as stored (its times included). */
    ch_registry_req_init(&q, &fx->reg, CH_REGISTRY_CREATE, CH_REGISTRY_CAMERA, &admin,
                         &fx->recorder);
    q.rec.camera.agency_id = fx->own;
    q.rec.camera.name = ch_strdup("종로 10");
    q.rec.camera.kind = ch_strdup("fixed");
    q.rec.camera.status = ch_strdup("active");
    q.rec.camera.rtsp_url = ch_strdup("rtsp://cam.example/new");
    fx->told.count = 0;
    assert_int_equal(
        ch_store_async_watched(w, ch_registry_req_work, ch_registry_req_telling, req_done, &q), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(q.fault.rc, 0);
    assert_int_equal(fx->told.count, 1);
    assert_int_equal(fx->told.what, CH_REGISTRY_CAMERA_CREATED);
    assert_int_equal(fx->told.ids[0], q.rec.camera.id);
    assert_ptr_equal(fx->told.camera, &q.rec.camera);
    assert_string_equal(fx->told.url, "rtsp://cam.example/new");
    assert_true(q.rec.camera.created_at > 0 && q.rec.camera.updated_at > 0);
    ch_registry_req_fini(&q);

    ch_registry_actor_t provider = {
        .name = "user:jongno", .scope = CH_IMPORT_OWN_AGENCY, .agency_id = fx->own};
    ch_registry_req_init(&q, &fx->reg, CH_REGISTRY_DELETE, CH_REGISTRY_CAMERA, &provider,
                         &fx->recorder);
    q.id = make_camera(fx, fx->other, "마포 9");
    fx->told.count = 0;
    assert_int_equal(
        ch_store_async_watched(w, ch_registry_req_work, ch_registry_req_telling, req_done, &q), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(q.fault.rc, CH_EPERM);
    assert_int_equal(q.fault.kind, CH_FAULT_FORBIDDEN);
    assert_int_equal(fx->told.count, 0);
    assert_string_equal(fx->rec.action, "auth.forbidden");
    ch_registry_req_fini(&q);

    ch_store_worker_close(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_provider_is_refused_on_another_agency_camera, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_notification_names_the_cameras_and_what_changed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_new_stream_url_is_told_as_a_source_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_camera_written_outside_the_use_cases_is_told_once_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_another_handles_cameras_are_settled_once_the_slow_followers_are_done, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_an_expected_import_keeps_its_actor_whoever_polls,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_change_the_audit_record_refuses_is_undone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_refusals_are_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_change_on_the_store_worker_is_told_on_the_loop,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
