"""The append-only, hash-chained audit log: model, writer, verifier, retention."""
