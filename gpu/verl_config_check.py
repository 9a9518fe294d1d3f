"""Checks Hydra overrides against verl's own trainer config, offline, without torch.

    python gpu/verl_config_check.py [--config-name ppo_trainer] OVERRIDE...

Composes the config that `python -m verl.trainer.main_ppo OVERRIDE...` would start from: the
YAML files in the installed verl package's `verl/trainer/config` folder (found with
importlib, without importing verl, so neither torch nor ray is loaded), through Hydra's
compose API, in struct mode as verl's `@hydra.main` entry point has it, with every
OVERRIDE applied, and then resolved (interpolations filled in) as main_ppo resolves it.

Exit status and output:
- 0: stdout is one JSON object, one entry per override in the order given, mapping its key
  (as written, less any leading `+`, `++` or `~`) to the value it has in the composed
  config: lists and dicts as JSON arrays and objects, `null` for a deleted key (`~KEY`).
  A config group override (e.g. `actor@actor_rollout_ref.actor=dp_actor`) maps to the
  option chosen.
- 2: a key verl does not know (or `+KEY` for a key it has, `~KEY` for one it lacks): stderr
  has one line per bad override, `verl_config_check: KEY: ...` saying what to do (prefix `+`
  to add a new key, drop the `+` to change an existing one, ...); every bad override is
  reported, not just the first. Any other problem (an override Hydra cannot parse, a
  config group option that does not exist, an interpolation that does not resolve, verl not
  installed): exit 2 with Hydra's (or Python's) message on stderr.

Only keys are checked, the way Hydra checks them: verl's YAML has no types, so a value of
the wrong type composes here and fails later, when verl builds its dataclasses.

From Python (loaded by file path): `compose(overrides)` returns the composed, resolved
DictConfig itself (tests hand its `data` section to verl's RLHFDataset), `check(overrides)`
the values above; both raise BadOverrides (`.lines`) or CheckError.

Needs hydra-core and omegaconf, and verl installed (without its dependencies is enough):
test/python/requirements-verl.txt pins them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

PROG = "verl_config_check"

# Hydra's own wording for the override problems that are a key's fault (hydra 1.3).
_UNKNOWN = re.compile(r"^Could not override '(?P<key>[^']+)'")
_EXISTS = re.compile(r"^Could not append to config\. An item is already at '(?P<key>[^']+)'")
_ABSENT = re.compile(r"^Could not delete from config\. '(?P<key>[^']+)' does not exist")


class CheckError(Exception):
    """A problem that is not one override's key: reported as is, exit 2."""


def verl_config_dir() -> Path:
    """verl/trainer/config of the installed verl, found without importing verl (which imports torch and ray)."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise CheckError("verl is not installed in this Python; install test/python/requirements-verl.txt "
                         "(verl itself with pip install --no-deps)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "trainer" / "config"
    if not folder.is_dir():
        raise CheckError(f"the installed verl has no trainer config folder at {folder}")
    return folder


def verl_version() -> str:
    try:
        from importlib.metadata import version

        return version("verl")
    except Exception:  # noqa: BLE001 - only used in messages
        return "?"


def _compose(config_dir: Path, config_name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf, open_dict, read_write

    # Hydra may log to stdout; stdout is for the JSON answer only.
    with contextlib.redirect_stdout(sys.stderr):
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.set_struct(cfg, True)  # as @hydra.main hands it to main_ppo
    return cfg, choices


def _advice(problem: str, key: str, text: str) -> str:
    version = verl_version()
    if problem == "unknown":
        return (f"{PROG}: {key}: verl {version} does not know this key; check its spelling, or prefix '+' "
                f"to add it as a new key (+{text})")
    if problem == "exists":
        return (f"{PROG}: {key}: verl {version} already has this key; drop the '+' to change it "
                f"({text.lstrip('+')}), or write '++' to set it whether or not it exists")
    # Hydra's delete looks the key up by value: a key whose value is null counts as absent too.
    return f"{PROG}: {key}: nothing to delete (verl {version} has no such key, or its value is null already); drop this override"


class BadOverrides(Exception):
    """Overrides whose keys verl's config rejects: one message line each."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def _parse(overrides: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(overrides=list(overrides))
    except HydraException as e:
        raise CheckError(str(e)) from e


def compose(overrides: list[str], config_name: str = "ppo_trainer"):
    """verl's trainer config with the overrides applied, resolved, in struct mode (an OmegaConf DictConfig).

    Raises BadOverrides naming every override with a bad key, CheckError for anything else."""
    return _compose_checked(overrides, config_name)[0]


def _compose_checked(overrides: list[str], config_name: str):
    """(config, Hydra's config group choices); see compose."""
    from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    config_dir = verl_config_dir()
    remaining = list(zip(overrides, _parse(overrides)))
    bad: list[str] = []
    while True:
        try:
            cfg, choices = _compose(config_dir, config_name, [text for text, _ in remaining])
            break
        except MissingConfigException as e:
            raise CheckError(str(e)) from e
        except ConfigCompositionException as e:
            message = str(e)
            for problem, pattern in (("unknown", _UNKNOWN), ("exists", _EXISTS), ("absent", _ABSENT)):
                match = pattern.match(message)
                if match:
                    break
            else:
                raise CheckError(message) from e
            key = match.group("key")
            culprit = next((i for i, (_, o) in enumerate(remaining) if o.key_or_group == key), None)
            if culprit is None:  # not traceable to one override: give Hydra's message
                raise CheckError(message) from e
            text, _ = remaining.pop(culprit)
            bad.append(_advice(problem, key, text))
        except (HydraException, OmegaConfBaseException) as e:
            raise CheckError(str(e)) from e
    if bad:
        raise BadOverrides(bad)
    try:
        OmegaConf.resolve(cfg)  # as main_ppo does before it builds anything
    except OmegaConfBaseException as e:
        raise CheckError(f"the composed config does not resolve: {e}") from e
    return cfg, choices


def check(overrides: list[str], config_name: str = "ppo_trainer") -> dict[str, Any]:
    """The composed value of each override's key (see the module docstring). Raises BadOverrides or CheckError."""
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf

    cfg, choices = _compose_checked(overrides, config_name)
    values: dict[str, Any] = {}
    for override in _parse(overrides):
        key = override.key_or_group
        written = key + (f"@{override.package}" if override.package is not None else "")
        if override.type == OverrideType.DEL:
            values[written] = None
        elif "." not in key and (written in choices or key in choices):
            values[written] = choices.get(written, choices.get(key))
        else:
            node = OmegaConf.select(cfg, key, throw_on_missing=False)
            values[written] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verl_config_check.py",
        description="Compose verl's trainer config with Hydra overrides and print the overridden values as JSON.",
    )
    parser.add_argument("--config-name", default="ppo_trainer",
                        help="a config in verl/trainer/config (default: ppo_trainer, main_ppo's)")
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides, as for verl.trainer.main_ppo")
    args = parser.parse_args(argv)
    try:
        values = check(args.overrides, args.config_name)
    except BadOverrides as e:
        for line in e.lines:
            print(line, file=sys.stderr)
        return 2
    except CheckError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    json.dump(values, sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
