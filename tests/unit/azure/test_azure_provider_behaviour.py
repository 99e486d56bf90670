"""Guards for reported provider and API behaviour that no other Azure test file covers
(the full list, with links, is docs/azure.md "Known provider behaviour")."""

from __future__ import annotations

from tests.unit.azure.helpers import DIAGNOSTIC_SETTING


def test_diagnostic_settings_depend_on_their_target_so_destroy_removes_them_first(shipped):
    """A diagnostic setting outlives its deleted resource and then blocks (or silently joins)
    a re-created one of the same name (MicrosoftDocs/azure-docs#100347, Azure/azure-cli#22615).
    Depending on the target makes `pulumi destroy` delete the setting before the resource."""
    by_id = {f"{r.name}-id": r for r in shipped.resources}
    settings = shipped.of_type(DIAGNOSTIC_SETTING)
    assert len(settings) == 3
    for setting in settings:
        target = by_id[setting.inputs["resourceUri"]]
        assert target.urn in setting.dependencies, setting.name
