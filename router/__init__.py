"""The router: frontdoor.inbound to department topics, triage and dead letters."""
