"""No import cycles in kago: the module import graph of src/kago, built from the source's AST
(imports at module level and inside functions, relative ones resolved), has no strongly
connected component of more than one module. A cycle hidden in a function still ties the
modules together (one cannot be understood, tested or moved without the other)."""

import ast
import os

import kago

ROOT = os.path.dirname(os.path.dirname(kago.__file__))  # the directory holding kago/


def modules():
    """{dotted name: path} of every module and package under kago/."""
    out = {}
    for top, _dirs, files in os.walk(os.path.join(ROOT, "kago")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(top, name)
                dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                if dotted.endswith(".__init__"):
                    dotted = dotted[:-len(".__init__")]
                out[dotted] = path
    return out


def imports(name, path, known):
    """The kago modules ``name`` imports (anywhere in it)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not path.endswith("__init__.py"):
                    base = base[:-1]
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in known else module)
    return {m for m in found if m in known and m != name}


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(g):
    """Strongly connected components of more than one node (Tarjan's, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_the_graph_sees_function_level_and_relative_imports():
    g = graph()
    assert "kago.manager.release" in g["kago.manager.supervisor.starts"]  # in a function
    assert len(g) > 100 and "kago.manager.supervisor" in g


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_kago_has_no_import_cycle():
    found = cycles(graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)
