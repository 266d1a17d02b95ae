/*
 * libFuzzer target: bytes as a request target's path and query string, through route
 * matching, query splitting and percent-decoding, the list filters of every resource, the
 * shared query parser with a spec of every kind, the cursor decoder, and the time parser the
 * audit search uses. Every outcome must be a status
 * or an error that can be answered, never a crash; a cursor that decodes must encode back to
 * the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const ch_api__err_t *err)
{
    if (err->status < 400 || err->code == NULL) {
        abort();
    }
}

static int parse_short(const char *v, void *dest)
{
    *(size_t *)dest = strlen(v);
    return strlen(v) < 8 ? 0 : -1;
}

/* The shared parser with one parameter of every kind; a mistake must be an answerable 400
 * naming a parameter, success must leave only values the kinds allow. */
static void check_every_kind(const ch_api__query_t *qs)
{
    static const char *const choices[] = {"a", "b", NULL};
    int64_t id = 0, n = 0, cursor = 0, t = 0;
    int limit = 100, seen = 0;
    size_t len = 0;
    const char *choice = NULL, *text = NULL, *search = NULL, *month = NULL;
    ch_store_filter_t box;
    memset(&box, 0, sizeof(box));
    const ch_api__qparam_t spec[] = {
        {CH_API__QP_ID("id", &id)},
        {CH_API__QP_INT("n", &n, -5, 5), .seen = &seen},
        {CH_API__QP_CURSOR("cursor", &cursor)},
        {CH_API__QP_LIMIT("limit", &limit)},
        {CH_API__QP_CHOICE("choice", &choice, choices)},
        {CH_API__QP_TEXT("text", &text)},
        {CH_API__QP_SEARCH("q", &search)},
        {CH_API__QP_TIME("t", &t)},
        {CH_API__QP_MONTH("month", &month)},
        {CH_API__QP_BBOX("bbox", &box)},
        {CH_API__QP_PARSE("short", &len, parse_short, "shorter than 8 bytes")},
        {CH_API__QP_END},
    };
    ch_api__err_t err;
    if (ch_api__query_check(qs, spec, &err) != 0) {
        if (err.status != 400 || err.field[0] == '\0') {
            abort();
        }
        check_error(&err);
        return;
    }
    if (id < 0 || n < -5 || n > 5 || cursor < 0 || limit < 1 || limit > 1000 || len >= 8 ||
        (choice != NULL && strcmp(choice, "a") != 0 && strcmp(choice, "b") != 0) ||
        (search != NULL && search[0] == '\0') || (month != NULL && strlen(month) != 7) ||
        (box.has_bbox && (box.min_lon > box.max_lon || box.min_lat > box.max_lat))) {
        abort();
    }
    (void)text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly the input's size, so that a read past the end is seen. */
    char *buf = malloc(size + 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *q = memchr(buf, '?', size);
    ch_slice_t path = {buf, q ? (size_t)(q - buf) : size};
    ch_slice_t query = {q ? q + 1 : buf + size, q ? size - (size_t)(q - buf) - 1 : 0};

    ch_api__match_t m;
    (void)ch_api__route_match(CH_SLICE_LIT("GET"), path, &m);
    (void)ch_api__route_match(CH_SLICE_LIT("POST"), path, &m);

    ch_api__query_t qs;
    ch_api__err_t err;
    if (ch_api__query_parse(query, &qs, &err) != 0) {
        check_error(&err);
    } else {
        static const ch_api__resource_t resources[] = {CH_API__AGENCIES, CH_API__CAMERAS,
                                                       CH_API__DEVICES};
        for (size_t i = 0; i < sizeof(resources) / sizeof(resources[0]); i++) {
            ch_store_filter_t f;
            memset(&f, 0, sizeof(f));
            if (ch_api__filter_from_query(&qs, resources[i], &f, &err) != 0) {
                check_error(&err);
            }
        }
        check_every_kind(&qs);
        for (size_t i = 0; i < qs.count; i++) {
            int64_t id, ns;
            if (ch_api__cursor_decode(qs.items[i].value, &id) == 0) {
                char again[CH_API__CURSOR_MAX];
                ch_api__cursor_encode(id, again);
                if (strcmp(again, qs.items[i].value) != 0) {
                    abort();
                }
            }
            (void)ch_time_parse_ns(qs.items[i].value, &ns);
        }
    }
    ch_api__query_fini(&qs);
    free(buf);
    return 0;
}
