"""Custom actions (rasa-sdk) of the 助企帮帮团 assistant.

kb.py is the one access layer to the knowledge base, render.py turns records into text
and cards, and each remaining module holds the actions of one concern. Actions are
stateless: what a conversation needs to remember lives in the tracker's slots.
"""
