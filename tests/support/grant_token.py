"""A view grant's token read the way a client would: base64url without padding, and the
claims of its payload (grant.event.camera.agency.expiry). Shared by test_events and
test_relay; the token's signature is checked by the daemon, never here."""

import base64


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def token_claims(token):
    g, e, c, a, x = b64url(token.split(".")[1]).decode().split(".")
    return {"grant": int(g), "event": int(e), "camera": int(c), "agency": int(a), "exp": int(x)}
