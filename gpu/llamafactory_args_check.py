"""Checks a LLaMA-Factory training YAML's keys against LLaMA-Factory's own argument dataclasses.

    python gpu/llamafactory_args_check.py CONFIG.yaml

`llamafactory-cli train` parses its YAML with transformers' HfArgumentParser over
ModelArguments, DataArguments, TrainingArguments, FinetuningArguments and
GeneratingArguments (llamafactory/hparams/parser.py, `_TRAIN_ARGS`) and refuses a key none of
them has. This script reads those dataclasses' fields, inherited ones included (their
TrainingArguments extends transformers' Seq2SeqTrainingArguments), from the installed
packages' source with `ast`, importing neither: a check without torch or a GPU. LLaMA-Factory
and transformers only have to be on the path (pip install --no-deps is enough).

Exit 0 and print {"checked": [keys], "known": N, "llamafactory": version} when every key is
known; exit 2 naming each unknown key (with the closest known names) on stderr.
"""

from __future__ import annotations

import ast
import difflib
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

TRAIN_ARGS = ["ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments", "GeneratingArguments"]


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed for {sys.executable}: pip install --no-deps {name}")
    return Path(list(spec.submodule_search_locations)[0])


class Module:
    """One source file: its classes (fields and base names) and the names it imports or aliases."""

    def __init__(self, name: str, file: Path):
        self.name = name
        package = file.name == "__init__.py"
        self.classes: dict[str, tuple[list[str], list[str]]] = {}
        self.imports: dict[str, tuple[str, str]] = {}
        self.aliases: dict[str, list[str]] = {}
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                fields = [s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
                bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases]
                self.classes[node.name] = (fields, bases)
            elif isinstance(node, ast.ImportFrom):
                source = resolve_relative(name, node.module or "", node.level, package)
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (source, alias.name)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.aliases.setdefault(target.id, []).append(node.value.id)


def resolve_relative(module: str, target: str, level: int, package: bool) -> str:
    """`from ..x import y` in `module`: the package's own name counts as level 1 inside its __init__."""
    if level == 0:
        return target
    parts = module.split(".")
    base = parts[: len(parts) - level + (1 if package else 0)]
    return ".".join(base + ([target] if target else []))


class Source:
    """Modules found by name under the installed packages, parsed on first use."""

    def __init__(self):
        self.roots = {name: package_dir(name) for name in ("llamafactory", "transformers")}
        self.modules: dict[str, Module | None] = {}

    def module(self, dotted: str) -> Module | None:
        if dotted not in self.modules:
            top, *rest = dotted.split(".")
            root = self.roots.get(top)
            file = None
            if root is not None:
                stem = root.joinpath(*rest)
                file = stem.with_suffix(".py") if stem.with_suffix(".py").exists() else stem / "__init__.py"
            self.modules[dotted] = Module(dotted, file) if file is not None and file.exists() else None
        return self.modules[dotted]

    def fields(self, module: str, cls: str, seen: set[tuple[str, str]] | None = None) -> list[str]:
        """The fields of `cls` as named in `module`, its bases' first (a dataclass's field order)."""
        seen = seen if seen is not None else set()
        found = self.find(module, cls)
        if found is None or found in seen:
            return []
        seen.add(found)
        mod, name = found
        own, bases = self.modules[mod].classes[name]
        out: list[str] = []
        for base in bases:
            out += self.fields(mod, base, seen)
        return out + own

    def find(self, module: str, name: str, depth: int = 0) -> tuple[str, str] | None:
        mod = self.module(module)
        if mod is None or depth > 10:
            return None
        if name in mod.classes:
            return module, name
        for target in mod.aliases.get(name, []):
            hit = self.find(module, target, depth + 1)
            if hit:
                return hit
        if name in mod.imports:
            source, original = mod.imports[name]
            return self.find(source, original, depth + 1)
        return None


def known_arguments() -> set[str]:
    source = Source()
    known: set[str] = set()
    for cls in TRAIN_ARGS:
        fields = source.fields("llamafactory.hparams", cls)
        if not fields:
            raise SystemExit(f"cannot find {cls} in llamafactory.hparams of {source.roots['llamafactory']}")
        known.update(fields)
    return known


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    import yaml

    config = yaml.safe_load(Path(args[0]).read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        print(f"{args[0]}: expected a mapping of LLaMA-Factory arguments", file=sys.stderr)
        return 2
    known = known_arguments()
    unknown = [key for key in config if key not in known]
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=3)
        print(f"{args[0]}: {key} is not an argument of LLaMA-Factory's train parser" + (f" (did you mean {', '.join(close)}?)" if close else ""), file=sys.stderr)
    if unknown:
        return 2
    print(json.dumps({"checked": list(config), "known": len(known), "llamafactory": importlib.metadata.version("llamafactory")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
