"""A write whose connection dies before its COMMIT is run once more; one whose COMMIT
fails is not, and is answered 201 only if the writer holds it after all
(app/hastack_app/writer.py `in_write_transaction`, `committed_after_all`).

The primary shutting down under a transaction (a Patroni switchover) is played by
pg_terminate_backend on the app's backend while it waits at a chosen point: in the
middle of the transaction, or inside COMMIT before the commit record (a deferred
constraint trigger runs there), each on an advisory lock the test holds; or after it,
waiting for a synchronous standby that never answers ("committed locally")."""

from __future__ import annotations

import threading

import httpx
import psycopg
import pytest

from loopback.app import database_url
from loopback.ports import wait_until

pytestmark = pytest.mark.integration

MID_TRANSACTION_LOCK, IN_COMMIT_LOCK = 7101, 7102
DEADLINE_S = 15


def hold_notifications_at(conn: psycopg.Connection, lock: int, *, in_commit: bool) -> None:
    """Every insert into notifications waits for advisory lock `lock`: mid-transaction, or in COMMIT."""
    conn.execute(f"""CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN PERFORM pg_advisory_xact_lock({lock}); RETURN NEW; END $$""")
    if in_commit:
        conn.execute("""CREATE CONSTRAINT TRIGGER wait_for_test AFTER INSERT ON notifications
                        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_for_test()""")
    else:
        conn.execute("CREATE TRIGGER wait_for_test BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION wait_for_test()")


def waiting_backends(conn: psycopg.Connection) -> list[int]:
    """The app writer backends blocked on the test's advisory lock."""
    return [row[0] for row in conn.execute(
        """SELECT pid FROM pg_stat_activity
           WHERE application_name LIKE 'hastack:writer:%' AND wait_event_type = 'Lock' AND wait_event = 'advisory'""")]


def post_in_background(url: str) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(
        httpx.post(f"{url}/notes", json={"body": "charge the card once"}, timeout=DEADLINE_S)), daemon=True)
    thread.start()
    return thread, answers


def notes_with_the_body(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM notes WHERE body = 'charge the card once'").fetchone()[0]


@pytest.fixture
def app_and_test_connection(start_apps, fresh_database):
    (app,) = start_apps(1, fresh_database, extra_env={"WRITER_WAIT_S": "3"})
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        yield app, conn


def cut_off_a_post(app, conn: psycopg.Connection, lock: int, *, in_commit: bool) -> tuple[threading.Thread, list[httpx.Response], int]:
    """POST a note while the test holds `lock`, so the app's write waits mid-transaction or
    in COMMIT; then end that backend as a primary's shutdown would. Returns the client's
    thread, its answers (once joined) and the ended backend's pid. `lock` stays held."""
    hold_notifications_at(conn, lock, in_commit=in_commit)
    conn.execute("SELECT pg_advisory_lock(%s)", (lock,))
    thread, answers = post_in_background(app.url)
    where = "in COMMIT" if in_commit else "mid-transaction"
    wait_until(lambda: len(waiting_backends(conn)) == 1, DEADLINE_S, f"the write waiting {where}", 0.05)
    (backend,) = waiting_backends(conn)
    conn.execute("SELECT pg_terminate_backend(%s)", (backend,))
    return thread, answers, backend


def test_a_write_cut_off_before_commit_runs_again_and_is_stored_once(app_and_test_connection):
    app, conn = app_and_test_connection
    thread, answers, first = cut_off_a_post(app, conn, MID_TRANSACTION_LOCK, in_commit=False)
    # The app runs the transaction again, on a new connection, and waits at the same point.
    wait_until(lambda: [pid for pid in waiting_backends(conn) if pid != first] != [], DEADLINE_S, "the write run again", 0.05)
    conn.execute("SELECT pg_advisory_unlock(%s)", (MID_TRANSACTION_LOCK,))
    thread.join(DEADLINE_S)
    assert [answer.status_code for answer in answers] == [201]
    assert notes_with_the_body(conn) == 1


def test_a_write_cut_off_in_commit_is_not_run_again(app_and_test_connection):
    app, conn = app_and_test_connection
    thread, answers, _ = cut_off_a_post(app, conn, IN_COMMIT_LOCK, in_commit=True)
    thread.join(DEADLINE_S)
    conn.execute("SELECT pg_advisory_unlock(%s)", (IN_COMMIT_LOCK,))
    # Whether a COMMIT that lost its connection happened cannot be known: the client gets the
    # error to retry with its own key, and the app never ran the write a second time.
    assert [answer.status_code for answer in answers] == [503]
    assert notes_with_the_body(conn) == 0
    assert waiting_backends(conn) == []


def backends_waiting_for_the_standby(conn: psycopg.Connection) -> list[int]:
    """The app writer backends whose COMMIT waits for the synchronous standby."""
    return [row[0] for row in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'hastack:writer:%' AND wait_event = 'SyncRep'")]


def set_synchronous_standby(conn: psycopg.Connection, names: str | None) -> None:
    conn.execute("ALTER SYSTEM RESET synchronous_standby_names" if names is None else
                 f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
    conn.execute("SELECT pg_reload_conf()")
    wait_until(lambda: conn.execute("SHOW synchronous_standby_names").fetchone()[0] == (names or ""), DEADLINE_S,
               "the server reloaded synchronous_standby_names", 0.05)


def test_a_write_committed_locally_when_its_commit_was_cut_off_is_answered_201_once(start_apps, pg_disposable):
    with pg_disposable.connect() as conn:
        conn.execute("CREATE DATABASE committed_locally")
        # The test servers run synchronous_commit=off, which never waits for a standby.
        conn.execute("ALTER DATABASE committed_locally SET synchronous_commit = on")
    url = database_url(pg_disposable.port, "committed_locally")
    (app,) = start_apps(1, url, extra_env={"WRITER_WAIT_S": "3"})
    with psycopg.connect(url, autocommit=True) as conn:
        # A standby that never confirms: every COMMIT waits after its commit record is flushed.
        set_synchronous_standby(conn, "nobody")
        thread, answers = post_in_background(app.url)
        wait_until(lambda: len(backends_waiting_for_the_standby(conn)) == 1, DEADLINE_S, "the COMMIT waiting for the standby", 0.05)
        (first,) = backends_waiting_for_the_standby(conn)
        conn.execute("SELECT pg_terminate_backend(%s)", (first,))
        # The app finds the note on the writer; its check (a row lock, WAL-logged) commits and
        # waits for the standby too, which is what makes the note as durable as an acknowledged write.
        wait_until(lambda: [pid for pid in backends_waiting_for_the_standby(conn) if pid != first] != [], DEADLINE_S,
                   "the app's check waiting for the standby", 0.05)
        assert answers == [], "no answer before the standby has confirmed"
        set_synchronous_standby(conn, None)
        thread.join(DEADLINE_S)
        assert [answer.status_code for answer in answers] == [201]
        assert notes_with_the_body(conn) == 1
        (stored_id,) = conn.execute("SELECT id::text FROM notes WHERE body = 'charge the card once'").fetchone()
        assert answers[0].json()["id"] == stored_id
