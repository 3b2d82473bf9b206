"""The HTTP front: Twilio webhooks, the contact form, the JSON API for enquiries and agents' notes."""
