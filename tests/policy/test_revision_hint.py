"""The revision published beside an SQLite file: checks skip the revision query only when it is
safe, and every write that returned is announced to every process."""

from __future__ import annotations

import itertools
import shutil
import struct
import threading
import time
from pathlib import Path

import pytest

from authz.accounts import orgs
from authz.base.errors import StoreUnavailable
from authz.policy.facts import FactIndex
from authz.store.db import Store, make_engine
from authz.store.revision_hint import RevisionHint


@pytest.fixture
def sqlite_file(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "authz.db"
    shutil.copy(sqlite_template, path)
    return path


def _store(path: Path) -> Store:
    return Store(make_engine(f"sqlite:///{path}"))


def test_a_write_in_one_process_is_announced_to_every_other(sqlite_file: Path) -> None:
    writer, reader = _store(sqlite_file), _store(sqlite_file)
    facts = FactIndex.load(reader)
    assert reader.published_revision() in (0, facts.revision)
    org = orgs.create_org(writer, "test", "Practice", [])
    published = reader.published_revision()
    assert published is not None and published == writer.revision() > facts.revision
    facts.ensure_fresh(reader)
    assert facts.revision == published and org["id"] in facts.orgs
    writer.close()
    reader.close()


def test_nothing_new_means_no_query(sqlite_file: Path) -> None:
    store = _store(sqlite_file)
    orgs.create_org(store, "test", "Practice", [])
    facts = FactIndex.load(store)
    store.engine.dispose()
    # The same file through an engine that cannot connect: only the hint is read.
    hint_only = _store(sqlite_file)
    hint_only.engine = make_engine("sqlite:////nonexistent/dir/x.db")
    assert facts.ensure_fresh(hint_only) == facts.revision
    # Once the hint announces a newer revision, the check must read the store: here it cannot.
    other = _store(sqlite_file)
    orgs.create_org(other, "test", "Other", [])
    with pytest.raises(StoreUnavailable):
        facts.ensure_fresh(hint_only)
    for s in (store, hint_only, other):
        s.close()


def test_the_published_revision_never_goes_back(sqlite_file: Path) -> None:
    hint = RevisionHint(sqlite_file)
    hint.publish(7)
    hint.publish(5)
    assert hint.read() == 7
    assert RevisionHint(sqlite_file).read() == 7
    hint.close()


def test_a_torn_or_foreign_value_is_never_trusted(sqlite_file: Path) -> None:
    hint = RevisionHint(sqlite_file)
    hint.publish(9)
    raw = bytearray(Path(f"{sqlite_file}-revision").read_bytes())
    struct.pack_into("<q", raw, 24, 10)  # the revision changed, its complement not yet
    Path(f"{sqlite_file}-revision").write_bytes(bytes(raw))
    assert hint.read() is None
    hint.close()
    # A hint left by another database file at the same path says nothing about this one.
    replaced = sqlite_file.with_suffix(".new")
    shutil.copy(sqlite_file, replaced)
    replaced.replace(sqlite_file)
    fresh = RevisionHint(sqlite_file)
    assert fresh.read() == 0
    fresh.close()


def test_only_sqlite_files_have_a_hint() -> None:
    assert RevisionHint.database_file("sqlite:///var/authz.db") == Path("var/authz.db")
    assert RevisionHint.database_file("sqlite:////abs/authz.db") == Path("/abs/authz.db")
    assert RevisionHint.database_file("sqlite://") is None
    assert RevisionHint.database_file("sqlite:///:memory:") is None
    assert RevisionHint.database_file("postgresql://u@h/db") is None


def test_a_process_that_cannot_announce_does_not_write(sqlite_file: Path) -> None:
    Path(f"{sqlite_file}-revision").mkdir()  # not a file: the hint cannot be opened
    store = _store(sqlite_file)
    with pytest.raises(StoreUnavailable, match="announce"):
        orgs.create_org(store, "test", "Practice", [])
    assert store.published_revision() is None
    store.close()


def test_concurrent_publishers_in_one_process_never_lower_it(
    sqlite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers finish out of order; the published revision must end at the highest."""
    hint = RevisionHint(sqlite_file)
    write = hint._write

    def slow_write(revision: int) -> None:
        time.sleep(0.0002)  # widen the gap between reading the maximum and writing it
        write(revision)

    monkeypatch.setattr(hint, "_write", slow_write)
    barrier = threading.Barrier(8)

    def publish(start: int) -> None:
        barrier.wait()
        for revision in range(start, 400, 8):
            hint.publish(revision)

    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # a reader elsewhere: the value it sees must never go back
        while not done.is_set():
            value = hint.read()
            if value is not None:
                seen.append(value)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert hint.read() == 399
    assert all(a <= b for a, b in itertools.pairwise(seen)), "the revision went back"
    hint.close()
