"""``frontdoor demo``: a newcomer's first minute on the local embedded deployment.

Creates (or resets) a demo supervisor account, then sends realistic enquiries through the real
front doors of the running services: mail to the SMTP server, the form's JSON API, Twilio SMS
webhooks signed with the configured auth token, and contact-centre call notes. They include a
follow-up email, a resident on two channels, a safeguarding report and an FOI request, so the
queues fill within a minute (as fast as the router and the ticket stage take them).
"""

from __future__ import annotations

import secrets
import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
from twilio.request_validator import RequestValidator

from frontdoor.settings import Settings
from schemas.errors import OperatorError

DEMO_EMAIL = "demo.supervisor@frontdoor.local"
RESIDENT_PHONE = "+447911123456"  # Priya: the form gives it too (one resident, two channels)


@dataclass
class DemoReport:
    sent: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def check_local(settings: Settings) -> None:
    if settings.kafka_bootstrap:
        raise OperatorError("frontdoor demo is for the local embedded deployment: FRONTDOOR_KAFKA_BOOTSTRAP "
                            "is set, so this would send made-up enquiries into a real cluster")
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        raise OperatorError("frontdoor demo is for the local embedded deployment: FRONTDOOR_DATABASE_URL "
                            "names a server database")


def web_base(settings: Settings) -> str:
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::") else settings.web_host  # noqa: S104
    return f"http://{host}:{settings.web_port}"


def wait_for_services(settings: Settings) -> None:
    base = web_base(settings)
    try:
        httpx.get(f"{base}/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError:
        raise OperatorError(f"the web app does not answer at {base}: start everything first with "
                            "'make run' (or 'frontdoor up') and run the demo in another terminal") from None


def send_traffic(settings: Settings, log: Callable[[str], None]) -> DemoReport:
    report = DemoReport()
    base = web_base(settings)
    domain = settings.smtp_domains[0] if settings.smtp_domains else "council.example.gov.uk"
    _emails(settings, domain, report, log)
    with httpx.Client(base_url=base, timeout=30) as client:
        _forms(client, report, log)
        _sms(client, settings, report, log)
        _call_notes(client, settings, report, log)
    return report


def _emails(settings: Settings, domain: str, report: DemoReport, log: Callable[[str], None]) -> None:
    first_id = make_msgid(domain="example.com")
    mails = []
    bin_mail = EmailMessage()
    bin_mail["From"] = "Priya Shah <priya.shah@example.com>"
    bin_mail["To"] = f"waste@{domain}"
    bin_mail["Subject"] = "Green bin not collected on Monday"
    bin_mail["Message-ID"] = first_id
    bin_mail.set_content("Hello,\n\nOur green bin at 14 Acacia Avenue, LS6 2AB was not emptied on Monday, "
                         "the second week running. The lorry came down the street but missed our side.\n\n"
                         "Thanks,\nPriya")
    mails.append(bin_mail)
    follow_up = EmailMessage()
    follow_up["From"] = "Priya Shah <priya.shah@example.com>"
    follow_up["To"] = f"waste@{domain}"
    follow_up["Subject"] = "Re: Green bin not collected on Monday"
    follow_up["Message-ID"] = make_msgid(domain="example.com")
    follow_up["In-Reply-To"] = first_id
    follow_up["References"] = first_id
    follow_up.set_content("It still has not been collected and it is starting to smell. Could someone come "
                          "this week please?\n\nPriya")
    mails.append(follow_up)
    pothole = EmailMessage()
    pothole["From"] = "Tom Okafor <tom.okafor@example.org>"
    pothole["To"] = f"enquiries@{domain}"
    pothole["Subject"] = "Deep pothole on Mill Lane"
    pothole["Message-ID"] = make_msgid(domain="example.org")
    pothole.set_content("There is a deep pothole outside 12 Mill Lane, LS1 4AP. A cyclist nearly came off "
                        "yesterday evening.")
    pothole.add_alternative(
        "<p>There is a <b>deep pothole</b> outside 12 Mill Lane, LS1 4AP.</p>"
        "<p>A cyclist nearly came off yesterday evening.</p>"
        "<p><img src='https://images.example.org/pothole.jpg' alt='the pothole'></p>"
        "<script>alert('this never runs')</script>", subtype="html")
    mails.append(pothole)
    foi = EmailMessage()
    foi["From"] = "Jordan Blake <jordan.blake@example.net>"
    foi["To"] = f"foi@{domain}"
    foi["Subject"] = "Freedom of Information request: fly-tipping enforcement"
    foi["Message-ID"] = make_msgid(domain="example.net")
    foi.set_content("Under the Freedom of Information Act 2000, please tell me how many fixed penalty "
                    "notices for fly-tipping the council issued in each of the last three financial years.")
    mails.append(foi)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
            for mail in mails:
                smtp.send_message(mail)
                report.sent.append(f"email: {mail['Subject']}")
                log(f"email sent: {mail['Subject']}")
    except OSError as exc:
        report.skipped.append(f"email: the SMTP server at {settings.smtp_host}:{settings.smtp_port} "
                              f"did not take it ({exc})")


def _forms(client: httpx.Client, report: DemoReport, log: Callable[[str], None]) -> None:
    forms = [
        {"name": "Priya Shah", "email": "priya.shah@example.com", "phone": "07911 123456",
         "postcode": "LS6 2AB", "address": "14 Acacia Avenue",
         "message": "The people at number 16 play loud music every night until 3am. It has gone on for "
                    "a month and my children cannot sleep."},
        {"name": "Margaret Hill", "email": "m.hill@example.co.uk", "postcode": "LS8 1QT",
         "message": "I have moved out of my flat on 30 September. Please close my council tax account "
                    "and tell me what I owe."},
    ]
    for form in forms:
        answer = client.post("/api/enquiries", json=form, headers={"Idempotency-Key": uuid.uuid4().hex})
        if answer.status_code == 202:
            report.sent.append(f"form: {form['message'][:40]}… ({answer.json()['reference']})")
            log(f"form sent: {answer.json()['reference']}")
        else:
            report.skipped.append(f"form: answered {answer.status_code}")


def _sms(client: httpx.Client, settings: Settings, report: DemoReport, log: Callable[[str], None]) -> None:
    token = settings.twilio_auth_token.get_secret_value()
    if not token:
        report.skipped.append("SMS: FRONTDOOR_TWILIO_AUTH_TOKEN is not set, so the app refuses every Twilio "
                              "webhook; set it (any value locally) for both 'frontdoor up' and the demo")
        return
    validator = RequestValidator(token)
    url = f"{settings.public_url.rstrip('/')}/webhooks/twilio/sms"
    for body in ("The street light outside 14 Acacia Avenue has been out for a week",
                 "Also the light on the corner with Park Row is flickering"):
        params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32,
                  "From": RESIDENT_PHONE, "To": "+447700900000", "Body": body, "NumMedia": "0"}
        answer = client.post("/webhooks/twilio/sms", data=params,
                             headers={"X-Twilio-Signature": validator.compute_signature(url, params)})
        if answer.status_code == 200:
            report.sent.append(f"SMS: {body[:40]}…")
            log(f"SMS sent: {body[:40]}…")
        else:
            report.skipped.append(f"SMS: answered {answer.status_code} (is FRONTDOOR_PUBLIC_URL {url}?)")


def _call_notes(client: httpx.Client, settings: Settings, report: DemoReport,
                log: Callable[[str], None]) -> None:
    spec = settings.agent_tokens.get_secret_value()
    items = [i.strip() for i in spec.split(",") if i.strip()]
    token = (items[0].partition("=")[2] or items[0]) if items else ""
    if not token:
        report.skipped.append("call notes: FRONTDOOR_AGENT_TOKENS is not set, so POST /api/contacts refuses "
                              "every agent; set it for both 'frontdoor up' and the demo")
        return
    notes = [
        {"resident": {"name": "Daniel Reid", "phone": "07912 345678", "postcode": "LS9 7HE"},
         "summary": "Concern for an elderly neighbour",
         "note": "Caller worried about his neighbour, an 88-year-old woman living alone at 3 Elm Court. "
                 "No heating for three days, she had a fall last week and seems confused. Caller asked for "
                 "someone to check on her today: safeguarding.",
         "channel": "phone", "agent": "demo agent", "note_id": uuid.uuid4().hex},
        {"resident": {"name": "Tom Okafor", "email": "tom.okafor@example.org"},
         "summary": "Pothole follow-up by phone",
         "note": "Resident rang about the Mill Lane pothole he emailed about; wants to know when it will "
                 "be inspected.", "channel": "phone", "agent": "demo agent", "note_id": uuid.uuid4().hex},
    ]
    for note in notes:
        answer = client.post("/api/contacts", json=note, headers={"Authorization": f"Bearer {token}"})
        if answer.status_code == 202:
            report.sent.append(f"call note: {note['summary']}")
            log(f"call note sent: {note['summary']}")
        else:
            report.skipped.append(f"call note: answered {answer.status_code}")
