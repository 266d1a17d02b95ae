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

static int hex_value(char c)
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
            int h = hex_value(p[i + 1]);
            int l = hex_value(p[i + 2]);
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

/* ---- list filters ------------------------------------------------------------------------- */

static int in_list(const char *const *values, const char *s)
{
    for (size_t i = 0; values[i] != NULL; i++) {
        if (strcmp(values[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Which parameters each resource's list takes. */
static const char *const agency_params[] = {"kind", "type", "level", "q", "cursor", "limit", NULL};
static const char *const camera_params[] = {"agency_id", "purpose", "kind",  "status", "q",
                                            "bbox",      "cursor",  "limit", NULL};
static const char *const device_params[] = {"agency_id", "kind",   "status", "q",
                                            "bbox",      "cursor", "limit",  NULL};

/* Enumerated filters are checked against the store's own lists (ch_store_*_kinds, ...), the
 * same the bodies are checked against. */

/* Checks an enumerated filter value; a typo should say so rather than list nothing. */
static int check_choice(const char *name, const char *value, const char *const *values,
                        ch_api__err_t *err)
{
    if (value == NULL || in_list(values, value)) {
        return 0;
    }
    ch_api__err_set(err, 400, "invalid", name, "%s is not one of the accepted values", name);
    return CH_EINVAL;
}

/* Parses "min_lon,min_lat,max_lon,max_lat" (the GeoJSON order) into f. */
static int parse_bbox(const char *s, ch_store_filter_t *f, ch_api__err_t *err)
{
    double v[4];
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if ((i < 3) != (comma != NULL) || ch_parse_double(p, n, &v[i]) != 0) {
            goto bad;
        }
        p = comma ? comma + 1 : p + n;
    }
    if (v[0] < -180 || v[2] > 180 || v[1] < -90 || v[3] > 90 || v[0] > v[2] || v[1] > v[3]) {
        goto bad;
    }
    f->has_bbox = 1;
    f->min_lon = v[0];
    f->min_lat = v[1];
    f->max_lon = v[2];
    f->max_lat = v[3];
    return 0;
bad:
    ch_api__err_set(err, 400, "invalid", "bbox",
                    "bbox must be min_lon,min_lat,max_lon,max_lat within -180..180 and -90..90, "
                    "min <= max");
    return CH_EINVAL;
}

int ch_api__filter_from_query(const ch_api__query_t *q, ch_api__resource_t res,
                              ch_store_filter_t *f, ch_api__err_t *err)
{
    static const char *const *const params[] = {agency_params, camera_params, device_params};
    memset(f, 0, sizeof(*f));
    f->limit = 100;
    char fbuf[64];
    for (size_t i = 0; i < q->count; i++) {
        if (!in_list(params[res], q->items[i].name)) {
            ch_api__err_set(err, 400, "invalid", field_name(q->items[i].name, fbuf, sizeof(fbuf)),
                            "unknown query parameter");
            return CH_EINVAL;
        }
    }
    const char *v;
    if ((v = ch_api__query_get(q, "agency_id")) != NULL &&
        ch_api__parse_id((ch_slice_t){v, strlen(v)}, &f->agency_id) != 0) {
        ch_api__err_set(err, 400, "invalid", "agency_id", "agency_id must be a positive integer");
        return CH_EINVAL;
    }
    f->purpose = ch_api__query_get(q, "purpose");
    f->kind = ch_api__query_get(q, "kind");
    f->status = ch_api__query_get(q, "status");
    f->type = ch_api__query_get(q, "type");
    f->level = ch_api__query_get(q, "level");
    f->text = ch_api__query_get(q, "q");
    /* An empty text filter filters nothing; "q=" is what an empty search box sends. */
    if (f->text != NULL && f->text[0] == '\0') {
        f->text = NULL;
    }
    int rc = 0;
    switch (res) {
    case CH_API__AGENCIES:
        rc = check_choice("kind", f->kind, ch_store_agency_kinds, err);
        if (rc == 0) {
            rc = check_choice("type", f->type, ch_store_agency_types, err);
        }
        if (rc == 0) {
            rc = check_choice("level", f->level, ch_store_agency_levels, err);
        }
        break;
    case CH_API__CAMERAS:
        rc = check_choice("kind", f->kind, ch_store_camera_kinds, err);
        if (rc == 0) {
            rc = check_choice("status", f->status, ch_store_camera_statuses, err);
        }
        break;
    case CH_API__DEVICES:
        rc = check_choice("kind", f->kind, ch_store_device_kinds, err);
        if (rc == 0) {
            rc = check_choice("status", f->status, ch_store_device_statuses, err);
        }
        break;
    }
    if (rc != 0) {
        return rc;
    }
    if ((v = ch_api__query_get(q, "bbox")) != NULL && parse_bbox(v, f, err) != 0) {
        return CH_EINVAL;
    }
    if ((v = ch_api__query_get(q, "cursor")) != NULL &&
        ch_api__cursor_decode(v, &f->after_id) != 0) {
        ch_api__err_set(err, 400, "invalid", "cursor",
                        "cursor is not one this server handed out; start again without it");
        return CH_EINVAL;
    }
    if ((v = ch_api__query_get(q, "limit")) != NULL) {
        int64_t limit = 0;
        if (ch_parse_int64(v, strlen(v), &limit) != 0 || limit < 1 || limit > 1000) {
            ch_api__err_set(err, 400, "invalid", "limit", "limit must be an integer 1..1000");
            return CH_EINVAL;
        }
        f->limit = (int)limit;
    }
    return 0;
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
