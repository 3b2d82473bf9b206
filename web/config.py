"""What the HTTP app needs to know, as plain values: ``frontdoor/`` builds it from the settings.

web/ never reads the settings or the environment itself (one source of configuration); tests
and the benchmark build a :class:`WebConfig` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network

Network = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class WebConfig:
    public_url: str = "http://127.0.0.1:8000"  # what Twilio signs, and whether cookies are Secure
    twilio_auth_token: str = ""
    twilio_account_sid: str = ""
    notify_callback_token: str = ""  # the bearer token Notify sends with delivery receipts
    web_secret: str = ""
    agent_tokens: str = ""  # "token" or "agent=token", comma-separated
    form_rate_limit: int = 10
    form_rate_window_s: int = 3600
    api_rate_limit: int = 120
    api_rate_window_s: int = 60
    track_rate_limit: int = 20  # /track look-ups (by link or typed) per client address and window
    track_rate_window_s: int = 900
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_max_files: int = 5
    api_max_body: int = 1024 * 1024
    trusted_proxies: tuple[Network, ...] = ()  # peers whose X-Forwarded-For is believed

    @property
    def form_max_body(self) -> int:
        """The contact form's whole body: every file at its limit plus room for the fields."""
        return self.upload_max_files * self.upload_max_bytes + 1024 * 1024


def parse_networks(spec: str | list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.1.7"`` → networks; ValueError naming the entry that is not one."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    networks: list[Network] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)") from None
    return tuple(networks)
