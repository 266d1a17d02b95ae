/*
 * The small public helpers of the HTTP server in net.h: default limits, status texts and
 * header lookup. The server itself is in http_server.c.
 */
#include "net/net.h"

#include <string.h>

void ch_http_limits_default(ch_http_limits_t *l)
{
    l->max_head = 16384;
    l->max_target = 8192;
    l->max_headers = 64;
    l->max_body = 1024 * 1024;
    l->request_timeout_ms = 10000;
    l->idle_timeout_ms = 60000;
    l->max_connections = 10000;
    l->max_connections_per_addr = 64;
    l->fd_reserve = 32;
}

/* The reason phrases of RFC 9110, by status; sorted, though a linear scan is fine for 41. */
static const struct {
    int status;
    const char *text;
} status_texts[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *ch_http_status_text(int status)
{
    for (size_t k = 0; k < CH_ARRAY_SIZE(status_texts); k++) {
        if (status_texts[k].status == status) {
            return status_texts[k].text;
        }
    }
    return "Unknown";
}

const ch_slice_t *ch_http_request_header(const ch_http_request_t *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t k = 0; k < req->num_headers; k++) {
        const ch_slice_t *hn = &req->headers[k].name;
        if (hn->len != n) {
            continue;
        }
        size_t j = 0;
        for (; j < n; j++) {
            unsigned char a = (unsigned char)hn->ptr[j];
            unsigned char b = (unsigned char)name[j];
            a = (a >= 'A' && a <= 'Z') ? (unsigned char)(a + 32) : a;
            b = (b >= 'A' && b <= 'Z') ? (unsigned char)(b + 32) : b;
            if (a != b) {
                break;
            }
        }
        if (j == n) {
            return &req->headers[k].value;
        }
    }
    return NULL;
}
