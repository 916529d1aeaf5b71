"""The canonical model every package shares: the message, the response-code enum, typed errors, masking."""
