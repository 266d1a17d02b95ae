/*
 * Node keys and checkpoint notes: Ed25519 keys in the text forms of C2SP signed notes (as Go's
 * golang.org/x/mod/sumdb/note writes them), and the tlog-checkpoint note that carries a tree
 * size and root.
 */
#include "audit/audit_internal.h"

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_ALG_ED25519 0x01
#define SIG_LINE_MAX    100 /* signature lines accepted in one note */

/* 1 when name is a valid key name: non-empty, printable ASCII, no space and no '+', the rules
 * of signed notes restricted to ASCII so that names never need escaping in logs. */
static int key_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > CH_AUDIT_KEY_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || c == '+') {
            return 0;
        }
    }
    return 1;
}

int ch_audit_key_name_for_node(const char *node_id, char *out, size_t cap)
{
    int n;
    if (node_id == NULL || node_id[0] == '\0') {
        n = snprintf(out, cap, "%s", CH_AUDIT_DEFAULT_NAME);
    } else {
        n = snprintf(out, cap, "%s/%s", CH_AUDIT_DEFAULT_NAME, node_id);
    }
    if (n < 0 || (size_t)n >= cap || !key_name_valid(out, (size_t)n)) {
        if (cap > 0) {
            out[0] = '\0';
        }
        return CH_EINVAL;
    }
    return 0;
}

/* The key id of signed notes: SHA-256(name || "\n" || 0x01 || pk), first 4 bytes. */
static void key_id_compute(const char *name, const uint8_t pk[32], uint8_t id[4])
{
    crypto_hash_sha256_state st;
    uint8_t h[32];
    uint8_t alg = KEY_ALG_ED25519;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, (const uint8_t *)"\n", 1);
    crypto_hash_sha256_update(&st, &alg, 1);
    crypto_hash_sha256_update(&st, pk, 32);
    crypto_hash_sha256_final(&st, h);
    memcpy(id, h, 4);
}

/* Appends base64 (standard alphabet, padded) of bin to b. */
static void b64_append(ch_buf_t *b, const uint8_t *bin, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    ch_buf_reserve(b, cap);
    sodium_bin2base64(b->data + b->len, cap, bin, len, sodium_base64_VARIANT_ORIGINAL);
    b->len += strlen(b->data + b->len);
}

/* Decodes exactly `want` bytes of padded standard base64 from [p, p+n): 0 or CH_EPARSE. */
static int b64_decode_exact(const char *p, size_t n, uint8_t *out, size_t want)
{
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, want, p, n, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != want || end != p + n) {
        return CH_EPARSE;
    }
    return 0;
}

void ch_audit_key_wipe(ch_audit_key_t *key)
{
    if (key != NULL) {
        sodium_memzero(key->sk, sizeof(key->sk));
        key->has_secret = 0;
    }
}

int ch_audit_pubkey_format(const ch_audit_key_t *key, char *out, size_t cap)
{
    ch_buf_t b = {0};
    char id[9];
    uint8_t raw[33];
    ch_hex_encode(id, sizeof(id), key->key_id, 4, 0);
    raw[0] = KEY_ALG_ED25519;
    memcpy(raw + 1, key->pk, 32);
    ch_buf_appendf(&b, "%s+%s+", key->name, id);
    b64_append(&b, raw, sizeof(raw));
    int rc = 0;
    if (b.len + 1 > cap) {
        rc = CH_ETOOBIG;
    } else {
        memcpy(out, b.data, b.len + 1);
    }
    ch_buf_fini(&b);
    return rc;
}

/* Parses "<prefix><name>+<hex8>+<base64(0x01 || 32 bytes)>" after trimming white space,
 * giving the name, the key id and the 32 key bytes. Shared by public and private keys. */
static int key_text_parse(const char *text, const char *prefix, char *name, uint8_t id[4],
                          uint8_t key32[32], char **err)
{
    const char *p = text, *e = text + strlen(text);
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) {
        e--;
    }
    size_t pl = strlen(prefix);
    if ((size_t)(e - p) < pl || memcmp(p, prefix, pl) != 0) {
        ch_audit__set_err(err, "key does not start with \"%s\"", prefix);
        return CH_EPARSE;
    }
    p += pl;
    const char *plus1 = memchr(p, '+', (size_t)(e - p));
    const char *plus2 = plus1 ? memchr(plus1 + 1, '+', (size_t)(e - plus1 - 1)) : NULL;
    if (plus2 == NULL || !key_name_valid(p, (size_t)(plus1 - p)) || plus2 - plus1 - 1 != 8) {
        ch_audit__set_err(err, "key is not of the form NAME+KEYID+BASE64");
        return CH_EPARSE;
    }
    memcpy(name, p, (size_t)(plus1 - p));
    name[plus1 - p] = '\0';
    if (ch_hex_decode(plus1 + 1, 8, id, 4, CH_HEX_LOWER_ONLY) != 0) {
        ch_audit__set_err(err, "key id is not 8 lowercase hex digits");
        return CH_EPARSE;
    }
    uint8_t raw[33];
    if (b64_decode_exact(plus2 + 1, (size_t)(e - plus2 - 1), raw, sizeof(raw)) != 0) {
        ch_audit__set_err(err, "key material is not base64 of 33 bytes");
        return CH_EPARSE;
    }
    if (raw[0] != KEY_ALG_ED25519) {
        ch_audit__set_err(err, "key algorithm %u is not Ed25519 (1)", raw[0]);
        return CH_EPARSE;
    }
    memcpy(key32, raw + 1, 32);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

int ch_audit_pubkey_parse(const char *text, ch_audit_key_t *key, char **err)
{
    memset(key, 0, sizeof(*key));
    if (err != NULL) {
        *err = NULL;
    }
    if (sodium_init() < 0) {
        return CH_EIO;
    }
    uint8_t id[4];
    int rc = key_text_parse(text, "", key->name, id, key->pk, err);
    if (rc != 0) {
        return rc;
    }
    key_id_compute(key->name, key->pk, key->key_id);
    if (memcmp(id, key->key_id, 4) != 0) {
        ch_audit__set_err(err, "key id does not match the key name and key");
        memset(key, 0, sizeof(*key));
        return CH_EPARSE;
    }
    return 0;
}

/* Reads a small text file whole into *out (free with ch_free). 0, -errno, CH_ETOOBIG. */
static int read_small_file(const char *path, char **out, mode_t *mode)
{
    *out = NULL;
    struct stat st;
    int fd = ch_file_open_stat(path, &st);
    if (fd < 0) {
        return fd;
    }
    int rc = 0;
    if (mode != NULL) {
        *mode = st.st_mode;
    }
    if (st.st_size > 4096) {
        rc = CH_ETOOBIG;
        goto out;
    }
    char *buf = ch_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
out:
    close(fd);
    return rc;
}

/* Creates path with O_EXCL, writes text and fsyncs it, so that a key file is either complete
 * on disk or absent after a crash (the caller removes a failed one). */
static int write_new_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        return -errno;
    }
    int rc = ch_write_all(fd, text, strlen(text));
    if (rc == 0 && fchmod(fd, mode) != 0) {
        rc = -errno;
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    close(fd);
    return rc;
}

int ch_audit_keys_init(const char *data_dir, char **err)
{
    return ch_audit_keys_init_named(data_dir, CH_AUDIT_DEFAULT_NAME, err);
}

/* Makes the key pair. The secret file is written first and with O_EXCL, so that two racing
 * callers cannot both succeed and an existing key is never replaced; node.pub follows and is
 * rewritten if a crash left it missing. */
int ch_audit_keys_init_named(const char *data_dir, const char *name, char **err)
{
    if (err != NULL) {
        *err = NULL;
    }
    if (data_dir == NULL || name == NULL || !key_name_valid(name, strlen(name))) {
        ch_audit__set_err(err, "invalid key name");
        return CH_EINVAL;
    }
    if (sodium_init() < 0) {
        ch_audit__set_err(err, "libsodium failed to initialise");
        return CH_EIO;
    }
    ch_buf_t dir = {0}, keyp = {0}, pubp = {0}, text = {0};
    ch_audit_key_t key;
    uint8_t seed[32], raw[33];
    int rc = 0;
    memset(&key, 0, sizeof(key));
    ch_buf_appendf(&dir, "%s/keys", data_dir);
    ch_buf_appendf(&keyp, "%s/node.key", dir.data);
    ch_buf_appendf(&pubp, "%s/node.pub", dir.data);
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        ch_audit__set_err(err, "cannot create %s: %s", data_dir, strerror(errno));
        goto out;
    }
    if (mkdir(dir.data, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        ch_audit__set_err(err, "cannot create %s: %s", dir.data, strerror(errno));
        goto out;
    }
    if (access(keyp.data, F_OK) == 0) {
        rc = CH_EEXIST;
        ch_audit__set_err(err, "%s exists; refusing to overwrite a node key", keyp.data);
        goto out;
    }
    snprintf(key.name, sizeof(key.name), "%s", name);
    randombytes_buf(seed, sizeof(seed));
    crypto_sign_seed_keypair(key.pk, key.sk, seed);
    key_id_compute(key.name, key.pk, key.key_id);
    char id[9];
    ch_hex_encode(id, sizeof(id), key.key_id, 4, 0);
    raw[0] = KEY_ALG_ED25519;
    memcpy(raw + 1, seed, 32);
    ch_buf_appendf(&text, "PRIVATE+KEY+%s+%s+", key.name, id);
    b64_append(&text, raw, sizeof(raw));
    ch_buf_append_char(&text, '\n');
    rc = write_new_file(keyp.data, text.data, 0600);
    sodium_memzero(text.data, text.len);
    if (rc == CH_EEXIST || rc == -EEXIST) {
        rc = CH_EEXIST;
        ch_audit__set_err(err, "%s exists; refusing to overwrite a node key", keyp.data);
        goto out;
    }
    if (rc != 0) {
        ch_audit__set_err(err, "cannot write %s: %s", keyp.data, ch_strerror(rc));
        unlink(keyp.data);
        goto out;
    }
    char pub[CH_AUDIT_KEY_NAME_MAX + 80];
    rc = ch_audit_pubkey_format(&key, pub, sizeof(pub) - 1);
    assert(rc == 0);
    size_t pl = strlen(pub);
    pub[pl] = '\n';
    pub[pl + 1] = '\0';
    unlink(pubp.data);
    rc = write_new_file(pubp.data, pub, 0644);
    if (rc != 0) {
        ch_audit__set_err(err, "cannot write %s: %s", pubp.data, ch_strerror(rc));
        goto out;
    }
    rc = ch_audit__fsync_dir(dir.data);
    if (rc != 0) {
        ch_audit__set_err(err, "cannot sync %s: %s", dir.data, ch_strerror(rc));
    }
out:
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(raw, sizeof(raw));
    ch_audit_key_wipe(&key);
    ch_buf_fini(&dir);
    ch_buf_fini(&keyp);
    ch_buf_fini(&pubp);
    ch_buf_fini(&text);
    return rc;
}

int ch_audit_keys_load_public(const char *data_dir, ch_audit_key_t *key, char **err)
{
    if (err != NULL) {
        *err = NULL;
    }
    ch_buf_t path = {0};
    char *text = NULL, *perr = NULL;
    ch_buf_appendf(&path, "%s/keys/node.pub", data_dir);
    int rc = read_small_file(path.data, &text, NULL);
    if (rc != 0) {
        ch_audit__set_err(err, "cannot read %s: %s", path.data, ch_strerror(rc));
        goto out;
    }
    rc = ch_audit_pubkey_parse(text, key, &perr);
    if (rc != 0) {
        ch_audit__set_err(err, "%s: %s", path.data, perr);
    }
out:
    ch_free(perr);
    ch_free(text);
    ch_buf_fini(&path);
    return rc;
}

/* Reads the secret key, rebuilds the key pair from its seed, and cross-checks node.pub: a
 * node.pub that names another key would make every checkpoint fail verification later, so it
 * is better refused now. */
int ch_audit_keys_load(const char *data_dir, ch_audit_key_t *key, char **err)
{
    if (err != NULL) {
        *err = NULL;
    }
    memset(key, 0, sizeof(*key));
    if (sodium_init() < 0) {
        ch_audit__set_err(err, "libsodium failed to initialise");
        return CH_EIO;
    }
    ch_buf_t path = {0};
    char *text = NULL, *perr = NULL;
    uint8_t id[4], seed[32];
    mode_t mode = 0;
    ch_buf_appendf(&path, "%s/keys/node.key", data_dir);
    int rc = read_small_file(path.data, &text, &mode);
    if (rc != 0) {
        ch_audit__set_err(err, "cannot read %s: %s%s", path.data, ch_strerror(rc),
                          rc == CH_ENOENT ? " (run `cctvhub keys init`)" : "");
        goto out;
    }
    if (mode & 077) {
        ch_log(CH_LOG_WARN, "audit",
               "msg=\"node key is readable by group or others\" mode=%04o path=%s",
               (unsigned)(mode & 07777), path.data);
    }
    rc = key_text_parse(text, "PRIVATE+KEY+", key->name, id, seed, &perr);
    if (rc != 0) {
        ch_audit__set_err(err, "%s: %s", path.data, perr);
        goto out;
    }
    crypto_sign_seed_keypair(key->pk, key->sk, seed);
    key->has_secret = 1;
    key_id_compute(key->name, key->pk, key->key_id);
    if (memcmp(id, key->key_id, 4) != 0) {
        rc = CH_EPARSE;
        ch_audit__set_err(err, "%s: key id does not match the key", path.data);
        goto out;
    }
    ch_audit_key_t pub;
    char *perr2 = NULL;
    int prc = ch_audit_keys_load_public(data_dir, &pub, &perr2);
    if (prc == 0 && (strcmp(pub.name, key->name) != 0 || memcmp(pub.pk, key->pk, 32) != 0)) {
        rc = CH_EPARSE;
        ch_audit__set_err(err, "%s/keys/node.pub is not the public key of node.key", data_dir);
    } else if (prc != 0 && prc != CH_ENOENT) {
        rc = prc;
        ch_audit__set_err(err, "%s", perr2);
    }
    ch_free(perr2);
out:
    if (rc != 0) {
        ch_audit_key_wipe(key);
        memset(key, 0, sizeof(*key));
    }
    sodium_memzero(seed, sizeof(seed));
    if (text != NULL) {
        sodium_memzero(text, strlen(text));
    }
    ch_free(text);
    ch_free(perr);
    ch_buf_fini(&path);
    return rc;
}

/* ---- checkpoint notes ------------------------------------------------------------------ */

int ch_audit_checkpoint_sign(const char *origin, uint64_t size,
                             const uint8_t root[CH_AUDIT_HASH_SIZE], int64_t time_ns,
                             const ch_audit_key_t *key, char **note)
{
    *note = NULL;
    if (origin == NULL || !key_name_valid(origin, strlen(origin)) || key == NULL ||
        !key->has_secret) {
        return CH_EINVAL;
    }
    ch_buf_t b = {0};
    ch_buf_appendf(&b, "%s\n%" PRIu64 "\n", origin, size);
    b64_append(&b, root, CH_AUDIT_HASH_SIZE);
    ch_buf_appendf(&b, "\ntime %" PRId64 "\n", time_ns);
    uint8_t sig[4 + crypto_sign_BYTES];
    memcpy(sig, key->key_id, 4);
    crypto_sign_detached(sig + 4, NULL, (const uint8_t *)b.data, b.len, key->sk);
    ch_buf_appendf(&b, "\n" CH_AUDIT__EM_DASH " %s ", key->name);
    b64_append(&b, sig, sizeof(sig));
    ch_buf_append_char(&b, '\n');
    *note = ch_buf_steal(&b);
    return 0;
}

/* Finds the end of the line starting at p: returns the newline's offset, or len. */
static size_t line_end(const char *buf, size_t len, size_t p)
{
    const char *nl = memchr(buf + p, '\n', len - p);
    return nl ? (size_t)(nl - buf) : len;
}

int ch_audit__note_end(const char *buf, size_t len, size_t off, size_t *end)
{
    size_t p = off;
    /* The text: non-empty lines up to the blank line. */
    size_t lines = 0;
    for (;;) {
        if (p >= len) {
            return CH_EAGAIN;
        }
        size_t e = line_end(buf, len, p);
        if (e == len) {
            return CH_EAGAIN;
        }
        if (e == p) {
            if (lines == 0) {
                return CH_EPARSE;
            }
            p = e + 1;
            break;
        }
        lines++;
        p = e + 1;
    }
    /* One or more signature lines; the note ends before the first line that is not one. */
    size_t sigs = 0;
    size_t dl = sizeof(CH_AUDIT__EM_DASH " ") - 1;
    while (p < len) {
        size_t avail = len - p < dl ? len - p : dl;
        if (memcmp(buf + p, CH_AUDIT__EM_DASH " ", avail) != 0) {
            break;
        }
        size_t e = line_end(buf, len, p);
        if (e == len) {
            return CH_EAGAIN;
        }
        sigs++;
        p = e + 1;
    }
    if (sigs == 0) {
        return p >= len ? CH_EAGAIN : CH_EPARSE;
    }
    *end = p;
    return 0;
}

/* Parses the decimal tree size: no sign, no leading zero (as tlog-checkpoint requires). */
static int parse_size(const char *p, size_t n, uint64_t *out)
{
    if (n > 1 && p[0] == '0') {
        return CH_EPARSE;
    }
    return ch_parse_uint64(p, n, out);
}

/* Parses a checkpoint note. The text part is checked line by line (origin, size, root, then
 * extension lines, of which "time N" is ours); the signature lines are checked for form, and
 * when a key is given one of them must be by that key and verify. */
int ch_audit_checkpoint_parse(const char *note, size_t len, const ch_audit_key_t *key,
                              ch_audit_checkpoint_t *out, char **err)
{
    memset(out, 0, sizeof(*out));
    if (err != NULL) {
        *err = NULL;
    }
    if (sodium_init() < 0) {
        return CH_EIO;
    }
    size_t end;
    int rc = ch_audit__note_end(note, len, 0, &end);
    if (rc != 0 || end != len) {
        ch_audit__set_err(err, "malformed note: %s",
                          rc == CH_EAGAIN ? "it ends before its signature lines are complete"
                                          : "it is not text lines, a blank line and signature "
                                            "lines, each ending in a newline");
        return CH_EPARSE;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)note[i];
        if ((c < 0x20 && c != '\n') || c == 0x7f) {
            ch_audit__set_err(err, "malformed note: control byte 0x%02x at offset %zu", c, i);
            return CH_EPARSE;
        }
    }
    /* The text: lines until the blank line. */
    size_t p = 0, lineno = 0, text_len = 0;
    int have_time = 0;
    while (1) {
        size_t e = line_end(note, len, p);
        if (e == p) {
            text_len = p;
            p = e + 1;
            break;
        }
        const char *l = note + p;
        size_t n = e - p;
        lineno++;
        if (lineno == 1) {
            if (n > CH_AUDIT_KEY_NAME_MAX) {
                ch_audit__set_err(err, "malformed note: origin line is too long");
                return CH_EPARSE;
            }
            memcpy(out->origin, l, n);
            out->origin[n] = '\0';
        } else if (lineno == 2) {
            if (parse_size(l, n, &out->size) != 0) {
                ch_audit__set_err(err, "malformed note: line 2 (tree size) is not a number");
                return CH_EPARSE;
            }
        } else if (lineno == 3) {
            if (b64_decode_exact(l, n, out->root, CH_AUDIT_HASH_SIZE) != 0) {
                ch_audit__set_err(err,
                                  "malformed note: line 3 (root hash) is not base64 of 32 bytes");
                return CH_EPARSE;
            }
        } else if (n > 5 && memcmp(l, "time ", 5) == 0 && !have_time) {
            int64_t t;
            if (ch_parse_int64(l + 5, n - 5, &t) != 0 || t < 0) {
                ch_audit__set_err(err, "malformed note: the time line is not a number");
                return CH_EPARSE;
            }
            out->time_ns = t;
            have_time = 1;
        }
        p = e + 1;
    }
    if (lineno < 3) {
        ch_audit__set_err(err, "malformed note: fewer than 3 text lines");
        return CH_EPARSE;
    }
    /* The signatures. */
    int by_name = 0, by_key = 0, verified = 0;
    uint8_t other_id[4] = {0};
    size_t count = 0;
    size_t dl = sizeof(CH_AUDIT__EM_DASH " ") - 1;
    while (p < len) {
        size_t e = line_end(note, len, p);
        const char *l = note + p + dl;
        size_t n = e - p - dl;
        const char *sp = memchr(l, ' ', n);
        if (++count > SIG_LINE_MAX || sp == NULL || !key_name_valid(l, (size_t)(sp - l))) {
            ch_audit__set_err(err,
                              "malformed note: signature line %zu is not "
                              "\"\xe2\x80\x94 NAME BASE64\"",
                              count);
            return CH_EPARSE;
        }
        uint8_t sig[4 + crypto_sign_BYTES + 1];
        size_t got = 0;
        const char *bend = NULL;
        if (sodium_base642bin(sig, sizeof(sig), sp + 1, (size_t)(l + n - sp - 1), NULL, &got, &bend,
                              sodium_base64_VARIANT_ORIGINAL) != 0 ||
            bend != l + n || got < 5) {
            ch_audit__set_err(err, "malformed note: signature line %zu is not base64", count);
            return CH_EPARSE;
        }
        if (key != NULL && (size_t)(sp - l) == strlen(key->name) &&
            memcmp(l, key->name, (size_t)(sp - l)) == 0) {
            by_name = 1;
            if (memcmp(sig, key->key_id, 4) == 0) {
                by_key = 1;
                if (got == 4 + crypto_sign_BYTES &&
                    crypto_sign_verify_detached(sig + 4, (const uint8_t *)note, text_len,
                                                key->pk) == 0) {
                    verified = 1;
                }
            } else {
                memcpy(other_id, sig, 4);
            }
        }
        p = e + 1;
    }
    if (key == NULL) {
        return 0;
    }
    if (verified) {
        out->signed_by_key = 1;
        return 0;
    }
    char want[9], have[9];
    ch_hex_encode(want, sizeof(want), key->key_id, 4, 0);
    ch_hex_encode(have, sizeof(have), other_id, 4, 0);
    if (by_key) {
        ch_audit__set_err(err, "signature does not verify with the given key");
    } else if (by_name) {
        ch_audit__set_err(err,
                          "signature does not verify with the given key (it was made by key id "
                          "%s, the given key has id %s)",
                          have, want);
    } else {
        ch_audit__set_err(err, "no signature by the given key %s", key->name);
    }
    return CH_EPARSE;
}
