"""The installed set is the lock: every requirement pinned there at the same version, every package with hashes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _locked(path: Path) -> dict[str, list[str]]:
    """Each locked package with its hash options (continuation lines joined)."""
    text = path.read_text().replace("\\\n", " ")
    locked = {}
    for line in text.splitlines():
        match = PIN.match(line.strip())
        if match:
            locked[_canonical(match.group(1))] = [match.group(2), *re.findall(r"--hash=sha256:[0-9a-f]{64}", line)]
    return locked


@pytest.mark.parametrize("wanted,lock", [("requirements.txt", "requirements.lock"),
                                         ("requirements-dev.txt", "requirements-dev.lock")])
def test_every_requirement_is_locked_at_its_pinned_version_with_hashes(wanted, lock):
    locked = _locked(ROOT / lock)
    wanted_pins = _pins(ROOT / wanted)
    if wanted == "requirements-dev.txt":
        wanted_pins.update(_pins(ROOT / "requirements.txt"))
    for name, version in wanted_pins.items():
        assert name in locked, f"{name} is not in {lock}: run make lock"
        assert locked[name][0] == version, f"{name}: {wanted} pins {version}, {lock} has {locked[name][0]}"
    for name, entry in locked.items():
        assert len(entry) > 1, f"{name} has no hash in {lock}"


def test_the_lock_names_no_machine_specific_index():
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        assert "--find-links" not in text and "--extra-index-url" not in text and "file://" not in text
