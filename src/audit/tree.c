/*
 * The Merkle tree of RFC 9162 section 2.1: hashes, the in-memory tree, proofs and their pure
 * verification.
 */
#include "audit/audit_internal.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

void ch_audit_leaf_hash(const void *data, size_t len, uint8_t out[CH_AUDIT_HASH_SIZE])
{
    crypto_hash_sha256_state st;
    static const uint8_t prefix = 0x00;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, &prefix, 1);
    crypto_hash_sha256_update(&st, data, len);
    crypto_hash_sha256_final(&st, out);
}

void ch_audit_node_hash(const uint8_t left[CH_AUDIT_HASH_SIZE],
                        const uint8_t right[CH_AUDIT_HASH_SIZE], uint8_t out[CH_AUDIT_HASH_SIZE])
{
    /* One contiguous input is faster than three updates for 65 bytes. */
    uint8_t in[1 + 2 * CH_AUDIT_HASH_SIZE];
    in[0] = 0x01;
    memcpy(in + 1, left, CH_AUDIT_HASH_SIZE);
    memcpy(in + 1 + CH_AUDIT_HASH_SIZE, right, CH_AUDIT_HASH_SIZE);
    crypto_hash_sha256(out, in, sizeof(in));
}

/* The largest power of two strictly smaller than n (n >= 2), the split point RFC 9162 uses. */
static uint64_t split_point(uint64_t n)
{
    uint64_t k = 1;
    while (k << 1 < n) {
        k <<= 1;
    }
    return k;
}

void ch_audit__tree_init(ch_audit__tree_t *t)
{
    memset(t, 0, sizeof(*t));
}

void ch_audit__tree_fini(ch_audit__tree_t *t)
{
    for (int h = 0; h < 64; h++) {
        ch_free(t->level[h]);
    }
    memset(t, 0, sizeof(*t));
}

/* Stores hash as entry i of level h, growing the level by doubling. */
static void level_put(ch_audit__tree_t *t, int h, uint64_t i, const uint8_t *hash)
{
    if (i >= t->cap[h]) {
        uint64_t cap = t->cap[h] ? t->cap[h] * 2 : (h == 0 ? 1024 : 512);
        while (cap <= i) {
            cap *= 2;
        }
        t->level[h] = ch_realloc(t->level[h], cap * CH_AUDIT_HASH_SIZE);
        t->cap[h] = cap;
    }
    memcpy(t->level[h][i], hash, CH_AUDIT_HASH_SIZE);
}

/* Adds a leaf, then every perfect subtree the leaf completes: for a new size n, the subtree at
 * level h + 1 is complete for each trailing zero bit h of n. */
void ch_audit__tree_append(ch_audit__tree_t *t, const uint8_t leaf[CH_AUDIT_HASH_SIZE])
{
    level_put(t, 0, t->size, leaf);
    uint64_t n = ++t->size;
    for (int h = 0; h < 63 && ((n >> h) & 1) == 0; h++) {
        uint64_t parent = (n >> (h + 1)) - 1;
        uint8_t hash[CH_AUDIT_HASH_SIZE];
        ch_audit_node_hash(t->level[h][2 * parent], t->level[h][2 * parent + 1], hash);
        level_put(t, h + 1, parent, hash);
    }
}

/* Hands one thread's share of a ch_audit__parallel call to its function. */
typedef struct parallel_part {
    void (*fn)(void *ctx, size_t lo, size_t hi);
    void *ctx;
    size_t lo, hi;
} parallel_part_t;

static void *parallel_main(void *arg)
{
    parallel_part_t *p = arg;
    p->fn(p->ctx, p->lo, p->hi);
    return NULL;
}

/* At most this many threads: verification is bound by SHA-256, so more threads than cores
 * only add switches, and a laptop rarely has more than 8. */
#define PARALLEL_MAX 8

void ch_audit__parallel(size_t n, size_t min_per_thread,
                        void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = cores > 1 ? (size_t)cores : 1;
    if (threads > PARALLEL_MAX) {
        threads = PARALLEL_MAX;
    }
    if (min_per_thread == 0) {
        min_per_thread = 1;
    }
    if (threads > n / min_per_thread) {
        threads = n / min_per_thread;
    }
    if (threads <= 1) {
        if (n > 0) {
            fn(ctx, 0, n);
        }
        return;
    }
    parallel_part_t part[PARALLEL_MAX];
    pthread_t tid[PARALLEL_MAX];
    int started[PARALLEL_MAX] = {0};
    for (size_t i = 0; i < threads; i++) {
        part[i] = (parallel_part_t){fn, ctx, n * i / threads, n * (i + 1) / threads};
    }
    /* Part 0 runs on the calling thread; a part whose thread cannot start runs here too, so a
     * failed pthread_create costs time, never a result. */
    for (size_t i = 1; i < threads; i++) {
        started[i] = pthread_create(&tid[i], NULL, parallel_main, &part[i]) == 0;
    }
    fn(ctx, part[0].lo, part[0].hi);
    for (size_t i = 1; i < threads; i++) {
        if (started[i]) {
            pthread_join(tid[i], NULL);
        } else {
            fn(ctx, part[i].lo, part[i].hi);
        }
    }
}

/* One level of ch_audit__tree_append_many: parents [first + lo, first + hi) of level h + 1. */
typedef struct level_job {
    ch_audit__tree_t *t;
    int h;
    uint64_t first;
} level_job_t;

static void level_range(void *ctx, size_t lo, size_t hi)
{
    level_job_t *j = ctx;
    for (size_t k = lo; k < hi; k++) {
        uint64_t i = j->first + k;
        ch_audit_node_hash(j->t->level[j->h][2 * i], j->t->level[j->h][2 * i + 1],
                           j->t->level[j->h + 1][i]);
    }
}

/* Grows level h to hold at least n entries. */
static void level_reserve(ch_audit__tree_t *t, int h, uint64_t n)
{
    if (n > t->cap[h]) {
        uint64_t cap = t->cap[h] ? t->cap[h] * 2 : (h == 0 ? 1024 : 512);
        while (cap < n) {
            cap *= 2;
        }
        t->level[h] = ch_realloc(t->level[h], cap * CH_AUDIT_HASH_SIZE);
        t->cap[h] = cap;
    }
}

/* The same tree as n calls of ch_audit__tree_append, built level by level so that the parent
 * hashes of one level, which are independent of each other, can be computed on every core. */
void ch_audit__tree_append_many(ch_audit__tree_t *t, const uint8_t (*leaves)[CH_AUDIT_HASH_SIZE],
                                uint64_t n)
{
    if (n == 0) {
        return;
    }
    uint64_t old = t->size, size = old + n;
    level_reserve(t, 0, size);
    memcpy(t->level[0][old], leaves, n * CH_AUDIT_HASH_SIZE);
    for (int h = 0; h < 63 && (size >> (h + 1)) > 0; h++) {
        uint64_t from = old >> (h + 1), to = size >> (h + 1);
        if (to == from) {
            continue;
        }
        level_reserve(t, h + 1, to);
        level_job_t job = {t, h, from};
        ch_audit__parallel(to - from, 4096, level_range, &job);
    }
    t->size = size;
}

const uint8_t *ch_audit__tree_leaf(const ch_audit__tree_t *t, uint64_t i)
{
    assert(i < t->size);
    return t->level[0][i];
}

/* MTH(D[lo:hi]) for a range the RFC 9162 recursion produces. Such a range starts at a multiple
 * of its split point, so the left part is always a stored perfect subtree and the recursion
 * goes down the right edge only: O(log n). Requires lo < hi <= size. */
static void subtree_hash(const ch_audit__tree_t *t, uint64_t lo, uint64_t hi, uint8_t *out)
{
    uint64_t n = hi - lo;
    if ((n & (n - 1)) == 0 && lo % n == 0) {
        int h = __builtin_ctzll(n);
        memcpy(out, t->level[h][lo >> h], CH_AUDIT_HASH_SIZE);
        return;
    }
    uint64_t k = split_point(n);
    uint8_t left[CH_AUDIT_HASH_SIZE], right[CH_AUDIT_HASH_SIZE];
    subtree_hash(t, lo, lo + k, left);
    subtree_hash(t, lo + k, hi, right);
    ch_audit_node_hash(left, right, out);
}

int ch_audit__tree_root(const ch_audit__tree_t *t, uint64_t size, uint8_t out[CH_AUDIT_HASH_SIZE])
{
    if (size > t->size) {
        return CH_EINVAL;
    }
    if (size == 0) {
        crypto_hash_sha256(out, (const uint8_t *)"", 0);
        return 0;
    }
    subtree_hash(t, 0, size, out);
    return 0;
}

static void proof_push(ch_audit_proof_t *p, const uint8_t *hash)
{
    assert(p->count < CH_AUDIT_PROOF_MAX);
    memcpy(p->hash[p->count++], hash, CH_AUDIT_HASH_SIZE);
}

/* PATH(m, D[lo:hi]) of RFC 9162 section 2.1.3.1, in leaf-to-root order: the recursion pushes
 * the sibling of each level after the deeper levels. */
static void inclusion_path(const ch_audit__tree_t *t, uint64_t m, uint64_t lo, uint64_t hi,
                           ch_audit_proof_t *p)
{
    if (hi - lo <= 1) {
        return;
    }
    uint64_t k = split_point(hi - lo);
    uint8_t h[CH_AUDIT_HASH_SIZE];
    if (m < lo + k) {
        inclusion_path(t, m, lo, lo + k, p);
        subtree_hash(t, lo + k, hi, h);
    } else {
        inclusion_path(t, m, lo + k, hi, p);
        subtree_hash(t, lo, lo + k, h);
    }
    proof_push(p, h);
}

int ch_audit__tree_inclusion(const ch_audit__tree_t *t, uint64_t index, uint64_t size,
                             ch_audit_proof_t *proof)
{
    proof->count = 0;
    if (index >= size || size > t->size) {
        return CH_EINVAL;
    }
    inclusion_path(t, index, 0, size, proof);
    return 0;
}

/* SUBPROOF(m, D[lo:hi], b) of RFC 9162 section 2.1.4.1; m counts leaves from lo. */
static void consistency_subproof(const ch_audit__tree_t *t, uint64_t m, uint64_t lo, uint64_t hi,
                                 int b, ch_audit_proof_t *p)
{
    uint64_t n = hi - lo;
    uint8_t h[CH_AUDIT_HASH_SIZE];
    if (m == n) {
        if (!b) {
            subtree_hash(t, lo, hi, h);
            proof_push(p, h);
        }
        return;
    }
    uint64_t k = split_point(n);
    if (m <= k) {
        consistency_subproof(t, m, lo, lo + k, b, p);
        subtree_hash(t, lo + k, hi, h);
    } else {
        consistency_subproof(t, m - k, lo + k, hi, 0, p);
        subtree_hash(t, lo, lo + k, h);
    }
    proof_push(p, h);
}

int ch_audit__tree_consistency(const ch_audit__tree_t *t, uint64_t size1, uint64_t size2,
                               ch_audit_proof_t *proof)
{
    proof->count = 0;
    if (size1 == 0 || size1 > size2 || size2 > t->size) {
        return CH_EINVAL;
    }
    if (size1 < size2) {
        consistency_subproof(t, size1, 0, size2, 1, proof);
    }
    return 0;
}

/* RFC 9162 section 2.1.3.2, step by step; the names fn, sn and r are the RFC's. */
int ch_audit_verify_inclusion(const uint8_t leaf_hash[CH_AUDIT_HASH_SIZE], uint64_t index,
                              uint64_t size, const ch_audit_proof_t *proof,
                              const uint8_t root[CH_AUDIT_HASH_SIZE])
{
    if (index >= size || proof->count > CH_AUDIT_PROOF_MAX) {
        return CH_EPARSE;
    }
    uint64_t fn = index, sn = size - 1;
    uint8_t r[CH_AUDIT_HASH_SIZE];
    memcpy(r, leaf_hash, CH_AUDIT_HASH_SIZE);
    for (size_t i = 0; i < proof->count; i++) {
        const uint8_t *p = proof->hash[i];
        if (sn == 0) {
            return CH_EPARSE;
        }
        if ((fn & 1) || fn == sn) {
            ch_audit_node_hash(p, r, r);
            if (!(fn & 1)) {
                while (fn != 0 && !(fn & 1)) {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            ch_audit_node_hash(r, p, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(r, root, CH_AUDIT_HASH_SIZE) != 0) {
        return CH_EPARSE;
    }
    return 0;
}

/* RFC 9162 section 2.1.4.2, step by step; fn, sn, fr and sr are the RFC's names. Equal sizes
 * and an empty first tree are decided before, since the RFC's algorithm covers
 * 0 < size1 < size2 only. */
int ch_audit_verify_consistency(uint64_t size1, uint64_t size2,
                                const uint8_t root1[CH_AUDIT_HASH_SIZE],
                                const uint8_t root2[CH_AUDIT_HASH_SIZE],
                                const ch_audit_proof_t *proof)
{
    if (size1 > size2 || proof->count > CH_AUDIT_PROOF_MAX) {
        return CH_EPARSE;
    }
    if (size1 == size2) {
        return proof->count == 0 && sodium_memcmp(root1, root2, CH_AUDIT_HASH_SIZE) == 0
                   ? 0
                   : CH_EPARSE;
    }
    if (size1 == 0) {
        return proof->count == 0 ? 0 : CH_EPARSE;
    }
    if (proof->count == 0) {
        return CH_EPARSE;
    }
    /* Step 2: when size1 is a power of two its root is the first node of the path, implied. */
    const uint8_t *first;
    size_t i = 0;
    if ((size1 & (size1 - 1)) == 0) {
        first = root1;
    } else {
        first = proof->hash[0];
        i = 1;
    }
    uint64_t fn = size1 - 1, sn = size2 - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    uint8_t fr[CH_AUDIT_HASH_SIZE], sr[CH_AUDIT_HASH_SIZE];
    memcpy(fr, first, CH_AUDIT_HASH_SIZE);
    memcpy(sr, first, CH_AUDIT_HASH_SIZE);
    for (; i < proof->count; i++) {
        const uint8_t *c = proof->hash[i];
        if (sn == 0) {
            return CH_EPARSE;
        }
        if ((fn & 1) || fn == sn) {
            ch_audit_node_hash(c, fr, fr);
            ch_audit_node_hash(c, sr, sr);
            while (fn != 0 && !(fn & 1)) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            ch_audit_node_hash(sr, c, sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0 || sodium_memcmp(fr, root1, CH_AUDIT_HASH_SIZE) != 0 ||
        sodium_memcmp(sr, root2, CH_AUDIT_HASH_SIZE) != 0) {
        return CH_EPARSE;
    }
    return 0;
}
