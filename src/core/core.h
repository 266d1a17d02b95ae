/*
 * core: the few things every other module needs.
 *
 *  - allocation through one wrapper that aborts on out-of-memory, so that error paths stay
 *    about real failures (ch_malloc and friends); ch_try_malloc for the rare caller that must
 *    survive a failed allocation, and a countdown that tests use to make it fail;
 *  - error codes: 0 or a negative number (-errno, or one of CH_E* below);
 *  - a growable byte buffer (ch_buf_t) and a few string helpers;
 *  - hex text of bytes, both ways (the one place that says what a hex digit is);
 *  - time;
 *  - logging in logfmt to stderr (ch_log).
 *
 * Configuration lives in config.h, next to this header.
 */
#ifndef CH_CORE_H
#define CH_CORE_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define CH_MUST_CHECK    __attribute__((warn_unused_result))
#define CH_PRINTF(a, b)  __attribute__((format(printf, a, b)))
#define CH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CH_UNUSED(x)     ((void)(x))

/* Errors. Fallible calls return 0 on success or one of these (always negative). */
#define CH_OK        0
#define CH_EAGAIN    (-EAGAIN) /* would block, or need more input: not a failure */
#define CH_ENOMEM    (-ENOMEM)
#define CH_EINVAL    (-EINVAL)
#define CH_ENOENT    (-ENOENT)
#define CH_EIO       (-EIO)
#define CH_EPARSE    (-10001) /* malformed input */
#define CH_ENOTFOUND (-10002) /* no such object */
#define CH_EEXIST    (-10003) /* object exists (unique key) */
#define CH_ECONFLICT (-10004) /* refers to a missing or still-referenced object */
#define CH_ETOOBIG   (-10005) /* input over a limit */
#define CH_EUNSUPP   (-10006) /* valid but not supported here */
#define CH_EDB       (-10007) /* the database failed */
#define CH_EEXPIRED  (-10008) /* valid, but its time is over (a view token past expires_s) */
#define CH_EPERM     (-EPERM) /* not allowed: a bad credential, a denied request */

/* A short English text for an error code; never NULL. */
const char *ch_strerror(int rc);

/*
 * Why a domain use case refused (registry, auth, event, audit, ...): a kind, the answer's code,
 * the rule that refused, the request field at fault and a message for people. Never an HTTP
 * status: api/ maps kinds to statuses in one table (api/faults.c), the command line prints the
 * message. Modules fill it with ch_fault_set and return a negative code (usually CH_EPERM,
 * CH_EINVAL, CH_ENOTFOUND, CH_ECONFLICT or the store's code).
 */
typedef enum ch_fault_kind {
    CH_FAULT_NONE = 0,
    CH_FAULT_INVALID,     /* a field breaks a rule (code "invalid", or "outside", ...) */
    CH_FAULT_FORBIDDEN,   /* the actor may not do this to this object ("forbidden") */
    CH_FAULT_DENIED,      /* the policy refused; rule names the policy rule ("denied") */
    CH_FAULT_NOT_FOUND,   /* no such object ("not_found") */
    CH_FAULT_CONFLICT,    /* exists already, or its state forbids it ("conflict") */
    CH_FAULT_TOO_COMPLEX, /* well formed, but beyond what the hub computes ("too_complex") */
    CH_FAULT_UNAVAILABLE, /* a part the use case needs is missing or down ("unavailable") */
    CH_FAULT_AUDIT,       /* the audit record could not be written: nothing changed */
    CH_FAULT_INTERNAL,    /* the store or another part failed (rc): nothing changed */
} ch_fault_kind_t;

typedef struct ch_fault {
    ch_fault_kind_t kind;
    const char *code;  /* the answer's code (static text); NULL = the kind's own */
    const char *rule;  /* the rule that refused (static text), or NULL */
    char field[48];    /* the request field at fault, or "" */
    char message[256]; /* for people */
    int rc;            /* the code the use case returned with it (CH_FAULT_INTERNAL and
                        * CH_FAULT_AUDIT: the store's or the recorder's), or 0 */
} ch_fault_t;

/* Fills f (field and code may be NULL) and returns rc_out, so a use case can
 * `return ch_fault_set(err, CH_EINVAL, CH_FAULT_INVALID, NULL, "name", "...")`. */
int ch_fault_set(ch_fault_t *f, int rc_out, ch_fault_kind_t kind, const char *code,
                 const char *field, const char *fmt, ...) CH_PRINTF(6, 7);

/* ch_fault_set with the message's arguments as a va_list, for a module's own wrapper. */
int ch_fault_vset(ch_fault_t *f, int rc_out, ch_fault_kind_t kind, const char *code,
                  const char *field, const char *fmt, va_list ap) CH_PRINTF(6, 0);

/* The kind's own answer code ("invalid", "forbidden", ...); never NULL. */
const char *ch_fault_code(const ch_fault_t *f);

/* ---- allocation ------------------------------------------------------------------------- */

/* These never return NULL: on out-of-memory they log and abort. free(NULL) is fine. */
void *ch_malloc(size_t n);
void *ch_calloc(size_t count, size_t size);
void *ch_realloc(void *p, size_t n);
char *ch_strdup(const char *s);            /* NULL in, NULL out */
char *ch_strndup(const char *s, size_t n); /* copies at most n bytes, NUL-terminates */
void ch_free(void *p);
/* Frees the n strings of v, then v itself (NULL with n == 0 is fine). */
void ch_free_strings(char **v, size_t n);

/* May return NULL: for callers that must fail gracefully (an import of a huge file). When the
 * countdown set by ch_alloc_fail_after() reaches zero it returns NULL, for fault injection. */
void *ch_try_malloc(size_t n);
void *ch_try_realloc(void *p, size_t n);
/* Make the n-th next ch_try_* call fail (n >= 1); n = 0 turns fault injection off. */
void ch_alloc_fail_after(long n);

/* A zeroed table of n bytes that will be probed at random (hash tables of an import): from
 * 2 MiB up it is its own mapping, in transparent huge pages where the kernel allows (one TLB
 * entry per 2 MiB instead of per 4 KiB page, and no memset: the mapping comes zeroed). May
 * return NULL, like ch_try_malloc (fault injection included). Free with ch_table_free and the
 * same n. */
void *ch_table_alloc(size_t n);
void ch_table_free(void *p, size_t n);

/* ---- byte buffer ------------------------------------------------------------------------ */

/* A growable byte buffer, always NUL-terminated past len (so data is a C string when the
 * content has no NUL). Zero-initialise or ch_buf_init(); ch_buf_fini() frees. */
typedef struct ch_buf {
    char *data;
    size_t len;
    size_t cap;
} ch_buf_t;

void ch_buf_init(ch_buf_t *b);
void ch_buf_fini(ch_buf_t *b);
void ch_buf_reset(ch_buf_t *b); /* len = 0, keeps the memory */
void ch_buf_reserve(ch_buf_t *b, size_t extra);
void ch_buf_append(ch_buf_t *b, const void *p, size_t n);
void ch_buf_append_str(ch_buf_t *b, const char *s);
void ch_buf_append_char(ch_buf_t *b, char c);
void ch_buf_appendf(ch_buf_t *b, const char *fmt, ...) CH_PRINTF(2, 3);
void ch_buf_vappendf(ch_buf_t *b, const char *fmt, va_list ap) CH_PRINTF(2, 0);
/* Hands the bytes to the caller (free with ch_free) and leaves b empty. */
char *ch_buf_steal(ch_buf_t *b);
/* Appends the whole file at path to b (read to its end, whatever its size: a pipe or a file
 * still growing too). 0 or -errno; on an error b holds what was read before it. */
int ch_buf_read_file(ch_buf_t *b, const char *path) CH_MUST_CHECK;

struct stat;
/* Opens path read-only (close-on-exec) and fstats it into *st: the descriptor, the caller's to
 * close, or -errno with nothing left open. */
int ch_file_open_stat(const char *path, struct stat *st) CH_MUST_CHECK;
/* Writes all len bytes of p to the (blocking) descriptor fd, again after EINTR and short
 * writes. 0 or -errno. */
int ch_write_all(int fd, const void *p, size_t len) CH_MUST_CHECK;

/* ---- strings ---------------------------------------------------------------------------- */

/* A view of bytes that someone else owns. */
typedef struct ch_slice {
    const char *ptr;
    size_t len;
} ch_slice_t;

#define CH_SLICE_LIT(s) ((ch_slice_t){(s), sizeof(s) - 1})

int ch_slice_eq(ch_slice_t a, const char *s);        /* exact */
int ch_slice_eq_nocase(ch_slice_t a, const char *s); /* ASCII case-insensitive */

/* Parses the whole of [p, p+n) as a decimal integer / double; 0 or CH_EPARSE (also on
 * overflow, empty input, or trailing bytes). No locale, no leading/trailing spaces. */
int ch_parse_int64(const char *p, size_t n, int64_t *out) CH_MUST_CHECK;
/* The same for 1 to 20 decimal digits, no sign, at most UINT64_MAX. */
int ch_parse_uint64(const char *p, size_t n, uint64_t *out) CH_MUST_CHECK;
int ch_parse_double(const char *p, size_t n, double *out) CH_MUST_CHECK;

/* ---- hex ------------------------------------------------------------------------------- */

/* Flags of ch_hex_encode and ch_hex_decode. */
#define CH_HEX_UPPER      1u /* encode: the digits A-F instead of a-f */
#define CH_HEX_LOWER_ONLY 2u /* decode: refuse A-F, for text that has one spelling (key ids) */

/* Writes the 2n hex digits of [bin, bin+n), lowercase unless flags has CH_HEX_UPPER, and a NUL
 * into out, which holds out_size bytes: 2n + 1 hold them all. Returns 2n. Like snprintf, a
 * smaller out gets the digits of as many whole bytes as fit and the NUL (nothing when out_size
 * is 0), so a return >= out_size means the text was cut. It runs in the same time whatever the
 * bytes (no table, no branch on them), so secrets and their hashes may go through it. */
size_t ch_hex_encode(char *out, size_t out_size, const void *bin, size_t n, unsigned flags);

/* Decodes exactly len hex digits from [hex, hex+len) into len / 2 bytes at out (out_size
 * bytes). 0; CH_EPARSE when len is odd or a byte is not 0-9, a-f or A-F (A-F refused with
 * CH_HEX_LOWER_ONLY); CH_ETOOBIG when out_size < len / 2. On an error out is left undefined. */
int ch_hex_decode(const char *hex, size_t len, void *out, size_t out_size,
                  unsigned flags) CH_MUST_CHECK;

/* The value of one hex digit (0-9, a-f, A-F), or -1 for any other byte: for parsers of hex
 * numbers and percent escapes. */
int ch_hex_digit(int c);

/* ---- time ------------------------------------------------------------------------------- */

int64_t ch_time_now_ms(void);   /* wall clock, milliseconds since the epoch */
uint64_t ch_time_mono_ns(void); /* monotonic, nanoseconds */
/* Formats a wall-clock time as RFC 3339 UTC with milliseconds ("2026-11-25T08:00:00.123Z").
 * out must hold 32 bytes. */
void ch_time_format_rfc3339(int64_t ms, char out[32]);
/* Parses a time into nanoseconds since the epoch: epoch seconds ("1764061200", with an
 * optional fraction), RFC 3339 with Z or an offset ("2026-11-25T18:00:00.25+09:00"), or a bare
 * date (its midnight UTC). 0 or CH_EPARSE. */
int ch_time_parse_ns(const char *s, int64_t *out) CH_MUST_CHECK;

/* ---- logging ---------------------------------------------------------------------------- */

typedef enum ch_log_level {
    CH_LOG_DEBUG = 0,
    CH_LOG_INFO = 1,
    CH_LOG_WARN = 2,
    CH_LOG_ERROR = 3,
} ch_log_level_t;

/* Writes one logfmt line to stderr: "ts=... level=... module=... " followed by the formatted
 * text, which the caller writes as key=value pairs (msg first). Use ch_log_quote() for values
 * that may hold spaces or quotes. Never log a secret, token or password. Thread-safe: one
 * write(2) per line. */
void ch_log(ch_log_level_t level, const char *module, const char *fmt, ...) CH_PRINTF(3, 4);
void ch_log_set_level(ch_log_level_t level);
ch_log_level_t ch_log_get_level(void);
/* Parses "debug", "info", "warn", "error"; 0 or CH_EINVAL. */
int ch_log_level_parse(const char *s, ch_log_level_t *out) CH_MUST_CHECK;
/* Appends s to b as a logfmt value: bare when safe, else in double quotes with \" and \\. */
void ch_log_quote(ch_buf_t *b, const char *s);

#endif /* CH_CORE_H */
