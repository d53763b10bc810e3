"""The HTTP server's own limits: connection timeouts, caps, and the protocol that keeps them."""
