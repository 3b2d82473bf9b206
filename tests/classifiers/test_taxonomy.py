"""The taxonomy is configuration: departments, thresholds and version come from TOML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from classifiers.taxonomy import load_taxonomy
from schemas.errors import OperatorError

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
    taxonomy = load_taxonomy(path)  # frontdoor/ passes settings.taxonomy (FRONTDOOR_TAXONOMY)
    assert taxonomy.ids == ("bins", "roads")
    assert taxonomy.threshold("bins") == 0.7
    assert taxonomy.threshold("roads") == 0.5  # the default


A = '[departments.a]\ndescription = "a"\n'
B = '[departments.b]\ndescription = "b"\n'


@pytest.mark.parametrize(("content", "words"), [
    (A + B, "version"),
    ('version = "1"\n' + A + 'threshold = 1.5\n' + B, "between 0 and 1"),
    ('version = "1"\n[departments.Bad-Id]\ndescription = "x"\n' + B, "lower_snake_case"),
    ('version = "1"\n[departments.a\n', "not valid TOML"),
    # a typo is not silently the default threshold
    ('version = "1"\n' + A + 'treshold = 0.95\n' + B,
     "unknown key 'treshold' in departments.a: did you mean 'threshold'?"),
    ('version = "1"\n' + A + 'owner = "x"\n' + B,
     "unknown key 'owner' in departments.a: use description, enquiries, threshold"),
    ('version = "1"\nalso_treshold = 0.3\n' + A + B,
     "unknown key 'also_treshold': did you mean 'also_threshold'?"),
    ('version = "1"\n' + A + '[departments.b]\nthreshold = 0.5\n', "departments.b needs a description"),
    ('version = "1"\n' + A + '[departments.b]\ndescription = " "\n', "departments.b needs a description"),
])
def test_bad_taxonomy_is_an_operator_error(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(content, "utf-8")
    with pytest.raises(OperatorError, match=re.escape(words)):
        load_taxonomy(path)


def test_missing_taxonomy_file(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="not found"):
        load_taxonomy(tmp_path / "nope.toml")


def test_a_directory_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OperatorError, match="is a directory: point FRONTDOOR_TAXONOMY at the .toml file"):
        load_taxonomy(tmp_path)
