/*
 * Unit tests of codec/: the RTP header parser, the H.264 and H.265 depacketizer and the SPS
 * readers, against real bitstreams.
 *
 * The streams are encoded at test time by Debian's ffmpeg (libx264, libx265), so that the
 * bytes are those of real encoders; the group skips with a message when ffmpeg or ffprobe is
 * missing (scripts/setup.sh installs them). Each stream is cut into NAL units and access units
 * here, independently of the code under test, and packetized by the small reference
 * packetizer below (single NAL units, STAP-A/AP for runs of small units, FU-A/FU for big
 * ones). The depacketizer must then find every access unit border and every keyframe, and
 * capture the parameter sets byte for byte; ffprobe on the same file is the reference for the
 * number of frames, which of them are keyframes, the size, the profile and the level, and
 * ffmpeg's DASH muxer for the avc1 codec string.
 *
 * Every packet is given to the code under test in a heap block of exactly its size, so that
 * AddressSanitizer catches a read one byte past its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "codec/codec.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static char workdir[64];
static int have_tools;

static int in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (path == NULL) {
        return 0;
    }
    char buf[512];
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0) {
            return 1;
        }
        path += n + (end != NULL);
    }
    return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ch_buf_append(&b, chunk, n);
    }
    fclose(f);
    *len = b.len;
    return (uint8_t *)b.data;
}

/* Runs a shell command and returns its standard output (NUL-terminated, caller frees). */
static char *run_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    ch_buf_t b;
    ch_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        ch_buf_append(&b, chunk, n);
    }
    int rc = pclose(p);
    if (rc != 0) {
        fail_msg("command failed (%d): %s", rc, cmd);
    }
    ch_buf_append_char(&b, '\0');
    return b.data;
}

/* The integer after "key=" at the start of a line of ffprobe's default output. */
static long probe_int(const char *out, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\n%s=", key);
    const char *p = strstr(out, pat);
    if (p == NULL) {
        fail_msg("ffprobe printed no %s", key);
    }
    return strtol(p + strlen(pat), NULL, 10);
}

static void probe_str(const char *out, const char *key, char *dst, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\n%s=", key);
    const char *p = strstr(out, pat);
    if (p == NULL) {
        fail_msg("ffprobe printed no %s", key);
    }
    p += strlen(pat);
    size_t n = strcspn(p, "\n");
    snprintf(dst, cap, "%.*s", (int)n, p);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64_encode(const uint8_t *in, size_t len, ch_buf_t *out)
{
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < len) {
            v |= in[i + 2];
        }
        ch_buf_append_char(out, b64chars[(v >> 18) & 63]);
        ch_buf_append_char(out, b64chars[(v >> 12) & 63]);
        ch_buf_append_char(out, i + 1 < len ? b64chars[(v >> 6) & 63] : '=');
        ch_buf_append_char(out, i + 2 < len ? b64chars[v & 63] : '=');
    }
}

/* ---- clips: encoding, Annex B, access units --------------------------------------------- */

typedef struct nal {
    const uint8_t *p;
    size_t len;
    unsigned type;
    int au; /* access unit index, in decoding order */
} nal_t;

typedef struct clip {
    const char *name;
    ch_codec_kind_t kind;
    const char *encode; /* ffmpeg arguments between the input and the output file */
    char path[128];
    uint8_t *data;
    size_t len;
    nal_t *nals;
    size_t n_nals;
    int n_au;
    /* ffprobe's view */
    int probe_width, probe_height, probe_level, probe_frames;
    char probe_profile[48];
    char probe_keys[256]; /* one char per packet: 'K' or '_' */
    char dash_codec[48];  /* from ffmpeg's DASH muxer, H.264 only */
} clip_t;

#define X264_GOP "-g 25 -keyint_min 25 -sc_threshold 0 -pix_fmt yuv420p"
#define X265_GOP "-pix_fmt yuv420p -x265-params keyint=25:min-keyint=25:scenecut=0:log-level=error"

static clip_t clips[] = {
    {.name = "h264_720p_high",
     .kind = CH_CODEC_H264,
     .encode = "-s 1280x720 -c:v libx264 -preset veryfast " X264_GOP " -f h264"},
    {.name = "h264_1080p_baseline",
     .kind = CH_CODEC_H264,
     .encode =
         "-s 1920x1080 -c:v libx264 -preset ultrafast -profile:v baseline " X264_GOP " -f h264"},
    {.name = "h264_1080i_main",
     .kind = CH_CODEC_H264,
     .encode =
         "-s 1920x1080 -c:v libx264 -preset ultrafast -profile:v main -flags +ildct+ilme " X264_GOP
         " -f h264"},
    {.name = "h265_720p_main",
     .kind = CH_CODEC_H265,
     .encode = "-s 1280x720 -c:v libx265 -preset ultrafast " X265_GOP " -f hevc"},
    {.name = "h265_640x358_main",
     .kind = CH_CODEC_H265,
     .encode = "-s 640x358 -c:v libx265 -preset veryfast " X265_GOP " -f hevc"},
};
enum { CLIP_H264_720, CLIP_H264_1080, CLIP_H264_1080I, CLIP_H265_720, CLIP_H265_358 };

static unsigned type_of(ch_codec_kind_t kind, const uint8_t *p)
{
    return kind == CH_CODEC_H264 ? p[0] & 0x1fu : (p[0] >> 1) & 0x3fu;
}

static int is_key(ch_codec_kind_t kind, unsigned t)
{
    return kind == CH_CODEC_H264 ? t == 5 : (t >= 16 && t <= 21);
}

static int is_vcl(ch_codec_kind_t kind, unsigned t)
{
    return kind == CH_CODEC_H264 ? (t >= 1 && t <= 5) : t < 32;
}

/* Whether a NAL unit opens a new access unit once the current one has a picture (H.264
 * 7.4.1.2.3, H.265 7.4.2.4.4): parameter sets, SEI, delimiters, or the first slice of a
 * picture (first_mb_in_slice == 0, whose ue(v) is the single bit 1; H.265
 * first_slice_segment_in_pic_flag). */
static int opens_au(ch_codec_kind_t kind, const nal_t *n)
{
    unsigned t = n->type;
    if (kind == CH_CODEC_H264) {
        if (t == 6 || t == 7 || t == 8 || t == 9 || (t >= 14 && t <= 18)) {
            return 1;
        }
        return is_vcl(kind, t) && n->len > 1 && (n->p[1] & 0x80);
    }
    if (t == 32 || t == 33 || t == 34 || t == 35 || t == 39 || (t >= 41 && t <= 44)) {
        return 1;
    }
    return is_vcl(kind, t) && n->len > 2 && (n->p[2] & 0x80);
}

/* Splits an Annex B stream at its start codes; trailing zero bytes belong to no unit. */
static void split_annexb(clip_t *c)
{
    size_t cap = 1024;
    c->nals = ch_malloc(cap * sizeof(nal_t));
    c->n_nals = 0;
    const uint8_t *d = c->data;
    size_t start = SIZE_MAX;
    for (size_t i = 0; i + 3 <= c->len; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            if (start != SIZE_MAX) {
                size_t end = i;
                while (end > start && d[end - 1] == 0) {
                    end--;
                }
                if (c->n_nals == cap) {
                    cap *= 2;
                    c->nals = ch_realloc(c->nals, cap * sizeof(nal_t));
                }
                c->nals[c->n_nals++] = (nal_t){d + start, end - start, 0, 0};
            }
            start = i + 3;
            i += 2;
        }
    }
    assert_true(start != SIZE_MAX);
    if (c->n_nals == cap) {
        c->nals = ch_realloc(c->nals, (cap + 1) * sizeof(nal_t));
    }
    c->nals[c->n_nals++] = (nal_t){d + start, c->len - start, 0, 0};

    int au = -1, have_picture = 1;
    for (size_t i = 0; i < c->n_nals; i++) {
        nal_t *n = &c->nals[i];
        n->type = type_of(c->kind, n->p);
        if (have_picture && opens_au(c->kind, n)) {
            au++;
            have_picture = 0;
        }
        if (is_vcl(c->kind, n->type)) {
            have_picture = 1;
        }
        n->au = au;
    }
    c->n_au = au + 1;
}

static void load_clip(clip_t *c)
{
    snprintf(c->path, sizeof(c->path), "%s/%s.bin", workdir, c->name);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -f lavfi -i testsrc=size=1280x720:rate=25 -frames:v 50 "
             "%s -y %s",
             c->encode, c->path);
    ch_free(run_output(cmd));
    c->data = read_file(c->path, &c->len);
    split_annexb(c);

    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams v:0 -show_entries "
             "stream=profile,level,width,height -of default=nw=1 %s",
             c->path);
    char *out = run_output(cmd);
    char *nl = ch_malloc(strlen(out) + 2); /* a leading newline, so every key starts a line */
    nl[0] = '\n';
    memcpy(nl + 1, out, strlen(out) + 1);
    c->probe_width = (int)probe_int(nl, "width");
    c->probe_height = (int)probe_int(nl, "height");
    c->probe_level = (int)probe_int(nl, "level");
    probe_str(nl, "profile", c->probe_profile, sizeof(c->probe_profile));
    ch_free(nl);
    ch_free(out);

    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams v:0 -show_entries packet=flags -of csv=p=0 %s",
             c->path);
    out = run_output(cmd);
    c->probe_frames = 0;
    for (char *line = out; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > 0 && c->probe_frames < (int)sizeof(c->probe_keys) - 1) {
            c->probe_keys[c->probe_frames++] = line[0] == 'K' ? 'K' : '_';
        }
        line += n + (line[n] == '\n');
    }
    c->probe_keys[c->probe_frames] = '\0';
    ch_free(out);

    if (c->kind == CH_CODEC_H264) {
        /* ffmpeg's DASH muxer writes the avc1 string from the stream's own avcC. */
        snprintf(cmd, sizeof(cmd),
                 "cd %s && mkdir -p dash_%s && ffmpeg -nostdin -v error -i %s -c copy -f dash "
                 "-y dash_%s/out.mpd && grep -o 'codecs=\"avc1[^\"]*\"' dash_%s/out.mpd",
                 workdir, c->name, c->path, c->name, c->name);
        out = run_output(cmd);
        size_t n = strcspn(out + 8, "\"");
        snprintf(c->dash_codec, sizeof(c->dash_codec), "%.*s", (int)n, out + 8);
        ch_free(out);
    }
}

static int group_setup(void **state)
{
    if (!in_path("ffmpeg") || !in_path("ffprobe")) {
        return 0;
    }
    snprintf(workdir, sizeof(workdir), "/tmp/ch_codec_test_XXXXXX");
    if (mkdtemp(workdir) == NULL) {
        return -1;
    }
    for (size_t i = 0; i < CH_ARRAY_SIZE(clips); i++) {
        load_clip(&clips[i]);
    }
    have_tools = 1;
    return 0;
}

static int group_teardown(void **state)
{
    for (size_t i = 0; i < CH_ARRAY_SIZE(clips); i++) {
        ch_free(clips[i].data);
        ch_free(clips[i].nals);
    }
    if (workdir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", workdir);
        if (system(cmd) != 0) {
            return -1;
        }
    }
    return 0;
}

#define NEED_TOOLS()                                                                               \
    do {                                                                                           \
        if (!have_tools) {                                                                         \
            print_message("ffmpeg/ffprobe not in PATH (scripts/setup.sh installs them): "          \
                          "skipping the real-stream tests\n");                                     \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The last unit of the given type in the clip, which the stream must hold at its end. */
static const nal_t *last_of_type(const clip_t *c, unsigned type)
{
    const nal_t *found = NULL;
    for (size_t i = 0; i < c->n_nals; i++) {
        if (c->nals[i].type == type) {
            found = &c->nals[i];
        }
    }
    return found;
}

/* ---- the reference packetizer ----------------------------------------------------------- */

typedef struct pkt {
    uint8_t *buf; /* exactly len bytes */
    size_t len;
    int au;
    int want_au_start;
    int want_key;
    int want_params; /* a parameter set completes here and differs from the last one */
    uint64_t want_types;
} pkt_t;

typedef struct pkts {
    pkt_t *v;
    size_t n, cap;
} pkts_t;

typedef struct popts {
    size_t mtu;     /* RTP payload bytes at most */
    int markers;    /* set the marker bit on the last packet of an access unit */
    uint16_t seq0;  /* first sequence number */
    int donl;       /* H.265 DONL/DOND fields */
    int rtp_extras; /* give some packets CSRCs, an extension and padding */
    int aggregate;  /* use STAP-A / AP for runs of small units */
    int preloaded;  /* the stream already holds the clip's parameter sets (from the SDP) */
} popts_t;

/* The packetizer's memory of parameter sets, to predict CH_CODEC_PKT_PARAMS. */
typedef struct ptrack {
    const nal_t *last[64];
} ptrack_t;

static int param_changes(ch_codec_kind_t kind, ptrack_t *t, const nal_t *n)
{
    int param =
        kind == CH_CODEC_H264 ? (n->type == 7 || n->type == 8) : (n->type >= 32 && n->type <= 34);
    if (!param) {
        return 0;
    }
    const nal_t *old = t->last[n->type];
    t->last[n->type] = n;
    return old == NULL || old->len != n->len || memcmp(old->p, n->p, n->len) != 0;
}

/* Adds one RTP packet with the payload pay[0, len). */
static pkt_t *emit(pkts_t *ps, const popts_t *o, int au, int marker, const uint8_t *pay, size_t len)
{
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 256;
        ps->v = ch_realloc(ps->v, ps->cap * sizeof(pkt_t));
    }
    size_t idx = ps->n;
    int extras = o->rtp_extras && idx % 7 == 3;
    size_t csrc = extras ? 2 : 0, ext = extras ? 8 : 0, pad = extras ? 5 : 0;
    size_t total = 12 + 4 * csrc + ext + len + pad;
    uint8_t *b = ch_malloc(total);
    memset(b, 0xee, total);
    b[0] = (uint8_t)(0x80 | (pad ? 0x20 : 0) | (ext ? 0x10 : 0) | csrc);
    b[1] = (uint8_t)((marker ? 0x80 : 0) | 96);
    uint16_t seq = (uint16_t)(o->seq0 + idx);
    b[2] = (uint8_t)(seq >> 8);
    b[3] = (uint8_t)seq;
    uint32_t ts = 1000u + (uint32_t)au * 3600u;
    b[4] = (uint8_t)(ts >> 24);
    b[5] = (uint8_t)(ts >> 16);
    b[6] = (uint8_t)(ts >> 8);
    b[7] = (uint8_t)ts;
    memcpy(b + 8, "\x12\x34\x56\x78", 4);
    size_t off = 12 + 4 * csrc;
    if (ext) {
        memcpy(b + off, "\xbe\xde\x00\x01", 4); /* one word of RFC 8285 extension */
        off += ext;
    }
    memcpy(b + off, pay, len);
    if (pad) {
        b[total - 1] = (uint8_t)pad;
    }
    pkt_t *p = &ps->v[ps->n++];
    *p = (pkt_t){b, total, au, 0, 0, 0, 0};
    return p;
}

static void packetize(const clip_t *c, const popts_t *o, pkts_t *ps)
{
    int h264 = c->kind == CH_CODEC_H264;
    size_t hdr = h264 ? 1 : 2;
    size_t donl = o->donl ? 2 : 0;
    uint8_t pay[65536];
    ptrack_t track = {{0}};
    if (o->preloaded) {
        for (unsigned t = 0; t < 64; t++) {
            track.last[t] = last_of_type(c, t);
        }
    }
    memset(ps, 0, sizeof(*ps));
    uint16_t don = 0;
    for (size_t i = 0; i < c->n_nals;) {
        const nal_t *n = &c->nals[i];
        int au = n->au;
        int au_first = i == 0 || c->nals[i - 1].au != au;
        /* How many units from i on fit in one aggregation packet (of this access unit). */
        size_t k = i, size = hdr;
        while (o->aggregate && k < c->n_nals && c->nals[k].au == au &&
               size + (k == i ? donl : donl / 2) + 2 + c->nals[k].len <= o->mtu) {
            size += (k == i ? donl : donl / 2) + 2 + c->nals[k].len;
            k++;
        }
        size_t last_of_au = i;
        while (last_of_au + 1 < c->n_nals && c->nals[last_of_au + 1].au == au) {
            last_of_au++;
        }
        pkt_t *p;
        if (k - i >= 2) {
            /* STAP-A: F and the highest NRI of the units; AP: the lowest TID (RFC 7798
             * 4.4.2). */
            uint8_t nri = 0, tid = 7;
            for (size_t j = i; j < k; j++) {
                nri = (uint8_t)(nri > (c->nals[j].p[0] & 0x60) ? nri : (c->nals[j].p[0] & 0x60));
                if (!h264 && (c->nals[j].p[1] & 7) < tid) {
                    tid = c->nals[j].p[1] & 7;
                }
            }
            size_t off = 0;
            if (h264) {
                pay[off++] = (uint8_t)(nri | 24);
            } else {
                pay[off++] = 48 << 1;
                pay[off++] = tid;
            }
            int params = 0;
            uint64_t types = 0;
            int key = 0;
            for (size_t j = i; j < k; j++) {
                const nal_t *m = &c->nals[j];
                if (o->donl) {
                    if (j == i) {
                        pay[off++] = (uint8_t)(don >> 8);
                        pay[off++] = (uint8_t)don;
                    } else {
                        pay[off++] = 0; /* DOND: the next unit, DON + 1 */
                    }
                }
                don++;
                pay[off++] = (uint8_t)(m->len >> 8);
                pay[off++] = (uint8_t)m->len;
                memcpy(pay + off, m->p, m->len);
                off += m->len;
                params |= param_changes(c->kind, &track, m);
                types |= (uint64_t)1 << m->type;
                key |= is_key(c->kind, m->type);
            }
            p = emit(ps, o, au, o->markers && k - 1 == last_of_au, pay, off);
            p->want_au_start = au_first;
            p->want_params = params;
            p->want_types = types;
            p->want_key = key;
            i = k;
            continue;
        }
        if (n->len + donl <= o->mtu) {
            size_t off = 0;
            memcpy(pay, n->p, hdr);
            off = hdr;
            if (o->donl) {
                pay[off++] = (uint8_t)(don >> 8);
                pay[off++] = (uint8_t)don;
            }
            memcpy(pay + off, n->p + hdr, n->len - hdr);
            off += n->len - hdr;
            don++;
            p = emit(ps, o, au, o->markers && i == last_of_au, pay, off);
            p->want_au_start = au_first;
            p->want_params = param_changes(c->kind, &track, n);
            p->want_types = (uint64_t)1 << n->type;
            p->want_key = is_key(c->kind, n->type);
            i++;
            continue;
        }
        /* FU-A / FU: the unit's header is rebuilt from the FU indicator/payload header and the
         * FU header, so its body is what is cut. */
        size_t pos = hdr;
        int first = 1;
        while (pos < n->len) {
            size_t off = 0;
            if (h264) {
                pay[off++] = (uint8_t)((n->p[0] & 0xe0) | 28);
            } else {
                pay[off++] = (uint8_t)((n->p[0] & 0x81) | (49 << 1));
                pay[off++] = n->p[1];
            }
            size_t fu_hdr = off++;
            if (first && o->donl) {
                pay[off++] = (uint8_t)(don >> 8);
                pay[off++] = (uint8_t)don;
            }
            size_t room = o->mtu - off;
            size_t chunk = n->len - pos < room ? n->len - pos : room;
            int last = pos + chunk == n->len;
            pay[fu_hdr] = (uint8_t)((first ? 0x80 : 0) | (last ? 0x40 : 0) | n->type);
            memcpy(pay + off, n->p + pos, chunk);
            off += chunk;
            pos += chunk;
            p = emit(ps, o, au, o->markers && last && i == last_of_au, pay, off);
            p->want_au_start = au_first && first;
            p->want_key = first && is_key(c->kind, n->type);
            p->want_types = (uint64_t)1 << n->type;
            p->want_params = last && param_changes(c->kind, &track, n);
            first = 0;
        }
        don++;
        i++;
    }
}

static void pkts_free(pkts_t *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        ch_free(ps->v[i].buf);
    }
    ch_free(ps->v);
}

static void assert_param(const ch_codec_param_t *got, const nal_t *want, const char *what)
{
    assert_non_null(want);
    if (got->len != want->len || memcmp(got->data, want->p, want->len) != 0) {
        fail_msg("%s: captured %u bytes, the stream's last one has %zu or differs", what, got->len,
                 want->len);
    }
}

static int profile_from_name(ch_codec_kind_t kind, const char *name)
{
    static const struct {
        ch_codec_kind_t kind;
        const char *name;
        int idc;
    } map[] = {
        {CH_CODEC_H264, "Constrained Baseline", 66},
        {CH_CODEC_H264, "Baseline", 66},
        {CH_CODEC_H264, "Main", 77},
        {CH_CODEC_H264, "High", 100},
        {CH_CODEC_H265, "Main", 1},
        {CH_CODEC_H265, "Main 10", 2},
        {CH_CODEC_H265, "Rext", 4},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(map); i++) {
        if (map[i].kind == kind && strcmp(map[i].name, name) == 0) {
            return map[i].idc;
        }
    }
    fail_msg("unknown ffprobe profile \"%s\"", name);
    return -1;
}

/* Feeds the packets to a fresh stream and checks every packet's report against what the
 * packetizer knows, then the stream's end state against ffprobe. */
static void check_clip(const clip_t *c, const popts_t *o, const char *fmtp)
{
    pkts_t ps;
    packetize(c, o, &ps);
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, c->kind);
    if (fmtp != NULL) {
        assert_int_equal(ch_codec_stream_set_fmtp(s, fmtp, strlen(fmtp)), 0);
    }
    int aus = 0;
    char keys[256];
    memset(keys, '_', sizeof(keys));
    for (size_t i = 0; i < ps.n; i++) {
        const pkt_t *p = &ps.v[i];
        ch_codec_rtp_t rtp;
        assert_int_equal(ch_codec_rtp_parse(p->buf, p->len, &rtp), 0);
        assert_true(rtp.payload >= p->buf && rtp.payload + rtp.payload_len <= p->buf + p->len);
        ch_codec_pkt_t info;
        int rc = ch_codec_stream_push(s, &rtp, &info);
        if (rc != 0) {
            fail_msg("%s packet %zu: %s", c->name, i, ch_strerror(rc));
        }
        int au_start = (info.flags & CH_CODEC_PKT_AU_START) != 0;
        int key = (info.flags & CH_CODEC_PKT_KEYFRAME) != 0;
        int params = (info.flags & CH_CODEC_PKT_PARAMS) != 0;
        if (au_start != p->want_au_start || key != p->want_key || params != p->want_params ||
            info.nal_types != p->want_types) {
            fail_msg("%s packet %zu (au %d): au_start %d/%d key %d/%d params %d/%d types "
                     "%llx/%llx",
                     c->name, i, p->au, au_start, p->want_au_start, key, p->want_key, params,
                     p->want_params, (unsigned long long)info.nal_types,
                     (unsigned long long)p->want_types);
        }
        assert_int_equal(info.flags & (CH_CODEC_PKT_GAP | CH_CODEC_PKT_ORPHAN), 0);
        aus += au_start;
        if (key && p->au < (int)sizeof(keys)) {
            keys[p->au] = 'K';
        }
    }
    /* ffprobe: the same number of frames, the keyframes at the same places. */
    assert_int_equal(aus, c->probe_frames);
    assert_int_equal(c->n_au, c->probe_frames);
    keys[aus < (int)sizeof(keys) ? aus : (int)sizeof(keys) - 1] = '\0';
    assert_string_equal(keys, c->probe_keys);
    /* 50 frames with a keyframe interval of 25: two, the first at the start. (The second
     * is at decoding index 25 for x264's closed GOPs, earlier for x265's open GOPs, whose
     * leading pictures follow their CRA in decoding order.) */
    assert_int_equal(keys[0], 'K');
    assert_non_null(strchr(keys + 1, 'K'));
    assert_null(strchr(strchr(keys + 1, 'K') + 1, 'K'));

    if (c->kind == CH_CODEC_H264) {
        assert_param(&s->sps, last_of_type(c, 7), "SPS");
        assert_param(&s->pps, last_of_type(c, 8), "PPS");
    } else {
        assert_param(&s->vps, last_of_type(c, 32), "VPS");
        assert_param(&s->sps, last_of_type(c, 33), "SPS");
        assert_param(&s->pps, last_of_type(c, 34), "PPS");
    }
    assert_int_equal(s->params_dropped, 0);
    assert_true(s->sps_valid);
    const ch_codec_sps_t *sps = &s->sps_info;
    assert_int_equal(sps->width, c->probe_width);
    assert_int_equal(sps->height, c->probe_height);
    assert_int_equal(sps->level_idc, c->probe_level);
    assert_int_equal(sps->profile_idc, profile_from_name(c->kind, c->probe_profile));
    assert_int_equal(sps->chroma_format_idc, 1);
    assert_int_equal(sps->bit_depth_luma, 8);
    if (c->kind == CH_CODEC_H264) {
        if (strcasecmp(sps->codec, c->dash_codec) != 0) {
            fail_msg("codec string %s, ffmpeg's DASH muxer says %s", sps->codec, c->dash_codec);
        }
    } else {
        /* x265 writes Main with the Main and Main 10 compatibility flags (1 and 2: "6") and
         * the progressive_source and frame_only constraint flags (0x90). */
        char want[48];
        snprintf(want, sizeof(want), "hvc1.1.6.L%d.90", c->probe_level);
        assert_string_equal(sps->codec, want);
    }
    ch_free(s);
    pkts_free(&ps);
}

/* ---- real streams ----------------------------------------------------------------------- */

static const popts_t default_opts = {
    .mtu = 1400, .markers = 1, .seq0 = 65500, .rtp_extras = 1, .aggregate = 1};

static void test_h264_high_access_units_keyframes_and_params_match_ffprobe(void **state)
{
    NEED_TOOLS();
    check_clip(&clips[CLIP_H264_720], &default_opts, NULL);
}

static void test_h264_1080p_is_cropped_to_1080(void **state)
{
    NEED_TOOLS();
    check_clip(&clips[CLIP_H264_1080], &default_opts, NULL);
    assert_int_equal(clips[CLIP_H264_1080].probe_height, 1080);
}

static void test_h264_interlaced_1080i_crops_in_field_units(void **state)
{
    NEED_TOOLS();
    check_clip(&clips[CLIP_H264_1080I], &default_opts, NULL);
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    const nal_t *sps = last_of_type(&clips[CLIP_H264_1080I], 7);
    assert_int_equal(ch_codec_h264_sps_parse(sps->p, sps->len, &s->sps_info), 0);
    assert_int_equal(s->sps_info.frame_mbs_only, 0);
    assert_int_equal(s->sps_info.coded_height, 1088);
    assert_int_equal(s->sps_info.height, 1080);
    ch_free(s);
}

static void test_h265_access_units_keyframes_and_params_match_ffprobe(void **state)
{
    NEED_TOOLS();
    check_clip(&clips[CLIP_H265_720], &default_opts, NULL);
}

static void test_h265_conformance_window_crops_358_lines(void **state)
{
    NEED_TOOLS();
    check_clip(&clips[CLIP_H265_358], &default_opts, NULL);
    assert_int_equal(clips[CLIP_H265_358].probe_height, 358);
}

/* A small MTU fragments the parameter sets too: they must be put back together. */
static void test_fragmented_parameter_sets_are_reassembled(void **state)
{
    NEED_TOOLS();
    popts_t o = {.mtu = 12, .markers = 1};
    check_clip(&clips[CLIP_H264_720], &o, NULL);
    check_clip(&clips[CLIP_H265_720], &o, NULL);
}

/* Cameras that never set the marker: the timestamp alone must still find every border. */
static void test_access_units_found_from_timestamps_without_markers(void **state)
{
    NEED_TOOLS();
    popts_t o = {.mtu = 1200, .seq0 = 100, .aggregate = 1};
    check_clip(&clips[CLIP_H264_720], &o, NULL);
    check_clip(&clips[CLIP_H265_358], &o, NULL);
}

static void test_h265_donl_fields_when_sdp_sets_max_don_diff(void **state)
{
    NEED_TOOLS();
    popts_t o = {.mtu = 900, .markers = 1, .seq0 = 7, .donl = 1, .rtp_extras = 1, .aggregate = 1};
    check_clip(&clips[CLIP_H265_720], &o, "a=fmtp:96 sprop-max-don-diff=2");
}

/* A camera that changes resolution: the stream's SPS, and its size, follow. */
static void test_resolution_change_mid_stream_updates_sps(void **state)
{
    NEED_TOOLS();
    const clip_t *a = &clips[CLIP_H264_720], *b = &clips[CLIP_H264_1080];
    clip_t both = {.name = "concat", .kind = CH_CODEC_H264};
    both.len = a->len + b->len;
    both.data = ch_malloc(both.len);
    memcpy(both.data, a->data, a->len);
    memcpy(both.data + a->len, b->data, b->len);
    split_annexb(&both);
    pkts_t ps;
    packetize(&both, &default_opts, &ps);
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    int changes = 0, keys = 0;
    uint32_t width_at_third_key = 0;
    for (size_t i = 0; i < ps.n; i++) {
        ch_codec_rtp_t rtp;
        ch_codec_pkt_t info;
        assert_int_equal(ch_codec_rtp_parse(ps.v[i].buf, ps.v[i].len, &rtp), 0);
        assert_int_equal(ch_codec_stream_push(s, &rtp, &info), 0);
        changes += (info.flags & CH_CODEC_PKT_PARAMS) != 0;
        if (info.flags & CH_CODEC_PKT_KEYFRAME) {
            keys++;
            if (keys == 3) {
                width_at_third_key = s->sps_info.width;
            }
        }
    }
    assert_int_equal(keys, 4);
    assert_true(changes >= 2);
    assert_int_equal(width_at_third_key, 1920);
    assert_int_equal(s->sps_info.height, 1080);
    ch_free(s);
    pkts_free(&ps);
    ch_free(both.data);
    ch_free(both.nals);
}

/* ---- SDP -------------------------------------------------------------------------------- */

static void test_sprop_parameter_sets_from_sdp_match_in_band(void **state)
{
    NEED_TOOLS();
    const clip_t *c = &clips[CLIP_H264_1080];
    const nal_t *sps = last_of_type(c, 7), *pps = last_of_type(c, 8);
    ch_buf_t line;
    ch_buf_init(&line);
    ch_buf_append_str(&line, "a=fmtp:96 packetization-mode=1; profile-level-id=42C028; "
                             "sprop-parameter-sets=");
    b64_encode(sps->p, sps->len, &line);
    ch_buf_append_char(&line, ',');
    b64_encode(pps->p, pps->len, &line);
    ch_buf_append_str(&line, "\r\n");
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    assert_int_equal(ch_codec_stream_set_fmtp(s, line.data, line.len), 0);
    assert_param(&s->sps, sps, "SPS from SDP");
    assert_param(&s->pps, pps, "PPS from SDP");
    assert_true(s->sps_valid);
    assert_int_equal(s->sps_info.width, 1920);
    assert_int_equal(s->sps_info.height, 1080);
    assert_int_equal(s->params_version, 2);
    /* The same sets again in band change nothing. */
    popts_t o = default_opts;
    o.preloaded = 1;
    check_clip(c, &o, line.data);
    ch_buf_fini(&line);
    ch_free(s);
}

static void test_sprop_vps_sps_pps_from_sdp(void **state)
{
    NEED_TOOLS();
    const clip_t *c = &clips[CLIP_H265_358];
    ch_buf_t line;
    ch_buf_init(&line);
    ch_buf_append_str(&line, "sprop-vps=");
    b64_encode(last_of_type(c, 32)->p, last_of_type(c, 32)->len, &line);
    ch_buf_append_str(&line, ";sprop-sps=");
    b64_encode(last_of_type(c, 33)->p, last_of_type(c, 33)->len, &line);
    ch_buf_append_str(&line, "; sprop-pps=");
    b64_encode(last_of_type(c, 34)->p, last_of_type(c, 34)->len, &line);
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H265);
    assert_int_equal(ch_codec_stream_set_fmtp(s, line.data, line.len), 0);
    assert_param(&s->vps, last_of_type(c, 32), "VPS from SDP");
    assert_param(&s->sps, last_of_type(c, 33), "SPS from SDP");
    assert_param(&s->pps, last_of_type(c, 34), "PPS from SDP");
    assert_int_equal(s->sps_info.width, 640);
    assert_int_equal(s->sps_info.height, 358);
    assert_int_equal(s->donl, 0);
    ch_buf_fini(&line);
    ch_free(s);
}

/* A line as a widely deployed camera sends it (Baseline 3.1, 1280x720). */
static void test_sprop_from_a_camera_sdp_line(void **state)
{
    const char *line = "a=fmtp:96 packetization-mode=1;profile-level-id=42001F;"
                       "sprop-parameter-sets=Z0IAH5WoFAFuQA==,aM48gA==";
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    assert_int_equal(ch_codec_stream_set_fmtp(s, line, strlen(line)), 0);
    assert_int_equal(s->sps.len, 10);
    assert_int_equal(s->pps.len, 4);
    assert_true(s->sps_valid);
    assert_int_equal(s->sps_info.profile_idc, 66);
    assert_int_equal(s->sps_info.level_idc, 31);
    assert_int_equal(s->sps_info.width, 1280);
    assert_int_equal(s->sps_info.height, 720);
    assert_string_equal(s->sps_info.codec, "avc1.42001F");
    ch_free(s);
}

static void test_bad_sprop_is_refused(void **state)
{
    static const char *bad[] = {
        "sprop-parameter-sets=Z0IAH5W!FAFuQA==", /* not base64 */
        "sprop-parameter-sets=Z0IAH5WoFAFuQA=",  /* bad padding */
        "sprop-parameter-sets=Z",                /* one character */
        "sprop-parameter-sets=ZQ==",             /* type 5 (0x65): not a parameter set */
        "sprop-parameter-sets=Z0IAHw==",         /* an SPS cut short */
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        ch_codec_stream_t *s = ch_malloc(sizeof(*s));
        ch_codec_stream_init(s, CH_CODEC_H264);
        int rc = ch_codec_stream_set_fmtp(s, bad[i], strlen(bad[i]));
        if (rc != CH_EPARSE) {
            fail_msg("\"%s\" gave %d", bad[i], rc);
        }
        ch_free(s);
    }
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H265);
    const char *don = "sprop-max-don-diff=x";
    assert_int_equal(ch_codec_stream_set_fmtp(s, don, strlen(don)), CH_EPARSE);
    /* Nothing to take is not an error. */
    const char *none = "a=fmtp:97 profile-id=1";
    assert_int_equal(ch_codec_stream_set_fmtp(s, none, strlen(none)), 0);
    assert_int_equal(s->params_version, 0);
    ch_free(s);
}

static void test_base64_decoder(void **state)
{
    uint8_t out[16];
    assert_int_equal(ch_codec_base64_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(ch_codec_base64_decode("Zg==", 4, out, sizeof(out)), 1);
    assert_int_equal(out[0], 'f');
    assert_int_equal(ch_codec_base64_decode("Zm8", 3, out, sizeof(out)), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(ch_codec_base64_decode("Zm9v", 4, out, sizeof(out)), 3);
    assert_memory_equal(out, "foo", 3);
    assert_int_equal(ch_codec_base64_decode("Zm9vYg==", 8, out, 3), CH_ETOOBIG);
    assert_int_equal(ch_codec_base64_decode("Zh==", 4, out, sizeof(out)), CH_EPARSE);
    assert_int_equal(ch_codec_base64_decode("Zm=v", 4, out, sizeof(out)), CH_EPARSE);
    assert_int_equal(ch_codec_base64_decode("Zm9v===", 7, out, sizeof(out)), CH_EPARSE);
}

/* ---- RTP -------------------------------------------------------------------------------- */

static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *b = ch_malloc(n ? n : 1);
    memcpy(b, p, n);
    return b;
}

static void test_rtp_header_fields_csrcs_extension_and_padding(void **state)
{
    static const uint8_t pkt[] = {
        0xb2, 0xe0, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04, 0xca, 0xfe, 0xba, 0xbe, /* fixed */
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,                         /* 2 CSRCs */
        0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* ext */
        0x65, 0x88, 0x80,                                                       /* payload */
        0x00, 0x00, 0x03,                                                       /* padding */
    };
    uint8_t *b = exact(pkt, sizeof(pkt));
    ch_codec_rtp_t r;
    assert_int_equal(ch_codec_rtp_parse(b, sizeof(pkt), &r), 0);
    assert_int_equal(r.padding, 1);
    assert_int_equal(r.extension, 1);
    assert_int_equal(r.csrc_count, 2);
    assert_int_equal(r.marker, 1);
    assert_int_equal(r.payload_type, 96);
    assert_int_equal(r.seq, 0xfffe);
    assert_int_equal(r.timestamp, 0x01020304);
    assert_int_equal(r.ssrc, 0xcafebabe);
    assert_ptr_equal(r.csrc, b + 12);
    assert_int_equal(r.ext_profile, 0xbede);
    assert_ptr_equal(r.ext, b + 24);
    assert_int_equal(r.ext_len, 8);
    assert_ptr_equal(r.payload, b + 32);
    assert_int_equal(r.payload_len, 3);
    ch_free(b);

    /* A bare header: an empty payload is valid RTP. */
    static const uint8_t bare[] = {0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
    b = exact(bare, sizeof(bare));
    assert_int_equal(ch_codec_rtp_parse(b, sizeof(bare), &r), 0);
    assert_int_equal(r.payload_len, 0);
    assert_int_equal(r.marker, 0);
    ch_free(b);
}

static void test_rtp_truncated_and_garbage_are_errors(void **state)
{
    static const uint8_t ok[] = {0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x41, 0x9a};
    ch_codec_rtp_t r;
    /* Every cut of a valid packet shorter than its header. */
    for (size_t n = 0; n < 12; n++) {
        uint8_t *b = exact(ok, n);
        assert_int_equal(ch_codec_rtp_parse(b, n, &r), CH_EPARSE);
        ch_free(b);
    }
    static const struct {
        uint8_t p[20];
        size_t len;
        const char *why;
    } bad[] = {
        {{0x40, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x41}, 13, "version 1"},
        {{0xc0, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x41}, 13, "version 3"},
        {{0x81, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x41}, 13, "CSRC past the end"},
        {{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde}, 14, "extension header cut"},
        {{0x90, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 2, 0, 0, 0, 0},
         20,
         "extension longer than the packet"},
        {{0xa0, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x41, 0x00}, 14, "padding count 0"},
        {{0xa0, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x41, 0x03}, 14, "padding over payload"},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        uint8_t *b = exact(bad[i].p, bad[i].len);
        if (ch_codec_rtp_parse(b, bad[i].len, &r) != CH_EPARSE) {
            fail_msg("accepted: %s", bad[i].why);
        }
        ch_free(b);
    }
}

/* ---- depacketizer edge cases ------------------------------------------------------------ */

/* Pushes payload pay[0, n) as one packet with the given sequence number and timestamp. */
static int push_raw(ch_codec_stream_t *s, uint16_t seq, uint32_t ts, int marker, const uint8_t *pay,
                    size_t n, ch_codec_pkt_t *info)
{
    uint8_t *b = ch_malloc(12 + n);
    uint8_t hdr[12] = {0x80,
                       (uint8_t)((marker ? 0x80 : 0) | 96),
                       (uint8_t)(seq >> 8),
                       (uint8_t)seq,
                       (uint8_t)(ts >> 24),
                       (uint8_t)(ts >> 16),
                       (uint8_t)(ts >> 8),
                       (uint8_t)ts,
                       1,
                       2,
                       3,
                       4};
    memcpy(b, hdr, 12);
    if (n > 0) {
        memcpy(b + 12, pay, n);
    }
    ch_codec_rtp_t r;
    assert_int_equal(ch_codec_rtp_parse(b, 12 + n, &r), 0);
    int rc = ch_codec_stream_push(s, &r, info);
    ch_free(b);
    return rc;
}

static const uint8_t camera_sps[] = {0x67, 0x42, 0x00, 0x1f, 0x95, 0xa8, 0x14, 0x01, 0x6e, 0x40};

/* Cuts camera_sps into FU-A fragments of 3 body bytes; returns the count. */
static size_t sps_fragments(uint8_t frag[][8], size_t lens[])
{
    size_t k = 0;
    for (size_t pos = 1; pos < sizeof(camera_sps); pos += 3, k++) {
        size_t chunk = sizeof(camera_sps) - pos < 3 ? sizeof(camera_sps) - pos : 3;
        frag[k][0] = (camera_sps[0] & 0xe0) | 28;
        frag[k][1] =
            (uint8_t)((pos == 1 ? 0x80 : 0) | (pos + chunk == sizeof(camera_sps) ? 0x40 : 0) | 7);
        memcpy(frag[k] + 2, camera_sps + pos, chunk);
        lens[k] = 2 + chunk;
    }
    return k;
}

static void test_lost_fragment_resets_reassembly(void **state)
{
    uint8_t frag[4][8];
    size_t lens[4];
    size_t n = sps_fragments(frag, lens);
    assert_int_equal(n, 3);
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    ch_codec_pkt_t info;

    /* Fragment 1 of 3 lost: the rest is orphaned, nothing is captured. */
    assert_int_equal(push_raw(s, 10, 90, 0, frag[0], lens[0], &info), 0);
    assert_int_equal(info.flags & CH_CODEC_PKT_FRAGMENT, CH_CODEC_PKT_FRAGMENT);
    assert_int_equal(push_raw(s, 12, 90, 0, frag[2], lens[2], &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_GAP);
    assert_true(info.flags & CH_CODEC_PKT_ORPHAN);
    assert_false(info.flags & CH_CODEC_PKT_PARAMS);
    assert_int_equal(info.nal_count, 0);
    assert_int_equal(s->sps.len, 0);
    assert_false(s->sps_valid);

    /* Complete, in order: captured and parsed. */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(push_raw(s, (uint16_t)(13 + i), 180, i == n - 1, frag[i], lens[i], &info),
                         0);
        assert_false(info.flags & (CH_CODEC_PKT_GAP | CH_CODEC_PKT_ORPHAN));
    }
    assert_true(info.flags & CH_CODEC_PKT_PARAMS);
    assert_int_equal(s->sps.len, sizeof(camera_sps));
    assert_memory_equal(s->sps.data, camera_sps, sizeof(camera_sps));
    assert_int_equal(s->sps_info.width, 1280);

    /* Start seen, then a gap, then the end: the end must not complete the old start. */
    ch_codec_stream_init(s, CH_CODEC_H264);
    assert_int_equal(push_raw(s, 100, 90, 0, frag[0], lens[0], &info), 0);
    assert_int_equal(push_raw(s, 102, 90, 0, frag[2], lens[2], &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_ORPHAN);
    assert_int_equal(s->sps.len, 0);
    ch_free(s);
}

static void test_fragment_without_start_is_orphan(void **state)
{
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    ch_codec_pkt_t info;
    const uint8_t mid[] = {0x7c, 0x05, 0xaa, 0xbb}; /* FU-A, IDR, neither S nor E */
    assert_int_equal(push_raw(s, 1, 90, 0, mid, sizeof(mid), &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_ORPHAN);
    assert_true(info.flags & CH_CODEC_PKT_AU_START);
    assert_false(info.flags & CH_CODEC_PKT_KEYFRAME); /* continues an IDR, starts none */
    assert_int_equal(info.nal_count, 0);
    assert_int_equal(info.nal_types, 1u << 5);
    /* Now a start: a keyframe. */
    const uint8_t start[] = {0x7c, 0x85, 0x88, 0x80};
    assert_int_equal(push_raw(s, 2, 180, 0, start, sizeof(start), &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_KEYFRAME);
    assert_false(info.flags & CH_CODEC_PKT_ORPHAN);
    const uint8_t end[] = {0x7c, 0x45, 0xcc};
    assert_int_equal(push_raw(s, 3, 180, 1, end, sizeof(end), &info), 0);
    assert_int_equal(info.flags, CH_CODEC_PKT_AU_END | CH_CODEC_PKT_FRAGMENT);

    /* H.265: an FU continuation first. */
    ch_codec_stream_init(s, CH_CODEC_H265);
    const uint8_t h265_mid[] = {49 << 1, 0x01, 0x13, 0xaa}; /* FU, IDR_W_RADL (19) */
    assert_int_equal(push_raw(s, 1, 90, 0, h265_mid, sizeof(h265_mid), &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_ORPHAN);
    const uint8_t h265_start[] = {49 << 1, 0x01, 0x93, 0xaa};
    assert_int_equal(push_raw(s, 2, 90, 0, h265_start, sizeof(h265_start), &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_KEYFRAME);
    ch_free(s);
}

static void test_interleaved_mode_payloads_are_skipped_cleanly(void **state)
{
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    ch_codec_pkt_t info;
    static const uint8_t h264_types[] = {25, 26, 27, 29, 30, 31, 0};
    for (size_t i = 0; i < sizeof(h264_types); i++) {
        uint8_t p[] = {(uint8_t)(0x60 | h264_types[i]), 0x00, 0x03, 0x65, 0x88, 0x80};
        int rc = push_raw(s, (uint16_t)i, 90, 0, p, sizeof(p), &info);
        assert_int_equal(rc, CH_EUNSUPP);
        assert_int_equal(info.nal_count, 0);
        assert_int_equal(info.nal_types, 0);
        assert_false(info.flags & CH_CODEC_PKT_KEYFRAME);
    }
    ch_codec_stream_init(s, CH_CODEC_H265);
    const uint8_t paci[] = {50 << 1, 0x01, 0x26, 0x02, 0x00, 0x00};
    assert_int_equal(push_raw(s, 1, 90, 0, paci, sizeof(paci), &info), CH_EUNSUPP);
    assert_int_equal(info.nal_types, 0);
    ch_free(s);
}

static void test_malformed_payloads_are_errors_and_claim_nothing(void **state)
{
    static const struct {
        ch_codec_kind_t kind;
        uint8_t p[12];
        size_t len;
        const char *why;
    } bad[] = {
        {CH_CODEC_H264, {0}, 0, "empty payload"},
        {CH_CODEC_H264, {0x18}, 1, "STAP-A without units"},
        {CH_CODEC_H264, {0x18, 0x00, 0x02, 0x65, 0x88, 0x00, 0x05, 0x67}, 8, "STAP-A overrun"},
        {CH_CODEC_H264, {0x18, 0x00, 0x01, 0x65, 0x00}, 5, "STAP-A size cut"},
        {CH_CODEC_H264, {0x18, 0x00, 0x00}, 3, "STAP-A empty unit"},
        {CH_CODEC_H264, {0x18, 0x00, 0x02, 0x7c, 0x85}, 5, "FU-A inside STAP-A"},
        {CH_CODEC_H264, {0x7c, 0x85}, 2, "FU-A without body"},
        {CH_CODEC_H264, {0x7c, 0xc5, 0x88}, 3, "FU-A both start and end"},
        {CH_CODEC_H264, {0x7c, 0x98, 0x88}, 3, "FU-A of a STAP-A"},
        {CH_CODEC_H265, {0x26}, 1, "H.265 one byte"},
        {CH_CODEC_H265, {0x26, 0x00, 0xaf}, 3, "H.265 TID 0"},
        {CH_CODEC_H265, {0x60, 0x01, 0x00, 0x03, 0x40, 0x01}, 6, "AP overrun"},
        {CH_CODEC_H265, {0x60, 0x01, 0x00, 0x01, 0x40}, 5, "AP unit shorter than a header"},
        {CH_CODEC_H265, {0x62, 0x01, 0x80 | 48, 0xaa}, 4, "FU of an AP"},
        {CH_CODEC_H265, {0x62, 0x01}, 2, "FU without FU header"},
    };
    for (size_t i = 0; i < CH_ARRAY_SIZE(bad); i++) {
        ch_codec_stream_t *s = ch_malloc(sizeof(*s));
        ch_codec_stream_init(s, bad[i].kind);
        ch_codec_pkt_t info;
        int rc = push_raw(s, 1, 90, 1, bad[i].p, bad[i].len, &info);
        if (rc != CH_EPARSE) {
            fail_msg("%s: %d", bad[i].why, rc);
        }
        /* The RTP-level facts stand; the payload claims nothing. */
        assert_int_equal(info.flags, CH_CODEC_PKT_AU_START | CH_CODEC_PKT_AU_END);
        assert_int_equal(info.nal_count, 0);
        assert_int_equal(info.nal_types, 0);
        assert_int_equal(s->params_version, 0);
        ch_free(s);
    }
}

static void test_sequence_wrap_is_not_a_gap_but_a_jump_is(void **state)
{
    ch_codec_stream_t *s = ch_malloc(sizeof(*s));
    ch_codec_stream_init(s, CH_CODEC_H264);
    ch_codec_pkt_t info;
    const uint8_t p[] = {0x41, 0x9a, 0x00};
    assert_int_equal(push_raw(s, 65535, 90, 1, p, sizeof(p), &info), 0);
    assert_false(info.flags & CH_CODEC_PKT_GAP);
    assert_int_equal(push_raw(s, 0, 180, 0, p, sizeof(p), &info), 0);
    assert_false(info.flags & CH_CODEC_PKT_GAP);
    assert_true(info.flags & CH_CODEC_PKT_AU_START);
    /* Same timestamp, no marker before: the same access unit. */
    assert_int_equal(push_raw(s, 1, 180, 0, p, sizeof(p), &info), 0);
    assert_false(info.flags & CH_CODEC_PKT_AU_START);
    assert_int_equal(push_raw(s, 5, 180, 0, p, sizeof(p), &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_GAP);
    /* A marker ends the access unit even when the next packet keeps the timestamp (a
     * camera that stamps every picture alike). */
    assert_int_equal(push_raw(s, 6, 180, 1, p, sizeof(p), &info), 0);
    assert_false(info.flags & CH_CODEC_PKT_AU_START);
    assert_int_equal(push_raw(s, 7, 180, 0, p, sizeof(p), &info), 0);
    assert_true(info.flags & CH_CODEC_PKT_AU_START);
    ch_free(s);
}

/* ---- SPS readers on hand-made units ----------------------------------------------------- */

typedef struct bitw {
    uint8_t b[64];
    size_t pos;
} bitw_t;

static void put_bits(bitw_t *w, uint32_t v, unsigned n)
{
    for (unsigned i = n; i-- > 0;) {
        if ((v >> i) & 1) {
            w->b[w->pos >> 3] |= (uint8_t)(0x80 >> (w->pos & 7));
        }
        w->pos++;
    }
}

static void put_ue(bitw_t *w, uint32_t v)
{
    uint64_t x = (uint64_t)v + 1;
    unsigned bits = 0;
    while ((x >> bits) > 1) {
        bits++;
    }
    put_bits(w, 0, bits);
    put_bits(w, (uint32_t)x, bits + 1);
}

/* An H.265 SPS with the given profile_tier_level and a 1920x1088 picture cropped by 8 lines
 * at the bottom (conf_win_bottom_offset 4 in 4:2:0 chroma units). */
static size_t make_h265_sps(uint8_t *out, unsigned space, unsigned tier, unsigned profile,
                            uint32_t compat_coded, const uint8_t constraint[6], unsigned level)
{
    bitw_t w = {{0}, 0};
    put_bits(&w, 33 << 1, 8); /* NAL header: SPS */
    put_bits(&w, 1, 8);
    put_bits(&w, 0, 4); /* sps_video_parameter_set_id */
    put_bits(&w, 0, 3); /* sps_max_sub_layers_minus1 */
    put_bits(&w, 1, 1); /* temporal_id_nesting */
    put_bits(&w, space, 2);
    put_bits(&w, tier, 1);
    put_bits(&w, profile, 5);
    put_bits(&w, compat_coded, 32);
    for (int i = 0; i < 6; i++) {
        put_bits(&w, constraint[i], 8);
    }
    put_bits(&w, level, 8);
    put_ue(&w, 0);    /* sps_seq_parameter_set_id */
    put_ue(&w, 1);    /* chroma_format_idc 4:2:0 */
    put_ue(&w, 1920); /* pic_width_in_luma_samples */
    put_ue(&w, 1088);
    put_bits(&w, 1, 1); /* conformance_window_flag */
    put_ue(&w, 0);
    put_ue(&w, 0);
    put_ue(&w, 0);
    put_ue(&w, 4);
    put_ue(&w, 2); /* bit_depth_luma_minus8: 10 bits */
    put_ue(&w, 2);
    put_bits(&w, 1, 1); /* a stop bit */
    size_t n = (w.pos + 7) / 8;
    memcpy(out, w.b, n);
    return n;
}

static void test_h265_codec_string_follows_annex_e(void **state)
{
    uint8_t nal[64];
    ch_codec_sps_t sps;
    const uint8_t b0[6] = {0xb0, 0, 0, 0, 0, 0};
    /* Main (compatibility flags 1 and 2, coded first-bit-first), Main tier, level 4. */
    size_t n = make_h265_sps(nal, 0, 0, 1, 0x60000000u, b0, 120);
    assert_int_equal(ch_codec_h265_sps_parse(nal, n, &sps), 0);
    assert_string_equal(sps.codec, "hvc1.1.6.L120.B0");
    assert_int_equal(sps.width, 1920);
    assert_int_equal(sps.height, 1080);
    assert_int_equal(sps.coded_height, 1088);
    assert_int_equal(sps.bit_depth_luma, 10);
    assert_int_equal(sps.compat, 6);
    /* Profile space 1, High tier, only flag 4 (coded bit 27), a nonzero byte after zeros:
     * the zero bytes between stay, the trailing ones go. */
    const uint8_t mixed[6] = {0x90, 0x00, 0x08, 0x00, 0x00, 0x00};
    n = make_h265_sps(nal, 1, 1, 4, 0x08000000u, mixed, 153);
    assert_int_equal(ch_codec_h265_sps_parse(nal, n, &sps), 0);
    assert_string_equal(sps.codec, "hvc1.A4.10.H153.90.0.8");
    /* All constraint bytes zero: none written. */
    const uint8_t zero[6] = {0};
    n = make_h265_sps(nal, 0, 0, 2, 0x20000000u, zero, 93);
    assert_int_equal(ch_codec_h265_sps_parse(nal, n, &sps), 0);
    assert_string_equal(sps.codec, "hvc1.2.4.L93");
}

static void test_sps_emulation_prevention_is_removed(void **state)
{
    /* camera_sps with constraint byte and level 0, and a 0x03 after the two zero bytes: kept,
     * it would be read as the start of seq_parameter_set_id and shift every later field.
     * (The real H.265 streams test this too: x265's SPS escapes its zero constraint bytes.) */
    const uint8_t escaped[] = {0x67, 0x42, 0x00, 0x00, 0x03, 0x95, 0xa8, 0x14, 0x01, 0x6e, 0x40};
    ch_codec_sps_t sps;
    assert_int_equal(ch_codec_h264_sps_parse(escaped, sizeof(escaped), &sps), 0);
    assert_int_equal(sps.level_idc, 0);
    assert_int_equal(sps.width, 1280);
    assert_int_equal(sps.height, 720);
    assert_string_equal(sps.codec, "avc1.420000");
}

static void test_sps_garbage_and_truncation_are_errors(void **state)
{
    ch_codec_sps_t sps;
    /* Every cut of a real SPS: either an error or, once the size is read, a valid size. */
    for (size_t n = 0; n < sizeof(camera_sps); n++) {
        uint8_t *b = exact(camera_sps, n);
        int rc = ch_codec_h264_sps_parse(b, n, &sps);
        assert_true(rc == CH_EPARSE || (rc == 0 && sps.width == 1280 && sps.height == 720));
        ch_free(b);
    }
    const uint8_t not_sps[] = {0x68, 0xce, 0x3c, 0x80};
    assert_int_equal(ch_codec_h264_sps_parse(not_sps, sizeof(not_sps), &sps), CH_EPARSE);
    assert_int_equal(ch_codec_h265_sps_parse(not_sps, sizeof(not_sps), &sps), CH_EPARSE);
    /* All zero bits: ue(v) with more than 31 leading zeros. */
    uint8_t zeros[40] = {0x67, 0x42, 0x00, 0x1f};
    assert_int_equal(ch_codec_h264_sps_parse(zeros, sizeof(zeros), &sps), CH_EPARSE);
    /* A width of 2^20 macroblocks is garbage. */
    bitw_t w = {{0}, 0};
    put_bits(&w, 0x67, 8);
    put_bits(&w, 66, 8);
    put_bits(&w, 0, 8);
    put_bits(&w, 31, 8);
    put_ue(&w, 0); /* sps id */
    put_ue(&w, 0); /* log2_max_frame_num */
    put_ue(&w, 2); /* poc type 2 */
    put_ue(&w, 1); /* refs */
    put_bits(&w, 0, 1);
    put_ue(&w, 1u << 20); /* width in mbs - 1 */
    put_ue(&w, 10);
    put_bits(&w, 7, 3);
    put_bits(&w, 1, 1);
    assert_int_equal(ch_codec_h264_sps_parse(w.b, (w.pos + 7) / 8, &sps), CH_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_high_access_units_keyframes_and_params_match_ffprobe),
        cmocka_unit_test(test_h264_1080p_is_cropped_to_1080),
        cmocka_unit_test(test_h264_interlaced_1080i_crops_in_field_units),
        cmocka_unit_test(test_h265_access_units_keyframes_and_params_match_ffprobe),
        cmocka_unit_test(test_h265_conformance_window_crops_358_lines),
        cmocka_unit_test(test_fragmented_parameter_sets_are_reassembled),
        cmocka_unit_test(test_access_units_found_from_timestamps_without_markers),
        cmocka_unit_test(test_h265_donl_fields_when_sdp_sets_max_don_diff),
        cmocka_unit_test(test_resolution_change_mid_stream_updates_sps),
        cmocka_unit_test(test_sprop_parameter_sets_from_sdp_match_in_band),
        cmocka_unit_test(test_sprop_vps_sps_pps_from_sdp),
        cmocka_unit_test(test_sprop_from_a_camera_sdp_line),
        cmocka_unit_test(test_bad_sprop_is_refused),
        cmocka_unit_test(test_base64_decoder),
        cmocka_unit_test(test_rtp_header_fields_csrcs_extension_and_padding),
        cmocka_unit_test(test_rtp_truncated_and_garbage_are_errors),
        cmocka_unit_test(test_lost_fragment_resets_reassembly),
        cmocka_unit_test(test_fragment_without_start_is_orphan),
        cmocka_unit_test(test_interleaved_mode_payloads_are_skipped_cleanly),
        cmocka_unit_test(test_malformed_payloads_are_errors_and_claim_nothing),
        cmocka_unit_test(test_sequence_wrap_is_not_a_gap_but_a_jump_is),
        cmocka_unit_test(test_h265_codec_string_follows_annex_e),
        cmocka_unit_test(test_sps_emulation_prevention_is_removed),
        cmocka_unit_test(test_sps_garbage_and_truncation_are_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
