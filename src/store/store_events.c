/*
 * store/store_events.c: events and grants, generic tables of the back end with their checks
 * and typed calls. The event module owns their meaning (src/event/event.h).
 */
#include "store/store_internal.h"

#include <math.h>
#include <string.h>

#define EVENTS (&ch_store__tables[CH_STORE__EVENTS])
#define GRANTS (&ch_store__tables[CH_STORE__GRANTS])

const char *const ch_store_event_statuses[] = {"pending", "active",  "denied",
                                               "closed",  "expired", NULL};
const char *const ch_store_grant_statuses[] = {"pending", "active",  "denied",   "expired",
                                               "closed",  "revoked", "released", NULL};

CH_STORE__FINI(ch_event_fini, ch_event_t, EVENTS)

CH_STORE__FINI(ch_grant_fini, ch_grant_t, GRANTS)

CH_STORE__LIST_FREE(ch_event_list_free, ch_event_list_t, EVENTS)

CH_STORE__LIST_FREE(ch_grant_list_free, ch_grant_list_t, GRANTS)

static int event_check(ch_store_t *st, const ch_event_t *e)
{
    int rc;
    if (e->service == NULL || e->service[0] == '\0' || e->agency_id <= 0 || e->created_by == NULL) {
        return ch_store__fail(st, CH_EINVAL,
                              "event: service, agency_id and created_by are required");
    }
    if ((rc = ch_store__check_enum(st, "event", "status", e->status, ch_store_event_statuses)) !=
        0) {
        return rc;
    }
    if (!isfinite(e->lat) || !isfinite(e->lon) ||
        (e->located && (e->lat < -90 || e->lat > 90 || e->lon < -180 || e->lon > 180))) {
        return ch_store__fail(st, CH_EINVAL, "event: position out of range");
    }
    return 0;
}

static int grant_check(ch_store_t *st, const ch_grant_t *g)
{
    if (g->event_id <= 0 || g->camera_id <= 0 || g->agency_id <= 0) {
        return ch_store__fail(st, CH_EINVAL,
                              "grant: event_id, camera_id and agency_id are required");
    }
    return ch_store__check_enum(st, "grant", "status", g->status, ch_store_grant_statuses);
}

CH_STORE__GET(ch_store_event_get, ch_event_t, EVENTS)

CH_STORE__WRITES(ch_store_event_create, ch_store_event_update, ch_event_t, EVENTS, event_check)

CH_STORE__LIST(ch_store_event_list, ch_event_list_t, EVENTS)

CH_STORE__GET(ch_store_grant_get, ch_grant_t, GRANTS)

CH_STORE__WRITES(ch_store_grant_create, ch_store_grant_update, ch_grant_t, GRANTS, grant_check)

CH_STORE__LIST(ch_store_grant_list, ch_grant_list_t, GRANTS)
