"""Network security groups on every subnet, deny by default (issue 11, part 3), under mocks."""

from __future__ import annotations

from plan.engine import ProgramRun
from tests.unit.azure.helpers import NSG, STAGING, SUBNET, resource_id, run_variant, subnet_named


def _rules(run: ProgramRun, purpose: str) -> dict[str, dict]:
    group = next(g for g in run.of_type(NSG) if g.name.endswith(f"-{purpose}-nsg"))
    return {rule["name"]: rule for rule in group.inputs["securityRules"]}


def test_every_subnet_has_its_own_network_security_group(shipped):
    groups = {g.name.removesuffix("-nsg").rsplit("-", 1)[-1]: g for g in shipped.of_type(NSG)}
    assert set(groups) == {"apps", "database", "gateway"}
    for subnet in shipped.of_type(SUBNET):
        purpose = subnet.name.removesuffix("-subnet").rsplit("-", 1)[-1]
        assert subnet.inputs["networkSecurityGroup"] == {"id": resource_id(groups[purpose])}, subnet.name


def test_each_group_denies_all_other_inbound_before_azures_vnet_default(shipped):
    for purpose in ("apps", "database", "gateway"):
        rules = _rules(shipped, purpose)
        deny = rules["deny-all-inbound"]
        assert (deny["access"], deny["direction"], deny["priority"]) == ("Deny", "Inbound", 4096)
        assert (deny["protocol"], deny["sourceAddressPrefix"], deny["destinationPortRange"]) == ("*", "*", "*")
        # Azure's AllowVnetInBound (65000) would admit the whole VNet: the deny must come first.
        assert all(rule["priority"] < 4096 for name, rule in rules.items() if name != "deny-all-inbound")
        assert all(rule["access"] == "Allow" for name, rule in rules.items() if name != "deny-all-inbound")


def test_the_gateway_subnet_admits_gateway_manager_on_65200_to_65535(shipped):
    rule = _rules(shipped, "gateway")["allow-gateway-manager"]
    assert rule["sourceAddressPrefix"] == "GatewayManager"
    assert rule["destinationPortRanges"] == ["65200-65535"]
    assert (rule["protocol"], rule["direction"], rule["access"]) == ("Tcp", "Inbound", "Allow")


def test_the_gateway_subnet_admits_the_internet_on_its_listeners_only(shipped):
    rules = _rules(shipped, "gateway")
    assert rules["allow-internet-listeners"]["sourceAddressPrefix"] == "Internet"
    assert rules["allow-internet-listeners"]["destinationPortRanges"] == ["80", "443"]
    assert rules["allow-azure-load-balancer"]["sourceAddressPrefix"] == "AzureLoadBalancer"
    assert [r for r in rules.values() if r["sourceAddressPrefix"] == "Internet"] == [rules["allow-internet-listeners"]]


def test_a_custom_http_port_is_what_the_gateway_subnet_opens():
    run = run_variant(STAGING, "staging", loadBalancer={"port": 8080})
    assert _rules(run, "gateway")["allow-internet-listeners"]["destinationPortRanges"] == ["8080", "443"]


def test_the_apps_subnet_admits_the_gateway_on_443_and_the_edge_proxy_port_and_itself(shipped):
    gateway, apps = subnet_named(shipped, "gateway").inputs["addressPrefix"], subnet_named(shipped, "apps").inputs["addressPrefix"]
    rules = _rules(shipped, "apps")
    assert rules["allow-gateway-https"]["sourceAddressPrefix"] == gateway
    # 31443: the environment's edge proxy behind its internal load balancer (Container Apps NSG docs).
    assert rules["allow-gateway-https"]["destinationPortRanges"] == ["443", "31443"]
    assert rules["allow-gateway-https"]["destinationAddressPrefix"] == apps
    assert rules["allow-environment-internal"]["sourceAddressPrefix"] == apps
    assert not [r for r in rules.values() if r["sourceAddressPrefix"] in {"Internet", "*"} and r["access"] == "Allow"]


def test_the_database_subnet_admits_postgres_from_the_apps_subnet_only(shipped):
    apps, database = subnet_named(shipped, "apps").inputs["addressPrefix"], subnet_named(shipped, "database").inputs["addressPrefix"]
    rules = _rules(shipped, "database")
    assert set(rules) == {"allow-apps-postgres", "allow-database-internal", "deny-all-inbound"}
    assert rules["allow-apps-postgres"]["sourceAddressPrefix"] == apps
    assert rules["allow-apps-postgres"]["destinationPortRanges"] == ["5432"]
    assert rules["allow-database-internal"]["sourceAddressPrefix"] == database
    assert rules["allow-database-internal"]["destinationAddressPrefix"] == database
