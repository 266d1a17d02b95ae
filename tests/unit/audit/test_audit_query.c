/*
 * Unit tests of the log's queries (src/audit/query.c): the filter of `cctvhub audit show`,
 * selecting records from a log, the proofs of `cctvhub audit prove` and their refusals, and
 * whether a log extends a checkpoint kept elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "support/fixture.h"

typedef struct fixture {
    ch_test_audit_t ta;
    ch_audit_t *a;
} fixture_t;

/* A log of four records: two grants, a view and an alert, one second apart. */
static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_audit_init(&fx->ta, "ch_audit_query") != 0) {
        return -1;
    }
    ch_audit_options_t opt = {.checkpoint_every_records = 2};
    fx->a = ch_test_audit_open(&fx->ta, &opt);
    static const char *const actions[] = {"grant.create", "grant.revoke", "view.start",
                                          "alert.raise"};
    for (int i = 0; i < 4; i++) {
        char obj[32];
        snprintf(obj, sizeof(obj), "camera:%d", 7 + i % 2);
        json_t *d = json_pack("{s:i}", "event_id", 3 + i / 2);
        ch_audit_entry_t e = {.actor = i < 2 ? "user:kim" : "agency:12",
                              .action = actions[i],
                              .object = obj,
                              .outcome = "ok",
                              .details = d};
        if (ch_audit_append(fx->a, &e, NULL) != 0) {
            return -1;
        }
        json_decref(d);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_audit_close(fx->a);
    int rc = ch_test_audit_fini(&fx->ta);
    ch_free(fx);
    return rc;
}

static void count_one(void *ud, const ch_audit_record_t *rec, const json_t *parsed)
{
    (void)rec;
    assert_true(json_is_object(parsed));
    (*(int *)ud)++;
}

static int selected(fixture_t *fx, const ch_audit_filter_t *f, uint64_t limit)
{
    int n = 0;
    uint64_t at = 0;
    assert_int_equal(ch_audit_select(fx->a, f, limit, count_one, &n, &at), 0);
    return n;
}

static void test_show_filters_by_actor_action_family_object_and_time(void **state)
{
    fixture_t *fx = *state;
    ch_audit_filter_t f;
    ch_audit_filter_init(&f);
    assert_int_equal(selected(fx, &f, UINT64_MAX), 4);
    assert_int_equal(selected(fx, &f, 3), 3);
    f.action = "grant.*";
    assert_int_equal(selected(fx, &f, UINT64_MAX), 2);
    f.action = "grant.";
    assert_int_equal(selected(fx, &f, UINT64_MAX), 0);
    f.action = NULL;
    f.actor = "agency:12";
    assert_int_equal(selected(fx, &f, UINT64_MAX), 2);
    f.actor = NULL;
    f.camera = 8;
    assert_int_equal(selected(fx, &f, UINT64_MAX), 2);
    f.event = 4;
    assert_int_equal(selected(fx, &f, UINT64_MAX), 1);
    f.agency = 12; /* the actor "agency:12" is not a reference to agency 12 */
    assert_int_equal(selected(fx, &f, UINT64_MAX), 0);
    ch_audit_filter_init(&f);
    f.since_ns = INT64_MAX - 1;
    assert_int_equal(selected(fx, &f, UINT64_MAX), 0);
    json_t *rec = json_pack("{s:s}", "time", "2026-11-25T09:00:00Z");
    assert_int_equal(ch_audit_record_time_ns(rec), 1795597200000000000LL);
    json_decref(rec);
}

static void test_proofs_verify_and_bad_bounds_name_the_field(void **state)
{
    fixture_t *fx = *state;
    ch_fault_t fault;
    memset(&fault, 0, sizeof(fault));
    ch_audit_inclusion_t *in = ch_malloc(sizeof(*in));
    assert_int_equal(ch_audit_inclusion(fx->a, 1, 3, in, &fault), 0);
    assert_int_equal(ch_audit_verify_inclusion(in->leaf_hash, 1, 3, &in->proof, in->root), 0);
    assert_int_equal(ch_audit_inclusion(fx->a, 3, 3, in, &fault), CH_EINVAL);
    assert_string_equal(fault.field, "index");
    assert_int_equal(ch_audit_inclusion(fx->a, 0, 5, in, &fault), CH_EINVAL);
    assert_string_equal(fault.field, "size");
    assert_string_equal(fault.message, "size 5 is larger than the log (4 records)");
    ch_free(in);
    ch_audit_consistency_t *c = ch_malloc(sizeof(*c));
    assert_int_equal(ch_audit_consistency(fx->a, 2, 4, c, &fault), 0);
    assert_int_equal(ch_audit_verify_consistency(2, 4, c->root1, c->root2, &c->proof), 0);
    assert_int_equal(ch_audit_consistency(fx->a, 0, 4, c, NULL), CH_EINVAL);
    assert_int_equal(ch_audit_consistency(fx->a, 3, 2, c, &fault), CH_EINVAL);
    assert_string_equal(fault.field, "first");
    /* The default size is the latest checkpoint's (every 2 records: 4). */
    assert_int_equal(ch_audit_signed_size(fx->a), 4);
    /* A kept checkpoint: extended, cut, rewritten. */
    assert_null(ch_audit_extends(fx->a, 2, c->root1));
    assert_non_null(ch_audit_extends(fx->a, 5, c->root1));
    assert_non_null(ch_audit_extends(fx->a, 3, c->root1));
    ch_free(c);
}

static void test_accept_puts_the_decision_on_the_record_and_signs_it(void **state)
{
    fixture_t *fx = *state;
    ch_audit_accept_t req = {
        .actor = "user:root", .reason = "disk restored", .kept = 1, .kept_size = 9};
    uint64_t seq = 0;
    assert_int_equal(ch_audit_accept(fx->a, &req, &seq), 0);
    assert_int_equal(seq, 4);
    assert_int_equal(ch_audit_signed_size(fx->a), 5);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ch_audit_read(fx->a, 4, &text, &len), 0);
    json_t *rec = json_loads(text, 0, NULL);
    json_t *d = json_object_get(rec, "details");
    assert_string_equal(json_string_value(json_object_get(rec, "action")), "audit.accept");
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "disk restored");
    assert_int_equal(json_integer_value(json_object_get(d, "records")), 4);
    assert_int_equal(json_integer_value(json_object_get(d, "kept_size")), 9);
    assert_string_equal(json_string_value(json_object_get(d, "mismatch")),
                        "records were removed from its end");
    json_decref(rec);
    ch_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_show_filters_by_actor_action_family_object_and_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_proofs_verify_and_bad_bounds_name_the_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_accept_puts_the_decision_on_the_record_and_signs_it,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
