"""The simulator's catalog: deterministic, sized by seed, dense prices on demand."""

from __future__ import annotations

from tmapi_crawler.simulator.catalog import Catalog, category_size


def test_the_catalog_is_deterministic_and_sized_by_seed():
    assert Catalog(seed=3).products(5) == Catalog(seed=3).products(5)
    assert len(Catalog(seed=3).products(5)) == category_size(3, 5)
    sizes = {category_size(0, cat) for cat in range(1, 400)}
    assert min(sizes) < 20 and max(sizes) > 10_000


def test_a_dense_price_moves_products_onto_it_and_keeps_the_rest():
    plain = Catalog(seed=0, sizes={81: 300}).products(81)
    dense = Catalog(seed=0, sizes={81: 300}, dense={81: (990, 120)}).products(81)
    assert [p.item_id for p in plain] == [p.item_id for p in dense]
    assert sum(p.price_fen == 990 for p in dense) >= 120
    assert all(p.fields["price"] == "9.90" for p in dense[:120])
    assert plain[120:] == dense[120:]
