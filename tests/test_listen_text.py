"""Deepgram's text parameters on a stored result, as the worker applies them (shared.listen_text)
and as /v1/listen shapes them (shared.deepgram_shape): numbers, redaction, profanity, replace,
dictation, measurements, filler words, search, punctuation defaults, warnings and extra.

The words are what Whisper writes (digits, "$25", "3rd", punctuation on the word), laid out as
the worker stores them; the real pipeline behind them is in test_deepgram_sdk.
"""

from __future__ import annotations

import re
from typing import Any

from shared.deepgram import DeepgramResponse
from shared.deepgram_shape import listen_response
from shared.exporters import ExportFormat, export
from shared.jobs import ListenOptions, ListenWarning
from shared.listen_text import apply_listen_text


def _words(text: str, speaker: int = 0, start: float = 0.0) -> list[dict[str, Any]]:
    words = []
    for index, token in enumerate(text.split()):
        begin = round(start + 0.5 * index, 3)
        bare = re.sub(r"^[^\w$']+|[^\w']+$", "", token).lower()
        words.append({"word": bare, "start": begin, "end": round(begin + 0.4, 3), "confidence": 0.9,
                      "speaker": speaker, "speaker_confidence": 0.8, "punctuated_word": token})  # fmt: skip
    return words


FIRST = "Um, I paid $25 on March 3rd. My card is 4111 1111 1111 1111, expires 12/27."
SECOND = "Social security 123-45-6789. What the fuck comma that is 5 kilograms of Kubernetes."


def stored(first: str = FIRST, second: str = SECOND) -> dict[str, Any]:
    """A result of record with two speakers, one utterance and one paragraph each."""
    one, two = _words(first, 0), _words(second, 1, start=20.0)
    words = one + two

    def paragraph(ws: list[dict[str, Any]], speaker: int) -> dict[str, Any]:
        return {"sentences": [{"text": " ".join(w["punctuated_word"] for w in ws), "start": ws[0]["start"],
                               "end": ws[-1]["end"]}], "speaker": speaker, "num_words": len(ws),
                "start": ws[0]["start"], "end": ws[-1]["end"]}  # fmt: skip

    def utterance(ws: list[dict[str, Any]], speaker: int) -> dict[str, Any]:
        return {"start": ws[0]["start"], "end": ws[-1]["end"], "confidence": 0.9, "channel": 0,
                "transcript": " ".join(w["punctuated_word"] for w in ws), "words": ws, "speaker": speaker,
                "id": f"u{speaker}"}  # fmt: skip

    alternative = {
        "transcript": " ".join(w["punctuated_word"] for w in words),
        "confidence": 0.9,
        "words": words,
        "paragraphs": {"transcript": "", "paragraphs": [paragraph(one, 0), paragraph(two, 1)]},
    }
    metadata = {"transaction_key": "deprecated", "request_id": "r1", "sha256": "ab" * 32,
                "created": "2025-01-01T00:00:00.000Z", "duration": 40.0, "channels": 1, "models": ["m"],
                "model_info": {"name": "base", "arch": "whisper", "diarizer": "embedded"}}  # fmt: skip
    return {
        "metadata": metadata,
        "results": {
            "channels": [{"alternatives": [alternative]}],
            "utterances": [utterance(one, 0), utterance(two, 1)],
        },
    }


def every_text(result: dict[str, Any]) -> list[str]:
    """Every place a transcript's text lives: transcript, words, utterances, paragraphs, exports."""
    alternative = result["results"]["channels"][0]["alternatives"][0]
    texts = [alternative["transcript"], alternative["paragraphs"]["transcript"]]
    texts += [w["punctuated_word"] for w in alternative["words"]] + [w["word"] for w in alternative["words"]]
    texts += [s["text"] for p in alternative["paragraphs"]["paragraphs"] for s in p["sentences"]]
    for utterance in result["results"]["utterances"]:
        texts += [utterance["transcript"], *(w["punctuated_word"] for w in utterance["words"])]
    response = DeepgramResponse.model_validate(result)
    texts += [export(response, fmt) for fmt in (ExportFormat.SRT, ExportFormat.VTT, ExportFormat.TXT)]
    # Without the cue numbers, timestamps and speaker labels: the words themselves.
    furniture = r"\d+:\d{2}:\d{2}[.,]\d{3}|\d+:\d{2}[.,]\d{3}|^\d+$|Speaker \d+|SPEAKER_\d+"
    return [re.sub(furniture, "", text, flags=re.MULTILINE) for text in texts]


def transcript(result: dict[str, Any]) -> str:
    return result["results"]["channels"][0]["alternatives"][0]["transcript"]


# --- numbers ---------------------------------------------------------------------------------------
def test_without_numerals_numbers_are_words_everywhere() -> None:
    edited = apply_listen_text(stored(), ListenOptions(redact=()))
    assert "I paid twenty five dollars on March third." in transcript(edited)
    assert all(not re.search(r"\d", text) for text in every_text(edited)), every_text(edited)
    words = edited["results"]["channels"][0]["alternatives"][0]["words"]
    spelled = [w for w in words if w["word"] in ("twenty", "five", "dollars")][:3]
    assert spelled[0]["start"] == 1.5 and spelled[-1]["end"] == 1.9  # "$25" keeps its time span


def test_numerals_and_smart_format_keep_digits_and_measurements_abbreviate() -> None:
    edited = apply_listen_text(stored(), ListenOptions(numerals=True, measurements=True))
    assert "I paid $25 on March 3rd." in transcript(edited) and "5 kg of Kubernetes." in transcript(edited)
    plain = apply_listen_text(stored(), ListenOptions(numerals=True))
    assert "5 kilograms" in transcript(plain)


# --- redaction -------------------------------------------------------------------------------------
def test_redact_pci_and_ssn_replace_the_numbers_with_tokens_keeping_timings() -> None:
    edited = apply_listen_text(stored(), ListenOptions(redact=("pci", "ssn"), numerals=True))
    text = transcript(edited)
    assert "My card is [CREDIT_CARD_1], expires [CREDIT_CARD_EXPIRATION_1]." in text, text
    assert "Social security [SSN_1]." in text and "$25" in text  # other numbers stay
    card = next(
        w
        for w in edited["results"]["channels"][0]["alternatives"][0]["words"]
        if w["word"] == "[CREDIT_CARD_1]"
    )
    assert (card["start"], card["end"]) == (5.0, 6.9)  # from the first group's start to the last's end
    for secret in ("4111", "1111", "6789", "12/27"):
        assert all(secret not in t for t in every_text(edited))


def test_redact_numbers_removes_digits_and_number_words_everywhere() -> None:
    spoken = "I paid twenty five dollars, call four five six seven."
    edited = apply_listen_text(stored(spoken), ListenOptions(redact=("numbers",), numerals=True))
    assert transcript(edited).startswith("I paid [NUMBER_1] dollars, call [NUMBER_2].")
    for text in every_text(edited):
        assert not re.search(r"\d|\b(four|five|six|seven|twenty)\b", re.sub(r"\[NUMBER_\d+\]", "", text)), (
            text
        )
    utterance = edited["results"]["utterances"][0]
    assert utterance["transcript"] == "I paid [NUMBER_1] dollars, call [NUMBER_2]."


# --- profanity, replace, dictation, filler words ---------------------------------------------------
def test_profanity_filter_replace_dictation_and_fillers() -> None:
    options = ListenOptions(
        profanity_filter=True,
        replace=(("kubernetes", "K8s"), ("what the", "")),
        dictation=True,
        numerals=True,
    )
    text = transcript(apply_listen_text(stored(), options))
    assert "f***, that is 5 kilograms of K8s." in text, text
    assert not text.startswith("Um") and "What" not in text  # fillers dropped; "what the" removed
    kept = transcript(apply_listen_text(stored(), ListenOptions(filler_words=True, numerals=True)))
    assert kept.startswith("Um, I paid") and "fuck comma" in kept  # untouched without the options


# --- shaping ----------------------------------------------------------------------------------------
def test_punctuate_paragraphs_and_smart_format_follow_deepgram() -> None:
    result = apply_listen_text(stored(), ListenOptions())
    plain = listen_response(result, ListenOptions())["results"]["channels"][0]["alternatives"][0]
    assert plain["transcript"].startswith("i paid twenty five dollars")  # "um" dropped: filler_words=false
    assert "punctuated_word" not in plain["words"][0]
    for options in (ListenOptions(paragraphs=True), ListenOptions(smart_format=True)):
        shaped = listen_response(result, options)["results"]["channels"][0]["alternatives"][0]
        assert shaped["transcript"].startswith("I paid") and shaped["words"][0]["punctuated_word"] == "I"
        assert "paragraphs" in shaped
    punctuated = listen_response(result, ListenOptions(punctuate=True))["results"]["channels"][0]
    assert "paragraphs" not in punctuated["alternatives"][0]
    assert "twenty five dollars" in punctuated["alternatives"][0]["transcript"]  # no number formatting


def test_search_hits_extra_warnings_and_model_notes() -> None:
    options = ListenOptions(
        search=("kubernetes", "march third", "zebra"),
        extra=(("team", "support"),),
        warnings=(ListenWarning(parameter="summarize", type="unsupported_feature", message="no summaries"),),
        requested_model="whisper-base",
    )
    shaped = listen_response(apply_listen_text(stored(), ListenOptions()), options)
    (channel,) = shaped["results"]["channels"]
    kubernetes, march, zebra = channel["search"]
    assert kubernetes["query"] == "kubernetes" and kubernetes["hits"][0]["confidence"] == 1.0
    assert kubernetes["hits"][0]["snippet"] == "Kubernetes." and kubernetes["hits"][0]["start"] > 20
    assert march["hits"][0]["snippet"] == "March third." and zebra["hits"] == []
    metadata = shaped["metadata"]
    assert metadata["extra"] == {"team": "support"}
    assert metadata["warnings"] == [
        {"parameter": "summarize", "type": "unsupported_feature", "message": "no summaries"}
    ]
    (info,) = metadata["model_info"].values()
    assert (
        info["note"] == "'whisper-base' is served by Whisper base"
    )  # an explicit mapping, not "the default"
    (nova,) = listen_response(stored(), ListenOptions(requested_model="nova-3"))["metadata"][
        "model_info"
    ].values()
    assert nova["note"].endswith("this deployment's default")
