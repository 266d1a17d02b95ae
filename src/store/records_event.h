/*
 * store/records_event.h: events and the grants of their cameras. One domain's records, as the
 * store keeps them; store/store.h includes it, and callers include store.h. The calls that read
 * and write them are in store.h; records returned are the caller's, released with their *_fini or
 * *_list_free.
 */
#ifndef CH_STORE_RECORDS_EVENT_H
#define CH_STORE_RECORDS_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "store/records_list.h"

/* Statuses, NULL-terminated (docs/internals/event.md). */
extern const char *const ch_store_event_statuses[]; /* pending active denied closed expired */
extern const char *const ch_store_grant_statuses[]; /* pending active denied expired closed
                                                       revoked released */

/* An event an agency raised: one service, one place (or path, or moving subject). */
typedef struct ch_event {
    int64_t id;
    char *service;     /* required: a service id of the services file */
    int64_t agency_id; /* required: the agency the event is for */
    char *status;      /* required: one of ch_store_event_statuses */
    int located;       /* 1 when lat/lon hold the place (or the subject's last position) */
    double lat, lon;
    char *path;          /* a GeoJSON LineString text, or NULL */
    char *incident;      /* the agency's incident number, or NULL */
    char *reason;        /* or NULL */
    char *case_name;     /* or NULL */
    int64_t duration_s;  /* granted length */
    int64_t expires_at;  /* ms since epoch; 0 while pending */
    int extensions;      /* extensions made */
    int ptz;             /* PTZ granted */
    int export_allowed;  /* export granted */
    char *basis_code;    /* the legal basis decided on */
    char *created_by;    /* required: the actor */
    char *decided_by;    /* the operator who approved or denied, or NULL */
    char *decision_note; /* or NULL */
    char *closed_by;     /* who closed or revoked it, or "system" for expiry; NULL while open */
    char *close_reason;
    int64_t closed_at;
    int64_t created_at;
    int64_t updated_at;
} ch_event_t;

/* One camera of an event. */
typedef struct ch_grant {
    int64_t id;
    int64_t event_id;    /* required */
    int64_t camera_id;   /* required */
    int64_t agency_id;   /* required: the agency that may watch */
    int64_t provider_id; /* the camera's agency */
    char *status;        /* required: one of ch_store_grant_statuses */
    char *why;           /* why the camera was chosen: a JSON object text */
    int64_t expires_at;  /* ms since epoch; 0 while pending */
    int64_t ended_at;    /* 0 while pending or active */
    char *ended_by;
    char *end_reason;
    int64_t created_at;
    int64_t updated_at;
} ch_grant_t;

CH_STORE_LIST_TYPE(ch_event_list, ch_event_t);

CH_STORE_LIST_TYPE(ch_grant_list, ch_grant_t);

void ch_event_fini(ch_event_t *e);
void ch_grant_fini(ch_grant_t *g);

#endif /* CH_STORE_RECORDS_EVENT_H */
