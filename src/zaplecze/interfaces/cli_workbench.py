"""The workbench's commands: ``serve``, ``user`` (add, list, code, token, roles, approve) and
``desk assign``. Separate from ``cli`` so the batch commands start without loading the web
stack."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from zaplecze.services.access import ROLE_NAMES

ENV_PASSWORD = "ZAPLECZE_NEW_PASSWORD"


def add_parsers(commands: Any, operator: str) -> None:
    serve = commands.add_parser(
        "serve", help="run the web workbench and REST API",
        description="Serve the operations workbench (pages at /, REST API at /api, OpenAPI at "
        "/api/openapi.json) with uvicorn. Put it behind HTTPS (a reverse proxy) for anything "
        "but a loopback address: cookies are Secure.")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=_at_least_one, default=1, metavar="N",
                       help="server processes (default 1); one per core for many users")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="do not log each request")

    user = commands.add_parser("user", help="staff users: add, list, roles, TOTP, API tokens")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", help="create a user (asks for the password, or reads $" + ENV_PASSWORD + ")",
        description="Create a staff user with roles and a desk; prints the TOTP secret and its "
        "otpauth:// URI once, for the user's authenticator app. Roles: "
        + ", ".join(ROLE_NAMES) + ".")
    add.add_argument("username")
    add.add_argument("--role", dest="roles", action="append", required=True,
                     choices=ROLE_NAMES, help="repeat for several roles")
    add.add_argument("--desk", default="", help="the desk whose accounts the user sees "
                     "(default: every desk)")
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--by", default=operator, help="who creates it (default: $USER)")
    actions.add_parser("list", help="users with roles and desk")
    code = actions.add_parser("code", help="print a user's current TOTP code (demo and "
                              "support; needs access to the database)")
    code.add_argument("username")
    token = actions.add_parser("token", help="issue an API token for a user")
    token.add_argument("username")
    token.add_argument("--scope", dest="scopes", action="append", default=[],
                       help="a permission such as positions:read (repeat; default: all the "
                       "user's roles allow)")
    token.add_argument("--days", type=int, default=90)
    token.add_argument("--by", default=operator)
    roles = actions.add_parser("roles", help="request a change of roles (four-eyes: another "
                               "person approves it with `user approve`)")
    roles.add_argument("username")
    roles.add_argument("--role", dest="roles", action="append", required=True,
                       choices=ROLE_NAMES)
    roles.add_argument("--by", default=operator)
    approve = actions.add_parser("approve", help="approve a pending request (not your own)")
    approve.add_argument("request_id")
    approve.add_argument("--hash", dest="payload_hash", required=True,
                         help="the payload hash shown with the request")
    approve.add_argument("--by", default=operator)

    desk = commands.add_parser("desk", help="assign accounts to a desk (data scoping)")
    desk_actions = desk.add_subparsers(dest="desk_command", metavar="ACTION", required=True)
    assign = desk_actions.add_parser("assign", help="put accounts in a desk")
    assign.add_argument("desk")
    assign.add_argument("accounts", nargs="+")
    assign.add_argument("--by", default=operator)


def _password(username: str) -> str:
    if os.environ.get(ENV_PASSWORD):
        return os.environ[ENV_PASSWORD]
    first = getpass.getpass(f"password for {username}: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the passwords differ")
    return first


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def cmd_serve(args: argparse.Namespace, book: Any) -> int:
    from zaplecze.interfaces.web.server import serve

    print(f"Zaplecze workbench on http://{args.host}:{args.port}/ (API docs at /api/docs), "
          f"{args.workers} worker process(es)", file=sys.stderr)
    book.engine.dispose()  # each worker opens the book itself
    serve(book.url, args.host, args.port, args.workers, access_log=args.access_log)
    return 0


def cmd_user(args: argparse.Namespace, book: Any) -> int:
    from zaplecze.services import four_eyes, identity
    from zaplecze.services.audit_trail import Actor
    from zaplecze.store.db import read_connection

    if args.user_command == "add":
        user = identity.add_user(book.engine, Actor(args.by, "cli"), args.username,
                                 _password(args.username), args.roles, args.desk, args.name)
        print(f"user {user.username}: roles {', '.join(user.roles)}; desk "
              f"{user.desk or '(every desk)'}")
        print(f"TOTP secret {user.totp_secret}\n{identity.totp_uri(user)}")
        return 0
    if args.user_command == "list":
        with read_connection(book.engine) as connection:
            for user in identity.list_users(connection):
                print(f"{user.username:20} {','.join(user.roles):30} "
                      f"{user.desk or '*':10} {'active' if user.active else 'inactive'}")
        return 0
    if args.user_command == "code":
        with read_connection(book.engine) as connection:
            found = identity.get_user(connection, args.username)
        if found is None:
            raise SystemExit(f"no user {args.username}")
        print(identity.totp_code(found.totp_secret))
        return 0
    if args.user_command == "token":
        print(identity.issue_token(book.engine, Actor(args.by, "cli"), args.username,
                                   args.scopes, args.days))
        return 0
    if args.user_command == "roles":
        made = four_eyes.request(book.engine, Actor(args.by, "cli"), "user.roles",
                                 args.username, {"username": args.username,
                                                 "roles": args.roles})
        print(f"request {made.request_id} (hash {made.payload_hash}): another person approves "
              f"with `zaplecze user approve {made.request_id} --hash {made.payload_hash}`")
        return 0
    done = four_eyes.decide(book.engine, Actor(args.by, "cli"), args.request_id, True,
                            args.payload_hash)
    print(f"request {done.request_id}: {done.status} by {done.checker}")
    return 0


def cmd_desk(args: argparse.Namespace, book: Any) -> int:
    from zaplecze.services import identity
    from zaplecze.services.audit_trail import Actor

    count = identity.assign_desk(book.engine, Actor(args.by, "cli"), args.desk, args.accounts)
    print(f"{count} account(s) in desk {args.desk}")
    return 0
