"""Create, list and revoke API keys: `python -m api_lambda.keys_cli create --project NAME`.

Talks to the backend BACKEND chooses: the SQLite database in DATA_DIR (one machine), or the jobs
table named by TABLE_NAME (AWS_ENDPOINT_URL for an emulator) with the caller's AWS credentials.
The secret is printed once, at creation; only its hash is kept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from shared.backends import sync_store
from shared.settings import Settings, get_settings


def _store(settings: Settings) -> tuple[Any, Any]:
    store = sync_store(settings)
    return store, store.keys


def create(settings: Settings, project: str, comment: str | None = None) -> str:
    """Store a new key for `project` and return its secret."""
    store, ops = _store(settings)
    secret, op = ops.create(project, comment)
    store.run(op)
    return secret


def revoke(settings: Settings, key_id: str) -> int:
    """Revoke the keys whose id (or secret prefix) is `key_id`; returns how many."""
    store, ops = _store(settings)
    matches = [row for row, key in store.run(ops.list_keys()) if key_id in (key.key_id, key.prefix)]
    return sum(store.run(ops.revoke(row)) for row in matches)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api_lambda.keys_cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("create", help="create a key and print its secret (shown only once)")
    made.add_argument("--project", required=True, help="the project whose jobs the key can see")
    made.add_argument("--comment", help="a note to recognise the key by")
    listed = commands.add_parser("list", help="list keys (never their secrets)")
    listed.add_argument("--project", help="only this project's keys")
    gone = commands.add_parser("revoke", help="revoke a key by its id (or the prefix `list` shows)")
    gone.add_argument("key_id")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    settings = get_settings()
    if args.command == "create":
        secret = create(settings, args.project, args.comment)
        print(secret)
        print(
            f"project {args.project}: send it as `Authorization: Token {secret}` (it is not shown again)",
            file=sys.stderr,
        )
        return 0
    if args.command == "list":
        store, ops = _store(settings)
        print(f"{'key_id':16}  {'prefix':8}  {'project':20}  {'created_at':32}  state")
        for _, key in store.run(ops.list_keys()):
            if args.project in (None, key.project_id):
                state = "active" if key.active else f"revoked {key.revoked_at}"
                print(f"{key.key_id:16}  {key.prefix:8}  {key.project_id:20}  {key.created_at:32}  {state}")
        return 0
    revoked = revoke(settings, args.key_id)
    if not revoked:
        print(f"no key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {revoked} key(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
