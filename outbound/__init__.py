"""Outbound: the outbox sender (SMTP relay, Twilio, GOV.UK Notify), delivery status, templates."""
