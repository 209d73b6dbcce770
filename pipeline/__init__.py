"""rtdl pipeline: the commands a user runs and the algorithms they share (see ARCHITECTURE.md)."""
