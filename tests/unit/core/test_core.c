/* Unit tests of core: number parsing, byte buffers, logfmt quoting, fault injection, hex, error
 * texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static void test_parse_int64_accepts_only_whole_decimal_numbers(void **state)
{
    int64_t v = 0;
    assert_int_equal(ch_parse_int64("42", 2, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(ch_parse_int64("-9223372036854775808", 20, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(ch_parse_int64("9223372036854775808", 19, &v), CH_EPARSE);
    assert_int_equal(ch_parse_int64("", 0, &v), CH_EPARSE);
    assert_int_equal(ch_parse_int64("-", 1, &v), CH_EPARSE);
    assert_int_equal(ch_parse_int64("12a", 3, &v), CH_EPARSE);
    assert_int_equal(ch_parse_int64(" 1", 2, &v), CH_EPARSE);
}

static void test_parse_uint64_takes_20_digits_up_to_the_maximum_and_no_sign(void **state)
{
    uint64_t v = 0;
    assert_int_equal(ch_parse_uint64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(ch_parse_uint64("007", 3, &v), 0);
    assert_true(v == 7);
    assert_int_equal(ch_parse_uint64("18446744073709551616", 20, &v), CH_EPARSE);
    assert_int_equal(ch_parse_uint64("000000000000000000001", 21, &v), CH_EPARSE);
    assert_int_equal(ch_parse_uint64("+1", 2, &v), CH_EPARSE);
    assert_int_equal(ch_parse_uint64("", 0, &v), CH_EPARSE);
}

static void test_buf_read_file_appends_the_whole_file(void **state)
{
    char path[] = "/tmp/ch_test_core_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char big[200000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)('a' + i % 26);
    }
    assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
    close(fd);
    ch_buf_t b = {0};
    ch_buf_append_str(&b, "head:");
    assert_int_equal(ch_buf_read_file(&b, path), 0);
    assert_int_equal(b.len, 5 + sizeof(big));
    assert_memory_equal(b.data + 5, big, sizeof(big));
    assert_int_equal(b.data[b.len], '\0');
    unlink(path);
    assert_int_equal(ch_buf_read_file(&b, path), CH_ENOENT);
    ch_buf_fini(&b);
}

static void test_parse_double_rejects_inf_nan_and_hex(void **state)
{
    double d = 0;
    assert_int_equal(ch_parse_double("37.5665", 7, &d), 0);
    assert_true(d > 37.56 && d < 37.57);
    assert_int_equal(ch_parse_double("inf", 3, &d), CH_EPARSE);
    assert_int_equal(ch_parse_double("nan", 3, &d), CH_EPARSE);
    assert_int_equal(ch_parse_double("0x10", 4, &d), CH_EPARSE);
    assert_int_equal(ch_parse_double("1e999", 5, &d), CH_EPARSE);
    assert_int_equal(ch_parse_double(".", 1, &d), CH_EPARSE);
}

static void test_buf_grows_and_stays_nul_terminated(void **state)
{
    ch_buf_t b;
    ch_buf_init(&b);
    for (int i = 0; i < 1000; i++) {
        ch_buf_appendf(&b, "%d,", i);
    }
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data, "0,1,2,", 6);
    ch_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    char *s = ch_buf_steal(&b);
    assert_string_equal(s, "");
    ch_free(s);
    ch_buf_fini(&b);
}

static void test_log_quote_escapes_spaces_and_quotes(void **state)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_log_quote(&b, "plain");
    ch_buf_append_char(&b, ' ');
    ch_log_quote(&b, "two words \"q\"");
    ch_buf_append_char(&b, ' ');
    ch_log_quote(&b, "");
    assert_string_equal(b.data, "plain \"two words \\\"q\\\"\" \"\"");
    ch_buf_fini(&b);
}

static void test_try_malloc_fails_when_told(void **state)
{
    ch_alloc_fail_after(2);
    void *a = ch_try_malloc(10);
    void *b = ch_try_malloc(10);
    void *c = ch_try_malloc(10);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    ch_free(a);
    ch_free(c);
    ch_alloc_fail_after(0);
}

static void test_table_alloc_is_zeroed_and_fails_when_told(void **state)
{
    (void)state;
    /* Below and above the 2 MiB where a table gets its own (huge-page) mapping. */
    size_t sizes[] = {4096, ((size_t)2 << 20) - 16, (size_t)2 << 20, (size_t)9 << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *t = ch_table_alloc(sizes[i]);
        assert_non_null(t);
        for (size_t k = 0; k < sizes[i]; k += 4093) {
            assert_int_equal(t[k], 0);
            t[k] = 0xa5;
        }
        assert_int_equal(t[sizes[i] - 1], 0);
        t[sizes[i] - 1] = 1;
        ch_table_free(t, sizes[i]);
    }
    ch_table_free(NULL, (size_t)9 << 20);
    ch_alloc_fail_after(1);
    assert_null(ch_table_alloc((size_t)9 << 20));
    ch_alloc_fail_after(1);
    assert_null(ch_table_alloc(64));
    ch_alloc_fail_after(0);
}

static void test_rfc3339_formats_utc_with_millis(void **state)
{
    char out[32];
    ch_time_format_rfc3339(1764057600123LL, out);
    assert_string_equal(out, "2025-11-25T08:00:00.123Z");
}

static void test_time_parse_takes_rfc3339_dates_and_epoch_seconds(void **state)
{
    int64_t ns = 0;
    assert_int_equal(ch_time_parse_ns("2026-11-25T08:00:00Z", &ns), 0);
    assert_true(ns == 1795593600LL * 1000000000LL);
    assert_int_equal(ch_time_parse_ns("2026-11-25T17:00:00.5+09:00", &ns), 0);
    assert_true(ns == 1795593600LL * 1000000000LL + 500000000LL);
    assert_int_equal(ch_time_parse_ns("2026-11-25", &ns), 0);
    assert_true(ns == 1795564800LL * 1000000000LL);
    assert_int_equal(ch_time_parse_ns("1795593600", &ns), 0);
    assert_true(ns == 1795593600LL * 1000000000LL);
    assert_int_equal(ch_time_parse_ns("yesterday", &ns), CH_EPARSE);
    assert_int_equal(ch_time_parse_ns("2026-13-01", &ns), CH_EPARSE);
    assert_int_equal(ch_time_parse_ns("2026-11-25T08:00:00", &ns), CH_EPARSE);
    assert_int_equal(ch_time_parse_ns("", &ns), CH_EPARSE);
    /* Beyond what nanoseconds since the epoch hold in 64 bits (found by fuzz_query). */
    assert_int_equal(ch_time_parse_ns("8800-11-25T08:00:00Z", &ns), CH_EPARSE);
    assert_int_equal(ch_time_parse_ns("1970-01-01T08:00:00+09:00", &ns), CH_EPARSE);
}

static void test_hex_encode_writes_lowercase_or_uppercase_and_nul(void **state)
{
    const uint8_t bin[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff, 0x09, 0x0a};
    char out[2 * sizeof(bin) + 1];
    assert_int_equal(ch_hex_encode(out, sizeof(out), bin, sizeof(bin), 0), 20);
    assert_string_equal(out, "00017f80abcdefff090a");
    assert_int_equal(ch_hex_encode(out, sizeof(out), bin, sizeof(bin), CH_HEX_UPPER), 20);
    assert_string_equal(out, "00017F80ABCDEFFF090A");
    assert_int_equal(ch_hex_encode(out, sizeof(out), bin, 0, 0), 0);
    assert_string_equal(out, "");
    /* Every byte value, against the C library's spelling. */
    for (unsigned v = 0; v < 256; v++) {
        uint8_t b = (uint8_t)v;
        char want[3], got[3];
        snprintf(want, sizeof(want), "%02x", v);
        ch_hex_encode(got, sizeof(got), &b, 1, 0);
        assert_string_equal(got, want);
        snprintf(want, sizeof(want), "%02X", v);
        ch_hex_encode(got, sizeof(got), &b, 1, CH_HEX_UPPER);
        assert_string_equal(got, want);
    }
}

static void test_hex_encode_cuts_at_whole_bytes_like_snprintf(void **state)
{
    const uint8_t bin[] = {0xde, 0xad, 0xbe, 0xef};
    char out[9];
    memset(out, 'x', sizeof(out));
    /* 2n + 1 bytes hold it all; one less keeps only the whole bytes that fit. */
    assert_int_equal(ch_hex_encode(out, 9, bin, 4, 0), 8);
    assert_string_equal(out, "deadbeef");
    assert_int_equal(ch_hex_encode(out, 8, bin, 4, 0), 8);
    assert_string_equal(out, "deadbe");
    assert_int_equal(ch_hex_encode(out, 3, bin, 4, 0), 8);
    assert_string_equal(out, "de");
    assert_int_equal(ch_hex_encode(out, 2, bin, 4, 0), 8);
    assert_string_equal(out, "");
    assert_int_equal(ch_hex_encode(out, 1, bin, 4, 0), 8);
    assert_string_equal(out, "");
    out[0] = 'x';
    assert_int_equal(ch_hex_encode(out, 0, bin, 4, 0), 8);
    assert_int_equal(out[0], 'x');
}

static void test_hex_decode_round_trips_and_takes_either_case(void **state)
{
    uint8_t all[256], back[256];
    char text[513];
    for (unsigned v = 0; v < 256; v++) {
        all[v] = (uint8_t)v;
    }
    ch_hex_encode(text, sizeof(text), all, sizeof(all), 0);
    assert_int_equal(ch_hex_decode(text, 512, back, sizeof(back), 0), 0);
    assert_memory_equal(back, all, sizeof(all));
    assert_int_equal(ch_hex_decode(text, 512, back, sizeof(back), CH_HEX_LOWER_ONLY), 0);
    assert_memory_equal(back, all, sizeof(all));
    ch_hex_encode(text, sizeof(text), all, sizeof(all), CH_HEX_UPPER);
    memset(back, 0, sizeof(back));
    assert_int_equal(ch_hex_decode(text, 512, back, sizeof(back), 0), 0);
    assert_memory_equal(back, all, sizeof(all));

    uint8_t b[4];
    assert_int_equal(ch_hex_decode("DeAdBeEf", 8, b, sizeof(b), 0), 0);
    assert_memory_equal(b, "\xde\xad\xbe\xef", 4);
    /* Lowercase only: one capital anywhere is refused (key ids, stored hashes). */
    assert_int_equal(ch_hex_decode("deadbeeF", 8, b, sizeof(b), CH_HEX_LOWER_ONLY), CH_EPARSE);
    assert_int_equal(ch_hex_decode("Aeadbeef", 8, b, sizeof(b), CH_HEX_LOWER_ONLY), CH_EPARSE);
    assert_int_equal(ch_hex_decode("", 0, b, 0, 0), 0);
}

static void test_hex_decode_refuses_odd_lengths_other_bytes_and_small_buffers(void **state)
{
    uint8_t b[4];
    assert_int_equal(ch_hex_decode("abc", 3, b, sizeof(b), 0), CH_EPARSE);
    assert_int_equal(ch_hex_decode("a", 1, b, sizeof(b), 0), CH_EPARSE);
    const char *bad[] = {"0g", "g0", " 0", "0 ", "0x", "+1", "-1", "\3770", "/0", ":0", "@0", "`0"};
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        assert_int_equal(ch_hex_decode(bad[i], 2, b, sizeof(b), 0), CH_EPARSE);
    }
    /* A NUL inside the length is a byte like any other, not an end. */
    assert_int_equal(ch_hex_decode("ab\0\0", 4, b, sizeof(b), 0), CH_EPARSE);
    /* out_size counts bytes: 8 digits need 4. */
    assert_int_equal(ch_hex_decode("deadbeef", 8, b, 3, 0), CH_ETOOBIG);
    assert_int_equal(ch_hex_decode("deadbeef", 8, b, 4, 0), 0);
}

static void test_hex_digit_knows_only_0_9_a_f_and_A_F(void **state)
{
    for (int c = -1; c < 256; c++) {
        int want = -1;
        if (c >= '0' && c <= '9') {
            want = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            want = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            want = c - 'A' + 10;
        }
        assert_int_equal(ch_hex_digit(c), want);
    }
}

static void test_strerror_names_expired_apart_from_over_a_limit(void **state)
{
    assert_string_equal(ch_strerror(CH_EEXPIRED), "expired");
    assert_string_equal(ch_strerror(CH_ETOOBIG), "over a limit");
    assert_true(CH_EEXPIRED != CH_ETOOBIG);
    assert_true(CH_EEXPIRED < -4096);
}

static void test_fault_set_fills_and_returns_the_code_and_names_its_kind(void **state)
{
    (void)state;
    ch_fault_t f;
    assert_int_equal(ch_fault_set(&f, CH_EINVAL, CH_FAULT_INVALID, NULL, "duration_s",
                                  "duration_s must be %s", "positive"),
                     CH_EINVAL);
    assert_int_equal(f.kind, CH_FAULT_INVALID);
    assert_string_equal(f.field, "duration_s");
    assert_string_equal(f.message, "duration_s must be positive");
    assert_string_equal(ch_fault_code(&f), "invalid");
    ch_fault_set(&f, CH_EINVAL, CH_FAULT_INVALID, "outside", NULL, "x");
    assert_string_equal(ch_fault_code(&f), "outside");
    assert_string_equal(f.field, "");
    ch_fault_set(&f, CH_EIO, CH_FAULT_AUDIT, NULL, NULL, "x");
    assert_string_equal(ch_fault_code(&f), "audit_unavailable");
    f.kind = (ch_fault_kind_t)99;
    f.code = NULL;
    assert_string_equal(ch_fault_code(&f), "internal");
    assert_int_equal(ch_fault_set(NULL, CH_EPERM, CH_FAULT_DENIED, NULL, NULL, "x"), CH_EPERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_int64_accepts_only_whole_decimal_numbers),
        cmocka_unit_test(test_parse_uint64_takes_20_digits_up_to_the_maximum_and_no_sign),
        cmocka_unit_test(test_buf_read_file_appends_the_whole_file),
        cmocka_unit_test(test_parse_double_rejects_inf_nan_and_hex),
        cmocka_unit_test(test_buf_grows_and_stays_nul_terminated),
        cmocka_unit_test(test_log_quote_escapes_spaces_and_quotes),
        cmocka_unit_test(test_try_malloc_fails_when_told),
        cmocka_unit_test(test_table_alloc_is_zeroed_and_fails_when_told),
        cmocka_unit_test(test_rfc3339_formats_utc_with_millis),
        cmocka_unit_test(test_time_parse_takes_rfc3339_dates_and_epoch_seconds),
        cmocka_unit_test(test_hex_encode_writes_lowercase_or_uppercase_and_nul),
        cmocka_unit_test(test_hex_encode_cuts_at_whole_bytes_like_snprintf),
        cmocka_unit_test(test_hex_decode_round_trips_and_takes_either_case),
        cmocka_unit_test(test_hex_decode_refuses_odd_lengths_other_bytes_and_small_buffers),
        cmocka_unit_test(test_hex_digit_knows_only_0_9_a_f_and_A_F),
        cmocka_unit_test(test_strerror_names_expired_apart_from_over_a_limit),
        cmocka_unit_test(test_fault_set_fills_and_returns_the_code_and_names_its_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
