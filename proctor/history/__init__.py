"""Reading and replaying governed actions' Temporal histories (`proctor history`, `replay`)."""
