/*
 * core/metrics: what the hub counts, and its exposition in the Prometheus text format 0.0.4
 * (GET /metrics).
 *
 * Two halves:
 *
 *  - Instruments a module embeds and updates on its hot path: ch_metrics_counter_t (one relaxed
 *    atomic add, no lock, no allocation) and ch_metrics_hist_t (fixed upper bounds chosen at
 *    init; an observation is a short scan of the bounds and two relaxed atomic adds). A module
 *    whose counters are touched by one thread only (the control loop's HTTP figures, a media
 *    loop's bytes) may keep plain integers instead and read them on that thread, or publish
 *    them with its own snapshot: that is cheaper still and is what the relay does.
 *
 *  - A registry of collectors. A collector is a callback that, at scrape time, writes the
 *    families it owns through a ch_metrics_writer_t: ch_metrics_family() opens a family (its
 *    # HELP and # TYPE lines), then ch_metrics_value()/ch_metrics_histogram() add its samples.
 *    Collectors read what their module keeps (atomics, a snapshot under the module's lock, a
 *    count from the store), so nothing is copied into the registry between scrapes. A module
 *    never needs the registry itself: whoever wires the hub (main/serve.c) registers the
 *    module's collector.
 *
 * The writer enforces the format: metric and label names are checked (a bad one is dropped
 * and logged once, never written), label values and help text are escaped (backslash, double
 * quote, line feed; bytes that are not UTF-8 become U+FFFD), a family opened twice is dropped
 * (the format allows one block per name), histogram buckets are written cumulative with
 * le="+Inf" equal to _count, and values are written exactly (integers as integers, doubles
 * with the shortest form that reads back the same, +Inf/-Inf/NaN by name).
 *
 * Threading: instruments may be updated from any thread. A registry is used from one thread
 * (the control loop): register at start, render on scrape. Collectors run on that thread and
 * must be thread-safe towards the module they read.
 */
#ifndef CH_METRICS_H
#define CH_METRICS_H

#include "core/core.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- instruments ------------------------------------------------------------------------- */

/* A monotonic counter. Zero-initialised is ready. */
typedef struct ch_metrics_counter {
    _Atomic uint64_t v;
} ch_metrics_counter_t;

static inline void ch_metrics_counter_add(ch_metrics_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline uint64_t ch_metrics_counter_get(const ch_metrics_counter_t *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

#define CH_METRICS_MAX_BUCKETS 32

/* A histogram with fixed upper bounds (ascending, finite; +Inf is implied). */
typedef struct ch_metrics_hist {
    const double *bounds; /* borrowed: a static array, usually */
    size_t nbounds;
    _Atomic uint64_t counts[CH_METRICS_MAX_BUCKETS + 1]; /* per bucket; the last is over all */
    _Atomic uint64_t sum_bits;                           /* the sum, a double's bits */
} ch_metrics_hist_t;

/* Sets the bounds (at most CH_METRICS_MAX_BUCKETS, ascending, finite: checked by assert) and
 * zeroes the counts. bounds must outlive h. */
void ch_metrics_hist_init(ch_metrics_hist_t *h, const double *bounds, size_t nbounds);
/* Counts one observation (NaN is ignored). Any thread. */
void ch_metrics_hist_observe(ch_metrics_hist_t *h, double v);

/*
 * A histogram as the writer takes it: the plain form any module can fill (for example from
 * figures it keeps under its own lock). cumulative[i] is the number of observations <= le[i];
 * count is all of them (the +Inf bucket), sum their sum. The le[] are ascending and finite.
 */
typedef struct ch_metrics_hist_data {
    size_t n;
    const double *le;
    const uint64_t *cumulative;
    uint64_t count;
    double sum;
} ch_metrics_hist_data_t;

/* Reads h into d, with cum (CH_METRICS_MAX_BUCKETS entries, the caller's) as the cumulative
 * counts. Concurrent observations may land between buckets: count is read last and at least
 * the last bucket, so the data stays consistent. */
void ch_metrics_hist_read(const ch_metrics_hist_t *h, ch_metrics_hist_data_t *d, uint64_t *cum);

/* ---- the registry and its writer --------------------------------------------------------- */

typedef struct ch_metrics ch_metrics_t;
typedef struct ch_metrics_writer ch_metrics_writer_t;

typedef enum ch_metrics_type {
    CH_METRICS_COUNTER = 1,
    CH_METRICS_GAUGE,
    CH_METRICS_HISTOGRAM,
} ch_metrics_type_t;

/* Writes the families a module owns (see the writer calls below). */
typedef void (*ch_metrics_collect_fn)(ch_metrics_writer_t *w, void *ud);

/* A label of a sample: name="value". */
typedef struct ch_metrics_label {
    const char *name;
    const char *value;
} ch_metrics_label_t;

ch_metrics_t *ch_metrics_new(void);    /* never NULL */
void ch_metrics_free(ch_metrics_t *m); /* NULL is fine */

/* Adds a collector; families are written in registration order. CH_EEXIST when fn with ud is
 * registered already. */
int ch_metrics_register(ch_metrics_t *m, ch_metrics_collect_fn fn, void *ud);
/* Removes it (before ud goes away); no-op when absent. */
void ch_metrics_unregister(ch_metrics_t *m, ch_metrics_collect_fn fn, void *ud);

/* Runs every collector and appends the exposition to out. */
void ch_metrics_render(ch_metrics_t *m, ch_buf_t *out);

/* Opens a family: name (the base name: for a counter, ending in _total by convention), its
 * type and one line of help. Its samples follow. Returns 0, or -1 when the name is invalid
 * or was opened already in this scrape: its samples are then dropped too. */
int ch_metrics_family(ch_metrics_writer_t *w, const char *name, ch_metrics_type_t type,
                      const char *help);
/* A counter's or gauge's sample of the open family, with n labels (may be 0). */
void ch_metrics_value(ch_metrics_writer_t *w, const ch_metrics_label_t *labels, size_t n,
                      double value);
/* The same for integers (counts and bytes beyond 2^53 stay exact). */
void ch_metrics_value_u64(ch_metrics_writer_t *w, const ch_metrics_label_t *labels, size_t n,
                          uint64_t value);
/* A histogram's samples (_bucket lines, _sum, _count) with n labels besides le. */
void ch_metrics_histogram(ch_metrics_writer_t *w, const ch_metrics_label_t *labels, size_t n,
                          const ch_metrics_hist_data_t *d);

/* ---- process basics ----------------------------------------------------------------------- */

typedef struct ch_metrics_process {
    int64_t started_at_ms; /* wall clock */
    const char *version;   /* "0.1.0" */
    const char *revision;  /* git revision */
} ch_metrics_process_t;

/* A collector (ud: a ch_metrics_process_t that outlives the registry): cctvhub_build_info,
 * cctvhub_uptime_seconds, and the process_* families Prometheus' own clients write
 * (start time, CPU seconds, resident and virtual memory, open and maximum descriptors,
 * threads), read from /proc/self and getrusage at scrape time. */
void ch_metrics_collect_process(ch_metrics_writer_t *w, void *ud);

/* Appends the escaped form of a label value (backslash, double quote, line feed; invalid
 * UTF-8 as U+FFFD). For tests. */
void ch_metrics_escape_label(ch_buf_t *out, const char *value);
/* Appends a sample value as the format writes it. For tests. */
void ch_metrics_format_value(ch_buf_t *out, double v);

#endif /* CH_METRICS_H */
