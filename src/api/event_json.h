/*
 * api/event_json.h: the event engine's answers (its typed views) as the REST API writes them
 * (docs/openapi.yaml: Event, Grant, the page of GET /api/v1/events). Pure: no HTTP, no loop,
 * so unit tests drive it directly.
 */
#ifndef CH_API_EVENT_JSON_H
#define CH_API_EVENT_JSON_H

#include "event/event.h"

#include <jansson.h>

/* A grant: its record, why its camera was chosen, how it ended, and its token and URLs when
 * the view holds them. A new reference. */
json_t *ch_api__grant_json(const ch_event_grant_view_t *g);
/* An event with its grants. A new reference. */
json_t *ch_api__event_json(const ch_event_view_t *v);
/* A page's events, as an array (the items of GET /api/v1/events). */
json_t *ch_api__event_items_json(const ch_event_page_t *p);

#endif /* CH_API_EVENT_JSON_H */
