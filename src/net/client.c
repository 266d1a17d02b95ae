/*
 * net/client.c: one outgoing TCP connection on a libuv loop (net.h): the host resolved (an
 * address literal at once, a name through uv_getaddrinfo on the thread pool), a non-blocking
 * connect, and a deadline over the connection's whole life. Once connected, ch_net_dial_conn
 * moves the socket into a connection (conn.c: its buffers, writes and deadline), as the health
 * probe, the alert webhook and the relay's pull do.
 *
 * Every handle and request lives in the ch_net_dial_t, so closing is one call whose callback
 * says when the caller may free or reuse it: after the timer and the socket are closed and
 * the name lookup (which uv_cancel cannot always stop) has called back.
 */
#include "net/net.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void maybe_closed(ch_net_dial_t *d)
{
    if (d->closing && d->open_handles == 0 && !d->resolving && d->closed != NULL) {
        void (*closed)(ch_net_dial_t *) = d->closed;
        d->closed = NULL;
        closed(d);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    ch_net_dial_t *d = h->data;
    d->open_handles--;
    maybe_closed(d);
}

/* The connect's outcome, reported once (never after ch_net_dial_close). */
static void report(ch_net_dial_t *d, int status)
{
    if (d->reported || d->closing) {
        return;
    }
    d->reported = 1;
    d->connected = status == 0;
    d->on_connect(d, status);
}

static void on_deadline(uv_timer_t *t)
{
    ch_net_dial_t *d = t->data;
    if (d->closing) {
        return;
    }
    if (!d->reported) {
        if (d->resolving) {
            (void)uv_cancel((uv_req_t *)&d->gai); /* its callback reports, cancelled or not */
            d->timed_out = 1;
            return;
        }
        report(d, UV_ETIMEDOUT);
        return;
    }
    if (d->on_deadline != NULL) {
        d->on_deadline(d);
    }
}

static void on_connected(uv_connect_t *req, int status)
{
    ch_net_dial_t *d = req->data;
    report(d, status);
}

static void connect_to(ch_net_dial_t *d, const struct sockaddr *sa)
{
    int rc = uv_tcp_init(d->loop, &d->tcp);
    if (rc != 0) {
        report(d, rc);
        return;
    }
    d->tcp.data = d;
    d->tcp_open = 1;
    d->open_handles++;
    d->connect.data = d;
    rc = uv_tcp_connect(&d->connect, &d->tcp, sa, on_connected);
    if (rc != 0) {
        report(d, rc);
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ch_net_dial_t *d = req->data;
    d->resolving = 0;
    if (d->closing) {
        uv_freeaddrinfo(res);
        maybe_closed(d);
        return;
    }
    if (d->timed_out) {
        report(d, UV_ETIMEDOUT);
    } else if (status != 0 || res == NULL) {
        report(d, status != 0 ? status : UV_EAI_NONAME);
    } else {
        d->resolved = 1;
        struct sockaddr_storage ss;
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        if (ss.ss_family == AF_INET6) {
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(d->port);
        } else {
            ((struct sockaddr_in *)&ss)->sin_port = htons(d->port);
        }
        connect_to(d, (struct sockaddr *)&ss);
    }
    uv_freeaddrinfo(res);
}

void ch_net_dial_start(ch_net_dial_t *d, uv_loop_t *loop, const char *host, uint16_t port,
                       uint64_t deadline_ms, ch_net_dial_cb on_connect)
{
    void *data = d->data;
    ch_net_dial_deadline_cb on_dl = d->on_deadline;
    memset(d, 0, sizeof(*d));
    d->data = data;
    d->on_deadline = on_dl;
    d->loop = loop;
    d->port = port;
    d->on_connect = on_connect;
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    d->open_handles = 1;
    uint64_t now = uv_now(loop);
    uv_timer_start(&d->timer, on_deadline, deadline_ms > now ? deadline_ms - now : 0, 0);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    if (uv_ip4_addr(host, port, &a4) == 0) {
        d->resolved = 1;
        connect_to(d, (const struct sockaddr *)&a4);
        return;
    }
    if (uv_ip6_addr(host, port, &a6) == 0) {
        d->resolved = 1;
        connect_to(d, (const struct sockaddr *)&a6);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    d->gai.data = d;
    int rc = uv_getaddrinfo(loop, &d->gai, on_resolved, host, NULL, &hints);
    if (rc != 0) {
        report(d, rc);
        return;
    }
    d->resolving = 1;
}

void ch_net_dial_close(ch_net_dial_t *d, void (*closed)(ch_net_dial_t *d))
{
    assert(!d->closing);
    d->closing = 1;
    d->closed = closed;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_handle_closed);
    if (d->tcp_open) {
        d->tcp_open = 0;
        uv_close((uv_handle_t *)&d->tcp, on_handle_closed);
    }
    if (d->resolving) {
        (void)uv_cancel((uv_req_t *)&d->gai); /* its callback still runs */
    }
}

int ch_net_dial_conn(ch_net_dial_t *d, struct ch_net_conn *c, size_t in_cap, size_t out_cap,
                     void (*closed)(ch_net_dial_t *d))
{
    assert(d->connected && !d->closing);
    /* What is left of the dial's deadline, at least 1 ms: 0 would mean none. */
    uint64_t left = uv_timer_get_due_in(&d->timer);
    /* The dial's handle closes its descriptor; a duplicate keeps the socket for c. A failed
     * duplicate (-1) still opens c, which uv_tcp_open refuses, so that c is always closed. */
    uv_os_fd_t ofd;
    int fd = uv_fileno((uv_handle_t *)&d->tcp, &ofd) == 0 ? fcntl(ofd, F_DUPFD_CLOEXEC, 0) : -1;
    int dup_rc = fd < 0 ? (errno != 0 ? -errno : UV_EBADF) : 0;
    int rc = ch_net_conn_open(c, d->loop, fd, in_cap, out_cap);
    ch_net_dial_close(d, closed);
    if (dup_rc != 0) {
        return dup_rc;
    }
    if (rc != 0) {
        (void)close(fd);
        return rc;
    }
    ch_net_conn_deadline(c, left > 0 ? left : 1, CH_NET_DEADLINE_STEP);
    return 0;
}
