"""Azure Files: the share every app replica mounts read-write.

SMB (the default) mounts with the account key. NFS 4.1 mounts without a key but
needs the account's secure-transfer switch off (NFS traffic is not TLS-wrapped; it
stays on the VNet, admitted by the subnet rule) and the share path in the form
`/<account>/<share>`. docs/azure.md lists NFS's other limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.app as app
import pulumi_azure_native.storage as storage
import pulumi_random as random

SHARE_NAME = "shared"


@dataclass(frozen=True)
class StorageArgs:
    resource_group_name: pulumi.Input[str]
    location: str
    # The only subnet allowed through the storage firewall: the Container Apps one.
    apps_subnet_id: pulumi.Input[str]
    quota_gb: int
    protocol: str  # SMB | NFS
    redundancy: str  # ZRS | LRS
    protect: bool


class Storage(pulumi.ComponentResource):
    """A Premium FileStorage account and one share, plus how Container Apps mounts it."""

    account_name: pulumi.Output[str]
    share_name: pulumi.Output[str]
    # For `ManagedEnvironmentsStorage.properties` and the app's volume `storage_type`.
    environment_storage: app.ManagedEnvironmentStoragePropertiesArgs
    volume_storage_type: str

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:azure:Storage", name, None, opts)
        is_nfs = args.protocol == "NFS"
        keeps_data = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)

        # Account names are global, 3-24 lowercase letters and digits.
        name_suffix = random.RandomString(
            f"{name}-account-suffix", length=8, special=False, upper=False, opts=pulumi.ResourceOptions(parent=self)
        )
        account_prefix = re.sub(r"[^a-z0-9]", "", name)[:14]

        account = storage.StorageAccount(
            f"{name}-files",
            account_name=pulumi.Output.concat(account_prefix, name_suffix.result),
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="FileStorage",
            sku=storage.SkuArgs(name=f"Premium_{args.redundancy}"),
            enable_https_traffic_only=not is_nfs,
            minimum_tls_version="TLS1_2",
            allow_blob_public_access=False,
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action="Deny",
                bypass="AzureServices",
                virtual_network_rules=[storage.VirtualNetworkRuleArgs(virtual_network_resource_id=args.apps_subnet_id)],
            ),
            opts=keeps_data,
        )
        share = storage.FileShare(
            f"{name}-share",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            share_name=SHARE_NAME,
            share_quota=args.quota_gb,
            enabled_protocols=args.protocol,
            # NFS: root in a container stays root on the share, so an image's entrypoint
            # can chown its upload directory. SMB has no such setting.
            root_squash="NoRootSquash" if is_nfs else None,
            opts=keeps_data,
        )
        self.account_name = account.name
        self.share_name = share.name

        if is_nfs:
            self.volume_storage_type = "NfsAzureFile"
            self.environment_storage = app.ManagedEnvironmentStoragePropertiesArgs(
                nfs_azure_file=app.NfsAzureFilePropertiesArgs(
                    server=pulumi.Output.concat(account.name, ".file.core.windows.net"),
                    share_name=pulumi.Output.concat("/", account.name, "/", share.name),
                    access_mode="ReadWrite",
                )
            )
        else:
            self.volume_storage_type = "AzureFile"
            keys = storage.list_storage_account_keys_output(
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                opts=pulumi.InvokeOutputOptions(parent=self),
            )
            self.environment_storage = app.ManagedEnvironmentStoragePropertiesArgs(
                azure_file=app.AzureFilePropertiesArgs(
                    account_name=account.name,
                    account_key=pulumi.Output.secret(keys.keys[0].value),
                    share_name=share.name,
                    access_mode="ReadWrite",
                )
            )

        self.register_outputs({"accountName": self.account_name, "shareName": self.share_name})
