/*
 * bench/audit/appender: durable appends per second, the same workload three ways, for
 * bench/audit/run.sh. Not part of the product.
 *
 *   appender audit  DIR THREADS SECONDS   ch_audit_append from THREADS threads (group commit)
 *   appender sqlite DIR THREADS SECONDS   SQLite (WAL, synchronous=FULL): one INSERT and one
 *                                         COMMIT per record, each thread its own connection
 *   appender fsync  DIR 1 SECONDS         the floor: append one record and fdatasync, in a loop
 *   appender overwrite DIR 1 SECONDS      the same over blocks written beforehand (no file
 *                                         growth to journal), as SQLite's recycled WAL does
 *   appender fill   DIR COUNT             appends COUNT records (many threads), for the
 *                                         verify timing
 *
 * Each timed mode prints one line: "MODE THREADS RECORDS SECONDS PER_SECOND".
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct bench {
    const char *mode;
    const char *dir;
    int threads;
    double seconds;
    atomic_int stop;
    ch_audit_t *audit;   /* the open log, in audit and fill modes */
    long long fill_left; /* fill mode: records still to append, shared by the threads */
    atomic_llong fill_next;
    atomic_int ready; /* workers done with their set-up (overwrite) */
} bench_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The record every mode writes: the canonical JSON an audit append of the same fields makes,
 * near enough in size (about 200 bytes) that the three sides move the same bytes. */
static int bench_record(char *out, size_t cap, int thread, long long i)
{
    return snprintf(out, cap,
                    "{\"action\":\"bench.append\",\"actor\":\"bench\",\"details\":{\"i\":%lld,"
                    "\"thread\":%d},\"node\":\"bench-node\",\"object\":\"camera:bench-%d\","
                    "\"outcome\":\"ok\",\"seq\":%lld,\"time\":\"2026-11-25T00:00:00.000000000Z\"}",
                    i, thread, thread, i);
}

static long strtol_or_die(const char *s, const char *what)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0) {
        fprintf(stderr, "appender: bad %s \"%s\"\n", what, s);
        exit(2);
    }
    return v;
}

/* ---- SQLite: WAL, synchronous=FULL, one INSERT and one COMMIT per record --------------- */

typedef struct worker {
    bench_t *b;
    int id;
    long long count;
    int rc;
} worker_t;

static void *sqlite_worker(void *arg)
{
    worker_t *w = arg;
    char path[4096];
    snprintf(path, sizeof(path), "%s/bench.db", w->b->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "appender: sqlite open: %s\n", sqlite3_errmsg(db));
        w->rc = 1;
        goto out;
    }
    /* Writers queue on the database lock; a generous timeout makes them wait, not fail. */
    sqlite3_busy_timeout(db, 60000);
    if (sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO audit(body) VALUES (?)", -1, &ins, NULL) != SQLITE_OK) {
        fprintf(stderr, "appender: sqlite prepare: %s\n", sqlite3_errmsg(db));
        w->rc = 1;
        goto out;
    }
    char rec[512];
    while (!atomic_load(&w->b->stop)) {
        int n = bench_record(rec, sizeof(rec), w->id, w->count);
        sqlite3_bind_text(ins, 1, rec, n, SQLITE_STATIC);
        /* Autocommit: the INSERT is its own transaction, committed (and synced) on return. */
        int rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "appender: sqlite insert: %s\n", sqlite3_errmsg(db));
            w->rc = 1;
            goto out;
        }
        w->count++;
    }
out:
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return NULL;
}

static int sqlite_setup(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bench.db", dir);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db,
                          "PRAGMA journal_mode=WAL;"
                          "CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY, body TEXT)",
                          NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        fprintf(stderr, "appender: sqlite setup: %s\n", sqlite3_errmsg(db));
    }
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : 1;
}

/* ---- the floor: write one record, fdatasync, again --------------------------------------- */

static void *fsync_worker(void *arg)
{
    worker_t *w = arg;
    char path[4096];
    snprintf(path, sizeof(path), "%s/floor.%d", w->b->dir, w->id);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("appender: open");
        w->rc = 1;
        return NULL;
    }
    char rec[512];
    while (!atomic_load(&w->b->stop)) {
        int n = bench_record(rec, sizeof(rec), w->id, w->count);
        rec[n++] = '\n';
        if (write(fd, rec, (size_t)n) != n || fdatasync(fd) != 0) {
            perror("appender: write/fdatasync");
            w->rc = 1;
            break;
        }
        w->count++;
    }
    close(fd);
    return NULL;
}

/* The other floor: the same loop, but over blocks written (and synced) beforehand, as a
 * recycled WAL file is. fdatasync then has no file size or extent to journal, only data. */
static void *overwrite_worker(void *arg)
{
    worker_t *w = arg;
    char path[4096];
    snprintf(path, sizeof(path), "%s/overwrite.%d", w->b->dir, w->id);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("appender: open");
        w->rc = 1;
        return NULL;
    }
    static const size_t size = 64u << 20;
    char *zeros = calloc(1, 1u << 20);
    for (size_t off = 0; zeros != NULL && off < size; off += 1u << 20) {
        if (write(fd, zeros, 1u << 20) != 1 << 20) {
            perror("appender: write");
            w->rc = 1;
            break;
        }
    }
    free(zeros);
    if (w->rc != 0 || fsync(fd) != 0) {
        w->rc = 1;
        close(fd);
        return NULL;
    }
    char rec[512];
    off_t off = 0;
    /* Making the file is not timed: the caller starts its clock once every worker is here. */
    atomic_fetch_add(&w->b->ready, 1);
    while (atomic_load(&w->b->ready) < w->b->threads) {
        sched_yield();
    }
    while (!atomic_load(&w->b->stop)) {
        int n = bench_record(rec, sizeof(rec), w->id, w->count);
        rec[n++] = '\n';
        if ((size_t)off + (size_t)n > size) {
            off = 0;
        }
        if (pwrite(fd, rec, (size_t)n, off) != n || fdatasync(fd) != 0) {
            perror("appender: pwrite/fdatasync");
            w->rc = 1;
            break;
        }
        off += n;
        w->count++;
    }
    close(fd);
    return NULL;
}

/* ---- the audit log: ch_audit_append from every thread ---------------------------------- */

static void *audit_worker(void *arg)
{
    worker_t *w = arg;
    json_t *details = json_object();
    char object[64];
    snprintf(object, sizeof(object), "camera:bench-%d", w->id);
    ch_audit_entry_t e = {"bench", "bench.append", object, NULL, NULL, "ok", details};
    for (;;) {
        if (w->b->fill_left > 0) {
            /* Fill mode: take the next number until COUNT are taken. */
            if (atomic_fetch_add(&w->b->fill_next, 1) >= w->b->fill_left) {
                break;
            }
        } else if (atomic_load(&w->b->stop)) {
            break;
        }
        json_object_set_new(details, "i", json_integer(w->count));
        json_object_set_new(details, "thread", json_integer(w->id));
        int rc = ch_audit_append(w->b->audit, &e, NULL);
        if (rc != 0) {
            fprintf(stderr, "appender: ch_audit_append: %s\n", ch_strerror(rc));
            w->rc = 1;
            break;
        }
        w->count++;
    }
    json_decref(details);
    return NULL;
}

/* Opens DIR/audit writable with the key in DIR/keys, made when missing. */
static int audit_setup(bench_t *b)
{
    char *err = NULL;
    ch_audit_key_t key;
    int rc = ch_audit_keys_load(b->dir, &key, &err);
    if (rc == CH_ENOENT) {
        ch_free(err);
        err = NULL;
        rc = ch_audit_keys_init(b->dir, &err);
        if (rc == 0) {
            rc = ch_audit_keys_load(b->dir, &key, &err);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "appender: key: %s\n", err ? err : ch_strerror(rc));
        ch_free(err);
        return 1;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/audit", b->dir);
    ch_audit_options_t o;
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.key = &key;
    rc = ch_audit_open(&o, &b->audit, &err);
    ch_audit_key_wipe(&key);
    if (rc != 0) {
        fprintf(stderr, "appender: open: %s\n", err ? err : ch_strerror(rc));
        ch_free(err);
        return 1;
    }
    return 0;
}

/* Runs `threads` workers for b->seconds (or, in fill mode, until the records are taken) and
 * returns the records they appended. */
static long long run_workers(bench_t *b, void *(*fn)(void *), double *elapsed)
{
    worker_t *ws = calloc((size_t)b->threads, sizeof(*ws));
    pthread_t *ts = calloc((size_t)b->threads, sizeof(*ts));
    if (ws == NULL || ts == NULL) {
        fprintf(stderr, "appender: out of memory\n");
        exit(1);
    }
    double t0 = now_s();
    for (int i = 0; i < b->threads; i++) {
        ws[i].b = b;
        ws[i].id = i;
        if (pthread_create(&ts[i], NULL, fn, &ws[i]) != 0) {
            fprintf(stderr, "appender: pthread_create failed\n");
            exit(1);
        }
    }
    if (fn == overwrite_worker) {
        while (atomic_load(&b->ready) < b->threads) {
            usleep(1000);
        }
        t0 = now_s();
    }
    if (b->fill_left == 0) {
        struct timespec ts_sleep = {(time_t)b->seconds,
                                    (long)((b->seconds - (double)(time_t)b->seconds) * 1e9)};
        nanosleep(&ts_sleep, NULL);
        atomic_store(&b->stop, 1);
    }
    long long total = 0;
    int failed = 0;
    for (int i = 0; i < b->threads; i++) {
        pthread_join(ts[i], NULL);
        total += ws[i].count;
        failed |= ws[i].rc;
    }
    *elapsed = now_s() - t0;
    free(ws);
    free(ts);
    if (failed) {
        exit(1);
    }
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: appender audit|sqlite|fsync|overwrite DIR THREADS SECONDS\n"
                        "       appender fill DIR COUNT\n");
        return 2;
    }
    bench_t b;
    memset(&b, 0, sizeof(b));
    b.mode = argv[1];
    b.dir = argv[2];
    if (mkdir(b.dir, 0700) != 0 && errno != EEXIST) {
        perror("appender: mkdir");
        return 1;
    }
    void *(*fn)(void *) = NULL;
    if (strcmp(b.mode, "fill") == 0) {
        b.fill_left = strtol_or_die(argv[3], "COUNT");
        b.threads = 64;
        fn = audit_worker;
    } else {
        if (argc < 5) {
            fprintf(stderr, "appender: %s needs DIR THREADS SECONDS\n", b.mode);
            return 2;
        }
        b.threads = (int)strtol_or_die(argv[3], "THREADS");
        b.seconds = (double)strtol_or_die(argv[4], "SECONDS");
        if (strcmp(b.mode, "audit") == 0) {
            fn = audit_worker;
        } else if (strcmp(b.mode, "sqlite") == 0) {
            fn = sqlite_worker;
        } else if (strcmp(b.mode, "fsync") == 0) {
            fn = fsync_worker;
        } else if (strcmp(b.mode, "overwrite") == 0) {
            fn = overwrite_worker;
        } else {
            fprintf(stderr, "appender: unknown mode %s\n", b.mode);
            return 2;
        }
    }
    if (fn == audit_worker && audit_setup(&b) != 0) {
        return 1;
    }
    if (fn == sqlite_worker && sqlite_setup(b.dir) != 0) {
        return 1;
    }
    double elapsed = 0;
    long long n = run_workers(&b, fn, &elapsed);
    if (b.audit != NULL) {
        ch_audit_close(b.audit); /* a final checkpoint, outside the timing */
    }
    printf("%s %d %lld %.3f %.0f\n", b.mode, b.threads, n, elapsed, (double)n / elapsed);
    return 0;
}
