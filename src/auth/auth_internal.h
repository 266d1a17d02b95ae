/*
 * auth internals shared by auth.c and hasher.c.
 */
#ifndef CH_AUTH_INTERNAL_H
#define CH_AUTH_INTERNAL_H

/* The address without its port: "127.0.0.1:5123" -> "127.0.0.1", "[::1]:80" -> "[::1]";
 * "10.0.0.1" and "2001:db8::1" (more than one colon: no port) as they are. out holds 48. */
void ch_auth__host_of(const char *addr, char out[48]);

#endif /* CH_AUTH_INTERNAL_H */
