/*
 * Offline verification of a log directory: what an auditor runs on a copy of the files, with
 * no hub and no network. It trusts nothing but the public key and, when given, a checkpoint
 * the auditor kept from before.
 */
#include "audit/audit_internal.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records the first failure: which record or checkpoint, where, and the sentence. */
static void fail(ch_audit_verify_report_t *rep, uint64_t seq, int64_t cp, const char *segment,
                 uint64_t offset, const char *fmt, ...) CH_PRINTF(6, 7);

static void fail(ch_audit_verify_report_t *rep, uint64_t seq, int64_t cp, const char *segment,
                 uint64_t offset, const char *fmt, ...)
{
    rep->ok = 0;
    rep->bad_seq = seq;
    rep->bad_checkpoint = cp;
    snprintf(rep->bad_segment, sizeof(rep->bad_segment), "%s", segment ? segment : "");
    rep->bad_offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->message, sizeof(rep->message), fmt, ap);
    va_end(ap);
}

/* A file mapped read-only (or an empty one), or read into memory (heap). */
typedef struct mapped {
    uint8_t *p;
    size_t len;
    int heap;
} mapped_t;

/* Reads the last segment instead of mapping it: a running hub may cut that file's padding
 * (rotation, close) while it is being read, and a mapping would then fault (SIGBUS) on the
 * pages past the new end. A short file is read as it is. */
static int read_file(const char *path, mapped_t *m)
{
    ch_buf_t b = {0};
    int rc = ch_buf_read_file(&b, path);
    if (rc != 0 || b.len == 0) {
        ch_buf_fini(&b);
        m->p = NULL;
        m->len = 0;
        return rc;
    }
    m->len = b.len;
    m->p = (uint8_t *)ch_buf_steal(&b);
    m->heap = 1;
    return 0;
}

static int map_file(const char *path, mapped_t *m)
{
    m->p = NULL;
    m->len = 0;
    struct stat st;
    int fd = ch_file_open_stat(path, &st);
    if (fd < 0) {
        return fd;
    }
    int rc = 0;
    if (st.st_size > 0) {
        m->len = (size_t)st.st_size;
        /* MAP_POPULATE reads the file in with large sequential reads up front rather than one
         * page fault per record later. */
        m->p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m->p == MAP_FAILED) {
            m->p = NULL;
            rc = -errno;
        }
    }
    close(fd);
    return rc;
}

static void unmap_file(mapped_t *m)
{
    if (m->p != NULL && m->heap) {
        ch_free(m->p);
    } else if (m->p != NULL) {
        munmap(m->p, m->len);
    }
    m->p = NULL;
}

/* Says why a record that ch_audit__record_check refused is wrong. Only the failure path
 * calls it, so the full jansson parse here costs nothing on a good log; it turns a refusal
 * into the parser's own words where the record is not JSON at all. */
static void record_why(const uint8_t *rec, size_t len, char *why, size_t cap)
{
    json_error_t jerr;
    json_t *o = json_loadb((const char *)rec, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        snprintf(why, cap, "it is not valid JSON (%s at byte %d)", jerr.text, jerr.position);
        return;
    }
    json_t *s = json_object_get(o, "seq");
    if (!json_is_object(o) || !json_is_integer(s) || json_integer_value(s) < 0) {
        snprintf(why, cap, "it is not an audit record (no integer \"seq\")");
    } else {
        snprintf(why, cap,
                 "it is not a canonical audit record (keys not in sorted order, or not ending "
                 "with \"seq\" and \"time\")");
    }
    json_decref(o);
}

/* What the parallel pass found for one record. */
enum { REC_OK = 0, REC_BAD_HASH, REC_BAD_RECORD };

typedef struct rec_check {
    uint64_t off;  /* frame offset in the segment */
    uint64_t rseq; /* the record's own "seq" (REC_OK) */
    int status;
} rec_check_t;

/* The records of one segment, checked on every core. */
typedef struct seg_job {
    const uint8_t *map;
    size_t len;
    rec_check_t *rec;
    uint8_t (*leaf)[CH_AUDIT_HASH_SIZE];
} seg_job_t;

/* Checks records [lo, hi) of a job: the leaf hash against the bytes, then the record's form
 * and "seq". Each record is independent, so ranges run in parallel; the caller reports the
 * first failure in log order afterwards. */
static void check_range(void *ctx, size_t lo, size_t hi)
{
    seg_job_t *j = ctx;
    for (size_t i = lo; i < hi; i++) {
        rec_check_t *r = &j->rec[i];
        ch_audit__frame_t f;
        ch_audit__frame_status_t st = ch_audit__frame_peek(j->map, j->len, r->off, &f);
        assert(st == CH_AUDIT__FRAME_OK);
        (void)st;
        ch_audit_leaf_hash(f.record, f.len, j->leaf[i]);
        if (sodium_memcmp(j->leaf[i], f.hash, CH_AUDIT_HASH_SIZE) != 0) {
            r->status = REC_BAD_HASH;
        } else if (ch_audit__record_check(f.record, f.len, &r->rseq) != 0) {
            r->status = REC_BAD_RECORD;
        } else {
            r->status = REC_OK;
        }
    }
}

/* The state of one verification, to keep the steps small. */
typedef struct verifier {
    const char *dir;
    ch_audit_verify_report_t *rep;
    ch_audit__tree_t tree;
    ch_audit_key_t key;
    int have_key;
    /* Per-record scratch reused from segment to segment, so that no record allocates. */
    rec_check_t *rec;
    uint8_t (*leaf)[CH_AUDIT_HASH_SIZE];
    size_t rec_cap;
} verifier_t;

/* Reads the segment at path into the tree. Returns 0 when it was read to its end, 1 when the
 * verification failed (rep filled), or -errno. */
static int verify_segment(verifier_t *v, const char *name, int is_last)
{
    ch_audit_verify_report_t *rep = v->rep;
    ch_buf_t path = {0};
    mapped_t m = {0};
    int rc = 0;
    ch_buf_appendf(&path, "%s/%s", v->dir, name);
    rc = is_last ? read_file(path.data, &m) : map_file(path.data, &m);
    if (rc != 0) {
        goto out;
    }
    rep->segments++;
    uint64_t named = 0, first = 0;
    ch_audit__segment_name_parse(name, &named);
    int hrc = ch_audit__segment_header(m.p, m.len, &first);
    uint64_t expect = v->tree.size;
    if (hrc == CH_EAGAIN && is_last && named == expect) {
        rep->torn_tail_bytes = m.len;
        goto out;
    }
    if (hrc != 0) {
        fail(rep, expect, -1, name, 0, "segment %s: not an audit segment (%s)", name,
             hrc == CH_EAGAIN ? "shorter than its header" : "bad magic");
        rc = 1;
        goto out;
    }
    if (first != named) {
        fail(rep, expect, -1, name, 8,
             "segment %s: its header says it starts at record %" PRIu64 ", its name says %" PRIu64,
             name, first, named);
        rc = 1;
        goto out;
    }
    if (first != expect) {
        if (first > expect) {
            fail(rep, expect, -1, name, 0,
                 "record %" PRIu64 " missing: sequence jumps from %" PRIu64 " to %" PRIu64
                 " (segment %s starts at %" PRIu64 ")",
                 expect, expect - 1, first, name, first);
        } else {
            fail(rep, expect, -1, name, 0,
                 "segment %s starts at record %" PRIu64 " but %" PRIu64
                 " records came before it (overlapping segments)",
                 name, first, expect);
        }
        rc = 1;
        goto out;
    }
    /* Pass 1, sequential and cheap: walk the frame lengths to find every record and the
     * first frame that is torn or has a bad length. */
    size_t off = CH_AUDIT__SEG_HEADER, count = 0;
    ch_audit__frame_status_t stop;
    ch_audit__frame_t f;
    for (;;) {
        stop = ch_audit__frame_peek(m.p, m.len, off, &f);
        if (stop != CH_AUDIT__FRAME_OK) {
            break;
        }
        if (count == v->rec_cap) {
            v->rec_cap = v->rec_cap ? v->rec_cap * 2 : 4096;
            v->rec = ch_realloc(v->rec, v->rec_cap * sizeof(*v->rec));
            v->leaf = ch_realloc(v->leaf, v->rec_cap * CH_AUDIT_HASH_SIZE);
        }
        v->rec[count++].off = off;
        off = f.next;
    }
    uint32_t bad_len = f.bad_len;
    /* Pass 2, on every core: hash and check each record found. */
    seg_job_t job = {.map = m.p, .len = m.len, .rec = v->rec, .leaf = v->leaf};
    ch_audit__parallel(count, 2048, check_range, &job);
    /* Pass 3, in log order: report the first bad record, exactly as a one-by-one scan would. */
    size_t good = 0, cut = m.len;
    int torn = 0;
    for (; good < count; good++) {
        const rec_check_t *r = &v->rec[good];
        uint64_t seq = v->tree.size + good;
        size_t roff = (size_t)r->off;
        if (is_last && (r->status != REC_OK || r->rseq != seq) &&
            ch_audit__segment_tail(m.p, m.len, roff, &cut) == 1) {
            /* A frame written into the padding and cut short by a crash. */
            torn = 1;
            break;
        }
        if (r->status == REC_BAD_HASH) {
            fail(rep, seq, -1, name, roff,
                 "record %" PRIu64 ": stored leaf hash does not match its bytes (flipped byte?) "
                 "at byte %zu of %s",
                 seq, roff, name);
            break;
        }
        if (r->status == REC_BAD_RECORD) {
            char why[200];
            (void)ch_audit__frame_peek(m.p, m.len, roff, &f);
            record_why(f.record, f.len, why, sizeof(why));
            fail(rep, seq, -1, name, roff, "record %" PRIu64 ": %s, at byte %zu of %s", seq, why,
                 roff, name);
            break;
        }
        uint64_t rseq = r->rseq;
        if (rseq != seq) {
            /* Tell a swap from a gap: a swapped pair has the missing number right after. */
            ch_audit__frame_t g;
            uint64_t nseq = UINT64_MAX;
            (void)ch_audit__frame_peek(m.p, m.len, roff, &f);
            if (rseq > seq && ch_audit__frame_read(m.p, m.len, f.next, &g) == CH_AUDIT__FRAME_OK &&
                ch_audit__record_check(g.record, g.len, &nseq) == 0 && nseq == seq) {
                fail(rep, seq, -1, name, roff,
                     "record %" PRIu64 ": records %" PRIu64 " and %" PRIu64
                     " are swapped (record %" PRIu64 " is stored at byte %zu of %s)",
                     seq, seq, rseq, rseq, roff, name);
            } else if (rseq > seq) {
                fail(rep, seq, -1, name, roff,
                     "record %" PRIu64 " missing: sequence jumps from %" PRIu64 " to %" PRIu64
                     " at byte %zu of %s",
                     seq, seq - 1 + (seq == 0), rseq, roff, name);
                if (seq == 0) {
                    snprintf(rep->message, sizeof(rep->message),
                             "record 0 missing: the log starts at record %" PRIu64
                             " at byte %zu of %s",
                             rseq, roff, name);
                }
            } else {
                fail(rep, seq, -1, name, roff,
                     "record %" PRIu64 ": sequence number %" PRIu64
                     " out of order (duplicated or moved record) at byte %zu of %s",
                     seq, rseq, roff, name);
            }
            break;
        }
    }
    /* The records before the first bad one count, as they did one by one. */
    ch_audit__tree_append_many(&v->tree, (const uint8_t(*)[CH_AUDIT_HASH_SIZE])v->leaf, good);
    if (torn) {
        rep->torn_tail_bytes = m.len - cut;
        goto out;
    }
    if (good < count) {
        rc = 1;
        goto out;
    }
    uint64_t seq = v->tree.size;
    if (stop != CH_AUDIT__FRAME_END && is_last) {
        /* Zero padding after the records is their end; a torn tail awaits recovery. */
        int t = ch_audit__segment_tail(m.p, m.len, off, &cut);
        if (t == 0) {
            goto out;
        }
        if (t == 1) {
            rep->torn_tail_bytes = m.len - cut;
            goto out;
        }
    }
    /* A torn record that is not the last segment's recoverable tail: the segment was cut. */
    if (stop == CH_AUDIT__FRAME_TORN) {
        fail(rep, seq, -1, name, off,
             "record %" PRIu64 ": segment %s ends in the middle of the record at byte %zu (cut?)",
             seq, name, off);
        rc = 1;
        goto out;
    } else if (stop == CH_AUDIT__FRAME_BAD_LEN) {
        fail(rep, seq, -1, name, off,
             "record %" PRIu64 ": invalid frame length %" PRIu32 " at byte %zu of %s", seq, bad_len,
             off, name);
        rc = 1;
        goto out;
    }
out:
    unmap_file(&m);
    ch_buf_fini(&path);
    return rc;
}

/* Checks one checkpoint against the key and the recomputed tree. 0 or 1 (failed). */
static int verify_one_checkpoint(verifier_t *v, const char *note, size_t len, int64_t index,
                                 ch_audit_checkpoint_t *prev, const char *first_origin)
{
    ch_audit_verify_report_t *rep = v->rep;
    ch_audit_checkpoint_t cp;
    char *err = NULL;
    int rc = ch_audit_checkpoint_parse(note, len, v->have_key ? &v->key : NULL, &cp, &err);
    if (rc != 0) {
        if (cp.size != 0 || cp.origin[0] != '\0') {
            fail(rep, UINT64_MAX, index, NULL, 0, "checkpoint %" PRId64 " (size %" PRIu64 "): %s",
                 index, cp.size, err);
        } else {
            fail(rep, UINT64_MAX, index, NULL, 0, "checkpoint %" PRId64 ": %s", index, err);
        }
        ch_free(err);
        return 1;
    }
    if (first_origin != NULL && strcmp(first_origin, cp.origin) != 0) {
        fail(rep, UINT64_MAX, index, NULL, 0,
             "checkpoint %" PRId64 " (size %" PRIu64 "): origin \"%s\" differs from the first "
             "checkpoint's \"%s\"",
             index, cp.size, cp.origin, first_origin);
        return 1;
    }
    if (prev != NULL && cp.size < prev->size) {
        fail(rep, UINT64_MAX, index, NULL, 0,
             "checkpoint %" PRId64 " (size %" PRIu64 ") is smaller than the checkpoint before it "
             "(size %" PRIu64 ")",
             index, cp.size, prev->size);
        return 1;
    }
    if (cp.size > v->tree.size) {
        fail(rep, UINT64_MAX, index, NULL, 0,
             "checkpoint %" PRId64 " (size %" PRIu64 ") is beyond the end of the log (%" PRIu64
             " records): records were removed from the end",
             index, cp.size, v->tree.size);
        return 1;
    }
    uint8_t root[CH_AUDIT_HASH_SIZE];
    rc = ch_audit__tree_root(&v->tree, cp.size, root);
    if (rc != 0 || sodium_memcmp(root, cp.root, CH_AUDIT_HASH_SIZE) != 0) {
        fail(rep, UINT64_MAX, index, NULL, 0,
             "checkpoint %" PRId64 " (size %" PRIu64 "): root hash does not match the records "
             "(records altered, or the checkpoint replaced)",
             index, cp.size);
        return 1;
    }
    *prev = cp;
    return 0;
}

/* Checks every note of <dir>/checkpoints in order. 0, 1 (failed) or -errno. */
static int verify_checkpoints(verifier_t *v)
{
    ch_buf_t path = {0};
    mapped_t m = {0};
    ch_buf_appendf(&path, "%s/checkpoints", v->dir);
    int rc = map_file(path.data, &m);
    if (rc == CH_ENOENT) {
        rc = 0;
        goto out;
    }
    if (rc != 0) {
        goto out;
    }
    const char *buf = (const char *)m.p;
    size_t off = 0;
    int64_t index = 0;
    ch_audit_checkpoint_t prev;
    char first_origin[CH_AUDIT_KEY_NAME_MAX + 1] = "";
    memset(&prev, 0, sizeof(prev));
    while (off < m.len) {
        size_t end;
        int nrc = ch_audit__note_end(buf, m.len, off, &end);
        if (nrc == CH_EAGAIN) {
            /* A torn note at the end: a crash while it was written, not a failure. */
            break;
        }
        if (nrc != 0) {
            fail(v->rep, UINT64_MAX, index, "checkpoints", off,
                 "checkpoint %" PRId64 ": malformed note at byte %zu of the checkpoints file",
                 index, off);
            rc = 1;
            goto out;
        }
        rc = verify_one_checkpoint(v, buf + off, end - off, index, &prev,
                                   index > 0 ? first_origin : NULL);
        if (rc != 0) {
            snprintf(v->rep->bad_segment, sizeof(v->rep->bad_segment), "checkpoints");
            v->rep->bad_offset = off;
            goto out;
        }
        if (index == 0) {
            snprintf(first_origin, sizeof(first_origin), "%s", prev.origin);
        }
        index++;
        v->rep->checkpoints++;
        off = end;
    }
out:
    unmap_file(&m);
    ch_buf_fini(&path);
    return rc;
}

/* Checks the auditor's checkpoint: its signature, then that the log extends it. */
static int verify_old_checkpoint(verifier_t *v, const char *text)
{
    ch_audit_checkpoint_t cp;
    char *err = NULL;
    int rc = ch_audit_checkpoint_parse(text, strlen(text), v->have_key ? &v->key : NULL, &cp, &err);
    if (rc != 0) {
        fail(v->rep, UINT64_MAX, -1, NULL, 0, "the given checkpoint: %s", err);
        ch_free(err);
        return 1;
    }
    if (cp.size > v->tree.size) {
        fail(v->rep, UINT64_MAX, -1, NULL, 0,
             "the log does not extend the given checkpoint: it has size %" PRIu64
             " but the log holds only %" PRIu64 " records (records removed?)",
             cp.size, v->tree.size);
        return 1;
    }
    uint8_t root[CH_AUDIT_HASH_SIZE];
    if (ch_audit__tree_root(&v->tree, cp.size, root) != 0 ||
        sodium_memcmp(root, cp.root, CH_AUDIT_HASH_SIZE) != 0) {
        fail(v->rep, UINT64_MAX, -1, NULL, 0,
             "the log does not extend the given checkpoint: root at size %" PRIu64 " differs",
             cp.size);
        return 1;
    }
    return 0;
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The steps, in the order their failures are reported: the key, the records segment by
 * segment, the checkpoints file, the auditor's checkpoint. */
int ch_audit_verify_dir(const char *dir, const char *pubkey_text, const char *old_checkpoint_text,
                        ch_audit_verify_report_t *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->ok = 1;
    rep->bad_seq = UINT64_MAX;
    rep->bad_checkpoint = -1;
    if (sodium_init() < 0) {
        return CH_EIO;
    }
    verifier_t v = {.dir = dir, .rep = rep};
    ch_audit__tree_init(&v.tree);
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    char *err = NULL;
    int rc = 0;
    DIR *d = NULL;

    if (pubkey_text != NULL) {
        if (ch_audit_pubkey_parse(pubkey_text, &v.key, &err) != 0) {
            fail(rep, UINT64_MAX, -1, NULL, 0, "the given key is not a verifier key: %s", err);
            rc = CH_EINVAL;
            goto out;
        }
        v.have_key = 1;
        rep->key_source = 1;
    } else {
        ch_buf_t kdir = {0};
        ch_buf_appendf(&kdir, "%s/..", dir);
        int krc = ch_audit_keys_load_public(kdir.data, &v.key, &err);
        ch_buf_fini(&kdir);
        if (krc == 0) {
            v.have_key = 1;
            rep->key_source = 2;
        } else if (krc != CH_ENOENT) {
            fail(rep, UINT64_MAX, -1, NULL, 0, "the node key next to the log is unusable: %s", err);
            rc = CH_EINVAL;
            goto out;
        }
    }
    rep->signatures_checked = v.have_key;
    if (v.have_key && ch_audit_pubkey_format(&v.key, rep->key, sizeof(rep->key)) != 0) {
        rep->key[0] = '\0';
    }

    d = opendir(dir);
    if (d == NULL) {
        rc = -errno;
        fail(rep, UINT64_MAX, -1, NULL, 0, "cannot read %s: %s", dir, strerror(errno));
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        if (ch_audit__segment_name_parse(de->d_name, &first)) {
            if (nnames == cap) {
                cap = cap ? cap * 2 : 16;
                names = ch_realloc(names, cap * sizeof(char *));
            }
            names[nnames++] = ch_strdup(de->d_name);
        }
    }
    closedir(d);
    if (nnames > 1) {
        qsort(names, nnames, sizeof(char *), str_cmp);
    }
    for (size_t i = 0; i < nnames && rc == 0; i++) {
        rc = verify_segment(&v, names[i], i + 1 == nnames);
    }
    rep->records = v.tree.size;
    if (rc == 0) {
        rc = verify_checkpoints(&v);
    }
    if (rc == 0 && old_checkpoint_text != NULL) {
        rc = verify_old_checkpoint(&v, old_checkpoint_text);
    }
    if (rc < 0 && rep->ok) {
        fail(rep, UINT64_MAX, -1, NULL, 0, "cannot read the log in %s: %s", dir, ch_strerror(rc));
    }
    if (rc == 1) {
        rc = CH_EPARSE;
    }
    if (rc == 0) {
        (void)ch_audit__tree_root(&v.tree, v.tree.size, rep->root);
        char b64[64];
        sodium_bin2base64(b64, sizeof(b64), rep->root, CH_AUDIT_HASH_SIZE,
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(rep->message, sizeof(rep->message),
                 "ok: %" PRIu64 " records in %" PRIu64 " segments, %" PRIu64
                 " checkpoints%s, root %s%s%s",
                 rep->records, rep->segments, rep->checkpoints,
                 v.have_key ? " with valid signatures" : " (signatures NOT checked: no key)", b64,
                 old_checkpoint_text ? "; the log extends the given checkpoint" : "",
                 rep->torn_tail_bytes ? "; a torn tail at the end awaits recovery" : "");
    }
out:
    ch_free_strings(names, nnames);
    ch_free(err);
    ch_audit__tree_fini(&v.tree);
    ch_free(v.rec);
    ch_free(v.leaf);
    return rc;
}

/* Reads a whole small file (at most 64 KiB) into a NUL-terminated string (free with ch_free):
 * 0, or -errno (-EFBIG when larger). */
static int read_small_file(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -errno;
    }
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
        rc = b.len > 65536 ? -EFBIG : 0;
    }
    if (rc == 0 && ferror(f)) {
        rc = -EIO;
    }
    fclose(f);
    if (rc != 0) {
        ch_buf_fini(&b);
        return rc;
    }
    *out = b.data != NULL ? b.data : ch_strdup(""); /* ch_buf_t memory is ch_malloc'd */
    return 0;
}

/* A file the request names could not be read: f says which (rule) and the code (rc). */
static int verify_file_fault(ch_fault_t *f, int rc, const char *rule, const char *path)
{
    ch_fault_set(f, rc, CH_FAULT_INVALID, NULL, rule, "cannot read %s: %s", path, strerror(-rc));
    if (f != NULL) {
        f->rule = rule;
        f->rc = rc;
    }
    return rc;
}

int ch_audit_verify(const ch_audit_verify_req_t *req, ch_audit_verify_report_t *rep, ch_fault_t *f)
{
    char *key_text = NULL;
    char *old_note = NULL;
    int rc = 0;
    if (f != NULL) {
        memset(f, 0, sizeof(*f));
    }
    memset(rep, 0, sizeof(*rep));
    if (req->key != NULL) {
        /* A file when one exists by that name, else the key itself. */
        struct stat st;
        if (stat(req->key, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = read_small_file(req->key, &key_text);
            if (rc != 0) {
                verify_file_fault(f, rc, "key_file", req->key);
                goto out;
            }
        } else {
            key_text = ch_strdup(req->key);
        }
    }
    if (req->checkpoint_file != NULL) {
        rc = read_small_file(req->checkpoint_file, &old_note);
        if (rc != 0) {
            verify_file_fault(f, rc, "checkpoint_file", req->checkpoint_file);
            goto out;
        }
    }
    rc = ch_audit_verify_dir(req->dir, key_text, old_note, rep);
out:
    ch_free(key_text);
    ch_free(old_note);
    return rc;
}
