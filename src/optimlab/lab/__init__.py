"""The lab: studies from a spec, a resumable SQLite store, statistics across seeds, reports."""
