"""Calls: the persisted call service, recordings, their transcription, offline simulation."""
