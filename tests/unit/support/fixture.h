/*
 * The set-ups unit tests share (tests/unit/support): a temporary directory, a temporary SQLite
 * store opened and migrated, an agency in it, and a data directory with a node key for an
 * audit log. Linked into every unit test as the library ch_unit_support; a test pulls in only
 * the parts it calls (tmpdir.c, store_fixture.c, audit_fixture.c).
 *
 * Every call that can fail returns 0 or -1 after saying why on stderr, for a cmocka setup to
 * return; ch_test_audit_open asserts instead (it is called inside tests).
 */
#ifndef CH_TEST_FIXTURE_H
#define CH_TEST_FIXTURE_H

#include "audit/audit.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

/* Makes a new directory "<$TMPDIR, or /tmp>/<prefix>_XXXXXX" and writes its name into dir
 * (cap bytes). 0 or -1. */
int ch_test_tmpdir(char *dir, size_t cap, const char *prefix);

/* Removes dir and everything below it (as `rm -rf`). 0, or -1 when something stayed. */
int ch_test_rmtree(const char *dir);

/* Runs the shell command fmt (printf-style) in dir, its output dropped (the openssl CLI
 * making a test's certificates: a peer independent of the hub's PKI). 0, or -1 when it
 * failed. */
int ch_test_sh(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A store of its own: a temporary directory holding one SQLite file. The test keeps the
 * handle (it may close and reopen it). */
typedef struct ch_test_store {
    char dir[256];  /* the temporary directory */
    char path[300]; /* dir/store.db */
} ch_test_store_t;

/* Fills *ts with a new directory named after prefix and opens a new store in it (as
 * "sqlite:<path>", migrated) into *st. 0, or -1 with nothing left behind. */
int ch_test_store_open(ch_test_store_t *ts, const char *prefix, ch_store_t **st);

/* Closes st (NULL is fine) and removes the store's directory. 0 or -1. */
int ch_test_store_close(ch_test_store_t *ts, ch_store_t *st);

/* Creates an agency of kind ("both", "provider", "user") at level "district", type
 * "district-center": its id, or 0 after saying why. */
int64_t ch_test_store_agency(ch_store_t *st, const char *name, const char *kind);

/* A data directory of its own with a node key, for an audit log in data/audit. */
typedef struct ch_test_audit {
    char data[256];     /* the data directory (keys/ made here) */
    char dir[300];      /* data/audit, the log directory (made by the first writable open) */
    ch_audit_key_t key; /* the node key, loaded with its secret */
} ch_test_audit_t;

/* Fills *ta: a new data directory named after prefix, its node key made and loaded. 0 or -1. */
int ch_test_audit_init(ch_test_audit_t *ta, const char *prefix);

/* Removes the data directory and wipes the key. 0 or -1. */
int ch_test_audit_fini(ch_test_audit_t *ta);

/* Opens the log of ta for writing with the options of opt (NULL: the defaults); its dir and
 * key are ta's. Asserts that it opens (saying why on stderr when not). */
ch_audit_t *ch_test_audit_open(ch_test_audit_t *ta, const ch_audit_options_t *opt);

#endif /* CH_TEST_FIXTURE_H */
