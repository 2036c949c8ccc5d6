"""The contract's public face (``api.py``): it names every public name of
the modules that hold the items endpoint's contract, the very objects, and
defines nothing of its own."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from tmapi_crawler.contract import api

PIECES = ("query", "answer", "baseurl", "categoryinfo")


def defined(path: Path) -> set[str]:
    """The public names a module defines at its top level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return {name for name in names if not name.startswith("_")}


def test_the_public_face_names_every_public_name_of_the_contract():
    named: set[str] = set()
    for piece in PIECES:
        module = importlib.import_module(f"tmapi_crawler.contract.{piece}")
        names = defined(Path(module.__file__ or ""))
        assert all(getattr(api, name) is getattr(module, name) for name in names)
        named |= names
    assert sorted(api.__all__) == sorted(named)
    assert not defined(Path(api.__file__ or ""))
