"""The department taxonomy, read from configuration (``taxonomy.toml``), never from code."""

from __future__ import annotations

import difflib
import hashlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import OperatorError

DEFAULT_TAXONOMY = Path(__file__).with_name("taxonomy.toml")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = ("version", "default_threshold", "also_threshold", "departments")
_DEPARTMENT_KEYS = ("description", "enquiries", "threshold")


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    description: str
    enquiries: tuple[str, ...]
    threshold: float


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """Departments in file order; ``version`` names the file's revision."""

    version: str
    departments: tuple[Department, ...]
    also_threshold: float
    source: str
    sha256: str

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.departments)

    def threshold(self, department: str) -> float:
        for d in self.departments:
            if d.id == department:
                return d.threshold
        raise KeyError(department)

    def __contains__(self, department: object) -> bool:
        return department in self.ids


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """The taxonomy at ``path``, else the one shipped with the package.

    The path comes from the caller (``frontdoor/`` passes ``settings.taxonomy``): reading
    ``FRONTDOOR_TAXONOMY`` here saw the process environment but not ``.env``, so one process
    could route with two taxonomies."""
    chosen = Path(path) if path else DEFAULT_TAXONOMY
    try:
        raw = chosen.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise OperatorError(f"taxonomy file {chosen} not found: point FRONTDOOR_TAXONOMY at a file") from None
    except IsADirectoryError:
        raise OperatorError(f"taxonomy file {chosen} is a directory: point FRONTDOOR_TAXONOMY at the .toml "
                            "file") from None
    except OSError as exc:
        raise OperatorError(f"cannot read taxonomy file {chosen}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OperatorError(f"taxonomy file {chosen} is not valid TOML: {exc}") from None
    return _parse(data, str(chosen), hashlib.sha256(raw).hexdigest())


def _parse(data: dict[str, object], source: str, digest: str) -> Taxonomy:
    def bad(why: str) -> OperatorError:
        return OperatorError(f"taxonomy {source}: {why}")

    _check_keys(data, _TOP_KEYS, "", bad)
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise bad("needs a top-level version = \"...\" string")
    default = _fraction(data.get("default_threshold", 0.5), "default_threshold", bad)
    also = _fraction(data.get("also_threshold", 0.25), "also_threshold", bad)
    table = data.get("departments")
    if not isinstance(table, dict) or len(table) < 2:
        raise bad("needs at least two [departments.<id>] tables")
    departments = []
    for dept_id, spec in table.items():
        if not _ID.match(dept_id):
            raise bad(f"department id {dept_id!r} must be lower_snake_case")
        if not isinstance(spec, dict):
            raise bad(f"departments.{dept_id} must be a table")
        _check_keys(spec, _DEPARTMENT_KEYS, f"departments.{dept_id}", bad)
        description = spec.get("description")
        if not isinstance(description, str) or not description.strip():
            raise bad(f"departments.{dept_id} needs a description = \"...\" (what the department handles)")
        enquiries = spec.get("enquiries", [])
        if not isinstance(enquiries, list) or not all(isinstance(e, str) for e in enquiries):
            raise bad(f"departments.{dept_id}.enquiries must be a list of strings")
        departments.append(
            Department(
                id=dept_id,
                description=description.strip(),
                enquiries=tuple(enquiries),
                threshold=_fraction(spec.get("threshold", default), f"departments.{dept_id}.threshold", bad),
            )
        )
    return Taxonomy(version, tuple(departments), also, source, digest)


def _check_keys(table: dict[str, object], known: tuple[str, ...], where: str,
                bad: Callable[[str], OperatorError]) -> None:
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use {', '.join(known)}"
            raise bad(f"unknown key {key!r}" + (f" in {where}" if where else "") + f": {hint}")


def _fraction(value: object, name: str, bad: Callable[[str], OperatorError]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise bad(f"{name} must be a number between 0 and 1")
    return float(value)
