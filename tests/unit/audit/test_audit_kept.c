/*
 * Unit tests of the checkpoint kept outside the log (src/audit/kept.c): a starting hub's check
 * against the copy, keeping the latest checkpoint when it changed, an operator's acceptance of
 * a log that departs from the copy, and the outbox's records appended as queued. The keeper is
 * a fake in memory here (the hub's is its store).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "support/fixture.h"

/* A keeper in memory: the copy, whether there is one, the failure to give, the calls. */
typedef struct fake_keeper {
    int has;
    uint64_t size;
    uint8_t root[CH_AUDIT_HASH_SIZE];
    char note[512];
    int fail; /* a code get and put return, or 0 */
    int puts;
} fake_keeper_t;

static int fake_get(void *ud, ch_audit_kept_t *out)
{
    fake_keeper_t *k = ud;
    if (k->fail != 0) {
        return k->fail;
    }
    if (!k->has) {
        return CH_ENOTFOUND;
    }
    out->size = k->size;
    memcpy(out->root, k->root, sizeof(out->root));
    return 0;
}

static int fake_put(void *ud, const ch_audit_kept_t *kept)
{
    fake_keeper_t *k = ud;
    k->puts++;
    if (k->fail != 0) {
        return k->fail;
    }
    k->has = 1;
    k->size = kept->size;
    memcpy(k->root, kept->root, sizeof(k->root));
    snprintf(k->note, sizeof(k->note), "%s", kept->note);
    return 0;
}

static const char *fake_errmsg(void *ud)
{
    (void)ud;
    return "the fake keeper failed";
}

static const ch_audit_keeper_t fake = {fake_get, fake_put, fake_errmsg};

typedef struct fixture {
    char data[256];
    ch_audit_t *a;
    fake_keeper_t k;
} fixture_t;

/* A writable log of a new data directory (its key made), no records. */
static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_tmpdir(fx->data, sizeof(fx->data), "ch_audit_kept") != 0) {
        return -1;
    }
    ch_audit_node_req_t req = {.data_dir = fx->data, .make_key = 1};
    ch_fault_t f;
    if (ch_audit_open_node(&req, &fx->a, &f, NULL) != 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    ch_audit_close(fx->a);
    int rc = ch_test_rmtree(fx->data);
    ch_free(fx);
    return rc;
}

static void append_n(ch_audit_t *a, int n)
{
    for (int i = 0; i < n; i++) {
        ch_audit_entry_t e = {.actor = "system", .action = "test.kept", .outcome = "ok"};
        assert_int_equal(ch_audit_append(a, &e, NULL), 0);
    }
}

/* The record seq of the log, parsed (the caller decrefs). */
static json_t *record(ch_audit_t *a, uint64_t seq)
{
    char *text = NULL;
    assert_int_equal(ch_audit_read(a, seq, &text, NULL), 0);
    json_t *rec = json_loads(text, 0, NULL);
    ch_free(text);
    assert_non_null(rec);
    return rec;
}

/* Asserts that the starting hub's check passes: the log extends the copy, or none is kept. */
static void assert_check_passes(fixture_t *fx)
{
    ch_audit_kept_t kept;
    const char *departs = "x";
    assert_int_equal(ch_audit_kept_check(fx->a, &fake, &fx->k, &kept, &departs), 0);
    assert_null(departs);
}

static void test_new_hub_without_copy_passes_the_check(void **state)
{
    assert_check_passes(*state);
}

static void test_latest_checkpoint_is_kept_once_per_size(void **state)
{
    fixture_t *fx = *state;
    uint64_t kept_size = 0;
    /* No checkpoint yet: nothing to keep. */
    assert_int_equal(ch_audit_kept_update(fx->a, &fake, &fx->k, &kept_size), 0);
    assert_int_equal(fx->k.puts, 0);

    append_n(fx->a, 3);
    assert_int_equal(ch_audit_checkpoint_now(fx->a), 0);
    assert_int_equal(ch_audit_kept_update(fx->a, &fake, &fx->k, &kept_size), 0);
    assert_int_equal(fx->k.puts, 1);
    assert_int_equal(kept_size, 3);
    assert_int_equal(fx->k.size, 3);
    uint8_t root[CH_AUDIT_HASH_SIZE];
    assert_int_equal(ch_audit_root(fx->a, 3, root), 0);
    assert_memory_equal(fx->k.root, root, sizeof(root));
    assert_non_null(strstr(fx->k.note, "\n3\n"));

    /* The same size again: not put again. */
    assert_int_equal(ch_audit_kept_update(fx->a, &fake, &fx->k, &kept_size), 0);
    assert_int_equal(fx->k.puts, 1);

    /* A failed put leaves *kept_size as it was and returns its code. */
    append_n(fx->a, 1);
    assert_int_equal(ch_audit_checkpoint_now(fx->a), 0);
    fx->k.fail = CH_EDB;
    assert_int_equal(ch_audit_kept_update(fx->a, &fake, &fx->k, &kept_size), CH_EDB);
    assert_int_equal(fx->k.puts, 2);
    assert_int_equal(kept_size, 3);

    /* The log extends what was kept. */
    fx->k.fail = 0;
    assert_check_passes(fx);
}

static void test_log_cut_or_rewritten_fails_the_check(void **state)
{
    fixture_t *fx = *state;
    append_n(fx->a, 2);
    ch_audit_kept_t kept;
    const char *departs = NULL;

    /* A copy larger than the log: records were removed from its end. */
    fx->k.has = 1;
    fx->k.size = 5;
    memset(fx->k.root, 0xab, sizeof(fx->k.root));
    assert_int_equal(ch_audit_kept_check(fx->a, &fake, &fx->k, &kept, &departs), CH_ECONFLICT);
    assert_string_equal(departs, "records were removed from its end");
    assert_int_equal(kept.size, 5);
    assert_memory_equal(kept.root, fx->k.root, sizeof(kept.root));

    /* A copy of the same size with another root: rewritten. */
    fx->k.size = 2;
    assert_int_equal(ch_audit_kept_check(fx->a, &fake, &fx->k, &kept, &departs), CH_ECONFLICT);
    assert_non_null(strstr(departs, "rewritten"));

    /* The keeper unreadable: its code, not a verdict. */
    fx->k.fail = CH_EDB;
    departs = "x";
    assert_int_equal(ch_audit_kept_check(fx->a, &fake, &fx->k, &kept, &departs), CH_EDB);
    assert_null(departs);
}

static void test_accept_records_the_decision_and_keeps_the_new_checkpoint(void **state)
{
    fixture_t *fx = *state;
    append_n(fx->a, 2);
    fx->k.has = 1;
    fx->k.size = 9;
    memset(fx->k.root, 0xcd, sizeof(fx->k.root));
    uint64_t seq = 0, kept_size = 0;
    ch_fault_t f;
    assert_int_equal(ch_audit_accept_kept(fx->a, &fake, &fx->k, "user:kim", "disk replaced", &seq,
                                          &kept_size, &f),
                     0);
    assert_int_equal(seq, 2);
    assert_int_equal(kept_size, 3);
    assert_int_equal(fx->k.size, 3);

    /* The record names the copy the keeper gave (its details: test_audit_query). */
    json_t *rec = record(fx->a, seq);
    assert_string_equal(json_string_value(json_object_get(rec, "actor")), "user:kim");
    json_t *d = json_object_get(rec, "details");
    assert_int_equal(json_integer_value(json_object_get(d, "kept_size")), 9);
    json_decref(rec);

    /* Now the log extends the copy. */
    assert_check_passes(fx);
}

static void test_accept_without_copy_names_none(void **state)
{
    fixture_t *fx = *state;
    uint64_t seq = 9, kept_size = 0;
    ch_fault_t f;
    assert_int_equal(
        ch_audit_accept_kept(fx->a, &fake, &fx->k, "user:kim", "why", &seq, &kept_size, &f), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(kept_size, 1);
    json_t *rec = record(fx->a, seq);
    assert_true(json_is_null(json_object_get(json_object_get(rec, "details"), "kept_size")));
    json_decref(rec);
}

static void test_accept_with_unreadable_keeper_records_nothing(void **state)
{
    fixture_t *fx = *state;
    fx->k.fail = CH_EDB;
    uint64_t seq = 0, kept_size = 0;
    ch_fault_t f;
    assert_int_equal(
        ch_audit_accept_kept(fx->a, &fake, &fx->k, "user:kim", "why", &seq, &kept_size, &f),
        CH_EDB);
    assert_string_equal(f.rule, "read");
    assert_int_equal(f.kind, CH_FAULT_INTERNAL);
    assert_int_equal(f.rc, CH_EDB);
    assert_string_equal(f.message, "the fake keeper failed");
    assert_int_equal(ch_audit_size(fx->a), 0);
}

static void test_queued_record_is_appended_as_given(void **state)
{
    fixture_t *fx = *state;
    json_t *d = json_pack("{s:s, s:b}", "via", "cli", "disabled", 1);
    assert_int_equal(ch_audit_append_queued(fx->a, "user:root", "apikey.revoke", "apikey:4", d, 1),
                     0);
    assert_int_equal(ch_audit_append_queued(fx->a, "user:root", "user.create", "user:7", NULL, 0),
                     0);
    json_decref(d);
    assert_int_equal(ch_audit_size(fx->a), 2);

    json_t *rec = record(fx->a, 0);
    assert_string_equal(json_string_value(json_object_get(rec, "actor")), "user:root");
    assert_string_equal(json_string_value(json_object_get(rec, "action")), "apikey.revoke");
    assert_string_equal(json_string_value(json_object_get(rec, "object")), "apikey:4");
    assert_string_equal(json_string_value(json_object_get(rec, "outcome")), "ok");
    json_t *details = json_object_get(rec, "details");
    assert_string_equal(json_string_value(json_object_get(details, "via")), "cli");
    assert_true(json_is_true(json_object_get(details, "disabled")));
    json_decref(rec);

    rec = record(fx->a, 1);
    assert_string_equal(json_string_value(json_object_get(rec, "action")), "user.create");
    assert_true(json_is_null(json_object_get(rec, "details")));
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_hub_without_copy_passes_the_check, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_latest_checkpoint_is_kept_once_per_size, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_log_cut_or_rewritten_fails_the_check, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_accept_records_the_decision_and_keeps_the_new_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_without_copy_names_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_with_unreadable_keeper_records_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queued_record_is_appended_as_given, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
