"""Tiny randomly-initialised models, saved in exactly the layouts the optional stages load.

No separation, alignment or punctuation weights can be downloaded here, so tests build a small
model of the real architecture with the real library and point MODEL_DIR (or the hub cache) at
it. That exercises loading, pre- and post-processing and integration, never output quality.
"""

from __future__ import annotations

import json
import string
from fractions import Fraction
from pathlib import Path

PUNCTUATION_LABELS = ("0", ".", ",", "?", "-", ":")  # as oliverguhr/fullstop-punctuation-multilang-large
HTDEMUCS_SIGNATURE = "955717e8"  # the single model of demucs's htdemucs bag
TINY_TRANSFORMER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
"""The encoder size of every tiny transformers model here: fast to build, still a real forward pass."""


def _tiny_htdemucs(seed: int):
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    # Real htdemucs geometry (nfft 4096, depth 4, 7.8 s segments) with few channels and one
    # transformer layer: about 0.1 M parameters instead of 42 M.
    return HTDemucs(
        sources=["drums", "bass", "other", "vocals"],
        channels=4,
        t_layers=1,
        t_heads=2,
        dconv_comp=2,
        segment=Fraction(39, 5),
    ).eval()


def _json_default(value: object) -> object:
    if isinstance(value, Fraction):
        return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
    raise TypeError(f"cannot encode {value!r}")


def make_htdemucs(directory: Path, *, layout: str = "th", seed: int = 0) -> Path:
    """A tiny HTDemucs in `directory`.

    layout "th": `htdemucs.th`, demucs's serialized package (what MODEL_DIR/demucs/ holds).
    layout "safetensors": `htdemucs.yaml` + `<signature>.safetensors` with the class and init
    arguments in the metadata, as the `adefossez/HTDemucs` hub repo (and so the hub cache) holds.
    """
    import torch

    model = _tiny_htdemucs(seed)
    args, kwargs = model._init_args_kwargs
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    directory.mkdir(parents=True, exist_ok=True)
    if layout == "th":
        package = {"klass": type(model), "args": args, "kwargs": kwargs, "state": state}
        torch.save(package, directory / "htdemucs.th")
    elif layout == "safetensors":
        from safetensors.torch import save_file

        metadata = {
            "klass": f"{type(model).__module__}.{type(model).__name__}",
            "args": json.dumps(list(args), default=_json_default),
            "kwargs": json.dumps(kwargs, default=_json_default),
        }
        save_file(state, str(directory / f"{HTDEMUCS_SIGNATURE}.safetensors"), metadata=metadata)
        (directory / "htdemucs.yaml").write_text(f"models: ['{HTDEMUCS_SIGNATURE}']\n")
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return directory


def make_ctc_aligner(directory: Path, *, seed: int = 0, uppercase: bool = False) -> Path:
    """A tiny wav2vec2 CTC model with a character vocabulary, saved with `save_pretrained`.

    Same files as a hub wav2vec2 ASR model (config.json, model.safetensors, vocab.json,
    tokenizer_config.json, preprocessor_config.json): the layout of MODEL_DIR/alignment/<language>/.
    The default wav2vec2 feature encoder keeps the real 20 ms frame rate.
    """
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    torch.manual_seed(seed)
    letters = (string.ascii_uppercase if uppercase else string.ascii_lowercase) + "'"
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4} | {c: 5 + i for i, c in enumerate(letters)}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(directory / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=False,
    )
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        **TINY_TRANSFORMER,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    extractor.save_pretrained(directory)
    return directory


def make_punctuation_model(directory: Path, *, seed: int = 0, favour: str | None = None) -> Path:
    """A tiny XLM-R token classifier with the fullstop labels and a Unigram (sentencepiece-style)
    tokenizer, saved with `save_pretrained` like the hub model (MODEL_DIR/punctuation/).

    `favour` sets the classifier bias so that label wins on every token: random weights then give a
    known prediction, which lets a test check the label-to-mark mapping and the re-casing exactly.
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForTokenClassification, XLMRobertaTokenizer

    torch.manual_seed(seed)
    words = [
        "the",
        "a",
        "and",
        "to",
        "of",
        "is",
        "it",
        "you",
        "i",
        "we",
        "that",
        "this",
        "did",
        "good",
        "morning",
        "get",
        "chance",
        "look",
        "at",
        "garden",
    ]
    pieces = (
        [(f"▁{w}", -3.0) for w in words] + [(c, -6.0) for c in string.ascii_letters + "'"] + [("▁", -4.0)]
    )
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    tokenizer = XLMRobertaTokenizer(vocab=[*specials, *pieces, ("<mask>", 0.0)])
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        **TINY_TRANSFORMER,
        max_position_embeddings=514,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        id2label=dict(enumerate(PUNCTUATION_LABELS)),
        label2id={label: i for i, label in enumerate(PUNCTUATION_LABELS)},
    )
    model = XLMRobertaForTokenClassification(config)
    if favour is not None:
        with torch.no_grad():
            model.classifier.bias.zero_()
            model.classifier.bias[PUNCTUATION_LABELS.index(favour)] = 100.0
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
