/*
 * libFuzzer target for the audit segment reader and checkpoint note parser.
 *
 * The first input byte picks the mode (its value modulo 3): 0 feeds the rest to the frame
 * scanner as a whole segment file (header, then frames, then the record tail reader and the
 * canonical record check on each good frame, then the tail rule on what follows the frames:
 * padding, torn tail or damage); 1 to the checkpoint note splitter and parser, with and
 * without a key; 2 to the canonical record check directly. The input is copied into a block
 * of exactly its size, so that AddressSanitizer sees any read past the end. Every outcome
 * must be a status or an error code, never a crash, and a scan
 * must always move forward.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void scan_segment(const uint8_t *buf, size_t len)
{
    uint64_t first = 0;
    if (ch_audit__segment_header(buf, len, &first) != 0) {
        return;
    }
    size_t off = CH_AUDIT__SEG_HEADER;
    for (;;) {
        ch_audit__frame_t f;
        ch_audit__frame_status_t s = ch_audit__frame_read(buf, len, off, &f);
        if (s != CH_AUDIT__FRAME_OK) {
            break;
        }
        assert(f.next > off && f.next <= len);
        assert(f.record >= buf && f.record + f.len <= buf + len);
        uint64_t seq;
        int64_t t;
        (void)ch_audit__record_tail(f.record, f.len, &seq, &t);
        /* The verifier's allocation-free canonical-record scan: a status, never a crash. */
        (void)ch_audit__record_check(f.record, f.len, &seq);
        off = f.next;
    }
    /* What follows the records, as the last segment of a log: padding, a torn tail to cut
     * inside the file, or damage; never a read outside it. */
    size_t cut = len + 1;
    int t = ch_audit__segment_tail(buf, len, off, &cut);
    assert(t >= -1 && t <= 1);
    assert(t != 1 || (cut >= off && cut <= len));
    for (size_t i = off; t == 0 && i < len; i++) {
        assert(buf[i] == 0);
    }
}

static void parse_notes(const char *buf, size_t len)
{
    static ch_audit_key_t key;
    static int have_key;
    if (!have_key) {
        /* A fixed key, so that the signature check path is reached with a real key. */
        const char *pub = "cctvhub+51aa8035+AQ3Oi+0fNGmTrsCPzI6qIvdkypbOlkKVIdEcUQHnAXbf";
        have_key = ch_audit_pubkey_parse(pub, &key, NULL) == 0 ? 1 : -1;
    }
    size_t off = 0, end;
    while (off < len && ch_audit__note_end(buf, len, off, &end) == 0) {
        assert(end > off && end <= len);
        ch_audit_checkpoint_t cp;
        char *err = NULL;
        (void)ch_audit_checkpoint_parse(buf + off, end - off, NULL, &cp, &err);
        ch_free(err);
        err = NULL;
        (void)ch_audit_checkpoint_parse(buf + off, end - off, have_key == 1 ? &key : NULL, &cp,
                                        &err);
        ch_free(err);
        off = end;
    }
    char *err = NULL;
    ch_audit_key_t k;
    char *text = malloc(len + 1);
    if (text != NULL) {
        memcpy(text, buf, len);
        text[len] = '\0';
        (void)ch_audit_pubkey_parse(text, &k, &err);
        ch_free(err);
        free(text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t len = size - 1;
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data + 1, len);
    uint64_t seq;
    switch (data[0] % 3) {
    case 0:
        scan_segment(buf, len);
        break;
    case 1:
        parse_notes((const char *)buf, len);
        break;
    default:
        /* The record check alone: frames with a matching hash are rare for the fuzzer. */
        (void)ch_audit__record_check(buf, len, &seq);
        break;
    }
    free(buf);
    return 0;
}
