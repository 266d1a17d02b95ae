/*
 * codec/rtp.c: the RTP header (RFC 3550 section 5.1) and a base64 decoder for the SDP.
 */
#include "codec/codec.h"

#include <string.h>

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Each length is checked against what is left before it is used, so a packet that lies about
 * its CSRC count, extension length or padding is refused without a read past its end. */
int ch_codec_rtp_parse(const uint8_t *pkt, size_t len, ch_codec_rtp_t *out)
{
    if (len < 12 || (pkt[0] >> 6) != 2) {
        return CH_EPARSE;
    }
    ch_codec_rtp_t r = {0};
    r.padding = (pkt[0] >> 5) & 1;
    r.extension = (pkt[0] >> 4) & 1;
    r.csrc_count = pkt[0] & 0x0f;
    r.marker = pkt[1] >> 7;
    r.payload_type = pkt[1] & 0x7f;
    r.seq = be16(pkt + 2);
    r.timestamp = be32(pkt + 4);
    r.ssrc = be32(pkt + 8);
    size_t off = 12 + 4 * (size_t)r.csrc_count;
    if (off > len) {
        return CH_EPARSE;
    }
    r.csrc = pkt + 12;
    if (r.extension) {
        if (len - off < 4) {
            return CH_EPARSE;
        }
        r.ext_profile = be16(pkt + off);
        r.ext_len = 4 * (size_t)be16(pkt + off + 2);
        off += 4;
        if (len - off < r.ext_len) {
            return CH_EPARSE;
        }
        r.ext = pkt + off;
        off += r.ext_len;
    }
    size_t end = len;
    if (r.padding) {
        /* The last byte counts the padding, itself included (section 5.1). */
        size_t pad = pkt[len - 1];
        if (pad == 0 || pad > len - off) {
            return CH_EPARSE;
        }
        end -= pad;
    }
    r.payload = pkt + off;
    r.payload_len = end - off;
    *out = r;
    return 0;
}

/* The value of a base64 character, or 64 for anything else ('=' included). The SDP is read
 * once per stream, so a few comparisons beat a table here. */
static unsigned b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26u;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52u;
    }
    return c == '+' ? 62u : c == '/' ? 63u : 64u;
}

/* Written here rather than taken from libcrypto: EVP_DecodeBlock neither reports the padding
 * nor rejects every malformed input, and twenty lines are cheaper than a dependency. */
int ch_codec_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    /* Padding: at most two '=', only at the end. */
    size_t data = len;
    while (data > 0 && in[data - 1] == '=' && len - data < 2) {
        data--;
    }
    if (data % 4 == 1 || (len != data && len % 4 != 0)) {
        return CH_EPARSE;
    }
    size_t need = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);
    if (need > cap || need > INT32_MAX) {
        return CH_ETOOBIG;
    }
    size_t o = 0;
    uint32_t acc = 0;
    unsigned nacc = 0;
    for (size_t i = 0; i < data; i++) {
        unsigned v = b64_value((unsigned char)in[i]);
        if (v > 63) {
            return CH_EPARSE;
        }
        acc = (acc << 6) | v;
        if (++nacc == 4) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
            nacc = 0;
        }
    }
    /* A final group of 2 or 3 characters: 1 or 2 bytes; the unused low bits must be zero,
     * so that one byte string has one encoding. */
    if (nacc == 2) {
        if (acc & 0x0f) {
            return CH_EPARSE;
        }
        out[o++] = (uint8_t)(acc >> 4);
    } else if (nacc == 3) {
        if (acc & 0x03) {
            return CH_EPARSE;
        }
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    return (int)o;
}
