/*
 * event/event_gate.c: the relay's access gate (see event.h). The live grants are an
 * open-addressing hash set of grant ids (linear probing, at most half full, deletion by
 * shifting the cluster back, so no tombstones pile up as grants come and go): with 45,000 live
 * grants the array it replaces was scanned whole by every viewer's authorization, under the
 * mutex the engine's notices take too.
 *
 * Verified tokens are cached per thread (a small ring): the same token (an agency's viewers of
 * one grant, a client reconnecting) skips the Ed25519 verification; its expiry, its camera and
 * its grant are still checked every time. The cache needs no lock: each media thread has its
 * own. An entry names the gate that verified it, so a second gate (another key) never takes a
 * token on the word of the first.
 */
#include "event/event.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

struct ch_event_gate {
    uint8_t pk[32];
    uint64_t id;          /* this gate's number, for the thread caches' entries */
    pthread_mutex_t lock; /* the set below */
    int64_t *slot;        /* grant ids; 0 is free */
    size_t nslots;        /* a power of two, or 0 */
    size_t n;             /* ids in the set */
};

/* ---- the live set -------------------------------------------------------------------------- */

static size_t home_of(const ch_event_gate_t *g, int64_t grant_id)
{
    unsigned bits = (unsigned)__builtin_ctzll((unsigned long long)g->nslots);
    return (size_t)(((uint64_t)grant_id * 0x9e3779b97f4a7c15ULL) >> (64 - bits));
}

/* The slot holding grant_id, or the free slot ending its probe. The set is not empty of slots
 * and never full, so the probe ends. */
static size_t slot_of(const ch_event_gate_t *g, int64_t grant_id)
{
    size_t i = home_of(g, grant_id);
    while (g->slot[i] != 0 && g->slot[i] != grant_id) {
        i = (i + 1) & (g->nslots - 1);
    }
    return i;
}

static int set_has(const ch_event_gate_t *g, int64_t grant_id)
{
    return g->nslots > 0 && g->slot[slot_of(g, grant_id)] == grant_id;
}

static void set_grow(ch_event_gate_t *g)
{
    int64_t *old = g->slot;
    size_t nold = g->nslots;
    g->nslots = nold ? nold * 2 : 256;
    g->slot = ch_calloc(g->nslots, sizeof(*g->slot));
    for (size_t k = 0; k < nold; k++) {
        if (old[k] != 0) {
            g->slot[slot_of(g, old[k])] = old[k];
        }
    }
    ch_free(old);
}

/* Removes the id at slot i and moves back the ids after it in its cluster that may no longer
 * be reached past the hole (Knuth's algorithm R for linear probing). */
static void set_remove_at(ch_event_gate_t *g, size_t i)
{
    size_t mask = g->nslots - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; g->slot[j] != 0; j = (j + 1) & mask) {
        size_t home = home_of(g, g->slot[j]);
        /* j's id stays when its home lies cyclically in (hole, j]. */
        int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            g->slot[hole] = g->slot[j];
            hole = j;
        }
    }
    g->slot[hole] = 0;
    g->n--;
}

ch_event_gate_t *ch_event_gate_new(const uint8_t pk[32])
{
    static atomic_uint_fast64_t next_id;
    ch_event_gate_t *g = ch_calloc(1, sizeof(*g));
    memcpy(g->pk, pk, sizeof(g->pk));
    g->id = (uint64_t)atomic_fetch_add(&next_id, 1) + 1;
    pthread_mutex_init(&g->lock, NULL);
    return g;
}

void ch_event_gate_free(ch_event_gate_t *g)
{
    if (g == NULL) {
        return;
    }
    pthread_mutex_destroy(&g->lock);
    ch_free(g->slot);
    ch_free(g);
}

int ch_event_gate_notice(ch_event_gate_t *g, const ch_event_notice_t *n)
{
    /* Grant ids come from the store's rowids, always positive; 0 marks a free slot. */
    if (n->grant_id <= 0) {
        return 0;
    }
    int hold = 0;
    pthread_mutex_lock(&g->lock);
    if (n->kind == CH_EVENT_GRANT_STARTED && !set_has(g, n->grant_id)) {
        if ((g->n + 1) * 2 > g->nslots) {
            set_grow(g);
        }
        g->slot[slot_of(g, n->grant_id)] = n->grant_id;
        g->n++;
        hold = 1;
    } else if (n->kind == CH_EVENT_GRANT_ENDED && set_has(g, n->grant_id)) {
        set_remove_at(g, slot_of(g, n->grant_id));
        hold = -1;
    }
    pthread_mutex_unlock(&g->lock);
    return hold;
}

int ch_event_gate_is_live(ch_event_gate_t *g, int64_t grant_id)
{
    pthread_mutex_lock(&g->lock);
    int live = grant_id > 0 && set_has(g, grant_id);
    pthread_mutex_unlock(&g->lock);
    return live;
}

size_t ch_event_gate_ids(ch_event_gate_t *g, int64_t **out)
{
    pthread_mutex_lock(&g->lock);
    size_t n = 0;
    *out = ch_malloc((g->n + 1) * sizeof(**out));
    for (size_t i = 0; i < g->nslots; i++) {
        if (g->slot[i] != 0) {
            (*out)[n++] = g->slot[i];
        }
    }
    pthread_mutex_unlock(&g->lock);
    return n;
}

size_t ch_event_gate_live(ch_event_gate_t *g)
{
    pthread_mutex_lock(&g->lock);
    size_t n = g->n;
    pthread_mutex_unlock(&g->lock);
    return n;
}

/* ---- tokens -------------------------------------------------------------------------------- */

#define TOKEN_CACHE 32

typedef struct checked_token {
    uint64_t gate_id; /* 0: empty */
    size_t len;
    char text[CH_EVENT_TOKEN_MAX];
    ch_event_claims_t claims;
} checked_token_t;

static _Thread_local checked_token_t ch__checked[TOKEN_CACHE];
static _Thread_local unsigned ch__checked_next;

/* The token's claims, from this thread's cache or verified (and then cached, expired or not:
 * its claims are true, only its time is over). As ch_event_token_verify. */
static int verify_token(const ch_event_gate_t *g, const char *token, size_t len, int64_t now_s,
                        ch_event_claims_t *cl)
{
    for (unsigned i = 0; i < TOKEN_CACHE; i++) {
        const checked_token_t *t = &ch__checked[i];
        if (t->gate_id == g->id && t->len == len && len > 0 && memcmp(t->text, token, len) == 0) {
            *cl = t->claims;
            return now_s >= cl->expires_s ? CH_EEXPIRED : 0;
        }
    }
    int rc = ch_event_token_verify(g->pk, token, len, now_s, cl);
    if ((rc == 0 || rc == CH_EEXPIRED) && len < CH_EVENT_TOKEN_MAX) {
        checked_token_t *t = &ch__checked[ch__checked_next++ % TOKEN_CACHE];
        memcpy(t->text, token, len);
        t->len = len;
        t->claims = *cl;
        t->gate_id = g->id;
    }
    return rc;
}

int ch_event_gate_authorize(ch_event_gate_t *g, const char *token, size_t len, int64_t camera_id,
                            int64_t now_s, ch_event_claims_t *out)
{
    ch_event_claims_t cl;
    int rc = verify_token(g, token, len, now_s, &cl);
    if (rc == CH_EEXPIRED) {
        return CH_EEXPIRED;
    }
    if (rc != 0) {
        return CH_EPERM;
    }
    if (cl.camera_id != camera_id) {
        return CH_EINVAL;
    }
    if (!ch_event_gate_is_live(g, cl.grant_id)) {
        return CH_ENOENT;
    }
    *out = cl;
    return 0;
}
