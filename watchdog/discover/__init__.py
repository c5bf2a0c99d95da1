"""Discover stage: find the OSDs to watch (local processes, static targets)."""
