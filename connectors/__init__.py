"""Channels: each turns its native messages into canonical ones and publishes them."""
