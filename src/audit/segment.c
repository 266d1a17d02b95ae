/*
 * Segment files: the header, the record frames, names, and the small helpers the rest of the
 * module shares. Everything here works on bytes in memory, so that the open path, the offline
 * verifier and the fuzz target read frames with the same code.
 */
#include "audit/audit_internal.h"

#include <stdarg.h>
#include <stdio.h>
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

/* Reads one frame. The order of the checks matters for crash recovery: a frame that does not
 * fit in what is left, or a run of zeros to the end, is a torn tail (an interrupted append);
 * anything else that is wrong is damage, which recovery must never cut silently. */
ch_audit__frame_status_t ch_audit__frame_read(const uint8_t *buf, size_t len, size_t off,
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
    uint8_t h[CH_AUDIT_HASH_SIZE];
    ch_audit_leaf_hash(f->record, n, h);
    if (memcmp(h, f->hash, CH_AUDIT_HASH_SIZE) != 0) {
        return CH_AUDIT__FRAME_BAD_HASH;
    }
    return CH_AUDIT__FRAME_OK;
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
