"""Dockerfiles: base images pinned by digest, and hadolint's verdict.

`FROM ${BASE}` is resolved the way the builder does it: only ARGs declared before the first FROM
are visible there, with their defaults. A stage name (`FROM builder`, `COPY --from=builder`) is
not an image. An ARG without a default cannot be checked, so it is reported as a warning: the
build must then pass a pinned value (that is how a digest we could not find is made a required
parameter).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sluice.lint.images import RULE as IMAGE_RULE
from sluice.lint.images import is_pinned
from sluice.lint.problems import Problem

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_ESCAPE_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)


def is_dockerfile(path: Path) -> bool:
    name = path.name
    return (
        name in ("Dockerfile", "Containerfile")
        or name.startswith("Dockerfile.")
        or name.endswith((".Dockerfile", ".dockerfile", ".Containerfile"))
    )


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """Logical instructions with their first line, continuation lines joined, comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    for raw in lines:  # parser directives live at the very top, before any instruction
        match = _ESCAPE_DIRECTIVE.match(raw.strip())
        if match:
            escape = match.group(1)
            break
        if raw.strip() and not raw.lstrip().startswith("#"):
            break
    out: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue  # comments inside a continuation are dropped too, as BuildKit does
        if not buffer:
            start = number
        if stripped.endswith(escape):
            buffer += stripped[: -len(escape)].rstrip() + " "
            continue
        buffer += stripped
        keyword, _, args = buffer.strip().partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        buffer = ""
    if buffer.strip():
        keyword, _, args = buffer.strip().partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    return out


def _arg_defaults(args: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for token in args.split():
        name, eq, value = token.partition("=")
        found[name] = value.strip("\"'") if eq else None
    return found


def _substitute(text: str, env: dict[str, str | None]) -> tuple[str, list[str]]:
    """Expand $VAR / ${VAR} / ${VAR:-word} / ${VAR:+word}; also return names left without a value."""
    missing: list[str] = []

    def repl(match: re.Match) -> str:
        name = match.group(1) or match.group(4)
        op, word = match.group(2), match.group(3) or ""
        value = env.get(name)
        if op and op.endswith("-"):
            return value if value else word
        if op and op.endswith("+"):
            return word if value else ""
        if value is None:
            missing.append(name)
            return ""
        return value

    return _VAR.sub(repl, text), missing


def _flags_and_rest(args: str) -> tuple[dict[str, str], list[str]]:
    flags, rest = {}, []
    for token in args.split():
        if token.startswith("--") and not rest:
            name, _, value = token[2:].partition("=")
            flags[name.lower()] = value
        else:
            rest.append(token)
    return flags, rest


def _mount_sources(args: str) -> list[str]:
    sources = []
    for token in args.split():
        if token.startswith("--mount="):
            for part in token[len("--mount=") :].split(","):
                key, _, value = part.partition("=")
                if key == "from" and value:
                    sources.append(value)
    return sources


def check_base_images(text: str, path: str) -> list[Problem]:
    problems: list[Problem] = []
    global_args: dict[str, str | None] = {}
    stages: set[str] = set()
    seen_from = False

    def check(image_expr: str, line: int, what: str) -> None:
        image, missing = _substitute(image_expr, global_args)
        if image.lower() == "scratch" or image.lower() in stages or image.isdigit():
            return
        if missing:
            problems.append(
                Problem(
                    path,
                    line,
                    IMAGE_RULE,
                    f"{what} {image_expr} uses ARG {', '.join(missing)} without a default; the digest pin "
                    "cannot be verified (the build must pass a digest-pinned value)",
                    "warning",
                )
            )
            return
        if not is_pinned(image):
            via = f" (from {image_expr})" if image != image_expr else ""
            problems.append(
                Problem(path, line, IMAGE_RULE, f"{what} image {image}{via} is not pinned by digest")
            )

    for ins in instructions(text):
        if ins.keyword == "ARG" and not seen_from:
            global_args.update(_arg_defaults(ins.args))
        elif ins.keyword == "FROM":
            seen_from = True
            _, rest = _flags_and_rest(ins.args)
            if not rest:
                problems.append(Problem(path, ins.line, IMAGE_RULE, "FROM without an image"))
                continue
            check(rest[0], ins.line, "FROM")
            if len(rest) >= 3 and rest[1].lower() == "as":
                stages.add(rest[2].lower())
        elif ins.keyword in ("COPY", "ADD"):
            source = _flags_and_rest(ins.args)[0].get("from")
            if source:
                check(source, ins.line, f"{ins.keyword} --from")
        elif ins.keyword == "RUN":
            for source in _mount_sources(ins.args):
                check(source, ins.line, "RUN --mount from")
    return problems


# hadolint levels → ours: its errors and warnings fail the lint, info and style are advice.
_HADOLINT_SEVERITY = {"error": "error", "warning": "error", "info": "warning", "style": "warning"}


def hadolint_command(files: list[str]) -> list[str] | None:
    exe = shutil.which("hadolint")
    return None if exe is None else [exe, "--format", "json", "--no-fail", *files]


def parse_hadolint(result: subprocess.CompletedProcess | None, files: list[str]) -> list[Problem]:
    if result is None:
        return [Problem(files[0], 1, "hadolint", "hadolint not installed; Dockerfiles not linted", "warning")]
    try:
        if not result.stdout.strip() and result.returncode != 0:
            raise json.JSONDecodeError("no output", "", 0)  # a crash must not read as "no findings"
        entries = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        message = (result.stderr or result.stdout or "no output").strip().splitlines()
        return [Problem(files[0], 1, "hadolint", f"hadolint failed: {message[0] if message else ''}")]
    return [
        Problem(
            str(entry.get("file", files[0])),
            int(entry.get("line") or 1),
            f"hadolint:{entry.get('code')}",
            str(entry.get("message", "")),
            _HADOLINT_SEVERITY.get(str(entry.get("level")), "error"),
        )
        for entry in entries
    ]
