"""The pool of remote PostgreSQL instances monitored without an agent on them,
seen through the Datasentinel, pgwatch and Sequin APIs (to come)."""
