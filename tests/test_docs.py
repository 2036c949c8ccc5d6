"""The reference pages under docs/ and the README, held to the code.

Each page names things the code defines once (settings, stats, meta keys,
finish reasons, exit codes, components and their orders): a name added to the
code without a row, or a row naming what the code no longer has, fails here.
Tables are read simply: one row per name, the name in backticks in the first
cell.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.crawlers import project_crawler
from tmapi_crawler import addon, meta
from tmapi_crawler import settings as project_settings
from tmapi_crawler.contract import outcome, slicing, stats
from tmapi_crawler.contract.coverage import CoverageReport

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PACKAGE = ROOT / "tmapi_crawler"


# --- reading markdown ---------------------------------------------------------


def sections(path: Path) -> dict[str, list[str]]:
    """The lines under each heading (its text, without the #s); code blocks
    are left out."""
    found: dict[str, list[str]] = {"": []}
    current, fenced = "", False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if match := re.match(r"#+ (.*)", line):
            current = match[1].strip()
            found.setdefault(current, [])
            continue
        found[current].append(line)
    return found


def rows(lines: list[str]) -> list[list[str]]:
    """The cells of every table row in *lines*, header rows left out."""
    found: list[list[str]] = []
    table: list[str] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        for row in table[2:]:  # the header and the --- line
            cells = re.split(r"(?<!\\)\|", row.strip().removeprefix("|"))
            found.append([cell.strip() for cell in cells[:-1]])
        table = []
    return found


def name(cell: str) -> str:
    """The name a row is about: the cell's first backticked word, or the cell."""
    match = re.match(r"`([^`]+)`", cell)
    return match[1] if match else cell


def table(path: Path, heading: str) -> dict[str, list[str]]:
    """The rows of the tables under *heading*, by name."""
    section = sections(path)
    assert heading in section, f"{path.name} has no section {heading!r}"
    found = rows(section[heading])
    assert found, f"{path.name}, {heading!r}: no table"
    return {name(cells[0]): cells for cells in found}


def all_rows(path: Path) -> dict[str, list[str]]:
    return {
        name(cells[0]): cells
        for lines in sections(path).values()
        for cells in rows(lines)
    }


def literal(value: Any) -> str:
    """How a page writes a default: strings and containers as JSON, the rest
    as Python writes them."""
    if isinstance(value, str | dict | list):
        return json.dumps(value)
    return repr(value)


@functools.cache
def package_source() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py"))


def quoted_in_package(word: str) -> bool:
    return f'"{word}"' in package_source()


# --- settings -------------------------------------------------------------------

SETTINGS = DOCS / "settings.md"
SCRAPY_SETTINGS = "Scrapy settings the project sets"
OTHER_SETTINGS = "Other settings the crawler reads"


def project_defaults() -> dict[str, Any]:
    return {
        key: getattr(project_settings, key)
        for key in dir(project_settings)
        if key.isupper()
    }


def documented_tmapi_settings() -> dict[str, list[str]]:
    return {
        key: cells
        for key, cells in all_rows(SETTINGS).items()
        if key.startswith("TMAPI_")
    }


def test_every_tmapi_setting_is_documented_with_its_default():
    code = {k: v for k, v in project_defaults().items() if k.startswith("TMAPI_")}
    documented = documented_tmapi_settings()
    missing = sorted(set(code) - set(documented))
    assert not missing, f"settings without a row in docs/settings.md: {missing}"
    for key, value in code.items():
        default = documented[key][1]
        assert f"`{literal(value)}`" in default, (
            f"docs/settings.md gives {key} the default {default!r}; "
            f"the code has `{literal(value)}`"
        )


def test_no_documented_tmapi_setting_is_missing_from_the_code():
    code = {k for k in project_defaults() if k.startswith("TMAPI_")}
    # The token is documented but never given a value in settings.py: it
    # comes from the environment.
    assert "TMAPI_TOKEN" not in code
    assert quoted_in_package("TMAPI_TOKEN")
    gone = sorted(set(documented_tmapi_settings()) - code - {"TMAPI_TOKEN"})
    assert not gone, f"docs/settings.md documents settings the code lacks: {gone}"


def test_the_scrapy_settings_the_project_sets_are_documented_with_their_values():
    code = {k: v for k, v in project_defaults().items() if not k.startswith("TMAPI_")}
    documented = table(SETTINGS, SCRAPY_SETTINGS)
    assert set(documented) == set(code)
    for key, value in code.items():
        assert f"`{literal(value)}`" in documented[key][1], key


def test_the_other_settings_documented_are_read_by_the_crawler():
    for key in table(SETTINGS, OTHER_SETTINGS):
        assert quoted_in_package(key), f"no component reads {key}"


# --- stats ----------------------------------------------------------------------

STATS = DOCS / "stats.md"


def stat_names() -> dict[str, str]:
    return {
        key: value
        for key, value in vars(stats).items()
        if key.isupper() and isinstance(value, str)
    }


def test_every_stat_is_documented():
    documented = all_rows(STATS)
    missing = sorted(v for v in stat_names().values() if v not in documented)
    assert not missing, f"stats without a row in docs/stats.md: {missing}"


def test_every_documented_stat_is_written_by_the_code():
    names = set(stat_names().values())
    prefixes = [value for value in names if value.endswith("/")]
    for documented in all_rows(STATS):
        if documented in names:
            continue
        prefix = next((p for p in prefixes if documented.startswith(p)), None)
        assert prefix, f"docs/stats.md: {documented} is no stat of contract/stats.py"
        rest = documented.removeprefix(prefix)
        assert quoted_in_package(rest), f"docs/stats.md: nothing writes {documented}"


def test_the_coverage_stats_documented_are_those_the_report_sets():
    documented = {key for key in table(STATS, "Coverage") if key != stats.COVERAGE}
    assert documented == set(CoverageReport().stats())


# --- request meta -----------------------------------------------------------------

META = DOCS / "request-meta.md"


def meta_keys() -> set[str]:
    return {
        value
        for key, value in vars(meta).items()
        if key.isupper() and isinstance(value, str)
    }


def test_every_meta_key_is_documented_where_it_belongs():
    calls = set(table(META, "The call: `tmapi`"))
    per_attempt = set(table(META, "Per attempt"))
    kept = set(table(META, "Kept across attempts"))
    assert calls == {meta.TMAPI}
    assert per_attempt == set(meta.ATTEMPT_KEYS)
    assert kept == meta_keys() - set(meta.ATTEMPT_KEYS) - {meta.TMAPI}
    assert calls | per_attempt | kept == meta_keys()


@pytest.mark.parametrize(
    ("heading", "schema"),
    [
        ("Page fields (`PageMeta`)", meta.PageMeta),
        ("Category info fields (`InfoMeta`)", meta.InfoMeta),
        ("Item details fields (`DetailMeta`)", meta.DetailMeta),
        ("Price band (`band`)", slicing.Band),
    ],
)
def test_the_fields_of_meta_tmapi_are_documented(heading, schema):
    fields = {field.name for field in dataclasses.fields(schema)}
    assert set(table(META, heading)) == fields


def test_the_scrapy_meta_keys_documented_are_used_by_the_crawler():
    for key in table(META, "Scrapy's keys the crawler uses"):
        assert quoted_in_package(key), f"the crawler does not use meta[{key!r}]"


# --- finish reasons and exit codes ------------------------------------------------

OUTCOMES = DOCS / "finish-reasons.md"


def test_every_finish_reason_is_documented_with_its_exit_code():
    reasons = {
        value
        for key, value in vars(outcome).items()
        if key.isupper() and isinstance(value, str)
    }
    documented = table(OUTCOMES, "Finish reasons")
    assert set(documented) == reasons
    for reason, cells in documented.items():
        code = outcome.exit_code({stats.FINISH_REASON: reason})
        assert cells[2] == str(code), f"{reason} exits with {code}, not {cells[2]}"


@pytest.mark.parametrize("path", [OUTCOMES, README])
def test_every_exit_code_is_documented(path):
    codes = {
        value
        for key, value in vars(outcome).items()
        if key.isupper() and isinstance(value, int)
    }
    assert codes == {0, 1, 2, 3, 4, 5}
    assert {int(code) for code in table(path, "Exit codes")} == codes


def test_the_exit_codes_say_what_the_stats_say():
    """The page's examples: the highest code wins."""
    assert outcome.exit_code({}) == outcome.COMPLETE
    assert outcome.exit_code({stats.PAGES_FAILED: 1}) == outcome.INCOMPLETE
    assert outcome.exit_code({stats.TREE_FAILED: 1}) == outcome.INCOMPLETE
    failed_and_lost = {stats.PAGES_FAILED: 2, stats.FEED_NOT_WRITTEN: 1}
    assert outcome.exit_code(failed_and_lost) == outcome.NOT_STORED


# --- the components and their orders ------------------------------------------------

ARCHITECTURE = DOCS / "architecture.md"


def test_every_component_is_where_the_architecture_page_says(tmp_path):
    found = rows(sections(ARCHITECTURE)["The add-on"])
    assert len(found) > 20
    # Scrapy's get_crawler gives a crawler without a reactor its own HTTP
    # handlers, which the add-on keeps as a user's choice: none given here.
    base = {"DOWNLOAD_HANDLERS": {}}
    crawlers = {
        "always": project_crawler(settings=base),
        "JOBDIR": project_crawler(settings={**base, "JOBDIR": str(tmp_path / "job")}),
        # only wired, never connected: the add-on just reads the URL
        "REDIS_URL": project_crawler(
            settings={**base, "REDIS_URL": "redis://127.0.0.1:1/0"}
        ),
    }
    for component, setting, order, when in found:
        component, setting, order = name(component), name(setting), name(order)
        condition = next((c for c in ("JOBDIR", "REDIS_URL") if c in when), "always")
        settings = crawlers[condition].settings
        where = f"{component} in {setting} ({condition})"
        if setting in ("SCHEDULER", "DUPEFILTER_CLASS"):
            assert settings.get(setting) == component, where
        elif setting in ("DOWNLOAD_HANDLERS", "FEED_EXPORTERS", "FEED_STORAGES"):
            assert settings.getwithbase(setting)[order] == component, where
        else:
            expected = None if order == "off" else int(order)
            assert settings.getwithbase(setting)[component] == expected, where


def test_every_component_the_add_on_wires_is_on_the_architecture_page():
    documented = {
        name(cells[0]) for cells in rows(sections(ARCHITECTURE)["The add-on"])
    }
    wired = {
        path
        for components in (
            addon.DOWNLOADER_MIDDLEWARES,
            addon.SPIDER_MIDDLEWARES,
            addon.EXTENSIONS,
            addon.ITEM_PIPELINES,
        )
        for path in components
    }
    wired |= {*addon.FEED_EXPORTERS.values(), *addon.FEED_STORAGES.values()}
    wired |= {addon.DOWNLOAD_HANDLER, addon.COMPACT_DUPEFILTER}
    wired |= {addon.JOURNAL_SCHEDULER}
    wired |= {path for components in addon.JOURNAL.values() for path in components}
    wired |= {
        addon.REDIS_SCHEDULER,
    }
    assert wired <= documented, sorted(wired - documented)


# --- every page ---------------------------------------------------------------------

PAGES = [*sorted(DOCS.glob("*.md")), README]


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_module_path_named_exists(page):
    text = page.read_text(encoding="utf-8")
    paths = set(re.findall(r"\b(?:tmapi_crawler|tests|bench)/[\w/.-]*\w/?", text))
    dotted = set(re.findall(r"\btmapi_crawler(?:\.[A-Za-z_]\w*)+", text))
    for path in sorted(paths):
        assert (ROOT / path).exists(), f"{page.name} names {path}, which is not there"
    for target in sorted(dotted):
        assert resolves(target), f"{page.name} names {target}, which is not there"


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of *path*."""
    found: set[str] = set()
    for heading in sections(path):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_between_pages_leads_somewhere(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        assert linked.exists(), f"{page.name} links to {target}: no such file"
        if anchor:
            assert anchor in anchors(linked), f"{page.name} links to {target}"


def test_the_readme_is_the_users_path():
    text = README.read_text(encoding="utf-8")
    # CI runs "the README's test command"; the demo is the first thing to try.
    assert "make test" in text
    assert "make demo" in text
    for page in sorted(DOCS.glob("*.md")):
        assert f"(docs/{page.name})" in text, f"the README does not lead to {page}"


def test_the_readme_says_what_each_library_is_used_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def distribution(requirement: str) -> str:
        return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()

    runtime = {distribution(r) for r in project["dependencies"]}
    extras = {
        distribution(r)
        for group in project["optional-dependencies"].values()
        for r in group
    }
    documented = set(table(README, "Built on"))
    assert runtime <= documented, sorted(runtime - documented)
    assert documented <= runtime | extras, sorted(documented - runtime - extras)


def layout() -> set[str]:
    """The paths the README's Layout lists (a tree, two spaces a level)."""
    block = README.read_text(encoding="utf-8").split("## Layout", 1)[1]
    block = block.split("```", 2)[1]
    listed: set[str] = set()
    parents: list[tuple[int, str]] = []
    for line in block.splitlines():
        entry = line.lstrip().split(" ", 1)[0]
        # a file or a directory; not the words of a description going on
        if not re.fullmatch(r"[\w-]+(/[\w.-]*)*/|[\w/-]+\.\w+", entry):
            continue
        depth = len(line) - len(line.lstrip())
        while parents and parents[-1][0] >= depth:
            parents.pop()
        path = (parents[-1][1] if parents else "") + entry
        listed.add(path)
        if entry.endswith("/"):
            parents.append((depth, path))
    return listed


def test_the_readme_layout_is_the_package_tree():
    listed = layout()
    for path in listed:
        assert (ROOT / path).exists(), f"the README's Layout lists {path}"
    directories = [p for p in listed if p.endswith("/")]
    for module in PACKAGE.rglob("*.py"):
        path = module.relative_to(ROOT).as_posix()
        if module.name == "__init__.py" or path in listed:
            continue
        leaf_dirs = [
            d
            for d in directories
            if path.startswith(d)
            and not any(p.startswith(d) and p != d for p in listed)
        ]
        assert leaf_dirs, f"the README's Layout does not list {path}"
