"""Optional dependencies of the evaluation toolkit, imported on first use with a message that says how to get them.

The metrics and the peer codecs live in the ``[eval]`` and ``[bench]`` extras so that a plain ``pip install ucodec``
stays small. Every heavy import in :mod:`codec.evaluation` goes through :func:`require`, so a missing package is one
clear line (``PESQ needs the [eval] extra: pip install -e '.[eval]'``) instead of a traceback from deep inside a
metric. The error is both an ``ImportError`` (tests skip on it) and a ``ValueError`` (the CLI prints it in red and
exits with code 2).
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType


class MissingExtraError(ImportError, ValueError):
    """An optional package of an extra (``[eval]``, ``[bench]``) is not installed."""


def install_hint(extra: str) -> str:
    """The command that installs ``extra`` into an editable checkout."""
    return f"pip install -e '.[{extra}]'"


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or explain which extra provides it.

    Args:
        module: dotted module name, e.g. ``"pesq"`` or ``"faster_whisper"``.
        extra: the ``pyproject.toml`` extra that installs it (``"eval"`` or ``"bench"``).
        purpose: what needs it, the subject of the message (``"PESQ"``, ``"WER (Whisper)"``).

    Raises:
        MissingExtraError: the module (or one of its own imports) is missing.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        raise MissingExtraError(
            f"{purpose} needs the [{extra}] extra ({missing!r} is not installed): {install_hint(extra)}",
            name=missing,
        ) from None


def import_resemblyzer() -> ModuleType:
    """Import resemblyzer, whose VAD dependency (webrtcvad) still imports ``pkg_resources``.

    ``pkg_resources`` ships with setuptools < 81 only, which is why the ``[eval]`` extra pins it; the deprecation
    warning it prints on import is noise for our users and is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pkg_resources.*")
        try:
            return require("resemblyzer", "eval", "Speaker similarity (resemblyzer)")
        except MissingExtraError as exc:
            if exc.name == "pkg_resources":
                raise MissingExtraError(
                    "Speaker similarity (resemblyzer/webrtcvad) needs pkg_resources, which setuptools >= 81 removed: "
                    "pip install 'setuptools<81' (pinned by the [eval] extra)",
                    name="pkg_resources",
                ) from None
            raise


def offline_hub() -> None:
    """Forbid Hugging Face Hub downloads in this process: every model we use ships inside a pip package."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
