"""Who may post what: Twilio's signature, the form's CSRF token, agents' bearer tokens."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Mapping

from itsdangerous import BadData, URLSafeTimedSerializer
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

CSRF_COOKIE = "fd_csrf"


class TwilioSignatureCheck:
    """Checks ``X-Twilio-Signature`` with twilio's own :class:`RequestValidator`.

    The URL signed is the one Twilio called: FRONTDOOR_PUBLIC_URL plus the path (and query),
    not what the app sees behind a proxy or load balancer.
    """

    def __init__(self, auth_token: str, public_url: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.validator = RequestValidator(auth_token) if auth_token else None
        if self.validator is None:
            log.warning("FRONTDOOR_TWILIO_AUTH_TOKEN is not set: every Twilio webhook is refused (403)")

    def url_for(self, path: str, query: str = "") -> str:
        return f"{self.public_url}{path}" + (f"?{query}" if query else "")

    def valid(self, path: str, query: str, params: Mapping[str, str] | object, signature: str) -> bool:
        if self.validator is None or not signature:
            return False
        return bool(self.validator.validate(self.url_for(path, query), params, signature))


class CsrfGuard:
    """A double-submit token: a random cookie, and a hidden field carrying it signed and dated.

    A page on another site can neither read the cookie nor forge the signature.
    """

    def __init__(self, secret: str, max_age_s: int = 4 * 3600) -> None:
        if not secret:
            log.info("FRONTDOOR_WEB_SECRET is not set: contact-form tokens last only as long as this process")
            secret = secrets.token_urlsafe(32)
        self.serializer = URLSafeTimedSerializer(secret, salt="frontdoor.contact-form")
        self.max_age_s = max_age_s

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(24)

    def token_for(self, cookie: str) -> str:
        return self.serializer.dumps(cookie)

    def check(self, token: str | None, cookie: str | None) -> bool:
        if not token or not cookie:
            return False
        try:
            signed = self.serializer.loads(token, max_age=self.max_age_s)
        except BadData:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed, cookie)


class AgentTokens:
    """Bearer tokens for agents' systems: ``token`` or ``agent=token``, comma-separated."""

    def __init__(self, spec: str) -> None:
        self._tokens: list[tuple[str, str | None]] = []
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, token = item.partition("=")
            self._tokens.append((token.strip(), name.strip() or None) if sep else (item, None))

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def agent_for(self, presented: str | None) -> tuple[bool, str | None]:
        """(authenticated, the agent named for that token, if any); constant time per token."""
        found: tuple[bool, str | None] = (False, None)
        if not presented:
            return found
        for token, agent in self._tokens:
            if hmac.compare_digest(token.encode(), presented.encode()):
                found = (True, agent)
        return found
