"""What setup.cfg installs: every folder of Python code in the project's packages is a package setuptools
finds (a folder missing from `packages` is installed as data, with a warning, and may be dropped)."""

from __future__ import annotations

import configparser
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def test_every_folder_of_code_is_a_listed_package() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    include = cfg["options.packages.find"]["include"].split()
    found = set(find_packages(str(ROOT), include=include))
    roots = sorted({name.split(".")[0] for name in found})
    folders = {
        ".".join(folder.relative_to(ROOT).parts)
        for root in roots for folder in [ROOT / root, *(ROOT / root).rglob("*")]
        if folder.is_dir() and any(folder.glob("*.py"))
    }
    assert "switch.storage.migrations.versions" in folders and "processors.storage.migrations" in folders
    assert folders - found == set()
