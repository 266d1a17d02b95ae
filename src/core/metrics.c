/*
 * core/metrics.c: instruments, the registry of collectors, the Prometheus text exposition
 * (format 0.0.4) and the process basics. See metrics.h.
 */
#include "core/metrics.h"

#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- instruments ------------------------------------------------------------------------- */

void ch_metrics_hist_init(ch_metrics_hist_t *h, const double *bounds, size_t nbounds)
{
    assert(nbounds <= CH_METRICS_MAX_BUCKETS);
    for (size_t i = 0; i < nbounds; i++) {
        assert(isfinite(bounds[i]) && (i == 0 || bounds[i - 1] < bounds[i]));
    }
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds;
}

void ch_metrics_hist_observe(ch_metrics_hist_t *h, double v)
{
    if (isnan(v)) {
        return;
    }
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    /* A double has no atomic add: swap in the new sum until no other thread came between. */
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    for (;;) {
        double s;
        memcpy(&s, &old, sizeof(s));
        s += v;
        uint64_t next;
        memcpy(&next, &s, sizeof(next));
        if (atomic_compare_exchange_weak_explicit(&h->sum_bits, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            break;
        }
    }
}

void ch_metrics_hist_read(const ch_metrics_hist_t *h, ch_metrics_hist_data_t *d, uint64_t *cum)
{
    uint64_t run = 0;
    for (size_t i = 0; i < h->nbounds; i++) {
        run += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        cum[i] = run;
    }
    uint64_t over = atomic_load_explicit(&h->counts[h->nbounds], memory_order_relaxed);
    uint64_t bits = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    d->n = h->nbounds;
    d->le = h->bounds;
    d->cumulative = cum;
    d->count = run + over;
    memcpy(&d->sum, &bits, sizeof(d->sum));
}

/* ---- the registry -------------------------------------------------------------------------- */

typedef struct collector {
    ch_metrics_collect_fn fn;
    void *ud;
} collector_t;

struct ch_metrics {
    collector_t *c;
    size_t n, cap;
    int warned; /* a bad name was logged once */
};

struct ch_metrics_writer {
    ch_metrics_t *m;
    ch_buf_t *out;
    char family[128]; /* the open family's name; "" when none or dropped */
    ch_metrics_type_t type;
    char **seen; /* families written in this scrape */
    size_t nseen, cseen;
};

ch_metrics_t *ch_metrics_new(void)
{
    return ch_calloc(1, sizeof(ch_metrics_t));
}

void ch_metrics_free(ch_metrics_t *m)
{
    if (m == NULL) {
        return;
    }
    ch_free(m->c);
    ch_free(m);
}

int ch_metrics_register(ch_metrics_t *m, ch_metrics_collect_fn fn, void *ud)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->c[i].fn == fn && m->c[i].ud == ud) {
            return CH_EEXIST;
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->c = ch_realloc(m->c, m->cap * sizeof(*m->c));
    }
    m->c[m->n++] = (collector_t){fn, ud};
    return 0;
}

void ch_metrics_unregister(ch_metrics_t *m, ch_metrics_collect_fn fn, void *ud)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->c[i].fn == fn && m->c[i].ud == ud) {
            memmove(&m->c[i], &m->c[i + 1], (m->n - i - 1) * sizeof(*m->c));
            m->n--;
            return;
        }
    }
}

void ch_metrics_render(ch_metrics_t *m, ch_buf_t *out)
{
    ch_metrics_writer_t w;
    memset(&w, 0, sizeof(w));
    w.m = m;
    w.out = out;
    for (size_t i = 0; i < m->n; i++) {
        w.family[0] = '\0';
        m->c[i].fn(&w, m->c[i].ud);
    }
    ch_free_strings(w.seen, w.nseen);
}

/* ---- names, escaping, values --------------------------------------------------------------- */

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metrics; labels the same without ':' and not "__..." (reserved
 * for Prometheus itself). */
static int name_ok(const char *s, int label)
{
    if (s == NULL || *s == '\0' || strlen(s) > 100) {
        return 0;
    }
    if (label && s[0] == '_' && s[1] == '_') {
        return 0;
    }
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        int digit = c >= '0' && c <= '9';
        if (!(alpha || (digit && p != s) || (c == ':' && !label))) {
            return 0;
        }
    }
    return 1;
}

static void warn_name(ch_metrics_writer_t *w, const char *what, const char *name)
{
    if (w->m->warned) {
        return;
    }
    w->m->warned = 1;
    ch_buf_t b;
    ch_buf_init(&b);
    ch_log_quote(&b, name != NULL ? name : "(null)");
    ch_log(CH_LOG_WARN, "metrics", "msg=\"sample dropped\" reason=\"%s\" name=%s", what, b.data);
    ch_buf_fini(&b);
}

/* Length of the valid UTF-8 sequence at p (of at most n bytes), or 0. Overlong forms,
 * surrogates and values past U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) {
        return 1;
    }
    size_t len;
    unsigned min;
    unsigned cp;
    if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

/* Escapes s for a label value (quote too) or for help text (no quote escaping there: the
 * format escapes only backslash and line feed in help). */
static void escape(ch_buf_t *out, const char *s, int quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t k = utf8_len(p, n);
        if (k == 0) {
            ch_buf_append(out, "\xEF\xBF\xBD", 3);
            p++, n--;
            continue;
        }
        if (*p == '\\') {
            ch_buf_append(out, "\\\\", 2);
        } else if (*p == '\n') {
            ch_buf_append(out, "\\n", 2);
        } else if (*p == '"' && quote) {
            ch_buf_append(out, "\\\"", 2);
        } else {
            ch_buf_append(out, p, k);
        }
        p += k, n -= k;
    }
}

void ch_metrics_escape_label(ch_buf_t *out, const char *value)
{
    escape(out, value != NULL ? value : "", 1);
}

void ch_metrics_format_value(ch_buf_t *out, double v)
{
    if (isnan(v)) {
        ch_buf_append_str(out, "NaN");
        return;
    }
    if (isinf(v)) {
        ch_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        ch_buf_appendf(out, "%.0f", v);
        return;
    }
    /* The shortest of %.15g and %.17g that reads back the same double. */
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v) {
        snprintf(tmp, sizeof(tmp), "%.17g", v);
    }
    ch_buf_append_str(out, tmp);
}

/* ---- the writer ---------------------------------------------------------------------------- */

int ch_metrics_family(ch_metrics_writer_t *w, const char *name, ch_metrics_type_t type,
                      const char *help)
{
    w->family[0] = '\0';
    if (!name_ok(name, 0) || strlen(name) >= sizeof(w->family)) {
        warn_name(w, "invalid metric name", name);
        return -1;
    }
    for (size_t i = 0; i < w->nseen; i++) {
        if (strcmp(w->seen[i], name) == 0) {
            warn_name(w, "family written twice", name);
            return -1;
        }
    }
    if (w->nseen == w->cseen) {
        w->cseen = w->cseen ? w->cseen * 2 : 32;
        w->seen = ch_realloc(w->seen, w->cseen * sizeof(*w->seen));
    }
    w->seen[w->nseen++] = ch_strdup(name);
    snprintf(w->family, sizeof(w->family), "%s", name);
    w->type = type;
    const char *t = type == CH_METRICS_COUNTER ? "counter"
                    : type == CH_METRICS_GAUGE ? "gauge"
                                               : "histogram";
    ch_buf_appendf(w->out, "# HELP %s ", name);
    escape(w->out, help != NULL ? help : "", 0);
    ch_buf_appendf(w->out, "\n# TYPE %s %s\n", name, t);
    return 0;
}

/* Writes `family suffix{labels[,le="..."]} ` (with the trailing space), or returns -1 when a
 * label name is invalid (nothing written). */
static int sample_head(ch_metrics_writer_t *w, const char *suffix, const ch_metrics_label_t *labels,
                       size_t n, const char *le)
{
    for (size_t i = 0; i < n; i++) {
        if (!name_ok(labels[i].name, 1) ||
            (w->type == CH_METRICS_HISTOGRAM && strcmp(labels[i].name, "le") == 0)) {
            warn_name(w, "invalid label name", labels[i].name);
            return -1;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(labels[k].name, labels[i].name) == 0) {
                warn_name(w, "label named twice", labels[i].name);
                return -1;
            }
        }
    }
    ch_buf_append_str(w->out, w->family);
    ch_buf_append_str(w->out, suffix);
    if (n > 0 || le != NULL) {
        ch_buf_append_char(w->out, '{');
        for (size_t i = 0; i < n; i++) {
            ch_buf_appendf(w->out, "%s%s=\"", i > 0 ? "," : "", labels[i].name);
            ch_metrics_escape_label(w->out, labels[i].value);
            ch_buf_append_char(w->out, '"');
        }
        if (le != NULL) {
            ch_buf_appendf(w->out, "%sle=\"%s\"", n > 0 ? "," : "", le);
        }
        ch_buf_append_char(w->out, '}');
    }
    ch_buf_append_char(w->out, ' ');
    return 0;
}

void ch_metrics_value(ch_metrics_writer_t *w, const ch_metrics_label_t *labels, size_t n,
                      double value)
{
    if (w->family[0] == '\0' || w->type == CH_METRICS_HISTOGRAM) {
        return;
    }
    if (sample_head(w, "", labels, n, NULL) == 0) {
        ch_metrics_format_value(w->out, value);
        ch_buf_append_char(w->out, '\n');
    }
}

void ch_metrics_value_u64(ch_metrics_writer_t *w, const ch_metrics_label_t *labels, size_t n,
                          uint64_t value)
{
    if (w->family[0] == '\0' || w->type == CH_METRICS_HISTOGRAM) {
        return;
    }
    if (sample_head(w, "", labels, n, NULL) == 0) {
        ch_buf_appendf(w->out, "%llu\n", (unsigned long long)value);
    }
}

void ch_metrics_histogram(ch_metrics_writer_t *w, const ch_metrics_label_t *labels, size_t n,
                          const ch_metrics_hist_data_t *d)
{
    if (w->family[0] == '\0' || w->type != CH_METRICS_HISTOGRAM) {
        return;
    }
    uint64_t prev = 0;
    for (size_t i = 0; i < d->n; i++) {
        ch_buf_t le;
        ch_buf_init(&le);
        ch_metrics_format_value(&le, d->le[i]);
        /* Cumulative counts never fall, and never pass the total: a module's racy read is
         * clamped rather than written as a histogram Prometheus would reject. */
        uint64_t c = d->cumulative[i] < prev ? prev : d->cumulative[i];
        c = c > d->count ? d->count : c;
        prev = c;
        int rc = sample_head(w, "_bucket", labels, n, le.data);
        ch_buf_fini(&le);
        if (rc != 0) {
            return;
        }
        ch_buf_appendf(w->out, "%llu\n", (unsigned long long)c);
    }
    if (sample_head(w, "_bucket", labels, n, "+Inf") != 0) {
        return;
    }
    ch_buf_appendf(w->out, "%llu\n", (unsigned long long)d->count);
    (void)sample_head(w, "_sum", labels, n, NULL);
    ch_metrics_format_value(w->out, d->sum);
    ch_buf_append_char(w->out, '\n');
    (void)sample_head(w, "_count", labels, n, NULL);
    ch_buf_appendf(w->out, "%llu\n", (unsigned long long)d->count);
}

/* ---- process basics ------------------------------------------------------------------------ */

/* Reads a small /proc file into buf (NUL-terminated); its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    return n;
}

/* The n-th space-separated unsigned field of s (0-based), or -1. */
static int field_u64(const char *s, int n, uint64_t *out)
{
    for (int i = 0; i < n; i++) {
        s = strchr(s, ' ');
        if (s == NULL) {
            return -1;
        }
        s++;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno != 0) {
        return -1;
    }
    *out = v;
    return 0;
}

static int count_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return -1;
    }
    uint64_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    *out = n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
    return 0;
}

void ch_metrics_collect_process(ch_metrics_writer_t *w, void *ud)
{
    const ch_metrics_process_t *p = ud;
    int64_t now = ch_time_now_ms();
    if (ch_metrics_family(w, "cctvhub_build_info", CH_METRICS_GAUGE,
                          "The running build: always 1, its version and git revision as labels.") ==
        0) {
        ch_metrics_label_t l[] = {{"version", p->version != NULL ? p->version : "unknown"},
                                  {"revision", p->revision != NULL ? p->revision : "unknown"}};
        ch_metrics_value(w, l, 2, 1);
    }
    if (ch_metrics_family(w, "cctvhub_uptime_seconds", CH_METRICS_GAUGE,
                          "Seconds since the hub started.") == 0) {
        ch_metrics_value(w, NULL, 0, (double)(now - p->started_at_ms) / 1000.0);
    }
    if (ch_metrics_family(w, "process_start_time_seconds", CH_METRICS_GAUGE,
                          "Start time of the process since the Unix epoch in seconds.") == 0) {
        ch_metrics_value(w, NULL, 0, (double)p->started_at_ms / 1000.0);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0 &&
        ch_metrics_family(w, "process_cpu_seconds_total", CH_METRICS_COUNTER,
                          "Total user and system CPU time spent in seconds.") == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        ch_metrics_value(w, NULL, 0, cpu);
    }
    char buf[1024];
    uint64_t pages_virt, pages_rss;
    long page = sysconf(_SC_PAGESIZE);
    if (read_small("/proc/self/statm", buf, sizeof(buf)) > 0 &&
        field_u64(buf, 0, &pages_virt) == 0 && field_u64(buf, 1, &pages_rss) == 0 && page > 0) {
        if (ch_metrics_family(w, "process_resident_memory_bytes", CH_METRICS_GAUGE,
                              "Resident memory size in bytes.") == 0) {
            ch_metrics_value_u64(w, NULL, 0, pages_rss * (uint64_t)page);
        }
        if (ch_metrics_family(w, "process_virtual_memory_bytes", CH_METRICS_GAUGE,
                              "Virtual memory size in bytes.") == 0) {
            ch_metrics_value_u64(w, NULL, 0, pages_virt * (uint64_t)page);
        }
    }
    uint64_t fds;
    if (count_fds(&fds) == 0 && ch_metrics_family(w, "process_open_fds", CH_METRICS_GAUGE,
                                                  "Number of open file descriptors.") == 0) {
        ch_metrics_value_u64(w, NULL, 0, fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        ch_metrics_family(w, "process_max_fds", CH_METRICS_GAUGE,
                          "Maximum number of open file descriptors.") == 0) {
        ch_metrics_value(w, NULL, 0, rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
    }
    /* /proc/self/stat: "pid (comm) state ppid ..."; comm may hold spaces, so count from the
     * last ')': num_threads is the 18th field after it. */
    uint64_t threads;
    if (read_small("/proc/self/stat", buf, sizeof(buf)) > 0) {
        const char *rp = strrchr(buf, ')');
        if (rp != NULL && rp[1] == ' ' && field_u64(rp + 2, 17, &threads) == 0 &&
            ch_metrics_family(w, "process_threads", CH_METRICS_GAUGE,
                              "Number of OS threads in the process.") == 0) {
            ch_metrics_value_u64(w, NULL, 0, threads);
        }
    }
}
