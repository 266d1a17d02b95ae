/*
 * audit internals shared by the files of src/audit, its unit tests and its fuzz target. Not
 * part of the public API: names are ch_audit__*.
 */
#ifndef CH_AUDIT_INTERNAL_H
#define CH_AUDIT_INTERNAL_H

#include "audit/audit.h"

#include <stddef.h>
#include <stdint.h>

#define CH_AUDIT__SEG_MAGIC      "CHAUDSG1"
#define CH_AUDIT__SEG_HEADER     16 /* magic[8] || u64 first seq */
#define CH_AUDIT__FRAME_OVERHEAD (4 + CH_AUDIT_HASH_SIZE)
#define CH_AUDIT__EM_DASH        "\xe2\x80\x94"
/* The writer preallocates a segment with written zeros in steps that keep the file size a
 * multiple of this; zeros after the records up to such a boundary are padding, not a torn
 * tail (ch_audit__segment_tail). */
#define CH_AUDIT__PAD_ALIGN (64 * 1024)

/* ---- Merkle tree (tree.c) ------------------------------------------------------------- */

/* The hashes of every complete perfect subtree: level[h][i] is the root of leaves
 * [i * 2^h, (i + 1) * 2^h). That is about 2n hashes for n leaves (64 MB for a million), and it
 * makes the root of any prefix and every proof O(log n) instead of a rehash of the log. */
typedef struct ch_audit__tree {
    uint64_t size;
    uint8_t (*level[64])[CH_AUDIT_HASH_SIZE];
    uint64_t cap[64];
} ch_audit__tree_t;

void ch_audit__tree_init(ch_audit__tree_t *t);
void ch_audit__tree_fini(ch_audit__tree_t *t);
void ch_audit__tree_append(ch_audit__tree_t *t, const uint8_t leaf[CH_AUDIT_HASH_SIZE]);
/* Appends n leaves at once: the same tree as n calls of ch_audit__tree_append, with the parent
 * hashes of each level computed on all cores (ch_audit__parallel). */
void ch_audit__tree_append_many(ch_audit__tree_t *t, const uint8_t (*leaves)[CH_AUDIT_HASH_SIZE],
                                uint64_t n);
/* Calls fn(ctx, lo, hi) over disjoint ranges that cover [0, n), on up to one thread per core
 * (at most 8), giving each thread at least min_per_thread items; the calling thread takes a
 * share. Returns when every range is done. fn must be safe to run concurrently on disjoint
 * ranges. */
void ch_audit__parallel(size_t n, size_t min_per_thread,
                        void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx);
/* The leaf hash of leaf i (i < size). */
const uint8_t *ch_audit__tree_leaf(const ch_audit__tree_t *t, uint64_t i);
int ch_audit__tree_root(const ch_audit__tree_t *t, uint64_t size, uint8_t out[CH_AUDIT_HASH_SIZE]);
int ch_audit__tree_inclusion(const ch_audit__tree_t *t, uint64_t index, uint64_t size,
                             ch_audit_proof_t *proof);
int ch_audit__tree_consistency(const ch_audit__tree_t *t, uint64_t size1, uint64_t size2,
                               ch_audit_proof_t *proof);

/* ---- segment frames (segment.c) ------------------------------------------------------- */

typedef enum ch_audit__frame_status {
    CH_AUDIT__FRAME_OK = 0,
    CH_AUDIT__FRAME_END,      /* no bytes left: the segment ends cleanly here */
    CH_AUDIT__FRAME_TORN,     /* a frame cut short by the end, or only zeros to the end */
    CH_AUDIT__FRAME_BAD_LEN,  /* a length of 0 or over CH_AUDIT_RECORD_MAX */
    CH_AUDIT__FRAME_BAD_HASH, /* the stored hash does not match the bytes */
} ch_audit__frame_status_t;

typedef struct ch_audit__frame {
    const uint8_t *record; /* inside the scanned buffer */
    uint32_t len;
    const uint8_t *hash; /* the stored leaf hash, inside the buffer */
    size_t next;         /* offset of the next frame */
    uint32_t bad_len;    /* the length field, for BAD_LEN messages */
} ch_audit__frame_t;

/* Parses a segment header: 0 and *first_seq, CH_EAGAIN when buf is shorter than a header,
 * CH_EPARSE when the magic is wrong. */
int ch_audit__segment_header(const uint8_t *buf, size_t len, uint64_t *first_seq);
void ch_audit__segment_header_make(uint8_t out[CH_AUDIT__SEG_HEADER], uint64_t first_seq);

/* Reads the frame at offset off of buf[0, len) without checking its hash (the caller does). */
ch_audit__frame_status_t ch_audit__frame_peek(const uint8_t *buf, size_t len, size_t off,
                                              ch_audit__frame_t *f);
/* Reads the frame at offset off of buf[0, len) and checks its hash. */
ch_audit__frame_status_t ch_audit__frame_read(const uint8_t *buf, size_t len, size_t off,
                                              ch_audit__frame_t *f);

/* Classifies what follows the records of the LAST segment of a log. buf[0, len) is the whole
 * file and off the end of the last frame that checks out (the frame there, if any, is absent,
 * torn, damaged or not the record expected). Let P be the largest multiple of
 * CH_AUDIT__PAD_ALIGN <= len, or off when that is smaller. Then:
 *  - 0: the records end at off and the rest is zero padding: [off, len) is all zeros and
 *    len == P (a zero length word where a frame would start marks the end, since a frame's
 *    length is never 0; off == len counts too);
 *  - 1, *cut set: a torn tail [*cut, len), as a crash leaves it: either [off, P) is zeros and
 *    [P, len) is only zeros or one frame cut short by the end of the file (*cut = P; with no
 *    padding, P == off, this is the rule of old), or a frame at off was written into the
 *    padding and cut short: a valid length, a leaf hash that does not match, and its last
 *    byte and everything after it up to P zero, [P, len) empty or torn as above (*cut = off);
 *  - -1: anything else is damage (a complete frame with a bad hash, a bad length, non-zero
 *    bytes after a zero length word, bytes after the padding that are not a torn tail).
 * Reentrant; reads nothing outside buf[0, len). */
int ch_audit__segment_tail(const uint8_t *buf, size_t len, size_t off, size_t *cut);

/* Reads the "seq" and "time" numbers from the end of a canonical record: sorted keys put them
 * last, so the record ends with ,"seq":N,"time":T}. 0 or CH_EPARSE. Cheap: no JSON parse. */
int ch_audit__record_tail(const uint8_t *rec, size_t len, uint64_t *seq, int64_t *time_ns);

/* Checks, without allocating, that rec[0, len) is a canonical audit record: one valid JSON
 * value (RFC 8259 grammar, valid UTF-8, no \\u0000, integers that fit in 64 bits, finite
 * reals, nesting no deeper than 2048) that is an object whose keys, at every level, are
 * strictly ascending in byte order of their decoded text (as JSON_SORT_KEYS writes them, so no
 * key repeats), whose own keys need no escapes, and whose last two members are "seq" and
 * "time" with non-negative integers. Sets *seq. 0 or CH_EPARSE. Everything jansson's
 * JSON_REJECT_DUPLICATES parse accepts as an object with an integer "seq" and that the writer
 * could have produced passes; nothing jansson rejects passes. Reentrant. */
int ch_audit__record_check(const uint8_t *rec, size_t len, uint64_t *seq);

/* The name of the segment whose first record is first_seq: 20 digits and ".seg". */
void ch_audit__segment_name(uint64_t first_seq, char out[32]);
/* 1 when name is such a name, setting *first_seq. */
int ch_audit__segment_name_parse(const char *name, uint64_t *first_seq);

/* ---- checkpoint notes (note.c) -------------------------------------------------------- */

/* Finds the end of the signed note starting at buf[off]: 0 and *end (offset just past its last
 * signature line), CH_EAGAIN when the buffer ends inside the note (a torn tail), CH_EPARSE
 * when the bytes cannot begin a note. */
int ch_audit__note_end(const char *buf, size_t len, size_t off, size_t *end);

/* ---- refusals (refusal.c) ------------------------------------------------------------ */

/* The table of refusals counted per peer and kind (see refusal.c). */
typedef struct ch_audit__refusals ch_audit__refusals_t;

/* A table of `peers` slots (and one for "other peers") whose intervals last interval_ms. */
ch_audit__refusals_t *ch_audit__refusals_new(uint32_t interval_ms, uint32_t peers);
void ch_audit__refusals_free(ch_audit__refusals_t *r); /* NULL is fine */
/* The handle's table (NULL for a read-only handle). */
ch_audit__refusals_t *ch_audit__refusals(ch_audit_t *a);
/* Writes cctvhub_audit_refusals_total and cctvhub_audit_refusal_summaries_total. */
void ch_audit__refusals_collect(ch_metrics_writer_t *w, ch_audit__refusals_t *r);

/* Sets *err (when err != NULL) to a formatted message. */
void ch_audit__set_err(char **err, const char *fmt, ...) CH_PRINTF(2, 3);

uint64_t ch_audit__be64(const uint8_t *p);
uint32_t ch_audit__be32(const uint8_t *p);
void ch_audit__put_be64(uint8_t *p, uint64_t v);
void ch_audit__put_be32(uint8_t *p, uint32_t v);

/* Fsyncs the directory dir, so that a file created, renamed or removed in it stays so after a
 * crash. 0 or -errno. */
int ch_audit__fsync_dir(const char *dir);

#endif /* CH_AUDIT_INTERNAL_H */
