"""The architecture, enforced: which package may import which, and what each install extra pulls in.

Imports are read statically (every `import` in every module, lazy ones inside functions included),
so a forbidden import fails here even on a code path no other test runs. The extras are resolved
offline, from the metadata of the distributions installed in this environment.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dependency_closure import installed_closure, project_requirements

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api_lambda", "gpu_worker", "shared", "onebox", "client", "evaluation")
AWS_MODULES = ("boto3", "botocore", "aiobotocore", "shared.aws_adapters", "shared.sqs", "shared.backends")
# the worker's job handling, around the pipeline
WORKER_MODULES = tuple(
    f"gpu_worker.{name}" for name in ("worker", "consumer", "runner", "dead_letters", "lease", "notify")
)
STORE_MODULES = ("shared.job_store", "shared.embedded", "shared.storage")
SPEECH_MODULES = ("torch", "faster_whisper", "ctranslate2", "numpy", "av", "moto")

# package (or module prefix) -> module prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "shared": ("api_lambda", "gpu_worker", "onebox", "client", "evaluation", "fastapi", *SPEECH_MODULES),
    "api_lambda": ("gpu_worker", "onebox", "client", "evaluation", *SPEECH_MODULES),
    "client": ("api_lambda", "gpu_worker", "onebox", "evaluation", "boto3", "aiobotocore", *SPEECH_MODULES),
    "gpu_worker": ("api_lambda", "onebox", "client", "fastapi"),
    "evaluation": ("api_lambda", "onebox", "client", "tests"),
    "bench": ("tests",),  # benchmarks build their audio with evaluation/, never with test code
    # the speech pipeline knows audio and models, never where jobs come from
    "gpu_worker.pipeline": (*WORKER_MODULES, *AWS_MODULES, *STORE_MODULES),
}


def _modules(package: str) -> Iterator[tuple[str, Path]]:
    base = ROOT / package.replace(".", "/")
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(p for p in parts if p != "__init__"), path


def _imports(module: str, path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            yield prefix
            yield from (f"{prefix}.{alias.name}" for alias in node.names)


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_across_the_layers(package: str) -> None:
    offences = sorted(
        f"{module} imports {name}"
        for module, path in _modules(package)
        for name in _imports(module, path)
        for prefix in FORBIDDEN[package]
        if _matches(name, prefix)
    )
    assert not offences, "\n".join(offences)


def test_every_product_package_is_checked_and_packaged() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packaged = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert set(PACKAGES) <= packaged
    assert {p.split(".")[0] for p in FORBIDDEN} - {"bench"} | {"onebox"} == set(PACKAGES)


def _closure(extras: set[str]) -> set[str]:
    """Every distribution `pip install '.[extras]'` would install."""
    return installed_closure(project_requirements(extras))


@pytest.mark.parametrize("extra", ["api", "client"])
def test_the_api_and_the_client_install_no_speech_stack(extra: str) -> None:
    installed = _closure({extra})
    assert "fastapi" in installed if extra == "api" else "httpx" in installed
    heavy = {"torch", "faster-whisper", "ctranslate2", "moto", "numpy", "scipy", "transformers"}
    assert not installed & heavy, sorted(installed & heavy)


def test_the_worker_extra_has_the_pipeline_and_local_has_everything() -> None:
    assert {"torch", "faster-whisper", "huggingface-hub"} <= _closure({"worker"})
    assert {"fastapi", "torch", "moto", "httpx"} <= _closure({"local"})
