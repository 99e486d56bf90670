"""The swarm platform under the recording mocks: every service's real inputs for the
shipped onprem stack and its variants, and every swarm config rule as one clear line."""

from __future__ import annotations

import base64
import copy
import json
import tempfile
from pathlib import Path

import pulumi
import pytest
import yaml

from components.config import ETCD_IMAGE, HAPROXY_IMAGE
from components.swarm import etcd_leader_job
from components.swarm.common import swarm_secret
from loopback import nodes
from plan.engine import PROJECT_DIR, ProgramError, is_secret, run_program, stack_file_config
from plan.fakes import FAKE_SECRET_PREFIX, fake_pem, fake_repo_digest
from tests.unit.mock_run import CONFIGURED_TLS, CONFIGURED_TLS_SECRET_KEYS

SERVICE = "docker:index/service:Service"
SERVICE_CONFIG = "docker:index/serviceConfig:ServiceConfig"
SECRET = "docker:index/secret:Secret"
NETWORK = "docker:index/network:Network"
NODES = ["swarm-1", "swarm-2", "swarm-3"]

ONPREM = yaml.safe_load((PROJECT_DIR / "Pulumi.onprem.yaml").read_text())


def onprem_config(**changes) -> dict[str, str]:
    """The onprem stack file as the engine passes it, with `hastack:<key>` values merged in."""
    doc = copy.deepcopy(ONPREM)
    for key, value in changes.items():
        full = f"hastack:{key}"
        current = doc["config"].get(full)
        doc["config"][full] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "Pulumi.onprem.yaml"
        path.write_text(yaml.safe_dump(doc))
        return stack_file_config(path)


def run_onprem(secret_keys=(), **changes):
    return run_program(onprem_config(**changes), "onprem", secret_keys=list(secret_keys))


@pytest.fixture(scope="module")
def onprem():
    return run_onprem()


def service(run, name):
    return next(r for r in run.of_type(SERVICE) if r.name == name)


def spec(resource) -> dict:
    return resource.inputs["taskSpec"]["containerSpec"]


def config_text(run, config_id: str) -> str:
    config = next(r for r in run.of_type(SERVICE_CONFIG) if f"{r.name}-id" == config_id)
    return base64.b64decode(config.inputs["data"]).decode()


def mounted_config(run, resource, path: str) -> str:
    entry = next(c for c in spec(resource)["configs"] if c["fileName"] == path)
    return config_text(run, entry["configId"])


# ---------------------------------------------------------------- engine and networks


def test_every_resource_goes_through_the_manager_provider(onprem):
    provider = next(r for r in onprem.resources if r.type == "pulumi:providers:docker")
    assert provider.inputs["host"] == "ssh://deploy@swarm-1.internal"
    docker_resources = [r for r in onprem.resources if r.type.startswith("docker:")]
    assert docker_resources and all(r.provider.startswith(provider.urn) for r in docker_resources)


def test_overlays_app_and_encrypted_data(onprem):
    networks = {r.name: r.inputs for r in onprem.of_type(NETWORK)}
    assert networks["network-app"]["driver"] == "overlay"
    assert networks["network-app"]["ipamConfigs"] == [{"subnet": "10.231.0.0/24"}]
    assert networks["network-data"]["driver"] == "overlay"
    assert networks["network-data"]["options"] == {"encrypted": "true"}
    # Referenced by id: the LB on the app overlay only, the app on both, the DB on data only.
    attached = {r.name: [n["id"] for n in r.inputs["taskSpec"]["networksAdvanceds"]] for r in onprem.of_type(SERVICE)}
    assert attached["lb-service"] == ["network-app-id"]
    assert attached["app-service"] == ["network-app-id", "network-data-id"]
    for member in ("db-0", "db-1", "db-2", "etcd-0", "etcd-1", "etcd-2"):
        assert attached[member] == ["network-data-id"]


# ---------------------------------------------------------------- app


def test_app_is_one_replicated_service_updated_start_first_with_rollback(onprem):
    app = service(onprem, "app-service")
    assert app.inputs["name"] == "hastack-onprem-app"
    assert app.inputs["mode"] == {"replicated": {"replicas": 3}}
    assert app.inputs["taskSpec"]["placement"] == {"maxReplicas": 2}
    update, rollback = app.inputs["updateConfig"], app.inputs["rollbackConfig"]
    assert update == {"parallelism": 1, "order": "start-first", "failureAction": "rollback", "monitor": "17s",
                      "delay": "10s", "maxFailureRatio": "0"}
    assert rollback["order"] == "start-first" and rollback["parallelism"] == 1 and rollback["failureAction"] == "pause"
    # The monitor window covers the healthcheck failing a new task: retries x (interval + timeout).
    health = spec(app)["healthcheck"]
    window = int(update["monitor"].rstrip("s"))
    assert window >= health["retries"] * (int(health["interval"].rstrip("s")) + int(health["timeout"].rstrip("s")))


def test_app_healthcheck_is_liveness_never_readiness(onprem):
    health = spec(service(onprem, "app-service"))["healthcheck"]
    assert health["tests"][0] == "CMD" and "http://127.0.0.1:8000/livez" in health["tests"][-1]
    assert health["tests"][1:] == ONPREM["config"]["hastack:app"]["healthcheckCommand"], "the configured command"
    assert "/readyz" not in json.dumps(health), "a DB outage must not make Swarm kill every replica"


def test_app_image_is_pinned_by_the_digest_pulled_on_the_manager(onprem):
    assert spec(service(onprem, "app-service"))["image"] == fake_repo_digest("registry.internal:5000/hastack-app:1.0.0")
    assert spec(service(onprem, "lb-service"))["image"] == fake_repo_digest(HAPROXY_IMAGE)
    assert spec(service(onprem, "etcd-0"))["image"] == fake_repo_digest(ETCD_IMAGE)
    for image in onprem.of_type("docker:index/remoteImage:RemoteImage"):
        assert image.inputs["keepLocally"] is True


def test_app_env_node_id_template_and_secrets_only_as_files(onprem):
    app = service(onprem, "app-service")
    env = spec(app)["env"]
    assert env["NODE_ID"] == "app-{{.Task.Slot}}"
    assert env["PORT"] == "8000" and env["STORAGE_PATH"] == "/app/uploads" and env["LOG_LEVEL"] == "info"
    # The reference app waits out a switchover; the node drills run it with the same wait.
    assert env["WRITER_WAIT_S"] == nodes.WRITER_WAIT_S
    names = ["DATABASE_URL", "DATABASE_READ_URL", "JWT_SECRET", "SESSION_SECRET"]
    for name in names:
        assert env[f"{name}_FILE"] == f"/run/secrets/{name}"
        assert name not in env
    assert FAKE_SECRET_PREFIX not in json.dumps(app.inputs), "no secret value in the service spec"
    mounted = {s["fileName"]: s for s in spec(app)["secrets"]}
    assert sorted(mounted) == sorted(names)
    for entry in mounted.values():
        assert entry["secretId"].endswith("-id") and entry["fileMode"] == 0o444


def test_swarm_secrets_are_auto_named_secret_and_hold_the_value(onprem):
    secrets = {r.name: r for r in onprem.of_type(SECRET)}
    assert "name" not in secrets["app-database-url"].inputs, "auto-named: a new value is a new secret"
    assert is_secret(secrets["app-database-url"].wire_inputs["data"])
    url = base64.b64decode(secrets["app-database-url"].inputs["data"]).decode()
    assert url == ("postgresql://app:fake-secret-secrets-db-app@hastack-onprem-db-0:5432,hastack-onprem-db-1:5432,"
                   "hastack-onprem-db-2:5432/app?target_session_attrs=read-write&sslmode=verify-full"
                   "&sslrootcert=/etc/hastack/database-ca.crt&tcp_user_timeout=1000")
    jwt = base64.b64decode(secrets["app-jwt-secret"].inputs["data"]).decode()
    assert jwt == f"{FAKE_SECRET_PREFIX}secrets-app-jwt-secret"


def test_app_mounts_the_nfs_volume_every_node_creates_alike(onprem):
    (mount,) = spec(service(onprem, "app-service"))["mounts"]
    assert mount == {
        "type": "volume", "source": "hastack-onprem-uploads", "target": "/app/uploads", "readOnly": False,
        "volumeOptions": {"driverName": "local", "driverOptions": {
            "type": "nfs", "o": "addr=nfs.internal,nfsvers=4.1,rw,hard,timeo=600", "device": ":/exports/hastack-uploads"}},
    }


def test_plugin_storage_variant_uses_the_named_driver():
    run = run_onprem(storage={"driver": "plugin", "nfs": None, "plugin": {"name": "rexray/efs", "options": {"volumetype": "gp2"}}})
    (mount,) = spec(service(run, "app-service"))["mounts"]
    assert mount["volumeOptions"] == {"driverName": "rexray/efs", "driverOptions": {"volumetype": "gp2"}}


# ---------------------------------------------------------------- load balancer


def test_lb_is_global_with_host_mode_ports_and_stop_first(onprem):
    lb = service(onprem, "lb-service")
    assert lb.inputs["mode"] == {"global": True}
    assert lb.inputs["endpointSpec"]["ports"] == [
        {"targetPort": 8080, "publishedPort": 8080, "publishMode": "host"},
        {"targetPort": 8404, "publishedPort": 8404, "publishMode": "host"},
        # HTTPS (loadBalancer.tls, on in onprem), bound on each node like the others.
        {"targetPort": 8443, "publishedPort": 8443, "publishMode": "host"},
    ]
    assert lb.inputs["updateConfig"]["order"] == "stop-first"
    assert lb.inputs["rollbackConfig"]["order"] == "stop-first"


def lb_certificate_secret(run):
    """The LB's certificate + key mount and the Swarm secret it names."""
    (mount,) = spec(service(run, "lb-service"))["secrets"]
    secret = next(r for r in run.of_type(SECRET) if f"{r.name}-id" == mount["secretId"])
    return mount, secret


def test_lb_serves_https_with_the_stack_ca_certificate_as_a_secret_only_haproxy_reads(onprem):
    mount, secret = lb_certificate_secret(onprem)
    # /run/secrets/site.pem, owned by the image's haproxy user (uid 99), which HAProxy runs as.
    assert (mount["fileName"], mount["fileUid"], mount["fileMode"]) == ("site.pem", "99", 0o400)
    assert secret.name == "lb-certificate" and "name" not in secret.inputs, "auto-named: a renewal is a new secret"
    assert is_secret(secret.wire_inputs["data"])
    bundle = base64.b64decode(secret.inputs["data"]).decode()
    # The stack CA's certificate for the edge, then its key.
    assert bundle.startswith(fake_pem("CERTIFICATE", "lb-server-cert") + "\n-----BEGIN ")
    assert bundle.rstrip().endswith("PRIVATE KEY-----")
    # The certificate names every node a client may enter at.
    request = next(r for r in onprem.resources if r.type == "tls:index/certRequest:CertRequest" and r.name == "lb-server-request")
    assert (request.inputs["dnsNames"], request.inputs.get("ipAddresses", [])) == (NODES, [])
    assert request.inputs["subject"]["commonName"] == "swarm-1"
    assert FAKE_SECRET_PREFIX not in json.dumps(service(onprem, "lb-service").inputs), "no key in the service spec"


def test_lb_config_binds_tls_redirects_http_and_sends_hsts(onprem):
    cfg = mounted_config(onprem, service(onprem, "lb-service"), "/usr/local/etc/haproxy/haproxy.cfg")
    assert "    bind *:8443 ssl crt /run/secrets/site.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2\n" in cfg
    # Plain HTTP goes to the published HTTPS port, not the container's.
    assert "http-request redirect location https://%[var(txn.host_only)]:8443%[pathq] code 308 unless { ssl_fc }" in cfg
    assert 'set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc }' in cfg


def test_a_configured_certificate_reaches_the_lb_only_as_its_secret():
    run = run_onprem(secret_keys=CONFIGURED_TLS_SECRET_KEYS, loadBalancer={"tls": CONFIGURED_TLS})
    _, secret = lb_certificate_secret(run)
    assert base64.b64decode(secret.inputs["data"]).decode() == CONFIGURED_TLS["certificate"] + "\n" + CONFIGURED_TLS["key"]
    assert is_secret(secret.wire_inputs["data"])
    assert "lb-server-cert" not in {r.name for r in run.resources}, "no stack-CA certificate for the edge then"
    assert run.outputs["urls"] == [f"https://{node}:8443" for node in NODES]


def test_without_tls_the_lb_serves_plain_http_and_mounts_no_certificate():
    run = run_onprem(loadBalancer={"tls": {"enabled": False}})
    lb = service(run, "lb-service")
    assert [p["targetPort"] for p in lb.inputs["endpointSpec"]["ports"]] == [8080, 8404]
    assert "secrets" not in spec(lb)
    assert " ssl " not in mounted_config(run, lb, "/usr/local/etc/haproxy/haproxy.cfg")
    assert "lb-server-cert" not in {r.name for r in run.resources}
    assert run.outputs["urls"] == [f"http://{node}:8080" for node in NODES]


def test_lb_config_discovers_the_app_tasks_through_docker_dns(onprem):
    lb = service(onprem, "lb-service")
    (entry,) = spec(lb)["configs"]
    assert entry["fileName"] == "/usr/local/etc/haproxy/haproxy.cfg"
    cfg = config_text(onprem, entry["configId"])
    # Writes and reads: two backends over the same tasks, checked on /readyz and /readyz/read.
    assert cfg.count("    server-template app 6 tasks.hastack-onprem-app:8000 check\n") == 2
    assert "option httpchk GET /readyz/read" in cfg
    assert "nameserver dns 127.0.0.11:53" in cfg
    assert "option httpchk GET /readyz" in cfg, "readiness lives in HAProxy"


def test_a_changed_lb_config_gets_a_new_name_and_so_rolls_the_lb(onprem):
    before = next(r for r in onprem.of_type(SERVICE_CONFIG) if r.name == "lb-haproxy-cfg").inputs["name"]
    changed = run_onprem(loadBalancer={"healthCheck": {"intervalMs": 1000, "fall": 2, "rise": 2}, "tls": {"enabled": False}})
    after = next(r for r in changed.of_type(SERVICE_CONFIG) if r.name == "lb-haproxy-cfg").inputs["name"]
    assert before.startswith("hastack-onprem-lb-haproxy-") and after.startswith("hastack-onprem-lb-haproxy-")
    assert before != after
    assert spec(service(changed, "lb-service"))["configs"][0]["configName"] == after


# ---------------------------------------------------------------- database and etcd


def test_patroni_members_pinned_to_distinct_nodes_with_node_local_data(onprem):
    for index, node in enumerate(NODES):
        member = service(onprem, f"db-{index}")
        assert member.inputs["name"] == f"hastack-onprem-db-{index}"
        assert member.inputs["taskSpec"]["placement"] == {"constraints": [f"node.hostname == {node}"]}
        assert member.inputs["endpointSpec"] == {"mode": "dnsrr"}
        assert "ports" not in member.inputs["endpointSpec"]
        # The data volume, then pgBackRest's repository and socket dir (test_swarm_backups.py).
        data, *backups = spec(member)["mounts"]
        assert data == {"type": "volume", "source": f"hastack-onprem-db-{index}-data", "target": "/var/lib/postgresql/data",
                        "readOnly": False, "volumeOptions": {"driverName": "local"}}
        assert [m["target"] for m in backups] == ["/var/lib/pgbackrest", "/var/run/postgresql"]
        assert member.protect and member.retain_on_delete


def test_patroni_members_stop_with_sigint_and_probe_liveness(onprem):
    member = spec(service(onprem, "db-0"))
    assert member["stopSignal"] == "SIGINT"
    assert int(member["stopGracePeriod"].rstrip("s")) >= 60
    assert "/liveness" in member["healthcheck"]["tests"][-1]
    assert "/primary" not in json.dumps(member["healthcheck"])
    assert member["init"] is True
    assert member["commands"] == ["/usr/local/bin/hastack-secret-files", "patroni", "/etc/patroni/patroni.yml"]
    assert member["env"] == {
        "PATRONI_SUPERUSER_PASSWORD_FILE": "/run/secrets/PATRONI_SUPERUSER_PASSWORD",
        "PATRONI_REPLICATION_PASSWORD_FILE": "/run/secrets/PATRONI_REPLICATION_PASSWORD",
        "APP_DB_PASSWORD_FILE": "/run/secrets/APP_DB_PASSWORD",
        # postgres_exporter's pg_monitor role (monitoring is on by default).
        "MONITOR_DB_PASSWORD_FILE": "/run/secrets/MONITOR_DB_PASSWORD",
        # pgBackRest's repository passphrase (backups are on in onprem).
        "PGBACKREST_REPO1_CIPHER_PASS_FILE": "/run/secrets/PGBACKREST_REPO1_CIPHER_PASS",
    }
    assert {s["fileUid"] for s in member["secrets"]} == {"999"} and {s["fileMode"] for s in member["secrets"]} == {0o400}


def test_patroni_yml_sets_connect_addresses_sync_and_failsafe(onprem):
    for index in range(3):
        document = yaml.safe_load(mounted_config(onprem, service(onprem, f"db-{index}"), "/etc/patroni/patroni.yml"))
        name = f"hastack-onprem-db-{index}"
        assert document["name"] == name and document["scope"] == "hastack-onprem-db"
        assert document["restapi"]["connect_address"] == f"{name}:8008"
        assert document["postgresql"]["connect_address"] == f"{name}:5432"
        assert document["etcd3"]["hosts"] == [f"hastack-onprem-etcd-{i}:2379" for i in range(3)]
        dcs = document["bootstrap"]["dcs"]
        assert dcs["synchronous_mode"] is True and dcs["failsafe_mode"] is True
        assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"]) == (5, 1, 2)
        # pg_hba admits the encrypted data overlay only.
        assert any("10.232.0.0/24" in line for line in document["postgresql"]["pg_hba"])


def test_patroni_members_serve_tls_with_a_certificate_naming_every_member(onprem):
    request = next(r for r in onprem.resources if r.type == "tls:index/certRequest:CertRequest" and r.name == "db-server-request")
    assert request.inputs["dnsNames"] == [f"hastack-onprem-db-{i}" for i in range(3)]
    member = service(onprem, "db-0")
    document = yaml.safe_load(mounted_config(onprem, member, "/etc/patroni/patroni.yml"))
    parameters = document["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert parameters["ssl"] == "on" and parameters["ssl_key_file"] == "/run/secrets/server.key"
    assert parameters["ssl_cert_file"] == "/etc/postgresql/hastack/server.crt"
    assert all(line.startswith(("local", "hostssl")) for line in document["postgresql"]["pg_hba"])
    assert document["postgresql"]["authentication"]["replication"]["sslmode"] == "verify-full"
    key = next(s for s in spec(member)["secrets"] if s["fileName"] == "server.key")
    assert key["fileUid"] == "999" and key["fileMode"] == 0o400, "postgres refuses a key others can read"
    paths = {c["fileName"] for c in spec(member)["configs"]}
    assert {"/etc/postgresql/hastack/server.crt", "/etc/postgresql/hastack/ca.crt"} <= paths
    app_configs = {c["fileName"] for c in spec(service(onprem, "app-service"))["configs"]}
    assert app_configs == {"/etc/hastack/database-ca.crt"}
    assert "caCertificate" in onprem.outputs


def test_patroni_members_update_one_at_a_time(onprem):
    urns = {service(onprem, f"db-{i}").name: service(onprem, f"db-{i}").urn for i in range(3)}
    assert urns["db-0"] in service(onprem, "db-1").dependencies
    assert urns["db-1"] in service(onprem, "db-2").dependencies
    assert service(onprem, "db-0").inputs["updateConfig"]["order"] == "stop-first"


def test_etcd_three_members_on_three_nodes(onprem):
    for index, node in enumerate(NODES):
        member = service(onprem, f"etcd-{index}")
        assert member.inputs["taskSpec"]["placement"]["constraints"] == [f"node.hostname == {node}"]
        assert member.inputs["endpointSpec"] == {"mode": "dnsrr"}
        command = spec(member)["commands"]
        assert f"--name=hastack-onprem-etcd-{index}" in command
        assert f"--advertise-client-urls=http://hastack-onprem-etcd-{index}:2379" in command
        # LAN raft timing, which bounds how long a lost etcd leader delays a failover.
        assert "--heartbeat-interval=50" in command and "--election-timeout=500" in command
        assert "endpoint" in spec(member)["healthcheck"]["tests"] and "status" in spec(member)["healthcheck"]["tests"]
        assert member.protect


def test_chosen_member_nodes_and_unprotected_variant():
    run = run_onprem(
        protect=False,
        swarm={"nodes": ["a", "b", "c", "d"], "etcdNodes": ["b", "c", "d"], "databaseNodes": ["d", "a", "c"], "maxReplicasPerNode": 1},
        database={"synchronousMode": False},
    )
    pinned = {r.name: r.inputs["taskSpec"]["placement"]["constraints"][0] for r in run.of_type(SERVICE) if "constraints" in
              r.inputs["taskSpec"].get("placement", {})}
    assert pinned == {"etcd-0": "node.hostname == b", "etcd-1": "node.hostname == c", "etcd-2": "node.hostname == d",
                      "db-0": "node.hostname == d", "db-1": "node.hostname == a", "db-2": "node.hostname == c",
                      # Each member's volume exporter follows it (its data volume is node-local).
                      "monitoring-volumes-0": "node.hostname == d", "monitoring-volumes-1": "node.hostname == a",
                      "monitoring-volumes-2": "node.hostname == c",
                      # So do its backup scheduler, pgBackRest TLS server and backup report exporter
                      # (node-local data, socket, report).
                      **{f"{role}-{i}": f"node.hostname == {node}" for i, node in enumerate("dac")
                         for role in ("backup-db", "pgbackrest-db", "monitoring-backups")}}
    assert service(run, "app-service").inputs["taskSpec"]["placement"] == {"maxReplicas": 1}
    assert not service(run, "db-0").protect
    document = yaml.safe_load(mounted_config(run, service(run, "db-0"), "/etc/patroni/patroni.yml"))
    assert document["bootstrap"]["dcs"]["synchronous_mode"] is False
    assert run.outputs["urls"] == ["https://a:8443", "https://b:8443", "https://c:8443", "https://d:8443"]


def test_etcd_leader_placement_runs_the_job_every_five_seconds_with_the_stack_topology():
    run = run_onprem(swarm={"nodes": ["a", "b", "c", "d"], "etcdNodes": ["b", "c", "d"], "databaseNodes": ["d", "a", "c"]})
    placement = service(run, "etcd-leader-placement")
    container = spec(placement)
    assert placement.inputs["mode"] == {"replicated": {"replicas": 1}}
    assert "placement" not in placement.inputs["taskSpec"], "any node may run it; Swarm moves it off a lost node"
    assert container["image"] == service(run, "db-0").inputs["taskSpec"]["containerSpec"]["image"]
    assert container["commands"] == ["supercronic", "/etc/hastack/etcd-leader-crontab"]
    assert mounted_config(run, placement, "/etc/hastack/etcd-leader-crontab") == \
        "*/5 * * * * * * python3 /etc/hastack/etcd-leader-job.py\n"
    assert mounted_config(run, placement, "/etc/hastack/etcd-leader-job.py") == Path(etcd_leader_job.__file__).read_text()
    etcd = [f"hastack-onprem-etcd-{i}" for i in range(3)]
    db = [f"hastack-onprem-db-{i}" for i in range(3)]
    assert container["env"] == {
        "ETCD_MEMBER_NODES": f"{etcd[0]}=b,{etcd[1]}=c,{etcd[2]}=d",
        "ETCD_CLIENT_URLS": ",".join(f"{member}=http://{member}:2379" for member in etcd),
        "PATRONI_MEMBER_NODES": f"{db[0]}=d,{db[1]}=a,{db[2]}=c",
        "PATRONI_LEADER_KEY": "/service/hastack-onprem-db/leader",
    }
    # The job reads the same environment the service sets.
    topology = etcd_leader_job.Topology.from_env(container["env"])
    assert topology.patroni_nodes[db[0]] == "d" and topology.etcd_urls[etcd[2]] == f"http://{etcd[2]}:2379"
    data = next(r for r in run.of_type(NETWORK) if r.name == "network-data")
    assert placement.inputs["taskSpec"]["networksAdvanceds"] == [{"id": f"{data.name}-id"}]
    document = yaml.safe_load(mounted_config(run, service(run, "db-0"), "/etc/patroni/patroni.yml"))
    assert f"{document['namespace']}{document['scope']}/leader" == container["env"]["PATRONI_LEADER_KEY"]


# ---------------------------------------------------------------- outputs


def test_outputs_entry_urls_services_members_and_secret_urls(onprem):
    outputs = onprem.outputs
    assert outputs["urls"] == [f"https://{node}:8443" for node in NODES]
    assert outputs["statsUrls"] == [f"http://{node}:8404/stats" for node in NODES]
    assert outputs["services"] == {
        "app": "hastack-onprem-app", "lb": "hastack-onprem-lb",
        "db": [f"hastack-onprem-db-{i}" for i in range(3)], "etcd": [f"hastack-onprem-etcd-{i}" for i in range(3)],
        "etcdLeaderPlacement": "hastack-onprem-etcd-leader-placement",
    }
    assert outputs["dbMembers"] == [f"hastack-onprem-db-{i}:5432" for i in range(3)]
    assert is_secret(onprem.wire_outputs["databaseUrl"]) and is_secret(onprem.wire_outputs["databaseReadUrl"])
    assert "target_session_attrs=prefer-standby&sslmode=verify-full" in outputs["databaseReadUrl"]


@pytest.mark.usefixtures("pulumi_mocks_dev")
@pulumi.runtime.test
def test_swarm_secret_data_is_a_pulumi_secret_of_the_base64_value():
    secret = swarm_secret("probe", pulumi.Output.secret("s3cret"), None)

    def check(args):
        data, is_secret_data = args
        assert base64.b64decode(data).decode() == "s3cret"
        assert is_secret_data

    return pulumi.Output.all(secret.data, pulumi.Output.from_input(secret.data.is_secret())).apply(check)


# ---------------------------------------------------------------- config rules


SWARM_ERRORS = [
    ("no-host", {"swarm": {"host": None}}, "hastack: platform 'swarm' needs swarm.host"),
    ("bad-host", {"swarm": {"host": "unix:///var/run/docker.sock"}}, "hastack:swarm.host: host must be a manager's ssh://"),
    ("two-nodes", {"swarm": {"nodes": ["swarm-1", "swarm-2"]}}, "hastack: swarm.nodes must name at least 3 distinct nodes"),
    ("duplicate-node", {"swarm": {"nodes": ["swarm-1", "swarm-1", "swarm-2"]}}, "hastack:swarm.nodes: node names must be distinct"),
    ("etcd-two-nodes", {"swarm": {"etcdNodes": ["swarm-1", "swarm-2"]}}, "hastack:swarm: etcdNodes must name exactly 3 distinct nodes"),
    ("etcd-shared-node", {"swarm": {"etcdNodes": ["swarm-1", "swarm-1", "swarm-2"]}}, "hastack:swarm.etcdNodes: node names must be distinct"),
    ("db-unknown-node", {"swarm": {"databaseNodes": ["swarm-1", "swarm-2", "swarm-9"]}}, "hastack:swarm: databaseNodes ['swarm-9'] are not in nodes"),
    ("db-members-outnumber-nodes", {"database": {"replicas": 3}}, "hastack: 1 + database.replicas = 4 Patroni members need 4 distinct nodes"),
    ("local-storage", {"storage": {"driver": "local", "nfs": None}}, "hastack: storage.driver 'local' is a different volume on every node"),
    ("start-first-deadlock", {"swarm": {"maxReplicasPerNode": 1}}, "hastack: app.replicas (3) fills all 3 nodes x swarm.maxReplicasPerNode (1)"),
    ("manual-failover", {"database": {"failover": "manual", "replicas": 1}}, "hastack: platform 'swarm' runs database.mode 'self-hosted' with failover 'patroni' only"),
    ("no-patroni-image", {"swarm": {"patroniImage": None}}, "hastack: platform 'swarm' needs app.image and swarm.patroniImage"),
    ("patroni-image-latest", {"swarm": {"patroniImage": "registry.internal:5000/hastack-patroni:latest"}}, "hastack:swarm.patroniImage: image tag 'latest' is not pinned"),
    ("plugin-without-settings", {"storage": {"driver": "plugin", "nfs": None}}, "hastack:storage: driver 'plugin' needs plugin: {name, options}"),
    ("tls-port-clash", {"loadBalancer": {"tls": {"port": 8404}}}, "hastack:loadBalancer: tls.port must differ from port and statsPort"),
    ("local-backup-repository", {"backups": {"repository": {"type": "volume"}}},
     "hastack: backups.repository.volume.driver 'local' keeps the backups on the disk of whichever node"),
    ("backup-plugin-without-settings", {"backups": {"repository": {"volume": {"driver": "plugin"}}}},
     "hastack:backups.repository.volume: driver 'plugin' needs plugin: {name, options}"),
    ("plugin-named-local", {"storage": {"driver": "plugin", "nfs": None, "plugin": {"name": "local"}}}, "hastack:storage.plugin.name: name must be a volume plugin's driver name"),
]


@pytest.mark.parametrize(("changes", "expected"), [c[1:] for c in SWARM_ERRORS], ids=[c[0] for c in SWARM_ERRORS])
def test_swarm_config_errors_are_one_line_and_register_nothing(changes, expected):
    with pytest.raises(ProgramError) as caught:
        run_onprem(**changes)
    problems = str(caught.value).splitlines()[1:]
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]
    assert caught.value.run.resources == []


def test_plugin_backup_repository_is_swarm_only():
    raw = {"hastack:backups": json.dumps({"repository": {"volume": {"driver": "plugin", "plugin": {"name": "rexray/efs"}}}})}
    with pytest.raises(ProgramError) as caught:
        run_program(raw, "dev")
    assert "backups.repository.volume.driver 'plugin' applies to platform 'swarm' only" in str(caught.value)
    assert caught.value.run.resources == []


def test_plugin_storage_is_swarm_only():
    raw = {"hastack:storage": json.dumps({"driver": "plugin", "plugin": {"name": "rexray/efs"}})}
    with pytest.raises(ProgramError) as caught:
        run_program(raw, "dev")
    assert "storage.driver 'plugin' applies to platform 'swarm' only" in str(caught.value)
    assert caught.value.run.resources == []


def test_a_swarm_stack_named_prod_needs_a_real_certificate():
    with pytest.raises(ProgramError) as caught:
        run_program(onprem_config(), "prod")
    problems = str(caught.value).splitlines()[1:]
    assert problems == [problems[0]] and problems[0].startswith("hastack: a prod stack needs a real certificate"), problems
    assert caught.value.run.resources == []
