"""The package boundaries, read from the import statements (ARCHITECTURE.md draws them).

Every import in the project's packages — at module level, inside functions and under
``TYPE_CHECKING`` alike — is an edge between two top-level packages. Data flows one way
(scanners → ledger → exchanger → sender; engine → market data), ``teller`` is the composition
root that nothing imports, ``common`` imports nothing of the project, and service code never
imports ``tools``. The pure modules (the amount maths, the status table, the matching engine,
market data) must not reach an I/O library even through the modules they import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "ledger", "addrs", "scanner", "exchanger", "sender", "matchengine",
            "marketdata", "wsgateway", "exchangecore", "alerts", "teller", "tools")

# (importer, imported): edges that must never exist.
FORBIDDEN_EDGES = {
    ("scanner", "exchanger"), ("scanner", "sender"),
    ("sender", "exchanger"), ("sender", "scanner"), ("sender", "ledger"),
    ("matchengine", "marketdata"), ("matchengine", "teller"), ("matchengine", "exchanger"),
    ("marketdata", "matchengine"), ("matchengine", "wsgateway"), ("marketdata", "wsgateway"),
    ("matchengine", "exchangecore"), ("marketdata", "exchangecore"),
    ("wsgateway", "exchangecore"),
    *(("alerts", pkg) for pkg in PACKAGES if pkg not in ("alerts", "common")),
    *((pkg, "teller") for pkg in PACKAGES if pkg != "teller"),
    *(("common", pkg) for pkg in PACKAGES if pkg != "common"),
}
# The one place the CLI fronts a tool: `teller tool btcsim` starts the simulator on request.
TOOLS_ALLOWED_IN = {"teller/cli_btcsim.py"}

IO_LIBRARIES = {"lmdb", "flask", "requests", "web3", "bitcoinrpc", "waitress", "socket"}
PURE_MODULES = ("exchanger.amounts", "ledger.status", "matchengine.engine",
                "matchengine.methods", "matchengine.config", "marketdata")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # submodules
    return found


def _sources() -> dict[str, tuple[Path, set[str]]]:
    """module name -> (file, imported module names), for every project package."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[_module_name(path)] = (path, _imports(path))
    return modules


SOURCES = _sources()


def _package_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for name, (path, imported) in SOURCES.items():
        importer = name.split(".")[0]
        for target in imported:
            top = target.split(".")[0]
            if top in PACKAGES and top != importer:
                edges.setdefault((importer, top), []).append(
                    f"{path.relative_to(ROOT)} imports {target}")
    return edges


EDGES = _package_edges()


def test_every_project_package_is_scanned() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert on_disk == set(PACKAGES), "add the new package to PACKAGES and ARCHITECTURE.md"


@pytest.mark.parametrize("edge", sorted(FORBIDDEN_EDGES), ids="{0[0]}->{0[1]}".format)
def test_forbidden_edge_is_absent(edge: tuple[str, str]) -> None:
    assert edge not in EDGES, "\n".join(EDGES[edge])


def test_service_code_never_imports_tools() -> None:
    offenders = [why for (importer, top), whys in EDGES.items() if top == "tools"
                 for why in whys if why.split(" imports ")[0] not in TOOLS_ALLOWED_IN]
    assert offenders == []


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported in EDGES:
        graph.setdefault(importer, set()).add(imported)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(f"{a} <-> {b}" for a, b in EDGES if reaches(b, a, {b}))
    assert cycles == [], "\n".join(
        f"{c}: " + "; ".join(EDGES[tuple(c.split(" <-> "))][:2]) for c in cycles)  # type: ignore[index]


def _closure(module: str) -> set[str]:
    """Every module ``module`` reaches through project imports, and the outside names."""
    todo, seen, outside = [module], set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        members = [m for m in SOURCES if m == name or m.startswith(name + ".")] \
            if name == module else [name] if name in SOURCES else []
        for member in members:
            seen.add(member)
            for target in SOURCES[member][1]:
                if target.split(".")[0] in PACKAGES:
                    if target in SOURCES:
                        todo.append(target)
                else:
                    outside.add(target.split(".")[0])
    return outside


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_reaches_no_io_library(module: str) -> None:
    assert _closure(module) & IO_LIBRARIES == set()
