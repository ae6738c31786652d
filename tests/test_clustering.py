"""NME-SC clustering on synthetic embeddings shaped like resemblyzer's (pure numpy, no audio).

Each synthetic speaker is a direction on the unit sphere around a shared mean, and its windows
scatter around it: windows of one speaker have cosine ≈ 0.85 with each other and ≈ 0.55 with
another speaker's, as resemblyzer's 1.5 s windows of distinct voices do (evaluation/synthetic.py voices).
"""

from __future__ import annotations

import numpy as np
import pytest

from gpu_worker.pipeline.diarization.clustering import ClusteringParams, cluster, speaker_bounds
from gpu_worker.pipeline.types import SpeakerCount


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def voices(
    k: int,
    per_speaker: int = 30,
    *,
    dim: int = 64,
    between: float = 0.65,
    within: float = 0.85,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, true labels) for k speakers; rows shuffled so order carries no hint."""
    rng = np.random.default_rng(seed)
    base = _unit(rng.standard_normal(dim))
    centres = _unit(base + np.sqrt(1 / between - 1) * _unit(rng.standard_normal((k, dim))))
    labels = np.repeat(np.arange(k), per_speaker)
    x = _unit(centres[labels] + np.sqrt(1 / within - 1) * _unit(rng.standard_normal((labels.size, dim))))
    order = rng.permutation(labels.size)
    return x[order], labels[order]


def purity(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of rows whose found cluster's majority true label is their own."""
    hits = sum(np.bincount(truth[found == c]).max() for c in np.unique(found))
    return hits / truth.size


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_the_number_of_speakers_and_who_is_who(k: int, seed: int) -> None:
    x, truth = voices(k, seed=seed)
    result = cluster(x)
    assert result.num_clusters == k
    assert purity(result.labels, truth) == 1.0
    assert result.centroids.shape == (k, x.shape[1])
    np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1.0)


def test_one_voice_is_one_speaker_even_when_short() -> None:
    """Few windows of one voice: the eigengap alone splits them, the centroid merge must not."""
    for seed in range(5):
        x, _ = voices(1, per_speaker=20, seed=seed)
        assert cluster(x).num_clusters == 1


def test_fixed_count_is_honoured_even_against_the_data() -> None:
    x, truth = voices(2, seed=3)
    assert cluster(x, SpeakerCount(num_speakers=4)).num_clusters == 4
    assert cluster(x, SpeakerCount(num_speakers=1)).num_clusters == 1
    two = cluster(x, SpeakerCount(num_speakers=2))
    assert two.num_clusters == 2 and purity(two.labels, truth) == 1.0


def test_bounds_restrict_the_count() -> None:
    x2, _ = voices(2, seed=4)
    x4, _ = voices(4, seed=4)
    assert cluster(x2, SpeakerCount(min_speakers=3)).num_clusters == 3
    assert cluster(x4, SpeakerCount(max_speakers=2)).num_clusters == 2
    assert cluster(x4, SpeakerCount(min_speakers=2, max_speakers=6)).num_clusters == 4
    assert cluster(x2, SpeakerCount(min_speakers=1, max_speakers=1)).num_clusters == 1


@pytest.mark.parametrize(
    ("num", "low", "high"),
    [(None, 3, 2), (0, None, None), (None, 0, None), (None, None, 0), (5, 1, 4), (1, 2, None)],
)
def test_impossible_bounds_are_refused(num: int | None, low: int | None, high: int | None) -> None:
    x, _ = voices(2)
    with pytest.raises(ValueError):
        cluster(x, SpeakerCount(num_speakers=num, min_speakers=low, max_speakers=high))


def test_bounds_are_clipped_to_the_number_of_embeddings() -> None:
    assert speaker_bounds(3, SpeakerCount(num_speakers=5)) == (3, 3)
    assert speaker_bounds(100) == (1, ClusteringParams.max_speakers)
    assert speaker_bounds(100, SpeakerCount(min_speakers=10)) == (10, 10)
    x, _ = voices(1, per_speaker=2)
    assert cluster(x, SpeakerCount(num_speakers=5)).num_clusters == 2


def test_labels_are_numbered_by_first_appearance_and_results_repeat() -> None:
    x, _ = voices(3, seed=5)
    first = cluster(x)
    np.testing.assert_array_equal(first.labels, cluster(x).labels)
    seen = list(dict.fromkeys(first.labels.tolist()))
    assert seen == sorted(seen)


def test_degenerate_inputs() -> None:
    assert cluster(np.zeros((0, 16))).num_clusters == 0
    assert cluster(_unit(np.ones((1, 16)))).num_clusters == 1
    identical = np.tile(_unit(np.arange(1.0, 17.0)), (10, 1))
    assert cluster(identical).num_clusters == 1
    with pytest.raises(ValueError):
        cluster(np.ones(16))


def test_long_input_goes_through_micro_clusters() -> None:
    """Above `max_graph_size` windows the graph is built on micro-clusters; the answer must hold."""
    x, truth = voices(3, per_speaker=400, seed=6)
    params = ClusteringParams(max_graph_size=600)
    result = cluster(x, params=params)
    assert result.num_clusters == 3
    assert purity(result.labels, truth) > 0.99
