/*
 * Unit tests of the request head parser of proto/ and its framing helpers.
 *
 * Every parse goes through parse_exact(), which copies the input into a heap block of exactly
 * its size, so that AddressSanitizer catches a read one byte past the end: the parser is given
 * incomplete heads all the time and must never look beyond what it was given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "proto/proto.h"

#define MAX_H 16

static ch_proto_header_t headers[MAX_H];

/* Parses the first len bytes of s from an exactly sized copy. Slices in req point into a
 * copy that stays alive until the next call. */
static int parse_exact(const char *s, size_t len, ch_proto_request_t *req, size_t max_headers)
{
    static char *copy;
    ch_free(copy);
    copy = ch_malloc(len ? len : 1);
    memcpy(copy, s, len);
    return ch_proto_parse_request(copy, len, req, headers, max_headers);
}

static int parse_str(const char *s, ch_proto_request_t *req)
{
    return parse_exact(s, strlen(s), req, MAX_H);
}

static void assert_slice(ch_slice_t s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0) {
        fail_msg("slice \"%.*s\" is not \"%s\"", (int)s.len, s.ptr, want);
    }
}

static void test_simple_get_is_parsed_into_slices(void **state)
{
    ch_proto_request_t req;
    const char *s = "GET /api/v1/health?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                    "User-Agent: test\r\nAccept: */*\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.method, "GET");
    assert_slice(req.target, "/api/v1/health?x=1");
    assert_slice(req.protocol, "HTTP/1.1");
    assert_int_equal(req.kind, CH_PROTO_HTTP);
    assert_int_equal(req.major, 1);
    assert_int_equal(req.minor, 1);
    assert_int_equal(req.num_headers, 3);
    assert_ptr_equal(req.headers, headers);
    assert_slice(req.headers[0].name, "Host");
    assert_slice(req.headers[0].value, "127.0.0.1:8080");
    assert_slice(req.headers[1].name, "User-Agent");
    assert_slice(req.headers[1].value, "test");
    assert_slice(req.headers[2].name, "Accept");
    assert_slice(req.headers[2].value, "*/*");
}

static void test_head_length_excludes_the_body_that_follows(void **state)
{
    ch_proto_request_t req;
    const char *head = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
    char s[128];
    snprintf(s, sizeof(s), "%shelloGET / HTTP/1.1\r\n\r\n", head);
    assert_int_equal(parse_str(s, &req), (int)strlen(head));
    assert_slice(req.method, "POST");
}

static void test_bare_lf_line_ends_are_accepted(void **state)
{
    ch_proto_request_t req;
    const char *s = "GET / HTTP/1.0\nHost: a\nX: b\r\n\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_int_equal(req.minor, 0);
    assert_int_equal(req.num_headers, 2);
    assert_slice(req.headers[1].value, "b");
}

static void test_empty_lines_before_the_request_line_are_skipped(void **state)
{
    ch_proto_request_t req;
    const char *s = "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.method, "GET");
    assert_int_equal(req.num_headers, 0);
}

static void test_header_values_are_trimmed_and_may_be_empty(void **state)
{
    ch_proto_request_t req;
    const char *s = "GET / HTTP/1.1\r\nA:   spaced value \t \r\nB:\r\nC: \r\nD:\tx\ty\r\n"
                    "E: caf\xc3\xa9\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_int_equal(req.num_headers, 5);
    assert_slice(req.headers[0].value, "spaced value");
    assert_slice(req.headers[1].value, "");
    assert_slice(req.headers[2].value, "");
    assert_slice(req.headers[3].value, "x\ty");
    assert_slice(req.headers[4].value, "caf\xc3\xa9");
}

static void test_token_characters_are_accepted_in_method_and_names(void **state)
{
    ch_proto_request_t req;
    const char *s = "M-SEARCH * HTTP/1.1\r\nX!#$%&'*+-.^_`|~09az: v\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_slice(req.method, "M-SEARCH");
    assert_slice(req.target, "*");
    assert_slice(req.headers[0].name, "X!#$%&'*+-.^_`|~09az");
}

static void test_rtsp_request_line_is_recognised(void **state)
{
    ch_proto_request_t req;
    const char *s = "DESCRIBE rtsp://10.0.0.5:554/stream1 RTSP/1.0\r\nCSeq: 2\r\n"
                    "Accept: application/sdp\r\n\r\n";
    assert_int_equal(parse_str(s, &req), (int)strlen(s));
    assert_int_equal(req.kind, CH_PROTO_RTSP);
    assert_slice(req.method, "DESCRIBE");
    assert_slice(req.target, "rtsp://10.0.0.5:554/stream1");
    assert_slice(req.protocol, "RTSP/1.0");
    assert_int_equal(req.major, 1);
    assert_int_equal(req.minor, 0);
    assert_slice(ch_proto_header_find(req.headers, req.num_headers, "cseq")->value, "2");
}

static void test_other_versions_parse_for_the_server_to_refuse(void **state)
{
    ch_proto_request_t req;
    assert_true(parse_str("GET / HTTP/2.0\r\n\r\n", &req) > 0);
    assert_int_equal(req.major, 2);
    assert_int_equal(req.minor, 0);
    assert_true(parse_str("GET / HTTP/1.9\r\n\r\n", &req) > 0);
    assert_int_equal(req.minor, 9);
}

/* Every proper prefix of a valid head is CH_EAGAIN and the whole is its length. */
static void test_partial_heads_at_every_split_point_ask_for_more(void **state)
{
    static const char *const valid[] = {
        "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n",
        "\r\nPOST /a?b=c HTTP/1.0\nContent-Length: 3\nX:\n\n",
        "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nA:  b  \r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
    };
    for (size_t v = 0; v < CH_ARRAY_SIZE(valid); v++) {
        size_t n = strlen(valid[v]);
        ch_proto_request_t req;
        for (size_t cut = 0; cut < n; cut++) {
            int rc = parse_exact(valid[v], cut, &req, MAX_H);
            if (rc != CH_EAGAIN) {
                fail_msg("valid head %zu cut at %zu: rc %d, want CH_EAGAIN", v, cut, rc);
            }
        }
        assert_int_equal(parse_exact(valid[v], n, &req, MAX_H), (int)n);
    }
}

/* Each malformed head is CH_EPARSE whole, and no prefix of it is ever a success. */
static void test_each_malformed_head_is_refused(void **state)
{
    static const char *const bad[] = {
        "GET  / HTTP/1.1\r\n\r\n",                       /* two spaces */
        " GET / HTTP/1.1\r\n\r\n",                       /* leading space */
        "G(T / HTTP/1.1\r\n\r\n",                        /* non-token method */
        "GET\t/ HTTP/1.1\r\n\r\n",                       /* tab as separator */
        " / HTTP/1.1\r\n\r\n",                           /* empty method */
        "GET /a\x01 HTTP/1.1\r\n\r\n",                   /* control in target */
        "GET /a\x7f HTTP/1.1\r\n\r\n",                   /* DEL in target */
        "GET / HTTP/1.1 \r\n\r\n",                       /* space after version */
        "GET /\r\n\r\n",                                 /* HTTP/0.9 */
        "GET / http/1.1\r\n\r\n",                        /* lower-case protocol */
        "GET / HTTX/1.1\r\n\r\n",                        /* wrong name */
        "GET / HTTP/11\r\n\r\n",                         /* no dot */
        "GET / HTTP/1.10\r\n\r\n",                       /* two-digit minor */
        "GET / HTTP/a.1\r\n\r\n",                        /* letter major */
        "GET / RTSP/1.x\r\n\r\n",                        /* letter minor */
        "GET / HTTP/1.1\rX\n\r\n",                       /* bare CR after version */
        "\rGET / HTTP/1.1\r\n\r\n",                      /* bare CR before request line */
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",            /* space before colon */
        "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",           /* tab before colon */
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  /* obs-fold */
        "GET / HTTP/1.1\r\nHost: x\r\n\tfolded\r\n\r\n", /* obs-fold with tab */
        "GET / HTTP/1.1\r\n Host: x\r\n\r\n",            /* leading space on first header */
        "GET / HTTP/1.1\r\n: x\r\n\r\n",                 /* empty name */
        "GET / HTTP/1.1\r\nHost\r\n\r\n",                /* no colon */
        "GET / HTTP/1.1\r\nHo\"st: x\r\n\r\n",           /* non-token name */
        "GET / HTTP/1.1\r\nHost: a\x01z\r\n\r\n",        /* control in value */
        "GET / HTTP/1.1\r\nHost: a\x7fz\r\n\r\n",        /* DEL in value */
        "GET / HTTP/1.1\r\nHost: a\rz\r\n\r\n",          /* bare CR in value */
        "GET / HTTP/1.1\r\nHost: a\r\n\rX",              /* bare CR at end of head */
    };
    for (size_t v = 0; v < CH_ARRAY_SIZE(bad); v++) {
        size_t n = strlen(bad[v]);
        ch_proto_request_t req;
        for (size_t cut = 0; cut < n; cut++) {
            int rc = parse_exact(bad[v], cut, &req, MAX_H);
            if (rc != CH_EAGAIN && rc != CH_EPARSE) {
                fail_msg("bad head %zu cut at %zu: rc %d", v, cut, rc);
            }
        }
        int rc = parse_exact(bad[v], n, &req, MAX_H);
        if (rc != CH_EPARSE) {
            fail_msg("bad head %zu (%s): rc %d, want CH_EPARSE", v, bad[v], rc);
        }
    }
}

static void test_nul_bytes_are_refused_in_every_part(void **state)
{
    static const char nul_value[] = "GET / HTTP/1.1\r\nA: x\0y\r\n\r\n";
    static const char nul_target[] = "GET /\0 HTTP/1.1\r\n\r\n";
    static const char nul_method[] = "G\0T / HTTP/1.1\r\n\r\n";
    ch_proto_request_t req;
    assert_int_equal(parse_exact(nul_value, sizeof(nul_value) - 1, &req, MAX_H), CH_EPARSE);
    assert_int_equal(parse_exact(nul_target, sizeof(nul_target) - 1, &req, MAX_H), CH_EPARSE);
    assert_int_equal(parse_exact(nul_method, sizeof(nul_method) - 1, &req, MAX_H), CH_EPARSE);
}

static void test_malformed_request_line_is_refused_before_the_head_ends(void **state)
{
    ch_proto_request_t req;
    /* A server can refuse garbage at once instead of waiting for a head that never ends. */
    assert_int_equal(parse_str("\x16\x03\x01\x02", &req), CH_EPARSE); /* a TLS hello */
    assert_int_equal(parse_str("GET / HTTP/1.1\r\nBad Name", &req), CH_EPARSE);
}

static void test_header_capacity_is_enforced_exactly(void **state)
{
    ch_proto_request_t req;
    const char *s = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    size_t n = strlen(s);
    assert_int_equal(parse_exact(s, n, &req, 3), (int)n);
    assert_int_equal(req.num_headers, 3);
    assert_int_equal(parse_exact(s, n, &req, 2), CH_ETOOBIG);
    assert_int_equal(parse_exact(s, n, &req, 0), CH_ETOOBIG);
    const char *none = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_exact(none, strlen(none), &req, 0), (int)strlen(none));
    /* Over capacity is known as soon as the extra header starts. */
    const char *partial = "GET / HTTP/1.1\r\nA: 1\r\nB";
    assert_int_equal(parse_exact(partial, strlen(partial), &req, 1), CH_ETOOBIG);
}

static void test_header_find_ignores_ascii_case(void **state)
{
    ch_proto_request_t req;
    const char *s = "GET / HTTP/1.1\r\ncontent-TYPE: a\r\nX: b\r\n\r\n";
    assert_true(parse_str(s, &req) > 0);
    const ch_proto_header_t *h = ch_proto_header_find(req.headers, req.num_headers, "Content-Type");
    assert_non_null(h);
    assert_slice(h->value, "a");
    assert_null(ch_proto_header_find(req.headers, req.num_headers, "Content-Typ"));
    assert_null(ch_proto_header_find(req.headers, req.num_headers, "Y"));
}

/* Builds a header list from name/value C strings, NULL-terminated. */
static size_t make_headers(ch_proto_header_t *h, const char *const *nv)
{
    size_t n = 0;
    for (; nv[2 * n]; n++) {
        h[n].name = (ch_slice_t){nv[2 * n], strlen(nv[2 * n])};
        h[n].value = (ch_slice_t){nv[2 * n + 1], strlen(nv[2 * n + 1])};
    }
    return n;
}

static int content_length_of(const char *const *nv, uint64_t *out)
{
    ch_proto_header_t h[8];
    size_t n = make_headers(h, nv);
    return ch_proto_content_length(h, n, out);
}

static void test_content_length_accepts_only_strict_digits(void **state)
{
    uint64_t v = 99;
    assert_int_equal(content_length_of((const char *[]){"Content-Length", "42", NULL}, &v), 0);
    assert_true(v == 42);
    assert_int_equal(content_length_of((const char *[]){"content-length", "0", NULL}, &v), 0);
    assert_true(v == 0);
    assert_int_equal(content_length_of((const char *[]){"Content-Length", "007", NULL}, &v), 0);
    assert_true(v == 7);
    assert_int_equal(content_length_of((const char *[]){"Host", "x", NULL}, &v), CH_ENOENT);
    static const char *const bad[] = {"", "+5", "-1", " 5", "5 ", "5,5", "0x10", "1e3", "five"};
    for (size_t k = 0; k < CH_ARRAY_SIZE(bad); k++) {
        int rc = content_length_of((const char *[]){"Content-Length", bad[k], NULL}, &v);
        if (rc != CH_EPARSE) {
            fail_msg("Content-Length \"%s\": rc %d, want CH_EPARSE", bad[k], rc);
        }
    }
}

static void test_content_length_overflow_is_refused(void **state)
{
    uint64_t v = 0;
    const char *max = "9223372036854775807";
    assert_int_equal(content_length_of((const char *[]){"Content-Length", max, NULL}, &v), 0);
    assert_true(v == (uint64_t)INT64_MAX);
    const char *over = "9223372036854775808";
    assert_int_equal(content_length_of((const char *[]){"Content-Length", over, NULL}, &v),
                     CH_EPARSE);
    const char *huge = "184467440737095516160";
    assert_int_equal(content_length_of((const char *[]){"Content-Length", huge, NULL}, &v),
                     CH_EPARSE);
}

static void test_content_length_duplicates_must_agree(void **state)
{
    uint64_t v = 0;
    assert_int_equal(
        content_length_of((const char *[]){"Content-Length", "5", "content-length", "5", NULL}, &v),
        0);
    assert_true(v == 5);
    assert_int_equal(
        content_length_of((const char *[]){"Content-Length", "5", "Content-Length", "6", NULL}, &v),
        CH_EPARSE);
    assert_int_equal(
        content_length_of((const char *[]){"Content-Length", "5", "Content-Length", "x", NULL}, &v),
        CH_EPARSE);
}

static int framing_of(const char *const *nv, ch_proto_framing_t *f)
{
    ch_proto_header_t h[8];
    size_t n = make_headers(h, nv);
    return ch_proto_framing(h, n, f);
}

static void test_framing_reads_transfer_encoding_connection_and_expect(void **state)
{
    ch_proto_framing_t f;
    assert_int_equal(framing_of((const char *[]){"Transfer-Encoding", "chunked", NULL}, &f), 0);
    assert_true(f.transfer_encoding && f.chunked && !f.has_content_length);
    assert_int_equal(framing_of((const char *[]){"Transfer-Encoding", "gzip, Chunked", NULL}, &f),
                     0);
    assert_true(f.transfer_encoding && f.chunked);
    assert_int_equal(framing_of((const char *[]){"Transfer-Encoding", "chunked, gzip", NULL}, &f),
                     0);
    assert_true(f.transfer_encoding && !f.chunked);
    assert_int_equal(framing_of((const char *[]){"Transfer-Encoding", "", NULL}, &f), CH_EPARSE);

    assert_int_equal(
        framing_of((const char *[]){"Connection", "Keep-Alive, ,Upgrade", "Content-Length", "3",
                                    "Expect", "100-Continue", NULL},
                   &f),
        0);
    assert_true(f.conn_keep_alive && f.conn_upgrade && !f.conn_close);
    assert_true(f.has_content_length && f.content_length == 3);
    assert_true(f.expect_continue);
    assert_int_equal(framing_of((const char *[]){"Connection", "closed, keep-alives", NULL}, &f),
                     0);
    assert_true(!f.conn_close && !f.conn_keep_alive);
    assert_int_equal(framing_of((const char *[]){"Connection", "close", NULL}, &f), 0);
    assert_true(f.conn_close);
    assert_int_equal(
        framing_of((const char *[]){"Content-Length", "1", "Content-Length", "2", NULL}, &f),
        CH_EPARSE);
}

static void test_keep_alive_follows_http_1_0_and_1_1_rules(void **state)
{
    ch_proto_request_t req;
    ch_proto_framing_t f;
    struct {
        const char *head;
        int keep;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
        {"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", 1},
    };
    for (size_t k = 0; k < CH_ARRAY_SIZE(cases); k++) {
        assert_true(parse_str(cases[k].head, &req) > 0);
        assert_int_equal(ch_proto_framing(req.headers, req.num_headers, &f), 0);
        if (ch_proto_keep_alive(&req, &f) != cases[k].keep) {
            fail_msg("case %zu: keep-alive is not %d", k, cases[k].keep);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get_is_parsed_into_slices),
        cmocka_unit_test(test_head_length_excludes_the_body_that_follows),
        cmocka_unit_test(test_bare_lf_line_ends_are_accepted),
        cmocka_unit_test(test_empty_lines_before_the_request_line_are_skipped),
        cmocka_unit_test(test_header_values_are_trimmed_and_may_be_empty),
        cmocka_unit_test(test_token_characters_are_accepted_in_method_and_names),
        cmocka_unit_test(test_rtsp_request_line_is_recognised),
        cmocka_unit_test(test_other_versions_parse_for_the_server_to_refuse),
        cmocka_unit_test(test_partial_heads_at_every_split_point_ask_for_more),
        cmocka_unit_test(test_each_malformed_head_is_refused),
        cmocka_unit_test(test_nul_bytes_are_refused_in_every_part),
        cmocka_unit_test(test_malformed_request_line_is_refused_before_the_head_ends),
        cmocka_unit_test(test_header_capacity_is_enforced_exactly),
        cmocka_unit_test(test_header_find_ignores_ascii_case),
        cmocka_unit_test(test_content_length_accepts_only_strict_digits),
        cmocka_unit_test(test_content_length_overflow_is_refused),
        cmocka_unit_test(test_content_length_duplicates_must_agree),
        cmocka_unit_test(test_framing_reads_transfer_encoding_connection_and_expect),
        cmocka_unit_test(test_keep_alive_follows_http_1_0_and_1_1_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
