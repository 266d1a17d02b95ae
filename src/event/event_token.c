/*
 * event/event_token.c: view tokens. A token is checked with the node's public key alone, so
 * the relay (or any process holding keys/node.pub) admits a viewer without the database; an
 * early end (close, revocation) reaches the relay as a notice instead.
 */
#include "event/event.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define CONTEXT "cctvhub-view-token-v1."

static void sign_input(const char *payload_b64, size_t n, unsigned char *buf, size_t *len)
{
    size_t c = sizeof(CONTEXT) - 1;
    memcpy(buf, CONTEXT, c);
    memcpy(buf + c, payload_b64, n);
    *len = c + n;
}

void ch_event_token_make(const uint8_t sk[64], const ch_event_claims_t *c,
                         char out[CH_EVENT_TOKEN_MAX])
{
    char payload[128];
    int n = snprintf(payload, sizeof(payload), "%lld.%lld.%lld.%lld.%lld", (long long)c->grant_id,
                     (long long)c->event_id, (long long)c->camera_id, (long long)c->agency_id,
                     (long long)c->expires_s);
    char p64[180];
    sodium_bin2base64(p64, sizeof(p64), (const unsigned char *)payload, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    unsigned char msg[256];
    size_t mlen = 0;
    sign_input(p64, strlen(p64), msg, &mlen);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, msg, mlen, sk);
    char s64[100];
    sodium_bin2base64(s64, sizeof(s64), sig, sizeof(sig), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    int w = snprintf(out, CH_EVENT_TOKEN_MAX, "v1.%s.%s", p64, s64);
    if (w < 0 || w >= CH_EVENT_TOKEN_MAX) {
        out[0] = '\0'; /* not reached: five numbers and a signature fit */
    }
}

/* Parses "a.b.c.d.e" of positive decimal numbers. */
static int parse_claims(const char *p, size_t n, ch_event_claims_t *c)
{
    int64_t v[5];
    size_t k = 0, i = 0;
    while (k < 5) {
        int64_t x = 0;
        size_t start = i;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            int d = p[i] - '0';
            if (x > (INT64_MAX - d) / 10) {
                return CH_EPARSE;
            }
            x = x * 10 + d;
            i++;
        }
        if (i == start || (i - start > 1 && p[start] == '0')) {
            return CH_EPARSE;
        }
        v[k++] = x;
        if (k < 5) {
            if (i >= n || p[i] != '.') {
                return CH_EPARSE;
            }
            i++;
        }
    }
    if (i != n) {
        return CH_EPARSE;
    }
    c->grant_id = v[0];
    c->event_id = v[1];
    c->camera_id = v[2];
    c->agency_id = v[3];
    c->expires_s = v[4];
    return 0;
}

int ch_event_token_verify(const uint8_t pk[32], const char *token, size_t len, int64_t now_s,
                          ch_event_claims_t *c)
{
    memset(c, 0, sizeof(*c));
    if (len < 4 || len >= CH_EVENT_TOKEN_MAX || memcmp(token, "v1.", 3) != 0) {
        return CH_EPARSE;
    }
    /* Only the base64url alphabet and dots: libsodium 1.0.18 decodes any byte >= 0x80 as '_',
     * which would let one token be spelled many ways. */
    for (size_t i = 0; i < len; i++) {
        char ch = token[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.')) {
            return CH_EPARSE;
        }
    }
    const char *p64 = token + 3;
    const char *dot = memchr(p64, '.', len - 3);
    if (dot == NULL) {
        return CH_EPARSE;
    }
    size_t plen = (size_t)(dot - p64);
    const char *s64 = dot + 1;
    size_t slen = len - 3 - plen - 1;
    unsigned char sig[crypto_sign_BYTES];
    size_t sig_len = 0;
    char payload[128];
    size_t payload_len = 0;
    if (sodium_init() < 0 ||
        sodium_base642bin(sig, sizeof(sig), s64, slen, NULL, &sig_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        sig_len != sizeof(sig) ||
        sodium_base642bin((unsigned char *)payload, sizeof(payload) - 1, p64, plen, NULL,
                          &payload_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        return CH_EPARSE;
    }
    unsigned char msg[256];
    size_t mlen = 0;
    if (plen > sizeof(msg) - sizeof(CONTEXT)) {
        return CH_EPARSE;
    }
    sign_input(p64, plen, msg, &mlen);
    if (crypto_sign_verify_detached(sig, msg, mlen, pk) != 0) {
        return CH_EPERM;
    }
    if (parse_claims(payload, payload_len, c) != 0) {
        return CH_EPARSE;
    }
    return now_s >= c->expires_s ? CH_EEXPIRED : 0;
}
