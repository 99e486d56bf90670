"""Pure text renderers: typed settings in, the exact file or command text out.

The Docker components upload this text into containers; the integration tests run
the same text with real Debian binaries on 127.0.0.1. Nothing here imports pulumi,
so every renderer is a plain function of its settings and can be tested anywhere.

- `haproxy`:  haproxy.cfg for the load balancer
- `postgres`: primary server flags, pg_hba.conf, the initdb-time init script and the
              replica bootstrap script
- `patroni`:  patroni.yml and its post-bootstrap script, for automatic failover
- `etcd`:     the flags of each member of the etcd cluster Patroni keeps its state in
- `prometheus`, `alert_rules`, `alertmanager`, `postgres_exporter`, `blackbox`:
              the monitoring stack's configs (prometheus.yml, the rule file,
              alertmanager.yml, the exporter's queries, the TLS probe)

docs/render.md lists who consumes each output.
"""
