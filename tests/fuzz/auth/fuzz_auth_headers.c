/*
 * libFuzzer target: bytes as a Cookie header, an Authorization header, an API key and a new
 * password, through ch_auth_cookie_get, ch_auth_bearer, ch_auth_apikey_parse and
 * ch_auth_password_acceptable. Invariants: results are one of the documented codes; a returned
 * slice lies inside the input (and a cookie value or token has no surrounding spaces); a parsed
 * key formats back to exactly the same text; the password check agrees with an independent
 * decoder of UTF-8 that refuses C0 and C1 controls, overlongs, surrogates and values past
 * U+10FFFF.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(ch_slice_t v, const char *buf, size_t size)
{
    if (v.len > size || v.ptr < buf || v.ptr > buf + size || (size_t)(buf + size - v.ptr) < v.len) {
        abort();
    }
}

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_cookie(const char *buf, size_t size, const char *name)
{
    ch_slice_t v = {NULL, 0};
    int rc = ch_auth_cookie_get((ch_slice_t){buf, size}, name, &v);
    if (rc == CH_ENOTFOUND || rc == CH_EPARSE) {
        return;
    }
    if (rc != 0) {
        abort();
    }
    check_inside(v, buf, size);
    /* The value stops at a ';'; unless it was quoted (its quotes taken off, what was between
     * them kept as is), it carries no spaces at its ends. */
    if (memchr(v.ptr, ';', v.len) != NULL) {
        abort();
    }
    size_t end = (size_t)(v.ptr - buf) + v.len;
    int quoted = v.ptr > buf && v.ptr[-1] == '"' && end < size && buf[end] == '"';
    if (!quoted && v.len > 0 && (ows(v.ptr[0]) || ows(v.ptr[v.len - 1]))) {
        abort();
    }
    /* The name it was found under is in the header, before the value. */
    size_t nlen = strlen(name);
    if (nlen > 0 && memmem(buf, (size_t)(v.ptr - buf), name, nlen) == NULL) {
        abort();
    }
}

/* The independent reference: 1 when [p, p+n) is UTF-8 of code points that are neither
 * controls (U+0000..U+001F, U+007F..U+009F) nor surrogates, each in its shortest form. */
static int ref_text_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        uint32_t cp;
        size_t len;
        uint32_t min;
        if (c < 0x80) {
            cp = c;
            len = 1;
            min = 0;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            len = 2;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            len = 3;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            len = 4;
            min = 0x10000;
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
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly the input's size (no NUL after it), so a read past the end is seen. */
    char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        return 0;
    }
    if (size > 0) {
        memcpy(buf, data, size);
    }
    const char *p = size > 0 ? buf : NULL; /* empty input: the {NULL, 0} slice callers may pass */

    /* Cookie header: our cookie, a one-letter name, and a name taken from the input's start. */
    check_cookie(p, size, CH_AUTH_COOKIE);
    check_cookie(p, size, "a");
    char name[17];
    size_t nl = 0;
    while (nl < size && nl < sizeof(name) - 1 && data[nl] != '\0' && data[nl] != '=') {
        name[nl] = (char)data[nl];
        nl++;
    }
    name[nl] = '\0';
    check_cookie(p, size, name);

    /* Authorization header. */
    ch_slice_t tok = {NULL, 0};
    int rc = ch_auth_bearer((ch_slice_t){p, size}, &tok);
    if (rc == 0) {
        check_inside(tok, buf, size);
        if (tok.len == 0 || size < 7 || strncasecmp(buf, "bearer", 6) != 0) {
            abort();
        }
        for (size_t i = 0; i < tok.len; i++) {
            unsigned char c = (unsigned char)tok.ptr[i];
            if (c <= 0x20 || c >= 0x7f) {
                abort();
            }
        }
    } else if (rc != CH_EPARSE) {
        abort();
    }

    /* API keys: the whole input, and the bearer token when there is one. */
    const ch_slice_t keys[2] = {{p, size}, tok};
    for (size_t k = 0; k < (rc == 0 ? 2u : 1u); k++) {
        int64_t id = 0;
        ch_slice_t secret = {NULL, 0};
        int krc = ch_auth_apikey_parse(keys[k].ptr, keys[k].len, &id, &secret);
        if (krc == CH_EPARSE) {
            continue;
        }
        if (krc != 0 || id <= 0 || secret.len != CH_AUTH_TOKEN_LEN) {
            abort();
        }
        check_inside(secret, keys[k].ptr, keys[k].len);
        if (secret.ptr + secret.len != keys[k].ptr + keys[k].len) {
            abort();
        }
        char sec[CH_AUTH_TOKEN_LEN + 1];
        memcpy(sec, secret.ptr, secret.len);
        sec[secret.len] = '\0';
        char again[CH_AUTH_APIKEY_MAX];
        ch_auth_apikey_format(id, sec, again);
        if (strlen(again) != keys[k].len || memcmp(again, keys[k].ptr, keys[k].len) != 0) {
            abort();
        }
    }

    /* A new password. */
    const char *why = NULL;
    int prc = ch_auth_password_acceptable(p, size, &why);
    int want = size >= CH_AUTH_PASSWORD_MIN && size <= CH_AUTH_PASSWORD_MAX &&
               ref_text_ok((const unsigned char *)buf, size);
    if ((prc == 0) != want || (prc != 0 && prc != CH_EINVAL) || (prc == 0) != (why == NULL)) {
        abort();
    }

    free(buf);
    return 0;
}
