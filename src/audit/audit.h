/*
 * audit: the record every decision and every view of cctvhub leaves behind, built so that no
 * one (the hub's own administrators included) can alter or trim it without detection, and so
 * that a privacy officer can verify it on a laptop with no network and no running hub.
 *
 *  - Records are canonical JSON (jansson, JSON_COMPACT | JSON_SORT_KEYS): seq, time (UTC
 *    nanoseconds), node, actor, action, object, purpose, legal_basis, outcome, details.
 *  - They are appended to segment files in <data_dir>/audit, each framed with its length and
 *    its RFC 9162 leaf hash so that a reader finds torn tails and corruption (format below).
 *  - A Merkle tree over all records (RFC 9162 section 2.1, SHA-256) gives the root of any size,
 *    inclusion proofs and consistency proofs.
 *  - Every N records or T milliseconds the tree size and root are written to
 *    <data_dir>/audit/checkpoints as a C2SP signed note (tlog-checkpoint), signed with the
 *    node's Ed25519 key, so that existing transparency-log tools can read it.
 *  - ch_audit_append returns only once its record is durable (fdatasync); concurrent appenders
 *    share one write and one fdatasync (group commit).
 *  - ch_audit_verify_dir checks a directory offline and names the first thing that is wrong.
 *
 * On-disk format (also in docs/internals/audit.md). All integers big-endian.
 *
 *   <data_dir>/keys/node.key   "PRIVATE+KEY+<name>+<keyid hex>+<base64(0x01 || seed[32])>\n",
 *                              mode 0600 (the format of Go's golang.org/x/mod/sumdb/note signer
 *                              keys).
 *   <data_dir>/keys/node.pub   "<name>+<keyid hex>+<base64(0x01 || pubkey[32])>\n" (a C2SP
 *                              signed-note verifier key). keyid = the first 4 bytes of
 *                              SHA-256(name || 0x0A || 0x01 || pubkey), as 8 lowercase hex.
 *   <dir>/<first seq, 20 decimal digits>.seg, e.g. 00000000000000000000.seg:
 *       header   8 bytes "CHAUDSG1" || u64 seq of its first record
 *       frames   u32 length L (1 .. CH_AUDIT_RECORD_MAX) || L bytes of record ||
 *                32 bytes leaf hash SHA-256(0x00 || record)
 *     Segments are append-only; a new one starts when the current one reaches
 *     segment_max_bytes. A record never spans two segments.
 *     The last segment may end in zero padding that the writer wrote ahead of its records
 *     (so that appends overwrite allocated blocks): since a frame's length is never 0, a zero
 *     u32 where the next frame would start marks the end of the records, and every byte after
 *     it up to the end of the file, a multiple of 65536 bytes, must be zero. A frame cut short
 *     by zeros, or bytes past that aligned end that are zeros or a frame cut short by the end
 *     of the file, are a torn tail; non-zero bytes after the zero length word are damage. The
 *     padding is cut off when a segment is sealed (rotation) and when the log is closed.
 *   <dir>/checkpoints: C2SP signed notes, one after another, oldest first:
 *       <origin>\n<tree size>\n<base64(root)>\ntime <UTC ns>\n\n
 *       \u2014 <key name> <base64(keyid[4] || Ed25519 signature[64])>\n
 *     The signature covers the note text: every line before the blank line, each with its
 *     newline (as in Go's golang.org/x/mod/sumdb/note).
 *   <dir>/recovered/: tails cut by crash recovery, kept for inspection, never read back.
 *
 * Errors: every fallible call returns 0 or a negative CH_E* code (core/core.h). Calls that take
 * `char **err` set *err, when err is not NULL, to a message on failure (free with ch_free) and
 * leave it NULL on success.
 *
 * Threading: a ch_audit_t is shared by all threads; every call on it is thread-safe. The pure
 * functions (hashes, proofs, note parsing, verification) are reentrant.
 */
#ifndef CH_AUDIT_H
#define CH_AUDIT_H

#include "core/core.h"
#include "core/metrics.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CH_AUDIT_HASH_SIZE    32            /* SHA-256 */
#define CH_AUDIT_RECORD_MAX   (1024 * 1024) /* the largest record, in bytes */
#define CH_AUDIT_KEY_NAME_MAX 127           /* bytes in a key name / origin */
#define CH_AUDIT_PROOF_MAX    128           /* hashes in any proof of a tree < 2^64 */
#define CH_AUDIT_DEFAULT_NAME "cctvhub"

/* ---- keys ------------------------------------------------------------------------------ */

/* A node key. Filled by ch_audit_keys_load (secret and public) or ch_audit_pubkey_parse
 * (public only). Plain data the caller owns; ch_audit_key_wipe clears the secret part. */
typedef struct ch_audit_key {
    char name[CH_AUDIT_KEY_NAME_MAX + 1]; /* the signed-note key name, also the default origin */
    uint8_t key_id[4];                    /* SHA-256(name || 0x0A || 0x01 || pk)[0..3] */
    uint8_t pk[32];                       /* Ed25519 public key */
    uint8_t sk[64];                       /* Ed25519 secret key (libsodium form); zero if none */
    int has_secret;                       /* 1 when sk is set */
} ch_audit_key_t;

/* Writes the key name for a node into out (cap bytes): "cctvhub" when node_id is NULL or
 * empty, else "cctvhub/<node_id>". 0, or CH_EINVAL when node_id holds a byte a key name may not
 * hold (space, '+', control bytes, non-ASCII) or the name would not fit. Reentrant. */
int ch_audit_key_name_for_node(const char *node_id, char *out, size_t cap) CH_MUST_CHECK;

/* Makes a new Ed25519 key pair in <data_dir>/keys (created mode 0700 when missing):
 * node.key (secret, mode 0600, written with O_EXCL and fsync'd) and node.pub (public, 0644).
 * ch_audit_keys_init names the key "cctvhub"; ch_audit_keys_init_named takes the name (see
 * ch_audit_key_name_for_node). Refuses to overwrite: CH_EEXIST when node.key exists. Other
 * failures: CH_EINVAL (bad name), -errno. Safe to call from any thread, but two processes
 * racing on one directory get one winner and one CH_EEXIST. */
int ch_audit_keys_init(const char *data_dir, char **err) CH_MUST_CHECK;
int ch_audit_keys_init_named(const char *data_dir, const char *name, char **err) CH_MUST_CHECK;

/* Reads <data_dir>/keys/node.key into *key (secret and public part) and checks that node.pub,
 * when present, holds the same public key. CH_ENOENT when there is no key (run
 * `cctvhub keys init`), CH_EPARSE when a file is malformed or the two disagree, -errno. Logs a
 * warning when node.key is readable by group or others. Wipe *key with ch_audit_key_wipe when
 * done. */
int ch_audit_keys_load(const char *data_dir, ch_audit_key_t *key, char **err) CH_MUST_CHECK;

/* Reads only <data_dir>/keys/node.pub into *key (has_secret = 0). CH_ENOENT, CH_EPARSE. */
int ch_audit_keys_load_public(const char *data_dir, ch_audit_key_t *key, char **err) CH_MUST_CHECK;

/* Parses a verifier key string "<name>+<keyid hex>+<base64(0x01 || pk)>" (surrounding white
 * space ignored) into *key (has_secret = 0), checking that the key id matches. 0 or
 * CH_EPARSE. Reentrant. */
int ch_audit_pubkey_parse(const char *text, ch_audit_key_t *key, char **err) CH_MUST_CHECK;

/* Writes the verifier key string of key (public part) into out, NUL-terminated: 0, or
 * CH_ETOOBIG when cap is too small (CH_AUDIT_KEY_NAME_MAX + 64 is always enough). */
int ch_audit_pubkey_format(const ch_audit_key_t *key, char *out, size_t cap) CH_MUST_CHECK;

/* Clears the secret part of *key (sodium_memzero). NULL is fine. */
void ch_audit_key_wipe(ch_audit_key_t *key);

/* ---- the log --------------------------------------------------------------------------- */

typedef struct ch_audit ch_audit_t;

typedef struct ch_audit_options {
    const char *dir;     /* required: the log directory, normally <data_dir>/audit; created
                            (mode 0700) when missing and key != NULL */
    const char *origin;  /* the checkpoint origin line; NULL = key->name, else "cctvhub" */
    const char *node_id; /* the "node" of every record; NULL = "cctvhub" */
    /* The signing key, borrowed for the life of the handle (copied at open, so the caller
     * may wipe its copy afterwards). NULL opens the log read-only: no appends, no
     * checkpoints, no recovery writes (a torn tail is skipped in memory, not cut). */
    const ch_audit_key_t *key;
    uint32_t checkpoint_every_records; /* 0 = 1000 */
    uint32_t checkpoint_every_ms;      /* 0 = 1000; checked on each append */
    uint64_t segment_max_bytes;        /* 0 = 64 MiB; at least 4096 */
    /* Refusals (ch_audit_refusal): the interval over which a peer's refusals of one kind
     * make one record, and the number of peers counted apart (then "other peers"). */
    uint32_t refusal_interval_ms; /* 0 = 60000 */
    uint32_t refusal_peers;       /* 0 = 1024 */
    /* Disk kept in <dir>/reserve (allocated at open) for records that end access (see
     * ch_audit_append_ending): when such a record meets a full disk, the reserve is
     * released and the append tried again; other records are refused (-ENOSPC) until the
     * reserve can be put back. 0 keeps none. */
    uint64_t reserve_bytes;
    /* A writable open refuses a log that has records written further apart than the
     * checkpoint interval (checkpoint_every_ms, plus a second) but no checkpoint at all: the
     * writer signs one every interval, so the checkpoints file was deleted (perhaps to hide a
     * cut at the log's end). 1 opens it anyway: an operator's explicit decision (`cctvhub
     * audit accept`), which the caller should put on the record. */
    int accept_unchecked;
} ch_audit_options_t;

/* Opens the log in opt->dir, reads every segment (checking each frame's length and leaf hash),
 * rebuilds the Merkle tree in memory and reads the latest checkpoint.
 *
 * Crash recovery (writable opens only): a torn tail of the last segment (a frame cut short by
 * the end of the file, or only zero bytes from some point to the end) is moved to
 * <dir>/recovered/, cut off, logged at warn, and an "audit.recovered" record is appended
 * saying how many bytes were cut and where; a torn tail of the checkpoints file is cut the
 * same way. A damaged frame that is NOT a torn tail (a complete frame whose hash does not
 * match, bad bytes followed by good ones, or damage to records a checkpoint already covers)
 * is never cut: the open fails with CH_EIO and a message pointing to `cctvhub audit verify`.
 *
 * A writable open of a log that has records but no checkpoint refuses it (CH_EIO) when its
 * records span more than the checkpoint interval (see accept_unchecked), and otherwise (a
 * crash before the first checkpoint) signs one after its first append.
 *
 * On success *out is a handle to release with ch_audit_close. Fails with CH_EINVAL (bad
 * options), CH_ENOENT (read-only and no directory), CH_EIO / CH_EPARSE (damaged log), -errno.
 * The caller must not open the same directory writable twice (a lock file enforces it:
 * CH_ECONFLICT). */
int ch_audit_open(const ch_audit_options_t *opt, ch_audit_t **out, char **err) CH_MUST_CHECK;

/* Writes a final checkpoint when records were added since the last one (writable handles),
 * closes the files and frees the handle. All appends must have returned. NULL is fine. */
void ch_audit_close(ch_audit_t *a);

/* ---- the node's log (node.c) ----------------------------------------------------------- */

/* Writes a data directory's log directory, "<data_dir>/audit", into out: 0, or CH_ETOOBIG
 * when it does not fit in cap bytes. */
int ch_audit_node_dir(const char *data_dir, char *out, size_t cap) CH_MUST_CHECK;

/* Opening the log of a data directory, as the hub and its commands do. */
typedef struct ch_audit_node_req {
    const char *data_dir;
    int read_only; /* no key: no writes (ch_audit_options_t.key NULL), beside a running hub */
    int make_key;  /* writable: make the node key first when the data directory has none */
    /* Everything else of the open (node_id, the checkpoint cadence, the refusals, the
     * reserve, accept_unchecked); its dir and key are set here. */
    ch_audit_options_t options;
} ch_audit_node_req_t;

/*
 * The use case "open the node's log": <data_dir>/audit (ch_audit_node_dir), writable with the
 * node key of <data_dir>/keys (made first when make_key is set and there is none, its public
 * key logged for the auditors) unless read_only. 0 and *out (ch_audit_close); else a negative
 * code and f (kind CH_FAULT_UNAVAILABLE, f->rc the code, the message the audit module's or the
 * code's text) whose rule says what failed: "dir" (path too long), "key" (CH_ENOENT: no key;
 * run `cctvhub keys init`) or "log" (ch_audit_open's codes; CH_ECONFLICT: another process
 * holds the log). The callers word the messages; when why is not NULL it receives the whole
 * text on failure (f->message keeps 255 bytes; free *why with ch_free), else NULL.
 */
int ch_audit_open_node(const ch_audit_node_req_t *req, ch_audit_t **out, ch_fault_t *f,
                       char **why) CH_MUST_CHECK;

/* The use case "make the node key" (`cctvhub keys init`): ch_audit_keys_init, then the public
 * key read back and written into pub (cap bytes; CH_AUDIT_KEY_NAME_MAX + 64 is enough). 0, or
 * a negative code and f with rule "exists" (CH_EEXIST: never overwritten), "make" (not made)
 * or "read_back" (made, but not read back); why as ch_audit_open_node's. */
int ch_audit_node_key_make(const char *data_dir, char *pub, size_t cap, ch_fault_t *f,
                           char **why) CH_MUST_CHECK;

/* As ch_audit_close, but writes nothing more (no final checkpoint, no refusal summaries): for
 * a caller that found the log must not be signed over (the hub, when the log does not extend
 * the checkpoint its store kept). NULL is fine. */
void ch_audit_close_unsigned(ch_audit_t *a);

/* One record to append. Every string is borrowed and copied into the record; NULL stores JSON
 * null (actor, action and outcome are required). */
typedef struct ch_audit_entry {
    const char *actor;       /* "user:NAME", "agency:ID", "system" */
    const char *action;      /* "camera.create", "import", "grant.deny", ... */
    const char *object;      /* "camera:123", "event:9", ... or NULL */
    const char *purpose;     /* or NULL */
    const char *legal_basis; /* or NULL */
    const char *outcome;     /* "ok", "denied", "error" */
    json_t *details;         /* borrowed JSON object (not stolen), or NULL */
} ch_audit_entry_t;

/* Appends one record and returns once it is durable (written and fdatasync'd), setting
 * *seq_out (may be NULL) to its sequence number. Thread-safe: concurrent callers share one
 * write and one fdatasync (the first waiter leads the batch and wakes the others); records
 * get sequence numbers in the order they reach the file. May write a checkpoint afterwards
 * when one is due. Blocks; never call it on a thread that must not wait for the disk.
 *
 * CH_EINVAL (missing field, details not an object, read-only handle), CH_ETOOBIG (record over
 * CH_AUDIT_RECORD_MAX), CH_EIO or -errno when the disk failed: after a failed sync (or a
 * failed write that could not be undone) the handle refuses all further appends (the file's
 * state is unknown until it is reopened and recovered), so a caller must treat the audited
 * decision as not made. -ENOSPC / -EDQUOT (a full disk) are not sticky: the write is undone
 * and the next append tries again; while the disk is full only records of ch_audit_append_ending go
 * through, using the reserve (ch_audit_options_t.reserve_bytes). */
int ch_audit_append(ch_audit_t *a, const ch_audit_entry_t *e, uint64_t *seq_out) CH_MUST_CHECK;

/* As ch_audit_append, for a record that ends access (an event closed, revoked or expired, a
 * grant revoked): on a full disk it may use the reserve (ch_audit_options_t.reserve_bytes),
 * so that access can always be ended and put on the record. */
int ch_audit_append_ending(ch_audit_t *a, const ch_audit_entry_t *e,
                           uint64_t *seq_out) CH_MUST_CHECK;

/* Puts a refusal (a bad credential, a refused viewer) on the record without letting whoever
 * is refused decide how much the hub writes: the first refusal of a peer (its address; a port
 * is ignored) and kind (e->action) in an interval (refusal_interval_ms) is appended at once,
 * as ch_audit_append would; the ones after it are only counted, and one record (same action,
 * outcome "denied", details {"aggregated": true, "count", "first_time", "last_time",
 * "interval_ms", "peer", "reasons": {reason: count}}, the reasons taken from e->details'
 * "reason") sums them up when the interval ends (ch_audit_refusals_flush) or the log closes.
 * The table is fixed in size (refusal_peers): once full, further peers share one slot
 * ("other peers"). status 429 (refused for rate) records nothing. Returns the append's code
 * when it appended, else 0; CH_EINVAL on a read-only handle. Thread-safe; may block like
 * ch_audit_append (for the first of an interval, and for the summary of this peer and
 * kind when its interval is over: two appends at most; ch_audit_refusals_flush writes the
 * rest, and frees the slots of peers that went quiet). */
int ch_audit_refusal(ch_audit_t *a, const char *peer, int status, const ch_audit_entry_t *e);

/* Appends the summary of every peer and kind whose interval is over (all: every one with
 * refusals counted, as ch_audit_close does). 0 or the first append's error. Call it now and
 * then (the hub does on its housekeeping tick). Thread-safe; blocks like ch_audit_append. */
int ch_audit_refusals_flush(ch_audit_t *a, int all);

/* Whether the log can take records: 0 when it can (why = ""), 1 when it is degraded, with
 * why (cap bytes, NUL-terminated) saying how: no space left on device (new records refused
 * until there is space; not sticky, the next append tries again), the reserve released or
 * not made, or a failed sync (sticky until a restart). Any thread; cheap. */
int ch_audit_status(ch_audit_t *a, char *why, size_t cap);

/* The number of durable records (the current tree size). */
uint64_t ch_audit_size(ch_audit_t *a);

/* The log's metrics (a ch_metrics_collect_fn; ud is the ch_audit_t; any thread):
 * cctvhub_audit_appends_total, _append_failures_total, _commits_total, cctvhub_audit_records
 * and the histogram cctvhub_audit_fsync_duration_seconds (one observation per group
 * commit). */
void ch_audit_collect(ch_metrics_writer_t *w, void *ud);

/* Writes a checkpoint of the current size now, unless the latest one already has this size
 * (then 0 and nothing written). Durable on return. CH_EINVAL on a read-only handle. */
int ch_audit_checkpoint_now(ch_audit_t *a) CH_MUST_CHECK;

/* Sets *note to a copy of the latest checkpoint note (free with ch_free). CH_ENOTFOUND when
 * none was written yet. */
int ch_audit_checkpoint_latest(ch_audit_t *a, char **note) CH_MUST_CHECK;

/* ---- reading --------------------------------------------------------------------------- */

/* Sets *json (free with ch_free; NUL-terminated) and *len to the canonical bytes of record
 * seq, checking its leaf hash. CH_ENOTFOUND when seq >= size, CH_EIO when the stored bytes no
 * longer match their hash, -errno. */
int ch_audit_read(ch_audit_t *a, uint64_t seq, char **json, size_t *len) CH_MUST_CHECK;

/* An iterator over records [from, size at creation). The handle must outlive it. One
 * iterator is used by one thread at a time; many iterators may run at once. */
typedef struct ch_audit_iter ch_audit_iter_t;

/* A record delivered by the iterator: json is valid until the next call on the iterator. */
typedef struct ch_audit_record {
    uint64_t seq;
    const char *json; /* NUL-terminated canonical JSON */
    size_t len;
    uint8_t leaf_hash[CH_AUDIT_HASH_SIZE];
} ch_audit_record_t;

int ch_audit_iter_new(ch_audit_t *a, uint64_t from, ch_audit_iter_t **out) CH_MUST_CHECK;
/* 0 and *rec filled; CH_ENOTFOUND at the end; CH_EIO / -errno on a damaged or unreadable
 * record. */
int ch_audit_iter_next(ch_audit_iter_t *it, ch_audit_record_t *rec) CH_MUST_CHECK;
void ch_audit_iter_free(ch_audit_iter_t *it); /* NULL is fine */

/* ---- Merkle tree and proofs (RFC 9162 section 2.1) ------------------------------------- */

/* A proof: count hashes, leaf to root order as RFC 9162 defines it. Plain data. */
typedef struct ch_audit_proof {
    size_t count;
    uint8_t hash[CH_AUDIT_PROOF_MAX][CH_AUDIT_HASH_SIZE];
} ch_audit_proof_t;

/* SHA-256(0x00 || data) and SHA-256(0x01 || left || right). Reentrant. */
void ch_audit_leaf_hash(const void *data, size_t len, uint8_t out[CH_AUDIT_HASH_SIZE]);
void ch_audit_node_hash(const uint8_t left[CH_AUDIT_HASH_SIZE],
                        const uint8_t right[CH_AUDIT_HASH_SIZE], uint8_t out[CH_AUDIT_HASH_SIZE]);

/* The root of the first `size` records (size <= ch_audit_size; size 0 gives SHA-256 of the
 * empty string). CH_EINVAL when size is too large. O(log size). */
int ch_audit_root(ch_audit_t *a, uint64_t size, uint8_t root[CH_AUDIT_HASH_SIZE]) CH_MUST_CHECK;

/* The inclusion proof of record index in the tree of `size` records (index < size <=
 * ch_audit_size), RFC 9162 section 2.1.3.1. CH_EINVAL for bad bounds. O(log size). */
int ch_audit_prove_inclusion(ch_audit_t *a, uint64_t index, uint64_t size,
                             ch_audit_proof_t *proof) CH_MUST_CHECK;

/* The consistency proof between sizes size1 and size2 (0 < size1 <= size2 <= ch_audit_size;
 * empty when they are equal), RFC 9162 section 2.1.4.1. CH_EINVAL for bad bounds. */
int ch_audit_prove_consistency(ch_audit_t *a, uint64_t size1, uint64_t size2,
                               ch_audit_proof_t *proof) CH_MUST_CHECK;

/* Verifies an inclusion proof (RFC 9162 section 2.1.3.2): 0 when leaf_hash is leaf `index` of
 * the tree of `size` leaves whose root is `root`, else CH_EPARSE. Pure. */
int ch_audit_verify_inclusion(const uint8_t leaf_hash[CH_AUDIT_HASH_SIZE], uint64_t index,
                              uint64_t size, const ch_audit_proof_t *proof,
                              const uint8_t root[CH_AUDIT_HASH_SIZE]) CH_MUST_CHECK;

/* Verifies a consistency proof (RFC 9162 section 2.1.4.2): 0 when the tree of size2 leaves
 * with root2 extends the tree of size1 leaves with root1, else CH_EPARSE. size1 == size2 needs
 * an empty proof and equal roots; size1 == 0 needs an empty proof. Pure. */
int ch_audit_verify_consistency(uint64_t size1, uint64_t size2,
                                const uint8_t root1[CH_AUDIT_HASH_SIZE],
                                const uint8_t root2[CH_AUDIT_HASH_SIZE],
                                const ch_audit_proof_t *proof) CH_MUST_CHECK;

/* ---- checkpoints ----------------------------------------------------------------------- */

/* A parsed checkpoint note. */
typedef struct ch_audit_checkpoint {
    char origin[CH_AUDIT_KEY_NAME_MAX + 1];
    uint64_t size;
    uint8_t root[CH_AUDIT_HASH_SIZE];
    int64_t time_ns;   /* from the "time" extension line; 0 when absent */
    int signed_by_key; /* 1 when a signature by the given key verified */
} ch_audit_checkpoint_t;

/* Parses one checkpoint note of exactly len bytes (text, blank line, signature lines). When
 * key is not NULL, a signature line by that key (same name and key id) must verify:
 * CH_EPARSE otherwise, with *err saying whether the note is malformed, has no signature by
 * the key, or has one that does not verify. When key is NULL signatures are only checked for
 * form. Reentrant. */
int ch_audit_checkpoint_parse(const char *note, size_t len, const ch_audit_key_t *key,
                              ch_audit_checkpoint_t *out, char **err) CH_MUST_CHECK;

/* The latest checkpoint of a, its note (*note, free with ch_free) and parsed (*cp, its
 * signature not checked: the log signed it), as the hub keeps it in its store. 0;
 * CH_ENOTFOUND when there is none yet (nothing to free); else a code (parse errors logged). */
int ch_audit_checkpoint_latest_parsed(ch_audit_t *a, ch_audit_checkpoint_t *cp,
                                      char **note) CH_MUST_CHECK;

/* Builds and signs a checkpoint note (key must hold a secret); *note is NUL-terminated,
 * free with ch_free. Reentrant. */
int ch_audit_checkpoint_sign(const char *origin, uint64_t size,
                             const uint8_t root[CH_AUDIT_HASH_SIZE], int64_t time_ns,
                             const ch_audit_key_t *key, char **note) CH_MUST_CHECK;

/* ---- offline verification -------------------------------------------------------------- */

/* What ch_audit_verify_dir found. Plain data; no fini needed. */
typedef struct ch_audit_verify_report {
    int ok;                 /* 1 when everything checked holds */
    uint64_t records;       /* records read and checked */
    uint64_t segments;      /* segment files read */
    uint64_t checkpoints;   /* checkpoints checked */
    int signatures_checked; /* 0 when no key was given or found: signatures not checked */
    /* Where the key came from: 0 none, 1 given by the caller (pubkey_text), 2 read from
     * <dir>/../keys/node.pub, the same disk as the log (which proves nothing against whoever
     * controls that disk). key is its verifier key string ("" when none). */
    int key_source;
    char key[CH_AUDIT_KEY_NAME_MAX + 64];
    uint64_t torn_tail_bytes; /* bytes of a torn tail at the end of the last segment (a crash
                                 the hub has not recovered yet; not a failure) */
    uint8_t root[CH_AUDIT_HASH_SIZE]; /* the root of all records */
    /* The first problem, when !ok. bad_seq is the record concerned or UINT64_MAX;
     * bad_checkpoint the checkpoint's index in the file (0-based) or -1; bad_segment and
     * bad_offset where in which file (empty / 0 when not a record). */
    uint64_t bad_seq;
    int64_t bad_checkpoint;
    char bad_segment[256];
    uint64_t bad_offset;
    char message[512]; /* one sentence, e.g. "record 17: stored leaf hash does not match its
                          bytes (flipped byte?)"; a summary when ok */
} ch_audit_verify_report_t;

/* Verifies the log directory dir (normally <data_dir>/audit) without a running hub: every
 * segment header and record frame, that sequence numbers run 0..n-1 in order, every stored
 * leaf hash, that each record is a JSON object whose "seq" is its position, every checkpoint's
 * form, signature (with pubkey_text, a verifier key string, or when NULL the key in
 * <dir>/../keys/node.pub if there is one) and root against the tree recomputed at its size,
 * and, given old_checkpoint_text (a note an auditor kept), that its signature verifies and
 * that the log still extends it (same root at its size).
 *
 * Returns 0 when all holds (rep->ok = 1), CH_EPARSE when something does not (rep names the
 * first bad record or checkpoint), CH_EINVAL for a bad pubkey_text or old checkpoint, CH_ENOENT
 * when dir does not exist, -errno when it cannot be read. rep is always filled. Reads the
 * files only (no lock): run it on a copy, or accept that records appended meanwhile are not
 * covered. Reentrant. */
int ch_audit_verify_dir(const char *dir, const char *pubkey_text, const char *old_checkpoint_text,
                        ch_audit_verify_report_t *rep) CH_MUST_CHECK;

/* What an auditor asks `cctvhub audit verify` for: the log directory, the node's key as a
 * verifier key string or the name of a regular file holding one (NULL: the key in
 * <dir>/../keys/node.pub, if any), and a file holding a checkpoint kept from earlier (NULL:
 * none). The files hold at most 64 KiB. */
typedef struct ch_audit_verify_req {
    const char *dir;
    const char *key;
    const char *checkpoint_file;
} ch_audit_verify_req_t;

/* The use case "verify a log": reads the key and the kept checkpoint the request names, then
 * ch_audit_verify_dir (its returns, rep always filled, f->rule NULL). When a named file cannot
 * be read nothing is verified: -errno (-EFBIG when too large), f->rule "key_file" or
 * "checkpoint_file", f->rc the code. Reentrant. */
int ch_audit_verify(const ch_audit_verify_req_t *req, ch_audit_verify_report_t *rep,
                    ch_fault_t *f) CH_MUST_CHECK;

/* ---- what a record refers to --------------------------------------------------------------- */

/* The kinds of object a search asks records about. */
typedef enum ch_audit_kind {
    CH_AUDIT_CAMERA,
    CH_AUDIT_AGENCY,
    CH_AUDIT_EVENT,
} ch_audit_kind_t;

/* The ids of one kind a record refers to, in the order found (an id may repeat). The caller
 * owns ids (free with ch_audit_refs_fini); a zeroed struct is empty and may be reused. */
typedef struct ch_audit_refs {
    int64_t *ids;
    size_t n, cap;
} ch_audit_refs_t;

/*
 * The one rule of "which records concern object X", for the store's index (GET /api/v1/audit)
 * and for `cctvhub audit show` alike: a record refers to camera 5 when its object is
 * "camera:5", or its details hold "camera_id": 5, "camera": 5 or "cameras": [..., 5, ...]
 * (a grant names several); the same with agency/agencies and event/events. Ids are positive
 * JSON integers ("5" in quotes is not an id). The actor is not part of the rule: what agency
 * 12 did is the actor filter ("agency:12"), not the records about agency 12.
 *
 * ch_audit_refs sets r to every id of kind that rec (a parsed record; NULL or not an object
 * gives none) refers to, growing r->ids as needed (no cap: the index holds them all).
 * ch_audit_refers_to says whether rec refers to id, without allocating.
 */
void ch_audit_refs(const json_t *rec, ch_audit_kind_t kind, ch_audit_refs_t *r);
int ch_audit_refers_to(const json_t *rec, ch_audit_kind_t kind, int64_t id);
void ch_audit_refs_fini(ch_audit_refs_t *r);

/* ---- queries: filters, proofs, kept checkpoints (query.c) ---------------------------------- */

/* Which records a reader wants (`cctvhub audit show`). Every member set must match. */
typedef struct ch_audit_filter {
    int64_t since_ns, until_ns;    /* the record's time, inclusive; INT64_MIN / INT64_MAX: none */
    int64_t camera, agency, event; /* 0: any; else records about it (ch_audit_refers_to) */
    const char *actor;             /* NULL: any; else exactly ("user:kim", "agency:12", "system") */
    const char *action;            /* NULL: any; else exactly, or a family with ".*" ("grant.*") */
} ch_audit_filter_t;

/* A filter that matches every record. */
void ch_audit_filter_init(ch_audit_filter_t *f);

/* The time of a parsed record in nanoseconds: its "time" member as an integer (nanoseconds) or
 * an RFC 3339 string; -1 when it has neither. */
int64_t ch_audit_record_time_ns(const json_t *rec);

/* Whether a parsed record passes every filter of f: 1 or 0. Pure. */
int ch_audit_filter_match(const json_t *rec, const ch_audit_filter_t *f);

/* Called with each matching record, oldest first: rec as the iterator delivers it, parsed its
 * JSON object (both valid during the call only). */
typedef void (*ch_audit_select_fn)(void *ud, const ch_audit_record_t *rec, const json_t *parsed);

/* Reads the log from its first record and calls fn with every record f matches, stopping after
 * limit matches (UINT64_MAX: none). 0 at the end; the iterator's code (CH_EIO, -errno) when
 * record *at cannot be read, CH_EPARSE when record *at is not a JSON object. */
int ch_audit_select(ch_audit_t *a, const ch_audit_filter_t *f, uint64_t limit,
                    ch_audit_select_fn fn, void *ud, uint64_t *at) CH_MUST_CHECK;

/* The size of the latest checkpoint (the root an auditor can check against a signature), or
 * the current size when none was written yet: the default tree size of a proof. */
uint64_t ch_audit_signed_size(ch_audit_t *a);

/* An inclusion proof and what it proves: record index (its leaf hash) in the tree of size
 * records (its root). About 4 KiB: not for the stack of a small thread. */
typedef struct ch_audit_inclusion {
    uint64_t index, size;
    uint8_t leaf_hash[CH_AUDIT_HASH_SIZE];
    uint8_t root[CH_AUDIT_HASH_SIZE];
    ch_audit_proof_t proof;
} ch_audit_inclusion_t;

/* A consistency proof: the tree of second records (root2) extends the tree of first (root1). */
typedef struct ch_audit_consistency {
    uint64_t first, second;
    uint8_t root1[CH_AUDIT_HASH_SIZE];
    uint8_t root2[CH_AUDIT_HASH_SIZE];
    ch_audit_proof_t proof;
} ch_audit_consistency_t;

/* Fills *out with the proof of record index in the tree of size records. CH_EINVAL with a
 * fault (field "size": size beyond the log; "index": index >= size), or the log's code (a
 * record that cannot be read; fault kind CH_FAULT_INTERNAL). fault may be NULL. */
int ch_audit_inclusion(ch_audit_t *a, uint64_t index, uint64_t size, ch_audit_inclusion_t *out,
                       ch_fault_t *fault) CH_MUST_CHECK;

/* Fills *out with the consistency proof between first and second records (0 < first <= second
 * <= ch_audit_size). Errors as ch_audit_inclusion (fields "size" and "first"). */
int ch_audit_consistency(ch_audit_t *a, uint64_t first, uint64_t second,
                         ch_audit_consistency_t *out, ch_fault_t *fault) CH_MUST_CHECK;

/* A hash as a JSON string of lowercase hex, and a proof's path as an array of them. */
json_t *ch_audit_hash_json(const uint8_t hash[CH_AUDIT_HASH_SIZE]);
json_t *ch_audit_proof_json(const ch_audit_proof_t *p);

/* A proof as one JSON object (new reference): an inclusion proof {"index", "size",
 * "leaf_hash", "root", "path"} (GET /api/v1/audit/proof's shape too), a consistency proof
 * {"first", "second", "root1", "root2", "path"} (`cctvhub audit prove --consistency`). */
json_t *ch_audit_inclusion_json(const ch_audit_inclusion_t *p);
json_t *ch_audit_consistency_json(const ch_audit_consistency_t *p);

/* Whether the log extends a checkpoint of size and root kept elsewhere (the hub keeps one in
 * its store): NULL when it does, else a phrase saying how it does not ("records were removed
 * from its end", or rewritten). */
const char *ch_audit_extends(ch_audit_t *a, uint64_t size, const uint8_t root[CH_AUDIT_HASH_SIZE]);

/* An operator's decision to go on with a log that does not extend the checkpoint kept for it
 * (`cctvhub audit accept`). */
typedef struct ch_audit_accept {
    const char *actor;  /* who decided ("user:NAME") */
    const char *reason; /* why, in their words */
    int kept;           /* 1 when a checkpoint was kept: kept_size and kept_root */
    uint64_t kept_size;
    uint8_t kept_root[CH_AUDIT_HASH_SIZE];
} ch_audit_accept_t;

/* Puts the decision on the record (an "audit.accept" record naming the reason, what the log
 * holds, the checkpoint kept and how the log departs from it) and signs a checkpoint of the
 * log as it now is. 0 and *seq, or the append's or the checkpoint's code. Writable handles. */
int ch_audit_accept(ch_audit_t *a, const ch_audit_accept_t *req, uint64_t *seq) CH_MUST_CHECK;

/* ---- kept outside the log (kept.c) ------------------------------------------------------- */

/* The copy of a checkpoint kept outside the log, where whoever cuts the log's end and deletes
 * its checkpoints file must find and change it too (the hub keeps it in its store). note is
 * the signed note: given to put (borrowed), left NULL by get. */
typedef struct ch_audit_kept {
    uint64_t size;
    uint8_t root[CH_AUDIT_HASH_SIZE];
    const char *note;
} ch_audit_kept_t;

/* Where the copy lives. The audit module does not link the store (DESIGN.md's floors): the
 * caller gives these calls over its own handle, ud (a store handle is single-threaded: the
 * calls below run on the caller's thread). */
typedef struct ch_audit_keeper {
    /* Fills size and root of the copy: 0, CH_ENOTFOUND when none is kept, else a code. */
    int (*get)(void *ud, ch_audit_kept_t *out);
    /* Replaces the copy with *kept (borrowed): 0 or a code. */
    int (*put)(void *ud, const ch_audit_kept_t *kept);
    /* The text of get's or put's last failure (never NULL). */
    const char *(*errmsg)(void *ud);
} ch_audit_keeper_t;

/* The check a starting hub makes before it signs anything: 0 when the log extends the copy
 * (or none is kept: a new hub); CH_ECONFLICT when it does not (*kept the copy, *departs
 * ch_audit_extends' phrase; logged at error); else get's code (k->errmsg says why). */
int ch_audit_kept_check(ch_audit_t *a, const ch_audit_keeper_t *k, void *ud, ch_audit_kept_t *kept,
                        const char **departs) CH_MUST_CHECK;

/* Keeps the log's latest checkpoint when its size differs from *kept_size (then updated).
 * 0 (also when there is no checkpoint yet), or the audit's or put's code (logged). */
int ch_audit_kept_update(ch_audit_t *a, const ch_audit_keeper_t *k, void *ud, uint64_t *kept_size);

/* The use case `cctvhub audit accept` (on a log opened with accept_unchecked): reads the copy,
 * puts the operator's decision on the record (ch_audit_accept, naming the copy when there is
 * one) and keeps the checkpoint it signed. 0, *seq and *kept_size; else a code and f (may be
 * NULL) whose rule says what failed: "read" (get's code, kind CH_FAULT_INTERNAL, the message
 * k->errmsg's) or "record" (the decision or its checkpoint not recorded or not kept, kind
 * CH_FAULT_AUDIT, the message the code's text). */
int ch_audit_accept_kept(ch_audit_t *a, const ch_audit_keeper_t *k, void *ud, const char *actor,
                         const char *reason, uint64_t *seq, uint64_t *kept_size,
                         ch_fault_t *f) CH_MUST_CHECK;

/* Appends one record that a command queued while the hub held the log (auth's outbox:
 * ch_auth_outbox_drain's append, with log the ch_audit_t): outcome "ok", details borrowed,
 * ch_audit_append_ending when ends_access. 0 once durable, else the append's code. */
int ch_audit_append_queued(void *log, const char *actor, const char *action, const char *object,
                           json_t *details, int ends_access) CH_MUST_CHECK;

#endif /* CH_AUDIT_H */
/* API-READY */
