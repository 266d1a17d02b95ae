/*
 * net/tls_conn.h: inside net only: the TLS state of one connection, between conn.c (which
 * owns the socket, the buffers and the queue) and tls.c (which owns OpenSSL).
 */
#ifndef CH_NET_TLS_CONN_H
#define CH_NET_TLS_CONN_H

#include "net/net.h"

struct ssl_st;

/* The ciphertext read buffer: a TLS record and a bit (OpenSSL keeps a partial record). */
#define CH_NET__TLS_CIN (16384 + 2048 + 5)

struct ch_net_tls_conn {
    struct ssl_st *ssl;
    ch_net_conn_t *conn; /* the connection it is on now (changes with a hand-over) */
    uint8_t *cin;        /* ciphertext the socket read, cin[cin_off, cin_len) not yet taken */
    size_t cin_off, cin_len, cin_cap;
    char *early; /* plaintext written before the handshake ended, sent once it does */
    size_t early_len;
    uint64_t hs_due; /* when the handshake must have ended (uv_now ms; 0: no deadline) */
    int server, ready, io_error;
    int peer_closed; /* close_notify read while the owner was not reading */
    int raw_fd;      /* ch_net_refuse_fd's socket, or -1 */
    int gathering;   /* inside ch_net__tls_write: records go to the thread's gather buffer */
    char pin[CH_NET_TLS_SPKI_LEN];       /* a client's pinned server key, or "" */
    char peer_spki[CH_NET_TLS_SPKI_LEN]; /* the peer's verified key, or "" */
    char err[128];                       /* why it failed */
};

/* tls.c */
ch_net_tls_conn_t *ch_net__tls_conn_new(ch_net_tls_t *ctx, const char *host, const char *pin,
                                        char *err, size_t errlen);
void ch_net__tls_conn_free(ch_net_tls_conn_t *t);
/* 1 when the handshake has ended, 0 while it needs more bytes, or an error (t->err says). */
int ch_net__tls_handshake(ch_net_tls_conn_t *t);
/* Plaintext into buf: 1 (*got bytes), 0 (needs more ciphertext), UV_EOF or an error. */
int ch_net__tls_read(ch_net_tls_conn_t *t, uint8_t *buf, size_t room, size_t *got);
/* Ciphertext not yet taken, or plaintext not yet read. */
int ch_net__tls_pending(const ch_net_tls_conn_t *t);
/* Encrypts the buffers (gathered into full records) and sends them (conn.c's raw send). */
int ch_net__tls_write(ch_net_tls_conn_t *t, const uv_buf_t *bufs, unsigned n);
int ch_net__tls_close_notify(ch_net_tls_conn_t *t);
const char *ch_net__tls_version(const ch_net_tls_conn_t *t);

/* conn.c: ciphertext to the socket at once, or (what it does not take) copied to the queue. */
int ch_net__conn_raw_send(ch_net_conn_t *c, const void *p, size_t len);

#endif /* CH_NET_TLS_CONN_H */
