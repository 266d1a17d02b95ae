/*
 * event/event_lifecycle.c: reading, approval, extension, close, revocation, moving subjects:
 * the store halves of the operations, on the handle and the snapshot of a ch_event__ctx_t, so
 * that any thread may run them (a request on the store worker, event_req.c). Each leaves what
 * the live map must learn in a ch_event__after_t, applied on the loop once committed.
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

/* ---- reading --------------------------------------------------------------------------------- */

/* Loads an event the actor may see: its agency's, or any for operators, admins, auditors; a
 * provider's when one of its cameras is in it. */
static int load_visible(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                        ch_event_t *ev, ch_fault_t *err)
{
    int rc = ch_store_event_get(cx->st, id, ev);
    if (rc == CH_ENOTFOUND) {
        return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such event");
    }
    if (rc != 0) {
        return ch_event__fail_store(cx->st, err);
    }
    if (who->role == CH_EVENT_ROLE_AGENCY && ev->agency_id != who->agency_id) {
        ch_event_fini(ev);
        return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such event");
    }
    if (who->role == CH_EVENT_ROLE_PROVIDER) {
        ch_grant_list_t g;
        int mine = 0;
        if (ch_event__grants_of(cx->st, id, NULL, &g) == 0) {
            for (size_t i = 0; i < g.count; i++) {
                mine |= g.items[i].provider_id == who->agency_id;
            }
            ch_grant_list_free(&g);
        }
        if (!mine) {
            ch_event_fini(ev);
            return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such event");
        }
    }
    return 0;
}

int ch_event__get(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                  ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_t ev;
    memset(out, 0, sizeof(*out));
    int rc = load_visible(cx, who, id, &ev, err);
    if (rc != 0) {
        return rc;
    }
    ch_event_fini(&ev);
    return ch_event__answer_event(cx, who, id, out, err);
}

int ch_event__list(const ch_event__ctx_t *cx, const ch_event_actor_t *who,
                   const ch_store_filter_t *f, ch_event_page_t *out, ch_fault_t *err)
{
    memset(out, 0, sizeof(*out));
    ch_store_filter_t mine = *f;
    if (who->role == CH_EVENT_ROLE_PROVIDER) {
        return ch_event__fail(
            err, CH_FAULT_FORBIDDEN, NULL, NULL,
            "providers see the events of their cameras one by one (GET /events/{id})");
    }
    if (who->role == CH_EVENT_ROLE_AGENCY) {
        if (f->agency_id != 0 && f->agency_id != who->agency_id) {
            return ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, "agency_id",
                                  "an agency sees its own events only");
        }
        mine.agency_id = who->agency_id;
    }
    int known = f->status == NULL;
    for (size_t i = 0; !known && ch_store_event_statuses[i] != NULL; i++) {
        known = strcmp(f->status, ch_store_event_statuses[i]) == 0;
    }
    if (!known) {
        return ch_event__fail(err, CH_FAULT_INVALID, NULL, "status",
                              "status must be one of pending, active, "
                              "denied, closed, expired");
    }
    ch_event_list_t l;
    if (ch_store_event_list(cx->st, &mine, &l) != 0) {
        return ch_event__fail_store(cx->st, err);
    }
    out->items = l.count > 0 ? ch_calloc(l.count, sizeof(*out->items)) : NULL;
    for (size_t i = 0; i < l.count; i++) {
        ch_grant_list_t g;
        if (ch_event__grants_of(cx->st, l.items[i].id, NULL, &g) == 0) {
            ch_event__event_view(cx, &l.items[i], &g, who, &out->items[out->count++]);
        }
    }
    out->total = l.total;
    out->next_after = l.next_id;
    ch_event_list_free(&l); /* the views took the events listed */
    return 0;
}

/* ---- ending grants --------------------------------------------------------------------------- */

int ch_event__end_grant(ch_store_t *st, ch_grant_t *g, const char *status, const char *by,
                        const char *why, int64_t when)
{
    ch_free(g->status);
    g->status = ch_strdup(status);
    g->ended_at = when;
    ch_free(g->ended_by);
    g->ended_by = ch_strdup(by);
    ch_free(g->end_reason);
    g->end_reason = why != NULL ? ch_strdup(why) : NULL;
    return ch_store_grant_update(st, g);
}

void ch_event__ended(ch_event_engine_t *eng, const ch_grant_t *g)
{
    ch_event__live_drop_grant(eng, g->id);
}

/* Ends an event and every live grant of it: status for the event ("closed", "expired",
 * "denied"), gstatus for the grants. Appends the record (action, details get "cameras") and
 * commits; *after takes the grants read (they leave the live map, and the event with them). */
int ch_event__end_event_in(const ch_event__ctx_t *cx, ch_event_t *ev, const char *status,
                           const char *gstatus, const char *by, const char *why, const char *action,
                           json_t *details, ch_event__after_t *after, ch_fault_t *err)
{
    int64_t now = cx->now;
    ch_grant_list_t g;
    memset(&g, 0, sizeof(g));
    int rc = ch_event__begin(cx);
    if (rc == 0) {
        rc = ch_event__grants_of(cx->st, ev->id, NULL, &g);
    }
    json_t *cams = json_array();
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        if (strcmp(g.items[i].status, "active") == 0 || strcmp(g.items[i].status, "pending") == 0) {
            json_array_append_new(cams, json_integer(g.items[i].camera_id));
            rc = ch_event__end_grant(cx->st, &g.items[i], gstatus, by, why, now);
        }
    }
    if (rc == 0) {
        ch_free(ev->status);
        ev->status = ch_strdup(status);
        ch_free(ev->closed_by);
        ev->closed_by = ch_strdup(by);
        ch_free(ev->close_reason);
        ev->close_reason = why != NULL ? ch_strdup(why) : NULL;
        ev->closed_at = now;
        rc = ch_store_event_update(cx->st, ev);
    }
    if (rc != 0) {
        json_decref(cams);
        json_decref(details);
        ch_grant_list_free(&g);
        return ch_event__fail_store(cx->st, err);
    }
    char object[48];
    ch_event__object_name(object, "event", ev->id);
    json_object_set_new(details, "cameras", cams);
    json_object_set_new(details, "agency_id", json_integer(ev->agency_id));
    if (why != NULL) {
        json_object_set_new(details, "reason", json_string(why));
    }
    if ((rc = ch_event__record_and_commit(cx, by, action, object, ev, details, err)) != 0) {
        ch_grant_list_free(&g);
        return rc;
    }
    after->committed = 1;
    after->event_id = ev->id;
    after->event_live = 0;
    ch_grant_list_free(&after->grants);
    after->grants = g;
    return 0;
}

int ch_event__end_event(ch_event_engine_t *eng, ch_event_t *ev, const char *status,
                        const char *gstatus, const char *by, const char *why, const char *action,
                        json_t *details, ch_fault_t *err)
{
    ch_event__ctx_t cx;
    ch_event__after_t after;
    memset(&after, 0, sizeof(after));
    ch_event__ctx_of(eng, &cx);
    int rc =
        ch_event__end_event_in(&cx, ev, status, gstatus, by, why, action, details, &after, err);
    ch_event__after_apply(eng, &after);
    ch_event__after_fini(&after);
    return rc;
}

int ch_event__is_live(const ch_event_t *ev)
{
    return strcmp(ev->status, "active") == 0 || strcmp(ev->status, "pending") == 0;
}

/* The event's agency (its type is the policy's question), into *ag (ch_agency_fini); on a
 * failure ev is released and the refusal returned. */
static int agency_of(const ch_event__ctx_t *cx, ch_event_t *ev, ch_agency_t *ag, ch_fault_t *err)
{
    if (ch_store_agency_get(cx->st, ev->agency_id, ag) != 0) {
        ch_agency_fini(ag);
        ch_event_fini(ev);
        return ch_event__fail_store(cx->st, err);
    }
    return 0;
}

/*
 * The policy again on a live event ev (approval, extension): the caller gives pr's role,
 * action, duration and what is asked; the service, the agency and its type, the incident, the
 * reason and the case come from ev. 0 and *d when allowed; else the refusal (a denial recorded
 * as action on object) with ev released.
 */
static int decide_again(const ch_event__ctx_t *cx, const ch_event_actor_t *who, const char *action,
                        const char *object, ch_event_t *ev, ch_policy_request_t *pr,
                        ch_policy_decision_t *d, ch_fault_t *err)
{
    ch_agency_t ag;
    int rc = agency_of(cx, ev, &ag, err);
    if (rc != 0) {
        return rc;
    }
    pr->service = ev->service;
    pr->agency_type = ag.type;
    pr->agency_id = ev->agency_id;
    pr->has_incident = ev->incident != NULL;
    pr->has_reason = ev->reason != NULL;
    pr->case_name = ev->case_name;
    pr->approved = 1;
    memset(d, 0, sizeof(*d));
    /* pr points into ev and ag: decided (and a denial recorded) before releasing them. */
    rc = cx->policy != NULL ? ch_policy_decide(cx->policy, pr, d) : CH_EINVAL;
    if (rc != 0) {
        rc = ch_event__fail(err, CH_FAULT_UNAVAILABLE, NULL, NULL, "no services file is loaded");
    } else if (d->outcome != CH_POLICY_ALLOWED) {
        rc = ch_event__deny(cx, who, action, object, d, pr->service, pr->agency_id, err);
    }
    ch_agency_fini(&ag);
    if (rc != 0) {
        ch_event_fini(ev);
    }
    return rc;
}

/*
 * The store half of approving or extending ev: in one transaction (begun here, committed with
 * the record), writes ev and moves its grants of status from that expire at due (0: all of
 * them) to ev's expiry and to status to (NULL: unchanged). *g gets the grants read, *cams the
 * cameras of those moved (for the record's details). 0, or the store's refusal: rolled back,
 * with *g, *cams and ev released.
 */
static int move_grants(const ch_event__ctx_t *cx, ch_event_t *ev, const char *from, int64_t due,
                       const char *to, ch_grant_list_t *g, json_t **cams, ch_fault_t *err)
{
    memset(g, 0, sizeof(*g));
    *cams = json_array();
    int rc = ch_event__begin(cx);
    if (rc == 0) {
        rc = ch_store_event_update(cx->st, ev);
    }
    if (rc == 0) {
        rc = ch_event__grants_of(cx->st, ev->id, from, g);
    }
    for (size_t i = 0; rc == 0 && i < g->count; i++) {
        ch_grant_t *gr = &g->items[i];
        if (due != 0 && gr->expires_at != due) {
            continue;
        }
        if (to != NULL) {
            ch_free(gr->status);
            gr->status = ch_strdup(to);
        }
        gr->expires_at = ev->expires_at;
        rc = ch_store_grant_update(cx->st, gr);
        json_array_append_new(*cams, json_integer(gr->camera_id));
    }
    if (rc != 0) {
        json_decref(*cams);
        *cams = NULL;
        ch_grant_list_free(g);
        ch_event_fini(ev);
        return ch_event__fail_store(cx->st, err);
    }
    return 0;
}

/* What the live map learns of a committed approval, extension or move: the event live until
 * expires_at, and the grants g (taken over) with their expiries. */
static void after_live(ch_event__after_t *after, const ch_event_t *ev, ch_grant_list_t *g, int join)
{
    after->committed = 1;
    after->event_id = ev->id;
    after->event_live = 1;
    after->expires_at = ev->expires_at;
    ch_grant_list_free(&after->grants);
    after->grants = *g;
    memset(g, 0, sizeof(*g));
    after->join = join;
}

/* ---- approval ------------------------------------------------------------------------------ */

int ch_event__decide(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                     int approve, const char *note, ch_event__after_t *after, ch_event_view_t *out,
                     ch_fault_t *err)
{
    ch_event_t ev;
    memset(out, 0, sizeof(*out));
    int rc = load_visible(cx, who, id, &ev, err);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(ev.status, "pending") != 0) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL, "the event is %s, not pending",
                            ev.status);
        ch_event_fini(&ev);
        return rc;
    }
    ch_free(ev.decided_by);
    ev.decided_by = ch_strdup(who->actor);
    ch_free(ev.decision_note);
    ev.decision_note = note != NULL ? ch_strdup(note) : NULL;
    char object[48];
    ch_event__object_name(object, "event", id);
    if (!approve) {
        json_t *d = json_pack("{s:s?}", "note", note);
        rc = ch_event__end_event_in(cx, &ev, "denied", "denied", who->actor, note, "event.deny", d,
                                    after, err);
        ch_event_fini(&ev);
        return rc != 0 ? rc : ch_event__answer_event(cx, who, id, out, err);
    }
    /* Approval: the policy again, as the operator approving; then the grants start now. */
    ch_policy_request_t pr = {.role = CH_POLICY_ROLE_OPERATOR,
                              .action = CH_POLICY_OPEN,
                              .duration_s = ev.duration_s,
                              .want_ptz = ev.ptz,
                              .want_export = ev.export_allowed,
                              .self_approval = strcmp(ev.created_by, who->actor) == 0};
    ch_policy_decision_t d;
    if ((rc = decide_again(cx, who, "event.deny", object, &ev, &pr, &d, err)) != 0) {
        return rc;
    }
    int64_t now = cx->now;
    ch_free(ev.status);
    ev.status = ch_strdup("active");
    ev.expires_at = now + ev.duration_s * 1000;
    ch_grant_list_t g;
    json_t *cams;
    if ((rc = move_grants(cx, &ev, "pending", 0, "active", &g, &cams, err)) != 0) {
        return rc;
    }
    json_t *details =
        json_pack("{s:I, s:o, s:s?, s:I}", "agency_id", (json_int_t)ev.agency_id, "cameras", cams,
                  "note", note, "duration_s", (json_int_t)ev.duration_s);
    if ((rc = ch_event__record_and_commit(cx, who->actor, "event.approve", object, &ev, details,
                                          err)) != 0) {
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return rc;
    }
    after_live(after, &ev, &g, 1);
    ch_event_fini(&ev);
    return ch_event__answer_event(cx, who, id, out, err);
}

/* ---- extension ----------------------------------------------------------------------------- */

int ch_event__extend(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                     int64_t duration_s, ch_event__after_t *after, ch_event_view_t *out,
                     ch_fault_t *err)
{
    ch_event_t ev;
    memset(out, 0, sizeof(*out));
    int rc = load_visible(cx, who, id, &ev, err);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(ev.status, "active") != 0) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL,
                            "the event is %s: only an active event is extended", ev.status);
        ch_event_fini(&ev);
        return rc;
    }
    ch_policy_request_t pr = {.role = ch_event__policy_role(who),
                              .action = CH_POLICY_EXTEND,
                              .duration_s = duration_s,
                              .extension_count = ev.extensions};
    ch_policy_decision_t d;
    char object[48];
    ch_event__object_name(object, "event", id);
    if ((rc = decide_again(cx, who, "event.extend", object, &ev, &pr, &d, err)) != 0) {
        return rc;
    }
    int64_t now = cx->now;
    int64_t old = ev.expires_at;
    ev.expires_at = (old > now ? old : now) + d.duration_s * 1000;
    ev.extensions++;
    ch_grant_list_t g;
    json_t *cams;
    /* Cameras a moving subject left behind keep their short grace. */
    if ((rc = move_grants(cx, &ev, "active", old, NULL, &g, &cams, err)) != 0) {
        return rc;
    }
    char was[32];
    ch_time_format_rfc3339(old, was);
    json_t *details = json_pack("{s:I, s:o, s:I, s:I, s:s}", "agency_id", (json_int_t)ev.agency_id,
                                "cameras", cams, "duration_s", (json_int_t)d.duration_s,
                                "extension", (json_int_t)ev.extensions, "expired_at_before", was);
    if ((rc = ch_event__record_and_commit(cx, who->actor, "event.extend", object, &ev, details,
                                          err)) != 0) {
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return rc;
    }
    after_live(after, &ev, &g, 0);
    ch_event_fini(&ev);
    return ch_event__answer_event(cx, who, id, out, err);
}

/* ---- close and revoke ---------------------------------------------------------------------- */

int ch_event__close_or_revoke(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                              const char *why, int revoke, ch_event__after_t *after,
                              ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_t ev;
    memset(out, 0, sizeof(*out));
    int rc = load_visible(cx, who, id, &ev, err);
    if (rc != 0) {
        return rc;
    }
    if (!ch_event__is_live(&ev)) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL, "the event is already %s",
                            ev.status);
        ch_event_fini(&ev);
        return rc;
    }
    rc = ch_event__end_event_in(cx, &ev, "closed", revoke ? "revoked" : "closed", who->actor, why,
                                revoke ? "event.revoke" : "event.close", json_object(), after, err);
    ch_event_fini(&ev);
    return rc != 0 ? rc : ch_event__answer_event(cx, who, id, out, err);
}

int ch_event__revoke_grant(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t grant_id,
                           const char *why, ch_event__after_t *after, ch_event_grant_view_t *out,
                           ch_fault_t *err)
{
    memset(out, 0, sizeof(*out));
    ch_grant_t g;
    int rc = ch_store_grant_get(cx->st, grant_id, &g);
    if (rc == CH_ENOTFOUND ||
        (rc == 0 && who->role == CH_EVENT_ROLE_PROVIDER && g.provider_id != who->agency_id)) {
        ch_grant_fini(&g);
        return ch_event__fail(err, CH_FAULT_NOT_FOUND, NULL, NULL, "no such grant");
    }
    if (rc != 0) {
        return ch_event__fail_store(cx->st, err);
    }
    if (who->role != CH_EVENT_ROLE_OPERATOR && who->role != CH_EVENT_ROLE_ADMIN &&
        who->role != CH_EVENT_ROLE_PROVIDER) {
        ch_grant_fini(&g);
        return ch_event__fail(err, CH_FAULT_FORBIDDEN, NULL, NULL,
                              "operators and the camera's provider revoke");
    }
    if (strcmp(g.status, "active") != 0 && strcmp(g.status, "pending") != 0) {
        rc =
            ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL, "the grant is already %s", g.status);
        ch_grant_fini(&g);
        return rc;
    }
    ch_event_t ev;
    rc = ch_event__begin(cx);
    if (rc == 0) {
        rc = ch_store_event_get(cx->st, g.event_id, &ev);
    }
    if (rc == 0) {
        rc = ch_event__end_grant(cx->st, &g, "revoked", who->actor, why, cx->now);
    }
    if (rc != 0) {
        ch_grant_fini(&g);
        return ch_event__fail_store(cx->st, err);
    }
    char object[48];
    ch_event__object_name(object, "grant", grant_id);
    json_t *d =
        json_pack("{s:I, s:I, s:I, s:I, s:s?}", "event_id", (json_int_t)g.event_id, "camera_id",
                  (json_int_t)g.camera_id, "agency_id", (json_int_t)g.agency_id, "provider_id",
                  (json_int_t)g.provider_id, "reason", why);
    if ((rc = ch_event__record_and_commit(cx, who->actor, "grant.revoke", object, &ev, d, err)) !=
        0) {
        ch_event_fini(&ev);
        ch_grant_fini(&g);
        return rc;
    }
    /* The grant leaves the live map (a copy: the answer takes the record). */
    after->committed = 1;
    ch_grant_list_free(&after->grants);
    after->grants.items = ch_calloc(1, sizeof(ch_grant_t));
    after->grants.items[0] = (ch_grant_t){.id = g.id, .status = ch_strdup(g.status)};
    after->grants.count = 1;
    ch_event__grant_view(cx, &g, 0, out);
    ch_event_fini(&ev);
    return 0;
}

/* ---- moving subjects ----------------------------------------------------------------------- */

int ch_event__move(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id, double lat,
                   double lon, int has_placed, int64_t placed_at, ch_event__after_t *after,
                   ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_t ev;
    memset(out, 0, sizeof(*out));
    int rc = load_visible(cx, who, id, &ev, err);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(ev.status, "active") != 0 || !ev.located) {
        rc = ch_event__fail(err, CH_FAULT_CONFLICT, NULL, NULL,
                            "only an active event at a place moves (this one is %s%s)", ev.status,
                            ev.located ? "" : ", along a path");
        ch_event_fini(&ev);
        return rc;
    }
    const ch_policy_service_t *svc = ch_event__service_of(cx->policy, ev.service);
    if (svc == NULL) {
        ch_event_fini(&ev);
        return ch_event__fail(err, CH_FAULT_UNAVAILABLE, NULL, NULL,
                              "the event's service is no longer loaded");
    }
    int64_t now = cx->now;
    char object[48];
    ch_event__object_name(object, "event", id);
    /* Only a service that follows a subject moves, and only as fast as a subject can go. */
    ch_policy_move_t pm = {.role = ch_event__policy_role(who),
                           .distance_m = ch_geo_distance_m(ev.lat, ev.lon, lat, lon, NULL),
                           .elapsed_ms = has_placed ? now - placed_at : 0};
    ch_policy_decision_t md;
    memset(&md, 0, sizeof(md));
    if (ch_policy_decide_move(svc, &pm, &md) != 0 || md.outcome != CH_POLICY_ALLOWED) {
        /* md points into the policy, not into ev: ev may go first. */
        int speed = md.rule != NULL && strcmp(md.rule, "implausible_speed") == 0;
        int64_t agency_id = ev.agency_id;
        ch_event_fini(&ev);
        rc = ch_event__deny(cx, who, "event.move", object, &md, svc->id, agency_id, err);
        if (speed && err->kind == CH_FAULT_DENIED) {
            /* Well formed, but no subject moves so fast: not a denial by the policy. */
            err->kind = CH_FAULT_TOO_COMPLEX;
            err->code = "implausible";
        }
        return rc;
    }
    int override = strcmp(md.rule, "implausible_speed_override") == 0;
    choice_t *c = NULL;
    size_t n = 0;
    if (ch_event__select_cameras(cx->st, cx->geo, svc, 1, lat, lon, NULL, NULL, svc->radius_m,
                                 svc->max_cameras, &c, &n) != 0) {
        ch_event_fini(&ev);
        return ch_event__fail(err, CH_FAULT_INTERNAL, NULL, NULL, "camera selection failed");
    }
    int64_t grace_until = now + cx->cfg->grace_ms;
    if (grace_until > ev.expires_at) {
        grace_until = ev.expires_at;
    }
    ch_grant_list_t g, gone;
    memset(&g, 0, sizeof(g));
    memset(&gone, 0, sizeof(gone));
    json_t *added = json_array(), *leaving = json_array(), *kept = json_array();
    rc = ch_event__begin(cx);
    if (rc == 0) {
        rc = ch_event__grants_of(cx->st, id, "active", &g);
    }
    if (rc == 0) {
        rc = ch_event__grants_of(cx->st, id, "revoked", &gone);
    }
    /* Cameras that see the new position: kept (their full expiry back), or new; never one
     * whose grant in this event was revoked (by its provider or an operator). */
    choice_t *fresh = ch_calloc(n + 1, sizeof(*fresh));
    size_t nfresh = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int revoked = 0;
        for (size_t k = 0; k < gone.count; k++) {
            revoked |= gone.items[k].camera_id == c[i].r.camera_id;
        }
        if (revoked) {
            continue;
        }
        ch_grant_t *have = NULL;
        for (size_t k = 0; k < g.count; k++) {
            if (g.items[k].camera_id == c[i].r.camera_id) {
                have = &g.items[k];
            }
        }
        if (have == NULL) {
            fresh[nfresh++] = c[i];
        } else if (have->expires_at != ev.expires_at) {
            have->expires_at = ev.expires_at;
            rc = ch_store_grant_update(cx->st, have);
            json_array_append_new(kept, json_integer(have->camera_id));
        }
    }
    ch_grant_list_free(&gone);
    /* Cameras behind: a short grace, then released. */
    for (size_t k = 0; rc == 0 && k < g.count; k++) {
        int seen = 0;
        for (size_t i = 0; i < n; i++) {
            seen |= c[i].r.camera_id == g.items[k].camera_id;
        }
        if (!seen && g.items[k].expires_at > grace_until) {
            g.items[k].expires_at = grace_until;
            rc = ch_store_grant_update(cx->st, &g.items[k]);
            json_array_append_new(leaving, json_integer(g.items[k].camera_id));
        }
    }
    ev.lat = lat;
    ev.lon = lon;
    if (rc == 0) {
        rc = ch_store_event_update(cx->st, &ev);
    }
    if (rc == 0) {
        rc = ch_event__make_grants(cx->st, &ev, fresh, nfresh, "active", 0, added);
    }
    ch_free(c);
    ch_free(fresh);
    if (rc != 0) {
        json_decref(added);
        json_decref(leaving);
        json_decref(kept);
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return ch_event__fail_store(cx->st, err);
    }
    json_t *cams = json_copy(added);
    json_array_extend(cams, leaving);
    json_t *d = json_pack("{s:I, s:f, s:f, s:o, s:o, s:o, s:o}", "agency_id",
                          (json_int_t)ev.agency_id, "lat", lat, "lon", lon, "added", added,
                          "leaving", leaving, "back", kept, "cameras", cams);
    if (override) {
        /* An operator placed the subject beyond the plausible speed (a correction): allowed,
         * and said so on the record. */
        json_object_set_new(d, "override", json_string("implausible_speed"));
        json_object_set_new(d, "override_reason", json_string(md.reason));
        ch_log(CH_LOG_WARN, MODULE, "msg=\"implausible move by an operator\" event=%lld",
               (long long)id);
    }
    if ((rc = ch_event__record_and_commit(cx, who->actor, "event.move", object, &ev, d, err)) !=
        0) {
        ch_grant_list_free(&g);
        ch_event_fini(&ev);
        return rc;
    }
    /* The grants active now, as committed (kept, leaving on their grace, new) take their
     * expiries in the live map, the new ones join it; the subject is placed now. */
    after->committed = 1;
    after->has_placed = 1;
    after->placed_at = now;
    ch_grant_list_free(&g);
    if (ch_event__grants_of(cx->st, id, "active", &g) == 0) {
        after_live(after, &ev, &g, 1);
    }
    ch_event_fini(&ev);
    return ch_event__answer_event(cx, who, id, out, err);
}
