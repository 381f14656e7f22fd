"""The rule cache: a loaded rule set kept on disk, so the next run starts in milliseconds.

Parsing thousands of Sigma rules (YAML, then pySigma, then field mappings, then compiling)
takes seconds; an analyst scanning one small file waits for it every time. An entry stores
the outcome of a load (the rules, correlations, errors and unsupported rules) as JSON: the
rules' metadata, their prefilter clauses and their conditions as descriptions
(``detectors/conditions.py``), from which matchers are built again on first use. Nothing
executable is stored, and loading an entry imports neither pySigma nor PyYAML.

Trust:

* An entry is found by a key, a BLAKE2b digest of everything the result depends on: the
  cache format, socpipe's version, pySigma's, the source of the modules that turn rules into
  descriptions, the field mappings (names and contents), the rules profile (path and
  contents), every rule file (path, place in its rule set, contents) and which rules have
  tests beside them (a profile keeps those). Any change is a different key; old entries are
  evicted.
* Every entry carries an HMAC-SHA256 over its key and contents, keyed by a random secret kept
  in the cache folder, readable by its owner alone. An entry whose MAC does not verify (a
  damaged disk block, a partial write, an edit) or whose contents do not read back as a rule
  set is never used: it is reported and rebuilt from the rule files. The cache is not used
  at all when the folder or the secret can be written or read by others than the user
  running socpipe (the rules are loaded from their files, with a warning).
* Entries are written to a temporary file and renamed, so concurrent runs see a whole entry
  or none.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import hmac
import logging
import math
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from socpipe.core.errors import SocpipeError
from socpipe.core.resources import field_mappings_dir
from socpipe.detectors.conditions import Clauses, DescriptionError, check_condition
from socpipe.detectors.correlation_rules import CorrelationRule, CountCondition
from socpipe.detectors.errors import RuleError, UnsupportedRuleError
from socpipe.detectors.logsource import RuleLogSource
from socpipe.detectors.rules import (
    CompiledRule,
    RuleLoadReport,
    load_field_mappings,
    load_rules,
    mapping_files,
    rule_files,
    test_files,
)
from socpipe.detectors.values import AtomKind

log = logging.getLogger(__name__)

#: Changes whenever the stored form changes: entries of another format are never read.
CACHE_FORMAT: Final = 1
#: An entry larger than this is not read (the full SigmaHQ set takes about 3 MB).
MAX_ENTRY_BYTES: Final = 256 << 20
#: Entries kept; the least recently used beyond this are deleted.
MAX_ENTRIES: Final = 16
SECRET_BYTES: Final = 32
ENTRY_SUFFIX: Final = ".rules"
_MAGIC: Final = b"socpipe-rule-cache"
#: Modules whose code decides what a rule file becomes: their source is part of the key, so
#: an edited checkout never reads entries written by other code under the same version.
_DESCRIBING_MODULES: Final = (
    "compiler.py",
    "conditions.py",
    "correlation_rules.py",
    "errors.py",
    "logsource.py",
    "regex.py",
    "rule_cache.py",
    "rule_schema.py",
    "rules.py",
    "values.py",
)
_KINDS: Final = {kind.value: kind for kind in AtomKind}


class RuleCacheError(SocpipeError):
    """The cache folder cannot be used safely (permissions, ownership)."""


def default_cache_folder() -> Path:
    """``$SOCPIPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/socpipe``, else ``~/.cache/socpipe``;
    rule entries are kept in its ``rules`` folder."""
    if configured := os.environ.get("SOCPIPE_CACHE_DIR"):
        return Path(configured) / "rules"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "socpipe" / "rules"


@dataclass(frozen=True)
class EntryInfo:
    """What ``socpipe rules cache info`` shows of one entry."""

    path: Path
    size: int
    created: str
    rule_paths: tuple[str, ...]
    rules: int
    correlations: int
    problems: int
    valid: bool


class RuleCache:
    """Rule sets stored in ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else default_cache_folder()

    def load(
        self,
        paths: Sequence[Path],
        mappings_folder: Path | None = None,
        profile_path: Path | None = None,
    ) -> RuleLoadReport:
        """The rules below ``paths`` as ``load_rules`` loads them, with the field mappings of
        ``mappings_folder`` (default the shipped ones) and the rules profile of
        ``profile_path`` (None: no profile): from the cache when an entry for exactly these
        inputs verifies, else from the files, then stored."""
        mappings_folder = mappings_folder or field_mappings_dir()
        try:
            key = self._key(paths, mappings_folder, profile_path)
            secret = self._secret()
        except (OSError, RuleCacheError) as error:
            log.warning("rule cache not used: %s", error)
            return _load(paths, mappings_folder, profile_path)
        entry = self.folder / f"{key.hex()[:40]}{ENTRY_SUFFIX}"
        if entry.exists():
            try:
                with _collector_paused():
                    report = decode_report(_read_entry(entry, key, secret))
            except (OSError, ValueError, TypeError, KeyError) as error:
                log.warning("rule cache entry %s unusable, rebuilding it: %s", entry, error)
            else:
                report.cached = True
                _touch(entry)
                return report
        report = _load(paths, mappings_folder, profile_path)
        try:
            self._store(entry, key, secret, paths, report)
        except OSError as error:
            log.warning("rule cache entry %s not written: %s", entry, error)
        return report

    def _key(
        self, paths: Sequence[Path], mappings_folder: Path, profile_path: Path | None
    ) -> bytes:
        """The digest of every input of a load (module docstring); raises OSError when a file
        cannot be read (the load from the files then reports it)."""
        digest = hashlib.blake2b(digest_size=32)

        def add(*items: str | bytes) -> None:
            for item in items:
                data = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
                # Length-prefixed: no two different sequences of inputs hash alike.
                digest.update(len(data).to_bytes(8, "little"))
                digest.update(data)

        add(_MAGIC, str(CACHE_FORMAT), *_versions())
        code_folder = Path(__file__).parent
        for name in _DESCRIBING_MODULES:
            add(name, _read_or_absent(code_folder / name))
        files = mapping_files(mappings_folder)
        add("mappings", str(len(files)))
        for path in files:
            add(path.name, path.read_bytes())
        if profile_path is None:
            add("no profile")
        else:
            add("profile", str(profile_path), profile_path.read_bytes())
        files_of_rules = rule_files(paths)
        add("rules", str(len(files_of_rules)))
        for path, ruleset in files_of_rules:
            add(str(path), ruleset, path.read_bytes())
        # A profile never switches off a rule with tests beside it: which rules have them is
        # an input too.
        tests = [str(path) for path in test_files(paths)]
        add("tests", str(len(tests)), *tests)
        return digest.digest()

    def _secret(self) -> bytes:
        """The MAC key, created on first use; refused when others could read or change it."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_private(self.folder, directory=True)
        path = self.folder / "secret"
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(SECRET_BYTES))
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as handle:
            _check_private(path, directory=False, status=os.fstat(handle.fileno()))
            secret = handle.read(SECRET_BYTES + 1)
        if len(secret) != SECRET_BYTES:
            raise RuleCacheError(f"{path}: not a rule cache secret (delete it to start afresh)")
        return secret

    def _store(
        self, entry: Path, key: bytes, secret: bytes, paths: Sequence[Path], report: RuleLoadReport
    ) -> None:
        import orjson

        body = orjson.dumps(
            {
                "format": CACHE_FORMAT,
                "key": key.hex(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "rule_paths": [str(path) for path in paths],
                "report": encode_report(report),
            }
        )
        mac = hmac.new(secret, key + body, hashlib.sha256).hexdigest().encode()
        descriptor, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(b"%s %d %s\n" % (_MAGIC, CACHE_FORMAT, mac))
                handle.write(body)
            os.replace(temporary, entry)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._evict()

    def _evict(self) -> None:
        entries = sorted(self._entries(), key=lambda path: path.stat().st_mtime, reverse=True)
        for stale in entries[MAX_ENTRIES:]:
            stale.unlink(missing_ok=True)

    def _entries(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob(f"*{ENTRY_SUFFIX}"))

    def info(self) -> list[EntryInfo]:
        """Every entry, checked as a load would check it."""
        infos = []
        try:
            secret: bytes | None = self._secret() if self.folder.is_dir() else None
        except (OSError, RuleCacheError):
            secret = None
        for path in self._entries():
            size = path.stat().st_size
            try:
                if secret is None:
                    raise ValueError("no usable secret")
                contents = _read_entry(path, None, secret)
                counts = contents["report"]
                infos.append(
                    EntryInfo(
                        path,
                        size,
                        str(contents["created"]),
                        tuple(map(str, contents["rule_paths"])),
                        len(counts["rules"]),
                        len(counts["correlations"]),
                        len(counts["errors"]) + len(counts["unsupported"]),
                        True,
                    )
                )
            except (OSError, ValueError, TypeError, KeyError):
                infos.append(EntryInfo(path, size, "", (), 0, 0, 0, False))
        return infos

    def clear(self) -> int:
        """Delete every entry (the secret stays); the number deleted."""
        entries = self._entries()
        for path in entries:
            path.unlink(missing_ok=True)
        for leftover in self.folder.glob("*.tmp") if self.folder.is_dir() else ():
            leftover.unlink(missing_ok=True)
        return len(entries)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while an entry is decoded: it allocates a few hundred thousand
    objects that all stay alive, and the collections their allocation triggers (walking every
    live object, again and again) took half to two thirds of the decoding time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _load(
    paths: Sequence[Path], mappings_folder: Path, profile_path: Path | None
) -> RuleLoadReport:
    from socpipe.detectors.profile import load_profile

    profile = load_profile(profile_path) if profile_path is not None else None
    return load_rules(paths, load_field_mappings(mappings_folder), profile)


def _versions() -> tuple[str, str]:
    from importlib import metadata

    found = []
    for name in ("socpipe", "pySigma"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return found[0], found[1]


def _read_or_absent(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b"(absent)"


def _check_private(path: Path, directory: bool, status: os.stat_result | None = None) -> None:
    status = status or os.lstat(path)
    kind_ok = stat.S_ISDIR(status.st_mode) if directory else stat.S_ISREG(status.st_mode)
    if not kind_ok:
        raise RuleCacheError(f"{path}: not a {'folder' if directory else 'regular file'}")
    if hasattr(os, "geteuid") and status.st_uid != os.geteuid():
        raise RuleCacheError(f"{path}: owned by another user")
    if status.st_mode & (0o077 if not directory else 0o022):
        raise RuleCacheError(
            f"{path}: {'writable' if directory else 'readable or writable'} by other users"
            f" (mode {stat.S_IMODE(status.st_mode):o})"
        )


def _touch(entry: Path) -> None:
    """Mark an entry used, for eviction (least recently used goes first)."""
    with contextlib.suppress(OSError):
        os.utime(entry)


def _read_entry(entry: Path, key: bytes | None, secret: bytes) -> dict[str, Any]:
    """An entry's contents once its MAC verified (and its key, when given, matched)."""
    import orjson

    with entry.open("rb") as handle:
        data = handle.read(MAX_ENTRY_BYTES + 1)
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError(f"larger than {MAX_ENTRY_BYTES} bytes")
    header, _, body = data.partition(b"\n")
    parts = header.split(b" ")
    if len(parts) != 3 or parts[0] != _MAGIC or parts[1] != str(CACHE_FORMAT).encode():
        raise ValueError("not a rule cache entry of this version")
    try:
        contents = orjson.loads(body) if key is None else None
    except orjson.JSONDecodeError as error:
        raise ValueError(f"damaged: {error}") from None
    entry_key = key if key is not None else bytes.fromhex(str(contents["key"]))  # type: ignore[index]
    expected = hmac.new(secret, entry_key + body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, parts[2]):
        raise ValueError("its MAC does not verify (damaged or changed)")
    if contents is None:
        contents = orjson.loads(body)
    if not isinstance(contents, dict) or contents.get("format") != CACHE_FORMAT:
        raise ValueError("not a rule cache entry of this version")
    if key is not None and contents.get("key") != key.hex():
        raise ValueError("written for other rule files")
    return contents


# The stored form. Plain JSON types only; decoding checks every type it relies on, so an
# entry that verified but was written by a bug reads as an error, not as a wrong rule.


def encode_report(report: RuleLoadReport) -> dict[str, Any]:
    return {
        "files": report.files,
        "profile": [report.profile_name, report.profile_source],
        "rules": [_encode_rule(rule) for rule in report.rules],
        "switched_off": [[_encode_rule(rule), reason] for rule, reason in report.switched_off],
        "correlations": [_encode_correlation(rule) for rule in report.correlations],
        "errors": [_encode_error(error) for error in report.errors],
        "unsupported": [_encode_error(error) for error in report.unsupported],
    }


def decode_report(contents: dict[str, Any]) -> RuleLoadReport:
    data = contents["report"]
    profile_name, profile_source = (_text(part) for part in _list(data["profile"], 2))
    try:
        return RuleLoadReport(
            rules=[_decode_rule(item) for item in _list(data["rules"])],
            switched_off=[
                (_decode_rule(rule), _text(reason))
                for rule, reason in (_list(item, 2) for item in _list(data["switched_off"]))
            ],
            profile_name=profile_name,
            profile_source=profile_source,
            correlations=[_decode_correlation(item) for item in _list(data["correlations"])],
            errors=[RuleError(*_decode_error(item)) for item in _list(data["errors"])],
            unsupported=[
                UnsupportedRuleError(*_decode_error(item)) for item in _list(data["unsupported"])
            ],
            files=_int(data["files"]),
        )
    except (DescriptionError, RecursionError) as error:
        raise ValueError(f"{type(error).__name__}: {error}") from None


_RULE_TEXT: Final = (
    "id",
    "title",
    "level",
    "source",
    "description",
    "author",
    "name",
    "ruleset",
    "status",
)
_RULE_LISTS: Final = ("tags", "references", "falsepositives")


def _encode_rule(rule: CompiledRule) -> dict[str, Any]:
    encoded: dict[str, Any] = {name: getattr(rule, name) for name in _RULE_TEXT + _RULE_LISTS}
    encoded["logsource"] = [
        rule.logsource.product,
        rule.logsource.category,
        rule.logsource.service,
    ]
    encoded["prefilter"] = [
        [[field, text, kind.value] for field, text, kind in sorted(clause)]
        for clause in rule.prefilter
    ]
    encoded["condition"] = rule.condition
    return encoded


def _decode_rule(item: dict[str, Any]) -> CompiledRule:
    product, category, service = (_optional_text(part) for part in _list(item["logsource"], 3))
    condition = item["condition"]
    check_condition(condition)
    return CompiledRule(
        id=_text(item["id"]),
        title=_text(item["title"]),
        level=_text(item["level"]),
        tags=_texts(item["tags"]),
        logsource=RuleLogSource(product, category, service),
        prefilter=_decode_clauses(item["prefilter"]),
        source=_text(item["source"]),
        condition=condition,
        description=_text(item["description"]),
        author=_text(item["author"]),
        references=_texts(item["references"]),
        falsepositives=_texts(item["falsepositives"]),
        name=_text(item["name"]),
        ruleset=_text(item["ruleset"]),
        status=_text(item["status"]),
    )


def _decode_clauses(data: Any) -> Clauses:
    clauses = []
    for clause in _list(data):
        atoms = []
        for atom in _list(clause):
            field, text, kind = _list(atom, 3)
            atoms.append((_text(field), _text(text), _KINDS[_text(kind)]))
        if not atoms:
            raise ValueError("an empty prefilter clause")
        clauses.append(frozenset(atoms))
    return tuple(clauses)


_CORRELATION_TEXT: Final = (
    "id",
    "name",
    "title",
    "level",
    "source",
    "type",
    "description",
    "author",
    "ruleset",
)
_CORRELATION_LISTS: Final = ("tags", "rule_ids", "group_by", "references", "falsepositives")


def _encode_correlation(rule: CorrelationRule) -> dict[str, Any]:
    encoded: dict[str, Any] = {
        name: getattr(rule, name) for name in _CORRELATION_TEXT + _CORRELATION_LISTS
    }
    condition = rule.condition
    encoded.update(
        timespan=rule.timespan,
        aliases={alias: dict(fields) for alias, fields in rule.aliases.items()},
        value_field=rule.value_field,
        generate=rule.generate,
        # JSON has no infinity: an open bound is null.
        condition={
            "low": None if condition.low == -math.inf else condition.low,
            "low_inclusive": condition.low_inclusive,
            "high": None if condition.high == math.inf else condition.high,
            "high_inclusive": condition.high_inclusive,
            "excluded": list(condition.excluded),
        },
    )
    return encoded


def _decode_correlation(item: dict[str, Any]) -> CorrelationRule:
    condition = _dict(item["condition"])
    low, high = condition["low"], condition["high"]
    aliases = {
        _text(alias): {_text(rule): _text(field) for rule, field in _dict(fields).items()}
        for alias, fields in _dict(item["aliases"]).items()
    }
    return CorrelationRule(
        id=_text(item["id"]),
        name=_text(item["name"]),
        title=_text(item["title"]),
        level=_text(item["level"]),
        tags=_texts(item["tags"]),
        source=_text(item["source"]),
        type=_text(item["type"]),
        rule_ids=_texts(item["rule_ids"]),
        timespan=float(_number(item["timespan"])),
        group_by=_texts(item["group_by"]),
        aliases=aliases,
        condition=CountCondition(
            low=-math.inf if low is None else _number(low),
            low_inclusive=_bool(condition["low_inclusive"]),
            high=math.inf if high is None else _number(high),
            high_inclusive=_bool(condition["high_inclusive"]),
            excluded=tuple(_number(value) for value in _list(condition["excluded"])),
        ),
        value_field=_optional_text(item["value_field"]),
        generate=_bool(item["generate"]),
        description=_text(item["description"]),
        author=_text(item["author"]),
        references=_texts(item["references"]),
        falsepositives=_texts(item["falsepositives"]),
        ruleset=_text(item["ruleset"]),
    )


def _encode_error(error: RuleError) -> list[Any]:
    return [error.source, error.reason, error.line]


def _decode_error(item: Any) -> tuple[str, str, int | None]:
    """The source, reason and line of a stored rule problem."""
    source, reason, line = _list(item, 3)
    return _text(source), _text(reason), None if line is None else _int(line)


def _text(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, found {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    """A number as stored: an int stays an int (as a freshly loaded rule has it)."""
    if type(value) not in (int, float):
        raise TypeError(f"expected a number, found {type(value).__name__}")
    return value  # type: ignore[no-any-return]


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected true or false, found {type(value).__name__}")
    return bool(value)


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_text(text) for text in _list(value))


def _list(value: Any, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        raise TypeError(f"expected a list{f' of {length}' if length else ''}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise TypeError("expected a mapping")
    return value
