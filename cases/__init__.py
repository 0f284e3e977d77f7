"""Handoff cases: what the assistant hands to a 帮帮团 specialist, in SQL.

Shared by the action server (which opens cases) and the staff console (which works them);
neither reaches the tables except through `cases.repository`.
"""
