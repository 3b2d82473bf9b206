"""The IMAP poller against a real Dovecot and a real Kafka broker."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from prometheus_client import REGISTRY

from connectors.email_state import ImapStateStore
from connectors.imap_poller import ImapConfig, ImapConfigError, ImapPoller, load_imap_config
from ingest.bus import KafkaPublisher, read_topic
from ingest.errors import BrokerUnavailableError
from schemas.blobs import FilesystemBlobStore
from schemas.inbound import InboundMessage
from tests.conftest import ROOT, KafkaHandle
from tests.dovecot import PASSWORD, DovecotServer, dovecot_available

pytestmark = [
    pytest.mark.imap,
    pytest.mark.kafka,
    pytest.mark.skipif(dovecot_available() is not None, reason=str(dovecot_available())),
]

PROCESSED = "Frontdoor/Processed"


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer(users=["waste", "housing", "parking"]) as server:
        yield server


def email(subject: str, body: str = "Please help.\n", message_id: str | None = None,
          to: str = "waste@council.example.gov.uk") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Resident <resident@example.org>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid("t", "example.org")
    msg.set_content(body)
    return msg.as_bytes()


def config(server: DovecotServer, users: list[str], **overrides: Any) -> ImapConfig:
    boxes = [server.mailbox_config(u, department=u, **overrides.pop("box", {})) for u in users]
    return ImapConfig.model_validate({"poll_seconds": 1, "mailboxes": boxes, **overrides})


def messages(kafka: KafkaHandle, topic: str, expect: int | None = None) -> list[InboundMessage]:
    records = read_topic(kafka.bootstrap, topic, expect=expect, timeout_s=5 if expect is None else 15)
    return [InboundMessage.model_validate_json(r.value or b"") for r in records]


class Harness:
    def __init__(self, cfg: ImapConfig, kafka: KafkaHandle, topic: str, tmp: Path) -> None:
        self.blobs = FilesystemBlobStore(tmp / "blobs")
        self.state_path = tmp / "imap-state.sqlite"
        self.cfg = cfg
        self.publisher = KafkaPublisher(kafka.bootstrap, self.blobs, topic=topic)
        self.pollers: list[ImapPoller] = []

    def poller(self) -> ImapPoller:
        poller = ImapPoller(self.cfg, self.publisher, self.blobs, ImapStateStore(self.state_path))
        self.pollers.append(poller)
        return poller

    def close(self) -> None:
        for poller in self.pollers:
            poller.close()
            poller.state.close()
        self.publisher.close()


@pytest.fixture
def harness_factory(kafka: KafkaHandle, fresh_topic: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(cfg: ImapConfig) -> Harness:
        made.append(Harness(cfg, kafka, fresh_topic, tmp_path))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


def mails(user: str, outcome: str) -> float:
    """'frontdoor imap's count of mails taken from this user's mailbox with this outcome."""
    labels = {"mailbox": f"{user}@council.example.gov.uk", "outcome": outcome}
    return REGISTRY.get_sample_value("frontdoor_imap_mails_total", labels) or 0.0


def connections_lost(user: str) -> float:
    labels = {"mailbox": f"{user}@council.example.gov.uk"}
    return REGISTRY.get_sample_value("frontdoor_imap_connection_errors_total", labels) or 0.0


def test_new_mail_in_several_mailboxes_is_streamed_once_and_moved(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str) -> None:
    for i in range(3):
        dovecot.append("waste", email(f"Missed bin {i}"))
    dovecot.append("housing", email("Damp in my flat"))
    shared = email("Abandoned car blocking my drive", message_id="<shared-1@example.org>",
                   to="waste@council.example.gov.uk, housing@council.example.gov.uk, parking@c.example")
    for user in ("waste", "housing", "parking"):
        dovecot.append(user, shared)

    harness = harness_factory(config(dovecot, ["waste", "housing", "parking"]))
    poller = harness.poller()
    before = {box: mails(box, "published") for box in ("waste", "housing", "parking")}
    assert poller.poll_once() == 5
    assert poller.poll_once() == 0  # nothing new: nothing read twice

    got = messages(kafka, fresh_topic)
    assert len(got) == 5
    assert len({m.dedupe_key for m in got}) == 5
    copy = next(m for m in got if m.dedupe_key.startswith("email:<shared-1@example.org>#"))
    assert copy.source.mailboxes == ["waste@council.example.gov.uk", "housing@council.example.gov.uk",
                                     "parking@council.example.gov.uk"]
    assert copy.source.department_hint is None  # three departments: no single hint
    damp = next(m for m in got if m.subject == "Damp in my flat")
    assert damp.source.department_hint == "housing"
    assert damp.raw is not None and harness.blobs.exists(damp.raw)
    for user, moved in (("waste", 4), ("housing", 2), ("parking", 1)):
        assert dovecot.count(user) == 0
        assert dovecot.count(user, PROCESSED) == moved
        assert mails(user, "published") - before[user] == moved  # each copy counted in its mailbox


def test_idle_wakes_the_poller_when_mail_arrives(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str) -> None:
    cfg = ImapConfig.model_validate({"poll_seconds": 120, "idle_seconds": 120,
                                     "mailboxes": [dovecot.mailbox_config("waste")]})
    poller = harness_factory(cfg).poller()
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        time.sleep(1.5)  # first (empty) cycle done, now in IDLE
        started = time.monotonic()
        dovecot.append("waste", email("Fly-tipping behind the shops"))
        got = messages(kafka, fresh_topic, expect=1)
        latency = time.monotonic() - started
    finally:
        poller.stop()
        thread.join(timeout=10)
    assert [m.subject for m in got] == ["Fly-tipping behind the shops"]
    assert latency < 10, "IDLE should deliver well before the 120 s poll interval"
    assert not thread.is_alive()


@pytest.mark.parametrize("after", ["move", "flag"])
def test_restart_mid_mailbox_resumes_with_nothing_lost_or_doubled(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str,
        after: str) -> None:
    for i in range(5):
        dovecot.append("waste", email(f"Pothole number {i}"))
    harness = harness_factory(config(dovecot, ["waste"], batch=2, box={"after": after}))
    first = harness.poller()
    assert first.poll_once() == 2
    first.close()  # the process stops here, mid-mailbox

    second = harness.poller()
    while second.poll_once():
        pass
    got = messages(kafka, fresh_topic)
    assert sorted(m.subject or "" for m in got) == [f"Pothole number {i}" for i in range(5)]
    if after == "move":
        assert dovecot.count("waste") == 0 and dovecot.count("waste", PROCESSED) == 5
    else:
        assert dovecot.count("waste") == 5  # flagged in place
        client = dovecot.client("waste")
        client.select_folder("INBOX", readonly=True)
        assert len(client.search(["KEYWORD", "$FrontdoorIngested"])) == 5
        client.logout()


def test_killed_between_kafka_ack_and_imap_move_loses_nothing_and_doubles_nothing_downstream(
        dovecot: DovecotServer, kafka: KafkaHandle, fresh_topic: str, tmp_path: Path) -> None:
    for i in range(4):
        dovecot.append("waste", email(f"Graffiti on wall {i}"))
    cfg_path = tmp_path / "imap.json"
    cfg_path.write_text(json.dumps({"mailboxes": [dovecot.mailbox_config("waste")]}))
    argv = [sys.executable, "-m", "tests.connectors.imap_crash_worker", str(cfg_path),
            str(tmp_path / "state.sqlite"), kafka.bootstrap, fresh_topic, str(tmp_path / "blobs")]

    killed = subprocess.run([*argv, "2"], cwd=ROOT, capture_output=True, timeout=120)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert len(messages(kafka, fresh_topic)) == 2  # two acknowledged by Kafka ...
    assert dovecot.count("waste") == 3  # ... but only the first was moved

    resumed = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]

    records = messages(kafka, fresh_topic)
    keys = [m.dedupe_key for m in records]
    assert len(records) == 5  # the second email went out twice (the crash window) ...
    assert len(set(keys)) == 4  # ... under one dedupe key
    downstream: dict[str, InboundMessage] = {}
    for message in records:  # an idempotent sink: first copy of a dedupe key wins
        downstream.setdefault(message.dedupe_key, message)
    assert sorted(m.subject or "" for m in downstream.values()) == [f"Graffiti on wall {i}" for i in range(4)]
    assert dovecot.count("waste") == 0 and dovecot.count("waste", PROCESSED) == 4


def test_connection_loss_reconnects_with_backoff_and_logs_it(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str,
        caplog: pytest.LogCaptureFixture) -> None:
    poller = harness_factory(config(dovecot, ["waste"])).poller()
    assert poller.poll_once() == 0  # connected, nothing there
    lost = connections_lost("waste")
    subprocess.run(["doveadm", "-c", str(dovecot.config_path), "kick", "waste"], check=True,
                   capture_output=True, timeout=30)
    dovecot.append("waste", email("Street light out"))
    with caplog.at_level(logging.WARNING, logger="connectors.imap_poller"):
        published = 0
        deadline = time.monotonic() + 20
        while not published and time.monotonic() < deadline:
            published = poller.poll_once()
            time.sleep(0.3)
    assert published == 1
    assert any("connection lost" in r.getMessage() and "reconnecting in" in r.getMessage()
               for r in caplog.records)
    assert connections_lost("waste") > lost  # the operator sees it on the metrics port too
    assert [m.subject for m in messages(kafka, fresh_topic)] == ["Street light out"]


def test_uidvalidity_change_rescans_without_doubling(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str,
        caplog: pytest.LogCaptureFixture) -> None:
    first = email("Overflowing litter bin", message_id="<litter-1@example.org>")
    dovecot.append("waste", first, folder="Intake")
    harness = harness_factory(config(dovecot, ["waste"], box={"folder": "Intake"}))
    poller = harness.poller()
    assert poller.poll_once() == 1
    poller.close()

    client = dovecot.client("waste")  # the folder is recreated: a new UIDVALIDITY
    client.delete_folder("Intake")
    client.create_folder("Intake")
    client.logout()
    dovecot.append("waste", first, folder="Intake")  # restored from a backup, say
    dovecot.append("waste", email("Dog fouling in the park"), folder="Intake")

    with caplog.at_level(logging.WARNING, logger="connectors.imap_poller"):
        assert harness.poller().poll_once() == 1
    assert any("UIDVALIDITY changed" in r.getMessage() for r in caplog.records)
    assert sorted(m.subject or "" for m in messages(kafka, fresh_topic)) == [
        "Dog fouling in the park", "Overflowing litter bin"]
    assert dovecot.count("waste", "Intake") == 0


def test_a_later_copy_in_another_mailbox_republishes_with_the_extended_list(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str) -> None:
    shared = email("Rats in the alley", message_id="<rats@example.org>")
    dovecot.append("waste", shared)
    poller = harness_factory(config(dovecot, ["waste", "housing"])).poller()
    assert poller.poll_once() == 1
    dovecot.append("housing", shared)  # delivered to the second inbox a minute later
    assert poller.poll_once() == 1
    first, second = messages(kafka, fresh_topic)
    assert first.dedupe_key == second.dedupe_key
    assert first.dedupe_key.startswith("email:<rats@example.org>#")
    assert first.id == second.id
    assert first.source.mailboxes == ["waste@council.example.gov.uk"]
    assert second.source.mailboxes == ["waste@council.example.gov.uk", "housing@council.example.gov.uk"]


class BrokerAwayPublisher:
    """What KafkaPublisher.publish raises when no broker answers (the SMTP tests stop the real
    broker; here only the poller's side of the contract matters)."""

    def publish(self, message: InboundMessage) -> None:
        raise BrokerUnavailableError("no Kafka broker answers at 127.0.0.1:9092")


def test_broker_away_leaves_mail_in_place_and_position_unchanged(
        dovecot: DovecotServer, tmp_path: Path) -> None:
    dovecot.append("waste", email("Parking on double yellows"))
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    state = ImapStateStore(tmp_path / "state.sqlite")
    poller = ImapPoller(config(dovecot, ["waste"]), BrokerAwayPublisher(), blobs, state)
    try:
        with pytest.raises(BrokerUnavailableError):
            poller.poll_once()
        position = state.position(poller.boxes[0].config.state_key)
    finally:
        poller.close()
        state.close()
    assert dovecot.count("waste") == 1
    assert dovecot.count("waste", PROCESSED) == 0
    assert position is not None and position[1] == 0


def test_mail_that_cannot_become_a_message_goes_to_the_error_folder(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str) -> None:
    dovecot.append("waste", b"Subject: nobody sent this\r\n\r\nno sender at all\r\n")
    dovecot.append("waste", email("A good one"))
    poller = harness_factory(config(dovecot, ["waste"])).poller()
    failed = mails("waste", "failed")
    assert poller.poll_once() == 1
    assert mails("waste", "failed") - failed == 1
    assert dovecot.count("waste") == 0
    assert dovecot.count("waste", "Frontdoor/Failed") == 1
    assert [m.subject for m in messages(kafka, fresh_topic)] == ["A good one"]


def wait_for_log(server: DovecotServer, text: str, timeout_s: float = 5.0) -> str:
    """Dovecot's log, once it has ``text`` (its log process writes a moment later)."""
    deadline = time.monotonic() + timeout_s
    while text not in (log := server.log()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return log


@pytest.mark.parametrize("via", ["oauth2_token", "oauth2_token_env"])
def test_mailbox_with_an_oauth2_token_logs_in_with_xoauth2_streams_once_and_moves(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str,
        monkeypatch: pytest.MonkeyPatch, via: str) -> None:
    token = dovecot.issue_token("waste")
    if via == "oauth2_token_env":
        monkeypatch.setenv("FRONTDOOR_TEST_WASTE_IMAP_TOKEN", token)
        box: dict[str, Any] = {"oauth2_token_env": "FRONTDOOR_TEST_WASTE_IMAP_TOKEN"}
    else:
        box = {"oauth2_token": token}
    dovecot.append("waste", email("Bin not collected on Elm Street"))
    dovecot.append("waste", email("Recycling box stolen"))
    cfg = config(dovecot, ["waste"], box=box)
    assert cfg.mailboxes[0].password is None  # the token is the only credential

    poller = harness_factory(cfg).poller()
    assert poller.poll_once() == 2
    assert poller.poll_once() == 0  # nothing read twice

    got = messages(kafka, fresh_topic)
    assert sorted(m.subject or "" for m in got) == ["Bin not collected on Elm Street",
                                                    "Recycling box stolen"]
    assert {m.source.department_hint for m in got} == {"waste"}
    assert dovecot.count("waste") == 0 and dovecot.count("waste", PROCESSED) == 2
    assert token in dovecot.idp.introspected  # Dovecot had the identity provider check it
    assert "Login: user=<waste>, method=XOAUTH2" in wait_for_log(dovecot, "method=XOAUTH2")


def test_revoked_oauth2_token_is_a_logged_login_failure_until_the_token_file_is_refreshed(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str,
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    token_file = tmp_path / "waste.token"
    token = dovecot.issue_token("waste")
    token_file.write_text(token + "\n")
    dovecot.append("waste", email("Noisy neighbours every night"))
    poller = harness_factory(config(dovecot, ["waste"], box={"oauth2_token_file": str(token_file)})).poller()
    dovecot.revoke_token(token)  # expired, or the tenant admin withdrew the app's consent

    with caplog.at_level(logging.WARNING, logger="connectors.imap_poller"):
        assert poller.poll_once() == 0  # no exception: the poller keeps running
        time.sleep(1.2)  # the first retry is due after 1 s
        assert poller.poll_once() == 0
    refused = [r.getMessage() for r in caplog.records if "login refused" in r.getMessage()]
    assert refused == [
        "imap waste@council.example.gov.uk: login refused for waste ([AUTHENTICATIONFAILED] "
        f"Authentication failed.): check its password or token; trying again in {n} s" for n in (1, 2)]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)
    assert "Provided token is not valid" in wait_for_log(dovecot, "Provided token is not valid")
    assert messages(kafka, fresh_topic) == []
    assert dovecot.count("waste") == 1 and dovecot.count("waste", PROCESSED) == 0

    # A token refresher writes a new token: the same poller picks it up at its next login.
    token_file.write_text(dovecot.issue_token("waste"))
    time.sleep(2.2)  # the second retry is due after 2 s
    assert poller.poll_once() == 1
    poller.close()
    assert [m.subject for m in messages(kafka, fresh_topic)] == ["Noisy neighbours every night"]
    assert dovecot.count("waste") == 0 and dovecot.count("waste", PROCESSED) == 1


def test_the_test_dovecot_takes_tokens_only_as_tokens_and_passwords_only_as_passwords(
        dovecot: DovecotServer) -> None:
    token = dovecot.issue_token("waste")

    def logs_in(login: Callable[[IMAPClient], object]) -> bool:
        client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
        try:
            login(client)
        except LoginError:
            return False
        finally:
            client.shutdown()
        return True

    attempts: list[Callable[[IMAPClient], object]] = [
        lambda c: c.oauth2_login("waste", token),  # XOAUTH2
        lambda c: c.oauthbearer_login("waste", token),  # OAUTHBEARER
        lambda c: c.login("waste", PASSWORD),
        lambda c: c.login("waste", token),  # a token is no password
        lambda c: c.oauth2_login("waste", PASSWORD),  # a password is no token
        lambda c: c.oauth2_login("waste", dovecot.issue_token("housing")),  # someone else's
    ]
    with ThreadPoolExecutor(len(attempts)) as pool:  # each refusal takes Dovecot's 2 s delay
        results = list(pool.map(logs_in, attempts))
    assert results == [True, True, True, False, False, False]
    assert PASSWORD in dovecot.idp.introspected and token in dovecot.idp.introspected
    assert "Username 'waste' did not match 'housing'" in wait_for_log(dovecot, "did not match")


def test_config_file_errors_say_what_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "imap.toml"
    path.write_text('[defaults]\nhost = "imap.example"\n\n[[mailboxes]]\nname = "waste"\nuser = "w"\n')
    with pytest.raises(ImapConfigError, match="needs password"):
        load_imap_config(path)
    path.write_text('[defaults]\nhost = "imap.example"\npassword_env = "X"\n\n[[mailboxes]]\n'
                    'name = "waste@c"\nuser = "w"\nafter = "flag"\n')
    cfg = load_imap_config(path)
    assert cfg.mailboxes[0].host == "imap.example" and cfg.mailboxes[0].after == "flag"
    assert cfg.mailboxes[0].effective_port == 993
    with pytest.raises(ImapConfigError, match="cannot read"):
        load_imap_config(tmp_path / "missing.toml")
    path.write_text('[[mailboxes]]\nname = "waste@c"\nhost = "imap.example"\nuser = "w"\n'
                    f'oauth2_token_file = "{tmp_path / "nowhere.token"}"\n')
    mailbox = load_imap_config(path).mailboxes[0]
    with pytest.raises(ImapConfigError, match="cannot read oauth2_token_file .*nowhere.token"):
        mailbox.secret()
    (tmp_path / "nowhere.token").write_text("\n")
    with pytest.raises(ImapConfigError, match="is empty"):
        mailbox.secret()


def test_a_different_mail_reusing_a_message_id_is_a_second_message(
        dovecot: DovecotServer, harness_factory: Any, kafka: KafkaHandle, fresh_topic: str) -> None:
    dovecot.append("waste", email("Bins not emptied", body="Missed collection on Elm Road.\n",
                                  message_id="<reused@broken-mailer.example>"))
    poller = harness_factory(config(dovecot, ["waste", "housing"])).poller()
    assert poller.poll_once() == 1
    dovecot.append("housing", email("Damp in the flat", body="Black mould in the bedroom.\n",
                                    message_id="<reused@broken-mailer.example>"))
    assert poller.poll_once() == 1
    first, second = messages(kafka, fresh_topic, expect=2)
    assert first.dedupe_key != second.dedupe_key and first.id != second.id
    assert first.source.mailboxes == ["waste@council.example.gov.uk"]
    assert second.source.mailboxes == ["housing@council.example.gov.uk"]  # not merged into the first
    assert second.subject == "Damp in the flat"
