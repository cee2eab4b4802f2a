"""The lain.yaml model: parsing, validation, defaults, naming rules and units. Pure, no I/O."""

from __future__ import annotations

from lainyaml.apptypes import AppType, app_type_of
from lainyaml.errors import LainYamlError, Problem
from lainyaml.lainyaml import parse_lain_yaml
from lainyaml.model import (
    AppKind,
    BackupEntry,
    BackupMode,
    BuildSpec,
    CloudVolumes,
    CloudVolumeType,
    ContainerHealthcheck,
    LainConfig,
    PortMapping,
    PortSpec,
    ProcSpec,
    ProcType,
    Protocol,
    ResourceUse,
    is_template_text,
)
from lainyaml.naming import (
    RESERVED_APP_NAMES,
    app_domain,
    app_name_problem,
    is_valid_proc_name,
    parse_resource_instance_name,
    pod_group_name,
    registration_name_problem,
    resource_instance_name,
    validate_app_name,
)
from lainyaml.procfields import default_mountpoints
from lainyaml.units import InvalidSize, format_memory, parse_memory, parse_size
from lainyaml.versions import InvalidMetaVersion, MetaVersion, newest_first, parse_meta_version
from lainyaml.volumes import lain_based_path

__all__ = [
    "RESERVED_APP_NAMES",
    "AppKind",
    "AppType",
    "BackupEntry",
    "BackupMode",
    "BuildSpec",
    "CloudVolumeType",
    "CloudVolumes",
    "ContainerHealthcheck",
    "InvalidMetaVersion",
    "InvalidSize",
    "LainConfig",
    "LainYamlError",
    "MetaVersion",
    "PortMapping",
    "PortSpec",
    "Problem",
    "ProcSpec",
    "ProcType",
    "Protocol",
    "ResourceUse",
    "app_domain",
    "app_name_problem",
    "app_type_of",
    "default_mountpoints",
    "format_memory",
    "is_template_text",
    "is_valid_proc_name",
    "lain_based_path",
    "newest_first",
    "parse_lain_yaml",
    "parse_memory",
    "parse_meta_version",
    "parse_resource_instance_name",
    "parse_size",
    "pod_group_name",
    "registration_name_problem",
    "resource_instance_name",
    "validate_app_name",
]
