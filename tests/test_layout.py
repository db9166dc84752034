"""The package's shape: three rooms (engine at the root, run/, teach/), imports flowing one
way (engine ← run ← teach), and no function longer than a screen outside kernel sources."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "brainprop_np"
ENGINE_SUBPACKAGES = ("layers", "rules", "kernels", "data")
ROOMS = ("run", "teach")
MAX_FUNCTION_LINES = 60
KERNEL_SOURCES = ("kernels",)     # CUDA/numba kernel sources may be longer
DOORS = ("__init__.py", "__main__.py", "cli.py", "sweep.py")   # the public API, the command line, entry points


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _room(path):
    """'engine', 'run' or 'teach' for a file of the package."""
    first = path.relative_to(PACKAGE).parts[0]
    if first in DOORS:
        return "doors"
    return first if first in ROOMS else "engine"


def _imported_rooms(path):
    """The rooms of the package that `path` imports (relative or absolute imports)."""
    rel = path.relative_to(PACKAGE)
    depth = len(rel.parts) - 1            # folders between the package root and the file
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom):
            if node.level:                # from ..x import y: resolve against the file's folder
                base = list(rel.parts[:-1])[:max(0, depth - (node.level - 1))]
                if node.level - 1 > depth:
                    continue
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts + [a.name] for a in node.names] if not node.module else [parts]
            elif node.module and node.module.split(".")[0] == "brainprop_np":
                names = [node.module.split(".")[1:]]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "brainprop_np"]
        for parts in names:
            if parts and parts[0] in ROOMS:
                rooms.add(parts[0])
    return rooms


def test_imports_flow_one_way():
    allowed = {"engine": set(), "run": {"run"}, "teach": {"run", "teach"}, "doors": set(ROOMS)}
    wrong = [f"{p.relative_to(PACKAGE)} ({_room(p)}) imports {sorted(_imported_rooms(p) - allowed[_room(p)])}"
             for p in _modules() if _imported_rooms(p) - allowed[_room(p)]]
    assert not wrong, "imports must flow engine ← run ← teach:\n" + "\n".join(wrong)


def test_package_root_holds_only_the_engine():
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders == sorted(ENGINE_SUBPACKAGES + ROOMS)
    for p in PACKAGE.glob("*.py"):
        if p.name in DOORS:
            continue
        assert _imported_rooms(p) == set(), f"{p.name} at the package root imports run/ or teach/"


def test_no_function_longer_than_a_screen():
    long = []
    for p in _modules():
        if p.relative_to(PACKAGE).parts[0] in KERNEL_SOURCES:
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(PACKAGE)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_development_page_names_every_file():
    text = (PACKAGE.parent / "docs" / "development.md").read_text(encoding="utf-8")
    tree = text[text.index("brainprop_np/\n"):]
    tree = tree[:tree.index("```")]
    missing = [str(p.relative_to(PACKAGE)) for p in _modules()
               if p.name != "__init__.py" and p.name not in tree]
    assert not missing, f"docs/development.md's tree does not name: {missing}"


def test_every_data_file_of_the_package_is_installed():
    """Each file of the package that is not Python (the CUDA sources and the header they
    include, the MNIST sample) matches a glob of setup.cfg's package_data, so that a
    non-editable install has it."""
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(PACKAGE.parent / "setup.cfg")
    globs = [g.strip() for g in cfg["options.package_data"]["brainprop_np"].split(",")]
    data = [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts and not p.name.startswith(".")]
    missing = [str(p.relative_to(PACKAGE)) for p in data if not any(p.relative_to(PACKAGE).match(g) for g in globs)]
    assert data and not missing, missing
