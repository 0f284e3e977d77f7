"""The 帮帮团 staff console: a web app of its own beside the assistant.

It reads and changes cases through `cases.repository`, reaches Rasa only through
`console.rasa_client`, and never imports the assistant's `actions/`.
"""
