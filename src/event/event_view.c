/*
 * event/event_view.c: the answers, as typed views (the event, its legal basis, its grants with
 * their tokens and URLs). The engine renders nothing: api/event_json.c writes the views as
 * the REST API's JSON.
 */
#include "event/event_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ch_event__grant_view(const ch_event__ctx_t *cx, ch_grant_t *g, int with_token,
                          ch_event_grant_view_t *out)
{
    memset(out, 0, sizeof(*out));
    out->grant = *g;
    memset(g, 0, sizeof(*g));
    const ch_grant_t *gr = &out->grant;
    if (!with_token || cx->sk == NULL || strcmp(gr->status, "active") != 0) {
        return;
    }
    ch_event_claims_t c = {gr->id, gr->event_id, gr->camera_id, gr->agency_id,
                           (gr->expires_at + 999) / 1000};
    char token[CH_EVENT_TOKEN_MAX];
    ch_event_token_make(cx->sk, &c, token);
    /* A URL of up to 599 bytes, as the answers have always held: a base is a short address
     * and a token under CH_EVENT_TOKEN_MAX. */
    char url[600];
    out->token = ch_strdup(token);
    snprintf(url, sizeof(url), "%s/cameras/%lld?token=%s", cx->rtsp_base, (long long)gr->camera_id,
             token);
    out->rtsp_url = ch_strdup(url);
    snprintf(url, sizeof(url), "%s/api/v1/cameras/%lld/live?token=%s", cx->ws_base,
             (long long)gr->camera_id, token);
    out->ws_url = ch_strdup(url);
}

void ch_event__event_view(const ch_event__ctx_t *cx, ch_event_t *ev, ch_grant_list_t *grants,
                          const ch_event_actor_t *who, ch_event_view_t *out)
{
    memset(out, 0, sizeof(*out));
    const ch_policy_service_t *svc = ch_event__service_of(cx->policy, ev->service);
    if (svc != NULL && svc->basis_text != NULL) {
        out->basis_text = ch_strdup(svc->basis_text);
    }
    int with_token = who != NULL && who->agency_id == ev->agency_id &&
                     (who->role == CH_EVENT_ROLE_AGENCY || who->role == CH_EVENT_ROLE_OPERATOR);
    out->grants = grants->count > 0 ? ch_calloc(grants->count, sizeof(*out->grants)) : NULL;
    out->ngrants = grants->count;
    for (size_t i = 0; i < grants->count; i++) {
        ch_event__grant_view(cx, &grants->items[i], with_token, &out->grants[i]);
    }
    ch_grant_list_free(grants); /* its items were taken, left zeroed */
    out->event = *ev;
    memset(ev, 0, sizeof(*ev));
}

void ch_event_grant_view_fini(ch_event_grant_view_t *g)
{
    if (g == NULL) {
        return;
    }
    ch_grant_fini(&g->grant);
    ch_free(g->token);
    ch_free(g->rtsp_url);
    ch_free(g->ws_url);
    memset(g, 0, sizeof(*g));
}

void ch_event_view_fini(ch_event_view_t *v)
{
    if (v == NULL) {
        return;
    }
    ch_event_fini(&v->event);
    ch_free(v->basis_text);
    for (size_t i = 0; i < v->ngrants; i++) {
        ch_event_grant_view_fini(&v->grants[i]);
    }
    ch_free(v->grants);
    memset(v, 0, sizeof(*v));
}

void ch_event_page_fini(ch_event_page_t *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->count; i++) {
        ch_event_view_fini(&p->items[i]);
    }
    ch_free(p->items);
    memset(p, 0, sizeof(*p));
}

/* Answers the event with its grants. */
int ch_event__answer_event(const ch_event__ctx_t *cx, const ch_event_actor_t *who, int64_t id,
                           ch_event_view_t *out, ch_fault_t *err)
{
    ch_event_t ev;
    ch_grant_list_t g;
    memset(out, 0, sizeof(*out));
    if (ch_store_event_get(cx->st, id, &ev) != 0) {
        ch_event_fini(&ev);
        return ch_event__fail_store(cx->st, err);
    }
    if (ch_event__grants_of(cx->st, id, NULL, &g) != 0) {
        ch_event_fini(&ev);
        return ch_event__fail_store(cx->st, err);
    }
    ch_event__event_view(cx, &ev, &g, who, out);
    return 0;
}
