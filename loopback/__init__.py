"""The stack on loopback: the real binaries (postgres, haproxy, the reference app)
started from the same renderers the Docker components use, on 127.0.0.1.

Used by the integration tests and by bench/. Every process started here is owned by
a context manager that stops it; every file lives under a temp dir.
"""
