"""The Azure stacks as shipped (Pulumi.prod.yaml, Pulumi.staging.yaml), under mocks.

Each test reads the inputs the engine would receive (camelCase, as a policy pack sees
them) and the resource options (dependsOn, protect, ignoreChanges) of the real program.
"""

from __future__ import annotations

import pytest

from components.azure.database import SERVER_PARAMETERS
from components.azure.network import plan_subnets
from components.azure.platform import resource_prefix
from plan.engine import is_secret
from plan.fakes import FAKE_ENVIRONMENT_DOMAIN, FAKE_SECRET_PREFIX, FAKE_SUBSCRIPTION_ID
from tests.unit.azure.helpers import (
    ACTION_GROUP,
    CONFIGURATION,
    CONTAINER_APP,
    DATABASE,
    DIAGNOSTIC_SETTING,
    DNS_LINK,
    ENVIRONMENT,
    ENVIRONMENT_STORAGE,
    FILE_SHARE,
    GATEWAY,
    METRIC_ALERT,
    PRIVATE_ZONE,
    PUBLIC_IP,
    RECORD_SET,
    RESOURCE_GROUP,
    STAGING,
    STORAGE_ACCOUNT,
    WAF_POLICY,
    WORKSPACE,
    primary_server,
    replica_servers,
    resource_id,
    run_variant,
    subnet_named,
)


# ---------------------------------------------------------------- database


def test_prod_primary_is_zone_redundant_with_35_day_geo_backups(prod):
    server = primary_server(prod).inputs
    assert server["highAvailability"] == {"mode": "ZoneRedundant", "standbyAvailabilityZone": "2"}
    assert server["availabilityZone"] == "1"
    assert server["backup"] == {"backupRetentionDays": 35, "geoRedundantBackup": "Enabled"}
    assert server["sku"] == {"name": "Standard_D4ds_v5", "tier": "GeneralPurpose"}
    assert server["version"] == "16"
    assert server["storage"] == {"storageSizeGB": 256, "autoGrow": "Enabled"}


def test_staging_primary_runs_same_zone_ha_with_short_local_backups(staging):
    server = primary_server(staging).inputs
    assert server["highAvailability"]["mode"] == "SameZone"
    assert not server["highAvailability"].get("standbyAvailabilityZone")
    assert server["backup"] == {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"}
    assert server["sku"] == {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}


def test_servers_are_private_in_the_delegated_subnet_and_dns_zone(shipped):
    database_subnet = subnet_named(shipped, "database")
    assert database_subnet.inputs["delegations"] == [
        {"name": "postgres", "serviceName": "Microsoft.DBforPostgreSQL/flexibleServers"}
    ]
    zone = next(z for z in shipped.of_type(PRIVATE_ZONE) if z.name.endswith("-postgres-dns"))
    assert zone.inputs["privateZoneName"].endswith(".private.postgres.database.azure.com")
    for server in shipped.of_type("azure-native:dbforpostgresql:Server"):
        assert server.inputs["network"] == {
            "delegatedSubnetResourceId": resource_id(database_subnet),
            "privateDnsZoneArmResourceId": resource_id(zone),
            "publicNetworkAccess": "Disabled",
        }, server.name


def test_servers_wait_for_the_dns_zone_link(shipped):
    link = next(r for r in shipped.of_type(DNS_LINK) if r.name.endswith("-postgres-dns-link"))
    for server in shipped.of_type("azure-native:dbforpostgresql:Server"):
        assert link.urn in server.dependencies, server.name


def test_admin_password_is_generated_and_secret(shipped):
    server = primary_server(shipped)
    assert server.inputs["administratorLogin"] == "hastack_admin"
    assert is_secret(server.wire_inputs["administratorLoginPassword"])
    assert server.inputs["administratorLoginPassword"].startswith(FAKE_SECRET_PREFIX)


def test_failover_zone_swaps_are_not_drift(shipped):
    assert primary_server(shipped).ignore_changes[:2] == ["availabilityZone", "highAvailability.standbyAvailabilityZone"]
    for replica in replica_servers(shipped):
        assert replica.ignore_changes == ["availabilityZone"]


def test_server_parameters_are_written_one_after_another(shipped):
    parameters = shipped.of_type(CONFIGURATION)
    assert [(p.inputs["configurationName"], p.inputs["value"]) for p in parameters] == list(SERVER_PARAMETERS)
    assert ("require_secure_transport", "on") in SERVER_PARAMETERS
    assert ("log_checkpoints", "on") in SERVER_PARAMETERS
    previous = primary_server(shipped)
    for parameter in parameters:
        assert parameter.inputs["source"] == "user-override"
        assert previous.urn in parameter.dependencies, f"{parameter.name} does not wait for {previous.name}"
        # Only the one before it: anything else would be a second, parallel chain.
        assert [u for u in parameter.dependencies if shipped.by_urn(u).type == CONFIGURATION] == (
            [previous.urn] if previous.type == CONFIGURATION else []
        )
        previous = parameter


def test_replicas_come_after_the_last_parameter_one_at_a_time(shipped):
    last_parameter = shipped.of_type(CONFIGURATION)[-1]
    primary = primary_server(shipped)
    replicas = replica_servers(shipped)
    assert len(replicas) == 1
    previous_replica = None
    for replica in replicas:
        assert replica.inputs["createMode"] == "Replica"
        assert replica.inputs["sourceServerResourceId"] == resource_id(primary)
        assert last_parameter.urn in replica.dependencies
        assert "administratorLoginPassword" not in replica.inputs
        if previous_replica:
            assert previous_replica.urn in replica.dependencies
        previous_replica = replica
    # A different zone from the primary, so a zone outage leaves a reader.
    assert replicas[0].inputs["availabilityZone"] != primary.inputs["availabilityZone"]


def test_several_replicas_are_created_in_sequence():
    run = run_variant(STAGING, "staging", database={"replicas": 3})
    replicas = replica_servers(run)
    assert [r.name for r in replicas] == [f"hastack-staging-replica-{i}" for i in (1, 2, 3)]
    for earlier, later in zip(replicas, replicas[1:]):
        assert earlier.urn in later.dependencies
    assert len([a for a in run.of_type(METRIC_ALERT) if "lag-seconds" in a.name]) == 3


def test_app_database_is_created_after_the_parameters(shipped):
    database = shipped.one(DATABASE)
    assert database.inputs["databaseName"] == "app"
    assert shipped.of_type(CONFIGURATION)[-1].urn in database.dependencies


def test_connection_strings_are_secret_and_require_tls(shipped):
    outputs = shipped.outputs
    assert is_secret(shipped.wire_outputs["databaseUrl"])
    assert is_secret(shipped.wire_outputs["databaseReadUrl"])
    writer, reader = outputs["dbWriterFqdn"], outputs["dbReaderFqdns"][0]
    assert outputs["databaseUrl"].startswith("postgresql://app:")
    assert outputs["databaseUrl"].endswith(f"@{writer}:5432/app?sslmode=require")
    assert outputs["databaseReadUrl"].endswith(f"@{reader}:5432/app?sslmode=require")
    assert writer != reader


def test_without_replicas_reads_go_to_the_writer():
    run = run_variant(STAGING, "staging", database={"replicas": 0})
    assert replica_servers(run) == []
    assert run.outputs["dbReaderFqdns"] == []
    assert run.outputs["databaseReadUrl"] == run.outputs["databaseUrl"]
    assert not [a for a in run.of_type(METRIC_ALERT) if "lag" in a.name]


# ---------------------------------------------------------------- network


def test_subnets_are_carved_without_overlap():
    plan = plan_subnets("10.20.0.0/16")
    assert (plan.apps, plan.database, plan.gateway) == ("10.20.0.0/23", "10.20.2.0/24", "10.20.3.0/24")
    smallest = plan_subnets("10.40.16.0/20")
    assert (smallest.apps, smallest.database, smallest.gateway) == ("10.40.16.0/23", "10.40.18.0/24", "10.40.19.0/24")


def test_subnets_of_the_vnet_are_written_one_after_another(prod):
    apps, database, gateway = (subnet_named(prod, purpose) for purpose in ("apps", "database", "gateway"))
    assert apps.urn in database.dependencies
    assert database.urn in gateway.dependencies
    assert apps.inputs["addressPrefix"] == "10.20.0.0/23"
    assert gateway.inputs["addressPrefix"] == "10.20.3.0/24"
    assert "delegations" not in gateway.inputs


def test_an_existing_resource_group_is_used_not_created():
    run = run_variant(STAGING, "staging", azure={"resourceGroupName": "rg-shared-staging"})
    assert run.of_type(RESOURCE_GROUP) == []
    assert {r.inputs["resourceGroupName"] for r in run.resources if "resourceGroupName" in r.inputs} == {
        "rg-shared-staging"
    }
    assert run.outputs["resourceGroup"] == "rg-shared-staging"


# ---------------------------------------------------------------- app


def test_environment_is_internal_zone_redundant_in_the_apps_subnet(shipped):
    apps_subnet = subnet_named(shipped, "apps")
    assert apps_subnet.inputs["delegations"] == [{"name": "container-apps", "serviceName": "Microsoft.App/environments"}]
    environment = shipped.one(ENVIRONMENT).inputs
    assert environment["vnetConfiguration"] == {"infrastructureSubnetId": resource_id(apps_subnet), "internal": True}
    assert environment["zoneRedundant"] is True
    assert [(p["name"], p["workloadProfileType"]) for p in environment["workloadProfiles"]] == [("Consumption", "Consumption")]
    assert shipped.one(WORKSPACE).inputs["sku"] == {"name": "PerGB2018"}


def test_environment_domain_resolves_inside_the_vnet(shipped):
    zone = next(z for z in shipped.of_type(PRIVATE_ZONE) if z.name.endswith("-env-dns"))
    assert zone.inputs["privateZoneName"] == FAKE_ENVIRONMENT_DOMAIN
    wildcard = shipped.one(RECORD_SET).inputs
    assert wildcard["relativeRecordSetName"] == "*"
    assert wildcard["recordType"] == "A"
    assert wildcard["aRecords"] == [{"ipv4Address": "10.20.1.250"}]


@pytest.mark.parametrize("stack, replicas, max_replicas", [("prod", 3, 10), ("staging", 2, 4)])
def test_container_app_scales_from_the_configured_minimum(stack, replicas, max_replicas, prod, staging):
    run = {"prod": prod, "staging": staging}[stack]
    template = run.one(CONTAINER_APP).inputs["template"]
    assert template["scale"] == {"minReplicas": replicas, "maxReplicas": max_replicas}


def test_container_app_has_liveness_readiness_and_startup_probes(prod):
    container = prod.one(CONTAINER_APP).inputs["template"]["containers"][0]
    probes = {probe["type"]: probe for probe in container["probes"]}
    assert set(probes) == {"Liveness", "Readiness", "Startup"}
    assert probes["Liveness"]["httpGet"] == {"path": "/livez", "port": 8000}
    assert probes["Startup"]["httpGet"] == {"path": "/livez", "port": 8000}
    # Readiness is the LB health check: /readyz every 5 s, out after 2 failures, back after 2 passes.
    assert probes["Readiness"] == {
        "type": "Readiness",
        "httpGet": {"path": "/readyz", "port": 8000},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 2,
        "successThreshold": 2,
    }


def test_secrets_reach_the_app_as_secret_refs_never_as_values(shipped):
    app = shipped.one(CONTAINER_APP)
    secrets = app.wire_inputs["configuration"]["secrets"]
    app_secrets = [s["name"] for s in secrets if not s["name"].startswith("db-role-setup-")]
    assert sorted(app_secrets) == ["database-read-url", "database-url", "jwt-secret", "session-secret"]
    assert all(is_secret(s["value"]) for s in secrets)
    env = {e["name"]: e for e in app.inputs["template"]["containers"][0]["env"]}
    for name in ("DATABASE_URL", "DATABASE_READ_URL", "JWT_SECRET", "SESSION_SECRET"):
        assert env[name] == {"name": name, "secretRef": name.lower().replace("_", "-")}
    secret_values = {s["value"] for s in app.inputs["configuration"]["secrets"]}
    assert not secret_values & {e.get("value") for e in env.values()}
    assert "NODE_ID" not in env  # per replica: CONTAINER_APP_REPLICA_NAME (docs/azure.md)
    assert env["PORT"] == {"name": "PORT", "value": "8000"}


def test_app_has_a_system_assigned_identity_and_internal_ingress(shipped):
    app = shipped.one(CONTAINER_APP).inputs
    assert app["identity"] == {"type": "SystemAssigned"}
    assert app["configuration"]["ingress"] == {
        "external": True,
        "targetPort": 8000,
        "transport": "auto",
        "allowInsecure": False,
    }
    assert app["managedEnvironmentId"] == resource_id(shipped.one(ENVIRONMENT))


def test_shared_share_is_mounted_through_the_environment_storage(shipped):
    env_storage = shipped.one(ENVIRONMENT_STORAGE)
    template = shipped.one(CONTAINER_APP).inputs["template"]
    volume = template["volumes"][0]
    # The volume names the environment storage, not the file share.
    assert volume == {"name": "shared-files", "storageType": "AzureFile", "storageName": env_storage.inputs["storageName"]}
    assert template["containers"][0]["volumeMounts"] == [{"volumeName": "shared-files", "mountPath": "/app/uploads"}]
    azure_file = env_storage.inputs["properties"]["azureFile"]
    assert azure_file["shareName"] == shipped.one(FILE_SHARE).inputs["shareName"]
    assert azure_file["accessMode"] == "ReadWrite"
    assert is_secret(env_storage.wire_inputs["properties"]["azureFile"]["accountKey"])
    assert azure_file["accountKey"] == f"{FAKE_SECRET_PREFIX}storage-account-key"  # from the invoke mock


# ---------------------------------------------------------------- storage


def test_storage_is_premium_zrs_https_only_tls12_no_public_blob(shipped):
    account = shipped.one(STORAGE_ACCOUNT).inputs
    assert account["kind"] == "FileStorage"
    assert account["sku"] == {"name": "Premium_ZRS"}
    assert account["enableHttpsTrafficOnly"] is True
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["networkRuleSet"]["defaultAction"] == "Deny"
    assert account["networkRuleSet"]["virtualNetworkRules"] == [
        {"virtualNetworkResourceId": resource_id(subnet_named(shipped, "apps")), "action": "Allow"}
    ]
    assert 3 <= len(account["accountName"]) <= 24 and account["accountName"].isalnum()


@pytest.mark.parametrize("stack, quota", [("prod", 256), ("staging", 100)])
def test_file_share_quota_and_protocol_come_from_config(stack, quota, prod, staging):
    share = {"prod": prod, "staging": staging}[stack].one(FILE_SHARE).inputs
    assert share["shareQuota"] == quota
    assert share["enabledProtocols"] == "SMB"


def test_nfs_share_uses_the_account_path_form_and_no_key():
    run = run_variant(STAGING, "staging", storage={"protocol": "NFS"})
    account = run.one(STORAGE_ACCOUNT).inputs
    assert account["enableHttpsTrafficOnly"] is False  # NFS 4.1 on Azure Files is not TLS-wrapped
    share = run.one(FILE_SHARE).inputs
    assert share["enabledProtocols"] == "NFS"
    # An access tier on an NFS share fails with InvalidHeaderValue (pulumi-azure-native#786).
    assert "accessTier" not in share
    nfs = run.one(ENVIRONMENT_STORAGE).inputs["properties"]["nfsAzureFile"]
    name = account["accountName"]
    assert nfs == {"server": f"{name}.file.core.windows.net", "shareName": f"/{name}/shared", "accessMode": "ReadWrite"}
    assert run.one(CONTAINER_APP).inputs["template"]["volumes"][0]["storageType"] == "NfsAzureFile"


# ---------------------------------------------------------------- gateway


def test_gateway_is_zone_redundant_waf_v2_autoscaling_from_two(shipped):
    gateway = shipped.one(GATEWAY).inputs
    assert gateway["zones"] == ["1", "2", "3"]
    assert gateway["sku"] == {"name": "WAF_v2", "tier": "WAF_v2"}
    assert gateway["autoscaleConfiguration"]["minCapacity"] >= 2
    assert gateway["firewallPolicy"] == {"id": resource_id(shipped.one(WAF_POLICY))}
    waf = shipped.one(WAF_POLICY).inputs
    assert waf["policySettings"]["mode"] == "Prevention"
    assert waf["policySettings"]["state"] == "Enabled"
    assert waf["managedRules"]["managedRuleSets"] == [{"ruleSetType": "OWASP", "ruleSetVersion": "3.2"}]
    ip = shipped.one(PUBLIC_IP).inputs
    assert ip["sku"] == {"name": "Standard", "tier": "Regional"}
    assert ip["zones"] == ["1", "2", "3"]


def test_gateway_probe_checks_readiness_with_configured_timing(shipped):
    probe = shipped.one(GATEWAY).inputs["probes"][0]
    assert probe["path"] == "/readyz"
    # intervalMs 5000 / timeoutMs 3000 / fall 2 in both stack files.
    assert (probe["interval"], probe["timeout"], probe["unhealthyThreshold"]) == (5, 3, 2)
    assert probe["protocol"] == "Https"
    assert probe["pickHostNameFromBackendHttpSettings"] is True


def test_gateway_probe_rounds_sub_second_intervals_up_to_one_second():
    run = run_variant(STAGING, "staging", loadBalancer={"healthCheck": {"intervalMs": 500, "timeoutMs": 200, "fall": 3}})
    probe = run.one(GATEWAY).inputs["probes"][0]
    assert (probe["interval"], probe["timeout"], probe["unhealthyThreshold"]) == (1, 1, 3)


def test_gateway_backend_is_the_app_fqdn_with_host_name_override(shipped):
    gateway = shipped.one(GATEWAY).inputs
    fqdn = shipped.outputs["containerAppFqdn"]
    assert fqdn == f"{shipped.one(CONTAINER_APP).inputs['containerAppName']}.{FAKE_ENVIRONMENT_DOMAIN}"
    assert gateway["backendAddressPools"] == [{"name": "container-app", "backendAddresses": [{"fqdn": fqdn}]}]
    settings = gateway["backendHttpSettingsCollection"][0]
    assert settings["pickHostNameFromBackendAddress"] is True
    assert (settings["protocol"], settings["port"]) == ("Https", 443)


def test_gateway_waits_until_the_app_fqdn_resolves_in_the_vnet(shipped):
    gateway = shipped.one(GATEWAY)
    environment_link = next(r for r in shipped.of_type(DNS_LINK) if r.name.endswith("-env-dns-link"))
    assert shipped.one(RECORD_SET).urn in gateway.dependencies
    assert environment_link.urn in gateway.dependencies


def test_gateway_parts_refer_to_each_other_by_full_arm_id(shipped):
    gateway = shipped.one(GATEWAY).inputs
    own_id = (
        f"/subscriptions/{FAKE_SUBSCRIPTION_ID}/resourceGroups/{shipped.outputs['resourceGroup']}"
        f"/providers/Microsoft.Network/applicationGateways/{gateway['applicationGatewayName']}"
    )
    rule = gateway["requestRoutingRules"][0]
    assert rule["httpListener"] == {"id": f"{own_id}/httpListeners/https"}
    assert rule["backendAddressPool"] == {"id": f"{own_id}/backendAddressPools/container-app"}
    assert rule["backendHttpSettings"] == {"id": f"{own_id}/backendHttpSettingsCollection/container-app-https"}
    assert gateway["backendHttpSettingsCollection"][0]["probe"] == {"id": f"{own_id}/probes/readiness"}
    http, https = gateway["httpListeners"]
    assert http["frontendIPConfiguration"] == https["frontendIPConfiguration"] == {"id": f"{own_id}/frontendIPConfigurations/public"}
    assert http["frontendPort"] == {"id": f"{own_id}/frontendPorts/http"}
    assert https["frontendPort"] == {"id": f"{own_id}/frontendPorts/https"}
    assert https["sslCertificate"] == {"id": f"{own_id}/sslCertificates/listener-certificate"}
    assert gateway["frontendPorts"] == [{"name": "http", "port": 80}, {"name": "https", "port": 443}]
    assert shipped.outputs["url"] == "https://20.50.60.70"


def test_standard_v2_has_no_waf_policy():
    run = run_variant(STAGING, "staging", loadBalancer={"sku": "Standard_v2"})
    assert run.of_type(WAF_POLICY) == []
    gateway = run.one(GATEWAY).inputs
    assert gateway["sku"] == {"name": "Standard_v2", "tier": "Standard_v2"}
    assert "firewallPolicy" not in gateway


# ---------------------------------------------------------------- monitoring


def test_db_gateway_and_environment_send_diagnostics_to_log_analytics(shipped):
    workspace = resource_id(shipped.one(WORKSPACE))
    targets = {d.inputs["resourceUri"]: d.inputs for d in shipped.of_type(DIAGNOSTIC_SETTING)}
    expected = {resource_id(primary_server(shipped)), resource_id(shipped.one(GATEWAY)), resource_id(shipped.one(ENVIRONMENT))}
    assert set(targets) == expected
    for setting in targets.values():
        assert setting["workspaceId"] == workspace
        assert setting["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]


def test_alerts_cover_no_primary_lag_cpu_storage_unhealthy_hosts_and_failed_requests(shipped):
    groups = {group.name.split("-")[-2]: group for group in shipped.of_type(ACTION_GROUP)}
    assert set(groups) == {"critical", "warning"}
    for group in groups.values():
        receiver = group.inputs["emailReceivers"][0]
        assert receiver["emailAddress"] in {"oncall@example.com", "oncall-staging@example.com"}
        assert group.inputs["enabled"] is True
    primary, gateway = resource_id(primary_server(shipped)), resource_id(shipped.one(GATEWAY))
    replica = resource_id(replica_servers(shipped)[0])
    alerts = {}
    for alert in shipped.of_type(METRIC_ALERT):
        assert alert.inputs["criteria"]["odataType"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
        criterion = alert.inputs["criteria"]["allOf"][0]
        alerts[criterion["metricName"]] = (alert.inputs["scopes"], criterion["operator"], criterion["threshold"])
        # Severity 0-1 to the critical group, 2-4 to the warning one, as Alertmanager routes them.
        expected = groups["critical" if alert.inputs["severity"] <= 1 else "warning"]
        assert alert.inputs["actions"] == [{"actionGroupId": resource_id(expected)}]
    assert alerts == {
        "is_db_alive": ([primary], "LessThan", 1),
        "physical_replication_delay_in_bytes": ([primary], "GreaterThan", 1048576),
        "physical_replication_delay_in_seconds": ([replica], "GreaterThan", 60),
        "cpu_percent": ([primary], "GreaterThan", 80),
        "storage_percent": ([primary], "GreaterThan", 85),
        "UnhealthyHostCount": ([gateway], "GreaterThan", 0),
        "FailedRequests": ([gateway], "GreaterThan", 10),
    }


# ---------------------------------------------------------------- protection and outputs


def _data_holders(run):
    """What holds data: the server, the app database on it (a charset or collation change
    replaces it, docs/azure.md "Known provider behaviour"), the storage account and the share."""
    return (primary_server(run), run.one(DATABASE), run.one(STORAGE_ACCOUNT), run.one(FILE_SHARE))


def test_prod_protects_and_retains_server_app_database_storage_account_and_share(prod):
    for resource in _data_holders(prod):
        assert resource.protect and resource.retain_on_delete, resource.name


def test_staging_can_be_torn_down(staging):
    for resource in _data_holders(staging):
        assert not resource.protect and not resource.retain_on_delete, resource.name


def test_every_azure_resource_belongs_to_a_hastack_component(shipped):
    components = {r.urn for r in shipped.resources if r.type.startswith("hastack:azure:")}
    kinds = {"Network", "Database", "Storage", "App", "LoadBalancer", "Monitoring"}
    # Only a stack without loadBalancer.certificateSecretId (staging) gets its own vault and certificate.
    if not shipped.one(GATEWAY).inputs["sslCertificates"][0]["keyVaultSecretId"].startswith("https://shop-prod-tls."):
        kinds.add("GatewayCertificate")
    assert {r.type for r in shipped.resources if r.type.startswith("hastack:azure:")} == {f"hastack:azure:{k}" for k in kinds}
    for resource in shipped.resources:
        if resource.type.startswith("azure-native:"):
            assert resource.parent in components, resource.name


def test_outputs_name_the_entry_points(prod):
    outputs = prod.outputs
    assert outputs["url"] == "https://20.50.60.70"
    assert outputs["dbWriterFqdn"] == "hastack-prod-primary.postgres.database.azure.com"
    assert outputs["dbReaderFqdns"] == ["hastack-prod-replica-1.postgres.database.azure.com"]
    assert outputs["resourceGroup"] == "hastack-prod-rg"
    assert outputs["storageAccount"] == prod.one(STORAGE_ACCOUNT).inputs["accountName"]
    assert outputs["fileShare"] == "shared"
    assert outputs["containerApp"] == "hastack-prod-app"


def test_resource_prefix_is_a_valid_azure_name():
    assert resource_prefix("hastack", "prod") == "hastack-prod"
    assert resource_prefix("hastack", "Team_A.Staging--EU") == "hastack-team-a-staging-e"
