/*
 * Unit tests of net's connection (conn.c) on real loops over 127.0.0.1 socket pairs: a write
 * the socket takes in part is queued and arrives whole, the queue's cap refuses more, a full
 * read buffer and a deadline are reported, close runs its callback once, a hand-over keeps
 * the bytes not yet read for the next loop, and a read buffer grows per phase up to its cap,
 * compacts only when room runs short and gives back a large buffer once idle; buffers written
 * by reference are released once, when their bytes left (or at the close), and never when the
 * socket took them at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"

typedef struct side {
    ch_net_conn_t conn;
    int errors, last_error, closed, reads;
    size_t consume;      /* bytes each read consumes (SIZE_MAX: all) */
    size_t detach_after; /* hand over once this many bytes arrived (0: never) */
    size_t stop_at;      /* stop reading once this many are held (0: never) */
    int detached_fd;
    ch_buf_t unread;
    int released, release_status, closed_at_release;
} side_t;

static void on_release(ch_net_conn_t *c, void *arg, int status)
{
    side_t *s = c->data;
    assert_ptr_equal(arg, s);
    s->released++;
    s->release_status = status;
    s->closed_at_release = s->closed;
}

/* A connected pair on 127.0.0.1: *a non-blocking (for the conn), *b blocking (the peer). */
static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(l, 1), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
    *b = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*b, (struct sockaddr *)&sin, sizeof(sin)), 0);
    *a = accept(l, NULL, NULL);
    assert_true(*a >= 0);
    close(l);
    assert_int_equal(fcntl(*a, F_SETFL, fcntl(*a, F_GETFL) | O_NONBLOCK), 0);
}

static void on_closed(ch_net_conn_t *c)
{
    ((side_t *)c->data)->closed++;
}

static void on_error(ch_net_conn_t *c, int status)
{
    side_t *s = c->data;
    s->errors++;
    s->last_error = status;
}

static void on_read(ch_net_conn_t *c)
{
    side_t *s = c->data;
    s->reads++;
    if (s->stop_at > 0 && c->in_len >= s->stop_at) {
        ch_net_conn_read_stop(c); /* as an owner does once a body is whole */
    }
    if (s->detach_after > 0 && c->in_len >= s->detach_after) {
        ch_net_conn_consume(c, s->consume);
        assert_int_equal(ch_net_conn_detach(c, &s->detached_fd, &s->unread, NULL, on_closed), 0);
        return;
    }
    if (s->consume == SIZE_MAX) {
        ch_net_conn_consume(c, c->in_len);
    }
}

static void side_open(side_t *s, uv_loop_t *loop, int fd, size_t in_cap, size_t out_cap)
{
    memset(s, 0, sizeof(*s));
    s->detached_fd = -1;
    ch_buf_init(&s->unread);
    s->conn.data = s;
    s->conn.on_read = on_read;
    s->conn.on_error = on_error;
    assert_int_equal(ch_net_conn_open(&s->conn, loop, fd, in_cap, out_cap), 0);
}

static void side_close(side_t *s, uv_loop_t *loop)
{
    ch_net_conn_close(&s->conn, on_closed);
    ch_net_conn_close(&s->conn, on_closed); /* once only */
    while (s->closed == 0) {
        uv_run(loop, UV_RUN_ONCE);
    }
    assert_int_equal(s->closed, 1);
    ch_buf_fini(&s->unread);
}

static void test_a_write_the_socket_takes_in_part_is_queued_and_arrives_whole(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    int small = 4096;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    side_t s;
    side_open(&s, &loop, a, 1024, 0);
    size_t total = 4u << 20;
    uint8_t *big = malloc(total);
    for (size_t i = 0; i < total; i++) {
        big[i] = (uint8_t)(i * 7 + i / 251);
    }
    /* Two buffers: one writev. */
    uv_buf_t bufs[2] = {uv_buf_init((char *)big, 1000),
                        uv_buf_init((char *)big + 1000, (unsigned)(total - 1000))};
    assert_int_equal(ch_net_conn_write(&s.conn, bufs, 2), 0);
    assert_true(s.conn.out_queued > 0); /* the socket took a part only */
    uint8_t *got = malloc(total);
    size_t have = 0;
    assert_int_equal(fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK), 0);
    while (have < total) {
        ssize_t n = read(b, got + have, total - have);
        if (n > 0) {
            have += (size_t)n;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_memory_equal(got, big, total);
    for (int i = 0; i < 10 && s.conn.out_queued > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(s.conn.out_queued, 0);
    assert_int_equal(s.errors, 0);
    side_close(&s, &loop);
    close(b);
    free(big);
    free(got);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_the_queue_cap_refuses_more_and_keeps_what_it_holds(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    size_t cap = 64 * 1024;
    side_open(&s, &loop, a, 1024, cap);
    char piece[16 * 1024];
    memset(piece, 'x', sizeof(piece));
    /* The peer reads nothing: the socket's buffers fill, then the queue. */
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        rc = ch_net_conn_send(&s.conn, piece, sizeof(piece));
    }
    assert_int_equal(rc, CH_ETOOBIG);
    size_t held = s.conn.out_queued;
    assert_true(held > 0 && held <= cap);
    assert_int_equal(ch_net_conn_send(&s.conn, piece, cap - held + 1), CH_ETOOBIG);
    assert_int_equal(s.conn.out_queued, held);
    assert_int_equal(s.errors, 0);
    side_close(&s, &loop);
    close(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_full_read_buffer_and_the_deadline_are_reported(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &loop, a, 16, 0);
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    /* An idle deadline: each read re-arms it; nothing consumed fills the buffer. */
    ch_net_conn_deadline(&s.conn, 5000, CH_NET_DEADLINE_IDLE);
    assert_int_equal(write(b, "0123456789abcdefXYZ", 19), 19);
    while (s.errors == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(s.last_error, UV_ENOBUFS);
    assert_int_equal(s.conn.in_len, 16);
    assert_memory_equal(s.conn.in, "0123456789abcdef", 16);
    side_close(&s, &loop);

    int c, d;
    tcp_pair(&c, &d);
    side_open(&s, &loop, c, 16, 0);
    s.consume = SIZE_MAX;
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    ch_net_conn_deadline(&s.conn, 30, CH_NET_DEADLINE_STEP);
    uint64_t t0 = uv_now(&loop);
    while (s.errors == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(s.last_error, UV_ETIMEDOUT);
    assert_true(uv_now(&loop) - t0 >= 30);
    side_close(&s, &loop);
    close(b);
    close(d);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_hand_over_keeps_the_unread_bytes_for_the_next_loop(void **state)
{
    (void)state;
    uv_loop_t one, two;
    uv_loop_init(&one);
    uv_loop_init(&two);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &one, a, 1024, 0);
    s.detach_after = 11;
    s.consume = 6; /* "hello " parsed here; "world" is the next owner's */
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    assert_int_equal(write(b, "hello world", 11), 11);
    while (s.closed == 0) {
        uv_run(&one, UV_RUN_ONCE);
    }
    assert_true(s.detached_fd >= 0);
    assert_int_equal(s.unread.len, 5);
    assert_memory_equal(s.unread.data, "world", 5);

    /* The next owner starts with them, then reads on. */
    side_t t;
    side_open(&t, &two, s.detached_fd, 8, 0);
    assert_int_equal(ch_net_conn_feed(&t.conn, s.unread.data, s.unread.len), 0);
    assert_int_equal(ch_net_conn_feed(&t.conn, "toolong", 7), CH_ETOOBIG);
    ch_buf_fini(&s.unread);
    assert_int_equal(ch_net_conn_read_start(&t.conn), 0);
    assert_int_equal(write(b, "!", 1), 1);
    while (t.reads == 0) {
        uv_run(&two, UV_RUN_ONCE);
    }
    assert_int_equal(t.conn.in_len, 6);
    assert_memory_equal(t.conn.in, "world!", 6);
    assert_int_equal(ch_net_conn_send(&t.conn, "ok", 2), 0);
    char back[2];
    assert_int_equal(read(b, back, 2), 2);
    assert_memory_equal(back, "ok", 2);
    side_close(&t, &two);
    close(b);
    assert_int_equal(uv_loop_close(&one), 0);
    assert_int_equal(uv_loop_close(&two), 0);
}

/* Writes len bytes of a pattern to the blocking peer fd and runs loop until they are read. */
static void feed_from_peer(side_t *s, uv_loop_t *loop, int fd, size_t len, size_t upto)
{
    char *p = malloc(len);
    for (size_t i = 0; i < len; i++) {
        p[i] = (char)('a' + i % 26);
    }
    size_t put = 0;
    while (put < len) {
        ssize_t w = write(fd, p + put, len - put);
        if (w > 0) {
            put += (size_t)w;
        }
        uv_run(loop, UV_RUN_NOWAIT);
    }
    while (s->conn.in_len < upto && s->errors == 0) {
        uv_run(loop, UV_RUN_ONCE);
    }
    free(p);
}

static void test_a_read_buffer_grows_by_doubling_up_to_the_cap_of_its_phase(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &loop, a, 4096, 0);
    /* A head's phase: up to 16 KiB. Nothing consumed: 16 KiB are held, then the buffer is full. */
    ch_net_conn_in_limit(&s.conn, 16384, 0);
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    feed_from_peer(&s, &loop, b, 20000, 16384);
    while (s.errors == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(s.last_error, UV_ENOBUFS);
    assert_int_equal(s.conn.in_cap, 16384);
    assert_int_equal(s.conn.in_len, 16384);
    assert_int_equal(s.conn.in[16383], (char)('a' + 16383 % 26));
    side_close(&s, &loop);
    close(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_body_of_known_size_gets_its_exact_room_and_a_large_buffer_goes_back(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &loop, a, 4096, 0);
    /* A body's phase: 100 KiB expected in all, so one growth to exactly that (not doublings). */
    size_t body = 100 * 1024;
    ch_net_conn_in_limit(&s.conn, body, body);
    s.stop_at = body;
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    feed_from_peer(&s, &loop, b, body, body);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.conn.in_len, body);
    assert_int_equal(s.conn.in_cap, body);
    assert_int_equal(s.conn.in[body - 1], (char)('a' + (body - 1) % 26));
    /* All consumed: the next read starts again in a buffer of the first size. */
    ch_net_conn_consume(&s.conn, body);
    ch_net_conn_in_limit(&s.conn, 16384, 0);
    s.consume = SIZE_MAX;
    s.stop_at = 0;
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    assert_int_equal(write(b, "x", 1), 1);
    int reads = s.reads;
    while (s.reads == reads) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(s.conn.in_cap, 4096);
    side_close(&s, &loop);
    close(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_consumed_bytes_are_moved_only_when_room_runs_short(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &loop, a, 8192, 0);
    assert_int_equal(ch_net_conn_feed(&s.conn, "0123456789", 10), 0);
    const uint8_t *first = s.conn.in;
    ch_net_conn_consume(&s.conn, 4);
    /* Consuming moves no byte: the rest is where it was. */
    assert_ptr_equal(s.conn.in, first + 4);
    assert_memory_equal(s.conn.in, "456789", 6);
    /* Plenty of room at the end: a feed goes there. */
    assert_int_equal(ch_net_conn_feed(&s.conn, "ab", 2), 0);
    assert_ptr_equal(s.conn.in, first + 4);
    /* Less than 2 KiB free at the end: compacted to the start before the feed. */
    char fill[8192 - 12 - 1024];
    memset(fill, 'f', sizeof(fill));
    assert_int_equal(ch_net_conn_feed(&s.conn, fill, sizeof(fill)), 0);
    assert_ptr_equal(s.conn.in, first + 4);
    assert_int_equal(ch_net_conn_feed(&s.conn, "Z", 1), 0);
    assert_ptr_equal(s.conn.in, first);
    assert_memory_equal(s.conn.in, "456789ab", 8);
    assert_int_equal(s.conn.in[s.conn.in_len - 1], 'Z');
    /* A fixed buffer (the cap it was opened with) refuses what does not fit. */
    assert_int_equal(s.conn.in_cap, 8192);
    assert_int_equal(ch_net_conn_feed(&s.conn, fill, sizeof(fill)), CH_ETOOBIG);
    side_close(&s, &loop);
    close(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_an_idle_deadline_is_pushed_back_by_reads(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &loop, a, 1024, 0);
    s.consume = SIZE_MAX;
    assert_int_equal(ch_net_conn_read_start(&s.conn), 0);
    ch_net_conn_deadline(&s.conn, 60, CH_NET_DEADLINE_IDLE);
    uint64_t t0 = uv_now(&loop);
    /* A byte every 20 ms for 150 ms: no timeout meanwhile. */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(write(b, "x", 1), 1);
        int reads = s.reads;
        while (s.reads == reads) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        usleep(20000);
        uv_update_time(&loop);
    }
    assert_int_equal(s.errors, 0);
    while (s.errors == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(s.last_error, UV_ETIMEDOUT);
    assert_true(uv_now(&loop) - t0 >= 150);
    /* A deadline of 0 stops it: nothing fires. */
    s.errors = 0;
    ch_net_conn_deadline(&s.conn, 10, CH_NET_DEADLINE_STEP);
    ch_net_conn_deadline(&s.conn, 0, CH_NET_DEADLINE_STEP);
    usleep(30000);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(s.errors, 0);
    side_close(&s, &loop);
    close(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Reads from the non-blocking peer fd until want bytes came, running loop meanwhile. */
static void drain_peer(uv_loop_t *loop, int fd, uint8_t *got, size_t want)
{
    size_t have = 0;
    while (have < want) {
        ssize_t n = read(fd, got + have, want - have);
        if (n > 0) {
            have += (size_t)n;
        }
        uv_run(loop, UV_RUN_NOWAIT);
    }
}

static void test_a_write_by_reference_is_released_once_its_bytes_left_and_keeps_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    int small = 4096;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    side_t s;
    side_open(&s, &loop, a, 1024, 0);
    /* Taken at once: 1, no release, nothing queued. */
    uv_buf_t hi = uv_buf_init("hi", 2);
    assert_int_equal(ch_net_conn_write_ref(&s.conn, &hi, 1, on_release, &s), 1);
    assert_int_equal(s.released, 0);
    assert_int_equal(s.conn.out_queued, 0);
    /* Too much for the socket: referenced, not copied; a copying write after it keeps its
     * place behind it. */
    size_t total = 512u * 1024;
    uint8_t *big = malloc(total);
    for (size_t i = 0; i < total; i++) {
        big[i] = (uint8_t)(i * 13 + i / 509);
    }
    uv_buf_t two[2] = {uv_buf_init((char *)big, 3000),
                       uv_buf_init((char *)big + 3000, (unsigned)(total - 3000))};
    assert_int_equal(ch_net_conn_write_ref(&s.conn, two, 2, on_release, &s), 0);
    assert_true(s.conn.out_queued > 0);
    assert_int_equal(s.released, 0);
    assert_int_equal(ch_net_conn_send(&s.conn, "end", 3), 0);
    uint8_t *got = malloc(total + 5);
    assert_int_equal(fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK), 0);
    drain_peer(&loop, b, got, total + 5);
    assert_memory_equal(got, "hi", 2);
    assert_memory_equal(got + 2, big, total);
    assert_memory_equal(got + 2 + total, "end", 3);
    for (int i = 0; i < 10 && s.conn.out_queued > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(s.conn.out_queued, 0);
    assert_int_equal(s.released, 1);
    assert_int_equal(s.release_status, 0);
    /* The entries went to the free list: the next queued reference allocates none. */
    assert_non_null(s.conn.spare);
    assert_int_equal(s.errors, 0);
    side_close(&s, &loop);
    close(b);
    free(big);
    free(got);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_queued_reference_is_released_at_the_close_and_the_cap_counts_it(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    size_t cap = 64 * 1024;
    side_open(&s, &loop, a, 1024, cap);
    static char piece[16 * 1024];
    memset(piece, 'r', sizeof(piece));
    uv_buf_t pb = uv_buf_init(piece, sizeof(piece));
    /* The peer reads nothing: the socket fills, then the queue holds references up to the
     * cap. Each call that queued is released once; the others never. */
    int rc = 1, queued = 0;
    for (int i = 0; i < 100000 && rc >= 0; i++) {
        rc = ch_net_conn_write_ref(&s.conn, &pb, 1, on_release, &s);
        queued += rc == 0;
    }
    assert_int_equal(rc, CH_ETOOBIG);
    assert_true(queued > 0);
    assert_true(s.conn.out_queued > 0 && s.conn.out_queued <= cap);
    assert_int_equal(s.released, 0);
    ch_net_conn_close(&s.conn, on_closed);
    while (s.closed == 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    assert_int_equal(s.released, queued);
    assert_int_equal(s.release_status, UV_ECANCELED);
    assert_int_equal(s.closed_at_release, 0); /* released before the close's callback */
    ch_buf_fini(&s.unread);
    close(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_a_shutdown_sends_what_is_queued_then_the_end(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int a, b;
    tcp_pair(&a, &b);
    side_t s;
    side_open(&s, &loop, a, 1024, 0);
    assert_int_equal(ch_net_conn_send(&s.conn, "bye", 3), 0);
    assert_int_equal(ch_net_conn_shutdown(&s.conn), 0);
    assert_int_equal(ch_net_conn_send(&s.conn, "more", 4), CH_EIO);
    uint8_t got[8];
    assert_int_equal(fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK), 0);
    drain_peer(&loop, b, got, 3);
    assert_memory_equal(got, "bye", 3);
    ssize_t n;
    do {
        uv_run(&loop, UV_RUN_NOWAIT);
        n = read(b, got, sizeof(got));
    } while (n < 0);
    assert_int_equal(n, 0); /* the end */
    assert_int_equal(s.errors, 0);
    side_close(&s, &loop);
    close(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_write_the_socket_takes_in_part_is_queued_and_arrives_whole),
        cmocka_unit_test(test_the_queue_cap_refuses_more_and_keeps_what_it_holds),
        cmocka_unit_test(test_a_full_read_buffer_and_the_deadline_are_reported),
        cmocka_unit_test(test_a_hand_over_keeps_the_unread_bytes_for_the_next_loop),
        cmocka_unit_test(test_a_read_buffer_grows_by_doubling_up_to_the_cap_of_its_phase),
        cmocka_unit_test(
            test_a_body_of_known_size_gets_its_exact_room_and_a_large_buffer_goes_back),
        cmocka_unit_test(test_consumed_bytes_are_moved_only_when_room_runs_short),
        cmocka_unit_test(test_an_idle_deadline_is_pushed_back_by_reads),
        cmocka_unit_test(test_a_write_by_reference_is_released_once_its_bytes_left_and_keeps_order),
        cmocka_unit_test(test_a_queued_reference_is_released_at_the_close_and_the_cap_counts_it),
        cmocka_unit_test(test_a_shutdown_sends_what_is_queued_then_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
