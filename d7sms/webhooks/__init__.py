"""Receivers for the calls D7 makes back to us: DLRs, batch callbacks and errbacks."""
