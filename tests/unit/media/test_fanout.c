/*
 * The fan-out store: packets stored once and read by many viewers, the GOP cache, partial
 * writes, backpressure and the window's limit. Packets are laid out as an H.264 camera sends
 * them: each access unit a few packets, a keyframe's access unit starting with its parameter
 * sets, one keyframe every GOP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/media.h"

#define PKTS_PER_AU 3
#define GOP         10 /* access units */

/* Packet k of the test stream: its RTP bytes are a pattern naming k, its size varies. */
static size_t make_packet(uint64_t k, uint8_t *buf)
{
    size_t len = 200 + (size_t)(k * 37 % 900);
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(k * 7 + i);
    }
    return len;
}

static unsigned flags_of(uint64_t k)
{
    uint64_t au = k / PKTS_PER_AU, in_au = k % PKTS_PER_AU;
    unsigned f = in_au == 0 ? CH_MEDIA_AU_START : 0;
    /* The keyframe flag is on the IDR's packet, after SPS and PPS: the AU's third packet. */
    if (au % GOP == 0 && in_au == 2) {
        f |= CH_MEDIA_KEYFRAME;
    }
    return f;
}

static void push_upto(ch_media_stream_t *s, uint64_t *k, uint64_t until)
{
    uint8_t buf[2000];
    for (; *k < until; (*k)++) {
        size_t len = make_packet(*k, buf);
        assert_int_equal(ch_media_stream_push(s, 0, buf, len, flags_of(*k)), (int64_t)*k);
    }
}

/* What a viewer must receive for packets [from, to): interleaved frames, back to back. */
static size_t expected(uint64_t from, uint64_t to, uint8_t *out)
{
    size_t n = 0;
    uint8_t buf[2000];
    for (uint64_t k = from; k < to; k++) {
        size_t len = make_packet(k, buf);
        out[n++] = '$';
        out[n++] = 0;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
        memcpy(out + n, buf, len);
        n += len;
    }
    return n;
}

/* Drains what v may write, `chunk` bytes per write at most (a socket taking part). */
static size_t drain(ch_media_viewer_t *v, uint8_t *out, size_t chunk)
{
    size_t got = 0;
    for (;;) {
        struct iovec iov[16];
        size_t bytes;
        size_t n = ch_media_viewer_iov(v, iov, 16, &bytes);
        if (n == 0) {
            return got;
        }
        size_t take = bytes < chunk ? bytes : chunk, left = take;
        for (size_t i = 0; i < n && left > 0; i++) {
            size_t c = iov[i].iov_len < left ? iov[i].iov_len : left;
            memcpy(out + got, iov[i].iov_base, c);
            got += c;
            left -= c;
        }
        ch_media_viewer_advance(v, take);
    }
}

static void test_a_viewer_starts_at_the_keyframes_access_unit_and_follows_live(void **state)
{
    (void)state;
    ch_media_stream_t *s = ch_media_stream_new(NULL);
    uint64_t k = 0;
    assert_int_equal(ch_media_stream_gop_start(s), 0); /* no keyframe yet: the head */
    push_upto(s, &k, 2);
    assert_int_equal(ch_media_stream_gop_start(s), 2);
    push_upto(s, &k, 3); /* the IDR's packet: the GOP starts at its AU's first packet */
    assert_int_equal(ch_media_stream_gop_start(s), 0);
    push_upto(s, &k, (GOP + 4) * PKTS_PER_AU + 1);
    uint64_t gop2 = GOP * PKTS_PER_AU;
    assert_int_equal(ch_media_stream_gop_start(s), gop2);
    /* Packets before the GOP start are gone (trimmed at the keyframe). */
    assert_true(ch_media_stream_held(s) <= k - gop2 + 32);

    ch_media_viewer_t v;
    ch_media_viewer_join(s, &v, 1 << 20);
    static uint8_t got[1 << 20], want[1 << 20];
    size_t n = drain(&v, got, 1 << 20);
    size_t w = expected(gop2, k, want);
    assert_int_equal(n, w);
    assert_memory_equal(got, want, w);
    /* Live: new packets follow. */
    uint64_t before = k;
    push_upto(s, &k, k + 5);
    n = drain(&v, got, 1 << 20);
    w = expected(before, k, want);
    assert_int_equal(n, w);
    assert_memory_equal(got, want, w);
    assert_int_equal(ch_media_viewer_lag(&v), 0);
    ch_media_viewer_leave(&v);
    ch_media_stream_free(s);
}

static void push_flagged(ch_media_stream_t *s, uint64_t from, uint64_t to, uint64_t key)
{
    uint8_t buf[2000];
    for (uint64_t k = from; k < to; k++) {
        size_t len = make_packet(k, buf);
        unsigned f = k % PKTS_PER_AU == 0 ? CH_MEDIA_AU_START : 0;
        f |= k == key ? CH_MEDIA_KEYFRAME : 0;
        assert_int_equal(ch_media_stream_push(s, 0, buf, len, f), (int64_t)k);
    }
}

static void test_a_viewer_joining_before_the_first_keyframe_starts_at_it(void **state)
{
    (void)state;
    ch_media_stream_t *s = ch_media_stream_new(NULL);
    ch_media_viewer_t v;
    ch_media_viewer_join(s, &v, 1 << 20);
    /* A camera whose stream begins mid-GOP: four access units without a keyframe. */
    push_flagged(s, 0, 4 * PKTS_PER_AU, UINT64_MAX);
    static uint8_t got[1 << 16], want[1 << 16];
    assert_int_equal(drain(&v, got, 1 << 16), 0); /* nothing it could decode */
    /* Then a keyframe's access unit (the IDR on its third packet) and one more. */
    push_flagged(s, 4 * PKTS_PER_AU, 6 * PKTS_PER_AU, 4 * PKTS_PER_AU + 2);
    size_t n = drain(&v, got, 1 << 16);
    size_t w = expected(4 * PKTS_PER_AU, 6 * PKTS_PER_AU, want);
    assert_int_equal(n, w);
    assert_memory_equal(got, want, w);
    /* While it waited it held nothing back: the packets before the keyframe are gone. */
    assert_int_equal(ch_media_stream_held(s), 2 * PKTS_PER_AU);
    ch_media_viewer_leave(&v);
    ch_media_stream_free(s);
}

static void test_a_doomed_viewer_left_open_never_points_at_a_released_packet(void **state)
{
    (void)state;
    ch_media_stream_config_t cfg = {64, 0, 0};
    ch_media_stream_t *s = ch_media_stream_new(&cfg);
    uint64_t k = 0;
    push_upto(s, &k, PKTS_PER_AU);
    ch_media_viewer_t v;
    ch_media_viewer_join(s, &v, 1 << 30);
    /* Half a packet written, then nothing: the window pushes it out, dooms it, and its owner
     * does not close it at once (it may be between two reads of the camera). */
    struct iovec iov[4];
    size_t bytes;
    assert_true(ch_media_viewer_iov(&v, iov, 4, &bytes) > 0);
    ch_media_viewer_advance(&v, 1);
    for (int lap = 0; lap < 5; lap++) {
        push_upto(s, &k, k + 64);
        assert_true(v.doomed);
        assert_true(ch_media_viewer_lag(&v) < 64 * 2000); /* reads only held packets */
        assert_true(ch_media_stream_held(s) <= 64);
    }
    assert_int_equal(ch_media_viewer_iov(&v, iov, 4, &bytes), 0);
    ch_media_viewer_leave(&v);
    ch_media_stream_free(s);
}

static int lost_calls;
static void on_lost(ch_media_viewer_t *v)
{
    assert_true(v->doomed);
    lost_calls++;
}

static void test_a_held_viewer_is_doomed_not_moved_and_told_before_its_packet_goes(void **state)
{
    (void)state;
    ch_media_stream_config_t cfg = {64, 0, 0};
    ch_media_stream_t *s = ch_media_stream_new(&cfg);
    uint64_t k = 0;
    push_upto(s, &k, PKTS_PER_AU);
    ch_media_viewer_t v;
    ch_media_viewer_join(s, &v, (size_t)1 << 40);
    v.lost = on_lost;
    /* A whole batch is in a write still queued: the cursor stays (off 0), the viewer is held. */
    struct iovec iov[4];
    size_t bytes;
    assert_true(ch_media_viewer_iov(&v, iov, 4, &bytes) > 0);
    v.held = 1;
    lost_calls = 0;
    push_upto(s, &k, k + 64);
    assert_int_equal(lost_calls, 1); /* once, when its packet had to go */
    assert_true(v.doomed);
    assert_int_equal(v.skips, 0); /* not moved to a GOP start: its write reads on */
    v.held = 0;
    ch_media_viewer_leave(&v);
    ch_media_stream_free(s);
}

/* Pushes packet k with its flags, plus AU_END on an access unit's last packet when `ends`. */
static void push_one(ch_media_stream_t *s, uint64_t k, int ends)
{
    uint8_t buf[2000];
    size_t len = make_packet(k, buf);
    unsigned f = flags_of(k);
    if (ends && k % PKTS_PER_AU == PKTS_PER_AU - 1) {
        f |= CH_MEDIA_AU_END;
    }
    assert_true(ch_media_stream_push(s, 0, buf, len, f) >= 0);
}

static void test_whole_frames_viewers_never_get_half_a_frame(void **state)
{
    (void)state;
    ch_media_stream_config_t cfg = {0, 0, 1};
    ch_media_stream_t *s = ch_media_stream_new(&cfg);
    ch_media_viewer_t v;
    ch_media_viewer_join(s, &v, 1 << 20);
    static uint8_t got[1 << 16], want[1 << 16];
    /* The keyframe's access unit arrives packet by packet: nothing until its last. */
    push_one(s, 0, 1);
    push_one(s, 1, 1);
    assert_int_equal(drain(&v, got, 1 << 16), 0);
    push_one(s, 2, 1);
    size_t n = drain(&v, got, 1 << 16);
    size_t w = expected(0, 3, want);
    assert_int_equal(n, w);
    assert_memory_equal(got, want, w);
    /* Two packets of the next one, then the camera's connection breaks: dropped, never sent. */
    push_one(s, 3, 1);
    push_one(s, 4, 1);
    assert_int_equal(drain(&v, got, 1 << 16), 0);
    size_t held = ch_media_stream_held(s);
    ch_media_stream_drop_partial(s);
    assert_int_equal(ch_media_stream_held(s), held - 2);
    assert_int_equal(ch_media_stream_head(s), 3);
    /* After the reconnect a whole access unit follows (numbered on from 3). */
    uint8_t buf[2000];
    for (uint64_t k = 3; k < 6; k++) {
        size_t len = make_packet(k, buf);
        unsigned f = (k == 3 ? CH_MEDIA_AU_START : 0) | (k == 5 ? CH_MEDIA_AU_END : 0);
        assert_int_equal(ch_media_stream_push(s, 0, buf, len, f), (int64_t)k);
    }
    n = drain(&v, got, 1 << 16);
    w = expected(3, 6, want);
    assert_int_equal(n, w);
    assert_memory_equal(got, want, w);
    /* A camera without marker bits: an access unit is whole when the next one starts. */
    push_one(s, 6, 0);
    push_one(s, 7, 0);
    push_one(s, 8, 0);
    assert_int_equal(drain(&v, got, 1 << 16), 0);
    push_one(s, 9, 0);
    n = drain(&v, got, 1 << 16);
    w = expected(6, 9, want);
    assert_int_equal(n, w);
    assert_memory_equal(got, want, w);
    ch_media_viewer_leave(&v);
    ch_media_stream_free(s);
}

static void test_dropping_a_partial_keyframe_leaves_no_gop_to_join(void **state)
{
    (void)state;
    ch_media_stream_config_t cfg = {0, 0, 1};
    ch_media_stream_t *s = ch_media_stream_new(&cfg);
    for (uint64_t k = 0; k < 3; k++) {
        push_one(s, k, 0); /* the keyframe's packet (k = 2) came, its end did not */
    }
    assert_int_equal(ch_media_stream_gop_start(s), 0);
    ch_media_stream_drop_partial(s);
    /* Nothing whole is cached: a viewer joining now waits for the next keyframe. */
    assert_int_equal(ch_media_stream_held(s), 0);
    assert_int_equal(ch_media_stream_gop_start(s), ch_media_stream_head(s));
    ch_media_viewer_t v;
    ch_media_viewer_join(s, &v, 1 << 20);
    assert_true(v.wait_key);
    ch_media_viewer_leave(&v);
    ch_media_stream_free(s);
}

static void test_every_viewer_reads_the_same_stored_bytes_and_partial_writes_resume(void **state)
{
    (void)state;
    ch_media_stream_t *s = ch_media_stream_new(NULL);
    uint64_t k = 0;
    push_upto(s, &k, 3 * PKTS_PER_AU);
    ch_media_viewer_t v[3];
    for (int i = 0; i < 3; i++) {
        ch_media_viewer_join(s, &v[i], 1 << 20);
    }
    assert_int_equal(ch_media_stream_viewers(s), 3);
    /* No copy per viewer: their iovecs point at the same bytes. */
    struct iovec a[4], b[4];
    size_t ba, bb;
    assert_int_equal(ch_media_viewer_iov(&v[0], a, 4, &ba), 4);
    assert_int_equal(ch_media_viewer_iov(&v[1], b, 4, &bb), 4);
    for (int i = 0; i < 4; i++) {
        assert_ptr_equal(a[i].iov_base, b[i].iov_base);
    }
    /* Sockets that take 1, 7 and 1000 bytes at a time all end up with the same stream. */
    push_upto(s, &k, k + 40);
    static uint8_t got[3][1 << 18], want[1 << 18];
    size_t w = expected(0, k, want);
    size_t chunks[3] = {1, 7, 1000};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(drain(&v[i], got[i], chunks[i]), w);
        assert_memory_equal(got[i], want, w);
        assert_int_equal(v[i].bytes, w);
    }
    for (int i = 0; i < 3; i++) {
        ch_media_viewer_leave(&v[i]);
    }
    ch_media_stream_free(s);
}

static void test_a_slow_viewer_skips_to_the_latest_keyframe_then_is_doomed(void **state)
{
    (void)state;
    ch_media_stream_t *s = ch_media_stream_new(NULL);
    uint64_t k = 0;
    push_upto(s, &k, PKTS_PER_AU);
    ch_media_viewer_t slow, fast;
    ch_media_viewer_join(s, &slow, 20000); /* less than a GOP's bytes */
    ch_media_viewer_join(s, &fast, 1 << 20);
    static uint8_t got[1 << 20], want[1 << 20];
    /* Two GOPs later the slow one has read nothing: it skips to the newest GOP start. */
    push_upto(s, &k, 2 * GOP * PKTS_PER_AU + 3);
    uint64_t gop = 2 * GOP * PKTS_PER_AU;
    struct iovec iov[4];
    size_t bytes;
    assert_true(ch_media_viewer_lag(&slow) > 20000);
    assert_int_equal(ch_media_viewer_iov(&slow, iov, 4, &bytes), 3);
    assert_int_equal(slow.skips, 1);
    assert_int_equal(slow.next, gop);
    assert_int_equal(((const uint8_t *)iov[0].iov_base)[0], '$');
    assert_false(slow.doomed);
    /* The fast one was never held back and lost nothing. */
    size_t w = expected(0, k, want);
    assert_int_equal(drain(&fast, got, 1 << 20), w);
    assert_memory_equal(got, want, w);
    /* Behind again before writing past its skip: to be closed. */
    push_upto(s, &k, k + GOP * PKTS_PER_AU);
    assert_int_equal(ch_media_viewer_iov(&slow, iov, 4, &bytes), 0);
    assert_true(slow.doomed);
    ch_media_viewer_leave(&slow);
    ch_media_viewer_leave(&fast);
    ch_media_stream_free(s);
}

static void test_the_window_bounds_memory_and_a_warm_stream_allocates_nothing(void **state)
{
    (void)state;
    ch_media_stream_config_t cfg = {.window = 4 * GOP * PKTS_PER_AU, .pkt_bytes = 1200};
    ch_media_stream_t *s = ch_media_stream_new(&cfg);
    uint64_t k = 0;
    ch_media_viewer_t stuck;
    push_upto(s, &k, PKTS_PER_AU);
    ch_media_viewer_join(s, &stuck, (size_t)1 << 40); /* never reads, never skips by budget */
    push_upto(s, &k, 20 * GOP * PKTS_PER_AU);
    assert_true(ch_media_stream_held(s) <= cfg.window);
    /* It was moved to a GOP start when its packets had to go, then doomed. */
    assert_true(stuck.skips >= 1);
    assert_true(stuck.doomed);
    ch_media_viewer_leave(&stuck);
    size_t warm = ch_media_stream_allocated(s);
    push_upto(s, &k, k + 50 * GOP * PKTS_PER_AU);
    /* Packets over pkt_bytes get their own buffers (freed again); ordinary ones are reused. */
    size_t big = 0;
    uint8_t buf[2000];
    for (uint64_t i = k - 50 * GOP * PKTS_PER_AU; i < k; i++) {
        big += make_packet(i, buf) + 4 > cfg.pkt_bytes;
    }
    assert_int_equal(ch_media_stream_allocated(s) - warm, big);
    ch_media_stream_free(s);
}

static void test_bad_packets_are_refused(void **state)
{
    (void)state;
    ch_media_stream_t *s = ch_media_stream_new(NULL);
    static uint8_t huge[CH_MEDIA_MAX_PACKET + 1];
    assert_int_equal(ch_media_stream_push(s, 0, huge, sizeof(huge), 0), CH_ETOOBIG);
    assert_int_equal(ch_media_stream_push(s, 0, huge, 0, 0), CH_EINVAL);
    assert_int_equal(ch_media_stream_push(s, 0, NULL, 10, 0), CH_EINVAL);
    /* The largest one is stored whole, its 16-bit length intact. */
    assert_int_equal(ch_media_stream_push(s, 2, huge, CH_MEDIA_MAX_PACKET,
                                          CH_MEDIA_AU_START | CH_MEDIA_KEYFRAME),
                     0);
    ch_media_viewer_t v;
    ch_media_viewer_join(s, &v, (size_t)1 << 20);
    struct iovec iov[2];
    size_t bytes;
    assert_int_equal(ch_media_viewer_iov(&v, iov, 2, &bytes), 1);
    const uint8_t *h = iov[0].iov_base;
    assert_int_equal(bytes, CH_MEDIA_MAX_PACKET + 4);
    assert_int_equal(h[1], 2);
    assert_int_equal((h[2] << 8) | h[3], CH_MEDIA_MAX_PACKET);
    ch_media_viewer_leave(&v);
    ch_media_stream_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_viewer_starts_at_the_keyframes_access_unit_and_follows_live),
        cmocka_unit_test(test_a_viewer_joining_before_the_first_keyframe_starts_at_it),
        cmocka_unit_test(test_a_doomed_viewer_left_open_never_points_at_a_released_packet),
        cmocka_unit_test(test_a_held_viewer_is_doomed_not_moved_and_told_before_its_packet_goes),
        cmocka_unit_test(test_whole_frames_viewers_never_get_half_a_frame),
        cmocka_unit_test(test_dropping_a_partial_keyframe_leaves_no_gop_to_join),
        cmocka_unit_test(test_every_viewer_reads_the_same_stored_bytes_and_partial_writes_resume),
        cmocka_unit_test(test_a_slow_viewer_skips_to_the_latest_keyframe_then_is_doomed),
        cmocka_unit_test(test_the_window_bounds_memory_and_a_warm_stream_allocates_nothing),
        cmocka_unit_test(test_bad_packets_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
