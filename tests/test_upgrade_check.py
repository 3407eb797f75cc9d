"""scripts/upgrade_check.py: which pins `make upgrade-check` tries the newest release of."""

from __future__ import annotations

from pathlib import Path

from scripts import upgrade_check


def test_upgrade_check_pins_reads_every_included_requirements_file() -> None:
    # Given requirements.txt, which includes the functions', the layers' and the command's files
    # When its pins are read
    found = upgrade_check.pins()
    # Then a pin from each file is there, with its extras, and nothing unpinned is
    assert found["moto"][0] == "[server]"
    assert {"email-validator", "aws-lambda-powertools", "tzdata", "click", "pytest"} <= set(found)


def test_upgrade_check_pins_follows_nested_includes(tmp_path: Path) -> None:
    # Given a file that includes another, with comments and an unpinned line
    (tmp_path / "inner.txt").write_text("Inner-Lib==2.0  # why\n")
    (tmp_path / "outer.txt").write_text("# top\n-r inner.txt\nouter[extra]==1.1\nloose\n")
    # When its pins are read
    found = upgrade_check.pins(tmp_path / "outer.txt")
    # Then both pins are found, names in lower case, and the unpinned line is not
    assert found == {"inner-lib": ("", "2.0"), "outer": ("[extra]", "1.1")}
