/*
 * The audit log as the hub's commands use it: opened in <data_dir>/audit with the node key of
 * <data_dir>/keys, and the actor names of local users.
 */
#ifndef CH_MAIN_HUB_AUDIT_H
#define CH_MAIN_HUB_AUDIT_H

#include "audit/audit.h"
#include "core/config.h"
#include "main/main.h"
#include "store/store.h"

/* Opens the audit log of cfg->data_dir for appending. When create_key is set and the data
 * directory has no node key yet, one is made first (and its public key logged), so that a new
 * hub starts with a signed record from its first change. On failure prints why (naming
 * `cctvhub keys init` or `cctvhub audit verify` where they help) and returns CH_EXIT_STORE;
 * else CH_EXIT_OK and *out. */
int ch_main__audit_open(const ch_config_t *cfg, int create_key, ch_audit_t **out);

/* Loads the configuration of opts into *cfg and opens the audit log of its data directory for
 * reading (no key: no writes, a torn tail skipped in memory), beside a running hub or not.
 * CH_EXIT_OK with *cfg (the caller finis it) and *out; else, after printing why ("cctvhub
 * <cmd>: cannot open the audit log ..."), CH_EXIT_CONFIG or CH_EXIT_STORE and nothing to free. */
int ch_main__audit_open_read(const char *cmd, const ch_main_opts_t *opts, ch_config_t *cfg,
                             ch_audit_t **out);

/* As ch_main__audit_open (with create_key), but quiet when the log is held by a running hub:
 * returns CH_ECONFLICT then, 0 and *out on success, another code after printing why. */
int ch_main__audit_try_open(const ch_config_t *cfg, ch_audit_t **out);

/* As ch_main__audit_open (no key made), for `cctvhub audit accept`: opens a log even when it
 * has records but no checkpoint (ch_audit_options_t.accept_unchecked). */
int ch_main__audit_open_accept(const ch_config_t *cfg, ch_audit_t **out);

/* The check a starting hub makes: CH_EXIT_OK when the log extends the checkpoint kept in the
 * store (or none is kept), else CH_EXIT_STORE after saying on stderr what is wrong and how
 * an operator may go on (`cctvhub audit accept`). Someone who cuts the log's end and deletes
 * its checkpoints file must also find and change this second copy. */
int ch_main__audit_check_kept(const ch_config_t *cfg, ch_audit_t *a, ch_store_t *st);

/* The store (ud: a ch_store_t, the caller's own handle) as the keeper of the log's latest
 * checkpoint (ch_audit_kept_update, ch_audit_accept_kept): the wiring of store to audit. */
extern const ch_audit_keeper_t ch_main__store_keeper;

/* "user:<login name>" of the process's user, for records of local commands (out: 96 bytes). */
void ch_main__local_actor(char out[96]);

/* A TLS handshake on listener ("https", "rtsps") failed (a client certificate of another CA,
 * expired or revoked, or not TLS at all): a refusal on the record (tls.refuse, one record per
 * address and interval, the rest counted: ch_audit_refusal), since an agency's system refused
 * is worth knowing. Any thread. */
void ch_main__audit_tls_refusal(ch_audit_t *a, const char *listener, const char *peer,
                                const char *reason);

#endif /* CH_MAIN_HUB_AUDIT_H */
