"""The layout's rules, checked by construction (issue 18): only capture/ imports torch or
diffusers, and no module grows past what one job needs."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import profiler_kit

PACKAGE = Path(profiler_kit.__file__).parent
TORCH_FREE_PACKAGES = ("analysis", "trace", "records", "hardware", "report")
MAX_MODULE_LINES = 600      # the ceiling: a file past it usually holds two jobs


def _modules(package: str) -> list[str]:
    path = PACKAGE / package
    names = [f"profiler_kit.{package}"]
    for info in pkgutil.walk_packages([str(path)], prefix=f"profiler_kit.{package}."):
        names.append(info.name)
    return names


def test_the_torch_free_stages_import_neither_torch_nor_diffusers():
    modules = ["profiler_kit.analyze", "profiler_kit.aggregate", "profiler_kit.config", "profiler_kit.units",
               "profiler_kit.run_folder", "profiler_kit.out_folder", "profiler_kit.capture",
               "profiler_kit.capture.launchers", "profiler_kit.capture.slurm", "profiler_kit.capture.job_end"]
    for package in TORCH_FREE_PACKAGES:
        modules += _modules(package)
    assert len(modules) > 40, modules          # the walk found the packages' modules
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_capture_is_where_torch_is_imported():
    """Every module outside capture/ that names torch at all names it in a string or a comment,
    never in an import statement: the rule above holds for modules no test imports too."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("capture",) or rel.name == "__main__.py":
            continue
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1 and words[1].split(".")[0] in ("torch", "diffusers"):
                offenders.append(f"{rel}: {line.strip()}")
    assert offenders == []


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_the_top_level_holds_only_the_commands_and_the_shared_modules():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "aggregate.py", "analyze.py", "attention_op_names.py", "cache_folder.py",
                   "config.py", "out_folder.py", "run_folder.py", "units.py"]
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert packages == ["analysis", "capture", "hardware", "records", "report", "trace"]
