/*
 * proto: hand-written, zero-copy parsers of wire formats: the head of an HTTP/1.x or RTSP/1.0
 * request or response (one grammar serves both protocols), and what an RTSP client and server
 * need besides: RTSP header values, SDP, rtsp:// URLs, Basic and Digest authentication, and
 * '$'-interleaved frames. Nothing here touches a socket. docs/internals/proto.md has the
 * contract, the limits, the camera quirks tolerated and what is refused.
 *
 * The parser works in the style of picohttpparser: it reads a whole request head in place and
 * fills a struct of slices that point into the caller's buffer; it never allocates and never
 * writes to the input. It is strict on purpose, because a lenient head parser is how request
 * smuggling starts:
 *   - the method and header names are tokens (RFC 9110 tchar);
 *   - the request target is one or more bytes other than controls and space (bytes >= 0x80
 *     are let through, as nginx does, for clients that send raw UTF-8 paths);
 *   - the protocol is "HTTP/d.d" or "RTSP/d.d"; which versions a server accepts is its choice;
 *   - header values hold no control characters other than horizontal tab;
 *   - lines end with CRLF, or with a bare LF; a bare CR is an error;
 *   - obsolete line folding (a line starting with SP or HTAB) and whitespace between a header
 *     name and its colon are rejected;
 *   - empty lines before the request line are skipped (RFC 9112 section 2.2).
 */
#ifndef CH_PROTO_H
#define CH_PROTO_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

/* Parsers in the second half of this header (RTSP, SDP, URL, authentication) return 0 or a
 * negative code; builders append to a ch_buf_t (which allocates through core's wrapper). */

/** Which protocol a request line names. */
typedef enum ch_proto_kind {
    CH_PROTO_HTTP = 1, /* "HTTP/x.y" */
    CH_PROTO_RTSP = 2, /* "RTSP/x.y" */
} ch_proto_kind_t;

/** One header: both slices point into the parsed buffer. value has no leading or trailing
 * whitespace and may be empty. */
typedef struct ch_proto_header {
    ch_slice_t name;
    ch_slice_t value;
} ch_proto_header_t;

/** A parsed request head. Every slice points into the buffer given to the parser, so the head
 * is valid only as long as that buffer is unchanged. */
typedef struct ch_proto_request {
    ch_slice_t method;   /* "GET", "DESCRIBE" */
    ch_slice_t target;   /* "/api/v1/health", "rtsp://cam/stream", "*" */
    ch_slice_t protocol; /* "HTTP/1.1" or "RTSP/1.0" as sent */
    ch_proto_kind_t kind;
    int major;                  /* 0..9 */
    int minor;                  /* 0..9 */
    ch_proto_header_t *headers; /* the caller's array, filled with num_headers entries */
    size_t num_headers;
} ch_proto_request_t;

/**
 * Parses the request head at the start of buf[0, len).
 *
 * headers is the caller's array of max_headers entries; on success req->headers points to it
 * and req->num_headers says how many were filled. Returns:
 *   > 0          the number of bytes the head takes (through the empty line that ends it);
 *   CH_EAGAIN    the bytes so far are a valid beginning of a head, but it is not complete;
 *   CH_EPARSE    malformed (found as early as possible, even in an incomplete head);
 *   CH_ETOOBIG   more than max_headers headers.
 * On an error req holds nothing useful. The caller bounds len (the head size limit) itself:
 * the parser accepts any size.
 */
int ch_proto_parse_request(const char *buf, size_t len, ch_proto_request_t *req,
                           ch_proto_header_t *headers, size_t max_headers) CH_MUST_CHECK;

/** A parsed status line and headers ("RTSP/1.0 200 OK"). Slices point into the parsed
 * buffer. */
typedef struct ch_proto_response {
    ch_slice_t protocol; /* "RTSP/1.0" or "HTTP/1.1" as sent */
    ch_proto_kind_t kind;
    int major;         /* 0..9 */
    int minor;         /* 0..9 */
    int status;        /* 100..599 */
    ch_slice_t reason; /* "OK"; may be empty */
    ch_proto_header_t *headers;
    size_t num_headers;
} ch_proto_response_t;

/**
 * Parses the response head at the start of buf[0, len): a status line
 * "RTSP/d.d SP 3DIGIT [SP reason]" (or "HTTP/d.d ..."), then headers by the same rules as
 * requests. Returns the head's length, CH_EAGAIN, CH_EPARSE or CH_ETOOBIG exactly as
 * ch_proto_parse_request does. Empty lines before the status line are skipped.
 */
int ch_proto_parse_response(const char *buf, size_t len, ch_proto_response_t *resp,
                            ch_proto_header_t *headers, size_t max_headers) CH_MUST_CHECK;

/**
 * Splits off the body of an RTSP message whose head (head_len bytes, as returned by a parser
 * above, at most INT_MAX) starts buf[0, len). The body is Content-Length bytes, none without
 * the header. Returns the length of the whole message (head and body) and sets *body, or
 * CH_EAGAIN (the body is not all there), CH_EPARSE (bad Content-Length), CH_ETOOBIG (a body
 * over max_body bytes).
 */
int ch_proto_split_body(const char *buf, size_t len, size_t head_len,
                        const ch_proto_header_t *headers, size_t n, size_t max_body,
                        ch_slice_t *body) CH_MUST_CHECK;

/** Finds the first header named name (ASCII case-insensitive); NULL when absent. */
const ch_proto_header_t *ch_proto_header_find(const ch_proto_header_t *headers, size_t n,
                                              const char *name);

/**
 * Finds Content-Length among headers. Returns 0 and sets *out when present, CH_ENOENT when
 * absent, CH_EPARSE when a value is not all digits (no sign, no spaces, no list), is over
 * INT64_MAX, or when two Content-Length headers differ (identical repeats are accepted, as
 * RFC 9110 section 8.6 allows).
 */
int ch_proto_content_length(const ch_proto_header_t *headers, size_t n,
                            uint64_t *out) CH_MUST_CHECK;

/** How a message's body is delimited and what the client asks of the connection. */
typedef struct ch_proto_framing {
    uint64_t content_length;     /* valid when has_content_length */
    unsigned has_content_length; /* 1 when a (valid) Content-Length header is present */
    unsigned transfer_encoding;  /* 1 when any Transfer-Encoding header is present */
    unsigned chunked;            /* 1 when the last transfer coding is "chunked" */
    unsigned conn_close;         /* "Connection: close" */
    unsigned conn_keep_alive;    /* "Connection: keep-alive" */
    unsigned conn_upgrade;       /* "Connection: upgrade" (WebSocket later) */
    unsigned expect_continue;    /* "Expect: 100-continue" */
} ch_proto_framing_t;

/**
 * Reads the framing headers (Content-Length, Transfer-Encoding, Connection, Expect) in one pass.
 * Connection is a comma-separated list of case-insensitive tokens. Returns 0, or CH_EPARSE
 * for a bad Content-Length (see ch_proto_content_length) or an empty Transfer-Encoding. A
 * message with both Transfer-Encoding and Content-Length is returned as is; the caller decides
 * (a server should refuse it, RFC 9112 section 6.3).
 */
int ch_proto_framing(const ch_proto_header_t *headers, size_t n,
                     ch_proto_framing_t *out) CH_MUST_CHECK;

/**
 * Tells whether a connection stays open after this request by the rules of HTTP/1.0 and 1.1:
 * HTTP/1.1 (and later 1.x, and RTSP) keep it unless "Connection: close"; HTTP/1.0 closes it
 * unless "Connection: keep-alive". Returns 1 to keep, 0 to close.
 */
int ch_proto_keep_alive(const ch_proto_request_t *req, const ch_proto_framing_t *framing);

/* ---- RTSP header values (rtsp.c) ------------------------------------------------------- */

/** Reads the CSeq header: 0 and *out, CH_ENOENT when absent, CH_EPARSE when it is not 1 to
 * 10 digits at most 2^32-1, or two CSeq headers differ. */
int ch_proto_rtsp_cseq(const ch_proto_header_t *headers, size_t n, uint32_t *out) CH_MUST_CHECK;

/** The default session timeout, in seconds, when a Session header names none (RFC 2326
 * section 12.37). */
#define CH_PROTO_RTSP_DEFAULT_TIMEOUT 60
/** The longest session id accepted (RFC 7826 section 20.2.1 allows 256 characters). */
#define CH_PROTO_RTSP_MAX_SESSION_ID 256

/** A Session header value: "id[;timeout=N]". */
typedef struct ch_proto_rtsp_session {
    ch_slice_t id;    /* points into the value */
    uint32_t timeout; /* seconds; CH_PROTO_RTSP_DEFAULT_TIMEOUT unless has_timeout */
    unsigned has_timeout;
} ch_proto_rtsp_session_t;

/**
 * Parses a Session value. The id is 1..256 visible ASCII bytes other than ";", ",", a quote
 * and a backslash (servers use more than RFC 2326's "safe" set, and the id is only echoed
 * back); parameters after ';' may have spaces around them, "timeout" must be 1 to 9 digits and
 * other parameters are skipped. Returns 0 or CH_EPARSE.
 */
int ch_proto_rtsp_parse_session(ch_slice_t value, ch_proto_rtsp_session_t *out) CH_MUST_CHECK;

/** One transport specification of a Transport header. */
typedef struct ch_proto_rtsp_transport {
    unsigned tcp;       /* "RTP/AVP/TCP"; else UDP ("RTP/AVP" or "RTP/AVP/UDP") */
    unsigned multicast; /* "multicast"; else unicast (said or implied) */
    unsigned has_interleaved;
    uint8_t interleaved[2]; /* RTP and RTCP channels; "interleaved=4" means 4-5 */
    unsigned has_client_port;
    uint16_t client_port[2]; /* RTP and RTCP ports; "client_port=5000" means 5000-5001 */
    unsigned has_server_port;
    uint16_t server_port[2];
    unsigned has_ssrc;
    uint32_t ssrc;
    ch_slice_t mode;        /* "PLAY" without quotes, or empty */
    ch_slice_t destination; /* or empty */
    ch_slice_t source;      /* or empty */
} ch_proto_rtsp_transport_t;

/**
 * Parses the first transport specification of the comma-separated list *list and advances
 * *list past it (and its comma), so that a server can loop over a client's offers. Returns 0;
 * CH_ENOENT when the list is empty; CH_EUNSUPP for a well-formed specification of another
 * profile (RTP/SAVP, RAW/RAW/UDP...), which is consumed so the caller may go on; CH_EPARSE
 * for a malformed one (the list is then left alone). Unknown parameters are skipped;
 * a known one with a bad value (a channel over 255, a port over 65535, a range a-b with b
 * before a) is CH_EPARSE; an ssrc that is not 1 to 8 hex digits is ignored (has_ssrc 0).
 */
int ch_proto_rtsp_parse_transport(ch_slice_t *list, ch_proto_rtsp_transport_t *out) CH_MUST_CHECK;

/**
 * Appends one transport specification to out, for a SETUP request or its answer:
 * "RTP/AVP/TCP;unicast;interleaved=0-1" or "RTP/AVP;unicast;client_port=a-b[;server_port=c-d]",
 * then ssrc=XXXXXXXX and mode="PLAY" when set. mode, destination and source must hold no ';',
 * ',' , quote or control byte. Returns 0, or CH_EINVAL for a field that cannot be written.
 */
int ch_proto_rtsp_build_transport(const ch_proto_rtsp_transport_t *t, ch_buf_t *out) CH_MUST_CHECK;

/**
 * Picks the base URL against which an answer's SDP control URLs are resolved: the value of
 * Content-Base, else of Content-Location, else request_url (RFC 2326 section C.1.1).
 */
ch_slice_t ch_proto_rtsp_content_base(const ch_proto_header_t *headers, size_t n,
                                      ch_slice_t request_url);

/** Tells whether the comma-separated method list of a Public (or Allow) value names method,
 * case-sensitively as RTSP methods are. Returns 1 or 0. */
int ch_proto_rtsp_public_has(ch_slice_t value, const char *method);

/** A Range value in normal play time, to the millisecond. */
typedef struct ch_proto_rtsp_range {
    unsigned start_now; /* "npt=now-" */
    unsigned has_start;
    unsigned has_end;
    uint64_t start_ms;
    uint64_t end_ms;
} ch_proto_rtsp_range_t;

/**
 * Parses "npt=START-[END]" or "npt=-END" where a time is "now", seconds with an optional
 * fraction ("12.5") or h:mm:ss[.frac]; a ";time=..." suffix is ignored. Other units (smpte,
 * clock) are CH_EUNSUPP; anything else malformed, or an end before the start, is CH_EPARSE.
 */
int ch_proto_rtsp_parse_range(ch_slice_t value, ch_proto_rtsp_range_t *out) CH_MUST_CHECK;

/** One stream of an RTP-Info header. */
typedef struct ch_proto_rtsp_rtp_info {
    ch_slice_t url; /* as sent: absolute, or (some servers) a path or a bare control */
    unsigned has_seq;
    uint16_t seq;
    unsigned has_rtptime;
    uint32_t rtptime;
} ch_proto_rtsp_rtp_info_t;

/**
 * Parses the first stream "url=U[;seq=N][;rtptime=N]" of the comma-separated list *list and
 * advances past it. Returns 0, CH_ENOENT at the end of the list, CH_EPARSE when url is missing
 * or seq (0..65535) or rtptime (0..2^32-1) is not a number in range. Unknown parameters
 * (ssrc=) are skipped.
 */
int ch_proto_rtsp_parse_rtp_info(ch_slice_t *list, ch_proto_rtsp_rtp_info_t *out) CH_MUST_CHECK;

/* ---- an RTSP client session, without I/O (rtsp_client.c) -------------------------------- */

#define CH_PROTO_RTSP_CLIENT_MAX_REDIRECTS 3     /* the fourth redirect fails the session */
#define CH_PROTO_RTSP_CLIENT_MAX_HEAD      16384 /* a longer answer head fails it */
#define CH_PROTO_RTSP_CLIENT_MAX_BODY      65536 /* a longer body (an SDP) fails it */

/** Where a client session stands. The four "awaiting" states have a request out. */
typedef enum ch_proto_rtsp_client_state {
    CH_PROTO_RTSP_CLIENT_IDLE = 0,   /* begun on a URL; start() sends the OPTIONS */
    CH_PROTO_RTSP_CLIENT_OPTIONS,    /* awaiting the answer to OPTIONS */
    CH_PROTO_RTSP_CLIENT_DESCRIBE,   /* awaiting the answer to DESCRIBE */
    CH_PROTO_RTSP_CLIENT_DESCRIBED,  /* the SDP is in sdp: setup() goes on (a pull), or stop */
    CH_PROTO_RTSP_CLIENT_SETUP,      /* awaiting the answer to SETUP */
    CH_PROTO_RTSP_CLIENT_PLAY,       /* awaiting the answer to PLAY */
    CH_PROTO_RTSP_CLIENT_PLAYING,    /* the stream plays; answers are the keep-alives' */
    CH_PROTO_RTSP_CLIENT_REDIRECTED, /* begin() again on redirect, on a new connection */
    CH_PROTO_RTSP_CLIENT_FAILED,     /* error says why (auth_failed: the credentials) */
} ch_proto_rtsp_client_state_t;

/**
 * One RTSP/1.0 client session with a camera, without a socket: the caller carries the bytes.
 * It asks OPTIONS (some cameras fail it and still play: DESCRIBE decides), DESCRIBE with
 * Accept: application/sdp, answers a 401 with Basic or Digest (the challenge kept for every
 * later request; a stale nonce answered again, at most three challenges per connection),
 * follows a 3xx with an rtsp:// or rtsps:// Location (CH_PROTO_RTSP_CLIENT_MAX_REDIRECTS times;
 * never from rtsps:// to rtsp://), and for a
 * pull SETUP of the track the caller picks (TCP interleaved, or UDP ports with a fall back to
 * TCP on 461) and PLAY, then keep-alives and TEARDOWN. The pull of media/ and the probe of
 * health/ drive it. Fields are read-only to the caller but for user_agent and auth_retries.
 */
typedef struct ch_proto_rtsp_client {
    const char *user_agent; /* a static string: "cctvhub" */
    unsigned auth_retries;  /* non-stale 401s answered again after the first challenge */
    ch_proto_rtsp_client_state_t state;
    /* The URL asked now (set by begin). */
    char wire[1024]; /* as on a request line: no userinfo */
    char host[256];  /* to connect to (an IPv6 address without brackets) */
    uint16_t port;
    unsigned tls;              /* rtsps://: the connection speaks TLS (the caller's to set up) */
    char user[128], pass[128]; /* decoded */
    /* Per connection. */
    uint32_t cseq, nc;
    char challenge[1024]; /* the chosen WWW-Authenticate value */
    unsigned has_challenge, challenges, refusals;
    /* Across connections, from init. */
    unsigned redirects;
    char redirect[1024];  /* state REDIRECTED: the Location, with its userinfo if any */
    unsigned udp_refused; /* the camera answered 461 to a UDP offer */
    /* Results. */
    int status;                       /* of the last answer */
    unsigned keepalive_get_parameter; /* OPTIONS' Public names GET_PARAMETER */
    ch_buf_t sdp;                     /* state DESCRIBED and later: the DESCRIBE answer's body */
    char base[1024];                  /* the base URL of the SDP's controls */
    char setup_url[1024], play_url[1024];
    uint16_t udp_port; /* the UDP ports (udp_port, udp_port + 1) offered; 0 for TCP */
    unsigned tcp;      /* the SETUP answer's transport is TCP interleaved */
    uint8_t rtp_ch;    /* its interleaved RTP channel (0 when it named none) */
    char session[CH_PROTO_RTSP_MAX_SESSION_ID + 1];
    unsigned session_timeout; /* seconds */
    unsigned auth_failed;     /* state FAILED for the credentials (refused, none, unsendable) */
    char error[160];          /* state FAILED: why, for a log line or a health reason */
    ch_buf_t out;             /* the next request's bytes: the caller writes and resets it */
} ch_proto_rtsp_client_t;

/** Initialises c (no redirects yet, nothing to send). user_agent must outlive c. */
void ch_proto_rtsp_client_init(ch_proto_rtsp_client_t *c, const char *user_agent,
                               unsigned auth_retries);
void ch_proto_rtsp_client_fini(ch_proto_rtsp_client_t *c);

/**
 * Begins a connection's exchange on url (which may be c->redirect): its decoded userinfo, else
 * user and password (NULL for none), are the credentials. Afterwards state is IDLE, and host
 * and port say where to connect, and tls whether over TLS (rtsps://); out is empty. Returns 0,
 * or with state FAILED: CH_EPARSE (not a valid rtsp:// or rtsps:// URL, malformed credentials
 * in it, or a redirect from rtsps:// to rtsp://, which would leave TLS).
 */
int ch_proto_rtsp_client_begin(ch_proto_rtsp_client_t *c, const char *url, const char *user,
                               const char *password) CH_MUST_CHECK;

/** Connected: puts the OPTIONS in out (state OPTIONS). */
void ch_proto_rtsp_client_start(ch_proto_rtsp_client_t *c);

/**
 * Reads the answer at the start of buf[0, len) (an RTSP message, not an interleaved frame).
 * Returns its size once whole, after which state, the results and out (the next request, if
 * any) are updated; CH_EAGAIN while incomplete; CH_EPARSE or CH_ETOOBIG for an answer that is
 * malformed or over the limits (state FAILED). An answer in state PLAYING is a keep-alive's
 * and changes nothing; in DESCRIBED, REDIRECTED or FAILED it is consumed and ignored.
 */
int ch_proto_rtsp_client_read(ch_proto_rtsp_client_t *c, const char *buf, size_t len) CH_MUST_CHECK;

/**
 * State DESCRIBED: SETUP of the track whose a=control is media_control, PLAY on the session's
 * session_control (slices of an SDP parsed from c->sdp, or anything else), offering the UDP
 * ports (udp_port, udp_port + 1), or TCP interleaved 0-1 when udp_port is 0. Puts the SETUP
 * in out (state SETUP), or fails (state FAILED) when the controls cannot be resolved.
 */
void ch_proto_rtsp_client_setup(ch_proto_rtsp_client_t *c, ch_slice_t session_control,
                                ch_slice_t media_control, uint16_t udp_port);

/** State PLAYING: puts a keep-alive in out (GET_PARAMETER when the camera's Public lists it,
 * else OPTIONS). */
void ch_proto_rtsp_client_keepalive(ch_proto_rtsp_client_t *c);

/** State PLAYING: puts a TEARDOWN of the session in out (best effort: no Authorization). */
void ch_proto_rtsp_client_teardown(ch_proto_rtsp_client_t *c);

/* ---- interleaved frames (rtsp.c) ------------------------------------------------------- */

/** One '$'-interleaved frame (RFC 2326 section 10.12). */
typedef struct ch_proto_interleaved {
    uint8_t channel;
    ch_slice_t payload; /* points into the buffer; may be empty */
} ch_proto_interleaved_t;

/**
 * Looks at the start of buf[0, len), the bytes received so far on an RTSP connection. Returns:
 *   > 0         a whole frame: its size (4 + payload), with *out filled;
 *   CH_EAGAIN   a frame has begun but is not complete (or len is 0);
 *   CH_ENOENT   no frame starts here but an RTSP message may (a token byte, as in "RTSP/1.0"
 *               or "OPTIONS", or an empty line): hand the bytes to the head parsers;
 *   CH_EPARSE   neither: the stream is out of sync.
 */
int ch_proto_interleaved_read(const char *buf, size_t len,
                              ch_proto_interleaved_t *out) CH_MUST_CHECK;

/** Writes the 4-byte header of a frame of payload_len bytes on channel. Returns 0, or
 * CH_ETOOBIG when payload_len is over 65535. */
int ch_proto_interleaved_header(uint8_t channel, size_t payload_len, uint8_t out[4]) CH_MUST_CHECK;

/* ---- rtsp:// URLs (url.c) -------------------------------------------------------------- */

/** A parsed rtsp:// or rtsps:// URL; slices point into the parsed text. */
typedef struct ch_proto_url {
    ch_slice_t scheme; /* "rtsp" or "rtsps", as written (case may vary) */
    unsigned has_userinfo;
    ch_slice_t user;     /* still percent-encoded; see ch_proto_url_decode */
    ch_slice_t password; /* still percent-encoded; has_password says whether ':' was there */
    unsigned has_password;
    ch_slice_t host; /* a name, an IPv4 address, or an IPv6 address without its brackets */
    unsigned host_is_ipv6;
    uint16_t port;         /* as written, else 554 (rtsp) or 322 (rtsps) */
    unsigned has_port;     /* written in the URL */
    ch_slice_t path_query; /* "/path?query", "/" or empty: what follows the authority */
    ch_slice_t query;      /* after '?', or empty */
} ch_proto_url_t;

/**
 * Parses an rtsp:// or rtsps:// URL (scheme case-insensitive). The authority ends at the first
 * '/', '?' or end; userinfo ends at its LAST '@', since camera passwords often hold a raw '@'.
 * Refused (CH_EPARSE): controls, space, bytes of 0x80 and above, '#', a bad percent escape, an
 * empty host, a port out of 1..65535, a malformed [IPv6] literal. Another scheme is CH_EUNSUPP.
 */
int ch_proto_url_parse(const char *s, size_t len, ch_proto_url_t *out) CH_MUST_CHECK;

/**
 * Percent-decodes in into out[0, cap) and NUL-terminates it. Returns the decoded length, or
 * CH_EPARSE for a bad escape or an encoded NUL ("%00", which would cut a C string short), or
 * CH_ETOOBIG when out is too small.
 */
int ch_proto_url_decode(ch_slice_t in, char *out, size_t cap) CH_MUST_CHECK;

/** What ch_proto_url_append writes. */
#define CH_PROTO_URL_WIRE 0u /* scheme://host[:port]/path?query, never credentials */
#define CH_PROTO_URL_LOG  1u /* the same with each query value replaced by "***" */

/** Appends the URL to out without its userinfo: CH_PROTO_URL_WIRE for a request line, or
 * CH_PROTO_URL_LOG for a log line (query values may be tokens, as in ?token=...). */
void ch_proto_url_append(const ch_proto_url_t *url, unsigned how, ch_buf_t *out);

/* ---- SDP (sdp.c) ----------------------------------------------------------------------- */

#define CH_PROTO_SDP_MAX_MEDIA   8  /* m= sections; more is CH_ETOOBIG */
#define CH_PROTO_SDP_MAX_FORMATS 16 /* payload types kept per m= line; the rest are ignored */

/** One payload type of an m= line with its rtpmap and fmtp attributes. */
typedef struct ch_proto_sdp_format {
    uint8_t pt;            /* 0..127 */
    ch_slice_t encoding;   /* "H264", "H265", "PCMA"; empty without an a=rtpmap */
    uint32_t clock_rate;   /* 90000; 0 without an a=rtpmap */
    ch_slice_t enc_params; /* after a second '/' in rtpmap (audio channels), or empty */
    ch_slice_t fmtp;       /* the raw parameters of a=fmtp, or empty */
} ch_proto_sdp_format_t;

/** One m= section. */
typedef struct ch_proto_sdp_media {
    ch_slice_t type;  /* "video", "audio", "application" */
    uint16_t port;    /* usually 0 in an RTSP answer */
    ch_slice_t proto; /* "RTP/AVP" */
    ch_proto_sdp_format_t formats[CH_PROTO_SDP_MAX_FORMATS];
    size_t num_formats;
    ch_slice_t control;    /* a=control value, or empty when absent */
    ch_slice_t connection; /* c= value, or empty */
    ch_slice_t bandwidth;  /* first b= value ("AS:2097"), or empty */
    ch_slice_t direction;  /* "sendonly", "recvonly", "sendrecv", "inactive", or empty */
} ch_proto_sdp_media_t;

/** A parsed session description; slices point into the parsed text. */
typedef struct ch_proto_sdp {
    ch_slice_t origin;       /* o= value */
    ch_slice_t session_name; /* s= value */
    ch_slice_t control;      /* session-level a=control, or empty */
    ch_slice_t connection;   /* session-level c=, or empty */
    ch_slice_t bandwidth;    /* session-level first b=, or empty */
    ch_slice_t range;        /* session-level a=range value, or empty */
    ch_proto_sdp_media_t media[CH_PROTO_SDP_MAX_MEDIA];
    size_t num_media;
} ch_proto_sdp_t;

/**
 * Parses a session description (RFC 8866) from text[0, len), typically a DESCRIBE body.
 * Lines end with CRLF or LF (the last may end with neither); trailing spaces and tabs are
 * trimmed; empty lines and unknown line types or attributes are skipped. The first line must
 * be "v=0". Refused (CH_EPARSE): a line that is not "<letter>=...", a control byte other than
 * HTAB, a bare CR, a malformed m= line, a payload type over 127, a port over 65535. An
 * a=rtpmap or a=fmtp that is malformed, or names a payload type the m= line does not list, is
 * skipped, as real cameras send such lines for tracks they then serve correctly. More than
 * CH_PROTO_SDP_MAX_MEDIA m= lines is CH_ETOOBIG.
 */
int ch_proto_sdp_parse(const char *text, size_t len, ch_proto_sdp_t *out) CH_MUST_CHECK;

/** The format of payload type pt in media m, or NULL. */
const ch_proto_sdp_format_t *ch_proto_sdp_format_find(const ch_proto_sdp_media_t *m, unsigned pt);

/**
 * Finds parameter name (ASCII case-insensitive) in fmtp text "a=1; b=2;c" and sets *value to
 * what follows its '=' (empty for a bare name). Returns 0 or CH_ENOENT.
 */
int ch_proto_sdp_fmtp_param(ch_slice_t fmtp, const char *name, ch_slice_t *value) CH_MUST_CHECK;

/**
 * Appends to out the URL an RTSP request uses for a control attribute, given base (from
 * ch_proto_rtsp_content_base): an absolute control ("rtsp://...", any scheme) as it is; an
 * empty control or "*" as base itself; a relative one appended to base with exactly one '/'
 * between them (leading slashes of the control dropped) (base "rtsp://c/s" and "trackID=1" give
 * "rtsp://c/s/trackID=1", as live555, FFmpeg and GStreamer do; not RFC 3986 resolution, which would
 * drop "s"). Returns 0, or CH_EPARSE when base is empty and the control is not absolute.
 */
int ch_proto_sdp_resolve_control(ch_slice_t base, ch_slice_t control, ch_buf_t *out) CH_MUST_CHECK;

/* ---- authentication (auth.c) ----------------------------------------------------------- */

typedef enum ch_proto_auth_scheme {
    CH_PROTO_AUTH_BASIC = 1,
    CH_PROTO_AUTH_DIGEST = 2,
} ch_proto_auth_scheme_t;

typedef enum ch_proto_digest_alg {
    CH_PROTO_DIGEST_MD5 = 1,    /* also when algorithm is absent (RFC 2617) */
    CH_PROTO_DIGEST_SHA256 = 2, /* "SHA-256" (RFC 7616) */
} ch_proto_digest_alg_t;

/** A parsed WWW-Authenticate challenge; slices point into the header value, without quotes. */
typedef struct ch_proto_auth_challenge {
    ch_proto_auth_scheme_t scheme;
    ch_slice_t realm;
    ch_slice_t nonce;  /* Digest */
    ch_slice_t opaque; /* Digest; has_opaque says whether it was sent (it may be empty) */
    unsigned has_opaque;
    ch_proto_digest_alg_t algorithm; /* Digest */
    unsigned qop_auth;               /* Digest: the server offers qop "auth" */
    unsigned stale;                  /* Digest: stale=true */
    ch_slice_t value; /* the whole header value it was parsed from (to keep for later requests) */
} ch_proto_auth_challenge_t;

/**
 * Parses one WWW-Authenticate value holding one challenge: "Basic realm=..." or
 * "Digest realm=..., nonce=..., ...", the scheme case-insensitive, parameters as token or
 * quoted-string. Returns 0; CH_EUNSUPP for another scheme, an algorithm other than MD5 and
 * SHA-256 (MD5-sess, SHA-512-256), a qop list without "auth", or a quoted string holding a
 * backslash escape (the slice could not hold its unescaped value); CH_EPARSE when malformed or
 * when Digest lacks realm or nonce.
 */
int ch_proto_auth_parse_challenge(ch_slice_t value, ch_proto_auth_challenge_t *out) CH_MUST_CHECK;

/**
 * Picks the strongest challenge the WWW-Authenticate headers offer and we support: Digest
 * SHA-256, then Digest MD5, then Basic. Returns 0, or CH_ENOENT when there is none we can
 * answer.
 */
int ch_proto_auth_pick(const ch_proto_header_t *headers, size_t n,
                       ch_proto_auth_challenge_t *out) CH_MUST_CHECK;

/** What ch_proto_auth_authorization needs besides the challenge. user and password are
 * decoded (see ch_proto_url_decode); cnonce (Digest with qop) is the caller's random token,
 * at least 8 characters of [A-Za-z0-9+/=._-]; nc counts the requests made with this nonce,
 * from 1. */
typedef struct ch_proto_auth_request {
    ch_slice_t user;
    ch_slice_t password;
    const char *method; /* "DESCRIBE" */
    ch_slice_t uri;     /* the request target, exactly as on the request line */
    ch_slice_t cnonce;
    uint32_t nc;
} ch_proto_auth_request_t;

/**
 * Appends the value of an Authorization header answering challenge c: "Basic base64(u:p)",
 * or "Digest username=..., realm=..., nonce=..., uri=..., response=..." (RFC 2617, RFC 7616)
 * with algorithm, opaque, qop, nc and cnonce when they apply. Returns 0; CH_EINVAL when the
 * user holds ':' (Basic) or a control byte or '"', or the cnonce is unfit; CH_EIO when
 * OpenSSL fails.
 */
int ch_proto_auth_authorization(const ch_proto_auth_challenge_t *c,
                                const ch_proto_auth_request_t *r, ch_buf_t *out) CH_MUST_CHECK;

/**
 * Computes a Digest response into hex[65] (32 hex digits for MD5, 64 for SHA-256, then NUL):
 * H(H(user:realm:password):nonce[:nc:cnonce:qop]:H(method:uri)). Exposed for tests and for a
 * server checking a client's answer. Returns 0 or CH_EIO.
 */
int ch_proto_auth_digest_response(const ch_proto_auth_challenge_t *c,
                                  const ch_proto_auth_request_t *r, char hex[65]) CH_MUST_CHECK;

/* ---- WebSocket (ws.c) ------------------------------------------------------------------ */

#define CH_PROTO_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
#define CH_PROTO_WS_HEADER_MAX 10

#define CH_PROTO_WS_TEXT   1u
#define CH_PROTO_WS_BINARY 2u
#define CH_PROTO_WS_CLOSE  8u
#define CH_PROTO_WS_PING   9u
#define CH_PROTO_WS_PONG   10u

/** The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 section 4.2.2): 0 and
 * out (NUL-terminated), CH_EPARSE when key is not the base64 of 16 bytes, CH_EIO. */
int ch_proto_ws_accept(ch_slice_t key, char out[CH_PROTO_WS_ACCEPT_LEN + 1]) CH_MUST_CHECK;

/** Tells whether a request asks for an upgrade to WebSocket: Upgrade lists the token
 * "websocket" and Connection the token "upgrade" (comma-separated, ASCII case-insensitive).
 * Returns 1 or 0. */
int ch_proto_ws_upgrade_asked(const ch_proto_request_t *req);

/**
 * Checks the keys of a WebSocket opening handshake (RFC 6455 section 4.2.1):
 * Sec-WebSocket-Key is the base64 of 16 bytes and Sec-WebSocket-Version is 13. Returns 0 with
 * accept filled (see ch_proto_ws_accept); CH_EPARSE when the key is missing or malformed;
 * CH_EUNSUPP when the version is missing or not 13 (a server answers 426 with
 * Sec-WebSocket-Version: 13); CH_EIO.
 */
int ch_proto_ws_handshake(const ch_proto_request_t *req,
                          char accept[CH_PROTO_WS_ACCEPT_LEN + 1]) CH_MUST_CHECK;

/** Appends the server's answer to a valid handshake: "HTTP/1.1 101 Switching Protocols" with
 * Upgrade, Connection and Sec-WebSocket-Accept. */
void ch_proto_ws_switching(const char *accept, ch_buf_t *out);

/** Writes the header of a server's frame (FIN set, unmasked) of len payload bytes; returns its
 * size (2, 4 or 10). */
size_t ch_proto_ws_header(unsigned opcode, uint64_t len, uint8_t out[CH_PROTO_WS_HEADER_MAX]);

/** One frame a client sent; payload points into the buffer given to ch_proto_ws_read, unmasked
 * there in place. */
typedef struct ch_proto_ws_frame {
    unsigned fin;
    unsigned opcode; /* 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    uint8_t *payload;
    size_t payload_len;
} ch_proto_ws_frame_t;

/**
 * Reads the client frame at the start of buf[0, len) and unmasks its payload in place. Returns
 * its size (header and payload) with *out filled, CH_EAGAIN (incomplete), CH_EPARSE (reserved
 * bits, an unknown opcode, an unmasked frame, a long or fragmented control frame, a length not
 * in its shortest form) or CH_ETOOBIG (a payload over max_payload).
 */
int ch_proto_ws_read(uint8_t *buf, size_t len, size_t max_payload,
                     ch_proto_ws_frame_t *out) CH_MUST_CHECK;

#define CH_PROTO_WS_GOING_AWAY      1001u
#define CH_PROTO_WS_PROTOCOL_ERROR  1002u
#define CH_PROTO_WS_CLOSE_FRAME_LEN 4 /* a server's close frame with a status code only */

/** Writes a server's close frame carrying status code (no reason); returns its size (4). */
size_t ch_proto_ws_close_frame(uint16_t code, uint8_t out[CH_PROTO_WS_CLOSE_FRAME_LEN]);

/** What a server answers to a frame a client sent, ready to write. */
typedef struct ch_proto_ws_reply {
    uint8_t bytes[CH_PROTO_WS_HEADER_MAX + 125];
    size_t len; /* 0: nothing to answer (data, pongs) */
    int close;  /* 1: the client closed; end the connection once bytes are written */
} ch_proto_ws_reply_t;

/**
 * The one reply path of the hub's WebSocket servers (live alerts, live video): a ping gets a
 * pong with its payload; a close gets a close echoing its status code (an empty one an empty
 * one), and a close with a 1-byte body, a protocol error (RFC 6455 section 5.5.1), a close
 * 1002; other frames get nothing. f is what ch_proto_ws_read filled.
 */
void ch_proto_ws_reply(const ch_proto_ws_frame_t *f, ch_proto_ws_reply_t *out);

#endif /* CH_PROTO_H */
