#!/usr/bin/env python3
"""Fast checks of the C sources that no compiler makes (run by `make check-source` and
`make check`, before any build). Called through scripts/check_source.sh.

1. Banned functions (STYLE.md): a call of sprintf, vsprintf, strcpy, strcat, strtok, sscanf,
   gets, atoi or atol in a C file of src/, tools/ or tests/ fails, with file:line and the
   function. A call is the name as a whole word followed by `(`, in code: comments and string
   literals are not read, and longer names (snprintf, strtok_r, ch_buf_appendf) are not the
   banned ones.
2. Include direction (DESIGN.md's floors). The CH_DEPS_<module> lines of CMakeLists.txt declare
   which modules each module links. A file of src/<m>/ may include `"<m>/..."` and the headers
   of the modules m declares *directly*, nothing else: an include of a dependency's dependency
   must be declared too, so that the declared list (and the generated picture in
   docs/internals/README.md) names every module m's code reads. src/main is the executable and
   links every library, so it may include any module; no module may include `main/`.
   The declared dependencies must have no cycle, and each must come before its user in
   CH_MODULES (CMake skips a dependency that is not yet a target, silently).
3. The generated dependency list between `<!-- deps:begin -->` and `<!-- deps:end -->` in
   docs/internals/README.md must be what CMakeLists.txt declares: `--doc` prints it,
   `--update-doc` rewrites the block.

Exit status 0 when every check passes, 1 otherwise (each failure on its own line).
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMAKE = "CMakeLists.txt"
DOC = "docs/internals/README.md"
DOC_BEGIN = "<!-- deps:begin -->"
DOC_END = "<!-- deps:end -->"

BANNED = ("sprintf", "vsprintf", "strcpy", "strcat", "strtok", "sscanf", "gets", "atoi", "atol")
BANNED_RE = re.compile(r"\b(" + "|".join(BANNED) + r")\s*\(")
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)


def c_files(dirs):
    """Tracked and untracked (not ignored) C files under dirs, as format-check lists them."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--"] +
            [d + "/*.c" for d in dirs] + [d + "/*.h" for d in dirs],
            cwd=ROOT, check=True, capture_output=True, text=True).stdout
        files = [f for f in out.splitlines() if os.path.isfile(os.path.join(ROOT, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for d in dirs:
            for dirpath, _, names in os.walk(os.path.join(ROOT, d)):
                files += [os.path.relpath(os.path.join(dirpath, n), ROOT) for n in names
                          if n.endswith((".c", ".h"))]
    return sorted(set(files))


TOKEN_RE = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)|\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?",
                      re.S)


NOT_NEWLINE_RE = re.compile(r"[^\n]")


def blank(m):
    """A comment or the inside of a literal as spaces, its newlines kept."""
    t = m.group(0)
    if t[0] in "\"'":
        return t[0] + NOT_NEWLINE_RE.sub(" ", t[1:-1]) + t[-1] if len(t) > 1 else t
    return NOT_NEWLINE_RE.sub(" ", t)


CODE_CACHE = {}


def code_only(text):
    """The text with comments and the insides of string and character literals blanked,
    newlines kept, so that line numbers still hold."""
    if text not in CODE_CACHE:
        CODE_CACHE[text] = TOKEN_RE.sub(blank, text)
    return CODE_CACHE[text]


def check_banned(errors):
    for f in c_files(["src", "tools", "tests"]):
        with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
            code = code_only(fh.read())
        for m in BANNED_RE.finditer(code):
            if m.start() > 0 and code[m.start() - 1] in ".>":
                continue  # a member (s.atoi(), p->atoi()), not the library's function
            line = code.count("\n", 0, m.start()) + 1
            errors.append(f"{f}:{line}: banned function {m.group(1)}() (STYLE.md: use "
                          "snprintf, the ch_buf and string helpers, strtol/strtoul)")


def read_cmake():
    """(modules in CH_MODULES order, {module: [declared module deps]}, {module: [libraries]})."""
    with open(os.path.join(ROOT, CMAKE), encoding="utf-8") as fh:
        text = fh.read()
    pkg = {m.group(1): m.group(2) for m in
           re.finditer(r"pkg_check_modules\(\s*(\w+)\s+(?:\w+\s+)*?IMPORTED_TARGET\s+([\w.+-]+)",
                       text)}
    found = {m.group(1): "lib" + m.group(2) for m in
             re.finditer(r"find_library\(\s*(\w+)\s+([\w.+-]+)", text)}
    mods = re.search(r"set\(\s*CH_MODULES\s+([^)]*)\)", text)
    if not mods:
        sys.exit(f"{CMAKE}: no set(CH_MODULES ...) line")
    order = mods.group(1).split()
    deps, libs = {}, {}
    for m in re.finditer(r"set\(\s*CH_DEPS_(\w+)\s+([^)]*)\)", text):
        mod, items = m.group(1), m.group(2).split()
        deps[mod] = [d[3:] for d in items if d.startswith("ch_")]
        names = []
        for d in items:
            if d.startswith("ch_"):
                continue
            if d.startswith("PkgConfig::"):
                names.append(pkg.get(d[11:], d[11:].lower()))
            elif d == "Threads::Threads":
                names.append("pthreads")
            elif d == "m":
                names.append("libm")
            elif d.startswith("${") and d.endswith("}"):
                names.append(found.get(d[2:-1], d))
            else:
                names.append(d)
        libs[mod] = names
    return order, deps, libs


def check_graph(order, deps, errors):
    """Unknown modules, order in CH_MODULES, cycles."""
    known = set(order)
    for m in deps:
        if m not in known:
            errors.append(f"{CMAKE}: CH_DEPS_{m} names a module missing from CH_MODULES")
        for d in deps[m]:
            if d not in known:
                errors.append(f"{CMAKE}: CH_DEPS_{m} names ch_{d}, not in CH_MODULES")
            elif m in known and order.index(d) > order.index(m):
                errors.append(f"{CMAKE}: CH_DEPS_{m} names ch_{d}, which comes after {m} in "
                              "CH_MODULES (CMake would skip it, not yet a target)")
    for m in order:
        if m not in deps:
            errors.append(f"{CMAKE}: module {m} has no CH_DEPS_{m} line")
    for name in sorted(os.listdir(os.path.join(ROOT, "src"))):
        if os.path.isdir(os.path.join(ROOT, "src", name)) and name != "main" and name not in known:
            errors.append(f"src/{name}/: not in CH_MODULES of {CMAKE}, so never built")
    # Depth-first search; a grey node met again closes a cycle.
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "grey"
        stack.append(m)
        for d in deps.get(m, []):
            if state.get(d) == "grey":
                cycle = stack[stack.index(d):] + [d]
                cycles.append(f"{CMAKE}: dependency cycle " + " -> ".join(cycle))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "black"

    for m in order:
        if m not in state:
            visit(m)
    errors += cycles
    return not cycles


def check_includes(deps, errors):
    src = os.path.join(ROOT, "src")
    modules = {n for n in os.listdir(src) if os.path.isdir(os.path.join(src, n))}
    for f in c_files(["src"]):
        parts = f.split("/")
        if len(parts) < 3:
            continue
        mod = parts[1]
        with open(os.path.join(ROOT, f), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        code = code_only_keep_includes(text)
        for m in INCLUDE_RE.finditer(code):
            path = m.group(1)
            line = code.count("\n", 0, m.start()) + 1
            # The compiler looks beside the including file first, then in src/.
            local = os.path.normpath(os.path.join(os.path.dirname(f), path))
            if os.path.exists(os.path.join(ROOT, local)):
                rel = os.path.relpath(local, "src").split(os.sep)
            else:
                rel = os.path.normpath(path).split(os.sep)
            target = rel[0] if len(rel) > 1 else mod
            if target not in modules:
                errors.append(f'{f}:{line}: #include "{path}" is not under src/<module>/')
                continue
            if target == mod or mod == "main":
                continue
            if target == "main":
                errors.append(f'{f}:{line}: #include "{path}": no module includes main/ (the '
                              "executable); move what both need into a module")
            elif target not in deps.get(mod, []):
                via = [d for d in deps.get(mod, []) if target in closure(deps, d)]
                why = (f"linked only through ch_{via[0]}; declare it" if via else
                       "include only lower floors, or declare the dependency if it belongs there")
                errors.append(f'{f}:{line}: #include "{path}": {mod} does not declare ch_{target} '
                              f"in CH_DEPS_{mod} ({CMAKE}); {why}")


def closure(deps, m, seen=None):
    """Every module m links, directly or through its dependencies (the links are PUBLIC)."""
    seen = set() if seen is None else seen
    for d in deps.get(m, []):
        if d not in seen:
            seen.add(d)
            closure(deps, d, seen)
    return seen


def code_only_keep_includes(text):
    """Comments blanked, but the quoted names of #include lines kept."""
    code = code_only(text)
    lines, kept = code.split("\n"), text.split("\n")
    for i, line in enumerate(lines):
        if re.match(r'^[ \t]*#[ \t]*include[ \t]*"', line):
            m = re.match(r'^[ \t]*#[ \t]*include[ \t]*"[^"]*"', kept[i])
            if m:
                lines[i] = m.group(0) + line[len(m.group(0)):]
    return "\n".join(lines)


def floors(order, deps):
    """Each module's floor: 0 for one with no module dependency, else one above its highest."""
    level = {}

    def floor(m):  # The graph is acyclic here (checked before).
        if m not in level:
            level[m] = 1 + max((floor(d) for d in deps.get(m, [])), default=-1)
        return level[m]

    for m in order:
        floor(m)
    return level


def doc_block(order, deps, libs):
    level = floors(order, deps)
    top = max(level.values(), default=0) + 1
    width = max(len(m) for m in order + ["main"])
    out = ["```", "floor  modules (a module links and includes only modules on lower floors)"]
    out.append(f"{top:>5}  main")
    for f in range(top - 1, -1, -1):
        out.append(f"{f:>5}  " + " ".join(m for m in order if level[m] == f))
    out.append("")
    out.append(f"{'main':<{width}}  -> every ch_* library (the cctvhub executable)")
    for m in sorted(order, key=lambda m: (-level[m], order.index(m))):
        line = f"{m:<{width}}  -> " + (", ".join(deps.get(m, [])) or "(none)")
        if libs.get(m):
            line += "   [" + ", ".join(libs[m]) + "]"
        out.append(line)
    out.append("```")
    return "\n".join(out) + "\n"


def read_doc():
    with open(os.path.join(ROOT, DOC), encoding="utf-8") as fh:
        text = fh.read()
    b, e = text.find(DOC_BEGIN), text.find(DOC_END)
    if b < 0 or e < b:
        return text, None, None
    return text, b + len(DOC_BEGIN) + 1, e


def main(argv):
    order, deps, libs = read_cmake()
    errors = []
    acyclic = check_graph(order, deps, errors)
    if "--doc" in argv or "--update-doc" in argv:
        if not acyclic:
            print("\n".join(errors), file=sys.stderr)
            return 1
        block = doc_block(order, deps, libs)
        if "--doc" in argv:
            sys.stdout.write(block)
            return 0
        text, b, e = read_doc()
        if b is None:
            print(f"{DOC}: no {DOC_BEGIN} ... {DOC_END} block", file=sys.stderr)
            return 1
        with open(os.path.join(ROOT, DOC), "w", encoding="utf-8") as fh:
            fh.write(text[:b] + block + text[e:])
        print(f"{DOC}: dependency block rewritten")
        return 0
    check_banned(errors)
    check_includes(deps, errors)
    if acyclic:
        text, b, e = read_doc()
        if b is None:
            errors.append(f"{DOC}: no {DOC_BEGIN} ... {DOC_END} block")
        elif text[b:e] != doc_block(order, deps, libs):
            errors.append(f"{DOC}: the dependency block differs from the CH_DEPS lines of "
                          f"{CMAKE}; run scripts/check_source.sh --update-doc")
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"source: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("source: ok (banned functions, include direction, dependency list)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
