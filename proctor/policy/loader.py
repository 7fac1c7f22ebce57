"""Read policy YAML into validated `PolicyFile`s, reporting every problem as file:line: field.

Parsing goes through YAML's node graph (not `yaml.load`) so each value keeps its line, duplicate
keys are caught, and alias bombs are cut off by a node budget. Policy files come from people
and from review tools alike, so hostile YAML is an error at its line, never an exception:
nesting is capped (PyYAML's composer recurses, as does our reader), scalars that cannot be read
(`2001-13-45`, `!!int abc`) and tags beyond plain YAML are refused, and so are merge keys
(`<<`): they splice fields in where a reviewer does not see them, with override rules few
remember, and YAML 1.2 dropped them. An alias of a whole value (`*name`) still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from proctor.canonical import digest, sha256_hex
from proctor.errors import InputError
from proctor.policy.schema import PolicyFile

MAX_NODES = 50_000
MAX_DEPTH = 64
"""Policies nest a handful of levels; a 10,000-deep `[[[…` must not reach Python's stack."""
MAX_FILE_BYTES = 1_000_000
MERGE_TAG = "tag:yaml.org,2002:merge"
PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}"
    for kind in (
        "str",
        "int",
        "float",
        "bool",
        "null",
        "timestamp",
        "binary",
        "seq",
        "map",
        "set",
        "omap",
        "pairs",
    )
)
"""The tags PyYAML's safe constructor knows; any other is refused by name."""
Path_ = tuple[str | int, ...]
Level = Literal["error", "warning"]
"""An error stops the worker loading the set; a warning is printed and the set loads."""
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"

    def at_level(self, level: Level) -> str:
        """`file:line: error: field: message`: what `policy check` prints."""
        return f"{self.file}:{self.line}: {level}: {self.field}: {self.message}"


class PolicyError(InputError):
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

    def problem_at(self, path: Path_, message: str) -> PolicyProblem:
        """A problem with the value at `path`, reported at its line as `a.b.0: message`."""
        return PolicyProblem(self.name, self.line_of(path), ".".join(map(str, path)), message)


@dataclass(frozen=True)
class PolicySet:
    files: tuple[LoadedFile, ...]
    version: str
    """Content hash of the whole set: which rules decided is reproducible from it."""


def load_policy_dir(directory: str | Path) -> PolicySet:
    root = Path(directory)
    if not root.is_dir():
        raise PolicyError(
            [
                PolicyProblem(
                    str(root), 0, "directory", "no such policy directory (set PROCTOR_POLICY_DIR)"
                )
            ]
        )
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
    data, lines = _read_yaml(raw, label)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError([PolicyProblem(label, 1, "file", "the file must be a mapping")])
    return data, lines


def read_yaml_value(text: str, label: str) -> Any:
    """Plain data of one YAML value (e.g. a command-line parameter), read as policy files are:
    hostile input is a PolicyError, never an exception."""
    data, _ = _read_yaml(text.encode(), label)
    return data


def _read_yaml(raw: bytes, label: str) -> tuple[Any, dict[Path_, int]]:
    if len(raw) > MAX_FILE_BYTES:
        raise PolicyError([PolicyProblem(label, 0, "file", f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
        node = _compose(text)
    except UnicodeDecodeError as exc:
        raise PolicyError([PolicyProblem(label, 0, "file", f"not UTF-8: {exc}")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([PolicyProblem(label, line, "yaml", problem)]) from exc
    lines: dict[Path_, int] = {}
    data = None if node is None else _NodeReader(label, lines).read(node, ())
    return data, lines


class _DepthCappedLoader(yaml.SafeLoader):
    """PyYAML's safe loader whose composer refuses nesting deeper than MAX_DEPTH."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels: refused", mark
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _compose(text: str) -> yaml.Node | None:
    loader = _DepthCappedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def validate_model(
    model: type[ModelT], data: dict[str, Any], label: str, lines: dict[Path_, int]
) -> ModelT:
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
        p for p in location if isinstance(p, int) or not str(p).startswith("function")
    )
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

    def read(self, node: yaml.Node, path: Path_, depth: int = 1) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise PolicyError(
                [
                    PolicyProblem(
                        self.label,
                        node.start_mark.line + 1,
                        "yaml",
                        f"more than {MAX_NODES} values (alias expansion?): refused",
                    )
                ]
            )
        if depth > MAX_DEPTH:  # the text's nesting is capped; aliases can nest it further
            raise PolicyError(
                [
                    PolicyProblem(
                        self.label,
                        node.start_mark.line + 1,
                        "yaml",
                        f"nested deeper than {MAX_DEPTH} levels (through aliases): refused",
                    )
                ]
            )
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.CollectionNode) and node.tag not in PLAIN_TAGS:
            raise self._error(node, path, f"unsupported tag {node.tag[:80]!r}")
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node, path)
                if key in result:
                    raise self._error(key_node, (*path, key), "duplicate key")
                result[key] = self.read(value_node, (*path, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _key(self, node: yaml.Node, path: Path_) -> str:
        if node.tag == MERGE_TAG:
            raise self._error(
                node,
                (*path, "<<"),
                "merge keys (<<) are not supported: write "
                "the fields out (an alias of a whole value, *name, works)",
            )
        if not isinstance(node, yaml.ScalarNode):
            raise self._error(node, path, "a key must be plain text, not a mapping or a list")
        key = self._scalar(node, path)
        if not isinstance(key, str):
            raise self._error(node, path, f"key {key!r} is not a string")
        return key

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        """The value of a scalar, or a located error (never the constructor's exception)."""
        if node.tag not in PLAIN_TAGS:
            raise self._error(node, path, f"unsupported tag {node.tag[:80]!r}")
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            shown = node.value[:80] if isinstance(node.value, str) else node.tag
            reason = getattr(exc, "problem", None) or str(exc)
            raise self._error(node, path, f"cannot read {shown!r}: {reason}") from exc

    def _error(self, node: yaml.Node, path: Path_, message: str) -> PolicyError:
        field = ".".join(str(p) for p in path) or "file"
        return PolicyError([PolicyProblem(self.label, node.start_mark.line + 1, field, message)])
