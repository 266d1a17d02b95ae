/*
 * registry internals shared by its .c files; not part of the module's API.
 */
#ifndef CH_REGISTRY_PRIVATE_H
#define CH_REGISTRY_PRIVATE_H

#include "registry/registry.h"

#include <stdint.h>

/* ---- a bump arena whose allocations never move --------------------------------------------- */

/* Strings built for one row (camera names, keys, flags) live here until the next row; the
 * arena keeps its blocks across rows, so a steady import allocates nothing per row. */
typedef struct ch_registry__block ch_registry__block_t;

typedef struct ch_registry__arena {
    ch_registry__block_t *head; /* the block being filled first */
    ch_registry__block_t *cur;
} ch_registry__arena_t;

void ch_registry__arena_reset(ch_registry__arena_t *a);
void ch_registry__arena_fini(ch_registry__arena_t *a);
char *ch_registry__arena_alloc(ch_registry__arena_t *a, size_t n);
/* Copies n bytes and a NUL. */
char *ch_registry__arena_strndup(ch_registry__arena_t *a, const char *s, size_t n);
/* "<s><sep><num>" without printf: camera names and keys are made millions of times. */
char *ch_registry__arena_numbered(ch_registry__arena_t *a, const char *s, size_t n, const char *sep,
                                  size_t num);
char *ch_registry__arena_printf(ch_registry__arena_t *a, const char *fmt, ...) CH_PRINTF(2, 3);

/* ---- hashing ---------------------------------------------------------------------------- */

/* FNV-1a, 64 bits: stable across builds and machines, so it may appear in stored keys. */
uint64_t ch_registry__fnv1a(uint64_t h, const void *p, size_t n);
#define CH_REGISTRY__FNV_OFFSET 0xcbf29ce484222325ULL

/* A fast 128-bit hash (two 64-bit lanes) for in-memory duplicate detection only. */
typedef struct ch_registry__h128 {
    uint64_t a, b;
} ch_registry__h128_t;

void ch_registry__hash128(const void *p, size_t n, ch_registry__h128_t *out);

/* An open-addressing map from a 128-bit hash to an int (a line, or a count). */
typedef struct ch_registry__map {
    struct ch_registry__map_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
} ch_registry__map_t;

void ch_registry__map_fini(ch_registry__map_t *m);
/* Makes room for n keys without growing; 0 or CH_ENOMEM. */
int ch_registry__map_reserve(ch_registry__map_t *m, size_t n) CH_MUST_CHECK;
/* Finds key; when absent inserts it with value init. Returns the value's address (valid until
 * the next insert) and sets *found. NULL when memory ran out (the map is unchanged). */
int *ch_registry__map_upsert(ch_registry__map_t *m, ch_registry__h128_t key, int init, int *found);

/* ---- text ------------------------------------------------------------------------------- */

/* Trims ASCII whitespace, U+3000 (ideographic space), U+00A0 and U+FEFF at both ends of
 * s[0..*len) and turns every inner run of them (tabs, line breaks, double spaces) into one
 * space, in place. Returns the new start; *len is updated; the byte after the end is
 * overwritten with NUL when it lies within the original length. */
char *ch_registry__normalize_cell(char *s, size_t *len);

/* Converts a buffer in a non-UTF-8 encoding (CP949, UTF-16) to UTF-8, or sanitises UTF-8 with
 * invalid bytes, chunk by chunk: iconv runs once over each large chunk, never per cell. */
typedef struct ch_registry__decoder ch_registry__decoder_t;

int ch_registry__decoder_new(ch_import_encoding_t enc, const char *data, size_t len,
                             ch_registry__decoder_t **out) CH_MUST_CHECK;
/* Gives the next chunk of UTF-8 (borrowed until the next call); 0 with *n == 0 at the end. */
int ch_registry__decoder_next(ch_registry__decoder_t *d, const char **chunk,
                              size_t *n) CH_MUST_CHECK;
uint64_t ch_registry__decoder_consumed(const ch_registry__decoder_t *d); /* input bytes done */
long ch_registry__decoder_invalid(const ch_registry__decoder_t *d);
void ch_registry__decoder_free(ch_registry__decoder_t *d);

/* Parses a whole number that may carry thousands separators ("83,557"); 0 or CH_EPARSE. */
int ch_registry__parse_count(const char *s, size_t n, int64_t *out);

/* A short reason text for a coordinate verdict. */
const char *ch_registry__coord_reason(ch_coord_verdict_t v);

/* Appends at most max bytes of s to b, cut on a UTF-8 character boundary, with "..." when cut. */
void ch_registry__append_clipped(ch_buf_t *b, const char *s, size_t n, size_t max);

/* ---- report ----------------------------------------------------------------------------- */

void ch_registry__report_flag(ch_import_report_t *rep, int line, const char *flags,
                              const char *reason);
void ch_registry__report_skip(ch_import_report_t *rep, int line, const char *reason);

#endif /* CH_REGISTRY_PRIVATE_H */
