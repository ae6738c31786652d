"""The stored result, as `POST /v1/listen` answers it: exactly Deepgram's pre-recorded shape.

The result of record (what `/jobs/{id}/result` serves and the exporters read) has everything the
pipeline made, and `metadata.model_info` in the seed's form (`{"name": ..., "arch": "whisper",
...}`). Deepgram instead keys `model_info` by model id, and returns the optional parts only when a
request turns them on: paragraphs (`paragraphs` or `smart_format`), utterances, the detected
language, speakers (`diarize`) and punctuation (`punctuate`, `smart_format` or `paragraphs`),
plus `search` hits, `extra` and `warnings`. Text edits (numbers, redaction, replace...) are already
in the stored result (shared.listen_text). Works on plain JSON dicts, so the API and the worker's
callbacks shape the same bytes without the models.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from shared.deepgram_models import model_note
from shared.jobs import ListenOptions
from shared.transcript_search import search

MODEL_VERSION = "faster-whisper"
_MODEL_NAMESPACE = uuid.UUID("6f1d2b7e-4d4b-4c55-9a4c-6e2a6c5a9d10")  # as gpu_worker.pipeline.output
_DIARIZER_NAMESPACE = uuid.UUID("0b9e0f4c-5a43-4d0f-8f0a-3f1d1f0d6a2e")

# Deepgram's error codes by HTTP status (`err_code` in its error bodies).
ERROR_CODES: dict[int, str] = {
    400: "Bad Request",
    401: "INVALID_AUTH",
    403: "INSUFFICIENT_PERMISSIONS",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
    504: "TIMEOUT",
}


def error_body(status: int, message: str, request_id: str) -> dict[str, str]:
    """Deepgram's error shape."""
    return {"err_code": ERROR_CODES.get(status, "Bad Request"), "err_msg": message, "request_id": request_id}


def _model_id(name: str) -> str:
    return str(uuid.uuid5(_MODEL_NAMESPACE, name))


def _punctuated(listen: ListenOptions) -> bool:
    """Deepgram punctuates for `punctuate`, and also for `smart_format` and `paragraphs`."""
    return listen.punctuate or listen.smart_format or listen.paragraphs


def _word(word: Mapping[str, Any], listen: ListenOptions) -> dict[str, Any]:
    shaped = {k: word[k] for k in ("word", "start", "end", "confidence") if k in word}
    if listen.diarize:
        shaped.update({k: word[k] for k in ("speaker", "speaker_confidence") if k in word})
    if _punctuated(listen):
        shaped["punctuated_word"] = word.get("punctuated_word", word.get("word", ""))
    return shaped


def _transcript(punctuated: str, words: list[Mapping[str, Any]], listen: ListenOptions) -> str:
    return punctuated if _punctuated(listen) else " ".join(str(w.get("word", "")) for w in words)


def _alternative(alternative: Mapping[str, Any], listen: ListenOptions) -> dict[str, Any]:
    words = list(alternative.get("words", []))
    shaped: dict[str, Any] = {
        "transcript": _transcript(alternative.get("transcript", ""), words, listen),
        "confidence": alternative.get("confidence", 0.0),
        "words": [_word(w, listen) for w in words],
    }
    if (listen.paragraphs or listen.smart_format) and "paragraphs" in alternative:
        paragraphs = alternative["paragraphs"]
        shaped["paragraphs"] = {
            "transcript": paragraphs.get("transcript", ""),
            "paragraphs": [
                p if listen.diarize else {k: v for k, v in p.items() if k != "speaker"}
                for p in paragraphs.get("paragraphs", [])
            ],
        }
    return shaped


def _channel(channel: Mapping[str, Any], listen: ListenOptions) -> dict[str, Any]:
    shaped: dict[str, Any] = {}
    alternatives = list(channel.get("alternatives", []))
    if listen.search:
        shaped["search"] = search(alternatives[0].get("words", []) if alternatives else [], listen.search)
    shaped["alternatives"] = [_alternative(a, listen) for a in alternatives]
    if listen.detect_language and channel.get("detected_language"):
        shaped["detected_language"] = channel["detected_language"]
        if channel.get("language_confidence") is not None:
            shaped["language_confidence"] = channel["language_confidence"]
    return shaped


def _utterance(utterance: Mapping[str, Any], listen: ListenOptions) -> dict[str, Any]:
    words = list(utterance.get("words", []))
    shaped = {
        "start": utterance["start"],
        "end": utterance["end"],
        "confidence": utterance.get("confidence", 0.0),
        "channel": utterance.get("channel", 0),
        "transcript": _transcript(utterance.get("transcript", ""), words, listen),
        "words": [_word(w, listen) for w in words],
        "id": utterance.get("id") or str(uuid.uuid4()),
    }
    if listen.diarize and utterance.get("speaker") is not None:
        shaped["speaker"] = utterance["speaker"]
    return shaped


def _metadata(metadata: Mapping[str, Any], listen: ListenOptions) -> dict[str, Any]:
    info = metadata.get("model_info") or {}
    name = str(info.get("name") or "whisper")
    model_id = (metadata.get("models") or [_model_id(name)])[0]
    entry: dict[str, Any] = {"name": name, "version": MODEL_VERSION, "arch": str(info.get("arch", "whisper"))}
    if listen.requested_model:
        entry["requested_model"] = listen.requested_model
        entry["note"] = model_note(listen.requested_model, name)
    shaped: dict[str, Any] = {
        "transaction_key": metadata.get("transaction_key", "deprecated"),
        "request_id": metadata["request_id"],
        "sha256": metadata["sha256"],
        "created": metadata["created"],
        "duration": metadata["duration"],
        "channels": metadata["channels"],
        "models": [model_id],
        "model_info": {model_id: entry},
    }
    diarizer = info.get("diarizer")
    if listen.diarize and diarizer and diarizer != "none":
        shaped["diarize_info"] = {
            "model_uuid": str(uuid.uuid5(_DIARIZER_NAMESPACE, diarizer)),
            "arch": diarizer,
        }
    if listen.tags:
        shaped["tags"] = list(listen.tags)
    if listen.extra:
        shaped["extra"] = dict(listen.extra)
    if listen.warnings:
        shaped["warnings"] = [warning.model_dump() for warning in listen.warnings]
    return shaped


def listen_response(stored: Mapping[str, Any], listen: ListenOptions) -> dict[str, Any]:
    """Deepgram's response for a `/v1/listen` request with `listen`'s options, from the stored result."""
    results = stored.get("results", {})
    shaped_results: dict[str, Any] = {"channels": [_channel(c, listen) for c in results.get("channels", [])]}
    if listen.utterances:
        shaped_results["utterances"] = [_utterance(u, listen) for u in results.get("utterances") or []]
    if listen.diarize:  # the additive overlap fields, which Deepgram clients ignore
        for field in ("speaker_turns", "overlaps"):
            if results.get(field) is not None:
                shaped_results[field] = results[field]
    return {"metadata": _metadata(stored["metadata"], listen), "results": shaped_results}
