"""Routing models: which department an enquiry belongs to."""
