/*
 * The door (net/door.c), shared by the relay and HTTP: connections capped in all and per
 * address, the oldest evicted for a newcomer when full (the relay's) or the newcomer told the
 * door is full (HTTP's); its table of counts checked against a plain model through thousands
 * of random entries and leaves (backward-shift deletion must never lose an address behind a
 * freed slot).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

static void key4(const char *ip, uint8_t out[16])
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    ch_net_door_key(&ss, out);
}

static void key6(const char *ip, uint8_t out[16])
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    ch_net_door_key(&ss, out);
}

static void test_keys_ipv4_mapped_and_ipv6_by_64(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    key4("10.0.0.1", a);
    key6("::ffff:10.0.0.1", b);
    assert_memory_equal(a, b, 16); /* a dual-stack listener sees the same host */
    key4("10.0.0.2", b);
    assert_memory_not_equal(a, b, 16);
    key6("2001:db8:1:2::1", a);
    key6("2001:db8:1:2:ffff:1:2:3", b);
    assert_memory_equal(a, b, 16); /* one /64: one host's share */
    key6("2001:db8:1:3::1", b);
    assert_memory_not_equal(a, b, 16);
}

static void test_per_address_cap_refuses_the_newcomer(void **state)
{
    (void)state;
    ch_net_door_t d;
    ch_net_door_init(&d, 10, 3, 1);
    ch_net_door_node_t n[5];
    memset(n, 0, sizeof(n));
    int ev;
    for (int i = 0; i < 5; i++) {
        key4("192.0.2.7", n[i].addr);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ch_net_door_enter(&d, &n[i], &ev), CH_NET_DOOR_IN);
        assert_int_equal(ev, 0);
    }
    assert_int_equal(ch_net_door_enter(&d, &n[3], &ev), CH_NET_DOOR_PER_ADDR);
    assert_int_equal(ev, 0);
    assert_int_equal(n[3].at_door, 0);
    assert_int_equal(ch_net_door_count(&d, NULL), 3);
    assert_int_equal(ch_net_door_count(&d, n[0].addr), 3);
    ch_net_door_leave(&d, &n[1]); /* it authorized: a place for the next */
    assert_int_equal(ch_net_door_enter(&d, &n[4], &ev), CH_NET_DOOR_IN);
    ch_net_door_leave(&d, &n[3]); /* never entered: nothing */
    for (int i = 0; i < 5; i++) {
        ch_net_door_leave(&d, &n[i]);
    }
    assert_int_equal(ch_net_door_count(&d, NULL), 0);
    assert_int_equal(ch_net_door_count(&d, n[0].addr), 0);
    ch_net_door_fini(&d);
}

static void test_a_full_door_evicts_the_oldest_in_order(void **state)
{
    (void)state;
    ch_net_door_t d;
    ch_net_door_init(&d, 4, 4, 1);
    ch_net_door_node_t n[8];
    memset(n, 0, sizeof(n));
    int ev;
    for (int i = 0; i < 8; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.51.100.%d", i % 3);
        key4(ip, n[i].addr);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ch_net_door_enter(&d, &n[i], &ev), CH_NET_DOOR_IN);
        assert_int_equal(ev, 0);
    }
    ch_net_door_leave(&d, &n[1]); /* authorized: no longer waiting, never evicted */
    assert_int_equal(ch_net_door_enter(&d, &n[4], &ev), CH_NET_DOOR_IN);
    assert_int_equal(ev, 0);
    /* Full: each newcomer evicts the oldest waiting: 0, then 2 (1 left), then 3. */
    int want[] = {0, 2, 3};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(ch_net_door_enter(&d, &n[5 + k], &ev), CH_NET_DOOR_IN);
        assert_int_equal(ev, 1);
        assert_true(ch_net_door_evicted(&n[want[k]]));
        assert_int_equal(n[want[k]].at_door, 0);
        assert_int_equal(ch_net_door_count(&d, NULL), 4);
    }
    assert_false(ch_net_door_evicted(&n[1]));
    assert_false(ch_net_door_evicted(&n[4]));
    for (int i = 0; i < 8; i++) {
        ch_net_door_leave(&d, &n[i]); /* the evicted are gone already: no-op */
    }
    assert_int_equal(ch_net_door_count(&d, NULL), 0);
    ch_net_door_fini(&d);
}

/* HTTP's door: full, it refuses (its owner chooses whom to close); an exempt node (a trusted
 * proxy) is counted in all but not by address; a reload that raises the caps keeps every
 * count through the table's growth. */
static void test_a_door_that_does_not_evict_says_full_and_exempts_proxies(void **state)
{
    (void)state;
    ch_net_door_t d;
    ch_net_door_init(&d, 3, 2, 0);
    ch_net_door_node_t n[40];
    memset(n, 0, sizeof(n));
    int ev;
    key4("192.0.2.1", n[0].addr);
    key4("192.0.2.1", n[1].addr);
    key4("192.0.2.1", n[2].addr);
    assert_int_equal(ch_net_door_enter(&d, &n[0], &ev), CH_NET_DOOR_IN);
    assert_int_equal(ch_net_door_enter(&d, &n[1], &ev), CH_NET_DOOR_IN);
    assert_int_equal(ch_net_door_enter(&d, &n[2], &ev), CH_NET_DOOR_PER_ADDR);
    n[2].exempt = 1; /* the same address as a trusted proxy */
    assert_int_equal(ch_net_door_enter(&d, &n[2], &ev), CH_NET_DOOR_IN);
    assert_int_equal(ch_net_door_count(&d, n[0].addr), 2);
    assert_int_equal(ch_net_door_count(&d, NULL), 3);
    key4("192.0.2.2", n[3].addr);
    assert_int_equal(ch_net_door_enter(&d, &n[3], &ev), CH_NET_DOOR_FULL);
    assert_int_equal(ev, 0);
    assert_false(ch_net_door_evicted(&n[0]));
    ch_net_door_leave(&d, &n[2]);
    assert_int_equal(ch_net_door_count(&d, n[0].addr), 2);
    assert_int_equal(ch_net_door_enter(&d, &n[3], &ev), CH_NET_DOOR_IN);
    /* Raised caps: the table grows from 16 slots; every count stays where lookups find it. */
    ch_net_door_set_caps(&d, 100, 0);
    assert_int_equal(ch_net_door_count(&d, n[0].addr), 2);
    assert_int_equal(ch_net_door_count(&d, n[3].addr), 1);
    for (int i = 4; i < 40; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "203.0.113.%d", i % 7);
        key4(ip, n[i].addr);
        assert_int_equal(ch_net_door_enter(&d, &n[i], &ev), CH_NET_DOOR_IN); /* no cap by address */
    }
    assert_int_equal(ch_net_door_count(&d, NULL), 39);
    for (int i = 0; i < 40; i++) {
        ch_net_door_leave(&d, &n[i]);
    }
    assert_int_equal(ch_net_door_count(&d, NULL), 0);
    assert_int_equal(ch_net_door_count(&d, n[0].addr), 0);
    ch_net_door_fini(&d);
}

/* Random entries and leaves over 97 addresses (collisions in a 64-slot table for 32 waiting),
 * against a model: the counts of every address, the total, who was evicted. */
static void test_counts_match_a_model_through_random_churn(void **state)
{
    (void)state;
    enum { ADDRS = 97, NODES = 400, MAX_TOTAL = 32, PER_ADDR = 3 };
    ch_net_door_t d;
    ch_net_door_init(&d, MAX_TOTAL, PER_ADDR, 1);
    static ch_net_door_node_t n[NODES];
    static int in[NODES]; /* the model: waiting */
    static uint64_t order[NODES];
    uint8_t keys[ADDRS][16];
    memset(n, 0, sizeof(n));
    for (int a = 0; a < ADDRS; a++) {
        char ip[48];
        if (a % 2) {
            snprintf(ip, sizeof(ip), "2001:db8:%x::%x", a, a * 7);
            key6(ip, keys[a]);
        } else {
            snprintf(ip, sizeof(ip), "203.0.%d.%d", a / 50, a % 50);
            key4(ip, keys[a]);
        }
    }
    srand(15);
    uint64_t clock = 0;
    for (int step = 0; step < 20000; step++) {
        int i = rand() % NODES;
        if (in[i]) {
            ch_net_door_leave(&d, &n[i]);
            in[i] = 0;
        } else if (!n[i].at_door) {
            memset(&n[i], 0, sizeof(n[i]));
            int a = rand() % ADDRS;
            memcpy(n[i].addr, keys[a], 16);
            int per = 0, total = 0, oldest = -1;
            for (int k = 0; k < NODES; k++) {
                if (!in[k]) {
                    continue;
                }
                total++;
                per += memcmp(n[k].addr, keys[a], 16) == 0;
                if (oldest < 0 || order[k] < order[oldest]) {
                    oldest = k;
                }
            }
            int ev;
            int rc = ch_net_door_enter(&d, &n[i], &ev);
            if (per >= PER_ADDR) {
                assert_int_equal(rc, CH_NET_DOOR_PER_ADDR);
                continue;
            }
            assert_int_equal(rc, CH_NET_DOOR_IN);
            assert_int_equal(ev, total >= MAX_TOTAL);
            if (ev) {
                assert_true(ch_net_door_evicted(&n[oldest]));
                in[oldest] = 0;
            }
            in[i] = 1;
            order[i] = ++clock;
        }
        if (step % 97 == 0) {
            int total = 0;
            for (int k = 0; k < NODES; k++) {
                total += in[k];
            }
            assert_int_equal(ch_net_door_count(&d, NULL), (uint32_t)total);
            for (int a = 0; a < ADDRS; a++) {
                uint32_t per = 0;
                for (int k = 0; k < NODES; k++) {
                    per += in[k] && memcmp(n[k].addr, keys[a], 16) == 0;
                }
                assert_int_equal(ch_net_door_count(&d, keys[a]), per);
            }
        }
    }
    for (int k = 0; k < NODES; k++) {
        ch_net_door_leave(&d, &n[k]);
    }
    assert_int_equal(ch_net_door_count(&d, NULL), 0);
    ch_net_door_fini(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_ipv4_mapped_and_ipv6_by_64),
        cmocka_unit_test(test_per_address_cap_refuses_the_newcomer),
        cmocka_unit_test(test_a_full_door_evicts_the_oldest_in_order),
        cmocka_unit_test(test_a_door_that_does_not_evict_says_full_and_exempts_proxies),
        cmocka_unit_test(test_counts_match_a_model_through_random_churn),
    };
    return cmocka_run_group_tests(tests, 0, 0);
}
