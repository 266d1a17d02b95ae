/*
 * registry: rules of a record's own fields, applied when a camera changes (registry.h): the
 * stream credentials stay with their place; an installation month and a stream URL have a
 * shape.
 */
#include "registry/registry.h"

#include "proto/proto.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* 1 when a and b are slices of equal length and equal bytes, ASCII case aside. */
static int ch__registry_slice_eq_nocase(ch_slice_t a, ch_slice_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

/*
 * 1 when the two URLs send a client to the same place: the same scheme, host and port (the
 * default port when none is written), compared as written but for ASCII case. A URL that does
 * not parse (or is NULL or empty) is the same only as another with the same text, so that
 * anything the parser cannot vouch for counts as a change.
 */
static int ch__registry_same_origin(const char *a, const char *b)
{
    int a_none = a == NULL || a[0] == '\0';
    int b_none = b == NULL || b[0] == '\0';
    if (a_none || b_none) {
        return a_none && b_none;
    }
    ch_proto_url_t ua, ub;
    if (ch_proto_url_parse(a, strlen(a), &ua) != 0 || ch_proto_url_parse(b, strlen(b), &ub) != 0) {
        return strcmp(a, b) == 0;
    }
    return ch__registry_slice_eq_nocase(ua.scheme, ub.scheme) &&
           ch__registry_slice_eq_nocase(ua.host, ub.host) && ua.port == ub.port;
}

int ch_registry_camera_credentials_follow(const char *old_url, ch_camera_t *next, int user_sent,
                                          int password_sent)
{
    if (ch__registry_same_origin(old_url, next->rtsp_url)) {
        return 0;
    }
    int dropped = 0;
    if (!user_sent && next->rtsp_username != NULL) {
        ch_free(next->rtsp_username);
        next->rtsp_username = NULL;
        dropped = 1;
    }
    if (!password_sent && next->rtsp_password != NULL) {
        ch_free(next->rtsp_password);
        next->rtsp_password = NULL;
        dropped = 1;
    }
    return dropped;
}

int ch_registry_canon_tls_pin(char *pin)
{
    static const char prefix[] = "sha256:";
    size_t n = strlen(pin);
    if (n != sizeof(prefix) - 1 + 64 || strncasecmp(pin, prefix, sizeof(prefix) - 1) != 0) {
        return 0;
    }
    for (size_t i = sizeof(prefix) - 1; i < n; i++) {
        if (!isxdigit((unsigned char)pin[i])) {
            return 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        pin[i] = (char)tolower((unsigned char)pin[i]);
    }
    return 1;
}

int ch_registry_is_rtsps(const char *url)
{
    return url != NULL && strncasecmp(url, "rtsps://", 8) == 0;
}

/* Checks "YYYY" or "YYYY-MM" (month 01..12), the granularity the national data publishes. */
int ch_registry_valid_year_month(const char *s)
{
    size_t n = strlen(s);
    if (n != 4 && n != 7) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (i == 4 ? s[i] != '-' : (s[i] < '0' || s[i] > '9')) {
            return 0;
        }
    }
    if (n == 7) {
        int month = (s[5] - '0') * 10 + (s[6] - '0');
        return month >= 1 && month <= 12;
    }
    return 1;
}

/* Checks an RTSP URL's shape: rtsp:// or rtsps://, something after it, no spaces or control
 * bytes (they would break the request line of the RTSP client). */
int ch_registry_valid_rtsp_url(const char *s)
{
    size_t skip;
    if (strncasecmp(s, "rtsp://", 7) == 0) {
        skip = 7;
    } else if (strncasecmp(s, "rtsps://", 8) == 0) {
        skip = 8;
    } else {
        return 0;
    }
    if (s[skip] == '\0') {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}
