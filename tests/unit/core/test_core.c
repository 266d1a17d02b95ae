/* Unit tests of core: number parsing, byte buffers, logfmt quoting, fault injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_int64_accepts_only_whole_decimal_numbers),
        cmocka_unit_test(test_parse_double_rejects_inf_nan_and_hex),
        cmocka_unit_test(test_buf_grows_and_stays_nul_terminated),
        cmocka_unit_test(test_log_quote_escapes_spaces_and_quotes),
        cmocka_unit_test(test_try_malloc_fails_when_told),
        cmocka_unit_test(test_table_alloc_is_zeroed_and_fails_when_told),
        cmocka_unit_test(test_rfc3339_formats_utc_with_millis),
        cmocka_unit_test(test_time_parse_takes_rfc3339_dates_and_epoch_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
