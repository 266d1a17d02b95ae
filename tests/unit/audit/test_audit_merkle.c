/*
 * Unit tests of the audit Merkle tree: the RFC 6962 reference vectors (the 8-leaf tree of
 * certificate-transparency's tests: roots for sizes 0..8, inclusion and consistency paths),
 * and every proof of every tree up to 70 leaves checked against a naive implementation of
 * RFC 9162 section 2.1 written here from the RFC's recursive definitions, then verified, and
 * rejected once corrupted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_internal.h"

static const char *const ref_leaves_hex[8] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};

static const char *const ref_roots_hex[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

#define H_96A2 "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
#define H_5F08 "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
#define H_6B47 "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
#define H_BC1A "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
#define H_CA85 "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
#define H_D37E "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
#define H_0EBC "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
#define H_FAC5 "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
#define H_6E34 "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"

typedef struct ref_proof {
    uint64_t a, b; /* index and size, or size1 and size2 */
    size_t count;
    const char *hex[4];
} ref_proof_t;

static const ref_proof_t ref_inclusion[] = {
    {0, 1, 0, {NULL}},   {0, 8, 3, {H_96A2, H_5F08, H_6B47}}, {5, 8, 3, {H_BC1A, H_CA85, H_D37E}},
    {2, 3, 1, {H_FAC5}}, {1, 5, 3, {H_6E34, H_5F08, H_BC1A}},
};

static const ref_proof_t ref_consistency[] = {
    {1, 1, 0, {NULL}},
    {1, 8, 3, {H_96A2, H_5F08, H_6B47}},
    {6, 8, 3, {H_0EBC, H_CA85, H_D37E}},
    {2, 5, 2, {H_5F08, H_BC1A}},
    {2, 8, 2, {H_5F08, H_6B47}},
};

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
    return n;
}

static void ref_tree(ch_audit__tree_t *t, size_t n)
{
    ch_audit__tree_init(t);
    for (size_t i = 0; i < n; i++) {
        uint8_t data[16], h[32];
        size_t len = unhex(ref_leaves_hex[i], data);
        ch_audit_leaf_hash(data, len, h);
        ch_audit__tree_append(t, h);
    }
}

static void test_roots_match_rfc6962_reference_for_sizes_0_to_8(void **state)
{
    (void)state;
    ch_audit__tree_t t;
    ref_tree(&t, 8);
    for (uint64_t n = 0; n <= 8; n++) {
        uint8_t want[32], got[32];
        unhex(ref_roots_hex[n], want);
        assert_int_equal(ch_audit__tree_root(&t, n, got), 0);
        assert_memory_equal(got, want, 32);
    }
    uint8_t r[32];
    assert_int_equal(ch_audit__tree_root(&t, 9, r), CH_EINVAL);
    ch_audit__tree_fini(&t);
}

static void check_ref_proofs(const ref_proof_t *cases, size_t ncases, int consistency)
{
    ch_audit__tree_t t;
    ref_tree(&t, 8);
    for (size_t c = 0; c < ncases; c++) {
        const ref_proof_t *rp = &cases[c];
        ch_audit_proof_t p;
        if (consistency) {
            assert_int_equal(ch_audit__tree_consistency(&t, rp->a, rp->b, &p), 0);
        } else {
            assert_int_equal(ch_audit__tree_inclusion(&t, rp->a, rp->b, &p), 0);
        }
        assert_int_equal(p.count, rp->count);
        for (size_t i = 0; i < rp->count; i++) {
            uint8_t want[32];
            unhex(rp->hex[i], want);
            assert_memory_equal(p.hash[i], want, 32);
        }
        uint8_t r1[32], r2[32];
        assert_int_equal(ch_audit__tree_root(&t, rp->a, r1), 0);
        assert_int_equal(ch_audit__tree_root(&t, rp->b, r2), 0);
        if (consistency) {
            assert_int_equal(ch_audit_verify_consistency(rp->a, rp->b, r1, r2, &p), 0);
        } else {
            assert_int_equal(
                ch_audit_verify_inclusion(ch_audit__tree_leaf(&t, rp->a), rp->a, rp->b, &p, r2), 0);
        }
    }
    ch_audit__tree_fini(&t);
}

static void test_inclusion_paths_match_rfc6962_reference(void **state)
{
    (void)state;
    check_ref_proofs(ref_inclusion, CH_ARRAY_SIZE(ref_inclusion), 0);
}

static void test_consistency_paths_match_rfc6962_reference(void **state)
{
    (void)state;
    check_ref_proofs(ref_consistency, CH_ARRAY_SIZE(ref_consistency), 1);
}

/* ---- a naive implementation, straight from the RFC's definitions ----------------------- */

static uint64_t naive_k(uint64_t n)
{
    uint64_t k = 1;
    while (k * 2 < n) {
        k *= 2;
    }
    return k;
}

/* MTH(D[lo:hi]) by plain recursion over the leaf hashes, no stored levels. */
static void naive_mth(uint8_t (*leaf)[32], uint64_t lo, uint64_t hi, uint8_t *out)
{
    if (hi - lo == 1) {
        memcpy(out, leaf[lo], 32);
        return;
    }
    uint64_t k = naive_k(hi - lo);
    uint8_t l[32], r[32];
    naive_mth(leaf, lo, lo + k, l);
    naive_mth(leaf, lo + k, hi, r);
    ch_audit_node_hash(l, r, out);
}

static void naive_path(uint8_t (*leaf)[32], uint64_t m, uint64_t lo, uint64_t hi,
                       ch_audit_proof_t *p)
{
    if (hi - lo == 1) {
        return;
    }
    uint64_t k = naive_k(hi - lo);
    if (m < k) {
        naive_path(leaf, m, lo, lo + k, p);
        naive_mth(leaf, lo + k, hi, p->hash[p->count++]);
    } else {
        naive_path(leaf, m - k, lo + k, hi, p);
        naive_mth(leaf, lo, lo + k, p->hash[p->count++]);
    }
}

static void naive_subproof(uint8_t (*leaf)[32], uint64_t m, uint64_t lo, uint64_t hi, int b,
                           ch_audit_proof_t *p)
{
    uint64_t n = hi - lo;
    if (m == n) {
        if (!b) {
            naive_mth(leaf, lo, hi, p->hash[p->count++]);
        }
        return;
    }
    uint64_t k = naive_k(n);
    if (m <= k) {
        naive_subproof(leaf, m, lo, lo + k, b, p);
        naive_mth(leaf, lo + k, hi, p->hash[p->count++]);
    } else {
        naive_subproof(leaf, m - k, lo + k, hi, 0, p);
        naive_mth(leaf, lo, lo + k, p->hash[p->count++]);
    }
}

#define NAIVE_MAX 70

static void test_every_proof_up_to_70_leaves_matches_naive_rfc_and_verifies(void **state)
{
    (void)state;
    static uint8_t leaf[NAIVE_MAX][32];
    ch_audit__tree_t t;
    ch_audit__tree_init(&t);
    for (int i = 0; i < NAIVE_MAX; i++) {
        uint8_t data[2] = {(uint8_t)i, (uint8_t)(i * 7)};
        ch_audit_leaf_hash(data, sizeof(data), leaf[i]);
        ch_audit__tree_append(&t, leaf[i]);
    }
    ch_audit_proof_t p, q;
    for (uint64_t n = 1; n <= NAIVE_MAX; n++) {
        uint8_t root[32], want[32];
        assert_int_equal(ch_audit__tree_root(&t, n, root), 0);
        naive_mth(leaf, 0, n, want);
        assert_memory_equal(root, want, 32);
        for (uint64_t i = 0; i < n; i++) {
            assert_int_equal(ch_audit__tree_inclusion(&t, i, n, &p), 0);
            q.count = 0;
            naive_path(leaf, i, 0, n, &q);
            assert_int_equal(p.count, q.count);
            assert_memory_equal(p.hash, q.hash, p.count * 32);
            assert_int_equal(ch_audit_verify_inclusion(leaf[i], i, n, &p, root), 0);
            /* Wrong index, wrong size, wrong leaf, a flipped bit: all rejected. */
            if (n > 1) {
                assert_int_not_equal(ch_audit_verify_inclusion(leaf[i], (i + 1) % n, n, &p, root),
                                     0);
                assert_int_not_equal(ch_audit_verify_inclusion(leaf[(i + 1) % n], i, n, &p, root),
                                     0);
                p.hash[p.count / 2][5] ^= 1;
                assert_int_not_equal(ch_audit_verify_inclusion(leaf[i], i, n, &p, root), 0);
            }
            assert_int_not_equal(ch_audit_verify_inclusion(leaf[i], i, n + 1, &p, root), 0);
        }
        for (uint64_t m = 1; m <= n; m++) {
            uint8_t r1[32];
            assert_int_equal(ch_audit__tree_root(&t, m, r1), 0);
            assert_int_equal(ch_audit__tree_consistency(&t, m, n, &p), 0);
            q.count = 0;
            if (m < n) {
                naive_subproof(leaf, m, 0, n, 1, &q);
            }
            assert_int_equal(p.count, q.count);
            assert_memory_equal(p.hash, q.hash, p.count * 32);
            assert_int_equal(ch_audit_verify_consistency(m, n, r1, root, &p), 0);
            if (m < n) {
                assert_int_not_equal(ch_audit_verify_consistency(m, n, root, root, &p), 0);
                assert_int_not_equal(ch_audit_verify_consistency(m, n, r1, r1, &p), 0);
                p.hash[p.count - 1][0] ^= 0x80;
                assert_int_not_equal(ch_audit_verify_consistency(m, n, r1, root, &p), 0);
                p.count = 0;
                assert_int_not_equal(ch_audit_verify_consistency(m, n, r1, root, &p), 0);
            }
        }
    }
    assert_int_equal(ch_audit__tree_inclusion(&t, 5, 5, &p), CH_EINVAL);
    assert_int_equal(ch_audit__tree_consistency(&t, 0, 5, &p), CH_EINVAL);
    assert_int_equal(ch_audit__tree_consistency(&t, 6, 5, &p), CH_EINVAL);
    assert_int_equal(ch_audit__tree_consistency(&t, 1, NAIVE_MAX + 1, &p), CH_EINVAL);
    ch_audit__tree_fini(&t);
}

/* A million leaves: the root and a proof at the far end come from the stored levels, so they
 * are fast and agree with verification. */
static void test_large_tree_proofs_verify(void **state)
{
    (void)state;
    ch_audit__tree_t t;
    ch_audit__tree_init(&t);
    uint8_t h[32];
    const uint64_t n = 1000003;
    for (uint64_t i = 0; i < n; i++) {
        memset(h, 0, sizeof(h));
        memcpy(h, &i, sizeof(i));
        ch_audit__tree_append(&t, h);
    }
    uint8_t root[32], r1[32];
    ch_audit_proof_t p;
    assert_int_equal(ch_audit__tree_root(&t, n, root), 0);
    assert_int_equal(ch_audit__tree_inclusion(&t, 999999, n, &p), 0);
    assert_int_equal(
        ch_audit_verify_inclusion(ch_audit__tree_leaf(&t, 999999), 999999, n, &p, root), 0);
    assert_int_equal(ch_audit__tree_root(&t, 654321, r1), 0);
    assert_int_equal(ch_audit__tree_consistency(&t, 654321, n, &p), 0);
    assert_int_equal(ch_audit_verify_consistency(654321, n, r1, root, &p), 0);
    ch_audit__tree_fini(&t);
}

/* Appending leaves in batches (level by level, on every core) builds the very tree that
 * appending them one by one does, whatever the batch boundaries. */
static void test_append_many_matches_append_one_by_one(void **state)
{
    (void)state;
    const uint64_t n = 70000;
    uint8_t(*leaves)[32] = ch_malloc(n * 32);
    for (uint64_t i = 0; i < n; i++) {
        ch_audit_leaf_hash(&i, sizeof(i), leaves[i]);
    }
    ch_audit__tree_t one, many;
    ch_audit__tree_init(&one);
    ch_audit__tree_init(&many);
    for (uint64_t i = 0; i < n; i++) {
        ch_audit__tree_append(&one, leaves[i]);
    }
    /* Odd batch sizes, one of them large enough to run on several threads. */
    static const uint64_t cuts[] = {0, 1, 2, 5, 1000, 1023, 41234, 41235, 70000};
    for (size_t c = 0; c + 1 < sizeof(cuts) / sizeof(cuts[0]); c++) {
        ch_audit__tree_append_many(&many, (const uint8_t(*)[32])leaves[cuts[c]],
                                   cuts[c + 1] - cuts[c]);
        assert_int_equal(many.size, cuts[c + 1]);
    }
    for (int h = 0; h < 64 && (n >> h) > 0; h++) {
        assert_memory_equal(one.level[h], many.level[h], (n >> h) * 32);
    }
    uint8_t r1[32], r2[32];
    for (uint64_t size = 1; size <= n; size += 997) {
        assert_int_equal(ch_audit__tree_root(&one, size, r1), 0);
        assert_int_equal(ch_audit__tree_root(&many, size, r2), 0);
        assert_memory_equal(r1, r2, 32);
    }
    ch_audit__tree_fini(&one);
    ch_audit__tree_fini(&many);
    ch_free(leaves);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roots_match_rfc6962_reference_for_sizes_0_to_8),
        cmocka_unit_test(test_inclusion_paths_match_rfc6962_reference),
        cmocka_unit_test(test_consistency_paths_match_rfc6962_reference),
        cmocka_unit_test(test_every_proof_up_to_70_leaves_matches_naive_rfc_and_verifies),
        cmocka_unit_test(test_large_tree_proofs_verify),
        cmocka_unit_test(test_append_many_matches_append_one_by_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
