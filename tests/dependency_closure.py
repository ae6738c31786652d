"""What a set of requirements installs, transitively, read offline from the installed metadata."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def project_requirements(extras: Iterable[str] = ()) -> list[Requirement]:
    """This project's core dependencies plus those of `extras`."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def installed_closure(requirements: Iterable[Requirement]) -> set[str]:
    """Canonical names of every distribution the requirements pull in, extras followed; a
    requirement naming this project's own extras expands to them. Distributions not installed
    here are left out (their dependencies are unknown)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    own = canonicalize_name(project["name"])
    pending = list(requirements)
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name == own:  # `whisper-diarization-service[api,worker]` inside an extra
            pending += project_requirements(requirement.extras)
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            dependency = Requirement(line)
            if dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in requirement.extras or {""}
            ):
                pending.append(dependency)
    return seen
