"""The hash-chained audit log: pure chain math (`chain`) and its Postgres store (`store`)."""
