"""DynamoDB job store: every state change is one conditional write.

Each operation is built as plain data (`Op`: the client method, its request, how to read the
answer and what a failed condition means) by `JobOps`, and run by `JobStore` (boto3, the
worker) or `AsyncJobStore` (aiobotocore, the API). Both sides share one definition of every
transition, so they can't disagree about which moves are legal:

- a job never leaves `completed`, `failed` or `cancelled`;
- a claim is a conditional update that sets an owner and a lease (the SQS visibility timeout),
  taken only from `queued` or from `processing` whose lease has run out, so two workers can't
  both own a job; every later write by the worker is conditioned on still being the owner;
- a job past `expires_at` reads as gone (DynamoDB TTL deletes late, the emulator never);
- a job that finishes with a callback writes its outbox entry in the same transaction, and any
  worker delivers it (shared.callback_outbox).

Modules: `codec` (attribute values), `ops` (`Op` and the request builders), `rules` (what the
SQLite store shares), `jobs` (`JobOps`), `rows` (other rows, the fleet), `outbox` (callbacks),
`runner` (`JobStore`, `AsyncJobStore`).
"""

from shared.job_store.codec import decode_item, decode_value, encode_item, encode_value
from shared.job_store.jobs import JobOps
from shared.job_store.ops import Op
from shared.job_store.outbox import OutboxOps
from shared.job_store.rules import Claim, JobRules
from shared.job_store.runner import AsyncJobStore, JobStore

__all__ = [
    "AsyncJobStore",
    "Claim",
    "JobOps",
    "JobRules",
    "JobStore",
    "Op",
    "OutboxOps",
    "decode_item",
    "decode_value",
    "encode_item",
    "encode_value",
]
