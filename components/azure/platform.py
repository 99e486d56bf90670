"""Wire the Azure components together for one stack and return its outputs.

Network -> Database + Storage -> App (Container App) -> LoadBalancer (Application
Gateway in front of the app) -> Monitoring (diagnostics and alerts on all of them).
"""

from __future__ import annotations

import re
from typing import Any

import pulumi

from components.azure.app import App, AppArgs, InitContainer
from components.azure.database import Database, DatabaseArgs
from components.azure.load_balancer import LoadBalancer, LoadBalancerArgs
from components.azure.monitoring import Monitoring, MonitoringArgs
from components.azure.network import Network, NetworkArgs
from components.azure.restore import check_restore
from components.azure.storage import Storage, StorageArgs
from components.config import AZURE_ADMIN_LOGIN, StackConfig
from components.render.managed_app_role import app_role_setup_script
from components.render.postgres import APP_DB_PASSWORD_ENV
from components.secrets import StackSecrets, StackSecretsArgs

# Azure names are built from this prefix plus a short purpose ("-agw", "-app"); the
# strictest (Container Apps, 32 characters) sets the budget.
PREFIX_MAX_LENGTH = 24
ROLE_SETUP_CONTAINER = "db-role-setup"


def resource_prefix(project: str, stack: str) -> str:
    """`hastack-prod`: lowercase letters, digits and single dashes, as every Azure name allows."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", f"{project}-{stack}".lower()).strip("-")
    return cleaned[:PREFIX_MAX_LENGTH].rstrip("-")


def build_azure_stack(config: StackConfig) -> dict[str, Any]:
    """Declare every Azure resource for `config` and return the stack outputs."""
    prefix = resource_prefix(pulumi.get_project(), pulumi.get_stack())
    azure = config.azure
    database_config = config.database
    if database_config.restore is not None:
        # Before the first resource: a restore that cannot work registers nothing.
        check_restore(database_config.restore, database_config.version, azure.location)

    network = Network(
        prefix,
        NetworkArgs(
            location=azure.location,
            vnet_cidr=azure.vnet_cidr,
            gateway_http_port=config.load_balancer.port,
            existing_resource_group=azure.resource_group_name,
        ),
    )
    secrets = StackSecrets(f"{prefix}-secrets", StackSecretsArgs(app_secret_names=config.app.generated_secrets, self_hosted_database=False))

    database = Database(
        prefix,
        DatabaseArgs(
            resource_group_name=network.resource_group_name,
            location=azure.location,
            delegated_subnet_id=network.database_subnet_id,
            private_dns_zone_id=network.postgres_dns_zone_id,
            version=database_config.version,
            settings=database_config.managed,
            replica_count=database_config.replicas,
            database_name=database_config.name,
            admin_login=AZURE_ADMIN_LOGIN,
            admin_password=secrets.db_superuser_password,
            app_user=database_config.user,
            app_password=secrets.db_app_password,
            protect=config.protect,
            restore=database_config.restore,
        ),
    )
    storage = Storage(
        prefix,
        StorageArgs(
            resource_group_name=network.resource_group_name,
            location=azure.location,
            apps_subnet_id=network.apps_subnet_id,
            quota_gb=config.storage.quota_gb,
            protocol=config.storage.protocol,
            redundancy=config.storage.redundancy,
            protect=config.protect,
        ),
    )
    app = App(
        prefix,
        AppArgs(
            resource_group_name=network.resource_group_name,
            location=azure.location,
            infrastructure_subnet_id=network.apps_subnet_id,
            vnet_id=network.vnet_id,
            app=config.app,
            health_check=config.load_balancer.health_check,
            readiness_path=config.health_check_path,
            mount_path=config.storage.mount_path,
            environment_storage=storage.environment_storage,
            volume_storage_type=storage.volume_storage_type,
            secret_env={
                "DATABASE_URL": database.database_url,
                "DATABASE_READ_URL": database.database_read_url,
                **secrets.app_secrets,
            },
            # The app's own role is made before the app starts, by the only container that
            # is given the admin password (docs/azure.md, "The app's database role").
            init=InitContainer(
                name=ROLE_SETUP_CONTAINER,
                image=database_config.image,
                command=["/bin/sh", "-c", app_role_setup_script(database_config.user, database_config.name)],
                env=database.admin_env,
                secret_env={**database.admin_secret_env, APP_DB_PASSWORD_ENV: secrets.db_app_password},
            ),
        ),
    )
    load_balancer = LoadBalancer(
        prefix,
        LoadBalancerArgs(
            resource_group_name=network.resource_group_name,
            location=azure.location,
            subnet_id=network.gateway_subnet_id,
            backend_fqdn=app.fqdn,
            settings=config.load_balancer,
            health_path=config.health_check_path,
            protect=config.protect,
        ),
    )
    Monitoring(
        prefix,
        MonitoringArgs(
            resource_group_name=network.resource_group_name,
            workspace_id=app.workspace_id,
            # Never None here: the config rules require it on platform azure.
            alert_email=azure.alert_email,
            database_primary_id=database.primary_id,
            database_replica_ids=database.replica_ids,
            environment_id=app.environment_id,
            gateway_id=load_balancer.gateway_id,
            receivers=config.monitoring.receivers,
        ),
    )

    return {
        "platform": "azure",
        "url": load_balancer.url,
        "gatewayPublicIp": load_balancer.public_ip,
        "resourceGroup": network.resource_group_name,
        "containerApp": app.container_app_name,
        "containerAppFqdn": app.fqdn,
        "dbWriterFqdn": database.writer_fqdn,
        "dbReaderFqdns": database.reader_fqdns,
        "databaseUrl": database.database_url,
        "databaseReadUrl": database.database_read_url,
        "storageAccount": storage.account_name,
        "fileShare": storage.share_name,
        "certificateReaderPrincipalId": load_balancer.certificate_reader_principal_id,
    }
