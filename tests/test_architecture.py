"""The shape of the package (docs/ARCHITECTURE.md): no import cycle — imports inside
functions included —, no module over 400 lines, the map names every module, and the
README's Python tour runs as written."""
import ast
import os
import re


ROOT = os.path.join(os.path.dirname(__file__), "..")
PKG = os.path.join(ROOT, "rnnlab")


def _modules():
    out = {}
    for dirpath, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return out


def _imports(name, path, modules):
    """Every rnnlab module that ``name`` imports, at any depth of the file."""
    is_pkg = path.endswith("__init__.py")
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # "from pkg import mod" imports the submodule; "from mod import name" the module
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
            targets = subs if len(subs) == len(node.names) else [mod] + subs
        else:
            continue
        for t in targets:
            if t in modules and t != name:
                found.add(t)
    return found


def find_cycles(graph):
    """Every cycle a depth-first walk of ``graph`` ({module: modules it imports}) closes,
    each as the path from the module it returns to, back to it."""
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"
    for m in sorted(graph):
        if m not in state:
            visit(m)
    return cycles


def test_no_import_cycles():
    modules = _modules()
    graph = {m: _imports(m, p, {**modules, **EXTENSIONS}) for m, p in modules.items()}
    graph.update({m: set() for m in EXTENSIONS})      # C code imports nothing of ours
    assert sum(map(len, graph.values())) > len(modules)       # the imports were found
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    """Imports inside a function and relative ones are edges, and a cycle through them is found."""
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from rnnlab import b\n    from .c import x\n")
    edges = _imports("rnnlab.a", str(a), {"rnnlab.a": 1, "rnnlab.b": 1, "rnnlab.c": 1})
    assert edges == {"rnnlab.b", "rnnlab.c"}
    graph = {"rnnlab.a": edges, "rnnlab.b": set(), "rnnlab.c": {"rnnlab.d"}, "rnnlab.d": {"rnnlab.a"}}
    assert find_cycles(graph) == [["rnnlab.a", "rnnlab.c", "rnnlab.d", "rnnlab.a"]]
    assert find_cycles({**graph, "rnnlab.d": set()}) == []


EXTENSIONS = {"rnnlab._gates": "rnnlab/_gates.c"}      # compiled modules: leaves of the graph


def test_no_module_over_400_lines():
    long = {}
    for m, p in _modules().items():
        with open(p, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > 400:
            long[m] = n
    assert not long, long


def test_architecture_map_names_every_module():
    with open(os.path.join(ROOT, "docs", "ARCHITECTURE.md"), encoding="utf-8") as f:
        doc = f.read()
    missing = []
    for m, path in _modules().items():
        rel = os.path.relpath(path, PKG).replace(os.sep, "/")
        if rel.endswith("__init__.py") or rel == "__main__.py":
            continue                      # packages' re-exports
        if rel not in doc:
            missing.append(rel)
    assert not missing, f"docs/ARCHITECTURE.md does not mention {missing}"


def test_readme_python_tour_runs(tmp_path, monkeypatch):
    """The README's API tour, verbatim except the training budget (60 s → 3 steps)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    code = re.search(r"## A tour of the Python API\s+```python\n(.*?)```", readme, re.S).group(1)
    assert "time_limit=60" in code
    code = code.replace("time_limit=60", "max_steps=3")
    (tmp_path / "novel.txt").write_text("The best of times, it was the worst of times. " * 200,
                                        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_tour"})
    assert (tmp_path / "runs" / "mine" / "best.npz").is_file()
