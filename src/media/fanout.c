/*
 * media/fanout.c: one camera's packets stored once and read by every viewer (see media.h).
 *
 * The window is a power-of-two ring of packet pointers indexed by packet number; base is the
 * oldest packet held and head the next number. Each packet records the stream's byte count
 * before it (cum), so a viewer's lag is one subtraction. Buffers of ordinary size come from a
 * free list and go back to it, so a warm stream allocates nothing.
 */
#include "media/media.h"

#include <string.h>

typedef struct pkt {
    struct pkt *free_next;
    uint64_t cum;    /* stream bytes before this packet */
    uint32_t len;    /* bytes in data: 4-byte interleaved header + RTP */
    uint32_t pooled; /* from the free list (ordinary size) */
    uint8_t data[];
} pkt_t;

struct ch_media_stream {
    pkt_t **ring;
    size_t mask;      /* ring size - 1 */
    size_t window;    /* most packets held */
    size_t pkt_bytes; /* data bytes of a pooled buffer */
    uint64_t base, head;
    uint64_t gop_start;
    uint64_t au_start;
    int whole;      /* whole_frames: viewers read up to ready only */
    uint64_t ready; /* with whole: the first packet of the access unit not yet complete */
    int have_gop;
    uint64_t cum_head;
    pkt_t *free;
    size_t allocated;
    ch_media_viewer_t *viewers;
    size_t nviewers;
};

ch_media_stream_t *ch_media_stream_new(const ch_media_stream_config_t *cfg)
{
    ch_media_stream_t *s = ch_calloc(1, sizeof(*s));
    s->window = cfg != NULL && cfg->window > 0 ? cfg->window : 8192;
    s->pkt_bytes = cfg != NULL && cfg->pkt_bytes > 0 ? cfg->pkt_bytes : 1600;
    s->whole = cfg != NULL && cfg->whole_frames;
    size_t cap = 16;
    while (cap < s->window + 1) {
        cap *= 2;
    }
    s->ring = ch_calloc(cap, sizeof(*s->ring));
    s->mask = cap - 1;
    return s;
}

static void pkt_release(ch_media_stream_t *s, pkt_t *p)
{
    if (p->pooled) {
        p->free_next = s->free;
        s->free = p;
    } else {
        ch_free(p);
    }
}

void ch_media_stream_free(ch_media_stream_t *s)
{
    if (s == NULL) {
        return;
    }
    for (uint64_t n = s->base; n < s->head; n++) {
        ch_free(s->ring[n & s->mask]);
    }
    while (s->free != NULL) {
        pkt_t *p = s->free;
        s->free = p->free_next;
        ch_free(p);
    }
    ch_free(s->ring);
    ch_free(s);
}

uint64_t ch_media_stream_head(const ch_media_stream_t *s)
{
    return s->head;
}

uint64_t ch_media_stream_gop_start(const ch_media_stream_t *s)
{
    return s->have_gop ? s->gop_start : s->head;
}

size_t ch_media_stream_held(const ch_media_stream_t *s)
{
    return (size_t)(s->head - s->base);
}

size_t ch_media_stream_allocated(const ch_media_stream_t *s)
{
    return s->allocated;
}

size_t ch_media_stream_viewers(const ch_media_stream_t *s)
{
    return s->nviewers;
}

/* Moves a viewer that must not stay where it is (its packets are going) to the GOP start, at
 * a packet boundary; without a newer GOP, or on a second skip it has not written past, it is
 * doomed. */
static void force_skip(ch_media_stream_t *s, ch_media_viewer_t *v)
{
    uint64_t to = ch_media_stream_gop_start(s);
    if (to <= v->next || (v->skips > 0 && v->next <= v->skipped_to)) {
        v->doomed = 1;
        v->next = s->head;
        v->off = 0;
        return;
    }
    v->next = to;
    v->off = 0;
    v->skips++;
    v->skipped_to = to;
}

/* Frees packets no one needs: older than the GOP start and every viewer's cursor. */
static void trim(ch_media_stream_t *s)
{
    uint64_t low = ch_media_stream_gop_start(s);
    /* The access unit being received may still turn out to be a keyframe's. */
    if (s->au_start >= s->base && s->au_start < low) {
        low = s->au_start;
    }
    for (ch_media_viewer_t *v = s->viewers; v != NULL; v = v->next_v) {
        if (v->next < low) {
            low = v->next;
        }
    }
    while (s->base < low) {
        pkt_release(s, s->ring[s->base & s->mask]);
        s->ring[s->base & s->mask] = NULL;
        s->base++;
    }
}

/* The window is full: the oldest packet must go. Viewers still on it move or are doomed; a
 * GOP as long as the window is given up until the next keyframe. */
static void make_room(ch_media_stream_t *s)
{
    if (s->have_gop && s->gop_start == s->base) {
        s->have_gop = 0;
    }
    for (ch_media_viewer_t *v = s->viewers; v != NULL; v = v->next_v) {
        if (v->next == s->base && v->doomed) {
            v->next = s->head; /* not closed yet: it must not point at a released packet */
            v->off = 0;
        } else if (v->next == s->base) {
            if (v->off > 0 || v->held) {
                /* Half a frame written (or in flight): it cannot jump without breaking the
                 * stream, and a write in flight must stop reading the packet that goes. */
                v->doomed = 1;
                v->next = s->head;
                v->off = 0;
                if (v->held && v->lost != NULL) {
                    v->lost(v);
                }
            } else {
                force_skip(s, v);
            }
        }
    }
    pkt_release(s, s->ring[s->base & s->mask]);
    s->ring[s->base & s->mask] = NULL;
    s->base++;
}

/* Stores hl header bytes then len bytes as one packet. */
static int64_t store(ch_media_stream_t *s, const uint8_t *hdr, size_t hl, const uint8_t *data,
                     size_t len, unsigned flags)
{
    if (s->head - s->base >= s->window) {
        make_room(s);
    }
    pkt_t *p;
    if (len + hl <= s->pkt_bytes) {
        p = s->free;
        if (p != NULL) {
            s->free = p->free_next;
        } else {
            p = ch_malloc(sizeof(*p) + s->pkt_bytes);
            s->allocated++;
        }
        p->pooled = 1;
    } else {
        p = ch_malloc(sizeof(*p) + len + hl);
        s->allocated++;
        p->pooled = 0;
    }
    if (hl > 0) {
        memcpy(p->data, hdr, hl);
    }
    memcpy(p->data + hl, data, len);
    p->len = (uint32_t)(len + hl);
    p->cum = s->cum_head;
    s->cum_head += p->len;
    uint64_t n = s->head++;
    s->ring[n & s->mask] = p;
    if (flags & CH_MEDIA_AU_START) {
        s->au_start = n;
        s->ready = n; /* what came before is a whole access unit */
    }
    if (flags & CH_MEDIA_AU_END) {
        s->ready = n + 1;
    }
    if (flags & CH_MEDIA_KEYFRAME) {
        /* The cache starts at the keyframe's access unit, parameter sets included. */
        s->gop_start = s->au_start >= s->base && s->au_start <= n ? s->au_start : n;
        s->have_gop = 1;
    }
    /* Cheap enough once in a while; the window's limit is enforced on every push. */
    if ((n & 31) == 0 || (flags & CH_MEDIA_KEYFRAME)) {
        trim(s);
    }
    return (int64_t)n;
}

int64_t ch_media_stream_push(ch_media_stream_t *s, uint8_t channel, const uint8_t *rtp, size_t len,
                             unsigned flags)
{
    if (rtp == NULL || len == 0) {
        return CH_EINVAL;
    }
    if (len > CH_MEDIA_MAX_PACKET) {
        return CH_ETOOBIG;
    }
    uint8_t hdr[4] = {'$', channel, (uint8_t)(len >> 8), (uint8_t)len};
    return store(s, hdr, sizeof(hdr), rtp, len, flags);
}

int64_t ch_media_stream_push_message(ch_media_stream_t *s, const uint8_t *hdr, size_t hl,
                                     const uint8_t *data, size_t len, unsigned flags)
{
    if ((data == NULL && len > 0) || hl + len == 0) {
        return CH_EINVAL;
    }
    if (hl + len > CH_MEDIA_MAX_MESSAGE) {
        return CH_ETOOBIG;
    }
    return store(s, hdr, hl, data, len, flags);
}

void ch_media_stream_drop_partial(ch_media_stream_t *s)
{
    if (!s->whole) {
        return;
    }
    while (s->head > s->ready && s->head > s->base) {
        s->head--;
        pkt_t *p = s->ring[s->head & s->mask];
        s->cum_head -= p->len;
        pkt_release(s, p);
        s->ring[s->head & s->mask] = NULL;
    }
    if (s->au_start > s->head) {
        s->au_start = s->head;
    }
    if (s->have_gop && s->gop_start >= s->head) {
        s->have_gop = 0; /* its keyframe never came whole: wait for the next */
    }
    for (ch_media_viewer_t *v = s->viewers; v != NULL; v = v->next_v) {
        if (v->next > s->head) {
            v->next = s->head;
            v->off = 0;
        }
    }
}

void ch_media_viewer_join(ch_media_stream_t *s, ch_media_viewer_t *v, size_t budget)
{
    memset(v, 0, sizeof(*v));
    v->stream = s;
    v->budget = budget;
    v->next = ch_media_stream_gop_start(s);
    v->wait_key = !s->have_gop;
    v->next_v = s->viewers;
    if (s->viewers != NULL) {
        s->viewers->prev_v = v;
    }
    s->viewers = v;
    s->nviewers++;
}

void ch_media_viewer_leave(ch_media_viewer_t *v)
{
    ch_media_stream_t *s = v->stream;
    if (s == NULL) {
        return;
    }
    if (v->prev_v != NULL) {
        v->prev_v->next_v = v->next_v;
    } else {
        s->viewers = v->next_v;
    }
    if (v->next_v != NULL) {
        v->next_v->prev_v = v->prev_v;
    }
    s->nviewers--;
    v->stream = NULL;
    trim(s);
}

size_t ch_media_viewer_lag(const ch_media_viewer_t *v)
{
    const ch_media_stream_t *s = v->stream;
    if (s == NULL || v->next >= s->head || v->next < s->base) {
        return 0;
    }
    const pkt_t *p = s->ring[v->next & s->mask];
    return (size_t)(s->cum_head - p->cum - v->off);
}

size_t ch_media_viewer_iov(ch_media_viewer_t *v, struct iovec *iov, size_t max, size_t *bytes)
{
    ch_media_stream_t *s = v->stream;
    *bytes = 0;
    if (s == NULL || v->doomed || max == 0) {
        return 0;
    }
    if (v->wait_key) {
        if (!s->have_gop) {
            v->next = s->whole ? s->ready : s->head; /* holds nothing while it waits */
            return 0;
        }
        v->next = s->gop_start;
        v->wait_key = 0;
    }
    if (v->off == 0 && ch_media_viewer_lag(v) > v->budget) {
        force_skip(s, v); /* only at a packet boundary: frames must stay whole */
        if (v->doomed) {
            return 0;
        }
    }
    if (v->next < s->base) { /* only a stream without frame boundaries gets here */
        v->next = s->base;
        v->off = 0;
    }
    size_t k = 0;
    uint64_t lim = s->whole ? s->ready : s->head;
    for (uint64_t n = v->next; n < lim && k < max; n++) {
        pkt_t *p = s->ring[n & s->mask];
        size_t skip = n == v->next ? v->off : 0;
        iov[k].iov_base = p->data + skip;
        iov[k].iov_len = p->len - skip;
        *bytes += iov[k].iov_len;
        k++;
    }
    return k;
}

void ch_media_viewer_advance(ch_media_viewer_t *v, size_t n)
{
    ch_media_stream_t *s = v->stream;
    v->bytes += n;
    while (s != NULL && n > 0 && v->next < s->head) {
        pkt_t *p = s->ring[v->next & s->mask];
        size_t rem = p->len - v->off;
        if (n >= rem) {
            n -= rem;
            v->next++;
            v->off = 0;
        } else {
            v->off += n;
            n = 0;
        }
    }
}
