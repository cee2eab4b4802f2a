"""The database schema: desired state, releases, people and the audit log.

Running state is not stored here; it lives in the scheduler backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ApiToken",
    "App",
    "AppStatus",
    "AuditEntry",
    "Base",
    "EventRecord",
    "IdempotencyRecord",
    "LogArchiveEntry",
    "Maintainer",
    "MaintainerRole",
    "NotifySubscriber",
    "PendingRemoval",
    "PortalBinding",
    "Proc",
    "Release",
    "StateVersion",
    "User",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    SQLite keeps no zone, so values are normalised to UTC on the way in and marked UTC on
    the way out; PostgreSQL stores `timestamptz` and gives them back aware already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_JSON = JSON().with_variant(JSONB(), "postgresql")

# Deterministic constraint names: Alembic's batch mode on SQLite needs them to alter tables.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AppStatus(StrEnum):
    UNDEPLOYED = "undeployed"  # registered (or undeployed again): nothing should run
    DEPLOYING = "deploying"  # a deploy or update is being applied to the backend
    DEPLOYED = "deployed"


class MaintainerRole(StrEnum):
    ADMIN = "admin"
    NORMAL = "normal"


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # Stored as plain strings so adding a member needs no PostgreSQL enum migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class App(Base):
    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    giturl: Mapped[str] = mapped_column(String(1000), default="")
    apptype: Mapped[str] = mapped_column(String(32), default="app")
    meta_version: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[AppStatus] = mapped_column(
        _enum(AppStatus, "app_status"), default=AppStatus.UNDEPLOYED
    )
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Bumped by every mutation of the app; writers compare-and-set it so that two
    # concurrent operations on one app conflict instead of racing.
    revision: Mapped[int] = mapped_column(Integer, default=0)

    releases: Mapped[list[Release]] = relationship(
        back_populates="app", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    procs: Mapped[list[Proc]] = relationship(
        back_populates="app", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )
    maintainers: Mapped[list[Maintainer]] = relationship(
        back_populates="app", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("app_id", "meta_version", name="uq_releases_app_id_meta_version"),
        Index("ix_releases_app_id_meta_timestamp", "app_id", "meta_timestamp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    meta_version: Mapped[str] = mapped_column(String(80))
    # The leading unix timestamp of meta_version, kept apart so "newest first" is an index scan.
    meta_timestamp: Mapped[int] = mapped_column(BigInteger)
    lain_yaml: Mapped[str] = mapped_column(Text)
    image: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    app: Mapped[App] = relationship(back_populates="releases", lazy="raise")


class Proc(Base):
    """A proc's desired state: its spec from the release plus the operator's overrides."""

    __tablename__ = "procs"
    __table_args__ = (UniqueConstraint("app_id", "name", name="uq_procs_app_id_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    proc_type: Mapped[str] = mapped_column(String(16))
    meta_version: Mapped[str] = mapped_column(String(80))
    # The spec fields as the release's lain.yaml gives them (a JSON document, see resolvers).
    spec: Mapped[dict[str, object]] = mapped_column(_JSON, default=dict)
    # Overrides win over the spec; None means "as the release says". LAIN keeps a running
    # proc's count, cpu and memory across updates, so these survive new releases.
    num_instances: Mapped[int | None] = mapped_column(Integer)
    cpu: Mapped[int | None] = mapped_column(Integer)
    memory: Mapped[str | None] = mapped_column(String(32))
    deployed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # The spec hash of this proc's release that the scheduler rolled back (its rollout
    # failed): the reconciler does not apply it again until a user deploys again.
    failed_spec_hash: Mapped[str] = mapped_column(String(64), default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    app: Mapped[App] = relationship(back_populates="procs", lazy="raise")


class PortalBinding(Base):
    """A client app's use of a service's portal; each binding runs as a job of its own."""

    __tablename__ = "portal_bindings"
    __table_args__ = (
        UniqueConstraint(
            "client_app_id", "service_app_id", "portal", name="uq_portal_bindings_client_portal"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    service_app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    portal: Mapped[str] = mapped_column(String(200))
    service_name: Mapped[str] = mapped_column(String(200))
    deployed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Maintainer(Base):
    __tablename__ = "maintainers"
    __table_args__ = (UniqueConstraint("app_id", "username", name="uq_maintainers_app_id_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(String(200))
    role: Mapped[MaintainerRole] = mapped_column(_enum(MaintainerRole, "maintainer_role"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    app: Mapped[App] = relationship(back_populates="maintainers", lazy="raise")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )


class ApiToken(Base):
    """An API token; only a SHA-256 digest of the secret is kept, never the secret."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="tokens", lazy="raise")


class PendingRemoval(Base):
    """A job the scheduler should no longer run but that could not be removed yet."""

    __tablename__ = "pending_removals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(400), unique=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NotifySubscriber(Base):
    """A URL told about events of one type (`imagepush`); order kept, duplicates allowed."""

    __tablename__ = "notify_subscribers"
    __table_args__ = (Index("ix_notify_subscribers_type_id", "type", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyRecord(Base):
    """The outcome of a mutation sent with an idempotency key, replayed to its retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    # None while the first request is still running.
    outcome: Mapped[dict[str, object] | None] = mapped_column(_JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AuditEntry(Base):
    """One operation, as the oplog shows it. The app is a name, not a key: entries outlive apps."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_app_id", "app", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    username: Mapped[str] = mapped_column(String(200))
    operation: Mapped[str] = mapped_column(String(32))
    app: Mapped[str] = mapped_column(String(200))
    meta_version: Mapped[str] = mapped_column(String(80), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class LogArchiveEntry(Base):
    """The last part of one output stream of an instance that ended (Nomad forgets them)."""

    __tablename__ = "log_archive"
    __table_args__ = (
        UniqueConstraint("origin", "stream", name="uq_log_archive_origin_stream"),
        Index("ix_log_archive_job_id_instance", "job_id", "instance"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(400))
    instance: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(100))
    stream: Mapped[str] = mapped_column(String(8))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventRecord(Base):
    """One event of the durable log; its id is the cursor clients resume from.

    The payload holds the event with the snapshots it shows, serialized when it was written,
    so every replica (and a console restarted later) delivers the same thing.
    """

    __tablename__ = "event_log"
    # AUTOINCREMENT on SQLite: an id is never reused once pruned, or old cursors would
    # silently mean new events.
    __table_args__ = (Index("ix_event_log_app_id", "app", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    app: Mapped[str] = mapped_column(String(200))
    proc: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, object]] = mapped_column(_JSON)


class StateVersion(Base):
    """One row whose number grows with every committed write, in the writing transaction.

    Read caches key on it (with the scheduler's and the event bus's own counters), so an
    answer cached before a write is never served after it, on any replica: the number and
    the write become visible together. `store.stateversion` bumps it.
    """

    __tablename__ = "state_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
