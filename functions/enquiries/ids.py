"""Enquiry ids: ULIDs, so ids sort by the time they were received and never collide in practice."""

from ulid import ULID


def new_enquiry_id() -> str:
    return str(ULID())
