/*
 * Unit tests of the node's log use cases (audit/node.c): opening DATA_DIR/audit with the node
 * key (made on demand or not), read-only beside a writer, making the key once, and the latest
 * checkpoint parsed.
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

static char data_dir[256];

static int setup(void **state)
{
    (void)state;
    return ch_test_tmpdir(data_dir, sizeof(data_dir), "ch_audit_node");
}

static int teardown(void **state)
{
    (void)state;
    return ch_test_rmtree(data_dir);
}

static void test_open_without_key_is_refused_as_key(void **state)
{
    (void)state;
    ch_audit_node_req_t req = {.data_dir = data_dir};
    ch_audit_t *a = (ch_audit_t *)1;
    ch_fault_t f;
    assert_int_equal(ch_audit_open_node(&req, &a, &f, NULL), CH_ENOENT);
    assert_null(a);
    assert_string_equal(f.rule, "key");
    assert_int_equal(f.rc, CH_ENOENT);
}

static void test_open_makes_key_then_reader_beside_writer(void **state)
{
    (void)state;
    ch_audit_node_req_t req = {.data_dir = data_dir, .make_key = 1};
    ch_audit_t *w = NULL;
    ch_fault_t f;
    assert_int_equal(ch_audit_open_node(&req, &w, &f, NULL), 0);
    ch_audit_entry_t e = {.actor = "system", .action = "test.node", .outcome = "ok"};
    uint64_t seq = 99;
    assert_int_equal(ch_audit_append(w, &e, &seq), 0);
    assert_int_equal(seq, 0);

    /* A second writer is refused as the log held by another. */
    ch_audit_t *w2 = NULL;
    assert_int_equal(ch_audit_open_node(&req, &w2, &f, NULL), CH_ECONFLICT);
    assert_string_equal(f.rule, "log");

    /* A reader needs no key and opens beside the writer. */
    ch_audit_node_req_t rd = {.data_dir = data_dir, .read_only = 1};
    ch_audit_t *r = NULL;
    assert_int_equal(ch_audit_open_node(&rd, &r, &f, NULL), 0);
    assert_int_equal(ch_audit_size(r), 1);
    ch_audit_checkpoint_t cp;
    char *note = NULL;
    assert_int_equal(ch_audit_checkpoint_latest_parsed(r, &cp, &note), CH_ENOTFOUND);
    assert_null(note);
    ch_audit_close(r);
    ch_audit_close(w); /* a final checkpoint, of size 1 */
    assert_int_equal(ch_audit_open_node(&rd, &r, &f, NULL), 0);
    assert_int_equal(ch_audit_checkpoint_latest_parsed(r, &cp, &note), 0);
    assert_int_equal(cp.size, 1);
    assert_non_null(strstr(note, "\n1\n"));
    ch_free(note);
    ch_audit_close(r);

    /* The key exists now: making it again is refused, never overwritten. */
    char pub[CH_AUDIT_KEY_NAME_MAX + 64];
    assert_int_equal(ch_audit_node_key_make(data_dir, pub, sizeof(pub), &f, NULL), CH_EEXIST);
    assert_string_equal(f.rule, "exists");
}

static void test_key_make_prints_public_key(void **state)
{
    (void)state;
    char pub[CH_AUDIT_KEY_NAME_MAX + 64];
    ch_fault_t f;
    assert_int_equal(ch_audit_node_key_make(data_dir, pub, sizeof(pub), &f, NULL), 0);
    ch_audit_key_t key;
    char *err = NULL;
    assert_int_equal(ch_audit_pubkey_parse(pub, &key, &err), 0);
    assert_int_equal(key.has_secret, 0);
    char dir[8];
    assert_int_equal(ch_audit_node_dir(data_dir, dir, sizeof(dir)), CH_ETOOBIG);
}

static void test_read_only_without_log_is_refused_as_log(void **state)
{
    (void)state;
    ch_audit_node_req_t rd = {.data_dir = data_dir, .read_only = 1};
    ch_audit_t *r = NULL;
    ch_fault_t f;
    assert_int_not_equal(ch_audit_open_node(&rd, &r, &f, NULL), 0);
    assert_null(r);
    assert_string_equal(f.rule, "log");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_without_key_is_refused_as_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_makes_key_then_reader_beside_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_key_make_prints_public_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_without_log_is_refused_as_log, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
