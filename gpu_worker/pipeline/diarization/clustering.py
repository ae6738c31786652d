"""Speaker clustering: NME-SC (Park et al., 2019, "Auto-Tuning Spectral Clustering for Speaker
Diarization Using Normalized Maximum Eigengap"), the method NeMo's clustering diarizer uses.

Why this and not a distance threshold: measured here on 13 conversations (the team's models.md), a fixed
cosine threshold found the right speaker count on 3–5 of them, NME-SC on 12. NME-SC has no threshold
to tune: for each candidate pruning level p it keeps each row's p strongest affinities, builds the
graph Laplacian and scores p by p/n divided by the largest eigengap (normalised by the largest
eigenvalue); the best-scoring p gives both the graph and, from its largest eigengap, the count.

Beyond the paper, measured on resemblyzer embeddings of 64 synthesized conversations (1–5 espeak
voices, 18 s to 2.5 min): the chosen graph is made connected (as NeMo does), the count is estimated
freely and then clipped to the caller's bounds, and clusters whose centroids are as alike as
sub-clusters of one voice are merged afterwards. The eigengap alone never proposes a single speaker
reliably, and on short recordings it splits one voice into several; the merge is what turns those
into one speaker. Right counts: 45/64 with NME-SC alone, 59/64 with the merge; what remains is
under-counting when three to five voices include two or three near-identical espeak males (their
centroids 0.88–0.92 apart, as close as halves of one voice); given the count, those recordings still
diarize with DER ≤ 0.05. Tried and dropped: NeMo's other short-audio remedy (random "anchor"
speakers; worse here, e.g. four voices counted as one) and splitting clusters again by the merge
rule (the halves of two near-identical voices are no further apart than the halves of one).

Pure numpy/scipy, deterministic (seeded k-means), tested on synthetic embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh
from scipy.sparse.csgraph import connected_components

from gpu_worker.pipeline.types import SpeakerCount


@dataclass(frozen=True)
class ClusteringParams:
    max_speakers: int = 8
    """Upper bound on the count when the caller gives none (NeMo's default too)."""
    max_rp_threshold: float = 0.25
    """Largest pruning level tried, as a fraction of the number of embeddings."""
    p_search_volume: int = 30
    """How many pruning levels between 2 and the largest are tried (evenly spread)."""
    same_speaker_cosine: float = 0.92
    same_speaker_size_slope: float = 0.5
    """Two clusters are one voice when their centroids' cosine is at least
    `same_speaker_cosine − same_speaker_size_slope / (windows in the smaller cluster)`. Measured on
    1.5 s windows: sub-clusters of one voice 0.86–0.93, the small ones lowest; distinct real voices
    (LibriSpeech corpus, 1–6 speakers) 0.48–0.77; two espeak male voices 0.82–0.90 (clusters of
    17–95 windows). A slope of 0.3 left one real voice in two clusters on a 6-speaker and on an
    overlapped 2-speaker conversation (halves of 6–12 windows, 0.86–0.89 alike); 0.5 joins those
    and still keeps the espeak voices (0.884 at 17 windows) apart."""
    split_below_cosine: float = 0.78
    split_min_windows: int = 5
    """After NME-SC, a cluster whose two k-means halves (each of at least `split_min_windows`) have
    centroids less alike than `split_below_cosine` is two voices and is split (then `_merge_alike`
    may join halves again). Measured on the real-voice corpus: NME-SC's eigengap under-counted 4-6
    similar read voices (clusters of one voice split 0.88-0.93 alike, distinct voices 0.48-0.77);
    the split took the exact count on clean conversations from 7/12 to 9/12 and DER 0.14 to 0.11.
    The voices it separates there are 0.50 and 0.69 alike; at 0.8 it also split one voice (halves
    of 11 and 6 windows, 0.796 alike: small halves are noisy), so the threshold sits just above the
    most alike distinct voices measured (0.77): clean count 10/12 → 11/12, no condition's DER moved.
    0.75 lost a speaker of a 6-speaker conversation."""
    kmeans_restarts: int = 10
    """k-means++ starts per k-means run (spectral labels, two-voice splits; micro-clusters take 2);
    the lowest-inertia labelling wins, since a single start can settle in a poor local minimum."""
    max_graph_size: int = 1000
    """Above this many embeddings (about 8 minutes of speech), cluster micro-clusters instead."""
    micro_chunk: int = 600
    """Consecutive embeddings per chunk when building micro-clusters ..."""
    micro_per_chunk: int = 60
    """... and micro-clusters per chunk (a 10:1 reduction keeps each one to a single voice)."""
    seed: int = 0
    """Seeds every k-means run, so that the same embeddings always get the same labels (reruns and
    tests agree)."""


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray
    """Cluster of each embedding, 0..num_clusters-1."""
    num_clusters: int
    centroids: np.ndarray
    """L2-normalised mean embedding of each cluster, shape (num_clusters, dim)."""
    pruning: int | None = None
    """The p that NME-SC chose (None when no search was needed)."""


def speaker_bounds(
    n: int, speakers: SpeakerCount = SpeakerCount(), default_max: int = ClusteringParams.max_speakers
) -> tuple[int, int]:
    """The (lowest, highest) count to consider for `n` embeddings.

    A fixed count wins (SpeakerCount has checked it agrees with any bounds given with it). Bounds
    above `n` are clipped: n windows cannot hold more than n speakers.
    """
    if speakers.num_speakers is not None:
        low = high = speakers.num_speakers
    else:
        low = speakers.min_speakers or 1
        high = speakers.max_speakers if speakers.max_speakers is not None else max(default_max, low)
    high = max(1, min(high, n))
    return min(low, high), high


def cluster(
    embeddings: np.ndarray,
    speakers: SpeakerCount = SpeakerCount(),
    *,
    params: ClusteringParams = ClusteringParams(),
) -> Clustering:
    """Cluster embeddings (rows) into speakers, honouring a fixed count or bounds."""
    x = _normalize_rows(np.asarray(embeddings, dtype=np.float64))
    n = x.shape[0]
    if n == 0:
        return Clustering(np.zeros(0, int), 0, np.zeros((0, x.shape[1] if x.ndim == 2 else 0)))
    low, high = speaker_bounds(n, speakers, params.max_speakers)
    if high == 1:
        return _finish(x, np.zeros(n, int))
    if n <= 3:  # too few windows (under 2.5 s of speech) to estimate a count: the lowest allowed
        return _finish(x, _kmeans(x, low, params))
    if n > params.max_graph_size:
        # Long audio: the graph would cost O(n³) per pruning level, so cluster micro-clusters of
        # consecutive windows instead (NeMo's long-form clustering does the same).
        micro = _micro_clusters(x, params)
        centers = _normalize_rows(np.stack([x[micro == c].mean(axis=0) for c in range(micro.max() + 1)]))
        coarse, pruning = _spectral(centers, low, min(high, centers.shape[0]), params)
        labels = coarse[micro]
    else:
        labels, pruning = _spectral(x, low, high, params)
    if low < high:
        labels = _merge_alike(x, _split_distinct(x, labels, params, high), params, low)
    return _finish(x, labels, pruning)


# --- NME-SC ------------------------------------------------------------------------------------
def _spectral(x: np.ndarray, low: int, high: int, params: ClusteringParams) -> tuple[np.ndarray, int]:
    """Labels and the chosen pruning level for unit rows x, with a count in [low, high].

    The count is estimated freely (up to the larger of `high` and `params.max_speakers`) and then
    clipped to the bounds: when the eigengaps say "more than max_speakers", max_speakers is the
    best answer, which an argmax restricted to the bounds would not give."""
    affinity = _cosine_affinity(x)
    search_high = min(max(high, params.max_speakers), x.shape[0] - 1)
    pruning, k = _nme_analysis(affinity, search_high, params.max_rp_threshold, params.p_search_volume)
    k = int(np.clip(k, low, high))
    if k == 1:
        return np.zeros(x.shape[0], int), pruning
    _, eigenvectors = eigh(_laplacian(_pruned_graph(affinity, pruning)))
    return _kmeans(eigenvectors[:, :k], k, params), pruning


def _nme_analysis(
    affinity: np.ndarray, high: int, max_rp_threshold: float, search_volume: int
) -> tuple[int, int]:
    """(p, count ≤ high): the p minimising the NME ratio (p/n) / (max eigengap / λ_max), raised if
    needed until its graph is connected (a split graph would count its fragments as speakers)."""
    n = affinity.shape[0]
    p_max = max(2, min(n - 1, int(np.floor(n * max_rp_threshold))))
    candidates = [
        int(p) for p in np.unique(np.linspace(2, p_max, num=min(search_volume, p_max - 1)).astype(int))
    ]
    ratios = []
    for p in candidates:
        eigenvalues = eigh(_laplacian(_pruned_graph(affinity, p)), eigvals_only=True)
        gaps = np.diff(eigenvalues)[:high]
        ratios.append((p / n) / (gaps.max() / (eigenvalues.max() + 1e-10) + 1e-10))
    best = int(np.argmin(ratios))
    pruning = next((p for p in candidates[best:] if _connected(_pruned_graph(affinity, p))), candidates[-1])
    eigenvalues = eigh(_laplacian(_pruned_graph(affinity, pruning)), eigvals_only=True)
    return pruning, int(np.argmax(np.diff(eigenvalues)[:high])) + 1


def _connected(graph: np.ndarray) -> bool:
    return connected_components(graph > 0, directed=False, return_labels=False) == 1


def _cosine_affinity(x: np.ndarray) -> np.ndarray:
    """Cosine similarity scaled to [0, 1] over the matrix (as NeMo does), so pruning is scale-free."""
    sim = x @ x.T
    low, high = sim.min(), sim.max()
    return (sim - low) / (high - low) if high > low else np.ones_like(sim)


def _pruned_graph(affinity: np.ndarray, p: int) -> np.ndarray:
    """Keep each row's p strongest connections (itself included) as 1, then symmetrise."""
    n = affinity.shape[0]
    keep = np.argsort(-affinity, axis=1, kind="stable")[:, :p]
    binary = np.zeros_like(affinity)
    binary[np.repeat(np.arange(n), p), keep.ravel()] = 1.0
    return 0.5 * (binary + binary.T)


def _laplacian(graph: np.ndarray) -> np.ndarray:
    a = graph.copy()
    np.fill_diagonal(a, 0.0)
    return np.diag(a.sum(axis=1)) - a


# --- helpers -----------------------------------------------------------------------------------
def _normalize_rows(x: np.ndarray) -> np.ndarray:
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array, got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _finish(x: np.ndarray, labels: np.ndarray, pruning: int | None = None) -> Clustering:
    """Relabel clusters 0.. by first appearance and compute their centroids."""
    labels = np.asarray(labels).ravel()
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # rank of each cluster by where it first appears
    labels = order[inverse.ravel()]
    k = int(labels.max()) + 1
    centroids = _normalize_rows(np.stack([x[labels == c].mean(axis=0) for c in range(k)]))
    return Clustering(labels, k, centroids, pruning)


def _split_distinct(x: np.ndarray, labels: np.ndarray, params: ClusteringParams, high: int) -> np.ndarray:
    """Split, one at a time and the least alike first, every cluster whose k-means halves are two
    voices (`params.split_below_cosine`), while fewer than `high` clusters exist. Each cluster's
    halves are computed once: a split only changes the two clusters it touches."""
    labels = np.unique(labels, return_inverse=True)[1].ravel()
    candidates: dict[int, tuple[float, np.ndarray] | None] = {}
    while labels.max() + 1 < high:
        for c in range(labels.max() + 1):
            if c not in candidates:
                candidates[c] = _two_voices(x, np.flatnonzero(labels == c), params)
        found = [(c, split) for c, split in candidates.items() if split is not None]
        if not found:
            break
        c, (_, moved) = min(found, key=lambda item: item[1][0])
        labels = labels.copy()
        labels[moved] = labels.max() + 1
        del candidates[c]
    return labels


def _two_voices(
    x: np.ndarray, members: np.ndarray, params: ClusteringParams
) -> tuple[float, np.ndarray] | None:
    """(similarity, the members of one half) when the cluster's k-means halves are two voices."""
    if members.size < 2 * params.split_min_windows:
        return None
    halves = _kmeans(x[members], 2, params)
    if np.bincount(halves, minlength=2).min() < params.split_min_windows:
        return None
    a, b = _normalize_rows(np.stack([x[members[halves == h]].mean(axis=0) for h in (0, 1)]))
    similarity = float(a @ b)
    return (similarity, members[halves == 1]) if similarity < params.split_below_cosine else None


def _merge_alike(x: np.ndarray, labels: np.ndarray, params: ClusteringParams, low: int) -> np.ndarray:
    """Merge sub-clusters of one voice: while more than `low` clusters remain, merge the pair whose
    centroid similarity most exceeds its threshold. A small cluster's centroid is a noisy estimate,
    so the threshold falls with the size of the smaller cluster of the pair."""
    labels = np.unique(labels, return_inverse=True)[1].ravel()
    while labels.max() + 1 > low:
        sizes = np.bincount(labels)
        centroids = _normalize_rows(np.stack([x[labels == c].mean(axis=0) for c in range(sizes.size)]))
        smaller = np.minimum.outer(sizes, sizes)
        threshold = params.same_speaker_cosine - params.same_speaker_size_slope / smaller
        excess = centroids @ centroids.T - threshold
        np.fill_diagonal(excess, -np.inf)
        a, b = np.unravel_index(np.argmax(excess), excess.shape)
        if excess[a, b] < 0:
            break
        labels = np.unique(np.where(labels == max(a, b), min(a, b), labels), return_inverse=True)[1].ravel()
    return labels


def _micro_clusters(x: np.ndarray, params: ClusteringParams) -> np.ndarray:
    """Labels of micro-clusters: k-means inside chunks of consecutive embeddings, numbered globally.
    At most `micro_per_chunk` per chunk, fewer on very long audio so that the graph over all of them
    stays at half of `max_graph_size`."""
    n = x.shape[0]
    labels = np.zeros(n, int)
    offset = 0
    for start in range(0, n, params.micro_chunk):
        chunk = x[start : start + params.micro_chunk]
        share = chunk.shape[0] / n
        k = max(1, min(round(params.micro_per_chunk * chunk.shape[0] / params.micro_chunk),
                       round(params.max_graph_size / 2 * share)))  # fmt: skip
        local = _kmeans(chunk, k, params, restarts=2)
        _, local = np.unique(local, return_inverse=True)
        labels[start : start + chunk.shape[0]] = local.ravel() + offset
        offset += int(local.max()) + 1
    return labels


def _sq_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    d2 = (x * x).sum(axis=1)[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0)


def _kmeans(
    x: np.ndarray, k: int, params: ClusteringParams, iterations: int = 100, restarts: int | None = None
) -> np.ndarray:
    """k-means with k-means++ seeding and restarts; the lowest inertia wins. Deterministic."""
    n = x.shape[0]
    if k >= n:
        return np.arange(n)
    rng = np.random.default_rng(params.seed)
    best_labels, best_inertia = np.zeros(n, int), np.inf
    for _ in range(restarts or params.kmeans_restarts):
        centers = _kmeans_pp(x, k, rng)
        for _ in range(iterations):
            distances = _sq_distances(x, centers)
            labels = distances.argmin(axis=1)
            updated = np.stack(
                [x[labels == c].mean(axis=0) if np.any(labels == c) else centers[c] for c in range(k)]
            )
            if np.allclose(updated, centers):
                break
            centers = updated
        inertia = distances[np.arange(n), labels].sum()
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    return best_labels


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centers = [x[rng.integers(x.shape[0])]]
    for _ in range(1, k):
        d2 = _sq_distances(x, np.array(centers)).min(axis=1)
        total = d2.sum()
        index = rng.choice(x.shape[0], p=d2 / total) if total > 0 else rng.integers(x.shape[0])
        centers.append(x[index])
    return np.array(centers)
