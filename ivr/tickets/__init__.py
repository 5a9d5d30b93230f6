"""Tickets: one per call, written durably."""
