"""Shared fixtures: the synthesized speech corpus and the AWS emulator live in their own plugin modules."""

import os

# int8 decoding quantizes activations with CPU-specific kernels (AVX2, AVX-512 VNNI, oneDNN or MKL),
# so tiny.en's transcript of the same audio differs between machines: CI heard "sending along the
# across" where this machine hears "sending a long beam across". float32 is the same everywhere up to
# rounding. Set before any test reads Settings, and inherited by the workers the tests start.
os.environ.setdefault("COMPUTE_TYPE", "float32")
# CTranslate2 uses Intel MKL for float32 GEMMs only on Intel CPUs and oneDNN elsewhere; on this AMD
# machine oneDNN decodes float32 2.5x slower than MKL (29 against 11 CPU-seconds for 39 s of speech,
# same transcript). MKL everywhere is faster and puts every machine on the same GEMM library.
os.environ.setdefault("CT2_USE_MKL", "1")
# `make test` runs two pytest processes, each with workers of its own, on 2 cores: one CTranslate2
# thread per model wastes less CPU on synchronising threads than two (two tiny.en decodes side by
# side: 10.9 against 12.4 CPU-seconds each, both done in 13.1 against 14.8 s).
os.environ.setdefault("CPU_THREADS", "1")

pytest_plugins = ["tests.fixtures_corpus", "tests.fixtures_aws"]


def pytest_collection_modifyitems(items: list) -> None:
    """Modules marked `slow` (real workers, browsers, whole pipelines) run first. `make test` runs
    `-n 2 --dist loadfile --no-loadscope-reorder`, which hands out whole files in this order (xdist
    would otherwise put files with the most tests first, and the one-test files that start a whole
    service last): a long file handed out last leaves one process working alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
