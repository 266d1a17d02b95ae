/*
 * WebSocket pieces of proto/: the handshake's accept value (RFC 6455's own example), server
 * frame headers at each length form, and the reader of client frames (unmasking, incomplete
 * input, and every refusal).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "proto/proto.h"

static void test_accept_is_rfc_6455s_example(void **state)
{
    (void)state;
    char out[CH_PROTO_WS_ACCEPT_LEN + 1];
    assert_int_equal(ch_proto_ws_accept(CH_SLICE_LIT("dGhlIHNhbXBsZSBub25jZQ=="), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(ch_proto_ws_accept(CH_SLICE_LIT("short"), out), CH_EPARSE);
    assert_int_equal(ch_proto_ws_accept(CH_SLICE_LIT("dGhlIHNhbXBsZSBub25jZQ\"="), out), CH_EPARSE);
}

/* The handshake of a request head, as a server reads it. */
static int handshake(const char *head, char accept[CH_PROTO_WS_ACCEPT_LEN + 1])
{
    ch_proto_header_t h[16];
    ch_proto_request_t req;
    assert_true(ch_proto_parse_request(head, strlen(head), &req, h, 16) > 0);
    if (!ch_proto_ws_upgrade_asked(&req)) {
        return CH_EPARSE;
    }
    return ch_proto_ws_handshake(&req, accept);
}

static void test_an_upgrade_needs_upgrade_connection_key_and_version_13(void **state)
{
    (void)state;
    char acc[CH_PROTO_WS_ACCEPT_LEN + 1];
    assert_int_equal(handshake("GET /live HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n"
                               "Connection: keep-alive, Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n",
                               acc),
                     0);
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ch_buf_t b;
    ch_buf_init(&b);
    ch_proto_ws_switching(acc, &b);
    ch_buf_append_char(&b, '\0');
    assert_string_equal(b.data, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    ch_buf_fini(&b);
    /* Not an upgrade, or no usable key: CH_EPARSE; another version: CH_EUNSUPP. */
    assert_int_equal(handshake("GET / HTTP/1.1\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n",
                               acc),
                     CH_EPARSE);
    assert_int_equal(handshake("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgraded\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n",
                               acc),
                     CH_EPARSE);
    assert_int_equal(handshake("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
                               acc),
                     CH_EPARSE);
    assert_int_equal(handshake("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                               acc),
                     CH_EUNSUPP);
    assert_int_equal(handshake("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 8\r\n\r\n",
                               acc),
                     CH_EUNSUPP);
}

static void test_server_headers_use_the_shortest_length_form(void **state)
{
    (void)state;
    uint8_t h[CH_PROTO_WS_HEADER_MAX];
    assert_int_equal(ch_proto_ws_header(CH_PROTO_WS_BINARY, 125, h), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(ch_proto_ws_header(CH_PROTO_WS_TEXT, 126, h), 4);
    assert_memory_equal(h, "\x81\x7e\x00\x7e", 4);
    assert_int_equal(ch_proto_ws_header(CH_PROTO_WS_BINARY, 65535, h), 4);
    assert_memory_equal(h, "\x82\x7e\xff\xff", 4);
    assert_int_equal(ch_proto_ws_header(CH_PROTO_WS_BINARY, 65536, h), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

static void test_reader_unmasks_and_waits_for_whole_frames(void **state)
{
    (void)state;
    /* RFC 6455 section 5.7: a masked "Hello". */
    uint8_t f[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    ch_proto_ws_frame_t out;
    for (size_t n = 0; n < sizeof(f); n++) {
        uint8_t copy[sizeof(f)];
        memcpy(copy, f, sizeof(f));
        assert_int_equal(ch_proto_ws_read(copy, n, 1024, &out), CH_EAGAIN);
    }
    assert_int_equal(ch_proto_ws_read(f, sizeof(f), 1024, &out), (int)sizeof(f));
    assert_int_equal(out.opcode, CH_PROTO_WS_TEXT);
    assert_int_equal(out.fin, 1);
    assert_int_equal(out.payload_len, 5);
    assert_memory_equal(out.payload, "Hello", 5);
}

static void test_reader_refuses_what_a_client_must_not_send(void **state)
{
    (void)state;
    ch_proto_ws_frame_t out;
    uint8_t unmasked[] = {0x81, 0x02, 'h', 'i'};
    assert_int_equal(ch_proto_ws_read(unmasked, sizeof(unmasked), 1024, &out), CH_EPARSE);
    uint8_t rsv[] = {0xc1, 0x80, 0, 0, 0, 0};
    assert_int_equal(ch_proto_ws_read(rsv, sizeof(rsv), 1024, &out), CH_EPARSE);
    uint8_t opcode3[] = {0x83, 0x80, 0, 0, 0, 0};
    assert_int_equal(ch_proto_ws_read(opcode3, sizeof(opcode3), 1024, &out), CH_EPARSE);
    uint8_t frag_ping[] = {0x09, 0x80, 0, 0, 0, 0};
    assert_int_equal(ch_proto_ws_read(frag_ping, sizeof(frag_ping), 1024, &out), CH_EPARSE);
    uint8_t long_ping[] = {0x89, 0xfe, 0x00, 0x7e};
    assert_int_equal(ch_proto_ws_read(long_ping, sizeof(long_ping), 1024, &out), CH_EPARSE);
    uint8_t not_shortest[] = {0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4};
    assert_int_equal(ch_proto_ws_read(not_shortest, sizeof(not_shortest), 1024, &out), CH_EPARSE);
    uint8_t big[] = {0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4};
    assert_int_equal(ch_proto_ws_read(big, sizeof(big), 1024, &out), CH_ETOOBIG);
    uint8_t top_bit[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(ch_proto_ws_read(top_bit, sizeof(top_bit), 1u << 30, &out), CH_EPARSE);
}

static void test_replies_pong_a_ping_and_echo_a_close_code(void **state)
{
    (void)state;
    ch_proto_ws_reply_t r;
    uint8_t ping_payload[] = {'h', 'i'};
    ch_proto_ws_frame_t ping = {1, CH_PROTO_WS_PING, ping_payload, 2};
    ch_proto_ws_reply(&ping, &r);
    assert_int_equal(r.close, 0);
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.bytes, "\x8a\x02hi", 4);

    /* The echo of a close keeps its status code and drops the reason. */
    uint8_t close_payload[] = {0x03, 0xe8, 'b', 'y', 'e'};
    ch_proto_ws_frame_t bye = {1, CH_PROTO_WS_CLOSE, close_payload, 5};
    ch_proto_ws_reply(&bye, &r);
    assert_int_equal(r.close, 1);
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.bytes, "\x88\x02\x03\xe8", 4);

    ch_proto_ws_frame_t empty = {1, CH_PROTO_WS_CLOSE, close_payload, 0};
    ch_proto_ws_reply(&empty, &r);
    assert_int_equal(r.close, 1);
    assert_int_equal(r.len, 2);
    assert_memory_equal(r.bytes, "\x88\x00", 2);

    /* A 1-byte close body is a protocol error: 1002. */
    ch_proto_ws_frame_t one = {1, CH_PROTO_WS_CLOSE, close_payload, 1};
    ch_proto_ws_reply(&one, &r);
    assert_int_equal(r.close, 1);
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.bytes, "\x88\x02\x03\xea", 4);

    ch_proto_ws_frame_t pong = {1, CH_PROTO_WS_PONG, ping_payload, 2};
    ch_proto_ws_reply(&pong, &r);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.close, 0);
    ch_proto_ws_frame_t text = {1, CH_PROTO_WS_TEXT, ping_payload, 2};
    ch_proto_ws_reply(&text, &r);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.close, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_is_rfc_6455s_example),
        cmocka_unit_test(test_an_upgrade_needs_upgrade_connection_key_and_version_13),
        cmocka_unit_test(test_server_headers_use_the_shortest_length_form),
        cmocka_unit_test(test_reader_unmasks_and_waits_for_whole_frames),
        cmocka_unit_test(test_reader_refuses_what_a_client_must_not_send),
        cmocka_unit_test(test_replies_pong_a_ping_and_echo_a_close_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
