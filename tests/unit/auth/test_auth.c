/*
 * Unit tests of auth: roles, password rules, hashing and verification, tokens, API key format,
 * the Cookie and Authorization header parsers, authentication of a request against a real
 * SQLite store (sessions and API keys), the login throttle, the lock-out by user and address,
 * and the hash pool's bounds.
 *
 * The store tests open a fresh database in their own temporary directory (setup) and remove
 * it afterwards (teardown).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "support/fixture.h"

#include <uv.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static ch_slice_t sl(const char *s)
{
    return (ch_slice_t){s, strlen(s)};
}

/* Asserts that [v, v+vlen) lies inside s and holds want. */
static void assert_slice_in(ch_slice_t v, ch_slice_t s, const char *want)
{
    assert_true(v.ptr >= s.ptr);
    assert_true(v.ptr + v.len <= s.ptr + s.len);
    assert_int_equal(v.len, strlen(want));
    assert_memory_equal(v.ptr, want, v.len);
}

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* ---- roles --------------------------------------------------------------------------------- */

static void test_role_bit_and_name(void **state)
{
    (void)state;
    assert_int_equal(ch_auth_role_bit("admin"), CH_AUTH_ADMIN);
    assert_int_equal(ch_auth_role_bit("operator"), CH_AUTH_OPERATOR);
    assert_int_equal(ch_auth_role_bit("agency"), CH_AUTH_AGENCY);
    assert_int_equal(ch_auth_role_bit("provider"), CH_AUTH_PROVIDER);
    assert_int_equal(ch_auth_role_bit("auditor"), CH_AUTH_AUDITOR);
    /* "public" is a route's mask, never a role a user or key can hold. */
    assert_int_equal(ch_auth_role_bit("public"), 0);
    assert_int_equal(ch_auth_role_bit("Admin"), 0);
    assert_int_equal(ch_auth_role_bit("admi"), 0);
    assert_int_equal(ch_auth_role_bit("adminx"), 0);
    assert_int_equal(ch_auth_role_bit(""), 0);
    assert_int_equal(ch_auth_role_bit(NULL), 0);

    assert_string_equal(ch_auth_role_name(CH_AUTH_ADMIN), "admin");
    assert_string_equal(ch_auth_role_name(CH_AUTH_AUDITOR), "auditor");
    assert_string_equal(ch_auth_role_name(CH_AUTH_PUBLIC), "public");
    assert_string_equal(ch_auth_role_name(0), "none");
    assert_string_equal(ch_auth_role_name(CH_AUTH_ADMIN | CH_AUTH_OPERATOR), "none");
    assert_string_equal(ch_auth_role_name(1u << 20), "none");
    /* Every store role has a bit, and its name comes back. */
    for (const char *const *r = ch_store_roles; *r != NULL; r++) {
        unsigned b = ch_auth_role_bit(*r);
        assert_int_not_equal(b, 0);
        assert_string_equal(ch_auth_role_name(b), *r);
    }
}

static void test_roles_mask(void **state)
{
    (void)state;
    assert_int_equal(ch_auth_roles_mask("admin"), CH_AUTH_ADMIN);
    assert_int_equal(ch_auth_roles_mask("admin,operator"), CH_AUTH_ADMIN | CH_AUTH_OPERATOR);
    assert_int_equal(ch_auth_roles_mask("agency,provider,auditor"),
                     CH_AUTH_AGENCY | CH_AUTH_PROVIDER | CH_AUTH_AUDITOR);
    assert_int_equal(ch_auth_roles_mask("public"), CH_AUTH_PUBLIC);
    assert_int_equal(ch_auth_roles_mask("admin,admin"), CH_AUTH_ADMIN);
    /* One unknown word spoils the whole list: a typo must not silently drop a role. */
    assert_int_equal(ch_auth_roles_mask("admin,bogus"), 0);
    assert_int_equal(ch_auth_roles_mask("bogus"), 0);
    assert_int_equal(ch_auth_roles_mask("admin, operator"), 0);
    assert_int_equal(ch_auth_roles_mask("admin,,operator"), 0);
    assert_int_equal(ch_auth_roles_mask(",admin"), 0);
    assert_int_equal(ch_auth_roles_mask(""), 0);
    assert_int_equal(ch_auth_roles_mask(NULL), 0);
}

/* ---- passwords ----------------------------------------------------------------------------- */

static void assert_pw_ok(const char *pw, size_t len)
{
    const char *why = "not reset";
    assert_int_equal(ch_auth_password_acceptable(pw, len, &why), 0);
    assert_null(why);
}

static void assert_pw_bad(const char *pw, size_t len)
{
    const char *why = NULL;
    assert_int_equal(ch_auth_password_acceptable(pw, len, &why), CH_EINVAL);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
}

#define PW_OK(lit)  assert_pw_ok(lit, sizeof(lit) - 1)
#define PW_BAD(lit) assert_pw_bad(lit, sizeof(lit) - 1)

static void test_password_length(void **state)
{
    (void)state;
    char buf[CH_AUTH_PASSWORD_MAX + 2];
    memset(buf, 'a', sizeof(buf));
    assert_pw_bad(buf, 0);
    assert_pw_bad(buf, CH_AUTH_PASSWORD_MIN - 1);
    assert_pw_ok(buf, CH_AUTH_PASSWORD_MIN);
    assert_pw_ok(buf, CH_AUTH_PASSWORD_MAX);
    assert_pw_bad(buf, CH_AUTH_PASSWORD_MAX + 1);
    /* Bytes, not characters: three Hangul syllables are 9 bytes, too short. */
    PW_BAD("비밀번");
    PW_OK("비밀번호");
}

static void test_password_control_characters(void **state)
{
    (void)state;
    PW_OK("correct horse battery staple");
    PW_OK("p@ss w0rd!~{}\"'\\");
    PW_BAD("abcdefghij\n");
    PW_BAD("abcde\tfghij");
    PW_BAD("\x1b[31mabcdefghij");
    PW_BAD("abcdefghij\x7f");
    PW_BAD("abcde\0fghij"); /* a NUL inside the given length */
    /* C1 controls (U+0080..U+009F) are control characters too. */
    PW_BAD("abcdefghij\xc2\x85");
    PW_BAD("abcdefghij\xc2\x80");
    PW_BAD("abcdefghij\xc2\x9f");
    PW_OK("abcdefghij\xc2\xa0"); /* U+00A0, the first after them */
}

static void test_password_utf8(void **state)
{
    (void)state;
    PW_OK("비밀번호는안전해요");
    PW_OK("пароль-надёжный");
    PW_OK("abcdefghij\xf0\x9f\x98\x80"); /* U+1F600 */
    PW_OK("abcdefghij\xed\x9f\xbf");     /* U+D7FF, just below the surrogates */
    PW_OK("abcdefghij\xee\x80\x80");     /* U+E000, just above them */
    PW_OK("abcdefghij\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    PW_OK("abcdefghij\xe0\xa0\x80");     /* U+0800, shortest 3-byte */
    PW_OK("abcdefghij\xf0\x90\x80\x80"); /* U+10000, shortest 4-byte */
    PW_BAD("abcdefghij\x80");            /* a lone continuation byte */
    PW_BAD("abcdefghij\xbf");
    PW_BAD("abcdefghij\xc0\xaf");                 /* overlong '/' */
    PW_BAD("abcdefghij\xc1\xbf");                 /* overlong */
    PW_BAD("abcdefghij\xe0\x80\xaf");             /* overlong '/' in 3 bytes */
    PW_BAD("abcdefghij\xe0\x9f\xbf");             /* overlong U+07FF */
    PW_BAD("abcdefghij\xf0\x80\x80\xaf");         /* overlong '/' in 4 bytes */
    PW_BAD("abcdefghij\xf0\x8f\xbf\xbf");         /* overlong U+FFFF */
    PW_BAD("abcdefghij\xed\xa0\x80");             /* U+D800, a surrogate */
    PW_BAD("abcdefghij\xed\xbf\xbf");             /* U+DFFF */
    PW_BAD("abcdefghij\xed\xa0\xbd\xed\xb8\x80"); /* CESU-8 surrogate pair */
    PW_BAD("abcdefghij\xf4\x90\x80\x80");         /* U+110000 */
    PW_BAD("abcdefghij\xf5\x80\x80\x80");
    PW_BAD("abcdefghij\xff");
    PW_BAD("abcdefghij\xfe");
    PW_BAD("abcdefghij\xe2\x82");   /* truncated at the end */
    PW_BAD("abcdefghij\xe2\x82zz"); /* truncated inside */
    PW_BAD("abcdefghij\xf0\x9f\x98");
    PW_BAD("abcdefghij\xc3");
    /* The check must not read past len: a valid sequence cut by len is refused. */
    const char *euro = "abcdefghij\xe2\x82\xac";
    assert_pw_ok(euro, 13);
    assert_pw_bad(euro, 12);
}

static void test_password_hash_and_verify(void **state)
{
    (void)state;
    const char *pw = "correct horse battery staple";
    char h1[CH_AUTH_HASH_MAX];
    char h2[CH_AUTH_HASH_MAX];
    assert_int_equal(ch_auth_password_hash(pw, strlen(pw), h1), 0);
    assert_true(strncmp(h1, "$argon2id$", 10) == 0);
    assert_true(strlen(h1) < CH_AUTH_HASH_MAX);
    assert_null(strstr(h1, pw));
    assert_int_equal(ch_auth_password_verify(h1, pw, strlen(pw)), 0);
    assert_int_equal(ch_auth_password_verify(h1, "correct horse battery stapl", 27), CH_EPERM);
    assert_int_equal(ch_auth_password_verify(h1, "Correct horse battery staple", 28), CH_EPERM);
    assert_int_equal(ch_auth_password_verify(h1, pw, strlen(pw) - 1), CH_EPERM);
    assert_int_equal(ch_auth_password_verify(h1, "", 0), CH_EPERM);
    /* Salted: the same password hashes differently, and both verify. */
    assert_int_equal(ch_auth_password_hash(pw, strlen(pw), h2), 0);
    assert_string_not_equal(h1, h2);
    assert_int_equal(ch_auth_password_verify(h2, pw, strlen(pw)), 0);
    /* A password with a NUL inside is hashed over its given length. */
    assert_int_equal(ch_auth_password_hash("abc\0defghij", 11, h2), 0);
    assert_int_equal(ch_auth_password_verify(h2, "abc\0defghij", 11), 0);
    assert_int_equal(ch_auth_password_verify(h2, "abc", 3), CH_EPERM);

    /* Malformed hashes are refused, never a crash. */
    assert_int_equal(ch_auth_password_verify(NULL, pw, strlen(pw)), CH_EPERM);
    assert_int_equal(ch_auth_password_verify("", pw, strlen(pw)), CH_EPERM);
    assert_int_equal(ch_auth_password_verify("$argon2id$", pw, strlen(pw)), CH_EPERM);
    assert_int_equal(ch_auth_password_verify("$argon2id$v=19$garbage", pw, strlen(pw)), CH_EPERM);
    char cut[CH_AUTH_HASH_MAX];
    snprintf(cut, sizeof(cut), "%.*s", (int)strlen(h1) - 4, h1);
    assert_int_equal(ch_auth_password_verify(cut, pw, strlen(pw)), CH_EPERM);
}

static void test_password_verify_refuses_other_algorithms(void **state)
{
    (void)state;
    const char *pw = "correct horse battery staple";
    char h[crypto_pwhash_STRBYTES];
    assert_true(sodium_init() >= 0);
    /* An Argon2i string of the right password still verifies in libsodium, but is refused. */
    assert_int_equal(crypto_pwhash_str_alg(h, pw, strlen(pw), crypto_pwhash_OPSLIMIT_MIN + 2,
                                           crypto_pwhash_MEMLIMIT_MIN * 8,
                                           crypto_pwhash_ALG_ARGON2I13),
                     0);
    assert_true(strncmp(h, "$argon2i$", 9) == 0);
    assert_int_equal(crypto_pwhash_str_verify(h, pw, strlen(pw)), 0);
    assert_int_equal(ch_auth_password_verify(h, pw, strlen(pw)), CH_EPERM);
    /* Not a password hash at all (a bcrypt and a SHA-256 string). */
    assert_int_equal(
        ch_auth_password_verify("$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", pw,
                                strlen(pw)),
        CH_EPERM);
    char hex[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex(pw, strlen(pw), hex);
    assert_int_equal(ch_auth_password_verify(hex, pw, strlen(pw)), CH_EPERM);
    /* The dummy verification returns quietly for any input. */
    ch_auth_password_dummy_verify(pw, strlen(pw));
    ch_auth_password_dummy_verify("", 0);
}

/* ---- tokens and keys ----------------------------------------------------------------------- */

static void test_random_token(void **state)
{
    (void)state;
    char a[CH_AUTH_TOKEN_LEN + 1];
    char b[CH_AUTH_TOKEN_LEN + 1];
    memset(a, '#', sizeof(a));
    memset(b, '#', sizeof(b));
    ch_auth_random_token(a);
    ch_auth_random_token(b);
    assert_int_equal(strlen(a), CH_AUTH_TOKEN_LEN);
    assert_int_equal(strlen(b), CH_AUTH_TOKEN_LEN);
    for (size_t i = 0; i < CH_AUTH_TOKEN_LEN; i++) {
        assert_true(is_b64url(a[i]));
        assert_true(is_b64url(b[i]));
    }
    assert_string_not_equal(a, b);
    /* 43 base64url characters carry 258 bits: the last one holds the final 4 of the 256 bits
     * and two zero bits, so it is one of the 16 characters whose index is a multiple of 4. */
    assert_non_null(strchr("AEIMQUYcgkosw048", a[CH_AUTH_TOKEN_LEN - 1]));
    /* It decodes back to 32 bytes. */
    unsigned char raw[64];
    size_t rawlen = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof(raw), a, CH_AUTH_TOKEN_LEN, NULL, &rawlen, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    assert_int_equal(rawlen, 32);
}

static void test_sha256_hex(void **state)
{
    (void)state;
    char out[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex("abc", 3, out);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ch_auth_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ch_auth_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, out);
    assert_string_equal(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_secret_eq(void **state)
{
    (void)state;
    assert_int_equal(ch_auth_secret_eq("abcdef", 6, "abcdef", 6), 1);
    assert_int_equal(ch_auth_secret_eq("abcdef", 6, "abcdeg", 6), 0);
    assert_int_equal(ch_auth_secret_eq("abcdef", 6, "Abcdef", 6), 0);
    assert_int_equal(ch_auth_secret_eq("abcdef", 6, "abcde", 5), 0);
    assert_int_equal(ch_auth_secret_eq("abcde", 5, "abcdef", 6), 0);
    /* Only the given lengths count. */
    assert_int_equal(ch_auth_secret_eq("abcXX", 3, "abcYY", 3), 1);
    /* Nothing equals an empty secret, not even another empty one. */
    assert_int_equal(ch_auth_secret_eq("", 0, "", 0), 0);
}

#define SECRET   "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd" /* 42 + 1 below = 43 */
#define SECRET43 SECRET "e"

static void test_apikey_round_trip(void **state)
{
    (void)state;
    assert_int_equal(strlen(SECRET43), CH_AUTH_TOKEN_LEN);
    char key[CH_AUTH_APIKEY_MAX];
    int64_t id = 0;
    ch_slice_t secret = {NULL, 0};
    static const int64_t ids[] = {1, 9, 10, 42, 1234567890123LL, 922337203685477580LL, INT64_MAX};
    for (size_t i = 0; i < CH_ARRAY_SIZE(ids); i++) {
        ch_auth_apikey_format(ids[i], SECRET43, key);
        char want[CH_AUTH_APIKEY_MAX];
        snprintf(want, sizeof(want), "chk_%lld_%s", (long long)ids[i], SECRET43);
        assert_string_equal(key, want);
        assert_true(strlen(key) < CH_AUTH_APIKEY_MAX);
        id = 0;
        assert_int_equal(ch_auth_apikey_parse(key, strlen(key), &id, &secret), 0);
        assert_int_equal(id, ids[i]);
        assert_slice_in(secret, sl(key), SECRET43);
        assert_ptr_equal(secret.ptr + secret.len, key + strlen(key));
    }
    /* A random secret, as the key command makes them. */
    char tok[CH_AUTH_TOKEN_LEN + 1];
    for (int i = 0; i < 50; i++) {
        ch_auth_random_token(tok);
        ch_auth_apikey_format(7, tok, key);
        assert_int_equal(ch_auth_apikey_parse(key, strlen(key), &id, &secret), 0);
        assert_int_equal(id, 7);
        assert_slice_in(secret, sl(key), tok);
    }
    /* A secret with '_' first: the id ends at the first '_'. */
    const char *under = "chk_12__bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
    assert_int_equal(ch_auth_apikey_parse(under, strlen(under), &id, &secret), 0);
    assert_int_equal(id, 12);
    assert_slice_in(secret, sl(under), "_bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ");
}

static void assert_key_bad(const char *k)
{
    int64_t id = -5;
    ch_slice_t secret = {"untouched", 9};
    assert_int_equal(ch_auth_apikey_parse(k, strlen(k), &id, &secret), CH_EPARSE);
    assert_int_equal(id, -5);
    assert_int_equal(secret.len, 9);
}

static void test_apikey_parse_rejects(void **state)
{
    (void)state;
    assert_key_bad("");
    assert_key_bad("chk_");
    assert_key_bad("chk_1");
    assert_key_bad("chk_1_");
    assert_key_bad("chx_42_" SECRET43);
    assert_key_bad("CHK_42_" SECRET43);
    assert_key_bad("chk42_" SECRET43);
    assert_key_bad(" chk_42_" SECRET43);
    assert_key_bad("chk__" SECRET43);
    assert_key_bad("chk_0_" SECRET43);
    assert_key_bad("chk_042_" SECRET43);
    assert_key_bad("chk_00_" SECRET43);
    assert_key_bad("chk_-1_" SECRET43);
    assert_key_bad("chk_+1_" SECRET43);
    assert_key_bad("chk_9223372036854775808_" SECRET43); /* INT64_MAX + 1 */
    assert_key_bad("chk_9223372036854775810_" SECRET43);
    assert_key_bad("chk_99999999999999999999_" SECRET43);
    assert_key_bad("chk_18446744073709551617_" SECRET43); /* wraps to 1 in 64 bits */
    assert_key_bad("chk_42" SECRET43);                    /* no '_' after the id */
    assert_key_bad("chk_42-" SECRET43);
    assert_key_bad("chk_42x_" SECRET43);
    assert_key_bad("chk_42_" SECRET);        /* 42 characters */
    assert_key_bad("chk_42_" SECRET43 "f");  /* 44 characters */
    assert_key_bad("chk_42_" SECRET43 "\n"); /* a trailing newline is not trimmed here */
    assert_key_bad("chk_42_" SECRET " ");
    assert_key_bad("chk_42_" SECRET "+");
    assert_key_bad("chk_42_" SECRET "/");
    assert_key_bad("chk_42_" SECRET "=");
    assert_key_bad("chk_42_" SECRET ".");
    assert_key_bad("chk_42_" SECRET "\xc3");
    assert_key_bad("chk_42_+" SECRET);
    /* A NUL inside the given length is a bad character, not an end. */
    char nul[] = "chk_42_" SECRET43;
    nul[20] = '\0';
    int64_t id;
    ch_slice_t secret;
    assert_int_equal(ch_auth_apikey_parse(nul, sizeof(nul) - 1, &id, &secret), CH_EPARSE);
    /* Only n bytes are read: the same key cut short is refused. */
    const char *good = "chk_42_" SECRET43;
    assert_int_equal(ch_auth_apikey_parse(good, strlen(good) - 1, &id, &secret), CH_EPARSE);
    assert_int_equal(ch_auth_apikey_parse(good, 5, &id, &secret), CH_EPARSE);
    assert_int_equal(ch_auth_apikey_parse(good, 3, &id, &secret), CH_EPARSE);
}

/* ---- headers ------------------------------------------------------------------------------- */

static void assert_cookie(const char *header, const char *name, const char *want)
{
    ch_slice_t h = sl(header);
    ch_slice_t v = {NULL, 0};
    assert_int_equal(ch_auth_cookie_get(h, name, &v), 0);
    assert_slice_in(v, h, want);
}

static void assert_cookie_rc(const char *header, const char *name, int rc)
{
    ch_slice_t v = {NULL, 0};
    assert_int_equal(ch_auth_cookie_get(sl(header), name, &v), rc);
}

static void test_cookie_get(void **state)
{
    (void)state;
    assert_cookie("cctvhub_session=abc", CH_AUTH_COOKIE, "abc");
    assert_cookie("a=1; cctvhub_session=abc; b=2", CH_AUTH_COOKIE, "abc");
    assert_cookie("a=1;cctvhub_session=abc;b=2", CH_AUTH_COOKIE, "abc");
    assert_cookie("a=1; b=2; cctvhub_session=abc", CH_AUTH_COOKIE, "abc");
    assert_cookie("a=1; b=2", "a", "1");
    assert_cookie("a=1; b=2", "b", "2");
    /* Spaces and tabs around names and values. */
    assert_cookie("  a=1 ;\t cctvhub_session =  abc \t; b=2", CH_AUTH_COOKIE, "abc");
    assert_cookie(";;; cctvhub_session=abc;;;", CH_AUTH_COOKIE, "abc");
    /* A quoted value loses its quotes; a lone quote is kept. */
    assert_cookie("cctvhub_session=\"abc\"", CH_AUTH_COOKIE, "abc");
    assert_cookie("a=1; cctvhub_session=\"abc\" ; b=2", CH_AUTH_COOKIE, "abc");
    assert_cookie("cctvhub_session=\"\"", CH_AUTH_COOKIE, "");
    assert_cookie("cctvhub_session=\"", CH_AUTH_COOKIE, "\"");
    /* The value runs to the ';', '=' included. */
    assert_cookie("cctvhub_session=a=b==", CH_AUTH_COOKIE, "a=b==");
    assert_cookie("cctvhub_session=", CH_AUTH_COOKIE, "");
    assert_cookie("cctvhub_session=; a=1", CH_AUTH_COOKIE, "");
    /* Pairs without '=' are skipped. */
    assert_cookie("foo; cctvhub_session=abc; bar", CH_AUTH_COOKIE, "abc");
    assert_cookie("cctvhub_session; cctvhub_session=abc", CH_AUTH_COOKIE, "abc");
    /* A name that merely ends or starts with the wanted one is another cookie. */
    assert_cookie("my_cctvhub_session=evil; cctvhub_session=abc", CH_AUTH_COOKIE, "abc");
    assert_cookie("cctvhub_session=abc; cctvhub_session_old=evil", CH_AUTH_COOKIE, "abc");
    assert_cookie("x=cctvhub_session=evil; cctvhub_session=abc", CH_AUTH_COOKIE, "abc");

    assert_cookie_rc("", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("   ", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc(";", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("a=1; b=2", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("xcctvhub_session=abc", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("my_cctvhub_session=abc", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("cctvhub_sessionx=abc", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("CCTVHUB_SESSION=abc", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("cctvhub_session", CH_AUTH_COOKIE, CH_ENOTFOUND);
    assert_cookie_rc("a=cctvhub_session", CH_AUTH_COOKIE, CH_ENOTFOUND);
    /* Given twice, with the same or different values: which one would be meant? */
    assert_cookie_rc("cctvhub_session=a; cctvhub_session=b", CH_AUTH_COOKIE, CH_EPARSE);
    assert_cookie_rc("cctvhub_session=a; x=1; cctvhub_session=a", CH_AUTH_COOKIE, CH_EPARSE);
    assert_cookie_rc("cctvhub_session=a;cctvhub_session =", CH_AUTH_COOKIE, CH_EPARSE);

    /* Only header.len bytes are read. */
    const char *full = "a=1; cctvhub_session=abcdef; cctvhub_session=zzz";
    ch_slice_t cut = {full, strlen("a=1; cctvhub_session=abc")};
    ch_slice_t v;
    assert_int_equal(ch_auth_cookie_get(cut, CH_AUTH_COOKIE, &v), 0);
    assert_slice_in(v, cut, "abc");
    cut.len = strlen("a=1; cctvhub_sessi");
    assert_int_equal(ch_auth_cookie_get(cut, CH_AUTH_COOKIE, &v), CH_ENOTFOUND);
    ch_slice_t empty = {NULL, 0};
    assert_int_equal(ch_auth_cookie_get(empty, CH_AUTH_COOKIE, &v), CH_ENOTFOUND);
}

static void assert_bearer(const char *header, const char *want)
{
    ch_slice_t h = sl(header);
    ch_slice_t t = {NULL, 0};
    assert_int_equal(ch_auth_bearer(h, &t), 0);
    assert_slice_in(t, h, want);
}

static void assert_bearer_bad(const char *header, size_t len)
{
    ch_slice_t t = {"untouched", 9};
    assert_int_equal(ch_auth_bearer((ch_slice_t){header, len}, &t), CH_EPARSE);
    assert_int_equal(t.len, 9);
}

#define BEARER_BAD(lit) assert_bearer_bad(lit, sizeof(lit) - 1)

static void test_bearer(void **state)
{
    (void)state;
    assert_bearer("Bearer abc", "abc");
    assert_bearer("bearer abc", "abc");
    assert_bearer("BEARER abc", "abc");
    assert_bearer("bEaReR abc", "abc");
    assert_bearer("Bearer     abc", "abc");
    assert_bearer("Bearer\tabc", "abc");
    assert_bearer("Bearer abc   ", "abc");
    assert_bearer("Bearer \t abc \t ", "abc");
    assert_bearer("Bearer chk_42_" SECRET43, "chk_42_" SECRET43);
    assert_bearer("Bearer a/b+c=", "a/b+c="); /* RFC 6750 b64token characters */
    assert_bearer("Bearer x", "x");

    BEARER_BAD("");
    BEARER_BAD("Bearer");
    BEARER_BAD("Bearer ");
    BEARER_BAD("Bearer      ");
    BEARER_BAD("Bearer\t\t");
    BEARER_BAD("Bearerabc");
    BEARER_BAD("Bearer_abc");
    BEARER_BAD("Bear abc");
    BEARER_BAD(" Bearer abc");
    BEARER_BAD("Basic dXNlcjpwYXNz");
    BEARER_BAD("Token abc");
    BEARER_BAD("Bearer a b");
    BEARER_BAD("Bearer a\x01");
    BEARER_BAD("Bearer \x01"
               "abc");
    BEARER_BAD("Bearer ab\rc");
    BEARER_BAD("Bearer abc\n");
    BEARER_BAD("Bearer abc\x7f");
    BEARER_BAD("Bearer abc\xc3\xa9");
    BEARER_BAD("Bearer ab\0c");
    BEARER_BAD("Bearer\0abc");
    /* Only header.len bytes are read. */
    assert_bearer_bad("Bearer abc", 6);
    assert_bearer_bad("Bearer abc", 7);
    assert_bearer_bad(NULL, 0); /* an empty slice may have no pointer */
    ch_slice_t t;
    const char *full = "Bearer abcdef";
    ch_slice_t cut = {full, 10};
    assert_int_equal(ch_auth_bearer(cut, &t), 0);
    assert_slice_in(t, cut, "abc");
}

/* ---- authentication against a store -------------------------------------------------------- */

typedef struct fixture {
    ch_test_store_t ts;
    ch_store_t *st;
    int64_t agency_id;
} fixture_t;

/* A well-formed Argon2id string: the store only checks the prefix, and sessions and keys never
 * look at it, so the tests need not spend a real hash per user. */
#define FAKE_HASH                                                                                  \
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"                                       \
    "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY"

static int setup(void **state)
{
    fixture_t *fx = ch_calloc(1, sizeof(*fx));
    if (ch_test_store_open(&fx->ts, "ch_auth_test", &fx->st) != 0) {
        ch_free(fx);
        return -1;
    }
    fx->agency_id = ch_test_store_agency(fx->st, "종로구 통합관제센터", "both");
    if (fx->agency_id == 0) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    int rc = ch_test_store_close(&fx->ts, fx->st);
    ch_free(fx);
    return rc;
}

static int64_t make_user(fixture_t *fx, const char *name, const char *role, int64_t agency_id,
                         int disabled)
{
    ch_user_t u = {0};
    u.name = (char *)name;
    u.role = (char *)role;
    u.agency_id = agency_id;
    u.password_hash = FAKE_HASH;
    u.disabled = disabled;
    assert_int_equal(ch_store_user_create(fx->st, &u), 0);
    assert_true(u.id > 0);
    return u.id;
}

/* A session of user_id with a fresh token (returned in token) expiring at expires_at. */
static int64_t make_session(fixture_t *fx, int64_t user_id, int64_t expires_at,
                            char token[CH_AUTH_TOKEN_LEN + 1], char csrf[CH_AUTH_TOKEN_LEN + 1])
{
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_random_token(token);
    ch_auth_random_token(csrf);
    ch_auth_sha256_hex(token, strlen(token), hash);
    ch_session_t s = {0};
    s.token_hash = hash;
    s.user_id = user_id;
    s.csrf = csrf;
    s.expires_at = expires_at;
    assert_int_equal(ch_store_session_create(fx->st, &s), 0);
    assert_true(s.id > 0);
    return s.id;
}

/* An API key of the fixture's agency; its full text is written to key. */
static int64_t make_apikey(fixture_t *fx, const char *role, char key[CH_AUTH_APIKEY_MAX])
{
    char secret[CH_AUTH_TOKEN_LEN + 1];
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_random_token(secret);
    ch_auth_sha256_hex(secret, strlen(secret), hash);
    ch_apikey_t k = {0};
    k.agency_id = fx->agency_id;
    k.role = (char *)role;
    k.secret_hash = hash;
    k.label = "112 상황실 연계";
    assert_int_equal(ch_store_apikey_create(fx->st, &k), 0);
    assert_true(k.id > 0);
    ch_auth_apikey_format(k.id, secret, key);
    return k.id;
}

static void cookie_of(const char *token, char *out, size_t n)
{
    snprintf(out, n, "theme=dark; " CH_AUTH_COOKIE "=%s; lang=ko", token);
}

/* Runs ch_auth_authenticate with a Cookie header text (or NULL) and an Authorization header
 * text (or NULL). */
static int auth(fixture_t *fx, const ch_auth_config_t *cfg, const char *cookie, const char *authz,
                int64_t now, ch_auth_principal_t *p, const char **why)
{
    ch_slice_t c = cookie != NULL ? sl(cookie) : (ch_slice_t){NULL, 0};
    ch_slice_t a = authz != NULL ? sl(authz) : (ch_slice_t){NULL, 0};
    *why = "not reset";
    memset(p, 0x5a, sizeof(*p));
    return ch_auth_authenticate(fx->st, cfg, cookie != NULL ? &c : NULL, authz != NULL ? &a : NULL,
                                now, p, why);
}

static int session_exists(fixture_t *fx, const char *token)
{
    char hash[CH_AUTH_SHA256_HEX];
    ch_session_t s;
    ch_auth_sha256_hex(token, strlen(token), hash);
    int rc = ch_store_session_find(fx->st, hash, &s);
    ch_session_fini(&s);
    assert_true(rc == 0 || rc == CH_ENOTFOUND);
    return rc == 0;
}

static void test_authenticate_without_credentials(void **state)
{
    fixture_t *fx = *state;
    ch_auth_principal_t p;
    const char *why;
    int64_t now = ch_time_now_ms();
    assert_int_equal(auth(fx, NULL, NULL, NULL, now, &p, &why), 0);
    assert_int_equal(p.kind, CH_AUTH_NONE);
    assert_int_equal(p.role, 0);
    assert_null(why);
    /* Cookies, but not ours. */
    assert_int_equal(auth(fx, NULL, "theme=dark; lang=ko", NULL, now, &p, &why), 0);
    assert_int_equal(p.kind, CH_AUTH_NONE);
    assert_int_equal(p.role, 0);
    assert_int_equal(p.id, 0);
    assert_null(why);
    assert_int_equal(auth(fx, NULL, "", NULL, now, &p, &why), 0);
    assert_int_equal(p.kind, CH_AUTH_NONE);
}

static void test_authenticate_session(void **state)
{
    fixture_t *fx = *state;
    ch_auth_principal_t p;
    const char *why;
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    char cookie[256];
    int64_t now = ch_time_now_ms();
    int64_t uid = make_user(fx, "kim", "operator", 0, 0);
    int64_t sid = make_session(fx, uid, now + 30 * 60 * 1000, token, csrf);
    cookie_of(token, cookie, sizeof(cookie));

    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), 0);
    assert_null(why);
    assert_int_equal(p.kind, CH_AUTH_USER);
    assert_int_equal(p.id, uid);
    assert_int_equal(p.role, CH_AUTH_OPERATOR);
    assert_int_equal(p.agency_id, 0);
    assert_string_equal(p.name, "kim");
    assert_string_equal(p.actor, "user:kim");
    assert_int_equal(p.session_id, sid);
    assert_string_equal(p.csrf, csrf);

    /* A user of an agency carries the agency. */
    int64_t uid2 = make_user(fx, "park", "agency", fx->agency_id, 0);
    char token2[CH_AUTH_TOKEN_LEN + 1];
    char csrf2[CH_AUTH_TOKEN_LEN + 1];
    make_session(fx, uid2, now + 60000, token2, csrf2);
    char cookie2[256];
    snprintf(cookie2, sizeof(cookie2), CH_AUTH_COOKIE "=\"%s\"", token2);
    assert_int_equal(auth(fx, NULL, cookie2, NULL, now, &p, &why), 0);
    assert_int_equal(p.id, uid2);
    assert_int_equal(p.role, CH_AUTH_AGENCY);
    assert_int_equal(p.agency_id, fx->agency_id);
    assert_string_equal(p.actor, "user:park");
    assert_string_equal(p.csrf, csrf2);

    /* The first session is still there and still kim's. */
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), 0);
    assert_int_equal(p.id, uid);
}

static void test_authenticate_bad_session_cookies(void **state)
{
    fixture_t *fx = *state;
    ch_auth_principal_t p;
    const char *why;
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    char cookie[256];
    int64_t now = ch_time_now_ms();
    int64_t uid = make_user(fx, "kim", "admin", 0, 0);
    make_session(fx, uid, now + 60000, token, csrf);

    /* An unknown token of the right shape. */
    char other[CH_AUTH_TOKEN_LEN + 1];
    ch_auth_random_token(other);
    cookie_of(other, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);
    assert_non_null(why);
    assert_int_equal(p.kind, CH_AUTH_NONE);
    assert_int_equal(p.role, 0);
    /* Tokens of the wrong length, empty, or the stored hash itself. */
    assert_int_equal(auth(fx, NULL, CH_AUTH_COOKIE "=", NULL, now, &p, &why), CH_EPERM);
    assert_int_equal(auth(fx, NULL, CH_AUTH_COOKIE "=abc", NULL, now, &p, &why), CH_EPERM);
    char hash[CH_AUTH_SHA256_HEX];
    ch_auth_sha256_hex(token, strlen(token), hash);
    cookie_of(hash, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);
    snprintf(cookie, sizeof(cookie), CH_AUTH_COOKIE "=%sx", token);
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);
    /* The valid token given twice is refused, and the message does not hold it. */
    snprintf(cookie, sizeof(cookie), CH_AUTH_COOKIE "=%s; " CH_AUTH_COOKIE "=%s", token, token);
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);
    assert_non_null(why);
    assert_null(strstr(why, token));
    assert_int_equal(p.kind, CH_AUTH_NONE);
    /* Still valid alone. */
    cookie_of(token, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), 0);
    assert_int_equal(p.kind, CH_AUTH_USER);
}

static void test_authenticate_expired_session_is_deleted(void **state)
{
    fixture_t *fx = *state;
    ch_auth_principal_t p;
    const char *why;
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    char cookie[256];
    int64_t now = ch_time_now_ms();
    int64_t uid = make_user(fx, "kim", "operator", 0, 0);

    /* Idle expiry: expires_at in the past. */
    make_session(fx, uid, now - 1, token, csrf);
    assert_true(session_exists(fx, token));
    cookie_of(token, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);
    assert_non_null(why);
    assert_int_equal(p.kind, CH_AUTH_NONE);
    assert_false(session_exists(fx, token));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);

    /* Exactly at expires_at it has ended. */
    make_session(fx, uid, now + 5000, token, csrf);
    cookie_of(token, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now + 4999, &p, &why), 0);
    assert_int_equal(auth(fx, NULL, cookie, NULL, now + 5000, &p, &why), CH_EPERM);
    assert_false(session_exists(fx, token));

    /* Absolute expiry: a session older than session_max_ms ends even while in use. */
    ch_auth_config_t cfg = {.session_idle_ms = 3600 * 1000, .session_max_ms = 10 * 1000};
    make_session(fx, uid, now + 3600 * 1000, token, csrf);
    cookie_of(token, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, &cfg, cookie, NULL, now, &p, &why), 0);
    assert_int_equal(auth(fx, &cfg, cookie, NULL, now + 11 * 1000, &p, &why), CH_EPERM);
    assert_non_null(why);
    assert_false(session_exists(fx, token));
}

static void test_authenticate_disabled_user(void **state)
{
    fixture_t *fx = *state;
    ch_auth_principal_t p;
    const char *why;
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    char cookie[256];
    int64_t now = ch_time_now_ms();

    /* Disabled from the start. */
    int64_t uid = make_user(fx, "lee", "operator", 0, 1);
    make_session(fx, uid, now + 60000, token, csrf);
    cookie_of(token, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);
    assert_non_null(why);
    assert_int_equal(p.kind, CH_AUTH_NONE);
    assert_false(session_exists(fx, token));

    /* Disabled while logged in: the next request is refused. */
    int64_t uid2 = make_user(fx, "choi", "auditor", 0, 0);
    make_session(fx, uid2, now + 60000, token, csrf);
    cookie_of(token, cookie, sizeof(cookie));
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), 0);
    assert_int_equal(p.role, CH_AUTH_AUDITOR);
    ch_user_t u;
    assert_int_equal(ch_store_user_get(fx->st, uid2, &u), 0);
    u.disabled = 1;
    assert_int_equal(ch_store_user_update(fx->st, &u), 0);
    ch_user_fini(&u);
    assert_int_equal(auth(fx, NULL, cookie, NULL, now, &p, &why), CH_EPERM);
    assert_non_null(why);
    assert_int_equal(p.kind, CH_AUTH_NONE);
}

static void test_authenticate_session_slides(void **state)
{
    fixture_t *fx = *state;
    ch_auth_principal_t p;
    const char *why;
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    char cookie[256];
    char hash[CH_AUTH_SHA256_HEX];
    ch_session_t s;
    ch_auth_config_t cfg = {.session_idle_ms = 10 * 60 * 1000, .session_max_ms = 0};
    int64_t uid = make_user(fx, "kim", "operator", 0, 0);
    /* The store sets updated_at from the wall clock at create and update; ch_auth_authenticate
     * takes "now" as an argument, so a use "later" is simulated by passing a later now. */
    int64_t t0 = ch_time_now_ms();
    int64_t exp0 = t0 + 10 * 60 * 1000;
    make_session(fx, uid, exp0, token, csrf);
    cookie_of(token, cookie, sizeof(cookie));
    ch_auth_sha256_hex(token, strlen(token), hash);

    /* Used within the minute: no write, the expiry stays. */
    assert_int_equal(auth(fx, &cfg, cookie, NULL, t0 + 30 * 1000, &p, &why), 0);
    assert_int_equal(ch_store_session_find(fx->st, hash, &s), 0);
    assert_int_equal(s.expires_at, exp0);
    int64_t updated0 = s.updated_at;
    ch_session_fini(&s);

    /* Used two minutes later: the expiry moves to now + idle. */
    int64_t later = updated0 + 2 * 60 * 1000;
    assert_int_equal(auth(fx, &cfg, cookie, NULL, later, &p, &why), 0);
    assert_int_equal(p.kind, CH_AUTH_USER);
    assert_int_equal(ch_store_session_find(fx->st, hash, &s), 0);
    assert_int_equal(s.expires_at, later + cfg.session_idle_ms);
    assert_string_equal(s.csrf, csrf); /* the rest of the row is kept */
    assert_int_equal(s.user_id, uid);
    ch_session_fini(&s);

    /* So a use past the first expiry but within the moved one is still good. */
    assert_int_equal(auth(fx, &cfg, cookie, NULL, exp0 + 1000, &p, &why), 0);
    assert_int_equal(p.id, uid);
}

static void test_authenticate_apikey(void **state)
{
    fixture_t *fx = *state;
    ch_auth_principal_t p;
    const char *why;
    char key[CH_AUTH_APIKEY_MAX];
    char hdr[160];
    int64_t now = ch_time_now_ms();
    int64_t kid = make_apikey(fx, "agency", key);
    snprintf(hdr, sizeof(hdr), "Bearer %s", key);

    assert_int_equal(auth(fx, NULL, NULL, hdr, now, &p, &why), 0);
    assert_null(why);
    assert_int_equal(p.kind, CH_AUTH_APIKEY);
    assert_int_equal(p.id, kid);
    assert_int_equal(p.role, CH_AUTH_AGENCY);
    assert_int_equal(p.agency_id, fx->agency_id);
    char want[64];
    snprintf(want, sizeof(want), "apikey:%lld", (long long)kid);
    assert_string_equal(p.actor, want);
    assert_string_equal(p.name, want);
    assert_int_equal(p.session_id, 0);
    assert_string_equal(p.csrf, "");

    /* Scheme case and spaces do not matter. */
    snprintf(hdr, sizeof(hdr), "bearer    %s  ", key);
    assert_int_equal(auth(fx, NULL, NULL, hdr, now, &p, &why), 0);
    assert_int_equal(p.id, kid);

    /* A provider key. */
    char key2[CH_AUTH_APIKEY_MAX];
    int64_t kid2 = make_apikey(fx, "provider", key2);
    snprintf(hdr, sizeof(hdr), "Bearer %s", key2);
    assert_int_equal(auth(fx, NULL, NULL, hdr, now, &p, &why), 0);
    assert_int_equal(p.id, kid2);
    assert_int_equal(p.role, CH_AUTH_PROVIDER);

    /* An Authorization header wins over a cookie: a valid key with a bad cookie is the key. */
    snprintf(hdr, sizeof(hdr), "Bearer %s", key);
    assert_int_equal(auth(fx, NULL, CH_AUTH_COOKIE "=nonsense", hdr, now, &p, &why), 0);
    assert_int_equal(p.kind, CH_AUTH_APIKEY);
    assert_int_equal(p.id, kid);
}

static void assert_key_refused(fixture_t *fx, const char *hdr)
{
    ch_auth_principal_t p;
    const char *why;
    assert_int_equal(auth(fx, NULL, NULL, hdr, ch_time_now_ms(), &p, &why), CH_EPERM);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    assert_null(strstr(why, "chk_"));
    assert_int_equal(p.kind, CH_AUTH_NONE);
    assert_int_equal(p.role, 0);
    assert_int_equal(p.id, 0);
}

static void test_authenticate_bad_apikeys(void **state)
{
    fixture_t *fx = *state;
    char key[CH_AUTH_APIKEY_MAX];
    char hdr[160];
    char tok[CH_AUTH_TOKEN_LEN + 1];
    int64_t kid = make_apikey(fx, "agency", key);

    /* The right id with another secret. */
    ch_auth_random_token(tok);
    char wrong[CH_AUTH_APIKEY_MAX];
    ch_auth_apikey_format(kid, tok, wrong);
    snprintf(hdr, sizeof(hdr), "Bearer %s", wrong);
    assert_key_refused(fx, hdr);
    /* The right secret under another (unknown) id. */
    ch_slice_t secret;
    int64_t id;
    assert_int_equal(ch_auth_apikey_parse(key, strlen(key), &id, &secret), 0);
    char sec[CH_AUTH_TOKEN_LEN + 1];
    snprintf(sec, sizeof(sec), "%.*s", (int)secret.len, secret.ptr);
    ch_auth_apikey_format(kid + 1000, sec, wrong);
    snprintf(hdr, sizeof(hdr), "Bearer %s", wrong);
    assert_key_refused(fx, hdr);
    /* The right secret under another key's id. */
    char key2[CH_AUTH_APIKEY_MAX];
    int64_t kid2 = make_apikey(fx, "agency", key2);
    ch_auth_apikey_format(kid2, sec, wrong);
    snprintf(hdr, sizeof(hdr), "Bearer %s", wrong);
    assert_key_refused(fx, hdr);
    /* The stored hash as the secret. */
    snprintf(hdr, sizeof(hdr), "Bearer chk_%lld_", (long long)kid);
    ch_apikey_t k;
    assert_int_equal(ch_store_apikey_get(fx->st, kid, &k), 0);
    char hh[160];
    snprintf(hh, sizeof(hh), "%s%s", hdr, k.secret_hash);
    ch_apikey_fini(&k);
    assert_key_refused(fx, hh);

    /* Malformed Authorization headers. */
    assert_key_refused(fx, "");
    assert_key_refused(fx, "Bearer");
    assert_key_refused(fx, "Bearer ");
    assert_key_refused(fx, "Basic dXNlcjpwYXNz");
    snprintf(hdr, sizeof(hdr), "Basic %s", key);
    assert_key_refused(fx, hdr);
    snprintf(hdr, sizeof(hdr), "%s", key); /* the key without a scheme */
    assert_key_refused(fx, hdr);
    assert_key_refused(fx, "Bearer not-an-api-key");
    snprintf(hdr, sizeof(hdr), "Bearer %s x", key);
    assert_key_refused(fx, hdr);
    snprintf(hdr, sizeof(hdr), "Bearer %sx", key);
    assert_key_refused(fx, hdr);
    /* A malformed Authorization is refused even with a valid session cookie. */
    char token[CH_AUTH_TOKEN_LEN + 1];
    char csrf[CH_AUTH_TOKEN_LEN + 1];
    char cookie[256];
    int64_t uid = make_user(fx, "kim", "admin", 0, 0);
    make_session(fx, uid, ch_time_now_ms() + 60000, token, csrf);
    cookie_of(token, cookie, sizeof(cookie));
    ch_auth_principal_t p;
    const char *why;
    assert_int_equal(auth(fx, NULL, cookie, "Basic abc", ch_time_now_ms(), &p, &why), CH_EPERM);
    assert_int_equal(p.kind, CH_AUTH_NONE);

    /* Still good itself. */
    snprintf(hdr, sizeof(hdr), "Bearer %s", key);
    assert_int_equal(auth(fx, NULL, NULL, hdr, ch_time_now_ms(), &p, &why), 0);
    assert_int_equal(p.id, kid);
}

static void test_authenticate_revoked_apikey(void **state)
{
    fixture_t *fx = *state;
    char key[CH_AUTH_APIKEY_MAX];
    char hdr[160];
    ch_auth_principal_t p;
    const char *why;
    int64_t kid = make_apikey(fx, "provider", key);
    snprintf(hdr, sizeof(hdr), "Bearer %s", key);
    assert_int_equal(auth(fx, NULL, NULL, hdr, ch_time_now_ms(), &p, &why), 0);

    ch_apikey_t k;
    assert_int_equal(ch_store_apikey_get(fx->st, kid, &k), 0);
    k.revoked_at = ch_time_now_ms();
    assert_int_equal(ch_store_apikey_update(fx->st, &k), 0);
    ch_apikey_fini(&k);
    assert_key_refused(fx, hdr);
}

static void test_principal_of_user(void **state)
{
    (void)state;
    ch_user_t u = {0};
    u.id = 5;
    u.name = "kim";
    u.role = "provider";
    u.agency_id = 3;
    ch_auth_principal_t p;
    memset(&p, 0x5a, sizeof(p));
    ch_auth_principal_of_user(&u, 9, "csrf-token", &p);
    assert_int_equal(p.kind, CH_AUTH_USER);
    assert_int_equal(p.id, 5);
    assert_int_equal(p.role, CH_AUTH_PROVIDER);
    assert_int_equal(p.agency_id, 3);
    assert_string_equal(p.name, "kim");
    assert_string_equal(p.actor, "user:kim");
    assert_int_equal(p.session_id, 9);
    assert_string_equal(p.csrf, "csrf-token");
    /* A 64-byte name (the store's limit) is kept whole in name and actor. */
    char longname[65];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    u.name = longname;
    ch_auth_principal_of_user(&u, 9, NULL, &p);
    assert_string_equal(p.name, longname);
    assert_int_equal(strlen(p.actor), 5 + 64);
    assert_string_equal(p.csrf, "");
}

/* ---- the login throttle -------------------------------------------------------------------- */

static void test_throttle_window(void **state)
{
    (void)state;
    const int64_t win = 60 * 1000;
    const int64_t t0 = 1700000000000LL;
    ch_auth_throttle_t *t = ch_auth_throttle_new(3, win);
    const char *a = "192.0.2.7:50000";
    assert_int_equal(ch_auth_throttle_check(t, a, t0), 0);
    ch_auth_throttle_fail(t, a, t0);
    ch_auth_throttle_fail(t, a, t0 + 1000);
    assert_int_equal(ch_auth_throttle_check(t, a, t0 + 1500), 0); /* below max */
    ch_auth_throttle_fail(t, a, t0 + 2000);                       /* at max */
    int64_t w = ch_auth_throttle_check(t, a, t0 + 2000);
    assert_true(w > 0);
    assert_true(w <= win);
    assert_int_equal(w, win); /* a window after the last failure */
    assert_int_equal(ch_auth_throttle_check(t, a, t0 + 12000), win - 10000);
    assert_int_equal(ch_auth_throttle_check(t, a, t0 + 2000 + win - 1), 1);
    /* Other hosts are not held up. */
    assert_int_equal(ch_auth_throttle_check(t, "192.0.2.8:50000", t0 + 2000), 0);
    /* Once the wait is over the address may try again, with a clean slate. */
    assert_int_equal(ch_auth_throttle_check(t, a, t0 + 2000 + win), 0);
    assert_int_equal(ch_auth_throttle_check(t, a, t0 + 2000 + win + 1), 0);
    ch_auth_throttle_fail(t, a, t0 + 2000 + win + 2);
    assert_int_equal(ch_auth_throttle_check(t, a, t0 + 2000 + win + 3), 0);
    ch_auth_throttle_free(t);

    /* Defaults: 20 failures in 5 minutes. */
    t = ch_auth_throttle_new(0, 0);
    for (int i = 0; i < 19; i++) {
        ch_auth_throttle_fail(t, "198.51.100.1:1", t0);
    }
    assert_int_equal(ch_auth_throttle_check(t, "198.51.100.1:1", t0), 0);
    ch_auth_throttle_fail(t, "198.51.100.1:1", t0);
    assert_int_equal(ch_auth_throttle_check(t, "198.51.100.1:1", t0), 5 * 60 * 1000);
    ch_auth_throttle_free(t);
    ch_auth_throttle_free(NULL);
}

static void test_throttle_clear(void **state)
{
    (void)state;
    const int64_t t0 = 1700000000000LL;
    ch_auth_throttle_t *t = ch_auth_throttle_new(2, 60000);
    ch_auth_throttle_fail(t, "192.0.2.7:1", t0);
    ch_auth_throttle_fail(t, "192.0.2.7:2", t0);
    ch_auth_throttle_fail(t, "192.0.2.9:1", t0);
    ch_auth_throttle_fail(t, "192.0.2.9:1", t0);
    assert_true(ch_auth_throttle_check(t, "192.0.2.7:3", t0) > 0);
    /* A success from any port of the host clears it, and only it. */
    ch_auth_throttle_clear(t, "192.0.2.7:4");
    assert_int_equal(ch_auth_throttle_check(t, "192.0.2.7:3", t0), 0);
    assert_true(ch_auth_throttle_check(t, "192.0.2.9:1", t0) > 0);
    /* Counting starts again from zero. */
    ch_auth_throttle_fail(t, "192.0.2.7:1", t0);
    assert_int_equal(ch_auth_throttle_check(t, "192.0.2.7:1", t0), 0);
    /* Clearing an address never seen is harmless. */
    ch_auth_throttle_clear(t, "203.0.113.1:1");
    ch_auth_throttle_clear(t, "");
    assert_true(ch_auth_throttle_check(t, "192.0.2.9:1", t0) > 0);
    ch_auth_throttle_free(t);
}

static void test_throttle_ports_are_one_host(void **state)
{
    (void)state;
    const int64_t t0 = 1700000000000LL;
    ch_auth_throttle_t *t = ch_auth_throttle_new(3, 60000);
    /* IPv4, as the server writes peers: "host:port". */
    ch_auth_throttle_fail(t, "192.0.2.7:40001", t0);
    ch_auth_throttle_fail(t, "192.0.2.7:40002", t0);
    ch_auth_throttle_fail(t, "192.0.2.7:40003", t0);
    assert_true(ch_auth_throttle_check(t, "192.0.2.7:40004", t0) > 0);
    assert_true(ch_auth_throttle_check(t, "192.0.2.7", t0) > 0);
    assert_int_equal(ch_auth_throttle_check(t, "192.0.2.70:40001", t0), 0);
    assert_int_equal(ch_auth_throttle_check(t, "192.0.2.:40001", t0), 0);
    /* IPv6: "[host]:port". */
    ch_auth_throttle_fail(t, "[2001:db8::1]:1000", t0);
    ch_auth_throttle_fail(t, "[2001:db8::1]:1001", t0);
    ch_auth_throttle_fail(t, "[2001:db8::1]:1002", t0);
    assert_true(ch_auth_throttle_check(t, "[2001:db8::1]:9", t0) > 0);
    assert_int_equal(ch_auth_throttle_check(t, "[2001:db8::2]:1000", t0), 0);
    assert_int_equal(ch_auth_throttle_check(t, "[2001:db8::]:1000", t0), 0);
    /* IPv4-mapped IPv6 addresses are told apart by their IPv4 part. */
    ch_auth_throttle_fail(t, "[::ffff:192.0.2.1]:1", t0);
    ch_auth_throttle_fail(t, "[::ffff:192.0.2.1]:2", t0);
    ch_auth_throttle_fail(t, "[::ffff:192.0.2.1]:3", t0);
    assert_true(ch_auth_throttle_check(t, "[::ffff:192.0.2.1]:4", t0) > 0);
    assert_int_equal(ch_auth_throttle_check(t, "[::ffff:192.0.2.2]:1", t0), 0);
    /* The longest IPv6 text the server can write, with a port, does not overflow. */
    const char *longest = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
    ch_auth_throttle_fail(t, longest, t0);
    ch_auth_throttle_fail(t, longest, t0);
    ch_auth_throttle_fail(t, "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:1", t0);
    assert_true(ch_auth_throttle_check(t, longest, t0) > 0);
    ch_auth_throttle_free(t);
}

static void test_throttle_full_table_keeps_newest(void **state)
{
    (void)state;
    const int64_t t0 = 1700000000000LL;
    const int extra = 300;
    const int n = CH_AUTH_THROTTLE_SLOTS + extra;
    char addr[64];
    ch_auth_throttle_t *t = ch_auth_throttle_new(1, 3600 * 1000);
    for (int i = 0; i < n; i++) {
        snprintf(addr, sizeof(addr), "10.%d.%d.%d:443", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        ch_auth_throttle_fail(t, addr, t0 + i);
    }
    int64_t now = t0 + n;
    /* The oldest made room; the newest CH_AUTH_THROTTLE_SLOTS are all still held. */
    for (int i = 0; i < n; i++) {
        snprintf(addr, sizeof(addr), "10.%d.%d.%d:80", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        int64_t w = ch_auth_throttle_check(t, addr, now);
        if (i < extra) {
            assert_int_equal(w, 0);
        } else {
            assert_true(w > 0);
        }
    }
    /* A further failure evicts the then-oldest and holds the newcomer. */
    ch_auth_throttle_fail(t, "203.0.113.9:1", now);
    assert_true(ch_auth_throttle_check(t, "203.0.113.9:1", now) > 0);
    snprintf(addr, sizeof(addr), "10.%d.%d.%d:80", (extra >> 16) & 255, (extra >> 8) & 255,
             extra & 255);
    assert_int_equal(ch_auth_throttle_check(t, addr, now), 0);
    snprintf(addr, sizeof(addr), "10.%d.%d.%d:80", ((n - 1) >> 16) & 255, ((n - 1) >> 8) & 255,
             (n - 1) & 255);
    assert_true(ch_auth_throttle_check(t, addr, now) > 0);
    /* Once everything is stale, all slots are free again. */
    int64_t later = now + 3600 * 1000 + 1;
    assert_int_equal(ch_auth_throttle_check(t, addr, later), 0);
    ch_auth_throttle_fail(t, "203.0.113.10:1", later);
    assert_true(ch_auth_throttle_check(t, "203.0.113.10:1", later) > 0);
    ch_auth_throttle_free(t);
}

static void test_throttle_forgive_takes_back_one_attempt(void **state)
{
    (void)state;
    const int64_t t0 = 1700000000000LL;
    ch_auth_throttle_t *t = ch_auth_throttle_new(3, 60000);
    /* Attempts are counted before hashing; a right one is taken back, the others stay. */
    ch_auth_throttle_fail(t, "192.0.2.7:1", t0);
    ch_auth_throttle_fail(t, "192.0.2.7:2", t0);
    ch_auth_throttle_fail(t, "192.0.2.7:3", t0);
    assert_true(ch_auth_throttle_check(t, "192.0.2.7:4", t0) > 0);
    ch_auth_throttle_forgive(t, "192.0.2.7:3");
    assert_int_equal(ch_auth_throttle_check(t, "192.0.2.7:4", t0), 0);
    ch_auth_throttle_fail(t, "192.0.2.7:5", t0);
    assert_true(ch_auth_throttle_check(t, "192.0.2.7:4", t0) > 0);
    /* Never below zero, and a stranger's forgiveness changes nothing. */
    ch_auth_throttle_forgive(t, "203.0.113.1:1");
    for (int i = 0; i < 5; i++) {
        ch_auth_throttle_forgive(t, "192.0.2.8:1");
    }
    for (int i = 0; i < 3; i++) {
        ch_auth_throttle_fail(t, "192.0.2.8:1", t0);
    }
    assert_true(ch_auth_throttle_check(t, "192.0.2.8:1", t0) > 0);
    ch_auth_throttle_free(t);
}

static void test_throttle_addresses_without_ports(void **state)
{
    (void)state;
    const int64_t t0 = 1700000000000LL;
    ch_auth_throttle_t *t = ch_auth_throttle_new(2, 60000);
    /* A client named by a trusted proxy has no port: the same host as with one. */
    ch_auth_throttle_fail(t, "10.1.1.1", t0);
    ch_auth_throttle_fail(t, "10.1.1.1:5000", t0);
    assert_true(ch_auth_throttle_check(t, "10.1.1.1", t0) > 0);
    ch_auth_throttle_fail(t, "[fd00::1]", t0);
    ch_auth_throttle_fail(t, "[fd00::1]:443", t0);
    assert_true(ch_auth_throttle_check(t, "[fd00::1]:1", t0) > 0);
    /* Bare IPv6 text is not cut at its last colon as if that were a port. */
    ch_auth_throttle_fail(t, "2001:db8::7", t0);
    ch_auth_throttle_fail(t, "2001:db8::7", t0);
    assert_true(ch_auth_throttle_check(t, "2001:db8::7", t0) > 0);
    assert_int_equal(ch_auth_throttle_check(t, "2001:db8::", t0), 0);
    assert_int_equal(ch_auth_throttle_check(t, "2001:db8::8", t0), 0);
    ch_auth_throttle_fail(t, "::ffff:192.0.2.1", t0);
    ch_auth_throttle_fail(t, "::ffff:192.0.2.1", t0);
    assert_int_equal(ch_auth_throttle_check(t, "::ffff:192.0.2.2", t0), 0);
    assert_int_equal(ch_auth_throttle_check(t, "::ffff", t0), 0);
    ch_auth_throttle_free(t);
}

/* ---- the lock-out by user and address ------------------------------------------------------ */

static void test_lockout_holds_for_one_user_from_one_address(void **state)
{
    (void)state;
    const int64_t t0 = 1700000000000LL;
    const int64_t lock = 60000;
    ch_auth_lockout_t *l = ch_auth_lockout_new(3, lock);
    assert_int_equal(ch_auth_lockout_fail(l, "kim", "192.0.2.1:1", t0), 0);
    assert_int_equal(ch_auth_lockout_fail(l, "kim", "192.0.2.1:2", t0 + 10), 0);
    assert_int_equal(ch_auth_lockout_check(l, "kim", "192.0.2.1:3", t0 + 10), 0);
    /* The failure that reaches the limit says so, once. */
    assert_int_equal(ch_auth_lockout_fail(l, "kim", "192.0.2.1:3", t0 + 20), 1);
    assert_int_equal(ch_auth_lockout_check(l, "kim", "192.0.2.1:9", t0 + 20), lock);
    assert_int_equal(ch_auth_lockout_fail(l, "kim", "192.0.2.1:4", t0 + 20), 0);
    /* kim from elsewhere, and others from there, may still try. */
    assert_int_equal(ch_auth_lockout_check(l, "kim", "192.0.2.2:1", t0 + 20), 0);
    assert_int_equal(ch_auth_lockout_check(l, "kim", "[2001:db8::1]:1", t0 + 20), 0);
    assert_int_equal(ch_auth_lockout_check(l, "lee", "192.0.2.1:1", t0 + 20), 0);
    assert_int_equal(ch_auth_lockout_check(l, "ki", "192.0.2.1:1", t0 + 20), 0);
    assert_int_equal(ch_auth_lockout_check(l, "kim\n192.0.2.1", "", t0 + 20), 0);
    /* The lock ends lock_ms after the last failure. */
    assert_int_equal(ch_auth_lockout_check(l, "kim", "192.0.2.1", t0 + 20 + lock - 1), 1);
    assert_int_equal(ch_auth_lockout_check(l, "kim", "192.0.2.1", t0 + 20 + lock), 0);
    /* A right password clears its pair only. */
    for (int i = 0; i < 3; i++) {
        (void)ch_auth_lockout_fail(l, "park", "192.0.2.5", t0);
        (void)ch_auth_lockout_fail(l, "park", "192.0.2.6", t0);
    }
    ch_auth_lockout_clear(l, "park", "192.0.2.5:80");
    assert_int_equal(ch_auth_lockout_check(l, "park", "192.0.2.5", t0), 0);
    assert_true(ch_auth_lockout_check(l, "park", "192.0.2.6", t0) > 0);
    /* After a clear, reaching the limit again is reported again. */
    (void)ch_auth_lockout_fail(l, "park", "192.0.2.5", t0);
    (void)ch_auth_lockout_fail(l, "park", "192.0.2.5", t0);
    assert_int_equal(ch_auth_lockout_fail(l, "park", "192.0.2.5", t0), 1);
    ch_auth_lockout_free(l);
    /* Defaults: 5 failures, 15 minutes. */
    l = ch_auth_lockout_new(0, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ch_auth_lockout_fail(l, "kim", "192.0.2.1", t0), 0);
    }
    assert_int_equal(ch_auth_lockout_fail(l, "kim", "192.0.2.1", t0), 1);
    assert_int_equal(ch_auth_lockout_check(l, "kim", "192.0.2.1", t0), 15 * 60 * 1000);
    ch_auth_lockout_free(l);
    ch_auth_lockout_free(NULL);
}

static void test_lockout_full_table_takes_the_longest_names(void **state)
{
    (void)state;
    const int64_t t0 = 1700000000000LL;
    ch_auth_lockout_t *l = ch_auth_lockout_new(1, 3600 * 1000);
    char name[80], addr[64];
    /* The longest name the route lets through (64 bytes) and the longest address. */
    memset(name, 'n', 64);
    name[64] = '\0';
    const char *longest = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
    assert_int_equal(ch_auth_lockout_fail(l, name, longest, t0), 1);
    assert_true(ch_auth_lockout_check(l, name, longest, t0) > 0);
    name[63] = 'm';
    assert_int_equal(ch_auth_lockout_check(l, name, longest, t0), 0);
    /* More pairs than slots: the stalest make room, memory does not grow. */
    for (int i = 0; i < CH_AUTH_LOCKOUT_SLOTS + 10; i++) {
        snprintf(addr, sizeof(addr), "10.0.%d.%d", (i >> 8) & 255, i & 255);
        (void)ch_auth_lockout_fail(l, "kim", addr, t0 + 1 + i);
    }
    assert_int_equal(ch_auth_lockout_check(l, "kim", "10.0.0.0", t0 + 20000), 0);
    snprintf(addr, sizeof(addr), "10.0.%d.%d", ((CH_AUTH_LOCKOUT_SLOTS + 9) >> 8) & 255,
             (CH_AUTH_LOCKOUT_SLOTS + 9) & 255);
    assert_true(ch_auth_lockout_check(l, "kim", addr, t0 + 20000) > 0);
    ch_auth_lockout_free(l);
}

/* ---- the hash pool ------------------------------------------------------------------------- */

typedef struct hash_probe {
    ch_auth_hash_job_t job; /* first */
    int done;
    uv_thread_t thread; /* the thread the callback ran on */
} hash_probe_t;

static int hash_callbacks;

static void on_hashed(ch_auth_hash_job_t *job)
{
    hash_probe_t *p = (hash_probe_t *)job;
    p->done = 1;
    p->thread = uv_thread_self();
    hash_callbacks++;
}

static void probe_init(hash_probe_t *p, ch_auth_hash_kind_t kind, const char *pw, const char *hash)
{
    memset(p, 0, sizeof(*p));
    p->job.kind = kind;
    p->job.password = pw;
    p->job.password_len = strlen(pw);
    snprintf(p->job.hash, sizeof(p->job.hash), "%s", hash);
    p->job.result = 12345;
}

static void test_hasher_bounds_per_address_and_in_all(void **state)
{
    (void)state;
    const char *right = "the right password";
    char stored[CH_AUTH_HASH_MAX];
    assert_int_equal(ch_auth_password_hash(right, strlen(right), stored), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    ch_auth_hasher_config_t cfg = {.threads = 1, .max_in_flight = 3, .max_per_address = 2};
    ch_auth_hasher_t *h = ch_auth_hasher_new(&loop, &cfg);
    hash_probe_t p[8];
    hash_callbacks = 0;
    probe_init(&p[0], CH_AUTH_HASH_VERIFY, right, stored);
    probe_init(&p[1], CH_AUTH_HASH_VERIFY, "a wrong password", stored);
    probe_init(&p[2], CH_AUTH_HASH_VERIFY, "a third try", stored);
    probe_init(&p[3], CH_AUTH_HASH_VERIFY, "an unknown user's", "");
    probe_init(&p[4], CH_AUTH_HASH_VERIFY, "one more", stored);
    probe_init(&p[5], CH_AUTH_HASH_MAKE, "an admin's new password", "");
    assert_int_equal(ch_auth_hasher_submit(h, &p[0].job, "192.0.2.1:1", on_hashed), 0);
    assert_int_equal(ch_auth_hasher_submit(h, &p[1].job, "192.0.2.1:2", on_hashed), 0);
    /* A third from the same host (another port) is beyond its address's bound. */
    assert_int_equal(ch_auth_hasher_submit(h, &p[2].job, "192.0.2.1:3", on_hashed), CH_EAGAIN);
    assert_int_equal(ch_auth_hasher_submit(h, &p[3].job, "[2001:db8::1]:1", on_hashed), 0);
    /* Three in flight: a fourth address is beyond the bound in all. */
    assert_int_equal(ch_auth_hasher_submit(h, &p[4].job, "198.51.100.1:1", on_hashed), CH_EAGAIN);
    assert_int_equal(ch_auth_hasher_in_flight(h), 3);
    /* An authenticated request is never refused. */
    assert_int_equal(ch_auth_hasher_submit(h, &p[5].job, NULL, on_hashed), 0);
    assert_int_equal(ch_auth_hasher_in_flight(h), 4);
    /* The loop runs until the last result is back, and no longer (the pool holds no ref). */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(hash_callbacks, 4);
    assert_int_equal(ch_auth_hasher_in_flight(h), 0);
    uv_thread_t self = uv_thread_self();
    for (int i = 0; i < 6; i++) {
        int queued = i != 2 && i != 4;
        assert_int_equal(p[i].done, queued);
        if (queued) {
            assert_true(uv_thread_equal(&p[i].thread, &self)); /* callbacks on the loop */
        }
    }
    assert_int_equal(p[0].job.result, 0);
    assert_int_equal(p[1].job.result, CH_EPERM);
    assert_int_equal(p[3].job.result, CH_EPERM);
    assert_int_equal(p[5].job.result, 0);
    assert_int_equal(strncmp(p[5].job.hash, "$argon2id$", 10), 0);
    assert_int_equal(ch_auth_password_verify(p[5].job.hash, "an admin's new password", 23), 0);
    /* Done jobs no longer count: the address may try again. */
    probe_init(&p[6], CH_AUTH_HASH_VERIFY, right, stored);
    probe_init(&p[7], CH_AUTH_HASH_VERIFY, right, stored);
    assert_int_equal(ch_auth_hasher_submit(h, &p[6].job, "192.0.2.1:4", on_hashed), 0);
    assert_int_equal(ch_auth_hasher_submit(h, &p[7].job, "192.0.2.1", on_hashed), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(p[6].job.result, 0);
    assert_int_equal(p[7].job.result, 0);
    ch_auth_hasher_free(h);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0); /* the async handle closes */
    assert_int_equal(uv_loop_close(&loop), 0);
    /* A pool never used starts no thread and frees at once. */
    assert_int_equal(uv_loop_init(&loop), 0);
    ch_auth_hasher_free(ch_auth_hasher_new(&loop, NULL));
    ch_auth_hasher_free(NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_bit_and_name),
        cmocka_unit_test(test_roles_mask),
        cmocka_unit_test(test_password_length),
        cmocka_unit_test(test_password_control_characters),
        cmocka_unit_test(test_password_utf8),
        cmocka_unit_test(test_password_hash_and_verify),
        cmocka_unit_test(test_password_verify_refuses_other_algorithms),
        cmocka_unit_test(test_random_token),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_secret_eq),
        cmocka_unit_test(test_apikey_round_trip),
        cmocka_unit_test(test_apikey_parse_rejects),
        cmocka_unit_test(test_cookie_get),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test_setup_teardown(test_authenticate_without_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_bad_session_cookies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_expired_session_is_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_disabled_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_session_slides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_apikey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_bad_apikeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate_revoked_apikey, setup, teardown),
        cmocka_unit_test(test_principal_of_user),
        cmocka_unit_test(test_throttle_window),
        cmocka_unit_test(test_throttle_clear),
        cmocka_unit_test(test_throttle_ports_are_one_host),
        cmocka_unit_test(test_throttle_full_table_keeps_newest),
        cmocka_unit_test(test_throttle_forgive_takes_back_one_attempt),
        cmocka_unit_test(test_throttle_addresses_without_ports),
        cmocka_unit_test(test_lockout_holds_for_one_user_from_one_address),
        cmocka_unit_test(test_lockout_full_table_takes_the_longest_names),
        cmocka_unit_test(test_hasher_bounds_per_address_and_in_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
