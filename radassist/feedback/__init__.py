"""Feedback: the radiologist's corrections recorded as an append-only event log, exported de-identified.

Hosts use FeedbackSession (one reader, one image) and record_read (headless pre-reads); the export
(`radassist export`) turns signed sessions into a de-identified dataset with DICOM SR and SEG.
"""

from radassist.feedback.events import EventType
from radassist.feedback.session import FeedbackSession, record_read, unsigned_sessions
from radassist.feedback.state import SessionState
from radassist.feedback.store import EventStore, resolve_store_path

__all__ = ["EventStore", "EventType", "FeedbackSession", "SessionState", "record_read", "resolve_store_path",
           "unsigned_sessions"]
