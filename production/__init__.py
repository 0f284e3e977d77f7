"""Parts used when several Rasa replicas share state: the conversation lock store."""
