"""The taxonomy is configuration: departments, thresholds and version come from TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from classifiers.taxonomy import load_taxonomy
from frontdoor.errors import OperatorError

DESIGN_IDS = (
    "waste highways parking environmental_health housing council_tax benefits planning adult_social_care "
    "childrens_services education licensing parks leisure_libraries electoral registrars "
    "information_governance customer_services"
).split()


def test_default_taxonomy_has_the_contract_ids() -> None:
    taxonomy = load_taxonomy()
    assert list(taxonomy.ids) == DESIGN_IDS
    assert taxonomy.version
    assert all(0 < d.threshold < 1 and d.description and d.enquiries for d in taxonomy.departments)


def test_a_council_edits_its_own_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ours.toml"
    path.write_text('version = "ours-3"\nalso_threshold = 0.3\n'
                    '[departments.bins]\ndescription = "bins"\nthreshold = 0.7\n'
                    '[departments.roads]\ndescription = "roads"\n', "utf-8")
    monkeypatch.setenv("FRONTDOOR_TAXONOMY", str(path))
    taxonomy = load_taxonomy()
    assert taxonomy.ids == ("bins", "roads")
    assert taxonomy.threshold("bins") == 0.7
    assert taxonomy.threshold("roads") == 0.5  # the default


@pytest.mark.parametrize(("content", "words"), [
    ('[departments.a]\n[departments.b]\n', "version"),
    ('version = "1"\n[departments.a]\nthreshold = 1.5\n[departments.b]\n', "between 0 and 1"),
    ('version = "1"\n[departments.Bad-Id]\n[departments.b]\n', "lower_snake_case"),
    ('version = "1"\n[departments.a\n', "not valid TOML"),
])
def test_bad_taxonomy_is_an_operator_error(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(content, "utf-8")
    with pytest.raises(OperatorError, match=words):
        load_taxonomy(path)


def test_missing_taxonomy_file(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="not found"):
        load_taxonomy(tmp_path / "nope.toml")
