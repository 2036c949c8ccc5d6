"""CSV with nested fields flattened: one fixed column per leaf field.

:class:`FlatCsvItemExporter` is Scrapy's ``CsvItemExporter`` fed a flat row:
nested objects become dotted columns (``price_info.price``,
``shop_info.score_info.composite_score``, ``filters.price_start``), lists of
plain values are joined with ``|`` (``浙江|台州市``), booleans are ``true`` or
``false``, nulls are empty cells, prices keep their exact digits. Columns come
in the fixed order of :data:`CSV_COLUMNS`; fields the model does not know go,
as one JSON object, in the last column ``extra``. ``FEED_EXPORT_FIELDS`` (or a
feed's ``fields`` option) picks other columns by the same dotted names.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from itemadapter import ItemAdapter
from pydantic_core import to_json
from scrapy.exporters import CsvItemExporter

from tmapi_crawler.contract.api import FILTER_FLAGS
from tmapi_crawler.contract.items import ProductItem, field_paths
from tmapi_crawler.feeds.guard import GuardedExport

LIST_SEPARATOR = "|"
_CONTAINERS = {
    path.rsplit(".", 1)[0] for path in field_paths(ProductItem) if "." in path
}


def _columns() -> tuple[str, ...]:
    columns = []
    for path in field_paths(ProductItem):
        if path == "filters":
            columns += [f"filters.{name}" for name in ("price_start", "price_end")]
            columns += [f"filters.{name}" for name in FILTER_FLAGS]
        elif path not in _CONTAINERS:
            columns.append(path)
    return (*columns, "extra")


CSV_COLUMNS = _columns()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and plain values are leaves,
    an empty object has none."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _json_default(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else repr(value)


def strict_json(value: Any) -> str:
    """*value* as JSON any reader takes, as the JSON Lines feed writes it:
    NaN and infinities (Python's JSON reader accepts them in an answer) as
    null, exact decimals as strings, anything else not JSON as its repr."""
    return to_json(value, fallback=_json_default, inf_nan_mode="null").decode()


def cell(value: Any) -> str:
    """One CSV cell: plain values as text, lists joined, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float | Decimal) and not isinstance(v, bool)
        for v in value
    ):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, dict | list | tuple):
        return strict_json(value)
    return str(value)


def flat_row(item: Any, columns: tuple[str, ...] = CSV_COLUMNS) -> dict[str, str]:
    """The item as ``{column: cell}``; unknown fields gathered in ``extra``."""
    flat = flatten(ItemAdapter(item).asdict())
    row = {name: cell(value) for name, value in flat.items()}
    extra = {name: value for name, value in flat.items() if name not in columns}
    row["extra"] = strict_json(extra) if extra else ""
    return row


class FlatCsvItemExporter(GuardedExport, CsvItemExporter):
    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        if self.fields_to_export is None:
            self.fields_to_export = list(CSV_COLUMNS)

    def write_item(self, item: Any) -> None:
        super().write_item(flat_row(item))
