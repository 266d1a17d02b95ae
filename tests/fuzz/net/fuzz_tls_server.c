/*
 * libFuzzer target for the server side of a TLS connection (tls.c): the bytes a peer sends,
 * cut into reads of sizes the input chooses, go through the connection's ciphertext buffer and
 * BIO into OpenSSL's handshake and record layer, as conn.c's read path feeds them. Whatever
 * comes, the connection must end in an answer (1: ready; 0: more needed; an error with its
 * reason), never crash, read past its buffer or leak. What the server writes goes to
 * /dev/null. The context (a P-256 certificate of a CA made by the PKI) is made once.
 */
#include <assert.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"
#include "net/tls_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ch_net_tls_t *server_ctx(void)
{
    static ch_net_tls_t *ctx;
    if (ctx != NULL) {
        return ctx;
    }
    char dir[] = "/tmp/ch_fuzz_tls_XXXXXX";
    char *err = NULL;
    if (mkdtemp(dir) == NULL || ch_net_pki_ca_make(dir, "fuzz-ca", 2, 1, &err) != 0) {
        abort();
    }
    const char *names[] = {"127.0.0.1", "localhost"};
    char crt[64], key[64];
    snprintf(crt, sizeof(crt), "%s/server.crt", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    ch_net_pki_cert_req_t req = {
        .role = CH_NET_PKI_SERVER, .cn = "hub", .names = names, .n_names = 2, .days = 2};
    if (ch_net_pki_cert_make(dir, &req, crt, key, 1, &err) != 0) {
        abort();
    }
    ch_net_tls_config_t cfg = {.cert_file = crt, .key_file = key, .alpn = "http/1.1"};
    char msg[200];
    if (ch_net_tls_server_new(&cfg, &ctx, msg, sizeof(msg)) != 0) {
        abort();
    }
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int devnull = -1;
    if (devnull < 0) {
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    }
    if (size < 1) {
        return 0;
    }
    size_t step = 1 + data[0] * 64u; /* bytes per read: 1 .. 16321 */
    data++;
    size--;
    char err[160];
    ch_net_tls_conn_t *t = ch_net__tls_conn_new(server_ctx(), NULL, NULL, err, sizeof(err));
    assert(t != NULL);
    t->raw_fd = devnull;
    uint8_t plain[4096];
    int done = 0;
    for (size_t off = 0; off < size && !done;) {
        size_t n = size - off < step ? size - off : step;
        if (n > t->cin_cap - t->cin_len) {
            n = t->cin_cap - t->cin_len;
        }
        memcpy(t->cin + t->cin_len, data + off, n);
        t->cin_len += n;
        off += n;
        int rc = ch_net__tls_handshake(t);
        if (rc < 0) {
            assert(t->err[0] != '\0');
            done = 1;
        }
        while (rc == 1 && !done) {
            size_t got = 0;
            int r = ch_net__tls_read(t, plain, sizeof(plain), &got);
            assert(got <= sizeof(plain));
            if (r <= 0) {
                done = r < 0;
                break;
            }
        }
        if (t->cin_off == t->cin_len) {
            t->cin_off = t->cin_len = 0;
        } else if (t->cin_len == t->cin_cap && t->cin_off == 0) {
            break; /* OpenSSL takes nothing more: as a full buffer, the connection would end */
        } else if (t->cin_off > 0) {
            memmove(t->cin, t->cin + t->cin_off, t->cin_len - t->cin_off);
            t->cin_len -= t->cin_off;
            t->cin_off = 0;
        }
    }
    ch_net__tls_conn_free(t);
    return 0;
}
