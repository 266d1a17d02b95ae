/*
 * Unit tests of core/metrics: the Prometheus text exposition (escaping, values, histograms)
 * and the instruments. Every rendered page also goes through check_exposition(), a reader
 * of the format's rules written here from the format's description (not from metrics.c):
 * line kinds, names, label syntax and escapes, values, one TYPE per family before its
 * samples, and for histograms ascending le, non-decreasing buckets, +Inf equal to _count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

/* ---- an independent reader of the format ----------------------------------------------------- */

static int is_name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':')) {
        return 1;
    }
    return !first && c >= '0' && c <= '9';
}

/* Reads a name at *p; its length (0 when none). */
static size_t read_name(const char **p, int colon, char *out, size_t cap)
{
    size_t n = 0;
    while (is_name_char((*p)[n], n == 0, colon)) {
        n++;
    }
    if (n >= cap) {
        return 0;
    }
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return n;
}

static int read_value(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0) {
        *v = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return 0;
    }
    char *end;
    *v = strtod(s, &end);
    /* strtod also takes "inf", "nan" and hex: the format's values are decimal only. */
    for (const char *q = s; q < end; q++) {
        if (!((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '-' ||
              *q == '+')) {
            return -1;
        }
    }
    return end != s && *end == '\0' ? 0 : -1;
}

typedef struct hist_state {
    char key[512]; /* the labels without le */
    double last_le;
    double last_count;
    int saw_inf;
    double inf_count;
} hist_state_t;

/* Fails the test (with the line) when text breaks a rule; returns the number of samples. */
static int check_exposition(const char *text)
{
    char family[128] = "";
    char type[16] = "";
    char seen[64][128];
    int nseen = 0;
    hist_state_t hs[64];
    int nhs = 0;
    int samples = 0;
    const char *line = text;
    assert_true(text[0] == '\0' || text[strlen(text) - 1] == '\n');
    while (*line != '\0') {
        const char *eol = strchr(line, '\n');
        assert_non_null(eol);
        char buf[4096];
        size_t len = (size_t)(eol - line);
        assert_true(len < sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = eol + 1;
        const char *p = buf;
        if (strncmp(p, "# HELP ", 7) == 0) {
            p += 7;
            char name[128];
            assert_true(read_name(&p, 1, name, sizeof(name)) > 0);
            assert_true(*p == ' ');
            for (p++; *p != '\0'; p++) {
                if (*p == '\\') {
                    p++;
                    assert_true(*p == '\\' || *p == 'n');
                }
            }
            continue;
        }
        if (strncmp(p, "# TYPE ", 7) == 0) {
            p += 7;
            assert_true(read_name(&p, 1, family, sizeof(family)) > 0);
            assert_true(*p == ' ');
            snprintf(type, sizeof(type), "%s", p + 1);
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            for (int i = 0; i < nseen; i++) {
                assert_string_not_equal(seen[i], family); /* one block per family */
            }
            assert_true(nseen < 64);
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
            nhs = 0;
            continue;
        }
        assert_true(*p != '#' && *p != '\0'); /* no other comments or blank lines here */
        char name[160];
        assert_true(read_name(&p, 1, name, sizeof(name)) > 0);
        char key[512] = "";
        char le[64] = "";
        if (*p == '{') {
            p++;
            while (*p != '}') {
                char lname[128];
                assert_true(read_name(&p, 0, lname, sizeof(lname)) > 0);
                assert_false(lname[0] == '_' && lname[1] == '_');
                assert_true(*p++ == '=');
                assert_true(*p++ == '"');
                char val[512];
                size_t vn = 0;
                while (*p != '"') {
                    assert_true(*p != '\0' && *p != '\n');
                    if (*p == '\\') {
                        p++;
                        assert_true(*p == '\\' || *p == '"' || *p == 'n');
                    }
                    assert_true(vn < sizeof(val) - 1);
                    val[vn++] = *p++;
                }
                val[vn] = '\0';
                p++;
                if (strcmp(lname, "le") == 0) {
                    assert_true(vn < sizeof(le));
                    memcpy(le, val, vn + 1);
                } else {
                    size_t kl = strlen(key), nl = strlen(lname);
                    assert_true(kl + nl + vn + 3 <= sizeof(key));
                    memcpy(key + kl, lname, nl);
                    key[kl + nl] = '=';
                    memcpy(key + kl + nl + 1, val, vn);
                    memcpy(key + kl + nl + 1 + vn, ";", 2);
                }
                if (*p == ',') {
                    p++;
                }
            }
            p++;
        }
        assert_true(*p++ == ' ');
        double v;
        assert_int_equal(read_value(p, &v), 0);
        samples++;
        assert_true(family[0] != '\0');
        if (strcmp(type, "histogram") != 0) {
            assert_string_equal(name, family);
            assert_true(le[0] == '\0');
            if (strcmp(type, "counter") == 0) {
                assert_true(v >= 0);
            }
            continue;
        }
        size_t fl = strlen(family);
        assert_true(strncmp(name, family, fl) == 0);
        const char *suffix = name + fl;
        hist_state_t *h = NULL;
        for (int i = 0; i < nhs; i++) {
            if (strcmp(hs[i].key, key) == 0) {
                h = &hs[i];
            }
        }
        if (strcmp(suffix, "_bucket") == 0) {
            double lev;
            assert_true(le[0] != '\0');
            assert_int_equal(read_value(le, &lev), 0);
            if (h == NULL) {
                assert_true(nhs < 64);
                h = &hs[nhs++];
                memset(h, 0, sizeof(*h));
                snprintf(h->key, sizeof(h->key), "%s", key);
                h->last_le = -INFINITY;
            }
            assert_false(h->saw_inf);
            assert_true(lev > h->last_le);   /* ascending */
            assert_true(v >= h->last_count); /* cumulative */
            h->last_le = lev;
            h->last_count = v;
            if (isinf(lev)) {
                h->saw_inf = 1;
                h->inf_count = v;
            }
        } else if (strcmp(suffix, "_count") == 0) {
            assert_non_null(h);
            assert_true(h->saw_inf);
            assert_true(v == h->inf_count);
        } else {
            assert_string_equal(suffix, "_sum");
            assert_non_null(h);
            assert_true(h->saw_inf);
        }
    }
    return samples;
}

/* ---- helpers --------------------------------------------------------------------------------- */

static char *render(ch_metrics_t *m)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_metrics_render(m, &b);
    return ch_buf_steal(&b);
}

static char *escaped(const char *s)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_metrics_escape_label(&b, s);
    return ch_buf_steal(&b);
}

static char *formatted(double v)
{
    ch_buf_t b;
    ch_buf_init(&b);
    ch_metrics_format_value(&b, v);
    return ch_buf_steal(&b);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_label_values_escape_backslash_quote_and_newline(void **state)
{
    char *s = escaped("a\\b\"c\nd");
    assert_string_equal(s, "a\\\\b\\\"c\\nd");
    ch_free(s);
    s = escaped("서울 중구 \t tab"); /* UTF-8 and a tab pass as they are */
    assert_string_equal(s, "서울 중구 \t tab");
    ch_free(s);
    s = escaped("bad\xff\xc3(end"); /* invalid bytes become U+FFFD, one each */
    assert_string_equal(s, "bad\xEF\xBF\xBD\xEF\xBF\xBD(end");
    ch_free(s);
    s = escaped("\xed\xa0\x80"); /* a UTF-16 surrogate is not UTF-8 */
    assert_string_equal(s, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    ch_free(s);
}

static void test_values_are_written_exactly(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},           {1, "1"},
        {-3, "-3"},         {0.5, "0.5"},
        {0.1, "0.1"},       {0.00005, "5e-05"},
        {1e21, "1e+21"},    {123456.789, "123456.789"},
        {INFINITY, "+Inf"}, {-INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(cases); i++) {
        char *s = formatted(cases[i].v);
        assert_string_equal(s, cases[i].text);
        ch_free(s);
    }
    char *s = formatted(NAN);
    assert_string_equal(s, "NaN");
    ch_free(s);
    /* Any double reads back as itself. */
    double tricky[] = {1.0 / 3.0, 2.0 / 3.0, 1e-300, 5e-324, 0.30000000000000004};
    for (size_t i = 0; i < CH_ARRAY_SIZE(tricky); i++) {
        s = formatted(tricky[i]);
        assert_true(strtod(s, NULL) == tricky[i]);
        ch_free(s);
    }
}

static void collect_sample_family(ch_metrics_writer_t *w, void *ud)
{
    (void)ud;
    assert_int_equal(ch_metrics_family(w, "demo_requests_total", CH_METRICS_COUNTER,
                                       "Requests, with a \\ backslash\nand a \"quote\"."),
                     0);
    ch_metrics_label_t l[] = {{"route", "/api/v1/cameras/{id}"}, {"code", "200"}};
    ch_metrics_value_u64(w, l, 2, UINT64_MAX);
    ch_metrics_label_t q = {"path", "say \"hi\"\n"};
    ch_metrics_value(w, &q, 1, 2.5);
    assert_int_equal(ch_metrics_family(w, "demo_temperature", CH_METRICS_GAUGE, "A gauge."), 0);
    ch_metrics_value(w, NULL, 0, -1.25);
}

static void test_samples_have_help_type_labels_and_values(void **state)
{
    ch_metrics_t *m = ch_metrics_new();
    assert_int_equal(ch_metrics_register(m, collect_sample_family, NULL), 0);
    char *text = render(m);
    assert_string_equal(text, "# HELP demo_requests_total Requests, with a \\\\ backslash\\nand a "
                              "\"quote\".\n"
                              "# TYPE demo_requests_total counter\n"
                              "demo_requests_total{route=\"/api/v1/cameras/{id}\",code=\"200\"} "
                              "18446744073709551615\n"
                              "demo_requests_total{path=\"say \\\"hi\\\"\\n\"} 2.5\n"
                              "# HELP demo_temperature A gauge.\n"
                              "# TYPE demo_temperature gauge\n"
                              "demo_temperature -1.25\n");
    assert_int_equal(check_exposition(text), 3);
    ch_free(text);
    ch_metrics_free(m);
}

static const double bounds[] = {0.1, 1, 10};

static void collect_histogram(ch_metrics_writer_t *w, void *ud)
{
    ch_metrics_hist_t *h = ud;
    assert_int_equal(ch_metrics_family(w, "demo_seconds", CH_METRICS_HISTOGRAM, "Durations."), 0);
    uint64_t cum[CH_METRICS_MAX_BUCKETS];
    ch_metrics_hist_data_t d;
    ch_metrics_hist_read(h, &d, cum);
    ch_metrics_label_t l = {"op", "x"};
    ch_metrics_histogram(w, &l, 1, &d);
}

static void test_histogram_buckets_are_cumulative_and_end_with_inf(void **state)
{
    ch_metrics_hist_t h;
    ch_metrics_hist_init(&h, bounds, CH_ARRAY_SIZE(bounds));
    /* A value equal to a bound belongs to that bucket (le is "less or equal"). */
    double obs[] = {0.05, 0.1, 0.5, 5, 50, NAN};
    for (size_t i = 0; i < CH_ARRAY_SIZE(obs); i++) {
        ch_metrics_hist_observe(&h, obs[i]);
    }
    ch_metrics_t *m = ch_metrics_new();
    assert_int_equal(ch_metrics_register(m, collect_histogram, &h), 0);
    char *text = render(m);
    assert_string_equal(text, "# HELP demo_seconds Durations.\n"
                              "# TYPE demo_seconds histogram\n"
                              "demo_seconds_bucket{op=\"x\",le=\"0.1\"} 2\n"
                              "demo_seconds_bucket{op=\"x\",le=\"1\"} 3\n"
                              "demo_seconds_bucket{op=\"x\",le=\"10\"} 4\n"
                              "demo_seconds_bucket{op=\"x\",le=\"+Inf\"} 5\n"
                              "demo_seconds_sum{op=\"x\"} 55.65\n"
                              "demo_seconds_count{op=\"x\"} 5\n");
    assert_int_equal(check_exposition(text), 6);
    ch_free(text);
    ch_metrics_free(m);
}

static void collect_racy_histogram(ch_metrics_writer_t *w, void *ud)
{
    (void)ud;
    /* A module's figures read without a lock may be momentarily out of order. */
    static const double le[] = {1, 2, 3};
    static const uint64_t cum[] = {5, 4, 9};
    ch_metrics_hist_data_t d = {3, le, cum, 7, 10.0};
    assert_int_equal(ch_metrics_family(w, "racy_seconds", CH_METRICS_HISTOGRAM, "Racy."), 0);
    ch_metrics_histogram(w, NULL, 0, &d);
    /* An empty histogram: every bucket 0, sum 0. */
    static const uint64_t zero[] = {0, 0, 0};
    ch_metrics_hist_data_t e = {3, le, zero, 0, 0};
    ch_metrics_label_t l = {"kind", "empty"};
    ch_metrics_histogram(w, &l, 1, &e);
}

static void test_histogram_data_out_of_order_is_clamped_to_valid(void **state)
{
    ch_metrics_t *m = ch_metrics_new();
    assert_int_equal(ch_metrics_register(m, collect_racy_histogram, NULL), 0);
    char *text = render(m);
    assert_non_null(strstr(text, "racy_seconds_bucket{le=\"1\"} 5\n"
                                 "racy_seconds_bucket{le=\"2\"} 5\n"
                                 "racy_seconds_bucket{le=\"3\"} 7\n"
                                 "racy_seconds_bucket{le=\"+Inf\"} 7\n"));
    assert_non_null(strstr(text, "racy_seconds_bucket{kind=\"empty\",le=\"+Inf\"} 0\n"));
    assert_int_equal(check_exposition(text), 12);
    ch_free(text);
    ch_metrics_free(m);
}

static void collect_bad_names(ch_metrics_writer_t *w, void *ud)
{
    (void)ud;
    assert_int_equal(ch_metrics_family(w, "9starts_with_digit", CH_METRICS_GAUGE, "x"), -1);
    ch_metrics_value(w, NULL, 0, 1); /* dropped with its family */
    assert_int_equal(ch_metrics_family(w, "has-dash", CH_METRICS_GAUGE, "x"), -1);
    assert_int_equal(ch_metrics_family(w, "ok_total", CH_METRICS_COUNTER, "x"), 0);
    ch_metrics_label_t reserved = {"__name__", "x"};
    ch_metrics_value(w, &reserved, 1, 1);
    ch_metrics_label_t colon = {"a:b", "x"};
    ch_metrics_value(w, &colon, 1, 1);
    ch_metrics_label_t twice[] = {{"a_b", "x"}, {"a_b", "y"}};
    ch_metrics_value(w, twice, 2, 1);
    ch_metrics_label_t good = {"a_b", "x"};
    ch_metrics_value(w, &good, 1, 7);
    assert_int_equal(ch_metrics_family(w, "ok_total", CH_METRICS_COUNTER, "again"), -1);
    ch_metrics_value(w, NULL, 0, 99);
    assert_int_equal(ch_metrics_family(w, "h_seconds", CH_METRICS_HISTOGRAM, "x"), 0);
    ch_metrics_value(w, NULL, 0, 1); /* a plain value in a histogram family */
    static const double le[] = {1};
    static const uint64_t cum[] = {1};
    ch_metrics_hist_data_t d = {1, le, cum, 1, 0.5};
    ch_metrics_label_t lel = {"le", "5"};
    ch_metrics_histogram(w, &lel, 1, &d); /* le is the histogram's own label */
    ch_metrics_histogram(w, NULL, 0, &d);
}

static void test_bad_names_and_second_families_are_dropped(void **state)
{
    ch_metrics_t *m = ch_metrics_new();
    assert_int_equal(ch_metrics_register(m, collect_bad_names, NULL), 0);
    char *text = render(m);
    assert_string_equal(text, "# HELP ok_total x\n"
                              "# TYPE ok_total counter\n"
                              "ok_total{a_b=\"x\"} 7\n"
                              "# HELP h_seconds x\n"
                              "# TYPE h_seconds histogram\n"
                              "h_seconds_bucket{le=\"1\"} 1\n"
                              "h_seconds_bucket{le=\"+Inf\"} 1\n"
                              "h_seconds_sum 0.5\n"
                              "h_seconds_count 1\n");
    check_exposition(text);
    ch_free(text);
    /* The next scrape starts afresh: the families are written again. */
    text = render(m);
    assert_non_null(strstr(text, "ok_total{a_b=\"x\"} 7\n"));
    ch_free(text);
    ch_metrics_free(m);
}

static void collect_one(ch_metrics_writer_t *w, void *ud)
{
    const char *name = ud;
    if (ch_metrics_family(w, name, CH_METRICS_GAUGE, "one") == 0) {
        ch_metrics_value(w, NULL, 0, 1);
    }
}

static void test_collectors_run_in_order_and_leave_when_unregistered(void **state)
{
    ch_metrics_t *m = ch_metrics_new();
    char a[] = "first_gauge", b[] = "second_gauge";
    assert_int_equal(ch_metrics_register(m, collect_one, a), 0);
    assert_int_equal(ch_metrics_register(m, collect_one, b), 0);
    assert_int_equal(ch_metrics_register(m, collect_one, a), CH_EEXIST);
    char *text = render(m);
    char *pa = strstr(text, "first_gauge 1\n"), *pb = strstr(text, "second_gauge 1\n");
    assert_true(pa != NULL && pb != NULL && pa < pb);
    ch_free(text);
    ch_metrics_unregister(m, collect_one, a);
    ch_metrics_unregister(m, collect_one, a); /* absent: no-op */
    text = render(m);
    assert_null(strstr(text, "first_gauge"));
    assert_non_null(strstr(text, "second_gauge 1\n"));
    ch_free(text);
    ch_metrics_free(m);
    ch_metrics_free(NULL);
}

static void test_process_basics_are_valid_and_plausible(void **state)
{
    ch_metrics_process_t p = {ch_time_now_ms() - 5000, "1.2.3", "abc\"def"};
    ch_metrics_t *m = ch_metrics_new();
    assert_int_equal(ch_metrics_register(m, ch_metrics_collect_process, &p), 0);
    char *text = render(m);
    assert_true(check_exposition(text) >= 8);
    assert_non_null(
        strstr(text, "cctvhub_build_info{version=\"1.2.3\",revision=\"abc\\\"def\"} 1\n"));
    const char *up = strstr(text, "\ncctvhub_uptime_seconds ");
    assert_non_null(up);
    assert_true(strtod(up + 24, NULL) >= 5.0);
    const char *fds = strstr(text, "\nprocess_open_fds ");
    assert_non_null(fds);
    assert_true(strtod(fds + 18, NULL) >= 3); /* stdin, stdout, stderr at least */
    const char *rss = strstr(text, "\nprocess_resident_memory_bytes ");
    assert_non_null(rss);
    assert_true(strtod(rss + 31, NULL) > 1e5);
    assert_non_null(strstr(text, "\nprocess_threads 1\n"));
    ch_free(text);
    ch_metrics_free(m);
}

#define THREADS    4
#define PER_THREAD 100000

static ch_metrics_hist_t shared_hist;
static ch_metrics_counter_t shared_counter;

static void *observer(void *arg)
{
    double v = *(const double *)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        ch_metrics_hist_observe(&shared_hist, v);
        ch_metrics_counter_add(&shared_counter, 1);
    }
    return NULL;
}

static void test_instruments_lose_nothing_across_threads(void **state)
{
    ch_metrics_hist_init(&shared_hist, bounds, CH_ARRAY_SIZE(bounds));
    /* Values that add up exactly in binary, so the sum can be compared exactly. */
    double vals[THREADS] = {0.0625, 0.5, 2, 16};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, observer, &vals[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    uint64_t cum[CH_METRICS_MAX_BUCKETS];
    ch_metrics_hist_data_t d;
    ch_metrics_hist_read(&shared_hist, &d, cum);
    assert_int_equal(d.count, THREADS * PER_THREAD);
    assert_int_equal(cum[0], PER_THREAD);
    assert_int_equal(cum[1], 2 * PER_THREAD);
    assert_int_equal(cum[2], 3 * PER_THREAD);
    assert_true(d.sum == (0.0625 + 0.5 + 2 + 16) * PER_THREAD);
    assert_int_equal(ch_metrics_counter_get(&shared_counter), THREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_values_escape_backslash_quote_and_newline),
        cmocka_unit_test(test_values_are_written_exactly),
        cmocka_unit_test(test_samples_have_help_type_labels_and_values),
        cmocka_unit_test(test_histogram_buckets_are_cumulative_and_end_with_inf),
        cmocka_unit_test(test_histogram_data_out_of_order_is_clamped_to_valid),
        cmocka_unit_test(test_bad_names_and_second_families_are_dropped),
        cmocka_unit_test(test_collectors_run_in_order_and_leave_when_unregistered),
        cmocka_unit_test(test_process_basics_are_valid_and_plausible),
        cmocka_unit_test(test_instruments_lose_nothing_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
