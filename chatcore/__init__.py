"""Framework-free core of the chat protocol: every chapter's semantics live here, once."""
