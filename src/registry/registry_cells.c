/*
 * registry cells: what bytes a file is in, and what the cells of a row mean. Encoding
 * detection and the chunked decoder, 촬영방면정보, 설치연월, coordinates and 카메라화소수.
 * Every function here is pure (no store, no globals) and safe on any input: the fuzzer feeds
 * them arbitrary bytes.
 */
#include "registry/registry_private.h"

#include <assert.h>
#include <errno.h>
#include <iconv.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- encoding detection ----------------------------------------------------------------- */

const char *ch_import_encoding_name(ch_import_encoding_t enc)
{
    switch (enc) {
    case CH_IMPORT_ENC_UTF8:
        return "UTF-8";
    case CH_IMPORT_ENC_UTF8_BOM:
        return "UTF-8-BOM";
    case CH_IMPORT_ENC_CP949:
        return "CP949";
    case CH_IMPORT_ENC_UTF16LE:
        return "UTF-16LE";
    case CH_IMPORT_ENC_UTF16BE:
        return "UTF-16BE";
    }
    return "unknown";
}

/*
 * The length of the well-formed UTF-8 sequence at s (1..4), 0 when the bytes at s are not
 * one, or -1 when a sequence that is well-formed so far is cut by the end of the buffer.
 * Overlong forms, surrogates and code points past U+10FFFF are not well-formed (RFC 3629).
 */
static int ch_registry__utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    int len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) {
            return -1;
        }
        unsigned char t = s[i];
        if (t < (i == 1 ? lo : 0x80) || t > (i == 1 ? hi : 0xbf)) {
            return 0;
        }
    }
    return len;
}

/* Non-ASCII characters (or bad bytes) that settle the encoding vote: about 60 KB of Korean
 * text. Counting them rather than bytes keeps a long ASCII prefix from deciding alone. */
#define CH_REGISTRY__VOTE_SAMPLE 20000

/* Counts well-formed multi-byte UTF-8 sequences and bytes that begin none, until limit of
 * them are seen (0: no limit). */
static void ch_registry__utf8_stats(const unsigned char *s, size_t n, size_t limit, size_t *multi,
                                    size_t *invalid)
{
    size_t i = 0;
    *multi = 0;
    *invalid = 0;
    while (i < n && (limit == 0 || *multi + *invalid < limit)) {
        /* ASCII runs dominate real files: skip them eight bytes at a time. */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL) {
                break;
            }
            i += 8;
        }
        if (i >= n) {
            break;
        }
        int k = ch_registry__utf8_seq(s + i, n - i);
        if (k == 1) {
            i++;
        } else if (k > 1) {
            (*multi)++;
            i += (size_t)k;
        } else {
            (*invalid)++;
            i++;
        }
    }
}

/* Counts CP949 double-byte characters and bytes that fit no CP949 character. */
static void ch_registry__cp949_stats(const unsigned char *s, size_t n, size_t limit, size_t *pairs,
                                     size_t *invalid)
{
    *pairs = 0;
    *invalid = 0;
    size_t i = 0;
    while (i < n && *pairs + *invalid < limit) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x81 && c <= 0xfe && i + 1 < n) {
            unsigned char t = s[i + 1];
            if ((t >= 0x41 && t <= 0x5a) || (t >= 0x61 && t <= 0x7a) || (t >= 0x81 && t <= 0xfe)) {
                (*pairs)++;
                i += 2;
                continue;
            }
        }
        (*invalid)++;
        i++;
    }
}

static void ch_registry__set_err(char **err, const char *msg)
{
    if (err != NULL) {
        *err = ch_strdup(msg);
    }
}

/*
 * The order matters: signatures of containers first (a ZIP or OLE file may pass for text in
 * its first bytes), then byte-order marks, then a binary check, then a vote between UTF-8 and
 * CP949 by counting well-formed sequences, tolerating a few stray bytes (published files have
 * them) but not a file that is mostly one encoding read as the other.
 */
int ch_registry_detect_encoding(const char *data, size_t len, ch_import_encoding_t *out, char **err)
{
    const unsigned char *s = (const unsigned char *)data;
    if (len == 0) {
        ch_registry__set_err(err, "the file is empty");
        return CH_EUNSUPP;
    }
    if (len >= 4 && memcmp(s, "PK\x03\x04", 4) == 0) {
        ch_registry__set_err(err, "this is a ZIP file (an Excel .xlsx workbook?), not CSV text: "
                                  "open it in a spreadsheet and save it as CSV");
        return CH_EUNSUPP;
    }
    if (len >= 8 && memcmp(s, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8) == 0) {
        ch_registry__set_err(err, "this is an OLE compound file (an old Excel .xls workbook?), "
                                  "not CSV text: open it in a spreadsheet and save it as CSV");
        return CH_EUNSUPP;
    }
    if (len >= 3 && s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf) {
        *out = CH_IMPORT_ENC_UTF8_BOM;
        return 0;
    }
    if (len >= 2 && s[0] == 0xff && s[1] == 0xfe) {
        *out = CH_IMPORT_ENC_UTF16LE;
        return 0;
    }
    if (len >= 2 && s[0] == 0xfe && s[1] == 0xff) {
        *out = CH_IMPORT_ENC_UTF16BE;
        return 0;
    }
    size_t head = len < 65536 ? len : 65536;
    size_t controls = 0;
    for (size_t i = 0; i < head; i++) {
        unsigned char c = s[i];
        if (c == 0) {
            ch_registry__set_err(err, "binary data (NUL bytes), not CSV text");
            return CH_EUNSUPP;
        }
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            controls++;
        }
    }
    if (controls * 100 > head) {
        ch_registry__set_err(err, "binary data (control bytes), not CSV text");
        return CH_EUNSUPP;
    }
    size_t multi, invalid8;
    ch_registry__utf8_stats(s, len, CH_REGISTRY__VOTE_SAMPLE, &multi, &invalid8);
    if (invalid8 == 0 || invalid8 * 100 < multi) {
        *out = CH_IMPORT_ENC_UTF8;
        return 0;
    }
    size_t pairs, invalid949;
    ch_registry__cp949_stats(s, len, CH_REGISTRY__VOTE_SAMPLE, &pairs, &invalid949);
    if (invalid949 * 100 <= pairs + 1 || invalid949 <= 2) {
        *out = CH_IMPORT_ENC_CP949;
        return 0;
    }
    ch_registry__set_err(err, "the text is neither UTF-8 nor CP949 (EUC-KR)");
    return CH_EUNSUPP;
}

/* ---- decoder ---------------------------------------------------------------------------- */

#define CH_REGISTRY__CHUNK (1u << 20)

struct ch_registry__decoder {
    ch_import_encoding_t enc;
    const unsigned char *in;
    size_t len;
    size_t pos;
    int utf8; /* UTF-8 input: clean chunks are handed out in place, without a copy */
    iconv_t cd;
    char *out;
    size_t out_cap;
    long invalid;
};

/*
 * Prepares to decode data (borrowed; must outlive the decoder). UTF-8 is checked chunk by chunk
 * as it is handed out (one pass over the file); clean chunks are not copied.
 */
int ch_registry__decoder_new(ch_import_encoding_t enc, const char *data, size_t len,
                             ch_registry__decoder_t **out)
{
    ch_registry__decoder_t *d = ch_calloc(1, sizeof(*d));
    d->enc = enc;
    d->in = (const unsigned char *)data;
    d->len = len;
    d->cd = (iconv_t)-1;
    if (enc == CH_IMPORT_ENC_UTF8_BOM) {
        d->pos = 3;
    }
    if (enc == CH_IMPORT_ENC_UTF8 || enc == CH_IMPORT_ENC_UTF8_BOM) {
        d->utf8 = 1;
    } else {
        const char *from = enc == CH_IMPORT_ENC_CP949     ? "CP949"
                           : enc == CH_IMPORT_ENC_UTF16LE ? "UTF-16LE"
                                                          : "UTF-16BE";
        d->cd = iconv_open("UTF-8", from);
        if (d->cd == (iconv_t)-1) {
            int rc = -errno;
            ch_free(d);
            return rc ? rc : CH_EUNSUPP;
        }
        if (enc != CH_IMPORT_ENC_CP949) {
            d->pos = 2; /* the BOM */
        }
    }
    {
        /* CP949 grows at most 3/2, UTF-16 at most 3/2; a replaced byte grows to 3. */
        d->out_cap = 3 * CH_REGISTRY__CHUNK + 16;
        d->out = ch_try_malloc(d->out_cap);
        if (d->out == NULL) {
            if (d->cd != (iconv_t)-1) {
                iconv_close(d->cd);
            }
            ch_free(d);
            return CH_ENOMEM;
        }
    }
    *out = d;
    return 0;
}

void ch_registry__decoder_free(ch_registry__decoder_t *d)
{
    if (d == NULL) {
        return;
    }
    if (d->cd != (iconv_t)-1) {
        iconv_close(d->cd);
    }
    ch_free(d->out);
    ch_free(d);
}

uint64_t ch_registry__decoder_consumed(const ch_registry__decoder_t *d)
{
    return d->pos;
}

long ch_registry__decoder_invalid(const ch_registry__decoder_t *d)
{
    return d->invalid;
}

/*
 * Checks in[pos..*end) for well-formed UTF-8, moving *end past a sequence that straddles it.
 * Returns *end when all is well, else the offset of the first bad byte.
 */
static size_t ch_registry__utf8_clean_until(const unsigned char *in, size_t len, size_t pos,
                                            size_t *end)
{
    size_t i = pos;
    while (i < *end) {
        while (i + 8 <= *end) {
            uint64_t w;
            memcpy(&w, in + i, 8);
            if (w & 0x8080808080808080ULL) {
                break;
            }
            i += 8;
        }
        if (i >= *end) {
            break;
        }
        if (in[i] < 0x80) {
            i++;
            continue;
        }
        int k = ch_registry__utf8_seq(in + i, len - i);
        if (k <= 0) {
            return i;
        }
        i += (size_t)k;
    }
    if (i > *end) {
        *end = i;
    }
    return *end;
}

/* Copies UTF-8 with every byte that starts no well-formed sequence replaced by U+FFFD; stops
 * before a sequence cut by the chunk's end unless the input ends there. */
static size_t ch_registry__sanitize_chunk(ch_registry__decoder_t *d)
{
    size_t end = d->pos + CH_REGISTRY__CHUNK < d->len ? d->pos + CH_REGISTRY__CHUNK : d->len;
    size_t w = 0;
    while (d->pos < end) {
        int k = ch_registry__utf8_seq(d->in + d->pos, d->len - d->pos);
        if (k > 0) {
            memcpy(d->out + w, d->in + d->pos, (size_t)k);
            w += (size_t)k;
            d->pos += (size_t)k;
        } else {
            memcpy(d->out + w, "\xEF\xBF\xBD", 3);
            w += 3;
            d->invalid++;
            d->pos++;
        }
    }
    return w;
}

/*
 * One iconv call over up to a chunk of input. An invalid sequence becomes U+FFFD and the
 * conversion goes on one unit later (a lone CP949 lead byte before an ASCII byte must not eat
 * that byte). A sequence cut by the chunk's end is left for the next call.
 */
static size_t ch_registry__iconv_chunk(ch_registry__decoder_t *d)
{
    size_t unit = d->enc == CH_IMPORT_ENC_CP949 ? 1 : 2;
    size_t end = d->pos + CH_REGISTRY__CHUNK < d->len ? d->pos + CH_REGISTRY__CHUNK : d->len;
    char *outp = d->out;
    size_t outleft = d->out_cap - 16;
    while (d->pos < end) {
        char *inp = (char *)(d->in + d->pos);
        size_t inleft = end - d->pos;
        size_t r = iconv(d->cd, &inp, &inleft, &outp, &outleft);
        d->pos = end - inleft;
        if (r != (size_t)-1) {
            break;
        }
        if (errno == E2BIG) {
            break;
        }
        if (errno == EINVAL && end < d->len) {
            if (outp != d->out) {
                break; /* hand out what is done; the cut sequence starts the next chunk */
            }
            size_t wider = d->pos + 8 < d->len ? d->pos + 8 : d->len;
            if (wider > end) {
                end = wider; /* nothing done yet: widen the window over the sequence */
                continue;
            }
        }
        /* EILSEQ, or EINVAL at the very end: replace one unit. */
        if (outleft < 3) {
            break;
        }
        memcpy(outp, "\xEF\xBF\xBD", 3);
        outp += 3;
        outleft -= 3;
        d->invalid++;
        d->pos = d->pos + unit <= d->len ? d->pos + unit : d->len;
    }
    return (size_t)(outp - d->out);
}

int ch_registry__decoder_next(ch_registry__decoder_t *d, const char **chunk, size_t *n)
{
    *n = 0;
    *chunk = NULL;
    if (d->pos >= d->len) {
        return 0;
    }
    if (d->utf8) {
        size_t end = d->len - d->pos < CH_REGISTRY__CHUNK ? d->len : d->pos + CH_REGISTRY__CHUNK;
        size_t bad = ch_registry__utf8_clean_until(d->in, d->len, d->pos, &end);
        if (bad == end) {
            *chunk = (const char *)d->in + d->pos;
            *n = end - d->pos;
            d->pos = end;
            return 0;
        }
    }
    size_t w = d->cd == (iconv_t)-1 ? ch_registry__sanitize_chunk(d) : ch_registry__iconv_chunk(d);
    *chunk = d->out;
    *n = w;
    return 0;
}

/* ---- 촬영방면정보 ------------------------------------------------------------------------- */

/* Copies text without spaces (ASCII and U+3000) into out (cap bytes); returns the length, or
 * cap when it does not fit. */
static size_t ch_registry__squeeze(const char *text, size_t len, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            continue;
        }
        if (c == 0xe3 && i + 2 < len && (unsigned char)text[i + 1] == 0x80 &&
            (unsigned char)text[i + 2] == 0x80) {
            i += 2;
            continue;
        }
        if (w + 1 >= cap) {
            return cap;
        }
        out[w++] = (char)c;
    }
    out[w] = '\0';
    return w;
}

/* When s starts with prefix, advances *s past it and returns 1. */
static int ch_registry__eat(const char **s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(*s, prefix, n) == 0) {
        *s += n;
        return 1;
    }
    return 0;
}

static int ch_registry__in_set(const char *s, const char *const *set, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(s, set[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * A compass word alone, with the suffixes publishers add (측, 쪽, 향, 방향, 방면) and an
 * optional 정 ("due"). Only the whole cell counts: 동 inside "동광동주민센터" is a place name.
 */
static int ch_registry__compass(const char *sq, double *heading)
{
    static const struct {
        const char *word;
        double deg;
    } words[] = {
        {"북동", 45},  {"동북", 45},  {"남동", 135}, {"동남", 135}, {"남서", 225}, {"서남", 225},
        {"북서", 315}, {"서북", 315}, {"북", 0},     {"동", 90},    {"남", 180},   {"서", 270},
    };
    static const char *const suffixes[] = {"",       "측",     "쪽",     "향",     "방향",   "방면",
                                           "쪽방향", "쪽방면", "측방향", "측방면", "향방면", "방"};
    static const struct {
        const char *word;
        double deg;
    } latin[] = {
        {"N", 0},   {"NE", 45},  {"E", 90},  {"SE", 135},
        {"S", 180}, {"SW", 225}, {"W", 270}, {"NW", 315},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(latin); i++) {
        if (strcasecmp(sq, latin[i].word) == 0) {
            *heading = latin[i].deg;
            return 1;
        }
    }
    const char *s = sq;
    ch_registry__eat(&s, "정");
    for (size_t i = 0; i < CH_ARRAY_SIZE(words); i++) {
        const char *t = s;
        if (ch_registry__eat(&t, words[i].word) &&
            ch_registry__in_set(t, suffixes, CH_ARRAY_SIZE(suffixes))) {
            *heading = words[i].deg;
            return 1;
        }
    }
    return 0;
}

/* Reads a decimal number (digits with one optional '.') at *s; advances and returns 1. */
static int ch_registry__number(const char **s, double *v)
{
    const char *p = *s;
    size_t n = 0;
    int dot = 0;
    while ((p[n] >= '0' && p[n] <= '9') || (p[n] == '.' && !dot && n > 0)) {
        dot |= p[n] == '.';
        n++;
    }
    if (n == 0 || n > 12 || p[n - 1] == '.') {
        return 0;
    }
    if (ch_parse_double(p, n, v) != 0) {
        return 0;
    }
    *s = p + n;
    return 1;
}

/* "반경 2~3m", "2-3m", "50m 이내": the far end in metres. */
static int ch_registry__range(const char *sq, double *range)
{
    const char *s = sq;
    if (!ch_registry__eat(&s, "반경") && !ch_registry__eat(&s, "범위")) {
        ch_registry__eat(&s, "거리");
    }
    ch_registry__eat(&s, "약");
    double a, b;
    if (!ch_registry__number(&s, &a)) {
        return 0;
    }
    b = a;
    if (ch_registry__eat(&s, "~") || ch_registry__eat(&s, "-") || ch_registry__eat(&s, "～")) {
        if (!ch_registry__number(&s, &b)) {
            return 0;
        }
    }
    if (!ch_registry__eat(&s, "m") && !ch_registry__eat(&s, "M") && !ch_registry__eat(&s, "미터")) {
        return 0;
    }
    static const char *const tails[] = {"", "이내", "내외", "내", "정도"};
    if (!ch_registry__in_set(s, tails, CH_ARRAY_SIZE(tails))) {
        return 0;
    }
    double r = a > b ? a : b;
    if (!(r > 0 && r <= 5000)) {
        return 0;
    }
    *range = r;
    return 1;
}

/*
 * An angle with what follows it: "360", "360°", "360도전방면", "90도정면", "60도단방향", "130".
 * Returns 1 for a whole-cell match; *fov and *kind are set.
 */
static int ch_registry__angle(const char *sq, double *fov, const char **kind)
{
    static const char *const all_round[] = {"",       "전방면", "전방향", "다방면", "방면",
                                            "전방위", "회전",   "전방",   "방향",   "전체"};
    static const char *const one_way[] = {"정면", "단방향", "방면", "전방",
                                          "방향", "일방향", "전면", "고정"};
    const char *s = sq;
    double v;
    if (!ch_registry__number(&s, &v) || !(v > 0 && v <= 360)) {
        return 0;
    }
    int unit = ch_registry__eat(&s, "도") || ch_registry__eat(&s, "°") ||
               ch_registry__eat(&s, "º") || ch_registry__eat(&s, "˚");
    if (v == 360) {
        if (ch_registry__in_set(s, all_round, CH_ARRAY_SIZE(all_round))) {
            *fov = 360;
            *kind = "ptz";
            return 1;
        }
        return 0;
    }
    if (*s == '\0') {
        *fov = v;
        *kind = "unknown";
        return 1;
    }
    if (unit && ch_registry__in_set(s, one_way, CH_ARRAY_SIZE(one_way))) {
        *fov = v;
        *kind = "fixed";
        return 1;
    }
    return 0;
}

void ch_registry_parse_direction(const char *text, size_t len, ch_direction_t *out)
{
    out->kind = "unknown";
    out->fov_deg = CH_STORE_UNKNOWN_DOUBLE;
    out->heading_deg = CH_STORE_UNKNOWN_DOUBLE;
    out->range_m = CH_STORE_UNKNOWN_DOUBLE;
    out->keep_as_note = 0;
    char sq[256];
    size_t n = ch_registry__squeeze(text, len, sq, sizeof(sq));
    if (n == 0) {
        return;
    }
    if (n < sizeof(sq)) {
        if (strcmp(sq, "고정") == 0 || strcmp(sq, "고정식") == 0 || strcmp(sq, "고정형") == 0) {
            out->kind = "fixed";
            return;
        }
        if (strcmp(sq, "회전") == 0 || strcmp(sq, "회전식") == 0 || strcmp(sq, "회전형") == 0 ||
            strcasecmp(sq, "PTZ") == 0) {
            out->kind = "ptz";
            return;
        }
        if (ch_registry__angle(sq, &out->fov_deg, &out->kind)) {
            return;
        }
        if (ch_registry__compass(sq, &out->heading_deg)) {
            return;
        }
        if (ch_registry__range(sq, &out->range_m)) {
            return;
        }
    } else {
        n = sizeof(sq) - 1;
        sq[n] = '\0';
    }
    /* Free text: a landmark or a mix. Keep it, and take what it clearly says. */
    out->keep_as_note = 1;
    if (strstr(sq, "360") != NULL) {
        out->kind = "ptz";
        out->fov_deg = 360;
    } else if (strstr(sq, "회전") != NULL || strstr(sq, "PTZ") != NULL) {
        out->kind = "ptz";
    } else if (strstr(sq, "고정") != NULL) {
        out->kind = "fixed";
    }
}

/* ---- 설치연월 ----------------------------------------------------------------------------- */

/* Reads up to max digits at s[*i]; returns how many. */
static int ch_registry__read_digits(const char *s, size_t n, size_t *i, int max, int *v)
{
    int k = 0;
    *v = 0;
    while (*i < n && k < max && s[*i] >= '0' && s[*i] <= '9') {
        *v = *v * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    return k;
}

static int ch_registry__is_date_sep(const char *s, size_t n, size_t *i)
{
    if (*i < n && (s[*i] == '-' || s[*i] == '.' || s[*i] == '/' || s[*i] == ' ')) {
        (*i)++;
        return 1;
    }
    if (*i + 3 <= n && (memcmp(s + *i, "년", 3) == 0 || memcmp(s + *i, "월", 3) == 0 ||
                        memcmp(s + *i, "일", 3) == 0)) {
        *i += 3;
        return 1;
    }
    return 0;
}

int ch_registry_normalize_installed(const char *text, size_t len, int ref_ym, char out[8],
                                    const char **why)
{
    out[0] = '\0';
    *why = NULL;
    if (len == 0) {
        return 1;
    }
    size_t i = 0;
    int year, month = -1; /* -1: no month given */
    if (ch_registry__read_digits(text, len, &i, 4, &year) != 4) {
        *why = "unparseable";
        return CH_EPARSE;
    }
    if (i < len && text[i] >= '0' && text[i] <= '9') {
        /* YYYYMM or YYYYMMDD */
        int day;
        if (ch_registry__read_digits(text, len, &i, 2, &month) != 2) {
            *why = "unparseable";
            return CH_EPARSE;
        }
        if (i < len && (ch_registry__read_digits(text, len, &i, 2, &day) != 2 || i != len)) {
            *why = "unparseable";
            return CH_EPARSE;
        }
    } else {
        while (ch_registry__is_date_sep(text, len, &i)) {
        }
        if (i < len) {
            if (ch_registry__read_digits(text, len, &i, 2, &month) == 0) {
                *why = "unparseable";
                return CH_EPARSE;
            }
            /* The rest may be a day and a time: digits and separators only. */
            for (; i < len; i++) {
                char c = text[i];
                if ((c >= '0' && c <= '9') || c == ':' || c == 'T') {
                    continue;
                }
                size_t j = i;
                if (ch_registry__is_date_sep(text, len, &j)) {
                    i = j - 1;
                    continue;
                }
                *why = "unparseable";
                return CH_EPARSE;
            }
        }
    }
    if (year < 1990) {
        *why = "impossible year";
        return CH_EPARSE;
    }
    if (i < len) {
        *why = "unparseable";
        return CH_EPARSE;
    }
    if (month != -1 && (month < 1 || month > 12)) {
        *why = "impossible month";
        return CH_EPARSE;
    }
    if (month == -1 ? year > ref_ym / 100 : year * 100 + month > ref_ym) {
        *why = "in the future";
        return CH_EPARSE;
    }
    if (month == -1) {
        snprintf(out, 8, "%04d", year);
    } else {
        snprintf(out, 8, "%04d-%02d", year, month);
    }
    return 0;
}

/* ---- coordinates ------------------------------------------------------------------------ */

/* Decimals as published: "36.10" has two. Trailing zeros count, because publishers that pad to
 * a fixed width ("126.9900") did measure that far. */
static int ch_registry__decimals(const char *s, size_t n)
{
    const char *dot = memchr(s, '.', n);
    if (dot == NULL) {
        return 0;
    }
    return (int)(n - (size_t)(dot - s) - 1);
}

static int ch_registry__in_korea(double lat, double lon)
{
    return lat >= 33.0 && lat <= 39.5 && lon >= 124.0 && lon <= 132.0;
}

/* Fill values: all nines ("99.999999", "999.999999", "-999"), or beyond the globe. */
static int ch_registry__sentinel(const char *s, size_t n, double v, double limit)
{
    if (fabs(v) > limit) {
        return 1;
    }
    size_t nines = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '9') {
            nines++;
        } else if (s[i] != '.' && s[i] != '-') {
            return 0;
        }
    }
    return nines >= 2;
}

ch_coord_verdict_t ch_registry_check_coords(const char *lat_text, size_t lat_len,
                                            const char *lon_text, size_t lon_len, double *lat,
                                            double *lon)
{
    *lat = 0;
    *lon = 0;
    if (lat_len == 0 || lon_len == 0) {
        return CH_COORD_BLANK;
    }
    double a, b;
    if (ch_parse_double(lat_text, lat_len, &a) != 0 ||
        ch_parse_double(lon_text, lon_len, &b) != 0) {
        return CH_COORD_UNPARSEABLE;
    }
    if (a == 0 && b == 0) {
        return CH_COORD_ZERO;
    }
    if (ch_registry__in_korea(a, b)) {
        int da = ch_registry__decimals(lat_text, lat_len);
        int db = ch_registry__decimals(lon_text, lon_len);
        if (da <= 1 && db <= 1) {
            return CH_COORD_TOO_COARSE;
        }
        *lat = a;
        *lon = b;
        return (da <= 2 && db <= 2) ? CH_COORD_COARSE : CH_COORD_OK;
    }
    if (ch_registry__in_korea(b, a)) {
        *lat = b;
        *lon = a;
        return CH_COORD_SWAPPED;
    }
    if (ch_registry__sentinel(lat_text, lat_len, a, 90) ||
        ch_registry__sentinel(lon_text, lon_len, b, 180)) {
        return CH_COORD_SENTINEL;
    }
    return CH_COORD_OUTSIDE;
}

const char *ch_registry__coord_reason(ch_coord_verdict_t v)
{
    switch (v) {
    case CH_COORD_OK:
        return "ok";
    case CH_COORD_COARSE:
        return "coordinates with two decimals or fewer (about 1 km)";
    case CH_COORD_SWAPPED:
        return "latitude and longitude swapped (fixed)";
    case CH_COORD_BLANK:
        return "blank coordinates";
    case CH_COORD_UNPARSEABLE:
        return "coordinates are not numbers";
    case CH_COORD_ZERO:
        return "coordinates 0,0";
    case CH_COORD_SENTINEL:
        return "placeholder coordinates";
    case CH_COORD_OUTSIDE:
        return "coordinates outside Korea";
    case CH_COORD_TOO_COARSE:
        return "coordinates with one decimal or none (5 km or worse)";
    }
    return "bad coordinates";
}

/* ---- 카메라화소수 ----------------------------------------------------------------------- */

/* When s[0..*n) ends with suffix, drops it and returns 1. */
static int ch_registry__strip_suffix(const char *s, size_t *n, const char *suffix)
{
    size_t k = strlen(suffix);
    if (*n >= k && memcmp(s + *n - k, suffix, k) == 0) {
        *n -= k;
        while (*n > 0 && s[*n - 1] == ' ') {
            (*n)--;
        }
        return 1;
    }
    return 0;
}

int ch_registry_parse_pixels(const char *text, size_t len, int64_t *pixels)
{
    *pixels = 0;
    size_t n = len;
    if (n == 0) {
        return 0;
    }
    ch_registry__strip_suffix(text, &n, "화소");
    int man = ch_registry__strip_suffix(text, &n, "만");
    int mega = !man && (ch_registry__strip_suffix(text, &n, "MP") ||
                        ch_registry__strip_suffix(text, &n, "mp") ||
                        ch_registry__strip_suffix(text, &n, "메가"));
    if (n == 0) {
        return CH_EPARSE;
    }
    double v;
    if (memchr(text, '.', n) != NULL) {
        if (ch_parse_double(text, n, &v) != 0 || v < 0) {
            return CH_EPARSE;
        }
        v *= man ? 1e4 : 1e6;
    } else {
        int64_t k;
        if (ch_registry__parse_count(text, n, &k) != 0) {
            return CH_EPARSE;
        }
        if (k == 0) {
            return 0;
        }
        if (mega || (!man && k < 10)) {
            v = (double)k * 1e6;
        } else if (man || k < 10000) {
            v = (double)k * 1e4;
        } else if (k >= 100000) {
            v = (double)k;
        } else {
            return CH_EPARSE;
        }
    }
    if (v == 0) {
        return 0;
    }
    if (!(v >= 1e5 && v <= 1e8)) {
        return CH_EPARSE;
    }
    *pixels = (int64_t)llround(v);
    return 0;
}
