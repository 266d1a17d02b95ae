/*
 * registry: the use cases of a change (registry.h): an agency, camera or device created,
 * updated or deleted for an actor, with its ownership rule, its audit record inside the store
 * transaction, and the "cameras changed" notification, fed by the store's change feed of the
 * camera table once a change is committed (ch_registry_watch).
 */
#include "registry/registry.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* ---- one table of store calls per kind ------------------------------------------------------ */

typedef struct kind_ops {
    const char *singular; /* "camera": the audit record's names and the messages */
    const char *collection;
    int (*create)(ch_store_t *st, ch_registry_record_t *r);
    int (*get)(ch_store_t *st, int64_t id, ch_registry_record_t *r);
    int (*update)(ch_store_t *st, ch_registry_record_t *r);
    int (*del)(ch_store_t *st, int64_t id);
} kind_ops_t;

/* Adapters from the typed store calls to the table's signatures. */
#define KIND_OPS(member)                                                                           \
    static int member##_create(ch_store_t *st, ch_registry_record_t *r)                            \
    {                                                                                              \
        return ch_store_##member##_create(st, &r->member);                                         \
    }                                                                                              \
    static int member##_get(ch_store_t *st, int64_t id, ch_registry_record_t *r)                   \
    {                                                                                              \
        return ch_store_##member##_get(st, id, &r->member);                                        \
    }                                                                                              \
    static int member##_update(ch_store_t *st, ch_registry_record_t *r)                            \
    {                                                                                              \
        return ch_store_##member##_update(st, &r->member);                                         \
    }                                                                                              \
    static int member##_del(ch_store_t *st, int64_t id)                                            \
    {                                                                                              \
        return ch_store_##member##_delete(st, id);                                                 \
    }

KIND_OPS(agency)
KIND_OPS(camera)
KIND_OPS(device)

/* Indexed by ch_registry_kind_t. */
static const kind_ops_t kinds[] = {
    {"agency", "agencies", agency_create, agency_get, agency_update, agency_del},
    {"camera", "cameras", camera_create, camera_get, camera_update, camera_del},
    {"device", "devices", device_create, device_get, device_update, device_del},
};

void ch_registry_record_init(ch_registry_kind_t kind, ch_registry_record_t *r)
{
    memset(r, 0, sizeof(*r));
    if (kind == CH_REGISTRY_CAMERA) {
        ch_camera_init(&r->camera);
    } else if (kind == CH_REGISTRY_DEVICE) {
        ch_device_init(&r->device);
    }
}

void ch_registry_record_fini(ch_registry_kind_t kind, ch_registry_record_t *r)
{
    switch (kind) {
    case CH_REGISTRY_AGENCY:
        ch_agency_fini(&r->agency);
        break;
    case CH_REGISTRY_CAMERA:
        ch_camera_fini(&r->camera);
        break;
    case CH_REGISTRY_DEVICE:
        ch_device_fini(&r->device);
        break;
    }
    memset(r, 0, sizeof(*r));
}

static int64_t *record_id(ch_registry_kind_t kind, ch_registry_record_t *r)
{
    return kind == CH_REGISTRY_AGENCY   ? &r->agency.id
           : kind == CH_REGISTRY_CAMERA ? &r->camera.id
                                        : &r->device.id;
}

/* ---- the notification ----------------------------------------------------------------------- */

void ch_registry_init(ch_registry_t *reg, ch_store_t *st)
{
    memset(reg, 0, sizeof(*reg));
    reg->st = st;
}

int ch_registry_subscribe(ch_registry_t *reg, ch_registry_cameras_fn fn, void *ud)
{
    if (reg->nsubscribers == CH_REGISTRY_MAX_SUBSCRIBERS) {
        return CH_ETOOBIG;
    }
    reg->subscribers[reg->nsubscribers].fn = fn;
    reg->subscribers[reg->nsubscribers].ud = ud;
    reg->nsubscribers++;
    return 0;
}

void ch_registry_cameras_changed(const ch_registry_t *reg, const ch_registry_change_t *change)
{
    for (size_t i = 0; i < reg->nsubscribers; i++) {
        reg->subscribers[i].fn(reg->subscribers[i].ud, change);
    }
}

void ch_registry_settle_hold(ch_registry_settle_t *s)
{
    if (s != NULL) {
        s->holds++;
    }
}

void ch_registry_settle_release(ch_registry_settle_t *s)
{
    if (s == NULL) {
        return;
    }
    assert(s->holds > 0);
    if (--s->holds == 0) {
        if (s->settled != NULL) {
            s->settled(s->ud);
        }
        ch_free(s);
    }
}

/* Every change told is followed when its settle is released: ch_registry_follow's callers
 * wait until none is left (a follower on the pool may still be at one a timer's poll told). */
static void followed(void *ud)
{
    ch_registry_t *reg = ud;
    assert(reg->following > 0);
    if (--reg->following > 0 || reg->nwaiters == 0) {
        return;
    }
    /* A waiter may follow again: it waits for the next round. */
    size_t n = reg->nwaiters;
    ch_registry_waiter_t *w = reg->waiters;
    reg->waiters = NULL;
    reg->nwaiters = 0;
    for (size_t i = 0; i < n; i++) {
        w[i].fn(w[i].ud);
    }
    ch_free(w);
}

static ch_registry_settle_t *settle_new(ch_registry_t *reg)
{
    ch_registry_settle_t *s = ch_calloc(1, sizeof(*s));
    s->holds = 1;
    s->settled = followed;
    s->ud = reg;
    reg->following++;
    return s;
}

void ch_registry_follow(ch_registry_t *reg, const char *actor, void (*settled)(void *ud), void *ud)
{
    reg->following++; /* no waiter runs before the poll is over */
    const ch_registry_told_t *before = reg->pending;
    ch_registry_told_t told = {.actor = actor};
    reg->pending = &told;
    if (ch_store_feed_poll(reg->st) != 0) {
        ch_log(CH_LOG_ERROR, "registry", "msg=\"store changes not read\" error=\"%s\"",
               ch_store_errmsg(reg->st));
    }
    reg->pending = before;
    if (settled != NULL) {
        reg->waiters = ch_realloc(reg->waiters, (reg->nwaiters + 1) * sizeof(*reg->waiters));
        reg->waiters[reg->nwaiters++] = (ch_registry_waiter_t){settled, ud};
    }
    followed(reg);
}

void ch_registry_expect(ch_registry_t *reg, const char *actor)
{
    if (reg->nexpected < CH_REGISTRY_MAX_EXPECTED) {
        reg->expected[reg->nexpected++] = actor;
    }
}

void ch_registry_unexpect(ch_registry_t *reg, const char *actor)
{
    for (size_t i = 0; i < reg->nexpected; i++) {
        if (reg->expected[i] == actor) {
            reg->expected[i] = reg->expected[--reg->nexpected];
            return;
        }
    }
}

/* Who made a change told now: the use case telling it, else the one actor every change
 * expected from other handles shares, else the system. */
static const char *change_actor(const ch_registry_t *reg)
{
    const ch_registry_told_t *told = reg->pending;
    if (told != NULL && told->actor != NULL) {
        return told->actor;
    }
    if (reg->nexpected == 0) {
        return "system";
    }
    for (size_t i = 1; i < reg->nexpected; i++) {
        if (strcmp(reg->expected[i], reg->expected[0]) != 0) {
            return "system";
        }
    }
    return reg->expected[0];
}

static int text_differs(const char *a, const char *b)
{
    return (a == NULL || b == NULL) ? a != b : strcmp(a, b) != 0;
}

/*
 * The store's feed of the camera table, after a commit of the registry's handle: one committed
 * change as the registry's notification, the record read back (the store allows reads here).
 * What only the use case knows (who, the stream before) is at reg->pending while its changes
 * are told.
 */
static void camera_committed(void *ud, const ch_store_change_t *c)
{
    ch_registry_t *reg = ud;
    const ch_registry_told_t *told = reg->pending;
    const char *actor = change_actor(reg);
    ch_registry_settle_t *settle = settle_new(reg);
    if (c->id == 0) {
        ch_registry_change_t many = {.what = CH_REGISTRY_CAMERA_CREATED |
                                             CH_REGISTRY_CAMERA_UPDATED | CH_REGISTRY_CAMERAS_MANY,
                                     .actor = actor,
                                     .settle = settle};
        ch_registry_cameras_changed(reg, &many);
        ch_registry_settle_release(settle);
        return;
    }
    ch_camera_t cam;
    ch_camera_init(&cam);
    unsigned what = CH_REGISTRY_CAMERA_DELETED;
    const ch_camera_t *rec = NULL;
    if (c->op != CH_STORE_DELETE && told != NULL && told->camera != NULL &&
        told->camera->id == c->id) {
        rec = told->camera; /* the use case read it back on its own handle: no read here */
    } else if (c->op != CH_STORE_DELETE && ch_store_camera_get(reg->st, c->id, &cam) == 0) {
        rec = &cam; /* another handle's change (a command beside the hub) */
    }
    if (rec != NULL) {
        what = c->op == CH_STORE_INSERT ? CH_REGISTRY_CAMERA_CREATED : CH_REGISTRY_CAMERA_UPDATED;
    }
    if (what == CH_REGISTRY_CAMERA_UPDATED) {
        /* Only active cameras are granted: one no longer active loses its live grants. */
        if (rec->status == NULL || strcmp(rec->status, "active") != 0) {
            what |= CH_REGISTRY_CAMERA_INACTIVE;
        }
        if (told == NULL || !told->stream_known || text_differs(told->url, rec->rtsp_url) ||
            text_differs(told->username, rec->rtsp_username) ||
            text_differs(told->password, rec->rtsp_password) ||
            text_differs(told->tls_pin, rec->tls_pin)) {
            what |= CH_REGISTRY_CAMERA_SOURCE;
        }
    }
    ch_registry_change_t change = {
        .what = what, .ids = &c->id, .count = 1, .camera = rec, .actor = actor, .settle = settle};
    ch_registry_cameras_changed(reg, &change);
    ch_registry_settle_release(settle);
    ch_camera_fini(&cam);
}

int ch_registry_watch(ch_registry_t *reg)
{
    return ch_store_watch(reg->st, CH_STORE_T_CAMERAS, camera_committed, reg, &reg->watch);
}

void ch_registry_fini(ch_registry_t *reg)
{
    ch_store_unwatch(reg->st, reg->watch);
    reg->watch = NULL;
    ch_free(reg->waiters); /* at shutdown: nobody waits any more */
    reg->waiters = NULL;
    reg->nwaiters = 0;
}

/* ---- refusals ------------------------------------------------------------------------------- */

/* ch_registry_store_fault with the message of the handle st (the worker's, or the loop's). */
static int store_fault(ch_store_t *st, ch_registry_kind_t kind, int rc, int deleting, ch_fault_t *f)
{
    const kind_ops_t *k = &kinds[kind];
    switch (rc) {
    case CH_ENOTFOUND:
        return ch_fault_set(f, rc, CH_FAULT_NOT_FOUND, NULL, NULL, "no such %s", k->singular);
    case CH_EEXIST:
        if (kind == CH_REGISTRY_AGENCY) {
            return ch_fault_set(f, rc, CH_FAULT_CONFLICT, "exists", "name",
                                "an agency with this name exists");
        }
        return ch_fault_set(f, rc, CH_FAULT_CONFLICT, "exists", "source_key",
                            "a %s with this source key exists", k->singular);
    case CH_ECONFLICT:
        /* On delete the agency is still referenced; on create or update the record names an
         * agency that does not exist, which is the request's field at fault. */
        if (deleting) {
            return ch_fault_set(f, rc, CH_FAULT_CONFLICT, NULL, NULL,
                                "the agency still has cameras or devices; move or delete them "
                                "first");
        }
        return ch_fault_set(f, rc, CH_FAULT_INVALID, NULL, "agency_id",
                            "agency_id refers to no agency");
    default: {
        ch_buf_t b;
        ch_buf_init(&b);
        ch_log_quote(&b, ch_store_errmsg(st));
        ch_log(CH_LOG_ERROR, "registry", "msg=\"store failed\" rc=%d detail=%s", rc, b.data);
        ch_buf_fini(&b);
        ch_fault_set(f, rc, CH_FAULT_INTERNAL, NULL, NULL, "the database failed");
        f->rc = rc;
        return rc;
    }
    }
}

int ch_registry_store_fault(const ch_registry_t *reg, ch_registry_kind_t kind, int rc, int deleting,
                            ch_fault_t *f)
{
    return store_fault(reg->st, kind, rc, deleting, f);
}

/* ch_registry_get on the handle st. */
static int get_on(ch_store_t *st, ch_registry_kind_t kind, int64_t id, ch_registry_record_t *out,
                  ch_fault_t *f)
{
    ch_registry_record_init(kind, out);
    int rc = kinds[kind].get(st, id, out);
    return rc != 0 ? store_fault(st, kind, rc, 0, f) : 0;
}

int ch_registry_get(const ch_registry_t *reg, ch_registry_kind_t kind, int64_t id,
                    ch_registry_record_t *out, ch_fault_t *f)
{
    return get_on(reg->st, kind, id, out, f);
}

/* The agency that owns a camera or device record (0 for agencies). */
static int64_t record_owner(ch_registry_kind_t kind, const ch_registry_record_t *r)
{
    return kind == CH_REGISTRY_CAMERA   ? r->camera.agency_id
           : kind == CH_REGISTRY_DEVICE ? r->device.agency_id
                                        : 0;
}

static int put_on_record(const ch_registry_recorder_t *audit, const char *action,
                         const char *object, const char *outcome, json_t *details)
{
    if (audit == NULL || audit->record == NULL) {
        json_decref(details);
        return 0;
    }
    return audit->record(audit->data, action, object, outcome, details);
}

/* A provider (a district center, a city agency) changes its own cameras and devices only: 0
 * when allowed, else the refusal, which is recorded (whatever the record says, it is refused). */
static int owner_rule(const ch_registry_actor_t *who, ch_registry_kind_t kind,
                      const ch_registry_record_t *r, const ch_registry_recorder_t *audit,
                      ch_fault_t *f)
{
    int64_t owner = record_owner(kind, r);
    if (who->scope != CH_IMPORT_OWN_AGENCY || owner == who->agency_id) {
        return 0;
    }
    json_t *d = json_pack("{s:s, s:I, s:I}", "reason", "not the provider's own record", "agency_id",
                          (json_int_t)owner, "provider", (json_int_t)who->agency_id);
    (void)put_on_record(audit, "auth.forbidden", NULL, "denied", d);
    ch_fault_set(f, CH_EPERM, CH_FAULT_FORBIDDEN, NULL, "agency_id",
                 "a provider changes its own agency's %s only", kinds[kind].collection);
    f->rule = "own_agency";
    return CH_EPERM;
}

/* ---- one change and its record, in one transaction ------------------------------------------ */

/* A store change; returns a store code and, on success, fills *id and may set *details
 * (stolen) to what the audit record should say. */
typedef int (*change_fn)(ch_store_t *st, ch_registry_kind_t kind, const char *verb, void *arg,
                         int64_t *id, json_t **details);

/*
 * Runs a store change and its audit record as one unit: the store transaction commits only
 * once the record is written. 0, or a negative code with f filled (CH_FAULT_AUDIT when the
 * record could not be written: nothing changed).
 */
static int run_recorded(ch_store_t *st, ch_registry_kind_t kind, const char *verb, change_fn op,
                        void *arg, const ch_registry_recorder_t *audit, ch_fault_t *f)
{
    int rc = ch_store_begin(st);
    if (rc != 0) {
        return store_fault(st, kind, rc, 0, f);
    }
    int64_t id = 0;
    json_t *details = NULL;
    rc = op(st, kind, verb, arg, &id, &details);
    if (rc != 0) {
        json_decref(details);
        (void)ch_store_rollback(st);
        return store_fault(st, kind, rc, strcmp(verb, "delete") == 0, f);
    }
    char action[64], object[64];
    snprintf(action, sizeof(action), "%s.%s", kinds[kind].singular, verb);
    snprintf(object, sizeof(object), "%s:%lld", kinds[kind].singular, (long long)id);
    rc = put_on_record(audit, action, object, "ok", details);
    if (rc != 0) {
        (void)ch_store_rollback(st);
        ch_fault_set(f, CH_EIO, CH_FAULT_AUDIT, NULL, NULL,
                     "the change was not made: it could not be put on the audit record");
        f->rule = "audit";
        f->rc = rc < 0 ? rc : CH_EIO;
        return CH_EIO;
    }
    /* The feed tells the cameras' subscribers (ch_registry_watch): at once on the loop's handle,
     * on the loop before the answer on the worker's (ch_store_worker_feed). */
    rc = ch_store_commit(st);
    if (rc != 0) {
        /* Recorded but not made: say so on the record too, so the two agree. */
        char failed[80];
        snprintf(failed, sizeof(failed), "%s.failed", action);
        (void)put_on_record(audit, failed, object, "ok",
                            json_pack("{s:s}", "reason", "commit failed"));
        (void)ch_store_rollback(st);
        return store_fault(st, kind, rc, 0, f);
    }
    return 0;
}

/* Creates or updates (verb) the record arg. */
static int op_write(ch_store_t *st, ch_registry_kind_t kind, const char *verb, void *arg,
                    int64_t *id, json_t **details)
{
    ch_registry_record_t *r = arg;
    int rc = strcmp(verb, "create") == 0 ? kinds[kind].create(st, r) : kinds[kind].update(st, r);
    if (rc == 0) {
        *id = *record_id(kind, r);
        *details = ch_registry_record_to_json(kind, r); /* never holds credentials */
    }
    return rc;
}

static int op_delete(ch_store_t *st, ch_registry_kind_t kind, const char *verb, void *arg,
                     int64_t *id, json_t **details)
{
    (void)verb;
    *id = *(int64_t *)arg;
    /* The record says what was deleted, not only its id. */
    ch_registry_record_t r;
    ch_registry_record_init(kind, &r);
    int rc = kinds[kind].get(st, *id, &r);
    if (rc == 0) {
        rc = kinds[kind].del(st, *id);
    }
    if (rc == 0) {
        *details = ch_registry_record_to_json(kind, &r);
    }
    ch_registry_record_fini(kind, &r);
    return rc;
}

/* ---- the use cases -------------------------------------------------------------------------- */

/* Each use case runs whole on one store handle st: the loop's (ch_registry_run) or the store
 * worker's (ch_registry_req_work), so that there is one code path for both. */

static int create_on(ch_store_t *st, ch_registry_req_t *q)
{
    int rc = owner_rule(&q->who, q->kind, &q->rec, &q->audit, &q->fault);
    if (rc == 0) {
        rc = run_recorded(st, q->kind, "create", op_write, &q->rec, &q->audit, &q->fault);
    }
    if (rc == 0 && q->kind == CH_REGISTRY_CAMERA) {
        /* What is stored now (the store's defaults included): the followers get it as told. */
        int64_t id = q->rec.camera.id;
        ch_registry_record_fini(q->kind, &q->rec);
        rc = get_on(st, q->kind, id, &q->rec, &q->fault);
    }
    return rc;
}

static int update_on(ch_store_t *st, ch_registry_req_t *q)
{
    const ch_registry_update_t *req = &q->update;
    ch_registry_kind_t kind = req->kind;
    ch_registry_record_t *out = &q->rec;
    ch_fault_t *f = &q->fault;
    ch_registry_record_fini(kind, out);
    int rc = get_on(st, kind, req->id, out, f);
    if (rc == 0) {
        rc = owner_rule(&q->who, kind, out, &q->audit, f); /* whose it is now */
    }
    if (rc != 0) {
        return rc;
    }
    if (kind == CH_REGISTRY_CAMERA) {
        q->told.stream_known = 1;
        q->told.url = ch_strdup(out->camera.rtsp_url);
        q->told.username = ch_strdup(out->camera.rtsp_username);
        q->told.password = ch_strdup(out->camera.rtsp_password);
        q->told.tls_pin = ch_strdup(out->camera.tls_pin);
    }
    rc = req->edit(req->edit_ud, out, f);
    if (rc == 0) {
        rc = owner_rule(&q->who, kind, out, &q->audit, f); /* and whose it would be */
    }
    if (rc != 0) {
        return rc;
    }
    if (kind == CH_REGISTRY_CAMERA &&
        ch_registry_camera_credentials_follow(q->told.url, &out->camera, req->rtsp_username_given,
                                              req->rtsp_password_given) != 0) {
        ch_log(CH_LOG_INFO, "registry",
               "msg=\"stream credentials dropped: the camera's URL now points elsewhere\" "
               "camera=%lld",
               (long long)req->id);
    }
    *record_id(kind, out) = req->id;
    rc = run_recorded(st, kind, "update", op_write, out, &q->audit, f);
    if (rc != 0) {
        return rc;
    }
    /* What is stored now (updated_at included), not what was asked. */
    ch_registry_record_fini(kind, out);
    return get_on(st, kind, req->id, out, f);
}

static int delete_on(ch_store_t *st, ch_registry_req_t *q)
{
    int rc = 0;
    if (q->who.scope == CH_IMPORT_OWN_AGENCY) {
        /* A record that cannot be read is left to the delete, which answers for it. */
        ch_registry_record_t r;
        ch_registry_record_init(q->kind, &r);
        if (kinds[q->kind].get(st, q->id, &r) == 0) {
            rc = owner_rule(&q->who, q->kind, &r, &q->audit, &q->fault);
        }
        ch_registry_record_fini(q->kind, &r);
    }
    if (rc == 0) {
        rc = run_recorded(st, q->kind, "delete", op_delete, &q->id, &q->audit, &q->fault);
    }
    return rc;
}

void ch_registry_req_init(ch_registry_req_t *q, ch_registry_t *reg, ch_registry_verb_t verb,
                          ch_registry_kind_t kind, const ch_registry_actor_t *who,
                          const ch_registry_recorder_t *audit)
{
    memset(q, 0, sizeof(*q));
    q->reg = reg;
    q->verb = verb;
    q->kind = kind;
    q->who = *who;
    if (audit != NULL) {
        q->audit = *audit;
    }
    q->told.actor = who->name;
    ch_registry_record_init(kind, &q->rec);
}

void ch_registry_req_fini(ch_registry_req_t *q)
{
    ch_registry_record_fini(q->kind, &q->rec);
    ch_free(q->told.url);
    ch_free(q->told.username);
    ch_free(q->told.password);
    ch_free(q->told.tls_pin);
    memset(&q->told, 0, sizeof(q->told));
}

int ch_registry_req_work(ch_store_t *st, void *ud)
{
    ch_registry_req_t *q = ud;
    memset(&q->fault, 0, sizeof(q->fault));
    switch (q->verb) {
    case CH_REGISTRY_CREATE:
        return create_on(st, q);
    case CH_REGISTRY_UPDATE:
        return update_on(st, q);
    case CH_REGISTRY_DELETE:
        return delete_on(st, q);
    case CH_REGISTRY_GET:
        ch_registry_record_fini(q->kind, &q->rec);
        return get_on(st, q->kind, q->id, &q->rec, &q->fault);
    }
    return CH_EINVAL;
}

void ch_registry_req_telling(void *ud, int rc)
{
    ch_registry_req_t *q = ud;
    q->told.camera = rc == 0 && q->kind == CH_REGISTRY_CAMERA && q->verb != CH_REGISTRY_DELETE
                         ? &q->rec.camera
                         : NULL;
    q->reg->pending = &q->told;
}

void ch_registry_req_told(ch_registry_req_t *q)
{
    if (q->reg->pending == &q->told) {
        q->reg->pending = NULL;
    }
}

int ch_registry_run(ch_registry_req_t *q)
{
    ch_registry_req_telling(q, 0); /* the loop's handle tells at its commit */
    q->told.camera = NULL;         /* told inside the work, before it read the record back */
    int rc = ch_registry_req_work(q->reg->st, q);
    ch_registry_req_told(q);
    return rc;
}

/* The synchronous forms: one request run on the registry's own handle. */

int ch_registry_create(ch_registry_t *reg, const ch_registry_actor_t *who, ch_registry_kind_t kind,
                       ch_registry_record_t *rec, const ch_registry_recorder_t *audit,
                       ch_fault_t *f)
{
    ch_registry_req_t q;
    ch_registry_req_init(&q, reg, CH_REGISTRY_CREATE, kind, who, audit);
    ch_registry_record_fini(kind, &q.rec);
    q.rec = *rec; /* moved in, and back out as stored */
    int rc = ch_registry_run(&q);
    *rec = q.rec;
    ch_registry_record_init(kind, &q.rec);
    *f = q.fault;
    ch_registry_req_fini(&q);
    return rc;
}

int ch_registry_update(ch_registry_t *reg, const ch_registry_actor_t *who,
                       const ch_registry_update_t *req, ch_registry_record_t *out,
                       const ch_registry_recorder_t *audit, ch_fault_t *f)
{
    ch_registry_req_t q;
    ch_registry_req_init(&q, reg, CH_REGISTRY_UPDATE, req->kind, who, audit);
    q.update = *req;
    q.id = req->id;
    int rc = ch_registry_run(&q);
    *out = q.rec; /* moved out */
    ch_registry_record_init(req->kind, &q.rec);
    *f = q.fault;
    ch_registry_req_fini(&q);
    return rc;
}

int ch_registry_delete(ch_registry_t *reg, const ch_registry_actor_t *who, ch_registry_kind_t kind,
                       int64_t id, const ch_registry_recorder_t *audit, ch_fault_t *f)
{
    ch_registry_req_t q;
    ch_registry_req_init(&q, reg, CH_REGISTRY_DELETE, kind, who, audit);
    q.id = id;
    int rc = ch_registry_run(&q);
    *f = q.fault;
    ch_registry_req_fini(&q);
    return rc;
}
