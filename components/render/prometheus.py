"""prometheus.yml: what Prometheus scrapes, how often, its rule files and Alertmanagers.

Consumed by `prometheus --config.file` (the pinned image's 2.42 in Docker, Debian's 2.42 in
the integration tests, which also run `promtool check config` on it). The scrape jobs are
named by `JOB_*`; the alert rules (alert_rules.py) select series by those job names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import yaml

# Job names: the `job` label of every series, which the alert rules match on.
JOB_PROMETHEUS = "prometheus"
JOB_ALERTMANAGER = "alertmanager"
JOB_HAPROXY = "haproxy"
JOB_POSTGRES = "postgres"
JOB_PATRONI = "patroni"
JOB_APP = "app"
JOB_VOLUMES = "volumes"
JOB_TLS = "tls"
JOB_BACKUPS = "backups"


def duration(seconds: float) -> str:
    """A Prometheus duration: whole seconds as `15s`, anything finer in milliseconds (`500ms`)."""
    if seconds <= 0:
        raise ValueError(f"a duration must be > 0, got {seconds}")
    milliseconds = round(seconds * 1000)
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


@dataclass(frozen=True)
class ScrapeTarget:
    """`host:port` to scrape, with labels that say what it is (e.g. `node: db-primary`)."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DnsTargets:
    """Every A record of `name`, each scraped on `port`: Swarm's `tasks.<service>`, which
    Docker's DNS answers with the address of every task of a service (a VIP would give one
    task per scrape, and mix their series)."""

    name: str
    port: int


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[ScrapeTarget, ...]
    metrics_path: str = "/metrics"
    # Targets found by DNS (dns_sd_configs), besides the static ones.
    discovered: tuple[DnsTargets, ...] = ()
    # A blackbox_exporter (`host:port`) that probes the targets with `module`, instead of
    # scraping them: Prometheus asks it for /probe?module=...&target=<target>.
    prober: str | None = None
    module: str | None = None

    def __post_init__(self) -> None:
        if (self.prober is None) != (self.module is None):
            raise ValueError("a probing job needs both prober and module")


@dataclass(frozen=True)
class PrometheusSettings:
    jobs: tuple[ScrapeJob, ...]
    scrape_interval_s: float
    evaluation_interval_s: float
    # Paths of the rule files as Prometheus sees them.
    rule_files: tuple[str, ...]
    # `host:port` of each Alertmanager; empty: alerts stay in Prometheus (the drills).
    alertmanagers: tuple[str, ...] = ()
    # Labels added to every alert and series sent elsewhere, e.g. {"stack": "dev"}.
    external_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [job.name for job in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"scrape job names must be unique, got {names}")
        if self.evaluation_interval_s <= 0 or self.scrape_interval_s <= 0:
            raise ValueError("scrape and evaluation intervals must be > 0")


def scrape_timeout_s(interval_s: float) -> float:
    """Prometheus refuses a scrape timeout above the interval; 10 s (its default) at most."""
    return min(10.0, interval_s)


def render_prometheus_yml(s: PrometheusSettings) -> str:
    """The whole prometheus.yml, consumed by `prometheus --config.file` and `promtool check config`."""
    config: dict = {
        "global": {
            "scrape_interval": duration(s.scrape_interval_s),
            "scrape_timeout": duration(scrape_timeout_s(s.scrape_interval_s)),
            "evaluation_interval": duration(s.evaluation_interval_s),
            **({"external_labels": dict(s.external_labels)} if s.external_labels else {}),
        },
        "rule_files": list(s.rule_files),
        "scrape_configs": [_scrape_config(job) for job in s.jobs if job.targets or job.discovered],
    }
    if s.alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(s.alertmanagers)}]}]}
    return yaml.safe_dump(config, sort_keys=False)


def _scrape_config(job: ScrapeJob) -> dict:
    config: dict = {"job_name": job.name, "metrics_path": job.metrics_path}
    if job.targets:
        # One static config per target, so each carries its own labels.
        config["static_configs"] = [
            {"targets": [target.address], **({"labels": dict(target.labels)} if target.labels else {})}
            for target in job.targets
        ]
    if job.discovered:
        # https://prometheus.io/docs/prometheus/2.42/configuration/configuration/#dns_sd_config
        config["dns_sd_configs"] = [{"names": [d.name], "type": "A", "port": d.port} for d in job.discovered]
    if job.prober is None:
        return config
    # blackbox_exporter's multi-target pattern: the target becomes a URL parameter and the
    # `instance` label, and the request goes to the prober.
    return config | {
        "metrics_path": "/probe",
        "params": {"module": [job.module]},
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": job.prober},
        ],
    }
