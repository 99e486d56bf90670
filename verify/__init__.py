"""`python -m verify URL --replicas N`: check a running hastack stack's HA claims
through its load balancer. See docs/app.md."""
