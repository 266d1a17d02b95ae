/*
 * libFuzzer target for view tokens (src/event/event_token.c), with a fixed node key pair:
 *
 *  - any bytes through ch_event_token_verify: the answer is 0, CH_EPARSE, CH_EPERM or
 *    CH_EEXPIRED; a refused token leaves the claims zeroed; an accepted one (valid or expired)
 *    is exactly the token ch_event_token_make makes from its claims, byte for byte, so no
 *    second spelling of a token (padding bits, leading zeros, a sign) ever verifies;
 *  - claims derived from the input (non-negative, up to INT64_MAX) through make and verify:
 *    they come back equal, valid one second before the expiry and CH_EEXPIRED at it, and the
 *    token with one byte changed (where and to what the input says) is refused.
 *
 * Seeds: tests/fuzz/corpus/fuzz_event_token/ (tokens signed with this target's key, expired
 * ones, near misses: one byte off, cut, another key, signed payloads that are not claims).
 */
#include <assert.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "event/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "now" for the verification of the input: 2026-01-01T00:00:00Z. */
#define NOW_S 1767225600LL

static uint8_t pk[crypto_sign_PUBLICKEYBYTES];
static uint8_t sk[crypto_sign_SECRETKEYBYTES];

static void keys(void)
{
    static int done;
    if (done) {
        return;
    }
    /* The seed of the key the corpus was signed with. */
    static const uint8_t seed[crypto_sign_SEEDBYTES] = "cctvhub fuzz_event_token key 01";
    assert(sodium_init() >= 0);
    crypto_sign_seed_keypair(pk, sk, seed);
    done = 1;
}

static int64_t take(const uint8_t *data, size_t size, size_t *pos)
{
    uint64_t v = 0;
    for (size_t k = 0; k < 8; k++) {
        v = (v << 8) | (*pos < size ? data[(*pos)++] : 0);
    }
    return (int64_t)(v & (uint64_t)INT64_MAX);
}

static void check_input_as_token(const uint8_t *data, size_t size)
{
    ch_event_claims_t c;
    memset(&c, 0x5a, sizeof(c));
    int rc = ch_event_token_verify(pk, (const char *)data, size, NOW_S, &c);
    assert(rc == 0 || rc == CH_EPARSE || rc == CH_EPERM || rc == CH_EEXPIRED);
    if (rc == CH_EPARSE || rc == CH_EPERM) {
        static const ch_event_claims_t zero;
        assert(memcmp(&c, &zero, sizeof(c)) == 0);
        return;
    }
    assert(rc == 0 ? NOW_S < c.expires_s : NOW_S >= c.expires_s);
    assert(c.grant_id >= 0 && c.event_id >= 0 && c.camera_id >= 0 && c.agency_id >= 0);
    char again[CH_EVENT_TOKEN_MAX];
    ch_event_token_make(sk, &c, again);
    assert(strlen(again) == size && memcmp(again, data, size) == 0);
}

static void check_round_trip(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    ch_event_claims_t in;
    in.grant_id = take(data, size, &pos);
    in.event_id = take(data, size, &pos);
    in.camera_id = take(data, size, &pos);
    in.agency_id = take(data, size, &pos);
    in.expires_s = take(data, size, &pos);
    /* Small numbers too, not only 19-digit ones: the input's first byte scales them down. */
    if (size > 0 && (data[0] & 1) != 0) {
        unsigned shift = (unsigned)(data[0] >> 1) % 63;
        in.grant_id >>= shift;
        in.event_id >>= shift;
        in.camera_id >>= shift;
        in.agency_id >>= shift;
        in.expires_s >>= shift;
    }
    char tok[CH_EVENT_TOKEN_MAX];
    memset(tok, 0x7f, sizeof(tok));
    ch_event_token_make(sk, &in, tok);
    size_t len = strnlen(tok, sizeof(tok));
    assert(len > 3 && len < CH_EVENT_TOKEN_MAX && memcmp(tok, "v1.", 3) == 0);

    ch_event_claims_t out;
    if (in.expires_s > 0) {
        assert(ch_event_token_verify(pk, tok, len, in.expires_s - 1, &out) == 0);
        assert(memcmp(&in, &out, sizeof(in)) == 0);
    }
    assert(ch_event_token_verify(pk, tok, len, in.expires_s, &out) == CH_EEXPIRED);
    assert(memcmp(&in, &out, sizeof(in)) == 0);

    /* One byte changed, where and to what the input says: refused. */
    if (size > pos + 1) {
        size_t at = data[pos] % len;
        char was = tok[at];
        tok[at] = (char)data[pos + 1];
        if (tok[at] != was) {
            int rc = ch_event_token_verify(pk, tok, len, 0, &out);
            assert(rc == CH_EPARSE || rc == CH_EPERM);
        }
        tok[at] = was;
    }
    /* Cut anywhere: refused. */
    if (size > pos + 2) {
        size_t cut = data[pos + 2] % len;
        int rc = ch_event_token_verify(pk, tok, cut, 0, &out);
        assert(rc == CH_EPARSE || rc == CH_EPERM);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keys();
    check_input_as_token(data, size);
    check_round_trip(data, size);
    return 0;
}
