/*
 * api/static_routes.c: the operator console's files (web/ of the source tree, or the
 * directory of http.web_root), served to anyone at / (index.html) and /console/{path}, and
 * /console/config.json, the few settings the page needs (the base map's tile URL).
 *
 * The files are public: they hold no data, and every API call the page makes needs the
 * session. A request names a file with plain segments only (ch_api__static_path_ok), so no
 * path can climb out of the directory, name a hidden file or reach node_modules/; the last
 * component is opened without following a symbolic link. Every answer carries a strict
 * Content-Security-Policy: scripts, styles and fonts from the hub only (no inline code), images
 * from the hub and the tile server, connections to the hub and the grants' WebSocket origin,
 * media from blob: (MediaSource), no framing.
 *
 * Files are read on the loop with plain read(): they are small, few and in the page cache,
 * and 23 operators load them once a shift. An ETag (size and modification time) lets a
 * browser revalidate with one 304.
 */
#include "api/api_ctx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A file larger than this is not served (the biggest, leaflet.js, is 150 KB). */
#define STATIC_MAX_BYTES ((off_t)16 * 1024 * 1024)
#define STATIC_MAX_PATH  255

static const struct static_type {
    const char *ext; /* with the dot */
    const char *type;
} static_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *ch_api__static_type(ch_slice_t name)
{
    for (size_t i = 0; i < CH_ARRAY_SIZE(static_types); i++) {
        size_t n = strlen(static_types[i].ext);
        if (name.len > n && memcmp(name.ptr + name.len - n, static_types[i].ext, n) == 0) {
            return static_types[i].type;
        }
    }
    return NULL;
}

int ch_api__static_path_ok(ch_slice_t rel)
{
    if (rel.len == 0 || rel.len > STATIC_MAX_PATH) {
        return 0;
    }
    size_t seg_start = 0;
    for (size_t i = 0; i <= rel.len; i++) {
        char ch = i < rel.len ? rel.ptr[i] : '/';
        if (ch == '/') {
            size_t seg_len = i - seg_start;
            /* Empty ("//", a leading or trailing slash) or starting with a dot (".", "..",
             * ".git"): refused. */
            if (seg_len == 0 || rel.ptr[seg_start] == '.') {
                return 0;
            }
            if (seg_len == 12 && memcmp(rel.ptr + seg_start, "node_modules", 12) == 0) {
                return 0;
            }
            seg_start = i + 1;
            continue;
        }
        int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
        if (!plain) {
            return 0;
        }
    }
    return ch_api__static_type(rel) != NULL;
}

/* Appends the origin (scheme://host[:port]) of url to b, with a leading space; a Leaflet
 * "{s}" subdomain becomes the CSP wildcard "*". Nothing when url has no "://". */
static void append_origin(ch_buf_t *b, const char *url)
{
    const char *sep = strstr(url, "://");
    if (sep == NULL) {
        return;
    }
    const char *host = sep + 3;
    const char *end = strchr(host, '/');
    size_t n = end != NULL ? (size_t)(end - url) : strlen(url);
    ch_buf_append_str(b, " ");
    if (strncmp(host, "{s}", 3) == 0) {
        ch_buf_append(b, url, (size_t)(host - url));
        ch_buf_append_str(b, "*");
        ch_buf_append(b, host + 3, n - (size_t)(host + 3 - url));
        return;
    }
    ch_buf_append(b, url, n);
}

void ch_api__console_csp(ch_api_t *api, const char *ws_base)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_buf_append_str(&b, "Content-Security-Policy: default-src 'none'; script-src 'self'; "
                          "style-src 'self'; font-src 'self'; img-src 'self'");
    if (api->tile_url != NULL) {
        append_origin(&b, api->tile_url);
    }
    ch_buf_append_str(&b, "; connect-src 'self'");
    if (ws_base != NULL && ws_base[0] != '\0') {
        append_origin(&b, ws_base);
    }
    ch_buf_append_str(&b, "; media-src blob:; base-uri 'none'; form-action 'none'; "
                          "frame-ancestors 'none'\r\n"
                          "X-Content-Type-Options: nosniff\r\n"
                          "Referrer-Policy: no-referrer\r\n"
                          "X-Frame-Options: DENY\r\n");
    ch_free(api->console_csp);
    api->console_csp = ch_buf_steal(&b);
}

/* Answers the file rel (checked) of the web root, with its ETag, or 304 when the browser has
 * it already. */
static void reply_file(api_ctx_t *c, const char *rel, size_t rel_len)
{
    const char *type = ch_api__static_type((ch_slice_t){rel, rel_len});
    ch_buf_t path;
    ch_buf_init(&path);
    ch_buf_appendf(&path, "%s/%.*s", c->api->web_root, (int)rel_len, rel);
    ch_buf_t body;
    ch_buf_init(&body);
    ch_buf_t headers;
    ch_buf_init(&headers);
    int fd = open(path.data, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_BYTES) {
        ch_api__reply_error(c, 404, "not_found", NULL, "no such file");
        goto out;
    }
    /* The ETag (size and modification time), then the policy headers. */
    ch_buf_appendf(&headers, "ETag: \"%" PRIx64 "-%" PRIx64 "\"\r\nCache-Control: no-cache\r\n%s",
                   (uint64_t)st.st_size,
                   (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec,
                   c->api->console_csp);
    const ch_slice_t *inm = ch_http_request_header(c->req, "If-None-Match");
    const char *etag = headers.data + 6;
    size_t etag_len = (size_t)(strchr(etag, '\r') - etag);
    if (inm != NULL && inm->len == etag_len && memcmp(inm->ptr, etag, etag_len) == 0) {
        ch_api__reply(c, 304, NULL, headers.data, NULL, 0);
        goto out;
    }
    ch_buf_reserve(&body, (size_t)st.st_size);
    while (body.len < (size_t)st.st_size) {
        ssize_t n = read(fd, body.data + body.len, (size_t)st.st_size - body.len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ch_api__reply_error(c, 500, "internal", NULL, "the file could not be read");
            goto out;
        }
        body.len += (size_t)n;
    }
    ch_api__reply(c, 200, type, headers.data, body.data, body.len);
out:
    if (fd >= 0) {
        close(fd);
    }
    ch_buf_fini(&headers);
    ch_buf_fini(&body);
    ch_buf_fini(&path);
}

void ch_api__handle_static(api_ctx_t *c, ch_api__route_id_t route, ch_slice_t path)
{
    ch_api_t *api = c->api;
    if (api->web_root == NULL) {
        ch_api__reply_error(c, 404, "not_found", NULL,
                            "the console is not installed here (http.web_root)");
        return;
    }
    switch (route) {
    case CH_API__R_CONSOLE_INDEX:
        reply_file(c, "index.html", 10);
        return;
    case CH_API__R_CONSOLE_CONFIG: {
        json_t *o = json_object();
        json_object_set_new(o, "tile_url",
                            api->tile_url != NULL ? json_string(api->tile_url) : json_null());
        ch_buf_t h;
        ch_buf_init(&h);
        ch_buf_appendf(&h, "Cache-Control: no-store\r\n%s", api->console_csp);
        ch_api__reply_json(c, 200, h.data, o);
        ch_buf_fini(&h);
        return;
    }
    case CH_API__R_CONSOLE_FILE:
        if (!ch_api__static_path_ok(path)) {
            ch_api__reply_error(c, 404, "not_found", NULL, "no such file");
            return;
        }
        reply_file(c, path.ptr, path.len);
        return;
    default:
        ch_api__reply_error(c, 404, "not_found", NULL, "no such path");
        return;
    }
}
