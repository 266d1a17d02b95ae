/*
 * proto/ws.c: WebSocket (RFC 6455) for the browsers' live video and live alerts: the opening
 * handshake's check and accept value, frame headers the server sends (unmasked, built once per
 * message and shared by every viewer), and the reader of what browsers send (masked frames: close,
 * ping, and data the hub has no use for).
 */
#include "proto/proto.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

int ch_proto_ws_accept(ch_slice_t key, char out[CH_PROTO_WS_ACCEPT_LEN + 1])
{
    /* The key is the base64 of 16 bytes: 24 characters. */
    if (key.len != 24) {
        return CH_EPARSE;
    }
    for (size_t i = 0; i < key.len; i++) {
        char ch = key.ptr[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '+' || ch == '/' || (ch == '=' && i >= 22);
        if (!ok) {
            return CH_EPARSE;
        }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, key.ptr, key.len) == 1 &&
             EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) == 1 &&
             EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 && dlen == 20;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return CH_EIO;
    }
    /* 20 bytes: 28 characters of base64 with one '='. */
    if (EVP_EncodeBlock((unsigned char *)out, digest, 20) != CH_PROTO_WS_ACCEPT_LEN) {
        return CH_EIO;
    }
    out[CH_PROTO_WS_ACCEPT_LEN] = '\0';
    return 0;
}

/* 1 when a header named name lists token (comma-separated, ASCII case-insensitive). */
static int header_has_token(const ch_proto_request_t *req, const char *name, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < req->num_headers; i++) {
        const ch_proto_header_t *h = &req->headers[i];
        if (!ch_slice_eq_nocase(h->name, name)) {
            continue;
        }
        for (size_t k = 0; k + tl <= h->value.len; k++) {
            if (strncasecmp(h->value.ptr + k, token, tl) == 0 &&
                (k == 0 || h->value.ptr[k - 1] == ' ' || h->value.ptr[k - 1] == ',') &&
                (k + tl == h->value.len || h->value.ptr[k + tl] == ',' ||
                 h->value.ptr[k + tl] == ' ')) {
                return 1;
            }
        }
    }
    return 0;
}

int ch_proto_ws_upgrade_asked(const ch_proto_request_t *req)
{
    return header_has_token(req, "upgrade", "websocket") &&
           header_has_token(req, "connection", "upgrade");
}

int ch_proto_ws_handshake(const ch_proto_request_t *req, char accept[CH_PROTO_WS_ACCEPT_LEN + 1])
{
    const ch_proto_header_t *key =
        ch_proto_header_find(req->headers, req->num_headers, "sec-websocket-key");
    const ch_proto_header_t *ver =
        ch_proto_header_find(req->headers, req->num_headers, "sec-websocket-version");
    if (key == NULL) {
        return CH_EPARSE;
    }
    int rc = ch_proto_ws_accept(key->value, accept);
    if (rc != 0) {
        return rc;
    }
    if (ver == NULL || !ch_slice_eq(ver->value, "13")) {
        return CH_EUNSUPP;
    }
    return 0;
}

void ch_proto_ws_switching(const char *accept, ch_buf_t *out)
{
    ch_buf_appendf(out,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   accept);
}

size_t ch_proto_ws_header(unsigned opcode, uint64_t len, uint8_t out[CH_PROTO_WS_HEADER_MAX])
{
    out[0] = (uint8_t)(0x80u | (opcode & 0x0fu)); /* FIN: one frame per message */
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    }
    return 10;
}

int ch_proto_ws_read(uint8_t *buf, size_t len, size_t max_payload, ch_proto_ws_frame_t *out)
{
    if (len < 2) {
        return CH_EAGAIN;
    }
    unsigned fin = buf[0] >> 7, rsv = (buf[0] >> 4) & 7u, opcode = buf[0] & 0x0fu;
    unsigned masked = buf[1] >> 7;
    uint64_t plen = buf[1] & 0x7fu;
    /* No extension was agreed: reserved bits are an error; so are unknown opcodes. */
    if (rsv != 0 || (opcode > 2 && opcode < 8) || opcode > 10) {
        return CH_EPARSE;
    }
    /* A client masks every frame (RFC 6455 section 5.1). */
    if (!masked) {
        return CH_EPARSE;
    }
    size_t hl = 2;
    if (plen == 126) {
        if (len < 4) {
            return CH_EAGAIN;
        }
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126) {
            return CH_EPARSE; /* not the shortest form */
        }
        hl = 4;
    } else if (plen == 127) {
        if (len < 10) {
            return CH_EAGAIN;
        }
        if (buf[2] & 0x80u) {
            return CH_EPARSE;
        }
        plen = 0;
        for (int i = 0; i < 8; i++) {
            plen = plen << 8 | buf[2 + i];
        }
        if (plen <= 0xffff) {
            return CH_EPARSE;
        }
        hl = 10;
    }
    /* Control frames are short and never fragmented. */
    if (opcode >= 8 && (plen > 125 || !fin)) {
        return CH_EPARSE;
    }
    if (plen > max_payload) {
        return CH_ETOOBIG;
    }
    if (len < hl + 4) {
        return CH_EAGAIN;
    }
    const uint8_t *key = buf + hl;
    hl += 4;
    if (len - hl < plen) {
        return CH_EAGAIN;
    }
    uint8_t *p = buf + hl;
    for (size_t i = 0; i < (size_t)plen; i++) {
        p[i] ^= key[i & 3];
    }
    out->fin = fin;
    out->opcode = opcode;
    out->payload = p;
    out->payload_len = (size_t)plen;
    return (int)(hl + plen);
}

size_t ch_proto_ws_close_frame(uint16_t code, uint8_t out[CH_PROTO_WS_CLOSE_FRAME_LEN])
{
    /* The header of a 2-byte payload is 2 bytes (ch_proto_ws_header's shortest form). */
    out[0] = (uint8_t)(0x80u | CH_PROTO_WS_CLOSE);
    out[1] = 2;
    out[2] = (uint8_t)(code >> 8);
    out[3] = (uint8_t)code;
    return CH_PROTO_WS_CLOSE_FRAME_LEN;
}

void ch_proto_ws_reply(const ch_proto_ws_frame_t *f, ch_proto_ws_reply_t *out)
{
    out->len = 0;
    out->close = 0;
    if (f->opcode == CH_PROTO_WS_PING) {
        /* A pong carries the ping's payload (section 5.5.3); a control payload is at most 125
         * bytes, which ch_proto_ws_read has checked. */
        size_t n = f->payload_len <= 125 ? f->payload_len : 125;
        size_t hl = ch_proto_ws_header(CH_PROTO_WS_PONG, n, out->bytes);
        if (n > 0) {
            memcpy(out->bytes + hl, f->payload, n);
        }
        out->len = hl + n;
        return;
    }
    if (f->opcode != CH_PROTO_WS_CLOSE) {
        return;
    }
    out->close = 1;
    if (f->payload_len == 1) {
        /* A close body is empty or starts with a 2-byte status code (section 5.5.1): one byte
         * is a protocol error, answered with 1002. */
        out->len = ch_proto_ws_close_frame(CH_PROTO_WS_PROTOCOL_ERROR, out->bytes);
    } else if (f->payload_len >= 2) {
        /* The echo carries the client's status code, not its reason (section 5.5.1). */
        out->len =
            ch_proto_ws_close_frame((uint16_t)(f->payload[0] << 8 | f->payload[1]), out->bytes);
    } else {
        out->len = ch_proto_ws_header(CH_PROTO_WS_CLOSE, 0, out->bytes);
    }
}
