"""What this install of the kit is: its version, the commit of a clone, its public address."""

from __future__ import annotations

from pathlib import Path

from swin_gao_lib.runtime.machine import git_commit


def version_text() -> str:
    """``swin-gao 0.1.0``, and the commit when the kit runs from a git clone of itself."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = f"swin-gao {version('swin-gao')}"
    except PackageNotFoundError:  # imported from a source tree that was never installed
        text = "swin-gao (not installed)"
    root = Path(__file__).resolve().parents[2]  # the clone holding swin_gao_lib/runtime/
    if (root / ".git").exists() and (root / "pyproject.toml").is_file():  # a clone (or worktree)
        commit = git_commit(root)
        if commit:
            text += f" (commit {commit[:12]}{'+dirty' if commit.endswith('+dirty') else ''})"
    return text


def repository_url() -> str | None:
    """The repository's address, as pyproject.toml's ``[project.urls]`` states it (None when
    the kit runs from a source tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = dict(u.split(", ", 1) for u in metadata("swin-gao").get_all("Project-URL") or [])
    except PackageNotFoundError:
        return None
    return urls.get("Repository")
