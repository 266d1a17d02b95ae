/*
 * A data directory with a node key, and its audit log, for unit tests. See fixture.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "support/fixture.h"

#include <stdio.h>
#include <string.h>

int ch_test_audit_init(ch_test_audit_t *ta, const char *prefix)
{
    memset(ta, 0, sizeof(*ta));
    if (ch_test_tmpdir(ta->data, sizeof(ta->data), prefix) != 0) {
        return -1;
    }
    snprintf(ta->dir, sizeof(ta->dir), "%s/audit", ta->data);
    char *err = NULL;
    if (ch_audit_keys_init(ta->data, &err) != 0 || ch_audit_keys_load(ta->data, &ta->key, &err)) {
        fprintf(stderr, "keys: %s\n", err != NULL ? err : "?");
        ch_free(err);
        (void)ch_test_rmtree(ta->data);
        return -1;
    }
    return 0;
}

int ch_test_audit_fini(ch_test_audit_t *ta)
{
    ch_audit_key_wipe(&ta->key);
    return ch_test_rmtree(ta->data);
}

ch_audit_t *ch_test_audit_open(ch_test_audit_t *ta, const ch_audit_options_t *opt)
{
    ch_audit_options_t o;
    if (opt != NULL) {
        o = *opt;
    } else {
        memset(&o, 0, sizeof(o));
    }
    o.dir = ta->dir;
    o.key = &ta->key;
    ch_audit_t *a = NULL;
    char *err = NULL;
    int rc = ch_audit_open(&o, &a, &err);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", err);
    }
    assert_int_equal(rc, 0);
    return a;
}
