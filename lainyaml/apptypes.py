"""The type an app is shown with (COMPAT 4.2), derived from its name and its lain.yaml."""

from __future__ import annotations

from enum import StrEnum

from lainyaml.model import AppKind, LainConfig

__all__ = ["AppType", "app_type_of"]


class AppType(StrEnum):
    APP = "app"
    SERVICE = "service"  # an app exporting at least one portal
    RESOURCE = "resource"  # a template, never run itself
    RESOURCE_INSTANCE = "resource-instance"  # resource.<resource>.<client>
    UNKNOWN = "unknown"  # the stored lain.yaml cannot be parsed


def app_type_of(name: str, config: LainConfig | None) -> AppType:
    """The app type LAIN computes at deploy time.

    Start from lain.yaml's `apptype` (UNKNOWN when there is no parsable config); a name starting
    with `resource.` makes it a resource instance; otherwise an `app` with a portal is a service.
    """
    if config is None:
        kind = AppType.UNKNOWN
    else:
        kind = AppType.RESOURCE if config.apptype is AppKind.RESOURCE else AppType.APP
    # The name wins over everything, as in the console: instances are recognised by name even
    # when their stored meta is broken.
    if name.startswith("resource."):
        return AppType.RESOURCE_INSTANCE
    if kind is AppType.APP and config is not None and config.portals:
        return AppType.SERVICE
    return kind
