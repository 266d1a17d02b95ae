/*
 * registry utilities: the per-row arena, hashes and the hash map used for duplicate detection
 * and source keys, cell normalisation and small number/date readers.
 */
#include "registry/registry_private.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------------------ */

struct ch_registry__block {
    ch_registry__block_t *next;
    size_t cap;
    size_t used;
    char data[];
};

#define CH_REGISTRY__BLOCK_SIZE (64 * 1024)

void ch_registry__arena_reset(ch_registry__arena_t *a)
{
    for (ch_registry__block_t *b = a->head; b != NULL; b = b->next) {
        b->used = 0;
    }
    a->cur = a->head;
}

void ch_registry__arena_fini(ch_registry__arena_t *a)
{
    ch_registry__block_t *b = a->head;
    while (b != NULL) {
        ch_registry__block_t *next = b->next;
        ch_free(b);
        b = next;
    }
    a->head = NULL;
    a->cur = NULL;
}

/*
 * Returns n bytes aligned for any scalar. Walks on to the next kept block when the current one
 * is full, and links a new block (at least 64 KiB) after the current one when none fits, so
 * earlier allocations of the row stay where they are.
 */
char *ch_registry__arena_alloc(ch_registry__arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    while (a->cur != NULL && a->cur->cap - a->cur->used < n && a->cur->next != NULL) {
        a->cur = a->cur->next;
    }
    if (a->cur == NULL || a->cur->cap - a->cur->used < n) {
        size_t cap = n > CH_REGISTRY__BLOCK_SIZE ? n : CH_REGISTRY__BLOCK_SIZE;
        ch_registry__block_t *b = ch_malloc(sizeof(*b) + cap);
        b->cap = cap;
        b->used = 0;
        if (a->cur == NULL) {
            b->next = a->head;
            a->head = b;
        } else {
            b->next = a->cur->next;
            a->cur->next = b;
        }
        a->cur = b;
    }
    char *p = a->cur->data + a->cur->used;
    a->cur->used += n;
    return p;
}

char *ch_registry__arena_strndup(ch_registry__arena_t *a, const char *s, size_t n)
{
    char *p = ch_registry__arena_alloc(a, n + 1);
    if (n) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

char *ch_registry__arena_printf(ch_registry__arena_t *a, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return ch_registry__arena_strndup(a, "", 0);
    }
    if ((size_t)n < sizeof(small)) {
        return ch_registry__arena_strndup(a, small, (size_t)n);
    }
    char *p = ch_registry__arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ---- hashing ---------------------------------------------------------------------------- */

uint64_t ch_registry__fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t ch_registry__mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/*
 * Eight bytes at a time into two lanes with different multipliers, finalised with the
 * MurmurHash3 mixer. Only compared within one process, so byte order does not matter.
 */
void ch_registry__hash128(const void *p, size_t n, ch_registry__h128_t *out)
{
    const unsigned char *s = p;
    uint64_t a = 0x9e3779b97f4a7c15ULL ^ n;
    uint64_t b = 0xc2b2ae3d27d4eb4fULL ^ (n * 0x165667b19e3779f9ULL);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        a = (a ^ ch_registry__mix64(w)) * 0x87c37b91114253d5ULL;
        a = (a << 31) | (a >> 33);
        b = (b ^ (w * 0x4cf5ad432745937fULL)) * 0x52dce729ULL;
        b = (b << 27) | (b >> 37);
    }
    uint64_t w = 0;
    if (i < n) {
        memcpy(&w, s + i, n - i);
    }
    a ^= ch_registry__mix64(w ^ 0x5bd1e995ULL);
    b ^= w * 0x9e3779b97f4a7c15ULL;
    out->a = ch_registry__mix64(a + b);
    out->b = ch_registry__mix64(b ^ (a >> 7) ^ 0x27d4eb2f165667c5ULL);
}

/* ---- map -------------------------------------------------------------------------------- */

struct ch_registry__map_slot {
    uint64_t a, b;
    int value;
    int used;
};

void ch_registry__map_fini(ch_registry__map_t *m)
{
    ch_free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

static struct ch_registry__map_slot *ch_registry__map_probe(struct ch_registry__map_slot *slots,
                                                            size_t cap, ch_registry__h128_t key)
{
    size_t i = (size_t)key.a & (cap - 1);
    while (slots[i].used && (slots[i].a != key.a || slots[i].b != key.b)) {
        i = (i + 1) & (cap - 1);
    }
    return &slots[i];
}

/* Doubles the table (kept at most half full, so probes stay short). Memory for it is asked
 * with ch_try_malloc: a national file makes a large table, and an import must fail
 * gracefully rather than abort the daemon. */
static int ch_registry__map_grow(ch_registry__map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    struct ch_registry__map_slot *slots = ch_try_malloc(cap * sizeof(*slots));
    if (slots == NULL) {
        return CH_ENOMEM;
    }
    memset(slots, 0, cap * sizeof(*slots));
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].used) {
            ch_registry__h128_t k = {m->slots[i].a, m->slots[i].b};
            *ch_registry__map_probe(slots, cap, k) = m->slots[i];
        }
    }
    ch_free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int *ch_registry__map_upsert(ch_registry__map_t *m, ch_registry__h128_t key, int init, int *found)
{
    if ((m->count + 1) * 2 > m->cap && ch_registry__map_grow(m) != 0) {
        return NULL;
    }
    struct ch_registry__map_slot *s = ch_registry__map_probe(m->slots, m->cap, key);
    if (s->used) {
        *found = 1;
        return &s->value;
    }
    s->used = 1;
    s->a = key.a;
    s->b = key.b;
    s->value = init;
    m->count++;
    *found = 0;
    return &s->value;
}

/* ---- text ------------------------------------------------------------------------------- */

/* The length of the whitespace character at s (within n bytes), or 0. */
static size_t ch_registry__space_len(const unsigned char *s, size_t n)
{
    if (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n' || s[0] == '\v' ||
        s[0] == '\f') {
        return 1;
    }
    if (s[0] < 0x80) {
        return 0;
    }
    if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) { /* U+3000 */
        return 3;
    }
    if (n >= 2 && s[0] == 0xc2 && s[1] == 0xa0) { /* U+00A0 */
        return 2;
    }
    if (n >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) { /* U+FEFF */
        return 3;
    }
    return 0;
}

/* One pass, writing behind reading, so it never allocates. */
char *ch_registry__normalize_cell(char *s, size_t *len)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = *len;
    size_t r = 0;
    while (r < n) {
        size_t k = ch_registry__space_len(p + r, n - r);
        if (k == 0) {
            break;
        }
        r += k;
    }
    size_t w = 0;
    int pending_space = 0;
    unsigned char *start = p + r;
    unsigned char *out = start;
    size_t rem = n - r;
    size_t i = 0;
    while (i < rem) {
        unsigned char c = start[i];
        size_t k = ch_registry__space_len(start + i, rem - i);
        if (k) {
            pending_space = 1;
            i += k;
            continue;
        }
        if (pending_space) {
            out[w++] = ' ';
            pending_space = 0;
        }
        out[w++] = c;
        i++;
    }
    if (start + w < p + n) {
        start[w] = '\0';
    }
    *len = w;
    return (char *)start;
}

void ch_registry__append_clipped(ch_buf_t *b, const char *s, size_t n, size_t max)
{
    if (n <= max) {
        ch_buf_append(b, s, n);
        return;
    }
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut--;
    }
    ch_buf_append(b, s, cut);
    ch_buf_append_str(b, "...");
}

/*
 * Digits with optional thousands separators: "83,557" is 83557, "1,2" is refused (a comma
 * that does not separate a group of three is a decimal comma or a typo, not a count).
 */
int ch_registry__parse_count(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 24) {
        return CH_EPARSE;
    }
    char digits[32];
    size_t d = 0;
    size_t group = 0;
    int seen_comma = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digits[d++] = c;
            group++;
        } else if (c == ',' && d > 0 && (!seen_comma || group == 3)) {
            if (!seen_comma && group > 3) {
                return CH_EPARSE;
            }
            seen_comma = 1;
            group = 0;
        } else {
            return CH_EPARSE;
        }
    }
    if (d == 0 || (seen_comma && group != 3)) {
        return CH_EPARSE;
    }
    return ch_parse_int64(digits, d, out);
}
