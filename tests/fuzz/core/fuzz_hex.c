/*
 * fuzz_hex: the hex pair of core (ch_hex_encode, ch_hex_decode, ch_hex_digit) fed arbitrary
 * bytes. Whatever comes in: no crash or overflow; decoding succeeds exactly when the length is
 * even and every byte is a digit by ch_hex_digit (and, with CH_HEX_LOWER_ONLY, none is A-F);
 * what decodes encodes back to the input up to case (exactly, in the case asked for, when the
 * input had one case); and the input as bytes encodes, whole or cut at any buffer size, in
 * either case, to text that decodes back to the same bytes.
 *
 * Input: the first byte picks an output size for the cut encoding; the rest is both the text
 * to decode and the bytes to encode.
 */
#include "core/core.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What decoding must answer, worked out byte by byte apart from the code under test. */
static int expected(const char *t, size_t n, unsigned flags)
{
    if (n % 2 != 0) {
        return CH_EPARSE;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (ch_hex_digit(c) < 0 || ((flags & CH_HEX_LOWER_ONLY) && c >= 'A' && c <= 'F')) {
            return CH_EPARSE;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t cut = data[0];
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    uint8_t *bin = malloc(n / 2 + 1);
    char *back = malloc(n + 1);
    char *enc = malloc(2 * n + 1);
    uint8_t *again = malloc(n + 1);
    assert(bin && back && enc && again);

    for (unsigned flags = 0; flags <= CH_HEX_LOWER_ONLY; flags += CH_HEX_LOWER_ONLY) {
        int rc = ch_hex_decode(text, n, bin, n / 2, flags);
        assert(rc == expected(text, n, flags));
        if (rc == 0) {
            /* Too small a buffer is refused before any digit is read. */
            if (n > 0) {
                assert(ch_hex_decode(text, n, bin, n / 2 - 1, flags) == CH_ETOOBIG);
            }
            for (unsigned enc_flags = 0; enc_flags <= CH_HEX_UPPER; enc_flags++) {
                assert(ch_hex_encode(back, n + 1, bin, n / 2, enc_flags) == n);
                assert(back[n] == '\0');
                for (size_t i = 0; i < n; i++) {
                    unsigned char a = (unsigned char)text[i], b = (unsigned char)back[i];
                    assert(ch_hex_digit(a) == ch_hex_digit(b));
                    assert(enc_flags ? !(b >= 'a' && b <= 'f') : !(b >= 'A' && b <= 'F'));
                }
            }
        }
    }

    /* The input as bytes: encoded whole and cut, in both cases, it decodes back. */
    for (unsigned enc_flags = 0; enc_flags <= CH_HEX_UPPER; enc_flags++) {
        assert(ch_hex_encode(enc, 2 * n + 1, data + 1, n, enc_flags) == 2 * n);
        assert(strlen(enc) == 2 * n);
        assert(ch_hex_decode(enc, 2 * n, again, n, enc_flags ? 0 : CH_HEX_LOWER_ONLY) == 0);
        assert(n == 0 || memcmp(again, data + 1, n) == 0);
        size_t out_size = cut < 2 * n + 1 ? cut : 2 * n + 1;
        enc[0] = 'x';
        assert(ch_hex_encode(enc, out_size, data + 1, n, enc_flags) == 2 * n);
        if (out_size == 0) {
            assert(enc[0] == 'x');
        } else {
            size_t kept = strlen(enc);
            assert(kept % 2 == 0 && kept == 2 * ((out_size - 1) / 2));
            assert(ch_hex_decode(enc, kept, again, n, 0) == 0);
            assert(kept == 0 || memcmp(again, data + 1, kept / 2) == 0);
        }
    }
    free(bin);
    free(back);
    free(enc);
    free(again);
    return 0;
}
