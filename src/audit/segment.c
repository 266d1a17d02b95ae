/*
 * Segment files: the header, the record frames, names, and the small helpers the rest of the
 * module shares. Everything here works on bytes in memory, so that the open path, the offline
 * verifier and the fuzz target read frames with the same code.
 */
#include "audit/audit_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t ch_audit__be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint32_t ch_audit__be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void ch_audit__put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void ch_audit__put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void ch_audit__set_err(char **err, const char *fmt, ...)
{
    if (err == NULL) {
        return;
    }
    ch_buf_t b = {0};
    va_list ap;
    va_start(ap, fmt);
    ch_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    /* Each failure path sets the message once; *err is never freed here because a caller may
     * pass an uninitialised pointer. */
    *err = ch_buf_steal(&b);
}

int ch_audit__segment_header(const uint8_t *buf, size_t len, uint64_t *first_seq)
{
    if (len < CH_AUDIT__SEG_HEADER) {
        return CH_EAGAIN;
    }
    if (memcmp(buf, CH_AUDIT__SEG_MAGIC, 8) != 0) {
        return CH_EPARSE;
    }
    *first_seq = ch_audit__be64(buf + 8);
    return 0;
}

void ch_audit__segment_header_make(uint8_t out[CH_AUDIT__SEG_HEADER], uint64_t first_seq)
{
    memcpy(out, CH_AUDIT__SEG_MAGIC, 8);
    ch_audit__put_be64(out + 8, first_seq);
}

/* 1 when buf[off, len) holds only zero bytes: what a file system may show for blocks whose
 * size was extended but whose data never reached the disk before a crash. */
static int all_zero(const uint8_t *buf, size_t len, size_t off)
{
    for (size_t i = off; i < len; i++) {
        if (buf[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* Reads one frame's length and bounds without hashing it. The order of the checks matters
 * for crash recovery: a frame that does not fit in what is left, or a run of zeros to the
 * end, is a torn tail (an interrupted append); anything else that is wrong is damage, which
 * recovery must never cut silently. */
ch_audit__frame_status_t ch_audit__frame_peek(const uint8_t *buf, size_t len, size_t off,
                                              ch_audit__frame_t *f)
{
    memset(f, 0, sizeof(*f));
    if (off >= len) {
        return CH_AUDIT__FRAME_END;
    }
    if (len - off < 4) {
        return CH_AUDIT__FRAME_TORN;
    }
    uint32_t n = ch_audit__be32(buf + off);
    f->bad_len = n;
    if (n == 0 || n > CH_AUDIT_RECORD_MAX) {
        /* Zeros are checked only here, on the failure path, to keep a scan linear. */
        return all_zero(buf, len, off) ? CH_AUDIT__FRAME_TORN : CH_AUDIT__FRAME_BAD_LEN;
    }
    if (len - off - 4 < (size_t)n + CH_AUDIT_HASH_SIZE) {
        return CH_AUDIT__FRAME_TORN;
    }
    f->record = buf + off + 4;
    f->len = n;
    f->hash = f->record + n;
    f->next = off + 4 + (size_t)n + CH_AUDIT_HASH_SIZE;
    return CH_AUDIT__FRAME_OK;
}

ch_audit__frame_status_t ch_audit__frame_read(const uint8_t *buf, size_t len, size_t off,
                                              ch_audit__frame_t *f)
{
    ch_audit__frame_status_t s = ch_audit__frame_peek(buf, len, off, f);
    if (s != CH_AUDIT__FRAME_OK) {
        return s;
    }
    uint8_t h[CH_AUDIT_HASH_SIZE];
    ch_audit_leaf_hash(f->record, f->len, h);
    if (memcmp(h, f->hash, CH_AUDIT_HASH_SIZE) != 0) {
        return CH_AUDIT__FRAME_BAD_HASH;
    }
    return CH_AUDIT__FRAME_OK;
}

int ch_audit__segment_tail(const uint8_t *buf, size_t len, size_t off, size_t *cut)
{
    if (off >= len) {
        return 0;
    }
    size_t pad_end = len - len % CH_AUDIT__PAD_ALIGN;
    if (pad_end < off) {
        pad_end = off;
    }
    /* What lies past the padding: nothing, or what a crash leaves at the end of a file. */
    ch_audit__frame_t f;
    int tail_torn =
        pad_end == len || ch_audit__frame_peek(buf, len, pad_end, &f) == CH_AUDIT__FRAME_TORN;
    size_t q = off;
    while (q < pad_end && buf[q] == 0) {
        q++;
    }
    if (q == pad_end) {
        if (pad_end == len) {
            return 0;
        }
        if (tail_torn) {
            *cut = pad_end;
            return 1;
        }
        return -1;
    }
    /* Bytes in the padding: only a frame that an append wrote in place and a crash cut short
     * (its end still zeros) may be cut; a zero length word followed by data is damage. */
    if (ch_audit__frame_peek(buf, len, off, &f) == CH_AUDIT__FRAME_TORN) {
        *cut = off; /* a frame cut short by the end of the file, as of old */
        return 1;
    }
    if (!tail_torn || ch_audit__frame_read(buf, pad_end, off, &f) != CH_AUDIT__FRAME_BAD_HASH) {
        return -1;
    }
    size_t z = pad_end; /* one past the last non-zero byte of [off, pad_end) */
    while (z > off && buf[z - 1] == 0) {
        z--;
    }
    if (z >= f.next) {
        return -1; /* the frame is complete: a bad hash is damage */
    }
    *cut = off;
    return 1;
}

/* Reads the decimal digits that end at rec[end) backwards; 0 and *start, or CH_EPARSE. */
static int digits_before(const uint8_t *rec, size_t end, size_t *start, uint64_t *out)
{
    size_t i = end;
    while (i > 0 && rec[i - 1] >= '0' && rec[i - 1] <= '9' && end - i < 20) {
        i--;
    }
    if (i == end) {
        return CH_EPARSE;
    }
    int64_t v;
    if (ch_parse_int64((const char *)rec + i, end - i, &v) != 0 || v < 0) {
        return CH_EPARSE;
    }
    *start = i;
    *out = (uint64_t)v;
    return 0;
}

int ch_audit__record_tail(const uint8_t *rec, size_t len, uint64_t *seq, int64_t *time_ns)
{
    static const char time_key[] = ",\"time\":";
    static const char seq_key[] = ",\"seq\":";
    size_t tk = sizeof(time_key) - 1, sk = sizeof(seq_key) - 1;
    if (len < 2 || rec[0] != '{' || rec[len - 1] != '}') {
        return CH_EPARSE;
    }
    size_t start;
    uint64_t t, s;
    if (digits_before(rec, len - 1, &start, &t) != 0 || start < tk ||
        memcmp(rec + start - tk, time_key, tk) != 0) {
        return CH_EPARSE;
    }
    size_t end = start - tk;
    if (digits_before(rec, end, &start, &s) != 0 || start < sk ||
        memcmp(rec + start - sk, seq_key, sk) != 0) {
        return CH_EPARSE;
    }
    *seq = s;
    *time_ns = (int64_t)t;
    return 0;
}

void ch_audit__segment_name(uint64_t first_seq, char out[32])
{
    snprintf(out, 32, "%020llu.seg", (unsigned long long)first_seq);
}

int ch_audit__segment_name_parse(const char *name, uint64_t *first_seq)
{
    if (strlen(name) != 24 || strcmp(name + 20, ".seg") != 0) {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return 0;
        }
        v = v * 10 + d;
    }
    *first_seq = v;
    return 1;
}

/* ---- the canonical record check (ch_audit__record_check) ------------------------------- */

/* jansson's parser refuses nesting deeper than this; so does the check. */
#define CHECK_MAX_DEPTH 2048

typedef struct jscan {
    const uint8_t *p, *end;
    int depth;
} jscan_t;

static void skip_ws(jscan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

static int hex4(const uint8_t *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = ch_hex_digit(p[i]);
        if (d < 0) {
            return CH_EPARSE;
        }
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* The length of the well-formed UTF-8 sequence that starts with a non-ASCII byte at p, or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF (what jansson refuses too). */
static size_t utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return n;
}

/* Scans the string whose opening quote is at s->p. Sets [*start, *stop) to the raw bytes
 * between the quotes and *escaped when they hold an escape. */
static int scan_string(jscan_t *s, const uint8_t **start, const uint8_t **stop, int *escaped)
{
    const uint8_t *p = s->p + 1, *end = s->end;
    *start = p;
    *escaped = 0;
    for (;;) {
        /* The common case, plain ASCII, in a tight loop. */
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
            p++;
        }
        if (p >= end) {
            return CH_EPARSE;
        }
        uint8_t c = *p;
        if (c == '"') {
            break;
        }
        if (c < 0x20) {
            return CH_EPARSE;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(p, end);
            if (n == 0) {
                return CH_EPARSE;
            }
            p += n;
            continue;
        }
        *escaped = 1;
        if (end - p < 2) {
            return CH_EPARSE;
        }
        c = p[1];
        if (c != 'u') {
            if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' &&
                c != 't') {
                return CH_EPARSE;
            }
            p += 2;
            continue;
        }
        uint32_t u, lo;
        if (end - p < 6 || hex4(p + 2, &u) != 0 || u == 0 || (u >= 0xDC00 && u <= 0xDFFF)) {
            return CH_EPARSE;
        }
        p += 6;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) != 0 ||
                lo < 0xDC00 || lo > 0xDFFF) {
                return CH_EPARSE;
            }
            p += 6;
        }
    }
    *stop = p;
    s->p = p + 1;
    return 0;
}

/* A cursor over the decoded UTF-8 bytes of a string that scan_string accepted. */
typedef struct decoded {
    const uint8_t *p, *end;
    uint8_t buf[4];
    int n, i;
} decoded_t;

/* The next decoded byte, or -1 at the end. */
static int decoded_next(decoded_t *c)
{
    if (c->i < c->n) {
        return c->buf[c->i++];
    }
    if (c->p >= c->end) {
        return -1;
    }
    uint8_t b = *c->p;
    if (b != '\\') {
        c->p++;
        return b;
    }
    uint8_t e = c->p[1];
    if (e != 'u') {
        c->p += 2;
        switch (e) {
        case 'b':
            return '\b';
        case 'f':
            return '\f';
        case 'n':
            return '\n';
        case 'r':
            return '\r';
        case 't':
            return '\t';
        default:
            return e;
        }
    }
    uint32_t u = 0, lo = 0;
    (void)hex4(c->p + 2, &u);
    c->p += 6;
    if (u >= 0xD800 && u <= 0xDBFF) {
        (void)hex4(c->p + 2, &lo);
        c->p += 6;
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (u < 0x80) {
        c->buf[0] = (uint8_t)u;
        c->n = 1;
    } else if (u < 0x800) {
        c->buf[0] = (uint8_t)(0xC0 | (u >> 6));
        c->buf[1] = (uint8_t)(0x80 | (u & 0x3F));
        c->n = 2;
    } else if (u < 0x10000) {
        c->buf[0] = (uint8_t)(0xE0 | (u >> 12));
        c->buf[1] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
        c->buf[2] = (uint8_t)(0x80 | (u & 0x3F));
        c->n = 3;
    } else {
        c->buf[0] = (uint8_t)(0xF0 | (u >> 18));
        c->buf[1] = (uint8_t)(0x80 | ((u >> 12) & 0x3F));
        c->buf[2] = (uint8_t)(0x80 | ((u >> 6) & 0x3F));
        c->buf[3] = (uint8_t)(0x80 | (u & 0x3F));
        c->n = 4;
    }
    c->i = 1;
    return c->buf[0];
}

/* A key: its raw bytes and whether they hold an escape. */
typedef struct key_span {
    const uint8_t *start, *stop;
    int escaped;
} key_span_t;

/* strcmp of the decoded keys (jansson sorts with strcmp; keys never hold NUL). */
static int key_cmp(const key_span_t *a, const key_span_t *b)
{
    if (!a->escaped && !b->escaped) {
        size_t la = (size_t)(a->stop - a->start), lb = (size_t)(b->stop - b->start);
        int c = memcmp(a->start, b->start, la < lb ? la : lb);
        if (c != 0) {
            return c;
        }
        return la < lb ? -1 : la > lb;
    }
    decoded_t ca = {.p = a->start, .end = a->stop}, cb = {.p = b->start, .end = b->stop};
    for (;;) {
        int x = decoded_next(&ca), y = decoded_next(&cb);
        if (x != y) {
            return x < y ? -1 : 1;
        }
        if (x < 0) {
            return 0;
        }
    }
}

static int key_is(const key_span_t *k, const char *text)
{
    size_t n = strlen(text);
    return !k->escaped && (size_t)(k->stop - k->start) == n && memcmp(k->start, text, n) == 0;
}

static int is_digit(const jscan_t *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* A number as RFC 8259 spells it. Integers must fit in int64 and reals must be finite, since
 * jansson refuses anything else (and so the writer never produced it). */
static int scan_number(jscan_t *s)
{
    const uint8_t *start = s->p;
    int neg = 0, real = 0;
    if (s->p < s->end && *s->p == '-') {
        s->p++;
        neg = 1;
    }
    if (!is_digit(s)) {
        return CH_EPARSE;
    }
    if (*s->p == '0') {
        s->p++;
    } else {
        while (is_digit(s)) {
            s->p++;
        }
    }
    if (s->p < s->end && *s->p == '.') {
        real = 1;
        s->p++;
        if (!is_digit(s)) {
            return CH_EPARSE;
        }
        while (is_digit(s)) {
            s->p++;
        }
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        real = 1;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
            s->p++;
        }
        if (!is_digit(s)) {
            return CH_EPARSE;
        }
        while (is_digit(s)) {
            s->p++;
        }
    }
    size_t n = (size_t)(s->p - start);
    if (!real) {
        size_t digits = n - (size_t)neg;
        const char *limit = neg ? "9223372036854775808" : "9223372036854775807";
        if (digits > 19 || (digits == 19 && memcmp(start + neg, limit, 19) > 0)) {
            return CH_EPARSE;
        }
        return 0;
    }
    /* The writer prints reals with %.17g: far shorter than this. */
    char buf[64];
    if (n >= sizeof(buf)) {
        return CH_EPARSE;
    }
    memcpy(buf, start, n);
    buf[n] = '\0';
    double d = strtod(buf, NULL);
    return isinf(d) ? CH_EPARSE : 0;
}

static int scan_value(jscan_t *s);

/* An object or an array at s->p. For the record itself (top), the keys must need no escape
 * and the last two must be "seq" and "time". */
static int scan_container(jscan_t *s, int top)
{
    uint8_t close = *s->p == '{' ? '}' : ']';
    int object = close == '}';
    if (++s->depth > CHECK_MAX_DEPTH) {
        return CH_EPARSE;
    }
    s->p++;
    skip_ws(s);
    key_span_t prev = {0}, last = {0};
    int count = 0;
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return top ? CH_EPARSE : 0;
    }
    for (;;) {
        if (object) {
            key_span_t k;
            if (s->p >= s->end || *s->p != '"' ||
                scan_string(s, &k.start, &k.stop, &k.escaped) != 0 || (top && k.escaped)) {
                return CH_EPARSE;
            }
            /* Sorted keys, strictly: what the canonical writer produces, and no duplicate. */
            if (count > 0 && key_cmp(&last, &k) >= 0) {
                return CH_EPARSE;
            }
            prev = last;
            last = k;
            count++;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':') {
                return CH_EPARSE;
            }
            s->p++;
            skip_ws(s);
        }
        if (scan_value(s) != 0) {
            return CH_EPARSE;
        }
        skip_ws(s);
        if (s->p >= s->end) {
            return CH_EPARSE;
        }
        if (*s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (*s->p != close) {
            return CH_EPARSE;
        }
        s->p++;
        break;
    }
    s->depth--;
    if (top && (count < 2 || !key_is(&prev, "seq") || !key_is(&last, "time"))) {
        return CH_EPARSE;
    }
    return 0;
}

static int scan_value(jscan_t *s)
{
    if (s->p >= s->end) {
        return CH_EPARSE;
    }
    size_t left = (size_t)(s->end - s->p);
    switch (*s->p) {
    case '{':
    case '[':
        return scan_container(s, 0);
    case '"': {
        const uint8_t *a, *b;
        int esc;
        return scan_string(s, &a, &b, &esc);
    }
    case 't':
        if (left >= 4 && memcmp(s->p, "true", 4) == 0) {
            s->p += 4;
            return 0;
        }
        return CH_EPARSE;
    case 'f':
        if (left >= 5 && memcmp(s->p, "false", 5) == 0) {
            s->p += 5;
            return 0;
        }
        return CH_EPARSE;
    case 'n':
        if (left >= 4 && memcmp(s->p, "null", 4) == 0) {
            s->p += 4;
            return 0;
        }
        return CH_EPARSE;
    default:
        return scan_number(s);
    }
}

/* The tail gives seq and time cheaply; the scan then proves that the whole record is the
 * JSON object the tail claims to close, so that no byte of it escapes the check. */
int ch_audit__record_check(const uint8_t *rec, size_t len, uint64_t *seq)
{
    uint64_t s_seq;
    int64_t t;
    if (ch_audit__record_tail(rec, len, &s_seq, &t) != 0) {
        return CH_EPARSE;
    }
    jscan_t s = {.p = rec, .end = rec + len};
    if (scan_container(&s, 1) != 0 || s.p != s.end) {
        return CH_EPARSE;
    }
    *seq = s_seq;
    return 0;
}
