/*
 * event/event_live.c: the live map (live grants and events in memory).
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

/* ---- the live set -------------------------------------------------------------------------- */

/*
 * The live grants: an array (scanned by the expiry tick) and an index from grant id to array
 * position (open addressing, linear probing, backward-shift deletion; slot value 0 = free,
 * else position + 1), so that looking a grant up or dropping it does not scan 100,000 grants.
 */
static size_t slot_of(const ch_event_engine_t *eng, int64_t id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (eng->mcap - 1);
}

static void map_put(ch_event_engine_t *eng, int64_t id, size_t pos)
{
    size_t i = slot_of(eng, id);
    while (eng->map[i] != 0 && eng->grants[eng->map[i] - 1].id != id) {
        i = (i + 1) & (eng->mcap - 1);
    }
    eng->map[i] = (uint32_t)(pos + 1);
}

static size_t *map_find(const ch_event_engine_t *eng, int64_t id, size_t *slot)
{
    if (eng->mcap == 0) {
        return NULL;
    }
    size_t i = slot_of(eng, id);
    while (eng->map[i] != 0) {
        if (eng->grants[eng->map[i] - 1].id == id) {
            *slot = i;
            return slot;
        }
        i = (i + 1) & (eng->mcap - 1);
    }
    return NULL;
}

static void map_del_slot(ch_event_engine_t *eng, size_t i)
{
    size_t mask = eng->mcap - 1;
    size_t j = i;
    eng->map[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (eng->map[j] == 0) {
            return;
        }
        size_t k = slot_of(eng, eng->grants[eng->map[j] - 1].id);
        /* Move j back to i unless its home k lies cyclically in (i, j]. */
        if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
            eng->map[i] = eng->map[j];
            eng->map[j] = 0;
            i = j;
        }
    }
}

static void map_grow(ch_event_engine_t *eng)
{
    ch_free(eng->map);
    eng->mcap = eng->mcap ? eng->mcap * 2 : 256;
    eng->map = ch_calloc(eng->mcap, sizeof(*eng->map));
    for (size_t i = 0; i < eng->ngrants; i++) {
        map_put(eng, eng->grants[i].id, i);
    }
}

void ch_event__live_add_grant(ch_event_engine_t *eng, const ch_grant_t *g)
{
    if (eng->ngrants == eng->gcap) {
        eng->gcap = eng->gcap ? eng->gcap * 2 : 64;
        eng->grants = ch_realloc(eng->grants, eng->gcap * sizeof(*eng->grants));
    }
    eng->grants[eng->ngrants++] =
        (live_grant_t){g->id, g->event_id, g->camera_id, g->agency_id, g->expires_at};
    if ((eng->ngrants + 1) * 2 > eng->mcap) {
        map_grow(eng); /* puts every grant, the new one too */
    } else {
        map_put(eng, g->id, eng->ngrants - 1);
    }
}

live_grant_t *ch_event__live_grant(ch_event_engine_t *eng, int64_t id)
{
    size_t slot;
    if (map_find(eng, id, &slot) == NULL) {
        return NULL;
    }
    return &eng->grants[eng->map[slot] - 1];
}

/* Removes the grant at position pos (the last one takes its place). */
void ch_event__live_remove_at(ch_event_engine_t *eng, size_t pos)
{
    size_t slot;
    if (map_find(eng, eng->grants[pos].id, &slot) != NULL) {
        map_del_slot(eng, slot);
    }
    size_t last = --eng->ngrants;
    if (pos != last) {
        eng->grants[pos] = eng->grants[last];
        if (map_find(eng, eng->grants[pos].id, &slot) != NULL) {
            eng->map[slot] = (uint32_t)(pos + 1);
        }
    }
}

void ch_event__live_drop_grant(ch_event_engine_t *eng, int64_t id)
{
    size_t slot;
    if (map_find(eng, id, &slot) != NULL) {
        ch_event__live_remove_at(eng, eng->map[slot] - 1);
    }
}

live_event_t *ch_event__live_event(ch_event_engine_t *eng, int64_t id)
{
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].id == id) {
            return &eng->events[i];
        }
    }
    return NULL;
}

/* Adds or updates a live event; a new one's subject is placed now (see ch_event_restore). */
void ch_event__live_set_event(ch_event_engine_t *eng, int64_t id, int64_t expires_at)
{
    live_event_t *e = ch_event__live_event(eng, id);
    if (e != NULL) {
        e->expires_at = expires_at;
        return;
    }
    if (eng->nevents == eng->ecap) {
        eng->ecap = eng->ecap ? eng->ecap * 2 : 32;
        eng->events = ch_realloc(eng->events, eng->ecap * sizeof(*eng->events));
    }
    eng->events[eng->nevents++] = (live_event_t){id, expires_at, ch_event__now_ms(eng)};
}

void ch_event__live_drop_event(ch_event_engine_t *eng, int64_t id)
{
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].id == id) {
            eng->events[i] = eng->events[--eng->nevents];
            return;
        }
    }
}

int64_t ch_event_next_due(const ch_event_engine_t *eng)
{
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < eng->ngrants; i++) {
        if (eng->grants[i].expires_at > 0 && eng->grants[i].expires_at < due) {
            due = eng->grants[i].expires_at;
        }
    }
    for (size_t i = 0; i < eng->nevents; i++) {
        if (eng->events[i].expires_at > 0 && eng->events[i].expires_at < due) {
            due = eng->events[i].expires_at;
        }
    }
    return due;
}

size_t ch_event_live_grants(const ch_event_engine_t *eng)
{
    return eng->ngrants;
}

/* What a committed operation leaves (event_internal.h): applied on the loop, after the feed has
 * heard the commit, so a grant it ended is gone already and dropping it again finds nothing. */
void ch_event__after_apply(ch_event_engine_t *eng, const ch_event__after_t *a)
{
    if (!a->committed) {
        return;
    }
    if (a->event_id != 0) {
        if (a->event_live) {
            ch_event__live_set_event(eng, a->event_id, a->expires_at);
        } else {
            ch_event__live_drop_event(eng, a->event_id);
        }
    }
    for (size_t i = 0; i < a->grants.count; i++) {
        const ch_grant_t *g = &a->grants.items[i];
        if (strcmp(g->status, "active") != 0) {
            ch_event__live_drop_grant(eng, g->id);
            continue;
        }
        live_grant_t *lg = ch_event__live_grant(eng, g->id);
        if (lg != NULL) {
            lg->expires_at = g->expires_at;
        } else if (a->join) {
            ch_event__live_add_grant(eng, g);
        }
    }
    live_event_t *le;
    if (a->has_placed && (le = ch_event__live_event(eng, a->event_id)) != NULL) {
        le->placed_at = a->placed_at;
    }
}

void ch_event__after_fini(ch_event__after_t *a)
{
    ch_grant_list_free(&a->grants);
    memset(a, 0, sizeof(*a));
}
