"""Staff accounts for the console: users and roles, server-side sessions, sign-in throttling.

* Passwords are argon2id hashes (argon2-cffi's defaults, re-hashed when those change).
* A session is a random token given to the browser; only its SHA-256 is stored, so a copy of
  the database signs no one in. A sign-in always creates a new session (the id changes; an id
  planted before sign-in is worthless), and a session ends after ``idle`` without use or
  ``absolute`` after sign-in, whichever comes first.
* Failed sign-ins are counted per account and per client address: after a few, each answer
  is slowed; after more, the account (or address) is locked for a while, even to the right
  password. The address limits are higher, so one office behind one address is not locked
  out by one person's typing.

Roles and what they may do are here too, so the console (web/) only asks "may this account
do P?" and never spells out a role itself.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from schemas.errors import OperatorError
from tickets.models import Base, BigId, aware, utcnow


class Role(StrEnum):
    AGENT = "agent"  # contact centre: every department
    OFFICER = "officer"  # a department's officer: only their departments' tickets when scoping is on
    SUPERVISOR = "supervisor"  # merges, reassignment, every department
    OPS = "ops"  # dashboard, dead letters
    ADMIN = "admin"  # users


class Permission(StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    SIGNED_IN = "signed_in"  # any account
    VIEW_TICKETS = "view_tickets"
    WORK_TICKETS = "work_tickets"  # reply, note, status, assign, move, copy in, link
    MERGE = "merge"  # merge and unmerge tickets and residents
    REASSIGN = "reassign"  # assign to someone else
    OPS = "ops"
    DASHBOARD = "dashboard"  # the ops dashboard and the committee report (ops and supervisors)
    MANAGE_USERS = "manage_users"


_WORK = {Permission.SIGNED_IN, Permission.VIEW_TICKETS, Permission.WORK_TICKETS}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: frozenset(_WORK),
    Role.OFFICER: frozenset(_WORK),
    Role.SUPERVISOR: frozenset(_WORK | {Permission.MERGE, Permission.REASSIGN, Permission.DASHBOARD}),
    Role.OPS: frozenset({Permission.SIGNED_IN, Permission.VIEW_TICKETS, Permission.OPS,
                         Permission.DASHBOARD}),
    Role.ADMIN: frozenset({Permission.SIGNED_IN, Permission.MANAGE_USERS}),
}


class AccountError(OperatorError):
    """An operator's mistake with ``frontdoor users``: one line, no traceback."""


class User(Base):
    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(300))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    departments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserSession(Base):
    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    address: Mapped[str | None] = mapped_column(String(64))


class SignInFailures(Base):
    """Failed sign-ins per key (``account:EMAIL`` or ``address:IP``) in the current window."""

    __tablename__ = "console_sign_in_failures"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    name: str | None
    role: Role
    departments: tuple[str, ...]
    disabled: bool

    def may(self, permission: Permission) -> bool:
        if permission is Permission.PUBLIC:
            return True
        return not self.disabled and permission in ROLE_PERMISSIONS[self.role]

    @property
    def scoped(self) -> bool:
        """Sees only its departments' tickets (when the deployment turns scoping on)."""
        return self.role is Role.OFFICER


@dataclass(frozen=True)
class SignedIn:
    account: Account
    token: str  # the browser's cookie value; only its hash is stored
    csrf_token: str


@dataclass(frozen=True)
class ThrottlePolicy:
    """How failed sign-ins are slowed and then locked (per account, and per address)."""

    account_slow_after: int = 3
    account_lock_after: int = 10
    address_slow_after: int = 10
    address_lock_after: int = 50
    base_delay_s: float = 0.25
    max_delay_s: float = 4.0
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)

    def delay_s(self, failures: int, slow_after: int) -> float:
        if failures < slow_after:
            return 0.0
        return min(self.base_delay_s * 2 ** (failures - slow_after), self.max_delay_s)


@dataclass(frozen=True)
class SignInResult:
    """``signed_in`` on success; otherwise how long to hold the answer, or that it is locked."""

    signed_in: SignedIn | None = None
    delay_s: float = 0.0
    locked: bool = False


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or any(c.isspace() for c in email):
        raise AccountError(f"{email!r} is not an email address")
    return email


def _account(row: User) -> Account:
    return Account(id=row.id, email=row.email, name=row.name, role=Role(row.role),
                   departments=tuple(row.departments or ()), disabled=row.disabled)


@dataclass
class AccountStore:
    """Users, sessions and sign-in throttling over the tickets database."""

    engine: Engine
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    hasher: PasswordHasher = field(default_factory=PasswordHasher)

    def __post_init__(self) -> None:
        # Verified against when the email is unknown, so both answers take as long.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # -- users ------------------------------------------------------------------------------

    def add_user(self, email: str, password: str, role: Role | str, departments: Iterable[str] = (),
                 name: str | None = None) -> Account:
        email = normalise_email(email)
        role = _role(role)
        if len(password) < 10:
            raise AccountError("the password must be at least 10 characters")
        departments = tuple(dict.fromkeys(d.strip() for d in departments if d.strip()))
        if role is Role.OFFICER and not departments:
            raise AccountError("an officer needs at least one --department")
        with Session(self.engine) as db, db.begin():
            if db.scalar(select(User.id).where(User.email == email)) is not None:
                raise AccountError(f"{email} already has an account: use 'frontdoor users role' to change it")
            row = User(email=email, name=name, password_hash=self.hasher.hash(password), role=role.value,
                       departments=list(departments), disabled=False)
            db.add(row)
            db.flush()
            return _account(row)

    def set_role(self, email: str, role: Role | str, departments: Iterable[str] | None = None) -> Account:
        role = _role(role)
        with Session(self.engine) as db, db.begin():
            row = self._user(db, email)
            row.role = role.value
            if departments is not None:
                row.departments = list(dict.fromkeys(d.strip() for d in departments if d.strip()))
            if role is Role.OFFICER and not row.departments:
                raise AccountError("an officer needs at least one --department")
            db.execute(delete(UserSession).where(UserSession.user_id == row.id))  # sign in again
            return _account(row)

    def reset_password(self, email: str, password: str) -> Account:
        """A new password (and enabled again); every session of the account ends."""
        if len(password) < 10:
            raise AccountError("the password must be at least 10 characters")
        with Session(self.engine) as db, db.begin():
            row = self._user(db, email)
            row.password_hash, row.disabled = self.hasher.hash(password), False
            db.execute(delete(UserSession).where(UserSession.user_id == row.id))
            db.execute(delete(SignInFailures).where(SignInFailures.key == f"account:{row.email}"))
            return _account(row)

    def disable(self, email: str) -> Account:
        with Session(self.engine) as db, db.begin():
            row = self._user(db, email)
            row.disabled = True
            db.execute(delete(UserSession).where(UserSession.user_id == row.id))
            return _account(row)

    def get(self, email: str) -> Account | None:
        with Session(self.engine) as db:
            row = db.scalar(select(User).where(User.email == email.strip().lower()))
            return _account(row) if row else None

    def list_users(self) -> list[Account]:
        with Session(self.engine) as db:
            return [_account(r) for r in db.scalars(select(User).order_by(User.email))]

    @staticmethod
    def _user(db: Session, email: str) -> User:
        row = db.scalar(select(User).where(User.email == normalise_email(email)))
        if row is None:
            raise AccountError(f"{email} has no account: add it with 'frontdoor users add'")
        return row

    # -- signing in -------------------------------------------------------------------------

    def sign_in(self, email: str, password: str, address: str, *,
                now: datetime | None = None) -> SignInResult:
        """Checks the password unless the account or address is locked; counts failures."""
        now = now or datetime.now(UTC)
        email = email.strip().lower()
        keys = (f"account:{email}"[:400], f"address:{address}"[:400])
        with Session(self.engine) as db, db.begin():
            rows = {k: db.get(SignInFailures, k, with_for_update=True) for k in keys}
            if any(r is not None and r.locked_until and aware(r.locked_until) > now  # type: ignore[operator]
                   for r in rows.values()):
                return SignInResult(locked=True)
            user = db.scalar(select(User).where(User.email == email))
            ok = self._verify(user.password_hash if user else self._dummy_hash, password)
            if ok and user is not None and not user.disabled:
                if self.hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = self.hasher.hash(password)
                db.execute(delete(SignInFailures).where(SignInFailures.key == keys[0]))
                return SignInResult(signed_in=self._new_session(db, user, address, now))
            counts = []
            for key, row in rows.items():
                if row is None:
                    row = SignInFailures(key=key, failures=0, window_start=now)
                    db.add(row)
                elif aware(row.window_start) + self.throttle.window < now:  # type: ignore[operator]
                    row.failures, row.window_start, row.locked_until = 0, now, None
                row.failures += 1
                lock_after = (self.throttle.account_lock_after if key.startswith("account:")
                              else self.throttle.address_lock_after)
                if row.failures >= lock_after:
                    row.locked_until = now + self.throttle.lock_for
                counts.append(row.failures)
            delay = max(self.throttle.delay_s(counts[0], self.throttle.account_slow_after),
                        self.throttle.delay_s(counts[1], self.throttle.address_slow_after))
            return SignInResult(delay_s=delay)

    def _verify(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _new_session(self, db: Session, user: User, address: str, now: datetime) -> SignedIn:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        db.add(UserSession(token_hash=_hash_token(token), user_id=user.id, csrf_token=csrf, created_at=now,
                           last_seen_at=now, address=address[:64]))
        return SignedIn(_account(user), token, csrf)

    # -- sessions ---------------------------------------------------------------------------

    def session(self, token: str | None, *, now: datetime | None = None) -> SignedIn | None:
        """The signed-in account for a cookie, if the session is still alive (and touches it)."""
        if not token:
            return None
        now = now or datetime.now(UTC)
        key = _hash_token(token)
        with Session(self.engine) as db, db.begin():
            row = db.get(UserSession, key)
            if row is None:
                return None
            user = db.get(User, row.user_id)
            expired = (aware(row.last_seen_at) + self.sessions.idle < now  # type: ignore[operator]
                       or aware(row.created_at) + self.sessions.absolute < now)  # type: ignore[operator]
            if expired or user is None or user.disabled:
                db.delete(row)
                return None
            if now - aware(row.last_seen_at) > timedelta(seconds=30):  # type: ignore[operator]
                db.execute(update(UserSession).where(UserSession.token_hash == key).values(last_seen_at=now))
            return SignedIn(_account(user), token, row.csrf_token)

    def sign_out(self, token: str | None) -> None:
        if token:
            with Session(self.engine) as db, db.begin():
                db.execute(delete(UserSession).where(UserSession.token_hash == _hash_token(token)))


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise AccountError(f"{value!r} is not a role: use one of {roles}") from None
