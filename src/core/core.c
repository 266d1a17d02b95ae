/*
 * core: allocation, byte buffers, strings, time and logging. See core.h.
 */
#include "core.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *ch_strerror(int rc)
{
    switch (rc) {
    case CH_OK:
        return "ok";
    case CH_EPARSE:
        return "malformed input";
    case CH_ENOTFOUND:
        return "not found";
    case CH_EEXIST:
        return "already exists";
    case CH_ECONFLICT:
        return "conflicts with other data";
    case CH_ETOOBIG:
        return "over a limit";
    case CH_EUNSUPP:
        return "not supported";
    case CH_EDB:
        return "database error";
    case CH_EEXPIRED:
        return "expired";
    default:
        if (rc < 0 && rc > -4096) {
            return strerror(-rc);
        }
        return "unknown error";
    }
}

/* ---- faults ---------------------------------------------------------------------------- */

int ch_fault_vset(ch_fault_t *f, int rc_out, ch_fault_kind_t kind, const char *code,
                  const char *field, const char *fmt, va_list ap)
{
    if (f == NULL) {
        return rc_out;
    }
    f->kind = kind;
    f->code = code;
    f->rule = NULL;
    f->rc = 0;
    snprintf(f->field, sizeof(f->field), "%s", field != NULL ? field : "");
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    return rc_out;
}

int ch_fault_set(ch_fault_t *f, int rc_out, ch_fault_kind_t kind, const char *code,
                 const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_fault_vset(f, rc_out, kind, code, field, fmt, ap);
    va_end(ap);
    return rc;
}

const char *ch_fault_code(const ch_fault_t *f)
{
    static const char *const codes[] = {
        [CH_FAULT_NONE] = "internal",           [CH_FAULT_INVALID] = "invalid",
        [CH_FAULT_FORBIDDEN] = "forbidden",     [CH_FAULT_DENIED] = "denied",
        [CH_FAULT_NOT_FOUND] = "not_found",     [CH_FAULT_CONFLICT] = "conflict",
        [CH_FAULT_TOO_COMPLEX] = "too_complex", [CH_FAULT_UNAVAILABLE] = "unavailable",
        [CH_FAULT_AUDIT] = "audit_unavailable", [CH_FAULT_INTERNAL] = "internal",
    };
    if (f->code != NULL) {
        return f->code;
    }
    if ((unsigned)f->kind < CH_ARRAY_SIZE(codes) && codes[f->kind] != NULL) {
        return codes[f->kind];
    }
    return "internal";
}

/* ---- allocation ------------------------------------------------------------------------- */

static void ch__oom(size_t n)
{
    char msg[96];
    int len =
        snprintf(msg, sizeof(msg), "level=error module=core msg=\"out of memory\" bytes=%zu\n", n);
    if (len > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)len);
        (void)w;
    }
    abort();
}

void *ch_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        ch__oom(n);
    }
    return p;
}

void *ch_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL) {
        ch__oom(count * size);
    }
    return p;
}

void *ch_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        ch__oom(n);
    }
    return q;
}

char *ch_strdup(const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    return ch_strndup(s, strlen(s));
}

char *ch_strndup(const char *s, size_t n)
{
    if (s == NULL) {
        return NULL;
    }
    size_t len = strnlen(s, n);
    char *d = ch_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void ch_free(void *p)
{
    free(p);
}

void ch_free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ch_free(v[i]);
    }
    ch_free(v);
}

/* Fault injection for ch_try_*: a countdown, off at 0. Tests are single-threaded. */
static long ch__alloc_countdown;

void ch_alloc_fail_after(long n)
{
    ch__alloc_countdown = n;
}

static int ch__alloc_should_fail(void)
{
    if (ch__alloc_countdown > 0 && --ch__alloc_countdown == 0) {
        return 1;
    }
    return 0;
}

void *ch_try_malloc(size_t n)
{
    if (ch__alloc_should_fail()) {
        return NULL;
    }
    return malloc(n ? n : 1);
}

#define CH__TABLE_MAPPED ((size_t)2 << 20)

void *ch_table_alloc(size_t n)
{
    if (n < CH__TABLE_MAPPED) {
        void *p = ch_try_malloc(n);
        if (p != NULL) {
            memset(p, 0, n);
        }
        return p;
    }
    if (ch__alloc_should_fail()) {
        return NULL;
    }
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n, MADV_HUGEPAGE); /* advice: without it, ordinary pages */
#endif
    return p;
}

void ch_table_free(void *p, size_t n)
{
    if (p == NULL) {
        return;
    }
    if (n < CH__TABLE_MAPPED) {
        free(p);
    } else {
        (void)munmap(p, n);
    }
}

void *ch_try_realloc(void *p, size_t n)
{
    if (ch__alloc_should_fail()) {
        return NULL;
    }
    return realloc(p, n ? n : 1);
}

/* ---- byte buffer ------------------------------------------------------------------------ */

void ch_buf_init(ch_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ch_buf_fini(ch_buf_t *b)
{
    ch_free(b->data);
    ch_buf_init(b);
}

void ch_buf_reset(ch_buf_t *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

void ch_buf_reserve(ch_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    b->data = ch_realloc(b->data, cap);
    b->cap = cap;
}

int ch_file_open_stat(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, st) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int ch_buf_read_file(ch_buf_t *b, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = 0;
    for (;;) {
        /* Each read takes all the room there is, which doubles as the buffer grows: a large
         * file goes in a few large reads. */
        ch_buf_reserve(b, 65536);
        ssize_t n = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0) {
            break;
        }
        b->len += (size_t)n;
    }
    b->data[b->len] = '\0';
    close(fd);
    return rc;
}

void ch_buf_append(ch_buf_t *b, const void *p, size_t n)
{
    ch_buf_reserve(b, n);
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
}

void ch_buf_append_str(ch_buf_t *b, const char *s)
{
    ch_buf_append(b, s, strlen(s));
}

void ch_buf_append_char(ch_buf_t *b, char c)
{
    ch_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void ch_buf_vappendf(ch_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return;
    }
    if ((size_t)n < sizeof(small)) {
        ch_buf_append(b, small, (size_t)n);
        return;
    }
    ch_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void ch_buf_appendf(ch_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ch_buf_vappendf(b, fmt, ap);
    va_end(ap);
}

char *ch_buf_steal(ch_buf_t *b)
{
    if (b->data == NULL) {
        return ch_strdup("");
    }
    char *p = b->data;
    ch_buf_init(b);
    return p;
}

/* ---- strings ---------------------------------------------------------------------------- */

int ch_slice_eq(ch_slice_t a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && memcmp(a.ptr, s, n) == 0;
}

int ch_slice_eq_nocase(ch_slice_t a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && strncasecmp(a.ptr, s, n) == 0;
}

int ch_parse_uint64(const char *p, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20) {
        return CH_EPARSE;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return CH_EPARSE;
        }
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return CH_EPARSE;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int ch_parse_int64(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 20) {
        return CH_EPARSE;
    }
    size_t i = 0;
    int neg = 0;
    if (p[0] == '-' || p[0] == '+') {
        neg = p[0] == '-';
        i = 1;
    }
    uint64_t v;
    if (ch_parse_uint64(p + i, n - i, &v) != 0) {
        return CH_EPARSE;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) {
            return CH_EPARSE;
        }
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) {
            return CH_EPARSE;
        }
        *out = (int64_t)v;
    }
    return 0;
}

int ch_parse_double(const char *p, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp)) {
        return CH_EPARSE;
    }
    /* Only plain decimal notation: strtod would also take "inf", "nan", hex and spaces. */
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9') {
            digits++;
        } else if (!(c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')) {
            return CH_EPARSE;
        }
    }
    if (digits == 0) {
        return CH_EPARSE;
    }
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(tmp, &end);
    if (end != tmp + n || errno == ERANGE || !isfinite(v)) {
        return CH_EPARSE;
    }
    *out = v;
    return 0;
}

/* ---- hex ------------------------------------------------------------------------------- */

/* The digit of a nibble d (0..15) without a table or a branch on d: (9 - d) wraps to a huge
 * unsigned number exactly when d > 9, so shifting it right leaves low bits set that pick the
 * gap from '9' + 1 to the first letter (39 up to 'a', 7 up to 'A'). */
static char hex_nibble(unsigned d, unsigned letter_gap)
{
    unsigned over9 = (9u - d) >> 8;
    return (char)('0' + d + (over9 & letter_gap));
}

size_t ch_hex_encode(char *out, size_t out_size, const void *bin, size_t n, unsigned flags)
{
    const uint8_t *p = bin;
    unsigned gap = (flags & CH_HEX_UPPER) ? 'A' - '0' - 10 : 'a' - '0' - 10;
    if (out_size == 0) {
        return 2 * n;
    }
    size_t fit = (out_size - 1) / 2 < n ? (out_size - 1) / 2 : n;
    for (size_t i = 0; i < fit; i++) {
        out[2 * i] = hex_nibble(p[i] >> 4, gap);
        out[2 * i + 1] = hex_nibble(p[i] & 15u, gap);
    }
    out[2 * fit] = '\0';
    return 2 * n;
}

int ch_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int ch_hex_decode(const char *hex, size_t len, void *out, size_t out_size, unsigned flags)
{
    uint8_t *o = out;
    if (len % 2 != 0) {
        return CH_EPARSE;
    }
    if (out_size < len / 2) {
        return CH_ETOOBIG;
    }
    for (size_t i = 0; i < len; i += 2) {
        unsigned char a = (unsigned char)hex[i], b = (unsigned char)hex[i + 1];
        int hi = ch_hex_digit(a), lo = ch_hex_digit(b);
        if (hi < 0 || lo < 0) {
            return CH_EPARSE;
        }
        if ((flags & CH_HEX_LOWER_ONLY) && ((a >= 'A' && a <= 'F') || (b >= 'A' && b <= 'F'))) {
            return CH_EPARSE;
        }
        o[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ---- time ------------------------------------------------------------------------------- */

int64_t ch_time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t ch_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ch_time_format_rfc3339(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", milli);
}

/* Reads exactly `digits` decimal digits at *p into *out and advances *p. 0, or -1. */
static int ch__time_digits(const char **p, int digits, int *out)
{
    int v = 0;
    for (int k = 0; k < digits; k++) {
        char c = (*p)[k];
        if (c < '0' || c > '9') {
            return CH_EPARSE;
        }
        v = v * 10 + (c - '0');
    }
    *p += digits;
    *out = v;
    return 0;
}

/* Reads an optional fraction of a second at *p (a '.' and one or more digits; digits past the
 * ninth count for nothing) into *ns and advances *p past it. 0, or CH_EPARSE for a '.' without
 * a digit. */
static int ch__time_fraction(const char **p, int64_t *ns)
{
    if (**p != '.') {
        return 0;
    }
    (*p)++;
    int64_t scale = 100000000;
    if (**p < '0' || **p > '9') {
        return CH_EPARSE;
    }
    while (**p >= '0' && **p <= '9') {
        *ns += (**p - '0') * scale;
        scale /= 10;
        (*p)++;
    }
    return 0;
}

/*
 * Parses a time given on the command line into nanoseconds since the epoch: seconds since the
 * epoch ("1764061200", optionally with a fraction "1764061200.5"), or RFC 3339
 * ("2026-11-25T09:00:00Z", "2026-11-25T18:00:00.25+09:00", 't' and ' ' accepted for 'T'), or
 * a bare date ("2026-11-25", meaning its midnight UTC). 0, or CH_EPARSE when s is none of these.
 */
int ch_time_parse_ns(const char *s, int64_t *out)
{
    const char *p = s;
    int64_t frac_ns = 0;
    if (*p >= '0' && *p <= '9' && strchr(s, '-') == NULL) {
        char *end = NULL;
        errno = 0;
        long long secs = strtoll(s, &end, 10);
        if (errno != 0 || end == s || secs < 0 || secs > INT64_MAX / 1000000000LL) {
            return CH_EPARSE;
        }
        p = end;
        if (ch__time_fraction(&p, &frac_ns) != 0) {
            return CH_EPARSE;
        }
        if (*p != '\0') {
            return CH_EPARSE;
        }
        *out = (int64_t)secs * 1000000000LL + frac_ns;
        return 0;
    }
    int year, mon, day, hour = 0, min = 0, sec = 0;
    if (ch__time_digits(&p, 4, &year) != 0 || *p++ != '-' || ch__time_digits(&p, 2, &mon) != 0 ||
        *p++ != '-' || ch__time_digits(&p, 2, &day) != 0) {
        return CH_EPARSE;
    }
    long offset_s = 0;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ') {
            return CH_EPARSE;
        }
        p++;
        if (ch__time_digits(&p, 2, &hour) != 0 || *p++ != ':' ||
            ch__time_digits(&p, 2, &min) != 0 || *p++ != ':' || ch__time_digits(&p, 2, &sec) != 0) {
            return CH_EPARSE;
        }
        if (ch__time_fraction(&p, &frac_ns) != 0) {
            return CH_EPARSE;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om;
            p++;
            if (ch__time_digits(&p, 2, &oh) != 0 || *p++ != ':' ||
                ch__time_digits(&p, 2, &om) != 0 || oh > 23 || om > 59) {
                return CH_EPARSE;
            }
            offset_s = sign * (oh * 3600L + om * 60L);
        } else {
            return CH_EPARSE;
        }
        if (*p != '\0') {
            return CH_EPARSE;
        }
    }
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60 ||
        year < 1970) {
        return CH_EPARSE;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    /* Nanoseconds since the epoch fit int64 until 2262: later (and earlier than 1970) is not
     * a time this hub can hold. */
    int64_t secs = (int64_t)timegm(&tm) - offset_s;
    if (secs < 0 || secs > INT64_MAX / 1000000000LL - 1) {
        return CH_EPARSE;
    }
    *out = secs * 1000000000LL + frac_ns;
    return 0;
}

/* ---- logging ---------------------------------------------------------------------------- */

/* Atomic: SIGHUP sets it on the loop thread while pool threads (imports) log. */
static _Atomic int ch__log_level = CH_LOG_INFO;

void ch_log_set_level(ch_log_level_t level)
{
    ch__log_level = level;
}

ch_log_level_t ch_log_get_level(void)
{
    return (ch_log_level_t)ch__log_level;
}

int ch_log_level_parse(const char *s, ch_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(names); i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (ch_log_level_t)i;
            return 0;
        }
    }
    return CH_EINVAL;
}

void ch_log_quote(ch_buf_t *b, const char *s)
{
    int bare = *s != '\0';
    for (const char *p = s; *p; p++) {
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20) {
            bare = 0;
            break;
        }
    }
    if (bare) {
        ch_buf_append_str(b, s);
        return;
    }
    ch_buf_append_char(b, '"');
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            ch_buf_append_char(b, '\\');
            ch_buf_append_char(b, (char)c);
        } else if (c == '\n') {
            ch_buf_append_str(b, "\\n");
        } else if (c < 0x20) {
            ch_buf_appendf(b, "\\x%02x", c);
        } else {
            ch_buf_append_char(b, (char)c);
        }
    }
    ch_buf_append_char(b, '"');
}

void ch_log(ch_log_level_t level, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)level < ch__log_level) {
        return;
    }
    char ts[32];
    ch_time_format_rfc3339(ch_time_now_ms(), ts);
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_appendf(&b, "ts=%s level=%s module=%s ", ts, names[level], module);
    va_list ap;
    va_start(ap, fmt);
    ch_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    ch_buf_append_char(&b, '\n');
    /* One write per line, so lines from threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w;
    ch_buf_fini(&b);
}

int ch_write_all(int fd, const void *p, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *)p + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}
