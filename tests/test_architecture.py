"""The package dependency rule of docs/design.md, checked on the source: ``codec <- tts <- demo, recipes <- ucodec``.

Every ``import`` of every module, at any nesting level (inside functions too), is read with :mod:`ast`: a package
never imports one above it, and no package imports another's private (leading underscore) names. ``importlib``
strings and subprocess command lines are not imports; the rule for them is the same, and the first test below looks
for the obvious forms. The last test checks that ``ucodec --help`` needs no torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("codec", "tts", "demo", "recipes", "ucodec")
# What each package may not import (the packages above it).
FORBIDDEN = {
    "codec": {"tts", "demo", "recipes", "ucodec"},
    "tts": {"demo", "recipes", "ucodec"},
    "demo": {"ucodec", "recipes"},
    "recipes": {"ucodec", "demo"},
    "ucodec": set(),
}


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, imported names)`` of every absolute import in a file (``import x.y`` gives no names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def modules() -> list[tuple[str, Path]]:
    return [(package, path) for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def test_the_scanner_sees_nested_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    if True:\n        from tts.pipeline import TTS\n        import demo.cli\n")
    assert [(m, names) for _, m, names in imports(source)] == [("tts.pipeline", ["TTS"]), ("demo.cli", [])]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_one_above_it(package):
    wrong = []
    for owner, path in modules():
        if owner != package:
            continue
        for line, module, _ in imports(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {module}")
        text = path.read_text(encoding="utf-8")
        for upper in FORBIDDEN[package]:  # importlib strings of upper packages: import_module("tts.x")
            if f'import_module("{upper}.' in text or f"import_module('{upper}." in text:
                wrong.append(f"{path.relative_to(ROOT)}: import_module of {upper}")
    assert not wrong, f"{package} imports a package above it:\n" + "\n".join(wrong)


def test_no_private_name_crosses_a_package():
    wrong = []
    for owner, path in modules():
        for line, module, names in imports(path):
            top = module.split(".")[0]
            if top not in PACKAGES or top == owner:
                continue
            private = [n for n in names if n.startswith("_")] + [p for p in module.split(".") if p.startswith("_")]
            if private:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {', '.join(private)}")
    assert not wrong, "private names imported across packages:\n" + "\n".join(wrong)


def test_the_store_has_no_import_circle():
    """Inside ``codec.store`` imports point one way (format is a leaf): no module reaches itself again."""
    store = ROOT / "codec" / "store"
    graph = {
        f"codec.store.{p.stem}": {m for _, m, _ in imports(p) if m.startswith("codec.store.")}
        for p in store.glob("*.py")
        if p.stem != "__init__"
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = [m for m in graph if reaches(m, m, {m})]
    assert not circles, f"import circle through {circles}"
    assert not graph["codec.store.format"], "codec.store.format must stay a leaf"


def test_help_needs_no_torch():
    code = (
        "import sys, contextlib, io\n"
        "from ucodec.cli import build_parser\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        build_parser().parse_args(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'train-tts' in out.getvalue() and 'encode' in out.getvalue()\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", "building the ucodec parser imported torch"


def test_python_dash_m_ucodec_answers_help():
    result = subprocess.run(
        [sys.executable, "-m", "ucodec", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for verb in ("encode", "synthesize", "train-codec", "train-tts", "prepare", "eval", "bench", "demo", "serve"):
        assert verb in result.stdout
