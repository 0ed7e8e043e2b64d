"""The zoo's figures table (what `cnnzoo list --long`, the README and notebook 01 show) equals `model_info`.

This file runs after the family tests, so `model_info` (cached per process) has counted most models already.
"""
import pytest

import cnnzoo
from cnnzoo.models._figures_table import FIGURES
from cnnzoo.models.figures import family_table, zoo_table


def test_table_lists_every_model():
    assert sorted(FIGURES) == sorted(cnnzoo.list_models())


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_figures_are_model_info(name):
    info = cnnzoo.model_info(name)
    assert FIGURES[name] == (info.params, info.macs), "stale table: run `python -m cnnzoo.models.figures`"


def test_zoo_and_family_tables():
    rows = zoo_table("resnet1*")
    assert [r["name"] for r in rows] == cnnzoo.list_models("resnet1*")
    assert rows[0]["params"] == 11_699_112 and rows[0]["family"] == "resnet" and "arxiv" in rows[0]["paper"]
    families = {r["family"]: r for r in family_table()}
    assert families["densenet"]["names"] == ["densenet121", "densenet169", "densenet201"]
    low, high = families["densenet"]["params"]
    assert low == FIGURES["densenet121"][0] < high == FIGURES["densenet201"][0]
    assert sum(r["models"] for r in families.values()) == len(cnnzoo.list_models())
