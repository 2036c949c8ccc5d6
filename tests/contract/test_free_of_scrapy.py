"""The API contract (``tmapi_crawler.contract``) is importable and usable
without Scrapy or Twisted: a user's own script, another crawler or a notebook
can parse answers, validate arguments and items, plan pages and bands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tmapi_crawler
import tmapi_crawler.contract

CHECK = """
import builtins, importlib, pkgutil, sys
real_import = builtins.__import__

def guarded(name, *args, **kwargs):
    if name.split(".")[0] in ("scrapy", "twisted"):
        raise ImportError(f"the contract imported {name}")
    return real_import(name, *args, **kwargs)

builtins.__import__ = guarded
import tmapi_crawler.contract as contract
found = pkgutil.iter_modules(contract.__path__, "tmapi_crawler.contract.")
names = [m.name for m in found]
for name in names:
    importlib.import_module(name)
from tmapi_crawler.contract import api
page = api.page_from_data(api.parse_data(open(sys.argv[1], "rb").read()), 1, None)
print(len(names), len(page.items))
"""


def test_every_contract_module_imports_without_scrapy_and_parses_an_answer():
    sample = Path(tmapi_crawler.__file__).parent / "simulator" / "sample_response.json"
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(sample)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    modules, items = map(int, result.stdout.split())
    expected = len(list(Path(tmapi_crawler.contract.__file__).parent.glob("[!_]*.py")))
    assert modules == expected
    assert items > 0
