/*
 * fuzz_metrics_text: the Prometheus text exposition writer (core/metrics.c) fed arbitrary
 * names, help text, label names and values, and numbers. Whatever comes in, what goes out
 * must be valid UTF-8 made of well-formed lines; a family or label whose name the format does
 * not allow must not appear at all; help text and label values must read back (after the
 * format's unescaping) as exactly what was given when that was valid UTF-8; a value must read
 * back as the same double; a histogram must end with le="+Inf" equal to its _count.
 *
 * Input: fields separated by NUL bytes: family name, help, label name, label value, a second
 * label value; the last 8 bytes (when at least 8 remain after the fields) are a double.
 */
#include "core/metrics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NFIELDS 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Independent of metrics.c: decodes one code point; its length, or 0 when invalid. */
static size_t decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    static const unsigned char lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4};
    size_t len = lens[p[0] >> 4];
    if (len == 0 || len > n || (len == 4 && (p[0] & 0x08))) {
        return 0;
    }
    uint32_t v = len == 1 ? p[0] : (uint32_t)(p[0] & (0x7F >> len));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        return 0;
    }
    *cp = v;
    return len;
}

static int valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        uint32_t cp;
        size_t k = decode(p, n, &cp);
        if (k == 0) {
            return 0;
        }
        p += k, n -= k;
    }
    return 1;
}

static int metric_name_ok(const char *s, int label)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100 || (label && n >= 2 && s[0] == '_' && s[1] == '_')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (!label && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

/* Unescapes [p, end) of a label value (quote: '"' ends it and \" is allowed) or of help text
 * into out; returns the end of what was read, or NULL on a bad escape or a raw line feed. */
static const char *unescape(const char *p, const char *end, int quote, char *out, size_t *olen)
{
    size_t n = 0;
    while (p < end && !(quote && *p == '"')) {
        char c = *p++;
        if (c == '\n') {
            return NULL;
        }
        if (c == '\\') {
            if (p == end) {
                return NULL;
            }
            c = *p++;
            if (c == 'n') {
                c = '\n';
            } else if (c != '\\' && !(quote && c == '"')) {
                return NULL;
            }
        }
        out[n++] = c;
    }
    *olen = n;
    return p;
}

typedef struct input {
    const char *f[NFIELDS];
    int has_value;
    double value;
} input_t;

/* 1 when the gauge's name could be taken for the histogram's lines: not written then. */
static int shadows_histogram(const char *name)
{
    return strncmp(name, "fuzz_seconds", 12) == 0;
}

static void collect(ch_metrics_writer_t *w, void *ud)
{
    const input_t *in = ud;
    if (!shadows_histogram(in->f[0]) &&
        ch_metrics_family(w, in->f[0], CH_METRICS_GAUGE, in->f[1]) == 0) {
        ch_metrics_label_t l[2] = {{in->f[2], in->f[3]}, {"second", in->f[4]}};
        ch_metrics_value(w, l, 2, in->has_value ? in->value : 1.0);
    }
    static const double le[] = {0.5, 1, 2};
    uint64_t cum[3] = {1, 1, 3};
    ch_metrics_hist_data_t d = {3, le, cum, 4, in->has_value ? in->value : 0};
    if (ch_metrics_family(w, "fuzz_seconds", CH_METRICS_HISTOGRAM, in->f[1]) == 0) {
        ch_metrics_label_t l = {"second", in->f[4]};
        ch_metrics_histogram(w, &l, 1, &d);
    }
}

/* Checks one sample line of the gauge family: the labels and the value read back. */
static void check_gauge_sample(const char *p, const char *end, const input_t *in)
{
    size_t fl = strlen(in->f[0]);
    if ((size_t)(end - p) < fl || memcmp(p, in->f[0], fl) != 0 || p[fl] != '{') {
        abort();
    }
    p += fl + 1;
    const char *want_names[2] = {in->f[2], "second"};
    const char *want_vals[2] = {in->f[3], in->f[4]};
    char *buf = malloc((size_t)(end - p) + 1);
    for (int i = 0; i < 2; i++) {
        size_t nl = strlen(want_names[i]);
        if (i > 0 && *p++ != ',') {
            abort();
        }
        if (memcmp(p, want_names[i], nl) != 0 || p[nl] != '=' || p[nl + 1] != '"') {
            abort();
        }
        size_t olen;
        p = unescape(p + nl + 2, end, 1, buf, &olen);
        if (p == NULL || p == end || *p != '"') {
            abort();
        }
        p++;
        size_t vl = strlen(want_vals[i]);
        if (valid_utf8(want_vals[i], vl) && (olen != vl || memcmp(buf, want_vals[i], vl) != 0)) {
            abort(); /* valid text must come back exactly */
        }
    }
    free(buf);
    if (*p++ != '}' || *p++ != ' ') {
        abort();
    }
    double want = in->has_value ? in->value : 1.0;
    size_t vn = (size_t)(end - p);
    char num[64];
    if (vn == 0 || vn >= sizeof(num)) {
        abort();
    }
    memcpy(num, p, vn);
    num[vn] = '\0';
    if (isnan(want)) {
        if (strcmp(num, "NaN") != 0) {
            abort();
        }
    } else if (isinf(want)) {
        if (strcmp(num, want > 0 ? "+Inf" : "-Inf") != 0) {
            abort();
        }
    } else {
        char *e;
        double got = strtod(num, &e);
        if (*e != '\0' || got != want || strpbrk(num, "xXiInN") != NULL) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    input_t in;
    memset(&in, 0, sizeof(in));
    size_t pos = 0;
    for (int i = 0; i < NFIELDS; i++) {
        in.f[i] = pos <= size ? copy + pos : "";
        pos += pos <= size ? strlen(copy + pos) + 1 : 0;
    }
    if (pos <= size && size - pos >= 8) {
        memcpy(&in.value, data + size - 8, 8);
        in.has_value = 1;
    }
    ch_metrics_t *m = ch_metrics_new();
    (void)ch_metrics_register(m, collect, &in);
    ch_buf_t out;
    ch_buf_init(&out);
    ch_metrics_render(m, &out);
    const char *text = out.data != NULL ? out.data : "";
    size_t tlen = out.len;
    if (!valid_utf8(text, tlen) || memchr(text, '\0', tlen) != NULL ||
        (tlen > 0 && text[tlen - 1] != '\n')) {
        abort();
    }
    int gauge_expected = metric_name_ok(in.f[0], 0) && !shadows_histogram(in.f[0]) &&
                         metric_name_ok(in.f[2], 1) && strcmp(in.f[2], "second") != 0;
    int gauge_samples = 0, inf_bucket = 0, count_line = 0;
    char *scratch = malloc(tlen + 1);
    for (const char *line = text; line < text + tlen;) {
        const char *eol = memchr(line, '\n', (size_t)(text + tlen - line));
        if (eol == NULL) {
            abort();
        }
        if (strncmp(line, "# HELP ", 7) == 0) {
            const char *sp = memchr(line + 7, ' ', (size_t)(eol - line - 7));
            size_t olen;
            if (sp == NULL || unescape(sp + 1, eol, 0, scratch, &olen) != eol) {
                abort();
            }
            size_t hl = strlen(in.f[1]);
            if (valid_utf8(in.f[1], hl) && (olen != hl || memcmp(scratch, in.f[1], hl) != 0)) {
                abort();
            }
        } else if (strncmp(line, "# TYPE ", 7) != 0) {
            size_t ll = (size_t)(eol - line);
            if (strncmp(line, "fuzz_seconds", 12) == 0) {
                static const char inf[] = "le=\"+Inf\"} 4";
                if (ll > sizeof(inf) - 1 &&
                    memcmp(eol - (sizeof(inf) - 1), inf, sizeof(inf) - 1) == 0) {
                    inf_bucket = 1;
                }
                if (strncmp(line, "fuzz_seconds_count{", 19) == 0 && eol[-1] == '4' &&
                    eol[-2] == ' ') {
                    count_line = 1;
                }
            } else {
                if (!gauge_expected) {
                    abort(); /* a sample under a name or label the format refuses */
                }
                check_gauge_sample(line, eol, &in);
                gauge_samples++;
            }
        }
        line = eol + 1;
    }
    if (gauge_samples != (gauge_expected ? 1 : 0) || !inf_bucket || !count_line) {
        abort();
    }
    free(scratch);
    ch_buf_fini(&out);
    ch_metrics_free(m);
    free(copy);
    return 0;
}
