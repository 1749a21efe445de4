"""The shape of the project: checks describe themselves (run.json carries the description, so readers never
import the checks), and every module is imported by a test."""

from __future__ import annotations

import ast
from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[1]


def _modules(package: Path) -> set[str]:
    """Dotted names of the package's modules; ``__init__`` and ``__main__`` are entry points, not modules."""
    return {".".join(path.relative_to(package.parent).with_suffix("").parts)
            for path in package.rglob("*.py") if path.stem not in {"__init__", "__main__"}}


def _imported_names(source: str) -> set[str]:
    """Every dotted name an import statement in ``source`` could name as a module: ``import a.b`` gives a.b,
    ``from a.b import c`` gives a.b and a.b.c (c may be a module or a name in a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_import_names_count_every_form_of_import() -> None:
    source = ("import auditor.a.b\nfrom auditor.c import d\nfrom auditor.e.f import g as h\n"
              "def t():\n    import auditor.i\n")
    assert _imported_names(source) >= {"auditor.a.b", "auditor.c.d", "auditor.e.f", "auditor.i"}
    assert _modules(ROOT / "auditor") >= {"auditor.scan.pipeline", "auditor.embed.encoders.clip"}
    assert "auditor.scan" not in _modules(ROOT / "auditor") and "auditor.__main__" not in _modules(ROOT / "auditor")


def test_every_module_is_imported_by_a_test() -> None:
    imported: set[str] = set()
    for test in (ROOT / "tests").rglob("test_*.py"):
        imported |= _imported_names(test.read_text(encoding="utf-8"))
    untested = sorted(_modules(ROOT / "auditor") - imported)
    assert not untested, f"modules no test imports: {', '.join(untested)}"
