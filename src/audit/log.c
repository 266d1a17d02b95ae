/*
 * The log: opening (with crash recovery), group-committed appends, checkpoints, reads and
 * proofs over the in-memory tree.
 *
 * Locking: one mutex guards the tree, the offsets, the segment list, the append queue and the
 * checkpoint state. Disk I/O and hashing never run under it: an appender only takes a number
 * and a time and links itself into the queue; the thread that leads a batch takes the whole
 * queue, drops the mutex, completes, hashes, writes and syncs the records, and takes the
 * mutex again to publish them. The `leader` flag makes that thread the only writer of the
 * segment and checkpoint files; it passes straight to the next queued appender.
 */
#include "audit/audit_internal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CP_RECORDS    1000
#define DEFAULT_CP_MS         1000
#define DEFAULT_SEG_MAX       (64ull * 1024 * 1024)
#define DEFAULT_REFUSAL_MS    60000
#define DEFAULT_REFUSAL_PEERS 1024
#define UNCHECKED_GRACE_MS    1000 /* a log with no checkpoint may span the interval and this */
#define MIN_SEG_MAX           4096
#define LEAD_ROUNDS           3 /* batches one appender leads in a row, at most */
/* Segment space is preallocated with written zeros in steps of this (or of
 * CH_AUDIT__PAD_ALIGN for segments smaller than 4 chunks), so that appends overwrite blocks
 * that exist and the file size rarely changes: an fdatasync then has no size to journal. */
#define PREALLOC_CHUNK (1024 * 1024)

typedef struct segment {
    uint64_t first_seq;
    int fd;
    char name[32];
} segment_t;

/* One appender waiting for its record to become durable. It lives on the appender's stack
 * and sits in the handle's queue, so that queueing a record allocates and copies nothing
 * under the mutex. The leader that takes it completes the record (seq and time) and hashes
 * it outside the mutex, then posts `wake` when it is durable (done) or when the appender must
 * lead the next batch (lead). */
typedef struct waiter {
    struct waiter *next;
    const ch_buf_t *prefix; /* the canonical record without seq and time, ending in '}' */
    uint64_t seq;
    int64_t time_ns;
    sem_t wake;
    int ends_access;       /* ch_audit_append_ending: may use the disk reserve */
    int done, lead, rc;    /* written before `wake` is posted */
    struct waiter *kid[2]; /* done: the appenders this one wakes in turn (see lead_batch) */
} waiter_t;

struct ch_audit {
    char *dir, *origin, *node;
    ch_audit_key_t key;
    int writable;
    uint32_t cp_every_records, cp_every_ms;
    uint64_t seg_max;
    int lock_fd, cp_fd;

    pthread_mutex_t mu;
    pthread_cond_t cond;

    /* Durable records: the tree (its size is the number of durable records), each record's
     * frame offset in its segment, and the segments. */
    ch_audit__tree_t tree;
    uint64_t *offs;
    uint64_t offs_cap;
    segment_t *segs;
    size_t nsegs, segs_cap;
    uint64_t seg_bytes; /* end of the records of the last segment */
    uint64_t seg_alloc; /* length of the last segment's file: records, then zero padding */

    /* Group commit. */
    uint64_t next_seq;
    int64_t last_time_ns;
    waiter_t *head, *tail; /* queued appenders, in seq order */
    int leader;            /* a thread owns the files: leads a batch or writes a checkpoint */
    /* Leader-only scratch (the leader flag hands them from thread to thread under mu). */
    ch_buf_t wbuf;
    uint8_t (*whash)[CH_AUDIT_HASH_SIZE];
    size_t whash_cap;
    waiter_t **wlist;
    size_t wlist_cap;
    int failed; /* sticky error after a failed sync (or a failed write it could not undo) */
    /* The disk was full at the last try (-ENOSPC or -EDQUOT; 0 once a batch went through).
     * Not sticky: a failed write that left nothing behind is retried by the next append. */
    int nospace;

    /* The reserve: <dir>/reserve, reserve_bytes of allocated space that only records ending
     * access may use (ch_audit_append_ending). The leader releases it when such a
     * record meets a full disk; an append of any other record first puts it back, and is
     * refused (-ENOSPC) while it cannot. rmu guards the file and the writes of reserve_held;
     * an append reads reserve_held without it (atomic), so the common case takes no lock. */
    pthread_mutex_t rmu;
    int reserve_fd;
    uint64_t reserve_bytes;
    atomic_int reserve_held;

    /* Figures for GET /metrics (under mu, but the histogram: atomics). */
    uint64_t m_appended, m_failed, m_commits;
    ch_metrics_hist_t m_fsync;

    /* Checkpoints. */
    uint64_t cp_size;
    int cp_have;
    uint64_t cp_mono_ms;
    int cp_due; /* records but no checkpoint at open: the first batch signs one */
    char *cp_latest;

    ch_audit__refusals_t *refusals; /* writable handles only */
};

ch_audit__refusals_t *ch_audit__refusals(ch_audit_t *a)
{
    return a->refusals;
}

/* fdatasync durations, in seconds: 50 us (a fast NVMe) to 2.5 s (a disk in trouble). */
static const double fsync_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                      0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5};

void ch_audit_collect(ch_metrics_writer_t *w, void *ud)
{
    ch_audit_t *a = ud;
    pthread_mutex_lock(&a->mu);
    uint64_t appended = a->m_appended, failed = a->m_failed, commits = a->m_commits;
    uint64_t size = a->tree.size;
    pthread_mutex_unlock(&a->mu);
    if (ch_metrics_family(w, "cctvhub_audit_appends_total", CH_METRICS_COUNTER,
                          "Audit records made durable by this process.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, appended);
    }
    if (ch_metrics_family(w, "cctvhub_audit_append_failures_total", CH_METRICS_COUNTER,
                          "Audit records that could not be made durable (their decisions were "
                          "refused or undone).") == 0) {
        ch_metrics_value_u64(w, NULL, 0, failed);
    }
    if (ch_metrics_family(w, "cctvhub_audit_commits_total", CH_METRICS_COUNTER,
                          "Group commits of the audit log: one write and one fdatasync each.") ==
        0) {
        ch_metrics_value_u64(w, NULL, 0, commits);
    }
    if (ch_metrics_family(w, "cctvhub_audit_records", CH_METRICS_GAUGE,
                          "Records in the audit log (its tree size).") == 0) {
        ch_metrics_value_u64(w, NULL, 0, size);
    }
    if (ch_metrics_family(w, "cctvhub_audit_fsync_duration_seconds", CH_METRICS_HISTOGRAM,
                          "Time the audit log's fdatasync of one group commit took.") == 0) {
        uint64_t cum[CH_METRICS_MAX_BUCKETS];
        ch_metrics_hist_data_t d;
        ch_metrics_hist_read(&a->m_fsync, &d, cum);
        ch_metrics_histogram(w, NULL, 0, &d);
    }
    ch_audit__refusals_collect(w, a->refusals);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
    return ch_time_mono_ns() / 1000000;
}

/* All of [p, p+len) read (pread) or written (pwrite) at off, resumed after a short transfer or
 * EINTR. 0, -errno, or CH_EIO when a call moves nothing (the file ends before off + len). */
static int all_at(int fd, uint8_t *b, size_t len, uint64_t off, int writing)
{
    while (len > 0) {
        ssize_t n = writing ? pwrite(fd, b, len, (off_t)off) : pread(fd, b, len, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return CH_EIO;
        }
        b += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int write_all_at(int fd, const void *p, size_t len, uint64_t off)
{
    /* pwrite only reads the bytes: the cast drops const for the shared loop alone. */
    return all_at(fd, (uint8_t *)(uintptr_t)p, len, off, 1);
}

static int read_all_at(int fd, void *p, size_t len, uint64_t off)
{
    return all_at(fd, p, len, off, 0);
}

int ch_audit__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Opens the file name in the log's directory dir for reading and writing, created (mode 0600)
 * when missing: the lock and the reserve. The descriptor, or -errno. */
static int open_in_dir(const char *dir, const char *name)
{
    ch_buf_t path = {0};
    ch_buf_appendf(&path, "%s/%s", dir, name);
    int fd = open(path.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int rc = fd >= 0 ? fd : -errno;
    ch_buf_fini(&path);
    return rc;
}

static void segs_push(ch_audit_t *a, uint64_t first_seq, int fd)
{
    if (a->nsegs == a->segs_cap) {
        a->segs_cap = a->segs_cap ? a->segs_cap * 2 : 8;
        a->segs = ch_realloc(a->segs, a->segs_cap * sizeof(*a->segs));
    }
    segment_t *s = &a->segs[a->nsegs++];
    s->first_seq = first_seq;
    s->fd = fd;
    ch_audit__segment_name(first_seq, s->name);
}

static void offs_put(ch_audit_t *a, uint64_t seq, uint64_t off)
{
    if (seq >= a->offs_cap) {
        uint64_t cap = a->offs_cap ? a->offs_cap * 2 : 4096;
        while (cap <= seq) {
            cap *= 2;
        }
        a->offs = ch_realloc(a->offs, cap * sizeof(*a->offs));
        a->offs_cap = cap;
    }
    a->offs[seq] = off;
}

static int is_nospace(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT;
}

/* Allocates the reserve file's space (fallocate; written zeros where the file system has no
 * fallocate). The caller holds rmu. 0 or -errno (the file is then emptied again). */
static int reserve_fill_locked(ch_audit_t *a)
{
    int rc = 0;
    struct stat st;
    if (fstat(a->reserve_fd, &st) == 0 && (uint64_t)st.st_size > a->reserve_bytes &&
        ftruncate(a->reserve_fd, (off_t)a->reserve_bytes) != 0) {
        return -errno; /* a smaller reserve than the one configured before */
    }
    if (fallocate(a->reserve_fd, 0, 0, (off_t)a->reserve_bytes) != 0) {
        rc = -errno;
        if (rc == -EOPNOTSUPP) {
            static const uint8_t zeros[CH_AUDIT__PAD_ALIGN];
            rc = 0;
            for (uint64_t off = 0; off < a->reserve_bytes && rc == 0; off += sizeof(zeros)) {
                uint64_t n = a->reserve_bytes - off;
                rc = write_all_at(a->reserve_fd, zeros,
                                  n < sizeof(zeros) ? (size_t)n : sizeof(zeros), off);
            }
        }
    }
    if (rc == 0 && fdatasync(a->reserve_fd) != 0) {
        rc = -errno;
    }
    if (rc != 0) {
        (void)ftruncate(a->reserve_fd, 0);
    }
    return rc;
}

/* Puts the reserve back when it was released (or could not be made) and the disk has room
 * for it and a little more again. 0 when it is in place, else -ENOSPC (or -errno). Any
 * thread; takes rmu. Cheap when the reserve is held: one flag under a mutex. */
static int reserve_restore(ch_audit_t *a)
{
    if (a->reserve_bytes == 0 || atomic_load(&a->reserve_held)) {
        return 0;
    }
    pthread_mutex_lock(&a->rmu);
    int rc = 0;
    if (!a->reserve_held) {
        struct statvfs vfs;
        if (fstatvfs(a->reserve_fd, &vfs) != 0) {
            rc = -errno;
        } else if ((uint64_t)vfs.f_bavail * vfs.f_frsize <
                   a->reserve_bytes + 2 * CH_AUDIT__PAD_ALIGN) {
            rc = -ENOSPC;
        } else {
            rc = reserve_fill_locked(a);
        }
        if (rc == 0) {
            a->reserve_held = 1;
            ch_log(CH_LOG_INFO, "audit", "msg=\"audit disk reserve in place again\" bytes=%" PRIu64,
                   a->reserve_bytes);
        }
    }
    pthread_mutex_unlock(&a->rmu);
    return rc;
}

/* Frees the reserve's space for records that end access. 1 when it was released now. */
static int reserve_release(ch_audit_t *a)
{
    pthread_mutex_lock(&a->rmu);
    int released = 0;
    if (a->reserve_held && ftruncate(a->reserve_fd, 0) == 0) {
        a->reserve_held = 0;
        released = 1;
    }
    pthread_mutex_unlock(&a->rmu);
    if (released) {
        ch_log(CH_LOG_WARN, "audit",
               "msg=\"audit disk full: the reserve is released for records that end access; "
               "new decisions are refused until there is space again\" bytes=%" PRIu64,
               a->reserve_bytes);
    }
    return released;
}

/* Creates the segment whose first record is first_seq: header written and synced, and the
 * directory synced, before any record goes in, so that a crash never leaves records in a file
 * the directory does not list. Returns the fd (read-write) or -errno. */
static int segment_create(const char *dir, uint64_t first_seq)
{
    char name[32];
    ch_audit__segment_name(first_seq, name);
    ch_buf_t path = {0};
    ch_buf_appendf(&path, "%s/%s", dir, name);
    int fd = open(path.data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    uint8_t hdr[CH_AUDIT__SEG_HEADER];
    ch_audit__segment_header_make(hdr, first_seq);
    rc = write_all_at(fd, hdr, sizeof(hdr), 0);
    if (rc == 0 && fdatasync(fd) != 0) {
        rc = -errno;
    }
    if (rc == 0) {
        rc = ch_audit__fsync_dir(dir);
    }
    if (rc != 0) {
        close(fd);
        unlink(path.data);
    }
out:
    ch_buf_fini(&path);
    return rc != 0 ? rc : fd;
}

/* Makes sure the last segment's file reaches at least `need` bytes, extending it with zeros
 * (written, not holes or unwritten extents, whose first write the file system journals too)
 * to a multiple of the chunk. The size is set first, in one step, so that a crash in the
 * middle leaves an aligned file whose end reads as zeros: padding, not a torn tail. The
 * caller's fdatasync makes it durable. Leader only. */
static int segment_reserve(ch_audit_t *a, int fd, uint64_t need, uint64_t *alloc)
{
    static const uint8_t zeros[CH_AUDIT__PAD_ALIGN];
    if (need <= *alloc) {
        return 0;
    }
    uint64_t chunk = a->seg_max >= 4ull * PREALLOC_CHUNK ? PREALLOC_CHUNK : CH_AUDIT__PAD_ALIGN;
    uint64_t to = (need + chunk - 1) / chunk * chunk;
    uint64_t from = *alloc;
    uint64_t small = (need + CH_AUDIT__PAD_ALIGN - 1) / CH_AUDIT__PAD_ALIGN * CH_AUDIT__PAD_ALIGN;
    for (;;) {
        if (ftruncate(fd, (off_t)to) != 0) {
            return -errno;
        }
        int rc = 0;
        for (uint64_t at = from; at < to && rc == 0;) {
            size_t n = to - at < sizeof(zeros) ? (size_t)(to - at) : sizeof(zeros);
            rc = write_all_at(fd, zeros, n, at);
            at += n;
        }
        if (rc == 0) {
            break;
        }
        /* A nearly full disk may still hold what this batch needs: try the least aligned
         * step before giving up. Either way the file ends aligned and in zeros (holes). */
        if (!is_nospace(rc) || to <= small) {
            return rc;
        }
        (void)ftruncate(fd, (off_t)from);
        to = small;
    }
    *alloc = to;
    return 0;
}

/* Cuts the zero padding off a segment that is done with (sealed by a rotation, or closed):
 * only the last segment of a log may hold padding. */
static int segment_trim(int fd, uint64_t end)
{
    if (ftruncate(fd, (off_t)end) != 0 || fdatasync(fd) != 0) {
        return -errno;
    }
    return 0;
}

/* Writes and syncs the checkpoint of the current size. Called by the leader with the mutex
 * held; drops it around the I/O. A failed write poisons the handle like a failed append: the
 * checkpoints file may end in a partial note, which only recovery at the next open may cut.
 * But a write the disk had no room for is cut back at once and signed again after a later
 * batch (the records are durable; only their checkpoint waits). */
static int checkpoint_write_locked(ch_audit_t *a)
{
    assert(a->leader);
    uint64_t size = a->tree.size;
    if (a->cp_have && size == a->cp_size) {
        return 0;
    }
    uint8_t root[CH_AUDIT_HASH_SIZE];
    int rc = ch_audit__tree_root(&a->tree, size, root);
    assert(rc == 0);
    pthread_mutex_unlock(&a->mu);
    char *note = NULL;
    int written = 0, cut = 0;
    struct stat st;
    rc = ch_audit_checkpoint_sign(a->origin, size, root, now_ns(), &a->key, &note);
    if (rc == 0) {
        rc = fstat(a->cp_fd, &st) == 0 ? 0 : -errno;
        if (rc == 0) {
            written = 1;
            rc = write_all_at(a->cp_fd, note, strlen(note), (uint64_t)st.st_size);
            if (is_nospace(rc)) {
                cut = ftruncate(a->cp_fd, st.st_size) == 0;
            }
        }
        if (rc == 0 && fdatasync(a->cp_fd) != 0) {
            rc = -errno;
        }
    }
    pthread_mutex_lock(&a->mu);
    if (rc != 0) {
        ch_log(CH_LOG_ERROR, "audit",
               "msg=\"checkpoint write failed\" size=%" PRIu64 " err=%d error=\"%s\"", size, rc,
               strerror(-rc));
        if (written && !cut) {
            a->failed = rc;
        } else if (cut) {
            a->nospace = 1;
        }
        ch_free(note);
        return rc;
    }
    ch_free(a->cp_latest);
    a->cp_latest = note;
    a->cp_size = size;
    a->cp_have = 1;
    a->cp_mono_ms = mono_ms();
    a->cp_due = 0;
    return 0;
}

/* Gives up the files: to the first queued appender when there is one (returned; the caller
 * posts it after dropping the mutex, so that it wakes straight into the lead), else clears the
 * flag and wakes anyone waiting in ch_audit_checkpoint_now. Called with the mutex held by the
 * thread that holds the leader flag. */
static waiter_t *leader_release_locked(ch_audit_t *a)
{
    assert(a->leader);
    if (a->head != NULL) {
        a->head->lead = 1;
        return a->head;
    }
    a->leader = 0;
    pthread_cond_broadcast(&a->cond);
    return NULL;
}

/* Writes the frames of a batch into the leader's buffer: each record closed with
 * ,"seq":N,"time":T} and hashed here, outside the mutex, so that appenders contend only for
 * the moment it takes to take a number and join the queue. */
static void batch_build(ch_audit_t *a, waiter_t *batch, size_t count)
{
    ch_buf_reset(&a->wbuf);
    if (count > a->whash_cap) {
        a->whash_cap = count * 2;
        a->whash = ch_realloc(a->whash, a->whash_cap * CH_AUDIT_HASH_SIZE);
    }
    size_t i = 0;
    for (waiter_t *w = batch; w != NULL; w = w->next, i++) {
        char tail[64];
        int n = snprintf(tail, sizeof(tail), ",\"seq\":%" PRIu64 ",\"time\":%" PRId64 "}", w->seq,
                         w->time_ns);
        assert(n > 0 && (size_t)n < sizeof(tail));
        size_t start = a->wbuf.len;
        uint32_t len = (uint32_t)(w->prefix->len - 1 + (size_t)n);
        ch_buf_reserve(&a->wbuf, 4 + (size_t)len + CH_AUDIT_HASH_SIZE);
        uint8_t be[4];
        ch_audit__put_be32(be, len);
        ch_buf_append(&a->wbuf, be, 4);
        ch_buf_append(&a->wbuf, w->prefix->data, w->prefix->len - 1);
        ch_buf_append(&a->wbuf, tail, (size_t)n);
        ch_audit_leaf_hash(a->wbuf.data + start + 4, len, a->whash[i]);
        ch_buf_append(&a->wbuf, a->whash[i], CH_AUDIT_HASH_SIZE);
    }
    assert(i == count);
}

/* Leads one batch: takes the whole queue (O(1)), builds and hashes its frames, writes them
 * with one pwrite at the end of the last segment (starting a new segment first when the last
 * one is full) and one fdatasync, then publishes the records, writes a checkpoint when one
 * is due, and wakes the batch's appenders (a tree of semaphore posts, no thundering herd on
 * the mutex). Then, when more appenders queued meanwhile, it keeps the lead and returns 1 if
 * `keep`, else hands the lead to the first of them; returns 0 when it gave up the lead.
 * Called without the mutex by the thread that holds the leader flag; its own record (self) is
 * in the first batch it leads. */
static int lead_batch(ch_audit_t *a, waiter_t *self, int keep)
{
    pthread_mutex_lock(&a->mu);
    assert(a->leader && a->head != NULL);
    waiter_t *batch = a->head;
    a->head = a->tail = NULL;
    uint64_t first = a->tree.size;
    int rotate = a->seg_bytes >= a->seg_max;
    int fd = a->segs[a->nsegs - 1].fd;
    uint64_t off = a->seg_bytes;
    uint64_t alloc = a->seg_alloc;
    int rc = a->failed;
    pthread_mutex_unlock(&a->mu);

    size_t count = 0;
    for (waiter_t *w = batch; w != NULL; w = w->next) {
        /* Seqs are handed out in queue order, so a batch continues the tree (unless an
         * earlier batch failed: then nothing is written and every record fails). */
        assert(rc != 0 || w->seq == first + count);
        count++;
    }
    if (count > a->wlist_cap) {
        a->wlist_cap = count * 2;
        a->wlist = ch_realloc(a->wlist, a->wlist_cap * sizeof(*a->wlist));
    }
    if (rc == 0) {
        batch_build(a, batch, count);
    }
    int ends_access = 0;
    for (waiter_t *w = batch; w != NULL; w = w->next) {
        ends_access |= w->ends_access;
    }
    uint64_t old_alloc = alloc;
    int trimmed = 0, created = 0, wrote = 0, sync_failed = 0;
    for (int attempt = 0;; attempt++) {
        if (rc == 0 && rotate && !trimmed && alloc > off) {
            rc = segment_trim(fd, off);
            trimmed = rc == 0;
        }
        if (rc == 0 && rotate && !created) {
            rc = segment_create(a->dir, first);
            if (rc >= 0) {
                fd = rc;
                off = CH_AUDIT__SEG_HEADER;
                alloc = off;
                rc = 0;
                created = 1;
            }
        }
        if (rc == 0) {
            /* Records overwrite padding; a batch that does not fit extends it first (the
             * same fdatasync covers both). */
            wrote = 1;
            rc = segment_reserve(a, fd, off + a->wbuf.len, &alloc);
        }
        if (rc == 0) {
            rc = write_all_at(fd, a->wbuf.data, a->wbuf.len, off);
        }
        if (rc == 0) {
            uint64_t t0 = ch_time_mono_ns();
            if (fdatasync(fd) != 0) {
                rc = -errno;
                sync_failed = 1;
            }
            ch_metrics_hist_observe(&a->m_fsync, (double)(ch_time_mono_ns() - t0) / 1e9);
        }
        /* A full disk and a record that ends access (a close, a revocation, an expiry):
         * free the reserve and try once more, so that nobody is left unable to end access. */
        if (rc != 0 && !sync_failed && is_nospace(rc) && attempt == 0 && ends_access &&
            reserve_release(a)) {
            if (wrote && ftruncate(fd, (off_t)off) == 0) {
                alloc = off;
            }
            rc = 0;
            continue;
        }
        break;
    }
    /* A failure leaves the files as they were when it can: no partial frame in the last
     * segment, no half-made new segment. Only then may a later append try again. */
    int undone = !sync_failed;
    if (rc != 0 && wrote && !created) {
        if (ftruncate(fd, (off_t)off) == 0) {
            alloc = off;
        } else {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"cannot cut a failed write\" errno=%d", errno);
            undone = 0;
        }
    }
    if (rc != 0 && created) {
        char name[32];
        ch_audit__segment_name(first, name);
        ch_buf_t path = {0};
        ch_buf_appendf(&path, "%s/%s", a->dir, name);
        close(fd);
        if (unlink(path.data) != 0 || ch_audit__fsync_dir(a->dir) != 0) {
            undone = 0;
        }
        ch_buf_fini(&path);
    }

    pthread_mutex_lock(&a->mu);
    if (rc != 0) {
        a->m_failed += count;
    } else {
        a->m_appended += count;
        a->m_commits++;
    }
    if (rc != 0 && is_nospace(rc) && undone) {
        /* Not sticky: the file holds what it held before, and the queued appenders, whose
         * numbers assumed this batch, are numbered again after the last durable record. */
        if (!a->nospace) {
            ch_log(CH_LOG_ERROR, "audit",
                   "msg=\"append failed: no space left for the audit log; new records are "
                   "refused until there is space again (the next append tries)\" "
                   "err=%d error=\"%s\" dir=%s",
                   rc, strerror(-rc), a->dir);
        }
        a->nospace = 1;
        a->next_seq = first;
        for (waiter_t *w = a->head; w != NULL; w = w->next) {
            w->seq = a->next_seq++;
        }
        if (rotate) {
            a->seg_alloc = trimmed ? a->seg_bytes : old_alloc;
        } else {
            a->seg_alloc = alloc;
        }
    } else if (rc != 0) {
        if (a->failed == 0) {
            ch_log(CH_LOG_ERROR, "audit",
                   "msg=\"append failed; the log refuses further appends\" err=%d error=\"%s\"", rc,
                   strerror(-rc));
            a->failed = rc;
        }
        if (!rotate) {
            a->seg_alloc = alloc;
        }
    } else {
        if (a->nospace) {
            a->nospace = 0;
            ch_log(CH_LOG_INFO, "audit", "msg=\"audit log appends again: there is space\"");
        }
        if (rotate) {
            segs_push(a, first, fd);
        }
        size_t pos = 0;
        for (size_t i = 0; i < count; i++) {
            offs_put(a, first + i, off + pos);
            ch_audit__tree_append(&a->tree, a->whash[i]);
            pos += 4 + ch_audit__be32((const uint8_t *)a->wbuf.data + pos) + CH_AUDIT_HASH_SIZE;
        }
        assert(pos == a->wbuf.len);
        a->seg_bytes = off + a->wbuf.len;
        a->seg_alloc = alloc;
    }
    if (a->failed == 0 && a->key.has_secret) {
        uint64_t pending = a->tree.size - (a->cp_have ? a->cp_size : 0);
        if (pending >= a->cp_every_records ||
            (pending > 0 && (a->cp_due || mono_ms() - a->cp_mono_ms >= a->cp_every_ms))) {
            (void)checkpoint_write_locked(a);
        }
    }
    /* Wake the batch as a binary tree: this thread posts two appenders, and each appender
     * posts two more before it returns. Posting 63 semaphores one after another costs more
     * than a batch's fdatasync on a VM, and the next batch fills only as fast as its
     * appenders come back. The list is leader scratch, so it is filled
     * while this thread still leads (grown before, outside the mutex). */
    waiter_t **list = a->wlist;
    size_t n = 0;
    for (waiter_t *w = batch; w != NULL; w = w->next) {
        w->rc = rc;
        w->done = 1;
        if (w != self) {
            list[n++] = w;
        }
    }
    for (size_t i = 0; i < n; i++) {
        list[i]->kid[0] = 2 * i + 2 < n ? list[2 * i + 2] : NULL;
        list[i]->kid[1] = 2 * i + 3 < n ? list[2 * i + 3] : NULL;
    }
    waiter_t *root0 = n > 0 ? list[0] : NULL, *root1 = n > 1 ? list[1] : NULL;
    /* Keeping the lead for the batch that queued meanwhile saves waking a sleeper on the
     * path from one fdatasync to the next. */
    int kept = keep && a->head != NULL;
    waiter_t *next = kept ? NULL : leader_release_locked(a);
    pthread_mutex_unlock(&a->mu);

    /* The roots were read under the mutex: once the lead is given up the list may be reused,
     * and once posted an appender can go away. The next leader first: its batch's sync
     * overlaps the wake-ups. */
    if (next != NULL) {
        sem_post(&next->wake);
    }
    if (root0 != NULL) {
        sem_post(&root0->wake);
    }
    if (root1 != NULL) {
        sem_post(&root1->wake);
    }
    return kept;
}

/* Appends s as a JSON string value, or null. 0, or CH_EINVAL for invalid UTF-8. */
static int set_str(json_t *o, const char *key, const char *s)
{
    json_t *v = s ? json_string(s) : json_null();
    if (v == NULL) {
        return CH_EINVAL;
    }
    return json_object_set_new(o, key, v) == 0 ? 0 : CH_EINVAL;
}

static int dump_to_buf(const char *p, size_t n, void *data)
{
    ch_buf_append(data, p, n);
    return 0;
}

/* Builds the canonical record without seq and time into *out. Those two sort last among the
 * keys, so the appender closes the record under the mutex by replacing the final '}' with
 * ,"seq":N,"time":T} and the encoding stays canonical without a second dump. */
static int record_prefix(const ch_audit_t *a, const ch_audit_entry_t *e, ch_buf_t *out)
{
    if (e == NULL || e->actor == NULL || e->action == NULL || e->outcome == NULL ||
        (e->details != NULL && !json_is_object(e->details))) {
        return CH_EINVAL;
    }
    json_t *o = json_object();
    int rc = 0;
    rc |= set_str(o, "action", e->action);
    rc |= set_str(o, "actor", e->actor);
    rc |= json_object_set(o, "details", e->details ? e->details : json_null()) ? CH_EINVAL : 0;
    rc |= set_str(o, "legal_basis", e->legal_basis);
    rc |= set_str(o, "node", a->node);
    rc |= set_str(o, "object", e->object);
    rc |= set_str(o, "outcome", e->outcome);
    rc |= set_str(o, "purpose", e->purpose);
    if (rc == 0 && json_dump_callback(o, dump_to_buf, out, JSON_COMPACT | JSON_SORT_KEYS) != 0) {
        rc = CH_EINVAL;
    }
    json_decref(o);
    if (rc != 0) {
        return CH_EINVAL;
    }
    assert(out->len >= 2 && out->data[out->len - 1] == '}');
    return 0;
}

static int append(ch_audit_t *a, const ch_audit_entry_t *e, int ends_access, uint64_t *seq_out)
{
    if (a == NULL || !a->writable) {
        return CH_EINVAL;
    }
    ch_buf_t prefix = {0};
    int rc = record_prefix(a, e, &prefix);
    if (rc != 0) {
        goto out;
    }
    /* 50 bytes is more than ,"seq":<20 digits>,"time":<19 digits>} needs. */
    if (prefix.len + 50 > CH_AUDIT_RECORD_MAX) {
        rc = CH_ETOOBIG;
        goto out;
    }
    /* While the disk is full, only records that end access may use the reserve: any other
     * record first puts the reserve back, and is refused while it cannot. */
    if (!ends_access && (rc = reserve_restore(a)) != 0) {
        pthread_mutex_lock(&a->mu);
        a->m_failed++;
        a->nospace = 1;
        pthread_mutex_unlock(&a->mu);
        goto out;
    }
    waiter_t w = {.prefix = &prefix, .ends_access = ends_access};
    if (sem_init(&w.wake, 0, 0) != 0) {
        rc = -errno;
        goto out;
    }

    /* The critical section: a number, a time, a place at the end of the queue. */
    pthread_mutex_lock(&a->mu);
    if (a->failed) {
        rc = a->failed;
        pthread_mutex_unlock(&a->mu);
        sem_destroy(&w.wake);
        goto out;
    }
    w.seq = a->next_seq++;
    int64_t t = now_ns();
    if (t < a->last_time_ns) {
        t = a->last_time_ns; /* the wall clock stepped back: keep times in order */
    }
    a->last_time_ns = t;
    w.time_ns = t;
    if (a->tail != NULL) {
        a->tail->next = &w;
    } else {
        a->head = &w;
    }
    a->tail = &w;
    int lead = !a->leader;
    a->leader = 1;
    pthread_mutex_unlock(&a->mu);

    /* Either lead the batch that holds this record, or sleep until a leader says it is
     * durable or hands over the lead (then this record is in the queue it takes). A sleeper
     * reads w only after its semaphore was posted: each post is one message (the lead, or
     * "done"), and the post is what makes the leader's writes to w visible here. Reading
     * w.done before that raced with a leader still filling in w (its kids), and let this
     * frame go while the leader was about to post it. */
    for (;;) {
        if (lead) {
            /* A few batches in a row at most, so that one caller does not wait for long.
             * This record is in the queue the first batch takes, so it is done after. */
            for (int round = 0; lead_batch(a, &w, round < LEAD_ROUNDS - 1); round++) {
            }
            assert(w.done);
            break;
        }
        while (sem_wait(&w.wake) != 0) {
            assert(errno == EINTR);
        }
        if (w.lead) {
            w.lead = 0;
            lead = 1;
            continue;
        }
        assert(w.done);
        break;
    }
    /* Pass the wake-up on (lead_batch): the kids still sleep, so they are still there. */
    for (int i = 0; i < 2; i++) {
        if (w.kid[i] != NULL) {
            sem_post(&w.kid[i]->wake);
        }
    }
    sem_destroy(&w.wake);
    rc = w.rc;
    if (rc == 0 && seq_out != NULL) {
        *seq_out = w.seq;
    }
out:
    ch_buf_fini(&prefix);
    return rc;
}

int ch_audit_append(ch_audit_t *a, const ch_audit_entry_t *e, uint64_t *seq_out)
{
    return append(a, e, 0, seq_out);
}

int ch_audit_append_ending(ch_audit_t *a, const ch_audit_entry_t *e, uint64_t *seq_out)
{
    return append(a, e, 1, seq_out);
}

int ch_audit_status(ch_audit_t *a, char *why, size_t cap)
{
    pthread_mutex_lock(&a->mu);
    int failed = a->failed, nospace = a->nospace;
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&a->rmu);
    int reserve_missing = a->reserve_bytes > 0 && !a->reserve_held;
    pthread_mutex_unlock(&a->rmu);
    if (failed != 0) {
        snprintf(why, cap, "audit log failed (%s): it refuses every record until the hub restarts",
                 strerror(-failed));
        return 1;
    }
    if (nospace) {
        snprintf(why, cap,
                 "audit log: no space left on device: new decisions are refused, records that "
                 "end access use the reserve%s",
                 reserve_missing ? " (released)" : "");
        return 1;
    }
    if (reserve_missing) {
        snprintf(why, cap,
                 "audit log: no space left on device for the reserve of records that "
                 "end access");
        return 1;
    }
    if (cap > 0) {
        why[0] = '\0';
    }
    return 0;
}

uint64_t ch_audit_size(ch_audit_t *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t n = a->tree.size;
    pthread_mutex_unlock(&a->mu);
    return n;
}

int ch_audit_checkpoint_now(ch_audit_t *a)
{
    if (a == NULL || !a->writable) {
        return CH_EINVAL;
    }
    pthread_mutex_lock(&a->mu);
    while (a->leader) {
        pthread_cond_wait(&a->cond, &a->mu);
    }
    int rc = a->failed;
    waiter_t *next = NULL;
    if (rc == 0) {
        a->leader = 1;
        rc = checkpoint_write_locked(a);
        /* Appends that queued meanwhile found a leader: hand them the lead. */
        next = leader_release_locked(a);
    }
    pthread_mutex_unlock(&a->mu);
    if (next != NULL) {
        sem_post(&next->wake);
    }
    return rc;
}

int ch_audit_checkpoint_latest(ch_audit_t *a, char **note)
{
    *note = NULL;
    pthread_mutex_lock(&a->mu);
    int rc = CH_ENOTFOUND;
    if (a->cp_latest != NULL) {
        *note = ch_strdup(a->cp_latest);
        rc = 0;
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int ch_audit_root(ch_audit_t *a, uint64_t size, uint8_t root[CH_AUDIT_HASH_SIZE])
{
    pthread_mutex_lock(&a->mu);
    int rc = ch_audit__tree_root(&a->tree, size, root);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int ch_audit_prove_inclusion(ch_audit_t *a, uint64_t index, uint64_t size, ch_audit_proof_t *proof)
{
    pthread_mutex_lock(&a->mu);
    int rc = ch_audit__tree_inclusion(&a->tree, index, size, proof);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

int ch_audit_prove_consistency(ch_audit_t *a, uint64_t size1, uint64_t size2,
                               ch_audit_proof_t *proof)
{
    pthread_mutex_lock(&a->mu);
    int rc = ch_audit__tree_consistency(&a->tree, size1, size2, proof);
    pthread_mutex_unlock(&a->mu);
    return rc;
}

/* ---- reading --------------------------------------------------------------------------- */

/* Reads record seq into b (NUL-terminated) and its stored hash, checking length and hash. The
 * location is looked up under the mutex; the pread runs outside it (segment fds stay open
 * until close, and durable bytes never change). */
static int read_record(ch_audit_t *a, uint64_t seq, ch_buf_t *b, uint8_t hash[32])
{
    pthread_mutex_lock(&a->mu);
    if (seq >= a->tree.size) {
        pthread_mutex_unlock(&a->mu);
        return CH_ENOTFOUND;
    }
    size_t lo = 0, hi = a->nsegs;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (a->segs[mid].first_seq <= seq) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    int fd = a->segs[lo].fd;
    uint64_t off = a->offs[seq];
    memcpy(hash, ch_audit__tree_leaf(&a->tree, seq), CH_AUDIT_HASH_SIZE);
    pthread_mutex_unlock(&a->mu);

    uint8_t lenb[4];
    int rc = read_all_at(fd, lenb, 4, off);
    if (rc != 0) {
        return rc;
    }
    uint32_t len = ch_audit__be32(lenb);
    if (len == 0 || len > CH_AUDIT_RECORD_MAX) {
        return CH_EIO;
    }
    ch_buf_reset(b);
    ch_buf_reserve(b, (size_t)len + CH_AUDIT_HASH_SIZE + 1);
    rc = read_all_at(fd, b->data, (size_t)len + CH_AUDIT_HASH_SIZE, off + 4);
    if (rc != 0) {
        return rc;
    }
    uint8_t h[CH_AUDIT_HASH_SIZE];
    ch_audit_leaf_hash(b->data, len, h);
    if (memcmp(h, hash, CH_AUDIT_HASH_SIZE) != 0 ||
        memcmp(b->data + len, hash, CH_AUDIT_HASH_SIZE) != 0) {
        ch_log(CH_LOG_ERROR, "audit",
               "msg=\"record on disk no longer matches its hash\" seq=%" PRIu64, seq);
        return CH_EIO;
    }
    b->len = len;
    b->data[len] = '\0';
    return 0;
}

/* The "time" of record seq. 0, or what read_record returns, or CH_EPARSE. */
static int record_time(ch_audit_t *a, uint64_t seq, int64_t *time_ns)
{
    ch_buf_t b = {0};
    uint8_t hash[CH_AUDIT_HASH_SIZE];
    uint64_t s;
    int rc = read_record(a, seq, &b, hash);
    if (rc == 0) {
        rc = ch_audit__record_tail((const uint8_t *)b.data, b.len, &s, time_ns);
    }
    ch_buf_fini(&b);
    return rc;
}

int ch_audit_read(ch_audit_t *a, uint64_t seq, char **json, size_t *len)
{
    *json = NULL;
    ch_buf_t b = {0};
    uint8_t h[CH_AUDIT_HASH_SIZE];
    int rc = read_record(a, seq, &b, h);
    if (rc != 0) {
        ch_buf_fini(&b);
        return rc;
    }
    if (len != NULL) {
        *len = b.len;
    }
    *json = ch_buf_steal(&b);
    return 0;
}

struct ch_audit_iter {
    ch_audit_t *a;
    uint64_t next, end;
    ch_buf_t buf;
};

int ch_audit_iter_new(ch_audit_t *a, uint64_t from, ch_audit_iter_t **out)
{
    ch_audit_iter_t *it = ch_calloc(1, sizeof(*it));
    it->a = a;
    it->next = from;
    it->end = ch_audit_size(a);
    *out = it;
    return 0;
}

int ch_audit_iter_next(ch_audit_iter_t *it, ch_audit_record_t *rec)
{
    if (it->next >= it->end) {
        return CH_ENOTFOUND;
    }
    int rc = read_record(it->a, it->next, &it->buf, rec->leaf_hash);
    if (rc != 0) {
        return rc;
    }
    rec->seq = it->next++;
    rec->json = it->buf.data;
    rec->len = it->buf.len;
    return 0;
}

void ch_audit_iter_free(ch_audit_iter_t *it)
{
    if (it != NULL) {
        ch_buf_fini(&it->buf);
        ch_free(it);
    }
}

/* ---- open and recovery ----------------------------------------------------------------- */

/* Saves bytes cut by recovery into <dir>/recovered/<name>.<offset>.torn, synced, so that a
 * person can inspect what a crash (or something else) left behind. Sets *saved to the
 * relative name (free with ch_free). */
static int save_cut(const char *dir, const char *name, uint64_t off, const void *p, size_t len,
                    char **saved)
{
    ch_buf_t rdir = {0}, path = {0}, rel = {0};
    int rc = 0, fd = -1;
    ch_buf_appendf(&rdir, "%s/recovered", dir);
    if (mkdir(rdir.data, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        goto out;
    }
    for (int i = 0; i < 1000 && fd < 0; i++) {
        ch_buf_reset(&rel);
        ch_buf_appendf(&rel, "recovered/%s.%" PRIu64 ".torn", name, off);
        if (i > 0) {
            ch_buf_appendf(&rel, ".%d", i);
        }
        ch_buf_reset(&path);
        ch_buf_appendf(&path, "%s/%s", dir, rel.data);
        fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            rc = -errno;
            goto out;
        }
    }
    if (fd < 0) {
        rc = CH_EEXIST;
        goto out;
    }
    rc = write_all_at(fd, p, len, 0);
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    close(fd);
    if (rc == 0) {
        rc = ch_audit__fsync_dir(rdir.data);
    }
    if (rc == 0) {
        *saved = ch_buf_steal(&rel);
    }
out:
    ch_buf_fini(&rdir);
    ch_buf_fini(&path);
    ch_buf_fini(&rel);
    return rc;
}

/* Cuts path at off after saving the cut bytes, and syncs it. */
static int cut_file(const char *dir, const char *name, int fd, uint64_t off, const void *tail,
                    size_t len, char **saved)
{
    int rc = save_cut(dir, name, off, tail, len, saved);
    if (rc != 0) {
        return rc;
    }
    if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) {
        return -errno;
    }
    return 0;
}

/* What open recovered, for the audit.recovered record. */
typedef struct recovery {
    uint64_t bytes;
    uint64_t offset;
    char file[40];
    char *saved;
} recovery_t;

/* Reads the checkpoints file: every complete note is skipped over, the last one is parsed
 * (its signature verified when the handle has a key), and a torn tail is cut on writable
 * opens. Damage in the middle stops the open. */
static int open_checkpoints(ch_audit_t *a, recovery_t *rec, char **err)
{
    ch_buf_t path = {0}, data = {0};
    ch_buf_appendf(&path, "%s/checkpoints", a->dir);
    int rc = ch_buf_read_file(&data, path.data);
    if (rc == CH_ENOENT) {
        rc = 0;
    }
    if (rc != 0) {
        ch_audit__set_err(err, "cannot read %s: %s", path.data, ch_strerror(rc));
        goto out;
    }
    size_t off = 0, last = 0, last_end = 0;
    int have = 0;
    while (off < data.len) {
        size_t end;
        int nrc = ch_audit__note_end(data.data, data.len, off, &end);
        if (nrc == CH_EAGAIN) {
            break;
        }
        if (nrc != 0) {
            rc = CH_EIO;
            ch_audit__set_err(err, "%s is damaged at byte %zu; run `cctvhub audit verify` on %s",
                              path.data, off, a->dir);
            goto out;
        }
        last = off;
        last_end = end;
        have = 1;
        off = end;
    }
    if (off < data.len) {
        ch_log(CH_LOG_WARN, "audit",
               "msg=\"checkpoints file ends in a torn note\" bytes=%zu offset=%zu%s",
               data.len - off, off, a->writable ? " action=cut" : " action=ignored");
        if (a->writable) {
            int fd = open(path.data, O_RDWR | O_CLOEXEC);
            char *saved = NULL;
            rc = fd < 0 ? -errno
                        : cut_file(a->dir, "checkpoints", fd, off, data.data + off, data.len - off,
                                   &saved);
            if (fd >= 0) {
                close(fd);
            }
            if (rc != 0) {
                ch_audit__set_err(err, "cannot cut the torn tail of %s: %s", path.data,
                                  ch_strerror(rc));
                goto out;
            }
            if (rec->bytes == 0) {
                rec->bytes = data.len - off;
                rec->offset = off;
                snprintf(rec->file, sizeof(rec->file), "checkpoints");
                rec->saved = saved;
            } else {
                ch_free(saved);
            }
        }
    }
    if (have) {
        ch_audit_checkpoint_t cp;
        char *perr = NULL;
        rc = ch_audit_checkpoint_parse(data.data + last, last_end - last,
                                       a->key.has_secret ? &a->key : NULL, &cp, &perr);
        if (rc != 0) {
            rc = CH_EIO;
            ch_audit__set_err(err, "the latest checkpoint in %s: %s; run `cctvhub audit verify`",
                              path.data, perr);
            ch_free(perr);
            goto out;
        }
        a->cp_have = 1;
        a->cp_size = cp.size;
        a->cp_latest = ch_strndup(data.data + last, last_end - last);
    }
    if (a->writable) {
        a->cp_fd = open(path.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (a->cp_fd < 0) {
            rc = -errno;
            ch_audit__set_err(err, "cannot open %s: %s", path.data, strerror(errno));
        }
    }
out:
    ch_buf_fini(&path);
    ch_buf_fini(&data);
    return rc;
}

static int name_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Lists the segment names of dir, sorted (fixed-width names sort by first sequence number).
 * The caller frees each name and the array. */
static int list_segments(const char *dir, char ***names, size_t *count)
{
    DIR *d = opendir(dir);
    *names = NULL;
    *count = 0;
    if (d == NULL) {
        return -errno;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (!ch_audit__segment_name_parse(de->d_name, &first)) {
            continue;
        }
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            *names = ch_realloc(*names, cap * sizeof(char *));
        }
        (*names)[(*count)++] = ch_strdup(de->d_name);
    }
    closedir(d);
    if (*count > 1) {
        qsort(*names, *count, sizeof(char *), name_cmp);
    }
    return 0;
}

/* Reads one segment into the tree. is_last allows a torn tail, which is cut (writable) or
 * ignored (read-only). Damage anywhere else fails with CH_EIO. */
static int open_segment(ch_audit_t *a, const char *name, int is_last, recovery_t *rec, char **err)
{
    ch_buf_t path = {0}, heap = {0};
    ch_buf_appendf(&path, "%s/%s", a->dir, name);
    int rc = 0;
    int fd = open(path.data, (a->writable && is_last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    uint8_t *map = NULL;
    size_t len = 0;
    if (fd < 0) {
        rc = -errno;
        ch_audit__set_err(err, "cannot open %s: %s", path.data, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        ch_audit__set_err(err, "cannot stat %s: %s", path.data, strerror(errno));
        goto out;
    }
    len = (size_t)st.st_size;
    if (!a->writable && is_last) {
        /* Read, not mapped: the hub that writes this segment may cut its padding (rotation,
         * close) meanwhile, and a mapping would fault on the pages past the new end. */
        rc = ch_buf_read_file(&heap, path.data);
        if (rc != 0) {
            ch_audit__set_err(err, "cannot read %s: %s", path.data, ch_strerror(rc));
            goto out;
        }
        map = (uint8_t *)heap.data;
        len = heap.len;
    } else if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            rc = -errno;
            ch_audit__set_err(err, "cannot map %s: %s", path.data, strerror(errno));
            goto out;
        }
    }
    uint64_t first = 0, named = 0;
    ch_audit__segment_name_parse(name, &named);
    int hrc = ch_audit__segment_header(map, len, &first);
    uint64_t off = CH_AUDIT__SEG_HEADER;
    if (hrc == CH_EAGAIN && is_last) {
        /* A crash while the segment was being created: nothing in it was ever acknowledged.
         * Rewrite the header; the bytes cut are reported like a torn tail. */
        first = named;
        off = 0;
    } else if (hrc != 0 || first != named) {
        rc = CH_EIO;
        ch_audit__set_err(err, "%s is not a valid segment (bad header); run `cctvhub audit verify`",
                          path.data);
        goto out;
    }
    if (first != a->tree.size) {
        rc = CH_EIO;
        ch_audit__set_err(err,
                          "record %" PRIu64 " missing: segment %s starts at record %" PRIu64
                          "; run `cctvhub audit verify`",
                          a->tree.size, name, first);
        goto out;
    }
    /* The bytes from `cut` on are a torn tail to cut; the records end at `off`, and what lies
     * between is zero padding (ch_audit__segment_tail). */
    size_t cut = off < CH_AUDIT__SEG_HEADER ? 0 : len;
    while (off >= CH_AUDIT__SEG_HEADER) {
        ch_audit__frame_t f;
        ch_audit__frame_status_t s = ch_audit__frame_read(map, len, off, &f);
        uint64_t seq = a->tree.size;
        if (s == CH_AUDIT__FRAME_END) {
            break;
        }
        const char *what = NULL;
        uint64_t rseq = 0;
        int64_t rtime = 0;
        if (s == CH_AUDIT__FRAME_TORN) {
            what = "the segment ends in the middle of the record";
        } else if (s == CH_AUDIT__FRAME_BAD_LEN) {
            what = "invalid frame length";
        } else if (s == CH_AUDIT__FRAME_BAD_HASH) {
            what = "stored leaf hash does not match its bytes";
        } else if (ch_audit__record_tail(f.record, f.len, &rseq, &rtime) != 0) {
            what = "not a canonical audit record";
        } else if (rseq != seq) {
            what = "wrong sequence number";
        }
        if (what != NULL && is_last) {
            size_t at = len;
            int t = ch_audit__segment_tail(map, len, off, &at);
            if (t >= 0) {
                cut = at;
                break;
            }
        }
        if (what != NULL) {
            rc = CH_EIO;
            ch_audit__set_err(err,
                              "record %" PRIu64 " in %s at byte %" PRIu64
                              ": %s; run `cctvhub audit verify` on %s",
                              seq, name, off, what, a->dir);
            goto out;
        }
        offs_put(a, seq, off);
        uint8_t h[CH_AUDIT_HASH_SIZE];
        memcpy(h, f.hash, CH_AUDIT_HASH_SIZE);
        ch_audit__tree_append(&a->tree, h);
        a->last_time_ns = rtime;
        off = f.next;
    }
    if (cut < len) {
        uint64_t seq = a->tree.size;
        if (a->cp_have && seq < a->cp_size) {
            rc = CH_EIO;
            ch_audit__set_err(err,
                              "record %" PRIu64 " in %s at byte %" PRIu64
                              " is damaged and a checkpoint covers it; run `cctvhub audit "
                              "verify` on %s",
                              seq, name, off, a->dir);
            goto out;
        }
        ch_log(CH_LOG_WARN, "audit",
               "msg=\"segment ends in a torn record\" segment=%s offset=%" PRIu64 " bytes=%" PRIu64
               " seq=%" PRIu64 " action=%s",
               name, (uint64_t)cut, (uint64_t)(len - cut), seq, a->writable ? "cut" : "ignored");
        if (a->writable) {
            char *saved = NULL;
            rc = cut_file(a->dir, name, fd, cut, map + cut, len - cut, &saved);
            if (rc != 0) {
                ch_free(saved);
                ch_audit__set_err(err, "cannot cut the torn tail of %s: %s", path.data,
                                  ch_strerror(rc));
                goto out;
            }
            ch_free(rec->saved);
            rec->bytes = len - cut;
            rec->offset = cut;
            snprintf(rec->file, sizeof(rec->file), "%s", name);
            rec->saved = saved;
        }
    }
    if (a->writable && off == 0) {
        /* The header itself was torn (or the file is empty): write it again. */
        uint8_t hdr[CH_AUDIT__SEG_HEADER];
        ch_audit__segment_header_make(hdr, first);
        rc = write_all_at(fd, hdr, sizeof(hdr), 0);
        if (rc == 0 && fdatasync(fd) != 0) {
            rc = -errno;
        }
        if (rc != 0) {
            ch_audit__set_err(err, "cannot rewrite the header of %s: %s", path.data,
                              ch_strerror(rc));
            goto out;
        }
        off = CH_AUDIT__SEG_HEADER;
    }
    segs_push(a, first, fd);
    fd = -1;
    a->seg_bytes = off;
    a->seg_alloc = cut > off ? cut : off;
out:
    if (map != NULL && heap.data == NULL) {
        munmap(map, len);
    }
    ch_buf_fini(&heap);
    if (fd >= 0) {
        close(fd);
    }
    ch_buf_fini(&path);
    return rc;
}

/* Appends the audit.recovered record that says what recovery cut and where it kept it. */
static int append_recovered(ch_audit_t *a, const recovery_t *rec)
{
    json_t *d =
        json_pack("{s:s, s:I, s:I, s:s}", "file", rec->file, "offset", (json_int_t)rec->offset,
                  "bytes_cut", (json_int_t)rec->bytes, "saved_as", rec->saved ? rec->saved : "");
    char object[64];
    snprintf(object, sizeof(object), "audit:%s", rec->file);
    ch_audit_entry_t e = {
        .actor = "system",
        .action = "audit.recovered",
        .object = object,
        .outcome = "ok",
        .details = d,
    };
    int rc = ch_audit_append(a, &e, NULL);
    json_decref(d);
    return rc;
}

/* Opens the log: options, lock, checkpoints, then segments in order, then the check that the
 * latest checkpoint matches the records, then the recovery record. See audit.h. */
int ch_audit_open(const ch_audit_options_t *opt, ch_audit_t **out, char **err)
{
    *out = NULL;
    if (err != NULL) {
        *err = NULL;
    }
    if (opt == NULL || opt->dir == NULL || opt->dir[0] == '\0') {
        ch_audit__set_err(err, "no audit directory given");
        return CH_EINVAL;
    }
    if (opt->key != NULL && !opt->key->has_secret) {
        ch_audit__set_err(err, "the audit key has no secret part");
        return CH_EINVAL;
    }
    if (opt->segment_max_bytes != 0 && opt->segment_max_bytes < MIN_SEG_MAX) {
        ch_audit__set_err(err, "segment_max_bytes must be at least %d", MIN_SEG_MAX);
        return CH_EINVAL;
    }
    if (sodium_init() < 0) {
        ch_audit__set_err(err, "libsodium failed to initialise");
        return CH_EIO;
    }
    ch_audit_t *a = ch_calloc(1, sizeof(*a));
    recovery_t rec = {0};
    char **names = NULL;
    size_t nnames = 0;
    int rc = 0;
    a->lock_fd = -1;
    a->cp_fd = -1;
    a->reserve_fd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->rmu, NULL);
    pthread_cond_init(&a->cond, NULL);
    ch_metrics_hist_init(&a->m_fsync, fsync_bounds, CH_ARRAY_SIZE(fsync_bounds));
    ch_audit__tree_init(&a->tree);
    a->dir = ch_strdup(opt->dir);
    a->origin = ch_strdup(opt->origin ? opt->origin
                          : opt->key  ? opt->key->name
                                      : CH_AUDIT_DEFAULT_NAME);
    a->node = ch_strdup(opt->node_id ? opt->node_id : CH_AUDIT_DEFAULT_NAME);
    a->writable = opt->key != NULL;
    if (opt->key != NULL) {
        a->key = *opt->key;
    }
    a->cp_every_records =
        opt->checkpoint_every_records ? opt->checkpoint_every_records : DEFAULT_CP_RECORDS;
    a->cp_every_ms = opt->checkpoint_every_ms ? opt->checkpoint_every_ms : DEFAULT_CP_MS;
    a->seg_max = opt->segment_max_bytes ? opt->segment_max_bytes : DEFAULT_SEG_MAX;
    a->cp_mono_ms = mono_ms();
    if (a->writable) {
        a->refusals = ch_audit__refusals_new(
            opt->refusal_interval_ms ? opt->refusal_interval_ms : DEFAULT_REFUSAL_MS,
            opt->refusal_peers ? opt->refusal_peers : DEFAULT_REFUSAL_PEERS);
    }

    if (a->writable) {
        if (mkdir(a->dir, 0700) != 0 && errno != EEXIST) {
            rc = -errno;
            ch_audit__set_err(err, "cannot create %s: %s", a->dir, strerror(errno));
            goto out;
        }
        a->lock_fd = open_in_dir(a->dir, "lock");
        if (a->lock_fd < 0) {
            rc = a->lock_fd;
            ch_audit__set_err(err, "cannot open the lock file in %s: %s", a->dir, strerror(-rc));
            goto out;
        }
        if (flock(a->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = errno == EWOULDBLOCK ? CH_ECONFLICT : -errno;
            ch_audit__set_err(err, "%s is open for writing by another process or handle", a->dir);
            goto out;
        }
    }
    rc = list_segments(a->dir, &names, &nnames);
    if (rc != 0) {
        ch_audit__set_err(err, "cannot list %s: %s", a->dir, ch_strerror(rc));
        goto out;
    }
    rc = open_checkpoints(a, &rec, err);
    if (rc != 0) {
        goto out;
    }
    for (size_t i = 0; i < nnames; i++) {
        rc = open_segment(a, names[i], i + 1 == nnames, &rec, err);
        if (rc != 0) {
            goto out;
        }
    }
    if (a->cp_have) {
        uint8_t root[CH_AUDIT_HASH_SIZE];
        ch_audit_checkpoint_t cp;
        char *perr = NULL;
        if (ch_audit_checkpoint_parse(a->cp_latest, strlen(a->cp_latest), NULL, &cp, &perr) != 0 ||
            cp.size > a->tree.size || ch_audit__tree_root(&a->tree, cp.size, root) != 0 ||
            memcmp(root, cp.root, CH_AUDIT_HASH_SIZE) != 0) {
            rc = CH_EIO;
            ch_audit__set_err(err,
                              "the records in %s do not match the latest checkpoint (size %" PRIu64
                              ", the log holds %" PRIu64 "); run `cctvhub audit verify`",
                              a->dir, a->cp_size, a->tree.size);
            ch_free(perr);
            goto out;
        }
    }
    if (a->writable && !a->cp_have && a->tree.size > 0) {
        int64_t t0 = 0, t1 = 0;
        rc = record_time(a, 0, &t0);
        if (rc == 0) {
            rc = record_time(a, a->tree.size - 1, &t1);
        }
        if (rc != 0) {
            ch_audit__set_err(err, "cannot read the records in %s: %s", a->dir, ch_strerror(rc));
            goto out;
        }
        int64_t span_ms = (t1 - t0) / 1000000;
        if (span_ms > (int64_t)a->cp_every_ms + UNCHECKED_GRACE_MS && !opt->accept_unchecked) {
            rc = CH_EIO;
            ch_audit__set_err(err,
                              "%s holds %" PRIu64 " records written over %.1f s but no "
                              "checkpoint, though the writer signs one every %" PRIu32
                              " ms: its checkpoints file was deleted, perhaps to hide records "
                              "cut from its end. Run `cctvhub audit verify --key ... "
                              "--checkpoint ...` with a checkpoint kept elsewhere; to go on with "
                              "this log, run `cctvhub audit accept --reason TEXT`",
                              a->dir, a->tree.size, (double)span_ms / 1000.0, a->cp_every_ms);
            goto out;
        }
    }
    if (a->writable && a->nsegs == 0) {
        int fd = segment_create(a->dir, 0);
        if (fd < 0) {
            rc = fd;
            ch_audit__set_err(err, "cannot create the first segment in %s: %s", a->dir,
                              ch_strerror(rc));
            goto out;
        }
        segs_push(a, 0, fd);
        a->seg_bytes = CH_AUDIT__SEG_HEADER;
        a->seg_alloc = CH_AUDIT__SEG_HEADER;
    }
    a->next_seq = a->tree.size;
    if (a->writable && opt->reserve_bytes > 0) {
        /* Made (or kept) now, while there is room: a log that cannot make it still opens,
         * and its appends try again (reserve_restore). */
        a->reserve_fd = open_in_dir(a->dir, "reserve");
        if (a->reserve_fd < 0) {
            rc = a->reserve_fd;
            ch_audit__set_err(err, "cannot open the reserve file in %s: %s", a->dir, strerror(-rc));
            goto out;
        }
        a->reserve_bytes = opt->reserve_bytes;
        pthread_mutex_lock(&a->rmu);
        int rrc = reserve_fill_locked(a);
        a->reserve_held = rrc == 0;
        pthread_mutex_unlock(&a->rmu);
        if (rrc != 0) {
            a->nospace = is_nospace(rrc);
            ch_log(CH_LOG_WARN, "audit",
                   "msg=\"cannot reserve disk space for records that end access\" bytes=%" PRIu64
                   " error=\"%s\" dir=%s",
                   a->reserve_bytes, strerror(-rrc), a->dir);
        }
    }
    if (a->writable && rec.bytes > 0) {
        rc = append_recovered(a, &rec);
        if (rc != 0) {
            ch_audit__set_err(err, "cannot append the recovery record: %s", ch_strerror(rc));
            goto out;
        }
    }
    /* Records but no checkpoint yet (a crash before the first one): the first batch signs
     * one, so that the rule above holds for every later open. Not the open itself: a caller
     * that finds the log must not be signed over closes it with ch_audit_close_unsigned. */
    a->cp_due = a->writable && !a->cp_have && a->tree.size > 0;
    ch_log(CH_LOG_INFO, "audit",
           "msg=\"audit log open\" dir=%s records=%" PRIu64 " segments=%zu mode=%s", a->dir,
           a->tree.size, a->nsegs, a->writable ? "rw" : "ro");
out:
    ch_free_strings(names, nnames);
    ch_free(rec.saved);
    if (rc != 0) {
        a->writable = 0; /* no final checkpoint for a log that failed to open */
        ch_audit_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

void ch_audit_close_unsigned(ch_audit_t *a)
{
    if (a != NULL) {
        a->writable = 0; /* nothing more is written: no summaries, no final checkpoint */
    }
    ch_audit_close(a);
}

void ch_audit_close(ch_audit_t *a)
{
    if (a == NULL) {
        return;
    }
    if (a->writable && a->failed == 0) {
        /* The refusals counted but not yet summed up (a clean stop). */
        (void)ch_audit_refusals_flush(a, 1);
    }
    if (a->writable && a->failed == 0 && (!a->cp_have || a->cp_size != a->tree.size)) {
        int rc = ch_audit_checkpoint_now(a);
        if (rc != 0) {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"final checkpoint failed\" err=%d", rc);
        }
    }
    if (a->writable && a->failed == 0 && a->nsegs > 0 && a->seg_alloc > a->seg_bytes) {
        /* A closed log holds no padding: other tools see only frames. */
        int rc = segment_trim(a->segs[a->nsegs - 1].fd, a->seg_bytes);
        if (rc != 0) {
            ch_log(CH_LOG_ERROR, "audit", "msg=\"cannot trim the segment padding\" err=%d", rc);
        }
    }
    for (size_t i = 0; i < a->nsegs; i++) {
        close(a->segs[i].fd);
    }
    if (a->cp_fd >= 0) {
        close(a->cp_fd);
    }
    if (a->reserve_fd >= 0) {
        close(a->reserve_fd);
    }
    if (a->lock_fd >= 0) {
        close(a->lock_fd);
    }
    ch_audit_key_wipe(&a->key);
    ch_audit__tree_fini(&a->tree);
    ch_buf_fini(&a->wbuf);
    ch_free(a->whash);
    ch_free(a->wlist);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->rmu);
    pthread_cond_destroy(&a->cond);
    ch_free(a->segs);
    ch_free(a->offs);
    ch_free(a->cp_latest);
    ch_audit__refusals_free(a->refusals);
    ch_free(a->dir);
    ch_free(a->origin);
    ch_free(a->node);
    ch_free(a);
}
