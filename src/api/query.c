/*
 * api/query.c: query strings (percent-decoding, parameters), list filters and cursors.
 * Pure functions: no HTTP, no store handle.
 */
#include "api/api_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* ---- UTF-8 and percent-decoding ----------------------------------------------------------- */

/*
 * Validates UTF-8 strictly (RFC 3629): shortest form only, no UTF-16 surrogates, nothing
 * above U+10FFFF. Strict because decoded text goes into SQL LIKE patterns and JSON answers,
 * and jansson refuses to build a string from invalid UTF-8.
 */
int ch_api__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len) {
            return 0;
        }
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

int ch_api__percent_decode(const char *p, size_t n, int plus_is_space, char **out)
{
    /* Decoding never grows the text, so one allocation of n + 1 bytes is enough. */
    char *d = ch_malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            if (n - i < 3) {
                goto bad;
            }
            int h = ch_hex_digit((unsigned char)p[i + 1]);
            int l = ch_hex_digit((unsigned char)p[i + 2]);
            if (h < 0 || l < 0) {
                goto bad;
            }
            c = (char)(h * 16 + l);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (c == '\0') {
            goto bad; /* C strings all the way down: a NUL would cut the value silently */
        }
        d[j++] = c;
    }
    d[j] = '\0';
    if (!ch_api__utf8_valid(d, j)) {
        goto bad;
    }
    *out = d;
    return 0;
bad:
    ch_free(d);
    *out = NULL;
    return CH_EPARSE;
}

/* ---- query parameters --------------------------------------------------------------------- */

void ch_api__query_fini(ch_api__query_t *q)
{
    for (size_t i = 0; i < q->count; i++) {
        ch_free(q->items[i].name);
        ch_free(q->items[i].value);
    }
    ch_free(q->items);
    q->items = NULL;
    q->count = 0;
}

const char *ch_api__query_get(const ch_api__query_t *q, const char *name)
{
    for (size_t i = 0; i < q->count; i++) {
        if (strcmp(q->items[i].name, name) == 0) {
            return q->items[i].value;
        }
    }
    return NULL;
}

/* Copies a parameter name into a field buffer for an error, cut at a UTF-8 boundary. */
static const char *field_name(const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    memcpy(buf, name, n);
    buf[n] = '\0';
    return buf;
}

/*
 * Splits on '&', then each piece on its first '='. Empty pieces ("a=1&&b=2", a trailing '&')
 * are skipped, as browsers produce them.
 */
int ch_api__query_parse(ch_slice_t query, ch_api__query_t *q, ch_api__err_t *err)
{
    q->items = NULL;
    q->count = 0;
    size_t cap = 0;
    const char *p = query.ptr;
    const char *end = query.ptr + query.len;
    char fbuf[64];
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *piece_end = amp ? amp : end;
        if (piece_end > p) {
            const char *eq = memchr(p, '=', (size_t)(piece_end - p));
            const char *name_end = eq ? eq : piece_end;
            char *name = NULL;
            char *value = NULL;
            if (ch_api__percent_decode(p, (size_t)(name_end - p), 1, &name) != 0) {
                ch_api__err_set(err, 400, "invalid", "query",
                                "a query parameter name is not valid percent-encoded UTF-8");
                goto fail;
            }
            if (ch_api__query_get(q, name) != NULL) {
                ch_api__err_set(err, 400, "invalid", field_name(name, fbuf, sizeof(fbuf)),
                                "query parameter given more than once");
                ch_free(name);
                goto fail;
            }
            const char *vstart = eq ? eq + 1 : piece_end;
            if (ch_api__percent_decode(vstart, (size_t)(piece_end - vstart), 1, &value) != 0) {
                ch_api__err_set(err, 400, "invalid", field_name(name, fbuf, sizeof(fbuf)),
                                "value is not valid percent-encoded UTF-8");
                ch_free(name);
                goto fail;
            }
            if (q->count == cap) {
                cap = cap ? cap * 2 : 8;
                q->items = ch_realloc(q->items, cap * sizeof(*q->items));
            }
            q->items[q->count].name = name;
            q->items[q->count].value = value;
            q->count++;
        }
        p = amp ? amp + 1 : end;
    }
    return 0;
fail:
    ch_api__query_fini(q);
    return CH_EINVAL;
}

/* ---- the list parser ---------------------------------------------------------------------- */

static int in_list(const char *const *values, const char *s)
{
    for (size_t i = 0; values[i] != NULL; i++) {
        if (strcmp(values[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * Appends "a, b, c" to a message, cut at its buffer's end. The words are stride bytes apart and
 * end with NULL: a choice list (stride sizeof(char *)) or the names of a spec (stride
 * sizeof(ch_api__qparam_t), starting at &spec[0].name), so one loop serves both messages.
 */
static void append_words(char *msg, size_t size, const char *const *words, size_t stride)
{
    size_t len = strlen(msg);
    for (size_t i = 0; len < size; i++) {
        const char *w = *(const char *const *)(const void *)((const char *)words + i * stride);
        if (w == NULL) {
            break;
        }
        int n = snprintf(msg + len, size - len, "%s%s", i > 0 ? ", " : "", w);
        if (n < 0) {
            break;
        }
        len += (size_t)n;
    }
}

/* Parses "min_lon,min_lat,max_lon,max_lat" (the GeoJSON order) into f. 0 or CH_EPARSE. */
static int parse_bbox(const char *s, ch_store_filter_t *f)
{
    double v[4];
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if ((i < 3) != (comma != NULL) || ch_parse_double(p, n, &v[i]) != 0) {
            return CH_EPARSE;
        }
        p = comma ? comma + 1 : p + n;
    }
    if (v[0] < -180 || v[2] > 180 || v[1] < -90 || v[3] > 90 || v[0] > v[2] || v[1] > v[3]) {
        return CH_EPARSE;
    }
    f->has_bbox = 1;
    f->min_lon = v[0];
    f->min_lat = v[1];
    f->max_lon = v[2];
    f->max_lat = v[3];
    return 0;
}

/* "YYYY-MM" with a year 1970..9999 and a month 01..12, digits only. */
static int month_valid(const char *s)
{
    if (strlen(s) != 7 || s[4] != '-') {
        return 0;
    }
    for (int i = 0; i < 7; i++) {
        if (i != 4 && (s[i] < '0' || s[i] > '9')) {
            return 0;
        }
    }
    int year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    return year >= 1970 && month >= 1 && month <= 12;
}

/*
 * Reads one value into p->dest by its kind. 0, or CH_EINVAL with err filled. Messages name
 * what the parameter takes and never quote the value (see ch_api__err_t).
 */
static int read_value(const ch_api__qparam_t *p, const char *v, ch_api__err_t *err)
{
    int64_t x = 0;
    switch (p->kind) {
    case CH_API__Q_ID:
        if (ch_parse_int64(v, strlen(v), &x) != 0 || x < 1) {
            ch_api__err_set(err, 400, "invalid", p->name, "%s must be a positive integer", p->name);
            return CH_EINVAL;
        }
        *(int64_t *)p->dest = x;
        return 0;
    case CH_API__Q_INT:
        if (ch_parse_int64(v, strlen(v), &x) != 0 || x < p->min || x > p->max) {
            if (p->max == INT64_MAX) {
                ch_api__err_set(err, 400, "invalid", p->name, "%s must be an integer >= %lld",
                                p->name, (long long)p->min);
            } else {
                ch_api__err_set(err, 400, "invalid", p->name, "%s must be an integer %lld..%lld",
                                p->name, (long long)p->min, (long long)p->max);
            }
            return CH_EINVAL;
        }
        *(int64_t *)p->dest = x;
        return 0;
    case CH_API__Q_LIMIT:
        if (ch_parse_int64(v, strlen(v), &x) != 0 || x < 1 || x > 1000) {
            ch_api__err_set(err, 400, "invalid", p->name, "%s must be an integer 1..1000", p->name);
            return CH_EINVAL;
        }
        *(int *)p->dest = (int)x;
        return 0;
    case CH_API__Q_CURSOR:
        if (ch_api__cursor_decode(v, &x) != 0) {
            ch_api__err_set(err, 400, "invalid", p->name,
                            "%s is not one this server handed out; start again without it",
                            p->name);
            return CH_EINVAL;
        }
        *(int64_t *)p->dest = x;
        return 0;
    case CH_API__Q_CHOICE:
        assert(p->choices != NULL);
        if (!in_list(p->choices, v)) {
            /* Say what is accepted: someone who typed state=opne should learn the choices. */
            ch_api__err_set(err, 400, "invalid", p->name, "%s must be one of ", p->name);
            append_words(err->message, sizeof(err->message), p->choices, sizeof(*p->choices));
            return CH_EINVAL;
        }
        *(const char **)p->dest = v;
        return 0;
    case CH_API__Q_TEXT:
        *(const char **)p->dest = v;
        return 0;
    case CH_API__Q_SEARCH:
        /* An empty text filters nothing; "q=" is what an empty search box sends. */
        *(const char **)p->dest = v[0] != '\0' ? v : NULL;
        return 0;
    case CH_API__Q_TIME:
        if (ch_time_parse_ns(v, &x) != 0) {
            ch_api__err_set(err, 400, "invalid", p->name,
                            "%s must be RFC 3339 (2026-11-25T08:00:00Z), a date or epoch seconds",
                            p->name);
            return CH_EINVAL;
        }
        *(int64_t *)p->dest = x;
        return 0;
    case CH_API__Q_MONTH:
        if (!month_valid(v)) {
            ch_api__err_set(err, 400, "invalid", p->name, "%s must be a month, YYYY-MM", p->name);
            return CH_EINVAL;
        }
        *(const char **)p->dest = v;
        return 0;
    case CH_API__Q_BBOX:
        if (parse_bbox(v, p->dest) != 0) {
            ch_api__err_set(err, 400, "invalid", p->name,
                            "%s must be min_lon,min_lat,max_lon,max_lat within -180..180 and "
                            "-90..90, min <= max",
                            p->name);
            return CH_EINVAL;
        }
        return 0;
    case CH_API__Q_PARSE:
        assert(p->parse != NULL && p->expect != NULL);
        if (p->parse(v, p->dest) != 0) {
            ch_api__err_set(err, 400, "invalid", p->name, "%s must be %s", p->name, p->expect);
            return CH_EINVAL;
        }
        return 0;
    }
    assert(0 && "a spec entry of no known kind");
    ch_api__err_set(err, 500, "internal", NULL, "a query parameter of no known kind");
    return CH_EINVAL;
}

static const ch_api__qparam_t *spec_find(const ch_api__qparam_t *spec, const char *name)
{
    for (; spec->name != NULL; spec++) {
        if (strcmp(spec->name, name) == 0) {
            return spec;
        }
    }
    return NULL;
}

int ch_api__query_check(const ch_api__query_t *q, const ch_api__qparam_t *spec, ch_api__err_t *err)
{
    char fbuf[64];
    /* Unknown names first: a typo such as ?limt=5 is the likeliest mistake, and its answer
     * lists what the endpoint does take. */
    for (size_t i = 0; i < q->count; i++) {
        if (spec_find(spec, q->items[i].name) == NULL) {
            /* A piece without a name ("=5") is the query's fault as a whole. */
            const char *field = q->items[i].name[0] != '\0'
                                    ? field_name(q->items[i].name, fbuf, sizeof(fbuf))
                                    : "query";
            if (spec[0].name == NULL) {
                ch_api__err_set(err, 400, "invalid", field,
                                "this endpoint takes no query parameters");
            } else {
                ch_api__err_set(err, 400, "invalid", field, "unknown query parameter; takes ");
                append_words(err->message, sizeof(err->message), &spec[0].name, sizeof(*spec));
            }
            return CH_EINVAL;
        }
    }
    for (size_t i = 0; i < q->count; i++) {
        const ch_api__qparam_t *p = spec_find(spec, q->items[i].name);
        if (read_value(p, q->items[i].value, err) != 0) {
            return CH_EINVAL;
        }
        if (p->seen != NULL) {
            *p->seen = 1;
        }
    }
    for (const ch_api__qparam_t *p = spec; p->name != NULL; p++) {
        if (p->required && ch_api__query_get(q, p->name) == NULL) {
            ch_api__err_set(err, 400, "invalid", p->name, "%s is required", p->name);
            return CH_EINVAL;
        }
    }
    return 0;
}

int ch_api__query_read(ch_slice_t query, const ch_api__qparam_t *spec, ch_api__query_t *q,
                       ch_api__err_t *err)
{
    int rc = ch_api__query_parse(query, q, err);
    if (rc == 0) {
        rc = ch_api__query_check(q, spec, err);
    }
    return rc;
}

/* ---- resource lists ----------------------------------------------------------------------- */

/*
 * Which parameters each resource's list takes. Enumerated filters are checked against the
 * store's own lists (ch_store_*_kinds, ...), the same the bodies are checked against.
 */
int ch_api__filter_from_query(const ch_api__query_t *q, ch_api__resource_t res,
                              ch_store_filter_t *f, ch_api__err_t *err)
{
    memset(f, 0, sizeof(*f));
    f->limit = 100;
    const ch_api__qparam_t agencies[] = {
        {CH_API__QP_CHOICE("kind", &f->kind, ch_store_agency_kinds)},
        {CH_API__QP_CHOICE("type", &f->type, ch_store_agency_types)},
        {CH_API__QP_CHOICE("level", &f->level, ch_store_agency_levels)},
        {CH_API__QP_SEARCH("q", &f->text)},
        {CH_API__QP_CURSOR("cursor", &f->after_id)},
        {CH_API__QP_LIMIT("limit", &f->limit)},
        {CH_API__QP_END},
    };
    const ch_api__qparam_t cameras[] = {
        {CH_API__QP_ID("agency_id", &f->agency_id)},
        {CH_API__QP_TEXT("purpose", &f->purpose)},
        {CH_API__QP_CHOICE("kind", &f->kind, ch_store_camera_kinds)},
        {CH_API__QP_CHOICE("status", &f->status, ch_store_camera_statuses)},
        {CH_API__QP_SEARCH("q", &f->text)},
        {CH_API__QP_BBOX("bbox", f)},
        {CH_API__QP_CURSOR("cursor", &f->after_id)},
        {CH_API__QP_LIMIT("limit", &f->limit)},
        {CH_API__QP_END},
    };
    const ch_api__qparam_t devices[] = {
        {CH_API__QP_ID("agency_id", &f->agency_id)},
        {CH_API__QP_CHOICE("kind", &f->kind, ch_store_device_kinds)},
        {CH_API__QP_CHOICE("status", &f->status, ch_store_device_statuses)},
        {CH_API__QP_SEARCH("q", &f->text)},
        {CH_API__QP_BBOX("bbox", f)},
        {CH_API__QP_CURSOR("cursor", &f->after_id)},
        {CH_API__QP_LIMIT("limit", &f->limit)},
        {CH_API__QP_END},
    };
    const ch_api__qparam_t *spec = res == CH_API__AGENCIES  ? agencies
                                   : res == CH_API__CAMERAS ? cameras
                                                            : devices;
    return ch_api__query_check(q, spec, err);
}

/* ---- cursors ------------------------------------------------------------------------------ */

/*
 * A cursor is the id of the last item of a page, written as "v1:<id>" in unpadded base64url.
 * Opaque on purpose: clients must not compute cursors, so the paging key can change later
 * (to a composite sort key) behind a new version prefix without breaking anyone.
 */
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void ch_api__cursor_encode(int64_t after_id, char out[CH_API__CURSOR_MAX])
{
    char plain[32];
    int n = snprintf(plain, sizeof(plain), "v1:%" PRId64, after_id);
    assert(n > 0 && (size_t)n < sizeof(plain));
    size_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (int i = 0; i < n; i++) {
        acc = (acc << 8) | (unsigned char)plain[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[j++] = b64url[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0) {
        out[j++] = b64url[(acc << (6 - bits)) & 0x3f];
    }
    out[j] = '\0';
}

int ch_api__cursor_decode(const char *s, int64_t *after_id)
{
    char plain[32];
    size_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = strlen(s);
    /* A remainder of one character cannot hold a byte: not something encode writes. */
    if (n == 0 || n % 4 == 1 || n > CH_API__CURSOR_MAX - 1) {
        return CH_EPARSE;
    }
    for (size_t i = 0; i < n; i++) {
        const char *pos = s[i] ? strchr(b64url, s[i]) : NULL;
        if (pos == NULL) {
            return CH_EPARSE;
        }
        acc = (acc << 6) | (uint32_t)(pos - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (j >= sizeof(plain) - 1) {
                return CH_EPARSE;
            }
            plain[j++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* The unused low bits must be zero, so each id has exactly one cursor. */
    if ((acc & ((1u << bits) - 1)) != 0) {
        return CH_EPARSE;
    }
    plain[j] = '\0';
    if (j < 4 || memcmp(plain, "v1:", 3) != 0) {
        return CH_EPARSE;
    }
    return ch_api__parse_id((ch_slice_t){plain + 3, j - 3}, after_id);
}
