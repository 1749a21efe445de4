"""Checks describe themselves; run.json carries the description, so readers never import the checks."""

from __future__ import annotations

import pytest

from auditor.checks import REGISTRY, build_registry, check_record
from auditor.checks.base import Check, CheckContext, CheckResult, NoParams
from auditor.results.findings import LAYOUTS, FindingKind
from auditor.results.reading import finding_kinds, produced_kinds


def test_every_check_describes_every_kind_it_produces() -> None:
    record = check_record()
    assert set(record) == set(REGISTRY)
    orders = []
    for name, entry in record.items():
        assert entry["produces"] == sorted(REGISTRY[name].produces)
        assert set(entry["kinds"]) == set(REGISTRY[name].produces), name
        for kind, meta in entry["kinds"].items():
            assert meta["layout"] in LAYOUTS and meta["title"] and meta["intro"], kind
            orders.append(meta["order"])
    assert len(orders) == len(set(orders)), "two kinds share a report position"


def test_readers_take_kinds_and_metadata_from_run_json() -> None:
    run = {"checks": {"duplicates": {}}, "check_info": check_record()}
    assert produced_kinds(run)["duplicates"] == ("exact_duplicate", "near_duplicate", "split_leakage")
    assert finding_kinds(run)["split_leakage"].layout == "groups"
    custom = {"check_info": {"mine": {"produces": ["odd"], "kinds": {"odd": {"title": "Odd", "layout": "bogus"}}}}}
    assert produced_kinds(custom) == {"mine": ("odd",)}
    assert finding_kinds(custom)["odd"] == FindingKind("Odd", "", "generic", 1000)


def test_run_json_without_check_info_reads_as_the_built_in_checks() -> None:
    produced = produced_kinds({"checks": {"extra": {}}})
    assert produced["duplicates"] == ("exact_duplicate", "near_duplicate", "split_leakage")
    assert produced["extra"] == ("extra",)
    assert produced["label_errors"] == ("label_error",) and produced["outliers"] == ("outlier",)
    assert finding_kinds({"checks": {}})["near_duplicate"].title == "Near duplicates"


def test_a_new_check_is_one_class_and_one_registration() -> None:
    class ExampleCheck(Check[NoParams]):
        name = "example_for_test"
        description = "images too blurry to label"
        kinds = {"example_for_test": FindingKind("Blurry images", "Too soft to tell.", layout="images", order=99)}

        def run(self, ctx: CheckContext) -> CheckResult:
            return CheckResult()

    record = check_record(build_registry([*REGISTRY.values(), ExampleCheck]))
    assert record["example_for_test"]["produces"] == ["example_for_test"]
    assert record["example_for_test"]["kinds"]["example_for_test"]["title"] == "Blurry images"


def test_a_check_cannot_describe_kinds_it_does_not_produce() -> None:
    with pytest.raises(TypeError, match="does not produce"):
        type("Wrong", (Check,), {"name": "wrong", "description": "d", "kinds": {"other": FindingKind("O", "")},
                                 "run": lambda self, ctx: CheckResult()})
