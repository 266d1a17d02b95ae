/*
 * Unit tests of refusals on the audit record (src/audit/refusal.c): the first of a peer and
 * kind in an interval recorded at once, the rest summed up in one record; a full table sharing
 * one "other peers" slot; refusals for rate recording nothing; long names cut so that the
 * record stays valid UTF-8 and the same peer keeps its slot.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit_internal.h"
#include "support/fixture.h"

typedef struct fixture {
    ch_test_audit_t ta;
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_audit_init(&fx->ta, "ch_refusal_test") != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    int rc = ch_test_audit_fini(&fx->ta);
    ch_free(fx);
    return rc;
}

static ch_audit_t *open_log(fixture_t *fx, uint32_t interval_ms, uint32_t peers)
{
    ch_audit_options_t opt = {
        .refusal_interval_ms = interval_ms,
        .refusal_peers = peers,
    };
    return ch_test_audit_open(&fx->ta, &opt);
}

static int refuse(ch_audit_t *a, const char *peer, int status, const char *actor,
                  const char *reason)
{
    json_t *d = json_pack("{s:s}", "reason", reason);
    ch_audit_entry_t e = {
        .actor = actor, .action = "auth.denied", .outcome = "denied", .details = d};
    int rc = ch_audit_refusal(a, peer, status, &e);
    json_decref(d);
    return rc;
}

/* Record seq as parsed JSON (the caller decrefs). */
static json_t *record(ch_audit_t *a, uint64_t seq)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ch_audit_read(a, seq, &text, &len), 0);
    json_t *j = json_loadb(text, len, 0, NULL);
    assert_non_null(j);
    ch_free(text);
    return j;
}

static int64_t detail_int(json_t *rec, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(rec, "details"), key));
}

static const char *detail_str(json_t *rec, const char *key)
{
    return json_string_value(json_object_get(json_object_get(rec, "details"), key));
}

static void test_first_recorded_rest_summed_up_and_429_recorded_never(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 60000, 16);
    for (int i = 0; i < 50; i++) {
        char peer[32];
        snprintf(peer, sizeof(peer), "10.0.0.7:%d", 40000 + i); /* a new port each time */
        assert_int_equal(refuse(a, peer, 401, "anonymous", i % 2 ? "bad key" : "no key"), 0);
        assert_int_equal(refuse(a, peer, 429, "anonymous", "throttled"), 0);
    }
    assert_int_equal(ch_audit_size(a), 1); /* the first only */
    assert_int_equal(ch_audit_refusals_flush(a, 0), 0);
    assert_int_equal(ch_audit_size(a), 1); /* its interval is not over */
    assert_int_equal(ch_audit_refusals_flush(a, 1), 0);
    assert_int_equal(ch_audit_size(a), 2);
    json_t *first = record(a, 0), *sum = record(a, 1);
    assert_null(json_object_get(json_object_get(first, "details"), "aggregated"));
    assert_true(json_is_true(json_object_get(json_object_get(sum, "details"), "aggregated")));
    assert_int_equal(detail_int(sum, "count"), 49);
    assert_string_equal(detail_str(sum, "peer"), "10.0.0.7");
    json_t *reasons = json_object_get(json_object_get(sum, "details"), "reasons");
    assert_int_equal(json_integer_value(json_object_get(reasons, "bad key")), 25);
    assert_int_equal(json_integer_value(json_object_get(reasons, "no key")), 24);
    assert_true(detail_int(sum, "first_time") <= detail_int(sum, "last_time"));
    json_decref(first);
    json_decref(sum);
    ch_audit_close(a);
}

static void test_a_full_table_shares_one_slot_and_intervals_start_over(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 100, 2);
    /* Five addresses, three refusals each: two get slots, three share "other peers". */
    for (int round = 0; round < 3; round++) {
        for (int p = 0; p < 5; p++) {
            char peer[32];
            snprintf(peer, sizeof(peer), "[2001:db8::%d]:443", p + 1);
            assert_int_equal(refuse(a, peer, 403, "user:kim", "role"), 0);
        }
    }
    assert_int_equal(ch_audit_size(a), 2);
    usleep(150 * 1000);
    assert_int_equal(ch_audit_refusals_flush(a, 0), 0); /* intervals over: three summaries */
    assert_int_equal(ch_audit_size(a), 5);
    int64_t counts[3];
    for (int i = 0; i < 3; i++) {
        json_t *r = record(a, 2 + (uint64_t)i);
        counts[i] = detail_int(r, "count");
        if (strcmp(detail_str(r, "peer"), "other peers") == 0) {
            assert_int_equal(counts[i], 9);
        } else {
            assert_int_equal(counts[i], 2);
            assert_non_null(strstr(detail_str(r, "peer"), "2001:db8::"));
        }
        json_decref(r);
    }
    assert_int_equal(counts[0] + counts[1] + counts[2], 13);
    /* A new interval: the first of a peer is recorded at once again. */
    assert_int_equal(refuse(a, "[2001:db8::1]:443", 403, "user:kim", "role"), 0);
    assert_int_equal(ch_audit_size(a), 6);
    ch_audit_close(a); /* nothing counted: no summary */
    a = open_log(fx, 100, 2);
    assert_int_equal(ch_audit_size(a), 6);
    ch_audit_close(a);
}

static void test_long_names_are_cut_as_utf8_and_keep_their_slot(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 60000, 8);
    /* 5 + 20 x 3 bytes: cut inside a character at 47 bytes. */
    char actor[128] = "user:";
    for (int i = 0; i < 20; i++) {
        memcpy(actor + 5 + 3 * i, "\xea\xb9\x80", 4); /* U+AE40, then the NUL */
    }
    char reason[128];
    memset(reason, 'r', 100);
    reason[100] = '\0';
    for (int i = 0; i < 10; i++) {
        assert_int_equal(refuse(a, "192.0.2.1:1", 401, actor, reason), 0);
    }
    assert_int_equal(ch_audit_size(a), 1);
    assert_int_equal(ch_audit_refusals_flush(a, 1), 0);
    assert_int_equal(ch_audit_size(a), 2);
    json_t *sum = record(a, 1);
    assert_int_equal(detail_int(sum, "count"), 9);
    const char *who = json_string_value(json_object_get(sum, "actor"));
    assert_non_null(who);
    assert_true(strlen(who) < 48 && strncmp(who, actor, strlen(who)) == 0);
    assert_int_equal((strlen(who) - 5) % 3, 0);
    json_decref(sum);
    ch_audit_close(a);
}

static void test_a_read_only_handle_refuses(void **state)
{
    fixture_t *fx = *state;
    ch_audit_close(open_log(fx, 0, 0));
    ch_audit_options_t opt = {.dir = fx->ta.dir};
    ch_audit_t *a = NULL;
    assert_int_equal(ch_audit_open(&opt, &a, NULL), 0);
    assert_int_equal(refuse(a, "192.0.2.1:1", 401, "anonymous", "x"), CH_EINVAL);
    assert_int_equal(ch_audit_refusals_flush(a, 1), 0);
    ch_audit_close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_first_recorded_rest_summed_up_and_429_recorded_never),
        T(test_a_full_table_shares_one_slot_and_intervals_start_over),
        T(test_long_names_are_cut_as_utf8_and_keep_their_slot),
        T(test_a_read_only_handle_refuses),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
