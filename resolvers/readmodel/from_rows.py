"""Rows to views: the one place that knows how overrides combine with a release's spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lainyaml import AppType, LainConfig, LainYamlError, ProcType, parse_memory
from resolvers.readmodel.views import AppView, ProcView, ReleaseView, RepoView, parse_release_config
from store.models import App, Proc, Release
from store.queries import AppRow, ProcRow, ReleaseRow

__all__ = [
    "app_view",
    "clear_overrides",
    "default_image",
    "proc_view",
    "proc_views",
    "release_view",
    "repo_view",
]


def default_image(registry: str, app: str, meta_version: str) -> str:
    """The image LAIN's registry would hold for a release.

    A Docker repository name is lower-case, while LAIN allows upper-case app names.
    """
    return f"{registry}/{app.lower()}:release-{meta_version}"


def repo_view(app: App) -> RepoView:
    return RepoView(name=app.name, created_at=app.created_at, giturl=app.giturl)


def app_view(app: AppRow) -> AppView:
    try:
        apptype = AppType(app.apptype)
    except ValueError:
        apptype = AppType.UNKNOWN
    return AppView(
        name=app.name,
        apptype=apptype,
        meta_version=app.meta_version,
        status=app.status,
        last_error=app.last_error,
        created_at=app.created_at,
        updated_at=app.updated_at,
        giturl=app.giturl,
    )


def release_view(app_name: str, release: Release, domains: tuple[str, ...]) -> ReleaseView:
    return ReleaseView(
        app=app_name,
        meta_version=release.meta_version,
        created_at=release.created_at,
        image=release.image,
        lain_yaml=release.lain_yaml,
        config=parse_release_config(release.lain_yaml, domains),
    )


def release_config(release: ReleaseRow, domains: tuple[str, ...]) -> LainConfig | None:
    try:
        return parse_release_config(release.lain_yaml, domains)
    except LainYamlError:
        return None


def clear_overrides(proc: Proc) -> None:
    """Back to what the release says: a proc that was undeployed runs nothing whose count,
    cpu or memory could be kept, so it comes back with its lain.yaml values (COMPAT 4.9)."""
    proc.num_instances = None
    proc.cpu = None
    proc.memory = None


def proc_view(
    app_name: str, proc: ProcRow, release: ReleaseRow, *, registry: str, domains: tuple[str, ...]
) -> ProcView | None:
    """The proc's desired state, or None when its release no longer defines it."""
    config = release_config(release, domains)
    spec = config.proc(proc.name) if config is not None else None
    if spec is None:
        return None
    image = spec.image or release.image or default_image(registry, app_name, release.meta_version)
    memory = proc.memory or spec.memory
    return ProcView(
        app=app_name,
        name=proc.name,
        type=ProcType(proc.proc_type),
        meta_version=proc.meta_version,
        spec=spec,
        image=image,
        num_instances=spec.num_instances if proc.num_instances is None else proc.num_instances,
        cpu=spec.cpu if proc.cpu is None else proc.cpu,
        memory=memory,
        memory_bytes=spec.memory_bytes if proc.memory is None else parse_memory(proc.memory),
        deployed=proc.deployed,
        last_error=proc.last_error,
    )


def proc_views(
    app_name: str,
    app_id: int,
    procs: Sequence[ProcRow],
    releases: Mapping[tuple[int, str], ReleaseRow],
    *,
    registry: str,
    domains: tuple[str, ...],
) -> list[ProcView]:
    """Views of an app's procs, each with its own release; procs their release no longer
    defines are left out."""
    views = []
    for proc in procs:
        release = releases.get((app_id, proc.meta_version))
        view = None
        if release is not None:
            view = proc_view(app_name, proc, release, registry=registry, domains=domains)
        if view is not None:
            views.append(view)
    return views
