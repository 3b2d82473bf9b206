"""Templates a council can edit: their directory over the shipped defaults, checked at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from outbound.rendering import SAMPLE, TemplateSet
from schemas.errors import OperatorError
from tests.conftest import ROOT


def test_shipped_templates_render_with_the_reference_and_tracking_link() -> None:
    templates = TemplateSet()
    templates.check()
    email = templates.email("acknowledgement", SAMPLE["acknowledgement"])
    assert email.subject == "[FD-ABCD-EFGH] Re: Bins not collected"
    assert "FD-ABCD-EFGH" in email.text and SAMPLE["acknowledgement"]["tracking_url"] in email.text
    assert 'href="https://example.gov.uk/track?ref=FD-ABCD-EFGH&amp;secret=x"' in email.html
    assert "Dear Sam Resident" in email.text
    assert "FD-ABCD-EFGH" in templates.sms("acknowledgement", SAMPLE["acknowledgement"])


def test_html_part_escapes_what_an_officer_typed() -> None:
    variables = dict(SAMPLE["reply"], body="Use <b>this</b> & that")
    email = TemplateSet().email("reply", variables)
    assert "Use &lt;b&gt;this&lt;/b&gt; &amp; that" in email.html
    assert "Use <b>this</b> & that" in email.text


def test_a_council_overrides_one_file_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "acknowledgement_sms.txt").write_text("Diolch! Cyf {{ reference }}\n")
    templates = TemplateSet(tmp_path)
    templates.check()
    assert templates.sms("acknowledgement", SAMPLE["acknowledgement"]) == "Diolch! Cyf FD-ABCD-EFGH"
    assert "FD-ABCD-EFGH" in templates.email("acknowledgement", SAMPLE["acknowledgement"]).text


@pytest.mark.parametrize(("name", "content", "says"), [
    ("reply_email.txt", "{{ body }\n", "reply_email.txt line 1"),
    ("reply_sms.txt", "{{ officer_name }}\n", "'officer_name' is undefined"),
    ("acknowledgement_email_subject.txt", "Thank you\n", "leaves out {{ reference }}"),
])
def test_a_broken_template_is_refused_with_one_line(tmp_path: Path, name: str, content: str,
                                                    says: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(OperatorError) as refused:
        TemplateSet(tmp_path).check()
    message = str(refused.value)
    assert says in message and str(tmp_path / name) in message and "\n" not in message


def test_frontdoor_outbound_refuses_to_start_with_a_broken_template(tmp_path: Path) -> None:
    (tmp_path / "acknowledgement_email.html").write_text("<p>{% if reference %}</p>\n")
    env = {**os.environ, "FRONTDOOR_TEMPLATES_DIR": str(tmp_path), "FRONTDOOR_VAR_DIR": str(tmp_path / "var"),
           "FRONTDOOR_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-m", "frontdoor", "outbound"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    said = [line for line in done.stderr.splitlines() if line.startswith("frontdoor:")]
    assert len(said) == 1 and "acknowledgement_email.html line 1" in said[0], done.stderr
    assert "Traceback" not in done.stderr


def test_notify_without_its_key_or_template_ids_is_one_line_naming_them() -> None:
    from pydantic import SecretStr

    from frontdoor.cli_outbound import build_senders
    from frontdoor.settings import Settings

    with pytest.raises(OperatorError) as refused:
        build_senders(Settings(outbound_provider="notify", notify_api_key=SecretStr("k-1-2"),
                               notify_ack_email_template="t1"))
    assert "FRONTDOOR_NOTIFY_ACK_SMS_TEMPLATE" in str(refused.value)
    assert "FRONTDOOR_NOTIFY_ACK_EMAIL_TEMPLATE" not in str(refused.value)
    with pytest.raises(OperatorError) as bad_key:
        build_senders(Settings(outbound_provider="notify", notify_api_key=SecretStr("not-a-key"),
                               notify_ack_email_template="a", notify_ack_sms_template="b",
                               notify_reply_email_template="c", notify_reply_sms_template="d"))
    assert "is not a Notify API key" in str(bad_key.value)
