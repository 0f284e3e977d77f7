"""Staff accounts and login sessions.

Passwords are stored as scrypt hashes (salted, parameters kept with the hash); session tokens
are random and only their SHA-256 is stored, so a copy of the database opens no session.
Wrong passwords slow down the address that types them (console/login_throttle.py): a
guesser cannot lock a colleague out, and an unknown name is answered like a known one.

Command line (the only way accounts are made):
    python -m console.accounts add zhang --role specialist --department scjg --name 张三
    python -m console.accounts list | passwd zhang | disable zhang | enable zhang
The password is asked twice at the prompt, or read from stdin with --password-stdin.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import re
import secrets
import sys
import time
from dataclasses import dataclass

import sqlalchemy as sa

from cases.repository import database_url
from cases.schema import engine_for, migrate, staff, staff_sessions
from console.login_throttle import LoginThrottle
from console.names import departments

ROLES = ("specialist", "supervisor")
ROLE_LABELS = {"specialist": "专员", "supervisor": "主管"}
USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 10
SESSION_SECONDS = 8 * 3600
SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}

def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **SCRYPT)
    b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${b64(salt)}${b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# checked against for an unknown user, so that a wrong name costs what a wrong password costs
_NOBODY = hash_password(secrets.token_urlsafe(16))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StaffMember:
    username: str
    name: str
    role: str
    department: str | None

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    def may_see(self, department: str) -> bool:
        return self.is_supervisor or department == self.department


def check_new(username: str, role: str, department: str | None) -> None:
    """The rules of a new account but the password's, so the command line can refuse a typo
    before anyone types a password twice. ValueError naming the valid choices otherwise."""
    if not USERNAME.fullmatch(username):
        raise ValueError("username: 2–32 of a-z 0-9 _ . -, starting with a letter")
    if role not in ROLES:
        raise ValueError(f"role: one of {', '.join(ROLES)}")
    units = departments()
    valid = "".join(f"\n  {unit}\t{name}" for unit, name in units.items())
    if role == "specialist" and department not in units:
        given = f" ({department!r} is not one)" if department else ""
        raise ValueError(f"a specialist needs --department (make staff DEPT=…), one of the unit ids in "
                         f"kb/departments.yml{given}:{valid}")
    if department is not None and department not in units:
        raise ValueError(f"unknown department {department!r}; the unit ids in kb/departments.yml:{valid}")


class Accounts:
    """Staff accounts and sessions in the cases database."""

    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        migrate(self.engine)
        self.throttle = LoginThrottle(self.engine, clock=lambda: time.time())

    def add(self, username: str, password: str, role: str, department: str | None, name: str = "") -> StaffMember:
        check_new(username, role, department)
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"password: at least {MIN_PASSWORD} characters")
        try:
            with self.engine.begin() as db:
                db.execute(staff.insert().values(username=username, name=name or username, role=role,
                                                 department=department, password_hash=hash_password(password),
                                                 active=True, failed_logins=0, created_at=time.time()))
        except sa.exc.IntegrityError:
            raise ValueError(f"{username} exists already") from None
        return StaffMember(username, name or username, role, department)

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"password: at least {MIN_PASSWORD} characters")
        self._update(username, password_hash=hash_password(password), failed_logins=0, locked_until=None)
        self.throttle.clear(username)
        self.end_sessions(username)

    def set_active(self, username: str, active: bool) -> None:
        self._update(username, active=active)
        if not active:
            self.end_sessions(username)

    def _update(self, username: str, **values: object) -> None:
        with self.engine.begin() as db:
            if db.execute(staff.update().where(staff.c.username == username).values(**values)).rowcount != 1:
                raise ValueError(f"no account {username}")

    def members(self) -> list[tuple[StaffMember, bool]]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(staff).order_by(staff.c.username)).all()
        return [(StaffMember(r.username, r.name, r.role, r.department), bool(r.active)) for r in rows]

    def member(self, username: str) -> StaffMember | None:
        with self.engine.connect() as db:
            row = db.execute(sa.select(staff).where(staff.c.username == username, staff.c.active.is_(True))).first()
        return StaffMember(row.username, row.name, row.role, row.department) if row else None

    def login(self, username: str, password: str, source: str = "") -> tuple[StaffMember, str] | None:
        """(member, session token) for the right password; None otherwise. Throttled when
        `source` (the client's address) has tried this name too often — checked and counted
        before the password, for a known and an unknown name alike."""
        self.throttle.attempt(source, username)
        now = time.time()
        with self.engine.connect() as db:
            row = db.execute(sa.select(staff).where(staff.c.username == username)).first()
        if row is None or not row.active:
            check_password(password, _NOBODY)  # one scrypt, as for a known name
            return None
        if not check_password(password, row.password_hash):
            return None
        self.throttle.succeeded(source, username)
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as db:
            db.execute(staff_sessions.delete().where(staff_sessions.c.expires_at < now))
            db.execute(staff_sessions.insert().values(token_hash=_token_hash(token), username=username,
                                                      created_at=now, expires_at=now + SESSION_SECONDS))
        return StaffMember(row.username, row.name, row.role, row.department), token

    def session(self, token: str | None) -> StaffMember | None:
        """The member a live session token belongs to (None if unknown, expired or disabled)."""
        if not token:
            return None
        with self.engine.connect() as db:
            row = db.execute(sa.select(staff).join(staff_sessions, staff_sessions.c.username == staff.c.username)
                             .where(staff_sessions.c.token_hash == _token_hash(token),
                                    staff_sessions.c.expires_at > time.time(), staff.c.active.is_(True))).first()
        return StaffMember(row.username, row.name, row.role, row.department) if row else None

    def logout(self, token: str) -> None:
        with self.engine.begin() as db:
            db.execute(staff_sessions.delete().where(staff_sessions.c.token_hash == _token_hash(token)))

    def end_sessions(self, username: str) -> None:
        with self.engine.begin() as db:
            db.execute(staff_sessions.delete().where(staff_sessions.c.username == username))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console.accounts", description="Staff console accounts")
    parser.add_argument("--database-url", default=None, help="default: $DATABASE_URL, else var/cases.db")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--department", help="unit id from kb/departments.yml (required for specialists)")
    add.add_argument("--name", default="", help="name shown to colleagues and users")
    add.add_argument("--password-stdin", action="store_true")
    passwd = commands.add_parser("passwd", help="set a new password (ends the account's sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    for command in ("disable", "enable"):
        commands.add_parser(command, help=f"{command} an account").add_argument("username")
    commands.add_parser("list", help="list accounts")
    args = parser.parse_args(argv)
    accounts = Accounts(args.database_url or database_url())
    try:
        if args.command == "add":
            check_new(args.username, args.role, args.department)  # before the password is asked
            if any(member.username == args.username for member, _ in accounts.members()):
                raise ValueError(f"{args.username} exists already")
            member = accounts.add(args.username, _read_password(args.password_stdin), args.role, args.department,
                                  args.name)
            print(f"created {member.username} ({ROLE_LABELS[member.role]}, {member.department or '全部部门'})")
        elif args.command == "passwd":
            accounts.set_password(args.username, _read_password(args.password_stdin))
            print(f"password of {args.username} changed")
        elif args.command in ("disable", "enable"):
            accounts.set_active(args.username, args.command == "enable")
            print(f"{args.username} {args.command}d")
        else:
            for member, active in accounts.members():
                print(f"{member.username}\t{member.name}\t{member.role}\t{member.department or '-'}"
                      f"\t{'active' if active else 'disabled'}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
