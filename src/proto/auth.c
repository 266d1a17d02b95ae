/*
 * RTSP (and HTTP) authentication on the client side (proto.h): WWW-Authenticate challenges,
 * and Authorization answers for Basic (RFC 7617) and Digest (RFC 2617, RFC 7616) with MD5 or
 * SHA-256 through OpenSSL's EVP interface.
 *
 * Challenge values are sliced, not copied, so a quoted string with a backslash escape cannot
 * be represented; such challenges are refused as unsupported (no camera seen sends one).
 */
#include "proto/proto.h"
#include "proto/text.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
        return 1;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A cursor over a header value. */
typedef struct cursor {
    const char *p;
    size_t len;
    size_t i;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->i < c->len && (c->p[c->i] == ' ' || c->p[c->i] == '\t')) {
        c->i++;
    }
}

static ch_slice_t read_token(cursor_t *c)
{
    size_t start = c->i;
    while (c->i < c->len && is_tchar((unsigned char)c->p[c->i])) {
        c->i++;
    }
    return (ch_slice_t){c->p + start, c->i - start};
}

/* Reads a token or a quoted string (without its quotes) at the cursor. */
static int read_value(cursor_t *c, ch_slice_t *out)
{
    if (c->i < c->len && c->p[c->i] == '"') {
        size_t start = ++c->i;
        while (c->i < c->len && c->p[c->i] != '"') {
            if (c->p[c->i] == '\\') {
                return CH_EUNSUPP;
            }
            c->i++;
        }
        if (c->i >= c->len) {
            return CH_EPARSE;
        }
        *out = (ch_slice_t){c->p + start, c->i - start};
        c->i++;
        return 0;
    }
    *out = read_token(c);
    return out->len > 0 ? 0 : CH_EPARSE;
}

/* Tells whether the comma-separated qop list offers "auth". */
static int qop_has_auth(ch_slice_t v)
{
    ch_slice_t rest = v;
    while (rest.len > 0) {
        if (ch_proto__ieq(ch_proto__trim(ch_proto__split(&rest, ',')), "auth")) {
            return 1;
        }
    }
    return 0;
}

int ch_proto_auth_parse_challenge(ch_slice_t value, ch_proto_auth_challenge_t *out)
{
    memset(out, 0, sizeof(*out));
    out->value = value;
    cursor_t c = {value.ptr, value.len, 0};
    skip_ws(&c);
    ch_slice_t scheme = read_token(&c);
    if (scheme.len == 0) {
        return CH_EPARSE;
    }
    if (ch_proto__ieq(scheme, "basic")) {
        out->scheme = CH_PROTO_AUTH_BASIC;
    } else if (ch_proto__ieq(scheme, "digest")) {
        out->scheme = CH_PROTO_AUTH_DIGEST;
        out->algorithm = CH_PROTO_DIGEST_MD5;
    } else {
        return CH_EUNSUPP;
    }
    if (c.i < c.len && c.p[c.i] != ' ' && c.p[c.i] != '\t') {
        return CH_EPARSE;
    }
    int has_qop = 0;
    int rc = 0;
    for (;;) {
        while (c.i < c.len && (c.p[c.i] == ' ' || c.p[c.i] == '\t' || c.p[c.i] == ',')) {
            c.i++;
        }
        if (c.i >= c.len) {
            break;
        }
        ch_slice_t name = read_token(&c);
        if (name.len == 0) {
            return CH_EPARSE;
        }
        skip_ws(&c);
        if (c.i >= c.len || c.p[c.i] != '=') {
            /* "Digest ..., Basic realm=...": a second challenge in the same value starts
             * here. Only the first is read; ch_proto_auth_pick looks at every header. */
            break;
        }
        c.i++;
        skip_ws(&c);
        ch_slice_t v;
        rc = read_value(&c, &v);
        if (rc < 0) {
            return rc;
        }
        skip_ws(&c);
        if (c.i < c.len && c.p[c.i] != ',') {
            return CH_EPARSE;
        }
        if (ch_proto__ieq(name, "realm")) {
            out->realm = v;
        } else if (out->scheme != CH_PROTO_AUTH_DIGEST) {
            continue;
        } else if (ch_proto__ieq(name, "nonce")) {
            out->nonce = v;
        } else if (ch_proto__ieq(name, "opaque")) {
            out->opaque = v;
            out->has_opaque = 1;
        } else if (ch_proto__ieq(name, "algorithm")) {
            if (ch_proto__ieq(v, "md5")) {
                out->algorithm = CH_PROTO_DIGEST_MD5;
            } else if (ch_proto__ieq(v, "sha-256")) {
                out->algorithm = CH_PROTO_DIGEST_SHA256;
            } else {
                rc = CH_EUNSUPP;
            }
        } else if (ch_proto__ieq(name, "qop")) {
            has_qop = 1;
            out->qop_auth = qop_has_auth(v);
        } else if (ch_proto__ieq(name, "stale")) {
            out->stale = ch_proto__ieq(v, "true");
        }
    }
    if (out->scheme == CH_PROTO_AUTH_DIGEST) {
        if (out->realm.ptr == NULL || out->nonce.len == 0) {
            return CH_EPARSE;
        }
        if (rc < 0 || (has_qop && !out->qop_auth)) {
            return CH_EUNSUPP; /* MD5-sess, SHA-512-256, or qop=auth-int alone */
        }
    }
    return 0;
}

static int challenge_rank(const ch_proto_auth_challenge_t *c)
{
    if (c->scheme == CH_PROTO_AUTH_BASIC) {
        return 1;
    }
    return c->algorithm == CH_PROTO_DIGEST_SHA256 ? 3 : 2;
}

int ch_proto_auth_pick(const ch_proto_header_t *headers, size_t n, ch_proto_auth_challenge_t *out)
{
    int best = 0;
    for (size_t k = 0; k < n; k++) {
        if (!ch_proto__ieq(headers[k].name, "www-authenticate")) {
            continue;
        }
        ch_proto_auth_challenge_t c;
        if (ch_proto_auth_parse_challenge(headers[k].value, &c) < 0) {
            continue;
        }
        int rank = challenge_rank(&c);
        if (rank > best) {
            best = rank;
            *out = c;
        }
    }
    return best > 0 ? 0 : CH_ENOENT;
}

/* Hashes the parts joined by ':' and writes the digest in lower-case hex to hex. */
static int hash_hex(const EVP_MD *md, const ch_slice_t *parts, size_t n, char hex[65])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int rc = CH_EIO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        if ((k > 0 && EVP_DigestUpdate(ctx, ":", 1) != 1) ||
            (parts[k].len > 0 && EVP_DigestUpdate(ctx, parts[k].ptr, parts[k].len) != 1)) {
            goto out;
        }
    }
    if (EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 || dlen > 32) {
        goto out;
    }
    ch_hex_encode(hex, 65, digest, dlen, 0);
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int ch_proto_auth_digest_response(const ch_proto_auth_challenge_t *c,
                                  const ch_proto_auth_request_t *r, char hex[65])
{
    const EVP_MD *md = c->algorithm == CH_PROTO_DIGEST_SHA256 ? EVP_sha256() : EVP_md5();
    char ha1[65], ha2[65], nc[9];
    ch_slice_t a1[] = {r->user, c->realm, r->password};
    ch_slice_t method = {r->method, strlen(r->method)};
    ch_slice_t a2[] = {method, r->uri};
    int rc = hash_hex(md, a1, CH_ARRAY_SIZE(a1), ha1);
    if (rc == 0) {
        rc = hash_hex(md, a2, CH_ARRAY_SIZE(a2), ha2);
    }
    if (rc < 0) {
        return rc;
    }
    ch_slice_t h1 = {ha1, strlen(ha1)};
    ch_slice_t h2 = {ha2, strlen(ha2)};
    if (c->qop_auth) {
        snprintf(nc, sizeof(nc), "%08x", (unsigned)r->nc);
        ch_slice_t parts[] = {h1, c->nonce, {nc, 8}, r->cnonce, CH_SLICE_LIT("auth"), h2};
        return hash_hex(md, parts, CH_ARRAY_SIZE(parts), hex);
    }
    ch_slice_t parts[] = {h1, c->nonce, h2};
    return hash_hex(md, parts, CH_ARRAY_SIZE(parts), hex);
}

/* Text that goes between double quotes in a header: no quote, backslash or control byte. */
static int quotable(ch_slice_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            return 0;
        }
    }
    return 1;
}

static int cnonce_ok(ch_slice_t s)
{
    if (s.len < 8) {
        return 0;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                 (c != '\0' && strchr("+/=._-", c) != NULL);
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

static int append_basic(const ch_proto_auth_request_t *r, ch_buf_t *out)
{
    for (size_t i = 0; i < r->user.len; i++) {
        if (r->user.ptr[i] == ':') {
            return CH_EINVAL; /* RFC 7617: the first ':' ends the user id */
        }
    }
    if (!quotable(r->user) || r->user.len > 4096 || r->password.len > 4096) {
        return CH_EINVAL;
    }
    size_t plain_len = r->user.len + 1 + r->password.len;
    unsigned char *plain = ch_malloc(plain_len);
    memcpy(plain, r->user.ptr, r->user.len);
    plain[r->user.len] = ':';
    memcpy(plain + r->user.len + 1, r->password.ptr, r->password.len);
    /* EVP_EncodeBlock writes 4 bytes per 3 input bytes and a NUL. */
    unsigned char *b64 = ch_malloc(4 * ((plain_len + 2) / 3) + 1);
    int n = EVP_EncodeBlock(b64, plain, (int)plain_len);
    OPENSSL_cleanse(plain, plain_len);
    ch_free(plain);
    ch_buf_append_str(out, "Basic ");
    ch_buf_append(out, b64, (size_t)n);
    ch_free(b64);
    return 0;
}

int ch_proto_auth_authorization(const ch_proto_auth_challenge_t *c,
                                const ch_proto_auth_request_t *r, ch_buf_t *out)
{
    if (c->scheme == CH_PROTO_AUTH_BASIC) {
        return append_basic(r, out);
    }
    if (!quotable(r->user) || !quotable(r->uri) || r->uri.len == 0 ||
        (c->qop_auth && !cnonce_ok(r->cnonce))) {
        return CH_EINVAL;
    }
    char response[65];
    int rc = ch_proto_auth_digest_response(c, r, response);
    if (rc < 0) {
        return rc;
    }
    ch_buf_appendf(out, "Digest username=\"%.*s\", realm=\"%.*s\", nonce=\"%.*s\", uri=\"%.*s\"",
                   (int)r->user.len, r->user.ptr, (int)c->realm.len, c->realm.ptr,
                   (int)c->nonce.len, c->nonce.ptr, (int)r->uri.len, r->uri.ptr);
    ch_buf_appendf(out, ", response=\"%s\"", response);
    if (c->algorithm == CH_PROTO_DIGEST_SHA256) {
        ch_buf_append_str(out, ", algorithm=SHA-256");
    }
    if (c->has_opaque) {
        ch_buf_appendf(out, ", opaque=\"%.*s\"", (int)c->opaque.len, c->opaque.ptr);
    }
    if (c->qop_auth) {
        ch_buf_appendf(out, ", qop=auth, nc=%08x, cnonce=\"%.*s\"", (unsigned)r->nc,
                       (int)r->cnonce.len, r->cnonce.ptr);
    }
    return 0;
}
