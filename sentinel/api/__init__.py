"""The agent REST API: one blueprint per area, all answering JSON."""
