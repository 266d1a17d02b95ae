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

char *ch_registry__arena_numbered(ch_registry__arena_t *a, const char *s, size_t n, const char *sep,
                                  size_t num)
{
    char digits[24];
    size_t d = sizeof(digits);
    do {
        digits[--d] = (char)('0' + num % 10);
        num /= 10;
    } while (num > 0);
    size_t sl = strlen(sep);
    char *p = ch_registry__arena_alloc(a, n + sl + (sizeof(digits) - d) + 1);
    memcpy(p, s, n);
    memcpy(p + n, sep, sl);
    memcpy(p + n + sl, digits + d, sizeof(digits) - d);
    p[n + sl + sizeof(digits) - d] = '\0';
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

/* ---- map ------------------------------------------------------------------------------- */

/* Sixteen bytes a slot, so four share a cache line: the maps of a national file hold a
 * quarter of a million keys each and are probed at random. 96 bits of the hash are kept (the
 * chance of a false "duplicate" among a million rows is about 2^-57); a == 0 marks a free slot,
 * so stored keys have their lowest bit set. */
struct ch_registry__map_slot {
    uint64_t a;
    uint32_t b;
    int value;
};

void ch_registry__map_fini(ch_registry__map_t *m)
{
    ch_table_free(m->slots, m->cap * sizeof(*m->slots));
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

static struct ch_registry__map_slot *ch_registry__map_probe(struct ch_registry__map_slot *slots,
                                                            size_t cap, uint64_t a, uint32_t b)
{
    size_t i = (size_t)(a >> 1) & (cap - 1);
    while (slots[i].a != 0 && (slots[i].a != a || slots[i].b != b)) {
        i = (i + 1) & (cap - 1);
    }
    return &slots[i];
}

/* Sets the table to cap slots (a power of two), moving what it holds. Memory for it is asked
 * with ch_table_alloc (huge pages for a national file's tables, and NULL rather than an abort
 * when memory is short: an import must fail gracefully, not take the daemon down). */
static int ch_registry__map_resize(ch_registry__map_t *m, size_t cap)
{
    struct ch_registry__map_slot *slots = ch_table_alloc(cap * sizeof(*slots));
    if (slots == NULL) {
        return CH_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].a != 0) {
            *ch_registry__map_probe(slots, cap, m->slots[i].a, m->slots[i].b) = m->slots[i];
        }
    }
    ch_table_free(m->slots, m->cap * sizeof(*m->slots));
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int ch_registry__map_reserve(ch_registry__map_t *m, size_t n)
{
    size_t cap = 1024;
    while (cap < 2 * n) {
        cap *= 2;
    }
    return cap > m->cap ? ch_registry__map_resize(m, cap) : 0;
}

int *ch_registry__map_upsert(ch_registry__map_t *m, ch_registry__h128_t key, int init, int *found)
{
    /* Kept at most half full, so probes stay short. */
    if ((m->count + 1) * 2 > m->cap &&
        ch_registry__map_resize(m, m->cap ? m->cap * 2 : 1024) != 0) {
        return NULL;
    }
    uint64_t a = key.a | 1;
    uint32_t b = (uint32_t)key.b;
    struct ch_registry__map_slot *s = ch_registry__map_probe(m->slots, m->cap, a, b);
    if (s->a != 0) {
        *found = 1;
        return &s->value;
    }
    s->a = a;
    s->b = b;
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

/* Whether byte c may begin a whitespace character that normalisation changes. */
static int ch_registry__maybe_space(unsigned char c)
{
    return c <= ' ' || c == 0xe3 || c == 0xc2 || c == 0xef;
}

/*
 * One pass, writing behind reading, so it never allocates. Most cells need nothing (no
 * padding, single inner spaces): they are only scanned, one comparison a byte.
 */
char *ch_registry__normalize_cell(char *s, size_t *len)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = *len;
    if (n == 0) {
        return s;
    }
    if (!ch_registry__maybe_space(p[0]) && !ch_registry__maybe_space(p[n - 1])) {
        size_t i = 1;
        for (; i + 1 < n; i++) {
            unsigned char c = p[i];
            if (ch_registry__maybe_space(c) && (c != ' ' || p[i + 1] == ' ')) {
                break;
            }
        }
        if (i + 1 >= n) {
            return s; /* already normal */
        }
    }
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
    size_t rem = n - r;
    size_t i = 0;
    while (i < rem) {
        unsigned char c = start[i];
        size_t k = ch_registry__maybe_space(c) ? ch_registry__space_len(start + i, rem - i) : 0;
        if (k) {
            pending_space = 1;
            i += k;
            continue;
        }
        if (pending_space) {
            start[w++] = ' ';
            pending_space = 0;
        }
        start[w++] = c;
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
