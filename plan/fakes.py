"""What the fake providers answer: ids, computed outputs and invoke results.

Mocks must return plausible computed values (a container's name, a server's FQDN)
because the program feeds them into other resources. Generated secrets return a
recognisable value so the leak scan can look for it.
"""

from __future__ import annotations

import functools
import hashlib

import pulumi

# Every pulumi-random secret resolves to this prefix plus its resource name, so a
# leak scan can find any generated secret that escapes into plaintext.
FAKE_SECRET_PREFIX = "fake-secret-"


class ProviderFakes(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        computed = COMPUTED.get(args.typ)
        if computed:
            state.update(computed(args))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        answer = INVOKES.get(args.token)
        return answer(args) if answer else {}


def _random_secret(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"result": f"{FAKE_SECRET_PREFIX}{args.name}"}


def _docker_container(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"name": args.inputs.get("name") or args.name}


def fake_image_id(reference: str) -> str:
    """A local image id (`sha256:<hex>`) that is stable per image reference."""
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def fake_repo_digest(reference: str) -> str:
    """`repository@sha256:<hex>`, as the registry would answer for a pulled tag."""
    if "@sha256:" in reference:
        return reference
    last = reference.rsplit("/", 1)[-1]
    repository = reference[: len(reference) - len(last)] + last.split(":", 1)[0]
    return f"{repository}@{fake_image_id(reference)}"


def _docker_remote_image(args: pulumi.runtime.MockResourceArgs) -> dict:
    reference = args.inputs["name"]
    return {"imageId": fake_image_id(reference), "repoDigest": fake_repo_digest(reference)}


def _docker_built_image(args: pulumi.runtime.MockResourceArgs) -> dict:
    # A local build (skipPush) reports the built image's id as its repoDigest.
    return {"repoDigest": fake_image_id(args.inputs["imageName"])}


def fake_pem(kind: str, name: str) -> str:
    return f"-----BEGIN {kind}-----\nZmFrZS0{name}\n-----END {kind}-----\n"


def _tls_signed_certificate(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"certPem": fake_pem("CERTIFICATE", args.name)}


def _tls_cert_request(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"certRequestPem": fake_pem("CERTIFICATE REQUEST", args.name)}


# Resource type token -> computed outputs. Components add theirs here as they need them.
COMPUTED = {
    "random:index/randomPassword:RandomPassword": _random_secret,
    "docker:index/container:Container": _docker_container,
    # Networks and volumes are auto-named like containers.
    "docker:index/network:Network": _docker_container,
    "docker:index/volume:Volume": _docker_container,
    "docker:index/remoteImage:RemoteImage": _docker_remote_image,
    # Swarm objects: secrets are auto-named; services and configs keep their given names.
    "docker:index/secret:Secret": _docker_container,
    "docker:index/serviceConfig:ServiceConfig": _docker_container,
    "docker:index/service:Service": _docker_container,
    "docker:index/image:Image": _docker_built_image,
    # Private keys and self-signed certificates: real ones, below.
    "tls:index/certRequest:CertRequest": _tls_cert_request,
    "tls:index/locallySignedCert:LocallySignedCert": _tls_signed_certificate,
}

# Invoke token -> result.
INVOKES: dict = {}


# ---------------------------------------------------------------- Azure (azure-native v3)

FAKE_SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000000"
# An internal Container Apps environment's domain and the static IP of its load balancer.
FAKE_ENVIRONMENT_DOMAIN = "happy-field-0a1b2c3d.westeurope.azurecontainerapps.io"
FAKE_ENVIRONMENT_STATIC_IP = "10.20.1.250"
FAKE_GATEWAY_PUBLIC_IP = "20.50.60.70"

# Input that holds an Azure resource's own name; without it, azure-native autonames
# (here: the logical name stands in).
_AZURE_NAME_INPUT = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:network:PublicIPAddress": "publicIpAddressName",
    "azure-native:network:WebApplicationFirewallPolicy": "policyName",
    "azure-native:network:ApplicationGateway": "applicationGatewayName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
    "azure-native:privatedns:PrivateRecordSet": "relativeRecordSetName",
    "azure-native:dbforpostgresql:Server": "serverName",
    "azure-native:dbforpostgresql:Configuration": "configurationName",
    "azure-native:dbforpostgresql:Database": "databaseName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:FileShare": "shareName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:app:ManagedEnvironment": "environmentName",
    "azure-native:app:ManagedEnvironmentsStorage": "storageName",
    "azure-native:app:ContainerApp": "containerAppName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:monitor:ActionGroup": "actionGroupName",
    "azure-native:monitor:MetricAlert": "ruleName",
    "azure-native:monitor:DiagnosticSetting": "name",
    "azure-native:network:NetworkSecurityGroup": "networkSecurityGroupName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:keyvault:Secret": "secretName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
}


def _azure_name(args: pulumi.runtime.MockResourceArgs) -> str:
    return args.inputs.get(_AZURE_NAME_INPUT[args.typ]) or args.name


def _azure_named(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"name": _azure_name(args)}


def _postgres_server(args: pulumi.runtime.MockResourceArgs) -> dict:
    name = _azure_name(args)
    return {"name": name, "fullyQualifiedDomainName": f"{name}.postgres.database.azure.com"}


def _container_apps_environment(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"name": _azure_name(args), "defaultDomain": FAKE_ENVIRONMENT_DOMAIN, "staticIp": FAKE_ENVIRONMENT_STATIC_IP}


def _container_app(args: pulumi.runtime.MockResourceArgs) -> dict:
    name = _azure_name(args)
    return {"name": name, "latestRevisionFqdn": f"{name}--0000001.{FAKE_ENVIRONMENT_DOMAIN}"}


def _application_gateway(args: pulumi.runtime.MockResourceArgs) -> dict:
    state = {"name": _azure_name(args)}
    identity = args.inputs.get("identity")
    if identity:
        # Requests list user-assigned identity ids; Azure answers with a map keyed by them.
        state["identity"] = {
            "type": identity["type"],
            "userAssignedIdentities": {
                identity_id: {"principalId": "11111111-1111-4111-8111-111111111111", "clientId": "5555"}
                for identity_id in identity.get("userAssignedIdentities", [])
            },
        }
    return state


def _public_ip(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"name": _azure_name(args), "ipAddress": FAKE_GATEWAY_PUBLIC_IP}


def _user_assigned_identity(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"name": _azure_name(args), "principalId": "11111111-1111-4111-8111-111111111111"}


def _key_vault(args: pulumi.runtime.MockResourceArgs) -> dict:
    name = _azure_name(args)
    return {"name": name, "properties": {**args.inputs.get("properties", {}), "vaultUri": f"https://{name}.vault.azure.net/"}}


# pulumi-tls: a real key and certificate (made once per process), so the program's PFX
# step runs on real PEM text. Tests look for this key to prove it never leaks.
FAKE_CERTIFICATE_NOT_AFTER = "2027-12-01T00:00:00Z"


@functools.cache
def fake_tls_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def fake_tls_key_marker() -> str:
    """A line of the fake private key's PEM body: text that appears only where the key went."""
    return fake_tls_key_pem().splitlines()[1]


def _tls_private_key(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"privateKeyPem": fake_tls_key_pem()}


def _tls_self_signed_cert(args: pulumi.runtime.MockResourceArgs) -> dict:
    from datetime import datetime, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = serialization.load_pem_private_key(fake_tls_key_pem().encode(), password=None)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.inputs["subject"]["commonName"])])
    not_after = datetime.fromisoformat(FAKE_CERTIFICATE_NOT_AFTER.replace("Z", "+00:00"))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2026, 12, 1, tzinfo=timezone.utc))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return {
        "certPem": certificate.public_bytes(serialization.Encoding.PEM).decode(),
        "validityStartTime": "2026-12-01T00:00:00Z",
        "validityEndTime": FAKE_CERTIFICATE_NOT_AFTER,
    }


def _random_string(args: pulumi.runtime.MockResourceArgs) -> dict:
    return {"result": "k3x9q2m7"[: int(args.inputs.get("length", 8))]}


COMPUTED.update({token: _azure_named for token in _AZURE_NAME_INPUT})
COMPUTED.update(
    {
        "azure-native:dbforpostgresql:Server": _postgres_server,
        "azure-native:app:ManagedEnvironment": _container_apps_environment,
        "azure-native:app:ContainerApp": _container_app,
        "azure-native:network:PublicIPAddress": _public_ip,
        "azure-native:network:ApplicationGateway": _application_gateway,
        "azure-native:managedidentity:UserAssignedIdentity": _user_assigned_identity,
        "random:index/randomString:RandomString": _random_string,
        "azure-native:keyvault:Vault": _key_vault,
        "tls:index/privateKey:PrivateKey": _tls_private_key,
        "tls:index/selfSignedCert:SelfSignedCert": _tls_self_signed_cert,
    }
)

# The Flexible Server a restore reads (components/azure/restore.py): 7 days of backups
# before the moment the fake is asked, geo-redundant, in the shipped stacks' region.
FAKE_SOURCE_SERVER_VERSION = "16"
FAKE_SOURCE_SERVER_LOCATION = "westeurope"
FAKE_SOURCE_BACKUP_DAYS = 7


def _get_postgres_server(args: pulumi.runtime.MockCallArgs) -> dict:
    from datetime import datetime, timedelta, timezone

    earliest = datetime.now(timezone.utc) - timedelta(days=FAKE_SOURCE_BACKUP_DAYS)
    return {
        "name": args.args["serverName"],
        "location": FAKE_SOURCE_SERVER_LOCATION,
        "version": FAKE_SOURCE_SERVER_VERSION,
        "backup": {
            "backupRetentionDays": FAKE_SOURCE_BACKUP_DAYS,
            "geoRedundantBackup": "Enabled",
            "earliestRestoreDate": f"{earliest:%Y-%m-%dT%H:%M:%S}+00:00",
        },
    }


INVOKES.update(
    {
        "azure-native:dbforpostgresql:getServer": _get_postgres_server,
        "azure-native:authorization:getClientConfig": lambda args: {
            "clientId": "22222222-2222-4222-8222-222222222222",
            "objectId": "33333333-3333-4333-8333-333333333333",
            "subscriptionId": FAKE_SUBSCRIPTION_ID,
            "tenantId": "44444444-4444-4444-8444-444444444444",
        },
        # A storage key is a secret like a generated password: the leak scan looks for the prefix.
        "azure-native:storage:listStorageAccountKeys": lambda args: {
            "keys": [
                {
                    "keyName": "key1",
                    "value": f"{FAKE_SECRET_PREFIX}storage-account-key",
                    "permissions": "FULL",
                    "creationTime": "2026-01-01T00:00:00Z",
                }
            ]
        },
    }
)
