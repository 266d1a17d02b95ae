/*
 * event/event_open.c: opening (who may, the place, the policy, the open batch).
 */
#include "event/event_internal.h"

#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "event"

/* ---- opening -------------------------------------------------------------------------------- */

static int in_city(const ch_event_config_t *cfg, double lat, double lon)
{
    return lat >= cfg->min_lat && lat <= cfg->max_lat && lon >= cfg->min_lon && lon <= cfg->max_lon;
}

/* A place must be in the area this hub serves. */
int ch_event__check_place(const ch_event_config_t *cfg, double lat, double lon, const char *field,
                          ch_fault_t *err)
{
    if (!isfinite(lat) || !isfinite(lon) || !in_city(cfg, lat, lon)) {
        return ch_event__fail(err, CH_FAULT_INVALID, "outside", field,
                              "the place is outside the area this hub serves");
    }
    return 0;
}

int ch_event_may(const ch_event_actor_t *who, ch_event_op_t op, ch_fault_t *err)
{
    int operator= who->role == CH_EVENT_ROLE_OPERATOR || who->role == CH_EVENT_ROLE_ADMIN;
    int agency = who->role == CH_EVENT_ROLE_AGENCY;
    switch (op) {
    case CH_EVENT_OP_OPEN:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only agencies and operators open events");
    case CH_EVENT_OP_DECIDE:
        return operator? 0
                       : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                        "only operators approve or deny events");
    case CH_EVENT_OP_EXTEND:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only the agency or an operator extends");
    case CH_EVENT_OP_CLOSE:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only the agency or an operator closes an event");
    case CH_EVENT_OP_REVOKE:
        return operator? 0
                       : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                        "only operators revoke events (providers revoke grants)");
    case CH_EVENT_OP_MOVE:
        return operator|| agency ? 0
                                 : ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                                                  "only the agency or an operator moves an event");
    }
    return ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL, "not allowed");
}

/* Denials are audited (no store change) and refused (CH_FAULT_DENIED) with the rule. */
int ch_event__deny(const ch_event__ctx_t *cx, const ch_event_actor_t *who, const char *action,
                   const char *object, const ch_policy_decision_t *d, const char *service,
                   int64_t agency_id, ch_fault_t *err)
{
    json_t *details = json_pack("{s:s, s:s, s:s, s:I}", "rule", d->rule, "reason", d->reason,
                                "service", service, "agency_id", (json_int_t)agency_id);
    ch_audit_entry_t a = {.actor = who->actor,
                          .action = action,
                          .object = object,
                          .purpose = service,
                          .outcome = "denied",
                          .details = details};
    if (cx->cfg->audit != NULL && ch_audit_append(cx->cfg->audit, &a, NULL) != 0) {
        json_decref(details);
        return ch_event__fail(err, CH_FAULT_AUDIT, NULL, NULL,
                              "the request was denied, and the denial could not be recorded");
    }
    json_decref(details);
    int rc = ch_event__fail(err, CH_FAULT_DENIED, NULL, NULL, "%s", d->reason);
    err->rule = d->rule;
    return rc;
}

ch_policy_role_t ch_event__policy_role(const ch_event_actor_t *who)
{
    return who->role == CH_EVENT_ROLE_AGENCY ? CH_POLICY_ROLE_AGENCY : CH_POLICY_ROLE_OPERATOR;
}

/* Audits a request refused before the policy (bad place, unknown service...): the issue asks
 * that each is on the record. */
static int refuse(ch_event_engine_t *eng, const ch_event_actor_t *who, const char *action,
                  const char *object, ch_fault_t *err)
{
    json_t *d = json_pack("{s:s, s:s, s:s}", "code", ch_fault_code(err), "field", err->field,
                          "reason", err->message);
    ch_audit_entry_t a = {
        .actor = who->actor, .action = action, .object = object, .outcome = "denied", .details = d};
    if (eng->cfg.audit != NULL && ch_audit_append(eng->cfg.audit, &a, NULL) != 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"refusal not recorded\" action=%s", action);
    }
    json_decref(d);
    return ch_event__fault_rc(err->kind);
}

/* Makes the grants of a new or approved event: store rows, live set. */
int ch_event__make_grants(ch_store_t *st, ch_event_t *ev, const choice_t *c, size_t n,
                          const char *status, int path, json_t *cams)
{
    for (size_t i = 0; i < n; i++) {
        char *why = ch_event__why_text(&c[i].r, path);
        ch_grant_t g = {.event_id = ev->id,
                        .camera_id = c[i].r.camera_id,
                        .agency_id = ev->agency_id,
                        .provider_id = c[i].provider_id,
                        .status = (char *)status,
                        .why = why,
                        .expires_at = strcmp(status, "active") == 0 ? ev->expires_at : 0};
        int rc = ch_store_grant_create(st, &g);
        ch_free(why);
        if (rc != 0) {
            return rc;
        }
        json_array_append_new(cams, json_integer(g.camera_id));
    }
    return 0;
}

/* After COMMIT: the grants of ev with status "active" join the live set. */
void ch_event__went_live(ch_event_engine_t *eng, const ch_event_t *ev, const ch_grant_list_t *g)
{
    ch_event__live_set_event(eng, ev->id, ev->expires_at);
    for (size_t i = 0; i < g->count; i++) {
        if (strcmp(g->items[i].status, "active") == 0 &&
            ch_event__live_grant(eng, g->items[i].id) == NULL) {
            ch_event__live_add_grant(eng, &g->items[i]);
        }
    }
}

int ch_event_open_refused(ch_event_engine_t *eng, const ch_event_actor_t *who, ch_fault_t *err)
{
    int rc = ch_event_may(who, CH_EVENT_OP_OPEN, err);
    return rc != 0 ? rc : refuse(eng, who, "event.open", NULL, err);
}

/*
 * Who asks, what, where and for whom, then the policy: 0 with *agency_out (the agency the event
 * is for) and *d (pointing into the policy); a refusal (recorded) or denial (recorded and
 * counted) otherwise.
 */
static int open_decide(ch_event_engine_t *eng, const ch_event_actor_t *who,
                       const ch_event_open_req_t *req, int64_t *agency_out, ch_policy_decision_t *d,
                       ch_fault_t *err)
{
    const char *incident = req->incident, *reason = req->reason, *case_name = req->case_name;
    const char *service = req->service;
    int located = req->located;
    double lat = req->lat, lon = req->lon;
    int64_t agency_id = who->agency_id;

    if (ch_event_may(who, CH_EVENT_OP_OPEN, err) != 0) {
        return ch_event__fault_rc(err->kind);
    }
    if (service == NULL) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "service",
                       "service must be a service id (GET /api/v1/services)");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (req->duration_s < 0) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "duration_s",
                       "duration_s must be a positive integer");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (req->has_agency_id) {
        if (who->role == CH_EVENT_ROLE_AGENCY) {
            if (req->agency_id != who->agency_id) {
                ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id",
                               "an agency opens events for itself only");
                return refuse(eng, who, "event.open", NULL, err);
            }
        } else if (req->agency_id < 1) {
            ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id",
                           "agency_id must be an agency's id");
            return refuse(eng, who, "event.open", NULL, err);
        } else {
            agency_id = req->agency_id;
        }
    }
    if (agency_id <= 0) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id",
                       "say which agency the event is for (agency_id)");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (!located && (req->path == NULL || req->path_geojson == NULL)) {
        ch_event__fail(err, CH_FAULT_INVALID, NULL, "location",
                       "give either location {lat, lon} or path (a GeoJSON LineString)");
        return refuse(eng, who, "event.open", NULL, err);
    }
    if (located && ch_event__check_place(&eng->cfg, lat, lon, "location", err) != 0) {
        return refuse(eng, who, "event.open", NULL, err);
    }
    for (size_t i = 0; !located && i < req->path->count; i++) {
        if (!in_city(&eng->cfg, req->path->pts[i].lat, req->path->pts[i].lon)) {
            ch_event__fail(err, CH_FAULT_INVALID, "outside", "path",
                           "the path leaves the area this hub serves");
            return refuse(eng, who, "event.open", NULL, err);
        }
    }
    ch_agency_t ag;
    int rc = ch_store_agency_get(eng->cfg.st, agency_id, &ag);
    if (rc != 0) {
        ch_agency_fini(&ag);
        if (rc == CH_ENOTFOUND) {
            ch_event__fail(err, CH_FAULT_INVALID, NULL, "agency_id", "no agency has this id");
            return refuse(eng, who, "event.open", NULL, err);
        }
        return ch_event__fail_store(eng->cfg.st, err);
    }
    ch_policy_request_t pr = {.service = service,
                              .agency_type = ag.type,
                              .agency_id = agency_id,
                              .role = ch_event__policy_role(who),
                              .action = CH_POLICY_OPEN,
                              .duration_s = req->duration_s,
                              .has_incident = incident != NULL,
                              .has_reason = reason != NULL,
                              .case_name = case_name,
                              .want_ptz = req->ptz,
                              .want_export = req->export_allowed};
    memset(d, 0, sizeof(*d));
    if (eng->policy == NULL) {
        ch_agency_fini(&ag);
        return ch_event__fail(err, CH_FAULT_UNAVAILABLE, NULL, NULL, "no services file is loaded");
    }
    if (ch_policy_decide(eng->policy, &pr, d) != 0 || d->outcome == CH_POLICY_DENIED) {
        ch_agency_fini(&ag);
        if (d->rule != NULL && strcmp(d->rule, "unknown_service") == 0) {
            ch_event__fail(err, CH_FAULT_INVALID, NULL, "service", "%s", d->reason);
            return refuse(eng, who, "event.open", NULL, err);
        }
        ch_event__count_open(eng, service, OUT_DENIED);
        ch_event__ctx_t cx;
        ch_event__ctx_of(eng, &cx);
        return ch_event__deny(&cx, who, "event.deny", NULL, d, service, agency_id, err);
    }
    ch_agency_fini(&ag);
    *agency_out = agency_id;
    return 0;
}

int ch_event_open_prepare(ch_event_engine_t *eng, const ch_event_actor_t *who,
                          const ch_event_open_req_t *req, ch_event_path_query_t **q,
                          ch_fault_t *err)
{
    int64_t agency_id = 0;
    ch_policy_decision_t d;
    *q = NULL;
    int rc = open_decide(eng, who, req, &agency_id, &d, err);
    if (rc == 0 && !req->located && eng->geo != NULL) {
        *q = ch_event__path_query_new(eng, req->path, d.radius_m);
    }
    return rc;
}

int ch_event_open_begin(ch_event_engine_t *eng, const ch_event_actor_t *who,
                        const ch_event_open_req_t *req, void *ud, ch_event_pending_t **pout,
                        ch_fault_t *err)
{
    *pout = NULL;
    const char *incident = req->incident, *reason = req->reason, *case_name = req->case_name;
    const char *service = req->service;
    int located = req->located;
    double lat = req->lat, lon = req->lon;
    int64_t agency_id = 0;
    ch_policy_decision_t d;
    int rc = open_decide(eng, who, req, &agency_id, &d, err);
    if (rc != 0) {
        return rc;
    }
    int pending = d.outcome == CH_POLICY_NEEDS_APPROVAL;
    choice_t *choices = NULL;
    size_t nchoices = 0;
    if (ch_event__select_cameras(eng->cfg.st, eng->geo, d.service, located, lat, lon, req->path,
                                 req->path_cameras, d.radius_m, d.max_cameras, &choices,
                                 &nchoices) != 0) {
        return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "camera selection failed");
    }
    int64_t now = ch_event__now_ms(eng);
    ch_event_t ev = {.service = (char *)service,
                     .agency_id = agency_id,
                     .status = pending ? "pending" : "active",
                     .located = located,
                     .lat = lat,
                     .lon = lon,
                     .path = located ? NULL : (char *)req->path_geojson,
                     .incident = (char *)incident,
                     .reason = (char *)reason,
                     .case_name = (char *)case_name,
                     .duration_s = d.duration_s,
                     .expires_at = pending ? 0 : now + d.duration_s * 1000,
                     .ptz = d.ptz,
                     .export_allowed = d.export_allowed,
                     .basis_code = (char *)d.basis_code,
                     .created_by = (char *)who->actor};
    json_t *cams = json_array();
    /* In a batch (ch_event_batch_begin) the event is a savepoint of the batch's transaction:
     * it can fail alone, and many share one COMMIT. */
    int batched = eng->batch;
    rc = batched ? ch_store_savepoint(eng->cfg.st) : ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_store_event_create(eng->cfg.st, &ev);
    }
    if (rc == 0) {
        rc = ch_event__make_grants(eng->cfg.st, &ev, choices, nchoices,
                                   pending ? "pending" : "active", !located, cams);
    }
    ch_free(choices);
    if (rc != 0) {
        json_decref(cams);
        if (batched) {
            (void)ch_store_rollback_savepoint(eng->cfg.st);
            ch_log(CH_LOG_ERROR, MODULE, "msg=\"store failed\" error=\"%s\"",
                   ch_store_errmsg(eng->cfg.st));
            return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "the store failed");
        }
        return ch_event__fail_store(eng->cfg.st, err);
    }
    json_t *details =
        json_pack("{s:s, s:I, s:s, s:o, s:I, s:s?, s:o, s:s, s:b, s:b}", "service", service,
                  "agency_id", (json_int_t)agency_id, "status", ev.status, "cameras", cams,
                  "duration_s", (json_int_t)ev.duration_s, "incident", incident, "location",
                  located ? json_pack("{s:f, s:f}", "lat", lat, "lon", lon) : json_null(),
                  "decision", d.rule, "ptz", ev.ptz, "export", ev.export_allowed);
    /* The store holds the event; the record goes next (ch_event_open_finish answers only once
     * it is durable, and undoes the event when it cannot be made so). */
    if ((batched ? ch_store_release(eng->cfg.st) : ch_store_commit(eng->cfg.st)) != 0) {
        json_decref(details);
        if (batched) {
            (void)ch_store_rollback_savepoint(eng->cfg.st);
            return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "the store failed");
        }
        return ch_event__fail_store(eng->cfg.st, err);
    }
    ch_event_pending_t *p = ch_calloc(1, sizeof(*p));
    p->event_id = ev.id;
    p->pending = pending;
    snprintf(p->actor, sizeof(p->actor), "%s", who->actor);
    snprintf(p->action, sizeof(p->action), "%s", pending ? "event.request" : "event.open");
    ch_event__object_name(p->object, "event", ev.id);
    snprintf(p->purpose, sizeof(p->purpose), "%s", service);
    snprintf(p->basis, sizeof(p->basis), "%s", d.basis_code != NULL ? d.basis_code : "");
    p->details = details;
    p->entry = (ch_audit_entry_t){.actor = p->actor,
                                  .action = p->action,
                                  .object = p->object,
                                  .purpose = p->purpose,
                                  .legal_basis = p->basis[0] ? p->basis : NULL,
                                  .outcome = "ok",
                                  .details = p->details};
    p->ud = ud;
    if (batched) {
        if (eng->nopens == eng->copens) {
            eng->copens = eng->copens ? eng->copens * 2 : 64;
            eng->opens = ch_realloc(eng->opens, eng->copens * sizeof(*eng->opens));
        }
        eng->opens[eng->nopens++] = p;
    }
    *pout = p;
    return 0;
}

int ch_event_batch_begin(ch_event_engine_t *eng)
{
    if (eng->batch) {
        return 0;
    }
    int rc = ch_store_begin(eng->cfg.st);
    eng->batch = rc == 0;
    return rc;
}

int ch_event_batch_end(ch_event_engine_t *eng, ch_event_batch_fn fn)
{
    if (!eng->batch) {
        return 0;
    }
    eng->batch = 0;
    int rc = ch_store_commit(eng->cfg.st);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE, "msg=\"batch commit failed\" error=\"%s\"",
               ch_store_errmsg(eng->cfg.st));
        (void)ch_store_rollback(eng->cfg.st);
    } else {
        /* The store holds the events, the log not yet: ch_event_restore aborts them. */
        ch_event__crash_point(eng->crash_at, "event.open", "after_commit");
    }
    size_t n = eng->nopens;
    eng->nopens = 0;
    for (size_t i = 0; i < n; i++) {
        fn(eng->opens[i], rc);
    }
    return rc;
}

int ch_event_in_batch(const ch_event_engine_t *eng)
{
    return eng->batch;
}

void ch_event_pending_free(ch_event_pending_t *p)
{
    if (p != NULL) {
        json_decref(p->details);
        ch_free(p);
    }
}

/* The record of an opened event could not be made durable: the event must not stand. Its
 * grants end at once (no token was answered yet), in the store, whatever the log says now. */
static void undo_open(ch_event_engine_t *eng, const ch_event_pending_t *p)
{
    ch_event_t ev;
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    int64_t now = ch_event__now_ms(eng);
    const char *why = "the decision could not be put on the audit record";
    int rc = ch_store_begin(eng->cfg.st);
    if (rc == 0) {
        rc = ch_store_event_get(eng->cfg.st, p->event_id, &ev);
    }
    if (rc == 0) {
        rc = ch_event__grants_of(eng->cfg.st, p->event_id, NULL, &g);
        for (size_t i = 0; rc == 0 && i < g.count; i++) {
            rc = ch_event__end_grant(eng->cfg.st, &g.items[i], "closed", "system", why, now);
        }
        ch_free(ev.status);
        ev.status = ch_strdup("closed");
        ev.closed_by = ch_strdup("system");
        ev.close_reason = ch_strdup(why);
        ev.closed_at = now;
        if (rc == 0) {
            rc = ch_store_event_update(eng->cfg.st, &ev);
        }
        ch_event_fini(&ev);
    }
    if (rc != 0 || ch_store_commit(eng->cfg.st) != 0) {
        (void)ch_store_rollback(eng->cfg.st);
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"an event without its record could not be undone; the next start closes "
               "it\" event=%lld",
               (long long)p->event_id);
    }
    ch_grant_list_free(&g);
}

int ch_event_open_finish(ch_event_engine_t *eng, const ch_event_actor_t *who, ch_event_pending_t *p,
                         int audit_rc, ch_event_view_t *out, ch_fault_t *err)
{
    memset(out, 0, sizeof(*out));
    int64_t id = p->event_id;
    if (audit_rc != 0) {
        ch_log(CH_LOG_ERROR, MODULE,
               "msg=\"audit append failed; event undone\" event=%lld rc=%d error=\"%s\"",
               (long long)id, audit_rc, ch_strerror(audit_rc));
        undo_open(eng, p);
        ch_event__count_open(eng, p->purpose, OUT_FAILED);
        ch_event_pending_free(p);
        return ch_event__fail(
            err, CH_FAULT_AUDIT, NULL, NULL,
            "nothing was granted: the decision could not be put on the audit record");
    }
    int pending = p->pending;
    ch_event__count_open(eng, p->purpose, pending ? OUT_PENDING : OUT_OPENED);
    ch_event_pending_free(p);
    ch_event_t ev;
    ch_grant_list_t g;
    if (ch_store_event_get(eng->cfg.st, id, &ev) != 0 ||
        ch_event__grants_of(eng->cfg.st, id, NULL, &g) != 0) {
        ch_event_fini(&ev);
        return ch_event__fail_store(eng->cfg.st, err);
    }
    ch_event__went_live(eng, &ev, &g);
    if (pending) {
        ch_event__live_set_event(eng, id, 0);
    }
    ch_event__ctx_t cx;
    ch_event__ctx_of(eng, &cx);
    ch_event__event_view(&cx, &ev, &g, who, out);
    return 0;
}

int ch_event_open(ch_event_engine_t *eng, const ch_event_actor_t *who,
                  const ch_event_open_req_t *req, ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_pending_t *p = NULL;
    memset(out, 0, sizeof(*out));
    int rc = ch_event_open_begin(eng, who, req, NULL, &p, err);
    if (rc != 0) {
        return rc;
    }
    rc = eng->cfg.audit != NULL ? ch_audit_append(eng->cfg.audit, &p->entry, NULL) : 0;
    return ch_event_open_finish(eng, who, p, rc, out, err);
}
