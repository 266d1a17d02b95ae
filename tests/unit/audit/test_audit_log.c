/*
 * Unit tests of the audit log on disk: keys, append and reopen, group commit from 8 threads,
 * crash recovery of a torn tail, the checkpoint note format, reading, and the offline verifier
 * against each kind of tampering the issue names.
 *
 * Each test works in its own temporary data directory (setup) removed afterwards (teardown).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_internal.h"
#include "support/fixture.h"

typedef struct fixture {
    ch_test_audit_t ta; /* the data directory, data/audit and the node key */
    char seg0[400];     /* the first segment */
    char cpath[400];    /* the checkpoints file */
    char pub[256];
} fixture_t;

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_audit_init(&fx->ta, "ch_audit_test") != 0) {
        return -1;
    }
    snprintf(fx->seg0, sizeof(fx->seg0), "%s/00000000000000000000.seg", fx->ta.dir);
    snprintf(fx->cpath, sizeof(fx->cpath), "%s/checkpoints", fx->ta.dir);
    if (ch_audit_pubkey_format(&fx->ta.key, fx->pub, sizeof(fx->pub)) != 0) {
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

static ch_audit_t *open_log(fixture_t *fx, uint32_t every_records, uint32_t every_ms)
{
    ch_audit_options_t opt = {
        .checkpoint_every_records = every_records,
        .checkpoint_every_ms = every_ms,
    };
    return ch_test_audit_open(&fx->ta, &opt);
}

static void append_n(ch_audit_t *a, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char obj[32];
        snprintf(obj, sizeof(obj), "camera:%d", i);
        json_t *d = json_pack("{s:i, s:s}", "i", i, "note", "상가 앞");
        ch_audit_entry_t e = {.actor = "user:alice",
                              .action = "camera.update",
                              .object = obj,
                              .purpose = "maintenance",
                              .legal_basis = "PIPA art. 25",
                              .outcome = "ok",
                              .details = d};
        uint64_t seq;
        assert_int_equal(ch_audit_append(a, &e, &seq), 0);
        assert_int_equal(seq, (uint64_t)i);
        json_decref(d);
    }
}

/* Makes a log of n records, checkpointed every `every` records, and closes it. */
static void make_log(fixture_t *fx, int n, uint32_t every)
{
    ch_audit_t *a = open_log(fx, every, 3600000);
    append_n(a, 0, n);
    ch_audit_close(a);
}

static char *slurp_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = ch_malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

/* The byte offsets of every frame of a segment, and the offset past the last. */
static size_t frame_offsets(const uint8_t *buf, size_t len, size_t *offs, size_t max)
{
    size_t n = 0, off = CH_AUDIT__SEG_HEADER;
    /* A zero length word ends the records: the rest is the writer's zero padding. */
    while (off + 4 <= len && n < max && ch_audit__be32(buf + off) != 0) {
        offs[n++] = off;
        off += 4 + ch_audit__be32(buf + off) + 32;
    }
    offs[n] = off;
    return n;
}

static int verify(fixture_t *fx, const char *old_cp, ch_audit_verify_report_t *rep)
{
    int rc = ch_audit_verify_dir(fx->ta.dir, fx->pub, old_cp, rep);
    if (rc != 0) {
        printf("verify: %s\n", rep->message);
    }
    return rc;
}

/* ---- keys ------------------------------------------------------------------------------ */

static void test_keys_init_makes_private_0600_and_refuses_to_overwrite(void **state)
{
    fixture_t *fx = *state;
    char path[400];
    snprintf(path, sizeof(path), "%s/keys/node.key", fx->ta.data);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *err = NULL;
    assert_int_equal(ch_audit_keys_init(fx->ta.data, &err), CH_EEXIST);
    assert_non_null(strstr(err, "refusing to overwrite"));
    ch_free(err);
    /* The key is unchanged, and node.pub is the published form of it. */
    ch_audit_key_t again, pub;
    assert_int_equal(ch_audit_keys_load(fx->ta.data, &again, NULL), 0);
    assert_memory_equal(again.pk, fx->ta.key.pk, 32);
    assert_int_equal(ch_audit_keys_load_public(fx->ta.data, &pub, NULL), 0);
    assert_memory_equal(pub.pk, fx->ta.key.pk, 32);
    assert_int_equal(pub.has_secret, 0);
    assert_string_equal(pub.name, "cctvhub");
    ch_audit_key_wipe(&again);
    /* "cctvhub+<8 hex>+<base64 of 33 bytes>" */
    assert_int_equal(strncmp(fx->pub, "cctvhub+", 8), 0);
    assert_int_equal(fx->pub[16], '+');
    assert_int_equal(strlen(fx->pub), 8 + 8 + 1 + 44);
    /* A tampered key id is refused. */
    char bad[256];
    snprintf(bad, sizeof(bad), "%s", fx->pub);
    bad[8] = bad[8] == '0' ? '1' : '0';
    assert_int_equal(ch_audit_pubkey_parse(bad, &pub, &err), CH_EPARSE);
    ch_free(err);
}

static void test_key_name_for_node(void **state)
{
    (void)state;
    char name[64];
    assert_int_equal(ch_audit_key_name_for_node(NULL, name, sizeof(name)), 0);
    assert_string_equal(name, "cctvhub");
    assert_int_equal(ch_audit_key_name_for_node("busan-1", name, sizeof(name)), 0);
    assert_string_equal(name, "cctvhub/busan-1");
    assert_int_equal(ch_audit_key_name_for_node("a b", name, sizeof(name)), CH_EINVAL);
    assert_int_equal(ch_audit_key_name_for_node("a+b", name, sizeof(name)), CH_EINVAL);
}

/* ---- append, reopen, read -------------------------------------------------------------- */

static void test_append_reopen_round_trip_keeps_canonical_records(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    append_n(a, 0, 25);
    uint8_t root[32];
    assert_int_equal(ch_audit_root(a, 25, root), 0);
    ch_audit_close(a);

    a = open_log(fx, 1000, 3600000);
    assert_int_equal(ch_audit_size(a), 25);
    uint8_t root2[32];
    assert_int_equal(ch_audit_root(a, 25, root2), 0);
    assert_memory_equal(root, root2, 32);
    char *json;
    size_t len;
    assert_int_equal(ch_audit_read(a, 7, &json, &len), 0);
    assert_int_equal(strlen(json), len);
    /* Sorted keys, no white space, seq and time last. */
    const char *want =
        "{\"action\":\"camera.update\",\"actor\":\"user:alice\",\"details\":{\"i\":7,"
        "\"note\":\"상가 앞\"},\"legal_basis\":\"PIPA art. 25\",\"node\":\"cctvhub\","
        "\"object\":\"camera:7\",\"outcome\":\"ok\",\"purpose\":\"maintenance\","
        "\"seq\":7,\"time\":";
    assert_int_equal(strncmp(json, want, strlen(want)), 0);
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    char *again = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(again, json);
    free(again);
    json_decref(o);
    ch_free(json);
    assert_int_equal(ch_audit_read(a, 25, &json, &len), CH_ENOTFOUND);

    /* The iterator gives every record in order with the tree's leaf hashes. */
    ch_audit_iter_t *it;
    assert_int_equal(ch_audit_iter_new(a, 20, &it), 0);
    ch_audit_record_t rec;
    uint64_t expect = 20;
    int rc;
    while ((rc = ch_audit_iter_next(it, &rec)) == 0) {
        assert_int_equal(rec.seq, expect++);
        uint8_t h[32];
        ch_audit_leaf_hash(rec.json, rec.len, h);
        assert_memory_equal(h, rec.leaf_hash, 32);
    }
    assert_int_equal(rc, CH_ENOTFOUND);
    assert_int_equal(expect, 25);
    ch_audit_iter_free(it);

    /* Appends continue the sequence after reopening. */
    append_n(a, 25, 3);
    ch_audit_close(a);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 28);
    assert_true(rep.signatures_checked);
}

static void test_bad_entries_are_refused(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    ch_audit_entry_t e = {.actor = "system", .action = "x", .outcome = NULL};
    assert_int_equal(ch_audit_append(a, &e, NULL), CH_EINVAL);
    json_t *arr = json_array();
    e.outcome = "ok";
    e.details = arr;
    assert_int_equal(ch_audit_append(a, &e, NULL), CH_EINVAL);
    json_decref(arr);
    e.details = NULL;
    e.object = "\xff\xfe";
    assert_int_equal(ch_audit_append(a, &e, NULL), CH_EINVAL);
    assert_int_equal(ch_audit_size(a), 0);
    ch_audit_close(a);
}

static void test_read_only_open_refuses_appends_and_second_writer_is_refused(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    append_n(a, 0, 3);
    ch_audit_options_t opt = {.dir = fx->ta.dir, .key = &fx->ta.key};
    ch_audit_t *b = NULL;
    char *err = NULL;
    assert_int_equal(ch_audit_open(&opt, &b, &err), CH_ECONFLICT);
    ch_free(err);
    ch_audit_options_t ro = {.dir = fx->ta.dir};
    assert_int_equal(ch_audit_open(&ro, &b, NULL), 0);
    assert_int_equal(ch_audit_size(b), 3);
    ch_audit_entry_t e = {.actor = "system", .action = "x", .outcome = "ok"};
    assert_int_equal(ch_audit_append(b, &e, NULL), CH_EINVAL);
    ch_audit_close(b);
    ch_audit_close(a);
}

/* ---- group commit ---------------------------------------------------------------------- */

#define THREADS    8
#define PER_THREAD 150
typedef struct worker {
    ch_audit_t *a;
    int id;
    uint64_t seq[PER_THREAD];
    int rc;
} worker_t;

static void *worker_main(void *p)
{
    worker_t *w = p;
    for (int i = 0; i < PER_THREAD && w->rc == 0; i++) {
        char actor[32];
        snprintf(actor, sizeof(actor), "user:t%d", w->id);
        json_t *d = json_pack("{s:i}", "i", i);
        ch_audit_entry_t e = {
            .actor = actor, .action = "view.start", .outcome = "ok", .details = d};
        w->rc = ch_audit_append(w->a, &e, &w->seq[i]);
        json_decref(d);
    }
    return NULL;
}

static void test_group_commit_8_threads_all_records_durable_and_ordered(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 100, 3600000);
    worker_t w[THREADS];
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (worker_t){.a = a, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(w[t].rc, 0);
    }
    const uint64_t total = THREADS * PER_THREAD;
    assert_int_equal(ch_audit_size(a), total);
    /* Durable on return: a second, read-only handle sees every acknowledged record now. */
    ch_audit_options_t ro = {.dir = fx->ta.dir};
    ch_audit_t *b = NULL;
    assert_int_equal(ch_audit_open(&ro, &b, NULL), 0);
    assert_int_equal(ch_audit_size(b), total);
    /* Every sequence number once; each thread's own records in its order, and the record
     * at each number is the one that thread appended. */
    uint8_t *seen = ch_calloc(total, 1);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            uint64_t s = w[t].seq[i];
            assert_true(s < total);
            assert_false(seen[s]);
            seen[s] = 1;
            if (i > 0) {
                assert_true(s > w[t].seq[i - 1]);
            }
            if (i % 37 == 0) {
                char *json;
                assert_int_equal(ch_audit_read(b, s, &json, NULL), 0);
                json_t *o = json_loads(json, 0, NULL);
                char actor[32];
                snprintf(actor, sizeof(actor), "user:t%d", t);
                assert_string_equal(json_string_value(json_object_get(o, "actor")), actor);
                assert_int_equal(
                    json_integer_value(json_object_get(json_object_get(o, "details"), "i")), i);
                json_decref(o);
                ch_free(json);
            }
        }
    }
    ch_free(seen);
    ch_audit_close(b);
    ch_audit_close(a);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, total);
    assert_true(rep.checkpoints >= total / 100);
}

/* ---- crash recovery -------------------------------------------------------------------- */

/* Appends n records in a child process that then dies without closing the log, as a crash
 * would leave it: no final checkpoint. */
static void crash_after(fixture_t *fx, int n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ch_audit_options_t opt = {
            .dir = fx->ta.dir, .key = &fx->ta.key, .checkpoint_every_ms = 3600000};
        ch_audit_t *a = NULL;
        if (ch_audit_open(&opt, &a, NULL) != 0) {
            _exit(2);
        }
        for (int i = 0; i < n; i++) {
            ch_audit_entry_t e = {.actor = "system", .action = "test", .outcome = "ok"};
            if (ch_audit_append(a, &e, NULL) != 0) {
                _exit(3);
            }
        }
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_torn_tail_is_cut_on_reopen_and_recorded(void **state)
{
    fixture_t *fx = *state;
    crash_after(fx, 10);
    size_t len;
    char *seg = slurp_file(fx->seg0, &len);
    size_t offs[16];
    assert_int_equal(frame_offsets((uint8_t *)seg, len, offs, 15), 10);
    /* Cut the segment in the middle of record 9. */
    size_t cut_at = offs[9] + 20;
    assert_int_equal(truncate(fx->seg0, (off_t)cut_at), 0);
    ch_free(seg);

    /* Offline, before recovery: the log verifies up to its last complete record. */
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 9);
    assert_int_equal(rep.torn_tail_bytes, 20);

    ch_audit_t *a = open_log(fx, 1000, 3600000);
    assert_int_equal(ch_audit_size(a), 10);
    char *json;
    assert_int_equal(ch_audit_read(a, 9, &json, NULL), 0);
    json_t *o = json_loads(json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "action")), "audit.recovered");
    json_t *d = json_object_get(o, "details");
    assert_int_equal(json_integer_value(json_object_get(d, "bytes_cut")), 20);
    assert_int_equal(json_integer_value(json_object_get(d, "offset")), (json_int_t)offs[9]);
    char saved[600];
    snprintf(saved, sizeof(saved), "%s/%s", fx->ta.dir,
             json_string_value(json_object_get(d, "saved_as")));
    struct stat st;
    assert_int_equal(stat(saved, &st), 0);
    assert_int_equal(st.st_size, 20);
    json_decref(o);
    ch_free(json);
    append_n(a, 10, 2);
    ch_audit_close(a);
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 12);
    assert_int_equal(rep.torn_tail_bytes, 0);
}

static void test_zero_filled_tail_is_a_torn_tail(void **state)
{
    fixture_t *fx = *state;
    crash_after(fx, 4);
    int fd = open(fx->seg0, O_WRONLY | O_APPEND);
    uint8_t zeros[700] = {0};
    assert_int_equal(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    assert_int_equal(ch_audit_size(a), 5);
    ch_audit_close(a);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_clean_reopen_after_preallocation_writes_no_recovered_record(void **state)
{
    fixture_t *fx = *state;
    crash_after(fx, 5);
    size_t len;
    char *seg = slurp_file(fx->seg0, &len);
    size_t offs[16];
    assert_int_equal(frame_offsets((uint8_t *)seg, len, offs, 15), 5);
    /* The writer left zero padding after the records, to an aligned end. */
    assert_true(len > offs[5]);
    assert_int_equal(len % CH_AUDIT__PAD_ALIGN, 0);
    for (size_t i = offs[5]; i < len; i++) {
        assert_int_equal(seg[i], 0);
    }
    ch_free(seg);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 5);
    assert_int_equal(rep.torn_tail_bytes, 0);

    ch_audit_t *a = open_log(fx, 1000, 3600000);
    assert_int_equal(ch_audit_size(a), 5); /* no audit.recovered record */
    append_n(a, 5, 3);
    ch_audit_close(a);
    char rdir[600];
    snprintf(rdir, sizeof(rdir), "%s/recovered", fx->ta.dir);
    struct stat st;
    assert_int_not_equal(stat(rdir, &st), 0);
    /* Closing trims the padding: a closed log holds frames only. */
    seg = slurp_file(fx->seg0, &len);
    assert_int_equal(frame_offsets((uint8_t *)seg, len, offs, 15), 8);
    assert_int_equal(offs[8], len);
    ch_free(seg);
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 8);
    assert_int_equal(rep.torn_tail_bytes, 0);
}

static void test_torn_frame_in_the_padding_is_recovered(void **state)
{
    fixture_t *fx = *state;
    crash_after(fx, 5);
    size_t len;
    char *seg = slurp_file(fx->seg0, &len);
    size_t offs[16];
    assert_int_equal(frame_offsets((uint8_t *)seg, len, offs, 15), 5);
    ch_free(seg);
    /* An append cut short in place: a length word and part of a record, then zeros. */
    uint8_t part[4 + 50];
    ch_audit__put_be32(part, 200);
    memset(part + 4, 'x', sizeof(part) - 4);
    int fd = open(fx->seg0, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, part, sizeof(part), (off_t)offs[5]), (ssize_t)sizeof(part));
    close(fd);

    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 5);
    assert_int_equal(rep.torn_tail_bytes, len - offs[5]);

    ch_audit_t *a = open_log(fx, 1000, 3600000);
    assert_int_equal(ch_audit_size(a), 6);
    char *json;
    assert_int_equal(ch_audit_read(a, 5, &json, NULL), 0);
    json_t *o = json_loads(json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "action")), "audit.recovered");
    json_t *d = json_object_get(o, "details");
    assert_int_equal(json_integer_value(json_object_get(d, "offset")), (json_int_t)offs[5]);
    assert_int_equal(json_integer_value(json_object_get(d, "bytes_cut")),
                     (json_int_t)(len - offs[5]));
    json_decref(o);
    ch_free(json);
    ch_audit_close(a);
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 6);
    assert_int_equal(rep.torn_tail_bytes, 0);
}

/* After a zero length word (the end of the records) every byte must be zero: appends write
 * frames in order, so data there is not what a crash of the writer leaves. */
static void test_data_after_the_end_marker_is_damage(void **state)
{
    fixture_t *fx = *state;
    crash_after(fx, 5);
    size_t len;
    char *seg = slurp_file(fx->seg0, &len);
    size_t offs[16];
    assert_int_equal(frame_offsets((uint8_t *)seg, len, offs, 15), 5);
    ch_free(seg);
    int fd = open(fx->seg0, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\x01", 1, (off_t)offs[5] + 100), 1);
    close(fd);
    ch_audit_verify_report_t rep;
    assert_int_not_equal(ch_audit_verify_dir(fx->ta.dir, fx->pub, NULL, &rep), 0);
    assert_non_null(strstr(rep.message, "record 5: invalid frame length 0"));
    ch_audit_options_t opt = {.dir = fx->ta.dir, .key = &fx->ta.key};
    ch_audit_t *a = NULL;
    char *err = NULL;
    assert_int_equal(ch_audit_open(&opt, &a, &err), CH_EIO);
    assert_non_null(strstr(err, "audit verify"));
    ch_free(err);
    assert_int_equal(file_size(fx->seg0), (off_t)len); /* nothing was cut */
}

/* The last record, complete but altered, followed by padding: damage, as without padding. */
static void test_flipped_byte_in_the_last_record_before_padding_is_damage(void **state)
{
    fixture_t *fx = *state;
    crash_after(fx, 5);
    size_t len;
    char *seg = slurp_file(fx->seg0, &len);
    size_t offs[16];
    assert_int_equal(frame_offsets((uint8_t *)seg, len, offs, 15), 5);
    ch_free(seg);
    int fd = open(fx->seg0, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, (off_t)offs[4] + 10), 1);
    close(fd);
    ch_audit_verify_report_t rep;
    assert_int_not_equal(ch_audit_verify_dir(fx->ta.dir, fx->pub, NULL, &rep), 0);
    assert_non_null(strstr(rep.message, "record 4: stored leaf hash does not match its bytes"));
    ch_audit_options_t opt = {.dir = fx->ta.dir, .key = &fx->ta.key};
    ch_audit_t *a = NULL;
    char *err = NULL;
    assert_int_equal(ch_audit_open(&opt, &a, &err), CH_EIO);
    ch_free(err);
    assert_int_equal(file_size(fx->seg0), (off_t)len);
}

/* The tail rule on random short segments made of zeros, a few frames' worth of bytes and
 * aligned ends: a verdict and a cut inside the file, never a read outside it (ASan). */
static void test_segment_tail_rule_stays_in_bounds(void **state)
{
    (void)state;
    uint32_t r = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        r = r * 1103515245u + 12345u;
        size_t len = (r >> 8) % (3 * CH_AUDIT__PAD_ALIGN) + 1;
        uint8_t *buf = ch_calloc(1, len);
        r = r * 1103515245u + 12345u;
        size_t off = (r >> 8) % (len + 1);
        for (int k = 0; k < 3; k++) {
            r = r * 1103515245u + 12345u;
            size_t at = (r >> 8) % len;
            r = r * 1103515245u + 12345u;
            size_t n = (r >> 8) % 300;
            for (size_t i = at; i < len && i < at + n; i++) {
                buf[i] = (uint8_t)(r >> (i % 24));
            }
            if (k == 0 && off + 4 <= len) {
                ch_audit__put_be32(buf + off, (r >> 4) % 400);
            }
        }
        size_t cut = SIZE_MAX;
        int t = ch_audit__segment_tail(buf, len, off, &cut);
        assert_true(t >= -1 && t <= 1);
        if (t == 1) {
            assert_true(cut >= off && cut <= len);
        }
        if (t == 0) {
            for (size_t i = off; i < len; i++) {
                assert_int_equal(buf[i], 0);
            }
        }
        ch_free(buf);
    }
}

/* ---- kill -9 stress ------------------------------------------------------------------- */

/* The child of one stress round: opens the log (recovering what the last round left), says
 * so on the pipe (UINT64_MAX), then appends from `threads` threads until it is killed, writing
 * each acknowledged seq to the pipe once ch_audit_append returned it. Records are of random
 * size up to 6 KB, so that batches span pages and a kill often lands inside a pwrite. */
typedef struct stress_child {
    ch_audit_t *a;
    int pipe_fd;
    unsigned seed;
} stress_child_t;

static void *stress_appender(void *arg)
{
    stress_child_t *c = arg;
    unsigned r = c->seed;
    char pad[6001];
    for (;;) {
        r = r * 1103515245u + 12345u;
        size_t n = (r >> 8) % (sizeof(pad) - 1);
        memset(pad, 'a' + (int)(r % 26), n);
        pad[n] = '\0';
        json_t *d = json_pack("{s:s}", "pad", pad);
        ch_audit_entry_t e = {.actor = "system", .action = "stress", .outcome = "ok", .details = d};
        uint64_t seq;
        if (ch_audit_append(c->a, &e, &seq) != 0) {
            _exit(5);
        }
        json_decref(d);
        /* 8 bytes: a pipe write this small is atomic, so threads need no lock. */
        if (write(c->pipe_fd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq)) {
            _exit(6);
        }
    }
    return NULL;
}

static void stress_child_run(fixture_t *fx, int pipe_fd, int threads, unsigned seed)
{
    ch_audit_options_t opt = {.dir = fx->ta.dir,
                              .key = &fx->ta.key,
                              .checkpoint_every_records = 50,
                              .segment_max_bytes = 1024 * 1024};
    ch_audit_t *a = NULL;
    char *err = NULL;
    if (ch_audit_open(&opt, &a, &err) != 0) {
        fprintf(stderr, "stress child: open: %s\n", err);
        _exit(3);
    }
    uint64_t opened = UINT64_MAX;
    if (write(pipe_fd, &opened, sizeof(opened)) != (ssize_t)sizeof(opened)) {
        _exit(6);
    }
    stress_child_t c[64];
    pthread_t th[64];
    for (int i = 0; i < threads && i < 64; i++) {
        c[i] = (stress_child_t){.a = a, .pipe_fd = pipe_fd, .seed = seed * 31u + (unsigned)i};
        if (pthread_create(&th[i], NULL, stress_appender, &c[i]) != 0) {
            _exit(4);
        }
    }
    for (;;) {
        pause();
    }
}

/* The last segment's file, found by name order; 0 when there is none yet. */
static int find_last_segment(fixture_t *fx, char *out, size_t cap)
{
    DIR *d = opendir(fx->ta.dir);
    assert_non_null(d);
    char best[64] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (ch_audit__segment_name_parse(de->d_name, &first) && strcmp(de->d_name, best) > 0) {
            memcpy(best, de->d_name, 25); /* a segment name is 24 characters */
        }
    }
    closedir(d);
    if (best[0] == '\0') {
        return 0;
    }
    snprintf(out, cap, "%s/%s", fx->ta.dir, best);
    return 1;
}

static void last_segment_path(fixture_t *fx, char *out, size_t cap)
{
    assert_true(find_last_segment(fx, out, cap));
}

/* After a writable open, the last segment holds frames, then only zeros to its end: the
 * writer's invariant that recovery restores before anything is appended. */
static void assert_frames_then_zeros(const char *path)
{
    size_t len;
    uint8_t *buf = (uint8_t *)slurp_file(path, &len);
    size_t off = CH_AUDIT__SEG_HEADER;
    ch_audit__frame_t f;
    while (ch_audit__frame_read(buf, len, off, &f) == CH_AUDIT__FRAME_OK) {
        off = f.next;
    }
    for (size_t i = off; i < len; i++) {
        if (buf[i] != 0) {
            fail_msg("%s: non-zero byte at %zu after the records, which end at %zu", path, i, off);
        }
    }
    ch_free(buf);
}

/* kill -9 of a writer with many appenders, again and again: every acknowledged record
 * survives, the offline verifier accepts every state a kill leaves (with, one round in three,
 * a fake torn frame or zeros at the end, as a power cut leaves), and a writable open leaves
 * frames then zeros. Rounds and threads: CH_AUDIT_CRASH_ROUNDS, CH_AUDIT_CRASH_THREADS. */
static void test_kill_9_stress_with_concurrent_appenders(void **state)
{
    fixture_t *fx = *state;
    const char *env = getenv("CH_AUDIT_CRASH_ROUNDS");
    int rounds = env != NULL && env[0] != '\0' ? (int)strtol(env, NULL, 10) : 30;
    env = getenv("CH_AUDIT_CRASH_THREADS");
    int threads = env != NULL && env[0] != '\0' ? (int)strtol(env, NULL, 10) : 8;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    printf("kill -9 stress: %d rounds, %d appenders, seed %u\n", rounds, threads, seed);
    uint64_t acked_max = 0;
    int have_acked = 0, torn = 0, tears = 0;
    for (int r = 0; r < rounds; r++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            stress_child_run(fx, p[1], threads, seed + (unsigned)r);
        }
        close(p[1]);
        seed = seed * 1103515245u + 12345u;
        usleep(5000 + (seed >> 8) % 40000);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int opened = 0;
        uint64_t s;
        while (read(p[0], &s, sizeof(s)) == (ssize_t)sizeof(s)) {
            if (s == UINT64_MAX) {
                opened = 1;
            } else if (!have_acked || s > acked_max) {
                acked_max = s;
                have_acked = 1;
            }
        }
        close(p[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status)) {
            fail_msg("round %d: the writer exited with %d (3: its open failed)", r,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        char last[600];
        if (!find_last_segment(fx, last, sizeof(last))) {
            /* Killed before its open made the first segment (a busy machine can take longer
             * than the round's few milliseconds to start it): nothing on disk to check. */
            assert_true(!opened && !have_acked);
            continue;
        }
        /* A fake tear only after a writer that opened, and so recovered the previous one: a
         * writer that never ran cannot leave a second tail after the first. */
        if (opened && r % 3 != 0) {
            uint8_t tear[4096] = {0};
            size_t n = 1 + (seed >> 4) % sizeof(tear);
            if (r % 3 == 1) {
                n = 20 + (seed >> 4) % 300;
                ch_audit__put_be32(tear, (uint32_t)(n + 10)); /* a frame cut short */
                memset(tear + 4, 'x', n - 4);
            }
            int fd = open(last, O_WRONLY | O_APPEND);
            assert_true(fd >= 0);
            assert_int_equal(write(fd, tear, n), (ssize_t)n);
            close(fd);
            tears++;
        }
        ch_audit_verify_report_t rep;
        if (verify(fx, NULL, &rep) != 0) {
            fail_msg("round %d: verify after kill -9: %s", r, rep.message);
        }
        if (have_acked && rep.records <= acked_max) {
            fail_msg("round %d: acknowledged record %" PRIu64 " lost (%" PRIu64 " records)", r,
                     acked_max, rep.records);
        }
        torn += rep.torn_tail_bytes > 0;
        if (r % 4 == 3) {
            /* Recover here too: frames then zeros, before and after a clean close (which
             * trims the padding). */
            ch_audit_t *a = open_log(fx, 50, 3600000);
            assert_true(ch_audit_size(a) > acked_max);
            last_segment_path(fx, last, sizeof(last));
            assert_frames_then_zeros(last);
            ch_audit_close(a);
            size_t len;
            char *seg = slurp_file(last, &len);
            size_t off = CH_AUDIT__SEG_HEADER;
            ch_audit__frame_t f;
            while (ch_audit__frame_read((uint8_t *)seg, len, off, &f) == CH_AUDIT__FRAME_OK) {
                off = f.next;
            }
            assert_int_equal(off, len); /* closed: frames only */
            ch_free(seg);
        }
    }
    ch_audit_t *a = open_log(fx, 50, 3600000);
    assert_true(ch_audit_size(a) > acked_max);
    ch_audit_close(a);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.torn_tail_bytes, 0);
    printf("kill -9 stress: %" PRIu64 " records, %d rounds with a torn tail, %d fake tears\n",
           rep.records, torn, tears);
}

static void test_damage_covered_by_a_checkpoint_is_never_cut(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 10, 5);
    size_t len;
    char *seg = slurp_file(fx->seg0, &len);
    /* Truncating inside record 8 looks like a torn tail, but a checkpoint covers it. */
    size_t offs[16];
    frame_offsets((uint8_t *)seg, len, offs, 15);
    assert_int_equal(truncate(fx->seg0, (off_t)(offs[8] + 10)), 0);
    ch_audit_options_t opt = {.dir = fx->ta.dir, .key = &fx->ta.key};
    ch_audit_t *a = NULL;
    char *err = NULL;
    assert_int_equal(ch_audit_open(&opt, &a, &err), CH_EIO);
    assert_non_null(strstr(err, "audit verify"));
    ch_free(err);
    /* And nothing was cut. */
    struct stat st;
    assert_int_equal(stat(fx->seg0, &st), 0);
    assert_int_equal(st.st_size, (off_t)(offs[8] + 10));
    ch_free(seg);
}

static void test_torn_checkpoint_note_is_cut_on_reopen(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 6, 3);
    int fd = open(fx->cpath, O_WRONLY | O_APPEND);
    const char partial[] = "cctvhub\n6\nAAAA";
    assert_int_equal(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));
    close(fd);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    assert_int_equal(ch_audit_size(a), 7); /* the recovery record */
    ch_audit_close(a);
    assert_int_equal(verify(fx, NULL, &rep), 0);
}

/* ---- checkpoints ----------------------------------------------------------------------- */

static void test_checkpoint_note_format_parses_and_verifies_with_published_key(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    char *note = NULL;
    assert_int_equal(ch_audit_checkpoint_latest(a, &note), CH_ENOTFOUND);
    append_n(a, 0, 5);
    assert_int_equal(ch_audit_checkpoint_now(a), 0);
    assert_int_equal(ch_audit_checkpoint_latest(a, &note), 0);

    uint8_t root[32];
    assert_int_equal(ch_audit_root(a, 5, root), 0);
    char b64[64];
    sodium_bin2base64(b64, sizeof(b64), root, 32, sodium_base64_VARIANT_ORIGINAL);
    char head[200];
    snprintf(head, sizeof(head), "cctvhub\n5\n%s\ntime ", b64);
    assert_int_equal(strncmp(note, head, strlen(head)), 0);
    /* The text, a blank line, one signature line "— cctvhub <base64 of 68 bytes>". */
    const char *blank = strstr(note, "\n\n");
    assert_non_null(blank);
    const char *sig = blank + 2;
    assert_int_equal(strncmp(sig, "\xe2\x80\x94 cctvhub ", 12), 0);
    const char *sig_b64 = sig + 12;
    size_t sig_len = strlen(sig_b64) - 1;
    assert_int_equal(sig_b64[sig_len], '\n');
    uint8_t raw[68];
    size_t got;
    assert_int_equal(sodium_base642bin(raw, sizeof(raw), sig_b64, sig_len, NULL, &got, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(got, 68);
    /* Independently of the module's parser: key id, then Ed25519 over the text. */
    assert_memory_equal(raw, fx->ta.key.key_id, 4);
    ch_audit_key_t pub;
    assert_int_equal(ch_audit_pubkey_parse(fx->pub, &pub, NULL), 0);
    size_t text_len = (size_t)(blank - note) + 1;
    assert_int_equal(crypto_sign_verify_detached(raw + 4, (const uint8_t *)note, text_len, pub.pk),
                     0);
    uint8_t h[32];
    uint8_t pre[64];
    size_t nl = strlen(pub.name);
    memcpy(pre, pub.name, nl);
    pre[nl] = '\n';
    pre[nl + 1] = 0x01;
    memcpy(pre + nl + 2, pub.pk, 32);
    crypto_hash_sha256(h, pre, nl + 34);
    assert_memory_equal(h, pub.key_id, 4);

    ch_audit_checkpoint_t cp;
    char *err = NULL;
    assert_int_equal(ch_audit_checkpoint_parse(note, strlen(note), &pub, &cp, &err), 0);
    assert_int_equal(cp.size, 5);
    assert_memory_equal(cp.root, root, 32);
    assert_true(cp.signed_by_key);
    assert_true(cp.time_ns > 1700000000000000000LL);
    assert_string_equal(cp.origin, "cctvhub");

    /* Nothing new: no second note. */
    assert_int_equal(ch_audit_checkpoint_now(a), 0);
    ch_free(note);
    ch_audit_close(a);
    size_t flen;
    char *file = slurp_file(fx->cpath, &flen);
    assert_int_equal(strlen(strstr(file, "cctvhub\n5\n")), flen); /* only the one note */
    ch_free(file);
}

static void test_checkpoint_every_n_records(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 10, 3600000);
    append_n(a, 0, 35);
    char *note;
    assert_int_equal(ch_audit_checkpoint_latest(a, &note), 0);
    ch_audit_checkpoint_t cp;
    assert_int_equal(ch_audit_checkpoint_parse(note, strlen(note), &fx->ta.key, &cp, NULL), 0);
    assert_int_equal(cp.size, 30);
    ch_free(note);
    ch_audit_close(a); /* a final checkpoint at 35 */
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.checkpoints, 4);
}

static void test_proofs_from_the_log_verify_against_its_checkpoint(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    append_n(a, 0, 13);
    uint8_t r7[32], r13[32];
    assert_int_equal(ch_audit_root(a, 7, r7), 0);
    assert_int_equal(ch_audit_root(a, 13, r13), 0);
    ch_audit_proof_t p;
    assert_int_equal(ch_audit_prove_consistency(a, 7, 13, &p), 0);
    assert_int_equal(ch_audit_verify_consistency(7, 13, r7, r13, &p), 0);
    char *json;
    size_t len;
    assert_int_equal(ch_audit_read(a, 4, &json, &len), 0);
    uint8_t leaf[32];
    ch_audit_leaf_hash(json, len, leaf);
    ch_free(json);
    assert_int_equal(ch_audit_prove_inclusion(a, 4, 13, &p), 0);
    assert_int_equal(ch_audit_verify_inclusion(leaf, 4, 13, &p, r13), 0);
    assert_int_equal(ch_audit_prove_inclusion(a, 13, 13, &p), CH_EINVAL);
    ch_audit_close(a);
}

/* ---- tampering ------------------------------------------------------------------------- */

static void test_flipped_byte_is_detected(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 30, 10);
    size_t len, offs[40];
    char *seg = slurp_file(fx->seg0, &len);
    frame_offsets((uint8_t *)seg, len, offs, 39);
    seg[offs[17] + 4 + 30] ^= 0x01;
    write_file(fx->seg0, seg, len);
    ch_free(seg);
    ch_audit_verify_report_t rep;
    assert_int_equal(ch_audit_verify_dir(fx->ta.dir, fx->pub, NULL, &rep), CH_EPARSE);
    assert_false(rep.ok);
    assert_int_equal(rep.bad_seq, 17);
    assert_int_equal(rep.bad_offset, offs[17]);
    assert_string_equal(rep.bad_segment, "00000000000000000000.seg");
    assert_non_null(strstr(rep.message, "record 17: stored leaf hash does not match its bytes "
                                        "(flipped byte?)"));
    /* The hub refuses to open it too, rather than append to a damaged log. */
    ch_audit_options_t opt = {.dir = fx->ta.dir, .key = &fx->ta.key};
    ch_audit_t *a = NULL;
    char *err = NULL;
    assert_int_equal(ch_audit_open(&opt, &a, &err), CH_EIO);
    ch_free(err);
}

static void test_dropped_record_is_detected(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 50, 10);
    size_t len, offs[60];
    char *seg = slurp_file(fx->seg0, &len);
    frame_offsets((uint8_t *)seg, len, offs, 59);
    memmove(seg + offs[42], seg + offs[43], len - offs[43]);
    write_file(fx->seg0, seg, len - (offs[43] - offs[42]));
    ch_free(seg);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_seq, 42);
    assert_non_null(strstr(rep.message, "record 42 missing: sequence jumps from 41 to 43"));
}

static void test_two_swapped_records_are_detected(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 20, 10);
    size_t len, offs[30];
    char *seg = slurp_file(fx->seg0, &len);
    frame_offsets((uint8_t *)seg, len, offs, 29);
    size_t l5 = offs[6] - offs[5], l6 = offs[7] - offs[6];
    char *tmp = ch_malloc(l5 + l6);
    memcpy(tmp, seg + offs[6], l6);
    memcpy(tmp + l6, seg + offs[5], l5);
    memcpy(seg + offs[5], tmp, l5 + l6);
    ch_free(tmp);
    write_file(fx->seg0, seg, len);
    ch_free(seg);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_seq, 5);
    assert_non_null(strstr(rep.message, "records 5 and 6 are swapped"));
}

static void test_record_cut_in_the_middle_of_the_log_is_detected(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 30, 10);
    size_t len, offs[40];
    char *seg = slurp_file(fx->seg0, &len);
    frame_offsets((uint8_t *)seg, len, offs, 39);
    /* Remove 25 bytes from the middle of record 12. */
    size_t at = offs[12] + 40;
    memmove(seg + at, seg + at + 25, len - at - 25);
    write_file(fx->seg0, seg, len - 25);
    ch_free(seg);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_seq, 12);
    assert_non_null(strstr(rep.message, "record 12:"));
}

static void test_trimmed_end_is_caught_by_a_checkpoint(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 30, 10);
    size_t len, offs[40];
    char *seg = slurp_file(fx->seg0, &len);
    frame_offsets((uint8_t *)seg, len, offs, 39);
    assert_int_equal(truncate(fx->seg0, (off_t)offs[25]), 0);
    ch_free(seg);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_checkpoint, 2);
    assert_non_null(strstr(rep.message, "checkpoint 2 (size 30) is beyond the end of the log"));
}

/* Rewrites the checkpoints file: every note replaced by one for the same size, signed by
 * `key`, with the root from `tree` (or the stored root when tree is NULL). */
static void resign_checkpoints(fixture_t *fx, const ch_audit_key_t *key, ch_audit__tree_t *tree)
{
    size_t len;
    char *file = slurp_file(fx->cpath, &len);
    ch_buf_t out = {0};
    size_t off = 0, end;
    while (off < len && ch_audit__note_end(file, len, off, &end) == 0) {
        ch_audit_checkpoint_t cp;
        assert_int_equal(ch_audit_checkpoint_parse(file + off, end - off, NULL, &cp, NULL), 0);
        if (tree != NULL) {
            assert_int_equal(ch_audit__tree_root(tree, cp.size, cp.root), 0);
        }
        char *note;
        assert_int_equal(
            ch_audit_checkpoint_sign(cp.origin, cp.size, cp.root, cp.time_ns, key, &note), 0);
        ch_buf_append_str(&out, note);
        ch_free(note);
        off = end;
    }
    write_file(fx->cpath, out.data, out.len);
    ch_buf_fini(&out);
    ch_free(file);
}

static void test_replaced_checkpoint_is_detected(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 30, 10);
    /* Checkpoint 1 replaced by a validly signed note for another root. */
    size_t len;
    char *file = slurp_file(fx->cpath, &len);
    size_t e0, e1;
    assert_int_equal(ch_audit__note_end(file, len, 0, &e0), 0);
    assert_int_equal(ch_audit__note_end(file, len, e0, &e1), 0);
    uint8_t other[32] = {1, 2, 3};
    char *note;
    assert_int_equal(ch_audit_checkpoint_sign("cctvhub", 20, other, 1, &fx->ta.key, &note), 0);
    ch_buf_t out = {0};
    ch_buf_append(&out, file, e0);
    ch_buf_append_str(&out, note);
    ch_buf_append(&out, file + e1, len - e1);
    write_file(fx->cpath, out.data, out.len);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_checkpoint, 1);
    assert_non_null(strstr(rep.message, "checkpoint 1 (size 20): root hash does not match"));

    /* The same note with its root changed but the old signature kept. */
    ch_audit_checkpoint_t cp;
    assert_int_equal(ch_audit_checkpoint_parse(file + e0, e1 - e0, NULL, &cp, NULL), 0);
    char b64a[64], b64b[64];
    sodium_bin2base64(b64a, sizeof(b64a), cp.root, 32, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64b, sizeof(b64b), other, 32, sodium_base64_VARIANT_ORIGINAL);
    char *at = strstr(file + e0, b64a);
    assert_non_null(at);
    memcpy(at, b64b, strlen(b64b));
    write_file(fx->cpath, file, len);
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_checkpoint, 1);
    assert_non_null(strstr(rep.message, "checkpoint 1 (size 20): signature does not verify with "
                                        "the given key"));
    ch_buf_fini(&out);
    ch_free(note);
    ch_free(file);
}

static void test_log_resigned_with_another_key_is_detected(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 30, 10);
    char other_dir[400];
    snprintf(other_dir, sizeof(other_dir), "%s/other", fx->ta.data);
    ch_audit_key_t k2;
    assert_int_equal(ch_audit_keys_init(other_dir, NULL), 0);
    assert_int_equal(ch_audit_keys_load(other_dir, &k2, NULL), 0);
    resign_checkpoints(fx, &k2, NULL);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_checkpoint, 0);
    assert_non_null(strstr(rep.message, "checkpoint 0 (size 10): signature does not verify with "
                                        "the given key"));
    /* With the attacker's key it verifies, which is why the auditor must hold the real one. */
    char pub2[256];
    assert_int_equal(ch_audit_pubkey_format(&k2, pub2, sizeof(pub2)), 0);
    assert_int_equal(ch_audit_verify_dir(fx->ta.dir, pub2, NULL, &rep), 0);
    ch_audit_key_wipe(&k2);
}

static void test_rewritten_log_with_valid_hashes_is_caught_by_an_older_checkpoint(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 40, 10);
    /* The auditor keeps the checkpoint of size 30. */
    size_t len;
    char *file = slurp_file(fx->cpath, &len);
    size_t off = 0, end = 0;
    for (int i = 0; i < 3; i++) {
        off = end;
        assert_int_equal(ch_audit__note_end(file, len, off, &end), 0);
    }
    char *kept = ch_strndup(file + off, end - off);
    ch_free(file);
    assert_non_null(strstr(kept, "\n30\n"));

    /* Someone with the node key rewrites record 25 onward: new bytes, valid leaf hashes, and
     * every checkpoint re-signed for the new tree. */
    char *seg = slurp_file(fx->seg0, &len);
    size_t offs[50];
    frame_offsets((uint8_t *)seg, len, offs, 49);
    ch_audit__tree_t tree;
    ch_audit__tree_init(&tree);
    ch_buf_t out = {0};
    ch_buf_append(&out, seg, CH_AUDIT__SEG_HEADER);
    for (int i = 0; i < 40; i++) {
        uint8_t *f = (uint8_t *)seg + offs[i];
        uint32_t rl = ch_audit__be32(f);
        char *rec = ch_strndup((char *)f + 4, rl);
        if (i >= 25) {
            char *p = strstr(rec, "user:alice");
            assert_non_null(p);
            memcpy(p, "user:mallo", 10);
        }
        uint8_t h[32], lenb[4];
        ch_audit_leaf_hash(rec, rl, h);
        ch_audit__put_be32(lenb, rl);
        ch_buf_append(&out, lenb, 4);
        ch_buf_append(&out, rec, rl);
        ch_buf_append(&out, h, 32);
        ch_audit__tree_append(&tree, h);
        ch_free(rec);
    }
    write_file(fx->seg0, out.data, out.len);
    ch_buf_fini(&out);
    ch_free(seg);
    resign_checkpoints(fx, &fx->ta.key, &tree);
    ch_audit__tree_fini(&tree);

    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0); /* consistent in itself */
    assert_int_equal(ch_audit_verify_dir(fx->ta.dir, fx->pub, kept, &rep), CH_EPARSE);
    assert_non_null(strstr(
        rep.message, "the log does not extend the given checkpoint: root at size 30 differs"));
    ch_free(kept);
}

static void test_verify_without_key_finds_node_pub_next_to_the_log(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 5, 10);
    ch_audit_verify_report_t rep;
    assert_int_equal(ch_audit_verify_dir(fx->ta.dir, NULL, NULL, &rep), 0);
    assert_true(rep.signatures_checked);
    assert_int_equal(rep.checkpoints, 1);
    assert_int_equal(ch_audit_verify_dir("/nonexistent/audit", fx->pub, NULL, &rep), CH_ENOENT);
    assert_int_equal(ch_audit_verify_dir(fx->ta.dir, "garbage", NULL, &rep), CH_EINVAL);
}

static void test_segments_rotate_and_verify(void **state)
{
    fixture_t *fx = *state;
    ch_audit_options_t opt = {.dir = fx->ta.dir, .key = &fx->ta.key, .segment_max_bytes = 4096};
    ch_audit_t *a = NULL;
    assert_int_equal(ch_audit_open(&opt, &a, NULL), 0);
    append_n(a, 0, 100);
    char *json;
    assert_int_equal(ch_audit_read(a, 99, &json, NULL), 0);
    assert_non_null(strstr(json, "\"seq\":99,"));
    ch_free(json);
    ch_audit_close(a);
    assert_int_equal(ch_audit_open(&opt, &a, NULL), 0);
    assert_int_equal(ch_audit_size(a), 100);
    append_n(a, 100, 5);
    ch_audit_close(a);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 105);
    assert_true(rep.segments > 3);
}

/* ---- the verifier's record check ------------------------------------------------------- */

/* 1 when jansson, as the verifier used to parse records, takes rec as an object with a
 * non-negative integer "seq", setting *seq. */
static int jansson_accepts(const char *rec, size_t len, uint64_t *seq)
{
    json_t *o = json_loadb(rec, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *s = json_object_get(o, "seq");
    int ok = json_is_object(o) && json_is_integer(s) && json_integer_value(s) >= 0;
    if (ok) {
        *seq = (uint64_t)json_integer_value(s);
    }
    json_decref(o);
    return ok;
}

static int check_str(const char *rec)
{
    uint64_t seq;
    return ch_audit__record_check((const uint8_t *)rec, strlen(rec), &seq);
}

static void test_record_check_takes_what_the_writer_makes(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 1000, 3600000);
    /* Keys whose escaped form sorts differently from their decoded form ("a\n" < "aB" once
     * decoded, but '\\' > 'B'), non-ASCII, reals, big integers, nesting, empty containers. */
    json_t *d = json_pack("{s:i, s:i, s:s, s:f, s:f, s:I, s:I, s:[i,{},[]], s:{s:n, s:b}, s:s}",
                          "a\n", 1, "aB", 2, "\xea\xb0\x80", "\xf0\x9f\x98\x80\"\\/\x01", "r",
                          1.5e300, "tiny", 4.9406564584124654e-324, "max", (json_int_t)INT64_MAX,
                          "min", (json_int_t)INT64_MIN, "arr", -7, "o", "z", "t", 1, "\x7f", "");
    assert_non_null(d);
    ch_audit_entry_t e = {.actor = "user:\"q\"", .action = "x", .outcome = "ok", .details = d};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ch_audit_append(a, &e, NULL), 0);
    }
    json_decref(d);
    for (uint64_t i = 0; i < 3; i++) {
        char *json;
        size_t len;
        uint64_t seq = 99;
        assert_int_equal(ch_audit_read(a, i, &json, &len), 0);
        assert_int_equal(ch_audit__record_check((const uint8_t *)json, len, &seq), 0);
        assert_int_equal(seq, i);
        ch_free(json);
    }
    ch_audit_close(a);
}

static void test_record_check_refuses_what_is_not_canonical(void **state)
{
    (void)state;
    const char *tail = "\"seq\":3,\"time\":5}";
    assert_int_equal(check_str("{\"a\":1,\"seq\":3,\"time\":5}"), 0);
    static const char *const bad[] = {
        "{\"seq\":3,\"time\":5",                            /* not closed */
        "{\"b\":1,\"a\":1,\"seq\":3,\"time\":5}",           /* keys not sorted */
        "{\"a\":1,\"a\":1,\"seq\":3,\"time\":5}",           /* duplicate key */
        "{\"a\":1,\"seq\":2,\"seq\":3,\"time\":5}",         /* a second "seq" */
        "{\"a\":{\"y\":1,\"x\":2},\"seq\":3,\"time\":5}",   /* nested keys not sorted */
        "{\"a\":{\"x\":1,\"x\":2},\"seq\":3,\"time\":5}",   /* nested duplicate */
        "{\"a\":\"\\u0000\",\"seq\":3,\"time\":5}",         /* NUL */
        "{\"a\":\"\\ud800\",\"seq\":3,\"time\":5}",         /* lone surrogate */
        "{\"a\":\"\xc0\xaf\",\"seq\":3,\"time\":5}",        /* overlong UTF-8 */
        "{\"a\":\"\xed\xa0\x80\",\"seq\":3,\"time\":5}",    /* UTF-8 surrogate */
        "{\"a\":\"\x01\",\"seq\":3,\"time\":5}",            /* raw control byte */
        "{\"a\":01,\"seq\":3,\"time\":5}",                  /* leading zero */
        "{\"a\":1e999,\"seq\":3,\"time\":5}",               /* real overflow */
        "{\"a\":9223372036854775808,\"seq\":3,\"time\":5}", /* integer overflow */
        "{\"a\":[1,],\"seq\":3,\"time\":5}",                /* trailing comma */
        "{\"a\":tru,\"seq\":3,\"time\":5}",                 /* bad literal */
        "{\"a\":\"x\\q\",\"seq\":3,\"time\":5}",            /* bad escape */
        "{\"a\\n\":1,\"seq\":3,\"time\":5}",                /* escaped top-level key */
        "{\"a\":1,\"seq\":3}",                              /* no time */
        "{\"a\":1,\"seq\":\"3\",\"time\":5}",               /* seq a string */
        "{\"seq\":3,\"time\":5}x",                          /* trailing bytes */
        "[\"seq\",3,\"time\",5]",                           /* not an object */
        "{\"a\":\"},\\\"seq\\\":3,\\\"time\\\":5}",         /* the tail inside a string */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check_str(bad[i]) != CH_EPARSE) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    (void)tail;
    /* Depth: 2048 nested arrays are fine, 2049 are not (jansson's own limit). */
    for (int depth = 2047; depth <= 2048; depth++) {
        ch_buf_t b = {0};
        ch_buf_append(&b, "{\"a\":", 5);
        for (int i = 0; i < depth; i++) {
            ch_buf_append(&b, "[", 1);
        }
        for (int i = 0; i < depth; i++) {
            ch_buf_append(&b, "]", 1);
        }
        ch_buf_appendf(&b, ",\"seq\":3,\"time\":5}");
        uint64_t seq;
        int rc = ch_audit__record_check((const uint8_t *)b.data, b.len, &seq);
        assert_int_equal(rc, depth == 2047 ? 0 : CH_EPARSE);
        ch_buf_fini(&b);
    }
}

/* Whatever the check takes, jansson takes too, with the same "seq": random byte damage to
 * real records never slips through the cheap check where the full parse would stop it. */
static void test_record_check_is_never_looser_than_jansson(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "{\"action\":\"camera.update\",\"actor\":\"user:alice\",\"details\":{\"a\\n\":[1,-2.5e3,"
        "true,false,null,{}],\"aB\":\"\xea\xb0\x80\\u00e9\\ud83d\\ude00\"},\"legal_basis\":null,"
        "\"node\":\"cctvhub\",\"object\":\"camera:7\",\"outcome\":\"ok\",\"purpose\":null,"
        "\"seq\":7,\"time\":1764061386123456789}",
        "{\"a\":{\"b\":{\"c\":[[],[0.5]]}},\"seq\":12,\"time\":0}",
    };
    uint32_t rnd = 12345;
    char buf[512];
    int accepted = 0;
    for (int round = 0; round < 40000; round++) {
        const char *seed = seeds[round % 2];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int flips = 1 + round % 3;
        for (int f = 0; f < flips; f++) {
            rnd = rnd * 1103515245u + 12345u;
            size_t at = (rnd >> 8) % len;
            rnd = rnd * 1103515245u + 12345u;
            static const char alphabet[] = "{}[]\",:\\u0123456789eE.-+tfnrl aBseqtime\x80\xc3";
            buf[at] = (rnd >> 16) % 4 == 0 ? (char)(rnd >> 8)
                                           : alphabet[(rnd >> 8) % (sizeof(alphabet) - 1)];
        }
        uint64_t s1 = 0, s2 = 0;
        if (ch_audit__record_check((const uint8_t *)buf, len, &s1) == 0) {
            accepted++;
            if (!jansson_accepts(buf, len, &s2) || s1 != s2) {
                fail_msg("check took what jansson refuses: %.*s", (int)len, buf);
            }
        }
    }
    assert_true(accepted > 0);
}

/* A log big enough that the verifier splits its records among threads: the first bad record
 * is still the one reported, whichever thread found it. */
static void test_parallel_verify_reports_the_first_bad_record(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 6000, 1000);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, 6000);
    assert_int_equal(rep.checkpoints, 6);
    uint8_t root[32];
    ch_audit_options_t ro = {.dir = fx->ta.dir};
    ch_audit_t *a = NULL;
    assert_int_equal(ch_audit_open(&ro, &a, NULL), 0);
    assert_int_equal(ch_audit_root(a, 6000, root), 0);
    ch_audit_close(a);
    assert_memory_equal(root, rep.root, 32);

    size_t len;
    size_t *offs = ch_malloc(6100 * sizeof(size_t));
    char *seg = slurp_file(fx->seg0, &len);
    assert_int_equal(frame_offsets((uint8_t *)seg, len, offs, 6100), 6000);
    seg[offs[5500] + 4 + 10] ^= 0x01;
    seg[offs[4321] + 4 + 10] ^= 0x01;
    write_file(fx->seg0, seg, len);
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_seq, 4321);
    assert_int_equal(rep.records, 4321);
    assert_non_null(strstr(rep.message, "record 4321: stored leaf hash does not match"));
    ch_free(seg);
    ch_free(offs);
}

/* A record re-hashed after an edit that keeps it JSON but not canonical: the hash matches, so
 * only the record check (or a checkpoint) can tell. */
static void test_rehashed_non_canonical_record_is_detected(void **state)
{
    fixture_t *fx = *state;
    make_log(fx, 10, 1000);
    size_t len, offs[20];
    char *seg = slurp_file(fx->seg0, &len);
    frame_offsets((uint8_t *)seg, len, offs, 19);
    /* "action" becomes "zction": still JSON, keys no longer sorted. */
    char *rec = seg + offs[3] + 4;
    uint32_t rlen = ch_audit__be32((uint8_t *)seg + offs[3]);
    char *k = memmem(rec, rlen, "\"action\"", 8);
    assert_non_null(k);
    k[1] = 'z';
    ch_audit_leaf_hash(rec, rlen, (uint8_t *)rec + rlen);
    write_file(fx->seg0, seg, len);
    ch_free(seg);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), CH_EPARSE);
    assert_int_equal(rep.bad_seq, 3);
    assert_non_null(strstr(rep.message, "record 3: it is not a canonical audit record"));
}

/* 64 appenders at once: every record durable once, in one gap-free order, and the log
 * verifies (the wake-up tree and the lead hand-off lose no one). */
#define MANY_THREADS 64
#define MANY_EACH    40
typedef struct many {
    ch_audit_t *a;
    int rc;
    uint64_t seq[MANY_EACH];
} many_t;

static void *many_main(void *p)
{
    many_t *m = p;
    ch_audit_entry_t e = {.actor = "system", .action = "bench", .outcome = "ok"};
    for (int i = 0; i < MANY_EACH && m->rc == 0; i++) {
        m->rc = ch_audit_append(m->a, &e, &m->seq[i]);
    }
    return NULL;
}

static void test_group_commit_64_threads(void **state)
{
    fixture_t *fx = *state;
    ch_audit_t *a = open_log(fx, 100, 3600000);
    static many_t m[MANY_THREADS];
    pthread_t th[MANY_THREADS];
    for (int t = 0; t < MANY_THREADS; t++) {
        m[t] = (many_t){.a = a};
        assert_int_equal(pthread_create(&th[t], NULL, many_main, &m[t]), 0);
    }
    for (int t = 0; t < MANY_THREADS; t++) {
        pthread_join(th[t], NULL);
    }
    uint8_t *seen = ch_calloc(MANY_THREADS * MANY_EACH, 1);
    for (int t = 0; t < MANY_THREADS; t++) {
        assert_int_equal(m[t].rc, 0);
        for (int i = 0; i < MANY_EACH; i++) {
            assert_true(m[t].seq[i] < MANY_THREADS * MANY_EACH);
            assert_false(seen[m[t].seq[i]]);
            seen[m[t].seq[i]] = 1;
            assert_true(i == 0 || m[t].seq[i] > m[t].seq[i - 1]);
        }
    }
    ch_free(seen);
    assert_int_equal(ch_audit_size(a), MANY_THREADS * MANY_EACH);
    assert_int_equal(ch_audit_checkpoint_now(a), 0);
    ch_audit_close(a);
    ch_audit_verify_report_t rep;
    assert_int_equal(verify(fx, NULL, &rep), 0);
    assert_int_equal(rep.records, MANY_THREADS * MANY_EACH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_keys_init_makes_private_0600_and_refuses_to_overwrite),
        T(test_key_name_for_node),
        T(test_append_reopen_round_trip_keeps_canonical_records),
        T(test_bad_entries_are_refused),
        T(test_read_only_open_refuses_appends_and_second_writer_is_refused),
        T(test_group_commit_8_threads_all_records_durable_and_ordered),
        T(test_torn_tail_is_cut_on_reopen_and_recorded),
        T(test_zero_filled_tail_is_a_torn_tail),
        T(test_clean_reopen_after_preallocation_writes_no_recovered_record),
        T(test_torn_frame_in_the_padding_is_recovered),
        T(test_data_after_the_end_marker_is_damage),
        T(test_flipped_byte_in_the_last_record_before_padding_is_damage),
        T(test_segment_tail_rule_stays_in_bounds),
        T(test_kill_9_stress_with_concurrent_appenders),
        T(test_damage_covered_by_a_checkpoint_is_never_cut),
        T(test_torn_checkpoint_note_is_cut_on_reopen),
        T(test_checkpoint_note_format_parses_and_verifies_with_published_key),
        T(test_checkpoint_every_n_records),
        T(test_proofs_from_the_log_verify_against_its_checkpoint),
        T(test_flipped_byte_is_detected),
        T(test_dropped_record_is_detected),
        T(test_two_swapped_records_are_detected),
        T(test_record_cut_in_the_middle_of_the_log_is_detected),
        T(test_trimmed_end_is_caught_by_a_checkpoint),
        T(test_replaced_checkpoint_is_detected),
        T(test_log_resigned_with_another_key_is_detected),
        T(test_rewritten_log_with_valid_hashes_is_caught_by_an_older_checkpoint),
        T(test_verify_without_key_finds_node_pub_next_to_the_log),
        T(test_segments_rotate_and_verify),
        T(test_record_check_takes_what_the_writer_makes),
        T(test_record_check_refuses_what_is_not_canonical),
        T(test_record_check_is_never_looser_than_jansson),
        T(test_parallel_verify_reports_the_first_bad_record),
        T(test_rehashed_non_canonical_record_is_detected),
        T(test_group_commit_64_threads),
#undef T
    };
    ch_log_set_level(CH_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
