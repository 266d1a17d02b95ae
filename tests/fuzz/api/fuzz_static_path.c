/*
 * libFuzzer target: bytes as the rest of a /console/{path} request, through route matching
 * and the console's path check. A path the check accepts must name a file inside the web
 * root: no empty, "." or ".." segment, no hidden name, no node_modules/, only plain bytes, a
 * served type; anything else is refused, never a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless the accepted path p (n bytes) stays inside the root, segment by segment. */
static void check_accepted(const char *p, size_t n)
{
    if (n == 0 || n > 255 || ch_api__static_type((ch_slice_t){p, n}) == NULL) {
        abort();
    }
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '/') {
            char ch = p[i];
            int plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                        (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
            if (!plain) {
                abort();
            }
            continue;
        }
        size_t len = i - start;
        if (len == 0 || p[start] == '.' ||
            (len == 12 && memcmp(p + start, "node_modules", 12) == 0)) {
            abort();
        }
        start = i + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly the input's size, so that a read past the end is seen. */
    char *rel = malloc(size ? size : 1);
    char *full = malloc(size + 9);
    if (rel == NULL || full == NULL) {
        free(rel);
        free(full);
        return 0;
    }
    memcpy(rel, data, size);
    if (ch_api__static_path_ok((ch_slice_t){rel, size})) {
        check_accepted(rel, size);
    }
    (void)ch_api__static_type((ch_slice_t){rel, size});
    /* The whole target: the route takes the rest of the path as it is. */
    memcpy(full, "/console/", 9);
    memcpy(full + 9, data, size);
    ch_api__match_t m;
    int rc = ch_api__route_match(CH_SLICE_LIT("GET"), (ch_slice_t){full, size + 9}, &m);
    if (rc == 0 && m.route == CH_API__R_CONSOLE_FILE &&
        (m.id.ptr != full + 9 || m.id.len != size)) {
        abort();
    }
    free(rel);
    free(full);
    return 0;
}
