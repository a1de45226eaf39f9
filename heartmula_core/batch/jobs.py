"""The jobs file: one JSON object per line, checked whole before any model loads.

    {"id": "song-1", "tags": "piano,happy", "lyrics": "[Verse] ...", "seconds": 60, "seed": 1}

plus optional ``temperature``, ``top_k``, ``cfg``, ``decode_steps``, ``decode_guidance``,
``decode_seed`` (default: ``seed``), ``batch`` (songs of this prompt sampled together),
``continue_from`` (a codes file) and ``keep_seconds``. Paths in a line (``continue_from``, and
``tags`` / ``lyrics`` that name a text file) are relative to the jobs file, as its users expect. A line only
translates into the song path's settings (``FIELDS``: ``cfg`` is ``cfg_scale``); their ranges are
the song path's (settings.py), so a line is refused here exactly when ``sample`` / ``generate``
would refuse the same values. Every problem of every line is reported at once, each with its line
number, so a file of hundreds of jobs is fixed in one pass. Ids become file names, so they are
restricted to a portable set.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import HeartMuLaError
from ..settings import MAX_SEED, KNOBS, SongSettings, check
from ..text_input import file_kind, text_or_file

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
REQUIRED = ("id", "tags", "lyrics", "seconds", "seed")
FIELDS = {  # a jobs-file field -> the song path's knob
    "seconds": "seconds", "seed": "seed", "temperature": "temperature", "top_k": "top_k", "cfg": "cfg_scale",
    "decode_steps": "decode_steps", "decode_guidance": "decode_guidance", "decode_seed": "decode_seed",
    "batch": "batch_size", "continue_from": "continue_from", "keep_seconds": "keep_seconds",
}
OPTIONAL = tuple(f for f in FIELDS if f not in REQUIRED)
NAMES = {knob: f"'{field}'" for field, knob in FIELDS.items()}  # messages name the field
NAMES.update({"dtype": "--dtype", "weight_dtype": "--weight-dtype", "device": "--device"})
MAX_REPORTED = 30
MAX_JOBS_BYTES = 1 << 30  # 1 GiB: a million jobs of 1 KB; read whole, so a larger file is split

__all__ = ["MAX_SEED", "Job", "JobsError", "parse_jobs"]


class JobsError(HeartMuLaError):
    """The jobs file is unreadable or some of its lines are invalid (all of them are listed)."""


@dataclass(frozen=True)
class Job:
    id: str
    tags: str
    lyrics: str
    settings: SongSettings  # checked; continue_from resolved against the jobs file's folder
    line: int = 0
    fields: tuple = ()  # (field, value) as the line (or a command-line default) gave them

    @property
    def batch(self) -> int:
        return self.settings.batch_size

    def recorded(self) -> dict:
        """What, besides tags and lyrics, decides the output, by field name (kept in the manifest;
        the optional fields only when given, so manifests of earlier runs still match)."""
        s = self.settings
        out = {"seconds": s.seconds, "seed": s.seed, "temperature": s.temperature, "top_k": s.top_k,
               "cfg": s.cfg_scale, "decode_steps": s.decode_steps, "decode_guidance": s.decode_guidance,
               "decode_seed": s.decoder_seed, "batch": s.batch_size}
        given = dict(self.fields)
        out.update({k: given[k] for k in ("continue_from", "keep_seconds") if given.get(k) is not None})
        return out

    def output_stems(self) -> list[str]:
        """File name stems of the audio files: <id>, or <id>_0 .. <id>_{B-1} for a batch."""
        return [self.id] if self.batch == 1 else [f"{self.id}_{i}" for i in range(self.batch)]


def _type_problem(value, name: str) -> str | None:
    """What a JSON value lacks to be read as knob ``name`` (its range is the song path's)."""
    if FIELDS[name] == "continue_from":
        return None if isinstance(value, str) and value.strip() else \
            f"'{name}' must be the path of a codes file, got {json.dumps(value)[:40]}"
    whole = KNOBS[FIELDS[name]].whole
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"'{name}' must be a {'whole number' if whole else 'number'}, got {json.dumps(value)[:40]}"
    if whole and not isinstance(value, int):
        return f"'{name}' must be a whole number (write {int(value)} rather than {value})" \
            if float(value).is_integer() and abs(value) < 2**63 else f"'{name}' must be a whole number, got {value}"
    return None


def _value_problem(name: str, value) -> str | None:
    problem = _type_problem(value, name)
    if problem is None and FIELDS[name] in KNOBS:
        try:
            check(FIELDS[name], value, f"'{name}'")
        except HeartMuLaError as exc:
            return str(exc)
    return problem


def _id_problem(value) -> str | None:
    if not isinstance(value, str):
        return f"'id' must be a string, got {json.dumps(value)[:40]}"
    if not SAFE_ID.match(value) or value.endswith("."):
        return (f"'id' {json.dumps(value)} cannot be used as a file name: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit and not ending with '.'")
    if value.split(".")[0].lower() in WINDOWS_RESERVED:
        return f"'id' {json.dumps(value)} is a reserved file name on Windows; pick another"
    return None


def _text_problem(record: dict, name: str, folder: Path) -> str | None:
    value = record[name]
    if not isinstance(value, str):
        return f"'{name}' must be a string, got {json.dumps(value)[:40]}"
    try:
        text = text_or_file(value, name, base=folder)
    except HeartMuLaError as exc:
        return str(exc)
    if not text.strip():
        return f"'{name}' is empty"
    record[name] = text
    return None


def _problems(record: dict, folder: Path) -> list[str]:
    problems = [f"missing field '{k}'" if k not in record else f"'{k}' is null; give it a value"
                for k in REQUIRED if record.get(k) is None]
    unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        problems.append(f"unknown field(s) {', '.join(repr(k) for k in unknown)}; "
                        f"known: {', '.join(REQUIRED + OPTIONAL)}")
    if record.get("id") is not None:
        problems.append(_id_problem(record["id"]))
    for name in ("tags", "lyrics"):
        if record.get(name) is not None:
            problems.append(_text_problem(record, name, folder))
    problems += [_value_problem(name, record[name]) for name in FIELDS if record.get(name) is not None]
    return [p for p in problems if p]


def _settings(values: dict, folder: Path) -> SongSettings:
    """The line's song settings, checked; a song to continue is read (its lengths against keep_seconds)."""
    from ..song import read_start

    knobs = {FIELDS[k]: v for k, v in values.items() if k in FIELDS and v is not None}
    if "continue_from" in knobs:
        knobs["continue_from"] = str(folder / Path(knobs["continue_from"]).expanduser())
    settings = SongSettings(**knobs).checked(NAMES)
    read_start(settings, NAMES)
    return settings


def _check_record(record, defaults: dict, folder: Path) -> tuple[Job | None, list[str]]:
    """One parsed line -> (Job, []) or (None, problems)."""
    if not isinstance(record, dict):
        return None, [f"expected a JSON object {{\"id\": ..., \"tags\": ...}}, got {type(record).__name__}"]
    problems = _problems(record, folder)
    if problems:
        return None, problems
    values = {**defaults, **{k: v for k, v in record.items() if v is not None}}
    try:
        settings = _settings(values, folder)
    except HeartMuLaError as exc:
        return None, [str(exc)]
    given = tuple((k, values[k]) for k in FIELDS if k in values)
    return Job(values["id"], values["tags"], values["lyrics"], settings, fields=given), []


def json_problem(exc: BaseException) -> str:
    """Why ``json.loads`` refused a line, in words (Python's own limits included: nesting, and whole
    numbers of more than 4300 digits, which it refuses with a plain ValueError)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number too long to read (more than 4300 digits)"


def stem_owner(stem: str, by_id: dict[str, Job]) -> Job | None:
    """The job whose song ``stem`` (``<id>_<n>``, n below its batch) is, if any (``by_id``: jobs by
    lower-case id): found from the stem, never by listing a job's stems (a batch may be huge until
    memory is checked)."""
    base, _, index = stem.rpartition("_")
    job = by_id.get(base)
    if job is None or job.batch == 1 or not (index.isascii() and index.isdigit()) or str(int(index)) != index:
        return None
    return job if int(index) < job.batch else None


def _clashes(jobs: list[Job]) -> list[tuple[int, str]]:
    """Two jobs whose ids or output files would collide (case-insensitively, as on macOS/Windows).
    Stems are ``<id>`` and ``<id>_<n>``, so a song's name can only collide with another job's id."""
    by_id: dict[str, Job] = {}
    problems = []
    for job in jobs:
        first = by_id.setdefault(job.id.lower(), job)
        if first is not job:
            problems.append((job.line, f"duplicate id '{first.id}' (line {first.line})"))
    for job in jobs:
        owner = stem_owner(job.id.lower(), by_id)
        if owner is not None and by_id.get(job.id.lower()) is job:
            earlier, later = sorted((job, owner), key=lambda j: j.line)
            problems.append((later.line, f"output name '{job.id}' also made by '{earlier.id}' (line {earlier.line})"))
    return problems


def check_defaults(defaults: dict) -> dict:
    """The command line's defaults for optional fields (None: not given), in their ranges."""
    defaults = {k: v for k, v in (defaults or {}).items() if v is not None}
    bad = [_value_problem(k, v) for k, v in defaults.items()]
    if any(bad):
        raise JobsError("Bad default setting: " + "; ".join(b for b in bad if b))
    return defaults


def parse_jobs(path: str | Path, defaults: dict | None = None) -> list[Job]:
    """Read and check the whole jobs file; raise JobsError listing every bad line."""
    path = Path(path)
    defaults = check_defaults(defaults)
    lines = read_jobs_file(path).split("\n")  # only "\n" ends a line: JSON strings may hold U+2028, U+0085
    jobs, problems = [], []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            problems.append((number, f"not valid JSON ({json_problem(exc)})"))
            continue
        job, bad = _check_record(record, defaults, path.parent)
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


def read_jobs_file(path: Path) -> str:
    """The text of the jobs file, checked before it is opened: a regular file (a FIFO would block, a
    device never ends) of at most MAX_JOBS_BYTES (read whole)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise JobsError(f"Cannot read jobs file {path}: {exc.strerror}. Give the path of a JSONL jobs file.") from None
    if not stat.S_ISREG(st.st_mode):
        raise JobsError(f"Jobs file {path} is {file_kind(st.st_mode)}, not a file. Give the path of a JSONL jobs file.")
    if st.st_size > MAX_JOBS_BYTES:
        raise JobsError(f"Jobs file {path} is {st.st_size / 1e9:.1f} GB; a jobs file may hold at most "
                        f"{MAX_JOBS_BYTES >> 30} GB. Split it into several files (a rerun skips the jobs done).")
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise JobsError(f"Cannot read jobs file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise JobsError(f"Jobs file {path} is not UTF-8 text (byte {exc.start + 1}); save it as UTF-8.") from None


def describe_problems(path, problems: list[tuple[int, str]]) -> str:
    problems = sorted(problems)
    shown_lines = [f"  line {n}: {p}" for n, p in problems[:MAX_REPORTED]]
    if len(problems) > MAX_REPORTED:
        shown_lines.append(f"  ... and {len(problems) - MAX_REPORTED} more")
    return f"{path}: {len(problems)} problem(s); nothing was run:\n" + "\n".join(shown_lines)
