"""Read policy YAML into validated `PolicyFile`s, reporting every problem as file:line: field.

Parsing goes through YAML's node graph (not `yaml.load`) so each value keeps its line, duplicate
keys are caught, and alias bombs are cut off by a node budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from proctor.canonical import digest, sha256_hex
from proctor.policy.schema import PolicyFile

MAX_NODES = 50_000
MAX_FILE_BYTES = 1_000_000
Path_ = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class PolicyError(ValueError):
    """One or more problems in a policy set; nothing of it is used."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass(frozen=True)
class LoadedFile:
    name: str
    policy: PolicyFile
    sha256: str
    lines: dict[Path_, int]

    def line_of(self, path: Path_) -> int:
        """The line of the value at `path`, or of its nearest parent that has one."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


@dataclass(frozen=True)
class PolicySet:
    files: tuple[LoadedFile, ...]
    version: str
    """Content hash of the whole set: which rules decided is reproducible from it."""


def load_policy_dir(directory: str | Path) -> PolicySet:
    root = Path(directory)
    if not root.is_dir():
        raise PolicyError([PolicyProblem(str(root), 0, "directory",
                                         "no such policy directory (set PROCTOR_POLICY_DIR)")])
    paths = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    paths = [p for p in paths if not p.name.endswith((".test.yaml", ".test.yml"))]
    loaded: list[LoadedFile] = []
    problems: list[PolicyProblem] = []
    for path in paths:
        try:
            loaded.append(load_policy_file(path, name=str(path.relative_to(root))))
        except PolicyError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PolicyError(problems)
    version = digest([[f.name, f.sha256] for f in loaded])[:16]
    return PolicySet(tuple(loaded), version)


def load_policy_file(path: Path, name: str | None = None) -> LoadedFile:
    label = name or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError([PolicyProblem(label, 0, "file", exc.strerror or str(exc))]) from exc
    return parse_policy_text(raw, label)


def read_yaml_mapping(raw: bytes, label: str) -> tuple[dict[str, Any], dict[Path_, int]]:
    """Plain data of a YAML mapping plus the line of every value (for file:line errors)."""
    if len(raw) > MAX_FILE_BYTES:
        raise PolicyError([PolicyProblem(label, 0, "file", f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError as exc:
        raise PolicyError([PolicyProblem(label, 0, "file", f"not UTF-8: {exc}")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([PolicyProblem(label, line, "yaml", problem)]) from exc
    lines: dict[Path_, int] = {}
    data = {} if node is None else _NodeReader(label, lines).read(node, ())
    if not isinstance(data, dict):
        raise PolicyError([PolicyProblem(label, 1, "file", "the file must be a mapping")])
    return data, lines


def validate_model(model: type[ModelT], data: dict[str, Any], label: str,
                   lines: dict[Path_, int]) -> ModelT:
    """`model.model_validate(data)`, with each error as file:line: field: message."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        located = LoadedFile(label, PolicyFile(), "", lines)
        raise PolicyError([_problem(located, error) for error in exc.errors()]) from exc


def parse_policy_text(raw: bytes, label: str) -> LoadedFile:
    data, lines = read_yaml_mapping(raw, label)
    policy = validate_model(PolicyFile, data, label, lines)
    return LoadedFile(label, policy, sha256_hex(raw), lines)


def _problem(loaded: LoadedFile, error: Any) -> PolicyProblem:
    location: Path_ = tuple(error["loc"])
    # Drop pydantic's union/validator tags so the path matches the YAML path.
    yaml_path = tuple(
        p for p in location if isinstance(p, int) or not str(p).startswith("function"))
    field = ".".join(str(p) for p in yaml_path) or "file"
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return PolicyProblem(loaded.name, loaded.line_of(yaml_path), field, message)


class _NodeReader:
    """Turns a YAML node graph into plain data while recording each value's line."""

    def __init__(self, label: str, lines: dict[Path_, int]) -> None:
        self.label = label
        self.lines = lines
        self.budget = MAX_NODES
        self.constructor = yaml.SafeLoader("")

    def read(self, node: yaml.Node, path: Path_) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise PolicyError([PolicyProblem(
                self.label, node.start_mark.line + 1, "yaml",
                f"more than {MAX_NODES} values (alias expansion?): refused")])
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node)
                if not isinstance(key, str):
                    raise self._error(key_node, path, f"key {key!r} is not a string")
                if key in result:
                    raise self._error(key_node, (*path, key), "duplicate key")
                result[key] = self.read(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node)

    def _error(self, node: yaml.Node, path: Path_, message: str) -> PolicyError:
        field = ".".join(str(p) for p in path) or "file"
        return PolicyError([PolicyProblem(self.label, node.start_mark.line + 1, field, message)])
