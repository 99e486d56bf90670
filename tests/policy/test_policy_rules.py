"""Every policy against compliant and violating fixtures, built from camelCase props as
the engine delivers them, including values that are unknown during preview."""

from __future__ import annotations

import base64
import copy
import json

import pulumi
import pytest
from azure_tls_fixtures import http_only_gateway, https_gateway, key_vault
from policy_harness import NOT_APPLICABLE, UNKNOWN, Res, check_resource, check_stack
from pulumi_policy.proxy import UnknownValueError

from policy.hastack_policies import POLICIES
from policy.hastack_policies.resources import (
    AZURE_APP_GATEWAY,
    AZURE_CONTAINER_APP,
    AZURE_FILE_SHARE,
    AZURE_PG_CONFIGURATION,
    AZURE_PG_DATABASE,
    AZURE_PG_SERVER,
    AZURE_STORAGE_ACCOUNT,
    AZURE_WAF_POLICY,
    DOCKER_APP_COMPONENT,
    DOCKER_BUILT_IMAGE,
    DOCKER_CONTAINER,
    DOCKER_DATABASE_COMPONENT,
    DOCKER_LOAD_BALANCER_COMPONENT,
    DOCKER_PATRONI_DATABASE_COMPONENT,
    DOCKER_REMOTE_IMAGE,
    DOCKER_SERVICE,
    DOCKER_SERVICE_CONFIG,
    DOCKER_VOLUME,
    SWARM_APP_COMPONENT,
    SWARM_ETCD_COMPONENT,
    SWARM_LOAD_BALANCER_COMPONENT,
    SWARM_PATRONI_DATABASE_COMPONENT,
)

IMAGE_ID = "sha256:" + "ab" * 32
ETCD_COMPONENT = "hastack:docker:Etcd"

HAPROXY_CFG = """\
defaults
    timeout connect 1s
backend app
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 500ms fastinter 250ms fall 2 rise 2
    server app-0 app-0:8000 check
    server app-1 app-1:8000 check
"""


# ---------------------------------------------------------------- compliant resources


def app_container(name="app-0", **changes):
    props = {
        "image": IMAGE_ID,
        "envs": [f"NODE_ID={name}", "LOG_LEVEL=info", "DATABASE_URL=postgresql://app:pw@db/app", "JWT_SECRET=generated"],
        "healthcheck": {"tests": ["CMD", "python", "-c", "probe"], "interval": "2s", "retries": 3},
    }
    return Res(DOCKER_CONTAINER, {**props, **changes}, name=name, component=DOCKER_APP_COMPONENT)


def db_container(name="db-primary", **changes):
    props = {"image": IMAGE_ID, "envs": ["POSTGRES_PASSWORD=generated", "PGDATA=/var/lib/postgresql/data"]}
    return Res(DOCKER_CONTAINER, {**props, **changes}, name=name, component=DOCKER_DATABASE_COMPONENT)


def patroni_member(name="db-0", **changes):
    props = {"image": IMAGE_ID, "envs": ["PATRONI_SUPERUSER_PASSWORD=generated"],
             "uploads": [{"file": "/etc/patroni/patroni.yml", "content": "scope: db\nname: " + name + "\n"}]}
    return Res(DOCKER_CONTAINER, {**props, **changes}, name=name, component=DOCKER_PATRONI_DATABASE_COMPONENT)


def etcd_member(name="etcd-0"):
    return Res(DOCKER_CONTAINER, {"image": IMAGE_ID, "command": ["/usr/local/bin/etcd", f"--name={name}"]},
               name=name, component=ETCD_COMPONENT)


def lb_container(cfg=HAPROXY_CFG, **changes):
    props = {
        "image": IMAGE_ID,
        "ports": [{"internal": 8080, "external": 8080}],
        "uploads": [{"file": "/usr/local/etc/haproxy/haproxy.cfg", "content": cfg}],
    }
    return Res(DOCKER_CONTAINER, {**props, **changes}, name="lb-haproxy", component=DOCKER_LOAD_BALANCER_COMPONENT)


def container_app(**changes):
    container = {
        "name": "app",
        "image": "ghcr.io/acme/shop:1.4.2",
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "DATABASE_URL", "secretRef": "database-url"},
            {"name": "JWT_SECRET", "secretRef": "jwt-secret"},
        ],
        "probes": [
            {"type": "Liveness", "httpGet": {"path": "/livez", "port": 8000}, "periodSeconds": 5},
            {"type": "Readiness", "httpGet": {"path": "/readyz", "port": 8000}, "periodSeconds": 1},
        ],
    }
    container.update(changes.pop("container", {}))
    props = {"template": {"containers": [container], "scale": {"minReplicas": 3, "maxReplicas": 6}}}
    props.update(changes)
    return Res(AZURE_CONTAINER_APP, props, name="app")


def pg_server(**changes):
    props = {
        "availabilityZone": "1",
        "highAvailability": {"mode": "ZoneRedundant", "standbyAvailabilityZone": "2"},
        "backup": {"backupRetentionDays": 14, "geoRedundantBackup": "Enabled"},
        "network": {"publicNetworkAccess": "Disabled", "delegatedSubnetResourceId": "/subscriptions/x/subnets/db"},
    }
    props.update(changes)
    return Res(AZURE_PG_SERVER, props, name="db-primary", protect=True)


def pg_read_replica():
    props = {"createMode": "Replica", "sourceServerResourceId": "/subscriptions/x/servers/db-primary"}
    return Res(AZURE_PG_SERVER, props, name="db-replica-0", protect=True)


def secure_transport(value="on"):
    return Res(AZURE_PG_CONFIGURATION, {"configurationName": "require_secure_transport", "value": value, "source": "user-override"}, name="db-require-secure-transport")


def app_gateway(**changes):
    props = {
        "sku": {"name": "WAF_v2", "tier": "WAF_v2"},
        "firewallPolicy": {"id": "/subscriptions/x/wafPolicies/lb-waf"},
        "probes": [{"name": "app-health", "protocol": "Https", "path": "/readyz", "interval": 5, "timeout": 5, "unhealthyThreshold": 2}],
        "backendHttpSettingsCollection": [{"name": "app", "probe": {"id": "/subscriptions/x/probes/app-health"}}],
    }
    props.update(changes)
    return Res(AZURE_APP_GATEWAY, props, name="lb-gateway")


def waf_policy(**settings):
    return Res(AZURE_WAF_POLICY, {"policySettings": {"state": "Enabled", "mode": "Prevention", **settings}}, name="lb-waf")


def storage_account(**changes):
    props = {"enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": False}
    props.update(changes)
    return Res(AZURE_STORAGE_ACCOUNT, props, name="storage-account", protect=True)


DIGEST = "registry.internal:5000/shop@sha256:" + "cd" * 32


def swarm_app(replicas=3, max_per_node=1, **container):
    spec = {"image": DIGEST, "env": {"NODE_ID": "app-{{.Task.Slot}}", "LOG_LEVEL": "info", "DATABASE_URL_FILE": "/run/secrets/DATABASE_URL"},
            "healthcheck": {"tests": ["CMD", "python", "-c", "probe /livez"], "interval": "2s", "retries": 3}, **container}
    props = {"name": "hastack-onprem-app", "mode": {"replicated": {"replicas": replicas}},
             "taskSpec": {"containerSpec": spec, "placement": {"maxReplicas": max_per_node}}}
    return Res(DOCKER_SERVICE, props, name="app-service", component=SWARM_APP_COMPONENT)


def swarm_member(name="db-0", node="swarm-1", component=SWARM_PATRONI_DATABASE_COMPONENT, protect=True, **props):
    base = {"name": f"hastack-onprem-{name}", "endpointSpec": {"mode": "dnsrr"},
            "taskSpec": {"containerSpec": {"image": DIGEST}, "placement": {"constraints": [f"node.hostname == {node}"]}}}
    return Res(DOCKER_SERVICE, {**base, **props}, name=name, component=component, protect=protect)


def swarm_lb_config(cfg=HAPROXY_CFG):
    return Res(DOCKER_SERVICE_CONFIG, {"name": "hastack-onprem-lb-haproxy-0123", "data": base64.b64encode(cfg.encode()).decode()},
               name="lb-haproxy-cfg", component=SWARM_LOAD_BALANCER_COMPONENT)


def replace_in(resource: Res, path: str, value) -> Res:
    """A copy of `resource` with the dotted `path` in its props set to `value`."""
    changed = copy.deepcopy(resource)
    *parents, leaf = path.split(".")
    target = changed.props
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if isinstance(target, list):
        target[int(leaf)] = value
    else:
        target[leaf] = value
    return changed


@pytest.fixture
def stack_app_config():
    """The stack config the pack reads (PULUMI_CONFIG in the CLI): one plaintext env var."""
    previous = dict(pulumi.runtime.config.CONFIG.get())
    pulumi.runtime.set_all_config({"hastack:app": json.dumps({"env": {"LOG_LEVEL": "info", "API_TOKEN": "abc123"}})})
    yield
    pulumi.runtime.set_all_config(previous)


# ---------------------------------------------------------------- resource policies

# (policy, resource, violates): every resource policy has compliant and violating cases.
RESOURCE_CASES = [
    ("app-health-checks", app_container(), False),
    ("app-health-checks", app_container(healthcheck=None), True),
    ("app-health-checks", app_container(healthcheck={"tests": ["NONE"]}), True),
    ("app-health-checks", container_app(), False),
    ("app-health-checks", replace_in(container_app(), "template.containers.0.probes", [{"type": "Liveness"}]), True),
    ("image-pinned", app_container(), False),
    ("image-pinned", Res(DOCKER_REMOTE_IMAGE, {"name": "haproxy:3.0.12-bookworm"}), False),
    ("image-pinned", Res(DOCKER_REMOTE_IMAGE, {"name": "postgres"}), True),
    ("image-pinned", Res(DOCKER_REMOTE_IMAGE, {"name": "localhost:5000/shop:latest"}), True),
    ("image-pinned", Res(DOCKER_REMOTE_IMAGE, {"name": "localhost:5000/shop@sha256:" + "0" * 64}), False),
    ("image-pinned", Res(DOCKER_BUILT_IMAGE, {"imageName": "hastack-app:dev"}), False),
    ("image-pinned", container_app(), False),
    ("image-pinned", container_app(container={"image": "ghcr.io/acme/shop:latest"}), True),
    ("lb-active-health-checks", lb_container(), False),
    ("lb-active-health-checks", lb_container(HAPROXY_CFG.replace("option httpchk GET /readyz\n", "")), True),
    ("lb-active-health-checks", lb_container(HAPROXY_CFG.replace("default-server check", "default-server")
                                             .replace("app-1:8000 check", "app-1:8000")), True),
    ("lb-active-health-checks", lb_container(HAPROXY_CFG.replace("inter 500ms", "inter 5s")), True),
    ("lb-active-health-checks", app_gateway(), False),
    ("lb-active-health-checks", app_gateway(probes=[]), True),
    ("lb-active-health-checks", replace_in(app_gateway(), "probes.0.interval", 30), True),
    ("lb-active-health-checks", replace_in(app_gateway(), "backendHttpSettingsCollection.0.probe", None), True),
    ("lb-https-only", https_gateway(), False),
    ("lb-https-only", http_only_gateway(), True),
    ("key-vault-safe-settings", key_vault(), False),
    ("key-vault-safe-settings", key_vault(enablePurgeProtection=False), True),
    ("tls-in-transit", db_container(command=["postgres", "-c", "ssl=on"], uploads=[
        {"file": "/etc/postgresql/hastack/pg_hba.conf", "content": "hostssl all all 172.28.0.0/16 scram-sha-256\n"}]), False),
    ("tls-in-transit", db_container(), True),
    ("tls-in-transit", lb_container(), True),
    ("lb-waf-enabled", app_gateway(), False),
    ("lb-waf-enabled", app_gateway(sku={"name": "Standard_v2", "tier": "Standard_v2"}, firewallPolicy=None), True),
    ("lb-waf-enabled", waf_policy(), False),
    ("lb-waf-enabled", waf_policy(mode="Detection"), True),
    ("lb-waf-enabled", waf_policy(state="Disabled"), True),
    ("db-zone-redundant-ha", pg_server(), False),
    ("db-zone-redundant-ha", pg_server(highAvailability={"mode": "Disabled"}), True),
    ("db-zone-redundant-ha", pg_server(highAvailability={"mode": "ZoneRedundant", "standbyAvailabilityZone": "1"}), True),
    ("db-backup-retention", pg_server(), False),
    ("db-backup-retention", pg_server(backup={"backupRetentionDays": 7}), False),
    ("db-backup-retention", pg_server(backup={"backupRetentionDays": 3}), True),
    ("db-geo-redundant-backup", pg_server(), False),
    ("db-geo-redundant-backup", pg_server(backup={"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"}), True),
    ("db-no-public-access", pg_server(), False),
    ("db-no-public-access", pg_server(network={"publicNetworkAccess": "Enabled"}), True),
    ("db-no-public-access", pg_server(network={}), True),
    ("db-no-public-access", db_container(), False),
    ("db-no-public-access", db_container(ports=[{"internal": 5432, "external": 5432}]), True),
    ("db-no-public-access", patroni_member(), False),
    ("db-no-public-access", patroni_member(ports=[{"internal": 5432, "external": 15432}]), True),
    ("storage-https-only", storage_account(), False),
    ("storage-https-only", storage_account(enableHttpsTrafficOnly=False), True),
    ("storage-min-tls", storage_account(), False),
    ("storage-min-tls", storage_account(minimumTlsVersion="TLS1_0"), True),
    ("storage-min-tls", storage_account(minimumTlsVersion=None), True),
    ("storage-no-public-blob-access", storage_account(), False),
    ("storage-no-public-blob-access", storage_account(allowBlobPublicAccess=True), True),
    ("no-plaintext-secret-env", container_app(), False),
    ("no-plaintext-secret-env", replace_in(container_app(), "template.containers.0.env.1", {"name": "DATABASE_URL", "value": "postgresql://app:pw@db/app"}), True),
    ("stateful-resources-protected", Res(DOCKER_VOLUME, {"driver": "local"}, protect=True), False),
    ("stateful-resources-protected", Res(DOCKER_VOLUME, {"driver": "local"}), True),
    ("stateful-resources-protected", Res(DOCKER_VOLUME, {"driver": "local"}, name="etcd-0-data", component=ETCD_COMPONENT, protect=True), False),
    ("stateful-resources-protected", Res(DOCKER_VOLUME, {"driver": "local"}, name="etcd-0-data", component=ETCD_COMPONENT), True),
    ("stateful-resources-protected", pg_server(), False),
    ("stateful-resources-protected", Res(AZURE_FILE_SHARE, {"shareQuota": 100}), True),
    ("stateful-resources-protected", Res(AZURE_PG_DATABASE, {"charset": "UTF8", "collation": "en_US.utf8"}, protect=True), False),
    ("stateful-resources-protected", Res(AZURE_PG_DATABASE, {"charset": "UTF8", "collation": "en_US.utf8"}), True),
    ("stateful-resources-protected", Res(AZURE_STORAGE_ACCOUNT, storage_account().props), True),
    # Swarm services.
    ("app-health-checks", swarm_app(), False),
    ("app-health-checks", swarm_app(healthcheck=None), True),
    ("app-health-checks", swarm_app(healthcheck={"tests": ["NONE"]}), True),
    ("image-pinned", swarm_app(), False),
    ("image-pinned", swarm_app(image="registry.internal:5000/shop:1.4.2"), False),
    ("image-pinned", swarm_app(image="registry.internal:5000/shop"), True),
    ("lb-active-health-checks", swarm_lb_config(), False),
    ("lb-active-health-checks", swarm_lb_config(HAPROXY_CFG.replace("option httpchk GET /readyz\n", "")), True),
    ("db-no-public-access", swarm_member(), False),
    ("db-no-public-access", swarm_member(endpointSpec={"ports": [{"targetPort": 5432, "publishedPort": 5432}]}), True),
    ("db-no-public-access", swarm_member("etcd-0", component=SWARM_ETCD_COMPONENT, endpointSpec={"ports": [{"targetPort": 2379}]}), True),
    ("stateful-resources-protected", swarm_member(), False),
    ("stateful-resources-protected", swarm_member(protect=False), True),
    ("stateful-resources-protected", swarm_member("etcd-1", component=SWARM_ETCD_COMPONENT, protect=False), True),
]


@pytest.mark.parametrize(
    ("policy", "resource", "violates"),
    RESOURCE_CASES,
    ids=[f"{p}-{r.type.rsplit(':', 1)[-1]}-{'violates' if v else 'passes'}-{i}" for i, (p, r, v) in enumerate(RESOURCE_CASES)],
)
def test_resource_policy(policy, resource, violates):
    messages = check_resource(policy, resource)
    assert messages != NOT_APPLICABLE
    assert bool(messages) is violates, messages
    for message in messages:
        assert "Fix:" in message, "every violation says how to fix it"


def test_every_resource_policy_has_passing_and_violating_cases():
    covered = {(p, v) for p, _, v in RESOURCE_CASES} | {(p, v) for p, _, v in STACK_CASES}
    for policy in POLICIES:
        if policy.name == "no-plaintext-secret-env":
            continue  # its Docker side needs stack config: test_docker_secret_env_* below
        if policy.name == "db-backups":
            continue  # passing and violating fixtures of its own: tests/policy/test_backup_policy.py
        assert (policy.name, False) in covered and (policy.name, True) in covered, policy.name


def test_thresholds_come_from_policy_config():
    assert check_resource("db-backup-retention", pg_server(backup={"backupRetentionDays": 7}), {"minDays": 14})
    assert not check_resource("db-backup-retention", pg_server(), {"minDays": 14})
    assert check_resource("lb-active-health-checks", lb_container(), {"maxIntervalMs": 400})
    assert check_resource("storage-min-tls", storage_account(), {"minimumTlsVersion": "TLS1_3"})
    assert not check_resource("lb-waf-enabled", waf_policy(mode="Detection"), {"requirePreventionMode": False})
    assert check_resource("db-zone-redundant-ha", pg_server(highAvailability={"mode": "ZoneRedundant", "standbyAvailabilityZone": "2"}), {"mode": "SameZone"})


def test_role_scoped_rules_skip_other_containers():
    assert check_resource("db-no-public-access", etcd_member()) == NOT_APPLICABLE
    assert check_resource("app-health-checks", patroni_member()) == NOT_APPLICABLE
    assert check_resource("app-health-checks", db_container()) == NOT_APPLICABLE
    assert check_resource("lb-active-health-checks", app_container()) == NOT_APPLICABLE
    assert check_resource("db-no-public-access", lb_container()) == NOT_APPLICABLE
    assert check_resource("db-zone-redundant-ha", pg_read_replica()) == NOT_APPLICABLE
    assert check_resource("db-backup-retention", pg_read_replica()) == NOT_APPLICABLE


def test_docker_secret_env_from_plaintext_stack_config_violates(stack_app_config):
    leaked = app_container(envs=["NODE_ID=app-0", "LOG_LEVEL=info", "API_TOKEN=abc123"])
    messages = check_resource("no-plaintext-secret-env", leaked)
    assert len(messages) == 1 and "API_TOKEN" in messages[0]
    assert "abc123" not in messages[0], "a violation never echoes the secret value"


def test_docker_generated_secret_env_passes(stack_app_config):
    assert check_resource("no-plaintext-secret-env", app_container()) == []


def test_swarm_secret_env_from_plaintext_stack_config_violates(stack_app_config):
    messages = check_resource("no-plaintext-secret-env", swarm_app(env={"LOG_LEVEL": "info", "API_TOKEN": "abc123"}))
    assert len(messages) == 1 and "API_TOKEN" in messages[0] and "abc123" not in messages[0]
    assert check_resource("no-plaintext-secret-env", swarm_app()) == []


def test_swarm_role_scoped_rules_skip_other_services():
    assert check_resource("app-health-checks", swarm_member()) == NOT_APPLICABLE
    assert check_resource("db-no-public-access", swarm_app()) == NOT_APPLICABLE
    assert check_resource("stateful-resources-protected", swarm_app()) == NOT_APPLICABLE
    assert check_resource("lb-active-health-checks", Res(DOCKER_SERVICE_CONFIG, {"data": ""}, component=SWARM_PATRONI_DATABASE_COMPONENT)) == NOT_APPLICABLE


# ---------------------------------------------------------------- stack policies

STACK_CASES = [
    ("app-min-replicas", [app_container("app-0"), app_container("app-1")], False),
    ("app-min-replicas", [app_container("app-0")], True),
    ("app-min-replicas", [container_app()], False),
    ("app-min-replicas", [replace_in(container_app(), "template.scale.minReplicas", 1)], True),
    ("db-streaming-replica", [db_container("db-primary"), db_container("db-replica-0")], False),
    ("db-streaming-replica", [db_container("db-primary")], True),
    # Patroni: one member leads, the others stream from it; etcd members are no DB nodes.
    ("db-streaming-replica", [patroni_member("db-0"), patroni_member("db-1"), *map(etcd_member, ["etcd-0", "etcd-1", "etcd-2"])], False),
    ("db-streaming-replica", [patroni_member("db-0"), *map(etcd_member, ["etcd-0", "etcd-1", "etcd-2"])], True),
    ("db-streaming-replica", [pg_server(), pg_read_replica()], False),
    ("db-streaming-replica", [pg_server()], True),
    ("db-secure-transport", [pg_server(), pg_read_replica(), secure_transport("on")], False),
    ("db-secure-transport", [pg_server(), secure_transport("off")], True),
    ("db-secure-transport", [pg_server()], True),
    # After `pulumi up`, stack rules see state: create-only inputs gone, API names instead.
    ("db-streaming-replica", [Res(AZURE_PG_SERVER, {"replicationRole": "Primary"}), Res(AZURE_PG_SERVER, {"replicationRole": "AsyncReplica"})], False),
    ("db-streaming-replica", [Res(AZURE_PG_SERVER, {"replicationRole": "Primary"})], True),
    ("db-secure-transport", [Res(AZURE_PG_SERVER, {"replicationRole": "Primary"}), Res(AZURE_PG_CONFIGURATION, {"name": "require_secure_transport", "value": "ON"})], False),
    ("db-secure-transport", [Res(AZURE_PG_SERVER, {"replicationRole": "Primary"}), Res(AZURE_PG_CONFIGURATION, {"name": "require_secure_transport", "value": "OFF"})], True),
    # Swarm: the app service's replicas, the Patroni members as PostgreSQL nodes.
    ("app-min-replicas", [swarm_app(replicas=3)], False),
    ("app-min-replicas", [swarm_app(replicas=1)], True),
    ("db-streaming-replica", [swarm_member("db-0"), swarm_member("db-1", "swarm-2")], False),
    ("db-streaming-replica", [swarm_member("db-0"), swarm_member("etcd-0", component=SWARM_ETCD_COMPONENT)], True),
    # Spread: replicas capped per node, every member pinned to a node of its own.
    ("swarm-spread", [swarm_app(), *(swarm_member(f"db-{i}", f"swarm-{i + 1}") for i in range(3)),
                      *(swarm_member(f"etcd-{i}", f"swarm-{i + 1}", SWARM_ETCD_COMPONENT) for i in range(3))], False),
    ("swarm-spread", [swarm_app(replicas=3, max_per_node=2), swarm_member("db-0", "swarm-1"), swarm_member("etcd-0", "swarm-1", SWARM_ETCD_COMPONENT)], False),
    ("swarm-spread", [swarm_app(replicas=3, max_per_node=3)], True),
    ("swarm-spread", [replace_in(swarm_app(), "taskSpec.placement", {})], True),
    ("swarm-spread", [swarm_member("db-0", "swarm-1"), swarm_member("db-1", "swarm-1")], True),
    ("swarm-spread", [replace_in(swarm_member("etcd-0", component=SWARM_ETCD_COMPONENT), "taskSpec.placement.constraints", ["node.role == worker"])], True),
]


@pytest.mark.parametrize(
    ("policy", "resources", "violates"),
    STACK_CASES,
    ids=[f"{p}-{'violates' if v else 'passes'}-{i}" for i, (p, _, v) in enumerate(STACK_CASES)],
)
def test_stack_policy(policy, resources, violates):
    messages = check_stack(policy, resources)
    assert messages != NOT_APPLICABLE
    assert bool(messages) is violates, messages
    for message in messages:
        assert "Fix:" in message


def test_min_replicas_threshold_from_config():
    two = [app_container("app-0"), app_container("app-1")]
    assert check_stack("app-min-replicas", two, {"minReplicas": 3})
    assert check_stack("app-min-replicas", [container_app()], {"minReplicas": 3}) == []


def test_stack_rules_not_applicable_without_their_resources():
    assert check_stack("db-secure-transport", [db_container()]) == NOT_APPLICABLE
    assert check_stack("app-min-replicas", [storage_account()]) == NOT_APPLICABLE
    assert check_stack("db-streaming-replica", [app_container()]) == NOT_APPLICABLE
    assert check_stack("swarm-spread", [app_container(), db_container()]) == NOT_APPLICABLE


# ---------------------------------------------------------------- unknown values (preview)


def test_unknown_value_the_rule_needs_cannot_be_judged():
    """pulumi_policy turns this error into an advisory 'can't run during preview' note."""
    with pytest.raises(UnknownValueError):
        check_resource("storage-min-tls", storage_account(minimumTlsVersion=UNKNOWN))
    with pytest.raises(UnknownValueError):
        check_resource("image-pinned", Res(DOCKER_REMOTE_IMAGE, {"name": UNKNOWN}))
    with pytest.raises(UnknownValueError):
        check_resource("db-zone-redundant-ha", pg_server(highAvailability={"mode": UNKNOWN}))


def test_unknown_value_the_rule_does_not_need_still_gets_a_verdict():
    """A connection string built from other resources' outputs is unknown in preview; an
    unknown env entry cannot carry a plaintext secret name, so the rules still decide."""
    container = app_container(envs=["NODE_ID=app-0", UNKNOWN])
    assert check_resource("app-health-checks", container) == []
    assert check_resource("no-plaintext-secret-env", container) == []
    assert check_stack("app-min-replicas", [container, app_container("app-1", envs=[UNKNOWN])]) == []
    gateway = replace_in(app_gateway(), "firewallPolicy.id", UNKNOWN)
    with pytest.raises(UnknownValueError):
        check_resource("lb-waf-enabled", gateway)
    assert check_resource("lb-active-health-checks", gateway) == []
