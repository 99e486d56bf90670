"""alertmanager.yml: where alerts go, grouped and routed by severity.

Consumed by `alertmanager --config.file` and `amtool check-config` (0.25, the pinned image
and Debian's package). Two receivers, one per severity, each carrying every notifier the
stack config subscribes to that severity: critical alerts are sent sooner and repeated
more often than warnings. With no notifier configured, alerts still reach Alertmanager's
UI and API (the `critical`/`warning` receivers are then empty, which Alertmanager allows).

The output contains the notifiers' credentials (Slack URL, webhook URL, SMTP password):
the Docker component hands it on as a Pulumi secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

SEVERITIES = ("critical", "warning")


@dataclass(frozen=True)
class Webhook:
    url: str
    severities: Sequence[str] = SEVERITIES


@dataclass(frozen=True)
class Email:
    to: str
    sender: str
    smarthost: str
    auth_username: str | None = None
    auth_password: str | None = None
    require_tls: bool = True
    severities: Sequence[str] = SEVERITIES


@dataclass(frozen=True)
class Slack:
    api_url: str
    channel: str | None = None
    severities: Sequence[str] = SEVERITIES


@dataclass(frozen=True)
class AlertmanagerSettings:
    webhooks: tuple[Webhook, ...] = ()
    emails: tuple[Email, ...] = ()
    slacks: tuple[Slack, ...] = ()

    def __post_init__(self) -> None:
        for notifier in (*self.webhooks, *self.emails, *self.slacks):
            unknown = set(notifier.severities) - set(SEVERITIES)
            if unknown or not notifier.severities:
                raise ValueError(f"severities must be some of {', '.join(SEVERITIES)}, got {list(notifier.severities)}")


# How long Alertmanager waits to batch a new group's first notification, per severity.
GROUP_WAIT_S = {"critical": 10, "warning": 30}
# How each severity is batched and repeated: critical pages quickly and keeps reminding.
_TIMING = {
    "critical": {"group_wait": f"{GROUP_WAIT_S['critical']}s", "group_interval": "1m", "repeat_interval": "1h"},
    "warning": {"group_wait": f"{GROUP_WAIT_S['warning']}s", "group_interval": "5m", "repeat_interval": "4h"},
}


def render_alertmanager_yml(s: AlertmanagerSettings) -> str:
    """The whole alertmanager.yml, consumed by `alertmanager` and `amtool check-config`."""
    config = {
        "route": {
            "receiver": "warning",
            "group_by": ["alertname", "severity"],
            **_TIMING["warning"],
            "routes": [
                {"receiver": severity, "matchers": [f'severity="{severity}"'], **_TIMING[severity]}
                for severity in SEVERITIES
            ],
        },
        # With every replica down, one "no healthy backend" page says it all; the
        # per-replica warnings would only bury it.
        "inhibit_rules": [
            {"source_matchers": ['alertname="NoHealthyBackend"'], "target_matchers": ['alertname="BackendServerDown"']}
        ],
        "receivers": [_receiver(severity, s) for severity in SEVERITIES],
    }
    return yaml.safe_dump(config, sort_keys=False)


def _receiver(severity: str, s: AlertmanagerSettings) -> dict:
    receiver: dict = {"name": severity}
    webhooks = [{"url": w.url, "send_resolved": True} for w in s.webhooks if severity in w.severities]
    emails = [_email(e) for e in s.emails if severity in e.severities]
    slacks = [_slack(k) for k in s.slacks if severity in k.severities]
    if webhooks:
        receiver["webhook_configs"] = webhooks
    if emails:
        receiver["email_configs"] = emails
    if slacks:
        receiver["slack_configs"] = slacks
    return receiver


def _email(e: Email) -> dict:
    config = {"to": e.to, "from": e.sender, "smarthost": e.smarthost, "require_tls": e.require_tls, "send_resolved": True}
    if e.auth_username is not None:
        config |= {"auth_username": e.auth_username, "auth_password": e.auth_password}
    return config


def _slack(k: Slack) -> dict:
    return {"api_url": k.api_url, "send_resolved": True, **({"channel": k.channel} if k.channel else {})}
