/*
 * net/door.c: the door of net.h, shared by the relay and the HTTP server so that both count
 * by the same rule. The relay's counts viewers' connections that have not authorized yet
 * (OPTIONS needs no token, so a connection costs nothing until it must show one); HTTP's
 * counts every connection, so that one address cannot hold the whole API with idle
 * keep-alive connections.
 *
 * Counts by address live in an open-addressing table with linear probing, at least twice as
 * large as max_total (at most max_total addresses hold a count), so probes stay short; a count
 * that drops to 0 frees its slot by backward-shift deletion (no tombstones). The waiting
 * connections are also listed in order of arrival: when the door is full, the oldest gives its
 * place to a newcomer (the relay's door; HTTP's owner chooses instead). A viewer with a token
 * authorizes within its first round trip, so a flood from many addresses would have to open
 * max_total connections in that time to keep it out, instead of merely holding the door full.
 */
#include "net/net.h"

#include <assert.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>

/* The table's size for max_total: at most max_total addresses hold a count, and the table
 * stays at most half full. */
static size_t door_capacity(unsigned max_total)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)max_total) {
        cap <<= 1;
    }
    return cap;
}

void ch_net_door_init(ch_net_door_t *d, unsigned max_total, unsigned max_per_addr, int evict_oldest)
{
    assert(max_total > 0);
    memset(d, 0, sizeof(*d));
    d->max_total = max_total;
    d->max_per_addr = max_per_addr;
    d->evict_oldest = evict_oldest;
    size_t cap = door_capacity(max_total);
    d->slots = ch_calloc(cap, sizeof(*d->slots));
    d->mask = cap - 1;
    if (getrandom(&d->seed, sizeof(d->seed), 0) != (ssize_t)sizeof(d->seed)) {
        d->seed = ch_time_mono_ns() ^ (uint64_t)(uintptr_t)d;
    }
    pthread_mutex_init(&d->lock, NULL);
}

void ch_net_door_fini(ch_net_door_t *d)
{
    pthread_mutex_destroy(&d->lock);
    ch_free(d->slots);
    d->slots = NULL;
}

void ch_net_door_key(const struct sockaddr_storage *ss, uint8_t out[16])
{
    memset(out, 0, 16);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            memcpy(out, &a->sin6_addr, 16);
        } else {
            memcpy(out, &a->sin6_addr, 8);
        }
    }
}

/* The home slot of addr: a keyed mix of its two halves. */
static size_t door_hash(const ch_net_door_t *d, const uint8_t a[16])
{
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, a + 8, 8);
    uint64_t h = (x ^ d->seed) * 0x9E3779B97F4A7C15u;
    h ^= h >> 29;
    h = (h + y) * 0xBF58476D1CE4E5B9u;
    h ^= h >> 32;
    return (size_t)h & d->mask;
}

static size_t door_slot(const ch_net_door_t *d, const uint8_t a[16])
{
    size_t i = door_hash(d, a);
    while (d->slots[i].count != 0 && memcmp(d->slots[i].addr, a, 16) != 0) {
        i = (i + 1) & d->mask;
    }
    return i;
}

/* Where a's count is, or the free slot where it would go. Under the lock. */
static size_t door_slot(const ch_net_door_t *d, const uint8_t a[16]);

void ch_net_door_set_caps(ch_net_door_t *d, unsigned max_total, unsigned max_per_addr)
{
    assert(max_total > 0);
    pthread_mutex_lock(&d->lock);
    d->max_total = max_total;
    d->max_per_addr = max_per_addr;
    size_t cap = door_capacity(max_total);
    if (cap > d->mask + 1) {
        /* Only ever grows: the counts in now (at most the old max_total addresses) keep the
         * table at most half full whatever the new cap. */
        ch_net_door_count_t *old = d->slots;
        size_t old_cap = d->mask + 1;
        d->slots = ch_calloc(cap, sizeof(*d->slots));
        d->mask = cap - 1;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].count != 0) {
                d->slots[door_slot(d, old[i].addr)] = old[i];
            }
        }
        ch_free(old);
    }
    pthread_mutex_unlock(&d->lock);
}

/* Takes n out of the count and the list. Under the lock; n is at the door. */
static void door_remove(ch_net_door_t *d, ch_net_door_node_t *n)
{
    n->at_door = 0;
    if (n->prev != NULL) {
        n->prev->next = n->next;
    } else {
        d->oldest = n->next;
    }
    if (n->next != NULL) {
        n->next->prev = n->prev;
    } else {
        d->newest = n->prev;
    }
    n->prev = n->next = NULL;
    assert(d->total > 0);
    d->total--;
    if (n->exempt) {
        return;
    }
    size_t hole = door_slot(d, n->addr);
    assert(d->slots[hole].count > 0);
    if (--d->slots[hole].count > 0) {
        return;
    }
    /* Backward-shift deletion: a later entry of the chain moves into the hole when its home
     * is at or before the hole (cyclically), so that no lookup stops early at an empty slot. */
    for (size_t j = (hole + 1) & d->mask; d->slots[j].count != 0; j = (j + 1) & d->mask) {
        size_t home = door_hash(d, d->slots[j].addr);
        if (((j - home) & d->mask) >= ((j - hole) & d->mask)) {
            d->slots[hole] = d->slots[j];
            hole = j;
        }
    }
    d->slots[hole].count = 0;
}

int ch_net_door_enter(ch_net_door_t *d, ch_net_door_node_t *n, int *evicted)
{
    assert(!n->at_door);
    int why = CH_NET_DOOR_IN;
    *evicted = 0;
    pthread_mutex_lock(&d->lock);
    if (!n->exempt && d->max_per_addr > 0 &&
        d->slots[door_slot(d, n->addr)].count >= d->max_per_addr) {
        why = CH_NET_DOOR_PER_ADDR;
        goto out;
    }
    if (d->total >= d->max_total && !d->evict_oldest) {
        why = CH_NET_DOOR_FULL;
        goto out;
    }
    if (d->total >= d->max_total && d->oldest != NULL) {
        ch_net_door_node_t *old = d->oldest;
        door_remove(d, old);
        atomic_store_explicit(&old->evicted, 1, memory_order_relaxed);
        *evicted = 1;
    }
    if (!n->exempt) {
        /* Looked up again: the eviction may have moved entries. */
        ch_net_door_count_t *e = &d->slots[door_slot(d, n->addr)];
        if (e->count == 0) {
            memcpy(e->addr, n->addr, 16);
        }
        e->count++;
    }
    d->total++;
    n->at_door = 1;
    n->prev = d->newest;
    n->next = NULL;
    if (d->newest != NULL) {
        d->newest->next = n;
    } else {
        d->oldest = n;
    }
    d->newest = n;
out:
    pthread_mutex_unlock(&d->lock);
    return why;
}

void ch_net_door_leave(ch_net_door_t *d, ch_net_door_node_t *n)
{
    pthread_mutex_lock(&d->lock);
    if (n->at_door) {
        door_remove(d, n);
    }
    pthread_mutex_unlock(&d->lock);
}

int ch_net_door_evicted(ch_net_door_node_t *n)
{
    return atomic_load_explicit(&n->evicted, memory_order_relaxed);
}

uint32_t ch_net_door_count(ch_net_door_t *d, const uint8_t *addr)
{
    pthread_mutex_lock(&d->lock);
    uint32_t n = addr == NULL ? d->total : d->slots[door_slot(d, addr)].count;
    pthread_mutex_unlock(&d->lock);
    return n;
}
