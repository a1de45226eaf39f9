"""The jobs file: one JSON object per line, checked whole before any model loads.

    {"id": "song-1", "tags": "piano,happy", "lyrics": "[Verse] ...", "seconds": 60, "seed": 1}

plus optional ``temperature``, ``top_k``, ``cfg``, ``decode_steps``, ``decode_guidance``,
``decode_seed`` (default: ``seed``) and ``batch`` (songs of this prompt sampled together). Every
problem of every line is collected and reported at once, each with its line number, so a file of
hundreds of jobs is fixed in one pass. Ids become file names, so they are restricted to a portable set.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import HeartMuLaError
from ..settings import MAX_SEED
from ..text_input import text_or_file

MAX_BATCH = 64
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
REQUIRED = ("id", "tags", "lyrics", "seconds", "seed")
SETTINGS = {  # optional field -> default (the `sample` / `generate` command line defaults)
    "temperature": 1.0, "top_k": 50, "cfg": 1.5, "decode_steps": 10, "decode_guidance": 1.25,
    "decode_seed": None, "batch": 1,
}
MAX_REPORTED = 30


class JobsError(HeartMuLaError):
    """The jobs file is unreadable or some of its lines are invalid (all of them are listed)."""


@dataclass(frozen=True)
class Job:
    id: str
    tags: str
    lyrics: str
    seconds: float
    seed: int
    temperature: float = 1.0
    top_k: int = 50
    cfg: float = 1.5
    decode_steps: int = 10
    decode_guidance: float = 1.25
    decode_seed: int = 0
    batch: int = 1
    line: int = 0

    def settings(self) -> dict:
        """What, besides tags and lyrics, decides the output (recorded in the manifest)."""
        out = asdict(self)
        for key in ("id", "tags", "lyrics", "line"):
            out.pop(key)
        return out

    def output_stems(self) -> list[str]:
        """File name stems of the audio files: <id>, or <id>_0 .. <id>_{B-1} for a batch."""
        return [self.id] if self.batch == 1 else [f"{self.id}_{i}" for i in range(self.batch)]


def _number(value, name: str, *, integer: bool, low=None, high=None, low_open=False) -> str | None:
    """None when ``value`` is valid, else what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"'{name}' must be a {'whole number' if integer else 'number'}, got {json.dumps(value)}"
    if integer and not isinstance(value, int):
        return f"'{name}' must be a whole number (write {int(value)} rather than {value})" if float(value).is_integer() \
            else f"'{name}' must be a whole number, got {value}"
    if not math.isfinite(value):
        return f"'{name}' must be a finite number, got {value}"
    if low is not None and (value <= low if low_open else value < low):
        return f"'{name}' must be {'>' if low_open else '>='} {low}, got {value}"
    if high is not None and value > high:
        return f"'{name}' must be <= {high}, got {value}"
    return None


CHECKS = {
    "seconds": dict(integer=False, low=0.04),  # at least one 80 ms frame
    "seed": dict(integer=True, low=0, high=MAX_SEED),
    "temperature": dict(integer=False, low=0, low_open=True),
    "top_k": dict(integer=True, low=1),
    "cfg": dict(integer=False, low=0),
    "decode_steps": dict(integer=True, low=1, high=1000),
    "decode_guidance": dict(integer=False, low=0),
    "decode_seed": dict(integer=True, low=0, high=MAX_SEED),
    "batch": dict(integer=True, low=1, high=MAX_BATCH),
}


def _id_problem(value) -> str | None:
    if not isinstance(value, str):
        return f"'id' must be a string, got {json.dumps(value)}"
    if not SAFE_ID.match(value) or value.endswith("."):
        return (f"'id' {json.dumps(value)} cannot be used as a file name: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit and not ending with '.'")
    if value.split(".")[0].lower() in WINDOWS_RESERVED:
        return f"'id' {json.dumps(value)} is a reserved file name on Windows; pick another"
    return None


def _text_problem(record: dict, name: str) -> str | None:
    value = record[name]
    if not isinstance(value, str):
        return f"'{name}' must be a string, got {json.dumps(value)[:40]}"
    try:
        text = text_or_file(value, name)
    except HeartMuLaError as exc:
        return str(exc)
    if not text.strip():
        return f"'{name}' is empty"
    record[name] = text
    return None


def _check_record(record, defaults: dict) -> tuple[Job | None, list[str]]:
    """One parsed line -> (Job, []) or (None, problems)."""
    if not isinstance(record, dict):
        return None, [f"expected a JSON object {{\"id\": ..., \"tags\": ...}}, got {type(record).__name__}"]
    problems = [f"missing field '{k}'" for k in REQUIRED if k not in record]
    unknown = sorted(set(record) - set(REQUIRED) - set(SETTINGS))
    if unknown:
        problems.append(f"unknown field(s) {', '.join(repr(k) for k in unknown)}; "
                        f"known: {', '.join(REQUIRED + tuple(SETTINGS))}")
    if "id" in record:
        problems.append(_id_problem(record["id"]))
    for name in ("tags", "lyrics"):
        if name in record:
            problems.append(_text_problem(record, name))
    for name, check in CHECKS.items():
        if record.get(name) is not None:
            problems.append(_number(record[name], name, **check))
    problems = [p for p in problems if p]
    if problems:
        return None, problems
    values = {**SETTINGS, **defaults, **{k: v for k, v in record.items() if v is not None}}
    if values["decode_seed"] is None:
        values["decode_seed"] = values["seed"]
    values["seconds"] = float(values["seconds"])
    return Job(**{k: values[k] for k in REQUIRED + tuple(SETTINGS)}), []


def _clashes(jobs: list[Job]) -> list[tuple[int, str]]:
    """Two jobs whose ids or output files would collide (case-insensitively, as on macOS/Windows)."""
    owner: dict[str, Job] = {}
    problems = []
    for job in jobs:
        for stem in dict.fromkeys([job.id, *job.output_stems()]):
            first = owner.setdefault(stem.lower(), job)
            if first is not job:
                what = "duplicate id" if first.id.lower() == job.id.lower() else f"output name '{stem}' also made by"
                problems.append((job.line, f"{what} '{first.id}' (line {first.line})"))
                break
    return problems


def parse_jobs(path: str | Path, defaults: dict | None = None) -> list[Job]:
    """Read and check the whole jobs file; raise JobsError listing every bad line."""
    path = Path(path)
    defaults = {k: v for k, v in (defaults or {}).items() if v is not None}
    bad = [_number(v, k, **CHECKS[k]) for k, v in defaults.items()]
    if any(bad):
        raise JobsError("Bad default setting: " + "; ".join(b for b in bad if b))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise JobsError(f"Cannot read jobs file {path}: {exc}") from None
    jobs, problems = [], []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as exc:
            problems.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        job, bad = _check_record(record, defaults)
        problems += [(number, p) for p in bad]
        if job is not None:
            jobs.append(replace(job, line=number))
    problems += _clashes(jobs)
    if problems:
        raise JobsError(describe_problems(path, problems))
    if not jobs:
        raise JobsError(f"Jobs file {path} holds no jobs: write one JSON object per line, e.g. "
                        '{"id": "song-1", "tags": "piano,happy", "lyrics": "[Verse] ...", "seconds": 60, "seed": 1}')
    return jobs


def describe_problems(path, problems: list[tuple[int, str]]) -> str:
    problems = sorted(problems)
    shown = [f"  line {n}: {p}" for n, p in problems[:MAX_REPORTED]]
    if len(problems) > MAX_REPORTED:
        shown.append(f"  ... and {len(problems) - MAX_REPORTED} more")
    return f"{path}: {len(problems)} problem(s); nothing was run:\n" + "\n".join(shown)
